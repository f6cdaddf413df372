//! Statistical anomaly checks: settlements, facilities and persons far from their peers
//! (`statistical_outlier`). Aggregation is SQL over the session's file-backed tables
//! (`setl_valid`, `stay`, `medins`, `psn`), returning small results; the tests run in Rust
//! with statrs ([`math`]). Method and parameters: `datasets/stats/README.md` and
//! `config.toml`.
//!
//! - STA001 settlement cost per case, STA002 settlement length of stay: modified z-score of
//!   the log value against the peer group (median / MAD), with a ratio floor;
//! - STA003 facility cost O/E (indirect standardisation over peer groups), random-effects
//!   z-test of the mean log-cost residual allowing for over-dispersion between facilities,
//!   BH over facilities, O/E floor;
//! - STA004 facility share of rule-flagged settlements and STA005 facility readmission rate,
//!   each against its case-mix expected count: negative-binomial tail with the over-dispersion
//!   between facilities estimated leaving the facility out, BH, ratio floor;
//! - STA006 facility fee-amount first digits against its peers' in the same peer groups:
//!   Pearson chi-square with a Dirichlet-multinomial allowance, BH, distance floor;
//! - STA007 stays per person and year against the population's rate (Poisson tail), BH;
//! - STA008 persons of one county admitted to one facility within a few days against the
//!   pair's usual inflow: negative-binomial scan over windows, BH, count and ratio floors.
//!
//! ```no_run
//! # async fn f(ctx: &datafusion::prelude::SessionContext) -> medaudit::Result<()> {
//! let cfg = medaudit::stats::StatsConfig::load_default()?;
//! // The SQL rules' findings (for STA004); none here.
//! let out = medaudit::stats::run(ctx, &cfg, &[]).await?;
//! println!("{} findings", out.findings.len());
//! # Ok(()) }
//! ```

pub mod config;
pub mod math;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type};
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use rust_decimal::Decimal;

pub use config::StatsConfig;

use crate::error::{Error, Result};
use crate::findings::{Finding, Severity};

/// The category of every finding of this module.
pub const CATEGORY: &str = "statistical_outlier";

/// What [`run`] produces.
#[derive(Debug, Clone, Default)]
pub struct StatsOutput {
    pub findings: Vec<Finding>,
    /// For the manifest: peer groups merged or skipped, tests run, tests not run and why.
    pub notes: Vec<String>,
    /// Findings per check (rule id), every check that ran listed (0 included).
    pub checks: Vec<(String, usize)>,
}

/// Runs every enabled statistical check over the session's tables (`setl_valid` and `stay`
/// are required; `medins` supplies the hospital level where a settlement has none; `psn`
/// the population at risk where present; `fee` the amounts of STA006). `rule_findings` are
/// the findings of the SQL rules (findings schema), for STA004; pass `&[]` when there are none.
pub async fn run(
    ctx: &SessionContext,
    cfg: &StatsConfig,
    rule_findings: &[RecordBatch],
) -> Result<StatsOutput> {
    run_with(ctx, cfg, rule_findings, None).await
}

/// [`run`], with the peer groups of every settlement computed once into `scratch` (a Parquet
/// table `stats_peer`, removed from the session at the end) instead of in each check's query.
/// The peer groups take three windows over every settlement; inlined, each of the five checks
/// using them sorts the settlements several times at once, which at city scale needs more
/// memory than the pool's fair share of a sort. Without `scratch` (a cluster, whose executors
/// read only shared files) the windows stay in the queries.
pub async fn run_with(
    ctx: &SessionContext,
    cfg: &StatsConfig,
    rule_findings: &[RecordBatch],
    scratch: Option<&std::path::Path>,
) -> Result<StatsOutput> {
    let has = |t: &str| ctx.table_exist(t).unwrap_or(false);
    let mut out = StatsOutput::default();
    if !has("setl_valid") {
        out.notes.push("统计检验未运行：会话中没有 setl_valid 视图".into());
        return Ok(out);
    }
    let mut peer = peer_cte(cfg, has("medins"));
    if let Some(dir) = scratch {
        crate::engine::materialize_query(ctx, PEER_TABLE, &format!("{peer} SELECT * FROM peer"), dir).await?;
        peer = format!("WITH peer AS (SELECT * FROM {PEER_TABLE})");
    }
    let result = checks(ctx, cfg, rule_findings, &peer, out).await;
    if scratch.is_some() {
        ctx.deregister_table(PEER_TABLE).map_err(|e| Error::df("statistics: dropping the peer table", e))?;
    }
    result
}

/// The table of materialised peer groups ([`run_with`]).
const PEER_TABLE: &str = "stats_peer";

async fn checks(
    ctx: &SessionContext,
    cfg: &StatsConfig,
    rule_findings: &[RecordBatch],
    peer: &str,
    mut out: StatsOutput,
) -> Result<StatsOutput> {
    let has = |t: &str| ctx.table_exist(t).unwrap_or(false);
    peer_notes(ctx, peer, cfg, &mut out).await?;
    if cfg.settlement.enabled {
        let cost = RobustSpec {
            rule: "STA001",
            what: "费用",
            filter: "TRUE",
            x: "CAST(cost AS DOUBLE)",
            shift: 0.0,
            ratio: cfg.settlement.cost_ratio_floor,
            amount: "p.cost - g.mcost",
        };
        robust_check(ctx, peer, cfg, &cost, &mut out).await?;
        let los = RobustSpec {
            rule: "STA002",
            what: "住院天数",
            filter: "inp AND los >= 0",
            x: "CAST(los AS DOUBLE)",
            shift: 1.0,
            ratio: cfg.settlement.los_ratio_floor,
            amount: "CAST(0 AS DECIMAL(16,2))",
        };
        robust_check(ctx, peer, cfg, &los, &mut out).await?;
    }
    if cfg.facility.enabled {
        facility_cost(ctx, peer, cfg, &mut out).await?;
    }
    if cfg.flagged_share.enabled {
        flagged_share(ctx, peer, cfg, rule_findings, &mut out).await?;
    }
    if cfg.readmission.enabled {
        if has("stay") {
            readmission(ctx, cfg, &mut out).await?;
        } else {
            out.notes.push("STA005 未运行：会话中没有 stay 视图".into());
        }
    }
    if cfg.digits.enabled {
        if has("fee") {
            digits(ctx, peer, cfg, &mut out).await?;
        } else {
            out.notes.push("STA006 未运行：会话中没有 fee 表".into());
        }
    }
    if cfg.person.enabled {
        if has("stay") {
            person_admissions(ctx, cfg, has("psn"), &mut out).await?;
        } else {
            out.notes.push("STA007 未运行：会话中没有 stay 视图".into());
        }
    }
    if cfg.cluster.enabled {
        if has("stay") {
            cluster(ctx, cfg, &mut out).await?;
        } else {
            out.notes.push("STA008 未运行：会话中没有 stay 视图".into());
        }
    }
    out.findings.sort_by(|a, b| (&a.rule_id, &a.setl_id).cmp(&(&b.rule_id, &b.setl_id)));
    Ok(out)
}

/// The CTE `peer`: every standing settlement with a positive total, its peer group (`peer`,
/// `NULL` when skipped), its price region (`region`: the leading digits of
/// `fix_blng_admdvs`, for STA006) and the level it was assigned at (`peer_level`: 0 ICD-3 × level ×
/// class, 1 ICD chapter letter × level × class, 2 level × class, 3 skipped).
fn peer_cte(cfg: &StatsConfig, has_medins: bool) -> String {
    let min = cfg.peer.min_group_size;
    let merge = if cfg.peer.merge_upward { "TRUE" } else { "FALSE" };
    let rd = cfg.digits.price_region_digits.clamp(1, 6);
    let (lv, join) = if has_medins {
        (
            "COALESCE(NULLIF(s.hosp_lv, ''), NULLIF(m.hosp_lv, ''), '-')",
            "LEFT JOIN (SELECT fixmedins_code, MIN(hosp_lv) AS hosp_lv FROM medins GROUP BY fixmedins_code) m \
             ON m.fixmedins_code = s.fixmedins_code",
        )
    } else {
        ("COALESCE(NULLIF(s.hosp_lv, ''), '-')", "")
    };
    format!(
        "WITH b0 AS (
  SELECT s.setl_id, s.psn_no, s.fixmedins_code, COALESCE(s.is_inpatient, FALSE) AS inp,
         {lv} AS lv,
         COALESCE(s.med_class, 'other') AS cls,
         UPPER(SUBSTR(COALESCE(s.dise_codg, ''), 1, 3)) AS icd3,
         s.medfee_sumamt AS cost,
         SUBSTR(COALESCE(s.fix_blng_admdvs, ''), 1, {rd}) AS region,
         CAST(s.enddate AS INT) - CAST(s.begndate AS INT) AS los
  FROM setl_valid s {join}
  WHERE s.medfee_sumamt > 0 AND s.setl_id IS NOT NULL),
b1 AS (
  SELECT *, icd3 || '|' || lv || '|' || cls AS k0,
         SUBSTR(icd3, 1, 1) || '*|' || lv || '|' || cls AS k1,
         '*|' || lv || '|' || cls AS k2,
         COUNT(*) OVER (PARTITION BY icd3, lv, cls) AS n0
  FROM b0),
b2 AS (SELECT *, SUM(CASE WHEN n0 < {min} THEN 1 ELSE 0 END) OVER (PARTITION BY k1) AS n1 FROM b1),
b3 AS (SELECT *, SUM(CASE WHEN n0 < {min} AND n1 < {min} THEN 1 ELSE 0 END) OVER (PARTITION BY k2) AS n2
       FROM b2),
peer AS (
  SELECT setl_id, psn_no, fixmedins_code, inp, cost, los, region,
         CASE WHEN n0 >= {min} THEN k0
              WHEN {merge} AND n1 >= {min} THEN k1
              WHEN {merge} AND n2 >= {min} THEN k2 END AS peer,
         CASE WHEN n0 >= {min} THEN 0
              WHEN {merge} AND n1 >= {min} THEN 1
              WHEN {merge} AND n2 >= {min} THEN 2 ELSE 3 END AS peer_level
  FROM b3)"
    )
}

