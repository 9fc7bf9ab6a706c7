//! Checking forecasts against a national run (issue 9), on every facility of the run that reaches
//! the measure's minimum case count:
//! * **agreement** — the forecast from all of the facility's cases, next to the run's estimate,
//!   bootstrap interval and category;
//! * **calibration** — the forecast from the facility's first months only, projected to its case
//!   count for the whole period (what an ASC can do before its period ends), whose category
//!   probabilities are tabulated against the categories the run published.
//!
//! The run folder must be an `ascqr run` folder with bootstrap intervals; the saved model, the
//! analysis file and the cohort (for procedure dates) are read from it.

use super::facility::grouped_patterns;
use super::{calibration_table, forecast, CalibrationRow, ForecastOptions, Pattern, ScoredCases};
use crate::dictionary::MeasureId;
use crate::error::{AscqrError, PolarsContext, Result};
use crate::output::read_parquet;
use crate::saved_model::SavedModel;
use polars::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct CheckOptions {
    /// Months at the start of the period the early forecast sees.
    pub months: u32,
    pub forecast: ForecastOptions,
    /// Bins of the calibration table.
    pub bins: usize,
}

/// One facility: the run's result, the forecast from all cases, the early forecast.
#[derive(Debug, Clone, Serialize)]
pub struct FacilityCheck {
    pub facility_id: String,
    pub cases: f64,
    /// The run's estimate and interval on the published scale (ASC-19: the ratio), like the
    /// forecast's beside them.
    pub run_rate: f64,
    pub run_interval: (f64, f64),
    pub run_category: String,
    pub forecast_rate: f64,
    pub forecast_interval: (f64, f64),
    pub forecast_category: String,
    pub early_cases: f64,
    pub early_probabilities: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub measure: MeasureId,
    pub model_label: String,
    pub options: CheckOptions,
    pub facilities: usize,
    /// Largest |forecast − run estimate| over the run's interval width (published scale).
    pub largest_estimate_difference: f64,
    /// Facilities whose run estimate lies inside the forecast's interval.
    pub run_estimate_covered: usize,
    /// Facilities whose forecast from all cases names the run's category as the most likely.
    pub same_category: usize,
    pub calibration: Vec<CalibrationRow>,
    pub per_facility: Vec<FacilityCheck>,
}

/// One facility of the run: cases, estimate and interval (on the published scale: the rate, or
/// for a measure published as a ratio the ratio), category.
struct RunFacility {
    cases: f64,
    estimate: f64,
    interval: Option<(f64, f64)>,
    category: String,
}

fn run_results(path: &Path, ratio_scale: bool) -> Result<BTreeMap<String, RunFacility>> {
    let df = read_parquet(path)?;
    let ctx = || format!("reading {}", path.display());
    let float = |n: &str| -> Result<Float64Chunked> { Ok(df.column(n).and_then(|c| c.cast(&DataType::Float64)).ctx(ctx)?.f64().ctx(ctx)?.clone()) };
    let text = |n: &str| -> Result<StringChunked> { Ok(df.column(n).and_then(|c| c.cast(&DataType::String)).ctx(ctx)?.str().ctx(ctx)?.clone()) };
    let (ids, categories) = (text("facility_id")?, text("category")?);
    let estimate = float(if ratio_scale { "standardized_ratio" } else { "risk_standardized_rate" })?;
    let (cases, low, high) = (float("cases")?, float("interval_low")?, float("interval_high")?);
    let mut out = BTreeMap::new();
    for i in 0..df.height() {
        let (Some(id), Some(c), Some(e)) = (ids.get(i), cases.get(i), estimate.get(i)) else { continue };
        let interval = low.get(i).zip(high.get(i));
        out.insert(id.to_string(), RunFacility { cases: c, estimate: e, interval, category: categories.get(i).unwrap_or_default().to_string() });
    }
    Ok(out)
}

