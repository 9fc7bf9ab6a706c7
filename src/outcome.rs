//! The outcome: unplanned hospital visits within 7 days of the procedure (methodology §3).
//!
//! Stages, each a pure `LazyFrame -> LazyFrame` function named after the rule it implements:
//! * [`ed_and_observation_visits`] — outpatient claims at acute care hospitals with an ED
//!   revenue center (0450–0459, 0981) or an observation stay (revenue center 0762, HCPCS G0378);
//!   never planned (manual: "ED visits and observation stays are never planned");
//! * [`inpatient_admissions`] — admissions at acute care hospitals, each put through the planned
//!   admission algorithm v4.0 ([`planned_admission_algorithm`]): (1) any always-planned
//!   procedure, (2) an always-planned principal diagnosis, (3) a potentially planned procedure
//!   with a non-acute principal diagnosis → planned; (4) otherwise unplanned;
//! * [`first_unplanned_visit_within_window`] — per index procedure, the first unplanned visit on
//!   days 0 to 7 after it.
//!
//! Acute care hospital: CCN positions 3–6 in 0001–0879 (short-term) or 1300–1399 (critical
//! access). The code tables come from the embedded dictionary (`data-dictionary/outcomes/`).

use crate::dictionary::Dictionary;
use crate::error::{PolarsContext, Result};
use polars::prelude::*;

/// Days after the procedure that count: day 0 (the procedure day) through day 7.
pub const WINDOW_FIRST_DAY: i32 = 0;

/// The code tables of the outcome as small frames for joins.
#[derive(Clone)]
pub struct OutcomeTables {
    dx_ccs: DataFrame,
    pcs_ccs: DataFrame,
    always_planned_procedure_ccs: DataFrame,
    always_planned_diagnosis_ccs: DataFrame,
    potentially_planned_procedure_ccs: DataFrame,
    potentially_planned_pcs: DataFrame,
    acute_diagnosis_ccs: DataFrame,
    acute_diagnosis: DataFrame,
}

/// A dictionary code map (`code`, `ccs`) under the names a join needs.
fn map_frame(codes: &DataFrame, key: &str, value: &str) -> Result<DataFrame> {
    let mut df = codes.clone();
    df.rename("code", key.into()).and_then(|df| df.rename("ccs", value.into())).ctx(|| "building a code table".into())?;
    Ok(df)
}

fn flag_frame<'a>(key: &str, flag: &str, codes: impl IntoIterator<Item = &'a String>) -> Result<DataFrame> {
    let mut k: Vec<String> = codes.into_iter().cloned().collect();
    k.sort();
    k.dedup();
    let n = k.len();
    DataFrame::new(n, vec![Column::new(key.into(), k), Column::new(flag.into(), vec![true; n])]).ctx(|| "building a code table".into())
}

impl OutcomeTables {
    pub fn from_dictionary(d: &Dictionary) -> Result<Self> {
        let p = &d.planned;
        let (dx, pcs) = p.ccs_frames()?;
        Ok(OutcomeTables {
            dx_ccs: map_frame(dx, "principal_dx", "dx_ccs")?,
            pcs_ccs: map_frame(pcs, "procedure", "proc_ccs")?,
            always_planned_procedure_ccs: flag_frame("proc_ccs", "always_planned_procedure", &p.always_planned_procedure_ccs)?,
            always_planned_diagnosis_ccs: flag_frame("dx_ccs", "always_planned_diagnosis", &p.always_planned_diagnosis_ccs)?,
            potentially_planned_procedure_ccs: flag_frame("proc_ccs", "potential_by_ccs", &p.potentially_planned_procedure_ccs)?,
            potentially_planned_pcs: flag_frame("procedure", "potential_by_code", &p.potentially_planned_icd10pcs)?,
            acute_diagnosis_ccs: flag_frame("dx_ccs", "acute_by_ccs", &p.acute_diagnosis_ccs)?,
            acute_diagnosis: flag_frame("principal_dx", "acute_by_code", &p.acute_diagnosis_icd10cm)?,
        })
    }
}

/// True when a CCN (column `ccn`) belongs to an acute care hospital: positions 3–6 in 0001–0879
/// or 1300–1399.
pub fn is_acute_care_ccn(ccn: Expr) -> Expr {
    let serial = ccn.str().slice(lit(2), lit(4)).cast(DataType::Int32);
    (serial.clone().gt_eq(lit(1)).and(serial.clone().lt_eq(lit(879)))).or(serial.clone().gt_eq(lit(1300)).and(serial.lt_eq(lit(1399))))
}

fn left(lf: LazyFrame, other: &DataFrame, key: &str) -> LazyFrame {
    lf.join(other.clone().lazy(), [col(key)], [col(key)], JoinArgs::new(JoinType::Left))
}

