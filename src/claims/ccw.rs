//! Source adapter for CCW/ResDAC physical deliveries (`ascqr ingest --layout ccw`).
//!
//! What a delivery looks like (`real-data.md` §2–4): one file per table and year (or month),
//! fixed-width ASCII `.dat` described by a File Transfer Summary `.fts` beside it, or the same
//! tables as CSV with a header; claims split into a claim (header) file and a line file; the
//! beneficiary file is the MBSF (A/B, or A/B/C/D base) with monthly buy-in and HMO indicators.
//! Column names are CCW long names (`LINE_PLACE_OF_SRVC_CD`) or 8-character short names
//! (`PLCSRVC`): the `.fts` gives both, and a CSV header of short names is read through
//! `data-dictionary/claims/ccw_names.csv`.
//!
//! Files are recognised by name (any depth, any case): `mbsf*`, `bcarrier_claims*` /
//! `carrier_claims*`, `bcarrier_line*` / `carrier_line*`, `outpatient_base_claims*` /
//! `outpatient_claims*`, `outpatient_revenue*`, `inpatient_base_claims*` / `inpatient_claims*`,
//! or `medpar*` instead of inpatient claims (one row per stay, read through the MedPAR names of
//! [`super::rif`]; given both, MedPAR is passed over so no stay counts twice). Inpatient
//! revenue-center files are not needed (the base claim is one row per stay) and are listed as
//! passed over.
//!
//! **Claims and lines.** The canonical carrier and outpatient tables are one row per line
//! carrying its claim's fields, so each line is joined to its claim on `(BENE_ID, CLM_ID)`. To
//! keep memory bounded whatever the extract's size, both files are first staged by beneficiary
//! shard (the extract's own shard function), and each shard's lines are joined to that shard's
//! claims. The first row of a repeated claim header is used; every claim-file row is counted as
//! read and merged into its lines. A line whose claim is in no claims file is quarantined
//! ("claim line without its claim in the claims file"); line files without any claims file are an
//! error. From then on the rows go through the same mapping and checks as the RIF layout
//! ([`super::rif`]).
//!
//! Reading an `.fts`: header lines `key: value` (`Actual File Name`, `Exact File Quantity
//! (Rows)`, `Exact File Record Length …`), then a column table under a ruler of dashes whose
//! groups give the table's columns: order, long name, short name, type, start, width, label.
//! Each `.dat` line must be exactly the record length; the row count must match the `.fts`.
//! This reader was written from public descriptions of the format and tested on files we write
//! in that shape ([`write_canonical_as_ccw`]); no real delivery was available to try it on.

use super::rif::{self, Ingests};
use super::schema::{Column as ColumnSpec, ColumnType, Table};
use super::sink::Cell;
use super::spill::{PartitionSpill, Spilled};
use super::validate::{DelimitedRecords, Records, RejectWriter, Rejection, SinkFor, Tally, TableReport};
use crate::error::{AscqrError, PolarsContext, Result};
use polars::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

const CCW_NAMES: &str = include_str!("../../data-dictionary/claims/ccw_names.csv");

/// The long name of a CCW column given by its long or short name.
pub fn long_name(name: &str) -> String {
    static SHORT_TO_LONG: std::sync::OnceLock<HashMap<String, String>> = std::sync::OnceLock::new();
    let map = SHORT_TO_LONG.get_or_init(|| {
        CCW_NAMES
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut f = l.split(',');
                Some((f.next()?.to_string(), f.next()?.to_string()))
            })
            .collect()
    });
    let upper = name.trim().to_ascii_uppercase();
    map.get(&upper).cloned().unwrap_or(upper)
}

/// One column of a fixed-width layout.
#[derive(Debug, Clone, PartialEq)]
pub struct FtsColumn {
    pub long_name: String,
    pub short_name: String,
    /// `CHAR`, `NUM` or `DATE` as the FTS writes it.
    pub kind: String,
    /// 1-based position of the first character.
    pub start: usize,
    pub width: usize,
}

/// A File Transfer Summary: the layout of one fixed-width file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FtsLayout {
    /// `Actual File Name`, when given.
    pub data_file: Option<String>,
    /// `Exact File Quantity (Rows)`, when given.
    pub rows: Option<u64>,
    /// `Exact File Record Length`, when given; else the end of the last column.
    pub record_length: usize,
    pub columns: Vec<FtsColumn>,
}

fn first_number(s: &str) -> Option<u64> {
    let digits: String = s.chars().skip_while(|c| !c.is_ascii_digit()).take_while(|c| c.is_ascii_digit() || *c == ',').filter(|c| *c != ',').collect();
    digits.parse().ok()
}

/// Parses an `.fts` file (see the module documentation).
pub fn parse_fts(path: &Path) -> Result<FtsLayout> {
    let text = std::fs::read_to_string(path).map_err(|e| AscqrError::io(path, e))?;
    parse_fts_text(&text, path)
}

