//! The HQR web-based measure batch file (manual Section 3, L2046-2157): writer and validator.
//!
//! The manual lists the 27 columns (L2066-2118) and the file name convention (L2126-2129) but
//! defers "an example and details of required fields" to the separate "Ambulatory Surgical
//! Center Web-Based Batch Submission file layout" (L2064-2065), which was NOT available. Our
//! encodings, documented in `data-dictionary/web/README.md`: a header row with the 27 names in
//! the manual's order; ASC_PYR as the 4-digit payment year; SAMP_FREQ as Y, Q or M; every other
//! value a non-negative integer, zeros for a measure with no cases (as the web form asks, L351-352).
//!
//! HQR checks the whole file and rejects it if any error is found (L2130-2133); the validator
//! does the same and lists every error with its row and column.

use super::records::is_valid_npi;
use super::sampling::{required_sample, Frequency, SampleRequirement};
use crate::error::{AscqrError, Result};
use chrono::NaiveDate;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

pub const HQR_COLUMNS: [&str; 27] = [
    "ASC_PROVIDER_NPI",
    "ASC_PYR",
    "ASC_1_NUMERATOR",
    "ASC_1_DENOMINATOR",
    "ASC_2_NUMERATOR",
    "ASC_2_DENOMINATOR",
    "ASC_3_NUMERATOR",
    "ASC_3_DENOMINATOR",
    "ASC_4_NUMERATOR",
    "ASC_4_DENOMINATOR",
    "ASC_9_POP_SIZE",
    "ASC_9_SAMP_SIZE",
    "ASC_9_SAMP_FREQ",
    "ASC_9_NUMERATOR",
    "ASC_9_DENOMINATOR",
    "ASC_11_POP_SIZE",
    "ASC_11_SAMP_SIZE",
    "ASC_11_SAMP_FREQ",
    "ASC_11_NUMERATOR",
    "ASC_11_DENOMINATOR",
    "ASC_13_POP_SIZE",
    "ASC_13_SAMP_SIZE",
    "ASC_13_SAMP_FREQ",
    "ASC_13_NUMERATOR",
    "ASC_13_DENOMINATOR",
    "ASC_14_NUMERATOR",
    "ASC_14_DENOMINATOR",
];

/// Counts of an unsampled measure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub numerator: u64,
    pub denominator: u64,
}

/// Counts of a sampled measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampledCounts {
    pub population_size: u64,
    pub sample_size: u64,
    pub frequency: Frequency,
    pub numerator: u64,
    pub denominator: u64,
}

/// One facility's row.
#[derive(Debug, Clone, PartialEq)]
pub struct HqrRow {
    pub npi: String,
    pub payment_year: i32,
    pub asc1: Counts,
    pub asc2: Counts,
    pub asc3: Counts,
    pub asc4: Counts,
    pub asc9: SampledCounts,
    pub asc11: SampledCounts,
    pub asc13: SampledCounts,
    pub asc14: Counts,
}

impl HqrRow {
    fn fields(&self) -> Vec<String> {
        let mut f = vec![self.npi.clone(), self.payment_year.to_string()];
        for c in [self.asc1, self.asc2, self.asc3, self.asc4] {
            f.extend([c.numerator.to_string(), c.denominator.to_string()]);
        }
        for s in [self.asc9, self.asc11, self.asc13] {
            f.extend([s.population_size.to_string(), s.sample_size.to_string(), s.frequency.code().to_string(), s.numerator.to_string(), s.denominator.to_string()]);
        }
        f.extend([self.asc14.numerator.to_string(), self.asc14.denominator.to_string()]);
        f
    }
}

/// `ASC_WBM_PY20YY_mm_dd_yyyy.csv` (manual L2126-2129).
pub fn file_name(payment_year: i32, upload_date: NaiveDate) -> String {
    format!("ASC_WBM_PY{payment_year:04}_{}.csv", upload_date.format("%m_%d_%Y"))
}

