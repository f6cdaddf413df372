//! `medaudit nightly`: the scheduled audit of each night's deliveries against the history,
//! incremental, idempotent and crash-safe. `docs/nightly.md` is the operator's guide.
//!
//! A night:
//!
//! 1. takes the store's lock ([`lock`]) and removes what an interrupted night left
//!    ([`store::recover`]);
//! 2. lists the inbox ([`inbox`]) and skips every file whose sha256 the catalogue holds;
//! 3. ingests the new files in one go (the contract's validation; bad rows to quarantine; fee
//!    lines whose settlement is not in the night's files are kept for step 4);
//! 4. sets the new rows against the store's current version ([`delta`]): a key seen before is a
//!    new version that supersedes the old one (both stay in `history/`), a row identical to its
//!    current version is not stored again, fee lines whose settlement is nowhere wait in the
//!    pending area and are retried every night, quarantined after `max_pending_nights`;
//! 5. writes the new parts and the copies of parts that lost superseded rows;
//! 6. re-audits every person the night touched, over the person's whole history, with the
//!    standard pipeline ([`crate::run`]) restricted to the person-scoped rules;
//! 7. re-runs over the whole history what compares persons: the other rules, the statistical
//!    checks and the payment deadlines;
//! 8. merges the results into the store's current findings, benefit checks and outreach list,
//!    and draws the second-review sample over every settlement;
//! 9. publishes the output folder (manifest last, atomically), then commits the catalogue, the
//!    single point where the night becomes real, and removes what it no longer references.
//!
//! Every file a night writes has a name fixed by the night's number, and nothing the committed
//! catalogue references is ever modified, so a night killed at any point and run again ends in
//! the same state as a night that was never interrupted. `MEDAUDIT_FAIL_AT` with a stage of
//! [`FAULT_STAGES`] injects a failure (`MEDAUDIT_FAIL_MODE=abort`: a crash) to test it.

pub mod catalogue;
pub mod config;
pub mod delta;
pub mod inbox;
pub mod lock;
pub mod store;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::array::RecordBatch;
use chrono::NaiveDate;
use serde::Serialize;

use crate::benefit::{self, Calendar, PolicySet};
use crate::codes::CodeTables;
use crate::engine::{self, RuleConfig, RuleStatus};
use crate::error::{Error, Result};
use crate::findings::{self, Finding};
use crate::ingest::{self, EncodingChoice, IngestOptions, IngestReport, Mapping, QuarantinedSettlement};
use crate::manifest::{self, Coverage, CoverageLine, Manifest, RuleEntry};
use crate::output;
use crate::publish::Staging;
use crate::run::{Logger, RunOptions};
use crate::schema::{self, FEE, MEDINS, PAY, PSN, SETL};
use catalogue::{Catalogue, FileEntry, NightEntry, PendingCounts, QuarantinedSetl};
pub use config::NightlyConfig;
use lock::{Acquire, Holder};

/// The stages at which `MEDAUDIT_FAIL_AT` can stop a night, in order. (The standard
/// pipeline's own `after_ingest` and `before_publish` apply to the re-audit of step 6.)
pub const FAULT_STAGES: &[&str] = &[
    "nightly_ingested",
    "nightly_stored",
    "nightly_audited",
    "nightly_global",
    "nightly_merged",
    "nightly_output",
    "nightly_published",
    "nightly_cases_merged",
    "nightly_committed",
];

/// What to run.
#[derive(Clone, Default)]
pub struct NightlyOptions {
    pub inbox: PathBuf,
    pub store: PathBuf,
    /// The output folder (default `STORE/runs/night-<night>`).
    pub out: Option<PathBuf>,
    /// The as-of date for payment deadlines (default: the latest date in the store, as
    /// `medaudit run` takes the latest date of its input).
    pub as_of: Option<NaiveDate>,
    /// The nightly configuration (default `datasets/nightly/config.toml`).
    pub config: Option<PathBuf>,
    pub kb: Vec<PathBuf>,
    pub policy: Option<PathBuf>,
    pub calendar: Option<PathBuf>,
    pub codes: Option<PathBuf>,
    pub mapping: Option<PathBuf>,
    pub encoding: EncodingChoice,
    pub rules_config: Option<PathBuf>,
    /// A case store (`medaudit cases`) into which each night's findings are merged.
    pub cases: Option<PathBuf>,
    pub log: Option<Logger>,
}

/// How a nightly run ended.
#[derive(Debug)]
pub enum Outcome {
    /// A night was audited and committed.
    Audited(Box<NightSummary>),
    /// The inbox held no new file (and no new as-of date was asked for): nothing was done.
    NothingNew { last_night: u64 },
    /// Another run holds the store's lock; nothing was done.
    Locked { holder: Option<Holder>, hung: bool },
}

/// What a committed night did.
#[derive(Debug)]
pub struct NightSummary {
    pub night: u64,
    pub out: PathBuf,
    pub entry: NightEntry,
    pub manifest: Manifest,
    /// The previous holder, when a stale lock was taken over.
    pub stale_lock: Option<Holder>,
    /// Files of the inbox skipped because the store already holds them.
    pub skipped_files: usize,
}

/// Runs one night.
pub fn nightly(opts: &NightlyOptions) -> Result<Outcome> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::other_err!("starting the query runtime: {e}"))?;
    rt.block_on(night_async(opts))
}

fn log(opts: &NightlyOptions, msg: &str) {
    if let Some(l) = &opts.log {
        l(msg);
    }
}

fn fault(stage: &str) -> Result<()> {
    if crate::fault::at(stage) {
        return Err(crate::other_err!("fault injected at {stage} (MEDAUDIT_FAIL_AT={stage})"));
    }
    Ok(())
}