/// The facility-level hits of a check: the settlements of each flagged facility (the query
/// returns `setl_id`, `psn_no`, `fixmedins_code`), no money at risk.
async fn facility_hits(
    ctx: &SessionContext,
    what: &str,
    q: &str,
    flagged: BTreeMap<String, String>,
) -> Result<Vec<EntityHit>> {
    let mut rows: BTreeMap<String, Vec<(String, Option<String>, Option<String>)>> = BTreeMap::new();
    for b in sql(ctx, what, q).await? {
        let cl = Cols(&b);
        let (setl, psn, fix) = (cl.text("setl_id")?, cl.text("psn_no")?, cl.text("fixmedins_code")?);
        for i in 0..b.num_rows() {
            if let (Some(s), Some(fx)) = (setl[i].clone(), fix[i].clone()) {
                rows.entry(fx.clone()).or_default().push((s, psn[i].clone(), Some(fx)));
            }
        }
    }
    Ok(flagged
        .into_iter()
        .map(|(code, detail)| EntityHit {
            rows: rows.remove(&code).unwrap_or_default(),
            entity_id: code,
            detail,
            amount: Decimal::ZERO,
        })
        .collect())
}

async fn sql(ctx: &SessionContext, what: &str, q: &str) -> Result<Vec<RecordBatch>> {
    let df = ctx.sql(q).await.map_err(|e| Error::df(format!("statistics: {what}"), e))?;
    df.collect().await.map_err(|e| Error::df(format!("statistics: {what}"), e))
}

fn col(b: &RecordBatch, name: &str, to: &DataType) -> Result<arrow::array::ArrayRef> {
    let c = b.column_by_name(name).ok_or_else(|| crate::other_err!("statistics: no column {name}"))?;
    arrow::compute::cast(c, to).map_err(|e| Error::arrow(format!("statistics column {name}"), e))
}

/// Column readers of one batch (statistics are `f64`; money is read as exact decimals).
struct Cols<'a>(&'a RecordBatch);

impl Cols<'_> {
    fn text(&self, name: &str) -> Result<Vec<Option<String>>> {
        let c = col(self.0, name, &DataType::Utf8)?;
        let a = c.as_string::<i32>();
        Ok((0..a.len()).map(|i| (!a.is_null(i)).then(|| a.value(i).to_string())).collect())
    }
    fn f64(&self, name: &str) -> Result<Vec<f64>> {
        let c = col(self.0, name, &DataType::Float64)?;
        let a = c.as_primitive::<Float64Type>();
        Ok((0..a.len()).map(|i| if a.is_null(i) { f64::NAN } else { a.value(i) }).collect())
    }
    fn i64(&self, name: &str) -> Result<Vec<i64>> {
        let c = col(self.0, name, &DataType::Int64)?;
        let a = c.as_primitive::<Int64Type>();
        Ok((0..a.len()).map(|i| if a.is_null(i) { 0 } else { a.value(i) }).collect())
    }
    fn dec(&self, name: &str) -> Result<Vec<Decimal>> {
        let c = col(self.0, name, &DataType::Decimal128(38, 6))?;
        let a = c.as_primitive::<Decimal128Type>();
        (0..a.len())
            .map(|i| {
                if a.is_null(i) {
                    return Ok(Decimal::ZERO);
                }
                Decimal::try_from_i128_with_scale(a.value(i), 6)
                    .map_err(|e| crate::other_err!("statistics column {name}: {e}"))
            })
            .collect()
    }
}

/// Splits an amount (rounded to the cent, floored at 0) over `n` rows so that the parts add
/// up to it exactly: every row gets the same number of cents, the first rows one cent more
/// for the remainder.
pub fn split_amount(total: Decimal, n: usize) -> Vec<Decimal> {
    if n == 0 {
        return Vec::new();
    }
    let cents = crate::findings::decimal_to_i128(total.max(Decimal::ZERO), 2);
    let (base, rem) = (cents / n as i128, (cents % n as i128) as usize);
    (0..n).map(|i| Decimal::from_i128_with_scale(base + i128::from(i < rem), 2)).collect()
}

fn fmt_p(p: f64) -> String {
    if p < 1e-4 { format!("{p:.2e}") } else { format!("{p:.4}") }
}

fn peer_label(key: &str) -> String {
    // key = icd3|lv|cls, `A*|lv|cls` or `*|lv|cls`.
    let parts: Vec<&str> = key.split('|').collect();
    if parts.len() != 3 {
        return key.to_string();
    }
    let dx = if parts[0] == "*" {
        "全部诊断".to_string()
    } else if let Some(ch) = parts[0].strip_suffix('*') {
        format!("诊断章 {ch}")
    } else {
        format!("诊断 {}", parts[0])
    };
    format!("{dx} × 医院等级 {} × 医疗类别 {}", parts[1], parts[2])
}

async fn peer_notes(
    ctx: &SessionContext,
    peer: &str,
    cfg: &StatsConfig,
    out: &mut StatsOutput,
) -> Result<()> {
    let q = format!(
        "{peer} SELECT peer_level, COUNT(DISTINCT peer) AS groups, COUNT(*) AS n FROM peer \
         GROUP BY peer_level ORDER BY peer_level"
    );
    let names =
        ["ICD-10 前三位 × 医院等级 × 医疗类别", "ICD-10 章 × 医院等级 × 医疗类别", "医院等级 × 医疗类别"];
    for b in sql(ctx, "peer groups", &q).await? {
        let c = Cols(&b);
        let (lvl, groups, n) = (c.i64("peer_level")?, c.i64("groups")?, c.i64("n")?);
        for i in 0..b.num_rows() {
            let note = match usize::try_from(lvl[i]).ok().and_then(|l| names.get(l)) {
                Some(name) if lvl[i] == 0 => format!("对照组（{name}）：{} 组，{} 条结算", groups[i], n[i]),
                Some(name) => {
                    format!(
                        "对照组向上合并为（{name}）：{} 组，{} 条结算（原组不足 {} 例）",
                        groups[i], n[i], cfg.peer.min_group_size
                    )
                }
                None => format!(
                    "{} 条结算所在对照组合并后仍不足 {} 例，未参与统计检验",
                    n[i], cfg.peer.min_group_size
                ),
            };
            out.notes.push(note);
        }
    }
    Ok(())
}

/// One settlement-level robust check.
struct RobustSpec {
    rule: &'static str,
    what: &'static str,
    /// Which `peer` rows are tested.
    filter: &'static str,
    /// The raw value, as `DOUBLE`.
    x: &'static str,
    /// The statistic is on `ln(x + shift)`.
    shift: f64,
    /// Effect floor: `x ≥ ratio × median(x)`.
    ratio: f64,
    /// Amount at risk (SQL over `p` and `g`).
    amount: &'static str,
}

