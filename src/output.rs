//! Writing outputs so that a reader never sees a partial file: everything is written to a
//! temporary name in the destination folder and renamed into place only when complete.

use crate::error::{AscqrError, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A destination path reserved under a temporary name in the same folder. Writers write to
/// [`TempPath::tmp`]; [`TempPath::commit`] renames it into place; dropped without commit, the
/// temporary file is removed.
pub struct TempPath {
    final_path: PathBuf,
    tmp_path: PathBuf,
    committed: bool,
}

impl TempPath {
    pub fn new(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| AscqrError::io(parent, e))?;
            }
        }
        let file_name = path
            .file_name()
            .ok_or_else(|| AscqrError::InvalidOption(format!("{} is not a file path", path.display())))?;
        let tmp_path = path.with_file_name(format!(".{}.tmp", file_name.to_string_lossy()));
        Ok(TempPath { final_path: path.to_path_buf(), tmp_path, committed: false })
    }

    pub fn tmp(&self) -> &Path {
        &self.tmp_path
    }

    pub fn path(&self) -> &Path {
        &self.final_path
    }

    /// Creates the temporary file for writing.
    pub fn create_file(&self) -> Result<File> {
        File::create(&self.tmp_path).map_err(|e| AscqrError::io(&self.tmp_path, e))
    }

    /// Creates the temporary file behind a 1 MiB buffer, for the Parquet writers of large files:
    /// they write every page with a call of its own, and unbuffered those calls were a tenth of
    /// a national ingest. The writer flushes the buffer when it ends the file (polars does), before
    /// [`TempPath::commit`].
    pub fn create_buffered(&self) -> Result<BufWriter<File>> {
        Ok(BufWriter::with_capacity(1 << 20, self.create_file()?))
    }

    pub fn commit(mut self) -> Result<()> {
        std::fs::rename(&self.tmp_path, &self.final_path).map_err(|e| AscqrError::io(&self.final_path, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

/// A buffered file written under a temporary name; [`AtomicFile::commit`] flushes it and moves
/// it into place.
pub struct AtomicFile {
    target: TempPath,
    writer: BufWriter<File>,
}

impl AtomicFile {
    pub fn create(path: &Path) -> Result<Self> {
        let target = TempPath::new(path)?;
        let writer = BufWriter::with_capacity(1 << 20, target.create_file()?);
        Ok(AtomicFile { target, writer })
    }

    pub fn path(&self) -> &Path {
        self.target.path()
    }

    pub fn writer(&mut self) -> &mut BufWriter<File> {
        &mut self.writer
    }

    pub fn commit(self) -> Result<()> {
        let AtomicFile { target, writer } = self;
        let file = writer.into_inner().map_err(|e| AscqrError::io(target.tmp(), e.into_error()))?;
        file.sync_all().map_err(|e| AscqrError::io(target.tmp(), e))?;
        drop(file);
        target.commit()
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

/// Writes a whole text/bytes file atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.writer().write_all(bytes).map_err(|e| AscqrError::io(path, e))?;
    f.commit()
}

/// Reads back a whole Parquet file the engine wrote (a cohort, an analysis file, a run's
/// facility results).
pub fn read_parquet(path: &Path) -> Result<polars::prelude::DataFrame> {
    use crate::error::PolarsContext;
    use polars::prelude::{ParquetReader, SerReader};
    let file = File::open(path).map_err(|e| AscqrError::io(path, e))?;
    ParquetReader::new(file).finish().ctx(|| format!("reading {}", path.display()))
}

/// A file read as input, for a manifest: where, how large, and its sha256.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct InputFile {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Size and sha256 of a file, read once in full.
pub fn describe_input(path: &Path) -> Result<InputFile> {
    use sha2::{Digest, Sha256};
    let mut file = File::open(path).map_err(|e| AscqrError::io(path, e))?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher).map_err(|e| AscqrError::io(path, e))?;
    let sha256 = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(InputFile { path: path.display().to_string(), bytes, sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_appears_until_commit_and_an_abandoned_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.csv");
        {
            let mut f = AtomicFile::create(&p).unwrap();
            f.writer().write_all(b"a,b\n").unwrap();
            assert!(!p.exists());
        }
        assert!(!p.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "temporary removed");
        let mut f = AtomicFile::create(&p).unwrap();
        f.writer().write_all(b"a,b\n").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a,b\n");
    }
}
