//! Benchmark and truth check of the outcome stages (hospital visits, planned admission algorithm,
//! 7-day window) on a synthetic extract: `cargo bench --bench outcome` generates a small one;
//! `ASCQR_EXTRACT=out/national cargo bench --bench outcome` runs on an existing extract (e.g. the
//! national one from scripts/measure_national.sh). Prints time and agreement with truth/.

use ascqr::claims::{scan_table, FileFormat, Table};
use ascqr::dictionary::Dictionary;
use ascqr::outcome::{first_unplanned_visit_within_window, hospital_visits, OutcomeTables};
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
    let t = Instant::now();
    let truth = LazyFrame::scan_parquet(
        PlRefPath::new(dir.join("truth/procedures.parquet").to_string_lossy().as_ref()),
        ScanArgsParquet::default(),
    )
    .expect("truth");
    let tables = OutcomeTables::from_dictionary(Dictionary::embedded().expect("dictionary")).expect("tables");
    let visits = hospital_visits(
        scan_table(&dir, Table::Outpatient).expect("outpatient"),
        scan_table(&dir, Table::Inpatient).expect("inpatient"),
        &tables,
    );
    let index = truth.clone().select([col("procedure_id"), col("bene_id"), col("procedure_date")]);
    let found = first_unplanned_visit_within_window(index, visits).select([col("procedure_id"), col("unplanned_visit").alias("found")]);
    let compared = truth
        .select([col("procedure_id"), col("unplanned_visit")])
        .join(found, [col("procedure_id")], [col("procedure_id")], JoinArgs::new(JoinType::Inner))
        .select([
            len().alias("procedures"),
            col("unplanned_visit").eq(col("found")).cast(DataType::UInt32).sum().alias("agree"),
            col("unplanned_visit").cast(DataType::UInt32).sum().alias("events"),
        ])
        .collect()
        .expect("collect");
    println!("{}: outcome for every procedure in {:.2} s", dir.display(), t.elapsed().as_secs_f64());
    println!("{compared}");
}
