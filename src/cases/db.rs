//! The database schema and small helpers. Money is stored as integer fen (cents): exact,
//! summable and sortable in SQL; it becomes a `Decimal` with scale 2 when read.

use rusqlite::Connection;
use rust_decimal::Decimal;

use super::{CaseError, CaseResult};

/// The schema version this code writes.
pub(crate) const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS users (
    name        TEXT PRIMARY KEY,
    roles       TEXT NOT NULL,            -- comma-separated: reviewer, investigator, admin
    pw_hash     TEXT NOT NULL,            -- argon2id PHC string
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL
);

-- One row per merged run output.
CREATE TABLE IF NOT EXISTS runs (
    run_id          TEXT PRIMARY KEY,
    started_at      TEXT NOT NULL,        -- from the manifest: orders runs
    merged_at       TEXT NOT NULL,
    merged_by       TEXT NOT NULL,
    source          TEXT NOT NULL,        -- the output folder merged
    input_checksum  TEXT NOT NULL,        -- sha256 over the input files' sha256
    findings_sha256 TEXT NOT NULL,
    manifest        TEXT NOT NULL,
    report          TEXT NOT NULL         -- the merge report (JSON)
);

CREATE TABLE IF NOT EXISTS facilities (
    fixmedins_code TEXT PRIMARY KEY,
    fixmedins_name TEXT,
    admdvs         TEXT,
    hosp_lv        TEXT
);

