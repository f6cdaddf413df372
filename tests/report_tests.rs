//! Reports (`medaudit report`): totals reconcile with sums computed directly from the generated
//! input files, due dates on holiday edges, fund accounting against hand-worked examples, the
//! case-store sections, the xlsx totals equal the HTML's, and bad report inputs are clear errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::NaiveDate;
use medaudit::benefit::{Calendar, Fund};
use medaudit::cases::{Actor, Confirmation, Party, Role, Status, Store};
use medaudit::report::config::{Shift, due_date, shifted};
use medaudit::report::{Cell, Period, ReportOptions, ReportingConfig, Source, account};
use rust_decimal::Decimal;

use crate::common::{repo, tempdir};

struct Fixture {
    input: PathBuf,
    run: PathBuf,
    cases: PathBuf,
    /// The month whose decisions were recorded (today) and the month of the deductions.
    decided_month: String,
    deducted_month: String,
    confirmed: Vec<(i64, Decimal)>,
    dismissed: usize,
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

/// Generated data (no malformed rows, so that every input row is accepted), one run over it,
/// and a case store with a few decisions and deductions.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let base =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("report-fixture-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let mut cfg = medaudit::synth::GenConfig::new(base.join("gen"), 1500, 5);
        cfg.malformed_rows = false;
        medaudit::synth::generate(&cfg).expect("generate");
        let input = base.join("gen/input");
        let run = base.join("run");
        medaudit::run::run(&medaudit::run::RunOptions {
            input: input.clone(),
            out: run.clone(),
            ..Default::default()
        })
        .expect("run");

        // A case store: merge, then decide a few cases today and deduct them next month.
        let cases = base.join("cases");
        let mut store = Store::open(&cases).unwrap();
        let admin = Actor::system("admin", &[Role::Admin]);
        let li = Actor::system("li", &[Role::Reviewer]);
        let wang = Actor::system("wang", &[Role::Reviewer]);
        store.merge_run(&admin, &run).unwrap();
        let rows: Vec<i64> = {
            let mut st = store
                .connection()
                .prepare(
                    "SELECT case_id FROM cases WHERE entity_type = 'settlement' AND status IN ('flagged','sampled')
                     ORDER BY case_id LIMIT 5",
                )
                .unwrap();
            st.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect()
        };
        assert_eq!(rows.len(), 5, "five cases to decide");
        let today = chrono::Local::now().date_naive();
        let mut confirmed = Vec::new();
        for (k, &id) in rows.iter().enumerate() {
            let st: String = store
                .connection()
                .query_row("SELECT status FROM cases WHERE case_id = ?1", [id], |r| r.get(0))
                .unwrap();
            if st == "flagged" {
                store.sample_case(&li, id, "报表测试").unwrap();
            }
            store.start_review(&li, id).unwrap();
            if k < 3 {
                let amount = Decimal::new(10_000 + 2_345 * k as i64, 2);
                store.confirm(&li, id, amount, "报表测试：确认违规", None, Some(today)).unwrap();
                for (who, party) in [(&wang, Party::Insurer), (&li, Party::Agency), (&li, Party::Facility)] {
                    let c = Confirmation { party, date: Some(today), reference: "确认函".into() };
                    store.record_confirmation(who, id, &c).unwrap();
                }
                confirmed.push((id, amount));
            } else {
                assert_eq!(store.dismiss(&li, id, "报表测试：排除").unwrap(), Status::Dismissed);
            }
        }
        let next = today.checked_add_months(chrono::Months::new(1)).unwrap();
        let deducted_month = next.format("%Y-%m").to_string();
        let done = store.record_deductions(&li, &deducted_month).unwrap();
        assert_eq!(done.len(), 3, "three deductions recorded");
        Fixture {
            input,
            run,
            cases,
            decided_month: today.format("%Y-%m").to_string(),
            deducted_month,
            confirmed,
            dismissed: 2,
        }
    })
}

fn opts(period: Period, with_cases: bool) -> ReportOptions {
    let f = fixture();
    ReportOptions {
        period,
        source: Source::Runs(vec![f.run.clone()]),
        inputs: Some(repo().join("datasets/report/sample")),
        cases: with_cases.then(|| f.cases.clone()),
        reporting: None,
        policy: None,
        calendar: None,
        generated_at: Some("测试".into()),
    }
}

