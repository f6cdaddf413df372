//! The rule engine: SQL rules of `queries/` run in DataFusion over 100 % of the accepted data.
//!
//! - [`rule`]: rule files (TOML header in a leading `/* */` comment, one SQL query with typed
//!   `${name}` parameters), [`RuleSet`];
//! - [`config`]: the rules configuration file (disable, re-parameterise, extra rule folders);
//! - [`session`]: the DataFusion session over the accepted Parquet tables, the code table,
//!   the knowledge base and the views `setl_valid` and `stay`;
//! - [`runner`]: runs the enabled rules and aggregates their evidence rows to findings;
//! - [`docs`]: `medaudit rules list` / `medaudit rules show ID`;
//! - [`fixture`]: rule fixtures (`tests/rules/*.toml`);
//! - [`udf`]: functions registered for the rules (`medaudit_hash64`);
//! - [`optimizer`]: physical optimizer rules added to the session (dynamic filters first).
//!
//! ```no_run
//! # async fn f() -> medaudit::Result<()> {
//! use medaudit::engine::*;
//! let config = RuleConfig::default();
//! let rules = config.load_rules()?;
//! let ctx = session(&Tables::new("accepted/", None)).await?;
//! let out = run_rules(&ctx, &rules, &config, "run-1").await?;
//! println!("{} findings", out.finding_count());
//! # Ok(()) }
//! ```

pub mod config;
pub mod docs;
pub mod fixture;
pub mod optimizer;
pub mod rule;
pub mod runner;
pub mod session;
pub mod udf;

pub use config::RuleConfig;
pub use docs::{render_list, render_show, render_show_with};
pub use fixture::{Defaults, FixtureReport, fixture_rules, run_fixture, write_dataset};
pub use rule::{ParamDecl, ParamType, ParamValue, Rule, RuleSet};
pub use runner::{RuleRun, RuleStatus, RulesOutput, run_one, run_rules};
pub use session::{
    DEFAULT_MEMORY_LIMIT, EngineOptions, Tables, format_bytes, materialize_query, materialize_views,
    parse_bytes, present_tables, session, session_with,
};
