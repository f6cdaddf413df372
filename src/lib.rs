//! # medaudit
//!
//! An engine that audits the settlement data of China's public medical insurance for
//! fraud, error and abuse, for an insurer that runs the resident critical-illness insurance
//! (城乡居民大病保险) and the employee large-expense subsidy (职工大额医疗费用补助).
//!
//! The pipeline, one module per stage:
//!
//! 1. [`ingest`]: read an input folder (`SCHEMA.md`), validate every row, keep the accepted
//!    rows as Parquet and put rejected ones in quarantine with their reason;
//! 2. [`engine`]: the SQL rules of `queries/` over 100 % of the accepted data, in DataFusion;
//! 3. [`benefit`]: the critical-illness and large-expense payments recomputed to the cent,
//!    and payment deadlines in working days;
//! 4. [`run`]: findings, manifest and the atomically published output folder;
//! 5. [`cases`]: the case store where findings become reviewed, confirmed, deducted and
//!    exported cases, with an audit log.
//!
//! With the cargo feature `distributed`, [`distributed`] runs stage 2 (and the statistical
//! aggregations) on an Apache Ballista cluster instead of this process.

// Columnar code passes tuples of Arrow arrays around; naming each would not help the reader.
#![allow(clippy::type_complexity)]

pub mod benefit;
pub mod builtin;
pub mod cases;
pub mod codes;
#[cfg(feature = "distributed")]
pub mod distributed;
pub mod engine;
pub mod error;
pub mod fault;
pub mod findings;
pub mod idcard;
pub mod ingest;
pub mod manifest;
pub mod mask;
pub mod nightly;
pub mod output;
pub mod paths;
pub mod publish;
pub mod report;
pub mod report_text;
pub mod run;
pub mod sample;
pub mod schema;
pub mod stats;
/// The synthetic data generator (`medaudit gen`). Its folder is `src/gen/`, but `gen` is a
/// reserved keyword in Rust 2024: refer to it as `crate::synth`.
#[path = "gen/mod.rs"]
pub mod synth;
pub mod web;

pub use error::{Error, Result};
