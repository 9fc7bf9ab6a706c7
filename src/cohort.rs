//! Cohorts of the claims-based measures: index procedures, each exclusion as its own named stage,
//! the attrition table, and the 7-day outcome (methodology §1–§3; manual, ASC-12/17/18/19
//! denominator statements).
//!
//! A procedure is an ASC facility claim (carrier, place of service 24, specialty 49) carrying a
//! qualifying code of the measure; `procedure_id` is its claim id. The numbers (ages, months,
//! days) come from the measure definition's `rules.csv`; the defaults are shown. Stages, in
//! order, each excluding with a named reason (the same names the synthetic truth uses):
//! 1. `not_asc_facility_claim` — facility claims at an ASC (professional and office claims are
//!    not index procedures);
//! 2. `outside_measurement_period`;
//! 3. `within_7_days_of_an_earlier_procedure` — index selection: a procedure on days 0–7 after
//!    the same patient's earlier index procedure of the measure is not an index procedure;
//! 4. `repeat_colonoscopy` (ASC-12) — a colonoscopy on days 1–7 after another colonoscopy of the
//!    patient in any setting (hospital outpatient, office, or a non-index ASC claim);
//! 5. `age_under_65` — age `floor((procedure − birth)/365.25)` below 65;
//! 6. `not_ffs_12_months_before` — Part A and Part B, no Medicare Advantage, in each of the 12
//!    calendar months before the procedure month;
//! 7. `not_ffs_7_days_after` (ASC-17/18/19) — the same in the months of days 0–7 after, unless the
//!    patient died within 7 days;
//! 8. `concurrent_high_risk_procedure` (ASC-12) — a high-risk code on the index claim;
//! 9. `inflammatory_bowel_disease_or_diverticulitis` (ASC-12) — an exclusion diagnosis on the
//!    index claim or on any claim in the 365 days before.
//!
//! Facilities are billing NPIs; [`attach_facility_ccn`] adds the CCN from a user's crosswalk.
//!
//! Every rule looks at one patient's claims, so [`build`] runs the stages on one shard of the
//! prepared extract at a time (a shard holds every claim of its beneficiaries) and merges the
//! shards' cohorts ([`merge`]): the rules' joins hold one shard, whatever the extract's size, and
//! the result is the same whatever the shard count (tests/cohort.rs). This relies on every line
//! of a claim naming the same beneficiary, as in CMS's files and `ascqr synth`'s: validation
//! quarantines a line that names another (`claims::extract`, "a claim line naming another
//! beneficiary").

use crate::claims::{collect_compact, compact_text, scan_table, Table};
use crate::dictionary::{Dictionary, MeasureId, WorkRvuOfSeveral};
use crate::error::{AscqrError, PolarsContext, Result};
use crate::outcome::{first_unplanned_visit_within_window, hospital_visits, OutcomeTables};
use polars::prelude::*;
use std::path::Path;

/// One row of the attrition table.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct AttritionStep {
    pub step: String,
    pub description: String,
    pub procedures_in: u64,
    pub excluded: u64,
    pub procedures_out: u64,
    pub beneficiaries_out: u64,
    pub facilities_out: u64,
}

pub struct CohortResult {
    pub measure: MeasureId,
    /// Which definitions were used: dictionary version, and the code lists by provenance.
    pub definition: serde_json::Value,
    /// In-cohort procedures with their outcome.
    pub cohort: DataFrame,
    /// Excluded procedures with `exclusion_reason`.
    pub excluded: DataFrame,
    pub attrition: Vec<AttritionStep>,
    /// Each attrition step's facilities (`facilities_out` is this set's size), so that results
    /// of disjoint sets of beneficiaries (shards) can be merged ([`merge`]).
    pub step_facilities: Vec<FacilitySet>,
}

/// Measurement period, inclusive, as days since 1970-01-01.
#[derive(Debug, Clone, Copy)]
pub struct Period {
    pub first_day: i32,
    pub last_day: i32,
}

impl Period {
    /// Parses `YYYY-MM-DD..YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Period> {
        let bad = || AscqrError::InvalidOption(format!("--period {s:?}: expected FROM..TO as YYYY-MM-DD..YYYY-MM-DD"));
        let (a, b) = s.split_once("..").ok_or_else(bad)?;
        let a = crate::claims::validate::parse_date(a.trim()).ok_or_else(bad)?;
        let b = crate::claims::validate::parse_date(b.trim()).ok_or_else(bad)?;
        if a > b {
            return Err(bad());
        }
        Ok(Period { first_day: a, last_day: b })
    }
}

fn codes_frame(name: &str, codes: Vec<(String, f64)>) -> Result<DataFrame> {
    let (k, v): (Vec<String>, Vec<f64>) = codes.into_iter().unzip();
    DataFrame::new(k.len(), vec![Column::new(name.into(), k), Column::new("work_rvu".into(), v)]).ctx(|| "code table".into())
}

/// `e` is one of the values in `codes`. Filtering a claims scan with it, rather than joining the
/// scan with the code list, lets polars push the filter into the Parquet reader: each row group
/// is filtered as it is read, so memory follows the matching lines, not the whole table.
pub fn is_one_of(e: Expr, codes: &Column) -> Expr {
    e.is_in(lit(codes.as_materialized_series().clone()).implode(false), false)
}

fn days(e: Expr) -> Expr {
    e.cast(DataType::Int32)
}

/// Qualifying carrier lines → one row per claim: `procedure_id, bene_id, facility_npi,
/// place_of_service, provider_specialty, procedure_date, n_qualifying, primary_hcpcs, work_rvu`.
/// The primary code is the one with the highest work RVU; the claim's work RVU is that highest
/// value or the sum over its qualifying lines (`work_rvu_of_several_procedures` in `rules.csv`).
pub fn qualifying_procedure_claims(carrier: LazyFrame, codes: &DataFrame, work_rvu: WorkRvuOfSeveral) -> LazyFrame {
    let claim_rvu = match work_rvu {
        WorkRvuOfSeveral::Highest => col("work_rvu").first(),
        WorkRvuOfSeveral::Sum => col("work_rvu").sum(),
    };
    carrier
        // The is_in filter reaches the Parquet reader (only matching rows are read); the join
        // afterwards only attaches each code's work RVU to the already-narrow rows.
        .filter(is_one_of(col("hcpcs"), codes.column("hcpcs").expect("a code table has an hcpcs column")))
        .join(codes.clone().lazy(), [col("hcpcs")], [col("hcpcs")], JoinArgs::new(JoinType::Inner))
        .sort(["claim_id", "work_rvu", "hcpcs"], SortMultipleOptions::default().with_order_descending_multi([false, true, false]))
        .group_by_stable([col("claim_id")])
        .agg([
            col("bene_id").first(),
            col("billing_npi").first().alias("facility_npi"),
            col("place_of_service").first(),
            col("provider_specialty").first(),
            col("line_first_date").min().alias("procedure_date"),
            col("hcpcs").len().cast(DataType::Int64).alias("n_qualifying"),
            col("hcpcs").first().alias("primary_hcpcs"),
            claim_rvu,
        ])
        .rename(["claim_id"], ["procedure_id"], true)
}

/// Months (index year·12 + month − 1) in which a beneficiary had Part A, Part B and no MA.
fn ffs_runs(enrollment: LazyFrame) -> LazyFrame {
    enrollment
        .filter(col("part_a").and(col("part_b")).and(col("medicare_advantage").not()))
        .select([
            col("bene_id"),
            (col("year") * lit(12) + col("first_month") - lit(1)).alias("run_first"),
            (col("year") * lit(12) + col("last_month") - lit(1)).alias("run_last"),
        ])
}

