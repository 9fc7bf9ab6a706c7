//! The versioned code tables under `data-dictionary/`, embedded at build time so a run never
//! depends on files outside the binary.
//!
//! Every code list is data, never code (methodology §"Design consequence"). Each measure's
//! definition is a versioned folder `measures/<measure>/<version>/` of reviewed tables —
//! `rules.csv` (age, enrollment, window lengths, minimum case count), `cohort_codes.csv`,
//! `risk_variables.csv` and for ASC-12 `exclusion_codes.csv` — whose every row carries its
//! `provenance` (`official` or `reconstructed`) and `source`. The shared tables (ICD-10-CM →
//! condition category, planned admission, CCS) carry `status` (spec / public / reconstructed) and
//! `version` columns. `data-dictionary/PROVENANCE.csv` records the public source file and its
//! sha256 for each derived file.

pub mod workbook;

use crate::error::{AscqrError, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use polars::prelude::{Column, DataFrame, PolarsError, PolarsResult};

/// The version written in every embedded table's `version` column.
pub const DICTIONARY_VERSION: &str = "ascqr-2026.1";

/// The four claims-based outcome measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MeasureId {
    Asc12,
    Asc17,
    Asc18,
    Asc19,
}

impl MeasureId {
    pub const ALL: [MeasureId; 4] = [MeasureId::Asc12, MeasureId::Asc17, MeasureId::Asc18, MeasureId::Asc19];

    pub fn as_str(self) -> &'static str {
        match self {
            MeasureId::Asc12 => "asc12",
            MeasureId::Asc17 => "asc17",
            MeasureId::Asc18 => "asc18",
            MeasureId::Asc19 => "asc19",
        }
    }

    pub fn from_name(s: &str) -> Option<MeasureId> {
        MeasureId::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl std::fmt::Display for MeasureId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `measures/measures.csv`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Measure {
    pub measure: MeasureId,
    pub name: String,
    pub short_name: String,
    pub published_national_rate: f64,
    pub rate_unit: String,
    pub status: String,
    pub version: String,
}

/// Where a row of a measure definition comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provenance {
    /// From CMS's official measure documents or data dictionary.
    Official,
    /// Our public reconstruction where the official list is not available.
    Reconstructed,
}

impl Provenance {
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::Official => "official",
            Provenance::Reconstructed => "reconstructed",
        }
    }
}

/// One row of `measures/<m>/<version>/rules.csv`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RuleRow {
    pub rule: String,
    pub value: String,
    pub provenance: Provenance,
    pub source: String,
}

/// How the work RVU of a claim with several qualifying procedures is formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkRvuOfSeveral {
    /// The highest work RVU among the qualifying codes (the default).
    Highest,
    /// The sum over the qualifying lines.
    Sum,
}

/// A measure's cohort rules, parsed from `rules.csv`. Optional rules switch their stage off when
/// absent (ASC-12 has no post-procedure enrollment rule; only ASC-12 looks back for a repeat
/// colonoscopy).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortRules {
    /// Age at the procedure, completed years (all four manuals: 65 and older).
    pub min_age_years: u32,
    /// Calendar months before the procedure month that must be FFS Part A and B.
    pub enrollment_months_before: u32,
    /// Days after the procedure that must be FFS Part A and B unless the patient died in them.
    pub enrollment_days_after: Option<u32>,
    /// Days before the procedure that form the history (risk variables, exclusion diagnoses).
    pub history_days: u32,
    /// Last day of the outcome window (day 0 is the procedure day).
    pub outcome_last_day: u32,
    /// A procedure on days 0..=this after the patient's earlier index procedure is not an index.
    pub index_window_days: u32,
    /// A colonoscopy on days 1..=this after another colonoscopy in any setting is a repeat.
    pub repeat_colonoscopy_lookback_days: Option<u32>,
    pub cohort_period_years: u32,
    /// Facilities with fewer cases get "Number of Cases Too Small".
    pub min_cases: u32,
    /// `work_rvu_of_several_procedures`: `highest` (default) or `sum`.
    pub work_rvu_of_several: WorkRvuOfSeveral,
}

