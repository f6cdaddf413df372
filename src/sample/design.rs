//! The sampling design: a fixed-size draw with unequal, exactly known inclusion
//! probabilities.
//!
//! 1. Size measures: `x_i = floor × mean(s) + (1 − floor) × s_i` from the risk scores `s_i`
//!    (all equal when no unit has a score), so that `π_i ≥ floor × n / N` for every unit.
//! 2. Inclusion probabilities `π_i = n × x_i / Σx`, with iterative capping: a unit whose
//!    `π_i` would reach 1 is taken with certainty and the rest of `n` is shared again among
//!    the others, until no `π_i` exceeds 1.
//! 3. Each `π_i` is stored as an integer number of `2⁻⁴⁸` ([`ONE`]), rounded so that they add
//!    up to exactly `n`: the probability the draw realises *is* the recorded one, not an
//!    approximation of it.
//! 4. Systematic sampling over a seeded random order of the units: one uniform start `u` in
//!    `[0, 1)` and the points `u, u + 1, …, u + n − 1` on the cumulated `π`; the unit whose
//!    interval holds a point is drawn. Each unit is drawn with probability exactly `π_i`, and
//!    exactly `n` units are drawn.

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Probability 1 in fixed point (2⁴⁸).
pub(crate) const ONE: u64 = 1 << 48;

/// A probability in fixed point as `f64` (exact: both fit in 53 bits).
pub(crate) fn prob(q: u64) -> f64 {
    q as f64 / ONE as f64
}

/// Size measures from risk scores with a floor share in (0, 1].
pub(crate) fn sizes(scores: &[f64], floor: f64) -> Vec<f64> {
    let total: f64 = scores.iter().sum();
    if scores.is_empty() || total.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return vec![1.0; scores.len()];
    }
    let mean = total / scores.len() as f64;
    scores.iter().map(|&s| floor * mean + (1.0 - floor) * s).collect()
}

/// Inclusion probabilities in fixed point for a draw of `n` units proportional to `sizes`
/// (all `> 0`), capped at 1; they add up to exactly `n × ONE`.
pub(crate) fn inclusion(sizes: &[f64], n: usize) -> Vec<u64> {
    let big_n = sizes.len();
    if n >= big_n {
        return vec![ONE; big_n];
    }
    if n == 0 {
        return vec![0; big_n];
    }
    let mut capped = vec![false; big_n];
    let mut ncapped = 0usize;
    let mut rate;
    loop {
        let rem = n - ncapped;
        let total: f64 = sizes.iter().zip(&capped).filter(|(_, c)| !**c).map(|(x, _)| *x).sum();
        rate = rem as f64 / total;
        let mut any = false;
        for (i, &x) in sizes.iter().enumerate() {
            if !capped[i] && rate * x >= 1.0 {
                capped[i] = true;
                ncapped += 1;
                any = true;
            }
        }
        if !any || ncapped >= n {
            break;
        }
    }
    let mut q = vec![0u64; big_n];
    let mut frac = vec![0f64; big_n];
    for i in 0..big_n {
        if capped[i] {
            q[i] = ONE;
        } else if ncapped < n {
            let v = (rate * sizes[i]).clamp(0.0, 1.0) * ONE as f64;
            let f = v.floor();
            q[i] = (f as u64).min(ONE);
            frac[i] = v - f;
        }
    }
    // Make the fixed-point probabilities add up to exactly n: hand the rounding residue out
    // one 2⁻⁴⁸ at a time, largest fractional part first (ties by position).
    let target = n as i128 * ONE as i128;
    let mut diff = target - q.iter().map(|&v| v as i128).sum::<i128>();
    let mut order: Vec<usize> = (0..big_n).filter(|&i| !capped[i]).collect();
    if diff > 0 {
        order.sort_by(|&a, &b| frac[b].total_cmp(&frac[a]).then(a.cmp(&b)));
        while diff > 0 {
            let before = diff;
            for &i in &order {
                if diff == 0 {
                    break;
                }
                if q[i] < ONE {
                    q[i] += 1;
                    diff -= 1;
                }
            }
            if diff == before {
                break; // cannot happen: fewer than N units would have to hold n
            }
        }
    } else if diff < 0 {
        order.sort_by(|&a, &b| frac[a].total_cmp(&frac[b]).then(a.cmp(&b)));
        while diff < 0 {
            let before = diff;
            for &i in &order {
                if diff == 0 {
                    break;
                }
                if q[i] > 1 {
                    q[i] -= 1;
                    diff += 1;
                }
            }
            if diff == before {
                break;
            }
        }
    }
    q
}