/// Everything loaded before the lock is taken: a wrong file stops the night before any work.
struct Setup {
    cfg: NightlyConfig,
    codes_path: PathBuf,
    codes: CodeTables,
    policies: PolicySet,
    calendar: Calendar,
    rule_config: RuleConfig,
    rules: engine::RuleSet,
    mapping: Mapping,
    kb_dirs: Vec<PathBuf>,
    /// SQL rules re-run over the whole history.
    whole_history_rules: BTreeSet<String>,
}

fn setup(opts: &NightlyOptions) -> Result<Setup> {
    let datasets = crate::paths::datasets_dir();
    let cfg = match &opts.config {
        Some(p) => NightlyConfig::load(p)?,
        None => NightlyConfig::load_default()?,
    };
    let codes_path = opts.codes.clone().unwrap_or_else(|| datasets.join("codes/codes.csv"));
    let codes = CodeTables::load(&codes_path)?;
    let policies = match &opts.policy {
        Some(p) => PolicySet::load(p)?,
        None => PolicySet::load_default()?,
    };
    let calendar = match &opts.calendar {
        Some(p) => Calendar::load(p)?,
        None => Calendar::load_default()?,
    };
    let rule_config = match &opts.rules_config {
        Some(p) => RuleConfig::load(p)?,
        None => RuleConfig::default(),
    };
    let rules = rule_config.load_rules()?;
    let mapping = match &opts.mapping {
        Some(p) => Mapping::load(p)?,
        None => Mapping::default(),
    };
    let mut kb_dirs = vec![datasets.join("kb")];
    kb_dirs.extend(opts.kb.iter().cloned());
    let scoped: HashSet<&str> = cfg.person_scoped_rules.iter().map(String::as_str).collect();
    let whole_history_rules =
        rules.rules.iter().filter(|r| !scoped.contains(r.id.as_str())).map(|r| r.id.clone()).collect();
    // Configuration the pipeline reads later, checked now.
    crate::stats::StatsConfig::load_default()?;
    crate::sample::SampleConfig::load_default()?;
    Ok(Setup {
        cfg,
        codes_path,
        codes,
        policies,
        calendar,
        rule_config,
        rules,
        mapping,
        kb_dirs,
        whole_history_rules,
    })
}

/// Whether a finding is re-computed over the whole history every night (rather than per
/// touched person).
fn is_whole_history(rule_id: &str, category: &str, whole_history_rules: &BTreeSet<String>) -> bool {
    category == crate::stats::CATEGORY || category == "late_payment" || whole_history_rules.contains(rule_id)
}