impl CohortRules {
    const REQUIRED: [&'static str; 7] =
        ["min_age_years", "enrollment_months_before", "history_days", "outcome_last_day", "index_window_days", "cohort_period_years", "min_cases"];
    const OPTIONAL: [&'static str; 2] = ["enrollment_days_after", "repeat_colonoscopy_lookback_days"];
    /// The one rule whose value is a word, not a number.
    const WORK_RVU: &'static str = "work_rvu_of_several_procedures";

    /// Parses the rows of `file`; an unknown, repeated, missing or non-numeric rule is an error
    /// naming the file, row and value.
    fn parse(file: &str, rows: &[RuleRow]) -> Result<CohortRules> {
        let mut values: BTreeMap<&str, u32> = BTreeMap::new();
        let mut work_rvu_of_several = None;
        for (i, r) in rows.iter().enumerate() {
            let row = i as u64 + 1;
            let bad_value = |column: &str, value: &str, expected: String| AscqrError::BadValue {
                file: file.into(),
                row,
                column: column.into(),
                value: value.into(),
                expected,
            };
            let name = r.rule.trim();
            if name == Self::WORK_RVU {
                let rule = match r.value.trim() {
                    "highest" => WorkRvuOfSeveral::Highest,
                    "sum" => WorkRvuOfSeveral::Sum,
                    other => return Err(bad_value("value", other, "highest or sum".into())),
                };
                if work_rvu_of_several.replace(rule).is_some() {
                    return Err(AscqrError::BadRow { file: file.into(), row, message: format!("rule {name} is given twice") });
                }
                continue;
            }
            if !Self::REQUIRED.contains(&name) && !Self::OPTIONAL.contains(&name) {
                let known: Vec<&str> = Self::REQUIRED.iter().chain(Self::OPTIONAL.iter()).chain([&Self::WORK_RVU]).copied().collect();
                return Err(bad_value("rule", name, format!("a known rule ({})", known.join(", "))));
            }
            let v: u32 = r.value.trim().parse().map_err(|_| bad_value("value", &r.value, format!("a whole number of {name}")))?;
            if values.insert(name, v).is_some() {
                return Err(AscqrError::BadRow { file: file.into(), row, message: format!("rule {name} is given twice") });
            }
        }
        let need = |name: &str| -> Result<u32> {
            values.get(name).copied().ok_or_else(|| AscqrError::Other(format!("{file}: required rule {name} is missing")))
        };
        Ok(CohortRules {
            min_age_years: need("min_age_years")?,
            enrollment_months_before: need("enrollment_months_before")?,
            enrollment_days_after: values.get("enrollment_days_after").copied(),
            history_days: need("history_days")?,
            outcome_last_day: need("outcome_last_day")?,
            index_window_days: need("index_window_days")?,
            repeat_colonoscopy_lookback_days: values.get("repeat_colonoscopy_lookback_days").copied(),
            cohort_period_years: need("cohort_period_years")?,
            min_cases: need("min_cases")?,
            work_rvu_of_several: work_rvu_of_several.unwrap_or(WorkRvuOfSeveral::Highest),
        })
    }
}

/// One row of `measures/<m>/<version>/cohort_codes.csv`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CohortCode {
    pub hcpcs: String,
    /// `cohort` (qualifies a procedure) or `concurrent_high_risk` (takes it out of ASC-12).
    pub role: String,
    pub procedure_type: Option<String>,
    pub ccs_category: Option<String>,
    pub work_rvu_2023: Option<f64>,
    pub work_rvu_2025: Option<f64>,
    pub label: String,
    pub provenance: Provenance,
    pub source: String,
}

impl CohortCode {
    pub fn is_cohort(&self) -> bool {
        self.role == "cohort"
    }
    pub fn is_concurrent_high_risk(&self) -> bool {
        self.role == "concurrent_high_risk"
    }
}

/// How a risk variable is defined (`kind` column of `risk_variables.csv`).
#[derive(Debug, Clone, PartialEq)]
pub enum VariableKind {
    /// Age band, inclusive bounds (`85+` has no upper bound).
    AgeGroup { low: u32, high: Option<u32> },
    /// Completed years of age over 65.
    AgeYearsOver65,
    /// Any of these condition categories.
    ConditionCategories(Vec<u16>),
    /// Any of these ICD-10-CM codes (exact codes, no dots).
    Diagnoses(Vec<String>),
    /// Any of these HCPCS codes billed on the index claim.
    ProcedureCodes(Vec<String>),
    /// The index procedure's type (ASC-19).
    ProcedureType(String),
    /// The number of qualifying procedures on the index claim: exactly `n`, or `n` or more.
    ProcedureCount { n: u32, or_more: bool },
    /// Work RVU of the index procedure.
    WorkRvu,
    /// Product of two other variables.
    Interaction(String, String),
}

/// One row of `measures/<m>/<version>/risk_variables.csv`, parsed.
#[derive(Debug, Clone)]
pub struct RiskVariable {
    pub variable: String,
    pub label: String,
    pub kind: VariableKind,
    /// A CC that may be a complication of care counts only when it is in the history, not when it
    /// is found on the index claim alone (methodology §4).
    pub complication_of_care: bool,
    pub provenance: Provenance,
}

#[derive(Debug, Deserialize)]
struct RiskVariableRow {
    variable: String,
    label: String,
    kind: String,
    definition: Option<String>,
    complication_of_care: Option<String>,
    provenance: Provenance,
}

fn split_list(s: &str) -> Vec<String> {
    s.split('|').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()
}

fn parse_kind(file: &str, row: usize, kind: &str, definition: &str) -> Result<VariableKind> {
    let bad = |what: &str| AscqrError::BadValue {
        file: file.into(),
        row: row as u64,
        column: "definition".into(),
        value: definition.to_string(),
        expected: what.to_string(),
    };
    Ok(match kind {
        "age_group" => {
            if let Some(low) = definition.strip_suffix('+') {
                VariableKind::AgeGroup { low: low.parse().map_err(|_| bad("an age band like 70-74 or 85+"))?, high: None }
            } else {
                let (lo, hi) = definition.split_once('-').ok_or_else(|| bad("an age band like 70-74 or 85+"))?;
                VariableKind::AgeGroup {
                    low: lo.parse().map_err(|_| bad("an age band like 70-74 or 85+"))?,
                    high: Some(hi.parse().map_err(|_| bad("an age band like 70-74 or 85+"))?),
                }
            }
        }
        "age_years_over_65" => VariableKind::AgeYearsOver65,
        "cc" => VariableKind::ConditionCategories(
            split_list(definition)
                .iter()
                .map(|c| c.parse::<u16>().map_err(|_| bad("condition-category numbers separated by |")))
                .collect::<Result<_>>()?,
        ),
        "icd10cm" => VariableKind::Diagnoses(split_list(definition)),
        "procedure_code" => VariableKind::ProcedureCodes(split_list(definition)),
        "procedure_type" => VariableKind::ProcedureType(definition.trim().to_string()),
        "procedure_count" => {
            let d = definition.trim();
            let (n, or_more) = match d.strip_suffix('+') {
                Some(n) => (n, true),
                None => (d, false),
            };
            VariableKind::ProcedureCount { n: n.parse().map_err(|_| bad("a count like 2 or 3+"))?, or_more }
        }
        "work_rvu" => VariableKind::WorkRvu,
        "interaction" => {
            let (a, b) = definition.split_once('*').ok_or_else(|| bad("two variable names joined by *"))?;
            VariableKind::Interaction(a.trim().to_string(), b.trim().to_string())
        }
        other => {
            return Err(AscqrError::BadValue {
                file: file.into(),
                row: row as u64,
                column: "kind".into(),
                value: other.to_string(),
                expected: "a known variable kind".into(),
            })
        }
    })
}

/// One ICD-10-CM → condition-category mapping row. The crosswalk changes between years (CMS's
/// payment year Y maps the diagnoses of calendar year Y − 1), so a row may be bounded to the
/// calendar years of the diagnosis's claim, inclusive; no bound means every year.
#[derive(Debug, Clone, Deserialize)]
pub struct DxToCc {
    pub icd10cm: String,
    pub cc: u16,
    #[serde(default)]
    pub year_first: Option<i32>,
    #[serde(default)]
    pub year_last: Option<i32>,
    pub source: String,
    pub status: String,
}

impl DxToCc {
    /// Whether the row holds in every year.
    pub fn is_every_year(&self) -> bool {
        self.year_first.is_none() && self.year_last.is_none()
    }
}

/// One row of `measures/asc12/<version>/exclusion_codes.csv`.
#[derive(Debug, Clone, Deserialize)]
pub struct ExclusionCode {
    pub icd10cm: String,
    pub exclusion: String,
    pub label: String,
    pub provenance: Provenance,
}

/// One row of `synth/facility_volumes.csv`: how many facilities had this case volume.
#[derive(Debug, Clone, Deserialize)]
pub struct FacilityVolume {
    pub measure: MeasureId,
    pub volume: Option<u32>,
    pub facilities: u32,
}

/// The planned admission algorithm v4.0 tables (methodology §3).
#[derive(Debug, Clone, Default)]
pub struct PlannedAdmissionTables {
    pub always_planned_procedure_ccs: BTreeSet<String>,
    pub always_planned_diagnosis_ccs: BTreeSet<String>,
    pub potentially_planned_procedure_ccs: BTreeSet<String>,
    pub potentially_planned_icd10pcs: HashSet<String>,
    pub acute_diagnosis_ccs: BTreeSet<String>,
    pub acute_diagnosis_icd10cm: HashSet<String>,
    pub icd10cm_to_ccs: HashMap<String, String>,
    pub icd10pcs_to_ccs: HashMap<String, String>,
    /// The two CCS maps as frames, built on first use: a run joins against them for every
    /// measure of every shard, and building them (150,000 codes) cost more than the joins.
    ccs_frames: OnceLock<std::result::Result<(DataFrame, DataFrame), String>>,
}

impl PlannedAdmissionTables {
    /// `icd10cm_to_ccs` and `icd10pcs_to_ccs` as two-column frames (`code`, `ccs`), in code
    /// order.
    pub fn ccs_frames(&self) -> Result<&(DataFrame, DataFrame)> {
        let frame = |map: &HashMap<String, String>| -> PolarsResult<DataFrame> {
            let mut pairs: Vec<(&String, &String)> = map.iter().collect();
            pairs.sort();
            let (codes, ccs): (Vec<&str>, Vec<&str>) = pairs.into_iter().map(|(a, b)| (a.as_str(), b.as_str())).unzip();
            DataFrame::new(codes.len(), vec![Column::new("code".into(), codes), Column::new("ccs".into(), ccs)])
        };
        self.ccs_frames
            .get_or_init(|| {
                let both = || -> PolarsResult<(DataFrame, DataFrame)> { Ok((frame(&self.icd10cm_to_ccs)?, frame(&self.icd10pcs_to_ccs)?)) };
                both().map_err(|e: PolarsError| e.to_string())
            })
            .as_ref()
            .map_err(|e| AscqrError::Other(format!("building the CCS code tables: {e}")))
    }
}

/// Everything a measure needs from the dictionary: one definition version.
#[derive(Debug, Clone)]
pub struct MeasureDefinition {
    pub measure: Measure,
    /// The definition folder's name, e.g. `ascqr-2026.1` or a user's `cms-2025`.
    pub version: String,
    pub rules: CohortRules,
    pub rule_rows: Vec<RuleRow>,
    pub cohort_codes: Vec<CohortCode>,
    pub risk_variables: Vec<RiskVariable>,
    /// ASC-12's inflammatory bowel disease / diverticulitis codes (empty for other measures).
    pub exclusion_codes: Vec<ExclusionCode>,
    /// Each definition file and where it was read from (the embedded copy or a user's file).
    pub files: Vec<(String, String)>,
}

impl MeasureDefinition {
    pub fn code(&self, hcpcs: &str) -> Option<&CohortCode> {
        self.cohort_codes.iter().find(|c| c.hcpcs == hcpcs)
    }
    pub fn variable_names(&self) -> Vec<String> {
        self.risk_variables.iter().map(|v| v.variable.clone()).collect()
    }

