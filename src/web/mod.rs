//! Web-based measures (ASC-1, 2, 3, 4, 9, 11, 13, 14 to HQR; ASC-20 to NHSN) computed from
//! chart-abstraction records (manual L329-332).
//!
//! * [`records`] — the abstraction record layout (`data-dictionary/web/README.md`) and reader;
//! * [`adverse_events`], [`asc9`], [`asc11`], [`asc13`], [`asc14`] — one module per measure,
//!   each a set of small named rules returning an [`outcome::Outcome`] per encounter;
//! * [`asc20`] — the facility-level personnel file and its rate (NHSN, not HQR);
//! * [`sampling`] — Section 2's sample sizes and a seeded, reproducible draw;
//! * [`hqr`] — the 27-column HQR batch file, its writer and validator.
//!
//! [`run`] is what `ascqr web` calls: read, classify, sample, count, write `web_measures.csv`,
//! `rejects.csv` and `ASC_WBM_PY20YY_mm_dd_yyyy.csv`, each atomically.

pub mod adverse_events;
pub mod asc11;
pub mod asc13;
pub mod asc14;
pub mod asc20;
pub mod asc9;
pub mod hqr;
pub mod outcome;
pub mod records;
pub mod sampling;

use crate::error::{AscqrError, Result};
use crate::output::write_atomic;
use chrono::NaiveDate;
use outcome::{Measure, Outcome};
use records::{EncounterRecord, Rejection};
use sampling::{Candidate, Frequency, SampleDraw};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Options of a `web` run.
#[derive(Debug, Clone)]
pub struct WebOptions {
    pub payment_year: i32,
    pub upload_date: NaiveDate,
    pub frequency: Frequency,
    pub seed: u64,
}

impl WebOptions {
    /// Reporting calendar year = payment year − 2 (manual L87-88, L325-327; A16).
    pub fn reporting_year(&self) -> i32 {
        self.payment_year - 2
    }
}

/// Applies one measure's rules to one encounter.
pub fn classify(measure: Measure, r: &EncounterRecord, reporting_year: i32) -> Outcome {
    match measure {
        Measure::Asc1 => adverse_events::asc1_burn(r),
        Measure::Asc2 => adverse_events::asc2_fall(r),
        Measure::Asc3 => adverse_events::asc3_wrong_site(r),
        Measure::Asc4 => adverse_events::asc4_hospital_transfer(r),
        Measure::Asc9 => asc9::classify(r),
        Measure::Asc11 => asc11::classify(r, reporting_year),
        Measure::Asc13 => asc13::classify(&r.asc13),
        Measure::Asc14 => asc14::classify(r),
    }
}

/// One row of `web_measures.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureSummary {
    pub facility_npi: String,
    pub measure: String,
    /// The reporting year, or the week start for ASC-20.
    pub period: String,
    pub population: u64,
    /// Sampled measures only.
    pub sample: Option<(u64, Frequency)>,
    pub denominator: u64,
    /// Denominator exclusions by reason (among the sample for sampled measures).
    pub exclusions: BTreeMap<String, u64>,
    pub numerator: u64,
}

impl MeasureSummary {
    pub fn rate(&self) -> Option<f64> {
        (self.denominator > 0).then(|| self.numerator as f64 / self.denominator as f64)
    }

    /// `reason=count;reason=count`, reasons in alphabetical order.
    pub fn exclusions_text(&self) -> String {
        self.exclusions.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(";")
    }
}

/// A facility's population for a sampled measure and the sample drawn from it.
pub struct PopulationSample<'a> {
    pub population: Vec<&'a EncounterRecord>,
    pub draw: SampleDraw,
}

impl PopulationSample<'_> {
    pub fn sampled(&self) -> impl Iterator<Item = &EncounterRecord> + '_ {
        self.draw.selected.iter().map(|&i| self.population[i])
    }
}

/// The seed stream of a facility × measure: `web` and `web sample` draw identical samples.
fn sample_stream(npi: &str, measure: Measure) -> String {
    format!("{npi}|{}", measure.label())
}

/// The population (outcome in population) of `measure` at `npi` and its seeded sample.
pub fn draw_facility_sample<'a>(records: &'a [EncounterRecord], npi: &str, measure: Measure, reporting_year: i32, frequency: Frequency, seed: u64) -> PopulationSample<'a> {
    let population: Vec<&EncounterRecord> =
        records.iter().filter(|r| r.facility_npi == npi && classify(measure, r, reporting_year).in_population()).collect();
    let candidates: Vec<Candidate> =
        population.iter().map(|r| Candidate { encounter_id: r.encounter_id.clone(), encounter_date: r.encounter_date }).collect();
    let draw = sampling::draw_sample(&candidates, frequency, seed, &sample_stream(npi, measure));
    PopulationSample { population, draw }
}