/// ED visits and observation stays: one row per outpatient claim at an acute care hospital with a
/// qualifying line — `bene_id, claim_id, visit_date, visit_type, planned, paa_rule`.
pub fn ed_and_observation_visits(outpatient: LazyFrame) -> LazyFrame {
    let rev = col("revenue_center");
    let is_ed = rev.clone().str().starts_with(lit("045")).or(rev.clone().eq(lit("0981")));
    let is_obs = rev.eq(lit("0762")).or(col("hcpcs").eq(lit("G0378")).fill_null(lit(false)));
    // Both tests are filters on the table's own columns, so the Parquet reader applies them as it
    // reads and only ED and observation lines are loaded.
    outpatient
        .filter(is_ed.clone().or(is_obs.clone()).and(is_acute_care_ccn(col("provider_ccn")).fill_null(lit(false))))
        .with_columns([is_ed.alias("is_ed"), is_obs.alias("is_obs")])
        .with_column(col("revenue_center_date").fill_null(col("claim_from_date")).alias("line_date"))
        .group_by([col("bene_id"), col("claim_id")])
        .agg([
            col("line_date").min().alias("visit_date"),
            col("is_obs").cast(DataType::Int32).max().alias("any_obs"),
        ])
        .with_columns([
            when(col("any_obs").eq(lit(1))).then(lit("observation")).otherwise(lit("ed")).alias("visit_type"),
            lit(false).alias("planned"),
            lit("never_planned_outpatient").alias("paa_rule"),
        ])
        .select([col("bene_id"), col("claim_id"), col("visit_date"), col("visit_type"), col("planned"), col("paa_rule")])
}

/// The planned admission algorithm v4.0 on inpatient stays (one row per claim): adds
/// `planned` and `paa_rule` (`always_planned_procedure`, `always_planned_diagnosis`,
/// `potentially_planned_procedure_nonacute_diagnosis`, `unplanned`).
pub fn planned_admission_algorithm(inpatient: LazyFrame, tables: &OutcomeTables) -> LazyFrame {
    // Procedures in long form, one row per (claim, procedure code).
    let procs: Vec<LazyFrame> = (1..=25)
        .map(|k| {
            inpatient
                .clone()
                .select([col("claim_id"), col(format!("proc_{k}")).alias("procedure")])
                .filter(col("procedure").is_not_null())
        })
        .collect();
    let long = concat(procs, UnionArgs::default()).unwrap_or_else(|_| inpatient.clone().select([col("claim_id")]).limit(0));
    let long = left(long, &tables.pcs_ccs, "procedure");
    let long = left(long, &tables.always_planned_procedure_ccs, "proc_ccs");
    let long = left(long, &tables.potentially_planned_procedure_ccs, "proc_ccs");
    let long = left(long, &tables.potentially_planned_pcs, "procedure");
    let per_claim = long
        .with_columns([
            col("always_planned_procedure").fill_null(lit(false)).cast(DataType::Int32).alias("always_proc"),
            col("potential_by_ccs")
                .fill_null(lit(false))
                .or(col("potential_by_code").fill_null(lit(false)))
                .cast(DataType::Int32)
                .alias("potential_proc"),
        ])
        .group_by([col("claim_id")])
        .agg([col("always_proc").max(), col("potential_proc").max()]);

    let stays = left(inpatient, &tables.dx_ccs, "principal_dx");
    let stays = left(stays, &tables.always_planned_diagnosis_ccs, "dx_ccs");
    let stays = left(stays, &tables.acute_diagnosis_ccs, "dx_ccs");
    let stays = left(stays, &tables.acute_diagnosis, "principal_dx");
    stays
        .join(per_claim, [col("claim_id")], [col("claim_id")], JoinArgs::new(JoinType::Left))
        .with_columns([
            col("always_proc").fill_null(lit(0)).eq(lit(1)).alias("rule_1"),
            col("always_planned_diagnosis").fill_null(lit(false)).alias("rule_2"),
            col("potential_proc")
                .fill_null(lit(0))
                .eq(lit(1))
                .and(col("acute_by_ccs").fill_null(lit(false)).or(col("acute_by_code").fill_null(lit(false))).not())
                .alias("rule_3"),
        ])
        .with_columns([
            when(col("rule_1"))
                .then(lit("always_planned_procedure"))
                .when(col("rule_2"))
                .then(lit("always_planned_diagnosis"))
                .when(col("rule_3"))
                .then(lit("potentially_planned_procedure_nonacute_diagnosis"))
                .otherwise(lit("unplanned"))
                .alias("paa_rule"),
            col("rule_1").or(col("rule_2")).or(col("rule_3")).alias("planned"),
        ])
}

