//! Forecasting one ASC's result from its own cases and a saved national model (issue 9).
//!
//! **The facility's intercept.** Given the national coefficients β and random-intercept SD σ, the
//! facility's intercept u has the posterior p(u | y, β, σ) ∝ N(u; 0, σ²) · Π_i Binomial(y_i | n_i,
//! logistic(x_iβ + u)). It is one-dimensional and log-concave, so it is evaluated exactly on a
//! grid around its mode ([`intercept_posterior`]).
//!
//! **What CMS would publish.** CMS's point estimate uses the facility's intercept estimate (the
//! conditional mode, the EBLUP of RSPL) and its interval perturbs that estimate by its standard
//! error in each bootstrap replicate, whose refit moves β (methodology §5). The forecast mirrors
//! that: each draw takes β from N(β̂, Σ̂) — the saved model's parameter uncertainty, standing in
//! for the bootstrap's refits — and computes, on the cases CMS would score:
//! * the point estimate: standardized ratio at the conditional mode of u;
//! * a replicate value: the ratio at the mode plus its standard error × a standard normal draw,
//!   pooled over draws into the 95% interval, as CMS's bootstrap pools replicates;
//! * the draw's category: CMS's rule applied to that draw's interval (mode ± 1.96 standard
//!   errors) — whole interval below, across, or above the national rate (ASC-19: 1).
//!
//! Category probabilities are the share of draws in each category. When every scored case has an
//! observed outcome, only the national parameters vary between draws, so the probabilities are
//! near 0 or 1 unless the facility sits on a boundary. Cases whose outcomes are not known yet
//! ([`ScoredCases::ObservedPlus`], [`ScoredCases::Instead`]: a period projected to its end, or a
//! what-if case mix) get outcomes simulated in each draw from the facility's intercept drawn from
//! its posterior given the observed cases, so their uncertainty enters too.
//!
//! Not included: uncertainty in σ and in the national observed rate, change of the national model
//! between the saved model's period and the forecast period, and bootstrap Monte-Carlo noise.

use crate::hglm::linalg::{cholesky, dot, log1p_exp, logistic};
use crate::saved_model::SavedModel;
use crate::standardize::{category_index, Compare, TOO_SMALL};

pub mod check;
pub mod facility;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution, StandardNormal};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

/// One covariate pattern of the facility: design row (intercept first), cases, events.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub x: Vec<f64>,
    pub cases: f64,
    pub events: f64,
}

/// Which cases CMS would score, relative to the facility's observed cases.
#[derive(Debug, Clone, PartialEq)]
pub enum ScoredCases {
    /// The observed cases with their observed outcomes: the period is complete.
    Observed,
    /// The observed cases plus these further cases, whose outcomes are not known yet (their
    /// `events` are ignored): a partial period projected to its end.
    ObservedPlus(Vec<Pattern>),
    /// These cases instead of the observed ones, outcomes not known (a what-if case mix); the
    /// observed cases still inform the facility's intercept.
    Instead(Vec<Pattern>),
}

/// The intercept's posterior on a grid: points and normalised weights.
#[derive(Debug, Clone)]
pub struct InterceptPosterior {
    pub u: Vec<f64>,
    pub weight: Vec<f64>,
    /// The conditional mode and the Laplace standard error (1 / √curvature at the mode).
    pub mode: f64,
    pub mode_se: f64,
}

