//! Synthetic Medicare claims with a known truth behind them — the embedded default data set.
//!
//! Real claims are restricted, so the engine ships a generator whose output looks like claims, not
//! like a design matrix: ASC facility lines on the carrier file (place of service 24, specialty
//! 49) next to the surgeon's professional line, office and hospital-outpatient history claims
//! carrying ICD-10-CM codes that really map to the condition categories the measures use,
//! Medicare Advantage months, under-65 beneficiaries, deaths, and hospital visits within and
//! outside the 7-day window — ED visits, observation stays, planned and unplanned admissions.
//!
//! The outcome is drawn from a true two-level logistic model per measure (known coefficients,
//! facility intercepts ~ Normal(0, tau²)), and `truth/` records everything later stages must
//! recover: cohort membership and the rule that excludes each procedure, each risk variable's
//! value, the unplanned visit, the true coefficients and intercepts.
//!
//! The truth is not written from intentions: the risk variables are evaluated from the claims
//! actually emitted for the beneficiary (see [`truth`]), so a code placed on a claim that falls
//! outside the history window, or a complication-of-care code found only on the index claim, is
//! scored the way the measure's rules score it.
//!
//! Determinism: every random draw comes from a ChaCha8 stream seeded from the user's seed and
//! the chunk being generated (measure, facility, block of procedures), so chunks can be generated
//! in parallel and the files are byte-identical for a given seed and options.

pub mod abstraction;
mod background;
mod plan;
mod truth;
mod write;

pub use background::{Background, BackgroundDiagnoses};
pub use plan::{Scale, SynthOptions, World};
pub use write::{generate, SynthSummary};

/// In-cohort procedures and their unplanned visits in the generator's truth for `measure`
/// within `period` — what a cohort built over that period must reproduce.
pub fn truth_counts_in_period(claims: &std::path::Path, measure: crate::dictionary::MeasureId, period: crate::cohort::Period) -> crate::Result<(u64, u64)> {
    use crate::error::PolarsContext;
    use polars::prelude::*;
    let path = claims.join("truth/procedures.parquet");
    let day = col("procedure_date").cast(DataType::Int32);
    let df = LazyFrame::scan_parquet(PlRefPath::new(path.to_string_lossy().as_ref()), ScanArgsParquet::default())
        .ctx(|| format!("reading {}", path.display()))?
        .filter(col("measure").eq(lit(measure.as_str())).and(col("in_cohort")).and(day.clone().gt_eq(lit(period.first_day))).and(day.lt_eq(lit(period.last_day))))
        .select([len().cast(DataType::UInt64).alias("n"), col("unplanned_visit").cast(DataType::UInt64).sum().alias("events")])
        .collect()
        .ctx(|| format!("reading {}", path.display()))?;
    let get = |name: &str| df.column(name).ok().and_then(|c| c.u64().ok().and_then(|v| v.get(0))).unwrap_or(0);
    Ok((get("n"), get("events")))
}
