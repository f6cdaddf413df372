//! Statistical anomaly checks: settlements, facilities and persons far from their peers
//! (`statistical_outlier`). Aggregation is SQL over the session's file-backed tables
//! (`setl_valid`, `stay`, `medins`, `psn`), returning small results; the tests run in Rust
//! with statrs ([`math`]). Method and parameters: `datasets/stats/README.md` and
//! `config.toml`.
//!
//! - STA001 settlement cost per case, STA002 settlement length of stay: modified z-score of
//!   the log value against the peer group (median / MAD), with a ratio floor;
//! - STA003 facility cost O/E (indirect standardisation over peer groups), random-effects
//!   z-test allowing for over-dispersion between facilities, BH over facilities, O/E floor;
//! - STA007 stays per person and year against the population's rate (Poisson tail), BH.
//!
//! ```no_run
//! # async fn f(ctx: &datafusion::prelude::SessionContext) -> medaudit::Result<()> {
//! let cfg = medaudit::stats::StatsConfig::load_default()?;
//! let out = medaudit::stats::run(ctx, &cfg).await?;
//! println!("{} findings", out.findings.len());
//! # Ok(()) }
//! ```

pub mod config;
pub mod math;

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int64Type};
use datafusion::prelude::SessionContext;
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
/// the population at risk where present).
pub async fn run(ctx: &SessionContext, cfg: &StatsConfig) -> Result<StatsOutput> {
    let has = |t: &str| ctx.table_exist(t).unwrap_or(false);
    let mut out = StatsOutput::default();
    if !has("setl_valid") {
        out.notes.push("统计检验未运行：会话中没有 setl_valid 视图".into());
        return Ok(out);
    }
    let peer = peer_cte(cfg, has("medins"));
    peer_notes(ctx, &peer, cfg, &mut out).await?;
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
        robust_check(ctx, &peer, cfg, &cost, &mut out).await?;
        let los = RobustSpec {
            rule: "STA002",
            what: "住院天数",
            filter: "inp AND los >= 0",
            x: "CAST(los AS DOUBLE)",
            shift: 1.0,
            ratio: cfg.settlement.los_ratio_floor,
            amount: "CAST(0 AS DECIMAL(16,2))",
        };
        robust_check(ctx, &peer, cfg, &los, &mut out).await?;
    }
    if cfg.facility.enabled {
        facility_cost(ctx, &peer, cfg, &mut out).await?;
    }
    if cfg.person.enabled {
        if has("stay") {
            person_admissions(ctx, cfg, has("psn"), &mut out).await?;
        } else {
            out.notes.push("STA007 未运行：会话中没有 stay 视图".into());
        }
    }
    out.findings.sort_by(|a, b| (&a.rule_id, &a.setl_id).cmp(&(&b.rule_id, &b.setl_id)));
    Ok(out)
}

/// The CTE `peer`: every standing settlement with a positive total, its peer group (`peer`,
/// `NULL` when skipped) and the level it was assigned at (`peer_level`: 0 ICD-3 × level ×
/// class, 1 ICD chapter letter × level × class, 2 level × class, 3 skipped).
fn peer_cte(cfg: &StatsConfig, has_medins: bool) -> String {
    let min = cfg.peer.min_group_size;
    let merge = if cfg.peer.merge_upward { "TRUE" } else { "FALSE" };
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
  SELECT setl_id, psn_no, fixmedins_code, inp, cost, los,
         CASE WHEN n0 >= {min} THEN k0
              WHEN {merge} AND n1 >= {min} THEN k1
              WHEN {merge} AND n2 >= {min} THEN k2 END AS peer,
         CASE WHEN n0 >= {min} THEN 0
              WHEN {merge} AND n1 >= {min} THEN 1
              WHEN {merge} AND n2 >= {min} THEN 2 ELSE 3 END AS peer_level
  FROM b3)"
    )
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

/// STA003: facility cost against its case-mix expected cost.
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
obs AS (SELECT *, CAST(cost AS DOUBLE) AS cost_f FROM peer
        WHERE peer IS NOT NULL AND {inp} AND fixmedins_code IS NOT NULL),
