//! `medaudit report`: the monthly report (月报表), the quarterly report (季报, with the
//! quarterly funding request), the half-year and the annual operation analysis, in Excel and
//! as a self-contained HTML page with SVG charts.
//!
//! ```text
//! run output folder(s) / nightly store ──► source (DataFusion over Parquet) ──┐
//! case store (SQLite, optional) ───────────────────────────────────────────────┤
//! report inputs (funds raised, allocations, inspections, premium base) ────────┼──► model ──► xlsx, html, charts
//! reporting.toml (accounting, due dates) + policy + working-day calendar ──────┘
//! ```
//!
//! Figures are defined in POLICY.md ("Fund accounting"); the inputs in `docs/report-inputs.md`;
//! the reports and their layout in the README ("Reports for the agency").

pub mod config;
pub mod html;
pub mod inputs;
pub mod model;
pub mod source;
pub mod xlsx;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use config::{DueDate, ReportingConfig, Shift};
pub use inputs::ReportInputs;
pub use model::{Cell, Chart, FundAccount, Kind, Period, Report, Table, account};
pub use source::{Provenance, Source};

use crate::benefit::{Calendar, PolicySet};
use crate::error::{Error, Result};
use crate::publish::Staging;

/// What to report on.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub period: Period,
    pub source: Source,
    /// Folder of the report's own inputs (`docs/report-inputs.md`).
    pub inputs: Option<PathBuf>,
    /// Case store folder (medical-record audits, deductions, confirmed violations).
    pub cases: Option<PathBuf>,
    /// Reporting configuration replacing `datasets/report/reporting.toml`.
    pub reporting: Option<PathBuf>,
    pub policy: Option<PathBuf>,
    pub calendar: Option<PathBuf>,
    /// The "generated at" text (default: the local time now).
    pub generated_at: Option<String>,
}

fn rule_titles() -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> =
        crate::builtin::CHECKS.iter().map(|c| (c.id.to_string(), c.title_zh.to_string())).collect();
    if let Ok(rs) = crate::engine::RuleSet::load_default() {
        for r in rs.rules {
            m.insert(r.id, r.title_zh);
        }
    }
    m
}

/// Opens a case store read-only (the report reads aggregates only: no personal data).
fn open_cases(dir: &Path) -> Result<rusqlite::Connection> {
    let path = dir.join(crate::cases::DB_FILE);
    if !path.exists() {
        return Err(crate::input_err!(
            "{} is not a case store (no {})",
            dir.display(),
            crate::cases::DB_FILE
        ));
    }
    rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| crate::other_err!("opening the case store {}: {e}", path.display()))
}

/// Builds a report (no file written).
pub fn build(opts: &ReportOptions) -> Result<Report> {
    let config = match &opts.reporting {
        Some(p) => ReportingConfig::load(p)?,
        None => ReportingConfig::load_default()?,
    };
    let policies = match &opts.policy {
        Some(p) => PolicySet::load(p)?,
        None => PolicySet::load_default()?,
    };
    let calendar = match &opts.calendar {
        Some(p) => Calendar::load(p)?,
        None => Calendar::load_default()?,
    };
    let inputs = inputs::read(opts.inputs.as_deref())?;
    let cases = opts.cases.as_deref().map(open_cases).transpose()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| crate::other_err!("starting the query runtime: {e}"))?;
    rt.block_on(async {
        let loaded = opts.source.load().await?;
        let c = model::Context {
            ctx: &loaded.ctx,
            tables: &loaded.tables,
            provenance: loaded.provenance.clone(),
            inputs: &inputs,
            config: &config,
            policies: &policies,
            calendar: &calendar,
            cases: cases.as_ref(),
            rule_titles: rule_titles(),
            generated_at: opts
                .generated_at
                .clone()
                .unwrap_or_else(|| chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()),
        };
        model::build(&c, opts.period).await
    })
}

/// The files of a published report folder, relative to it.
pub fn file_names(r: &Report) -> (String, String) {
    let stem = r.period.stem();
    (format!("{stem}.xlsx"), format!("{stem}.html"))
}

/// Writes the report into `out`, published atomically: `<stem>.xlsx`, `<stem>.html`, and
/// `charts/<id>.svg` + `charts/<id>.html` (a page with that chart alone, for its PNG).
pub fn write(r: &Report, out: &Path) -> Result<PathBuf> {
    let staging = Staging::begin(out, &crate::run::new_run_id())?;
    let (x, h) = file_names(r);
    xlsx::write(r, &staging.dir.join(&x))?;
    let page = html::page(r);
    std::fs::write(staging.dir.join(&h), page).map_err(|e| Error::io("writing", staging.dir.join(&h), e))?;
    let charts = staging.dir.join("charts");
    std::fs::create_dir_all(&charts).map_err(|e| Error::io("creating", &charts, e))?;
    for ch in r.charts.iter().filter(|c| !c.categories.is_empty()) {
        let p = charts.join(format!("{}.svg", ch.id));
        std::fs::write(&p, html::svg(ch)).map_err(|e| Error::io("writing", &p, e))?;
        let p = charts.join(format!("{}.html", ch.id));
        std::fs::write(&p, html::chart_page(ch)).map_err(|e| Error::io("writing", &p, e))?;
    }
    staging.publish()
}
