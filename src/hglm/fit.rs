//! Fitting the two-level logistic model  logit P(y=1) = xβ + u_j,  u_j ~ Normal(0, σ²).
//!
//! Three methods, named for what they are (methodology §5):
//! * `rspl` — residual pseudo-likelihood, SAS GLIMMIX's default and what CMS's programs use: a
//!   doubly iterative linearization. Each outer step forms the working response
//!   z = η + (y − nμ)/(nμ(1−μ)) with weights w = nμ(1−μ) from the current linear predictor, then
//!   fits the linear mixed model z = Xβ + Zu + e, Var(e) = W⁻¹ (binomial scale fixed at 1),
//!   estimating σ² by REML; β and the BLUPs u give the next linear predictor.
//! * `laplace` and `agq` — maximum likelihood of the marginal likelihood, each facility's
//!   integral over u_j approximated by the Laplace approximation or by adaptive Gauss–Hermite
//!   quadrature centred at the conditional mode, as R's lme4 `glmer(nAGQ = 1 / N)` does.
//!
//! Everything is computed from per-facility sums over the collapsed patterns, so a bootstrap
//! replicate is a facility weighting (a facility drawn k times has weight k), never a copy of
//! the data. Per-facility work runs in parallel with rayon; the sums are always added in facility
//! order, so results are bit-identical for any number of threads.

use super::data::AnalysisData;
use super::linalg::{cholesky, cholesky_inverse, cholesky_logdet, cholesky_solve, dot, log1p_exp, logistic};
use rayon::prelude::*;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Residual pseudo-likelihood (SAS GLIMMIX default; CMS's method).
    Rspl,
    /// Maximum likelihood, Laplace approximation (lme4 nAGQ = 1).
    Laplace,
    /// Maximum likelihood, adaptive Gauss–Hermite quadrature (lme4 nAGQ = N).
    Agq,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Rspl => "rspl",
            Method::Laplace => "laplace",
            Method::Agq => "agq",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FitOptions {
    pub method: Method,
    /// Quadrature points for `agq` (lme4's nAGQ).
    pub agq_points: usize,
    /// Cap on outer iterations (RSPL) or Newton iterations (ML).
    pub max_iterations: usize,
    /// Convergence tolerance: relative change of the parameters (RSPL), Newton decrement (ML).
    pub tolerance: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions { method: Method::Rspl, agq_points: 9, max_iterations: 200, tolerance: 1e-10 }
    }
}

/// How a fit ended. Never a silent success: `converged`, `termination` and `warnings` say what
/// happened. Shared by [`Fit`] and the written summary (`model.json`).
#[derive(Debug, Clone, Serialize)]
pub struct FitStatus {
    pub method: Method,
    pub converged: bool,
    pub iterations: usize,
    pub termination: String,
    pub warnings: Vec<String>,
    /// ML: the (approximate) log-likelihood; RSPL: −2 × residual log pseudo-likelihood of the
    /// final linearized model (GLIMMIX's "-2 Res Log Pseudo-Likelihood").
    pub objective: f64,
    pub objective_name: String,
}

