//! The one integration-test binary (each extra binary would link DataFusion again).
#![allow(clippy::type_complexity)]

mod benefit_tests;
mod cases_tests;
mod common;
mod distributed_tests;
mod e2e_tests;
mod gen_tests;
mod ingest_tests;
mod nightly_tests;
mod report_tests;
mod rules_tests;
mod run_tests;
mod sample_tests;
mod stats_tests;
mod workbench_tests;
