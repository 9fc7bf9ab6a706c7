//! The canonical claims model: five tables, each column with its type, meaning and the CMS
//! research-identifiable-file (RIF) column it comes from.
//!
//! The same facts are written for people in `data-dictionary/claims/*.md`; a test parses those
//! documents and checks they agree with these constants column by column, so neither can drift.
//!
//! Repeated columns are written once with a range, `dx_{1..25}` for `dx_1` … `dx_25`, and
//! [`TableSpec::columns`] expands them.

/// The storage type of a canonical column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Str,
    /// A calendar date (ISO `YYYY-MM-DD` in CSV, Parquet `DATE`).
    Date,
    Int,
    Float,
    Bool,
}

impl ColumnType {
    /// The word used for this type in the data-dictionary documents.
    pub fn doc_name(self) -> &'static str {
        match self {
            ColumnType::Str => "string",
            ColumnType::Date => "date",
            ColumnType::Int => "integer",
            ColumnType::Float => "float",
            ColumnType::Bool => "boolean",
        }
    }
}

/// The shape a coded column must have. A value of the wrong shape is quarantined, not fatal:
/// real extracts carry the odd malformed code and one bad line must not stop a national run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeShape {
    /// ICD-10-CM diagnosis, no dot: letter, digit, then 1–5 alphanumerics (`I5020`, `Z1211`).
    /// Checked as ICD-9 (`V`/`E`/digits, 3–5 chars) when the row's version column says `9`.
    Icd10Cm,
    /// ICD-10-PCS procedure: 7 characters from 0–9 and A–Z without I and O.
    Icd10Pcs,
    /// HCPCS/CPT: five characters, four digits and a digit or category letter, or a level II
    /// letter followed by four digits.
    Hcpcs,
    /// A two-character HCPCS modifier.
    Modifier,
    /// A four-digit UB-04 revenue center code (`0450`).
    RevenueCenter,
    /// A two-digit CMS place-of-service code (`24`).
    PlaceOfService,
    /// A six-character Medicare provider number (CCN) of an institutional provider.
    Ccn,
    /// A ten-digit National Provider Identifier.
    Npi,
    /// A two-character CMS provider specialty code (`49` = ASC).
    Specialty,
    /// A three-character type of bill: facility type, service classification, frequency.
    BillType,
    /// Sex: `0` unknown, `1` male, `2` female.
    Sex,
    /// Code-set version of a diagnosis or procedure code: `0` = ICD-10, `9` = ICD-9.
    IcdVersion,
}

/// One column, or a run of numbered columns when `name` holds a `{a..b}` range.
#[derive(Debug, Clone, Copy)]
pub struct ColumnDef {
    pub name: &'static str,
    pub dtype: ColumnType,
    /// Rows with no value here are quarantined ("required value missing").
    pub required: bool,
    pub shape: Option<CodeShape>,
    /// A count or amount that may not be negative (a negative value is a fatal error).
    pub non_negative: bool,
    pub rif: &'static str,
    pub meaning: &'static str,
}

impl ColumnDef {
    /// The type as the data-dictionary documents write it.
    pub fn doc_type(&self) -> String {
        if self.non_negative {
            format!("{} (non-negative)", self.dtype.doc_name())
        } else {
            self.dtype.doc_name().to_string()
        }
    }
}

/// One expanded column of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub dtype: ColumnType,
    pub required: bool,
    pub shape: Option<CodeShape>,
    pub non_negative: bool,
    pub rif: String,
}