/// The first day of the measure's period, from the run's manifest.
fn period_start(run: &Path, measure: MeasureId) -> Result<chrono::NaiveDate> {
    let manifest = crate::pipeline::read_manifest(run)?;
    let path = run.join(crate::pipeline::MANIFEST);
    let first = manifest["plan"]["periods"][measure.as_str()][0].as_str().ok_or_else(|| AscqrError::Other(format!("{}: no period for {measure}", path.display())))?;
    chrono::NaiveDate::parse_from_str(first, "%Y-%m-%d").map_err(|_| AscqrError::Other(format!("{}: period start {first:?} is not a date", path.display())))
}

pub fn check(run: &Path, measure: MeasureId, options: &CheckOptions) -> Result<CheckReport> {
    let dir = run.join(measure.as_str());
    let model = SavedModel::load(&dir.join("model"))?;
    let ratio_scale = model.rate_unit == "ratio";
    let results = run_results(&dir.join("model/facilities.parquet"), ratio_scale)?;
    // Procedure dates from the cohort, to split each facility's cases `months` into the period.
    let analysis = read_parquet(&dir.join("features/analysis.parquet"))?;
    let cohort = read_parquet(&dir.join("cohort/cohort.parquet"))?;
    let ctx = || "joining procedure dates".to_string();
    let dated = analysis
        .lazy()
        .join(cohort.lazy().select([col("procedure_id"), col("procedure_date")]), [col("procedure_id")], [col("procedure_id")], JoinArgs::new(JoinType::Left))
        .collect()
        .ctx(ctx)?;
    let dates = dated.column("procedure_date").and_then(|c| c.cast(&DataType::Int32)).ctx(ctx)?;
    let dates = dates.i32().ctx(ctx)?;
    let cut = crate::claims::sink::date_to_days(period_start(run, measure)? + chrono::Months::new(options.months));
    let early: Vec<bool> = dates.iter().map(|d| d.is_some_and(|d| d < cut)).collect();
    let all = grouped_patterns(&dated, &model, None)?;
    let early = grouped_patterns(&dated, &model, Some(&early))?;

    // On the published scale: the rate, or the ratio (ASC-19).
    let published = |f: &super::Forecast| if ratio_scale { (f.ratio, f.ratio_interval) } else { (f.rate, f.interval) };
    let mut per_facility = Vec::new();
    for (j, (id, patterns)) in all.iter().enumerate() {
        let Some(r) = results.get(id) else { continue };
        if r.cases < model.min_cases as f64 {
            continue;
        }
        let Some(run_interval) = r.interval else {
            return Err(AscqrError::Other(format!("{}: facility {id} has no bootstrap interval; the check needs a run with --bootstrap", dir.display())));
        };
        // Each facility its own random streams, so Monte-Carlo errors do not line up across
        // facilities in the calibration totals.
        let facility_options = ForecastOptions { seed: options.forecast.seed.wrapping_add((j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)), ..options.forecast.clone() };
        let whole = forecast(&model, patterns, &ScoredCases::Observed, &facility_options);
        let seen: Vec<Pattern> = early.get(id).cloned().unwrap_or_default();
        let seen_cases: f64 = seen.iter().map(|p| p.cases).sum();
        let early_forecast = if seen_cases > 0.0 {
            let extra = super::facility::whole_cases(seen.clone(), r.cases - seen_cases);
            forecast(&model, &seen, &ScoredCases::ObservedPlus(extra), &facility_options)
        } else {
            // Nothing seen yet: the intercept's prior, and every case simulated.
            let extra = super::facility::whole_cases(patterns.clone(), r.cases);
            forecast(&model, &[], &ScoredCases::Instead(extra), &facility_options)
        };
        let (forecast_estimate, forecast_interval) = published(&whole);
        let mut early_probabilities = early_forecast.category_probabilities;
        // Facilities under the minimum are not checked, so "too small" never happens here.
        early_probabilities.remove(crate::standardize::TOO_SMALL);
        per_facility.push(FacilityCheck {
            facility_id: id.clone(),
            cases: r.cases,
            run_rate: r.estimate,
            run_interval,
            run_category: r.category.clone(),
            forecast_rate: forecast_estimate,
            forecast_interval,
            forecast_category: whole.most_likely_category.clone(),
            early_cases: seen_cases,
            early_probabilities,
        });
    }
    let largest = per_facility
        .iter()
        .map(|f| {
            let width = f.run_interval.1 - f.run_interval.0;
            let diff = (f.forecast_rate - f.run_rate).abs();
            if width > 0.0 { diff / width } else if diff == 0.0 { 0.0 } else { f64::INFINITY }
        })
        .fold(0.0, f64::max);
    let covered = per_facility.iter().filter(|f| f.forecast_interval.0 <= f.run_rate && f.run_rate <= f.forecast_interval.1).count();
    let same = per_facility.iter().filter(|f| f.forecast_category == f.run_category).count();
    let outcomes: Vec<(BTreeMap<String, f64>, String)> = per_facility.iter().map(|f| (f.early_probabilities.clone(), f.run_category.clone())).collect();
    Ok(CheckReport {
        measure,
        model_label: model.label.clone(),
        options: options.clone(),
        facilities: per_facility.len(),
        largest_estimate_difference: largest,
        run_estimate_covered: covered,
        same_category: same,
        calibration: calibration_table(&outcomes, options.bins),
        per_facility,
    })
}