impl InterceptPosterior {
    pub fn mean(&self) -> f64 {
        self.u.iter().zip(&self.weight).map(|(u, w)| u * w).sum()
    }
    pub fn sd(&self) -> f64 {
        let m = self.mean();
        self.u.iter().zip(&self.weight).map(|(u, w)| (u - m).powi(2) * w).sum::<f64>().sqrt()
    }
    /// Inverse-CDF value for a probability `p` in [0, 1).
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

/// The patterns of facility `j` of an analysis file, e.g. a national run's.
pub fn patterns_of(data: &crate::hglm::AnalysisData, j: usize) -> Vec<Pattern> {
    let (a, b) = data.ranges[j];
    (a..b).map(|i| Pattern { x: data.xrow(i).to_vec(), cases: data.n[i], events: data.y[i] }).collect()
}

/// (linear predictor without u, cases, events) of each pattern at `beta`.
fn linear_predictors(patterns: &[Pattern], beta: &[f64]) -> Vec<(f64, f64, f64)> {
    patterns.iter().map(|p| (dot(&p.x, beta), p.cases, p.events)).collect()
}

fn log_posterior(etas: &[(f64, f64, f64)], sigma: f64, u: f64) -> f64 {
    let prior = -0.5 * (u / sigma).powi(2);
    prior + etas.iter().map(|&(eta, n, y)| y * (eta + u) - n * log1p_exp(eta + u)).sum::<f64>()
}

/// The conditional mode of u and the curvature of the log posterior there. The score
/// g(u) = −u/σ² + Σ (y − n·p(η + u)) falls strictly, and lies between −u/σ² − Σ(n − y) and
/// −u/σ² + Σy, so the root is bracketed by [−σ²·Σ(n − y), σ²·Σy]; Newton steps that leave the
/// bracket are replaced by bisection, which makes it converge for any data (plain Newton from 0
/// oscillates for a facility far from the national rate). σ ≤ 0: u is fixed at 0.
fn conditional_mode(etas: &[(f64, f64, f64)], sigma: f64) -> (f64, f64) {
    if !(sigma > 0.0) {
        return (0.0, f64::INFINITY);
    }
    let s2 = sigma * sigma;
    let score = |u: f64| {
        let (mut g, mut h) = (-u / s2, 1.0 / s2);
        for &(eta, n, y) in etas {
            let p = logistic(eta + u);
            g += y - n * p;
            h += n * p * (1.0 - p);
        }
        (g, h)
    };
    let events: f64 = etas.iter().map(|e| e.2).sum();
    let non_events: f64 = etas.iter().map(|e| e.1 - e.2).sum();
    let (mut lo, mut hi) = (-s2 * non_events - 1e-9, s2 * events + 1e-9);
    let mut u = 0.0f64.clamp(lo, hi);
    for _ in 0..200 {
        let (g, h) = score(u);
        if g > 0.0 {
            lo = u;
        } else {
            hi = u;
        }
        let newton = u + g / h;
        let next = if newton > lo && newton < hi { newton } else { 0.5 * (lo + hi) };
        let converged = (next - u).abs() < 1e-12 * (1.0 + u.abs()) || hi - lo < 1e-14;
        u = next;
        if converged {
            break;
        }
    }
    (u, score(u).1)
}

fn posterior_from(etas: &[(f64, f64, f64)], sigma: f64, grid_points: usize) -> InterceptPosterior {
    let (mode, curvature) = conditional_mode(etas, sigma);
    if !(sigma > 0.0) {
        return InterceptPosterior { u: vec![0.0], weight: vec![1.0], mode, mode_se: 0.0 };
    }
    let half_width = 10.0 / curvature.sqrt();
    let k = grid_points.max(3);
    let u: Vec<f64> = (0..k).map(|i| mode - half_width + 2.0 * half_width * i as f64 / (k - 1) as f64).collect();
    let logs: Vec<f64> = u.iter().map(|&v| log_posterior(etas, sigma, v)).collect();
    let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let raw: Vec<f64> = logs.iter().map(|l| (l - top).exp()).collect();
    let total: f64 = raw.iter().sum();
    InterceptPosterior { u, weight: raw.into_iter().map(|w| w / total).collect(), mode, mode_se: 1.0 / curvature.sqrt() }
}

/// The posterior of the facility's intercept given `beta` and `sigma` (σ ≤ 0: a point mass at 0).
pub fn intercept_posterior(patterns: &[Pattern], beta: &[f64], sigma: f64, grid_points: usize) -> InterceptPosterior {
    posterior_from(&linear_predictors(patterns, beta), sigma, grid_points)
}

/// Predicted and expected visits over linear predictors `etas` at intercept `u`.
fn predicted_expected_at(etas: &[(f64, f64, f64)], u: f64) -> (f64, f64) {
    etas.iter().fold((0.0, 0.0), |(pred, exp), &(eta, n, _)| (pred + n * logistic(eta + u), exp + n * logistic(eta)))
}

/// Predicted and expected visits of the facility at `beta` and intercept `u`.
pub fn predicted_expected(patterns: &[Pattern], beta: &[f64], u: f64) -> (f64, f64) {
    predicted_expected_at(&linear_predictors(patterns, beta), u)
}

#[derive(Debug, Clone, Serialize)]
pub struct ForecastOptions {
    pub draws: usize,
    pub seed: u64,
    /// Grid points of the intercept posterior.
    pub grid_points: usize,
}

impl Default for ForecastOptions {
    fn default() -> Self {
        ForecastOptions { draws: 2000, seed: 1, grid_points: 201 }
    }
}

/// Summary of the intercept's posterior given the observed cases at the point estimates β̂.
#[derive(Debug, Clone, Serialize)]
pub struct InterceptSummary {
    pub mode: f64,
    pub mode_se: f64,
    pub mean: f64,
    pub sd: f64,
    pub interval: (f64, f64),
}

/// The forecast, as written to `forecast.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Forecast {
    pub model_label: String,
    pub rate_unit: String,
    pub observed_cases: f64,
    pub observed_visits: f64,
    /// Expected visits among the observed cases at the average intercept and β̂.
    pub expected_visits: f64,
    /// Cases CMS would score (observed plus projected, or the what-if cases).
    pub scored_cases: f64,
    /// Of them, cases whose outcomes were simulated.
    pub simulated_cases: f64,
    pub intercept_posterior: InterceptSummary,
    /// The point estimate CMS would compute at the national estimates β̂: the standardized ratio
    /// at the conditional mode of the intercept, and the rate = ratio × national observed rate (a
    /// proportion). With outcomes still to come, the median over draws. With no scored case they
    /// are undefined (NaN here, `null` in JSON).
    pub ratio: f64,
    pub rate: f64,
    /// 95% interval as CMS's bootstrap would give it (replicate values pooled over draws).
    pub ratio_interval: (f64, f64),
    pub interval: (f64, f64),
    /// 2.5th and 97.5th percentile over draws of the point estimate's rate (a proportion): its
    /// spread from outcomes not known yet (with every outcome observed, the rate itself).
    pub point_estimate_interval: (f64, f64),
    pub national_observed_rate: f64,
    /// Share of draws in each of CMS's categories.
    pub category_probabilities: BTreeMap<String, f64>,
    pub most_likely_category: String,
    pub draws: usize,
    pub seed: u64,
    pub uncertainty_included: Vec<String>,
    pub uncertainty_not_included: Vec<String>,
}

