//! Risk variables and the analysis file (methodology §4).
//!
//! Sources of diagnoses for a procedure: the index claim without its principal diagnosis, and
//! every diagnosis (principal and secondary) of carrier, outpatient and inpatient claims dated in
//! the 365 days before the procedure (days −365 … −1). Diagnoses map to condition categories
//! through `data-dictionary/condition-categories/icd10cm_to_cc.csv`; a variable is the OR of its
//! categories (or ICD-10-CM codes). A variable marked as a possible complication of care counts
//! only from the history, never from the index claim alone. Procedure variables come from the
//! index claim's lines; age is `floor((procedure − birth)/365.25)`; work RVU is the highest among
//! the index claim's qualifying codes (the PFS 2025 release, else 2023).

use crate::claims::{scan_table, Table};
use crate::cohort::diagnoses_long;
use crate::dictionary::{Dictionary, MeasureId, VariableKind};
use crate::error::{AscqrError, PolarsContext, Result};
use polars::prelude::*;
use std::path::Path;

/// The history ends the day before the procedure; how far back it reaches is the measure's
/// `history_days` rule.
pub const HISTORY_LAST_DAY: i32 = -1;

fn strings(name: &str, v: Vec<String>) -> Column {
    Column::new(name.into(), v)
}

/// Builds the analysis frame for a cohort (`procedure_id, bene_id, facility_npi,
/// procedure_date, birth_date, n_qualifying, primary_hcpcs, work_rvu, unplanned_visit`):
/// `procedure_id, facility_id, outcome`, then one Float64 column per risk variable.
pub fn analysis_frame(claims_dir: &Path, measure: MeasureId, cohort: &DataFrame, dict: &Dictionary) -> Result<DataFrame> {
    let def = dict.measure(measure);
    let ctx = || format!("building {measure} risk variables");
    let procs = cohort.clone().lazy().select([col("procedure_id"), col("bene_id"), col("procedure_date")]);

    // Diagnoses by source, for the procedures of the cohort.
    let carrier = scan_table(claims_dir, Table::Carrier)?;
    // Only codes that can set a variable matter: the crosswalk's codes and the variables' own.
    let mut relevant: Vec<String> = dict.dx_to_cc.iter().map(|r| r.icd10cm.clone()).collect();
    for v in &def.risk_variables {
        if let VariableKind::Diagnoses(codes) = &v.kind {
            relevant.extend(codes.iter().cloned());
        }
    }
    relevant.sort();
    relevant.dedup();
    let relevant = DataFrame::new(relevant.len(), vec![strings("dx", relevant)]).ctx(ctx)?;
    let dx = diagnoses_long(carrier.clone(), scan_table(claims_dir, Table::Outpatient)?, scan_table(claims_dir, Table::Inpatient)?, &relevant)?;
    let index_principal = procs
        .clone()
        .select([col("procedure_id")])
        .join(carrier.clone().select([col("claim_id"), col("principal_dx").alias("index_principal_dx")]), [col("procedure_id")], [col("claim_id")], JoinArgs::new(JoinType::Inner))
        .unique(Some(cols(["procedure_id"])), UniqueKeepStrategy::First)
        .rename(["procedure_id"], ["claim_id"], true);
    let offset = col("claim_date").cast(DataType::Int32) - col("procedure_date").cast(DataType::Int32);
    let sourced = procs
        .clone()
        .join(dx, [col("bene_id")], [col("bene_id")], JoinArgs::new(JoinType::Inner))
        .join(index_principal, [col("procedure_id")], [col("claim_id")], JoinArgs::new(JoinType::Left))
        .with_columns([
            col("claim_id").eq(col("procedure_id")).alias("is_index"),
            offset.clone().gt_eq(lit(-(def.rules.history_days as i32))).and(offset.lt_eq(lit(HISTORY_LAST_DAY))).alias("is_history"),
        ])
        .filter(
            col("is_history").or(col("is_index").and(col("dx").neq(col("index_principal_dx")).fill_null(lit(true)))),
        )
        // The claim's year picks the crosswalk's rows for that year.
        .select([col("procedure_id"), col("dx"), col("is_history"), col("claim_date").dt().year().alias("dx_year")])
        .unique(None, UniqueKeepStrategy::Any);

    // Membership tables: which dx / CC switches on which variable.
    let mut cc_var: (Vec<i64>, Vec<String>, Vec<bool>) = (vec![], vec![], vec![]);
    let mut dx_var: (Vec<String>, Vec<String>, Vec<bool>) = (vec![], vec![], vec![]);
    let mut hcpcs_var: (Vec<String>, Vec<String>) = (vec![], vec![]);
    for v in &def.risk_variables {
        match &v.kind {
            VariableKind::ConditionCategories(ccs) => {
                for c in ccs {
                    cc_var.0.push(*c as i64);
                    cc_var.1.push(v.variable.clone());
                    cc_var.2.push(v.complication_of_care);
                }
            }
            VariableKind::Diagnoses(codes) => {
                for c in codes {
                    dx_var.0.push(c.clone());
                    dx_var.1.push(v.variable.clone());
                    dx_var.2.push(v.complication_of_care);
                }
            }
            VariableKind::ProcedureCodes(codes) => {
                for c in codes {
                    hcpcs_var.0.push(c.clone());
                    hcpcs_var.1.push(v.variable.clone());
                }
            }
            _ => {}
        }
    }
    let n = cc_var.0.len();
    let cc_members = DataFrame::new(n, vec![Column::new("cc".into(), cc_var.0), strings("variable", cc_var.1), Column::new("complication".into(), cc_var.2)]).ctx(ctx)?;
    let n = dx_var.0.len();
    let dx_members = DataFrame::new(n, vec![strings("dx", dx_var.0), strings("variable", dx_var.1), Column::new("complication".into(), dx_var.2)]).ctx(ctx)?;
    let n = hcpcs_var.0.len();
    let hcpcs_members = DataFrame::new(n, vec![strings("hcpcs", hcpcs_var.0), strings("variable", hcpcs_var.1)]).ctx(ctx)?;
    let rows = &dict.dx_to_cc;
    let crosswalk = DataFrame::new(
        rows.len(),
        vec![
            strings("dx", rows.iter().map(|r| r.icd10cm.clone()).collect()),
            Column::new("cc".into(), rows.iter().map(|r| r.cc as i64).collect::<Vec<_>>()),
            Column::new("year_first".into(), rows.iter().map(|r| r.year_first).collect::<Vec<_>>()),
            Column::new("year_last".into(), rows.iter().map(|r| r.year_last).collect::<Vec<_>>()),
        ],
    )
    .ctx(ctx)?;
    let in_years = col("year_first").is_null().or(col("dx_year").gt_eq(col("year_first"))).and(col("year_last").is_null().or(col("dx_year").lt_eq(col("year_last"))));

    let counts_rule = col("is_history").or(col("complication").not());
    let by_cc = sourced
        .clone()
        .join(crosswalk.lazy(), [col("dx")], [col("dx")], JoinArgs::new(JoinType::Inner))
        .filter(in_years)
        .join(cc_members.lazy(), [col("cc")], [col("cc")], JoinArgs::new(JoinType::Inner))
        .filter(counts_rule.clone())
        .select([col("procedure_id"), col("variable")]);
    let by_dx = sourced
        .join(dx_members.lazy(), [col("dx")], [col("dx")], JoinArgs::new(JoinType::Inner))
        .filter(counts_rule)
        .select([col("procedure_id"), col("variable")]);
    let by_hcpcs = procs
        .clone()
        .select([col("procedure_id")])
        .join(carrier.select([col("claim_id"), col("hcpcs")]), [col("procedure_id")], [col("claim_id")], JoinArgs::new(JoinType::Inner))
        .join(hcpcs_members.lazy(), [col("hcpcs")], [col("hcpcs")], JoinArgs::new(JoinType::Inner))
        .select([col("procedure_id"), col("variable")]);
    let flags = concat([by_cc, by_dx, by_hcpcs], UnionArgs::default())
        .ctx(ctx)?
        .unique(None, UniqueKeepStrategy::Any)
        .collect()
        .ctx(ctx)?;

    // Procedure type of the primary (highest work RVU) code.
    let (type_codes, types): (Vec<String>, Vec<String>) = def
        .cohort_codes
        .iter()
        .filter(|c| c.is_cohort())
        .map(|c| (c.hcpcs.clone(), c.procedure_type.clone().unwrap_or_default()))
        .unzip();
    let type_table = DataFrame::new(type_codes.len(), vec![strings("primary_hcpcs", type_codes), strings("procedure_type", types)]).ctx(ctx)?;

    // floor(d / 365.25) = floor(4d / 1461) for whole days d; for d ≥ 0 the float quotient is
    // never within rounding distance of the next integer (gaps are ≥ 1/1461), so truncation
    // is the floor. Negative ages (birth after the procedure) do not occur after the age stage.
    let age = (((col("procedure_date").cast(DataType::Int64) - col("birth_date").cast(DataType::Int64)) * lit(4)).cast(DataType::Float64)
        / lit(1461.0))
    .cast(DataType::Int64);
    let mut frame = cohort
        .clone()
        .lazy()
        .join(type_table.lazy(), [col("primary_hcpcs")], [col("primary_hcpcs")], JoinArgs::new(JoinType::Left))
        .with_column(age.alias("age"));
    let mut exprs: Vec<Expr> = vec![
        col("procedure_id"),
        col("facility_npi").alias("facility_id"),
        col("unplanned_visit").cast(DataType::Int32).alias("outcome"),
    ];
    // One 0/1 column per flag variable, by joining its procedure ids.
    for v in &def.risk_variables {
        if matches!(v.kind, VariableKind::ConditionCategories(_) | VariableKind::Diagnoses(_) | VariableKind::ProcedureCodes(_)) {
            let ids = flags
                .clone()
                .lazy()
                .filter(col("variable").eq(lit(v.variable.as_str())))
                .select([col("procedure_id"), lit(1.0).alias(v.variable.as_str())]);
            frame = frame.join(ids, [col("procedure_id")], [col("procedure_id")], JoinArgs::new(JoinType::Left));
        }
    }
    for v in &def.risk_variables {
        let name = v.variable.as_str();
        let e = match &v.kind {
            VariableKind::AgeGroup { low, high } => {
                let lo = col("age").gt_eq(lit(*low as i64));
                let cond = match high {
                    Some(h) => lo.and(col("age").lt_eq(lit(*h as i64))),
                    None => lo,
                };
                cond.cast(DataType::Float64)
            }
            VariableKind::AgeYearsOver65 => (col("age") - lit(65)).cast(DataType::Float64),
            VariableKind::ConditionCategories(_) | VariableKind::Diagnoses(_) | VariableKind::ProcedureCodes(_) => {
                col(name).fill_null(lit(0.0))
            }
            VariableKind::ProcedureType(t) => col("procedure_type").eq(lit(t.as_str())).fill_null(lit(false)).cast(DataType::Float64),
            VariableKind::ProcedureCount { n, or_more } => {
                let k = col("n_qualifying");
                if *or_more { k.gt_eq(lit(*n as i64)) } else { k.eq(lit(*n as i64)) }.cast(DataType::Float64)
            }
            VariableKind::WorkRvu => col("work_rvu").fill_null(lit(0.0)),
            VariableKind::Interaction(..) => continue,
        };
        frame = frame.with_column(e.alias(name));
    }
    for v in &def.risk_variables {
        if let VariableKind::Interaction(a, b) = &v.kind {
            frame = frame.with_column((col(a.as_str()) * col(b.as_str())).alias(v.variable.as_str()));
        }
    }
    exprs.extend(def.risk_variables.iter().map(|v| col(v.variable.as_str())));
    frame.select(exprs).sort(["procedure_id"], SortMultipleOptions::default()).collect().ctx(ctx)
}

