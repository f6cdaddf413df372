//! The recalculation over the settlement table: every settlement a fund covers or should
//! cover, grouped into person-years (`psn_no`, fund, insurance year), taken in settlement
//! order and run through [`super::kernel`], person-years in parallel (rayon).
//!
//! The result does not depend on how the input rows are ordered or split into batches: rows
//! are sorted by person, fund, year, `setl_time`, `setl_id` before anything is computed, and
//! outputs come out in that order.
//!
//! Which rows are written (`benefit_check`), per fund:
//! - rows of the fund's own `insutype` whose `med_type` class the policy covers (on the curve);
//! - any other row that recorded a non-zero payment of the fund (expected 0: "should not be
//!   covered", a mismatch unless the person-year is incomplete);
//! - reversals of either, expected minus their original's expected payment, never a finding.
//!
//! A row's insurance year is the year of its `enddate`; a reversal takes its original's year
//! (and fund and class). A reversal whose original is missing, belongs to another person, is
//! itself a reversal, comes later in the order or was already reversed, expects 0 and makes
//! its person-year incomplete; so does a row of the fund's own `insutype` whose `med_type`
//! the code table does not know (covered or not cannot be told), a reversal's original whose
//! `setl_id` occurs twice, and the quarantine
//! ([`Incomplete`]). Incomplete person-years are written with status `incomplete` and raise no
//! finding and no outreach row.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, Date32Array, Decimal128Array, Decimal128Builder, RecordBatch, StringArray,
    StringBuilder, TimestampSecondArray,
};
use chrono::Datelike;
use rayon::prelude::*;
use rust_decimal::Decimal;

use super::kernel::{self, KRow, Role};
use super::outreach::OutreachRow;
use super::policy::{Formula, Fund, Policy, PolicySet, Served};
use super::text::{self, IdHash, yuan};
use super::{BenefitOutput, BenefitStats, Incomplete, RULE_EMPLOYEE, RULE_RESIDENT};
use crate::codes::CodeTables;
use crate::error::{Error, Result};
use crate::findings::{Finding, Severity, decimal_to_i128};
use crate::schema::benefit_check_schema;
use crate::{input_err, other_err};

const T: &str = "setl";
/// Rows per `benefit_check` batch.
const BATCH_ROWS: usize = 65_536;
/// Rows per parallel task when building entries.
const CHUNK: usize = 16_384;

