//! Source adapter for CCLF, the claim and claim line feed CMS sends accountable care
//! organisations (`ascqr ingest --layout cclf`; `real-data.md` §6).
//!
//! CCLF files are fixed width without a header; positions come from CMS's CCLF Information
//! Packet v36, carried as `data-dictionary/claims/cclf_v36_layout.csv`. Files are recognised by
//! their number in the name: `…ZC1Y22…` or `cclf1*` for CCLF1, and so on. Read: CCLF1 (Part A
//! claim headers), CCLF2 (Part A revenue lines), CCLF3 (Part A procedures, one row per code),
//! CCLF4 (Part A diagnoses, one row per code), CCLF5 (Part B physician lines), CCLF8 (beneficiary
//! demographics, one file per monthly delivery) and CCLF9 (MBI cross-reference). Others (CCLF0,
//! 6, 7, A, B) are passed over with a note.
//!
//! What this adapter decides, each a reconstruction [I] to check against CMS's packet:
//! * **Beneficiaries.** Every MBI is replaced by its current one through CCLF9 (chains followed).
//! * **Enrollment.** CCLF8 is a snapshot per monthly delivery with no monthly history and no
//!   Medicare Advantage indicator (assigned beneficiaries are fee-for-service). Each delivery's
//!   row gives one enrollment month: the month of the delivery date in the file name (`.D221115.`),
//!   Part A and B from `BENE_ENTLMT_BUYIN_IND` read as the MBSF buy-in codes (`1,3,A,C` Part A,
//!   `2,3,B,C` Part B). A CCLF8 file without a delivery date in its name is refused.
//! * **Versions of a claim.** Rows with `CLM_ADJSMT_TYPE_CD` 0 (original), 1 (cancel) and 2
//!   (adjustment) are versions of one claim: Part B lines share beneficiary, `CLM_CNTL_NUM` and
//!   `CLM_LINE_NUM`; Part A claims share beneficiary and original control number
//!   (`CLM_ORG_CNTL_NUM`, else `CLM_CNTL_NUM`), or where a file has no control numbers,
//!   beneficiary, billing provider (`CLM_BLG_PRVDR_OSCAR_NUM`, else `PRVDR_OSCAR_NUM`), from and
//!   thru dates and claim type (two claims alike in all of these would be taken as versions of
//!   one). The version with the latest
//!   `CLM_EFCTV_DT` (then the highest `CUR_CLM_UNIQ_ID`) stands; if it is a cancellation the
//!   claim is dropped. Rows of versions that do not stand are counted as merged.
//! * **Facility.** CCLF5 has no billing NPI. The line's rendering NPI (`RNDRG_PRVDR_NPI_NUM`)
//!   stands for it: on an ASC facility line (specialty 49) the performing provider is the ASC.
//! * **Part A.** Claim type 40 becomes outpatient lines (CCLF2 joined to its CCLF1 header), 60 and
//!   61 inpatient stays (admission and discharge dates are the claim's from and thru dates: CCLF1
//!   has no admission date); other claim types are counted and passed over. Diagnoses other than
//!   the principal come from CCLF4 in sequence order (admitting and external-cause rows, product
//!   type `A` and `E`, left out); procedures from CCLF3.
//! * **Population.** Only the ACO's assigned beneficiaries appear: every result of such an
//!   extract is about them, not a national cohort, and says so (`ingest.json`, run warnings).
//!
//! Versions are resolved, and headers joined to their lines, diagnoses and procedures, one
//! beneficiary shard at a time: every CCLF1-5 row is first spilled by the shard of its current
//! beneficiary id, so memory holds one shard's claims whatever the delivery's size. A line,
//! diagnosis or procedure row is matched to its header within its own beneficiary's shard.

use super::ccw::{FixedWidthRecords, FtsColumn, FtsLayout};
use super::rif::Ingests;
use super::schema::Table;
use super::schema::{Column as ColumnSpec, ColumnType};
use super::sink::Cell;
use super::spill::{PartitionSpill, Spilled};
use super::validate::{Records, RejectWriter, SinkFor, Tally, TableIngest, TableReport};
use crate::error::PolarsContext;
use polars::prelude::{Int64Chunked, StringChunked};
use crate::error::{AscqrError, Result};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

const LAYOUT: &str = include_str!("../../data-dictionary/claims/cclf_v36_layout.csv");

/// What every output of a CCLF extract must say.
pub const POPULATION_NOTE: &str = "CCLF: assigned beneficiaries only, not a national cohort";

/// The v36 layout of CCLF file `number` (`1`…`9`, `A`, `B`).
pub fn layout(number: char) -> FtsLayout {
    let mut columns = Vec::new();
    for line in LAYOUT.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 5 || !f[0].eq_ignore_ascii_case(&number.to_string()) {
            continue;
        }
        let (start, end) = (f[3].parse::<usize>().unwrap_or(1), f[4].parse::<usize>().unwrap_or(1));
        columns.push(FtsColumn { long_name: f[2].to_string(), short_name: String::new(), kind: "CHAR".into(), start, width: end + 1 - start });
    }
    let record_length = columns.iter().map(|c| c.start + c.width - 1).max().unwrap_or(0);
    FtsLayout { data_file: None, rows: None, record_length, columns }
}

/// One CCLF file: its number and the delivery date its name carries, if any.
#[derive(Debug, Clone)]
pub struct CclfFile {
    pub path: PathBuf,
    pub number: char,
    pub delivered: Option<chrono::NaiveDate>,
}

/// Recognises a CCLF file by name: `…ZC<n>Y…` (CMS's names) or `cclf<n>…`; the delivery date is
/// `.DYYMMDD.` in CMS's names.
pub fn recognise(path: &Path) -> Option<CclfFile> {
    let name = path.file_name()?.to_string_lossy().to_ascii_uppercase();
    let number = if let Some(i) = name.find("ZC") {
        let c = name[i + 2..].chars().next()?;
        (name[i + 3..].starts_with('Y') && (c.is_ascii_digit() || c == 'A' || c == 'B')).then_some(c)?
    } else if let Some(rest) = name.strip_prefix("CCLF") {
        rest.chars().next().filter(|c| c.is_ascii_digit() || *c == 'A' || *c == 'B')?
    } else {
        return None;
    };
    let delivered = name.split('.').find_map(|part| {
        let d = part.strip_prefix('D')?;
        (d.len() == 6 && d.bytes().all(|b| b.is_ascii_digit())).then(|| chrono::NaiveDate::parse_from_str(&format!("20{d}"), "%Y%m%d").ok())?
    });
    Some(CclfFile { path: path.to_path_buf(), number, delivered })
}

