//! The audit log: every decision, export, merge, user change and login failure, append-only
//! and tamper-evident.
//!
//! Each entry carries the SHA-256 of the previous entry's hash and its own fields
//! (`hash = sha256(json([seq, at, user, action, case_id, detail, prev_hash]))`, the first
//! entry's `prev_hash` is 64 zeros). Triggers refuse `UPDATE` and `DELETE` on the table;
//! someone who edits the database file directly breaks the chain, which
//! [`Store::verify_audit`] detects. Cutting entries off the end leaves a valid chain: keep the
//! head hash that `medaudit audit verify` prints somewhere else (a monthly report, a ticket)
//! to detect that too.

use rusqlite::{OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};

use super::auth::{Actor, Permission};
use super::{CaseResult, Store, db};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    /// UTC, RFC 3339.
    pub at: String,
    pub user: String,
    pub action: String,
    pub case_id: Option<i64>,
    /// JSON with the action's particulars (filter, row count, masked, amounts, ...).
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The result of checking the chain.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditReport {
    pub entries: i64,
    /// The hash of the last entry (record it elsewhere to detect truncation).
    pub head: String,
    /// The entries whose hash or link does not match, first ones first: `(seq, why)`.
    pub broken: Vec<(i64, String)>,
}

impl AuditReport {
    pub fn ok(&self) -> bool {
        self.broken.is_empty()
    }
}

fn entry_hash(
    seq: i64,
    at: &str,
    user: &str,
    action: &str,
    case_id: Option<i64>,
    detail: &str,
    prev: &str,
) -> String {
    let canonical = serde_json::json!([seq, at, user, action, case_id, detail, prev]).to_string();
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends an entry inside the caller's transaction (so that the change and its log entry are
/// committed together).
pub(crate) fn append(
    tx: &Transaction,
    user: &str,
    action: &str,
    case_id: Option<i64>,
    detail: &serde_json::Value,
) -> CaseResult<()> {
    let last: Option<(i64, String)> = tx
        .query_row("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let (seq, prev) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_string()),
    };
    let at = db::now();
    let detail = detail.to_string();
    let hash = entry_hash(seq, &at, user, action, case_id, &detail, &prev);
    tx.execute(
        "INSERT INTO audit_log (seq, at, user, action, case_id, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![seq, at, user, action, case_id, detail, prev, hash],
    )?;
    Ok(())
}

fn read_entry(r: &rusqlite::Row) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.get(0)?,
        at: r.get(1)?,
        user: r.get(2)?,
        action: r.get(3)?,
        case_id: r.get(4)?,
        detail: r.get(5)?,
        prev_hash: r.get(6)?,
        hash: r.get(7)?,
    })
}

const COLUMNS: &str = "seq, at, user, action, case_id, detail, prev_hash, hash";

impl Store {
    /// Checks the whole chain: every entry's hash, every link, consecutive sequence numbers.
    pub fn verify_audit(&self, actor: &Actor) -> CaseResult<AuditReport> {
        actor.require(Permission::Audit)?;
        let mut st = self.conn.prepare(&format!("SELECT {COLUMNS} FROM audit_log ORDER BY seq"))?;
        let mut rows = st.query([])?;
        let mut prev = GENESIS.to_string();
        let mut expected_seq = 1;
        let mut n = 0;
        let mut broken = Vec::new();
        while let Some(r) = rows.next()? {
            let e = read_entry(r)?;
            n += 1;
            if e.seq != expected_seq {
                broken.push((e.seq, format!("序号不连续：应为 {expected_seq}")));
            }
            if e.prev_hash != prev {
                broken.push((e.seq, "与上一条的哈希不衔接（上一条被改动或删除）".to_string()));
            }
            let h = entry_hash(e.seq, &e.at, &e.user, &e.action, e.case_id, &e.detail, &e.prev_hash);
            if h != e.hash {
                broken.push((e.seq, "内容与哈希不符（本条被改动）".to_string()));
            }
            prev = e.hash;
            expected_seq = e.seq + 1;
        }
        Ok(AuditReport { entries: n, head: prev, broken })
    }

    /// The log, newest first: all of it, or one case's (`case_id`), at most `limit` entries.
    pub fn audit_entries(
        &self,
        actor: &Actor,
        case_id: Option<i64>,
        limit: usize,
    ) -> CaseResult<Vec<AuditEntry>> {
        actor.require(Permission::Audit)?;
        self.audit_entries_unchecked(case_id, limit)
    }

    pub(crate) fn audit_entries_unchecked(
        &self,
        case_id: Option<i64>,
        limit: usize,
    ) -> CaseResult<Vec<AuditEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut st = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE (?1 IS NULL OR case_id = ?1) ORDER BY seq DESC LIMIT ?2"
        ))?;
        let rows = st.query_map(params![case_id, limit], read_entry)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}
