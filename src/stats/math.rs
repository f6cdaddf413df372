//! The test statistics of the statistical checks, as plain functions over `f64` (statistics,
//! never money): median and MAD, the modified z-score, Benjamini–Hochberg q-values, the
//! Poisson and negative-binomial upper tails with a moment estimator of over-dispersion, the
//! random-effects (DerSimonian–Laird) z-test, and Pearson's chi-square with a
//! Dirichlet-multinomial over-dispersion allowance.

use statrs::distribution::{ChiSquared, ContinuousCDF, DiscreteCDF, NegativeBinomial, Normal, Poisson};

/// Iglewicz–Hoaglin constant: the 0.75 quantile of the standard normal, so that
/// `0.6745 × (x − median) / MAD` is on the scale of a z-score for normal data.
pub const MAD_SCALE: f64 = 0.6745;

/// The median of a sample (`None` when empty or when it holds a NaN).
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() || xs.iter().any(|x| x.is_nan()) {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// The median absolute deviation from the median.
pub fn mad(xs: &[f64]) -> Option<f64> {
    let m = median(xs)?;
    let dev: Vec<f64> = xs.iter().map(|x| (x - m).abs()).collect();
    median(&dev)
}

/// The modified z-score `0.6745 × (x − median) / MAD` (`None` when the MAD is 0).
pub fn modified_z(x: f64, median: f64, mad: f64) -> Option<f64> {
    (mad > 0.0 && mad.is_finite()).then(|| MAD_SCALE * (x - median) / mad)
}

/// Upper tail of the standard normal, `P(Z ≥ z)`.
pub fn normal_sf(z: f64) -> f64 {
    // `Normal::new(0, 1)` cannot fail; keep the function total anyway.
    Normal::new(0.0, 1.0).map(|n| n.sf(z)).unwrap_or(f64::NAN)
}

/// `P(X ≥ k)` for `X ~ Poisson(lambda)` (1 for `k = 0`; `None` for a rate that is not > 0).
pub fn poisson_tail(k: u64, lambda: f64) -> Option<f64> {
    let d = Poisson::new(lambda).ok()?;
    Some(if k == 0 { 1.0 } else { d.sf(k - 1) })
}

/// Benjamini–Hochberg q-values of `p` (in input order), for a family of `m ≥ p.len()` tests
/// of which only these p-values are known. When `m > p.len()` the unknown p-values are
/// taken to be the largest ones, so the q-values are upper bounds of the exact ones
/// (conservative): `q(i) = min over j ≥ i of p(j) × m / j` over the known ranks only.
pub fn bh_qvalues(p: &[f64], m: usize) -> Vec<f64> {
    let m = m.max(p.len()) as f64;
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]).then(a.cmp(&b)));
    let mut q = vec![1.0; p.len()];
    let mut running = 1.0f64;
    for (rank0, &i) in idx.iter().enumerate().rev() {
        let v = (p[i] * m / (rank0 + 1) as f64).min(1.0);
        running = running.min(v);
        q[i] = running;
    }
    q
}

/// Random-effects meta-analysis of estimates `y` with within-study variances `v`:
/// the DerSimonian–Laird between-study variance `tau²` and the pooled mean `mu`.
/// Returns `None` with fewer than two usable estimates.
pub fn dersimonian_laird(y: &[f64], v: &[f64]) -> Option<(f64, f64)> {
    let pairs: Vec<(f64, f64)> = y
        .iter()
        .zip(v)
        .filter(|(y, v)| y.is_finite() && v.is_finite() && **v > 0.0)
        .map(|(y, v)| (*y, *v))
        .collect();
    let k = pairs.len();
    if k < 2 {
        return None;
    }
    let sw: f64 = pairs.iter().map(|(_, v)| 1.0 / v).sum();
    let sw2: f64 = pairs.iter().map(|(_, v)| 1.0 / (v * v)).sum();
    let ybar: f64 = pairs.iter().map(|(y, v)| y / v).sum::<f64>() / sw;
    let q: f64 = pairs.iter().map(|(y, v)| (y - ybar).powi(2) / v).sum();
    let c = sw - sw2 / sw;
    let tau2 = if c > 0.0 { ((q - (k as f64 - 1.0)) / c).max(0.0) } else { 0.0 };
    let wr: f64 = pairs.iter().map(|(_, v)| 1.0 / (v + tau2)).sum();
    let mu = pairs.iter().map(|(y, v)| y / (v + tau2)).sum::<f64>() / wr;
    Some((mu, tau2))
}

