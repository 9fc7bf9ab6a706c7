//! Shareable tables of a run: the facility report in the column layout of CMS's public ASC file
//! (`ASC_Facility.csv`, Care Compare) and the national table in the layout of `ASC_National.csv`.
//!
//! Privacy (CMS data use rules on cell sizes): a count between 1 and 10 is written `<11`; a
//! claims-based rate is shown only for facilities with at least the measure's minimum case count
//! (else "Number of Cases Too Small", footnote 1, as CMS publishes it); a web-based rate only with
//! a denominator of at least 11 (our choice: the manual sets no minimum, and a rate over fewer
//! cases discloses the counts behind it).
//!
//! Footnotes are CMS's codes (`Footnote_Crosswalk.csv`): 1 too few cases, 5 results not
//! available for this period, 7 no cases met the criteria.

pub mod html;
pub mod plots;

use crate::cohort::AttritionStep;
use crate::dictionary::MeasureId;
use crate::error::{AscqrError, PolarsContext, Result};
use crate::hglm::FitOutput;
use crate::standardize::{FacilityResult, TOO_SMALL};
use crate::web::MeasureSummary;
use polars::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One claims-based measure of a run.
pub struct MeasureRun {
    pub measure: MeasureId,
    /// First and last day of the performance period (`YYYY-MM-DD`).
    pub period: (String, String),
    pub attrition: Vec<AttritionStep>,
    pub definition: serde_json::Value,
    /// `None` when the cohort was empty.
    pub fit: Option<FitOutput>,
    pub min_cases: u32,
    /// `per_1000`, `per_100` or `ratio` (measures.csv): how CMS publishes the rate.
    pub rate_unit: String,
}

/// Header and rows of a table of text cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }
}

pub const MIN_WEB_DENOMINATOR: u64 = 11;
const NA: &str = "N/A";

/// A count as it may appear in a shareable file.
pub fn count_cell(n: u64) -> String {
    match n {
        1..=10 => "<11".to_string(),
        _ => n.to_string(),
    }
}

/// Claims-based measures in the public file, in its column order.
const CLAIMS_MEASURES: [(MeasureId, &str); 4] = [(MeasureId::Asc12, "ASC-12"), (MeasureId::Asc17, "ASC-17"), (MeasureId::Asc18, "ASC-18"), (MeasureId::Asc19, "ASC-19")];

enum Kind {
    Web,
    Claims,
}

/// The measures of CMS's public ASC files, in their column order (ASC-20 closes both files and
/// has its own columns).
const PUBLIC_MEASURE_ORDER: [(&str, Kind); 8] = [
    ("ASC-9", Kind::Web),
    ("ASC-11", Kind::Web),
    ("ASC-12", Kind::Claims),
    ("ASC-13", Kind::Web),
    ("ASC-14", Kind::Web),
    ("ASC-17", Kind::Claims),
    ("ASC-18", Kind::Claims),
    ("ASC-19", Kind::Claims),
];

/// The web-based measures with a rate column (ASC-20 has its own columns).
fn web_rate_measures() -> impl Iterator<Item = &'static str> {
    PUBLIC_MEASURE_ORDER.into_iter().filter(|(_, k)| matches!(k, Kind::Web)).map(|(m, _)| m)
}

/// A claims measure's columns in the facility file.
const CLAIMS_PARTS: [&str; 6] = ["Total Cases", "Performance Category", "RSHV Rate", "Interval Lower Limit", "Interval Upper Limit", "Footnote"];
/// A claims measure's category-count columns in the national file.
const CATEGORY_PARTS: [&str; 4] = ["Better", "No Different", "Worse", "Too Small"];

