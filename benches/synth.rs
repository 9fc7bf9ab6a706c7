//! Benchmark: synthetic extract generation and validation at small scale.
//!
//! Run with `cargo bench --bench synth`. Prints the median of several runs; no timing is asserted
//! anywhere in the test suite. National-scale time and peak memory are measured by
//! `scripts/measure_national.sh` (it needs minutes and several GB of disk).

use ascqr::claims::{validate, FileFormat, Layout};
use ascqr::synth::{generate, Scale, SynthOptions};
use indicatif::ProgressBar;
use std::time::Instant;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    xs[xs.len() / 2]
}

fn main() {
    let runs = 5;
    let mut synth_s = Vec::new();
    let mut validate_s = Vec::new();
    let mut rows = 0u64;
    for seed in 0..runs {
        let dir = tempfile::tempdir().expect("tempdir");
        let claims = dir.path().join("claims");
        let options = SynthOptions::new(seed, Scale::Small, "2021-2023", FileFormat::Parquet).expect("options");
        let t = Instant::now();
        let summary = generate(&claims, &options, &ProgressBar::hidden()).expect("synth");
        synth_s.push(t.elapsed().as_secs_f64());
        rows = summary.rows.values().sum();
        let t = Instant::now();
        validate(&claims, Layout::Canonical, &dir.path().join("rejects.csv"), &ProgressBar::hidden()).expect("validate");
        validate_s.push(t.elapsed().as_secs_f64());
    }
    let (s, v) = (median(synth_s), median(validate_s));
    println!("synth small (2021-2023): {rows} rows, median {s:.3} s over {runs} runs ({:.0} rows/s)", rows as f64 / s);
    println!("validate small:          median {v:.3} s over {runs} runs ({:.0} rows/s)", rows as f64 / v);
}