fn month_index(date: Expr) -> Expr {
    date.clone().dt().year().cast(DataType::Int64) * lit(12) + date.dt().month().cast(DataType::Int64) - lit(1)
}

/// Flags procedures whose months `req_first..=req_last` are not all fee-for-service A and B.
fn months_not_covered(procs: LazyFrame, runs: LazyFrame) -> LazyFrame {
    let lo = when(col("run_first").gt(col("req_first"))).then(col("run_first")).otherwise(col("req_first"));
    let hi = when(col("run_last").lt(col("req_last"))).then(col("run_last")).otherwise(col("req_last"));
    let covered = procs
        .clone()
        .join(runs, [col("bene_id")], [col("bene_id")], JoinArgs::new(JoinType::Inner))
        .with_column((hi - lo + lit(1)).alias("overlap"))
        .filter(col("overlap").gt(lit(0)))
        .group_by([col("procedure_id")])
        .agg([col("overlap").sum().alias("covered")]);
    procs
        .join(covered, [col("procedure_id")], [col("procedure_id")], JoinArgs::new(JoinType::Left))
        .with_column(col("covered").fill_null(lit(0)).lt(col("req_last") - col("req_first") + lit(1)).alias("fails"))
}

/// Stage 6: FFS Part A and B in each of the `months` (12) calendar months before the procedure
/// month.
pub fn not_ffs_months_before(procs: LazyFrame, enrollment: LazyFrame, months: u32) -> LazyFrame {
    let m = month_index(col("procedure_date"));
    let p = procs.select([col("procedure_id"), col("bene_id"), (m.clone() - lit(months as i64)).alias("req_first"), (m - lit(1)).alias("req_last")]);
    months_not_covered(p, ffs_runs(enrollment)).select([col("procedure_id"), col("fails")])
}

/// Stage 7: FFS Part A and B in the months of days 0..=`after_days` (7) after, unless the patient
/// died in them.
pub fn not_ffs_days_after(procs: LazyFrame, enrollment: LazyFrame, after_days: u32) -> LazyFrame {
    let end = (days(col("procedure_date")) + lit(after_days as i32)).cast(DataType::Date);
    let p = procs.select([
        col("procedure_id"),
        col("bene_id"),
        col("procedure_date"),
        col("death_date"),
        month_index(col("procedure_date")).alias("req_first"),
        month_index(end).alias("req_last"),
    ]);
    let died_within = col("death_date").is_not_null().and(days(col("death_date")).lt_eq(days(col("procedure_date")) + lit(after_days as i32)));
    months_not_covered(p, ffs_runs(enrollment))
        .with_column(col("fails").and(died_within.not()).alias("fails"))
        .select([col("procedure_id"), col("fails")])
}

/// Stage 8 (ASC-12): a concurrent high-risk code billed on the index claim.
pub fn concurrent_high_risk_procedure(procs: LazyFrame, carrier: LazyFrame, high_risk: &DataFrame) -> LazyFrame {
    let flagged = carrier
        .filter(is_one_of(col("hcpcs"), high_risk.column("hcpcs").expect("a code table has an hcpcs column")))
        .select([col("claim_id"), col("hcpcs")])
        .group_by([col("claim_id")])
        .agg([col("hcpcs").len().alias("n_high_risk")]);
    procs
        .select([col("procedure_id")])
        .join(flagged, [col("procedure_id")], [col("claim_id")], JoinArgs::new(JoinType::Left))
        .with_column(col("n_high_risk").is_not_null().alias("fails"))
        .select([col("procedure_id"), col("fails")])
}

/// Diagnoses of all claims in long form, `bene_id, claim_id, claim_date, dx`, keeping only the
/// codes in `codes` (a one-column frame `dx`). One part per diagnosis column, each a filter on
/// that column that the Parquet reader applies as it reads, collected and compacted before the
/// next is read, so memory follows the matching diagnoses, not the table (a join with the code
/// list, or stacking all columns first, loads every row).
pub fn diagnoses_long(carrier: LazyFrame, outpatient: LazyFrame, inpatient: LazyFrame, codes: &DataFrame) -> Result<LazyFrame> {
    let codes = codes.column("dx").expect("a diagnosis code table has a dx column");
    let mut parts = Vec::new();
    let sources = [
        (carrier, "claim_from_date", Table::Carrier),
        (outpatient, "claim_from_date", Table::Outpatient),
        (inpatient, "admission_date", Table::Inpatient),
    ];
    for (lf, date, table) in sources {
        for c in table.spec().diagnosis_columns() {
            // Read and compacted one column at a time: see `compact_text`.
            let part = lf
                .clone()
                .filter(is_one_of(col(c.as_str()), codes))
                .select([col("bene_id"), col("claim_id"), col(date).alias("claim_date"), col(c.as_str()).alias("dx")]);
            parts.push(collect_compact(part).ctx(|| format!("reading {} diagnoses from {}", c, table.name()))?.lazy());
        }
    }
    concat(parts, UnionArgs::default()).ctx(|| "stacking diagnoses".into())
}

/// Stage 9 (ASC-12): an exclusion diagnosis on the index claim or on a claim in the
/// `history_days` (365) days before the procedure.
/// `diagnoses` must already be restricted to the exclusion codes (see [`diagnoses_long`]).
pub fn ibd_or_diverticulitis(procs: LazyFrame, diagnoses: LazyFrame, history_days: u32) -> LazyFrame {
    let hits = diagnoses;
    let offset = days(col("claim_date")) - days(col("procedure_date"));
    let flagged = procs
        .clone()
        .select([col("procedure_id"), col("bene_id"), col("procedure_date")])
        .join(hits, [col("bene_id")], [col("bene_id")], JoinArgs::new(JoinType::Inner))
        .filter(col("claim_id").eq(col("procedure_id")).or(offset.clone().gt_eq(lit(-(history_days as i32))).and(offset.lt_eq(lit(-1)))))
        .group_by([col("procedure_id")])
        .agg([col("dx").len().alias("n_exclusion_dx")]);
    procs
        .select([col("procedure_id")])
        .join(flagged, [col("procedure_id")], [col("procedure_id")], JoinArgs::new(JoinType::Left))
        .with_column(col("n_exclusion_dx").is_not_null().alias("fails"))
        .select([col("procedure_id"), col("fails")])
}

/// Stage 1: an index procedure is an ASC facility claim, place of service 24 billed by provider
/// specialty 49 (methodology §1); the surgeon's professional claim at the ASC is not one.
pub fn not_asc_facility_claim(procs: LazyFrame) -> LazyFrame {
    procs.select([
        col("procedure_id"),
        (col("place_of_service").eq(lit("24")).and(col("provider_specialty").eq(lit("49")))).fill_null(lit(false)).not().alias("fails"),
    ])
}

/// Stage 2: the procedure date lies outside the measurement period (inclusive bounds).
pub fn outside_measurement_period(procs: LazyFrame, p: Period) -> LazyFrame {
    procs.select([
        col("procedure_id"),
        days(col("procedure_date")).lt(lit(p.first_day)).or(days(col("procedure_date")).gt(lit(p.last_day))).alias("fails"),
    ])
}

