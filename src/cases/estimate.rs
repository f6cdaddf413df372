//! How much the first pass misses: Horvitz–Thompson estimates of the population's violation
//! count, rate and money at stake from one run's second-review sample, and rule precision.
//!
//! The run's sample (`review_sample.csv`) is a stratified probability sample: each stratum
//! `h` (locality × certainty / out-of-area / risk) of `N_h` settlements had `n_h` drawn, each
//! with a known inclusion probability `π_i` (`datasets/review/README.md`). Of the drawn
//! settlements, the `r_h` whose case has a decision count (确认违规, 申诉中, 已扣款, 已追回:
//! `y = 1` and the amount confirmed; 已排除: `y = 0`); the reviewed ones are taken as a
//! random subsample of the drawn ones within their stratum, so each counts
//! `(n_h / r_h) / π_i` times:
//!
//! `T̂_h = (n_h / r_h) Σ y_i / π_i`, and with `z_i = n_h y_i / π_i`
//! `v̂(T̂_h) = (1 − r_h / N_h) s²_z / r_h` (the with-replacement variance with a finite
//! population correction: conservative for the systematic PPS draw, exact 0 for a certainty
//! stratum reviewed in full). Strata with one review are collapsed for the variance.
//!
//! Strata are independent: totals and variances add up per locality and overall. The rate is
//! the total over `N`. The interval is `T̂ ± t_{df} √v̂` with `df = Σ (r_h − 1)`, cut at 0 (and
//! at `N` for counts). A stratum with settlements but no review contributes nothing and is
//! listed: the estimate then covers the reviewed strata only. "Missed" is the same estimate
//! for the settlements the first pass did not flag (no finding in that run).
//!
//! Estimates are statistics, computed in `f64` and shown rounded; exact money (amounts to
//! deduct) stays in `Decimal`.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use super::auth::{Actor, Permission};
use super::{CaseError, CaseResult, Status, Store};

/// An estimate with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    pub estimate: f64,
    /// `None` when the variance cannot be estimated (a stratum with one review).
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub std_error: Option<f64>,
}

/// The estimates of one locality, or of all (`locality` empty).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EstimateLine {
    pub locality: String,
    /// Settlements that stand (the sampling frame).
    pub population: i64,
    pub drawn: i64,
    pub reviewed: i64,
    /// Violations found among the reviewed.
    pub confirmed: i64,
    /// Estimated violating settlements.
    pub violations: Interval,
    /// Estimated share of violating settlements.
    pub rate: Interval,
    /// Estimated money at stake (yuan).
    pub amount: Interval,
    /// The same among the settlements the first pass did not flag.
    pub missed_violations: Interval,
    pub missed_amount: Interval,
    /// Strata with settlements but no reviewed case (`locality/stratum`).
    pub unreviewed_strata: Vec<String>,
}

/// A rule's precision over every decided case with one of its findings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RulePrecision {
    pub rule_id: String,
    pub category: String,
    pub reviewed: i64,
    pub confirmed: i64,
    /// confirmed / reviewed.
    pub precision: Option<f64>,
}

/// The estimates of one run's sample.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Estimate {
    pub run_id: String,
    pub confidence: f64,
    pub localities: Vec<EstimateLine>,
    pub overall: EstimateLine,
    pub rules: Vec<RulePrecision>,
}

/// One reviewed unit's four outcomes: violation, amount, missed violation, missed amount.
type Y = [f64; 4];

#[derive(Default)]
struct Stratum {
    population: i64,
    drawn: i64,
    /// (π, y) of the reviewed units.
    reviewed: Vec<(f64, Y)>,
    confirmed: i64,
}

impl Stratum {
    /// (total, variance, variance estimable, df) per measure.
    fn estimate(&self) -> ([f64; 4], [f64; 4], bool, f64) {
        let r = self.reviewed.len();
        if r == 0 {
            return ([0.0; 4], [0.0; 4], true, 0.0);
        }
        let n = self.drawn.max(r as i64) as f64;
        let big_n = self.population.max(n as i64) as f64;
        let mut total = [0.0; 4];
        let mut var = [0.0; 4];
        for (k, (tot, va)) in total.iter_mut().zip(var.iter_mut()).enumerate() {
            let z: Vec<f64> = self.reviewed.iter().map(|(p, y)| n * y[k] / p).collect();
            let mean = z.iter().sum::<f64>() / r as f64;
            *tot = mean;
            if r >= 2 {
                let s2 = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (r as f64 - 1.0);
                *va = (1.0 - r as f64 / big_n).max(0.0) * s2 / r as f64;
            }
        }
        let estimable = r >= 2 || (r as f64) >= big_n;
        (total, var, estimable, (r as f64 - 1.0).max(0.0))
    }
}

