//! The report model: a report is a title, a due date, its provenance and a list of tables and
//! charts, computed from the audit data (DataFusion SQL over the run's or store's Parquet),
//! the case store (SQL over SQLite) and the report's own inputs. Money is `Decimal` end to end.
//! The writers (`xlsx`, `html`) only lay the model out.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Decimal128Type, Int64Type, UInt64Type};
use chrono::{Datelike, NaiveDate};
use datafusion::prelude::SessionContext;
use rust_decimal::Decimal;

use super::config::{DueDate, ReportingConfig};
use super::inputs::ReportInputs;
use super::source::Provenance;
use crate::benefit::policy::{Formula, round_cent};
use crate::benefit::{Calendar, Fund, PolicySet};
use crate::error::{Error, Result};

/// The kind of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Monthly,
    Quarterly,
    HalfYear,
    Annual,
}

impl Kind {
    /// The report's name in 简体中文.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Monthly => "月报表",
            Kind::Quarterly => "季度报表",
            Kind::HalfYear => "半年运行分析报告",
            Kind::Annual => "年度运行分析报告",
        }
    }
}

/// The months a report covers (one calendar year).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub kind: Kind,
    pub year: i32,
    pub first_month: u32,
    pub last_month: u32,
}

impl Period {
    /// `YYYY-MM`.
    pub fn month(s: &str) -> Result<Self> {
        let d = NaiveDate::parse_from_str(&format!("{}-01", s.trim()), "%Y-%m-%d")
            .map_err(|_| crate::input_err!("`{s}` is not a month YYYY-MM"))?;
        Ok(Period { kind: Kind::Monthly, year: d.year(), first_month: d.month(), last_month: d.month() })
    }
    /// `YYYY-Qn`.
    pub fn quarter(s: &str) -> Result<Self> {
        let bad = || crate::input_err!("`{s}` is not a quarter YYYY-Qn (n = 1..4)");
        let (y, q) = s.trim().split_once(['-']).ok_or_else(bad)?;
        let year: i32 = y.parse().map_err(|_| bad())?;
        let q: u32 = q.strip_prefix(['Q', 'q']).and_then(|q| q.parse().ok()).ok_or_else(bad)?;
        if !(1..=4).contains(&q) {
            return Err(bad());
        }
        Ok(Period { kind: Kind::Quarterly, year, first_month: 3 * q - 2, last_month: 3 * q })
    }
    pub fn half_year(year: i32) -> Self {
        Period { kind: Kind::HalfYear, year, first_month: 1, last_month: 6 }
    }
    pub fn annual(year: i32) -> Self {
        Period { kind: Kind::Annual, year, first_month: 1, last_month: 12 }
    }
    pub fn start(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.first_month, 1).unwrap_or_default()
    }
    pub fn end(&self) -> NaiveDate {
        month_end(self.year, self.last_month)
    }
    /// 1 January of the year: the start of the year-to-date figures.
    pub fn year_start(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, 1, 1).unwrap_or_default()
    }
    /// `2026年3月`, `2026年第1季度`, `2026年上半年`, `2026年度`.
    pub fn label(&self) -> String {
        match self.kind {
            Kind::Monthly => format!("{}年{}月", self.year, self.first_month),
            Kind::Quarterly => format!("{}年第{}季度", self.year, self.last_month / 3),
            Kind::HalfYear => format!("{}年上半年", self.year),
            Kind::Annual => format!("{}年度", self.year),
        }
    }
    /// File name stem: `monthly-2026-03`, `quarterly-2026-Q1`, `half-year-2026`, `annual-2026`.
    pub fn stem(&self) -> String {
        match self.kind {
            Kind::Monthly => format!("monthly-{}-{:02}", self.year, self.first_month),
            Kind::Quarterly => format!("quarterly-{}-Q{}", self.year, self.last_month / 3),
            Kind::HalfYear => format!("half-year-{}", self.year),
            Kind::Annual => format!("annual-{}", self.year),
        }
    }
}

fn month_end(year: i32, month: u32) -> NaiveDate {
    let (y, m) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).and_then(|d| d.pred_opt()).unwrap_or_default()
}

/// One cell of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// Yuan.
    Money(Decimal),
    Int(i64),
    /// A ratio shown as a percentage; `None` when undefined (division by zero, missing R).
    Pct(Option<Decimal>),
    Date(NaiveDate),
    Empty,
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Self {
        Cell::Text(s.into())
    }
}

/// A table of the report. When `total` is set, a 合计 row sums its money and count columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Stable id (tests and anchors).
    pub id: String,
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    pub total: bool,
    pub notes: Vec<String>,
}

impl Table {
    fn new(id: &str, title: &str, columns: &[&str]) -> Self {
        Table {
            id: id.into(),
            title: title.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
            total: false,
            notes: Vec::new(),
        }
    }

    /// The 合计 row: money and count columns summed, the first column `合计`.
    pub fn totals(&self) -> Option<Vec<Cell>> {
        if !self.total || self.rows.is_empty() {
            return None;
        }
        let mut out = vec![Cell::Empty; self.columns.len()];
        for (c, slot) in out.iter_mut().enumerate() {
            let mut money: Option<Decimal> = None;
            let mut int: Option<i64> = None;
            for r in &self.rows {
                match r.get(c) {
                    Some(Cell::Money(d)) => money = Some(money.unwrap_or_default() + d),
                    Some(Cell::Int(i)) => int = Some(int.unwrap_or_default() + i),
                    _ => {}
                }
            }
            *slot = match (money, int) {
                (Some(m), _) => Cell::Money(m),
                (None, Some(i)) => Cell::Int(i),
                _ => Cell::Empty,
            };
        }
        if let Some(first) = out.first_mut() {
            *first = Cell::text("合计");
        }
        Some(out)
    }

    /// The first row whose first cells are the given texts.
    pub fn row(&self, keys: &[&str]) -> Option<&Vec<Cell>> {
        self.rows.iter().find(|r| keys.iter().enumerate().all(|(i, k)| r.get(i) == Some(&Cell::text(*k))))
    }

    /// The index of a column by name.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

/// A series of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub values: Vec<Decimal>,
}

/// How a chart is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    /// Vertical bars, one group per category (trends).
    Columns,
    /// Horizontal bars of one series (rankings, breakdowns).
    Bars,
    /// Horizontal stacked bars: each category's series add up (compliance).
    Stacked,
}

/// A chart of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub id: String,
    pub title: String,
    pub kind: ChartKind,
    /// Unit shown on the axis (`元`, `笔`).
    pub unit: String,
    pub categories: Vec<String>,
    pub series: Vec<Series>,
}