/// Every file the CCLF layout reads in `dir`.
pub(super) fn input_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(discover(dir)?.0.into_values().flatten().map(|f| f.path).collect())
}

fn discover(dir: &Path) -> Result<(BTreeMap<char, Vec<CclfFile>>, Vec<String>)> {
    let mut files: BTreeMap<char, Vec<CclfFile>> = BTreeMap::new();
    let mut passed_over = Vec::new();
    for path in super::source::files_under(dir)? {
        match recognise(&path) {
            Some(f) if "1234589".contains(f.number) => files.entry(f.number).or_default().push(f),
            Some(f) => passed_over.push(format!("{}: CCLF{} is not needed by the measures", path.display(), f.number)),
            None => passed_over.push(format!("{}: not a CCLF file name (…ZC<n>Y… or cclf<n>…)", path.display())),
        }
    }
    for v in files.values_mut() {
        v.sort_by(|a, b| (a.delivered, &a.path).cmp(&(b.delivered, &b.path)));
    }
    for n in ['1', '2', '5', '8'] {
        if !files.contains_key(&n) {
            return Err(AscqrError::MissingSourceFile { dir: dir.to_path_buf(), what: format!("CCLF{n}"), pattern: format!("a file named …ZC{n}Y… or cclf{n}…") });
        }
    }
    passed_over.sort();
    Ok((files, passed_over))
}

/// A CCLF file's rows by field name.
struct Reader {
    records: FixedWidthRecords,
    index: HashMap<String, usize>,
    record: csv::StringRecord,
}

impl Reader {
    fn open(f: &CclfFile) -> Result<Self> {
        let described_by = PathBuf::from(format!("the CCLF{} v36 layout (data-dictionary/claims/cclf_v36_layout.csv)", f.number));
        let records = FixedWidthRecords::with_layout(&f.path, layout(f.number), &described_by)?;
        let index = records.names().iter().enumerate().map(|(i, n)| (n.clone(), i)).collect();
        Ok(Reader { records, index, record: csv::StringRecord::new() })
    }

    fn next(&mut self) -> Result<Option<u64>> {
        self.records.read(&mut self.record)
    }

    fn get(&self, name: &str) -> Option<&str> {
        let i = *self.index.get(name)?;
        self.record.get(i).filter(|v| !v.is_empty())
    }
}

/// Every row of one CCLF file number (its files in order), spilled by the shard of its current
/// beneficiary id, so that claim versions, headers and lines are resolved one shard at a time:
/// a claim's versions, header, lines, diagnoses and procedures all name the same beneficiary.
fn stage(files: &[CclfFile], number: char, xref: &HashMap<String, String>, dir: &Path, shards: u32) -> Result<Spilled> {
    let names: Vec<String> = layout(number).columns.into_iter().map(|c| c.long_name).collect();
    let mut columns: Vec<ColumnSpec> = names.iter().map(|n| ColumnSpec::plain(n.clone(), ColumnType::Str)).collect();
    columns.push(ColumnSpec::plain(FILE_INDEX, ColumnType::Int));
    columns.push(ColumnSpec::plain(FILE_ROW, ColumnType::Int));
    let mut spill = PartitionSpill::create(&dir.join(format!("cclf{number}")), "staged CCLF", columns, shards, 250_000)?;
    for (k, f) in files.iter().enumerate() {
        let mut r = Reader::open(f)?;
        while let Some(row) = r.next()? {
            let shard = r.get("BENE_MBI_ID").map_or(0, |m| super::extract::shard_of(&current(xref, m), shards));
            let mut cells: Vec<Cell> = names.iter().map(|n| r.get(n).map_or(Cell::Null, Cell::Str)).collect();
            cells.push(Cell::Int(k as i64));
            cells.push(Cell::Int(row as i64));
            spill.push(shard, &cells)?;
        }
    }
    spill.finish()
}

const FILE_INDEX: &str = "_file";
const FILE_ROW: &str = "_row";

/// One shard's staged rows of one CCLF file number, in the order read, by field name.
struct ShardRows {
    columns: Vec<StringChunked>,
    index: HashMap<String, usize>,
    files: Int64Chunked,
    rows: Int64Chunked,
    next: usize,
}

impl ShardRows {
    fn read(staged: Option<&Spilled>, shard: u32) -> Result<Self> {
        let Some(staged) = staged else {
            return Ok(ShardRows { columns: Vec::new(), index: HashMap::new(), files: Int64Chunked::default(), rows: Int64Chunked::default(), next: 0 });
        };
        let mut df = staged.read(shard)?;
        df.rechunk_mut();
        let ctx = || format!("reading shard {shard} of the staged CCLF rows");
        let mut columns = Vec::new();
        let mut index = HashMap::new();
        for c in df.columns() {
            if !c.name().starts_with('_') {
                index.insert(c.name().to_string(), columns.len());
                columns.push(c.str().ctx(ctx)?.clone());
            }
        }
        let files = df.column(FILE_INDEX).and_then(|c| c.i64().cloned()).ctx(ctx)?;
        let rows = df.column(FILE_ROW).and_then(|c| c.i64().cloned()).ctx(ctx)?;
        Ok(ShardRows { columns, index, files, rows, next: 0 })
    }

    fn rewind(&mut self) {
        self.next = 0;
    }

    /// Moves to the next row: its file (index among the number's files) and row in that file.
    fn next(&mut self) -> Option<(usize, u64)> {
        let i = self.next;
        if i >= self.rows.len() {
            return None;
        }
        self.next += 1;
        Some((self.files.get(i).unwrap_or(0) as usize, self.rows.get(i).unwrap_or(0) as u64))
    }

