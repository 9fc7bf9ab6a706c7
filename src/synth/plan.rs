//! The synthetic world (facilities, hospitals, code pools, true models) and the generation of one
//! beneficiary's claims around one index procedure.

use super::background::{Background, BackgroundDiagnoses, CarePools, OrdinaryCare};
use super::truth::{evaluate_variables, linear_predictor};
use crate::claims::FileFormat;
use crate::dictionary::{Dictionary, MeasureDefinition, MeasureId, VariableKind};
use crate::error::{AscqrError, Result};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};
use std::collections::{BTreeSet, HashMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// About a hundred ASCs and a few thousand procedures: the tests.
    Small,
    /// National-shaped at a twentieth: every twentieth facility of the published volume
    /// distribution at its published volume (about 155,000 qualifying procedures) — large enough for the
    /// full risk models to be estimated; what `ascqr demo` runs on.
    Demo,
    /// National size: every facility of the published volume distribution at its published
    /// volume (ASC-12 ≈ 2.2 million colonoscopies at ≈ 2,100 ASCs).
    National,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SynthOptions {
    pub seed: u64,
    pub scale: Scale,
    pub first_year: i32,
    pub last_year: i32,
    pub format: FileFormat,
    /// Give each calendar year of the extract one published year of volume (see
    /// [`published_period_years`]) instead of spreading the published volume over the years, so
    /// that an extract's size grows with its years (for measuring memory against years).
    pub annual_volume: bool,
    /// Ordinary care written around each beneficiary ([`super::background`]).
    pub background: Background,
    pub background_diagnoses: BackgroundDiagnoses,
}

impl SynthOptions {
    /// Validates the options; `years` is `2021-2023` or a single year.
    pub fn new(seed: u64, scale: Scale, years: &str, format: FileFormat) -> Result<Self> {
        let bad = || AscqrError::InvalidOption(format!("--years {years:?}: expected YEAR or FIRST-LAST between 2016 and 2035, e.g. 2021-2023"));
        let (a, b) = match years.split_once('-') {
            Some((a, b)) => (a.trim().parse::<i32>().map_err(|_| bad())?, b.trim().parse::<i32>().map_err(|_| bad())?),
            None => {
                let y = years.trim().parse::<i32>().map_err(|_| bad())?;
                (y, y)
            }
        };
        if !(2016..=2035).contains(&a) || !(2016..=2035).contains(&b) || a > b {
            return Err(bad());
        }
        // Real density by default where the extract is meant to look like real claims; the
        // small scale stays sparse for the many tests that only need the measures' claims.
        let background = if scale == Scale::Small { Background::None } else { Background::REAL };
        Ok(SynthOptions {
            seed,
            scale,
            first_year: a,
            last_year: b,
            format,
            annual_volume: false,
            background,
            background_diagnoses: BackgroundDiagnoses::Realistic,
        })
    }

    /// With the given ordinary care around each beneficiary.
    pub fn with_background(mut self, background: Background, diagnoses: BackgroundDiagnoses) -> Self {
        self.background = background;
        self.background_diagnoses = diagnoses;
        self
    }

    /// With [`SynthOptions::annual_volume`] set.
    pub fn with_annual_volume(mut self, annual: bool) -> Self {
        self.annual_volume = annual;
        self
    }

    fn years(&self) -> u32 {
        (self.last_year - self.first_year + 1) as u32
    }
}

/// Years of claims behind the published facility volumes: Care Compare's July 2024 measurement
/// periods, ASC-12 07/2020–12/2022 and ASC-17/18/19 01/2021–12/2022 (methodology §2, public).
pub fn published_period_years(m: MeasureId) -> f64 {
    match m {
        MeasureId::Asc12 => 2.5,
        _ => 2.0,
    }
}

/// One facility's volume over `years` calendar years at its published annual rate (at least 1).
fn annual_volume(published: u32, m: MeasureId, years: u32) -> u32 {
    ((published as f64 * years as f64 / published_period_years(m)).round() as u32).max(1)
}

/// Rates the generator aims the true model at: CMS's published national rates (methodology §6).
/// ASC-19 is published as a ratio only; 3% is our assumption for its event rate.
pub fn target_rate(m: MeasureId, dict: &Dictionary) -> f64 {
    match m {
        MeasureId::Asc19 => 0.03,
        _ => dict.measure(m).measure.published_national_rate,
    }
}

/// Facility-intercept standard deviation of the true model per measure (generator parameter).
pub fn true_tau(m: MeasureId) -> f64 {
    match m {
        MeasureId::Asc12 => 0.30,
        MeasureId::Asc17 => 0.25,
        MeasureId::Asc18 => 0.25,
        MeasureId::Asc19 => 0.25,
    }
}

/// Common reasons for each measure's procedure, used as the index claim's principal diagnosis
/// (generator parameter; codes that map to a risk variable of the measure are dropped at start).
const INDICATIONS: [(MeasureId, &[&str]); 4] = [
    (MeasureId::Asc12, &["Z1211", "Z8601", "K635", "D125", "D126", "K921", "R195", "Z8371", "K5900", "R1030"]),
    (MeasureId::Asc17, &["M1711", "M1712", "M2011", "M7541", "M7551", "G5601", "G5602", "M65311", "S83241A", "M2021"]),
    (MeasureId::Asc18, &["N200", "N201", "N202", "R310", "R319", "N3941", "N393", "N403", "N320", "N138"]),
    (MeasureId::Asc19, &["K4090", "K429", "K602", "K644", "D1739", "L729", "N6011", "K439", "L0591", "K611"]),
];

/// Specialty of the surgeon who bills the professional side of the procedure.
fn surgeon_specialty(m: MeasureId) -> &'static str {
    match m {
        MeasureId::Asc12 => "10", // gastroenterology
        MeasureId::Asc17 => "20", // orthopedic surgery
        MeasureId::Asc18 => "34", // urology
        MeasureId::Asc19 => "02", // general surgery
    }
}

/// The exclusion rules the generator plants cases for, in the order they are applied; the first
/// one that applies is the procedure's `exclusion_reason` in the truth.
pub mod reasons {
    pub const AGE_UNDER_65: &str = "age_under_65";
    pub const NO_FFS_BEFORE: &str = "not_ffs_12_months_before";
    pub const NO_FFS_AFTER: &str = "not_ffs_7_days_after";
    pub const CONCURRENT_HIGH_RISK: &str = "concurrent_high_risk_procedure";
    pub const IBD_OR_DIVERTICULITIS: &str = "inflammatory_bowel_disease_or_diverticulitis";
    /// The cohort's index-selection step (`cohort::within_window_of_an_earlier_index_procedure`).
    pub const WITHIN_WINDOW_OF_AN_EARLIER_PROCEDURE: &str = "within_7_days_of_an_earlier_procedure";
    pub const REPEAT_COLONOSCOPY: &str = "repeat_colonoscopy";
}

