//! Embedded versus Ballista (feature `distributed`): the rule fixtures and a generated audit run
//! both in this process and on a Ballista cluster started in-process on localhost ports (the
//! project's own scheduler and executor, `medaudit::distributed`), and the findings must be
//! the same, row for row.
#![cfg(feature = "distributed")]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use medaudit::distributed::{LocalCluster, parse_address};
use medaudit::engine::{
    Defaults, EngineOptions, RuleSet, RuleStatus, RulesOutput, Tables, fixture_rules, run_rules,
    session_with, write_dataset,
};
use medaudit::run::{RunOptions, run};
use medaudit::synth::{self, GenConfig};

use crate::common::{repo, tempdir};

/// One cluster for the whole test binary: a scheduler and two executors of two task slots.
fn cluster() -> &'static str {
    static CLUSTER: OnceLock<Result<LocalCluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(|| LocalCluster::start(2, 2).map_err(|e| e.to_string())) {
        Ok(c) => &c.url,
        Err(e) => panic!("the in-process Ballista cluster did not start: {e}"),
    }
}

/// Every row of the batches as text, column by column (`NULL` for nulls).
fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let fmts: Vec<ArrayFormatter> =
            b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap()).collect();
        let names: Vec<&String> = b.schema_ref().fields().iter().map(|f| f.name()).collect();
        for r in 0..b.num_rows() {
            let cells: Vec<String> =
                fmts.iter().zip(&names).map(|(f, n)| format!("{n}={}", f.value(r))).collect();
            out.push(cells.join(" | "));
        }
    }
    out
}

/// The first difference between two row lists, for the failure message.
fn first_difference(a: &[String], b: &[String]) -> String {
    if a.len() != b.len() {
        let only = |x: &[String], y: &[String]| -> Vec<String> {
            x.iter().filter(|r| !y.contains(r)).take(3).cloned().collect()
        };
        return format!(
            "{} rows embedded, {} rows on Ballista; only embedded: {:?}; only on Ballista: {:?}",
            a.len(),
            b.len(),
            only(a, b),
            only(b, a)
        );
    }
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!("row {i}:\n  embedded: {}\n  ballista: {}", a[i], b[i]),
        None => "none".into(),
    }
}

#[test]
fn scheduler_addresses_are_parsed_or_refused() {
    assert_eq!(parse_address("df://10.0.0.5:50050").unwrap(), ("10.0.0.5".to_string(), 50050));
    assert_eq!(parse_address("df://sched.example").unwrap(), ("sched.example".to_string(), 50050));
    assert_eq!(parse_address("localhost:6000").unwrap(), ("localhost".to_string(), 6000));
    for bad in ["http://h:1", "df://", "df://h:x", "df://h:0", "df://h:1/path", ""] {
        let e = parse_address(bad).expect_err(bad).to_string();
        assert!(e.contains("df://HOST:PORT"), "{bad}: {e}");
    }
}

/// A cluster that is not there is a clear error, not a hang or a panic.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_scheduler_is_a_clear_error() {
    let tmp = tempdir();
    let f = repo().join("tests/rules/DUP001.toml");
    let defaults = Defaults::load(&repo().join("tests/rules/defaults.toml")).unwrap();
    let (data, kb_over) = write_dataset(&f, &defaults, tmp.path()).unwrap();
    let tables =
        Tables { data_dir: data, kb_dirs: vec![repo().join("datasets/kb"), kb_over], codes: codes() };
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let opts = EngineOptions { cluster: Some(format!("df://127.0.0.1:{port}")), ..Default::default() };
    let rules = RuleSet::load_default().unwrap();
    let (one, config) = fixture_rules(&f, &rules).unwrap();
    let out = match session_with(&tables, &opts).await {
        Err(e) => {
            assert!(e.to_string().contains("127.0.0.1"), "{e}");
            return;
        }
        Ok(ctx) => run_rules(&ctx, &one, &config, "x").await.unwrap(),
    };
    // The session is created lazily; the query fails and the rule is recorded as failed.
    match &out.runs[0].status {
        RuleStatus::Failed(why) => assert!(!why.is_empty()),
        s => panic!("expected a failed rule, got {s:?}"),
    }
}

fn codes() -> PathBuf {
    repo().join("datasets/codes/codes.csv")
}

async fn rules_on(tables: &Tables, opts: &EngineOptions, rules: &RuleSet, f: &Path) -> RulesOutput {
    let (_, config) = fixture_rules(f, rules).unwrap();
    let ctx = session_with(tables, opts).await.unwrap();
    run_rules(&ctx, rules, &config, "cmp").await.unwrap()
}

