//! The versioned code tables under `data-dictionary/`, embedded at build time so a run never
//! depends on files outside the binary.
//!
//! Every code list is data, never code (methodology §"Design consequence"): cohort codes,
//! exclusion codes, risk-variable definitions, the ICD-10-CM → condition-category crosswalk and
//! the planned admission tables are CSV files with `status` (spec / public / reconstructed) and
//! `version` columns. `data-dictionary/PROVENANCE.csv` records the public source file and its
//! sha256 for each one.

use crate::error::{AscqrError, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

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
    pub cohort_period_years: u32,
    pub min_cases: u32,
    pub published_national_rate: f64,
    pub rate_unit: String,
    pub status: String,
    pub version: String,
}

/// One row of `measures/<m>/cohort_codes.csv`.
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
    pub status: String,
    pub version: String,
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

/// One row of `measures/<m>/risk_variables.csv`, parsed.
#[derive(Debug, Clone)]
pub struct RiskVariable {
    pub variable: String,
    pub label: String,
    pub kind: VariableKind,
    /// A CC that may be a complication of care counts only when it is in the history, not when it
    /// is found on the index claim alone (methodology §4).
    pub complication_of_care: bool,
    pub status: String,
}

#[derive(Debug, Deserialize)]
struct RiskVariableRow {
    variable: String,
    label: String,
    kind: String,
    definition: Option<String>,
    complication_of_care: Option<String>,
    status: String,
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

/// One ICD-10-CM → condition-category mapping row.
#[derive(Debug, Clone, Deserialize)]
pub struct DxToCc {
    pub icd10cm: String,
    pub cc: u16,
    pub source: String,
    pub status: String,
}

/// One row of `measures/asc12/exclusion_codes.csv`.
#[derive(Debug, Clone, Deserialize)]
pub struct ExclusionCode {
    pub icd10cm: String,
    pub exclusion: String,
    pub label: String,
    pub status: String,
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
}

/// Everything a measure needs from the dictionary.
#[derive(Debug, Clone)]
pub struct MeasureDefinition {
    pub measure: Measure,
    pub cohort_codes: Vec<CohortCode>,
    pub risk_variables: Vec<RiskVariable>,
}

impl MeasureDefinition {
    pub fn code(&self, hcpcs: &str) -> Option<&CohortCode> {
        self.cohort_codes.iter().find(|c| c.hcpcs == hcpcs)
    }
    pub fn variable_names(&self) -> Vec<String> {
        self.risk_variables.iter().map(|v| v.variable.clone()).collect()
    }
}

/// The whole embedded dictionary.
#[derive(Debug, Clone)]
pub struct Dictionary {
    pub measures: BTreeMap<MeasureId, MeasureDefinition>,
    pub dx_to_cc: Vec<DxToCc>,
    pub asc12_exclusions: Vec<ExclusionCode>,
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
const COHORT_CODES: [(&str, &str); 4] = [
    embedded!("measures/asc12/cohort_codes.csv"),
    embedded!("measures/asc17/cohort_codes.csv"),
    embedded!("measures/asc18/cohort_codes.csv"),
    embedded!("measures/asc19/cohort_codes.csv"),
];
const RISK_VARIABLES: [(&str, &str); 4] = [
    embedded!("measures/asc12/risk_variables.csv"),
    embedded!("measures/asc17/risk_variables.csv"),
    embedded!("measures/asc18/risk_variables.csv"),
    embedded!("measures/asc19/risk_variables.csv"),
];
const DX_TO_CC: (&str, &str) = embedded!("condition-categories/icd10cm_to_cc.csv");
const ASC12_EXCLUSIONS: (&str, &str) = embedded!("measures/asc12/exclusion_codes.csv");
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
                status: r.status,
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
    /// relative path (e.g. `measures/asc17/cohort_codes.csv` from CMS's official list), and the
    /// embedded copy otherwise. The files taken from the overlay are listed in `overrides`.
    pub fn load(overlay: Option<&std::path::Path>) -> Result<Dictionary> {
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
        for (i, m) in MeasureId::ALL.into_iter().enumerate() {
            let measure = measures
                .iter()
                .find(|x| x.measure == m)
                .cloned()
                .ok_or_else(|| AscqrError::Other(format!("data-dictionary/measures/measures.csv has no row for {m}")))?;
            by_id.insert(
                m,
                MeasureDefinition {
                    measure,
                    cohort_codes: with!(COHORT_CODES[i], read_rows)?,
                    risk_variables: with!(RISK_VARIABLES[i], load_risk_variables)?,
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
        };
        let dx_to_cc = with!(DX_TO_CC, read_rows)?;
        let asc12_exclusions = with!(ASC12_EXCLUSIONS, read_rows)?;
        let facility_volumes = with!(FACILITY_VOLUMES, read_rows)?;
        Ok(Dictionary { measures: by_id, dx_to_cc, asc12_exclusions, facility_volumes, planned, overrides: overrides.into_inner() })
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

    /// The condition categories each ICD-10-CM code maps to.
    pub fn cc_map(&self) -> HashMap<&str, Vec<u16>> {
        let mut map: HashMap<&str, Vec<u16>> = HashMap::new();
        for r in &self.dx_to_cc {
            map.entry(r.icd10cm.as_str()).or_default().push(r.cc);
        }
        map
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

    #[test]
    fn a_users_directory_replaces_only_the_files_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("measures/asc12");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(
            m.join("cohort_codes.csv"),
            "hcpcs,role,procedure_type,ccs_category,work_rvu_2023,work_rvu_2025,label,status,version\n\
             45378,cohort,,,3.26,3.26,colonoscopy,official,cms-2025\n",
        )
        .unwrap();
        let d = Dictionary::load(Some(dir.path())).unwrap();
        assert_eq!(d.overrides, vec!["measures/asc12/cohort_codes.csv".to_string()]);
        let codes: Vec<&str> = d.measure(MeasureId::Asc12).cohort_codes.iter().map(|c| c.hcpcs.as_str()).collect();
        assert_eq!(codes, vec!["45378"]);
        assert_eq!(d.measure(MeasureId::Asc12).cohort_codes[0].status, "official");
        // Everything else is the embedded copy.
        assert!(d.measure(MeasureId::Asc17).cohort_codes.len() > 100);
        // A malformed file is an error naming it and the row.
        std::fs::write(m.join("cohort_codes.csv"), "hcpcs,role,procedure_type,ccs_category,work_rvu_2023,work_rvu_2025,label,status,version\n45378,cohort,,,x,,l,official,v\n").unwrap();
        let e = Dictionary::load(Some(dir.path())).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: row 1:", m.join("cohort_codes.csv").display())), "{e}");
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