/// For each estimate, the z-score against the random-effects distribution of the *other*
/// estimates: `(y_i − mu_(−i)) / sqrt(v_i + tau²_(−i))`, with `mu` and `tau²` from
/// [`dersimonian_laird`] leaving estimate `i` out (so that one extreme unit does not widen
/// the yardstick it is measured with). Returns `(z, mu, tau²)` per estimate, `None` where
/// fewer than two others remain or the estimate is unusable.
pub fn leave_one_out_re_z(y: &[f64], v: &[f64]) -> Vec<Option<(f64, f64, f64)>> {
    (0..y.len())
        .map(|i| {
            if !(y[i].is_finite() && v[i].is_finite() && v[i] > 0.0) {
                return None;
            }
            let yo: Vec<f64> = y.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, x)| *x).collect();
            let vo: Vec<f64> = v.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, x)| *x).collect();
            let (mu, tau2) = dersimonian_laird(&yo, &vo)?;
            Some(((y[i] - mu) / (v[i] + tau2).sqrt(), mu, tau2))
        })
        .collect()
}

/// `P(X ≥ k)` for a negative binomial `X` with mean `mean` and dispersion `phi`
/// (`Var X = mean + phi × mean²`; the Poisson when `phi = 0`). `None` for a mean that is not
/// > 0 or a negative dispersion.
pub fn nb_tail(k: u64, mean: f64, phi: f64) -> Option<f64> {
    if !(mean > 0.0 && mean.is_finite() && phi >= 0.0 && phi.is_finite()) {
        return None;
    }
    if k == 0 {
        return Some(1.0);
    }
    if phi < 1e-12 {
        return poisson_tail(k, mean);
    }
    // statrs: r successes, success probability p, mean r (1 − p) / p.
    let r = 1.0 / phi;
    let d = NegativeBinomial::new(r, r / (r + mean)).ok()?;
    Some(d.sf(k - 1))
}

/// Moment estimator of the over-dispersion of counts `o` with expected values `e` under
/// `Var O = E + phi × E²`: `phi = max(0, Σ[(O − E)² − O] / Σ E²)` (0 when nothing is
/// expected). Each unit's own term can be left out with [`nb_dispersion_loo`].
pub fn nb_dispersion(o: &[f64], e: &[f64]) -> f64 {
    let (a, b) = dispersion_sums(o, e);
    if b > 0.0 { (a / b).max(0.0) } else { 0.0 }
}

fn dispersion_sums(o: &[f64], e: &[f64]) -> (f64, f64) {
    o.iter()
        .zip(e)
        .filter(|(o, e)| o.is_finite() && e.is_finite())
        .fold((0.0, 0.0), |(a, b), (o, e)| (a + (o - e).powi(2) - o, b + e * e))
}

/// [`nb_dispersion`] for every unit, computed from the *other* units, so that an extreme
/// unit does not widen the yardstick it is measured with.
pub fn nb_dispersion_loo(o: &[f64], e: &[f64]) -> Vec<f64> {
    let (a, b) = dispersion_sums(o, e);
    o.iter()
        .zip(e)
        .map(|(oi, ei)| {
            let (ai, bi) =
                if oi.is_finite() && ei.is_finite() { ((oi - ei).powi(2) - oi, ei * ei) } else { (0.0, 0.0) };
            let (a, b) = (a - ai, b - bi);
            if b > 1e-12 { (a / b).max(0.0) } else { 0.0 }
        })
        .collect()
}

/// `P(X ≥ x)` for `X ~ χ²(df)`.
pub fn chi2_sf(x: f64, df: usize) -> Option<f64> {
    let d = ChiSquared::new(df as f64).ok()?;
    Some(if x <= 0.0 { 1.0 } else { d.sf(x) })
}

