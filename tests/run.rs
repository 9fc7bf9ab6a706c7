//! `ascqr run` end to end on a small synthetic extract: the run folder's files, the CMS layouts,
//! suppression, reproducibility, and a failed stage that leaves no report behind.

use ascqr::claims::FileFormat;
use ascqr::pipeline::{run, RunConfig};
use ascqr::synth::{generate, Scale, SynthOptions};
use indicatif::ProgressBar;

mod common;
use common::files;

/// manifest.json without what legitimately varies between two runs (timings).
fn manifest_without_timings(bytes: &[u8]) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    for s in v["stages"].as_array_mut().unwrap() {
        s.as_object_mut().unwrap().remove("seconds");
    }
    v
}

#[test]
fn a_run_writes_cms_layouts_suppresses_small_counts_and_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("claims");
    generate(&claims, &SynthOptions::new(2, Scale::Small, "2022-2023", FileFormat::Parquet).unwrap(), &ProgressBar::hidden()).unwrap();
    let dict = ascqr::dictionary::Dictionary::embedded().unwrap();
    let config = RunConfig {
        measures: Some(vec!["asc18".into(), "asc19".into()]),
        bootstrap: Some(5),
        seed: Some(3),
        web_records: Some(claims.join("web/records.csv")),
        web_personnel: Some(claims.join("web/personnel.csv")),
        upload_date: Some("2025-04-01".into()),
        ..Default::default()
    };
    let a = dir.path().join("a");
    let result = run(&claims, &config, dict, vec!["ascqr".into(), "run".into()], &a).unwrap();
    assert_eq!(result.plan.through_year, 2023);
    // ASC-18 and ASC-19 have two-year periods ending with the last year of the extract.
    assert_eq!(result.plan.periods.values().next().unwrap(), &("2022-01-01".to_string(), "2023-12-31".to_string()));
    for f in [
        "facility_report.csv",
        "facility_report.parquet",
        "national.csv",
        "manifest.json",
        "asc18/PROTECTED_HEALTH_INFORMATION.txt",
        "asc18/cohort/attrition.csv",
        "asc18/features/analysis.parquet",
        "asc18/model/model.json",
        "asc18/model/coefficients.csv",
        "asc19/model/facilities.parquet",
        "web/ASC_WBM_PY2025_04_01_2025.csv",
        "report.html",
    ] {
        assert!(a.join(f).exists(), "{f} missing");
    }

    // The facility report: CMS's header, one row per NPI, no count between 1 and 10 anywhere.
    let mut reader = csv::Reader::from_path(a.join("facility_report.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    assert_eq!(header.iter().collect::<Vec<_>>(), ascqr::report::facility_header());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert!(rows.len() >= 10, "{} rows", rows.len());
    let mut shown_cases = 0;
    for r in &rows {
        for (h, v) in header.iter().zip(r.iter()) {
            if h.ends_with("Total Cases") || h.ends_with("Sample") {
                if let Ok(n) = v.parse::<u64>() {
                    assert!(n == 0 || n > 10, "{h} = {n}");
                    shown_cases += 1;
                }
            }
            assert!(!v.contains("NaN"), "{h} = {v}");
        }
    }
    assert!(shown_cases > 0);

    // Diagnosis codes outside the crosswalk: listed with suppressed counts, summarised in the
    // manifest.
    let unmapped = std::fs::read_to_string(a.join("unmapped_codes.csv")).unwrap();
    let counts: Vec<&str> = unmapped.lines().skip(1).map(|l| l.rsplit(',').next().unwrap()).collect();
    assert!(!counts.is_empty() && counts.iter().all(|c| *c == "<11" || c.parse::<u64>().unwrap() > 10), "{unmapped}");
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(a.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["unmapped_diagnosis_codes"]["distinct_codes"].as_u64().unwrap() as usize, counts.len());
    // Program eligibility of the through year: the same ASCs and counts as `ascqr eligibility`,
    // small counts suppressed.
    let eligibility = std::fs::read_to_string(a.join("eligibility.csv")).unwrap();
    let direct = ascqr::eligibility::claim_counts(&a.join("extract"), 2023).unwrap();
    assert_eq!(eligibility.lines().count(), direct.height() + 1, "{eligibility}");
    let direct_counts = direct.column("claims").unwrap().i64().unwrap().clone();
    for (line, n) in eligibility.lines().skip(1).zip(direct_counts.into_no_null_iter()) {
        let shown = line.split(',').nth(1).unwrap();
        assert_eq!(shown, ascqr::report::count_cell(n as u64), "{line}");
    }
    // Facilities under the minimum case count are published as too small, with footnote 1.
    let small = rows.iter().filter(|r| &r[header.iter().position(|h| h == "ASC-18 Performance Category").unwrap()] == "Number of Cases Too Small").count();
    assert!(small > 0);
    let national = std::fs::read_to_string(a.join("national.csv")).unwrap();
    assert_eq!(national.lines().next().unwrap().split(',').collect::<Vec<_>>(), ascqr::report::national_header());

    // The report: self-contained (no external resource), a section per measure and facility.
    let html = std::fs::read_to_string(a.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    // (The SVG namespace URI is a name, not something fetched.)
    let without_namespace = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!without_namespace.contains("http://") && !without_namespace.contains("https://") && !html.contains("<script"), "the report must work offline");
    for anchor in ["id=\"national\"", "id=\"asc18\"", "id=\"asc19\"", "id=\"web\"", "id=\"facilities\""] {
        assert!(html.contains(anchor), "{anchor}");
    }
    assert_eq!(html.matches("<article id=\"f").count(), rows.len(), "one facility section per report row");

    // The manifest: inputs hashed, dictionary provenance, method, seeds, stages.
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(a.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["inputs"].as_array().unwrap().iter().all(|i| i["sha256"].as_str().unwrap().len() == 64));
    assert_eq!(manifest["estimation"]["method"], "rspl");
    assert_eq!(manifest["estimation"]["seed"], 3);
    assert!(manifest["dictionary"]["asc18"].is_object());
    let stages: Vec<&str> = manifest["stages"].as_array().unwrap().iter().map(|s| s["stage"].as_str().unwrap()).collect();
    // A raw folder is ingested into the run folder first; the manifest says so.
    assert_eq!(manifest["claims_layout"], "canonical");
    assert_eq!(manifest["claims_rows_rejected"], 0);
    assert!(a.join("extract/ingest.json").is_file());
    // Then every shard's part (cohorts and analysis rows of every measure), then the merge.
    assert_eq!(stages, ["ingest", "shards", "asc18 cohort", "asc18 features", "asc18 model", "asc19 cohort", "asc19 features", "asc19 model", "web-based measures", "unmapped codes", "eligibility", "facility report"]);

    // The national model is saved beside the fit, and checks itself against its data.
    let saved = ascqr::saved_model::SavedModel::load(&a.join("asc18/model")).unwrap();
    assert_eq!(saved.measure, ascqr::dictionary::MeasureId::Asc18);
    saved.check_dictionary(dict).unwrap();
    let names: Vec<String> = saved.coefficient_names.iter().skip(1).cloned().collect();
    let spec = ascqr::hglm::DataSpec::analysis_file(names);
    let data = ascqr::hglm::AnalysisData::read(&a.join("asc18/features/analysis.parquet"), &spec).unwrap();
    let ll = saved.reevaluate(&data).unwrap();
    assert!((ll - saved.loglik_at_estimates).abs() <= 1e-9 * ll.abs(), "{ll} vs {}", saved.loglik_at_estimates);
    let mut edited = saved.clone();
    edited.coefficients[0] += 0.5;
    assert!((edited.reevaluate(&data).unwrap() - saved.loglik_at_estimates).abs() > 1.0, "an edited model no longer matches its data");
    let mut other = saved.clone();
    other.definition_version = "official-2027.1".into();
    let err = other.check_dictionary(dict).unwrap_err().to_string();
    assert!(err.contains("official-2027.1") && err.contains("ascqr-2026.1"), "{err}");

    // Same inputs and seed: byte-identical outputs (the manifest up to its timings).
    let b = dir.path().join("b");
    run(&claims, &config, dict, vec!["ascqr".into(), "run".into()], &b).unwrap();
    let (fa, fb) = (files(&a), files(&b));
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (name, bytes) in &fa {
        if name == "manifest.json" {
            assert_eq!(manifest_without_timings(bytes), manifest_without_timings(&fb[name]));
        } else {
            if bytes != &fb[name] && name.ends_with(".json") {
                let (x, y) = (String::from_utf8_lossy(bytes), String::from_utf8_lossy(&fb[name]));
                let first = x.lines().zip(y.lines()).find(|(p, q)| p != q);
                panic!("{name} differs between two runs with the same seed: {first:?}");
            }
            assert!(bytes == &fb[name], "{name} differs between two runs with the same seed");
        }
    }
}

#[test]
fn a_failed_stage_leaves_no_report_and_a_rerun_after_the_fix_works() {
    let dir = tempfile::tempdir().unwrap();
    let claims = dir.path().join("claims");
    generate(&claims, &SynthOptions::new(4, Scale::Small, "2023", FileFormat::Parquet).unwrap(), &ProgressBar::hidden()).unwrap();
    let dict = ascqr::dictionary::Dictionary::embedded().unwrap();
    let out = dir.path().join("run");
    let mut config = RunConfig {
        measures: Some(vec!["asc18".into()]),
        bootstrap: Some(0),
        web_records: Some(dir.path().join("no_such_records.csv")),
        upload_date: Some("2025-04-01".into()),
        ..Default::default()
    };
    let err = run(&claims, &config, dict, vec![], &out).err().expect("a missing records file fails the run").to_string();
    assert!(err.contains("no_such_records.csv"), "{err}");
    assert!(!out.join("facility_report.csv").exists() && !out.join("manifest.json").exists());
    // No temporary file is left behind anywhere in the run folder.
    assert!(files(&out).keys().all(|name| !name.contains(".tmp")), "{:?}", files(&out).keys().collect::<Vec<_>>());

    config.web_records = Some(claims.join("web/records.csv"));
    run(&claims, &config, dict, vec![], &out).unwrap();
    assert!(out.join("facility_report.csv").exists() && out.join("manifest.json").exists());

    // Unknown settings and measures are refused with their name.
    config.measures = Some(vec!["asc99".into()]);
    assert!(run(&claims, &config, dict, vec![], &out).err().unwrap().to_string().contains("asc99"));
    let toml_path = dir.path().join("run.toml");
    std::fs::write(&toml_path, "measures = [\"asc12\"]\nbootstrapp = 3\n").unwrap();
    assert!(RunConfig::from_toml_file(&toml_path).err().unwrap().to_string().contains("bootstrapp"));
    std::fs::write(&toml_path, "measures = [\"asc12\"]\nbootstrap = 3\n[period_years]\nasc12 = 1\n").unwrap();
    let c = RunConfig::from_toml_file(&toml_path).unwrap().overridden_by(RunConfig { bootstrap: Some(9), ..Default::default() });
    assert_eq!((c.measures, c.bootstrap, c.period_years.get("asc12").copied()), (Some(vec!["asc12".to_string()]), Some(9), Some(1)));
}
