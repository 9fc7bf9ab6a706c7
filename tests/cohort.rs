//! Cohorts against the generator's truth: membership, the excluding rule and the outcome agree
//! for every procedure of every measure; the attrition table loses nothing between rows.

mod common;

use ascqr::claims::FileFormat;
use ascqr::cohort::build;
use ascqr::dictionary::{Dictionary, MeasureId};
use ascqr::synth::{generate, Scale, SynthOptions};
use indicatif::ProgressBar;
use polars::prelude::*;
use std::collections::BTreeMap;

fn strings(df: &DataFrame, c: &str) -> Vec<Option<String>> {
    df.column(c).unwrap().str().unwrap().iter().map(|v| v.map(str::to_string)).collect()
}

#[test]
fn cohorts_and_outcomes_agree_with_the_synthetic_truth() {
    let dir = tempfile::tempdir().unwrap();
    let options = SynthOptions::new(2, Scale::Small, "2021-2023", FileFormat::Parquet).unwrap();
    generate(dir.path(), &options, &ProgressBar::hidden()).unwrap();
    let ex = common::extract(dir.path());
    let truth = ParquetReader::new(std::fs::File::open(dir.path().join("truth/procedures.parquet")).unwrap()).finish().unwrap();
    let dict = Dictionary::embedded().unwrap();
    // The same claims in one shard: the shards' cohorts merged are the cohort of them all.
    let one_shard = dir.path().join("_one_shard");
    let options = ascqr::claims::IngestOptions { layout: ascqr::claims::Layout::Canonical, shards: Some(1) };
    ascqr::claims::ingest(dir.path(), &options, &one_shard, &ProgressBar::hidden()).unwrap();
    for m in MeasureId::ALL {
        let result = build(&ex, m, None, dict).unwrap();
        let whole = build(&one_shard, m, None, dict).unwrap();
        assert!(whole.cohort.equals_missing(&result.cohort), "{m}: the cohort from 3 shards differs from 1");
        assert!(whole.excluded.equals_missing(&result.excluded), "{m}: the exclusions from 3 shards differ from 1");
        assert_eq!(whole.attrition, result.attrition, "{m}: the attrition from 3 shards differs from 1");
        // What `ascqr cohort` writes reads back as built.
        let out = dir.path().join(format!("out_{m}"));
        ascqr::cohort::write(&out, &result).unwrap();
        for (file, expected) in [("cohort.parquet", &result.cohort), ("excluded.parquet", &result.excluded)] {
            let df = ascqr::output::read_parquet(&out.join(file)).unwrap();
            assert!(df.equals_missing(expected), "{m}: {file} differs from the cohort built");
        }
        let unplanned = result.cohort.column("unplanned_visit").unwrap().bool().unwrap().sum().unwrap() as u64;
        assert_eq!(ascqr::cohort::unplanned_visits(&result.cohort).unwrap(), unplanned);
        let t = truth.clone().lazy().filter(col("measure").eq(lit(m.as_str()))).collect().unwrap();
        let ids = strings(&t, "procedure_id");
        let reasons = strings(&t, "exclusion_reason");
        let visits: Vec<Option<bool>> = t.column("unplanned_visit").unwrap().bool().unwrap().iter().collect();

        let in_cohort: BTreeMap<String, bool> = strings(&result.cohort, "procedure_id")
            .into_iter()
            .zip(result.cohort.column("unplanned_visit").unwrap().bool().unwrap().iter())
            .map(|(id, v)| (id.unwrap(), v.unwrap()))
            .collect();
        let excluded: BTreeMap<String, String> = strings(&result.excluded, "procedure_id")
            .into_iter()
            .zip(strings(&result.excluded, "exclusion_reason"))
            .map(|(a, b)| (a.unwrap(), b.unwrap()))
            .filter(|(_, r)| r != "not_asc_facility_claim")
            .collect();
        assert_eq!(in_cohort.len() + excluded.len(), ids.len(), "{m}: every truth procedure is found once");
        let mut events = 0;
        for ((id, reason), visit) in ids.iter().zip(&reasons).zip(&visits) {
            let id = id.as_ref().unwrap();
            match reason {
                None => {
                    let found = in_cohort.get(id).unwrap_or_else(|| panic!("{m}: {id} should be in the cohort, found {:?}", excluded.get(id)));
                    assert_eq!(Some(*found), *visit, "{m}: outcome of {id}");
                    events += *found as usize;
                }
                Some(r) => assert_eq!(excluded.get(id), Some(r), "{m}: exclusion of {id}"),
            }
        }
        assert!(events > 0, "{m}: no events");
        // Attrition: the first row is the input, each row starts where the last ended.
        let a = &result.attrition;
        assert_eq!(a[0].procedures_in, a[0].procedures_out);
        for w in a.windows(2) {
            assert_eq!(w[1].procedures_in, w[0].procedures_out, "{m}: {} → {}", w[0].step, w[1].step);
            assert_eq!(w[1].procedures_in - w[1].excluded, w[1].procedures_out);
        }
        assert_eq!(a.last().unwrap().procedures_out as usize, result.cohort.height());
        // Professional (surgeon) claims at place of service 24 are counted out, not lost.
        let not_asc = a.iter().find(|s| s.step == "not_asc_facility_claim").unwrap();
        assert_eq!(not_asc.excluded as usize, ids.len(), "{m}: one professional claim per procedure");
    }
}

