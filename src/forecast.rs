//! Forecasting one ASC's risk-standardized rate from its own cases and a saved national model —
//! the numerical core (issue 9; the `ascqr forecast` command, category probabilities and the
//! what-if mode are not built yet).
//!
//! Given the national coefficients β and random-intercept SD σ, the facility's intercept u has
//! the posterior p(u | y, β, σ) ∝ N(u; 0, σ²) · Π_i Binomial(y_i | n_i, logistic(x_iβ + u)),
//! evaluated on a grid around its mode (one dimension, so a grid is exact enough and never
//! fails). The forecast draws β from N(β̂, Σ̂) — the national model's parameter uncertainty —
//! then u from its posterior given that β, and computes for each draw the predicted and expected
//! visits, the standardized ratio and the rate (ratio × national observed rate), as the measure's
//! standardization does (methodology §5). Not included: uncertainty in σ and in the national
//! rate, and cases the ASC has not had yet.

use crate::hglm::linalg::{cholesky, dot, log1p_exp, logistic};
use crate::saved_model::SavedModel;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

/// One covariate pattern of the facility: design row (intercept first), cases, events.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub x: Vec<f64>,
    pub cases: f64,
    pub events: f64,
}

/// The intercept's posterior on a grid: points and normalised weights.
#[derive(Debug, Clone)]
pub struct InterceptPosterior {
    pub u: Vec<f64>,
    pub weight: Vec<f64>,
}

impl InterceptPosterior {
    pub fn mean(&self) -> f64 {
        self.u.iter().zip(&self.weight).map(|(u, w)| u * w).sum()
    }
    /// Inverse-CDF draw for a uniform `p` in [0, 1).
    pub fn quantile(&self, p: f64) -> f64 {
        let mut acc = 0.0;
        for (u, w) in self.u.iter().zip(&self.weight) {
            acc += w;
            if acc >= p {
                return *u;
            }
        }
        *self.u.last().expect("a grid has points")
    }
}

fn log_posterior(etas: &[(f64, f64, f64)], sigma: f64, u: f64) -> f64 {
    let prior = -0.5 * (u / sigma).powi(2);
    prior + etas.iter().map(|&(eta, n, y)| y * (eta + u) - n * log1p_exp(eta + u)).sum::<f64>()
}

/// The posterior of the facility's intercept given `beta` and `sigma` (σ ≤ 0: a point mass at 0).
pub fn intercept_posterior(patterns: &[Pattern], beta: &[f64], sigma: f64, grid_points: usize) -> InterceptPosterior {
    if !(sigma > 0.0) {
        return InterceptPosterior { u: vec![0.0], weight: vec![1.0] };
    }
    let etas: Vec<(f64, f64, f64)> = patterns.iter().map(|p| (dot(&p.x, beta), p.cases, p.events)).collect();
    // Newton for the mode; the log posterior is strictly concave in u.
    let mut mode = 0.0;
    let mut curvature = 1.0 / (sigma * sigma);
    for _ in 0..100 {
        let (mut g, mut h) = (-mode / (sigma * sigma), 1.0 / (sigma * sigma));
        for &(eta, n, y) in &etas {
            let p = logistic(eta + mode);
            g += y - n * p;
            h += n * p * (1.0 - p);
        }
        curvature = h;
        let step = g / h;
        mode += step;
        if step.abs() < 1e-12 {
            break;
        }
    }
    let half_width = 10.0 / curvature.sqrt();
    let k = grid_points.max(3);
    let u: Vec<f64> = (0..k).map(|i| mode - half_width + 2.0 * half_width * i as f64 / (k - 1) as f64).collect();
    let logs: Vec<f64> = u.iter().map(|&v| log_posterior(&etas, sigma, v)).collect();
    let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let raw: Vec<f64> = logs.iter().map(|l| (l - top).exp()).collect();
    let total: f64 = raw.iter().sum();
    InterceptPosterior { u, weight: raw.into_iter().map(|w| w / total).collect() }
}

/// Predicted and expected visits of the facility at `beta` and intercept `u`.
pub fn predicted_expected(patterns: &[Pattern], beta: &[f64], u: f64) -> (f64, f64) {
    patterns.iter().fold((0.0, 0.0), |(pred, exp), p| {
        let eta = dot(&p.x, beta);
        (pred + p.cases * logistic(eta + u), exp + p.cases * logistic(eta))
    })
}

/// The forecast distribution's summary.
#[derive(Debug, Clone, Serialize)]
pub struct RateForecast {
    pub cases: f64,
    pub observed_visits: f64,
    /// Expected visits at the national average intercept and the point estimates β̂.
    pub expected_visits: f64,
    pub intercept_posterior_mean: f64,
    /// Median and 2.5th/97.5th percentiles of the draws.
    pub ratio: f64,
    pub ratio_interval: (f64, f64),
    pub rate: f64,
    pub rate_interval: (f64, f64),
    pub draws: usize,
    /// Whether β was drawn from its covariance (false when the model has none).
    pub includes_parameter_uncertainty: bool,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    crate::standardize::percentile_sas5(sorted, q)
}

