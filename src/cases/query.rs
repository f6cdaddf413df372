//! Reading cases: filtered lists and one case with its evidence.

use chrono::{Datelike, NaiveDate};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, params_from_iter};
use rust_decimal::Decimal;

use super::auth::{Actor, Permission};
use super::db::from_cents;
use super::{CaseError, CaseResult, Status, Store, audit};

/// Which cases: every set field narrows the list (lists inside a field are alternatives).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Filter {
    /// A finding of one of these rules (`DUP001`).
    pub rule: Vec<String>,
    /// A finding of one of these categories (`duplicate_billing`).
    pub category: Vec<String>,
    /// A settlement at one of these facilities (`fixmedins_code`), or a case of that facility.
    pub facility: Vec<String>,
    /// A settlement whose `insu_admdvs` starts with one of these (locality = 参保地).
    pub locality: Vec<String>,
    /// A settlement settled on or after this day (date of `setl_time`).
    pub from: Option<NaiveDate>,
    /// A settlement settled on or before this day.
    pub to: Option<NaiveDate>,
    pub status: Vec<Status>,
    /// Amount at risk at least this (yuan).
    pub min_amount: Option<Decimal>,
    /// `settlement`, `person`, `facility`.
    pub entity_type: Vec<String>,
    /// Only cases with a finding the latest run still flags.
    pub active_only: bool,
    /// Drawn into a second-review sample with a risk score at least this.
    pub min_risk: Option<f64>,
    /// At most this many cases (largest amounts first).
    pub limit: Option<usize>,
}

/// One case in a list.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaseRow {
    pub case_id: i64,
    /// `settlement`, `person`, `facility`.
    pub entity_type: String,
    pub entity_id: String,
    pub status: Status,
    /// The settlement of a settlement case.
    pub setl_id: Option<String>,
    pub psn_no: Option<String>,
    /// Masked unless an unmasked view was authorised.
    pub psn_name: Option<String>,
    /// Masked unless an unmasked view was authorised.
    pub certno: Option<String>,
    pub fixmedins_code: Option<String>,
    pub fixmedins_name: Option<String>,
    pub insu_admdvs: Option<String>,
    pub med_type: Option<String>,
    pub setl_mode: Option<String>,
    /// First and last settlement date of the case's settlements.
    pub first_date: Option<String>,
    pub last_date: Option<String>,
    pub settlements: i64,
    pub medfee_sumamt: Option<Decimal>,
    pub fund_pay: Option<Decimal>,
    /// Rules with an active finding (sorted), and all rules ever.
    pub rules: Vec<String>,
    pub all_rules: Vec<String>,
    pub categories: Vec<String>,
    pub active_findings: i64,
    pub findings: i64,
    pub amount_at_risk: Decimal,
    pub deduct_amount: Option<Decimal>,
    pub recover_from: Option<String>,
    pub recover_party: Option<String>,
    pub reviewer: Option<String>,
    pub decided_by: Option<String>,
    pub decided_on: Option<String>,
    pub dismiss_reason: Option<String>,
    pub deducted_month: Option<String>,
    /// Joined `detail` texts of the active findings (masked by contract).
    pub details: String,
    /// The case's version: the time of its last change. A form carries it back so that a
    /// decision on a case changed meanwhile is refused ([`Store::expect_version`]).
    pub version: String,
    /// The highest risk score of the second-review samples that drew the case.
    pub risk_score: Option<f64>,
}

/// Everything about one case's decisions.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaseSummary {
    pub row: CaseRow,
    pub created_run_id: String,
    pub created_at: String,
    pub review_started: Option<String>,
    pub decision_note: Option<String>,
    /// (party, date, by, reference) for insurer, agency, facility.
    pub confirmations: Vec<(String, Option<String>, Option<String>, Option<String>)>,
    pub appeal_on: Option<String>,
    pub appeal_reason: Option<String>,
    pub appeal_outcome: Option<String>,
    pub recovered_on: Option<String>,
}

