//! Ordinary care around every synthetic beneficiary: the office visits, laboratory tests,
//! imaging, therapy, durable medical equipment, hospital outpatient services, emergency visits and
//! unrelated inpatient stays that make up most rows of a real research extract and that no measure
//! counts.
//!
//! Why it exists: a real extract holds every claim of every beneficiary, and most of them are
//! lines the measures ignore (`../shared/design/real-data.md` §9). Without them, the memory and
//! time of every stage that reads whole tables are measured on a fraction of a real load, and the
//! history window of the risk variables never has to find a condition among unrelated claims.
//!
//! Volume at `--background real` (generator parameters, per beneficiary-year of fee-for-service
//! enrollment, before a per-beneficiary frailty drawn from Gamma(1.5, 1/1.5), mean 1):
//! about **25 carrier lines** (office visits 5.5 claims, laboratory 2.5, imaging 1.2, therapy 0.7,
//! DME 0.8), about **17 outpatient revenue-center lines** (clinic visits, laboratory, imaging,
//! therapy, infusion, cardiology, treat-and-release ED visits) and **0.25 inpatient stays**. The
//! line counts are the figures issue 22 takes from `real-data.md` §9 (20–30 carrier lines and
//! 15–20 outpatient revenue lines per beneficiary-year); the published anchors there are
//! DE-SynPUF 2008–2010 (about 13.6 carrier claim rows per beneficiary-year, each packing up to 13
//! lines) and the Tuva Project's CCLF demo (about 56 professional lines per patient in one year).
//! Those anchors and `real-data.md`'s own estimate for 100% FFS (45–75 carrier lines) sit above the
//! default, so `--background 2x` or `3x` tries the heavier end.
//!
//! Neutral by construction, so that the truth changes only where a diagnosis says it should:
//! * no claim at place of service 24 (an ASC), and no HCPCS code that any measure's cohort,
//!   concurrent-procedure or colonoscopy list holds (the code lists below are filtered against
//!   the dictionary when the world is built);
//! * no ED visit, observation stay or inpatient stay touching days −14 … +21 around the index
//!   procedure: the outcome window is days 0–7, and the later procedures the generator plants lie
//!   within 7 days of the index;
//! * no claim after death or in a month without fee-for-service Part A and B;
//! * diagnoses: with `realistic` (the default) each beneficiary carries a few chronic conditions
//!   whose codes map to condition categories (only codes the crosswalk maps alike in every year,
//!   never an exclusion diagnosis), so the 12-month history finds them among unrelated claims; the
//!   truth evaluates them from the claims written ([`super::truth`]). With `neutral`, only codes
//!   that map to nothing any measure uses, so every measure result equals the one without
//!   background — what the neutrality test checks;
//! * its own random stream and its own claim-id letters (`P`, `H`, `A`), so the measure's own
//!   claims are drawn the same with or without it. (With realistic diagnoses the risk variables,
//!   and so the outcome draws, change; an outcome drawn differently shifts the draws of the
//!   procedures generated after it in the same chunk.)

use super::plan::{CarrierClaim, CarrierLine, InpatientClaim, OutpatientClaim, OutpatientLine, Procedure, World};
use crate::error::{AscqrError, Result};
use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, Poisson};
use std::collections::BTreeSet;

/// How much ordinary care the generator writes around each beneficiary (`--background`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Background {
    /// Only the claims the measures look at (the generator before issue 22).
    None,
    /// The published per-beneficiary volumes times this factor (`real` is 1).
    Times(f64),
}

impl Background {
    pub const REAL: Background = Background::Times(1.0);

    /// Parses `none`, `real` or `Kx` (K a positive number, e.g. `0.5x`, `3x`).
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim().to_ascii_lowercase();
        let bad = || AscqrError::InvalidOption(format!("--background {text:?}: expected none, real or Kx with K a positive number up to 100 (e.g. 0.5x, 3x)"));
        match t.as_str() {
            "none" => Ok(Background::None),
            "real" | "1x" => Ok(Background::REAL),
            _ => {
                let k: f64 = t.strip_suffix('x').ok_or_else(bad)?.parse().map_err(|_| bad())?;
                if !(k.is_finite() && k > 0.0 && k <= 100.0) {
                    return Err(bad());
                }
                Ok(Background::Times(k))
            }
        }
    }

    /// For clap's `value_parser`.
    pub fn parse_arg(text: &str) -> std::result::Result<Self, String> {
        Background::parse(text).map_err(|e| e.to_string())
    }

    /// `none`, `real` or `Kx`: what the manifest records.
    pub fn label(&self) -> String {
        match self {
            Background::None => "none".into(),
            Background::Times(k) if *k == 1.0 => "real".into(),
            Background::Times(k) => format!("{k}x"),
        }
    }

    fn factor(&self) -> f64 {
        match self {
            Background::None => 0.0,
            Background::Times(k) => *k,
        }
    }
}