/// The key of one stratum's draw, from the seed and the stratum's name.
pub(crate) fn stratum_key(seed: u64, locality: &str, stratum: &str) -> u64 {
    xxh3_64(format!("medaudit-sample\u{1f}{seed}\u{1f}{locality}\u{1f}{stratum}").as_bytes())
}

/// SplitMix64 finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Systematic draw: `ids` name the units (for the seeded random order), `q` their
/// fixed-point inclusion probabilities. Returns which units are drawn.
pub(crate) fn systematic(ids: &[&str], q: &[u64], key: u64) -> Vec<bool> {
    let mut order: Vec<(u64, usize)> =
        ids.iter().enumerate().map(|(i, id)| (xxh3_64_with_seed(id.as_bytes(), key), i)).collect();
    // Ties of the hash (practically never) fall back on the id, so the order never depends
    // on the input's row order.
    order.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| ids[a.1].cmp(ids[b.1])));
    let start = mix(key) & (ONE - 1);
    let mut drawn = vec![false; q.len()];
    let mut point = start as u128;
    let mut cum: u128 = 0;
    for &(_, i) in &order {
        let end = cum + q[i] as u128;
        if point < end {
            drawn[i] = true;
            point += ONE as u128;
        }
        cum = end;
    }
    drawn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_add_up_to_n_and_are_capped() {
        let x = [100.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0];
        let q = inclusion(&x, 3);
        assert_eq!(q.iter().map(|&v| v as u128).sum::<u128>(), 3 * ONE as u128);
        assert_eq!(q[0], ONE, "the dominant unit is taken with certainty");
        // the other two are shared in proportion to size: 2/8 and 1/8 of the remaining 2
        let p: Vec<f64> = q.iter().map(|&v| prob(v)).collect();
        assert!((p[7] - 2.0 * 2.0 / 8.0).abs() < 1e-12, "{p:?}");
        assert!((p[1] - 2.0 / 8.0).abs() < 1e-12, "{p:?}");
    }

    #[test]
    fn capping_is_iterative() {
        // After capping the first unit, the second would exceed 1 at the new rate.
        let x = [50.0, 10.0, 1.0, 1.0, 1.0, 1.0];
        let p: Vec<f64> = inclusion(&x, 3).into_iter().map(prob).collect();
        assert_eq!(p[0], 1.0);
        assert_eq!(p[1], 1.0);
        for v in &p[2..] {
            assert!((v - 0.25).abs() < 1e-12, "{p:?}");
        }
    }

    #[test]
    fn floor_bounds_every_probability_from_below() {
        let s = [0.0, 0.0, 0.0, 500.0, 30.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let x = sizes(&s, 0.2);
        let q = inclusion(&x, 2);
        for (i, &v) in q.iter().enumerate() {
            assert!(prob(v) >= 0.2 * 2.0 / 10.0 - 1e-12, "unit {i}: {}", prob(v));
        }
        assert_eq!(sizes(&[0.0, 0.0], 0.2), vec![1.0, 1.0]);
    }

    #[test]
    fn systematic_draws_exactly_n() {
        let ids: Vec<String> = (0..50).map(|i| format!("S{i:03}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let x: Vec<f64> = (0..50).map(|i| 1.0 + (i % 7) as f64).collect();
        let q = inclusion(&x, 11);
        for seed in 0..200 {
            let d = systematic(&refs, &q, stratum_key(seed, "411402", "risk"));
            assert_eq!(d.iter().filter(|&&b| b).count(), 11, "seed {seed}");
            for (i, &v) in q.iter().enumerate() {
                if v == ONE {
                    assert!(d[i]);
                }
            }
        }
    }

    #[test]
    fn rounding_residue_keeps_the_sum_exact() {
        let x: Vec<f64> = (0..1000).map(|i| 1.0 / (1.0 + i as f64)).collect();
        for n in [1, 7, 333, 999] {
            let q = inclusion(&x, n);
            assert_eq!(q.iter().map(|&v| v as u128).sum::<u128>(), n as u128 * ONE as u128, "n = {n}");
            assert!(q.iter().all(|&v| v > 0 && v <= ONE));
        }
    }
}
