//! Review decisions: the lifecycle's transitions, each in one transaction with its audit-log
//! entry.

use chrono::NaiveDate;
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use rust_decimal::Decimal;

use super::auth::{Actor, Permission};
use super::db::{from_cents, to_cents, today};
use super::query::case_label;
use super::status::Action;
use super::{CaseError, CaseResult, Status, Store, audit, db};

/// A party that confirms a violation before deduction (三方确认).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Party {
    /// 乙方: the insurer (must be another user than the reviewer who decided: four eyes).
    Insurer,
    /// 医保经办机构: the insurance agency.
    Agency,
    /// 定点医疗机构: the facility (not needed when the money is recovered from the person).
    Facility,
}

impl Party {
    pub const ALL: [Party; 3] = [Party::Insurer, Party::Agency, Party::Facility];
    pub fn as_str(self) -> &'static str {
        match self {
            Party::Insurer => "insurer",
            Party::Agency => "agency",
            Party::Facility => "facility",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Party::Insurer => "保险公司",
            Party::Agency => "医保经办机构",
            Party::Facility => "定点医疗机构",
        }
    }
    fn column(self) -> &'static str {
        self.as_str()
    }
}

impl std::str::FromStr for Party {
    type Err = CaseError;
    fn from_str(s: &str) -> Result<Party, CaseError> {
        Party::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == s.trim() || p.label() == s.trim())
            .ok_or_else(|| CaseError::Invalid(format!("未知确认方 `{s}`（可用：insurer、agency、facility）")))
    }
}

/// A party's confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub party: Party,
    /// The day the party confirmed (default: today).
    pub date: Option<NaiveDate>,
    /// The document that records it (letter number, minutes), free text.
    pub reference: String,
}

/// From whom a confirmed amount is recovered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum RecoverFrom {
    /// Deducted from this facility's next monthly payment (直接结算).
    Facility(String),
    /// Recovered from this insured person (手工报销: the insurer paid the person).
    Person(String),
}

/// How an appeal ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppealOutcome {
    /// 维持: the violation stands with its amount; the facility's confirmation is recorded again.
    Upheld,
    /// 申诉成立: the case is dismissed.
    Accepted,
    /// 部分成立: the violation stands with a new amount, to be confirmed again by all three.
    Adjusted(Decimal),
}

/// The state of a case a transition looks at.
pub(crate) struct CaseState {
    pub(crate) id: i64,
    pub(crate) entity_type: String,
    pub(crate) entity_id: String,
    pub(crate) status: Status,
    pub(crate) decided_by: Option<String>,
    pub(crate) recover_from: Option<String>,
    pub(crate) confirmed: [Option<String>; 3],
    pub(crate) deduct_cents: Option<i64>,
}

impl CaseState {
    fn label(&self) -> String {
        case_label(self.id)
    }
    /// The parties whose confirmation the recovery needs.
    pub(crate) fn needed(&self) -> &'static [Party] {
        if self.recover_from.as_deref() == Some("person") {
            &[Party::Insurer, Party::Agency]
        } else {
            &Party::ALL
        }
    }
    pub(crate) fn missing(&self) -> Vec<Party> {
        self.needed().iter().copied().filter(|p| self.confirmed[*p as usize].is_none()).collect()
    }
    /// The day of the last confirmation, when all needed are there.
    pub(crate) fn confirmed_on(&self) -> Option<String> {
        if !self.missing().is_empty() {
            return None;
        }
        self.needed().iter().filter_map(|p| self.confirmed[*p as usize].clone()).max()
    }
}

pub(crate) fn load_state(tx: &rusqlite::Connection, id: i64) -> CaseResult<CaseState> {
    tx.query_row(
        "SELECT case_id, entity_type, entity_id, status, decided_by, recover_from, insurer_on, agency_on, facility_on,
                deduct_cents
         FROM cases WHERE case_id = ?1",
        [id],
        |r| {
            let status: String = r.get(3)?;
            Ok((
                CaseState {
                    id: r.get(0)?,
                    entity_type: r.get(1)?,
                    entity_id: r.get(2)?,
                    status: Status::Flagged,
                    decided_by: r.get(4)?,
                    recover_from: r.get(5)?,
                    confirmed: [r.get(6)?, r.get(7)?, r.get(8)?],
                    deduct_cents: r.get(9)?,
                },
                status,
            ))
        },
    )
    .optional()?
    .ok_or_else(|| CaseError::NotFound(format!("案件 {}", case_label(id))))
    .and_then(|(mut s, status)| {
        s.status = Status::parse_stored(&status)?;
        Ok(s)
    })
}