/// The result of one fit.
#[derive(Debug, Clone, Serialize)]
pub struct Fit {
    pub status: FitStatus,
    pub beta: Vec<f64>,
    /// NaN when the covariance of the estimates is not available (reported in warnings).
    pub beta_se: Vec<f64>,
    /// Covariance of the fixed-effect estimates, p × p row-major, when available (saved models
    /// sample from it to carry parameter uncertainty into forecasts).
    pub beta_cov: Option<Vec<f64>>,
    pub sigma: f64,
    /// Random-intercept estimate (BLUP / conditional mode) and its standard error per facility.
    pub u: Vec<f64>,
    pub u_se: Vec<f64>,
    pub log: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Fixed-effects logistic regression (starting values, and the σ = 0 boundary)

/// Weighted IRLS for the fixed-effects model. Returns β, whether it converged, and the name of
/// a covariate whose coefficient diverges (complete or quasi-complete separation), if any.
pub fn glm(data: &AnalysisData, weights: &[f64], offset_u: Option<&[f64]>) -> (Vec<f64>, bool, Option<String>, usize) {
    let p = data.p;
    let mut beta = vec![0.0; p];
    let rate = data.observed_rate().clamp(1e-6, 1.0 - 1e-6);
    beta[0] = (rate / (1.0 - rate)).ln();
    let mut converged = false;
    let mut iters = 0;
    for it in 1..=100 {
        iters = it;
        let (xtwx, xtwz) = accumulate_facilities(data, weights, |j, a, b| {
            let u = offset_u.map(|o| o[j]).unwrap_or(0.0);
            let (r0, r1) = data.ranges[j];
            for i in r0..r1 {
                let (x, nonzero) = (data.xrow(i), data.nonzero(i));
                let eta = data.eta(i, &beta) + u;
                let mu = logistic(eta).clamp(1e-12, 1.0 - 1e-12);
                let w = data.n[i] * mu * (1.0 - mu);
                let z = eta - u + (data.y[i] - data.n[i] * mu) / w;
                for (at, &r) in nonzero.iter().enumerate() {
                    let r = r as usize;
                    b[r] += w * x[r] * z;
                    for &c in &nonzero[..=at] {
                        a[r * p + c as usize] += w * x[r] * x[c as usize];
                    }
                }
            }
        });
        let xtwx = symmetrize(xtwx, p);
        let Some(l) = cholesky(&xtwx, p) else { break };
        let new = cholesky_solve(&l, p, &xtwz);
        let change = new.iter().zip(&beta).map(|(a, b)| (a - b).abs() / (b.abs() + 0.1)).fold(0.0, f64::max);
        beta = new;
        if change < 1e-10 {
            converged = true;
            break;
        }
    }
    let separated = beta.iter().enumerate().skip(1).find(|(_, b)| b.abs() > 15.0).map(|(k, _)| data.names[k].clone());
    (beta, converged, separated, iters)
}

fn symmetrize(mut a: Vec<f64>, p: usize) -> Vec<f64> {
    for r in 0..p {
        for c in 0..r {
            a[c * p + r] = a[r * p + c];
        }
    }
    a
}

/// Sums a p×p matrix and a p-vector over facilities (weighted), in facility order.
fn accumulate_facilities(
    data: &AnalysisData,
    weights: &[f64],
    f: impl Fn(usize, &mut [f64], &mut [f64]) + Sync,
) -> (Vec<f64>, Vec<f64>) {
    let p = data.p;
    let parts: Vec<(Vec<f64>, Vec<f64>)> = (0..data.groups.len())
        .into_par_iter()
        .map(|j| {
            let mut a = vec![0.0; p * p];
            let mut b = vec![0.0; p];
            if weights[j] != 0.0 {
                f(j, &mut a, &mut b);
            }
            (a, b)
        })
        .collect();
    let mut a = vec![0.0; p * p];
    let mut b = vec![0.0; p];
    for (j, (pa, pb)) in parts.iter().enumerate() {
        let m = weights[j];
        if m == 0.0 {
            continue;
        }
        for (x, y) in a.iter_mut().zip(pa) {
            *x += m * y;
        }
        for (x, y) in b.iter_mut().zip(pb) {
            *x += m * y;
        }
    }
    (a, b)
}

// ---------------------------------------------------------------------------------------------
// RSPL

/// Per-facility sums of the linearized model at the current linear predictor.
struct PseudoFacility {
    a: Vec<f64>, // Σ w x xᵀ (lower triangle)
    b: Vec<f64>, // Σ w x
    c: Vec<f64>, // Σ w x z
    s: f64,      // Σ w
    t: f64,      // Σ w z
    q: f64,      // Σ over procedures of w z²  (row level)
    logw: f64,   // Σ over procedures of ln w  (row level)
    n: f64,
}

impl PseudoFacility {
    fn empty(p: usize) -> Self {
        PseudoFacility { a: vec![0.0; p * p], b: vec![0.0; p], c: vec![0.0; p], s: 0.0, t: 0.0, q: 0.0, logw: 0.0, n: 0.0 }
    }
}

fn pseudo_facility(data: &AnalysisData, j: usize, beta: &[f64], u: f64) -> PseudoFacility {
    let p = data.p;
    let mut f = PseudoFacility { a: vec![0.0; p * p], b: vec![0.0; p], c: vec![0.0; p], s: 0.0, t: 0.0, q: 0.0, logw: 0.0, n: 0.0 };
    let (r0, r1) = data.ranges[j];
    for i in r0..r1 {
        let (x, nonzero) = (data.xrow(i), data.nonzero(i));
        let (n, y) = (data.n[i], data.y[i]);
        let eta = data.eta(i, beta) + u;
        let mu = logistic(eta).clamp(1e-12, 1.0 - 1e-12);
        let w1 = mu * (1.0 - mu);
        let w = n * w1;
        let z = eta + (y - n * mu) / w;
        for (at, &r) in nonzero.iter().enumerate() {
            let r = r as usize;
            f.b[r] += w * x[r];
            f.c[r] += w * x[r] * z;
            for &c in &nonzero[..=at] {
                f.a[r * p + c as usize] += w * x[r] * x[c as usize];
            }
        }
        f.s += w;
        f.t += w * z;
        // Row-level Σ w_r z_r² for the procedures of this pattern (y of them with outcome 1):
        // the same value whether the input was one row per procedure or collapsed.
        f.q += w * eta * eta + 2.0 * eta * (y - n * mu) + (y * (1.0 - mu).powi(2) + (n - y) * mu * mu) / w1;
        f.logw += n * w1.ln();
        f.n += n;
    }
    f
}

/// The REML problem of one linearization, as sufficient statistics.
struct RemlProblem<'a> {
    p: usize,
    facilities: &'a [PseudoFacility],
    weights: &'a [f64],
    a: Vec<f64>,
    c: Vec<f64>,
    q: f64,
    logw: f64,
    n: f64,
}

struct RemlSolution {
    objective: f64,
    beta: Vec<f64>,
    cov_beta: Option<Vec<f64>>,
    m_chol_ok: bool,
}

