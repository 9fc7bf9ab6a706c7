//! `ascqr ingest --layout cclf`: the synthetic extract written as an ACO's CCLF files (every
//! beneficiary assigned, identifiers renumbered to CCLF's widths, one MBI changed through CCLF9,
//! a superseded and a cancelled claim version) gives the same cohorts and analysis files as the
//! canonical extract; bad files get their message.

mod common;

use ascqr::claims::cclf::{write_canonical_as_cclf, POPULATION_NOTE};
use ascqr::claims::{ingest, FileFormat, IngestOptions, Layout};
use ascqr::synth::{generate, Scale, SynthOptions};
use indicatif::ProgressBar;
use polars::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

fn ingest_as(dir: &Path, layout: Layout, out: &Path) -> ascqr::Result<ascqr::claims::IngestManifest> {
    ingest(dir, &IngestOptions { layout, shards: Some(2) }, out, &ProgressBar::hidden())
}

fn ids(df: &DataFrame, map: Option<&BTreeMap<String, String>>) -> Vec<String> {
    let mut v: Vec<String> = df.column("procedure_id").unwrap().str().unwrap().iter().map(|x| {
        let x = x.unwrap().to_string();
        map.map_or(x.clone(), |m| m[&x].clone())
    }).collect();
    v.sort();
    v
}

/// The analysis file without its identifiers, in a fixed order: the same rows whatever the ids.
fn without_ids(df: &DataFrame) -> DataFrame {
    let keep: Vec<String> = df.get_column_names().iter().map(|c| c.to_string()).filter(|c| c != "procedure_id").collect();
    let sorted = df.select(keep.clone()).unwrap();
    sorted.sort(keep, SortMultipleOptions::default().with_maintain_order(true)).unwrap()
}

#[test]
fn cclf_files_give_the_same_results_as_the_canonical_extract() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    generate(&raw, &SynthOptions::new(6, Scale::Small, "2021-2022", FileFormat::Parquet).unwrap(), &ProgressBar::hidden()).unwrap();
    let cclf = dir.path().join("cclf");
    let (_, claim_ids) = write_canonical_as_cclf(&raw, &cclf).unwrap();
    let canonical = dir.path().join("canonical_extract");
    ingest_as(&raw, Layout::Canonical, &canonical).unwrap();
    let from_cclf = dir.path().join("cclf_extract");
    let manifest = ingest_as(&cclf, Layout::Cclf, &from_cclf).unwrap();
    assert_eq!(manifest.layout, "cclf");
    assert_eq!(manifest.total_rejected(), 0, "{:?}", manifest.tables.iter().map(|t| &t.rejected_by_reason).collect::<Vec<_>>());
    assert!(manifest.notes.iter().any(|n| n == POPULATION_NOTE), "{:?}", manifest.notes);
    assert!(manifest.notes.iter().any(|n| n.contains("1 rows of superseded claim versions and 2 rows of cancelled claims")), "{:?}", manifest.notes);
    for t in &manifest.tables {
        assert!(t.is_balanced(), "{}", t.table);
        assert_eq!(t.rows_read, t.rows_produced + t.rows_merged, "{}", t.table);
    }
    let (a, b) = (common::results(&canonical), common::results(&from_cclf));
    for (m, (x, y)) in ascqr::dictionary::MeasureId::ALL.iter().zip(a.iter().zip(&b)) {
        assert!(x.0.height() > 0, "{m}");
        assert_eq!(ids(&x.0, Some(&claim_ids)), ids(&y.0, None), "{m}: cohort");
        assert_eq!(ids(&x.1, Some(&claim_ids)), ids(&y.1, None), "{m}: exclusions");
        assert_eq!(x.2, y.2, "{m}: attrition");
        assert!(without_ids(&x.3).equals_missing(&without_ids(&y.3)), "{m}: analysis file");
    }
    // A run on it says whose claims these are, in its manifest and its report.
    let config = ascqr::pipeline::RunConfig { measures: Some(vec!["asc18".into()]), bootstrap: Some(0), upload_date: Some("2025-04-01".into()), ..Default::default() };
    let run = dir.path().join("run");
    let result = ascqr::pipeline::run(&from_cclf, &config, ascqr::dictionary::Dictionary::embedded().unwrap(), vec![], &run).unwrap();
    assert_eq!(result.warnings.first().map(String::as_str), Some(POPULATION_NOTE));
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["warnings"][0], POPULATION_NOTE);
    assert!(std::fs::read_to_string(run.join("report.html")).unwrap().contains(POPULATION_NOTE));
}

#[test]
fn bad_cclf_files_get_their_message_and_leave_no_extract() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    generate(&raw, &SynthOptions::new(3, Scale::Small, "2022", FileFormat::Parquet).unwrap(), &ProgressBar::hidden()).unwrap();
    let good = dir.path().join("good");
    write_canonical_as_cclf(&raw, &good).unwrap();
    let out = dir.path().join("extract");
    let copy = |name: &str| common::copy_folder(&good, &dir.path().join(name));
    // A CCLF8 without its delivery date in the name.
    let d = copy("undated");
    let eight = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().contains("ZC8Y")).unwrap();
    std::fs::rename(&eight, d.join("cclf8_beneficiaries.txt")).unwrap();
    let e = ingest_as(&d, Layout::Cclf, &out).err().unwrap().to_string();
    assert!(e.contains("cclf8_beneficiaries.txt") && e.contains("delivery date"), "{e}");
    assert!(!out.exists());
    // A line of the wrong length in CCLF5.
    let d = copy("short");
    let five = d.join("P.A0001.ACO.ZC5Y23.D231215.T0000000");
    let text = std::fs::read_to_string(&five).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[3].truncate(300);
    std::fs::write(&five, lines.join("\n") + "\n").unwrap();
    let e = ingest_as(&d, Layout::Cclf, &out).err().unwrap().to_string();
    assert!(e.contains("ZC5Y23.D231215.T0000000: row 4: line has 300 characters") && e.contains("gives records of 388"), "{e}");
    assert!(!out.exists());
    // No CCLF5 at all.
    let d = copy("no_part_b");
    std::fs::remove_file(d.join("P.A0001.ACO.ZC5Y23.D231215.T0000000")).unwrap();
    let e = ingest_as(&d, Layout::Cclf, &out).err().unwrap().to_string();
    assert!(e.contains("CCLF5"), "{e}");
}
