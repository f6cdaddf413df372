//! Integration tests: benefit recalculation (POLICY.md, POLICY-EXAMPLES.md) and payment
//! deadlines in working days.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, Date32Builder, Decimal128Builder, RecordBatch, StringBuilder, TimestampSecondBuilder,
};
use arrow::datatypes::{DataType, Decimal128Type};
use chrono::{NaiveDate, NaiveDateTime};
use medaudit::benefit::kernel::{self, KRow, Role};
use medaudit::benefit::policy::{EmployeeParams, Formula, ResidentParams};
use medaudit::benefit::{
    BenefitOutput, Calendar, Incomplete, PolicySet, check_deadlines, default_as_of, recalculate,
};
use medaudit::codes::CodeTables;
use medaudit::findings::Severity;
use medaudit::schema::{PAY, SETL, benefit_check_schema};
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::common;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn policies() -> PolicySet {
    PolicySet::load(&common::repo().join("datasets/policy")).unwrap()
}

fn codes() -> CodeTables {
    CodeTables::load(&common::repo().join("datasets/codes/codes.csv")).unwrap()
}

fn calendar() -> Calendar {
    Calendar::load(&common::repo().join("datasets/calendar")).unwrap()
}

fn resident_params() -> ResidentParams {
    let p = policies();
    match &p.for_fund(medaudit::benefit::Fund::Hifmi, 2024).unwrap().0.formula {
        Formula::Resident(r) => r.clone(),
        Formula::Employee(_) => panic!("resident policy expected"),
    }
}

fn employee_params() -> EmployeeParams {
    let p = policies();
    match &p.for_fund(medaudit::benefit::Fund::Hifob, 2026).unwrap().0.formula {
        Formula::Employee(e) => e.clone(),
        Formula::Resident(_) => panic!("employee policy expected"),
    }
}

// ---- settlement rows -----------------------------------------------------------------------

/// A settlement with the fields the recalculation reads; the others get fixed values.
#[derive(Debug, Clone)]
struct S {
    setl_id: String,
    psn_no: String,
    insutype: &'static str,
    idet: &'static str,
    med_type: &'static str,
    enddate: String,
    setl_time: String,
    refd: &'static str,
    init: String,
    inscp: Decimal,
    dedc: Decimal,
    hifp: Decimal,
    ratio: Decimal,
    hifmi: Decimal,
    hifob: Decimal,
}

/// A resident inpatient settlement whose base (`inscp − 0 − 0`) is `base`, discharged and
/// settled on `day`, recording `hifmi`.
fn res(id: &str, psn: &str, day: &str, base: &str, hifmi: &str) -> S {
    S {
        setl_id: id.into(),
        psn_no: psn.into(),
        insutype: "390",
        idet: "",
        med_type: "21",
        enddate: day.into(),
        setl_time: format!("{day} 10:00:00"),
        refd: "0",
        init: String::new(),
        inscp: d(base),
        dedc: Decimal::ZERO,
        hifp: Decimal::ZERO,
        ratio: d("0.6"),
        hifmi: d(hifmi),
        hifob: Decimal::ZERO,
    }
}

/// An employee inpatient settlement.
fn emp(id: &str, psn: &str, day: &str, inscp: &str, hifp: &str, r: &str, hifob: &str) -> S {
    S {
        insutype: "310",
        inscp: d(inscp),
        hifp: d(hifp),
        ratio: d(r),
        hifmi: Decimal::ZERO,
        hifob: d(hifob),
        ..res(id, psn, day, "0", "0")
    }
}

/// A reversal of `orig`, carrying its negated amounts, settled at `time`.
fn rev(id: &str, orig: &S, time: &str) -> S {
    S {
        setl_id: id.into(),
        setl_time: time.into(),
        refd: "1",
        init: orig.setl_id.clone(),
        inscp: -orig.inscp,
        dedc: -orig.dedc,
        hifp: -orig.hifp,
        hifmi: -orig.hifmi,
        hifob: -orig.hifob,
        ..orig.clone()
    }
}

fn days(s: &str) -> i32 {
    (date(s) - date("1970-01-01")).num_days() as i32
}

fn secs(s: &str) -> i64 {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap().and_utc().timestamp()
}

fn money_col(vals: impl Iterator<Item = Decimal>, p: u8, s: i8) -> ArrayRef {
    let mut b = Decimal128Builder::new();
    for v in vals {
        let mut v = v;
        v.rescale(s as u32);
        b.append_value(v.mantissa());
    }
    Arc::new(b.finish().with_precision_and_scale(p, s).unwrap())
}