/// Parses the text of an `.fts`; `path` names it in messages.
pub fn parse_fts_text(text: &str, path: &Path) -> Result<FtsLayout> {
    let bad = |line: usize, message: String| AscqrError::BadRow { file: path.to_path_buf(), row: line as u64, message };
    let lines: Vec<&str> = text.lines().collect();
    let is_ruler = |l: &str| {
        let t = l.trim();
        !t.is_empty() && t.chars().all(|c| c == '-' || c == ' ') && t.split_whitespace().count() >= 6
    };
    let ruler_at = lines.iter().position(|l| is_ruler(l)).ok_or_else(|| {
        AscqrError::Other(format!("{}: not a File Transfer Summary: no column table (a ruler of dashes over order, long name, short name, type, start, width) found", path.display()))
    })?;
    let mut layout = FtsLayout::default();
    let mut declared_length = None;
    for l in &lines[..ruler_at] {
        let Some((key, value)) = l.split_once(':') else { continue };
        let key = key.trim().to_ascii_lowercase();
        if key.contains("actual file name") {
            let name = value.trim().split_whitespace().next().unwrap_or("").to_string();
            if !name.is_empty() {
                layout.data_file = Some(name);
            }
            if let Some(rows) = value.split_once('(').and_then(|(_, r)| first_number(r)) {
                layout.rows = Some(rows);
            }
        } else if key.contains("exact file quantity") {
            layout.rows = first_number(value);
        } else if key.contains("record length") {
            declared_length = first_number(value).map(|n| n as usize);
        }
    }
    // Column spans from the ruler's groups of dashes; the last runs to the end of the line.
    let ruler = lines[ruler_at];
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in ruler.char_indices() {
        match (c, start) {
            ('-', None) => start = Some(i),
            (' ', Some(s)) => {
                spans.push(s..i);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push(s..ruler.len());
    }
    for (k, l) in lines.iter().enumerate().skip(ruler_at + 1) {
        let t = l.trim();
        if t.is_empty() || t.starts_with("- End") {
            break;
        }
        let cell = |j: usize| -> String {
            let from = spans[j].start.min(l.len());
            let to = if j + 1 == spans.len() { l.len() } else { spans[j + 1].start.min(l.len()) };
            l.get(from..to).unwrap_or("").trim().to_string()
        };
        let number = |j: usize, what: &str| -> Result<usize> {
            let v = cell(j);
            v.split('.').next().unwrap_or("").trim().parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| bad(k + 1, format!("{what} {v:?} is not a positive number")))
        };
        let column = FtsColumn { long_name: cell(1).to_ascii_uppercase(), short_name: cell(2).to_ascii_uppercase(), kind: cell(3).to_ascii_uppercase(), start: number(4, "start")?, width: number(5, "width")? };
        if column.long_name.is_empty() && column.short_name.is_empty() {
            return Err(bad(k + 1, "a column with neither a long nor a short name".into()));
        }
        layout.columns.push(column);
    }
    if layout.columns.is_empty() {
        return Err(bad(ruler_at + 2, "no columns under the ruler".into()));
    }
    let end = layout.columns.iter().map(|c| c.start + c.width - 1).max().unwrap_or(0);
    layout.record_length = declared_length.unwrap_or(end);
    if let Some(c) = layout.columns.iter().find(|c| c.start + c.width - 1 > layout.record_length) {
        return Err(AscqrError::Other(format!(
            "{}: column {} ends at {}, past the record length {}",
            path.display(),
            c.long_name,
            c.start + c.width - 1,
            layout.record_length
        )));
    }
    Ok(layout)
}

/// The text of an `.fts` for `layout`, in the shape [`parse_fts_text`] reads.
pub fn fts_text(layout: &FtsLayout) -> String {
    let rows: Vec<[String; 7]> = layout
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| [(i + 1).to_string(), c.long_name.clone(), c.short_name.clone(), c.kind.clone(), c.start.to_string(), c.width.to_string(), String::new()])
        .collect();
    let titles = ["Col", "Long Name", "Short Name", "Type", "Start", "Width", "Label"];
    let widths: Vec<usize> = (0..7).map(|j| rows.iter().map(|r| r[j].len()).chain([titles[j].len()]).max().unwrap_or(1)).collect();
    let line = |cells: &[String]| cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string();
    let mut out = String::from("File Transfer Summary (written by ascqr)\n\n");
    if let Some(f) = &layout.data_file {
        out.push_str(&format!("Actual File Name:                      {f}\n"));
    }
    if let Some(n) = layout.rows {
        out.push_str(&format!("Exact File Quantity (Rows):            {n}\n"));
    }
    out.push_str(&format!("Exact File Record Length (Bytes):      {}\n", layout.record_length));
    out.push_str("Format:                                Fixed Column ASCII\n\n");
    out.push_str(&line(&titles.map(String::from)));
    out.push('\n');
    out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    out.push_str("\n- End of Document\n");
    out
}

/// A fixed-width file read through its layout, as [`Records`] named by long names.
pub struct FixedWidthRecords {
    reader: std::io::BufReader<std::fs::File>,
    path: PathBuf,
    fts: PathBuf,
    layout: FtsLayout,
    names: Vec<String>,
    line: Vec<u8>,
    row: u64,
}

impl FixedWidthRecords {
    pub fn open(path: &Path, fts: &Path) -> Result<Self> {
        let layout = parse_fts(fts)?;
        if let Some(name) = &layout.data_file {
            let actual = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            if !name.eq_ignore_ascii_case(&actual) {
                return Err(AscqrError::Other(format!("{}: describes {name}, not {actual}", fts.display())));
            }
        }
        Self::with_layout(path, layout, fts)
    }

    /// Reads `path` through a layout known without an `.fts` (CCLF's published positions);
    /// `described_by` names the layout in messages.
    pub fn with_layout(path: &Path, layout: FtsLayout, described_by: &Path) -> Result<Self> {
        let names = layout.columns.iter().map(|c| if c.long_name.is_empty() { long_name(&c.short_name) } else { c.long_name.clone() }).collect();
        let file = std::fs::File::open(path).map_err(|e| AscqrError::io(path, e))?;
        Ok(FixedWidthRecords {
            reader: std::io::BufReader::with_capacity(1 << 20, file),
            path: path.to_path_buf(),
            fts: described_by.to_path_buf(),
            layout,
            names,
            line: Vec::new(),
            row: 0,
        })
    }
}

impl Records for FixedWidthRecords {
    fn names(&self) -> &[String] {
        &self.names
    }

