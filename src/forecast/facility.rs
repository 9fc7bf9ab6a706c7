//! `ascqr forecast`: one ASC's cohort and risk variables, built from its own claims with the
//! dictionary its saved national model was fitted with, scored against that model — as it is,
//! projected to a full period, or changed (what-if).

use super::{forecast, Forecast, ForecastOptions, Pattern, ScoredCases};
use crate::cohort::Period;
use crate::dictionary::{Dictionary, MeasureId};
use crate::error::{AscqrError, PolarsContext, Result};
use crate::saved_model::{SavedModel, FILE_NAME};
use polars::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Changes to the facility's cases before scoring. All empty: the facility as it is.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WhatIf {
    /// The observed cases with this many visits instead of the observed number.
    pub visits: Option<f64>,
    /// The period will have this many cases in all; the ones not seen yet have the observed
    /// case mix and outcomes simulated from the facility's intercept posterior.
    pub project_cases: Option<f64>,
    /// Score this many cases (the observed mix) instead of the observed ones.
    pub cases: Option<f64>,
    /// Score the observed cases with a 0/1 risk variable set for this share of them.
    pub shares: Vec<(String, f64)>,
}

impl WhatIf {
    pub fn is_as_is(&self) -> bool {
        self.visits.is_none() && self.project_cases.is_none() && self.cases.is_none() && self.shares.is_empty()
    }
}

/// What `ascqr forecast` asks for.
#[derive(Debug, Clone)]
pub struct ForecastRequest {
    /// A `saved_model.json`, a folder holding one, or a folder of measure folders holding them
    /// (`models/synthetic-national`, or a run folder's `<measure>/model/`).
    pub model: PathBuf,
    pub claims: PathBuf,
    /// The ASC's NPI; needed only when the extract has procedures of more than one ASC.
    pub facility: Option<String>,
    /// The performance period; default each measure's length ending with `through_year`.
    pub period: Option<String>,
    /// Default: the last year with carrier claims in the extract.
    pub through_year: Option<i32>,
    pub what_if: WhatIf,
    pub options: ForecastOptions,
    /// The analysis file the (single) model was fitted on: its objective is re-evaluated at the
    /// stored parameters first, and the forecast refused when it differs.
    pub model_data: Option<PathBuf>,
}

/// One measure's forecast as written to `forecast.json`.
#[derive(Debug, Clone, Serialize)]
pub struct FacilityForecast {
    pub facility: String,
    pub measure: MeasureId,
    pub period: (String, String),
    pub definition_version: String,
    pub model_file: String,
    pub what_if: WhatIf,
    /// What the user must know about the saved model: synthetic, not converged.
    pub model_warnings: Vec<String>,
    /// The rate and interval in the unit CMS publishes (per 1,000, per 100, or the ratio).
    pub published: Published,
    #[serde(flatten)]
    pub forecast: Forecast,
}

#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub unit: String,
    pub value: String,
    pub interval: (String, String),
    pub national: String,
}

impl Published {
    /// "N/A" where CMS would publish no rate: no case to score, or certainly too few.
    fn of(f: &Forecast) -> Published {
        let unit = f.rate_unit.clone();
        let unpublished = f.scored_cases == 0.0 || f.category_probabilities.get(crate::standardize::TOO_SMALL) == Some(&1.0);
        let show = |v: f64| if unpublished { "N/A".to_string() } else { crate::report::published_rate(v, &unit) };
        if unit == "ratio" {
            Published { value: show(f.ratio), interval: (show(f.ratio_interval.0), show(f.ratio_interval.1)), national: crate::report::published_rate(1.0, &unit), unit }
        } else {
            Published { value: show(f.rate), interval: (show(f.interval.0), show(f.interval.1)), national: crate::report::published_rate(f.national_observed_rate, &unit), unit }
        }
    }
}

