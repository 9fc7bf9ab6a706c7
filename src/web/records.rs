//! The chart-abstraction record layout (one CSV row per encounter; documented column by column
//! in `data-dictionary/web/README.md`) and its reader.
//!
//! Every defective row is rejected with a reason naming the file, row (line number, header =
//! line 1), column and value; values of patient identifier columns are never echoed. A row is
//! either accepted whole or rejected whole — nothing is silently dropped or repaired.

use crate::error::{AscqrError, Result};
use chrono::{Datelike, NaiveDate, NaiveDateTime};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Columns of the records file, in documented order. All are required in the header.
pub const RECORD_COLUMNS: [&str; 28] = [
    "facility_npi",
    "encounter_id",
    "encounter_date",
    "birth_date",
    "procedures",
    "diagnoses",
    "burn",
    "fall",
    "wrong_site_side_patient_procedure_implant",
    "hospital_transfer_admission",
    "biopsy_or_polypectomy",
    "followup_interval_text",
    "medical_reason_documented",
    "no_followup_reason",
    "vf_pre_instrument",
    "vf_pre_score",
    "vf_post_instrument",
    "vf_post_score",
    "vf_post_date",
    "asc11_gcode",
    "anesthesia_type",
    "anesthesia_start",
    "anesthesia_induction",
    "anesthesia_end",
    "pacu_arrival",
    "temperatures",
    "intentional_hypothermia_documented",
    "unplanned_anterior_vitrectomy",
];

/// Columns whose values identify a patient: never written into a message or reject file.
const IDENTIFIER_COLUMNS: [&str; 2] = ["encounter_id", "birth_date"];
pub const WITHHELD: &str = "(identifier withheld)";

/// One rejected value (or whole row, with column `(row)`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub file: PathBuf,
    /// Line number in the file; the header is line 1.
    pub row: u64,
    pub column: String,
    /// The offending value, or [`WITHHELD`] for identifier columns.
    pub value: String,
    pub reason: String,
}

impl Rejection {
    pub fn new(file: &Path, row: u64, column: &str, value: &str, reason: impl Into<String>) -> Self {
        let value = if IDENTIFIER_COLUMNS.contains(&column) { WITHHELD.to_string() } else { value.to_string() };
        Rejection { file: file.to_path_buf(), row, column: column.to_string(), value, reason: reason.into() }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: row {}, column `{}`: value {:?}: {}", self.file.display(), self.row, self.column, self.value, self.reason)
    }
}

/// Accepted rows plus every rejection, in file order.
#[derive(Debug, Clone)]
pub struct Parsed<T> {
    pub accepted: Vec<T>,
    pub rejections: Vec<Rejection>,
}

/// One CPT/HCPCS line with its modifiers (`45378-53` → code 45378, modifiers [53]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcedureLine {
    pub code: String,
    pub modifiers: Vec<String>,
}