impl Column {
    /// A column of a file outside the claims model (truth, analysis, results): a name and a type.
    pub fn plain(name: impl Into<String>, dtype: ColumnType) -> Column {
        Column { name: name.into(), dtype, required: false, shape: None, non_negative: false, rif: String::new() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Beneficiaries,
    Enrollment,
    Carrier,
    Outpatient,
    Inpatient,
}

impl Table {
    pub const ALL: [Table; 5] = [
        Table::Beneficiaries,
        Table::Enrollment,
        Table::Carrier,
        Table::Outpatient,
        Table::Inpatient,
    ];

    /// The table's name: its file stem in an extract and its document in `data-dictionary/claims/`.
    pub fn name(self) -> &'static str {
        match self {
            Table::Beneficiaries => "beneficiaries",
            Table::Enrollment => "enrollment",
            Table::Carrier => "carrier",
            Table::Outpatient => "outpatient",
            Table::Inpatient => "inpatient",
        }
    }

    pub fn spec(self) -> TableSpec {
        let defs: &'static [ColumnDef] = match self {
            Table::Beneficiaries => BENEFICIARIES,
            Table::Enrollment => ENROLLMENT,
            Table::Carrier => CARRIER,
            Table::Outpatient => OUTPATIENT,
            Table::Inpatient => INPATIENT,
        };
        TableSpec { table: self, defs }
    }

    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    pub table: Table,
    pub defs: &'static [ColumnDef],
}

impl TableSpec {
    /// Every column in order, numbered runs expanded.
    pub fn columns(&self) -> Vec<Column> {
        let mut out = Vec::new();
        for def in self.defs {
            for (name, rif) in expand_range(def.name, def.rif) {
                out.push(Column {
                    name,
                    dtype: def.dtype,
                    required: def.required,
                    shape: def.shape,
                    non_negative: def.non_negative,
                    rif,
                });
            }
        }
        out
    }

    pub fn column_names(&self) -> Vec<String> {
        self.columns().into_iter().map(|c| c.name).collect()
    }

    /// The ICD-10-CM diagnosis columns (principal, line and other diagnoses), in order.
    pub fn diagnosis_columns(&self) -> Vec<String> {
        self.columns().into_iter().filter(|c| c.shape == Some(CodeShape::Icd10Cm)).map(|c| c.name).collect()
    }
}

/// Expands `dx_{1..25}` (and the RIF name beside it, `ICD_DGNS_CD{1..25}`) into numbered pairs.
/// A name without a range is returned as it is.
pub fn expand_range(name: &str, rif: &str) -> Vec<(String, String)> {
    match parse_range(name) {
        None => vec![(name.to_string(), rif.to_string())],
        Some((prefix, lo, hi, suffix)) => (lo..=hi)
            .map(|i| {
                let n = format!("{prefix}{i}{suffix}");
                let r = match parse_range(rif) {
                    Some((rp, _, _, rs)) => format!("{rp}{i}{rs}"),
                    None => rif.to_string(),
                };
                (n, r)
            })
            .collect(),
    }
}

fn parse_range(s: &str) -> Option<(&str, u32, u32, &str)> {
    let open = s.find('{')?;
    let close = s[open..].find('}')? + open;
    let (lo, hi) = s[open + 1..close].split_once("..")?;
    Some((&s[..open], lo.parse().ok()?, hi.parse().ok()?, &s[close + 1..]))
}

use CodeShape as S;
use ColumnType as T;

const fn col(
    name: &'static str,
    dtype: ColumnType,
    required: bool,
    shape: Option<CodeShape>,
    rif: &'static str,
    meaning: &'static str,
) -> ColumnDef {
    ColumnDef { name, dtype, required, shape, non_negative: false, rif, meaning }
}

const fn count(name: &'static str, rif: &'static str, meaning: &'static str) -> ColumnDef {
    ColumnDef { name, dtype: T::Float, required: false, shape: None, non_negative: true, rif, meaning }
}

/// One row per beneficiary (MBSF base segment).
pub const BENEFICIARIES: &[ColumnDef] = &[
    col("bene_id", T::Str, true, None, "BENE_ID", "Beneficiary identifier, the key to every claim table"),
    col("birth_date", T::Date, true, None, "BENE_BIRTH_DT", "Date of birth"),
    col("sex", T::Str, false, Some(S::Sex), "BENE_SEX_IDENT_CD", "Sex: 0 unknown, 1 male, 2 female"),
    col("death_date", T::Date, false, None, "DEATH_DT", "Date of death, empty when alive at the end of the extract"),
];

