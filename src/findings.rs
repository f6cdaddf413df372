//! Findings: what every check produces, and how they are written (`findings.parquet`,
//! `findings.csv`).

use std::sync::Arc;

use arrow::array::{ArrayRef, Decimal128Builder, RecordBatch, StringBuilder};
use rust_decimal::Decimal;

use crate::error::{Error, Result};
use crate::schema::findings_schema;

/// `high` / `medium` / `low`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    High,
    Medium,
    Low,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "high" => Some(Severity::High),
            "medium" => Some(Severity::Medium),
            "low" => Some(Severity::Low),
            _ => None,
        }
    }
}

/// One finding on one settlement, as the Rust-side checks produce it (data quality,
/// benefit recalculation, deadlines, statistics). SQL rules produce Arrow batches of the same
/// shape directly.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub setl_id: String,
    pub psn_no: Option<String>,
    pub fixmedins_code: Option<String>,
    pub rule_id: String,
    pub category: &'static str,
    pub severity: Severity,
    pub amount_at_risk: Decimal,
    /// Human-readable evidence. Never a full ID number or name.
    pub detail: String,
    /// `settlement`, `person` or `facility`.
    pub entity_type: &'static str,
    pub entity_id: String,
    /// The fee lines the finding rests on, `;`-separated.
    pub feedetl_sns: Option<String>,
}

/// Converts a decimal to the `i128` mantissa of the given scale, rounding half away from
/// zero where it has more places.
pub fn decimal_to_i128(d: Decimal, scale: u32) -> i128 {
    let mut d = d.round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    d.rescale(scale);
    d.mantissa()
}

/// Builds a `findings` record batch from Rust-side findings.
pub fn to_batch(findings: &[Finding], run_id: &str) -> Result<RecordBatch> {
    let n = findings.len();
    let mut setl = StringBuilder::with_capacity(n, n * 16);
    let mut psn = StringBuilder::with_capacity(n, n * 16);
    let mut fix = StringBuilder::with_capacity(n, n * 12);
    let mut rule = StringBuilder::with_capacity(n, n * 16);
    let mut cat = StringBuilder::with_capacity(n, n * 12);
    let mut sev = StringBuilder::with_capacity(n, n * 6);
    let mut amt = Decimal128Builder::with_capacity(n);
    let mut detail = StringBuilder::with_capacity(n, n * 64);
    let mut et = StringBuilder::with_capacity(n, n * 10);
    let mut eid = StringBuilder::with_capacity(n, n * 16);
    let mut sns = StringBuilder::with_capacity(n, n * 8);
    let mut run = StringBuilder::with_capacity(n, n * 20);
    for x in findings {
        setl.append_value(&x.setl_id);
        psn.append_option(x.psn_no.as_deref());
        fix.append_option(x.fixmedins_code.as_deref());
        rule.append_value(&x.rule_id);
        cat.append_value(x.category);
        sev.append_value(x.severity.as_str());
        amt.append_value(decimal_to_i128(x.amount_at_risk, 2));
        detail.append_value(&x.detail);
        et.append_value(x.entity_type);
        eid.append_value(&x.entity_id);
        sns.append_option(x.feedetl_sns.as_deref());
        run.append_value(run_id);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(setl.finish()),
        Arc::new(psn.finish()),
        Arc::new(fix.finish()),
        Arc::new(rule.finish()),
        Arc::new(cat.finish()),
        Arc::new(sev.finish()),
        Arc::new(amt.finish().with_precision_and_scale(18, 2).map_err(|e| Error::arrow("findings", e))?),
        Arc::new(detail.finish()),
        Arc::new(et.finish()),
        Arc::new(eid.finish()),
        Arc::new(sns.finish()),
        Arc::new(run.finish()),
    ];
    RecordBatch::try_new(findings_schema(), cols).map_err(|e| Error::arrow("findings", e))
}
