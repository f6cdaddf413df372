//! Integration tests: gen_tests