impl RemlProblem<'_> {
    /// −2 × REML log-likelihood of the working model at σ², and the GLS β.
    fn solve(&self, sigma2: f64) -> RemlSolution {
        let p = self.p;
        let mut m = self.a.clone();
        let mut v = self.c.clone();
        let mut zvz = self.q;
        let mut logdet_v = -self.logw;
        for (f, &wt) in self.facilities.iter().zip(self.weights) {
            if wt == 0.0 {
                continue;
            }
            let k = sigma2 / (1.0 + sigma2 * f.s);
            logdet_v += wt * (sigma2 * f.s).ln_1p();
            for r in 0..p {
                v[r] -= wt * k * f.b[r] * f.t;
                for c in 0..=r {
                    m[r * p + c] -= wt * k * f.b[r] * f.b[c];
                }
            }
            zvz -= wt * k * f.t * f.t;
        }
        let m = symmetrize(m, p);
        match cholesky(&m, p) {
            Some(l) => {
                let beta = cholesky_solve(&l, p, &v);
                let rvr = zvz - dot(&v, &beta);
                let objective = logdet_v + cholesky_logdet(&l, p) + rvr + (self.n - p as f64) * (2.0 * std::f64::consts::PI).ln();
                RemlSolution { objective, beta, cov_beta: Some(cholesky_inverse(&l, p)), m_chol_ok: true }
            }
            None => RemlSolution { objective: f64::INFINITY, beta: vec![f64::NAN; p], cov_beta: None, m_chol_ok: false },
        }
    }
}

impl RemlProblem<'_> {
    /// d(−2 ℓ_R)/dσ² at σ² (β profiled out):
    /// Σ_j m_j [ s_j/(1+σ²s_j) − (b_jᵀ M⁻¹ b_j + (t_j − b_jᵀβ̂)²)/(1+σ²s_j)² ].
    fn score(&self, sigma2: f64) -> f64 {
        let sol = self.solve(sigma2);
        let Some(cov) = sol.cov_beta else { return f64::NAN };
        let mut d = 0.0;
        for (f, &wt) in self.facilities.iter().zip(self.weights) {
            if wt == 0.0 {
                continue;
            }
            let a = 1.0 + sigma2 * f.s;
            let r = f.t - dot(&f.b, &sol.beta);
            d += wt * (f.s / a - (super::linalg::quad_form(&cov, self.p, &f.b) + r * r) / (a * a));
        }
        d
    }
}

/// The REML score as a function for argmin's Brent root finder.
struct RemlScore<'a, 'b>(&'a RemlProblem<'b>);

impl argmin::core::CostFunction for RemlScore<'_, '_> {
    type Param = f64;
    type Output = f64;
    fn cost(&self, sigma2: &f64) -> Result<f64, argmin::core::Error> {
        Ok(self.0.score(*sigma2))
    }
}

/// Minimizes the REML objective over σ² ≥ 0: a bracket of the minimum (around the previous
/// estimate, or from a coarse scan of ln σ²), then the root of the REML score in that bracket by
/// Brent's method (argmin), so σ² is found to machine precision rather than to the flatness of
/// the objective. Returns σ² and whether it lies on the boundary σ² = 0.
fn reml_sigma2(problem: &RemlProblem<'_>, previous: Option<f64>) -> (f64, bool) {
    use argmin::core::{Executor, State};
    use argmin::solver::brent::BrentRoot;
    let bracket = |lo: f64, hi: f64| -> Option<(f64, f64)> {
        let (a, b) = (problem.score(lo), problem.score(hi));
        (a < 0.0 && b > 0.0).then_some((lo, hi))
    };
    let mut found = previous.filter(|s2| *s2 > 1e-10).and_then(|s2| bracket(s2 / 4.0, s2 * 4.0));
    if found.is_none() {
        // Coarse scan of the objective in ln σ², then the sign change of the score around the
        // best grid point.
        let grid: Vec<f64> = (0..=60).map(|k| (-22.0 + 0.5 * k as f64).exp()).collect();
        let vals: Vec<f64> = grid.iter().map(|g| problem.solve(*g).objective).collect();
        let best = vals.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
        let at_zero = problem.solve(0.0).objective;
        if best == 0 && at_zero <= vals[0] {
            return (0.0, true);
        }
        let lo = if best == 0 { 0.0 } else { grid[best - 1] };
        let hi = grid[(best + 1).min(grid.len() - 1)];
        found = bracket(lo, hi);
        if found.is_none() {
            // The score does not change sign: the minimum is at the smallest σ² examined.
            return if at_zero <= vals[best] { (0.0, true) } else { (grid[best], false) };
        }
    }
    let (lo, hi) = found.expect("bracket found");
    let solver = BrentRoot::new(lo, hi, 1e-15 * hi.max(1e-300));
    match Executor::new(RemlScore(problem), solver).configure(|s| s.max_iters(200)).run() {
        Ok(res) => {
            let s2 = res.state().get_best_param().copied().unwrap_or(lo);
            if problem.solve(0.0).objective <= problem.solve(s2).objective {
                (0.0, true)
            } else {
                (s2, false)
            }
        }
        Err(_) => (lo, false),
    }
}