/// Share of patients given a second qualifying procedure of the measure on days 0–7 after the
/// first, at the same ASC (generator parameter): it must not be an index procedure.
const LATER_PROCEDURE_SHARE: f64 = 0.02;
/// Share of ASC-12 patients not otherwise planted who had a hospital outpatient colonoscopy on
/// one of the look-back days before (generator parameter): the ASC colonoscopy is a repeat.
const EARLIER_COLONOSCOPY_SHARE: f64 = 0.01;

#[derive(Debug, Clone)]
pub struct CohortCodePlan {
    pub hcpcs: String,
    pub weight: f64,
    pub work_rvu: f64,
    pub procedure_type: Option<String>,
}

#[derive(Debug, Clone)]
pub struct VariablePlan {
    pub name: String,
    pub kind: VariableKind,
    pub beta: f64,
    /// Chance the generator gives a beneficiary this condition (diagnosis-based variables).
    pub prevalence: f64,
    /// Diagnosis codes that map to this variable and to nothing else the measure uses.
    pub codes: Vec<String>,
    pub complication_of_care: bool,
}

#[derive(Debug, Clone)]
pub struct FacilityPlan {
    pub asc: usize,
    pub volume: u32,
    pub intercept: f64,
}

#[derive(Debug, Clone)]
pub struct MeasurePlan {
    pub id: MeasureId,
    pub cohort_codes: Vec<CohortCodePlan>,
    pub high_risk_codes: Vec<String>,
    pub exclusion_dx: Vec<String>,
    pub indications: Vec<String>,
    pub variables: Vec<VariablePlan>,
    pub intercept: f64,
    pub tau: f64,
    pub target_rate: f64,
    pub facilities: Vec<FacilityPlan>,
}

#[derive(Debug, Clone)]
pub struct Hospital {
    pub ccn: String,
    pub acute: bool,
}

/// Code pools for history and outcome claims, all sorted so draws are deterministic.
#[derive(Debug, Clone, Default)]
pub struct CodePools {
    /// Diagnoses that map to no condition category any measure uses and trigger no exclusion.
    pub neutral_dx: Vec<String>,
    /// Acute principal diagnoses (planned admission algorithm's acute list).
    pub acute_dx: Vec<String>,
    /// Principal diagnoses that make an admission always planned (maintenance chemotherapy, …).
    pub always_planned_dx: Vec<String>,
    /// Procedures that make an admission always planned (transplants).
    pub always_planned_pcs: Vec<String>,
    /// Potentially planned procedures (not always planned).
    pub potentially_planned_pcs: Vec<String>,
    /// Principal diagnoses that are neither acute nor always planned.
    pub nonacute_dx: Vec<String>,
}

#[derive(Debug)]
pub struct World {
    pub options: SynthOptions,
    pub dict: &'static Dictionary,
    pub measures: Vec<MeasurePlan>,
    pub asc_npis: Vec<String>,
    pub hospitals: Vec<Hospital>,
    acute_hospitals: Vec<String>,
    other_hospitals: Vec<String>,
    pub pools: CodePools,
    pub care_pools: CarePools,
    pub cc_map: HashMap<String, Vec<u16>>,
    /// Procedure dates are drawn from [first_day, last_day] (days since 1970-01-01).
    pub first_day: i32,
    pub last_day: i32,
}

