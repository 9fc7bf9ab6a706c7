//! Rows split into partitions on disk, written in runs and read back one partition at a time.
//!
//! Why runs and not one open file per partition: a Parquet writer keeps the metadata of every
//! row group it wrote until the file is closed, and with one open writer per shard each row group
//! holds only a shard's share of a batch. The metadata kept then grows with the rows read times
//! the shard count, and the shard count grows with the extract: ingest's peak grew from 1.03 to
//! 1.47 GB between one and three national years (`benches/results/ingest.md`). Here rows are
//! buffered up to `run_rows` (whatever their partition), ordered by partition (stably: read order
//! is kept within a partition), and written as one closed file. One writer is open at a time,
//! whatever the partition count, and memory is bounded by the run size. Reading partition `p`
//! reads its rows from every run, in run order.
//!
//! Why each partition's rows are a Parquet file of their own inside the run (a *segment*, found
//! by its byte range) and not a row group of one Parquet file per run: reading one row group
//! still parses the file's whole footer, which describes every partition's row group. Reading
//! every partition then parsed runs × partitions² column descriptions: on a national year at
//! real density (475 runs, 208 shards) ingest ran 3× slower per row than on the demo year
//! (`benches/results/density.md`). A segment's footer describes its own rows only.
//!
//! Runs are ordered and encoded on a [`WriterThread`] while the reader fills the next one.

use super::schema::Column as ColumnSpec;
use super::sink::{columns_schema, Cell, RowBuffer};
use super::writer_thread::WriterThread;
use crate::error::{AscqrError, PolarsContext, Result};
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// One closed run file and where each partition's segment is in it.
struct Run {
    path: PathBuf,
    /// `(byte offset, byte length)` of each partition's segment, indexed by partition; `None`
    /// where the run holds none of the partition's rows.
    segments: Vec<Option<(u64, usize)>>,
}

/// Rows being split into `partitions` partitions under `dir`.
pub struct PartitionSpill {
    partitions: u32,
    buffer: RowBuffer,
    partition_of_row: Vec<u32>,
    run_rows: usize,
    /// Orders and writes each run; gives back the runs written.
    writer: WriterThread<(DataFrame, Vec<u32>), Vec<Run>>,
}

/// The runs of a finished [`PartitionSpill`].
pub struct Spilled {
    columns: Vec<ColumnSpec>,
    partitions: u32,
    runs: Vec<Run>,
}

