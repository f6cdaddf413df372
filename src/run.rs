//! `medaudit run`: the whole pipeline on one input folder, published atomically.
//!
//! ingest → rules over 100 % of records (DataFusion) → benefit recalculation and deadlines
//! (Rust, rayon) → findings → manifest, all written into a hidden staging folder that is
//! renamed into place at the end.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Decimal128Type;
use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::benefit::{self, Calendar, Incomplete, PolicySet};
use crate::codes::CodeTables;
use crate::engine::{self, RuleConfig, RuleSet, RuleStatus};
use crate::error::{Error, Result};
use crate::findings::{self, Finding};
use crate::ingest::{self, EncodingChoice, IngestOptions, Mapping};
use crate::manifest::{self, Coverage, CoverageLine, Manifest, MissingTable, RuleEntry};
use crate::output;
use crate::publish::Staging;
use crate::schema;

/// Receives one log line per stage.
pub type Logger = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// What to run on.
#[derive(Clone, Default)]
pub struct RunOptions {
    pub input: PathBuf,
    pub out: PathBuf,
    /// The as-of date for deadlines; default: the latest date in the input.
    pub as_of: Option<NaiveDate>,
    /// Knowledge-base folders that replace the shipped tables, table by table.
    pub kb: Vec<PathBuf>,
    pub policy: Option<PathBuf>,
    pub calendar: Option<PathBuf>,
    pub codes: Option<PathBuf>,
    pub mapping: Option<PathBuf>,
    pub encoding: EncodingChoice,
    /// Rule configuration (disable, parameters, extra rule folders).
    pub rules_config: Option<PathBuf>,
    /// Rule folders used instead of the shipped `queries/`.
    pub rules_dirs: Vec<PathBuf>,
    /// Run only these rules (all when empty).
    pub only_rules: Vec<String>,
    /// Skip the benefit recalculation and the deadline checks.
    pub skip_benefit: bool,
    /// Bytes the query operators may hold before spilling (default
    /// [`engine::DEFAULT_MEMORY_LIMIT`]); spill files go to a folder inside the staging folder.
    pub memory_limit: Option<u64>,
    pub progress: Option<ingest::Progress>,
    /// Log lines for the stages.
    pub log: Option<Logger>,
    /// The run id (default: a new one from the clock and a random suffix).
    pub run_id: Option<String>,
    /// Skip the statistical checks (the nightly audit runs them over the whole history).
    pub skip_stats: bool,
    /// Skip the payment-deadline checks (the nightly audit runs them over every payment).
    pub skip_deadlines: bool,
    /// Rules switched off in addition to the rule configuration.
    pub disable_rules: Vec<String>,
    /// A Ballista scheduler (`df://HOST:PORT`) to run the DataFusion part on (feature
    /// `distributed`): `out` must then be on a file system the executors see at the same path.
    pub cluster: Option<String>,
    /// Parallel partitions per query (default: this machine's cores); on a cluster, the number
    /// of tasks each stage is split into: at least the cluster's task slots.
    pub partitions: Option<usize>,
    /// Settlements quarantined outside this input (the nightly audit's earlier nights): their
    /// person-years are incomplete, as those of settlements quarantined here.
    pub quarantined: Vec<ingest::QuarantinedSettlement>,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunSummary {
    pub out: PathBuf,
    pub manifest: Manifest,
    /// The findings as written (`findings_schema`, sorted by `setl_id`, `rule_id`).
    pub findings: Vec<RecordBatch>,
    /// The benefit checks as written (`benefit_check_schema`, sorted by `setl_id`).
    pub benefit_checks: Vec<RecordBatch>,
    pub outreach: Vec<benefit::outreach::OutreachRow>,
}

/// Runs the whole audit. Fails before writing anything when a configuration is wrong.
pub fn run(opts: &RunOptions) -> Result<RunSummary> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::other_err!("starting the query runtime: {e}"))?;
    rt.block_on(run_async(opts))
}

fn log(opts: &RunOptions, msg: &str) {
    if let Some(l) = &opts.log {
        l(msg);
    }
}

