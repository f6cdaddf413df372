//! The deduction list of a month: confirmed violations per facility for its next monthly
//! payment (河南大病合同 第十六条、漯河大额合同 第二十一条：三方确认后，不合规费用在下月结算资金时扣除),
//! recoveries from persons for manual reimbursements, and the cases still waiting for a
//! confirmation or an appeal.

use rusqlite::params;
use rust_decimal::Decimal;

use super::auth::{Actor, Permission};
use super::db::from_cents;
use super::query::mask_name;
use super::review::{Party, load_state, parse_month};
use super::{CaseResult, Status, Store};

/// One case to deduct.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeductionLine {
    pub case_id: i64,
    pub entity_type: String,
    pub entity_id: String,
    pub amount: Decimal,
    /// Day of the last of the three confirmations.
    pub confirmed_on: String,
    pub decided_by: Option<String>,
    pub rules: Vec<String>,
    /// Already recorded as deducted in this month.
    pub deducted: bool,
}

/// The deductions of one facility.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FacilityDeductions {
    pub fixmedins_code: String,
    pub fixmedins_name: Option<String>,
    pub total: Decimal,
    pub lines: Vec<DeductionLine>,
}

/// One amount to recover from a person (manual reimbursement).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RecoveryLine {
    pub case_id: i64,
    pub psn_no: String,
    /// Masked.
    pub psn_name: Option<String>,
    pub amount: Decimal,
    pub confirmed_on: String,
    pub recovered_on: Option<String>,
}

/// A confirmed violation not ready for deduction.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PendingLine {
    pub case_id: i64,
    pub recover_party: Option<String>,
    pub amount: Decimal,
    pub status: Status,
    /// Parties whose confirmation is missing.
    pub missing: Vec<Party>,
    /// Confirmed in the month itself: deducted the month after.
    pub confirmed_on: Option<String>,
}

/// The list for one month's payment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeductionList {
    pub month: String,
    pub facilities: Vec<FacilityDeductions>,
    pub total: Decimal,
    pub recoveries: Vec<RecoveryLine>,
    pub pending: Vec<PendingLine>,
}

impl Store {
    /// The deduction list for the payment of `month` (YYYY-MM): every confirmed violation
    /// whose three confirmations were complete before the month began and that is not yet
    /// deducted, with those already deducted in that month; recoveries from persons ready or
    /// done in the month; and what is still pending.
    pub fn deductions(&self, actor: &Actor, month: &str) -> CaseResult<DeductionList> {
        actor.require(Permission::ViewCases)?;
        let first = parse_month(month)?.to_string();
        let month = first[..7].to_string();
        let mut st = self.conn.prepare(
            "SELECT case_id FROM cases
             WHERE status IN ('confirmed', 'appealed') OR (status = 'deducted' AND deducted_month = ?1)
                OR (status = 'recovered' AND substr(recovered_on, 1, 7) = ?1)
             ORDER BY case_id",
        )?;
        let ids: Vec<i64> = st.query_map([&month], |r| r.get(0))?.collect::<Result<_, _>>()?;
        let mut facilities: std::collections::BTreeMap<String, FacilityDeductions> = Default::default();
        let mut recoveries = Vec::new();
        let mut pending = Vec::new();
        for id in ids {
            let s = load_state(&self.conn, id)?;
            let (party, recovered_on): (Option<String>, Option<String>) = self.conn.query_row(
                "SELECT recover_party, recovered_on FROM cases WHERE case_id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let amount = from_cents(s.deduct_cents.unwrap_or(0));
            let confirmed_on = s.confirmed_on();
            let ready =
                s.status == Status::Confirmed && confirmed_on.as_deref().is_some_and(|d| d < first.as_str());
            let done = matches!(s.status, Status::Deducted | Status::Recovered);
            if !(ready || done) {
                pending.push(PendingLine {
                    case_id: id,
                    recover_party: party,
                    amount,
                    status: s.status,
                    missing: s.missing(),
                    confirmed_on,
                });
                continue;
            }
            let confirmed_on = confirmed_on.unwrap_or_default();
            if s.recover_from.as_deref() == Some("person") {
                let psn = party.unwrap_or_default();
                let name: Option<String> = self
                    .conn
                    .query_row(
                        "SELECT psn_name FROM settlements WHERE psn_no = ?1 LIMIT 1",
                        params![psn],
                        |r| r.get::<_, String>(0),
                    )
                    .ok()
                    .map(|n| mask_name(&n, false));
                recoveries.push(RecoveryLine {
                    case_id: id,
                    psn_no: psn,
                    psn_name: name,
                    amount,
                    confirmed_on,
                    recovered_on,
                });
                continue;
            }
            let code = party.unwrap_or_default();
            let mut rs = self
                .conn
                .prepare("SELECT DISTINCT rule_id FROM findings WHERE case_id = ?1 ORDER BY rule_id")?;
            let rules: Vec<String> = rs.query_map([id], |r| r.get(0))?.collect::<Result<_, _>>()?;
            let name: Option<String> = self
                .conn
                .query_row("SELECT fixmedins_name FROM facilities WHERE fixmedins_code = ?1", [&code], |r| {
                    r.get(0)
                })
                .ok();
            let f = facilities.entry(code.clone()).or_insert_with(|| FacilityDeductions {
                fixmedins_code: code,
                fixmedins_name: name,
                total: Decimal::ZERO,
                lines: vec![],
            });
            f.total += amount;
            f.lines.push(DeductionLine {
                case_id: id,
                entity_type: s.entity_type.clone(),
                entity_id: s.entity_id.clone(),
                amount,
                confirmed_on,
                decided_by: s.decided_by.clone(),
                rules,
                deducted: s.status == Status::Deducted,
            });
        }
        let facilities: Vec<FacilityDeductions> = facilities.into_values().collect();
        let total = facilities.iter().map(|f| f.total).sum();
        Ok(DeductionList { month, facilities, total, recoveries, pending })
    }

    /// Records every ready line of the month's list as deducted in that month; returns the
    /// cases recorded.
    pub fn record_deductions(&mut self, actor: &Actor, month: &str) -> CaseResult<Vec<i64>> {
        actor.require(Permission::Deduct)?;
        let list = self.deductions(actor, month)?;
        let mut done = Vec::new();
        for f in &list.facilities {
            for l in f.lines.iter().filter(|l| !l.deducted) {
                self.deduct(actor, l.case_id, &list.month)?;
                done.push(l.case_id);
            }
        }
        Ok(done)
    }
}