/// Reads a CSV written by the generator into maps of its columns.
fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let h: Vec<String> =
        r.headers().unwrap().iter().map(|s| s.trim_start_matches('\u{feff}').to_string()).collect();
    r.records().map(|rec| h.iter().cloned().zip(rec.unwrap().iter().map(str::to_string)).collect()).collect()
}

/// Independent sums from `setl.csv`: recorded payment per (fund, YYYY-MM) of the insurance
/// month (the discharge date; a reversal takes its original's).
fn sums_by_month() -> BTreeMap<(Fund, String), Decimal> {
    let rows = read_csv(&fixture().input.join("setl.csv"));
    let end: BTreeMap<String, String> =
        rows.iter().map(|r| (r["setl_id"].clone(), r["enddate"].clone())).collect();
    let mut out: BTreeMap<(Fund, String), Decimal> = BTreeMap::new();
    for r in &rows {
        let mut day = r["enddate"].clone();
        if r["refd_setl_flag"] == "1"
            && let Some(o) = end.get(&r["init_setl_id"])
        {
            day = o.clone();
        }
        let month = day[..7].to_string();
        for (f, col) in [(Fund::Hifmi, "hifmi_pay"), (Fund::Hifob, "hifob_pay")] {
            let v = d(&r[col]);
            if !v.is_zero() {
                *out.entry((f, month.clone())).or_default() += v;
            }
        }
    }
    out
}

fn money(c: &Cell) -> Decimal {
    match c {
        Cell::Money(d) => *d,
        other => panic!("not money: {other:?}"),
    }
}

fn int(c: &Cell) -> i64 {
    match c {
        Cell::Int(i) => *i,
        other => panic!("not a count: {other:?}"),
    }
}

/// The month with the largest resident payments in the data.
fn busy_month() -> String {
    let sums = sums_by_month();
    sums.iter().filter(|((f, _), _)| *f == Fund::Hifmi).max_by_key(|(_, v)| **v).unwrap().0.1.clone()
}

#[test]
fn monthly_totals_reconcile_with_the_generated_data() {
    let month = busy_month();
    let r = medaudit::report::build(&opts(Period::month(&month).unwrap(), false)).unwrap();
    let sums = sums_by_month();
    let year = &month[..4];
    let t = r.table("income_expenditure").unwrap();
    let (c_month, c_ytd) = (t.col("本期支出（元）").unwrap(), t.col("本年累计支出（元）").unwrap());
    let mut grand = Decimal::ZERO;
    for (f, label) in [(Fund::Hifmi, "城乡居民大病保险"), (Fund::Hifob, "职工大额医疗费用补助")]
    {
        let row = t.row(&[label]).unwrap();
        let want_month = sums.get(&(f, month.clone())).copied().unwrap_or_default();
        let want_ytd: Decimal = sums
            .iter()
            .filter(|((g, m), _)| *g == f && m.starts_with(year) && m.as_str() <= month.as_str())
            .map(|(_, v)| *v)
            .sum();
        assert_eq!(money(&row[c_month]), want_month, "{label} {month}");
        assert_eq!(money(&row[c_ytd]), want_ytd, "{label} year to date");
        assert!(!want_ytd.is_zero() || f == Fund::Hifob, "the data has resident payments");
        grand += want_ytd;
    }
    assert_eq!(money(&t.totals().unwrap()[c_ytd]), grand);
    // The month-by-month trend adds up to the year to date, month by month.
    let trend = r.table("trend").unwrap();
    for row in &trend.rows {
        let Cell::Text(m) = &row[0] else { panic!() };
        assert_eq!(money(&row[1]), sums.get(&(Fund::Hifmi, m.clone())).copied().unwrap_or_default(), "{m}");
        assert_eq!(money(&row[2]), sums.get(&(Fund::Hifob, m.clone())).copied().unwrap_or_default(), "{m}");
    }
    assert_eq!(money(&trend.totals().unwrap()[3]), grand);
    // Allocations received and R come from the report inputs.
    let alloc = read_csv(&repo().join("datasets/report/sample/allocations.csv"));
    let want: Decimal = alloc
        .iter()
        .filter(|a| {
            a["fund"] == "hifmi" && a["alloc_date"].starts_with(year) && a["alloc_date"][..7] <= *month
        })
        .map(|a| d(&a["amount"]))
        .sum();
    let row = t.row(&["城乡居民大病保险"]).unwrap();
    assert_eq!(money(&row[t.col("本年累计拨付到账（元）").unwrap()]), want);

    // Payments by channel: paid in the month, from pay.csv.
    let pays = read_csv(&fixture().input.join("pay.csv"));
    let p = r.table("payments").unwrap();
    let mut want: BTreeMap<(String, String), (i64, Decimal)> = BTreeMap::new();
    for x in pays.iter().filter(|x| x["pay_date"].starts_with(&month)) {
        let e = want.entry((x["fund"].clone(), x["pay_chnl"].clone())).or_default();
        e.0 += 1;
        e.1 += d(&x["pay_amt"]);
    }
    let got_n: i64 = p.rows.iter().map(|r| int(&r[2])).sum();
    let got_amt: Decimal = p.rows.iter().map(|r| money(&r[3])).sum();
    assert_eq!(got_n, want.values().map(|v| v.0).sum::<i64>());
    assert_eq!(got_amt, want.values().map(|v| v.1).sum::<Decimal>());
    // Deadline verdicts add up to the payments due.
    let dl = r.table("deadline").unwrap();
    for row in &dl.rows {
        assert_eq!(int(&row[3]), (4..9).map(|i| int(&row[i])).sum::<i64>(), "{row:?}");
    }
    // The report names the run and its input files.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(r.provenance.run_ids, vec![manifest["run_id"].as_str().unwrap().to_string()]);
    assert!(r.provenance.input_files.iter().any(|f| f.table == "setl" && f.sha256.len() == 64));
}

