//! Integration tests: rules_tests
