//! The CMS RIF source adapter on a real example of the layout (CMS Beneficiary FHIR Data Server
//! test resources, CC0; a copy lives in tests/data/rif-synthea).

mod common;

use ascqr::claims::{import_rif, scan_table, validate, FileFormat, Layout, Table};
use indicatif::ProgressBar;
use polars::prelude::*;
use std::path::PathBuf;

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/rif-synthea")
}

#[test]
fn the_rif_sample_validates_with_every_row_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let report = validate(&sample(), Layout::Rif, &dir.path().join("rejects.csv"), &ProgressBar::hidden()).unwrap();
    let get = |t: &str| report.tables.iter().find(|r| r.table == t).unwrap().clone();
    // Three beneficiaries, each in three yearly beneficiary files: six rows merge.
    let b = get("beneficiaries");
    assert_eq!((b.files, b.rows_read, b.rows_merged, b.rows_produced, b.rows_accepted), (3, 9, 6, 3, 3));
    assert_eq!(b.rows_read, b.rows_produced + b.rows_merged);
    let c = get("carrier");
    assert_eq!((c.rows_read, c.rows_accepted, c.rows_rejected), (221, 221, 0));
    assert_eq!(get("outpatient").rows_accepted, 19);
    // Every inpatient revenue line in this sample is its own claim.
    let i = get("inpatient");
    assert_eq!((i.rows_read, i.rows_produced, i.rows_merged), (16, 16, 0));
    for t in &report.tables {
        assert!(t.is_balanced(), "{}", t.table);
    }
}

#[test]
fn importing_the_rif_sample_gives_a_canonical_extract_that_validates_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("canonical");
    std::fs::create_dir_all(&out).unwrap();
    let bar = ProgressBar::hidden();
    import_rif(&sample(), &out, FileFormat::Parquet, &dir.path().join("import_rejects.csv"), &bar).unwrap();
    let report = validate(&out, Layout::Canonical, &dir.path().join("rejects.csv"), &bar).unwrap();
    assert_eq!(report.total_rejected(), 0);
    let out = common::extract(&out);

    // Monthly buy-in code 3 (Part A and B) with a blank HMO indicator is a year of
    // fee-for-service A and B: one enrollment row.
    let enrol = scan_table(&out, Table::Enrollment)
        .unwrap()
        .filter(col("bene_id").eq(lit("-1000014")).and(col("year").eq(lit(2020))))
        .collect()
        .unwrap();
    assert_eq!(enrol.height(), 1);
    let row = enrol.get_row(0).unwrap().0;
    let names: Vec<String> = enrol.get_column_names().iter().map(|s| s.to_string()).collect();
    let get = |n: &str| row[names.iter().position(|x| x == n).unwrap()].clone();
    assert_eq!(get("first_month"), AnyValue::Int64(1));
    assert_eq!(get("last_month"), AnyValue::Int64(12));
    assert_eq!(get("part_a"), AnyValue::Boolean(true));
    assert_eq!(get("part_b"), AnyValue::Boolean(true));
    assert_eq!(get("medicare_advantage"), AnyValue::Boolean(false));

    // RIF dates (17-Jan-1942 style) arrive as dates; places of service as codes.
    let carrier = scan_table(&out, Table::Carrier).unwrap().collect().unwrap();
    assert_eq!(carrier.height(), 221);
    assert_eq!(carrier.column("line_first_date").unwrap().dtype(), &DataType::Date);
    let pos: Vec<String> = carrier
        .column("place_of_service")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .map(str::to_string)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(pos.iter().all(|p| p.len() == 2), "{pos:?}");
}

#[test]
fn a_rif_file_without_a_required_column_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(sample()).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.path().join(f.file_name())).unwrap();
    }
    let path = dir.path().join("outpatient.csv");
    let text = std::fs::read_to_string(&path).unwrap().replacen("|REV_CNTR|", "|REV_CENTER|", 1);
    std::fs::write(&path, text).unwrap();
    let e = validate(dir.path(), Layout::Rif, &dir.path().join("r.csv"), &ProgressBar::hidden()).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}: missing column `REV_CNTR`", path.display())), "{e}");
}