/// Writes `analysis.parquet`, its collapsed form `analysis_collapsed.parquet` (facility ×
/// covariate pattern with `cases` and `events`) and `variables.json`.
pub fn write_analysis(out: &Path, measure: MeasureId, analysis: &DataFrame, dict: &Dictionary) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|e| AscqrError::io(out, e))?;
    let def = dict.measure(measure);
    let names: Vec<String> = def.variable_names();
    let mut keys = vec![col("facility_id")];
    keys.extend(names.iter().map(|n| col(n.as_str())));
    let collapsed = analysis
        .clone()
        .lazy()
        .group_by(keys)
        .agg([len().cast(DataType::Int64).alias("cases"), col("outcome").cast(DataType::Int64).sum().alias("events")])
        .sort(["facility_id"], SortMultipleOptions::default())
        .collect()
        .ctx(|| "collapsing the analysis file".into())?;
    let collapsed = {
        // A stable order: sort by facility then every variable.
        let mut by: Vec<String> = vec!["facility_id".into()];
        by.extend(names.iter().cloned());
        collapsed.lazy().sort(by, SortMultipleOptions::default()).collect().ctx(|| "sorting".into())?
    };
    for (name, df) in [("analysis.parquet", analysis), ("analysis_collapsed.parquet", &collapsed)] {
        let target = crate::output::TempPath::new(&out.join(name))?;
        let mut df = df.clone();
        ParquetWriter::new(target.create_file()?).finish(&mut df).ctx(|| format!("writing {name}"))?;
        target.commit()?;
    }
    let vars: Vec<serde_json::Value> = def
        .risk_variables
        .iter()
        .map(|v| {
            serde_json::json!({
                "name": v.variable,
                "label": v.label,
                "kind": format!("{:?}", v.kind),
                "complication_of_care": v.complication_of_care,
                "provenance": v.provenance,
            })
        })
        .collect();
    let json = serde_json::json!({
        "measure": measure.as_str(),
        "dictionary_version": crate::dictionary::DICTIONARY_VERSION,
        "definition": def.provenance_summary(),
        "outcome": format!("outcome: 1 when an unplanned hospital visit followed within {} days", def.rules.outcome_last_day),
        "group": "facility_id",
        "collapsed": {"file": "analysis_collapsed.parquet", "cases": "cases", "events": "events"},
        "variables": vars,
    });
    let mut bytes = serde_json::to_vec_pretty(&json).map_err(|e| AscqrError::Other(e.to_string()))?;
    bytes.push(b'\n');
    crate::output::write_atomic(&out.join("variables.json"), &bytes)
}