/// A settlement as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SettlementRow {
    pub setl_id: String,
    pub psn_no: String,
    pub psn_name: String,
    pub certno: String,
    pub fixmedins_code: String,
    pub fixmedins_name: Option<String>,
    pub insu_admdvs: String,
    pub med_type: String,
    pub setl_date: String,
    pub begndate: String,
    pub enddate: String,
    pub setl_mode: String,
    pub medfee_sumamt: Option<Decimal>,
    pub fund_pay: Option<Decimal>,
    /// Every column of the row (names and ID numbers masked unless authorised), contract order.
    pub fields: Vec<(String, String)>,
    /// The case of this settlement, if any: (case id, status).
    pub case: Option<(i64, Status)>,
}

/// A fee line.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FeeRow {
    pub feedetl_sn: String,
    pub fields: Vec<(String, String)>,
    /// A finding of the case cites this line.
    pub cited: bool,
}

/// A finding part.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FindingRow {
    pub rule_id: String,
    pub setl_id: String,
    pub category: String,
    pub severity: String,
    pub amount_at_risk: Decimal,
    pub detail: String,
    pub feedetl_sns: Option<String>,
    pub first_run_id: String,
    pub last_run_id: String,
    /// `active` or `no_longer_flagged`.
    pub status: String,
    pub status_run_id: String,
}

/// A benefit recalculation of a settlement.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BenefitRow {
    pub setl_id: String,
    pub fund: String,
    pub recorded: Decimal,
    pub expected: Decimal,
    pub diff: Decimal,
    pub status: String,
}

/// An entry of a case's history (from the audit log).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HistoryRow {
    pub at: String,
    pub user: String,
    pub action: String,
    pub detail: String,
}

/// A case with its evidence, as `medaudit cases show` prints it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaseDetail {
    /// The case shown: the settlement's own case, or the person's or facility's.
    pub case: Option<CaseSummary>,
    /// The settlement asked for (or of a settlement case).
    pub settlement: Option<SettlementRow>,
    pub fee_lines: Vec<FeeRow>,
    pub findings: Vec<FindingRow>,
    /// Other cases resting on the settlement (person- or facility-level).
    pub linked_cases: Vec<CaseRow>,
    /// For a person or facility case: the settlements it rests on.
    pub case_settlements: Vec<SettlementRow>,
    /// The person's other settlements in the same year.
    pub other_settlements: Vec<SettlementRow>,
    pub benefit: Vec<BenefitRow>,
    /// The second-review samples that drew it: (run, stratum, inclusion probability, score, reason).
    pub samples: Vec<(String, String, f64, f64, String)>,
    pub history: Vec<HistoryRow>,
    pub unmasked: bool,
}

/// How a command names a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseRef {
    /// The case number (`C12`, `12`).
    Id(i64),
    /// A settlement id.
    Settlement(String),
    /// `facility:CODE` or `person:PSN_NO`.
    Entity(String, String),
    /// Text tried as a settlement id, then as a case number.
    Text(String),
}

impl CaseRef {
    pub fn parse(s: &str) -> CaseRef {
        let s = s.trim();
        for t in ["facility", "person", "settlement"] {
            if let Some(rest) = s.strip_prefix(t).and_then(|r| r.strip_prefix(':')) {
                return if t == "settlement" {
                    CaseRef::Settlement(rest.to_string())
                } else {
                    CaseRef::Entity(t.to_string(), rest.to_string())
                };
            }
        }
        CaseRef::Text(s.to_string())
    }
}

fn case_number(s: &str) -> Option<i64> {
    s.strip_prefix('C').or_else(|| s.strip_prefix('c')).unwrap_or(s).parse().ok()
}

/// `C12`.
pub fn case_label(id: i64) -> String {
    format!("C{id}")
}

pub(crate) fn mask_name(s: &str, unmask: bool) -> String {
    if unmask { s.to_string() } else { crate::mask::name(s) }
}

pub(crate) fn mask_certno(s: &str, unmask: bool) -> String {
    if unmask { s.to_string() } else { crate::mask::certno(s) }
}

fn opt_cents(v: Option<i64>) -> Option<Decimal> {
    v.map(from_cents)
}

fn split_list(s: Option<String>) -> Vec<String> {
    let mut v: Vec<String> =
        s.unwrap_or_default().split(',').filter(|x| !x.is_empty()).map(str::to_string).collect();
    v.sort();
    v.dedup();
    v
}