/// The columns of one settlement batch the recalculation reads.
struct Cols<'a> {
    setl_id: &'a StringArray,
    psn_no: &'a StringArray,
    psn_name: &'a StringArray,
    certno: &'a StringArray,
    insutype: &'a StringArray,
    psn_idet_type: &'a StringArray,
    insu_admdvs: &'a StringArray,
    fixmedins_code: &'a StringArray,
    med_type: &'a StringArray,
    setl_mode: &'a StringArray,
    refd_setl_flag: &'a StringArray,
    init_setl_id: &'a StringArray,
    enddate: &'a Date32Array,
    setl_time: &'a TimestampSecondArray,
    inscp: (&'a Decimal128Array, u32),
    dedc: (&'a Decimal128Array, u32),
    hifp: (&'a Decimal128Array, u32),
    ratio: (&'a Decimal128Array, u32),
    hifmi: (&'a Decimal128Array, u32),
    hifob: (&'a Decimal128Array, u32),
}

impl<'a> Cols<'a> {
    fn new(b: &'a RecordBatch) -> Result<Self> {
        Ok(Cols {
            setl_id: text::text(b, T, "setl_id")?,
            psn_no: text::text(b, T, "psn_no")?,
            psn_name: text::text(b, T, "psn_name")?,
            certno: text::text(b, T, "certno")?,
            insutype: text::text(b, T, "insutype")?,
            psn_idet_type: text::text(b, T, "psn_idet_type")?,
            insu_admdvs: text::text(b, T, "insu_admdvs")?,
            fixmedins_code: text::text(b, T, "fixmedins_code")?,
            med_type: text::text(b, T, "med_type")?,
            setl_mode: text::text(b, T, "setl_mode")?,
            refd_setl_flag: text::text(b, T, "refd_setl_flag")?,
            init_setl_id: text::text(b, T, "init_setl_id")?,
            enddate: text::date(b, T, "enddate")?,
            setl_time: text::timestamp(b, T, "setl_time")?,
            inscp: text::decimal(b, T, "inscp_scp_amt")?,
            dedc: text::decimal(b, T, "act_pay_dedc")?,
            hifp: text::decimal(b, T, "hifp_pay")?,
            ratio: text::decimal(b, T, "pool_prop_selfpay")?,
            hifmi: text::decimal(b, T, "hifmi_pay")?,
            hifob: text::decimal(b, T, "hifob_pay")?,
        })
    }

    fn recorded(&self, fund: Fund, i: usize) -> Result<Decimal> {
        match fund {
            Fund::Hifmi => text::dec(&self.hifmi, i, T, "hifmi_pay"),
            Fund::Hifob => text::dec(&self.hifob, i, T, "hifob_pay"),
        }
    }
}

/// One settlement, as much as grouping needs.
struct Row<'a> {
    psn: &'a str,
    setl_id: &'a str,
    time: i64,
    /// Year of the row's own `enddate`.
    year: i32,
    b: u32,
    i: u32,
    reversal: bool,
    init: &'a str,
    own_fund: Option<Fund>,
    class: Option<&'a str>,
    /// Non-zero `hifmi_pay` / `hifob_pay`.
    paid: [bool; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ERole {
    Covered,
    NotCovered,
    /// Reversal of the row with this global index.
    Reversal(u32),
    Orphan,
    /// The fund's own row with a `med_type` the code table does not know: whether it is
    /// covered cannot be told, so its person-year is incomplete.
    Unknown,
}

/// One (settlement, fund) to check.
struct Entry<'a> {
    psn: &'a str,
    setl_id: &'a str,
    time: i64,
    year: i32,
    fund: Fund,
    row: u32,
    reversal: bool,
    /// The fund is the row's own (by `insutype`, for a reversal its original's).
    own: bool,
    role: ERole,
}

/// The result for one entry (a `benefit_check` row with the entry's `setl_id` and fund).
#[derive(Debug, Clone, Copy, Default)]
struct Res {
    recorded: Decimal,
    expected: Decimal,
    incomplete: bool,
}

/// Buffers reused across the person-years one thread computes.
#[derive(Default)]
struct Scratch {
    krows: Vec<KRow>,
    kout: Vec<kernel::KOut>,
    reversed: Vec<bool>,
}

/// The result of one person-year.
struct RunOut {
    fund: Fund,
    year: i32,
    policy: usize,
    rows: usize,
    findings: Vec<Finding>,
    outreach: Option<OutreachRow>,
    incomplete: bool,
    orphans: usize,
    unknown: usize,
}

/// Recomputes every critical-illness and large-expense payment of the settlement batches.
///
/// `tolerance` overrides the policy files' tolerance (default 0.01 yuan): a difference
/// `|recorded − expected|` above it is a `benefit_mismatch` finding. Findings: `BEN001`
/// (resident) and `BEN002` (employee), severity by `|diff|` against the policy's
/// `[severity]` thresholds (high ≥ 1,000, medium ≥ 10, else low, by default). Underpayments
/// are findings too and feed the outreach list.
pub fn recalculate(
    setl: &[RecordBatch],
    policies: &PolicySet,
    codes: &CodeTables,
    incomplete: &Incomplete,
    tolerance: Option<Decimal>,
) -> Result<BenefitOutput> {
    if let Some(t) = tolerance
        && t < Decimal::ZERO
    {
        return Err(input_err!("benefit tolerance {t} is negative"));
    }
    let cols: Vec<Cols> = setl.iter().map(Cols::new).collect::<Result<_>>()?;
    let pol: Vec<&Policy> = policies.policies().iter().collect();
    let insutype_fund: HashMap<&str, Fund, IdHash> = policies
        .policies()
        .iter()
        .flat_map(|p| p.insutypes.iter().map(move |t| (t.as_str(), p.fund)))
        .collect();

    // 1. rows
    let parts: Vec<Vec<Row>> = cols
        .par_iter()
        .enumerate()
        .map(|(b, c)| read_rows(b, c, codes, &insutype_fund))
        .collect::<Result<_>>()?;
    let rows: Vec<Row> = concat(parts);
    if rows.len() > u32::MAX as usize {
        return Err(other_err!("too many settlements for one recalculation ({})", rows.len()));
    }

    // 2. the originals of reversals (an original whose id is repeated is unusable: the
    //    reversal is an orphan and the person-years of every row with that id incomplete).
    //    Only these ids are indexed: `setl_id` is unique in accepted data (the ingest
    //    quarantines repeats), and a map of every id would dominate the run time.
    let wanted: HashSet<&str, IdHash> =
        rows.iter().filter(|r| r.reversal && !r.init.is_empty()).map(|r| r.init).collect();
    let mut by_id: HashMap<&str, u32, IdHash> =
        HashMap::with_capacity_and_hasher(wanted.len(), IdHash::default());
    let mut dup_ids: HashSet<&str, IdHash> = HashSet::default();
    if !wanted.is_empty() {
        for (g, r) in rows.iter().enumerate() {
            if wanted.contains(r.setl_id) && by_id.insert(r.setl_id, g as u32).is_some() {
                dup_ids.insert(r.setl_id);
            }
        }
    }
    let mut broken_py: HashSet<(&str, i32), IdHash> =
        incomplete.by_year.iter().map(|(p, y)| (p.as_str(), *y)).collect();
    let broken_psn: HashSet<&str, IdHash> = incomplete.all_years.iter().map(|p| p.as_str()).collect();
    if !dup_ids.is_empty() {
        for r in rows.iter().filter(|r| dup_ids.contains(r.setl_id)) {
            broken_py.insert((r.psn, r.year));
        }
    }

    // 3. entries (settlement, fund)
    let parts: Vec<(Vec<Entry>, BTreeMap<(Fund, i32), usize>)> = rows
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(ci, chunk)| {
            let mut es = Vec::with_capacity(chunk.len() + chunk.len() / 8);
            let mut nc = BTreeMap::new();
            for (k, r) in chunk.iter().enumerate() {
                make_entries(ci * CHUNK + k, r, &rows, &by_id, &dup_ids, policies, &mut es, &mut nc);
            }
            (es, nc)
        })
        .collect();
    let mut not_checked: BTreeMap<(Fund, i32), usize> = BTreeMap::new();
    let mut entry_parts = Vec::with_capacity(parts.len());
    for (es, nc) in parts {
        entry_parts.push(es);
        for (k, v) in nc {
            *not_checked.entry(k).or_insert(0) += v;
        }
    }
    let mut entries: Vec<Entry> = concat(entry_parts);
    entries.par_sort_unstable_by(|a, b| {
        a.psn
            .cmp(b.psn)
            .then(a.fund.cmp(&b.fund))
            .then(a.year.cmp(&b.year))
            .then(a.time.cmp(&b.time))
            .then(a.setl_id.cmp(b.setl_id))
            .then(a.row.cmp(&b.row))
    });

    // 4. person-years
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for k in 1..=entries.len() {
        if k == entries.len()
            || entries[k].psn != entries[start].psn
            || entries[k].fund != entries[start].fund
            || entries[k].year != entries[start].year
        {
            if k > start {
                runs.push((start, k));
            }
            start = k;
        }
    }
    let ctx = Ctx {
        cols: &cols,
        rows: &rows,
        policies,
        codes,
        tolerance,
        broken_py: &broken_py,
        broken_psn: &broken_psn,
    };
    let mut results = vec![Res::default(); entries.len()];
    let mut slices: Vec<&mut [Res]> = Vec::with_capacity(runs.len());
    let mut rest: &mut [Res] = &mut results;
    for &(s, e) in &runs {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(e - s);
        slices.push(head);
        rest = tail;
    }
    let outs: Vec<RunOut> = runs
        .par_iter()
        .zip(slices.into_par_iter())
        .map_init(Scratch::default, |sc, (&(s, e), res)| ctx.person_year(&entries[s..e], res, sc))
        .collect::<Result<_>>()?;
    drop(by_id);

    // 5. outputs
    let mut out = BenefitOutput::default();
    let mut stats = BenefitStats { person_years: outs.len(), ..Default::default() };
    let mut served: BTreeMap<(Fund, i32), (usize, usize)> = BTreeMap::new();
    for o in &outs {
        stats.checked_rows += o.rows;
        if o.incomplete {
            stats.incomplete_person_years += 1;
            stats.incomplete_rows += o.rows;
        }
        stats.orphan_reversals += o.orphans;
        stats.unknown_med_type += o.unknown;
        served.entry((o.fund, o.year)).or_insert((o.policy, 0)).1 += o.rows;
    }
    stats.not_checked = not_checked.values().sum();
    out.checks = entries
        .par_chunks(BATCH_ROWS)
        .zip(results.par_chunks(BATCH_ROWS))
        .map(|(es, rs)| check_batch(es, rs))
        .collect::<Result<_>>()?;
    drop(entries);
    for o in outs {
        out.findings.extend(o.findings);
        out.outreach.extend(o.outreach);
    }
    out.notes = notes(&pol, &served, &not_checked, &stats, tolerance);
    out.stats = stats;
    Ok(out)
}

fn read_rows<'a>(
    b: usize,
    c: &Cols<'a>,
    codes: &'a CodeTables,
    insutype_fund: &HashMap<&str, Fund, IdHash>,
) -> Result<Vec<Row<'a>>> {
    let n = c.setl_id.len();
    let mut rows = Vec::with_capacity(n);
    // med_type → class, memoised (a handful of codes)
    let mut classes: HashMap<&str, Option<&'a str>, IdHash> = HashMap::default();
    for i in 0..n {
        let end =
            text::day(c.enddate, i).ok_or_else(|| input_err!("setl.enddate: empty value in row {i}"))?;
        if c.setl_time.is_null(i) {
            return Err(input_err!("setl.setl_time: empty value in row {i}"));
        }
        let nz = |a: &(&Decimal128Array, u32)| !a.0.is_null(i) && a.0.value(i) != 0;
        let init = text::s(c.init_setl_id, i).trim();
        let reversal = text::s(c.refd_setl_flag, i).trim() == "1";
        rows.push(Row {
            psn: text::req(c.psn_no, i, T, "psn_no")?,
            setl_id: text::req(c.setl_id, i, T, "setl_id")?,
            time: c.setl_time.value(i),
            year: end.year(),
            b: b as u32,
            i: i as u32,
            reversal,
            init,
            own_fund: insutype_fund.get(text::s(c.insutype, i).trim()).copied(),
            class: *classes
                .entry(text::s(c.med_type, i).trim())
                .or_insert_with_key(|k| codes.class("med_type", k)),
            paid: [nz(&c.hifmi), nz(&c.hifob)],
        });
    }
    Ok(rows)
}

#[allow(clippy::too_many_arguments)]
fn make_entries<'a>(
    g: usize,
    r: &Row<'a>,
    rows: &[Row<'a>],
    by_id: &HashMap<&str, u32, IdHash>,
    dup_ids: &HashSet<&str, IdHash>,
    policies: &PolicySet,
    es: &mut Vec<Entry<'a>>,
    nc: &mut BTreeMap<(Fund, i32), usize>,
) {
    let orig: Option<u32> = if r.reversal && !r.init.is_empty() && !dup_ids.contains(r.init) {
        by_id.get(r.init).copied().filter(|&o| {
            let o_row = &rows[o as usize];
            o as usize != g && o_row.psn == r.psn && !o_row.reversal
        })
    } else {
        None
    };
    let basis = orig.map(|o| &rows[o as usize]).unwrap_or(r);
    let year = basis.year;
    for fund in Fund::ALL {
        let own = basis.own_fund == Some(fund);
        let paid = r.paid[fund.index()];
        if !own && !paid {
            continue;
        }
        let Some((policy, _)) = policies.for_fund(fund, year) else {
            *nc.entry((fund, year)).or_insert(0) += 1;
            continue;
        };
        let covered = own && basis.class.is_some_and(|c| policy.covers_class(c));
        let role = if own && basis.class.is_none() {
            ERole::Unknown
        } else if r.reversal {
            match orig {
                Some(o) if covered => ERole::Reversal(o),
                Some(_) => ERole::NotCovered,
                None if covered || paid => ERole::Orphan,
                None => continue,
            }
        } else if covered {
            ERole::Covered
        } else {
            ERole::NotCovered
        };
        if role == ERole::NotCovered && !paid {
            continue;
        }
        es.push(Entry {
            psn: r.psn,
            setl_id: r.setl_id,
            time: r.time,
            year,
            fund,
            row: g as u32,
            reversal: r.reversal,
            own,
            role,
        });
    }
}

struct Ctx<'c, 'a> {
    cols: &'c [Cols<'a>],
    rows: &'c [Row<'a>],
    policies: &'c PolicySet,
    codes: &'c CodeTables,
    tolerance: Option<Decimal>,
    broken_py: &'c HashSet<(&'a str, i32), IdHash>,
    broken_psn: &'c HashSet<&'a str, IdHash>,
}

