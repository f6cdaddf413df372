//! Policy files: every parameter of `POLICY.md`, one TOML file per scheme version with the
//! insurance years it is in force (see `datasets/policy/README.md`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The fund a scheme pays from, and the settlement field it is recorded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fund {
    /// Resident critical-illness insurance, `hifmi_pay`.
    Hifmi,
    /// Employee large-expense subsidy, `hifob_pay`.
    Hifob,
}

impl Fund {
    pub const ALL: [Fund; 2] = [Fund::Hifmi, Fund::Hifob];
    pub fn as_str(self) -> &'static str {
        match self {
            Fund::Hifmi => "hifmi",
            Fund::Hifob => "hifob",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hifmi" => Some(Fund::Hifmi),
            "hifob" => Some(Fund::Hifob),
            _ => None,
        }
    }
    /// The settlement column the fund's payment is recorded in.
    pub fn column(self) -> &'static str {
        match self {
            Fund::Hifmi => "hifmi_pay",
            Fund::Hifob => "hifob_pay",
        }
    }
    /// The Chinese name used in `detail` texts.
    pub fn label(self) -> &'static str {
        match self {
            Fund::Hifmi => "居民大病保险",
            Fund::Hifob => "职工大额医疗费用补助",
        }
    }
    pub(crate) fn index(self) -> usize {
        match self {
            Fund::Hifmi => 0,
            Fund::Hifob => 1,
        }
    }
}

/// One curve of the resident scheme (ordinary or preferential group).
#[derive(Debug, Clone, PartialEq)]
pub struct ResidentCurve {
    pub deductible: Decimal,
    pub tier_bound: Decimal,
    pub share_up_to_bound: Decimal,
    pub share_above_bound: Decimal,
    /// Yearly cap of `F`; `None` for no cap.
    pub cap: Option<Decimal>,
}

impl ResidentCurve {
    /// `F(x)`, unrounded: 0 up to the deductible, then the two tiers, then the cap.
    pub fn value(&self, x: Decimal) -> Decimal {
        if x <= self.deductible {
            return Decimal::ZERO;
        }
        let low = x.min(self.tier_bound) - self.deductible;
        let high = (x - self.tier_bound).max(Decimal::ZERO);
        let v = self.share_up_to_bound * low.max(Decimal::ZERO) + self.share_above_bound * high;
        match self.cap {
            Some(c) => v.min(c),
            None => v,
        }
    }

    /// `round(F(x))`, half away from zero to the cent.
    pub fn rounded(&self, x: Decimal) -> Decimal {
        round_cent(self.value(x))
    }
}

/// Parameters of the resident formula.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidentParams {
    pub ordinary: ResidentCurve,
    pub preferential: ResidentCurve,
    /// `psn_idet_type` codes on the preferential curve.
    pub preferential_idet_types: Vec<String>,
}

impl ResidentParams {
    pub fn is_preferential(&self, idet: &str) -> bool {
        let idet = idet.trim();
        self.preferential_idet_types.iter().any(|c| c == idet)
    }
    pub fn curve(&self, preferential: bool) -> &ResidentCurve {
        if preferential { &self.preferential } else { &self.ordinary }
    }
}

/// Parameters of the employee formula.
#[derive(Debug, Clone, PartialEq)]
pub struct EmployeeParams {
    /// The basic pool's yearly maximum (`H` threshold), 90,000.
    pub pool_cap: Decimal,
    /// The subsidy's share above it, 0.95.
    pub share: Decimal,
    /// The subsidy's yearly cap, 280,000.
    pub cap: Decimal,
}

/// The formula family of a scheme.
#[derive(Debug, Clone, PartialEq)]
pub enum Formula {
    Resident(ResidentParams),
    Employee(EmployeeParams),
}

/// A payment deadline of one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Deadline {
    pub pay_chnl: String,
    pub working_days: u32,
    /// The contract article, for `detail` texts.
    pub article: String,
}

/// One policy file.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub id: String,
    pub scheme: String,
    pub name: String,
    pub source: String,
    pub fund: Fund,
    pub insutypes: Vec<String>,
    pub from_year: i32,
    /// Last year in force as the file states it; later years fall back to the latest
    /// earlier policy of the scheme (with a note).
    pub to_year: Option<i32>,
    pub covered_classes: Vec<String>,
    pub tolerance: Decimal,
    pub formula: Formula,
    pub deadlines: Vec<Deadline>,
    /// `|diff|` at least this is a `high` finding.
    pub severity_high_at: Decimal,
    /// `|diff|` at least this is `medium`, below `low`.
    pub severity_medium_at: Decimal,
    pub path: PathBuf,
}

