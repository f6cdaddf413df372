//! One error type for the engine. Every error says what was being done and with which input,
//! so that the CLI can print one clear line and exit non-zero.

use std::path::PathBuf;

/// The engine's error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    /// The input does not follow the data contract (missing table or columns, ...).
    #[error("{0}")]
    Input(String),
    /// A configuration, policy, calendar, rule or knowledge-base file is wrong.
    #[error("{path}: {msg}")]
    Config { path: PathBuf, msg: String },
    /// A query failed in DataFusion.
    #[error("{context}: {source}")]
    DataFusion { context: String, source: Box<datafusion::error::DataFusionError> },
    /// Arrow or Parquet failed.
    #[error("{context}: {msg}")]
    Arrow { context: String, msg: String },
    /// Anything else, with its context.
    #[error("{0}")]
    Other(String),
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }
    pub fn config(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Config { path: path.into(), msg: msg.into() }
    }
    pub fn df(context: impl Into<String>, source: datafusion::error::DataFusionError) -> Self {
        Error::DataFusion { context: context.into(), source: Box::new(source) }
    }
    pub fn arrow(context: impl Into<String>, e: impl std::fmt::Display) -> Self {
        Error::Arrow { context: context.into(), msg: e.to_string() }
    }
}

/// `input_err!("...", args)` builds an [`Error::Input`].
#[macro_export]
macro_rules! input_err {
    ($($arg:tt)*) => { $crate::error::Error::Input(format!($($arg)*)) };
}

/// `other_err!("...", args)` builds an [`Error::Other`].
#[macro_export]
macro_rules! other_err {
    ($($arg:tt)*) => { $crate::error::Error::Other(format!($($arg)*)) };
}
