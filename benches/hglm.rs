//! Benchmark: the hierarchical model on a simulated analysis file (100,000 procedures, 1,000
//! facilities, 22 binary covariates, ~1% outcome). Prints medians over runs; nothing is asserted.
//! `cargo bench --bench hglm`. Side-by-side timings with lme4 and glmmTMB: scripts/bench_hglm.sh.

use ascqr::hglm::simulate::{write_analysis_file, SimulationSpec};
use ascqr::hglm::{fit::fit, AnalysisData, BootstrapOptions, DataSpec, FitOptions, FitRequest, Method};
use ascqr::standardize::Compare;
use indicatif::ProgressBar;
use std::time::Instant;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[xs.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("analysis.parquet");
    let spec = SimulationSpec { rows: 100_000, facilities: 1_000, covariates: 22, rate: 0.01, tau: 0.3, seed: 1 };
    write_analysis_file(&spec, &path).expect("simulate");
    let dspec = DataSpec { outcome: "y".into(), group: "facility".into(), covariates: None, cases: None };
    let t = Instant::now();
    let data = AnalysisData::read(&path, &dspec).expect("read");
    println!("read + collapse: {:.3} s ({} patterns)", t.elapsed().as_secs_f64(), data.patterns());
    for method in [Method::Rspl, Method::Laplace, Method::Agq] {
        let opts = FitOptions { method, ..Default::default() };
        let times: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let f = fit(&data, None, &opts, None);
                assert!(f.status.converged, "{}", f.status.termination);
                t.elapsed().as_secs_f64()
            })
            .collect();
        println!("{:<8} fit: median {:.3} s over 5 runs", method.as_str(), median(times));
    }
    let request = FitRequest {
        data: dspec,
        fit: FitOptions::default(),
        bootstrap: Some(BootstrapOptions { replicates: 100, seed: 1 }),
        min_cases: 30,
        compare: Compare::Rate,
    };
    let t = Instant::now();
    ascqr::hglm::run(&data, &request, &ProgressBar::hidden()).expect("bootstrap");
    println!("rspl fit + 100 bootstrap replicates: {:.3} s", t.elapsed().as_secs_f64());
}
