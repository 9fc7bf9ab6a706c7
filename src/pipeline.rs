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
Keep it where the data use agreement allows; share only facility_report.*, national.csv, report.html,\n\
unmapped_codes.csv and eligibility.csv from the run folder, which suppress counts between 1 and 10.\n";

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

/// One measure of a run from the shards' parts: the cohort merged, the analysis file stacked,
/// the model fitted; written under `out/<measure>/`.
#[allow(clippy::too_many_arguments)]
fn merge_measure(claims: &Path, parts: &[PathBuf], m: MeasureId, plan: &RunPlan, dict: &Dictionary, out: &Path, stages: &mut Vec<StageRecord>, warnings: &mut Vec<String>) -> Result<MeasureRun> {
    let dir = out.join(m.as_str());
    std::fs::create_dir_all(&dir).map_err(|e| AscqrError::io(&dir, e))?;
    write_atomic(&dir.join("PROTECTED_HEALTH_INFORMATION.txt"), PHI_NOTICE.as_bytes())?;
    let cohort = timed(stages, format!("{m} cohort"), || {
        let expected = crate::cohort::definition(m, Some(plan.period(m)?), dict);
        let mut pieces = Vec::new();
        for p in parts {
            let piece = crate::cohort::read_part(&p.join(m.as_str()).join("cohort"), m)?;
            if piece.definition != expected {
                return Err(AscqrError::InvalidOption(format!(
                    "{}: its {m} cohort was built with other definitions (dictionary, period) than this merge uses: give run-shard and merge the same --dictionary, --config and --through-year",
                    p.display()
                )));
            }
            pieces.push(piece);
        }
        let c = crate::cohort::merge(pieces)?;
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
        let mut frames = Vec::new();
        for p in parts {
            let file = p.join(m.as_str()).join(PART_ANALYSIS);
            if file.is_file() {
                frames.push(crate::output::read_parquet(&file)?.lazy());
            }
        }
        let analysis = concat(frames, UnionArgs::default())
            .and_then(|lf| lf.sort(["procedure_id"], SortMultipleOptions::default()).collect())
            .ctx(|| format!("stacking the {m} analysis rows of the shards"))?;
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

/// Runs everything `config` asks for on `claims` (a prepared extract, or a raw canonical folder
/// ingested into `OUT/extract` first) and writes the run folder: every shard's part one after
/// another ([`run_shard`]), then [`merge`].
pub fn run(claims: &Path, config: &RunConfig, dict: &Dictionary, command_line: Vec<String>, out: &Path) -> Result<RunResult> {
    run_with_jobs(claims, config, dict, command_line, out, 1)
}

/// [`run`] with up to `jobs` shards at once.
pub fn run_with_jobs(claims: &Path, config: &RunConfig, dict: &Dictionary, command_line: Vec<String>, out: &Path, jobs: usize) -> Result<RunResult> {
    if jobs == 0 {
        return Err(AscqrError::InvalidOption("--jobs 0: at least one shard must run at a time".into()));
    }
    std::fs::create_dir_all(out).map_err(|e| AscqrError::io(out, e))?;
    let mut stages = Vec::new();
    requested_measures(config)?;
    let extract = prepared_extract(claims, out, &mut stages)?;
    let shards = crate::claims::extract::read_manifest(&extract)?.shards;
    // The plan once, for every shard: the last claims year is the whole extract's.
    let plan = RunPlan::new(config, &extract, dict)?;
    let config = RunConfig { through_year: Some(plan.through_year), ..config.clone() };
    let scratch = tempfile::Builder::new().prefix(".ascqr-parts").tempdir_in(out).map_err(|e| AscqrError::io(out, e))?;
    let parts: Vec<PathBuf> = (0..shards).map(|i| scratch.path().join(format!("shard-{i:05}"))).collect();
    timed(&mut stages, "shards".into(), || {
        let one = |i: usize| -> Result<u64> {
            tracing::info!("shard {} of {shards}", i + 1);
            Ok(run_shard(&extract, i as u32, &config, dict, &parts[i])?.cohort_rows.values().sum())
        };
        let rows: Vec<u64> = if jobs == 1 {
            (0..parts.len()).map(one).collect::<Result<_>>()?
        } else {
            use rayon::prelude::*;
            let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build().map_err(|e| AscqrError::Other(format!("starting {jobs} jobs: {e}")))?;
            pool.install(|| (0..parts.len()).into_par_iter().map(one).collect::<Result<_>>())?
        };
        Ok(((), rows.iter().sum()))
    })?;
    merge_parts(&parts, Some(&extract), &config, dict, command_line, out, stages)
}

/// The manifest of one shard's part.
pub const PART_MANIFEST: &str = "part.json";
const PART_FORMAT: &str = "ascqr run part";
const PART_ANALYSIS: &str = "analysis.parquet";
const PART_UNMAPPED: &str = "unmapped_codes.parquet";
const PART_ELIGIBILITY: &str = "eligibility.parquet";

/// `part.json`: which extract and shard a part comes from and what it was built for; `merge`
/// takes parts of one extract, built for the same measures and periods, covering every shard once.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartManifest {
    pub format: String,
    pub engine_version: String,
    /// The prepared extract (absolute path) and the sha256 of its `ingest.json`.
    pub extract: PathBuf,
    pub extract_manifest_sha256: String,
    pub shard: u32,
    pub of: u32,
    /// The last year of every period (`merge`'s default, so that it reads no claims for it).
    pub through_year: i32,
    pub periods: BTreeMap<String, (String, String)>,
    /// In-cohort procedures per measure.
    pub cohort_rows: BTreeMap<String, u64>,
}

fn sha256_of(path: &Path) -> Result<String> {
    Ok(describe_input(path)?.sha256)
}

/// `ascqr run-shard`: the cohorts, analysis rows and unmapped-code counts of every measure the
/// run asks for, from one shard of a prepared extract, written to `out` (built in a temporary
/// folder beside it and renamed when complete). Every rule looks at one beneficiary's claims,
/// and a beneficiary's claims are all in one shard, so the parts of all shards hold exactly what
/// the whole extract gives.
pub fn run_shard(extract: &Path, shard: u32, config: &RunConfig, dict: &Dictionary, out: &Path) -> Result<PartManifest> {
    let ingest = crate::claims::extract::read_manifest(extract)?;
    if ingest.view_of.is_some() {
        return Err(AscqrError::InvalidOption(format!("{} is a shard view; give the prepared extract itself", extract.display())));
    }
    if shard >= ingest.shards {
        return Err(AscqrError::InvalidOption(format!("--shard {shard}: {} has shards 0 to {}", extract.display(), ingest.shards - 1)));
    }
    let plan = RunPlan::new(config, extract, dict)?;
    let name = out.file_name().ok_or_else(|| AscqrError::InvalidOption(format!("{} is not a folder path", out.display())))?;
    if out.exists() && !out.join(PART_MANIFEST).is_file() && std::fs::read_dir(out).map_err(|e| AscqrError::io(out, e))?.next().is_some() {
        return Err(AscqrError::InvalidOption(format!("{} exists and is not a run part; choose another --out", out.display())));
    }
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| AscqrError::io(parent, e))?;
    let staging = tempfile::Builder::new().prefix(&format!(".{}.part-", name.to_string_lossy())).tempdir_in(parent).map_err(|e| AscqrError::io(parent, e))?;
    let view = staging.path().join("_view");
    crate::claims::extract::write_shard_view(extract, &[shard], &view)?;
    // The shard's claims decoded once for every stage of every measure.
    let held = crate::claims::source::hold_in_memory(&view)?;
    // Hospital visits do not depend on the measure: found once for the four.
    let visits = crate::cohort::hospital_visits_in(&view, dict)?;
    let mut cohort_rows = BTreeMap::new();
    for &m in &plan.measures {
        let dir = staging.path().join(m.as_str());
        let c = crate::cohort::build_with_visits(&view, m, Some(plan.period(m)?), dict, Some(&visits))?;
        crate::cohort::write_part(&dir.join("cohort"), &c)?;
        if c.cohort.height() > 0 {
            let mut analysis = crate::risk::analysis_frame(&view, m, &c.cohort, dict)?;
            let target = crate::output::TempPath::new(&dir.join(PART_ANALYSIS))?;
            ParquetWriter::new(target.create_file()?).finish(&mut analysis).ctx(|| format!("writing the {m} analysis rows of shard {shard}"))?;
            target.commit()?;
        }
        cohort_rows.insert(m.as_str().to_string(), c.cohort.height() as u64);
    }
    let unmapped = crate::risk::unmapped_codes(&view, dict)?;
    let eligibility = crate::eligibility::claim_counts(&view, plan.through_year)?;
    for (name, mut df) in [(PART_UNMAPPED, unmapped), (PART_ELIGIBILITY, eligibility)] {
        let target = crate::output::TempPath::new(&staging.path().join(name))?;
        ParquetWriter::new(target.create_file()?).finish(&mut df).ctx(|| format!("writing {name} of shard {shard}"))?;
        target.commit()?;
    }
    drop((held, visits));
    std::fs::remove_dir_all(&view).map_err(|e| AscqrError::io(&view, e))?;
    write_atomic(&staging.path().join("PROTECTED_HEALTH_INFORMATION.txt"), PHI_NOTICE.as_bytes())?;
    let manifest = PartManifest {
        format: PART_FORMAT.into(),
        engine_version: env!("CARGO_PKG_VERSION").into(),
        extract: std::fs::canonicalize(extract).map_err(|e| AscqrError::io(extract, e))?,
        extract_manifest_sha256: sha256_of(&extract.join(crate::claims::extract::MANIFEST_FILE))?,
        shard,
        of: ingest.shards,
        through_year: plan.through_year,
        periods: plan.periods.iter().map(|(m, p)| (m.as_str().to_string(), p.clone())).collect(),
        cohort_rows,
    };
    let mut json = serde_json::to_vec_pretty(&manifest).map_err(|e| AscqrError::Other(format!("internal: {e}")))?;
    json.push(b'\n');
    write_atomic(&staging.path().join(PART_MANIFEST), &json)?;
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| AscqrError::io(out, e))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, out).map_err(|e| AscqrError::io(out, e))?;
    Ok(manifest)
}

