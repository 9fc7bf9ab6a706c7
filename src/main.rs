//! `ascqr` — the command-line layer over the `ascqr` library. It parses arguments, sets up
//! logging and progress bars, calls the library and maps errors to exit codes. No measure logic
//! lives here.
//!
//! Exit codes: 0 success; 2 error (bad input, bad option, I/O failure) — the message on stderr
//! names the file, row, column and value where there is one. clap's own usage errors also exit
//! with 2; `--help` and `--version` exit with 0.

use ascqr::claims::{FileFormat, Layout};
use ascqr::error::PolarsContext;
use ascqr::synth::{Scale, SynthOptions};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  2  error: bad input (the message names file, row, column and value), bad option, I/O failure

Logging goes to stderr; set RUST_LOG (e.g. RUST_LOG=ascqr=debug) for more detail.
Progress bars are shown only when stderr is a terminal.

Quick start:
  ascqr demo                         synthetic extract → ascqr run → report.html, checked against truth
  ascqr synth --out claims --seed 1  write a synthetic canonical extract with its truth
  ascqr ingest --claims claims --out extract   validate and shard an extract for every stage
  ascqr validate --claims claims     dry run: check an extract, write rejected rows with reasons";

#[derive(Parser)]
#[command(
    name = "ascqr",
    version,
    about = "Open engine for CMS's Ambulatory Surgical Center Quality Reporting (ASCQR) measures",
    long_about = "Open engine for CMS's Ambulatory Surgical Center Quality Reporting (ASCQR) measures.\n\n\
Reads Medicare claims extracts (canonical Parquet/CSV or the CMS RIF layout), validates them, \
builds the claims-based measures' cohorts with their 7-day hospital visits and risk variables, \
fits the two-level logistic model and reports risk-standardized rates (`ascqr run`: every stage, \
the facility report in CMS's layout and an HTML report), computes the web-based measures and the \
HQR upload file; also generates synthetic claims with a known truth. What is not built yet is listed in the README's \"Not built yet\".",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The settings of a run, shared by `run`, `run-shard` and `merge`.
#[derive(clap::Args)]
struct RunSettings {
    /// TOML file with run settings; flags given here override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Comma-separated measures (default all four).
    #[arg(long, value_delimiter = ',')]
    measures: Option<Vec<String>>,
    /// Last calendar year of the performance periods.
    #[arg(long)]
    through_year: Option<i32>,
    /// rspl (CMS's method, default), laplace or agq.
    #[arg(long)]
    method: Option<String>,
    /// Bootstrap replicates for intervals and categories (default 100).
    #[arg(long)]
    bootstrap: Option<usize>,
    /// Seed of the bootstrap and of the web-based measures' samples (default 1).
    #[arg(long)]
    seed: Option<u64>,
    /// Dictionary overlay folder with official code lists.
    #[arg(long)]
    dictionary: Option<PathBuf>,
    /// Chart-abstraction records for the web-based measures.
    #[arg(long)]
    web_records: Option<PathBuf>,
    /// ASC-20 personnel file.
    #[arg(long)]
    web_personnel: Option<PathBuf>,
    /// HQR payment year of the web-based measures (default through-year + 2).
    #[arg(long)]
    payment_year: Option<i32>,
    /// Upload date in the HQR file name, YYYY-MM-DD (default today).
    #[arg(long)]
    upload_date: Option<String>,
}