    fn read(&mut self, record: &mut csv::StringRecord) -> Result<Option<u64>> {
        self.line.clear();
        let n = self.reader.read_until(b'\n', &mut self.line).map_err(|e| AscqrError::io(&self.path, e))?;
        while self.line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            self.line.pop();
        }
        if n == 0 || (self.line.is_empty() && self.reader.fill_buf().map(|b| b.is_empty()).unwrap_or(true)) {
            if let Some(expected) = self.layout.rows.filter(|r| *r != self.row) {
                return Err(AscqrError::Other(format!(
                    "{}: {} rows, but {} says {expected}: the file is incomplete or the layout is not its own",
                    self.path.display(),
                    self.row,
                    self.fts.display()
                )));
            }
            return Ok(None);
        }
        self.row += 1;
        if self.line.len() != self.layout.record_length {
            return Err(AscqrError::BadRow {
                file: self.path.clone(),
                row: self.row,
                message: format!("line has {} characters, {} gives records of {}", self.line.len(), self.fts.display(), self.layout.record_length),
            });
        }
        let text = std::str::from_utf8(&self.line).map_err(|e| AscqrError::BadRow {
            file: self.path.clone(),
            row: self.row,
            message: format!("not ASCII text at character {}", e.valid_up_to() + 1),
        })?;
        record.clear();
        for c in &self.layout.columns {
            record.push_field(text.get(c.start - 1..c.start - 1 + c.width).unwrap_or("").trim());
        }
        Ok(Some(self.row))
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens one file of a CCW delivery: fixed width with its `.fts`, or CSV with a header.
pub fn open(path: &Path) -> Result<Box<dyn Records>> {
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    if ext == "csv" {
        let first = std::fs::File::open(path).map_err(|e| AscqrError::io(path, e)).and_then(|f| {
            let mut line = String::new();
            std::io::BufReader::new(f).read_line(&mut line).map_err(|e| AscqrError::io(path, e))?;
            Ok(line)
        })?;
        let delimiter = if first.contains('|') { b'|' } else { b',' };
        return Ok(Box::new(DelimitedRecords::open(path, delimiter)?.rename(long_name)));
    }
    let fts = path.with_extension("fts");
    if !fts.is_file() {
        return Err(AscqrError::Other(format!(
            "{}: a fixed-width file without its layout: expected {} beside it",
            path.display(),
            fts.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
        )));
    }
    Ok(Box::new(FixedWidthRecords::open(path, &fts)?))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Mbsf,
    CarrierClaims,
    CarrierLines,
    OutpatientClaims,
    OutpatientRevenue,
    InpatientClaims,
    Medpar,
}

impl Kind {
    /// The kinds a delivery must have (MedPAR may stand in for inpatient claims).
    const REQUIRED: [Kind; 6] = [Kind::Mbsf, Kind::CarrierClaims, Kind::CarrierLines, Kind::OutpatientClaims, Kind::OutpatientRevenue, Kind::InpatientClaims];

    fn describe(self) -> &'static str {
        match self {
            Kind::Mbsf => "MBSF (mbsf*)",
            Kind::CarrierClaims => "carrier claims (bcarrier_claims*)",
            Kind::CarrierLines => "carrier lines (bcarrier_line*)",
            Kind::OutpatientClaims => "outpatient base claims (outpatient_base_claims*)",
            Kind::OutpatientRevenue => "outpatient revenue centers (outpatient_revenue_center*)",
            Kind::InpatientClaims => "inpatient base claims (inpatient_base_claims*) or MedPAR (medpar*)",
            Kind::Medpar => "MedPAR (medpar*)",
        }
    }
}

enum Found {
    Table(Kind),
    Ignored(&'static str),
}

fn kind_of(name: &str) -> Option<Found> {
    let n = name.to_ascii_lowercase();
    let has = |p: &str| n.starts_with(p) || n.contains(&format!("_{p}")) || n.contains(&format!("/{p}"));
    Some(if has("mbsf") {
        Found::Table(Kind::Mbsf)
    } else if has("bcarrier_claims") || has("carrier_claims") {
        Found::Table(Kind::CarrierClaims)
    } else if has("bcarrier_line") || has("carrier_line") {
        Found::Table(Kind::CarrierLines)
    } else if has("outpatient_base_claims") || has("outpatient_claims") {
        Found::Table(Kind::OutpatientClaims)
    } else if has("outpatient_revenue") {
        Found::Table(Kind::OutpatientRevenue)
    } else if has("inpatient_base_claims") || has("inpatient_claims") {
        Found::Table(Kind::InpatientClaims)
    } else if has("inpatient_revenue") {
        Found::Ignored("inpatient revenue centers are not needed: the base claim is one row per stay")
    } else if has("medpar") {
        Found::Table(Kind::Medpar)
    } else {
        return None;
    })
}

/// The files of a CCW delivery by kind, and the files passed over with the reason.
/// Every file the CCW layout reads in `dir` (data files; their `.fts` layouts are read too).
pub(super) fn input_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(discover(dir)?.0.into_values().flatten().collect())
}

fn discover(dir: &Path) -> Result<(BTreeMap<Kind, Vec<PathBuf>>, Vec<String>)> {
    let mut files: BTreeMap<Kind, Vec<PathBuf>> = BTreeMap::new();
    let mut passed_over = Vec::new();
    for path in super::source::files_under(dir)? {
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        if !matches!(ext.as_str(), "dat" | "csv" | "txt") {
            continue; // .fts layouts, SAS read-in programs, notes
        }
        match kind_of(&name) {
            Some(Found::Table(kind)) => files.entry(kind).or_default().push(path),
            Some(Found::Ignored(why)) => passed_over.push(format!("{}: {why}", path.display())),
            None => passed_over.push(format!("{}: not a file of a table the measures read", path.display())),
        }
    }
    for v in files.values_mut() {
        v.sort();
    }
    // MedPAR stands in for inpatient claims; given both, the claims are read and MedPAR passed
    // over (reading both would count every stay twice).
    if let Some(medpar) = files.remove(&Kind::Medpar) {
        if files.contains_key(&Kind::InpatientClaims) {
            passed_over.extend(medpar.iter().map(|p| format!("{}: MedPAR passed over: inpatient base claims are read instead", p.display())));
        } else {
            files.insert(Kind::InpatientClaims, medpar);
        }
    }
    for kind in Kind::REQUIRED {
        if !files.contains_key(&kind) {
            let lines_without_claims = matches!(kind, Kind::CarrierClaims | Kind::OutpatientClaims);
            return Err(AscqrError::MissingSourceFile {
                dir: dir.to_path_buf(),
                what: format!("CCW {}{}", kind.describe(), if lines_without_claims { " (line files need their claims files)" } else { "" }),
                pattern: "a .dat with its .fts, or a .csv with a header".into(),
            });
        }
    }
    passed_over.sort();
    Ok((files, passed_over))
}