fn read_part_manifest(part: &Path) -> Result<PartManifest> {
    let path = part.join(PART_MANIFEST);
    let bytes = std::fs::read(&path).map_err(|e| AscqrError::io(&path, e))?;
    let m: PartManifest = serde_json::from_slice(&bytes).map_err(|e| AscqrError::Other(format!("{}: not a run part's manifest: {e}", path.display())))?;
    if m.format != PART_FORMAT || m.engine_version != env!("CARGO_PKG_VERSION") {
        return Err(AscqrError::Other(format!(
            "{}: a part of {:?} written by ascqr {}; this is ascqr {}: run the shard again",
            path.display(),
            m.format,
            m.engine_version,
            env!("CARGO_PKG_VERSION")
        )));
    }
    Ok(m)
}

/// `ascqr merge`: a run folder from the parts of every shard of one extract (in any order),
/// exactly as `run` writes it: merged cohorts, analysis files, fits, bootstrap, facility report,
/// national table, HTML report and manifest.
/// `extract` overrides the path the parts name (the extract moved, or is mounted elsewhere); its
/// `ingest.json` must still be the one the parts were built from.
pub fn merge(parts: &[PathBuf], extract: Option<&Path>, config: &RunConfig, dict: &Dictionary, command_line: Vec<String>, out: &Path) -> Result<RunResult> {
    merge_parts(parts, extract, config, dict, command_line, out, Vec::new())
}

