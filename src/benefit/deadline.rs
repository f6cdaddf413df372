//! Payment deadlines in working days (`POLICY.md`, "Payment deadlines").
//!
//! Day 0 is `dcla_date`; the deadline is the `N`-th working day after it, `N` from the policy
//! of the payment's fund and channel that serves the year of `dcla_date` (the contract in
//! force when the claim was received). Paying on the deadline day is on time. A payment is late when
//! `pay_date` is after the deadline, or when it is unpaid and `as_of` is after the deadline.
//!
//! The calendar is never guessed: when the deadline falls in a year the calendar lacks, the
//! verdict is still given if it can be without that year (paid, or as-of reached, within
//! `N` covered working days: on time); otherwise the payment is listed as undecided, naming
//! the missing year.
//!
//! Severity: `high` for a payment still unpaid past its deadline (money owed), `medium` for
//! one paid late.

use std::collections::{BTreeMap, HashMap, HashSet};

use arrow::array::{Array, RecordBatch};
use chrono::{Datelike, NaiveDate};
use rayon::prelude::*;
use rust_decimal::Decimal;

use super::calendar::{Calendar, Undecided};
use super::policy::{Fund, PolicySet};
use super::text::{self, IdHash, yuan};
use super::{DeadlineOutput, RULE_LATE};
use crate::error::Result;
use crate::findings::{Finding, Severity};
use crate::input_err;

/// A payment whose verdict cannot be decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndecidedItem {
    pub pay_id: String,
    pub setl_id: String,
    /// Why, in 简体中文 (names the missing calendar year where that is the cause).
    pub reason: String,
    /// The calendar year that is missing, if that is the cause.
    pub missing_year: Option<i32>,
}

/// What the settlement table tells about a paid settlement.
struct SetlInfo<'a> {
    psn_no: &'a str,
    fixmedins_code: &'a str,
}

enum Verdict {
    OnTime,
    Late(Finding),
    Undecided(UndecidedItem),
    /// No policy of the fund for the year.
    NoPolicy(Fund, i32),
}

/// Checks every payment of `pay` against its deadline at `as_of`.
pub fn check_deadlines(
    pay: &[RecordBatch],
    setl: &[RecordBatch],
    policies: &PolicySet,
    calendar: &Calendar,
    as_of: NaiveDate,
) -> Result<DeadlineOutput> {
    const P: &str = "pay";
    // the settlements paid
    let mut wanted: HashSet<&str, IdHash> = HashSet::default();
    for b in pay {
        let ids = text::text(b, P, "setl_id")?;
        for i in 0..ids.len() {
            wanted.insert(text::s(ids, i));
        }
    }
    let mut info: HashMap<&str, SetlInfo, IdHash> =
        HashMap::with_capacity_and_hasher(wanted.len(), IdHash::default());
    for b in setl {
        let ids = text::text(b, "setl", "setl_id")?;
        let psn = text::text(b, "setl", "psn_no")?;
        let fix = text::text(b, "setl", "fixmedins_code")?;
        for i in 0..ids.len() {
            let id = text::s(ids, i);
            if !wanted.contains(id) {
                continue;
            }
            info.insert(id, SetlInfo { psn_no: text::s(psn, i), fixmedins_code: text::s(fix, i) });
        }
    }

    let mut verdicts: Vec<(String, Verdict)> = Vec::new();
    for b in pay {
        let pay_id = text::text(b, P, "pay_id")?;
        let setl_id = text::text(b, P, "setl_id")?;
        let fund = text::text(b, P, "fund")?;
        let chnl = text::text(b, P, "pay_chnl")?;
        let dcla = text::date(b, P, "dcla_date")?;
        let paid = text::date(b, P, "pay_date")?;
        let amt = text::decimal(b, P, "pay_amt")?;
        let part: Vec<(String, Verdict)> = (0..pay_id.len())
            .into_par_iter()
            .map(|i| -> Result<(String, Verdict)> {
                let p = Payment {
                    pay_id: text::req(pay_id, i, P, "pay_id")?,
                    setl_id: text::req(setl_id, i, P, "setl_id")?,
                    fund: text::s(fund, i).trim(),
                    chnl: text::s(chnl, i).trim(),
                    dcla: text::day(dcla, i)
                        .ok_or_else(|| input_err!("pay.dcla_date: empty value in row {i}"))?,
                    paid: if paid.is_null(i) { None } else { text::day(paid, i) },
                    amount: text::dec(&amt, i, P, "pay_amt")?,
                };
                let v = p.verdict(info.get(p.setl_id), policies, calendar, as_of);
                Ok((p.pay_id.to_string(), v))
            })
            .collect::<Result<_>>()?;
        verdicts.extend(part);
    }
    verdicts.sort_by(|a, b| a.0.cmp(&b.0));

    let mut out = DeadlineOutput::default();
    let mut no_policy: BTreeMap<(Fund, i32), usize> = BTreeMap::new();
    for (_, v) in verdicts {
        match v {
            Verdict::OnTime => out.checked += 1,
            Verdict::Late(f) => {
                out.checked += 1;
                out.findings.push(f);
            }
            Verdict::Undecided(u) => out.undecided.push(u),
            Verdict::NoPolicy(f, y) => *no_policy.entry((f, y)).or_insert(0) += 1,
        }
    }
    out.notes.push(format!("支付时限核查截至日期 {as_of}；工作日历覆盖 {:?} 年。", calendar.years()));
    for ((f, y), n) in no_policy {
        out.notes.push(format!("{y}年{}：无适用政策文件，{n} 笔支付未核查时限。", f.label()));
    }
    let mut missing: BTreeMap<i32, usize> = BTreeMap::new();
    for u in &out.undecided {
        if let Some(y) = u.missing_year {
            *missing.entry(y).or_insert(0) += 1;
        }
    }
    for (y, n) in missing {
        out.notes.push(format!(
            "{n} 笔支付的时限无法判定：工作日历缺少 {y} 年，请补充 datasets/calendar/{y}.csv。"
        ));
    }
    Ok(out)
}

