//! Source adapter for the CMS research-identifiable-file (RIF) layout: pipe-delimited files with
//! a header row, as in CMS's synthetic RIF test data (`tests/data/rif-synthea/`).
//!
//! Files are recognised by name in the extract folder (any depth): `beneficiary*` (the Master
//! Beneficiary Summary File, one row per beneficiary-year), `carrier*`, `outpatient*`,
//! `inpatient*`, with extension `.csv`, `.txt` or `.dat`. Each is mapped to the canonical model:
//! * beneficiary-years become one beneficiary row (years merged; a death date in any year kept)
//!   and one enrollment row per run of months with the same entitlement;
//! * carrier and outpatient rows map one to one;
//! * inpatient revenue-center rows collapse to one stay per claim (`CLM_ID`).
//!
//! The canonical column's `rif` name in [`super::schema`] drives the plain one-to-one copies, so
//! the data dictionary and the adapter cannot disagree about where a column comes from.

use super::schema::{Column, ColumnType, Table};
use super::sink::days_to_date;
use super::validate::{parse_date, DelimitedRecords, Records, RejectWriter, SinkFor, Tally, TableIngest, TableReport, DATE_FORMATS};
use crate::error::{AscqrError, Result};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RifKind {
    Beneficiary,
    Carrier,
    Outpatient,
    Inpatient,
}

impl RifKind {
    const ALL: [RifKind; 4] = [RifKind::Beneficiary, RifKind::Carrier, RifKind::Outpatient, RifKind::Inpatient];
    fn prefix(self) -> &'static str {
        match self {
            RifKind::Beneficiary => "beneficiary",
            RifKind::Carrier => "carrier",
            RifKind::Outpatient => "outpatient",
            RifKind::Inpatient => "inpatient",
        }
    }
}

/// Whether a file name names a RIF file of `kind`: a word of the name (between `-`, `_` or `.`)
/// starts with the kind, or with `b` and the kind as CCW spells the carrier file (`bcarrier`);
/// `beneficiaries` counts as `beneficiary`. So `carrier.csv`, `beneficiary_2021.csv` and BFD's
/// `sample-a-bcarrier.txt` are all found.
fn names_kind(name: &str, kind: RifKind) -> bool {
    let stem = kind.prefix().trim_end_matches('y');
    name.split(['-', '_', '.']).any(|w| w.starts_with(stem) || w.strip_prefix('b').is_some_and(|w| w.starts_with(stem) && kind == RifKind::Carrier))
}

/// Every file the RIF layout reads in `dir`.
pub(super) fn input_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for kind in RifKind::ALL {
        files.extend(rif_files(dir, kind)?);
    }
    Ok(files)
}

fn rif_files(dir: &Path, kind: RifKind) -> Result<Vec<PathBuf>> {
    let out: Vec<PathBuf> = super::source::files_under(dir)?
        .into_iter()
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
            [".csv", ".txt", ".dat"].iter().any(|e| name.ends_with(e)) && names_kind(&name, kind)
        })
        .collect();
    if out.is_empty() {
        return Err(AscqrError::MissingSourceFile {
            dir: dir.to_path_buf(),
            what: format!("RIF {}", kind.prefix()),
            pattern: format!("{}*.csv|txt|dat", kind.prefix()),
        });
    }
    Ok(out)
}

/// A header lookup for one RIF file.
struct RifHeader {
    path: PathBuf,
    names: Vec<String>,
}

impl RifHeader {
    fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|h| h == name)
    }
    /// The column of `name`, or of its name in another vintage or file ([`aliases`]).
    fn index_or_alias(&self, name: &str) -> Option<usize> {
        self.index(name).or_else(|| aliases(name).iter().find_map(|a| self.index(a)))
    }
    fn require(&self, name: &str, table: Table) -> Result<usize> {
        self.index_or_alias(name).ok_or_else(|| AscqrError::MissingColumn {
            file: self.path.clone(),
            table: format!("RIF {}", table.name()),
            column: name.to_string(),
        })
    }
}

/// How one canonical column is filled from a RIF row.
enum Source {
    /// Copy (dates reformatted) from this RIF column.
    Copy(usize),
    /// Left empty: the RIF file has no such column and the canonical one is optional.
    Absent,
    /// Filled by the table's own rule.
    Derived,
}

