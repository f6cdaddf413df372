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
    /// Settlements of the injected same-county clusters (label `out_of_area` / `cluster`).
    cluster_setls: BTreeSet<String>,
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
        // The SQL rules first, as in a run: STA004 counts their findings.
        let rc = medaudit::engine::RuleConfig::default();
        let rules = rc.load_rules().expect("rules");
        let rules_out = medaudit::engine::run_rules(&ctx, &rules, &rc, "test").await.expect("rules");
        stats::run(&ctx, &StatsConfig::load_default().expect("config"), &rules_out.findings)
            .await
            .expect("stats")
    });
    let batch = medaudit::findings::to_batch(&out.findings, "test").expect("batch");
    let labels = gen_dir.join("labels");
    let score = synth::score(&labels, &[batch]).expect("score");
    let summary = synth::Summary::read(&labels).expect("summary");
    let rows = synth::read_labels(&labels).expect("labels");
    let admission_persons =
        rows.iter().filter(|l| l.subkind == "person_admission_count").map(|l| l.entity_id.clone()).collect();
    let cluster_setls = rows
        .iter()
        .filter(|l| l.kind == "out_of_area" && l.subkind == "cluster" && l.role == synth::LabelRole::Anomaly)
        .map(|l| l.setl_id.clone())
        .collect();
    Audit {
        _tmp: tmp,
        out,
        score,
        outlier_facilities: summary.outlier_facilities,
        admission_persons,
        cluster_setls,
    }
}

/// The q-value printed in a finding's detail (`q=…` or `q≤…`).
fn q_of(detail: &str) -> f64 {
    let i = detail.find("q=").or_else(|| detail.find("q≤")).expect("q in detail");
    let rest = &detail[i + if detail[i..].starts_with("q=") { 2 } else { "q≤".len() }..];
    let end =
        rest.find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | '-'))).unwrap_or(rest.len());
    rest[..end].parse().expect("q value")
}

/// On generated data (two seeds): the facility with inflated costs (STA003), the persons with
/// extreme admission counts (STA007) and the same-county clusters (STA008) are found with
/// q < 0.01; no clean facility is named by any facility-level check.
#[test]
fn injected_outliers_are_found_and_clean_data_is_spared() {
    for seed in [20_261_122u64, 4242] {
        let a = audit(40_000, seed);
        println!("seed {seed}\n{}", a.out.notes.join("\n"));
        println!("{}", a.score);
        assert!(!a.outlier_facilities.is_empty() && !a.admission_persons.is_empty());
        assert!(!a.cluster_setls.is_empty());
        let named = |rule: &str| -> BTreeSet<&str> {
            a.out.findings.iter().filter(|f| f.rule_id == rule).map(|f| f.entity_id.as_str()).collect()
        };

        // Every injected facility is named by STA003 with q < 0.01, and no other facility is.
        let sta003 = named("STA003");
        let want: BTreeSet<&str> = a.outlier_facilities.iter().map(String::as_str).collect();
        assert_eq!(sta003, want, "STA003 (seed {seed})");
        // No injected facility-level anomaly of the other kinds: nothing to name.
        for rule in ["STA005", "STA006"] {
            assert!(named(rule).is_empty(), "{rule} named clean facilities: {:?}", named(rule));
        }
        // STA004 may only name a facility whose flagged settlements are injected anomalies
        // (e.g. the target of a cluster): none of its rows is a clean settlement.
        for f in a.out.findings.iter().filter(|f| f.rule_id == "STA004") {
            assert!(a.cluster_setls.contains(&f.setl_id) || sta003.contains(f.entity_id.as_str()), "{f:?}");
        }

        // Every injected person is named by STA007.
        let sta007 = named("STA007");
        for p in &a.admission_persons {
            assert!(sta007.contains(p.as_str()), "person {p} not found");
        }
        // Every injected cluster settlement is covered by STA008.
        let sta008: BTreeSet<&str> =
            a.out.findings.iter().filter(|f| f.rule_id == "STA008").map(|f| f.setl_id.as_str()).collect();
        for s in &a.cluster_setls {
            assert!(sta008.contains(s.as_str()), "cluster settlement {s} not found (seed {seed})");
        }
        for f in a.out.findings.iter().filter(|f| f.entity_type != "settlement") {
            assert!(q_of(&f.detail) < 0.01, "{}", f.detail);
            assert!(f.detail.contains("p="), "{}", f.detail);
        }

        // The scorer: recall of statistical_outlier and ≤ 1 % of clean settlements flagged.
        let failures = a.score.failures(&["statistical_outlier"], 0.95, 0.01);
        assert!(failures.is_empty(), "{}\n{}", failures.join("\n"), a.score);

        // Facility amounts are split so that they are counted once: the facility's parts add
        // up to observed − expected as printed in the detail.
        for code in &sta003 {
            let rows: Vec<_> =
                a.out.findings.iter().filter(|f| f.rule_id == "STA003" && f.entity_id == *code).collect();
            let total: rust_decimal::Decimal = rows.iter().map(|f| f.amount_at_risk).sum();
            assert!(total > rust_decimal::Decimal::ZERO);
            assert!(
                rows[0].detail.contains(&format!("超出期望 {total} 元")),
                "{total} vs {}",
                rows[0].detail
            );
            assert!(rows[0].detail.contains(&format!("{} 条结算均摊", rows.len())), "{}", rows[0].detail);
            let setls: BTreeSet<&str> = rows.iter().map(|f| f.setl_id.as_str()).collect();
            assert_eq!(setls.len(), rows.len(), "one row per settlement");
        }
        // Every check that ran is counted.
        let ids: Vec<&str> = a.out.checks.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(ids, ["STA001", "STA002", "STA003", "STA004", "STA005", "STA006", "STA007", "STA008"]);
        for (id, n) in &a.out.checks {
            assert_eq!(*n, a.out.findings.iter().filter(|f| &f.rule_id == id).count());
        }
        assert!(a.out.notes.iter().any(|n| n.starts_with("对照组")), "{:?}", a.out.notes);
    }
}