fn count_outcomes<'a>(cases: impl Iterator<Item = &'a EncounterRecord>, measure: Measure, reporting_year: i32, summary: &mut MeasureSummary) {
    for r in cases {
        match classify(measure, r, reporting_year) {
            Outcome::NotInPopulation(_) => {}
            Outcome::Excluded(reason) => *summary.exclusions.entry(reason.to_string()).or_default() += 1,
            Outcome::DenominatorOnly => summary.denominator += 1,
            Outcome::Numerator => {
                summary.denominator += 1;
                summary.numerator += 1;
            }
        }
    }
}

/// One facility × measure. Sampled measures are counted on the drawn sample (manual L2004-2007).
pub fn summarise_measure(records: &[EncounterRecord], npi: &str, measure: Measure, options: &WebOptions) -> MeasureSummary {
    let year = options.reporting_year();
    let mut summary = MeasureSummary {
        facility_npi: npi.to_string(),
        measure: measure.label().to_string(),
        period: year.to_string(),
        population: 0,
        sample: None,
        denominator: 0,
        exclusions: BTreeMap::new(),
        numerator: 0,
    };
    if measure.is_sampled() {
        let s = draw_facility_sample(records, npi, measure, year, options.frequency, options.seed);
        summary.population = s.draw.population_size as u64;
        summary.sample = Some((s.draw.sample_size as u64, s.draw.frequency));
        count_outcomes(s.sampled(), measure, year, &mut summary);
    } else {
        let facility: Vec<&EncounterRecord> = records.iter().filter(|r| r.facility_npi == npi).collect();
        summary.population = facility.iter().filter(|r| classify(measure, r, year).in_population()).count() as u64;
        count_outcomes(facility.into_iter(), measure, year, &mut summary);
    }
    summary
}

fn asc20_summaries(personnel: &[asc20::PersonnelWeek]) -> Vec<MeasureSummary> {
    personnel
        .iter()
        .map(|w| MeasureSummary {
            facility_npi: w.facility_npi.clone(),
            measure: "ASC-20".into(),
            period: w.week_start.to_string(),
            population: w.eligible_personnel,
            sample: None,
            denominator: w.denominator(),
            exclusions: if w.contraindicated > 0 { BTreeMap::from([("contraindicated".to_string(), w.contraindicated)]) } else { BTreeMap::new() },
            numerator: w.completed_course,
        })
        .collect()
}

fn hqr_row(npi: &str, payment_year: i32, by_measure: &BTreeMap<Measure, MeasureSummary>) -> hqr::HqrRow {
    let counts = |m: Measure| by_measure.get(&m).map(|s| hqr::Counts { numerator: s.numerator, denominator: s.denominator }).unwrap_or_default();
    let sampled = |m: Measure| {
        let s = &by_measure[&m];
        let (sample_size, frequency) = s.sample.unwrap_or((0, Frequency::Year));
        hqr::SampledCounts { population_size: s.population, sample_size, frequency, numerator: s.numerator, denominator: s.denominator }
    };
    hqr::HqrRow {
        npi: npi.to_string(),
        payment_year,
        asc1: counts(Measure::Asc1),
        asc2: counts(Measure::Asc2),
        asc3: counts(Measure::Asc3),
        asc4: counts(Measure::Asc4),
        asc9: sampled(Measure::Asc9),
        asc11: sampled(Measure::Asc11),
        asc13: sampled(Measure::Asc13),
        asc14: counts(Measure::Asc14),
    }
}

/// Everything a run computes, before writing.
#[derive(Debug, Clone)]
pub struct WebReport {
    pub summaries: Vec<MeasureSummary>,
    pub hqr_rows: Vec<hqr::HqrRow>,
}

/// Facility × measure summaries (HQR measures for every facility with records, then ASC-20
/// weeks) and one HQR row per facility NPI.
pub fn compute(records: &[EncounterRecord], personnel: &[asc20::PersonnelWeek], options: &WebOptions) -> WebReport {
    let npis: BTreeSet<&str> = records.iter().map(|r| r.facility_npi.as_str()).collect();
    let mut summaries = Vec::new();
    let mut hqr_rows = Vec::new();
    for npi in npis {
        let by_measure: BTreeMap<Measure, MeasureSummary> = Measure::ALL.iter().map(|&m| (m, summarise_measure(records, npi, m, options))).collect();
        hqr_rows.push(hqr_row(npi, options.payment_year, &by_measure));
        summaries.extend(by_measure.into_values());
    }
    summaries.extend(asc20_summaries(personnel));
    WebReport { summaries, hqr_rows }
}

