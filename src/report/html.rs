//! `report.html`: one self-contained page (inline CSS and SVG, no script, no network) built from
//! a run folder — the national summary, each measure's attrition, model and charts, the
//! web-based measures, and a section per facility. Everything on it comes from the run's files,
//! so `ascqr report --run DIR` rebuilds it at any time, and it shows only what the shareable
//! files show (suppressed counts, published facilities) plus model-level results.

use super::plots::{caterpillar_svg, funnel_svg, Benchmark, PlotFacility};
use super::{count_cell, unit_scale, Table, MIN_WEB_DENOMINATOR};
use crate::error::{AscqrError, PolarsContext, Result};
use crate::standardize::TOO_SMALL;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Reads a headed CSV into a [`Table`].
pub fn read_table(path: &Path) -> Result<Table> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| AscqrError::Other(format!("{}: {e}", path.display())))?;
    let header = reader.headers().map_err(|e| AscqrError::Other(format!("{}: {e}", path.display())))?.iter().map(String::from).collect();
    let mut rows = Vec::new();
    for r in reader.records() {
        let r = r.map_err(|e| AscqrError::Other(format!("{}: {e}", path.display())))?;
        rows.push(r.iter().map(String::from).collect());
    }
    Ok(Table { header, rows })
}

fn html_table(t: &Table, class: &str) -> String {
    let mut s = format!("<table class=\"{class}\"><thead><tr>");
    for h in &t.header {
        let _ = write!(s, "<th>{}</th>", escape(h));
    }
    s.push_str("</tr></thead><tbody>");
    for r in &t.rows {
        s.push_str("<tr>");
        for v in r {
            let _ = write!(s, "<td>{}</td>", escape(v));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

fn unit_label(unit: &str) -> &'static str {
    match unit {
        "per_1000" => "risk-standardized rate per 1,000",
        "per_100" => "risk-standardized rate per 100",
        _ => "standardized ratio",
    }
}

/// The measure's published facilities for the charts (at least `min_cases` cases).
fn plot_facilities(path: &Path, unit: &str, min_cases: f64) -> Result<Vec<PlotFacility>> {
    let df = crate::output::read_parquet(path)?;
    let f64s = |name: &str| -> Result<Vec<Option<f64>>> { Ok(df.column(name).and_then(|c| c.f64().cloned()).ctx(|| format!("{}: {name}", path.display()))?.iter().collect()) };
    let (cases, rate, ratio, low, high) = (f64s("cases")?, f64s("risk_standardized_rate")?, f64s("standardized_ratio")?, f64s("interval_low")?, f64s("interval_high")?);
    let category: Vec<Option<String>> = df.column("category").and_then(|c| c.str().cloned()).ctx(|| "category".into())?.iter().map(|v| v.map(String::from)).collect();
    let scale = |v: f64| v * unit_scale(unit).unwrap_or(1.0);
    let mut out = Vec::new();
    for i in 0..df.height() {
        let n = cases[i].unwrap_or(0.0);
        let cat = category[i].clone().unwrap_or_else(|| "N/A".into());
        if n < min_cases || cat == TOO_SMALL {
            continue;
        }
        let point = if unit == "ratio" { ratio[i] } else { rate[i] };
        let Some(point) = point.filter(|v| v.is_finite()) else { continue };
        out.push(PlotFacility { cases: n, value: scale(point), low: low[i].filter(|v| v.is_finite()).map(scale), high: high[i].filter(|v| v.is_finite()).map(scale), category: cat });
    }
    Ok(out)
}

fn json_f64(v: &serde_json::Value) -> Option<f64> {
    v.as_f64()
}

/// One claims measure's section.
fn measure_section(run: &Path, measure: &str, manifest: &serde_json::Value) -> Result<String> {
    let (plan, dictionary, settings) = (&manifest["plan"], &manifest["dictionary"][measure], &manifest["measure_settings"][measure]);
    let dir = run.join(measure);
    let mut s = String::new();
    let label = format!("ASC-{}", measure.trim_start_matches("asc"));
    let period = &plan["periods"][measure];
    let _ = write!(
        s,
        "<section id=\"{measure}\"><h2>{label}</h2><p>Performance period {} to {}. Definition {} ({}).</p>",
        escape(period[0].as_str().unwrap_or("")),
        escape(period[1].as_str().unwrap_or("")),
        escape(dictionary["definition_version"].as_str().unwrap_or("?")),
        escape(&provenance_text(&dictionary["rows_by_provenance"])),
    );
    let attrition = read_table(&dir.join("cohort/attrition.csv"))?;
    let _ = write!(s, "<h3>Attrition</h3>{}", html_table(&attrition_shareable(&attrition), "attrition"));
    let model_path = dir.join("model/model.json");
    if !model_path.exists() {
        s.push_str("<p class=\"warn\">No model: the cohort is empty for this period.</p></section>");
        return Ok(s);
    }
    let model: serde_json::Value = serde_json::from_slice(&std::fs::read(&model_path).map_err(|e| AscqrError::io(&model_path, e))?)
        .map_err(|e| AscqrError::Other(format!("{}: {e}", model_path.display())))?;
    let fmt = |v: Option<f64>, d: usize| v.map(|x| format!("{x:.d$}")).unwrap_or_else(|| "N/A".into());
    let _ = write!(
        s,
        "<h3>Model</h3><p>Method {} — {} after {} iterations ({}). Random-intercept SD {}; c-statistic {} (fixed effects), {} (with facility intercepts); national observed rate {}.</p>",
        escape(model["method"].as_str().unwrap_or("?")),
        if model["converged"].as_bool() == Some(true) { "converged" } else { "<strong>not converged</strong>" },
        model["iterations"],
        escape(model["termination"].as_str().unwrap_or("")),
        fmt(json_f64(&model["random_intercept_sd"]), 4),
        fmt(json_f64(&model["c_statistic_fixed_effects"]), 3),
        fmt(json_f64(&model["c_statistic_with_facility"]), 3),
        fmt(json_f64(&model["national_observed_rate"]).map(|r| 100.0 * r), 2) + "%",
    );
    if let Some(warnings) = model["warnings"].as_array().filter(|w| !w.is_empty()) {
        s.push_str("<ul class=\"warn\">");
        for w in warnings {
            let _ = write!(s, "<li>{}</li>", escape(w.as_str().unwrap_or("")));
        }
        s.push_str("</ul>");
    }
    s.push_str(&html_table(&read_table(&dir.join("model/coefficients.csv"))?, "coefficients"));

    let unit = settings["rate_unit"].as_str().unwrap_or("ratio");
    let min_cases = settings["min_cases"].as_f64().unwrap_or(11.0);
    let facilities = plot_facilities(&dir.join("model/facilities.parquet"), unit, min_cases)?;
    let national_rate = json_f64(&model["national_observed_rate"]).unwrap_or(f64::NAN);
    let benchmark = Benchmark { national_rate, scale: unit_scale(unit) };
    if facilities.is_empty() || !national_rate.is_finite() || national_rate <= 0.0 {
        s.push_str("<p>No facility reaches the minimum case count: no charts.</p>");
    } else {
        let y = unit_label(unit);
        let _ = write!(
            s,
            "<h3>Funnel plot</h3><figure>{}</figure><h3>Caterpillar plot</h3><figure>{}</figure>",
            funnel_svg(&format!("{label}: rate against volume"), y, &facilities, benchmark)?,
            caterpillar_svg(&format!("{label}: facilities with 95% bootstrap intervals"), y, &facilities, benchmark)?
        );
        let _ = write!(s, "<p>{} facilities with at least {} cases are drawn (blue: better, red: worse, grey: no different or no interval).</p>", facilities.len(), min_cases);
    }
    s.push_str("</section>");
    Ok(s)
}

fn provenance_text(rows: &serde_json::Value) -> String {
    let mut official = 0;
    let mut reconstructed = 0;
    if let Some(tables) = rows.as_object() {
        for counts in tables.values() {
            official += counts["official"].as_u64().unwrap_or(0);
            reconstructed += counts["reconstructed"].as_u64().unwrap_or(0);
        }
    }
    format!("{official} definition rows official, {reconstructed} reconstructed")
}

/// Attrition counts as shareable cells (1–10 suppressed).
fn attrition_shareable(t: &Table) -> Table {
    let counts = ["procedures_in", "excluded", "procedures_out", "beneficiaries_out", "facilities_out"];
    let idx: Vec<usize> = counts.iter().filter_map(|c| t.column(c)).collect();
    let rows = t
        .rows
        .iter()
        .map(|r| r.iter().enumerate().map(|(k, v)| if idx.contains(&k) { v.parse::<u64>().map(count_cell).unwrap_or_else(|_| v.clone()) } else { v.clone() }).collect())
        .collect();
    Table { header: t.header.clone(), rows }
}

/// National totals of the web-based measures from `web/web_measures.csv`.
fn web_section(run: &Path) -> Result<String> {
    let path = run.join("web/web_measures.csv");
    if !path.exists() {
        return Ok("<section id=\"web\"><h2>Web-based measures</h2><p>Not part of this run (no --web-records).</p></section>".into());
    }
    let t = read_table(&path)?;
    let col = |name: &str| t.column(name).ok_or_else(|| AscqrError::Other(format!("{}: no column {name}", path.display())));
    let (m, d, n) = (col("measure")?, col("denominator")?, col("numerator")?);
    let mut totals: BTreeMap<(u32, String), (u64, u64, u64)> = BTreeMap::new();
    for r in &t.rows {
        let order = r[m].trim_start_matches("ASC-").parse().unwrap_or(u32::MAX);
        let e = totals.entry((order, r[m].clone())).or_default();
        let (den, num) = (r[d].parse::<u64>().unwrap_or(0), r[n].parse::<u64>().unwrap_or(0));
        e.0 += u64::from(den >= MIN_WEB_DENOMINATOR);
        e.1 += den;
        e.2 += num;
    }
    let rows = totals
        .into_iter()
        .map(|((_, measure), (facilities, den, num))| {
            let rate = if den > 0 { format!("{:.2}%", 100.0 * num as f64 / den as f64) } else { "N/A".into() };
            vec![measure, count_cell(facilities), count_cell(den), count_cell(num), rate]
        })
        .collect();
    let table = Table { header: ["measure", "facilities with a reportable rate", "denominator", "numerator", "rate"].map(String::from).to_vec(), rows };
    Ok(format!(
        "<section id=\"web\"><h2>Web-based measures</h2><p>All facilities together (sampled measures: over the samples, as HQR receives them).</p>{}</section>",
        html_table(&table, "web")
    ))
}

/// A section per facility from `facility_report.csv`, claims-based next to web-based results.
fn facility_sections(report: &Table) -> String {
    let npi = report.column("NPI").unwrap_or(2);
    let mut s = String::from("<section id=\"facilities\"><h2>Facilities</h2><p class=\"index\">");
    for r in &report.rows {
        let _ = write!(s, "<a href=\"#f{0}\">{0}</a> ", escape(&r[npi]));
    }
    s.push_str("</p>");
    let measures = ["ASC-9", "ASC-11", "ASC-12", "ASC-13", "ASC-14", "ASC-17", "ASC-18", "ASC-19", "ASC-20"];
    for r in &report.rows {
        let _ = write!(s, "<article id=\"f{0}\"><h3>Facility NPI {0}</h3><table class=\"facility\"><tr><th>measure</th><th>result</th></tr>", escape(&r[npi]));
        for m in measures {
            let parts: Vec<String> = report
                .header
                .iter()
                .zip(r)
                .filter(|(h, v)| h.starts_with(&format!("{m} ")) && !v.is_empty())
                .map(|(h, v)| format!("{}: {}", escape(h.trim_start_matches(&format!("{m} "))), escape(v)))
                .collect();
            let _ = write!(s, "<tr><td>{m}</td><td>{}</td></tr>", parts.join("; "));
        }
        s.push_str("</table></article>");
    }
    s.push_str("</section>");
    s
}

/// Transposes the national table (one row per column) for reading.
fn national_section(national: &Table) -> String {
    let rows = national.header.iter().enumerate().map(|(k, h)| vec![h.clone(), national.rows.first().map(|r| r[k].clone()).unwrap_or_default()]).collect();
    format!(
        "<section id=\"national\"><h2>National summary</h2>{}</section>",
        html_table(&Table { header: vec!["".into(), "value".into()], rows }, "national")
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 6px;font-size:0.9em}\
th{background:#f2f2f2}.warn{color:#a33}figure{margin:0}nav a{margin-right:1em}.index a{margin-right:0.5em;font-size:0.85em}";

/// Builds `report.html` for the run folder `run` and returns its path.
pub fn write_report(run: &Path) -> Result<std::path::PathBuf> {
    let manifest = crate::pipeline::read_manifest(run)?;
    let plan = &manifest["plan"];
    let measures: Vec<String> = plan["measures"].as_array().map(|a| a.iter().filter_map(|m| m.as_str().map(String::from)).collect()).unwrap_or_default();
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>ASCQR measures — run report</h1><p>ascqr {} · method {} · {} bootstrap replicates · seed {} · performance periods ending {} · {} input files. \
         Counts between 1 and 10 are shown as &lt;11; facilities under a measure's minimum case count are not drawn.</p><nav><a href=\"#national\">national</a>",
        escape(manifest["engine"]["version"].as_str().unwrap_or("?")),
        escape(manifest["estimation"]["method"].as_str().unwrap_or("?")),
        manifest["estimation"]["bootstrap_replicates"],
        manifest["estimation"]["seed"],
        plan["through_year"],
        manifest["inputs"].as_array().map(|a| a.len()).unwrap_or(0),
    );
    for m in &measures {
        let _ = write!(body, "<a href=\"#{m}\">ASC-{}</a>", m.trim_start_matches("asc"));
    }
    body.push_str("<a href=\"#web\">web-based</a><a href=\"#facilities\">facilities</a></nav>");
    if let Some(w) = manifest["warnings"].as_array().filter(|w| !w.is_empty()) {
        body.push_str("<details><summary>Warnings of this run</summary><ul class=\"warn\">");
        for x in w {
            let _ = write!(body, "<li>{}</li>", escape(x.as_str().unwrap_or("")));
        }
        body.push_str("</ul></details>");
    }
    body.push_str(&national_section(&read_table(&run.join("national.csv"))?));
    for m in &measures {
        body.push_str(&measure_section(run, m, &manifest)?);
    }
    body.push_str(&web_section(run)?);
    body.push_str(&facility_sections(&read_table(&run.join("facility_report.csv"))?));
    let html = format!("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ASCQR run report</title><style>{STYLE}</style></head><body>{body}</body></html>\n");
    let path = run.join("report.html");
    crate::output::write_atomic(&path, html.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_attrition_counts_are_suppressed() {
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
        let t = Table {
            header: ["step", "procedures_in", "excluded", "procedures_out", "beneficiaries_out", "facilities_out"].map(String::from).to_vec(),
            rows: vec![["age_under_65", "120", "7", "113", "100", "0"].map(String::from).to_vec()],
        };
        assert_eq!(attrition_shareable(&t).rows[0], ["age_under_65", "120", "<11", "113", "100", "0"]);
    }
}
