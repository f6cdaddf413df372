//! Merging a run's output folder into the store, idempotently.
//!
//! - Runs are keyed by their id: merging the same folder twice adds nothing the second time.
//! - A finding part is keyed by (case, rule, settlement), a case by (entity type, entity id):
//!   another run over the same data flags the same keys and updates them in place (amount,
//!   detail, last run); nothing is counted twice.
//! - A later run (by the manifest's `started_at`) that ran a rule over a settlement without
//!   flagging it any more marks that finding part `no_longer_flagged` with its run id; a run
//!   that did not read the settlement (other months) or did not run the rule changes nothing.
//!   A later run that flags it again makes it active again.
//! - Person- and facility-level findings (one row per settlement in `findings.parquet`)
//!   become one case for the entity, linked to its settlements.
//! - The settlement rows of the cases and of their persons' other settlements, the fee lines
//!   of the cases' settlements, their benefit checks and the facility table are copied into
//!   the store (the latest merge's copy wins), so that `cases show` needs no run folder.
//!
//! The evidence is selected with DataFusion over the run's `data/*.parquet` (a semi-join
//! against a file of wanted settlement ids), never by loading a whole table.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Decimal128Type, Field, Schema};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use sha2::{Digest, Sha256};

use super::auth::{Actor, Permission};
use super::{CaseError, CaseResult, Status, Store, audit, db};
use crate::Error;

/// What a merge did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct MergeReport {
    pub run_id: String,
    /// The run had been merged before: nothing was changed.
    pub already_merged: bool,
    /// Rows of `findings.parquet`.
    pub findings_read: usize,
    pub new_cases: usize,
    /// Finding parts seen for the first time.
    pub new_findings: usize,
    /// Finding parts seen before, updated in place.
    pub updated_findings: usize,
    /// Finding parts this run no longer flags.
    pub no_longer_flagged: usize,
    /// Finding parts flagged again after a run had not flagged them.
    pub reflagged: usize,
    /// Rows of `review_sample.csv`.
    pub sample_rows: usize,
    /// Cases that became `sampled` (new or from `flagged`).
    pub newly_sampled: usize,
    pub settlements_copied: usize,
    pub fee_lines_copied: usize,
}

/// One row of `findings.parquet`.
struct FRow {
    setl_id: String,
    rule_id: String,
    category: String,
    severity: String,
    amount_cents: i64,
    detail: String,
    entity_type: String,
    entity_id: String,
    feedetl_sns: Option<String>,
    /// Rows of `findings.parquet` merged into this one (1 unless a check wrote the same
    /// key twice).
    rows: usize,
}

/// One finding per (case, rule, settlement): rows with the same key (which the contract does
/// not expect) are added up, their details and fee lines joined, rather than one overwriting
/// the other.
fn aggregate(rows: Vec<FRow>) -> Vec<FRow> {
    let mut out: Vec<FRow> = Vec::with_capacity(rows.len());
    let mut index: HashMap<((String, String), String, String), usize> = HashMap::new();
    for r in rows {
        let key = (r.case_key(), r.rule_id.clone(), r.setl_id.clone());
        match index.get(&key) {
            Some(&i) => {
                let f = &mut out[i];
                f.amount_cents += r.amount_cents;
                f.rows += r.rows;
                if !f.detail.split('；').any(|d| d == r.detail) {
                    f.detail = format!("{}；{}", f.detail, r.detail);
                }
                f.feedetl_sns = match (f.feedetl_sns.take(), r.feedetl_sns) {
                    (Some(a), Some(b)) => Some(format!("{a};{b}")),
                    (a, b) => a.or(b),
                };
            }
            None => {
                index.insert(key, out.len());
                out.push(r);
            }
        }
    }
    out
}

impl FRow {
    /// The case key: (entity type, entity id); a settlement-level finding's entity is its
    /// settlement.
    fn case_key(&self) -> (String, String) {
        match self.entity_type.as_str() {
            "person" | "facility" => (self.entity_type.clone(), self.entity_id.clone()),
            _ => ("settlement".to_string(), self.setl_id.clone()),
        }
    }
}

/// One row of `review_sample.csv`.
struct SRow {
    setl_id: String,
    risk_score: f64,
    stratum: String,
    inclusion_prob: f64,
    reason: String,
}