/// One measure summed over facilities: the national view of `web_measures.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureTotal {
    pub measure: String,
    /// Facilities with a non-zero denominator.
    pub facilities: u64,
    pub denominator: u64,
    pub numerator: u64,
}

impl MeasureTotal {
    pub fn rate(&self) -> Option<f64> {
        (self.denominator > 0).then(|| self.numerator as f64 / self.denominator as f64)
    }
}

/// Sums facility rows per measure (sampled measures: over the samples, as HQR receives them).
pub fn measure_totals(summaries: &[MeasureSummary]) -> Vec<MeasureTotal> {
    let mut by_measure: BTreeMap<(u8, &str), MeasureTotal> = BTreeMap::new();
    for s in summaries {
        // Manual order (ASC-1 … ASC-20), not alphabetical order.
        let order = s.measure.trim_start_matches("ASC-").parse::<u8>().unwrap_or(u8::MAX);
        let t = by_measure.entry((order, s.measure.as_str())).or_insert_with(|| MeasureTotal {
            measure: s.measure.clone(),
            facilities: 0,
            denominator: 0,
            numerator: 0,
        });
        t.facilities += u64::from(s.denominator > 0);
        t.denominator += s.denominator;
        t.numerator += s.numerator;
    }
    by_measure.into_values().collect()
}

pub const WEB_MEASURES_COLUMNS: [&str; 10] =
    ["facility_npi", "measure", "period", "population", "sample_size", "frequency", "denominator", "exclusions", "numerator", "rate"];

