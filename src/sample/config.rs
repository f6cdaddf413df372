//! The sample's configuration: `datasets/review/sample.toml` by default, a file a user can
//! copy and change (seed, proportions per locality, weights, floor, out-of-area share, signal
//! groups). See `datasets/review/README.md` for what each setting does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::findings::Severity;

/// The configuration of the risk score and of the second-review (复审) sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    /// The seed of the draw: the same data, configuration and seed give the same sample.
    pub seed: u64,
    /// A locality is this many leading characters of `insu_admdvs` (6: the county-level
    /// division itself; 4: the city).
    #[serde(default = "default_prefix")]
    pub locality_prefix: usize,
    /// The share of each locality's settlements to re-review (第二十九条), unless
    /// `proportion_by_locality` names the locality.
    pub proportion: f64,
    /// Shares per locality, keyed by the locality code (`locality_prefix` characters).
    #[serde(default)]
    pub proportion_by_locality: BTreeMap<String, f64>,
    /// The share of each locality's out-of-area inpatient stays drawn for medical-record
    /// investigation (异地就医病历调查, 第二十七条), a stratum of its own.
    pub out_of_area_share: f64,
    /// The `med_type` classes (code table) that count as a stay for the out-of-area stratum.
    #[serde(default = "default_oa_classes")]
    pub out_of_area_classes: Vec<String>,
    /// The share of each drawn stratum spread evenly over its settlements: every settlement has
    /// an inclusion probability of at least `floor × n / N` (n drawn out of N), findings or not.
    pub floor: f64,
    /// How a settlement's findings make its risk score.
    pub score: ScoreConfig,
    /// Rules that measure the same thing: within a group only the strongest finding counts.
    #[serde(default, rename = "signal_group")]
    pub signal_groups: Vec<SignalGroup>,
    /// The Chinese name of each finding category, used in `reason`.
    #[serde(default)]
    pub category_label: BTreeMap<String, String>,
}

/// Weights of the risk score. A finding scores
/// `severity × category × rule × (1 + amount_weight × ln(1 + amount / amount_unit_yuan))`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    pub severity: SeverityWeights,
    /// Multiplier per category (SCHEMA.md categories); 1 where not listed.
    #[serde(default)]
    pub category: BTreeMap<String, f64>,
    /// Multiplier per rule id; 1 where not listed; 0 ignores the rule altogether (no score,
    /// and its high-severity findings do not put a settlement in the certainty stratum).
    #[serde(default)]
    pub rule: BTreeMap<String, f64>,
    /// Weight of the amount-at-risk term (0: amounts do not matter).
    pub amount_weight: f64,
    /// The amount (yuan) at which the amount term reaches `amount_weight × ln 2`.
    pub amount_unit_yuan: u64,
}

/// Base weight per severity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityWeights {
    pub high: f64,
    pub medium: f64,
    pub low: f64,
}

/// Rule ids whose findings measure the same signal (e.g. the out-of-area cluster rule and the
/// statistical cluster test): a settlement counts only the highest-scoring one of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalGroup {
    pub name: String,
    pub rules: Vec<String>,
}

fn default_prefix() -> usize {
    6
}

fn default_oa_classes() -> Vec<String> {
    vec!["inpatient".to_string()]
}

