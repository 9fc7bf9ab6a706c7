//! Validated ingestion: every class of bad input gives the exact error or quarantine reason, and
//! every input row is accounted for.

use ascqr::claims::{validate, Layout, Table};
use indicatif::ProgressBar;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A canonical CSV extract built from rows given as (column, value) pairs; other columns empty.
struct Extract {
    dir: tempfile::TempDir,
    tables: BTreeMap<Table, Vec<Vec<(&'static str, &'static str)>>>,
}

const BENE: &[(&str, &str)] = &[("bene_id", "B1"), ("birth_date", "1950-03-02"), ("sex", "2")];
const ENROL: &[(&str, &str)] = &[
    ("bene_id", "B1"),
    ("year", "2022"),
    ("first_month", "1"),
    ("last_month", "12"),
    ("part_a", "true"),
    ("part_b", "true"),
    ("medicare_advantage", "false"),
];
const CARRIER: &[(&str, &str)] = &[
    ("claim_id", "C1"),
    ("line_num", "1"),
    ("bene_id", "B1"),
    ("claim_from_date", "2022-05-04"),
    ("claim_thru_date", "2022-05-04"),
    ("line_first_date", "2022-05-04"),
    ("hcpcs", "45378"),
    ("place_of_service", "24"),
    ("billing_npi", "1234567893"),
    ("provider_specialty", "49"),
    ("service_count", "1"),
    ("principal_dx", "Z1211"),
    ("dx_1", "Z1211"),
    ("dx_2", "I509"),
    ("dx_version", "0"),
];
const OUTPATIENT: &[(&str, &str)] = &[
    ("claim_id", "O1"),
    ("line_num", "1"),
    ("bene_id", "B1"),
    ("provider_ccn", "220171"),
    ("claim_from_date", "2022-05-06"),
    ("claim_thru_date", "2022-05-06"),
    ("bill_type", "131"),
    ("revenue_center", "0450"),
    ("hcpcs", "99284"),
    ("units", "1"),
    ("principal_dx", "R1084"),
    ("dx_version", "0"),
];
const INPATIENT: &[(&str, &str)] = &[
    ("claim_id", "I1"),
    ("bene_id", "B1"),
    ("provider_ccn", "220171"),
    ("admission_date", "2022-05-07"),
    ("discharge_date", "2022-05-09"),
    ("claim_from_date", "2022-05-07"),
    ("claim_thru_date", "2022-05-09"),
    ("principal_dx", "K5732"),
    ("dx_version", "0"),
    ("proc_1", "0DTJ4ZZ"),
    ("proc_version", "0"),
];

impl Extract {
    fn valid() -> Self {
        let mut tables = BTreeMap::new();
        tables.insert(Table::Beneficiaries, vec![BENE.to_vec()]);
        tables.insert(Table::Enrollment, vec![ENROL.to_vec()]);
        tables.insert(Table::Carrier, vec![CARRIER.to_vec()]);
        tables.insert(Table::Outpatient, vec![OUTPATIENT.to_vec()]);
        tables.insert(Table::Inpatient, vec![INPATIENT.to_vec()]);
        Extract { dir: tempfile::tempdir().unwrap(), tables }
    }

    /// Adds a copy of the table's first row with some values replaced.
    fn with_row(mut self, table: Table, changes: &[(&'static str, &'static str)]) -> Self {
        let mut row = self.tables[&table][0].clone();
        for (k, v) in changes {
            match row.iter_mut().find(|(c, _)| c == k) {
                Some(cell) => cell.1 = v,
                None => row.push((k, v)),
            }
        }
        self.tables.get_mut(&table).unwrap().push(row);
        self
    }

    fn claims(&self) -> PathBuf {
        self.dir.path().join("claims")
    }

    fn write(&self) -> &Self {
        self.write_without(None, None)
    }

    /// Writes every table; `skip_table` is left out, `drop_column` is left out of every header.
    fn write_without(&self, skip_table: Option<Table>, drop_column: Option<&str>) -> &Self {
        std::fs::create_dir_all(self.claims()).unwrap();
        for (t, rows) in &self.tables {
            if Some(*t) == skip_table {
                continue;
            }
            let names: Vec<String> =
                t.spec().column_names().into_iter().filter(|n| Some(n.as_str()) != drop_column).collect();
            let mut w = csv::Writer::from_path(self.claims().join(format!("{}.csv", t.name()))).unwrap();
            w.write_record(&names).unwrap();
            for row in rows {
                let rec: Vec<&str> =
                    names.iter().map(|n| row.iter().find(|(c, _)| c == n).map(|(_, v)| *v).unwrap_or("")).collect();
                w.write_record(&rec).unwrap();
            }
            w.flush().unwrap();
        }
        self
    }

