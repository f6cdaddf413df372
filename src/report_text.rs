//! Plain-text summaries printed by the command line.

use std::fmt::Write;

use crate::engine::{RuleConfig, RuleSet};
use crate::error::Result;
use crate::ingest::IngestReport;
use crate::run::RunSummary;

/// What `medaudit validate` prints.
pub fn ingest_summary(r: &IngestReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{:<8} {:>12} {:>12} {:>12}  files", "table", "read", "accepted", "quarantined");
    for t in &r.tables {
        if !t.present {
            let _ = writeln!(s, "{:<8} {:>12} {:>12} {:>12}  (not supplied)", t.table, "-", "-", "-");
            continue;
        }
        let files: Vec<String> = t.files.iter().map(|f| f.path.clone()).collect();
        let _ = writeln!(
            s,
            "{:<8} {:>12} {:>12} {:>12}  {}",
            t.table,
            t.read,
            t.accepted,
            t.quarantined,
            files.join(", ")
        );
        for (class, n) in &t.reject_reasons {
            let _ = writeln!(s, "         {n:>12} rejected: {class}");
        }
    }
    for (field, codes) in &r.unknown_codes {
        let shown: Vec<String> = codes.iter().take(10).map(|(c, n)| format!("{c} ×{n}")).collect();
        let _ = writeln!(s, "unknown codes in {field}: {}", shown.join(", "));
    }
    let _ = writeln!(s, "data-quality findings on accepted rows: {}", r.findings.len());
    s
}

/// What `medaudit run` prints when it has published its output.
pub fn run_summary(s: &RunSummary) -> String {
    let m = &s.manifest;
    let mut out = String::new();
    let _ = writeln!(out, "run {} → {}", m.run_id, s.out.display());
    for t in m.input.tables.iter().filter(|t| t.present) {
        let _ = writeln!(
            out,
            "  {:<7} read {:>10}  accepted {:>10}  quarantined {:>8}",
            t.table, t.read, t.accepted, t.quarantined
        );
    }
    let _ = writeln!(
        out,
        "  first-pass coverage: settlements {:.1} % of {}, fee lines {:.1} % of {}",
        m.coverage.settlements.percent,
        m.coverage.settlements.accepted,
        m.coverage.fee_lines.percent,
        m.coverage.fee_lines.accepted
    );
    let ran = m.rules.iter().filter(|r| r.status == "ran").count();
    let skipped: Vec<&str> =
        m.rules.iter().filter(|r| r.status == "skipped").map(|r| r.id.as_str()).collect();
    let failed: Vec<String> = m
        .rules
        .iter()
        .filter(|r| r.status == "failed")
        .map(|r| format!("{}: {}", r.id, r.reason.clone().unwrap_or_default()))
        .collect();
    let _ = writeln!(
        out,
        "  checks: {ran} ran, {} skipped{}",
        skipped.len(),
        if skipped.is_empty() { String::new() } else { format!(" ({})", skipped.join(", ")) }
    );
    for f in &failed {
        let _ = writeln!(out, "  FAILED {f}");
    }
    let _ = writeln!(out, "  findings: {}", m.findings.total);
    for (cat, n) in &m.findings.by_category {
        let amt = m.findings.amount_at_risk_by_category.get(cat).cloned().unwrap_or_default();
        let _ = writeln!(out, "    {cat:<20} {n:>8}   amount at risk {amt} 元");
    }
    out
}

/// `medaudit rules list`: the SQL rules and the Rust-side checks.
pub fn rules_list(rules: &RuleSet, config: &RuleConfig) -> String {
    let mut s = crate::engine::render_list(rules, config);
    let _ = writeln!(s, "\nBuilt-in checks (Rust):");
    for c in crate::builtin::CHECKS {
        let _ =
            writeln!(s, "  {:<8} {:<18} {:<7} {} / {}", c.id, c.category, c.severity, c.title_zh, c.title_en);
    }
    s
}

/// `medaudit rules show ID`.
pub fn rule_show(rules: &RuleSet, id: &str) -> Result<String> {
    if let Some(r) = rules.rules.iter().find(|r| r.id.eq_ignore_ascii_case(id)) {
        return Ok(crate::engine::render_show(r));
    }
    if let Some(c) = crate::builtin::CHECKS.iter().find(|c| c.id.eq_ignore_ascii_case(id)) {
        let mut s = String::new();
        let _ = writeln!(s, "{} — {} / {}", c.id, c.title_zh, c.title_en);
        let _ = writeln!(
            s,
            "category: {}   severity: {}   requires: {}",
            c.category,
            c.severity,
            c.requires.join(", ")
        );
        let _ = writeln!(s, "basis: {}", c.basis);
        let _ = writeln!(s, "implemented in: src/{}\n", c.module.replace("::", "/"));
        let _ = writeln!(s, "What it does\n  {}\n", c.what);
        let _ = writeln!(s, "Why it matters\n  {}\n", c.why);
        let _ = writeln!(s, "Example\n  {}", c.example);
        return Ok(s);
    }
    Err(crate::input_err!("no rule or check with id `{id}` (see `medaudit rules list`)"))
}