/// Distinct ICD-10-CM codes in the extract's diagnosis columns that map to no condition category
/// of the crosswalk, with how many diagnosis fields carry each (most frequent first). Each column
/// is counted by code before stacking, so memory follows the number of distinct codes.
pub fn unmapped_codes(claims_dir: &Path, dict: &Dictionary) -> Result<DataFrame> {
    let mut parts = Vec::new();
    let mut add = |lf: &LazyFrame, columns: Vec<String>| {
        for c in columns {
            parts.push(
                lf.clone()
                    .select([col(c.as_str()).alias("dx")])
                    .filter(col("dx").is_not_null())
                    .group_by([col("dx")])
                    .agg([len().cast(DataType::Int64).alias("fields")]),
            );
        }
    };
    for table in [Table::Carrier, Table::Outpatient, Table::Inpatient] {
        add(&scan_table(claims_dir, table)?, table.spec().diagnosis_columns());
    }
    let mut mapped: Vec<String> = dict.dx_to_cc.iter().map(|r| r.icd10cm.clone()).collect();
    mapped.sort();
    mapped.dedup();
    let n = mapped.len();
    let mapped = DataFrame::new(n, vec![strings("dx", mapped), Column::new("mapped".into(), vec![true; n])]).ctx(|| "crosswalk".into())?;
    concat(parts, UnionArgs::default())
        .ctx(|| "stacking diagnoses".into())?
        .group_by([col("dx")])
        .agg([col("fields").sum()])
        .join(mapped.lazy(), [col("dx")], [col("dx")], JoinArgs::new(JoinType::Left))
        .filter(col("mapped").is_null())
        .select([col("dx"), col("fields")])
        .sort(["fields", "dx"], SortMultipleOptions::default().with_order_descending_multi([true, false]))
        .collect()
        .ctx(|| "finding unmapped codes".into())
}

