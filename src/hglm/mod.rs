//! The two-level hierarchical logistic model: model spec and data ([`data`]), the objectives
//! and optimizers ([`fit`]), the bootstrap ([`bootstrap`]), and the serialisable fit summary
//! written by `ascqr fit` (`model.json`, `facilities.parquet`).

pub mod bootstrap;
pub mod data;
pub mod fit;
pub mod linalg;
pub mod simulate;

use crate::claims::schema::{Column as ColumnSpec, ColumnType};
use crate::claims::sink::{Cell, FileFormat, TableSink};
use crate::error::{AscqrError, Result};
use crate::standardize::{self, Compare, FacilityResult};
pub use bootstrap::BootstrapOptions;
pub use data::{AnalysisData, DataSpec};
pub use fit::{Fit, FitOptions, Method};
use serde::Serialize;
use std::path::Path;

/// Everything `ascqr fit` was asked to do.
#[derive(Debug, Clone, Serialize)]
pub struct FitRequest {
    pub data: DataSpec,
    pub fit: FitOptions,
    pub bootstrap: Option<BootstrapOptions>,
    pub min_cases: u32,
    pub compare: Compare,
}

#[derive(Debug, Clone, Serialize)]
pub struct Coefficient {
    pub name: String,
    pub estimate: f64,
    pub std_error: Option<f64>,
    /// exp(estimate), and the Wald 95% interval exp(estimate ± 1.96 · se).
    pub odds_ratio: f64,
    pub odds_ratio_low: Option<f64>,
    pub odds_ratio_high: Option<f64>,
}

impl Coefficient {
    pub fn new(name: String, estimate: f64, std_error: Option<f64>) -> Self {
        const Z975: f64 = 1.959_963_984_540_054;
        Coefficient {
            odds_ratio: estimate.exp(),
            odds_ratio_low: std_error.map(|se| (estimate - Z975 * se).exp()),
            odds_ratio_high: std_error.map(|se| (estimate + Z975 * se).exp()),
            name,
            estimate,
            std_error,
        }
    }
}

/// The c-statistic (area under the ROC curve) of `scores`, one per pattern, against the
/// patterns' events and non-events; tied scores count one half. Patterns are weighted by their
/// counts, so the value is the one a row-per-procedure computation gives.
pub fn c_statistic(data: &AnalysisData, scores: &[f64]) -> Option<f64> {
    let mut order: Vec<usize> = (0..data.patterns()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (events, non_events) = (data.events(), data.cases() - data.events());
    if events <= 0.0 || non_events <= 0.0 {
        return None;
    }
    // Sweep groups of tied scores from the lowest: each event outranks the non-events below it.
    let mut concordant = 0.0;
    let mut non_events_below = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut k = i;
        let (mut e, mut ne) = (0.0, 0.0);
        while k < order.len() && scores[order[k]] == scores[order[i]] {
            e += data.y[order[k]];
            ne += data.n[order[k]] - data.y[order[k]];
            k += 1;
        }
        concordant += e * (non_events_below + 0.5 * ne);
        non_events_below += ne;
        i = k;
    }
    Some(concordant / (events * non_events))
}

/// The serialisable summary written as `model.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSummary {
    #[serde(flatten)]
    pub status: fit::FitStatus,
    pub coefficients: Vec<Coefficient>,
    pub random_intercept_sd: f64,
    pub cases: f64,
    pub events: f64,
    pub facilities: usize,
    pub patterns: usize,
    pub input_rows: u64,
    pub national_observed_rate: f64,
    /// Discrimination of the fixed effects alone (patient risk), and with each facility's
    /// estimated intercept added.
    pub c_statistic_fixed_effects: Option<f64>,
    pub c_statistic_with_facility: Option<f64>,
    pub bootstrap_replicates_requested: Option<usize>,
    pub bootstrap_replicates_used: Option<usize>,
    pub bootstrap_replicates_failed: Option<usize>,
    pub options: FitRequest,
    pub data_file: String,
    pub ascqr_version: String,
    pub fit_log: Vec<String>,
}

pub struct FitOutput {
    pub summary: ModelSummary,
    pub facilities: Vec<FacilityResult>,
    /// Covariance of the fixed effects (p × p row-major), when the fit provided it.
    pub beta_cov: Option<Vec<f64>>,
}

