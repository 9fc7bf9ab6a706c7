//! Finding a canonical table's files in a raw extract folder (for validation and ingest), and
//! reading a table of a prepared extract lazily (for every stage).
//!
//! In a raw canonical extract a table is `DIR/<table>.parquet`, `DIR/<table>.csv`, or a folder `DIR/<table>/` holding
//! `.parquet` or `.csv` files at any depth (hive partitions such as `year=2022/` are welcome;
//! partition keys are not columns of the canonical model and are ignored).

use super::schema::Table;
use super::sink::polars_schema;
use crate::error::{AscqrError, PolarsContext, Result};
use polars::prelude::*;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Parquet,
    Csv,
}

#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub format: SourceFormat,
}

fn format_of(path: &Path) -> Option<SourceFormat> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "parquet" => Some(SourceFormat::Parquet),
        "csv" => Some(SourceFormat::Csv),
        _ => None,
    }
}

/// The files of `table` in `dir`, sorted by path. Missing table → [`AscqrError::MissingTable`].
pub fn table_files(dir: &Path, table: Table) -> Result<Vec<SourceFile>> {
    if !dir.is_dir() {
        return Err(AscqrError::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "claims folder not found")));
    }
    let mut files = Vec::new();
    for ext in ["parquet", "csv"] {
        let p = dir.join(format!("{}.{ext}", table.name()));
        if p.is_file() {
            files.push(SourceFile { format: format_of(&p).expect("known extension"), path: p });
        }
    }
    let sub = dir.join(table.name());
    if sub.is_dir() {
        collect_files(&sub, &mut files)?;
    }
    if files.is_empty() {
        return Err(AscqrError::MissingTable { dir: dir.to_path_buf(), table: table.name().to_string() });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn collect_files(dir: &Path, out: &mut Vec<SourceFile>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| AscqrError::io(dir, e))?;
    for entry in entries {
        let path = entry.map_err(|e| AscqrError::io(dir, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name.starts_with('_') {
            continue; // temporary and marker files (`.x.tmp`, `_SUCCESS`)
        }
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if let Some(format) = format_of(&path) {
            out.push(SourceFile { path, format });
        }
    }
    Ok(())
}

/// Every file under `dir` at any depth, sorted by path, leaving out hidden and marker files and
/// folders (names starting with `.` or `_`: temporary files, `_SUCCESS`, a prepared extract's
/// staging). Errors name the folder that could not be read.
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(AscqrError::io(dir, std::io::Error::new(std::io::ErrorKind::NotFound, "claims folder not found")));
    }
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| AscqrError::io(&d, e))? {
            let path = e.map_err(|e| AscqrError::io(&d, e))?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

type TablesInMemory = std::collections::BTreeMap<Table, DataFrame>;

/// Extracts whose tables are held in memory ([`hold_in_memory`]), by the path stages name them by.
static IN_MEMORY: std::sync::Mutex<std::collections::BTreeMap<PathBuf, std::sync::Arc<TablesInMemory>>> = std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Tables of an extract held in memory while this lives (see [`hold_in_memory`]).
pub struct HeldInMemory {
    dir: PathBuf,
}

impl Drop for HeldInMemory {
    fn drop(&mut self) {
        if let Ok(mut held) = IN_MEMORY.lock() {
            held.remove(&self.dir);
        }
    }
}

/// Reads every table of the prepared extract `dir` (a shard view, typically: one shard) into
/// memory once; until the returned guard is dropped, [`scan_table`] on `dir` reads from memory.
/// Why: the stages of a run read each table many times (every measure's cohort rules, risk
/// variables, unmapped codes, eligibility); for one shard, decoding its Parquet once and
/// filtering in memory is the one pass over its claims, where each stage decoding it again was
/// most of the shard's time.
pub fn hold_in_memory(dir: &Path) -> Result<HeldInMemory> {
    let mut tables = TablesInMemory::new();
    for t in Table::ALL {
        let df = scan_table(dir, t)?.collect().ctx(|| format!("reading {} of {}", t.name(), dir.display()))?;
        tables.insert(t, df);
    }
    IN_MEMORY.lock().map_err(|_| AscqrError::Other("internal: the in-memory table registry is poisoned".into()))?.insert(dir.to_path_buf(), std::sync::Arc::new(tables));
    Ok(HeldInMemory { dir: dir.to_path_buf() })
}

/// Reads a table of a prepared extract ([`super::extract`]) lazily, every shard concatenated in
/// shard order. Only prepared extracts are read: their rows passed validation and their values
/// are typed as validation parsed them, so no stage reads a raw file its own way. Anything else
/// is refused with the command that prepares it.
pub fn scan_table(dir: &Path, table: Table) -> Result<LazyFrame> {
    let held = IN_MEMORY.lock().ok().and_then(|held| held.get(dir).cloned());
    if let Some(tables) = held {
        return Ok(tables[&table].clone().lazy());
    }
    let files = super::extract::shard_files(dir, table)?;
    let names: Vec<Expr> = table.spec().column_names().iter().map(|n| col(n.as_str())).collect();
    let mut frames = Vec::with_capacity(files.len());
    for path in &files {
        let path_str = path.to_string_lossy().to_string();
        let ctx = || format!("reading {}", path.display());
        let mut lf = LazyFrame::scan_parquet(PlRefPath::new(path_str.as_str()), ScanArgsParquet::default()).ctx(ctx)?;
        // Ingest writes the canonical types; a check costs nothing and keeps a hand-edited shard
        // from being misread. No cast is added (a cast stops polars from pushing a filter on
        // that column into the Parquet reader, and the stages rely on that pushdown to read
        // only matching rows, see `cohort::is_one_of`).
        let stored = lf.collect_schema().ctx(ctx)?;
        for (name, dtype) in polars_schema(table).iter() {
            match stored.get(name.as_str()) {
                Some(found) if found == dtype => {}
                found => {
                    return Err(AscqrError::ColumnType {
                        file: path.clone(),
                        column: name.to_string(),
                        found: found.map_or("nothing (column missing)".into(), |f| f.to_string()),
                        expected: dtype.to_string(),
                    })
                }
            }
        }
        lf = lf.select(names.clone());
        frames.push(lf);
    }
    let lf = if frames.len() == 1 {
        frames.pop().expect("one frame")
    } else {
        concat(frames, UnionArgs::default()).ctx(|| format!("concatenating {} shards", table.name()))?
    };
    Ok(lf)
}

/// Collects `lf` and copies its text columns into buffers of their own ([`compact_text`]).
pub fn collect_compact(lf: LazyFrame) -> PolarsResult<DataFrame> {
    compact_text(lf.collect()?)
}

/// Copies every text column's strings into new buffers. Polars filters text without copying it:
/// the rows a filter keeps still point into the decoded buffers of every row group they came
/// from, so a few thousand matching rows of a 16-million-line table keep those whole buffers
/// alive. National ASC-12's exclusion-diagnosis scan (62 filtered reads, 129,888 rows kept)
/// peaked at 1.78 GB without the copy and 0.56 GB with it. Use it on the result of a selective
/// filter that is kept beyond the read.
pub fn compact_text(df: DataFrame) -> PolarsResult<DataFrame> {
    let height = df.height();
    let columns = df
        .columns()
        .iter()
        .map(|c| -> PolarsResult<Column> {
            Ok(match c.dtype() {
                DataType::String => {
                    let copied: StringChunked = c.str()?.iter().collect();
                    copied.with_name(c.name().clone()).into_column()
                }
                _ => c.clone(),
            })
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(height, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer_bytes(df: &DataFrame, name: &str) -> usize {
        df.column(name).unwrap().str().unwrap().downcast_iter().map(|a| a.total_buffer_len()).sum()
    }

    #[test]
    fn compacting_keeps_the_values_and_drops_the_filtered_out_text() {
        // Strings longer than 12 bytes live in the array's buffers, not inline in its views.
        let ids: Vec<String> = (0..10_000).map(|i| format!("beneficiary-{i:08}")).collect();
        let n: Vec<i64> = (0..10_000).collect();
        let df = DataFrame::new(10_000, vec![Column::new("bene_id".into(), ids), Column::new("n".into(), n)]).unwrap();
        let kept = df.lazy().filter(col("n").lt(lit(3))).collect().unwrap();
        let compact = compact_text(kept.clone()).unwrap();
        assert!(compact.equals_missing(&kept));
        assert!(buffer_bytes(&kept, "bene_id") >= 10_000 * 20, "the filter kept the whole buffer: {}", buffer_bytes(&kept, "bene_id"));
        assert!(buffer_bytes(&compact, "bene_id") < 1_000, "{}", buffer_bytes(&compact, "bene_id"));
    }
}
