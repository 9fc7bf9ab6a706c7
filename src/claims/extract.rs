//! The prepared extract: the only claims input every stage reads.
//!
//! `ascqr ingest` reads an extract in any supported layout, validates every row with the one
//! parser of [`super::validate`], and writes the accepted rows here, typed, as canonical Parquet:
//!
//! ```text
//! EXTRACT/ingest.json                     what was read, accepted, rejected (by reason), merged;
//!                                         inputs with bytes and sha256; layout; shard count
//! EXTRACT/rejects.csv                     every rejected row with its file, row, column, reason
//! EXTRACT/PROTECTED_HEALTH_INFORMATION.txt  what the folder holds and that none of it is shared
//! EXTRACT/<table>/part-00000.parquet      shard 0 of each table, rows sorted by bene_id
//! EXTRACT/<table>/part-00001.parquet      …
//! ```
//!
//! Why a separate, written step: validation and reading used to be two paths, and real extracts
//! fell between them (a `Y`/`N` flag accepted by one and misread by the other, quarantined rows
//! that the stages still read). Now the stages cannot see a row validation did not accept, and
//! see every accepted value exactly as validation parsed it.
//!
//! **Shards.** A beneficiary's rows of every table land in the same shard, so a later stage (or
//! a distributed engine) can work one shard at a time. The shard of a beneficiary is
//! `XXH64(UTF-8 bytes of bene_id, seed 42)` read as a signed 64-bit integer, taken modulo the
//! shard count with a non-negative result: Spark's `pmod(xxhash64(bene_id), N)`. The algorithm
//! and seed are fixed here (not polars' own hash, which changes between versions) and tested on
//! fixed vectors. Within a shard, rows are sorted by `bene_id`, then in the order they were read
//! (the files in the order the layout reads them, then rows), so the output depends only on the
//! input and the shard count.
//!
//! **Rules applied once the shard is sorted**, in bounded memory (one shard, or one bucket of the
//! claim index, at a time) rather than with a hash of every key read:
//! * a claim line naming another beneficiary than its claim's first line (read order) is
//!   quarantined; the claim index (every claim row's id, beneficiary and source, partitioned by
//!   a hash of the claim id) finds them bucket by bucket, since a claim's lines may fall in two
//!   shards. For inpatient stays the second row of a claim is a repeated claim;
//! * a repeated key (claim line, stay, beneficiary) within a shard: the first row read is kept;
//!   except that the beneficiary rows of a source layout (MBSF and RIF: one per year; CCLF8: one
//!   per delivery) are merged into the first, taking the first death date any of them gives;
//! * two enrollment rows of one beneficiary and year that share a month cannot both be true;
//!   adding them up would let a repeated fee-for-service row fill a Medicare Advantage gap. Of
//!   such rows the one read first is kept and the later one quarantined ("enrollment months
//!   overlap an earlier row of the same beneficiary and year").
//!
//! Nothing partial is left behind: the extract is built in a temporary folder beside `EXTRACT`
//! and renamed into place when complete.

use super::schema::{Column as ColumnSpec, ColumnType, Table};
use super::sink::Cell;
use super::spill::{PartitionSpill, Spilled};
use super::validate::{any_value_text, AcceptedRows, Layout, RejectWriter, Rejection, Tally, TableReport, ANOTHER_BENEFICIARY};
use crate::error::{AscqrError, PolarsContext, Result};
use crate::output::InputFile;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The manifest of a prepared extract.
pub const MANIFEST_FILE: &str = "ingest.json";
/// The reject file of a prepared extract.
pub const REJECTS_FILE: &str = "rejects.csv";
/// What `format` says in `ingest.json`.
pub const FORMAT_NAME: &str = "ascqr prepared extract";
/// Bumped when the folder's layout changes; stages refuse an extract of another version.
pub const FORMAT_VERSION: u32 = 1;
/// The seed of the shard hash (Spark's `xxhash64` default).
pub const SHARD_SEED: u64 = 42;
/// The most shards an extract may have.
pub const MAX_SHARDS: u32 = 4096;

const PHI_NOTICE: &str = "This folder holds Medicare claims, one row per claim line, stay, beneficiary and enrollment run:\n\
protected health information. Keep it where the data use agreement allows; share none of it.\n";

const SOURCE_FILE: &str = "_source_file";
const SOURCE_ROW: &str = "_source_row";
/// The rank of a row's file in the order the table's files were read: "read order" is this, then
/// the row, not the file's path text (CCLF8 files are read by delivery date, say).
const SOURCE_ORDER: &str = "_source_order";

/// The shard of a beneficiary among `shards` (see the module documentation).
pub fn shard_of(bene_id: &str, shards: u32) -> u32 {
    let h = xxh64(bene_id.as_bytes(), SHARD_SEED) as i64;
    h.rem_euclid(i64::from(shards.max(1))) as u32
}

