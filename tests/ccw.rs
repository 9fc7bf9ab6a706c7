//! `ascqr ingest --layout ccw`: the synthetic extract written as a CCW delivery (fixed-width
//! `.dat` with `.fts`, claims and lines in separate files, MBSF A/B/C/D by year, one year as CSV
//! with short names) gives the same cohorts and analysis files as the canonical extract; every
//! class of bad delivery gets its message and leaves no extract.

mod common;

use ascqr::claims::ccw::write_canonical_as_ccw;
use ascqr::claims::{ingest, FileFormat, IngestOptions, Layout};
use ascqr::synth::{generate, Scale, SynthOptions};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};

fn ingest_as(dir: &Path, layout: Layout, out: &Path) -> ascqr::Result<ascqr::claims::IngestManifest> {
    ingest(dir, &IngestOptions { layout, shards: Some(2) }, out, &ProgressBar::hidden())
}

/// Rewrites a fixed-width file and its layout as a CSV whose header uses CCW short names.
fn as_short_name_csv(dat: &Path) -> PathBuf {
    let layout = ascqr::claims::ccw::parse_fts(&dat.with_extension("fts")).unwrap();
    let short = |long: &str| match long {
        "BENE_ID" => "BENE_ID".to_string(),
        "BENE_ENROLLMT_REF_YR" => "RFRNC_YR".to_string(),
        "BENE_BIRTH_DT" => "BENE_DOB".to_string(),
        "BENE_DEATH_DT" => "DEATH_DT".to_string(),
        "SEX_IDENT_CD" => "SEX".to_string(),
        other if other.starts_with("MDCR_ENTLMT_BUYIN_IND_") => format!("BUYIN{}", &other[22..]),
        other if other.starts_with("HMO_IND_") => format!("HMOIND{}", &other[8..]),
        other => panic!("no short name for {other}"),
    };
    let csv_path = dat.with_extension("csv");
    let mut w = csv::Writer::from_path(&csv_path).unwrap();
    w.write_record(layout.columns.iter().map(|c| short(&c.long_name))).unwrap();
    for line in std::fs::read_to_string(dat).unwrap().lines() {
        w.write_record(layout.columns.iter().map(|c| line[c.start - 1..c.start - 1 + c.width].trim())).unwrap();
    }
    w.flush().unwrap();
    std::fs::remove_file(dat).unwrap();
    std::fs::remove_file(dat.with_extension("fts")).unwrap();
    csv_path
}

#[test]
fn a_ccw_delivery_gives_the_same_results_as_the_canonical_extract() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    generate(&raw, &SynthOptions::new(6, Scale::Small, "2021-2022", FileFormat::Parquet).unwrap(), &ProgressBar::hidden()).unwrap();
    let ccw = dir.path().join("ccw");
    let written = write_canonical_as_ccw(&raw, &ccw).unwrap();
    assert!(written.iter().filter(|p| p.to_string_lossy().contains("mbsf_abcd_summary_")).count() >= 2, "MBSF split by year");
    // One year of the MBSF as CSV with short names (SEX, BUYIN01, HMOIND01, …).
    let first_mbsf = written.iter().find(|p| p.to_string_lossy().contains("mbsf_abcd_summary_")).unwrap();
    as_short_name_csv(first_mbsf);
    // An inpatient revenue-center file is passed over with a note.
    std::fs::write(ccw.join("inpatient_revenue_center_k.csv"), "BENE_ID,CLM_ID\n").unwrap();

    let canonical = dir.path().join("canonical_extract");
    ingest_as(&raw, Layout::Canonical, &canonical).unwrap();
    let from_ccw = dir.path().join("ccw_extract");
    let manifest = ingest_as(&ccw, Layout::Ccw, &from_ccw).unwrap();
    assert_eq!(manifest.layout, "ccw");
    assert_eq!(manifest.total_rejected(), 0, "{:?}", manifest.tables);
    assert!(manifest.notes.iter().any(|n| n.contains("inpatient_revenue_center_k.csv")), "{:?}", manifest.notes);
    for t in &manifest.tables {
        assert!(t.is_balanced(), "{}", t.table);
        assert_eq!(t.inputs.iter().map(|i| i.rows_read).sum::<u64>(), t.rows_read, "{}", t.table);
    }
    // Carrier: every claims-file row was read and merged into its lines; every line accepted.
    let carrier = manifest.tables.iter().find(|t| t.table == "carrier").unwrap();
    assert_eq!(carrier.rows_read, carrier.rows_merged + carrier.rows_produced);
    assert!(carrier.rows_merged > 0);
    let expected = common::results(&canonical);
    common::assert_same_results("ccw", &common::results(&from_ccw), &expected);

    // The same delivery with MedPAR in place of inpatient claims, written this time from the
    // prepared extract one shard at a time (as `synth --ccw` writes it at any scale).
    let medpar = dir.path().join("medpar");
    let written = ascqr::claims::ccw::write_canonical_as_ccw_with(&canonical, &medpar, true).unwrap();
    assert!(written.iter().any(|p| p.to_string_lossy().contains("medpar_all_file")));
    assert!(!medpar.join("inpatient_base_claims_k.dat").exists());
    let from_medpar = dir.path().join("medpar_extract");
    let manifest = ingest_as(&medpar, Layout::Ccw, &from_medpar).unwrap();
    assert_eq!(manifest.total_rejected(), 0);
    common::assert_same_results("ccw with MedPAR", &common::results(&from_medpar), &expected);
}