g0 AS (SELECT peer, AVG(cost) AS mean_cost FROM obs GROUP BY peer),
g AS (SELECT peer, mean_cost, CAST(mean_cost AS DOUBLE) AS mean_f FROM g0)"
    );
    let q = format!(
        "{base}
SELECT p.fixmedins_code, COUNT(*) AS n, SUM(p.cost) AS o, SUM(g.mean_cost) AS e,
       SUM(p.cost_f) AS of, SUM(g.mean_f) AS ef,
       SUM((p.cost_f - g.mean_f) * (p.cost_f - g.mean_f)) AS ss,
       COUNT(DISTINCT p.peer) AS groups
FROM obs p JOIN g ON p.peer = g.peer
GROUP BY p.fixmedins_code ORDER BY p.fixmedins_code"
    );
    struct Fac {
        code: String,
        n: i64,
        o: Decimal,
        e: Decimal,
        of: f64,
        ef: f64,
        groups: i64,
        y: f64,
        v: f64,
    }
    let mut facs = Vec::new();
    let mut small = 0usize;
    for b in sql(ctx, "STA003", &q).await? {
        let c = Cols(&b);
        let (code, n, o, e) = (c.text("fixmedins_code")?, c.i64("n")?, c.dec("o")?, c.dec("e")?);
        let (of, ef, ss, groups) = (c.f64("of")?, c.f64("ef")?, c.f64("ss")?, c.i64("groups")?);
        for i in 0..b.num_rows() {
            let Some(code) = code[i].clone() else { continue };
            let nn = n[i] as f64;
            if n[i] < f.min_cases as i64 || !(of[i] > 0.0 && ef[i] > 0.0) {
                small += 1;
                continue;
            }
            // Within-facility variance of ln(O/E) by the delta method: Var(O) / E², with Var(O)
            // = n × the sample variance of the residuals c − mean of the case's peer group.
            let mean_r = (of[i] - ef[i]) / nn;
            let var_r = ((ss[i] - nn * mean_r * mean_r) / (nn - 1.0)).max(0.0);
            facs.push(Fac {
                code,
                n: n[i],
                o: o[i],
                e: e[i],
                of: of[i],
                ef: ef[i],
                groups: groups[i],
                y: (of[i] / ef[i]).ln(),
                v: nn * var_r / (ef[i] * ef[i]),
            });
        }
    }
    let y: Vec<f64> = facs.iter().map(|x| x.y).collect();
    let v: Vec<f64> = facs.iter().map(|x| x.v).collect();
    let zs = math::leave_one_out_re_z(&y, &v);
    let ps: Vec<f64> = zs.iter().map(|z| z.map_or(1.0, |(z, _, _)| math::normal_sf(z))).collect();
    let qs = math::bh_qvalues(&ps, ps.len());
    let mut flagged: BTreeMap<String, String> = BTreeMap::new();
    let mut amounts: BTreeMap<String, Decimal> = BTreeMap::new();
    for (i, x) in facs.iter().enumerate() {
        let Some((z, mu, tau2)) = zs[i] else { continue };
        let oe = x.of / x.ef;
        if qs[i] >= f.q_threshold || oe < f.cost_oe_floor {
            continue;
        }
        let excess = (x.o - x.e).max(Decimal::ZERO).round_dp(2);
        flagged.insert(
            x.code.clone(),
            format!(
                "机构住院费用 实际/期望(O/E) = {oe:.2}（实际 {o} 元，按病例组合（{g} 个对照组）间接标化的期望 {e} 元，{n} 例）；\
                 随机效应Z值 {z:.2}（其他机构 ln(O/E) 均值 {mu:.3}，机构间方差 τ²={tau2:.4}），p={p}，q={q}（{k} 家机构中）；\
                 超出期望 {excess} 元按该机构 {n} 条结算均摊",
                o = x.o.round_dp(2),
                g = x.groups,
                e = x.e.round_dp(2),
                n = x.n,
                p = fmt_p(ps[i]),
                q = fmt_p(qs[i]),
                k = facs.len(),
            ),
        );
        amounts.insert(x.code.clone(), excess);
    }
    let mut count = 0;
    if !flagged.is_empty() {
        let list: Vec<String> = flagged.keys().map(|c| format!("'{}'", c.replace('\'', "''"))).collect();
        let q = format!(
            "{base} SELECT setl_id, psn_no, fixmedins_code FROM obs WHERE fixmedins_code IN ({}) \
             ORDER BY fixmedins_code, setl_id",
            list.join(", ")
        );
        let mut rows: BTreeMap<String, Vec<(String, Option<String>)>> = BTreeMap::new();
        for b in sql(ctx, "STA003", &q).await? {
            let c = Cols(&b);
            let (setl, psn, fix) = (c.text("setl_id")?, c.text("psn_no")?, c.text("fixmedins_code")?);
            for i in 0..b.num_rows() {
                if let (Some(s), Some(fx)) = (setl[i].clone(), fix[i].clone()) {
                    rows.entry(fx).or_default().push((s, psn[i].clone()));
                }
            }
        }
        for (code, mut setls) in rows {
            setls.sort();
            let (Some(detail), Some(total)) = (flagged.get(&code), amounts.get(&code)) else { continue };
            let parts = split_amount(*total, setls.len());
            for ((sid, psn), amt) in setls.into_iter().zip(parts) {
                count += 1;
                out.findings.push(Finding {
                    setl_id: sid,
                    psn_no: psn,
                    fixmedins_code: Some(code.clone()),
                    rule_id: "STA003".into(),
                    category: CATEGORY,
                    severity: Severity::Medium,
                    amount_at_risk: amt,
                    detail: detail.clone(),
                    entity_type: "facility",
                    entity_id: code.clone(),
                    feedetl_sns: None,
                });
            }
        }
    }
    out.notes.push(format!(
        "STA003：{} 家机构参与检验（{} 家病例数不足 {} 未检验），{} 家超出阈值（q<{}，O/E≥{}），{} 条结算",
        facs.len(),
        small,
        f.min_cases,
        flagged.len(),
        f.q_threshold,
        f.cost_oe_floor,
        count
    ));
    out.checks.push(("STA003".into(), count));
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
