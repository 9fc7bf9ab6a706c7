//! Streaming the synthetic world to disk: chunks of procedures are generated in parallel, then
//! written in a fixed order through the canonical table sinks, so memory stays bounded at any
//! scale and the output does not depend on thread timing.

use super::plan::{CarrierClaim, InpatientClaim, OutpatientClaim, Procedure, SynthOptions, World};
use crate::claims::schema::{Column as ColumnSpec, ColumnType, Table};
use crate::claims::sink::{Cell, FileFormat, TableSink};
use crate::dictionary::{MeasureId, DICTIONARY_VERSION};
use crate::error::{AscqrError, Result};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Procedures per generated chunk; each chunk has its own random stream.
const CHUNK: u32 = 256;
/// Chunks generated in parallel before they are written.
const CHUNKS_IN_FLIGHT: usize = 64;
/// Rows buffered per table before a Parquet row group is written.
const BATCH_ROWS: usize = 200_000;

#[derive(Debug, Clone, Default, Serialize)]
pub struct MeasureCounts {
    pub facilities: usize,
    pub procedures: u64,
    pub in_cohort: u64,
    pub unplanned_visits_in_cohort: u64,
}

/// What `ascqr synth` wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SynthSummary {
    pub rows: BTreeMap<String, u64>,
    pub measures: BTreeMap<String, MeasureCounts>,
    /// Chart-abstraction records for the web-based measures (`web/`).
    pub web: super::abstraction::AbstractionSummary,
}

impl SynthSummary {
    pub fn table(&self) -> String {
        let mut out = String::from("table           rows\n");
        for (t, n) in &self.rows {
            out.push_str(&format!("{t:<14} {n:>10}\n"));
        }
        out.push_str("\nmeasure   facilities  procedures   in cohort   unplanned visits (in cohort)\n");
        for (m, c) in &self.measures {
            let rate = if c.in_cohort > 0 { c.unplanned_visits_in_cohort as f64 / c.in_cohort as f64 } else { 0.0 };
            out.push_str(&format!(
                "{m:<8} {:>11} {:>11} {:>11} {:>10} ({:.2}%)\n",
                c.facilities,
                c.procedures,
                c.in_cohort,
                c.unplanned_visits_in_cohort,
                100.0 * rate
            ));
        }
        let w = &self.web;
        out.push_str(&format!(
            "\nweb-based measures: {} abstraction records ({} with a defect) and {} personnel rows for {} ASCs, reporting year {} (payment year {})\n",
            w.records, w.defective_records, w.personnel_rows, w.facilities, w.reporting_year, w.payment_year
        ));
        out
    }
}

/// Column positions, looked up once.
struct Positions(HashMap<String, usize>, usize);

impl Positions {
    fn of(columns: &[ColumnSpec]) -> Self {
        Positions(columns.iter().enumerate().map(|(i, c)| (c.name.clone(), i)).collect(), columns.len())
    }
    fn at(&self, name: &str) -> usize {
        // The names below are the schema's own; a miss is a bug caught by the synth tests.
        *self.0.get(name).unwrap_or_else(|| panic!("internal: no column {name}"))
    }
    fn row<'a>(&self) -> Vec<Cell<'a>> {
        vec![Cell::Null; self.1]
    }
}

struct Sinks {
    tables: BTreeMap<Table, (TableSink, Positions)>,
    truth: TableSink,
    truth_pos: Positions,
    variable_columns: Vec<String>,
}

fn truth_columns(world: &World) -> (Vec<ColumnSpec>, Vec<String>) {
    let spec = ColumnSpec::plain;
    let mut cols = vec![
        spec("procedure_id", ColumnType::Str),
        spec("measure", ColumnType::Str),
        spec("in_cohort", ColumnType::Bool),
        spec("exclusion_reason", ColumnType::Str),
        spec("unplanned_visit", ColumnType::Bool),
        spec("facility_id", ColumnType::Str),
        spec("bene_id", ColumnType::Str),
        spec("procedure_date", ColumnType::Date),
        spec("visit_type", ColumnType::Str),
        spec("visit_day", ColumnType::Int),
        spec("true_probability", ColumnType::Float),
    ];
    let mut vars: Vec<String> = Vec::new();
    for m in &world.measures {
        for v in &m.variables {
            if !vars.contains(&v.name) {
                vars.push(v.name.clone());
            }
        }
    }
    cols.extend(vars.iter().map(|v| spec(v, ColumnType::Float)));
    (cols, vars)
}

