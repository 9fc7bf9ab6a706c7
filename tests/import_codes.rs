//! `ascqr import-codes`: a code list read from an Excel workbook laid out like CMS's data
//! dictionaries (tests/data/workbooks, written by scripts/make_workbook_fixture.py) becomes a
//! definition version folder that `--dictionary` loads and the cohort uses.

mod common;

use ascqr::claims::FileFormat;
use ascqr::dictionary::workbook::{import_code_list, CodeList, WorkbookImportOptions};
use ascqr::dictionary::{Dictionary, MeasureId, Provenance};
use ascqr::synth::{generate, Scale, SynthOptions};
use indicatif::ProgressBar;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn workbook() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/workbooks/asc12_code_lists.xlsx")
}

fn options(out: &std::path::Path, sheet: &str, list: CodeList) -> WorkbookImportOptions {
    WorkbookImportOptions {
        workbook: workbook(),
        sheet: Some(sheet.into()),
        measure: MeasureId::Asc12,
        list,
        code_column: None,
        version: "cms-test".into(),
        out: out.to_path_buf(),
    }
}

#[test]
fn a_workbooks_cohort_codes_replace_ours_and_the_cohort_uses_them() {
    let dir = tempfile::tempdir().unwrap();
    let dict_dir = dir.path().join("dict");
    let r = import_code_list(&options(&dict_dir, "Cohort Codes", CodeList::Cohort)).unwrap();
    // Title rows skipped; the header is on row 4; one blank and one repeated row below it.
    assert_eq!((r.header_row, r.rows_read, r.blank_rows, r.repeated_rows, r.codes), (4, 7, 1, 1, 5));
    assert_eq!(r.codes_not_in_previous_list, vec!["45399".to_string()]);
    assert_eq!(r.without_work_rvu, vec!["45399".to_string()], "45399 is new and the sheet has no work RVU");
    assert!(r.previous_codes_not_in_workbook.contains(&"44388".to_string()));

    let dict = Dictionary::load(Some(&dict_dir)).unwrap();
    let def = dict.measure(MeasureId::Asc12);
    assert_eq!(def.version, "cms-test");
    let cohort: BTreeSet<&str> = def.cohort_codes.iter().filter(|c| c.is_cohort()).map(|c| c.hcpcs.as_str()).collect();
    assert_eq!(cohort, BTreeSet::from(["45378", "45380", "45385", "45399", "G0121"]));
    for c in def.cohort_codes.iter().filter(|c| c.is_cohort()) {
        assert_eq!(c.provenance, Provenance::Official);
        assert!(c.source.starts_with("asc12_code_lists.xlsx sheet Cohort Codes (sha256 "), "{}", c.source);
    }
    // Our work RVU is kept for a code we list; the label comes from the sheet.
    let diagnostic = def.cohort_codes.iter().find(|c| c.hcpcs == "45378").unwrap();
    let ours = Dictionary::embedded().unwrap().measure(MeasureId::Asc12).cohort_codes.iter().find(|c| c.hcpcs == "45378").unwrap().clone();
    assert_eq!((diagnostic.work_rvu_2025, diagnostic.label.as_str()), (ours.work_rvu_2025, "Diagnostic colonoscopy"));
    // The other list in the same file (concurrent high-risk codes) is kept, still reconstructed.
    let embedded = Dictionary::embedded().unwrap().measure(MeasureId::Asc12);
    let high_risk = |d: &ascqr::dictionary::MeasureDefinition| -> Vec<String> { d.cohort_codes.iter().filter(|c| c.is_concurrent_high_risk()).map(|c| c.hcpcs.clone()).collect() };
    assert_eq!(high_risk(def), high_risk(embedded));
    assert!(def.cohort_codes.iter().filter(|c| c.is_concurrent_high_risk()).all(|c| c.provenance == Provenance::Reconstructed));

    // The cohort built with it uses only the workbook's codes, and says so.
    let claims = dir.path().join("claims");
    generate(&claims, &SynthOptions::new(5, Scale::Small, "2022", FileFormat::Parquet).unwrap(), &ProgressBar::hidden()).unwrap();
    let result = ascqr::cohort::build(&common::extract(&claims), MeasureId::Asc12, None, &dict).unwrap();
    assert!(result.cohort.height() > 0);
    let primary: BTreeSet<String> = result.cohort.column("primary_hcpcs").unwrap().str().unwrap().iter().map(|v| v.unwrap().to_string()).collect();
    assert!(primary.iter().all(|c| cohort.contains(c.as_str())), "{primary:?}");
    assert_eq!(result.definition["definition_version"], "cms-test");
    assert_eq!(result.definition["files_from_user_dictionary"][0], "measures/asc12/cms-test/cohort_codes.csv");

    // Importing the other list into the same folder keeps the imported cohort codes.
    let r = import_code_list(&options(&dict_dir, "Exclusions", CodeList::Exclusion)).unwrap();
    assert_eq!(r.codes, 3);
    let dict = Dictionary::load(Some(&dict_dir)).unwrap();
    let def = dict.measure(MeasureId::Asc12);
    let excl: BTreeSet<&str> = def.exclusion_codes.iter().map(|c| c.icd10cm.as_str()).collect();
    assert_eq!(excl, BTreeSet::from(["K5000", "K5190", "K5720"]));
    assert_eq!(def.cohort_codes.iter().filter(|c| c.is_cohort()).count(), 5);
}

#[test]
fn a_bad_code_names_the_workbook_sheet_row_column_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let e = import_code_list(&options(dir.path(), "Bad", CodeList::Cohort)).unwrap_err().to_string();
    assert_eq!(e, format!("{} (sheet Bad): row 3, column `HCPCS`: value \"4537X!\" is not an HCPCS code", workbook().display()));
    assert!(!dir.path().join("measures").exists(), "nothing written");

    let e = import_code_list(&options(dir.path(), "Nope", CodeList::Cohort)).unwrap_err().to_string();
    assert!(e.contains("no sheet \"Nope\"; sheets: Cohort Codes, Exclusions, Bad"), "{e}");
    // Exclusion diagnoses are ASC-12's: importing them for ASC-17 would switch on a rule it lacks.
    let mut o = options(dir.path(), "Exclusions", CodeList::Exclusion);
    o.measure = MeasureId::Asc17;
    assert!(import_code_list(&o).unwrap_err().to_string().contains("ASC-12 only"));
    // A sheet without a code column.
    let mut o = options(dir.path(), "Cohort Codes", CodeList::Exclusion);
    o.code_column = Some("ICD-10 Diagnosis".into());
    let e = import_code_list(&o).unwrap_err().to_string();
    assert!(e.contains("(sheet Cohort Codes)") && e.contains("ICD-10 Diagnosis"), "{e}");
}
