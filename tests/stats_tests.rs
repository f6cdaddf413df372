//! Statistical checks on generated data: the facility with inflated costs and the persons
//! with extreme admission counts are found with q < 0.01; clean facilities and clean
//! settlements are not.

use std::collections::BTreeSet;

use medaudit::engine::{Tables, session};
use medaudit::ingest::{self, IngestOptions};
use medaudit::stats::{self, StatsConfig, StatsOutput};
use medaudit::synth::{self, GenConfig};

use crate::common::tempdir;

struct Audit {
    _tmp: tempfile::TempDir,
    out: StatsOutput,
    score: synth::ScoreTable,
    outlier_facilities: Vec<String>,
    admission_persons: BTreeSet<String>,
}

fn audit(settlements: u64, seed: u64) -> Audit {
    let tmp = tempdir();
    let gen_dir = tmp.path().join("gen");
    let cfg = GenConfig::new(gen_dir.clone(), settlements, seed);
    synth::generate(&cfg).expect("generate");
    let data = tmp.path().join("data");
    let codes = medaudit::codes::CodeTables::load(&crate::common::repo().join("datasets/codes/codes.csv"))
        .expect("codes");
    ingest::ingest(&gen_dir.join("input"), &data, &tmp.path().join("quarantine"), &IngestOptions::new(codes))
        .expect("ingest");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let out = rt.block_on(async {
        let ctx = session(&Tables::new(&data, None)).await.expect("session");
        stats::run(&ctx, &StatsConfig::load_default().expect("config"), &[]).await.expect("stats")
    });
    let batch = medaudit::findings::to_batch(&out.findings, "test").expect("batch");
    let labels = gen_dir.join("labels");
    let score = synth::score(&labels, &[batch]).expect("score");
    let summary = synth::Summary::read(&labels).expect("summary");
    let admission_persons = synth::read_labels(&labels)
        .expect("labels")
        .into_iter()
        .filter(|l| l.subkind == "person_admission_count")
        .map(|l| l.entity_id)
        .collect();
    Audit { _tmp: tmp, out, score, outlier_facilities: summary.outlier_facilities, admission_persons }
}

/// The q-value printed in a finding's detail (`q=…` or `q≤…`).
fn q_of(detail: &str) -> f64 {
    let i = detail.find("q=").or_else(|| detail.find("q≤")).expect("q in detail");
    let rest = &detail[i + if detail[i..].starts_with("q=") { 2 } else { "q≤".len() }..];
    let end =
        rest.find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | '-'))).unwrap_or(rest.len());
    rest[..end].parse().expect("q value")
}

#[test]
#[ignore = "issue 6 open: STA003 does not yet separate the generator's inflated facility from natural variation"]
fn injected_outliers_are_found_and_clean_data_is_spared() {
    let a = audit(12_000, 20_261_122);
    println!("{}", a.out.notes.join("\n"));
    println!("{}", a.score);
    assert!(!a.outlier_facilities.is_empty() && !a.admission_persons.is_empty());

    // Every injected facility is named by STA003 with q < 0.01, and no other facility is.
    let sta003: BTreeSet<&str> =
        a.out.findings.iter().filter(|f| f.rule_id == "STA003").map(|f| f.entity_id.as_str()).collect();
    for f in &a.outlier_facilities {
        assert!(sta003.contains(f.as_str()), "facility {f} not found; STA003 named {sta003:?}");
    }
    let wrong: Vec<&&str> =
        sta003.iter().filter(|f| !a.outlier_facilities.iter().any(|o| o == **f)).collect();
    assert!(wrong.is_empty(), "clean facilities flagged: {wrong:?}");

    // Every injected person is named by STA007; each finding's q < 0.01.
    let sta007: BTreeSet<&str> =
        a.out.findings.iter().filter(|f| f.rule_id == "STA007").map(|f| f.entity_id.as_str()).collect();
    for p in &a.admission_persons {
        assert!(sta007.contains(p.as_str()), "person {p} not found");
    }
    for f in a.out.findings.iter().filter(|f| f.entity_type != "settlement") {
        assert!(q_of(&f.detail) < 0.01, "{}", f.detail);
        assert!(f.detail.contains("p="), "{}", f.detail);
    }

    // The scorer: recall of statistical_outlier and ≤ 1 % of clean settlements flagged.
    let failures = a.score.failures(&["statistical_outlier"], 0.95, 0.01);
    assert!(failures.is_empty(), "{}\n{}", failures.join("\n"), a.score);

    // Facility amounts are split so that they are counted once: the facility's parts add up
    // to observed − expected as printed in the detail.
    for code in &sta003 {
        let rows: Vec<_> =
            a.out.findings.iter().filter(|f| f.rule_id == "STA003" && f.entity_id == *code).collect();
        let total: rust_decimal::Decimal = rows.iter().map(|f| f.amount_at_risk).sum();
        assert!(total > rust_decimal::Decimal::ZERO);
        assert!(rows[0].detail.contains(&format!("超出期望 {total} 元")), "{total} vs {}", rows[0].detail);
        let setls: BTreeSet<&str> = rows.iter().map(|f| f.setl_id.as_str()).collect();
        assert_eq!(setls.len(), rows.len(), "one row per settlement");
    }
    // Every check that ran is counted.
    let ids: Vec<&str> = a.out.checks.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(ids, ["STA001", "STA002", "STA003", "STA007"]);
    for (id, n) in &a.out.checks {
        assert_eq!(*n, a.out.findings.iter().filter(|f| &f.rule_id == id).count());
    }
    assert!(a.out.notes.iter().any(|n| n.starts_with("对照组")), "{:?}", a.out.notes);
}

#[test]
fn a_second_seed_gives_no_false_facility_discoveries() {
    let a = audit(8_000, 4242);
    println!("{}", a.out.notes.join("\n"));
    let sta003: BTreeSet<&str> =
        a.out.findings.iter().filter(|f| f.rule_id == "STA003").map(|f| f.entity_id.as_str()).collect();
    let wrong: Vec<&&str> =
        sta003.iter().filter(|f| !a.outlier_facilities.iter().any(|o| o == **f)).collect();
    assert!(wrong.is_empty(), "clean facilities flagged: {wrong:?}");
    assert!(a.score.fp_rate("statistical_outlier") <= 0.01, "{}", a.score);
    // The run is deterministic.
    let b = audit(8_000, 4242);
    assert_eq!(a.out.findings, b.out.findings);
}

#[test]
#[ignore = "exploration"]
fn explore() {
    let n: u64 = std::env::var("STATS_N").ok().and_then(|s| s.parse().ok()).unwrap_or(12_000);
    let seed: u64 = std::env::var("STATS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let a = audit(n, seed);
    println!("{}", a.out.notes.join("\n"));
    println!("outliers {:?}", a.outlier_facilities);
    let mut seen = std::collections::BTreeSet::new();
    for f in &a.out.findings {
        if f.entity_type != "settlement" && seen.insert((f.rule_id.clone(), f.entity_id.clone(), f.detail.clone())) {
            println!("{} {} {}", f.rule_id, f.entity_id, f.detail);
        }
    }
}
