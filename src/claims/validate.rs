//! Validated ingestion: every row of every table is read, checked against the canonical model
//! and counted as accepted or rejected with a reason.
//!
//! Two classes of problem are treated differently, on purpose:
//! * **fatal** — a missing file or column, a column of the wrong type, a value that cannot be
//!   parsed as its type (a date that is not a date), a negative count. These mean the extract is
//!   not what it claims to be; the run stops with an error naming file, row, column and value.
//! * **quarantined** — a well-typed row whose code has the wrong shape (ICD-10-CM, ICD-10-PCS,
//!   HCPCS, revenue center, place of service, …) or whose required value is missing. Real extracts
//!   carry such rows; they are set aside with their reason in the reject file and counted.

use super::schema::{Column, ColumnType, Table};
use super::shapes::{has_shape, shape_label};
use super::sink::Cell;
use crate::error::{AscqrError, PolarsContext, Result};
use crate::output::AtomicFile;
use polars::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a row was set aside.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejection {
    /// A reason without the value, so rejections can be counted by reason.
    pub reason: String,
    pub column: String,
    pub value: String,
}

/// What happened to the rows of one canonical table.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct TableReport {
    pub table: String,
    pub files: usize,
    /// Source rows read (for the RIF layout: RIF rows that feed this table).
    pub rows_read: u64,
    /// Canonical rows that passed every check.
    pub rows_accepted: u64,
    /// Canonical rows set aside, with their reason in the reject file.
    pub rows_rejected: u64,
    /// Source rows folded into another row (RIF inpatient revenue lines into their stay, RIF
    /// beneficiary-years into one beneficiary); zero for the canonical layout.
    pub rows_merged: u64,
    /// Canonical rows derived from the source rows (differs from rows_read only for RIF, where a
    /// beneficiary-year row yields one enrollment row per run of months with the same entitlement).
    pub rows_produced: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// The same counts for each input file, in the order the files were read.
    pub inputs: Vec<InputCounts>,
    /// Optional columns a file of this table did not have, read as empty (only the ICD
    /// version columns may be absent: an empty version is read as ICD-10, see `ascqr ingest`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent_columns: Vec<String>,
}

/// What happened to the rows of one input file (for one canonical table).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct InputCounts {
    pub file: PathBuf,
    pub rows_read: u64,
    pub rows_produced: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    pub rows_merged: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
}

/// One event in a row's life, counted for its table and its input file.
pub enum Tally<'a> {
    /// A source row was read.
    Read,
    /// A source row was folded into another row.
    Merged,
    /// A canonical row was produced and accepted.
    Accepted,
    /// A canonical row was produced and set aside for this reason.
    Rejected(&'a str),
    /// A row accepted earlier was set aside later (an overlap found once a shard is sorted).
    Withdrawn(&'a str),
    /// A row accepted earlier was folded into an earlier row of the same key once a shard was
    /// sorted (a beneficiary's rows of several years).
    MergedLater,
}

impl TableReport {
    pub fn new(table: Table) -> Self {
        TableReport { table: table.name().to_string(), ..Default::default() }
    }

    /// Counts one event for the table and for `file`.
    pub fn tally(&mut self, file: &Path, event: Tally) {
        self.tally_times(file, event, 1);
    }

    /// Counts `n` events of one kind for the table and for `file` (a whole batch at once: the
    /// file is looked up once, not once per row).
    pub fn tally_times(&mut self, file: &Path, event: Tally, n: u64) {
        if n == 0 {
            return;
        }
        let at = match self.inputs.iter().rposition(|i| i.file == file) {
            Some(i) => i,
            None => {
                self.inputs.push(InputCounts { file: file.to_path_buf(), ..Default::default() });
                self.inputs.len() - 1
            }
        };
        let input = &mut self.inputs[at];
        match event {
            Tally::Read => {
                self.rows_read += n;
                input.rows_read += n;
            }
            Tally::Merged => {
                self.rows_merged += n;
                input.rows_merged += n;
            }
            Tally::Accepted => {
                self.rows_produced += n;
                self.rows_accepted += n;
                input.rows_produced += n;
                input.rows_accepted += n;
            }
            Tally::Rejected(reason) => {
                self.rows_produced += n;
                self.rows_rejected += n;
                input.rows_produced += n;
                input.rows_rejected += n;
                *self.rejected_by_reason.entry(reason.to_string()).or_default() += n;
                *input.rejected_by_reason.entry(reason.to_string()).or_default() += n;
            }
            Tally::MergedLater => {
                self.rows_produced -= n;
                self.rows_accepted -= n;
                self.rows_merged += n;
                input.rows_produced -= n;
                input.rows_accepted -= n;
                input.rows_merged += n;
            }
            Tally::Withdrawn(reason) => {
                self.rows_accepted -= n;
                self.rows_rejected += n;
                input.rows_accepted -= n;
                input.rows_rejected += n;
                *self.rejected_by_reason.entry(reason.to_string()).or_default() += n;
                *input.rejected_by_reason.entry(reason.to_string()).or_default() += n;
            }
        }
    }

    /// Every canonical row produced is accepted or rejected; every source row is produced or merged.
    pub fn is_balanced(&self) -> bool {
        self.rows_produced == self.rows_accepted + self.rows_rejected
    }
}

/// The outcome of validating one extract.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ValidationReport {
    pub claims_dir: PathBuf,
    pub layout: String,
    pub tables: Vec<TableReport>,
    pub reject_file: PathBuf,
}

