//! End to end: a hand-written records file (two facilities, defective rows) and a personnel
//! file through `ascqr::web::run`, the function `ascqr web` calls.

use ascqr::web::hqr::{validate_upload, UploadError};
use ascqr::web::outcome::Measure;
use ascqr::web::sampling::Frequency;
use ascqr::web::{run, run_sample, WebOptions};
use chrono::NaiveDate;
use std::path::Path;

const RECORDS: &str = "\
facility_npi,encounter_id,encounter_date,birth_date,procedures,diagnoses,burn,fall,wrong_site_side_patient_procedure_implant,hospital_transfer_admission,biopsy_or_polypectomy,followup_interval_text,medical_reason_documented,no_followup_reason,vf_pre_instrument,vf_pre_score,vf_post_instrument,vf_post_score,vf_post_date,asc11_gcode,anesthesia_type,anesthesia_start,anesthesia_induction,anesthesia_end,pacu_arrival,temperatures,intentional_hypothermia_documented,unplanned_anterior_vitrectomy
1234567893,A1,2023-02-01,1960-05-05,45378,Z12.11,Y,N,N,N,N,10 years,,,,,,,,,,,,,,,N,
1234567893,A2,2023-02-02,1960-05-05,45378-53,Z12.11,N,inside,N,N,N,,,,,,,,,,,,,,,,N,
1234567893,A3,2023-02-03,1960-05-05,45378,Z12.11,N,N,N,N,N,7-10 years,Y,,,,,,,,,,,,,,N,
1234567893,A4,2023-02-04,1960-05-05,45378,Z12.11,N,N,N,N,N,5 years,,,,,,,,,,,,,,,N,
1234567893,A5,2023-04-11,1960-05-05,66984,H25.11,N,N,N,N,,,,,VF-14,55,VF-14,80,2023-05-20,,,,,,,,N,Y
1234567893,A6,2023-04-12,1960-05-05,66983,H25.11,N,N,N,N,,,,,,,,,,G0914,,,,,,,N,N
1234567893,A7,2023-06-01,1960-05-05,27447,,N,N,N,Y,,,,,,,,,,,general,2023-06-01T10:00,,2023-06-01T11:00,2023-06-01T11:05,96.5F@2023-06-01T11:10;97F@2023-06-01T11:15,N,
1234567893,A8,2023-06-02,1960-05-05,27447,,N,N,N,N,,,,,,,,,,,general,2023-06-02T10:00,,2023-06-02T10:30,2023-06-02T10:35,97F@2023-06-02T10:40,N,
1234567893,A9,2023-06-03,1960-05-05,29881,,N,N,Y,N,,,,,,,,,,,spinal,2023-06-03T23:30,,2023-06-04T00:40,2023-06-04T00:45,96F@2023-06-04T00:50,N,
1245319599,B1,2023-07-01,1960-05-05,45378,Z12.11,N,outside,N,N,N,10 yrs,,,,,,,,,,,,,,,N,
1245319599,B2,2023-07-02,1960-05-05,64483,,N,N,N,N,,,,,,,,,,,local,,,,,,N,
1234567890,X1,2023-08-01,1960-05-05,64483,,N,N,N,N,,,,,,,,,,,,,,,,,N,
1234567893,X2,2022-12-15,1960-05-05,64483,,N,N,N,N,,,,,,,,,,,,,,,,,N,
1234567893,X3,2023-08-03,05/05/1960,64483,,N,N,N,N,,,,,,,,,,,,,,,,,N,
1245319599,X4,2023-08-04,1960-05-05,27447,,N,N,N,N,,,,,,,,,,,general,2023-08-04T10:00,,2023-08-04T11:30,2023-08-04T11:35,36F@2023-08-04T11:40,N,
1245319599,X5,2023-08-05
";

const PERSONNEL: &str = "\
facility_npi,week_start,eligible_personnel,contraindicated,completed_course
1234567893,2023-01-02,50,10,30
1245319599,2023-01-02,20,0,25
";