impl serde::Serialize for Background {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.label())
    }
}

/// Which diagnoses the ordinary care carries (`--background-diagnoses`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackgroundDiagnoses {
    /// Chronic conditions that map to condition categories, among codes that map to nothing.
    Realistic,
    /// Only codes that map to nothing any measure uses: the measures' results are unchanged.
    Neutral,
}

/// The ordinary care of one beneficiary, kept apart from the measure's own claims so their ids
/// and draws do not depend on it.
#[derive(Debug, Clone, Default)]
pub struct OrdinaryCare {
    pub carrier: Vec<CarrierClaim>,
    pub outpatient: Vec<OutpatientClaim>,
    pub inpatient: Vec<InpatientClaim>,
}

/// Code pools of ordinary care, filtered against every code a measure selects on.
#[derive(Debug, Clone, Default)]
pub struct CarePools {
    office_visits: Vec<&'static str>,
    office_extras: Vec<&'static str>,
    lab_tests: Vec<&'static str>,
    imaging: Vec<&'static str>,
    therapy: Vec<&'static str>,
    dme: Vec<&'static str>,
    outpatient_imaging: Vec<(&'static str, &'static str)>,
    outpatient_therapy: Vec<(&'static str, &'static str)>,
    outpatient_infusion: Vec<(&'static str, &'static str)>,
    ed_visits: Vec<&'static str>,
    /// Codes that map to a condition category in every year and exclude nothing.
    pub chronic_dx: Vec<String>,
}

impl CarePools {
    /// `selected`: every HCPCS code a measure's cohort, concurrent-procedure, colonoscopy or
    /// procedure-variable list holds; `chronic_dx`: the realistic chronic-condition codes.
    pub fn new(selected: &BTreeSet<String>, chronic_dx: Vec<String>) -> Self {
        let keep = |codes: &[&'static str]| -> Vec<&'static str> { codes.iter().copied().filter(|c| !selected.contains(*c)).collect() };
        let keep_pairs = |codes: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
            codes.iter().copied().filter(|(_, c)| !selected.contains(*c)).collect()
        };
        CarePools {
            office_visits: keep(&["99212", "99213", "99214", "99215", "99203", "99204"]),
            office_extras: keep(&["36415", "93000", "G0439", "90662", "G0008", "81002", "94010", "G0444"]),
            lab_tests: keep(&[
                "80053", "85025", "83036", "80061", "84443", "82306", "84153", "82570", "81001", "85610", "80048", "84439", "82607", "83540",
                "82728", "84295", "83735", "82043",
            ]),
            imaging: keep(&["71046", "77067", "73030", "72100", "76700", "93306", "73560", "70450", "74176", "78452", "77080"]),
            therapy: keep(&["97110", "97140", "97530", "97112", "97116", "97161", "97035", "97014"]),
            dme: keep(&["E0601", "A4253", "A4259", "K0001", "E0114", "A7030", "L3908", "E0143", "A4604"]),
            outpatient_imaging: keep_pairs(&[("0320", "71046"), ("0350", "74177"), ("0610", "72148"), ("0402", "76700"), ("0403", "77067"), ("0351", "70450")]),
            outpatient_therapy: keep_pairs(&[("0420", "97110"), ("0420", "97140"), ("0420", "97530"), ("0430", "97535"), ("0440", "92507")]),
            outpatient_infusion: keep_pairs(&[("0260", "96365"), ("0636", "J1100"), ("0636", "J2405"), ("0260", "96374"), ("0636", "J1885")]),
            ed_visits: keep(&["99283", "99284", "99285"]),
            chronic_dx,
        }
    }
}

/// Days around the index procedure on which no ordinary hospital visit or stay may fall.
const PROTECTED_FIRST_DAY: i32 = -14;
const PROTECTED_LAST_DAY: i32 = 21;