/// Forecasts the facility's standardized ratio and rate with `draws` draws (seeded).
pub fn forecast_rate(model: &SavedModel, patterns: &[Pattern], draws: usize, seed: u64) -> RateForecast {
    let p = model.coefficients.len();
    let chol = model.coefficient_covariance.as_ref().and_then(|c| cholesky(&c.concat(), p));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut ratios, mut rates) = (Vec::with_capacity(draws), Vec::with_capacity(draws));
    for _ in 0..draws.max(1) {
        let beta: Vec<f64> = match &chol {
            Some(l) => {
                let z: Vec<f64> = (0..p).map(|_| rng.sample(StandardNormal)).collect();
                (0..p).map(|i| model.coefficients[i] + (0..=i).map(|k| l[i * p + k] * z[k]).sum::<f64>()).collect()
            }
            None => model.coefficients.clone(),
        };
        let posterior = intercept_posterior(patterns, &beta, model.random_intercept_sd, 201);
        let u = posterior.quantile(rng.random::<f64>());
        let (pred, exp) = predicted_expected(patterns, &beta, u);
        let ratio = pred / exp;
        ratios.push(ratio);
        rates.push(ratio * model.national_observed_rate);
    }
    ratios.sort_by(|a, b| a.total_cmp(b));
    rates.sort_by(|a, b| a.total_cmp(b));
    let (_, expected) = predicted_expected(patterns, &model.coefficients, 0.0);
    RateForecast {
        cases: patterns.iter().map(|p| p.cases).sum(),
        observed_visits: patterns.iter().map(|p| p.events).sum(),
        expected_visits: expected,
        intercept_posterior_mean: intercept_posterior(patterns, &model.coefficients, model.random_intercept_sd, 401).mean(),
        ratio: percentile(&ratios, 50.0),
        ratio_interval: (percentile(&ratios, 2.5), percentile(&ratios, 97.5)),
        rate: percentile(&rates, 50.0),
        rate_interval: (percentile(&rates, 2.5), percentile(&rates, 97.5)),
        draws: ratios.len(),
        includes_parameter_uncertainty: chol.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_pattern(cases: f64, events: f64) -> Vec<Pattern> {
        vec![Pattern { x: vec![1.0], cases, events }]
    }

    #[test]
    fn with_no_cases_the_posterior_is_the_prior() {
        let post = intercept_posterior(&[], &[-3.0], 0.4, 801);
        assert!(post.mean().abs() < 1e-9);
        let var: f64 = post.u.iter().zip(&post.weight).map(|(u, w)| u * u * w).sum();
        assert!((var.sqrt() - 0.4).abs() < 1e-3, "sd {}", var.sqrt());
    }

    #[test]
    fn many_cases_pin_the_intercept_near_the_facility_log_odds() {
        // 20,000 cases at a national log-odds of −3 and an observed rate of logistic(−2.5):
        // the posterior mean approaches 0.5 (a little shrunk by the prior).
        let cases = 20_000.0;
        let events = (cases * logistic(-2.5)).round();
        let post = intercept_posterior(&one_pattern(cases, events), &[-3.0], 0.5, 401);
        assert!((post.mean() - 0.5).abs() < 0.03, "{}", post.mean());
        // A facility with no visits in 40 cases is pulled towards 0, not to −∞.
        let none = intercept_posterior(&one_pattern(40.0, 0.0), &[-3.0], 0.5, 401);
        assert!(none.mean() < 0.0 && none.mean() > -1.0, "{}", none.mean());
    }

    fn model(cov: Option<Vec<Vec<f64>>>) -> SavedModel {
        SavedModel {
            format: crate::saved_model::FORMAT.into(),
            label: "test".into(),
            measure: crate::dictionary::MeasureId::Asc12,
            definition_version: "x".into(),
            variables: vec![],
            coefficient_names: vec!["(Intercept)".into()],
            coefficients: vec![-3.0],
            coefficient_covariance: cov,
            random_intercept_sd: 0.3,
            national_observed_rate: logistic(-3.0),
            method: "rspl".into(),
            converged: true,
            termination: String::new(),
            warnings: vec![],
            cases: 0.0,
            events: 0.0,
            facilities: 0,
            min_cases: 25,
            rate_unit: "per_1000".into(),
            loglik_at_estimates: 0.0,
        }
    }

    #[test]
    fn forecasts_are_seeded_and_draw_from_the_covariance_when_there_is_one() {
        let facility = one_pattern(400.0, 30.0);
        let fixed = forecast_rate(&model(None), &facility, 400, 7);
        assert_eq!(fixed.rate, forecast_rate(&model(None), &facility, 400, 7).rate);
        assert!(!fixed.includes_parameter_uncertainty);
        // 30 visits where 400·logistic(−3) ≈ 19 were expected: the rate lies above the national one.
        assert!(fixed.rate > logistic(-3.0) && fixed.rate_interval.0 < fixed.rate && fixed.rate < fixed.rate_interval.1);
        let uncertain = forecast_rate(&model(Some(vec![vec![0.04]])), &facility, 400, 7);
        assert!(uncertain.includes_parameter_uncertainty);
        // Drawing β changes the draws (the ratio itself is insensitive to a shift of the one
        // intercept, which moves predicted and expected visits together).
        assert_ne!(uncertain.ratio_interval, fixed.ratio_interval);
        assert!(uncertain.ratio_interval.0 > 0.5 && uncertain.ratio_interval.1 < 3.0, "{:?}", uncertain.ratio_interval);
    }
}
