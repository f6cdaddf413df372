//! Turning a raw chunk (CSV records or an Arrow batch in whatever types the file had) into
//! a batch of the contract's types, with the reasons why rows cannot be accepted.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Builder, Decimal128Builder, RecordBatch, StringBuilder,
    TimestampSecondBuilder,
};
use arrow::datatypes::DataType;

use super::parse;
use super::source::RawChunk;
use crate::error::{Error, Result};
use crate::schema::{FieldSpec, Kind, TableSpec};

/// Why a row is rejected: a class (for the manifest's counts) and a message for people.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub class: &'static str,
    pub message: String,
}

/// A chunk parsed into the contract's types. Rows with reasons carry nulls where their bad
/// values were.
pub struct Parsed {
    pub file: usize,
    pub batch: RecordBatch,
    /// Per row: why it cannot be accepted (empty when it can, so far).
    pub rejects: Vec<Vec<Reject>>,
    /// Per row: line (CSV) or row number (Parquet) in its file.
    pub lines: Vec<u64>,
    pub raw: RawChunk,
}

/// How the columns of one file map onto the contract's fields.
#[derive(Debug, Clone)]
pub struct ColumnMap {
    /// For each contract field, the index of the file's column that holds it.
    pub source: Vec<Option<usize>>,
    /// Number of columns of the file's header.
    pub width: usize,
    /// Recoding of values per contract field (from the mapping file).
    pub recode: Vec<Option<HashMap<String, String>>>,
}

fn class_of(msg: &str) -> &'static str {
    if msg.starts_with("不是数字") {
        "not_a_number"
    } else if msg.starts_with("小数位") {
        "too_many_decimals"
    } else if msg.starts_with("数值超出") {
        "out_of_range"
    } else if msg.starts_with("日期不存在") || msg.starts_with("时间不存在") {
        "nonexistent_date"
    } else {
        "bad_format"
    }
}

fn field_msg(f: &FieldSpec, msg: &str) -> String {
    format!("{}（{}）{}", f.name, f.label, msg)
}

/// Parses one raw chunk.
/// A Parquet slice not decoded yet is decoded here, by the worker that parses it.
pub fn parse_chunk(spec: &TableSpec, map: &ColumnMap, file: usize, raw: RawChunk) -> Result<Parsed> {
    let raw = raw.load()?;
    let n = raw.len();
    let mut rejects: Vec<Vec<Reject>> = vec![Vec::new(); n];
    let lines: Vec<u64> = match &raw {
        RawChunk::Csv { lines, .. } => lines.clone(),
        RawChunk::Arrow { first_row, .. } => (0..n as u64).map(|i| first_row + i).collect(),
        RawChunk::Parquet(_) => return Err(crate::other_err!("a Parquet slice was not decoded")),
    };
    // Row shape (CSV only): the number of fields must match the header.
    if let RawChunk::Csv { records, .. } = &raw {
        for (r, rec) in records.iter().enumerate() {
            if rec.len() != map.width {
                rejects[r].push(Reject {
                    class: "field_count",
                    message: format!("字段个数应为{}，实际为{}", map.width, rec.len()),
                });
            }
        }
    }
    // Text views of the Arrow columns that are not already of the contract's type.
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(spec.fields.len());
    for (i, f) in spec.fields.iter().enumerate() {
        let recode = map.recode[i].as_ref();
        let col = match (map.source[i], &raw) {
            (None, _) => arrow::array::new_null_array(&f.data_type(), n),
            (Some(j), RawChunk::Csv { records, .. }) => text_column(f, n, recode, &mut rejects, |r| {
                let cell = records[r].get(j)?;
                Some(std::str::from_utf8(cell).map_err(|_| ()))
            }),
            (Some(_), RawChunk::Parquet(_)) => {
                return Err(crate::other_err!("a Parquet slice was not decoded"));
            }
            (Some(j), RawChunk::Arrow { batch, .. }) => {
                let src = batch.column(j);
                if src.data_type() == &f.data_type()
                    && recode.is_none()
                    && !matches!(f.kind, Kind::Text | Kind::Code)
                {
                    for (r, rej) in rejects.iter_mut().enumerate() {
                        if src.is_null(r) && f.value_required() {
                            rej.push(missing(f));
                        }
                    }
                    src.clone()
                } else {
                    let text = match src.data_type() {
                        DataType::Utf8 => src.clone(),
                        _ => arrow::compute::cast(src, &DataType::Utf8).map_err(|e| {
                            Error::arrow(format!("converting column `{}` to text", f.name), e)
                        })?,
                    };
                    let text = text.as_string::<i32>();
                    text_column(f, n, recode, &mut rejects, |r| {
                        if text.is_null(r) { None } else { Some(Ok(text.value(r))) }
                    })
                }
            }
        };
        cols.push(col);
    }
    let batch = RecordBatch::try_new(spec.arrow_schema_nullable(), cols)
        .map_err(|e| Error::arrow(format!("building table `{}`", spec.name), e))?;
    Ok(Parsed { file, batch, rejects, lines, raw })
}