impl PartitionSpill {
    /// A spill of rows with `columns` into `partitions` partitions, written to `dir` (created)
    /// every `run_rows` rows.
    pub fn create(dir: &Path, name: &str, columns: Vec<ColumnSpec>, partitions: u32, run_rows: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| AscqrError::io(dir, e))?;
        let partitions = partitions.max(1);
        let (dir, schema) = (dir.to_path_buf(), columns_schema(&columns));
        let writer = WriterThread::spawn("spill writer", move |received: std::sync::mpsc::Receiver<(DataFrame, Vec<u32>)>| {
            let mut runs = Vec::new();
            for (df, partition_of_row) in received {
                let path = dir.join(format!("run-{:06}.parquet", runs.len()));
                runs.push(write_run(&path, &schema, partitions, &df, &partition_of_row)?);
            }
            Ok(runs)
        })?;
        Ok(PartitionSpill {
            partitions,
            buffer: RowBuffer::new(name, columns, run_rows.min(1 << 16)),
            partition_of_row: Vec::new(),
            run_rows: run_rows.max(1),
            writer,
        })
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Appends one row (cells in column order) to `partition`.
    pub fn push(&mut self, partition: u32, cells: &[Cell<'_>]) -> Result<()> {
        self.buffer.push(cells)?;
        self.partition_of_row.push(partition);
        if self.buffer.pending() >= self.run_rows {
            self.flush()?;
        }
        Ok(())
    }

    /// Appends a whole frame (columns as the spill's, in order and type) whose row `i` goes to
    /// `partition_of_row[i]`. Rows pushed before it are written first, so read order is kept.
    pub fn push_frame(&mut self, df: &DataFrame, partition_of_row: &[u32]) -> Result<()> {
        self.flush()?;
        self.send(df.clone(), partition_of_row.to_vec())
    }

    fn flush(&mut self) -> Result<()> {
        if self.buffer.pending() == 0 {
            return Ok(());
        }
        let df = self.buffer.take()?;
        let partition_of_row = std::mem::take(&mut self.partition_of_row);
        self.send(df, partition_of_row)
    }

    /// Hands a run to the writer thread.
    fn send(&mut self, df: DataFrame, partition_of_row: Vec<u32>) -> Result<()> {
        if partition_of_row.len() != df.height() || partition_of_row.iter().any(|&p| p >= self.partitions) {
            return Err(AscqrError::Other(format!(
                "internal: {} rows given {} partitions, each below {}",
                df.height(),
                partition_of_row.len(),
                self.partitions
            )));
        }
        if df.height() == 0 {
            return Ok(());
        }
        self.writer.send((df, partition_of_row))
    }

    /// Writes the rows still buffered and closes the spill for reading.
    pub fn finish(mut self) -> Result<Spilled> {
        self.flush()?;
        let runs = self.writer.finish()?;
        Ok(Spilled { columns: self.buffer.columns().to_vec(), partitions: self.partitions, runs })
    }
}

/// Orders `df`'s rows by partition (a stable counting sort: read order is kept within each
/// partition) and writes them to `path`, each partition's rows as one segment.
fn write_run(path: &Path, schema: &Schema, partitions: u32, df: &DataFrame, partition_of_row: &[u32]) -> Result<Run> {
    use std::io::Write;
    let ctx = || format!("writing {}", path.display());
    // Each segment carries its own schema: one that differs would only fail when read back.
    if df.schema().as_ref() != schema {
        return Err(AscqrError::Other(format!("internal: rows spilled to {} with columns {:?}, not {:?}", path.display(), df.schema(), schema)));
    }
    let mut counts = vec![0usize; partitions as usize];
    for &p in partition_of_row {
        counts[p as usize] += 1;
    }
    let mut starts = Vec::with_capacity(counts.len());
    let mut offset = 0;
    for &n in &counts {
        starts.push(offset);
        offset += n;
    }
    let mut next = starts.clone();
    let mut order = vec![0 as IdxSize; df.height()];
    for (i, &p) in partition_of_row.iter().enumerate() {
        order[next[p as usize]] = i as IdxSize;
        next[p as usize] += 1;
    }
    let mut sorted = df.take(&IdxCa::from_vec("row".into(), order)).ctx(ctx)?;
    sorted.rechunk_mut();
    let mut file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).map_err(|e| AscqrError::io(path, e))?);
    let mut segments = Vec::with_capacity(counts.len());
    let (mut written, mut segment) = (0u64, Vec::new());
    for (&start, &n) in starts.iter().zip(&counts) {
        if n == 0 {
            segments.push(None);
            continue;
        }
        segment.clear();
        // Spilled runs are read once and removed: a light compression keeps the disk use down
        // without the cost of the extract's own Zstd.
        ParquetWriter::new(&mut segment)
            .with_compression(ParquetCompression::Lz4Raw)
            .with_statistics(StatisticsOptions::empty())
            .finish(&mut sorted.slice(start as i64, n))
            .ctx(ctx)?;
        file.write_all(&segment).map_err(|e| AscqrError::io(path, e))?;
        segments.push(Some((written, segment.len())));
        written += segment.len() as u64;
    }
    file.flush().map_err(|e| AscqrError::io(path, e))?;
    Ok(Run { path: path.to_path_buf(), segments })
}