/// A `setl` batch with exactly the contract's schema.
fn setl_batch(rows: &[S]) -> RecordBatch {
    let schema = SETL.arrow_schema();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for f in schema.fields() {
        let name = f.name().as_str();
        let col: ArrayRef = match f.data_type() {
            DataType::Utf8 => {
                let mut b = StringBuilder::new();
                for r in rows {
                    let v: String = match name {
                        "setl_id" => r.setl_id.clone(),
                        "mdtrt_id" => format!("M{}", r.setl_id),
                        "psn_no" => r.psn_no.clone(),
                        "psn_name" => "张三丰".into(),
                        "certno" => "411402198001011234".into(),
                        "gend" => "1".into(),
                        "insutype" => r.insutype.into(),
                        "psn_idet_type" => r.idet.into(),
                        "insu_admdvs" | "fix_blng_admdvs" => "411100".into(),
                        "fixmedins_code" => "H41110000001".into(),
                        "med_type" => r.med_type.into(),
                        "dise_codg" => "I63.900".into(),
                        "refl_flag" => "0".into(),
                        "setl_mode" => "1".into(),
                        "refd_setl_flag" => r.refd.into(),
                        "init_setl_id" => r.init.clone(),
                        "psn_cert_type" => "01".into(),
                        "hosp_lv" => "3".into(),
                        other => panic!("unexpected text field {other}"),
                    };
                    b.append_value(v);
                }
                Arc::new(b.finish())
            }
            DataType::Date32 => {
                let mut b = Date32Builder::new();
                for r in rows {
                    b.append_value(match name {
                        "brdy" => days("1980-01-01"),
                        _ => days(&r.enddate),
                    });
                }
                Arc::new(b.finish())
            }
            DataType::Timestamp(_, _) => {
                let mut b = TimestampSecondBuilder::new();
                for r in rows {
                    b.append_value(secs(&r.setl_time));
                }
                Arc::new(b.finish())
            }
            DataType::Decimal128(p, s) => {
                let v = rows.iter().map(|r| match name {
                    "inscp_scp_amt" | "medfee_sumamt" => r.inscp,
                    "act_pay_dedc" => r.dedc,
                    "hifp_pay" => r.hifp,
                    "pool_prop_selfpay" => r.ratio,
                    "hifmi_pay" => r.hifmi,
                    "hifob_pay" => r.hifob,
                    _ => Decimal::ZERO,
                });
                money_col(v, *p, *s)
            }
            t => panic!("unexpected type {t}"),
        };
        cols.push(col);
    }
    RecordBatch::try_new(schema, cols).unwrap()
}

/// One `benefit_check` row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Check {
    setl_id: String,
    fund: String,
    recorded: Decimal,
    expected: Decimal,
    diff: Decimal,
    status: String,
}

fn checks(out: &BenefitOutput) -> Vec<Check> {
    let mut v = Vec::new();
    for b in &out.checks {
        assert_eq!(b.schema(), benefit_check_schema());
        let s = |i: usize| b.column(i).as_string::<i32>().clone();
        let m = |i: usize| b.column(i).as_primitive::<Decimal128Type>().clone();
        let (id, fund, rec, exp, diff, st) = (s(0), s(1), m(2), m(3), m(4), s(5));
        for i in 0..b.num_rows() {
            v.push(Check {
                setl_id: id.value(i).into(),
                fund: fund.value(i).into(),
                recorded: Decimal::from_i128_with_scale(rec.value(i), 2),
                expected: Decimal::from_i128_with_scale(exp.value(i), 2),
                diff: Decimal::from_i128_with_scale(diff.value(i), 2),
                status: st.value(i).into(),
            });
        }
    }
    v
}

fn run(rows: &[S]) -> BenefitOutput {
    run_with(rows, &Incomplete::default(), None)
}

fn run_with(rows: &[S], inc: &Incomplete, tol: Option<Decimal>) -> BenefitOutput {
    recalculate(&[setl_batch(rows)], &policies(), &codes(), inc, tol).unwrap()
}

/// `setl_id → expected`.
fn expected(out: &BenefitOutput) -> BTreeMap<String, Decimal> {
    checks(out).into_iter().map(|c| (c.setl_id, c.expected)).collect()
}

fn exp_of(out: &BenefitOutput, id: &str) -> Decimal {
    *expected(out).get(id).unwrap_or_else(|| panic!("no check row for {id}"))
}

// ---- worked examples (POLICY-EXAMPLES.md) ----------------------------------------------------

#[test]
fn r1_ordinary_deductible_then_tier() {
    let rows = [
        res("A", "P1", "2024-03-02", "11000", "0"),
        res("B", "P1", "2024-06-11", "40000", "24000"),
        res("C", "P1", "2024-09-20", "90000", "58100"),
    ];
    let out = run(&rows);
    let c = checks(&out);
    assert_eq!(c.len(), 3);
    assert_eq!(
        c.iter().map(|c| (c.setl_id.as_str(), c.expected)).collect::<Vec<_>>(),
        vec![("A", d("0")), ("B", d("24000")), ("C", d("58100"))]
    );
    assert!(c.iter().all(|c| c.status == "checked" && c.diff.is_zero() && c.fund == "hifmi"));
    assert!(out.findings.is_empty());
    assert!(out.outreach.is_empty());
}

#[test]
fn r1_with_base_from_all_three_fields() {
    // inscp 60,000 − dedc 1,000 − hifp 8,000 = 51,000 cumulative after A (base 0 deductible-only
    // row of 11,000 below), so B expects F(62,000) = 0.6 × 51,000 = 30,600.
    let mut b = res("B", "P1", "2024-06-11", "60000", "30600");
    b.dedc = d("1000");
    b.hifp = d("8000");
    let out = run(&[res("A", "P1", "2024-03-02", "11000", "0"), b]);
    assert_eq!(exp_of(&out, "B"), d("30600"));
    assert!(out.findings.is_empty());
}

#[test]
fn r2_ordinary_cap() {
    let out =
        run(&[res("A", "P2", "2024-02-01", "599000", "400000"), res("B", "P2", "2024-05-01", "30000", "0")]);
    assert_eq!(exp_of(&out, "A"), d("400000"));
    assert_eq!(exp_of(&out, "B"), d("0"));
    assert!(out.findings.is_empty());
}

#[test]
fn r3_preferential_no_cap() {
    let mut a = res("A", "P3", "2024-01-15", "7500", "1300");
    let mut b = res("B", "P3", "2024-04-03", "800000", "590750");
    a.idet = "1102";
    b.idet = "1102";
    let out = run(&[a, b]);
    assert_eq!(exp_of(&out, "A"), d("1300"));
    assert_eq!(exp_of(&out, "B"), d("590750"));
    assert!(out.findings.is_empty());
}