fn missing(f: &FieldSpec) -> Reject {
    Reject { class: "missing_value", message: field_msg(f, "缺少必填值") }
}

/// Builds one column from text cells. `cell(r)` is `None` for an absent cell, `Some(Err)`
/// for bytes that are not text in the file's encoding.
fn text_column<'a>(
    f: &FieldSpec,
    n: usize,
    recode: Option<&'a HashMap<String, String>>,
    rejects: &mut [Vec<Reject>],
    cell: impl Fn(usize) -> Option<Result<&'a str, ()>>,
) -> ArrayRef {
    // The trimmed, recoded value, or why there is none (borrowed: no allocation per cell).
    let value = |r: usize, rejects: &mut [Vec<Reject>]| -> Option<&'a str> {
        match cell(r) {
            Some(Err(())) => {
                rejects[r]
                    .push(Reject {
                        class: "encoding", message: field_msg(f, "含有无法识别的字符编码")
                    });
                None
            }
            Some(Ok(s)) => {
                let s = s.trim();
                if s.is_empty() {
                    if f.value_required() {
                        rejects[r].push(missing(f));
                    }
                    None
                } else {
                    Some(recode.and_then(|m| m.get(s)).map_or(s, String::as_str))
                }
            }
            None => {
                if f.value_required() && !rejects[r].iter().any(|x| x.class == "field_count") {
                    rejects[r].push(missing(f));
                }
                None
            }
        }
    };
    match f.kind {
        Kind::Text | Kind::Code => {
            let mut b = StringBuilder::with_capacity(n, n * 12);
            for r in 0..n {
                b.append_option(value(r, rejects));
            }
            Arc::new(b.finish())
        }
        Kind::Date => {
            let mut b = Date32Builder::with_capacity(n);
            for r in 0..n {
                b.append_option(value(r, rejects).and_then(|s| match parse::date(s) {
                    Ok(d) => Some(d),
                    Err(m) => {
                        rejects[r].push(Reject { class: class_of(&m), message: field_msg(f, &m) });
                        None
                    }
                }));
            }
            Arc::new(b.finish())
        }
        Kind::Timestamp => {
            let mut b = TimestampSecondBuilder::with_capacity(n);
            for r in 0..n {
                b.append_option(value(r, rejects).and_then(|s| match parse::timestamp(s) {
                    Ok(d) => Some(d),
                    Err(m) => {
                        rejects[r].push(Reject { class: class_of(&m), message: field_msg(f, &m) });
                        None
                    }
                }));
            }
            Arc::new(b.finish())
        }
        Kind::Decimal { precision, scale } => {
            let mut b = Decimal128Builder::with_capacity(n);
            for r in 0..n {
                b.append_option(value(r, rejects).and_then(|s| match parse::decimal(s, precision, scale) {
                    Ok(d) => Some(d),
                    Err(m) => {
                        rejects[r].push(Reject { class: class_of(&m), message: field_msg(f, &m) });
                        None
                    }
                }));
            }
            Arc::new(b.finish().with_precision_and_scale(precision, scale).expect("valid decimal type"))
        }
    }
}

/// The text of every cell of one row, for the quarantine file.
pub fn raw_row(raw: &RawChunk, r: usize) -> Vec<String> {
    match raw {
        RawChunk::Csv { records, .. } => {
            records[r].iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect()
        }
        RawChunk::Parquet(_) => Vec::new(),
        RawChunk::Arrow { batch, .. } => {
            let opts = arrow::util::display::FormatOptions::default().with_null("");
            batch
                .columns()
                .iter()
                .map(|c| {
                    arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &opts)
                        .map(|f| f.value(r).to_string())
                        .unwrap_or_default()
                })
                .collect()
        }
    }
}