fn is_plain_rif_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// Other names of a RIF column in other vintages or files (`real-data.md` §3–4), tried when the
/// file lacks the RIF name:
/// * the MBSF A/B/C/D base segment (2015 on, CMS's public synthetic files) names sex
///   `SEX_IDENT_CD` where the BFD RIF and the MBSF A/B say `BENE_SEX_IDENT_CD` (without the alias
///   sex would be silently empty);
/// * MedPAR, one row per stay, read as inpatient claims: `MEDPAR_ID` for the claim id, the
///   admission and discharge dates for the claim's from and thru dates as well, `DGNS_n_CD`
///   (the first is the principal), `SRGCL_PRCDR_n_CD`, and `DSCHRG_DSTNTN_CD` for the discharge
///   status, a match that is unverified (`real-data.md` §3 [G]).
fn aliases(rif: &str) -> Vec<String> {
    // Names that stand in for a column with a name of its own elsewhere: sex in the MBSF A/B/C/D;
    // MedPAR's admission and discharge dates and first diagnosis for the claim's from and thru
    // dates and principal diagnosis.
    let stand_ins: &[(&str, &str)] = &[("BENE_SEX_IDENT_CD", "SEX_IDENT_CD"), ("CLM_FROM_DT", "ADMSN_DT"), ("CLM_THRU_DT", "DSCHRG_DT"), ("PRNCPAL_DGNS_CD", "DGNS_1_CD")];
    if let Some((_, a)) = stand_ins.iter().find(|(r, _)| *r == rif) {
        return vec![a.to_string()];
    }
    medpar_name(rif).into_iter().collect()
}

/// The MedPAR name of an inpatient RIF column where MedPAR names it otherwise: read by
/// [`aliases`], written by the CCW writer's MedPAR file.
pub(super) fn medpar_name(rif: &str) -> Option<String> {
    let renamed = [
        ("CLM_ID", "MEDPAR_ID"),
        ("CLM_ADMSN_DT", "ADMSN_DT"),
        ("NCH_BENE_DSCHRG_DT", "DSCHRG_DT"),
        ("PRNCPAL_DGNS_VRSN_CD", "DGNS_VRSN_CD_1"),
        ("ICD_PRCDR_VRSN_CD1", "SRGCL_PRCDR_VRSN_CD_1"),
        ("CLM_IP_ADMSN_TYPE_CD", "IP_ADMSN_TYPE_CD"),
        ("CLM_SRC_IP_ADMSN_CD", "SRC_IP_ADMSN_CD"),
        ("PTNT_DSCHRG_STUS_CD", "DSCHRG_DSTNTN_CD"),
        ("CLM_UTLZTN_DAY_CNT", "UTLZTN_DAY_CNT"),
    ];
    if let Some((_, m)) = renamed.iter().find(|(r, _)| *r == rif) {
        return Some(m.to_string());
    }
    if let Some(n) = rif.strip_prefix("ICD_DGNS_CD") {
        return Some(format!("DGNS_{n}_CD"));
    }
    rif.strip_prefix("ICD_PRCDR_CD").map(|n| format!("SRGCL_PRCDR_{n}_CD"))
}

/// The plan that maps a RIF file's columns onto a canonical table.
fn plan(header: &RifHeader, table: Table, columns: &[Column]) -> Result<Vec<Source>> {
    columns
        .iter()
        .map(|c| {
            if !is_plain_rif_name(&c.rif) {
                return Ok(Source::Derived);
            }
            match header.index_or_alias(&c.rif) {
                Some(i) => Ok(Source::Copy(i)),
                None if c.required => header.require(&c.rif, table).map(Source::Copy),
                None => Ok(Source::Absent),
            }
        })
        .collect()
}

fn field<'r>(record: &'r csv::StringRecord, i: usize) -> Option<&'r str> {
    let v = record.get(i)?.trim();
    (!v.is_empty()).then_some(v)
}