const HEADER: &str = "ASC_PROVIDER_NPI,ASC_PYR,ASC_1_NUMERATOR,ASC_1_DENOMINATOR,ASC_2_NUMERATOR,ASC_2_DENOMINATOR,ASC_3_NUMERATOR,ASC_3_DENOMINATOR,ASC_4_NUMERATOR,ASC_4_DENOMINATOR,ASC_9_POP_SIZE,ASC_9_SAMP_SIZE,ASC_9_SAMP_FREQ,ASC_9_NUMERATOR,ASC_9_DENOMINATOR,ASC_11_POP_SIZE,ASC_11_SAMP_SIZE,ASC_11_SAMP_FREQ,ASC_11_NUMERATOR,ASC_11_DENOMINATOR,ASC_13_POP_SIZE,ASC_13_SAMP_SIZE,ASC_13_SAMP_FREQ,ASC_13_NUMERATOR,ASC_13_DENOMINATOR,ASC_14_NUMERATOR,ASC_14_DENOMINATOR";

fn options() -> WebOptions {
    WebOptions { payment_year: 2025, upload_date: NaiveDate::from_ymd_opt(2024, 4, 15).unwrap(), frequency: Frequency::Year, seed: 11 }
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records.csv");
    let personnel = dir.path().join("personnel.csv");
    std::fs::write(&records, RECORDS).unwrap();
    std::fs::write(&personnel, PERSONNEL).unwrap();
    (dir, records, personnel)
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new().has_headers(false).from_path(path).unwrap();
    r.records().map(|x| x.unwrap().iter().map(str::to_string).collect()).collect()
}

#[test]
fn records_to_web_measures_hqr_file_and_rejects() {
    let (dir, records, personnel) = setup();
    let out = dir.path().join("out");
    let result = run(&records, Some(&personnel), &options(), &out).unwrap();
    assert_eq!(result.accepted_records, 11);
    assert_eq!(result.accepted_personnel_weeks, 1);

    // HQR file: conventional name, exact header, one row per facility with hand-counted values.
    assert_eq!(result.hqr_file.file_name().unwrap(), "ASC_WBM_PY2025_04_15_2024.csv");
    let text = std::fs::read_to_string(&result.hqr_file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], HEADER);
    assert_eq!(lines[1], "1234567893,2025,1,9,1,9,1,9,1,9,3,3,Y,1,2,2,2,Y,1,1,3,3,Y,1,2,1,2");
    assert_eq!(lines[2], "1245319599,2025,0,2,0,2,0,2,0,2,1,1,Y,1,1,0,0,Y,0,0,0,0,Y,0,0,0,0");
    assert_eq!(lines.len(), 3, "the invalid NPI 1234567890 gets no row");
    assert_eq!(validate_upload(&result.hqr_file).unwrap(), Vec::<UploadError>::new());

    // web_measures.csv: facility × measure with exclusions by reason, plus ASC-20.
    let rows = csv_rows(&result.web_measures);
    assert_eq!(rows[0], ["facility_npi", "measure", "period", "population", "sample_size", "frequency", "denominator", "exclusions", "numerator", "rate"]);
    let find = |npi: &str, m: &str| rows.iter().find(|r| r[0] == npi && r[1] == m).unwrap_or_else(|| panic!("{npi} {m}")).clone();
    assert_eq!(find("1234567893", "ASC-9"), ["1234567893", "ASC-9", "2023", "3", "3", "Y", "2", "medical_reason_with_interval_under_10_years=1", "1", "0.5000"]);
    assert_eq!(find("1234567893", "ASC-11"), ["1234567893", "ASC-11", "2023", "2", "2", "Y", "1", "g0914_survey_not_completed=1", "1", "1.0000"]);
    assert_eq!(find("1234567893", "ASC-13"), ["1234567893", "ASC-13", "2023", "3", "3", "Y", "2", "anesthesia_under_60_minutes=1", "1", "0.5000"]);
    assert_eq!(find("1234567893", "ASC-2"), ["1234567893", "ASC-2", "2023", "9", "", "", "9", "", "1", "0.1111"]);
    assert_eq!(find("1245319599", "ASC-2")[8], "0", "a fall outside the ASC is not counted");
    assert_eq!(find("1245319599", "ASC-14")[9], "", "no rate without a denominator");
    assert_eq!(find("1234567893", "ASC-20"), ["1234567893", "ASC-20", "2023-01-02", "50", "", "", "40", "contraindicated=10", "30", "0.7500"]);
    assert_eq!(rows.len(), 1 + 2 * 8 + 1);

    // rejects.csv: every defective row, with row and column; identifiers withheld.
    let rejects = csv_rows(&result.rejects);
    assert_eq!(rejects[0], ["file", "row", "column", "value", "reason"]);
    let got: Vec<(String, String, String)> = rejects[1..].iter().map(|r| (r[1].clone(), r[2].clone(), r[3].clone())).collect();
    let expected = [
        ("13", "facility_npi", "1234567890"),
        ("14", "encounter_date", "2022-12-15"),
        ("15", "birth_date", "(identifier withheld)"),
        ("16", "temperatures", "36F@2023-08-04T11:40"),
        ("17", "(row)", ""),
        ("3", "completed_course", "25"),
    ];
    let expected: Vec<(String, String, String)> = expected.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(got, expected);
    assert!(!std::fs::read_to_string(&result.rejects).unwrap().contains("05/05/1960"));
    assert!(rejects[1..6].iter().all(|r| r[0].ends_with("records.csv")));
    assert!(rejects[6][0].ends_with("personnel.csv"));
}