/// One row per beneficiary, year and run of consecutive months with the same entitlement (MBSF
/// monthly indicators, run-length encoded: a beneficiary with a full year of fee-for-service
/// Part A and B is one row, not twelve).
pub const ENROLLMENT: &[ColumnDef] = &[
    col("bene_id", T::Str, true, None, "BENE_ID", "Beneficiary identifier"),
    col("year", T::Int, true, None, "RFRNC_YR", "Calendar year"),
    col("first_month", T::Int, true, None, "(month of MDCR_ENTLMT_BUYIN_{1..12}_IND)", "First month of the run, 1–12"),
    col("last_month", T::Int, true, None, "(month of MDCR_ENTLMT_BUYIN_{1..12}_IND)", "Last month of the run, 1–12, not before first_month"),
    col("part_a", T::Bool, true, None, "MDCR_ENTLMT_BUYIN_n_IND in 1,3,A,C", "Entitled to Part A in these months"),
    col("part_b", T::Bool, true, None, "MDCR_ENTLMT_BUYIN_n_IND in 2,3,B,C", "Entitled to Part B in these months"),
    col("medicare_advantage", T::Bool, true, None, "HMO_n_IND not in blank,0,4", "Enrolled in a Medicare Advantage / HMO plan in these months (breaks fee-for-service)"),
];

/// One row per carrier (Part B professional and ASC facility) claim line.
pub const CARRIER: &[ColumnDef] = &[
    col("claim_id", T::Str, true, None, "CLM_ID", "Claim identifier"),
    col("line_num", T::Int, true, None, "LINE_NUM", "Line number within the claim"),
    col("bene_id", T::Str, true, None, "BENE_ID", "Beneficiary identifier"),
    col("claim_from_date", T::Date, true, None, "CLM_FROM_DT", "First date of service on the claim"),
    col("claim_thru_date", T::Date, true, None, "CLM_THRU_DT", "Last date of service on the claim"),
    col("line_first_date", T::Date, true, None, "LINE_1ST_EXPNS_DT", "Line first service date (the procedure date for an ASC line)"),
    col("line_last_date", T::Date, false, None, "LINE_LAST_EXPNS_DT", "Line last service date"),
    col("hcpcs", T::Str, false, Some(S::Hcpcs), "HCPCS_CD", "HCPCS/CPT code of the line"),
    col("modifier_1", T::Str, false, Some(S::Modifier), "HCPCS_1ST_MDFR_CD", "First HCPCS modifier"),
    col("modifier_2", T::Str, false, Some(S::Modifier), "HCPCS_2ND_MDFR_CD", "Second HCPCS modifier"),
    col("modifier_3", T::Str, false, Some(S::Modifier), "HCPCS_3RD_MDFR_CD", "Third HCPCS modifier"),
    col("modifier_4", T::Str, false, Some(S::Modifier), "HCPCS_4TH_MDFR_CD", "Fourth HCPCS modifier"),
    col("place_of_service", T::Str, false, Some(S::PlaceOfService), "LINE_PLACE_OF_SRVC_CD", "Place of service; 24 = ambulatory surgical center"),
    col("billing_npi", T::Str, false, Some(S::Npi), "CARR_CLM_BLG_NPI_NUM", "Billing provider NPI (identifies the ASC)"),
    col("rendering_npi", T::Str, false, Some(S::Npi), "PRF_PHYSN_NPI", "Rendering (performing) provider NPI"),
    col("provider_specialty", T::Str, false, Some(S::Specialty), "PRVDR_SPCLTY", "Line provider specialty; 49 = ASC"),
    count("service_count", "LINE_SRVC_CNT", "Units of service on the line"),
    col("line_dx", T::Str, false, Some(S::Icd10Cm), "LINE_ICD_DGNS_CD", "Line diagnosis"),
    col("line_dx_version", T::Str, false, Some(S::IcdVersion), "LINE_ICD_DGNS_VRSN_CD", "Code set of line_dx: 0 ICD-10, 9 ICD-9"),
    col("principal_dx", T::Str, false, Some(S::Icd10Cm), "PRNCPAL_DGNS_CD", "Claim principal diagnosis"),
    col("dx_{1..12}", T::Str, false, Some(S::Icd10Cm), "ICD_DGNS_CD{1..12}", "Claim diagnoses"),
    col("dx_version", T::Str, false, Some(S::IcdVersion), "PRNCPAL_DGNS_VRSN_CD", "Code set of the claim diagnoses: 0 ICD-10, 9 ICD-9"),
];

