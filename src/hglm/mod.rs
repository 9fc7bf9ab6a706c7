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
        .map(|(k, name)| Coefficient { name: name.clone(), estimate: full.beta[k], std_error: opt(full.beta_se[k]) })
        .collect();
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
        bootstrap_replicates_requested: boot_counts.0,
        bootstrap_replicates_used: boot_counts.1,
        bootstrap_replicates_failed: boot_counts.2,
        options: request.clone(),
        data_file: data.source.display().to_string(),
        ascqr_version: env!("CARGO_PKG_VERSION").to_string(),
        fit_log: full.log.clone(),
    };
    Ok(FitOutput { summary, facilities })
}

/// Writes `model.json` and `facilities.parquet` into `out` (each appears only when complete).
pub fn write_output(out: &Path, output: &FitOutput) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| AscqrError::io(out, e))?;
    let mut json = serde_json::to_vec_pretty(&output.summary).map_err(|e| AscqrError::Other(format!("internal: {e}")))?;
    json.push(b'\n');
    crate::output::write_atomic(&out.join("model.json"), &json)?;
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