#[test]
fn the_sample_command_reproduces_the_run_sample() {
    let (dir, records, _) = setup();
    let out = dir.path().join("sample.csv");
    let s = run_sample(&records, "1234567893", Measure::Asc13, 2023, Frequency::Quarter, 11, &out).unwrap();
    assert_eq!((s.population_size, s.sample_size, s.frequency), (3, 3, Frequency::Quarter));
    assert_eq!(s.encounter_ids, ["A7", "A8", "A9"]);
    let rows = csv_rows(&out);
    assert_eq!(rows[0], ["facility_npi", "measure", "reporting_year", "population_size", "sample_size", "frequency", "encounter_id"]);
    assert_eq!(rows[1], ["1234567893", "ASC-13", "2023", "3", "3", "Q", "A7"]);
    assert!(run_sample(&records, "1234567893", Measure::Asc1, 2023, Frequency::Year, 1, &out).is_err(), "ASC-1 is not sampled");
}

#[test]
fn corrupted_upload_files_are_rejected_with_row_and_column() {
    let (dir, records, _) = setup();
    let out = dir.path().join("out");
    let result = run(&records, None, &options(), &out).unwrap();
    let good = std::fs::read_to_string(&result.hqr_file).unwrap();

    // Numerator above denominator (ASC-1 of row 3), a broken NPI (row 2), and PY ≠ file name.
    let corrupted = good
        .replace("1245319599,2025,0,2,", "1245319599,2025,3,2,")
        .replace("1234567893,2025,", "1234567894,2026,");
    let path = out.join("ASC_WBM_PY2025_04_16_2024.csv");
    std::fs::write(&path, corrupted).unwrap();
    let errors: Vec<(Option<u64>, Option<String>)> = validate_upload(&path).unwrap().into_iter().map(|e| (e.row, e.column)).collect();
    assert_eq!(
        errors,
        [
            (Some(2), Some("ASC_PROVIDER_NPI".to_string())),
            (Some(2), Some("ASC_PYR".to_string())),
            (Some(3), Some("ASC_1_NUMERATOR".to_string())),
        ]
    );

    // A wrong file name is an error even with perfect contents.
    let misnamed = out.join("asc_wbm.csv");
    std::fs::write(&misnamed, &good).unwrap();
    let errors = validate_upload(&misnamed).unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].row, errors[0].column.as_deref()), (None, None));

    // A duplicated facility row.
    let second = good.lines().nth(1).unwrap();
    let path = out.join("ASC_WBM_PY2025_04_17_2024.csv");
    std::fs::write(&path, format!("{good}{second}\n")).unwrap();
    let errors = validate_upload(&path).unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].row, errors[0].column.as_deref()), (Some(4), Some("ASC_PROVIDER_NPI")));
}

#[test]
fn a_run_with_no_valid_records_writes_no_invalid_hqr_file() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records.csv");
    std::fs::write(&records, RECORDS.lines().take(1).collect::<Vec<_>>().join("\n") + "\n").unwrap();
    let out = dir.path().join("out");
    let err = run(&records, None, &options(), &out).unwrap_err();
    assert!(err.to_string().contains("no facility rows"), "{err}");
    assert!(!out.join("ASC_WBM_PY2025_04_15_2024.csv").exists());
}

