//! The risk score and the second-review (复审) sample, `review_sample.csv`.
//!
//! The insurer first-reviews every settlement and then re-reviews a proportion set by each
//! locality (河南大病合同 第二十九条), and investigates out-of-area stays through their
//! medical records (第二十七条). This module spends that review where the risk and the money
//! are while keeping the sample a probability sample: every settlement has a known, non-zero
//! inclusion probability, recorded with the drawn rows, so that the review outcomes estimate
//! the population's violation rate without bias (Horvitz–Thompson).
//!
//! Per locality (a prefix of `insu_admdvs`), the settlements that stand (no reversal rows,
//! none cancelled by a reversal) fall into three strata:
//!
//! - `certainty`: a high-severity finding; all drawn (π = 1);
//! - `out_of_area`: the other out-of-area inpatient stays (first 4 digits of `insu_admdvs` and
//!   `fix_blng_admdvs` differ; `med_type` of an `out_of_area_classes` class), of which the
//!   configured share is drawn for medical-record investigation;
//! - `risk`: the rest, from which the remainder of the locality's proportion is drawn.
//!
//! The last two are drawn with probability proportional to the risk score with a floor
//! ([`design`]). `datasets/review/README.md` documents the score and the design.
//!
//! ```no_run
//! # fn main() -> medaudit::Result<()> {
//! # let (setl, findings) = (vec![], vec![]);
//! let codes = medaudit::codes::CodeTables::load(&medaudit::paths::datasets_dir().join("codes/codes.csv"))?;
//! let cfg = medaudit::sample::SampleConfig::load_default()?;
//! let out = medaudit::sample::draw(&setl, &findings, &codes, &cfg)?;
//! medaudit::sample::write_csv(std::path::Path::new("out/review_sample.csv"), &out)?;
//! # Ok(()) }
//! ```

mod config;
mod design;
mod score;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use rayon::prelude::*;

pub use config::{SampleConfig, ScoreConfig, SeverityWeights, SignalGroup};

use crate::codes::CodeTables;
use crate::error::{Error, Result};
use crate::input_err;

/// The strata of a locality, in the order the CSV lists them.
pub const STRATA: [&str; 3] = ["certainty", "out_of_area", "risk"];

/// One drawn settlement.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    pub setl_id: String,
    pub risk_score: f64,
    /// `<locality>/<stratum>`, e.g. `411402/risk`: the design stratum (locality × kind).
    pub stratum: String,
    /// The exact probability with which the design draws this settlement, in (0, 1].
    pub inclusion_prob: f64,
    /// The findings behind the score, strongest first (`无预警` when there are none).
    pub reason: String,
}

/// The size of one stratum of one locality.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StratumSummary {
    pub locality: String,
    /// `certainty`, `out_of_area` or `risk`.
    pub stratum: String,
    /// Settlements in the stratum.
    pub population: usize,
    /// Settlements drawn.
    pub drawn: usize,
    /// Settlements the design meant to draw.
    pub target: usize,
}

/// The sample of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleOutput {
    /// Drawn settlements by locality, stratum, descending risk score, then `setl_id`.
    pub rows: Vec<SampleRow>,
    pub seed: u64,
    pub strata: Vec<StratumSummary>,
}

/// One settlement of the population.
struct Unit<'a> {
    setl_id: &'a str,
    locality: &'a str,
    out_of_area: bool,
}

/// Scores every settlement that stands and draws the second-review sample.
///
/// `setl`: accepted settlements (schema [`crate::schema::SETL`]); `findings`: all findings of
/// the run ([`crate::schema::findings_schema`]); `codes` for the `med_type` classes.
/// The result depends only on the data, the configuration and its seed: not on the order of
/// the rows nor on the number of threads.
pub fn draw(
    setl: &[RecordBatch],
    findings: &[RecordBatch],
    codes: &CodeTables,
    cfg: &SampleConfig,
) -> Result<SampleOutput> {
    compute(setl, findings, codes, cfg, false)
}

