//! Rule files: `queries/<family>/<ID>_<slug>.sql`, a TOML header in a leading `/* */` comment
//! and one SQL query with typed `${name}` placeholders (see `queries/README.md`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::findings::Severity;

/// The declared type of a rule parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Int,
    Decimal,
    Text,
    TextList,
    Date,
    Bool,
}

impl ParamType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "int" => ParamType::Int,
            "decimal" => ParamType::Decimal,
            "text" => ParamType::Text,
            "text_list" => ParamType::TextList,
            "date" => ParamType::Date,
            "bool" => ParamType::Bool,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::Int => "int",
            ParamType::Decimal => "decimal",
            ParamType::Text => "text",
            ParamType::TextList => "text_list",
            ParamType::Date => "date",
            ParamType::Bool => "bool",
        }
    }
}

/// A validated parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Int(i64),
    Decimal(Decimal),
    Text(String),
    TextList(Vec<String>),
    Date(NaiveDate),
    Bool(bool),
}

impl ParamValue {
    /// Checks a configured TOML value against the declared type and converts it.
    ///
    /// `int` takes an integer (or a string holding one); `decimal` an integer, a string such as
    /// `"0.80"` (exact) or a TOML float (taken by its shortest decimal form); `text` a string;
    /// `text_list` an array of strings (or one string); `date` a TOML date or a
    /// `"YYYY-MM-DD"` string; `bool` a boolean.
    pub fn from_toml(ty: ParamType, v: &toml::Value) -> std::result::Result<Self, String> {
        use toml::Value as V;
        let bad = || format!("expected {}, found {}", ty.as_str(), describe(v));
        match ty {
            ParamType::Int => match v {
                V::Integer(i) => Ok(ParamValue::Int(*i)),
                V::String(s) => s.trim().parse::<i64>().map(ParamValue::Int).map_err(|_| bad()),
                _ => Err(bad()),
            },
            ParamType::Decimal => {
                let d = match v {
                    V::Integer(i) => Decimal::from(*i),
                    V::String(s) => s.trim().parse::<Decimal>().map_err(|_| bad())?,
                    V::Float(f) if f.is_finite() => format!("{f}").parse::<Decimal>().map_err(|_| bad())?,
                    _ => return Err(bad()),
                };
                Ok(ParamValue::Decimal(d))
            }
            ParamType::Text => match v {
                V::String(s) => Ok(ParamValue::Text(check_text(s)?)),
                _ => Err(bad()),
            },
            ParamType::TextList => match v {
                V::String(s) => Ok(ParamValue::TextList(vec![check_text(s)?])),
                V::Array(a) => a
                    .iter()
                    .map(|x| match x {
                        V::String(s) => check_text(s),
                        _ => Err(bad()),
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map(ParamValue::TextList),
                _ => Err(bad()),
            },
            ParamType::Date => {
                let s = match v {
                    V::Datetime(d) if d.date.is_some() && d.time.is_none() => d.to_string(),
                    V::String(s) => s.trim().to_string(),
                    _ => return Err(bad()),
                };
                NaiveDate::parse_from_str(&s, "%Y-%m-%d").map(ParamValue::Date).map_err(|_| bad())
            }
            ParamType::Bool => match v {
                V::Boolean(b) => Ok(ParamValue::Bool(*b)),
                _ => Err(bad()),
            },
        }
    }

    /// The typed SQL literal substituted for `${name}`.
    ///
    /// An empty `text_list` renders as `(NULL)`: `x IN ${p}` is then never true; write
    /// `NOT COALESCE(x IN ${p}, FALSE)` rather than `x NOT IN ${p}` where the list may be empty.
    pub fn to_sql(&self) -> String {
        match self {
            ParamValue::Int(i) if *i < 0 => format!("({i})"),
            ParamValue::Int(i) => i.to_string(),
            ParamValue::Decimal(d) => {
                let scale = d.scale();
                let digits = d.mantissa().unsigned_abs().to_string().len() as u32;
                let precision = digits.max(scale + 1).clamp(18, 38);
                format!("CAST('{d}' AS DECIMAL({precision},{scale}))")
            }
            ParamValue::Text(s) => quote(s),
            ParamValue::TextList(v) if v.is_empty() => "(NULL)".to_string(),
            ParamValue::TextList(v) => {
                format!("({})", v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", "))
            }
            ParamValue::Date(d) => format!("DATE '{}'", d.format("%Y-%m-%d")),
            ParamValue::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Decimal(d) => write!(f, "{d}"),
            ParamValue::Text(s) => write!(f, "\"{s}\""),
            ParamValue::TextList(v) => {
                write!(f, "[{}]", v.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", "))
            }
            ParamValue::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            ParamValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

fn describe(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("string \"{s}\""),
        toml::Value::Integer(i) => format!("integer {i}"),
        toml::Value::Float(x) => format!("float {x}"),
        toml::Value::Boolean(b) => format!("boolean {b}"),
        toml::Value::Datetime(d) => format!("datetime {d}"),
        toml::Value::Array(_) => "an array".to_string(),
        toml::Value::Table(_) => "a table".to_string(),
    }
}

fn check_text(s: &str) -> std::result::Result<String, String> {
    if s.chars().any(|c| c.is_control()) {
        return Err(format!("text {s:?} contains a control character"));
    }
    Ok(s.to_string())
}

/// `'it''s'`: a single-quoted SQL string literal with quotes doubled.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A declared parameter of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDecl {
    pub name: String,
    pub ty: ParamType,
    pub default: ParamValue,
    pub doc: String,
}

/// One rule: its documentation, parameters and SQL (with `${name}` placeholders).
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub title_zh: String,
    pub title_en: String,
    pub category: String,
    pub severity: Severity,
    pub requires: Vec<String>,
    pub basis: Vec<String>,
    pub what: String,
    pub why: String,
    pub example: String,
    pub params: Vec<ParamDecl>,
    pub sql: String,
    pub path: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    id: String,
    name: String,
    title_zh: String,
    title_en: String,
    category: String,
    severity: String,
    #[serde(default)]
    requires: Vec<String>,
    basis: Vec<String>,
    what: String,
    why: String,
    example: String,
    #[serde(default)]
    params: BTreeMap<String, ParamHeader>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamHeader {
    #[serde(rename = "type")]
    ty: String,
    default: toml::Value,
    doc: String,
}

/// One piece of a rule's SQL: literal text or a `${name}` placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Param(&'a str),
}