/// The fund accounting of one fund and year for one measure of `P` (POLICY.md).
#[derive(Debug, Clone, PartialEq)]
pub struct FundAccount {
    pub fund: Fund,
    /// Funds raised (筹集资金总额).
    pub r: Decimal,
    /// Benefits.
    pub p: Decimal,
    /// `P / R`.
    pub loss_ratio: Decimal,
    /// `R − P` (结余, operating cost included).
    pub balance: Decimal,
    /// `(R − P) / R`.
    pub profit_rate: Decimal,
    pub ceiling: Decimal,
    /// `ceiling × R`, to the cent.
    pub ceiling_amount: Decimal,
    /// The insurer's profit (at most `ceiling_amount`; 0 when there is a loss).
    pub insurer_profit: Decimal,
    /// The surplus above the ceiling, returned (大病: 省财政专户; 大额: 甲方).
    pub returned: Decimal,
    /// A loss (`P − R` when positive).
    pub loss: Decimal,
    /// A policy loss: what the insurer bears (up to `ceiling_amount`).
    pub insurer_bears: Decimal,
    /// A policy loss: the rest, from the risk reserve / next year's funding.
    pub from_reserve: Decimal,
    pub risk_reserve: Decimal,
    pub assessment_deposit: Decimal,
}

/// Fund accounting as POLICY.md defines it. `R` must be positive. Shares are exact; money
/// amounts derived from shares are rounded to the cent, half away from zero.
pub fn account(
    fund: Fund,
    r: Decimal,
    p: Decimal,
    ceiling: Decimal,
    reserve_rate: Decimal,
    deposit_rate: Decimal,
) -> Result<FundAccount> {
    if r <= Decimal::ZERO {
        return Err(crate::input_err!("funds raised must be positive to compute a loss ratio, got {r}"));
    }
    let loss_ratio = p.checked_div(r).ok_or_else(|| crate::input_err!("loss ratio overflow"))?;
    let balance = r - p;
    let profit_rate = balance.checked_div(r).ok_or_else(|| crate::input_err!("profit rate overflow"))?;
    let ceiling_amount = round_cent(ceiling * r);
    let (insurer_profit, returned, loss, insurer_bears, from_reserve) = if balance >= Decimal::ZERO {
        let profit = balance.min(ceiling_amount);
        (profit, balance - profit, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO)
    } else {
        let loss = -balance;
        let bears = loss.min(ceiling_amount);
        (Decimal::ZERO, Decimal::ZERO, loss, bears, loss - bears)
    };
    Ok(FundAccount {
        fund,
        r,
        p,
        loss_ratio,
        balance,
        profit_rate,
        ceiling,
        ceiling_amount,
        insurer_profit,
        returned,
        loss,
        insurer_bears,
        from_reserve,
        risk_reserve: round_cent(reserve_rate * r),
        assessment_deposit: round_cent(deposit_rate * r),
    })
}

/// A whole report.
#[derive(Debug, Clone)]
pub struct Report {
    pub period: Period,
    /// `2026年3月 大病保险/大额补助 月报表`.
    pub title: String,
    pub due: DueDate,
    pub due_article: String,
    pub generated_at: String,
    pub provenance: Provenance,
    /// Report input files and their sha256.
    pub input_files: Vec<(String, String)>,
    pub tables: Vec<Table>,
    pub charts: Vec<Chart>,
    /// Accounting per fund (recorded and expected `P`) where `R` is known.
    pub accounts: Vec<(Fund, FundAccount, FundAccount)>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn table(&self, id: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.id == id)
    }
}

// ---- query helpers ----------------------------------------------------------------------

/// A value of a query result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Str(String),
    Dec(Decimal),
    Int(i64),
    Date(NaiveDate),
    Null,
}

impl Val {
    fn s(&self) -> String {
        match self {
            Val::Str(s) => s.clone(),
            Val::Int(i) => i.to_string(),
            Val::Dec(d) => d.to_string(),
            Val::Date(d) => d.to_string(),
            Val::Null => String::new(),
        }
    }
    fn d(&self) -> Decimal {
        match self {
            Val::Dec(d) => *d,
            Val::Int(i) => Decimal::from(*i),
            _ => Decimal::ZERO,
        }
    }
    fn i(&self) -> i64 {
        match self {
            Val::Int(i) => *i,
            Val::Dec(d) => rust_decimal::prelude::ToPrimitive::to_i64(&d.trunc()).unwrap_or(0),
            _ => 0,
        }
    }
    fn date(&self) -> Option<NaiveDate> {
        if let Val::Date(d) = self { Some(*d) } else { None }
    }
}

fn values(b: &RecordBatch) -> Result<Vec<Vec<Val>>> {
    let mut cols: Vec<Vec<Val>> = Vec::with_capacity(b.num_columns());
    for c in b.columns() {
        let n = c.len();
        let mut v = Vec::with_capacity(n);
        match c.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let c =
                    arrow::compute::cast(c, &DataType::Utf8).map_err(|e| Error::arrow("report query", e))?;
                let a = c.as_string::<i32>();
                for i in 0..n {
                    v.push(if a.is_null(i) { Val::Null } else { Val::Str(a.value(i).to_string()) });
                }
            }
            DataType::Decimal128(_, s) => {
                let a = c.as_primitive::<Decimal128Type>();
                for i in 0..n {
                    v.push(if a.is_null(i) {
                        Val::Null
                    } else {
                        Val::Dec(
                            Decimal::try_from_i128_with_scale(a.value(i), *s as u32)
                                .map_err(|e| Error::arrow("report query", e))?,
                        )
                    });
                }
            }
            DataType::Int64 => {
                let a = c.as_primitive::<Int64Type>();
                for i in 0..n {
                    v.push(if a.is_null(i) { Val::Null } else { Val::Int(a.value(i)) });
                }
            }
            DataType::UInt64 => {
                let a = c.as_primitive::<UInt64Type>();
                for i in 0..n {
                    v.push(if a.is_null(i) { Val::Null } else { Val::Int(a.value(i) as i64) });
                }
            }
            DataType::Date32 => {
                let a = c.as_primitive::<Date32Type>();
                for i in 0..n {
                    v.push(if a.is_null(i) {
                        Val::Null
                    } else {
                        NaiveDate::from_num_days_from_ce_opt(a.value(i) + 719_163)
                            .map_or(Val::Null, Val::Date)
                    });
                }
            }
            t => {
                let c = arrow::compute::cast(c, &DataType::Int64)
                    .map_err(|e| Error::arrow(format!("report query: column of type {t}"), e))?;
                let a = c.as_primitive::<Int64Type>();
                for i in 0..n {
                    v.push(if a.is_null(i) { Val::Null } else { Val::Int(a.value(i)) });
                }
            }
        }
        cols.push(v);
    }
    let rows = b.num_rows();
    Ok((0..rows).map(|r| cols.iter().map(|c| c[r].clone()).collect()).collect())
}