/// The saved models `path` names, with the file each came from.
pub fn find_models(path: &Path) -> Result<Vec<(PathBuf, SavedModel)>> {
    let direct = if path.is_dir() { path.join(FILE_NAME) } else { path.to_path_buf() };
    if direct.is_file() {
        return Ok(vec![(direct.clone(), SavedModel::load(&direct)?)]);
    }
    let mut found = Vec::new();
    for m in MeasureId::ALL {
        for candidate in [path.join(m.as_str()).join(FILE_NAME), path.join(m.as_str()).join("model").join(FILE_NAME)] {
            if candidate.is_file() {
                found.push((candidate.clone(), SavedModel::load(&candidate)?));
                break;
            }
        }
    }
    if found.is_empty() {
        return Err(AscqrError::Other(format!(
            "{}: no {FILE_NAME} here, nor in its measure folders (asc12/, asc12/model/, …)",
            path.display()
        )));
    }
    Ok(found)
}

/// The facility's cases as covariate patterns in the model's coefficient order, and its NPI.
pub fn facility_patterns(claims: &Path, model: &SavedModel, dict: &Dictionary, period: Period, facility: Option<&str>) -> Result<(String, Vec<Pattern>)> {
    let m = model.measure;
    let built = crate::cohort::build(claims, m, Some(period), dict)?;
    let npis: Vec<String> = built
        .cohort
        .column("facility_npi")
        .and_then(|c| c.unique())
        .and_then(|c| c.cast(&DataType::String))
        .ctx(|| format!("{m}: listing facilities"))?
        .str()
        .ctx(|| format!("{m}: listing facilities"))?
        .iter()
        .flatten()
        .map(str::to_string)
        .collect();
    let npi = match facility {
        Some(npi) => npi.to_string(),
        None if npis.len() == 1 => npis[0].clone(),
        None if npis.is_empty() => {
            return Err(AscqrError::Other(format!("{m}: the extract has no procedure in the cohort for this period; name the ASC with --facility to forecast it with no cases")));
        }
        None => {
            return Err(AscqrError::InvalidOption(format!(
                "{m}: the extract has procedures of {} ASCs; name the one to forecast with --facility NPI",
                npis.len()
            )))
        }
    };
    let cohort = built
        .cohort
        .lazy()
        .filter(col("facility_npi").cast(DataType::String).eq(lit(npi.clone())))
        .collect()
        .ctx(|| format!("{m}: selecting the facility's procedures"))?;
    if cohort.height() == 0 {
        tracing::warn!("{m}: no procedure of ASC {npi} in the cohort for this period");
        return Ok((npi, Vec::new()));
    }
    let analysis = crate::risk::analysis_frame(claims, m, &cohort, dict)?;
    let patterns = grouped_patterns(&analysis, model, None)?.into_values().next().unwrap_or_default();
    Ok((npi, patterns))
}

/// An analysis frame (`facility_id`, `outcome`, the risk variables) as covariate patterns in the
/// model's coefficient order, per facility; `keep` selects rows. Identical patterns are merged:
/// the intercept's posterior sums over patterns, so this is exact.
pub fn grouped_patterns(analysis: &DataFrame, model: &SavedModel, keep: Option<&[bool]>) -> Result<BTreeMap<String, Vec<Pattern>>> {
    let m = model.measure;
    let names = &model.coefficient_names[1..];
    let mut columns = Vec::with_capacity(names.len());
    for name in names {
        let c = analysis
            .column(name)
            .map_err(|_| AscqrError::Other(format!("{m}: the saved model has coefficient {name:?}, which the measure's risk variables do not define")))?
            .cast(&DataType::Float64)
            .ctx(|| format!("{m}: reading {name}"))?;
        columns.push(c.f64().ctx(|| format!("{m}: reading {name}"))?.clone());
    }
    let read = |name: &str, dtype: DataType| analysis.column(name).and_then(|c| c.cast(&dtype)).ctx(|| format!("{m}: reading {name}"));
    let outcome = read("outcome", DataType::Float64)?;
    let outcome = outcome.f64().ctx(|| format!("{m}: reading outcome"))?;
    let facility = read("facility_id", DataType::String)?;
    let facility = facility.str().ctx(|| format!("{m}: reading facility_id"))?;
    let mut index: HashMap<(String, Vec<u64>), usize> = HashMap::new();
    let mut groups: BTreeMap<String, Vec<Pattern>> = BTreeMap::new();
    for row in (0..analysis.height()).filter(|&r| keep.is_none_or(|k| k[r])) {
        let id = facility.get(row).ok_or_else(|| AscqrError::Other(format!("{m}: procedure {row} of the analysis has no facility_id")))?.to_string();
        let mut x = Vec::with_capacity(names.len() + 1);
        x.push(1.0);
        for (name, c) in names.iter().zip(&columns) {
            x.push(c.get(row).ok_or_else(|| AscqrError::Other(format!("{m}: procedure {row} has no value for {name}")))?);
        }
        let y = outcome.get(row).ok_or_else(|| AscqrError::Other(format!("{m}: procedure {row} of the analysis has no outcome")))?;
        let patterns = groups.entry(id.clone()).or_default();
        let key = (id, x.iter().map(|v| v.to_bits()).collect());
        match index.get(&key) {
            Some(&k) => {
                patterns[k].cases += 1.0;
                patterns[k].events += y;
            }
            None => {
                index.insert(key, patterns.len());
                patterns.push(Pattern { x, cases: 1.0, events: y });
            }
        }
    }
    Ok(groups)
}

