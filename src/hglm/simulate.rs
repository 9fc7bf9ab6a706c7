//! Simulated analysis files for benchmarks and method checks: facilities with log-normal volumes,
//! binary covariates with fixed prevalences (like the measures' comorbidity flags), a facility
//! intercept ~ Normal(0, tau²) and an intercept tuned to a target event rate.

use crate::claims::schema::{Column as ColumnSpec, ColumnType};
use crate::claims::sink::{Cell, FileFormat, TableSink};
use crate::error::Result;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct SimulationSpec {
    pub rows: usize,
    pub facilities: usize,
    pub covariates: usize,
    pub rate: f64,
    pub tau: f64,
    pub seed: u64,
}

/// Writes `facility, y, x01 … xK` rows to `path` (CSV or Parquet by extension).
pub fn write_analysis_file(spec: &SimulationSpec, path: &Path) -> Result<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let g = spec.facilities.max(1);
    // Log-normal facility volumes scaled to the requested total.
    let raw: Vec<f64> = (0..g).map(|_| { let z: f64 = Normal::new(0.0, 1.0).expect("sd 1").sample(&mut rng); z.exp() }).collect();
    let total: f64 = raw.iter().sum();
    let mut sizes: Vec<usize> = raw.iter().map(|r| ((r / total) * spec.rows as f64).round().max(1.0) as usize).collect();
    let diff = spec.rows as i64 - sizes.iter().sum::<usize>() as i64;
    if let Some(last) = sizes.iter_mut().max() {
        *last = (*last as i64 + diff).max(1) as usize;
    }
    let prevalence: Vec<f64> = (0..spec.covariates).map(|k| 0.02 + 0.28 * ((k * 7919) % 100) as f64 / 100.0).collect();
    let beta: Vec<f64> = (0..spec.covariates).map(|k| 0.1 + 0.6 * ((k * 104729) % 100) as f64 / 100.0).collect();
    let mean_xb: f64 = prevalence.iter().zip(&beta).map(|(p, b)| p * b).sum();
    let intercept = (spec.rate / (1.0 - spec.rate)).ln() - mean_xb - spec.tau * spec.tau / 2.0;
    let normal = Normal::new(0.0, spec.tau.max(0.0)).expect("tau");
    let mut cols = vec![
        ColumnSpec::plain("facility", ColumnType::Str),
        ColumnSpec::plain("y", ColumnType::Int),
    ];
    for k in 0..spec.covariates {
        cols.push(ColumnSpec::plain(format!("x{:02}", k + 1), ColumnType::Int));
    }
    let format = if path.extension().and_then(|e| e.to_str()) == Some("parquet") { FileFormat::Parquet } else { FileFormat::Csv };
    let mut sink = TableSink::with_columns("analysis", cols, path, format, 200_000)?;
    let mut xs = vec![0i64; spec.covariates];
    for (j, &size) in sizes.iter().enumerate() {
        let id = format!("F{j:05}");
        let u = if spec.tau > 0.0 { normal.sample(&mut rng) } else { 0.0 };
        for _ in 0..size {
            let mut eta = intercept + u;
            for k in 0..spec.covariates {
                xs[k] = rng.random_bool(prevalence[k]) as i64;
                eta += beta[k] * xs[k] as f64;
            }
            let y = rng.random_bool(super::linalg::logistic(eta)) as i64;
            let mut row = vec![Cell::Str(&id), Cell::Int(y)];
            row.extend(xs.iter().map(|v| Cell::Int(*v)));
            sink.push(&row)?;
        }
    }
    sink.finish()
}
