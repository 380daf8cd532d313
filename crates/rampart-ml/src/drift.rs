//! Drift statistics: the population stability index (PSI).
//!
//! Default binning (what the data checks and the gateway use): edges at the reference's deciles
//! by numpy's default *linear* quantile method; bins `(-inf, e1) [e1, e2) … [e9, +inf)`;
//! duplicate edges are kept (their bins are simply empty); each share is floored at 1e-4
//! without renormalising; PSI = Σ (cur − ref) · ln(cur / ref).

/// The share floor for empty bins.
pub const PSI_FLOOR: f64 = 1e-4;

/// numpy's default (`method="linear"`) quantile of already sorted, finite data.
#[must_use]
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let Some(&first) = sorted.first() else {
        return f64::NAN;
    };
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let frac = pos - lo as f64;
    let a = sorted.get(lo).copied().unwrap_or(first);
    let b = sorted.get(lo + 1).copied().unwrap_or(a);
    a + (b - a) * frac
}

/// The nine decile edges of `reference` (NaNs ignored).
#[must_use]
pub fn decile_edges(reference: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = reference.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    (1..10)
        .map(|i| quantile_sorted(&sorted, f64::from(i) / 10.0))
        .collect()
}

/// `count` equal-width edges between the reference's min and max (`count + 1` bins).
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn equal_width_edges(reference: &[f64], bins: usize) -> Vec<f64> {
    let (min, max) = reference
        .iter()
        .filter(|v| !v.is_nan())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if !min.is_finite() || bins < 2 {
        return Vec::new();
    }
    (1..bins)
        .map(|i| min + (max - min) * i as f64 / bins as f64)
        .collect()
}

/// Shares of `values` in the bins `(-inf, e1) [e1, e2) … [ek, +inf)` (NaNs ignored).
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn shares(values: &[f64], edges: &[f64]) -> Vec<f64> {
    let mut counts = vec![0u64; edges.len() + 1];
    let mut n = 0u64;
    for v in values.iter().filter(|v| !v.is_nan()) {
        let bin = edges.partition_point(|e| e <= v);
        if let Some(c) = counts.get_mut(bin) {
            *c += 1;
        }
        n += 1;
    }
    counts
        .iter()
        .map(|&c| if n == 0 { 0.0 } else { c as f64 / n as f64 })
        .collect()
}

/// PSI between two share vectors (floored at [`PSI_FLOOR`], not renormalised).
#[must_use]
pub fn psi_from_shares(reference: &[f64], current: &[f64]) -> f64 {
    reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| {
            let (r, c) = (r.max(PSI_FLOOR), c.max(PSI_FLOOR));
            (c - r) * (c / r).ln()
        })
        .sum()
}

/// The reference shares of the decile bins when only the training statistics are kept (as a
/// model does): a tenth per bin, with the tenth of an empty bin — below a first edge equal to
/// the minimum, or between two equal edges — moved to the next bin, where those values fall
/// (`[e, …)` holds the value `e`). Exact for continuous data, close for data with ties.
#[must_use]
pub fn reference_shares(deciles: &[f64], min: f64) -> Vec<f64> {
    let mut shares = vec![0.0; deciles.len() + 1];
    let mut carry = 0.0;
    for (k, share) in shares.iter_mut().enumerate() {
        carry += 0.1;
        let empty = match k {
            0 => deciles.first().is_some_and(|&e| min >= e),
            _ => match (deciles.get(k - 1), deciles.get(k)) {
                (Some(a), Some(b)) => a >= b,
                _ => false,
            },
        };
        if !empty {
            *share = carry;
            carry = 0.0;
        }
    }
    if let Some(last) = shares.last_mut() {
        *last += carry;
    }
    shares
}

/// PSI of `current` against `reference` with decile binning.
#[must_use]
pub fn psi(reference: &[f64], current: &[f64]) -> f64 {
    let edges = decile_edges(reference);
    psi_from_shares(&shares(reference, &edges), &shares(current, &edges))
}

/// PSI over categories: shares of each category present in either sample.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn psi_categorical<T: Ord + Clone>(reference: &[T], current: &[T]) -> f64 {
    let mut cats: std::collections::BTreeMap<T, (u64, u64)> = std::collections::BTreeMap::new();
    for r in reference {
        cats.entry(r.clone()).or_default().0 += 1;
    }
    for c in current {
        cats.entry(c.clone()).or_default().1 += 1;
    }
    let (nr, nc) = (reference.len().max(1) as f64, current.len().max(1) as f64);
    let (r, c): (Vec<f64>, Vec<f64>) = cats
        .values()
        .map(|(a, b)| (*a as f64 / nr, *b as f64 / nc))
        .unzip();
    psi_from_shares(&r, &c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_is_zero_and_shift_is_large() {
        let r: Vec<f64> = (0..1000).map(f64::from).collect();
        assert!(psi(&r, &r).abs() < 1e-12);
        let shifted: Vec<f64> = r.iter().map(|v| v + 300.0).collect();
        assert!(psi(&r, &shifted) > 0.2);
        // numpy: np.quantile([1, 2, 3, 4], 0.1) == 1.3
        assert!((quantile_sorted(&[1.0, 2.0, 3.0, 4.0], 0.1) - 1.3).abs() < 1e-12);
        // Bins are half-open on the left edge: a value equal to an edge goes right.
        assert_eq!(shares(&[1.0, 2.0, 3.0], &[2.0]), vec![1.0 / 3.0, 2.0 / 3.0]);
        assert!(psi_categorical(&["a", "b"], &["a", "b"]).abs() < 1e-12);
        assert!(psi_categorical(&["a", "a", "b"], &["c", "c", "c"]) > 1.0);
    }

    #[test]
    fn reference_shares_match_the_data_they_summarise() {
        // Continuous: a tenth per bin.
        let cont: Vec<f64> = (0..1000).map(f64::from).collect();
        let e = decile_edges(&cont);
        let r = reference_shares(&e, 0.0);
        assert_eq!(r.len(), 10);
        let actual = shares(&cont, &e);
        assert!(psi_from_shares(&r, &actual) < 1e-3, "{r:?} vs {actual:?}");
        // A spike at the minimum (35% zeros): the empty bins' tenths land on `[0, e4)`. (Between
        // discrete values the edges interpolate and the estimate is rough: models store the
        // exact shares.)
        let ties: Vec<f64> = (0..1000)
            .map(|i| if i < 350 { 0.0 } else { f64::from(i) })
            .collect();
        let e = decile_edges(&ties);
        let r = reference_shares(&e, 0.0);
        let actual = shares(&ties, &e);
        assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(psi_from_shares(&r, &actual) < 0.05, "{r:?} vs {actual:?}");
        // And a real shift is still seen.
        let shifted: Vec<f64> = (0..1000).map(|i| f64::from(i / 2)).collect();
        assert!(psi_from_shares(&r, &shares(&shifted, &e)) > 0.2);
    }
}
