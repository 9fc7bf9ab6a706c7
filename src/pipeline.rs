//! `ascqr run`: every stage for every measure over one extract, in one folder.
//!
//! ```text
//! OUT/manifest.json               engine, command line, inputs (bytes, sha256), dictionary
//!                                 versions and provenance, method, seeds, threads, stage timings
//! OUT/facility_report.csv|parquet CMS's public ASC facility layout (shareable, suppressed)
//! OUT/national.csv                CMS's national layout (shareable, suppressed)
//! OUT/<measure>/cohort/           cohort, exclusions, attrition      (protected health information)
//! OUT/<measure>/features/         analysis file, risk variables      (protected health information)
//! OUT/<measure>/model/            model.json, coefficients.csv, facilities.parquet
//! OUT/web/                        web_measures.csv, rejects.csv, the HQR file (with --web-records)
//! ```
//!
//! Every file is written under a temporary name and renamed when complete, so a failed stage
//! leaves no half-written file, and re-running into the same folder replaces the outputs.
//! Outputs other than `manifest.json`'s timings are byte-identical for the same inputs and seed.

use crate::cohort::Period;
use crate::dictionary::{Dictionary, MeasureId};
use crate::error::{AscqrError, PolarsContext, Result};
use crate::hglm::{self, DataSpec, FitRequest, Method};
pub use crate::output::{describe_input, InputFile};
use crate::output::write_atomic;
use crate::report::{self, MeasureRun};
use crate::standardize::Compare;
use chrono::NaiveDate;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Settings of a run: from `--config run.toml`, then overridden by command-line flags.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Measures to run (`asc12`, `asc17`, `asc18`, `asc19`); default all four.
    pub measures: Option<Vec<String>>,
    /// Last calendar year of every performance period; default the last year with carrier claims.
    pub through_year: Option<i32>,
    /// Performance period length per measure in years (default from each measure's rules:
    /// ASC-12 three years, ASC-17/18/19 two).
    #[serde(default)]
    pub period_years: BTreeMap<String, u32>,
    /// `rspl` (CMS's method, the default), `laplace` or `agq`.
    pub method: Option<String>,
    /// Bootstrap replicates for the intervals (default 100; 0 = no intervals or categories).
    pub bootstrap: Option<usize>,
    pub seed: Option<u64>,
    /// A dictionary overlay folder (official code lists).
    pub dictionary: Option<PathBuf>,
    pub web_records: Option<PathBuf>,
    pub web_personnel: Option<PathBuf>,
    /// HQR payment year of the web-based measures; default `through_year + 2`.
    pub payment_year: Option<i32>,
    /// Upload date in the HQR file name (`YYYY-MM-DD`); default today.
    pub upload_date: Option<String>,
}

impl RunConfig {
    pub fn from_toml_file(path: &Path) -> Result<RunConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| AscqrError::io(path, e))?;
        toml::from_str(&text).map_err(|e| AscqrError::InvalidOption(format!("{}: {e}", path.display())))
    }

    /// `other`'s values where it has them, else ours.
    pub fn overridden_by(self, other: RunConfig) -> RunConfig {
        let mut period_years = self.period_years;
        period_years.extend(other.period_years);
        RunConfig {
            measures: other.measures.or(self.measures),
            through_year: other.through_year.or(self.through_year),
            period_years,
            method: other.method.or(self.method),
            bootstrap: other.bootstrap.or(self.bootstrap),
            seed: other.seed.or(self.seed),
            dictionary: other.dictionary.or(self.dictionary),
            web_records: other.web_records.or(self.web_records),
            web_personnel: other.web_personnel.or(self.web_personnel),
            payment_year: other.payment_year.or(self.payment_year),
            upload_date: other.upload_date.or(self.upload_date),
        }
    }
}

pub const DEFAULT_BOOTSTRAP: usize = 100;

