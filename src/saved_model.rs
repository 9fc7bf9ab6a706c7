//! Saved national models: what a later forecast for one ASC needs from a national fit, as one
//! serde JSON file (`saved_model.json`) — the measure definition version, the variable
//! definitions, the coefficients with their covariance, the random-intercept SD, the national
//! observed rate, the estimation method and its fit status.
//!
//! A saved model checks itself: it stores the marginal (Laplace) log-likelihood of its fitting
//! data at its own estimates, and [`SavedModel::reevaluate`] recomputes it from an analysis file,
//! so a model file that does not belong to the data (or was edited) is caught. A model whose
//! measure definition version differs from the dictionary the claims are scored with is refused
//! ([`SavedModel::check_dictionary`]): its coefficients would be applied to different variables.

use crate::dictionary::{Dictionary, MeasureId};
use crate::error::{AscqrError, Result};
use crate::hglm::{AnalysisData, FitOutput};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "ascqr-saved-model/1";
pub const FILE_NAME: &str = "saved_model.json";
/// How the label of a model fitted on synthetic claims begins.
pub const SYNTHETIC_LABEL: &str = "SYNTHETIC";

/// One risk variable as the model was fitted with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedVariable {
    pub name: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedModel {
    pub format: String,
    /// Where the model came from, e.g. "synthetic national extract (ascqr synth, seed 1)". A
    /// model fitted on synthetic claims says so here, and forecasts repeat it.
    pub label: String,
    pub measure: MeasureId,
    pub definition_version: String,
    pub variables: Vec<SavedVariable>,
    /// Fixed effects, `(Intercept)` first; covariates that were constant in the fitting data are
    /// absent (they could not be estimated).
    pub coefficient_names: Vec<String>,
    pub coefficients: Vec<f64>,
    /// Row-major covariance of the coefficients, when the fit provided it.
    pub coefficient_covariance: Option<Vec<Vec<f64>>>,
    pub random_intercept_sd: f64,
    pub national_observed_rate: f64,
    pub method: String,
    pub converged: bool,
    pub termination: String,
    pub warnings: Vec<String>,
    pub cases: f64,
    pub events: f64,
    pub facilities: usize,
    pub min_cases: u32,
    /// `per_1000`, `per_100` or `ratio`: how the measure is published.
    pub rate_unit: String,
    /// Laplace marginal log-likelihood of the fitting data at these coefficients and SD.
    pub loglik_at_estimates: f64,
}

impl SavedModel {
    /// Builds the saved form of a fit of `measure` on `data`. Every covariate must be one of the
    /// measure's risk variables: a forecast rebuilds exactly those from claims.
    pub fn from_fit(label: &str, measure: MeasureId, dict: &Dictionary, data: &AnalysisData, output: &FitOutput) -> Result<SavedModel> {
        let def = dict.measure(measure);
        let known = def.variable_names();
        if let Some(other) = data.names[1..].iter().find(|n| !known.contains(n)) {
            return Err(AscqrError::InvalidOption(format!(
                "{}: covariate {other:?} is not a risk variable of {measure} (definition {}), so a forecast could not rebuild it from claims",
                data.source.display(),
                def.measure.version
            )));
        }
        let s = &output.summary;
        let beta: Vec<f64> = s.coefficients.iter().map(|c| c.estimate).collect();
        let p = beta.len();
        Ok(SavedModel {
            format: FORMAT.into(),
            label: label.into(),
            measure,
            definition_version: def.measure.version.clone(),
            variables: def.risk_variables.iter().map(|v| SavedVariable { name: v.variable.clone(), label: v.label.clone() }).collect(),
            coefficient_names: s.coefficients.iter().map(|c| c.name.clone()).collect(),
            coefficient_covariance: output.beta_cov.as_ref().map(|c| c.chunks(p).map(<[f64]>::to_vec).collect()),
            loglik_at_estimates: crate::hglm::fit::marginal_loglik(data, &beta, s.random_intercept_sd, 1),
            coefficients: beta,
            random_intercept_sd: s.random_intercept_sd,
            national_observed_rate: s.national_observed_rate,
            method: s.status.method.as_str().into(),
            converged: s.status.converged,
            termination: s.status.termination.clone(),
            warnings: s.status.warnings.clone(),
            cases: s.cases,
            events: s.events,
            facilities: s.facilities,
            min_cases: def.rules.min_cases,
            rate_unit: def.measure.rate_unit.clone(),
        })
    }

