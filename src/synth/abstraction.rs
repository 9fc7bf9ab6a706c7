//! Synthetic chart-abstraction records for the synthetic ASCs, so the web-based measures have
//! something to run on out of the box (`ascqr synth` writes them to `web/`, `ascqr demo` runs
//! `ascqr web` on them).
//!
//! Each record is generated from a *scenario* chosen first — "screening colonoscopy, 10-year
//! interval", "cataract surgery, post-operative survey missing", "general anesthesia of 45
//! minutes", "record with an impossible date" — and the record's fields are written to fit it.
//! The scenario fixes what every measure should say about the record, which goes to
//! `truth/web_records.csv`; the measures' code never produces the truth, so a test comparing the
//! two checks the rules rather than repeating them.
//!
//! Rates are of the order seen in ASC practice, raised for the rare adverse events (ASC-1 to 4)
//! so that a small extract shows some: burn 1 per 1,000 admissions, fall inside the ASC 1 per
//! 1,000 (outside 0.5), wrong site/side/patient/procedure/implant 0.5, hospital transfer 5.
//! About 0.4% of records carry one defect of the kind abstraction files really contain.

use super::plan::{stream, World};
use crate::error::{AscqrError, Result};
use crate::output::AtomicFile;
use crate::web::outcome::Measure;
use crate::web::records::RECORD_COLUMNS;
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What one measure should say about one generated record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    NotInPopulation,
    Excluded(&'static str),
    Denominator,
    Numerator,
}

impl Expected {
    /// `numerator`, `denominator`, `excluded:<reason>` or `not_in_population`.
    pub fn label(&self) -> String {
        match self {
            Expected::NotInPopulation => "not_in_population".into(),
            Expected::Excluded(r) => format!("excluded:{r}"),
            Expected::Denominator => "denominator".into(),
            Expected::Numerator => "numerator".into(),
        }
    }
}

/// One generated record: its fields by column, and what each measure should say about it
/// (in [`Measure::ALL`] order), or the column a reader must reject it for.
#[derive(Debug, Clone)]
pub struct GeneratedRecord {
    pub fields: BTreeMap<&'static str, String>,
    pub kind: &'static str,
    pub expected: [Expected; 8],
    pub defect_column: Option<&'static str>,
}

impl GeneratedRecord {
    fn new(kind: &'static str) -> Self {
        let mut fields: BTreeMap<&'static str, String> = RECORD_COLUMNS.iter().map(|c| (*c, String::new())).collect();
        for c in ["burn", "fall", "wrong_site_side_patient_procedure_implant", "hospital_transfer_admission", "intentional_hypothermia_documented"] {
            fields.insert(c, "N".into());
        }
        GeneratedRecord { fields, kind, expected: [Expected::NotInPopulation; 8], defect_column: None }
    }
    fn set(&mut self, column: &'static str, value: impl Into<String>) {
        debug_assert!(self.fields.contains_key(column), "{column} is a record column");
        self.fields.insert(column, value.into());
    }
    fn expect(&mut self, measure: Measure, e: Expected) {
        let i = Measure::ALL.iter().position(|m| *m == measure).expect("every measure is in ALL");
        self.expected[i] = e;
    }
}

/// What `write_abstraction` wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AbstractionSummary {
    pub facilities: u64,
    pub records: u64,
    pub defective_records: u64,
    pub personnel_rows: u64,
    pub reporting_year: i32,
    pub payment_year: i32,
}

fn time(day: NaiveDate, minutes_after_midnight: i64) -> NaiveDateTime {
    day.and_time(NaiveTime::MIN) + Duration::minutes(minutes_after_midnight)
}

fn stamp(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M").to_string()
}

fn birth_date_for_age(rng: &mut ChaCha8Rng, encounter: NaiveDate, age: i32) -> NaiveDate {
    // A birthday strictly inside (encounter − age − 1 years, encounter − age years] gives exactly `age`.
    let latest = NaiveDate::from_ymd_opt(encounter.year() - age, encounter.month(), encounter.day().min(28)).expect("valid date");
    latest - Duration::days(rng.random_range(0..360))
}

fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    rng.random::<f64>() < p
}

