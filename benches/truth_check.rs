//! End-to-end truth check with timings: cohorts, outcomes and risk variables of all four measures
//! against the generator's truth, procedure by procedure. Small extract by default;
//! `ASCQR_EXTRACT=out/national cargo bench --bench truth_check` for the national one.

use ascqr::claims::FileFormat;
use ascqr::dictionary::{Dictionary, MeasureId};
use ascqr::synth::{generate, Scale, SynthOptions};
use indicatif::ProgressBar;
use polars::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = match std::env::var("ASCQR_EXTRACT") {
        Ok(d) => PathBuf::from(d),
        Err(_) => {
            let options = SynthOptions::new(1, Scale::Small, "2021-2023", FileFormat::Parquet).expect("options");
            generate(tmp.path(), &options, &ProgressBar::hidden()).expect("synth");
            tmp.path().to_path_buf()
        }
    };
    let truth = ParquetReader::new(std::fs::File::open(dir.join("truth/procedures.parquet")).expect("truth")).finish().expect("truth");
    // The stages read only a prepared extract: ingest the generator's output first (timed).
    let raw = dir;
    let dir = tmp.path().join("_extract");
    let t = Instant::now();
    let options = ascqr::claims::IngestOptions { layout: ascqr::claims::Layout::Canonical, shards: None };
    let manifest = ascqr::claims::ingest(&raw, &options, &dir, &ProgressBar::hidden()).expect("ingest");
    println!("ingest: {} shards, {} rows read in {:.1} s", manifest.shards, manifest.tables.iter().map(|t| t.rows_read).sum::<u64>(), t.elapsed().as_secs_f64());
    let dict = Dictionary::embedded().expect("dictionary");
    for m in MeasureId::ALL {
        let t = Instant::now();
        let cohort = ascqr::cohort::build(&dir, m, None, dict).expect("cohort");
        let t_cohort = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let analysis = ascqr::risk::analysis_frame(&dir, m, &cohort.cohort, dict).expect("features");
        let t_features = t.elapsed().as_secs_f64();
        let tm = truth.clone().lazy().filter(col("measure").eq(lit(m.as_str())));
        // Membership and reasons.
        let excluded = cohort.excluded.clone().lazy().select([col("procedure_id"), col("exclusion_reason").alias("found_reason")]);
        let members = cohort.cohort.clone().lazy().select([col("procedure_id"), lit(true).alias("found_in")]);
        let membership = tm
            .clone()
            .select([col("procedure_id"), col("in_cohort"), col("exclusion_reason")])
            .join(members, [col("procedure_id")], [col("procedure_id")], JoinArgs::new(JoinType::Left))
            .join(excluded, [col("procedure_id")], [col("procedure_id")], JoinArgs::new(JoinType::Left))
            .with_column(
                col("in_cohort")
                    .eq(col("found_in").fill_null(lit(false)))
                    .and(col("exclusion_reason").eq_missing(col("found_reason")))
                    .alias("agree"),
            )
            .select([len().alias("procedures"), col("agree").cast(DataType::UInt32).sum().alias("membership_agrees")])
            .collect()
            .expect("membership");
        // Outcome and every variable of the in-cohort procedures.
        let names = dict.measure(m).variable_names();
        let mut tcols = vec![col("procedure_id"), col("unplanned_visit").cast(DataType::Float64).alias("t_outcome")];
        tcols.extend(names.iter().map(|n| col(n.as_str()).alias(format!("t_{n}"))));
        let mut agree = col("outcome").cast(DataType::Float64).eq(col("t_outcome"));
        for n in &names {
            let d = col(n.as_str()) - col(format!("t_{n}"));
            agree = agree.and(d.clone().lt(lit(1e-9)).and(d.gt(lit(-1e-9))));
        }
        let values = analysis
            .lazy()
            .join(tm.select(tcols), [col("procedure_id")], [col("procedure_id")], JoinArgs::new(JoinType::Inner))
            .select([len().alias("in_cohort"), agree.cast(DataType::UInt32).sum().alias("outcome_and_all_variables_agree")])
            .collect()
            .expect("values");
        println!("{m}: cohort {t_cohort:.1} s, features {t_features:.1} s");
        println!("{membership}\n{values}");
    }
}
