//! Importing a code list from one of CMS's Excel workbooks (`ascqr import-codes`) into a user's
//! measure definition version folder, in the documented CSV layout (`cohort_codes.csv`,
//! `exclusion_codes.csv`), so `--dictionary DIR` uses it with no code change.
//!
//! CMS's measure data dictionaries are workbooks with one sheet per code list, often with title
//! rows above the header. The importer finds the header row by the code column's name, reads the
//! codes below it, checks each code's shape, and writes them with provenance `official` and the
//! workbook's name, sheet and sha256 as the source. A cohort definition file holds two lists
//! (qualifying codes and, for ASC-12, concurrent high-risk codes): importing one replaces only
//! that list's rows; the other list's rows are kept from the folder's file, or from the embedded
//! definition if the folder has none yet.

use super::{MeasureId, DEFINITIONS};
use crate::claims::schema::CodeShape;
use crate::claims::shapes::{has_shape, shape_label};
use crate::error::{AscqrError, Result};
use calamine::{open_workbook_auto, Data, Reader};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Which code list a sheet holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CodeList {
    /// Qualifying procedure codes (HCPCS/CPT), `cohort_codes.csv` role `cohort`.
    Cohort,
    /// ASC-12's concurrent high-risk procedure codes, `cohort_codes.csv` role
    /// `concurrent_high_risk`.
    ConcurrentHighRisk,
    /// ASC-12's exclusion diagnoses (ICD-10-CM), `exclusion_codes.csv`.
    Exclusion,
}

impl CodeList {
    fn file(self) -> &'static str {
        match self {
            CodeList::Cohort | CodeList::ConcurrentHighRisk => "cohort_codes.csv",
            CodeList::Exclusion => "exclusion_codes.csv",
        }
    }

    fn shape(self) -> CodeShape {
        match self {
            CodeList::Exclusion => CodeShape::Icd10Cm,
            _ => CodeShape::Hcpcs,
        }
    }

    /// The file's code column.
    fn code_column(self) -> &'static str {
        match self {
            CodeList::Exclusion => "icd10cm",
            _ => "hcpcs",
        }
    }

    /// The `role` of this list's rows in `cohort_codes.csv`.
    fn role(self) -> Option<&'static str> {
        match self {
            CodeList::Cohort => Some("cohort"),
            CodeList::ConcurrentHighRisk => Some("concurrent_high_risk"),
            CodeList::Exclusion => None,
        }
    }

    /// Header names (lower case, letters and digits only) that mark the code column, most
    /// specific first.
    fn code_headers(self) -> &'static [&'static str] {
        match self {
            CodeList::Exclusion => &["icd10cm", "icd10cmcode", "icd10cmcodes", "icd10code", "icd10", "diagnosiscode", "dxcode", "code"],
            _ => &["hcpcs", "hcpcscode", "cpthcpcs", "cpthcpcscode", "hcpcscpt", "hcpcscptcode", "cpt", "cptcode", "procedurecode", "code"],
        }
    }
}

/// What to import and where.
#[derive(Debug, Clone)]
pub struct WorkbookImportOptions {
    pub workbook: PathBuf,
    /// The sheet; default the first.
    pub sheet: Option<String>,
    pub measure: MeasureId,
    pub list: CodeList,
    /// The code column's header when the usual names (HCPCS, CPT code, ICD-10-CM code, …) do not
    /// find it.
    pub code_column: Option<String>,
    /// The definition version folder's name, e.g. `cms-2026`.
    pub version: String,
    /// The dictionary directory to write into (`--dictionary DIR` later).
    pub out: PathBuf,
}