/// A checked [`RunConfig`].
#[derive(Debug, Clone, Serialize)]
pub struct RunPlan {
    pub measures: Vec<MeasureId>,
    pub through_year: i32,
    pub periods: BTreeMap<MeasureId, (String, String)>,
    pub method: Method,
    pub bootstrap: usize,
    pub seed: u64,
    pub payment_year: i32,
    pub upload_date: NaiveDate,
}

fn method_named(name: &str) -> Result<Method> {
    match name.to_ascii_lowercase().as_str() {
        "rspl" => Ok(Method::Rspl),
        "laplace" => Ok(Method::Laplace),
        "agq" => Ok(Method::Agq),
        _ => Err(AscqrError::InvalidOption(format!("method {name:?}: expected rspl, laplace or agq"))),
    }
}

/// The last calendar year with a carrier line in the extract.
pub fn last_claims_year(claims: &Path) -> Result<i32> {
    let carrier = crate::claims::source::scan_table(claims, crate::claims::schema::Table::Carrier)?;
    let df = carrier.select([col("line_first_date").max().dt().year()]).collect().ctx(|| "finding the extract's last year".into())?;
    df.column("line_first_date")
        .ok()
        .and_then(|c| c.i32().ok().and_then(|y| y.get(0)))
        .ok_or_else(|| AscqrError::Other(format!("{}: the carrier table has no claim dates", claims.display())))
}

/// The measures a run asks for, checked (also before any claims are read, so a misspelt
/// measure fails at once).
fn requested_measures(config: &RunConfig) -> Result<Vec<MeasureId>> {
    let measures = match &config.measures {
        None => MeasureId::ALL.to_vec(),
        Some(names) => names
            .iter()
            .map(|n| MeasureId::from_name(n.trim()).ok_or_else(|| AscqrError::InvalidOption(format!("measure {n:?}: expected asc12, asc17, asc18 or asc19"))))
            .collect::<Result<Vec<_>>>()?,
    };
    for name in config.period_years.keys() {
        if MeasureId::from_name(name).is_none() {
            return Err(AscqrError::InvalidOption(format!("period_years: unknown measure {name:?}")));
        }
    }
    Ok(measures)
}

impl RunPlan {
    pub fn new(config: &RunConfig, claims: &Path, dict: &Dictionary) -> Result<RunPlan> {
        let measures = requested_measures(config)?;
        let through_year = match config.through_year {
            Some(y) => y,
            None => last_claims_year(claims)?,
        };
        let mut periods = BTreeMap::new();
        for &m in &measures {
            let years = config.period_years.get(m.as_str()).copied().unwrap_or(dict.measure(m).rules.cohort_period_years);
            if years == 0 {
                return Err(AscqrError::InvalidOption(format!("period_years.{m} = 0: a period needs at least one year")));
            }
            periods.insert(m, (format!("{}-01-01", through_year - years as i32 + 1), format!("{through_year}-12-31")));
        }
        let upload_date = match &config.upload_date {
            Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| AscqrError::InvalidOption(format!("upload date {d:?}: expected YYYY-MM-DD")))?,
            None => chrono::Local::now().date_naive(),
        };
        Ok(RunPlan {
            measures,
            through_year,
            periods,
            method: method_named(config.method.as_deref().unwrap_or("rspl"))?,
            bootstrap: config.bootstrap.unwrap_or(DEFAULT_BOOTSTRAP),
            seed: config.seed.unwrap_or(1),
            payment_year: config.payment_year.unwrap_or(through_year + 2),
            upload_date,
        })
    }

    pub fn period(&self, m: MeasureId) -> Result<Period> {
        let (a, b) = &self.periods[&m];
        Period::parse(&format!("{a}..{b}"))
    }
}

/// One timed stage for the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct StageRecord {
    pub stage: String,
    pub seconds: f64,
    pub rows: u64,
}

/// What a run produced, for the caller to summarise.
pub struct RunResult {
    pub plan: RunPlan,
    pub measures: Vec<MeasureRun>,
    pub web: Option<crate::web::WebRunOutput>,
    pub warnings: Vec<String>,
    pub stages: Vec<StageRecord>,
    pub out: PathBuf,
}