/// Where the claim and line files are staged by shard while they are joined.
pub struct Staging {
    pub dir: PathBuf,
    pub shards: u32,
}

const SOURCE_FILE: &str = "_source_file";
const SOURCE_ROW: &str = "_source_row";
const CLAIM_FOUND: &str = "_claim_found";

/// Spills every row of `files` (only the `names` columns, as text) by shard under `dir`
/// ([`super::spill`]). A claim file's rows are counted here as read and merged into their lines;
/// a line file's rows are counted when they are mapped, after the join.
fn stage(files: &[PathBuf], names: &[String], dir: &Path, shards: u32, report: &mut TableReport, claim_file: bool) -> Result<Spilled> {
    let mut columns: Vec<ColumnSpec> = names.iter().map(|n| ColumnSpec::plain(n.clone(), ColumnType::Str)).collect();
    columns.push(ColumnSpec::plain(SOURCE_FILE, ColumnType::Str));
    columns.push(ColumnSpec::plain(SOURCE_ROW, ColumnType::Int));
    let mut spill = PartitionSpill::create(dir, "staged", columns, shards, 250_000)?;
    let bene_at = names.iter().position(|n| n == "BENE_ID").expect("BENE_ID is staged");
    for path in files {
        let mut records = open(path)?;
        let at: Vec<Option<usize>> = names.iter().map(|n| records.names().iter().position(|h| h == n)).collect();
        for key in ["BENE_ID", "CLM_ID"] {
            if !records.names().iter().any(|h| h == key) {
                return Err(AscqrError::MissingColumn { file: path.clone(), table: "CCW claims".into(), column: key.into() });
            }
        }
        let file = path.display().to_string();
        let mut record = csv::StringRecord::new();
        while let Some(row) = records.read(&mut record)? {
            if claim_file {
                report.tally(path, Tally::Read);
                report.tally(path, Tally::Merged);
            }
            let mut cells: Vec<Cell> = at.iter().map(|i| i.and_then(|i| record.get(i)).filter(|v| !v.is_empty()).map_or(Cell::Null, Cell::Str)).collect();
            let shard = match cells[bene_at] {
                Cell::Str(id) => super::extract::shard_of(id, shards),
                _ => 0,
            };
            cells.push(Cell::Str(&file));
            cells.push(Cell::Int(row as i64));
            spill.push(shard, &cells)?;
        }
    }
    spill.finish()
}

/// Rows of a joined, text-typed frame as [`Records`]: each row knows the file and row it was
/// read from.
struct FrameRecords {
    columns: Vec<StringChunked>,
    names: Vec<String>,
    files: StringChunked,
    rows: Int64Chunked,
    next: usize,
    path: PathBuf,
}

impl FrameRecords {
    fn new(df: &DataFrame) -> Result<Self> {
        let ctx = || "reading staged CCW rows".to_string();
        let mut df = df.clone();
        df.rechunk_mut();
        let names: Vec<String> = df.get_column_names().iter().map(|n| n.to_string()).filter(|n| !n.starts_with('_')).collect();
        let columns = names.iter().map(|n| df.column(n.as_str()).and_then(|c| c.str().cloned())).collect::<PolarsResult<Vec<_>>>().ctx(ctx)?;
        let files = df.column(SOURCE_FILE).and_then(|c| c.str().cloned()).ctx(ctx)?;
        let rows = df.column(SOURCE_ROW).and_then(|c| c.i64().cloned()).ctx(ctx)?;
        Ok(FrameRecords { columns, names, files, rows, next: 0, path: PathBuf::new() })
    }
}

impl Records for FrameRecords {
    fn names(&self) -> &[String] {
        &self.names
    }
    fn read(&mut self, record: &mut csv::StringRecord) -> Result<Option<u64>> {
        let i = self.next;
        if i >= self.rows.len() {
            return Ok(None);
        }
        self.next += 1;
        record.clear();
        for c in &self.columns {
            record.push_field(c.get(i).unwrap_or(""));
        }
        let file = self.files.get(i).unwrap_or("");
        if self.path.as_os_str() != file {
            self.path = PathBuf::from(file);
        }
        Ok(Some(self.rows.get(i).unwrap_or(0) as u64))
    }
    fn path(&self) -> &Path {
        &self.path
    }
}

const ORPHAN_REASON: &str = "claim line without its claim in the claims file (BENE_ID and CLM_ID)";