#[test]
fn r4_reversal_netted_where_it_happens() {
    let a = res("A", "P4", "2024-01-10", "20000", "5400");
    let b = res("B", "P4", "2024-03-05", "50000", "30000");
    let a_rev = rev("A-rev", &a, "2024-05-02 09:00:00");
    let mut a2 = res("A2", "P4", "2024-01-10", "20000", "5400");
    a2.setl_time = "2024-05-02 09:30:00".into();
    let out = run(&[a2, a_rev, b, a]);
    let c = checks(&out);
    assert_eq!(
        c.iter().map(|c| (c.setl_id.as_str(), c.expected)).collect::<Vec<_>>(),
        vec![("A", d("5400")), ("B", d("30000")), ("A-rev", d("-5400")), ("A2", d("5400"))]
    );
    assert!(c.iter().all(|c| c.status == "checked" && c.diff.is_zero()));
    assert!(out.findings.is_empty(), "{:?}", out.findings);
}

#[test]
fn r4_reversal_mirrors_a_wrong_original_without_a_finding_of_its_own() {
    // A was overpaid by 100; its reversal refunds what was paid: only A is a finding.
    let a = res("A", "P4", "2024-01-10", "20000", "5500");
    let a_rev = rev("A-rev", &a, "2024-05-02 09:00:00");
    let out = run(&[a, res("B", "P4", "2024-03-05", "50000", "30000"), a_rev]);
    assert_eq!(out.findings.len(), 1);
    let f = &out.findings[0];
    assert_eq!((f.setl_id.as_str(), f.rule_id.as_str(), f.amount_at_risk), ("A", "BEN001", d("100")));
    let c = checks(&out);
    let r = c.iter().find(|c| c.setl_id == "A-rev").unwrap();
    assert_eq!((r.recorded, r.expected, r.diff), (d("-5500"), d("-5400"), d("-100")));
}

#[test]
fn e1_employee_policy_example_then_cap() {
    let rows = [
        emp("A", "E1", "2026-02-01", "94117.65", "80000", "0.85", "0"),
        emp("B", "E1", "2026-04-01", "30000", "10000", "0.85", "17323.53"),
        emp("C", "E1", "2026-07-01", "300000", "0", "0", "262676.47"),
        emp("D", "E1", "2026-10-01", "20000", "0", "0", "0"),
    ];
    let out = run(&rows);
    let c = checks(&out);
    assert_eq!(
        c.iter().map(|c| (c.setl_id.as_str(), c.fund.as_str(), c.expected)).collect::<Vec<_>>(),
        vec![
            ("A", "hifob", d("0")),
            ("B", "hifob", d("17323.53")),
            ("C", "hifob", d("262676.47")),
            ("D", "hifob", d("0"))
        ]
    );
    assert!(out.findings.is_empty());
}

#[test]
fn e1_mismatch_is_reported_with_the_employee_arithmetic() {
    let rows = [
        emp("A", "E1", "2026-02-01", "94117.65", "80000", "0.85", "0"),
        emp("B", "E1", "2026-04-01", "30000", "10000", "0.85", "18000"),
    ];
    let out = run(&rows);
    assert_eq!(out.findings.len(), 1);
    let f = &out.findings[0];
    assert_eq!(f.rule_id, "BEN002");
    assert_eq!(f.category, "benefit_mismatch");
    assert_eq!(f.amount_at_risk, d("676.47"));
    assert_eq!(f.severity, Severity::Medium);
    assert_eq!(f.psn_no.as_deref(), Some("E1"));
    assert_eq!(f.fixmedins_code.as_deref(), Some("H41110000001"));
    for part in ["18,000.00", "17,323.53", "676.47", "多付", "90,000.00", "18,235.29", "95%"] {
        assert!(f.detail.contains(part), "{part} missing in {}", f.detail);
    }
}

#[test]
fn tier_boundary_at_exactly_100000() {
    // B = 100,000: F = 0.6 × 89,000 = 53,400; one more yuan is on the 70 % tier.
    let out = run(&[
        res("A", "T1", "2024-02-01", "100000", "53400"),
        res("B", "T1", "2024-03-01", "1", "0.70"),
        res("C", "T1", "2024-04-01", "0.01", "0.01"),
    ]);
    assert_eq!(exp_of(&out, "A"), d("53400"));
    assert_eq!(exp_of(&out, "B"), d("0.70"));
    // F(100,001.01) = 53,400 + 0.707 → 53,400.71 rounded; minus 53,400.70 = 0.01
    assert_eq!(exp_of(&out, "C"), d("0.01"));
    // just below the bound
    let out = run(&[res("A", "T2", "2024-02-01", "99999.99", "53399.99")]);
    assert_eq!(exp_of(&out, "A"), d("53399.99"));
    assert!(out.findings.is_empty());
}

#[test]
fn only_curve_values_are_rounded() {
    // bases of 11,000.01 each: F(11,000.01) = 0.006 → 0.01; F(22,000.02) = 6,600.012 → 6,600.01
    let out = run(&[
        res("A", "R1", "2024-02-01", "11000.01", "0.01"),
        res("B", "R1", "2024-03-01", "11000.01", "6600.00"),
    ]);
    assert_eq!(exp_of(&out, "A"), d("0.01"));
    assert_eq!(exp_of(&out, "B"), d("6600.00"));
}