fn fit_rspl(data: &AnalysisData, weights: &[f64], opts: &FitOptions, start: Option<&Fit>) -> Fit {
    let p = data.p;
    let g = data.groups.len();
    let mut log = Vec::new();
    let mut warnings = Vec::new();
    let (mut beta, mut u, mut sigma2) = match start {
        Some(s) if s.beta.iter().all(|b| b.is_finite()) => (s.beta.clone(), s.u.clone(), Some(s.sigma * s.sigma)),
        _ => {
            let (b, ok, separated, it) = glm(data, weights, None);
            log.push(format!("fixed-effects start: {} IRLS iterations{}", it, if ok { "" } else { ", not converged" }));
            if let Some(name) = separated {
                warnings.push(format!("complete or quasi-complete separation: the coefficient of `{name}` diverges"));
            }
            (b, vec![0.0; g], None)
        }
    };
    let mut converged = false;
    let mut iterations = 0;
    let mut boundary = false;
    let mut objective = f64::NAN;
    let mut cov_beta = None;
    let mut facilities: Vec<PseudoFacility> = Vec::new();
    for it in 1..=opts.max_iterations {
        iterations = it;
        // Facilities a bootstrap replicate did not draw (weight 0) contribute nothing.
        facilities = (0..g)
            .into_par_iter()
            .map(|j| if weights[j] == 0.0 { PseudoFacility::empty(p) } else { pseudo_facility(data, j, &beta, u[j]) })
            .collect();
        let mut problem = RemlProblem { p, facilities: &facilities, weights, a: vec![0.0; p * p], c: vec![0.0; p], q: 0.0, logw: 0.0, n: 0.0 };
        for (f, &wt) in facilities.iter().zip(weights) {
            if wt == 0.0 {
                continue;
            }
            for (x, y) in problem.a.iter_mut().zip(&f.a) {
                *x += wt * y;
            }
            for (x, y) in problem.c.iter_mut().zip(&f.c) {
                *x += wt * y;
            }
            problem.q += wt * f.q;
            problem.logw += wt * f.logw;
            problem.n += wt * f.n;
        }
        let (s2, at_boundary) = reml_sigma2(&problem, sigma2);
        boundary = at_boundary;
        let sol = problem.solve(s2);
        if !sol.m_chol_ok {
            warnings.push("X'V^-1 X is not positive definite: the fixed effects are not estimable (collinear covariates?)".into());
            objective = f64::NAN;
            break;
        }
        let new_u: Vec<f64> = facilities
            .iter()
            .map(|f| {
                let k = s2 / (1.0 + s2 * f.s);
                k * (f.t - dot(&f.b, &sol.beta))
            })
            .collect();
        let change_beta = sol.beta.iter().zip(&beta).map(|(a, b)| (a - b).abs() / (b.abs().max(1e-3))).fold(0.0, f64::max);
        let change_s2 = match sigma2 {
            Some(old) => (s2 - old).abs() / old.max(1e-6),
            None => f64::INFINITY,
        };
        log.push(format!(
            "outer {it}: -2 res log PL = {:.6}, sigma^2 = {:.6e}, max rel change beta {:.2e}, sigma^2 {:.2e}",
            sol.objective, s2, change_beta, change_s2
        ));
        beta = sol.beta;
        u = new_u;
        sigma2 = Some(s2);
        objective = sol.objective;
        cov_beta = sol.cov_beta;
        if change_beta < opts.tolerance && change_s2 < opts.tolerance.max(1e-9) {
            converged = true;
            break;
        }
    }
    let s2 = sigma2.unwrap_or(0.0);
    let termination = if converged {
        "converged: relative change of the fixed effects and the variance below tolerance".to_string()
    } else if objective.is_nan() {
        "stopped: the linearized model could not be solved".to_string()
    } else {
        format!("iteration cap reached ({} outer iterations) before convergence", opts.max_iterations)
    };
    if !converged {
        warnings.push(termination.clone());
    }
    if boundary {
        warnings.push("boundary fit: the random-intercept variance is estimated at zero".into());
    }
    let beta_se = match &cov_beta {
        Some(c) => (0..p).map(|k| c[k * p + k].sqrt()).collect(),
        None => vec![f64::NAN; p],
    };
    // Prediction standard errors of the BLUPs from the mixed-model equations:
    // Var(û_j − u_j) = 1/d_j + b_jᵀ (X'V⁻¹X)⁻¹ b_j / d_j², d_j = Σw + 1/σ².
    let u_se: Vec<f64> = facilities
        .iter()
        .map(|f| {
            if s2 <= 0.0 {
                return 0.0;
            }
            let d = f.s + 1.0 / s2;
            let extra = cov_beta.as_ref().map(|c| super::linalg::quad_form(c, p, &f.b)).unwrap_or(0.0);
            (1.0 / d + extra / (d * d)).sqrt()
        })
        .collect();
    Fit {
        status: FitStatus {
            method: Method::Rspl,
            converged,
            iterations,
            termination,
            warnings,
            objective,
            objective_name: "-2 res log pseudo-likelihood".into(),
        },
        beta,
        beta_se,
        beta_cov: cov_beta,
        sigma: s2.sqrt(),
        u,
        u_se,
        log,
    }
}

// ---------------------------------------------------------------------------------------------
// Maximum likelihood: Laplace and adaptive Gauss–Hermite quadrature