/// CMS's category wording of the measure, in order better, no different, worse, too small.
pub fn category_labels(model: &SavedModel) -> [&'static str; 4] {
    let [better, no_different, worse] = Compare::for_rate_unit(&model.rate_unit).wording();
    [better, no_different, worse, TOO_SMALL]
}

struct Draw {
    point: f64,
    replicate: f64,
    category: usize,
}

/// One draw's random stream, independent of thread scheduling.
fn draw_rng(seed: u64, d: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(d as u64);
    rng
}

/// Forecasts what CMS would publish for the facility whose observed cases are `observed`.
pub fn forecast(model: &SavedModel, observed: &[Pattern], scored: &ScoredCases, options: &ForecastOptions) -> Forecast {
    let p = model.coefficients.len();
    let sigma = model.random_intercept_sd;
    let chol = model.coefficient_covariance.as_ref().and_then(|c| cholesky(&c.concat(), p));
    let (known, unknown): (&[Pattern], &[Pattern]) = match scored {
        ScoredCases::Observed => (observed, &[]),
        ScoredCases::ObservedPlus(extra) => (observed, extra),
        ScoredCases::Instead(cases) => (&[], cases),
    };
    let rounded_cases = |ps: &[Pattern]| ps.iter().map(|p| p.cases.round()).sum::<f64>() + 0.0;
    let scored_cases = known.iter().map(|p| p.cases).sum::<f64>() + rounded_cases(unknown) + 0.0;
    let too_small = scored_cases < model.min_cases as f64;
    // At the national estimates β̂ the linear predictors are the same in every draw, and with
    // every outcome known so is CMS's point estimate: computed once, here.
    let known_at_estimates = linear_predictors(known, &model.coefficients);
    let unknown_at_estimates = linear_predictors(unknown, &model.coefficients);
    let ratio_at = |etas: &[(f64, f64, f64)], u: f64| {
        let (pred, exp) = predicted_expected_at(etas, u);
        pred / exp
    };
    let point_at_estimates = |etas: &[(f64, f64, f64)]| ratio_at(etas, conditional_mode(etas, sigma).0);
    let known_point = unknown.is_empty().then(|| point_at_estimates(&known_at_estimates));
    let draws: Vec<Draw> = (0..options.draws.max(1))
        .into_par_iter()
        .map(|d| {
            let mut rng = draw_rng(options.seed, d);
            let beta: Vec<f64> = match &chol {
                Some(l) => {
                    let z: Vec<f64> = (0..p).map(|_| rng.sample(StandardNormal)).collect();
                    (0..p).map(|i| model.coefficients[i] + (0..=i).map(|k| l[i * p + k] * z[k]).sum::<f64>()).collect()
                }
                None => model.coefficients.clone(),
            };
            let mut etas = linear_predictors(known, &beta);
            if !unknown.is_empty() {
                // The facility's intercept, drawn from its posterior given what was observed,
                // generates the outcomes not known yet.
                let posterior = intercept_posterior(observed, &beta, sigma, options.grid_points);
                let u = posterior.quantile(rng.random::<f64>());
                for (eta, n, _) in linear_predictors(unknown, &beta) {
                    let n = n.round().max(0.0);
                    let prob = logistic(eta + u);
                    let y = Binomial::new(n as u64, prob).map(|b| b.sample(&mut rng) as f64).unwrap_or(0.0);
                    etas.push((eta, n, y));
                }
            }
            let (mode, curvature) = conditional_mode(&etas, sigma);
            let se = if curvature.is_finite() { 1.0 / curvature.sqrt() } else { 0.0 };
            let z: f64 = rng.sample(StandardNormal);
            // Comparing the rate interval with the national rate is comparing the ratio's with 1.
            let category = if too_small { 3 } else { category_index((ratio_at(&etas, mode - 1.959964 * se), ratio_at(&etas, mode + 1.959964 * se)), 1.0) };
            // The point estimate is CMS's at the national estimates β̂, on this draw's outcomes.
            // (Not at β_d: the ratio is not linear in β, and its median over β draws sits below
            // the estimate at β̂ — by about 2% for the synthetic national ASC-18 model.)
            let point = known_point.unwrap_or_else(|| {
                let at_estimates: Vec<(f64, f64, f64)> = known_at_estimates
                    .iter()
                    .copied()
                    .chain(unknown_at_estimates.iter().zip(&etas[known.len()..]).map(|(&(eta, _, _), &(_, n, y))| (eta, n, y)))
                    .collect();
                debug_assert_eq!(at_estimates.len(), etas.len());
                point_at_estimates(&at_estimates)
            });
            Draw { point, replicate: ratio_at(&etas, mode + se * z), category }
        })
        .collect();
    let sorted = |f: &dyn Fn(&Draw) -> f64| {
        let mut v: Vec<f64> = draws.iter().map(f).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v
    };
    let points = sorted(&|d| d.point);
    let replicates = sorted(&|d| d.replicate);
    let pct = crate::standardize::percentile_sas5;
    let national = model.national_observed_rate;
    let ratio = pct(&points, 50.0);
    let ratio_interval = (pct(&replicates, 2.5), pct(&replicates, 97.5));
    let point_interval = (pct(&points, 2.5), pct(&points, 97.5));
    let labels = category_labels(model);
    let mut counts = [0usize; 4];
    for d in &draws {
        counts[d.category] += 1;
    }
    let category_probabilities: BTreeMap<String, f64> = labels.iter().zip(counts).map(|(l, c)| (l.to_string(), c as f64 / draws.len() as f64)).collect();
    let most_likely = (0..4).max_by_key(|&i| (counts[i], std::cmp::Reverse(i))).expect("four categories");
    let posterior = intercept_posterior(observed, &model.coefficients, sigma, options.grid_points);
    let (_, expected) = predicted_expected(observed, &model.coefficients, 0.0);
    let mut included = vec![
        "the facility's intercept: its posterior given the observed cases and the national model".to_string(),
    ];
    let mut not_included = vec![
        "uncertainty in the random-intercept SD and in the national observed rate".to_string(),
        "change of the national model between the saved model's period and the forecast period".to_string(),
    ];
    if chol.is_some() {
        included.push("parameter uncertainty of the national model: β drawn from the saved coefficient covariance".into());
    } else {
        not_included.push("parameter uncertainty of the national model (the saved model has no positive-definite coefficient covariance)".into());
    }
    if !unknown.is_empty() {
        included.push("outcomes of the cases not observed yet, simulated from the facility's intercept posterior".into());
    }
    Forecast {
        model_label: model.label.clone(),
        rate_unit: model.rate_unit.clone(),
        // `+ 0.0`: an empty sum is −0.0, which would print as "-0".
        observed_cases: observed.iter().map(|p| p.cases).sum::<f64>() + 0.0,
        observed_visits: observed.iter().map(|p| p.events).sum::<f64>() + 0.0,
        expected_visits: expected,
        scored_cases,
        simulated_cases: rounded_cases(unknown),
        intercept_posterior: InterceptSummary {
            mode: posterior.mode,
            mode_se: posterior.mode_se,
            mean: posterior.mean(),
            sd: posterior.sd(),
            interval: (posterior.quantile(0.025), posterior.quantile(0.975)),
        },
        ratio,
        rate: ratio * national,
        ratio_interval,
        interval: (ratio_interval.0 * national, ratio_interval.1 * national),
        point_estimate_interval: (point_interval.0 * national, point_interval.1 * national),
        national_observed_rate: national,
        category_probabilities,
        most_likely_category: labels[most_likely].to_string(),
        draws: draws.len(),
        seed: options.seed,
        uncertainty_included: included,
        uncertainty_not_included: not_included,
    }
}