/// What [`write_unmapped_codes`] found: how many distinct codes map to no category, and the
/// commonest ten with their counts as written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UnmappedSummary {
    pub distinct_codes: usize,
    pub most_frequent: Vec<(String, String)>,
}

/// Writes `path` (`icd10cm,diagnosis_fields`, most frequent first) from [`unmapped_codes`]. With
/// `suppress`, counts between 1 and 10 are written `<11` (for a shareable run folder).
pub fn write_unmapped_codes(claims_dir: &Path, dict: &Dictionary, path: &Path, suppress: bool) -> Result<UnmappedSummary> {
    write_unmapped_table(&unmapped_codes(claims_dir, dict)?, path, suppress)
}

/// The [`unmapped_codes`] of disjoint parts of an extract (its shards) as those of the whole:
/// counts added up by code, most frequent first.
pub fn merge_unmapped(parts: Vec<DataFrame>) -> Result<DataFrame> {
    let parts: Vec<LazyFrame> = parts.into_iter().map(|d| d.lazy()).collect();
    concat(parts, UnionArgs::default())
        .and_then(|lf| {
            lf.group_by([col("dx")])
                .agg([col("fields").sum()])
                .sort(["fields", "dx"], SortMultipleOptions::default().with_order_descending_multi([true, false]))
                .collect()
        })
        .ctx(|| "adding up the shards' unmapped codes".into())
}

/// Writes an [`unmapped_codes`] table to `path` (see [`write_unmapped_codes`]).
pub fn write_unmapped_table(unmapped: &DataFrame, path: &Path, suppress: bool) -> Result<UnmappedSummary> {
    let ctx = || "unmapped codes".to_string();
    let codes = unmapped.column("dx").and_then(|c| c.str().cloned()).ctx(ctx)?;
    let fields = unmapped.column("fields").and_then(|c| c.i64().cloned()).ctx(ctx)?;
    let shown = |n: i64| if suppress { crate::report::count_cell(n.max(0) as u64) } else { n.to_string() };
    let mut text = String::from("icd10cm,diagnosis_fields\n");
    let mut most_frequent = Vec::new();
    for i in 0..unmapped.height() {
        let (code, n) = (codes.get(i).unwrap_or(""), shown(fields.get(i).unwrap_or(0)));
        text.push_str(&format!("{code},{n}\n"));
        if i < 10 {
            most_frequent.push((code.to_string(), n));
        }
    }
    crate::output::write_atomic(path, text.as_bytes())?;
    Ok(UnmappedSummary { distinct_codes: unmapped.height(), most_frequent })
}