async fn robust_check(
    ctx: &SessionContext,
    peer: &str,
    cfg: &StatsConfig,
    s: &RobustSpec,
    out: &mut StatsOutput,
) -> Result<()> {
    let (shift, ratio, z) = (s.shift, s.ratio, cfg.settlement.z_threshold);
    let base = format!(
        "{peer},
obs AS (SELECT *, {x} AS x, ln({x} + CAST({shift:?} AS DOUBLE)) AS lx FROM peer
        WHERE peer IS NOT NULL AND {filter}),
g AS (SELECT peer, COUNT(*) AS n, median(lx) AS mlx, median(x) AS mx, median(cost) AS mcost
      FROM obs GROUP BY peer),
d AS (SELECT o.peer, median(abs(o.lx - g.mlx)) AS mad FROM obs o JOIN g ON o.peer = g.peer GROUP BY o.peer)",
        x = s.x,
        filter = s.filter,
    );
    let tested_q =
        format!("{base} SELECT COALESCE(SUM(g.n), 0) AS m FROM g JOIN d ON g.peer = d.peer WHERE d.mad > 0");
    let mut m = 0usize;
    for b in sql(ctx, s.rule, &tested_q).await? {
        m += Cols(&b).i64("m")?.iter().map(|v| usize::try_from(*v).unwrap_or(0)).sum::<usize>();
    }
    let q = format!(
        "{base}
SELECT p.setl_id, p.psn_no, p.fixmedins_code, p.peer, g.n, p.x, g.mx, p.lx, g.mlx, d.mad,
       {amount} AS amount
FROM obs p JOIN g ON p.peer = g.peer JOIN d ON d.peer = p.peer
WHERE d.mad > 0
  AND (p.lx - g.mlx) * CAST({scale:?} AS DOUBLE) > CAST({z:?} AS DOUBLE) * d.mad
  AND p.x >= CAST({ratio:?} AS DOUBLE) * g.mx
ORDER BY p.setl_id",
        amount = s.amount,
        scale = math::MAD_SCALE,
    );
    struct Hit {
        setl: String,
        psn: Option<String>,
        fix: Option<String>,
        peer: String,
        n: i64,
        x: f64,
        mx: f64,
        z: f64,
        p: f64,
        amount: Decimal,
    }
    let mut hits = Vec::new();
    for b in sql(ctx, s.rule, &q).await? {
        let c = Cols(&b);
        let (setl, psn, fix, pg) =
            (c.text("setl_id")?, c.text("psn_no")?, c.text("fixmedins_code")?, c.text("peer")?);
        let (n, x, mx, lx, mlx, mad, amt) = (
            c.i64("n")?,
            c.f64("x")?,
            c.f64("mx")?,
            c.f64("lx")?,
            c.f64("mlx")?,
            c.f64("mad")?,
            c.dec("amount")?,
        );
        for i in 0..b.num_rows() {
            let (Some(sid), Some(z)) = (setl[i].clone(), math::modified_z(lx[i], mlx[i], mad[i])) else {
                continue;
            };
            hits.push(Hit {
                setl: sid,
                psn: psn[i].clone(),
                fix: fix[i].clone(),
                peer: pg[i].clone().unwrap_or_default(),
                n: n[i],
                x: x[i],
                mx: mx[i],
                z,
                p: math::normal_sf(z),
                amount: amt[i].max(Decimal::ZERO),
            });
        }
    }
    let q = math::bh_qvalues(&hits.iter().map(|h| h.p).collect::<Vec<_>>(), m);
    let mut count = 0;
    for (h, q) in hits.into_iter().zip(q) {
        if q >= cfg.settlement.q_threshold {
            continue;
        }
        count += 1;
        let (val, med) = if s.rule == "STA001" {
            (format!("{:.2} 元", h.x), format!("{:.2} 元", h.mx))
        } else {
            (format!("{} 天", h.x), format!("{} 天", h.mx))
        };
        out.findings.push(Finding {
            setl_id: h.setl.clone(),
            psn_no: h.psn,
            fixmedins_code: h.fix,
            rule_id: s.rule.into(),
            category: CATEGORY,
            severity: Severity::Low,
            amount_at_risk: h.amount.round_dp(2),
            detail: format!(
                "结算{what} {val}，为对照组中位数 {med} 的 {r:.1} 倍；稳健Z值 {z:.2}（对数尺度，中位数/MAD），\
                 p={p}，q≤{q}（{m} 条结算中）；对照组：{pl}，{n} 例",
                what = s.what,
                r = if h.mx > 0.0 { h.x / h.mx } else { f64::INFINITY },
                z = h.z,
                p = fmt_p(h.p),
                q = fmt_p(q),
                pl = peer_label(&h.peer),
                n = h.n,
            ),
            entity_type: "settlement",
            entity_id: h.setl,
            feedetl_sns: None,
        });
    }
    out.notes.push(format!("{}：{} 条结算参与检验，{} 条超出阈值", s.rule, m, count));
    out.checks.push((s.rule.into(), count));
    Ok(())
}

/// A text as a SQL string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Runs a query and hands every result batch to `f` as it arrives (for results too large to
/// collect, e.g. one row per settlement).
async fn stream_sql(
    ctx: &SessionContext,
    what: &str,
    q: &str,
    mut f: impl FnMut(&RecordBatch) -> Result<()>,
) -> Result<()> {
    let df = ctx.sql(q).await.map_err(|e| Error::df(format!("statistics: {what}"), e))?;
    let mut stream = df.execute_stream().await.map_err(|e| Error::df(format!("statistics: {what}"), e))?;
    while let Some(b) = stream.next().await {
        f(&b.map_err(|e| Error::df(format!("statistics: {what}"), e))?)?;
    }
    Ok(())
}

/// One entity-level finding and the settlements it rests on (`setl_id`, `psn_no`,
/// `fixmedins_code`).
struct EntityHit {
    entity_id: String,
    detail: String,
    /// Split evenly over the settlements (floored at 0, to the cent).
    amount: Decimal,
    rows: Vec<(String, Option<String>, Option<String>)>,
}

/// Writes each hit once for every distinct settlement it rests on; returns the rows written.
fn emit(
    out: &mut StatsOutput,
    rule: &str,
    severity: Severity,
    entity_type: &'static str,
    hits: Vec<EntityHit>,
) -> usize {
    let mut count = 0;
    for mut h in hits {
        h.rows.sort();
        h.rows.dedup_by(|a, b| a.0 == b.0);
        let parts = split_amount(h.amount, h.rows.len());
        for ((sid, psn, fix), amt) in h.rows.into_iter().zip(parts) {
            count += 1;
            out.findings.push(Finding {
                setl_id: sid,
                psn_no: psn,
                fixmedins_code: fix,
                rule_id: rule.into(),
                category: CATEGORY,
                severity,
                amount_at_risk: amt,
                detail: h.detail.clone(),
                entity_type,
                entity_id: h.entity_id.clone(),
                feedetl_sns: None,
            });
        }
    }
    count
}

/// STA003: facility cost against its case-mix expected cost.
///
/// Per (facility, peer group) the SQL returns cases, cost and the sums of ln(cost) and its
/// square; the expected cost of a case is the mean cost of its peer group among the *other*
/// facilities (indirect standardisation, the facility left out of its own yardstick), and the
/// test statistic is the facility's mean log-cost residual against the other facilities'
/// mean log cost of the same groups (efficient and robust for heavy-tailed costs), with its
/// sampling variance, in a random-effects z-test (DerSimonian–Laird τ², facility left out).
async fn facility_cost(
    ctx: &SessionContext,
    peer: &str,
    cfg: &StatsConfig,
    out: &mut StatsOutput,
) -> Result<()> {
    let f = &cfg.facility;
    let inp = if f.inpatient_only { "inp" } else { "TRUE" };
    let base = format!(
        "{peer},
obs AS (SELECT setl_id, psn_no, fixmedins_code, peer, cost, ln(CAST(cost AS DOUBLE)) AS lc FROM peer
        WHERE peer IS NOT NULL AND {inp} AND fixmedins_code IS NOT NULL)"
    );
    let q = format!(
        "{base}
SELECT fixmedins_code, peer, COUNT(*) AS n, SUM(cost) AS c, SUM(lc) AS sl, SUM(lc * lc) AS sl2
FROM obs GROUP BY fixmedins_code, peer ORDER BY fixmedins_code, peer"
    );
    struct Cell {
        fac: String,
        peer: String,
        n: i64,
        c: Decimal,
        sl: f64,
        sl2: f64,
    }
    let mut cells = Vec::new();
    for b in sql(ctx, "STA003", &q).await? {
        let c = Cols(&b);
        let (fac, pg, n, cost) = (c.text("fixmedins_code")?, c.text("peer")?, c.i64("n")?, c.dec("c")?);
        let (sl, sl2) = (c.f64("sl")?, c.f64("sl2")?);
        for i in 0..b.num_rows() {
            if let (Some(fac), Some(pg)) = (fac[i].clone(), pg[i].clone()) {
                cells.push(Cell { fac, peer: pg, n: n[i], c: cost[i], sl: sl[i], sl2: sl2[i] });
            }
        }
    }
    let mut tot: BTreeMap<&str, (i64, Decimal, f64)> = BTreeMap::new();
    for x in &cells {
        let t = tot.entry(x.peer.as_str()).or_insert((0, Decimal::ZERO, 0.0));
        t.0 += x.n;
        t.1 += x.c;
        t.2 += x.sl;
    }
    #[derive(Default)]
    struct Fac {
        n: i64,
        o: Decimal,
        e: Decimal,
        r: f64,
        rss: f64,
        groups: usize,
        uncompared: i64,
    }
    let mut facs: BTreeMap<String, Fac> = BTreeMap::new();
    let mut compared: HashSet<(String, String)> = HashSet::new();
    for x in &cells {
        let a = facs.entry(x.fac.clone()).or_default();
        let Some(&(gn, gc, gsl)) = tot.get(x.peer.as_str()) else { continue };
        let others = gn - x.n;
        if others < f.min_peer_cases as i64 || others <= 0 {
            a.uncompared += x.n;
            continue;
        }
        let mean_cost = (gc - x.c) / Decimal::from(others);
        let ml = (gsl - x.sl) / others as f64;
        let n = x.n as f64;
        a.n += x.n;
        a.o += x.c;
        a.e += mean_cost * Decimal::from(x.n);
        a.r += x.sl - n * ml;
        a.rss += x.sl2 - 2.0 * ml * x.sl + n * ml * ml;
        a.groups += 1;
        compared.insert((x.fac.clone(), x.peer.clone()));
    }
    let mut small = 0usize;
    let mut tested: Vec<(String, Fac, f64, f64)> = Vec::new();
    for (code, a) in facs {
        if a.n < f.min_cases as i64 || a.e <= Decimal::ZERO || a.n < 2 {
            small += 1;
            continue;
        }
        let n = a.n as f64;
        let y = a.r / n;
        let var = ((a.rss - n * y * y) / (n - 1.0)).max(0.0);
        tested.push((code, a, y, var / n));
    }
    let y: Vec<f64> = tested.iter().map(|t| t.2).collect();
    let v: Vec<f64> = tested.iter().map(|t| t.3).collect();
    let zs = math::leave_one_out_re_z(&y, &v);
    let ps: Vec<f64> = zs.iter().map(|z| z.map_or(1.0, |(z, _, _)| math::normal_sf(z))).collect();
    let qs = math::bh_qvalues(&ps, ps.len());
    let mut flagged: BTreeMap<String, (String, Decimal)> = BTreeMap::new();
    for (i, (code, a, y, _)) in tested.iter().enumerate() {
        let Some((z, mu, tau2)) = zs[i] else { continue };
        let oe = decimal_ratio(a.o, a.e);
        if qs[i] >= f.q_threshold || oe < f.cost_oe_floor {
            continue;
        }
        let excess = (a.o - a.e).max(Decimal::ZERO).round_dp(2);
        let detail = format!(
            "机构住院费用 实际/期望(O/E) = {oe:.2}（实际 {o} 元；期望 {e} 元，即每例按其他机构同一对照组的平均费用，\
             间接标化，{n} 例，{g} 个对照组）；病例对数费用较其他机构同组平均高 {y:.3}（几何均数比 {gm:.2}），\
             随机效应Z值 {z:.2}（其他机构均值 {mu:.3}，机构间方差 τ²={tau2:.4}），p={p}，q={q}（{k} 家机构中）；\
             超出期望 {excess} 元按该机构 {n} 条结算均摊",
            o = a.o.round_dp(2),
            e = a.e.round_dp(2),
            n = a.n,
            g = a.groups,
            gm = y.exp(),
            p = fmt_p(ps[i]),
            q = fmt_p(qs[i]),
            k = tested.len(),
        );
        flagged.insert(code.clone(), (detail, excess));
    }
    let mut count = 0;
    if !flagged.is_empty() {
        let list: Vec<String> = flagged.keys().map(|c| lit(c)).collect();
        let q = format!(
            "{base} SELECT setl_id, psn_no, fixmedins_code, peer FROM obs WHERE fixmedins_code IN ({}) \
             ORDER BY fixmedins_code, setl_id",
            list.join(", ")
        );
        let mut rows: BTreeMap<String, Vec<(String, Option<String>, Option<String>)>> = BTreeMap::new();
        for b in sql(ctx, "STA003", &q).await? {
            let c = Cols(&b);
            let (setl, psn, fix, pg) =
                (c.text("setl_id")?, c.text("psn_no")?, c.text("fixmedins_code")?, c.text("peer")?);
            for i in 0..b.num_rows() {
                if let (Some(s), Some(fx), Some(pg)) = (setl[i].clone(), fix[i].clone(), pg[i].clone())
                    && compared.contains(&(fx.clone(), pg))
                {
                    rows.entry(fx.clone()).or_default().push((s, psn[i].clone(), Some(fx)));
                }
            }
        }
        let hits = flagged
            .into_iter()
            .map(|(code, (detail, amount))| EntityHit {
                rows: rows.remove(&code).unwrap_or_default(),
                entity_id: code,
                detail,
                amount,
            })
            .collect();
        count = emit(out, "STA003", Severity::Medium, "facility", hits);
    }
    let n_flagged = out
        .findings
        .iter()
        .filter(|x| x.rule_id == "STA003")
        .map(|x| &x.entity_id)
        .collect::<BTreeSet<_>>()
        .len();
    out.notes.push(format!(
        "STA003：{} 家机构参与检验（{} 家可比病例数不足 {} 未检验），{} 家超出阈值（q<{}，O/E≥{}），{} 条结算",
        tested.len(),
        small,
        f.min_cases,
        n_flagged,
        f.q_threshold,
        f.cost_oe_floor,
        count
    ));
    out.checks.push(("STA003".into(), count));
    Ok(())
}