/// The population, its strata and inclusion probabilities; `all`: every settlement in `rows`,
/// else the drawn ones.
fn compute(
    setl: &[RecordBatch],
    findings: &[RecordBatch],
    codes: &CodeTables,
    cfg: &SampleConfig,
    all: bool,
) -> Result<SampleOutput> {
    cfg.validate().map_err(|m| other_config_err(&m))?;
    // Columns of the settlements.
    let mut cols = Vec::with_capacity(setl.len());
    for b in setl {
        let get = |n: &str| score::text_column(b, n, "setl");
        cols.push([
            get("setl_id")?,
            get("insu_admdvs")?,
            get("fix_blng_admdvs")?,
            get("med_type")?,
            get("refd_setl_flag")?,
            get("init_setl_id")?,
        ]);
    }
    // Reversals and what they cancel.
    let mut cancelled: HashSet<&str> = HashSet::new();
    for (b, c) in setl.iter().zip(&cols) {
        for r in 0..b.num_rows() {
            if text(&c[4], r) == Some("1")
                && let Some(init) = text(&c[5], r).filter(|s| !s.is_empty())
            {
                cancelled.insert(init);
            }
        }
    }
    let oa_classes: HashSet<&str> = cfg.out_of_area_classes.iter().map(String::as_str).collect();
    let mut units: Vec<Unit> = Vec::new();
    for (b, c) in setl.iter().zip(&cols) {
        for r in 0..b.num_rows() {
            let id = text(&c[0], r).ok_or_else(|| input_err!("setl: a settlement has no setl_id"))?;
            if text(&c[4], r) == Some("1") || cancelled.contains(id) {
                continue;
            }
            let insu = text(&c[1], r).unwrap_or("");
            let fix = text(&c[2], r).unwrap_or("");
            let inpatient = text(&c[3], r)
                .and_then(|m| codes.class("med_type", m))
                .is_some_and(|k| oa_classes.contains(k));
            let out_of_area = inpatient && config::prefix_chars(insu, 4) != config::prefix_chars(fix, 4);
            units.push(Unit { setl_id: id, locality: cfg.locality_of(insu), out_of_area });
        }
    }
    units.sort_by(|a, b| a.setl_id.cmp(b.setl_id));
    if let Some(w) = units.windows(2).find(|w| w[0].setl_id == w[1].setl_id) {
        return Err(input_err!("setl: settlement {} appears more than once", w[0].setl_id));
    }
    let index: HashMap<&str, usize> = units.iter().enumerate().map(|(i, u)| (u.setl_id, i)).collect();

    // Scores.
    let mut hits = score::collect(findings, &index, cfg)?;
    let groups: HashMap<&str, usize> = cfg
        .signal_groups
        .iter()
        .enumerate()
        .flat_map(|(g, sg)| sg.rules.iter().map(move |r| (r.as_str(), g)))
        .collect();
    let scored: Vec<score::Scored> = hits.par_iter_mut().map(|h| score::score(h, &groups, cfg)).collect();

    // Localities.
    let mut by_locality: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, u) in units.iter().enumerate() {
        by_locality.entry(u.locality).or_default().push(i);
    }
    let per_locality: Vec<(Vec<SampleRow>, Vec<StratumSummary>)> = by_locality
        .into_par_iter()
        .map(|(loc, members)| draw_locality(loc, &members, &units, &scored, cfg, all))
        .collect();
    let mut rows = Vec::new();
    let mut strata = Vec::new();
    for (r, s) in per_locality {
        rows.extend(r);
        strata.extend(s);
    }
    Ok(SampleOutput { rows, seed: cfg.seed, strata })
}

fn other_config_err(m: &str) -> Error {
    crate::other_err!("sample configuration: {m}")
}

/// The trimmed text of row `r`, `None` when null.
fn text(a: &arrow::array::ArrayRef, r: usize) -> Option<&str> {
    let s = a.as_string::<i32>();
    if s.is_null(r) { None } else { Some(s.value(r).trim()) }
}

/// `round(x)` as a count.
fn round_count(x: f64) -> usize {
    x.round().max(0.0) as usize
}

