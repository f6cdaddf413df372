//! `datasets/stats/config.toml`: the parameters of the statistical checks.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Peer groups: 3-character ICD-10 × hospital level × medical-type class.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub min_group_size: u64,
    /// Merge small groups upward (chapter letter × level × class, then level × class);
    /// otherwise their settlements are skipped.
    pub merge_upward: bool,
}

/// STA001 / STA002.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SettlementConfig {
    pub enabled: bool,
    pub z_threshold: f64,
    pub cost_ratio_floor: f64,
    pub los_ratio_floor: f64,
    pub q_threshold: f64,
}

/// STA003.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FacilityConfig {
    pub enabled: bool,
    pub inpatient_only: bool,
    pub min_cases: u64,
    /// A peer group is used for a facility's expected cost only when the other facilities
    /// have at least this many cases in it.
    pub min_peer_cases: u64,
    pub q_threshold: f64,
    pub cost_oe_floor: f64,
}

/// STA007.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PersonConfig {
    pub enabled: bool,
    pub q_threshold: f64,
    pub min_admissions: u64,
    pub ratio_floor: f64,
    #[serde(default)]
    pub exclude_dise_prefixes: Vec<String>,
}

/// STA004: a facility's share of rule-flagged settlements.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FlaggedShareConfig {
    pub enabled: bool,
    /// Finding categories of the SQL rules that count as "flagged".
    pub categories: Vec<String>,
    pub min_cases: u64,
    pub q_threshold: f64,
    pub min_flagged: u64,
    /// Effect-size floor: observed flagged ≥ ratio × expected.
    pub ratio_floor: f64,
}

/// STA005: a facility's readmission rate.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReadmissionConfig {
    pub enabled: bool,
    pub window_days: u32,
    pub min_cases: u64,
    /// Diagnosis groups (3-character ICD-10) smaller than this are merged upward.
    pub min_group_size: u64,
    pub q_threshold: f64,
    pub min_readmissions: u64,
    pub ratio_floor: f64,
    #[serde(default)]
    pub exclude_dise_prefixes: Vec<String>,
}

/// STA006: a facility's fee-amount first-digit distribution against its peers'.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DigitsConfig {
    pub enabled: bool,
    pub min_lines: u64,
    pub q_threshold: f64,
    /// Effect-size floor: total variation distance between observed and expected shares.
    pub tvd_floor: f64,
    /// A peer group is used for a facility's expected digits only when the other facilities
    /// have at least this many lines in it.
    pub min_peer_lines: u64,
    /// Service prices are regulated per region: lines are compared only with lines of
    /// facilities whose `fix_blng_admdvs` shares this many leading digits (4: the city).
    pub price_region_digits: usize,
}

/// STA008: persons of one county admitted to one facility within a few days.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub enabled: bool,
    pub window_days: u32,
    pub min_persons: u64,
    pub ratio_floor: f64,
    pub q_threshold: f64,
}

/// The parameters of every statistical check.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StatsConfig {
    pub peer: PeerConfig,
    pub settlement: SettlementConfig,
    pub facility: FacilityConfig,
    pub person: PersonConfig,
    pub flagged_share: FlaggedShareConfig,
    pub readmission: ReadmissionConfig,
    pub digits: DigitsConfig,
    pub cluster: ClusterConfig,
}

impl StatsConfig {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading stats config", path, e))?;
        Self::parse(path, &text)
    }

    /// The shipped `datasets/stats/config.toml`.
    pub fn load_default() -> Result<Self> {
        Self::load(&crate::paths::datasets_dir().join("stats/config.toml"))
    }

    /// Parses and validates configuration text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let c: StatsConfig = toml::from_str(text).map_err(|e| Error::config(path, e.to_string()))?;
        c.validate().map_err(|m| Error::config(path, m))?;
        Ok(c)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let q = |name: &str, v: f64| {
            if v > 0.0 && v < 1.0 { Ok(()) } else { Err(format!("{name} must be between 0 and 1, got {v}")) }
        };
        q("settlement.q_threshold", self.settlement.q_threshold)?;
        q("facility.q_threshold", self.facility.q_threshold)?;
        q("person.q_threshold", self.person.q_threshold)?;
        q("flagged_share.q_threshold", self.flagged_share.q_threshold)?;
        q("readmission.q_threshold", self.readmission.q_threshold)?;
        q("digits.q_threshold", self.digits.q_threshold)?;
        q("cluster.q_threshold", self.cluster.q_threshold)?;
        q("digits.tvd_floor", self.digits.tvd_floor)?;
        let pos = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 { Ok(()) } else { Err(format!("{name} must be > 0, got {v}")) }
        };
        pos("settlement.z_threshold", self.settlement.z_threshold)?;
        pos("settlement.cost_ratio_floor", self.settlement.cost_ratio_floor)?;
        pos("settlement.los_ratio_floor", self.settlement.los_ratio_floor)?;
        pos("facility.cost_oe_floor", self.facility.cost_oe_floor)?;
        pos("person.ratio_floor", self.person.ratio_floor)?;
        pos("flagged_share.ratio_floor", self.flagged_share.ratio_floor)?;
        pos("readmission.ratio_floor", self.readmission.ratio_floor)?;
        pos("cluster.ratio_floor", self.cluster.ratio_floor)?;
        if self.readmission.window_days == 0 || self.cluster.window_days == 0 {
            return Err("readmission.window_days and cluster.window_days must be at least 1".into());
        }
        if self.cluster.min_persons < 2 {
            return Err("cluster.min_persons must be at least 2".into());
        }
        if self.readmission.min_group_size < 3 {
            return Err("readmission.min_group_size must be at least 3".into());
        }
        for c in &self.flagged_share.categories {
            if c.is_empty() || !c.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                return Err(format!("flagged_share.categories: `{c}` is not a finding category"));
            }
        }
        if self.peer.min_group_size < 3 {
            return Err("peer.min_group_size must be at least 3".into());
        }
        if self.facility.min_cases < 2 {
            return Err("facility.min_cases must be at least 2".into());
        }
        for p in self.person.exclude_dise_prefixes.iter().chain(&self.readmission.exclude_dise_prefixes) {
            if p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
                return Err(format!("exclude_dise_prefixes: `{p}` is not an ICD-10 code prefix"));
            }
        }
        Ok(())
    }
}