/// ASC-1 to ASC-4: every accepted admission is in the denominator.
fn adverse_events(rng: &mut ChaCha8Rng, r: &mut GeneratedRecord) {
    let flag = |r: &mut GeneratedRecord, rng: &mut ChaCha8Rng, column, measure, p| {
        let event = chance(rng, p);
        r.set(column, if event { "Y" } else { "N" });
        r.expect(measure, if event { Expected::Numerator } else { Expected::Denominator });
    };
    flag(r, rng, "burn", Measure::Asc1, 0.001);
    flag(r, rng, "wrong_site_side_patient_procedure_implant", Measure::Asc3, 0.0005);
    flag(r, rng, "hospital_transfer_admission", Measure::Asc4, 0.005);
    let u: f64 = rng.random();
    let (fall, e) = if u < 0.001 {
        ("inside", Expected::Numerator)
    } else if u < 0.0015 {
        // A fall outside the ASC is a numerator exclusion (manual L623): denominator only.
        ("outside", Expected::Denominator)
    } else {
        ("N", Expected::Denominator)
    };
    r.set("fall", fall);
    r.expect(Measure::Asc2, e);
}

fn screening_colonoscopy(rng: &mut ChaCha8Rng, r: &mut GeneratedRecord, date: NaiveDate) {
    let age = rng.random_range(45..=82);
    r.set("birth_date", birth_date_for_age(rng, date, age).to_string());
    let code = if chance(rng, 0.2) { "G0121" } else { "45378" };
    let incomplete = chance(rng, 0.02);
    r.set("procedures", if incomplete { format!("{code}-53") } else { code.to_string() });
    let history = chance(rng, 0.05);
    r.set("diagnoses", if history { "Z12.11;Z86.010" } else { "Z12.11" });
    let polyp = chance(rng, 0.35);
    r.set("biopsy_or_polypectomy", if polyp { "Y" } else { "N" });
    r.set("anesthesia_type", "sedation");
    if incomplete || history || polyp || !(50..=75).contains(&age) {
        // Still abstracted as the facility would; the measure leaves it out of its population.
        r.set("followup_interval_text", if polyp { "3 years" } else { "10 years" });
        r.set("medical_reason_documented", "N");
        return;
    }
    let u: f64 = rng.random();
    let (text, medical, reason, e) = if u < 0.80 {
        ("10 years", "N", "", Expected::Numerator)
    } else if u < 0.86 {
        ("Repeat colonoscopy in 120 months", "N", "", Expected::Numerator)
    } else if u < 0.89 {
        // A range that includes 10 years is not accepted (manual L2399-2400).
        ("7-10 years", "N", "", Expected::Denominator)
    } else if u < 0.93 {
        ("5 years", "Y", "", Expected::Excluded("medical_reason_with_interval_under_10_years"))
    } else if u < 0.96 {
        ("5 years", "N", "", Expected::Denominator)
    } else if u < 0.98 {
        let e = if age >= 66 { Expected::Excluded("no_followup_age_66_plus_or_life_expectancy") } else { Expected::Denominator };
        ("No repeat colonoscopy needed", "N", "age", e)
    } else {
        ("", "N", "", Expected::Denominator)
    };
    r.set("followup_interval_text", text);
    r.set("medical_reason_documented", medical);
    r.set("no_followup_reason", reason);
    r.expect(Measure::Asc9, e);
}

fn cataract_surgery(rng: &mut ChaCha8Rng, r: &mut GeneratedRecord, date: NaiveDate, reporting_year: i32) {
    let age = rng.random_range(55..=90);
    r.set("birth_date", birth_date_for_age(rng, date, age).to_string());
    let u: f64 = rng.random();
    let code = if u < 0.80 { "66984" } else if u < 0.95 { "66982" } else { "66983" };
    // Co-management modifiers take the case out of ASC-11 (manual L988-990) but not out of ASC-14.
    let comanaged = chance(rng, 0.03);
    r.set("procedures", if comanaged { format!("{code}-55") } else { code.to_string() });
    r.set("diagnoses", "H25.11");
    r.set("anesthesia_type", if chance(rng, 0.7) { "sedation" } else { "local" });
    let vitrectomy = chance(rng, 0.003);
    r.set("unplanned_anterior_vitrectomy", if vitrectomy { "Y" } else { "N" });
    r.expect(Measure::Asc14, if vitrectomy { Expected::Numerator } else { Expected::Denominator });

    let cutoff = NaiveDate::from_ymd_opt(reporting_year, 12, 31).expect("valid") - Duration::days(90);
    let in_population = !comanaged && date <= cutoff;
    let pre: i32 = rng.random_range(40..=75);
    let survey = |r: &mut GeneratedRecord, post: i32, post_instrument: &str, days_after: i64| {
        r.set("vf_pre_instrument", "VF-14");
        r.set("vf_pre_score", pre.to_string());
        r.set("vf_post_instrument", post_instrument);
        r.set("vf_post_score", post.to_string());
        r.set("vf_post_date", (date + Duration::days(days_after)).to_string());
    };
    let u: f64 = rng.random();
    let e = if u < 0.07 {
        r.set("asc11_gcode", "G0913");
        Expected::Numerator
    } else if u < 0.09 {
        r.set("asc11_gcode", "G0915");
        Expected::Denominator
    } else if u < 0.10 {
        r.set("asc11_gcode", "G0914");
        Expected::Excluded("g0914_survey_not_completed")
    } else if u < 0.72 {
        let days = rng.random_range(20..=80);
        survey(r, pre + rng.random_range(5..=30), "VF-14", days);
        Expected::Numerator
    } else if u < 0.79 {
        let days = rng.random_range(20..=80);
        survey(r, pre - rng.random_range(0..=10), "VF-14", days);
        Expected::Denominator
    } else if u < 0.95 {
        // Post-operative survey never returned.
        r.set("vf_pre_instrument", "VF-14");
        r.set("vf_pre_score", pre.to_string());
        Expected::Excluded("surveys_not_both_completed")
    } else if u < 0.98 {
        // Returned after the 90-day window (manual L981-983).
        survey(r, pre + 10, "VF-14", rng.random_range(91..=120));
        Expected::Excluded("surveys_not_both_completed")
    } else {
        // A different instrument after surgery (manual L1003-1005).
        survey(r, pre + 10, "NEI-VFQ-25", 30);
        Expected::Excluded("surveys_not_both_completed")
    };
    r.expect(Measure::Asc11, if in_population { e } else { Expected::NotInPopulation });
}

