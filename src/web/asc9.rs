//! ASC-9 Endoscopy/Polyp Surveillance: Appropriate Follow-up Interval for Normal Colonoscopy in
//! Average Risk Patients (manual MIF L909-965; Appendix A L2201-2400).
//!
//! Ambiguity choices (digest A3, A4, A10, A11), each tested below:
//! * A3 — the MIF rule (L937-939, fact sheet L2388-2392) wins over the data collection tool's
//!   question 1(a) (L2306-2313): a documented medical reason excludes the case ONLY when the
//!   documented interval is under 10 years. Reason + ≥ 10 years → numerator. Reason + no usable
//!   interval ("prn", blank) → stays in the denominator and fails.
//! * A4 — "no follow-up needed" documentation excludes only with a documented reason of age AND
//!   the patient is ≥ 66 on the encounter date, or a documented life expectancy < 10 years
//!   (MIF L935-937 states the ≥ 66 threshold; the fact sheet's looser wording is not used).
//! * A10 — Z12.11 and the history codes count in any diagnosis position; the 52/53/73/74
//!   modifiers disqualify only the colonoscopy line that carries them; Z86.010 also matches its
//!   FY2024 child codes Z86.0100-Z86.0109 (prefix match); biopsy/polypectomy is the abstracted
//!   `biopsy_or_polypectomy` answer (the manual has no code list for it).
//! * A11 — the recommendation's MINIMUM interval must be ≥ 10 years (≥ 120 months). A range
//!   wholly at or above 10 ("10-15 years") is accepted; any range reaching below 10 ("7-10
//!   years") is not (L965). Qualifiers that allow an earlier repeat ("or sooner", "if
//!   symptomatic", "prn", "many") make the text unacceptable (L2399-2400). A target calendar year
//!   ("repeat in 2033") counts as whole calendar years after the encounter year (2033 for a 2023
//!   encounter = 10 years, accepted): the report names no month, and the manual gives no rule, so
//!   the year difference is the reading a physician writing the target year intends. Years and
//!   months together ("9 years 6 months") are added up (114 months, under 10 years).

use super::outcome::Outcome;
use chrono::Datelike;
use super::records::{Asc9Abstraction, EncounterRecord, NoFollowupReason, ProcedureLine};

/// "Patients aged ≥ 50 and ≤ 75 on date of encounter" (manual L922), both ends inclusive.
pub const MIN_AGE: u32 = 50;
pub const MAX_AGE: u32 = 75;
/// Z12.11 Encounter for screening for malignant neoplasm of colon (manual L924, L2345).
pub const SCREENING_DIAGNOSIS: &str = "Z1211";
/// 44388, 45378, G0121 (manual L926, L2347-2349).
pub const SCREENING_COLONOSCOPY_CODES: [&str; 3] = ["44388", "45378", "G0121"];
/// Reduced/discontinued services (manual L928, L2351-2360, L2398).
pub const DISQUALIFYING_MODIFIERS: [&str; 4] = ["52", "53", "73", "74"];
/// Z83.71, Z80.0, Z85.038 exactly; Z86.010 with its children (manual L930, L2362-2365; A10).
const HIGH_RISK_EXACT: [&str; 3] = ["Z8371", "Z800", "Z85038"];
const HIGH_RISK_PREFIX: &str = "Z86010";
/// The "no adenoma and age ≥ 66" / age-as-reason threshold (manual L933-937).
pub const NO_FOLLOWUP_MIN_AGE: u32 = 66;
/// 10 years (manual L917, L963).
pub const MIN_INTERVAL_MONTHS: u32 = 120;

pub fn age_in_screening_range(age: u32) -> bool {
    (MIN_AGE..=MAX_AGE).contains(&age)
}

pub fn has_screening_diagnosis(r: &EncounterRecord) -> bool {
    r.has_diagnosis(SCREENING_DIAGNOSIS)
}

pub fn is_high_risk_history(code: &str) -> bool {
    HIGH_RISK_EXACT.contains(&code) || code.starts_with(HIGH_RISK_PREFIX)
}

fn is_colonoscopy_line(p: &ProcedureLine) -> bool {
    SCREENING_COLONOSCOPY_CODES.contains(&p.code.as_str())
}

/// At least one 44388/45378/G0121 line free of 52/53/73/74 on that same line (A10).
pub fn has_complete_screening_colonoscopy(r: &EncounterRecord) -> bool {
    r.procedures.iter().any(|p| p.is_code_without_modifiers(&SCREENING_COLONOSCOPY_CODES, &DISQUALIFYING_MODIFIERS))
}

