//! The second-review (复审) sample: proportions, certainty stratum, reproducibility, and
//! inclusion probabilities that the draw actually realises.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Decimal128Array, RecordBatch, StringArray, TimestampSecondArray};
use arrow::datatypes::{DataType, TimeUnit};
use medaudit::findings::{Finding, Severity, to_batch};
use medaudit::sample::{SampleConfig, SampleOutput, draw, population, write_csv};
use medaudit::schema::SETL;
use rust_decimal::Decimal;

use crate::common;

/// One settlement for a test: id, insu_admdvs, fix_blng_admdvs, med_type, refd_setl_flag,
/// init_setl_id.
#[derive(Clone)]
struct S {
    id: String,
    insu: &'static str,
    fix: &'static str,
    med_type: &'static str,
    refd: &'static str,
    init: String,
}

fn s(id: impl Into<String>, insu: &'static str) -> S {
    S { id: id.into(), insu, fix: insu, med_type: "21", refd: "0", init: String::new() }
}

/// A `setl` batch in the contract's schema; fields the sample does not read get fixed values.
fn setl_batch(rows: &[S]) -> RecordBatch {
    let schema = SETL.arrow_schema();
    let n = rows.len();
    let cols: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            match f.data_type() {
                DataType::Utf8 => {
                    let v: Vec<String> = rows
                        .iter()
                        .map(|r| match f.name().as_str() {
                            "setl_id" => r.id.clone(),
                            "mdtrt_id" => format!("M{}", r.id),
                            "insu_admdvs" => r.insu.to_string(),
                            "fix_blng_admdvs" => r.fix.to_string(),
                            "med_type" => r.med_type.to_string(),
                            "refd_setl_flag" => r.refd.to_string(),
                            "init_setl_id" => r.init.clone(),
                            _ => "1".to_string(),
                        })
                        .collect();
                    Arc::new(StringArray::from(v))
                }
                DataType::Date32 => Arc::new(Date32Array::from(vec![19_800; n])),
                DataType::Timestamp(TimeUnit::Second, None) => {
                    Arc::new(TimestampSecondArray::from(vec![1_710_000_000; n]))
                }
                DataType::Decimal128(p, sc) => {
                    Arc::new(Decimal128Array::from(vec![0i128; n]).with_precision_and_scale(*p, *sc).unwrap())
                }
                t => panic!("unexpected type {t}"),
            }
        })
        .collect();
    RecordBatch::try_new(schema, cols).unwrap()
}

fn finding(setl: &str, rule: &str, category: &'static str, severity: Severity, amount: &str) -> Finding {
    Finding {
        setl_id: setl.into(),
        psn_no: Some("P1".into()),
        fixmedins_code: Some("H1".into()),
        rule_id: rule.into(),
        category,
        severity,
        amount_at_risk: amount.parse::<Decimal>().unwrap(),
        detail: "测试".into(),
        entity_type: "settlement",
        entity_id: setl.into(),
        feedetl_sns: None,
    }
}

fn cfg() -> SampleConfig {
    SampleConfig::load_default().unwrap()
}