/// Whole case counts that add up to the rounded total, by largest remainder.
pub(crate) fn whole_cases(patterns: Vec<Pattern>, total: f64) -> Vec<Pattern> {
    let total = total.round().max(0.0);
    let sum: f64 = patterns.iter().map(|p| p.cases).sum();
    if sum <= 0.0 {
        return Vec::new();
    }
    let scaled: Vec<f64> = patterns.iter().map(|p| p.cases * total / sum).collect();
    let mut whole: Vec<f64> = scaled.iter().map(|v| v.floor()).collect();
    let mut order: Vec<usize> = (0..patterns.len()).collect();
    order.sort_by(|&a, &b| (scaled[b] - whole[b]).total_cmp(&(scaled[a] - whole[a])).then(a.cmp(&b)));
    let missing = (total - whole.iter().sum::<f64>()) as usize;
    for &i in order.iter().take(missing) {
        whole[i] += 1.0;
    }
    patterns
        .into_iter()
        .zip(whole)
        .filter(|(_, n)| *n > 0.0)
        .map(|(p, n)| Pattern { x: p.x, cases: n, events: 0.0 })
        .collect()
}

/// Applies `what_if` to the observed patterns: the evidence for the intercept, and what is scored.
pub fn apply_what_if(model: &SavedModel, observed: Vec<Pattern>, what_if: &WhatIf) -> Result<(Vec<Pattern>, ScoredCases)> {
    let observed_cases: f64 = observed.iter().map(|p| p.cases).sum();
    for (flag, value) in [("--what-if-visits", what_if.visits), ("--project-cases", what_if.project_cases), ("--what-if-cases", what_if.cases)] {
        if let Some(v) = value {
            if !(v.is_finite() && v >= 0.0) {
                return Err(AscqrError::InvalidOption(format!("{flag} {v}: must be a finite number ≥ 0")));
            }
        }
    }
    let mut evidence = observed;
    if let Some(v) = what_if.visits {
        if !(v >= 0.0 && v <= observed_cases) {
            return Err(AscqrError::InvalidOption(format!("--what-if-visits {v}: must lie between 0 and the {observed_cases} observed cases")));
        }
        // Only the total of visits enters the intercept's posterior (u is shared by all of the
        // facility's cases), so spreading them in proportion to cases loses nothing.
        for p in &mut evidence {
            p.events = v * p.cases / observed_cases;
        }
    }
    let changes_mix = what_if.cases.is_some() || !what_if.shares.is_empty();
    if what_if.project_cases.is_some() && changes_mix {
        return Err(AscqrError::InvalidOption("--project-cases scores the observed cases plus more; it cannot be combined with --what-if-cases or --what-if-share".into()));
    }
    if let Some(total) = what_if.project_cases {
        if !(total >= observed_cases) {
            return Err(AscqrError::InvalidOption(format!("--project-cases {total}: fewer than the {observed_cases} cases already observed")));
        }
        if observed_cases == 0.0 {
            return Err(AscqrError::InvalidOption("--project-cases needs observed cases to take the case mix from".into()));
        }
        let extra = whole_cases(evidence.clone(), total - observed_cases);
        return Ok((evidence, ScoredCases::ObservedPlus(extra)));
    }
    if !changes_mix {
        return Ok((evidence, ScoredCases::Observed));
    }
    if observed_cases == 0.0 {
        return Err(AscqrError::InvalidOption("--what-if-cases and --what-if-share need observed cases to take the case mix from".into()));
    }
    let mut mix = evidence.clone();
    for (name, share) in &what_if.shares {
        let k = model.coefficient_names.iter().position(|n| n == name).filter(|&k| k > 0).ok_or_else(|| {
            AscqrError::InvalidOption(format!("--what-if-share {name}={share}: the {} model has no variable {name:?} (it has {})", model.measure, model.coefficient_names[1..].join(", ")))
        })?;
        if !(0.0..=1.0).contains(share) {
            return Err(AscqrError::InvalidOption(format!("--what-if-share {name}={share}: the share must lie between 0 and 1")));
        }
        if mix.iter().any(|p| p.x[k] != 0.0 && p.x[k] != 1.0) {
            return Err(AscqrError::InvalidOption(format!("--what-if-share {name}: {name} is not a 0/1 variable")));
        }
        // Each case keeps its other variables and has `name` set with probability `share`.
        mix = mix
            .into_iter()
            .flat_map(|p| {
                let (mut with, mut without) = (p.clone(), p);
                with.x[k] = 1.0;
                with.cases *= share;
                without.x[k] = 0.0;
                without.cases *= 1.0 - share;
                [with, without]
            })
            .collect();
    }
    let cases = whole_cases(mix, what_if.cases.unwrap_or(observed_cases));
    Ok((evidence, ScoredCases::Instead(cases)))
}