const PHI_NOTICE: &str = "This folder holds one row per procedure of Medicare claims: protected health information.\n\
Keep it where the data use agreement allows; share only facility_report.*, national.csv, report.html and\n\
unmapped_codes.csv from the run folder, which suppress counts between 1 and 10.\n";

fn timed<T>(stages: &mut Vec<StageRecord>, stage: String, f: impl FnOnce() -> Result<(T, u64)>) -> Result<T> {
    let start = Instant::now();
    let (value, rows) = f()?;
    let seconds = start.elapsed().as_secs_f64();
    tracing::info!("{stage}: {rows} rows in {seconds:.1} s");
    stages.push(StageRecord { stage, seconds: (seconds * 1000.0).round() / 1000.0, rows });
    Ok(value)
}

/// Where a saved model comes from; a model fitted on `ascqr synth` output says SYNTHETIC first.
fn model_label(claims: &Path, m: MeasureId, plan: &RunPlan) -> String {
    let synthetic = crate::claims::extract::read_manifest(claims)
        .ok()
        .and_then(|m| m.synthetic_source)
        .map(|v| format!("{} claims (ascqr synth, seed {}, scale {}), not real Medicare data: ", crate::saved_model::SYNTHETIC_LABEL, v["options"]["seed"], v["options"]["scale"].as_str().unwrap_or("?")));
    let (first, last) = &plan.periods[&m];
    format!("{}{m} fitted by ascqr {} run, {} method, period {first} to {last}", synthetic.unwrap_or_default(), env!("CARGO_PKG_VERSION"), plan.method.as_str())
}

/// Cohort → features → model for one measure, written under `out/<measure>/`.
fn run_measure(claims: &Path, m: MeasureId, plan: &RunPlan, dict: &Dictionary, out: &Path, stages: &mut Vec<StageRecord>, warnings: &mut Vec<String>) -> Result<MeasureRun> {
    let dir = out.join(m.as_str());
    std::fs::create_dir_all(&dir).map_err(|e| AscqrError::io(&dir, e))?;
    write_atomic(&dir.join("PROTECTED_HEALTH_INFORMATION.txt"), PHI_NOTICE.as_bytes())?;
    let period = plan.period(m)?;
    let cohort = timed(stages, format!("{m} cohort"), || {
        let c = crate::cohort::build(claims, m, Some(period), dict)?;
        crate::cohort::write(&dir.join("cohort"), &c)?;
        let n = c.cohort.height() as u64;
        Ok((c, n))
    })?;
    let def = dict.measure(m);
    let mut run = MeasureRun {
        measure: m,
        period: plan.periods[&m].clone(),
        attrition: cohort.attrition.clone(),
        definition: cohort.definition.clone(),
        fit: None,
        min_cases: def.rules.min_cases,
        rate_unit: def.measure.rate_unit.clone(),
    };
    if cohort.cohort.height() == 0 {
        warnings.push(format!("{m}: no procedure in the cohort for {} to {}; no model", run.period.0, run.period.1));
        return Ok(run);
    }
    let features = dir.join("features");
    timed(stages, format!("{m} features"), || {
        let analysis = crate::risk::analysis_frame(claims, m, &cohort.cohort, dict)?;
        crate::risk::write_analysis(&features, m, &analysis, dict)?;
        Ok(((), analysis.height() as u64))
    })?;
    let fit = timed(stages, format!("{m} model"), || {
        let spec = DataSpec::analysis_file(def.variable_names());
        let data = hglm::AnalysisData::read(&features.join("analysis.parquet"), &spec)?;
        let request = FitRequest {
            data: spec,
            fit: hglm::FitOptions { method: plan.method, ..Default::default() },
            bootstrap: (plan.bootstrap > 0).then_some(hglm::BootstrapOptions { replicates: plan.bootstrap, seed: plan.seed }),
            min_cases: def.rules.min_cases,
            compare: Compare::for_rate_unit(&def.measure.rate_unit),
        };
        let mut output = hglm::run(&data, &request, &indicatif::ProgressBar::hidden())?;
        // Relative to the measure's folder, so a run folder can move and two runs compare equal.
        output.summary.data_file = "features/analysis.parquet".into();
        hglm::write_output(&dir.join("model"), &output)?;
        // The national model, saved for scoring one ASC's own claims against it later.
        let label = model_label(claims, m, plan);
        crate::saved_model::SavedModel::from_fit(&label, m, dict, &data, &output)?.save(&dir.join("model"))?;
        let n = data.input_rows;
        Ok((output, n))
    })?;
    for w in &fit.summary.status.warnings {
        warnings.push(format!("{m} model: {w}"));
    }
    if !fit.summary.status.converged {
        warnings.push(format!("{m} model: did not converge ({})", fit.summary.status.termination));
    }
    run.fit = Some(fit);
    Ok(run)
}

