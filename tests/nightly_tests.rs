//! The nightly audit (`medaudit nightly`): day by day equals all at once, a night killed at
//! any stage and run again ends as an uninterrupted one, files delivered twice count once,
//! fee lines wait for their settlement, a re-sent settlement replaces the earlier one, and
//! one run at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use medaudit::nightly::{NightlyOptions, Outcome, nightly};
use medaudit::run::{RunOptions, run};
use medaudit::synth::{self, GenConfig, OutFormat};

use crate::common::tempdir;

const TABLES: [&str; 5] = ["setl", "fee", "psn", "medins", "pay"];

/// A generated data set as raw CSV rows per table (header, rows), in file order.
struct Raw {
    tables: BTreeMap<&'static str, (Vec<String>, Vec<Vec<String>>)>,
}

impl Raw {
    fn generate(dir: &Path, settlements: u64, seed: u64, malformed: bool) -> Raw {
        let mut cfg = GenConfig::new(dir.to_path_buf(), settlements, seed);
        cfg.format = OutFormat::Csv;
        cfg.malformed_rows = malformed;
        synth::generate(&cfg).expect("generate");
        let mut tables = BTreeMap::new();
        for t in TABLES {
            let text = std::fs::read_to_string(dir.join("input").join(format!("{t}.csv"))).expect("csv");
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
            let header: Vec<String> = r.headers().expect("header").iter().map(String::from).collect();
            let rows = r.records().map(|x| x.expect("row").iter().map(String::from).collect()).collect();
            tables.insert(t, (header, rows));
        }
        Raw { tables }
    }

    fn col(&self, table: &str, name: &str) -> usize {
        self.tables[table].0.iter().position(|h| h == name).expect("column")
    }

    /// Night (0-based) of every row: settlements by the date of `setl_time` cut into `n`
    /// ranges of whole days (a reversal at least one night after its original); a repeated
    /// `setl_id` goes with its first row; fee lines and payments with their settlement (night
    /// 0 when it has none); registries on night 0.
    fn nights(&self, n: usize) -> BTreeMap<&'static str, Vec<usize>> {
        let (_, setl) = &self.tables["setl"];
        let (id, time) = (self.col("setl", "setl_id"), self.col("setl", "setl_time"));
        let day =
            |r: &Vec<String>| r.get(time).map(|t| t.chars().take(10).collect::<String>()).unwrap_or_default();
        let mut days: Vec<String> = setl.iter().map(day).collect();
        days.sort();
        let cuts: Vec<String> = (1..n).map(|k| days[days.len() * k / n].clone()).collect();
        let mut of_setl: BTreeMap<String, usize> = BTreeMap::new();
        let mut out = BTreeMap::new();
        let mut v = Vec::new();
        for r in setl {
            let key = r.get(id).cloned().unwrap_or_default();
            let night = *of_setl.entry(key).or_insert_with(|| cuts.iter().filter(|c| **c <= day(r)).count());
            v.push(night);
        }
        // Reversals settled on the night of their original go to the next night, so that
        // reversals arriving after their original are certainly exercised.
        let (flag, init) = (self.col("setl", "refd_setl_flag"), self.col("setl", "init_setl_id"));
        for (r, night) in setl.iter().zip(v.iter_mut()) {
            let original = r.get(init).and_then(|i| of_setl.get(i)).copied();
            if r.get(flag).is_some_and(|f| f == "1") && original == Some(*night) && *night + 1 < n {
                *night += 1;
                if let Some(k) = r.get(id) {
                    of_setl.insert(k.clone(), *night);
                }
            }
        }
        out.insert("setl", v);
        for t in ["fee", "pay"] {
            let c = self.col(t, "setl_id");
            let v = self.tables[t]
                .1
                .iter()
                .map(|r| r.get(c).and_then(|s| of_setl.get(s)).copied().unwrap_or(0))
                .collect();
            out.insert(t, v);
        }
        for t in ["psn", "medins"] {
            out.insert(t, vec![0; self.tables[t].1.len()]);
        }
        out
    }

    /// Writes the rows of `night` as a delivery folder (tables without rows are left out).
    fn write_night(&self, nights: &BTreeMap<&'static str, Vec<usize>>, night: usize, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for t in TABLES {
            let (header, rows) = &self.tables[t];
            let rows: Vec<&Vec<String>> =
                rows.iter().zip(&nights[t]).filter(|(_, n)| **n == night).map(|(r, _)| r).collect();
            if !rows.is_empty() {
                write_rows(&dir.join(format!("{t}.csv")), header, &rows);
            }
        }
    }

    /// Writes every table (rows picked by `keep`) as one input folder.
    fn write_all(&self, dir: &Path, keep: impl Fn(&str, &[String]) -> bool) {
        std::fs::create_dir_all(dir).unwrap();
        for t in TABLES {
            let (header, rows) = &self.tables[t];
            let rows: Vec<&Vec<String>> = rows.iter().filter(|r| keep(t, r)).collect();
            write_rows(&dir.join(format!("{t}.csv")), header, &rows);
        }
    }
}