/// `a / b` as `f64` (0 when `b` is 0).
fn decimal_ratio(a: Decimal, b: Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    if b.is_zero() { 0.0 } else { (a / b).to_f64().unwrap_or(0.0) }
}

/// Counts of events per facility and group, with indirect standardisation: per facility the
/// cases, the observed events and the events expected from the *other* facilities' rate in
/// each of its groups (groups where the others have fewer than `min_others` cases are left
/// out), and how many groups were used.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CountUnit {
    pub cases: f64,
    pub observed: f64,
    pub expected: f64,
    pub groups: usize,
}

/// Indirect standardisation of event counts: `cells` are (facility, group, cases, events).
pub fn indirect_counts(cells: &[(String, String, f64, f64)], min_others: f64) -> BTreeMap<String, CountUnit> {
    let mut tot: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for (_, g, n, x) in cells {
        let t = tot.entry(g.as_str()).or_insert((0.0, 0.0));
        t.0 += n;
        t.1 += x;
    }
    let mut out: BTreeMap<String, CountUnit> = BTreeMap::new();
    for (f, g, n, x) in cells {
        let u = out.entry(f.clone()).or_default();
        let Some(&(gn, gx)) = tot.get(g.as_str()) else { continue };
        let others = gn - n;
        if others < min_others.max(1.0) {
            continue;
        }
        u.cases += n;
        u.observed += x;
        u.expected += n * (gx - x) / others;
        u.groups += 1;
    }
    out
}

/// The negative-binomial test of every unit's observed against expected count, the
/// over-dispersion estimated by moments from the other units: per unit `(phi, p)`.
pub fn count_tests(units: &[&CountUnit]) -> Vec<(f64, f64)> {
    let o: Vec<f64> = units.iter().map(|u| u.observed).collect();
    let e: Vec<f64> = units.iter().map(|u| u.expected).collect();
    let phi = math::nb_dispersion_loo(&o, &e);
    units
        .iter()
        .zip(phi)
        .map(|(u, phi)| {
            let p = math::nb_tail(u.observed.max(0.0).round() as u64, u.expected, phi)
                .unwrap_or(if u.observed > 0.0 { 0.0 } else { 1.0 });
            (phi, p)
        })
        .collect()
}

/// A text column of a findings batch as `Utf8`.
fn findings_text(b: &RecordBatch, name: &str) -> Result<Option<arrow::array::ArrayRef>> {
    match b.column_by_name(name) {
        None => Ok(None),
        Some(c) => arrow::compute::cast(c, &DataType::Utf8)
            .map(Some)
            .map_err(|e| Error::arrow(format!("statistics: findings column {name}"), e)),
    }
}

/// STA004: a facility's share of settlements flagged by the SQL rules against its case-mix
/// expected number (each peer group's flagged share among the other facilities).
async fn flagged_share(
    ctx: &SessionContext,
    peer: &str,
    cfg: &StatsConfig,
    rule_findings: &[RecordBatch],
    out: &mut StatsOutput,
) -> Result<()> {
    let c = &cfg.flagged_share;
    let cats: HashSet<&str> = c.categories.iter().map(String::as_str).collect();
    let mut flagged_ids: HashSet<String> = HashSet::new();
    for b in rule_findings {
        let (Some(setl), Some(cat)) = (findings_text(b, "setl_id")?, findings_text(b, "category")?) else {
            continue;
        };
        let (setl, cat) = (setl.as_string::<i32>(), cat.as_string::<i32>());
        for i in 0..b.num_rows() {
            if !setl.is_null(i) && !cat.is_null(i) && cats.contains(cat.value(i)) {
                flagged_ids.insert(setl.value(i).to_string());
            }
        }
    }
    // One pass over the settlements (streamed): cases and flagged per (facility, group), and
    // the flagged settlements themselves.
    let q = format!(
        "{peer} SELECT setl_id, psn_no, fixmedins_code, peer FROM peer \
         WHERE peer IS NOT NULL AND fixmedins_code IS NOT NULL"
    );
    let mut agg: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    let mut flagged_rows: BTreeMap<String, Vec<(String, Option<String>, Option<String>)>> = BTreeMap::new();
    stream_sql(ctx, "STA004", &q, |b| {
        let cl = Cols(b);
        let (setl, psn, fix, pg) =
            (cl.text("setl_id")?, cl.text("psn_no")?, cl.text("fixmedins_code")?, cl.text("peer")?);
        for i in 0..b.num_rows() {
            let (Some(s), Some(fx), Some(g)) = (&setl[i], &fix[i], &pg[i]) else { continue };
            let hit = flagged_ids.contains(s);
            let a = agg.entry((fx.clone(), g.clone())).or_insert((0.0, 0.0));
            a.0 += 1.0;
            if hit {
                a.1 += 1.0;
                flagged_rows.entry(fx.clone()).or_default().push((
                    s.clone(),
                    psn[i].clone(),
                    Some(fx.clone()),
                ));
            }
        }
        Ok(())
    })
    .await?;
    let cells: Vec<(String, String, f64, f64)> =
        agg.into_iter().map(|((f, g), (n, x))| (f, g, n, x)).collect();
    let total: f64 = cells.iter().map(|x| x.2).sum();
    let total_flagged: f64 = cells.iter().map(|x| x.3).sum();
    let units = indirect_counts(&cells, 1.0);
    let tested: Vec<(&String, &CountUnit)> =
        units.iter().filter(|(_, u)| u.cases >= c.min_cases as f64 && u.expected > 0.0).collect();
    let res = count_tests(&tested.iter().map(|t| t.1).collect::<Vec<_>>());
    let qs = math::bh_qvalues(&res.iter().map(|r| r.1).collect::<Vec<_>>(), res.len());
    let share = if total > 0.0 { total_flagged / total } else { 0.0 };
    let mut hits = Vec::new();
    for (i, (code, u)) in tested.iter().enumerate() {
        let (phi, p) = res[i];
        let ratio = u.observed / u.expected;
        if qs[i] >= c.q_threshold || u.observed < c.min_flagged as f64 || ratio < c.ratio_floor {
            continue;
        }
        hits.push(EntityHit {
            entity_id: (*code).clone(),
            detail: format!(
                "机构被规则命中的结算 {o} 条 / {n} 条（{s:.1}%），按病例组合（{g} 个对照组，其他机构同组命中率）期望 {e:.1} 条，\
                 实际为期望的 {ratio:.1} 倍（全体命中率 {all:.1}%）；负二项上尾（机构间过度离散 φ={phi:.3}，不含本机构估计）\
                 p={p}，q={q}（{k} 家机构中）；金额已计入各规则，此处不重复计算",
                o = u.observed,
                n = u.cases,
                s = 100.0 * u.observed / u.cases,
                g = u.groups,
                e = u.expected,
                all = 100.0 * share,
                p = fmt_p(p),
                q = fmt_p(qs[i]),
                k = tested.len(),
            ),
            amount: Decimal::ZERO,
            rows: flagged_rows.remove(*code).unwrap_or_default(),
        });
    }
    let n_hits = hits.len();
    let count = emit(out, "STA004", Severity::Low, "facility", hits);
    out.notes.push(format!(
        "STA004：规则命中 {} 条结算（全体 {:.2}%），{} 家机构参与检验，{} 家超出阈值（q<{}，≥{} 条且≥期望 {} 倍），{} 条结算",
        total_flagged,
        100.0 * share,
        tested.len(),
        n_hits,
        c.q_threshold,
        c.min_flagged,
        c.ratio_floor,
        count
    ));
    out.checks.push(("STA004".into(), count));
    Ok(())
}

