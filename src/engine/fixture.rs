//! Rule fixtures: small data sets with the settlements a rule must flag and none other
//! (`tests/rules/<ID>.toml`, format in `queries/README.md`). Each fixture is written as
//! Parquet with the exact contract schema into a temporary folder and the rule runs on it
//! through the same session and runner as a real audit.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Date32Builder, Decimal128Builder, RecordBatch, StringArray, StringBuilder,
    TimestampSecondBuilder,
};
use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;

use super::config::RuleConfig;
use super::rule::RuleSet;
use super::runner::{RuleStatus, run_rules};
use super::session::{Tables, session};
use crate::error::{Error, Result};
use crate::schema::{Kind, TableSpec};

type Row = toml::Table;

/// Default values per input table (`tests/rules/defaults.toml`): `[setl]`, `[fee]`, ... A
/// string default may name other columns of the row, `"{setl_id}"`, or of the row's
/// settlement, `"{setl.psn_no}"` (for `fee` and `pay` rows).
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    tables: BTreeMap<String, Row>,
}

impl Defaults {
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io("reading fixture defaults", path, e))?;
        let t: toml::Table =
            toml::from_str(&text).map_err(|e| Error::config(path, format!("bad TOML: {e}")))?;
        let mut tables = BTreeMap::new();
        for (k, v) in t {
            let spec = crate::schema::table(&k)
                .ok_or_else(|| Error::config(path, format!("[{k}] is not an input table")))?;
            let toml::Value::Table(row) = v else {
                return Err(Error::config(path, format!("[{k}] must be a table of column defaults")));
            };
            for c in row.keys() {
                if spec.field(c).is_none() {
                    return Err(Error::config(path, format!("[{k}] {c} is not a column of {k}")));
                }
            }
            tables.insert(k, row);
        }
        Ok(Defaults { tables })
    }
}

/// The outcome of one fixture.
#[derive(Debug, Clone)]
pub struct FixtureReport {
    pub path: PathBuf,
    pub rule_id: String,
    pub expected: BTreeSet<String>,
    pub flagged: BTreeSet<String>,
    /// What is wrong; empty when the fixture passes.
    pub problems: Vec<String>,
}

