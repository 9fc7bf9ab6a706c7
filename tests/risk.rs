//! Risk variables against the generator's truth: every variable of every in-cohort procedure.

use ascqr::claims::FileFormat;
use ascqr::dictionary::{Dictionary, MeasureId};
use ascqr::synth::{generate, Scale, SynthOptions};
use indicatif::ProgressBar;
use polars::prelude::*;

#[test]
fn every_risk_variable_agrees_with_the_synthetic_truth() {
    let dir = tempfile::tempdir().unwrap();
    let options = SynthOptions::new(3, Scale::Small, "2021-2023", FileFormat::Parquet).unwrap();
    generate(dir.path(), &options, &ProgressBar::hidden()).unwrap();
    let truth = ParquetReader::new(std::fs::File::open(dir.path().join("truth/procedures.parquet")).unwrap()).finish().unwrap();
    let dict = Dictionary::embedded().unwrap();
    for m in MeasureId::ALL {
        let cohort = ascqr::cohort::build(dir.path(), m, None, dict).unwrap();
        let analysis = ascqr::risk::analysis_frame(dir.path(), m, &cohort.cohort, dict).unwrap();
        assert_eq!(analysis.height(), cohort.cohort.height());
        let names = dict.measure(m).variable_names();
        let mut truth_cols: Vec<Expr> = vec![col("procedure_id"), col("unplanned_visit").cast(DataType::Int32).alias("true_outcome")];
        truth_cols.extend(names.iter().map(|n| col(n.as_str()).alias(format!("true_{n}"))));
        let joined = analysis
            .clone()
            .lazy()
            .join(
                truth.clone().lazy().filter(col("measure").eq(lit(m.as_str()))).select(truth_cols),
                [col("procedure_id")],
                [col("procedure_id")],
                JoinArgs::new(JoinType::Inner),
            )
            .collect()
            .unwrap();
        assert_eq!(joined.height(), analysis.height(), "{m}: every analysis row is a truth procedure");
        let ids = joined.column("procedure_id").unwrap().str().unwrap().clone();
        let mut nonzero = 0;
        for n in names.iter().map(String::as_str).chain(["outcome"]) {
            let (ours, theirs) = if n == "outcome" {
                (joined.column("outcome").unwrap().cast(&DataType::Float64).unwrap(), joined.column("true_outcome").unwrap().cast(&DataType::Float64).unwrap())
            } else {
                (joined.column(n).unwrap().clone(), joined.column(&format!("true_{n}")).unwrap().clone())
            };
            let a = ours.f64().unwrap();
            let b = theirs.f64().unwrap();
            for i in 0..joined.height() {
                let (x, y) = (a.get(i).unwrap(), b.get(i).unwrap());
                assert!((x - y).abs() < 1e-9, "{m}: {n} of {:?}: ours {x}, truth {y}", ids.get(i));
                if n != "outcome" && x != 0.0 {
                    nonzero += 1;
                }
            }
        }
        assert!(nonzero > 0, "{m}: every variable is zero");
    }
}

#[test]
fn codes_that_map_to_no_category_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let options = SynthOptions::new(6, Scale::Small, "2022", FileFormat::Parquet).unwrap();
    generate(dir.path(), &options, &ProgressBar::hidden()).unwrap();
    let dict = Dictionary::embedded().unwrap();
    let unmapped = ascqr::risk::unmapped_codes(dir.path(), dict).unwrap();
    let codes: Vec<String> = unmapped.column("dx").unwrap().str().unwrap().iter().flatten().map(str::to_string).collect();
    // The colonoscopy screening indication maps to no category; no crosswalk code is reported.
    assert!(codes.contains(&"Z1211".to_string()));
    let mapped: std::collections::HashSet<&str> = dict.dx_to_cc.iter().map(|r| r.icd10cm.as_str()).collect();
    assert!(codes.iter().all(|c| !mapped.contains(c.as_str())));
    let fields = unmapped.column("fields").unwrap().i64().unwrap();
    assert!(fields.iter().flatten().all(|n| n > 0));
    assert!(fields.get(0).unwrap() >= fields.get(fields.len() - 1).unwrap(), "most frequent first");
}