/// Generates the synthetic extract into `out` (tables, `truth/`, `manifest.json`).
pub fn generate(out: &Path, options: &SynthOptions, progress: &indicatif::ProgressBar) -> Result<SynthSummary> {
    let world = World::build(options)?;
    let truth_dir = out.join("truth");
    std::fs::create_dir_all(&truth_dir).map_err(|e| AscqrError::io(&truth_dir, e))?;
    let format = options.format;

    let mut tables = BTreeMap::new();
    for t in Table::ALL {
        let sink = TableSink::create(t, &out.join(format!("{}.{}", t.name(), format.extension())), format, BATCH_ROWS)?;
        let pos = Positions::of(sink.columns());
        tables.insert(t, (sink, pos));
    }
    let (truth_cols, variable_columns) = truth_columns(&world);
    let truth_pos = Positions::of(&truth_cols);
    let truth = TableSink::with_columns("procedures", truth_cols, &truth_dir.join("procedures.parquet"), FileFormat::Parquet, BATCH_ROWS)?;
    let mut sinks = Sinks { tables, truth, truth_pos, variable_columns };

    // Chunks in a fixed order: measure, facility, block.
    let mut chunks = Vec::new();
    for (mi, m) in world.measures.iter().enumerate() {
        for (f, fac) in m.facilities.iter().enumerate() {
            let mut start = 0;
            while start < fac.volume {
                chunks.push((mi, f, start, CHUNK.min(fac.volume - start)));
                start += CHUNK;
            }
        }
    }
    let total: u64 = world.measures.iter().flat_map(|m| m.facilities.iter()).map(|f| f.volume as u64).sum();
    progress.set_length(total);

    let mut summary = SynthSummary::default();
    let mut facility_rows: Vec<(MeasureId, String, f64, u64, u64, u64)> = Vec::new();
    let mut per_facility: BTreeMap<(usize, usize), (u64, u64, u64)> = BTreeMap::new();
    for batch in chunks.chunks(CHUNKS_IN_FLIGHT) {
        let generated: Vec<Vec<Procedure>> = batch
            .par_iter()
            .map(|&(mi, f, start, len)| {
                let mut rng = super::plan::stream(options.seed, "procedures", ((mi as u64) << 32) | f as u64, start as u64);
                (0..len)
                    .map(|j| {
                        let mut p = world.procedure(mi, f, (start + j) as u64, &mut rng);
                        world.add_outcome(mi, &mut p, &mut rng);
                        p
                    })
                    .collect()
            })
            .collect();
        for (procs, &(mi, f, _, len)) in generated.iter().zip(batch) {
            for p in procs {
                write_procedure(&world, &mut sinks, p)?;
                let counts = summary.measures.entry(p.measure.as_str().to_string()).or_default();
                counts.procedures += 1 + p.later_procedures.len() as u64;
                let fc = per_facility.entry((mi, f)).or_default();
                fc.0 += 1 + p.later_procedures.len() as u64;
                if p.exclusion_reason.is_none() {
                    counts.in_cohort += 1;
                    fc.1 += 1;
                    if p.visit.is_some() {
                        counts.unplanned_visits_in_cohort += 1;
                        fc.2 += 1;
                    }
                }
            }
            progress.inc(len as u64);
        }
    }
    for (mi, m) in world.measures.iter().enumerate() {
        summary.measures.entry(m.id.as_str().to_string()).or_default().facilities = m.facilities.len();
        for (f, fac) in m.facilities.iter().enumerate() {
            let (n, c, e) = per_facility.get(&(mi, f)).copied().unwrap_or_default();
            facility_rows.push((m.id, world.asc_npis[fac.asc].clone(), fac.intercept, n, c, e));
        }
    }

    let Sinks { tables, truth, .. } = sinks;
    for (t, (sink, _)) in tables {
        summary.rows.insert(t.name().to_string(), sink.finish()?);
    }
    truth.finish()?;
    write_facilities(&truth_dir.join("facilities.parquet"), &facility_rows)?;
    write_model(&truth_dir.join("model.json"), &world, &summary)?;
    summary.web = super::abstraction::write_abstraction(&world, out)?;
    let manifest = serde_json::json!({
        "generator": "ascqr synth",
        "ascqr_version": env!("CARGO_PKG_VERSION"),
        "dictionary_version": DICTIONARY_VERSION,
        "options": options,
        "rows": summary.rows,
        "measures": summary.measures,
        "web": {
            "summary": summary.web,
            "records": "web/records.csv",
            "personnel": "web/personnel.csv"
        },
        "truth": {
            "web_records": "truth/web_records.csv",
            "procedures": "truth/procedures.parquet",
            "facilities": "truth/facilities.parquet",
            "model": "truth/model.json"
        }
    });
    crate::output::write_atomic(&out.join("manifest.json"), &pretty(&manifest)?)?;
    Ok(summary)
}

