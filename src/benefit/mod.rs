//! Benefit recalculation and payment deadlines (`POLICY.md`).
//!
//! - [`policy`]: the policy files (every parameter, per scheme and years in force);
//! - [`calendar`]: the official working-day calendar, as data;
//! - [`kernel`]: the arithmetic of one person-year (resident curve, employee share);
//! - [`recalc`]: [`recalculate`], every critical-illness and large-expense payment recomputed
//!   to the cent over the settlement table (rayon over person-years), `benefit_check` rows,
//!   `benefit_mismatch` findings and the outreach list;
//! - [`deadline`]: [`check_deadlines`], `late_payment` findings in working days;
//! - [`outreach`]: the list of persons owed money.
//!
//! ```no_run
//! use medaudit::benefit::{recalculate, Incomplete, PolicySet};
//! # fn f(setl: &[arrow::array::RecordBatch], codes: &medaudit::codes::CodeTables) -> medaudit::Result<()> {
//! let policies = PolicySet::load_default()?;
//! let out = recalculate(setl, &policies, codes, &Incomplete::default(), None)?;
//! println!("{} mismatches", out.findings.len());
//! # Ok(()) }
//! ```

use std::collections::HashSet;

use arrow::array::RecordBatch;

use crate::findings::Finding;

pub mod calendar;
pub mod deadline;
pub mod kernel;
pub mod outreach;
pub mod policy;
pub mod recalc;
mod text;

pub use calendar::{Calendar, Undecided};
pub use deadline::{UndecidedItem, check_deadlines, default_as_of};
pub use outreach::OutreachRow;
pub use policy::{Fund, Policy, PolicySet};
pub use recalc::recalculate;

/// `rule_id` of resident critical-illness mismatches.
pub const RULE_RESIDENT: &str = "BEN001";
/// `rule_id` of employee large-expense mismatches.
pub const RULE_EMPLOYEE: &str = "BEN002";
/// `rule_id` of late payments.
pub const RULE_LATE: &str = "PAY001";

/// Persons/years to mark incomplete (from quarantine): a settlement quarantined for this
/// `psn_no` with this year, or with an unparseable `enddate` (then every year of that
/// `psn_no`).
#[derive(Debug, Clone, Default)]
pub struct Incomplete {
    pub by_year: HashSet<(String, i32)>,
    pub all_years: HashSet<String>,
}

/// What the recalculation produces.
#[derive(Debug, Default)]
pub struct BenefitOutput {
    /// `benefit_check` rows, schema [`crate::schema::benefit_check_schema`], ordered by
    /// person, fund, year and settlement order.
    pub checks: Vec<RecordBatch>,
    /// `benefit_mismatch` findings (complete person-years only).
    pub findings: Vec<Finding>,
    /// Person-years owed money (expected above recorded by more than the tolerance).
    pub outreach: Vec<OutreachRow>,
    /// For the manifest (简体中文): which policy served which year, years not checked,
    /// incomplete person-years, tolerance.
    pub notes: Vec<String>,
    /// Counts for the manifest.
    pub stats: BenefitStats,
}

/// Counts of one recalculation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BenefitStats {
    /// `benefit_check` rows written.
    pub checked_rows: usize,
    /// Of which in incomplete person-years.
    pub incomplete_rows: usize,
    /// Person-years (per fund) recalculated.
    pub person_years: usize,
    /// Of which incomplete.
    pub incomplete_person_years: usize,
    /// Reversals whose original was missing or unusable.
    pub orphan_reversals: usize,
    /// The fund's own settlements with a `med_type` unknown to the code table (their
    /// person-years are incomplete).
    pub unknown_med_type: usize,
    /// Settlements skipped because no policy covers their year (before the first policy).
    pub not_checked: usize,
}

/// What the deadline check produces.
#[derive(Debug, Default)]
pub struct DeadlineOutput {
    /// `late_payment` findings.
    pub findings: Vec<Finding>,
    /// Payments whose verdict needs a calendar year the calendar lacks (or a channel the
    /// policy has no deadline for).
    pub undecided: Vec<UndecidedItem>,
    /// Payments decided (on time or late).
    pub checked: usize,
    /// For the manifest (简体中文): as-of date, payments without a policy, etc.
    pub notes: Vec<String>,
}