impl Spilled {
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Every row of `partition`, in the order pushed.
    pub fn read(&self, partition: u32) -> Result<DataFrame> {
        use std::io::{Read, Seek, SeekFrom};
        let mut out = DataFrame::empty_with_schema(&columns_schema(&self.columns));
        for run in &self.runs {
            let Some((offset, len)) = run.segments[partition as usize] else { continue };
            let mut segment = vec![0u8; len];
            let mut file = std::fs::File::open(&run.path).map_err(|e| AscqrError::io(&run.path, e))?;
            file.seek(SeekFrom::Start(offset)).and_then(|_| file.read_exact(&mut segment)).map_err(|e| AscqrError::io(&run.path, e))?;
            let df = ParquetReader::new(std::io::Cursor::new(segment)).finish().ctx(|| format!("reading {}", run.path.display()))?;
            out.vstack_mut_owned(df).ctx(|| "gathering a spilled partition".to_string())?;
        }
        // Left in chunks: callers sort it, which gathers the rows into new columns anyway.
        Ok(out)
    }

    /// Removes the run files.
    pub fn remove(self) -> Result<()> {
        for run in self.runs {
            std::fs::remove_file(&run.path).map_err(|e| AscqrError::io(&run.path, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::schema::ColumnType;

    fn columns() -> Vec<ColumnSpec> {
        vec![ColumnSpec::plain("key", ColumnType::Str), ColumnSpec::plain("n", ColumnType::Int)]
    }

    fn keys(df: &DataFrame) -> Vec<(String, i64)> {
        let k = df.column("key").unwrap().str().unwrap().clone();
        let n = df.column("n").unwrap().i64().unwrap().clone();
        (0..df.height()).map(|i| (k.get(i).unwrap().to_string(), n.get(i).unwrap())).collect()
    }

    /// Rows pushed one at a time and as frames, over several runs, come back per partition in
    /// the order pushed; an empty partition reads as an empty frame with the columns.
    #[test]
    fn partitions_read_back_in_push_order_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = PartitionSpill::create(&dir.path().join("s"), "t", columns(), 4, 3).unwrap();
        let mut expected: Vec<Vec<(String, i64)>> = vec![Vec::new(); 4];
        for n in 0..10i64 {
            let p = [2u32, 0, 2, 1][n as usize % 4];
            let key = format!("k{n}");
            spill.push(p, &[Cell::Str(&key), Cell::Int(n)]).unwrap();
            expected[p as usize].push((key, n));
        }
        let frame = df!("key" => ["a", "b", "c"], "n" => [100i64, 101, 102]).unwrap();
        spill.push_frame(&frame, &[1, 2, 1]).unwrap();
        expected[1].push(("a".into(), 100));
        expected[2].push(("b".into(), 101));
        expected[1].push(("c".into(), 102));
        spill.push(0, &[Cell::Str("last"), Cell::Int(200)]).unwrap();
        expected[0].push(("last".into(), 200));
        let spilled = spill.finish().unwrap();
        for p in 0..4u32 {
            let df = spilled.read(p).unwrap();
            assert_eq!(df.get_column_names(), ["key", "n"]);
            assert_eq!(keys(&df), expected[p as usize], "partition {p}");
        }
        assert_eq!(spilled.read(3).unwrap().height(), 0);
        spilled.remove().unwrap();
        assert_eq!(std::fs::read_dir(dir.path().join("s")).unwrap().count(), 0);
    }

    /// A frame whose columns are not the spill's is refused when its run is written, not
    /// discovered when a partition is read back.
    #[test]
    fn a_frame_with_other_columns_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = PartitionSpill::create(&dir.path().join("s"), "t", columns(), 2, 10).unwrap();
        let frame = df!("key" => ["a"], "m" => [1i64]).unwrap();
        spill.push_frame(&frame, &[1]).unwrap();
        let err = spill.finish().err().expect("a run with other columns").to_string();
        assert!(err.contains("with columns"), "{err}");
    }
}
