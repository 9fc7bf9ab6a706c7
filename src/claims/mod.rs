//! Claims: the canonical model, readers, validation and source adapters.

pub mod ccw;
pub mod cclf;
pub mod extract;
pub mod rif;
pub mod schema;
pub mod shapes;
pub mod sink;
pub mod source;
pub mod spill;
pub mod validate;

pub use schema::{ColumnType, Table};
pub use sink::{Cell, FileFormat, TableSink};
pub use source::{collect_compact, compact_text, scan_table, table_files};
pub use extract::{ingest, validate, IngestManifest, IngestOptions};
pub use validate::{Layout, TableReport, ValidationReport};

use crate::error::Result;
use std::path::Path;

/// Converts a RIF extract into a canonical one in `out_dir` (accepted rows only; rejected rows
/// go to `reject_file`). Returns the same report `validate --layout rif` prints.
pub fn import_rif(
    claims_dir: &Path,
    out_dir: &Path,
    format: FileFormat,
    reject_file: &Path,
    progress: &indicatif::ProgressBar,
) -> Result<ValidationReport> {
    let mut rejects = validate::RejectWriter::create(reject_file)?;
    let mut sink_for = |t: Table| -> Result<Option<Box<dyn validate::AcceptedRows>>> {
        let path = out_dir.join(format!("{}.{}", t.name(), format.extension()));
        Ok(Some(Box::new(TableSink::create(t, &path, format, 100_000)?)))
    };
    let tables = rif::ingest_rif(claims_dir, &mut rejects, &mut sink_for, progress)?;
    rejects.finish()?;
    Ok(ValidationReport {
        claims_dir: claims_dir.to_path_buf(),
        layout: "rif".into(),
        tables,
        reject_file: reject_file.to_path_buf(),
    })
}
