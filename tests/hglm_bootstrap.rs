//! Standardized rates, the bootstrap intervals and categories, and the `fit` command's files.

use ascqr::hglm::{self, AnalysisData, BootstrapOptions, DataSpec, FitOptions, FitRequest, Method};
use ascqr::standardize::Compare;
use indicatif::ProgressBar;
use std::path::PathBuf;

fn data(name: &str) -> AnalysisData {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hglm").join(name).join("data.csv");
    AnalysisData::read(&path, &DataSpec { outcome: "y".into(), group: "facility".into(), covariates: None, cases: None }).unwrap()
}

fn request(method: Method, replicates: usize, seed: u64) -> FitRequest {
    FitRequest {
        data: DataSpec { outcome: "y".into(), group: "facility".into(), covariates: None, cases: None },
        fit: FitOptions { method, ..Default::default() },
        bootstrap: (replicates > 0).then_some(BootstrapOptions { replicates, seed }),
        min_cases: 25,
        compare: Compare::Rate,
    }
}

#[test]
fn ratios_and_rates_follow_the_definitions() {
    let d = data("common_small");
    let out = hglm::run(&d, &request(Method::Rspl, 0, 1), &ProgressBar::hidden()).unwrap();
    let national = d.events() / d.cases();
    assert!((out.summary.national_observed_rate - national).abs() < 1e-15);
    for f in &out.facilities {
        assert!((f.ratio - f.predicted / f.expected).abs() < 1e-12);
        assert!((f.rate - f.ratio * national).abs() < 1e-12);
        // A facility with a positive intercept estimate has more predicted than expected events.
        assert_eq!(f.random_intercept > 0.0, f.ratio > 1.0, "{}", f.facility_id);
        assert!(f.interval_low.is_none() && f.replicates.is_none());
    }
    // Facilities below the minimum case count are "too small" even without intervals.
    assert!(out.facilities.iter().filter(|f| f.cases < 25.0).all(|f| f.category.as_deref() == Some("Number of Cases Too Small")));
}

#[test]
fn the_bootstrap_is_seeded_thread_independent_and_brackets_the_estimates() {
    let d = data("facilities_without_events");
    let run = |threads: usize, seed: u64| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| hglm::run(&d, &request(Method::Rspl, 60, seed), &ProgressBar::hidden()).unwrap())
    };
    let a = run(1, 7);
    let b = run(2, 7);
    let c = run(2, 8);
    let bits = |o: &hglm::FitOutput| -> Vec<(u64, u64)> {
        o.facilities.iter().map(|f| (f.interval_low.unwrap().to_bits(), f.interval_high.unwrap().to_bits())).collect()
    };
    assert_eq!(bits(&a), bits(&b), "1 and 2 threads must give identical intervals");
    assert_ne!(bits(&a), bits(&c), "another seed gives other intervals");
    assert_eq!(a.summary.bootstrap_replicates_requested, Some(60));
    assert_eq!(a.summary.bootstrap_replicates_used.unwrap() + a.summary.bootstrap_replicates_failed.unwrap(), 60);
    let mut inside = 0;
    for f in &a.facilities {
        let (lo, hi) = (f.interval_low.unwrap(), f.interval_high.unwrap());
        assert!(lo <= hi);
        // Each facility is drawn in about 63% of replicates.
        let r = f.replicates.unwrap();
        assert!((20..=56).contains(&r), "{}: {r} replicates", f.facility_id);
        if lo <= f.rate && f.rate <= hi {
            inside += 1;
        }
        let cat = f.category.as_deref().unwrap();
        if f.cases >= 25.0 {
            let national = a.summary.national_observed_rate;
            let expected = if hi < national {
                "Better Than the National Rate"
            } else if lo > national {
                "Worse Than the National Rate"
            } else {
                "No Different Than the National Rate"
            };
            assert_eq!(cat, expected);
        } else {
            assert_eq!(cat, "Number of Cases Too Small");
        }
    }
    assert!(inside as f64 >= 0.9 * a.facilities.len() as f64, "only {inside} point estimates inside their interval");
}

#[test]
fn fit_writes_model_json_and_facilities_parquet() {
    let d = data("common_small");
    let out = hglm::run(&d, &request(Method::Laplace, 20, 3), &ProgressBar::hidden()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    hglm::write_output(dir.path(), &out).unwrap();
    let model: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("model.json")).unwrap()).unwrap();
    assert_eq!(model["method"], "laplace");
    assert_eq!(model["converged"], true);
    assert_eq!(model["coefficients"][0]["name"], "(Intercept)");
    assert!(model["coefficients"][1]["std_error"].as_f64().unwrap() > 0.0);
    assert!(model["random_intercept_sd"].as_f64().unwrap() > 0.0);
    assert_eq!(model["facilities"], 30);
    assert_eq!(model["bootstrap_replicates_requested"], 20);
    assert!(!model["fit_log"].as_array().unwrap().is_empty());
    use polars::prelude::*;
    let df = ParquetReader::new(std::fs::File::open(dir.path().join("facilities.parquet")).unwrap()).finish().unwrap();
    assert_eq!(df.height(), 30);
    for c in ["facility_id", "cases", "observed_events", "random_intercept", "random_intercept_se", "predicted", "expected",
        "standardized_ratio", "risk_standardized_rate", "interval_low", "interval_high", "category", "bootstrap_replicates"] {
        assert!(df.column(c).is_ok(), "facilities.parquet lacks {c}");
    }
}

#[test]
fn a_bad_outcome_value_names_file_row_column_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.csv");
    std::fs::write(&path, "facility,y,x\nA,0,1\nA,2,0\n").unwrap();
    let e = AnalysisData::read(&path, &DataSpec { outcome: "y".into(), group: "facility".into(), covariates: None, cases: None })
        .unwrap_err()
        .to_string();
    assert_eq!(e, format!("{}: row 2, column `y`: value \"2\" is not 0 or 1", path.display()));
    std::fs::write(&path, "facility,y,x\nA,0,1\nA,1,\n").unwrap();
    let e = AnalysisData::read(&path, &DataSpec { outcome: "y".into(), group: "facility".into(), covariates: None, cases: None })
        .unwrap_err()
        .to_string();
    assert_eq!(e, format!("{}: row 2, column `x`: value \"\" is not a finite number", path.display()));
}
