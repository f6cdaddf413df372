//! The fund arithmetic of POLICY.md as the platform applies it, in exact integer cents: the
//! generator records `hifmi_pay` / `hifob_pay` with it (unless it injects an error).
//! Written independently of `crate::benefit` on purpose: the scorer compares two
//! implementations.

use crate::synth::assets::{Curve, Policy};

/// Rounds `n / m` (`m > 0`) half away from zero.
pub fn div_round(n: i128, m: i128) -> i128 {
    debug_assert!(m > 0);
    if n >= 0 { (2 * n + m) / (2 * m) } else { -((-2 * n + m) / (2 * m)) }
}

/// `round(F(x))` in cents for a cumulative base `x` in cents.
pub fn curve(c: &Curve, x: i64) -> i64 {
    if x <= c.deductible {
        return 0;
    }
    let low = i128::from(x.min(c.bound) - c.deductible).max(0);
    let high = i128::from((x - c.bound).max(0));
    let num = i128::from(c.share_low4) * low + i128::from(c.share_high4) * high;
    let v = div_round(num, 10_000) as i64;
    match c.cap {
        Some(cap) => v.min(cap),
        None => v,
    }
}

/// The employee subsidy of one row before the yearly cap: `round(share × above)` with
/// `above = max(0, x − hifp / r)` (`x = inscp − dedc`; `r = 0` → `above = x`), in cents.
pub fn employee_share(p: &Policy, x: i64, hifp: i64, r4: i64) -> i64 {
    let share = i128::from(p.share4);
    if r4 == 0 {
        return if x <= 0 { 0 } else { div_round(share * i128::from(x), 10_000) as i64 };
    }
    let n = share * (i128::from(x) * i128::from(r4) - i128::from(hifp) * 10_000);
    if n <= 0 {
        return 0;
    }
    div_round(n, 10_000 * i128::from(r4)) as i64
}

/// One settlement as the person-year computation sees it.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub inscp: i64,
    pub dedc: i64,
    pub hifp: i64,
    pub r4: i64,
    pub preferential: bool,
}

/// The running sums of one person-year (POLICY.md: `B`, `H`, `E`).
#[derive(Debug, Clone, Copy, Default)]
pub struct YearState {
    pub b: i64,
    pub h: i64,
    pub e: i64,
}

impl YearState {
    /// Resident: the expected payment of an ordinary covered row, updating the sums.
    pub fn resident(&mut self, p: &Policy, row: &Row) -> i64 {
        self.b += resident_base(row);
        let c = if row.preferential { &p.pref } else { &p.ordinary };
        let exp = (curve(c, self.b) - self.e).max(0);
        self.e += exp;
        exp
    }

    /// Employee: the expected payment of an ordinary covered row, updating the sums.
    pub fn employee(&mut self, p: &Policy, row: &Row) -> i64 {
        self.h += row.hifp;
        if self.h < p.pool_cap {
            return 0;
        }
        let raw = employee_share(p, row.inscp - row.dedc, row.hifp, row.r4);
        let exp = raw.min(p.employee_cap - self.e).max(0);
        self.e += exp;
        exp
    }

    /// A reversal of a row whose base and expected payment were `orig` and `orig_exp`.
    pub fn reverse(&mut self, employee: bool, orig: &Row, orig_exp: i64) -> i64 {
        if employee {
            self.h -= orig.hifp;
        } else {
            self.b -= resident_base(orig);
        }
        self.e -= orig_exp;
        -orig_exp
    }
}

/// `max(0, inscp − dedc − hifp)`.
pub fn resident_base(row: &Row) -> i64 {
    (row.inscp - row.dedc - row.hifp).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::assets::Assets;

    fn res(base_yuan: i64, pref: bool) -> Row {
        Row { inscp: base_yuan * 100, dedc: 0, hifp: 0, r4: 0, preferential: pref }
    }

    #[test]
    fn resident_worked_examples() {
        let p = &Assets::get().unwrap().policy;
        // R1
        let mut y = YearState::default();
        let got: Vec<i64> = [11_000, 40_000, 90_000].iter().map(|&b| y.resident(p, &res(b, false))).collect();
        assert_eq!(got, vec![0, 2_400_000, 5_810_000]);
        // R2: the 400,000 cap
        let mut y = YearState::default();
        assert_eq!(y.resident(p, &res(599_000, false)), 40_000_000);
        assert_eq!(y.resident(p, &res(30_000, false)), 0);
        // R3: preferential
        let mut y = YearState::default();
        assert_eq!(y.resident(p, &res(7_500, true)), 130_000);
        assert_eq!(y.resident(p, &res(800_000, true)), 59_075_000);
        // R4: reversal netted where it happens
        let mut y = YearState::default();
        let a = res(20_000, false);
        assert_eq!(y.resident(p, &a), 540_000);
        assert_eq!(y.resident(p, &res(50_000, false)), 3_000_000);
        assert_eq!(y.reverse(false, &a, 540_000), -540_000);
        assert_eq!(y.resident(p, &a), 540_000);
        // exactly at the tier bound, and rounding of F only at cumulative points
        let mut y = YearState::default();
        assert_eq!(y.resident(p, &res(100_000, false)), 5_340_000);
        let mut y = YearState::default();
        let odd = Row { inscp: 1_100_001, dedc: 0, hifp: 0, r4: 0, preferential: false };
        assert_eq!(y.resident(p, &odd), 1); // 0.6 × 0.01 = 0.006 → 0.01
    }

    #[test]
    fn employee_worked_example() {
        let p = &Assets::get().unwrap().policy;
        let mut y = YearState::default();
        let row = |inscp: i64, hifp: i64, r4: i64| Row { inscp, dedc: 0, hifp, r4, preferential: false };
        assert_eq!(y.employee(p, &row(9_411_765, 8_000_000, 8500)), 0);
        assert_eq!(y.employee(p, &row(3_000_000, 1_000_000, 8500)), 1_732_353);
        assert_eq!(y.employee(p, &row(30_000_000, 0, 0)), 26_267_647);
        assert_eq!(y.employee(p, &row(2_000_000, 0, 0)), 0);
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(div_round(5, 10), 1);
        assert_eq!(div_round(4, 10), 0);
        assert_eq!(div_round(-5, 10), -1);
        assert_eq!(div_round(15, 10), 2);
    }
}
