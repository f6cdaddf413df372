//! Small helpers shared by the recalculation and the deadline check: typed access to the
//! columns of validated input batches, and number/date formatting for `detail` texts.

use std::hash::{BuildHasherDefault, Hasher};

use arrow::array::{
    Array, AsArray, Date32Array, Decimal128Array, RecordBatch, StringArray, TimestampSecondArray,
};
use arrow::datatypes::{DataType, Date32Type, Decimal128Type, TimeUnit, TimestampSecondType};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;

use crate::error::Result;
use crate::input_err;

/// A fast hasher for settlement ids and other short keys (the multiply-rotate scheme of
/// rustc's `FxHasher`, finished with murmur3's `fmix64`); the standard SipHash dominates the
/// recalculation's time otherwise. Not DoS-resistant, which does not matter for batch input.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl IdHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // murmur3's fmix64: spreads every input bit over the whole hash (hashbrown takes the
        // bucket from the low bits and the tag from the high ones)
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// `HashMap<_, _, IdHash>`.
pub(crate) type IdHash = BuildHasherDefault<IdHasher>;

/// A column of text.
pub(crate) fn text<'a>(b: &'a RecordBatch, table: &str, name: &str) -> Result<&'a StringArray> {
    let c = b.column_by_name(name).ok_or_else(|| input_err!("{table}: column `{name}` missing"))?;
    c.as_string_opt::<i32>()
        .ok_or_else(|| input_err!("{table}.{name}: expected text, found {}", c.data_type()))
}

/// A decimal column with its scale.
pub(crate) fn decimal<'a>(b: &'a RecordBatch, table: &str, name: &str) -> Result<(&'a Decimal128Array, u32)> {
    let c = b.column_by_name(name).ok_or_else(|| input_err!("{table}: column `{name}` missing"))?;
    match c.data_type() {
        DataType::Decimal128(_, s) if *s >= 0 => Ok((c.as_primitive::<Decimal128Type>(), *s as u32)),
        t => Err(input_err!("{table}.{name}: expected decimal, found {t}")),
    }
}

/// A date column.
pub(crate) fn date<'a>(b: &'a RecordBatch, table: &str, name: &str) -> Result<&'a Date32Array> {
    let c = b.column_by_name(name).ok_or_else(|| input_err!("{table}: column `{name}` missing"))?;
    c.as_primitive_opt::<Date32Type>()
        .ok_or_else(|| input_err!("{table}.{name}: expected date, found {}", c.data_type()))
}

/// A timestamp (seconds) column.
pub(crate) fn timestamp<'a>(b: &'a RecordBatch, table: &str, name: &str) -> Result<&'a TimestampSecondArray> {
    let c = b.column_by_name(name).ok_or_else(|| input_err!("{table}: column `{name}` missing"))?;
    match c.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => Ok(c.as_primitive::<TimestampSecondType>()),
        t => Err(input_err!("{table}.{name}: expected timestamp (seconds), found {t}")),
    }
}

/// A text value, `""` when null.
#[inline]
pub(crate) fn s(a: &StringArray, i: usize) -> &str {
    if a.is_null(i) { "" } else { a.value(i) }
}

/// A text value that must be present.
#[inline]
pub(crate) fn req<'a>(a: &'a StringArray, i: usize, table: &str, name: &str) -> Result<&'a str> {
    if a.is_null(i) { Err(input_err!("{table}.{name}: empty value in row {i}")) } else { Ok(a.value(i)) }
}

/// A decimal value that must be present.
#[inline]
pub(crate) fn dec(a: &(&Decimal128Array, u32), i: usize, table: &str, name: &str) -> Result<Decimal> {
    if a.0.is_null(i) {
        return Err(input_err!("{table}.{name}: empty value in row {i}"));
    }
    Decimal::try_from_i128_with_scale(a.0.value(i), a.1)
        .map_err(|e| input_err!("{table}.{name}: value in row {i} out of range: {e}"))
}

/// A date value, `None` when null.
#[inline]
pub(crate) fn day(a: &Date32Array, i: usize) -> Option<NaiveDate> {
    if a.is_null(i) { None } else { days_to_date(a.value(i)) }
}

/// Days since 1970-01-01 → date.
pub(crate) fn days_to_date(v: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(v.checked_add(719_163)?)
}

/// Seconds since 1970-01-01 (local, no zone) → date-time.
pub(crate) fn secs_to_datetime(v: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp(v, 0).map(|d| d.naive_utc())
}

/// `1234567.5` → `1,234,567.50` (yuan, to the cent).
pub(crate) fn yuan(d: Decimal) -> String {
    let mut r = d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    r.rescale(2);
    let s = r.abs().to_string();
    let (int, frac) = s.split_once('.').unwrap_or((s.as_str(), "00"));
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (k, ch) in int.chars().enumerate() {
        if k > 0 && (int.len() - k) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let sign = if r.is_sign_negative() && !r.is_zero() { "-" } else { "" };
    format!("{sign}{grouped}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_yuan() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(yuan(d("1234567.5")), "1,234,567.50");
        assert_eq!(yuan(d("-24000")), "-24,000.00");
        assert_eq!(yuan(d("999.999")), "1,000.00");
        assert_eq!(yuan(d("0")), "0.00");
        assert_eq!(yuan(d("-0.001")), "0.00");
        assert_eq!(yuan(d("100")), "100.00");
    }

    #[test]
    fn converts_dates() {
        assert_eq!(days_to_date(0), NaiveDate::from_ymd_opt(1970, 1, 1));
        assert_eq!(days_to_date(19_783), NaiveDate::from_ymd_opt(2024, 3, 1));
        assert_eq!(secs_to_datetime(86_400).map(|d| d.date()), NaiveDate::from_ymd_opt(1970, 1, 2));
    }
}