pub(crate) async fn query(ctx: &SessionContext, sql: &str) -> Result<Vec<Vec<Val>>> {
    let df = ctx.sql(sql).await.map_err(|e| Error::df("report query", e))?;
    let batches = df.collect().await.map_err(|e| Error::df("report query", e))?;
    let mut out = Vec::new();
    for b in &batches {
        out.extend(values(b)?);
    }
    Ok(out)
}

pub(crate) async fn scalar_i64(ctx: &SessionContext, sql: &str) -> Result<i64> {
    Ok(query(ctx, sql).await?.first().and_then(|r| r.first()).map(Val::i).unwrap_or(0))
}

fn lit(d: NaiveDate) -> String {
    format!("DATE '{}'", d.format("%Y-%m-%d"))
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

// ---- labels -----------------------------------------------------------------------------

fn fund_label(f: Fund) -> &'static str {
    match f {
        Fund::Hifmi => "城乡居民大病保险",
        Fund::Hifob => "职工大额医疗费用补助",
    }
}

fn chnl_label(c: &str) -> String {
    match c {
        "1" => "直接结算（支付至定点机构）".into(),
        "2" => "手工报销（支付至参保人）".into(),
        o => format!("渠道 {o}"),
    }
}

fn category_label(c: &str) -> &str {
    match c {
        "impersonation" => "冒名顶替",
        "duplicate_billing" => "重复收费/结算",
        "out_of_area" => "异地就医",
        "split_admission" => "分解住院",
        "phantom_stay" => "挂床住院",
        "overcharge" => "超标准收费",
        "restricted_item" => "限定性别/年龄项目",
        "benefit_mismatch" => "待遇支付与政策不符",
        "late_payment" => "超过支付时限",
        "statistical_outlier" => "统计异常",
        "injury_review" => "意外伤害核查",
        "data_quality" => "数据质量",
        o => o,
    }
}

/// Everything a report needs besides the data session.
pub struct Context<'a> {
    pub ctx: &'a SessionContext,
    pub tables: &'a [String],
    pub provenance: Provenance,
    pub inputs: &'a ReportInputs,
    pub config: &'a ReportingConfig,
    pub policies: &'a PolicySet,
    pub calendar: &'a Calendar,
    /// The case store's connection, if one was given.
    pub cases: Option<&'a rusqlite::Connection>,
    /// Rule id → Chinese title.
    pub rule_titles: BTreeMap<String, String>,
    pub generated_at: String,
}

/// Builds a report.
pub async fn build(c: &Context<'_>, period: Period) -> Result<Report> {
    let rule = match period.kind {
        Kind::Monthly => &c.config.due.monthly,
        Kind::Quarterly => &c.config.due.quarterly,
        Kind::HalfYear => &c.config.due.half_year,
        Kind::Annual => &c.config.due.annual,
    };
    let due = super::config::due_date(rule, period.year, period.last_month, c.calendar)?;
    let mut r = Report {
        period,
        title: format!("{} 城乡居民大病保险 / 职工大额医疗费用补助 {}", period.label(), period.kind.title()),
        due,
        due_article: rule.article.clone(),
        generated_at: c.generated_at.clone(),
        provenance: c.provenance.clone(),
        input_files: c.inputs.files.iter().map(|(p, h)| (p.display().to_string(), h.clone())).collect(),
        tables: Vec::new(),
        charts: Vec::new(),
        accounts: Vec::new(),
        notes: Vec::new(),
    };
    create_views(c).await?;
    let monthly = period.kind == Kind::Monthly;
    r.tables.push(income_expenditure(c, &period).await?);
    if !monthly {
        accounting(c, &period, &mut r).await?;
    }
    r.tables.push(payments_by_channel(c, &period).await?);
    let (compliance, chart) = deadline_compliance(c, &period).await?;
    r.tables.push(compliance);
    r.charts.push(chart);
    if !monthly {
        for (id, title, expr) in [
            ("by_tier", "（一）按待遇类别（倾斜支付）", tier_expr(c, period.year)),
            ("by_level", "（二）按医院等级", LEVEL_EXPR.to_string()),
            ("by_area", "（三）本地就医与异地就医", AREA_EXPR.to_string()),
        ] {
            let t = breakdown(c, &period, id, title, &expr).await?;
            if id != "by_tier" {
                r.charts.push(breakdown_chart(&t, id));
            }
            r.tables.push(t);
        }
    }
    let (trend, trend_chart) = trend(c, &period).await?;
    r.tables.push(trend);
    r.charts.insert(0, trend_chart);
    r.tables.push(inspections(c, &period).await?);
    r.tables.push(audits_by_rule(c, &period)?);
    if monthly {
        r.tables.push(deductions(c, &period)?);
    } else {
        r.tables.push(top_facilities(c, &period)?);
    }
    let (rules, rules_chart) = top_rules(c, &period, if monthly { 20 } else { 10 }).await?;
    r.tables.push(rules);
    r.charts.push(rules_chart);
    if period.kind == Kind::Quarterly {
        r.tables.push(funding_request(c, &period).await?);
    }
    number_titles(&mut r.tables);
    if c.inputs.missing.contains(&"funds_raised") {
        r.notes.push("未提供筹资总额（funds_raised.csv）：赔付率、盈利率等无法计算。".into());
    }
    Ok(r)
}

const SECTION_NUMBERS: [&str; 16] = [
    "一", "二", "三", "四", "五", "六", "七", "八", "九", "十", "十一", "十二", "十三", "十四", "十五",
    "十六",
];

/// Numbers the section titles 一、二、… (sub-tables starting with （ keep theirs).
fn number_titles(tables: &mut [Table]) {
    let mut n = 0;
    for t in tables.iter_mut() {
        if t.title.starts_with('（') {
            continue;
        }
        if let Some(num) = SECTION_NUMBERS.get(n) {
            t.title = format!("{num}、{}", t.title);
        }
        n += 1;
    }
}

