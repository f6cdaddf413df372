//! Runs the enabled rules, one after the other (each query uses every core), over the whole
//! data, and turns their evidence rows into findings.

use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::SessionContext;

use super::config::RuleConfig;
use super::rule::{Rule, RuleSet};
use crate::error::{Error, Result};
use crate::findings::Severity;
use crate::schema::findings_schema;

/// What happened to one rule in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleStatus {
    Ran,
    /// Not run, and why (disabled, missing table).
    Skipped(String),
    /// Its SQL failed to plan or execute: the file and DataFusion's message.
    Failed(String),
}

impl RuleStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RuleStatus::Ran => "ran",
            RuleStatus::Skipped(_) => "skipped",
            RuleStatus::Failed(_) => "failed",
        }
    }
    /// The reason of a skip or failure.
    pub fn reason(&self) -> Option<&str> {
        match self {
            RuleStatus::Ran => None,
            RuleStatus::Skipped(s) | RuleStatus::Failed(s) => Some(s),
        }
    }
}

/// The record of one rule in a run (for the manifest).
#[derive(Debug, Clone)]
pub struct RuleRun {
    pub id: String,
    pub category: String,
    pub status: RuleStatus,
    /// Findings written (one per settlement and rule).
    pub findings: usize,
    pub millis: u128,
}

/// The findings of all rules (in `findings_schema()`) and the record of each rule.
#[derive(Debug, Default)]
pub struct RulesOutput {
    pub findings: Vec<RecordBatch>,
    pub runs: Vec<RuleRun>,
}

impl RulesOutput {
    pub fn finding_count(&self) -> usize {
        self.findings.iter().map(|b| b.num_rows()).sum()
    }
}

fn sql_options() -> SQLOptions {
    SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false)
}

/// Runs every enabled rule over the session's tables. A rule whose table is missing or that
/// the configuration disables is skipped; a rule whose SQL fails is recorded as failed and
/// the run goes on. An invalid configuration is an error.
pub async fn run_rules(
    ctx: &SessionContext,
    rules: &RuleSet,
    config: &RuleConfig,
    run_id: &str,
) -> Result<RulesOutput> {
    config.validate(rules)?;
    let mut out = RulesOutput::default();
    for rule in &rules.rules {
        let mut run = RuleRun {
            id: rule.id.clone(),
            category: rule.category.clone(),
            status: RuleStatus::Ran,
            findings: 0,
            millis: 0,
        };
        if !config.is_enabled(&rule.id) {
            let by = config.path.as_ref().map(|p| format!(" by {}", p.display())).unwrap_or_default();
            run.status = RuleStatus::Skipped(format!("disabled{by}"));
            out.runs.push(run);
            continue;
        }
        let missing: Vec<&str> = rule
            .requires
            .iter()
            .filter(|t| !ctx.table_exist(t.as_str()).unwrap_or(false))
            .map(|s| s.as_str())
            .collect();
        if !missing.is_empty() {
            run.status = RuleStatus::Skipped(format!("missing table {}", missing.join(", ")));
            out.runs.push(run);
            continue;
        }
        let sql = config.sql_for(rule)?;
        let start = Instant::now();
        match run_one(ctx, rule, &sql, run_id).await {
            Ok(batches) => {
                run.findings = batches.iter().map(|b| b.num_rows()).sum();
                out.findings.extend(batches.into_iter().filter(|b| b.num_rows() > 0));
            }
            Err(msg) => run.status = RuleStatus::Failed(format!("{}: {msg}", rule.path.display())),
        }
        run.millis = start.elapsed().as_millis();
        out.runs.push(run);
    }
    Ok(out)
}