/// Z12.11 with any colonoscopy line: the record must then answer the ASC-9 questions.
pub fn is_screening_colonoscopy_candidate(r: &EncounterRecord) -> bool {
    has_screening_diagnosis(r) && r.procedures.iter().any(is_colonoscopy_line)
}

/// The recommended follow-up interval as documented in the final colonoscopy report (L2383).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowupInterval {
    /// The earliest recommended repeat is ≥ 10 years away.
    AtLeastTenYears { minimum_months: u32 },
    /// The recommendation allows a repeat before 10 years (value, range or upper bound).
    UnderTenYears { minimum_months: u32 },
    /// "No repeat colonoscopy needed/recommended".
    NoFollowupNeeded,
    /// Blank, vague ("prn", "many", "when symptomatic") or unparseable.
    NotAcceptable(&'static str),
}

/// Terms the fact sheet rules out, or that allow an earlier repeat (L2399-2400; A11).
const VAGUE_TERMS: [&str; 8] = ["prn", "p.r.n", "as needed", "if needed", "many", "symptom", "sooner", "earlier"];
const NO_FOLLOWUP_TERMS: [&str; 7] = ["no repeat", "no further", "no follow", "not needed", "not recommended", "no colonoscopy", "none"];
const NUMBER_WORDS: [(&str, u32); 12] = [
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
    ("ten", 10),
    ("twelve", 12),
    ("fifteen", 15),
];

#[derive(Debug, PartialEq)]
enum Token {
    Number(f64),
    Word(String),
    Symbol(char),
}

