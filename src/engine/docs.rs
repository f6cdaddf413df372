//! The rule documentation printed by `medaudit rules list` and `medaudit rules show ID`.

use std::fmt::Write;

use super::config::RuleConfig;
use super::rule::{Rule, RuleSet};

/// One line per rule: id, category, severity, whether enabled, English and Chinese titles.
pub fn render_list(rules: &RuleSet, config: &RuleConfig) -> String {
    let mut out = String::new();
    let w_cat = rules.rules.iter().map(|r| r.category.len()).max().unwrap_or(8).max(8);
    let w_id = rules.rules.iter().map(|r| r.id.len()).max().unwrap_or(6).max(6);
    let _ =
        writeln!(out, "{:<w_id$}  {:<w_cat$}  {:<8}  {:<8}  TITLE", "ID", "CATEGORY", "SEVERITY", "STATUS");
    for r in &rules.rules {
        let status = if config.is_enabled(&r.id) { "enabled" } else { "disabled" };
        let configured = if config.params.contains_key(&r.id) { " (configured)" } else { "" };
        let _ = writeln!(
            out,
            "{:<w_id$}  {:<w_cat$}  {:<8}  {:<8}  {} / {}{configured}",
            r.id,
            r.category,
            r.severity.as_str(),
            status,
            r.title_en,
            r.title_zh
        );
    }
    let enabled = rules.rules.iter().filter(|r| config.is_enabled(&r.id)).count();
    let _ = writeln!(
        out,
        "\n{} rules, {enabled} enabled. `medaudit rules show ID` prints one.",
        rules.rules.len()
    );
    out
}

/// The full documentation of one rule: what, why, example, basis, parameters with their
/// defaults (and configured values where `config` sets them), the file and its SQL.
pub fn render_show(rule: &Rule) -> String {
    render_show_with(rule, &RuleConfig::default())
}

/// [`render_show`], with the configured parameter values shown beside the defaults.
pub fn render_show_with(rule: &Rule, config: &RuleConfig) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} {} — {}", rule.id, rule.title_zh, rule.title_en);
    let _ = writeln!(out, "name:      {}", rule.name);
    let _ = writeln!(out, "category:  {}", rule.category);
    let _ = writeln!(out, "severity:  {}", rule.severity.as_str());
    let _ = writeln!(
        out,
        "requires:  {}",
        if rule.requires.is_empty() { "-".to_string() } else { rule.requires.join(", ") }
    );
    let _ = writeln!(out, "status:    {}", if config.is_enabled(&rule.id) { "enabled" } else { "disabled" });
    let _ = writeln!(out, "file:      {}", rule.path.display());
    section(&mut out, "What it checks", &rule.what);
    section(&mut out, "Why it matters", &rule.why);
    section(&mut out, "Example", &rule.example);
    let _ = writeln!(out, "\nBasis");
    for b in &rule.basis {
        let _ = writeln!(out, "  - {b}");
    }
    if !rule.params.is_empty() {
        let _ = writeln!(out, "\nParameters");
        let configured = config.values_for(rule).unwrap_or_default();
        for p in &rule.params {
            let now = configured.get(&p.name).map(|v| format!(", configured {v}")).unwrap_or_default();
            let _ = writeln!(out, "  {} ({}, default {}{now})", p.name, p.ty.as_str(), p.default);
            for line in p.doc.lines() {
                let _ = writeln!(out, "      {line}");
            }
        }
    }
    let _ = writeln!(out, "\nSQL");
    for line in rule.sql.lines() {
        let _ = writeln!(out, "  {line}");
    }
    out
}

fn section(out: &mut String, title: &str, text: &str) {
    let _ = writeln!(out, "\n{title}");
    for line in text.lines() {
        let _ = writeln!(out, "  {}", line.trim_end());
    }
}