/// The diagnosis group of a 3-character ICD-10 code given the group sizes: the code itself
/// when it has at least `min` cases, else its chapter letter (`A*`) when the small codes of
/// the chapter have at least `min` together, else all (`*`).
fn merge_groups(sizes: &BTreeMap<String, f64>, min: f64) -> BTreeMap<String, String> {
    let mut chapter: BTreeMap<String, f64> = BTreeMap::new();
    for (k, n) in sizes {
        if *n < min {
            *chapter.entry(format!("{}*", k.chars().next().unwrap_or('-'))).or_default() += n;
        }
    }
    sizes
        .iter()
        .map(|(k, n)| {
            let ch = format!("{}*", k.chars().next().unwrap_or('-'));
            let g = if *n >= min {
                k.clone()
            } else if chapter.get(&ch).copied().unwrap_or(0.0) >= min {
                ch
            } else {
                "*".to_string()
            };
            (k.clone(), g)
        })
        .collect()
}

/// STA005: a facility's same-facility readmissions within `window_days` against the number
/// expected from its index stays' diagnosis groups.
async fn readmission(ctx: &SessionContext, cfg: &StatsConfig, out: &mut StatsOutput) -> Result<()> {
    let c = &cfg.readmission;
    let excl: Vec<String> = c
        .exclude_dise_prefixes
        .iter()
        .map(|p| {
            format!("UPPER(COALESCE(dise_codg, '')) NOT LIKE {}", lit(&format!("{}%", p.to_uppercase())))
        })
        .collect();
    let excl = if excl.is_empty() { "TRUE".to_string() } else { excl.join(" AND ") };
    let w = c.window_days;
    let base = format!(
        "WITH st AS (
  SELECT psn_no, fixmedins_code AS fac, mdtrt_id, CAST(begndate AS INT) AS b, CAST(enddate AS INT) AS e,
         UPPER(SUBSTR(COALESCE(dise_codg, ''), 1, 3)) AS icd3
  FROM stay
  WHERE psn_no IS NOT NULL AND fixmedins_code IS NOT NULL AND begndate IS NOT NULL AND enddate IS NOT NULL
    AND {excl}),
o AS (SELECT st.*,
             LEAD(b) OVER (PARTITION BY psn_no, fac ORDER BY b, e, mdtrt_id) AS nb,
             LEAD(mdtrt_id) OVER (PARTITION BY psn_no, fac ORDER BY b, e, mdtrt_id) AS nm
      FROM st),
lim AS (SELECT MAX(b) AS last_b FROM st),
idx AS (SELECT o.*, CASE WHEN o.nb IS NOT NULL AND o.nb - o.e BETWEEN 0 AND {w} THEN 1 ELSE 0 END AS readm
        FROM o CROSS JOIN lim WHERE o.e <= lim.last_b - {w})"
    );
    let q = format!(
        "{base} SELECT fac, icd3, COUNT(*) AS n, SUM(readm) AS x FROM idx GROUP BY fac, icd3 ORDER BY fac, icd3"
    );
    let mut raw: Vec<(String, String, f64, f64)> = Vec::new();
    for b in sql(ctx, "STA005", &q).await? {
        let cl = Cols(&b);
        let (fac, icd, n, x) = (cl.text("fac")?, cl.text("icd3")?, cl.i64("n")?, cl.i64("x")?);
        for i in 0..b.num_rows() {
            if let Some(f) = fac[i].clone() {
                raw.push((f, icd[i].clone().unwrap_or_default(), n[i] as f64, x[i] as f64));
            }
        }
    }
    let mut sizes: BTreeMap<String, f64> = BTreeMap::new();
    for r in &raw {
        *sizes.entry(r.1.clone()).or_default() += r.2;
    }
    let groups = merge_groups(&sizes, c.min_group_size as f64);
    let mut agg: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    for (f, icd, n, x) in raw {
        let g = groups.get(&icd).cloned().unwrap_or_else(|| "*".into());
        let a = agg.entry((f, g)).or_insert((0.0, 0.0));
        a.0 += n;
        a.1 += x;
    }
    let cells: Vec<(String, String, f64, f64)> =
        agg.into_iter().map(|((f, g), (n, x))| (f, g, n, x)).collect();
    let (total, total_x): (f64, f64) = cells.iter().fold((0.0, 0.0), |a, x| (a.0 + x.2, a.1 + x.3));
    let units = indirect_counts(&cells, 1.0);
    let tested: Vec<(&String, &CountUnit)> =
        units.iter().filter(|(_, u)| u.cases >= c.min_cases as f64 && u.expected > 0.0).collect();
    let res = count_tests(&tested.iter().map(|t| t.1).collect::<Vec<_>>());
    let qs = math::bh_qvalues(&res.iter().map(|r| r.1).collect::<Vec<_>>(), res.len());
    let mut flagged: BTreeMap<String, String> = BTreeMap::new();
    for (i, (code, u)) in tested.iter().enumerate() {
        let (phi, p) = res[i];
        let ratio = u.observed / u.expected;
        if qs[i] >= c.q_threshold || u.observed < c.min_readmissions as f64 || ratio < c.ratio_floor {
            continue;
        }
        flagged.insert(
            (*code).clone(),
            format!(
                "机构 {w} 日内同机构再入院 {o} 次 / {n} 次出院（{s:.1}%），按出院诊断组（{g} 组，其他机构同组再入院率）\
                 期望 {e:.1} 次，实际为期望的 {ratio:.1} 倍（全体 {all:.1}%）；负二项上尾（机构间过度离散 φ={phi:.3}，\
                 不含本机构估计）p={p}，q={q}（{k} 家机构中）；写在再入院的结算上，金额不重复计算",
                o = u.observed,
                n = u.cases,
                s = 100.0 * u.observed / u.cases,
                g = u.groups,
                e = u.expected,
                all = if total > 0.0 { 100.0 * total_x / total } else { 0.0 },
                p = fmt_p(p),
                q = fmt_p(qs[i]),
                k = tested.len(),
            ),
        );
    }
    let mut count = 0;
    let n_hits = flagged.len();
    if !flagged.is_empty() {
        let list: Vec<String> = flagged.keys().map(|c| lit(c)).collect();
        let q = format!(
            "{base}
SELECT v.setl_id, v.psn_no, v.fixmedins_code
FROM (SELECT DISTINCT psn_no, fac, nm FROM idx WHERE readm = 1 AND fac IN ({})) r
JOIN setl_valid v ON v.psn_no = r.psn_no AND v.fixmedins_code = r.fac AND v.mdtrt_id = r.nm
WHERE v.is_inpatient
ORDER BY v.fixmedins_code, v.setl_id",
            list.join(", ")
        );
        let hits = facility_hits(ctx, "STA005", &q, flagged).await?;
        count = emit(out, "STA005", Severity::Medium, "facility", hits);
    }
    out.notes.push(format!(
        "STA005：{} 次出院、{} 次 {} 日内同机构再入院，{} 家机构参与检验，{} 家超出阈值（q<{}，≥{} 次且≥期望 {} 倍），{} 条结算",
        total,
        total_x,
        w,
        tested.len(),
        n_hits,
        c.q_threshold,
        c.min_readmissions,
        c.ratio_floor,
        count
    ));
    out.checks.push(("STA005".into(), count));
    Ok(())
}

/// Observed and expected first-digit counts (1–9) of one facility.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DigitUnit {
    pub observed: [f64; 9],
    pub expected: [f64; 9],
    pub lines: f64,
    pub groups: usize,
}