impl Policy {
    pub fn covers_class(&self, class: &str) -> bool {
        self.covered_classes.iter().any(|c| c == class)
    }
    pub fn deadline(&self, pay_chnl: &str) -> Option<&Deadline> {
        self.deadlines.iter().find(|d| d.pay_chnl == pay_chnl.trim())
    }
    pub fn in_force(&self, year: i32) -> bool {
        year >= self.from_year && self.to_year.is_none_or(|t| year <= t)
    }
    /// `2024` or `2017–2026` or `2024–`.
    pub fn years_label(&self) -> String {
        match self.to_year {
            Some(t) if t == self.from_year => format!("{t}"),
            Some(t) => format!("{}–{t}", self.from_year),
            None => format!("{}–", self.from_year),
        }
    }
}

/// How a policy serves a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The year lies within the policy's years.
    InForce,
    /// No policy names the year: the latest earlier policy of the scheme applies.
    Extended,
}

/// Every policy file of a folder.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<Policy>,
}

// ---- file format -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    id: String,
    scheme: String,
    name: String,
    #[serde(default)]
    source: String,
    formula: String,
    fund: String,
    insutypes: Vec<String>,
    from_year: i32,
    to_year: Option<i32>,
    covered_classes: Vec<String>,
    tolerance: String,
    resident: Option<RawResident>,
    employee: Option<RawEmployee>,
    #[serde(default)]
    deadline: Vec<RawDeadline>,
    severity: Option<RawSeverity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResident {
    preferential_idet_types: Vec<String>,
    ordinary: RawCurve,
    preferential: RawCurve,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCurve {
    deductible: String,
    tier_bound: String,
    share_up_to_bound: String,
    share_above_bound: String,
    cap: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmployee {
    pool_cap: String,
    share: String,
    cap: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeadline {
    pay_chnl: String,
    working_days: u32,
    #[serde(default)]
    article: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeverity {
    high_at: String,
    medium_at: String,
}

fn dec(field: &str, s: &str) -> std::result::Result<Decimal, String> {
    s.trim().parse::<Decimal>().map_err(|e| format!("`{field}` = \"{s}\" is not a decimal: {e}"))
}

fn share(field: &str, s: &str) -> std::result::Result<Decimal, String> {
    let d = dec(field, s)?;
    if d < Decimal::ZERO || d > Decimal::ONE {
        return Err(format!("`{field}` = {d} is not a share between 0 and 1"));
    }
    Ok(d)
}

fn money(field: &str, s: &str) -> std::result::Result<Decimal, String> {
    let d = dec(field, s)?;
    if d < Decimal::ZERO {
        return Err(format!("`{field}` = {d} is negative"));
    }
    Ok(d)
}

fn curve(group: &str, c: &RawCurve) -> std::result::Result<ResidentCurve, String> {
    let f = |n: &str| format!("resident.{group}.{n}");
    let out = ResidentCurve {
        deductible: money(&f("deductible"), &c.deductible)?,
        tier_bound: money(&f("tier_bound"), &c.tier_bound)?,
        share_up_to_bound: share(&f("share_up_to_bound"), &c.share_up_to_bound)?,
        share_above_bound: share(&f("share_above_bound"), &c.share_above_bound)?,
        cap: c.cap.as_deref().map(|s| money(&f("cap"), s)).transpose()?,
    };
    if out.deductible > out.tier_bound {
        return Err(format!("resident.{group}: deductible above tier_bound"));
    }
    Ok(out)
}

impl Policy {
    /// Parses the text of a policy file.
    pub fn parse(text: &str, path: &Path) -> std::result::Result<Self, String> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| e.to_string())?;
        let fund = Fund::parse(raw.fund.trim())
            .ok_or_else(|| format!("`fund` = \"{}\": expected `hifmi` or `hifob`", raw.fund))?;
        let formula = match raw.formula.as_str() {
            "resident" => {
                let r = raw.resident.as_ref().ok_or("formula `resident` needs a [resident] table")?;
                Formula::Resident(ResidentParams {
                    ordinary: curve("ordinary", &r.ordinary)?,
                    preferential: curve("preferential", &r.preferential)?,
                    preferential_idet_types: r
                        .preferential_idet_types
                        .iter()
                        .map(|s| s.trim().to_string())
                        .collect(),
                })
            }
            "employee" => {
                let e = raw.employee.as_ref().ok_or("formula `employee` needs an [employee] table")?;
                Formula::Employee(EmployeeParams {
                    pool_cap: money("employee.pool_cap", &e.pool_cap)?,
                    share: share("employee.share", &e.share)?,
                    cap: money("employee.cap", &e.cap)?,
                })
            }
            f => return Err(format!("`formula` = \"{f}\": expected `resident` or `employee`")),
        };
        if let Some(t) = raw.to_year
            && t < raw.from_year
        {
            return Err(format!("to_year {t} before from_year {}", raw.from_year));
        }
        if raw.insutypes.is_empty() {
            return Err("`insutypes` is empty".into());
        }
        if raw.covered_classes.is_empty() {
            return Err("`covered_classes` is empty".into());
        }
        let mut deadlines: Vec<Deadline> = Vec::new();
        for d in &raw.deadline {
            let ch = d.pay_chnl.trim().to_string();
            if deadlines.iter().any(|x| x.pay_chnl == ch) {
                return Err(format!("deadline for pay_chnl `{ch}` given twice"));
            }
            if d.working_days == 0 {
                return Err(format!("deadline for pay_chnl `{ch}`: working_days must be positive"));
            }
            deadlines.push(Deadline {
                pay_chnl: ch,
                working_days: d.working_days,
                article: d.article.clone(),
            });
        }
        let (high, medium) = match &raw.severity {
            Some(s) => (money("severity.high_at", &s.high_at)?, money("severity.medium_at", &s.medium_at)?),
            None => (Decimal::from(1000), Decimal::from(10)),
        };
        Ok(Policy {
            id: raw.id.trim().to_string(),
            scheme: raw.scheme.trim().to_string(),
            name: raw.name,
            source: raw.source,
            fund,
            insutypes: raw.insutypes.iter().map(|s| s.trim().to_string()).collect(),
            from_year: raw.from_year,
            to_year: raw.to_year,
            covered_classes: raw.covered_classes.iter().map(|s| s.trim().to_string()).collect(),
            tolerance: money("tolerance", &raw.tolerance)?,
            formula,
            deadlines,
            severity_high_at: high,
            severity_medium_at: medium,
            path: path.to_path_buf(),
        })
    }
}

impl PolicySet {
    /// Loads every `*.toml` of a folder.
    pub fn load(dir: &Path) -> Result<Self> {
        let rd = std::fs::read_dir(dir).map_err(|e| Error::io("reading policy folder", dir, e))?;
        let mut files = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| Error::io("reading policy folder", dir, e))?;
            let p = entry.path();
            if p.extension().and_then(|e| e.to_str()) == Some("toml") {
                files.push(p);
            }
        }
        files.sort();
        let mut policies = Vec::new();
        for p in files {
            let text = std::fs::read_to_string(&p).map_err(|e| Error::io("reading policy file", &p, e))?;
            policies.push(Policy::parse(&text, &p).map_err(|m| Error::config(&p, m))?);
        }
        if policies.is_empty() {
            return Err(Error::config(dir, "no policy file (*.toml) in the folder"));
        }
        Self::from_policies(policies).map_err(|m| Error::config(dir, m))
    }

    /// Loads the shipped policies, `datasets/policy/`.
    pub fn load_default() -> Result<Self> {
        Self::load(&crate::paths::datasets_dir().join("policy"))
    }

    /// Builds a set, checking that ids are unique, that versions of one scheme do not
    /// overlap, and that no two schemes claim one fund or one insutype.
    pub fn from_policies(mut policies: Vec<Policy>) -> std::result::Result<Self, String> {
        policies.sort_by(|a, b| (a.scheme.as_str(), a.from_year).cmp(&(b.scheme.as_str(), b.from_year)));
        for (i, a) in policies.iter().enumerate() {
            for b in &policies[i + 1..] {
                if a.id == b.id {
                    return Err(format!("policy id `{}` used twice", a.id));
                }
                if a.scheme == b.scheme {
                    let a_end = a.to_year.unwrap_or(i32::MAX);
                    if b.from_year <= a_end {
                        return Err(format!(
                            "policies `{}` and `{}` of one scheme overlap in years",
                            a.id, b.id
                        ));
                    }
                    if a.fund != b.fund {
                        return Err(format!(
                            "policies `{}` and `{}` of one scheme name different funds",
                            a.id, b.id
                        ));
                    }
                } else {
                    if a.fund == b.fund {
                        return Err(format!(
                            "schemes `{}` and `{}` both pay from `{}`",
                            a.scheme,
                            b.scheme,
                            a.fund.as_str()
                        ));
                    }
                    if let Some(t) = a.insutypes.iter().find(|t| b.insutypes.contains(t)) {
                        return Err(format!(
                            "schemes `{}` and `{}` both claim insutype {t}",
                            a.scheme, b.scheme
                        ));
                    }
                }
            }
        }
        Ok(PolicySet { policies })
    }

    /// All policies, by scheme then year.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The policy of a fund for an insurance year: the one in force, else the latest earlier
    /// one (`Served::Extended`); `None` before the first policy.
    pub fn for_fund(&self, fund: Fund, year: i32) -> Option<(&Policy, Served)> {
        let mut best: Option<&Policy> = None;
        for p in self.policies.iter().filter(|p| p.fund == fund && p.from_year <= year) {
            if p.in_force(year) {
                return Some((p, Served::InForce));
            }
            if best.is_none_or(|b| p.from_year > b.from_year) {
                best = Some(p);
            }
        }
        best.map(|p| (p, Served::Extended))
    }

    /// The fund whose scheme claims an `insutype` (in any year).
    pub fn fund_of_insutype(&self, insutype: &str) -> Option<Fund> {
        let t = insutype.trim();
        self.policies.iter().find(|p| p.insutypes.iter().any(|x| x == t)).map(|p| p.fund)
    }

    /// Policy ids with their files (for the manifest).
    pub fn versions(&self) -> BTreeMap<String, PathBuf> {
        self.policies.iter().map(|p| (p.id.clone(), p.path.clone())).collect()
    }
}