fn pretty(v: &serde_json::Value) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(v).map_err(|e| AscqrError::Other(format!("internal: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn write_procedure(world: &World, sinks: &mut Sinks, p: &Procedure) -> Result<()> {
    // Beneficiary.
    {
        let (sink, pos) = sinks.tables.get_mut(&Table::Beneficiaries).expect("table");
        let mut row = pos.row();
        row[pos.at("bene_id")] = Cell::Str(&p.bene_id);
        row[pos.at("birth_date")] = Cell::Date(p.birth);
        row[pos.at("sex")] = Cell::Str(p.sex);
        if let Some(d) = p.death {
            row[pos.at("death_date")] = Cell::Date(d);
        }
        sink.push(&row)?;
    }
    // Enrollment, run-length encoded per year.
    {
        let (sink, pos) = sinks.tables.get_mut(&Table::Enrollment).expect("table");
        let e = &p.enrollment;
        let mut start = 0usize;
        while start < e.months.len() {
            let year_end = (start / 12 + 1) * 12;
            let mut end = start;
            while end + 1 < e.months.len().min(year_end) && e.months[end + 1] == e.months[start] {
                end += 1;
            }
            let (a, b, ma) = e.months[start];
            let mut row = pos.row();
            row[pos.at("bene_id")] = Cell::Str(&p.bene_id);
            row[pos.at("year")] = Cell::Int((e.first_year + (start / 12) as i32) as i64);
            row[pos.at("first_month")] = Cell::Int((start % 12 + 1) as i64);
            row[pos.at("last_month")] = Cell::Int((end % 12 + 1) as i64);
            row[pos.at("part_a")] = Cell::Bool(a);
            row[pos.at("part_b")] = Cell::Bool(b);
            row[pos.at("medicare_advantage")] = Cell::Bool(ma);
            sink.push(&row)?;
            start = end + 1;
        }
    }
    // Claims: the measure's own, then the ordinary care around them.
    let care = &p.ordinary_care;
    for claims in [&p.carrier, &care.carrier] {
        write_carrier(sinks, &p.bene_id, claims)?;
    }
    for claims in [&p.outpatient, &care.outpatient] {
        write_outpatient(sinks, &p.bene_id, claims)?;
    }
    for claims in [&p.inpatient, &care.inpatient] {
        write_inpatient(sinks, &p.bene_id, claims)?;
    }
    // Truth.
    let plan = &world.measures[MeasureId::ALL.iter().position(|m| *m == p.measure).expect("measure")];
    let pos = &sinks.truth_pos;
    let mut row = pos.row();
    row[pos.at("procedure_id")] = Cell::Str(p.procedure_id());
    row[pos.at("measure")] = Cell::Str(p.measure.as_str());
    row[pos.at("in_cohort")] = Cell::Bool(p.exclusion_reason.is_none());
    if let Some(r) = p.exclusion_reason {
        row[pos.at("exclusion_reason")] = Cell::Str(r);
    }
    row[pos.at("unplanned_visit")] = Cell::Bool(p.visit.is_some());
    row[pos.at("facility_id")] = Cell::Str(&p.carrier[p.index_claim].billing_npi);
    row[pos.at("bene_id")] = Cell::Str(&p.bene_id);
    row[pos.at("procedure_date")] = Cell::Date(p.day);
    if let Some((kind, day)) = p.visit {
        row[pos.at("visit_type")] = Cell::Str(kind.as_str());
        row[pos.at("visit_day")] = Cell::Int(day as i64);
    }
    row[pos.at("true_probability")] = Cell::Float(p.probability);
    for (v, x) in plan.variables.iter().zip(&p.variables) {
        debug_assert!(sinks.variable_columns.contains(&v.name));
        row[pos.at(&v.name)] = Cell::Float(*x);
    }
    sinks.truth.push(&row)?;
    // Later procedures of the patient within the index window: in the truth, never an index.
    for &i in &p.later_procedures {
        let claim = &p.carrier[i];
        let mut row = pos.row();
        row[pos.at("procedure_id")] = Cell::Str(&claim.claim_id);
        row[pos.at("measure")] = Cell::Str(p.measure.as_str());
        row[pos.at("in_cohort")] = Cell::Bool(false);
        row[pos.at("exclusion_reason")] = Cell::Str(super::plan::reasons::WITHIN_WINDOW_OF_AN_EARLIER_PROCEDURE);
        row[pos.at("facility_id")] = Cell::Str(&claim.billing_npi);
        row[pos.at("bene_id")] = Cell::Str(&p.bene_id);
        row[pos.at("procedure_date")] = Cell::Date(claim.from);
        sinks.truth.push(&row)?;
    }
    Ok(())
}

fn write_carrier(sinks: &mut Sinks, bene_id: &str, claims: &[CarrierClaim]) -> Result<()> {
    let modifier_names = ["modifier_1", "modifier_2", "modifier_3", "modifier_4"];
    let (sink, pos) = sinks.tables.get_mut(&Table::Carrier).expect("table");
    let dx_cols: Vec<usize> = (1..=12).map(|i| pos.at(&format!("dx_{i}"))).collect();
    for c in claims {
        for (ln, line) in c.lines.iter().enumerate() {
            let mut row = pos.row();
            row[pos.at("claim_id")] = Cell::Str(&c.claim_id);
            row[pos.at("line_num")] = Cell::Int(ln as i64 + 1);
            row[pos.at("bene_id")] = Cell::Str(bene_id);
            row[pos.at("claim_from_date")] = Cell::Date(c.from);
            row[pos.at("claim_thru_date")] = Cell::Date(c.thru);
            row[pos.at("line_first_date")] = Cell::Date(c.from);
            row[pos.at("line_last_date")] = Cell::Date(c.thru);
            row[pos.at("hcpcs")] = Cell::Str(&line.hcpcs);
            for (k, m) in line.modifiers.iter().take(4).enumerate() {
                row[pos.at(modifier_names[k])] = Cell::Str(m);
            }
            row[pos.at("place_of_service")] = Cell::Str(c.place_of_service);
            row[pos.at("billing_npi")] = Cell::Str(&c.billing_npi);
            row[pos.at("rendering_npi")] = Cell::Str(&c.rendering_npi);
            row[pos.at("provider_specialty")] = Cell::Str(c.specialty);
            row[pos.at("service_count")] = Cell::Float(line.units);
            row[pos.at("line_dx")] = Cell::Str(&c.principal_dx);
            row[pos.at("line_dx_version")] = Cell::Str("0");
            row[pos.at("principal_dx")] = Cell::Str(&c.principal_dx);
            row[dx_cols[0]] = Cell::Str(&c.principal_dx);
            for (k, d) in c.other_dx.iter().take(11).enumerate() {
                row[dx_cols[k + 1]] = Cell::Str(d);
            }
            row[pos.at("dx_version")] = Cell::Str("0");
            sink.push(&row)?;
        }
    }
    Ok(())
}

fn write_outpatient(sinks: &mut Sinks, bene_id: &str, claims: &[OutpatientClaim]) -> Result<()> {
    let (sink, pos) = sinks.tables.get_mut(&Table::Outpatient).expect("table");
    let dx_cols: Vec<usize> = (1..=25).map(|i| pos.at(&format!("dx_{i}"))).collect();
    for c in claims {
        for (ln, line) in c.lines.iter().enumerate() {
            let mut row = pos.row();
            row[pos.at("claim_id")] = Cell::Str(&c.claim_id);
            row[pos.at("line_num")] = Cell::Int(ln as i64 + 1);
            row[pos.at("bene_id")] = Cell::Str(bene_id);
            row[pos.at("provider_ccn")] = Cell::Str(&c.ccn);
            row[pos.at("claim_from_date")] = Cell::Date(c.from);
            row[pos.at("claim_thru_date")] = Cell::Date(c.thru);
            row[pos.at("bill_type")] = Cell::Str("131");
            row[pos.at("revenue_center")] = Cell::Str(line.revenue_center);
            row[pos.at("revenue_center_date")] = Cell::Date(line.day);
            if let Some(h) = line.hcpcs {
                row[pos.at("hcpcs")] = Cell::Str(h);
            }
            row[pos.at("units")] = Cell::Float(line.units);
            row[pos.at("principal_dx")] = Cell::Str(&c.principal_dx);
            row[dx_cols[0]] = Cell::Str(&c.principal_dx);
            for (k, d) in c.other_dx.iter().take(24).enumerate() {
                row[dx_cols[k + 1]] = Cell::Str(d);
            }
            row[pos.at("dx_version")] = Cell::Str("0");
            sink.push(&row)?;
        }
    }
    Ok(())
}

fn write_inpatient(sinks: &mut Sinks, bene_id: &str, claims: &[InpatientClaim]) -> Result<()> {
    let (sink, pos) = sinks.tables.get_mut(&Table::Inpatient).expect("table");
    let dx_cols: Vec<usize> = (1..=25).map(|i| pos.at(&format!("dx_{i}"))).collect();
    let proc_cols: Vec<usize> = (1..=25).map(|i| pos.at(&format!("proc_{i}"))).collect();
    for c in claims {
        let mut row = pos.row();
        row[pos.at("claim_id")] = Cell::Str(&c.claim_id);
        row[pos.at("bene_id")] = Cell::Str(bene_id);
        row[pos.at("provider_ccn")] = Cell::Str(&c.ccn);
        row[pos.at("admission_date")] = Cell::Date(c.admission);
        row[pos.at("discharge_date")] = Cell::Date(c.discharge);
        row[pos.at("claim_from_date")] = Cell::Date(c.admission);
        row[pos.at("claim_thru_date")] = Cell::Date(c.discharge);
        row[pos.at("principal_dx")] = Cell::Str(&c.principal_dx);
        row[dx_cols[0]] = Cell::Str(&c.principal_dx);
        for (k, d) in c.other_dx.iter().take(24).enumerate() {
            row[dx_cols[k + 1]] = Cell::Str(d);
        }
        row[pos.at("dx_version")] = Cell::Str("0");
        for (k, pc) in c.procedures.iter().take(25).enumerate() {
            row[proc_cols[k]] = Cell::Str(pc);
        }
        if !c.procedures.is_empty() {
            row[pos.at("proc_version")] = Cell::Str("0");
        }
        row[pos.at("admission_type")] = Cell::Str(c.admission_type);
        row[pos.at("admission_source")] = Cell::Str(c.admission_source);
        row[pos.at("discharge_status")] = Cell::Str("01");
        row[pos.at("utilization_days")] = Cell::Float((c.discharge - c.admission) as f64);
        sink.push(&row)?;
    }
    Ok(())
}

fn write_facilities(path: &Path, rows: &[(MeasureId, String, f64, u64, u64, u64)]) -> Result<()> {
    let spec = ColumnSpec::plain;
    let cols = vec![
        spec("measure", ColumnType::Str),
        spec("facility_id", ColumnType::Str),
        spec("true_intercept", ColumnType::Float),
        spec("procedures", ColumnType::Int),
        spec("in_cohort", ColumnType::Int),
        spec("unplanned_visits_in_cohort", ColumnType::Int),
    ];
    let mut sink = TableSink::with_columns("facilities", cols, path, FileFormat::Parquet, BATCH_ROWS)?;
    for (m, id, u, n, c, e) in rows {
        sink.push(&[
            Cell::Str(m.as_str()),
            Cell::Str(id),
            Cell::Float(*u),
            Cell::Int(*n as i64),
            Cell::Int(*c as i64),
            Cell::Int(*e as i64),
        ])?;
    }
    sink.finish()?;
    Ok(())
}

fn write_model(path: &Path, world: &World, summary: &SynthSummary) -> Result<()> {
    let mut measures = serde_json::Map::new();
    for m in &world.measures {
        let coefficients: serde_json::Map<String, serde_json::Value> =
            m.variables.iter().map(|v| (v.name.clone(), serde_json::json!(v.beta))).collect();
        let counts = summary.measures.get(m.id.as_str()).cloned().unwrap_or_default();
        measures.insert(
            m.id.as_str().to_string(),
            serde_json::json!({
                "intercept": m.intercept,
                "tau": m.tau,
                "coefficients": coefficients,
                "variables": m.variables.iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
                "target_rate": m.target_rate,
                "facilities": m.facilities.len(),
                "procedures": counts.procedures,
                "in_cohort": counts.in_cohort,
                "unplanned_visits_in_cohort": counts.unplanned_visits_in_cohort,
            }),
        );
    }
    let model = serde_json::json!({
        "description": "True two-level logistic model per measure: logit P(unplanned visit) = intercept + sum(coefficient * variable) + facility intercept, facility intercepts ~ Normal(0, tau^2) (see truth/facilities.parquet).",
        "dictionary_version": DICTIONARY_VERSION,
        "seed": world.options.seed,
        "measures": measures,
    });
    crate::output::write_atomic(path, &pretty(&model)?)
}