/// XXH64, Yann Collet's 64-bit xxHash, as specified in the xxHash repository's
/// `doc/xxhash_spec.md`. Written out here rather than taken from a crate: the crate polars builds
/// is compiled without XXH64, and enabling it would rebuild polars. Checked against the
/// specification's reference values and against an independent implementation (PyPI `xxhash`)
/// in the tests below.
pub fn xxh64(input: &[u8], seed: u64) -> u64 {
    const P1: u64 = 0x9E37_79B1_85EB_CA87;
    const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    const P3: u64 = 0x1656_67B1_9E37_79F9;
    const P4: u64 = 0x85EB_CA77_C2B2_AE63;
    const P5: u64 = 0x27D4_EB2F_1656_67C5;
    let u64_at = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
    let u32_at = |b: &[u8]| u64::from(u32::from_le_bytes(b[..4].try_into().expect("4 bytes")));
    let round = |acc: u64, lane: u64| acc.wrapping_add(lane.wrapping_mul(P2)).rotate_left(31).wrapping_mul(P1);
    let merge = |acc: u64, v: u64| (acc ^ round(0, v)).wrapping_mul(P1).wrapping_add(P4);
    let mut rest = input;
    let mut h = if input.len() >= 32 {
        let mut v = [seed.wrapping_add(P1).wrapping_add(P2), seed.wrapping_add(P2), seed, seed.wrapping_sub(P1)];
        while rest.len() >= 32 {
            for (i, acc) in v.iter_mut().enumerate() {
                *acc = round(*acc, u64_at(&rest[i * 8..]));
            }
            rest = &rest[32..];
        }
        let mut h = v[0].rotate_left(1).wrapping_add(v[1].rotate_left(7)).wrapping_add(v[2].rotate_left(12)).wrapping_add(v[3].rotate_left(18));
        for lane in v {
            h = merge(h, lane);
        }
        h
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(input.len() as u64);
    while rest.len() >= 8 {
        h = (h ^ round(0, u64_at(rest))).rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
        rest = &rest[8..];
    }
    if rest.len() >= 4 {
        h = (h ^ u32_at(rest).wrapping_mul(P1)).rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        rest = &rest[4..];
    }
    for &b in rest {
        h = (h ^ u64::from(b).wrapping_mul(P5)).rotate_left(11).wrapping_mul(P1);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

/// `ingest.json`: everything needed to trust, reproduce and read the extract.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IngestManifest {
    pub format: String,
    pub format_version: u32,
    pub engine_version: String,
    /// The layout the source was read as (`canonical`, `rif`, …).
    pub layout: String,
    /// The folder the source was read from.
    pub source: PathBuf,
    pub shards: u32,
    /// How the shard count was chosen (given, or from the input size).
    pub shards_chosen: String,
    /// The shard function, in words.
    pub shard_hash: String,
    /// Rows per table and per input file: read, produced, accepted, rejected by reason, merged.
    pub tables: Vec<TableReport>,
    /// Every input file with its size and sha256.
    pub inputs: Vec<InputFile>,
    pub rejects_file: String,
    /// Choices made while reading that a user should know (defaults applied, columns absent).
    pub notes: Vec<String>,
    /// ASC lines (carrier, place of service 24) whose service date falls in no enrollment month of
    /// their beneficiary: not an error (the cohort's enrollment rules exclude such procedures and
    /// count them in the attrition), but a sign of an extract cut short or mis-keyed.
    #[serde(default)]
    pub asc_lines_outside_enrollment: u64,
    /// The generator's own manifest when the source was written by `ascqr synth`, so that what
    /// is fitted on synthetic claims keeps saying so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synthetic_source: Option<serde_json::Value>,
    /// Set in a shard view ([`write_shard_view`]): the extract whose shards this one reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_of: Option<ShardView>,
}

/// Some shards of another prepared extract, read as an extract of their own: what `ascqr
/// run-shard` hands the stages, so that every stage reads one shard without a second code path.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShardView {
    /// The prepared extract (absolute path).
    pub extract: PathBuf,
    /// Its shard count.
    pub of: u32,
    /// The shards this view reads, ascending.
    pub shards: Vec<u32>,
}

/// Writes, in `dir`, a prepared extract that reads only `shards` of `extract` (no claims are
/// copied: its `ingest.json` names the shards). The manifest's row counts stay those of the
/// whole extract.
pub fn write_shard_view(extract: &Path, shards: &[u32], dir: &Path) -> Result<IngestManifest> {
    let mut manifest = read_manifest(extract)?;
    if manifest.view_of.is_some() {
        return Err(AscqrError::InvalidOption(format!("{} is already a shard view; give the prepared extract itself", extract.display())));
    }
    let mut shards = shards.to_vec();
    shards.sort_unstable();
    shards.dedup();
    if let Some(bad) = shards.iter().find(|&&s| s >= manifest.shards) {
        return Err(AscqrError::InvalidOption(format!("shard {bad}: {} has shards 0 to {}", extract.display(), manifest.shards - 1)));
    }
    if shards.is_empty() {
        return Err(AscqrError::InvalidOption("a shard view needs at least one shard".into()));
    }
    let absolute = std::fs::canonicalize(extract).map_err(|e| AscqrError::io(extract, e))?;
    manifest.view_of = Some(ShardView { extract: absolute, of: manifest.shards, shards: shards.clone() });
    manifest.shards = shards.len() as u32;
    std::fs::create_dir_all(dir).map_err(|e| AscqrError::io(dir, e))?;
    let mut json = serde_json::to_vec_pretty(&manifest).map_err(|e| AscqrError::Other(format!("internal: {e}")))?;
    json.push(b'\n');
    crate::output::write_atomic(&dir.join(MANIFEST_FILE), &json)?;
    Ok(manifest)
}

impl IngestManifest {
    pub fn total_rejected(&self) -> u64 {
        self.tables.iter().map(|t| t.rows_rejected).sum()
    }
}

/// Options of [`ingest`].
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub layout: Layout,
    /// The shard count; `None` chooses one from the input size ([`auto_shards`]).
    pub shards: Option<u32>,
}

/// Whether `dir` holds a prepared extract.
pub fn is_prepared(dir: &Path) -> bool {
    dir.join(MANIFEST_FILE).is_file()
}

/// Reads and checks a prepared extract's manifest. A folder without one is refused with the
/// command that makes one: no stage reads claims that were not validated.
pub fn read_manifest(dir: &Path) -> Result<IngestManifest> {
    let path = dir.join(MANIFEST_FILE);
    if !path.is_file() {
        return Err(AscqrError::InvalidOption(format!(
            "{} is not a prepared extract (no {MANIFEST_FILE}); every stage reads claims only through `ascqr ingest`: \
             run `ascqr ingest --claims {} --out EXTRACT` and pass EXTRACT",
            dir.display(),
            dir.display()
        )));
    }
    let bytes = std::fs::read(&path).map_err(|e| AscqrError::io(&path, e))?;
    let manifest: IngestManifest =
        serde_json::from_slice(&bytes).map_err(|e| AscqrError::Other(format!("{}: not a readable {MANIFEST_FILE}: {e}", path.display())))?;
    if manifest.format != FORMAT_NAME || manifest.format_version != FORMAT_VERSION {
        return Err(AscqrError::Other(format!(
            "{}: a prepared extract of format {:?} version {}; this engine reads version {FORMAT_VERSION}: ingest the source again",
            path.display(),
            manifest.format,
            manifest.format_version
        )));
    }
    Ok(manifest)
}

/// The shard file of `table` number `shard` in a prepared extract.
pub fn shard_path(dir: &Path, table: Table, shard: u32) -> PathBuf {
    dir.join(table.name()).join(format!("part-{shard:05}.parquet"))
}