fn write_rows(path: &Path, header: &[String], rows: &[&Vec<String>]) {
    let mut w = csv::WriterBuilder::new().flexible(true).from_path(path).expect("create csv");
    w.write_record(header).unwrap();
    for r in rows {
        w.write_record(*r).unwrap();
    }
    w.flush().unwrap();
}

/// The full-run reference over deliveries: one input folder whose tables are folders of the
/// deliveries' files as parts, in delivery order.
fn cumulative_input(deliveries: &[PathBuf], dir: &Path) {
    for (i, d) in deliveries.iter().enumerate() {
        for t in TABLES {
            let f = d.join(format!("{t}.csv"));
            if f.exists() {
                let td = dir.join(t);
                std::fs::create_dir_all(&td).unwrap();
                std::fs::copy(&f, td.join(format!("{i:03}.csv"))).unwrap();
            }
        }
    }
}

fn full_run(input: &Path, out: &Path) {
    let s = run(&RunOptions { input: input.to_path_buf(), out: out.to_path_buf(), ..Default::default() })
        .expect("full run");
    assert!(s.manifest.input.balanced);
}

fn opts(inbox: &Path, store: &Path) -> NightlyOptions {
    NightlyOptions { inbox: inbox.to_path_buf(), store: store.to_path_buf(), ..Default::default() }
}

fn audited(o: Outcome) -> Box<medaudit::nightly::NightSummary> {
    match o {
        Outcome::Audited(s) => s,
        other => panic!("expected an audited night, got {other:?}"),
    }
}

/// Rows of a Parquet file as text (every column but `run_id`), sorted.
fn rows(path: &Path) -> Vec<Vec<String>> {
    let batches: Vec<RecordBatch> = medaudit::output::read_parquet(path).expect("parquet");
    let mut out = Vec::new();
    for b in &batches {
        let cols: Vec<(String, arrow::array::ArrayRef)> = b
            .schema()
            .fields()
            .iter()
            .zip(b.columns())
            .filter(|(f, _)| f.name() != "run_id")
            .map(|(f, c)| (f.name().clone(), arrow::compute::cast(c, &DataType::Utf8).unwrap()))
            .collect();
        for r in 0..b.num_rows() {
            out.push(
                cols.iter()
                    .map(|(_, c)| {
                        let c = c.as_string::<i32>();
                        if c.is_null(r) { "∅".to_string() } else { c.value(r).to_string() }
                    })
                    .collect(),
            );
        }
    }
    out.sort();
    out
}

/// Findings split into (rule and benefit findings, statistical findings).
fn findings(out: &Path) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    // column 4 is `category`
    rows(&out.join("findings.parquet")).into_iter().partition(|r| r[4] != "statistical_outlier")
}

fn sample(out: &Path) -> String {
    std::fs::read_to_string(out.join("review_sample.csv")).expect("sample")
}

fn assert_same_rows(what: &str, a: &[Vec<String>], b: &[Vec<String>]) {
    if a != b {
        let sa: BTreeSet<&Vec<String>> = a.iter().collect();
        let sb: BTreeSet<&Vec<String>> = b.iter().collect();
        let only_a: Vec<_> = sa.difference(&sb).take(5).collect();
        let only_b: Vec<_> = sb.difference(&sa).take(5).collect();
        panic!(
            "{what}: {} vs {} rows\nonly nightly: {only_a:#?}\nonly full run: {only_b:#?}",
            a.len(),
            b.len()
        );
    }
}

