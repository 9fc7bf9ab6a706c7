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
pub mod writer_thread;

pub use schema::{ColumnType, Table};
pub use sink::{Cell, FileFormat, TableSink};
pub use source::{collect_compact, compact_text, scan_table, table_files};
pub use extract::{ingest, validate, IngestManifest, IngestOptions};
pub use validate::{Layout, TableReport, ValidationReport};