struct Payment<'a> {
    pay_id: &'a str,
    setl_id: &'a str,
    fund: &'a str,
    chnl: &'a str,
    dcla: NaiveDate,
    paid: Option<NaiveDate>,
    amount: Decimal,
}

impl Payment<'_> {
    fn undecided(&self, reason: String, missing_year: Option<i32>) -> Verdict {
        Verdict::Undecided(UndecidedItem {
            pay_id: self.pay_id.to_string(),
            setl_id: self.setl_id.to_string(),
            reason,
            missing_year,
        })
    }

    fn verdict(
        &self,
        s: Option<&SetlInfo>,
        policies: &PolicySet,
        cal: &Calendar,
        as_of: NaiveDate,
    ) -> Verdict {
        let Some(fund) = Fund::parse(self.fund) else {
            return self.undecided(format!("未知基金代码 {}，无法确定支付时限", self.fund), None);
        };
        // the contract in force when the claim was received governs the deadline
        let year = self.dcla.year();
        let Some((policy, _)) = policies.for_fund(fund, year) else {
            return Verdict::NoPolicy(fund, year);
        };
        let Some(dl) = policy.deadline(self.chnl) else {
            return self
                .undecided(format!("政策 {} 未规定支付渠道 {} 的支付时限", policy.id, self.chnl), None);
        };
        let n = dl.working_days;
        // the day the clock stops: payment, else the as-of date
        let stop = self.paid.unwrap_or(as_of);
        let deadline = match cal.add_working_days(self.dcla, n) {
            Ok(d) => d,
            Err(u) => {
                // the deadline is beyond coverage: on time if `stop` is within N covered days
                return match cal.working_days_between(self.dcla, stop) {
                    Ok(t) if t <= n => Verdict::OnTime,
                    _ => self.undecided(
                        format!(
                            "截止日期超出工作日历覆盖范围：{u}（申报日期 {}，时限 {n} 个工作日）",
                            self.dcla
                        ),
                        Some(u.missing_year),
                    ),
                };
            }
        };
        if stop <= deadline {
            return Verdict::OnTime;
        }
        let taken: std::result::Result<u32, Undecided> = cal.working_days_between(self.dcla, stop);
        let used = match taken {
            Ok(t) => format!("用时 {t} 个工作日，超出 {} 个工作日", t.saturating_sub(n)),
            Err(u) => format!("用时超过 {n} 个工作日（{u}，无法精确计数）"),
        };
        let chnl = match self.chnl {
            "1" => "直接结算（支付定点医药机构）",
            "2" => "手工报销（支付参保人）",
            _ => "支付",
        };
        let head = format!(
            "{}{chnl}超时：申报日期 {}，时限 {n} 个工作日（{}），截止日期 {deadline}；",
            fund.label(),
            self.dcla,
            dl.article
        );
        let (detail, severity) = match self.paid {
            Some(p) => (
                format!("{head}实际支付日期 {p}，{used}，支付金额 {} 元。", yuan(self.amount)),
                Severity::Medium,
            ),
            None => (
                format!("{head}截至 {as_of} 仍未支付，{used}，应付金额 {} 元。", yuan(self.amount)),
                Severity::High,
            ),
        };
        Verdict::Late(Finding {
            setl_id: self.setl_id.to_string(),
            psn_no: s.map(|s| s.psn_no.to_string()),
            fixmedins_code: s.map(|s| s.fixmedins_code.to_string()),
            rule_id: RULE_LATE.to_string(),
            category: "late_payment",
            severity,
            amount_at_risk: self.amount.abs(),
            detail,
            entity_type: "settlement",
            entity_id: self.setl_id.to_string(),
            feedetl_sns: None,
        })
    }
}

/// The latest `setl_time` (its date), `dcla_date` or `pay_date` of the input: the default
/// as-of date, so that a run is reproducible. `None` when there is none.
pub fn default_as_of(setl: &[RecordBatch], pay: &[RecordBatch]) -> Option<NaiveDate> {
    let mut best: Option<NaiveDate> = None;
    let mut see = |d: Option<NaiveDate>| {
        if let Some(d) = d
            && best.is_none_or(|b| d > b)
        {
            best = Some(d);
        }
    };
    for b in setl {
        if let Ok(t) = text::timestamp(b, "setl", "setl_time") {
            for i in 0..t.len() {
                if !t.is_null(i) {
                    see(text::secs_to_datetime(t.value(i)).map(|d| d.date()));
                }
            }
        }
    }
    for b in pay {
        for col in ["dcla_date", "pay_date"] {
            if let Ok(d) = text::date(b, "pay", col) {
                for i in 0..d.len() {
                    see(text::day(d, i));
                }
            }
        }
    }
    best
}