/// What an import read and wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkbookImport {
    pub sheet: String,
    /// The worksheet row (1-based) of the header.
    pub header_row: u32,
    pub rows_read: u64,
    pub blank_rows: u64,
    /// Rows whose code repeats an earlier row's (kept once).
    pub repeated_rows: u64,
    pub codes: usize,
    /// Imported codes our reconstruction does not have, and ours the workbook does not have.
    pub codes_not_in_previous_list: Vec<String>,
    pub previous_codes_not_in_workbook: Vec<String>,
    /// Cohort codes with no work RVU (from the workbook or our list): the work-RVU risk variable
    /// reads 0 for them.
    pub without_work_rvu: Vec<String>,
    /// ASC-19 cohort codes with no procedure type (from the workbook or our list).
    pub without_procedure_type: Vec<String>,
    pub output: String,
}

/// One code read from the sheet, with the optional columns the sheet had for it.
struct SheetCode {
    code: String,
    label: Option<String>,
    work_rvu: Option<String>,
    procedure_type: Option<String>,
}

/// Header text reduced to lower-case letters and digits, so `CPT/HCPCS Code` and `cpt_hcpcs_code`
/// compare equal.
fn normalized(header: &str) -> String {
    header.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

/// A cell as text: numbers written as integers where they are whole (Excel stores 45378 as
/// 45378.0).
fn cell_text(cell: &Data) -> Option<String> {
    match cell {
        Data::Empty => None,
        Data::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(format!("{}", *f as i64)),
        Data::Int(i) => Some(i.to_string()),
        other => Some(other.to_string()),
    }
}

/// A code as the claims carry it: upper case, no dot or spaces. A HCPCS code stored as a number
/// loses its leading zeros in Excel (`00100` → 100); numbers are padded back to five digits.
fn code_as_in_claims(cell: &Data, list: CodeList) -> Option<String> {
    let text = cell_text(cell)?;
    let code: String = text.chars().filter(|c| *c != '.' && !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
    let numeric = matches!(cell, Data::Float(_) | Data::Int(_));
    Some(if numeric && list.shape() == CodeShape::Hcpcs && code.len() < 5 { format!("{code:0>5}") } else { code })
}

/// A definition file's rows as (column → value) maps, with its header.
type Rows = (Vec<String>, Vec<BTreeMap<String, String>>);

fn parse_rows(name: &str, text: &str) -> Result<Rows> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().map_err(|e| AscqrError::Csv { file: name.into(), source: e })?.iter().map(str::to_string).collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| AscqrError::Csv { file: name.into(), source: e })?;
        rows.push(header.iter().cloned().zip(record.iter().map(str::to_string)).collect());
    }
    Ok((header, rows))
}