impl FixtureReport {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

struct Fixture {
    rule: Option<String>,
    tables: BTreeMap<String, Vec<Row>>,
    kb: BTreeMap<String, Vec<Row>>,
    flagged: BTreeSet<String>,
    params: toml::Table,
    amounts: BTreeMap<String, Decimal>,
    severities: BTreeMap<String, String>,
}

fn parse_fixture(path: &Path) -> Result<Fixture> {
    let err = |m: String| Error::config(path, m);
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading fixture", path, e))?;
    let t: toml::Table = toml::from_str(&text).map_err(|e| err(format!("bad TOML: {e}")))?;
    let mut fx = Fixture {
        rule: None,
        tables: BTreeMap::new(),
        kb: BTreeMap::new(),
        flagged: BTreeSet::new(),
        params: toml::Table::new(),
        amounts: BTreeMap::new(),
        severities: BTreeMap::new(),
    };
    let mut have_expect = false;
    for (k, v) in t {
        if k == "description" {
            continue;
        }
        if k == "expect" {
            have_expect = true;
            let toml::Value::Table(e) = v else { return Err(err("[expect] must be a table".into())) };
            for (ek, ev) in e {
                match (ek.as_str(), ev) {
                    ("rule", toml::Value::String(s)) => fx.rule = Some(s),
                    ("flagged", toml::Value::Array(a)) => {
                        for x in a {
                            let toml::Value::String(s) = x else {
                                return Err(err("[expect] flagged must list setl_id strings".into()));
                            };
                            fx.flagged.insert(s);
                        }
                    }
                    ("params", toml::Value::Table(p)) => fx.params = p,
                    ("amounts", toml::Value::Table(a)) => {
                        for (id, x) in a {
                            let d = match &x {
                                toml::Value::String(s) => s.parse::<Decimal>().ok(),
                                toml::Value::Integer(i) => Some(Decimal::from(*i)),
                                _ => None,
                            }
                            .ok_or_else(|| {
                                err(format!("[expect] amounts.{id}: write the amount as a string"))
                            })?;
                            fx.amounts.insert(id, d);
                        }
                    }
                    ("severities", toml::Value::Table(a)) => {
                        for (id, x) in a {
                            let toml::Value::String(s) = x else {
                                return Err(err(format!("[expect] severities.{id} must be a string")));
                            };
                            fx.severities.insert(id, s);
                        }
                    }
                    (other, _) => return Err(err(format!("[expect] {other}: unknown key or wrong type"))),
                }
            }
            continue;
        }
        let toml::Value::Array(rows) = v else {
            return Err(err(format!("`{k}` must be an array of tables: [[{k}]]")));
        };
        let rows: Vec<Row> = rows
            .into_iter()
            .map(|r| match r {
                toml::Value::Table(t) => Ok(t),
                _ => Err(err(format!("[[{k}]] rows must be tables"))),
            })
            .collect::<Result<_>>()?;
        if let Some(sheet) = k.strip_prefix("kb_") {
            fx.kb.insert(sheet.to_string(), rows);
        } else if crate::schema::table(&k).is_some() {
            fx.tables.insert(k, rows);
        } else {
            return Err(err(format!("[[{k}]] is neither an input table nor a kb_<sheet> table")));
        }
    }
    if !have_expect {
        return Err(err("the fixture has no [expect] section".into()));
    }
    Ok(fx)
}

/// Writes the tables of a fixture file into `dir`: `dir/data/<table>.parquet` (exact contract
/// schema; `setl` and `fee` always, the optional tables when the fixture has rows for them) and
/// `dir/kb/<sheet>.csv` for its `[[kb_<sheet>]]` rows. Returns the two folders.
pub fn write_dataset(path: &Path, defaults: &Defaults, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let fx = parse_fixture(path)?;
    let (d, k, _) = write_fixture(path, &fx, defaults, dir)?;
    Ok((d, k))
}

fn write_fixture(
    path: &Path,
    fx: &Fixture,
    defaults: &Defaults,
    dir: &Path,
) -> Result<(PathBuf, PathBuf, BTreeSet<String>)> {
    let data_dir = dir.join("data");
    std::fs::create_dir_all(&data_dir).map_err(|e| Error::io("creating", &data_dir, e))?;
    let empty = Row::new();
    let setl_rows = fx.tables.get("setl").cloned().unwrap_or_default();
    let setl_defaults = defaults.tables.get("setl").unwrap_or(&empty);
    let setl_rows = resolve_rows(&crate::schema::SETL, &setl_rows, setl_defaults, &BTreeMap::new())
        .map_err(|m| Error::config(path, m))?;
    let setl_by_id: BTreeMap<String, Row> = setl_rows
        .iter()
        .filter_map(|r| r.get("setl_id").and_then(|v| v.as_str()).map(|id| (id.to_string(), r.clone())))
        .collect();
    if setl_by_id.len() != setl_rows.len() {
        return Err(Error::config(path, "every [[setl]] row needs its own setl_id"));
    }
    for spec in crate::schema::TABLES {
        let rows = fx.tables.get(spec.name);
        if rows.is_none() && !spec.required {
            continue;
        }
        let rows = if spec.name == "setl" {
            setl_rows.clone()
        } else {
            let rows = rows.cloned().unwrap_or_default();
            let d = defaults.tables.get(spec.name).unwrap_or(&empty);
            resolve_rows(spec, &rows, d, &setl_by_id).map_err(|m| Error::config(path, m))?
        };
        let batch = build_batch(spec, &rows).map_err(|m| Error::config(path, m))?;
        write_parquet(&data_dir.join(format!("{}.parquet", spec.name)), &batch)?;
    }
    let kb_dir = dir.join("kb");
    std::fs::create_dir_all(&kb_dir).map_err(|e| Error::io("creating", &kb_dir, e))?;
    for (stem, rows) in &fx.kb {
        write_kb_csv(&kb_dir.join(format!("{stem}.csv")), rows).map_err(|m| Error::config(path, m))?;
    }
    Ok((data_dir, kb_dir, setl_by_id.into_keys().collect()))
}

/// The rule a fixture file tests: `[expect] rule`, else the longest rule id that the file
/// stem equals or starts with followed by `_` or `-` (`SPL001_chemo.toml` → `SPL001`).
fn rule_for(stem: &str, explicit: Option<&str>, rules: &RuleSet) -> Option<String> {
    if let Some(r) = explicit {
        return Some(r.to_string());
    }
    rules
        .rules
        .iter()
        .map(|r| r.id.as_str())
        .filter(|id| {
            stem == *id
                || stem.strip_prefix(id).is_some_and(|rest| rest.starts_with('_') || rest.starts_with('-'))
        })
        .max_by_key(|id| id.len())
        .map(|s| s.to_string())
}

/// The rule a fixture file tests, alone in a rule set, and the rule configuration with the
/// fixture's parameters: what [`run_fixture`] runs on the tables of [`write_dataset`].
pub fn fixture_rules(path: &Path, rules: &RuleSet) -> Result<(RuleSet, RuleConfig)> {
    fixture_rule(path, &parse_fixture(path)?, rules)
}

fn fixture_rule(path: &Path, fx: &Fixture, rules: &RuleSet) -> Result<(RuleSet, RuleConfig)> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let rule_id = rule_for(stem, fx.rule.as_deref(), rules).ok_or_else(|| {
        Error::config(path, "no rule with this id: name the file <ID>.toml or set [expect] rule")
    })?;
    let rule = rules
        .get(&rule_id)
        .ok_or_else(|| Error::config(path, format!("[expect] rule {rule_id} does not exist")))?
        .clone();
    let mut config = RuleConfig::default();
    for (k, v) in &fx.params {
        config.set_param(&rule_id, k, v.clone());
    }
    Ok((RuleSet { rules: vec![rule] }, config))
}