fn tokenise(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_ascii_digit() {
            let mut s = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_ascii_digit() || d == '.' {
                    s.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            match s.trim_end_matches('.').parse::<f64>() {
                Ok(n) => tokens.push(Token::Number(n)),
                Err(_) => tokens.push(Token::Symbol('?')),
            }
        } else if c.is_alphabetic() {
            let mut s = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_alphabetic() {
                    s.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            match NUMBER_WORDS.iter().find(|(w, _)| *w == s) {
                Some((_, n)) => tokens.push(Token::Number(f64::from(*n))),
                None => tokens.push(Token::Word(s)),
            }
        } else {
            if !c.is_whitespace() {
                tokens.push(Token::Symbol(c));
            }
            chars.next();
        }
    }
    tokens
}

fn months_per_unit(tokens: &[Token]) -> Option<u32> {
    let mut unit = None;
    for t in tokens {
        if let Token::Word(w) = t {
            let this = match w.as_str() {
                "y" | "yr" | "yrs" | "year" | "years" => 12,
                "mo" | "mos" | "month" | "months" => 1,
                _ => continue,
            };
            if unit.is_some_and(|u| u != this) {
                return None; // "1 year 6 months" and the like: not parsed.
            }
            unit = Some(this);
        }
    }
    unit
}

fn has_word(tokens: &[Token], words: &[&str]) -> bool {
    tokens.iter().any(|t| matches!(t, Token::Word(w) if words.contains(&w.as_str())))
}

fn has_symbol(tokens: &[Token], symbols: &[char]) -> bool {
    tokens.iter().any(|t| matches!(t, Token::Symbol(s) if symbols.contains(s)))
}

/// "9 years 6 months", "1 yr and 6 mos": exactly two number–unit pairs, years then months,
/// with no range between them → total months.
fn years_and_months(tokens: &[Token]) -> Option<f64> {
    let unit_months = |t: &Token| match t {
        Token::Word(w) if matches!(w.as_str(), "y" | "yr" | "yrs" | "year" | "years") => Some(12.0),
        Token::Word(w) if matches!(w.as_str(), "mo" | "mos" | "month" | "months") => Some(1.0),
        _ => None,
    };
    let pairs: Vec<(f64, f64)> = tokens
        .windows(2)
        .filter_map(|w| match (&w[0], unit_months(&w[1])) {
            (Token::Number(n), Some(u)) => Some((*n, u)),
            _ => None,
        })
        .collect();
    let ranged = has_symbol(tokens, &['-', '/']) || has_word(tokens, &["to", "or"]);
    match pairs.as_slice() {
        [(years, 12.0), (months, 1.0)] if !ranged => Some(years * 12.0 + months),
        _ => None,
    }
}

/// Reads free-text follow-up recommendations such as "10 years", "10 yrs", "120 months",
/// ">10 years", "10+ years", "7-10 years", "5–10 years", "7 to 10 years", "prn", "repeat in
/// 2033" (a target year, counted from `encounter_year`), "9 years 6 months".
pub fn parse_followup_interval(text: &str, encounter_year: i32) -> FollowupInterval {
    let t = text.trim().to_lowercase().replace(['–', '—', '‒', '−'], "-");
    if t.is_empty() {
        return FollowupInterval::NotAcceptable("no_interval_documented");
    }
    if VAGUE_TERMS.iter().any(|v| t.contains(v)) {
        return FollowupInterval::NotAcceptable("vague_interval_term");
    }
    if NO_FOLLOWUP_TERMS.iter().any(|v| t.contains(v)) {
        return FollowupInterval::NoFollowupNeeded;
    }
    let tokens = tokenise(&t);
    let mut numbers: Vec<f64> = tokens.iter().filter_map(|x| if let Token::Number(n) = x { Some(*n) } else { None }).collect();
    if numbers.is_empty() || numbers.len() > 2 {
        return FollowupInterval::NotAcceptable("unparseable_interval");
    }
    let months_per = if numbers.iter().any(|n| *n >= 1900.0) {
        // A target calendar year (A11): every number must be a year, and no unit may be given.
        let all_years = numbers.iter().all(|n| (1900.0..=2200.0).contains(n) && n.fract() == 0.0);
        if !all_years || months_per_unit(&tokens).is_some() {
            return FollowupInterval::NotAcceptable("unparseable_interval");
        }
        numbers = numbers.iter().map(|year| year - f64::from(encounter_year)).collect();
        if numbers.iter().any(|years| *years < 0.0) {
            return FollowupInterval::NotAcceptable("target_year_before_encounter");
        }
        12
    } else if let Some(total_months) = years_and_months(&tokens) {
        numbers = vec![total_months];
        1
    } else {
        match months_per_unit(&tokens) {
            Some(m) => m,
            None => return FollowupInterval::NotAcceptable("unparseable_interval"),
        }
    };
    let upper_bound_only = has_symbol(&tokens, &['<', '≤']) || has_word(&tokens, &["less", "under", "within", "before", "fewer"]) || t.contains("up to");
    let lower_bound = has_symbol(&tokens, &['>', '≥', '+']) || has_word(&tokens, &["least", "more", "greater", "over", "longer", "beyond"]);
    if upper_bound_only && lower_bound {
        return FollowupInterval::NotAcceptable("unparseable_interval");
    }
    if numbers.len() == 2 && lower_bound {
        return FollowupInterval::NotAcceptable("unparseable_interval");
    }
    // A range's minimum is its smaller end; an upper bound alone allows a repeat at any time.
    let minimum = if upper_bound_only { 0.0 } else { numbers.iter().copied().fold(f64::INFINITY, f64::min) };
    let minimum_months = (minimum * f64::from(months_per)).round() as u32;
    if minimum_months >= MIN_INTERVAL_MONTHS {
        FollowupInterval::AtLeastTenYears { minimum_months }
    } else {
        FollowupInterval::UnderTenYears { minimum_months }
    }
}

/// Population rules (manual L921-930 and L919-920), in flowchart order (L2201-2274).
pub fn population_check(r: &EncounterRecord) -> Option<Outcome> {
    if !has_screening_diagnosis(r) {
        return Some(Outcome::NotInPopulation("no_screening_diagnosis_z12_11"));
    }
    if !r.procedures.iter().any(is_colonoscopy_line) {
        return Some(Outcome::NotInPopulation("no_screening_colonoscopy_code"));
    }
    if !has_complete_screening_colonoscopy(r) {
        return Some(Outcome::NotInPopulation("colonoscopy_modifier_52_53_73_74"));
    }
    if !age_in_screening_range(r.age_on_encounter()) {
        return Some(Outcome::NotInPopulation("age_outside_50_75"));
    }
    if r.diagnoses.iter().any(|d| is_high_risk_history(d)) {
        return Some(Outcome::NotInPopulation("high_risk_history_diagnosis"));
    }
    if r.asc9.biopsy_or_polypectomy != Some(false) {
        return Some(Outcome::NotInPopulation("biopsy_or_polypectomy"));
    }
    None
}

/// A4: age counts as a reason for no follow-up only at ≥ 66; life expectancy < 10 y always.
fn no_followup_reason_acceptable(reason: Option<NoFollowupReason>, age: u32) -> bool {
    match reason {
        Some(NoFollowupReason::LifeExpectancy) => true,
        Some(NoFollowupReason::Age) => age >= NO_FOLLOWUP_MIN_AGE,
        None => false,
    }
}

/// Exclusion and numerator for a case in the denominator population (MIF L931-939, L962-965).
pub fn followup_outcome(a: &Asc9Abstraction, age: u32, encounter_year: i32) -> Outcome {
    match parse_followup_interval(&a.followup_interval_text, encounter_year) {
        FollowupInterval::AtLeastTenYears { .. } => Outcome::Numerator,
        FollowupInterval::UnderTenYears { .. } if a.medical_reason_documented == Some(true) => {
            Outcome::Excluded("medical_reason_with_interval_under_10_years")
        }
        FollowupInterval::NoFollowupNeeded if no_followup_reason_acceptable(a.no_followup_reason, age) => {
            Outcome::Excluded("no_followup_age_66_plus_or_life_expectancy")
        }
        _ => Outcome::DenominatorOnly,
    }
}

pub fn classify(r: &EncounterRecord) -> Outcome {
    population_check(r).unwrap_or_else(|| followup_outcome(&r.asc9, r.age_on_encounter(), r.encounter_date.year()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::records::tests::one;
    use FollowupInterval::*;

    /// Texts read for a 2023 encounter.
    fn parse(text: &str) -> FollowupInterval {
        parse_followup_interval(text, 2023)
    }

    /// An eligible average-risk screening colonoscopy, age 62 on 2023-03-01.
    fn screening(extra: &[(&'static str, &'static str)]) -> EncounterRecord {
        let mut fields = vec![("procedures", "45378"), ("diagnoses", "Z12.11"), ("biopsy_or_polypectomy", "N"), ("followup_interval_text", "10 years")];
        for (k, v) in extra {
            fields.retain(|(c, _)| c != k);
            fields.push((k, v));
        }
        one(&fields)
    }

    #[test]
    fn interval_texts_of_at_least_ten_years_are_accepted() {
        for text in ["10 years", "10 yrs", "follow-up in 10 years", "12 years", "120 months", ">10 years", "10+ years", "Repeat colonoscopy in 10 years", "ten years", "at least 10 years", "10-15 years", "repeat in 2033", "2033", "10 years 6 months"] {
            assert!(matches!(parse(text), AtLeastTenYears { .. }), "{text}: {:?}", parse(text));
        }
        assert_eq!(parse("120 months"), AtLeastTenYears { minimum_months: 120 });
    }

    #[test]
    fn ranges_reaching_below_ten_and_short_intervals_are_under_ten() {
        for (text, min) in [("7-10 years", 84), ("5–10 years", 60), ("7 to 10 years", 84), ("5 years", 60), ("119 months", 119), ("<10 years", 0), ("9.5 years", 114), ("up to 10 years", 0), ("repeat in 2030", 84), ("2030-2033", 84), ("1 year 6 months", 18), ("9 years and 6 months", 114)] {
            assert_eq!(parse(text), UnderTenYears { minimum_months: min }, "{text}");
        }
    }

    #[test]
    fn vague_blank_and_unparseable_texts_are_not_acceptable() {
        for text in ["prn", "PRN", "many", "many years", "when symptomatic", "10 years or sooner if symptomatic", "", "normal colon", "repeat in 2020", "2033 years", "6 months 1 year", "5, 7 or 10 years"] {
            assert!(matches!(parse(text), NotAcceptable(_)), "{text}: {:?}", parse(text));
        }
        assert_eq!(parse("No repeat colonoscopy recommended"), NoFollowupNeeded);
    }

    #[test]
    fn dct_question_1_population_rules() {
        // Q1 yes: screening colonoscopy, no biopsy, age 50-75 (inclusive on the encounter date).
        assert_eq!(classify(&screening(&[])), Outcome::Numerator);
        assert_eq!(classify(&screening(&[("birth_date", "1973-03-01")])), Outcome::Numerator, "50 today");
        assert_eq!(classify(&screening(&[("birth_date", "1947-03-02")])), Outcome::Numerator, "75 and 364 days");
        // Q1 no → exclude from the denominator population.
        assert_eq!(classify(&screening(&[("birth_date", "1973-03-02")])), Outcome::NotInPopulation("age_outside_50_75"));
        assert_eq!(classify(&screening(&[("birth_date", "1947-03-01")])), Outcome::NotInPopulation("age_outside_50_75"));
        assert_eq!(classify(&screening(&[("biopsy_or_polypectomy", "Y")])), Outcome::NotInPopulation("biopsy_or_polypectomy"));
        assert_eq!(classify(&screening(&[("diagnoses", "K57.30")])), Outcome::NotInPopulation("no_screening_diagnosis_z12_11"));
        assert_eq!(classify(&screening(&[("procedures", "45380")])), Outcome::NotInPopulation("no_screening_colonoscopy_code"));
    }

    #[test]
    fn modifiers_disqualify_only_the_line_that_carries_them() {
        for m in ["45378-52", "45378-53", "44388-73", "G0121-74"] {
            assert_eq!(classify(&screening(&[("procedures", m)])), Outcome::NotInPopulation("colonoscopy_modifier_52_53_73_74"), "{m}");
        }
        assert_eq!(classify(&screening(&[("procedures", "45378-PT")])), Outcome::Numerator);
        assert_eq!(classify(&screening(&[("procedures", "45378-53;G0121")])), Outcome::Numerator);
        assert_eq!(classify(&screening(&[("procedures", "G0121")])), Outcome::Numerator);
        assert_eq!(classify(&screening(&[("procedures", "44388")])), Outcome::Numerator);
    }

    #[test]
    fn high_risk_history_codes_exclude_including_z86_010_children() {
        for dx in ["Z12.11;Z83.71", "Z12.11;Z86.010", "Z12.11;Z86.0101", "Z12.11;Z80.0", "Z12.11;Z85.038"] {
            assert_eq!(classify(&screening(&[("diagnoses", dx)])), Outcome::NotInPopulation("high_risk_history_diagnosis"), "{dx}");
        }
        assert_eq!(classify(&screening(&[("diagnoses", "Z12.11;Z86.018")])), Outcome::Numerator);
    }

    #[test]
    fn dct_question_1a_medical_reason_excludes_only_with_an_interval_under_ten_years() {
        // A3: reason + 3 years → excluded (L945-950 examples).
        assert_eq!(
            classify(&screening(&[("medical_reason_documented", "Y"), ("followup_interval_text", "3 years")])),
            Outcome::Excluded("medical_reason_with_interval_under_10_years")
        );
        // A range that includes 10 is not ≥ 10, so with a reason it is excluded too.
        assert_eq!(
            classify(&screening(&[("medical_reason_documented", "Y"), ("followup_interval_text", "7 to 10 years")])),
            Outcome::Excluded("medical_reason_with_interval_under_10_years")
        );
        // Reason documented but a 10-year interval recommended → numerator (MIF over DCT).
        assert_eq!(classify(&screening(&[("medical_reason_documented", "Y")])), Outcome::Numerator);
        // Reason with no usable interval → denominator, fails.
        assert_eq!(classify(&screening(&[("medical_reason_documented", "Y"), ("followup_interval_text", "prn")])), Outcome::DenominatorOnly);
    }

    #[test]
    fn dct_question_2_numerator() {
        assert_eq!(classify(&screening(&[("followup_interval_text", "10 yrs")])), Outcome::Numerator);
        assert_eq!(classify(&screening(&[("followup_interval_text", "5 years")])), Outcome::DenominatorOnly);
        assert_eq!(classify(&screening(&[("followup_interval_text", "5-10 years")])), Outcome::DenominatorOnly);
        assert_eq!(classify(&screening(&[("followup_interval_text", "when symptomatic")])), Outcome::DenominatorOnly);
    }

    #[test]
    fn a4_no_followup_excludes_only_for_age_66_or_life_expectancy() {
        let none = ("followup_interval_text", "No repeat colonoscopy needed");
        // Age 62: age is not an acceptable reason below 66.
        assert_eq!(classify(&screening(&[none, ("no_followup_reason", "age")])), Outcome::DenominatorOnly);
        // Age 70 (born 1953-01-01).
        assert_eq!(
            classify(&screening(&[none, ("no_followup_reason", "age"), ("birth_date", "1953-01-01")])),
            Outcome::Excluded("no_followup_age_66_plus_or_life_expectancy")
        );
        assert_eq!(
            classify(&screening(&[none, ("no_followup_reason", "life_expectancy")])),
            Outcome::Excluded("no_followup_age_66_plus_or_life_expectancy")
        );
        assert_eq!(classify(&screening(&[none])), Outcome::DenominatorOnly);
    }
}