/// Claims per beneficiary-year at `real` (generator parameters; see the module docs).
mod rate {
    pub const OFFICE: f64 = 5.5;
    pub const LAB: f64 = 2.5;
    pub const IMAGING: f64 = 1.2;
    pub const THERAPY: f64 = 0.7;
    pub const DME: f64 = 0.8;
    pub const OP_CLINIC: f64 = 1.2;
    pub const OP_LAB: f64 = 1.6;
    pub const OP_IMAGING: f64 = 0.9;
    pub const OP_THERAPY: f64 = 0.5;
    pub const OP_INFUSION: f64 = 0.2;
    pub const OP_CARDIOLOGY: f64 = 0.3;
    pub const OP_ED: f64 = 0.35;
    pub const INPATIENT: f64 = 0.25;
    /// Chronic conditions per beneficiary (Poisson mean), with `realistic` diagnoses.
    pub const CHRONIC_CONDITIONS: f64 = 1.5;
}

/// A revenue-center line of a hospital laboratory panel.
fn lab_line(pools: &CarePools, day: i32, rng: &mut ChaCha8Rng) -> OutpatientLine {
    let revenue_center = ["0300", "0301", "0305"].choose(rng).expect("codes");
    OutpatientLine { revenue_center, hcpcs: Some(pools.lab_tests.choose(rng).expect("lab codes")), day, units: 1.0 }
}