pub fn render(rows: &[HqrRow]) -> Result<Vec<u8>> {
    let err = |e: csv::Error| AscqrError::Other(format!("rendering HQR file: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HQR_COLUMNS).map_err(err)?;
    for r in rows {
        w.write_record(r.fields()).map_err(err)?;
    }
    w.into_inner().map_err(|e| AscqrError::Other(format!("rendering HQR file: {e}")))
}

/// One problem found in an upload file. `row` is the line number (header = 1); None = the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadError {
    pub row: Option<u64>,
    pub column: Option<String>,
    pub message: String,
}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.row, &self.column) {
            (Some(r), Some(c)) => write!(f, "row {r}, column {c}: {}", self.message),
            (Some(r), None) => write!(f, "row {r}: {}", self.message),
            (None, Some(c)) => write!(f, "column {c}: {}", self.message),
            (None, None) => write!(f, "file: {}", self.message),
        }
    }
}

fn error(row: Option<u64>, column: Option<&str>, message: impl Into<String>) -> UploadError {
    UploadError { row, column: column.map(str::to_string), message: message.into() }
}

/// Checks the name; returns the payment year it carries.
pub fn validate_file_name(name: &str) -> std::result::Result<i32, UploadError> {
    let bad = || error(None, None, format!("file name {name:?} does not follow ASC_WBM_PY20YY_mm_dd_yyyy.csv (manual L2126-2129)"));
    let rest = name.strip_prefix("ASC_WBM_PY").and_then(|r| r.strip_suffix(".csv")).ok_or_else(bad)?;
    let (year, date) = rest.split_once('_').ok_or_else(bad)?;
    if year.len() != 4 || !year.starts_with("20") || !year.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if date.len() != 10 || NaiveDate::parse_from_str(date, "%m_%d_%Y").is_err() {
        return Err(bad());
    }
    year.parse().map_err(|_| bad())
}

/// Row-level rules for one measure's numerator/denominator (and sample) fields.
fn check_measure(row: u64, values: &HashMap<&str, u64>, measure: &str, sampled: bool, frequency: Option<Frequency>, errors: &mut Vec<UploadError>) {
    let col = |f: &str| format!("ASC_{measure}_{f}");
    let get = |f: &str| values.get(col(f).as_str()).copied();
    if let (Some(n), Some(d)) = (get("NUMERATOR"), get("DENOMINATOR")) {
        if n > d {
            errors.push(error(Some(row), Some(&col("NUMERATOR")), format!("numerator {n} exceeds denominator {d}")));
        }
    }
    if !sampled {
        return;
    }
    let (Some(pop), Some(samp)) = (get("POP_SIZE"), get("SAMP_SIZE")) else { return };
    if samp > pop {
        errors.push(error(Some(row), Some(&col("SAMP_SIZE")), format!("sample size {samp} exceeds population {pop}")));
    }
    if let Some(d) = get("DENOMINATOR") {
        if d > samp {
            errors.push(error(Some(row), Some(&col("DENOMINATOR")), format!("denominator {d} exceeds sample size {samp}")));
        }
    }
    let Some(frequency) = frequency else { return };
    match required_sample(pop as usize, frequency) {
        SampleRequirement::WholePopulation if samp != pop => errors.push(error(
            Some(row),
            Some(&col("SAMP_SIZE")),
            format!("population {pop} is under 63, so the whole population is required (manual L2036), not {samp}"),
        )),
        // A period may hold fewer cases than its requirement (then all are taken), so the
        // smallest valid total is one period's requirement or the whole population.
        SampleRequirement::PerPeriod(n) if samp < (n as u64).min(pop) => errors.push(error(
            Some(row),
            Some(&col("SAMP_SIZE")),
            format!("sample size {samp} is below the {n} required per {} for population {pop} (manual L2006-2038)", frequency.code()),
        )),
        _ => {}
    }
}