/// What the manifest says.
struct RunInfo {
    run_id: String,
    started_at: String,
    input_checksum: String,
    rules_ran: HashSet<String>,
    strata: Vec<(String, String, i64, i64)>,
    text: String,
}

fn engine_err(context: &str, e: impl std::fmt::Display) -> CaseError {
    CaseError::Engine(Error::Other(format!("{context}: {e}")))
}

fn read_manifest(dir: &Path) -> CaseResult<RunInfo> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CaseError::Io(format!("reading {}: {e} (is this a `medaudit run` output folder?)", path.display()))
    })?;
    let m: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| engine_err(&format!("reading {}", path.display()), e))?;
    let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let run_id = s(&m["run_id"])
        .filter(|x| !x.is_empty())
        .ok_or_else(|| engine_err(&path.display().to_string(), "no run_id"))?;
    let started_at = s(&m["started_at"]).unwrap_or_default();
    let mut files: Vec<String> = Vec::new();
    for t in m["input"]["tables"].as_array().into_iter().flatten() {
        for f in t["files"].as_array().into_iter().flatten() {
            // Content, not place: the same files copied elsewhere are the same input.
            files.push(format!(
                "{}:{}",
                t["table"].as_str().unwrap_or(""),
                f["sha256"].as_str().unwrap_or("")
            ));
        }
    }
    files.sort();
    let input_checksum = hex(&Sha256::digest(files.join("\n").as_bytes()));
    let rules_ran = m["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["status"] == "ran")
        .filter_map(|r| s(&r["id"]))
        .collect();
    let strata = m["review_sample"]["strata"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            (
                s(&x["locality"]).unwrap_or_default(),
                s(&x["stratum"]).unwrap_or_default(),
                x["population"].as_i64().unwrap_or(0),
                x["drawn"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    Ok(RunInfo { run_id, started_at, input_checksum, rules_ran, strata, text })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn file_sha256(path: &Path) -> CaseResult<String> {
    let bytes = std::fs::read(path).map_err(|e| CaseError::Io(format!("reading {}: {e}", path.display())))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn read_findings(path: &Path, run_id: &str) -> CaseResult<Vec<FRow>> {
    let batches = crate::output::read_parquet(path)?;
    let mut out = Vec::new();
    for b in &batches {
        let text = |n: &str| -> CaseResult<arrow::array::StringArray> {
            let c = b
                .column_by_name(n)
                .ok_or_else(|| engine_err(&path.display().to_string(), format!("no column {n}")))?;
            let c = arrow::compute::cast(c, &DataType::Utf8).map_err(|e| engine_err(n, e))?;
            Ok(c.as_string::<i32>().clone())
        };
        let (setl, rule, cat, sev, detail, et, eid, sns, run) = (
            text("setl_id")?,
            text("rule_id")?,
            text("category")?,
            text("severity")?,
            text("detail")?,
            text("entity_type")?,
            text("entity_id")?,
            text("feedetl_sns")?,
            text("run_id")?,
        );
        let amt = b
            .column_by_name("amount_at_risk")
            .ok_or_else(|| engine_err(&path.display().to_string(), "no column amount_at_risk"))?;
        let DataType::Decimal128(_, scale) = amt.data_type() else {
            return Err(engine_err(&path.display().to_string(), "amount_at_risk is not a decimal"));
        };
        let scale = *scale;
        let amt = amt.as_primitive::<Decimal128Type>();
        let get = |a: &arrow::array::StringArray, r: usize| -> String {
            if a.is_null(r) { String::new() } else { a.value(r).to_string() }
        };
        for r in 0..b.num_rows() {
            if !run.is_null(r) && run.value(r) != run_id {
                return Err(engine_err(
                    &path.display().to_string(),
                    format!("row of run {} in the output of run {run_id}", run.value(r)),
                ));
            }
            let cents = if amt.is_null(r) {
                0
            } else {
                let d = rust_decimal::Decimal::from_i128_with_scale(amt.value(r), scale.max(0) as u32);
                db::to_cents(d.round_dp(2))?
            };
            let setl_id = get(&setl, r);
            if setl_id.is_empty() {
                return Err(engine_err(&path.display().to_string(), "a finding without setl_id"));
            }
            out.push(FRow {
                setl_id,
                rule_id: get(&rule, r),
                category: get(&cat, r),
                severity: get(&sev, r),
                amount_cents: cents,
                detail: get(&detail, r),
                entity_type: get(&et, r),
                entity_id: get(&eid, r),
                feedetl_sns: Some(get(&sns, r)).filter(|s| !s.is_empty()),
                rows: 1,
            });
        }
    }
    Ok(out)
}

fn read_sample(path: &Path) -> CaseResult<Vec<SRow>> {
    if !path.exists() {
        return Ok(vec![]);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| CaseError::Io(format!("reading {}: {e}", path.display())))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let head = rdr.headers().map_err(|e| engine_err(&path.display().to_string(), e))?.clone();
    let col = |n: &str| {
        head.iter()
            .position(|h| h == n)
            .ok_or_else(|| engine_err(&path.display().to_string(), format!("no column {n}")))
    };
    let (c_id, c_score, c_stratum, c_prob, c_reason) =
        (col("setl_id")?, col("risk_score")?, col("stratum")?, col("inclusion_prob")?, col("reason")?);
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| engine_err(&path.display().to_string(), e))?;
        let f = |c: usize| rec.get(c).unwrap_or("").to_string();
        let prob: f64 = f(c_prob).parse().unwrap_or(f64::NAN);
        if !(prob > 0.0 && prob <= 1.0) {
            return Err(engine_err(
                &path.display().to_string(),
                format!("row {}: inclusion_prob `{}` is not in (0, 1]", i + 2, f(c_prob)),
            ));
        }
        out.push(SRow {
            setl_id: f(c_id),
            risk_score: f(c_score).parse().unwrap_or(0.0),
            stratum: f(c_stratum),
            inclusion_prob: prob,
            reason: f(c_reason),
        });
    }
    Ok(out)
}

/// Rows of a query as (column → text) maps, in column order.
fn rows_as_text(batches: &[RecordBatch]) -> CaseResult<Vec<Vec<(String, String)>>> {
    let opts = FormatOptions::default()
        .with_null("")
        .with_date_format(Some("%Y-%m-%d"))
        .with_timestamp_format(Some("%Y-%m-%d %H:%M:%S"));
    let mut out = Vec::new();
    for b in batches {
        let names: Vec<String> = b.schema().fields().iter().map(|f| f.name().clone()).collect();
        let fmts: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|a| ArrayFormatter::try_new(a.as_ref(), &opts))
            .collect::<Result<_, _>>()
            .map_err(|e| engine_err("formatting evidence", e))?;
        for r in 0..b.num_rows() {
            out.push(names.iter().zip(&fmts).map(|(n, f)| (n.clone(), f.value(r).to_string())).collect());
        }
    }
    Ok(out)
}

fn field<'a>(row: &'a [(String, String)], name: &str) -> &'a str {
    row.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v.as_str())
}