/// The run folder's manifest file.
pub const MANIFEST: &str = "manifest.json";

/// The prepared extract a run reads: `claims` itself when it is one, else `claims` read as the
/// canonical layout and ingested into `OUT/extract` first (the stages read nothing else).
fn prepared_extract(claims: &Path, out: &Path, stages: &mut Vec<StageRecord>) -> Result<PathBuf> {
    if crate::claims::extract::is_prepared(claims) {
        return Ok(claims.to_path_buf());
    }
    let extract = out.join("extract");
    tracing::info!("{} is not a prepared extract: ingesting it (canonical layout) into {}", claims.display(), extract.display());
    let options = crate::claims::IngestOptions { layout: crate::claims::Layout::Canonical, shards: None };
    timed(stages, "ingest".into(), || {
        let manifest = crate::claims::ingest(claims, &options, &extract, &indicatif::ProgressBar::hidden())?;
        let rows = manifest.tables.iter().map(|t| t.rows_read).sum();
        Ok((manifest, rows))
    })?;
    Ok(extract)
}

/// Reads a run folder's `manifest.json`.
pub fn read_manifest(run: &Path) -> Result<serde_json::Value> {
    let path = run.join(MANIFEST);
    let bytes = std::fs::read(&path).map_err(|e| AscqrError::io(&path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| AscqrError::Other(format!("{}: {e}", path.display())))
}

/// Runs everything `plan` asks for and writes the run folder.
pub fn run(claims: &Path, config: &RunConfig, dict: &Dictionary, command_line: Vec<String>, out: &Path) -> Result<RunResult> {
    std::fs::create_dir_all(out).map_err(|e| AscqrError::io(out, e))?;
    let mut stages = Vec::new();
    requested_measures(config)?;
    let extract = prepared_extract(claims, out, &mut stages)?;
    let claims = extract.as_path();
    let plan = RunPlan::new(config, claims, dict)?;
    let mut warnings = Vec::new();
    let mut measures = Vec::new();
    for &m in &plan.measures {
        measures.push(run_measure(claims, m, &plan, dict, out, &mut stages, &mut warnings)?);
    }
    let web = match &config.web_records {
        None => None,
        Some(records) => Some(timed(&mut stages, "web-based measures".into(), || {
            let options = crate::web::WebOptions { payment_year: plan.payment_year, upload_date: plan.upload_date, frequency: crate::web::sampling::Frequency::Year, seed: plan.seed };
            let w = crate::web::run(records, config.web_personnel.as_deref(), &options, &out.join("web"))?;
            let n = w.accepted_records as u64;
            Ok((w, n))
        })?),
    };
    if let Some(w) = &web {
        if !w.rejections.is_empty() {
            warnings.push(format!("web-based measures: {} rejected value(s), see web/rejects.csv", w.rejections.len()));
        }
    }
    // Codes outside the crosswalk set no risk variable: how many, and which are commonest
    // (issue 6). Counts between 1 and 10 are suppressed, as in every shareable file.
    let unmapped = if measures.is_empty() {
        None
    } else {
        Some(timed(&mut stages, "unmapped codes".into(), || {
            let u = crate::risk::write_unmapped_codes(claims, dict, &out.join("unmapped_codes.csv"), true)?;
            let n = u.distinct_codes as u64;
            Ok((u, n))
        })?)
    };
    timed(&mut stages, "facility report".into(), || {
        let report = report::facility_report(&measures, web.as_ref().map(|w| w.report.summaries.as_slice()), plan.through_year);
        report::write_facility_report(out, &report)?;
        let national = report::national_table(&measures, web.as_ref().map(|w| w.report.summaries.as_slice()), plan.through_year);
        write_atomic(&out.join("national.csv"), &report::csv_bytes(&national)?)?;
        Ok(((), report.rows.len() as u64))
    })?;

    // The manifest comes last: it lists what the run read and wrote. The claims' own files
    // (with their sha256) are listed in the prepared extract's manifest, which is listed here.
    // An extract the run ingested itself is named relative to the run folder, so that two runs
    // of the same inputs write the same manifest wherever their folders are.
    let ingest = crate::claims::extract::read_manifest(claims)?;
    if ingest.layout == crate::claims::Layout::Cclf.name() {
        // Every shareable output must say whose claims these are: the manifest and report.html
        // carry the warning; CMS's file layouts (facility_report, national.csv) have no place.
        warnings.insert(0, crate::claims::cclf::POPULATION_NOTE.to_string());
    }
    let claims_shown = claims.strip_prefix(out).unwrap_or(claims);
    let mut ingest_json = describe_input(&claims.join(crate::claims::extract::MANIFEST_FILE))?;
    ingest_json.path = claims_shown.join(crate::claims::extract::MANIFEST_FILE).display().to_string();
    let mut inputs = vec![ingest_json];
    inputs.extend(ingest.inputs.iter().cloned());
    for p in [config.web_records.as_ref(), config.web_personnel.as_ref()].into_iter().flatten() {
        inputs.push(describe_input(p)?);
    }
    let definitions: BTreeMap<&str, &serde_json::Value> = measures.iter().map(|r| (r.measure.as_str(), &r.definition)).collect();
    let manifest = serde_json::json!({
        "engine": { "name": "ascqr", "version": env!("CARGO_PKG_VERSION") },
        "command_line": command_line,
        "claims": claims_shown.display().to_string(),
        "claims_layout": ingest.layout,
        "claims_shards": ingest.shards,
        "claims_rows_rejected": ingest.total_rejected(),
        "inputs": inputs,
        "plan": plan,
        "dictionary": definitions,
        "estimation": {
            "method": plan.method.as_str(),
            "bootstrap_replicates": plan.bootstrap,
            "seed": plan.seed,
            "sampling_seed_web": plan.seed,
        },
        "measure_settings": measures.iter().map(|r| (r.measure.as_str(), serde_json::json!({ "rate_unit": r.rate_unit, "min_cases": r.min_cases }))).collect::<BTreeMap<_, _>>(),
        "unmapped_diagnosis_codes": unmapped,
        "threads": rayon::current_num_threads(),
        "stages": stages,
        "warnings": warnings,
        "outputs": {
            "shareable": ["facility_report.csv", "facility_report.parquet", "national.csv", "report.html", "unmapped_codes.csv"],
            // The prepared extract the run made itself (a raw folder given) is claims too.
            "protected_health_information": plan.measures.iter().map(|m| format!("{m}/")).chain(claims.starts_with(out).then(|| format!("{}/", claims_shown.display()))).collect::<Vec<_>>(),
        },
        "suppression": "counts between 1 and 10 are written as <11 in shareable outputs; rates need the measure's minimum case count (web-based measures: 11)",
    });
    let mut json = serde_json::to_vec_pretty(&manifest).map_err(|e| AscqrError::Other(format!("internal: {e}")))?;
    json.push(b'\n');
    write_atomic(&out.join(MANIFEST), &json)?;
    // The report reads the finished run folder, exactly as `ascqr report --run DIR` does.
    let report = report::html::write_report(out)?;
    tracing::info!("wrote {}", report.display());
    Ok(RunResult { plan, measures, web, warnings, stages, out: out.to_path_buf() })
}