/// Splits SQL into text and `${name}` placeholders.
fn split_placeholders(sql: &str) -> std::result::Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = sql;
    while let Some(i) = rest.find("${") {
        out.push(Piece::Text(&rest[..i]));
        let after = &rest[i + 2..];
        let line = sql[..sql.len() - rest.len() + i].matches('\n').count() + 1;
        let end = after.find('}').ok_or_else(|| format!("unclosed placeholder `${{` on SQL line {line}"))?;
        let name = &after[..end];
        let valid = !name.is_empty()
            && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("malformed placeholder `${{{name}}}` on SQL line {line}"));
        }
        out.push(Piece::Param(name));
        rest = &after[end + 1..];
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// Whether `s` is a valid rule id: an upper-case letter, then upper-case letters, digits, `_`.
fn valid_id(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

impl Rule {
    /// Parses the text of a rule file. Errors name the file and the reason.
    pub fn parse(path: &Path, text: &str) -> Result<Rule> {
        let err = |m: String| Error::config(path, m);
        let t = text.trim_start_matches('\u{feff}').trim_start();
        let Some(body) = t.strip_prefix("/*") else {
            return Err(err(
                "a rule file must start with a `/* ... */` comment holding its TOML header".into()
            ));
        };
        let end =
            body.find("*/").ok_or_else(|| err("the header comment `/*` is never closed by `*/`".into()))?;
        let header_text = &body[..end];
        let sql = body[end + 2..].trim();
        let sql = sql.strip_suffix(';').unwrap_or(sql).trim_end().to_string();
        let h: Header = toml::from_str(header_text).map_err(|e| err(format!("bad TOML header: {e}")))?;

        if !valid_id(&h.id) {
            return Err(err(format!(
                "id `{}` is not valid: upper-case letters, digits and `_`, starting with a letter (e.g. DUP001)",
                h.id
            )));
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if stem != h.id && !stem.starts_with(&format!("{}_", h.id)) {
            return Err(err(format!("the file name must start with the rule id: `{}_<slug>.sql`", h.id)));
        }
        if !crate::schema::CATEGORIES.contains(&h.category.as_str()) {
            return Err(err(format!(
                "category `{}` is not one of {}",
                h.category,
                crate::schema::CATEGORIES.join(", ")
            )));
        }
        let severity = Severity::parse(&h.severity)
            .ok_or_else(|| err(format!("severity `{}` is not high, medium or low", h.severity)))?;
        for (field, v) in [
            ("name", &h.name),
            ("title_zh", &h.title_zh),
            ("title_en", &h.title_en),
            ("what", &h.what),
            ("why", &h.why),
            ("example", &h.example),
        ] {
            if v.trim().is_empty() {
                return Err(err(format!("`{field}` is empty")));
            }
        }
        if h.basis.iter().all(|b| b.trim().is_empty()) {
            return Err(err("`basis` must name at least one contract article or knowledge sheet".into()));
        }
        for r in &h.requires {
            if r.is_empty() || !r.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
                return Err(err(format!("`requires` holds `{r}`, which is not a table name")));
            }
        }
        let mut params = Vec::new();
        for (name, p) in &h.params {
            let ty = ParamType::parse(&p.ty).ok_or_else(|| {
                err(format!(
                    "parameter `{name}`: type `{}` is not one of int, decimal, text, text_list, date, bool",
                    p.ty
                ))
            })?;
            let default = ParamValue::from_toml(ty, &p.default)
                .map_err(|m| err(format!("parameter `{name}`: default: {m}")))?;
            params.push(ParamDecl { name: name.clone(), ty, default, doc: p.doc.trim().to_string() });
        }
        if sql.is_empty() {
            return Err(err("no SQL query after the header".into()));
        }
        let pieces = split_placeholders(&sql).map_err(err)?;
        let used: BTreeSet<&str> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Param(n) => Some(*n),
                Piece::Text(_) => None,
            })
            .collect();
        for u in &used {
            if !params.iter().any(|p| p.name == *u) {
                return Err(err(format!(
                    "`${{{u}}}` is used in the SQL but not declared under [params.{u}]"
                )));
            }
        }
        for p in &params {
            if !used.contains(p.name.as_str()) {
                return Err(err(format!("parameter `{}` is declared but never used in the SQL", p.name)));
            }
        }
        let rule = Rule {
            id: h.id,
            name: h.name.trim().to_string(),
            title_zh: h.title_zh.trim().to_string(),
            title_en: h.title_en.trim().to_string(),
            category: h.category,
            severity,
            requires: h.requires,
            basis: h.basis,
            what: h.what.trim().to_string(),
            why: h.why.trim().to_string(),
            example: h.example.trim().to_string(),
            params,
            sql,
            path: path.to_path_buf(),
        };
        // The SQL must parse as exactly one query with the default parameters.
        let rendered = rule.render(&BTreeMap::new())?;
        check_single_query(&rendered).map_err(err)?;
        Ok(rule)
    }

    /// Reads and parses one rule file.
    pub fn load(path: &Path) -> Result<Rule> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading rule file", path, e))?;
        Rule::parse(path, &text)
    }

    /// The declared parameter of that name.
    pub fn param(&self, name: &str) -> Option<&ParamDecl> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The SQL with every `${name}` replaced by its typed literal: the configured value where
    /// `overrides` holds one (checked against the declared type), else the default.
    pub fn render(&self, overrides: &BTreeMap<String, ParamValue>) -> Result<String> {
        let pieces = split_placeholders(&self.sql).map_err(|m| Error::config(&self.path, m))?;
        let mut out = String::with_capacity(self.sql.len() + 64);
        for p in pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Param(n) => {
                    let decl = self.param(n).ok_or_else(|| {
                        Error::config(&self.path, format!("`${{{n}}}` is used in the SQL but not declared"))
                    })?;
                    let v = overrides.get(n).unwrap_or(&decl.default);
                    out.push_str(&v.to_sql());
                }
            }
        }
        Ok(out)
    }
}

