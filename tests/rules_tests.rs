//! Integration tests of the rule engine: every rule fixture of `tests/rules/`, rule-file
//! errors, safe parameter substitution, the rules configuration, skipped and failing rules.

use std::path::{Path, PathBuf};

use medaudit::engine::{
    Defaults, RuleConfig, RuleSet, RuleStatus, Tables, render_list, render_show, run_fixture, run_rules,
    session, write_dataset,
};

use crate::common::{repo, tempdir};

fn fixtures_dir() -> PathBuf {
    repo().join("tests/rules")
}

fn defaults() -> Defaults {
    Defaults::load(&fixtures_dir().join("defaults.toml")).expect("tests/rules/defaults.toml")
}

fn codes() -> PathBuf {
    repo().join("datasets/codes/codes.csv")
}

fn kb() -> PathBuf {
    repo().join("datasets/kb")
}

/// Writes a fixture text to `dir/name.toml` and its tables under `dir/name/`; returns the session
/// tables.
fn dataset(dir: &Path, name: &str, fixture: &str) -> Tables {
    let f = dir.join(format!("{name}.toml"));
    std::fs::write(&f, fixture).unwrap();
    let (data, kb_over) = write_dataset(&f, &defaults(), &dir.join(name)).unwrap();
    Tables { data_dir: data, kb_dirs: vec![kb(), kb_over], codes: codes() }
}

fn write_rule(dir: &Path, file: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(file);
    std::fs::write(&p, text).unwrap();
    p
}

const HEADER: &str = r#"/*
id = "{ID}"
name = "test"
title_zh = "测试规则"
title_en = "Test rule"
category = "duplicate_billing"
severity = "medium"
requires = ["setl"]
basis = ["测试"]
what = "What."
why = "Why."
example = "Example."
{PARAMS}
*/
"#;

fn rule_text(id: &str, params: &str, sql: &str) -> String {
    format!("{}{sql}", HEADER.replace("{ID}", id).replace("{PARAMS}", params))
}