impl CheckReport {
    /// The calibration table as Markdown.
    pub fn calibration_markdown(&self) -> String {
        let mut s = String::from("| category | forecast probability | facilities | mean forecast | share that happened |\n|---|---|---|---|---|\n");
        for r in &self.calibration {
            s.push_str(&format!("| {} | {:.2}–{:.2} | {} | {:.3} | {:.3} |\n", r.category, r.low, r.high, r.forecasts, r.mean_probability, r.observed_share));
        }
        // Totals: the sum of the forecast probabilities is the number of facilities the forecasts
        // expect in a category; calibrated forecasts expect about as many as happen.
        s.push_str("\n| category | facilities expected (sum of probabilities) | facilities in it |\n|---|---|---|\n");
        let mut totals: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
        for r in &self.calibration {
            let t = totals.entry(r.category.as_str()).or_default();
            t.0 += r.mean_probability * r.forecasts as f64;
            t.1 += (r.observed_share * r.forecasts as f64).round() as usize;
        }
        for (category, (expected, happened)) in totals {
            s.push_str(&format!("| {category} | {expected:.1} | {happened} |\n"));
        }
        s
    }
}

/// Writes `out/check.json` (the whole report), `out/facilities.csv` (one row per facility: the
/// run's and the forecast's estimate, interval and category) and `out/calibration.md`.
pub fn write(out: &Path, report: &CheckReport) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| AscqrError::io(out, e))?;
    let mut json = serde_json::to_vec_pretty(report).map_err(|e| AscqrError::Other(format!("internal: {e}")))?;
    json.push(b'\n');
    crate::output::write_atomic(&out.join("check.json"), &json)?;
    let internal = |e: csv::Error| AscqrError::Other(format!("rendering facilities.csv: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "facility_id", "cases", "run_rate", "run_low", "run_high", "run_category", "forecast_rate", "forecast_low", "forecast_high", "forecast_category", "early_cases",
    ])
    .map_err(internal)?;
    for f in &report.per_facility {
        w.write_record([
            f.facility_id.clone(),
            f.cases.to_string(),
            f.run_rate.to_string(),
            f.run_interval.0.to_string(),
            f.run_interval.1.to_string(),
            f.run_category.clone(),
            f.forecast_rate.to_string(),
            f.forecast_interval.0.to_string(),
            f.forecast_interval.1.to_string(),
            f.forecast_category.clone(),
            f.early_cases.to_string(),
        ])
        .map_err(internal)?;
    }
    let csv = w.into_inner().map_err(|e| AscqrError::Other(format!("rendering facilities.csv: {e}")))?;
    crate::output::write_atomic(&out.join("facilities.csv"), &csv)?;
    crate::output::write_atomic(&out.join("calibration.md"), report.calibration_markdown().as_bytes())
}
