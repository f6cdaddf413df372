//! The one integration-test binary (each extra binary would link DataFusion again).

mod benefit_tests;
mod common;
mod gen_tests;
mod ingest_tests;
mod rules_tests;
mod sample_tests;
