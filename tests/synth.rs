//! The synthetic extract: deterministic, valid, and carrying a truth that matches its claims.

use ascqr::claims::{scan_table, validate, FileFormat, Layout, Table};
use ascqr::dictionary::{Dictionary, MeasureId};
use ascqr::synth::{generate, Scale, SynthOptions};
use indicatif::ProgressBar;
use polars::prelude::*;
use std::path::Path;

mod common;
use common::files;

fn synth(dir: &Path, seed: u64, years: &str, format: FileFormat) -> ascqr::synth::SynthSummary {
    let options = SynthOptions::new(seed, Scale::Small, years, format).unwrap();
    generate(dir, &options, &ProgressBar::hidden()).unwrap()
}

#[test]
fn the_same_seed_gives_byte_identical_files_and_another_seed_does_not() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    synth(a.path(), 7, "2022", FileFormat::Parquet);
    synth(b.path(), 7, "2022", FileFormat::Parquet);
    synth(c.path(), 8, "2022", FileFormat::Parquet);
    let (fa, fb, fc) = (files(a.path()), files(b.path()), files(c.path()));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (name, bytes) in &fa {
        assert!(bytes == &fb[name], "{name} differs between two runs with the same seed");
    }
    assert_ne!(fa["carrier.parquet"], fc["carrier.parquet"]);
    assert!(fa.contains_key("truth/procedures.parquet"));
    assert!(fa.contains_key("truth/model.json"));
    assert!(fa.contains_key("truth/facilities.parquet"));
    assert!(fa.contains_key("manifest.json"));
}

#[test]
fn a_small_extract_validates_with_zero_rejects_in_both_formats() {
    for format in [FileFormat::Parquet, FileFormat::Csv] {
        let dir = tempfile::tempdir().unwrap();
        let claims = dir.path().join("claims");
        let summary = synth(&claims, 1, "2021-2023", format);
        let report = validate(&claims, Layout::Canonical, &dir.path().join("rejects.csv"), &ProgressBar::hidden()).unwrap();
        assert_eq!(report.total_rejected(), 0, "{format:?}: {}", report.summary_table());
        for t in &report.tables {
            assert_eq!(t.rows_accepted, summary.rows[&t.table], "{format:?} {}", t.table);
        }
    }
}

fn read_truth(dir: &Path) -> DataFrame {
    let path = dir.join("truth/procedures.parquet");
    ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap()
}