/// Inpatient admissions at acute care hospitals with their planned-admission decision:
/// `bene_id, claim_id, visit_date, visit_type, planned, paa_rule`.
pub fn inpatient_admissions(inpatient: LazyFrame, tables: &OutcomeTables) -> LazyFrame {
    let acute = inpatient.filter(is_acute_care_ccn(col("provider_ccn")).fill_null(lit(false)));
    planned_admission_algorithm(acute, tables).select([
        col("bene_id"),
        col("claim_id"),
        col("admission_date").alias("visit_date"),
        lit("inpatient").alias("visit_type"),
        col("planned"),
        col("paa_rule"),
    ])
}

/// All hospital visits of the extract (ED, observation, inpatient).
pub fn hospital_visits(outpatient: LazyFrame, inpatient: LazyFrame, tables: &OutcomeTables) -> LazyFrame {
    concat([ed_and_observation_visits(outpatient), inpatient_admissions(inpatient, tables)], UnionArgs::default())
        .expect("two frames with the same columns")
}

/// For each index procedure (`procedure_id, bene_id, procedure_date`), the first unplanned visit
/// on days 0..=`last_day` (the measure's `outcome_last_day` rule, 7): adds `unplanned_visit`,
/// `visit_type`, `visit_date`, `visit_day`, `visit_claim_id` and `visit_paa_rule` (`unplanned` for
/// an admission, `never_planned_outpatient` for an ED visit or observation stay). Ties on the same
/// day prefer an inpatient admission, then observation, then ED. The planned-admission decision
/// for the admissions the algorithm set aside is kept too: `planned_admission_rule` (the step that
/// made it planned), `planned_admission_day` and `planned_admission_claim_id` for the first planned
/// admission in the window, null when there was none (methodology §3).
pub fn first_unplanned_visit_within_window(index: LazyFrame, visits: LazyFrame, last_day: u32) -> LazyFrame {
    let rank = when(col("visit_type").eq(lit("inpatient"))).then(lit(0)).when(col("visit_type").eq(lit("observation"))).then(lit(1)).otherwise(lit(2));
    let in_window = index
        .clone()
        .select([col("procedure_id"), col("bene_id"), col("procedure_date")])
        .join(visits, [col("bene_id")], [col("bene_id")], JoinArgs::new(JoinType::Inner))
        .with_column((col("visit_date").cast(DataType::Int32) - col("procedure_date").cast(DataType::Int32)).alias("visit_day"))
        .filter(col("visit_day").gt_eq(lit(WINDOW_FIRST_DAY)).and(col("visit_day").lt_eq(lit(last_day as i32))));
    let hits = in_window
        .clone()
        .filter(col("planned").not())
        .with_column(rank.alias("type_rank"))
        .sort(["procedure_id", "visit_day", "type_rank", "claim_id"], SortMultipleOptions::default())
        .group_by_stable([col("procedure_id")])
        .agg([
            col("visit_type").first(),
            col("visit_date").first(),
            col("visit_day").first(),
            col("claim_id").first().alias("visit_claim_id"),
            col("paa_rule").first().alias("visit_paa_rule"),
        ])
        .with_column(lit(true).alias("unplanned_visit"));
    let planned = in_window
        .filter(col("planned"))
        .sort(["procedure_id", "visit_day", "claim_id"], SortMultipleOptions::default())
        .group_by_stable([col("procedure_id")])
        .agg([
            col("paa_rule").first().alias("planned_admission_rule"),
            col("visit_day").first().alias("planned_admission_day"),
            col("claim_id").first().alias("planned_admission_claim_id"),
        ]);
    index
        .join(hits, [col("procedure_id")], [col("procedure_id")], JoinArgs::new(JoinType::Left))
        .with_column(col("unplanned_visit").fill_null(lit(false)))
        .join(planned, [col("procedure_id")], [col("procedure_id")], JoinArgs::new(JoinType::Left))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> OutcomeTables {
        OutcomeTables::from_dictionary(Dictionary::embedded().unwrap()).unwrap()
    }

    fn inpatient(rows: &[(&str, &str, Option<&str>)]) -> LazyFrame {
        let n = rows.len();
        let mut cols = vec![
            Column::new("claim_id".into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
            Column::new("principal_dx".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>()),
            Column::new("proc_1".into(), rows.iter().map(|r| r.2).collect::<Vec<_>>()),
        ];
        for k in 2..=25 {
            cols.push(Column::new(format!("proc_{k}").into(), vec![None::<&str>; n]));
        }
        DataFrame::new(n, cols).unwrap().lazy()
    }

    fn rules(lf: LazyFrame) -> Vec<(String, String, bool)> {
        let df = lf.sort(["claim_id"], Default::default()).collect().unwrap();
        let ids = df.column("claim_id").unwrap().str().unwrap().clone();
        let rule = df.column("paa_rule").unwrap().str().unwrap().clone();
        let planned = df.column("planned").unwrap().bool().unwrap().clone();
        (0..df.height())
            .map(|i| (ids.get(i).unwrap().to_string(), rule.get(i).unwrap().to_string(), planned.get(i).unwrap()))
            .collect()
    }

    #[test]
    fn planned_admission_algorithm_applies_its_four_steps_in_order_with_real_codes() {
        let out = rules(planned_admission_algorithm(
            inpatient(&[
                // 1: kidney transplant (PCS 0TY00Z0, CCS 105) even with an acute diagnosis (sepsis).
                ("a", "A419", Some("0TY00Z0")),
                // 2: maintenance chemotherapy as principal diagnosis (Z5111, CCS 45).
                ("b", "Z5111", None),
                // 3: a potentially planned procedure with a non-acute principal diagnosis
                //    (knee osteoarthritis M1711; total knee replacement 0SRC0J9).
                ("c", "M1711", Some("0SRC0J9")),
                // 4: the same procedure with an acute principal diagnosis (sepsis) is unplanned.
                ("d", "A419", Some("0SRC0J9")),
                // 4: an acute diagnosis and no procedure.
                ("e", "I214", None),
            ]),
            &tables(),
        ));
        assert_eq!(
            out,
            vec![
                ("a".into(), "always_planned_procedure".into(), true),
                ("b".into(), "always_planned_diagnosis".into(), true),
                ("c".into(), "potentially_planned_procedure_nonacute_diagnosis".into(), true),
                ("d".into(), "unplanned".into(), false),
                ("e".into(), "unplanned".into(), false),
            ]
        );
    }

    /// The planned admission is recorded with its rule but is not the outcome; a later unplanned
    /// ED visit is; a visit on day 8 is outside the window.
    #[test]
    fn a_planned_admission_is_recorded_with_its_rule_and_not_counted() {
        let index = DataFrame::new(
            3,
            vec![
                Column::new("procedure_id".into(), ["p1", "p2", "p3"]),
                Column::new("bene_id".into(), ["b1", "b2", "b3"]),
                Column::new("procedure_date".into(), [19000i32, 19000, 19000]).cast(&DataType::Date).unwrap(),
            ],
        )
        .unwrap()
        .lazy();
        let visits = DataFrame::new(
            4,
            vec![
                Column::new("bene_id".into(), ["b1", "b1", "b2", "b3"]),
                Column::new("claim_id".into(), ["i1", "o1", "i2", "o3"]),
                Column::new("visit_date".into(), [19002i32, 19005, 19001, 19008]).cast(&DataType::Date).unwrap(),
                Column::new("visit_type".into(), ["inpatient", "ed", "inpatient", "ed"]),
                Column::new("planned".into(), [true, false, false, false]),
                Column::new("paa_rule".into(), ["always_planned_procedure", "never_planned_outpatient", "unplanned", "never_planned_outpatient"]),
            ],
        )
        .unwrap()
        .lazy();
        let df = first_unplanned_visit_within_window(index, visits, 7).sort(["procedure_id"], Default::default()).collect().unwrap();
        let text = |c: &str| -> Vec<Option<String>> { df.column(c).unwrap().str().unwrap().iter().map(|v| v.map(str::to_string)).collect() };
        let some = |v: &[Option<&str>]| -> Vec<Option<String>> { v.iter().map(|x| x.map(str::to_string)).collect() };
        let visit: Vec<Option<bool>> = df.column("unplanned_visit").unwrap().bool().unwrap().iter().collect();
        assert_eq!(visit, vec![Some(true), Some(true), Some(false)]);
        assert_eq!(text("visit_claim_id"), some(&[Some("o1"), Some("i2"), None]));
        assert_eq!(text("visit_paa_rule"), some(&[Some("never_planned_outpatient"), Some("unplanned"), None]));
        assert_eq!(text("planned_admission_rule"), some(&[Some("always_planned_procedure"), None, None]));
        assert_eq!(text("planned_admission_claim_id"), some(&[Some("i1"), None, None]));
        let day: Vec<Option<i32>> = df.column("planned_admission_day").unwrap().i32().unwrap().iter().collect();
        assert_eq!(day, vec![Some(2), None, None]);
    }

    #[test]
    fn acute_care_hospitals_by_ccn() {
        let df = DataFrame::new(5, vec![Column::new("ccn".into(), ["220171", "221300", "223025", "220880", "22A001"])]).unwrap();
        let out = df.lazy().select([is_acute_care_ccn(col("ccn")).fill_null(lit(false)).alias("acute")]).collect().unwrap();
        let v: Vec<Option<bool>> = out.column("acute").unwrap().bool().unwrap().iter().collect();
        assert_eq!(v, vec![Some(true), Some(true), Some(false), Some(false), Some(false)]);
    }
}