/// Pearson's chi-square of observed counts against expected counts (cells expecting nothing
/// are left out): `(X², degrees of freedom = cells − 1)`.
pub fn pearson_chi2(obs: &[f64], exp: &[f64]) -> (f64, usize) {
    let mut x2 = 0.0;
    let mut cells = 0usize;
    for (o, e) in obs.iter().zip(exp) {
        if *e > 0.0 {
            x2 += (o - e).powi(2) / e;
            cells += 1;
        }
    }
    (x2, cells.saturating_sub(1))
}

/// Total variation distance between observed and expected counts, as shares:
/// `½ Σ |o/Σo − e/Σe|` (0 to 1).
pub fn total_variation(obs: &[f64], exp: &[f64]) -> f64 {
    let (so, se): (f64, f64) = (obs.iter().sum(), exp.iter().sum());
    if so <= 0.0 || se <= 0.0 {
        return 0.0;
    }
    0.5 * obs.iter().zip(exp).map(|(o, e)| (o / so - e / se).abs()).sum::<f64>()
}

/// Dirichlet-multinomial over-dispersion by moments: with `E[X²] = df × (1 + (n − 1) rho)`,
/// `rho = max(0, Σ(X²/df − 1) / Σ(n − 1))` over the units, each unit's own term left out
/// (units are `(X², df, n)`; those with `df = 0` or `n < 2` do not count).
pub fn dm_rho_loo(units: &[(f64, usize, f64)]) -> Vec<f64> {
    let term = |(x2, df, n): &(f64, usize, f64)| -> (f64, f64) {
        if *df == 0 || *n < 2.0 || !x2.is_finite() { (0.0, 0.0) } else { (x2 / *df as f64 - 1.0, n - 1.0) }
    };
    let (a, b) = units.iter().map(term).fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    units
        .iter()
        .map(|u| {
            let (x, y) = term(u);
            let (a, b) = (a - x, b - y);
            if b > 0.0 { (a / b).max(0.0) } else { 0.0 }
        })
        .collect()
}