/// A small deterministic hash (FNV-1a) for seed mixing and seed-independent parameters.
pub fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for p in parts {
        for b in *p {
            h ^= *b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn unit(parts: &[&[u8]]) -> f64 {
    (fnv(parts) >> 11) as f64 / (1u64 << 53) as f64
}

/// A ChaCha8 stream for one named part of the world.
pub fn stream(seed: u64, label: &str, a: u64, b: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(fnv(&[&seed.to_le_bytes(), label.as_bytes(), &a.to_le_bytes(), &b.to_le_bytes()]))
}

/// A valid NPI (Luhn check digit over the `80840` prefix) from a 9-digit base.
pub fn npi(base: u64) -> String {
    let digits = format!("{base:09}");
    let mut sum = 24; // the constant contribution of the 80840 prefix
    for (i, c) in digits.chars().rev().enumerate() {
        let mut d = c.to_digit(10).expect("digits") ;
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    let check = (10 - sum % 10) % 10;
    format!("{digits}{check}")
}

/// The true coefficient of a variable: fixed by its kind and name, the same for every seed.
fn true_beta(m: MeasureId, v: &crate::dictionary::RiskVariable) -> f64 {
    let u = unit(&[m.as_str().as_bytes(), v.variable.as_bytes(), b"beta"]);
    match &v.kind {
        VariableKind::AgeGroup { low, .. } => 0.08 * (*low as f64 - 65.0) / 5.0,
        VariableKind::AgeYearsOver65 => 0.015,
        VariableKind::ConditionCategories(_) | VariableKind::Diagnoses(_) => 0.2 + 0.5 * u,
        VariableKind::ProcedureCodes(_) => 0.15 + 0.3 * u,
        VariableKind::ProcedureType(_) => -0.3 + 0.8 * u,
        VariableKind::ProcedureCount { n, .. } => 0.25 * (*n as f64 - 1.0),
        VariableKind::WorkRvu => 0.04,
        VariableKind::Interaction(..) => -0.2 + 0.4 * u,
    }
}

fn prevalence(m: MeasureId, name: &str) -> f64 {
    0.03 + 0.17 * unit(&[m.as_str().as_bytes(), name.as_bytes(), b"prevalence"])
}

/// Published case volumes expanded into one volume per facility, for one measure.
fn facility_volumes(dict: &Dictionary, m: MeasureId, rng: &mut ChaCha8Rng) -> Vec<u32> {
    let min_cases = dict.measure(m).rules.min_cases.max(2);
    let mut out = Vec::new();
    for row in dict.facility_volumes.iter().filter(|r| r.measure == m) {
        for _ in 0..row.facilities {
            // A suppressed volume is below the minimum case count.
            out.push(row.volume.unwrap_or_else(|| rng.random_range(1..min_cases)));
        }
    }
    out.sort_unstable();
    out
}

impl World {
    pub fn build(options: &SynthOptions) -> Result<World> {
        let dict = Dictionary::embedded()?;
        let seed = options.seed;
        let cc_map: HashMap<String, Vec<u16>> =
            dict.cc_map().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let stable = dict.codes_mapped_alike_every_year();

        // Codes any measure's variables or exclusions use; history "noise" avoids all of them.
        let mut special: BTreeSet<String> = cc_map.keys().cloned().collect();
        for def in dict.measures.values() {
            for v in &def.risk_variables {
                if let VariableKind::Diagnoses(codes) = &v.kind {
                    special.extend(codes.iter().cloned());
                }
            }
        }
        special.extend(dict.measure(MeasureId::Asc12).exclusion_codes.iter().map(|e| e.icd10cm.clone()));
        let pools = code_pools(dict, &special);
        let care_pools = CarePools::new(&selected_procedure_codes(dict), chronic_codes(dict, &cc_map, &stable));

        let scale_small = options.scale == Scale::Small;
        let mut measures = Vec::new();
        let mut pool_size = 0usize;
        let mut volume_lists = Vec::new();
        for m in MeasureId::ALL {
            let mut rng = stream(seed, "volumes", m as u64, 0);
            let mut vols = facility_volumes(dict, m, &mut rng);
            if scale_small {
                // Evenly spaced facilities across the sorted distribution keep its shape; a tenth
                // of each volume keeps the demo to a few thousand procedures.
                let n = match m {
                    MeasureId::Asc12 => 30,
                    MeasureId::Asc17 => 30,
                    MeasureId::Asc18 => 20,
                    MeasureId::Asc19 => 25,
                }
                .min(vols.len());
                let picked: Vec<u32> =
                    (0..n).map(|i| vols[(i * vols.len()) / n.max(1) + vols.len() / (2 * n.max(1))].div_ceil(10).max(1)).collect();
                vols = picked;
            } else if options.scale == Scale::Demo {
                // Every twentieth facility, from the middle of each block of twenty, at full volume.
                vols = vols.iter().skip(10).step_by(20).copied().collect();
            }
            if options.annual_volume {
                vols = vols.iter().map(|&v| annual_volume(v, m, options.years())).collect();
            }
            if vols.is_empty() {
                return Err(AscqrError::Other(format!("data-dictionary/synth/facility_volumes.csv has no facilities for {m}")));
            }
            pool_size = pool_size.max(vols.len());
            volume_lists.push(vols);
        }

        let asc_npis: Vec<String> = (0..pool_size).map(|i| npi(100_000_000 + 7_919 * i as u64 % 99_999_999)).collect();
        let hospitals = hospitals(if scale_small { 15 } else { 1_400 });

        let first_day = crate::claims::sink::date_to_days(ymd(options.first_year, 1, 1));
        let last_day = crate::claims::sink::date_to_days(ymd(options.last_year, 12, 31));

        let other_codes = |m: MeasureId| -> BTreeSet<String> {
            dict.measures
                .iter()
                .filter(|(k, _)| **k != m)
                .flat_map(|(_, d)| d.cohort_codes.iter().map(|c| c.hcpcs.clone()))
                .collect()
        };

        for (mi, m) in MeasureId::ALL.into_iter().enumerate() {
            let def = dict.measure(m);
            let others = other_codes(m);
            let variables = variable_plans(m, def, &cc_map, &stable);
            let measure_codes: BTreeSet<String> = variables
                .iter()
                .flat_map(|v| v.codes.iter().cloned())
                .chain(dict.measure(MeasureId::Asc12).exclusion_codes.iter().map(|e| e.icd10cm.clone()))
                .collect();
            let indications: Vec<String> = INDICATIONS
                .iter()
                .find(|(id, _)| *id == m)
                .map(|(_, c)| c.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap_or_default()
                .into_iter()
                .filter(|c| !measure_codes.contains(c) && !cc_map.contains_key(c) && dict.planned.icd10cm_to_ccs.contains_key(c))
                .collect();
            if indications.is_empty() {
                return Err(AscqrError::Other(format!("synth: no usable indication diagnosis for {m}")));
            }
            let mut cohort_codes: Vec<CohortCodePlan> = def
                .cohort_codes
                .iter()
                .filter(|c| c.is_cohort() && !others.contains(&c.hcpcs))
                .map(|c| CohortCodePlan {
                    hcpcs: c.hcpcs.clone(),
                    weight: 0.0,
                    work_rvu: c.work_rvu_2025.or(c.work_rvu_2023).unwrap_or(0.0),
                    procedure_type: c.procedure_type.clone().filter(|t| !t.is_empty()),
                })
                .collect();
            // A long-tailed mix: a few codes are common, most are rare (fixed, seed-independent).
            for c in cohort_codes.iter_mut() {
                let u = unit(&[m.as_str().as_bytes(), c.hcpcs.as_bytes(), b"weight"]);
                c.weight = (-(u.max(1e-9)).ln()).powi(3);
            }
            if cohort_codes.is_empty() {
                return Err(AscqrError::Other(format!("synth: {m} has no cohort codes of its own")));
            }
            let high_risk_codes: Vec<String> =
                def.cohort_codes.iter().filter(|c| c.is_concurrent_high_risk()).map(|c| c.hcpcs.clone()).collect();
            let exclusion_dx: Vec<String> =
                if m == MeasureId::Asc12 { dict.measure(MeasureId::Asc12).exclusion_codes.iter().map(|e| e.icd10cm.clone()).collect() } else { vec![] };

            let tau = true_tau(m);
            let mut rng = stream(seed, "intercepts", m as u64, 0);
            let normal = Normal::new(0.0, tau).expect("positive tau");
            let mut assign = stream(seed, "assignment", m as u64, 0);
            let mut asc_ids: Vec<usize> = (0..pool_size).collect();
            // Shuffle so that each measure's facilities are a different subset of the ASCs.
            for i in (1..asc_ids.len()).rev() {
                let j = assign.random_range(0..=i);
                asc_ids.swap(i, j);
            }
            let facilities = volume_lists[mi]
                .iter()
                .enumerate()
                .map(|(k, &volume)| FacilityPlan { asc: asc_ids[k], volume, intercept: normal.sample(&mut rng) })
                .collect();
            measures.push(MeasurePlan {
                id: m,
                cohort_codes,
                high_risk_codes,
                exclusion_dx,
                indications,
                variables,
                intercept: 0.0,
                tau,
                target_rate: target_rate(m, dict),
                facilities,
            });
        }

        let acute_hospitals = hospitals.iter().filter(|h| h.acute).map(|h| h.ccn.clone()).collect();
        let other_hospitals = hospitals.iter().filter(|h| !h.acute).map(|h| h.ccn.clone()).collect();
        let mut world = World {
            options: options.clone(),
            dict,
            measures,
            asc_npis,
            hospitals,
            acute_hospitals,
            other_hospitals,
            pools,
            care_pools,
            cc_map,
            first_day,
            last_day,
        };
        for mi in 0..world.measures.len() {
            world.measures[mi].intercept = world.calibrate_intercept(mi);
        }
        Ok(world)
    }

    /// The intercept that makes the expected event rate of the measure's cohort equal its target,
    /// found by bisection over a fixed calibration sample of generated procedures (covariates and
    /// facility intercepts drawn exactly as in the real run).
    fn calibrate_intercept(&self, mi: usize) -> f64 {
        let plan = &self.measures[mi];
        let mut rng = stream(0x5eed, "calibration", mi as u64, 0);
        let normal = Normal::new(0.0, plan.tau).expect("positive tau");
        let mut sample = Vec::new();
        for k in 0..4_000u64 {
            let p = self.procedure(mi, 0, k, &mut rng);
            if p.exclusion_reason.is_none() {
                let eta = linear_predictor(plan, 0.0, &p.variables) + normal.sample(&mut rng);
                sample.push(eta);
            }
        }
        let rate = |a: f64| sample.iter().map(|e| 1.0 / (1.0 + (-(a + e)).exp())).sum::<f64>() / sample.len().max(1) as f64;
        let (mut lo, mut hi) = (-15.0, 5.0);
        for _ in 0..80 {
            let mid = 0.5 * (lo + hi);
            if rate(mid) < plan.target_rate {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }
}

fn ymd(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(y, m, d).expect("valid calendar date")
}

fn hospitals(n_acute: usize) -> Vec<Hospital> {
    let mut out = Vec::new();
    // Acute care hospitals: CCN positions 3–6 in 0001–0879; critical access 1300–1399; a few
    // inpatient rehabilitation facilities (3025–3099), which are not acute care hospitals.
    for k in 0..n_acute {
        let state = k % 50 + 1;
        out.push(Hospital { ccn: format!("{state:02}{:04}", (k / 50) % 879 + 1), acute: true });
    }
    for k in 0..(n_acute / 10).max(2) {
        out.push(Hospital { ccn: format!("{:02}{:04}", k % 50 + 1, 1300 + (k / 50) % 100), acute: true });
    }
    for k in 0..(n_acute / 40).max(2) {
        out.push(Hospital { ccn: format!("{:02}{:04}", k % 50 + 1, 3025 + (k / 50) % 75), acute: false });
    }
    out
}

fn code_pools(dict: &Dictionary, special: &BTreeSet<String>) -> CodePools {
    let p = &dict.planned;
    let mut dx: Vec<(&String, &String)> = p.icd10cm_to_ccs.iter().collect();
    dx.sort();
    let mut pcs: Vec<(&String, &String)> = p.icd10pcs_to_ccs.iter().collect();
    pcs.sort();
    let acute = |code: &str, ccs: &str| p.acute_diagnosis_icd10cm.contains(code) || p.acute_diagnosis_ccs.contains(ccs);
    // Every 7th code keeps the pools varied but small.
    let thin = |v: Vec<String>, keep: usize| -> Vec<String> {
        let step = (v.len() / keep.max(1)).max(1);
        v.into_iter().step_by(step).collect()
    };
    let neutral_dx = thin(
        dx.iter()
            .filter(|(c, ccs)| !special.contains(*c) && !acute(c, ccs) && !p.always_planned_diagnosis_ccs.contains(*ccs))
            .map(|(c, _)| c.to_string())
            .collect(),
        3_000,
    );
    let acute_dx = thin(
        dx.iter().filter(|(c, ccs)| acute(c, ccs) && !special.contains(*c)).map(|(c, _)| c.to_string()).collect(),
        2_000,
    );
    let always_planned_dx = thin(
        dx.iter()
            .filter(|(c, ccs)| p.always_planned_diagnosis_ccs.contains(*ccs) && !special.contains(*c))
            .map(|(c, _)| c.to_string())
            .collect(),
        200,
    );
    let nonacute_dx = neutral_dx.clone();
    let always_planned_pcs = thin(
        pcs.iter().filter(|(_, ccs)| p.always_planned_procedure_ccs.contains(*ccs)).map(|(c, _)| c.to_string()).collect(),
        200,
    );
    let potentially_planned_pcs = thin(
        pcs.iter()
            .filter(|(c, ccs)| {
                (p.potentially_planned_icd10pcs.contains(*c) || p.potentially_planned_procedure_ccs.contains(*ccs))
                    && !p.always_planned_procedure_ccs.contains(*ccs)
            })
            .map(|(c, _)| c.to_string())
            .collect(),
        500,
    );
    CodePools { neutral_dx, acute_dx, always_planned_dx, always_planned_pcs, potentially_planned_pcs, nonacute_dx }
}

/// Every HCPCS code a measure selects on: cohort, concurrent-procedure and colonoscopy lists and
/// the procedure-code risk variables. Ordinary care never bills one.
fn selected_procedure_codes(dict: &Dictionary) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for def in dict.measures.values() {
        out.extend(def.cohort_codes.iter().map(|c| c.hcpcs.clone()));
        for v in &def.risk_variables {
            if let VariableKind::ProcedureCodes(codes) = &v.kind {
                out.extend(codes.iter().cloned());
            }
        }
    }
    out
}

/// Chronic-condition codes for realistic ordinary care: codes the crosswalk maps to a condition
/// category alike in every year (so the truth does not depend on the claim's year), never an
/// exclusion diagnosis; every few codes in sorted order, for a varied but small pool.
fn chronic_codes(dict: &Dictionary, cc_map: &HashMap<String, Vec<u16>>, stable: &HashSet<&str>) -> Vec<String> {
    let exclusions: HashSet<&str> = dict.measures.values().flat_map(|d| d.exclusion_codes.iter().map(|e| e.icd10cm.as_str())).collect();
    let mut codes: Vec<String> =
        cc_map.keys().filter(|c| stable.contains(c.as_str()) && !exclusions.contains(c.as_str())).cloned().collect();
    codes.sort();
    let step = (codes.len() / 2_000).max(1);
    codes.into_iter().step_by(step).collect()
}

fn variable_plans(m: MeasureId, def: &MeasureDefinition, cc_map: &HashMap<String, Vec<u16>>, stable: &HashSet<&str>) -> Vec<VariablePlan> {
    // CCs used by any dx-based variable of this measure: a code is usable for a variable only if
    // every CC it maps to belongs to that variable, so planting it switches on nothing else.
    let mut sorted_codes: Vec<(&String, &Vec<u16>)> = cc_map.iter().collect();
    sorted_codes.sort();
    def.risk_variables
        .iter()
        .map(|v| {
            let codes = match &v.kind {
                VariableKind::ConditionCategories(ccs) => {
                    let all: Vec<String> = sorted_codes
                        .iter()
                        .filter(|(_, mapped)| mapped.iter().all(|c| ccs.contains(c)))
                        .map(|(c, _)| c.to_string())
                        .collect();
                    let step = (all.len() / 60).max(1);
                    // Only codes the crosswalk maps alike in every year, so the truth does not
                    // depend on the claim's year (filtered after the choice, which keeps the
                    // choice as it was before the crosswalk had years).
                    all.into_iter().step_by(step).filter(|c| stable.contains(c.as_str())).collect()
                }
                VariableKind::Diagnoses(codes) => codes.iter().filter(|c| !cc_map.contains_key(*c)).cloned().collect(),
                _ => vec![],
            };
            VariablePlan {
                name: v.variable.clone(),
                kind: v.kind.clone(),
                beta: true_beta(m, v),
                prevalence: prevalence(m, &v.variable),
                codes,
                complication_of_care: v.complication_of_care,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Claims of one beneficiary

#[derive(Debug, Clone)]
pub struct CarrierLine {
    pub hcpcs: String,
    pub modifiers: Vec<&'static str>,
    pub units: f64,
}

#[derive(Debug, Clone)]
pub struct CarrierClaim {
    pub claim_id: String,
    pub from: i32,
    pub thru: i32,
    pub place_of_service: &'static str,
    pub specialty: &'static str,
    pub billing_npi: String,
    pub rendering_npi: String,
    pub principal_dx: String,
    /// Other diagnoses (the principal is repeated as `dx_1` when written).
    pub other_dx: Vec<String>,
    pub lines: Vec<CarrierLine>,
}

#[derive(Debug, Clone)]
pub struct OutpatientLine {
    pub revenue_center: &'static str,
    pub hcpcs: Option<&'static str>,
    pub day: i32,
    pub units: f64,
}

#[derive(Debug, Clone)]
pub struct OutpatientClaim {
    pub claim_id: String,
    pub ccn: String,
    pub from: i32,
    pub thru: i32,
    pub principal_dx: String,
    pub other_dx: Vec<String>,
    pub lines: Vec<OutpatientLine>,
}

#[derive(Debug, Clone)]
pub struct InpatientClaim {
    pub claim_id: String,
    pub ccn: String,
    pub admission: i32,
    pub discharge: i32,
    pub principal_dx: String,
    pub other_dx: Vec<String>,
    pub procedures: Vec<String>,
    pub admission_type: &'static str,
    pub admission_source: &'static str,
}

/// Enrollment of one beneficiary: one flag triple per month from January of `first_year`.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub first_year: i32,
    /// (part A, part B, Medicare Advantage) per month; months after death are absent.
    pub months: Vec<(bool, bool, bool)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitType {
    Ed,
    Observation,
    Inpatient,
}

impl VisitType {
    pub fn as_str(self) -> &'static str {
        match self {
            VisitType::Ed => "ed",
            VisitType::Observation => "observation",
            VisitType::Inpatient => "inpatient",
        }
    }
}

/// One generated index procedure with its beneficiary's claims and its truth.
#[derive(Debug, Clone)]
pub struct Procedure {
    pub measure: MeasureId,
    pub facility: usize,
    pub bene_id: String,
    pub birth: i32,
    pub sex: &'static str,
    pub death: Option<i32>,
    pub day: i32,
    pub enrollment: Enrollment,
    pub index_claim: usize,
    pub carrier: Vec<CarrierClaim>,
    pub outpatient: Vec<OutpatientClaim>,
    pub inpatient: Vec<InpatientClaim>,
    pub exclusion_reason: Option<&'static str>,
    /// Office visits, labs, imaging, … that no measure counts (empty with `--background none`).
    pub ordinary_care: OrdinaryCare,
    /// Carrier claims (indices into `carrier`) of later qualifying ASC procedures of the same
    /// patient within the index window: procedures in the truth, excluded by index selection.
    pub later_procedures: Vec<usize>,
    /// True values of the measure's risk variables, in the measure's order.
    pub variables: Vec<f64>,
    pub probability: f64,
    pub visit: Option<(VisitType, i32)>,
}

impl Procedure {
    pub fn procedure_id(&self) -> &str {
        &self.carrier[self.index_claim].claim_id
    }
}

/// Age bands of Medicare beneficiaries at a procedure (generator parameter).
const AGE_BANDS: [(u32, u32, f64); 5] = [(65, 69, 0.30), (70, 74, 0.28), (75, 79, 0.20), (80, 84, 0.13), (85, 94, 0.09)];

fn pick_weighted<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T], weight: impl Fn(&T) -> f64) -> &'a T {
    let total: f64 = items.iter().map(&weight).sum();
    let mut x = rng.random::<f64>() * total;
    for it in items {
        x -= weight(it);
        if x <= 0.0 {
            return it;
        }
    }
    items.last().expect("non-empty")
}

fn month_index(day: i32) -> (i32, u32) {
    use chrono::Datelike;
    let d = crate::claims::sink::days_to_date(day);
    (d.year(), d.month())
}

/// The two carrier claims of one ASC procedure: the surgeon's professional claim (place of
/// service 24 but a physician specialty, so not a facility claim; the first line's code only) and
/// the ASC's facility claim (place of service 24, specialty 49) with `lines`.
#[allow(clippy::too_many_arguments)]
fn asc_procedure_claims(
    m: MeasureId,
    (professional_id, facility_id): (String, String),
    day: i32,
    surgeon: &str,
    asc_npi: String,
    indication: &str,
    lines: Vec<CarrierLine>,
    other_dx: Vec<String>,
) -> [CarrierClaim; 2] {
    // The line's specialty is its performing provider's: on the facility claim (specialty 49)
    // that is the ASC itself, so its rendering NPI is the ASC's (CCLF, which has no billing NPI,
    // finds the facility there).
    let claim = |claim_id, specialty, billing_npi: String, other_dx, lines| CarrierClaim {
        claim_id,
        from: day,
        thru: day,
        place_of_service: "24",
        specialty,
        rendering_npi: billing_npi.clone(),
        billing_npi,
        principal_dx: indication.to_string(),
        other_dx,
        lines,
    };
    let professional_line = CarrierLine { hcpcs: lines[0].hcpcs.clone(), modifiers: vec![], units: 1.0 };
    [
        claim(professional_id, surgeon_specialty(m), surgeon.to_string(), vec![], vec![professional_line]),
        claim(facility_id, "49", asc_npi, other_dx, lines),
    ]
}

impl World {
    /// One of the handful of hospitals near an ASC (acute care, or not).
    pub(super) fn nearby_hospital(&self, asc: usize, acute: bool, rng: &mut ChaCha8Rng) -> String {
        let list = if acute { &self.acute_hospitals } else { &self.other_hospitals };
        list[(asc * 7 + rng.random_range(0..4)) % list.len()].clone()
    }

    /// Generates procedure number `k` of facility `f` of measure `mi`, with every claim of its
    /// beneficiary, and evaluates its truth (cohort, variables; not yet the outcome).
    pub fn procedure(&self, mi: usize, f: usize, k: u64, rng: &mut ChaCha8Rng) -> Procedure {
        let plan = &self.measures[mi];
        let m = plan.id;
        let fac = plan.facilities.get(f);
        let asc = fac.map(|x| x.asc).unwrap_or(0);
        let asc_npi = self.asc_npis[asc].clone();
        let bene_id = format!("SB{}{:05}{:06}", mi + 1, f, k);
        let mut claim_seq = 0u32;
        let mut next_claim = |kind: char| {
            claim_seq += 1;
            format!("{bene_id}{kind}{claim_seq:02}")
        };

        // Which exclusion case (if any) this procedure is planted as. One at most, so the truth's
        // first reason is unambiguous.
        let u: f64 = rng.random();
        let planted: Option<&'static str> = {
            let mut cut = 0.0;
            let mut choice = None;
            let mut options: Vec<(&'static str, f64)> =
                vec![(reasons::AGE_UNDER_65, 0.04), (reasons::NO_FFS_BEFORE, 0.03)];
            if m != MeasureId::Asc12 {
                options.push((reasons::NO_FFS_AFTER, 0.02));
            } else {
                if !plan.high_risk_codes.is_empty() {
                    options.push((reasons::CONCURRENT_HIGH_RISK, 0.02));
                }
                if !plan.exclusion_dx.is_empty() {
                    options.push((reasons::IBD_OR_DIVERTICULITIS, 0.02));
                }
            }
            for (r, p) in options {
                cut += p;
                if u < cut {
                    choice = Some(r);
                    break;
                }
            }
            choice
        };

        // Procedure date; the "not enrolled after" case needs the 7-day window to reach into the
        // next month, so it is moved to the 25th–28th.
        let mut day = rng.random_range(self.first_day..=self.last_day);
        if planted == Some(reasons::NO_FFS_AFTER) {
            use chrono::Datelike;
            let d = crate::claims::sink::days_to_date(day);
            day = crate::claims::sink::date_to_days(ymd(d.year(), d.month(), rng.random_range(25..=28)));
        }

        // Age and birth date.
        let age_years: u32 = if planted == Some(reasons::AGE_UNDER_65) {
            rng.random_range(40..=63)
        } else {
            let band = pick_weighted(rng, &AGE_BANDS, |b| b.2);
            rng.random_range(band.0..=band.1)
        };
        let birth = {
            use chrono::Datelike;
            let d = crate::claims::sink::days_to_date(day);
            let anniversary = ymd(d.year() - age_years as i32, d.month(), d.day().min(28));
            // Between the last birthday and the next one, minus a safety day on each side.
            crate::claims::sink::date_to_days(anniversary) - rng.random_range(1..=360)
        };
        let sex = if rng.random_bool(0.55) { "2" } else { "1" };
        let death_roll: f64 = rng.random();
        // A patient who dies within 7 days is kept whatever the enrollment after, so the
        // "not enrolled after" case is never given an early death (its reason would not apply).
        let death = if death_roll < 0.005 && planted != Some(reasons::NO_FFS_AFTER) {
            Some(day + rng.random_range(1..=6))
        } else if death_roll < 0.035 {
            Some(day + rng.random_range(30..=700))
        } else {
            None
        };

        // Enrollment from January of the year before the first procedure year to December of the
        // year after the last, fee-for-service A and B unless planted otherwise.
        let first_year = self.options.first_year - 1;
        let n_months = ((self.options.last_year + 1 - first_year + 1) * 12) as usize;
        let (py, pm) = month_index(day);
        let proc_month = ((py - first_year) * 12 + pm as i32 - 1) as usize;
        let mut months = vec![(true, true, false); n_months];
        if planted == Some(reasons::NO_FFS_BEFORE) {
            // Three Medicare Advantage months well inside the 12 months before.
            for mo in months.iter_mut().take(proc_month.saturating_sub(3)).skip(proc_month.saturating_sub(6)) {
                mo.2 = true;
            }
        } else if planted == Some(reasons::NO_FFS_AFTER) {
            for mo in months.iter_mut().skip(proc_month + 1).take(3) {
                mo.2 = true;
            }
        } else if rng.random_bool(0.08) && proc_month >= 15 {
            // Medicare Advantage long before the window: must not exclude.
            let start = rng.random_range(0..proc_month - 14);
            for mo in months.iter_mut().take(proc_month - 14).skip(start) {
                mo.2 = true;
            }
        }
        if let Some(dd) = death {
            let (dy, dm) = month_index(dd);
            let last = ((dy - first_year) * 12 + dm as i32) as usize;
            months.truncate(last.min(n_months));
        }
        let enrollment = Enrollment { first_year, months };

        // Diagnoses the beneficiary has, by variable.
        let mut index_other_dx: Vec<String> = Vec::new();
        let mut history_dx: Vec<(String, bool)> = Vec::new(); // (code, principal?)
        let mut old_dx: Vec<String> = Vec::new(); // on claims 13–15 months before
        for v in &plan.variables {
            if v.codes.is_empty() {
                continue;
            }
            let code = v.codes.choose(rng).expect("non-empty").clone();
            if rng.random_bool(v.prevalence) {
                if !v.complication_of_care && rng.random_bool(0.3) {
                    index_other_dx.push(code);
                } else {
                    history_dx.push((code, rng.random_bool(0.4)));
                }
            } else if rng.random_bool(0.04) {
                old_dx.push(code);
            } else if v.complication_of_care && rng.random_bool(0.04) {
                // Found on the index claim alone: a possible complication of care, not counted.
                index_other_dx.push(code);
            }
        }
        if planted == Some(reasons::IBD_OR_DIVERTICULITIS) {
            let code = plan.exclusion_dx.choose(rng).expect("non-empty").clone();
            if rng.random_bool(0.5) {
                index_other_dx.push(code);
            } else {
                history_dx.push((code, true));
            }
        }
        for _ in 0..rng.random_range(0..=2) {
            index_other_dx.push(self.pools.neutral_dx.choose(rng).expect("pool").clone());
        }

        let mut carrier = Vec::new();
        let mut outpatient = Vec::new();
        let mut inpatient = Vec::new();
        let hospital = |rng: &mut ChaCha8Rng, acute: bool| self.nearby_hospital(asc, acute, rng);

        // History claims: office visits and hospital outpatient clinic visits in the 12 months
        // before (days −330 … −3), plus claims 13–15 months before that must not count.
        let n_visits = Poisson::new(2.5).map(|p| p.sample(rng) as usize).unwrap_or(2) + 1;
        let mut visits: Vec<(i32, Vec<String>)> = (0..n_visits)
            .map(|_| {
                let mut dx = vec![self.pools.neutral_dx.choose(rng).expect("pool").clone()];
                if rng.random_bool(0.5) {
                    dx.push(self.pools.neutral_dx.choose(rng).expect("pool").clone());
                }
                (day - rng.random_range(3..=330), dx)
            })
            .collect();
        for (code, principal) in history_dx {
            let v = rng.random_range(0..visits.len());
            if principal {
                visits[v].1.insert(0, code);
            } else {
                visits[v].1.push(code);
            }
        }
        let mut old_visits: Vec<(i32, Vec<String>)> = Vec::new();
        for code in old_dx {
            old_visits.push((day - rng.random_range(400..=450), vec![code]));
        }
        for (when, dx) in visits.into_iter().chain(old_visits) {
            let (principal, other) = (dx[0].clone(), dx[1..].to_vec());
            if rng.random_bool(0.75) {
                carrier.push(CarrierClaim {
                    claim_id: next_claim('C'),
                    from: when,
                    thru: when,
                    place_of_service: "11",
                    specialty: if rng.random_bool(0.5) { "08" } else { "11" },
                    billing_npi: npi(300_000_000 + (asc as u64 * 13 + rng.random_range(0..5)) % 99_999_999),
                    rendering_npi: npi(400_000_000 + (asc as u64 * 17 + rng.random_range(0..9)) % 99_999_999),
                    principal_dx: principal,
                    other_dx: other,
                    lines: vec![CarrierLine {
                        hcpcs: ["99213", "99214", "99204", "99212"].choose(rng).expect("codes").to_string(),
                        modifiers: vec![],
                        units: 1.0,
                    }],
                });
            } else {
                outpatient.push(OutpatientClaim {
                    claim_id: next_claim('O'),
                    ccn: hospital(rng, true),
                    from: when,
                    thru: when,
                    principal_dx: principal,
                    other_dx: other,
                    lines: vec![
                        OutpatientLine { revenue_center: "0510", hcpcs: Some("G0463"), day: when, units: 1.0 },
                        OutpatientLine { revenue_center: "0300", hcpcs: Some("80053"), day: when, units: 1.0 },
                    ],
                });
            }
        }
        if rng.random_bool(0.04) {
            let admit = day - rng.random_range(40..=300);
            inpatient.push(InpatientClaim {
                claim_id: next_claim('I'),
                ccn: hospital(rng, true),
                admission: admit,
                discharge: admit + rng.random_range(2..=6),
                principal_dx: self.pools.acute_dx.choose(rng).expect("pool").clone(),
                other_dx: vec![self.pools.neutral_dx.choose(rng).expect("pool").clone()],
                procedures: vec![],
                admission_type: "1",
                admission_source: "7",
            });
        }

        // The index claim: the ASC's facility claim (place of service 24, specialty 49).
        let main = pick_weighted(rng, &plan.cohort_codes, |c| c.weight).clone();
        let mut lines = vec![CarrierLine { hcpcs: main.hcpcs.clone(), modifiers: modifiers(m, rng), units: 1.0 }];
        match m {
            MeasureId::Asc12 => {
                for v in &plan.variables {
                    if let VariableKind::ProcedureCodes(codes) = &v.kind {
                        if !codes.is_empty() && rng.random_bool(0.15) {
                            lines.push(CarrierLine { hcpcs: codes.choose(rng).expect("codes").clone(), modifiers: vec![], units: 1.0 });
                        }
                    }
                }
                if planted == Some(reasons::CONCURRENT_HIGH_RISK) {
                    lines.push(CarrierLine {
                        hcpcs: plan.high_risk_codes.choose(rng).expect("codes").clone(),
                        modifiers: vec![],
                        units: 1.0,
                    });
                }
            }
            MeasureId::Asc18 => {
                let extra = if rng.random_bool(0.08) { 2 } else if rng.random_bool(0.2) { 1 } else { 0 };
                for _ in 0..extra {
                    let c = pick_weighted(rng, &plan.cohort_codes, |c| c.weight);
                    lines.push(CarrierLine { hcpcs: c.hcpcs.clone(), modifiers: vec!["51"], units: 1.0 });
                }
            }
            _ => {}
        }
        let indication = plan.indications.choose(rng).expect("indications").clone();
        let surgeon = npi(500_000_000 + (asc as u64 * 31 + rng.random_range(0..6)) % 99_999_999);
        let index_claim = carrier.len() + 1;
        let ids = (next_claim('C'), next_claim('C'));
        carrier.extend(asc_procedure_claims(m, ids, day, &surgeon, asc_npi, &indication, lines, index_other_dx));

        // Repeat and later procedures come from their own random stream, so the generator's other
        // draws are unchanged by them (claim ids after them shift).
        let mut extra = stream(self.options.seed, "repeats", ((mi as u64) << 32) | f as u64, k);
        let mut planted = planted;
        let mut later_procedures = Vec::new();
        // No later procedure for a patient who dies in the window or just after it.
        let dies_soon = death.is_some_and(|d| d <= day + 10);
        let window = self.dict.measure(m).rules.index_window_days as i32;
        // Kept inside the index procedure's calendar year: every procedure of the extract falls
        // in its years, and a measurement period (whole calendar years) never starts between the
        // two, where the later one would be the first of the period.
        let same_year = month_index(day).0 == month_index(day + window).0;
        if !dies_soon && same_year && day + window <= self.last_day && extra.random_bool(LATER_PROCEDURE_SHARE) {
            let later = day + extra.random_range(0..=window);
            let code = pick_weighted(&mut extra, &plan.cohort_codes, |c| c.weight).hcpcs.clone();
            let index = &carrier[index_claim];
            let (asc_npi, surgeon, indication) = (index.billing_npi.clone(), index.rendering_npi.clone(), index.principal_dx.clone());
            later_procedures.push(carrier.len() + 1);
            let ids = (next_claim('C'), next_claim('C'));
            let lines = vec![CarrierLine { hcpcs: code, modifiers: vec![], units: 1.0 }];
            carrier.extend(asc_procedure_claims(m, ids, later, &surgeon, asc_npi, &indication, lines, vec![]));
        }
        if let Some(lookback) = self.dict.measure(m).rules.repeat_colonoscopy_lookback_days {
            if planted.is_none() && lookback > 0 && extra.random_bool(EARLIER_COLONOSCOPY_SHARE) {
                let earlier = day - extra.random_range(1..=lookback as i32);
                outpatient.push(OutpatientClaim {
                    claim_id: next_claim('O'),
                    ccn: self.nearby_hospital(asc, true, &mut extra),
                    from: earlier,
                    thru: earlier,
                    principal_dx: carrier[index_claim].principal_dx.clone(),
                    other_dx: vec![],
                    lines: vec![OutpatientLine { revenue_center: "0750", hcpcs: Some("45378"), day: earlier, units: 1.0 }],
                });
                planted = Some(reasons::REPEAT_COLONOSCOPY);
            }
        }

        let mut p = Procedure {
            measure: m,
            facility: f,
            bene_id,
            birth,
            sex,
            death,
            day,
            enrollment,
            index_claim,
            carrier,
            outpatient,
            inpatient,
            exclusion_reason: planted,
            ordinary_care: OrdinaryCare::default(),
            later_procedures,
            variables: vec![],
            probability: 0.0,
            visit: None,
        };
        p.ordinary_care = self.ordinary_care(mi, f, k, &p);
        p.variables = evaluate_variables(self, plan, &p);
        p
    }

    /// Draws the outcome from the true model and adds the hospital-visit claims: a qualifying
    /// visit within days 0–7 when the outcome is 1; otherwise, now and then, visits that must not
    /// count (outside the window, planned admissions, clinic visits, non-acute facilities).
    pub fn add_outcome(&self, mi: usize, p: &mut Procedure, rng: &mut ChaCha8Rng) {
        let plan = &self.measures[mi];
        let u_j = plan.facilities.get(p.facility).map(|f| f.intercept).unwrap_or(0.0);
        let eta = linear_predictor(plan, u_j, &p.variables) + plan.intercept;
        p.probability = 1.0 / (1.0 + (-eta).exp());
        let event = rng.random_bool(p.probability.clamp(0.0, 1.0));
        let asc = plan.facilities.get(p.facility).map(|f| f.asc).unwrap_or(0);
        let mut seq = p.carrier.len() + p.outpatient.len() + p.inpatient.len();
        let bene_id = p.bene_id.clone();
        let mut next_claim = |kind: char| {
            seq += 1;
            format!("{bene_id}{kind}{seq:02}")
        };
        let hospital = |rng: &mut ChaCha8Rng, acute: bool| self.nearby_hospital(asc, acute, rng);
        let last_alive = p.death.map(|d| d - p.day).unwrap_or(7).min(7);
        let pools = &self.pools;
        let ed = |id: String, ccn: String, when: i32, rng: &mut ChaCha8Rng| OutpatientClaim {
            claim_id: id,
            ccn,
            from: when,
            thru: when,
            principal_dx: pools.acute_dx.choose(rng).expect("pool").clone(),
            other_dx: vec![],
            lines: vec![
                OutpatientLine {
                    revenue_center: ["0450", "0456", "0459", "0981"].choose(rng).expect("codes"),
                    hcpcs: Some(["99283", "99284", "99285"].choose(rng).expect("codes")),
                    day: when,
                    units: 1.0,
                },
                OutpatientLine { revenue_center: "0300", hcpcs: Some("85025"), day: when, units: 1.0 },
            ],
        };
        if event {
            let roll: f64 = rng.random();
            let when = p.day + if rng.random_bool(0.2) { 0 } else { rng.random_range(1..=last_alive.max(1)) };
            if roll < 0.6 {
                p.outpatient.push(ed(next_claim('O'), hospital(rng, true), when, rng));
                p.visit = Some((VisitType::Ed, when - p.day));
            } else if roll < 0.75 {
                let ccn = hospital(rng, true);
                let mut lines = vec![OutpatientLine { revenue_center: "0762", hcpcs: Some("G0378"), day: when, units: 18.0 }];
                if rng.random_bool(0.5) {
                    // Observation hours billed only by HCPCS G0378 under another revenue center.
                    lines[0].revenue_center = "0760";
                }
                p.outpatient.push(OutpatientClaim {
                    claim_id: next_claim('O'),
                    ccn,
                    from: when,
                    thru: when + 1,
                    principal_dx: pools.acute_dx.choose(rng).expect("pool").clone(),
                    other_dx: vec![],
                    lines,
                });
                p.visit = Some((VisitType::Observation, when - p.day));
            } else {
                let procedures = if rng.random_bool(0.3) {
                    // A potentially planned procedure with an acute principal diagnosis stays unplanned.
                    vec![pools.potentially_planned_pcs.choose(rng).expect("pool").clone()]
                } else {
                    vec![]
                };
                p.inpatient.push(InpatientClaim {
                    claim_id: next_claim('I'),
                    ccn: hospital(rng, true),
                    admission: when,
                    discharge: when + rng.random_range(1..=5),
                    principal_dx: pools.acute_dx.choose(rng).expect("pool").clone(),
                    other_dx: vec![pools.neutral_dx.choose(rng).expect("pool").clone()],
                    procedures,
                    admission_type: "1",
                    admission_source: "7",
                });
                p.visit = Some((VisitType::Inpatient, when - p.day));
            }
        } else if rng.random_bool(0.10) {
            let kind = rng.random_range(0..7);
            let soon = p.day + rng.random_range(1..=last_alive.max(1));
            match kind {
                0 => p.outpatient.push(ed(next_claim('O'), hospital(rng, true), p.day + rng.random_range(9..=20), rng)),
                1 => p.outpatient.push(ed(next_claim('O'), hospital(rng, true), p.day - rng.random_range(2..=10), rng)),
                2 | 3 | 4 => {
                    let (principal_dx, procedures) = match kind {
                        2 => (pools.always_planned_dx.choose(rng).expect("pool").clone(), vec![]),
                        3 => (pools.nonacute_dx.choose(rng).expect("pool").clone(), vec![pools.always_planned_pcs.choose(rng).expect("pool").clone()]),
                        _ => (pools.nonacute_dx.choose(rng).expect("pool").clone(), vec![pools.potentially_planned_pcs.choose(rng).expect("pool").clone()]),
                    };
                    p.inpatient.push(InpatientClaim {
                        claim_id: next_claim('I'),
                        ccn: hospital(rng, true),
                        admission: soon,
                        discharge: soon + rng.random_range(1..=4),
                        principal_dx,
                        other_dx: vec![],
                        procedures,
                        admission_type: "3",
                        admission_source: "1",
                    });
                }
                5 => p.outpatient.push(OutpatientClaim {
                    claim_id: next_claim('O'),
                    ccn: hospital(rng, true),
                    from: soon,
                    thru: soon,
                    principal_dx: pools.neutral_dx.choose(rng).expect("pool").clone(),
                    other_dx: vec![],
                    lines: vec![OutpatientLine { revenue_center: "0510", hcpcs: Some("G0463"), day: soon, units: 1.0 }],
                }),
                _ => p.inpatient.push(InpatientClaim {
                    claim_id: next_claim('I'),
                    ccn: hospital(rng, false),
                    admission: soon,
                    discharge: soon + rng.random_range(5..=12),
                    principal_dx: pools.acute_dx.choose(rng).expect("pool").clone(),
                    other_dx: vec![],
                    procedures: vec![],
                    admission_type: "2",
                    admission_source: "1",
                }),
            }
        }
    }
}

fn modifiers(m: MeasureId, rng: &mut ChaCha8Rng) -> Vec<&'static str> {
    match m {
        MeasureId::Asc12 if rng.random_bool(0.2) => vec!["PT"],
        MeasureId::Asc12 if rng.random_bool(0.05) => vec!["33"],
        MeasureId::Asc17 => vec![if rng.random_bool(0.5) { "RT" } else { "LT" }],
        _ if rng.random_bool(0.02) => vec!["73"],
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npis_carry_a_valid_luhn_check_digit() {
        // The example NPI from CMS's check-digit note: 123456789 → 1234567893.
        assert_eq!(npi(123_456_789), "1234567893");
        assert_eq!(npi(100_000_000).len(), 10);
    }

    #[test]
    fn annual_volume_scales_the_published_period_to_the_extract_years() {
        // ASC-12's published volumes cover 2.5 years: 50 cases are 20 a year.
        assert_eq!(annual_volume(50, MeasureId::Asc12, 1), 20);
        assert_eq!(annual_volume(50, MeasureId::Asc12, 3), 60);
        assert_eq!(annual_volume(50, MeasureId::Asc18, 2), 50);
        assert_eq!(annual_volume(1, MeasureId::Asc17, 1), 1);
    }

    #[test]
    fn years_are_validated_with_a_clear_message() {
        assert_eq!(SynthOptions::new(1, Scale::Small, "2021-2023", FileFormat::Csv).unwrap().last_year, 2023);
        assert_eq!(SynthOptions::new(1, Scale::Small, "2022", FileFormat::Csv).unwrap().first_year, 2022);
        let e = SynthOptions::new(1, Scale::Small, "2023-2021", FileFormat::Csv).unwrap_err().to_string();
        assert!(e.starts_with("invalid option: --years \"2023-2021\""), "{e}");
        assert!(SynthOptions::new(1, Scale::Small, "20x1", FileFormat::Csv).is_err());
    }
}