/// Stage 5: younger than `min_age_years` at the procedure, age being completed years
/// `floor((procedure − birth) / 365.25)`; no beneficiary record (no birth date) fails too.
/// `floor(d / 365.25) < a  ⇔  d < a × 365.25` for whole days `d`.
pub fn under_min_age(procs: LazyFrame, min_age_years: u32) -> LazyFrame {
    let age_days = (days(col("procedure_date")) - days(col("birth_date"))).cast(DataType::Float64);
    procs.select([col("procedure_id"), age_days.lt(lit(min_age_years as f64 * 365.25)).fill_null(lit(true)).alias("fails")])
}

/// Stage 4 (ASC-12): the colonoscopy repeats another colonoscopy of the same patient done on
/// days 1..=`lookback_days` before, in any setting — carrier lines (an ASC claim that is not an
/// index procedure, an office or a professional claim) or hospital outpatient lines. Its visits
/// would belong to the earlier procedure's window. Same-day claims are left to index selection,
/// since the professional claim for the index colonoscopy itself falls on day 0.
/// `colonoscopy_codes` is a frame with an `hcpcs` column (ASC-12's cohort and high-risk codes).
pub fn repeat_colonoscopy(procs: LazyFrame, carrier: LazyFrame, outpatient: LazyFrame, colonoscopy_codes: &DataFrame, lookback_days: u32) -> LazyFrame {
    let codes = colonoscopy_codes.column("hcpcs").expect("a code table has an hcpcs column");
    // Each source is narrowed to colonoscopy lines as it is read, so memory follows the matches.
    let colonoscopies = |lines: LazyFrame| lines.filter(is_one_of(col("hcpcs"), codes));
    let earlier = concat(
        [
            colonoscopies(carrier).select([col("bene_id"), col("line_first_date").alias("earlier_date"), col("hcpcs")]),
            colonoscopies(outpatient).select([col("bene_id"), col("revenue_center_date").fill_null(col("claim_from_date")).alias("earlier_date"), col("hcpcs")]),
        ],
        UnionArgs::default(),
    )
    .expect("frames with the same columns");
    let gap = days(col("procedure_date")) - days(col("earlier_date"));
    let flagged = procs
        .clone()
        .select([col("procedure_id"), col("bene_id"), col("procedure_date")])
        .join(earlier, [col("bene_id")], [col("bene_id")], JoinArgs::new(JoinType::Inner))
        .filter(gap.clone().gt_eq(lit(1)).and(gap.lt_eq(lit(lookback_days as i32))))
        .group_by([col("procedure_id")])
        .agg([col("hcpcs").len().alias("n_earlier")]);
    procs
        .select([col("procedure_id")])
        .join(flagged, [col("procedure_id")], [col("procedure_id")], JoinArgs::new(JoinType::Left))
        .with_column(col("n_earlier").is_not_null().alias("fails"))
        .select([col("procedure_id"), col("fails")])
}

/// Index selection: a patient's qualifying procedures are taken in date order (then by
/// procedure id); a procedure on days 0..=`window_days` (7) after the patient's last *index*
/// procedure is not an index procedure itself (its hospital visits are outcomes of the earlier
/// one). Greedy, so a chain at days 0, 5, 10 keeps days 0 and 10. [reconstructed: the manual
/// counts each procedure once and measures visits within 7 days of it; overlapping windows are
/// our rule, `index_window_days` in `rules.csv`.]
pub fn within_window_of_an_earlier_index_procedure(procs: &DataFrame, window_days: u32) -> Result<LazyFrame> {
    let ctx = || "index selection".to_string();
    let ids = procs.column("procedure_id").and_then(|c| c.str().cloned()).ctx(ctx)?;
    let benes = procs.column("bene_id").and_then(|c| c.str().cloned()).ctx(ctx)?;
    let dates = procs.column("procedure_date").and_then(|c| c.cast(&DataType::Int32)).ctx(ctx)?;
    let dates = dates.i32().ctx(ctx)?.clone();
    let mut order: Vec<usize> = (0..procs.height()).collect();
    order.sort_by(|&a, &b| {
        benes.get(a).cmp(&benes.get(b)).then(dates.get(a).cmp(&dates.get(b))).then(ids.get(a).cmp(&ids.get(b)))
    });
    let mut fails = vec![false; procs.height()];
    let mut last: Option<(Option<&str>, i32)> = None;
    for &i in &order {
        let (b, d) = (benes.get(i), dates.get(i).unwrap_or(i32::MIN));
        match last {
            Some((lb, ld)) if lb == b && d - ld <= window_days as i32 => fails[i] = true,
            _ => last = Some((b, d)),
        }
    }
    let ids: Vec<Option<&str>> = (0..procs.height()).map(|i| ids.get(i)).collect();
    Ok(DataFrame::new(procs.height(), vec![Column::new("procedure_id".into(), ids), Column::new("fails".into(), fails)])
        .ctx(ctx)?
        .lazy())
}

/// Procedures, beneficiaries and facilities of `df`, and the facilities themselves: shards of
/// beneficiaries are disjoint, so their procedure and beneficiary counts add up, but one facility
/// serves patients of many shards and its count is taken over the union.
fn counts(df: &DataFrame) -> Result<(u64, u64, FacilitySet)> {
    let n = df.height() as u64;
    let b = df.column("bene_id").and_then(|c| c.n_unique()).ctx(|| "counting".into())? as u64;
    let f = df.column("facility_npi").and_then(|c| c.unique()).ctx(|| "counting".into())?;
    let f: FacilitySet = f.str().ctx(|| "counting".into())?.iter().map(|v| v.map(str::to_string)).collect();
    Ok(if n == 0 { (0, 0, FacilitySet::new()) } else { (n, b, f) })
}

/// The facilities (NPIs, or none) left after an attrition step.
pub type FacilitySet = std::collections::BTreeSet<Option<String>>;

struct Attrition {
    steps: Vec<AttritionStep>,
    /// Each step's facilities, for merging shards (`facilities_out` is this set's size).
    facilities: Vec<FacilitySet>,
    excluded: Vec<DataFrame>,
}

impl Attrition {
    /// Applies one rule: `fails` (procedure_id, fails) marks procedures to exclude.
    fn apply(&mut self, procs: DataFrame, step: &str, description: &str, fails: LazyFrame) -> Result<DataFrame> {
        let ctx = || format!("cohort stage {step}");
        let marked = procs
            .lazy()
            .join(fails, [col("procedure_id")], [col("procedure_id")], JoinArgs::new(JoinType::Left))
            .with_column(col("fails").fill_null(lit(false)))
            // On the streaming engine the claims tables a rule joins (enrollment above all) flow
            // through the join in batches instead of being loaded whole (README, "Memory against
            // years"). A query with one sink has one result; `unwrap_single` cannot fail here.
            .collect_with_engine(Engine::Streaming)
            .map(|r| r.unwrap_single())
            .ctx(ctx)?;
        let kept = marked.clone().lazy().filter(col("fails").not()).drop(cols(["fails"])).collect().ctx(ctx)?;
        let out = marked
            .lazy()
            .filter(col("fails"))
            .select([col("procedure_id"), col("bene_id"), col("facility_npi"), col("procedure_date"), lit(step).alias("exclusion_reason")])
            .collect()
            .ctx(ctx)?;
        let (n_out, b_out, f_out) = counts(&kept)?;
        let built = AttritionStep {
            step: step.to_string(),
            description: description.to_string(),
            procedures_in: n_out + out.height() as u64,
            excluded: out.height() as u64,
            procedures_out: n_out,
            beneficiaries_out: b_out,
            facilities_out: f_out.len() as u64,
        };
        tracing::debug!("cohort stage {step}: {} in, {} excluded", built.procedures_in, built.excluded);
        self.steps.push(built);
        self.facilities.push(f_out);
        self.excluded.push(out);
        Ok(kept)
    }