    fn get(&self, name: &str) -> Option<&str> {
        let c = self.columns.get(*self.index.get(name)?)?;
        c.get(self.next.checked_sub(1)?).filter(|v| !v.is_empty())
    }

    fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or("").to_string()
    }
}

/// MBI cross-reference: every previous identifier to its current one.
fn cross_reference(files: &[CclfFile]) -> Result<HashMap<String, String>> {
    let mut map = HashMap::new();
    for f in files {
        let mut r = Reader::open(f)?;
        while r.next()?.is_some() {
            if let (Some(current), Some(previous)) = (r.get("CRNT_NUM"), r.get("PRVS_NUM")) {
                if current != previous {
                    map.insert(previous.to_string(), current.to_string());
                }
            }
        }
    }
    Ok(map)
}

fn current(map: &HashMap<String, String>, id: &str) -> String {
    let mut id = id.to_string();
    for _ in 0..32 {
        match map.get(&id) {
            Some(next) => id = next.clone(),
            None => break,
        }
    }
    id
}

/// Canonical text cells of one row, filled by column name.
struct Row {
    names: Vec<String>,
    cells: Vec<Option<String>>,
}

impl Row {
    fn new(table: Table) -> Self {
        let names = table.spec().column_names();
        let n = names.len();
        Row { names, cells: vec![None; n] }
    }
    fn clear(&mut self) {
        self.cells.iter_mut().for_each(|c| *c = None);
    }
    fn set(&mut self, name: &str, value: Option<&str>) {
        let i = self.names.iter().position(|n| n == name).unwrap_or_else(|| panic!("internal: no canonical column {name}"));
        self.cells[i] = value.filter(|v| !v.is_empty()).map(str::to_string);
    }
    fn push(&self, ingest: &mut TableIngest, path: &Path, row: u64, rejects: &mut RejectWriter) -> Result<bool> {
        let refs: Vec<Option<&str>> = self.cells.iter().map(|c| c.as_deref()).collect();
        ingest.row(&refs, path, row, rejects)
    }
}

fn buy_in(code: Option<&str>) -> (bool, bool) {
    let c = code.unwrap_or("0");
    (matches!(c, "1" | "3" | "A" | "C"), matches!(c, "2" | "3" | "B" | "C"))
}

/// Which version of a claim stands: the latest effective date, then the highest unique id.
#[derive(Clone, PartialEq, PartialOrd)]
struct Version {
    effective: String,
    unique: u128,
    cancel: bool,
    at: (usize, u64),
}

fn version(r: &ShardRows, file: usize, row: u64) -> Version {
    Version {
        effective: r.text("CLM_EFCTV_DT"),
        unique: r.get("CUR_CLM_UNIQ_ID").and_then(|v| v.parse().ok()).unwrap_or(0),
        cancel: r.get("CLM_ADJSMT_TYPE_CD").map(|c| c.trim_start_matches('0') == "1").unwrap_or(false),
        at: (file, row),
    }
}

fn keep_latest(map: &mut HashMap<Vec<String>, Version>, key: Vec<String>, v: Version) {
    match map.get(&key) {
        Some(old) if (old.effective.as_str(), old.unique) >= (v.effective.as_str(), v.unique) => {}
        _ => {
            map.insert(key, v);
        }
    }
}

/// CCLF5 fields and the canonical carrier columns they fill, one to one (the reader also takes the
/// facility's NPI from `RNDRG_PRVDR_NPI_NUM`, the principal diagnosis from `CLM_DGNS_1_CD`).
const PART_B_FIELDS: [(&str, &str); 17] = [
    ("claim_id", "CUR_CLM_UNIQ_ID"),
    ("line_num", "CLM_LINE_NUM"),
    ("claim_from_date", "CLM_FROM_DT"),
    ("claim_thru_date", "CLM_THRU_DT"),
    ("line_first_date", "CLM_LINE_FROM_DT"),
    ("line_last_date", "CLM_LINE_THRU_DT"),
    ("hcpcs", "CLM_LINE_HCPCS_CD"),
    ("modifier_1", "HCPCS_1_MDFR_CD"),
    ("modifier_2", "HCPCS_2_MDFR_CD"),
    ("modifier_3", "HCPCS_3_MDFR_CD"),
    ("modifier_4", "HCPCS_4_MDFR_CD"),
    ("place_of_service", "CLM_POS_CD"),
    ("rendering_npi", "RNDRG_PRVDR_NPI_NUM"),
    ("provider_specialty", "CLM_PRVDR_SPCLTY_CD"),
    ("service_count", "CLM_LINE_SRVC_UNIT_QTY"),
    ("line_dx", "CLM_LINE_DGNS_CD"),
    ("dx_version", "DGNS_PRCDR_ICD_IND"),
];

struct Counts {
    superseded: u64,
    cancelled: u64,
    other_claim_types: u64,
}