/// Every rule fixture of `tests/rules/`: its rule, with the fixture's parameters, gives the same
/// findings embedded and on Ballista.
#[tokio::test(flavor = "multi_thread")]
async fn rule_fixtures_give_the_same_findings_on_ballista() {
    let url = cluster().to_string();
    let all = RuleSet::load_default().unwrap();
    let defaults = Defaults::load(&repo().join("tests/rules/defaults.toml")).unwrap();
    // MEDAUDIT_FIXTURES=OVC004 runs only the fixtures whose path contains it (for debugging).
    let only = std::env::var("MEDAUDIT_FIXTURES").ok();
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.ends_with("defaults.toml"))
        .filter(|p| only.as_ref().is_none_or(|o| p.to_string_lossy().contains(o.as_str())))
        .collect();
    files.sort();
    let tmp = tempdir();
    let (mut failures, mut compared_rows, mut rules_run) = (Vec::new(), 0usize, 0usize);
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let dir = tmp.path().join(&name);
        let (data, kb_over) = write_dataset(f, &defaults, &dir).unwrap();
        let tables =
            Tables { data_dir: data, kb_dirs: vec![repo().join("datasets/kb"), kb_over], codes: codes() };
        let (one, _) = fixture_rules(f, &all).unwrap();
        let embedded = rules_on(&tables, &EngineOptions::default(), &one, f).await;
        let remote = EngineOptions { cluster: Some(url.clone()), ..Default::default() };
        let limit = std::time::Duration::from_secs(60);
        let Ok(ballista) = tokio::time::timeout(limit, rules_on(&tables, &remote, &one, f)).await else {
            failures.push(format!("{name} ({}): no answer from the cluster within 60 s", one.rules[0].id));
            continue;
        };
        let (e, b) = (&embedded.runs[0], &ballista.runs[0]);
        if e.status != RuleStatus::Ran || b.status != RuleStatus::Ran {
            failures.push(format!("{name} ({}): embedded {:?}, ballista {:?}", e.id, e.status, b.status));
            continue;
        }
        rules_run += 1;
        let (re, rb) = (rows(&embedded.findings), rows(&ballista.findings));
        if re != rb {
            failures.push(format!("{name} ({}): {}", e.id, first_difference(&re, &rb)));
        }
        compared_rows += re.len();
    }
    assert!(failures.is_empty(), "{} fixtures differ:\n  {}", failures.len(), failures.join("\n  "));
    assert_eq!(rules_run, files.len());
    // Each fixture flags at least one settlement: the comparison is over real findings.
    assert!(compared_rows >= files.len(), "{compared_rows} rows over {} fixtures", files.len());
}

/// A generated data set (2,000 settlements with every kind of injected anomaly): the whole
/// audit run embedded and with `cluster` publishes the same findings, benefit checks and
/// manifest counts.
#[test]
fn generated_audit_is_the_same_on_ballista() {
    let url = cluster().to_string();
    let tmp = tempdir();
    let gen_dir = tmp.path().join("gen");
    synth::generate(&GenConfig::new(gen_dir.clone(), 2_000, 20_261_122)).unwrap();
    let audit = |out: &'static str, cluster: Option<String>| {
        let opts = RunOptions {
            input: gen_dir.join("input"),
            out: tmp.path().join(out),
            run_id: Some("cmp".into()),
            log: Some(std::sync::Arc::new(move |m: &str| eprintln!("[{out}] {m}"))),
            cluster,
            ..Default::default()
        };
        run(&opts).unwrap()
    };
    let e = audit("embedded", None);
    let b = audit("ballista", Some(url));
    for s in [&e, &b] {
        let failed: Vec<_> = s.manifest.rules.iter().filter(|r| r.status == "failed").collect();
        assert!(failed.is_empty(), "{failed:?}");
        assert!(s.manifest.statistics.get("skipped").is_none(), "{}", s.manifest.statistics);
    }
    assert!(b.manifest.runtime["cluster"].is_string());
    let (re, rb) = (rows(&e.findings), rows(&b.findings));
    assert!(re.len() > 50, "only {} findings", re.len());
    assert!(re == rb, "findings differ: {}", first_difference(&re, &rb));
    // The statistical checks (STA…) are among them.
    assert!(re.iter().any(|r| r.contains("rule_id=STA")), "no statistical finding");
    let (ce, cb) = (rows(&e.benefit_checks), rows(&b.benefit_checks));
    assert!(ce == cb, "benefit checks differ: {}", first_difference(&ce, &cb));
    let counts = |s: &medaudit::run::RunSummary| serde_json::to_value(&s.manifest.findings).unwrap();
    assert_eq!(counts(&e), counts(&b));
    let statuses = |s: &medaudit::run::RunSummary| {
        s.manifest.rules.iter().map(|r| (r.id.clone(), r.status.clone(), r.findings)).collect::<Vec<_>>()
    };
    assert_eq!(statuses(&e), statuses(&b));
    let cov = |s: &medaudit::run::RunSummary| serde_json::to_value(&s.manifest.coverage).unwrap();
    assert_eq!(cov(&e), cov(&b));
    // The published files are the same too.
    let read =
        |d: &str| medaudit::output::read_parquet(&tmp.path().join(d).join("findings.parquet")).unwrap();
    assert!(rows(&read("embedded")) == rows(&read("ballista")));
}
