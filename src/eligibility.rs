//! Program eligibility (manual, ASCQR program requirements): an ASC with fewer than 240 Medicare
//! claims in a year is not required to participate in the following year. Claims are counted as
//! distinct ASC facility claims (carrier, place of service 24, specialty 49) by billing NPI with a
//! line dated in the year. The canonical model has no payer field, so primary and secondary
//! payer claims are not told apart (every carrier claim in the extract counts).

use crate::claims::{scan_table, Table};
use crate::error::{PolarsContext, Result};
use polars::prelude::*;
use std::path::Path;

/// The spec's threshold: fewer than 240 claims.
pub const MINIMUM_CLAIMS: u32 = 240;

/// Every ASC with its claim count in `year`, and whether it falls below the threshold, sorted by
/// count then NPI: `facility_npi, claims, below_threshold`.
pub fn claim_counts(claims_dir: &Path, year: i32) -> Result<DataFrame> {
    scan_table(claims_dir, Table::Carrier)?
        .filter(
            col("place_of_service")
                .eq(lit("24"))
                .and(col("provider_specialty").eq(lit("49")))
                .and(col("line_first_date").dt().year().eq(lit(year)))
                .fill_null(lit(false)),
        )
        .group_by([col("billing_npi").alias("facility_npi")])
        .agg([col("claim_id").n_unique().cast(DataType::Int64).alias("claims")])
        .filter(col("facility_npi").is_not_null())
        .with_column(col("claims").lt(lit(MINIMUM_CLAIMS as i64)).alias("below_threshold"))
        .sort(["claims", "facility_npi"], SortMultipleOptions::default())
        .collect()
        .ctx(|| format!("counting ASC claims in {}", claims_dir.display()))
}

/// The [`claim_counts`] of disjoint parts of an extract (its beneficiary shards: a claim's lines
/// are all in one shard) as those of the whole: counts added up by facility.
pub fn merge_claim_counts(parts: Vec<DataFrame>) -> Result<DataFrame> {
    concat(parts.into_iter().map(|d| d.lazy()).collect::<Vec<_>>(), UnionArgs::default())
        .and_then(|lf| {
            lf.group_by([col("facility_npi")])
                .agg([col("claims").sum()])
                .with_column(col("claims").lt(lit(MINIMUM_CLAIMS as i64)).alias("below_threshold"))
                .sort(["claims", "facility_npi"], SortMultipleOptions::default())
                .collect()
        })
        .ctx(|| "adding up the shards' ASC claim counts".into())
}

/// Writes claim counts as `facility_npi,claims,below_threshold` CSV, counts between 1 and 10 as
/// `<11` (a shareable file).
pub fn write_claim_counts(counts: &DataFrame, path: &Path) -> Result<()> {
    let ctx = || "writing ASC claim counts".to_string();
    let ids = counts.column("facility_npi").and_then(|c| c.str().cloned()).ctx(ctx)?;
    let claims = counts.column("claims").and_then(|c| c.i64().cloned()).ctx(ctx)?;
    let below = counts.column("below_threshold").and_then(|c| c.bool().cloned()).ctx(ctx)?;
    let mut text = String::from("facility_npi,claims,below_threshold\n");
    for i in 0..counts.height() {
        let n = crate::report::count_cell(claims.get(i).unwrap_or(0).max(0) as u64);
        text.push_str(&format!("{},{n},{}\n", ids.get(i).unwrap_or(""), below.get(i).unwrap_or(false)));
    }
    crate::output::write_atomic(path, text.as_bytes())
}
