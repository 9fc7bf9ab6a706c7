//! Issue 9's check: on synthetic claims, the forecast for a facility from its own cases and the
//! saved national model agrees with that facility's result in the national run — the same point
//! estimate, and an interval that covers the run's estimate — both from the run's analysis file
//! (every facility) and from the facility's claims through `ascqr forecast`'s own path.

mod common;

use ascqr::claims::FileFormat;
use ascqr::dictionary::MeasureId;
use ascqr::forecast::facility::{self, ForecastRequest, WhatIf};
use ascqr::forecast::{forecast, patterns_of, ForecastOptions, ScoredCases};
use ascqr::hglm::{AnalysisData, DataSpec};
use ascqr::pipeline::{run, RunConfig};
use ascqr::saved_model::SavedModel;
use ascqr::synth::{generate, Scale, SynthOptions};
use indicatif::ProgressBar;
use polars::prelude::*;
use std::collections::HashMap;

/// The run's facility results: NPI → (cases, rate, interval low, interval high).
fn run_facilities(path: &std::path::Path) -> HashMap<String, (f64, f64, f64, f64)> {
    let df = ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap();
    let col = |n: &str| df.column(n).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().clone();
    let ids = df.column("facility_id").unwrap().cast(&DataType::String).unwrap();
    let ids = ids.str().unwrap();
    let (cases, rate, low, high) = (col("cases"), col("risk_standardized_rate"), col("interval_low"), col("interval_high"));
    (0..df.height())
        .map(|i| (ids.get(i).unwrap().to_string(), (cases.get(i).unwrap(), rate.get(i).unwrap(), low.get(i).unwrap_or(f64::NAN), high.get(i).unwrap_or(f64::NAN))))
        .collect()
}