/// Imports one sheet's codes (see the module documentation).
pub fn import_code_list(options: &WorkbookImportOptions) -> Result<WorkbookImport> {
    let o = options;
    let version_ok = !o.version.is_empty() && o.version.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !version_ok {
        return Err(AscqrError::InvalidOption(format!("--version {:?}: a folder name of letters, digits, '-', '_' or '.'", o.version)));
    }
    let file = o.list.file();
    let embedded = DEFINITIONS.iter().find(|(m, f, _)| *m == o.measure && *f == file);
    if o.list != CodeList::Cohort && o.measure != MeasureId::Asc12 {
        // Adding such a list would switch on a rule the measure does not have (methodology §2:
        // the concurrent high-risk and IBD/diverticulitis exclusions are ASC-12's).
        return Err(AscqrError::InvalidOption(format!("{}: the {:?} list exists for ASC-12 only", o.measure, o.list)));
    }
    let sha256 = crate::output::describe_input(&o.workbook)?.sha256;
    let mut workbook = open_workbook_auto(&o.workbook).map_err(|e| AscqrError::Other(format!("{}: not a readable workbook: {e}", o.workbook.display())))?;
    let names = workbook.sheet_names();
    let sheet = match &o.sheet {
        Some(s) if names.contains(s) => s.clone(),
        Some(s) => return Err(AscqrError::InvalidOption(format!("{}: no sheet {s:?}; sheets: {}", o.workbook.display(), names.join(", ")))),
        None => names.first().cloned().ok_or_else(|| AscqrError::Other(format!("{}: the workbook has no sheet", o.workbook.display())))?,
    };
    let range = workbook.worksheet_range(&sheet).map_err(|e| AscqrError::Other(format!("{} (sheet {sheet}): {e}", o.workbook.display())))?;
    let where_ = PathBuf::from(format!("{} (sheet {sheet})", o.workbook.display()));
    let first_row = range.start().map_or(0, |(r, _)| r);
    let rows: Vec<(u32, &[Data])> = range.rows().enumerate().map(|(i, r)| (first_row + i as u32 + 1, r)).collect();

    // The header row: the first row with a cell naming the code column.
    let wanted: Vec<String> = match &o.code_column {
        Some(c) => vec![normalized(c)],
        None => o.list.code_headers().iter().map(|s| s.to_string()).collect(),
    };
    let header = wanted.iter().find_map(|w| {
        rows.iter().find_map(|(n, cells)| cells.iter().position(|c| cell_text(c).is_some_and(|t| normalized(&t) == *w)).map(|i| (*n, cells, i)))
    });
    let (header_row, header_cells, code_at) = header.ok_or_else(|| {
        AscqrError::MissingColumn {
            file: where_.clone(),
            table: format!("{:?} code list", o.list),
            column: o.code_column.clone().unwrap_or_else(|| format!("a code column (one of: {})", o.list.code_headers().join(", "))),
        }
    })?;
    let header_names: Vec<String> = header_cells.iter().map(|c| cell_text(c).map(|t| normalized(&t)).unwrap_or_default()).collect();
    let column = |names: &[&str]| names.iter().find_map(|n| header_names.iter().position(|h| h == n));
    let label_at = column(&["description", "shortdescription", "longdescription", "codedescription", "descriptor", "label"]);
    let rvu_at = column(&["workrvu", "workrvus", "rvu"]);
    let type_at = column(&["proceduretype"]);
    let code_header = cell_text(&header_cells[code_at]).unwrap_or_default();

    let mut imported: Vec<SheetCode> = Vec::new();
    // Each imported code once.
    let mut seen = BTreeSet::new();
    let (mut rows_read, mut blank_rows, mut repeated_rows) = (0u64, 0u64, 0u64);
    for (n, cells) in rows.iter().filter(|(n, _)| *n > header_row) {
        rows_read += 1;
        let get = |i: Option<usize>| i.and_then(|i| cells.get(i)).and_then(cell_text);
        let Some(code) = cells.get(code_at).and_then(|c| code_as_in_claims(c, o.list)) else {
            blank_rows += 1;
            continue;
        };
        if !has_shape(o.list.shape(), &code, None) {
            return Err(AscqrError::BadValue {
                file: where_.clone(),
                row: *n as u64,
                column: code_header.clone(),
                value: cell_text(&cells[code_at]).unwrap_or_default(),
                expected: format!("an {}", shape_label(o.list.shape())),
            });
        }
        if !seen.insert(code.clone()) {
            repeated_rows += 1;
            continue;
        }
        let rvu = match get(rvu_at) {
            Some(v) => Some(v.parse::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0).map(|x| x.to_string()).ok_or_else(|| AscqrError::BadValue {
                file: where_.clone(),
                row: *n as u64,
                column: cell_text(&header_cells[rvu_at.expect("a value came from it")]).unwrap_or_default(),
                value: v.clone(),
                expected: "a non-negative work RVU".into(),
            })?),
            None => None,
        };
        imported.push(SheetCode { code, label: get(label_at), work_rvu: rvu, procedure_type: get(type_at) });
    }

    // The rows this import keeps or replaces: the folder's file if it exists, else ours.
    let folder = o.out.join("measures").join(o.measure.as_str()).join(&o.version);
    let target = folder.join(file);
    let (header, base) = if target.is_file() {
        let text = std::fs::read_to_string(&target).map_err(|e| AscqrError::io(&target, e))?;
        parse_rows(&target.display().to_string(), &text)?
    } else {
        let (_, _, (name, text)) = embedded.ok_or_else(|| AscqrError::Other(format!("{}: no embedded {file}", o.measure)))?;
        parse_rows(name, text)?
    };
    let ours = |code: &str| base.iter().find(|r| r.get(o.list.code_column()).map(String::as_str) == Some(code));
    let in_list = |r: &BTreeMap<String, String>| match o.list.role() {
        Some(role) => r.get("role").map(String::as_str) == Some(role),
        None => true,
    };
    let previous: BTreeSet<String> = base.iter().filter(|r| in_list(r)).filter_map(|r| r.get(o.list.code_column()).cloned()).collect();
    let source = format!(
        "{} sheet {sheet} (sha256 {})",
        o.workbook.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        &sha256[..16]
    );
    let (mut without_work_rvu, mut without_procedure_type) = (Vec::new(), Vec::new());
    let mut out_rows: Vec<BTreeMap<String, String>> = base.iter().filter(|r| !in_list(r)).cloned().collect();
    for r in &imported {
        let code = &r.code;
        let previous_row = ours(code);
        let from_ours = |c: &str| previous_row.and_then(|p| p.get(c)).filter(|v| !v.is_empty()).cloned();
        let mut row: BTreeMap<String, String> = header.iter().map(|h| (h.clone(), String::new())).collect();
        row.insert(o.list.code_column().into(), code.clone());
        row.insert("label".into(), r.label.clone().or_else(|| from_ours("label")).unwrap_or_default());
        row.insert("provenance".into(), "official".into());
        row.insert("source".into(), source.clone());
        row.insert("version".into(), o.version.clone());
        match o.list {
            CodeList::Exclusion => {
                row.insert("exclusion".into(), from_ours("exclusion").unwrap_or_else(|| "official_exclusion".into()));
            }
            CodeList::Cohort | CodeList::ConcurrentHighRisk => {
                row.insert("role".into(), o.list.role().expect("a cohort_codes list").into());
                row.insert("ccs_category".into(), from_ours("ccs_category").unwrap_or_default());
                let rvu23 = r.work_rvu.clone().or_else(|| from_ours("work_rvu_2023"));
                let rvu25 = r.work_rvu.clone().or_else(|| from_ours("work_rvu_2025"));
                if o.list == CodeList::Cohort && rvu23.is_none() && rvu25.is_none() {
                    without_work_rvu.push(code.clone());
                }
                row.insert("work_rvu_2023".into(), rvu23.unwrap_or_default());
                row.insert("work_rvu_2025".into(), rvu25.unwrap_or_default());
                let kind = r.procedure_type.clone().or_else(|| from_ours("procedure_type"));
                if o.list == CodeList::Cohort && o.measure == MeasureId::Asc19 && kind.is_none() {
                    without_procedure_type.push(code.clone());
                }
                row.insert("procedure_type".into(), kind.unwrap_or_default());
            }
        }
        out_rows.push(row);
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| AscqrError::Csv { file: target.clone(), source: e };
    w.write_record(&header).map_err(csv_err)?;
    for r in &out_rows {
        w.write_record(header.iter().map(|h| r.get(h).map(String::as_str).unwrap_or(""))).map_err(csv_err)?;
    }
    let text = w.into_inner().map_err(|e| AscqrError::Other(format!("{}: {e}", target.display())))?;
    std::fs::create_dir_all(&folder).map_err(|e| AscqrError::io(&folder, e))?;
    crate::output::write_atomic(&target, &text)?;
    Ok(WorkbookImport {
        sheet,
        header_row,
        rows_read,
        blank_rows,
        repeated_rows,
        codes: seen.len(),
        codes_not_in_previous_list: seen.difference(&previous).cloned().collect(),
        previous_codes_not_in_workbook: previous.difference(&seen).cloned().collect(),
        without_work_rvu,
        without_procedure_type,
        output: target.display().to_string(),
    })
}