/// Two localities: 411402 (200 settlements, 7 high, 20 out-of-area stays, many with medium or
/// low findings) and 411502 (120 settlements, 2 high, none out of area); a reversal and the
/// settlement it cancels.
fn city() -> (Vec<S>, Vec<Finding>) {
    let mut setl = Vec::new();
    let mut f = Vec::new();
    for i in 0..200 {
        let mut x = s(format!("A{i:04}"), "411402");
        if i % 10 == 3 {
            x.fix = "410105"; // Zhengzhou: out of area
        }
        if i % 10 == 7 {
            x.med_type = "11"; // outpatient: never out-of-area stratum
            x.fix = "410105";
        }
        if i % 33 == 0 {
            f.push(finding(&x.id, "DUP001", "duplicate_billing", Severity::High, "1234.00"));
        }
        if i % 4 == 1 {
            f.push(finding(&x.id, "OVC001", "overcharge", Severity::Medium, &format!("{}.50", i * 37)));
        }
        if i % 5 == 2 {
            f.push(finding(&x.id, "RST001", "restricted_item", Severity::Low, "12.00"));
        }
        setl.push(x);
    }
    for i in 0..120 {
        let x = s(format!("B{i:04}"), "411502");
        if i == 5 || i == 77 {
            f.push(finding(&x.id, "IMP001", "impersonation", Severity::High, "8000.00"));
        }
        if i % 3 == 0 {
            f.push(finding(&x.id, "SPL001", "split_admission", Severity::Medium, "300.00"));
        }
        setl.push(x);
    }
    // B0100 is cancelled by R0001; both stay out of the population, and their findings too.
    let mut r = s("R0001", "411502");
    r.refd = "1";
    r.init = "B0100".into();
    setl.push(r);
    f.push(finding("B0100", "DUP001", "duplicate_billing", Severity::High, "10.00"));
    f.push(finding("R0001", "DUP001", "duplicate_billing", Severity::High, "10.00"));
    (setl, f)
}

fn run(setl: &[S], f: &[Finding], c: &SampleConfig) -> SampleOutput {
    let sb = setl_batch(setl);
    let fb = to_batch(f, "run1").unwrap();
    draw(&[sb], &[fb], &common::codes(), c).unwrap()
}

fn locality(stratum: &str) -> &str {
    stratum.split('/').next().unwrap()
}

#[test]
fn proportions_per_locality_hold_within_rounding() {
    let (setl, f) = city();
    let mut c = cfg();
    c.proportion = 0.1;
    c.proportion_by_locality.insert("411502".into(), 0.2);
    c.out_of_area_share = 0.25;
    let out = run(&setl, &f, &c);
    let mut per_loc: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &out.rows {
        *per_loc.entry(locality(&r.stratum)).or_default() += 1;
    }
    // 411402: 200 settlements (R0001/B0100 belong to 411502) → 20; 411502: 119 → 23.8 → 24.
    for (loc, n, p) in [("411402", 200.0, 0.1), ("411502", 119.0, 0.2)] {
        let drawn = per_loc[loc] as f64;
        assert!((drawn - p * n).abs() <= 0.5, "{loc}: {drawn} drawn, expected {}", p * n);
    }
    // the out-of-area stratum of 411402: inpatient stays i % 10 == 3 (20), minus those in the
    // certainty stratum (i = 33) → 19, a quarter → round(4.75) = 5
    let oa = out.strata.iter().find(|s| s.locality == "411402" && s.stratum == "out_of_area").unwrap();
    assert_eq!((oa.population, oa.target, oa.drawn), (19, 5, 5));
    assert_eq!(out.rows.iter().filter(|r| r.stratum == "411402/out_of_area").count(), 5);
    let none = out.strata.iter().find(|s| s.locality == "411502" && s.stratum == "out_of_area").unwrap();
    assert_eq!((none.population, none.drawn), (0, 0));
    for st in &out.strata {
        assert_eq!(st.drawn, st.target, "{st:?}");
    }
    let pop: usize = out.strata.iter().map(|s| s.population).sum();
    assert_eq!(pop, 319, "reversal R0001 and cancelled B0100 are not in the population");
    assert!(out.rows.iter().all(|r| r.setl_id != "R0001" && r.setl_id != "B0100"));
}

#[test]
fn every_high_severity_settlement_is_drawn_with_certainty() {
    let (setl, f) = city();
    let out = run(&setl, &f, &cfg());
    let high: Vec<&str> = f
        .iter()
        .filter(|x| x.severity == Severity::High && x.setl_id != "B0100" && x.setl_id != "R0001")
        .map(|x| x.setl_id.as_str())
        .collect();
    assert_eq!(high.len(), 9);
    for id in high {
        let r = out.rows.iter().find(|r| r.setl_id == id).unwrap_or_else(|| panic!("{id} not drawn"));
        assert!(r.stratum.ends_with("/certainty"), "{id}: {}", r.stratum);
        assert_eq!(r.inclusion_prob, 1.0);
        assert!(r.reason.contains("(high, "), "{}", r.reason);
    }
    // with the default 5 %, 411402's quota of 10 has room for 7 certainty + 2 out-of-area
    // (0.1 × 19 rounded) + 1 by risk
    let risk = out.strata.iter().find(|s| s.locality == "411402" && s.stratum == "risk").unwrap();
    assert_eq!((risk.population, risk.target, risk.drawn), (174, 1, 1));
}