async fn night_async(opts: &NightlyOptions) -> Result<Outcome> {
    let started = Instant::now();
    let mut timings: BTreeMap<String, f64> = BTreeMap::new();
    let s = setup(opts)?;
    let store_dir = opts.store.clone();
    let (lock, stale) = match lock::acquire(&store_dir, s.cfg.lock_max_age_hours)? {
        Acquire::Taken { lock, stale } => (lock, stale),
        Acquire::Held { holder, hung } => return Ok(Outcome::Locked { holder, hung }),
    };
    if let Some(h) = &stale {
        log(opts, &format!("taking over the lock left by pid {} (started {})", h.pid, h.started_at));
    }
    let mut cat = Catalogue::load(&store_dir)?;
    let runs_dir = store_dir.join("runs");
    let removed = store::recover(&store_dir, &cat, &runs_dir)?;
    if !removed.is_empty() {
        log(opts, &format!("removed {} leftovers of an interrupted night", removed.len()));
    }
    let night = cat.night + 1;
    let run_id = format!("night-{night:06}");
    let out_dir = opts.out.clone().unwrap_or_else(|| runs_dir.join(&run_id));

    // 2. The inbox.
    let t = Instant::now();
    let by_place: BTreeMap<(&str, u64, i64), &str> =
        cat.files.iter().map(|(sha, f)| ((f.path.as_str(), f.bytes, f.mtime), sha.as_str())).collect();
    let listed = inbox::list(&opts.inbox, &s.mapping, |rel, bytes, mtime| {
        by_place.get(&(rel, bytes, mtime)).map(|s| s.to_string())
    })?;
    drop(by_place);
    let mut seen: HashSet<String> = HashSet::new();
    let mut new_files = Vec::new();
    let mut skipped = 0usize;
    for f in listed {
        if cat.files.contains_key(&f.sha256) || !seen.insert(f.sha256.clone()) {
            skipped += 1;
        } else {
            new_files.push(f);
        }
    }
    log(
        opts,
        &format!("night {night}: {} new file(s) in the inbox, {skipped} already ingested", new_files.len()),
    );
    let last_as_of = cat.nights.last().and_then(|n| n.as_of.clone());
    let as_of_changed = opts.as_of.is_some_and(|d| Some(d.to_string()) != last_as_of);
    if new_files.is_empty() && (!as_of_changed || cat.night == 0) {
        drop(lock);
        return Ok(Outcome::NothingNew { last_night: cat.night });
    }
    let work = store_dir.join("work");
    std::fs::create_dir_all(&work).map_err(|e| Error::io("creating", &work, e))?;

    // 3. Ingest the new files.
    let report = if new_files.is_empty() {
        IngestReport::default()
    } else {
        inbox::stage(&new_files, &work.join("in"))?;
        let mut io = IngestOptions::new(s.codes.clone());
        io.encoding = opts.encoding;
        io.mapping = s.mapping.clone();
        io.defer_unknown_settlements = true;
        io.partial = true;
        log(opts, "ingest");
        let mut r = ingest::ingest(
            &work.join("in"),
            &work.join("ingest/data"),
            &work.join("ingest/quarantine"),
            &io,
        )?;
        // The manifest names the files as delivered, not their staged links.
        for t in &mut r.tables {
            for f in &mut t.files {
                let name = Path::new(&f.path).file_name().map(|n| n.to_string_lossy().into_owned());
                let index =
                    name.as_deref().and_then(|n| n.split('-').next()).and_then(|i| i.parse::<usize>().ok());
                if let Some(nf) = index.and_then(|i| new_files.get(i)) {
                    f.path = nf.path.display().to_string();
                }
            }
        }
        r
    };
    timings.insert("ingest".into(), t.elapsed().as_secs_f64());
    fault("nightly_ingested")?;

    // 4. The new rows against the current version.
    let t = Instant::now();
    log(opts, "reconcile with the history");
    store::build_view(&store_dir, &cat.parts, &work.join("view-old"))?;
    let old = store::view_session(&work.join("view-old")).await?;
    let read_new = |table: &str| -> Result<Vec<RecordBatch>> {
        let p = ingest::table_path(&work.join("ingest/data"), table);
        let spec = schema::table(table).ok_or_else(|| crate::other_err!("no table {table}"))?;
        if !p.exists() {
            return Ok(Vec::new());
        }
        output::read_parquet(&p)?.iter().map(|b| store::with_night(spec, b, night)).collect()
    };
    let tonight_q: Vec<QuarantinedSetl> = report
        .quarantined_settlements
        .iter()
        .map(|q| QuarantinedSetl {
            setl_id: q.setl_id.clone(),
            psn_no: q.psn_no.clone(),
            year: q.year,
            night,
        })
        .collect();
    let mut rec: BTreeMap<&str, delta::Reconciled> = BTreeMap::new();
    for spec in [&SETL, &PSN, &MEDINS, &PAY] {
        rec.insert(spec.name, delta::reconcile(&old, spec, read_new(spec.name)?).await?);
    }
    // Fee lines: tonight's and those waiting, against the settlements known now.
    let mut pending = PendingCounts { before: cat.state.pending_fee_rows, ..Default::default() };
    let mut candidates = match &cat.state.pending_fee {
        Some(p) => store::read_file(&store_dir, p)?,
        None => Vec::new(),
    };
    let arrived = read_new("fee")?;
    pending.arrived = arrived.iter().map(|b| b.num_rows() as u64).sum();
    candidates.extend(arrived);
    let (candidates, replaced) = delta::latest_per_key(&FEE, &candidates)?;
    pending.replaced = replaced;
    let setl_fresh = &rec["setl"].fresh;
    let fee_setl_ids = store::distinct(&candidates, "setl_id")?;
    // Where each fee line's settlement is: its current version, or tonight's new one (which
    // comes last, so that it wins: a new version may move to another month).
    let mut setl_month: BTreeMap<String, Option<(i32, u32)>> = BTreeMap::new();
    for b in store::fetch(&old, "setl", "setl_id", &fee_setl_ids).await?.iter().chain(setl_fresh) {
        for (id, m) in store::texts(b, "setl_id")?.into_iter().zip(store::year_months(b, "enddate")?) {
            setl_month.insert(id, m);
        }
    }
    let quarantined_ids: HashSet<String> =
        cat.quarantined_settlements.iter().chain(&tonight_q).filter_map(|q| q.setl_id.clone()).collect();
    let mut resolved = Vec::new();
    let mut waiting = Vec::new();
    let mut rejected: Vec<(RecordBatch, String)> = Vec::new();
    for b in &candidates {
        let ids = store::texts(b, "setl_id")?;
        let arrivals = store::nights_of(b)?;
        let class: Vec<u8> = ids
            .iter()
            .zip(&arrivals)
            .map(|(id, a)| {
                if setl_month.contains_key(id) {
                    0
                } else if quarantined_ids.contains(id) {
                    1
                } else if night.saturating_sub(*a) >= s.cfg.max_pending_nights {
                    2
                } else {
                    3
                }
            })
            .collect();
        let pick = |c: u8| store::filter_rows(b, &class.iter().map(|x| *x == c).collect::<Vec<_>>());
        resolved.push(pick(0)?);
        let q = pick(1)?;
        pending.quarantined += q.num_rows() as u64;
        if q.num_rows() > 0 {
            rejected.push((q, "setl_id（结算ID）所属结算已被隔离".to_string()));
        }
        let e = pick(2)?;
        pending.expired += e.num_rows() as u64;
        if e.num_rows() > 0 {
            rejected.push((
                e,
                format!(
                    "setl_id（结算ID）在结算信息中不存在：等待所属结算{}晚后仍未到达",
                    s.cfg.max_pending_nights
                ),
            ));
        }
        waiting.push(pick(3)?);
    }
    pending.resolved = resolved.iter().map(|b| b.num_rows() as u64).sum();
    pending.after = waiting.iter().map(|b| b.num_rows() as u64).sum();
    if pending.before + pending.arrived
        != pending.resolved + pending.replaced + pending.quarantined + pending.expired + pending.after
    {
        return Err(crate::other_err!("pending fee lines do not add up ({pending:?}); this is a bug"));
    }
    let resolved = delta::restamp(&FEE, &resolved, night)?;
    rec.insert("fee", delta::reconcile(&old, &FEE, resolved).await?);
    timings.insert("reconcile".into(), t.elapsed().as_secs_f64());

    // 5. New parts, and copies of the parts that lost superseded rows.
    let t = Instant::now();
    let mut parts = cat.parts.clone();
    for spec in schema::TABLES {
        let r = &rec[spec.name];
        let list = parts.entry(spec.name.to_string()).or_default();
        delta::drop_superseded(&store_dir, spec, list, &r.superseded, night)?;
        let new_parts = delta::write_parts(&store_dir, spec, &r.fresh, night, |b| {
            if spec.name == "setl" {
                store::year_months(b, "enddate")
            } else {
                Ok(store::texts(b, "setl_id")?
                    .iter()
                    .map(|id| setl_month.get(id).copied().flatten())
                    .collect())
            }
        })?;
        list.extend(new_parts);
        list.sort();
    }
    parts.retain(|_, v| !v.is_empty());
    let pending_rel = if pending.after > 0 {
        let rel = format!("state/pending_fee-{night:06}.parquet");
        let waiting: Vec<RecordBatch> = waiting.into_iter().filter(|b| b.num_rows() > 0).collect();
        store::write_file(&store_dir.join(&rel), store::history_schema(&FEE), &waiting)?;
        Some(rel)
    } else {
        None
    };
    let qdir = store_dir.join("quarantine").join(&run_id);
    write_quarantine(&work.join("ingest/quarantine"), &rejected, &qdir, night)?;
    timings.insert("store".into(), t.elapsed().as_secs_f64());
    fault("nightly_stored")?;

    // 6. Re-audit the touched persons over their whole history.
    let t = Instant::now();
    store::build_view(&store_dir, &parts, &work.join("view"))?;
    let cur = store::view_session(&work.join("view")).await?;
    let mut touched_setl: BTreeSet<String> = BTreeSet::new();
    for table in ["setl", "fee", "pay"] {
        let r = &rec[table];
        touched_setl.extend(store::distinct(&r.fresh, "setl_id")?);
        touched_setl.extend(store::distinct(&r.superseded, "setl_id")?);
    }
    let mut persons: BTreeSet<String> = BTreeSet::new();
    for b in store::fetch(&cur, "setl", "setl_id", &touched_setl).await? {
        persons.extend(store::texts(&b, "psn_no")?);
    }
    for b in store::fetch(&old, "setl", "setl_id", &touched_setl).await? {
        persons.extend(store::texts(&b, "psn_no")?);
    }
    persons.extend(store::distinct(&rec["psn"].fresh, "psn_no")?);
    persons.extend(store::distinct(&rec["psn"].superseded, "psn_no")?);
    let mut facilities = store::distinct(&rec["medins"].fresh, "fixmedins_code")?;
    facilities.extend(store::distinct(&rec["medins"].superseded, "fixmedins_code")?);
    for b in store::fetch(&cur, "setl", "fixmedins_code", &facilities).await? {
        persons.extend(store::texts(&b, "psn_no")?);
    }
    persons.extend(tonight_q.iter().filter_map(|q| q.psn_no.clone()));
    persons.remove("");
    log(opts, &format!("re-audit {} touched person(s)", persons.len()));
    let audit_in = work.join("audit/in");
    std::fs::create_dir_all(&audit_in).map_err(|e| Error::io("creating", &audit_in, e))?;
    let setl_sub = store::fetch(&cur, "setl", "psn_no", &persons).await?;
    let setl_ids = store::distinct(&setl_sub, "setl_id")?;
    let fee_sub = store::fetch(&cur, "fee", "setl_id", &setl_ids).await?;
    let pay_sub = store::fetch(&cur, "pay", "setl_id", &setl_ids).await?;
    let mut psn_keys = persons.clone();
    psn_keys.extend(store::distinct(&fee_sub, "psn_no")?);
    let psn_sub = store::fetch(&cur, "psn", "psn_no", &psn_keys).await?;
    let medins_sub = store::fetch_all(&cur, "medins").await?;
    let registered = |t: &str| cur.has(t);
    for (spec, rows) in
        [(&SETL, &setl_sub), (&FEE, &fee_sub), (&PSN, &psn_sub), (&MEDINS, &medins_sub), (&PAY, &pay_sub)]
    {
        if registered(spec.name) {
            write_contract(spec, rows, &ingest::table_path(&audit_in, spec.name))?;
        }
    }
    let audited_settlements = setl_ids.len() as u64;
    timings.insert("person_audit_input".into(), t.elapsed().as_secs_f64());
    let person_set: HashSet<String> = persons.iter().cloned().collect();
    let sub = if persons.is_empty() {
        None
    } else {
        let quarantined: Vec<QuarantinedSettlement> = cat
            .quarantined_settlements
            .iter()
            .chain(&tonight_q)
            .filter(|q| q.psn_no.as_ref().is_some_and(|p| person_set.contains(p)))
            .map(|q| QuarantinedSettlement {
                setl_id: q.setl_id.clone(),
                psn_no: q.psn_no.clone(),
                year: q.year,
            })
            .collect();
        let ropts = RunOptions {
            input: audit_in.clone(),
            out: work.join("audit/out"),
            kb: opts.kb.clone(),
            policy: opts.policy.clone(),
            calendar: opts.calendar.clone(),
            codes: opts.codes.clone(),
            rules_config: opts.rules_config.clone(),
            log: opts.log.clone(),
            run_id: Some(run_id.clone()),
            skip_stats: true,
            skip_deadlines: true,
            disable_rules: s.whole_history_rules.iter().cloned().collect(),
            quarantined,
            ..Default::default()
        };
        Some(crate::run::run_async(&ropts).await?)
    };
    timings.insert("person_audit".into(), t.elapsed().as_secs_f64());
    fault("nightly_audited")?;

    // 7. What compares persons, over the whole history.
    let t = Instant::now();
    log(opts, "whole-history rules, statistics, payment deadlines");
    let tables = engine::Tables {
        data_dir: work.join("view"),
        kb_dirs: s.kb_dirs.clone(),
        codes: s.codes_path.clone(),
    };
    // The whole history is scanned here: the same memory pool and spill folder as `medaudit run`.
    let engine_opts = engine::EngineOptions { spill_dir: Some(work.join("spill")), ..Default::default() };
    let ctx = engine::session_with(&tables, &engine_opts).await?;
    let views_dir = work.join("views");
    engine::materialize_views(&ctx, &views_dir).await?;
    let mut global_cfg = s.rule_config.clone();
    for r in &s.rules.rules {
        if !s.whole_history_rules.contains(&r.id) {
            global_cfg.disable.insert(r.id.clone());
        }
    }
    let global = engine::run_rules(&ctx, &s.rules, &global_cfg, &run_id).await?;
    timings.insert("whole_history_rules".into(), t.elapsed().as_secs_f64());
    // The findings kept from earlier nights and those of tonight's re-audit (the whole-history
    // rules' come from `global`).
    let wh = &s.whole_history_rules;
    let fschema = schema::findings_schema();
    let old_findings = match &cat.state.findings {
        Some(p) => store::read_file(&store_dir, p)?,
        None => Vec::new(),
    };
    let mut merged = Vec::new();
    for b in &old_findings {
        let ids = store::texts(b, "setl_id")?;
        let psn = store::texts(b, "psn_no")?;
        let rule = store::texts(b, "rule_id")?;
        let cat_ = store::texts(b, "category")?;
        let keep: Vec<bool> = (0..b.num_rows())
            .map(|i| {
                !is_whole_history(&rule[i], &cat_[i], wh)
                    && !setl_ids.contains(&ids[i])
                    && !person_set.contains(&psn[i])
            })
            .collect();
        merged.push(store::filter_rows(b, &keep)?);
    }
    if let Some(sub) = &sub {
        for b in &sub.findings {
            let rule = store::texts(b, "rule_id")?;
            let cat_ = store::texts(b, "category")?;
            let keep: Vec<bool> =
                (0..b.num_rows()).map(|i| !is_whole_history(&rule[i], &cat_[i], wh)).collect();
            merged.push(store::filter_rows(b, &keep)?);
        }
    }
    // The statistics that weigh rule findings (STA004) see those of the SQL rules over the
    // whole history, as in a full run.
    let sql_rules: HashSet<&str> = s.rules.rules.iter().map(|r| r.id.as_str()).collect();
    let mut rule_findings = Vec::new();
    for b in merged.iter().chain(global.findings.iter()) {
        let rule = store::texts(b, "rule_id")?;
        let keep: Vec<bool> = rule.iter().map(|r| sql_rules.contains(r.as_str())).collect();
        rule_findings.push(store::filter_rows(b, &keep)?);
    }
    let ts = Instant::now();
    let stats_cfg = crate::stats::StatsConfig::load_default()?;
    let stats = crate::stats::run_with(&ctx, &stats_cfg, &rule_findings, Some(&views_dir)).await?;
    timings.insert("statistics".into(), ts.elapsed().as_secs_f64());
    let examined_setl = crate::run::count_rows(&ctx, "setl").await?;
    let examined_fee = crate::run::count_rows(&ctx, "fee").await?;
    let setl_all: Vec<RecordBatch> = store::fetch_all(&cur, "setl")
        .await?
        .iter()
        .map(|b| store::contract_columns(&SETL, b))
        .collect::<Result<_>>()?;
    let pay_all: Vec<RecordBatch> = store::fetch_all(&cur, "pay")
        .await?
        .iter()
        .map(|b| store::contract_columns(&PAY, b))
        .collect::<Result<_>>()?;
    let mut rust_findings: Vec<Finding> = stats.findings.clone();
    let as_of = opts.as_of.or_else(|| benefit::default_as_of(&setl_all, &pay_all));
    let mut undecided = Vec::new();
    let deadline_json = if !registered("pay") {
        serde_json::json!({ "skipped": "table `pay` was not supplied" })
    } else if let Some(day) = as_of {
        let d = benefit::check_deadlines(&pay_all, &setl_all, &s.policies, &s.calendar, day)?;
        for u in &d.undecided {
            undecided.push(serde_json::json!({
                "check": "PAY001",
                "pay_id": u.pay_id,
                "setl_id": u.setl_id,
                "reason": u.reason,
                "missing_calendar_year": u.missing_year,
            }));
        }
        let j = serde_json::json!({
            "as_of": day.to_string(),
            "checked": d.checked,
            "late": d.findings.len(),
            "undecided": d.undecided.len(),
            "notes": d.notes,
        });
        rust_findings.extend(d.findings);
        j
    } else {
        serde_json::json!({ "skipped": "no date in the store to take as the as-of date" })
    };
    crate::run::fill_settlement_fields(&mut rust_findings, &setl_all);
    timings.insert("whole_history".into(), t.elapsed().as_secs_f64());
    fault("nightly_global")?;

    // 8. Merge into the current results; the sample over every settlement.
    let t = Instant::now();
    merged.extend(global.findings.iter().cloned());
    merged.push(findings::to_batch(&rust_findings, &run_id)?);
    let all_findings: Vec<RecordBatch> =
        output::sorted(&fschema, &merged, &["setl_id", "rule_id"])?.into_iter().collect();
    let bschema = schema::benefit_check_schema();
    let mut checks = Vec::new();
    if let Some(p) = &cat.state.benefit_check {
        let ids: HashSet<String> = setl_ids.iter().cloned().collect();
        checks.extend(store::filter_in(&store::read_file(&store_dir, p)?, "setl_id", &ids, true)?);
    }
    if let Some(sub) = &sub {
        checks.extend(sub.benefit_checks.iter().cloned());
    }
    let checks: Vec<RecordBatch> =
        output::sorted(&bschema, &checks, &["setl_id", "fund"])?.into_iter().collect();
    let oschema = benefit::outreach::outreach_schema();
    let mut outreach = Vec::new();
    if let Some(p) = &cat.state.outreach {
        outreach.extend(store::filter_in(&store::read_file(&store_dir, p)?, "psn_no", &person_set, true)?);
    }
    if let Some(sub) = &sub
        && !sub.outreach.is_empty()
    {
        outreach.push(benefit::outreach::to_batch(&sub.outreach)?);
    }
    let outreach: Vec<RecordBatch> =
        output::sorted(&oschema, &outreach, &["psn_no", "fund", "year"])?.into_iter().collect();
    let mut state = catalogue::StateFiles {
        pending_fee: pending_rel,
        pending_fee_rows: pending.after,
        ..Default::default()
    };
    for (name, sch, rows, slot) in [
        ("findings", fschema.clone(), &all_findings, &mut state.findings),
        ("benefit_check", bschema.clone(), &checks, &mut state.benefit_check),
        ("outreach", oschema.clone(), &outreach, &mut state.outreach),
    ] {
        let rel = format!("state/{name}-{night:06}.parquet");
        store::write_file(&store_dir.join(&rel), sch, rows)?;
        *slot = Some(rel);
    }
    let sample_cfg = crate::sample::SampleConfig::load_default()?;
    let ts = Instant::now();
    let sample = crate::sample::draw(&setl_all, &all_findings, &s.codes, &sample_cfg)?;
    timings.insert("sample".into(), ts.elapsed().as_secs_f64());
    timings.insert("merge".into(), t.elapsed().as_secs_f64());
    fault("nightly_merged")?;

    // 9. The output folder, manifest last; then the catalogue.
    let t = Instant::now();
    let staging = Staging::begin(&out_dir, &run_id)?;
    let dir = staging.dir.clone();
    output::write_parquet(&dir.join("findings.parquet"), fschema.clone(), &all_findings)?;
    output::write_csv(&dir.join("findings.csv"), &fschema, &all_findings)?;
    output::write_parquet(&dir.join("benefit_check.parquet"), bschema.clone(), &checks)?;
    output::write_csv(&dir.join("benefit_check.csv"), &bschema, &checks)?;
    crate::sample::write_csv(&dir.join("review_sample.csv"), &sample)?;
    let mut outputs: Vec<String> = [
        "findings.parquet",
        "findings.csv",
        "benefit_check.parquet",
        "benefit_check.csv",
        "review_sample.csv",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    if outreach.iter().any(|b| b.num_rows() > 0) {
        output::write_csv(&dir.join("outreach.csv"), &oschema, &outreach)?;
        outputs.push("outreach.csv".into());
    }
    if qdir.is_dir() {
        let qout = dir.join("quarantine");
        std::fs::create_dir_all(&qout).map_err(|e| Error::io("creating", &qout, e))?;
        for f in manifest::files_below(&qdir, &["csv"]) {
            if let Some(name) = f.file_name() {
                std::fs::copy(&f, qout.join(name)).map_err(|e| Error::io("copying", &f, e))?;
                outputs.push(format!("quarantine/{}", name.to_string_lossy()));
            }
        }
    }
    let mut entry = NightEntry {
        night,
        run_id: run_id.clone(),
        as_of: as_of.map(|d| d.to_string()),
        out: out_dir.display().to_string(),
        files: new_files.iter().map(|f| f.sha256.clone()).collect(),
        pending,
        touched_persons: persons.len() as u64,
        audited_settlements,
        ..Default::default()
    };
    for (t, r) in &rec {
        entry.new_rows.insert(t.to_string(), r.fresh_rows());
        entry.unchanged_rows.insert(t.to_string(), r.unchanged);
        entry.superseded_rows.insert(t.to_string(), r.superseded_rows());
    }
    let file_entries = file_entries(&new_files, &report, night)?;
    let nightly_json = NightlyJson {
        night,
        run_id: &run_id,
        store: store_dir.display().to_string(),
        inbox: opts.inbox.display().to_string(),
        files: &file_entries,
        skipped_files: skipped,
        entry: &entry,
        whole_history_rules: wh.iter().cloned().collect(),
    };
    let text =
        serde_json::to_string_pretty(&nightly_json).map_err(|e| crate::other_err!("nightly.json: {e}"))?;
    std::fs::write(dir.join("nightly.json"), text)
        .map_err(|e| Error::io("writing", dir.join("nightly.json"), e))?;
    outputs.push("nightly.json".into());
    timings.insert("write".into(), t.elapsed().as_secs_f64());
    timings.insert("total".into(), started.elapsed().as_secs_f64());
    let m = build_manifest(ManifestParts {
        run_id: &run_id,
        as_of,
        opts,
        s: &s,
        report: &report,
        registered: &registered,
        global: &global,
        sub: sub.as_ref(),
        all_findings: &all_findings,
        examined: (examined_setl, examined_fee),
        stats: &stats,
        deadline_json,
        sample: &sample,
        undecided,
        runtime: engine_opts.describe(),
        timings,
        outputs,
        checks: &checks,
    })?;
    m.write(&dir.join("manifest.json"))?;
    fault("nightly_output")?;
    let out = staging.publish()?;
    log(opts, &format!("published {}", out.display()));
    fault("nightly_published")?;

    // The night's findings into the case store, after the output is published and before the
    // catalogue commits: a night killed in between merges again on its re-run, which the case
    // store's merge (keyed by run id) makes a no-op.
    if let Some(cases_dir) = &opts.cases {
        let (cases_dir, out_dir, view) = (cases_dir.clone(), out.clone(), work.join("view"));
        let r = tokio::task::spawn_blocking(move || -> Result<crate::cases::MergeReport> {
            let mut store = crate::cases::Store::open(&cases_dir)?;
            let actor = crate::cases::Actor::system("nightly", &[crate::cases::Role::Admin]);
            Ok(store.merge_output(&actor, &out_dir, &view, true)?)
        })
        .await
        .map_err(|e| crate::other_err!("merging into the case store: {e}"))??;
        log(
            opts,
            &format!(
                "case store: {} new cases, {} new and {} updated findings, {} no longer flagged{}",
                r.new_cases,
                r.new_findings,
                r.updated_findings,
                r.no_longer_flagged,
                if r.already_merged { " (already merged)" } else { "" }
            ),
        );
    }
    fault("nightly_cases_merged")?;

    entry.committed_at = chrono::Utc::now().to_rfc3339();
    for f in file_entries {
        cat.files.insert(f.sha256.clone(), f.entry);
    }
    cat.nights.push(entry.clone());
    cat.parts = parts;
    cat.quarantined_settlements.extend(tonight_q);
    cat.state = state;
    cat.night = night;
    cat.commit(&store_dir)?;
    fault("nightly_committed")?;
    store::collect_garbage(&store_dir, &cat, &runs_dir, s.cfg.keep_runs)?;
    drop(lock);
    Ok(Outcome::Audited(Box::new(NightSummary {
        night,
        out,
        entry,
        manifest: m,
        stale_lock: stale,
        skipped_files: skipped,
    })))
}

/// Writes history rows as an input table of the contract, sorted by key.
fn write_contract(spec: &schema::TableSpec, rows: &[RecordBatch], path: &Path) -> Result<()> {
    let schema = spec.arrow_schema();
    let rows: Vec<RecordBatch> =
        rows.iter().map(|b| store::contract_columns(spec, b)).collect::<Result<_>>()?;
    let key = spec.key.unwrap_or("setl_id");
    let sorted: Vec<RecordBatch> = output::sorted(&schema, &rows, &[key])?.into_iter().collect();
    output::write_parquet(path, schema, &sorted)
}

/// The night's quarantine files: the ingest's, and fee lines that waited in vain or whose
/// settlement was quarantined (their contract columns, with the reason).
fn write_quarantine(
    ingested: &Path,
    rejected: &[(RecordBatch, String)],
    dir: &Path,
    night: u64,
) -> Result<()> {
    let files = manifest::files_below(ingested, &["csv"]);
    if files.is_empty() && rejected.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    for f in files {
        if let Some(name) = f.file_name() {
            std::fs::copy(&f, dir.join(name)).map_err(|e| Error::io("copying", &f, e))?;
        }
    }
    if rejected.is_empty() {
        return Ok(());
    }
    let mut w = ingest::quarantine::QuarantineWriter::new(dir.join("fee_pending.csv"));
    let header: Vec<String> = FEE.fields.iter().map(|f| f.name.to_string()).collect();
    w.set_header(&header);
    let fmt = arrow::util::display::FormatOptions::default().with_null("");
    let source = PathBuf::from(format!("pending (night {night})"));
    for (b, reason) in rejected {
        let b = store::contract_columns(&FEE, b)?;
        let cols: Vec<arrow::util::display::ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &fmt))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::arrow("formatting quarantined fee lines", e))?;
        for r in 0..b.num_rows() {
            let cells: Vec<String> = cols.iter().map(|c| c.value(r).to_string()).collect();
            w.write(&cells, reason, &source, r as u64 + 1)?;
        }
    }
    w.finish()?;
    Ok(())
}