const SURGERIES: [(&str, &str); 4] = [("29881", "M23.211"), ("49505", "K40.90"), ("47562", "K80.20"), ("64721", "G56.01")];

fn surgery_under_anesthesia(rng: &mut ChaCha8Rng, r: &mut GeneratedRecord, date: NaiveDate) {
    let age = rng.random_range(30..=85);
    r.set("birth_date", birth_date_for_age(rng, date, age).to_string());
    let (code, dx) = SURGERIES[rng.random_range(0..SURGERIES.len())];
    r.set("procedures", code);
    r.set("diagnoses", dx);
    let u: f64 = rng.random();
    let kind = if u < 0.68 { "general" } else if u < 0.88 { "spinal" } else if u < 0.93 { "epidural" } else { "sedation" };
    r.set("anesthesia_type", kind);

    let start = time(date, rng.random_range(7 * 60..=15 * 60));
    let minutes: i64 = if chance(rng, 0.3) { rng.random_range(25..=59) } else if chance(rng, 0.03) { 60 } else { rng.random_range(61..=180) };
    let end = start + Duration::minutes(minutes);
    let arrival = end + Duration::minutes(rng.random_range(0..=10));
    r.set("anesthesia_induction", stamp(start + Duration::minutes(5)));
    r.set("anesthesia_start", stamp(start));
    r.set("anesthesia_end", stamp(end));
    r.set("pacu_arrival", stamp(arrival));
    let warm = |rng: &mut ChaCha8Rng, at: NaiveDateTime| {
        if chance(rng, 0.5) {
            format!("{:.1}F@{}", 96.8 + 0.1 * f64::from(rng.random_range(0..=20)), stamp(at))
        } else {
            format!("{:.1}C@{}", 36.0 + 0.1 * f64::from(rng.random_range(0..=12)), stamp(at))
        }
    };
    let u: f64 = rng.random();
    let (temperatures, normothermic) = if u < 0.93 {
        let at = arrival + Duration::minutes(rng.random_range(0..=15));
        (warm(rng, at), true)
    } else if u < 0.97 {
        // Cold on arrival, warm only after the 15-minute window (manual L1260-1262).
        (format!("96.1F@{};{}", stamp(arrival + Duration::minutes(5)), warm(rng, arrival + Duration::minutes(30))), false)
    } else {
        (warm(rng, arrival + Duration::minutes(20)), false)
    };
    r.set("temperatures", temperatures);

    let u: f64 = rng.random();
    let e = if kind == "sedation" {
        Expected::NotInPopulation
    } else if u < 0.01 {
        // Only induction documented: never a substitute for the start (manual L2491-2493).
        r.set("anesthesia_start", "");
        Expected::Excluded("no_anesthesia_start_time")
    } else if u < 0.015 {
        // Only PACU arrival documented: never a substitute for the end.
        r.set("anesthesia_end", "");
        Expected::Excluded("no_anesthesia_end_time")
    } else if minutes < 60 {
        Expected::Excluded("anesthesia_under_60_minutes")
    } else if u < 0.025 {
        r.set("intentional_hypothermia_documented", "Y");
        Expected::Excluded("intentional_hypothermia")
    } else if normothermic {
        Expected::Numerator
    } else {
        Expected::Denominator
    };
    r.expect(Measure::Asc13, e);
}

