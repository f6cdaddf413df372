//! The report's own input tables, beyond the audit data (`docs/report-inputs.md`): funds
//! raised per year (R), fund allocations received, on-site inspections and the premium base.
//! Small CSV files in one folder; every one is optional. A bad row is an error naming the
//! file, the line and the column: a report is never built on a half-read table.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use crate::benefit::Fund;
use crate::error::{Error, Result};

/// `funds_raised.csv`: the year's funds raised (筹集资金总额, R of POLICY.md).
#[derive(Debug, Clone, PartialEq)]
pub struct FundsRaised {
    pub year: i32,
    pub fund: Fund,
    pub amount: Decimal,
    pub note: String,
}

/// `allocations.csv`: a fund allocation received (拨付到账).
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    pub alloc_date: NaiveDate,
    pub fund: Fund,
    pub amount: Decimal,
    pub reference: String,
}

/// `inspections.csv`: an on-site inspection (现场巡查).
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    pub insp_date: NaiveDate,
    pub fixmedins_code: String,
    pub inspectors: String,
    pub found: String,
    pub amount_involved: Option<Decimal>,
}

/// `premium_base.csv`: persons insured in the employee subsidy in a month.
#[derive(Debug, Clone, PartialEq)]
pub struct PremiumBase {
    pub year: i32,
    pub month: u32,
    pub insured_persons: u64,
}

/// The report's own inputs and the files they were read from.
#[derive(Debug, Clone, Default)]
pub struct ReportInputs {
    pub funds_raised: Vec<FundsRaised>,
    pub allocations: Vec<Allocation>,
    pub inspections: Vec<Inspection>,
    pub premium_base: Vec<PremiumBase>,
    /// Files read, with their sha256.
    pub files: Vec<(PathBuf, String)>,
    /// Tables not supplied.
    pub missing: Vec<&'static str>,
}

impl ReportInputs {
    /// R of a fund and year.
    pub fn raised(&self, fund: Fund, year: i32) -> Option<Decimal> {
        self.funds_raised.iter().find(|f| f.fund == fund && f.year == year).map(|f| f.amount)
    }
}

/// The tables and their columns (all required in the header; extra columns are ignored).
pub const TABLES: [(&str, &[&str]); 4] = [
    ("funds_raised", &["year", "fund", "amount", "note"]),
    ("allocations", &["alloc_date", "fund", "amount", "reference"]),
    ("inspections", &["insp_date", "fixmedins_code", "inspectors", "found", "amount_involved"]),
    ("premium_base", &["month", "insured_persons"]),
];

/// Reads the folder (`None`: no inputs, every table missing).
pub fn read(dir: Option<&Path>) -> Result<ReportInputs> {
    let mut out = ReportInputs::default();
    let Some(dir) = dir else {
        out.missing = TABLES.iter().map(|t| t.0).collect();
        return Ok(out);
    };
    if !dir.is_dir() {
        return Err(crate::input_err!("report inputs: {} is not a folder", dir.display()));
    }
    for (table, cols) in TABLES {
        let path = dir.join(format!("{table}.csv"));
        if !path.exists() {
            out.missing.push(table);
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io("reading", &path, e))?;
        out.files.push((path.clone(), sha256(&bytes)));
        let rows = parse_csv(&bytes, &path, cols)?;
        match table {
            "funds_raised" => out.funds_raised = funds_raised(&rows, &path)?,
            "allocations" => out.allocations = allocations(&rows, &path)?,
            "inspections" => out.inspections = inspections(&rows, &path)?,
            _ => out.premium_base = premium_base(&rows, &path)?,
        }
    }
    Ok(out)
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// One data row: its line number in the file and its values in the order of `cols`.
struct Row {
    line: u64,
    values: Vec<String>,
}

fn parse_csv(bytes: &[u8], path: &Path, cols: &[&str]) -> Result<Vec<Row>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // UTF-8, or GB18030 as government systems often export.
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.to_string(),
        Err(_) => {
            let (t, _, bad) = encoding_rs::GB18030.decode(bytes);
            if bad {
                return Err(Error::config(path, "neither UTF-8 nor GB18030"));
            }
            t.into_owned()
        }
    };
    let mut r = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let header: Vec<String> = r
        .headers()
        .map_err(|e| Error::config(path, format!("header: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let mut idx = Vec::with_capacity(cols.len());
    for c in cols {
        let i = header.iter().position(|h| h == c).ok_or_else(|| {
            Error::config(path, format!("column `{c}` missing (header: {})", header.join(",")))
        })?;
        idx.push(i);
    }
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| Error::config(path, format!("{e}")))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.iter().all(|v| v.trim().is_empty()) {
            continue;
        }
        let values = idx.iter().map(|&i| rec.get(i).unwrap_or("").trim().to_string()).collect();
        rows.push(Row { line, values });
    }
    Ok(rows)
}

