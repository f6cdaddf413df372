//! The arithmetic of one person-year, free of Arrow: rows in settlement order in, expected
//! payments out. `recalc` builds the rows from the settlement table; tests and benches call
//! these functions directly.

use rust_decimal::Decimal;

use super::policy::{EmployeeParams, ResidentParams, round_cent};

/// What a row of a person-year is for the fund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Covered care of the fund's own insutype: on the curve.
    Covered,
    /// Not covered (class outside the policy, or another fund's insutype): expected 0, adds
    /// nothing to the sums.
    NotCovered,
    /// Reversal of the row at this position of the person-year (which must come earlier).
    Reversal(usize),
    /// A reversal whose original is missing or unusable: expected 0, person-year incomplete.
    Orphan,
}

/// One row of a person-year, in settlement order.
#[derive(Debug, Clone, PartialEq)]
pub struct KRow {
    pub role: Role,
    pub inscp_scp_amt: Decimal,
    pub act_pay_dedc: Decimal,
    pub hifp_pay: Decimal,
    /// `pool_prop_selfpay` (employee formula only).
    pub pool_prop: Decimal,
    /// On the preferential curve (resident formula only).
    pub preferential: bool,
}

impl KRow {
    /// A covered row (handy for tests).
    pub fn covered(inscp_scp_amt: Decimal, act_pay_dedc: Decimal, hifp_pay: Decimal) -> Self {
        KRow {
            role: Role::Covered,
            inscp_scp_amt,
            act_pay_dedc,
            hifp_pay,
            pool_prop: Decimal::ZERO,
            preferential: false,
        }
    }
}

/// The result for one row.
#[derive(Debug, Clone, PartialEq)]
pub struct KOut {
    /// Expected payment of the row.
    pub expected: Decimal,
    /// What the row adds to the cumulative sum (resident base, employee `hifp_pay`;
    /// negative for a reversal).
    pub contribution: Decimal,
    /// `B(k)` or `H(k)` after the row.
    pub cumulative: Decimal,
    /// `E(k−1)`.
    pub prior_expected: Decimal,
    /// Employee rows at or above the pool cap: the policy-scope amount above it
    /// (`max(0, (inscp − dedc) − hifp / r)`, rounded to the cent for display).
    pub above: Option<Decimal>,
}

/// The result for a person-year.
#[derive(Debug, Clone, PartialEq)]
pub struct KResult {
    pub rows: Vec<KOut>,
    /// A reversal without a usable original (missing, later in the order, reversed twice,
    /// itself a reversal), or a pool share outside `[0, 1]` where the formula needs it: the
    /// person-year is incomplete.
    pub broken: bool,
}

/// `−x`, without a negative zero.
fn neg(x: Decimal) -> Decimal {
    if x.is_zero() { Decimal::ZERO } else { -x }
}

/// Checks a reversal's target: earlier, an ordinary row, not reversed yet.
fn reversal_target(rows: &[KRow], k: usize, j: usize, reversed: &mut [bool]) -> Option<usize> {
    if j >= k || reversed[j] || matches!(rows[j].role, Role::Reversal(_) | Role::Orphan) {
        return None;
    }
    reversed[j] = true;
    Some(j)
}

/// Resident critical-illness insurance: `base = max(0, inscp − dedc − hifp)`,
/// `expected = max(0, round(F_group(B(k))) − E(k−1))`; a reversal takes its original's base
/// out and expects minus its original's expected payment.
pub fn resident(rows: &[KRow], p: &ResidentParams) -> KResult {
    let mut out = Vec::with_capacity(rows.len());
    let broken = resident_into(rows, p, &mut out, &mut Vec::new());
    KResult { rows: out, broken }
}

/// [`resident`] writing into reusable buffers; returns `broken`.
pub fn resident_into(
    rows: &[KRow],
    p: &ResidentParams,
    out: &mut Vec<KOut>,
    reversed: &mut Vec<bool>,
) -> bool {
    out.clear();
    reversed.clear();
    reversed.resize(rows.len(), false);
    let mut broken = false;
    let (mut b, mut e) = (Decimal::ZERO, Decimal::ZERO);
    for (k, r) in rows.iter().enumerate() {
        let (contribution, expected) = match r.role {
            Role::Covered => {
                let base = (r.inscp_scp_amt - r.act_pay_dedc - r.hifp_pay).max(Decimal::ZERO);
                let f = p.curve(r.preferential).rounded(b + base);
                (base, (f - e).max(Decimal::ZERO))
            }
            Role::NotCovered => (Decimal::ZERO, Decimal::ZERO),
            Role::Orphan => {
                broken = true;
                (Decimal::ZERO, Decimal::ZERO)
            }
            Role::Reversal(j) => match reversal_target(rows, k, j, reversed) {
                Some(j) => (neg(out[j].contribution), neg(out[j].expected)),
                None => {
                    broken = true;
                    (Decimal::ZERO, Decimal::ZERO)
                }
            },
        };
        b += contribution;
        out.push(KOut { expected, contribution, cumulative: b, prior_expected: e, above: None });
        e += expected;
    }
    broken
}