impl World {
    /// The ordinary care of the beneficiary of `p` (procedure `k` of facility `f` of measure
    /// `mi`), from its own random stream. Empty with `--background none`.
    pub(super) fn ordinary_care(&self, mi: usize, f: usize, k: u64, p: &Procedure) -> OrdinaryCare {
        let factor = self.options.background.factor();
        let mut care = OrdinaryCare::default();
        if factor == 0.0 {
            return care;
        }
        let rng = &mut super::plan::stream(self.options.seed, "ordinary care", ((mi as u64) << 32) | f as u64, k);
        let pools = &self.care_pools;
        let asc = self.measures[mi].facilities.get(f).map(|x| x.asc).unwrap_or(0);

        // Months with fee-for-service Part A and B from January of the year before the first
        // procedure year through December of the last, cut at death.
        let mut months: Vec<(i32, i32)> = Vec::new();
        for (i, &(a, b, ma)) in p.enrollment.months.iter().enumerate() {
            let year = p.enrollment.first_year + (i / 12) as i32;
            if year > self.options.last_year {
                break;
            }
            if !(a && b && !ma) {
                continue;
            }
            let first = crate::claims::sink::date_to_days(ymd(year, (i % 12 + 1) as u32, 1));
            let next = if i % 12 == 11 { ymd(year + 1, 1, 1) } else { ymd(year, (i % 12 + 2) as u32, 1) };
            let mut last = crate::claims::sink::date_to_days(next) - 1;
            if let Some(d) = p.death {
                last = last.min(d);
            }
            if first <= last {
                months.push((first, last));
            }
        }
        if months.is_empty() {
            return care;
        }
        let years = months.len() as f64 / 12.0;
        let frailty = Gamma::new(1.5, 1.0 / 1.5).map(|g| g.sample(rng)).unwrap_or(1.0);
        let chronic: Vec<&str> = match self.options.background_diagnoses {
            BackgroundDiagnoses::Neutral => vec![],
            BackgroundDiagnoses::Realistic => {
                let n = Poisson::new(rate::CHRONIC_CONDITIONS).map(|d| d.sample(rng) as usize).unwrap_or(1);
                (0..n).filter_map(|_| pools.chronic_dx.choose(rng).map(String::as_str)).collect()
            }
        };
        let count = |rng: &mut ChaCha8Rng, per_year: f64| -> usize {
            let mean = per_year * years * frailty * factor;
            if mean <= 0.0 {
                0
            } else {
                Poisson::new(mean).map(|d| d.sample(rng) as usize).unwrap_or(0)
            }
        };
        let day_in = |rng: &mut ChaCha8Rng| -> i32 {
            let (first, last) = *months.choose(rng).expect("non-empty");
            rng.random_range(first..=last)
        };
        let protected = |first: i32, last: i32| first - p.day <= PROTECTED_LAST_DAY && last - p.day >= PROTECTED_FIRST_DAY;
        let neutral = |rng: &mut ChaCha8Rng| self.pools.neutral_dx.choose(rng).expect("pool").clone();
        // A diagnosis: one of the beneficiary's chronic conditions half the time, if any.
        let diagnosis = |rng: &mut ChaCha8Rng| -> String {
            if !chronic.is_empty() && rng.random_bool(0.5) {
                chronic.choose(rng).expect("non-empty").to_string()
            } else {
                neutral(rng)
            }
        };
        let others = |rng: &mut ChaCha8Rng, principal: &str, most: usize| -> Vec<String> {
            let mut out: Vec<String> = Vec::new();
            for _ in 0..rng.random_range(0..=most) {
                let d = diagnosis(rng);
                if d != principal && !out.contains(&d) {
                    out.push(d);
                }
            }
            out
        };
        let mut seq = 0u32;
        let mut next_id = |kind: char| {
            seq += 1;
            format!("{}{kind}{seq:04}", p.bene_id)
        };

        // Carrier: (claims per year, place of service, specialty, lines).
        type LineMaker = fn(&CarePools, &mut ChaCha8Rng) -> Vec<CarrierLine>;
        let kinds: [(f64, &'static str, &'static str, LineMaker); 5] = [
            (rate::OFFICE, "11", "08", |pools, rng| {
                let mut lines = vec![pools.office_visits.choose(rng).expect("codes")];
                if rng.random_bool(0.45) {
                    lines.push(pools.office_extras.choose(rng).expect("codes"));
                }
                lines.into_iter().map(|h| CarrierLine { hcpcs: h.to_string(), modifiers: vec![], units: 1.0 }).collect()
            }),
            (rate::LAB, "81", "69", |pools, rng| {
                let n = rng.random_range(2..=7);
                pools.lab_tests.choose_multiple(rng, n).map(|h| CarrierLine { hcpcs: h.to_string(), modifiers: vec![], units: 1.0 }).collect()
            }),
            (rate::IMAGING, "22", "30", |pools, rng| {
                let n = rng.random_range(1..=2);
                pools.imaging.choose_multiple(rng, n).map(|h| CarrierLine { hcpcs: h.to_string(), modifiers: vec!["26"], units: 1.0 }).collect()
            }),
            (rate::THERAPY, "11", "65", |pools, rng| {
                let n = rng.random_range(2..=4);
                pools.therapy.choose_multiple(rng, n).map(|h| CarrierLine { hcpcs: h.to_string(), modifiers: vec!["GP"], units: 2.0 }).collect()
            }),
            (rate::DME, "12", "A5", |pools, rng| {
                let n = rng.random_range(1..=2);
                pools.dme.choose_multiple(rng, n).map(|h| CarrierLine { hcpcs: h.to_string(), modifiers: vec!["NU"], units: 1.0 }).collect()
            }),
        ];
        for (per_year, place_of_service, specialty, lines) in kinds {
            for _ in 0..count(rng, per_year) {
                let day = day_in(rng);
                let principal_dx = diagnosis(rng);
                let other_dx = others(rng, &principal_dx, 3);
                let lines = lines(pools, rng);
                if lines.is_empty() {
                    continue;
                }
                care.carrier.push(CarrierClaim {
                    claim_id: next_id('P'),
                    from: day,
                    thru: day,
                    place_of_service,
                    specialty,
                    billing_npi: super::plan::npi(600_000_000 + (asc as u64 * 11 + rng.random_range(0..40)) % 99_999_999),
                    rendering_npi: super::plan::npi(700_000_000 + (asc as u64 * 19 + rng.random_range(0..80)) % 99_999_999),
                    principal_dx,
                    other_dx,
                    lines,
                });
            }
        }

        // Hospital outpatient claims (bill type 131 at a nearby hospital).
        type RevenueMaker = fn(&CarePools, i32, &mut ChaCha8Rng) -> Vec<OutpatientLine>;
        let outpatient_kinds: [(f64, bool, RevenueMaker); 7] = [
            (rate::OP_CLINIC, false, |pools, day, rng| {
                let mut lines = vec![OutpatientLine { revenue_center: "0510", hcpcs: Some("G0463"), day, units: 1.0 }];
                for _ in 0..rng.random_range(1..=3) {
                    lines.push(lab_line(pools, day, rng));
                }
                lines
            }),
            (rate::OP_LAB, false, |pools, day, rng| {
                let mut lines = vec![OutpatientLine { revenue_center: "0300", hcpcs: Some("36415"), day, units: 1.0 }];
                for _ in 0..rng.random_range(2..=6) {
                    lines.push(lab_line(pools, day, rng));
                }
                lines
            }),
            (rate::OP_IMAGING, false, |pools, day, rng| {
                let (revenue_center, hcpcs) = *pools.outpatient_imaging.choose(rng).expect("codes");
                let mut lines = vec![OutpatientLine { revenue_center, hcpcs: Some(hcpcs), day, units: 1.0 }];
                if rng.random_bool(0.5) {
                    lines.push(OutpatientLine { revenue_center: "0636", hcpcs: Some("Q9967"), day, units: 75.0 });
                }
                lines
            }),
            (rate::OP_THERAPY, false, |pools, day, rng| {
                let n = rng.random_range(2..=4);
                pools.outpatient_therapy.choose_multiple(rng, n).map(|(r, h)| OutpatientLine { revenue_center: r, hcpcs: Some(h), day, units: 2.0 }).collect()
            }),
            (rate::OP_INFUSION, false, |pools, day, rng| {
                let n = rng.random_range(2..=4);
                let mut lines: Vec<OutpatientLine> =
                    pools.outpatient_infusion.choose_multiple(rng, n).map(|(r, h)| OutpatientLine { revenue_center: r, hcpcs: Some(h), day, units: 1.0 }).collect();
                lines.push(OutpatientLine { revenue_center: "0250", hcpcs: None, day, units: 1.0 });
                lines
            }),
            (rate::OP_CARDIOLOGY, false, |pools, day, rng| {
                vec![OutpatientLine { revenue_center: "0730", hcpcs: Some("93005"), day, units: 1.0 }, lab_line(pools, day, rng)]
            }),
            (rate::OP_ED, true, |pools, day, rng| {
                let mut lines = vec![
                    OutpatientLine { revenue_center: "0450", hcpcs: Some(pools.ed_visits.choose(rng).expect("codes")), day, units: 1.0 },
                    OutpatientLine { revenue_center: "0300", hcpcs: Some("85025"), day, units: 1.0 },
                ];
                if rng.random_bool(0.5) {
                    lines.push(OutpatientLine { revenue_center: "0320", hcpcs: Some("71046"), day, units: 1.0 });
                }
                lines
            }),
        ];
        for (per_year, hospital_visit, lines) in outpatient_kinds {
            for _ in 0..count(rng, per_year) {
                let day = day_in(rng);
                let principal_dx = if hospital_visit { self.pools.acute_dx.choose(rng).expect("pool").clone() } else { diagnosis(rng) };
                let other_dx = others(rng, &principal_dx, 4);
                let ccn = self.nearby_hospital(asc, true, rng);
                let lines = lines(pools, day, rng);
                // An ED visit near the procedure would be a hospital visit of the measure.
                if lines.is_empty() || (hospital_visit && protected(day, day)) {
                    continue;
                }
                care.outpatient.push(OutpatientClaim { claim_id: next_id('H'), ccn, from: day, thru: day, principal_dx, other_dx, lines });
            }
        }

        // Unrelated inpatient stays, most at acute care hospitals, away from the procedure.
        for _ in 0..count(rng, rate::INPATIENT) {
            let admission = day_in(rng);
            let discharge = admission + rng.random_range(2..=8);
            let acute = rng.random_bool(0.9);
            let ccn = self.nearby_hospital(asc, acute, rng);
            let principal_dx = self.pools.acute_dx.choose(rng).expect("pool").clone();
            let other_dx = others(rng, &principal_dx, 6);
            let admission_type = ["1", "2", "3"].choose(rng).expect("codes");
            let after_death = p.death.is_some_and(|d| discharge > d);
            if protected(admission, discharge) || after_death || discharge > self.last_day {
                continue;
            }
            care.inpatient.push(InpatientClaim {
                claim_id: next_id('A'),
                ccn,
                admission,
                discharge,
                principal_dx,
                other_dx,
                procedures: vec![],
                admission_type,
                admission_source: "1",
            });
        }
        care
    }
}