/// Fills `out` with the canonical text of the planned copies; derived columns are left `None`.
fn copy_planned(
    record: &csv::StringRecord,
    plan: &[Source],
    columns: &[Column],
    header: &RifHeader,
    path: &Path,
    row: u64,
    out: &mut [Option<String>],
) -> Result<()> {
    for (k, (src, c)) in plan.iter().zip(columns).enumerate() {
        out[k] = match src {
            Source::Copy(i) => match field(record, *i) {
                None => None,
                Some(v) if c.dtype == ColumnType::Date => Some(rif_date_text(v, path, &header.names[*i], row)?),
                Some(v) => Some(v.to_string()),
            },
            Source::Absent | Source::Derived => None,
        };
    }
    Ok(())
}

fn rif_date_text(v: &str, path: &Path, column: &str, row: u64) -> Result<String> {
    let days = parse_date(v).ok_or_else(|| AscqrError::BadValue {
        file: path.to_path_buf(),
        row,
        column: column.to_string(),
        value: v.to_string(),
        expected: DATE_FORMATS.to_string(),
    })?;
    Ok(days_to_date(days).format("%Y-%m-%d").to_string())
}

fn as_refs(cells: &[Option<String>]) -> Vec<Option<&str>> {
    cells.iter().map(|c| c.as_deref()).collect()
}

/// One [`TableIngest`] per canonical table, shared by the source adapters.
pub(super) struct Ingests {
    by_table: BTreeMap<Table, TableIngest>,
}

impl Ingests {
    pub(super) fn new(sink_for: &mut SinkFor) -> Result<Self> {
        let mut by_table = BTreeMap::new();
        for t in Table::ALL {
            by_table.insert(t, TableIngest::new(t, sink_for(t)?));
        }
        Ok(Ingests { by_table })
    }

    pub(super) fn get(&mut self, t: Table) -> &mut TableIngest {
        self.by_table.get_mut(&t).expect("every table has an ingest")
    }

    /// Finishes every table, in canonical order.
    pub(super) fn finish(mut self) -> Result<Vec<TableReport>> {
        Table::ALL.iter().map(|t| self.by_table.remove(t).expect("every table has an ingest").finish()).collect()
    }
}

/// Reads every RIF file in `dir`, checks the canonical rows it yields, writes rejects, and passes
/// each table's accepted rows to the sink `sink_for` gives it.
pub fn ingest_rif(dir: &Path, rejects: &mut RejectWriter, sink_for: &mut SinkFor, progress: &indicatif::ProgressBar) -> Result<Vec<TableReport>> {
    let mut files = BTreeMap::new();
    for kind in RifKind::ALL {
        files.insert(kind.prefix(), rif_files(dir, kind)?);
    }
    let mut ing = Ingests::new(sink_for)?;

    let open = |path: &Path| -> Result<Box<dyn Records>> { Ok(Box::new(DelimitedRecords::open(path, b'|')?)) };
    beneficiaries(&files["beneficiary"], &open, &mut ing, rejects, progress)?;
    for (kind, table) in [("carrier", Table::Carrier), ("outpatient", Table::Outpatient)] {
        for path in &files[kind] {
            progress.set_message(format!("reading {}", path.display()));
            ing.get(table).report.files += 1;
            one_to_one(open(path)?.as_mut(), table, ing.get(table), rejects)?;
            progress.inc(1);
        }
    }
    inpatient(&files["inpatient"], &open, &mut ing, rejects, progress)?;

    ing.finish()
}

/// The source columns `table` reads by their RIF/CCW long names: the plain copies of
/// [`plan`] and the outpatient bill type's three parts.
pub(super) fn source_names(table: Table) -> Vec<String> {
    let mut names: Vec<String> = table.spec().columns().into_iter().map(|c| c.rif).filter(|r| is_plain_rif_name(r)).collect();
    if table == Table::Outpatient {
        names.extend(["CLM_FAC_TYPE_CD", "CLM_SRVC_CLSFCTN_TYPE_CD", "CLM_FREQ_CD"].map(String::from));
    }
    names
}

/// Opens one file of an adapter's layout as named records.
pub type Opener<'a> = dyn Fn(&Path) -> Result<Box<dyn Records>> + 'a;