impl<'a> Ctx<'_, 'a> {
    fn loc(&self, e: &Entry) -> (&Cols<'a>, usize) {
        let r = &self.rows[e.row as usize];
        (&self.cols[r.b as usize], r.i as usize)
    }

    fn person_year(&self, run: &[Entry<'a>], res: &mut [Res], sc: &mut Scratch) -> Result<RunOut> {
        let first = &run[0];
        let (fund, year, psn) = (first.fund, first.year, first.psn);
        let (policy, _) = self
            .policies
            .for_fund(fund, year)
            .ok_or_else(|| other_err!("no {} policy for {year}", fund.as_str()))?;
        let mut incomplete = self.broken_py.contains(&(psn, year)) || self.broken_psn.contains(psn);

        // rows for the kernel
        let index: Option<HashMap<u32, usize>> =
            (run.len() > 256).then(|| run.iter().enumerate().map(|(k, e)| (e.row, k)).collect());
        let mut orphans = 0;
        let mut unknown = 0;
        let krows = &mut sc.krows;
        krows.clear();
        for (k, e) in run.iter().enumerate() {
            let (c, i) = self.loc(e);
            let role = match e.role {
                ERole::Covered => Role::Covered,
                ERole::NotCovered => Role::NotCovered,
                ERole::Unknown => {
                    unknown += 1;
                    Role::NotCovered
                }
                ERole::Orphan => Role::Orphan,
                ERole::Reversal(o) => {
                    let pos = match &index {
                        Some(ix) => ix.get(&o).copied(),
                        None => run.iter().position(|x| x.row == o),
                    };
                    match pos {
                        Some(j) if run[j].role == ERole::Covered => Role::Reversal(j),
                        _ => Role::Orphan,
                    }
                }
            };
            if role == Role::Orphan || matches!(role, Role::Reversal(j) if j >= k) {
                orphans += 1;
            }
            let (inscp, dedc, hifp, ratio, preferential) = if role == Role::Covered {
                let pref = match &policy.formula {
                    Formula::Resident(p) => p.is_preferential(text::s(c.psn_idet_type, i)),
                    Formula::Employee(_) => false,
                };
                (
                    text::dec(&c.inscp, i, T, "inscp_scp_amt")?,
                    text::dec(&c.dedc, i, T, "act_pay_dedc")?,
                    text::dec(&c.hifp, i, T, "hifp_pay")?,
                    text::dec(&c.ratio, i, T, "pool_prop_selfpay")?,
                    pref,
                )
            } else {
                (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, false)
            };
            krows.push(KRow {
                role,
                inscp_scp_amt: inscp,
                act_pay_dedc: dedc,
                hifp_pay: hifp,
                pool_prop: ratio,
                preferential,
            });
            res[k].recorded = c.recorded(fund, i)?;
        }
        let broken = match &policy.formula {
            Formula::Resident(p) => kernel::resident_into(krows, p, &mut sc.kout, &mut sc.reversed),
            Formula::Employee(p) => kernel::employee_into(krows, p, &mut sc.kout, &mut sc.reversed),
        };
        incomplete |= broken || unknown > 0;
        let tol = self.tolerance.unwrap_or(policy.tolerance);

        let mut findings = Vec::new();
        for (k, e) in run.iter().enumerate() {
            let r = &mut res[k];
            r.expected = sc.kout[k].expected;
            r.incomplete = incomplete;
            if incomplete || e.reversal {
                continue;
            }
            if (r.recorded - r.expected).abs() > tol {
                findings.push(self.finding(e, &krows[k], &sc.kout[k], r.recorded, policy, year));
            }
        }
        let outreach = if incomplete { None } else { self.outreach(run, res, policy, tol) };
        let pi = self.policies.policies().iter().position(|q| std::ptr::eq(q, policy)).unwrap_or(0);
        Ok(RunOut {
            fund,
            year,
            policy: pi,
            rows: run.len(),
            findings,
            outreach,
            incomplete,
            orphans,
            unknown,
        })
    }

    fn finding(
        &self,
        e: &Entry,
        kr: &KRow,
        ko: &kernel::KOut,
        recorded: Decimal,
        p: &Policy,
        year: i32,
    ) -> Finding {
        let (c, i) = self.loc(e);
        let diff = recorded - ko.expected;
        let abs = diff.abs();
        let severity = if abs >= p.severity_high_at {
            Severity::High
        } else if abs >= p.severity_medium_at {
            Severity::Medium
        } else {
            Severity::Low
        };
        let fund = e.fund;
        let direction = if diff > Decimal::ZERO {
            "多付".to_string()
        } else {
            match fund {
                Fund::Hifmi => "少付，应联系参保人补付（大病 第十七条）".to_string(),
                Fund::Hifob => "少付，应补付参保人".to_string(),
            }
        };
        let head = format!(
            "{}支付与政策不符：记录 {} {} 元，按政策应付 {} 元，差额 {} 元（{direction}）。",
            fund.label(),
            fund.column(),
            yuan(recorded),
            yuan(ko.expected),
            yuan(diff)
        );
        let body = match (kr.role, &p.formula) {
            (Role::Covered, Formula::Resident(rp)) => {
                let idet = text::s(c.psn_idet_type, i).trim();
                let group = if kr.preferential {
                    format!("倾斜人群（人员身份类别 {idet}）")
                } else {
                    "普通人群".to_string()
                };
                let curve = rp.curve(kr.preferential);
                format!(
                    "{year}年度累计合规自付费用 B = {} 元（{group}，起付线 {} 元），此前累计应付 E = {} 元。",
                    yuan(ko.cumulative),
                    yuan(curve.deductible),
                    yuan(ko.prior_expected)
                )
            }
            (Role::Covered, Formula::Employee(ep)) => match ko.above {
                None => format!(
                    "{year}年度累计统筹基金支付 H = {} 元，未达统筹基金最高支付限额 {} 元，本笔不应由大额补助支付。",
                    yuan(ko.cumulative),
                    yuan(ep.pool_cap)
                ),
                Some(above) => format!(
                    "{year}年度累计统筹基金支付 H = {} 元（已达统筹基金最高支付限额 {} 元），本笔超限额政策范围费用 {} 元 × {}%，此前累计应付 E = {} 元（年度最高支付限额 {} 元）。",
                    yuan(ko.cumulative),
                    yuan(ep.pool_cap),
                    yuan(above),
                    (ep.share * Decimal::ONE_HUNDRED).normalize(),
                    yuan(ko.prior_expected),
                    yuan(ep.cap)
                ),
            },
            _ if e.own => {
                let mt = text::s(c.med_type, i).trim();
                let label = self.codes.label("med_type", mt).unwrap_or("未知医疗类别");
                format!("医疗类别 {mt}（{label}）不在{}保障范围内，应付 0.00 元。", fund.label())
            }
            _ => format!("险种类型 {} 不属于{}，应付 0.00 元。", text::s(c.insutype, i).trim(), fund.label()),
        };
        Finding {
            setl_id: e.setl_id.to_string(),
            psn_no: Some(e.psn.to_string()),
            fixmedins_code: Some(text::s(c.fixmedins_code, i).to_string()),
            rule_id: match p.formula {
                Formula::Resident(_) => RULE_RESIDENT,
                Formula::Employee(_) => RULE_EMPLOYEE,
            }
            .to_string(),
            category: "benefit_mismatch",
            severity,
            amount_at_risk: abs,
            detail: format!("{head}{body}政策 {}。", p.id),
            entity_type: "settlement",
            entity_id: e.setl_id.to_string(),
            feedetl_sns: None,
        }
    }

    fn outreach(&self, run: &[Entry], checks: &[Res], p: &Policy, tol: Decimal) -> Option<OutreachRow> {
        let expected: Decimal = checks.iter().map(|c| c.expected).sum();
        let recorded: Decimal = checks.iter().map(|c| c.recorded).sum();
        let owed = expected - recorded;
        if owed <= tol {
            return None;
        }
        let mut ids = Vec::new();
        let mut fix: Vec<&str> = Vec::new();
        let mut modes: Vec<&str> = Vec::new();
        let mut last = None;
        for (e, c) in run.iter().zip(checks) {
            if e.reversal || c.recorded >= c.expected {
                continue;
            }
            let (cols, i) = self.loc(e);
            ids.push(e.setl_id);
            let f = text::s(cols.fixmedins_code, i);
            if !fix.contains(&f) {
                fix.push(f);
            }
            let m = text::s(cols.setl_mode, i).trim();
            if !modes.contains(&m) {
                modes.push(m);
            }
            last = Some(e.time);
        }
        let latest = run.last()?;
        let (cols, i) = self.loc(latest);
        let last_time = last
            .and_then(text::secs_to_datetime)
            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        Some(OutreachRow {
            psn_no: latest.psn.to_string(),
            psn_name: crate::mask::name(text::s(cols.psn_name, i)),
            certno: crate::mask::certno(text::s(cols.certno, i)),
            insu_admdvs: text::s(cols.insu_admdvs, i).to_string(),
            fund: p.fund.as_str(),
            year: latest.year,
            amount_owed: owed,
            expected_total: expected,
            recorded_total: recorded,
            setl_ids: ids.join(";"),
            fixmedins_codes: fix.join(";"),
            setl_modes: modes.join(";"),
            last_setl_time: last_time,
        })
    }
}