impl ProcedureLine {
    /// The line bills `code` and carries none of `disqualifying` modifiers.
    pub fn is_code_without_modifiers(&self, codes: &[&str], disqualifying: &[&str]) -> bool {
        codes.contains(&self.code.as_str()) && !self.modifiers.iter().any(|m| disqualifying.contains(&m.as_str()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallLocation {
    None,
    /// Within the confines of the ASC (ASC-2 numerator, manual L620).
    Inside,
    /// Outside the ASC (ASC-2 numerator exclusion, manual L623).
    Outside,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoFollowupReason {
    /// Age documented as the reason no follow-up colonoscopy is needed (manual L935-937).
    Age,
    /// Life expectancy < 10 years documented (manual L936).
    LifeExpectancy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asc11GCode {
    /// Performance met (manual L1008-1009).
    G0913,
    /// Denominator exception: survey not completed (manual L1019).
    G0914,
    /// Performance not met (manual L1017-1018).
    G0915,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnesthesiaType {
    General,
    Spinal,
    Epidural,
    Sedation,
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemperatureUnit {
    Fahrenheit,
    Celsius,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TemperatureReading {
    pub value: f64,
    pub unit: TemperatureUnit,
    pub recorded_at: NaiveDateTime,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Asc9Abstraction {
    pub biopsy_or_polypectomy: Option<bool>,
    pub followup_interval_text: String,
    pub medical_reason_documented: Option<bool>,
    pub no_followup_reason: Option<NoFollowupReason>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Asc11Abstraction {
    pub pre_instrument: Option<String>,
    pub pre_score: Option<f64>,
    pub post_instrument: Option<String>,
    pub post_score: Option<f64>,
    pub post_date: Option<NaiveDate>,
    pub gcode: Option<Asc11GCode>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Asc13Abstraction {
    pub anesthesia_type: Option<AnesthesiaType>,
    pub anesthesia_start: Option<NaiveDateTime>,
    /// Kept only to prove it is never used as the start (manual L2491-2493).
    pub anesthesia_induction: Option<NaiveDateTime>,
    pub anesthesia_end: Option<NaiveDateTime>,
    pub pacu_arrival: Option<NaiveDateTime>,
    pub temperatures: Vec<TemperatureReading>,
    pub intentional_hypothermia_documented: bool,
}

/// One abstracted ASC encounter (admission).
#[derive(Debug, Clone, PartialEq)]
pub struct EncounterRecord {
    /// Line number in the source file (header = 1).
    pub row: u64,
    pub facility_npi: String,
    pub encounter_id: String,
    pub encounter_date: NaiveDate,
    pub birth_date: NaiveDate,
    pub procedures: Vec<ProcedureLine>,
    /// Normalised: upper case, no dot.
    pub diagnoses: Vec<String>,
    pub burn: bool,
    pub fall: FallLocation,
    pub wrong_site_side_patient_procedure_implant: bool,
    pub hospital_transfer_admission: bool,
    pub asc9: Asc9Abstraction,
    pub asc11: Asc11Abstraction,
    pub asc13: Asc13Abstraction,
    pub unplanned_anterior_vitrectomy: Option<bool>,
}

impl EncounterRecord {
    /// Completed years of age on the encounter date.
    pub fn age_on_encounter(&self) -> u32 {
        completed_years(self.birth_date, self.encounter_date)
    }
    pub fn has_diagnosis(&self, code: &str) -> bool {
        self.diagnoses.iter().any(|d| d == code)
    }
}

/// Completed years between two dates (0 if `on` precedes `birth`).
pub fn completed_years(birth: NaiveDate, on: NaiveDate) -> u32 {
    let mut years = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years.max(0) as u32
}

/// NPI check: 10 digits whose last is the Luhn check digit computed over "80840" + the first 9
/// (the CMS NPI standard; the manual only says the file carries the NPI, L2066).
pub fn is_valid_npi(npi: &str) -> bool {
    if npi.len() != 10 || !npi.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    luhn_valid(&format!("80840{npi}"))
}

fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// ICD-10-CM with or without the dot → upper case without dot, or None if malformed.
pub fn normalise_icd10cm(raw: &str) -> Option<String> {
    let code: String = raw.trim().chars().filter(|c| *c != '.').collect::<String>().to_ascii_uppercase();
    let b = code.as_bytes();
    let ok = (3..=7).contains(&b.len())
        && b[0].is_ascii_uppercase()
        && b[1].is_ascii_digit()
        && b[2..].iter().all(|c| c.is_ascii_alphanumeric());
    ok.then_some(code)
}

/// `45378-53-59` → code and modifiers; CPT (5 digits, or 4 digits + F/T), HCPCS (letter + 4
/// digits), modifiers two alphanumerics.
pub fn parse_procedure(raw: &str) -> Option<ProcedureLine> {
    let mut parts = raw.trim().split('-');
    let code = parts.next()?.trim().to_ascii_uppercase();
    let b = code.as_bytes();
    let cpt = b.len() == 5 && b[..4].iter().all(u8::is_ascii_digit) && (b[4].is_ascii_digit() || b[4] == b'F' || b[4] == b'T');
    let hcpcs = b.len() == 5 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit);
    if !(cpt || hcpcs) {
        return None;
    }
    let mut modifiers = Vec::new();
    for m in parts {
        let m = m.trim().to_ascii_uppercase();
        if m.len() != 2 || !m.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        modifiers.push(m);
    }
    Some(ProcedureLine { code, modifiers })
}

/// `96.5F@2023-03-01T11:10` → reading. Values outside a physiologic range are refused: they are
/// almost always a unit mix-up (36 written with F) that would silently flip the measure.
pub fn parse_temperature(raw: &str) -> std::result::Result<TemperatureReading, String> {
    let (reading, at) = raw.trim().split_once('@').ok_or("expected VALUE UNIT@YYYY-MM-DDTHH:MM")?;
    let reading = reading.trim().trim_end_matches(|c: char| c.is_whitespace());
    let reading = reading.replace('°', "");
    let reading = reading.trim();
    let unit_char = reading.chars().last().ok_or("missing temperature value")?;
    let unit = match unit_char.to_ascii_uppercase() {
        'F' => TemperatureUnit::Fahrenheit,
        'C' => TemperatureUnit::Celsius,
        _ => return Err("temperature unit must be F or C".into()),
    };
    let value: f64 = reading[..reading.len() - 1].trim().parse().map_err(|_| "temperature value is not a number".to_string())?;
    let plausible = match unit {
        TemperatureUnit::Fahrenheit => (80.0..=110.0).contains(&value),
        TemperatureUnit::Celsius => (25.0..=45.0).contains(&value),
    };
    if !plausible {
        return Err("temperature outside 80-110 F / 25-45 C (unit mix-up?)".into());
    }
    let recorded_at = parse_datetime(at.trim()).ok_or("time must be YYYY-MM-DDTHH:MM")?;
    Ok(TemperatureReading { value, unit, recorded_at })
}

pub fn parse_date(raw: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").ok()
}

pub fn parse_datetime(raw: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(raw.trim(), "%Y-%m-%dT%H:%M").ok()
}

/// Parses one row, collecting every problem rather than stopping at the first.
struct RowParser<'a> {
    file: &'a Path,
    row: u64,
    record: &'a csv::StringRecord,
    index: &'a HashMap<String, usize>,
    problems: Vec<Rejection>,
}

impl<'a> RowParser<'a> {
    fn raw(&self, column: &str) -> &'a str {
        self.index.get(column).and_then(|i| self.record.get(*i)).map(str::trim).unwrap_or("")
    }

    fn reject(&mut self, column: &str, reason: impl Into<String>) {
        let value = self.raw(column).to_string();
        self.problems.push(Rejection::new(self.file, self.row, column, &value, reason));
    }

    fn required_text(&mut self, column: &str) -> String {
        let v = self.raw(column);
        if v.is_empty() {
            self.reject(column, "required value is missing");
        }
        v.to_string()
    }

    fn optional_text(&self, column: &str) -> Option<String> {
        let v = self.raw(column);
        (!v.is_empty()).then(|| v.to_string())
    }

    fn required_date(&mut self, column: &str) -> Option<NaiveDate> {
        let v = self.raw(column);
        let d = parse_date(v);
        if d.is_none() {
            self.reject(column, "expected a date YYYY-MM-DD");
        }
        d
    }

    fn optional_date(&mut self, column: &str) -> Option<NaiveDate> {
        if self.raw(column).is_empty() {
            return None;
        }
        self.required_date(column)
    }

    fn optional_datetime(&mut self, column: &str) -> Option<NaiveDateTime> {
        let v = self.raw(column);
        if v.is_empty() {
            return None;
        }
        let d = parse_datetime(v);
        if d.is_none() {
            self.reject(column, "expected a date-time YYYY-MM-DDTHH:MM");
        }
        d
    }

    fn optional_number(&mut self, column: &str) -> Option<f64> {
        let v = self.raw(column);
        if v.is_empty() {
            return None;
        }
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() => Some(x),
            _ => {
                self.reject(column, "expected a number");
                None
            }
        }
    }

    fn optional_yes_no(&mut self, column: &str) -> Option<bool> {
        match self.raw(column).to_ascii_uppercase().as_str() {
            "" => None,
            "Y" => Some(true),
            "N" => Some(false),
            _ => {
                self.reject(column, "expected Y, N or blank");
                None
            }
        }
    }

    fn required_yes_no(&mut self, column: &str) -> bool {
        match self.raw(column).to_ascii_uppercase().as_str() {
            "Y" => true,
            "N" => false,
            _ => {
                self.reject(column, "expected Y or N");
                false
            }
        }
    }

    fn enumerated<T: Copy>(&mut self, column: &str, allowed: &[(&str, T)], expected: &str) -> Option<T> {
        let v = self.raw(column).to_ascii_lowercase();
        if v.is_empty() {
            return None;
        }
        let found = allowed.iter().find(|(name, _)| name.eq_ignore_ascii_case(&v)).map(|(_, t)| *t);
        if found.is_none() {
            self.reject(column, format!("expected {expected}"));
        }
        found
    }

    fn list<T>(&mut self, column: &str, parse: impl Fn(&str) -> std::result::Result<T, String>) -> Vec<T> {
        let mut out = Vec::new();
        for item in self.raw(column).split(';').map(str::trim).filter(|s| !s.is_empty()) {
            match parse(item) {
                Ok(x) => out.push(x),
                Err(why) => {
                    self.problems.push(Rejection::new(self.file, self.row, column, item, why));
                }
            }
        }
        out
    }
}

fn parse_row(p: &mut RowParser<'_>, reporting_year: Option<i32>) -> Option<EncounterRecord> {
    let facility_npi = p.required_text("facility_npi");
    if !facility_npi.is_empty() && !is_valid_npi(&facility_npi) {
        p.reject("facility_npi", "not a valid NPI (10 digits with a Luhn check digit over 80840 + first 9)");
    }
    let encounter_id = p.required_text("encounter_id");
    let encounter_date = p.required_date("encounter_date");
    let birth_date = p.required_date("birth_date");
    let procedures = p.list("procedures", |s| parse_procedure(s).ok_or_else(|| "not a CPT/HCPCS code with optional -MODIFIER suffixes".to_string()));
    let diagnoses = p.list("diagnoses", |s| normalise_icd10cm(s).ok_or_else(|| "not an ICD-10-CM code".to_string()));
    let burn = p.required_yes_no("burn");
    let fall = p
        .enumerated("fall", &[("n", FallLocation::None), ("inside", FallLocation::Inside), ("outside", FallLocation::Outside)], "N, inside or outside")
        .unwrap_or(FallLocation::None);
    if p.raw("fall").is_empty() {
        p.reject("fall", "required value is missing (N, inside or outside)");
    }
    let wrong = p.required_yes_no("wrong_site_side_patient_procedure_implant");
    let transfer = p.required_yes_no("hospital_transfer_admission");
    let asc9 = Asc9Abstraction {
        biopsy_or_polypectomy: p.optional_yes_no("biopsy_or_polypectomy"),
        followup_interval_text: p.raw("followup_interval_text").to_string(),
        medical_reason_documented: p.optional_yes_no("medical_reason_documented"),
        no_followup_reason: p.enumerated(
            "no_followup_reason",
            &[("age", NoFollowupReason::Age), ("life_expectancy", NoFollowupReason::LifeExpectancy)],
            "age, life_expectancy or blank",
        ),
    };
    let asc11 = Asc11Abstraction {
        pre_instrument: p.optional_text("vf_pre_instrument"),
        pre_score: p.optional_number("vf_pre_score"),
        post_instrument: p.optional_text("vf_post_instrument"),
        post_score: p.optional_number("vf_post_score"),
        post_date: p.optional_date("vf_post_date"),
        gcode: p.enumerated(
            "asc11_gcode",
            &[("g0913", Asc11GCode::G0913), ("g0914", Asc11GCode::G0914), ("g0915", Asc11GCode::G0915)],
            "G0913, G0914, G0915 or blank",
        ),
    };
    let asc13 = Asc13Abstraction {
        anesthesia_type: p.enumerated(
            "anesthesia_type",
            &[
                ("general", AnesthesiaType::General),
                ("spinal", AnesthesiaType::Spinal),
                ("epidural", AnesthesiaType::Epidural),
                ("sedation", AnesthesiaType::Sedation),
                ("local", AnesthesiaType::Local),
            ],
            "general, spinal, epidural, sedation, local or blank",
        ),
        anesthesia_start: p.optional_datetime("anesthesia_start"),
        anesthesia_induction: p.optional_datetime("anesthesia_induction"),
        anesthesia_end: p.optional_datetime("anesthesia_end"),
        pacu_arrival: p.optional_datetime("pacu_arrival"),
        temperatures: p.list("temperatures", parse_temperature),
        intentional_hypothermia_documented: p.required_yes_no("intentional_hypothermia_documented"),
    };
    let unplanned_anterior_vitrectomy = p.optional_yes_no("unplanned_anterior_vitrectomy");

    let (encounter_date, birth_date) = (encounter_date?, birth_date?);
    let record = EncounterRecord {
        row: p.row,
        facility_npi,
        encounter_id,
        encounter_date,
        birth_date,
        procedures,
        diagnoses,
        burn,
        fall,
        wrong_site_side_patient_procedure_implant: wrong,
        hospital_transfer_admission: transfer,
        asc9,
        asc11,
        asc13,
        unplanned_anterior_vitrectomy,
    };
    check_consistency(p, &record, reporting_year);
    Some(record)
}

/// Cross-column rules: a value that is well formed alone but impossible with the others.
fn check_consistency(p: &mut RowParser<'_>, r: &EncounterRecord, reporting_year: Option<i32>) {
    if let Some(year) = reporting_year {
        if r.encounter_date.year() != year {
            p.reject(
                "encounter_date",
                format!("outside the reporting calendar year {year} (payment year {}; manual L40, L87-88)", year + 2),
            );
        }
    }
    if r.birth_date > r.encounter_date {
        p.reject("birth_date", "after the encounter date");
    }
    // Without this answer a screening colonoscopy cannot be placed in or out of the ASC-9
    // population (manual L919-920), so it is an abstraction error, not a default.
    if super::asc9::is_screening_colonoscopy_candidate(r) && r.asc9.biopsy_or_polypectomy.is_none() {
        p.reject("biopsy_or_polypectomy", "required (Y/N) for a screening colonoscopy (ASC-9, manual L919-920)");
    }
    if super::asc14::has_cataract_surgery(r) && r.unplanned_anterior_vitrectomy.is_none() {
        p.reject("unplanned_anterior_vitrectomy", "required (Y/N) for cataract surgery 66982/66983/66984 (ASC-14, manual L1359-1361)");
    }
    if let (Some(start), Some(end)) = (r.asc13.anesthesia_start, r.asc13.anesthesia_end) {
        if end < start {
            p.reject("anesthesia_end", "before anesthesia_start");
        }
    }
    if let Some(post) = r.asc11.post_date {
        if post < r.encounter_date {
            p.reject("vf_post_date", "before the surgery (encounter) date");
        }
    }
}

fn header_index(file: &Path, headers: &csv::StringRecord, required: &[&str], table: &str) -> Result<HashMap<String, usize>> {
    let index: HashMap<String, usize> = headers.iter().enumerate().map(|(i, h)| (h.trim().to_string(), i)).collect();
    for column in required {
        if !index.contains_key(*column) {
            return Err(AscqrError::MissingColumn { file: file.to_path_buf(), table: table.into(), column: column.to_string() });
        }
    }
    Ok(index)
}

/// Iterates a CSV's data rows; a row the CSV layer cannot read (wrong field count, bad UTF-8)
/// becomes a `(row)` rejection instead of stopping the file.
/// Reads every row of a headed CSV through `each`, which turns a row into a value or its
/// problems. Unreadable rows (wrong field count, bad UTF-8) become rejections too, so every
/// input row ends up either accepted or rejected; rejections come back in row order.
pub(crate) fn for_each_row<T>(
    file: &Path,
    reader: impl std::io::Read,
    required: &[&str],
    table: &str,
    mut each: impl FnMut(u64, &csv::StringRecord, &HashMap<String, usize>) -> std::result::Result<T, Vec<Rejection>>,
) -> Result<Parsed<T>> {
    let mut accepted = Vec::new();
    let mut rejections = Vec::new();
    let mut csv = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(reader);
    let headers = csv.headers().map_err(|e| AscqrError::Csv { file: file.to_path_buf(), source: e })?.clone();
    let index = header_index(file, &headers, required, table)?;
    let mut record = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let row = record.position().map(|p| p.line()).unwrap_or(0);
                match each(row, &record, &index) {
                    Ok(value) => accepted.push(value),
                    Err(mut problems) => rejections.append(&mut problems),
                }
            }
            Err(e) => {
                let row = e.position().map(|p| p.line()).unwrap_or(0);
                match e.kind() {
                    csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. } => {
                        rejections.push(Rejection::new(file, row, "(row)", "", format!("unreadable row: {e}")));
                    }
                    _ => return Err(AscqrError::Csv { file: file.to_path_buf(), source: e }),
                }
            }
        }
    }
    rejections.sort_by_key(|r| r.row);
    Ok(Parsed { accepted, rejections })
}

/// Reads abstraction records from any reader; `file` is only used in messages.
/// `reporting_year` (the encounter calendar year) rejects rows from other years.
pub fn parse_records(reader: impl Read, file: &Path, reporting_year: Option<i32>) -> Result<Parsed<EncounterRecord>> {
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for_each_row(
        file,
        reader,
        &RECORD_COLUMNS,
        "web records",
        |row, record, index| {
            let mut p = RowParser { file, row, record, index, problems: Vec::new() };
            let parsed = parse_row(&mut p, reporting_year);
            if let Some(r) = &parsed {
                // One abstraction per encounter: a second row would count the admission twice.
                if p.problems.is_empty() && !seen.insert((r.facility_npi.clone(), r.encounter_id.clone())) {
                    p.reject("encounter_id", "duplicate encounter_id for this facility (an earlier row was accepted)");
                }
            }
            match parsed {
                Some(r) if p.problems.is_empty() => Ok(r),
                _ => Err(p.problems),
            }
        },
    )
}

pub fn read_records(path: &Path, reporting_year: Option<i32>) -> Result<Parsed<EncounterRecord>> {
    let file = std::fs::File::open(path).map_err(|e| AscqrError::io(path, e))?;
    parse_records(file, path, reporting_year)
}

/// Renders rejections as `rejects.csv` (file, row, column, value, reason).
pub fn rejections_csv(rejections: &[Rejection]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| AscqrError::Other(format!("rendering rejects: {e}"));
    w.write_record(["file", "row", "column", "value", "reason"]).map_err(err)?;
    for r in rejections {
        w.write_record([r.file.display().to_string(), r.row.to_string(), r.column.clone(), r.value.clone(), r.reason.clone()]).map_err(err)?;
    }
    w.into_inner().map_err(|e| AscqrError::Other(format!("rendering rejects: {e}")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const VALID_NPI: &str = "1234567893";

    /// A header plus rows given as (column, value) overrides of an all-blank, valid row.
    pub fn csv_with(rows: &[&[(&str, &str)]]) -> String {
        let mut text = RECORD_COLUMNS.join(",") + "\n";
        for (i, overrides) in rows.iter().enumerate() {
            let id = format!("E{i}");
            let values: Vec<String> = RECORD_COLUMNS
                .iter()
                .map(|c| {
                    let default = match *c {
                        "facility_npi" => VALID_NPI,
                        "encounter_id" => id.as_str(),
                        "encounter_date" => "2023-03-01",
                        "birth_date" => "1960-05-05",
                        "burn" | "wrong_site_side_patient_procedure_implant" | "hospital_transfer_admission" => "N",
                        "intentional_hypothermia_documented" | "fall" => "N",
                        _ => "",
                    };
                    let v = overrides.iter().find(|(k, _)| k == c).map(|(_, v)| *v).unwrap_or(default);
                    if v.contains(',') || v.contains('"') { format!("\"{}\"", v.replace('"', "\"\"")) } else { v.to_string() }
                })
                .collect();
            text.push_str(&values.join(","));
            text.push('\n');
        }
        text
    }

    pub fn parse(rows: &[&[(&str, &str)]]) -> Parsed<EncounterRecord> {
        parse_records(csv_with(rows).as_bytes(), Path::new("records.csv"), Some(2023)).expect("header is complete")
    }

    pub fn one(overrides: &[(&str, &str)]) -> EncounterRecord {
        let r = parse(&[overrides]);
        assert!(r.rejections.is_empty(), "{:?}", r.rejections);
        r.accepted.into_iter().next().expect("one row")
    }

    #[test]
    fn npi_luhn_check() {
        assert!(is_valid_npi("1234567893"));
        assert!(!is_valid_npi("1234567890"));
        assert!(!is_valid_npi("123456789"));
        assert!(!is_valid_npi("12345678a3"));
    }

    #[test]
    fn age_counts_completed_years() {
        let d = |s| parse_date(s).unwrap();
        assert_eq!(completed_years(d("1973-03-01"), d("2023-03-01")), 50);
        assert_eq!(completed_years(d("1973-03-02"), d("2023-03-01")), 49);
    }

    #[test]
    fn codes_are_normalised() {
        assert_eq!(normalise_icd10cm("z12.11").as_deref(), Some("Z1211"));
        assert_eq!(normalise_icd10cm("Z86.0100").as_deref(), Some("Z860100"));
        assert_eq!(normalise_icd10cm("1211"), None);
        assert_eq!(parse_procedure("45378-53"), Some(ProcedureLine { code: "45378".into(), modifiers: vec!["53".into()] }));
        assert_eq!(parse_procedure("g0121").map(|p| p.code), Some("G0121".into()));
        assert_eq!(parse_procedure("4537"), None);
        assert_eq!(parse_procedure("45378-5"), None);
    }

    #[test]
    fn temperature_readings_parse_with_units_and_reject_mixups() {
        let t = parse_temperature("96.5F@2023-03-01T11:10").unwrap();
        assert_eq!((t.value, t.unit), (96.5, TemperatureUnit::Fahrenheit));
        assert_eq!(parse_temperature("36.2 C@2023-03-01T11:15").unwrap().unit, TemperatureUnit::Celsius);
        assert!(parse_temperature("36F@2023-03-01T11:15").is_err());
        assert!(parse_temperature("36.2K@2023-03-01T11:15").is_err());
        assert!(parse_temperature("36.2C").is_err());
    }

    #[test]
    fn a_good_row_is_accepted_with_normalised_values() {
        let r = one(&[("procedures", "45378-53;G0121"), ("diagnoses", "z12.11;Z80.0"), ("fall", "inside"), ("biopsy_or_polypectomy", "N")]);
        assert_eq!(r.procedures.len(), 2);
        assert_eq!(r.diagnoses, ["Z1211", "Z800"]);
        assert_eq!(r.fall, FallLocation::Inside);
    }

    #[test]
    fn every_bad_value_is_rejected_with_row_and_column_and_identifiers_are_withheld() {
        let read = parse(&[
            &[("facility_npi", "1234567890")],
            &[("birth_date", "1960-13-40"), ("burn", "maybe")],
            &[("encounter_date", "2022-12-31")],
            &[("temperatures", "36F@2023-03-01T10:00")],
        ]);
        assert!(read.accepted.is_empty());
        let got: Vec<(u64, &str, &str)> = read.rejections.iter().map(|r| (r.row, r.column.as_str(), r.value.as_str())).collect();
        assert_eq!(
            got,
            [
                (2, "facility_npi", "1234567890"),
                (3, "birth_date", WITHHELD),
                (3, "burn", "maybe"),
                (4, "encounter_date", "2022-12-31"),
                (5, "temperatures", "36F@2023-03-01T10:00")
            ]
        );
        assert!(read.rejections[2].to_string().contains("records.csv: row 3, column `burn`"));
        assert!(!read.rejections.iter().any(|r| r.to_string().contains("1960-13-40")));
    }

    #[test]
    fn duplicate_encounters_and_short_rows_are_rejected_not_dropped() {
        let mut text = csv_with(&[&[("encounter_id", "A1")], &[("encounter_id", "A1")]]);
        text.push_str("1234567893,short\n");
        let read = parse_records(text.as_bytes(), Path::new("r.csv"), Some(2023)).unwrap();
        assert_eq!(read.accepted.len(), 1);
        assert_eq!(read.rejections.len(), 2);
        assert_eq!((read.rejections[0].row, read.rejections[0].column.as_str(), read.rejections[0].value.as_str()), (3, "encounter_id", WITHHELD));
        assert_eq!((read.rejections[1].row, read.rejections[1].column.as_str()), (4, "(row)"));
    }

    #[test]
    fn measure_specific_answers_are_required_when_the_measure_applies() {
        let read = parse(&[
            &[("procedures", "45378"), ("diagnoses", "Z12.11")],
            &[("procedures", "66984")],
            &[("anesthesia_type", "general"), ("anesthesia_start", "2023-03-01T10:00"), ("anesthesia_end", "2023-03-01T09:00")],
        ]);
        let cols: Vec<&str> = read.rejections.iter().map(|r| r.column.as_str()).collect();
        assert_eq!(cols, ["biopsy_or_polypectomy", "unplanned_anterior_vitrectomy", "anesthesia_end"]);
    }

    #[test]
    fn a_missing_header_column_is_a_file_error() {
        let err = parse_records("facility_npi,encounter_id\n".as_bytes(), Path::new("r.csv"), None).unwrap_err();
        assert!(err.to_string().contains("missing column `encounter_date`"), "{err}");
    }
}