#[test]
fn group_changes_mid_year() {
    // A ordinary: F_ord(20,000) = 5,400.
    // B preferential (1102): F_pref(30,000) = 0.65 × 24,500 = 15,925 − 5,400 = 10,525.
    // C ordinary again (1104 is ordinary): F_ord(40,000) = 17,400 − 15,925 = 1,475.
    // D ordinary: F_ord(41,000) = 18,000 − 17,400 = 600.
    let a = S { idet: "1104", ..res("A", "G1", "2024-02-01", "20000", "5400") };
    let b = S { idet: "1102", ..res("B", "G1", "2024-05-01", "10000", "10525") };
    let c = S { idet: "1104", ..res("C", "G1", "2024-08-01", "10000", "1475") };
    let dd = res("D", "G1", "2024-09-01", "1000", "600");
    let out = run(&[a, b, c, dd]);
    assert_eq!(exp_of(&out, "A"), d("5400"));
    assert_eq!(exp_of(&out, "B"), d("10525"));
    assert_eq!(exp_of(&out, "C"), d("1475"));
    assert_eq!(exp_of(&out, "D"), d("600"));
    assert!(out.findings.is_empty());
}

#[test]
fn ordinary_row_after_preferential_overshoot_expects_nothing() {
    // B preferential F_pref(30,000) = 15,925 > F_ord(31,000) = 12,000 for C: max(0, …) = 0.
    let a = S { idet: "1101", ..res("A", "G2", "2024-02-01", "30000", "15925") };
    let c = res("C", "G2", "2024-08-01", "1000", "0");
    let out = run(&[a, c]);
    assert_eq!(exp_of(&out, "A"), d("15925"));
    assert_eq!(exp_of(&out, "C"), d("0"));
}

#[test]
fn sums_restart_every_insurance_year() {
    // enddate decides the year, not setl_time
    let a = res("A", "Y1", "2024-12-30", "40000", "17400");
    let mut b = res("B", "Y1", "2025-01-03", "40000", "17400");
    b.setl_time = "2025-01-05 08:00:00".into();
    let out = run(&[a, b]);
    assert_eq!(exp_of(&out, "A"), d("17400"));
    assert_eq!(exp_of(&out, "B"), d("17400"));
    assert!(out.findings.is_empty());
}

#[test]
fn reversal_belongs_to_the_year_of_its_original() {
    let a = res("A", "Y2", "2024-12-20", "20000", "5400");
    let mut r = rev("A-rev", &a, "2025-01-10 09:00:00");
    r.enddate = "2025-01-10".into(); // its own enddate lies in 2025: still 2024's sums
    let mut a2 = res("A2", "Y2", "2024-12-20", "20000", "5400");
    a2.setl_time = "2025-01-10 10:00:00".into();
    let out = run(&[a, r, a2]);
    assert_eq!(exp_of(&out, "A-rev"), d("-5400"));
    assert_eq!(exp_of(&out, "A2"), d("5400"));
    assert!(out.findings.is_empty());
    assert!(out.notes.iter().all(|n| !n.contains("2025年居民")), "{:?}", out.notes);
}

#[test]
fn incomplete_person_years_are_written_but_not_accused() {
    let rows = [
        res("A", "I1", "2024-02-01", "40000", "99999"),
        res("B", "I1", "2025-02-01", "40000", "99999"),
        res("C", "I2", "2024-02-01", "40000", "99999"),
    ];
    let mut inc = Incomplete::default();
    inc.by_year.insert(("I1".into(), 2024));
    inc.all_years.insert("I2".into());
    let out = run_with(&rows, &inc, None);
    let st: BTreeMap<String, String> = checks(&out).into_iter().map(|c| (c.setl_id, c.status)).collect();
    assert_eq!(st["A"], "incomplete");
    assert_eq!(st["B"], "checked");
    assert_eq!(st["C"], "incomplete");
    assert_eq!(out.findings.len(), 1);
    assert_eq!(out.findings[0].setl_id, "B");
    // still recalculated
    assert_eq!(exp_of(&out, "A"), d("17400"));
    assert_eq!(out.stats.incomplete_person_years, 2);
}

#[test]
fn reversal_with_missing_original_expects_zero_and_marks_the_year_incomplete() {
    let a = res("A", "M1", "2024-02-01", "40000", "12000");
    let ghost = res("GHOST", "M1", "2024-01-15", "20000", "5400");
    let r = rev("R", &ghost, "2024-03-01 09:00:00");
    let out = run(&[a, r]);
    let c = checks(&out);
    assert!(c.iter().all(|c| c.status == "incomplete"));
    assert_eq!(exp_of(&out, "R"), d("0"));
    assert!(out.findings.is_empty(), "A is wrong but the year is incomplete");
    assert_eq!(out.stats.orphan_reversals, 1);
    assert!(out.notes.iter().any(|n| n.contains("原结算缺失")));
}

#[test]
fn reversal_of_another_persons_settlement_is_an_orphan() {
    let a = res("A", "X1", "2024-02-01", "40000", "17400");
    let mut r = rev("R", &a, "2024-03-01 09:00:00");
    r.psn_no = "X2".into();
    let out = run(&[a, r]);
    let st: BTreeMap<String, String> = checks(&out).into_iter().map(|c| (c.setl_id, c.status)).collect();
    assert_eq!(st["A"], "checked");
    assert_eq!(st["R"], "incomplete");
}

#[test]
fn uncovered_care_expects_zero_and_adds_nothing() {
    let rows = [
        res("A", "U1", "2024-02-01", "20000", "5400"),
        S { med_type: "11", ..res("B", "U1", "2024-03-01", "50000", "500") },
        S { med_type: "41", ..res("C", "U1", "2024-03-02", "50000", "0") },
        res("D", "U1", "2024-04-01", "10000", "6000"),
    ];
    let out = run(&rows);
    let e = expected(&out);
    assert!(!e.contains_key("C"), "uncovered and unpaid: no row");
    assert_eq!(e["B"], d("0"));
    assert_eq!(e["D"], d("6000")); // F(30,000) − 5,400: B's base does not count
    assert_eq!(out.findings.len(), 1);
    let f = &out.findings[0];
    assert_eq!(f.setl_id, "B");
    assert!(f.detail.contains("普通门诊") && f.detail.contains("不在"), "{}", f.detail);
}