/// Employee large-expense subsidy: `H(k)` cumulative `hifp_pay` of covered rows; from the row
/// where `H(k) ≥ pool_cap` on, `above = max(0, (inscp − dedc) − hifp / r)` (`r = 0`: the
/// whole `inscp − dedc`), `expected = min(round(share × above), cap − E(k−1))`, never below
/// 0. `share × above` is rounded exactly (no intermediate rounding of `hifp / r`).
pub fn employee(rows: &[KRow], p: &EmployeeParams) -> KResult {
    let mut out = Vec::with_capacity(rows.len());
    let broken = employee_into(rows, p, &mut out, &mut Vec::new());
    KResult { rows: out, broken }
}

/// [`employee`] writing into reusable buffers; returns `broken`.
pub fn employee_into(
    rows: &[KRow],
    p: &EmployeeParams,
    out: &mut Vec<KOut>,
    reversed: &mut Vec<bool>,
) -> bool {
    out.clear();
    reversed.clear();
    reversed.resize(rows.len(), false);
    let mut broken = false;
    let (mut h, mut e) = (Decimal::ZERO, Decimal::ZERO);
    for (k, r) in rows.iter().enumerate() {
        let mut above = None;
        let (contribution, expected) = match r.role {
            Role::Covered => {
                let hk = h + r.hifp_pay;
                let expected = if hk < p.pool_cap {
                    Decimal::ZERO
                } else {
                    let a = r.inscp_scp_amt - r.act_pay_dedc;
                    match above_share(a, r.hifp_pay, r.pool_prop, p.share) {
                        Some((paid, shown)) => {
                            above = Some(shown);
                            paid.min(p.cap - e).max(Decimal::ZERO)
                        }
                        None => {
                            broken = true;
                            Decimal::ZERO
                        }
                    }
                };
                (r.hifp_pay, expected)
            }
            Role::NotCovered => (Decimal::ZERO, Decimal::ZERO),
            Role::Orphan => {
                broken = true;
                (Decimal::ZERO, Decimal::ZERO)
            }
            Role::Reversal(j) => match reversal_target(rows, k, j, reversed) {
                Some(j) => (neg(out[j].contribution), neg(out[j].expected)),
                None => {
                    broken = true;
                    (Decimal::ZERO, Decimal::ZERO)
                }
            },
        };
        h += contribution;
        out.push(KOut { expected, contribution, cumulative: h, prior_expected: e, above });
        e += expected;
    }
    broken
}

/// `(round(share × max(0, a − hifp / r)), max(0, a − hifp / r) rounded for display)`, exact:
/// `share × (a·r − hifp) / r` is rounded half away from zero to the cent by integer division.
/// `None` when `r` lies outside `[0, 1]` or the numbers overflow.
pub fn above_share(a: Decimal, hifp: Decimal, r: Decimal, share: Decimal) -> Option<(Decimal, Decimal)> {
    if r < Decimal::ZERO || r > Decimal::ONE {
        return None;
    }
    if r.is_zero() {
        let above = a.max(Decimal::ZERO);
        return Some((round_cent(share.checked_mul(above)?), round_cent(above)));
    }
    let num = a.checked_mul(r)?.checked_sub(hifp)?; // (a − hifp/r)·r
    if num <= Decimal::ZERO {
        return Some((Decimal::ZERO, Decimal::ZERO));
    }
    let paid = div_round_cent(share.checked_mul(num)?, r)?;
    let shown = div_round_cent(num, r)?;
    Some((paid, shown))
}