    /// Writes `dir/saved_model.json` (atomically) and returns its path.
    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(|e| AscqrError::io(dir, e))?;
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| AscqrError::Other(format!("internal: {e}")))?;
        json.push(b'\n');
        let path = dir.join(FILE_NAME);
        crate::output::write_atomic(&path, &json)?;
        Ok(path)
    }

    /// Reads `dir/saved_model.json` (or the file itself when `dir` is a file).
    pub fn load(dir: &Path) -> Result<SavedModel> {
        let path = if dir.is_dir() { dir.join(FILE_NAME) } else { dir.to_path_buf() };
        let bytes = std::fs::read(&path).map_err(|e| AscqrError::io(&path, e))?;
        let model: SavedModel = serde_json::from_slice(&bytes).map_err(|e| AscqrError::Other(format!("{}: not a saved model: {e}", path.display())))?;
        if model.format != FORMAT {
            return Err(AscqrError::Other(format!("{}: format {:?}, this engine reads {FORMAT:?}", path.display(), model.format)));
        }
        let p = model.coefficients.len();
        let bad = |what: String| Err(AscqrError::Other(format!("{}: {what}", path.display())));
        if model.coefficient_names.len() != p || model.coefficient_covariance.as_ref().is_some_and(|c| c.len() != p || c.iter().any(|r| r.len() != p)) {
            return bad("coefficient names, values and covariance disagree in size".into());
        }
        if model.coefficient_names.first().map(String::as_str) != Some("(Intercept)") {
            return bad(format!("the first coefficient must be (Intercept), found {:?}", model.coefficient_names.first()));
        }
        if let Some(k) = model.coefficients.iter().position(|b| !b.is_finite()) {
            return bad(format!("coefficient {} is {}", model.coefficient_names[k], model.coefficients[k]));
        }
        if !(model.random_intercept_sd >= 0.0 && model.random_intercept_sd.is_finite()) {
            return bad(format!("random_intercept_sd {} is not a finite number ≥ 0", model.random_intercept_sd));
        }
        if !(model.national_observed_rate > 0.0 && model.national_observed_rate < 1.0) {
            return bad(format!("national_observed_rate {} is not a proportion between 0 and 1", model.national_observed_rate));
        }
        Ok(model)
    }

    /// Whether the model was fitted on synthetic claims (its label says so first).
    pub fn is_synthetic(&self) -> bool {
        self.label.starts_with(SYNTHETIC_LABEL)
    }

    /// Refuses to score claims built with a different definition of the measure.
    pub fn check_dictionary(&self, dict: &Dictionary) -> Result<()> {
        let current = &dict.measure(self.measure).measure.version;
        if current != &self.definition_version {
            return Err(AscqrError::InvalidOption(format!(
                "the saved {} model was fitted with definition {}, but the claims would be scored with definition {current}: refit the model or use the matching dictionary",
                self.measure, self.definition_version
            )));
        }
        Ok(())
    }

    /// Reads the analysis file the model was fitted on — one row per procedure with `outcome` and
    /// `facility_id`, as `run` and `features` write it — and checks that the objective at the
    /// stored parameters is the stored one (relative 1e-8): a model that was edited, or does not
    /// belong to that file, is refused.
    pub fn verify_against(&self, analysis: &Path) -> Result<f64> {
        let spec = crate::hglm::DataSpec::analysis_file(self.coefficient_names[1..].to_vec());
        let data = AnalysisData::read(analysis, &spec)?;
        let value = self.reevaluate(&data)?;
        // Written so that a NaN on either side fails too.
        if !((value - self.loglik_at_estimates).abs() <= 1e-8 * self.loglik_at_estimates.abs().max(1.0)) {
            return Err(AscqrError::Other(format!(
                "{}: the saved {} model's log-likelihood on this file is {value:.6}, but the model stores {:.6}: the model was edited or was not fitted on this file",
                analysis.display(),
                self.measure,
                self.loglik_at_estimates
            )));
        }
        Ok(value)
    }

    /// Recomputes the Laplace log-likelihood of `data` at the stored parameters. `data` must have
    /// the model's coefficient names, in order.
    pub fn reevaluate(&self, data: &AnalysisData) -> Result<f64> {
        if data.names != self.coefficient_names {
            return Err(AscqrError::Other(format!(
                "the analysis data has columns {:?}, the saved model {:?}",
                data.names, self.coefficient_names
            )));
        }
        Ok(crate::hglm::fit::marginal_loglik(data, &self.coefficients, self.random_intercept_sd, 1))
    }
}