fn opt(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Fits, standardizes and (optionally) bootstraps; pure computation, no files.
pub fn run(data: &AnalysisData, request: &FitRequest, progress: &indicatif::ProgressBar) -> Result<FitOutput> {
    let full = fit::fit(data, None, &request.fit, None);
    let mut facilities = standardize::standardize(data, &full.beta, &full.u, &full.u_se);
    let national = data.observed_rate();
    let mut boot_counts = (None, None, None);
    let mut status = full.status.clone();
    let warnings = &mut status.warnings;
    for name in &data.dropped_constant {
        warnings.push(format!("covariate `{name}` has one value in the whole file: not estimable, left out of the model"));
    }
    if let Some(b) = &request.bootstrap {
        if b.replicates == 0 {
            return Err(AscqrError::InvalidOption("--bootstrap must be at least 1".into()));
        }
        let result = bootstrap::bootstrap(data, &full, &request.fit, b, progress);
        if result.failed > 0 {
            warnings.push(format!("{} of {} bootstrap replicates did not converge and were skipped", result.failed, result.requested));
        }
        boot_counts = (Some(result.requested), Some(result.used), Some(result.failed));
        for (j, f) in facilities.iter_mut().enumerate() {
            let mut vals: Vec<f64> = result.values[j]
                .iter()
                .map(|(ratio, rate)| if request.compare == Compare::Ratio { *ratio } else { *rate })
                // A replicate whose facility value is not finite (a diverging fit) has no place
                // in a percentile; it is not counted in `replicates` either.
                .filter(|v| v.is_finite())
                .collect();
            vals.sort_by(|a, b| a.total_cmp(b));
            f.replicates = Some(vals.len() as u32);
            if !vals.is_empty() {
                let lo = standardize::percentile_sas5(&vals, 2.5);
                let hi = standardize::percentile_sas5(&vals, 97.5);
                f.interval_low = Some(lo);
                f.interval_high = Some(hi);
                let benchmark = if request.compare == Compare::Ratio { 1.0 } else { national };
                f.category = Some(standardize::category((lo, hi), benchmark, request.compare).to_string());
            }
        }
    }
    for f in facilities.iter_mut() {
        if f.cases < request.min_cases as f64 {
            f.category = Some(standardize::TOO_SMALL.to_string());
        }
    }
    let coefficients = data
        .names
        .iter()
        .enumerate()
        .map(|(k, name)| Coefficient::new(name.clone(), full.beta[k], opt(full.beta_se[k])))
        .collect();
    let fixed: Vec<f64> = (0..data.patterns()).map(|i| data.eta(i, &full.beta)).collect();
    let with_facility: Vec<f64> = fixed.iter().enumerate().map(|(i, eta)| eta + full.u[data.group[i] as usize]).collect();
    let summary = ModelSummary {
        status,
        coefficients,
        random_intercept_sd: full.sigma,
        cases: data.cases(),
        events: data.events(),
        facilities: data.groups.len(),
        patterns: data.patterns(),
        input_rows: data.input_rows,
        national_observed_rate: national,
        c_statistic_fixed_effects: c_statistic(data, &fixed),
        c_statistic_with_facility: c_statistic(data, &with_facility),
        bootstrap_replicates_requested: boot_counts.0,
        bootstrap_replicates_used: boot_counts.1,
        bootstrap_replicates_failed: boot_counts.2,
        options: request.clone(),
        data_file: data.source.display().to_string(),
        ascqr_version: env!("CARGO_PKG_VERSION").to_string(),
        fit_log: full.log.clone(),
    };
    Ok(FitOutput { summary, facilities, beta_cov: full.beta_cov.clone() })
}

/// `coefficients.csv`: one row per fixed effect with its odds ratio and 95% interval.
pub fn coefficients_csv(coefficients: &[Coefficient]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| AscqrError::Other(format!("rendering coefficients: {e}"));
    w.write_record(["variable", "estimate", "std_error", "odds_ratio", "odds_ratio_low_95", "odds_ratio_high_95"]).map_err(err)?;
    let num = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
    for c in coefficients {
        w.write_record([c.name.clone(), num(Some(c.estimate)), num(c.std_error), num(Some(c.odds_ratio)), num(c.odds_ratio_low), num(c.odds_ratio_high)])
            .map_err(err)?;
    }
    w.into_inner().map_err(|e| AscqrError::Other(format!("rendering coefficients: {e}")))
}

/// Writes `model.json`, `coefficients.csv` and `facilities.parquet` into `out` (each appears only when complete).
pub fn write_output(out: &Path, output: &FitOutput) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| AscqrError::io(out, e))?;
    let mut json = serde_json::to_vec_pretty(&output.summary).map_err(|e| AscqrError::Other(format!("internal: {e}")))?;
    json.push(b'\n');
    crate::output::write_atomic(&out.join("model.json"), &json)?;
    crate::output::write_atomic(&out.join("coefficients.csv"), &coefficients_csv(&output.summary.coefficients)?)?;
    let spec = ColumnSpec::plain;
    let cols = vec![
        spec("facility_id", ColumnType::Str),
        spec("cases", ColumnType::Float),
        spec("observed_events", ColumnType::Float),
        spec("random_intercept", ColumnType::Float),
        spec("random_intercept_se", ColumnType::Float),
        spec("predicted", ColumnType::Float),
        spec("expected", ColumnType::Float),
        spec("standardized_ratio", ColumnType::Float),
        spec("risk_standardized_rate", ColumnType::Float),
        spec("interval_low", ColumnType::Float),
        spec("interval_high", ColumnType::Float),
        spec("category", ColumnType::Str),
        spec("bootstrap_replicates", ColumnType::Int),
    ];
    let mut sink = TableSink::with_columns("facilities", cols, &out.join("facilities.parquet"), FileFormat::Parquet, 100_000)?;
    let of = |v: Option<f64>| v.map(Cell::Float).unwrap_or(Cell::Null);
    for f in &output.facilities {
        sink.push(&[
            Cell::Str(&f.facility_id),
            Cell::Float(f.cases),
            Cell::Float(f.events),
            Cell::Float(f.random_intercept),
            Cell::Float(f.random_intercept_se),
            Cell::Float(f.predicted),
            Cell::Float(f.expected),
            Cell::Float(f.ratio),
            Cell::Float(f.rate),
            of(f.interval_low),
            of(f.interval_high),
            f.category.as_deref().map(Cell::Str).unwrap_or(Cell::Null),
            f.replicates.map(|r| Cell::Int(r as i64)).unwrap_or(Cell::Null),
        ])?;
    }
    sink.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(rows: &[(f64, f64, f64)]) -> AnalysisData {
        // (covariate, cases, events), one facility.
        AnalysisData::from_rows("t".into(), vec!["x".into()], rows.iter().map(|&(x, n, y)| ("f".to_string(), vec![x], n, y))).unwrap()
    }

    #[test]
    fn c_statistic_counts_pairs_and_halves_ties() {
        // Row-per-procedure: scores 1 (event), 2 (non-event), 3 (event), 3 (non-event).
        // Pairs (event, non-event): (1,2) discordant, (1,3) discordant, (3,2) concordant, (3,3) tie → (1 + 0.5) / 4.
        let d = data(&[(1.0, 1.0, 1.0), (2.0, 1.0, 0.0), (3.0, 2.0, 1.0)]);
        let scores: Vec<f64> = (0..d.patterns()).map(|i| d.xrow(i)[1]).collect();
        assert_eq!(c_statistic(&d, &scores), Some(0.375));
        // A perfect ranking gives 1; no events gives none.
        let d = data(&[(1.0, 3.0, 0.0), (2.0, 2.0, 2.0)]);
        let scores: Vec<f64> = (0..d.patterns()).map(|i| d.xrow(i)[1]).collect();
        assert_eq!(c_statistic(&d, &scores), Some(1.0));
        let d = data(&[(1.0, 3.0, 0.0), (2.0, 2.0, 0.0)]);
        assert_eq!(c_statistic(&d, &[0.0, 1.0]), None);
    }

    #[test]
    fn odds_ratio_interval_is_the_exponentiated_wald_interval() {
        let c = Coefficient::new("x".into(), 0.5, Some(0.1));
        assert!((c.odds_ratio - 0.5f64.exp()).abs() < 1e-12);
        assert!((c.odds_ratio_low.unwrap() - (0.5 - 1.959963984540054 * 0.1f64).exp()).abs() < 1e-12);
        assert!(Coefficient::new("y".into(), 0.5, None).odds_ratio_high.is_none());
    }
}