pub fn web_measures_csv(summaries: &[MeasureSummary]) -> Result<Vec<u8>> {
    let err = |e: csv::Error| AscqrError::Other(format!("rendering web_measures.csv: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(WEB_MEASURES_COLUMNS).map_err(err)?;
    for s in summaries {
        let (sample_size, frequency) = s.sample.map(|(n, f)| (n.to_string(), f.code().to_string())).unwrap_or_default();
        w.write_record([
            s.facility_npi.clone(),
            s.measure.clone(),
            s.period.clone(),
            s.population.to_string(),
            sample_size,
            frequency,
            s.denominator.to_string(),
            s.exclusions_text(),
            s.numerator.to_string(),
            s.rate().map(|r| format!("{r:.4}")).unwrap_or_default(),
        ])
        .map_err(err)?;
    }
    w.into_inner().map_err(|e| AscqrError::Other(format!("rendering web_measures.csv: {e}")))
}

/// What [`run`] wrote.
#[derive(Debug, Clone)]
pub struct WebRunOutput {
    pub report: WebReport,
    pub accepted_records: usize,
    pub accepted_personnel_weeks: usize,
    pub rejections: Vec<Rejection>,
    pub web_measures: PathBuf,
    pub rejects: PathBuf,
    pub hqr_file: PathBuf,
}

/// `ascqr web`: reads records (and optionally ASC-20 personnel), computes every measure and
/// writes `web_measures.csv`, `rejects.csv` and the HQR batch file into `out_dir`.
pub fn run(records_path: &Path, personnel_path: Option<&Path>, options: &WebOptions, out_dir: &Path) -> Result<WebRunOutput> {
    let year = options.reporting_year();
    let records = records::read_records(records_path, Some(year))?;
    let personnel = match personnel_path {
        Some(p) => asc20::read_personnel(p, Some(year))?,
        None => records::Parsed { accepted: Vec::new(), rejections: Vec::new() },
    };
    let report = compute(&records.accepted, &personnel.accepted, options);
    let mut rejections = records.rejections;
    rejections.extend(personnel.rejections);
    std::fs::create_dir_all(out_dir).map_err(|e| AscqrError::io(out_dir, e))?;
    let web_measures = out_dir.join("web_measures.csv");
    let rejects = out_dir.join("rejects.csv");
    let hqr_file = hqr::write_batch_file(out_dir, options.payment_year, options.upload_date, &report.hqr_rows)?;
    write_atomic(&web_measures, &web_measures_csv(&report.summaries)?)?;
    write_atomic(&rejects, &records::rejections_csv(&rejections)?)?;
    Ok(WebRunOutput {
        report,
        accepted_records: records.accepted.len(),
        accepted_personnel_weeks: personnel.accepted.len(),
        rejections,
        web_measures,
        rejects,
        hqr_file,
    })
}

/// What `ascqr web sample` wrote.
#[derive(Debug, Clone)]
pub struct SampleOutput {
    pub population_size: usize,
    pub sample_size: usize,
    pub frequency: Frequency,
    pub encounter_ids: Vec<String>,
    pub rejections: usize,
}

/// `ascqr web sample`: the sampled encounter ids of one facility and measure, written as CSV
/// (facility_npi, measure, reporting_year, population_size, sample_size, frequency, encounter_id).
pub fn run_sample(records_path: &Path, npi: &str, measure: Measure, reporting_year: i32, frequency: Frequency, seed: u64, out: &Path) -> Result<SampleOutput> {
    if !measure.is_sampled() {
        return Err(AscqrError::InvalidOption(format!("{} is not sampled; only ASC-9, ASC-11 and ASC-13 are (manual L2004-2007)", measure.label())));
    }
    let records = records::read_records(records_path, Some(reporting_year))?;
    let s = draw_facility_sample(&records.accepted, npi, measure, reporting_year, frequency, seed);
    let mut ids: Vec<String> = s.sampled().map(|r| r.encounter_id.clone()).collect();
    ids.sort();
    let err = |e: csv::Error| AscqrError::Other(format!("rendering sample: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["facility_npi", "measure", "reporting_year", "population_size", "sample_size", "frequency", "encounter_id"]).map_err(err)?;
    for id in &ids {
        let (y, p, n) = (reporting_year.to_string(), s.draw.population_size.to_string(), s.draw.sample_size.to_string());
        w.write_record([npi, measure.label(), &y, &p, &n, frequency.code(), id]).map_err(err)?;
    }
    let bytes = w.into_inner().map_err(|e| AscqrError::Other(format!("rendering sample: {e}")))?;
    write_atomic(out, &bytes)?;
    Ok(SampleOutput {
        population_size: s.draw.population_size,
        sample_size: s.draw.sample_size,
        frequency,
        encounter_ids: ids,
        rejections: records.rejections.len(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn totals_sum_facilities_in_manual_order() {
        let row = |npi: &str, measure: &str, d, n| super::MeasureSummary {
            facility_npi: npi.into(),
            measure: measure.into(),
            period: "2023".into(),
            population: d,
            sample: None,
            denominator: d,
            exclusions: Default::default(),
            numerator: n,
        };
        let totals = super::measure_totals(&[row("a", "ASC-9", 10, 9), row("a", "ASC-13", 0, 0), row("b", "ASC-9", 5, 1), row("a", "ASC-2", 40, 1)]);
        let got: Vec<_> = totals.iter().map(|t| (t.measure.as_str(), t.facilities, t.denominator, t.numerator)).collect();
        assert_eq!(got, [("ASC-2", 1, 40, 1), ("ASC-9", 2, 15, 10), ("ASC-13", 0, 0, 0)]);
        assert_eq!(totals[2].rate(), None);
    }

    use super::*;
    use records::tests::parse;

    #[test]
    fn sampled_measures_count_only_the_sample_and_unsampled_count_everything() {
        // 70 eligible screening colonoscopies (population ≥ 63 → sample 63), 10 with a burn.
        let rows: Vec<Vec<(&str, &str)>> = (0..70)
            .map(|i| {
                let mut v = vec![("procedures", "45378"), ("diagnoses", "Z12.11"), ("biopsy_or_polypectomy", "N"), ("followup_interval_text", "10 years")];
                if i < 10 {
                    v.push(("burn", "Y"));
                }
                v
            })
            .collect();
        let refs: Vec<&[(&str, &str)]> = rows.iter().map(|v| v.as_slice()).collect();
        let read = parse(&refs);
        assert!(read.rejections.is_empty());
        let options = WebOptions { payment_year: 2025, upload_date: NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(), frequency: Frequency::Year, seed: 3 };
        let npi = records::tests::VALID_NPI;
        let asc9 = summarise_measure(&read.accepted, npi, Measure::Asc9, &options);
        assert_eq!((asc9.population, asc9.sample, asc9.denominator, asc9.numerator), (70, Some((63, Frequency::Year)), 63, 63));
        let asc1 = summarise_measure(&read.accepted, npi, Measure::Asc1, &options);
        assert_eq!((asc1.population, asc1.sample, asc1.denominator, asc1.numerator), (70, None, 70, 10));
        let asc13 = summarise_measure(&read.accepted, npi, Measure::Asc13, &options);
        assert_eq!((asc13.population, asc13.sample, asc13.denominator), (0, Some((0, Frequency::Year)), 0));
        assert_eq!(asc13.rate(), None);
    }
}
