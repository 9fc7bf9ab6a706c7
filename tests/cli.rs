//! The binary: documented exit codes, help with examples, and the synth → validate round trip.

use std::process::Command;

fn ascqr() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ascqr"))
}

#[test]
fn help_documents_every_command_with_examples_and_exit_codes() {
    let out = ascqr().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for word in ["synth", "validate", "import", "demo", "Exit codes", "RUST_LOG"] {
        assert!(text.contains(word), "--help lacks {word}");
    }
    for cmd in ["synth", "validate", "import", "cohort", "features", "eligibility", "import-cc", "fit", "synth-analysis", "demo"] {
        let out = ascqr().args([cmd, "--help"]).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Example"), "{cmd} --help has no example");
    }
}

#[test]
fn synth_then_validate_reports_zero_rejects_and_bad_input_exits_with_2() {
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("claims");
    let out = ascqr().args(["synth", "--seed", "1", "--scale", "small", "--out"]).arg(&claims).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rejects = dir.path().join("rejects.csv");
    let out = ascqr().args(["validate", "--claims"]).arg(&claims).arg("--rejects").arg(&rejects).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("no rows rejected"), "{text}");

    // Break one date: a fatal error naming file, row, column and value; exit code 2; no reject
    // file left behind.
    let bad = dir.path().join("bad");
    let csv_out = ascqr().args(["synth", "--seed", "1", "--years", "2022", "--format", "csv", "--out"]).arg(&bad).output().unwrap();
    assert!(csv_out.status.success());
    let path = bad.join("beneficiaries.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let fields: Vec<&str> = lines[3].split(',').collect();
    let broken = format!("{},1950-02-30,{}", fields[0], fields[2..].join(","));
    lines[3] = broken;
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let bad_rejects = dir.path().join("bad_rejects.csv");
    let out = ascqr().args(["validate", "--claims"]).arg(&bad).arg("--rejects").arg(&bad_rejects).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!("error: {}: row 3, column `birth_date`: value \"1950-02-30\" is not a date (YYYY-MM-DD)", path.display())),
        "{err}"
    );
    assert!(!bad_rejects.exists());

    let out = ascqr().args(["synth", "--out"]).arg(dir.path().join("x")).args(["--years", "1999"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("invalid option: --years \"1999\""));
}

#[test]
fn cohort_features_and_fit_chain_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("claims");
    let ok = |args: &[&std::ffi::OsStr]| {
        let out = ascqr().args(args).output().unwrap();
        assert!(out.status.success(), "{:?}: {}", args, String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let p = |s: &std::path::Path| s.as_os_str().to_owned();
    ok(&["synth".as_ref(), "--seed".as_ref(), "5".as_ref(), "--out".as_ref(), p(&claims).as_os_str()]);
    let cohort = dir.path().join("cohort");
    let text = ok(&["cohort".as_ref(), "--claims".as_ref(), p(&claims).as_os_str(), "--measure".as_ref(), "asc18".as_ref(), "--out".as_ref(), p(&cohort).as_os_str()]);
    assert!(text.contains("procedures in the cohort"), "{text}");
    for f in ["cohort.parquet", "excluded.parquet", "attrition.csv", "cohort.json"] {
        assert!(cohort.join(f).exists(), "{f}");
    }
    let features = dir.path().join("features");
    ok(&["features".as_ref(), "--cohort".as_ref(), p(&cohort).as_os_str(), "--claims".as_ref(), p(&claims).as_os_str(), "--out".as_ref(), p(&features).as_os_str()]);
    for f in ["analysis.parquet", "analysis_collapsed.parquet", "variables.json"] {
        assert!(features.join(f).exists(), "{f}");
    }
    // The analysis file is the model's input; a small cohort may not support the full model,
    // and the fit must then say so rather than fail silently.
    let fit = dir.path().join("fit");
    let text = ok(&[
        "fit".as_ref(),
        "--data".as_ref(),
        p(&features.join("analysis.parquet")).as_os_str(),
        "--outcome".as_ref(),
        "outcome".as_ref(),
        "--group".as_ref(),
        "facility_id".as_ref(),
        "--covariates".as_ref(),
        "age_over_65,work_rvu".as_ref(),
        "--out".as_ref(),
        p(&fit).as_os_str(),
    ]);
    assert!(text.contains("method rspl"), "{text}");
    assert!(fit.join("model.json").exists() && fit.join("facilities.parquet").exists());
}