fn cents_of(row: &[(String, String)], name: &str) -> Option<i64> {
    let v = field(row, name);
    if v.is_empty() { None } else { db::parse_yuan(v).ok() }
}

fn row_json(row: &[(String, String)]) -> String {
    let m: serde_json::Map<String, serde_json::Value> =
        row.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
    serde_json::Value::Object(m).to_string()
}

/// The evidence selected from the run's data folder.
#[derive(Default)]
struct Evidence {
    setl: Vec<Vec<(String, String)>>,
    fee: Vec<Vec<(String, String)>>,
    medins: Vec<Vec<(String, String)>>,
    /// Candidate settlements (for `no_longer_flagged`) present in the run's data.
    covered: HashSet<String>,
}

/// A temporary folder removed when dropped.
struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn select_evidence(
    run_dir: &Path,
    tmp: &Path,
    case_setls: &BTreeSet<String>,
    candidates: &BTreeSet<String>,
) -> CaseResult<Evidence> {
    let data = run_dir.join("data");
    let tables = crate::engine::Tables::new(data, None);
    let ctx: SessionContext = crate::engine::session(&tables).await?;
    let ids: Vec<&str> = case_setls.iter().chain(candidates).map(String::as_str).collect();
    let flags: Vec<bool> = case_setls.iter().map(|_| true).chain(candidates.iter().map(|_| false)).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("setl_id", DataType::Utf8, false),
        Field::new("is_case", DataType::Boolean, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(StringArray::from(ids)) as ArrayRef, Arc::new(BooleanArray::from(flags)) as ArrayRef],
    )
    .map_err(|e| engine_err("wanted settlements", e))?;
    let wanted = tmp.join("wanted.parquet");
    crate::output::write_parquet(&wanted, schema, &[batch])?;
    ctx.register_parquet("wanted", wanted.to_string_lossy().as_ref(), ParquetReadOptions::default())
        .await
        .map_err(|e| Error::df("registering the wanted settlements", e))?;
    let q = |sql: String| {
        let ctx = &ctx;
        async move {
            let df = ctx.sql(&sql).await.map_err(|e| Error::df("selecting case evidence", e))?;
            let b = df.collect().await.map_err(|e| Error::df("selecting case evidence", e))?;
            rows_as_text(&b)
        }
    };
    let mut ev = Evidence {
        setl: q("SELECT s.* FROM setl s WHERE s.psn_no IN (
                   SELECT x.psn_no FROM setl x WHERE x.setl_id IN (SELECT setl_id FROM wanted WHERE is_case))"
            .into())
        .await?,
        fee: q("SELECT f.* FROM fee f WHERE f.setl_id IN (SELECT setl_id FROM wanted WHERE is_case)".into()).await?,
        ..Default::default()
    };
    if crate::engine::present_tables(&ctx).iter().any(|t| t == "medins") {
        ev.medins = q("SELECT * FROM medins".into()).await?;
    }
    for r in
        q("SELECT setl_id FROM setl WHERE setl_id IN (SELECT setl_id FROM wanted WHERE NOT is_case)".into())
            .await?
    {
        ev.covered.insert(field(&r, "setl_id").to_string());
    }
    for c in candidates {
        if case_setls.contains(c) {
            ev.covered.insert(c.clone());
        }
    }
    Ok(ev)
}

