//! `ascqr run-shard` and `ascqr merge`, the contract a distributed engine drives: the parts of
//! 1, 3 and 7 shards, each built by its own process in any order and merged with the parts given
//! in any order, give a run folder byte for byte the same as `ascqr run` (the manifest aside,
//! which names the command and the extract); so does `run --jobs 2`, and a merge told where the
//! extract moved. Merge refuses an incomplete or mixed set of parts.

use ascqr::claims::{ingest, FileFormat, IngestOptions, Layout};
use ascqr::synth::{generate, Scale, SynthOptions};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn ascqr(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ascqr")).args(args).env("RUST_LOG", "warn").output().unwrap()
}

fn ok(args: &[&str]) {
    let out = ascqr(args);
    assert!(out.status.success(), "ascqr {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn err(args: &[&str]) -> String {
    let out = ascqr(args);
    assert_eq!(out.status.code(), Some(2), "ascqr {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// The manifest without what names the command, the extract and the timings.
fn manifest_of_the_results(run: &Path) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap();
    let o = v.as_object_mut().unwrap();
    for k in ["claims", "claims_shards", "command_line", "stages"] {
        o.remove(k).unwrap();
    }
    // The extract's own manifest (it names its shard count) comes first; the claims' files follow.
    let inputs = o["inputs"].as_array_mut().unwrap();
    assert!(inputs[0]["path"].as_str().unwrap().ends_with("ingest.json"));
    inputs.remove(0);
    v
}

fn assert_same_run(what: &str, got: &Path, expected: &Path) {
    let (mut a, mut b) = (common::files(got), common::files(expected));
    a.remove("manifest.json").unwrap();
    b.remove("manifest.json").unwrap();
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>(), "{what}: the files differ");
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{what}: {name} differs");
    }
    assert_eq!(manifest_of_the_results(got), manifest_of_the_results(expected), "{what}: manifest.json");
}

#[test]
fn parts_of_any_split_merge_into_the_bytes_of_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p);
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    generate(&d("raw"), &SynthOptions::new(2, Scale::Small, "2022-2023", FileFormat::Parquet).unwrap(), &ProgressBar::hidden()).unwrap();
    for n in [1u32, 3, 7] {
        ingest(&d("raw"), &IngestOptions { layout: Layout::Canonical, shards: Some(n) }, &d(&format!("e{n}")), &ProgressBar::hidden()).unwrap();
    }
    let settings = ["--bootstrap", "5", "--seed", "4"];
    let run_args = |claims: &str, out: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["run", "--claims", claims, "--out", out].iter().map(|x| x.to_string()).collect();
        a.extend(settings.iter().chain(extra).map(|x| x.to_string()));
        a
    };
    let expected = d("run");
    let args = run_args(&s(&d("e1")), &s(&expected), &[]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());

    for n in [1u32, 3, 7] {
        let extract = s(&d(&format!("e{n}")));
        // Each shard in its own process, last shard first.
        let parts: Vec<String> = (0..n).rev().map(|i| s(&d(&format!("parts{n}/{i}")))).collect();
        for (i, part) in (0..n).rev().zip(&parts) {
            let shard = i.to_string();
            let mut a = vec!["run-shard", "--extract", extract.as_str(), "--shard", shard.as_str(), "--out", part.as_str()];
            a.extend(settings);
            ok(&a);
        }
        // The parts given in another order than they were built.
        let mut given = parts.clone();
        given.rotate_left(n as usize / 2);
        let merged = d(&format!("merged{n}"));
        let merged_s = s(&merged);
        let mut a = vec!["merge", "--out", merged_s.as_str(), "--parts"];
        a.extend(given.iter().map(String::as_str));
        a.extend(settings);
        ok(&a);
        assert_same_run(&format!("{n} shards merged"), &merged, &expected);
    }

    // `run` on seven shards, two at a time.
    let jobs = d("jobs");
    let args = run_args(&s(&d("e7")), &s(&jobs), &["--jobs", "2"]);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_same_run("run --jobs 2 on 7 shards", &jobs, &expected);

    // An incomplete, repeated or mixed set of parts is refused, naming what is wrong.
    let p7 = |i: u32| s(&d(&format!("parts7/{i}")));
    let p3 = |i: u32| s(&d(&format!("parts3/{i}")));
    let bad = s(&d("bad"));
    let mut missing = vec!["merge".to_string(), "--out".into(), bad.clone(), "--parts".into()];
    missing.extend((0..6).map(p7));
    let e = err(&missing.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("shard(s) 6 of 7 are missing"), "{e}");
    let e = err(&["merge", "--out", &bad, "--parts", &p3(0), &p3(1), &p3(1)]);
    assert!(e.contains("shard 1 given twice"), "{e}");
    let e = err(&["merge", "--out", &bad, "--parts", &p3(0), &p3(1), &p3(2), &p7(0)]);
    assert!(e.contains("a part of another extract"), "{e}");
    let e = err(&["merge", "--out", &bad, "--parts", &p3(0), &p3(1), &p3(2), "--measures", "asc12"]);
    assert!(e.contains("give merge the measures and through year run-shard had"), "{e}");
    let e = err(&["run-shard", "--extract", &s(&d("e3")), "--shard", "3", "--out", &bad]);
    assert!(e.contains("--shard 3") && e.contains("shards 0 to 2"), "{e}");
    assert!(!d("bad").exists(), "a failed merge or shard left a folder");

    // The extract moved after its parts were built: merge is told where it is now.
    std::fs::rename(d("e3"), d("e3-moved")).unwrap();
    let e = err(&["merge", "--out", &bad, "--parts", &p3(0), &p3(1), &p3(2)]);
    assert!(e.contains("e3"), "{e}");
    let moved = d("merged-moved");
    ok(&["merge", "--out", &s(&moved), "--extract", &s(&d("e3-moved")), "--parts", &p3(2), &p3(0), &p3(1), "--bootstrap", "5", "--seed", "4"]);
    assert_same_run("merged from a moved extract", &moved, &expected);
}
