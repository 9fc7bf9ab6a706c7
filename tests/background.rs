//! Ordinary care (`ascqr synth --background`): the office visits, labs, imaging, therapy, DME,
//! hospital outpatient services and unrelated stays that fill a real extract. With neutral
//! diagnoses it must change no measure result; with realistic diagnoses the history window finds
//! its chronic conditions, and the truth (evaluated from the claims written) still agrees with
//! the pipeline variable by variable (`tests/risk.rs` covers the dense extract too).

mod common;

use ascqr::claims::FileFormat;
use ascqr::pipeline::{run, RunConfig};
use ascqr::synth::{generate, Background, BackgroundDiagnoses, Scale, SynthOptions};
use indicatif::ProgressBar;

fn options(background: Background, diagnoses: BackgroundDiagnoses) -> SynthOptions {
    SynthOptions::new(2, Scale::Small, "2022-2023", FileFormat::Parquet).unwrap().with_background(background, diagnoses)
}

fn rows(summary: &ascqr::synth::SynthSummary, table: &str) -> u64 {
    summary.rows[table]
}

#[test]
fn neutral_ordinary_care_changes_no_measure_result() {
    let dir = tempfile::tempdir().unwrap();
    let sparse = dir.path().join("sparse");
    let dense = dir.path().join("dense");
    let a = generate(&sparse, &options(Background::None, BackgroundDiagnoses::Neutral), &ProgressBar::hidden()).unwrap();
    let b = generate(&dense, &options(Background::REAL, BackgroundDiagnoses::Neutral), &ProgressBar::hidden()).unwrap();

    // Real density: many times the measure's own claims (about 25 carrier and 17 outpatient
    // lines per beneficiary-year over three calendar years against about 5 and 2 in all).
    let beneficiaries = rows(&a, "beneficiaries") as f64;
    assert_eq!(rows(&a, "beneficiaries"), rows(&b, "beneficiaries"));
    assert_eq!(rows(&a, "enrollment"), rows(&b, "enrollment"));
    let carrier_per_bene = rows(&b, "carrier") as f64 / beneficiaries;
    let outpatient_per_bene = rows(&b, "outpatient") as f64 / beneficiaries;
    assert!(rows(&b, "carrier") > 8 * rows(&a, "carrier"), "carrier {} vs {}", rows(&b, "carrier"), rows(&a, "carrier"));
    assert!((40.0..120.0).contains(&carrier_per_bene), "{carrier_per_bene} carrier lines per beneficiary");
    assert!((25.0..80.0).contains(&outpatient_per_bene), "{outpatient_per_bene} outpatient lines per beneficiary");
    assert!(rows(&b, "inpatient") > rows(&a, "inpatient"));
    assert_eq!(a.measures.iter().map(|(m, c)| (m.clone(), c.in_cohort, c.unplanned_visits_in_cohort)).collect::<Vec<_>>(),
        b.measures.iter().map(|(m, c)| (m.clone(), c.in_cohort, c.unplanned_visits_in_cohort)).collect::<Vec<_>>());

    // The truth is the same, byte for byte: same draws, same variables, same outcomes.
    let truth = |d: &std::path::Path| std::fs::read(d.join("truth/procedures.parquet")).unwrap();
    assert!(truth(&sparse) == truth(&dense), "the truth changed with neutral ordinary care");

    // Every stage agrees: cohorts, exclusions, attrition, analysis files …
    let (ra, rb) = (common::results(&common::extract(&sparse)), common::results(&common::extract(&dense)));
    common::assert_same_results("neutral ordinary care", &ra, &rb);

    // … and the published results of a whole run.
    let dict = ascqr::dictionary::Dictionary::embedded().unwrap();
    let config = RunConfig { bootstrap: Some(5), seed: Some(3), ..Default::default() };
    let (run_a, run_b) = (dir.path().join("run-sparse"), dir.path().join("run-dense"));
    run(&sparse, &config, dict, vec!["ascqr".into(), "run".into()], &run_a).unwrap();
    run(&dense, &config, dict, vec!["ascqr".into(), "run".into()], &run_b).unwrap();
    let (fa, fb) = (common::files(&run_a), common::files(&run_b));
    let mut compared = 0;
    for (name, bytes) in &fa {
        let published = name == "facility_report.csv" || name == "national.csv" || name.ends_with("coefficients.csv") || name.ends_with("facilities.parquet");
        if published {
            assert!(fb.get(name) == Some(bytes), "{name} differs with neutral ordinary care");
            compared += 1;
        }
    }
    assert!(compared >= 6, "only {compared} files compared");
}

#[test]
fn realistic_ordinary_care_feeds_the_history_window() {
    // The chronic conditions of the ordinary care reach the history window: condition-category
    // variables are on far more often than with the measure's own claims alone. (Not procedure by
    // procedure: a changed outcome shifts the draws of the procedures generated after it.)
    let dir = tempfile::tempdir().unwrap();
    let sparse = dir.path().join("sparse");
    let dense = dir.path().join("dense");
    generate(&sparse, &options(Background::None, BackgroundDiagnoses::Realistic), &ProgressBar::hidden()).unwrap();
    generate(&dense, &options(Background::REAL, BackgroundDiagnoses::Realistic), &ProgressBar::hidden()).unwrap();
    let dict = ascqr::dictionary::Dictionary::embedded().unwrap();
    use polars::prelude::SerReader;
    let conditions_on = |d: &std::path::Path| -> usize {
        let truth = polars::prelude::ParquetReader::new(std::fs::File::open(d.join("truth/procedures.parquet")).unwrap()).finish().unwrap();
        let mut on = 0;
        for def in dict.measures.values() {
            for v in &def.risk_variables {
                if matches!(v.kind, ascqr::dictionary::VariableKind::ConditionCategories(_)) {
                    on += truth.column(&v.variable).unwrap().f64().unwrap().iter().filter(|x| x.unwrap_or(0.0) > 0.0).count();
                }
            }
        }
        on
    };
    let (a, b) = (conditions_on(&sparse), conditions_on(&dense));
    assert!(b as f64 > 1.1 * a as f64, "condition variables on: {b} with ordinary care, {a} without");
}

#[test]
fn the_background_level_is_validated_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ascqr"))
        .args(["synth", "--out", dir.path().join("x").to_str().unwrap(), "--background", "lots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("--background") && e.contains("none, real or Kx"), "{e}");

    let claims = dir.path().join("half");
    generate(&claims, &options(Background::Times(0.5), BackgroundDiagnoses::Realistic), &ProgressBar::hidden()).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(claims.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["options"]["background"], "0.5x");
    assert_eq!(manifest["options"]["background_diagnoses"], "realistic");
}
