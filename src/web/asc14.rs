//! ASC-14 Unplanned Anterior Vitrectomy (manual L1347-1378). Denominator "All cataract surgery
//! patients" (L1354) with cataract surgery = CPT 66982, 66983, 66984 (L1359-1361); no
//! exclusions, no age rule, no modifier rule, not sampled. Unit: each abstracted surgery (A14).

use super::outcome::Outcome;
use super::records::EncounterRecord;

pub const CATARACT_SURGERY_CODES: [&str; 3] = ["66982", "66983", "66984"];

pub fn has_cataract_surgery(r: &EncounterRecord) -> bool {
    r.procedures.iter().any(|p| CATARACT_SURGERY_CODES.contains(&p.code.as_str()))
}

pub fn classify(r: &EncounterRecord) -> Outcome {
    if !has_cataract_surgery(r) {
        return Outcome::NotInPopulation("no_cataract_surgery_66982_66983_66984");
    }
    // "An anterior vitrectomy that was not scheduled at the time of the patient's admission" (L1362-1363).
    if r.unplanned_anterior_vitrectomy == Some(true) {
        Outcome::Numerator
    } else {
        Outcome::DenominatorOnly
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::records::tests::one;

    #[test]
    fn cataract_surgeries_form_the_denominator_and_vitrectomies_the_numerator() {
        for code in CATARACT_SURGERY_CODES {
            assert_eq!(classify(&one(&[("procedures", code), ("unplanned_anterior_vitrectomy", "Y")])), Outcome::Numerator);
            assert_eq!(classify(&one(&[("procedures", code), ("unplanned_anterior_vitrectomy", "N")])), Outcome::DenominatorOnly);
        }
        // 66840 is an ASC-11 cataract code but not an ASC-14 one.
        assert!(!classify(&one(&[("procedures", "66840")])).in_population());
    }
}
