//! Standardized facility results (methodology §5): predicted events use each facility's own
//! intercept estimate, expected events the average intercept (zero); the standardized ratio is
//! Σ predicted / Σ expected and the risk-standardized rate is the ratio × the national observed
//! rate. Categories compare a facility's interval with the national rate (or, for a measure
//! published as a ratio, with 1).

use crate::hglm::data::AnalysisData;
use crate::hglm::linalg::logistic;
use serde::Serialize;

/// Predicted and expected events of facility `j` at fixed effects `beta` and intercept `u`.
pub fn predicted_expected(data: &AnalysisData, j: usize, beta: &[f64], u: f64) -> (f64, f64) {
    let (r0, r1) = data.ranges[j];
    let mut pred = 0.0;
    let mut exp = 0.0;
    for i in r0..r1 {
        let eta = data.eta(i, beta);
        pred += data.n[i] * logistic(eta + u);
        exp += data.n[i] * logistic(eta);
    }
    (pred, exp)
}

/// What the interval is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compare {
    /// The risk-standardized rate against the national observed rate (ASC-12, 17, 18).
    Rate,
    /// The standardized ratio against 1 (ASC-19, published as a ratio).
    Ratio,
}

impl Compare {
    /// How a measure published in `rate_unit` (`per_1000`, `per_100`, `ratio`) is categorised.
    pub fn for_rate_unit(rate_unit: &str) -> Compare {
        if rate_unit == "ratio" {
            Compare::Ratio
        } else {
            Compare::Rate
        }
    }

    /// CMS's wording of the categories, in order better, no different, worse.
    pub fn wording(self) -> [&'static str; 3] {
        match self {
            Compare::Rate => ["Better Than the National Rate", "No Different Than the National Rate", "Worse Than the National Rate"],
            Compare::Ratio => ["Better Than Expected", "No Different Than Expected", "Worse Than Expected"],
        }
    }
}

pub const TOO_SMALL: &str = "Number of Cases Too Small";

/// CMS's rule (methodology §5): 0 (better) when the whole interval (2.5th, 97.5th percentile) is
/// below the benchmark, 2 (worse) when it is above, 1 (no different) otherwise.
pub fn category_index(interval: (f64, f64), benchmark: f64) -> usize {
    let (lo, hi) = interval;
    if hi < benchmark {
        0
    } else if lo > benchmark {
        2
    } else {
        1
    }
}

/// The performance category of an interval (2.5th, 97.5th percentile).
pub fn category(interval: (f64, f64), benchmark: f64, compare: Compare) -> &'static str {
    compare.wording()[category_index(interval, benchmark)]
}

/// Facilities per published category, in CMS's column order: better, no different, worse, too
/// small (both wordings — against the national rate or against expected — count alike).
pub fn category_counts(facilities: &[FacilityResult]) -> [u64; 4] {
    let mut counts = [0u64; 4];
    for c in facilities.iter().filter_map(|f| f.category.as_deref()) {
        let slot = if c == TOO_SMALL {
            3
        } else if c.starts_with("Better") {
            0
        } else if c.starts_with("No Different") {
            1
        } else if c.starts_with("Worse") {
            2
        } else {
            continue;
        };
        counts[slot] += 1;
    }
    counts
}

/// Percentile by SAS's default definition (PCTLDEF=5, the empirical distribution function with
/// averaging), which CMS's SAS programs use for the bootstrap interval.
pub fn percentile_sas5(sorted: &[f64], pct: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let np = n as f64 * pct / 100.0;
    let j = np.floor() as usize;
    let g = np - j as f64;
    if g > 0.0 {
        sorted[j.min(n - 1)]
    } else if j == 0 {
        sorted[0]
    } else {
        0.5 * (sorted[j - 1] + sorted[j.min(n - 1)])
    }
}

/// One facility's published numbers.
#[derive(Debug, Clone, Serialize)]
pub struct FacilityResult {
    pub facility_id: String,
    pub cases: f64,
    pub events: f64,
    pub random_intercept: f64,
    pub random_intercept_se: f64,
    pub predicted: f64,
    pub expected: f64,
    pub ratio: f64,
    pub rate: f64,
    pub interval_low: Option<f64>,
    pub interval_high: Option<f64>,
    pub category: Option<String>,
    pub replicates: Option<u32>,
}

/// Point estimates for every facility from a fit.
pub fn standardize(data: &AnalysisData, beta: &[f64], u: &[f64], u_se: &[f64]) -> Vec<FacilityResult> {
    let national = data.observed_rate();
    let counts = data.facility_counts();
    (0..data.groups.len())
        .map(|j| {
            let (pred, exp) = predicted_expected(data, j, beta, u[j]);
            let ratio = pred / exp;
            FacilityResult {
                facility_id: data.groups[j].clone(),
                cases: counts[j].0,
                events: counts[j].1,
                random_intercept: u[j],
                random_intercept_se: u_se[j],
                predicted: pred,
                expected: exp,
                ratio,
                rate: ratio * national,
                interval_low: None,
                interval_high: None,
                category: None,
                replicates: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sas_percentile_definition_5() {
        let v: Vec<f64> = (1..=10).map(|x| x as f64).collect();
        // n·p = 0.25 → not whole: the next order statistic.
        assert_eq!(percentile_sas5(&v, 2.5), 1.0);
        // n·p = 5 → whole: the average of the 5th and 6th.
        assert_eq!(percentile_sas5(&v, 50.0), 5.5);
        assert_eq!(percentile_sas5(&v, 97.5), 10.0);
        let w: Vec<f64> = (1..=1000).map(|x| x as f64).collect();
        assert_eq!(percentile_sas5(&w, 2.5), 25.5);
        assert_eq!(percentile_sas5(&w, 97.5), 975.5);
    }

    #[test]
    fn category_counts_fold_both_wordings_and_skip_facilities_without_one() {
        let f = |category: Option<&str>| FacilityResult {
            facility_id: String::new(),
            cases: 0.0,
            events: 0.0,
            random_intercept: 0.0,
            random_intercept_se: 0.0,
            predicted: 0.0,
            expected: 0.0,
            ratio: 0.0,
            rate: 0.0,
            interval_low: None,
            interval_high: None,
            category: category.map(String::from),
            replicates: None,
        };
        let facilities = [
            f(Some("Better Than the National Rate")),
            f(Some("Better Than Expected")),
            f(Some("No Different Than Expected")),
            f(Some("Worse Than the National Rate")),
            f(Some(TOO_SMALL)),
            f(Some(TOO_SMALL)),
            f(None),
        ];
        assert_eq!(category_counts(&facilities), [2, 1, 1, 2]);
    }

    #[test]
    fn categories_follow_the_whole_interval() {
        assert_eq!(category((0.001, 0.008), 0.01, Compare::Rate), "Better Than the National Rate");
        assert_eq!(category((0.012, 0.02), 0.01, Compare::Rate), "Worse Than the National Rate");
        assert_eq!(category((0.005, 0.015), 0.01, Compare::Rate), "No Different Than the National Rate");
        assert_eq!(category((1.1, 1.4), 1.0, Compare::Ratio), "Worse Than Expected");
    }
}
