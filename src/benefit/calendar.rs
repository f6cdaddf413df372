//! The official PRC working-day calendar (工作日历), as data.
//!
//! A calendar folder holds one file per year, `YYYY.csv`, with the columns `date,kind,name`:
//! `kind` is `holiday` (a public holiday or a day of its 放假调休 span: not worked) or
//! `workday` (a make-up working day, 调休上班, on a Saturday or Sunday). Every other Monday to
//! Friday is a working day, every other Saturday and Sunday is not. A year is covered only
//! when its file exists: a date of any other year is never guessed, the answer is
//! [`Undecided`] naming the missing year.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate, Weekday};

use crate::error::{Error, Result};

/// A question the calendar cannot answer: the year is not in its coverage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Undecided {
    /// The year whose calendar file is missing.
    pub missing_year: i32,
}

impl std::fmt::Display for Undecided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "工作日历缺少 {} 年（无法判定工作日）", self.missing_year)
    }
}

/// What a calendar file says about one date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind {
    /// A public holiday or a day of its span: not a working day.
    Holiday,
    /// A make-up working day (调休上班) on a weekend.
    Workday,
}

/// The working-day calendar of the years it covers.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    years: BTreeSet<i32>,
    days: HashMap<NaiveDate, (DayKind, String)>,
    files: Vec<PathBuf>,
}

impl Calendar {
    /// Loads every `YYYY.csv` of a folder (other files such as `README.md` are ignored).
    pub fn load(dir: &Path) -> Result<Self> {
        let rd = std::fs::read_dir(dir).map_err(|e| Error::io("reading calendar folder", dir, e))?;
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| Error::io("reading calendar folder", dir, e))?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) == Some("csv") {
                files.push(path);
            }
        }
        files.sort();
        let mut cal = Calendar::default();
        for path in &files {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            let year: i32 = match stem.parse() {
                Ok(y) if stem.len() == 4 => y,
                _ => {
                    return Err(Error::config(
                        path,
                        "calendar files must be named YYYY.csv (the year they cover)",
                    ));
                }
            };
            let text =
                std::fs::read_to_string(path).map_err(|e| Error::io("reading calendar file", path, e))?;
            cal.add_year(year, &text).map_err(|m| Error::config(path, m))?;
            cal.files.push(path.clone());
        }
        if cal.years.is_empty() {
            return Err(Error::config(dir, "no calendar file (YYYY.csv) in the folder"));
        }
        Ok(cal)
    }

    /// Loads the shipped calendar, `datasets/calendar/`.
    pub fn load_default() -> Result<Self> {
        Self::load(&crate::paths::datasets_dir().join("calendar"))
    }

    /// Adds one year from the text of its `YYYY.csv`. Each date must lie in that year, appear
    /// once, and a `workday` must fall on a Saturday or Sunday.
    pub fn add_year(&mut self, year: i32, text: &str) -> std::result::Result<(), String> {
        if self.years.contains(&year) {
            return Err(format!("year {year} given twice"));
        }
        let mut rdr = csv::ReaderBuilder::new().from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let headers = rdr.headers().map_err(|e| e.to_string())?.clone();
        let idx = |n: &str| {
            headers.iter().position(|h| h.trim() == n).ok_or_else(|| format!("missing column `{n}`"))
        };
        let (di, ki, ni) = (idx("date")?, idx("kind")?, idx("name")?);
        let mut days = Vec::new();
        for (i, rec) in rdr.records().enumerate() {
            let line = i + 2;
            let rec = rec.map_err(|e| format!("line {line}: {e}"))?;
            let get = |j: usize| rec.get(j).unwrap_or("").trim();
            let date = NaiveDate::parse_from_str(get(di), "%Y-%m-%d")
                .map_err(|e| format!("line {line}: date `{}`: {e}", get(di)))?;
            if date.year() != year {
                return Err(format!("line {line}: {date} is not in {year}"));
            }
            let kind = match get(ki) {
                "holiday" => DayKind::Holiday,
                "workday" => DayKind::Workday,
                k => return Err(format!("line {line}: kind `{k}` is neither `holiday` nor `workday`")),
            };
            if kind == DayKind::Workday && !is_weekend(date) {
                return Err(format!("line {line}: make-up working day {date} is not a Saturday or Sunday"));
            }
            days.push((date, kind, get(ni).to_string()));
        }
        let mut seen = BTreeSet::new();
        for (d, _, _) in &days {
            if !seen.insert(*d) {
                return Err(format!("{d} listed twice"));
            }
        }
        for (d, k, n) in days {
            self.days.insert(d, (k, n));
        }
        self.years.insert(year);
        Ok(())
    }

    /// The years covered.
    pub fn years(&self) -> Vec<i32> {
        self.years.iter().copied().collect()
    }

    /// The files loaded (for the manifest).
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Whether the year is covered.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    /// Whether `d` is a working day; `None` when its year is not covered.
    pub fn is_working_day(&self, d: NaiveDate) -> Option<bool> {
        if !self.covers(d.year()) {
            return None;
        }
        Some(match self.days.get(&d) {
            Some((DayKind::Holiday, _)) => false,
            Some((DayKind::Workday, _)) => true,
            None => !is_weekend(d),
        })
    }

    /// The holiday or make-up name of a date, if the calendar lists it.
    pub fn day_name(&self, d: NaiveDate) -> Option<&str> {
        self.days.get(&d).map(|(_, n)| n.as_str())
    }

    fn working(&self, d: NaiveDate) -> Result<bool, Undecided> {
        self.is_working_day(d).ok_or(Undecided { missing_year: d.year() })
    }

    /// The `n`-th working day after `d` (`d` is day 0 and need not be a working day or be
    /// covered itself). Every day walked must be covered.
    pub fn add_working_days(&self, d: NaiveDate, n: u32) -> Result<NaiveDate, Undecided> {
        let mut day = d;
        let mut left = n;
        while left > 0 {
            day = next_day(day)?;
            if self.working(day)? {
                left -= 1;
            }
        }
        Ok(day)
    }

    /// The number of working days in `(from, to]` (0 when `to <= from`). Every day counted
    /// must be covered.
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> Result<u32, Undecided> {
        let mut n = 0u32;
        let mut day = from;
        while day < to {
            day = next_day(day)?;
            if self.working(day)? {
                n += 1;
            }
        }
        Ok(n)
    }
}