impl ValidationReport {
    pub fn total_rejected(&self) -> u64 {
        self.tables.iter().map(|t| t.rows_rejected).sum()
    }

    /// The summary table printed by `ascqr validate`.
    pub fn summary_table(&self) -> String {
        summary_table(&self.tables)
    }
}

/// The summary table printed by `ascqr validate` and `ascqr ingest`.
pub fn summary_table(tables: &[TableReport]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<14} {:>6} {:>12} {:>12} {:>12} {:>10} {:>10}\n",
        "table", "files", "rows read", "produced", "accepted", "rejected", "merged"
    ));
    for t in tables {
        out.push_str(&format!(
            "{:<14} {:>6} {:>12} {:>12} {:>12} {:>10} {:>10}\n",
            t.table, t.files, t.rows_read, t.rows_produced, t.rows_accepted, t.rows_rejected, t.rows_merged
        ));
    }
    let reasons: Vec<_> = tables
        .iter()
        .flat_map(|t| t.rejected_by_reason.iter().map(move |(r, n)| (t.table.as_str(), r, n)))
        .collect();
    if reasons.is_empty() {
        out.push_str("\nno rows rejected\n");
    } else {
        out.push_str("\nrejected rows by reason:\n");
        for (table, reason, n) in reasons {
            out.push_str(&format!("  {table:<14} {n:>10}  {reason}\n"));
        }
    }
    out
}

/// Checks canonical rows given as text, one table at a time.
pub struct RowChecker {
    table: Table,
    columns: Vec<Column>,
    /// For each ICD column, the index of the column holding its code-set version.
    version_of: Vec<Option<usize>>,
}

fn version_column_name(table: Table, column: &str) -> Option<&'static str> {
    if column == "line_dx" {
        Some("line_dx_version")
    } else if column == "principal_dx" || column.starts_with("dx_") && column != "dx_version" {
        Some("dx_version")
    } else if column.starts_with("proc_") && column != "proc_version" && table == Table::Inpatient {
        Some("proc_version")
    } else {
        None
    }
}

impl RowChecker {
    pub fn new(table: Table) -> Self {
        let columns = table.spec().columns();
        let version_of = columns
            .iter()
            .map(|c| {
                let v = version_column_name(table, &c.name)?;
                columns.iter().position(|x| x.name == v)
            })
            .collect();
        RowChecker { table, columns, version_of }
    }

    pub fn table(&self) -> Table {
        self.table
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Checks one text row (cells in canonical column order, `None` for empty) and parses it into
    /// typed cells. Unparseable values are fatal errors naming `file`, `row` and the column;
    /// malformed codes and missing required values come back as a [`Rejection`].
    pub fn check_text<'a>(
        &self,
        cells: &'a [Option<&'a str>],
        file: &Path,
        row: u64,
        typed: &mut Vec<Cell<'a>>,
    ) -> Result<Option<Rejection>> {
        typed.clear();
        let mut rejection = None;
        for (i, c) in self.columns.iter().enumerate() {
            let value = cells[i];
            let bad = |expected: &str| AscqrError::BadValue {
                file: file.to_path_buf(),
                row,
                column: c.name.clone(),
                value: value.unwrap_or("").to_string(),
                expected: expected.to_string(),
            };
            let cell = match value {
                None => Cell::Null,
                Some(v) => match c.dtype {
                    ColumnType::Str => Cell::Str(v),
                    ColumnType::Date => Cell::Date(parse_date(v).ok_or_else(|| bad(DATE_FORMATS))?),
                    ColumnType::Int => Cell::Int(v.parse::<i64>().map_err(|_| bad("an integer"))?),
                    ColumnType::Float => {
                        let x = v.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| bad("a number"))?;
                        Cell::Float(x)
                    }
                    ColumnType::Bool => Cell::Bool(parse_bool(v).ok_or_else(|| bad("true or false (also T/F, Y/N, yes/no, 1/0, any case)"))?),
                },
            };
            if c.non_negative {
                if let Cell::Float(x) = cell {
                    if x < 0.0 {
                        return Err(bad("a non-negative count"));
                    }
                }
            }
            if rejection.is_none() {
                let version = self.version_of[i].and_then(|j| cells[j]);
                rejection = self.problem(c, value, version);
            }
            typed.push(cell);
        }
        if rejection.is_none() {
            let idx = |name: &str| self.columns.iter().position(|c| c.name == name);
            rejection = row_rule(
                self.table,
                |n| match idx(n).map(|i| typed[i]) {
                    Some(Cell::Date(d)) => Some(d),
                    _ => None,
                },
                |n| match idx(n).map(|i| typed[i]) {
                    Some(Cell::Int(v)) => Some(v),
                    _ => None,
                },
            );
        }
        Ok(rejection)
    }

    /// The quarantine reason for one value, if any.
    fn problem(&self, c: &Column, value: Option<&str>, version: Option<&str>) -> Option<Rejection> {
        match value {
            None if c.required => Some(Rejection {
                reason: format!("required value missing in {}", c.name),
                column: c.name.clone(),
                value: String::new(),
            }),
            Some(v) => {
                let shape = c.shape?;
                (!has_shape(shape, v, version)).then(|| Rejection {
                    reason: format!("malformed {} in {}", shape_label(shape), c.name),
                    column: c.name.clone(),
                    value: v.to_string(),
                })
            }
            None => None,
        }
    }
}