    fn rejects(&self) -> PathBuf {
        self.dir.path().join("rejects.csv")
    }

    fn validate(&self) -> ascqr::Result<ascqr::claims::ValidationReport> {
        validate(&self.claims(), Layout::Canonical, &self.rejects(), &ProgressBar::hidden())
    }

    fn file(&self, t: Table) -> String {
        self.claims().join(format!("{}.csv", t.name())).display().to_string()
    }
}

fn no_output_left(dir: &Path) {
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("rejects"))
        .collect();
    assert!(leftovers.is_empty(), "partial output left behind: {leftovers:?}");
}

#[test]
fn a_valid_extract_has_no_rejects_and_every_row_is_counted() {
    let x = Extract::valid();
    let report = x.write().validate().unwrap();
    assert_eq!(report.total_rejected(), 0);
    for t in &report.tables {
        assert_eq!(t.rows_read, 1, "{}", t.table);
        assert_eq!(t.rows_accepted, 1, "{}", t.table);
        assert!(t.is_balanced());
    }
    let rejects = std::fs::read_to_string(x.rejects()).unwrap();
    assert_eq!(rejects, "table,source_file,source_row,reason,column,value,record\n");
    assert!(report.summary_table().contains("no rows rejected"));
}

#[test]
fn a_missing_table_is_an_error_naming_the_directory_and_table() {
    let x = Extract::valid();
    x.write_without(Some(Table::Inpatient), None);
    let e = x.validate().unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: table `inpatient` not found (looked for inpatient.parquet, inpatient.csv or a inpatient/ folder of .parquet/.csv files)",
            x.claims().display()
        )
    );
    no_output_left(x.dir.path());
}

#[test]
fn a_missing_column_is_an_error_naming_file_and_column() {
    let x = Extract::valid();
    x.write_without(None, Some("revenue_center"));
    let e = x.validate().unwrap_err().to_string();
    assert_eq!(e, format!("{}: missing column `revenue_center` (table outpatient)", x.file(Table::Outpatient)));
    no_output_left(x.dir.path());
}

#[test]
fn an_unparseable_date_names_file_row_column_and_value() {
    let x = Extract::valid().with_row(Table::Carrier, &[("claim_from_date", "2022-13-01")]);
    let e = x.write().validate().unwrap_err().to_string();
    assert_eq!(
        e,
        format!("{}: row 2, column `claim_from_date`: value \"2022-13-01\" is not a date (2022-01-31, 20220131, 31-Jan-2022 or 31JAN2022)", x.file(Table::Carrier))
    );
    no_output_left(x.dir.path());
}

#[test]
fn a_negative_count_names_file_row_column_and_value() {
    let x = Extract::valid().with_row(Table::Outpatient, &[("units", "-2")]);
    let e = x.write().validate().unwrap_err().to_string();
    assert_eq!(e, format!("{}: row 2, column `units`: value \"-2\" is not a non-negative count", x.file(Table::Outpatient)));
}

#[test]
fn a_non_number_and_a_bad_boolean_are_errors() {
    let x = Extract::valid().with_row(Table::Carrier, &[("line_num", "one")]);
    let e = x.write().validate().unwrap_err().to_string();
    assert_eq!(e, format!("{}: row 2, column `line_num`: value \"one\" is not an integer", x.file(Table::Carrier)));
    let y = Extract::valid().with_row(Table::Enrollment, &[("part_b", "maybe")]);
    let e = y.write().validate().unwrap_err().to_string();
    assert_eq!(e, format!("{}: row 2, column `part_b`: value \"maybe\" is not true or false (also T/F, Y/N, yes/no, 1/0, any case)", y.file(Table::Enrollment)));
}

#[test]
fn a_row_with_the_wrong_number_of_fields_names_file_and_row() {
    let x = Extract::valid();
    x.write();
    let path = x.claims().join("beneficiaries.csv");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("B2,1950-01-01\n");
    std::fs::write(&path, text).unwrap();
    let e = x.validate().unwrap_err().to_string();
    assert_eq!(e, format!("{}: row 2: has 2 fields, the header has 4", path.display()));
}

