//! Benchmark: `ascqr ingest` read throughput beside a plain polars read of the same files.
//!
//! `benches/ingest.sh` runs it twice per extract under GNU time, once per mode, so each mode's
//! peak memory is its own process's:
//!
//!   ASCQR_EXTRACT=DIR INGEST_MODE=scan   cargo bench --bench ingest   # polars reads every table
//!   ASCQR_EXTRACT=DIR INGEST_MODE=ingest cargo bench --bench ingest   # ascqr ingest of DIR
//!   INGEST_LAYOUT=ccw                                                   # DIR is a CCW delivery
//!
//! The plain read is the reference for read bandwidth: it decodes every column of every row of
//! the five canonical tables, a million rows at a time for Parquet, and keeps nothing. Ingest
//! does that and more (every value checked, rows hashed for repeats, sharded, sorted, written),
//! so the ratio shows how far it is from the limit. Prints one line: mode, rows, seconds, rows
//! per second. No timing is asserted anywhere.

use ascqr::claims::{ingest, table_files, IngestOptions, Layout, Table};
use indicatif::ProgressBar;
use polars::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

/// Rows per Parquet slice of the plain read.
const SLICE_ROWS: usize = 1_000_000;

fn main() {
    let Ok(dir) = std::env::var("ASCQR_EXTRACT").map(PathBuf::from) else {
        eprintln!("set ASCQR_EXTRACT to a canonical extract folder (see benches/ingest.sh)");
        return;
    };
    let mode = std::env::var("INGEST_MODE").unwrap_or_else(|_| "scan".into());
    let t = Instant::now();
    let rows: u64 = match mode.as_str() {
        "scan" => Table::ALL
            .iter()
            .map(|&table| {
                table_files(&dir, table)
                    .expect("table files")
                    .iter()
                    .map(|f| match f.format {
                        // Every column decoded, a slice of rows at a time (as ingest reads), so the
                        // reference's memory does not grow with the file.
                        ascqr::claims::source::SourceFormat::Parquet => {
                            let open = || std::fs::File::open(&f.path).expect("open");
                            let total = ParquetReader::new(open()).num_rows().expect("rows");
                            let mut offset = 0;
                            while offset < total {
                                let len = SLICE_ROWS.min(total - offset);
                                let df = ParquetReader::new(open()).with_slice(Some((offset, len))).finish().expect("read");
                                assert_eq!(df.height(), len);
                                offset += len;
                            }
                            total as u64
                        }
                        ascqr::claims::source::SourceFormat::Csv => {
                            let path = PlRefPath::new(f.path.to_string_lossy().as_ref());
                            let lf = LazyCsvReader::new(path).with_has_header(true).with_infer_schema_length(Some(0)).finish().expect("scan");
                            lf.collect().expect("read").height() as u64
                        }
                    })
                    .sum::<u64>()
            })
            .sum(),
        "ingest" => {
            let layout = match std::env::var("INGEST_LAYOUT").as_deref() {
                Ok("ccw") => Layout::Ccw,
                Ok("rif") => Layout::Rif,
                _ => Layout::Canonical,
            };
            let out = dir.with_extension("bench-extract");
            let manifest = ingest(&dir, &IngestOptions { layout, shards: None }, &out, &ProgressBar::hidden()).expect("ingest");
            std::fs::remove_dir_all(&out).expect("remove the extract");
            manifest.tables.iter().map(|t| t.rows_read).sum()
        }
        other => panic!("INGEST_MODE={other}: expected scan or ingest"),
    };
    let seconds = t.elapsed().as_secs_f64();
    println!("{mode} {rows} rows {seconds:.2} s {:.0} rows/s", rows as f64 / seconds);
}
