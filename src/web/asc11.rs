//! ASC-11 Cataracts – Improvement in Patient's Visual Function within 90 Days Following Cataract
//! Surgery (manual L973-1025). Voluntary for CY 2023 (L2035).
//!
//! Ambiguity choices (digest A8):
//! * Surgery window: 1 January through 31 December minus 90 days, both ends inclusive
//!   (2 October for a 365-day year; L996-997 "through 90 days prior to the end").
//! * Age ≥ 18 on the date of surgery (the manual gives no reference date).
//! * Unit: each abstracted surgery (eye) is a case.
//! * A G-code, when present, decides: G0913 met, G0915 not met, G0914 exception (L1008-1019).
//!   Without one, the surveys decide: pre and post scores with the same instrument and the post
//!   survey after the surgery and within 90 days → improvement iff post > pre (any positive
//!   change; scores must be oriented so higher = better function, as VF-14 and NEI-VFQ-25
//!   composites are). Anything else → excluded as not completing both surveys (L991).
//! * G0914 "Denominator Exception" and the L991 "Excluded Population" are treated identically.

use super::outcome::Outcome;
use super::records::{Asc11GCode, Asc11Abstraction, EncounterRecord};
use chrono::{Duration, NaiveDate};

pub const MIN_AGE: u32 = 18;
/// The 11 cataract CPT codes (manual L989-990).
pub const CATARACT_CODES: [&str; 11] = ["66840", "66850", "66852", "66920", "66930", "66940", "66982", "66983", "66984", "66987", "66988"];
/// Postoperative-only / preoperative-only management (manual L988).
pub const DISQUALIFYING_MODIFIERS: [&str; 2] = ["55", "56"];
/// Post-operative survey window and reporting-period cut-off (manual L981-983, L996-997).
pub const FOLLOWUP_DAYS: i64 = 90;

/// Inclusive surgery dates that can be reported for `year`.
pub fn surgery_window(year: i32) -> Option<(NaiveDate, NaiveDate)> {
    let first = NaiveDate::from_ymd_opt(year, 1, 1)?;
    let last = NaiveDate::from_ymd_opt(year, 12, 31)? - Duration::days(FOLLOWUP_DAYS);
    Some((first, last))
}

pub fn has_qualifying_cataract_surgery(r: &EncounterRecord) -> bool {
    r.procedures.iter().any(|p| p.is_code_without_modifiers(&CATARACT_CODES, &DISQUALIFYING_MODIFIERS))
}

pub fn population_check(r: &EncounterRecord, reporting_year: i32) -> Option<Outcome> {
    if !has_qualifying_cataract_surgery(r) {
        return Some(Outcome::NotInPopulation("no_cataract_surgery_without_55_56"));
    }
    if r.age_on_encounter() < MIN_AGE {
        return Some(Outcome::NotInPopulation("age_under_18"));
    }
    match surgery_window(reporting_year) {
        Some((first, last)) if (first..=last).contains(&r.encounter_date) => None,
        _ => Some(Outcome::NotInPopulation("surgery_after_90_day_cutoff")),
    }
}

/// Improvement from the surveys, or None when both were not validly completed.
pub fn improvement_from_surveys(a: &Asc11Abstraction, surgery: NaiveDate) -> Option<bool> {
    let (pre_instrument, post_instrument) = (a.pre_instrument.as_deref()?, a.post_instrument.as_deref()?);
    // "The same data collection instrument ... must be used pre-operatively and post-operatively" (L1003-1005).
    if !pre_instrument.trim().eq_ignore_ascii_case(post_instrument.trim()) {
        return None;
    }
    let post_date = a.post_date?;
    if post_date <= surgery || post_date > surgery + Duration::days(FOLLOWUP_DAYS) {
        return None;
    }
    Some(a.post_score? > a.pre_score?)
}

pub fn survey_outcome(a: &Asc11Abstraction, surgery: NaiveDate) -> Outcome {
    match a.gcode {
        Some(Asc11GCode::G0913) => Outcome::Numerator,
        Some(Asc11GCode::G0915) => Outcome::DenominatorOnly,
        Some(Asc11GCode::G0914) => Outcome::Excluded("g0914_survey_not_completed"),
        None => match improvement_from_surveys(a, surgery) {
            Some(true) => Outcome::Numerator,
            Some(false) => Outcome::DenominatorOnly,
            None => Outcome::Excluded("surveys_not_both_completed"),
        },
    }
}

