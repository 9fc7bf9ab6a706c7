//! ASC-13 Normothermia Outcome (manual MIF L1233-1285; Appendix A L2408-2566).
//!
//! Ambiguity choices:
//! * Population (A9): encounters under general or neuraxial anesthesia (L1237-1239); sedation,
//!   local or no anesthesia recorded are not cases ("Cases with strictly sedation or local
//!   anesthesia would not be included", L2488). Missing start/end and duration < 60 minutes are
//!   counted as exclusions by reason so the facility sees why cases dropped out.
//! * Start and end of anesthesia are both required; induction never replaces the start and PACU
//!   arrival never replaces the end (L2489-2496, Scenario 5 L2556-2566).
//! * A6: documented intentional hypothermia excludes unconditionally — the MIF (L1245-1247) and
//!   Scenario 4 (L2547-2555) win over the flowchart, which asks only after a low temperature.
//! * A7: the window is [PACU arrival, arrival + 15 min], both ends inclusive; ANY reading in it
//!   at or above the threshold qualifies (Scenario 2 takes the later reading, L2527-2537).
//! * A5: no reading in the window (or no PACU arrival time) → the case stays in the denominator
//!   and fails. The MIF lists no such exclusion (L1245-1247); the flowchart's apparent
//!   "exclude" branch (L2434-2443) survives only as garbled extracted text.

use super::outcome::Outcome;
use super::records::{Asc13Abstraction, AnesthesiaType, TemperatureReading, TemperatureUnit};
use chrono::Duration;

/// "greater than or equal to 60 minutes duration" (manual L1243; Scenario 2: exactly 60 counts).
pub const MIN_ANESTHESIA_MINUTES: i64 = 60;
/// "within fifteen minutes of arrival in PACU" (manual L1240).
pub const PACU_WINDOW_MINUTES: i64 = 15;
/// "equal to or greater than 96.8 Fahrenheit/36 Celsius" (manual L1240).
pub const NORMOTHERMIA_F: f64 = 96.8;
pub const NORMOTHERMIA_C: f64 = 36.0;

/// General, or neuraxial = "Epidural or spinal anesthesia" (manual L1259).
pub fn is_general_or_neuraxial(t: Option<AnesthesiaType>) -> bool {
    matches!(t, Some(AnesthesiaType::General | AnesthesiaType::Spinal | AnesthesiaType::Epidural))
}

pub fn is_normothermic(t: &TemperatureReading) -> bool {
    // A small tolerance so 96.8 read from text is never lost to binary rounding.
    match t.unit {
        TemperatureUnit::Fahrenheit => t.value >= NORMOTHERMIA_F - 1e-9,
        TemperatureUnit::Celsius => t.value >= NORMOTHERMIA_C - 1e-9,
    }
}

/// Denominator rules (Step 1, manual L2483-2498) and the exclusion for intentional hypothermia.
pub fn denominator_check(a: &Asc13Abstraction) -> Option<Outcome> {
    if !is_general_or_neuraxial(a.anesthesia_type) {
        return Some(Outcome::NotInPopulation("not_general_or_neuraxial_anesthesia"));
    }
    let Some(start) = a.anesthesia_start else {
        return Some(Outcome::Excluded("no_anesthesia_start_time"));
    };
    let Some(end) = a.anesthesia_end else {
        return Some(Outcome::Excluded("no_anesthesia_end_time"));
    };
    if end - start < Duration::minutes(MIN_ANESTHESIA_MINUTES) {
        return Some(Outcome::Excluded("anesthesia_under_60_minutes"));
    }
    if a.intentional_hypothermia_documented {
        return Some(Outcome::Excluded("intentional_hypothermia"));
    }
    None
}

/// Numerator (Step 2, manual L2499-2502): any reading in [arrival, arrival + 15 min] ≥ threshold.
pub fn normothermic_within_window(a: &Asc13Abstraction) -> bool {
    let Some(arrival) = a.pacu_arrival else { return false };
    let window_end = arrival + Duration::minutes(PACU_WINDOW_MINUTES);
    a.temperatures.iter().any(|t| t.recorded_at >= arrival && t.recorded_at <= window_end && is_normothermic(t))
}