/// Consistency rules across columns of one row (quarantined, like malformed codes): dates in the
/// wrong order, enrollment months outside 1–12. `date`/`int` give a column's value by name.
fn row_rule(table: Table, date: impl Fn(&str) -> Option<i32>, int: impl Fn(&str) -> Option<i64>) -> Option<Rejection> {
    let show = |d: i32| super::sink::days_to_date(d).format("%Y-%m-%d").to_string();
    if matches!(table, Table::Carrier | Table::Outpatient | Table::Inpatient) {
        if let (Some(from), Some(thru)) = (date("claim_from_date"), date("claim_thru_date")) {
            if thru < from {
                return Some(Rejection {
                    reason: "claim_thru_date before claim_from_date".into(),
                    column: "claim_thru_date".into(),
                    value: show(thru),
                });
            }
        }
    }
    if table == Table::Inpatient {
        if let (Some(a), Some(d)) = (date("admission_date"), date("discharge_date")) {
            if d < a {
                return Some(Rejection { reason: "discharge before admission".into(), column: "discharge_date".into(), value: show(d) });
            }
        }
    }
    if table == Table::Enrollment {
        let (f, l) = (int("first_month"), int("last_month"));
        for (name, v) in [("first_month", f), ("last_month", l)] {
            if let Some(v) = v {
                if !(1..=12).contains(&v) {
                    return Some(Rejection { reason: format!("month outside 1-12 in {name}"), column: name.into(), value: v.to_string() });
                }
            }
        }
        if let (Some(f), Some(l)) = (f, l) {
            if l < f {
                return Some(Rejection { reason: "last_month before first_month".into(), column: "last_month".into(), value: l.to_string() });
            }
        }
    }
    None
}