impl SampleConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::io("reading sample configuration", path, e))?;
        Self::parse(&text).map_err(|m| Error::config(path, m))
    }

    /// The shipped configuration, `datasets/review/sample.toml`.
    pub fn load_default() -> Result<Self> {
        Self::load(&crate::paths::datasets_dir().join("review/sample.toml"))
    }

    /// Parses and checks the text of a configuration file.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let cfg: SampleConfig =
            toml::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every setting; the message names the setting at fault.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let share = |name: &str, v: f64| {
            if v.is_finite() && (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("`{name}` must be between 0 and 1, not {v}"))
            }
        };
        let weight = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("`{name}` must be a finite number >= 0, not {v}"))
            }
        };
        if self.locality_prefix == 0 {
            return Err("`locality_prefix` must be at least 1".into());
        }
        share("proportion", self.proportion)?;
        for (loc, &p) in &self.proportion_by_locality {
            share(&format!("proportion_by_locality.{loc}"), p)?;
            if loc.chars().count() != self.locality_prefix {
                return Err(format!(
                    "`proportion_by_locality.{loc}`: a locality code has locality_prefix = {} characters",
                    self.locality_prefix
                ));
            }
        }
        share("out_of_area_share", self.out_of_area_share)?;
        if !(self.floor.is_finite() && self.floor > 0.0 && self.floor <= 1.0) {
            return Err(format!(
                "`floor` must be in (0, 1] so that every settlement has a non-zero chance, not {}",
                self.floor
            ));
        }
        let s = &self.score;
        weight("score.severity.high", s.severity.high)?;
        weight("score.severity.medium", s.severity.medium)?;
        weight("score.severity.low", s.severity.low)?;
        for (c, &w) in &s.category {
            if !crate::schema::CATEGORIES.contains(&c.as_str()) {
                return Err(format!("`score.category.{c}`: not a finding category of SCHEMA.md"));
            }
            weight(&format!("score.category.{c}"), w)?;
        }
        for (r, &w) in &s.rule {
            weight(&format!("score.rule.{r}"), w)?;
        }
        weight("score.amount_weight", s.amount_weight)?;
        if s.amount_unit_yuan == 0 {
            return Err("`score.amount_unit_yuan` must be at least 1".into());
        }
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for g in &self.signal_groups {
            if g.rules.is_empty() {
                return Err(format!("signal group `{}` lists no rules", g.name));
            }
            for r in &g.rules {
                if !seen.insert(r.as_str()) {
                    return Err(format!(
                        "rule {r} is in more than one signal group (or twice in `{}`)",
                        g.name
                    ));
                }
            }
        }
        for c in self.category_label.keys() {
            if !crate::schema::CATEGORIES.contains(&c.as_str()) {
                return Err(format!("`category_label.{c}`: not a finding category of SCHEMA.md"));
            }
        }
        Ok(())
    }

    /// The re-review proportion of a locality.
    pub fn proportion_for(&self, locality: &str) -> f64 {
        self.proportion_by_locality.get(locality).copied().unwrap_or(self.proportion)
    }

    /// The locality of an `insu_admdvs` value: its first `locality_prefix` characters (the
    /// whole value when shorter).
    pub fn locality_of<'a>(&self, insu_admdvs: &'a str) -> &'a str {
        prefix_chars(insu_admdvs.trim(), self.locality_prefix)
    }

    /// The severity weight.
    pub fn severity_weight(&self, s: Severity) -> f64 {
        match s {
            Severity::High => self.score.severity.high,
            Severity::Medium => self.score.severity.medium,
            Severity::Low => self.score.severity.low,
        }
    }

    /// The Chinese label of a category (the category itself when the file gives none).
    pub fn category_label<'a>(&'a self, category: &'a str) -> &'a str {
        self.category_label.get(category).map_or(category, String::as_str)
    }
}

/// The first `n` characters of `s` (all of it when shorter).
pub(crate) fn prefix_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_configuration_loads_and_is_valid() {
        let c = SampleConfig::load_default().unwrap();
        assert_eq!(c.locality_prefix, 6);
        assert!(c.proportion > 0.0 && c.floor > 0.0);
        assert_eq!(c.category_label("duplicate_billing"), "重复收费");
        for cat in crate::schema::CATEGORIES {
            assert!(c.category_label.contains_key(*cat), "no Chinese label for {cat}");
        }
    }

    #[test]
    fn bad_settings_are_named() {
        let base = std::fs::read_to_string(crate::paths::datasets_dir().join("review/sample.toml")).unwrap();
        let e = SampleConfig::parse(&base.replace("\nfloor = 0.2", "\nfloor = 0.0")).unwrap_err();
        assert!(e.contains("floor"), "{e}");
        let e =
            SampleConfig::parse(&format!("{base}\n[[signal_group]]\nname = \"x\"\nrules = [\"OOA002\"]\n"))
                .unwrap_err();
        assert!(e.contains("OOA002"), "{e}");
        let e = SampleConfig::parse(
            &base.replace("[proportion_by_locality]", "[proportion_by_locality]\n\"4114\" = 0.1"),
        )
        .unwrap_err();
        assert!(e.contains("4114"), "{e}");
        let e = SampleConfig::parse(&base.replace("\nseed =", "\nsede = 1\nseed =")).unwrap_err();
        assert!(e.contains("sede"), "{e}");
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        std::fs::write(&p, "seed = \"x\"").unwrap();
        let e = SampleConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("s.toml"), "{e}");
    }

    #[test]
    fn locality_is_a_prefix() {
        let mut c = SampleConfig::load_default().unwrap();
        assert_eq!(c.locality_of("411402"), "411402");
        c.locality_prefix = 4;
        assert_eq!(c.locality_of("411402"), "4114");
        assert_eq!(c.locality_of("41"), "41");
    }
}