fn interval(t: f64, v: f64, estimable: bool, q: f64, cap: Option<f64>) -> Interval {
    if !estimable {
        return Interval { estimate: t, low: None, high: None, std_error: None };
    }
    let se = v.max(0.0).sqrt();
    let mut high = t + q * se;
    if let Some(c) = cap {
        high = high.min(c);
    }
    Interval { estimate: t, low: Some((t - q * se).max(0.0)), high: Some(high), std_error: Some(se) }
}

fn combine(locality: &str, strata: &[(&String, &Stratum)], confidence: f64) -> EstimateLine {
    let mut total = [0.0; 4];
    let mut var = [0.0; 4];
    let mut estimable = true;
    let mut df = 0.0;
    let (mut pop, mut drawn, mut reviewed, mut confirmed) = (0, 0, 0, 0);
    let mut unreviewed = Vec::new();
    // Strata with a single review (and more settlements) have no variance estimate of their
    // own: they are collapsed for the variance, v = k/(k−1) Σ (T̂_h − mean T̂)² over the k such
    // strata (the collapsed-strata estimator, conservative).
    let mut singles: Vec<[f64; 4]> = Vec::new();
    for (name, s) in strata {
        let (t, v, e, d) = s.estimate();
        total.iter_mut().zip(t).for_each(|(a, b)| *a += b);
        var.iter_mut().zip(v).for_each(|(a, b)| *a += b);
        if !e {
            singles.push(t);
        }
        df += d;
        pop += s.population;
        drawn += s.drawn;
        reviewed += s.reviewed.len() as i64;
        confirmed += s.confirmed;
        if s.reviewed.is_empty() && s.population > 0 {
            unreviewed.push((*name).clone());
        }
    }
    match singles.len() {
        0 => {}
        1 => estimable = false,
        k => {
            for (m, vm) in var.iter_mut().enumerate() {
                let mean = singles.iter().map(|t| t[m]).sum::<f64>() / k as f64;
                *vm +=
                    k as f64 / (k as f64 - 1.0) * singles.iter().map(|t| (t[m] - mean).powi(2)).sum::<f64>();
            }
            df += (k - 1) as f64;
        }
    }
    let alpha = (1.0 - confidence) / 2.0;
    let q = if df >= 1.0 {
        StudentsT::new(0.0, 1.0, df).map(|t| t.inverse_cdf(1.0 - alpha)).unwrap_or(1.96)
    } else {
        Normal::standard().inverse_cdf(1.0 - alpha)
    };
    let estimable = estimable && reviewed > 0;
    let n = pop as f64;
    let rate = |t: f64, v: f64| {
        if n > 0.0 {
            interval(t / n, v / (n * n), estimable, q, Some(1.0))
        } else {
            interval(0.0, 0.0, false, q, None)
        }
    };
    EstimateLine {
        locality: locality.to_string(),
        population: pop,
        drawn,
        reviewed,
        confirmed,
        violations: interval(total[0], var[0], estimable, q, Some(n)),
        rate: rate(total[0], var[0]),
        amount: interval(total[1], var[1], estimable, q, None),
        missed_violations: interval(total[2], var[2], estimable, q, Some(n)),
        missed_amount: interval(total[3], var[3], estimable, q, None),
        unreviewed_strata: unreviewed,
    }
}