/// Joins one shard's staged lines to their claims and maps them onto `table`.
fn join_shard(claims: DataFrame, lines: DataFrame, shard: u32, table: Table, ing: &mut Ingests, rejects: &mut RejectWriter) -> Result<()> {
    let ctx = || format!("joining shard {shard} of the {} lines and claims", table.name());
    let by_source = SortMultipleOptions::default().with_maintain_order(true);
    let lines = lines.sort([SOURCE_FILE, SOURCE_ROW], by_source.clone()).ctx(ctx)?;
    let claims = claims.sort([SOURCE_FILE, SOURCE_ROW], by_source).ctx(ctx)?;
    let keys = ["BENE_ID", "CLM_ID"];
    let line_names: Vec<String> = lines.get_column_names().iter().map(|n| n.to_string()).collect();
    let claim_only: Vec<Expr> = claims
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .filter(|n| keys.contains(&n.as_str()) || (!line_names.contains(n) && !n.starts_with('_')))
        .map(|n| col(n.as_str()))
        .collect();
    let claims = claims.lazy().select(claim_only).unique_stable(Some(cols(keys)), UniqueKeepStrategy::First).with_column(lit(true).alias(CLAIM_FOUND));
    let key_exprs = keys.map(col);
    let mut left = JoinArgs::new(JoinType::Left);
    left.maintain_order = MaintainOrderJoin::Left;
    let joined = lines.lazy().join(claims, key_exprs.clone(), key_exprs, left).collect().ctx(ctx)?;
    let found = joined.column(CLAIM_FOUND).ctx(ctx)?.is_not_null();
    let orphans = joined.filter(&!found.clone()).ctx(ctx)?;
    let matched = joined.filter(&found).ctx(ctx)?.drop(CLAIM_FOUND).ctx(ctx)?;
    let ingest = ing.get(table);
    let mut records = FrameRecords::new(&matched)?;
    rif::one_to_one(&mut records, table, ingest, rejects)?;
    let mut orphan_records = FrameRecords::new(&orphans.drop(CLAIM_FOUND).ctx(ctx)?)?;
    let mut record = csv::StringRecord::new();
    while let Some(row) = orphan_records.read(&mut record)? {
        let path = orphan_records.path().to_path_buf();
        ingest.report.tally(&path, Tally::Read);
        ingest.report.tally(&path, Tally::Rejected(ORPHAN_REASON));
        let rejection = Rejection { reason: ORPHAN_REASON.into(), column: "CLM_ID".into(), value: "(no claims-file row)".into() };
        // The record shows the line's fields without the beneficiary id.
        let shown: Vec<(&str, String)> =
            orphan_records.names.iter().zip(record.iter()).filter(|(n, _)| n.as_str() != "BENE_ID").map(|(n, v)| (n.as_str(), v.to_string())).collect();
        rejects.write(table, &path, row, &rejection, &shown)?;
    }
    Ok(())
}

/// Reads a CCW delivery in `dir` (see the module documentation): checks every row, writes
/// rejects, passes accepted rows to the sinks. Claims and lines are staged under `staging`.
pub fn ingest_ccw(dir: &Path, rejects: &mut RejectWriter, sink_for: &mut SinkFor, staging: &Staging, progress: &indicatif::ProgressBar) -> Result<(Vec<TableReport>, Vec<String>)> {
    let (files, passed_over) = discover(dir)?;
    let mut ing = Ingests::new(sink_for)?;
    rif::beneficiaries(&files[&Kind::Mbsf], &open, &mut ing, rejects, progress)?;
    for (table, claims_kind, lines_kind) in [(Table::Carrier, Kind::CarrierClaims, Kind::CarrierLines), (Table::Outpatient, Kind::OutpatientClaims, Kind::OutpatientRevenue)] {
        let mut names = vec!["BENE_ID".to_string(), "CLM_ID".to_string()];
        for n in rif::source_names(table) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        let claims_dir = staging.dir.join(format!("{}_claims", table.name()));
        let lines_dir = staging.dir.join(format!("{}_lines", table.name()));
        progress.set_message(format!("staging {} claims and lines", table.name()));
        let ingest = ing.get(table);
        ingest.report.files = files[&claims_kind].len() + files[&lines_kind].len();
        let claims = stage(&files[&claims_kind], &names, &claims_dir, staging.shards, &mut ingest.report, true)?;
        let lines = stage(&files[&lines_kind], &names, &lines_dir, staging.shards, &mut ingest.report, false)?;
        // A column no claims file has is taken from the line files alone, and the reverse.
        for shard in 0..staging.shards {
            join_shard(drop_empty(claims.read(shard)?)?, drop_empty(lines.read(shard)?)?, shard, table, &mut ing, rejects)?;
        }
        claims.remove()?;
        lines.remove()?;
    }
    rif::inpatient(&files[&Kind::InpatientClaims], &open, &mut ing, rejects, progress)?;
    Ok((ing.finish()?, passed_over.into_iter().map(|p| format!("passed over {p}")).collect()))
}

/// A staged part without the columns no file of its kind had (all empty), so the join takes
/// each field from the file that carries it.
fn drop_empty(df: DataFrame) -> Result<DataFrame> {
    let keep: Vec<String> = df
        .columns()
        .iter()
        .filter(|c| c.name().starts_with('_') || ["BENE_ID", "CLM_ID"].contains(&c.name().as_str()) || c.null_count() < c.len() || c.is_empty())
        .map(|c| c.name().to_string())
        .collect();
    df.select(keep).ctx(|| "reading staged CCW rows".to_string())
}

/// Writes a canonical extract as a CCW delivery in `out`: fixed-width `.dat` files with their
/// `.fts`, MBSF A/B/C/D by year with long names, carrier and outpatient split into claim and line
/// files. `canonical` is either a raw canonical folder (Parquet tables, read whole: small and demo
/// scale) or a prepared extract (read one shard at a time, in bounded memory at any scale).
/// What the CCW layout cannot hold (modifiers 3 and 4 of carrier and outpatient lines) is
/// dropped. For tests, demonstrations and benchmarks of the CCW reader.
pub fn write_canonical_as_ccw(canonical: &Path, out: &Path) -> Result<Vec<PathBuf>> {
    write_canonical_as_ccw_with(canonical, out, false)
}