fn next_day(d: NaiveDate) -> Result<NaiveDate, Undecided> {
    d.succ_opt().ok_or(Undecided { missing_year: d.year().saturating_add(1) })
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn shipped() -> Calendar {
        Calendar::load_default().unwrap()
    }

    #[test]
    fn covers_the_shipped_years_only() {
        let c = shipped();
        assert_eq!(c.years(), vec![2024, 2025, 2026]);
        assert_eq!(c.is_working_day(date("2023-12-29")), None);
        assert_eq!(c.is_working_day(date("2027-01-04")), None);
        assert_eq!(c.add_working_days(date("2026-12-20"), 15), Err(Undecided { missing_year: 2027 }));
        assert_eq!(c.add_working_days(date("2023-12-29"), 1), Err(Undecided { missing_year: 2023 }));
    }

    #[test]
    fn day_zero_may_be_outside_coverage() {
        let c = shipped();
        // 2023-12-31 is day 0; 2024-01-01 (元旦) off, 2024-01-02 is the first working day.
        assert_eq!(c.add_working_days(date("2023-12-31"), 1), Ok(date("2024-01-02")));
        assert_eq!(c.add_working_days(date("2023-12-31"), 0), Ok(date("2023-12-31")));
    }

    #[test]
    fn rejects_bad_files() {
        let mut c = Calendar::default();
        assert!(c.add_year(2024, "date,kind,name\n2024-05-06,workday,x\n").unwrap_err().contains("Saturday"));
        assert!(c.add_year(2024, "date,kind,name\n2025-05-01,holiday,x\n").unwrap_err().contains("not in"));
        assert!(c.add_year(2024, "date,kind,name\n2024-05-01,off,x\n").unwrap_err().contains("kind"));
        assert!(c.add_year(2024, "date,kind\n").unwrap_err().contains("name"));
        let dup = "date,kind,name\n2024-05-01,holiday,x\n2024-05-01,holiday,x\n";
        assert!(c.add_year(2024, dup).unwrap_err().contains("twice"));
        assert!(c.years().is_empty());
    }

    #[test]
    fn working_days_between_counts_the_half_open_interval() {
        let c = shipped();
        // 2026-03-06 (Fri) to 2026-03-09 (Mon): one working day.
        assert_eq!(c.working_days_between(date("2026-03-06"), date("2026-03-09")), Ok(1));
        assert_eq!(c.working_days_between(date("2026-03-09"), date("2026-03-06")), Ok(0));
    }
}
