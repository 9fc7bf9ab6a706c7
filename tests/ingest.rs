//! `ascqr ingest`: one parser for validation and reading, and a prepared extract that is the only
//! thing the stages read. The probes of issue 21 — flags written `Y`/`N`, repeated carrier lines,
//! a qualifying line without its service date, an overlapping enrollment row — must give the
//! same cohorts and analysis files as the clean extract.

mod common;

use ascqr::claims::extract::{read_manifest, shard_of, shard_path, MANIFEST_FILE};
use ascqr::claims::validate::{parse_bool, parse_date};
use ascqr::claims::{ingest, FileFormat, IngestOptions, Layout, Table};
use ascqr::dictionary::{Dictionary, MeasureId};
use ascqr::synth::{generate, Scale, SynthOptions};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};

type Rows = (Vec<String>, Vec<Vec<String>>);

fn read_csv(path: &Path) -> Rows {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r.records().map(|rec| rec.unwrap().iter().map(str::to_string).collect()).collect();
    (header, rows)
}

fn write_csv(path: &Path, (header, rows): &Rows) {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(header).unwrap();
    for row in rows {
        w.write_record(row).unwrap();
    }
    w.flush().unwrap();
}

/// A copy of the five tables of `raw` in `dir`, with `edit` applied to each table's rows.
fn probe(raw: &Path, dir: &Path, edit: impl Fn(Table, &mut Rows)) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for t in Table::ALL {
        let mut rows = read_csv(&raw.join(format!("{}.csv", t.name())));
        edit(t, &mut rows);
        write_csv(&dir.join(format!("{}.csv", t.name())), &rows);
    }
    dir.to_path_buf()
}

fn at(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap()
}

fn prepare(raw: &Path, shards: u32) -> (PathBuf, ascqr::claims::IngestManifest) {
    let out = raw.with_extension(format!("extract{shards}"));
    let manifest = ingest(raw, &IngestOptions { layout: Layout::Canonical, shards: Some(shards) }, &out, &ProgressBar::hidden()).unwrap();
    (out, manifest)
}

fn rejected(manifest: &ascqr::claims::IngestManifest, table: Table, reason: &str) -> u64 {
    let t = manifest.tables.iter().find(|t| t.table == table.name()).unwrap();
    t.rejected_by_reason.get(reason).copied().unwrap_or(0)
}

#[test]
fn the_probes_give_the_same_cohorts_and_analysis_files_as_the_clean_extract() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    generate(&raw, &SynthOptions::new(6, Scale::Small, "2021-2022", FileFormat::Csv).unwrap(), &ProgressBar::hidden()).unwrap();
    let clean = probe(&raw, &dir.path().join("clean"), |_, _| {});
    let (clean_extract, clean_manifest) = prepare(&clean, 1);
    assert_eq!(clean_manifest.total_rejected(), 0);
    let expected = common::results(&clean_extract);
    assert!(expected.iter().all(|r| r.0.height() > 0), "every measure has a cohort");

    // The split does not change any result.
    let (sharded, _) = prepare(&clean, 3);
    common::assert_same_results("3 shards", &common::results(&sharded), &expected);

    // 1. Flags written Y/N (and other accepted spellings) read as the booleans they are.
    let yn = probe(&raw, &dir.path().join("yn"), |t, (h, rows)| {
        if t == Table::Enrollment {
            let spell = [("Y", "N"), ("y", "n"), ("T", "F"), ("1", "0"), ("YES", "no"), ("True", "FALSE")];
            for (i, row) in rows.iter_mut().enumerate() {
                let (yes, no) = spell[i % spell.len()];
                for c in ["part_a", "part_b", "medicare_advantage"] {
                    let k = at(h, c);
                    row[k] = if row[k] == "true" { yes.into() } else { no.into() };
                }
            }
        }
    });
    let (yn_extract, yn_manifest) = prepare(&yn, 2);
    assert_eq!(yn_manifest.total_rejected(), 0);
    common::assert_same_results("Y/N flags", &common::results(&yn_extract), &expected);

    // 2. Every third carrier line repeated: the repeats are quarantined, the stages never see them.
    let repeated = probe(&raw, &dir.path().join("repeated"), |t, (_, rows)| {
        if t == Table::Carrier {
            let copies: Vec<Vec<String>> = rows.iter().step_by(3).cloned().collect();
            rows.extend(copies);
        }
    });
    let (repeated_extract, repeated_manifest) = prepare(&repeated, 2);
    let carrier_lines = read_csv(&clean.join("carrier.csv")).1.len() as u64;
    assert_eq!(rejected(&repeated_manifest, Table::Carrier, "duplicate claim line (claim_id and line_num of an earlier row)"), carrier_lines.div_ceil(3));
    common::assert_same_results("repeated carrier lines", &common::results(&repeated_extract), &expected);

    // 3. A qualifying ASC line without its service date (a copy of each facility line under a new
    //    line number): quarantined, so no stage reaches it and the patient's real procedure stays.
    let undated = probe(&raw, &dir.path().join("undated"), |t, (h, rows)| {
        if t == Table::Carrier {
            let (pos, line, first) = (at(h, "place_of_service"), at(h, "line_num"), at(h, "line_first_date"));
            let mut copies: Vec<Vec<String>> = rows.iter().filter(|r| r[pos] == "24").take(200).cloned().collect();
            for c in &mut copies {
                c[line] = "90".into();
                c[first] = String::new();
            }
            rows.extend(copies);
        }
    });
    let (undated_extract, undated_manifest) = prepare(&undated, 2);
    assert_eq!(rejected(&undated_manifest, Table::Carrier, "required value missing in line_first_date"), 200);
    common::assert_same_results("undated ASC lines", &common::results(&undated_extract), &expected);

    // 4. A fee-for-service row repeated over every Medicare Advantage run: the overlap is
    //    quarantined, so the MA months still break fee-for-service.
    let overlapping = probe(&raw, &dir.path().join("overlap"), |t, (h, rows)| {
        if t == Table::Enrollment {
            let ma = at(h, "medicare_advantage");
            let mut copies: Vec<Vec<String>> = rows.iter().filter(|r| r[ma] == "true").cloned().collect();
            for c in &mut copies {
                c[ma] = "false".into();
            }
            rows.extend(copies);
        }
    });
    let ma_runs = read_csv(&clean.join("enrollment.csv")).1.iter().filter(|r| r[6] == "true").count() as u64;
    assert!(ma_runs > 0, "the generator plants Medicare Advantage months");
    let (overlap_extract, overlap_manifest) = prepare(&overlapping, 2);
    assert_eq!(rejected(&overlap_manifest, Table::Enrollment, "enrollment months overlap an earlier row of the same beneficiary and year"), ma_runs);
    let t = overlap_manifest.tables.iter().find(|t| t.table == "enrollment").unwrap();
    assert!(t.is_balanced() && t.inputs.iter().all(|i| i.rows_produced == i.rows_accepted + i.rows_rejected));
    common::assert_same_results("overlapping enrollment", &common::results(&overlap_extract), &expected);
}