/// A new run id: UTC time and a random suffix.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let salt = xxhash_rust::xxh3::xxh3_64(format!("{:?}{}", now, std::process::id()).as_bytes());
    format!("{}-{:06x}", now.format("%Y%m%dT%H%M%S"), salt & 0xff_ffff)
}

pub(crate) async fn run_async(opts: &RunOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let mut timings = BTreeMap::new();
    let run_id = opts.run_id.clone().unwrap_or_else(new_run_id);
    let datasets = crate::paths::datasets_dir();

    // Configuration first: a wrong file stops the run before any work.
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
    let mut rule_config = match &opts.rules_config {
        Some(p) => RuleConfig::load(p)?,
        None => RuleConfig::default(),
    };
    let rules = if opts.rules_dirs.is_empty() {
        rule_config.load_rules()?
    } else {
        let dirs: Vec<PathBuf> = opts.rules_dirs.iter().chain(&rule_config.rule_dirs).cloned().collect();
        let rules = RuleSet::load(&dirs)?;
        rule_config.validate(&rules)?;
        rules
    };
    let mut skip_benefit = opts.skip_benefit;
    if !opts.only_rules.is_empty() {
        for id in &opts.only_rules {
            if rules.get(id).is_none() && crate::builtin::check(id).is_none() {
                return Err(crate::input_err!("no rule with id `{id}` (see `medaudit rules list`)"));
            }
        }
        for r in &rules.rules {
            if !opts.only_rules.contains(&r.id) {
                rule_config.disable.insert(r.id.clone());
            }
        }
        let benefit_ids = ["BEN001", "BEN002", "PAY001"];
        skip_benefit |= !opts.only_rules.iter().any(|id| benefit_ids.contains(&id.as_str()));
    }
    for id in &opts.disable_rules {
        rule_config.disable.insert(id.clone());
    }
    let mapping = match &opts.mapping {
        Some(p) => Mapping::load(p)?,
        None => Mapping::default(),
    };

    let staging = Staging::begin(&opts.out, &run_id)?;
    let dir = staging.dir.clone();
    let data_dir = dir.join("data");

    // 1. Ingest.
    log(opts, &format!("ingest {}", opts.input.display()));
    let t = Instant::now();
    let mut iopts = IngestOptions::new(codes.clone());
    iopts.encoding = opts.encoding;
    iopts.mapping = mapping;
    iopts.progress = opts.progress.clone();
    let report = ingest::ingest(&opts.input, &data_dir, &dir.join("quarantine"), &iopts)?;
    timings.insert("ingest".to_string(), t.elapsed().as_secs_f64());
    if crate::fault::at("after_ingest") {
        return Err(crate::other_err!("fault injected after ingest (MEDAUDIT_FAIL_AT=after_ingest)"));
    }

    // 2. Rules over every accepted row, in DataFusion.
    log(opts, "rules");
    let t = Instant::now();
    let mut kb_dirs = vec![datasets.join("kb")];
    kb_dirs.extend(opts.kb.iter().cloned());
    let tables = engine::Tables { data_dir: data_dir.clone(), kb_dirs, codes: codes_path.clone() };
    let spill_dir = dir.join("spill");
    let mut engine_opts = engine::EngineOptions {
        spill_dir: Some(spill_dir.clone()),
        cluster: opts.cluster.clone(),
        ..Default::default()
    };
    if let Some(limit) = opts.memory_limit {
        engine_opts.memory_limit = limit;
    }
    if let Some(n) = opts.partitions {
        engine_opts.target_partitions = n.max(1);
    }
    let ctx = engine::session_with(&tables, &engine_opts).await?;
    let views_dir = dir.join("views");
    // Embedded, the views are computed once; on a cluster they stay views (each executor
    // plans them from the shared input files).
    if opts.cluster.is_none() {
        engine::materialize_views(&ctx, &views_dir).await?;
    }
    let rules_out = engine::run_rules(&ctx, &rules, &rule_config, &run_id).await?;
    timings.insert("rules".to_string(), t.elapsed().as_secs_f64());
    let t = Instant::now();
    log(opts, "statistical checks");
    let stats_cfg = crate::stats::StatsConfig::load_default()?;
    let stats = if opts.skip_stats {
        None
    } else if opts.only_rules.is_empty() || opts.only_rules.iter().any(|id| id.starts_with("STA")) {
        let scratch = opts.cluster.is_none().then_some(views_dir.as_path());
        Some(crate::stats::run_with(&ctx, &stats_cfg, &rules_out.findings, scratch).await?)
    } else {
        None
    };
    timings.insert("statistics".to_string(), t.elapsed().as_secs_f64());
    let examined_setl = count_rows(&ctx, "setl").await?;
    let examined_fee = count_rows(&ctx, "fee").await?;
    // The session owns the spill files: end it and remove their folder before publishing.
    drop(ctx);
    let _ = std::fs::remove_dir_all(&spill_dir);
    let _ = std::fs::remove_dir_all(&views_dir);

    // 3. Benefit recalculation and payment deadlines.
    let t = Instant::now();
    let setl = output::read_parquet(&ingest::table_path(&data_dir, "setl"))?;
    let pay = if report.present("pay") {
        output::read_parquet(&ingest::table_path(&data_dir, "pay"))?
    } else {
        vec![]
    };
    let mut rust_findings: Vec<Finding> = report.findings.clone();
    let stats_json = match &stats {
        Some(s) => serde_json::json!({ "checks": s.checks, "notes": s.notes }),
        None if opts.skip_stats => serde_json::json!({ "skipped": "switched off" }),
        None => serde_json::json!({ "skipped": "not selected" }),
    };
    if let Some(s) = stats {
        rust_findings.extend(s.findings);
    }
    let mut benefit_json = serde_json::json!({ "skipped": skip_benefit });
    let mut deadline_json = serde_json::json!({});
    let mut undecided = Vec::new();
    let as_of = opts.as_of.or_else(|| benefit::default_as_of(&setl, &pay));
    let mut checks: Vec<RecordBatch> = Vec::new();
    let mut outreach = Vec::new();
    if !skip_benefit {
        log(opts, "benefit recalculation");
        let mut incomplete = Incomplete::default();
        for q in report.quarantined_settlements.iter().chain(&opts.quarantined) {
            match (&q.psn_no, q.year) {
                (Some(p), Some(y)) => {
                    incomplete.by_year.insert((p.clone(), y));
                }
                (Some(p), None) => {
                    incomplete.all_years.insert(p.clone());
                }
                (None, _) => {}
            }
        }
        let b = benefit::recalculate(&setl, &policies, &codes, &incomplete, None)?;
        benefit_json = serde_json::json!({
            "rows": b.checks.iter().map(RecordBatch::num_rows).sum::<usize>(),
            "mismatches": b.findings.len(),
            "underpaid_persons": b.outreach.len(),
            "incomplete_person_years_from_quarantine": incomplete.by_year.len() + incomplete.all_years.len(),
            "checked_rows": b.stats.checked_rows,
            "incomplete_rows": b.stats.incomplete_rows,
            "person_years": b.stats.person_years,
            "incomplete_person_years": b.stats.incomplete_person_years,
            "orphan_reversals": b.stats.orphan_reversals,
            "not_checked": b.stats.not_checked,
            "notes": b.notes,
        });
        rust_findings.extend(b.findings);
        checks = b.checks;
        outreach = b.outreach;
        if opts.skip_deadlines {
            deadline_json = serde_json::json!({ "skipped": "switched off" });
        } else if report.present("pay") {
            match as_of {
                Some(day) => {
                    let d = benefit::check_deadlines(&pay, &setl, &policies, &calendar, day)?;
                    deadline_json = serde_json::json!({
                        "as_of": day.to_string(),
                        "checked": d.checked,
                        "late": d.findings.len(),
                        "undecided": d.undecided.len(),
                        "notes": d.notes,
                    });
                    for u in &d.undecided {
                        undecided.push(serde_json::json!({
                            "check": "PAY001",
                            "pay_id": u.pay_id,
                            "setl_id": u.setl_id,
                            "reason": u.reason,
                            "missing_calendar_year": u.missing_year,
                        }));
                    }
                    rust_findings.extend(d.findings);
                }
                None => {
                    deadline_json =
                        serde_json::json!({ "skipped": "no date in the input to take as the as-of date" })
                }
            }
        } else {
            deadline_json = serde_json::json!({ "skipped": "table `pay` was not supplied" });
        }
    }
    timings.insert("benefit".to_string(), t.elapsed().as_secs_f64());

    // 4. Findings: SQL rules and Rust checks in one table, sorted.
    let t = Instant::now();
    fill_settlement_fields(&mut rust_findings, &setl);
    let mut batches = rules_out.findings.clone();
    batches.push(findings::to_batch(&rust_findings, &run_id)?);
    let fschema = schema::findings_schema();
    let all = output::sorted(&fschema, &batches, &["setl_id", "rule_id"])?;
    let all: Vec<RecordBatch> = all.into_iter().collect();
    output::write_parquet(&dir.join("findings.parquet"), fschema.clone(), &all)?;
    output::write_csv(&dir.join("findings.csv"), &fschema, &all)?;
    let bschema = schema::benefit_check_schema();
    let checks: Vec<RecordBatch> = output::sorted(&bschema, &checks, &["setl_id"])?.into_iter().collect();
    output::write_parquet(&dir.join("benefit_check.parquet"), bschema.clone(), &checks)?;
    output::write_csv(&dir.join("benefit_check.csv"), &bschema, &checks)?;
    // The second-review (复审) sample, from the findings of every check.
    let sample_cfg = crate::sample::SampleConfig::load_default()?;
    let sample = crate::sample::draw(&setl, &all, &codes, &sample_cfg)?;
    crate::sample::write_csv(&dir.join("review_sample.csv"), &sample)?;
    let sample_json = serde_json::json!({
        "seed": sample.seed,
        "drawn": sample.rows.len(),
        "strata": serde_json::to_value(&sample.strata).unwrap_or_default(),
    });
    if !outreach.is_empty() {
        let ob = benefit::outreach::to_batch(&outreach)?;
        output::write_csv(&dir.join("outreach.csv"), &benefit::outreach::outreach_schema(), &[ob])?;
    }
    timings.insert("write".to_string(), t.elapsed().as_secs_f64());

    // 5. The manifest, written last.
    let counts = count_findings(&all);
    let mut rule_entries: Vec<RuleEntry> = rules_out
        .runs
        .iter()
        .map(|r| {
            let (status, reason) = match &r.status {
                RuleStatus::Ran => ("ran", None),
                RuleStatus::Skipped(why) => ("skipped", Some(why.clone())),
                RuleStatus::Failed(why) => ("failed", Some(why.clone())),
            };
            RuleEntry {
                id: r.id.clone(),
                category: r.category.clone(),
                status: status.to_string(),
                reason,
                findings: r.findings,
                millis: r.millis,
            }
        })
        .collect();
    for (id, category) in crate::builtin::CHECKS.iter().map(|c| (c.id, c.category)) {
        let skipped = skip_benefit && matches!(category, "benefit_mismatch" | "late_payment")
            || (category == "late_payment" && (!report.present("pay") || opts.skip_deadlines))
            || (category == "statistical_outlier" && stats_json.get("skipped").is_some());
        rule_entries.push(RuleEntry {
            id: id.to_string(),
            category: category.to_string(),
            status: if skipped { "skipped" } else { "ran" }.to_string(),
            reason: skipped.then(|| {
                if skip_benefit {
                    "benefit checks switched off".into()
                } else if category == "statistical_outlier" {
                    if opts.skip_stats { "switched off" } else { "not selected" }.into()
                } else if opts.skip_deadlines {
                    "switched off".into()
                } else {
                    "table `pay` was not supplied".into()
                }
            }),
            findings: counts.by_rule.get(id).copied().unwrap_or(0),
            millis: 0,
        });
    }
    let ran = |table: &str| -> Vec<String> {
        rules_out
            .runs
            .iter()
            .filter(|r| matches!(r.status, RuleStatus::Ran))
            .filter(|r| rules.rules.iter().any(|x| x.id == r.id && x.requires.iter().any(|t| t == table)))
            .map(|r| r.id.clone())
            .collect()
    };
    let accepted = |t: &str| report.table(t).map_or(0, |x| x.accepted);
    let missing_tables: Vec<MissingTable> = schema::TABLES
        .iter()
        .filter(|t| !report.present(t.name))
        .map(|t| MissingTable {
            table: t.name.to_string(),
            checks_needing_it: rules
                .rules
                .iter()
                .filter(|r| r.requires.iter().any(|x| x == t.name))
                .map(|r| r.id.clone())
                .chain(
                    crate::builtin::CHECKS
                        .iter()
                        .filter(|c| c.requires.contains(&t.name))
                        .map(|c| c.id.to_string()),
                )
                .collect(),
        })
        .collect();
    let versions = versions(&rules, &tables.kb_dirs, &policies, &calendar, &codes_path)?;
    timings.insert("total".to_string(), started.elapsed().as_secs_f64());
    let balanced = report.tables.iter().all(|t| t.accepted + t.quarantined == t.read);
    let mut outputs: Vec<String> =
        ["findings.parquet", "findings.csv", "benefit_check.parquet", "benefit_check.csv"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    if !outreach.is_empty() {
        outputs.push("outreach.csv".into());
    }
    for t in report.tables.iter().filter(|t| t.quarantined > 0) {
        outputs.push(format!("quarantine/{}.csv", t.table));
    }
    let m = Manifest {
        run_id: run_id.clone(),
        engine: manifest::EngineInfo {
            name: "medaudit".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            datafusion: datafusion::DATAFUSION_VERSION.into(),
        },
        started_at: chrono::Utc::now().to_rfc3339(),
        as_of: as_of.map(|d| d.to_string()),
        input: manifest::InputSection {
            folder: opts.input.display().to_string(),
            mapping: opts.mapping.as_ref().map(|p| p.display().to_string()),
            tables: report.tables.clone(),
            missing_tables,
            balanced,
        },
        unknown_codes: report.unknown_codes.clone(),
        coverage: Coverage {
            settlements: CoverageLine::new(accepted("setl"), examined_setl, ran("setl")),
            fee_lines: CoverageLine::new(accepted("fee"), examined_fee, ran("fee")),
        },
        rules: rule_entries,
        findings: counts,
        benefit: benefit_json,
        deadlines: deadline_json,
        statistics: stats_json,
        review_sample: sample_json,
        undecided,
        versions,
        timings_seconds: timings,
        runtime: engine_opts.describe(),
        outputs,
    };
    if !balanced {
        return Err(crate::other_err!("the row counts of the manifest do not add up; nothing was published"));
    }
    m.write(&dir.join("manifest.json"))?;
    let out = staging.publish()?;
    Ok(RunSummary { out, manifest: m, findings: all, benefit_checks: checks, outreach })
}

/// The versions of everything a run's results depend on besides its input, for the manifest.
pub(crate) fn versions(
    rules: &RuleSet,
    kb_dirs: &[PathBuf],
    policies: &PolicySet,
    calendar: &Calendar,
    codes_path: &Path,
) -> Result<BTreeMap<String, manifest::Version>> {
    let mut versions = BTreeMap::new();
    let rule_files: Vec<PathBuf> = rules.rules.iter().map(|r| r.path.clone()).collect();
    versions.insert("rules".to_string(), manifest::fingerprint(&rule_files)?);
    let mut kb_files = Vec::new();
    for d in kb_dirs {
        kb_files.extend(manifest::files_below(d, &["csv"]));
    }
    versions.insert("knowledge_base".to_string(), manifest::fingerprint(&kb_files)?);
    versions.insert(
        "policy".to_string(),
        manifest::fingerprint(&policies.versions().into_values().collect::<Vec<_>>())?,
    );
    versions.insert("calendar".to_string(), manifest::fingerprint(calendar.files())?);
    versions.insert("codes".to_string(), manifest::fingerprint(&[codes_path.to_path_buf()])?);
    Ok(versions)
}

pub(crate) async fn count_rows(ctx: &datafusion::prelude::SessionContext, table: &str) -> Result<u64> {
    if !ctx.table_exist(table).map_err(|e| Error::df(format!("looking up table {table}"), e))? {
        return Ok(0);
    }
    let df = ctx.table(table).await.map_err(|e| Error::df(format!("reading table {table}"), e))?;
    Ok(df.count().await.map_err(|e| Error::df(format!("counting table {table}"), e))? as u64)
}

/// Fills `psn_no` and `fixmedins_code` of Rust-side findings from their settlements.
pub(crate) fn fill_settlement_fields(findings: &mut [Finding], setl: &[RecordBatch]) {
    let wanted: std::collections::HashSet<&str> = findings
        .iter()
        .filter(|f| f.psn_no.is_none() || f.fixmedins_code.is_none())
        .map(|f| f.setl_id.as_str())
        .collect();
    if wanted.is_empty() {
        return;
    }
    let mut found: HashMap<String, (String, String)> = HashMap::new();
    for b in setl {
        let id = b.column_by_name("setl_id").map(|c| c.as_string::<i32>());
        let psn = b.column_by_name("psn_no").map(|c| c.as_string::<i32>());
        let fix = b.column_by_name("fixmedins_code").map(|c| c.as_string::<i32>());
        if let (Some(id), Some(psn), Some(fix)) = (id, psn, fix) {
            for r in 0..b.num_rows() {
                if wanted.contains(id.value(r)) {
                    found.insert(
                        id.value(r).to_string(),
                        (psn.value(r).to_string(), fix.value(r).to_string()),
                    );
                }
            }
        }
    }
    for f in findings.iter_mut() {
        if let Some((p, x)) = found.get(&f.setl_id) {
            f.psn_no.get_or_insert_with(|| p.clone());
            f.fixmedins_code.get_or_insert_with(|| x.clone());
        }
    }
}

pub(crate) fn count_findings(batches: &[RecordBatch]) -> manifest::FindingCounts {
    let mut c = manifest::FindingCounts::default();
    let mut amounts: BTreeMap<String, Decimal> = BTreeMap::new();
    for b in batches {
        let rule = b.column_by_name("rule_id").map(|x| x.as_string::<i32>().clone());
        let cat = b.column_by_name("category").map(|x| x.as_string::<i32>().clone());
        let amt = b.column_by_name("amount_at_risk").map(|x| x.as_primitive::<Decimal128Type>().clone());
        if let (Some(rule), Some(cat), Some(amt)) = (rule, cat, amt) {
            for r in 0..b.num_rows() {
                c.total += 1;
                *c.by_rule.entry(rule.value(r).to_string()).or_default() += 1;
                *c.by_category.entry(cat.value(r).to_string()).or_default() += 1;
                if !amt.is_null(r) {
                    *amounts.entry(cat.value(r).to_string()).or_default() +=
                        Decimal::from_i128_with_scale(amt.value(r), 2);
                }
            }
        }
    }
    c.amount_at_risk_by_category = amounts.into_iter().map(|(k, v)| (k, v.to_string())).collect();
    c
}

/// `medaudit validate`: ingest only, into a temporary folder, and report.
pub fn validate(input: &Path, opts: &IngestOptions) -> Result<ingest::IngestReport> {
    let tmp = std::env::temp_dir().join(format!("medaudit-validate-{}", new_run_id()));
    let r = ingest::ingest(input, &tmp.join("data"), &tmp.join("quarantine"), opts);
    let _ = std::fs::remove_dir_all(&tmp);
    r
}