#[test]
fn every_class_of_bad_delivery_gets_its_message_and_leaves_no_extract() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    generate(&raw, &SynthOptions::new(3, Scale::Small, "2022", FileFormat::Parquet).unwrap(), &ProgressBar::hidden()).unwrap();
    let good = dir.path().join("good");
    write_canonical_as_ccw(&raw, &good).unwrap();
    let copy = |name: &str| common::copy_folder(&good, &dir.path().join(name));
    let out = dir.path().join("extract");
    let fails = |d: &Path| -> String {
        let err = ingest_as(d, Layout::Ccw, &out).err().expect("refused").to_string();
        assert!(!out.exists(), "a partial extract was left");
        let left: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
        assert!(left.iter().all(|n| !n.contains("ingest-tmp")), "{left:?}");
        err
    };
    let lines_file = good.join("bcarrier_line_k.dat");
    let line_len = std::fs::read_to_string(&lines_file).unwrap().lines().next().unwrap().len();

    // A line of the wrong length: file, row and both lengths.
    let d = copy("short_line");
    let text = std::fs::read_to_string(d.join("bcarrier_line_k.dat")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[2].pop();
    std::fs::write(d.join("bcarrier_line_k.dat"), lines.join("\n") + "\n").unwrap();
    let e = fails(&d);
    assert!(e.contains("bcarrier_line_k.dat: row 3: line has") && e.contains(&format!("gives records of {line_len}")), "{e}");

    // A fixed-width file without its layout.
    let d = copy("no_fts");
    std::fs::remove_file(d.join("bcarrier_line_k.fts")).unwrap();
    let e = fails(&d);
    assert!(e.contains("without its layout") && e.contains("bcarrier_line_k.fts"), "{e}");

    // A layout that describes another file.
    let d = copy("other_fts");
    let fts = std::fs::read_to_string(d.join("bcarrier_line_k.fts")).unwrap().replace("bcarrier_line_k.dat", "bcarrier_line_k_2019.dat");
    std::fs::write(d.join("bcarrier_line_k.fts"), fts).unwrap();
    let e = fails(&d);
    assert!(e.contains("describes bcarrier_line_k_2019.dat, not bcarrier_line_k.dat"), "{e}");

    // A file shorter than its layout's row count.
    let d = copy("truncated");
    let text = std::fs::read_to_string(d.join("bcarrier_line_k.dat")).unwrap();
    let n = text.lines().count();
    std::fs::write(d.join("bcarrier_line_k.dat"), text.lines().take(n - 1).collect::<Vec<_>>().join("\n") + "\n").unwrap();
    let e = fails(&d);
    assert!(e.contains(&format!("{} rows, but", n - 1)) && e.contains(&format!("says {n}")), "{e}");

    // Line files without their claims file.
    let d = copy("no_claims");
    std::fs::remove_file(d.join("bcarrier_claims_k.dat")).unwrap();
    std::fs::remove_file(d.join("bcarrier_claims_k.fts")).unwrap();
    let e = fails(&d);
    assert!(e.contains("carrier claims") && e.contains("line files need their claims files"), "{e}");

    // An unparseable date: file, row, column and value.
    let d = copy("bad_date");
    let layout = ascqr::claims::ccw::parse_fts(&d.join("bcarrier_line_k.fts")).unwrap();
    let c = layout.columns.iter().find(|c| c.long_name == "LINE_1ST_EXPNS_DT").unwrap();
    let text = std::fs::read_to_string(d.join("bcarrier_line_k.dat")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[1].replace_range(c.start - 1..c.start - 1 + 8, "20221341");
    std::fs::write(d.join("bcarrier_line_k.dat"), lines.join("\n") + "\n").unwrap();
    let e = fails(&d);
    assert!(e.contains("bcarrier_line_k.dat: row 2, column `LINE_1ST_EXPNS_DT`: value \"20221341\""), "{e}");

    // A line whose claim is in no claims file is quarantined, not dropped.
    let d = copy("orphan");
    let claims = std::fs::read_to_string(d.join("bcarrier_claims_k.dat")).unwrap();
    let kept: Vec<&str> = claims.lines().skip(1).collect();
    std::fs::write(d.join("bcarrier_claims_k.dat"), kept.join("\n") + "\n").unwrap();
    let fts = std::fs::read_to_string(d.join("bcarrier_claims_k.fts")).unwrap();
    let fts: Vec<String> = fts
        .lines()
        .map(|l| if l.starts_with("Exact File Quantity") { format!("Exact File Quantity (Rows): {}", kept.len()) } else { l.to_string() })
        .collect();
    std::fs::write(d.join("bcarrier_claims_k.fts"), fts.join("\n") + "\n").unwrap();
    let manifest = ingest_as(&d, Layout::Ccw, &out).unwrap();
    let carrier = manifest.tables.iter().find(|t| t.table == "carrier").unwrap();
    let orphans = carrier.rejected_by_reason.get("claim line without its claim in the claims file (BENE_ID and CLM_ID)").copied().unwrap_or(0);
    assert!(orphans >= 1, "{:?}", carrier.rejected_by_reason);
    assert!(carrier.is_balanced());
    let rejects = std::fs::read_to_string(out.join("rejects.csv")).unwrap();
    assert_eq!(rejects.lines().filter(|l| l.contains("without its claim")).count() as u64, orphans);
}