/// Checks that the SQL is exactly one query (`SELECT` / `WITH` / `VALUES`), nothing else.
fn check_single_query(sql: &str) -> std::result::Result<(), String> {
    use datafusion::sql::parser::{DFParser, Statement};
    use datafusion::sql::sqlparser::ast::Statement as Sql;
    let stmts = DFParser::parse_sql(sql).map_err(|e| format!("SQL does not parse: {e}"))?;
    if stmts.len() != 1 {
        return Err(format!("the SQL must be exactly one query, found {} statements", stmts.len()));
    }
    match stmts.front() {
        Some(Statement::Statement(s)) if matches!(**s, Sql::Query(_)) => Ok(()),
        _ => Err("the SQL must be a query (SELECT or WITH ... SELECT), not another statement".into()),
    }
}

/// The rules of one or more folders.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

impl RuleSet {
    /// Loads every `*.sql` file under the folders (recursively), sorted by rule id. A rule id
    /// defined twice is an error naming both files.
    pub fn load(dirs: &[PathBuf]) -> Result<Self> {
        let mut files = Vec::new();
        for d in dirs {
            if !d.is_dir() {
                return Err(Error::config(d, "rule folder does not exist"));
            }
            collect_sql_files(d, &mut files)?;
        }
        files.sort();
        files.dedup();
        let mut rules: Vec<Rule> = Vec::with_capacity(files.len());
        let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
        for f in files {
            let r = Rule::load(&f)?;
            if let Some(prev) = seen.get(&r.id) {
                return Err(Error::config(
                    &f,
                    format!("rule id {} is already defined in {}", r.id, prev.display()),
                ));
            }
            seen.insert(r.id.clone(), f.clone());
            rules.push(r);
        }
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(RuleSet { rules })
    }

