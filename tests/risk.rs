//! Risk variables against the generator's truth: every variable of every in-cohort procedure.

mod common;

use ascqr::claims::FileFormat;
use ascqr::dictionary::{Dictionary, MeasureId};
use ascqr::synth::{generate, Background, BackgroundDiagnoses, Scale, SynthOptions};
use indicatif::ProgressBar;
use polars::prelude::*;

#[test]
fn every_risk_variable_agrees_with_the_synthetic_truth() {
    every_risk_variable_agrees_with_the_truth_of(SynthOptions::new(3, Scale::Small, "2021-2023", FileFormat::Parquet).unwrap());
}

/// At real claim density the history window must find the chronic conditions of the ordinary
/// care among thousands of unrelated claims, and nothing else.
#[test]
fn every_risk_variable_agrees_with_the_synthetic_truth_at_real_claim_density() {
    let options = SynthOptions::new(3, Scale::Small, "2021-2023", FileFormat::Parquet)
        .unwrap()
        .with_background(Background::REAL, BackgroundDiagnoses::Realistic);
    every_risk_variable_agrees_with_the_truth_of(options);
}

fn every_risk_variable_agrees_with_the_truth_of(options: SynthOptions) {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), &options, &ProgressBar::hidden()).unwrap();
    let ex = common::extract(dir.path());
    let truth = ParquetReader::new(std::fs::File::open(dir.path().join("truth/procedures.parquet")).unwrap()).finish().unwrap();
    let dict = Dictionary::embedded().unwrap();
    for m in MeasureId::ALL {
        let cohort = ascqr::cohort::build(&ex, m, None, dict).unwrap();
        let analysis = ascqr::risk::analysis_frame(&ex, m, &cohort.cohort, dict).unwrap();
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
    let ex = common::extract(dir.path());
    let dict = Dictionary::embedded().unwrap();
    let unmapped = ascqr::risk::unmapped_codes(&ex, dict).unwrap();
    let codes: Vec<String> = unmapped.column("dx").unwrap().str().unwrap().iter().flatten().map(str::to_string).collect();
    // The colonoscopy screening indication maps to no category; no crosswalk code is reported.
    assert!(codes.contains(&"Z1211".to_string()));
    let mapped: std::collections::HashSet<&str> = dict.dx_to_cc.iter().map(|r| r.icd10cm.as_str()).collect();
    assert!(codes.iter().all(|c| !mapped.contains(c.as_str())));
    let fields = unmapped.column("fields").unwrap().i64().unwrap();
    assert!(fields.iter().flatten().all(|n| n > 0));
    assert!(fields.get(0).unwrap() >= fields.get(fields.len() - 1).unwrap(), "most frequent first");
}

/// Writes one canonical CSV per table; each row is (column, value) pairs, other columns empty.
fn write_extract(dir: &std::path::Path, tables: &[(ascqr::claims::Table, Vec<Vec<(&str, &str)>>)]) {
    for t in ascqr::claims::Table::ALL {
        let names = t.spec().column_names();
        let mut w = csv::Writer::from_path(dir.join(format!("{}.csv", t.name()))).unwrap();
        w.write_record(&names).unwrap();
        for (_, rows) in tables.iter().filter(|(tt, _)| *tt == t) {
            for row in rows {
                let rec: Vec<&str> = names.iter().map(|n| row.iter().find(|(c, _)| c == n).map(|(_, v)| *v).unwrap_or("")).collect();
                w.write_record(&rec).unwrap();
            }
        }
        w.flush().unwrap();
    }
}