/// The date encodings every layout accepts, as days since 1970-01-01: ISO `2022-01-31`, CCW's
/// `20220131`, and the RIF/SAS forms `31-Jan-2022` and `31JAN2022` (month names in any case).
/// This is the one date parser of the engine: validation and ingest both call it, so what is
/// accepted is read the same way everywhere.
pub fn parse_date(v: &str) -> Option<i32> {
    let b = v.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = b.get(r)?;
        s.iter().all(u8::is_ascii_digit).then(|| s.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let ymd = match b.len() {
        10 if b[4] == b'-' && b[7] == b'-' => Some((digits(0..4)?, digits(5..7)?, digits(8..10)?)),
        8 if b.iter().all(u8::is_ascii_digit) => Some((digits(0..4)?, digits(4..6)?, digits(6..8)?)),
        _ => None,
    };
    let date = match ymd {
        Some((y, m, d)) => chrono::NaiveDate::from_ymd_opt(y as i32, m, d)?,
        None => ["%d-%b-%Y", "%d%b%Y"].iter().find_map(|f| chrono::NaiveDate::parse_from_str(v, f).ok())?,
    };
    Some(super::sink::date_to_days(date))
}

/// What the date parser accepts, for error messages.
pub const DATE_FORMATS: &str = "a date (2022-01-31, 20220131, 31-Jan-2022 or 31JAN2022)";

/// The boolean encodings every layout accepts, in any case: `true`/`false`, `t`/`f`, `y`/`n`,
/// `yes`/`no`, `1`/`0`. The one boolean parser of the engine (see [`parse_date`]).
pub fn parse_bool(v: &str) -> Option<bool> {
    const TRUE: [&str; 5] = ["true", "t", "y", "yes", "1"];
    const FALSE: [&str; 5] = ["false", "f", "n", "no", "0"];
    if TRUE.iter().any(|t| v.eq_ignore_ascii_case(t)) {
        Some(true)
    } else if FALSE.iter().any(|f| v.eq_ignore_ascii_case(f)) {
        Some(false)
    } else {
        None
    }
}

/// The reject file: one line per rejected row, for every table.
pub struct RejectWriter {
    file: AtomicFile,
    path: PathBuf,
    writer_started: bool,
}

impl RejectWriter {
    pub fn create(path: &Path) -> Result<Self> {
        Ok(RejectWriter { file: AtomicFile::create(path)?, path: path.to_path_buf(), writer_started: false })
    }

    /// Writes one rejected row. `record` is the row as (column, value) pairs.
    pub fn write(
        &mut self,
        table: Table,
        source_file: &Path,
        source_row: u64,
        rejection: &Rejection,
        record: &[(&str, String)],
    ) -> Result<()> {
        let path = self.path.clone();
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(self.file.writer());
        if !self.writer_started {
            w.write_record(["table", "source_file", "source_row", "reason", "column", "value", "record"])
                .map_err(|e| AscqrError::Csv { file: path.clone(), source: e })?;
            self.writer_started = true;
        }
        let record: serde_json::Map<String, serde_json::Value> = record
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
            .collect();
        w.write_record([
            table.name(),
            &source_file.display().to_string(),
            &source_row.to_string(),
            &rejection.reason,
            &rejection.column,
            &rejection.value,
            &serde_json::Value::Object(record).to_string(),
        ])
        .map_err(|e| AscqrError::Csv { file: path.clone(), source: e })?;
        w.flush().map_err(|e| AscqrError::io(&path, e))?;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        if !self.writer_started {
            let path = self.path.clone();
            let mut w = csv::Writer::from_writer(self.file.writer());
            w.write_record(["table", "source_file", "source_row", "reason", "column", "value", "record"])
                .map_err(|e| AscqrError::Csv { file: path.clone(), source: e })?;
            w.flush().map_err(|e| AscqrError::io(&path, e))?;
        }
        self.file.commit()
    }
}

/// The key a row of `table` may not repeat, and the reason a repeat is quarantined with: the
/// same claim line (`claim_id`, `line_num`) on the carrier and outpatient files, the same claim
/// on the inpatient file (one row per claim), the same beneficiary on a canonical beneficiary
/// file. A repeated line would count a procedure or a visit twice, so it is quarantined, never
/// silently merged. Checked once a prepared extract's shard is sorted (`extract::finish_shard`).
pub fn repeated_key(table: Table) -> Option<(&'static [&'static str], &'static str)> {
    match table {
        Table::Carrier | Table::Outpatient => Some((&["claim_id", "line_num"], "duplicate claim line (claim_id and line_num of an earlier row)")),
        Table::Inpatient => Some((&["claim_id"], "duplicate claim (claim_id of an earlier row)")),
        Table::Beneficiaries => Some((&["bene_id"], "duplicate beneficiary (bene_id of an earlier row)")),
        Table::Enrollment => None,
    }
}

/// The reason a claim line naming another beneficiary than its claim's earlier lines is
/// quarantined with.
pub const ANOTHER_BENEFICIARY: &str = "claim line names another beneficiary than the claim's earlier lines";