#[test]
fn night_by_night_equals_one_full_run() {
    let tmp = tempdir();
    let raw = Raw::generate(&tmp.path().join("gen"), 800, 4242, true);
    let n = 4;
    let nights = raw.nights(n);
    // The data exercise what the nightly must get right: reversals arriving after their
    // original, persons with settlements on several nights.
    let (sid, rflag, init) =
        (raw.col("setl", "setl_id"), raw.col("setl", "refd_setl_flag"), raw.col("setl", "init_setl_id"));
    let setl = &raw.tables["setl"].1;
    let night_of: BTreeMap<&str, usize> =
        setl.iter().zip(&nights["setl"]).filter_map(|(r, n)| r.get(sid).map(|s| (s.as_str(), *n))).collect();
    let late_reversals = setl
        .iter()
        .zip(&nights["setl"])
        .filter(|(r, n)| {
            r.get(rflag).is_some_and(|f| f == "1")
                && r.get(init).and_then(|i| night_of.get(i.as_str())).is_some_and(|o| o < n)
        })
        .count();
    assert!(late_reversals > 0, "no reversal arrives after its original");

    let inbox = tmp.path().join("inbox");
    let store = tmp.path().join("store");
    let mut deliveries = Vec::new();
    for k in 0..n {
        let d = inbox.join(format!("2024-night-{k}"));
        raw.write_night(&nights, k, &d);
        deliveries.push(d);
        let s = audited(nightly(&opts(&inbox, &store)).expect("night"));
        assert_eq!(s.night, k as u64 + 1);
        assert!(s.manifest.input.balanced);
        assert!(s.manifest.rules.iter().all(|r| r.status != "failed"), "{:?}", s.manifest.rules);
        let reference = tmp.path().join(format!("full-{k}"));
        cumulative_input(&deliveries, &reference.join("in"));
        full_run(&reference.join("in"), &reference.join("out"));
        let (rules_n, stats_n) = findings(&s.out);
        let (rules_f, stats_f) = findings(&reference.join("out"));
        assert_same_rows(&format!("night {k}: statistical findings"), &stats_n, &stats_f);
        assert_eq!(sample(&s.out), sample(&reference.join("out")), "night {k}: review sample");
        if k == n - 1 {
            assert!(!rules_f.is_empty());
            assert_same_rows("rule and benefit findings", &rules_n, &rules_f);
            assert_same_rows(
                "benefit checks",
                &rows(&s.out.join("benefit_check.parquet")),
                &rows(&reference.join("out/benefit_check.parquet")),
            );
        }
    }
    // A run with nothing new does nothing.
    match nightly(&opts(&inbox, &store)).expect("idle night") {
        Outcome::NothingNew { last_night } => assert_eq!(last_night, n as u64),
        other => panic!("{other:?}"),
    }
}

/// Every file under the store that a night's state consists of, with its content (JSON with
/// paths, times and timings removed).
fn snapshot(store: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for f in medaudit::manifest::files_below(store, &["parquet", "csv", "json"]) {
        let rel = medaudit::nightly::store::relative(store, &f);
        let bytes = std::fs::read(&f).unwrap();
        let bytes = if rel.ends_with(".json") {
            let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            scrub(&mut v);
            serde_json::to_vec_pretty(&v).unwrap()
        } else {
            bytes
        };
        out.insert(rel, bytes);
    }
    out
}

fn scrub(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for k in [
                "committed_at",
                "started_at",
                "timings_seconds",
                "seconds",
                "millis",
                "out",
                "store",
                "inbox",
                "folder",
                "spill",
            ] {
                m.remove(k);
            }
            // absolute paths (the staged input files) differ from store to store
            if m.get("path").and_then(|p| p.as_str()).is_some_and(|p| p.starts_with('/')) {
                m.remove("path");
            }
            m.values_mut().for_each(scrub);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(scrub),
        _ => {}
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn run_bin(inbox: &Path, store: &Path, fail_at: Option<&str>) -> std::process::Output {
    run_bin_with(inbox, store, fail_at, &[])
}

fn run_bin_with(
    inbox: &Path,
    store: &Path,
    fail_at: Option<&str>,
    extra: &[&std::ffi::OsStr],
) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_medaudit"));
    c.args(["nightly", "--inbox"]).arg(inbox).arg("--store").arg(store).args(extra);
    if let Some(stage) = fail_at {
        c.env("MEDAUDIT_FAIL_AT", stage).env("MEDAUDIT_FAIL_MODE", "abort");
    } else {
        c.env_remove("MEDAUDIT_FAIL_AT");
    }
    c.output().expect("run medaudit")
}