impl Store {
    /// The estimates from the sample of `run_id` (default: the latest merged run with a
    /// sample) at the given confidence (e.g. 0.95).
    pub fn estimate(&self, actor: &Actor, run_id: Option<&str>, confidence: f64) -> CaseResult<Estimate> {
        actor.require(Permission::ViewCases)?;
        if !(confidence > 0.0 && confidence < 1.0) {
            return Err(CaseError::Invalid(format!("置信水平须在 0 与 1 之间（收到 {confidence}）")));
        }
        let run_id: String = match run_id {
            Some(r) => r.to_string(),
            None => self
                .conn
                .query_row(
                    "SELECT r.run_id FROM runs r WHERE EXISTS (SELECT 1 FROM samples s WHERE s.run_id = r.run_id)
                     ORDER BY r.started_at DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| CaseError::NotFound("带复审抽样的审核结果（请先合并一次 medaudit run 的输出）".into()))?,
        };
        let mut strata: BTreeMap<String, Stratum> = BTreeMap::new();
        let mut st =
            self.conn.prepare("SELECT locality, stratum, population, drawn FROM strata WHERE run_id = ?1")?;
        let rows: Vec<(String, String, i64, i64)> = st
            .query_map([&run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        if rows.is_empty() {
            return Err(CaseError::NotFound(format!("审核结果 {run_id} 的抽样设计")));
        }
        for (loc, kind, pop, drawn) in rows {
            let s = strata.entry(format!("{loc}/{kind}")).or_default();
            s.population = pop;
            s.drawn = drawn;
        }
        let mut st = self.conn.prepare(
            "SELECT s.stratum, s.inclusion_prob, s.flagged, c.status, c.deduct_cents
             FROM samples s JOIN cases c ON c.case_id = s.case_id WHERE s.run_id = ?1",
        )?;
        let rows: Vec<(String, f64, bool, String, Option<i64>)> = st
            .query_map([&run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
            .collect::<Result<_, _>>()?;
        for (stratum, p, flagged, status, cents) in rows {
            let status = Status::parse_stored(&status)?;
            if !status.is_decided() {
                continue;
            }
            let v = if status.is_violation() { 1.0 } else { 0.0 };
            let amount = if status.is_violation() { cents.unwrap_or(0) as f64 / 100.0 } else { 0.0 };
            let missed = if flagged { 0.0 } else { 1.0 };
            let s = strata.entry(stratum).or_default();
            s.reviewed.push((p, [v, amount, v * missed, amount * missed]));
            s.confirmed += v as i64;
        }
        let mut by_locality: BTreeMap<String, Vec<(&String, &Stratum)>> = BTreeMap::new();
        for (name, s) in &strata {
            let loc = name.split('/').next().unwrap_or("").to_string();
            by_locality.entry(loc).or_default().push((name, s));
        }
        let localities = by_locality.iter().map(|(loc, v)| combine(loc, v, confidence)).collect();
        let all: Vec<(&String, &Stratum)> = strata.iter().collect();
        let overall = combine("", &all, confidence);

        // Rule precision over every decided case.
        let decided: Vec<&str> = Status::ALL.iter().filter(|s| s.is_decided()).map(|s| s.as_str()).collect();
        let sql = format!(
            "SELECT f.rule_id, MIN(f.category), c.case_id, c.status FROM findings f JOIN cases c ON c.case_id = f.case_id
             WHERE c.status IN ({}) GROUP BY f.rule_id, c.case_id ORDER BY f.rule_id",
            decided.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ")
        );
        let mut st = self.conn.prepare(&sql)?;
        let rows: Vec<(String, String, i64, String)> = st
            .query_map(params![], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        let mut rules: BTreeMap<String, RulePrecision> = BTreeMap::new();
        for (rule, cat, _, status) in rows {
            let e = rules.entry(rule.clone()).or_insert(RulePrecision {
                rule_id: rule,
                category: cat,
                reviewed: 0,
                confirmed: 0,
                precision: None,
            });
            e.reviewed += 1;
            if Status::parse_stored(&status)?.is_violation() {
                e.confirmed += 1;
            }
        }
        let rules = rules
            .into_values()
            .map(|mut r| {
                r.precision = (r.reviewed > 0).then(|| r.confirmed as f64 / r.reviewed as f64);
                r
            })
            .collect();
        Ok(Estimate { run_id, confidence, localities, overall, rules })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fully_reviewed_certainty_stratum_has_no_variance() {
        let s = Stratum {
            population: 3,
            drawn: 3,
            reviewed: vec![(1.0, [1.0, 100.0, 0.0, 0.0]), (1.0, [0.0; 4]), (1.0, [1.0, 50.0, 1.0, 50.0])],
            confirmed: 2,
        };
        let (t, v, ok, _) = s.estimate();
        assert_eq!(t[0], 2.0);
        assert_eq!(t[1], 150.0);
        assert_eq!(v[0], 0.0);
        assert!(ok);
    }

    #[test]
    fn horvitz_thompson_weights_by_inverse_probability() {
        // Two of ten drawn with π = 0.2 each, both reviewed, one violation of 10 yuan:
        // T = Σ y/π = 1/0.2 = 5 violations, 50 yuan.
        let s = Stratum {
            population: 10,
            drawn: 2,
            reviewed: vec![(0.2, [1.0, 10.0, 1.0, 10.0]), (0.2, [0.0; 4])],
            confirmed: 1,
        };
        let (t, v, ok, df) = s.estimate();
        assert!((t[0] - 5.0).abs() < 1e-12);
        assert!((t[1] - 50.0).abs() < 1e-12);
        // z = (10, 0): s² = 50, v = (1 − 2/10) × 50 / 2 = 20.
        assert!((v[0] - 20.0).abs() < 1e-9);
        assert!(ok);
        assert_eq!(df, 1.0);
        let line = combine("x", &[(&"x/risk".to_string(), &s)], 0.95);
        assert!((line.rate.estimate - 0.5).abs() < 1e-12);
        let (lo, hi) = (line.violations.low.unwrap(), line.violations.high.unwrap());
        assert!(lo == 0.0 && hi == 10.0, "{lo} {hi}");
    }
}
