//! The truth of a generated procedure, evaluated from the claims actually emitted — an
//! independent, row-at-a-time statement of the measure rules (methodology §4) that the polars
//! pipeline of later stages is checked against.

use super::plan::{MeasurePlan, Procedure, World};
use crate::dictionary::VariableKind;
use std::collections::HashSet;

/// Completed years of age at the procedure, as CMS's program code computes it:
/// `floor((procedure date − birth date) / 365.25)`.
pub fn age_at(day: i32, birth: i32) -> i64 {
    ((day - birth) as f64 / 365.25).floor() as i64
}

/// History window, in days relative to the procedure: the 12 months before it.
pub const HISTORY_FIRST_DAY: i32 = -365;
pub const HISTORY_LAST_DAY: i32 = -1;

/// The values of the measure's risk variables for one procedure, in the measure's order.
pub fn evaluate_variables(world: &World, plan: &MeasurePlan, p: &Procedure) -> Vec<f64> {
    let in_history = |d: i32| (HISTORY_FIRST_DAY..=HISTORY_LAST_DAY).contains(&(d - p.day));
    let mut history: HashSet<&str> = HashSet::new();
    // The measure's own claims and the ordinary care around them, read alike.
    let care = &p.ordinary_care;
    for c in p.carrier.iter().chain(&care.carrier) {
        if in_history(c.from) {
            history.insert(&c.principal_dx);
            history.extend(c.other_dx.iter().map(String::as_str));
        }
    }
    for c in p.outpatient.iter().chain(&care.outpatient) {
        if in_history(c.from) {
            history.insert(&c.principal_dx);
            history.extend(c.other_dx.iter().map(String::as_str));
        }
    }
    for c in p.inpatient.iter().chain(&care.inpatient) {
        if in_history(c.admission) {
            history.insert(&c.principal_dx);
            history.extend(c.other_dx.iter().map(String::as_str));
        }
    }
    let index = &p.carrier[p.index_claim];
    // The index claim counts without its principal diagnosis (the reason for the procedure).
    let index_dx: HashSet<&str> =
        index.other_dx.iter().map(String::as_str).filter(|c| *c != index.principal_dx).collect();
    let ccs_of = |codes: &HashSet<&str>| -> HashSet<u16> {
        codes.iter().filter_map(|c| world.cc_map.get(*c)).flatten().copied().collect()
    };
    let history_cc = ccs_of(&history);
    let index_cc = ccs_of(&index_dx);
    let cohort_lines: Vec<&super::plan::CohortCodePlan> = index
        .lines
        .iter()
        .filter_map(|l| plan.cohort_codes.iter().find(|c| c.hcpcs == l.hcpcs))
        .collect();
    let main = cohort_lines
        .iter()
        .copied()
        .fold(None::<&super::plan::CohortCodePlan>, |best, c| match best {
            Some(b) if b.work_rvu >= c.work_rvu => Some(b),
            _ => Some(c),
        });
    let age = age_at(p.day, p.birth);

    let mut values = vec![0.0; plan.variables.len()];
    for (i, v) in plan.variables.iter().enumerate() {
        values[i] = match &v.kind {
            VariableKind::AgeGroup { low, high } => {
                let ok = age >= *low as i64 && high.map(|h| age <= h as i64).unwrap_or(true);
                ok as u8 as f64
            }
            VariableKind::AgeYearsOver65 => (age - 65) as f64,
            VariableKind::ConditionCategories(ccs) => {
                let hist = ccs.iter().any(|c| history_cc.contains(c));
                let idx = !v.complication_of_care && ccs.iter().any(|c| index_cc.contains(c));
                (hist || idx) as u8 as f64
            }
            VariableKind::Diagnoses(codes) => {
                let hist = codes.iter().any(|c| history.contains(c.as_str()));
                let idx = !v.complication_of_care && codes.iter().any(|c| index_dx.contains(c.as_str()));
                (hist || idx) as u8 as f64
            }
            VariableKind::ProcedureCodes(codes) => index.lines.iter().any(|l| codes.contains(&l.hcpcs)) as u8 as f64,
            VariableKind::ProcedureType(t) => (main.and_then(|m| m.procedure_type.as_deref()) == Some(t.as_str())) as u8 as f64,
            VariableKind::ProcedureCount { n, or_more } => {
                let k = cohort_lines.len() as u32;
                (if *or_more { k >= *n } else { k == *n }) as u8 as f64
            }
            VariableKind::WorkRvu => main.map(|m| m.work_rvu).unwrap_or(0.0),
            VariableKind::Interaction(..) => 0.0,
        };
    }
    for (i, v) in plan.variables.iter().enumerate() {
        if let VariableKind::Interaction(a, b) = &v.kind {
            let get = |name: &str| plan.variables.iter().position(|x| x.name == name).map(|j| values[j]).unwrap_or(0.0);
            values[i] = get(a) * get(b);
        }
    }
    values
}

/// Σ β·x plus the facility intercept (the measure's intercept is added by the caller).
pub fn linear_predictor(plan: &MeasurePlan, facility_intercept: f64, values: &[f64]) -> f64 {
    plan.variables.iter().zip(values).map(|(v, x)| v.beta * x).sum::<f64>() + facility_intercept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_follows_cms_floor_of_days_over_365_25() {
        // Born 1950-06-15, procedure 2022-06-14: one day short of 72.
        let birth = crate::claims::sink::date_to_days(chrono::NaiveDate::from_ymd_opt(1950, 6, 15).unwrap());
        let day = crate::claims::sink::date_to_days(chrono::NaiveDate::from_ymd_opt(2022, 6, 14).unwrap());
        assert_eq!(age_at(day, birth), 71);
        assert_eq!(age_at(day + 2, birth), 72);
    }
}