    /// What this definition is made of, for every output that uses it: version, where each file
    /// came from, the rules, and row counts by provenance per table.
    pub fn provenance_summary(&self) -> serde_json::Value {
        fn count(rows: impl Iterator<Item = Provenance>) -> BTreeMap<&'static str, u64> {
            let mut m = BTreeMap::new();
            for p in rows {
                *m.entry(p.as_str()).or_insert(0) += 1;
            }
            m
        }
        serde_json::json!({
            "measure": self.measure.measure.as_str(),
            "definition_version": self.version,
            "files": self.files.iter().map(|(f, from)| serde_json::json!({"file": f, "read_from": from})).collect::<Vec<_>>(),
            "rules": self.rule_rows,
            "rows_by_provenance": {
                "rules": count(self.rule_rows.iter().map(|r| r.provenance)),
                "cohort_codes": count(self.cohort_codes.iter().filter(|c| c.is_cohort()).map(|c| c.provenance)),
                "concurrent_high_risk_codes": count(self.cohort_codes.iter().filter(|c| c.is_concurrent_high_risk()).map(|c| c.provenance)),
                "exclusion_codes": count(self.exclusion_codes.iter().map(|c| c.provenance)),
                "risk_variables": count(self.risk_variables.iter().map(|v| v.provenance)),
            },
        })
    }
}

/// The whole embedded dictionary.
#[derive(Debug, Clone)]
pub struct Dictionary {
    pub measures: BTreeMap<MeasureId, MeasureDefinition>,
    pub dx_to_cc: Vec<DxToCc>,
    pub facility_volumes: Vec<FacilityVolume>,
    pub planned: PlannedAdmissionTables,
    /// Files read from a user's directory instead of the embedded copy (relative paths).
    pub overrides: Vec<String>,
}

macro_rules! embedded {
    ($path:literal) => {
        ($path, include_str!(concat!("../data-dictionary/", $path)))
    };
}