/// Rounds half away from zero to the cent.
pub fn round_cent(d: Decimal) -> Decimal {
    let mut r = d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    r.rescale(2);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn shipped_policies_hold_policy_md() {
        let set = PolicySet::load_default().unwrap();
        let (h, served) = set.for_fund(Fund::Hifmi, 2024).unwrap();
        assert_eq!(served, Served::InForce);
        let Formula::Resident(r) = &h.formula else { panic!("resident formula") };
        assert_eq!(r.ordinary.deductible, d("11000"));
        assert_eq!(r.ordinary.cap, Some(d("400000")));
        assert_eq!(r.preferential.deductible, d("5500"));
        assert_eq!(r.preferential.cap, None);
        assert!(r.is_preferential("1102") && !r.is_preferential("1104"));
        assert_eq!(h.deadline("1").unwrap().working_days, 15);
        assert_eq!(h.deadline("2").unwrap().working_days, 20);
        assert_eq!(h.tolerance, d("0.01"));
        assert!(
            h.covers_class("inpatient") && h.covers_class("chronic_special") && !h.covers_class("outpatient")
        );
        assert_eq!(set.for_fund(Fund::Hifmi, 2026).unwrap().1, Served::Extended);
        assert!(set.for_fund(Fund::Hifmi, 2023).is_none());

        let (e, served) = set.for_fund(Fund::Hifob, 2017).unwrap();
        assert_eq!(served, Served::InForce);
        let Formula::Employee(p) = &e.formula else { panic!("employee formula") };
        assert_eq!((p.pool_cap, p.share, p.cap), (d("90000"), d("0.95"), d("280000")));
        assert_eq!(e.deadline("1").unwrap().working_days, 30);
        assert_eq!(e.deadline("2").unwrap().working_days, 30);
        assert!(set.for_fund(Fund::Hifob, 2016).is_none());
        assert_eq!(set.fund_of_insutype("390"), Some(Fund::Hifmi));
        assert_eq!(set.fund_of_insutype("310"), Some(Fund::Hifob));
        assert_eq!(set.fund_of_insutype("999"), None);
    }

    #[test]
    fn curve_and_rounding() {
        let c = ResidentCurve {
            deductible: d("11000"),
            tier_bound: d("100000"),
            share_up_to_bound: d("0.6"),
            share_above_bound: d("0.7"),
            cap: Some(d("400000")),
        };
        assert_eq!(c.value(d("11000")), Decimal::ZERO);
        assert_eq!(c.value(d("100000")), d("53400"));
        assert_eq!(c.value(d("141000")), d("82100"));
        assert_eq!(c.value(d("599000")), d("400000"));
        assert_eq!(c.rounded(d("11000.01")), d("0.01")); // 0.006 → 0.01
        assert_eq!(round_cent(d("0.005")), d("0.01"));
        assert_eq!(round_cent(d("-0.005")), d("-0.01"));
        assert_eq!(round_cent(d("0.00499")), d("0.00"));
    }

    #[test]
    fn rejects_inconsistent_sets() {
        let set = PolicySet::load_default().unwrap();
        let mut ps = set.policies().to_vec();
        let mut dup = ps[0].clone();
        dup.id = "other".into();
        ps.push(dup);
        assert!(PolicySet::from_policies(ps).unwrap_err().contains("overlap"));
        let bad = "id='x'\nscheme='s'\nname='n'\nformula='resident'\nfund='hifmi'\ninsutypes=['390']\n\
                   from_year=2024\ncovered_classes=['inpatient']\ntolerance='0.01'\n";
        assert!(Policy::parse(bad, Path::new("x.toml")).unwrap_err().contains("[resident]"));
        let float = bad.replace("tolerance='0.01'", "tolerance=0.01");
        assert!(Policy::parse(&float, Path::new("x.toml")).is_err());
    }
}
