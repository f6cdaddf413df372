//! Integration tests: benefit_tests