/// One carrier line at an ASC (place of service 24) with a principal and two other diagnoses
/// (empty: none).
fn carrier_line(
    claim: &'static str,
    bene: &'static str,
    date: &'static str,
    line: &'static str,
    hcpcs: &'static str,
    specialty: &'static str,
    dx: [&'static str; 3],
) -> Vec<(&'static str, &'static str)> {
    vec![
        ("claim_id", claim),
        ("line_num", line),
        ("bene_id", bene),
        ("claim_from_date", date),
        ("claim_thru_date", date),
        ("line_first_date", date),
        ("hcpcs", hcpcs),
        ("place_of_service", "24"),
        ("provider_specialty", specialty),
        ("billing_npi", "1234567890"),
        ("principal_dx", dx[0]),
        ("dx_1", dx[1]),
        ("dx_2", dx[2]),
        ("dx_version", "0"),
    ]
}

/// The edges the risk-variable rules exist for, on hand-made claims (ASC-12, procedures on
/// 2022-06-01, every patient 72): the index claim's principal diagnosis does not count; a
/// complication-of-care category counts from the history only; the history is days −365 … −1
/// (not −366, not a non-index claim on day 0, not after the procedure).
#[test]
fn risk_variable_edges_on_hand_made_claims() {
    use ascqr::claims::Table;
    let dir = tempfile::tempdir().unwrap();
    let carrier_line = |claim, bene, date, line, hcpcs, dx| carrier_line(claim, bene, date, line, hcpcs, "49", dx);
    let outpatient = |claim: &'static str, bene: &'static str, date: &'static str, dx: &'static str| {
        vec![
            ("claim_id", claim),
            ("line_num", "1"),
            ("bene_id", bene),
            ("provider_ccn", "050001"),
            ("claim_from_date", date),
            ("claim_thru_date", date),
            ("bill_type", "131"),
            ("revenue_center", "0510"),
            ("principal_dx", dx),
            ("dx_version", "0"),
        ]
    };
    write_extract(
        dir.path(),
        &[
            (
                Table::Carrier,
                vec![
                    // A: heart failure as the index claim's principal diagnosis, dehydration
                    // (a possible complication) as a secondary one; no history.
                    carrier_line("PA", "A", "2022-06-01", "1", "45378", ["I509", "E860", ""]),
                    // B: heart failure secondary on the index claim, arrhythmia (a possible
                    // complication) only there; polypectomy billed on the claim.
                    carrier_line("PB", "B", "2022-06-01", "1", "45378", ["Z1211", "I509", "I4891"]),
                    carrier_line("PB", "B", "2022-06-01", "2", "45385", ["Z1211", "I509", "I4891"]),
                    // C: heart failure on an office claim 366 days before.
                    carrier_line("PC", "C", "2022-06-01", "1", "45378", ["Z1211", "", ""]),
                    carrier_line("XC", "C", "2021-05-31", "1", "99213", ["I509", "", ""]),
                    // D: heart failure on a claim 3 days after.
                    carrier_line("PD", "D", "2022-06-01", "1", "45378", ["Z1211", "", ""]),
                    carrier_line("XD", "D", "2022-06-04", "1", "99213", ["I509", "", ""]),
                ],
            ),
            (
                Table::Outpatient,
                vec![
                    // B: dehydration exactly 365 days before: history.
                    outpatient("OB", "B", "2021-06-01", "E860"),
                    // C: heart failure on a hospital outpatient claim the day of the procedure
                    // (not the index claim, not before it).
                    outpatient("OC", "C", "2022-06-01", "I509"),
                ],
            ),
            (
                Table::Inpatient,
                vec![vec![
                    // C: arrhythmia as the principal diagnosis of a stay the day before.
                    ("claim_id", "IC"),
                    ("bene_id", "C"),
                    ("provider_ccn", "050001"),
                    ("admission_date", "2022-05-31"),
                    ("discharge_date", "2022-05-31"),
                    ("claim_from_date", "2022-05-31"),
                    ("claim_thru_date", "2022-05-31"),
                    ("principal_dx", "I4891"),
                    ("dx_version", "0"),
                ]],
            ),
        ],
    );
    let ex = common::extract(dir.path());
    let ids = ["PA", "PB", "PC", "PD"];
    let day = |s: &str| ascqr::claims::validate::parse_date(s).unwrap();
    let cohort = DataFrame::new(
        4,
        vec![
            Column::new("procedure_id".into(), ids),
            Column::new("bene_id".into(), ["A", "B", "C", "D"]),
            Column::new("facility_npi".into(), ["1234567890"; 4]),
            Column::new("procedure_date".into(), [day("2022-06-01"); 4]).cast(&DataType::Date).unwrap(),
            Column::new("birth_date".into(), [day("1950-01-01"); 4]).cast(&DataType::Date).unwrap(),
            Column::new("n_qualifying".into(), [1i64, 2, 1, 1]),
            Column::new("primary_hcpcs".into(), ["45378", "45385", "45378", "45378"]),
            Column::new("work_rvu".into(), [3.26, 4.57, 3.26, 3.26]),
            Column::new("unplanned_visit".into(), [false; 4]),
        ],
    )
    .unwrap();
    let dict = Dictionary::embedded().unwrap();
    let a = ascqr::risk::analysis_frame(&ex, MeasureId::Asc12, &cohort, dict).unwrap();
    let a = a.sort(["procedure_id"], Default::default()).unwrap();
    let get = |v: &str| -> Vec<f64> { a.column(v).unwrap().f64().unwrap().iter().map(|x| x.unwrap()).collect() };
    //                                              PA   PB   PC   PD
    assert_eq!(get("chf"), vec![0.0, 1.0, 0.0, 0.0], "chf: principal dx no, secondary yes, day -366 / day 0 / after no");
    assert_eq!(get("fluid_electrolyte"), vec![0.0, 1.0, 0.0, 0.0], "complication: index alone no, day -365 yes");
    assert_eq!(get("arrhythmia"), vec![0.0, 0.0, 1.0, 0.0], "complication: index alone no, inpatient day -1 yes");
    assert_eq!(get("age_70_74_x_arrhythmia"), vec![0.0, 0.0, 1.0, 0.0]);
    assert_eq!(get("age_70_74"), vec![1.0; 4]);
    assert_eq!(get("polypectomy"), vec![0.0, 1.0, 0.0, 0.0]);

    // Z1211 (screening) maps to no category and is reported with its number of fields: the
    // principal diagnosis of PB's two lines, of PC's and of PD's index lines.
    let unmapped = ascqr::risk::unmapped_codes(&ex, dict).unwrap();
    let codes: Vec<&str> = unmapped.column("dx").unwrap().str().unwrap().iter().flatten().collect();
    assert_eq!(codes, vec!["Z1211"]);
    assert_eq!(unmapped.column("fields").unwrap().i64().unwrap().get(0), Some(4));
}

/// The crosswalk has years: F01.51 (vascular dementia with behavioral disturbance) maps to
/// category 51 (dementia) for the diagnoses of 2019–2022 (payment years 2020–2023), and to no
/// category in 2018 (payment year 2019), though the code existed then.
#[test]
fn a_diagnosis_maps_to_a_category_by_the_year_of_its_claim() {
    use ascqr::claims::Table;
    let dict = Dictionary::embedded().unwrap();
    let rows: Vec<_> = dict.dx_to_cc.iter().filter(|r| r.icd10cm == "F0151").collect();
    assert_eq!(rows.iter().map(|r| (r.cc, r.year_first, r.year_last)).collect::<Vec<_>>(), vec![(51, Some(2019), Some(2022))]);
    assert!(!dict.codes_mapped_alike_every_year().contains("F0151"));
    assert!(dict.codes_mapped_alike_every_year().contains("I509"));

    let dir = tempfile::tempdir().unwrap();
    let line = |claim, bene, date, hcpcs, dx| carrier_line(claim, bene, date, "1", hcpcs, "20", [dx, "", ""]);
    write_extract(
        dir.path(),
        &[(
            Table::Carrier,
            vec![
                // A: the dementia code on an office claim of December 2018: no category then.
                line("PA", "A", "2019-03-01", "29881", "M2321"),
                line("XA", "A", "2018-12-01", "99213", "F0151"),
                // B: the same code on an office claim of January 2021: dementia.
                line("PB", "B", "2021-06-01", "29881", "M2321"),
                line("XB", "B", "2021-01-04", "99213", "F0151"),
            ],
        )],
    );
    let ex = common::extract(dir.path());
    let day = |s: &str| ascqr::claims::validate::parse_date(s).unwrap();
    let cohort = DataFrame::new(
        2,
        vec![
            Column::new("procedure_id".into(), ["PA", "PB"]),
            Column::new("bene_id".into(), ["A", "B"]),
            Column::new("facility_npi".into(), ["1234567890"; 2]),
            Column::new("procedure_date".into(), [day("2019-03-01"), day("2021-06-01")]).cast(&DataType::Date).unwrap(),
            Column::new("birth_date".into(), [day("1950-01-01"); 2]).cast(&DataType::Date).unwrap(),
            Column::new("n_qualifying".into(), [1i64, 1]),
            Column::new("primary_hcpcs".into(), ["29881", "29881"]),
            Column::new("work_rvu".into(), [7.03, 7.03]),
            Column::new("unplanned_visit".into(), [false; 2]),
        ],
    )
    .unwrap();
    let a = ascqr::risk::analysis_frame(&ex, MeasureId::Asc17, &cohort, dict).unwrap();
    let a = a.sort(["procedure_id"], Default::default()).unwrap();
    let dementia: Vec<f64> = a.column("dementia").unwrap().f64().unwrap().iter().map(|x| x.unwrap()).collect();
    assert_eq!(dementia, vec![0.0, 1.0], "F0151 counts in 2021, not in 2018");
}