async fn create_views(c: &Context<'_>) -> Result<()> {
    let has_medins = c.tables.iter().any(|t| t == "medins");
    let (level, join) = if has_medins {
        (
            "COALESCE(NULLIF(TRIM(s.hosp_lv), ''), m.hosp_lv)",
            "LEFT JOIN (SELECT fixmedins_code, MAX(hosp_lv) AS hosp_lv FROM medins GROUP BY fixmedins_code) m \
             ON m.fixmedins_code = s.fixmedins_code",
        )
    } else {
        ("NULLIF(TRIM(s.hosp_lv), '')", "")
    };
    // A reversal belongs to the insurance year (and month) of the settlement it cancels.
    let sql = format!(
        "CREATE OR REPLACE VIEW report_bc AS
         SELECT b.setl_id, b.fund, b.recorded, b.expected, b.status,
                COALESCE(o.enddate, s.enddate) AS d,
                s.fixmedins_code, s.insu_admdvs, s.fix_blng_admdvs, s.psn_idet_type,
                {level} AS hosp_lv
         FROM benefit_check b
         JOIN setl s ON s.setl_id = b.setl_id
         LEFT JOIN (SELECT setl_id, enddate FROM setl) o
           ON s.refd_setl_flag = '1' AND o.setl_id = s.init_setl_id
         {join}"
    );
    c.ctx.sql(&sql).await.map_err(|e| Error::df("creating the report view", e))?;
    let sql = "CREATE OR REPLACE VIEW report_setl_day AS
         SELECT s.setl_id, COALESCE(o.enddate, s.enddate) AS d
         FROM setl s LEFT JOIN (SELECT setl_id, enddate FROM setl) o
           ON s.refd_setl_flag = '1' AND o.setl_id = s.init_setl_id";
    c.ctx.sql(sql).await.map_err(|e| Error::df("creating the report view", e))?;
    Ok(())
}

/// Sums per fund of the benefit checks in [from, to]: (recorded, expected, paid rows).
async fn fund_sums(
    c: &Context<'_>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<BTreeMap<Fund, (Decimal, Decimal, i64)>> {
    let rows = query(
        c.ctx,
        &format!(
            "SELECT fund, SUM(recorded), SUM(expected), SUM(CASE WHEN recorded <> 0 THEN 1 ELSE 0 END)
             FROM report_bc WHERE d BETWEEN {} AND {} GROUP BY fund",
            lit(from),
            lit(to)
        ),
    )
    .await?;
    let mut out = BTreeMap::new();
    for r in rows {
        if let Some(f) = Fund::parse(&r[0].s()) {
            out.insert(f, (r[1].d(), r[2].d(), r[3].i()));
        }
    }
    Ok(out)
}

fn allocations_in(inputs: &ReportInputs, fund: Fund, from: NaiveDate, to: NaiveDate) -> Decimal {
    inputs
        .allocations
        .iter()
        .filter(|a| a.fund == fund && a.alloc_date >= from && a.alloc_date <= to)
        .map(|a| a.amount)
        .sum()
}

fn premium_due(c: &Context<'_>, year: i32, to_month: u32) -> Option<Decimal> {
    let per_month = c.config.accounting_for(Fund::Hifob, year)?.premium_per_month?;
    let rows: Vec<_> =
        c.inputs.premium_base.iter().filter(|p| p.year == year && p.month <= to_month).collect();
    if rows.is_empty() {
        return None;
    }
    Some(per_month * Decimal::from(rows.iter().map(|p| p.insured_persons).sum::<u64>()))
}

async fn income_expenditure(c: &Context<'_>, p: &Period) -> Result<Table> {
    let period = fund_sums(c, p.start(), p.end()).await?;
    let ytd = fund_sums(c, p.year_start(), p.end()).await?;
    let mut t = Table::new(
        "income_expenditure",
        "资金收支情况",
        &[
            "险种",
            "年度筹资总额（元）",
            "本期拨付到账（元）",
            "本年累计拨付到账（元）",
            "本期支出（元）",
            "本年累计支出（元）",
            "本期核算应付（元）",
            "本年累计核算应付（元）",
            "本期支付人次",
            "累计支出/筹资总额",
        ],
    );
    t.total = true;
    for f in Fund::ALL {
        let (pr, pe, pn) = period.get(&f).copied().unwrap_or_default();
        let (yr, ye, _) = ytd.get(&f).copied().unwrap_or_default();
        let raised = c.inputs.raised(f, p.year);
        t.rows.push(vec![
            Cell::text(fund_label(f)),
            raised.map_or(Cell::Empty, Cell::Money),
            Cell::Money(allocations_in(c.inputs, f, p.start(), p.end())),
            Cell::Money(allocations_in(c.inputs, f, p.year_start(), p.end())),
            Cell::Money(pr),
            Cell::Money(yr),
            Cell::Money(pe),
            Cell::Money(ye),
            Cell::Int(pn),
            Cell::Pct(raised.and_then(|r| if r > Decimal::ZERO { yr.checked_div(r) } else { None })),
        ]);
    }
    t.notes.push(
        "支出为大病保险资金（hifmi_pay）/大额补助资金（hifob_pay）的记录支付额，按出院日期（结束日期）归属月份和保险年度，冲销归属被冲销结算的月份；核算应付为按政策重算的应付金额（benefit_check.expected）。"
            .into(),
    );
    if let Some(due) = premium_due(c, p.year, p.last_month) {
        t.notes.push(format!(
            "职工大额补助保费基数：截至本期末按每人每月 {} 元应征 {} 元（premium_base.csv）。",
            c.config
                .accounting_for(Fund::Hifob, p.year)
                .and_then(|a| a.premium_per_month)
                .unwrap_or_default(),
            super::html::yuan(due)
        ));
    }
    Ok(t)
}