/// Runs one rule's (already parameterised) SQL and returns its findings.
pub async fn run_one(
    ctx: &SessionContext,
    rule: &Rule,
    sql: &str,
    run_id: &str,
) -> std::result::Result<Vec<RecordBatch>, String> {
    let df = ctx.sql_with_options(sql, sql_options()).await.map_err(|e| e.to_string())?;
    let schema = df.schema().clone();
    let col = |name: &str| -> Option<DataType> {
        schema.fields().iter().find(|f| f.name() == name).map(|f| f.data_type().clone())
    };
    for req in ["setl_id", "amount_at_risk", "detail"] {
        if col(req).is_none() {
            let have: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
            return Err(format!("the query must return a column `{req}` (it returns: {})", have.join(", ")));
        }
    }
    match col("amount_at_risk") {
        Some(DataType::Decimal128(..) | DataType::Decimal256(..)) => {}
        Some(t) if t.is_integer() || t == DataType::Null => {}
        Some(t) => {
            return Err(format!(
                "`amount_at_risk` must be a decimal (yuan, exact), not {t}: cast it, e.g. CAST(x AS DECIMAL(18,2))"
            ));
        }
        None => {}
    }
    let default_sev = sev_rank(rule.severity);
    let sns =
        if col("feedetl_sns").is_some() { "CAST(feedetl_sns AS VARCHAR)" } else { "CAST(NULL AS VARCHAR)" };
    let sev = if col("severity").is_some() {
        format!(
            "CASE lower(trim(CAST(severity AS VARCHAR))) WHEN 'high' THEN 3 WHEN 'medium' THEN 2 \
             WHEN 'low' THEN 1 ELSE {default_sev} END"
        )
    } else {
        default_sev.to_string()
    };
    let et =
        if col("entity_type").is_some() { "CAST(entity_type AS VARCHAR)" } else { "CAST(NULL AS VARCHAR)" };
    let eid = if col("entity_id").is_some() { "CAST(entity_id AS VARCHAR)" } else { "CAST(NULL AS VARCHAR)" };
    let wrapped = format!(
        "WITH rule_rows AS (
  SELECT CAST(setl_id AS VARCHAR) AS setl_id,
         CAST(amount_at_risk AS DECIMAL(38,2)) AS amount,
         COALESCE(CAST(detail AS VARCHAR), '') AS detail,
         {sns} AS sns, {sev} AS sev, {et} AS et, {eid} AS eid
  FROM (
{sql}
  ) AS rule_output
  WHERE setl_id IS NOT NULL
),
per_setl AS (
  SELECT setl_id,
         SUM(amount) AS amount,
         string_agg(detail, '；' ORDER BY detail, sns) AS detail,
         string_agg(sns, ';' ORDER BY detail, sns) AS sns,
         MAX(sev) AS sev,
         MIN(et) AS et,
         MIN(eid) AS eid
  FROM rule_rows
  GROUP BY setl_id
)
SELECT g.setl_id,
       s.psn_no,
       s.fixmedins_code,
       {id} AS rule_id,
       {cat} AS category,
       CASE g.sev WHEN 3 THEN 'high' WHEN 2 THEN 'medium' ELSE 'low' END AS severity,
       CAST(COALESCE(g.amount, CAST(0 AS DECIMAL(38,2))) AS DECIMAL(18,2)) AS amount_at_risk,
       COALESCE(g.detail, '') AS detail,
       COALESCE(g.et, 'settlement') AS entity_type,
       COALESCE(g.eid, g.setl_id) AS entity_id,
       g.sns AS feedetl_sns,
       {run} AS run_id
FROM per_setl g
LEFT JOIN setl s ON s.setl_id = g.setl_id
ORDER BY g.setl_id",
        id = quote(&rule.id),
        cat = quote(&rule.category),
        run = quote(run_id),
    );
    let df = ctx.sql_with_options(&wrapped, sql_options()).await.map_err(|e| e.to_string())?;
    let batches = df.collect().await.map_err(|e| e.to_string())?;
    batches.iter().map(conform).collect::<Result<Vec<_>>>().map_err(|e| e.to_string())
}

fn sev_rank(s: Severity) -> u8 {
    match s {
        Severity::High => 3,
        Severity::Medium => 2,
        Severity::Low => 1,
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Casts a batch to exactly `findings_schema()` (string view types, nullability).
fn conform(b: &RecordBatch) -> Result<RecordBatch> {
    let schema = findings_schema();
    let mut cols = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let c = b
            .column_by_name(f.name())
            .ok_or_else(|| crate::other_err!("findings lack column {}", f.name()))?;
        let c = if c.data_type() == f.data_type() {
            c.clone()
        } else {
            arrow::compute::cast(c, f.data_type()).map_err(|e| Error::arrow("findings", e))?
        };
        cols.push(c);
    }
    RecordBatch::try_new(schema, cols).map_err(|e| Error::arrow("findings", e))
}