/// The shard files of `table` in the prepared extract `dir`, in shard order.
pub fn shard_files(dir: &Path, table: Table) -> Result<Vec<PathBuf>> {
    let manifest = read_manifest(dir)?;
    let (dir, shards): (&Path, Vec<u32>) = match &manifest.view_of {
        Some(view) => (view.extract.as_path(), view.shards.clone()),
        None => (dir, (0..manifest.shards).collect()),
    };
    shards
        .into_iter()
        .map(|i| {
            let p = shard_path(dir, table, i);
            if p.is_file() {
                Ok(p)
            } else {
                Err(AscqrError::Other(format!("{}: shard {i} of {} missing from the prepared extract", p.display(), manifest.shards)))
            }
        })
        .collect()
}

/// A shard count from the input size: one shard per 64 MiB of text or 8 MiB of Parquet
/// (Parquet is compressed many times over), at least one. A shard of one table is held in memory
/// while it is sorted, so this bounds ingest's peak memory whatever the extract's size: on the
/// national synthetic extracts about 0.8 GB at 8 MiB, 1.1 GB at 16 MiB (`benches/results/ingest.md`).
pub fn auto_shards(text_bytes: u64, parquet_bytes: u64) -> u32 {
    let units = text_bytes as f64 / (64u64 << 20) as f64 + parquet_bytes as f64 / (8u64 << 20) as f64;
    (units.ceil() as u32).clamp(1, MAX_SHARDS)
}

/// Bytes of text and of Parquet among the files `layout` reads in `dir` (not whatever else the
/// folder holds: a synthetic extract's truth, say).
fn input_bytes(dir: &Path, layout: Layout) -> Result<(u64, u64)> {
    let (mut text, mut parquet) = (0, 0);
    for p in super::validate::input_files(dir, layout)? {
        let len = p.metadata().map_err(|e| AscqrError::io(&p, e))?.len();
        if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("parquet")) {
            parquet += len;
        } else {
            text += len;
        }
    }
    Ok((text, parquet))
}

/// Accepted rows of one table, split by beneficiary into shards (unsorted, with the file and
/// row each came from), spilled in runs ([`super::spill`]) so that memory does not grow with the
/// extract or the shard count.
struct ShardedSink {
    table: Table,
    bene_col: usize,
    shards: u32,
    rows: PartitionSpill,
    /// Claim tables: (claim id, beneficiary, file, row) of every row, partitioned by claim id,
    /// for the check that a claim names one beneficiary ([`claims_naming_two_beneficiaries`]).
    claim_index: Option<(usize, PartitionSpill)>,
    /// The file rows last came from, as a path, as the text written beside each row and as its
    /// rank in read order: rows come a file at a time, so these are made once per file.
    file: (PathBuf, String, i64),
    /// Where the finished spills go for [`finish_shard`].
    finished: Rc<RefCell<Vec<SpilledTable>>>,
}

/// A table's rows and claim index once read, waiting to be sorted shard by shard.
struct SpilledTable {
    table: Table,
    rows: Spilled,
    claim_index: Option<Spilled>,
}

const CLAIM_INDEX_SEED: u64 = 7;
/// Rows per spilled run: one run is held in memory while it is written.
const RUN_ROWS: usize = 250_000;

/// The claim-index bucket of a claim id among `buckets`.
fn claim_bucket(claim_id: &str, buckets: u32) -> u32 {
    (xxh64(claim_id.as_bytes(), CLAIM_INDEX_SEED) % u64::from(buckets)) as u32
}

fn claim_index_columns() -> Vec<ColumnSpec> {
    ["claim_id", "bene_id", SOURCE_FILE].iter().map(|n| ColumnSpec::plain(*n, ColumnType::Str)).chain([SOURCE_ROW, SOURCE_ORDER].map(|n| ColumnSpec::plain(n, ColumnType::Int))).collect()
}

fn part_columns(table: Table) -> Vec<ColumnSpec> {
    let mut columns = table.spec().columns();
    columns.push(ColumnSpec::plain(SOURCE_FILE, ColumnType::Str));
    columns.push(ColumnSpec::plain(SOURCE_ROW, ColumnType::Int));
    columns.push(ColumnSpec::plain(SOURCE_ORDER, ColumnType::Int));
    columns
}

impl ShardedSink {
    fn create(staging: &Path, table: Table, shards: u32, finished: Rc<RefCell<Vec<SpilledTable>>>) -> Result<Self> {
        let columns = part_columns(table);
        let bene_col = columns.iter().position(|c| c.name == "bene_id").expect("every table has bene_id");
        let parts = staging.join("_parts");
        let rows = PartitionSpill::create(&parts.join(table.name()), table.name(), columns.clone(), shards, RUN_ROWS)?;
        let claim_index = match table {
            Table::Carrier | Table::Outpatient | Table::Inpatient => {
                let at = columns.iter().position(|c| c.name == "claim_id").expect("claim tables have claim_id");
                let dir = parts.join(format!("{}_claims", table.name()));
                Some((at, PartitionSpill::create(&dir, "claim index", claim_index_columns(), shards, 4 * RUN_ROWS)?))
            }
            _ => None,
        };
        Ok(ShardedSink { table, bene_col, shards, rows, claim_index, file: (PathBuf::new(), String::new(), -1), finished })
    }

    /// Notes the file the next rows come from.
    fn reading(&mut self, file: &Path) {
        if self.file.2 < 0 || self.file.0.as_os_str() != file.as_os_str() {
            self.file = (file.to_path_buf(), file.display().to_string(), self.file.2 + 1);
        }
    }
}