/// Forecasts every measure the model path names for the facility; one result per measure.
pub fn run(request: &ForecastRequest, dict: &Dictionary) -> Result<Vec<FacilityForecast>> {
    if request.options.draws == 0 {
        return Err(AscqrError::InvalidOption("--draws 0: a forecast needs at least one draw".into()));
    }
    let models = find_models(&request.model)?;
    if let Some(data) = &request.model_data {
        let [(file, model)] = models.as_slice() else {
            return Err(AscqrError::InvalidOption(format!("--model-data checks one model, but {} holds {}: name one measure's model", request.model.display(), models.len())));
        };
        let value = model.verify_against(data)?;
        tracing::info!("{}: log-likelihood {value:.6} on {} matches the stored value", file.display(), data.display());
    }
    // The given period, or each measure's standard one, all ending with the same year (one look
    // at the extract for its last year).
    let mut periods = BTreeMap::new();
    match &request.period {
        Some(p) => {
            let period = Period::parse(p)?;
            periods.extend(models.iter().map(|(_, model)| (model.measure, period)));
        }
        None => {
            let measures = models.iter().map(|(_, model)| model.measure.as_str().to_string()).collect();
            let config = crate::pipeline::RunConfig { measures: Some(measures), through_year: request.through_year, ..Default::default() };
            let plan = crate::pipeline::RunPlan::new(&config, &request.claims, dict)?;
            for (_, model) in &models {
                periods.insert(model.measure, plan.period(model.measure)?);
            }
        }
    }
    let mut results = Vec::new();
    for (file, model) in models {
        model.check_dictionary(dict)?;
        let m = model.measure;
        let period = periods[&m];
        let (npi, observed) = facility_patterns(&request.claims, &model, dict, period, request.facility.as_deref())?;
        let (evidence, scored) = apply_what_if(&model, observed, &request.what_if)?;
        let forecast = forecast(&model, &evidence, &scored, &request.options);
        let day = |d: i32| crate::claims::sink::days_to_date(d).to_string();
        let mut model_warnings = Vec::new();
        if model.is_synthetic() {
            model_warnings.push("the saved model was fitted on synthetic claims: this forecast shows how the command works, not a real expectation".to_string());
        }
        if !model.converged {
            model_warnings.push(format!("the saved model did not converge ({}): its estimates are not reliable", model.termination));
        }
        for w in &model_warnings {
            tracing::warn!("{m}: {w}");
        }
        results.push(FacilityForecast {
            model_warnings,
            facility: npi,
            measure: m,
            period: (day(period.first_day), day(period.last_day)),
            definition_version: model.definition_version.clone(),
            model_file: file.display().to_string(),
            what_if: request.what_if.clone(),
            published: Published::of(&forecast),
            forecast,
        });
    }
    Ok(results)
}