/// The header of CMS's `ASC_Facility.csv` (July 2024), in order.
pub fn facility_header() -> Vec<String> {
    let mut h: Vec<String> = ["Facility Name", "Facility ID", "NPI", "City/Town", "State", "ZIP Code", "Year"].map(String::from).to_vec();
    for (m, kind) in PUBLIC_MEASURE_ORDER {
        match kind {
            Kind::Web => h.extend([format!("{m} Rate"), format!("{m} Footnote")]),
            Kind::Claims => h.extend(CLAIMS_PARTS.map(|part| format!("{m} {part}"))),
        }
    }
    h.extend(["ASC-20 Sample", "ASC-20 Rate", "ASC-20 Footnote"].map(String::from));
    h
}

/// The multiplier from a proportion to a measure's published unit (`per_1000`, `per_100`), or
/// `None` for a measure published as a ratio.
pub fn unit_scale(unit: &str) -> Option<f64> {
    match unit {
        "per_1000" => Some(1000.0),
        "per_100" => Some(100.0),
        _ => None,
    }
}

/// A rate in the unit CMS publishes it in: per 1,000 or per 100 with one decimal, a ratio with two.
pub fn published_rate(value: f64, unit: &str) -> String {
    match unit_scale(unit) {
        Some(scale) => format!("{:.1}", value * scale),
        None => format!("{value:.2}"),
    }
}

/// What is published for one facility of a claims measure: cases, category, rate, interval, footnote.
fn claims_cells(run: &MeasureRun, f: Option<&FacilityResult>) -> [String; 6] {
    let na = || NA.to_string();
    let Some(f) = f else { return [na(), na(), na(), na(), na(), "5".into()] };
    if f.cases < run.min_cases as f64 || f.category.as_deref() == Some(TOO_SMALL) {
        return [na(), TOO_SMALL.into(), na(), na(), na(), "1".into()];
    }
    // ASC-19 is published as a ratio; the others as a rate.
    let value = |v: f64| published_rate(v, &run.rate_unit);
    let point = if run.rate_unit == "ratio" { f.ratio } else { f.rate };
    [
        count_cell(f.cases.round() as u64),
        f.category.clone().unwrap_or_else(na),
        value(point),
        f.interval_low.map(value).unwrap_or_else(na),
        f.interval_high.map(value).unwrap_or_else(na),
        String::new(),
    ]
}

/// Rate (per 100, with `decimals`) and footnote of a web-based measure.
fn web_cells(s: Option<&MeasureSummary>, decimals: usize) -> [String; 2] {
    match s {
        None => [NA.into(), "5".into()],
        Some(s) if s.denominator == 0 => [NA.into(), "7".into()],
        Some(s) if s.denominator < MIN_WEB_DENOMINATOR => [NA.into(), "1".into()],
        Some(s) => [format!("{:.*}", decimals, 100.0 * s.numerator as f64 / s.denominator as f64), String::new()],
    }
}

fn web_index(web: Option<&[MeasureSummary]>) -> BTreeMap<(String, String), &MeasureSummary> {
    let mut index: BTreeMap<(String, String), &MeasureSummary> = BTreeMap::new();
    for s in web.unwrap_or(&[]) {
        // ASC-20 has a row per week: the latest week stands for the facility.
        let key = (s.facility_npi.clone(), s.measure.clone());
        match index.get(&key) {
            Some(prev) if prev.period >= s.period => {}
            _ => {
                index.insert(key, s);
            }
        }
    }
    index
}