/// A small deterministic generator (SplitMix64) for the fixture.
struct Rng(u64);
impl Rng {
    fn u(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        ((self.u() * n as f64) as usize).min(n - 1)
    }
    fn normal(&mut self) -> f64 {
        let (a, b) = (self.u().max(1e-300), self.u());
        (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
    }
    fn weighted(&mut self, w: &[f64]) -> usize {
        let t: f64 = w.iter().sum();
        let mut x = self.u() * t;
        for (i, v) in w.iter().enumerate() {
            if x < *v {
                return i;
            }
            x -= v;
        }
        w.len() - 1
    }
}

/// What the fixture injected.
struct Injected {
    readmit_fac: String,
    digit_fac: String,
    share_fac: String,
    dq_fac: String,
    cluster_fac: String,
    cluster_county: String,
    cluster_setls: BTreeSet<String>,
}

/// A county-level world of 24 level-2 hospitals whose costs, readmission rates, item mix,
/// rule-flag rates and county inflows differ naturally, with one facility of each kind of
/// injected anomaly: STA005 (readmissions), STA006 (made-up amounts), STA004 (rule-flagged
/// share, through the findings handed in) and STA008 (7 persons of one county in 3 days).
fn fixture_world(dir: &std::path::Path, seed: u64) -> (Vec<arrow::array::RecordBatch>, Injected) {
    use medaudit::findings::{Finding, Severity};
    use medaudit::schema::{FEE, SETL};
    let mut rng = Rng(seed);
    let facs: Vec<String> = (1..=24).map(|i| format!("H4114020000{i:02}")).collect();
    let counties: Vec<String> = (21..=26).map(|c| format!("4114{c}")).collect();
    let dx = [("I63.900", 9000.0), ("J18.900", 5000.0), ("K80.100", 12000.0), ("N18.500", 7000.0)];
    let catalogue = [12.5, 23.0, 36.0, 48.0, 75.0, 110.0, 260.0, 540.0, 18.0, 31.5];
    let inj = Injected {
        readmit_fac: facs[4].clone(),
        digit_fac: facs[8].clone(),
        share_fac: facs[14].clone(),
        dq_fac: facs[15].clone(),
        cluster_fac: facs[11].clone(),
        cluster_county: counties[5].clone(),
        cluster_setls: BTreeSet::new(),
    };
    let mut inj = inj;
    let (mut setl, mut fee, mut findings) = (Vec::new(), Vec::new(), Vec::new());
    let day0 = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
    let mut n_setl = 0usize;
    let mut n_psn = 0usize;
    let mut add_stay = |rng: &mut Rng,
                        fac: &str,
                        fi: usize,
                        county: &str,
                        psn: &str,
                        begin: i64,
                        d: usize,
                        fac_cost: f64,
                        item_w: &[f64],
                        flag_rate: f64,
                        setl: &mut Vec<Vec<String>>,
                        fee: &mut Vec<Vec<String>>,
                        findings: &mut Vec<Finding>|
     -> (String, i64) {
        n_setl += 1;
        let id = format!("S{n_setl:06}");
        let los = 3 + rng.below(9) as i64;
        let b = day0 + chrono::Duration::days(begin);
        let e = b + chrono::Duration::days(los);
        let cost = (dx[d].1 * fac_cost * (0.3 * rng.normal()).exp() * 100.0).round() / 100.0;
        let (cost_s, fund_s) = (format!("{cost:.2}"), format!("{:.2}", (cost * 0.6 * 100.0).round() / 100.0));
        let (bs, es) = (b.to_string(), e.to_string());
        let time = format!("{es} 10:00:00");
        let mdtrt = format!("M{n_setl:06}");
        setl.push(crate::common::row(
            &SETL,
            &[
                ("setl_id", &id),
                ("mdtrt_id", &mdtrt),
                ("psn_no", psn),
                ("fixmedins_code", fac),
                ("hosp_lv", "2"),
                ("insu_admdvs", county),
                ("fix_blng_admdvs", "411402"),
                ("begndate", &bs),
                ("enddate", &es),
                ("setl_time", &time),
                ("dise_codg", dx[d].0),
                ("medfee_sumamt", &cost_s),
                ("inscp_scp_amt", &cost_s),
                ("hifp_pay", &fund_s),
            ],
        ));
        for k in 0..15 {
            let amount = if fi == 8 {
                // Made-up amounts, not from the price catalogue.
                format!("{:.2}", 10.0 + rng.u() * 990.0)
            } else {
                let item = rng.weighted(item_w);
                format!("{:.2}", catalogue[item] * (1 + rng.below(4)) as f64)
            };
            let sn = format!("{id}-{k}");
            fee.push(crate::common::row(
                &FEE,
                &[
                    ("feedetl_sn", &sn),
                    ("setl_id", &id),
                    ("psn_no", psn),
                    ("cnt", "1"),
                    ("pric", &amount),
                    ("det_item_fee_sumamt", &amount),
                    ("fee_ocur_time", &time),
                ],
            ));
        }
        if rng.u() < flag_rate {
            findings.push(Finding {
                setl_id: id.clone(),
                psn_no: Some(psn.to_string()),
                fixmedins_code: Some(fac.to_string()),
                rule_id: "OVC001".into(),
                category: "overcharge",
                severity: Severity::Medium,
                amount_at_risk: rust_decimal::Decimal::ONE,
                detail: String::new(),
                entity_type: "settlement",
                entity_id: id.clone(),
                feedetl_sns: None,
            });
        }
        if fi == 15 && rng.u() < 0.5 {
            findings.push(Finding {
                setl_id: id.clone(),
                psn_no: None,
                fixmedins_code: Some(fac.to_string()),
                rule_id: "DQ003".into(),
                category: "data_quality",
                severity: Severity::Low,
                amount_at_risk: rust_decimal::Decimal::ZERO,
                detail: String::new(),
                entity_type: "settlement",
                entity_id: id.clone(),
                feedetl_sns: None,
            });
        }
        (id, begin + los)
    };
    for (fi, fac) in facs.iter().enumerate() {
        let fac_cost = (0.1 * rng.normal()).exp();
        let readmit = if fi == 4 { 0.35 } else { 0.03 + 0.03 * rng.u() };
        let flag_rate = if fi == 14 { 0.25 } else { 0.02 + 0.02 * rng.u() };
        let item_w: Vec<f64> = (0..catalogue.len()).map(|_| 0.5 + rng.u()).collect();
        let county_w: Vec<f64> = (0..counties.len()).map(|_| 0.2 + rng.u()).collect();
        for _ in 0..150 {
            n_psn += 1;
            let psn = format!("P{n_psn:06}");
            let county = &counties[rng.weighted(&county_w)];
            let d = rng.below(dx.len());
            let begin = rng.below(330) as i64;
            let (_, end) = add_stay(
                &mut rng,
                fac,
                fi,
                county,
                &psn,
                begin,
                d,
                fac_cost,
                &item_w,
                flag_rate,
                &mut setl,
                &mut fee,
                &mut findings,
            );
            if rng.u() < readmit {
                let again = end + 2 + rng.below(10) as i64;
                add_stay(
                    &mut rng,
                    fac,
                    fi,
                    county,
                    &psn,
                    again,
                    d,
                    fac_cost,
                    &item_w,
                    flag_rate,
                    &mut setl,
                    &mut fee,
                    &mut findings,
                );
            }
        }
        if fi == 11 {
            // Seven persons of one county admitted within three days.
            for k in 0..7 {
                n_psn += 1;
                let psn = format!("P{n_psn:06}");
                let (id, _) = add_stay(
                    &mut rng,
                    fac,
                    fi,
                    &counties[5],
                    &psn,
                    200 + (k % 3) as i64,
                    0,
                    fac_cost,
                    &item_w,
                    0.0,
                    &mut setl,
                    &mut fee,
                    &mut findings,
                );
                inj.cluster_setls.insert(id);
            }
        }
    }
    crate::common::write_csv(&dir.join("setl.csv"), &crate::common::header(&SETL), &setl);
    crate::common::write_csv(&dir.join("fee.csv"), &crate::common::header(&FEE), &fee);
    let batch = medaudit::findings::to_batch(&findings, "fixture").expect("findings batch");
    (vec![batch], inj)
}

#[test]
fn injected_facility_and_cluster_anomalies_are_found_in_a_fixture_world() {
    for seed in [11u64, 20_240_101] {
        let tmp = tempdir();
        let input = tmp.path().join("input");
        std::fs::create_dir_all(&input).expect("mkdir");
        let (rule_findings, inj) = fixture_world(&input, seed);
        let data = tmp.path().join("data");
        ingest::ingest(&input, &data, &tmp.path().join("q"), &IngestOptions::new(crate::common::codes()))
            .expect("ingest");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let cfg = StatsConfig::load_default().expect("config");
        let run = |findings: &[arrow::array::RecordBatch]| {
            rt.block_on(async {
                let ctx = session(&Tables::new(&data, None)).await.expect("session");
                stats::run(&ctx, &cfg, findings).await.expect("stats")
            })
        };
        let out = run(&rule_findings);
        println!("seed {seed}\n{}", out.notes.join("\n"));
        assert_eq!(out.findings, run(&rule_findings).findings, "deterministic");
        let named = |rule: &str| -> BTreeSet<String> {
            out.findings.iter().filter(|f| f.rule_id == rule).map(|f| f.entity_id.clone()).collect()
        };
        assert_eq!(named("STA005"), BTreeSet::from([inj.readmit_fac.clone()]), "readmissions");
        assert_eq!(named("STA006"), BTreeSet::from([inj.digit_fac.clone()]), "digits");
        assert_eq!(named("STA004"), BTreeSet::from([inj.share_fac.clone()]), "flagged share");
        assert!(!named("STA004").contains(&inj.dq_fac), "data-quality findings do not count");
        assert_eq!(named("STA008"), BTreeSet::from([inj.cluster_fac.clone()]), "cluster");
        // The cluster's finding rests on the injected stays and on the pair's ordinary
        // admissions that fall inside the same days (at most a couple).
        let rows: BTreeSet<String> =
            out.findings.iter().filter(|f| f.rule_id == "STA008").map(|f| f.setl_id.clone()).collect();
        assert!(
            rows.is_superset(&inj.cluster_setls) && rows.len() <= inj.cluster_setls.len() + 2,
            "{rows:?}"
        );
        let d = &out.findings.iter().find(|f| f.rule_id == "STA008").expect("STA008").detail;
        assert!(d.contains(&format!("参保地 {} 的 {} 人", inj.cluster_county, rows.len())), "{d}");
        // STA004 rests on the facility's flagged settlements only, amount 0.
        let flagged: BTreeSet<String> = {
            let b = &rule_findings[0];
            let s = b.column_by_name("setl_id").expect("setl_id");
            let f = b.column_by_name("fixmedins_code").expect("fix");
            let c = b.column_by_name("category").expect("category");
            use arrow::array::AsArray;
            let (s, f, c) = (s.as_string::<i32>(), f.as_string::<i32>(), c.as_string::<i32>());
            (0..b.num_rows())
                .filter(|&i| f.value(i) == inj.share_fac && c.value(i) == "overcharge")
                .map(|i| s.value(i).to_string())
                .collect()
        };
        let sta004: BTreeSet<String> =
            out.findings.iter().filter(|f| f.rule_id == "STA004").map(|f| f.setl_id.clone()).collect();
        assert_eq!(sta004, flagged);
        for f in out.findings.iter().filter(|f| f.entity_type != "settlement") {
            assert!(q_of(&f.detail) < 0.01 && f.detail.contains("p="), "{}", f.detail);
            assert!(!f.detail.is_empty() && f.fixmedins_code.as_deref() == Some(f.entity_id.as_str()));
            if matches!(f.rule_id.as_str(), "STA004" | "STA005" | "STA006") {
                assert_eq!(f.amount_at_risk, rust_decimal::Decimal::ZERO);
            }
        }
        // Without rule findings STA004 has nothing to count; the rest is unchanged.
        let bare = run(&[]);
        assert!(bare.findings.iter().all(|f| f.rule_id != "STA004"));
        assert_eq!(
            bare.findings.iter().filter(|f| f.rule_id != "STA004").collect::<Vec<_>>(),
            out.findings.iter().filter(|f| f.rule_id != "STA004").collect::<Vec<_>>()
        );
    }
}