/// Maps records one to one onto `table` (carrier and outpatient lines), the outpatient bill type
/// put together from its three parts.
pub fn one_to_one(records: &mut dyn Records, table: Table, ingest: &mut TableIngest, rejects: &mut RejectWriter) -> Result<()> {
    let columns = table.spec().columns();
    let header = RifHeader { path: records.path().to_path_buf(), names: records.names().to_vec() };
    let plan = plan(&header, table, &columns)?;
    let bill_type = if table == Table::Outpatient {
        Some((header.index("CLM_FAC_TYPE_CD"), header.index("CLM_SRVC_CLSFCTN_TYPE_CD"), header.index("CLM_FREQ_CD")))
    } else {
        None
    };
    let bill_type_col = columns.iter().position(|c| c.name == "bill_type");
    let mut record = csv::StringRecord::new();
    let mut cells = vec![None; columns.len()];
    while let Some(row) = records.read(&mut record)? {
        let path = records.path();
        ingest.report.tally(path, Tally::Read);
        copy_planned(&record, &plan, &columns, &header, path, row, &mut cells)?;
        if let (Some((Some(a), Some(b), Some(c))), Some(k)) = (bill_type, bill_type_col) {
            if let (Some(a), Some(b), Some(c)) = (field(&record, a), field(&record, b), field(&record, c)) {
                cells[k] = Some(format!("{a}{b}{c}"));
            }
        }
        ingest.row(&as_refs(&cells), path, row, rejects)?;
    }
    Ok(())
}

pub(super) fn inpatient(files: &[PathBuf], open: &Opener, ing: &mut Ingests, rejects: &mut RejectWriter, progress: &indicatif::ProgressBar) -> Result<()> {
    let table = Table::Inpatient;
    let columns = table.spec().columns();
    let mut seen: HashSet<String> = HashSet::new();
    for path in files {
        progress.set_message(format!("reading {}", path.display()));
        let mut records = open(path)?;
        let header = RifHeader { path: path.clone(), names: records.names().to_vec() };
        let plan = plan(&header, table, &columns)?;
        let claim_idx = header.require("CLM_ID", table)?;
        let ingest = ing.get(table);
        ingest.report.files += 1;
        let mut record = csv::StringRecord::new();
        let mut cells = vec![None; columns.len()];
        while let Some(row) = records.read(&mut record)? {
            ingest.report.tally(path, Tally::Read);
            // Claim-level fields repeat on every revenue line: the first line stands for the stay.
            if let Some(id) = field(&record, claim_idx) {
                if !seen.insert(id.to_string()) {
                    ingest.report.tally(path, Tally::Merged);
                    continue;
                }
            }
            copy_planned(&record, &plan, &columns, &header, path, row, &mut cells)?;
            ingest.row(&as_refs(&cells), path, row, rejects)?;
        }
        progress.inc(1);
    }
    Ok(())
}

/// Column name alternatives across MBSF vintages (`real-data.md` §4): `MDCR_ENTLMT_BUYIN_1_IND`
/// (BFD RIF, CMS's synthetic RIF), `BENE_MDCR_ENTLMT_BUYIN_IND_01` (MBSF A/B, 2011–2014) or
/// `MDCR_ENTLMT_BUYIN_IND_01` (MBSF A/B/C/D base, 2015 on); likewise `HMO_1_IND`,
/// `BENE_HMO_IND_01`, `HMO_IND_01`.
fn monthly_column(header: &RifHeader, short: &str, ccw: &str, month: u32) -> Option<usize> {
    let abcd = ccw.trim_start_matches("BENE_");
    header
        .index(&format!("{short}_{month}_IND"))
        .or_else(|| header.index(&format!("{ccw}_{month:02}")))
        .or_else(|| header.index(&format!("{abcd}_{month:02}")))
}