pub fn classify(a: &Asc13Abstraction) -> Outcome {
    denominator_check(a).unwrap_or(if normothermic_within_window(a) { Outcome::Numerator } else { Outcome::DenominatorOnly })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::records::tests::one;

    fn case(fields: &[(&str, &str)]) -> Asc13Abstraction {
        one(fields).asc13
    }

    fn verdict(o: Outcome) -> (bool, bool) {
        (o.in_denominator(), o.in_numerator())
    }

    /// Scenario 1 (L2509-2519): general; start 0615; end 0720; PACU 0725; 36°C at 0730 → D yes, N yes.
    #[test]
    fn manual_scenario_1() {
        let a = case(&[
            ("anesthesia_type", "general"),
            ("anesthesia_start", "2023-03-01T06:15"),
            ("anesthesia_end", "2023-03-01T07:20"),
            ("pacu_arrival", "2023-03-01T07:25"),
            ("temperatures", "36C@2023-03-01T07:30"),
        ]);
        assert_eq!(verdict(classify(&a)), (true, true));
    }

    /// Scenario 2 (L2527-2537): spinal 1000-1100 (exactly 60 min); PACU 1105; 96.5°F at 1110;
    /// 97°F at 1115 → D yes, N yes.
    #[test]
    fn manual_scenario_2() {
        let a = case(&[
            ("anesthesia_type", "spinal"),
            ("anesthesia_start", "2023-03-01T10:00"),
            ("anesthesia_end", "2023-03-01T11:00"),
            ("pacu_arrival", "2023-03-01T11:05"),
            ("temperatures", "96.5F@2023-03-01T11:10;97F@2023-03-01T11:15"),
        ]);
        assert_eq!(verdict(classify(&a)), (true, true));
    }

    /// Scenario 3 (L2538-2546): general 0730-0825 (55 min); PACU 0832; 97.8°F at 0837 → D no.
    #[test]
    fn manual_scenario_3() {
        let a = case(&[
            ("anesthesia_type", "general"),
            ("anesthesia_start", "2023-03-01T07:30"),
            ("anesthesia_end", "2023-03-01T08:25"),
            ("pacu_arrival", "2023-03-01T08:32"),
            ("temperatures", "97.8F@2023-03-01T08:37"),
        ]);
        assert_eq!(classify(&a), Outcome::Excluded("anesthesia_under_60_minutes"));
        assert_eq!(verdict(classify(&a)), (false, false));
    }

    /// Scenario 4 (L2547-2555): epidural started 0800 in pre-op (OR entry 0810 is not the
    /// start); end 0905; 96.5°F at 0920; NP documented intentional hypothermia → D no.
    #[test]
    fn manual_scenario_4() {
        let a = case(&[
            ("anesthesia_type", "epidural"),
            ("anesthesia_start", "2023-03-01T08:00"),
            ("anesthesia_end", "2023-03-01T09:05"),
            ("temperatures", "96.5F@2023-03-01T09:20"),
            ("intentional_hypothermia_documented", "Y"),
        ]);
        assert_eq!(classify(&a), Outcome::Excluded("intentional_hypothermia"));
        assert_eq!(verdict(classify(&a)), (false, false));
    }

    /// Scenario 5 (L2556-2566): general; start 1010; no end; PACU 1115; 97°F at 1125 → D no
    /// (PACU arrival is not a substitute for the end time).
    #[test]
    fn manual_scenario_5() {
        let a = case(&[
            ("anesthesia_type", "general"),
            ("anesthesia_start", "2023-03-01T10:10"),
            ("pacu_arrival", "2023-03-01T11:15"),
            ("temperatures", "97F@2023-03-01T11:25"),
        ]);
        assert_eq!(classify(&a), Outcome::Excluded("no_anesthesia_end_time"));
        assert_eq!(verdict(classify(&a)), (false, false));
    }

    #[test]
    fn induction_never_substitutes_for_start() {
        let a = case(&[
            ("anesthesia_type", "general"),
            ("anesthesia_induction", "2023-03-01T10:00"),
            ("anesthesia_end", "2023-03-01T11:30"),
            ("pacu_arrival", "2023-03-01T11:35"),
            ("temperatures", "97F@2023-03-01T11:40"),
        ]);
        assert_eq!(classify(&a), Outcome::Excluded("no_anesthesia_start_time"));
    }

    #[test]
    fn sedation_and_local_are_not_cases() {
        for t in ["sedation", "local", ""] {
            let a = case(&[("anesthesia_type", t), ("anesthesia_start", "2023-03-01T10:00"), ("anesthesia_end", "2023-03-01T12:00")]);
            assert_eq!(classify(&a), Outcome::NotInPopulation("not_general_or_neuraxial_anesthesia"), "{t}");
        }
    }

    #[test]
    fn window_is_inclusive_crosses_midnight_and_uses_thresholds_exactly() {
        let base = [
            ("anesthesia_type", "general"),
            ("anesthesia_start", "2023-03-01T22:30"),
            ("anesthesia_end", "2023-03-01T23:50"),
            ("pacu_arrival", "2023-03-01T23:55"),
        ];
        let with = |temps: &'static str| {
            let mut f = base.to_vec();
            f.push(("temperatures", temps));
            classify(&case(&f))
        };
        assert_eq!(with("96.8F@2023-03-02T00:10"), Outcome::Numerator, "+15 min, 96.8 F exactly");
        assert_eq!(with("36.0C@2023-03-01T23:55"), Outcome::Numerator, "at arrival");
        assert_eq!(with("98F@2023-03-02T00:11"), Outcome::DenominatorOnly, "+16 min");
        assert_eq!(with("98F@2023-03-01T23:50"), Outcome::DenominatorOnly, "before arrival");
        assert_eq!(with("96.7F@2023-03-02T00:00;35.9C@2023-03-02T00:05"), Outcome::DenominatorOnly);
        assert_eq!(with(""), Outcome::DenominatorOnly, "A5: no reading → denominator, fails");
    }
}