fn other_endoscopy(rng: &mut ChaCha8Rng, r: &mut GeneratedRecord, date: NaiveDate) {
    let age = rng.random_range(40..=85);
    r.set("birth_date", birth_date_for_age(rng, date, age).to_string());
    if chance(rng, 0.5) {
        r.set("procedures", "43239");
        r.set("diagnoses", "K21.9");
    } else {
        // A diagnostic colonoscopy with biopsy: not a screening colonoscopy (no Z12.11).
        r.set("procedures", "45380");
        r.set("diagnoses", "K57.30");
    }
    r.set("anesthesia_type", "sedation");
}

/// Replaces one value with a defect the reader must reject the row for; returns its column.
fn add_defect(rng: &mut ChaCha8Rng, r: &mut GeneratedRecord, previous_accepted_id: Option<&str>, reporting_year: i32) -> &'static str {
    match rng.random_range(0..6) {
        0 => {
            r.set("encounter_date", format!("{reporting_year}-02-30"));
            "encounter_date"
        }
        1 => {
            r.set("encounter_date", format!("{}-12-15", reporting_year - 1));
            "encounter_date"
        }
        2 => {
            r.set("anesthesia_type", "twilight");
            "anesthesia_type"
        }
        3 => {
            // 36.5 written with F: a unit mix-up the reader refuses.
            r.set("temperatures", format!("36.5F@{reporting_year}-06-01T10:00"));
            "temperatures"
        }
        4 => {
            r.set("burn", "yes");
            "burn"
        }
        _ => match previous_accepted_id {
            Some(id) => {
                r.set("encounter_id", id);
                "encounter_id"
            }
            None => {
                r.set("burn", "maybe");
                "burn"
            }
        },
    }
}

/// Generates one facility's records for the reporting year.
pub fn facility_records(seed: u64, facility: u64, npi: &str, reporting_year: i32, volume: u32) -> Vec<GeneratedRecord> {
    let mut rng = stream(seed, "abstraction", facility, 0);
    let first = NaiveDate::from_ymd_opt(reporting_year, 1, 1).expect("valid year");
    let days = if NaiveDate::from_ymd_opt(reporting_year, 12, 31).expect("valid").ordinal() == 366 { 366 } else { 365 };
    let mut out: Vec<GeneratedRecord> = Vec::with_capacity(volume as usize);
    let mut previous_accepted: Option<String> = None;
    for k in 0..volume {
        let date = first + Duration::days(rng.random_range(0..days));
        let u: f64 = rng.random();
        let kind = if u < 0.35 {
            "screening_colonoscopy"
        } else if u < 0.65 {
            "cataract_surgery"
        } else if u < 0.90 {
            "surgery_under_anesthesia"
        } else {
            "other_endoscopy"
        };
        let mut r = GeneratedRecord::new(kind);
        r.set("facility_npi", npi);
        let id = format!("SYN{facility:05}-{k:05}");
        r.set("encounter_id", id.clone());
        r.set("encounter_date", date.to_string());
        match kind {
            "screening_colonoscopy" => screening_colonoscopy(&mut rng, &mut r, date),
            "cataract_surgery" => cataract_surgery(&mut rng, &mut r, date, reporting_year),
            "surgery_under_anesthesia" => surgery_under_anesthesia(&mut rng, &mut r, date),
            _ => other_endoscopy(&mut rng, &mut r, date),
        }
        adverse_events(&mut rng, &mut r);
        if chance(&mut rng, 0.004) {
            r.defect_column = Some(add_defect(&mut rng, &mut r, previous_accepted.as_deref(), reporting_year));
            r.expected = [Expected::NotInPopulation; 8];
        } else {
            previous_accepted = Some(id);
        }
        out.push(r);
    }
    out
}

/// Facilities with web records: every synthetic ASC that performs any claims measure's
/// procedures, in NPI pool order.
fn facilities(world: &World) -> Vec<usize> {
    let set: BTreeSet<usize> = world.measures.iter().flat_map(|m| m.facilities.iter().map(|f| f.asc)).collect();
    set.into_iter().collect()
}