/// Builds the WHERE clause of a filter.
fn where_clause(f: &Filter) -> CaseResult<(String, Vec<Value>)> {
    let mut conds: Vec<String> = Vec::new();
    let mut vals: Vec<Value> = Vec::new();
    let list = |vals: &mut Vec<Value>, items: &[String]| -> String {
        let start = vals.len();
        vals.extend(items.iter().map(|s| Value::Text(s.clone())));
        (start..vals.len()).map(|i| format!("?{}", i + 1)).collect::<Vec<_>>().join(", ")
    };
    if !f.status.is_empty() {
        let s: Vec<String> = f.status.iter().map(|x| x.as_str().to_string()).collect();
        conds.push(format!("c.status IN ({})", list(&mut vals, &s)));
    }
    if !f.entity_type.is_empty() {
        conds.push(format!("c.entity_type IN ({})", list(&mut vals, &f.entity_type)));
    }
    if !f.rule.is_empty() {
        conds.push(format!(
            "EXISTS (SELECT 1 FROM findings f WHERE f.case_id = c.case_id AND f.rule_id IN ({}))",
            list(&mut vals, &f.rule)
        ));
    }
    if !f.category.is_empty() {
        conds.push(format!(
            "EXISTS (SELECT 1 FROM findings f WHERE f.case_id = c.case_id AND f.category IN ({}))",
            list(&mut vals, &f.category)
        ));
    }
    if f.active_only {
        conds.push(
            "EXISTS (SELECT 1 FROM findings f WHERE f.case_id = c.case_id AND f.status = 'active')".into(),
        );
    }
    if let Some(r) = f.min_risk {
        if !r.is_finite() {
            return Err(CaseError::Invalid(format!("风险评分下限 `{r}` 不是有效数字")));
        }
        vals.push(Value::Real(r));
        conds.push(format!(
            "EXISTS (SELECT 1 FROM samples sm WHERE sm.case_id = c.case_id AND sm.risk_score >= ?{})",
            vals.len()
        ));
    }
    if let Some(m) = f.min_amount {
        vals.push(Value::Integer(super::db::to_cents(m.round_dp(2))?));
        conds.push(format!("c.amount_cents >= ?{}", vals.len()));
    }
    // Conditions on a settlement of the case, all on the same settlement.
    let mut sconds: Vec<String> = Vec::new();
    if !f.facility.is_empty() {
        sconds.push(format!("s.fixmedins_code IN ({})", list(&mut vals, &f.facility)));
    }
    if !f.locality.is_empty() {
        let mut alts = Vec::new();
        for l in &f.locality {
            vals.push(Value::Text(l.clone()));
            alts.push(format!("substr(s.insu_admdvs, 1, length(?{n})) = ?{n}", n = vals.len()));
        }
        sconds.push(format!("({})", alts.join(" OR ")));
    }
    if let Some(d) = f.from {
        vals.push(Value::Text(d.to_string()));
        sconds.push(format!("s.setl_date >= ?{}", vals.len()));
    }
    if let Some(d) = f.to {
        vals.push(Value::Text(d.to_string()));
        sconds.push(format!("s.setl_date <= ?{}", vals.len()));
    }
    if !sconds.is_empty() {
        let mut c = format!(
            "EXISTS (SELECT 1 FROM case_settlements cs JOIN settlements s ON s.setl_id = cs.setl_id
                     WHERE cs.case_id = c.case_id AND {})",
            sconds.join(" AND ")
        );
        if !f.facility.is_empty() && f.locality.is_empty() && f.from.is_none() && f.to.is_none() {
            c = format!(
                "({c} OR (c.entity_type = 'facility' AND c.entity_id IN ({})))",
                list(&mut vals, &f.facility)
            );
        }
        conds.push(c);
    }
    let w = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
    Ok((w, vals))
}