/// `YYYY-MM` → its first day.
pub(crate) fn parse_month(s: &str) -> CaseResult<NaiveDate> {
    NaiveDate::parse_from_str(&format!("{}-01", s.trim()), "%Y-%m-%d")
        .map_err(|_| CaseError::Invalid(format!("`{s}` 不是月份（YYYY-MM）")))
}

fn nonempty(s: &str, what: &str) -> CaseResult<String> {
    let t = s.trim();
    if t.is_empty() { Err(CaseError::Invalid(format!("须填写{what}"))) } else { Ok(t.to_string()) }
}

/// The default party to recover from: the facility for direct settlements, the person for
/// manual reimbursements (`setl_mode = 2`).
fn default_recover_from(tx: &Transaction, s: &CaseState) -> CaseResult<RecoverFrom> {
    let mut st = tx.prepare(
        "SELECT DISTINCT st.setl_mode, st.fixmedins_code, st.psn_no FROM case_settlements cs
         JOIN settlements st ON st.setl_id = cs.setl_id WHERE cs.case_id = ?1",
    )?;
    let rows: Vec<(String, String, String)> =
        st.query_map([s.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?;
    if s.entity_type == "facility" {
        return Ok(RecoverFrom::Facility(s.entity_id.clone()));
    }
    if rows.is_empty() {
        return Err(CaseError::Invalid(format!(
            "案件 {} 没有结算数据，请指定追回对象（--recover-from facility:CODE 或 person:PSN_NO）",
            s.label()
        )));
    }
    let all_manual = rows.iter().all(|r| r.0 == "2");
    let any_manual = rows.iter().any(|r| r.0 == "2");
    let mut facilities: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    facilities.sort();
    facilities.dedup();
    if all_manual {
        return Ok(RecoverFrom::Person(rows[0].2.clone()));
    }
    if !any_manual && facilities.len() == 1 {
        return Ok(RecoverFrom::Facility(facilities[0].to_string()));
    }
    Err(CaseError::Invalid(format!(
        "案件 {} 涉及{}，无法确定追回对象，请指定（--recover-from facility:CODE 或 person:PSN_NO）",
        s.label(),
        if any_manual { "直接结算和手工报销" } else { "多家定点医疗机构" }
    )))
}

impl Store {
    /// Runs one transition: loads the case, checks the action is allowed from its status,
    /// lets `f` change it (returning the new status and the log's particulars), logs, commits.
    fn transition(
        &mut self,
        actor: &Actor,
        perm: Permission,
        case_id: i64,
        action: Action,
        audit_action: &str,
        f: impl FnOnce(&Transaction, &CaseState) -> CaseResult<(Status, serde_json::Value)>,
    ) -> CaseResult<Status> {
        let expected = self.expected.take();
        actor.require(perm)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let state = load_state(&tx, case_id)?;
        if let Some((id, version)) = expected {
            let current: String =
                tx.query_row("SELECT updated_at FROM cases WHERE case_id = ?1", [case_id], |r| r.get(0))?;
            if id != case_id || current != version {
                let by: Option<(String, String)> = tx
                    .query_row(
                        "SELECT user, action FROM audit_log WHERE case_id = ?1 ORDER BY seq DESC LIMIT 1",
                        [case_id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                return Err(CaseError::Conflict(format!(
                    "案件 {} 在您打开表单后已有变更（当前状态「{}」{}），您的操作未保存，请查看最新情况后再决定",
                    state.label(),
                    state.status.label(),
                    by.map(|(u, a)| format!("，最近一次由 {u} 执行 {a}")).unwrap_or_default()
                )));
            }
        }
        action.check(&state.label(), state.status)?;
        let (to, mut detail) = f(&tx, &state)?;
        tx.execute(
            "UPDATE cases SET status = ?2, updated_at = ?3 WHERE case_id = ?1",
            params![case_id, to.as_str(), db::now()],
        )?;
        if let serde_json::Value::Object(m) = &mut detail {
            m.insert("from".into(), state.status.as_str().into());
            m.insert("to".into(), to.as_str().into());
        }
        audit::append(&tx, &actor.name, audit_action, Some(case_id), &detail)?;
        tx.commit()?;
        Ok(to)
    }

    /// 纳入复审: a flagged case put into review by hand (no inclusion probability: it does
    /// not enter the estimates).
    pub fn sample_case(&mut self, actor: &Actor, case_id: i64, note: &str) -> CaseResult<Status> {
        let note = nonempty(note, "纳入复审的理由")?;
        self.transition(actor, Permission::Review, case_id, Action::Sample, "sample", |_, _| {
            Ok((Status::Sampled, serde_json::json!({ "note": note })))
        })
    }

    /// 开始复审: the acting reviewer takes the case.
    pub fn start_review(&mut self, actor: &Actor, case_id: i64) -> CaseResult<Status> {
        let name = actor.name.clone();
        self.transition(actor, Permission::Review, case_id, Action::StartReview, "start_review", |tx, _| {
            tx.execute(
                "UPDATE cases SET reviewer = ?2, review_started = ?3 WHERE case_id = ?1",
                params![case_id, name, db::now()],
            )?;
            Ok((Status::InReview, serde_json::json!({ "reviewer": name })))
        })
    }

    /// 确认违规: the amount to deduct (yuan, > 0), why, and from whom (default: the
    /// facility for direct settlements, the person for manual reimbursements).
    pub fn confirm(
        &mut self,
        actor: &Actor,
        case_id: i64,
        amount: Decimal,
        note: &str,
        recover_from: Option<RecoverFrom>,
        date: Option<NaiveDate>,
    ) -> CaseResult<Status> {
        let cents = to_cents(amount)?;
        if cents <= 0 {
            return Err(CaseError::Invalid(format!("扣款金额须大于 0（收到 {amount}）")));
        }
        let note = nonempty(note, "违规事实说明")?;
        let name = actor.name.clone();
        let day = date.unwrap_or_else(|| chrono::Local::now().date_naive()).to_string();
        self.transition(actor, Permission::Review, case_id, Action::Confirm, "confirm", |tx, s| {
            let rf = match recover_from {
                Some(r) => r,
                None => default_recover_from(tx, s)?,
            };
            let (kind, party) = match &rf {
                RecoverFrom::Facility(c) => ("facility", c.clone()),
                RecoverFrom::Person(p) => ("person", p.clone()),
            };
            tx.execute(
                "UPDATE cases SET decided_by = ?2, decided_on = ?3, deduct_cents = ?4, recover_from = ?5,
                    recover_party = ?6, decision_note = ?7, dismiss_reason = NULL,
                    insurer_on = NULL, insurer_by = NULL, insurer_ref = NULL,
                    agency_on = NULL, agency_by = NULL, agency_ref = NULL,
                    facility_on = NULL, facility_by = NULL, facility_ref = NULL
                 WHERE case_id = ?1",
                params![case_id, name, day, cents, kind, party, note],
            )?;
            Ok((
                Status::Confirmed,
                serde_json::json!({ "amount": from_cents(cents).to_string(), "recover_from": kind,
                                    "party": party, "note": note, "decided_on": day }),
            ))
        })
    }

    /// 排除: not a violation, with the reason.
    pub fn dismiss(&mut self, actor: &Actor, case_id: i64, reason: &str) -> CaseResult<Status> {
        let reason = nonempty(reason, "排除理由")?;
        let name = actor.name.clone();
        self.transition(actor, Permission::Review, case_id, Action::Dismiss, "dismiss", |tx, _| {
            tx.execute(
                "UPDATE cases SET decided_by = ?2, decided_on = ?3, dismiss_reason = ?4, deduct_cents = NULL
                 WHERE case_id = ?1",
                params![case_id, name, today(), reason],
            )?;
            Ok((Status::Dismissed, serde_json::json!({ "reason": reason })))
        })
    }

    /// 重新复审: a dismissed case back into review (new evidence), with the reason.
    pub fn reopen(&mut self, actor: &Actor, case_id: i64, reason: &str) -> CaseResult<Status> {
        let reason = nonempty(reason, "重新复审的理由")?;
        let name = actor.name.clone();
        self.transition(actor, Permission::Review, case_id, Action::Reopen, "reopen", |tx, _| {
            tx.execute(
                "UPDATE cases SET reviewer = ?2, review_started = ?3, decided_by = NULL, decided_on = NULL,
                    dismiss_reason = NULL WHERE case_id = ?1",
                params![case_id, name, db::now()],
            )?;
            Ok((Status::InReview, serde_json::json!({ "reason": reason })))
        })
    }

    /// 三方确认: records one party's confirmation of a confirmed violation. The insurer's
    /// must come from another user than the reviewer who decided (four eyes).
    pub fn record_confirmation(
        &mut self,
        actor: &Actor,
        case_id: i64,
        c: &Confirmation,
    ) -> CaseResult<Status> {
        let name = actor.name.clone();
        let day = c.date.unwrap_or_else(|| chrono::Local::now().date_naive()).to_string();
        let reference = c.reference.trim().to_string();
        let party = c.party;
        self.transition(
            actor,
            Permission::Review,
            case_id,
            Action::RecordConfirmation,
            "confirmation",
            |tx, s| {
                if !s.needed().contains(&party) {
                    return Err(CaseError::Invalid(format!(
                        "案件 {} 向参保人追回（手工报销），无需{}确认",
                        s.label(),
                        party.label()
                    )));
                }
                if s.confirmed[party as usize].is_some() {
                    return Err(CaseError::Invalid(format!(
                        "案件 {} 已登记{}确认",
                        s.label(),
                        party.label()
                    )));
                }
                if party == Party::Insurer && s.decided_by.as_deref() == Some(name.as_str()) {
                    return Err(CaseError::Denied(format!(
                        "保险公司确认须由另一名复审员登记：{name} 已作出本案的复审结论"
                    )));
                }
                let col = party.column();
                tx.execute(
                    &format!(
                        "UPDATE cases SET {col}_on = ?2, {col}_by = ?3, {col}_ref = ?4 WHERE case_id = ?1"
                    ),
                    params![case_id, day, name, reference],
                )?;
                Ok((
                    Status::Confirmed,
                    serde_json::json!({ "party": party.as_str(), "date": day, "reference": reference }),
                ))
            },
        )
    }

    /// 申诉: the facility appeals a confirmed violation before deduction; its confirmation,
    /// if recorded, is withdrawn.
    pub fn appeal(
        &mut self,
        actor: &Actor,
        case_id: i64,
        reason: &str,
        date: Option<NaiveDate>,
    ) -> CaseResult<Status> {
        let reason = nonempty(reason, "申诉理由")?;
        let day = date.unwrap_or_else(|| chrono::Local::now().date_naive()).to_string();
        self.transition(actor, Permission::Review, case_id, Action::Appeal, "appeal", |tx, s| {
            if s.recover_from.as_deref() == Some("person") {
                return Err(CaseError::Invalid(format!(
                    "案件 {} 向参保人追回（手工报销），不适用定点医疗机构申诉",
                    s.label()
                )));
            }
            tx.execute(
                "UPDATE cases SET appeal_on = ?2, appeal_reason = ?3, appeal_outcome = NULL,
                    facility_on = NULL, facility_by = NULL, facility_ref = NULL WHERE case_id = ?1",
                params![case_id, day, reason],
            )?;
            Ok((Status::Appealed, serde_json::json!({ "reason": reason, "date": day })))
        })
    }

    /// 申诉处理: upheld (the violation stands), accepted (dismissed) or adjusted (a new amount,
    /// to be confirmed again by all three parties).
    pub fn resolve_appeal(
        &mut self,
        actor: &Actor,
        case_id: i64,
        outcome: AppealOutcome,
        note: &str,
    ) -> CaseResult<Status> {
        let note = nonempty(note, "申诉处理意见")?;
        let name = actor.name.clone();
        self.transition(actor, Permission::Review, case_id, Action::ResolveAppeal, "resolve_appeal", |tx, s| {
            match outcome {
                AppealOutcome::Upheld => {
                    tx.execute(
                        "UPDATE cases SET appeal_outcome = ?2 WHERE case_id = ?1",
                        params![case_id, format!("维持：{note}")],
                    )?;
                    Ok((Status::Confirmed, serde_json::json!({ "outcome": "upheld", "note": note })))
                }
                AppealOutcome::Accepted => {
                    tx.execute(
                        "UPDATE cases SET appeal_outcome = ?2, dismiss_reason = ?2, decided_by = ?3, decided_on = ?4,
                            deduct_cents = NULL WHERE case_id = ?1",
                        params![case_id, format!("申诉成立：{note}"), name, today()],
                    )?;
                    Ok((Status::Dismissed, serde_json::json!({ "outcome": "accepted", "note": note })))
                }
                AppealOutcome::Adjusted(amount) => {
                    let cents = to_cents(amount)?;
                    if cents <= 0 {
                        return Err(CaseError::Invalid(format!(
                            "调整后的扣款金额须大于 0（收到 {amount}）；申诉完全成立请用 accepted"
                        )));
                    }
                    tx.execute(
                        "UPDATE cases SET appeal_outcome = ?2, deduct_cents = ?3,
                            insurer_on = NULL, insurer_by = NULL, insurer_ref = NULL,
                            agency_on = NULL, agency_by = NULL, agency_ref = NULL,
                            facility_on = NULL, facility_by = NULL, facility_ref = NULL WHERE case_id = ?1",
                        params![case_id, format!("部分成立：{note}"), cents],
                    )?;
                    Ok((
                        Status::Confirmed,
                        serde_json::json!({ "outcome": "adjusted", "note": note,
                            "amount_before": s.deduct_cents.map(|c| from_cents(c).to_string()),
                            "amount": from_cents(cents).to_string() }),
                    ))
                }
            }
        })
    }

    /// 扣款: deducted from the facility's payment of `month` (YYYY-MM), which must come
    /// after the month of the last of the three confirmations (下月结算资金时扣除).
    pub fn deduct(&mut self, actor: &Actor, case_id: i64, month: &str) -> CaseResult<Status> {
        let first = parse_month(month)?;
        let month = first.format("%Y-%m").to_string();
        self.transition(actor, Permission::Deduct, case_id, Action::Deduct, "deduct", |tx, s| {
            if s.recover_from.as_deref() == Some("person") {
                return Err(CaseError::Invalid(format!(
                    "案件 {} 是手工报销，应向参保人追回（review recover），不从机构拨付款中扣除",
                    s.label()
                )));
            }
            let missing = s.missing();
            if !missing.is_empty() {
                return Err(CaseError::IllegalTransition(format!(
                    "案件 {} 尚缺{}确认，三方确认后方可扣款",
                    s.label(),
                    missing.iter().map(|p| p.label()).collect::<Vec<_>>().join("、")
                )));
            }
            let last = s.confirmed_on().unwrap_or_default();
            if last.as_str() >= first.to_string().as_str() {
                return Err(CaseError::IllegalTransition(format!(
                    "案件 {} 于 {last} 完成三方确认，应在其下月（或以后）的结算资金中扣除，不能计入 {month}",
                    s.label()
                )));
            }
            tx.execute("UPDATE cases SET deducted_month = ?2 WHERE case_id = ?1", params![case_id, month])?;
            Ok((
                Status::Deducted,
                serde_json::json!({ "month": month, "amount": s.deduct_cents.map(|c| from_cents(c).to_string()) }),
            ))
        })
    }

    /// 追回: a manual reimbursement's amount recovered from the person on `date`.
    pub fn recover(
        &mut self,
        actor: &Actor,
        case_id: i64,
        date: Option<NaiveDate>,
        note: &str,
    ) -> CaseResult<Status> {
        let day = date.unwrap_or_else(|| chrono::Local::now().date_naive()).to_string();
        let note = note.trim().to_string();
        self.transition(actor, Permission::Deduct, case_id, Action::Recover, "recover", |tx, s| {
            if s.recover_from.as_deref() != Some("person") {
                return Err(CaseError::Invalid(format!(
                    "案件 {} 为直接结算，应在机构的下月结算资金中扣除（deductions --month）",
                    s.label()
                )));
            }
            let missing = s.missing();
            if !missing.is_empty() {
                return Err(CaseError::IllegalTransition(format!(
                    "案件 {} 尚缺{}确认",
                    s.label(),
                    missing.iter().map(|p| p.label()).collect::<Vec<_>>().join("、")
                )));
            }
            tx.execute("UPDATE cases SET recovered_on = ?2 WHERE case_id = ?1", params![case_id, day])?;
            Ok((
                Status::Recovered,
                serde_json::json!({ "date": day, "note": note,
                    "amount": s.deduct_cents.map(|c| from_cents(c).to_string()) }),
            ))
        })
    }
}