/// The synthetic ASCs' abstraction records (`ascqr synth` writes them to `web/`): every record's
/// classification by every measure agrees with the scenario the generator wrote it from, every
/// defective record is rejected for the defect it was given, and nothing else is rejected.
#[test]
fn synthetic_records_agree_with_the_generators_truth_for_every_record_and_measure() {
    use ascqr::synth::{abstraction::write_abstraction, Scale, SynthOptions, World};
    use std::collections::{BTreeMap, BTreeSet};
    let dir = tempfile::tempdir().unwrap();
    let options = SynthOptions::new(5, Scale::Small, "2022-2023", ascqr::claims::FileFormat::Parquet).unwrap();
    let world = World::build(&options).unwrap();
    let summary = write_abstraction(&world, dir.path()).unwrap();
    assert_eq!(summary.reporting_year, 2023);
    assert!(summary.records > 1000 && summary.defective_records > 0, "{summary:?}");

    let parsed = ascqr::web::records::read_records(&dir.path().join("web/records.csv"), Some(2023)).unwrap();
    let mut truth = csv::Reader::from_path(dir.path().join("truth/web_records.csv")).unwrap();
    let header = truth.headers().unwrap().clone();
    let truth: Vec<csv::StringRecord> = truth.records().map(|r| r.unwrap()).collect();
    assert_eq!(truth.len() as u64, summary.records);
    assert_eq!(parsed.accepted.len() + summary.defective_records as usize, truth.len(), "every row accepted or rejected for its defect");

    let rejected: BTreeMap<u64, BTreeSet<String>> = parsed.rejections.iter().fold(BTreeMap::new(), |mut m, r| {
        m.entry(r.row).or_default().insert(r.column.clone());
        m
    });
    let accepted: BTreeMap<u64, &ascqr::web::records::EncounterRecord> = parsed.accepted.iter().map(|r| (r.row, r)).collect();
    let mut seen_outcomes = BTreeSet::new();
    for t in &truth {
        let row: u64 = t[0].parse().unwrap();
        let defect = &t[3];
        if !defect.is_empty() {
            assert!(rejected.get(&row).is_some_and(|cols| cols.contains(defect)), "row {row} should be rejected for {defect}: {:?}", rejected.get(&row));
            assert!(!accepted.contains_key(&row));
            continue;
        }
        let record = accepted.get(&row).unwrap_or_else(|| panic!("row {row} ({}) rejected: {:?}", &t[2], rejected.get(&row)));
        for (i, measure) in Measure::ALL.iter().enumerate() {
            let got = match ascqr::web::classify(*measure, record, 2023) {
                ascqr::web::outcome::Outcome::NotInPopulation(_) => "not_in_population".to_string(),
                ascqr::web::outcome::Outcome::Excluded(r) => format!("excluded:{r}"),
                ascqr::web::outcome::Outcome::DenominatorOnly => "denominator".to_string(),
                ascqr::web::outcome::Outcome::Numerator => "numerator".to_string(),
            };
            assert_eq!(got, &t[4 + i], "row {row} ({}), {}: {}", &t[2], measure.label(), &header[4 + i]);
            seen_outcomes.insert((measure.label(), got));
        }
    }
    // The generator exercises every exclusion reason the measures have.
    for reason in [
        "excluded:medical_reason_with_interval_under_10_years",
        "excluded:no_followup_age_66_plus_or_life_expectancy",
        "excluded:g0914_survey_not_completed",
        "excluded:surveys_not_both_completed",
        "excluded:no_anesthesia_start_time",
        "excluded:anesthesia_under_60_minutes",
        "excluded:intentional_hypothermia",
    ] {
        assert!(seen_outcomes.iter().any(|(_, o)| o == reason), "no record exercised {reason}");
    }

    // And the whole `ascqr web` run accepts it and writes an upload file HQR would take.
    let out = dir.path().join("web_out");
    let result = run(&dir.path().join("web/records.csv"), Some(&dir.path().join("web/personnel.csv")), &options_for(2025), &out).unwrap();
    assert!(validate_upload(&result.hqr_file).unwrap().is_empty());
}

fn options_for(payment_year: i32) -> WebOptions {
    WebOptions { payment_year, ..options() }
}
