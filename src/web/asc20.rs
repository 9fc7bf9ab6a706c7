//! ASC-20 COVID-19 Vaccination Coverage Among Health Care Personnel (manual L1978-1995).
//!
//! ASC-20 is submitted to CDC's NHSN, not to HQR (L331-332, L1982): it has no column in the HQR
//! batch file and is reported only in `web_measures.csv`. Input: a facility-level CSV, one row
//! per facility and self-selected week:
//! `facility_npi, week_start, eligible_personnel, contraindicated, completed_course`.
//! Rate = completed / (eligible − contraindicated) (denominator L1989-1990, numerator
//! L1991-1994). Who counts as HCP and how weeks roll up are NHSN matters (A15): each week is
//! reported as its own row.

use super::records::{for_each_row, is_valid_npi, parse_date, Parsed, Rejection};
use crate::error::{AscqrError, Result};
use chrono::{Datelike, NaiveDate};
use std::path::Path;

pub const PERSONNEL_COLUMNS: [&str; 5] = ["facility_npi", "week_start", "eligible_personnel", "contraindicated", "completed_course"];

#[derive(Debug, Clone, PartialEq)]
pub struct PersonnelWeek {
    pub row: u64,
    pub facility_npi: String,
    pub week_start: NaiveDate,
    pub eligible_personnel: u64,
    pub contraindicated: u64,
    pub completed_course: u64,
}

impl PersonnelWeek {
    /// "HCP eligible ... excluding persons with contraindications" (L1989-1990).
    pub fn denominator(&self) -> u64 {
        self.eligible_personnel - self.contraindicated
    }
    pub fn rate(&self) -> Option<f64> {
        (self.denominator() > 0).then(|| self.completed_course as f64 / self.denominator() as f64)
    }
}

fn parse_week(file: &Path, row: u64, get: &dyn Fn(&str) -> String, reporting_year: Option<i32>) -> std::result::Result<PersonnelWeek, Vec<Rejection>> {
    let mut problems = Vec::new();
    let mut reject = |column: &str, reason: &str| problems.push(Rejection::new(file, row, column, &get(column), reason));
    let npi = get("facility_npi");
    if !is_valid_npi(&npi) {
        reject("facility_npi", "not a valid NPI (10 digits with a Luhn check digit)");
    }
    let week = parse_date(&get("week_start"));
    match week {
        None => reject("week_start", "expected a date YYYY-MM-DD"),
        Some(w) if reporting_year.is_some_and(|y| w.year() != y) => reject("week_start", "outside the reporting calendar year"),
        _ => {}
    }
    let mut count = |column: &str| -> Option<u64> {
        let v = get(column).parse::<u64>().ok();
        if v.is_none() {
            reject(column, "expected a non-negative integer");
        }
        v
    };
    let (eligible, contraindicated, completed) = (count("eligible_personnel"), count("contraindicated"), count("completed_course"));
    if let (Some(e), Some(c), Some(v)) = (eligible, contraindicated, completed) {
        if c > e {
            reject("contraindicated", "greater than eligible_personnel");
        } else if v > e - c {
            reject("completed_course", "greater than eligible_personnel - contraindicated");
        }
    }
    match (problems.is_empty(), week, eligible, contraindicated, completed) {
        (true, Some(week_start), Some(eligible_personnel), Some(contraindicated), Some(completed_course)) => {
            Ok(PersonnelWeek { row, facility_npi: npi, week_start, eligible_personnel, contraindicated, completed_course })
        }
        _ => Err(problems),
    }
}

pub fn parse_personnel(reader: impl std::io::Read, file: &Path, reporting_year: Option<i32>) -> Result<Parsed<PersonnelWeek>> {
    for_each_row(
        file,
        reader,
        &PERSONNEL_COLUMNS,
        "ASC-20 personnel",
        |row, record, index| {
            let get = |c: &str| index.get(c).and_then(|i| record.get(*i)).unwrap_or("").trim().to_string();
            parse_week(file, row, &get, reporting_year)
        },
    )
}

pub fn read_personnel(path: &Path, reporting_year: Option<i32>) -> Result<Parsed<PersonnelWeek>> {
    let file = std::fs::File::open(path).map_err(|e| AscqrError::io(path, e))?;
    parse_personnel(file, path, reporting_year)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_excludes_contraindicated_personnel_and_bad_rows_are_rejected() {
        let text = "facility_npi,week_start,eligible_personnel,contraindicated,completed_course\n\
                    1234567893,2023-01-02,50,10,30\n\
                    1234567893,2023-01-09,5,6,0\n\
                    1234567890,2023-01-16,-1,0,0\n";
        let read = parse_personnel(text.as_bytes(), Path::new("p.csv"), Some(2023)).unwrap();
        assert_eq!(read.accepted.len(), 1);
        assert_eq!(read.accepted[0].denominator(), 40);
        assert_eq!(read.accepted[0].rate(), Some(0.75));
        let got: Vec<(u64, &str)> = read.rejections.iter().map(|r| (r.row, r.column.as_str())).collect();
        assert_eq!(got, [(3, "contraindicated"), (4, "facility_npi"), (4, "eligible_personnel")]);
    }
}