/// Validates file contents against the 27-column layout. `name_payment_year` is the PY taken
/// from the file name (ASC_PYR must equal it).
pub fn validate_contents(bytes: &[u8], name_payment_year: Option<i32>) -> Vec<UploadError> {
    let mut errors = Vec::new();
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut records = reader.records();
    match records.next() {
        Some(Ok(h)) if h.iter().eq(HQR_COLUMNS.iter().copied()) => {}
        Some(Ok(h)) => {
            for (i, expected) in HQR_COLUMNS.iter().enumerate() {
                let found = h.get(i).unwrap_or("(missing)");
                if found != *expected {
                    errors.push(error(Some(1), Some(expected), format!("header column {} is {found:?}, expected {expected}", i + 1)));
                }
            }
            if h.len() > HQR_COLUMNS.len() {
                errors.push(error(Some(1), None, format!("header has {} columns, expected 27", h.len())));
            }
            return errors; // values cannot be attributed to columns under a wrong header
        }
        Some(Err(e)) => return vec![error(Some(1), None, format!("unreadable header: {e}"))],
        None => return vec![error(None, None, "empty file: no header row")],
    }
    let mut first_row_of_npi: HashMap<String, u64> = HashMap::new();
    let mut data_rows = 0;
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(error(e.position().map(|p| p.line()), None, format!("unreadable row: {e}")));
                continue;
            }
        };
        data_rows += 1;
        let row = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() != HQR_COLUMNS.len() {
            errors.push(error(Some(row), None, format!("{} fields, expected 27", record.len())));
            continue;
        }
        validate_row(row, &record, name_payment_year, &mut first_row_of_npi, &mut errors);
    }
    if data_rows == 0 {
        errors.push(error(None, None, "no facility rows"));
    }
    errors
}

fn validate_row(row: u64, record: &csv::StringRecord, name_py: Option<i32>, seen: &mut HashMap<String, u64>, errors: &mut Vec<UploadError>) {
    let field = |c: &str| HQR_COLUMNS.iter().position(|h| *h == c).and_then(|i| record.get(i)).unwrap_or("");
    let npi = field("ASC_PROVIDER_NPI");
    if !is_valid_npi(npi) {
        errors.push(error(Some(row), Some("ASC_PROVIDER_NPI"), format!("{npi:?} is not a valid NPI (10 digits, Luhn check digit)")));
    } else if let Some(first) = seen.insert(npi.to_string(), row) {
        errors.push(error(Some(row), Some("ASC_PROVIDER_NPI"), format!("NPI {npi} already has a row (row {first}); one row per facility")));
    }
    let pyr = field("ASC_PYR");
    match pyr.parse::<i32>() {
        Ok(py) if pyr.len() == 4 && (2000..=2099).contains(&py) => {
            if let Some(expected) = name_py.filter(|e| *e != py) {
                errors.push(error(Some(row), Some("ASC_PYR"), format!("payment year {py} differs from PY{expected} in the file name")));
            }
        }
        _ => errors.push(error(Some(row), Some("ASC_PYR"), format!("{pyr:?} is not a 4-digit payment year"))),
    }
    let mut values: HashMap<&str, u64> = HashMap::new();
    let mut frequencies: HashMap<&str, Frequency> = HashMap::new();
    for column in &HQR_COLUMNS[2..] {
        let v = field(column);
        if column.ends_with("_SAMP_FREQ") {
            match Frequency::from_code(v) {
                Some(f) => {
                    frequencies.insert(column, f);
                }
                None => errors.push(error(Some(row), Some(column), format!("{v:?} is not a sampling frequency (Y, Q or M)"))),
            }
        } else {
            match (v.bytes().all(|b| b.is_ascii_digit()) && !v.is_empty()).then(|| v.parse::<u64>().ok()).flatten() {
                Some(n) => {
                    values.insert(column, n);
                }
                None => errors.push(error(Some(row), Some(column), format!("{v:?} is not a non-negative integer"))),
            }
        }
    }
    for m in ["1", "2", "3", "4", "14"] {
        check_measure(row, &values, m, false, None, errors);
    }
    for m in ["9", "11", "13"] {
        let freq = frequencies.get(format!("ASC_{m}_SAMP_FREQ").as_str()).copied();
        check_measure(row, &values, m, true, freq, errors);
    }
}