/// One ingested file with its counts.
#[derive(Debug, Clone, Serialize)]
struct IngestedFile {
    sha256: String,
    #[serde(flatten)]
    entry: FileEntry,
}

fn file_entries(files: &[inbox::InboxFile], report: &IngestReport, night: u64) -> Result<Vec<IngestedFile>> {
    let mut out = Vec::new();
    for f in files {
        let path = f.path.display().to_string();
        let fr = report
            .table(f.table)
            .and_then(|t| t.files.iter().find(|x| x.path == path))
            .ok_or_else(|| crate::other_err!("no ingest report for {}", f.rel))?;
        if fr.accepted + fr.quarantined != fr.rows {
            return Err(crate::other_err!("{}: accepted + quarantined ≠ read; this is a bug", f.rel));
        }
        out.push(IngestedFile {
            sha256: f.sha256.clone(),
            entry: FileEntry {
                path: f.rel.clone(),
                table: f.table.to_string(),
                bytes: f.bytes,
                mtime: f.mtime,
                night,
                read: fr.rows,
                accepted: fr.accepted,
                quarantined: fr.quarantined,
            },
        });
    }
    Ok(out)
}

/// `nightly.json` of the output folder.
#[derive(Serialize)]
struct NightlyJson<'a> {
    night: u64,
    run_id: &'a str,
    store: String,
    inbox: String,
    files: &'a [IngestedFile],
    skipped_files: usize,
    entry: &'a NightEntry,
    whole_history_rules: Vec<String>,
}

