//! The reporting configuration (`datasets/report/reporting.toml`): fund-accounting parameters
//! per fund and year, the due dates of the reports and of the quarterly funding requests.
//! Every number is data (POLICY.md "Fund accounting", "Reporting calendar").

use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::benefit::{Calendar, Fund};
use crate::error::{Error, Result};

/// Fund-accounting parameters of one fund from one insurance year on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountingParams {
    pub fund: String,
    pub from_year: i32,
    /// Profit-rate ceiling (含运营成本), a share of R.
    pub profit_ceiling: Decimal,
    /// Risk adjustment reserve withheld, a share of R.
    pub risk_reserve: Decimal,
    /// Assessment deposit withheld, a share of R.
    pub assessment_deposit: Decimal,
    /// Where a surplus above the ceiling goes.
    pub surplus_to: String,
    /// Premium per insured person and month (employee subsidy), if the contract fixes one.
    #[serde(default)]
    pub premium_per_month: Option<Decimal>,
    pub article: String,
}

/// How a due date that is not a working day moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shift {
    NextWorkingDay,
    PreviousWorkingDay,
    None,
}

/// A due-date rule: `day` of the month `months_after` months after the period's last month.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DueRule {
    pub months_after: u32,
    pub day: u32,
    pub shift: Shift,
    pub article: String,
}

/// The due rules of the four report kinds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DueRules {
    pub monthly: DueRule,
    pub quarterly: DueRule,
    pub half_year: DueRule,
    pub annual: DueRule,
}

/// The quarterly funding request of a fund: `day` of the quarter's first month.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FundingRequest {
    pub fund: String,
    pub day: u32,
    pub shift: Shift,
    pub article: String,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportingConfig {
    pub accounting: Vec<AccountingParams>,
    pub due: DueRules,
    #[serde(default)]
    pub funding_request: Vec<FundingRequest>,
    #[serde(skip)]
    pub path: PathBuf,
}

/// A due date and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDate {
    /// The date the rule names before any shift.
    pub nominal: NaiveDate,
    /// The date after the shift; `None` when the calendar lacks the year.
    pub due: Option<NaiveDate>,
    /// Why it moved or why it is undecided, in 简体中文 (empty when it did not move).
    pub note: String,
}

impl ReportingConfig {
    /// The shipped file.
    pub fn load_default() -> Result<Self> {
        Self::load(&crate::paths::datasets_dir().join("report/reporting.toml"))
    }

    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        Self::parse(&text, path)
    }

    /// Parses and checks the text of a file.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut c: ReportingConfig = toml::from_str(text).map_err(|e| Error::config(path, e.to_string()))?;
        c.path = path.to_path_buf();
        for a in &c.accounting {
            if Fund::parse(&a.fund).is_none() {
                return Err(Error::config(path, format!("accounting: unknown fund `{}`", a.fund)));
            }
            for (name, v) in [
                ("profit_ceiling", a.profit_ceiling),
                ("risk_reserve", a.risk_reserve),
                ("assessment_deposit", a.assessment_deposit),
            ] {
                if v < Decimal::ZERO || v >= Decimal::ONE {
                    return Err(Error::config(
                        path,
                        format!(
                            "accounting {} {}: {name} = {v} is not a share in [0, 1)",
                            a.fund, a.from_year
                        ),
                    ));
                }
            }
        }
        for f in &c.funding_request {
            if Fund::parse(&f.fund).is_none() {
                return Err(Error::config(path, format!("funding_request: unknown fund `{}`", f.fund)));
            }
        }
        for (name, r) in [
            ("monthly", &c.due.monthly),
            ("quarterly", &c.due.quarterly),
            ("half_year", &c.due.half_year),
            ("annual", &c.due.annual),
        ] {
            if r.day == 0 || r.day > 28 {
                return Err(Error::config(path, format!("due.{name}: day {} must be 1..=28", r.day)));
            }
        }
        for f in &c.funding_request {
            if f.day == 0 || f.day > 28 {
                return Err(Error::config(path, format!("funding_request {}: day must be 1..=28", f.fund)));
            }
        }
        Ok(c)
    }

    /// The accounting parameters of a fund for an insurance year.
    pub fn accounting_for(&self, fund: Fund, year: i32) -> Option<&AccountingParams> {
        self.accounting
            .iter()
            .filter(|a| a.fund == fund.as_str() && a.from_year <= year)
            .max_by_key(|a| a.from_year)
    }
}

/// The first day of the month `months` months after (year, month).
pub fn add_months(year: i32, month: u32, months: u32) -> Option<(i32, u32)> {
    let idx = year.checked_mul(12)?.checked_add(month as i32 - 1)?.checked_add(months as i32)?;
    Some((idx.div_euclid(12), idx.rem_euclid(12) as u32 + 1))
}

/// Applies a shift to a nominal date with the working-day calendar.
pub fn shifted(nominal: NaiveDate, shift: Shift, calendar: &Calendar) -> DueDate {
    let mut d = nominal;
    let step = match shift {
        Shift::None => return DueDate { nominal, due: Some(nominal), note: String::new() },
        Shift::NextWorkingDay => 1i64,
        Shift::PreviousWorkingDay => -1,
    };
    // A holiday span is never longer than a few weeks: 60 days bounds the walk.
    for _ in 0..60 {
        match calendar.is_working_day(d) {
            None => {
                return DueDate {
                    nominal,
                    due: None,
                    note: format!("工作日历缺少 {} 年，无法确定报送日期", d.year()),
                };
            }
            Some(true) => {
                let note = if d == nominal {
                    String::new()
                } else {
                    let why = calendar.day_name(nominal).unwrap_or("休息日");
                    let dir = if step > 0 { "顺延" } else { "提前" };
                    format!("{} 为{why}，{dir}至 {}", nominal.format("%Y-%m-%d"), d.format("%Y-%m-%d"))
                };
                return DueDate { nominal, due: Some(d), note };
            }
            Some(false) => match d.checked_add_signed(chrono::Duration::days(step)) {
                Some(n) => d = n,
                None => break,
            },
        }
    }
    DueDate { nominal, due: None, note: "60 天内没有工作日，无法确定报送日期".into() }
}

/// The due date of a rule for a period whose last month is (year, month).
pub fn due_date(rule: &DueRule, year: i32, month: u32, calendar: &Calendar) -> Result<DueDate> {
    let (y, m) = add_months(year, month, rule.months_after)
        .ok_or_else(|| crate::input_err!("due date of {year}-{month:02} out of range"))?;
    let nominal = NaiveDate::from_ymd_opt(y, m, rule.day)
        .ok_or_else(|| crate::input_err!("due date {y}-{m:02}-{:02} does not exist", rule.day))?;
    Ok(shifted(nominal, rule.shift, calendar))
}