/// [`write_canonical_as_ccw`], with the inpatient stays written as MedPAR (`medpar_all`, MedPAR
/// names: `MEDPAR_ID`, `ADMSN_DT`, `DGNS_n_CD`, …) instead of inpatient base claims.
pub fn write_canonical_as_ccw_with(canonical: &Path, out: &Path, inpatient_as_medpar: bool) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|e| AscqrError::io(out, e))?;
    let shards = if super::extract::is_prepared(canonical) { Some(super::extract::read_manifest(canonical)?.shards) } else { None };
    let chunk = |i: u32, t: Table| -> Result<DataFrame> {
        match shards {
            Some(_) => crate::output::read_parquet(&super::extract::shard_files(canonical, t)?[i as usize]),
            None => read_canonical_table(canonical, t),
        }
    };
    let chunks = shards.unwrap_or(1);
    // Fixed widths must hold every row's value: a first pass measures them, a second writes.
    let mut widths: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
    let mut min_year = i32::MAX;
    for i in 0..chunks {
        let tables = CcwChunk::read(&|t| chunk(i, t))?;
        min_year = min_year.min(tables.min_year().unwrap_or(i32::MAX));
        for file in tables.files(None, inpatient_as_medpar)? {
            let w = widths.entry(file.kind).or_insert_with(|| vec![1; file.names.len()]);
            for row in &file.rows {
                for (w, v) in w.iter_mut().zip(row) {
                    *w = (*w).max(v.len());
                }
            }
        }
    }
    let min_year = if min_year == i32::MAX { 2020 } else { min_year };
    let mut open: BTreeMap<String, (crate::output::AtomicFile, Vec<String>, &'static str, u64)> = BTreeMap::new();
    for i in 0..chunks {
        let tables = CcwChunk::read(&|t| chunk(i, t))?;
        for file in tables.files(Some(min_year), inpatient_as_medpar)? {
            let dat = out.join(format!("{}.dat", file.stem));
            if !open.contains_key(&file.stem) {
                open.insert(file.stem.clone(), (crate::output::AtomicFile::create(&dat)?, file.names.clone(), file.kind, 0));
            }
            let (f, _, kind, rows) = open.get_mut(&file.stem).expect("opened above");
            let w = &widths[kind];
            for r in &file.rows {
                let line: String = r.iter().zip(w).map(|(v, w)| format!("{v:<w$}")).collect();
                writeln!(f.writer(), "{line}").map_err(|e| AscqrError::io(&dat, e))?;
            }
            *rows += file.rows.len() as u64;
        }
    }
    let mut written = Vec::new();
    for (stem, (f, names, kind, rows)) in open {
        let mut columns = Vec::new();
        let mut start = 1;
        for (name, w) in names.iter().zip(&widths[kind]) {
            let type_ = if name.ends_with("_DT") { "DATE" } else { "CHAR" };
            columns.push(FtsColumn { long_name: name.clone(), short_name: String::new(), kind: type_.into(), start, width: *w });
            start += w;
        }
        let layout = FtsLayout { data_file: Some(format!("{stem}.dat")), rows: Some(rows), record_length: start - 1, columns };
        f.commit()?;
        crate::output::write_atomic(&out.join(format!("{stem}.fts")), fts_text(&layout).as_bytes())?;
        written.push(out.join(format!("{stem}.dat")));
    }
    Ok(written)
}

/// [`write_canonical_as_ccw`] for a raw canonical folder of any size or format: ingested first
/// into a temporary prepared extract beside `out` (removed afterwards), then written one shard
/// at a time. What `ascqr synth --ccw` does.
pub fn write_raw_as_ccw(raw: &Path, out: &Path, progress: &indicatif::ProgressBar) -> Result<Vec<PathBuf>> {
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| AscqrError::io(parent, e))?;
    let scratch = tempfile::Builder::new().prefix(".ascqr-ccw").tempdir_in(parent).map_err(|e| AscqrError::io(parent, e))?;
    let extract = scratch.path().join("extract");
    super::extract::ingest(raw, &super::extract::IngestOptions { layout: super::validate::Layout::Canonical, shards: None }, &extract, progress)?;
    write_canonical_as_ccw(&extract, out)
}

/// The five canonical tables of one chunk (a whole raw extract, or one shard of a prepared one).
struct CcwChunk {
    beneficiaries: DataFrame,
    enrollment: DataFrame,
    carrier: DataFrame,
    outpatient: DataFrame,
    inpatient: DataFrame,
}