#[test]
fn a_prepared_extract_accounts_for_every_row_and_shards_by_the_documented_hash() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    generate(&raw, &SynthOptions::new(3, Scale::Small, "2022", FileFormat::Parquet).unwrap(), &ProgressBar::hidden()).unwrap();
    let (extract, manifest) = prepare(&raw, 4);
    assert_eq!(read_manifest(&extract).unwrap(), manifest);
    assert_eq!(manifest.layout, "canonical");
    assert_eq!(manifest.shards, 4);
    assert!(manifest.synthetic_source.is_some(), "the generator's manifest is carried along");
    assert_eq!(manifest.inputs.len(), 5);
    assert!(manifest.inputs.iter().all(|i| i.sha256.len() == 64 && i.bytes > 0));
    for t in &manifest.tables {
        assert!(t.is_balanced(), "{}", t.table);
        assert_eq!(t.rows_read, t.rows_produced, "{}", t.table);
        assert_eq!(t.inputs.iter().map(|i| i.rows_read).sum::<u64>(), t.rows_read);
        let table = Table::from_name(&t.table).unwrap();
        let mut rows = 0;
        for shard in 0..4 {
            let df = ascqr::output::read_parquet(&shard_path(&extract, table, shard)).unwrap();
            rows += df.height() as u64;
            let ids: Vec<&str> = df.column("bene_id").unwrap().str().unwrap().iter().map(Option::unwrap).collect();
            assert!(ids.windows(2).all(|w| w[0] <= w[1]), "{} shard {shard} is not sorted by bene_id", t.table);
            assert!(ids.iter().all(|id| shard_of(id, 4) == shard), "{} shard {shard} holds another shard's beneficiary", t.table);
        }
        assert_eq!(rows, t.rows_accepted, "{}", t.table);
    }
    // Ingesting again gives byte-identical files.
    let again = dir.path().join("again");
    ingest(&raw, &IngestOptions { layout: Layout::Canonical, shards: Some(4) }, &again, &ProgressBar::hidden()).unwrap();
    let (a, b) = (common::files(&extract), common::files(&again));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in &a {
        if k != MANIFEST_FILE {
            assert!(v == &b[k], "{k} differs between two ingests");
        }
    }
}