#[test]
fn annual_breakdowns_and_accounting_reconcile() {
    let year: i32 = busy_month()[..4].parse().unwrap();
    let r = medaudit::report::build(&opts(Period::annual(year), false)).unwrap();
    let sums = sums_by_month();
    let total = |f: Fund| -> Decimal {
        sums.iter().filter(|((g, m), _)| *g == f && m.starts_with(&year.to_string())).map(|(_, v)| *v).sum()
    };
    let all = total(Fund::Hifmi) + total(Fund::Hifob);
    // Every breakdown of fund use adds up to the year's payments.
    for id in ["by_tier", "by_level", "by_area"] {
        let t = r.table(id).unwrap();
        let tot = t.totals().unwrap();
        assert_eq!(money(&tot[1]), total(Fund::Hifmi), "{id}");
        assert_eq!(money(&tot[2]), total(Fund::Hifob), "{id}");
        assert_eq!(money(&tot[3]), all, "{id}");
    }
    // In-area vs out-of-area from the settlement's two regions, computed here.
    let rows = read_csv(&fixture().input.join("setl.csv"));
    let end: BTreeMap<String, String> =
        rows.iter().map(|r| (r["setl_id"].clone(), r["enddate"].clone())).collect();
    let mut out_of_area = Decimal::ZERO;
    for x in &rows {
        let day = if x["refd_setl_flag"] == "1" {
            end.get(&x["init_setl_id"]).unwrap_or(&x["enddate"])
        } else {
            &x["enddate"]
        };
        if day.starts_with(&year.to_string()) && x["insu_admdvs"][..4] != x["fix_blng_admdvs"][..4] {
            out_of_area += d(&x["hifmi_pay"]) + d(&x["hifob_pay"]);
        }
    }
    let area = r.table("by_area").unwrap();
    let got = area.row(&["异地就医"]).map(|r| money(&r[3])).unwrap_or_default();
    assert_eq!(got, out_of_area);

    // Accounting: P of the year against R of the sample inputs, as POLICY.md defines it.
    let raised = read_csv(&repo().join("datasets/report/sample/funds_raised.csv"));
    let r_of = |f: &str| {
        d(&raised.iter().find(|x| x["year"] == year.to_string() && x["fund"] == f).unwrap()["amount"])
    };
    let (_, rec, _) = r.accounts.iter().find(|(f, _, _)| *f == Fund::Hifmi).unwrap();
    let rr = r_of("hifmi");
    assert_eq!(rec.r, rr);
    assert_eq!(rec.p, total(Fund::Hifmi));
    assert_eq!(rec.loss_ratio, total(Fund::Hifmi) / rr);
    assert_eq!(rec.risk_reserve, (rr * d("0.05")).round_dp(2));
    assert_eq!(rec.assessment_deposit, (rr * d("0.03")).round_dp(2));
    assert_eq!(rec.insurer_profit + rec.returned - rec.loss, rr - total(Fund::Hifmi));
    let (_, ob, _) = r.accounts.iter().find(|(f, _, _)| *f == Fund::Hifob).unwrap();
    assert_eq!(ob.ceiling, d("0.04"));
    assert_eq!(ob.risk_reserve, Decimal::ZERO);
}