async fn accounting(c: &Context<'_>, p: &Period, r: &mut Report) -> Result<()> {
    let ytd = fund_sums(c, p.year_start(), p.end()).await?;
    let mut t = Table::new(
        "accounting",
        "资金盈亏与清算测算",
        &[
            "项目",
            "大病保险（记录支出）",
            "大病保险（核算应付）",
            "大额补助（记录支出）",
            "大额补助（核算应付）",
        ],
    );
    let mut cols: Vec<Option<FundAccount>> = Vec::new();
    for f in Fund::ALL {
        let (rec, exp, _) = ytd.get(&f).copied().unwrap_or_default();
        let params = c.config.accounting_for(f, p.year);
        match (c.inputs.raised(f, p.year), params) {
            (Some(raised), Some(a)) => {
                let ar = account(f, raised, rec, a.profit_ceiling, a.risk_reserve, a.assessment_deposit)?;
                let ae = account(f, raised, exp, a.profit_ceiling, a.risk_reserve, a.assessment_deposit)?;
                cols.push(Some(ar.clone()));
                cols.push(Some(ae.clone()));
                r.accounts.push((f, ar, ae));
            }
            _ => {
                cols.push(None);
                cols.push(None);
            }
        }
    }
    type Getter = fn(&FundAccount) -> Cell;
    let items: [(&str, Getter); 14] = [
        ("筹集资金总额 R", |a| Cell::Money(a.r)),
        ("待遇支出 P（本年累计）", |a| Cell::Money(a.p)),
        ("赔付率 P/R", |a| Cell::Pct(Some(a.loss_ratio))),
        ("结余 R−P（含运营成本）", |a| Cell::Money(a.balance)),
        ("盈利率 (R−P)/R", |a| Cell::Pct(Some(a.profit_rate))),
        ("盈利率上限", |a| Cell::Pct(Some(a.ceiling))),
        ("盈利上限金额", |a| Cell::Money(a.ceiling_amount)),
        ("乙方盈利", |a| Cell::Money(a.insurer_profit)),
        ("超出上限返还/上缴", |a| Cell::Money(a.returned)),
        ("亏损额", |a| Cell::Money(a.loss)),
        ("政策性亏损：乙方承担", |a| Cell::Money(a.insurer_bears)),
        ("政策性亏损：风险调节金/下年度筹资弥补", |a| Cell::Money(a.from_reserve)),
        ("风险调节金（预留）", |a| Cell::Money(a.risk_reserve)),
        ("年度考核保证金（预留）", |a| Cell::Money(a.assessment_deposit)),
    ];
    for (name, get) in items {
        let mut row = vec![Cell::text(name)];
        row.extend(cols.iter().map(|a| a.as_ref().map_or(Cell::Empty, get)));
        t.rows.push(row);
    }
    for f in Fund::ALL {
        if let Some(a) = c.config.accounting_for(f, p.year) {
            t.notes.push(format!(
                "{}：盈利率上限 {}%，风险调节金 {}%，考核保证金 {}%，超出上限部分转入{}（{}）。",
                fund_label(f),
                (a.profit_ceiling * Decimal::from(100)).normalize(),
                (a.risk_reserve * Decimal::from(100)).normalize(),
                (a.assessment_deposit * Decimal::from(100)).normalize(),
                a.surplus_to,
                a.article
            ));
        }
    }
    if p.kind != Kind::Annual {
        t.notes.push(format!(
            "本表为截至{}的年内测算（P 为本年累计支出，R 为全年筹资总额），不是年度清算结果。",
            p.end().format("%Y-%m-%d")
        ));
    }
    t.notes.push("非政策性亏损由乙方全部承担；亏损性质由甲方认定。".into());
    r.tables.push(t);
    Ok(())
}

async fn payments_by_channel(c: &Context<'_>, p: &Period) -> Result<Table> {
    let mut t = Table::new(
        "payments",
        "资金支付情况（按支付渠道）",
        &["险种", "支付渠道", "本期支付笔数", "本期支付金额（元）", "本年累计支付金额（元）"],
    );
    t.total = true;
    if !c.tables.iter().any(|x| x == "pay") {
        t.notes.push("未提供支付记录（pay 表）。".into());
        return Ok(t);
    }
    let rows = query(
        c.ctx,
        &format!(
            "SELECT fund, pay_chnl,
                SUM(CASE WHEN pay_date >= {s} THEN 1 ELSE 0 END),
                SUM(CASE WHEN pay_date >= {s} THEN pay_amt ELSE CAST(0 AS DECIMAL(18,2)) END),
                SUM(pay_amt)
             FROM pay WHERE pay_date BETWEEN {ys} AND {e}
             GROUP BY fund, pay_chnl ORDER BY fund, pay_chnl",
            s = lit(p.start()),
            ys = lit(p.year_start()),
            e = lit(p.end())
        ),
    )
    .await?;
    for r in rows {
        let f = Fund::parse(&r[0].s());
        t.rows.push(vec![
            Cell::text(f.map(fund_label).unwrap_or("未知险种")),
            Cell::text(chnl_label(&r[1].s())),
            Cell::Int(r[2].i()),
            Cell::Money(r[3].d()),
            Cell::Money(r[4].d()),
        ]);
    }
    t.notes.push("按支付日期（pay_date）统计。".into());
    Ok(t)
}

/// Verdict counts of one (fund, channel).
#[derive(Default, Clone, Copy)]
struct Verdicts {
    due: i64,
    on_time: i64,
    late_paid: i64,
    late_unpaid: i64,
    pending: i64,
    undecided: i64,
}

async fn deadline_compliance(c: &Context<'_>, p: &Period) -> Result<(Table, Chart)> {
    let mut t = Table::new(
        "deadline",
        "支付时限执行情况（本期到期）",
        &[
            "险种",
            "支付渠道",
            "时限（工作日）",
            "到期笔数",
            "按时支付",
            "逾期支付",
            "逾期未付",
            "到期日未付（当日到期）",
            "无法判定",
            "按时率",
        ],
    );
    t.total = true;
    let mut chart = Chart {
        id: "deadline".into(),
        title: "支付时限执行情况（本期到期笔数）".into(),
        kind: ChartKind::Stacked,
        unit: "笔".into(),
        categories: Vec::new(),
        series: ["按时支付", "逾期支付", "逾期未付", "当日到期未付", "无法判定"]
            .iter()
            .map(|n| Series { name: n.to_string(), values: Vec::new() })
            .collect(),
    };
    if !c.tables.iter().any(|x| x == "pay") {
        t.notes.push("未提供支付记录（pay 表）。".into());
        return Ok((t, chart));
    }
    // Deadlines are at most a few dozen working days: claims declared 120 days before the
    // period can fall due in it.
    let from = p.start() - chrono::Duration::days(120);
    let rows = query(
        c.ctx,
        &format!(
            "SELECT fund, pay_chnl, dcla_date, pay_date FROM pay WHERE dcla_date BETWEEN {} AND {}",
            lit(from),
            lit(p.end())
        ),
    )
    .await?;
    let mut by: BTreeMap<(String, String), (Option<u32>, Verdicts)> = BTreeMap::new();
    let mut undecided_years = BTreeSet::new();
    for r in rows {
        let (fund_s, chnl) = (r[0].s(), r[1].s().trim().to_string());
        let Some(dcla) = r[2].date() else { continue };
        let paid = r[3].date().filter(|d| *d <= p.end());
        let fund = Fund::parse(&fund_s);
        let days = fund
            .and_then(|f| c.policies.for_fund(f, dcla.year()))
            .and_then(|(pol, _)| pol.deadline(&chnl))
            .map(|d| d.working_days);
        let entry = by.entry((fund_s.clone(), chnl.clone())).or_insert((days, Verdicts::default()));
        let Some(n) = days else { continue };
        let deadline = match c.calendar.add_working_days(dcla, n) {
            Ok(d) => d,
            Err(u) => {
                // Undecided only matters when the claim may fall due in the period.
                if dcla >= p.start() - chrono::Duration::days(60) {
                    entry.1.due += 1;
                    entry.1.undecided += 1;
                    undecided_years.insert(u.missing_year);
                }
                continue;
            }
        };
        if deadline < p.start() || deadline > p.end() {
            continue;
        }
        let v = &mut entry.1;
        v.due += 1;
        match paid {
            Some(d) if d <= deadline => v.on_time += 1,
            Some(_) => v.late_paid += 1,
            None if p.end() > deadline => v.late_unpaid += 1,
            None => v.pending += 1,
        }
    }
    for ((fund_s, chnl), (days, v)) in by {
        if v.due == 0 {
            continue;
        }
        let f = Fund::parse(&fund_s);
        let label = format!("{} {}", f.map(fund_label).unwrap_or("未知险种"), chnl_label(&chnl));
        chart.categories.push(label);
        for (s, x) in
            chart.series.iter_mut().zip([v.on_time, v.late_paid, v.late_unpaid, v.pending, v.undecided])
        {
            s.values.push(Decimal::from(x));
        }
        let decided = v.due - v.undecided;
        t.rows.push(vec![
            Cell::text(f.map(fund_label).unwrap_or("未知险种")),
            Cell::text(chnl_label(&chnl)),
            days.map_or(Cell::Empty, |d| Cell::Text(d.to_string())),
            Cell::Int(v.due),
            Cell::Int(v.on_time),
            Cell::Int(v.late_paid),
            Cell::Int(v.late_unpaid),
            Cell::Int(v.pending),
            Cell::Int(v.undecided),
            Cell::Pct(if decided > 0 {
                Decimal::from(v.on_time).checked_div(Decimal::from(decided))
            } else {
                None
            }),
        ]);
    }
    t.notes.push(format!(
        "到期日 = 申报日期（dcla_date，第0日）起第 N 个工作日（政策文件的支付时限，法定节假日按工作日历）；状态截至 {}，支付日期晚于期末的视为期末未付。",
        p.end().format("%Y-%m-%d")
    ));
    for y in undecided_years {
        t.notes.push(format!("工作日历缺少 {y} 年：部分到期日无法判定。"));
    }
    Ok((t, chart))
}