-- Settlements the cases rest on, and the other settlements of their persons.
CREATE TABLE IF NOT EXISTS settlements (
    setl_id         TEXT PRIMARY KEY,
    psn_no          TEXT,
    psn_name        TEXT,
    certno          TEXT,
    fixmedins_code  TEXT,
    insu_admdvs     TEXT,
    fix_blng_admdvs TEXT,
    med_type        TEXT,
    setl_date       TEXT,                 -- date of setl_time, YYYY-MM-DD
    begndate        TEXT,
    enddate         TEXT,
    setl_mode       TEXT,
    refd_setl_flag  TEXT,
    medfee_cents    INTEGER,
    fund_cents      INTEGER,              -- hifp_pay + hifmi_pay + hifob_pay
    row_json        TEXT NOT NULL,        -- every column as text
    run_id          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS settlements_psn ON settlements(psn_no, setl_date);

CREATE TABLE IF NOT EXISTS fee_lines (
    feedetl_sn TEXT PRIMARY KEY,
    setl_id    TEXT NOT NULL,
    row_json   TEXT NOT NULL,
    run_id     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fee_lines_setl ON fee_lines(setl_id);

CREATE TABLE IF NOT EXISTS benefit_checks (
    setl_id        TEXT NOT NULL,
    fund           TEXT NOT NULL,
    recorded_cents INTEGER NOT NULL,
    expected_cents INTEGER NOT NULL,
    diff_cents     INTEGER NOT NULL,
    status         TEXT NOT NULL,
    run_id         TEXT NOT NULL,
    PRIMARY KEY (setl_id, fund)
);

-- A case: a settlement, or a person or facility with the settlements its findings rest on.
CREATE TABLE IF NOT EXISTS cases (
    case_id         INTEGER PRIMARY KEY,
    entity_type     TEXT NOT NULL,        -- settlement / person / facility
    entity_id       TEXT NOT NULL,
    status          TEXT NOT NULL,
    amount_cents    INTEGER NOT NULL DEFAULT 0,  -- at risk: largest over its active rules
    created_run_id  TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    reviewer        TEXT,
    review_started  TEXT,
    decided_by      TEXT,
    decided_on      TEXT,                 -- YYYY-MM-DD
    deduct_cents    INTEGER,
    recover_from    TEXT,                 -- facility / person
    recover_party   TEXT,                 -- fixmedins_code or psn_no
    decision_note   TEXT,
    dismiss_reason  TEXT,
    insurer_on TEXT, insurer_by TEXT, insurer_ref TEXT,
    agency_on  TEXT, agency_by  TEXT, agency_ref  TEXT,
    facility_on TEXT, facility_by TEXT, facility_ref TEXT,
    appeal_on       TEXT,
    appeal_reason   TEXT,
    appeal_outcome  TEXT,
    deducted_month  TEXT,                 -- YYYY-MM
    recovered_on    TEXT,
    UNIQUE (entity_type, entity_id)
);
CREATE INDEX IF NOT EXISTS cases_status ON cases(status);

-- Which settlements a case rests on.
CREATE TABLE IF NOT EXISTS case_settlements (
    case_id INTEGER NOT NULL,
    setl_id TEXT NOT NULL,
    PRIMARY KEY (case_id, setl_id)
);
CREATE INDEX IF NOT EXISTS case_settlements_setl ON case_settlements(setl_id);

-- One finding part: a rule's hit on a case, on one settlement. A settlement-level finding is
-- one part; a person- or facility-level finding is one part per settlement it rests on.
CREATE TABLE IF NOT EXISTS findings (
    case_id        INTEGER NOT NULL,
    rule_id        TEXT NOT NULL,
    setl_id        TEXT NOT NULL,
    category       TEXT NOT NULL,
    severity       TEXT NOT NULL,
    amount_cents   INTEGER NOT NULL,
    detail         TEXT NOT NULL,
    feedetl_sns    TEXT,
    first_run_id   TEXT NOT NULL,
    last_run_id    TEXT NOT NULL,
    last_seen_at   TEXT NOT NULL,         -- started_at of the last run that flagged it
    status         TEXT NOT NULL,         -- active / no_longer_flagged
    status_run_id  TEXT NOT NULL,
    status_at      TEXT NOT NULL,
    PRIMARY KEY (case_id, rule_id, setl_id)
);
CREATE INDEX IF NOT EXISTS findings_rule ON findings(rule_id);
CREATE INDEX IF NOT EXISTS findings_setl ON findings(setl_id);

-- The second-review sample of each run and its design.
CREATE TABLE IF NOT EXISTS samples (
    run_id         TEXT NOT NULL,
    setl_id        TEXT NOT NULL,
    case_id        INTEGER NOT NULL,
    locality       TEXT NOT NULL,
    stratum        TEXT NOT NULL,         -- <locality>/<kind>
    inclusion_prob REAL NOT NULL,
    risk_score     REAL NOT NULL,
    reason         TEXT NOT NULL,
    flagged        INTEGER NOT NULL,      -- had a finding in that run (first pass flagged it)
    PRIMARY KEY (run_id, setl_id)
);
CREATE TABLE IF NOT EXISTS strata (
    run_id     TEXT NOT NULL,
    locality   TEXT NOT NULL,
    stratum    TEXT NOT NULL,             -- certainty / out_of_area / risk
    population INTEGER NOT NULL,
    drawn      INTEGER NOT NULL,
    PRIMARY KEY (run_id, locality, stratum)
);

-- Append-only, hash-chained audit log.
CREATE TABLE IF NOT EXISTS audit_log (
    seq       INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    user      TEXT NOT NULL,
    action    TEXT NOT NULL,
    case_id   INTEGER,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_case ON audit_log(case_id);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#;

/// Sets the connection up and creates the schema.
pub(crate) fn init(conn: &Connection) -> CaseResult<()> {
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(SCHEMA)?;
    let v: Option<String> =
        conn.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).ok();
    match v {
        None => {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                [SCHEMA_VERSION.to_string()],
            )?;
        }
        Some(v) if v == SCHEMA_VERSION.to_string() => {}
        Some(v) => {
            return Err(CaseError::Db(format!(
                "the store has schema version {v}, this medaudit writes version {SCHEMA_VERSION}"
            )));
        }
    }
    Ok(())
}

/// Now, UTC, RFC 3339 with microseconds.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Today's local date, `YYYY-MM-DD`.
pub(crate) fn today() -> String {
    chrono::Local::now().date_naive().to_string()
}

/// Decimal yuan → fen; refuses more than 2 decimals.
pub(crate) fn to_cents(d: Decimal) -> CaseResult<i64> {
    let r = d.round_dp(2);
    if r != d {
        return Err(CaseError::Invalid(format!("金额 {d} 超过两位小数")));
    }
    let mut r = r;
    r.rescale(2);
    i64::try_from(r.mantissa()).map_err(|_| CaseError::Invalid(format!("金额 {d} 超出范围")))
}

/// Fen → decimal yuan with scale 2.
pub fn from_cents(c: i64) -> Decimal {
    Decimal::new(c, 2)
}

/// Parses a yuan amount from text (`1234.5`), exactly.
pub(crate) fn parse_yuan(s: &str) -> CaseResult<i64> {
    let d: Decimal =
        s.trim().parse().map_err(|_| CaseError::Invalid(format!("`{s}` 不是金额（元，最多两位小数）")))?;
    to_cents(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_round_trip_exactly() {
        assert_eq!(parse_yuan("1234.50").unwrap(), 123_450);
        assert_eq!(parse_yuan("0.01").unwrap(), 1);
        assert_eq!(from_cents(123_450).to_string(), "1234.50");
        assert!(parse_yuan("1.001").is_err());
        assert!(parse_yuan("abc").is_err());
    }
}
