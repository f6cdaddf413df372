//! The risk score of a settlement from its findings, and the `reason` that explains it.
//!
//! A settlement's findings are first merged per rule (a rule that hits a settlement several
//! times counts once: the amounts add up, the highest severity stands). Each rule hit then
//! scores
//!
//! ```text
//! severity weight × category weight × rule weight × (1 + amount_weight × ln(1 + |amount| / amount_unit_yuan))
//! ```
//!
//! Rules in one signal group (they measure the same thing) count once: only the group's
//! highest-scoring hit. The settlement's score is the sum of what counts. Amounts are summed
//! as exact decimals and turned into `f64` only for the amount term: the score is not money.

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::error::{Error, Result};
use crate::findings::Severity;
use crate::input_err;

use super::config::SampleConfig;

/// One rule's findings on one settlement, merged.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RuleHit {
    pub rule_id: String,
    pub category: String,
    pub severity: Severity,
    pub amount: Decimal,
}

/// The score of one settlement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scored {
    pub score: f64,
    /// A counted finding of high severity: the settlement belongs to the certainty stratum.
    pub high: bool,
    pub reason: String,
}

/// A text column of a batch as `Utf8` (casting other string types).
pub(crate) fn text_column(b: &RecordBatch, name: &str, table: &str) -> Result<ArrayRef> {
    let c = b.column_by_name(name).ok_or_else(|| input_err!("{table}: column `{name}` is missing"))?;
    match c.data_type() {
        DataType::Utf8 => Ok(c.clone()),
        DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => {
            arrow::compute::cast(c, &DataType::Utf8)
                .map_err(|e| Error::arrow(format!("{table}: column `{name}`"), e))
        }
        t => Err(input_err!("{table}: column `{name}` is {t}, not text")),
    }
}

/// Collects the findings per settlement: `index` maps the settlements in the population to
/// their position; findings on other settlements (reversals, cancelled ones) are left out.
/// Rules with weight 0 are ignored.
pub(crate) fn collect(
    findings: &[RecordBatch],
    index: &HashMap<&str, usize>,
    cfg: &SampleConfig,
) -> Result<Vec<Vec<RuleHit>>> {
    let mut hits: Vec<Vec<RuleHit>> = vec![Vec::new(); index.len()];
    for b in findings {
        let setl = text_column(b, "setl_id", "findings")?;
        let rule = text_column(b, "rule_id", "findings")?;
        let cat = text_column(b, "category", "findings")?;
        let sev = text_column(b, "severity", "findings")?;
        let (setl, rule, cat, sev) = (
            setl.as_string::<i32>(),
            rule.as_string::<i32>(),
            cat.as_string::<i32>(),
            sev.as_string::<i32>(),
        );
        let amt = b
            .column_by_name("amount_at_risk")
            .ok_or_else(|| input_err!("findings: column `amount_at_risk` is missing"))?;
        let scale = match amt.data_type() {
            DataType::Decimal128(_, s) if (0..=28).contains(s) => *s as u32,
            t => return Err(input_err!("findings: column `amount_at_risk` is {t}, not a decimal")),
        };
        let amt = amt.as_primitive::<arrow::datatypes::Decimal128Type>();
        for r in 0..b.num_rows() {
            if setl.is_null(r) {
                continue;
            }
            let Some(&i) = index.get(setl.value(r)) else { continue };
            if rule.is_null(r) {
                return Err(input_err!("findings: a finding on settlement {} has no rule_id", setl.value(r)));
            }
            let rule_id = rule.value(r);
            if cfg.score.rule.get(rule_id) == Some(&0.0) {
                continue;
            }
            let severity =
                if sev.is_null(r) { None } else { Severity::parse(sev.value(r)) }.ok_or_else(|| {
                    input_err!(
                        "findings: rule {rule_id} on settlement {}: severity `{}` is not high, medium or low",
                        setl.value(r),
                        if sev.is_null(r) { "" } else { sev.value(r) }
                    )
                })?;
            let category = if cat.is_null(r) { "" } else { cat.value(r) };
            let amount = if amt.is_null(r) {
                Decimal::ZERO
            } else {
                Decimal::try_from_i128_with_scale(amt.value(r), scale).map_err(|e| {
                    input_err!(
                        "findings: rule {rule_id} on settlement {}: amount_at_risk: {e}",
                        setl.value(r)
                    )
                })?
            };
            let list = &mut hits[i];
            match list.iter_mut().find(|h| h.rule_id == rule_id) {
                Some(h) => {
                    h.amount = h.amount.checked_add(amount).ok_or_else(|| {
                        input_err!(
                            "findings: rule {rule_id} on settlement {}: amounts overflow",
                            setl.value(r)
                        )
                    })?;
                    // Severity orders High < Medium < Low: the smaller is the more severe.
                    h.severity = h.severity.min(severity);
                    if category < h.category.as_str() {
                        h.category = category.to_string();
                    }
                }
                None => list.push(RuleHit {
                    rule_id: rule_id.to_string(),
                    category: category.to_string(),
                    severity,
                    amount,
                }),
            }
        }
    }
    Ok(hits)
}

/// The score of one rule hit.
pub(crate) fn hit_score(h: &RuleHit, cfg: &SampleConfig) -> f64 {
    let s = &cfg.score;
    let w = cfg.severity_weight(h.severity)
        * s.category.get(&h.category).copied().unwrap_or(1.0)
        * s.rule.get(&h.rule_id).copied().unwrap_or(1.0);
    let amount = h.amount.abs().to_f64().unwrap_or(f64::MAX);
    w * (1.0 + s.amount_weight * (amount / s.amount_unit_yuan as f64).ln_1p())
}