fn ymd(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(y, m, d).expect("valid calendar date")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_levels_parse_with_a_clear_message() {
        assert_eq!(Background::parse("none").unwrap(), Background::None);
        assert_eq!(Background::parse("Real").unwrap(), Background::REAL);
        assert_eq!(Background::parse("3x").unwrap(), Background::Times(3.0));
        assert_eq!(Background::parse("0.5x").unwrap().label(), "0.5x");
        assert_eq!(Background::REAL.label(), "real");
        for bad in ["", "x", "-1x", "0x", "3", "lots", "1000x"] {
            let e = Background::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--background"), "{bad}: {e}");
        }
    }

    #[test]
    fn ordinary_care_codes_never_include_a_selected_code() {
        let selected: BTreeSet<String> = ["99213", "71046", "J1100"].iter().map(|s| s.to_string()).collect();
        let pools = CarePools::new(&selected, vec![]);
        assert!(!pools.office_visits.contains(&"99213"));
        assert!(!pools.imaging.contains(&"71046"));
        assert!(!pools.outpatient_imaging.iter().any(|(_, h)| *h == "71046"));
        assert!(!pools.outpatient_infusion.iter().any(|(_, h)| *h == "J1100"));
        assert!(pools.office_visits.contains(&"99214"));
    }
}
