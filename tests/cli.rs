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
    for word in ["synth", "ingest", "validate", "demo", "Exit codes", "RUST_LOG"] {
        assert!(text.contains(word), "--help lacks {word}");
    }
    for cmd in [
        "synth",
        "ingest",
        "validate",
        "cohort",
        "features",
        "eligibility",
        "import-cc",
        "fit",
        "synth-analysis",
        "demo",
        "run",
        "report",
        "web",
        "web validate-upload",
        "web sample",
        "forecast",
        "forecast-check",
    ] {
        let out = ascqr().args(cmd.split(' ')).arg("--help").output().unwrap();
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
        err.contains(&format!("error: {}: row 3, column `birth_date`: value \"1950-02-30\" is not a date (2022-01-31, 20220131, 31-Jan-2022 or 31JAN2022)", path.display())),
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
    let raw = dir.path().join("raw");
    let claims = dir.path().join("claims");
    let ok = |args: &[&std::ffi::OsStr]| {
        let out = ascqr().args(args).output().unwrap();
        assert!(out.status.success(), "{:?}: {}", args, String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let p = |s: &std::path::Path| s.as_os_str().to_owned();
    ok(&["synth".as_ref(), "--seed".as_ref(), "5".as_ref(), "--out".as_ref(), p(&raw).as_os_str()]);
    // The stages read only a prepared extract: a raw folder is refused with the command to run.
    let cohort = dir.path().join("cohort");
    let refused = ascqr().args(["cohort", "--measure", "asc18", "--claims"]).arg(&raw).arg("--out").arg(&cohort).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("ascqr ingest"), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(!cohort.exists());
    let text = ok(&["ingest".as_ref(), "--claims".as_ref(), p(&raw).as_os_str(), "--shards".as_ref(), "2".as_ref(), "--out".as_ref(), p(&claims).as_os_str()]);
    assert!(text.contains("prepared extract") && text.contains("2 shards"), "{text}");
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

    // The fit saved as ASC-18's national model, then a forecast for one ASC with it.
    let saved = dir.path().join("saved");
    let fit_args = |covariates: &str, out: &std::path::Path| -> Vec<std::ffi::OsString> {
        ["fit", "--data"].iter().map(|s| s.into()).chain([p(&features.join("analysis.parquet"))]).chain(
            ["--outcome", "outcome", "--group", "facility_id", "--covariates", covariates, "--save-model-for", "asc18", "--out"].iter().map(|s| s.into()),
        ).chain([p(out)]).collect()
    };
    let args = fit_args("age_over_65,work_rvu", &saved);
    let text = ok(&args.iter().map(|s| s.as_os_str()).collect::<Vec<_>>());
    assert!(text.contains("saved_model.json"), "{text}");
    // A covariate the measure does not define cannot be rebuilt from claims: refused.
    let args = fit_args("age_over_65,procedure_id", &dir.path().join("bad"));
    let bad = ascqr().args(&args).output().unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));

    use polars::prelude::SerReader;
    let df = polars::prelude::ParquetReader::new(std::fs::File::open(cohort.join("cohort.parquet")).unwrap()).finish().unwrap();
    let npi = df.column("facility_npi").unwrap().str().unwrap().get(0).unwrap().to_string();
    let forecast = dir.path().join("forecast");
    let text = ok(&[
        "forecast".as_ref(),
        "--model".as_ref(),
        p(&saved).as_os_str(),
        "--claims".as_ref(),
        p(&claims).as_os_str(),
        "--facility".as_ref(),
        npi.as_ref(),
        "--draws".as_ref(),
        "200".as_ref(),
        "--out".as_ref(),
        p(&forecast).as_os_str(),
    ]);
    assert!(text.contains(&format!("asc18 forecast for ASC {npi}")) && text.contains("95% interval"), "{text}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(forecast.join("forecast.json")).unwrap()).unwrap();
    assert_eq!(json["facility"], npi.as_str());
    assert!(json["rate"].as_f64().unwrap() > 0.0);

    // The shipped synthetic models work out of the box; an extract of several ASCs needs
    // --facility, and a what-if must name a variable the model has.
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/synthetic-national");
    let out = ascqr().args(["forecast".as_ref(), "--model".as_ref(), models.as_os_str(), "--claims".as_ref(), p(&claims).as_os_str(), "--out".as_ref(), p(&forecast).as_os_str()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--facility"), "{}", String::from_utf8_lossy(&out.stderr));
    let all = dir.path().join("all");
    let text = ok(&["forecast".as_ref(), "--model".as_ref(), models.as_os_str(), "--claims".as_ref(), p(&claims).as_os_str(), "--facility".as_ref(), npi.as_ref(), "--draws".as_ref(), "100".as_ref(), "--out".as_ref(), p(&all).as_os_str()]);
    assert!(text.contains("SYNTHETIC"), "{text}");
    for m in ["asc12", "asc17", "asc18", "asc19"] {
        assert!(all.join(m).join("forecast.json").exists(), "{m}");
    }
    let out = ascqr()
        .args(["forecast".as_ref(), "--model".as_ref(), p(&saved).as_os_str(), "--claims".as_ref(), p(&claims).as_os_str(), "--facility".as_ref(), npi.as_ref(), "--what-if-share".as_ref(), "diabetes=0.3".as_ref(), "--out".as_ref(), p(&forecast).as_os_str()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"diabetes\""), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn web_measures_upload_validation_and_sampling_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("claims");
    let out = ascqr().args(["synth", "--seed", "3", "--years", "2023", "--out"]).arg(&claims).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let records = claims.join("web/records.csv");
    let web = dir.path().join("web");
    let out = ascqr()
        .args(["web", "--records"])
        .arg(&records)
        .arg("--personnel")
        .arg(claims.join("web/personnel.csv"))
        .args(["--payment-year", "2025", "--upload-date", "2025-04-01", "--out"])
        .arg(&web)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("records accepted") && text.contains("rejected value(s) (reporting year 2023)"), "{text}");
    let upload = web.join("ASC_WBM_PY2025_04_01_2025.csv");
    for f in [web.join("web_measures.csv"), web.join("rejects.csv"), upload.clone()] {
        assert!(f.exists(), "{}", f.display());
    }
    // The generator plants defective records; each is in rejects.csv, identifiers withheld.
    let rejects = std::fs::read_to_string(web.join("rejects.csv")).unwrap();
    assert!(rejects.lines().count() > 1, "{rejects}");
    assert!(!rejects.contains("SYN0"), "an encounter id leaked into rejects.csv");

    let out = ascqr().args(["web", "validate-upload"]).arg(&upload).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // A numerator above its denominator: HQR rejects the whole file, and so do we (exit 2),
    // naming row and column.
    let text = std::fs::read_to_string(&upload).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut fields: Vec<String> = lines[1].split(',').map(str::to_string).collect();
    fields[2] = (fields[3].parse::<u64>().unwrap() + 1).to_string(); // ASC_1_NUMERATOR > ASC_1_DENOMINATOR
    lines[1] = fields.join(",");
    let bad_dir = dir.path().join("bad");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let bad = bad_dir.join("ASC_WBM_PY2025_04_01_2025.csv");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let out = ascqr().args(["web", "validate-upload"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(listed.contains("row 2") && listed.contains("ASC_1_NUMERATOR"), "{listed}");
    assert!(String::from_utf8(out.stderr).unwrap().contains("file rejected: 1 error(s)"));

    // A seeded sample of the first facility's ASC-13 cases: the same seed draws the same sample.
    let npi = fields[0].clone();
    let sample = |name: &str| {
        let path = dir.path().join(name);
        let out = ascqr()
            .args(["web", "sample", "--records"])
            .arg(&records)
            .args(["--facility", &npi, "--measure", "asc13", "--year", "2023", "--seed", "7", "--out"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8(out.stdout).unwrap().contains("ASC-13 at"));
        std::fs::read(path).unwrap()
    };
    assert_eq!(sample("s1.csv"), sample("s2.csv"));

    let out = ascqr().args(["web", "--records"]).arg(&records).args(["--out"]).arg(dir.path().join("x")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("--payment-year"));
}

#[test]
fn run_and_report_refuse_bad_input_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = ascqr().args(["report", "--run"]).arg(dir.path().join("nothing")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("manifest.json"));
    let out = ascqr().args(["run", "--claims"]).arg(dir.path()).args(["--measures", "asc13", "--out"]).arg(dir.path().join("r")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("asc13"), "{err}");
}