fn merge_parts(parts: &[PathBuf], extract: Option<&Path>, config: &RunConfig, dict: &Dictionary, command_line: Vec<String>, out: &Path, mut stages: Vec<StageRecord>) -> Result<RunResult> {
    if parts.is_empty() {
        return Err(AscqrError::InvalidOption("merge needs the parts of every shard (--parts P...)".into()));
    }
    let manifests = parts.iter().map(|p| read_part_manifest(p)).collect::<Result<Vec<_>>>()?;
    let first = &manifests[0];
    let mut by_shard: Vec<Option<&Path>> = vec![None; first.of as usize];
    for (p, m) in parts.iter().zip(&manifests) {
        if m.extract_manifest_sha256 != first.extract_manifest_sha256 || m.of != first.of {
            return Err(AscqrError::InvalidOption(format!("{} is a part of another extract than {}", p.display(), parts[0].display())));
        }
        if m.shard >= m.of {
            return Err(AscqrError::InvalidOption(format!("{}: shard {} of {} shards is not a shard of the extract", p.display(), m.shard, m.of)));
        }
        if m.periods != first.periods {
            return Err(AscqrError::InvalidOption(format!("{} was built for other measures or periods than {}", p.display(), parts[0].display())));
        }
        match by_shard[m.shard as usize] {
            Some(other) => return Err(AscqrError::InvalidOption(format!("shard {} given twice: {} and {}", m.shard, other.display(), p.display()))),
            None => by_shard[m.shard as usize] = Some(p),
        }
    }
    let missing: Vec<String> = by_shard.iter().enumerate().filter(|(_, p)| p.is_none()).map(|(i, _)| i.to_string()).collect();
    if !missing.is_empty() {
        return Err(AscqrError::InvalidOption(format!("the parts of shard(s) {} of {} are missing", missing.join(", "), first.of)));
    }
    // Shard order, whatever order the parts were given in.
    let parts: Vec<PathBuf> = by_shard.into_iter().flatten().map(Path::to_path_buf).collect();
    let extract = match extract {
        Some(e) => std::fs::canonicalize(e).map_err(|err| AscqrError::io(e, err))?,
        None => first.extract.clone(),
    };
    if sha256_of(&extract.join(crate::claims::extract::MANIFEST_FILE))? != first.extract_manifest_sha256 {
        return Err(AscqrError::InvalidOption(format!("{} is not the extract the parts were built from, or changed since: run the shards again", extract.display())));
    }
    // The parts' through year unless the settings give one: the plan then reads no claims.
    let config = &RunConfig { through_year: config.through_year.or(Some(first.through_year)), ..config.clone() };
    let plan = RunPlan::new(config, &extract, dict)?;
    let periods: BTreeMap<String, (String, String)> = plan.periods.iter().map(|(m, p)| (m.as_str().to_string(), p.clone())).collect();
    if periods != first.periods {
        return Err(AscqrError::InvalidOption(format!(
            "the parts were built for {:?}, this merge asks for {:?}: give merge the measures and through year run-shard had",
            first.periods, periods
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| AscqrError::io(out, e))?;
    // An extract inside the run folder is named relative to it (see the manifest below).
    let claims = match extract.strip_prefix(std::fs::canonicalize(out).map_err(|e| AscqrError::io(out, e))?) {
        Ok(inside) => out.join(inside),
        Err(_) => extract.clone(),
    };
    let claims = claims.as_path();
    let mut warnings = Vec::new();
    let mut measures = Vec::new();
    for &m in &plan.measures {
        measures.push(merge_measure(claims, &parts, m, &plan, dict, out, &mut stages, &mut warnings)?);
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
            let counts = parts.iter().map(|p| crate::output::read_parquet(&p.join(PART_UNMAPPED))).collect::<Result<Vec<_>>>()?;
            let u = crate::risk::write_unmapped_table(&crate::risk::merge_unmapped(counts)?, &out.join("unmapped_codes.csv"), true)?;
            let n = u.distinct_codes as u64;
            Ok((u, n))
        })?)
    };
    // Program eligibility of the through year: ASCs with fewer than 240 claims (a shareable file,
    // small counts suppressed).
    timed(&mut stages, "eligibility".into(), || {
        let counts = parts.iter().map(|p| crate::output::read_parquet(&p.join(PART_ELIGIBILITY))).collect::<Result<Vec<_>>>()?;
        let counts = crate::eligibility::merge_claim_counts(counts)?;
        crate::eligibility::write_claim_counts(&counts, &out.join("eligibility.csv"))?;
        Ok(((), counts.height() as u64))
    })?;
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
            "shareable": ["facility_report.csv", "facility_report.parquet", "national.csv", "report.html", "unmapped_codes.csv", "eligibility.csv"],
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