/// Runs one fixture file. `kb_default` is the shipped knowledge-base folder (fixture tables
/// `[[kb_<sheet>]]` replace its sheets), `codes` the code table.
pub async fn run_fixture(
    path: &Path,
    rules: &RuleSet,
    defaults: &Defaults,
    kb_default: &Path,
    codes: &Path,
) -> Result<FixtureReport> {
    let fx = parse_fixture(path)?;
    let (one, config) = fixture_rule(path, &fx, rules)?;
    let rule_id = one.rules[0].id.clone();
    let mut report = FixtureReport {
        path: path.to_path_buf(),
        rule_id: rule_id.clone(),
        expected: fx.flagged.clone(),
        flagged: BTreeSet::new(),
        problems: Vec::new(),
    };

    let dir = tempdir_for(path)?;
    let written = write_fixture(path, &fx, defaults, &dir);
    let (data_dir, kb_dir, all_setl) = match written {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    let tables = Tables {
        data_dir: data_dir.clone(),
        kb_dirs: vec![kb_default.to_path_buf(), kb_dir],
        codes: codes.into(),
    };
    let result = async {
        let ctx = session(&tables).await?;
        run_rules(&ctx, &one, &config, "fixture").await
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let out = result?;
    match out.runs.first().map(|r| &r.status) {
        Some(RuleStatus::Ran) => {}
        Some(s) => report.problems.push(format!("rule {}: {}", s.as_str(), s.reason().unwrap_or(""))),
        None => report.problems.push("the rule did not run".into()),
    }
    let mut amounts: BTreeMap<String, Decimal> = BTreeMap::new();
    let mut sevs: BTreeMap<String, String> = BTreeMap::new();
    for b in &out.findings {
        let ids = str_col(b, "setl_id")?;
        let sev = str_col(b, "severity")?;
        let amt = b
            .column_by_name("amount_at_risk")
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::Decimal128Array>().cloned())
            .ok_or_else(|| crate::other_err!("findings lack amount_at_risk"))?;
        for i in 0..b.num_rows() {
            let id = ids.value(i).to_string();
            report.flagged.insert(id.clone());
            amounts.insert(id.clone(), Decimal::from_i128_with_scale(amt.value(i), 2));
            sevs.insert(id, sev.value(i).to_string());
        }
    }
    let missed: Vec<&String> = report.expected.difference(&report.flagged).collect();
    let extra: Vec<&String> = report.flagged.difference(&report.expected).collect();
    if !missed.is_empty() {
        report.problems.push(format!("not flagged but expected: {missed:?}"));
    }
    if !extra.is_empty() {
        report.problems.push(format!("flagged but not expected: {extra:?}"));
    }
    for id in &report.expected {
        if !all_setl.contains(id) {
            report.problems.push(format!("expected {id} is not a settlement of the fixture"));
        }
    }
    if all_setl.difference(&report.expected).next().is_none() {
        report
            .problems
            .push("no near-miss: every fixture needs a settlement that must not be flagged".into());
    }
    for (id, want) in &fx.amounts {
        match amounts.get(id) {
            Some(got) if got == want => {}
            Some(got) => report.problems.push(format!("amount_at_risk of {id}: expected {want}, got {got}")),
            None => report.problems.push(format!("amount_at_risk of {id} expected but {id} not flagged")),
        }
    }
    for (id, want) in &fx.severities {
        match sevs.get(id) {
            Some(got) if got == want => {}
            Some(got) => report.problems.push(format!("severity of {id}: expected {want}, got {got}")),
            None => report.problems.push(format!("severity of {id} expected but {id} not flagged")),
        }
    }
    Ok(report)
}

fn str_col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a StringArray> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| crate::other_err!("findings lack {name}"))
}

