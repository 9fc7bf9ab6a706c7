//! ASC-1 Patient Burn, ASC-2 Patient Fall, ASC-3 Wrong Site/Side/Patient/Procedure/Implant and
//! ASC-4 All-Cause Hospital Transfer/Admission. Denominator for all four: "All ASC admissions"
//! (manual L493, L621, L725, L817) — every accepted record, all payers, all ages, unsampled.
//! Unit: the admission; several events in one admission count once (ambiguity A12).

use super::outcome::Outcome;
use super::records::{EncounterRecord, FallLocation};

fn admission_with_event(event: bool) -> Outcome {
    if event {
        Outcome::Numerator
    } else {
        Outcome::DenominatorOnly
    }
}

/// ASC-1: "ASC admissions experiencing a burn prior to discharge" (manual L492).
pub fn asc1_burn(r: &EncounterRecord) -> Outcome {
    admission_with_event(r.burn)
}

/// ASC-2: a fall "within the confines of the ASC" (manual L620); a fall outside the ASC is a
/// numerator exclusion (L623), so the admission stays in the denominator only.
pub fn asc2_fall(r: &EncounterRecord) -> Outcome {
    admission_with_event(r.fall == FallLocation::Inside)
}

/// ASC-3: wrong site, side, patient, procedure or implant (manual L723-724).
pub fn asc3_wrong_site(r: &EncounterRecord) -> Outcome {
    admission_with_event(r.wrong_site_side_patient_procedure_implant)
}

/// ASC-4: transfer/admission directly to an acute care hospital incl. ED upon discharge
/// (manual L815-816, L830-831).
pub fn asc4_hospital_transfer(r: &EncounterRecord) -> Outcome {
    admission_with_event(r.hospital_transfer_admission)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::records::tests::one;

    #[test]
    fn every_admission_is_in_the_denominator_and_events_are_numerators() {
        let quiet = one(&[]);
        for f in [asc1_burn, asc2_fall, asc3_wrong_site, asc4_hospital_transfer] {
            assert_eq!(f(&quiet), Outcome::DenominatorOnly);
        }
        assert_eq!(asc1_burn(&one(&[("burn", "Y")])), Outcome::Numerator);
        assert_eq!(asc3_wrong_site(&one(&[("wrong_site_side_patient_procedure_implant", "Y")])), Outcome::Numerator);
        assert_eq!(asc4_hospital_transfer(&one(&[("hospital_transfer_admission", "Y")])), Outcome::Numerator);
    }

    #[test]
    fn a_fall_outside_the_asc_is_a_numerator_exclusion() {
        assert_eq!(asc2_fall(&one(&[("fall", "inside")])), Outcome::Numerator);
        assert_eq!(asc2_fall(&one(&[("fall", "outside")])), Outcome::DenominatorOnly);
    }
}