/// Every fixture of `tests/rules/` (the shipped rules and the knowledge-base rules alike): each
/// flags exactly its expected settlements. All failures are reported together, by file.
#[tokio::test(flavor = "multi_thread")]
async fn every_rule_fixture_passes() {
    let rules = RuleSet::load_default().expect("queries/ loads");
    let defaults = defaults();
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.ends_with("defaults.toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in tests/rules");
    let mut failures = Vec::new();
    let mut covered = std::collections::BTreeSet::new();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        match run_fixture(f, &rules, &defaults, &kb(), &codes()).await {
            Ok(r) => {
                covered.insert(r.rule_id.clone());
                if !r.passed() {
                    failures.push(format!("{name} ({}): {}", r.rule_id, r.problems.join("; ")));
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    for r in &rules.rules {
        if !covered.contains(&r.id) {
            failures.push(format!(
                "rule {} ({}) has no fixture tests/rules/{}.toml",
                r.id,
                r.path.display(),
                r.id
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures fail:\n  {}",
        failures.len(),
        files.len(),
        failures.join("\n  ")
    );
}

#[test]
fn shipped_rules_load_with_complete_documentation() {
    let rules = RuleSet::load_default().unwrap();
    let ids: Vec<&str> = rules.rules.iter().map(|r| r.id.as_str()).collect();
    for id in
        ["IMP001", "IMP002", "IMP003", "IMP004", "IMP005", "DUP001", "DUP002", "DUP003", "DUP004", "DUP005"]
    {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    for id in ["OOA001", "OOA002", "SPL001", "PHS001", "INJ001"] {
        assert!(ids.contains(&id), "{id} missing");
    }
    for r in &rules.rules {
        let family = r.path.parent().and_then(|p| p.file_name()).unwrap().to_string_lossy().to_string();
        assert_eq!(
            family, r.category,
            "{} lives in queries/{family}/ but its category is {}",
            r.id, r.category
        );
    }
    let list = render_list(&rules, &RuleConfig::default());
    assert!(list.contains("IMP001") && list.contains("同一人同期在两家机构住院") && list.contains("enabled"));
    let show = render_show(rules.get("SPL001").unwrap());
    for part in
        ["What it checks", "Why it matters", "Example", "Basis", "scheduled_prefixes", "Z51.1", "SELECT"]
    {
        assert!(show.contains(part), "rules show lacks {part}:\n{show}");
    }
}

#[test]
fn rule_file_errors_name_the_file_and_the_reason() {
    let t = tempdir();
    let cases: &[(&str, String, &str)] = &[
        ("NOH001_x.sql", "SELECT 1".to_string(), "must start with"),
        ("BAD001_x.sql", "/*\nid = \"BAD001\"\nname = \n*/\nSELECT 1".to_string(), "bad TOML header"),
        (
            "CAT001_x.sql",
            rule_text("CAT001", "", "SELECT 1").replace("duplicate_billing", "fraud"),
            "category `fraud`",
        ),
        ("SEV001_x.sql", rule_text("SEV001", "", "SELECT 1").replace("\"medium\"", "\"urgent\""), "severity"),
        ("PAR001_x.sql", rule_text("PAR001", "", "SELECT ${nope}"), "${nope}"),
        (
            "TYP001_x.sql",
            rule_text("TYP001", "[params.d]\ntype = \"int\"\ndefault = \"ten\"\ndoc = \"d\"", "SELECT ${d}"),
            "expected int",
        ),
        ("SQL001_x.sql", rule_text("SQL001", "", "SELEKT setl_id FROM setl"), "does not parse"),
        ("DDL001_x.sql", rule_text("DDL001", "", "CREATE TABLE x (a INT)"), "must be a query"),
        ("OTHER_x.sql", rule_text("NAME001", "", "SELECT 1"), "file name must start with the rule id"),
        ("UNK001_x.sql", rule_text("UNK001", "colour = \"red\"", "SELECT 1"), "colour"),
    ];
    for (file, text, want) in cases {
        let d = t.path().join(file.replace(".sql", ""));
        write_rule(&d, file, text);
        let e = RuleSet::load(&[d]).expect_err(file).to_string();
        assert!(e.contains(file), "error for {file} does not name it: {e}");
        assert!(e.contains(want), "error for {file} lacks {want:?}: {e}");
    }
    // The same id in two folders.
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    write_rule(&a, "DUPX01_one.sql", &rule_text("DUPX01", "", "SELECT 1"));
    write_rule(&b, "DUPX01_two.sql", &rule_text("DUPX01", "", "SELECT 1"));
    let e = RuleSet::load(&[a, b]).unwrap_err().to_string();
    assert!(
        e.contains("DUPX01_two.sql") && e.contains("DUPX01_one.sql") && e.contains("already defined"),
        "{e}"
    );
}

const TWO_SETTLEMENTS: &str = r#"
[[setl]]
setl_id = "S1"
psn_no = "P1"
dise_codg = "I63.900"
[[setl]]
setl_id = "S2"
psn_no = "P2"
dise_codg = "x' OR '1'='1"
[expect]
flagged = []
"#;

/// A text parameter is a quoted literal: a value with quotes cannot change the query.
#[tokio::test(flavor = "multi_thread")]
async fn parameters_are_substituted_as_typed_literals() {
    let t = tempdir();
    let rules_dir = t.path().join("rules");
    write_rule(
        &rules_dir,
        "PRM001_text.sql",
        &rule_text(
            "PRM001",
            "[params.dx]\ntype = \"text\"\ndefault = \"I63.900\"\ndoc = \"d\"\n\n[params.limit]\ntype = \"decimal\"\ndefault = \"0.5\"\ndoc = \"d\"",
            "SELECT setl_id, CAST(hifp_pay * ${limit} AS DECIMAL(18,2)) AS amount_at_risk, dise_codg AS detail FROM setl WHERE dise_codg = ${dx}",
        ),
    );
    let rules = RuleSet::load(std::slice::from_ref(&rules_dir)).unwrap();
    let tables = dataset(t.path(), "two", TWO_SETTLEMENTS);
    let ctx = session(&tables).await.unwrap();
    let flagged = |out: &medaudit::engine::RulesOutput| -> Vec<String> {
        let mut v = Vec::new();
        for b in &out.findings {
            let c = b.column_by_name("setl_id").unwrap();
            let c = c.as_any().downcast_ref::<arrow::array::StringArray>().unwrap();
            v.extend(c.iter().flatten().map(String::from));
        }
        v
    };
    let out = run_rules(&ctx, &rules, &RuleConfig::default(), "r").await.unwrap();
    assert_eq!(flagged(&out), vec!["S1".to_string()]);
    let amt = out.findings[0].column_by_name("amount_at_risk").unwrap();
    let amt = amt.as_any().downcast_ref::<arrow::array::Decimal128Array>().unwrap();
    assert_eq!(amt.value_as_string(0), "300.00");

    // An injection attempt matches only the row whose text is exactly that value.
    let mut config = RuleConfig::default();
    config.set_param("PRM001", "dx", toml::Value::String("x' OR '1'='1".into()));
    let out = run_rules(&ctx, &rules, &config, "r").await.unwrap();
    assert_eq!(flagged(&out), vec!["S2".to_string()]);

    // A value of the wrong type is refused before anything runs, naming the config.
    let cfg = write_rule(t.path(), "rules.toml", "[params.PRM001]\nlimit = \"0.5; DROP TABLE setl\"\n");
    let config = RuleConfig::load(&cfg).unwrap();
    let e = run_rules(&ctx, &rules, &config, "r").await.unwrap_err().to_string();
    assert!(e.contains("rules.toml") && e.contains("limit") && e.contains("expected decimal"), "{e}");
    // An undeclared parameter too.
    let cfg = write_rule(t.path(), "rules2.toml", "[params.PRM001]\nlimt = 1\n");
    let e = RuleConfig::load(&cfg).unwrap().validate(&rules).unwrap_err().to_string();
    assert!(e.contains("rules2.toml") && e.contains("limt") && e.contains("limit"), "{e}");
}

const READMISSION: &str = r#"
[[setl]]
setl_id = "A1"
psn_no = "P1"
begndate = "2024-03-01"
enddate = "2024-03-06"
[[setl]]
setl_id = "A2"
psn_no = "P1"
begndate = "2024-03-16"
enddate = "2024-03-20"
[expect]
flagged = ["A2"]
"#;

/// The configuration disables a rule, re-parameterises another and adds a folder of the user's
/// own rules; a failing user rule is recorded and the run goes on.
#[tokio::test(flavor = "multi_thread")]
async fn config_disables_overrides_and_adds_rules() {
    let t = tempdir();
    let mine = t.path().join("mine");
    write_rule(
        &mine,
        "USR001_all_inpatient.sql",
        &rule_text(
            "USR001",
            "",
            "SELECT setl_id, fund_pay AS amount_at_risk, '住院' AS detail FROM setl_valid",
        ),
    );
    write_rule(
        &mine,
        "USR002_broken.sql",
        &rule_text("USR002", "", "SELECT setl_id, no_such_column AS amount_at_risk, 'x' AS detail FROM setl"),
    );
    write_rule(
        &mine,
        "USR003_float.sql",
        &rule_text(
            "USR003",
            "",
            "SELECT setl_id, CAST(1.5 AS DOUBLE) AS amount_at_risk, 'x' AS detail FROM setl",
        ),
    );
    let cfg = write_rule(
        t.path(),
        "rules.toml",
        "disable = [\"DUP001\"]\nrule_dirs = [\"mine\"]\n[params.SPL001]\ndays = 5\n",
    );
    let config = RuleConfig::load(&cfg).unwrap();
    let rules = config.load_rules().unwrap();
    assert!(rules.get("USR001").is_some() && rules.get("IMP001").is_some());
    let tables = dataset(t.path(), "readm", READMISSION);
    let ctx = session(&tables).await.unwrap();
    let out = run_rules(&ctx, &rules, &config, "run-7").await.unwrap();
    let run = |id: &str| out.runs.iter().find(|r| r.id == id).unwrap().clone();
    assert!(matches!(run("DUP001").status, RuleStatus::Skipped(ref w) if w.contains("disabled")));
    assert_eq!(run("SPL001").status, RuleStatus::Ran);
    assert_eq!(run("SPL001").findings, 0, "days = 5 must not flag a readmission 10 days later");
    assert_eq!(run("USR001").findings, 2);
    assert!(
        matches!(run("USR002").status, RuleStatus::Failed(ref m) if m.contains("USR002_broken.sql") && m.contains("no_such_column"))
    );
    assert!(matches!(run("USR003").status, RuleStatus::Failed(ref m) if m.contains("decimal")));
    // Without the override the readmission 10 days after discharge is flagged.
    let out = run_rules(&ctx, &rules, &RuleConfig::default(), "run-8").await.unwrap();
    assert_eq!(out.runs.iter().find(|r| r.id == "SPL001").unwrap().findings, 1);
    // Findings carry the engine's columns.
    let b = out.findings.iter().find(|b| {
        let c = b.column_by_name("rule_id").unwrap();
        c.as_any().downcast_ref::<arrow::array::StringArray>().unwrap().value(0) == "SPL001"
    });
    let b = b.expect("an SPL001 finding");
    assert_eq!(b.schema(), medaudit::schema::findings_schema());
    let col = |n: &str| {
        b.column_by_name(n)
            .unwrap()
            .as_any()
            .downcast_ref::<arrow::array::StringArray>()
            .unwrap()
            .value(0)
            .to_string()
    };
    assert_eq!(col("setl_id"), "A2");
    assert_eq!(col("psn_no"), "P1");
    assert_eq!(col("fixmedins_code"), "H001");
    assert_eq!(col("category"), "split_admission");
    assert_eq!(col("severity"), "medium");
    assert_eq!(col("entity_type"), "settlement");
    assert_eq!(col("run_id"), "run-8");
    // A config naming a rule that does not exist is an error.
    let bad = write_rule(t.path(), "bad.toml", "disable = [\"NOPE01\"]\n");
    let e = RuleConfig::load(&bad).unwrap().load_rules().unwrap_err().to_string();
    assert!(e.contains("bad.toml") && e.contains("NOPE01"), "{e}");
}

/// A rule whose table is missing is skipped with the reason; the others run.
#[tokio::test(flavor = "multi_thread")]
async fn missing_table_skips_the_rule() {
    let t = tempdir();
    let tables = dataset(t.path(), "nopsn", READMISSION);
    assert!(!tables.data_dir.join("psn.parquet").exists());
    let ctx = session(&tables).await.unwrap();
    let rules = RuleSet::load_default().unwrap();
    let out = run_rules(&ctx, &rules, &RuleConfig::default(), "r").await.unwrap();
    for id in ["IMP004", "IMP005"] {
        let r = out.runs.iter().find(|r| r.id == id).unwrap();
        assert_eq!(r.status, RuleStatus::Skipped("missing table psn".into()), "{id}");
    }
    let failed: Vec<String> = out
        .runs
        .iter()
        .filter(|r| matches!(r.status, RuleStatus::Failed(_)))
        .map(|r| format!("{}: {:?}", r.id, r.status))
        .collect();
    assert!(failed.is_empty(), "rules failed on a minimal data set:\n{}", failed.join("\n"));
    assert!(out.runs.iter().any(|r| r.id == "SPL001" && r.findings == 1));
}

/// A fixture that expects nothing wrong, or flags without any near-miss, is itself reported.
#[tokio::test(flavor = "multi_thread")]
async fn fixture_runner_reports_wrong_expectations() {
    let t = tempdir();
    let rules = RuleSet::load_default().unwrap();
    let f = write_rule(
        t.path(),
        "SPL001_wrong.toml",
        &READMISSION.replace("flagged = [\"A2\"]", "flagged = [\"A1\"]"),
    );
    let r = run_fixture(&f, &rules, &defaults(), &kb(), &codes()).await.unwrap();
    assert_eq!(r.rule_id, "SPL001");
    assert!(!r.passed());
    assert!(
        r.problems.iter().any(|p| p.contains("not flagged but expected") && p.contains("A1")),
        "{:?}",
        r.problems
    );
    assert!(
        r.problems.iter().any(|p| p.contains("flagged but not expected") && p.contains("A2")),
        "{:?}",
        r.problems
    );
    let f = write_rule(
        t.path(),
        "SPL001_all.toml",
        &READMISSION.replace("flagged = [\"A2\"]", "flagged = [\"A1\", \"A2\"]"),
    );
    let r = run_fixture(&f, &rules, &defaults(), &kb(), &codes()).await.unwrap();
    assert!(r.problems.iter().any(|p| p.contains("near-miss")), "{:?}", r.problems);
}