/// One row of a calibration table: forecasts whose probability for `category` fell in
/// [`low`, `high`), their mean forecast probability, and how often the category happened.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CalibrationRow {
    pub category: String,
    pub low: f64,
    pub high: f64,
    pub forecasts: usize,
    pub mean_probability: f64,
    pub observed_share: f64,
}

/// Calibration of category probabilities: for each category, forecasts binned by the
/// probability they gave it (`bins` equal bins; a probability of exactly 1 goes to the last),
/// against the share in which that category was the actual result. `outcomes` pairs each
/// forecast's probabilities with the label of the actual category. Empty bins are left out.
pub fn calibration_table(outcomes: &[(BTreeMap<String, f64>, String)], bins: usize) -> Vec<CalibrationRow> {
    let bins = bins.max(1);
    let mut labels: Vec<&String> = outcomes.iter().flat_map(|(p, _)| p.keys()).collect();
    labels.sort();
    labels.dedup();
    let mut rows = Vec::new();
    for label in labels {
        let mut sum_p = vec![0.0; bins];
        let mut hits = vec![0usize; bins];
        let mut count = vec![0usize; bins];
        for (probabilities, actual) in outcomes {
            let p = probabilities.get(label).copied().unwrap_or(0.0);
            let b = ((p * bins as f64) as usize).min(bins - 1);
            sum_p[b] += p;
            count[b] += 1;
            hits[b] += usize::from(actual == label);
        }
        for b in (0..bins).filter(|&b| count[b] > 0) {
            rows.push(CalibrationRow {
                category: label.clone(),
                low: b as f64 / bins as f64,
                high: (b + 1) as f64 / bins as f64,
                forecasts: count[b],
                mean_probability: sum_p[b] / count[b] as f64,
                observed_share: hits[b] as f64 / count[b] as f64,
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_pattern(cases: f64, events: f64) -> Vec<Pattern> {
        vec![Pattern { x: vec![1.0], cases, events }]
    }

    #[test]
    fn the_mode_is_found_for_a_facility_far_from_the_national_rate() {
        // Plain Newton from 0 oscillates here (σ = 0.28, national log-odds −4.6, 158 visits in
        // 1,000 cases); the bracketed search finds the root of the score.
        for (sigma, eta, n, y) in [(0.28, -4.6, 1000.0, 158.0), (0.28, -4.6, 10_000.0, 900.0), (0.5, -6.0, 100.0, 50.0), (0.3, -3.0, 500.0, 0.0)] {
            let etas = [(eta, n, y)];
            let (mode, curvature) = conditional_mode(&etas, sigma);
            let p = logistic(eta + mode);
            let g = -mode / (sigma * sigma) + y - n * p;
            assert!(g.abs() < 1e-6 * (1.0 + y), "σ {sigma}, {y} of {n}: mode {mode}, score {g}");
            assert!(curvature > 1.0 / (sigma * sigma));
        }
    }

    #[test]
    fn with_no_cases_the_posterior_is_the_prior() {
        let post = intercept_posterior(&[], &[-3.0], 0.4, 801);
        assert!(post.mean().abs() < 1e-9);
        assert!((post.sd() - 0.4).abs() < 1e-3, "sd {}", post.sd());
    }

    #[test]
    fn many_cases_pin_the_intercept_near_the_facility_log_odds() {
        // 20,000 cases at a national log-odds of −3 and an observed rate of logistic(−2.5):
        // the posterior mean approaches 0.5 (a little shrunk by the prior).
        let cases = 20_000.0;
        let events = (cases * logistic(-2.5)).round();
        let post = intercept_posterior(&one_pattern(cases, events), &[-3.0], 0.5, 401);
        assert!((post.mean() - 0.5).abs() < 0.03, "{}", post.mean());
        assert!((post.mode - post.mean()).abs() < 0.01);
        // A facility with no visits in 40 cases is pulled towards 0, not to −∞.
        let none = intercept_posterior(&one_pattern(40.0, 0.0), &[-3.0], 0.5, 401);
        assert!(none.mean() < 0.0 && none.mean() > -1.0, "{}", none.mean());
    }

    fn model(cov: Option<Vec<Vec<f64>>>, min_cases: u32) -> SavedModel {
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
            min_cases,
            rate_unit: "per_1000".into(),
            loglik_at_estimates: 0.0,
        }
    }

    fn options(draws: usize) -> ForecastOptions {
        ForecastOptions { draws, seed: 7, grid_points: 201 }
    }

    #[test]
    fn a_complete_period_forecasts_the_estimate_at_the_conditional_mode() {
        let facility = one_pattern(400.0, 30.0);
        let f = forecast(&model(None, 25), &facility, &ScoredCases::Observed, &options(400));
        assert!(!f.uncertainty_included.iter().any(|s| s.contains("covariance")));
        // Without parameter uncertainty every draw's point estimate is CMS's: the ratio at the mode.
        let mode = intercept_posterior(&facility, &[-3.0], 0.3, 201).mode;
        let (pred, exp) = predicted_expected(&facility, &[-3.0], mode);
        assert!((f.ratio - pred / exp).abs() < 1e-12);
        assert_eq!(f.point_estimate_interval.0, f.point_estimate_interval.1);
        // 30 visits where 400·logistic(−3) ≈ 19 were expected: above the national rate, and the
        // draws' interval (mode ± 1.96 SE, the same in every draw) decides one category.
        assert!(f.rate > f.national_observed_rate && f.interval.0 < f.rate && f.rate < f.interval.1);
        let certain: Vec<f64> = f.category_probabilities.values().copied().filter(|&p| p > 0.0).collect();
        assert_eq!(certain, vec![1.0]);
        assert_eq!(f.category_probabilities.len(), 4);
        // Seeded: the same call gives the same forecast.
        let again = forecast(&model(None, 25), &facility, &ScoredCases::Observed, &options(400));
        assert_eq!((f.rate, f.interval), (again.rate, again.interval));
    }

    #[test]
    fn parameter_uncertainty_widens_the_interval_and_keeps_the_estimate() {
        let facility = vec![Pattern { x: vec![1.0, 0.0], cases: 300.0, events: 20.0 }, Pattern { x: vec![1.0, 1.0], cases: 100.0, events: 15.0 }];
        let mut m = model(Some(vec![vec![0.01, 0.0], vec![0.0, 0.09]]), 25);
        m.coefficient_names.push("x".into());
        m.coefficients.push(0.5);
        let f = forecast(&m, &facility, &ScoredCases::Observed, &options(2000));
        assert!(f.uncertainty_included.iter().any(|s| s.contains("covariance")));
        m.coefficient_covariance = None;
        let fixed = forecast(&m, &facility, &ScoredCases::Observed, &options(2000));
        // The estimate is CMS's at β̂ either way; the draws of β widen the interval.
        assert_eq!(f.rate, fixed.rate);
        assert_eq!(f.point_estimate_interval.0, f.point_estimate_interval.1);
        assert!(f.interval.1 - f.interval.0 > 1.05 * (fixed.interval.1 - fixed.interval.0), "{:?} vs {:?}", f.interval, fixed.interval);
    }

    #[test]
    fn too_few_scored_cases_are_too_small_unless_the_projection_lifts_them() {
        let facility = one_pattern(20.0, 1.0);
        let m = model(None, 25);
        let f = forecast(&m, &facility, &ScoredCases::Observed, &options(100));
        assert_eq!(f.category_probabilities[TOO_SMALL], 1.0);
        assert_eq!(f.most_likely_category, TOO_SMALL);
        let projected = forecast(&m, &facility, &ScoredCases::ObservedPlus(one_pattern(20.0, 0.0)), &options(100));
        assert_eq!(projected.scored_cases, 40.0);
        assert_eq!(projected.simulated_cases, 20.0);
        assert_eq!(projected.category_probabilities[TOO_SMALL], 0.0);
        // The unknown outcomes spread the point estimate.
        assert!(projected.point_estimate_interval.0 < projected.point_estimate_interval.1);
    }

    /// Facilities generated from the model itself: the intercept from N(0, σ²), a first half of
    /// cases observed, a second half not yet. The forecast from the first half, projected to the
    /// whole period, must give category probabilities that match how often each category happens
    /// with the whole period's outcomes.
    #[test]
    fn projected_category_probabilities_are_calibrated_when_the_model_is_true() {
        let mut m = model(None, 25);
        m.random_intercept_sd = 0.6;
        let beta = -2.5;
        m.coefficients = vec![beta];
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut outcomes = Vec::new();
        let half = 150.0;
        for _ in 0..600 {
            let u: f64 = 0.6 * rng.sample::<f64, _>(StandardNormal);
            let p = logistic(beta + u);
            let y1 = Binomial::new(half as u64, p).unwrap().sample(&mut rng) as f64;
            let y2 = Binomial::new(half as u64, p).unwrap().sample(&mut rng) as f64;
            let f = forecast(&m, &one_pattern(half, y1), &ScoredCases::ObservedPlus(one_pattern(half, 0.0)), &options(200));
            // The actual result: the whole period scored at the model's parameters.
            let whole = forecast(&m, &one_pattern(2.0 * half, y1 + y2), &ScoredCases::Observed, &options(1));
            outcomes.push((f.category_probabilities, whole.most_likely_category));
        }
        for label in ["Better Than the National Rate", "Worse Than the National Rate"] {
            let expected: f64 = outcomes.iter().map(|(p, _)| p[label]).sum();
            let variance: f64 = outcomes.iter().map(|(p, _)| p[label] * (1.0 - p[label])).sum();
            let happened = outcomes.iter().filter(|(_, a)| a == label).count() as f64;
            assert!(happened > 10.0, "{label}: too rare to test ({happened})");
            assert!((expected - happened).abs() < 4.0 * variance.sqrt() + 2.0, "{label}: forecast {expected:.1}, happened {happened}");
        }
        // Within each bin of forecast probability too, not only on average.
        let table = calibration_table(&outcomes, 5);
        assert_eq!(table.iter().filter(|r| r.category == TOO_SMALL).map(|r| r.forecasts).sum::<usize>(), 600);
        for r in table.iter().filter(|r| r.forecasts >= 20) {
            assert!(r.low <= r.mean_probability && r.mean_probability <= r.high);
            let se = (r.mean_probability * (1.0 - r.mean_probability) / r.forecasts as f64).sqrt();
            assert!((r.observed_share - r.mean_probability).abs() < 4.0 * se + 0.05, "{r:?}");
        }
    }

    #[test]
    fn calibration_bins_hold_the_forecasts_of_their_probability() {
        let f = |p: f64, actual: &str| (BTreeMap::from([("a".to_string(), p), ("b".to_string(), 1.0 - p)]), actual.to_string());
        let table = calibration_table(&[f(0.05, "b"), f(0.15, "a"), f(0.95, "a"), f(1.0, "a")], 10);
        let a: Vec<(f64, usize, f64)> = table.iter().filter(|r| r.category == "a").map(|r| (r.low, r.forecasts, r.observed_share)).collect();
        assert_eq!(a, vec![(0.0, 1, 0.0), (0.1, 1, 1.0), (0.9, 2, 1.0)]);
    }
}