/// One row per institutional outpatient claim revenue-center line.
pub const OUTPATIENT: &[ColumnDef] = &[
    col("claim_id", T::Str, true, None, "CLM_ID", "Claim identifier"),
    col("line_num", T::Int, true, None, "CLM_LINE_NUM", "Revenue-center line number"),
    col("bene_id", T::Str, true, None, "BENE_ID", "Beneficiary identifier"),
    col("provider_ccn", T::Str, true, Some(S::Ccn), "PRVDR_NUM", "Provider CCN of the hospital"),
    col("claim_from_date", T::Date, true, None, "CLM_FROM_DT", "First date of service on the claim"),
    col("claim_thru_date", T::Date, true, None, "CLM_THRU_DT", "Last date of service on the claim"),
    col("bill_type", T::Str, false, Some(S::BillType), "CLM_FAC_TYPE_CD + CLM_SRVC_CLSFCTN_TYPE_CD + CLM_FREQ_CD", "Type of bill (13x = hospital outpatient)"),
    col("revenue_center", T::Str, true, Some(S::RevenueCenter), "REV_CNTR", "Revenue center code (045x, 0981 ED; 0762 observation)"),
    col("revenue_center_date", T::Date, false, None, "REV_CNTR_DT", "Date of the revenue-center line"),
    col("hcpcs", T::Str, false, Some(S::Hcpcs), "HCPCS_CD", "HCPCS/CPT code of the line (G0378 = observation hours)"),
    col("modifier_1", T::Str, false, Some(S::Modifier), "HCPCS_1ST_MDFR_CD", "First HCPCS modifier"),
    col("modifier_2", T::Str, false, Some(S::Modifier), "HCPCS_2ND_MDFR_CD", "Second HCPCS modifier"),
    col("modifier_3", T::Str, false, Some(S::Modifier), "HCPCS_3RD_MDFR_CD", "Third HCPCS modifier"),
    col("modifier_4", T::Str, false, Some(S::Modifier), "HCPCS_4TH_MDFR_CD", "Fourth HCPCS modifier"),
    count("units", "REV_CNTR_UNIT_CNT", "Units of service on the line"),
    col("principal_dx", T::Str, false, Some(S::Icd10Cm), "PRNCPAL_DGNS_CD", "Claim principal diagnosis"),
    col("dx_{1..25}", T::Str, false, Some(S::Icd10Cm), "ICD_DGNS_CD{1..25}", "Claim diagnoses"),
    col("dx_version", T::Str, false, Some(S::IcdVersion), "PRNCPAL_DGNS_VRSN_CD", "Code set of the claim diagnoses: 0 ICD-10, 9 ICD-9"),
    col("proc_{1..25}", T::Str, false, Some(S::Icd10Pcs), "ICD_PRCDR_CD{1..25}", "Claim ICD procedure codes"),
];