const MEASURES: (&str, &str) = embedded!("measures/measures.csv");
/// The embedded definition files, `measures/<m>/ascqr-2026.1/<file>`.
const DEFINITIONS: [(MeasureId, &str, (&str, &str)); 13] = [
    (MeasureId::Asc12, "rules.csv", embedded!("measures/asc12/ascqr-2026.1/rules.csv")),
    (MeasureId::Asc12, "cohort_codes.csv", embedded!("measures/asc12/ascqr-2026.1/cohort_codes.csv")),
    (MeasureId::Asc12, "risk_variables.csv", embedded!("measures/asc12/ascqr-2026.1/risk_variables.csv")),
    (MeasureId::Asc12, "exclusion_codes.csv", embedded!("measures/asc12/ascqr-2026.1/exclusion_codes.csv")),
    (MeasureId::Asc17, "rules.csv", embedded!("measures/asc17/ascqr-2026.1/rules.csv")),
    (MeasureId::Asc17, "cohort_codes.csv", embedded!("measures/asc17/ascqr-2026.1/cohort_codes.csv")),
    (MeasureId::Asc17, "risk_variables.csv", embedded!("measures/asc17/ascqr-2026.1/risk_variables.csv")),
    (MeasureId::Asc18, "rules.csv", embedded!("measures/asc18/ascqr-2026.1/rules.csv")),
    (MeasureId::Asc18, "cohort_codes.csv", embedded!("measures/asc18/ascqr-2026.1/cohort_codes.csv")),
    (MeasureId::Asc18, "risk_variables.csv", embedded!("measures/asc18/ascqr-2026.1/risk_variables.csv")),
    (MeasureId::Asc19, "rules.csv", embedded!("measures/asc19/ascqr-2026.1/rules.csv")),
    (MeasureId::Asc19, "cohort_codes.csv", embedded!("measures/asc19/ascqr-2026.1/cohort_codes.csv")),
    (MeasureId::Asc19, "risk_variables.csv", embedded!("measures/asc19/ascqr-2026.1/risk_variables.csv")),
];
/// The files a definition folder may hold.
pub const DEFINITION_FILES: [&str; 4] = ["rules.csv", "cohort_codes.csv", "risk_variables.csv", "exclusion_codes.csv"];

/// The definition version folder a user's dictionary holds for `m`, if any. Exactly one version
/// per measure may be present; code lists outside a version folder are an error saying where
/// they belong.
fn user_definition_folder(dir: &Path, m: MeasureId) -> Result<Option<(String, PathBuf)>> {
    let mdir = dir.join("measures").join(m.as_str());
    if !mdir.is_dir() {
        return Ok(None);
    }
    let mut versions = Vec::new();
    for entry in std::fs::read_dir(&mdir).map_err(|e| AscqrError::io(&mdir, e))? {
        let entry = entry.map_err(|e| AscqrError::io(&mdir, e))?;
        let name = entry.file_name().to_string_lossy().to_string();
        if entry.path().is_dir() {
            versions.push(name);
        } else if DEFINITION_FILES.contains(&name.as_str()) {
            return Err(AscqrError::InvalidOption(format!(
                "{}: measure definitions live in version folders; move it to {}",
                entry.path().display(),
                mdir.join("<version>").join(&name).display()
            )));
        }
    }
    versions.sort();
    match versions.len() {
        0 => Ok(None),
        1 => {
            let v = versions.pop().expect("one version");
            Ok(Some((v.clone(), mdir.join(v))))
        }
        _ => Err(AscqrError::InvalidOption(format!(
            "{}: several definition versions ({}); keep the one to use",
            mdir.display(),
            versions.join(", ")
        ))),
    }
}
const DX_TO_CC: (&str, &str) = embedded!("condition-categories/icd10cm_to_cc.csv");
const FACILITY_VOLUMES: (&str, &str) = embedded!("synth/facility_volumes.csv");
const PAA_ALWAYS_PROC: (&str, &str) = embedded!("outcomes/planned_admission/always_planned_procedure_ccs.csv");
const PAA_ALWAYS_DX: (&str, &str) = embedded!("outcomes/planned_admission/always_planned_diagnosis_ccs.csv");
const PAA_POTENTIAL_PROC_CCS: (&str, &str) = embedded!("outcomes/planned_admission/potentially_planned_procedure_ccs.csv");
const PAA_POTENTIAL_PCS: (&str, &str) = embedded!("outcomes/planned_admission/potentially_planned_icd10pcs.csv");
const PAA_ACUTE_CCS: (&str, &str) = embedded!("outcomes/planned_admission/acute_diagnosis_ccs.csv");
const PAA_ACUTE_DX: (&str, &str) = embedded!("outcomes/planned_admission/acute_diagnosis_icd10cm.csv");
const CCS_DX: (&str, &str) = embedded!("outcomes/ccs/icd10cm_to_ccs.csv");
const CCS_PCS: (&str, &str) = embedded!("outcomes/ccs/icd10pcs_to_ccs.csv");

/// Reads an embedded CSV into typed rows; a bad row is an error naming the file and row.
fn read_rows<T: serde::de::DeserializeOwned>((name, text): (&str, &str)) -> Result<Vec<T>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (i, rec) in reader.deserialize::<T>().enumerate() {
        out.push(rec.map_err(|e| AscqrError::BadRow {
            file: name.into(),
            row: i as u64 + 1,
            message: e.to_string(),
        })?);
    }
    Ok(out)
}

/// The records of a CSV table (header skipped); a malformed row is an error naming file and row.
fn records((name, text): (&str, &str)) -> Result<Vec<csv::StringRecord>> {
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .enumerate()
        .map(|(i, rec)| rec.map_err(|e| AscqrError::BadRow { file: name.into(), row: i as u64 + 1, message: e.to_string() }))
        .collect()
}

/// The first column of a CSV table.
fn first_column(file: (&str, &str)) -> Result<Vec<String>> {
    Ok(records(file)?.iter().map(|r| r.get(0).unwrap_or("").to_string()).collect())
}

/// The first two columns of a CSV table as a map.
fn two_columns(file: (&str, &str)) -> Result<HashMap<String, String>> {
    Ok(records(file)?.iter().map(|r| (r.get(0).unwrap_or("").to_string(), r.get(1).unwrap_or("").to_string())).collect())
}

fn load_risk_variables(file: (&str, &str)) -> Result<Vec<RiskVariable>> {
    let rows: Vec<RiskVariableRow> = read_rows(file)?;
    rows.into_iter()
        .enumerate()
        .map(|(i, r)| {
            Ok(RiskVariable {
                kind: parse_kind(file.0, i + 1, &r.kind, r.definition.as_deref().unwrap_or(""))?,
                variable: r.variable,
                label: r.label,
                complication_of_care: r.complication_of_care.as_deref() == Some("true"),
                provenance: r.provenance,
            })
        })
        .collect()
}

impl Dictionary {
    /// Parses the embedded tables.
    pub fn load_embedded() -> Result<Dictionary> {
        Dictionary::load(None)
    }