fn tier_expr(c: &Context<'_>, year: i32) -> String {
    let pref: Vec<String> = match c.policies.for_fund(Fund::Hifmi, year).map(|(p, _)| &p.formula) {
        Some(Formula::Resident(r)) => r.preferential_idet_types.iter().map(|s| quote(s)).collect(),
        _ => Vec::new(),
    };
    let cond = if pref.is_empty() {
        "FALSE".to_string()
    } else {
        format!("TRIM(COALESCE(psn_idet_type, '')) IN ({})", pref.join(", "))
    };
    format!(
        "CASE WHEN fund = 'hifob' THEN '职工（大额补助）'
              WHEN {cond} THEN '特困人员、低保对象、返贫致贫人口（倾斜支付）'
              ELSE '普通参保居民' END"
    )
}

const LEVEL_EXPR: &str = "CASE TRIM(COALESCE(hosp_lv, '')) WHEN '3' THEN '三级医院' WHEN '2' THEN '二级医院'
    WHEN '1' THEN '一级医院' ELSE '其他/未定级' END";
const AREA_EXPR: &str =
    "CASE WHEN substr(COALESCE(insu_admdvs, ''), 1, 4) = substr(COALESCE(fix_blng_admdvs, ''), 1, 4)
    THEN '本地就医' ELSE '异地就医' END";

/// The order of the breakdown categories (others after, by name).
const ORDER: [&str; 9] = [
    "普通参保居民",
    "特困人员、低保对象、返贫致贫人口（倾斜支付）",
    "职工（大额补助）",
    "三级医院",
    "二级医院",
    "一级医院",
    "其他/未定级",
    "本地就医",
    "异地就医",
];

async fn breakdown(c: &Context<'_>, p: &Period, id: &str, title: &str, expr: &str) -> Result<Table> {
    let rows = query(
        c.ctx,
        &format!(
            "SELECT {expr} AS k, fund, SUM(recorded), SUM(CASE WHEN recorded <> 0 THEN 1 ELSE 0 END)
             FROM report_bc WHERE d BETWEEN {} AND {} GROUP BY 1, fund ORDER BY 1",
            lit(p.start()),
            lit(p.end())
        ),
    )
    .await?;
    let mut t = Table::new(
        id,
        title,
        &["分类", "大病保险支出（元）", "大额补助支出（元）", "合计（元）", "支付人次", "占比"],
    );
    t.total = true;
    let mut by: BTreeMap<String, (Decimal, Decimal, i64)> = BTreeMap::new();
    for r in rows {
        let e = by.entry(r[0].s()).or_default();
        match Fund::parse(&r[1].s()) {
            Some(Fund::Hifmi) => e.0 += r[2].d(),
            Some(Fund::Hifob) => e.1 += r[2].d(),
            None => {}
        }
        e.2 += r[3].i();
    }
    let all: Decimal = by.values().map(|v| v.0 + v.1).sum();
    let mut by: Vec<_> = by.into_iter().collect();
    by.sort_by_key(|(k, _)| (ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()), k.clone()));
    for (k, (a, b, n)) in by {
        t.rows.push(vec![
            Cell::Text(k),
            Cell::Money(a),
            Cell::Money(b),
            Cell::Money(a + b),
            Cell::Int(n),
            Cell::Pct(if all.is_zero() { None } else { (a + b).checked_div(all) }),
        ]);
    }
    Ok(t)
}

fn breakdown_chart(t: &Table, id: &str) -> Chart {
    Chart {
        id: id.into(),
        title: match id {
            "by_level" => "基金支出：按医院等级".into(),
            "by_area" => "基金支出：本地就医与异地就医".into(),
            _ => format!("基金支出：{}", t.title),
        },
        kind: ChartKind::Columns,
        unit: "元".into(),
        categories: t
            .rows
            .iter()
            .map(|r| if let Cell::Text(s) = &r[0] { s.clone() } else { String::new() })
            .collect(),
        series: vec![
            Series {
                name: "城乡居民大病保险".into(),
                values: t
                    .rows
                    .iter()
                    .map(|r| if let Cell::Money(d) = r[1] { d } else { Decimal::ZERO })
                    .collect(),
            },
            Series {
                name: "职工大额医疗费用补助".into(),
                values: t
                    .rows
                    .iter()
                    .map(|r| if let Cell::Money(d) = r[2] { d } else { Decimal::ZERO })
                    .collect(),
            },
        ],
    }
}

