//! Dates as `Date32` day numbers, and the working-day calendar read from
//! `datasets/calendar/YYYY.csv` (columns `date,kind,name`; `kind` is `holiday` or `workday`).
//! Nothing about holidays is known in code: without calendar files the generator only writes
//! payments whose verdict does not depend on holidays.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use chrono::{Datelike, NaiveDate};

/// Days since 1970-01-01 of a calendar date.
pub fn ymd(y: i32, m: u32, d: u32) -> i32 {
    NaiveDate::from_ymd_opt(y, m, d).map_or(0, days)
}

pub fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

pub fn date(day: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Duration::days(i64::from(day))
}

pub fn year(day: i32) -> i32 {
    date(day).year()
}

/// 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday).
pub fn weekday(day: i32) -> i32 {
    (day + 3).rem_euclid(7)
}

/// `YYYY-MM-DD`.
pub fn fmt_date(day: i32, out: &mut String) {
    let d = date(day);
    use std::fmt::Write;
    let _ = write!(out, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day());
}

/// A fast `YYYY-MM-DD` formatter over a fixed range of days.
pub struct DateText {
    first: i32,
    text: Vec<[u8; 10]>,
}

impl DateText {
    pub fn new(first: i32, last: i32) -> Self {
        let text = (first..=last)
            .map(|d| {
                let mut s = String::with_capacity(10);
                fmt_date(d, &mut s);
                let mut b = [0u8; 10];
                b.copy_from_slice(&s.as_bytes()[..10]);
                b
            })
            .collect();
        DateText { first, text }
    }

    pub fn push(&self, day: i32, out: &mut Vec<u8>) {
        match usize::try_from(day - self.first).ok().and_then(|i| self.text.get(i)) {
            Some(b) => out.extend_from_slice(b),
            None => {
                let mut s = String::new();
                fmt_date(day, &mut s);
                out.extend_from_slice(s.as_bytes());
            }
        }
    }

    /// `YYYY-MM-DD HH:MM:SS` of a timestamp in seconds (local time, no zone).
    pub fn push_ts(&self, ts: i64, out: &mut Vec<u8>) {
        let day = ts.div_euclid(86_400) as i32;
        let sec = ts.rem_euclid(86_400);
        self.push(day, out);
        let (h, m, s) = (sec / 3600, sec / 60 % 60, sec % 60);
        out.extend_from_slice(&[
            b' ',
            b'0' + (h / 10) as u8,
            b'0' + (h % 10) as u8,
            b':',
            b'0' + (m / 10) as u8,
            b'0' + (m % 10) as u8,
            b':',
            b'0' + (s / 10) as u8,
            b'0' + (s % 10) as u8,
        ]);
    }
}

/// The working-day calendar of the years it has files for.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    pub years: BTreeSet<i32>,
    /// day → true for a make-up working day, false for a holiday
    special: HashMap<i32, bool>,
    pub holidays: Vec<i32>,
}

impl Calendar {
    /// Reads `dir/YYYY.csv`; a missing folder gives an empty calendar (no year covered).
    pub fn load(dir: &Path) -> crate::Result<Self> {
        let mut cal = Calendar::default();
        let Ok(rd) = std::fs::read_dir(dir) else {
            return Ok(cal);
        };
        let mut files: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for path in files {
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else { continue };
            if path.extension().and_then(|e| e.to_str()) != Some("csv") || stem.len() != 4 {
                continue;
            }
            let Ok(y) = stem.parse::<i32>() else { continue };
            let text =
                std::fs::read_to_string(&path).map_err(|e| crate::Error::io("reading calendar", &path, e))?;
            for (i, line) in text.trim_start_matches('\u{feff}').lines().enumerate().skip(1) {
                let mut f = line.split(',');
                let (Some(d), Some(k)) = (f.next(), f.next()) else { continue };
                let day = NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|_| {
                    crate::Error::config(&path, format!("line {}: `{d}` is not a date", i + 1))
                })?;
                let work = match k.trim() {
                    "holiday" => false,
                    "workday" => true,
                    other => {
                        return Err(crate::Error::config(
                            &path,
                            format!("line {}: unknown kind `{other}`", i + 1),
                        ));
                    }
                };
                cal.special.insert(days(day), work);
                if !work {
                    cal.holidays.push(days(day));
                }
            }
            cal.years.insert(y);
        }
        cal.holidays.sort_unstable();
        Ok(cal)
    }

    pub fn covers(&self, day: i32) -> bool {
        self.years.contains(&year(day))
    }

    /// Whether a day is worked; `None` outside the calendar's years.
    pub fn is_working(&self, day: i32) -> Option<bool> {
        if !self.covers(day) {
            return None;
        }
        Some(match self.special.get(&day) {
            Some(&w) => w,
            None => weekday(day) < 5,
        })
    }

    /// The `n`-th working day after `d0` (day 0 is `d0` itself); `None` beyond coverage.
    pub fn add_working_days(&self, d0: i32, n: u32) -> Option<i32> {
        let mut d = d0;
        let mut k = 0;
        while k < n {
            d += 1;
            if self.is_working(d)? {
                k += 1;
            }
        }
        Some(d)
    }

    /// The first working day at or after `d`.
    pub fn next_working(&self, d: i32) -> Option<i32> {
        let mut d = d;
        while !self.is_working(d)? {
            d += 1;
        }
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_round_trip() {
        let d = ymd(2024, 2, 29);
        assert_eq!(year(d), 2024);
        assert_eq!(weekday(ymd(2026, 2, 10)), 1); // a Tuesday
        let mut s = String::new();
        fmt_date(d, &mut s);
        assert_eq!(s, "2024-02-29");
        let t = DateText::new(ymd(2024, 1, 1), ymd(2024, 12, 31));
        let mut b = Vec::new();
        t.push_ts(i64::from(d) * 86_400 + 3600 * 9 + 61, &mut b);
        assert_eq!(String::from_utf8(b).unwrap(), "2024-02-29 09:01:01");
    }

    #[test]
    fn shipped_calendar_gives_the_worked_examples() {
        let cal = Calendar::load(&crate::paths::datasets_dir().join("calendar")).unwrap();
        if !cal.covers(ymd(2026, 2, 10)) {
            // The shipped calendar is maintained elsewhere; its absence is not this module's
            // concern, but an empty calendar must decide nothing.
            assert_eq!(cal.add_working_days(ymd(2026, 2, 10), 15), None);
            return;
        }
        // POLICY-EXAMPLES D: 15 working days from 2026-02-10 end on 2026-03-09.
        assert_eq!(cal.add_working_days(ymd(2026, 2, 10), 15), Some(ymd(2026, 3, 9)));
        assert_eq!(cal.add_working_days(ymd(2025, 9, 22), 20), Some(ymd(2025, 10, 24)));
        assert_eq!(cal.add_working_days(ymd(2024, 4, 22), 30), Some(ymd(2024, 6, 4)));
    }
}
