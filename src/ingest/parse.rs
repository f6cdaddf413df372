//! Parsing of text values into the contract's types, exactly (never through f64). Each
//! parser returns a reason a person understands when the text is not a valid value.

use chrono::{NaiveDate, NaiveDateTime};

/// Days from 0001-01-01 (CE day 1) to 1970-01-01.
const UNIX_EPOCH_CE_DAYS: i32 = 719_163;

/// Parses `YYYY-MM-DD` into days since 1970-01-01 (Arrow `Date32`).
pub fn date(s: &str) -> Result<i32, String> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(format!("日期格式应为 YYYY-MM-DD：{s}"));
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return Err(format!("日期格式应为 YYYY-MM-DD：{s}"));
    };
    let Some(date) = NaiveDate::from_ymd_opt(y as i32, m, d) else {
        return Err(format!("日期不存在：{s}"));
    };
    Ok(days(date))
}

/// Days since 1970-01-01 of a date.
pub fn days(d: NaiveDate) -> i32 {
    use chrono::Datelike;
    d.num_days_from_ce() - UNIX_EPOCH_CE_DAYS
}

/// The date of a day number since 1970-01-01.
pub fn from_days(n: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(n + UNIX_EPOCH_CE_DAYS)
}

/// Parses `YYYY-MM-DD HH:MM:SS` (also with `T`, or with fractional seconds, which are
/// dropped) into seconds since 1970-01-01 00:00:00 (local time, no zone).
pub fn timestamp(s: &str) -> Result<i64, String> {
    let bad = || format!("时间格式应为 YYYY-MM-DD HH:MM:SS：{s}");
    if s.len() < 19 {
        return Err(bad());
    }
    let (head, frac) = s.split_at(19);
    if !(frac.is_empty()
        || (frac.starts_with('.') && frac.len() > 1 && frac[1..].bytes().all(|c| c.is_ascii_digit())))
    {
        return Err(bad());
    }
    let day = date(&head[..10])
        .map_err(|e| if e.starts_with("日期不存在") { format!("日期不存在：{s}") } else { bad() })?;
    let sep = head.as_bytes()[10];
    if sep != b' ' && sep != b'T' {
        return Err(bad());
    }
    let t = NaiveDateTime::parse_from_str(&format!("2000-01-01 {}", &head[11..]), "%Y-%m-%d %H:%M:%S")
        .map_err(|_| format!("时间不存在：{s}"))?;
    use chrono::Timelike;
    Ok(i64::from(day) * 86_400 + i64::from(t.num_seconds_from_midnight()))
}

/// Parses an exact decimal into the mantissa of `scale` places. Accepts an optional sign,
/// digits and an optional fraction; more places than `scale` are accepted only when the extra
/// digits are zeros (the value is exact); scientific notation, thousands separators and
/// anything else are rejected.
pub fn decimal(s: &str, precision: u8, scale: i8) -> Result<i128, String> {
    let scale = scale.max(0) as usize;
    let b = s.as_bytes();
    let (neg, rest) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let dot = rest.iter().position(|&c| c == b'.');
    let (int, frac) = match dot {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.iter().all(u8::is_ascii_digit)
        || !frac.iter().all(u8::is_ascii_digit)
        || (dot.is_some() && frac.is_empty() && int.is_empty())
    {
        return Err(format!("不是数字：{s}"));
    }
    let significant_frac = frac.iter().rposition(|&c| c != b'0').map_or(0, |p| p + 1);
    if significant_frac > scale {
        return Err(format!("小数位超过{scale}位：{s}"));
    }
    let int_digits = int.iter().skip_while(|&&c| c == b'0').count();
    if int_digits > usize::from(precision) - scale {
        return Err(format!("数值超出范围（整数部分最多{}位）：{s}", usize::from(precision) - scale));
    }
    let mut v: i128 = 0;
    for &c in int {
        v = v * 10 + i128::from(c - b'0');
    }
    for i in 0..scale {
        v = v * 10 + frac.get(i).map_or(0, |&c| i128::from(c - b'0'));
    }
    Ok(if neg { -v } else { v })
}

/// Formats a mantissa of `scale` places as text (`12345, 2` → `123.45`).
pub fn format_decimal(v: i128, scale: i8) -> String {
    rust_decimal::Decimal::from_i128_with_scale(v, scale.max(0) as u32).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date("1970-01-01"), Ok(0));
        assert_eq!(date("2024-02-29"), Ok(19_782));
        assert_eq!(date("2023-02-29").unwrap_err(), "日期不存在：2023-02-29");
        assert!(date("2024/02/01").is_err());
        assert!(date("2024-2-1").is_err());
        assert_eq!(from_days(19_782), NaiveDate::from_ymd_opt(2024, 2, 29));
    }

    #[test]
    fn timestamps() {
        assert_eq!(timestamp("1970-01-02 00:00:01"), Ok(86_401));
        assert_eq!(timestamp("1970-01-02T00:00:01.250"), Ok(86_401));
        assert!(timestamp("2024-02-30 10:00:00").unwrap_err().starts_with("日期不存在"));
        assert!(timestamp("2024-02-01 25:00:00").unwrap_err().starts_with("时间不存在"));
        assert!(timestamp("2024-02-01").is_err());
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal("123.45", 16, 2), Ok(12_345));
        assert_eq!(decimal("-0.1", 16, 2), Ok(-10));
        assert_eq!(decimal("7", 16, 2), Ok(700));
        assert_eq!(decimal(".5", 16, 2), Ok(50));
        assert_eq!(decimal("1.500", 16, 2), Ok(150));
        assert_eq!(decimal("0.8500", 5, 4), Ok(8_500));
        assert_eq!(decimal("12.345", 16, 2).unwrap_err(), "小数位超过2位：12.345");
        for bad in ["", "-", ".", "1e5", "1,000.00", "abc", "1.2.3", " 1"] {
            assert!(decimal(bad, 16, 2).is_err(), "{bad:?}");
        }
        assert!(decimal("12345678901234.99", 16, 2).is_ok());
        assert!(decimal("123456789012345.00", 16, 2).is_err());
        assert_eq!(format_decimal(-12_345, 2), "-123.45");
    }
}