async fn trend(c: &Context<'_>, p: &Period) -> Result<(Table, Chart)> {
    // Monthly reports show the year to date; the others their own months.
    let first = if p.kind == Kind::Monthly { 1 } else { p.first_month };
    let from = NaiveDate::from_ymd_opt(p.year, first, 1).unwrap_or_default();
    let rows = query(
        c.ctx,
        &format!(
            "SELECT CAST(date_part('month', d) AS BIGINT) AS m, fund, SUM(recorded), SUM(expected),
                    SUM(CASE WHEN recorded <> 0 THEN 1 ELSE 0 END)
             FROM report_bc WHERE d BETWEEN {} AND {} GROUP BY 1, fund",
            lit(from),
            lit(p.end())
        ),
    )
    .await?;
    let mut by: BTreeMap<i64, [Decimal; 4]> =
        (first as i64..=p.last_month as i64).map(|m| (m, [Decimal::ZERO; 4])).collect();
    let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
    for r in rows {
        let m = r[0].i();
        let e = by.entry(m).or_default();
        match Fund::parse(&r[1].s()) {
            Some(Fund::Hifmi) => {
                e[0] += r[2].d();
                e[2] += r[3].d();
            }
            Some(Fund::Hifob) => {
                e[1] += r[2].d();
                e[3] += r[3].d();
            }
            None => {}
        }
        *counts.entry(m).or_default() += r[4].i();
    }
    let mut t = Table::new(
        "trend",
        "逐月支出趋势",
        &[
            "月份",
            "大病保险支出（元）",
            "大额补助支出（元）",
            "合计（元）",
            "大病保险核算应付（元）",
            "大额补助核算应付（元）",
            "支付人次",
        ],
    );
    t.total = true;
    let mut chart = Chart {
        id: "trend".into(),
        title: format!("{}年逐月基金支出", p.year),
        kind: ChartKind::Columns,
        unit: "元".into(),
        categories: Vec::new(),
        series: vec![
            Series { name: "城乡居民大病保险".into(), values: Vec::new() },
            Series { name: "职工大额医疗费用补助".into(), values: Vec::new() },
        ],
    };
    for (m, v) in by {
        let label = format!("{}-{m:02}", p.year);
        chart.categories.push(format!("{m}月"));
        chart.series[0].values.push(v[0]);
        chart.series[1].values.push(v[1]);
        t.rows.push(vec![
            Cell::Text(label),
            Cell::Money(v[0]),
            Cell::Money(v[1]),
            Cell::Money(v[0] + v[1]),
            Cell::Money(v[2]),
            Cell::Money(v[3]),
            Cell::Int(counts.get(&m).copied().unwrap_or(0)),
        ]);
    }
    Ok((t, chart))
}

async fn facility_names(c: &Context<'_>) -> Result<BTreeMap<String, String>> {
    if !c.tables.iter().any(|x| x == "medins") {
        return Ok(BTreeMap::new());
    }
    let rows = query(c.ctx, "SELECT fixmedins_code, MAX(fixmedins_name) FROM medins GROUP BY fixmedins_code")
        .await?;
    Ok(rows.into_iter().map(|r| (r[0].s(), r[1].s())).collect())
}

async fn inspections(c: &Context<'_>, p: &Period) -> Result<Table> {
    let names = facility_names(c).await?;
    let mut t = Table::new(
        "inspections",
        "现场巡查情况",
        &["巡查日期", "机构编码", "机构名称", "巡查人员", "发现问题", "涉及金额（元）"],
    );
    t.total = true;
    let mut list: Vec<_> =
        c.inputs.inspections.iter().filter(|i| i.insp_date >= p.start() && i.insp_date <= p.end()).collect();
    list.sort_by(|a, b| (a.insp_date, &a.fixmedins_code).cmp(&(b.insp_date, &b.fixmedins_code)));
    for i in list {
        t.rows.push(vec![
            Cell::Date(i.insp_date),
            Cell::text(&i.fixmedins_code),
            Cell::text(names.get(&i.fixmedins_code).cloned().unwrap_or_default()),
            Cell::text(&i.inspectors),
            Cell::text(&i.found),
            i.amount_involved.map_or(Cell::Empty, Cell::Money),
        ]);
    }
    if c.inputs.missing.contains(&"inspections") {
        t.notes.push("未提供现场巡查记录（inspections.csv）。".into());
    } else {
        t.notes.push(format!("本期现场巡查 {} 次。", t.rows.len()));
    }
    Ok(t)
}

const CONFIRMED: &str = "('confirmed', 'appealed', 'deducted', 'recovered')";

fn no_store(t: &mut Table) {
    t.notes.push("未提供病例审核库（--cases）：本表为空。".into());
}

fn db_err(e: rusqlite::Error) -> Error {
    crate::other_err!("reading the case store: {e}")
}