    /// The counts of two shards added up (facilities as the union of their sets).
    fn add(mut self, other: Attrition) -> Result<Attrition> {
        let same_steps = self.steps.len() == other.steps.len() && self.steps.iter().zip(&other.steps).all(|(a, b)| a.step == b.step);
        if !same_steps {
            return Err(AscqrError::Other("internal error: shards ran different cohort steps".into()));
        }
        for ((a, b), (fa, fb)) in self.steps.iter_mut().zip(other.steps).zip(self.facilities.iter_mut().zip(other.facilities)) {
            a.procedures_in += b.procedures_in;
            a.excluded += b.excluded;
            a.procedures_out += b.procedures_out;
            a.beneficiaries_out += b.beneficiaries_out;
            fa.extend(fb);
        }
        Ok(self)
    }
}

/// Builds the cohort of `measure` from the prepared extract in `claims_dir`, with the measure's
/// definition version in `dict` (codes and rules), one shard at a time, each shard's tables
/// decoded once and held in memory while its stages run (as `run-shard` does). Why held: the
/// stages filter the claims with code lists, and polars plans a filter on a Parquet scan with a
/// list of up to 100 codes as one statistics test per code: planning the 62 exclusion-diagnosis
/// reads of ASC-12 took 3.4 s per national shard, filtering held tables a few milliseconds each
/// (`benches/results/cohort_by_years.md`). An extract of one shard, or a shard view, is read in
/// one pass from its files: holding it would hold the whole extract.
pub fn build(claims_dir: &Path, measure: MeasureId, period: Option<Period>, dict: &Dictionary) -> Result<CohortResult> {
    let manifest = crate::claims::extract::read_manifest(claims_dir)?;
    if manifest.view_of.is_some() || manifest.shards == 1 {
        return build_with_visits(claims_dir, measure, period, dict, None);
    }
    // Views are a manifest each, no claims: a temporary folder holds them.
    let views = tempfile::tempdir().map_err(|e| AscqrError::io(&std::env::temp_dir(), e))?;
    let mut parts = Vec::with_capacity(manifest.shards as usize);
    for shard in 0..manifest.shards {
        tracing::info!("{measure} cohort: shard {} of {}", shard + 1, manifest.shards);
        let view = views.path().join(format!("shard-{shard}"));
        crate::claims::extract::write_shard_view(claims_dir, &[shard], &view)?;
        let _held = crate::claims::source::hold_in_memory(&view)?;
        parts.push(build_with_visits(&view, measure, period, dict, None)?);
    }
    let merged = merge(parts)?;
    for s in &merged.attrition {
        tracing::info!("{measure} cohort stage {}: {} in, {} excluded", s.step, s.procedures_in, s.excluded);
    }
    Ok(merged)
}

/// Every hospital visit in the claims of `claims_dir` (ED visits, observation stays, inpatient
/// admissions with the planned admission algorithm's decision): the same for every measure, so
/// a shard finds them once for all four ([`build_with_visits`]).
pub fn hospital_visits_in(claims_dir: &Path, dict: &Dictionary) -> Result<DataFrame> {
    let tables = OutcomeTables::from_dictionary(dict)?;
    let visits = hospital_visits(scan_table(claims_dir, Table::Outpatient)?, scan_table(claims_dir, Table::Inpatient)?, &tables);
    collect_compact(visits).ctx(|| "finding hospital visits".into())
}

/// The cohort stages over every claim `claims_dir` names, in one pass, with the hospital visits
/// of [`hospital_visits_in`] when they were found beforehand for the same claims. [`build`] calls
/// it once per shard.
pub fn build_with_visits(claims_dir: &Path, measure: MeasureId, period: Option<Period>, dict: &Dictionary, visits: Option<&DataFrame>) -> Result<CohortResult> {
    let Stages { cohort, excluded, att } = run_stages(claims_dir, measure, period, dict, visits)?;
    let mut steps = att.steps;
    for (s, f) in steps.iter_mut().zip(&att.facilities) {
        // Per shard: `run` and `build` log the whole cohort's counts once merged.
        tracing::debug!("cohort stage {}: {} in, {} excluded", s.step, s.procedures_in, s.excluded);
        s.facilities_out = f.len() as u64;
    }
    Ok(CohortResult {
        measure,
        definition: definition(measure, period, dict),
        cohort: by_procedure(vec![cohort], "cohort")?,
        excluded: by_procedure(vec![excluded], "exclusions")?,
        attrition: steps,
        step_facilities: att.facilities,
    })
}

/// Frames stacked and sorted by `procedure_id` (an empty frame without columns if none has any).
fn by_procedure(frames: Vec<DataFrame>, what: &str) -> Result<DataFrame> {
    let frames: Vec<LazyFrame> = frames.into_iter().filter(|d| d.width() > 0).map(|d| d.lazy()).collect();
    if frames.is_empty() {
        return Ok(DataFrame::empty());
    }
    concat(frames, UnionArgs::default())
        .and_then(|lf| lf.sort(["procedure_id"], SortMultipleOptions::default()).collect())
        .ctx(|| format!("collecting the {what}"))
}

/// Merges the cohorts of disjoint sets of beneficiaries (the shards of a prepared extract) into
/// the cohort of them all: procedures stacked and sorted by `procedure_id`, counts added up,
/// facilities as the union of each step's sets. Every rule looks at one patient's claims only,
/// so the result is the cohort built from all the claims at once, whatever the split.
pub fn merge(parts: Vec<CohortResult>) -> Result<CohortResult> {
    let mut parts = parts.into_iter();
    let first = parts.next().ok_or_else(|| AscqrError::Other("internal: no cohort parts to merge".into()))?;
    let (measure, definition) = (first.measure, first.definition.clone());
    let mut total = Attrition { steps: first.attrition, facilities: first.step_facilities, excluded: Vec::new() };
    let (mut cohorts, mut exclusions) = (vec![first.cohort], vec![first.excluded]);
    for part in parts {
        if part.measure != measure || part.definition != definition {
            return Err(AscqrError::Other(format!("cohort parts of different measures or definitions cannot be merged ({measure} and {})", part.measure)));
        }
        total = total.add(Attrition { steps: part.attrition, facilities: part.step_facilities, excluded: Vec::new() })?;
        cohorts.push(part.cohort);
        exclusions.push(part.excluded);
    }
    for (s, f) in total.steps.iter_mut().zip(&total.facilities) {
        s.facilities_out = f.len() as u64;
    }
    Ok(CohortResult {
        measure,
        definition,
        cohort: by_procedure(cohorts, "cohort")?,
        excluded: by_procedure(exclusions, "exclusions")?,
        attrition: total.steps,
        step_facilities: total.facilities,
    })
}

/// Which definitions a cohort used: dictionary version, code lists by provenance, period,
/// planned admission algorithm and outcome window.
pub fn definition(measure: MeasureId, period: Option<Period>, dict: &Dictionary) -> serde_json::Value {
    let def = dict.measure(measure);
    let rules = &def.rules;
    let mut definition = def.provenance_summary();
    definition["dictionary_version"] = serde_json::json!(crate::dictionary::DICTIONARY_VERSION);
    definition["files_from_user_dictionary"] = serde_json::json!(dict.overrides);
    definition["period"] = serde_json::json!(period.map(|p| serde_json::json!({
        "first_day": crate::claims::sink::days_to_date(p.first_day).to_string(),
        "last_day": crate::claims::sink::days_to_date(p.last_day).to_string(),
    })));
    definition["planned_admission_algorithm"] = serde_json::json!("v4.0 (data-dictionary/outcomes/planned_admission, status public)");
    definition["outcome_window_days"] = serde_json::json!([crate::outcome::WINDOW_FIRST_DAY, rules.outcome_last_day]);
    definition
}

