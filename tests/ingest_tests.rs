//! Integration tests: ingest_tests