/// Indirect standardisation of first-digit counts: `cells` are (facility, group, digit 1–9,
/// lines); a facility's expected counts are, in each of its groups, its lines there times the
/// digit shares of the *other* facilities' lines in that group (groups where the others have
/// fewer than `min_others` lines are left out).
pub fn indirect_digits(
    cells: &[(String, String, usize, f64)],
    min_others: f64,
) -> BTreeMap<String, DigitUnit> {
    let mut tot: BTreeMap<&str, [f64; 9]> = BTreeMap::new();
    let mut fg: BTreeMap<(&str, &str), [f64; 9]> = BTreeMap::new();
    for (f, g, d, n) in cells {
        if !(1..=9).contains(d) {
            continue;
        }
        tot.entry(g.as_str()).or_insert([0.0; 9])[d - 1] += n;
        fg.entry((f.as_str(), g.as_str())).or_insert([0.0; 9])[d - 1] += n;
    }
    let mut out: BTreeMap<String, DigitUnit> = BTreeMap::new();
    for ((f, g), own) in fg {
        let u = out.entry(f.to_string()).or_default();
        let Some(all) = tot.get(g) else { continue };
        let others: Vec<f64> = all.iter().zip(&own).map(|(a, o)| a - o).collect();
        let (n_own, n_others): (f64, f64) = (own.iter().sum(), others.iter().sum());
        if n_others < min_others.max(1.0) {
            continue;
        }
        for d in 0..9 {
            u.observed[d] += own[d];
            u.expected[d] += n_own * others[d] / n_others;
        }
        u.lines += n_own;
        u.groups += 1;
    }
    out
}

/// STA006: the first significant digit of a facility's fee-line amounts against its peers'.
async fn digits(ctx: &SessionContext, peer: &str, cfg: &StatsConfig, out: &mut StatsOutput) -> Result<()> {
    let c = &cfg.digits;
    let q = format!(
        "{peer},
p2 AS (SELECT setl_id, fixmedins_code AS fac, peer, region FROM peer WHERE peer IS NOT NULL AND fixmedins_code IS NOT NULL),
x AS (SELECT p2.fac, p2.peer || '|' || p2.region AS peer, substr(ltrim(CAST(f.det_item_fee_sumamt AS VARCHAR), '0.'), 1, 1) AS d
      FROM p2 JOIN fee f ON f.setl_id = p2.setl_id
      WHERE f.det_item_fee_sumamt > 0)
SELECT fac, peer, d, COUNT(*) AS n FROM x GROUP BY fac, peer, d ORDER BY fac, peer, d"
    );
    let mut cells: Vec<(String, String, usize, f64)> = Vec::new();
    for b in sql(ctx, "STA006", &q).await? {
        let cl = Cols(&b);
        let (fac, pg, d, n) = (cl.text("fac")?, cl.text("peer")?, cl.text("d")?, cl.i64("n")?);
        for i in 0..b.num_rows() {
            let digit = d[i].as_deref().and_then(|s| s.parse::<usize>().ok()).unwrap_or(0);
            if let (Some(f), Some(g)) = (fac[i].clone(), pg[i].clone()) {
                cells.push((f, g, digit, n[i] as f64));
            }
        }
    }
    let units = indirect_digits(&cells, c.min_peer_lines as f64);
    let tested: Vec<(&String, &DigitUnit)> =
        units.iter().filter(|(_, u)| u.lines >= c.min_lines as f64).collect();
    let stats: Vec<(f64, usize, f64)> = tested
        .iter()
        .map(|(_, u)| {
            let (x2, df) = math::pearson_chi2(&u.observed, &u.expected);
            (x2, df, u.lines)
        })
        .collect();
    // Two allowances for facilities differing naturally, both of which must be exceeded
    // (an intersection-union test: the larger p-value is a valid p-value):
    // 1. the chi-square scaled by the Dirichlet-multinomial factor 1 + (n − 1) ρ, ρ pooled by
    //    moments over the other facilities;
    // 2. the facility's own ρ̂ = (X²/df − 1) / (n − 1) against the spread of the other
    //    facilities' ρ̂ on the log scale (robust z: median and MAD), normal tail.
    let rho = math::dm_rho_loo(&stats);
    // ρ̂ is floored at its own sampling noise, sqrt(2/df) / (n − 1) (the standard deviation of
    // X²/df under the multinomial), so that facilities without a detectable deviation sit at
    // their noise level instead of spreading the log scale towards 0.
    let own_rho: Vec<f64> = stats
        .iter()
        .map(|(x2, df, n)| {
            if *df == 0 || *n < 2.0 {
                return 0.0;
            }
            let d = *df as f64;
            ((x2 / d - 1.0) / (n - 1.0)).max((2.0 / d).sqrt() / (n - 1.0))
        })
        .collect();
    let spread = math::robust_log_z_loo(&own_rho);
    let p_chi: Vec<f64> = stats
        .iter()
        .zip(&rho)
        .map(|((x2, df, n), r)| {
            if *df == 0 {
                return 1.0;
            }
            math::chi2_sf(x2 / (1.0 + (n - 1.0) * r), *df).unwrap_or(1.0)
        })
        .collect();
    let p_spread: Vec<f64> = spread.iter().map(|z| z.map_or(1.0, |(z, _, _)| math::normal_sf(z))).collect();
    let ps: Vec<f64> = p_chi.iter().zip(&p_spread).map(|(a, b)| a.max(*b)).collect();
    let qs = math::bh_qvalues(&ps, ps.len());
    let mut flagged: BTreeMap<String, String> = BTreeMap::new();
    for (i, (code, u)) in tested.iter().enumerate() {
        let tvd = math::total_variation(&u.observed, &u.expected);
        if qs[i] >= c.q_threshold || tvd < c.tvd_floor {
            continue;
        }
        let (x2, df, n) = stats[i];
        let infl = 1.0 + (n - 1.0) * rho[i];
        let shares = |v: &[f64; 9]| -> String {
            let s: f64 = v.iter().sum();
            v.iter().map(|x| format!("{:.0}", 100.0 * x / s.max(1.0))).collect::<Vec<_>>().join("/")
        };
        flagged.insert(
            (*code).clone(),
            format!(
                "机构费用明细金额首位数字分布（1～9，%）{obs}，同对照组同地区其他机构（{g} 组）按其明细结构期望 {exp}；\
                 总变差距离 {tvd:.3}；Pearson χ²={x2:.1}（自由度 {df}，{n:.0} 条明细），按机构间过度离散（狄利克雷-多项，\
                 ρ={r:.2e}，放大 {infl:.1} 倍）校正后 p={pc}；本机构离散度 ρ̂={own:.2e}，相对其他机构（对数稳健Z值 {z:.2}）\
                 p={pz}；取两者较大者 p={p}，q={q}（{k} 家机构中）；提示核查收费是否按目录价格，金额不计",
                obs = shares(&u.observed),
                exp = shares(&u.expected),
                g = u.groups,
                r = rho[i],
                pc = fmt_p(p_chi[i]),
                own = own_rho[i],
                z = spread[i].map_or(0.0, |t| t.0),
                pz = fmt_p(p_spread[i]),
                p = fmt_p(ps[i]),
                q = fmt_p(qs[i]),
                k = tested.len(),
            ),
        );
    }
    let mut count = 0;
    let n_hits = flagged.len();
    if !flagged.is_empty() {
        let list: Vec<String> = flagged.keys().map(|c| lit(c)).collect();
        let q = format!(
            "{peer} SELECT setl_id, psn_no, fixmedins_code FROM peer \
             WHERE peer IS NOT NULL AND fixmedins_code IN ({}) ORDER BY fixmedins_code, setl_id",
            list.join(", ")
        );
        let hits = facility_hits(ctx, "STA006", &q, flagged).await?;
        count = emit(out, "STA006", Severity::Low, "facility", hits);
    }
    out.notes.push(format!(
        "STA006：{} 家机构参与检验（明细≥{} 条），{} 家超出阈值（q<{}，总变差距离≥{}），{} 条结算",
        tested.len(),
        c.min_lines,
        n_hits,
        c.q_threshold,
        c.tvd_floor,
        count
    ));
    out.checks.push(("STA006".into(), count));
    Ok(())
}

/// A day number (days since 1970-01-01) as a date.
fn day_text(day: i64) -> String {
    chrono::NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|d| d.checked_add_signed(chrono::Duration::days(day)))
        .map_or_else(|| day.to_string(), |d| d.to_string())
}

/// One window of a county × facility pair that passed the floors, and its test.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterWindow {
    pub county: String,
    pub facility: String,
    /// Last admission day of the window (days since 1970-01-01).
    pub day: i64,
    /// Persons admitted in the window.
    pub count: u64,
    /// The pair's persons over the whole span.
    pub pair_total: u64,
}

/// The scan test of cluster windows: the expected count of a window is the pair's admissions
/// outside it spread over the rest of the span (at least half a person), `(N − c) × w /
/// (D − w)`; the tail is negative binomial with dispersion `phi`. Returns `(expected, p)`.
pub fn cluster_test(win: &ClusterWindow, span_days: i64, window: u32, phi: f64) -> (f64, f64) {
    let w = f64::from(window);
    let rest = (win.pair_total.saturating_sub(win.count) as f64).max(0.5);
    let mean = rest * w / ((span_days as f64) - w).max(1.0);
    let p = math::nb_tail(win.count, mean, phi).unwrap_or(1.0);
    (mean, p)
}