/// One `benefit_check` batch from entries and their results.
fn check_batch(es: &[Entry], rs: &[Res]) -> Result<RecordBatch> {
    let n = es.len();
    let mut id = StringBuilder::with_capacity(n, n * 16);
    let mut fund = StringBuilder::with_capacity(n, n * 5);
    let mut rec = Decimal128Builder::with_capacity(n);
    let mut exp = Decimal128Builder::with_capacity(n);
    let mut diff = Decimal128Builder::with_capacity(n);
    let mut status = StringBuilder::with_capacity(n, n * 10);
    for (e, r) in es.iter().zip(rs) {
        id.append_value(e.setl_id);
        fund.append_value(e.fund.as_str());
        rec.append_value(decimal_to_i128(r.recorded, 2));
        exp.append_value(decimal_to_i128(r.expected, 2));
        diff.append_value(decimal_to_i128(r.recorded - r.expected, 2));
        status.append_value(if r.incomplete { "incomplete" } else { "checked" });
    }
    let d = |b: &mut Decimal128Builder| -> Result<ArrayRef> {
        Ok(Arc::new(
            b.finish().with_precision_and_scale(18, 2).map_err(|e| Error::arrow("benefit_check", e))?,
        ))
    };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(fund.finish()),
        d(&mut rec)?,
        d(&mut exp)?,
        d(&mut diff)?,
        Arc::new(status.finish()),
    ];
    RecordBatch::try_new(benefit_check_schema(), cols).map_err(|e| Error::arrow("benefit_check", e))
}