#[test]
fn unknown_med_type_makes_the_year_incomplete() {
    let rows = [
        res("A", "K1", "2024-02-01", "40000", "1"),
        S { med_type: "77", ..res("B", "K1", "2024-03-01", "1000", "0") },
        res("C", "K2", "2024-02-01", "40000", "17400"),
    ];
    let out = run(&rows);
    let st: BTreeMap<String, String> = checks(&out).into_iter().map(|c| (c.setl_id, c.status)).collect();
    assert_eq!(
        (st["A"].as_str(), st["B"].as_str(), st["C"].as_str()),
        ("incomplete", "incomplete", "checked")
    );
    assert!(out.findings.is_empty());
    assert_eq!(out.stats.unknown_med_type, 1);
    assert!(out.notes.iter().any(|n| n.contains("代码表")));
}

#[test]
fn another_funds_payment_should_not_be_made() {
    // an employee settlement recording a resident critical-illness payment
    let mut e = emp("A", "W1", "2024-02-01", "1000", "500", "0.85", "0");
    e.hifmi = d("300");
    let out = run(&[e]);
    let c = checks(&out);
    let hifmi: Vec<_> = c.iter().filter(|c| c.fund == "hifmi").collect();
    assert_eq!(hifmi.len(), 1);
    assert_eq!((hifmi[0].recorded, hifmi[0].expected), (d("300"), d("0")));
    assert_eq!(out.findings.len(), 1);
    assert!(out.findings[0].detail.contains("险种类型 310"), "{}", out.findings[0].detail);
}

#[test]
fn years_without_a_policy_are_not_checked_and_later_years_extend_it() {
    let out =
        run(&[res("A", "N1", "2023-06-01", "40000", "1"), res("B", "N1", "2026-06-01", "40000", "17400")]);
    let e = expected(&out);
    assert!(!e.contains_key("A"));
    assert_eq!(e["B"], d("17400"));
    assert!(out.notes.iter().any(|n| n.contains("2023年") && n.contains("未核算")), "{:?}", out.notes);
    assert!(out.notes.iter().any(|n| n.contains("2026年") && n.contains("沿用")), "{:?}", out.notes);
    assert_eq!(out.stats.not_checked, 1);
}

#[test]
fn severity_tolerance_and_underpayment_outreach() {
    let rows = [
        res("A", "O1", "2024-02-01", "40000", "17000"), // 400 short
        res("B", "O2", "2024-02-01", "40000", "17400.01"),
        res("C", "O3", "2024-02-01", "40000", "19400"), // 2,000 over
    ];
    let out = run(&rows);
    let by: BTreeMap<&str, _> = out.findings.iter().map(|f| (f.setl_id.as_str(), f)).collect();
    assert_eq!(by.len(), 2, "one cent is within the default tolerance");
    assert_eq!(by["A"].severity, Severity::Medium);
    assert!(by["A"].detail.contains("少付"));
    assert_eq!(by["C"].severity, Severity::High);
    assert_eq!(out.outreach.len(), 1);
    let o = &out.outreach[0];
    assert_eq!((o.psn_no.as_str(), o.fund, o.year, o.amount_owed), ("O1", "hifmi", 2024, d("400")));
    assert_eq!((o.psn_name.as_str(), o.certno.as_str()), ("张**", "4114**********1234"));
    assert_eq!(o.setl_ids, "A");
    let batch = medaudit::benefit::outreach::to_batch(&out.outreach).unwrap();
    assert_eq!(batch.num_rows(), 1);
    for f in &out.findings {
        assert!(!f.detail.contains("张三丰") && !f.detail.contains("411402198001011234"));
    }
    // a run tolerance of 0 flags the cent
    let out = run_with(&rows, &Incomplete::default(), Some(Decimal::ZERO));
    assert_eq!(out.findings.len(), 3);
    assert!(out.findings.iter().any(|f| f.setl_id == "B" && f.severity == Severity::Low));
}

#[test]
fn result_does_not_depend_on_row_order_or_batches() {
    let mut rows = Vec::new();
    for p in 0..6 {
        let psn = format!("Q{p}");
        let a = res(&format!("{psn}a"), &psn, "2024-01-10", "20000", "5400");
        let b = res(&format!("{psn}b"), &psn, "2024-03-05", "50000", "30001");
        let r = rev(&format!("{psn}r"), &a, "2024-05-02 09:00:00");
        let mut a2 = res(&format!("{psn}c"), &psn, "2024-01-10", "20000", "5000");
        a2.setl_time = "2024-05-02 09:30:00".into();
        let e = emp(&format!("{psn}e"), &psn, "2024-07-01", "200000", "90000", "0.9", "90000");
        rows.extend([a, b, r, a2, e]);
    }
    let reference = run(&rows);
    let key = |o: &BenefitOutput| {
        let mut f: Vec<String> = o
            .findings
            .iter()
            .map(|f| format!("{}|{}|{}|{}", f.setl_id, f.rule_id, f.amount_at_risk, f.detail))
            .collect();
        f.sort();
        (checks(o), f, o.outreach.clone(), o.notes.clone())
    };
    let want = key(&reference);
    assert!(!reference.findings.is_empty());
    let mut shuffled = rows.clone();
    shuffled.reverse();
    shuffled.rotate_left(7);
    for split in [1, 4, 13] {
        let batches: Vec<RecordBatch> = shuffled.chunks(split).map(setl_batch).collect();
        let out = recalculate(&batches, &policies(), &codes(), &Incomplete::default(), None).unwrap();
        assert_eq!(key(&out), want, "split {split}");
    }
}