    /// The shipped rules of `queries/`.
    pub fn load_default() -> Result<Self> {
        Self::load(&[crate::paths::queries_dir()])
    }

    /// The rule with that id.
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }
}

fn collect_sql_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io("listing rule folder", dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| Error::io("listing rule folder", dir, e))?;
        let p = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            collect_sql_files(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "sql") {
            out.push(p);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = r#"/*
id = "TST001"
name = "test-rule"
title_zh = "测试"
title_en = "Test"
category = "duplicate_billing"
severity = "high"
requires = ["setl"]
basis = ["河南大病合同 第十六条"]
what = "w"
why = "y"
example = "e"

[params.days]
type = "int"
default = 3
doc = "d"

[params.codes]
type = "text_list"
default = ["Z51.0", "it's"]
doc = "d"
*/
"#;

    fn rule(sql: &str) -> Result<Rule> {
        Rule::parse(Path::new("queries/x/TST001_test.sql"), &format!("{HEADER}{sql}"))
    }

    #[test]
    fn parses_and_renders_typed_literals() {
        let r = rule("SELECT setl_id FROM setl WHERE x <= ${days} AND d IN ${codes};").unwrap();
        assert_eq!(r.id, "TST001");
        assert_eq!(r.severity, Severity::High);
        let sql = r.render(&BTreeMap::new()).unwrap();
        assert!(sql.ends_with("x <= 3 AND d IN ('Z51.0', 'it''s')"), "{sql}");
        let mut o = BTreeMap::new();
        o.insert("days".to_string(), ParamValue::Int(-2));
        assert!(r.render(&o).unwrap().contains("x <= (-2)"));
    }

    #[test]
    fn literals_are_typed() {
        assert_eq!(ParamValue::Decimal("0.80".parse().unwrap()).to_sql(), "CAST('0.80' AS DECIMAL(18,2))");
        assert_eq!(ParamValue::Text("a'b".into()).to_sql(), "'a''b'");
        assert_eq!(ParamValue::TextList(vec![]).to_sql(), "(NULL)");
        assert_eq!(ParamValue::Bool(true).to_sql(), "TRUE");
        let d = ParamValue::from_toml(ParamType::Date, &toml::Value::String("2024-02-29".into())).unwrap();
        assert_eq!(d.to_sql(), "DATE '2024-02-29'");
        assert!(ParamValue::from_toml(ParamType::Date, &toml::Value::String("2023-02-29".into())).is_err());
        assert!(ParamValue::from_toml(ParamType::Int, &toml::Value::String("1; DROP".into())).is_err());
        let f = ParamValue::from_toml(ParamType::Decimal, &toml::Value::Float(0.8)).unwrap();
        assert_eq!(f, ParamValue::Decimal("0.8".parse().unwrap()));
    }

    #[test]
    fn undeclared_and_unused_placeholders_are_errors() {
        let e = rule("SELECT 1 WHERE ${days} > 0 AND 'a' IN ${codes} AND ${nope}").unwrap_err().to_string();
        assert!(e.contains("TST001_test.sql") && e.contains("nope"), "{e}");
        let e = rule("SELECT 1 WHERE ${days} > 0").unwrap_err().to_string();
        assert!(e.contains("codes") && e.contains("never used"), "{e}");
        let e = rule("SELECT 1 WHERE ${days > 0").unwrap_err().to_string();
        assert!(e.contains("placeholder"), "{e}");
    }

    #[test]
    fn bad_sql_and_non_queries_are_errors() {
        let e = rule("SELEC 1 ${days} ${codes}").unwrap_err().to_string();
        assert!(e.contains("does not parse"), "{e}");
        let e = rule("SELECT ${days} IN ${codes}; SELECT 2").unwrap_err().to_string();
        assert!(e.contains("2 statements"), "{e}");
        let e = rule("DROP TABLE setl ${days} ${codes}").unwrap_err().to_string();
        assert!(e.contains("parse") || e.contains("query"), "{e}");
    }
}