    /// Parses the tables, taking each file from `overlay` when it has a file at the same
    /// relative path (e.g. `condition-categories/icd10cm_to_cc.csv`), and the embedded copy
    /// otherwise. A measure whose folder in `overlay` holds a version folder
    /// (`measures/asc17/cms-2025/`, e.g. from CMS's official lists) uses that version: its files
    /// replace the embedded ones and the definition files it lacks come from the embedded
    /// version (recorded per file in [`MeasureDefinition::files`]). The files taken from the
    /// overlay are listed in `overrides`.
    pub fn load(overlay: Option<&Path>) -> Result<Dictionary> {
        let overrides = std::cell::RefCell::new(Vec::new());
        let texts = std::cell::RefCell::new(Vec::<(String, String)>::new());
        let get = |(name, text): (&str, &str)| -> Result<usize> {
            let mut t = texts.borrow_mut();
            if let Some(dir) = overlay {
                let path = dir.join(name);
                if path.is_file() {
                    let body = std::fs::read_to_string(&path).map_err(|e| AscqrError::io(&path, e))?;
                    overrides.borrow_mut().push(name.to_string());
                    t.push((path.display().to_string(), body));
                    return Ok(t.len() - 1);
                }
            }
            t.push((format!("data-dictionary/{name}"), text.to_string()));
            Ok(t.len() - 1)
        };
        // Each table is read through `get`, then parsed from its (file name, text).
        macro_rules! with {
            ($file:expr, $parse:expr) => {{
                let k = get($file)?;
                let t = texts.borrow();
                let (n, body) = &t[k];
                $parse((n.as_str(), body.as_str()))
            }};
        }
        let measures: Vec<Measure> = with!(MEASURES, read_rows)?;
        let mut by_id = BTreeMap::new();
        for m in MeasureId::ALL {
            let measure = measures
                .iter()
                .find(|x| x.measure == m)
                .cloned()
                .ok_or_else(|| AscqrError::Other(format!("data-dictionary/measures/measures.csv has no row for {m}")))?;
            let user = match overlay {
                Some(dir) => user_definition_folder(dir, m)?,
                None => None,
            };
            let mut files = Vec::new();
            // (name, text) of each definition file: the user's version folder first, then the
            // embedded version.
            let mut read = |file: &str| -> Result<Option<(String, String)>> {
                if let Some((_, folder)) = &user {
                    let path = folder.join(file);
                    if path.is_file() {
                        let body = std::fs::read_to_string(&path).map_err(|e| AscqrError::io(&path, e))?;
                        let rel = path.strip_prefix(overlay.expect("a user folder comes from the overlay")).unwrap_or(&path);
                        overrides.borrow_mut().push(rel.display().to_string());
                        files.push((file.to_string(), path.display().to_string()));
                        return Ok(Some((path.display().to_string(), body)));
                    }
                }
                Ok(DEFINITIONS.iter().find(|(id, f, _)| *id == m && *f == file).map(|(_, _, (name, text))| {
                    files.push((file.to_string(), format!("embedded data-dictionary/{name}")));
                    (format!("data-dictionary/{name}"), text.to_string())
                }))
            };
            let required = |f: Option<(String, String)>, file: &str| {
                f.ok_or_else(|| AscqrError::Other(format!("measure {m}: no {file} in its definition")))
            };
            let rules_file = required(read("rules.csv")?, "rules.csv")?;
            let rule_rows: Vec<RuleRow> = read_rows((&rules_file.0, &rules_file.1))?;
            let rules = CohortRules::parse(&rules_file.0, &rule_rows)?;
            let codes = required(read("cohort_codes.csv")?, "cohort_codes.csv")?;
            let variables = required(read("risk_variables.csv")?, "risk_variables.csv")?;
            let exclusion_codes = match read("exclusion_codes.csv")? {
                Some((name, text)) => read_rows((&name, &text))?,
                None => Vec::new(),
            };
            by_id.insert(
                m,
                MeasureDefinition {
                    measure,
                    version: user.as_ref().map(|(v, _)| v.clone()).unwrap_or_else(|| DICTIONARY_VERSION.to_string()),
                    rules,
                    rule_rows,
                    cohort_codes: read_rows((&codes.0, &codes.1))?,
                    risk_variables: load_risk_variables((&variables.0, &variables.1))?,
                    exclusion_codes,
                    files,
                },
            );
        }
        let set = |f: (&str, &str)| -> Result<BTreeSet<String>> { Ok(first_column(f)?.into_iter().collect()) };
        let hash = |f: (&str, &str)| -> Result<HashSet<String>> { Ok(first_column(f)?.into_iter().collect()) };
        let planned = PlannedAdmissionTables {
            always_planned_procedure_ccs: with!(PAA_ALWAYS_PROC, set)?,
            always_planned_diagnosis_ccs: with!(PAA_ALWAYS_DX, set)?,
            potentially_planned_procedure_ccs: with!(PAA_POTENTIAL_PROC_CCS, set)?,
            potentially_planned_icd10pcs: with!(PAA_POTENTIAL_PCS, hash)?,
            acute_diagnosis_ccs: with!(PAA_ACUTE_CCS, set)?,
            acute_diagnosis_icd10cm: with!(PAA_ACUTE_DX, hash)?,
            icd10cm_to_ccs: with!(CCS_DX, two_columns)?,
            icd10pcs_to_ccs: with!(CCS_PCS, two_columns)?,
            ccs_frames: OnceLock::new(),
        };
        let dx_to_cc = with!(DX_TO_CC, read_rows)?;
        let facility_volumes = with!(FACILITY_VOLUMES, read_rows)?;
        Ok(Dictionary { measures: by_id, dx_to_cc, facility_volumes, planned, overrides: overrides.into_inner() })
    }