impl RunSettings {
    /// The --config file's settings, overridden by the flags given.
    fn config(self) -> ascqr::Result<ascqr::pipeline::RunConfig> {
        let from_file = match &self.config {
            Some(path) => ascqr::pipeline::RunConfig::from_toml_file(path)?,
            None => ascqr::pipeline::RunConfig::default(),
        };
        Ok(from_file.overridden_by(ascqr::pipeline::RunConfig {
            measures: self.measures,
            through_year: self.through_year,
            period_years: Default::default(),
            method: self.method,
            bootstrap: self.bootstrap,
            seed: self.seed,
            dictionary: self.dictionary,
            web_records: self.web_records,
            web_personnel: self.web_personnel,
            payment_year: self.payment_year,
            upload_date: self.upload_date,
        }))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Generate a synthetic Medicare claims extract with the truth behind it.
    #[command(after_help = "\
Writes DIR/beneficiaries, enrollment, carrier, outpatient, inpatient (canonical model, see
data-dictionary/claims/) and DIR/truth/: procedures.parquet (per index procedure and measure:
cohort membership, exclusion reason, unplanned visit, true risk-variable values), model.json
(true coefficients, intercept and tau per measure) and facilities.parquet (true intercepts).
The same seed and options give byte-identical files.

Examples:
  ascqr synth --out claims --seed 1
  ascqr synth --out claims --seed 7 --years 2021-2023 --format csv
  ascqr synth --out national --seed 1 --scale national
  ascqr synth --out sparse --seed 1 --scale demo --background none   (only the claims the measures look at)
  ascqr synth --out dense --seed 1 --scale demo --background 3x
  ascqr synth --out claims --seed 1 --ccw claims_ccw   (then: ascqr ingest --claims claims_ccw --layout ccw --out extract)")]
    Synth {
        /// Output directory (created; existing table files are replaced).
        #[arg(long)]
        out: PathBuf,
        /// Random seed; the same seed gives the same files.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// small: ~100 ASCs, a few thousand procedures; national: ASC-12 national size
        /// (~2.2 million colonoscopies at ~2,100 ASCs over three years), streamed to disk.
        #[arg(long, value_enum, default_value_t = Scale::Small)]
        scale: Scale,
        /// Calendar years of index procedures, e.g. 2021-2023 or 2022. History claims start
        /// 12 months before the first year.
        #[arg(long, default_value = "2021-2023")]
        years: String,
        #[arg(long, value_enum, default_value_t = FileFormat::Parquet)]
        format: FileFormat,
        /// Give every year of --years one published year of volume (the published volumes cover
        /// 2.5 years for ASC-12 and 2 for ASC-17/18/19), so the extract grows with its years;
        /// without it the published volume is spread over the years.
        #[arg(long)]
        annual_volume: bool,
        /// Ordinary care around every beneficiary (office visits, labs, imaging, therapy, DME,
        /// hospital outpatient services, ED visits and inpatient stays no measure counts):
        /// none, real (about 25 carrier and 17 outpatient revenue lines per beneficiary-year) or
        /// Kx (K times real, e.g. 0.5x, 3x). Default: real at demo and national scale, none at
        /// small.
        #[arg(long, value_parser = ascqr::synth::Background::parse_arg)]
        background: Option<ascqr::synth::Background>,
        /// Diagnoses of the ordinary care: realistic (chronic conditions that map to condition
        /// categories, so they feed the risk variables) or neutral (codes that map to nothing
        /// any measure uses: every measure result equals the one without background).
        #[arg(long, value_enum, default_value_t = ascqr::synth::BackgroundDiagnoses::Realistic)]
        background_diagnoses: ascqr::synth::BackgroundDiagnoses,
        /// Also write the claims as a CCW delivery in this folder (fixed-width .dat files with
        /// their .fts layouts, claims and lines in separate files, the MBSF A/B/C/D by year), to
        /// try `ascqr ingest --layout ccw`. Written one beneficiary shard at a time (through a
        /// temporary prepared extract), so in bounded memory at any scale.
        #[arg(long)]
        ccw: Option<PathBuf>,
    },
    /// Read, validate and shard a claims extract into the prepared extract every stage reads.
    #[command(after_help = "\
Reads CLAIMS in the given layout with the same parser `validate` uses, and writes OUT:
  OUT/ingest.json                  rows read, accepted, rejected (by reason) and merged per table
                                   and per input file; inputs with bytes and sha256; layout; shards
  OUT/rejects.csv                  every rejected row: table, source file, row, reason, column, value
  OUT/<table>/part-NNNNN.parquet   the accepted rows, typed, one file per shard, sorted by bene_id
A beneficiary's rows of every table are in one shard: shard = pmod(XXH64(bene_id, seed 42), N).
Accepted encodings: dates 2022-01-31, 20220131, 31-Jan-2022, 31JAN2022; booleans true/false,
T/F, Y/N, yes/no, 1/0 in any case; an absent or empty ICD version code reads as ICD-10.
Repeated claim lines, claims and beneficiaries are quarantined (the first kept); of enrollment
rows of one beneficiary and year that share a month, the first read is kept. Every stage
(cohort, features, eligibility, forecast, run) reads only a prepared extract. OUT is built in a
temporary folder and renamed when complete; an earlier prepared extract there is replaced.

Layouts: canonical (TABLE.parquet/.csv or TABLE/ folders), rif (pipe-delimited BFD RIF files
beneficiary*, carrier*, outpatient*, inpatient*; MBSF A/B and A/B/C/D names accepted), ccw
(CCW/ResDAC deliveries: mbsf*, bcarrier_claims* + bcarrier_line*, outpatient_base_claims* +
outpatient_revenue_center*, inpatient_base_claims*; fixed-width .dat with the .fts beside it, or
CSV with long or short CCW names; claims joined to their lines on BENE_ID and CLM_ID), cclf
(an ACO's CCLF1-5, 8, 9 files, fixed width by the v36 positions; assigned beneficiaries only,
and every output of such an extract says so).

Examples:
  ascqr ingest --claims claims --out extract
  ascqr ingest --claims rif_extract --layout rif --shards 8 --out extract
  ascqr ingest --claims ccw_delivery --layout ccw --out extract
  ascqr ingest --claims cclf_files --layout cclf --out extract")]
    Ingest {
        /// The extract to read (see `validate --help` for what each layout expects).
        #[arg(long)]
        claims: PathBuf,
        #[arg(long, value_enum, default_value_t = Layout::Canonical)]
        layout: Layout,
        /// Number of beneficiary shards; default one per 64 MiB of text or 8 MiB of Parquet input.
        #[arg(long)]
        shards: Option<u32>,
        /// The prepared extract to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a claims extract: print rows per table, accepted and rejected by reason.
    #[command(after_help = "\
Fatal problems (missing table or column, wrong column type, unparseable date or number,
negative count) stop with exit code 2 and a message naming file, row, column and value.
Rows with malformed codes (ICD-10-CM, ICD-10-PCS, HCPCS, revenue center, place of service, …)
or a missing required value are quarantined to the reject file with their reason.
A dry run of `ascqr ingest`: the same code and the same counts; the prepared extract is built
in a temporary folder beside the reject file and removed, only the reject file is kept.

Examples:
  ascqr validate --claims claims
  ascqr validate --claims rif_extract --layout rif --rejects rif_rejects.csv")]
    Validate {
        /// Extract directory: TABLE.parquet, TABLE.csv or TABLE/ folders (canonical), or
        /// beneficiary*, carrier*, outpatient*, inpatient* pipe-delimited files (RIF).
        #[arg(long)]
        claims: PathBuf,
        #[arg(long, value_enum, default_value_t = Layout::Canonical)]
        layout: Layout,
        /// Reject file (CSV: table, source file, source row, reason, column, value, record).
        /// Default: CLAIMS/../<claims dir name>_rejects.csv
        #[arg(long)]
        rejects: Option<PathBuf>,
        /// Also write the report as JSON here.
        #[arg(long)]
        report_json: Option<PathBuf>,
    },
    /// Build a measure's cohort with its attrition table and 7-day outcome.
    #[command(after_help = "\
Writes OUT/cohort.parquet (index procedures: procedure_id = the ASC facility claim, beneficiary,
facility NPI, procedure date, qualifying codes, unplanned_visit, visit type, date, day, claim and
planned-admission rule; the first planned admission in the window with the rule that made it planned),
OUT/excluded.parquet (every other qualifying claim with the rule that excluded it),
OUT/attrition.csv (step, description, procedures_in, excluded, procedures_out, beneficiaries_out,
facilities_out) and OUT/cohort.json (definition versions and provenance). Rows are ordered by
procedure_id. The stages run on one shard of the prepared extract at a time, so memory holds one
shard's claims and the cohort. On Linux (glibc) it fixes the allocator's mmap threshold at 128 KiB
so each shard's freed buffers go back to the system (less than half the peak, about a sixth
more time); set MALLOC_MMAP_THRESHOLD_ to choose another value. Code lists come from the embedded data
dictionary (reconstructed lists are labelled there).

Example:
  ascqr cohort --claims claims --measure asc12 --period 2021-01-01..2023-12-31 --out cohort_asc12")]
    Cohort {
        /// A prepared extract (from `ascqr ingest`).
        #[arg(long, visible_alias = "extract")]
        claims: PathBuf,
        #[arg(long, value_enum)]
        measure: ascqr::dictionary::MeasureId,
        /// Measurement period FROM..TO (YYYY-MM-DD..YYYY-MM-DD); default: every procedure.
        #[arg(long)]
        period: Option<String>,
        /// A directory laid out like data-dictionary/ whose files replace the embedded ones; a
        /// measure definition version folder there (e.g. measures/asc12/cms-2025/cohort_codes.csv
        /// from CMS's official list) is used for that measure.
        #[arg(long)]
        dictionary: Option<PathBuf>,
        /// CSV with columns npi,ccn: adds the facility's CCN to cohort.parquet (facility_ccn).
        #[arg(long)]
        ccn_crosswalk: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Build the analysis file (risk variables and outcome per procedure) from a cohort.
    #[command(after_help = "\
Reads COHORT/cohort.parquet (from `ascqr cohort`) and the claims, and writes OUT/analysis.parquet
(procedure_id, facility_id, outcome, one column per risk variable as named in
data-dictionary/measures/<measure>/<version>/risk_variables.csv), OUT/analysis_collapsed.parquet (facility
x covariate pattern with cases and events) and OUT/variables.json. The analysis file is the
input of `ascqr fit`.

Example:
  ascqr features --cohort cohort_asc12 --claims claims --out features_asc12
  ascqr fit --data features_asc12/analysis.parquet --outcome outcome --group facility_id \\
            --covariates $(...) --out fit_asc12")]
    Features {
        #[arg(long)]
        cohort: PathBuf,
        /// A prepared extract (from `ascqr ingest`).
        #[arg(long, visible_alias = "extract")]
        claims: PathBuf,
        /// A directory laid out like data-dictionary/ whose files replace the embedded ones.
        #[arg(long)]
        dictionary: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Import a measure's code list from one of CMS's Excel workbooks as a dictionary overlay.
    #[command(after_help = "\
Reads one sheet of an .xlsx, .xlsm, .xlsb, .xls or .ods workbook: the header row is the first row
with a cell naming the code column (HCPCS, CPT, CPT/HCPCS Code, ICD-10-CM Code, ...; title rows
above it are skipped; --code-column names another), codes below it (dots, spaces and lower case
are accepted; a HCPCS code stored as a number is padded back to five digits). Optional columns:
a description, a work RVU, a procedure type. Each code's shape is checked: a bad code is an error
naming the workbook, sheet, row, column and value. Writes
OUT/measures/<measure>/<version>/cohort_codes.csv or exclusion_codes.csv in the data dictionary's
layout, each row with provenance official and the workbook's name, sheet and sha256 as its source.
cohort_codes.csv holds two lists: importing one replaces only its rows, keeping the other list's
rows from that file or, when it does not exist yet, from the embedded definition (labelled
reconstructed). Codes also in our list keep our CCS category, work RVUs and procedure type unless
the sheet gives them. Then pass --dictionary OUT to `ascqr cohort`, `features` or `run`.

Example:
  ascqr import-codes --workbook ASC12_Data_Dictionary.xlsx --sheet \"Cohort Codes\" \\
      --measure asc12 --list cohort --version cms-2026 --out my-dictionary")]
    ImportCodes {
        #[arg(long)]
        workbook: PathBuf,
        /// The sheet to read; default the first.
        #[arg(long)]
        sheet: Option<String>,
        #[arg(long, value_enum)]
        measure: ascqr::dictionary::MeasureId,
        /// Which list the sheet holds (concurrent-high-risk and exclusion exist for ASC-12 only).
        #[arg(long, value_enum)]
        list: ascqr::dictionary::workbook::CodeList,
        /// The code column's header, when the usual names do not find it.
        #[arg(long)]
        code_column: Option<String>,
        /// The definition version folder to write, e.g. cms-2026.
        #[arg(long)]
        version: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Import an official ICD-10-CM -> condition category crosswalk as a dictionary overlay.
    #[command(after_help = "\
Reads a CSV with a header row holding a code column (icd10cm, diagnosis_code or dx; dots and lower
case are accepted) and a cc column (1-201; one row per code and category), optionally with the
calendar years of the claim a row holds in (year_first and year_last, empty = no bound, or one
year column for a crosswalk by year), and writes OUT/condition-categories/icd10cm_to_cc.csv in the
data dictionary's layout (status official).
Then pass --dictionary OUT to `ascqr features` to use it instead of the shipped reconstruction.
Reports the categories the measures' risk variables use that no imported code maps to.

Example:
  ascqr import-cc --input cms_cc_crosswalk_fy2025.csv --version cms-fy2025 --out my-dictionary")]
    ImportCc {
        #[arg(long)]
        input: PathBuf,
        /// Written in the crosswalk's version column.
        #[arg(long, default_value = "official")]
        version: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// List ASCs with fewer than 240 Medicare claims in a year (not required to report next year).
    #[command(after_help = "\
Counts distinct ASC facility claims (place of service 24, specialty 49) per billing NPI with a
line in the year. Writes --out as CSV (facility_npi, claims, below_threshold) when given.

Example:
  ascqr eligibility --claims claims --year 2022 --out eligibility_2022.csv")]
    Eligibility {
        /// A prepared extract (from `ascqr ingest`).
        #[arg(long, visible_alias = "extract")]
        claims: PathBuf,
        #[arg(long)]
        year: i32,
        /// CSV of every ASC's count.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Fit the two-level logistic model to an analysis file and standardize facility results.
    #[command(after_help = "\
The analysis file has one row per procedure (0/1 outcome), or one row per facility x covariate
pattern with --cases naming the column of case counts (the outcome is then the event count);
both give the same fit. Writes OUT/model.json (method, convergence, objective, coefficients
with standard errors, random-intercept SD, counts, options, fit log) and
OUT/facilities.parquet (cases, events, random intercept and SE, predicted, expected,
standardized ratio, risk-standardized rate; with --bootstrap the 95% interval, category and
replicates used).

Methods: rspl (residual pseudo-likelihood: SAS GLIMMIX's default, CMS's method), laplace and
agq (maximum likelihood, as lme4's glmer nAGQ = 1 / N).

Examples:
  ascqr fit --data analysis.parquet --outcome visit --group facility_id --out fit_asc12
  ascqr fit --data a.csv --outcome y --group g --covariates age,chf --method laplace --out f
  ascqr fit --data a.csv --outcome y --group g --bootstrap 1000 --seed 7 --min-cases 30 --out f")]
    Fit {
        /// Analysis file (.csv or .parquet).
        #[arg(long)]
        data: PathBuf,
        /// Outcome column: 0/1, or the number of events with --cases.
        #[arg(long)]
        outcome: String,
        /// Facility column (the random intercept's grouping).
        #[arg(long)]
        group: String,
        /// Covariates, comma-separated. Default: every other column.
        #[arg(long, value_delimiter = ',')]
        covariates: Option<Vec<String>>,
        /// Column with the number of cases of each row (collapsed files).
        #[arg(long)]
        cases: Option<String>,
        #[arg(long, value_enum, default_value_t = ascqr::hglm::Method::Rspl)]
        method: ascqr::hglm::Method,
        /// Quadrature points for --method agq.
        #[arg(long, default_value_t = 9)]
        agq_points: usize,
        /// Bootstrap replicates for the intervals (CMS uses 1,000); 0 = no intervals.
        #[arg(long, default_value_t = 0)]
        bootstrap: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Facilities with fewer cases are "Number of Cases Too Small".
        #[arg(long, default_value_t = 0)]
        min_cases: u32,
        /// Compare the rate with the national rate, or the ratio with 1 (ASC-19).
        #[arg(long, value_enum, default_value_t = ascqr::standardize::Compare::Rate)]
        compare: ascqr::standardize::Compare,
        /// Cap on outer (RSPL) or Newton (ML) iterations.
        #[arg(long, default_value_t = 200)]
        max_iterations: usize,
        /// Also save the fit as this measure's national model (OUT/saved_model.json) for
        /// `ascqr forecast`; the covariates must be the measure's risk variables.
        #[arg(long, value_enum)]
        save_model_for: Option<ascqr::dictionary::MeasureId>,
        /// Where the saved model comes from, repeated in every forecast (default: the data file).
        #[arg(long)]
        model_label: Option<String>,
        /// Dictionary overlay folder, for the saved model's definition version and variables.
        #[arg(long)]
        dictionary: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a simulated analysis file (benchmarks, method checks): facility, y, x01..xK.
    #[command(after_help = "\
Facilities get log-normal volumes, covariates are 0/1 flags with fixed prevalences (2-30%),
facility intercepts are Normal(0, tau^2), and the intercept is set for the target rate.

Example:
  ascqr synth-analysis --rows 100000 --facilities 1000 --covariates 22 --rate 0.01 --out a.csv")]
    SynthAnalysis {
        #[arg(long)]
        rows: usize,
        #[arg(long)]
        facilities: usize,
        #[arg(long, default_value_t = 22)]
        covariates: usize,
        #[arg(long, default_value_t = 0.01)]
        rate: f64,
        #[arg(long, default_value_t = 0.3)]
        tau: f64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file, .csv or .parquet.
        #[arg(long)]
        out: PathBuf,
    },
    /// Every stage for every measure over an extract: cohorts, risk variables, models, facility report.
    #[command(after_help = "\
Runs cohort -> features -> model (with bootstrap intervals and categories) for each measure over
its performance period (ASC-12 three years, ASC-17/18/19 two, ending with --through-year, by
default the last year with carrier claims), the web-based measures when --web-records is given,
and writes OUT/facility_report.csv and .parquet (CMS's public ASC file layout), OUT/national.csv,
OUT/manifest.json and per measure OUT/<measure>/{cohort,features,model}/. The per-measure folders
hold one row per procedure: protected health information. The report files suppress counts
between 1 and 10. Flags override the --config file (TOML with the same names, e.g.
measures = [\"asc12\"], bootstrap = 200, [period_years] asc12 = 3).

Examples:
  ascqr run --claims claims --out run_out
  ascqr run --claims claims --measures asc12,asc17 --bootstrap 500 --seed 7 --out run_out
  ascqr run --claims claims --config run.toml --web-records records.csv --out run_out")]
    Run {
        /// A prepared extract (from `ascqr ingest`), or a canonical extract folder, which is
        /// ingested into OUT/extract first.
        #[arg(long)]
        claims: PathBuf,
        #[command(flatten)]
        settings: RunSettings,
        /// Shards run at once (default 1; each uses every core through polars).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Run folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// One shard of a run: every measure's cohort, analysis rows, unmapped-code and ASC claim counts.
    #[command(after_help = "\
The unit of work a distributed engine runs (README, \"Running shard by shard\"): reads shard I of
the prepared extract (and, without --through-year, the claim dates of every shard, to find the
last claims year) and writes the part folder P (protected health information), which `ascqr
merge` turns into a run folder with every other shard's part. Give every shard the same run
settings (--measures, --through-year, --dictionary, --config). Parts of any number of shards,
built in any order or on any machine that reads the extract, merge into the same bytes as `ascqr
run`.

Example:
  ascqr run-shard --extract extract --shard 0 --out parts/0")]
    RunShard {
        /// A prepared extract (from `ascqr ingest`).
        #[arg(long)]
        extract: PathBuf,
        /// The shard to run, from 0.
        #[arg(long)]
        shard: u32,
        #[command(flatten)]
        settings: RunSettings,
        /// Part folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// A run folder from the parts of every shard: fits, bootstrap, reports, manifest.
    #[command(after_help = "\
Checks that the parts come from one extract, cover each of its shards once and were built for the
same measures and periods, then writes what `ascqr run` writes.

Example:
  ascqr merge --parts parts/0 parts/1 parts/2 --out run_out")]
    Merge {
        /// The part folders, one per shard, in any order.
        #[arg(long, num_args = 1.., required = true)]
        parts: Vec<PathBuf>,
        /// The prepared extract, where it is not at the path the parts name (moved, or mounted
        /// elsewhere); its ingest.json must be the one the parts were built from.
        #[arg(long)]
        extract: Option<PathBuf>,
        #[command(flatten)]
        settings: RunSettings,
        /// Run folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Forecast one ASC's claims-based results from its own claims and a saved national model.
    #[command(after_help = "\
Builds the ASC's cohort and risk variables from CLAIMS with the same definitions the saved
national model was fitted with (a model of another definition version is refused), then computes
its observed and expected visits, the posterior of its facility intercept under the national
model, and what CMS would publish: the risk-standardized rate (ASC-19: the ratio) with a 95%
interval, and the probability of each performance category. Parameter uncertainty of the national
model is included by drawing the coefficients from their saved covariance; uncertainty in the
random-intercept SD, in the national rate and change between periods are not (forecast.json lists
what is included).

MODEL is a saved_model.json, a folder holding one, or a folder of measure folders
(models/synthetic-national, or a run folder). One measure writes OUT/forecast.json; several write
OUT/<measure>/forecast.json.

What-if: --what-if-visits N (the observed cases with N visits), --project-cases N (the period will
have N cases; the unseen ones have the observed mix and simulated outcomes), --what-if-cases N and
--what-if-share VAR=P (score N cases of the observed mix, or the observed cases with a 0/1 risk
variable set for a share P; outcomes simulated from the ASC's own intercept posterior).

The models shipped in models/synthetic-national are fitted on SYNTHETIC claims: they make the
command work out of the box, but real forecasts need a model fitted on a national extract
(`ascqr run` saves one per measure in RUN/<measure>/model/).

Examples:
  ascqr forecast --model models/synthetic-national --claims my_claims --out forecast_out
  ascqr forecast --model run_out/asc12/model --claims claims --facility 1234567893 --out f
  ascqr forecast --model models/synthetic-national/asc18 --claims c --project-cases 120 --out f")]
    Forecast {
        /// Saved model file or folder.
        #[arg(long)]
        model: PathBuf,
        /// The ASC's claims as a prepared extract (from `ascqr ingest`).
        #[arg(long, visible_alias = "extract")]
        claims: PathBuf,
        /// The ASC's NPI (needed when the extract has procedures of several ASCs).
        #[arg(long)]
        facility: Option<String>,
        /// Performance period FROM..TO (YYYY-MM-DD..YYYY-MM-DD); default the measure's length
        /// ending with --through-year.
        #[arg(long)]
        period: Option<String>,
        /// Last calendar year of the period (default: the last year with carrier claims).
        #[arg(long)]
        through_year: Option<i32>,
        /// Dictionary overlay folder (must give the model's definition version).
        #[arg(long)]
        dictionary: Option<PathBuf>,
        /// What-if: the observed cases with this many visits.
        #[arg(long)]
        what_if_visits: Option<f64>,
        /// The period will have this many cases in all (a partial period projected to its end).
        #[arg(long)]
        project_cases: Option<f64>,
        /// What-if: score this many cases of the observed case mix.
        #[arg(long)]
        what_if_cases: Option<f64>,
        /// What-if: VAR=P sets the 0/1 risk variable VAR for a share P of the cases (repeatable).
        #[arg(long, value_parser = parse_share)]
        what_if_share: Vec<(String, f64)>,
        /// The analysis file the model was fitted on (e.g. RUN/asc12/features/analysis.parquet):
        /// the model's log-likelihood there is re-evaluated and must match the stored value.
        #[arg(long)]
        model_data: Option<PathBuf>,
        /// Monte-Carlo draws.
        #[arg(long, default_value_t = 2000)]
        draws: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check forecasts against a national run: agreement per facility, and a calibration table.
    #[command(after_help = "\
For every facility of RUN's measure that reaches the minimum case count: the forecast from all its
cases (with RUN's saved model) next to the run's estimate, bootstrap interval and category; and
the forecast from its first --months of the period only, projected to its case count for the
whole period, whose category probabilities are tabulated against the run's categories.
RUN must come from `ascqr run` with --bootstrap. Writes OUT/check.json, OUT/facilities.csv and
OUT/calibration.md (facility NPIs and rates; no beneficiary data).

Example:
  ascqr forecast-check --run run_out --measure asc18 --out check_out")]
    ForecastCheck {
        /// A folder written by `ascqr run` with bootstrap intervals.
        #[arg(long)]
        run: PathBuf,
        #[arg(long, value_enum)]
        measure: ascqr::dictionary::MeasureId,
        /// Months at the start of the period the early forecast sees.
        #[arg(long, default_value_t = 12)]
        months: u32,
        /// Monte-Carlo draws per forecast.
        #[arg(long, default_value_t = 400)]
        draws: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Bins of the calibration table.
        #[arg(long, default_value_t = 10)]
        bins: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Rebuild the self-contained HTML report of a run folder.
    #[command(after_help = "\
Writes DIR/report.html from the run folder's files (`ascqr run` does this at its end): the
national summary, per measure the attrition, the model and its coefficients, a funnel plot and a
caterpillar plot (SVG, drawn in the page, no network needed), the web-based measures, and a
section per facility. Counts between 1 and 10 are shown as <11.

Example:
  ascqr report --run run_out")]
    Report {
        /// A folder written by `ascqr run`.
        #[arg(long)]
        run: PathBuf,
    },
    /// Run the main job on the embedded default: a synthetic national-shaped extract, end to end.
    #[command(after_help = "\
Generates a synthetic Medicare extract (2021-2023, national-shaped at a twentieth by default:
about 155,000 qualifying procedures at 171 ASCs, every beneficiary's ordinary care at real claim
density, with chart-abstraction records for the web-based measures) in DIR/claims, validates it, runs `ascqr run` on it into DIR/run (cohorts, risk variables, models
with bootstrap intervals, facility report, national table, HTML report) and checks every
measure's cohort and outcome counts against the generator's truth.

Examples:
  ascqr demo
  ascqr demo --out demo_out --scale small --bootstrap 10")]
    Demo {
        /// Working directory for the demo's files.
        #[arg(long, default_value = "out/demo")]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Size of the synthetic extract: demo (a twentieth of national) or small (a few thousand
        /// procedures: fast, but too few events for the full risk models to converge).
        #[arg(long, value_enum, default_value_t = Scale::Demo)]
        scale: Scale,
        /// Bootstrap replicates for the intervals and categories.
        #[arg(long, default_value_t = 50)]
        bootstrap: usize,
        /// Ordinary care around every beneficiary, as for `ascqr synth`: none, real (the default
        /// at demo scale) or Kx.
        #[arg(long, value_parser = ascqr::synth::Background::parse_arg)]
        background: Option<ascqr::synth::Background>,
    },
    /// Web-based measures (ASC-1-4, 9, 11, 13, 14; ASC-20) from chart-abstraction records.
    #[command(
        args_conflicts_with_subcommands = true,
        after_help = "\
Reads one abstraction record per encounter (layout: data-dictionary/web/README.md), computes
the measures (ASC-9, 11 and 13 on a seeded sample, manual Section 2) and writes OUT/web_measures.csv
(facility x measure: population, sample, denominator, exclusions by reason, numerator, rate),
OUT/rejects.csv (every defective row with row, column and reason) and the HQR batch file
OUT/ASC_WBM_PY20YY_mm_dd_yyyy.csv (validated before it is put in place). The reporting year is
the payment year minus 2; records from other years are rejected. ASC-20 (--personnel) goes to
web_measures.csv only: it is reported to NHSN, not HQR.

Examples:
  ascqr web --records records.csv --payment-year 2025 --out web_out
  ascqr web --records records.csv --personnel hcp.csv --payment-year 2025 --upload-date 2024-04-15 \\
            --frequency quarter --seed 7 --out web_out
  ascqr web validate-upload web_out/ASC_WBM_PY2025_04_15_2024.csv
  ascqr web sample --records records.csv --facility 1234567893 --measure asc9 --year 2023 --seed 7 --out s.csv"
    )]
    Web(WebArgs),
}

#[derive(clap::Args)]
struct WebArgs {
    #[command(subcommand)]
    action: Option<WebAction>,
    /// Abstraction records CSV (one row per encounter).
    #[arg(long)]
    records: Option<PathBuf>,
    /// ASC-20 personnel CSV (facility_npi, week_start, eligible_personnel, contraindicated, completed_course).
    #[arg(long)]
    personnel: Option<PathBuf>,
    /// Payment year (reporting year + 2), e.g. 2025 for CY 2023 encounters.
    #[arg(long)]
    payment_year: Option<i32>,
    /// Upload date in the HQR file name (YYYY-MM-DD); default today.
    #[arg(long)]
    upload_date: Option<String>,
    /// Sampling frequency: year, quarter or month.
    #[arg(long, default_value = "year")]
    frequency: String,
    /// Sampling seed; the same seed and records give the same sample.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output directory.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum WebAction {
    /// Check an HQR batch file as HQR does; any error rejects the whole file (exit code 2).
    #[command(after_help = "Example:\n  ascqr web validate-upload ASC_WBM_PY2025_04_15_2024.csv")]
    ValidateUpload {
        /// The batch file, named ASC_WBM_PY20YY_mm_dd_yyyy.csv.
        file: PathBuf,
    },
    /// Write one facility's sampled encounter ids for ASC-9, ASC-11 or ASC-13.
    #[command(after_help = "Example:\n  ascqr web sample --records records.csv --facility 1234567893 --measure asc13 --year 2023 --seed 7 --out s.csv")]
    Sample {
        /// Abstraction records (layout: data-dictionary/web/README.md).
        #[arg(long)]
        records: PathBuf,
        /// Facility NPI.
        #[arg(long)]
        facility: String,
        /// asc9, asc11 or asc13.
        #[arg(long)]
        measure: String,
        /// Reporting (encounter) calendar year.
        #[arg(long)]
        year: i32,
        /// Sampling period: year, quarter or month (Section 2 sizes per period).
        #[arg(long, default_value = "year")]
        frequency: String,
        /// Sampling seed; the same seed and records give the same sample.
        #[arg(long)]
        seed: u64,
        /// CSV of the sampled encounters: facility, measure, year, population and sample size, frequency, encounter id.
        #[arg(long)]
        out: PathBuf,
    },
}

fn parse_frequency(name: &str) -> ascqr::Result<ascqr::web::sampling::Frequency> {
    ascqr::web::sampling::Frequency::parse(name)
        .ok_or_else(|| ascqr::AscqrError::InvalidOption(format!("--frequency {name}: expected year, quarter or month")))
}

fn run_web(args: WebArgs) -> ascqr::Result<()> {
    let missing = |flag: &str| ascqr::AscqrError::InvalidOption(format!("ascqr web needs {flag}"));
    match args.action {
        Some(WebAction::ValidateUpload { file }) => {
            let errors = ascqr::web::hqr::validate_upload(&file)?;
            if errors.is_empty() {
                println!("{}: valid, no errors", file.display());
                return Ok(());
            }
            for e in &errors {
                println!("{}: {e}", file.display());
            }
            Err(ascqr::AscqrError::Other(format!("{}: file rejected: {} error(s)", file.display(), errors.len())))
        }
        Some(WebAction::Sample { records, facility, measure, year, frequency, seed, out }) => {
            let measure = ascqr::web::outcome::Measure::from_cli_name(&measure)
                .ok_or_else(|| ascqr::AscqrError::InvalidOption(format!("--measure {measure}: expected asc9, asc11 or asc13")))?;
            let s = ascqr::web::run_sample(&records, &facility, measure, year, parse_frequency(&frequency)?, seed, &out)?;
            if s.rejections > 0 {
                tracing::warn!("{} record value(s) rejected; run `ascqr web` to see them in rejects.csv", s.rejections);
            }
            println!(
                "{} at {facility}: population {}, sample {} ({}); wrote {}",
                measure.label(),
                s.population_size,
                s.sample_size,
                s.frequency.code(),
                out.display()
            );
            Ok(())
        }
        None => {
            let records = args.records.ok_or_else(|| missing("--records"))?;
            let payment_year = args.payment_year.ok_or_else(|| missing("--payment-year"))?;
            let out = args.out.ok_or_else(|| missing("--out"))?;
            let upload_date = match args.upload_date {
                Some(d) => chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
                    .map_err(|_| ascqr::AscqrError::InvalidOption(format!("--upload-date {d}: expected YYYY-MM-DD")))?,
                None => chrono::Local::now().date_naive(),
            };
            let options = ascqr::web::WebOptions { payment_year, upload_date, frequency: parse_frequency(&args.frequency)?, seed: args.seed };
            let r = ascqr::web::run(&records, args.personnel.as_deref(), &options, &out)?;
            println!(
                "{} records accepted, {} personnel weeks accepted, {} rejected value(s) (reporting year {})",
                r.accepted_records,
                r.accepted_personnel_weeks,
                r.rejections.len(),
                options.reporting_year()
            );
            println!("wrote {}, {} and {}", r.web_measures.display(), r.rejects.display(), r.hqr_file.display());
            Ok(())
        }
    }
}

/// `VAR=P` of --what-if-share.
fn parse_share(s: &str) -> std::result::Result<(String, f64), String> {
    let (name, share) = s.split_once('=').ok_or_else(|| format!("{s:?}: expected VAR=P, e.g. diabetes=0.3"))?;
    let share: f64 = share.trim().parse().map_err(|_| format!("{s:?}: {share:?} is not a number"))?;
    Ok((name.trim().to_string(), share))
}

/// The screen summary of one measure's forecast.
fn print_forecast(r: &ascqr::forecast::facility::FacilityForecast) {
    let f = &r.forecast;
    let p = &r.published;
    let unit = match p.unit.as_str() {
        "per_1000" => " per 1,000",
        "per_100" => " per 100",
        _ => " (ratio)",
    };
    println!("== {} forecast for ASC {}, period {} to {}", r.measure, r.facility, r.period.0, r.period.1);
    println!("   model: {}", f.model_label);
    for w in &r.model_warnings {
        println!("   warning: {w}");
    }
    println!("   observed: {} cases, {} visits; expected {:.1} at the national average", f.observed_cases, f.observed_visits, f.expected_visits);
    if f.simulated_cases > 0.0 {
        println!("   scored: {} cases, {} of them with simulated outcomes", f.scored_cases, f.simulated_cases);
    }
    if f.scored_cases == 0.0 {
        println!("   no case to score in this period: {}", f.most_likely_category);
        return;
    }
    println!("   forecast{unit}: {} (95% interval {} to {}); national {}", p.value, p.interval.0, p.interval.1, p.national);
    let percent = |v: f64| if v > 0.0 && v < 0.005 { "<1%".to_string() } else if v < 1.0 && v > 0.995 { ">99%".to_string() } else { format!("{:.0}%", v * 100.0) };
    let probabilities: Vec<String> = f.category_probabilities.iter().filter(|(_, &v)| v > 0.0).map(|(k, &v)| format!("{k} {}", percent(v))).collect();
    println!("   category: {}", probabilities.join(" · "));
    println!("   uncertainty included: {}", f.uncertainty_included.join("; "));
    println!("   not included: {}", f.uncertainty_not_included.join("; "));
}

fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_prefix(what.to_string());
    bar
}

/// How many rows of a boolean column are true (0 when the column is absent).
fn print_run_summary(result: &ascqr::pipeline::RunResult) {
    println!("{:<7} {:>23} {:>9} {:>8} {:>9}  {:<26} {}", "measure", "period", "cases", "events", "rate", "model", "better / no different / worse / too small");
    for r in &result.measures {
        let period = format!("{}..{}", r.period.0, r.period.1);
        match &r.fit {
            None => println!("{:<7} {period:>23} {:>9}  (no model: empty cohort)", r.measure, 0),
            Some(fit) => {
                let s = &fit.summary;
                let [better, no_different, worse, too_small] = ascqr::standardize::category_counts(&fit.facilities);
                println!(
                    "{:<7} {period:>23} {:>9} {:>8} {:>8.2}%  {:<26} {} / {} / {} / {}",
                    r.measure,
                    s.cases,
                    s.events,
                    100.0 * s.national_observed_rate,
                    format!("{} {}", s.status.method.as_str(), if s.status.converged { "converged" } else { "NOT converged" }),
                    better,
                    no_different,
                    worse,
                    too_small,
                );
            }
        }
    }
    if let Some(w) = &result.web {
        println!("web-based measures: {} records accepted, {} rejected value(s); HQR file {}", w.accepted_records, w.rejections.len(), w.hqr_file.display());
    }
    for w in &result.warnings {
        println!("warning: {w}");
    }
    println!(
        "wrote {0}/report.html, {0}/facility_report.csv (.parquet), {0}/national.csv and {0}/manifest.json; per-procedure files (protected health information) under {0}/<measure>/",
        result.out.display()
    );
}

fn count_true(df: &polars::prelude::DataFrame, column: &str) -> u64 {
    df.column(column).ok().and_then(|c| c.bool().ok().map(|b| b.sum().unwrap_or(0))).unwrap_or(0) as u64
}

fn default_rejects(claims: &Path) -> PathBuf {
    let name = claims.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "claims".into());
    claims.parent().unwrap_or(Path::new(".")).join(format!("{name}_rejects.csv"))
}

/// The embedded dictionary, or it overlaid with a user's directory (logged file by file).
fn load_dictionary(dir: Option<&Path>) -> ascqr::Result<ascqr::dictionary::Dictionary> {
    let d = ascqr::dictionary::Dictionary::load(dir)?;
    for f in &d.overrides {
        tracing::info!("data dictionary: {f} taken from {}", dir.map(|p| p.display().to_string()).unwrap_or_default());
    }
    Ok(d)
}

fn run(cli: Cli) -> ascqr::Result<()> {
    match cli.command {
        Command::Synth { out, seed, scale, years, format, annual_volume, background, background_diagnoses, ccw } => {
            let options = SynthOptions::new(seed, scale, &years, format)?.with_annual_volume(annual_volume);
            let background = background.unwrap_or(options.background);
            let options = options.with_background(background, background_diagnoses);
            let bar = progress_bar(0, "synth");
            let summary = ascqr::synth::generate(&out, &options, &bar)?;
            bar.finish_and_clear();
            println!("{}", summary.table());
            if let Some(dir) = ccw {
                let bar = progress_bar(0, "ccw");
                let files = ascqr::claims::ccw::write_raw_as_ccw(&out, &dir, &bar)?;
                bar.finish_and_clear();
                println!("CCW delivery: {} ({} .dat files with their .fts)", dir.display(), files.len());
            }
        }
        Command::Ingest { claims, layout, shards, out } => {
            let bar = progress_bar(0, "ingest");
            let manifest = ascqr::claims::ingest(&claims, &ascqr::claims::IngestOptions { layout, shards }, &out, &bar)?;
            bar.finish_and_clear();
            print!("{}", ascqr::claims::validate::summary_table(&manifest.tables));
            println!("prepared extract: {} ({} shard{}, {})", out.display(), manifest.shards, if manifest.shards == 1 { "" } else { "s" }, manifest.layout);
            println!("reject file: {}", out.join(ascqr::claims::extract::REJECTS_FILE).display());
        }
        Command::Validate { claims, layout, rejects, report_json } => {
            let rejects = rejects.unwrap_or_else(|| default_rejects(&claims));
            let bar = progress_bar(0, "validate");
            let report = ascqr::claims::validate(&claims, layout, &rejects, &bar)?;
            bar.finish_and_clear();
            print!("{}", report.summary_table());
            println!("reject file: {}", rejects.display());
            if let Some(path) = report_json {
                let json = serde_json::to_vec_pretty(&report).map_err(|e| ascqr::AscqrError::Other(e.to_string()))?;
                ascqr::output::write_atomic(&path, &json)?;
            }
        }
        Command::Cohort { claims, measure, period, dictionary, ccn_crosswalk, out } => {
            let period = period.as_deref().map(ascqr::cohort::Period::parse).transpose()?;
            let dict = load_dictionary(dictionary.as_deref())?;
            let crosswalk = ccn_crosswalk.as_deref().map(ascqr::cohort::CcnCrosswalk::read).transpose()?;
            ascqr::memory::return_large_blocks_to_the_system();
            let mut built = ascqr::cohort::build(&claims, measure, period, &dict)?;
            if let Some(crosswalk) = &crosswalk {
                ascqr::cohort::attach_facility_ccn(&mut built, crosswalk)?;
            }
            ascqr::cohort::write(&out, &built)?;
            println!("{:<48} {:>12} {:>10} {:>12}", "step", "in", "excluded", "out");
            for s in &built.attrition {
                println!("{:<48} {:>12} {:>10} {:>12}", s.step, s.procedures_in, s.excluded, s.procedures_out);
            }
            println!(
                "{} procedures in the cohort, {} with an unplanned hospital visit within 7 days",
                built.cohort.height(),
                ascqr::cohort::unplanned_visits(&built.cohort)?
            );
            println!("wrote {}", out.display());
        }
        Command::Features { cohort, claims, dictionary, out } => {
            let path = cohort.join("cohort.parquet");
            let df = ascqr::output::read_parquet(&path)?;
            let measure = df
                .column("measure")
                .ok()
                .and_then(|c| c.str().ok().and_then(|s| s.get(0).map(str::to_string)))
                .and_then(|m| ascqr::dictionary::MeasureId::from_name(&m))
                .ok_or_else(|| ascqr::AscqrError::Other(format!("{}: no `measure` column with a measure name", path.display())))?;
            let dict = load_dictionary(dictionary.as_deref())?;
            let analysis = ascqr::risk::analysis_frame(&claims, measure, &df, &dict)?;
            ascqr::risk::write_analysis(&out, measure, &analysis, &dict)?;
            println!("{measure}: {} procedures, {} risk variables; wrote {}", analysis.height(), dict.measure(measure).risk_variables.len(), out.display());
            // Codes outside the crosswalk set no variable: say how many, and which are commonest.
            let unmapped = ascqr::risk::write_unmapped_codes(&claims, &dict, &out.join("unmapped_codes.csv"), false)?;
            let top: Vec<String> = unmapped.most_frequent.iter().map(|(code, n)| format!("{code} ({n})")).collect();
            println!(
                "{} distinct ICD-10-CM codes in the extract map to no condition category of the crosswalk (unmapped_codes.csv); most frequent: {}",
                unmapped.distinct_codes,
                top.join(", ")
            );
        }
        Command::ImportCodes { workbook, sheet, measure, list, code_column, version, out } => {
            let options = ascqr::dictionary::workbook::WorkbookImportOptions { workbook, sheet, measure, list, code_column, version, out };
            let r = ascqr::dictionary::workbook::import_code_list(&options)?;
            println!(
                "sheet {}: header on row {}, {} rows below it ({} blank, {} repeating an earlier code): {} codes written to {}",
                r.sheet, r.header_row, r.rows_read, r.blank_rows, r.repeated_rows, r.codes, r.output
            );
            let show = |codes: &[String]| {
                let head: Vec<&str> = codes.iter().take(20).map(String::as_str).collect();
                format!("{}{}", head.join(" "), if codes.len() > 20 { format!(" ... ({} in all)", codes.len()) } else { String::new() })
            };
            if !r.codes_not_in_previous_list.is_empty() {
                println!("{} codes not in the previous list: {}", r.codes_not_in_previous_list.len(), show(&r.codes_not_in_previous_list));
            }
            if !r.previous_codes_not_in_workbook.is_empty() {
                println!("{} codes of the previous list not in the workbook (dropped): {}", r.previous_codes_not_in_workbook.len(), show(&r.previous_codes_not_in_workbook));
            }
            if !r.without_work_rvu.is_empty() {
                println!("warning: {} codes have no work RVU (the work RVU variable reads 0 for them): {}", r.without_work_rvu.len(), show(&r.without_work_rvu));
            }
            if !r.without_procedure_type.is_empty() {
                println!("warning: {} codes have no procedure type: {}", r.without_procedure_type.len(), show(&r.without_procedure_type));
            }
        }
        Command::ImportCc { input, version, out } => {
            let dict = ascqr::dictionary::Dictionary::embedded()?;
            let r = ascqr::dictionary::import_cc_crosswalk(&input, &out, &version, dict)?;
            println!("{} rows read: {} code-category mappings for {} codes written to {}", r.rows_read, r.mappings, r.codes, r.output);
            if !r.categories_used_but_empty.is_empty() {
                let list: Vec<String> = r.categories_used_but_empty.iter().map(u16::to_string).collect();
                println!("warning: categories used by risk variables with no code in this crosswalk: {}", list.join(", "));
            }
        }
        Command::Eligibility { claims, year, out } => {
            let df = ascqr::eligibility::claim_counts(&claims, year)?;
            let below = count_true(&df, "below_threshold");
            println!(
                "{} ASCs billed in {year}; {below} had fewer than {} claims",
                df.height(),
                ascqr::eligibility::MINIMUM_CLAIMS
            );
            let ids = df.column("facility_npi").and_then(|c| c.str().cloned()).ctx(|| "eligibility".into())?;
            let counts = df.column("claims").and_then(|c| c.i64().cloned()).ctx(|| "eligibility".into())?;
            let flags = df.column("below_threshold").and_then(|c| c.bool().cloned()).ctx(|| "eligibility".into())?;
            let mut text = String::from("facility_npi,claims,below_threshold\n");
            for i in 0..df.height() {
                let line = format!("{},{},{}\n", ids.get(i).unwrap_or(""), counts.get(i).unwrap_or(0), flags.get(i).unwrap_or(false));
                if flags.get(i) == Some(true) {
                    print!("  {line}");
                }
                text.push_str(&line);
            }
            if let Some(path) = out {
                ascqr::output::write_atomic(&path, text.as_bytes())?;
                println!("wrote {}", path.display());
            }
        }
        Command::Fit { data, outcome, group, covariates, cases, method, agq_points, bootstrap, seed, min_cases, compare, max_iterations, save_model_for, model_label, dictionary, out } => {
            let spec = ascqr::hglm::DataSpec { outcome, group, covariates, cases };
            let analysis = ascqr::hglm::AnalysisData::read(&data, &spec)?;
            tracing::info!(
                "{}: {} rows, {} facilities, {} covariate patterns",
                data.display(),
                analysis.input_rows,
                analysis.groups.len(),
                analysis.patterns()
            );
            let request = ascqr::hglm::FitRequest {
                data: spec,
                fit: ascqr::hglm::FitOptions { method, agq_points, max_iterations, ..Default::default() },
                bootstrap: (bootstrap > 0).then_some(ascqr::hglm::BootstrapOptions { replicates: bootstrap, seed }),
                min_cases,
                compare,
            };
            let bar = progress_bar(0, "bootstrap");
            let output = ascqr::hglm::run(&analysis, &request, &bar)?;
            bar.finish_and_clear();
            ascqr::hglm::write_output(&out, &output)?;
            let s = &output.summary;
            println!("method {}: {} ({} iterations)", s.status.method.as_str(), s.status.termination, s.status.iterations);
            for w in &s.status.warnings {
                println!("warning: {w}");
            }
            println!("{} = {:.6}", s.status.objective_name, s.status.objective);
            for c in &s.coefficients {
                let se = c.std_error.map(|v| format!("{v:.6}")).unwrap_or_else(|| "NA".into());
                println!("  {:<28} {:>12.6}  se {se}", c.name, c.estimate);
            }
            println!("  random intercept SD          {:>12.6}", s.random_intercept_sd);
            println!("cases {}, events {}, facilities {}, national observed rate {:.6}", s.cases, s.events, s.facilities, s.national_observed_rate);
            println!("wrote {} and {}", out.join("model.json").display(), out.join("facilities.parquet").display());
            if let Some(m) = save_model_for {
                let dict = load_dictionary(dictionary.as_deref())?;
                let label = model_label.unwrap_or_else(|| format!("{m} fitted by ascqr fit on {}", data.display()));
                let saved = ascqr::saved_model::SavedModel::from_fit(&label, m, &dict, &analysis, &output)?;
                println!("wrote {}", saved.save(&out)?.display());
            }
        }
        Command::SynthAnalysis { rows, facilities, covariates, rate, tau, seed, out } => {
            if !(rate > 0.0 && rate < 1.0) {
                return Err(ascqr::AscqrError::InvalidOption(format!("--rate {rate}: expected a rate between 0 and 1")));
            }
            let spec = ascqr::hglm::simulate::SimulationSpec { rows, facilities, covariates, rate, tau, seed };
            let n = ascqr::hglm::simulate::write_analysis_file(&spec, &out)?;
            println!("wrote {n} rows to {}", out.display());
        }
        Command::Run { claims, settings, jobs, out } => {
            let config = settings.config()?;
            let dict = load_dictionary(config.dictionary.as_deref())?;
            let result = ascqr::pipeline::run_with_jobs(&claims, &config, &dict, std::env::args().collect(), &out, jobs)?;
            print_run_summary(&result);
        }
        Command::RunShard { extract, shard, settings, out } => {
            let config = settings.config()?;
            let dict = load_dictionary(config.dictionary.as_deref())?;
            let part = ascqr::pipeline::run_shard(&extract, shard, &config, &dict, &out)?;
            let rows: Vec<String> = part.cohort_rows.iter().map(|(m, n)| format!("{m} {n}")).collect();
            println!("part of shard {} of {}: {} (cohort procedures: {})", part.shard, part.of, out.display(), rows.join(", "));
        }
        Command::Merge { parts, extract, settings, out } => {
            let config = settings.config()?;
            let dict = load_dictionary(config.dictionary.as_deref())?;
            let result = ascqr::pipeline::merge(&parts, extract.as_deref(), &config, &dict, std::env::args().collect(), &out)?;
            print_run_summary(&result);
        }
        Command::Forecast { model, claims, facility, period, through_year, dictionary, what_if_visits, project_cases, what_if_cases, what_if_share, model_data, draws, seed, out } => {
            let dict = load_dictionary(dictionary.as_deref())?;
            let request = ascqr::forecast::facility::ForecastRequest {
                model,
                claims,
                facility,
                period,
                through_year,
                what_if: ascqr::forecast::facility::WhatIf { visits: what_if_visits, project_cases, cases: what_if_cases, shares: what_if_share },
                options: ascqr::forecast::ForecastOptions { draws, seed, ..Default::default() },
                model_data,
            };
            let results = ascqr::forecast::facility::run(&request, &dict)?;
            let written = ascqr::forecast::facility::write(&out, &results)?;
            for r in &results {
                print_forecast(r);
            }
            for path in written {
                println!("wrote {}", path.display());
            }
        }
        Command::ForecastCheck { run, measure, months, draws, seed, bins, out } => {
            let options = ascqr::forecast::check::CheckOptions { months, forecast: ascqr::forecast::ForecastOptions { draws, seed, ..Default::default() }, bins };
            let report = ascqr::forecast::check::check(&run, measure, &options)?;
            ascqr::forecast::check::write(&out, &report)?;
            let markdown = report.calibration_markdown();
            println!("{measure}: {} facilities reach the minimum case count", report.facilities);
            println!("  forecast from all cases: largest |forecast − run| = {:.4} of the run's interval width", report.largest_estimate_difference);
            println!("  run estimate inside the forecast interval: {} of {}", report.run_estimate_covered, report.facilities);
            println!("  most likely category = run's category: {} of {}", report.same_category, report.facilities);
            println!("calibration of the forecast from the first {months} months, projected to the whole period:\n{markdown}");
            println!("wrote {}", out.display());
        }
        Command::Report { run } => {
            let path = ascqr::report::html::write_report(&run)?;
            println!("wrote {}", path.display());
        }
        Command::Web(args) => run_web(args)?,
        Command::Demo { out, seed, scale, bootstrap, background } => {
            let started = std::time::Instant::now();
            let claims = out.join("claims");
            tracing::info!("generating a synthetic extract in {}", claims.display());
            let options = SynthOptions::new(seed, scale, "2021-2023", FileFormat::Parquet)?;
            let (background, diagnoses) = (background.unwrap_or(options.background), options.background_diagnoses);
            let options = options.with_background(background, diagnoses);
            let bar = progress_bar(0, "synth");
            let summary = ascqr::synth::generate(&claims, &options, &bar)?;
            bar.finish_and_clear();
            println!("== synthetic extract (seed {seed}) in {}\n{}", claims.display(), summary.table());
            let extract = out.join("extract");
            let bar = progress_bar(0, "ingest");
            let ingested = ascqr::claims::ingest(&claims, &ascqr::claims::IngestOptions { layout: Layout::Canonical, shards: None }, &extract, &bar)?;
            bar.finish_and_clear();
            println!("== ingest into {} ({} shard{})\n{}", extract.display(), ingested.shards, if ingested.shards == 1 { "" } else { "s" }, ascqr::claims::validate::summary_table(&ingested.tables));
            let config = ascqr::pipeline::RunConfig {
                bootstrap: Some(bootstrap),
                seed: Some(seed),
                web_records: Some(claims.join("web/records.csv")),
                web_personnel: Some(claims.join("web/personnel.csv")),
                ..Default::default()
            };
            let dict = ascqr::dictionary::Dictionary::embedded()?;
            let run_dir = out.join("run");
            println!("== ascqr run (bootstrap {bootstrap}, seed {seed}) into {}", run_dir.display());
            let result = ascqr::pipeline::run(&extract, &config, dict, std::env::args().collect(), &run_dir)?;
            print_run_summary(&result);
            println!("\n== cohorts against the generator's truth (same performance period)");
            println!("{:<8} {:>10} {:>10} {:>10} {:>10}   result", "measure", "cohort", "truth", "visits", "truth");
            let mut all_agree = true;
            for r in &result.measures {
                let period = ascqr::cohort::Period::parse(&format!("{}..{}", r.period.0, r.period.1))?;
                let (truth_n, truth_events) = ascqr::synth::truth_counts_in_period(&claims, r.measure, period)?;
                let n = r.attrition.last().map(|s| s.procedures_out).unwrap_or(0);
                let events = r.fit.as_ref().map(|f| f.summary.events.round() as u64).unwrap_or(0);
                let agree = n == truth_n && events == truth_events;
                all_agree &= agree;
                println!("{:<8} {n:>10} {truth_n:>10} {events:>10} {truth_events:>10}   {}", r.measure, if agree { "agree" } else { "DIFFER" });
            }
            println!(
                "\nreport: {}\ndemo finished in {:.0} s{}",
                run_dir.join("report.html").display(),
                started.elapsed().as_secs_f64(),
                if all_agree { "" } else { " — cohort counts DIFFER from the truth (see above)" }
            );
            if !all_agree {
                return Err(ascqr::AscqrError::Other("the demo's cohorts do not match the generator's truth".into()));
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("ascqr=info")),
        )
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