/// Writes `web/records.csv`, `web/personnel.csv` and `truth/web_records.csv` under `out`.
pub fn write_abstraction(world: &World, out: &Path) -> Result<AbstractionSummary> {
    let reporting_year = world.options.last_year;
    let web_dir = out.join("web");
    let truth_dir = out.join("truth");
    for d in [&web_dir, &truth_dir] {
        std::fs::create_dir_all(d).map_err(|e| AscqrError::io(d, e))?;
    }
    let csv_err = |path: &Path| {
        let path = path.to_path_buf();
        move |e: csv::Error| AscqrError::Other(format!("writing {}: {e}", path.display()))
    };
    let records_path = web_dir.join("records.csv");
    let truth_path = truth_dir.join("web_records.csv");
    let personnel_path = web_dir.join("personnel.csv");
    let mut records = csv::Writer::from_writer(AtomicFile::create(&records_path)?);
    let mut truth = csv::Writer::from_writer(AtomicFile::create(&truth_path)?);
    let mut personnel = csv::Writer::from_writer(AtomicFile::create(&personnel_path)?);
    records.write_record(RECORD_COLUMNS).map_err(csv_err(&records_path))?;
    let mut header = vec!["source_row", "facility_npi", "kind", "defect_column"];
    let labels: Vec<String> = Measure::ALL.iter().map(|m| m.label().replace('-', "").to_lowercase()).collect();
    header.extend(labels.iter().map(String::as_str));
    truth.write_record(&header).map_err(csv_err(&truth_path))?;
    personnel.write_record(crate::web::asc20::PERSONNEL_COLUMNS).map_err(csv_err(&personnel_path))?;

    let mut summary = AbstractionSummary { reporting_year, payment_year: reporting_year + 2, ..Default::default() };
    // Annual volumes: log-normal, median about 150 admissions, so some facilities reach the
    // sampled tiers of Section 2 (63+ cases of a measure) and most do not.
    let volume_distribution = LogNormal::<f64>::new(5.0, 0.8).expect("valid parameters");
    let mut line: u64 = 1;
    for asc in facilities(world) {
        let npi = &world.asc_npis[asc];
        let mut rng = stream(world.options.seed, "abstraction-volume", asc as u64, 0);
        let volume = volume_distribution.sample(&mut rng).round().clamp(20.0, 3000.0) as u32;
        for r in facility_records(world.options.seed, asc as u64, npi, reporting_year, volume) {
            line += 1;
            records.write_record(RECORD_COLUMNS.iter().map(|c| r.fields[c].as_str())).map_err(csv_err(&records_path))?;
            let mut row = vec![line.to_string(), npi.clone(), r.kind.to_string(), r.defect_column.unwrap_or("").to_string()];
            row.extend(r.expected.iter().map(|e| if r.defect_column.is_some() { String::new() } else { e.label() }));
            truth.write_record(&row).map_err(csv_err(&truth_path))?;
            summary.records += 1;
            summary.defective_records += u64::from(r.defect_column.is_some());
        }
        // One self-selected week per facility for ASC-20 (NHSN).
        let eligible: u64 = rng.random_range(20..=200);
        let contraindicated: u64 = rng.random_range(0..=3);
        let completed = ((eligible - contraindicated) as f64 * rng.random_range(0.6..0.98)).round() as u64;
        let week = NaiveDate::from_isoywd_opt(reporting_year, 40, chrono::Weekday::Mon).expect("week 40 exists");
        personnel
            .write_record([npi.clone(), week.to_string(), eligible.to_string(), contraindicated.to_string(), completed.to_string()])
            .map_err(csv_err(&personnel_path))?;
        summary.facilities += 1;
        summary.personnel_rows += 1;
    }
    for (w, path) in [(records, &records_path), (truth, &truth_path), (personnel, &personnel_path)] {
        w.into_inner().map_err(|e| AscqrError::Other(format!("writing {}: {e}", path.display())))?.commit()?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birth_dates_give_the_intended_age() {
        let mut rng = stream(1, "t", 0, 0);
        for (y, m, d) in [(2023, 1, 1), (2023, 2, 28), (2024, 2, 29), (2023, 12, 31)] {
            let on = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            for age in [50, 66, 75] {
                for _ in 0..50 {
                    let b = birth_date_for_age(&mut rng, on, age);
                    assert_eq!(crate::web::records::completed_years(b, on), age as u32, "{b} on {on}");
                }
            }
        }
    }

    #[test]
    fn a_facility_gets_every_kind_and_some_defects() {
        let recs = facility_records(1, 3, "1234567893", 2023, 3000);
        let kinds: BTreeSet<&str> = recs.iter().map(|r| r.kind).collect();
        assert_eq!(kinds.len(), 4);
        let defects = recs.iter().filter(|r| r.defect_column.is_some()).count();
        assert!((2..=40).contains(&defects), "{defects} defective of 3000");
        // Deterministic for a seed.
        let again = facility_records(1, 3, "1234567893", 2023, 3000);
        assert!(recs.iter().zip(&again).all(|(a, b)| a.fields == b.fields));
    }
}
