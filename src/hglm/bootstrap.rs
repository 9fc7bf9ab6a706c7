//! CMS's bootstrap for facility intervals (methodology §5), step by step:
//! 1. draw as many facilities as there are, with replacement; a facility drawn k times enters as
//!    k distinct facilities — here, a facility weight of k, which is the same likelihood;
//! 2. refit the model (warm-started from the full fit); a replicate that fails to converge is
//!    skipped and counted;
//! 3. for each drawn facility, perturb its intercept estimate by its standard error × a standard
//!    normal draw and compute its standardized ratio and rate with that intercept;
//! 4. keep one copy per original facility.
//! The interval is the 2.5th–97.5th percentile of a facility's replicate values.
//!
//! Each replicate has its own random stream (seed, replicate number), and replicates run in
//! parallel but are collected in order, so results do not depend on the number of threads.

use super::data::AnalysisData;
use super::fit::{fit, Fit, FitOptions};
use crate::standardize::predicted_expected;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

#[derive(Debug, Clone, serde::Serialize)]
pub struct BootstrapOptions {
    pub replicates: usize,
    pub seed: u64,
}

/// Replicate values per facility: (ratio, rate) from each replicate that drew it.
#[derive(Debug, Clone)]
pub struct BootstrapResult {
    pub requested: usize,
    pub used: usize,
    pub failed: usize,
    pub values: Vec<Vec<(f64, f64)>>,
}

fn replicate_rng(seed: u64, b: usize) -> ChaCha8Rng {
    let mut h: u64 = 0xcbf29ce484222325;
    for byte in seed.to_le_bytes().iter().chain(b"bootstrap").chain((b as u64).to_le_bytes().iter()) {
        h ^= *byte as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    ChaCha8Rng::seed_from_u64(h)
}

pub fn bootstrap(data: &AnalysisData, full: &Fit, opts: &FitOptions, boot: &BootstrapOptions, progress: &indicatif::ProgressBar) -> BootstrapResult {
    let g = data.groups.len();
    progress.set_length(boot.replicates as u64);
    let replicates: Vec<Option<Vec<(usize, f64, f64)>>> = (0..boot.replicates)
        .into_par_iter()
        .map(|b| {
            let mut rng = replicate_rng(boot.seed, b);
            let mut weights = vec![0.0; g];
            for _ in 0..g {
                weights[rng.random_range(0..g)] += 1.0;
            }
            let f = fit(data, Some(&weights), opts, Some(full));
            progress.inc(1);
            if !f.status.converged {
                return None;
            }
            let (mut cases, mut events) = (0.0, 0.0);
            for (j, &(r0, r1)) in data.ranges.iter().enumerate() {
                cases += weights[j] * data.n[r0..r1].iter().sum::<f64>();
                events += weights[j] * data.y[r0..r1].iter().sum::<f64>();
            }
            let national = events / cases;
            let mut out = Vec::new();
            for j in 0..g {
                if weights[j] == 0.0 {
                    continue;
                }
                let z: f64 = rng.sample(StandardNormal);
                let u = f.u[j] + f.u_se[j] * z;
                let (pred, exp) = predicted_expected(data, j, &f.beta, u);
                let ratio = pred / exp;
                out.push((j, ratio, ratio * national));
            }
            Some(out)
        })
        .collect();
    let mut values = vec![Vec::new(); g];
    let mut used = 0;
    let mut failed = 0;
    for r in replicates {
        match r {
            Some(list) => {
                used += 1;
                for (j, ratio, rate) in list {
                    values[j].push((ratio, rate));
                }
            }
            None => failed += 1,
        }
    }
    BootstrapResult { requested: boot.replicates, used, failed, values }
}