/// Reads a CCLF extract in `dir` (see the module documentation): checks every row, writes
/// rejects, passes accepted rows to the sinks. Returns the reports and notes for `ingest.json`.
pub fn ingest_cclf(dir: &Path, rejects: &mut RejectWriter, sink_for: &mut SinkFor, staging: &super::ccw::Staging, progress: &indicatif::ProgressBar) -> Result<(Vec<TableReport>, Vec<String>)> {
    let (files, passed_over) = discover(dir)?;
    let none = Vec::new();
    let xref = cross_reference(files.get(&'9').unwrap_or(&none))?;
    let mut ing = Ingests::new(sink_for)?;
    let mut counts = Counts { superseded: 0, cancelled: 0, other_claim_types: 0 };
    progress.set_message("reading CCLF8 beneficiaries");
    beneficiaries(&files[&'8'], &xref, &mut ing, rejects)?;
    // Claims are resolved one beneficiary shard at a time (see `stage`).
    let mut staged = BTreeMap::new();
    for number in ['5', '1', '2', '3', '4'] {
        if let Some(f) = files.get(&number) {
            progress.set_message(format!("staging CCLF{number}"));
            staged.insert(number, stage(f, number, &xref, &staging.dir, staging.shards)?);
        }
    }
    ing.get(Table::Carrier).report.files += files[&'5'].len();
    for t in [Table::Outpatient, Table::Inpatient] {
        ing.get(t).report.files += files[&'1'].len();
    }
    ing.get(Table::Outpatient).report.files += files[&'2'].len();
    progress.set_message("resolving CCLF claim versions");
    for shard in 0..staging.shards {
        let mut part_b_rows = ShardRows::read(staged.get(&'5'), shard)?;
        part_b(&files[&'5'], &mut part_b_rows, &xref, ing.get(Table::Carrier), rejects, &mut counts)?;
        let mut part_a_rows = PartARows {
            headers: ShardRows::read(staged.get(&'1'), shard)?,
            lines: ShardRows::read(staged.get(&'2'), shard)?,
            procedures: ShardRows::read(staged.get(&'3'), shard)?,
            diagnoses: ShardRows::read(staged.get(&'4'), shard)?,
        };
        part_a(&files, &mut part_a_rows, &xref, &mut ing, rejects, &mut counts)?;
    }
    for (_, s) in staged {
        s.remove()?;
    }
    let mut notes = vec![
        POPULATION_NOTE.to_string(),
        "CCLF: the facility NPI of Part B lines is their rendering NPI (CCLF5 has no billing NPI)".to_string(),
        "CCLF: enrollment months are the delivery months of the CCLF8 files a beneficiary appears in".to_string(),
        "CCLF: inpatient admission and discharge dates are the claim's from and thru dates".to_string(),
    ];
    notes.push(format!(
        "CCLF: {} rows of superseded claim versions and {} rows of cancelled claims counted as merged; {} Part A rows of claim types other than 40, 60, 61 passed over (counted as merged)",
        counts.superseded, counts.cancelled, counts.other_claim_types
    ));
    notes.extend(passed_over.into_iter().map(|p| format!("passed over {p}")));
    Ok((ing.finish()?, notes))
}

fn beneficiaries(files: &[CclfFile], xref: &HashMap<String, String>, ing: &mut Ingests, rejects: &mut RejectWriter) -> Result<()> {
    let mut enrol = Row::new(Table::Enrollment);
    for f in files {
        let delivered = f.delivered.ok_or_else(|| {
            AscqrError::Other(format!("{}: a CCLF8 file name must carry its delivery date (.DYYMMDD.): enrollment months come from it", f.path.display()))
        })?;
        ing.get(Table::Beneficiaries).report.files += 1;
        ing.get(Table::Enrollment).report.files += 1;
        let mut r = Reader::open(f)?;
        while let Some(row) = r.next()? {
            let id = r.get("BENE_MBI_ID").map(|m| current(xref, m));
            let (a, b) = buy_in(r.get("BENE_ENTLMT_BUYIN_IND"));
            let tf = |x: bool| Some(if x { "true" } else { "false" });
            enrol.clear();
            enrol.set("bene_id", id.as_deref());
            enrol.set("year", Some(&delivered.format("%Y").to_string()));
            let month = delivered.format("%-m").to_string();
            enrol.set("first_month", Some(&month));
            enrol.set("last_month", Some(&month));
            enrol.set("part_a", tf(a));
            enrol.set("part_b", tf(b));
            enrol.set("medicare_advantage", tf(false));
            let e = ing.get(Table::Enrollment);
            e.report.tally(&f.path, Tally::Read);
            enrol.push(e, &f.path, row, rejects)?;
            let bene = ing.get(Table::Beneficiaries);
            bene.report.tally(&f.path, Tally::Read);
            let mut cells = Row::new(Table::Beneficiaries);
            cells.set("bene_id", id.as_deref());
            cells.set("birth_date", r.get("BENE_DOB"));
            cells.set("sex", r.get("BENE_SEX_CD"));
            cells.set("death_date", r.get("BENE_DEATH_DT"));
            // One row per beneficiary and delivery: the prepared extract folds a beneficiary's
            // rows into the first once its shard is sorted (`extract::merge_beneficiary_rows`).
            cells.push(bene, &f.path, row, rejects)?;
        }
    }
    Ok(())
}

fn part_b(files: &[CclfFile], r: &mut ShardRows, xref: &HashMap<String, String>, ingest: &mut TableIngest, rejects: &mut RejectWriter, counts: &mut Counts) -> Result<()> {
    let key = |r: &ShardRows| vec![current(xref, &r.text("BENE_MBI_ID")), r.text("CLM_CNTL_NUM"), r.text("CLM_LINE_NUM")];
    let mut latest = HashMap::new();
    r.rewind();
    while let Some((k, row)) = r.next() {
        keep_latest(&mut latest, key(r), version(r, k, row));
    }
    let mut out = Row::new(Table::Carrier);
    r.rewind();
    while let Some((k, row)) = r.next() {
        let f = &files[k];
        ingest.report.tally(&f.path, Tally::Read);
        let standing = &latest[&key(r)];
        if standing.at != (k, row) || standing.cancel {
            ingest.report.tally(&f.path, Tally::Merged);
            if standing.cancel {
                counts.cancelled += 1;
            } else {
                counts.superseded += 1;
            }
            continue;
        }
        out.clear();
        for (canonical, cclf) in PART_B_FIELDS {
            out.set(canonical, r.get(cclf));
        }
        out.set("bene_id", r.get("BENE_MBI_ID").map(|m| current(xref, m)).as_deref());
        out.set("billing_npi", r.get("RNDRG_PRVDR_NPI_NUM"));
        out.set("line_dx_version", r.get("DGNS_PRCDR_ICD_IND"));
        out.set("principal_dx", r.get("CLM_DGNS_1_CD"));
        for n in 1..=12 {
            out.set(&format!("dx_{n}"), r.get(&format!("CLM_DGNS_{n}_CD")));
        }
        out.push(ingest, &f.path, row, rejects)?;
    }
    Ok(())
}

/// The fields of a standing Part A claim that its lines and stay need.
struct Header {
    claim_type: String,
    fields: HashMap<&'static str, String>,
    dx: Vec<(u32, String)>,
    procs: Vec<(u32, String)>,
}