/// Draws the strata of one locality; `members` are indices into `units` (sorted by id).
fn draw_locality(
    loc: &str,
    members: &[usize],
    units: &[Unit],
    scored: &[score::Scored],
    cfg: &SampleConfig,
    all: bool,
) -> (Vec<SampleRow>, Vec<StratumSummary>) {
    let mut strata: [Vec<usize>; 3] = Default::default();
    for &i in members {
        let k = if scored[i].high {
            0
        } else if units[i].out_of_area {
            1
        } else {
            2
        };
        strata[k].push(i);
    }
    let p = cfg.proportion_for(loc);
    let quota = round_count(p * members.len() as f64);
    // At least one from a non-empty stratum with a positive share: otherwise its settlements
    // would have no chance at all.
    let at_least_one = |share: f64, pop: usize, n: usize| if share > 0.0 && pop > 0 { n.max(1) } else { n };
    let oa_pop = strata[1].len();
    let oa_n =
        at_least_one(cfg.out_of_area_share, oa_pop, round_count(cfg.out_of_area_share * oa_pop as f64))
            .min(oa_pop);
    let risk_pop = strata[2].len();
    let risk_n = at_least_one(p, risk_pop, quota.saturating_sub(strata[0].len() + oa_n)).min(risk_pop);
    let targets = [strata[0].len(), oa_n, risk_n];

    let mut rows = Vec::new();
    let mut summary = Vec::new();
    for (k, name) in STRATA.iter().enumerate() {
        let ids: Vec<&str> = strata[k].iter().map(|&i| units[i].setl_id).collect();
        let q = if k == 0 {
            vec![design::ONE; ids.len()]
        } else {
            let s: Vec<f64> = strata[k].iter().map(|&i| scored[i].score).collect();
            design::inclusion(&design::sizes(&s, cfg.floor), targets[k])
        };
        let drawn = design::systematic(&ids, &q, design::stratum_key(cfg.seed, loc, name));
        let mut part: Vec<SampleRow> = strata[k]
            .iter()
            .zip(drawn.iter().zip(&q))
            .filter(|(_, (d, _))| all || **d)
            .map(|(&i, (_, &qi))| SampleRow {
                setl_id: units[i].setl_id.to_string(),
                risk_score: scored[i].score,
                stratum: format!("{loc}/{name}"),
                inclusion_prob: design::prob(qi),
                reason: scored[i].reason.clone(),
            })
            .collect();
        part.sort_by(|a, b| b.risk_score.total_cmp(&a.risk_score).then_with(|| a.setl_id.cmp(&b.setl_id)));
        summary.push(StratumSummary {
            locality: loc.to_string(),
            stratum: name.to_string(),
            population: ids.len(),
            drawn: drawn.iter().filter(|&&d| d).count(),
            target: targets[k],
        });
        rows.extend(part);
    }
    (rows, summary)
}

/// Every settlement that stands, drawn or not, with its risk score, stratum, reason and the
/// inclusion probability the design gives it (which does not depend on the seed): the
/// design behind [`draw`], for checks and for estimators that need the whole population.
pub fn population(
    setl: &[RecordBatch],
    findings: &[RecordBatch],
    codes: &CodeTables,
    cfg: &SampleConfig,
) -> Result<Vec<SampleRow>> {
    Ok(compute(setl, findings, codes, cfg, true)?.rows)
}

/// Writes `review_sample.csv` (SCHEMA.md): `setl_id, risk_score, stratum, inclusion_prob,
/// reason`, UTF-8 with a BOM. The score has four decimals; the probability is written in full
/// (shortest exact form).
pub fn write_csv(path: &Path, out: &SampleOutput) -> Result<()> {
    let f = std::fs::File::create(path).map_err(|e| Error::io("creating", path, e))?;
    write_csv_to(std::io::BufWriter::new(f), out)
        .map_err(|e| crate::other_err!("writing {}: {e}", path.display()))
}

/// Writes the sample as CSV (with BOM) to any writer.
pub fn write_csv_to<W: Write>(mut w: W, out: &SampleOutput) -> std::result::Result<(), String> {
    w.write_all(b"\xEF\xBB\xBF").map_err(|e| e.to_string())?;
    let mut c = csv::Writer::from_writer(w);
    c.write_record(["setl_id", "risk_score", "stratum", "inclusion_prob", "reason"])
        .map_err(|e| e.to_string())?;
    for r in &out.rows {
        c.write_record([
            r.setl_id.as_str(),
            &format!("{:.4}", r.risk_score),
            &r.stratum,
            &format!("{}", r.inclusion_prob),
            &r.reason,
        ])
        .map_err(|e| e.to_string())?;
    }
    c.flush().map_err(|e| e.to_string())
}