/// `p / q` rounded half away from zero to the cent, exactly (`q > 0`).
pub fn div_round_cent(p: Decimal, q: Decimal) -> Option<Decimal> {
    if q <= Decimal::ZERO {
        return None;
    }
    // p/q·100 = mp·10^(sq − sp + 2) / mq
    let (mp, sp) = (p.mantissa(), p.scale() as i32);
    let (mq, sq) = (q.mantissa(), q.scale() as i32);
    let e = sq - sp + 2;
    let (num, den) = if e >= 0 {
        (mp.checked_mul(10i128.checked_pow(e as u32)?)?, mq)
    } else {
        (mp, mq.checked_mul(10i128.checked_pow((-e) as u32)?)?)
    };
    let (quot, rem) = (num / den, num % den);
    let rounded = if rem.checked_mul(2)?.abs() >= den { quot + num.signum() } else { quot };
    Decimal::try_from_i128_with_scale(rounded, 2).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::benefit::policy::ResidentCurve;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn params() -> ResidentParams {
        ResidentParams {
            ordinary: ResidentCurve {
                deductible: d("11000"),
                tier_bound: d("100000"),
                share_up_to_bound: d("0.60"),
                share_above_bound: d("0.70"),
                cap: Some(d("400000")),
            },
            preferential: ResidentCurve {
                deductible: d("5500"),
                tier_bound: d("100000"),
                share_up_to_bound: d("0.65"),
                share_above_bound: d("0.75"),
                cap: None,
            },
            preferential_idet_types: vec!["1101".into(), "1102".into(), "1103".into()],
        }
    }

    fn base(b: &str) -> KRow {
        KRow::covered(d(b), Decimal::ZERO, Decimal::ZERO)
    }

    fn expected(r: &KResult) -> Vec<Decimal> {
        r.rows.iter().map(|o| o.expected).collect()
    }

    #[test]
    fn r1_deductible_then_tier() {
        let r = resident(&[base("11000"), base("40000"), base("90000")], &params());
        assert_eq!(expected(&r), vec![d("0"), d("24000"), d("58100")]);
        assert_eq!(r.rows[2].cumulative, d("141000"));
        assert!(!r.broken);
    }

    #[test]
    fn base_subtracts_deductible_and_pool() {
        // inscp 60,000 − dedc 1,000 − hifp 8,000 = 51,000 → F = 0.6 × 40,000
        let r = resident(&[KRow::covered(d("60000"), d("1000"), d("8000"))], &params());
        assert_eq!(expected(&r), vec![d("24000")]);
        // a negative base counts as 0
        let r = resident(&[KRow::covered(d("100"), d("0"), d("500")), base("12000")], &params());
        assert_eq!(r.rows[0].contribution, Decimal::ZERO);
        assert_eq!(expected(&r), vec![d("0"), d("600")]);
    }

    #[test]
    fn r4_reversal_with_settlement_between() {
        let mut rows = vec![base("20000"), base("50000"), base("0"), base("20000")];
        rows[2].role = Role::Reversal(0);
        let r = resident(&rows, &params());
        assert_eq!(expected(&r), vec![d("5400"), d("30000"), d("-5400"), d("5400")]);
        assert_eq!(r.rows[2].cumulative, d("50000"));
        assert_eq!(r.rows[3].cumulative, d("70000"));
        assert!(!r.broken);
    }

    #[test]
    fn broken_reversals() {
        // reversal before its original, and a second reversal of one original
        let mut rows = vec![base("20000"), base("20000"), base("0"), base("0")];
        rows[0].role = Role::Reversal(1);
        let r = resident(&rows, &params());
        assert!(r.broken);
        assert_eq!(r.rows[0].expected, Decimal::ZERO);
        rows[0].role = Role::Covered;
        rows[2].role = Role::Reversal(1);
        rows[3].role = Role::Reversal(1);
        let r = resident(&rows, &params());
        assert!(r.broken);
        assert_eq!(r.rows[3].expected, Decimal::ZERO);
    }

    #[test]
    fn e1_employee() {
        let p = EmployeeParams { pool_cap: d("90000"), share: d("0.95"), cap: d("280000") };
        let row = |a: &str, h: &str, r: &str| KRow {
            role: Role::Covered,
            inscp_scp_amt: d(a),
            act_pay_dedc: Decimal::ZERO,
            hifp_pay: d(h),
            pool_prop: d(r),
            preferential: false,
        };
        let rows = [
            row("94117.65", "80000", "0.85"),
            row("30000", "10000", "0.85"),
            row("300000", "0", "0"),
            row("20000", "0", "0"),
        ];
        let r = employee(&rows, &p);
        assert_eq!(expected(&r), vec![d("0"), d("17323.53"), d("262676.47"), d("0")]);
        assert_eq!(r.rows[1].above, Some(d("18235.29")));
        assert_eq!(r.rows[1].cumulative, d("90000"));
    }

    #[test]
    fn exact_rounding_of_the_employee_share() {
        // r = 0.95: 0.95 × (0.10 − 0/0.95) = 0.095 exactly → 0.10 (a decimal quotient
        // rounded first would give 0.0949999… → 0.09)
        assert_eq!(above_share(d("0.10"), d("0"), d("0.95"), d("0.95")).unwrap().0, d("0.10"));
        // 0.95 × (100 − 0.95/0.95) = 94.05
        assert_eq!(above_share(d("100"), d("0.95"), d("0.95"), d("0.95")).unwrap().0, d("94.05"));
        assert_eq!(above_share(d("100"), d("95"), d("0.95"), d("0.95")).unwrap().0, d("0"));
        assert!(above_share(d("100"), d("1"), d("1.5"), d("0.95")).is_none());
        assert_eq!(div_round_cent(d("1"), d("3")), Some(d("0.33")));
        assert_eq!(div_round_cent(d("2"), d("3")), Some(d("0.67")));
        assert_eq!(div_round_cent(d("-0.005"), d("1")), Some(d("-0.01")));
        assert_eq!(div_round_cent(d("0.125"), d("10")), Some(d("0.01")));
    }
}