/// STA008: persons of one county admitted to one facility within `window_days` days.
async fn cluster(ctx: &SessionContext, cfg: &StatsConfig, out: &mut StatsOutput) -> Result<()> {
    let c = &cfg.cluster;
    let w = c.window_days;
    let base = "WITH adm AS (
  SELECT DISTINCT psn_no, insu_admdvs AS cty, fixmedins_code AS fac, CAST(begndate AS INT) AS day
  FROM stay
  WHERE psn_no IS NOT NULL AND insu_admdvs IS NOT NULL AND fixmedins_code IS NOT NULL AND begndate IS NOT NULL),
per_day AS (SELECT cty, fac, day, COUNT(*) AS x FROM adm GROUP BY cty, fac, day),
pair AS (SELECT cty, fac, SUM(x) AS n, SUM(x * x) AS s2 FROM per_day GROUP BY cty, fac),
span AS (SELECT MIN(day) AS d0, MAX(day) AS d1 FROM adm)";
    // The span, the number of pairs and the moment sums of the daily counts' over-dispersion
    // (Var = μ + φ μ² with μ = N / D per pair): Σ(x − μ)² − x = S2 − N²/D − N, Σ μ² = N²/D.
    let q = format!(
        "{base} SELECT span.d0, span.d1, COUNT(*) AS pairs,
       SUM(CAST(pair.n AS DOUBLE)) AS sn, SUM(CAST(pair.s2 AS DOUBLE)) AS ss2,
       SUM(CAST(pair.n AS DOUBLE) * CAST(pair.n AS DOUBLE)) AS snn
FROM pair CROSS JOIN span GROUP BY span.d0, span.d1"
    );
    let (mut d, mut pairs, mut sn, mut ss2, mut snn) = (0i64, 0i64, 0.0, 0.0, 0.0);
    for b in sql(ctx, "STA008", &q).await? {
        let cl = Cols(&b);
        let (d0, d1, np) = (cl.i64("d0")?, cl.i64("d1")?, cl.i64("pairs")?);
        let (a, s, n2) = (cl.f64("sn")?, cl.f64("ss2")?, cl.f64("snn")?);
        for i in 0..b.num_rows() {
            d = d1[i] - d0[i] + 1;
            pairs = np[i];
            (sn, ss2, snn) = (a[i], s[i], n2[i]);
        }
    }
    let mut count = 0;
    let mut n_hits = 0;
    let mut phi_all = 0.0;
    let windows = pairs.max(0) as usize * (d - i64::from(w) + 1).max(1) as usize;
    if d > 0 && pairs > 0 {
        let df = d as f64;
        let (sum_a, sum_b) = (ss2 - snn / df - sn, snn / df);
        phi_all = if sum_b > 0.0 { (sum_a / sum_b).max(0.0) } else { 0.0 };
        let q = format!(
            "{base},
win AS (SELECT cty, fac, day,
               SUM(x) OVER (PARTITION BY cty, fac ORDER BY day RANGE BETWEEN {back} PRECEDING AND CURRENT ROW) AS c
        FROM per_day)
SELECT win.cty, win.fac, win.day, win.c, pair.n, pair.s2
FROM win JOIN pair ON win.cty = pair.cty AND win.fac = pair.fac
WHERE win.c >= {min}
ORDER BY win.cty, win.fac, win.day",
            back = w - 1,
            min = c.min_persons,
        );
        let mut cands: Vec<(ClusterWindow, f64, f64, f64)> = Vec::new();
        for b in sql(ctx, "STA008", &q).await? {
            let cl = Cols(&b);
            let (cty, fac, day, cnt, n, s2) =
                (cl.text("cty")?, cl.text("fac")?, cl.i64("day")?, cl.i64("c")?, cl.i64("n")?, cl.i64("s2")?);
            for i in 0..b.num_rows() {
                let (Some(cty), Some(fac)) = (cty[i].clone(), fac[i].clone()) else { continue };
                let (nf, s2f) = (n[i] as f64, s2[i] as f64);
                // The pair's own terms are left out of its over-dispersion.
                let (a, bb) = (sum_a - (s2f - nf * nf / df - nf), sum_b - nf * nf / df);
                let phi = if bb > 1e-12 { (a / bb).max(0.0) } else { 0.0 };
                let win = ClusterWindow {
                    county: cty,
                    facility: fac,
                    day: day[i],
                    count: u64::try_from(cnt[i]).unwrap_or(0),
                    pair_total: u64::try_from(n[i]).unwrap_or(0),
                };
                let (mean, p) = cluster_test(&win, d, w, phi);
                cands.push((win, mean, p, phi));
            }
        }
        let qs = math::bh_qvalues(&cands.iter().map(|x| x.2).collect::<Vec<_>>(), windows);
        // Flagged windows, merged per pair into clusters of overlapping windows; the detail
        // names the strongest window.
        struct Cl {
            county: String,
            facility: String,
            from: i64,
            to: i64,
            best: (f64, f64, u64, f64, f64, u64),
        }
        let mut clusters: Vec<Cl> = Vec::new();
        for ((win, mean, p, phi), q) in cands.iter().zip(&qs) {
            if *q >= c.q_threshold || (win.count as f64) < c.ratio_floor * mean {
                continue;
            }
            let from = win.day - i64::from(w) + 1;
            match clusters.last_mut() {
                Some(l) if l.county == win.county && l.facility == win.facility && from <= l.to => {
                    l.to = win.day;
                    if *p < l.best.0 {
                        l.best = (*p, *q, win.count, *mean, *phi, win.pair_total);
                    }
                }
                _ => clusters.push(Cl {
                    county: win.county.clone(),
                    facility: win.facility.clone(),
                    from,
                    to: win.day,
                    best: (*p, *q, win.count, *mean, *phi, win.pair_total),
                }),
            }
        }
        n_hits = clusters.len();
        if !clusters.is_empty() {
            let cond: Vec<String> = clusters
                .iter()
                .map(|x| {
                    format!(
                        "(st.insu_admdvs = {} AND st.fixmedins_code = {} AND CAST(st.begndate AS INT) BETWEEN {} AND {})",
                        lit(&x.county),
                        lit(&x.facility),
                        x.from,
                        x.to
                    )
                })
                .collect();
            let q = format!(
                "SELECT v.setl_id, v.psn_no, v.fixmedins_code, v.fund_pay, st.insu_admdvs AS cty,
       CAST(st.begndate AS INT) AS day
FROM stay st JOIN setl_valid v ON v.psn_no = st.psn_no AND v.fixmedins_code = st.fixmedins_code
                              AND v.mdtrt_id = st.mdtrt_id
WHERE v.is_inpatient AND ({})
ORDER BY v.setl_id",
                cond.join(" OR ")
            );
            let mut rows: Vec<Vec<(String, Option<String>, Option<String>)>> =
                vec![Vec::new(); clusters.len()];
            let mut paid: Vec<Decimal> = vec![Decimal::ZERO; clusters.len()];
            for b in sql(ctx, "STA008", &q).await? {
                let cl = Cols(&b);
                let (setl, psn, fix, fp, cty, day) = (
                    cl.text("setl_id")?,
                    cl.text("psn_no")?,
                    cl.text("fixmedins_code")?,
                    cl.dec("fund_pay")?,
                    cl.text("cty")?,
                    cl.i64("day")?,
                );
                for i in 0..b.num_rows() {
                    let (Some(s), Some(fx), Some(ct)) = (&setl[i], &fix[i], &cty[i]) else { continue };
                    if let Some(k) = clusters.iter().position(|x| {
                        &x.county == ct && &x.facility == fx && (x.from..=x.to).contains(&day[i])
                    }) {
                        rows[k].push((s.clone(), psn[i].clone(), Some(fx.clone())));
                        paid[k] += fp[i];
                    }
                }
            }
            let hits = clusters
                .iter()
                .zip(rows)
                .zip(paid)
                .map(|((x, rows), paid)| {
                    let (p, q, cnt, mean, phi, total) = x.best;
                    // The fund payments of the cluster's stays beyond the usual inflow.
                    let mean_d = Decimal::from_f64_retain(mean).unwrap_or(Decimal::ZERO).round_dp(6);
                    let cnt_d = Decimal::from(cnt.max(1));
                    let amount = (paid * (cnt_d - mean_d) / cnt_d).max(Decimal::ZERO);
                    EntityHit {
                        entity_id: x.facility.clone(),
                        detail: format!(
                            "参保地 {cty} 的 {cnt} 人在 {w} 日内（{from}～{to}）集中入住机构 {fac}；该机构全期共收治该县区 {total} 人，\
                             按平常收治水平每 {w} 日期望 {mean:.3} 人（实际为 {r:.0} 倍）；负二项上尾（日收治过度离散 φ={phi:.3}）\
                             p={p}，q={q}（{m} 个县区×机构×{w} 日窗口中）；金额为超出平常水平部分的基金支付，与 OOA002 同属一个信号",
                            cty = x.county,
                            fac = x.facility,
                            from = day_text(x.from),
                            to = day_text(x.to),
                            r = cnt as f64 / mean,
                            p = fmt_p(p),
                            q = fmt_p(q),
                            m = windows,
                        ),
                        amount: amount.round_dp(2),
                        rows,
                    }
                })
                .collect();
            count = emit(out, "STA008", Severity::Medium, "facility", hits);
        }
    }
    out.notes.push(format!(
        "STA008：{} 个县区×机构组合、{} 天（{} 个 {} 日窗口），日收治过度离散 φ={:.3}，{} 个聚集超出阈值（q<{}，≥{} 人且≥平常 {} 倍），{} 条结算",
        pairs,
        d,
        windows,
        w,
        phi_all,
        n_hits,
        c.q_threshold,
        c.min_persons,
        c.ratio_floor,
        count
    ));
    out.checks.push(("STA008".into(), count));
    Ok(())
}

