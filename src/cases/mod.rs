//! The case store: where findings become cases that people review, confirm, deduct and
//! export (issue 8).
//!
//! Findings are only worth something when someone acts on them. Every run's findings and
//! second-review (复审) sample merge into a persistent store, an embedded SQLite database in a
//! folder the user names (`<dir>/cases.sqlite`, readable by its owner only: it holds personal
//! data). A case is a settlement with its findings, or, for facility- and person-level
//! findings, the facility or person with the settlements the findings rest on.
//!
//! - [`Store::merge_run`] merges a `medaudit run` output folder idempotently: findings are
//!   keyed by (case, rule, settlement), runs by their id and input checksums; a later run over
//!   the same settlements that no longer flags one records that (`no_longer_flagged`). The
//!   settlement rows, fee lines and benefit checks a case needs are copied into the store,
//!   so that a case can still be shown when the run folder is gone.
//! - The lifecycle ([`Status`], [`Store::start_review`], [`Store::confirm`], ...) follows the
//!   contracts: 已标记 → 已抽样 → 复审中 → 确认违规 (three confirmations: insurer, agency,
//!   facility; 河南大病合同 第十六条, 漯河大额合同 第二十一条) or 已排除 → 已扣款 in the next
//!   monthly payment, or 已追回 from the person for a manual reimbursement; a facility may
//!   appeal (申诉) before deduction. An illegal transition is refused with a clear message.
//! - Users and roles ([`Role`]): every call takes the acting [`Actor`], obtained from
//!   [`Store::login`]; a call without the right role is refused, a failed login is logged.
//! - Exports ([`Store::export`]) to CSV (UTF-8 with BOM), xlsx and Parquet, ID numbers and
//!   names masked unless an investigator states a purpose.
//! - [`Store::estimate`]: Horvitz–Thompson estimates of the violation rate and the money at
//!   stake from the sample's inclusion probabilities and the review outcomes, and rule
//!   precision.
//! - An append-only, hash-chained audit log ([`Store::verify_audit`]).
//!
//! One [`Store`] holds one SQLite connection: a web layer opens one per worker or wraps it in
//! a mutex. The database runs in WAL mode with a busy timeout, so that the CLI, a nightly job
//! and a web server can share a store folder.
//!
//! ```no_run
//! # fn main() -> Result<(), medaudit::cases::CaseError> {
//! use medaudit::cases::{Filter, Store};
//! let mut store = Store::open("cases".as_ref())?;
//! let admin = store.login("admin", "a long password")?;
//! let report = store.merge_run(&admin, "out/sample".as_ref())?;
//! println!("{} new cases", report.new_cases);
//! let rows = store.list(&admin, &Filter { status: vec!["confirmed".parse()?], ..Default::default() })?;
//! # Ok(()) }
//! ```

mod audit;
mod auth;
mod dashboard;
mod db;
mod deduct;
mod error;
mod estimate;
mod export;
mod merge;
mod query;
mod review;
mod status;
pub mod text;

pub use audit::{AuditEntry, AuditReport};
pub use auth::{Actor, MIN_PASSWORD_CHARS, Permission, Role, UserInfo};
pub use dashboard::{Dashboard, ReviewerLine, RuleMoney, StatusLine};
pub use db::from_cents;
pub use deduct::{DeductionLine, DeductionList, FacilityDeductions, PendingLine, RecoveryLine};
pub use error::CaseError;
pub use estimate::{Estimate, EstimateLine, Interval, RulePrecision};
pub use export::{COLUMNS as EXPORT_COLUMNS, ExportFormat, ExportReport, Unmask, export_schema};
pub use merge::MergeReport;
pub use query::{
    BenefitRow, CaseDetail, CaseRef, CaseRow, CaseSummary, FeeRow, Filter, FindingRow, HistoryRow,
    SettlementRow,
};
pub use review::{AppealOutcome, Confirmation, Party, RecoverFrom};
pub use status::Status;

use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// Result of the case store.
pub type CaseResult<T> = std::result::Result<T, CaseError>;

/// The file name of the database inside the store folder.
pub const DB_FILE: &str = "cases.sqlite";

/// A case store: one SQLite database in a folder.
pub struct Store {
    conn: Connection,
    dir: PathBuf,
    /// The version the next transition expects its case to have ([`Store::expect_version`]).
    expected: Option<(i64, String)>,
}

impl Store {
    /// Opens the store in `dir`, creating the folder and the database when they do not exist.
    pub fn open(dir: &Path) -> CaseResult<Store> {
        std::fs::create_dir_all(dir)
            .map_err(|e| CaseError::Io(format!("creating the store folder {}: {e}", dir.display())))?;
        let path = dir.join(DB_FILE);
        let fresh = !path.exists();
        let conn =
            Connection::open(&path).map_err(|e| CaseError::Db(format!("opening {}: {e}", path.display())))?;
        let store = Store { conn, dir: dir.to_path_buf(), expected: None };
        db::init(&store.conn)?;
        if fresh {
            restrict_permissions(dir);
            for suffix in ["", "-wal", "-shm"] {
                restrict_permissions(&dir.join(format!("{DB_FILE}{suffix}")));
            }
        }
        Ok(store)
    }

    /// The store folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes the next lifecycle transition (confirm, dismiss, start review, ...) refuse with
    /// [`CaseError::Conflict`] unless case `case_id` still has `version` (its
    /// [`CaseRow::version`], read when a form was opened). The check runs inside the
    /// transition's write transaction, so that of two reviewers deciding the same case the
    /// second is told instead of overwriting the first. The expectation is used up by the next
    /// transition, whether it succeeds or not.
    pub fn expect_version(&mut self, case_id: i64, version: &str) {
        self.expected = Some((case_id, version.to_string()));
    }

    /// Drops an expectation set by [`Store::expect_version`] that no transition used.
    pub fn clear_expected_version(&mut self) {
        self.expected = None;
    }

    /// The database connection, for read-only queries of layers built on the store (reports).
    /// Changes must go through the store's methods, which keep the audit log.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// Owner-only permissions (the store and unmasked exports hold personal data).
pub(crate) fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if path.is_dir() { 0o700 } else { 0o600 };
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = path;
}