/// Where accepted rows go: the shards of a prepared extract (`ascqr ingest`). Rows arrive typed, in canonical column order, with the file and row
/// they were read from.
pub trait AcceptedRows {
    fn push_row(&mut self, cells: &[Cell<'_>], file: &Path, row: u64) -> Result<()>;
    /// The accepted rows of a typed batch, in canonical column order and types; `rows` are their
    /// source rows.
    fn push_frame(&mut self, df: DataFrame, file: &Path, rows: &[u64]) -> Result<()>;
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Checks text rows of one table, counts them, writes rejects and (optionally) passes accepted
/// rows on to a sink. Shared by the canonical readers and every source adapter.
pub struct TableIngest {
    pub checker: RowChecker,
    pub report: TableReport,
    sink: Option<Box<dyn AcceptedRows>>,
}

impl TableIngest {
    pub fn new(table: Table, sink: Option<Box<dyn AcceptedRows>>) -> Self {
        TableIngest { checker: RowChecker::new(table), report: TableReport::new(table), sink }
    }

    /// One canonical row as text. Returns whether it was accepted.
    pub fn row(&mut self, cells: &[Option<&str>], file: &Path, row: u64, rejects: &mut RejectWriter) -> Result<bool> {
        let mut typed = Vec::with_capacity(cells.len());
        match self.checker.check_text(cells, file, row, &mut typed)? {
            None => {
                self.report.tally(file, Tally::Accepted);
                if let Some(sink) = self.sink.as_mut() {
                    sink.push_row(&typed, file, row)?;
                }
                Ok(true)
            }
            Some(rej) => {
                self.report.tally(file, Tally::Rejected(&rej.reason));
                let record: Vec<(&str, String)> = self
                    .checker
                    .columns()
                    .iter()
                    .zip(cells)
                    .map(|(c, v)| (c.name.as_str(), v.unwrap_or("").to_string()))
                    .collect();
                rejects.write(self.checker.table(), file, row, &rej, &record)?;
                Ok(false)
            }
        }
    }

    pub fn finish(self) -> Result<TableReport> {
        if let Some(sink) = self.sink {
            sink.finish()?;
        }
        Ok(self.report)
    }
}

/// Columns a canonical file may leave out: the ICD version codes. CMS's public synthetic
/// outpatient and inpatient files carry none (`real-data.md` §8); an absent or empty version is
/// read as ICD-10, the only code set of the service dates the measures look at (from 2015-10-01).
pub fn may_be_absent(column: &str) -> bool {
    column.ends_with("_version")
}

/// Named text records: a header of column names and rows of text fields, from a delimited file,
/// a fixed-width file with its layout, or rows staged by a source adapter. Source adapters map
/// these onto the canonical tables whatever the physical format.
pub trait Records {
    /// The column names, in field order.
    fn names(&self) -> &[String];
    /// Reads the next row into `record`; `None` at the end, else the row's number in its file.
    fn read(&mut self, record: &mut csv::StringRecord) -> Result<Option<u64>>;
    /// The file the last row read came from.
    fn path(&self) -> &Path;
}

/// A delimited file with a header row, as [`Records`].
pub struct DelimitedRecords {
    reader: csv::Reader<std::fs::File>,
    names: Vec<String>,
    path: PathBuf,
    row: u64,
}

impl DelimitedRecords {
    pub fn open(path: &Path, delimiter: u8) -> Result<Self> {
        let (reader, names) = open_delimited_with(path, delimiter, true)?;
        Ok(DelimitedRecords { reader, names, path: path.to_path_buf(), row: 0 })
    }

    /// Renames columns (a short name to its long name, say); `rename` returns the new name.
    pub fn rename(mut self, rename: impl Fn(&str) -> String) -> Self {
        self.names = self.names.iter().map(|n| rename(n)).collect();
        self
    }
}

impl Records for DelimitedRecords {
    fn names(&self) -> &[String] {
        &self.names
    }
    /// A row may end with one delimiter more than the header (an empty last field), as rows of
    /// BFD's RIF samples do; any other difference in the number of fields is an error.
    fn read(&mut self, record: &mut csv::StringRecord) -> Result<Option<u64>> {
        if !read_record(&mut self.reader, record, &self.path, self.row + 1)? {
            return Ok(None);
        }
        self.row += 1;
        let expected = self.names.len();
        if record.len() == expected + 1 && record.get(expected).is_some_and(str::is_empty) {
            record.truncate(expected);
        }
        if record.len() != expected {
            return Err(AscqrError::BadRow { file: self.path.clone(), row: self.row, message: format!("has {} fields, the header has {expected}", record.len()) });
        }
        Ok(Some(self.row))
    }
    fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens a pipe- or comma-delimited file with a header row, stripping a UTF-8 byte-order mark.
pub fn open_delimited(path: &Path, delimiter: u8) -> Result<(csv::Reader<std::fs::File>, Vec<String>)> {
    open_delimited_with(path, delimiter, false)
}

fn open_delimited_with(path: &Path, delimiter: u8, flexible: bool) -> Result<(csv::Reader<std::fs::File>, Vec<String>)> {
    let file = std::fs::File::open(path).map_err(|e| AscqrError::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).has_headers(true).flexible(flexible).from_reader(file);
    let headers = reader
        .headers()
        .map_err(|e| AscqrError::Csv { file: path.to_path_buf(), source: e })?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    Ok((reader, headers))
}

/// Maps each required name to its index in `headers`, or a missing-column error.
pub fn column_indices(path: &Path, table: &str, headers: &[String], names: &[String]) -> Result<Vec<usize>> {
    names
        .iter()
        .map(|n| {
            headers.iter().position(|h| h == n).ok_or_else(|| AscqrError::MissingColumn {
                file: path.to_path_buf(),
                table: table.to_string(),
                column: n.clone(),
            })
        })
        .collect()
}

/// Reads a record, turning a malformed line into an error that names file and row.
pub fn read_record(reader: &mut csv::Reader<std::fs::File>, record: &mut csv::StringRecord, path: &Path, row: u64) -> Result<bool> {
    reader.read_record(record).map_err(|e| match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => AscqrError::BadRow {
            file: path.to_path_buf(),
            row,
            message: format!("has {len} fields, the header has {expected_len}"),
        },
        _ => AscqrError::Csv { file: path.to_path_buf(), source: e },
    })
}

fn non_empty(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty()).then_some(t)
}

fn note_absent(report: &mut TableReport, column: &str) {
    if !report.absent_columns.iter().any(|c| c == column) {
        report.absent_columns.push(column.to_string());
    }
}

fn validate_canonical_csv(path: &Path, ingest: &mut TableIngest, rejects: &mut RejectWriter) -> Result<()> {
    let (mut reader, headers) = open_delimited(path, b',')?;
    let table = ingest.checker.table().name();
    let mut idx = Vec::new();
    for c in ingest.checker.columns() {
        match headers.iter().position(|h| *h == c.name) {
            Some(i) => idx.push(Some(i)),
            None if may_be_absent(&c.name) => {
                note_absent(&mut ingest.report, &c.name);
                idx.push(None);
            }
            None => {
                return Err(AscqrError::MissingColumn { file: path.to_path_buf(), table: table.to_string(), column: c.name.clone() });
            }
        }
    }
    let mut record = csv::StringRecord::new();
    let mut row = 0u64;
    loop {
        if !read_record(&mut reader, &mut record, path, row + 1)? {
            break;
        }
        row += 1;
        ingest.report.tally(path, Tally::Read);
        let cells: Vec<Option<&str>> = idx.iter().map(|i| i.and_then(|i| non_empty(&record[i]))).collect();
        ingest.row(&cells, path, row, rejects)?;
    }
    Ok(())
}

const PARQUET_BATCH_ROWS: usize = 250_000;

fn type_ok(expected: ColumnType, found: &DataType) -> bool {
    match expected {
        ColumnType::Str => matches!(found, DataType::String),
        ColumnType::Date => matches!(found, DataType::Date),
        ColumnType::Int => found.is_integer(),
        ColumnType::Float => found.is_primitive_numeric(),
        ColumnType::Bool => matches!(found, DataType::Boolean),
    }
}

fn validate_canonical_parquet(path: &Path, ingest: &mut TableIngest, rejects: &mut RejectWriter) -> Result<()> {
    let table = ingest.checker.table();
    let columns = ingest.checker.columns().to_vec();
    let open = || std::fs::File::open(path).map_err(|e| AscqrError::io(path, e));
    let mut reader = ParquetReader::new(open()?);
    let total = reader.num_rows().ctx(|| format!("reading {}", path.display()))?;
    let schema = reader.schema().ctx(|| format!("reading {}", path.display()))?;
    let mut absent = Vec::new();
    for c in &columns {
        let Some(field) = schema.get(c.name.as_str()) else {
            if may_be_absent(&c.name) {
                note_absent(&mut ingest.report, &c.name);
                absent.push(c.name.clone());
                continue;
            }
            return Err(AscqrError::MissingColumn { file: path.to_path_buf(), table: table.name().to_string(), column: c.name.clone() });
        };
        let found = DataType::from_arrow_field(field);
        if !type_ok(c.dtype, &found) {
            return Err(AscqrError::ColumnType {
                file: path.to_path_buf(),
                column: c.name.clone(),
                found: found.to_string(),
                expected: c.dtype.doc_name().to_string(),
            });
        }
    }
    let names: Vec<String> = columns.iter().map(|c| c.name.clone()).filter(|n| !absent.contains(n)).collect();
    let mut offset = 0usize;
    while offset < total {
        let len = PARQUET_BATCH_ROWS.min(total - offset);
        let mut df = ParquetReader::new(open()?)
            .with_columns(Some(names.clone()))
            .with_slice(Some((offset, len)))
            .finish()
            .ctx(|| format!("reading {}", path.display()))?;
        for name in &absent {
            df.with_column(polars::prelude::Column::full_null(name.as_str().into(), df.height(), &DataType::String)).ctx(|| path.display().to_string())?;
        }
        let df = canonical_batch(df, &columns).ctx(|| format!("reading {}", path.display()))?;
        check_typed_batch(&df, offset as u64, path, ingest, rejects)?;
        offset += len;
    }
    Ok(())
}

/// Checks a typed batch column by column (fast path for Parquet), reporting the first problem of
/// each row in column order, exactly as the text path does. Columns are walked with iterators
/// and counts tallied per batch: this runs once per value of a national extract.
fn check_typed_batch(df: &DataFrame, offset: u64, path: &Path, ingest: &mut TableIngest, rejects: &mut RejectWriter) -> Result<()> {
    let n = df.height();
    let ctx = || format!("reading {}", path.display());
    let columns = ingest.checker.columns().to_vec();
    let mut first: Vec<Option<Rejection>> = vec![None; n];
    for (i, c) in columns.iter().enumerate() {
        let s = df.column(c.name.as_str()).ctx(ctx)?;
        match c.dtype {
            ColumnType::Str => {
                if !c.required && c.shape.is_none() {
                    continue; // any text or none is accepted
                }
                let ca = s.str().ctx(ctx)?;
                let version = match ingest.checker.version_of[i] {
                    Some(j) => Some(df.column(columns[j].name.as_str()).and_then(|v| v.str().cloned()).ctx(ctx)?),
                    None => None,
                };
                let mut versions = version.as_ref().map(|v| v.iter());
                for (slot, v) in first.iter_mut().zip(ca.iter()) {
                    let ver = versions.as_mut().and_then(|it| it.next()).flatten().and_then(non_empty);
                    if slot.is_none() {
                        *slot = ingest.checker.problem(c, v.and_then(non_empty), ver);
                    }
                }
            }
            _ => {
                if c.non_negative {
                    let f = s.cast(&DataType::Float64).ctx(ctx)?;
                    for (r, x) in f.f64().ctx(ctx)?.iter().enumerate() {
                        if let Some(x) = x.filter(|x| *x < 0.0) {
                            return Err(AscqrError::BadValue {
                                file: path.to_path_buf(),
                                row: offset + r as u64 + 1,
                                column: c.name.clone(),
                                value: x.to_string(),
                                expected: "a non-negative count".into(),
                            });
                        }
                    }
                }
                if c.required && s.null_count() > 0 {
                    for (slot, null) in first.iter_mut().zip(s.is_null().iter()) {
                        if null == Some(true) && slot.is_none() {
                            *slot = ingest.checker.problem(c, None, None);
                        }
                    }
                }
            }
        }
    }
    // Cross-column consistency rules for rows with no other problem.
    let table = ingest.checker.table();
    let values = |t: ColumnType, as_type: &DataType| -> Vec<(String, polars::prelude::Column)> {
        columns
            .iter()
            .filter(|c| c.dtype == t)
            .filter_map(|c| df.column(c.name.as_str()).ok().and_then(|s| s.cast(as_type).ok()).map(|s| (c.name.clone(), s.rechunk())))
            .collect()
    };
    let date_cols: Vec<(String, Vec<Option<i32>>)> =
        values(ColumnType::Date, &DataType::Int32).into_iter().filter_map(|(name, s)| s.i32().ok().map(|ca| (name, ca.iter().collect()))).collect();
    let int_cols: Vec<(String, Vec<Option<i64>>)> =
        values(ColumnType::Int, &DataType::Int64).into_iter().filter_map(|(name, s)| s.i64().ok().map(|ca| (name, ca.iter().collect()))).collect();
    for (r, slot) in first.iter_mut().enumerate() {
        if slot.is_none() {
            *slot = row_rule(
                table,
                |n| date_cols.iter().find(|(c, _)| c == n).and_then(|(_, v)| v[r]),
                |n| int_cols.iter().find(|(c, _)| c == n).and_then(|(_, v)| v[r]),
            );
        }
    }
    ingest.report.tally_times(path, Tally::Read, n as u64);
    let mut accepted_rows = Vec::with_capacity(n);
    for (r, rej) in first.iter().enumerate() {
        match rej {
            None => accepted_rows.push(offset + r as u64 + 1),
            Some(rej) => {
                ingest.report.tally(path, Tally::Rejected(&rej.reason));
                let row = df.get_row(r).ctx(ctx)?;
                let record: Vec<(&str, String)> = columns
                    .iter()
                    .zip(row.0.iter())
                    .map(|(c, v)| (c.name.as_str(), any_value_text(v)))
                    .collect();
                rejects.write(ingest.checker.table(), path, offset + r as u64 + 1, rej, &record)?;
            }
        }
    }
    ingest.report.tally_times(path, Tally::Accepted, accepted_rows.len() as u64);
    if let Some(sink) = ingest.sink.as_mut() {
        let accepted = if accepted_rows.len() == n {
            df.clone()
        } else {
            let mask: BooleanChunked = first.iter().map(|r| r.is_none()).collect();
            df.filter(&mask).ctx(ctx)?
        };
        sink.push_frame(accepted, path, &accepted_rows)?;
    }
    Ok(())
}

/// A typed batch in canonical form, as the text path would have produced it: canonical column
/// order and types (narrower Parquet integers widened), text trimmed, empty text as missing.
/// Only the text columns holding an empty or untrimmed value are rewritten: most columns of a
/// well-formed extract hold none, and copying every string of every batch cost more than the
/// rest of the check.
fn canonical_batch(df: DataFrame, columns: &[Column]) -> PolarsResult<DataFrame> {
    let needs_trimming = |name: &str| -> PolarsResult<bool> {
        Ok(df.column(name)?.str()?.iter().flatten().any(|v| v.is_empty() || v.trim().len() != v.len()))
    };
    let mut exprs = Vec::with_capacity(columns.len());
    for c in columns {
        let e = col(c.name.as_str());
        exprs.push(match c.dtype {
            ColumnType::Str if needs_trimming(&c.name)? => {
                let t = e.str().strip_chars(lit(NULL));
                when(t.clone().eq(lit(""))).then(lit(NULL).cast(DataType::String)).otherwise(t).alias(c.name.as_str())
            }
            ColumnType::Str => e,
            other => e.cast(super::sink::polars_dtype(other)),
        });
    }
    df.lazy().select(exprs).collect()
}

/// A typed value as the reject file writes it: ISO dates, empty for missing.
pub(super) fn any_value_text(v: &AnyValue) -> String {
    match v {
        AnyValue::Null => String::new(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Date(d) => super::sink::days_to_date(*d).format("%Y-%m-%d").to_string(),
        other => other.to_string(),
    }
}

/// The source layout of an extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// The canonical model (`data-dictionary/claims/`), Parquet or CSV.
    Canonical,
    /// CMS research-identifiable files, pipe-delimited (`BENE_ID`, `LINE_PLACE_OF_SRVC_CD`, …).
    Rif,
    /// CCW/ResDAC deliveries: fixed-width `.dat` with `.fts` layouts (or CSV), claims and lines
    /// in separate files, MBSF A/B or A/B/C/D.
    Ccw,
    /// CCLF (claim and claim line feed) files of an accountable care organisation: assigned
    /// beneficiaries only.
    Cclf,
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Canonical => "canonical",
            Layout::Rif => "rif",
            Layout::Ccw => "ccw",
            Layout::Cclf => "cclf",
        }
    }
}

