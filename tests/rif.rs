//! The CMS RIF source adapter on a real example of the layout (CMS Beneficiary FHIR Data Server
//! test resources, CC0; a copy lives in tests/data/rif-synthea).

use ascqr::claims::{scan_table, validate, Layout, Table};
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
fn ingesting_the_rif_sample_gives_canonical_rows() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("extract");
    let options = ascqr::claims::IngestOptions { layout: Layout::Rif, shards: Some(3) };
    let manifest = ascqr::claims::ingest(&sample(), &options, &out, &ProgressBar::hidden()).unwrap();
    assert_eq!(manifest.total_rejected(), 0);

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

/// CMS's public synthetic files name the beneficiary file's columns as the MBSF A/B/C/D does
/// (`SEX_IDENT_CD`, `MDCR_ENTLMT_BUYIN_IND_01`, `HMO_IND_01`); the adapter reads them, where it
/// once refused the file and would have left sex empty.
#[test]
fn the_mbsf_abcd_names_of_cms_public_synthetic_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("rif");
    std::fs::create_dir_all(&folder).unwrap();
    for f in ["carrier.csv", "outpatient.csv", "inpatient.csv", "beneficiary_2021.csv"] {
        std::fs::copy(sample().join(f), folder.join(f)).unwrap();
    }
    let excerpt = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/cms-synthetic-ccw-beneficiary/beneficiary_2022_excerpt.csv");
    std::fs::copy(&excerpt, folder.join("beneficiary_2022.csv")).unwrap();
    let out = dir.path().join("extract");
    let options = ascqr::claims::IngestOptions { layout: Layout::Rif, shards: Some(1) };
    let manifest = ascqr::claims::ingest(&folder, &options, &out, &ProgressBar::hidden()).unwrap();
    assert_eq!(manifest.total_rejected(), 0);
    let benes = scan_table(&out, Table::Beneficiaries).unwrap().filter(col("bene_id").str().starts_with(lit("-1000001025"))).collect().unwrap();
    assert_eq!(benes.height(), 2);
    assert!(benes.column("sex").unwrap().str().unwrap().iter().all(|s| s == Some("1")));
    // Buy-in 3 (A and B) all year with a blank HMO indicator: one fee-for-service run; buy-in
    // C (A and B under a state buy-in): the same.
    let enrol = scan_table(&out, Table::Enrollment).unwrap().filter(col("bene_id").str().starts_with(lit("-1000001025"))).collect().unwrap();
    assert_eq!(enrol.height(), 2, "{enrol}");
    for c in ["part_a", "part_b"] {
        assert!(enrol.column(c).unwrap().bool().unwrap().iter().all(|v| v == Some(true)));
    }
    assert!(enrol.column("medicare_advantage").unwrap().bool().unwrap().iter().all(|v| v == Some(false)));
}

/// BFD's hand-made RIF samples (`tests/data/bfd-rif-static`, CC0): names like
/// `sample-a-bcarrier.txt`, a `DML_IND` first column, `27-OCT-1999` dates and, in the outpatient
/// sample, rows ending with one delimiter more than the header. They ingest without error, every
/// row accounted for; their made-up codes are quarantined with the reason.
#[test]
fn bfd_static_rif_samples_ingest_with_every_row_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let samples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/bfd-rif-static");
    let out = dir.path().join("extract");
    let options = ascqr::claims::IngestOptions { layout: Layout::Rif, shards: Some(1) };
    let manifest = ascqr::claims::ingest(&samples, &options, &out, &ProgressBar::hidden()).unwrap();
    for t in &manifest.tables {
        assert!(t.is_balanced(), "{}", t.table);
        if t.table == "enrollment" {
            // A beneficiary-year gives one row per run of months alike.
            assert!(t.rows_produced >= t.rows_read);
        } else {
            assert_eq!(t.rows_read, t.rows_produced + t.rows_merged, "{}", t.table);
        }
    }
    let get = |t: &str| manifest.tables.iter().find(|r| r.table == t).unwrap().clone();
    assert_eq!((get("carrier").files, get("carrier").rows_read), (2, 8));
    assert_eq!(get("carrier").rejected_by_reason.get("malformed NPI in rendering_npi"), Some(&8));
    assert_eq!((get("inpatient").rows_accepted, get("beneficiaries").rows_accepted), (1, 1));
    assert_eq!(get("outpatient").rows_read, 1);
}