/// Scores one settlement's rule hits (in any order) and writes its reason.
pub(crate) fn score(hits: &mut [RuleHit], groups: &HashMap<&str, usize>, cfg: &SampleConfig) -> Scored {
    if hits.is_empty() {
        return Scored { score: 0.0, high: false, reason: "无预警".to_string() };
    }
    // A fixed order (by rule id) makes the f64 sum independent of the order of the findings.
    hits.sort_by(|a, b| a.rule_id.cmp(&b.rule_id));
    let scores: Vec<f64> = hits.iter().map(|h| hit_score(h, cfg)).collect();
    // The counted hit of each group: the highest score, ties to the smallest rule id.
    let mut best: HashMap<usize, usize> = HashMap::new();
    for (i, h) in hits.iter().enumerate() {
        if let Some(&g) = groups.get(h.rule_id.as_str()) {
            let e = best.entry(g).or_insert(i);
            if scores[i] > scores[*e] {
                *e = i;
            }
        }
    }
    let counted: Vec<bool> = hits
        .iter()
        .enumerate()
        .map(|(i, h)| groups.get(h.rule_id.as_str()).is_none_or(|g| best.get(g) == Some(&i)))
        .collect();
    let total: f64 = scores.iter().zip(&counted).filter(|(_, c)| **c).map(|(s, _)| *s).sum();
    let high = hits.iter().any(|h| h.severity == Severity::High);
    // Reason: strongest first.
    let mut idx: Vec<usize> = (0..hits.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let parts: Vec<String> = idx
        .iter()
        .map(|&i| {
            let h = &hits[i];
            format!(
                "{} {}({}, {}元{})",
                h.rule_id,
                cfg.category_label(&h.category),
                h.severity.as_str(),
                yuan(h.amount),
                if counted[i] { "" } else { ", 同组不重复计分" }
            )
        })
        .collect();
    Scored { score: total, high, reason: parts.join("; ") }
}

/// `1234.5` → `1,234.50`.
pub(crate) fn yuan(d: Decimal) -> String {
    let s =
        format!("{:.2}", d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero));
    let (sign, s) = s.strip_prefix('-').map_or(("", s.as_str()), |r| ("-", r));
    let (int, frac) = s.split_once('.').unwrap_or((s, "00"));
    let mut out = String::with_capacity(s.len() + int.len() / 3 + 1);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn hit(rule: &str, cat: &str, sev: Severity, amt: &str) -> RuleHit {
        RuleHit {
            rule_id: rule.into(),
            category: cat.into(),
            severity: sev,
            amount: Decimal::from_str(amt).unwrap(),
        }
    }

    #[test]
    fn amounts_are_shown_with_separators() {
        assert_eq!(yuan(Decimal::from_str("1234.5").unwrap()), "1,234.50");
        assert_eq!(yuan(Decimal::from_str("999").unwrap()), "999.00");
        assert_eq!(yuan(Decimal::from_str("-1234567.891").unwrap()), "-1,234,567.89");
        assert_eq!(yuan(Decimal::ZERO), "0.00");
    }

    #[test]
    fn score_follows_the_documented_formula() {
        let cfg = SampleConfig::load_default().unwrap();
        let h = hit("DUP001", "duplicate_billing", Severity::High, "1234.00");
        let cat = cfg.score.category["duplicate_billing"];
        let expected = cfg.score.severity.high
            * cat
            * (1.0 + cfg.score.amount_weight * (1234.0 / cfg.score.amount_unit_yuan as f64).ln_1p());
        assert!((hit_score(&h, &cfg) - expected).abs() < 1e-9);
        let s = score(&mut [h], &HashMap::new(), &cfg);
        assert!(s.high);
        assert_eq!(s.reason, "DUP001 重复收费(high, 1,234.00元)");
    }

    #[test]
    fn a_signal_group_counts_once_and_order_does_not_matter() {
        let cfg = SampleConfig::load_default().unwrap();
        let groups: HashMap<&str, usize> = [("OOA002", 0), ("STX001", 0)].into_iter().collect();
        let a = hit("OOA002", "out_of_area", Severity::Medium, "0");
        let b = hit("STX001", "statistical_outlier", Severity::Low, "0");
        let c = hit("RST001", "restricted_item", Severity::Low, "50.00");
        let one = score(&mut [a.clone(), b.clone(), c.clone()], &groups, &cfg);
        let two = score(&mut [c.clone(), b, a.clone()], &groups, &cfg);
        assert_eq!(one, two);
        let alone = hit_score(&a, &cfg) + hit_score(&c, &cfg);
        assert!((one.score - alone).abs() < 1e-12, "{} vs {alone}", one.score);
        assert!(!one.high);
        assert!(one.reason.starts_with("OOA002 异地就医(medium, 0.00元)"), "{}", one.reason);
        assert!(one.reason.contains("STX001 统计异常(low, 0.00元, 同组不重复计分)"), "{}", one.reason);
        // without the group both count
        let ungrouped = score(
            &mut [a, hit("STX001", "statistical_outlier", Severity::Low, "0"), c],
            &HashMap::new(),
            &cfg,
        );
        assert!(ungrouped.score > one.score);
    }

    #[test]
    fn no_finding_scores_zero() {
        let cfg = SampleConfig::load_default().unwrap();
        let s = score(&mut [], &HashMap::new(), &cfg);
        assert_eq!(s.score, 0.0);
        assert_eq!(s.reason, "无预警");
    }
}