fn tempdir_for(path: &Path) -> Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("fixture");
    let dir = std::env::temp_dir().join(format!(
        "medaudit-fixture-{}-{}-{stem}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
    Ok(dir)
}

/// Resolves a default string's `{col}` / `{setl.col}` references.
fn expand(template: &str, row: &Row, setl: Option<&Row>) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after.find('}').ok_or_else(|| format!("unclosed `{{` in default {template:?}"))?;
        let key = &after[..end];
        let v = if let Some(c) = key.strip_prefix("setl.") {
            // A line of a settlement the fixture does not hold (a data-quality case) gets "".
            let Some(s) = setl else {
                rest = &after[end + 1..];
                continue;
            };
            s.get(c).ok_or_else(|| format!("default {template:?}: the row's settlement has no {c}"))?
        } else {
            row.get(key).ok_or_else(|| format!("default {template:?}: the row has no {key}"))?
        };
        match v {
            toml::Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Fills every row's missing columns from the defaults (expanding `{col}` / `{setl.col}`).
fn resolve_rows(
    spec: &TableSpec,
    rows: &[Row],
    defaults: &Row,
    setl: &BTreeMap<String, Row>,
) -> std::result::Result<Vec<Row>, String> {
    let mut out = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        for k in r.keys() {
            if spec.field(k).is_none() {
                return Err(format!("[[{}]] row {}: {k} is not a column of {}", spec.name, i + 1, spec.name));
            }
        }
        let mut full = r.clone();
        for (k, v) in defaults {
            if r.contains_key(k) {
                continue;
            }
            let v = match v {
                toml::Value::String(t) if t.contains('{') => {
                    let s_row = r.get("setl_id").and_then(|v| v.as_str()).and_then(|id| setl.get(id));
                    toml::Value::String(
                        expand(t, r, s_row).map_err(|m| format!("[[{}]] row {}: {m}", spec.name, i + 1))?,
                    )
                }
                other => other.clone(),
            };
            full.insert(k.clone(), v);
        }
        out.push(full);
    }
    Ok(out)
}

fn build_batch(spec: &TableSpec, rows: &[Row]) -> std::result::Result<RecordBatch, String> {
    let mut cols: Vec<ArrayRef> = Vec::new();
    for f in spec.fields {
        let mut values: Vec<Option<toml::Value>> = Vec::with_capacity(rows.len());
        for (i, r) in rows.iter().enumerate() {
            let v = match r.get(f.name) {
                Some(toml::Value::String(s))
                    if s.is_empty() && !matches!(f.kind, Kind::Text | Kind::Code) =>
                {
                    None
                }
                other => other.cloned(),
            };
            if v.is_none() && f.value_required() {
                return Err(format!(
                    "[[{}]] row {}: required column {} has no value (and no default)",
                    spec.name,
                    i + 1,
                    f.name
                ));
            }
            values.push(v);
        }
        let ctx = |i: usize, m: String| format!("[[{}]] row {} {}: {m}", spec.name, i + 1, f.name);
        let arr: ArrayRef = match f.kind {
            Kind::Text | Kind::Code => {
                let mut b = StringBuilder::new();
                for (i, v) in values.iter().enumerate() {
                    match v {
                        None => b.append_null(),
                        Some(toml::Value::String(s)) => b.append_value(s),
                        Some(other) => return Err(ctx(i, format!("write text as a string, not {other}"))),
                    }
                }
                Arc::new(b.finish())
            }
            Kind::Date => {
                let mut b = Date32Builder::new();
                let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
                for (i, v) in values.iter().enumerate() {
                    match v {
                        None => b.append_null(),
                        Some(v) => {
                            let s = scalar_text(v);
                            let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                                .map_err(|_| ctx(i, format!("{s:?} is not a date YYYY-MM-DD")))?;
                            b.append_value((d - epoch).num_days() as i32);
                        }
                    }
                }
                Arc::new(b.finish())
            }
            Kind::Timestamp => {
                let mut b = TimestampSecondBuilder::new();
                for (i, v) in values.iter().enumerate() {
                    match v {
                        None => b.append_null(),
                        Some(v) => {
                            let s = scalar_text(v).replace('T', " ");
                            let s = s.trim();
                            let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
                                .or_else(|_| {
                                    NaiveDate::parse_from_str(s, "%Y-%m-%d")
                                        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
                                })
                                .map_err(|_| {
                                    ctx(i, format!("{s:?} is not a timestamp YYYY-MM-DD HH:MM:SS"))
                                })?;
                            b.append_value(t.and_utc().timestamp());
                        }
                    }
                }
                Arc::new(b.finish())
            }
            Kind::Decimal { precision, scale } => {
                let mut b = Decimal128Builder::new();
                for (i, v) in values.iter().enumerate() {
                    match v {
                        None => b.append_null(),
                        Some(v) => {
                            let d = match v {
                                toml::Value::String(s) => s.trim().parse::<Decimal>().ok(),
                                toml::Value::Integer(n) => Some(Decimal::from(*n)),
                                _ => None,
                            }
                            .ok_or_else(|| {
                                ctx(i, format!("{v} is not a decimal: write it as a string \"12.34\""))
                            })?;
                            if d.scale() > scale as u32 {
                                return Err(ctx(i, format!("{d} has more than {scale} decimals")));
                            }
                            b.append_value(crate::findings::decimal_to_i128(d, scale as u32));
                        }
                    }
                }
                Arc::new(
                    b.finish()
                        .with_precision_and_scale(precision, scale)
                        .map_err(|e| format!("{}: {e}", f.name))?,
                )
            }
        };
        cols.push(arr);
    }
    RecordBatch::try_new(spec.arrow_schema(), cols).map_err(|e| format!("{}: {e}", spec.name))
}

fn scalar_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<()> {
    let file = File::create(path).map_err(|e| Error::io("creating", path, e))?;
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)
        .map_err(|e| Error::arrow(path.display().to_string(), e))?;
    w.write(batch).map_err(|e| Error::arrow(path.display().to_string(), e))?;
    w.close().map_err(|e| Error::arrow(path.display().to_string(), e))?;
    Ok(())
}

fn write_kb_csv(path: &Path, rows: &[Row]) -> std::result::Result<(), String> {
    let mut cols: Vec<String> = Vec::new();
    for r in rows {
        for k in r.keys() {
            if !cols.contains(k) {
                cols.push(k.clone());
            }
        }
    }
    let mut w = csv::Writer::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    w.write_record(&cols).map_err(|e| e.to_string())?;
    for r in rows {
        let rec: Vec<String> = cols.iter().map(|c| r.get(c).map(scalar_text).unwrap_or_default()).collect();
        w.write_record(&rec).map_err(|e| e.to_string())?;
    }
    w.flush().map_err(|e| e.to_string())
}