/// One row per facility (NPI) with any claims-based or web-based result.
pub fn facility_report(measures: &[MeasureRun], web: Option<&[MeasureSummary]>, year: i32) -> Table {
    let header = facility_header();
    let by_measure: BTreeMap<MeasureId, (&MeasureRun, BTreeMap<&str, &FacilityResult>)> = measures
        .iter()
        .map(|r| {
            let facilities = r.fit.as_ref().map(|f| f.facilities.iter().map(|x| (x.facility_id.as_str(), x)).collect()).unwrap_or_default();
            (r.measure, (r, facilities))
        })
        .collect();
    let web = web_index(web);
    let mut npis: BTreeSet<String> = web.keys().map(|(npi, _)| npi.clone()).collect();
    for (_, facilities) in by_measure.values() {
        npis.extend(facilities.keys().map(|s| s.to_string()));
    }
    let mut rows = Vec::new();
    for npi in npis {
        let mut cells: BTreeMap<String, String> = BTreeMap::new();
        cells.insert("NPI".into(), npi.clone());
        cells.insert("Year".into(), year.to_string());
        for (m, label) in CLAIMS_MEASURES {
            let values = match by_measure.get(&m) {
                Some((run, facilities)) => claims_cells(run, facilities.get(npi.as_str()).copied()),
                None => [NA, NA, NA, NA, NA, "5"].map(String::from),
            };
            for (part, v) in CLAIMS_PARTS.iter().zip(values) {
                cells.insert(format!("{label} {part}"), v);
            }
        }
        for label in web_rate_measures() {
            let [rate, note] = web_cells(web.get(&(npi.clone(), label.to_string())).copied(), 2);
            cells.insert(format!("{label} Rate"), rate);
            cells.insert(format!("{label} Footnote"), note);
        }
        let asc20 = web.get(&(npi.clone(), "ASC-20".to_string())).copied();
        let [rate, note] = web_cells(asc20, 1);
        cells.insert("ASC-20 Sample".into(), asc20.map(|s| count_cell(s.denominator)).unwrap_or_else(|| NA.into()));
        cells.insert("ASC-20 Rate".into(), rate);
        cells.insert("ASC-20 Footnote".into(), note);
        rows.push(header.iter().map(|h| cells.remove(h).unwrap_or_default()).collect());
    }
    Table { header, rows }
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    }
}

/// The header of CMS's `ASC_National.csv` (July 2024), in order.
pub fn national_header() -> Vec<String> {
    let mut h = vec!["Year".to_string()];
    for (m, kind) in PUBLIC_MEASURE_ORDER {
        match kind {
            Kind::Web => h.extend([format!("Avg {m} Nat Rate"), format!("Median {m} Nat Rate")]),
            Kind::Claims => {
                h.push(format!("{m} Nat Rate"));
                h.extend(CATEGORY_PARTS.map(|c| format!("{m} {c}")));
            }
        }
    }
    h.push("ASC-20 Nat Rate".into());
    h
}

/// National rate and category counts per claims measure; average and median facility rate per
/// web-based measure (over facilities with a reportable rate); ASC-20 pooled over facilities.
pub fn national_table(measures: &[MeasureRun], web: Option<&[MeasureSummary]>, year: i32) -> Table {
    let header = national_header();
    let not_available = || "N/A (5)".to_string();
    let mut cells: BTreeMap<String, String> = BTreeMap::new();
    cells.insert("Year".into(), year.to_string());
    for (m, label) in CLAIMS_MEASURES {
        let run = measures.iter().find(|r| r.measure == m);
        let fit = run.and_then(|r| r.fit.as_ref());
        let (rate, counts) = match (run, fit) {
            (Some(run), Some(fit)) => {
                let national = if run.rate_unit == "ratio" { 1.0 } else { fit.summary.national_observed_rate };
                let counts = if fit.summary.bootstrap_replicates_used.is_none() {
                    [(); 4].map(|_| NA.to_string())
                } else {
                    crate::standardize::category_counts(&fit.facilities).map(count_cell)
                };
                (published_rate(national, &run.rate_unit), counts)
            }
            _ => (not_available(), [(); 4].map(|_| not_available())),
        };
        cells.insert(format!("{label} Nat Rate"), rate);
        for (c, v) in CATEGORY_PARTS.iter().zip(counts) {
            cells.insert(format!("{label} {c}"), v);
        }
    }
    let web = web_index(web);
    for label in web_rate_measures() {
        let mut rates: Vec<f64> = web
            .iter()
            .filter(|((_, m), s)| m == label && s.denominator >= MIN_WEB_DENOMINATOR)
            .map(|(_, s)| 100.0 * s.numerator as f64 / s.denominator as f64)
            .collect();
        rates.sort_by(|a, b| a.total_cmp(b));
        let (avg, med) = if rates.is_empty() {
            (not_available(), not_available())
        } else {
            (format!("{:.2}", rates.iter().sum::<f64>() / rates.len() as f64), format!("{:.2}", median(&rates)))
        };
        cells.insert(format!("Avg {label} Nat Rate"), avg);
        cells.insert(format!("Median {label} Nat Rate"), med);
    }
    let (num, den) = web.iter().filter(|((_, m), _)| m == "ASC-20").fold((0u64, 0u64), |(n, d), (_, s)| (n + s.numerator, d + s.denominator));
    cells.insert("ASC-20 Nat Rate".into(), if den > 0 { format!("{:.2}", 100.0 * num as f64 / den as f64) } else { not_available() });
    let row = header.iter().map(|h| cells.remove(h).unwrap_or_default()).collect();
    Table { header, rows: vec![row] }
}