/// Validates an upload file as HQR would: name, then contents.
pub fn validate_upload(path: &Path) -> Result<Vec<UploadError>> {
    let bytes = std::fs::read(path).map_err(|e| AscqrError::io(path, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut errors = Vec::new();
    let name_py = match validate_file_name(&name) {
        Ok(py) => Some(py),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    errors.extend(validate_contents(&bytes, name_py));
    Ok(errors)
}

/// Writes the batch file into `dir` under its conventional name, validating the exact bytes
/// before they are renamed into place: an invalid file never appears.
pub fn write_batch_file(dir: &Path, payment_year: i32, upload_date: NaiveDate, rows: &[HqrRow]) -> Result<std::path::PathBuf> {
    let name = file_name(payment_year, upload_date);
    let bytes = render(rows)?;
    let path = dir.join(&name);
    let mut file = crate::output::AtomicFile::create(&path)?;
    file.writer().write_all(&bytes).map_err(|e| AscqrError::io(&path, e))?;
    let mut errors: Vec<UploadError> = validate_file_name(&name).err().into_iter().collect();
    errors.extend(validate_contents(&bytes, Some(payment_year)));
    if !errors.is_empty() {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(AscqrError::Other(format!("{}: generated HQR file fails validation, not written: {}", path.display(), list.join("; "))));
    }
    file.commit()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(npi: &str) -> HqrRow {
        let c = Counts { numerator: 1, denominator: 10 };
        let s = SampledCounts { population_size: 40, sample_size: 40, frequency: Frequency::Year, numerator: 5, denominator: 30 };
        HqrRow { npi: npi.into(), payment_year: 2025, asc1: c, asc2: c, asc3: c, asc4: c, asc9: s, asc11: s, asc13: s, asc14: c }
    }

    #[test]
    fn file_name_follows_the_convention() {
        let d = NaiveDate::from_ymd_opt(2024, 4, 15).unwrap();
        assert_eq!(file_name(2025, d), "ASC_WBM_PY2025_04_15_2024.csv");
        assert_eq!(validate_file_name("ASC_WBM_PY2025_04_15_2024.csv"), Ok(2025));
        for bad in ["ASC_WBM_PY25_04_15_2024.csv", "ASC_WBM_PY2025_13_15_2024.csv", "ASC_WBM_PY2025_04_15_2024.txt", "wbm.csv"] {
            assert!(validate_file_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rendered_rows_validate_and_have_27_columns() {
        let bytes = render(&[row("1234567893"), row("1245319599")]).unwrap();
        assert_eq!(validate_contents(&bytes, Some(2025)), []);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.lines().all(|l| l.split(',').count() == 27));
    }

    #[test]
    fn each_problem_is_reported_with_row_and_column() {
        let mut bad = row("1234567893");
        bad.asc1 = Counts { numerator: 11, denominator: 10 };
        bad.asc9.sample_size = 30; // population 40 < 63 requires all 40
        let mut dup = row("1234567893");
        dup.payment_year = 2024;
        let bytes = render(&[bad, dup]).unwrap();
        let got: Vec<(Option<u64>, Option<String>)> = validate_contents(&bytes, Some(2025)).into_iter().map(|e| (e.row, e.column)).collect();
        assert_eq!(
            got,
            [
                (Some(2), Some("ASC_1_NUMERATOR".into())),
                (Some(2), Some("ASC_9_SAMP_SIZE".into())),
                (Some(3), Some("ASC_PROVIDER_NPI".into())),
                (Some(3), Some("ASC_PYR".into())),
            ]
        );
    }

    #[test]
    fn a_large_population_needs_the_table_sample() {
        let mut r = row("1234567893");
        r.asc13 = SampledCounts { population_size: 950, sample_size: 90, frequency: Frequency::Year, numerator: 1, denominator: 2 };
        let errors = validate_contents(&render(&[r.clone()]).unwrap(), Some(2025));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].column.as_deref(), Some("ASC_13_SAMP_SIZE"));
        r.asc13.sample_size = 96;
        assert_eq!(validate_contents(&render(&[r]).unwrap(), Some(2025)), []);
    }

    #[test]
    fn wrong_header_and_text_values_are_errors() {
        let text = "ASC_PROVIDER_NPI,ASC_PYR\n1234567893,2025\n";
        let e = validate_contents(text.as_bytes(), Some(2025));
        assert_eq!(e[0].column.as_deref(), Some("ASC_1_NUMERATOR"));
        let mut ok = String::from_utf8(render(&[row("1234567893")]).unwrap()).unwrap();
        ok = ok.replacen(",Y,5,30,40,40,Y", ",X,5,30,40,40,Y", 1).replace("1234567893,2025,1,", "1234567893,2025,-1,");
        let got: Vec<Option<String>> = validate_contents(ok.as_bytes(), Some(2025)).into_iter().map(|e| e.column).collect();
        assert_eq!(got, [Some("ASC_1_NUMERATOR".to_string()), Some("ASC_9_SAMP_FREQ".to_string())]);
    }
}
