//! The outcome stages against the generator's truth: given the index procedures, the unplanned
//! visit found in the claims agrees with the truth for every procedure of every measure.

mod common;

use ascqr::claims::{scan_table, FileFormat, Table};
use ascqr::dictionary::Dictionary;
use ascqr::outcome::{first_unplanned_visit_within_window, hospital_visits, OutcomeTables};
use ascqr::synth::{generate, Scale, SynthOptions};
use indicatif::ProgressBar;
use polars::prelude::*;

#[test]
fn unplanned_visits_agree_with_the_synthetic_truth_for_every_procedure() {
    let dir = tempfile::tempdir().unwrap();
    let options = SynthOptions::new(11, Scale::Small, "2021-2023", FileFormat::Parquet).unwrap();
    generate(dir.path(), &options, &ProgressBar::hidden()).unwrap();
    let ex = common::extract(dir.path());
    let truth = LazyFrame::scan_parquet(
        PlRefPath::new(dir.path().join("truth/procedures.parquet").to_string_lossy().as_ref()),
        ScanArgsParquet::default(),
    )
    .unwrap()
    // A later procedure within a patient's index window is never an index: it has no outcome.
    .filter(col("unplanned_visit").is_not_null());
    let index = truth.clone().select([col("procedure_id"), col("bene_id"), col("procedure_date")]);
    let tables = OutcomeTables::from_dictionary(Dictionary::embedded().unwrap()).unwrap();
    let visits = hospital_visits(
        scan_table(&ex, Table::Outpatient).unwrap(),
        scan_table(&ex, Table::Inpatient).unwrap(),
        &tables,
    );
    let outcome = first_unplanned_visit_within_window(index, visits, 7).collect().unwrap();
    // The generator plants planned admissions in the window: each is recorded with the step of the
    // planned admission algorithm that fired, and none is the outcome.
    let planned = outcome.clone().lazy().filter(col("planned_admission_rule").is_not_null()).collect().unwrap();
    assert!(planned.height() > 10, "{} procedures with a planned admission in the window", planned.height());
    let fired: std::collections::BTreeSet<String> =
        planned.column("planned_admission_rule").unwrap().str().unwrap().iter().map(|v| v.unwrap().to_string()).collect();
    let steps = ["always_planned_diagnosis", "always_planned_procedure", "potentially_planned_procedure_nonacute_diagnosis"];
    assert!(fired.iter().all(|r| steps.contains(&r.as_str())), "{fired:?}");
    let days = planned.column("planned_admission_day").unwrap().i32().unwrap();
    assert!(days.iter().all(|d| (0..=7).contains(&d.unwrap())));
    let found = outcome
        .lazy()
        .select([
            col("procedure_id"),
            col("unplanned_visit").alias("found_visit"),
            col("visit_type").alias("found_type"),
            col("visit_day").alias("found_day"),
        ]);
    let compared = truth
        .select([col("procedure_id"), col("unplanned_visit"), col("visit_type"), col("visit_day").cast(DataType::Int32)])
        .join(found, [col("procedure_id")], [col("procedure_id")], JoinArgs::new(JoinType::Inner))
        .collect()
        .unwrap();
    let n = compared.height();
    assert!(n > 3000, "{n} procedures");
    let truth_flag = compared.column("unplanned_visit").unwrap().bool().unwrap().clone();
    let found_flag = compared.column("found_visit").unwrap().bool().unwrap().clone();
    let ids = compared.column("procedure_id").unwrap().str().unwrap().clone();
    let mut events = 0;
    for i in 0..n {
        assert_eq!(truth_flag.get(i), found_flag.get(i), "procedure {:?}", ids.get(i));
        if truth_flag.get(i) == Some(true) {
            events += 1;
        }
    }
    assert!(events > 30, "only {events} events");
    // Where there is a visit, the type and day agree too.
    let with_visit = compared.lazy().filter(col("unplanned_visit")).collect().unwrap();
    let a = with_visit.column("visit_type").unwrap().str().unwrap().clone();
    let b = with_visit.column("found_type").unwrap().str().unwrap().clone();
    let da = with_visit.column("visit_day").unwrap().i32().unwrap().clone();
    let db = with_visit.column("found_day").unwrap().i32().unwrap().clone();
    for i in 0..with_visit.height() {
        assert_eq!(a.get(i), b.get(i));
        assert_eq!(da.get(i), db.get(i));
    }
}