/// The benefit checks of the cases' settlements.
fn read_benefit(
    run_dir: &Path,
    wanted: &BTreeSet<String>,
) -> CaseResult<Vec<(String, String, i64, i64, i64, String)>> {
    let path = run_dir.join("benefit_check.parquet");
    if !path.exists() {
        return Ok(vec![]);
    }
    let rows = rows_as_text(&crate::output::read_parquet(&path)?)?;
    let mut out = Vec::new();
    for r in rows {
        let id = field(&r, "setl_id");
        if !wanted.contains(id) {
            continue;
        }
        let c = |n: &str| cents_of(&r, n).unwrap_or(0);
        out.push((
            id.to_string(),
            field(&r, "fund").to_string(),
            c("recorded"),
            c("expected"),
            c("diff"),
            field(&r, "status").to_string(),
        ));
    }
    Ok(out)
}

impl Store {
    /// Merges the output folder of one `medaudit run` (administrators, or a system actor with
    /// that role). Idempotent: see the module documentation.
    ///
    /// Runs a DataFusion query on a runtime of its own: from async code, call it inside
    /// `spawn_blocking`.
    pub fn merge_run(&mut self, actor: &Actor, output_dir: &Path) -> CaseResult<MergeReport> {
        actor.require(Permission::Merge)?;
        let info = read_manifest(output_dir)?;
        let mut report = MergeReport { run_id: info.run_id.clone(), ..Default::default() };
        let merged: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE run_id = ?1)",
            [&info.run_id],
            |r| r.get(0),
        )?;
        if merged {
            report.already_merged = true;
            return Ok(report);
        }
        let findings_path = output_dir.join("findings.parquet");
        let findings_sha = file_sha256(&findings_path)?;
        let findings = aggregate(read_findings(&findings_path, &info.run_id)?);
        let sample = read_sample(&output_dir.join("review_sample.csv"))?;
        report.findings_read = findings.iter().map(|f| f.rows).sum();
        report.sample_rows = sample.len();

        // The settlements of the cases of this run.
        let mut case_setls: BTreeSet<String> = findings.iter().map(|f| f.setl_id.clone()).collect();
        case_setls.extend(sample.iter().map(|s| s.setl_id.clone()));
        // Active finding parts of earlier runs for rules this run ran, which it does not flag.
        let flagged_now: HashSet<(String, String, String, String)> = findings
            .iter()
            .map(|f| {
                let (t, e) = f.case_key();
                (t, e, f.rule_id.clone(), f.setl_id.clone())
            })
            .collect();
        let mut candidates: BTreeSet<String> = BTreeSet::new();
        {
            let mut st = self.conn.prepare(
                "SELECT c.entity_type, c.entity_id, f.rule_id, f.setl_id FROM findings f
                 JOIN cases c ON c.case_id = f.case_id
                 WHERE f.status = 'active' AND f.last_seen_at < ?1",
            )?;
            let mut rows = st.query([&info.started_at])?;
            while let Some(r) = rows.next()? {
                let key: (String, String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                if info.rules_ran.contains(&key.2) && !flagged_now.contains(&key) {
                    candidates.insert(key.3);
                }
            }
        }

        let tmp = TempDir(self.dir.join(format!(".merge-{}-{}", std::process::id(), info.run_id)));
        std::fs::create_dir_all(&tmp.0)
            .map_err(|e| CaseError::Io(format!("creating {}: {e}", tmp.0.display())))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| engine_err("starting the query runtime", e))?;
        let ev = rt.block_on(select_evidence(output_dir, &tmp.0, &case_setls, &candidates))?;
        drop(rt);
        let benefit = read_benefit(output_dir, &case_setls)?;

        let now = db::now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // The run may have been merged by someone else meanwhile.
        let merged: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM runs WHERE run_id = ?1)", [&info.run_id], |r| {
                r.get(0)
            })?;
        if merged {
            report.already_merged = true;
            return Ok(report);
        }
        // Evidence.
        {
            let mut st = tx.prepare(
                "INSERT OR REPLACE INTO facilities (fixmedins_code, fixmedins_name, admdvs, hosp_lv) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for r in &ev.medins {
                st.execute(params![
                    field(r, "fixmedins_code"),
                    field(r, "fixmedins_name"),
                    field(r, "admdvs"),
                    field(r, "hosp_lv")
                ])?;
            }
            let mut st = tx.prepare(
                "INSERT OR REPLACE INTO settlements (setl_id, psn_no, psn_name, certno, fixmedins_code, insu_admdvs,
                    fix_blng_admdvs, med_type, setl_date, begndate, enddate, setl_mode, refd_setl_flag, medfee_cents,
                    fund_cents, row_json, run_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )?;
            for r in &ev.setl {
                let fund = ["hifp_pay", "hifmi_pay", "hifob_pay"]
                    .iter()
                    .map(|n| cents_of(r, n).unwrap_or(0))
                    .sum::<i64>();
                let setl_time = field(r, "setl_time");
                st.execute(params![
                    field(r, "setl_id"),
                    field(r, "psn_no"),
                    field(r, "psn_name"),
                    field(r, "certno"),
                    field(r, "fixmedins_code"),
                    field(r, "insu_admdvs"),
                    field(r, "fix_blng_admdvs"),
                    field(r, "med_type"),
                    setl_time.get(..10).unwrap_or(setl_time),
                    field(r, "begndate"),
                    field(r, "enddate"),
                    field(r, "setl_mode"),
                    field(r, "refd_setl_flag"),
                    cents_of(r, "medfee_sumamt"),
                    fund,
                    row_json(r),
                    info.run_id,
                ])?;
            }
            report.settlements_copied = ev.setl.len();
            let mut st = tx.prepare(
                "INSERT OR REPLACE INTO fee_lines (feedetl_sn, setl_id, row_json, run_id) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for r in &ev.fee {
                st.execute(params![field(r, "feedetl_sn"), field(r, "setl_id"), row_json(r), info.run_id])?;
            }
            report.fee_lines_copied = ev.fee.len();
            let mut st = tx.prepare(
                "INSERT OR REPLACE INTO benefit_checks (setl_id, fund, recorded_cents, expected_cents, diff_cents, status, run_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for b in &benefit {
                st.execute(params![b.0, b.1, b.2, b.3, b.4, b.5, info.run_id])?;
            }
        }

        // Cases and finding parts.
        let mut case_ids: HashMap<(String, String), i64> = HashMap::new();
        let mut touched: BTreeSet<i64> = BTreeSet::new();
        {
            let mut find_case =
                tx.prepare("SELECT case_id FROM cases WHERE entity_type = ?1 AND entity_id = ?2")?;
            let mut new_case = tx.prepare(
                "INSERT INTO cases (entity_type, entity_id, status, created_run_id, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            )?;
            let mut link =
                tx.prepare("INSERT OR IGNORE INTO case_settlements (case_id, setl_id) VALUES (?1, ?2)")?;
            let mut link_part =
                tx.prepare("INSERT OR IGNORE INTO case_settlements (case_id, setl_id) VALUES (?1, ?2)")?;
            let mut get_part = tx.prepare(
                "SELECT status, last_seen_at, status_at FROM findings WHERE case_id = ?1 AND rule_id = ?2 AND setl_id = ?3",
            )?;
            let mut insert_part = tx.prepare(
                "INSERT INTO findings (case_id, rule_id, setl_id, category, severity, amount_cents, detail, feedetl_sns,
                    first_run_id, last_run_id, last_seen_at, status, status_run_id, status_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, 'active', ?9, ?10)",
            )?;
            let mut update_part = tx.prepare(
                "UPDATE findings SET category = ?4, severity = ?5, amount_cents = ?6, detail = ?7, feedetl_sns = ?8,
                    last_run_id = ?9, last_seen_at = ?10
                 WHERE case_id = ?1 AND rule_id = ?2 AND setl_id = ?3",
            )?;
            let mut reactivate = tx.prepare(
                "UPDATE findings SET status = 'active', status_run_id = ?4, status_at = ?5
                 WHERE case_id = ?1 AND rule_id = ?2 AND setl_id = ?3",
            )?;
            let mut case_id_for =
                |key: &(String, String), status: Status, report: &mut MergeReport| -> CaseResult<i64> {
                    if let Some(id) = case_ids.get(key) {
                        return Ok(*id);
                    }
                    let id: Option<i64> =
                        find_case.query_row(params![key.0, key.1], |r| r.get(0)).optional()?;
                    let id = match id {
                        Some(id) => id,
                        None => {
                            new_case.execute(params![key.0, key.1, status.as_str(), info.run_id, now])?;
                            report.new_cases += 1;
                            if status == Status::Sampled {
                                report.newly_sampled += 1;
                            }
                            tx.last_insert_rowid()
                        }
                    };
                    if key.0 == "settlement" {
                        link.execute(params![id, key.1])?;
                    }
                    case_ids.insert(key.clone(), id);
                    Ok(id)
                };
            for f in &findings {
                let key = f.case_key();
                let id = case_id_for(&key, Status::Flagged, &mut report)?;
                touched.insert(id);
                link_part.execute(params![id, f.setl_id])?;
                let existing: Option<(String, String, String)> = get_part
                    .query_row(params![id, f.rule_id, f.setl_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()?;
                match existing {
                    None => {
                        insert_part.execute(params![
                            id,
                            f.rule_id,
                            f.setl_id,
                            f.category,
                            f.severity,
                            f.amount_cents,
                            f.detail,
                            f.feedetl_sns,
                            info.run_id,
                            info.started_at
                        ])?;
                        report.new_findings += 1;
                    }
                    Some((status, last_seen, status_at)) => {
                        if info.started_at > last_seen {
                            update_part.execute(params![
                                id,
                                f.rule_id,
                                f.setl_id,
                                f.category,
                                f.severity,
                                f.amount_cents,
                                f.detail,
                                f.feedetl_sns,
                                info.run_id,
                                info.started_at
                            ])?;
                            report.updated_findings += 1;
                        }
                        if status != "active" && info.started_at > status_at {
                            reactivate.execute(params![
                                id,
                                f.rule_id,
                                f.setl_id,
                                info.run_id,
                                info.started_at
                            ])?;
                            report.reflagged += 1;
                        }
                    }
                }
            }
            // The sample.
            let flagged_setls: HashSet<&str> = findings.iter().map(|f| f.setl_id.as_str()).collect();
            let mut to_sampled = tx.prepare(
                "UPDATE cases SET status = 'sampled', updated_at = ?2 WHERE case_id = ?1 AND status = 'flagged'",
            )?;
            let mut insert_sample = tx.prepare(
                "INSERT OR REPLACE INTO samples (run_id, setl_id, case_id, locality, stratum, inclusion_prob, risk_score, reason, flagged)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for s in &sample {
                let key = ("settlement".to_string(), s.setl_id.clone());
                let before = report.new_cases;
                let id = case_id_for(&key, Status::Sampled, &mut report)?;
                touched.insert(id);
                if report.new_cases == before && to_sampled.execute(params![id, now])? > 0 {
                    report.newly_sampled += 1;
                }
                let locality = s.stratum.split('/').next().unwrap_or("").to_string();
                insert_sample.execute(params![
                    info.run_id,
                    s.setl_id,
                    id,
                    locality,
                    s.stratum,
                    s.inclusion_prob,
                    s.risk_score,
                    s.reason,
                    flagged_setls.contains(s.setl_id.as_str())
                ])?;
            }
            let mut insert_stratum = tx.prepare(
                "INSERT OR REPLACE INTO strata (run_id, locality, stratum, population, drawn) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (loc, stratum, pop, drawn) in &info.strata {
                insert_stratum.execute(params![info.run_id, loc, stratum, pop, drawn])?;
            }
        }

        // Parts this run no longer flags.
        {
            let mut st = tx.prepare(
                "SELECT f.case_id, c.entity_type, c.entity_id, f.rule_id, f.setl_id FROM findings f
                 JOIN cases c ON c.case_id = f.case_id
                 WHERE f.status = 'active' AND f.last_seen_at < ?1 AND f.setl_id = ?2",
            )?;
            let mut mark = tx.prepare(
                "UPDATE findings SET status = 'no_longer_flagged', status_run_id = ?4, status_at = ?5
                 WHERE case_id = ?1 AND rule_id = ?2 AND setl_id = ?3",
            )?;
            for setl in &ev.covered {
                let rows: Vec<(i64, String, String, String, String)> = st
                    .query_map(params![info.started_at, setl], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })?
                    .collect::<Result<_, _>>()?;
                for (id, t, e, rule, s) in rows {
                    if info.rules_ran.contains(&rule)
                        && !flagged_now.contains(&(t, e, rule.clone(), s.clone()))
                    {
                        mark.execute(params![id, rule, s, info.run_id, info.started_at])?;
                        report.no_longer_flagged += 1;
                        touched.insert(id);
                    }
                }
            }
        }

        // Amount at risk of the touched cases: the largest over their active rules (rules may
        // rest on the same money; their sum could count it twice).
        {
            let mut st = tx.prepare(
                "UPDATE cases SET amount_cents = COALESCE((SELECT MAX(s) FROM (
                     SELECT SUM(amount_cents) AS s FROM findings
                     WHERE findings.case_id = ?1 AND status = 'active' GROUP BY rule_id)), 0),
                   updated_at = ?2
                 WHERE case_id = ?1",
            )?;
            for id in &touched {
                st.execute(params![id, now])?;
            }
        }
        let report_json = serde_json::to_value(&report).unwrap_or_default();
        audit::append(
            &tx,
            &actor.name,
            "merge_run",
            None,
            &serde_json::json!({
                "run_id": info.run_id,
                "source": output_dir.display().to_string(),
                "input_checksum": info.input_checksum,
                "findings_sha256": findings_sha,
                "report": report_json,
            }),
        )?;
        tx.execute(
            "INSERT INTO runs (run_id, started_at, merged_at, merged_by, source, input_checksum, findings_sha256, manifest, report)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                info.run_id,
                info.started_at,
                now,
                actor.name,
                output_dir.display().to_string(),
                info.input_checksum,
                findings_sha,
                info.text,
                report_json.to_string()
            ],
        )?;
        tx.commit()?;
        Ok(report)
    }

    /// The merged runs, oldest first: `(run_id, started_at, merged_at, input_checksum)`.
    pub fn runs(&self, actor: &Actor) -> CaseResult<Vec<(String, String, String, String)>> {
        actor.require(Permission::ViewCases)?;
        let mut st = self
            .conn
            .prepare("SELECT run_id, started_at, merged_at, input_checksum FROM runs ORDER BY started_at")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}