pub(super) fn beneficiaries(files: &[PathBuf], open: &Opener, ing: &mut Ingests, rejects: &mut RejectWriter, progress: &indicatif::ProgressBar) -> Result<()> {
    let bene_cols = Table::Beneficiaries.spec().columns();
    let enrol_cols = Table::Enrollment.spec().columns();
    let death_k = bene_cols.iter().position(|c| c.name == "death_date").expect("schema has death_date");
    let mut source_rows = 0u64;
    for path in files {
        progress.set_message(format!("reading {}", path.display()));
        let mut records = open(path)?;
        let header = RifHeader { path: path.clone(), names: records.names().to_vec() };
        let plan = plan(&header, Table::Beneficiaries, &bene_cols)?;
        let death_alt = header.index("BENE_DEATH_DT");
        let bene_idx = header.require("BENE_ID", Table::Beneficiaries)?;
        let year_idx = header
            .index("RFRNC_YR")
            .or_else(|| header.index("BENE_ENROLLMT_REF_YR"))
            .map_or_else(|| header.require("RFRNC_YR", Table::Enrollment), Ok)?;
        let mut months = Vec::with_capacity(12);
        for m in 1..=12 {
            months.push((
                monthly_column(&header, "MDCR_ENTLMT_BUYIN", "BENE_MDCR_ENTLMT_BUYIN_IND", m),
                monthly_column(&header, "HMO", "BENE_HMO_IND", m),
            ));
        }
        if months.iter().all(|(b, _)| b.is_none()) {
            header.require("MDCR_ENTLMT_BUYIN_1_IND", Table::Enrollment)?;
        }
        ing.get(Table::Beneficiaries).report.files += 1;
        ing.get(Table::Enrollment).report.files += 1;
        let mut record = csv::StringRecord::new();
        let mut cells = vec![None; bene_cols.len()];
        while let Some(row) = records.read(&mut record)? {
            source_rows += 1;
            copy_planned(&record, &plan, &bene_cols, &header, path, row, &mut cells)?;
            if cells[death_k].is_none() {
                if let Some(v) = death_alt.and_then(|i| field(&record, i)) {
                    cells[death_k] = Some(rif_date_text(v, path, "BENE_DEATH_DT", row)?);
                }
            }
            let bene_id = field(&record, bene_idx).map(str::to_string);
            let year = field(&record, year_idx).map(str::to_string);
            let year_ok = year.as_deref().map(|y| y.parse::<i32>().is_ok()).unwrap_or(true);
            if !year_ok {
                return Err(AscqrError::BadValue {
                    file: path.clone(),
                    row,
                    column: header.names[year_idx].clone(),
                    value: year.unwrap_or_default(),
                    expected: "a year".into(),
                });
            }
            // Enrollment runs per beneficiary-year. Buy-in codes: 1 = A only, 2 = B only,
            // 3 = A and B, A/B/C = the same under a state buy-in; 0 or blank = not entitled.
            // HMO indicator 0, 4 or blank = fee-for-service; anything else = Medicare Advantage.
            // Consecutive months with the same three flags become one row.
            let enrol = ing.get(Table::Enrollment);
            enrol.report.tally(path, Tally::Read);
            let status: Vec<(bool, bool, bool)> = months
                .iter()
                .map(|(buyin, hmo)| {
                    let b = buyin.and_then(|i| field(&record, i)).unwrap_or("0");
                    let h = hmo.and_then(|i| field(&record, i)).unwrap_or("0");
                    (matches!(b, "1" | "3" | "A" | "C"), matches!(b, "2" | "3" | "B" | "C"), !matches!(h, "0" | "4"))
                })
                .collect();
            let mut first = 0usize;
            while first < 12 {
                let mut last = first;
                while last + 1 < 12 && status[last + 1] == status[first] {
                    last += 1;
                }
                let (part_a, part_b, ma) = status[first];
                let (fm, lm) = ((first + 1).to_string(), (last + 1).to_string());
                let tf = |x: bool| if x { "true" } else { "false" };
                let e: [Option<&str>; 7] = [
                    bene_id.as_deref(),
                    year.as_deref(),
                    Some(fm.as_str()),
                    Some(lm.as_str()),
                    Some(tf(part_a)),
                    Some(tf(part_b)),
                    Some(tf(ma)),
                ];
                debug_assert_eq!(e.len(), enrol_cols.len());
                enrol.row(&e, path, row, rejects)?;
                first = last + 1;
            }
            // One row per beneficiary and year: the prepared extract folds a beneficiary's rows
            // into the first once its shard is sorted (`extract::merge_beneficiary_rows`).
            let bene = ing.get(Table::Beneficiaries);
            bene.report.tally(path, Tally::Read);
            bene.row(&as_refs(&cells), path, row, rejects)?;
        }
        progress.inc(1);
    }
    debug_assert_eq!(ing.get(Table::Beneficiaries).report.rows_read, source_rows);
    Ok(())
}
