//! The answer key: `labels/labels.csv` (one row per labelled row and kind) and
//! `labels/summary.json` (counts the scorer needs). Format documented in
//! `datasets/gen/README.md`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::synth::model::{Label, Role};

/// Columns of `labels.csv`.
pub const HEADER: &[&str] = &[
    "anomaly_id",
    "role",
    "kind",
    "subkind",
    "table",
    "setl_id",
    "psn_no",
    "entity_type",
    "entity_id",
    "key",
    "expected",
    "note",
];

fn push_cell(out: &mut String, v: &str) {
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(v);
    }
}

/// The CSV text of some labels (with header when `header`).
pub fn to_csv(labels: &[Label], header: bool) -> String {
    let mut out = String::with_capacity(labels.len() * 120 + 200);
    if header {
        out.push_str(&HEADER.join(","));
        out.push('\n');
    }
    for l in labels {
        let cells = [
            l.anomaly_id.as_str(),
            l.role.as_str(),
            l.kind,
            l.subkind,
            l.table,
            &l.setl_id,
            &l.psn_no,
            l.entity_type,
            &l.entity_id,
            &l.key,
            l.expected,
            &l.note,
        ];
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_cell(&mut out, c);
        }
        out.push('\n');
    }
    out
}

/// A label as read back (owned strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRow {
    pub anomaly_id: String,
    pub role: Role,
    pub kind: String,
    pub subkind: String,
    pub table: String,
    pub setl_id: String,
    pub psn_no: String,
    pub entity_type: String,
    pub entity_id: String,
    pub key: String,
    pub expected: String,
    pub note: String,
}

/// Reads `labels.csv` of a labels folder.
pub fn read(dir: &Path) -> Result<Vec<LabelRow>> {
    let path = dir.join("labels.csv");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("reading labels", &path, e))?;
    let mut rdr = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let head = rdr.headers().map_err(|e| Error::config(&path, e.to_string()))?.clone();
    let idx = |n: &str| {
        head.iter().position(|h| h == n).ok_or_else(|| Error::config(&path, format!("missing column `{n}`")))
    };
    let cols: Vec<usize> = HEADER.iter().map(|h| idx(h)).collect::<Result<_>>()?;
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| Error::config(&path, format!("row {}: {e}", i + 2)))?;
        let g = |k: usize| rec.get(cols[k]).unwrap_or("").to_string();
        let role = Role::parse(&g(1))
            .ok_or_else(|| Error::config(&path, format!("row {}: unknown role `{}`", i + 2, g(1))))?;
        out.push(LabelRow {
            anomaly_id: g(0),
            role,
            kind: g(2),
            subkind: g(3),
            table: g(4),
            setl_id: g(5),
            psn_no: g(6),
            entity_type: g(7),
            entity_id: g(8),
            key: g(9),
            expected: g(10),
            note: g(11),
        });
    }
    Ok(out)
}

/// `labels/summary.json`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub generator: String,
    pub seed: u64,
    pub format: String,
    pub encoding: String,
    pub anomaly_rate: f64,
    /// Settlement rows meant to be accepted (malformed extra rows not counted).
    pub settlements: u64,
    /// Settlements without any label: the denominator of false-positive rates.
    pub clean_settlements: u64,
    pub fee_lines: u64,
    pub persons: u64,
    pub facilities: u64,
    pub payments: u64,
    pub labels: u64,
    pub malformed_rows: u64,
    /// The as-of date the data is built around (the latest date in it).
    pub as_of: String,
    /// Years of the working-day calendar used for payment dates (empty: none found).
    pub calendar_years: Vec<i32>,
    /// Facilities with injected inflated costs.
    pub outlier_facilities: Vec<String>,
}

impl Summary {
    pub fn read(dir: &Path) -> Result<Summary> {
        let path = dir.join("summary.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| Error::io("reading label summary", &path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::config(&path, e.to_string()))
    }
}