struct ManifestParts<'a> {
    run_id: &'a str,
    as_of: Option<NaiveDate>,
    opts: &'a NightlyOptions,
    s: &'a Setup,
    report: &'a IngestReport,
    registered: &'a dyn Fn(&str) -> bool,
    global: &'a engine::RulesOutput,
    sub: Option<&'a crate::run::RunSummary>,
    all_findings: &'a [RecordBatch],
    examined: (u64, u64),
    stats: &'a crate::stats::StatsOutput,
    deadline_json: serde_json::Value,
    sample: &'a crate::sample::SampleOutput,
    undecided: Vec<serde_json::Value>,
    timings: BTreeMap<String, f64>,
    outputs: Vec<String>,
    checks: &'a [RecordBatch],
    runtime: serde_json::Value,
}

/// The night's `manifest.json`: the same sections as `medaudit run`'s, over the store's
/// current data (the input section lists the night's files).
fn build_manifest(p: ManifestParts) -> Result<Manifest> {
    let counts = crate::run::count_findings(p.all_findings);
    let mut rules: Vec<RuleEntry> = Vec::new();
    let sub_rules: BTreeMap<&str, &RuleEntry> =
        p.sub.map(|s| s.manifest.rules.iter().map(|r| (r.id.as_str(), r)).collect()).unwrap_or_default();
    for r in &p.global.runs {
        let entry = if p.s.whole_history_rules.contains(&r.id) {
            let (status, reason) = match &r.status {
                RuleStatus::Ran => ("ran", None),
                RuleStatus::Skipped(why) => ("skipped", Some(why.clone())),
                RuleStatus::Failed(why) => ("failed", Some(why.clone())),
            };
            RuleEntry {
                id: r.id.clone(),
                category: r.category.clone(),
                status: status.into(),
                reason,
                findings: 0,
                millis: r.millis,
            }
        } else if let Some(e) = sub_rules.get(r.id.as_str()) {
            (*e).clone()
        } else {
            RuleEntry {
                id: r.id.clone(),
                category: r.category.clone(),
                status: "kept".into(),
                reason: Some("本晚无人员需要复核，沿用此前结果".into()),
                findings: 0,
                millis: 0,
            }
        };
        rules.push(entry);
    }
    for c in crate::builtin::CHECKS {
        let skipped = c.category == "late_payment" && (!(p.registered)("pay") || p.as_of.is_none());
        rules.push(RuleEntry {
            id: c.id.to_string(),
            category: c.category.to_string(),
            status: if skipped { "skipped" } else { "ran" }.into(),
            reason: skipped.then(|| "table `pay` was not supplied or no as-of date".into()),
            findings: 0,
            millis: 0,
        });
    }
    for r in &mut rules {
        r.findings = counts.by_rule.get(&r.id).copied().unwrap_or(0);
    }
    let ran = |table: &str| -> Vec<String> {
        p.s.rules
            .rules
            .iter()
            .filter(|r| r.requires.iter().any(|t| t == table))
            .filter(|r| rules.iter().any(|e| e.id == r.id && (e.status == "ran" || e.status == "kept")))
            .map(|r| r.id.clone())
            .collect()
    };
    let missing_tables = schema::TABLES
        .iter()
        .filter(|t| !(p.registered)(t.name))
        .map(|t| manifest::MissingTable {
            table: t.name.to_string(),
            checks_needing_it: p
                .s
                .rules
                .rules
                .iter()
                .filter(|r| r.requires.iter().any(|x| x == t.name))
                .map(|r| r.id.clone())
                .collect(),
        })
        .collect();
    let balanced = p.report.tables.iter().all(|t| t.accepted + t.quarantined == t.read);
    if !balanced {
        return Err(crate::other_err!(
            "the row counts of the night's files do not add up; nothing was published"
        ));
    }
    let benefit_json = serde_json::json!({
        "rows": p.checks.iter().map(RecordBatch::num_rows).sum::<usize>(),
        "reaudited_tonight": p.sub.map(|s| s.manifest.benefit.clone()),
    });
    Ok(Manifest {
        runtime: p.runtime,
        run_id: p.run_id.to_string(),
        engine: manifest::EngineInfo {
            name: "medaudit".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            datafusion: datafusion::DATAFUSION_VERSION.into(),
        },
        started_at: chrono::Utc::now().to_rfc3339(),
        as_of: p.as_of.map(|d| d.to_string()),
        input: manifest::InputSection {
            folder: p.opts.inbox.display().to_string(),
            mapping: p.opts.mapping.as_ref().map(|m| m.display().to_string()),
            tables: p.report.tables.clone(),
            missing_tables,
            balanced,
        },
        unknown_codes: p.report.unknown_codes.clone(),
        coverage: Coverage {
            settlements: CoverageLine::new(p.examined.0, p.examined.0, ran("setl")),
            fee_lines: CoverageLine::new(p.examined.1, p.examined.1, ran("fee")),
        },
        rules,
        findings: counts,
        benefit: benefit_json,
        deadlines: p.deadline_json,
        statistics: serde_json::json!({ "checks": p.stats.checks, "notes": p.stats.notes }),
        review_sample: serde_json::json!({
            "seed": p.sample.seed,
            "drawn": p.sample.rows.len(),
            "strata": serde_json::to_value(&p.sample.strata).unwrap_or_default(),
        }),
        undecided: p.undecided,
        versions: crate::run::versions(
            &p.s.rules,
            &p.s.kb_dirs,
            &p.s.policies,
            &p.s.calendar,
            &p.s.codes_path,
        )?,
        timings_seconds: p.timings,
        outputs: p.outputs,
    })
}