/// For each positive value, the robust z-score of its logarithm against the *other* positive
/// values: `(ln x − median) / (1.4826 × MAD)` of their logarithms (1.4826 × MAD estimates the
/// standard deviation of normal data). Returns `(z, median, scale)`; `None` for a value that
/// is not positive or when fewer than three others remain or their MAD is 0.
pub fn robust_log_z_loo(xs: &[f64]) -> Vec<Option<(f64, f64, f64)>> {
    let logs: Vec<Option<f64>> = xs.iter().map(|x| (*x > 0.0 && x.is_finite()).then(|| x.ln())).collect();
    (0..xs.len())
        .map(|i| {
            let li = logs[i]?;
            let others: Vec<f64> =
                logs.iter().enumerate().filter(|(j, _)| *j != i).filter_map(|(_, l)| *l).collect();
            if others.len() < 3 {
                return None;
            }
            let m = median(&others)?;
            let scale = 1.4826 * mad(&others)?;
            (scale > 0.0).then(|| ((li - m) / scale, m, scale))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    #[test]
    fn median_and_mad_by_hand() {
        // Sorted: 1 2 3 4 100 → median 3; |dev| = 2 1 0 1 97 → sorted 0 1 1 2 97 → MAD 1.
        let xs = [3.0, 1.0, 100.0, 2.0, 4.0];
        assert_eq!(median(&xs), Some(3.0));
        assert_eq!(mad(&xs), Some(1.0));
        assert_eq!(median(&[1.0, 2.0, 3.0, 4.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        // Modified z of 100: 0.6745 × 97 / 1 = 65.4265.
        assert!(close(modified_z(100.0, 3.0, 1.0).unwrap(), 65.4265, 1e-12));
        assert_eq!(modified_z(5.0, 3.0, 0.0), None);
    }

    #[test]
    fn bh_qvalues_match_a_hand_computation() {
        // p = 0.01 0.04 0.03 0.20, m = 4. Sorted 0.01 0.03 0.04 0.20:
        // raw p·m/rank = 0.04, 0.06, 0.0533.., 0.20; running min from the top:
        // 0.20, 0.05333, 0.05333, 0.04.
        let q = bh_qvalues(&[0.01, 0.04, 0.03, 0.20], 4);
        let want = [0.04, 0.04 * 4.0 / 3.0, 0.04 * 4.0 / 3.0, 0.20];
        for (a, b) in q.iter().zip(want) {
            assert!(close(*a, b, 1e-12), "{q:?}");
        }
        // Same as R: p.adjust(c(0.01,0.04,0.03,0.20), "BH") = 0.04 0.0533 0.0533 0.2.
        // With m = 100 known tests of which only the first two are given: upper bounds.
        let q = bh_qvalues(&[0.001, 0.0002], 100);
        assert!(close(q[1], 0.02, 1e-12) && close(q[0], 0.05, 1e-12), "{q:?}");
        assert_eq!(bh_qvalues(&[0.9], 1), vec![0.9]);
    }

    #[test]
    fn poisson_tail_against_the_closed_form() {
        // P(X ≥ 3 | λ = 0.5) = 1 − e^−0.5 (1 + 0.5 + 0.125) = 0.014387677966970713.
        let hand = 1.0 - (-0.5f64).exp() * (1.0 + 0.5 + 0.125);
        assert!(close(poisson_tail(3, 0.5).unwrap(), hand, 1e-10));
        assert!(close(hand, 0.014_387_677_966_970_7, 1e-12));
        assert_eq!(poisson_tail(0, 2.0), Some(1.0));
        assert_eq!(poisson_tail(1, 0.0), None);
        // Extreme tail stays positive and tiny: P(X ≥ 12 | λ = 0.2) ≈ e^−0.2 0.2^12 / 12!.
        let approx = (-0.2f64).exp() * 0.2f64.powi(12) / 479_001_600.0;
        assert!(close(poisson_tail(12, 0.2).unwrap(), approx, 0.02));
    }

    #[test]
    fn normal_tail_by_table() {
        assert!(close(normal_sf(1.959_963_984_540_054), 0.025, 1e-9));
        assert!(close(normal_sf(0.0), 0.5, 1e-12));
    }

    #[test]
    fn dersimonian_laird_by_hand() {
        // y = 0, 1, 2 with v = 0.1 each: w = 10, ybar = 1, Q = 10 (1 + 0 + 1) = 20,
        // c = 30 − 300/30 = 20, tau² = (20 − 2) / 20 = 0.9, mu = 1 (symmetric).
        let (mu, tau2) = dersimonian_laird(&[0.0, 1.0, 2.0], &[0.1, 0.1, 0.1]).unwrap();
        assert!(close(mu, 1.0, 1e-12) && close(tau2, 0.9, 1e-12));
        // Homogeneous estimates: Q < k − 1 → tau² = 0 and mu is the fixed-effect mean.
        // y = 0.1, 0.0 with v = 1, 1: ybar 0.05, Q = 0.005 < 1.
        let (mu, tau2) = dersimonian_laird(&[0.1, 0.0], &[1.0, 1.0]).unwrap();
        assert!(close(mu, 0.05, 1e-12) && tau2 == 0.0);
        assert!(dersimonian_laird(&[1.0], &[1.0]).is_none());
    }

    #[test]
    fn leave_one_out_z_by_hand() {
        // Others of unit 0 are y = 0, 0, 0 (v = 0.01): tau² = 0, mu = 0, so
        // z = (0.5 − 0) / sqrt(0.01) = 5.
        let y = [0.5, 0.0, 0.0, 0.0];
        let v = [0.01; 4];
        let z = leave_one_out_re_z(&y, &v);
        let (z0, mu0, t0) = z[0].unwrap();
        assert!(close(z0, 5.0, 1e-12) && mu0.abs() < 1e-15 && t0 == 0.0);
        // A plain (not leave-one-out) test would be dragged by the outlier itself.
        let (mu_all, tau_all) = dersimonian_laird(&y, &v).unwrap();
        assert!(mu_all > 0.0 && tau_all > 0.0);
        assert!((0.5 - mu_all) / (0.01 + tau_all).sqrt() < 5.0);
    }
    #[test]
    fn negative_binomial_tail_by_hand() {
        // phi = 1 (r = 1) is the geometric law: P(X ≥ k) = (m / (1 + m))^k; m = 2, k = 3: 8/27.
        assert!(close(nb_tail(3, 2.0, 1.0).unwrap(), 8.0 / 27.0, 1e-10));
        // phi = 0.5 (r = 2), mean 2 → p = 0.5: P(X = x) = (x + 1) 0.25 × 0.5^x;
        // P(X ≤ 1) = 0.25 + 0.25 = 0.5, so P(X ≥ 2) = 0.5.
        assert!(close(nb_tail(2, 2.0, 0.5).unwrap(), 0.5, 1e-10));
        // phi = 0 is the Poisson.
        assert!(close(nb_tail(3, 0.5, 0.0).unwrap(), poisson_tail(3, 0.5).unwrap(), 1e-12));
        // A tiny dispersion is close to the Poisson.
        assert!(close(nb_tail(3, 0.5, 1e-6).unwrap(), poisson_tail(3, 0.5).unwrap(), 1e-4));
        assert_eq!(nb_tail(0, 1.0, 1.0), Some(1.0));
        assert_eq!(nb_tail(1, 0.0, 1.0), None);
    }

    #[test]
    fn dispersion_by_hand() {
        // O = 10, 0, 5 with E = 5 each: Σ[(O − E)² − O] = (25 − 10) + (25 − 0) + (0 − 5) = 35,
        // Σ E² = 75: phi = 35 / 75.
        let (o, e) = ([10.0, 0.0, 5.0], [5.0, 5.0, 5.0]);
        assert!(close(nb_dispersion(&o, &e), 35.0 / 75.0, 1e-12));
        // Leaving unit 0 out: (25 − 5) / 50 = 0.4; unit 1 out: (15 − 5) / 50 = 0.2;
        // unit 2 out: (15 + 25) / 50 = 0.8.
        let l = nb_dispersion_loo(&o, &e);
        assert!(close(l[0], 0.4, 1e-12) && close(l[1], 0.2, 1e-12) && close(l[2], 0.8, 1e-12), "{l:?}");
        // Under-dispersed counts give 0.
        assert_eq!(nb_dispersion(&[5.0, 5.0], &[5.0, 5.0]), 0.0);
    }

    #[test]
    fn chi_square_by_hand() {
        // χ²(2) has the survival function e^(−x/2): x = 4 → e^−2.
        assert!(close(chi2_sf(4.0, 2).unwrap(), (-2.0f64).exp(), 1e-10));
        // Table: the 0.05 critical value of χ²(8) is 15.507.
        assert!(close(chi2_sf(15.507_313, 8).unwrap(), 0.05, 1e-5));
        // O = 30 10 10 against E = 20 20 10: X² = 5 + 5 + 0 = 10 on 2 df.
        let (x2, df) = pearson_chi2(&[30.0, 10.0, 10.0], &[20.0, 20.0, 10.0]);
        assert!(close(x2, 10.0, 1e-12) && df == 2);
        // A cell expecting nothing is left out.
        assert_eq!(pearson_chi2(&[1.0, 1.0], &[2.0, 0.0]).1, 0);
        // TVD: shares 0.6 0.2 0.2 vs 0.4 0.4 0.2 → ½ (0.2 + 0.2) = 0.2.
        assert!(close(total_variation(&[30.0, 10.0, 10.0], &[20.0, 20.0, 10.0]), 0.2, 1e-12));
    }

    #[test]
    fn dirichlet_multinomial_rho_by_hand() {
        // Units (X², df, n): (16, 8, 101) → term (1, 100); (8, 8, 51) → (0, 50); (24, 8, 201) → (2, 200).
        let r = dm_rho_loo(&[(16.0, 8, 101.0), (8.0, 8, 51.0), (24.0, 8, 201.0)]);
        // Unit 0 left out: (0 + 2) / 250; unit 1: 3 / 300; unit 2: 1 / 150.
        assert!(
            close(r[0], 2.0 / 250.0, 1e-12) && close(r[1], 0.01, 1e-12) && close(r[2], 1.0 / 150.0, 1e-12)
        );
    }

    #[test]
    fn robust_log_z_by_hand() {
        // Values e^0, e^1, e^2, e^3, e^10. For the last: others' logs 0 1 2 3 → median 1.5,
        // |dev| 1.5 0.5 0.5 1.5 → MAD 1, scale 1.4826: z = (10 − 1.5) / 1.4826.
        let xs = [1.0, 1f64.exp(), 2f64.exp(), 3f64.exp(), 10f64.exp()];
        let z = robust_log_z_loo(&xs);
        let (z4, m4, s4) = z[4].unwrap();
        assert!(close(z4, 8.5 / 1.4826, 1e-12) && close(m4, 1.5, 1e-12) && close(s4, 1.4826, 1e-12));
        // For the first: others 1 2 3 10 → median 2.5, |dev| 1.5 .5 .5 7.5 → MAD 1: z = −2.5 / 1.4826.
        assert!(close(z[0].unwrap().0, -2.5 / 1.4826, 1e-12));
        assert_eq!(robust_log_z_loo(&[0.0, 1.0, 2.0, 3.0, 4.0])[0], None);
        assert_eq!(robust_log_z_loo(&[1.0, 2.0, 3.0])[0], None);
    }

    /// A small deterministic generator for the simulation tests (SplitMix64 + Box–Muller).
    struct Sim(u64);
    impl Sim {
        fn u(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            let (a, b) = (self.u().max(1e-300), self.u());
            (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
        }
    }

    /// Facilities that differ naturally (between-facility sd 0.10 on the log scale) but have
    /// no outlier: `ln(O/E)` estimates with sampling variance `cv² / n`.
    fn facilities(sim: &mut Sim, k: usize) -> (Vec<f64>, Vec<f64>) {
        let mut y = Vec::new();
        let mut v = Vec::new();
        for _ in 0..k {
            let n = 50.0 + (sim.u() * 450.0).floor();
            let vi = 0.8f64.powi(2) / n;
            y.push(0.10 * sim.normal() + vi.sqrt() * sim.normal());
            v.push(vi);
        }
        (y, v)
    }

    fn discoveries(z: &[f64], q: f64) -> usize {
        let p: Vec<f64> = z.iter().map(|z| normal_sf(*z)).collect();
        bh_qvalues(&p, p.len()).iter().filter(|x| **x < q).count()
    }

    #[test]
    fn over_dispersed_test_keeps_the_false_discovery_rate_where_a_plain_test_does_not() {
        let mut sim = Sim(20_261_122);
        let (reps, k, q) = (200, 60, 0.01);
        let (mut re_any, mut fe_total) = (0, 0);
        for _ in 0..reps {
            let (y, v) = facilities(&mut sim, k);
            let re: Vec<f64> = leave_one_out_re_z(&y, &v).iter().map(|z| z.map_or(0.0, |t| t.0)).collect();
            // A test that assumes facilities do not differ: z = ln(O/E) / sqrt(v).
            let fe: Vec<f64> = y.iter().zip(&v).map(|(y, v)| y / v.sqrt()).collect();
            re_any += usize::from(discoveries(&re, q) > 0);
            fe_total += discoveries(&fe, q);
        }
        // Every null is true, so BH at q bounds P(any discovery) by q: expect ~2 of 200
        // replicates; allow sampling noise (P(Binomial(200, 0.01) > 6) ≈ 0.005).
        assert!(re_any <= 6, "random-effects test: {re_any} of {reps} replicates with a false discovery");
        // The plain test flags many naturally different facilities (here > 5 % of them).
        assert!(fe_total as f64 > 0.05 * (reps * k) as f64, "fixed-effect discoveries {fe_total}");
    }

    #[test]
    fn over_dispersed_test_finds_a_facility_eighty_percent_above() {
        let mut sim = Sim(7);
        let (mut y, v) = facilities(&mut sim, 60);
        y[17] += 1.8f64.ln();
        let z: Vec<f64> = leave_one_out_re_z(&y, &v).iter().map(|z| z.map_or(0.0, |t| t.0)).collect();
        let p: Vec<f64> = z.iter().map(|z| normal_sf(*z)).collect();
        let q = bh_qvalues(&p, p.len());
        assert!(q[17] < 0.01, "q = {}", q[17]);
    }
}