pub fn csv_bytes(table: &Table) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| AscqrError::Other(format!("rendering a table: {e}"));
    w.write_record(&table.header).map_err(err)?;
    for r in &table.rows {
        w.write_record(r).map_err(err)?;
    }
    w.into_inner().map_err(|e| AscqrError::Other(format!("rendering a table: {e}")))
}

/// `facility_report.csv` and `facility_report.parquet` (all columns text, as CMS publishes).
pub fn write_facility_report(out: &Path, table: &Table) -> Result<()> {
    crate::output::write_atomic(&out.join("facility_report.csv"), &csv_bytes(table)?)?;
    let columns: Vec<Column> = table
        .header
        .iter()
        .enumerate()
        .map(|(k, name)| Column::new(name.as_str().into(), table.rows.iter().map(|r| r[k].as_str()).collect::<Vec<&str>>()))
        .collect();
    let mut df = DataFrame::new(table.rows.len(), columns).ctx(|| "facility report".into())?;
    let target = crate::output::TempPath::new(&out.join("facility_report.parquet"))?;
    ParquetWriter::new(target.create_file()?).finish(&mut df).ctx(|| "writing facility_report.parquet".into())?;
    target.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_match_cms_public_files() {
        // The July 2024 Care Compare files (reference/care-compare/2024-07), header rows verbatim.
        let facility = "Facility Name,Facility ID,NPI,City/Town,State,ZIP Code,Year,ASC-9 Rate,ASC-9 Footnote,ASC-11 Rate,ASC-11 Footnote,ASC-12 Total Cases,ASC-12 Performance Category,ASC-12 RSHV Rate,ASC-12 Interval Lower Limit,ASC-12 Interval Upper Limit,ASC-12 Footnote,ASC-13 Rate,ASC-13 Footnote,ASC-14 Rate,ASC-14 Footnote,ASC-17 Total Cases,ASC-17 Performance Category,ASC-17 RSHV Rate,ASC-17 Interval Lower Limit,ASC-17 Interval Upper Limit,ASC-17 Footnote,ASC-18 Total Cases,ASC-18 Performance Category,ASC-18 RSHV Rate,ASC-18 Interval Lower Limit,ASC-18 Interval Upper Limit,ASC-18 Footnote,ASC-19 Total Cases,ASC-19 Performance Category,ASC-19 RSHV Rate,ASC-19 Interval Lower Limit,ASC-19 Interval Upper Limit,ASC-19 Footnote,ASC-20 Sample,ASC-20 Rate,ASC-20 Footnote";
        assert_eq!(facility_header().join(","), facility);
        let national = "Year,Avg ASC-9 Nat Rate,Median ASC-9 Nat Rate,Avg ASC-11 Nat Rate,Median ASC-11 Nat Rate,ASC-12 Nat Rate,ASC-12 Better,ASC-12 No Different,ASC-12 Worse,ASC-12 Too Small,Avg ASC-13 Nat Rate,Median ASC-13 Nat Rate,Avg ASC-14 Nat Rate,Median ASC-14 Nat Rate,ASC-17 Nat Rate,ASC-17 Better,ASC-17 No Different,ASC-17 Worse,ASC-17 Too Small,ASC-18 Nat Rate,ASC-18 Better,ASC-18 No Different,ASC-18 Worse,ASC-18 Too Small,ASC-19 Nat Rate,ASC-19 Better,ASC-19 No Different,ASC-19 Worse,ASC-19 Too Small,ASC-20 Nat Rate";
        assert_eq!(national_header().join(","), national);
    }

    #[test]
    fn counts_of_one_to_ten_are_suppressed() {
        assert_eq!(count_cell(0), "0");
        assert_eq!(count_cell(1), "<11");
        assert_eq!(count_cell(10), "<11");
        assert_eq!(count_cell(11), "11");
    }

    #[test]
    fn rates_are_published_in_the_measures_units() {
        assert_eq!(published_rate(0.0112, "per_1000"), "11.2");
        assert_eq!(published_rate(0.019, "per_100"), "1.9");
        assert_eq!(published_rate(1.004, "ratio"), "1.00");
    }

    fn summary(npi: &str, measure: &str, period: &str, den: u64, num: u64) -> MeasureSummary {
        MeasureSummary {
            facility_npi: npi.into(),
            measure: measure.into(),
            period: period.into(),
            population: den,
            sample: None,
            denominator: den,
            exclusions: Default::default(),
            numerator: num,
        }
    }

    #[test]
    fn web_rates_need_eleven_cases_and_small_counts_never_show() {
        let web = vec![
            summary("1234567893", "ASC-9", "2023", 10, 9),
            summary("1234567893", "ASC-13", "2023", 0, 0),
            summary("1234567893", "ASC-14", "2023", 200, 1),
            summary("1234567893", "ASC-20", "2023-01-02", 50, 40),
            summary("1234567893", "ASC-20", "2023-10-02", 8, 8),
        ];
        let t = facility_report(&[], Some(&web), 2023);
        assert_eq!(t.rows.len(), 1);
        let cell = |name: &str| t.rows[0][t.column(name).unwrap()].clone();
        assert_eq!((cell("ASC-9 Rate"), cell("ASC-9 Footnote")), ("N/A".into(), "1".into()));
        assert_eq!((cell("ASC-13 Rate"), cell("ASC-13 Footnote")), ("N/A".into(), "7".into()));
        assert_eq!((cell("ASC-11 Rate"), cell("ASC-11 Footnote")), ("N/A".into(), "5".into()));
        assert_eq!(cell("ASC-14 Rate"), "0.50");
        // The latest ASC-20 week stands for the facility; its 8 personnel are suppressed.
        assert_eq!((cell("ASC-20 Sample"), cell("ASC-20 Rate"), cell("ASC-20 Footnote")), ("<11".into(), "N/A".into(), "1".into()));
        assert_eq!((cell("ASC-12 Total Cases"), cell("ASC-12 Footnote")), ("N/A".into(), "5".into()));
        // No cell anywhere holds a count between 1 and 10.
        for (k, v) in t.header.iter().zip(&t.rows[0]) {
            if k.contains("Total Cases") || k.contains("Sample") {
                assert!(v.parse::<u64>().map_or(true, |n| n == 0 || n > 10), "{k} = {v}");
            }
        }
        let n = national_table(&[], Some(&web), 2023);
        let ncell = |name: &str| n.rows[0][n.column(name).unwrap()].clone();
        assert_eq!(ncell("Avg ASC-14 Nat Rate"), "0.50");
        assert_eq!(ncell("Avg ASC-9 Nat Rate"), "N/A (5)");
        assert_eq!(ncell("ASC-12 Nat Rate"), "N/A (5)");
    }
}
