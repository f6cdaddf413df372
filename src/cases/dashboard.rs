//! The figures of the review workbench's dashboard: cases by status, money confirmed and
//! deducted in a month, the rules with the most confirmed money, reviewer throughput.

use rusqlite::params;
use rust_decimal::Decimal;

use super::auth::{Actor, Permission};
use super::db::from_cents;
use super::review::parse_month;
use super::{CaseResult, Status, Store};

/// Cases of one status.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StatusLine {
    pub status: Status,
    pub cases: i64,
    pub amount_at_risk: Decimal,
}

/// A rule's confirmed violations: a case counts for every rule with a finding on it (several
/// rules may rest on the same money, so the lines do not add up to the total).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RuleMoney {
    pub rule_id: String,
    pub cases: i64,
    pub confirmed: Decimal,
}

/// A reviewer's decisions in the month.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReviewerLine {
    pub reviewer: String,
    /// Decisions (confirmed or dismissed) dated in the month.
    pub decided: i64,
    pub confirmed: i64,
    pub dismissed: i64,
    pub confirmed_amount: Decimal,
    /// Cases the reviewer has in review now.
    pub in_review: i64,
}

/// The dashboard of one month.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Dashboard {
    /// `YYYY-MM`.
    pub month: String,
    /// Every status, in lifecycle order (zero lines included).
    pub by_status: Vec<StatusLine>,
    /// Violations decided in the month (whatever their status now) and their amount.
    pub confirmed_cases: i64,
    pub confirmed_amount: Decimal,
    /// Deducted from the month's payment, and recovered from persons in the month.
    pub deducted_cases: i64,
    pub deducted_amount: Decimal,
    pub recovered_cases: i64,
    pub recovered_amount: Decimal,
    /// Rules by confirmed money, all time, largest first (at most 10).
    pub top_rules: Vec<RuleMoney>,
    pub reviewers: Vec<ReviewerLine>,
}

const VIOLATION: &str = "('confirmed', 'appealed', 'deducted', 'recovered')";

impl Store {
    /// The dashboard of `month` (`YYYY-MM`).
    pub fn dashboard(&self, actor: &Actor, month: &str) -> CaseResult<Dashboard> {
        actor.require(Permission::ViewCases)?;
        let first = parse_month(month)?;
        let month = first.format("%Y-%m").to_string();
        let like = format!("{month}-%");
        let conn = &self.conn;
        let mut by_status = Vec::new();
        for s in Status::ALL {
            let (n, cents): (i64, i64) = conn.query_row(
                "SELECT count(*), COALESCE(sum(amount_cents), 0) FROM cases WHERE status = ?1",
                [s.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            by_status.push(StatusLine { status: s, cases: n, amount_at_risk: from_cents(cents) });
        }
        let sum = |sql: &str, p: &str| -> CaseResult<(i64, i64)> {
            Ok(conn.query_row(sql, [p], |r| Ok((r.get(0)?, r.get(1)?)))?)
        };
        let (confirmed_cases, confirmed) = sum(
            &format!(
                "SELECT count(*), COALESCE(sum(deduct_cents), 0) FROM cases
                 WHERE status IN {VIOLATION} AND decided_on LIKE ?1"
            ),
            &like,
        )?;
        let (deducted_cases, deducted) = sum(
            "SELECT count(*), COALESCE(sum(deduct_cents), 0) FROM cases
             WHERE status = 'deducted' AND deducted_month = ?1",
            &month,
        )?;
        let (recovered_cases, recovered) = sum(
            "SELECT count(*), COALESCE(sum(deduct_cents), 0) FROM cases
             WHERE status = 'recovered' AND recovered_on LIKE ?1",
            &like,
        )?;
        let mut st = conn.prepare(&format!(
            "SELECT r.rule_id, count(*), COALESCE(sum(c.deduct_cents), 0)
             FROM (SELECT DISTINCT case_id, rule_id FROM findings) r JOIN cases c ON c.case_id = r.case_id
             WHERE c.status IN {VIOLATION}
             GROUP BY r.rule_id ORDER BY 3 DESC, r.rule_id LIMIT 10"
        ))?;
        let top_rules = st
            .query_map([], |r| {
                Ok(RuleMoney { rule_id: r.get(0)?, cases: r.get(1)?, confirmed: from_cents(r.get(2)?) })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut st = conn.prepare(&format!(
            "SELECT who,
                    sum(CASE WHEN decided_on LIKE ?1 THEN 1 ELSE 0 END),
                    sum(CASE WHEN decided_on LIKE ?1 AND status IN {VIOLATION} THEN 1 ELSE 0 END),
                    sum(CASE WHEN decided_on LIKE ?1 AND status = 'dismissed' THEN 1 ELSE 0 END),
                    sum(CASE WHEN decided_on LIKE ?1 AND status IN {VIOLATION} THEN COALESCE(deduct_cents, 0) ELSE 0 END),
                    sum(CASE WHEN status = 'in_review' AND reviewer = who THEN 1 ELSE 0 END)
             FROM (SELECT COALESCE(decided_by, reviewer) AS who, * FROM cases) WHERE who IS NOT NULL
             GROUP BY who ORDER BY 2 DESC, who"
        ))?;
        let reviewers = st
            .query_map(params![like], |r| {
                Ok(ReviewerLine {
                    reviewer: r.get(0)?,
                    decided: r.get(1)?,
                    confirmed: r.get(2)?,
                    dismissed: r.get(3)?,
                    confirmed_amount: from_cents(r.get(4)?),
                    in_review: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Dashboard {
            month,
            by_status,
            confirmed_cases,
            confirmed_amount: from_cents(confirmed),
            deducted_cases,
            deducted_amount: from_cents(deducted),
            recovered_cases,
            recovered_amount: from_cents(recovered),
            top_rules,
            reviewers,
        })
    }
}