#[test]
fn the_truth_has_the_pinned_layout_and_matches_the_claims() {
    let dir = tempfile::tempdir().unwrap();
    let summary = synth(dir.path(), 3, "2021-2023", FileFormat::Parquet);
    let ex = common::extract(dir.path());
    let truth = read_truth(dir.path());
    let names: Vec<String> = truth.get_column_names().iter().map(|s| s.to_string()).collect();
    assert_eq!(&names[..5], &["procedure_id", "measure", "in_cohort", "exclusion_reason", "unplanned_visit"]);
    assert_eq!(truth.column("in_cohort").unwrap().dtype(), &DataType::Boolean);
    assert_eq!(truth.column("unplanned_visit").unwrap().dtype(), &DataType::Boolean);

    // One column per risk variable, named exactly as in each measure's definitions, filled for
    // that measure's rows and empty for the others. A later procedure within a patient's index
    // window is never an index procedure and has neither variables nor an outcome.
    let dict = Dictionary::embedded().unwrap();
    let later = "within_7_days_of_an_earlier_procedure";
    for m in MeasureId::ALL {
        let all = truth.clone().lazy().filter(col("measure").eq(lit(m.as_str())));
        let later_rows = all.clone().filter(col("exclusion_reason").eq(lit(later))).collect().unwrap();
        let n_later = later_rows.height();
        assert!(n_later > 0, "{m}: no later procedures planted");
        assert_eq!(later_rows.column("unplanned_visit").unwrap().null_count(), n_later, "{m}: a later procedure has an outcome");
        let rows = all.filter(col("exclusion_reason").neq_missing(lit(later))).collect().unwrap();
        assert!(rows.height() > 0, "{m} has no procedures");
        if m == MeasureId::Asc12 {
            let repeats = rows.column("exclusion_reason").unwrap().str().unwrap().iter().filter(|r| *r == Some("repeat_colonoscopy")).count();
            assert!(repeats > 0, "ASC-12: no repeat colonoscopies planted");
        }
        for v in dict.measure(m).variable_names() {
            let c = rows.column(&v).unwrap_or_else(|_| panic!("truth lacks {m} variable {v}"));
            assert_eq!(c.null_count(), 0, "{m}.{v} has missing values");
        }
        // Every measure has in-cohort procedures and excluded ones with a reason.
        let excluded = rows.column("in_cohort").unwrap().bool().unwrap().iter().filter(|x| *x == Some(false)).count();
        let reasons = rows.column("exclusion_reason").unwrap().null_count();
        assert!(excluded > 0, "{m}: no exclusion cases planted");
        assert_eq!(rows.height() - reasons, excluded, "{m}: exclusion_reason must be set exactly when not in the cohort");
        assert!(later_rows.column("in_cohort").unwrap().bool().unwrap().iter().all(|x| x == Some(false)));
    }

    // Each procedure_id is an ASC facility claim: carrier, place of service 24, specialty 49.
    let facility_claims = scan_table(&ex, Table::Carrier)
        .unwrap()
        .filter(col("place_of_service").eq(lit("24")).and(col("provider_specialty").eq(lit("49"))))
        .select([col("claim_id")])
        .unique(None, UniqueKeepStrategy::First)
        .collect()
        .unwrap();
    assert_eq!(facility_claims.height(), truth.height());
    let joined = truth
        .clone()
        .lazy()
        .join(
            facility_claims.lazy(),
            [col("procedure_id")],
            [col("claim_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .collect()
        .unwrap();
    assert_eq!(joined.height(), truth.height());

    // The summary counts agree with the truth file.
    let total: u64 = summary.measures.values().map(|c| c.procedures).sum();
    assert_eq!(total as usize, truth.height());

    // model.json carries coefficients by variable name, intercept and tau for every measure.
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("truth/model.json")).unwrap()).unwrap();
    for m in MeasureId::ALL {
        let entry = &model["measures"][m.as_str()];
        assert!(entry["intercept"].is_f64(), "{m}");
        assert!(entry["tau"].as_f64().unwrap() > 0.0, "{m}");
        for v in dict.measure(m).variable_names() {
            assert!(entry["coefficients"][&v].is_f64(), "{m}: no coefficient for {v}");
        }
    }
}

#[test]
fn every_unplanned_visit_in_the_truth_has_a_hospital_claim_within_seven_days() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), 5, "2022", FileFormat::Parquet);
    let ex = common::extract(dir.path());
    let truth = read_truth(dir.path())
        .lazy()
        .filter(col("unplanned_visit"))
        .select([col("bene_id"), col("procedure_date"), col("visit_type"), col("visit_day")])
        .collect()
        .unwrap();
    assert!(truth.height() > 0, "no events at all");
    let ed = scan_table(&ex, Table::Outpatient)
        .unwrap()
        .filter(col("revenue_center").str().starts_with(lit("045")).or(col("revenue_center").eq(lit("0981"))))
        .select([col("bene_id"), col("claim_from_date")])
        .collect()
        .unwrap();
    let ed_visits = truth.clone().lazy().filter(col("visit_type").eq(lit("ed"))).collect().unwrap();
    let matched = ed_visits
        .lazy()
        .join(ed.lazy(), [col("bene_id")], [col("bene_id")], JoinArgs::new(JoinType::Inner))
        .filter(
            (col("claim_from_date").cast(DataType::Int32) - col("procedure_date").cast(DataType::Int32))
                .eq(col("visit_day").cast(DataType::Int32)),
        )
        .collect()
        .unwrap();
    let expected = truth.clone().lazy().filter(col("visit_type").eq(lit("ed"))).collect().unwrap().height();
    assert!(expected > 0);
    assert!(matched.height() >= expected, "{} of {expected} ED visits found in the claims", matched.height());
}