#[test]
fn malformed_codes_are_quarantined_with_their_reason_and_counted() {
    let x = Extract::valid()
        .with_row(Table::Carrier, &[("hcpcs", "4537")])
        .with_row(Table::Carrier, &[("dx_2", "I50.9")])
        .with_row(Table::Carrier, &[("place_of_service", "2A")])
        .with_row(Table::Carrier, &[("billing_npi", ""), ("line_num", "5")])
        .with_row(Table::Outpatient, &[("revenue_center", "450")])
        .with_row(Table::Outpatient, &[("revenue_center", "")])
        .with_row(Table::Inpatient, &[("proc_1", "0DTJ4ZO")])
        .with_row(Table::Inpatient, &[("principal_dx", "57K32")]);
    let report = x.write().validate().unwrap();
    let by_table: BTreeMap<&str, &ascqr::claims::TableReport> = report.tables.iter().map(|t| (t.table.as_str(), t)).collect();

    let carrier = by_table["carrier"];
    assert_eq!((carrier.rows_read, carrier.rows_accepted, carrier.rows_rejected), (5, 2, 3));
    assert_eq!(carrier.rejected_by_reason["malformed HCPCS code in hcpcs"], 1);
    assert_eq!(carrier.rejected_by_reason["malformed ICD-10-CM code in dx_2"], 1);
    assert_eq!(carrier.rejected_by_reason["malformed place of service code in place_of_service"], 1);

    let outpatient = by_table["outpatient"];
    assert_eq!((outpatient.rows_read, outpatient.rows_accepted, outpatient.rows_rejected), (3, 1, 2));
    assert_eq!(outpatient.rejected_by_reason["malformed revenue center code in revenue_center"], 1);
    assert_eq!(outpatient.rejected_by_reason["required value missing in revenue_center"], 1);

    let inpatient = by_table["inpatient"];
    assert_eq!(inpatient.rejected_by_reason["malformed ICD-10-PCS code in proc_1"], 1);
    assert_eq!(inpatient.rejected_by_reason["malformed ICD-10-CM code in principal_dx"], 1);

    for t in &report.tables {
        assert!(t.is_balanced(), "{}", t.table);
        assert_eq!(t.rows_read, t.rows_accepted + t.rows_rejected, "{}", t.table);
    }

    // The reject file has one line per rejected row, with file, row, reason, column and value.
    let mut reader = csv::Reader::from_path(x.rejects()).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len() as u64, report.total_rejected());
    let hcpcs = rows.iter().find(|r| &r[3] == "malformed HCPCS code in hcpcs").unwrap();
    assert_eq!(&hcpcs[0], "carrier");
    assert_eq!(&hcpcs[1], x.file(Table::Carrier));
    assert_eq!(&hcpcs[2], "2");
    assert_eq!(&hcpcs[4], "hcpcs");
    assert_eq!(&hcpcs[5], "4537");
    assert!(hcpcs[6].contains("\"claim_id\":\"C1\""));
    assert!(report.summary_table().contains("malformed HCPCS code in hcpcs"));
}

#[test]
fn icd9_codes_are_checked_as_icd9_when_the_version_says_so() {
    let x = Extract::valid()
        .with_row(Table::Carrier, &[("principal_dx", "V7651"), ("dx_1", "V7651"), ("dx_2", "4280"), ("dx_version", "9"), ("line_num", "2")]);
    let report = x.write().validate().unwrap();
    assert_eq!(report.total_rejected(), 0);
}

/// Parquet: a column of the wrong type is an error naming file, column and both types; a
/// malformed code in a well-typed file is quarantined exactly as in CSV.
#[test]
fn parquet_type_errors_and_quarantine() {
    use polars::prelude::*;
    let x = Extract::valid();
    x.write();
    // Rewrite beneficiaries as Parquet with birth_date stored as text.
    std::fs::remove_file(x.claims().join("beneficiaries.csv")).unwrap();
    let path = x.claims().join("beneficiaries.parquet");
    let mut df = DataFrame::new(
        2,
        vec![
            Column::new("bene_id".into(), ["B1", "B2"]),
            Column::new("birth_date".into(), ["1950-03-02", "1949-01-01"]),
            Column::new("sex".into(), ["2", "X"]),
            Column::new("death_date".into(), [None::<&str>, None]),
        ],
    )
    .unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
    let e = x.validate().unwrap_err().to_string();
    assert_eq!(e, format!("{}: column `birth_date` has type str, expected date", path.display()));

    let birth = df.column("birth_date").unwrap().as_materialized_series().str().unwrap().as_date(Some("%Y-%m-%d"), false).unwrap();
    let death = Column::new("death_date".into(), [None::<i32>, None]).cast(&DataType::Date).unwrap();
    let mut typed = DataFrame::new(
        2,
        vec![df.column("bene_id").unwrap().clone(), birth.into_series().into_column(), df.column("sex").unwrap().clone(), death],
    )
    .unwrap();
    ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut typed).unwrap();
    let report = x.validate().unwrap();
    let bene = report.tables.iter().find(|t| t.table == "beneficiaries").unwrap();
    assert_eq!((bene.rows_read, bene.rows_accepted, bene.rows_rejected), (2, 1, 1));
    assert_eq!(bene.rejected_by_reason["malformed sex code in sex"], 1);
}