impl AcceptedRows for ShardedSink {
    fn push_row(&mut self, cells: &[Cell<'_>], file: &Path, row: u64) -> Result<()> {
        let shard = match cells[self.bene_col] {
            Cell::Str(id) => shard_of(id, self.shards),
            _ => 0,
        };
        self.reading(file);
        let (file, order) = (self.file.1.as_str(), self.file.2);
        let mut row_cells = Vec::with_capacity(cells.len() + 3);
        row_cells.extend_from_slice(cells);
        row_cells.push(Cell::Str(file));
        row_cells.push(Cell::Int(row as i64));
        row_cells.push(Cell::Int(order));
        if let Some((at, index)) = self.claim_index.as_mut() {
            let bucket = match cells[*at] {
                Cell::Str(id) => claim_bucket(id, index.partitions()),
                _ => 0,
            };
            index.push(bucket, &[cells[*at], cells[self.bene_col], Cell::Str(file), Cell::Int(row as i64), Cell::Int(order)])?;
        }
        self.rows.push(shard, &row_cells)
    }

    fn push_frame(&mut self, mut df: DataFrame, file: &Path, rows: &[u64]) -> Result<()> {
        let ctx = || format!("sharding rows of {}", file.display());
        let partition_by = |df: &DataFrame, column: &str, of: &dyn Fn(&str) -> u32| -> Result<Vec<u32>> {
            Ok(df.column(column).and_then(|c| c.str().cloned()).ctx(ctx)?.iter().map(|id| id.map_or(0, of)).collect())
        };
        let shards = self.shards;
        let shard_of_row = partition_by(&df, "bene_id", &|id| shard_of(id, shards))?;
        let n = df.height();
        df.with_column(Column::new(SOURCE_FILE.into(), vec![file.display().to_string(); n])).ctx(ctx)?;
        df.with_column(Column::new(SOURCE_ROW.into(), rows.iter().map(|&r| r as i64).collect::<Vec<_>>())).ctx(ctx)?;
        self.reading(file);
        df.with_column(Column::new(SOURCE_ORDER.into(), vec![self.file.2; n])).ctx(ctx)?;
        self.rows.push_frame(&df, &shard_of_row)?;
        if let Some((_, index)) = self.claim_index.as_mut() {
            let buckets = index.partitions();
            let bucket_of_row = partition_by(&df, "claim_id", &|id| claim_bucket(id, buckets))?;
            index.push_frame(&df.select(["claim_id", "bene_id", SOURCE_FILE, SOURCE_ROW, SOURCE_ORDER]).ctx(ctx)?, &bucket_of_row)?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let spilled = SpilledTable { table: self.table, rows: self.rows.finish()?, claim_index: self.claim_index.map(|(_, index)| index.finish()).transpose()? };
        self.finished.borrow_mut().push(spilled);
        Ok(())
    }
}

/// Reads the extract in `claims` as `options.layout`, validates every row and writes the
/// prepared extract to `out` (see the module documentation). `out` must not exist, be empty, or
/// hold an earlier prepared extract (which is replaced only once the new one is complete).
pub fn ingest(claims: &Path, options: &IngestOptions, out: &Path, progress: &indicatif::ProgressBar) -> Result<IngestManifest> {
    if !claims.is_dir() {
        return Err(AscqrError::io(claims, std::io::Error::new(std::io::ErrorKind::NotFound, "claims folder not found")));
    }
    if out.exists() && !is_prepared(out) && std::fs::read_dir(out).map_err(|e| AscqrError::io(out, e))?.next().is_some() {
        return Err(AscqrError::InvalidOption(format!(
            "{} exists and is not a prepared extract; ingest writes a new folder (remove it or choose another --out)",
            out.display()
        )));
    }
    let (text_bytes, parquet_bytes) = input_bytes(claims, options.layout)?;
    let (shards, shards_chosen) = match options.shards {
        Some(n) if n == 0 || n > MAX_SHARDS => {
            return Err(AscqrError::InvalidOption(format!("--shards {n}: the shard count must be between 1 and {MAX_SHARDS}")));
        }
        Some(n) => (n, "given".to_string()),
        None => (
            auto_shards(text_bytes, parquet_bytes),
            format!("from the input size ({text_bytes} bytes of text, {parquet_bytes} bytes of Parquet): one per 64 MiB of text or 8 MiB of Parquet"),
        ),
    };
    let name = out.file_name().ok_or_else(|| AscqrError::InvalidOption(format!("{} is not a folder path", out.display())))?;
    let staging = out.with_file_name(format!(".{}.ingest-tmp", name.to_string_lossy()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| AscqrError::io(&staging, e))?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| AscqrError::io(&staging, e))?;
    let staged = StagingDir(Some(staging.clone()));

    let mut rejects = RejectWriter::create(&staging.join(REJECTS_FILE))?;
    let finished: Rc<RefCell<Vec<SpilledTable>>> = Rc::default();
    let mut sink_for = |t: Table| -> Result<Option<Box<dyn AcceptedRows>>> { Ok(Some(Box::new(ShardedSink::create(&staging, t, shards, finished.clone())?))) };
    let ccw_staging = super::ccw::Staging { dir: staging.join("_staged"), shards };
    let (mut tables, layout_notes) = super::validate::read_layout(claims, options.layout, &mut rejects, &mut sink_for, &ccw_staging, progress)?;
    if ccw_staging.dir.exists() {
        std::fs::remove_dir_all(&ccw_staging.dir).map_err(|e| AscqrError::io(&ccw_staging.dir, e))?;
    }
    // Source layouts other than the canonical one give a beneficiary one row per year (MBSF,
    // RIF) or per delivery (CCLF8): those rows are merged, not repeats.
    let merge_beneficiary_rows_of = options.layout != Layout::Canonical;
    // Shard files are encoded on their own thread while the next shard is sorted.
    let mut shard_writer = super::writer_thread::WriterThread::spawn("shard writer", |shards: std::sync::mpsc::Receiver<(DataFrame, PathBuf)>| {
        shards.into_iter().try_for_each(|(df, path)| write_shard(df, &path))
    })?;
    for spilled in finished.take() {
        let table = spilled.table;
        let report = tables
            .iter_mut()
            .find(|r| r.table == table.name())
            .ok_or_else(|| AscqrError::Other(format!("internal: no report for the {} rows read", table.name())))?;
        progress.set_message(format!("checking {} claims", table.name()));
        let two_beneficiaries = match spilled.claim_index {
            Some(index) => claims_naming_two_beneficiaries(index)?,
            None => Default::default(),
        };
        progress.set_message(format!("sorting {} shards", table.name()));
        tracing::debug!(table = table.name(), "sorting shards");
        for shard in 0..shards {
            let rows = finish_shard(&spilled.rows, table, shard, merge_beneficiary_rows_of, report, &mut rejects, &two_beneficiaries)?;
            shard_writer.send((rows, shard_path(&staging, table, shard)))?;
        }
        spilled.rows.remove()?;
    }
    shard_writer.finish()?;
    std::fs::remove_dir_all(staging.join("_parts")).map_err(|e| AscqrError::io(staging.join("_parts"), e))?;
    rejects.finish()?;
    tracing::debug!("counting ASC lines outside enrollment");
    let mut asc_lines_outside_enrollment = 0;
    for shard in 0..shards {
        asc_lines_outside_enrollment += asc_lines_outside_enrollment_in(&staging, shard)?;
    }

    let mut inputs = Vec::new();
    for report in &tables {
        for input in &report.inputs {
            if !inputs.iter().any(|i: &InputFile| Path::new(&i.path) == input.file) {
                inputs.push(crate::output::describe_input(&input.file)?);
            }
        }
    }
    let mut notes: Vec<String> = layout_notes;
    if asc_lines_outside_enrollment > 0 {
        notes.push(format!(
            "{asc_lines_outside_enrollment} ASC lines (carrier, place of service 24) fall in no enrollment month of their beneficiary; the cohort's enrollment rules exclude them"
        ));
    }
    for t in &tables {
        for c in &t.absent_columns {
            notes.push(format!("{}: column {c} absent from at least one file; read as empty (ICD-10)", t.table));
        }
    }
    notes.push("an empty ICD version code is read as ICD-10 (0): the measures' service dates are all from 2015-10-01 on".into());
    let manifest = IngestManifest {
        format: FORMAT_NAME.into(),
        format_version: FORMAT_VERSION,
        engine_version: env!("CARGO_PKG_VERSION").into(),
        layout: options.layout.name().into(),
        source: claims.to_path_buf(),
        shards,
        shards_chosen,
        shard_hash: format!("pmod(XXH64(utf8(bene_id), seed {SHARD_SEED}) as signed 64-bit, {shards}), as Spark's pmod(xxhash64(bene_id), {shards})"),
        tables,
        inputs,
        rejects_file: REJECTS_FILE.into(),
        notes,
        asc_lines_outside_enrollment,
        view_of: None,
        synthetic_source: std::fs::read(claims.join("manifest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .filter(|v| v["generator"] == "ascqr synth"),
    };
    let mut json = serde_json::to_vec_pretty(&manifest).map_err(|e| AscqrError::Other(format!("internal: {e}")))?;
    json.push(b'\n');
    crate::output::write_atomic(&staging.join(MANIFEST_FILE), &json)?;
    crate::output::write_atomic(&staging.join("PROTECTED_HEALTH_INFORMATION.txt"), PHI_NOTICE.as_bytes())?;

    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| AscqrError::io(out, e))?;
    }
    std::fs::rename(&staging, out).map_err(|e| AscqrError::io(out, e))?;
    staged.keep();
    Ok(manifest)
}

/// Validates the extract in `claims` as `layout`: a dry run of [`ingest`] that prints the same
/// accounting, because it is the same code. The prepared extract is built in a temporary folder
/// beside `reject_file` and removed; the reject file is kept.
pub fn validate(claims: &Path, layout: Layout, reject_file: &Path, progress: &indicatif::ProgressBar) -> Result<super::ValidationReport> {
    let parent = reject_file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| AscqrError::io(parent, e))?;
    let scratch = tempfile::Builder::new().prefix(".ascqr-validate").tempdir_in(parent).map_err(|e| AscqrError::io(parent, e))?;
    let out = scratch.path().join("extract");
    let manifest = ingest(claims, &IngestOptions { layout, shards: None }, &out, progress)?;
    let bytes = std::fs::read(out.join(REJECTS_FILE)).map_err(|e| AscqrError::io(out.join(REJECTS_FILE), e))?;
    crate::output::write_atomic(reject_file, &bytes)?;
    Ok(super::ValidationReport { claims_dir: claims.to_path_buf(), layout: layout.name().into(), tables: manifest.tables, reject_file: reject_file.to_path_buf() })
}

/// Removes the staging folder unless the extract was moved into place.
struct StagingDir(Option<PathBuf>);

impl StagingDir {
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// Rows (file, row) of claim lines or stays that name another beneficiary than the claim's
/// first row (in read order). Each claim's rows are in one bucket of the claim index, so one
/// bucket at a time is held in memory.
fn claims_naming_two_beneficiaries(index: Spilled) -> Result<std::collections::HashSet<(String, i64)>> {
    let mut found = std::collections::HashSet::new();
    for b in 0..index.partitions() {
        let ctx = || "checking that each claim names one beneficiary".to_string();
        let df = index.read(b)?.sort(["claim_id", SOURCE_ORDER, SOURCE_ROW], SortMultipleOptions::default().with_maintain_order(true)).ctx(ctx)?;
        let text = |c: &str| df.column(c).and_then(|s| s.str().cloned()).ctx(ctx);
        let (claims, benes, files) = (text("claim_id")?, text("bene_id")?, text(SOURCE_FILE)?);
        let rows = df.column(SOURCE_ROW).and_then(|s| s.i64().cloned()).ctx(ctx)?;
        let mut first: Option<(Option<&str>, Option<&str>)> = None;
        for i in 0..df.height() {
            let (claim, bene) = (claims.get(i), benes.get(i));
            match first {
                Some((c, b)) if c == claim => {
                    if b != bene {
                        found.insert((files.get(i).unwrap_or("").to_string(), rows.get(i).unwrap_or(0)));
                    }
                }
                _ => first = Some((claim, bene)),
            }
        }
    }
    index.remove()?;
    Ok(found)
}

/// A row of a shard part as (column, text) pairs for the reject file, helpers left out.
fn record_of(df: &DataFrame, i: usize) -> Vec<(String, String)> {
    df.columns()
        .iter()
        .filter(|c| !c.name().starts_with('_'))
        .map(|c| (c.name().to_string(), any_value_text(&c.get(i).unwrap_or(AnyValue::Null))))
        .collect()
}

/// Quarantines the rows of `df` where `drop` is true, with the reason, column and value
/// `why` gives for each, and returns the rest.
fn withdraw(df: DataFrame, table: Table, drop: &[bool], why: impl Fn(usize) -> Rejection, report: &mut TableReport, rejects: &mut RejectWriter) -> Result<DataFrame> {
    if !drop.iter().any(|d| *d) {
        return Ok(df);
    }
    let ctx = || format!("quarantining {} rows", table.name());
    let files = df.column(SOURCE_FILE).and_then(|c| c.str().cloned()).ctx(ctx)?;
    let rows = df.column(SOURCE_ROW).and_then(|c| c.i64().cloned()).ctx(ctx)?;
    for (i, _) in drop.iter().enumerate().filter(|(_, d)| **d) {
        let source = PathBuf::from(files.get(i).unwrap_or(""));
        let rejection = why(i);
        report.tally(&source, Tally::Withdrawn(&rejection.reason));
        let record = record_of(&df, i);
        let record: Vec<(&str, String)> = record.iter().map(|(c, v)| (c.as_str(), v.clone())).collect();
        rejects.write(table, &source, rows.get(i).unwrap_or(0) as u64, &rejection, &record)?;
    }
    let keep: BooleanChunked = drop.iter().map(|d| !d).collect();
    df.filter(&keep).ctx(ctx)
}

/// Sorts one shard part by beneficiary (then the order rows were read), applies the rules that
/// need a beneficiary's or a claim's rows together — a claim naming another beneficiary, a
/// repeated key, overlapping enrollment — and returns the shard's rows to write.
#[allow(clippy::too_many_arguments)]
fn finish_shard(
    rows: &Spilled,
    table: Table,
    shard: u32,
    merge_beneficiary_rows_of: bool,
    report: &mut TableReport,
    rejects: &mut RejectWriter,
    two_beneficiaries: &std::collections::HashSet<(String, i64)>,
) -> Result<DataFrame> {
    let ctx = || format!("sorting shard {shard} of {}", table.name());
    let by_source = SortMultipleOptions::default().with_maintain_order(true);
    let mut df = sorted_by_beneficiary(rows.read(shard)?).ctx(ctx)?;
    // A claim's lines naming another beneficiary than its first (read order). For a stay, a
    // second row of the same claim is a repeated claim whichever beneficiary it names.
    if !two_beneficiaries.is_empty() {
        let files = df.column(SOURCE_FILE).and_then(|c| c.str().cloned()).ctx(ctx)?;
        let rows = df.column(SOURCE_ROW).and_then(|c| c.i64().cloned()).ctx(ctx)?;
        let drop: Vec<bool> = (0..df.height()).map(|i| two_beneficiaries.contains(&(files.get(i).unwrap_or("").to_string(), rows.get(i).unwrap_or(0)))).collect();
        let claims = df.column("claim_id").and_then(|c| c.str().cloned()).ctx(ctx)?;
        df = withdraw(
            df,
            table,
            &drop,
            |i| match table {
                Table::Inpatient => Rejection { reason: super::validate::repeated_key(table).expect("a key").1.into(), column: "claim_id".into(), value: claims.get(i).unwrap_or("").into() },
                _ => Rejection { reason: ANOTHER_BENEFICIARY.into(), column: "bene_id".into(), value: "(differs from the claim's earlier lines)".into() },
            },
            report,
            rejects,
        )?;
    }
    // Repeated keys: the first row read is kept; a beneficiary's rows of several years are
    // merged instead.
    if table == Table::Beneficiaries && merge_beneficiary_rows_of {
        df = merge_beneficiary_rows(df, report)?;
    } else if let Some((key, reason)) = super::validate::repeated_key(table) {
        // Only the key and read-order columns are sorted; a row repeats the key of the row
        // before it in that order unless it is the first of its key.
        let sort_by: Vec<String> = key.iter().map(|k| k.to_string()).chain([SOURCE_ORDER.to_string(), SOURCE_ROW.to_string()]).collect();
        let same_as_previous = key
            .iter()
            .map(|k| col(*k).eq_missing(col(*k).shift(lit(1))))
            .reduce(|a, b| a.and(b))
            .expect("a key has columns")
            .and(col("_position").gt(lit(0)));
        let repeats = df
            .clone()
            .lazy()
            .select(sort_by.iter().map(|c| col(c.as_str())).collect::<Vec<_>>())
            .with_row_index("_at", None)
            .sort(sort_by.clone(), by_source.clone())
            .with_row_index("_position", None)
            .filter(same_as_previous)
            .select([col("_at")])
            .collect()
            .ctx(ctx)?;
        let mut drop = vec![false; df.height()];
        for at in repeats.column("_at").and_then(|c| c.idx().cloned()).ctx(ctx)?.into_no_null_iter() {
            drop[at as usize] = true;
        }
        let last = key[key.len() - 1];
        let shown = df.column(last).ctx(ctx)?.clone();
        df = withdraw(
            df,
            table,
            &drop,
            |i| Rejection { reason: reason.into(), column: last.into(), value: any_value_text(&shown.get(i).unwrap_or(AnyValue::Null)) },
            report,
            rejects,
        )?;
    }
    let df = if table == Table::Enrollment { drop_overlapping_enrollment(df, report, rejects)? } else { df };
    Ok(df.drop_many([SOURCE_FILE, SOURCE_ROW, SOURCE_ORDER]))
}

/// Writes one finished shard file (on the shard writer thread).
fn write_shard(mut df: DataFrame, path: &Path) -> Result<()> {
    let target = crate::output::TempPath::new(path)?;
    ParquetWriter::new(target.create_buffered()?)
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::default())
        .finish(&mut df)
        .ctx(|| format!("writing {}", path.display()))?;
    target.commit()
}

/// Folds each beneficiary's later rows into the first one read: MBSF and RIF beneficiary files
/// hold one row per beneficiary and year, CCLF8 one per delivery. The first row gives the birth
/// date and sex; the death date is the first any row gives (a death is recorded in the year it
/// happens and may be missing from earlier years' rows). The later rows count as merged. `df` is
/// sorted by beneficiary, then read order.
fn merge_beneficiary_rows(df: DataFrame, report: &mut TableReport) -> Result<DataFrame> {
    let ctx = || "merging beneficiary rows".to_string();
    let bene = df.column("bene_id").and_then(|c| c.str().cloned()).ctx(ctx)?;
    let files = df.column(SOURCE_FILE).and_then(|c| c.str().cloned()).ctx(ctx)?;
    let death = df.column("death_date").and_then(|c| c.cast(&DataType::Int32)).and_then(|c| c.i32().cloned()).ctx(ctx)?;
    let mut keep = Vec::with_capacity(df.height());
    let mut deaths: Vec<Option<i32>> = death.iter().collect();
    let mut first = 0;
    for i in 0..df.height() {
        if i == 0 || bene.get(i) != bene.get(i - 1) {
            first = i;
            keep.push(true);
        } else {
            keep.push(false);
            report.tally(Path::new(files.get(i).unwrap_or("")), Tally::MergedLater);
            if deaths[first].is_none() {
                deaths[first] = deaths[i];
            }
        }
    }
    let mut df = df;
    let deaths = Int32Chunked::from_iter_options("death_date".into(), deaths.into_iter()).into_date().into_column();
    df.with_column(deaths).ctx(ctx)?;
    let keep: BooleanChunked = keep.into_iter().collect();
    df.filter(&keep).ctx(ctx)
}

/// `df` sorted by beneficiary, then read order (`_source_order`, `_source_row`), column by
/// column: each column is dropped once its sorted copy is made, so a shard is held about once,
/// not twice as a whole-frame sort would hold it. A spilled shard normally comes back in read
/// order already; then a stable sort on the beneficiary alone gives the same order, far faster
/// than a sort on all three keys (which remains the fallback).
fn sorted_by_beneficiary(df: DataFrame) -> PolarsResult<DataFrame> {
    let by = ["bene_id", SOURCE_ORDER, SOURCE_ROW];
    let in_read_order = {
        let order = df.column(SOURCE_ORDER)?.i64()?;
        let row = df.column(SOURCE_ROW)?.i64()?;
        let mut previous = (i64::MIN, i64::MIN);
        order.iter().zip(row.iter()).all(|key| match key {
            (Some(o), Some(r)) if (o, r) >= previous => {
                previous = (o, r);
                true
            }
            _ => false,
        })
    };
    let order = if in_read_order {
        df.column("bene_id")?.arg_sort(SortOptions::default().with_maintain_order(true))
    } else {
        let order = df
            .select(by)?
            .lazy()
            .with_row_index("_row", None)
            .sort(by, SortMultipleOptions::default().with_maintain_order(true))
            .select([col("_row")])
            .collect()?;
        order.column("_row")?.idx()?.clone()
    };
    // Gathering from one chunk is much faster than from the many runs a shard was read from.
    let columns = df.into_columns().into_iter().map(|c| c.rechunk().take(&order)).collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(order.len(), columns)
}

/// Counts one shard's ASC lines whose service month is in no enrollment row of their beneficiary.
fn asc_lines_outside_enrollment_in(staging: &Path, shard: u32) -> Result<u64> {
    let ctx = || format!("checking shard {shard}'s ASC lines against enrollment");
    let scan = |t: Table| LazyFrame::scan_parquet(PlRefPath::new(shard_path(staging, t, shard).to_string_lossy().as_ref()), ScanArgsParquet::default()).ctx(ctx);
    let month = |year: Expr, m: Expr| year.cast(DataType::Int64) * lit(12i64) + m.cast(DataType::Int64) - lit(1i64);
    let lines = scan(Table::Carrier)?
        .filter(col("place_of_service").eq(lit("24")))
        .select([col("bene_id"), month(col("line_first_date").dt().year(), col("line_first_date").dt().month()).alias("month")])
        .with_row_index("line", None);
    let runs = scan(Table::Enrollment)?.select([
        col("bene_id"),
        month(col("year"), col("first_month")).alias("from"),
        month(col("year"), col("last_month")).alias("to"),
    ]);
    let covered = lines
        .clone()
        .join(runs, [col("bene_id")], [col("bene_id")], JoinArgs::new(JoinType::Inner))
        .filter(col("month").gt_eq(col("from")).and(col("month").lt_eq(col("to"))))
        .select([col("line")])
        .unique(None, UniqueKeepStrategy::Any);
    let counts = lines
        .select([len().cast(DataType::Int64).alias("lines")])
        .collect()
        .ctx(ctx)?;
    let covered = covered.select([len().cast(DataType::Int64).alias("covered")]).collect().ctx(ctx)?;
    let get = |df: &DataFrame, c: &str| df.column(c).ok().and_then(|s| s.i64().ok().and_then(|v| v.get(0))).unwrap_or(0);
    Ok((get(&counts, "lines") - get(&covered, "covered")).max(0) as u64)
}

const OVERLAP_REASON: &str = "enrollment months overlap an earlier row of the same beneficiary and year";

/// Quarantines enrollment rows whose months overlap a row of the same beneficiary and year read
/// earlier. `df` is sorted by beneficiary, then read order.
fn drop_overlapping_enrollment(df: DataFrame, report: &mut TableReport, rejects: &mut RejectWriter) -> Result<DataFrame> {
    let ctx = || "checking enrollment overlaps".to_string();
    let bene = df.column("bene_id").and_then(|c| c.str().cloned()).ctx(ctx)?;
    let int = |name: &str| df.column(name).and_then(|c| c.i64().cloned()).ctx(ctx);
    let (year, first, last) = (int("year")?, int("first_month")?, int("last_month")?);
    let months = |i: usize| (year.get(i).unwrap_or(0), first.get(i).unwrap_or(1), last.get(i).unwrap_or(12));
    let mut drop = Vec::with_capacity(df.height());
    let mut current: Option<&str> = None;
    let mut months_of_year: Vec<(i64, u16)> = Vec::new();
    for i in 0..df.height() {
        let b = bene.get(i);
        if b != current {
            current = b;
            months_of_year.clear();
        }
        let (y, f, l) = months(i);
        let bits: u16 = (f..=l).fold(0, |m, month| m | 1 << (month - 1));
        let slot = match months_of_year.iter().position(|(yy, _)| *yy == y) {
            Some(k) => k,
            None => {
                months_of_year.push((y, 0));
                months_of_year.len() - 1
            }
        };
        let overlaps = months_of_year[slot].1 & bits != 0;
        if !overlaps {
            months_of_year[slot].1 |= bits;
        }
        drop.push(overlaps);
    }
    let why = |i: usize| {
        let (y, f, l) = months(i);
        Rejection { reason: OVERLAP_REASON.into(), column: "first_month".into(), value: format!("{y} months {f}-{l}") }
    };
    withdraw(df, Table::Enrollment, &drop, why, report, rejects)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixed vectors: the XXH64 reference values (seed 0) pin the algorithm; the signed hashes
    /// and shards at seed 42 were computed independently with the `xxhash` package from PyPI
    /// (`xxh64_intdigest(id, seed=42)`, read as signed, Python's floor `%`), and are the contract
    /// a distributed engine must reproduce.
    #[test]
    fn the_shard_hash_is_xxh64_seed_42_with_fixed_vectors() {
        assert_eq!(xxh64(b"", 0), 0xEF46_DB37_51D8_E999);
        assert_eq!(xxh64(b"abc", 0), 0x44BC_2CF5_AD77_0999);
        // Every branch: empty, 1 byte, under 4, 33 bytes (a stripe plus a tail), 100 bytes.
        let hundred: Vec<u8> = (0u8..100).collect();
        let inputs: [(&[u8], u64, u64); 5] = [
            (b"", 17241709254077376921, 11002672306508523268),
            (b"a", 15154266338359012955, 9864288744972464332),
            (b"abc", 4952883123889572249, 1423657621850124518),
            (b"0123456789abcdef0123456789abcdef!", 10015993316326139774, 12395805250992561007),
            (&hundred, 7692681977284421015, 9339668972473275655),
        ];
        for (input, seed0, seed42) in inputs {
            assert_eq!((xxh64(input, 0), xxh64(input, 42)), (seed0, seed42), "{input:?}");
        }
        let vectors: [(&str, i64, [u32; 5]); 5] = [
            ("abc", 1423657621850124518, [0, 2, 4, 6, 518]),
            ("SB12000001", -2317811686768927403, [1, 1, 2, 5, 597]),
            ("-100000000000001", -7599101079630586638, [0, 0, 0, 2, 362]),
            ("B1", -8345297107836998035, [1, 2, 1, 13, 965]),
            ("1", -928762887014768240, [0, 1, 6, 0, 760]),
        ];
        for (id, signed, shards) in vectors {
            assert_eq!(xxh64(id.as_bytes(), SHARD_SEED) as i64, signed, "{id}");
            for (n, expected) in [2u32, 3, 7, 16, 1000].into_iter().zip(shards) {
                assert_eq!(shard_of(id, n), expected, "{id} among {n}");
            }
            assert_eq!(shard_of(id, 1), 0);
        }
    }

    /// A beneficiary's rows of several years fold into the first read: its birth date and sex,
    /// the first death date any row gives; each later row counts as merged, not as produced.
    #[test]
    fn beneficiary_rows_of_several_years_merge_into_the_first() {
        let day = |y: i32, m: u32, d: u32| crate::claims::sink::date_to_days(chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap());
        let df = df!(
            "bene_id" => ["A", "A", "A", "B"],
            "birth_date" => [day(1950, 1, 1), day(1951, 1, 1), day(1950, 1, 1), day(1940, 6, 1)],
            "sex" => ["1", "2", "1", "2"],
            "death_date" => [None, Some(day(2022, 5, 1)), Some(day(2023, 1, 1)), None],
            SOURCE_FILE => ["mbsf_2021.csv", "mbsf_2022.csv", "mbsf_2023.csv", "mbsf_2021.csv"],
            SOURCE_ROW => [1i64, 1, 1, 2],
            SOURCE_ORDER => [0i64, 1, 2, 0],
        )
        .unwrap()
        .lazy()
        .with_columns([col("birth_date").cast(DataType::Date), col("death_date").cast(DataType::Date)])
        .collect()
        .unwrap();
        let mut report = TableReport::new(Table::Beneficiaries);
        for (file, n) in [("mbsf_2021.csv", 2), ("mbsf_2022.csv", 1), ("mbsf_2023.csv", 1)] {
            for _ in 0..n {
                report.tally(Path::new(file), Tally::Read);
                report.tally(Path::new(file), Tally::Accepted);
            }
        }
        let merged = merge_beneficiary_rows(df, &mut report).unwrap();
        assert_eq!(merged.height(), 2);
        let text = |c: &str| merged.column(c).unwrap().cast(&DataType::String).unwrap().str().unwrap().iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>();
        assert_eq!(text("bene_id"), [Some("A".to_string()), Some("B".into())]);
        assert_eq!(text("sex"), [Some("1".to_string()), Some("2".into())]);
        assert_eq!(text("birth_date"), [Some("1950-01-01".to_string()), Some("1940-06-01".into())]);
        assert_eq!(text("death_date"), [Some("2022-05-01".to_string()), None]);
        assert_eq!((report.rows_read, report.rows_produced, report.rows_accepted, report.rows_merged), (4, 2, 2, 2));
        assert!(report.is_balanced());
        let per_file: Vec<(u64, u64)> = report.inputs.iter().map(|i| (i.rows_accepted, i.rows_merged)).collect();
        assert_eq!(per_file, [(2, 0), (0, 1), (0, 1)]);
    }

    /// In read order, the beneficiary alone orders the rows; out of read order (a layout that
    /// stages files), the read-order columns break the ties. Both give the same order.
    #[test]
    fn shards_sort_by_beneficiary_then_read_order_whatever_order_they_arrive_in() {
        let sorted = |df: DataFrame| {
            let df = sorted_by_beneficiary(df).unwrap();
            let b = df.column("bene_id").unwrap().str().unwrap().clone();
            let v = df.column("v").unwrap().i64().unwrap().clone();
            (0..df.height()).map(|i| (b.get(i).unwrap().to_string(), v.get(i).unwrap())).collect::<Vec<_>>()
        };
        let in_order = df!("bene_id" => ["B", "A", "B", "A"], SOURCE_ORDER => [0i64, 0, 1, 1], SOURCE_ROW => [1i64, 2, 1, 2], "v" => [1i64, 2, 3, 4]).unwrap();
        let shuffled = df!("bene_id" => ["A", "B", "A", "B"], SOURCE_ORDER => [1i64, 1, 0, 0], SOURCE_ROW => [2i64, 1, 2, 1], "v" => [4i64, 3, 2, 1]).unwrap();
        let expected = vec![("A".to_string(), 2), ("A".to_string(), 4), ("B".to_string(), 1), ("B".to_string(), 3)];
        assert_eq!(sorted(in_order), expected);
        assert_eq!(sorted(shuffled), expected);
    }

    #[test]
    fn auto_shards_grow_with_the_input() {
        assert_eq!(auto_shards(0, 0), 1);
        assert_eq!(auto_shards(60 << 20, 0), 1);
        assert_eq!(auto_shards(100 << 20, 0), 2);
        assert_eq!(auto_shards(0, 20 << 20), 3);
        assert_eq!(auto_shards(0, 200 << 20), 25);
        assert_eq!(auto_shards(2 << 30, 0), 32);
        assert_eq!(auto_shards(u64::MAX, 0), MAX_SHARDS);
    }
}
