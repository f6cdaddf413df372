//! The rules configuration file: disable rules, re-parameterise them and add folders of the
//! user's own rules, without recompiling.
//!
//! ```toml
//! # rules.toml
//! disable = ["DUP001", "INJ001"]
//! rule_dirs = ["my_rules"]          # relative to this file
//!
//! [params.SPL001]
//! window_days = 10
//! scheduled_prefixes = ["Z51.0", "Z51.1", "Z51.8"]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::rule::{ParamValue, Rule, RuleSet};
use crate::error::{Error, Result};

/// Which rules run and with which parameters. The default runs every rule with its defaults.
#[derive(Debug, Clone, Default)]
pub struct RuleConfig {
    /// Rule ids not to run.
    pub disable: BTreeSet<String>,
    /// Configured parameter values per rule id (checked against the declarations by
    /// [`RuleConfig::validate`]).
    pub params: BTreeMap<String, BTreeMap<String, toml::Value>>,
    /// Extra folders of rule files, loaded after the shipped `queries/`.
    pub rule_dirs: Vec<PathBuf>,
    /// The file this came from (for messages), if any.
    pub path: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    disable: Vec<String>,
    #[serde(default)]
    rule_dirs: Vec<PathBuf>,
    #[serde(default)]
    params: BTreeMap<String, BTreeMap<String, toml::Value>>,
}

impl RuleConfig {
    /// Reads a rules configuration file. Folders in `rule_dirs` are relative to the file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading rules config", path, e))?;
        Self::parse(path, &text)
    }

    /// Parses the text of a rules configuration file.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let f: ConfigFile = toml::from_str(text.trim_start_matches('\u{feff}'))
            .map_err(|e| Error::config(path, format!("bad rules config: {e}")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Ok(RuleConfig {
            disable: f.disable.into_iter().collect(),
            params: f.params,
            rule_dirs: f
                .rule_dirs
                .into_iter()
                .map(|d| if d.is_relative() { base.join(d) } else { d })
                .collect(),
            path: Some(path.to_path_buf()),
        })
    }

    /// The folders to load rules from: the shipped `queries/` first, then `rule_dirs`.
    pub fn rule_folders(&self) -> Vec<PathBuf> {
        std::iter::once(crate::paths::queries_dir()).chain(self.rule_dirs.iter().cloned()).collect()
    }

    /// Loads the shipped rules and the configured extra folders, and validates this
    /// configuration against them.
    pub fn load_rules(&self) -> Result<RuleSet> {
        let rules = RuleSet::load(&self.rule_folders())?;
        self.validate(&rules)?;
        Ok(rules)
    }

    pub fn is_enabled(&self, id: &str) -> bool {
        !self.disable.contains(id)
    }

    fn where_(&self) -> PathBuf {
        self.path.clone().unwrap_or_else(|| PathBuf::from("<rules config>"))
    }

    /// Checks that every rule id named exists and every configured parameter is declared and
    /// of the declared type.
    pub fn validate(&self, rules: &RuleSet) -> Result<()> {
        for id in &self.disable {
            if rules.get(id).is_none() {
                return Err(Error::config(
                    self.where_(),
                    format!("`disable` names rule {id}, which does not exist"),
                ));
            }
        }
        for (id, ps) in &self.params {
            let rule = rules.get(id).ok_or_else(|| {
                Error::config(self.where_(), format!("[params.{id}] names a rule that does not exist"))
            })?;
            for name in ps.keys() {
                if rule.param(name).is_none() {
                    let declared: Vec<&str> = rule.params.iter().map(|p| p.name.as_str()).collect();
                    return Err(Error::config(
                        self.where_(),
                        format!(
                            "[params.{id}] sets `{name}`, which rule {id} does not declare (it declares: {})",
                            if declared.is_empty() { "none".to_string() } else { declared.join(", ") }
                        ),
                    ));
                }
            }
            self.values_for(rule)?;
        }
        Ok(())
    }

    /// The configured (validated) parameter values of a rule; parameters not configured are
    /// absent (the rule's defaults apply).
    pub fn values_for(&self, rule: &Rule) -> Result<BTreeMap<String, ParamValue>> {
        let mut out = BTreeMap::new();
        if let Some(ps) = self.params.get(&rule.id) {
            for (name, v) in ps {
                let decl = rule.param(name).ok_or_else(|| {
                    Error::config(
                        self.where_(),
                        format!("[params.{}] sets undeclared parameter `{name}`", rule.id),
                    )
                })?;
                let pv = ParamValue::from_toml(decl.ty, v)
                    .map_err(|m| Error::config(self.where_(), format!("[params.{}] {name}: {m}", rule.id)))?;
                out.insert(name.clone(), pv);
            }
        }
        Ok(out)
    }

    /// The rule's SQL with the configured parameters substituted.
    pub fn sql_for(&self, rule: &Rule) -> Result<String> {
        rule.render(&self.values_for(rule)?)
    }

    /// Sets one parameter value (used by fixtures and callers that build a config in code).
    pub fn set_param(&mut self, id: &str, name: &str, value: toml::Value) {
        self.params.entry(id.to_string()).or_default().insert(name.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves_relative_dirs() {
        let c = RuleConfig::parse(
            Path::new("/etc/medaudit/rules.toml"),
            "disable = [\"DUP001\"]\nrule_dirs = [\"mine\", \"/abs\"]\n[params.SPL001]\nwindow_days = 10\n",
        )
        .unwrap();
        assert!(!c.is_enabled("DUP001"));
        assert!(c.is_enabled("DUP002"));
        assert_eq!(c.rule_dirs, vec![PathBuf::from("/etc/medaudit/mine"), PathBuf::from("/abs")]);
        assert_eq!(c.params["SPL001"]["window_days"], toml::Value::Integer(10));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = RuleConfig::parse(Path::new("r.toml"), "disabled = [\"X\"]").unwrap_err().to_string();
        assert!(e.starts_with("r.toml") && e.contains("disabled"), "{e}");
    }
}