#[test]
fn a_table_may_be_a_folder_of_files_such_as_hive_year_partitions() {
    let x = Extract::valid().with_row(Table::Carrier, &[("claim_id", "C2")]);
    x.write();
    let carrier = x.claims().join("carrier.csv");
    let folder = x.claims().join("carrier").join("year=2022");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::rename(&carrier, folder.join("part-0.csv")).unwrap();
    // A second part with other claims (the same claims twice would be duplicate claim lines).
    let part = std::fs::read_to_string(folder.join("part-0.csv")).unwrap().replace("\nC", "\nD");
    std::fs::write(folder.join("part-1.csv"), part).unwrap();
    let report = x.validate().unwrap();
    let c = report.tables.iter().find(|t| t.table == "carrier").unwrap();
    assert_eq!((c.files, c.rows_read, c.rows_accepted), (2, 4, 4));
}

#[test]
fn inconsistent_rows_are_quarantined_with_their_reason() {
    let x = Extract::valid()
        .with_row(Table::Inpatient, &[("discharge_date", "2022-05-01")])
        .with_row(Table::Carrier, &[("claim_thru_date", "2022-05-01")])
        .with_row(Table::Enrollment, &[("last_month", "13")])
        .with_row(Table::Enrollment, &[("first_month", "6"), ("last_month", "5")]);
    let report = x.write().validate().unwrap();
    let get = |t: &str| report.tables.iter().find(|r| r.table == t).unwrap().clone();
    assert_eq!(get("inpatient").rejected_by_reason["discharge before admission"], 1);
    assert_eq!(get("carrier").rejected_by_reason["claim_thru_date before claim_from_date"], 1);
    assert_eq!(get("enrollment").rejected_by_reason["month outside 1-12 in last_month"], 1);
    assert_eq!(get("enrollment").rejected_by_reason["last_month before first_month"], 1);
    for t in &report.tables {
        assert!(t.is_balanced());
    }
}

#[test]
fn repeated_claim_lines_are_quarantined_not_counted_twice() {
    let x = Extract::valid()
        .with_row(Table::Carrier, &[]) // the same claim line again
        .with_row(Table::Carrier, &[("line_num", "2")]) // another line of the same claim
        .with_row(Table::Outpatient, &[])
        .with_row(Table::Inpatient, &[]) // one row per inpatient claim
        .with_row(Table::Beneficiaries, &[]);
    let report = x.write().validate().unwrap();
    let get = |t: &str| report.tables.iter().find(|r| r.table == t).unwrap().clone();
    let carrier = get("carrier");
    assert_eq!((carrier.rows_read, carrier.rows_accepted, carrier.rows_rejected), (3, 2, 1));
    assert_eq!(carrier.rejected_by_reason["duplicate claim line (claim_id and line_num of an earlier row)"], 1);
    assert_eq!(get("outpatient").rejected_by_reason["duplicate claim line (claim_id and line_num of an earlier row)"], 1);
    assert_eq!(get("inpatient").rejected_by_reason["duplicate claim (claim_id of an earlier row)"], 1);
    assert_eq!(get("beneficiaries").rejected_by_reason["duplicate beneficiary (bene_id of an earlier row)"], 1);
    // The reject file names the row (the second) and the repeated column.
    let rejects = std::fs::read_to_string(x.rejects()).unwrap();
    let line = rejects.lines().find(|l| l.contains("duplicate claim line") && l.contains("carrier")).unwrap();
    assert!(line.contains(",2,") && line.contains("line_num"), "{line}");

    // The same through the Parquet path.
    use polars::prelude::*;
    std::fs::remove_file(x.claims().join("beneficiaries.csv")).unwrap();
    let birth = Column::new("birth_date".into(), [0i32, 0, 0]).cast(&DataType::Date).unwrap();
    let death = Column::new("death_date".into(), [None::<i32>, None, None]).cast(&DataType::Date).unwrap();
    let mut df = DataFrame::new(3, vec![Column::new("bene_id".into(), ["B1", "B2", "B1"]), birth, Column::new("sex".into(), ["1", "2", "1"]), death])
        .unwrap();
    ParquetWriter::new(std::fs::File::create(x.claims().join("beneficiaries.parquet")).unwrap()).finish(&mut df).unwrap();
    let report = x.validate().unwrap();
    let bene = report.tables.iter().find(|t| t.table == "beneficiaries").unwrap();
    assert_eq!((bene.rows_read, bene.rows_accepted, bene.rows_rejected), (3, 2, 1));
    assert_eq!(bene.rejected_by_reason["duplicate beneficiary (bene_id of an earlier row)"], 1);
}