/// One row per inpatient stay (claim); RIF revenue lines collapse to their claim.
pub const INPATIENT: &[ColumnDef] = &[
    col("claim_id", T::Str, true, None, "CLM_ID", "Claim identifier"),
    col("bene_id", T::Str, true, None, "BENE_ID", "Beneficiary identifier"),
    col("provider_ccn", T::Str, true, Some(S::Ccn), "PRVDR_NUM", "Provider CCN of the hospital"),
    col("admission_date", T::Date, true, None, "CLM_ADMSN_DT", "Admission date"),
    col("discharge_date", T::Date, false, None, "NCH_BENE_DSCHRG_DT", "Discharge date"),
    col("claim_from_date", T::Date, true, None, "CLM_FROM_DT", "First date of service on the claim"),
    col("claim_thru_date", T::Date, true, None, "CLM_THRU_DT", "Last date of service on the claim"),
    col("principal_dx", T::Str, true, Some(S::Icd10Cm), "PRNCPAL_DGNS_CD", "Principal diagnosis (drives the planned admission algorithm)"),
    col("dx_{1..25}", T::Str, false, Some(S::Icd10Cm), "ICD_DGNS_CD{1..25}", "Claim diagnoses"),
    col("dx_version", T::Str, false, Some(S::IcdVersion), "PRNCPAL_DGNS_VRSN_CD", "Code set of the diagnoses: 0 ICD-10, 9 ICD-9"),
    col("proc_{1..25}", T::Str, false, Some(S::Icd10Pcs), "ICD_PRCDR_CD{1..25}", "ICD-10-PCS procedures"),
    col("proc_version", T::Str, false, Some(S::IcdVersion), "ICD_PRCDR_VRSN_CD1", "Code set of the procedures: 0 ICD-10, 9 ICD-9"),
    col("admission_type", T::Str, false, None, "CLM_IP_ADMSN_TYPE_CD", "Admission type: 1 emergency, 2 urgent, 3 elective, …"),
    col("admission_source", T::Str, false, None, "CLM_SRC_IP_ADMSN_CD", "Source of admission"),
    col("discharge_status", T::Str, false, None, "PTNT_DSCHRG_STUS_CD", "Patient discharge status"),
    count("utilization_days", "CLM_UTLZTN_DAY_CNT", "Medicare utilization days of the stay"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_with_their_rif_names() {
        let cols = expand_range("dx_{1..3}", "ICD_DGNS_CD{1..3}");
        assert_eq!(
            cols,
            vec![
                ("dx_1".into(), "ICD_DGNS_CD1".into()),
                ("dx_2".into(), "ICD_DGNS_CD2".into()),
                ("dx_3".into(), "ICD_DGNS_CD3".into())
            ]
        );
        assert_eq!(expand_range("bene_id", "BENE_ID"), vec![("bene_id".into(), "BENE_ID".into())]);
    }

    /// The documents in `data-dictionary/claims/` are the people-facing copy of these constants;
    /// every row of their column table must match the code exactly, in order.
    #[test]
    fn data_dictionary_documents_match_the_schema_constants() {
        let docs = [
            (Table::Beneficiaries, include_str!("../../data-dictionary/claims/beneficiaries.md")),
            (Table::Enrollment, include_str!("../../data-dictionary/claims/enrollment.md")),
            (Table::Carrier, include_str!("../../data-dictionary/claims/carrier.md")),
            (Table::Outpatient, include_str!("../../data-dictionary/claims/outpatient.md")),
            (Table::Inpatient, include_str!("../../data-dictionary/claims/inpatient.md")),
        ];
        for (table, doc) in docs {
            let rows: Vec<Vec<String>> = doc
                .lines()
                .filter(|l| l.starts_with("| `"))
                .map(|l| {
                    l.trim_matches('|')
                        .split(" | ")
                        .map(|c| c.trim().trim_matches('`').to_string())
                        .collect()
                })
                .collect();
            let defs = table.spec().defs;
            assert_eq!(rows.len(), defs.len(), "{}: document and code list different numbers of columns", table.name());
            for (row, def) in rows.iter().zip(defs) {
                let expected = vec![
                    def.name.to_string(),
                    def.doc_type(),
                    if def.required { "yes" } else { "no" }.to_string(),
                    def.shape.map(crate::claims::shapes::shape_label).unwrap_or("").to_string(),
                    def.rif.to_string(),
                    def.meaning.to_string(),
                ];
                assert_eq!(row, &expected, "{}: column {} differs between document and code", table.name(), def.name);
            }
        }
    }

    #[test]
    fn column_names_are_unique_within_each_table() {
        for t in Table::ALL {
            let names = t.spec().column_names();
            let mut sorted = names.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), names.len(), "duplicate column in {}", t.name());
        }
        // 13 single columns, 4 modifiers, 25 diagnoses, 25 procedures.
        assert_eq!(Table::Outpatient.spec().columns().len(), 13 + 4 + 25 + 25);
    }
}