#[test]
fn fund_accounting_matches_the_hand_worked_examples() {
    // 大病: R = 10,000,000, P = 9,500,000. Loss ratio 95 %, profit 500,000 = 5 % > 3 %:
    // the insurer keeps 300,000, 200,000 go to the provincial fiscal account; reserve 5 % =
    // 500,000 and deposit 3 % = 300,000 withheld.
    let a = account(Fund::Hifmi, d("10000000"), d("9500000"), d("0.03"), d("0.05"), d("0.03")).unwrap();
    assert_eq!(a.loss_ratio, d("0.95"));
    assert_eq!(a.profit_rate, d("0.05"));
    assert_eq!(a.ceiling_amount, d("300000.00"));
    assert_eq!(a.insurer_profit, d("300000.00"));
    assert_eq!(a.returned, d("200000.00"));
    assert_eq!((a.risk_reserve, a.assessment_deposit), (d("500000.00"), d("300000.00")));
    // 大额: 20,000 persons × 120 = 2,400,000, P = 2,350,000: profit 50,000 = 2.0833 % < 4 %:
    // all of it is the insurer's, nothing returned (第十八条(2)).
    let b = account(Fund::Hifob, d("2400000"), d("2350000"), d("0.04"), d("0"), d("0")).unwrap();
    assert_eq!(b.insurer_profit, d("50000"));
    assert_eq!(b.returned, Decimal::ZERO);
    assert_eq!(b.profit_rate.round_dp(6), d("0.020833"));
    // A policy loss: R = 1,000,000, P = 1,060,000: loss 60,000; the insurer bears up to its
    // 3 % = 30,000, the other 30,000 come from the risk reserve / next year's funding.
    let c = account(Fund::Hifmi, d("1000000"), d("1060000"), d("0.03"), d("0.05"), d("0.03")).unwrap();
    assert_eq!(c.loss, d("60000"));
    assert_eq!(c.insurer_bears, d("30000.00"));
    assert_eq!(c.from_reserve, d("30000.00"));
    assert_eq!(c.profit_rate, d("-0.06"));
    // Exactly at the ceiling: nothing returned.
    let e = account(Fund::Hifob, d("1000000"), d("960000"), d("0.04"), d("0"), d("0")).unwrap();
    assert_eq!((e.insurer_profit, e.returned), (d("40000"), Decimal::ZERO));
    // R must be positive.
    assert!(account(Fund::Hifmi, Decimal::ZERO, d("1"), d("0.03"), d("0.05"), d("0.03")).is_err());
}

#[test]
fn due_dates_follow_the_calendar_on_holiday_edges() {
    let cal = Calendar::load_default().unwrap();
    let cfg = ReportingConfig::load_default().unwrap();
    let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let monthly = |y, m| due_date(&cfg.due.monthly, y, m, &cal).unwrap();
    // September 2025: the 5th of October is in the National Day holiday (1–8 October).
    let sep = monthly(2025, 9);
    assert_eq!(sep.nominal, day("2025-10-05"));
    assert_eq!(sep.due, Some(day("2025-10-09")));
    assert!(sep.note.contains("国庆节") && sep.note.contains("顺延"), "{}", sep.note);
    // April 2026: 1–5 May is Labour Day.
    assert_eq!(monthly(2026, 4).due, Some(day("2026-05-06")));
    // December 2024: 5 January 2025 is a Sunday.
    assert_eq!(monthly(2024, 12).due, Some(day("2025-01-06")));
    // July 2025: 5 August is a Tuesday, not moved.
    let jul = monthly(2025, 7);
    assert_eq!(jul.due, Some(day("2025-08-05")));
    assert!(jul.note.is_empty());
    // January 2025: 5 February is within the Spring Festival (28 January – 4 February)? No:
    // the 4th is the last holiday, the 5th a Wednesday.
    assert_eq!(monthly(2025, 1).due, Some(day("2025-02-05")));
    // The calendar has no 2027: the report for December 2026 is undecided, never guessed.
    let dec = monthly(2026, 12);
    assert_eq!(dec.due, None);
    assert!(dec.note.contains("2027"), "{}", dec.note);
    // Quarterly: the 5th after the quarter; Q1 2026: 5 April is 清明 (4–6 April) → the 7th.
    assert_eq!(due_date(&cfg.due.quarterly, 2026, 3, &cal).unwrap().due, Some(day("2026-04-07")));
    // Half-year and annual: fixed days, not moved.
    assert_eq!(due_date(&cfg.due.half_year, 2025, 6, &cal).unwrap().due, Some(day("2025-07-15")));
    assert_eq!(due_date(&cfg.due.annual, 2025, 12, &cal).unwrap().due, Some(day("2026-01-20")));
    // A deadline "before the 10th" moves back: 10 February 2024 is in the Spring Festival.
    assert_eq!(shifted(day("2024-02-10"), Shift::PreviousWorkingDay, &cal).due, Some(day("2024-02-09")));
    // …and a make-up working day (Sunday 4 February 2024, 调休上班) is a working day.
    assert_eq!(shifted(day("2024-02-04"), Shift::NextWorkingDay, &cal).due, Some(day("2024-02-04")));
}