/// Every data file `layout` reads in `claims_dir` (what sizes the extract's shards).
pub fn input_files(claims_dir: &Path, layout: Layout) -> Result<Vec<std::path::PathBuf>> {
    match layout {
        Layout::Canonical => {
            let mut files = Vec::new();
            for table in Table::ALL {
                files.extend(super::source::table_files(claims_dir, table)?.into_iter().map(|f| f.path));
            }
            Ok(files)
        }
        Layout::Rif => super::rif::input_files(claims_dir),
        Layout::Ccw => super::ccw::input_files(claims_dir),
        Layout::Cclf => super::cclf::input_files(claims_dir),
    }
}

/// Where each table's accepted rows go (`None`: nowhere, a dry run).
pub type SinkFor<'a> = dyn FnMut(Table) -> Result<Option<Box<dyn AcceptedRows>>> + 'a;

/// Reads every table of the extract in `claims_dir` as `layout`, checks every row, writes
/// rejected rows to `rejects` and passes accepted rows to the sink `sink_for` gives each table.
/// Fatal problems return an error; quarantined rows are counted in the reports. Also returns
/// notes for the user (files passed over). `staging` holds a layout's intermediate files (CCW
/// claims and lines while they are joined, CCLF claims while their versions are resolved).
pub fn read_layout(
    claims_dir: &Path,
    layout: Layout,
    rejects: &mut RejectWriter,
    sink_for: &mut SinkFor,
    staging: &super::ccw::Staging,
    progress: &indicatif::ProgressBar,
) -> Result<(Vec<TableReport>, Vec<String>)> {
    let reports = match layout {
        Layout::Canonical => {
            let mut reports = Vec::new();
            for table in Table::ALL {
                let files = super::source::table_files(claims_dir, table)?;
                let mut ingest = TableIngest::new(table, sink_for(table)?);
                ingest.report.files = files.len();
                for f in &files {
                    progress.set_message(format!("reading {}", f.path.display()));
                    match f.format {
                        super::source::SourceFormat::Csv => validate_canonical_csv(&f.path, &mut ingest, &mut *rejects)?,
                        super::source::SourceFormat::Parquet => validate_canonical_parquet(&f.path, &mut ingest, &mut *rejects)?,
                    }
                    progress.inc(1);
                }
                reports.push(ingest.finish()?);
            }
            reports
        }
        Layout::Rif => super::rif::ingest_rif(claims_dir, rejects, sink_for, progress)?,
        Layout::Ccw => return super::ccw::ingest_ccw(claims_dir, rejects, sink_for, staging, progress),
        Layout::Cclf => return super::cclf::ingest_cclf(claims_dir, rejects, sink_for, staging, progress),
    };
    Ok((reports, Vec::new()))
}