/// Lines of one claim naming two beneficiaries would be split between the cohort's batches of
/// beneficiaries; the later line is quarantined, on the CSV and the Parquet paths.
#[test]
fn a_claim_line_naming_another_beneficiary_is_quarantined() {
    let reason = "claim line names another beneficiary than the claim's earlier lines";
    let x = Extract::valid()
        .with_row(Table::Carrier, &[("line_num", "2"), ("bene_id", "B2")]) // claim C1, another patient
        .with_row(Table::Carrier, &[("line_num", "3")]) // claim C1, its own patient
        .with_row(Table::Carrier, &[("claim_id", "C2"), ("bene_id", "B2")]) // another claim of B2
        .with_row(Table::Outpatient, &[("line_num", "2"), ("bene_id", "B2")]);
    let report = x.write().validate().unwrap();
    let get = |r: &ascqr::claims::ValidationReport, t: &str| r.tables.iter().find(|r| r.table == t).unwrap().clone();
    let carrier = get(&report, "carrier");
    assert_eq!((carrier.rows_read, carrier.rows_accepted, carrier.rows_rejected), (4, 3, 1));
    assert_eq!(carrier.rejected_by_reason[reason], 1);
    assert_eq!(get(&report, "outpatient").rejected_by_reason[reason], 1);
    // The reject file names the second row and the column, not the beneficiary ids.
    let rejects = std::fs::read_to_string(x.rejects()).unwrap();
    let line = rejects.lines().find(|l| l.contains(reason) && l.starts_with("carrier")).unwrap();
    assert!(line.contains(",2,") && line.contains(",bene_id,(differs from the claim's earlier lines),"), "{line}");

    // The same carrier file as Parquet, typed as the canonical model says.
    use ascqr::claims::ColumnType;
    use polars::prelude::*;
    let csv_path = x.claims().join("carrier.csv");
    let text = CsvReadOptions::default().with_infer_schema_length(Some(0)).try_into_reader_with_file_path(Some(csv_path.clone())).unwrap().finish().unwrap();
    let columns: Vec<polars::prelude::Column> = Table::Carrier
        .spec()
        .columns()
        .iter()
        .map(|c| {
            let s = text.column(c.name.as_str()).unwrap().as_materialized_series().clone();
            match c.dtype {
                ColumnType::Date => s.str().unwrap().as_date(Some("%Y-%m-%d"), false).unwrap().into_series().into_column(),
                ColumnType::Int => s.cast(&DataType::Int64).unwrap().into_column(),
                ColumnType::Float => s.cast(&DataType::Float64).unwrap().into_column(),
                ColumnType::Str => s.into_column(),
                ColumnType::Bool => panic!("no boolean column on the carrier file"),
            }
        })
        .collect();
    let mut df = DataFrame::new(text.height(), columns).unwrap();
    std::fs::remove_file(&csv_path).unwrap();
    ParquetWriter::new(std::fs::File::create(x.claims().join("carrier.parquet")).unwrap()).finish(&mut df).unwrap();
    let report = x.validate().unwrap();
    let carrier = get(&report, "carrier");
    assert_eq!((carrier.rows_read, carrier.rows_accepted, carrier.rows_rejected), (4, 3, 1));
    assert_eq!(carrier.rejected_by_reason[reason], 1);
}