#[test]
fn a_night_killed_at_any_stage_and_run_again_ends_as_an_uninterrupted_one() {
    let tmp = tempdir();
    let raw = Raw::generate(&tmp.path().join("gen"), 450, 77, true);
    let nights = raw.nights(2);
    let inbox = tmp.path().join("inbox");
    raw.write_night(&nights, 0, &inbox.join("d1"));
    // The store after night 1, and the reference store after an uninterrupted night 2.
    let base = tmp.path().join("base");
    let out = run_bin(&inbox, &base, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    raw.write_night(&nights, 1, &inbox.join("d2"));
    let reference = tmp.path().join("reference");
    copy_dir(&base, &reference);
    let out = run_bin(&inbox, &reference, None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want = snapshot(&reference);
    assert!(want.keys().any(|k| k.starts_with("runs/night-000002/")));

    let stages = medaudit::nightly::FAULT_STAGES.iter().chain(&["after_ingest", "before_publish"]);
    for stage in stages {
        let store = tmp.path().join(format!("killed-{stage}"));
        copy_dir(&base, &store);
        let killed = run_bin(&inbox, &store, Some(stage));
        assert!(!killed.status.success(), "{stage}: the fault was not injected");
        let stderr = String::from_utf8_lossy(&killed.stderr);
        assert!(stderr.contains(&format!("fault injected at {stage}")), "{stage}: {stderr}");
        // The killed run left its lock file behind with a dead pid: taken over.
        let again = run_bin(&inbox, &store, None);
        // Killed after the commit, the night is done: the re-run finds nothing new (exit 4)
        // and only removes what the killed run had not yet removed.
        let expected = if *stage == "nightly_committed" { 4 } else { 0 };
        assert_eq!(
            again.status.code(),
            Some(expected),
            "{stage}: re-run failed: {}",
            String::from_utf8_lossy(&again.stderr)
        );
        let got = snapshot(&store);
        let keys_want: Vec<&String> = want.keys().collect();
        let keys_got: Vec<&String> = got.keys().collect();
        assert_eq!(keys_got, keys_want, "{stage}: the files of the store differ");
        for (k, v) in &want {
            assert!(got[k] == *v, "{stage}: {k} differs from the uninterrupted run's");
        }
        std::fs::remove_dir_all(&store).unwrap();
    }
}

#[test]
fn a_file_delivered_twice_is_counted_once() {
    let tmp = tempdir();
    let raw = Raw::generate(&tmp.path().join("gen"), 420, 5, false);
    let nights = raw.nights(2);
    let inbox = tmp.path().join("inbox");
    raw.write_night(&nights, 0, &inbox.join("a"));
    copy_dir(&inbox.join("a"), &inbox.join("a-resent"));
    let store = tmp.path().join("store");
    let s = audited(nightly(&opts(&inbox, &store)).unwrap());
    let files = s.entry.files.len();
    assert_eq!(s.skipped_files, files, "the copy is skipped");
    raw.write_night(&nights, 1, &inbox.join("b"));
    copy_dir(&inbox.join("a"), &inbox.join("c-third-time"));
    let s = audited(nightly(&opts(&inbox, &store)).unwrap());
    assert_eq!(s.skipped_files, 3 * files);
    let cat = medaudit::nightly::catalogue::Catalogue::load(&store).unwrap();
    let read: u64 = cat.files.values().filter(|f| f.table == "setl").map(|f| f.read).sum();
    assert_eq!(read as usize, raw.tables["setl"].1.len(), "every settlement read once");
    let reference = tmp.path().join("full");
    cumulative_input(&[inbox.join("a"), inbox.join("b")], &reference.join("in"));
    full_run(&reference.join("in"), &reference.join("out"));
    let (a, sa) = findings(&s.out);
    let (b, sb) = findings(&reference.join("out"));
    assert_same_rows("findings", &a, &b);
    assert_same_rows("statistical findings", &sa, &sb);
}

#[test]
fn fee_lines_before_their_settlement_wait_and_are_picked_up() {
    let tmp = tempdir();
    let raw = Raw::generate(&tmp.path().join("gen"), 420, 11, false);
    let nights = raw.nights(2);
    // Night 1 brings every fee line, and fee lines of a settlement that never comes; night 2
    // the settlements of the second half.
    let mut moved = raw.nights(2);
    moved.insert("fee", vec![0; raw.tables["fee"].1.len()]);
    let late_lines = nights["fee"].iter().filter(|n| **n == 1).count() as u64;
    assert!(late_lines > 0);
    let inbox = tmp.path().join("inbox");
    raw.write_night(&moved, 0, &inbox.join("d1"));
    let (header, fee) = &raw.tables["fee"];
    let mut orphan = fee[0].clone();
    orphan[raw.col("fee", "feedetl_sn")] = "ORPHAN-1".into();
    orphan[raw.col("fee", "setl_id")] = "NO-SUCH-SETTLEMENT".into();
    std::fs::create_dir_all(inbox.join("d1-orphan")).unwrap();
    write_rows(&inbox.join("d1-orphan").join("fee.csv"), header, &[&orphan]);
    let store = tmp.path().join("store");
    let config = tmp.path().join("nightly.toml");
    let shipped =
        std::fs::read_to_string(crate::common::repo().join("datasets/nightly/config.toml")).unwrap();
    std::fs::write(&config, shipped.replace("max_pending_nights = 7", "max_pending_nights = 2")).unwrap();
    let o = NightlyOptions { config: Some(config), ..opts(&inbox, &store) };

    let s = audited(nightly(&o).unwrap());
    assert_eq!(s.entry.pending.after, late_lines + 1, "lines without their settlement wait");
    assert_eq!(s.entry.pending.expired + s.entry.pending.quarantined, 0);
    assert!(!s.out.join("quarantine/fee.csv").exists(), "nothing quarantined for good");

    raw.write_night(&moved, 1, &inbox.join("d2"));
    let s = audited(nightly(&o).unwrap());
    assert_eq!(s.entry.pending.resolved, late_lines);
    assert_eq!(s.entry.pending.after, 1, "the orphan still waits");
    let reference = tmp.path().join("full");
    cumulative_input(&[inbox.join("d1"), inbox.join("d2")], &reference.join("in"));
    full_run(&reference.join("in"), &reference.join("out"));
    let (a, sa) = findings(&s.out);
    let (b, sb) = findings(&reference.join("out"));
    assert_same_rows("findings", &a, &b);
    assert_same_rows("statistical findings", &sa, &sb);

    // Night 3, a delivery without fee lines: the orphan has waited 2 nights in vain.
    std::fs::create_dir_all(inbox.join("d3")).unwrap();
    write_rows(&inbox.join("d3").join("pay.csv"), &raw.tables["pay"].0, &[]);
    let s = audited(nightly(&o).unwrap());
    assert_eq!((s.entry.pending.expired, s.entry.pending.after), (1, 0));
    let q = std::fs::read_to_string(s.out.join("quarantine/fee_pending.csv"))
        .expect("expired lines in quarantine");
    assert!(q.contains("ORPHAN-1") && q.contains("2晚后仍未到达"), "{q}");
}

#[test]
fn a_resent_settlement_replaces_the_earlier_version() {
    let tmp = tempdir();
    let raw = Raw::generate(&tmp.path().join("gen"), 420, 23, false);
    let inbox = tmp.path().join("inbox");
    raw.write_all(&inbox.join("d1"), |_, _| true);
    let store = tmp.path().join("store");
    audited(nightly(&opts(&inbox, &store)).unwrap());
    // Re-send three ordinary inpatient settlements with an injury diagnosis (INJ001 flags
    // injury admissions), with their fee lines unchanged.
    let (sid, dise, mt, rflag) = (
        raw.col("setl", "setl_id"),
        raw.col("setl", "dise_codg"),
        raw.col("setl", "med_type"),
        raw.col("setl", "refd_setl_flag"),
    );
    let mut changed = BTreeMap::new();
    for r in &raw.tables["setl"].1 {
        if changed.len() < 3 && r[mt] == "21" && r[rflag] == "0" && !r[dise].starts_with('S') {
            let mut r2 = r.clone();
            r2[mt] = "22".into();
            r2[dise] = "S72.000".into();
            changed.insert(r[sid].clone(), r2);
        }
    }
    assert_eq!(changed.len(), 3);
    let header = &raw.tables["setl"].0;
    std::fs::create_dir_all(inbox.join("d2")).unwrap();
    write_rows(&inbox.join("d2").join("setl.csv"), header, &changed.values().collect::<Vec<_>>());
    let s = audited(nightly(&opts(&inbox, &store)).unwrap());
    assert_eq!(s.entry.superseded_rows["setl"], 3);
    assert_eq!(s.entry.new_rows["setl"], 3);
    // Both versions stay in the history.
    let cat = medaudit::nightly::catalogue::Catalogue::load(&store).unwrap();
    let history: usize = medaudit::manifest::files_below(&store.join("history/setl"), &["parquet"])
        .iter()
        .map(|f| medaudit::output::read_parquet(f).unwrap().iter().map(|b| b.num_rows()).sum::<usize>())
        .sum();
    let current: u64 = cat.parts["setl"].iter().map(|p| p.rows).sum();
    assert_eq!(history as u64, current + 3);
    // The findings are those of a full run over the corrected data.
    let reference = tmp.path().join("full");
    let mut fixed = Raw { tables: raw.tables.clone() };
    for r in &mut fixed.tables.get_mut("setl").unwrap().1 {
        if let Some(c) = changed.get(&r[sid]) {
            *r = c.clone();
        }
    }
    fixed.write_all(&reference.join("in"), |_, _| true);
    full_run(&reference.join("in"), &reference.join("out"));
    let (a, sa) = findings(&s.out);
    let (b, sb) = findings(&reference.join("out"));
    assert!(a.iter().any(|r| r[3] == "INJ001" && changed.contains_key(&r[0])), "the new version is audited");
    assert_same_rows("findings", &a, &b);
    assert_same_rows("statistical findings", &sa, &sb);
}

#[test]
fn one_run_at_a_time_and_a_stale_lock_is_taken_over() {
    let tmp = tempdir();
    let raw = Raw::generate(&tmp.path().join("gen"), 420, 3, false);
    let inbox = tmp.path().join("inbox");
    raw.write_all(&inbox.join("d1"), |_, _| true);
    let store = tmp.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let lock_path = store.join(medaudit::nightly::lock::LOCK_FILE);
    {
        // A live holder: this process.
        let f =
            std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).unwrap();
        f.lock().unwrap();
        std::fs::write(
            &lock_path,
            format!(
                "{{\"pid\":{},\"started_at\":\"{}\"}}",
                std::process::id(),
                chrono::Utc::now().to_rfc3339()
            ),
        )
        .unwrap();
        match nightly(&opts(&inbox, &store)).unwrap() {
            Outcome::Locked { holder, hung } => {
                assert_eq!(holder.map(|h| h.pid), Some(std::process::id()));
                assert!(!hung);
            }
            other => panic!("a second run was not refused: {other:?}"),
        }
        let out = run_bin(&inbox, &store, None);
        assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(!store.join("catalogue.json").exists(), "the refused run wrote nothing");
    }
    // A holder that died (its pid is gone) left the file: taken over.
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    std::fs::write(&lock_path, format!("{{\"pid\":{dead},\"started_at\":\"2020-01-01T00:00:00+00:00\"}}"))
        .unwrap();
    let s = audited(nightly(&opts(&inbox, &store)).unwrap());
    assert_eq!(s.stale_lock.map(|h| h.pid), Some(dead));
    assert_eq!(std::fs::read_to_string(&lock_path).unwrap(), "", "released at the end");
    // Nothing new: exit code 4.
    let out = run_bin(&inbox, &store, None);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Splits a generated Parquet input by `setl_time`: settlements before `cut` (with their fee
/// lines and payments, and the registries) into `early`, the rest into `late`.
fn split_parquet(input: &Path, share_late: f64, early: &Path, late: &Path) -> usize {
    let read =
        |t: &str| medaudit::output::read_parquet(&input.join(format!("{t}.parquet"))).expect("parquet");
    let setl = read("setl");
    let mut times: Vec<i64> = Vec::new();
    for b in &setl {
        let c = arrow::compute::cast(b.column_by_name("setl_time").unwrap(), &DataType::Int64).unwrap();
        let c = c.as_primitive::<arrow::datatypes::Int64Type>();
        times.extend((0..c.len()).filter(|i| !c.is_null(*i)).map(|i| c.value(i)));
    }
    times.sort();
    let cut = times[((times.len() as f64) * (1.0 - share_late)) as usize];
    let mut late_ids: BTreeSet<String> = BTreeSet::new();
    let pick = |batches: &[RecordBatch], is_late: &dyn Fn(&RecordBatch, usize) -> bool, want_late: bool| {
        batches
            .iter()
            .map(|b| {
                let keep: arrow::array::BooleanArray =
                    (0..b.num_rows()).map(|i| Some(is_late(b, i) == want_late)).collect();
                arrow::compute::filter_record_batch(b, &keep).unwrap()
            })
            .collect::<Vec<_>>()
    };
    let setl_late = |b: &RecordBatch, i: usize| {
        let c = arrow::compute::cast(b.column_by_name("setl_time").unwrap(), &DataType::Int64).unwrap();
        let c = c.as_primitive::<arrow::datatypes::Int64Type>();
        !c.is_null(i) && c.value(i) >= cut
    };
    for b in pick(&setl, &setl_late, true) {
        let ids = b.column_by_name("setl_id").unwrap().as_string::<i32>();
        late_ids.extend((0..b.num_rows()).map(|i| ids.value(i).to_string()));
    }
    let by_setl = |b: &RecordBatch, i: usize| {
        late_ids.contains(b.column_by_name("setl_id").unwrap().as_string::<i32>().value(i))
    };
    for (dir, want_late) in [(early, false), (late, true)] {
        std::fs::create_dir_all(dir).unwrap();
        for t in TABLES {
            let batches = read(t);
            let schema = batches[0].schema();
            let rows: Vec<RecordBatch> = match t {
                "setl" => pick(&batches, &setl_late, want_late),
                "fee" | "pay" => pick(&batches, &by_setl, want_late),
                _ if want_late => continue,
                _ => batches,
            };
            medaudit::output::write_parquet(&dir.join(format!("{t}.parquet")), schema, &rows).unwrap();
        }
    }
    late_ids.len()
}

/// The cost of a night that adds about 1 % of a year, against a full-year audit. A benchmark:
/// `MEDAUDIT_BENCH_SETTLEMENTS` (default 100 000) settlements in `MEDAUDIT_BENCH_DIR` (default a
/// temporary folder); prints both times, asserts nothing about them.
#[test]
#[ignore]
fn nightly_cost_follows_the_delta() {
    let n: u64 =
        std::env::var("MEDAUDIT_BENCH_SETTLEMENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let tmp = tempdir();
    let root =
        std::env::var_os("MEDAUDIT_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|| tmp.path().to_path_buf());
    let gen_dir = root.join("gen");
    if !gen_dir.join("input/setl.parquet").exists() {
        let mut cfg = GenConfig::new(gen_dir.clone(), n, 2024);
        cfg.format = OutFormat::Parquet;
        cfg.malformed_rows = false;
        synth::generate(&cfg).expect("generate");
    }
    let t = std::time::Instant::now();
    full_run(&gen_dir.join("input"), &root.join("full-out"));
    let full = t.elapsed().as_secs_f64();
    let inbox = root.join("inbox");
    let _ = std::fs::remove_dir_all(&inbox);
    let late = split_parquet(&gen_dir.join("input"), 0.01, &inbox.join("a-bulk"), &root.join("late"));
    let store = root.join("store");
    let _ = std::fs::remove_dir_all(&store);
    let t = std::time::Instant::now();
    audited(nightly(&opts(&inbox, &store)).expect("first night"));
    let first = t.elapsed().as_secs_f64();
    std::fs::rename(root.join("late"), inbox.join("b-night")).unwrap();
    let t = std::time::Instant::now();
    let s = audited(nightly(&opts(&inbox, &store)).expect("the 1 % night"));
    let night = t.elapsed().as_secs_f64();
    println!(
        "{n} settlements: full audit {full:.1} s; first night (99 %) {first:.1} s; night adding {late} settlements \
         ({:.2} %) {night:.1} s = {:.1} % of the full audit; {} persons re-audited ({} settlements)",
        late as f64 * 100.0 / n as f64,
        night * 100.0 / full,
        s.entry.touched_persons,
        s.entry.audited_settlements,
    );
    println!("night stages (s): {:?}", s.manifest.timings_seconds);
    let (a, sa) = findings(&s.out);
    let (b, sb) = findings(&root.join("full-out"));
    assert_same_rows("findings", &a, &b);
    assert_same_rows("statistical findings", &sa, &sb);
}

/// What the case store holds, without times: (cases, finding parts, merged runs).
fn case_store_contents(
    dir: &Path,
) -> (Vec<(String, String, String, i64)>, Vec<(String, String, i64, String)>, i64) {
    let store = medaudit::cases::Store::open(dir).unwrap();
    let c = store.connection();
    let cases = c
        .prepare("SELECT entity_type, entity_id, status, amount_cents FROM cases ORDER BY 1, 2")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let findings = c
        .prepare("SELECT rule_id, setl_id, amount_cents, status FROM findings ORDER BY 1, 2")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let runs: i64 = c.query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0)).unwrap();
    (cases, findings, runs)
}

#[test]
fn each_night_merges_into_the_case_store_once_even_when_killed() {
    let tmp = tempdir();
    let raw = Raw::generate(&tmp.path().join("gen"), 450, 78, true);
    let nights = raw.nights(2);
    let inbox = tmp.path().join("inbox");
    raw.write_night(&nights, 0, &inbox.join("d1"));
    let (store, cases) = (tmp.path().join("store"), tmp.path().join("cases"));
    let with_cases = [std::ffi::OsStr::new("--cases"), cases.as_os_str()];
    let out = run_bin_with(&inbox, &store, None, &with_cases);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (c1, f1, runs1) = case_store_contents(&cases);
    assert!(!c1.is_empty() && !f1.is_empty(), "night 1 flagged nothing into the case store");
    assert_eq!(runs1, 1);
    // The night's findings file and the case store agree: every flagged settlement has a finding part.
    let night1 = store.join("runs/night-000001/findings.parquet");
    let file = std::fs::File::open(&night1).unwrap();
    let batches: Vec<RecordBatch> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let setls: BTreeSet<String> = batches
        .iter()
        .flat_map(|b| {
            let a = b.column_by_name("setl_id").unwrap().as_string::<i32>().clone();
            (0..a.len()).map(move |i| a.value(i).to_string()).collect::<Vec<_>>()
        })
        .collect();
    let merged: BTreeSet<String> = f1.iter().map(|f| f.1.clone()).collect();
    assert_eq!(merged, setls);

    // Night 2 killed after the merge into the case store and before the catalogue commits,
    // then run again: the same case store as an uninterrupted night 2.
    raw.write_night(&nights, 1, &inbox.join("d2"));
    let (store2, cases2) = (tmp.path().join("store2"), tmp.path().join("cases2"));
    copy_dir(&store, &store2);
    copy_dir(&cases, &cases2);
    let with_cases2 = [std::ffi::OsStr::new("--cases"), cases2.as_os_str()];
    let out = run_bin_with(&inbox, &store2, None, &with_cases2);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let killed = run_bin_with(&inbox, &store, Some("nightly_cases_merged"), &with_cases);
    assert!(!killed.status.success());
    let again = run_bin_with(&inbox, &store, None, &with_cases);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let want = case_store_contents(&cases2);
    let got = case_store_contents(&cases);
    assert_eq!(want.2, 2, "two nights, two merged runs");
    assert_eq!(got, want);
}