pub fn classify(r: &EncounterRecord, reporting_year: i32) -> Outcome {
    population_check(r, reporting_year).unwrap_or_else(|| survey_outcome(&r.asc11, r.encounter_date))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::records::tests::one;

    fn cataract(extra: &[(&'static str, &'static str)]) -> EncounterRecord {
        let mut fields = vec![
            ("procedures", "66984"),
            ("unplanned_anterior_vitrectomy", "N"),
            ("vf_pre_instrument", "VF-14"),
            ("vf_pre_score", "55"),
            ("vf_post_instrument", "VF-14"),
            ("vf_post_score", "80"),
            ("vf_post_date", "2023-04-15"),
        ];
        for (k, v) in extra {
            fields.retain(|(c, _)| c != k);
            fields.push((k, v));
        }
        one(&fields)
    }

    #[test]
    fn window_ends_90_days_before_year_end_inclusive() {
        let (first, last) = surgery_window(2023).unwrap();
        assert_eq!((first.to_string(), last.to_string()), ("2023-01-01".into(), "2023-10-02".into()));
        assert_eq!(classify(&cataract(&[("encounter_date", "2023-10-02"), ("vf_post_date", "2023-11-01")]), 2023), Outcome::Numerator);
        assert_eq!(
            classify(&cataract(&[("encounter_date", "2023-10-03"), ("vf_post_date", "2023-11-01")]), 2023),
            Outcome::NotInPopulation("surgery_after_90_day_cutoff")
        );
    }

    #[test]
    fn population_needs_age_18_and_a_cataract_code_without_55_56() {
        assert_eq!(classify(&cataract(&[("birth_date", "2005-03-02")]), 2023), Outcome::NotInPopulation("age_under_18"));
        assert_eq!(classify(&cataract(&[("birth_date", "2005-03-01")]), 2023), Outcome::Numerator);
        assert_eq!(classify(&cataract(&[("procedures", "66984-55")]), 2023), Outcome::NotInPopulation("no_cataract_surgery_without_55_56"));
        assert_eq!(classify(&cataract(&[("procedures", "66840-56"), ("unplanned_anterior_vitrectomy", "")]), 2023), Outcome::NotInPopulation("no_cataract_surgery_without_55_56"));
        assert_eq!(classify(&cataract(&[("procedures", "66840"), ("unplanned_anterior_vitrectomy", "")]), 2023), Outcome::Numerator);
    }

    #[test]
    fn g_codes_decide_when_present() {
        assert_eq!(classify(&cataract(&[("asc11_gcode", "G0913"), ("vf_post_score", "")]), 2023), Outcome::Numerator);
        assert_eq!(classify(&cataract(&[("asc11_gcode", "G0915")]), 2023), Outcome::DenominatorOnly);
        assert_eq!(classify(&cataract(&[("asc11_gcode", "G0914")]), 2023), Outcome::Excluded("g0914_survey_not_completed"));
    }

    #[test]
    fn surveys_decide_without_a_g_code() {
        assert_eq!(classify(&cataract(&[]), 2023), Outcome::Numerator);
        assert_eq!(classify(&cataract(&[("vf_post_score", "55")]), 2023), Outcome::DenominatorOnly, "no change is no improvement");
        let incomplete = Outcome::Excluded("surveys_not_both_completed");
        assert_eq!(classify(&cataract(&[("vf_post_score", "")]), 2023), incomplete);
        assert_eq!(classify(&cataract(&[("vf_pre_score", "")]), 2023), incomplete);
        assert_eq!(classify(&cataract(&[("vf_post_instrument", "NEI-VFQ-25")]), 2023), incomplete, "different instruments");
        assert_eq!(classify(&cataract(&[("vf_post_date", "2023-05-31")]), 2023), incomplete, "91 days after");
        assert_eq!(classify(&cataract(&[("vf_post_date", "2023-05-30")]), 2023), Outcome::Numerator, "90 days after");
    }
}