/// Concatenates vectors into one allocated once.
fn concat<T>(parts: Vec<Vec<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for p in parts {
        out.extend(p);
    }
    out
}

fn notes(
    pol: &[&Policy],
    served: &BTreeMap<(Fund, i32), (usize, usize)>,
    not_checked: &BTreeMap<(Fund, i32), usize>,
    stats: &BenefitStats,
    tolerance: Option<Decimal>,
) -> Vec<String> {
    let mut notes = Vec::new();
    for (&(fund, year), &(pi, n)) in served {
        let p = pol[pi];
        let how = match p.in_force(year) {
            true => Served::InForce,
            false => Served::Extended,
        };
        notes.push(match how {
            Served::InForce => format!(
                "{year}年{}：按政策 {}（{} 年有效）核算 {n} 笔结算。",
                fund.label(),
                p.id,
                p.years_label()
            ),
            Served::Extended => format!(
                "{year}年{}：无该年度政策文件，沿用最近的较早政策 {}（{} 年）核算 {n} 笔结算。",
                fund.label(),
                p.id,
                p.years_label()
            ),
        });
    }
    for (&(fund, year), &n) in not_checked {
        notes.push(format!("{year}年{}：早于首个政策文件，未核算（{n} 笔结算）。", fund.label()));
    }
    match tolerance {
        Some(t) => notes.push(format!("差额容差 {} 元（运行参数）。", t.normalize())),
        None => {
            for p in pol {
                notes.push(format!("差额容差 {} 元（政策 {}）。", p.tolerance.normalize(), p.id));
            }
        }
    }
    if stats.incomplete_person_years > 0 {
        notes.push(format!(
            "{} 个人员年度数据不完整（有隔离记录、冲销的原结算缺失或不可用、或结算ID重复），其 {} 笔核算记录标记为 incomplete，不产生不符发现。",
            stats.incomplete_person_years, stats.incomplete_rows
        ));
    }
    if stats.unknown_med_type > 0 {
        notes.push(format!(
            "{} 笔结算的医疗类别代码不在代码表中，无法判断是否属于保障范围，所在人员年度标记为 incomplete（可在 datasets/codes/codes.csv 补充代码）。",
            stats.unknown_med_type
        ));
    }
    if stats.orphan_reversals > 0 {
        notes.push(format!("{} 笔冲销结算的原结算缺失或不可用，应付按 0 计。", stats.orphan_reversals));
    }
    notes
}
