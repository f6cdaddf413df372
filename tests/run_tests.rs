//! The whole pipeline: manifest identities, coverage, atomic publication, fault injection.

use std::path::{Path, PathBuf};
use std::process::Command;

use medaudit::run::{RunOptions, run};
use medaudit::schema::{FEE, SETL};

use crate::common::{header, read_csv, row, tempdir, write_csv};

fn small_input(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let setl = vec![
        row(&SETL, &[("setl_id", "S1")]),
        row(
            &SETL,
            &[("setl_id", "S2"), ("mdtrt_id", "M2"), ("begndate", "2024-04-01"), ("enddate", "2024-04-03")],
        ),
        row(&SETL, &[("setl_id", "BAD"), ("enddate", "2024-13-01")]),
    ];
    write_csv(&dir.join("setl.csv"), &header(&SETL), &setl);
    let fee = vec![
        row(&FEE, &[("feedetl_sn", "F1"), ("setl_id", "S1")]),
        row(&FEE, &[("feedetl_sn", "F2"), ("setl_id", "S2")]),
        row(&FEE, &[("feedetl_sn", "F3"), ("setl_id", "BAD")]),
    ];
    write_csv(&dir.join("fee.csv"), &header(&FEE), &fee);
}

fn opts(input: &Path, out: &Path) -> RunOptions {
    RunOptions { input: input.to_path_buf(), out: out.to_path_buf(), ..Default::default() }
}

fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn the_manifest_proves_nothing_was_lost_and_everything_was_examined() {
    let tmp = tempdir();
    let input = tmp.path().join("in");
    small_input(&input);
    let out = tmp.path().join("out");
    let s = run(&opts(&input, &out)).expect("run");
    assert_eq!(s.out, out);
    let m = manifest(&out);
    assert_eq!(m["input"]["balanced"], true);
    for t in m["input"]["tables"].as_array().unwrap() {
        if t["present"] == true {
            let (r, a, q) = (
                t["read"].as_u64().unwrap(),
                t["accepted"].as_u64().unwrap(),
                t["quarantined"].as_u64().unwrap(),
            );
            assert_eq!(a + q, r, "{}", t["table"]);
            assert_eq!(t["files"][0]["sha256"].as_str().unwrap().len(), 64);
        }
    }
    let setl = m["input"]["tables"].as_array().unwrap().iter().find(|t| t["table"] == "setl").unwrap();
    assert_eq!((setl["read"].as_u64(), setl["accepted"].as_u64()), (Some(3), Some(2)));
    assert_eq!(m["coverage"]["settlements"]["examined"], 2);
    assert_eq!(m["coverage"]["settlements"]["percent"], 100.0);
    assert_eq!(m["coverage"]["fee_lines"]["examined"], 2);
    assert_eq!(m["coverage"]["fee_lines"]["percent"], 100.0);
    // Optional tables that were not supplied are listed with the checks that need them.
    let missing: Vec<&str> = m["input"]["missing_tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    assert_eq!(missing, vec!["psn", "medins", "pay"]);
    let pay = m["input"]["missing_tables"].as_array().unwrap().iter().find(|t| t["table"] == "pay").unwrap();
    assert!(pay["checks_needing_it"].as_array().unwrap().iter().any(|c| c == "PAY001"));
    let pay001 = m["rules"].as_array().unwrap().iter().find(|r| r["id"] == "PAY001").unwrap();
    assert_eq!(pay001["status"], "skipped");
    // Every rule is accounted for: ran, or skipped with a reason.
    for r in m["rules"].as_array().unwrap() {
        assert_ne!(r["status"], "failed", "{r}");
        if r["status"] == "skipped" {
            assert!(r["reason"].is_string(), "{r}");
        }
    }
    for f in [
        "findings.parquet",
        "findings.csv",
        "benefit_check.parquet",
        "benefit_check.csv",
        "quarantine/setl.csv",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let (head, _) = read_csv(&out.join("findings.csv"));
    assert_eq!(
        head,
        [
            "setl_id",
            "psn_no",
            "fixmedins_code",
            "rule_id",
            "category",
            "severity",
            "amount_at_risk",
            "detail",
            "entity_type",
            "entity_id",
            "feedetl_sns",
            "run_id"
        ]
    );
    let bom = std::fs::read(out.join("findings.csv")).unwrap();
    assert!(bom.starts_with(b"\xEF\xBB\xBF"));
}

#[test]
fn a_run_that_fails_before_publishing_leaves_no_output_folder() {
    let tmp = tempdir();
    let input = tmp.path().join("in");
    small_input(&input);
    let out = tmp.path().join("out");
    let bin = env!("CARGO_BIN_EXE_medaudit");
    for mode in ["error", "abort"] {
        let status = Command::new(bin)
            .args(["run", "--input"])
            .arg(&input)
            .arg("--out")
            .arg(&out)
            .env("MEDAUDIT_FAIL_AT", "before_publish")
            .env("MEDAUDIT_FAIL_MODE", mode)
            .output()
            .unwrap();
        assert!(!status.status.success(), "{mode}");
        assert!(!out.exists(), "{mode}: a failed run left an output folder");
        let stderr = String::from_utf8_lossy(&status.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // The aborted run left its hidden staging folder behind; it is never mistaken for an
    // output, and the next run clears it and publishes.
    let leftovers: Vec<PathBuf> =
        std::fs::read_dir(tmp.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert!(leftovers.iter().any(|p| p.file_name().unwrap().to_string_lossy().starts_with(".out.tmp-")));
    run(&opts(&input, &out)).expect("run");
    assert!(out.join("manifest.json").exists());
    let leftovers: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".out."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_rerun_replaces_the_previous_output_whole() {
    let tmp = tempdir();
    let input = tmp.path().join("in");
    small_input(&input);
    let out = tmp.path().join("out");
    run(&opts(&input, &out)).expect("first run");
    std::fs::write(out.join("stale.txt"), "from before").unwrap();
    let first = manifest(&out)["run_id"].clone();
    // A failing re-run keeps the previous output untouched.
    let status = Command::new(env!("CARGO_BIN_EXE_medaudit"))
        .args(["run", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .env("MEDAUDIT_FAIL_AT", "after_ingest")
        .output()
        .unwrap();
    assert!(!status.status.success());
    assert_eq!(manifest(&out)["run_id"], first);
    run(&opts(&input, &out)).expect("second run");
    assert_ne!(manifest(&out)["run_id"], first);
    assert!(!out.join("stale.txt").exists());
}

#[test]
fn bad_input_is_one_clear_message_and_a_nonzero_exit() {
    let tmp = tempdir();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    write_csv(&input.join("setl.csv"), &header(&SETL), &[row(&SETL, &[])]);
    let out = Command::new(env!("CARGO_BIN_EXE_medaudit"))
        .args(["run", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("medaudit: error:") && stderr.contains("required table `fee`"), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
    assert!(!tmp.path().join("out").exists());
}

#[test]
fn the_bundled_sample_runs() {
    let sample = crate::common::repo().join("datasets/sample/input");
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let s = run(&opts(&sample, &out)).expect("the bundled sample runs");
    let m = &s.manifest;
    assert!(m.input.balanced);
    assert!(m.findings.total > 0);
    assert_eq!(m.coverage.settlements.percent, 100.0);
    assert!(m.rules.iter().all(|r| r.status != "failed"), "{:?}", m.rules);
}