#[test]
fn same_data_config_and_seed_give_the_same_sample_in_any_row_order() {
    let (setl, f) = city();
    let c = cfg();
    let a = run(&setl, &f, &c);
    // reversed, split into three batches, findings reversed, on one thread
    let mut rev = setl.clone();
    rev.reverse();
    let batches: Vec<RecordBatch> = rev.chunks(110).map(setl_batch).collect();
    let mut frev = f.clone();
    frev.reverse();
    let fb: Vec<RecordBatch> = frev.chunks(7).map(|part| to_batch(part, "run2").unwrap()).collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let b = pool.install(|| draw(&batches, &fb, &common::codes(), &c).unwrap());
    assert_eq!(a, b);
    // another seed draws another sample of the same size and the same probabilities
    let mut c2 = c.clone();
    c2.seed += 1;
    let d = run(&setl, &f, &c2);
    assert_eq!(d.seed, c.seed + 1);
    assert_eq!(d.rows.len(), a.rows.len());
    let ids = |o: &SampleOutput| o.rows.iter().map(|r| r.setl_id.clone()).collect::<Vec<_>>();
    assert_ne!(ids(&a), ids(&d));
}

/// A small population: 14 settlements in one locality, 4 of them out-of-area stays, with
/// findings of several strengths and some without any.
fn small() -> (Vec<S>, Vec<Finding>, SampleConfig) {
    let mut setl = Vec::new();
    let mut f = Vec::new();
    for i in 0..14 {
        let mut x = s(format!("S{i:02}"), "411402");
        if i >= 10 {
            x.fix = "440305";
        }
        setl.push(x);
    }
    f.push(finding("S00", "OVC001", "overcharge", Severity::Medium, "25000.00"));
    f.push(finding("S01", "OVC001", "overcharge", Severity::Medium, "800.00"));
    f.push(finding("S01", "RST001", "restricted_item", Severity::Low, "20.00"));
    f.push(finding("S02", "RST001", "restricted_item", Severity::Low, "5.00"));
    f.push(finding("S03", "SPL001", "split_admission", Severity::Medium, "3000.00"));
    f.push(finding("S10", "OOA001", "out_of_area", Severity::Medium, "0.00"));
    let mut c = cfg();
    c.proportion = 0.5; // 7 of 14: 2 out-of-area (half of 4) + 5 by risk out of 10
    c.out_of_area_share = 0.5;
    (setl, f, c)
}

#[test]
fn inclusion_probabilities_are_realised_by_the_draw() {
    let (setl, f, mut c) = small();
    let sb = setl_batch(&setl);
    let fb = to_batch(&f, "r").unwrap();
    let codes = common::codes();
    let pi: HashMap<String, f64> =
        population(std::slice::from_ref(&sb), std::slice::from_ref(&fb), &codes, &c)
            .unwrap()
            .into_iter()
            .map(|r| (r.setl_id, r.inclusion_prob))
            .collect();
    assert_eq!(pi.len(), 14);
    let total: f64 = pi.values().sum();
    assert!((total - 7.0).abs() < 1e-9, "expected sample size {total}");
    for (id, p) in &pi {
        assert!(*p > 0.0 && *p <= 1.0, "{id}: {p}");
    }
    // the strongest settlement is capped at 1 in the risk stratum
    assert_eq!(pi["S00"], 1.0);
    const SEEDS: u64 = 2000;
    let mut count: HashMap<String, u64> = HashMap::new();
    for seed in 0..SEEDS {
        c.seed = seed;
        let out = draw(std::slice::from_ref(&sb), std::slice::from_ref(&fb), &codes, &c).unwrap();
        assert_eq!(out.rows.len(), 7, "seed {seed}");
        for r in out.rows {
            assert_eq!(r.inclusion_prob, pi[&r.setl_id], "the recorded probability is the design's");
            *count.entry(r.setl_id).or_default() += 1;
        }
    }
    for (id, p) in &pi {
        let k = count.get(id).copied().unwrap_or(0) as f64;
        let expected = p * SEEDS as f64;
        let sd = (SEEDS as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (k - expected).abs() <= 4.5 * sd + 1.0,
            "{id}: drawn {k} times in {SEEDS}, π = {p} expects {expected:.1}"
        );
    }
}