    /// The embedded dictionary, parsed once per process.
    pub fn embedded() -> Result<&'static Dictionary> {
        static DICT: OnceLock<std::result::Result<Dictionary, String>> = OnceLock::new();
        DICT.get_or_init(|| Dictionary::load_embedded().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| AscqrError::Other(format!("embedded data dictionary: {e}")))
    }

    pub fn measure(&self, m: MeasureId) -> &MeasureDefinition {
        &self.measures[&m]
    }

    /// The condition categories each ICD-10-CM code maps to in some year.
    pub fn cc_map(&self) -> HashMap<&str, Vec<u16>> {
        let mut map: HashMap<&str, Vec<u16>> = HashMap::new();
        for r in &self.dx_to_cc {
            let ccs = map.entry(r.icd10cm.as_str()).or_default();
            if !ccs.contains(&r.cc) {
                ccs.push(r.cc);
            }
        }
        map
    }

    /// Codes whose every mapping row holds in every year.
    pub fn codes_mapped_alike_every_year(&self) -> HashSet<&str> {
        let varying: HashSet<&str> = self.dx_to_cc.iter().filter(|r| !r.is_every_year()).map(|r| r.icd10cm.as_str()).collect();
        self.dx_to_cc.iter().map(|r| r.icd10cm.as_str()).filter(|c| !varying.contains(c)).collect()
    }
}

/// What [`import_cc_crosswalk`] read and wrote.
#[derive(Debug, Clone, Serialize)]
pub struct CcImport {
    pub input: String,
    pub output: String,
    pub rows_read: u64,
    /// Distinct (code, category, years) rows written.
    pub mappings: usize,
    pub codes: usize,
    /// Condition categories some measure's risk variable uses that no imported code maps to.
    pub categories_used_but_empty: Vec<u16>,
}

/// Imports an official ICD-10-CM → condition-category crosswalk into a dictionary overlay
/// folder, so `--dictionary OUT` replaces the reconstruction with no code change.
///
/// Input: a comma-separated file with a header row holding a code column (`icd10cm`,
/// `diagnosis_code` or `dx`) and a category column (`cc`); other columns are ignored. Codes may
/// carry dots and lower case (`i50.9` → `I509`); a code with several categories has one row per
/// category. Optional `year_first` and `year_last` (or one `year`) bound a row to the calendar
/// years of the diagnosis's claim; empty means no bound. A code that is not ICD-10-CM shaped, a
/// category outside 1–201 or a bad year is an error naming the file, row, column and value. Writes `OUT/condition-categories/icd10cm_to_cc.csv` in the
/// dictionary's layout with status `official` and `version` as given.
pub fn import_cc_crosswalk(input: &Path, out: &Path, version: &str, dict: &Dictionary) -> Result<CcImport> {
    use crate::claims::{schema::CodeShape, shapes::has_shape};
    let (mut reader, headers) = crate::claims::validate::open_delimited(input, b',')?;
    let find = |names: &[&str]| headers.iter().position(|h| names.contains(&h.trim().to_ascii_lowercase().as_str()));
    let code_col = find(&["icd10cm", "diagnosis_code", "dx"]).ok_or_else(|| AscqrError::MissingColumn {
        file: input.into(),
        table: "condition-category crosswalk".into(),
        column: "icd10cm (or diagnosis_code, dx)".into(),
    })?;
    let cc_col = find(&["cc"]).ok_or_else(|| AscqrError::MissingColumn {
        file: input.into(),
        table: "condition-category crosswalk".into(),
        column: "cc".into(),
    })?;
    // Optional: the calendar years a row holds in (`year_first`, `year_last`, or one `year`).
    let year_first_col = find(&["year_first"]);
    let year_last_col = find(&["year_last"]);
    let year_col = find(&["year"]);
    let mut pairs: BTreeSet<(String, u16, Option<i32>, Option<i32>)> = BTreeSet::new();
    let mut record = csv::StringRecord::new();
    let mut row = 0u64;
    while crate::claims::validate::read_record(&mut reader, &mut record, input, row + 1)? {
        row += 1;
        let raw_code = record.get(code_col).unwrap_or("");
        let raw_cc = record.get(cc_col).unwrap_or("");
        let bad = |column: &str, value: &str, expected: &str| AscqrError::BadValue {
            file: input.into(),
            row,
            column: column.into(),
            value: value.into(),
            expected: expected.into(),
        };
        let code: String = raw_code.trim().chars().filter(|c| *c != '.').collect::<String>().to_ascii_uppercase();
        if !has_shape(CodeShape::Icd10Cm, &code, None) {
            return Err(bad(&headers[code_col], raw_code, "an ICD-10-CM code"));
        }
        let cc: u16 = raw_cc.trim().parse().ok().filter(|c| (1..=201).contains(c)).ok_or_else(|| bad("cc", raw_cc, "a condition category 1-201"))?;
        let year = |col: Option<usize>| -> Result<Option<i32>> {
            let Some(k) = col else { return Ok(None) };
            let raw = record.get(k).unwrap_or("").trim();
            if raw.is_empty() {
                return Ok(None);
            }
            raw.parse().ok().filter(|y| (1990..=2100).contains(y)).map(Some).ok_or_else(|| bad(&headers[k], raw, "a calendar year (empty: no bound)"))
        };
        let (first, last) = match year_col {
            Some(_) => (year(year_col)?, year(year_col)?),
            None => (year(year_first_col)?, year(year_last_col)?),
        };
        if let (Some(a), Some(b)) = (first, last) {
            if a > b {
                return Err(bad("year_last", &b.to_string(), &format!("a year from year_first ({a}) on")));
            }
        }
        pairs.insert((code, cc, first, last));
    }
    let source = input.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let mut text = String::from("icd10cm,cc,year_first,year_last,source,status,version\n");
    let show = |y: &Option<i32>| y.map(|y| y.to_string()).unwrap_or_default();
    for (code, cc, first, last) in &pairs {
        text.push_str(&format!("{code},{cc},{},{},{},official,{}\n", show(first), show(last), csv_field(&source), csv_field(version)));
    }
    let target = out.join("condition-categories");
    std::fs::create_dir_all(&target).map_err(|e| AscqrError::io(&target, e))?;
    let target = target.join("icd10cm_to_cc.csv");
    crate::output::write_atomic(&target, text.as_bytes())?;
    let mapped: BTreeSet<u16> = pairs.iter().map(|(_, cc, _, _)| *cc).collect();
    let mut used = BTreeSet::new();
    for def in dict.measures.values() {
        for v in &def.risk_variables {
            if let VariableKind::ConditionCategories(ccs) = &v.kind {
                used.extend(ccs.iter().copied());
            }
        }
    }
    Ok(CcImport {
        input: input.display().to_string(),
        output: target.display().to_string(),
        rows_read: row,
        mappings: pairs.len(),
        codes: pairs.iter().map(|(c, _, _, _)| c).collect::<BTreeSet<_>>().len(),
        categories_used_but_empty: used.difference(&mapped).copied().collect(),
    })
}