/// Every claim line with one of the measure's exclusion diagnoses (ASC-12: inflammatory bowel
/// disease, diverticulitis).
fn exclusion_diagnoses(claims_dir: &Path, def: &crate::dictionary::MeasureDefinition) -> Result<Option<DataFrame>> {
    if def.exclusion_codes.is_empty() {
        return Ok(None);
    }
    let excl: Vec<String> = def.exclusion_codes.iter().map(|e| e.icd10cm.clone()).collect();
    let excl = DataFrame::new(excl.len(), vec![Column::new("dx".into(), excl)]).ctx(|| "exclusion codes".into())?;
    let dx = diagnoses_long(scan_table(claims_dir, Table::Carrier)?, scan_table(claims_dir, Table::Outpatient)?, scan_table(claims_dir, Table::Inpatient)?, &excl)?;
    Ok(Some(dx.collect().ctx(|| "reading exclusion diagnoses".into())?))
}

/// The cohort, exclusions and attrition of the stages over one set of claims.
struct Stages {
    cohort: DataFrame,
    excluded: DataFrame,
    att: Attrition,
}

/// The cohort stages over every claim `claims_dir` names (the whole extract, or a shard view).
fn run_stages(claims_dir: &Path, measure: MeasureId, period: Option<Period>, dict: &Dictionary, visits: Option<&DataFrame>) -> Result<Stages> {
    let scan = |table: Table| scan_table(claims_dir, table);
    let def = dict.measure(measure);
    let rules = &def.rules;
    let codes = codes_frame(
        "hcpcs",
        def.cohort_codes
            .iter()
            .filter(|c| c.is_cohort())
            .map(|c| (c.hcpcs.clone(), c.work_rvu_2025.or(c.work_rvu_2023).unwrap_or(0.0)))
            .collect(),
    )?;
    let high_risk = codes_frame(
        "hcpcs",
        def.cohort_codes.iter().filter(|c| c.is_concurrent_high_risk()).map(|c| (c.hcpcs.clone(), 0.0)).collect(),
    )?;
    let carrier = scan(Table::Carrier)?;
    let candidates = collect_compact(qualifying_procedure_claims(carrier.clone(), &codes, rules.work_rvu_of_several)).ctx(|| "finding qualifying procedures".into())?;
    let (n0, b0, f0) = counts(&candidates)?;
    let mut att = Attrition {
        facilities: vec![f0],
        steps: vec![AttritionStep {
            step: "qualifying_procedure_claims".into(),
            description: format!("carrier claims with an {} qualifying code (definition {})", def.measure.short_name, def.version),
            procedures_in: n0,
            excluded: 0,
            procedures_out: n0,
            beneficiaries_out: b0,
            facilities_out: 0, // set from `facilities` after merging
        }],
        excluded: Vec::new(),
    };
    let not_asc = not_asc_facility_claim(candidates.clone().lazy());
    let procs = att.apply(candidates, "not_asc_facility_claim", "not an ASC facility claim (place of service 24, specialty 49)", not_asc)?;
    let procs = match period {
        Some(p) => {
            let outside = outside_measurement_period(procs.clone().lazy(), p);
            att.apply(procs, "outside_measurement_period", "procedure date outside the measurement period", outside)?
        }
        None => procs,
    };
    let repeat = within_window_of_an_earlier_index_procedure(&procs, rules.index_window_days)?;
    let mut procs = att.apply(
        procs,
        "within_7_days_of_an_earlier_procedure",
        &format!("on days 0-{} after the same patient's earlier index procedure of this measure", rules.index_window_days),
        repeat,
    )?;
    if let Some(lookback) = rules.repeat_colonoscopy_lookback_days {
        let colonoscopy = concat([codes.clone().lazy(), high_risk.clone().lazy()], UnionArgs::default())
            .and_then(|lf| lf.collect())
            .ctx(|| "colonoscopy codes".into())?;
        let fails = repeat_colonoscopy(procs.clone().lazy(), carrier.clone(), scan(Table::Outpatient)?, &colonoscopy, lookback);
        procs = att.apply(
            procs,
            "repeat_colonoscopy",
            &format!("a repeat: another colonoscopy of the patient in any setting on days 1-{lookback} before"),
            fails,
        )?;
    }
    // Beneficiary facts.
    let benes = scan(Table::Beneficiaries)?.select([col("bene_id"), col("birth_date"), col("death_date")]);
    let procs = procs
        .lazy()
        .join(benes, [col("bene_id")], [col("bene_id")], JoinArgs::new(JoinType::Left))
        .collect()
        .ctx(|| "joining beneficiaries".into())?;
    let young = under_min_age(procs.clone().lazy(), rules.min_age_years);
    let procs = att.apply(
        procs,
        &format!("age_under_{}", rules.min_age_years),
        &format!("younger than {} at the procedure (or no beneficiary record)", rules.min_age_years),
        young,
    )?;
    let enrollment = scan(Table::Enrollment)?;
    let months = rules.enrollment_months_before;
    let before = not_ffs_months_before(procs.clone().lazy(), enrollment.clone(), months);
    let mut procs = att.apply(
        procs,
        &format!("not_ffs_{months}_months_before"),
        &format!("not in fee-for-service Part A and B in each of the {months} months before"),
        before,
    )?;
    if let Some(after) = rules.enrollment_days_after {
        let fails = not_ffs_days_after(procs.clone().lazy(), enrollment, after);
        procs = att.apply(
            procs,
            &format!("not_ffs_{after}_days_after"),
            &format!("alive but not in fee-for-service Part A and B in the {after} days after"),
            fails,
        )?;
    }
    if high_risk.height() > 0 {
        let hr = concurrent_high_risk_procedure(procs.clone().lazy(), carrier.clone(), &high_risk);
        procs = att.apply(procs, "concurrent_high_risk_procedure", "a concurrent high-risk procedure on the index claim", hr)?;
    }
    if let Some(dx) = exclusion_diagnoses(claims_dir, def)? {
        let ibd = ibd_or_diverticulitis(procs.clone().lazy(), dx.lazy(), rules.history_days);
        procs = att.apply(
            procs,
            "inflammatory_bowel_disease_or_diverticulitis",
            &format!("inflammatory bowel disease or diverticulitis on the index claim or in the {} days before", rules.history_days),
            ibd,
        )?;
    }
    let visits = match visits {
        Some(found) => found.clone().lazy(),
        None => hospital_visits_in(claims_dir, dict)?.lazy(),
    };
    let cohort = first_unplanned_visit_within_window(procs.lazy(), visits, rules.outcome_last_day)
        .with_column(lit(measure.as_str()).alias("measure"))
        .collect()
        .ctx(|| "finding hospital visits".into())?;
    let exclusions = std::mem::take(&mut att.excluded);
    let excluded = if exclusions.is_empty() {
        DataFrame::empty()
    } else {
        concat(exclusions.into_iter().map(|d| d.lazy()).collect::<Vec<_>>(), UnionArgs::default())
            .and_then(|lf| lf.collect())
            .ctx(|| "collecting exclusions".into())?
    };
    // Kept until the last shard is done: copy the text out of the shard's filtered reads, which
    // it would otherwise hold whole (see `compact_text`).
    let cohort = compact_text(cohort).ctx(|| "finding hospital visits".into())?;
    let excluded = compact_text(excluded).ctx(|| "collecting exclusions".into())?;
    Ok(Stages { cohort, excluded, att })
}