const CASE_COLUMNS: &str = "c.case_id, c.entity_type, c.entity_id, c.status, c.amount_cents, c.deduct_cents,
    c.recover_from, c.recover_party, c.reviewer, c.decided_by, c.decided_on, c.dismiss_reason, c.deducted_month,
    (SELECT group_concat(DISTINCT f.rule_id) FROM findings f WHERE f.case_id = c.case_id AND f.status = 'active'),
    (SELECT group_concat(DISTINCT f.rule_id) FROM findings f WHERE f.case_id = c.case_id),
    (SELECT group_concat(DISTINCT f.category) FROM findings f WHERE f.case_id = c.case_id AND f.status = 'active'),
    (SELECT count(*) FROM findings f WHERE f.case_id = c.case_id AND f.status = 'active'),
    (SELECT count(*) FROM findings f WHERE f.case_id = c.case_id),
    (SELECT count(*) FROM case_settlements cs WHERE cs.case_id = c.case_id),
    (SELECT min(s.setl_date) FROM case_settlements cs JOIN settlements s ON s.setl_id = cs.setl_id WHERE cs.case_id = c.case_id),
    (SELECT max(s.setl_date) FROM case_settlements cs JOIN settlements s ON s.setl_id = cs.setl_id WHERE cs.case_id = c.case_id),
    c.updated_at,
    (SELECT max(sm.risk_score) FROM samples sm WHERE sm.case_id = c.case_id)";

/// Reads the case columns above into a row (settlement fields filled later).
fn read_case(r: &rusqlite::Row) -> rusqlite::Result<(CaseRow, String)> {
    let status: String = r.get(3)?;
    Ok((
        CaseRow {
            case_id: r.get(0)?,
            entity_type: r.get(1)?,
            entity_id: r.get(2)?,
            status: Status::parse_stored(&status).unwrap_or(Status::Flagged),
            setl_id: None,
            psn_no: None,
            psn_name: None,
            certno: None,
            fixmedins_code: None,
            fixmedins_name: None,
            insu_admdvs: None,
            med_type: None,
            setl_mode: None,
            first_date: r.get(19)?,
            last_date: r.get(20)?,
            settlements: r.get(18)?,
            medfee_sumamt: None,
            fund_pay: None,
            rules: split_list(r.get(13)?),
            all_rules: split_list(r.get(14)?),
            categories: split_list(r.get(15)?),
            active_findings: r.get(16)?,
            findings: r.get(17)?,
            amount_at_risk: from_cents(r.get(4)?),
            deduct_amount: opt_cents(r.get(5)?),
            recover_from: r.get(6)?,
            recover_party: r.get(7)?,
            reviewer: r.get(8)?,
            decided_by: r.get(9)?,
            decided_on: r.get(10)?,
            dismiss_reason: r.get(11)?,
            deducted_month: r.get(12)?,
            details: String::new(),
            version: r.get(21)?,
            risk_score: r.get(22)?,
        },
        status,
    ))
}