#[test]
fn the_floor_gives_settlements_without_findings_a_chance() {
    let (setl, f, c) = small();
    let rows = population(&[setl_batch(&setl)], &[to_batch(&f, "r").unwrap()], &common::codes(), &c).unwrap();
    let risk_n = 5.0;
    let risk_pop = 10.0;
    for r in rows.iter().filter(|r| r.reason == "无预警") {
        let bound =
            if r.stratum.ends_with("/risk") { c.floor * risk_n / risk_pop } else { c.floor * 2.0 / 4.0 };
        assert!(r.inclusion_prob >= bound - 1e-12, "{}: {} < {bound}", r.setl_id, r.inclusion_prob);
        assert_eq!(r.risk_score, 0.0);
    }
    assert_eq!(rows.iter().filter(|r| r.reason == "无预警").count(), 9);
    // and a higher risk never has a lower probability within a stratum
    let mut by_stratum: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for r in &rows {
        by_stratum.entry(&r.stratum).or_default().push((r.risk_score, r.inclusion_prob));
    }
    for v in by_stratum.values_mut() {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(v.windows(2).all(|w| w[0].1 <= w[1].1 + 1e-12), "{v:?}");
    }
}

#[test]
fn review_sample_csv_follows_the_schema() {
    let (setl, f) = city();
    let out = run(&setl, &f, &cfg());
    let dir = common::tempdir();
    let p = dir.path().join("review_sample.csv");
    write_csv(&p, &out).unwrap();
    assert!(std::fs::read(&p).unwrap().starts_with(b"\xEF\xBB\xBF"));
    let (header, rows) = common::read_csv(&p);
    assert_eq!(header, ["setl_id", "risk_score", "stratum", "inclusion_prob", "reason"]);
    assert_eq!(rows.len(), out.rows.len());
    for (csv, r) in rows.iter().zip(&out.rows) {
        assert_eq!(csv[0], r.setl_id);
        assert!((csv[1].parse::<f64>().unwrap() - r.risk_score).abs() < 1e-4);
        assert_eq!(csv[2], r.stratum);
        assert_eq!(csv[3].parse::<f64>().unwrap(), r.inclusion_prob, "the probability round-trips exactly");
        assert_eq!(csv[4], r.reason);
    }
    let dup = rows.iter().find(|r| r[0] == "A0033").unwrap();
    assert!(dup[4].starts_with("DUP001 重复收费(high, 1,234.00元)"), "{}", dup[4]);
}

#[test]
fn bad_input_is_a_clear_error() {
    let (mut setl, f) = city();
    setl.push(s("A0001", "411402"));
    let e = draw(&[setl_batch(&setl)], &[to_batch(&f, "r").unwrap()], &common::codes(), &cfg()).unwrap_err();
    assert!(e.to_string().contains("A0001"), "{e}");
    let sb = setl_batch(&setl[..3]);
    let partial = sb.project(&[0, 1]).unwrap();
    let e = draw(&[partial], &[], &common::codes(), &cfg()).unwrap_err();
    assert!(e.to_string().contains("insu_admdvs"), "{e}");
}
