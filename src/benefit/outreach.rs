//! The outreach list (大病 第十七条: the insurer contacts entitled persons who were not paid):
//! one row per person-year and fund whose expected payments exceed the recorded ones, with
//! masked identity and the settlements concerned.

use std::sync::Arc;

use arrow::array::{ArrayRef, Decimal128Builder, Int32Builder, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rust_decimal::Decimal;

use crate::error::{Error, Result};
use crate::findings::decimal_to_i128;

/// One person-year owed money by a fund.
#[derive(Debug, Clone, PartialEq)]
pub struct OutreachRow {
    pub psn_no: String,
    /// Masked name (`crate::mask::name`).
    pub psn_name: String,
    /// Masked ID number (`crate::mask::certno`).
    pub certno: String,
    /// 参保地医保区划.
    pub insu_admdvs: String,
    /// `hifmi` / `hifob`.
    pub fund: &'static str,
    /// Insurance year.
    pub year: i32,
    /// Expected minus recorded over the person-year (> tolerance).
    pub amount_owed: Decimal,
    pub expected_total: Decimal,
    pub recorded_total: Decimal,
    /// The underpaid settlements, `;`-separated, in settlement order.
    pub setl_ids: String,
    /// Their facilities, `;`-separated, distinct.
    pub fixmedins_codes: String,
    /// Their settlement modes (`1` direct, `2` manual), `;`-separated, distinct.
    pub setl_modes: String,
    /// `setl_time` of the latest underpaid settlement, `YYYY-MM-DD HH:MM:SS`.
    pub last_setl_time: String,
}

/// Arrow schema of the outreach list (`outreach.csv` / `.parquet`).
pub fn outreach_schema() -> SchemaRef {
    let money = || DataType::Decimal128(18, 2);
    Arc::new(Schema::new(vec![
        Field::new("psn_no", DataType::Utf8, false),
        Field::new("psn_name", DataType::Utf8, false),
        Field::new("certno", DataType::Utf8, false),
        Field::new("insu_admdvs", DataType::Utf8, false),
        Field::new("fund", DataType::Utf8, false),
        Field::new("year", DataType::Int32, false),
        Field::new("amount_owed", money(), false),
        Field::new("expected_total", money(), false),
        Field::new("recorded_total", money(), false),
        Field::new("setl_ids", DataType::Utf8, false),
        Field::new("fixmedins_codes", DataType::Utf8, false),
        Field::new("setl_modes", DataType::Utf8, false),
        Field::new("last_setl_time", DataType::Utf8, false),
    ]))
}

/// Builds an outreach record batch.
pub fn to_batch(rows: &[OutreachRow]) -> Result<RecordBatch> {
    let n = rows.len();
    let mut psn = StringBuilder::with_capacity(n, n * 16);
    let mut name = StringBuilder::with_capacity(n, n * 8);
    let mut cert = StringBuilder::with_capacity(n, n * 18);
    let mut adm = StringBuilder::with_capacity(n, n * 6);
    let mut fund = StringBuilder::with_capacity(n, n * 5);
    let mut year = Int32Builder::with_capacity(n);
    let mut owed = Decimal128Builder::with_capacity(n);
    let mut exp = Decimal128Builder::with_capacity(n);
    let mut rec = Decimal128Builder::with_capacity(n);
    let mut ids = StringBuilder::with_capacity(n, n * 20);
    let mut fix = StringBuilder::with_capacity(n, n * 12);
    let mut modes = StringBuilder::with_capacity(n, n * 2);
    let mut last = StringBuilder::with_capacity(n, n * 19);
    for r in rows {
        psn.append_value(&r.psn_no);
        name.append_value(&r.psn_name);
        cert.append_value(&r.certno);
        adm.append_value(&r.insu_admdvs);
        fund.append_value(r.fund);
        year.append_value(r.year);
        owed.append_value(decimal_to_i128(r.amount_owed, 2));
        exp.append_value(decimal_to_i128(r.expected_total, 2));
        rec.append_value(decimal_to_i128(r.recorded_total, 2));
        ids.append_value(&r.setl_ids);
        fix.append_value(&r.fixmedins_codes);
        modes.append_value(&r.setl_modes);
        last.append_value(&r.last_setl_time);
    }
    let dec = |b: &mut Decimal128Builder| -> Result<ArrayRef> {
        Ok(Arc::new(b.finish().with_precision_and_scale(18, 2).map_err(|e| Error::arrow("outreach", e))?))
    };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(psn.finish()),
        Arc::new(name.finish()),
        Arc::new(cert.finish()),
        Arc::new(adm.finish()),
        Arc::new(fund.finish()),
        Arc::new(year.finish()),
        dec(&mut owed)?,
        dec(&mut exp)?,
        dec(&mut rec)?,
        Arc::new(ids.finish()),
        Arc::new(fix.finish()),
        Arc::new(modes.finish()),
        Arc::new(last.finish()),
    ];
    RecordBatch::try_new(outreach_schema(), cols).map_err(|e| Error::arrow("outreach", e))
}
