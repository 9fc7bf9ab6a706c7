//! Shape checks for the coded columns. They test form only (length and character classes), not
//! membership in a code set: a well-formed code that no table knows is the business of the stage
//! that looks it up, and is reported there.

use super::schema::CodeShape;

fn is_upper_alnum(b: u8) -> bool {
    b.is_ascii_digit() || b.is_ascii_uppercase()
}

/// Does `value` have the form `shape` requires? `version` is the row's code-set version for
/// ICD columns (`9` switches the diagnosis check to ICD-9 form).
pub fn has_shape(shape: CodeShape, value: &str, version: Option<&str>) -> bool {
    let b = value.as_bytes();
    match shape {
        CodeShape::Icd10Cm => {
            if version == Some("9") {
                return is_icd9_dx(b);
            }
            (3..=7).contains(&b.len())
                && b[0].is_ascii_uppercase()
                && b[1].is_ascii_digit()
                && b[2..].iter().all(|&c| is_upper_alnum(c))
        }
        CodeShape::Icd10Pcs => {
            if version == Some("9") {
                return (3..=4).contains(&b.len()) && b.iter().all(u8::is_ascii_digit);
            }
            b.len() == 7 && b.iter().all(|&c| is_upper_alnum(c) && c != b'I' && c != b'O')
        }
        CodeShape::Hcpcs => {
            b.len() == 5
                && ((b[..4].iter().all(u8::is_ascii_digit) && is_upper_alnum(b[4]))
                    || (b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit)))
        }
        CodeShape::Modifier | CodeShape::Specialty => {
            b.len() == 2 && b.iter().all(|&c| is_upper_alnum(c))
        }
        CodeShape::RevenueCenter => b.len() == 4 && b.iter().all(u8::is_ascii_digit),
        CodeShape::PlaceOfService => b.len() == 2 && b.iter().all(u8::is_ascii_digit),
        CodeShape::Ccn => b.len() == 6 && b.iter().all(|&c| is_upper_alnum(c)),
        CodeShape::Npi => b.len() == 10 && b.iter().all(u8::is_ascii_digit),
        CodeShape::BillType => {
            b.len() == 3 && b[..2].iter().all(u8::is_ascii_digit) && is_upper_alnum(b[2])
        }
        CodeShape::Sex => matches!(value, "0" | "1" | "2"),
        CodeShape::IcdVersion => matches!(value, "0" | "9"),
    }
}

fn is_icd9_dx(b: &[u8]) -> bool {
    match b.first() {
        Some(b'V') => (3..=5).contains(&b.len()) && b[1..].iter().all(u8::is_ascii_digit),
        Some(b'E') => (4..=5).contains(&b.len()) && b[1..].iter().all(u8::is_ascii_digit),
        Some(_) => (3..=5).contains(&b.len()) && b.iter().all(u8::is_ascii_digit),
        None => false,
    }
}

/// How a malformed value of this shape is described in a quarantine reason.
pub fn shape_label(shape: CodeShape) -> &'static str {
    match shape {
        CodeShape::Icd10Cm => "ICD-10-CM code",
        CodeShape::Icd10Pcs => "ICD-10-PCS code",
        CodeShape::Hcpcs => "HCPCS code",
        CodeShape::Modifier => "HCPCS modifier",
        CodeShape::RevenueCenter => "revenue center code",
        CodeShape::PlaceOfService => "place of service code",
        CodeShape::Ccn => "provider CCN",
        CodeShape::Npi => "NPI",
        CodeShape::Specialty => "provider specialty code",
        CodeShape::BillType => "type of bill",
        CodeShape::Sex => "sex code",
        CodeShape::IcdVersion => "ICD version code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CodeShape::*;

    #[test]
    fn icd10cm_accepts_real_codes_and_rejects_dotted_or_short_ones() {
        for ok in ["I5020", "Z1211", "K635", "U071", "S72001A", "E66"] {
            assert!(has_shape(Icd10Cm, ok, Some("0")), "{ok}");
        }
        for bad in ["I50.20", "i5020", "50I20", "Z1", "Z12111111", ""] {
            assert!(!has_shape(Icd10Cm, bad, None), "{bad}");
        }
        assert!(has_shape(Icd10Cm, "4280", Some("9")));
        assert!(has_shape(Icd10Cm, "V1272", Some("9")));
        assert!(!has_shape(Icd10Cm, "I5020", Some("9")));
    }

    #[test]
    fn pcs_hcpcs_and_the_short_codes() {
        assert!(has_shape(Icd10Pcs, "0TY00Z0", None));
        assert!(!has_shape(Icd10Pcs, "0TY00ZO", None), "letter O is not used in PCS");
        assert!(!has_shape(Icd10Pcs, "0TY00Z", None));
        for ok in ["45378", "G0105", "0016T", "3008F"] {
            assert!(has_shape(Hcpcs, ok, None), "{ok}");
        }
        for bad in ["4537", "453788", "GG105", "g0105"] {
            assert!(!has_shape(Hcpcs, bad, None), "{bad}");
        }
        assert!(has_shape(RevenueCenter, "0450", None));
        assert!(!has_shape(RevenueCenter, "450", None));
        assert!(has_shape(PlaceOfService, "24", None));
        assert!(!has_shape(PlaceOfService, "2A", None));
        assert!(has_shape(Ccn, "220171", None));
        assert!(!has_shape(Ccn, "22017", None));
        assert!(has_shape(Npi, "1003015843", None));
        assert!(has_shape(BillType, "131", None));
        assert!(has_shape(Modifier, "PT", None));
    }
}