#[test]
fn eligibility_counts_each_asc_facility_claim_of_the_year() {
    let dir = tempfile::tempdir().unwrap();
    let options = SynthOptions::new(4, Scale::Small, "2021-2022", FileFormat::Parquet).unwrap();
    generate(dir.path(), &options, &ProgressBar::hidden()).unwrap();
    let ex = common::extract(dir.path());
    let counts = ascqr::eligibility::claim_counts(&ex, 2022).unwrap();
    // The truth has one ASC facility claim per procedure.
    let expected = LazyFrame::scan_parquet(
        PlRefPath::new(dir.path().join("truth/procedures.parquet").to_string_lossy().as_ref()),
        ScanArgsParquet::default(),
    )
    .unwrap()
    .filter(col("procedure_date").dt().year().eq(lit(2022)))
    .group_by([col("facility_id")])
    .agg([len().cast(DataType::Int64).alias("expected")])
    .collect()
    .unwrap();
    assert_eq!(counts.height(), expected.height());
    let joined = counts
        .lazy()
        .join(expected.lazy(), [col("facility_npi")], [col("facility_id")], JoinArgs::new(JoinType::Inner))
        .filter(col("claims").neq(col("expected")))
        .collect()
        .unwrap();
    assert_eq!(joined.height(), 0, "{joined}");
}

#[test]
fn a_ccn_crosswalk_and_a_users_definition_version_are_used_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let options = SynthOptions::new(3, Scale::Small, "2021-2022", FileFormat::Parquet).unwrap();
    generate(dir.path(), &options, &ProgressBar::hidden()).unwrap();
    let ex = common::extract(dir.path());
    // A user's ASC-18 definition that raises the minimum age to 70; its other files are ours.
    let version = dir.path().join("dict/measures/asc18/cms-test");
    std::fs::create_dir_all(&version).unwrap();
    let rules = include_str!("../data-dictionary/measures/asc18/ascqr-2026.1/rules.csv").replace("min_age_years,65,", "min_age_years,70,");
    std::fs::write(version.join("rules.csv"), rules).unwrap();
    let dict = Dictionary::load(Some(&dir.path().join("dict"))).unwrap();
    let mut result = build(&ex, MeasureId::Asc18, None, &dict).unwrap();
    let ours = build(&ex, MeasureId::Asc18, None, Dictionary::embedded().unwrap()).unwrap();
    let step = |r: &ascqr::cohort::CohortResult, name: &str| r.attrition.iter().find(|s| s.step == name).map(|s| s.excluded);
    assert!(step(&result, "age_under_70").unwrap() > step(&ours, "age_under_65").unwrap());
    assert_eq!(result.definition["definition_version"], "cms-test");
    assert_eq!(result.definition["files_from_user_dictionary"][0], "measures/asc18/cms-test/rules.csv");

    // The crosswalk maps one facility; the others are counted as without a CCN.
    let npis = strings(&result.cohort, "facility_npi");
    let first = npis[0].clone().unwrap();
    let crosswalk = dir.path().join("ccn.csv");
    std::fs::write(&crosswalk, format!("npi,ccn\n{first},05C0001831\n")).unwrap();
    let crosswalk = ascqr::cohort::CcnCrosswalk::read(&crosswalk).unwrap();
    ascqr::cohort::attach_facility_ccn(&mut result, &crosswalk).unwrap();
    let ccns = strings(&result.cohort, "facility_ccn");
    for (npi, ccn) in npis.iter().zip(&ccns) {
        assert_eq!(ccn.as_deref(), (npi.as_deref() == Some(first.as_str())).then_some("05C0001831"));
    }
    let facilities: std::collections::BTreeSet<_> = npis.iter().collect();
    assert_eq!(result.definition["ccn_crosswalk"]["cohort_facilities_without_ccn"], facilities.len() as u64 - 1);
}

/// The stages read claims through code-list filters that polars must push into the Parquet
/// reader (so only matching rows are loaded; national ASC-12 went from 9.8 GB to about 4 GB).
/// A cast or a join between the scan and the filter would silently load whole tables again.
#[test]
fn code_list_filters_reach_the_parquet_reader() {
    let dir = tempfile::tempdir().unwrap();
    let options = SynthOptions::new(3, Scale::Small, "2023", FileFormat::Parquet).unwrap();
    generate(dir.path(), &options, &ProgressBar::hidden()).unwrap();
    let ex = common::extract(dir.path());
    let carrier = ascqr::claims::scan_table(&ex, ascqr::claims::Table::Carrier).unwrap();
    let codes = Column::new("hcpcs".into(), ["45378", "G0121"]);
    let plan = carrier.filter(ascqr::cohort::is_one_of(col("hcpcs"), &codes)).explain(true).unwrap();
    let scan = plan.lines().position(|l| l.contains("Parquet SCAN")).expect("a Parquet scan in the plan");
    assert!(plan.lines().skip(scan).any(|l| l.trim_start().starts_with("SELECTION:") && l.contains("is_in")), "filter not pushed into the scan:\n{plan}");
    assert!(!plan.contains("FILTER"), "a FILTER node above the scan:\n{plan}");
}