#[test]
fn case_store_sections_count_the_decisions_and_deductions() {
    let f = fixture();
    let r = medaudit::report::build(&opts(Period::month(&f.decided_month).unwrap(), true)).unwrap();
    let audits = r.table("audits").unwrap();
    let tot = audits.totals().unwrap();
    assert_eq!(int(&tot[2]), (f.confirmed.len() + f.dismissed) as i64, "reviewed");
    assert_eq!(int(&tot[3]), f.confirmed.len() as i64, "confirmed");
    assert_eq!(int(&tot[4]), f.dismissed as i64, "dismissed");
    let want: Decimal = f.confirmed.iter().map(|c| c.1).sum();
    assert_eq!(money(&tot[5]), want);

    let r = medaudit::report::build(&opts(Period::month(&f.deducted_month).unwrap(), true)).unwrap();
    let ded = r.table("deductions").unwrap();
    let tot = ded.totals().unwrap();
    assert_eq!(int(&tot[2]), f.confirmed.len() as i64);
    assert_eq!(money(&tot[3]), want);
    // Without a case store the section says so instead of inventing figures.
    let r = medaudit::report::build(&opts(Period::month(&f.deducted_month).unwrap(), false)).unwrap();
    let ded = r.table("deductions").unwrap();
    assert!(ded.rows.is_empty() && ded.notes.iter().any(|n| n.contains("--cases")));
}

/// The cached values of the `SUM` formulas of every sheet, in sheet order.
fn xlsx_totals(path: &Path) -> Vec<Decimal> {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for i in 1..=zip.len() {
        let Ok(mut f) = zip.by_name(&format!("xl/worksheets/sheet{i}.xml")) else { continue };
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        for part in s.split("<f>").skip(1) {
            let v = part.split("<v>").nth(1).unwrap().split("</v>").next().unwrap();
            out.push(d(v));
        }
    }
    out
}

/// The numeric cells of every 合计 row of the page, in table order.
fn html_totals(page: &str) -> Vec<Decimal> {
    let mut out = Vec::new();
    for part in page.split("<tr class=\"total\">").skip(1) {
        let row = part.split("</tr>").next().unwrap();
        for cell in row.split("<td class=\"n\">").skip(1) {
            let v = cell.split("</td>").next().unwrap().replace(',', "");
            if let Ok(x) = v.parse::<Decimal>() {
                out.push(x);
            }
        }
    }
    out
}

#[test]
fn xlsx_and_html_are_written_atomically_and_their_totals_agree() {
    let f = fixture();
    let tmp = tempdir();
    for period in [
        Period::month(&busy_month()).unwrap(),
        Period::quarter(&format!("{}-Q2", &busy_month()[..4])).unwrap(),
        Period::half_year(busy_month()[..4].parse().unwrap()),
    ] {
        let r = medaudit::report::build(&opts(period, true)).unwrap();
        let out = tmp.path().join(period.stem());
        let dir = medaudit::report::write(&r, &out).unwrap();
        let (x, h) = medaudit::report::file_names(&r);
        let page = std::fs::read_to_string(dir.join(&h)).unwrap();
        let xt = xlsx_totals(&dir.join(&x));
        let ht = html_totals(&page);
        assert!(!xt.is_empty(), "the workbook has totals");
        let book = {
            use std::io::Read;
            let mut z = zip::ZipArchive::new(std::fs::File::open(dir.join(&x)).unwrap()).unwrap();
            let mut s = String::new();
            z.by_name("xl/workbook.xml").unwrap().read_to_string(&mut s).unwrap();
            s
        };
        assert!(book.contains("name=\"封面\"") && book.contains("name=\"资金收支情况\""), "{book}");
        if period.kind != medaudit::report::Kind::Monthly {
            assert!(book.contains("name=\"按医院等级\""), "{book}");
        }
        assert_eq!(xt, ht, "{}", period.stem());
        // Chinese headings, the due date, the run id, inline SVG, no script, a CJK font stack.
        assert!(page.contains("资金收支情况") && page.contains("报送截止日"));
        assert!(page.contains(&r.provenance.run_ids[0]));
        assert!(page.contains("<svg") && !page.contains("<script"));
        assert!(page.contains("Noto Sans CJK SC"));
        assert!(dir.join("charts/trend.svg").exists() && dir.join("charts/trend.html").exists());
        // Nothing left behind in the parent but the published folder.
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty());
    }
    let _ = f;
}