// ---- properties ----------------------------------------------------------------------------

fn cents(max: i64) -> impl Strategy<Value = Decimal> {
    (0..=max).prop_map(|c| Decimal::new(c, 2))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Without reversals, a person-year's payments add up to the curve at its total, each is
    /// non-negative, and the running sum never passes the cap.
    #[test]
    fn resident_payments_add_up_to_the_curve(
        bases in prop::collection::vec(cents(30_000_000), 1..12),
        preferential in any::<bool>(),
    ) {
        let p = resident_params();
        let rows: Vec<KRow> = bases
            .iter()
            .map(|b| KRow { preferential, ..KRow::covered(*b, Decimal::ZERO, Decimal::ZERO) })
            .collect();
        let r = kernel::resident(&rows, &p);
        prop_assert!(!r.broken);
        let total: Decimal = bases.iter().sum();
        let sum: Decimal = r.rows.iter().map(|o| o.expected).sum();
        prop_assert_eq!(sum, p.curve(preferential).rounded(total));
        let mut e = Decimal::ZERO;
        for o in &r.rows {
            prop_assert!(o.expected >= Decimal::ZERO);
            prop_assert_eq!(o.expected, o.expected.round_dp(2));
            e += o.expected;
            if let Some(cap) = p.curve(preferential).cap {
                prop_assert!(e <= cap);
            }
        }
    }

    /// With reversals and group changes: ordinary rows never pay negative amounts, the
    /// ordinary cap is never passed while the person stays ordinary, and a reversal expects
    /// minus its original.
    #[test]
    fn resident_with_reversals_never_negative(
        spec in prop::collection::vec((cents(20_000_000), any::<bool>(), 0usize..4, any::<bool>()), 1..14),
    ) {
        let p = resident_params();
        let mut rows: Vec<KRow> = Vec::new();
        let mut reversed = vec![false; spec.len()];
        for (k, (b, pref, back, is_rev)) in spec.iter().enumerate() {
            let mut row = KRow { preferential: *pref, ..KRow::covered(*b, Decimal::ZERO, Decimal::ZERO) };
            if *is_rev && k > *back && !reversed[k - 1 - back] && matches!(rows[k - 1 - back].role, Role::Covered) {
                reversed[k - 1 - back] = true;
                row.role = Role::Reversal(k - 1 - back);
            }
            rows.push(row);
        }
        let r = kernel::resident(&rows, &p);
        prop_assert!(!r.broken);
        let all_ordinary = rows.iter().all(|x| !x.preferential);
        let mut e = Decimal::ZERO;
        for (k, o) in r.rows.iter().enumerate() {
            match rows[k].role {
                Role::Reversal(j) => prop_assert_eq!(o.expected, -r.rows[j].expected),
                _ => prop_assert!(o.expected >= Decimal::ZERO),
            }
            e += o.expected;
            if all_ordinary {
                prop_assert!(e <= d("400000"));
            }
        }
    }

    /// Employee: never negative, the running sum never passes 280,000, and rows below the
    /// pool cap expect nothing.
    #[test]
    fn employee_never_negative_and_capped(
        spec in prop::collection::vec((cents(50_000_000), cents(6_000_000), 0u32..=10_000), 1..12),
    ) {
        let p = employee_params();
        let rows: Vec<KRow> = spec
            .iter()
            .map(|(a, h, r)| KRow { pool_prop: Decimal::new(i64::from(*r), 4), ..KRow::covered(*a, Decimal::ZERO, *h) })
            .collect();
        let r = kernel::employee(&rows, &p);
        prop_assert!(!r.broken);
        let mut e = Decimal::ZERO;
        for o in &r.rows {
            prop_assert!(o.expected >= Decimal::ZERO);
            if o.cumulative < p.pool_cap {
                prop_assert_eq!(o.expected, Decimal::ZERO);
            }
            e += o.expected;
            prop_assert!(e <= p.cap);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The whole recalculation is independent of row order and batch boundaries.
    #[test]
    fn recalculation_independent_of_order_and_partitioning(
        spec in prop::collection::vec((0u8..4, cents(8_000_000), 1u32..360, any::<bool>(), 0u8..3), 1..40),
        seed in any::<u64>(),
        split in 1usize..9,
    ) {
        let mut rows: Vec<S> = Vec::new();
        for (k, (psn, amt, day, employee, kind)) in spec.iter().enumerate() {
            let day = (date("2024-01-01") + chrono::Days::new(u64::from(*day))).format("%Y-%m-%d").to_string();
            let id = format!("S{k:03}");
            let psn = format!("P{psn}");
            let recorded = (*amt / d("3")).round_dp(2).to_string();
            let row = if *employee {
                emp(&id, &psn, &day, &amt.to_string(), "95000", "0.85", &recorded)
            } else {
                res(&id, &psn, &day, &amt.to_string(), &recorded)
            };
            // kind 2: reverse the previous row of the same person, if any
            if *kind == 2
                && let Some(prev) = rows.iter().rev().find(|r| r.psn_no == psn && r.refd == "0").cloned()
            {
                let t = format!("{day} 11:00:00");
                let mut r = rev(&format!("{id}r"), &prev, &t);
                if r.setl_time < prev.setl_time {
                    r.setl_time = prev.setl_time.replace("10:00:00", "12:00:00");
                }
                rows.push(r);
                continue;
            }
            rows.push(row);
        }
        let reference = recalculate(&[setl_batch(&rows)], &policies(), &codes(), &Incomplete::default(), None).unwrap();
        // a seeded permutation
        let mut perm = rows.clone();
        let mut s = seed | 1;
        for i in (1..perm.len()).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            perm.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let batches: Vec<RecordBatch> = perm.chunks(split).map(setl_batch).collect();
        let other = recalculate(&batches, &policies(), &codes(), &Incomplete::default(), None).unwrap();
        prop_assert_eq!(checks(&reference), checks(&other));
        prop_assert_eq!(reference.findings, other.findings);
        prop_assert_eq!(reference.outreach, other.outreach);
    }
}

// ---- payment deadlines ---------------------------------------------------------------------

struct Pay {
    pay_id: &'static str,
    setl_id: &'static str,
    fund: &'static str,
    chnl: &'static str,
    dcla: &'static str,
    paid: Option<&'static str>,
    amt: &'static str,
}

fn pay_batch(rows: &[Pay]) -> RecordBatch {
    let schema = PAY.arrow_schema();
    let text = |f: &dyn Fn(&Pay) -> &str| -> ArrayRef {
        let mut b = StringBuilder::new();
        for r in rows {
            b.append_value(f(r));
        }
        Arc::new(b.finish())
    };
    let mut dcla = Date32Builder::new();
    let mut paid = Date32Builder::new();
    for r in rows {
        dcla.append_value(days(r.dcla));
        paid.append_option(r.paid.map(days));
    }
    let cols: Vec<ArrayRef> = vec![
        text(&|r| r.pay_id),
        text(&|r| r.setl_id),
        text(&|r| r.fund),
        text(&|r| r.chnl),
        Arc::new(dcla.finish()),
        Arc::new(paid.finish()),
        money_col(rows.iter().map(|r| d(r.amt)), 16, 2),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

fn pay(
    pay_id: &'static str,
    fund: &'static str,
    chnl: &'static str,
    dcla: &'static str,
    paid: Option<&'static str>,
) -> Pay {
    Pay { pay_id, setl_id: "S1", fund, chnl, dcla, paid, amt: "1000" }
}

#[test]
fn table_d_deadlines() {
    let setl = [setl_batch(&[res("S1", "D1", "2024-04-10", "40000", "17400")])];
    let pays = [pay_batch(&[
        pay("P1", "hifmi", "1", "2026-02-10", Some("2026-03-09")),
        pay("P2", "hifmi", "1", "2026-02-10", Some("2026-03-10")),
        pay("P3", "hifmi", "2", "2025-09-22", Some("2025-10-24")),
        pay("P4", "hifob", "1", "2024-04-22", Some("2024-06-04")),
        pay("P5", "hifob", "2", "2024-04-22", Some("2024-06-04")),
        pay("P6", "hifmi", "2", "2025-09-22", Some("2025-10-27")),
    ])];
    let out = check_deadlines(&pays, &setl, &policies(), &calendar(), date("2026-06-30")).unwrap();
    assert_eq!(out.checked, 6);
    assert!(out.undecided.is_empty());
    let late: Vec<&str> = out.findings.iter().map(|f| f.detail.as_str()).collect();
    assert_eq!(late.len(), 2, "{late:?}");
    let p2 = out.findings.iter().find(|f| f.detail.contains("2026-03-10")).unwrap();
    assert!(p2.detail.contains("截止日期 2026-03-09"), "{}", p2.detail);
    assert!(p2.detail.contains("用时 16 个工作日，超出 1 个工作日"), "{}", p2.detail);
    assert_eq!((p2.rule_id.as_str(), p2.category, p2.amount_at_risk), ("PAY001", "late_payment", d("1000")));
    assert_eq!(p2.severity, Severity::Medium);
    assert_eq!(p2.psn_no.as_deref(), Some("D1"));
    let p6 = out.findings.iter().find(|f| f.detail.contains("2025-10-27")).unwrap();
    assert!(
        p6.detail.contains("截止日期 2025-10-24") && p6.detail.contains("超出 1 个工作日"),
        "{}",
        p6.detail
    );
}

#[test]
fn unpaid_past_the_deadline_is_late_at_as_of() {
    let setl = [setl_batch(&[res("S1", "D2", "2026-02-01", "40000", "17400")])];
    let pays = [pay_batch(&[pay("U1", "hifmi", "1", "2026-02-10", None)])];
    let cal = calendar();
    let pol = policies();
    let on_deadline = check_deadlines(&pays, &setl, &pol, &cal, date("2026-03-09")).unwrap();
    assert!(on_deadline.findings.is_empty());
    assert_eq!(on_deadline.checked, 1);
    let after = check_deadlines(&pays, &setl, &pol, &cal, date("2026-03-11")).unwrap();
    assert_eq!(after.findings.len(), 1);
    let f = &after.findings[0];
    assert_eq!(f.severity, Severity::High);
    assert!(f.detail.contains("仍未支付") && f.detail.contains("截至 2026-03-11"), "{}", f.detail);
    assert!(f.detail.contains("用时 17 个工作日，超出 2 个工作日"), "{}", f.detail);
}

#[test]
fn deadline_beyond_the_calendar_is_undecided_naming_the_year() {
    let setl = [setl_batch(&[res("S1", "D3", "2026-12-01", "40000", "17400")])];
    let pays = [pay_batch(&[
        pay("B1", "hifmi", "1", "2026-12-20", Some("2027-01-20")),
        pay("B2", "hifmi", "1", "2026-12-20", Some("2026-12-22")), // decidable without 2027
        pay("B3", "hifmi", "1", "2026-12-20", None),
        pay("B4", "hifmi", "9", "2026-03-02", None), // no deadline for channel 9
        pay("B5", "hifmi", "1", "2023-06-01", None), // before the first resident policy
    ])];
    let out = check_deadlines(&pays, &setl, &policies(), &calendar(), date("2027-01-20")).unwrap();
    assert!(out.findings.is_empty());
    assert_eq!(out.checked, 1);
    let und: BTreeMap<&str, _> = out.undecided.iter().map(|u| (u.pay_id.as_str(), u)).collect();
    assert_eq!(und.len(), 3);
    assert_eq!(und["B1"].missing_year, Some(2027));
    assert!(und["B1"].reason.contains("2027"), "{}", und["B1"].reason);
    assert_eq!(und["B3"].missing_year, Some(2027));
    assert_eq!(und["B4"].missing_year, None);
    assert!(out.notes.iter().any(|n| n.contains("2027")));
    assert!(
        out.notes.iter().any(|n| n.contains("2023年") && n.contains("1 笔支付未核查")),
        "{:?}",
        out.notes
    );
}

#[test]
fn default_as_of_is_the_latest_input_date() {
    let setl = [setl_batch(&[res("S1", "D4", "2024-04-10", "40000", "17400")])];
    let pays = [pay_batch(&[
        pay("A1", "hifmi", "1", "2024-04-12", Some("2024-05-06")),
        pay("A2", "hifmi", "1", "2024-04-13", None),
    ])];
    assert_eq!(default_as_of(&setl, &pays), Some(date("2024-05-06")));
    assert_eq!(default_as_of(&setl, &[]), Some(date("2024-04-10")));
    assert_eq!(default_as_of(&[], &[]), None);
}

// ---- the shipped calendar ------------------------------------------------------------------

fn assert_days(cal: &Calendar, off: &[&str], worked: &[&str]) {
    for s in off {
        assert_eq!(cal.is_working_day(date(s)), Some(false), "{s} should be off");
    }
    for s in worked {
        assert_eq!(cal.is_working_day(date(s)), Some(true), "{s} should be worked");
    }
}

#[test]
fn calendar_2024() {
    let c = calendar();
    assert_days(
        &c,
        &[
            "2024-01-01",
            "2024-02-10",
            "2024-02-16",
            "2024-04-04",
            "2024-04-05",
            "2024-05-01",
            "2024-05-03",
            "2024-06-10",
            "2024-09-16",
            "2024-09-17",
            "2024-10-01",
            "2024-10-07",
        ],
        &[
            "2024-02-04",
            "2024-02-09",
            "2024-02-18",
            "2024-04-07",
            "2024-04-28",
            "2024-05-11",
            "2024-09-14",
            "2024-09-29",
            "2024-10-12",
            "2024-10-08",
        ],
    );
    assert_eq!(c.add_working_days(date("2024-04-22"), 30), Ok(date("2024-06-04")));
}

#[test]
fn calendar_2025() {
    let c = calendar();
    assert_days(
        &c,
        &[
            "2025-01-01",
            "2025-01-28",
            "2025-02-03",
            "2025-02-04",
            "2025-04-04",
            "2025-05-01",
            "2025-05-05",
            "2025-06-02",
            "2025-10-01",
            "2025-10-06",
            "2025-10-08",
        ],
        &["2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11", "2025-10-09"],
    );
    assert_eq!(c.add_working_days(date("2025-09-22"), 20), Ok(date("2025-10-24")));
}

#[test]
fn calendar_2026() {
    let c = calendar();
    assert_days(
        &c,
        &[
            "2026-01-01",
            "2026-01-02",
            "2026-02-16",
            "2026-02-23",
            "2026-04-06",
            "2026-05-01",
            "2026-05-05",
            "2026-06-19",
            "2026-09-25",
            "2026-10-01",
            "2026-10-07",
        ],
        &["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10", "2026-02-24"],
    );
    assert_eq!(c.add_working_days(date("2026-02-10"), 15), Ok(date("2026-03-09")));
    assert_eq!(c.years(), vec![2024, 2025, 2026]);
}

#[test]
fn a_users_calendar_folder_adds_a_year() {
    let dir = common::tempdir();
    for y in ["2024", "2025", "2026"] {
        let src = common::repo().join(format!("datasets/calendar/{y}.csv"));
        std::fs::copy(src, dir.path().join(format!("{y}.csv"))).unwrap();
    }
    std::fs::write(dir.path().join("2027.csv"), "date,kind,name\n2027-01-01,holiday,元旦\n").unwrap();
    let c = Calendar::load(dir.path()).unwrap();
    assert_eq!(c.is_working_day(date("2027-01-01")), Some(false));
    assert_eq!(c.add_working_days(date("2026-12-31"), 1), Ok(date("2027-01-04")));
    std::fs::write(dir.path().join("next.csv"), "date,kind,name\n").unwrap();
    assert!(Calendar::load(dir.path()).is_err());
}

#[test]
fn a_users_policy_folder_replaces_the_shipped_one() {
    let dir = common::tempdir();
    let src = std::fs::read_to_string(
        common::repo().join("datasets/policy/henan_resident_critical_illness_2024.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("h.toml"),
        src.replace("deductible = \"11000\"", "deductible = \"10000\""),
    )
    .unwrap();
    let p = PolicySet::load(dir.path()).unwrap();
    let out = recalculate(
        &[setl_batch(&[res("A", "UP", "2024-02-01", "20000", "6000")])],
        &p,
        &codes(),
        &Incomplete::default(),
        None,
    )
    .unwrap();
    assert_eq!(exp_of(&out, "A"), d("6000"));
    assert!(out.findings.is_empty());
    // the employee scheme is absent from this folder: nothing of it is checked
    assert!(p.for_fund(medaudit::benefit::Fund::Hifob, 2024).is_none());
}