/// Cases decided in the period, each under its main rule (the rule of its largest finding,
/// ties by rule id), so that the rows add up to the cases.
fn audits_by_rule(c: &Context<'_>, p: &Period) -> Result<Table> {
    let mut t = Table::new(
        "audits",
        "病历审核情况（按规则）",
        &["规则", "规则名称", "审核完成（件）", "确认违规（件）", "排除（件）", "确认违规金额（元）"],
    );
    t.total = true;
    let Some(db) = c.cases else {
        no_store(&mut t);
        return Ok(t);
    };
    let sql = format!(
        "WITH main AS (
             SELECT case_id, rule_id FROM (
                 SELECT case_id, rule_id,
                        ROW_NUMBER() OVER (PARTITION BY case_id ORDER BY SUM(amount_cents) DESC, rule_id) AS k
                 FROM findings GROUP BY case_id, rule_id) WHERE k = 1)
         SELECT m.rule_id, COUNT(*),
                SUM(CASE WHEN c.status IN {CONFIRMED} THEN 1 ELSE 0 END),
                SUM(CASE WHEN c.status = 'dismissed' THEN 1 ELSE 0 END),
                SUM(CASE WHEN c.status IN {CONFIRMED} THEN COALESCE(c.deduct_cents, 0) ELSE 0 END)
         FROM cases c JOIN main m ON m.case_id = c.case_id
         WHERE c.decided_on BETWEEN ?1 AND ?2
         GROUP BY m.rule_id ORDER BY 2 DESC, 1"
    );
    let mut st = db.prepare(&sql).map_err(db_err)?;
    let rows = st
        .query_map(rusqlite::params![p.start().to_string(), p.end().to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .map_err(db_err)?;
    for row in rows {
        let (rule, n, conf, dis, cents) = row.map_err(db_err)?;
        t.rows.push(vec![
            Cell::text(&rule),
            Cell::text(c.rule_titles.get(&rule).cloned().unwrap_or_default()),
            Cell::Int(n),
            Cell::Int(conf),
            Cell::Int(dis),
            Cell::Money(Decimal::new(cents, 2)),
        ]);
    }
    t.notes.push("按复审决定日期统计；一件病例按其金额最大的规则归类。".into());
    Ok(t)
}

fn deductions(c: &Context<'_>, p: &Period) -> Result<Table> {
    let mut t = Table::new(
        "deductions",
        "违规费用扣除情况（按机构）",
        &["机构编码", "机构名称", "扣款件数", "扣款金额（元）"],
    );
    t.total = true;
    let Some(db) = c.cases else {
        no_store(&mut t);
        return Ok(t);
    };
    let month = format!("{}-{:02}", p.year, p.first_month);
    let mut st = db
        .prepare(
            "SELECT COALESCE(c.recover_party, c.entity_id) AS fac, MAX(f.fixmedins_name), COUNT(*),
                    SUM(COALESCE(c.deduct_cents, 0))
             FROM cases c LEFT JOIN facilities f ON f.fixmedins_code = COALESCE(c.recover_party, c.entity_id)
             WHERE c.deducted_month = ?1 AND c.status = 'deducted'
             GROUP BY fac ORDER BY 4 DESC, 1",
        )
        .map_err(db_err)?;
    let rows = st
        .query_map([&month], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(db_err)?;
    for row in rows {
        let (code, name, n, cents) = row.map_err(db_err)?;
        t.rows.push(vec![
            Cell::Text(code),
            Cell::Text(name.unwrap_or_default()),
            Cell::Int(n),
            Cell::Money(Decimal::new(cents, 2)),
        ]);
    }
    t.notes.push(format!("{month} 结算资金时扣除的三方确认违规费用（大病 第十六条；大额 第二十一条）。"));
    Ok(t)
}

fn top_facilities(c: &Context<'_>, p: &Period) -> Result<Table> {
    let mut t = Table::new(
        "top_facilities",
        "确认违规最多的定点机构（前10名）",
        &["机构编码", "机构名称", "确认违规（件）", "确认违规金额（元）"],
    );
    let Some(db) = c.cases else {
        no_store(&mut t);
        return Ok(t);
    };
    let sql = format!(
        "SELECT COALESCE(c.recover_party, s.fixmedins_code, c.entity_id) AS fac, MAX(f.fixmedins_name), COUNT(*),
                SUM(COALESCE(c.deduct_cents, 0))
         FROM cases c
         LEFT JOIN settlements s ON c.entity_type = 'settlement' AND s.setl_id = c.entity_id
         LEFT JOIN facilities f ON f.fixmedins_code = COALESCE(c.recover_party, s.fixmedins_code, c.entity_id)
         WHERE c.status IN {CONFIRMED} AND c.decided_on BETWEEN ?1 AND ?2
         GROUP BY fac ORDER BY 3 DESC, 4 DESC, 1 LIMIT 10"
    );
    let mut st = db.prepare(&sql).map_err(db_err)?;
    let rows = st
        .query_map(rusqlite::params![p.start().to_string(), p.end().to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(db_err)?;
    for row in rows {
        let (code, name, n, cents) = row.map_err(db_err)?;
        t.rows.push(vec![
            Cell::Text(code),
            Cell::Text(name.unwrap_or_default()),
            Cell::Int(n),
            Cell::Money(Decimal::new(cents, 2)),
        ]);
    }
    Ok(t)
}

async fn top_rules(c: &Context<'_>, p: &Period, limit: usize) -> Result<(Table, Chart)> {
    let rows = query(
        c.ctx,
        &format!(
            "SELECT f.rule_id, MAX(f.category), COUNT(DISTINCT f.setl_id), SUM(f.amount_at_risk)
             FROM findings f JOIN report_setl_day s ON s.setl_id = f.setl_id
             WHERE s.d BETWEEN {} AND {}
             GROUP BY f.rule_id ORDER BY 4 DESC, 1 LIMIT {limit}",
            lit(p.start()),
            lit(p.end())
        ),
    )
    .await?;
    let mut t = Table::new(
        "top_rules",
        &format!("初审疑点金额最多的规则（前{limit}名）"),
        &["规则", "规则名称", "类别", "涉及结算（笔）", "疑点金额（元）"],
    );
    let mut chart = Chart {
        id: "top_rules".into(),
        title: "初审疑点金额最多的规则".into(),
        kind: ChartKind::Bars,
        unit: "元".into(),
        categories: Vec::new(),
        series: vec![Series { name: "疑点金额".into(), values: Vec::new() }],
    };
    for r in rows {
        let rule = r[0].s();
        let title = c.rule_titles.get(&rule).cloned().unwrap_or_default();
        chart.categories.push(if title.is_empty() { rule.clone() } else { format!("{rule} {title}") });
        chart.series[0].values.push(r[3].d());
        t.rows.push(vec![
            Cell::Text(rule),
            Cell::Text(title),
            Cell::text(category_label(&r[1].s())),
            Cell::Int(r[2].i()),
            Cell::Money(r[3].d()),
        ]);
    }
    t.notes.push("初审（100% 覆盖）规则命中的疑点金额（amount_at_risk），按结算的出院日期归属期间；疑点不等于确认违规。".into());
    Ok((t, chart))
}

async fn funding_request(c: &Context<'_>, p: &Period) -> Result<Table> {
    let mut t = Table::new(
        "funding_request",
        "季度拨付申请参考",
        &[
            "险种",
            "下季度申请截止日",
            "本季度支出（元）",
            "上年同季度支出（元）",
            "本年累计拨付到账（元）",
            "本年累计支出（元）",
            "账户结余（元）",
        ],
    );
    let q = fund_sums(c, p.start(), p.end()).await?;
    let last_year = fund_sums(
        c,
        NaiveDate::from_ymd_opt(p.year - 1, p.first_month, 1).unwrap_or_default(),
        month_end(p.year - 1, p.last_month),
    )
    .await?;
    let ytd = fund_sums(c, p.year_start(), p.end()).await?;
    let (ny, nm) = super::config::add_months(p.year, p.last_month, 1).unwrap_or((p.year, 1));
    for f in Fund::ALL {
        let req = c.config.funding_request.iter().find(|r| r.fund == f.as_str());
        let due = req.and_then(|r| {
            NaiveDate::from_ymd_opt(ny, nm, r.day).map(|d| super::config::shifted(d, r.shift, c.calendar))
        });
        let alloc = allocations_in(c.inputs, f, p.year_start(), p.end());
        let spent = ytd.get(&f).map(|v| v.0).unwrap_or_default();
        t.rows.push(vec![
            Cell::text(fund_label(f)),
            due.as_ref().and_then(|d| d.due).map_or(Cell::text("未定"), Cell::Date),
            Cell::Money(q.get(&f).map(|v| v.0).unwrap_or_default()),
            Cell::Money(last_year.get(&f).map(|v| v.0).unwrap_or_default()),
            Cell::Money(alloc),
            Cell::Money(spent),
            Cell::Money(alloc - spent),
        ]);
        if let Some(r) = req {
            t.notes.push(format!("{}：{}", fund_label(f), r.article));
        }
        if let Some(d) = due.filter(|d| !d.note.is_empty()) {
            t.notes.push(d.note);
        }
    }
    Ok(t)
}
