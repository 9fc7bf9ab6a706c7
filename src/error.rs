//! The engine's error type. Every variant that concerns input data names the file and, where
//! there is one, the row, column and offending value, so a user can find and fix it. Values from
//! identifier columns are never put in a message (claims are protected health information).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AscqrError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("{dir}: table `{table}` not found (looked for {table}.parquet, {table}.csv or a {table}/ folder of .parquet/.csv files)")]
    MissingTable { dir: PathBuf, table: String },

    #[error("{dir}: no {what} file found (looked for {pattern})")]
    MissingSourceFile { dir: PathBuf, what: String, pattern: String },

    #[error("{file}: missing column `{column}` (table {table})")]
    MissingColumn { file: PathBuf, table: String, column: String },

    #[error("{file}: column `{column}` has type {found}, expected {expected}")]
    ColumnType { file: PathBuf, column: String, found: String, expected: String },

    #[error("{file}: row {row}, column `{column}`: value {value:?} is not {expected}")]
    BadValue { file: PathBuf, row: u64, column: String, value: String, expected: String },

    #[error("{file}: row {row}: {message}")]
    BadRow { file: PathBuf, row: u64, message: String },

    #[error("{file}: {source}")]
    Csv { file: PathBuf, source: csv::Error },

    #[error("invalid option: {0}")]
    InvalidOption(String),

    #[error("{context}: {source}")]
    Polars { context: String, source: polars::error::PolarsError },

    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = AscqrError> = std::result::Result<T, E>;

impl AscqrError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AscqrError::Io { path: path.into(), source }
    }
    pub fn polars(context: impl Into<String>, source: polars::error::PolarsError) -> Self {
        AscqrError::Polars { context: context.into(), source }
    }
}

/// Adds a context string to a polars result.
pub trait PolarsContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> PolarsContext<T> for polars::error::PolarsResult<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| AscqrError::polars(context(), e))
    }
}