/// Procedures of a cohort with an unplanned hospital visit within the outcome window.
pub fn unplanned_visits(cohort: &DataFrame) -> Result<u64> {
    if cohort.height() == 0 {
        return Ok(0);
    }
    cohort.column("unplanned_visit").and_then(|c| c.bool().map(|b| b.sum().unwrap_or(0) as u64)).ctx(|| "counting unplanned visits".into())
}

/// A user's NPI → CCN crosswalk (CSV with columns `npi,ccn`; one CCN may carry several NPIs,
/// each NPI has one CCN). CMS's public files key an ASC by CCN (methodology §1).
#[derive(Debug, Clone)]
pub struct CcnCrosswalk {
    pub file: String,
    pub npi_to_ccn: std::collections::BTreeMap<String, String>,
}

impl CcnCrosswalk {
    /// Reads and checks the crosswalk: a malformed NPI or CCN, or an NPI given two CCNs, is an
    /// error naming the file, row, column and value.
    pub fn read(path: &Path) -> Result<CcnCrosswalk> {
        let (mut reader, headers) = crate::claims::validate::open_delimited(path, b',')?;
        let idx = crate::claims::validate::column_indices(path, "CCN crosswalk", &headers, &["npi".to_string(), "ccn".to_string()])?;
        let mut npi_to_ccn = std::collections::BTreeMap::new();
        let mut record = csv::StringRecord::new();
        let mut row = 0u64;
        while crate::claims::validate::read_record(&mut reader, &mut record, path, row + 1)? {
            row += 1;
            let (npi, ccn) = (record.get(idx[0]).unwrap_or("").trim(), record.get(idx[1]).unwrap_or("").trim());
            let bad = |column: &str, value: &str, expected: &str| AscqrError::BadValue {
                file: path.into(),
                row,
                column: column.into(),
                value: value.into(),
                expected: expected.into(),
            };
            if npi.len() != 10 || !npi.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("npi", npi, "a 10-digit NPI"));
            }
            if !(6..=10).contains(&ccn.len()) || !ccn.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(bad("ccn", ccn, "a CCN (6 to 10 letters and digits, e.g. 05C0001831)"));
            }
            if let Some(old) = npi_to_ccn.insert(npi.to_string(), ccn.to_string()) {
                if old != ccn {
                    return Err(bad("ccn", ccn, &format!("the CCN {old} given to this NPI on an earlier row")));
                }
            }
        }
        Ok(CcnCrosswalk { file: path.display().to_string(), npi_to_ccn })
    }
}

impl CcnCrosswalk {
    /// The crosswalk as a frame `facility_npi, facility_ccn`.
    fn table(&self) -> Result<DataFrame> {
        let (npis, ccns): (Vec<String>, Vec<String>) = self.npi_to_ccn.iter().map(|(a, b)| (a.clone(), b.clone())).unzip();
        DataFrame::new(npis.len(), vec![Column::new("facility_npi".into(), npis), Column::new("facility_ccn".into(), ccns)]).ctx(|| "attaching CCNs".into())
    }

    /// What a cohort's definition records about the crosswalk it used.
    fn summary(&self, cohort_facilities_without_ccn: u64) -> serde_json::Value {
        serde_json::json!({"file": self.file, "npis": self.npi_to_ccn.len(), "cohort_facilities_without_ccn": cohort_facilities_without_ccn})
    }
}

/// `cohort` with `facility_ccn` from `table` (null where the crosswalk has no row for the NPI).
fn with_facility_ccn(cohort: DataFrame, table: &DataFrame) -> Result<DataFrame> {
    cohort
        .lazy()
        .join(table.clone().lazy(), [col("facility_npi")], [col("facility_npi")], JoinArgs::new(JoinType::Left))
        .collect()
        .ctx(|| "attaching CCNs".into())
}

/// The cohort's facility NPIs that have no CCN.
fn npis_without_ccn(cohort: &DataFrame) -> Result<std::collections::BTreeSet<String>> {
    let ctx = || "attaching CCNs".to_string();
    let npis = cohort.clone().lazy().filter(col("facility_ccn").is_null()).select([col("facility_npi").unique()]).collect().ctx(ctx)?;
    Ok(npis.column("facility_npi").and_then(|c| c.str().cloned()).ctx(ctx)?.iter().flatten().map(str::to_string).collect())
}

/// Adds `facility_ccn` (null where the crosswalk has no row for the NPI) to the cohort and
/// records the crosswalk and how many facilities it left unmapped in the definition.
pub fn attach_facility_ccn(result: &mut CohortResult, crosswalk: &CcnCrosswalk) -> Result<()> {
    let cohort = with_facility_ccn(std::mem::take(&mut result.cohort), &crosswalk.table()?)?;
    let unmapped = npis_without_ccn(&cohort)?.len() as u64;
    result.cohort = cohort;
    result.definition["ccn_crosswalk"] = crosswalk.summary(unmapped);
    Ok(())
}

/// Writes `cohort.parquet`, `excluded.parquet`, `attrition.csv` and `cohort.json` (each
/// atomically).
pub fn write(out: &Path, result: &CohortResult) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| AscqrError::io(out, e))?;
    for (name, df) in [("cohort.parquet", &result.cohort), ("excluded.parquet", &result.excluded)] {
        let target = crate::output::TempPath::new(&out.join(name))?;
        let mut df = df.clone();
        ParquetWriter::new(target.create_file()?).finish(&mut df).ctx(|| format!("writing {name}"))?;
        target.commit()?;
    }
    write_attrition_and_summary(out, &result.definition, &result.attrition, result.cohort.height() as u64)
}

const STEP_FACILITIES: &str = "step_facilities.json";

/// Writes a cohort as a part of a larger one (one shard's): what [`write`] writes, and each
/// attrition step's facilities, which [`merge`] needs to count the facilities of the whole.
pub fn write_part(out: &Path, result: &CohortResult) -> Result<()> {
    write(out, result)?;
    let json = serde_json::to_vec(&result.step_facilities).map_err(|e| AscqrError::Other(format!("internal: {e}")))?;
    crate::output::write_atomic(&out.join(STEP_FACILITIES), &json)
}

/// Reads a cohort [`write_part`] wrote.
pub fn read_part(dir: &Path, measure: MeasureId) -> Result<CohortResult> {
    let read_json = |name: &str| -> Result<serde_json::Value> {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| AscqrError::io(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| AscqrError::Other(format!("{}: {e}", path.display())))
    };
    let summary = read_json("cohort.json")?;
    let bad = |what: &str| AscqrError::Other(format!("{}: {what}", dir.join("cohort.json").display()));
    let attrition: Vec<AttritionStep> = serde_json::from_value(summary["attrition"].clone()).map_err(|e| bad(&e.to_string()))?;
    let step_facilities: Vec<FacilitySet> = serde_json::from_value(read_json(STEP_FACILITIES)?).map_err(|e| bad(&e.to_string()))?;
    if step_facilities.len() != attrition.len() {
        return Err(bad("attrition steps and their facility sets disagree"));
    }
    Ok(CohortResult {
        measure,
        definition: summary["definition"].clone(),
        cohort: crate::output::read_parquet(&dir.join("cohort.parquet"))?,
        excluded: crate::output::read_parquet(&dir.join("excluded.parquet"))?,
        attrition,
        step_facilities,
    })
}

