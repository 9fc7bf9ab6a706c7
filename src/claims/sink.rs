//! Streaming writer for canonical tables: rows are appended as typed cells, buffered in column
//! builders and flushed as Parquet row groups (or CSV chunks) every `batch_rows`, so a national
//! extract is written in bounded memory. The file appears under its final name only when complete.

use super::writer_thread::WriterThread;
use super::schema::{Column as ColumnSpec, ColumnType, Table};
use crate::error::{AscqrError, PolarsContext, Result};
use crate::output::TempPath;
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// One typed value of a canonical row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Null,
    Str(&'a str),
    /// Days since 1970-01-01.
    Date(i32),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// A [`Cell`] that owns its text, for rows built ahead of writing (e.g. in parallel).
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedCell {
    Null,
    Str(String),
    Date(i32),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl OwnedCell {
    pub fn as_cell(&self) -> Cell<'_> {
        match self {
            OwnedCell::Null => Cell::Null,
            OwnedCell::Str(s) => Cell::Str(s),
            OwnedCell::Date(d) => Cell::Date(*d),
            OwnedCell::Int(v) => Cell::Int(*v),
            OwnedCell::Float(v) => Cell::Float(*v),
            OwnedCell::Bool(v) => Cell::Bool(*v),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Parquet,
    Csv,
}

impl FileFormat {
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Csv => "csv",
        }
    }
}

enum Builder {
    Str(StringChunkedBuilder),
    Date(PrimitiveChunkedBuilder<Int32Type>),
    Int(PrimitiveChunkedBuilder<Int64Type>),
    Float(PrimitiveChunkedBuilder<Float64Type>),
    Bool(BooleanChunkedBuilder),
}

impl Builder {
    fn new(col: &ColumnSpec, capacity: usize) -> Self {
        let name = PlSmallStr::from(col.name.as_str());
        match col.dtype {
            ColumnType::Str => Builder::Str(StringChunkedBuilder::new(name, capacity)),
            ColumnType::Date => Builder::Date(PrimitiveChunkedBuilder::new(name, capacity)),
            ColumnType::Int => Builder::Int(PrimitiveChunkedBuilder::new(name, capacity)),
            ColumnType::Float => Builder::Float(PrimitiveChunkedBuilder::new(name, capacity)),
            ColumnType::Bool => Builder::Bool(BooleanChunkedBuilder::new(name, capacity)),
        }
    }

    fn finish(self) -> Column {
        match self {
            Builder::Str(b) => b.finish().into_column(),
            Builder::Date(b) => b.finish().into_date().into_column(),
            Builder::Int(b) => b.finish().into_column(),
            Builder::Float(b) => b.finish().into_column(),
            Builder::Bool(b) => b.finish().into_column(),
        }
    }
}

/// The polars schema of a canonical table.
pub fn polars_schema(table: Table) -> Schema {
    columns_schema(&table.spec().columns())
}

/// The polars schema of a list of columns.
pub fn columns_schema(columns: &[ColumnSpec]) -> Schema {
    columns.iter().map(|c| Field::new(c.name.as_str().into(), polars_dtype(c.dtype))).collect()
}

pub fn polars_dtype(t: ColumnType) -> DataType {
    match t {
        ColumnType::Str => DataType::String,
        ColumnType::Date => DataType::Date,
        ColumnType::Int => DataType::Int64,
        ColumnType::Float => DataType::Float64,
        ColumnType::Bool => DataType::Boolean,
    }
}

enum Writer {
    /// Batches are encoded on their own thread while the caller fills the next one (the
    /// generator's rows come from one thread; encoding them took as long as making them).
    Parquet(WriterThread<DataFrame, ()>),
    /// CSV is written with the csv crate, so the text form of each type is ours to pin down:
    /// ISO dates, `true`/`false`, empty for missing.
    Csv(csv::Writer<std::io::BufWriter<std::fs::File>>),
}

/// Typed rows buffered in column builders until taken as one frame: what [`TableSink`] writes
/// a batch at a time, and what [`super::spill::PartitionSpill`] writes a run at a time.
pub struct RowBuffer {
    table: String,
    columns: Vec<ColumnSpec>,
    builders: Vec<Builder>,
    pending: usize,
    capacity: usize,
}

impl RowBuffer {
    pub fn new(table: &str, columns: Vec<ColumnSpec>, capacity: usize) -> Self {
        let builders = columns.iter().map(|c| Builder::new(c, capacity)).collect();
        RowBuffer { table: table.to_string(), columns, builders, pending: 0, capacity }
    }

    pub fn columns(&self) -> &[ColumnSpec] {
        &self.columns
    }

    /// Rows pushed since the last [`RowBuffer::take`].
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Appends one row; `cells` must follow the column order. A cell whose type does not match
    /// its column is a programming error in the caller and is reported, not buffered.
    pub fn push(&mut self, cells: &[Cell<'_>]) -> Result<()> {
        check_width(&self.table, &self.columns, cells)?;
        for (i, (b, cell)) in self.builders.iter_mut().zip(cells).enumerate() {
            match (b, *cell) {
                (Builder::Str(b), Cell::Str(s)) => b.append_value(s),
                (Builder::Str(b), Cell::Null) => b.append_null(),
                (Builder::Date(b), Cell::Date(d)) => b.append_value(d),
                (Builder::Date(b), Cell::Null) => b.append_null(),
                (Builder::Int(b), Cell::Int(v)) => b.append_value(v),
                (Builder::Int(b), Cell::Null) => b.append_null(),
                (Builder::Float(b), Cell::Float(v)) => b.append_value(v),
                (Builder::Float(b), Cell::Int(v)) => b.append_value(v as f64),
                (Builder::Float(b), Cell::Null) => b.append_null(),
                (Builder::Bool(b), Cell::Bool(v)) => b.append_value(v),
                (Builder::Bool(b), Cell::Null) => b.append_null(),
                (_, other) => return Err(cannot_hold(&self.table, &self.columns[i], other)),
            }
        }
        self.pending += 1;
        Ok(())
    }

    /// The rows pushed so far as one frame; the buffer starts empty again.
    pub fn take(&mut self) -> Result<DataFrame> {
        let cap = self.capacity;
        let cols: Vec<Column> = self
            .builders
            .iter_mut()
            .zip(&self.columns)
            .map(|(b, c)| std::mem::replace(b, Builder::new(c, cap)).finish())
            .collect();
        let df = DataFrame::new(self.pending, cols).ctx(|| format!("building a batch of {}", self.table))?;
        self.pending = 0;
        Ok(df)
    }
}

/// Streams rows of one canonical table (or any fixed list of columns) to one file.
pub struct TableSink {
    table: String,
    columns: Vec<ColumnSpec>,
    buffer: RowBuffer,
    batch_rows: usize,
    rows_written: u64,
    writer: Option<Writer>,
    target: TempPath,
    path: PathBuf,
    text_row: Vec<String>,
}

impl TableSink {
    /// Creates `path` (written under a temporary name until [`TableSink::finish`]).
    pub fn create(table: Table, path: &Path, format: FileFormat, batch_rows: usize) -> Result<Self> {
        Self::with_columns(table.name(), table.spec().columns(), path, format, batch_rows)
    }

    /// Like [`TableSink::create`] for a table outside the claims model (e.g. the synthetic truth).
    pub fn with_columns(name: &str, columns: Vec<ColumnSpec>, path: &Path, format: FileFormat, batch_rows: usize) -> Result<Self> {
        let schema = columns_schema(&columns);
        let target = TempPath::new(path)?;
        let file = target.create_buffered()?;
        let ctx = || format!("opening {} for writing", path.display());
        let writer = match format {
            FileFormat::Parquet => {
                let mut batched = ParquetWriter::new(file).with_compression(ParquetCompression::Zstd(None)).batched(&schema).ctx(ctx)?;
                let path = path.to_path_buf();
                Writer::Parquet(WriterThread::spawn("table writer", move |batches: std::sync::mpsc::Receiver<DataFrame>| {
                    for df in batches {
                        batched.write_batch(&df).ctx(|| format!("writing {}", path.display()))?;
                    }
                    batched.finish().ctx(|| format!("finishing {}", path.display()))?;
                    Ok(())
                })?)
            }
            FileFormat::Csv => {
                let mut w = csv::Writer::from_writer(file);
                w.write_record(columns.iter().map(|c| c.name.as_str()))
                    .map_err(|e| AscqrError::Csv { file: path.to_path_buf(), source: e })?;
                Writer::Csv(w)
            }
        };
        let n_columns = columns.len();
        let buffer = RowBuffer::new(name, columns.clone(), batch_rows.min(4096));
        Ok(TableSink {
            table: name.to_string(),
            columns,
            buffer,
            batch_rows: batch_rows.max(1),
            rows_written: 0,
            writer: Some(writer),
            target,
            path: path.to_path_buf(),
            text_row: vec![String::new(); n_columns],
        })
    }

    pub fn columns(&self) -> &[ColumnSpec] {
        &self.columns
    }

    /// Appends one row of owned values (see [`TableSink::push`]).
    pub fn push_owned(&mut self, cells: &[OwnedCell]) -> Result<()> {
        let borrowed: Vec<Cell<'_>> = cells.iter().map(OwnedCell::as_cell).collect();
        self.push(&borrowed)
    }

    /// Appends one row; `cells` must follow the table's column order (see [`RowBuffer::push`]).
    pub fn push(&mut self, cells: &[Cell<'_>]) -> Result<()> {
        if let Some(Writer::Csv(w)) = self.writer.as_mut() {
            check_width(&self.table, &self.columns, cells)?;
            let mut text = std::mem::take(&mut self.text_row);
            for (i, cell) in cells.iter().enumerate() {
                text[i].clear();
                if cell_text(self.columns[i].dtype, *cell, &mut text[i]).is_err() {
                    return Err(cannot_hold(&self.table, &self.columns[i], *cell));
                }
            }
            w.write_record(&text).map_err(|e| AscqrError::Csv { file: self.path.clone(), source: e })?;
            self.text_row = text;
            self.rows_written += 1;
            return Ok(());
        }
        self.buffer.push(cells)?;
        if self.buffer.pending() >= self.batch_rows {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.buffer.pending() == 0 {
            return Ok(());
        }
        let df = self.buffer.take()?;
        self.rows_written += df.height() as u64;
        if let Some(Writer::Parquet(w)) = self.writer.as_mut() {
            w.send(df)?;
        }
        Ok(())
    }

    /// Flushes the last batch, closes the file and moves it into place. Returns rows written.
    pub fn finish(mut self) -> Result<u64> {
        self.flush()?;
        let path = self.path.clone();
        match self.writer.take().expect("writer present until finish") {
            Writer::Parquet(mut w) => {
                // An empty table still gets a valid file with its schema.
                if self.rows_written == 0 {
                    w.send(DataFrame::empty_with_schema(&columns_schema(&self.columns)))?;
                }
                w.finish()?
            }
            Writer::Csv(w) => {
                let buf = w.into_inner().map_err(|e| AscqrError::io(&path, e.into_error()))?;
                buf.into_inner().map_err(|e| AscqrError::io(&path, e.into_error()))?;
            }
        }
        self.target.commit()?;
        Ok(self.rows_written)
    }
}

/// A row must have one cell per column: anything else is a programming error in the caller.
fn check_width(table: &str, columns: &[ColumnSpec], cells: &[Cell<'_>]) -> Result<()> {
    if cells.len() == columns.len() {
        return Ok(());
    }
    Err(AscqrError::Other(format!("internal: {table} row has {} cells, table has {} columns", cells.len(), columns.len())))
}

/// A cell whose type does not match its column: a programming error in the caller, reported.
fn cannot_hold(table: &str, column: &ColumnSpec, cell: Cell<'_>) -> AscqrError {
    AscqrError::Other(format!("internal: {table}.{} cannot hold {cell:?}", column.name))
}

/// Writes the canonical CSV text of a cell; a cell that does not fit the type is an Err.
fn cell_text(dtype: ColumnType, cell: Cell<'_>, out: &mut String) -> std::result::Result<(), ()> {
    use std::fmt::Write as _;
    match (dtype, cell) {
        (_, Cell::Null) => {}
        (ColumnType::Str, Cell::Str(s)) => out.push_str(s),
        (ColumnType::Date, Cell::Date(d)) => {
            let _ = write!(out, "{}", days_to_date(d).format("%Y-%m-%d"));
        }
        (ColumnType::Int, Cell::Int(v)) | (ColumnType::Float, Cell::Int(v)) => {
            let _ = write!(out, "{v}");
        }
        (ColumnType::Float, Cell::Float(v)) => {
            let _ = write!(out, "{v}");
        }
        (ColumnType::Bool, Cell::Bool(v)) => out.push_str(if v { "true" } else { "false" }),
        _ => return Err(()),
    }
    Ok(())
}

/// Days since 1970-01-01 of a calendar date.
pub fn date_to_days(d: chrono::NaiveDate) -> i32 {
    (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid epoch")).num_days() as i32
}

pub fn days_to_date(days: i32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid epoch") + chrono::Duration::days(days as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows reach the file through the writer thread in the order pushed, across batches; a
    /// table given no rows is still a valid file with its columns.
    #[test]
    fn parquet_sinks_write_every_batch_in_order_and_an_empty_table_keeps_its_schema() {
        let dir = tempfile::tempdir().unwrap();
        let columns = vec![ColumnSpec::plain("key", ColumnType::Str), ColumnSpec::plain("n", ColumnType::Int)];
        let path = dir.path().join("rows.parquet");
        let mut sink = TableSink::with_columns("rows", columns.clone(), &path, FileFormat::Parquet, 3).unwrap();
        let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
        for (i, k) in keys.iter().enumerate() {
            sink.push(&[Cell::Str(k), Cell::Int(i as i64)]).unwrap();
        }
        assert_eq!(sink.finish().unwrap(), 10);
        let df = crate::output::read_parquet(&path).unwrap();
        let read: Vec<String> = df.column("key").unwrap().str().unwrap().iter().map(|k| k.unwrap().to_string()).collect();
        assert_eq!(read, keys);

        let empty = dir.path().join("empty.parquet");
        let sink = TableSink::with_columns("rows", columns, &empty, FileFormat::Parquet, 3).unwrap();
        assert_eq!(sink.finish().unwrap(), 0);
        let df = crate::output::read_parquet(&empty).unwrap();
        assert_eq!((df.height(), df.get_column_names().len()), (0, 2));
    }
}