/// A CSV field, quoted when it needs to be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_dictionary_parses_and_every_measure_has_codes_and_variables() {
        let d = Dictionary::load_embedded().unwrap();
        for m in MeasureId::ALL {
            let def = d.measure(m);
            assert!(def.cohort_codes.iter().any(|c| c.is_cohort()), "{m} has no cohort codes");
            assert!(!def.risk_variables.is_empty(), "{m} has no risk variables");
            let names = def.variable_names();
            let unique: BTreeSet<_> = names.iter().collect();
            assert_eq!(unique.len(), names.len(), "{m} repeats a variable name");
        }
        assert!(d.measure(MeasureId::Asc12).cohort_codes.iter().any(|c| c.hcpcs == "45378"));
        assert!(d.measure(MeasureId::Asc12).cohort_codes.iter().any(|c| c.is_concurrent_high_risk()));
        assert!(!d.dx_to_cc.is_empty());
        assert!(d.planned.always_planned_diagnosis_ccs.contains("45"));
    }

    #[test]
    fn every_cc_a_variable_uses_has_codes_in_the_crosswalk() {
        let d = Dictionary::load_embedded().unwrap();
        let mapped: BTreeSet<u16> = d.dx_to_cc.iter().map(|r| r.cc).collect();
        for m in MeasureId::ALL {
            for v in &d.measure(m).risk_variables {
                if let VariableKind::ConditionCategories(ccs) = &v.kind {
                    assert!(ccs.iter().any(|c| mapped.contains(c)), "{m}.{}: none of {ccs:?} has a code", v.variable);
                }
            }
        }
    }

    #[test]
    fn interactions_name_variables_of_the_same_measure() {
        let d = Dictionary::load_embedded().unwrap();
        for m in MeasureId::ALL {
            let def = d.measure(m);
            let names = def.variable_names();
            for v in &def.risk_variables {
                if let VariableKind::Interaction(a, b) = &v.kind {
                    assert!(names.contains(a) && names.contains(b), "{m}.{}: unknown term in {a}*{b}", v.variable);
                }
            }
        }
    }

    const CODES_HEADER: &str = "hcpcs,role,procedure_type,ccs_category,work_rvu_2023,work_rvu_2025,label,provenance,source,version\n";

    #[test]
    fn a_users_definition_version_replaces_only_the_files_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join("measures/asc12/cms-2025");
        std::fs::create_dir_all(&v).unwrap();
        std::fs::write(v.join("cohort_codes.csv"), format!("{CODES_HEADER}45378,cohort,,,3.26,3.26,colonoscopy,official,CMS data dictionary,cms-2025\n")).unwrap();
        let d = Dictionary::load(Some(dir.path())).unwrap();
        assert_eq!(d.overrides, vec!["measures/asc12/cms-2025/cohort_codes.csv".to_string()]);
        let def = d.measure(MeasureId::Asc12);
        assert_eq!(def.version, "cms-2025");
        let codes: Vec<&str> = def.cohort_codes.iter().map(|c| c.hcpcs.as_str()).collect();
        assert_eq!(codes, vec!["45378"]);
        assert_eq!(def.cohort_codes[0].provenance, Provenance::Official);
        // The files the user's version lacks come from the embedded version, and say so.
        let from: BTreeMap<&str, &str> = def.files.iter().map(|(f, w)| (f.as_str(), w.as_str())).collect();
        assert!(from["cohort_codes.csv"].ends_with("cms-2025/cohort_codes.csv"), "{from:?}");
        assert_eq!(from["rules.csv"], "embedded data-dictionary/measures/asc12/ascqr-2026.1/rules.csv");
        assert_eq!(def.rules.min_age_years, 65);
        let summary = def.provenance_summary();
        assert_eq!(summary["definition_version"], "cms-2025");
        assert_eq!(summary["rows_by_provenance"]["cohort_codes"]["official"], 1);
        // Other measures keep the embedded version.
        assert_eq!(d.measure(MeasureId::Asc17).version, DICTIONARY_VERSION);
        assert!(d.measure(MeasureId::Asc17).cohort_codes.len() > 100);
        // A malformed file is an error naming it and the row.
        std::fs::write(v.join("cohort_codes.csv"), format!("{CODES_HEADER}45378,cohort,,,x,,l,official,s,v\n")).unwrap();
        let e = Dictionary::load(Some(dir.path())).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: row 1:", v.join("cohort_codes.csv").display())), "{e}");
        // A provenance other than official / reconstructed is refused.
        std::fs::write(v.join("cohort_codes.csv"), format!("{CODES_HEADER}45378,cohort,,,,,l,guessed,s,v\n")).unwrap();
        let e = Dictionary::load(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("row 1") && e.contains("guessed"), "{e}");
    }

    #[test]
    fn definition_files_outside_a_version_folder_or_two_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("measures/asc17");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(m.join("cohort_codes.csv"), CODES_HEADER).unwrap();
        let e = Dictionary::load(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("version folders") && e.contains("<version>"), "{e}");
        std::fs::remove_file(m.join("cohort_codes.csv")).unwrap();
        std::fs::create_dir_all(m.join("a")).unwrap();
        std::fs::create_dir_all(m.join("b")).unwrap();
        let e = Dictionary::load(Some(dir.path())).unwrap_err().to_string();
        assert!(e.contains("several definition versions (a, b)"), "{e}");
    }

    #[test]
    fn rules_are_parsed_strictly() {
        let row = |rule: &str, value: &str| RuleRow { rule: rule.into(), value: value.into(), provenance: Provenance::Official, source: String::new() };
        let mut rows: Vec<RuleRow> = CohortRules::REQUIRED.iter().map(|r| row(r, "7")).collect();
        let rules = CohortRules::parse("rules.csv", &rows).unwrap();
        assert_eq!((rules.enrollment_days_after, rules.repeat_colonoscopy_lookback_days), (None, None));
        rows.push(row("enrollment_days_after", "7"));
        assert_eq!(CohortRules::parse("rules.csv", &rows).unwrap().enrollment_days_after, Some(7));
        rows.push(row("min_age_years", "65"));
        let e = CohortRules::parse("rules.csv", &rows).unwrap_err().to_string();
        assert_eq!(e, "rules.csv: row 9: rule min_age_years is given twice");
        rows.pop();
        rows.push(row("max_age", "99"));
        let e = CohortRules::parse("rules.csv", &rows).unwrap_err().to_string();
        assert!(e.starts_with("rules.csv: row 9, column `rule`: value \"max_age\" is not a known rule ("), "{e}");
        rows.pop();
        rows[0].value = "sixty-five".into();
        let e = CohortRules::parse("rules.csv", &rows).unwrap_err().to_string();
        assert!(e.contains("row 1, column `value`: value \"sixty-five\""), "{e}");
        rows[0].value = "7".into();
        assert_eq!(CohortRules::parse("rules.csv", &rows).unwrap().work_rvu_of_several, WorkRvuOfSeveral::Highest);
        rows.push(row("work_rvu_of_several_procedures", "sum"));
        assert_eq!(CohortRules::parse("rules.csv", &rows).unwrap().work_rvu_of_several, WorkRvuOfSeveral::Sum);
        rows.last_mut().unwrap().value = "mean".into();
        let e = CohortRules::parse("rules.csv", &rows).unwrap_err().to_string();
        assert_eq!(e, "rules.csv: row 9, column `value`: value \"mean\" is not highest or sum");
        rows.pop();
        rows.remove(0);
        let e = CohortRules::parse("rules.csv", &rows).unwrap_err().to_string();
        assert_eq!(e, "rules.csv: required rule min_age_years is missing");
    }

    #[test]
    fn the_embedded_rules_are_the_manuals() {
        let d = Dictionary::load_embedded().unwrap();
        for m in MeasureId::ALL {
            let r = &d.measure(m).rules;
            assert_eq!((r.min_age_years, r.enrollment_months_before, r.history_days, r.outcome_last_day), (65, 12, 365, 7), "{m}");
            assert_eq!(r.enrollment_days_after, if m == MeasureId::Asc12 { None } else { Some(7) }, "{m}");
            assert_eq!(r.repeat_colonoscopy_lookback_days.is_some(), m == MeasureId::Asc12, "{m}");
            assert_eq!(r.cohort_period_years, if m == MeasureId::Asc12 { 3 } else { 2 }, "{m}");
        }
        assert!(!d.measure(MeasureId::Asc12).exclusion_codes.is_empty());
    }

    #[test]
    fn an_official_cc_crosswalk_is_imported_and_then_used() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("cms_crosswalk.csv");
        std::fs::write(&input, "Diagnosis_Code,description,CC\ni50.9,heart failure,85\nI509,heart failure,85\nE86.0,dehydration,24\nE86.0,dehydration,23\n").unwrap();
        let embedded = Dictionary::load_embedded().unwrap();
        let overlay = dir.path().join("dict");
        let report = import_cc_crosswalk(&input, &overlay, "cms-fy2025", &embedded).unwrap();
        assert_eq!((report.rows_read, report.mappings, report.codes), (4, 3, 2));
        assert!(report.categories_used_but_empty.contains(&96), "{:?}", report.categories_used_but_empty);
        let d = Dictionary::load(Some(&overlay)).unwrap();
        assert_eq!(d.overrides, vec!["condition-categories/icd10cm_to_cc.csv".to_string()]);
        assert_eq!(d.cc_map()["E860"], vec![23, 24]);
        assert!(d.dx_to_cc.iter().all(|r| r.status == "official"));
        // Bad rows are errors naming file, row, column and value.
        std::fs::write(&input, "icd10cm,cc\nI509,85\nI509,999\n").unwrap();
        let e = import_cc_crosswalk(&input, &overlay, "v", &embedded).unwrap_err().to_string();
        assert_eq!(e, format!("{}: row 2, column `cc`: value \"999\" is not a condition category 1-201", input.display()));
        std::fs::write(&input, "icd10cm,cc\n85,I509\n").unwrap();
        let e = import_cc_crosswalk(&input, &overlay, "v", &embedded).unwrap_err().to_string();
        assert!(e.contains("row 1, column `icd10cm`: value \"85\" is not an ICD-10-CM code"), "{e}");
        // A crosswalk by year: one `year` column bounds each row to that year.
        std::fs::write(&input, "year,icd10cm,cc\n2021,E1152,108\n2022,E1152,106\n2021,E1152,106\n").unwrap();
        let report = import_cc_crosswalk(&input, &overlay, "cms-by-year", &embedded).unwrap();
        assert_eq!(report.mappings, 3);
        let d = Dictionary::load(Some(&overlay)).unwrap();
        let years: Vec<(u16, Option<i32>, Option<i32>)> = d.dx_to_cc.iter().map(|r| (r.cc, r.year_first, r.year_last)).collect();
        assert_eq!(years, vec![(106, Some(2021), Some(2021)), (106, Some(2022), Some(2022)), (108, Some(2021), Some(2021))]);
        std::fs::write(&input, "icd10cm,cc,year_first,year_last\nI509,85,2023,2021\n").unwrap();
        let e = import_cc_crosswalk(&input, &overlay, "v", &embedded).unwrap_err().to_string();
        assert!(e.contains("row 1, column `year_last`: value \"2021\""), "{e}");
        std::fs::write(&input, "icd10cm,cc,year_first\nI509,85,20x1\n").unwrap();
        let e = import_cc_crosswalk(&input, &overlay, "v", &embedded).unwrap_err().to_string();
        assert!(e.contains("column `year_first`: value \"20x1\" is not a calendar year"), "{e}");
    }

    #[test]
    fn kinds_parse_with_clear_errors() {
        assert_eq!(parse_kind("f", 1, "age_group", "85+").unwrap(), VariableKind::AgeGroup { low: 85, high: None });
        assert_eq!(parse_kind("f", 1, "age_group", "70-74").unwrap(), VariableKind::AgeGroup { low: 70, high: Some(74) });
        assert_eq!(parse_kind("f", 1, "cc", "86|87").unwrap(), VariableKind::ConditionCategories(vec![86, 87]));
        assert_eq!(parse_kind("f", 1, "procedure_count", "3+").unwrap(), VariableKind::ProcedureCount { n: 3, or_more: true });
        let e = parse_kind("f.csv", 4, "cc", "85|x").unwrap_err().to_string();
        assert_eq!(e, "f.csv: row 4, column `definition`: value \"85|x\" is not condition-category numbers separated by |");
    }
}
