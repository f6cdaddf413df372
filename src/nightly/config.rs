//! `datasets/nightly/config.toml`: which rules are person-scoped, how long fee lines wait for
//! their settlement, lock age, runs kept.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The nightly audit's configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NightlyConfig {
    /// Rules that read only the rows of one person: re-run over the touched persons' history.
    /// Every other rule is re-run over the whole history each night.
    pub person_scoped_rules: Vec<String>,
    /// Nights a fee line waits for its settlement before it is quarantined.
    pub max_pending_nights: u64,
    /// Age past which a lock held by a live process is reported as hung.
    pub lock_max_age_hours: f64,
    /// Output folders of past nights kept under `STORE/runs/` (0: all).
    pub keep_runs: usize,
}

impl NightlyConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        let c: NightlyConfig = toml::from_str(&text).map_err(|e| Error::config(path, e.to_string()))?;
        if c.max_pending_nights == 0 {
            return Err(Error::config(path, "max_pending_nights must be at least 1"));
        }
        if c.lock_max_age_hours.is_nan() || c.lock_max_age_hours <= 0.0 {
            return Err(Error::config(path, "lock_max_age_hours must be positive"));
        }
        Ok(c)
    }

    /// The shipped `datasets/nightly/config.toml`.
    pub fn load_default() -> Result<Self> {
        Self::load(&crate::paths::datasets_dir().join("nightly/config.toml"))
    }
}