#[test]
fn bad_input_leaves_no_partial_extract_and_a_raw_folder_is_refused_by_the_stages() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    generate(&raw, &SynthOptions::new(3, Scale::Small, "2022", FileFormat::Csv).unwrap(), &ProgressBar::hidden()).unwrap();
    // An unparseable date: the error names file, row, column and value; nothing is left behind.
    let bad = probe(&raw, &dir.path().join("bad"), |t, (h, rows)| {
        if t == Table::Carrier {
            let k = at(h, "claim_from_date");
            rows[4][k] = "2022-02-30".into();
        }
    });
    let out = dir.path().join("extract");
    let err = ingest(&bad, &IngestOptions { layout: Layout::Canonical, shards: Some(2) }, &out, &ProgressBar::hidden()).unwrap_err().to_string();
    assert!(err.contains("carrier.csv: row 5, column `claim_from_date`: value \"2022-02-30\" is not a date"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert!(!out.exists() && left.iter().all(|n| !n.contains("ingest-tmp")), "left behind: {left:?}");

    // The stages refuse a raw folder and name the command that prepares it.
    let dict = Dictionary::embedded().unwrap();
    let err = ascqr::cohort::build(&raw, MeasureId::Asc12, None, dict).err().expect("a raw folder is refused").to_string();
    assert!(err.contains("not a prepared extract") && err.contains("ascqr ingest"), "{err}");
    assert!(ascqr::eligibility::claim_counts(&raw, 2022).is_err());

    // Zero shards and an occupied output folder are refused before anything is read.
    let err = ingest(&raw, &IngestOptions { layout: Layout::Canonical, shards: Some(0) }, &out, &ProgressBar::hidden()).unwrap_err().to_string();
    assert!(err.contains("--shards 0"), "{err}");
    let err = ingest(&raw, &IngestOptions { layout: Layout::Canonical, shards: None }, &bad, &ProgressBar::hidden()).unwrap_err().to_string();
    assert!(err.contains("exists and is not a prepared extract"), "{err}");
}

#[test]
fn optional_icd_version_columns_may_be_absent() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    generate(&raw, &SynthOptions::new(3, Scale::Small, "2022", FileFormat::Csv).unwrap(), &ProgressBar::hidden()).unwrap();
    let clean = probe(&raw, &dir.path().join("clean"), |_, _| {});
    let without = probe(&raw, &dir.path().join("without"), |t, (h, rows)| {
        if t == Table::Outpatient {
            let k = at(h, "dx_version");
            h.remove(k);
            for r in rows.iter_mut() {
                r.remove(k);
            }
        }
    });
    let (_, manifest) = prepare(&without, 1);
    let outpatient = manifest.tables.iter().find(|t| t.table == "outpatient").unwrap();
    assert_eq!(outpatient.absent_columns, vec!["dx_version".to_string()]);
    assert!(manifest.notes.iter().any(|n| n.contains("dx_version")));
    assert_eq!(manifest.total_rejected(), 0);
    // Results: the same as with the column present ("0" everywhere in the generator's files).
    let (a, _) = prepare(&clean, 1);
    let (b, _) = prepare(&without, 1);
    let dict = Dictionary::embedded().unwrap();
    for m in MeasureId::ALL {
        let x = ascqr::cohort::build(&a, m, None, dict).unwrap();
        let y = ascqr::cohort::build(&b, m, None, dict).unwrap();
        assert!(x.cohort.equals_missing(&y.cohort), "{m}");
    }
}

#[test]
fn every_accepted_encoding_parses_and_nothing_else_does() {
    let d = |s: &str| parse_date(s);
    let expected = d("2022-01-31").unwrap();
    for v in ["20220131", "31-Jan-2022", "31-JAN-2022", "31-jan-2022", "31JAN2022", "31Jan2022"] {
        assert_eq!(d(v), Some(expected), "{v}");
    }
    for v in ["2022-02-30", "20220230", "2022/01/31", "31/01/2022", "", "2022-1-31x", "31-Foo-2022", "01312022"] {
        assert_eq!(d(v), None, "{v}");
    }
    for v in ["true", "TRUE", "True", "t", "T", "y", "Y", "yes", "YES", "1"] {
        assert_eq!(parse_bool(v), Some(true), "{v}");
    }
    for v in ["false", "FALSE", "f", "F", "n", "N", "no", "No", "0"] {
        assert_eq!(parse_bool(v), Some(false), "{v}");
    }
    for v in ["", "maybe", "2", "-1", "tru"] {
        assert_eq!(parse_bool(v), None, "{v}");
    }
}

#[test]
fn asc_lines_outside_any_enrollment_month_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    generate(&raw, &SynthOptions::new(4, Scale::Small, "2022", FileFormat::Csv).unwrap(), &ProgressBar::hidden()).unwrap();
    let clean = probe(&raw, &dir.path().join("clean"), |_, _| {});
    let moved = probe(&raw, &dir.path().join("moved"), |t, (h, rows)| {
        if t == Table::Carrier {
            let (pos, claim) = (at(h, "place_of_service"), at(h, "claim_id"));
            let dates: Vec<usize> = ["claim_from_date", "claim_thru_date", "line_first_date", "line_last_date"].iter().map(|c| at(h, c)).collect();
            let mut copies: Vec<Vec<String>> = rows.iter().filter(|r| r[pos] == "24").take(5).cloned().collect();
            for (i, c) in copies.iter_mut().enumerate() {
                c[claim] = format!("MOVED{i}");
                for &d in &dates {
                    c[d] = "2031-06-15".into();
                }
            }
            rows.extend(copies);
        }
    });
    let (_, before) = prepare(&clean, 2);
    let (_, after) = prepare(&moved, 2);
    assert_eq!(after.total_rejected(), 0);
    assert_eq!(after.asc_lines_outside_enrollment, before.asc_lines_outside_enrollment + 5);
    assert!(after.notes.iter().any(|n| n.contains("fall in no enrollment month")), "{:?}", after.notes);
}