const HEADER_FIELDS: [&str; 12] = [
    "BENE_MBI_ID",
    "PRVDR_OSCAR_NUM",
    "CLM_FROM_DT",
    "CLM_THRU_DT",
    "CLM_BILL_FAC_TYPE_CD",
    "CLM_BILL_CLSFCTN_CD",
    "CLM_BILL_FREQ_CD",
    "PRNCPL_DGNS_CD",
    "DGNS_PRCDR_ICD_IND",
    "CLM_ADMSN_TYPE_CD",
    "CLM_ADMSN_SRC_CD",
    "BENE_PTNT_STUS_CD",
];

fn table_of(claim_type: &str) -> Option<Table> {
    match claim_type.trim_start_matches('0') {
        "40" => Some(Table::Outpatient),
        "60" | "61" => Some(Table::Inpatient),
        _ => None,
    }
}

/// One shard's Part A rows: CCLF1 headers, CCLF2 lines, CCLF3 procedures, CCLF4 diagnoses.
struct PartARows {
    headers: ShardRows,
    lines: ShardRows,
    procedures: ShardRows,
    diagnoses: ShardRows,
}

fn part_a(files: &BTreeMap<char, Vec<CclfFile>>, rows: &mut PartARows, xref: &HashMap<String, String>, ing: &mut Ingests, rejects: &mut RejectWriter, counts: &mut Counts) -> Result<()> {
    let none = Vec::new();
    let headers = &files[&'1'];
    let key = |r: &ShardRows| {
        let bene = current(xref, &r.text("BENE_MBI_ID"));
        // An adjustment or cancellation names its original's control number; an original its own.
        if let Some(control) = r.get("CLM_ORG_CNTL_NUM").or(r.get("CLM_CNTL_NUM")) {
            return vec![bene, control.to_string()];
        }
        let provider = r.get("CLM_BLG_PRVDR_OSCAR_NUM").or(r.get("PRVDR_OSCAR_NUM")).unwrap_or("").to_string();
        vec![bene, provider, r.text("CLM_FROM_DT"), r.text("CLM_THRU_DT"), r.text("CLM_TYPE_CD")]
    };
    let mut latest = HashMap::new();
    let r = &mut rows.headers;
    r.rewind();
    while let Some((k, row)) = r.next() {
        keep_latest(&mut latest, key(r), version(r, k, row));
    }
    // The standing claims by unique id, with their header fields; other header rows counted.
    let mut standing: HashMap<String, Header> = HashMap::new();
    let mut stays: Vec<(String, PathBuf, u64)> = Vec::new();
    r.rewind();
    {
        while let Some((k, row)) = r.next() {
            let f = &headers[k];
            let claim_type = r.text("CLM_TYPE_CD");
            let table = table_of(&claim_type).unwrap_or(Table::Inpatient);
            let report = &mut ing.get(table).report;
            report.tally(&f.path, Tally::Read);
            let v = &latest[&key(r)];
            let stands = v.at == (k, row) && !v.cancel && table_of(&claim_type).is_some();
            if !stands {
                report.tally(&f.path, Tally::Merged);
                if table_of(&claim_type).is_none() {
                    counts.other_claim_types += 1;
                } else if v.cancel {
                    counts.cancelled += 1;
                } else {
                    counts.superseded += 1;
                }
                continue;
            }
            let id = r.text("CUR_CLM_UNIQ_ID");
            if table == Table::Outpatient {
                report.tally(&f.path, Tally::Merged); // the header folds into its lines
            } else {
                stays.push((id.clone(), f.path.clone(), row));
            }
            let fields = HEADER_FIELDS.iter().map(|n| (*n, r.text(n))).collect();
            standing.insert(id, Header { claim_type, fields, dx: Vec::new(), procs: Vec::new() });
        }
    }
    // Diagnoses (CCLF4) and procedures (CCLF3), one row per code, folded into their claim.
    for (number, code_field, is_dx) in [('4', "CLM_DGNS_CD", true), ('3', "CLM_PRCDR_CD", false)] {
        let code_files = files.get(&number).unwrap_or(&none);
        let r = if is_dx { &mut rows.diagnoses } else { &mut rows.procedures };
        r.rewind();
        {
            while let Some((k, _)) = r.next() {
                let f = &code_files[k];
                let table = table_of(&r.text("CLM_TYPE_CD")).unwrap_or(Table::Inpatient);
                let report = &mut ing.get(table).report;
                report.tally(&f.path, Tally::Read);
                report.tally(&f.path, Tally::Merged);
                let Some(h) = standing.get_mut(&r.text("CUR_CLM_UNIQ_ID")) else { continue };
                let (Some(code), seq) = (r.get(code_field), r.get("CLM_VAL_SQNC_NUM").and_then(|s| s.parse::<u32>().ok()).unwrap_or(0)) else { continue };
                if is_dx {
                    if !matches!(r.get("CLM_PROD_TYPE_CD"), Some("A" | "E")) {
                        h.dx.push((seq, code.to_string()));
                    }
                } else {
                    h.procs.push((seq, code.to_string()));
                }
            }
        }
    }
    for h in standing.values_mut() {
        h.dx.sort();
        h.procs.sort();
    }
    let fill = |out: &mut Row, id: &str, h: &Header| {
        out.set("claim_id", Some(id));
        out.set("bene_id", Some(&current(xref, &h.fields["BENE_MBI_ID"])));
        out.set("provider_ccn", Some(&h.fields["PRVDR_OSCAR_NUM"]));
        out.set("claim_from_date", Some(&h.fields["CLM_FROM_DT"]));
        out.set("claim_thru_date", Some(&h.fields["CLM_THRU_DT"]));
        out.set("principal_dx", Some(&h.fields["PRNCPL_DGNS_CD"]));
        out.set("dx_version", Some(&h.fields["DGNS_PRCDR_ICD_IND"]));
        for (n, (_, code)) in h.dx.iter().take(25).enumerate() {
            out.set(&format!("dx_{}", n + 1), Some(code));
        }
        for (n, (_, code)) in h.procs.iter().take(25).enumerate() {
            out.set(&format!("proc_{}", n + 1), Some(code));
        }
    };
    // Inpatient stays: one row per standing claim.
    let mut stay = Row::new(Table::Inpatient);
    for (id, path, row) in &stays {
        let h = &standing[id];
        stay.clear();
        fill(&mut stay, id, h);
        stay.set("admission_date", Some(&h.fields["CLM_FROM_DT"]));
        stay.set("discharge_date", Some(&h.fields["CLM_THRU_DT"]));
        stay.set("proc_version", Some(&h.fields["DGNS_PRCDR_ICD_IND"]));
        stay.set("admission_type", Some(&h.fields["CLM_ADMSN_TYPE_CD"]));
        stay.set("admission_source", Some(&h.fields["CLM_ADMSN_SRC_CD"]));
        stay.set("discharge_status", Some(&h.fields["BENE_PTNT_STUS_CD"]));
        stay.push(ing.get(Table::Inpatient), path, *row, rejects)?;
    }
    // Outpatient lines (CCLF2) of standing claim-type-40 claims.
    let mut line = Row::new(Table::Outpatient);
    let lines = &files[&'2'];
    let r = &mut rows.lines;
    r.rewind();
    {
        while let Some((k, row)) = r.next() {
            let f = &lines[k];
            let id = r.text("CUR_CLM_UNIQ_ID");
            let header = standing.get(&id).filter(|h| table_of(&h.claim_type) == Some(Table::Outpatient));
            let table = header.map_or_else(|| table_of(&r.text("CLM_TYPE_CD")).unwrap_or(Table::Inpatient), |_| Table::Outpatient);
            let ingest = ing.get(table);
            ingest.report.tally(&f.path, Tally::Read);
            let Some(h) = header else {
                ingest.report.tally(&f.path, Tally::Merged);
                continue;
            };
            line.clear();
            fill(&mut line, &id, h);
            let bill_type = format!("{}{}{}", h.fields["CLM_BILL_FAC_TYPE_CD"], h.fields["CLM_BILL_CLSFCTN_CD"], h.fields["CLM_BILL_FREQ_CD"]);
            line.set("bill_type", Some(&bill_type));
            line.set("line_num", r.get("CLM_LINE_NUM"));
            line.set("revenue_center", r.get("CLM_LINE_PROD_REV_CTR_CD"));
            line.set("revenue_center_date", r.get("CLM_LINE_INSTNL_REV_CTR_DT"));
            line.set("hcpcs", r.get("CLM_LINE_HCPCS_CD"));
            for n in 1..=4 {
                line.set(&format!("modifier_{n}"), r.get(&format!("HCPCS_{n}_MDFR_CD")));
            }
            line.set("units", r.get("CLM_LINE_SRVC_UNIT_QTY"));
            line.push(ingest, &f.path, row, rejects)?;
        }
    }
    Ok(())
}