/// Fills the settlement-derived fields of a case row.
pub(crate) fn complete_row(conn: &Connection, row: &mut CaseRow, unmask: bool) -> CaseResult<()> {
    let setl: Option<String> = match row.entity_type.as_str() {
        "settlement" => Some(row.entity_id.clone()),
        _ => conn
            .query_row(
                "SELECT cs.setl_id FROM case_settlements cs JOIN settlements s ON s.setl_id = cs.setl_id
                 WHERE cs.case_id = ?1 ORDER BY s.setl_date, cs.setl_id LIMIT 1",
                [row.case_id],
                |r| r.get(0),
            )
            .optional()?,
    };
    if row.entity_type == "settlement" {
        row.setl_id = Some(row.entity_id.clone());
    }
    if let Some(id) = setl {
        let s: Option<(String, String, String, String, String, String, String, Option<i64>, Option<i64>)> = conn
            .query_row(
                "SELECT psn_no, psn_name, certno, fixmedins_code, insu_admdvs, med_type, setl_mode, medfee_cents, fund_cents
                 FROM settlements WHERE setl_id = ?1",
                [&id],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                    ))
                },
            )
            .optional()?;
        if let Some((psn, name, cert, fix, insu, med, mode, fee, fund)) = s {
            row.insu_admdvs = Some(insu);
            if row.entity_type != "facility" {
                row.psn_no = Some(psn);
                row.psn_name = Some(mask_name(&name, unmask));
                row.certno = Some(mask_certno(&cert, unmask));
            }
            if row.entity_type != "person" {
                row.fixmedins_code = Some(fix);
            }
            if row.entity_type == "settlement" {
                row.med_type = Some(med);
                row.setl_mode = Some(mode);
                row.medfee_sumamt = opt_cents(fee);
                row.fund_pay = opt_cents(fund);
            }
        }
    }
    match row.entity_type.as_str() {
        "person" => row.psn_no = Some(row.entity_id.clone()),
        "facility" => row.fixmedins_code = Some(row.entity_id.clone()),
        _ => {}
    }
    if let Some(code) = &row.fixmedins_code {
        row.fixmedins_name = conn
            .query_row("SELECT fixmedins_name FROM facilities WHERE fixmedins_code = ?1", [code], |r| {
                r.get(0)
            })
            .optional()?;
    }
    let mut st = conn.prepare(
        "SELECT DISTINCT rule_id, detail FROM findings WHERE case_id = ?1 AND status = 'active' ORDER BY rule_id",
    )?;
    let details: Vec<String> = st
        .query_map([row.case_id], |r| Ok(format!("{}：{}", r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<_, _>>()?;
    row.details = details.join("；");
    Ok(())
}

/// The rows of the cases matching `f`, largest amount at risk first.
pub(crate) fn list_rows(conn: &Connection, f: &Filter, unmask: bool) -> CaseResult<Vec<CaseRow>> {
    let (w, mut vals) = where_clause(f)?;
    let limit = f.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    vals.push(Value::Integer(limit));
    let sql = format!(
        "SELECT {CASE_COLUMNS} FROM cases c {w} ORDER BY c.amount_cents DESC, c.case_id LIMIT ?{}",
        vals.len()
    );
    let mut st = conn.prepare(&sql)?;
    let rows: Vec<(CaseRow, String)> =
        st.query_map(params_from_iter(vals), read_case)?.collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for (mut row, _) in rows {
        complete_row(conn, &mut row, unmask)?;
        out.push(row);
    }
    Ok(out)
}

pub(crate) fn case_row(conn: &Connection, case_id: i64, unmask: bool) -> CaseResult<CaseRow> {
    let sql = format!("SELECT {CASE_COLUMNS} FROM cases c WHERE c.case_id = ?1");
    let (mut row, _) = conn
        .query_row(&sql, [case_id], read_case)
        .optional()?
        .ok_or_else(|| CaseError::NotFound(format!("案件 {}", case_label(case_id))))?;
    complete_row(conn, &mut row, unmask)?;
    Ok(row)
}

fn settlement_row(conn: &Connection, setl_id: &str, unmask: bool) -> CaseResult<Option<SettlementRow>> {
    let r: Option<(String, Option<i64>, Option<i64>)> = conn
        .query_row(
            "SELECT row_json, medfee_cents, fund_cents FROM settlements WHERE setl_id = ?1",
            [setl_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((json, fee, fund)) = r else { return Ok(None) };
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json).unwrap_or_default();
    let get = |n: &str| map.get(n).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let mut fields: Vec<(String, String)> = Vec::new();
    for f in crate::schema::SETL.fields {
        if let Some(v) = map.get(f.name).and_then(|v| v.as_str()) {
            let v = match f.name {
                "psn_name" => mask_name(v, unmask),
                "certno" => mask_certno(v, unmask),
                _ => v.to_string(),
            };
            fields.push((f.name.to_string(), v));
        }
    }
    let fix = get("fixmedins_code");
    let case: Option<(i64, String)> = conn
        .query_row(
            "SELECT case_id, status FROM cases WHERE entity_type = 'settlement' AND entity_id = ?1",
            [setl_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let setl_time = get("setl_time");
    Ok(Some(SettlementRow {
        setl_id: setl_id.to_string(),
        psn_no: get("psn_no"),
        psn_name: mask_name(&get("psn_name"), unmask),
        certno: mask_certno(&get("certno"), unmask),
        fixmedins_name: conn
            .query_row("SELECT fixmedins_name FROM facilities WHERE fixmedins_code = ?1", [&fix], |r| {
                r.get(0)
            })
            .optional()?,
        fixmedins_code: fix,
        insu_admdvs: get("insu_admdvs"),
        med_type: get("med_type"),
        setl_date: setl_time.get(..10).unwrap_or(&setl_time).to_string(),
        begndate: get("begndate"),
        enddate: get("enddate"),
        setl_mode: get("setl_mode"),
        medfee_sumamt: opt_cents(fee),
        fund_pay: opt_cents(fund),
        fields,
        case: case.and_then(|(id, s)| Status::parse_stored(&s).ok().map(|s| (id, s))),
    }))
}

fn findings_of(conn: &Connection, case_id: i64) -> CaseResult<Vec<FindingRow>> {
    let mut st = conn.prepare(
        "SELECT rule_id, setl_id, category, severity, amount_cents, detail, feedetl_sns, first_run_id, last_run_id,
                status, status_run_id
         FROM findings WHERE case_id = ?1 ORDER BY status, rule_id, setl_id",
    )?;
    let rows = st.query_map([case_id], |r| {
        Ok(FindingRow {
            rule_id: r.get(0)?,
            setl_id: r.get(1)?,
            category: r.get(2)?,
            severity: r.get(3)?,
            amount_at_risk: from_cents(r.get(4)?),
            detail: r.get(5)?,
            feedetl_sns: r.get(6)?,
            first_run_id: r.get(7)?,
            last_run_id: r.get(8)?,
            status: r.get(9)?,
            status_run_id: r.get(10)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(crate) fn summary(conn: &Connection, case_id: i64, unmask: bool) -> CaseResult<CaseSummary> {
    let row = case_row(conn, case_id, unmask)?;
    conn.query_row(
        "SELECT created_run_id, created_at, review_started, decision_note,
                insurer_on, insurer_by, insurer_ref, agency_on, agency_by, agency_ref, facility_on, facility_by, facility_ref,
                appeal_on, appeal_reason, appeal_outcome, recovered_on
         FROM cases WHERE case_id = ?1",
        [case_id],
        |r| {
            let conf = |party: &str, i: usize| -> rusqlite::Result<(String, Option<String>, Option<String>, Option<String>)> {
                Ok((party.to_string(), r.get(i)?, r.get(i + 1)?, r.get(i + 2)?))
            };
            Ok(CaseSummary {
                row: row.clone(),
                created_run_id: r.get(0)?,
                created_at: r.get(1)?,
                review_started: r.get(2)?,
                decision_note: r.get(3)?,
                confirmations: vec![conf("insurer", 4)?, conf("agency", 7)?, conf("facility", 10)?],
                appeal_on: r.get(13)?,
                appeal_reason: r.get(14)?,
                appeal_outcome: r.get(15)?,
                recovered_on: r.get(16)?,
            })
        },
    )
    .map_err(CaseError::from)
}

impl Store {
    /// The cases matching `filter`, names and ID numbers masked.
    pub fn list(&self, actor: &Actor, filter: &Filter) -> CaseResult<Vec<CaseRow>> {
        actor.require(Permission::ViewCases)?;
        list_rows(&self.conn, filter, false)
    }

    /// How many cases of each status (and their amount at risk) match `filter` with its
    /// status condition left out: the counts beside a queue's status choice. Statuses without
    /// cases are left out.
    pub fn count_by_status(&self, actor: &Actor, filter: &Filter) -> CaseResult<Vec<(Status, i64, Decimal)>> {
        actor.require(Permission::ViewCases)?;
        let f = Filter { status: vec![], limit: None, ..filter.clone() };
        let (w, vals) = where_clause(&f)?;
        let mut st = self.conn.prepare(&format!(
            "SELECT c.status, count(*), COALESCE(sum(c.amount_cents), 0) FROM cases c {w} GROUP BY c.status"
        ))?;
        let rows: Vec<(String, i64, i64)> = st
            .query_map(params_from_iter(vals), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for (s, n, cents) in rows {
            out.push((Status::parse_stored(&s)?, n, from_cents(cents)));
        }
        out.sort_by_key(|x| x.0);
        Ok(out)
    }

    /// Resolves a case reference to a case number.
    pub fn resolve(&self, r: &CaseRef) -> CaseResult<i64> {
        let by_entity = |t: &str, id: &str| -> CaseResult<Option<i64>> {
            Ok(self
                .conn
                .query_row(
                    "SELECT case_id FROM cases WHERE entity_type = ?1 AND entity_id = ?2",
                    params![t, id],
                    |r| r.get(0),
                )
                .optional()?)
        };
        let found = match r {
            CaseRef::Id(id) => self
                .conn
                .query_row("SELECT case_id FROM cases WHERE case_id = ?1", [id], |r| r.get(0))
                .optional()?,
            CaseRef::Settlement(s) => by_entity("settlement", s)?,
            CaseRef::Entity(t, id) => by_entity(t, id)?,
            CaseRef::Text(s) => match by_entity("settlement", s)? {
                Some(id) => Some(id),
                None => match case_number(s) {
                    Some(n) => self
                        .conn
                        .query_row("SELECT case_id FROM cases WHERE case_id = ?1", [n], |r| r.get(0))
                        .optional()?,
                    None => None,
                },
            },
        };
        found.ok_or_else(|| CaseError::NotFound(format!("案件 {}", ref_text(r))))
    }

    /// One case with its evidence. `reference` may name a settlement that has no case of its
    /// own but rests in a person's or facility's case. `unmask_purpose`: show ID numbers and
    /// names in full (investigators only; logged with the purpose).
    pub fn show(
        &self,
        actor: &Actor,
        reference: &CaseRef,
        unmask_purpose: Option<&str>,
    ) -> CaseResult<CaseDetail> {
        actor.require(Permission::ViewCases)?;
        let unmask = match unmask_purpose {
            Some(p) => {
                actor.require(Permission::Unmask)?;
                if p.trim().is_empty() {
                    return Err(CaseError::Invalid("查看未脱敏信息须说明用途（--purpose）".into()));
                }
                true
            }
            None => false,
        };
        let conn = &self.conn;
        // The settlement named, when the reference is one.
        let setl_name = match reference {
            CaseRef::Settlement(s) | CaseRef::Text(s) => {
                let known: bool = conn.query_row(
                    "SELECT EXISTS (SELECT 1 FROM settlements WHERE setl_id = ?1)
                         OR EXISTS (SELECT 1 FROM cases WHERE entity_type = 'settlement' AND entity_id = ?1)",
                    [s],
                    |r| r.get(0),
                )?;
                known.then(|| s.clone())
            }
            _ => None,
        };
        let case_id = match self.resolve(reference) {
            Ok(id) => Some(id),
            Err(CaseError::NotFound(_)) if setl_name.is_some() => None,
            Err(e) => return Err(e),
        };
        let case = case_id.map(|id| summary(conn, id, unmask)).transpose()?;
        let setl_id = setl_name.or_else(|| {
            case.as_ref().filter(|c| c.row.entity_type == "settlement").map(|c| c.row.entity_id.clone())
        });
        let settlement = match &setl_id {
            Some(s) => settlement_row(conn, s, unmask)?,
            None => None,
        };
        let findings = match case_id {
            Some(id) => findings_of(conn, id)?,
            None => vec![],
        };
        let cited: std::collections::HashSet<String> = findings
            .iter()
            .filter_map(|f| f.feedetl_sns.as_deref())
            .flat_map(|s| s.split(';').map(|x| x.trim().to_string()))
            .collect();
        let mut fee_lines = Vec::new();
        let mut benefit = Vec::new();
        let mut linked_cases = Vec::new();
        let mut other_settlements = Vec::new();
        if let Some(s) = &setl_id {
            let mut st = conn.prepare(
                "SELECT feedetl_sn, row_json FROM fee_lines WHERE setl_id = ?1 ORDER BY feedetl_sn",
            )?;
            let rows: Vec<(String, String)> =
                st.query_map([s], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
            for (sn, json) in rows {
                let map: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&json).unwrap_or_default();
                let fields = crate::schema::FEE
                    .fields
                    .iter()
                    .filter_map(|f| {
                        map.get(f.name).and_then(|v| v.as_str()).map(|v| (f.name.to_string(), v.to_string()))
                    })
                    .collect();
                fee_lines.push(FeeRow { cited: cited.contains(&sn), feedetl_sn: sn, fields });
            }
            let mut st = conn.prepare(
                "SELECT setl_id, fund, recorded_cents, expected_cents, diff_cents, status FROM benefit_checks WHERE setl_id = ?1 ORDER BY fund",
            )?;
            benefit = st
                .query_map([s], |r| {
                    Ok(BenefitRow {
                        setl_id: r.get(0)?,
                        fund: r.get(1)?,
                        recorded: from_cents(r.get(2)?),
                        expected: from_cents(r.get(3)?),
                        diff: from_cents(r.get(4)?),
                        status: r.get(5)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let mut st = conn.prepare(
                "SELECT cs.case_id FROM case_settlements cs JOIN cases c ON c.case_id = cs.case_id
                 WHERE cs.setl_id = ?1 AND c.entity_type <> 'settlement' ORDER BY cs.case_id",
            )?;
            let ids: Vec<i64> = st.query_map([s], |r| r.get(0))?.collect::<Result<_, _>>()?;
            for id in ids {
                linked_cases.push(case_row(conn, id, unmask)?);
            }
            if let Some(st) = &settlement {
                let year = NaiveDate::parse_from_str(&st.setl_date, "%Y-%m-%d").map(|d| d.year()).ok();
                if let Some(y) = year {
                    let mut q = conn.prepare(
                        "SELECT setl_id FROM settlements WHERE psn_no = ?1 AND setl_id <> ?2
                           AND setl_date >= ?3 AND setl_date <= ?4 ORDER BY setl_date, setl_id",
                    )?;
                    let ids: Vec<String> = q
                        .query_map(params![st.psn_no, s, format!("{y}-01-01"), format!("{y}-12-31")], |r| {
                            r.get(0)
                        })?
                        .collect::<Result<_, _>>()?;
                    for id in ids {
                        other_settlements.extend(settlement_row(conn, &id, unmask)?);
                    }
                }
            }
        }
        let mut case_settlements = Vec::new();
        let mut samples = Vec::new();
        let mut history = Vec::new();
        if let (Some(id), Some(c)) = (case_id, &case) {
            if c.row.entity_type != "settlement" {
                let mut st =
                    conn.prepare("SELECT setl_id FROM case_settlements WHERE case_id = ?1 ORDER BY setl_id")?;
                let ids: Vec<String> = st.query_map([id], |r| r.get(0))?.collect::<Result<_, _>>()?;
                for s in ids {
                    case_settlements.extend(settlement_row(conn, &s, unmask)?);
                }
            }
            let mut st = conn.prepare(
                "SELECT run_id, stratum, inclusion_prob, risk_score, reason FROM samples WHERE case_id = ?1 ORDER BY run_id",
            )?;
            samples = st
                .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                .collect::<Result<_, _>>()?;
            let mut h: Vec<HistoryRow> = self
                .audit_entries_unchecked(Some(id), usize::MAX)?
                .into_iter()
                .map(|e| HistoryRow { at: e.at, user: e.user, action: e.action, detail: e.detail })
                .collect();
            h.reverse();
            history = h;
        }
        if case.is_none() && settlement.is_none() {
            return Err(CaseError::NotFound(format!("案件或结算 {}", ref_text(reference))));
        }
        if unmask {
            let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
            audit::append(
                &tx,
                &actor.name,
                "show_unmasked",
                case_id,
                &serde_json::json!({ "reference": ref_text(reference), "purpose": unmask_purpose }),
            )?;
            tx.commit()?;
        }
        Ok(CaseDetail {
            case,
            settlement,
            fee_lines,
            findings,
            linked_cases,
            case_settlements,
            other_settlements,
            benefit,
            samples,
            history,
            unmasked: unmask,
        })
    }
}

pub(crate) fn ref_text(r: &CaseRef) -> String {
    match r {
        CaseRef::Id(id) => case_label(*id),
        CaseRef::Settlement(s) | CaseRef::Text(s) => s.clone(),
        CaseRef::Entity(t, id) => format!("{t}:{id}"),
    }
}