/// Rows of one CCW file from one chunk: `kind` names the file's column set (its widths).
struct CcwRows {
    stem: String,
    kind: &'static str,
    names: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl CcwChunk {
    fn read(read: &dyn Fn(Table) -> Result<DataFrame>) -> Result<Self> {
        Ok(CcwChunk {
            beneficiaries: read(Table::Beneficiaries)?,
            enrollment: read(Table::Enrollment)?,
            carrier: read(Table::Carrier)?,
            outpatient: read(Table::Outpatient)?,
            inpatient: read(Table::Inpatient)?,
        })
    }

    fn min_year(&self) -> Option<i32> {
        text_column(self.enrollment.column("year").ok()?).iter().flatten().filter_map(|y| y.parse::<i32>().ok()).min()
    }

    /// The chunk's rows of every CCW file. A beneficiary with no enrollment gets an MBSF row of
    /// `min_year` (when measuring widths, `None`: the chunk's own first year).
    fn files(&self, min_year: Option<i32>, inpatient_as_medpar: bool) -> Result<Vec<CcwRows>> {
        let mut files = self.mbsf(min_year.or_else(|| self.min_year()).unwrap_or(2020))?;
        let claim_level = |name: &str| matches!(name, "claim_from_date" | "billing_npi" | "principal_dx" | "dx_version") || name.starts_with("dx_");
        files.extend(split_claims(&self.carrier, Table::Carrier, ["bcarrier_claims_k", "bcarrier_line_k"], claim_level, &["modifier_3", "modifier_4"])?);
        let revenue_level = |name: &str| matches!(name, "line_num" | "revenue_center" | "revenue_center_date" | "hcpcs" | "modifier_1" | "modifier_2" | "units");
        files.extend(split_claims(
            &self.outpatient,
            Table::Outpatient,
            ["outpatient_base_claims_k", "outpatient_revenue_center_k"],
            |n| !revenue_level(n),
            &["modifier_3", "modifier_4"],
        )?);
        files.push(inpatient_rows(&self.inpatient, inpatient_as_medpar)?);
        Ok(files)
    }

    /// MBSF: one row per beneficiary and year with twelve buy-in and HMO codes.
    fn mbsf(&self, min_year: i32) -> Result<Vec<CcwRows>> {
        let (benes, enrol) = (&self.beneficiaries, &self.enrollment);
        let text = |df: &DataFrame, c: &str| -> Result<Vec<Option<String>>> { Ok(text_column(df.column(c).ctx(|| c.to_string())?)) };
        let bene_ids = text(benes, "bene_id")?;
        let (births, sexes, deaths) = (text(benes, "birth_date")?, text(benes, "sex")?, text(benes, "death_date")?);
        let (e_bene, e_year, e_first, e_last) = (text(enrol, "bene_id")?, text(enrol, "year")?, text(enrol, "first_month")?, text(enrol, "last_month")?);
        let (e_a, e_b, e_ma) = (text(enrol, "part_a")?, text(enrol, "part_b")?, text(enrol, "medicare_advantage")?);
        let mut months: BTreeMap<(String, i32), [(char, char); 12]> = BTreeMap::new();
        for i in 0..e_bene.len() {
            let (Some(b), Some(y)) = (&e_bene[i], e_year[i].as_ref().and_then(|y| y.parse::<i32>().ok())) else { continue };
            let slot = months.entry((b.clone(), y)).or_insert([('0', '0'); 12]);
            let (f, l) = (e_first[i].as_ref().and_then(|v| v.parse::<usize>().ok()).unwrap_or(1), e_last[i].as_ref().and_then(|v| v.parse::<usize>().ok()).unwrap_or(12));
            let t = |v: &Option<String>| v.as_deref() == Some("true");
            let buyin = match (t(&e_a[i]), t(&e_b[i])) {
                (true, true) => '3',
                (true, false) => '1',
                (false, true) => '2',
                _ => '0',
            };
            let hmo = if t(&e_ma[i]) { 'C' } else { '0' };
            for m in f..=l.min(12) {
                slot[m - 1] = (buyin, hmo);
            }
        }
        let mut by_year: BTreeMap<i32, Vec<Vec<String>>> = BTreeMap::new();
        for (k, id) in bene_ids.iter().enumerate() {
            let Some(id) = id else { continue };
            let mut years: Vec<i32> = months.range((id.clone(), i32::MIN)..=(id.clone(), i32::MAX)).map(|((_, y), _)| *y).collect();
            if years.is_empty() {
                years.push(min_year);
            }
            for y in years {
                let codes = months.get(&(id.clone(), y)).copied().unwrap_or([('0', '0'); 12]);
                let mut row = vec![id.clone(), y.to_string(), births[k].clone().unwrap_or_default(), deaths[k].clone().unwrap_or_default(), sexes[k].clone().unwrap_or_default()];
                row.extend(codes.iter().map(|(b, _)| b.to_string()));
                row.extend(codes.iter().map(|(_, h)| h.to_string()));
                by_year.entry(y).or_default().push(row);
            }
        }
        let mut names: Vec<String> = ["BENE_ID", "BENE_ENROLLMT_REF_YR", "BENE_BIRTH_DT", "BENE_DEATH_DT", "SEX_IDENT_CD"].map(String::from).to_vec();
        names.extend((1..=12).map(|m| format!("MDCR_ENTLMT_BUYIN_IND_{m:02}")));
        names.extend((1..=12).map(|m| format!("HMO_IND_{m:02}")));
        Ok(by_year.into_iter().map(|(year, rows)| CcwRows { stem: format!("mbsf_abcd_summary_{year}"), kind: "mbsf", names: names.clone(), rows }).collect())
    }
}

/// Inpatient stays as inpatient base claims, or as MedPAR.
fn inpatient_rows(inpatient: &DataFrame, as_medpar: bool) -> Result<CcwRows> {
    let mut columns = Table::Inpatient.spec().columns();
    if as_medpar {
        // MedPAR has no claim from/thru dates or separate principal diagnosis: the admission and
        // discharge dates and the first diagnosis stand for them.
        columns.retain(|c| !matches!(c.rif.as_str(), "CLM_FROM_DT" | "CLM_THRU_DT" | "PRNCPAL_DGNS_CD"));
    }
    let names: Vec<String> = columns.iter().map(|c| if as_medpar { rif::medpar_name(&c.rif).unwrap_or_else(|| c.rif.clone()) } else { c.rif.clone() }).collect();
    let cols: Vec<Vec<Option<String>>> = columns.iter().map(|c| Ok(text_column(inpatient.column(&c.name).ctx(|| c.name.clone())?))).collect::<Result<_>>()?;
    let rows: Vec<Vec<String>> = (0..inpatient.height()).map(|i| cols.iter().map(|c| c[i].clone().unwrap_or_default()).collect()).collect();
    let (stem, kind) = if as_medpar { ("medpar_all_file", "medpar") } else { ("inpatient_base_claims_k", "inpatient") };
    Ok(CcwRows { stem: stem.into(), kind, names, rows })
}

/// A whole canonical table of a raw extract written as Parquet (for the layout writers).
pub(super) fn read_canonical_table(canonical: &Path, t: Table) -> Result<DataFrame> {
    let files = super::source::table_files(canonical, t)?;
    let frames = files.iter().map(|f| crate::output::read_parquet(&f.path)).collect::<Result<Vec<_>>>()?;
    let mut df = frames[0].clone();
    for f in &frames[1..] {
        df.vstack_mut(f).ctx(|| format!("reading {}", t.name()))?;
    }
    Ok(df)
}

/// A column as CCW text: dates `YYYYMMDD`, numbers as written, missing as `None`.
pub(super) fn text_column(c: &polars::prelude::Column) -> Vec<Option<String>> {
    (0..c.len())
        .map(|i| match c.get(i).unwrap_or(AnyValue::Null) {
            AnyValue::Null => None,
            AnyValue::Date(d) => Some(super::sink::days_to_date(d).format("%Y%m%d").to_string()),
            AnyValue::String(s) => Some(s.to_string()),
            AnyValue::StringOwned(s) => Some(s.to_string()),
            AnyValue::Boolean(b) => Some(b.to_string()),
            other => Some(other.to_string()),
        })
        .collect()
}

/// A claim table's rows split into a claim file (one row per claim: its first line's claim-level
/// fields) and a line file.
fn split_claims(df: &DataFrame, table: Table, stems: [&'static str; 2], on_claim: impl Fn(&str) -> bool, dropped: &[&str]) -> Result<[CcwRows; 2]> {
    let columns = table.spec().columns();
    let text: BTreeMap<String, Vec<Option<String>>> = columns.iter().map(|c| Ok((c.name.clone(), text_column(df.column(c.name.as_str()).ctx(|| c.name.clone())?)))).collect::<Result<_>>()?;
    let keys = ["bene_id", "claim_id"];
    let rif_of = |name: &str| columns.iter().find(|c| c.name == name).map(|c| c.rif.clone()).unwrap_or_default();
    let mut claim_cols: Vec<String> = keys.map(String::from).to_vec();
    let mut line_cols: Vec<String> = keys.map(String::from).to_vec();
    line_cols.push("claim_thru_date".into());
    for c in &columns {
        if keys.contains(&c.name.as_str()) || dropped.contains(&c.name.as_str()) {
            continue;
        }
        if on_claim(&c.name) {
            if c.name != "bill_type" {
                claim_cols.push(c.name.clone());
            }
        } else if c.name != "claim_thru_date" {
            line_cols.push(c.name.clone());
        }
    }
    if !claim_cols.iter().any(|c| c == "claim_thru_date") {
        claim_cols.push("claim_thru_date".into());
    }
    let mut claim_names: Vec<String> = claim_cols.iter().map(|c| rif_of(c)).collect();
    let has_bill_type = columns.iter().any(|c| c.name == "bill_type");
    if has_bill_type {
        claim_names.extend(["CLM_FAC_TYPE_CD", "CLM_SRVC_CLSFCTN_TYPE_CD", "CLM_FREQ_CD"].map(String::from));
    }
    let line_names: Vec<String> = line_cols.iter().map(|c| rif_of(c)).collect();
    let mut seen = std::collections::HashSet::new();
    let mut claim_rows = Vec::new();
    let mut line_rows = Vec::new();
    for i in 0..df.height() {
        let get = |c: &str| text[c][i].clone().unwrap_or_default();
        if seen.insert((get("bene_id"), get("claim_id"))) {
            let mut row: Vec<String> = claim_cols.iter().map(|c| get(c)).collect();
            if has_bill_type {
                let b = get("bill_type");
                row.extend((0..3).map(|k| b.get(k..k + 1).unwrap_or("").to_string()));
            }
            claim_rows.push(row);
        }
        line_rows.push(line_cols.iter().map(|c| get(c)).collect());
    }
    Ok([
        CcwRows { stem: stems[0].into(), kind: stems[0], names: claim_names, rows: claim_rows },
        CcwRows { stem: stems[1].into(), kind: stems[1], names: line_names, rows: line_rows },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_fts_round_trips_and_short_names_read_as_long_names() {
        let layout = FtsLayout {
            data_file: Some("bcarrier_line_k_2022.dat".into()),
            rows: Some(3),
            record_length: 27,
            columns: vec![
                FtsColumn { long_name: "BENE_ID".into(), short_name: "BENE_ID".into(), kind: "CHAR".into(), start: 1, width: 15 },
                FtsColumn { long_name: "LINE_1ST_EXPNS_DT".into(), short_name: "EXPNSDT1".into(), kind: "DATE".into(), start: 16, width: 8 },
                FtsColumn { long_name: "LINE_PLACE_OF_SRVC_CD".into(), short_name: "PLCSRVC".into(), kind: "CHAR".into(), start: 24, width: 2 },
                FtsColumn { long_name: "PRVDR_SPCLTY".into(), short_name: "HCFASPCL".into(), kind: "CHAR".into(), start: 26, width: 2 },
            ],
        };
        let text = fts_text(&layout);
        assert_eq!(parse_fts_text(&text, Path::new("x.fts")).unwrap(), layout);
        assert_eq!(long_name("plcsrvc"), "LINE_PLACE_OF_SRVC_CD");
        assert_eq!(long_name("BUYIN01"), "MDCR_ENTLMT_BUYIN_IND_01");
        assert_eq!(long_name("HCPCS_CD"), "HCPCS_CD");
    }

    #[test]
    fn a_broken_fts_is_refused_with_its_line() {
        let no_table = parse_fts_text("Actual File Name: x.dat\n", Path::new("x.fts")).unwrap_err().to_string();
        assert!(no_table.contains("no column table"), "{no_table}");
        let text = "Col  Long Name  Short  Type  Start  Width\n---  ---------  -----  ----  -----  -----\n1    BENE_ID    BENE   CHAR  one    15\n";
        let bad = parse_fts_text(text, Path::new("x.fts")).unwrap_err().to_string();
        assert!(bad.contains("x.fts: row 3") && bad.contains("start \"one\""), "{bad}");
        let text = "Exact File Record Length: 10\nCol  Long Name  Short  Type  Start  Width\n---  ---------  -----  ----  -----  -----\n1    BENE_ID    BENE   CHAR  1      15\n";
        let past = parse_fts_text(text, Path::new("x.fts")).unwrap_err().to_string();
        assert!(past.contains("past the record length 10"), "{past}");
    }

    #[test]
    fn files_are_recognised_by_name() {
        let t = |n: &str| match kind_of(n) {
            Some(Found::Table(k)) => Some(k),
            _ => None,
        };
        assert_eq!(t("mbsf_abcd_summary_res000058038_req012172_2008.dat"), Some(Kind::Mbsf));
        assert_eq!(t("bcarrier_claims_k_res000050354_req005900_2019.dat"), Some(Kind::CarrierClaims));
        assert_eq!(t("bcarrier_line_k_2019_01.dat"), Some(Kind::CarrierLines));
        assert_eq!(t("OUTPATIENT_BASE_CLAIMS_K_2019.csv"), Some(Kind::OutpatientClaims));
        assert_eq!(t("outpatient_revenue_center_k_2019.dat"), Some(Kind::OutpatientRevenue));
        assert_eq!(t("inpatient_base_claims_k_2019.dat"), Some(Kind::InpatientClaims));
        assert!(matches!(kind_of("inpatient_revenue_center_k_2019.dat"), Some(Found::Ignored(_))));
        assert!(kind_of("readme.txt").is_none());
    }
}