/// Writes a canonical extract (Parquet, as `ascqr synth` writes it) as a CCLF delivery in `out`,
/// for tests and demonstrations: CCLF8 one file per month of enrollment (a Medicare Advantage
/// month written as not entitled: CCLF has no such indicator), CCLF9 with one changed MBI (the
/// first beneficiary's claims carry its previous MBI), CCLF5 from the carrier lines (rendering
/// NPI as written; plus a superseded version of the first line and a cancelled claim, which must
/// not change any result), CCLF1/2/3/4 from the outpatient and inpatient claims. Identifiers are
/// renumbered to fit CCLF's widths; the returned maps give the new ids (beneficiary, claim).
pub fn write_canonical_as_cclf(canonical: &Path, out: &Path) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    use super::ccw::{read_canonical_table, text_column};
    use crate::error::PolarsContext;
    std::fs::create_dir_all(out).map_err(|e| AscqrError::io(out, e))?;
    let text = |df: &polars::prelude::DataFrame, c: &str| -> Result<Vec<Option<String>>> {
        // CCLF dates are ISO; everything else as CCW text.
        let col = df.column(c).ctx(|| c.to_string())?;
        let mut v = text_column(col);
        if matches!(col.dtype(), polars::prelude::DataType::Date) {
            for x in v.iter_mut().flatten() {
                *x = format!("{}-{}-{}", &x[0..4], &x[4..6], &x[6..8]);
            }
        }
        Ok(v)
    };
    let benes = read_canonical_table(canonical, Table::Beneficiaries)?;
    let ids = text(&benes, "bene_id")?;
    let mut mbi: BTreeMap<String, String> = BTreeMap::new();
    for (i, id) in ids.iter().flatten().enumerate() {
        mbi.insert(id.clone(), format!("1A{i:09}"));
    }
    let first_bene = ids.iter().flatten().next().cloned().unwrap_or_default();
    let previous_mbi = "9Z000000000".to_string();
    // Claims of the first beneficiary name its previous MBI; CCLF9 maps it to the current one.
    let mbi_on_claims = |id: &str| if id == first_bene { previous_mbi.clone() } else { mbi.get(id).cloned().unwrap_or_default() };
    let mut claim_ids: BTreeMap<String, String> = BTreeMap::new();
    let mut claim_id = |id: &str| -> String {
        let n = claim_ids.len() + 1;
        claim_ids.entry(id.to_string()).or_insert_with(|| format!("{n:013}")).clone()
    };
    let write = |number: char, name: &str, rows: &[HashMap<&str, String>]| -> Result<()> {
        let l = layout(number);
        let path = out.join(name);
        let mut f = crate::output::AtomicFile::create(&path)?;
        for r in rows {
            let mut line = vec![b' '; l.record_length];
            for c in &l.columns {
                if let Some(v) = r.get(c.long_name.as_str()) {
                    let bytes = v.as_bytes();
                    if bytes.len() > c.width {
                        return Err(AscqrError::Other(format!("internal: {v:?} does not fit CCLF{number} {} ({} characters)", c.long_name, c.width)));
                    }
                    line[c.start - 1..c.start - 1 + bytes.len()].copy_from_slice(bytes);
                }
            }
            line.push(b'\n');
            std::io::Write::write_all(f.writer(), &line).map_err(|e| AscqrError::io(&path, e))?;
        }
        f.commit()
    };
    // CCLF8: one file per month of enrollment.
    let enrol = read_canonical_table(canonical, Table::Enrollment)?;
    let e: Vec<Vec<Option<String>>> = ["bene_id", "year", "first_month", "last_month", "part_a", "part_b", "medicare_advantage"].iter().map(|c| text(&enrol, c)).collect::<Result<_>>()?;
    let (births, sexes, deaths) = (text(&benes, "birth_date")?, text(&benes, "sex")?, text(&benes, "death_date")?);
    let demographics: HashMap<String, usize> = ids.iter().enumerate().filter_map(|(i, id)| Some((id.clone()?, i))).collect();
    let mut months: BTreeMap<(i32, u32), BTreeMap<String, &'static str>> = BTreeMap::new();
    for i in 0..enrol.height() {
        let (Some(b), Some(y)) = (&e[0][i], e[1][i].as_ref().and_then(|y| y.parse::<i32>().ok())) else { continue };
        let t = |k: usize| e[k][i].as_deref() == Some("true");
        let code = match (t(4), t(5), t(6)) {
            (_, _, true) => "0",
            (true, true, _) => "3",
            (true, false, _) => "1",
            (false, true, _) => "2",
            _ => "0",
        };
        let (f, l) = (e[2][i].as_ref().and_then(|v| v.parse().ok()).unwrap_or(1u32), e[3][i].as_ref().and_then(|v| v.parse().ok()).unwrap_or(12u32));
        for m in f..=l.min(12) {
            months.entry((y, m)).or_default().insert(b.clone(), code);
        }
    }
    let first_month = months.keys().next().copied().unwrap_or((2020, 1));
    for id in ids.iter().flatten() {
        if !months.values().any(|m| m.contains_key(id)) {
            months.entry(first_month).or_default().insert(id.clone(), "0");
        }
    }
    for ((y, m), rows) in &months {
        let rows: Vec<HashMap<&str, String>> = rows
            .iter()
            .map(|(id, code)| {
                let k = demographics[id];
                let mut r = HashMap::new();
                r.insert("BENE_MBI_ID", mbi[id].clone());
                r.insert("BENE_DOB", births[k].clone().unwrap_or_default());
                r.insert("BENE_SEX_CD", sexes[k].clone().unwrap_or_default());
                r.insert("BENE_DEATH_DT", deaths[k].clone().unwrap_or_default());
                r.insert("BENE_ENTLMT_BUYIN_IND", code.to_string());
                r
            })
            .collect();
        write('8', &format!("P.A0001.ACO.ZC8Y{:02}.D{:02}{m:02}15.T0000000", y % 100, y % 100), &rows)?;
    }
    let mut xref = HashMap::new();
    xref.insert("HICN_MBI_XREF_IND", "M".to_string());
    xref.insert("CRNT_NUM", mbi.get(&first_bene).cloned().unwrap_or_default());
    xref.insert("PRVS_NUM", previous_mbi.clone());
    write('9', "P.A0001.ACO.ZC9Y23.D231215.T0000000", &[xref])?;

    // CCLF5 from the carrier lines.
    let carrier = read_canonical_table(canonical, Table::Carrier)?;
    let col = |name: &str| text(&carrier, name);
    let names = PART_B_FIELDS;
    let columns: Vec<Vec<Option<String>>> = names.iter().map(|(c, _)| col(c)).collect::<Result<_>>()?;
    let dx: Vec<Vec<Option<String>>> = (1..=12).map(|n| col(&format!("dx_{n}"))).collect::<Result<_>>()?;
    let bene_col = col("bene_id")?;
    let mut rows = Vec::new();
    for i in 0..carrier.height() {
        let mut r: HashMap<&str, String> = HashMap::new();
        for ((_, cclf), c) in names.iter().zip(&columns) {
            if let Some(v) = &c[i] {
                r.insert(cclf, v.clone());
            }
        }
        let original = r["CUR_CLM_UNIQ_ID"].clone();
        r.insert("CUR_CLM_UNIQ_ID", claim_id(&original));
        r.insert("CLM_CNTL_NUM", original);
        r.insert("BENE_MBI_ID", mbi_on_claims(bene_col[i].as_deref().unwrap_or("")));
        for (n, d) in dx.iter().enumerate() {
            if let Some(v) = &d[i] {
                r.insert(["CLM_DGNS_1_CD", "CLM_DGNS_2_CD", "CLM_DGNS_3_CD", "CLM_DGNS_4_CD", "CLM_DGNS_5_CD", "CLM_DGNS_6_CD", "CLM_DGNS_7_CD", "CLM_DGNS_8_CD", "CLM_DGNS_9_CD", "CLM_DGNS_10_CD", "CLM_DGNS_11_CD", "CLM_DGNS_12_CD"][n], v.clone());
            }
        }
        r.insert("CLM_ADJSMT_TYPE_CD", "0".into());
        r.insert("CLM_EFCTV_DT", r.get("CLM_THRU_DT").cloned().unwrap_or_default());
        if i == 0 {
            // An earlier version of this line with another code: superseded, never read.
            let mut old = r.clone();
            old.insert("CLM_LINE_HCPCS_CD", "99499".into());
            old.insert("CLM_EFCTV_DT", "2000-01-01".into());
            old.insert("CUR_CLM_UNIQ_ID", "9999999999998".into());
            rows.push(old);
            // A claim that was sent and then cancelled: dropped whole.
            for (adjustment, unique, effective) in [("0", "9999999999990", "2000-01-01"), ("1", "9999999999991", "2000-02-01")] {
                let mut c = r.clone();
                c.insert("CLM_CNTL_NUM", "CANCELLED0001".into());
                c.insert("CLM_ADJSMT_TYPE_CD", adjustment.into());
                c.insert("CUR_CLM_UNIQ_ID", unique.into());
                c.insert("CLM_EFCTV_DT", effective.into());
                rows.push(c);
            }
        }
        rows.push(r);
    }
    write('5', "P.A0001.ACO.ZC5Y23.D231215.T0000000", &rows)?;

    // Part A: CCLF1 headers, CCLF2 outpatient lines, CCLF4 diagnoses, CCLF3 procedures.
    let (mut headers, mut lines, mut diagnoses, mut procedures) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (table, claim_type) in [(Table::Outpatient, "40"), (Table::Inpatient, "60")] {
        let df = read_canonical_table(canonical, table)?;
        let t = |c: &str| text(&df, c);
        let get: BTreeMap<String, Vec<Option<String>>> = df.get_column_names().iter().map(|c| Ok((c.to_string(), t(c)?))).collect::<Result<_>>()?;
        let mut seen = std::collections::HashSet::new();
        for i in 0..df.height() {
            let v = |c: &str| get[c][i].clone().unwrap_or_default();
            let original = v("claim_id");
            let unique = claim_id(&original);
            if seen.insert(original.clone()) {
                let mut h: HashMap<&str, String> = HashMap::new();
                h.insert("CUR_CLM_UNIQ_ID", unique.clone());
                h.insert("PRVDR_OSCAR_NUM", v("provider_ccn"));
                h.insert("CLM_BLG_PRVDR_OSCAR_NUM", v("provider_ccn"));
                h.insert("BENE_MBI_ID", mbi_on_claims(&v("bene_id")));
                h.insert("CLM_TYPE_CD", claim_type.into());
                h.insert("CLM_CNTL_NUM", original.clone());
                h.insert("CLM_FROM_DT", v("claim_from_date"));
                h.insert("CLM_THRU_DT", v("claim_thru_date"));
                h.insert("PRNCPL_DGNS_CD", v("principal_dx"));
                h.insert("DGNS_PRCDR_ICD_IND", v("dx_version"));
                h.insert("CLM_ADJSMT_TYPE_CD", "0".into());
                h.insert("CLM_EFCTV_DT", v("claim_thru_date"));
                if table == Table::Outpatient {
                    let b = v("bill_type");
                    for (k, name) in ["CLM_BILL_FAC_TYPE_CD", "CLM_BILL_CLSFCTN_CD", "CLM_BILL_FREQ_CD"].into_iter().enumerate() {
                        h.insert(name, b.get(k..k + 1).unwrap_or("").to_string());
                    }
                } else {
                    h.insert("CLM_ADMSN_TYPE_CD", v("admission_type"));
                    h.insert("CLM_ADMSN_SRC_CD", v("admission_source"));
                    h.insert("BENE_PTNT_STUS_CD", v("discharge_status"));
                }
                for n in 1..=25 {
                    for (kind, list, field) in [("dx", &mut diagnoses, "CLM_DGNS_CD"), ("proc", &mut procedures, "CLM_PRCDR_CD")] {
                        let code = v(&format!("{kind}_{n}"));
                        if !code.is_empty() {
                            let mut d: HashMap<&str, String> = HashMap::new();
                            d.insert("CUR_CLM_UNIQ_ID", unique.clone());
                            d.insert("BENE_MBI_ID", h["BENE_MBI_ID"].clone());
                            d.insert("CLM_TYPE_CD", claim_type.into());
                            d.insert("CLM_VAL_SQNC_NUM", format!("{n:02}"));
                            d.insert(field, code);
                            if kind == "dx" {
                                d.insert("CLM_PROD_TYPE_CD", "D".into());
                            }
                            list.push(d);
                        }
                    }
                }
                headers.push(h);
            }
            if table == Table::Outpatient {
                let mut l: HashMap<&str, String> = HashMap::new();
                l.insert("CUR_CLM_UNIQ_ID", unique.clone());
                l.insert("CLM_LINE_NUM", v("line_num"));
                l.insert("BENE_MBI_ID", mbi_on_claims(&v("bene_id")));
                l.insert("CLM_TYPE_CD", claim_type.into());
                l.insert("CLM_LINE_PROD_REV_CTR_CD", v("revenue_center"));
                l.insert("CLM_LINE_INSTNL_REV_CTR_DT", v("revenue_center_date"));
                l.insert("CLM_LINE_HCPCS_CD", v("hcpcs"));
                for n in 1..=4 {
                    l.insert(["HCPCS_1_MDFR_CD", "HCPCS_2_MDFR_CD", "HCPCS_3_MDFR_CD", "HCPCS_4_MDFR_CD"][n - 1], v(&format!("modifier_{n}")));
                }
                l.insert("CLM_LINE_SRVC_UNIT_QTY", v("units"));
                lines.push(l);
            }
        }
    }
    write('1', "P.A0001.ACO.ZC1Y23.D231215.T0000000", &headers)?;
    write('2', "P.A0001.ACO.ZC2Y23.D231215.T0000000", &lines)?;
    write('4', "P.A0001.ACO.ZC4Y23.D231215.T0000000", &diagnoses)?;
    write('3', "P.A0001.ACO.ZC3Y23.D231215.T0000000", &procedures)?;
    Ok((mbi, claim_ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cclf_files_are_recognised_by_number_and_delivery_date() {
        let f = recognise(Path::new("P.A2620.ACO.ZC8Y22.D221115.T1234567")).unwrap();
        assert_eq!((f.number, f.delivered), ('8', chrono::NaiveDate::from_ymd_opt(2022, 11, 15)));
        assert_eq!(recognise(Path::new("cclf5_2023.txt")).unwrap().number, '5');
        assert_eq!(recognise(Path::new("T.A0001.ACO.ZCAY18.D181120.T1000011")).unwrap().number, 'A');
        assert!(recognise(Path::new("readme.txt")).is_none());
        // The v36 layouts: CCLF5 is 388 characters, its version indicator between diagnoses 8 and 9.
        let l = layout('5');
        assert_eq!(l.record_length, 388);
        let ind = l.columns.iter().find(|c| c.long_name == "DGNS_PRCDR_ICD_IND").unwrap();
        assert_eq!((ind.start, ind.width), (332, 1));
        assert_eq!(layout('8').record_length, 549);
        assert_eq!(layout('1').columns.len(), 45);
    }
}