/// Writes `out/forecast.json` for one measure, or `out/<measure>/forecast.json` for several.
pub fn write(out: &Path, results: &[FacilityForecast]) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for r in results {
        let dir = if results.len() == 1 { out.to_path_buf() } else { out.join(r.measure.as_str()) };
        std::fs::create_dir_all(&dir).map_err(|e| AscqrError::io(&dir, e))?;
        let mut json = serde_json::to_vec_pretty(r).map_err(|e| AscqrError::Other(format!("internal: {e}")))?;
        json.push(b'\n');
        let path = dir.join("forecast.json");
        crate::output::write_atomic(&path, &json)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> SavedModel {
        let mut m: SavedModel = serde_json::from_str(include_str!("../../models/synthetic-national/asc18/saved_model.json")).unwrap();
        m.coefficient_covariance = None;
        m
    }

    fn patterns(m: &SavedModel) -> Vec<Pattern> {
        let p = m.coefficients.len();
        let mut a = vec![0.0; p];
        a[0] = 1.0;
        let mut b = a.clone();
        b[1] = 1.0;
        vec![Pattern { x: a, cases: 30.0, events: 1.0 }, Pattern { x: b, cases: 10.0, events: 2.0 }]
    }

    #[test]
    fn whole_cases_keep_the_total_and_the_mix() {
        let m = model();
        let mut ps = patterns(&m);
        ps[0].cases = 2.5;
        ps[1].cases = 1.5;
        let w = whole_cases(ps, 10.0);
        assert_eq!(w.iter().map(|p| p.cases).collect::<Vec<_>>(), vec![6.0, 4.0]);
    }

    #[test]
    fn what_if_changes_visits_projection_and_case_mix() {
        let m = model();
        let name = m.coefficient_names[1].clone();
        let (evidence, scored) = apply_what_if(&m, patterns(&m), &WhatIf { visits: Some(8.0), ..Default::default() }).unwrap();
        assert_eq!(evidence.iter().map(|p| p.events).sum::<f64>(), 8.0);
        assert_eq!(scored, ScoredCases::Observed);
        let (_, scored) = apply_what_if(&m, patterns(&m), &WhatIf { project_cases: Some(80.0), ..Default::default() }).unwrap();
        let ScoredCases::ObservedPlus(extra) = scored else { panic!("{scored:?}") };
        assert_eq!(extra.iter().map(|p| p.cases).collect::<Vec<_>>(), vec![30.0, 10.0]);
        let (evidence, scored) = apply_what_if(&m, patterns(&m), &WhatIf { shares: vec![(name.clone(), 0.5)], cases: Some(100.0), ..Default::default() }).unwrap();
        assert_eq!(evidence, patterns(&m), "the observed cases still inform the intercept");
        let ScoredCases::Instead(cases) = scored else { panic!("{scored:?}") };
        assert_eq!(cases.iter().map(|p| p.cases).sum::<f64>(), 100.0);
        assert_eq!(cases.iter().filter(|p| p.x[1] == 1.0).map(|p| p.cases).sum::<f64>(), 50.0);
    }

    #[test]
    fn what_if_refuses_impossible_changes_naming_the_value() {
        let m = model();
        let bad = |w: WhatIf| apply_what_if(&m, patterns(&m), &w).unwrap_err().to_string();
        assert!(bad(WhatIf { visits: Some(41.0), ..Default::default() }).contains("41"));
        assert!(bad(WhatIf { project_cases: Some(10.0), ..Default::default() }).contains("fewer than the 40"));
        assert!(bad(WhatIf { shares: vec![("no_such".into(), 0.5)], ..Default::default() }).contains("no_such"));
        assert!(bad(WhatIf { shares: vec![(m.coefficient_names[1].clone(), 1.5)], ..Default::default() }).contains("1.5"));
        assert!(bad(WhatIf { project_cases: Some(50.0), cases: Some(50.0), ..Default::default() }).contains("cannot be combined"));
    }
}