#[test]
fn bad_report_inputs_are_clear_errors() {
    let tmp = tempdir();
    let write = |name: &str, text: &str| std::fs::write(tmp.path().join(name), text).unwrap();
    write("funds_raised.csv", "year,fund,amount,note\n2025,hifmi,100.00,\n2025,hifob,12.3x,\n");
    let e = medaudit::report::inputs::read(Some(tmp.path())).unwrap_err().to_string();
    assert!(e.contains("funds_raised.csv") && e.contains("line 3") && e.contains("amount"), "{e}");
    write("funds_raised.csv", "year,fund,amount,note\n2025,hifmi,100.00,\n2025,hifmi,200.00,\n");
    let e = medaudit::report::inputs::read(Some(tmp.path())).unwrap_err().to_string();
    assert!(e.contains("given twice"), "{e}");
    write("funds_raised.csv", "\u{feff}year,fund,amount,note\n2025,hifmi,100.00,\n");
    write("allocations.csv", "alloc_date,fund,amount\n2025-01-05,hifmi,1.00\n");
    let e = medaudit::report::inputs::read(Some(tmp.path())).unwrap_err().to_string();
    assert!(e.contains("allocations.csv") && e.contains("reference"), "{e}");
    write("allocations.csv", "alloc_date,fund,amount,reference\n2025-13-05,hifmi,1.00,x\n");
    let e = medaudit::report::inputs::read(Some(tmp.path())).unwrap_err().to_string();
    assert!(e.contains("alloc_date") && e.contains("2025-13-05"), "{e}");
    write("allocations.csv", "alloc_date,fund,amount,reference\n2025-01-05,hifxx,1.00,x\n");
    let e = medaudit::report::inputs::read(Some(tmp.path())).unwrap_err().to_string();
    assert!(e.contains("hifxx"), "{e}");
    std::fs::remove_file(tmp.path().join("allocations.csv")).unwrap();
    write("premium_base.csv", "month,insured_persons\n2025-01,-3\n");
    let e = medaudit::report::inputs::read(Some(tmp.path())).unwrap_err().to_string();
    assert!(e.contains("insured_persons"), "{e}");
    // The shipped sample reads.
    let ok = medaudit::report::inputs::read(Some(&repo().join("datasets/report/sample"))).unwrap();
    assert_eq!(ok.raised(Fund::Hifob, 2026), Some(d("373200.00")));
    assert!(ok.missing.is_empty());
    // A period that is not one is refused.
    assert!(Period::month("2025-13").is_err() && Period::quarter("2025-Q5").is_err());
}

#[test]
fn a_report_from_the_nightly_store_equals_the_one_from_the_run() {
    let f = fixture();
    let tmp = tempdir();
    let store = tmp.path().join("store");
    let o = medaudit::nightly::NightlyOptions {
        inbox: f.input.clone(),
        store: store.clone(),
        ..Default::default()
    };
    match medaudit::nightly::nightly(&o).unwrap() {
        medaudit::nightly::Outcome::Audited(_) => {}
        other => panic!("expected an audited night, got {other:?}"),
    }
    let year: i32 = busy_month()[..4].parse().unwrap();
    let from_run = medaudit::report::build(&opts(Period::annual(year), false)).unwrap();
    let mut o = opts(Period::annual(year), false);
    o.source = Source::Store(store);
    let from_store = medaudit::report::build(&o).unwrap();
    assert_eq!(from_store.provenance.kind, "store");
    for id in ["income_expenditure", "trend", "by_tier", "by_level", "by_area", "payments", "deadline"] {
        assert_eq!(from_run.table(id).unwrap().rows, from_store.table(id).unwrap().rows, "{id}");
    }
}