/// Gauss–Hermite nodes z_k and ln(w_k e^{z_k²}) for ∫ e^{−z²} f(z) dz, by Golub–Welsch-free
/// Newton iteration on the Hermite polynomial (the classical Numerical Recipes scheme).
pub fn gauss_hermite(k: usize) -> Vec<(f64, f64)> {
    if k <= 1 {
        return vec![(0.0, 0.5 * std::f64::consts::PI.ln())];
    }
    let n = k;
    let pim4 = std::f64::consts::PI.powf(-0.25);
    let mut x = vec![0.0; n];
    let mut w = vec![0.0; n];
    let m = n.div_ceil(2);
    let mut z = 0.0f64;
    for i in 0..m {
        z = match i {
            0 => (2.0 * n as f64 + 1.0).sqrt() - 1.85575 * (2.0 * n as f64 + 1.0).powf(-0.166_67),
            1 => z - 1.14 * (n as f64).powf(0.426) / z,
            2 => 1.86 * z - 0.86 * x[0],
            3 => 1.91 * z - 0.91 * x[1],
            _ => 2.0 * z - x[i - 2],
        };
        let mut pp = 0.0;
        for _ in 0..100 {
            let mut p1 = pim4;
            let mut p2 = 0.0;
            for j in 0..n {
                let p3 = p2;
                p2 = p1;
                p1 = z * (2.0 / (j as f64 + 1.0)).sqrt() * p2 - ((j as f64) / (j as f64 + 1.0)).sqrt() * p3;
            }
            pp = (2.0 * n as f64).sqrt() * p2;
            let z1 = z;
            z = z1 - p1 / pp;
            if (z - z1).abs() <= 1e-15 {
                break;
            }
        }
        x[i] = z;
        x[n - 1 - i] = -z;
        w[i] = 2.0 / (pp * pp);
        w[n - 1 - i] = w[i];
    }
    let mut out: Vec<(f64, f64)> = x.iter().zip(&w).map(|(&z, &wt)| (z, wt.ln() + z * z)).collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

/// One facility's contribution at (β, σ): log L_j, its gradient (β then σ), the conditional
/// mode û_j and the curvature H_j there.
fn facility_ml(data: &AnalysisData, j: usize, beta: &[f64], sigma: f64, nodes: &[(f64, f64)], grad: &mut [f64]) -> (f64, f64, f64) {
    let p = data.p;
    let (r0, r1) = data.ranges[j];
    let eta0: Vec<f64> = (r0..r1).map(|i| data.eta(i, beta)).collect();
    let s2 = sigma * sigma;
    let g_of = |u: f64| -> f64 {
        let mut g = -u * u / (2.0 * s2);
        for (k, i) in (r0..r1).enumerate() {
            let eta = eta0[k] + u;
            g += data.y[i] * eta - data.n[i] * log1p_exp(eta);
        }
        g
    };
    // Conditional mode by safeguarded Newton.
    let mut u = 0.0;
    let mut gu_val = g_of(u);
    for _ in 0..200 {
        let mut gu = -u / s2;
        let mut h = 1.0 / s2;
        for (k, i) in (r0..r1).enumerate() {
            let mu = logistic(eta0[k] + u);
            gu += data.y[i] - data.n[i] * mu;
            h += data.n[i] * mu * (1.0 - mu);
        }
        let mut step = gu / h;
        let mut accepted = false;
        for _ in 0..50 {
            let cand = g_of(u + step);
            if cand >= gu_val - 1e-12 * gu_val.abs() {
                u += step;
                gu_val = cand;
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if !accepted || step.abs() < 1e-13 * (1.0 + u.abs()) {
            break;
        }
    }
    // Curvature and implicit derivatives at the mode.
    let mut h = 1.0 / s2;
    let mut nwx = vec![0.0; p];
    let mut nw12 = Vec::with_capacity(r1 - r0);
    for (k, i) in (r0..r1).enumerate() {
        let mu = logistic(eta0[k] + u);
        let nw = data.n[i] * mu * (1.0 - mu);
        h += nw;
        let x = data.xrow(i);
        for &r in data.nonzero(i) {
            nwx[r as usize] += nw * x[r as usize];
        }
        nw12.push(nw * (1.0 - 2.0 * mu));
    }
    let du_dbeta: Vec<f64> = nwx.iter().map(|v| -v / h).collect();
    let du_dsigma = 2.0 * u / (sigma * s2 * h);
    let mut dh_dbeta = vec![0.0; p];
    let mut dh_dsigma = -2.0 / (sigma * s2);
    for (k, i) in (r0..r1).enumerate() {
        let x = data.xrow(i);
        for r in 0..p {
            dh_dbeta[r] += nw12[k] * (x[r] + du_dbeta[r]);
        }
        dh_dsigma += nw12[k] * du_dsigma;
    }
    let sd = 1.0 / h.sqrt();
    // d ln s = −½ dH / H.
    let dlns_dbeta: Vec<f64> = dh_dbeta.iter().map(|v| -0.5 * v / h).collect();
    let dlns_dsigma = -0.5 * dh_dsigma / h;

    // Quadrature terms a_k = ln(w_k e^{z²}) + g(û + √2 s z_k).
    let sqrt2 = std::f64::consts::SQRT_2;
    let terms: Vec<(f64, f64, f64)> = nodes.iter().map(|&(z, lw)| (z, lw, u + sqrt2 * sd * z)).collect();
    let a: Vec<f64> = terms.iter().map(|&(_, lw, uk)| lw + g_of(uk)).collect();
    let amax = a.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = a.iter().map(|v| (v - amax).exp()).sum();
    let lse = amax + sum.ln();
    let loglik = -0.5 * (2.0 * std::f64::consts::PI * s2).ln() + 0.5 * 2f64.ln() + sd.ln() + lse;

    grad.iter_mut().for_each(|g| *g = 0.0);
    for r in 0..p {
        grad[r] = dlns_dbeta[r];
    }
    grad[p] = -1.0 / sigma + dlns_dsigma;
    for (kk, &(z, _, uk)) in terms.iter().enumerate() {
        let pi_k = (a[kk] - lse).exp();
        if pi_k == 0.0 {
            continue;
        }
        let mut gb = vec![0.0; p];
        let mut gu = -uk / s2;
        for (k, i) in (r0..r1).enumerate() {
            let mu = logistic(eta0[k] + uk);
            let resid = data.y[i] - data.n[i] * mu;
            gu += resid;
            let x = data.xrow(i);
            for &r in data.nonzero(i) {
                gb[r as usize] += resid * x[r as usize];
            }
        }
        let gs = uk * uk / (sigma * s2);
        for r in 0..p {
            let duk = du_dbeta[r] + sqrt2 * z * sd * dlns_dbeta[r];
            grad[r] += pi_k * (gb[r] + gu * duk);
        }
        let duk_s = du_dsigma + sqrt2 * z * sd * dlns_dsigma;
        grad[p] += pi_k * (gs + gu * duk_s);
    }
    (loglik, u, h)
}

/// Weighted log-likelihood and gradient over all facilities, plus modes and curvatures.
fn ml_eval(data: &AnalysisData, weights: &[f64], theta: &[f64], nodes: &[(f64, f64)]) -> (f64, Vec<f64>, Vec<(f64, f64)>) {
    let p = data.p;
    let beta = &theta[..p];
    let sigma = theta[p];
    let parts: Vec<(f64, Vec<f64>, f64, f64)> = (0..data.groups.len())
        .into_par_iter()
        .map(|j| {
            let mut g = vec![0.0; p + 1];
            if weights[j] == 0.0 {
                return (0.0, g, 0.0, 0.0);
            }
            let (ll, u, h) = facility_ml(data, j, beta, sigma, nodes, &mut g);
            (ll, g, u, h)
        })
        .collect();
    let mut ll = 0.0;
    let mut grad = vec![0.0; p + 1];
    let mut modes = Vec::with_capacity(parts.len());
    for (j, (l, g, u, h)) in parts.into_iter().enumerate() {
        let m = weights[j];
        if m != 0.0 {
            ll += m * l;
            for (x, y) in grad.iter_mut().zip(&g) {
                *x += m * y;
            }
        }
        modes.push((u, h));
    }
    (ll, grad, modes)
}

/// Hessian of the log-likelihood by central differences of the analytic gradient.
fn ml_hessian(data: &AnalysisData, weights: &[f64], theta: &[f64], nodes: &[(f64, f64)]) -> Vec<f64> {
    let d = theta.len();
    let mut hess = vec![0.0; d * d];
    for k in 0..d {
        let h = 1e-5 * theta[k].abs().max(1.0);
        let mut tp = theta.to_vec();
        let mut tm = theta.to_vec();
        tp[k] += h;
        tm[k] -= h;
        let gp = ml_eval(data, weights, &tp, nodes).1;
        let gm = ml_eval(data, weights, &tm, nodes).1;
        for r in 0..d {
            hess[r * d + k] = (gp[r] - gm[r]) / (2.0 * h);
        }
    }
    for r in 0..d {
        for c in 0..r {
            let v = 0.5 * (hess[r * d + c] + hess[c * d + r]);
            hess[r * d + c] = v;
            hess[c * d + r] = v;
        }
    }
    hess
}

fn fit_ml(data: &AnalysisData, weights: &[f64], opts: &FitOptions, start: Option<&Fit>) -> Fit {
    let p = data.p;
    let nodes = gauss_hermite(if opts.method == Method::Laplace { 1 } else { opts.agq_points.max(1) });
    let mut log = Vec::new();
    let mut warnings = Vec::new();
    // Start from the given fit, or from RSPL (close to the ML optimum, and cheap).
    let start_fit;
    let start = match start {
        Some(s) => s,
        None => {
            start_fit = fit_rspl(data, weights, &FitOptions { method: Method::Rspl, max_iterations: 50, tolerance: 1e-6, ..opts.clone() }, None);
            log.push(format!("start from RSPL: sigma = {:.6}, {} outer iterations", start_fit.sigma, start_fit.status.iterations));
            warnings.extend(start_fit.status.warnings.iter().filter(|w| w.contains("separation")).cloned());
            &start_fit
        }
    };
    let mut theta: Vec<f64> = start.beta.clone();
    theta.push(if start.sigma > 1e-3 { start.sigma } else { 0.1 });

    let mut converged = false;
    let mut boundary = false;
    let mut iterations = 0;
    let (mut ll, mut grad, _) = ml_eval(data, weights, &theta, &nodes);
    let mut termination = String::new();
    // Curvature of −ℓ: a finite-difference Hessian, refreshed after a damped step and otherwise
    // carried forward by BFGS updates (the start is close, so one evaluation usually suffices).
    let mut curvature: Option<Vec<f64>> = None;
    for it in 1..=opts.max_iterations {
        iterations = it;
        // Newton step on −ℓ; Levenberg damping when the system is not positive definite,
        // halving until the likelihood improves.
        let d = p + 1;
        let neg: Vec<f64> = match curvature.take() {
            Some(c) => c,
            None => ml_hessian(data, weights, &theta, &nodes).iter().map(|v| -v).collect(),
        };
        let mut lambda = 0.0;
        let mut chol = None;
        for _ in 0..40 {
            let mut m = neg.clone();
            for k in 0..d {
                m[k * d + k] += lambda * (1.0 + neg[k * d + k].abs());
            }
            if let Some(l) = cholesky(&m, d) {
                chol = Some(l);
                break;
            }
            lambda = if lambda == 0.0 { 1e-6 } else { lambda * 10.0 };
        }
        let Some(l) = chol else {
            termination = "stopped: no positive-definite Newton system could be formed".into();
            break;
        };
        let step = cholesky_solve(&l, d, &grad);
        let decrement = dot(&step, &grad);
        if decrement.abs() < opts.tolerance {
            converged = true;
            log.push(format!("Newton {it}: loglik = {ll:.8}, decrement {decrement:.2e}: converged"));
            break;
        }
        let mut t = 1.0;
        let mut improved = false;
        for _ in 0..40 {
            let cand: Vec<f64> = theta.iter().zip(&step).map(|(a, s)| a + t * s).collect();
            let (cll, cgrad, _) = ml_eval(data, weights, &cand, &nodes);
            if cll.is_finite() && cll >= ll - 1e-12 * ll.abs() {
                if t == 1.0 && lambda == 0.0 {
                    // BFGS update of the curvature of −ℓ with s = Δθ, y = −Δ∇ℓ.
                    let sv: Vec<f64> = cand.iter().zip(&theta).map(|(a, b)| a - b).collect();
                    let yv: Vec<f64> = cgrad.iter().zip(&grad).map(|(a, b)| b - a).collect();
                    let ys = dot(&yv, &sv);
                    let bs: Vec<f64> = (0..d).map(|r| (0..d).map(|c| neg[r * d + c] * sv[c]).sum()).collect();
                    let sbs = dot(&sv, &bs);
                    if ys > 1e-12 * sbs.abs().max(1e-300) && sbs > 0.0 {
                        let mut b = neg.clone();
                        for r in 0..d {
                            for c in 0..d {
                                b[r * d + c] += yv[r] * yv[c] / ys - bs[r] * bs[c] / sbs;
                            }
                        }
                        curvature = Some(b);
                    }
                }
                theta = cand;
                ll = cll;
                grad = cgrad;
                improved = true;
                break;
            }
            t *= 0.5;
        }
        log.push(format!("Newton {it}: loglik = {ll:.8}, sigma = {:.6}, decrement {decrement:.2e}, step {t}", theta[p].abs()));
        if !improved {
            // No ascent along the Newton direction: at the optimum to working precision.
            converged = decrement.abs() < 1e-6;
            termination = if converged {
                "converged: no further improvement along the Newton direction".into()
            } else {
                "stopped: line search failed to improve the likelihood".into()
            };
            break;
        }
        if theta[p].abs() < 1e-5 {
            boundary = true;
            break;
        }
    }
    if boundary {
        // σ → 0: the model is the fixed-effects logistic regression.
        let (b, ok, _, _) = glm(data, weights, None);
        theta = b;
        theta.push(0.0);
        ll = glm_loglik(data, weights, &theta[..p]);
        converged = ok;
        warnings.push("boundary fit: the random-intercept variance is estimated at zero".into());
        termination = "converged at the boundary sigma = 0 (fixed-effects fit)".into();
    }
    if termination.is_empty() {
        termination = if converged {
            "converged: Newton decrement below tolerance".into()
        } else {
            format!("iteration cap reached ({} Newton iterations) before convergence", opts.max_iterations)
        };
    }
    if !converged {
        warnings.push(termination.clone());
    }
    // Standard errors from the inverse of the observed information at the optimum.
    let sigma = theta[p].abs();
    let mut beta_se = vec![f64::NAN; p];
    let mut beta_cov = None;
    let (u, u_se) = if sigma > 0.0 {
        let mut th = theta.clone();
        th[p] = sigma;
        let hess = ml_hessian(data, weights, &th, &nodes);
        let d = p + 1;
        let neg: Vec<f64> = hess.iter().map(|v| -v).collect();
        match cholesky(&neg, d) {
            Some(l) => {
                let inv = cholesky_inverse(&l, d);
                for k in 0..p {
                    beta_se[k] = inv[k * d + k].sqrt();
                }
                // The β block of the inverse information over (β, σ).
                beta_cov = Some((0..p).flat_map(|r| inv[r * d..r * d + p].to_vec()).collect());
            }
            None => warnings.push("the Hessian at the optimum is not positive definite: standard errors are not available".into()),
        }
        let (_, _, modes) = ml_eval(data, weights, &th, &nodes);
        (modes.iter().map(|m| m.0).collect(), modes.iter().map(|m| 1.0 / m.1.sqrt()).collect())
    } else {
        let xtwx = fixed_information(data, weights, &theta[..p]);
        if let Some(l) = cholesky(&xtwx, p) {
            let inv = cholesky_inverse(&l, p);
            for k in 0..p {
                beta_se[k] = inv[k * p + k].sqrt();
            }
            beta_cov = Some(inv);
        }
        (vec![0.0; data.groups.len()], vec![0.0; data.groups.len()])
    };
    Fit {
        status: FitStatus {
            method: opts.method,
            converged,
            iterations,
            termination,
            warnings,
            objective: ll,
            objective_name: "log-likelihood".into(),
        },
        beta: theta[..p].to_vec(),
        beta_se,
        beta_cov,
        sigma,
        u,
        u_se,
        log,
    }
}

fn glm_loglik(data: &AnalysisData, weights: &[f64], beta: &[f64]) -> f64 {
    let mut ll = 0.0;
    for (j, &(r0, r1)) in data.ranges.iter().enumerate() {
        let m = weights[j];
        if m == 0.0 {
            continue;
        }
        for i in r0..r1 {
            let eta = data.eta(i, beta);
            ll += m * (data.y[i] * eta - data.n[i] * log1p_exp(eta));
        }
    }
    ll
}

fn fixed_information(data: &AnalysisData, weights: &[f64], beta: &[f64]) -> Vec<f64> {
    let p = data.p;
    let (a, _) = accumulate_facilities(data, weights, |j, a, _| {
        let (r0, r1) = data.ranges[j];
        for i in r0..r1 {
            let (x, nonzero) = (data.xrow(i), data.nonzero(i));
            let mu = logistic(data.eta(i, beta));
            let w = data.n[i] * mu * (1.0 - mu);
            for (at, &r) in nonzero.iter().enumerate() {
                let r = r as usize;
                for &c in &nonzero[..=at] {
                    a[r * p + c as usize] += w * x[r] * x[c as usize];
                }
            }
        }
    });
    symmetrize(a, p)
}

/// Fits the model. `weights` are facility multiplicities (all 1 for an ordinary fit); `start`
/// warm-starts from an earlier fit (the bootstrap starts each replicate from the full fit).
/// The marginal log-likelihood at (β, σ): Laplace (`agq_points` = 1) or adaptive Gauss–Hermite
/// quadrature — the ML objective, evaluated without fitting (a saved model re-checks itself with it).
pub fn marginal_loglik(data: &AnalysisData, beta: &[f64], sigma: f64, agq_points: usize) -> f64 {
    let mut theta = beta.to_vec();
    theta.push(sigma);
    let weights = vec![1.0; data.groups.len()];
    ml_eval(data, &weights, &theta, &gauss_hermite(agq_points.max(1))).0
}

pub fn fit(data: &AnalysisData, weights: Option<&[f64]>, opts: &FitOptions, start: Option<&Fit>) -> Fit {
    let ones;
    let weights = match weights {
        Some(w) => w,
        None => {
            ones = vec![1.0; data.groups.len()];
            &ones
        }
    };
    match opts.method {
        Method::Rspl => fit_rspl(data, weights, opts, start),
        Method::Laplace | Method::Agq => fit_ml(data, weights, opts, start),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_hermite_integrates_polynomials_exactly() {
        for k in [2usize, 5, 9, 20] {
            let nodes = gauss_hermite(k);
            // ∫ e^{-z²} z² dz = √π / 2.
            let m0: f64 = nodes.iter().map(|(z, lw)| (lw - z * z).exp()).sum();
            let m2: f64 = nodes.iter().map(|(z, lw)| (lw - z * z).exp() * z * z).sum();
            assert!((m0 - std::f64::consts::PI.sqrt()).abs() < 1e-10, "k={k}");
            assert!((m2 - std::f64::consts::PI.sqrt() / 2.0).abs() < 1e-10, "k={k}");
        }
    }

    fn toy() -> AnalysisData {
        // Ten facilities, one covariate, different event rates.
        let mut rows = Vec::new();
        for j in 0..10 {
            for x in [0.0, 1.0] {
                let n = 20.0 + j as f64;
                let y = ((j as f64 * 0.7 + x * 3.0) % 9.0).floor() + 1.0;
                rows.push((format!("f{j:02}"), vec![x], n, y));
            }
        }
        AnalysisData::from_rows("toy".into(), vec!["x".into()], rows).unwrap()
    }

    #[test]
    fn the_analytic_gradient_matches_finite_differences() {
        let d = toy();
        let w = vec![1.0; d.groups.len()];
        for k in [1usize, 5] {
            let nodes = gauss_hermite(k);
            let theta = vec![-1.2, 0.4, 0.5];
            let (_, g, _) = ml_eval(&d, &w, &theta, &nodes);
            for i in 0..3 {
                let h = 1e-6;
                let mut tp = theta.clone();
                let mut tm = theta.clone();
                tp[i] += h;
                tm[i] -= h;
                let fd = (ml_eval(&d, &w, &tp, &nodes).0 - ml_eval(&d, &w, &tm, &nodes).0) / (2.0 * h);
                assert!((fd - g[i]).abs() < 1e-5 * (1.0 + fd.abs()), "k={k} i={i}: fd {fd} vs analytic {}", g[i]);
            }
        }
    }

    #[test]
    fn a_facility_weight_of_two_equals_duplicating_the_facility() {
        let d = toy();
        let mut w = vec![1.0; d.groups.len()];
        w[3] = 2.0;
        w[7] = 0.0;
        let weighted = fit(&d, Some(&w), &FitOptions::default(), None);
        // The same data with facility 3 copied under a new id and facility 7 dropped.
        let mut rows = Vec::new();
        for (j, &(a, b)) in d.ranges.iter().enumerate() {
            if j == 7 {
                continue;
            }
            for i in a..b {
                rows.push((d.groups[j].clone(), d.xrow(i)[1..].to_vec(), d.n[i], d.y[i]));
                if j == 3 {
                    rows.push(("zz_copy".into(), d.xrow(i)[1..].to_vec(), d.n[i], d.y[i]));
                }
            }
        }
        let copied = AnalysisData::from_rows("copy".into(), vec!["x".into()], rows).unwrap();
        let direct = fit(&copied, None, &FitOptions::default(), None);
        for (a, b) in weighted.beta.iter().zip(&direct.beta) {
            assert!((a - b).abs() < 1e-8, "{a} vs {b}");
        }
        assert!((weighted.sigma - direct.sigma).abs() < 1e-8);
    }
}