fn bad(path: &Path, line: u64, col: &str, msg: impl std::fmt::Display) -> Error {
    Error::config(path, format!("line {line}, column `{col}`: {msg}"))
}

fn money(path: &Path, row: &Row, i: usize, col: &str) -> Result<Decimal> {
    let v = &row.values[i];
    let d: Decimal =
        v.parse().map_err(|_| bad(path, row.line, col, format!("`{v}` is not an amount in yuan")))?;
    if d.scale() > 2 {
        return Err(bad(path, row.line, col, format!("`{v}` has more than 2 decimals")));
    }
    Ok(d)
}

fn fund(path: &Path, row: &Row, i: usize, col: &str) -> Result<Fund> {
    Fund::parse(&row.values[i])
        .ok_or_else(|| bad(path, row.line, col, format!("`{}` is not `hifmi` or `hifob`", row.values[i])))
}

fn date(path: &Path, row: &Row, i: usize, col: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(&row.values[i], "%Y-%m-%d")
        .map_err(|_| bad(path, row.line, col, format!("`{}` is not a date YYYY-MM-DD", row.values[i])))
}

fn required<'a>(path: &Path, row: &'a Row, i: usize, col: &str) -> Result<&'a str> {
    let v = row.values[i].as_str();
    if v.is_empty() { Err(bad(path, row.line, col, "empty value")) } else { Ok(v) }
}

fn funds_raised(rows: &[Row], path: &Path) -> Result<Vec<FundsRaised>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for row in rows {
        let year: i32 = row.values[0]
            .parse()
            .ok()
            .filter(|y| (1990..=2200).contains(y))
            .ok_or_else(|| bad(path, row.line, "year", format!("`{}` is not a year", row.values[0])))?;
        let fund = fund(path, row, 1, "fund")?;
        let amount = money(path, row, 2, "amount")?;
        if amount <= Decimal::ZERO {
            return Err(bad(path, row.line, "amount", "funds raised must be positive"));
        }
        if !seen.insert((year, fund)) {
            return Err(bad(path, row.line, "year", format!("{year} {} given twice", fund.as_str())));
        }
        out.push(FundsRaised { year, fund, amount, note: row.values[3].clone() });
    }
    Ok(out)
}

fn allocations(rows: &[Row], path: &Path) -> Result<Vec<Allocation>> {
    rows.iter()
        .map(|row| {
            Ok(Allocation {
                alloc_date: date(path, row, 0, "alloc_date")?,
                fund: fund(path, row, 1, "fund")?,
                amount: money(path, row, 2, "amount")?,
                reference: row.values[3].clone(),
            })
        })
        .collect()
}

fn inspections(rows: &[Row], path: &Path) -> Result<Vec<Inspection>> {
    rows.iter()
        .map(|row| {
            Ok(Inspection {
                insp_date: date(path, row, 0, "insp_date")?,
                fixmedins_code: required(path, row, 1, "fixmedins_code")?.to_string(),
                inspectors: required(path, row, 2, "inspectors")?.to_string(),
                found: row.values[3].clone(),
                amount_involved: if row.values[4].is_empty() {
                    None
                } else {
                    Some(money(path, row, 4, "amount_involved")?)
                },
            })
        })
        .collect()
}

fn premium_base(rows: &[Row], path: &Path) -> Result<Vec<PremiumBase>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for row in rows {
        let v = &row.values[0];
        let ym = NaiveDate::parse_from_str(&format!("{v}-01"), "%Y-%m-%d")
            .map_err(|_| bad(path, row.line, "month", format!("`{v}` is not a month YYYY-MM")))?;
        let n: u64 = row.values[1].parse().map_err(|_| {
            bad(path, row.line, "insured_persons", format!("`{}` is not a count", row.values[1]))
        })?;
        use chrono::Datelike;
        if !seen.insert((ym.year(), ym.month())) {
            return Err(bad(path, row.line, "month", format!("{v} given twice")));
        }
        out.push(PremiumBase { year: ym.year(), month: ym.month(), insured_persons: n });
    }
    Ok(out)
}