/// STA007: stays per person and calendar year against the population's annual rate.
async fn person_admissions(
    ctx: &SessionContext,
    cfg: &StatsConfig,
    has_psn: bool,
    out: &mut StatsOutput,
) -> Result<()> {
    let pc = &cfg.person;
    let excl: Vec<String> = pc
        .exclude_dise_prefixes
        .iter()
        .map(|p| format!("COALESCE(dise_codg, '') NOT LIKE '{}%'", p.replace('\'', "''")))
        .collect();
    let excl = if excl.is_empty() { "TRUE".to_string() } else { excl.join(" AND ") };
    let st = format!(
        "WITH st AS (SELECT psn_no, fixmedins_code, mdtrt_id, CAST(date_part('year', begndate) AS BIGINT) AS yr
            FROM stay WHERE psn_no IS NOT NULL AND begndate IS NOT NULL AND {excl})"
    );
    // Population at risk per year: the insured persons (`psn`) when supplied, else the persons
    // with any standing settlement that year.
    let at_risk = if has_psn {
        "SELECT y.yr, (SELECT COUNT(DISTINCT psn_no) FROM psn) AS persons FROM (SELECT DISTINCT yr FROM st) y"
            .to_string()
    } else {
        "SELECT CAST(date_part('year', begndate) AS BIGINT) AS yr, COUNT(DISTINCT psn_no) AS persons \
         FROM setl_valid WHERE begndate IS NOT NULL GROUP BY 1"
            .to_string()
    };
    let q = format!(
        "{st}, r AS ({at_risk}), c AS (SELECT yr, COUNT(*) AS stays FROM st GROUP BY yr)
SELECT c.yr, c.stays, r.persons FROM c JOIN r ON c.yr = r.yr ORDER BY c.yr"
    );
    let mut rate: BTreeMap<i64, (f64, i64)> = BTreeMap::new();
    for b in sql(ctx, "STA007 rates", &q).await? {
        let c = Cols(&b);
        let (yr, stays, persons) = (c.i64("yr")?, c.i64("stays")?, c.i64("persons")?);
        for i in 0..b.num_rows() {
            if persons[i] > 0 && stays[i] > 0 {
                rate.insert(yr[i], (stays[i] as f64 / persons[i] as f64, persons[i]));
            }
        }
    }
    let m: usize = rate.values().map(|(_, n)| usize::try_from(*n).unwrap_or(0)).sum();
    // Person-years with at least 2 stays: everyone else has a larger p-value (P(X ≥ 1)).
    let q = format!("{st} SELECT psn_no, yr, COUNT(*) AS n FROM st GROUP BY psn_no, yr HAVING COUNT(*) >= 2");
    let mut cands: Vec<(String, i64, i64, f64, f64)> = Vec::new();
    for b in sql(ctx, "STA007", &q).await? {
        let c = Cols(&b);
        let (psn, yr, n) = (c.text("psn_no")?, c.i64("yr")?, c.i64("n")?);
        for i in 0..b.num_rows() {
            let (Some(p), Some((lambda, _))) = (psn[i].clone(), rate.get(&yr[i])) else { continue };
            let pv = math::poisson_tail(u64::try_from(n[i]).unwrap_or(0), *lambda).unwrap_or(1.0);
            cands.push((p, yr[i], n[i], *lambda, pv));
        }
    }
    cands.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let qs = math::bh_qvalues(&cands.iter().map(|c| c.4).collect::<Vec<_>>(), m);
    let mut flagged: BTreeMap<(String, i64), (String, i64, f64)> = BTreeMap::new();
    for (c, q) in cands.iter().zip(&qs) {
        let (psn, yr, n, lambda, p) = c;
        if *q >= pc.q_threshold || (*n as u64) < pc.min_admissions || (*n as f64) < pc.ratio_floor * lambda {
            continue;
        }
        let persons = rate.get(yr).map_or(0, |r| r.1);
        let detail = format!(
            "{yr} 年住院 {n} 次，人群年均 {lambda:.3} 次/人（{persons} 人，实际为期望的 {r:.1} 倍）；\
             泊松上尾概率 p={p}，q={q}（{m} 个人年中）",
            r = *n as f64 / lambda,
            p = fmt_p(*p),
            q = fmt_p(*q),
        );
        flagged.insert((psn.clone(), *yr), (detail, *n, *lambda));
    }
    let mut count = 0;
    if !flagged.is_empty() {
        let mut psns: Vec<String> =
            flagged.keys().map(|(p, _)| format!("'{}'", p.replace('\'', "''"))).collect();
        psns.dedup();
        let q = format!(
            "{st}
SELECT v.setl_id, v.psn_no, v.fixmedins_code, v.fund_pay, st.yr
FROM setl_valid v JOIN st ON v.psn_no = st.psn_no AND v.fixmedins_code = st.fixmedins_code
                       AND v.mdtrt_id = st.mdtrt_id
WHERE v.is_inpatient AND v.psn_no IN ({})
ORDER BY v.psn_no, st.yr, v.setl_id",
            psns.join(", ")
        );
        let mut rows: BTreeMap<(String, i64), Vec<(String, Option<String>, Decimal)>> = BTreeMap::new();
        for b in sql(ctx, "STA007", &q).await? {
            let c = Cols(&b);
            let (setl, psn, fix, fp, yr) = (
                c.text("setl_id")?,
                c.text("psn_no")?,
                c.text("fixmedins_code")?,
                c.dec("fund_pay")?,
                c.i64("yr")?,
            );
            for i in 0..b.num_rows() {
                let (Some(s), Some(p)) = (setl[i].clone(), psn[i].clone()) else { continue };
                if flagged.contains_key(&(p.clone(), yr[i])) {
                    rows.entry((p, yr[i])).or_default().push((s, fix[i].clone(), fp[i]));
                }
            }
        }
        for (key, setls) in rows {
            let Some((detail, n, lambda)) = flagged.get(&key) else { continue };
            // Amount: the fund payments of the person-year × the share of excess stays,
            // (n − max(1, ⌈λ⌉)) / n, split evenly over the settlements.
            let allowed = (lambda.ceil() as i64).max(1).min(*n);
            let total: Decimal = setls.iter().map(|s| s.2).sum();
            let excess = total * Decimal::from(n - allowed) / Decimal::from(*n);
            let parts = split_amount(excess, setls.len());
            for ((sid, fix, _), amt) in setls.into_iter().zip(parts) {
                count += 1;
                out.findings.push(Finding {
                    setl_id: sid,
                    psn_no: Some(key.0.clone()),
                    fixmedins_code: fix,
                    rule_id: "STA007".into(),
                    category: CATEGORY,
                    severity: Severity::Medium,
                    amount_at_risk: amt,
                    detail: detail.clone(),
                    entity_type: "person",
                    entity_id: key.0.clone(),
                    feedetl_sns: None,
                });
            }
        }
    }
    out.notes.push(format!(
        "STA007：{} 个人年参与检验（年住院率 {}），{} 个人年超出阈值（q<{}，≥{} 次且≥期望 {} 倍），{} 条结算",
        m,
        rate.iter().map(|(y, (l, _))| format!("{y}: {l:.3}")).collect::<Vec<_>>().join("，"),
        flagged.len(),
        pc.q_threshold,
        pc.min_admissions,
        pc.ratio_floor,
        count
    ));
    out.checks.push(("STA007".into(), count));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_amount_adds_up_to_the_cent() {
        let parts = split_amount(Decimal::new(1000, 2), 3); // 10.00 over 3
        assert_eq!(parts, vec![Decimal::new(334, 2), Decimal::new(333, 2), Decimal::new(333, 2)]);
        assert_eq!(parts.iter().sum::<Decimal>(), Decimal::new(1000, 2));
        assert_eq!(split_amount(Decimal::new(-5, 0), 2), vec![Decimal::ZERO, Decimal::ZERO]);
        assert!(split_amount(Decimal::ONE, 0).is_empty());
    }

    #[test]
    fn peer_labels_are_readable() {
        assert_eq!(peer_label("I63|2|inpatient"), "诊断 I63 × 医院等级 2 × 医疗类别 inpatient");
        assert_eq!(peer_label("I*|2|inpatient"), "诊断章 I × 医院等级 2 × 医疗类别 inpatient");
        assert_eq!(peer_label("*|2|inpatient"), "全部诊断 × 医院等级 2 × 医疗类别 inpatient");
    }

    #[test]
    fn the_shipped_config_loads() {
        let c = StatsConfig::load_default().expect("datasets/stats/config.toml");
        assert_eq!(c.facility.q_threshold, 0.01);
        assert!(c.facility.cost_oe_floor >= 1.3);
        let bad = "[peer]\nmin_group_size = 30\nmerge_upward = true\nbogus = 1\n";
        assert!(StatsConfig::parse(std::path::Path::new("x.toml"), bad).is_err());
    }
}