/// `attrition.csv`, and `cohort.json` with the definition, the attrition and the cohort's size.
fn write_attrition_and_summary(out: &Path, definition: &serde_json::Value, attrition: &[AttritionStep], procedures: u64) -> Result<()> {
    let mut text = String::from("step,description,procedures_in,excluded,procedures_out,beneficiaries_out,facilities_out\n");
    for s in attrition {
        text.push_str(&format!(
            "{},\"{}\",{},{},{},{},{}\n",
            s.step, s.description, s.procedures_in, s.excluded, s.procedures_out, s.beneficiaries_out, s.facilities_out
        ));
    }
    crate::output::write_atomic(&out.join("attrition.csv"), text.as_bytes())?;
    let mut json = serde_json::to_vec_pretty(&serde_json::json!({
        "definition": definition,
        "attrition": attrition,
        "cohort": procedures,
    }))
    .map_err(|e| AscqrError::Other(e.to_string()))?;
    json.push(b'\n');
    crate::output::write_atomic(&out.join("cohort.json"), &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> i32 {
        crate::claims::validate::parse_date(s).unwrap()
    }

    fn procs(rows: &[(&str, &str, Option<&str>)]) -> LazyFrame {
        let n = rows.len();
        DataFrame::new(
            n,
            vec![
                Column::new("procedure_id".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
                Column::new("bene_id".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
                Column::new("procedure_date".into(), rows.iter().map(|r| date(r.1)).collect::<Vec<_>>()).cast(&DataType::Date).unwrap(),
                Column::new("death_date".into(), rows.iter().map(|r| r.2.map(date)).collect::<Vec<_>>()).cast(&DataType::Date).unwrap(),
            ],
        )
        .unwrap()
        .lazy()
    }

    /// Enrollment runs (bene, year, first month, last month, medicare advantage), all A and B.
    fn enrollment(rows: &[(&str, i64, i64, i64, bool)]) -> LazyFrame {
        let n = rows.len();
        DataFrame::new(
            n,
            vec![
                Column::new("bene_id".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
                Column::new("year".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
                Column::new("first_month".into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
                Column::new("last_month".into(), rows.iter().map(|r| r.3).collect::<Vec<_>>()),
                Column::new("part_a".into(), vec![true; n]),
                Column::new("part_b".into(), vec![true; n]),
                Column::new("medicare_advantage".into(), rows.iter().map(|r| r.4).collect::<Vec<_>>()),
            ],
        )
        .unwrap()
        .lazy()
    }

    fn fails(lf: LazyFrame) -> Vec<(String, bool)> {
        let df = lf.sort(["procedure_id"], Default::default()).collect().unwrap();
        let ids = df.column("procedure_id").unwrap().str().unwrap().clone();
        let f = df.column("fails").unwrap().bool().unwrap().clone();
        (0..df.height()).map(|i| (ids.get(i).unwrap().to_string(), f.get(i).unwrap())).collect()
    }

    #[test]
    fn twelve_months_before_are_the_calendar_months_before_the_procedure_month() {
        // Procedure 2022-06-15: months 2021-06 … 2022-05 must be fee-for-service.
        let p = procs(&[("a", "2022-06-15", None), ("b", "2022-06-15", None), ("c", "2022-06-15", None)]);
        let e = enrollment(&[
            // a: Medicare Advantage in May 2021 (13 months before): still in.
            ("a", 2021, 1, 5, true),
            ("a", 2021, 6, 12, false),
            ("a", 2022, 1, 12, false),
            // b: Medicare Advantage in June 2021 (the first month of the window): out.
            ("b", 2021, 1, 5, false),
            ("b", 2021, 6, 6, true),
            ("b", 2021, 7, 12, false),
            ("b", 2022, 1, 12, false),
            // c: no enrollment record for 2021 at all: out.
            ("c", 2022, 1, 12, false),
        ]);
        assert_eq!(fails(not_ffs_months_before(p, e, 12)), vec![("a".into(), false), ("b".into(), true), ("c".into(), true)]);
    }

    #[test]
    fn seven_days_after_need_enrollment_unless_the_patient_died() {
        // 2022-06-27 + 7 days = 2022-07-04: June and July must be fee-for-service.
        let p = procs(&[("a", "2022-06-27", None), ("b", "2022-06-27", Some("2022-06-30")), ("c", "2022-06-10", None)]);
        let e = enrollment(&[
            ("a", 2022, 1, 6, false),
            ("a", 2022, 7, 12, true),
            ("b", 2022, 1, 6, false),
            // c: MA from July, but its 7 days end in June.
            ("c", 2022, 1, 6, false),
            ("c", 2022, 7, 12, true),
        ]);
        assert_eq!(fails(not_ffs_days_after(p, e, 7)), vec![("a".into(), true), ("b".into(), false), ("c".into(), false)]);
    }

    #[test]
    fn index_selection_keeps_the_first_procedure_of_each_7_day_window() {
        let df = procs(&[
            ("x1", "2022-03-01", None),
            ("x2", "2022-03-01", None), // same day as x1: not an index
            ("x3", "2022-03-06", None), // day 5 after x1: not an index
            ("x4", "2022-03-11", None), // day 10 after x1 (x3 was not an index): index
            ("x5", "2022-03-20", None), // day 9 after x4: index
        ])
        .with_column(lit("B").alias("bene_id"))
        .collect()
        .unwrap();
        let out = fails(within_window_of_an_earlier_index_procedure(&df, 7).unwrap());
        assert_eq!(
            out,
            vec![("x1".into(), false), ("x2".into(), true), ("x3".into(), true), ("x4".into(), false), ("x5".into(), false)]
        );
    }

    fn frame(columns: Vec<(&str, Vec<Option<&str>>)>) -> LazyFrame {
        let n = columns[0].1.len();
        DataFrame::new(n, columns.into_iter().map(|(name, v)| Column::new(name.into(), v)).collect()).unwrap().lazy()
    }

    fn dates(lf: LazyFrame, names: &[&str]) -> LazyFrame {
        lf.with_columns(names.iter().map(|n| col(*n).str().to_date(StrptimeOptions::default())).collect::<Vec<_>>())
    }

    #[test]
    fn a_claims_work_rvu_is_its_highest_or_its_sum_as_the_rules_say() {
        let carrier = dates(
            frame(vec![
                ("claim_id", vec![Some("c1"), Some("c1"), Some("c1")]),
                ("bene_id", vec![Some("b"); 3]),
                ("billing_npi", vec![Some("1234567890"); 3]),
                ("place_of_service", vec![Some("24"); 3]),
                ("provider_specialty", vec![Some("49"); 3]),
                ("line_first_date", vec![Some("2022-01-05"); 3]),
                ("hcpcs", vec![Some("29881"), Some("29877"), Some("99213")]),
            ]),
            &["line_first_date"],
        );
        let codes = df!("hcpcs" => ["29881", "29877"], "work_rvu" => [7.03, 4.0]).unwrap();
        let one = |rule| qualifying_procedure_claims(carrier.clone(), &codes, rule).collect().unwrap();
        let highest = one(WorkRvuOfSeveral::Highest);
        assert_eq!(highest.column("primary_hcpcs").unwrap().str().unwrap().get(0), Some("29881"));
        assert_eq!(highest.column("n_qualifying").unwrap().i64().unwrap().get(0), Some(2));
        assert_eq!(highest.column("work_rvu").unwrap().f64().unwrap().get(0), Some(7.03));
        let sum = one(WorkRvuOfSeveral::Sum);
        assert!((sum.column("work_rvu").unwrap().f64().unwrap().get(0).unwrap() - 11.03).abs() < 1e-12);
    }

    #[test]
    fn only_the_asc_facility_claim_is_an_index_procedure() {
        let p = frame(vec![
            ("procedure_id", vec![Some("facility"), Some("surgeon"), Some("office"), Some("no_specialty")]),
            ("place_of_service", vec![Some("24"), Some("24"), Some("11"), Some("24")]),
            ("provider_specialty", vec![Some("49"), Some("02"), Some("49"), None]),
        ]);
        assert_eq!(
            fails(not_asc_facility_claim(p)),
            vec![("facility".into(), false), ("no_specialty".into(), true), ("office".into(), true), ("surgeon".into(), true)]
        );
    }

    #[test]
    fn the_measurement_period_includes_both_of_its_ends() {
        let p = procs(&[("first", "2021-01-01", None), ("last", "2022-12-31", None), ("before", "2020-12-31", None), ("after", "2023-01-01", None)]);
        let period = Period::parse("2021-01-01..2022-12-31").unwrap();
        assert_eq!(
            fails(outside_measurement_period(p, period)),
            vec![("after".into(), true), ("before".into(), true), ("first".into(), false), ("last".into(), false)]
        );
    }

    #[test]
    fn age_is_whole_365_25_day_years_at_the_procedure() {
        let p = dates(
            frame(vec![
                ("procedure_id", vec![Some("day_after_birthday"), Some("birthday"), Some("no_record")]),
                ("procedure_date", vec![Some("2022-05-11"), Some("2022-05-10"), Some("2022-05-10")]),
                ("birth_date", vec![Some("1957-05-10"), Some("1957-05-10"), None]),
            ]),
            &["procedure_date", "birth_date"],
        );
        // The 65th birthday is 23,741 days after birth (16 leap days), 64.998 years of 365.25
        // days: still 64 by the manual's age arithmetic; the next day is 65. No birth date: out.
        assert_eq!(
            fails(under_min_age(p, 65)),
            vec![("birthday".into(), true), ("day_after_birthday".into(), false), ("no_record".into(), true)]
        );
    }

    #[test]
    fn a_colonoscopy_days_after_another_in_any_setting_is_a_repeat() {
        let p = dates(
            frame(vec![
                ("procedure_id", vec![Some("after_hopd"), Some("after_office"), Some("same_day_only"), Some("eight_days")]),
                ("bene_id", vec![Some("a"), Some("b"), Some("c"), Some("d")]),
                ("procedure_date", vec![Some("2022-03-10"), Some("2022-03-10"), Some("2022-03-10"), Some("2022-03-10")]),
            ]),
            &["procedure_date"],
        );
        // Carrier: b had an office colonoscopy 7 days before; c's professional claim is the same
        // day (the index itself); d's office colonoscopy was 8 days before; a had an unrelated
        // office visit the day before.
        let carrier = dates(
            frame(vec![
                ("bene_id", vec![Some("b"), Some("c"), Some("d"), Some("a")]),
                ("line_first_date", vec![Some("2022-03-03"), Some("2022-03-10"), Some("2022-03-02"), Some("2022-03-09")]),
                ("hcpcs", vec![Some("45378"), Some("45378"), Some("45380"), Some("99213")]),
            ]),
            &["line_first_date"],
        );
        // Outpatient: a had a hospital outpatient colonoscopy 2 days before (line date missing,
        // claim date used).
        let outpatient = dates(
            frame(vec![
                ("bene_id", vec![Some("a")]),
                ("revenue_center_date", vec![None]),
                ("claim_from_date", vec![Some("2022-03-08")]),
                ("hcpcs", vec![Some("45385")]),
            ]),
            &["revenue_center_date", "claim_from_date"],
        );
        let codes = df!("hcpcs" => ["45378", "45380", "45385"]).unwrap();
        assert_eq!(
            fails(repeat_colonoscopy(p, carrier, outpatient, &codes, 7)),
            vec![("after_hopd".into(), true), ("after_office".into(), true), ("eight_days".into(), false), ("same_day_only".into(), false)]
        );
    }

    #[test]
    fn a_high_risk_code_on_the_index_claim_excludes_it_but_not_on_another_claim() {
        let p = frame(vec![("procedure_id", vec![Some("c1"), Some("c2")])]);
        let carrier = frame(vec![
            ("claim_id", vec![Some("c1"), Some("c1"), Some("c2"), Some("other")]),
            ("hcpcs", vec![Some("45378"), Some("45382"), Some("45378"), Some("45382")]),
        ]);
        let high_risk = df!("hcpcs" => ["45382"], "work_rvu" => [0.0]).unwrap();
        assert_eq!(fails(concurrent_high_risk_procedure(p, carrier, &high_risk)), vec![("c1".into(), true), ("c2".into(), false)]);
    }

    #[test]
    fn an_exclusion_diagnosis_counts_on_the_index_claim_or_in_the_year_before_not_after() {
        let p = dates(
            frame(vec![
                ("procedure_id", vec![Some("on_index"), Some("day_365"), Some("day_366"), Some("after")]),
                ("bene_id", vec![Some("a"), Some("b"), Some("c"), Some("d")]),
                ("procedure_date", vec![Some("2022-06-01"); 4]),
            ]),
            &["procedure_date"],
        );
        let dx = dates(
            frame(vec![
                ("bene_id", vec![Some("a"), Some("b"), Some("c"), Some("d")]),
                ("claim_id", vec![Some("on_index"), Some("x"), Some("y"), Some("z")]),
                ("claim_date", vec![Some("2022-06-01"), Some("2021-06-01"), Some("2021-05-31"), Some("2022-06-03")]),
                ("dx", vec![Some("K5130"); 4]),
            ]),
            &["claim_date"],
        );
        assert_eq!(
            fails(ibd_or_diverticulitis(p, dx, 365)),
            vec![("after".into(), false), ("day_365".into(), true), ("day_366".into(), false), ("on_index".into(), true)]
        );
    }

    #[test]
    fn a_ccn_crosswalk_is_checked_row_by_row() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ccn.csv");
        std::fs::write(&f, "npi,ccn\n1234567890,05C0001831\n1234567891,05C0001831\n").unwrap();
        let x = CcnCrosswalk::read(&f).unwrap();
        assert_eq!(x.npi_to_ccn.len(), 2);
        std::fs::write(&f, "npi,ccn\n1234567890,05C0001831\n1234567890,05C0009999\n").unwrap();
        let e = CcnCrosswalk::read(&f).unwrap_err().to_string();
        assert_eq!(e, format!("{}: row 2, column `ccn`: value \"05C0009999\" is not the CCN 05C0001831 given to this NPI on an earlier row", f.display()));
        std::fs::write(&f, "npi,ccn\n12345,05C0001831\n").unwrap();
        let e = CcnCrosswalk::read(&f).unwrap_err().to_string();
        assert!(e.contains("row 1, column `npi`: value \"12345\" is not a 10-digit NPI"), "{e}");
    }

    #[test]
    fn periods_parse_with_a_clear_message() {
        let p = Period::parse("2021-01-01..2022-12-31").unwrap();
        assert!(p.first_day < p.last_day);
        let e = Period::parse("2022..2021").unwrap_err().to_string();
        assert_eq!(e, "invalid option: --period \"2022..2021\": expected FROM..TO as YYYY-MM-DD..YYYY-MM-DD");
    }
}
