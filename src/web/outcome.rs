//! The typed result of applying one measure to one encounter, and the measure identifiers.

/// What a measure says about one encounter. Reasons are short snake_case codes so they can be
/// counted per facility and written to `web_measures.csv` unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The encounter is not a case of this measure at all (e.g. not a screening colonoscopy).
    /// Such encounters are not counted in the sampling population either.
    NotInPopulation(&'static str),
    /// A case of the measure removed by a denominator exclusion or exception.
    Excluded(&'static str),
    /// Counted in the denominator, not in the numerator (the measure was not met, or a numerator
    /// exclusion such as ASC-2's fall outside the ASC, manual L623).
    DenominatorOnly,
    /// Counted in the denominator and the numerator.
    Numerator,
}

impl Outcome {
    /// Belongs to the measure population that sampling draws from.
    pub fn in_population(&self) -> bool {
        !matches!(self, Outcome::NotInPopulation(_))
    }
    pub fn in_denominator(&self) -> bool {
        matches!(self, Outcome::DenominatorOnly | Outcome::Numerator)
    }
    pub fn in_numerator(&self) -> bool {
        matches!(self, Outcome::Numerator)
    }
}

/// The web-based measures reported through HQR (manual L329-330). ASC-20 goes to NHSN and is
/// handled separately in [`super::asc20`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    Asc1,
    Asc2,
    Asc3,
    Asc4,
    Asc9,
    Asc11,
    Asc13,
    Asc14,
}

impl Measure {
    pub const ALL: [Measure; 8] =
        [Measure::Asc1, Measure::Asc2, Measure::Asc3, Measure::Asc4, Measure::Asc9, Measure::Asc11, Measure::Asc13, Measure::Asc14];

    /// "ASC-9" etc., as the manual names them.
    pub fn label(&self) -> &'static str {
        match self {
            Measure::Asc1 => "ASC-1",
            Measure::Asc2 => "ASC-2",
            Measure::Asc3 => "ASC-3",
            Measure::Asc4 => "ASC-4",
            Measure::Asc9 => "ASC-9",
            Measure::Asc11 => "ASC-11",
            Measure::Asc13 => "ASC-13",
            Measure::Asc14 => "ASC-14",
        }
    }

    /// Only ASC-9, ASC-11 and ASC-13 are sampled (manual L2004-2007).
    pub fn is_sampled(&self) -> bool {
        matches!(self, Measure::Asc9 | Measure::Asc11 | Measure::Asc13)
    }

    /// `asc9`, `asc11`, `asc13` … (the CLI's spelling).
    pub fn from_cli_name(name: &str) -> Option<Measure> {
        Measure::ALL.into_iter().find(|m| m.label().replace('-', "").eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_nine_eleven_and_thirteen_are_sampled() {
        let sampled: Vec<_> = Measure::ALL.iter().filter(|m| m.is_sampled()).map(|m| m.label()).collect();
        assert_eq!(sampled, ["ASC-9", "ASC-11", "ASC-13"]);
    }

    #[test]
    fn cli_names_map_to_measures() {
        assert_eq!(Measure::from_cli_name("asc13"), Some(Measure::Asc13));
        assert_eq!(Measure::from_cli_name("ASC9"), Some(Measure::Asc9));
        assert_eq!(Measure::from_cli_name("asc12"), None);
    }

    #[test]
    fn outcome_predicates() {
        assert!(!Outcome::NotInPopulation("x").in_population());
        assert!(Outcome::Excluded("x").in_population() && !Outcome::Excluded("x").in_denominator());
        assert!(Outcome::DenominatorOnly.in_denominator() && !Outcome::DenominatorOnly.in_numerator());
        assert!(Outcome::Numerator.in_numerator());
    }
}