#[test]
fn forecasts_from_a_facility_s_own_cases_agree_with_the_national_run() {
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("claims");
    // Only the measures' own claims: the forecast reads the cohort, and ordinary care would only
    // add generation time to this test (tests/background.rs covers it).
    let options = SynthOptions::new(4, Scale::Demo, "2022-2023", FileFormat::Parquet)
        .unwrap()
        .with_background(ascqr::synth::Background::None, ascqr::synth::BackgroundDiagnoses::Realistic);
    generate(&claims, &options, &ProgressBar::hidden()).unwrap();
    let dict = ascqr::dictionary::Dictionary::embedded().unwrap();
    let m = MeasureId::Asc18;
    let config = RunConfig { measures: Some(vec![m.as_str().into()]), bootstrap: Some(200), seed: Some(5), ..Default::default() };
    let out = dir.path().join("run");
    run(&claims, &config, dict, vec!["ascqr".into(), "run".into()], &out).unwrap();
    let model = SavedModel::load(&out.join("asc18/model")).unwrap();
    let spec = DataSpec::analysis_file(model.coefficient_names[1..].to_vec());
    let data = AnalysisData::read(&out.join("asc18/features/analysis.parquet"), &spec).unwrap();
    assert_eq!(data.names, model.coefficient_names);
    let results = run_facilities(&out.join("asc18/model/facilities.parquet"));
    let options = ForecastOptions { draws: 1000, seed: 9, grid_points: 201 };
    let mut without_parameter_uncertainty = model.clone();
    without_parameter_uncertainty.coefficient_covariance = None;

    let mut checked = 0;
    let (mut worst_estimate, mut worst_interval) = (0.0f64, 0.0f64);
    let mut largest: Option<(String, f64)> = None;
    for j in 0..data.groups.len() {
        let id = &data.groups[j];
        let (cases, rate, low, high) = results[id];
        if cases < model.min_cases as f64 {
            continue;
        }
        let patterns = patterns_of(&data, j);
        // At the national point estimates the forecast's estimate is the run's: the conditional
        // mode of the facility's intercept is RSPL's estimate of it.
        let exact = forecast(&without_parameter_uncertainty, &patterns, &ScoredCases::Observed, &options);
        assert!((exact.rate - rate).abs() <= 1e-6 * rate, "{id}: {} vs run {rate}", exact.rate);
        // With the national model's parameter uncertainty: the same estimate within a small
        // share of the bootstrap interval, and an interval that covers the run's estimate and
        // resembles the bootstrap's (whose 2.5th and 97.5th percentiles of 200 replicates are
        // themselves noisy: the largest difference seen was 0.23 of the width).
        let f = forecast(&model, &patterns, &ScoredCases::Observed, &options);
        let width = high - low;
        assert!((f.rate - rate).abs() < 0.05 * width, "{id}: forecast {} vs run {rate} (interval width {width})", f.rate);
        assert!(f.interval.0 < rate && rate < f.interval.1, "{id}: {rate} outside {:?}", f.interval);
        assert!((f.interval.0 - low).abs() < 0.35 * width && (f.interval.1 - high).abs() < 0.35 * width, "{id}: forecast interval {:?} vs bootstrap ({low}, {high})", f.interval);
        checked += 1;
        worst_estimate = worst_estimate.max((f.rate - rate).abs() / width);
        worst_interval = worst_interval.max((f.interval.0 - low).abs().max((f.interval.1 - high).abs()) / width);
        if largest.as_ref().is_none_or(|(_, c)| cases > *c) {
            largest = Some((id.clone(), cases));
        }
    }
    assert!(checked >= 10, "only {checked} facilities reach the minimum case count");
    eprintln!("{checked} facilities: largest |forecast − run| estimate {worst_estimate:.4} and interval end {worst_interval:.3} of the bootstrap interval's width");

    // forecast-check over the same run: every facility checked, the same agreement, and its
    // three files written.
    let check_options = ascqr::forecast::check::CheckOptions { months: 12, forecast: ForecastOptions { draws: 200, seed: 3, grid_points: 201 }, bins: 10 };
    let report = ascqr::forecast::check::check(&out, m, &check_options).unwrap();
    assert_eq!(report.facilities, checked);
    assert_eq!(report.run_estimate_covered, checked);
    assert!(report.largest_estimate_difference < 1e-6, "{}", report.largest_estimate_difference);
    for category in ["Better Than the National Rate", "No Different Than the National Rate", "Worse Than the National Rate"] {
        let rows: Vec<_> = report.calibration.iter().filter(|r| r.category == category).collect();
        assert_eq!(rows.iter().map(|r| r.forecasts).sum::<usize>(), checked, "{category}: every facility in one bin");
    }
    let check_dir = dir.path().join("check");
    ascqr::forecast::check::write(&check_dir, &report).unwrap();
    let csv = std::fs::read_to_string(check_dir.join("facilities.csv")).unwrap();
    assert_eq!(csv.lines().count(), checked + 1);
    assert!(check_dir.join("check.json").exists() && check_dir.join("calibration.md").exists());

    // The command's path: the facility's cohort and risk variables rebuilt from claims give the
    // same cases, visits and forecast as the run's analysis file.
    let (npi, cases) = largest.unwrap();
    let request = ForecastRequest {
        model: out.join("asc18/model"),
        claims: out.join("extract"),
        facility: Some(npi.clone()),
        period: None,
        through_year: None,
        what_if: WhatIf::default(),
        options: options.clone(),
        model_data: Some(out.join("asc18/features/analysis.parquet")),
    };
    let from_claims = facility::run(&request, dict).unwrap();
    assert_eq!(from_claims.len(), 1);
    let f = &from_claims[0].forecast;
    let j = data.groups.iter().position(|g| *g == npi).unwrap();
    let from_data = forecast(&model, &patterns_of(&data, j), &ScoredCases::Observed, &options);
    assert_eq!(f.observed_cases, cases);
    assert_eq!(f.observed_visits, from_data.observed_visits);
    assert!((f.rate - from_data.rate).abs() <= 1e-9 * f.rate, "{} vs {}", f.rate, from_data.rate);
    let written = facility::write(&dir.path().join("f"), &from_claims).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&written[0]).unwrap()).unwrap();
    for key in ["rate", "interval", "category_probabilities", "uncertainty_included", "uncertainty_not_included", "model_label"] {
        assert!(!json[key].is_null(), "forecast.json lacks {key}");
    }
    let total: f64 = json["category_probabilities"].as_object().unwrap().values().map(|v| v.as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-12);

    // A model that does not belong to the analysis file named with it is refused.
    let mut edited = model.clone();
    edited.coefficients[1] += 0.1;
    let edited_dir = dir.path().join("edited");
    edited.save(&edited_dir).unwrap();
    let refused = facility::run(&ForecastRequest { model: edited_dir, ..request.clone() }, dict).unwrap_err().to_string();
    assert!(refused.contains("was edited or was not fitted on this file"), "{refused}");

    // What-if: more visits than observed raise the forecast.
    let more = facility::run(&ForecastRequest { what_if: WhatIf { visits: Some(f.observed_visits + 10.0), ..Default::default() }, model_data: None, ..request }, dict).unwrap();
    assert!(more[0].forecast.rate > f.rate);
}
