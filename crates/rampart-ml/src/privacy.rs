//! Rényi differential privacy (RDP) accounting for the sampled Gaussian mechanism (SGM):
//! each step adds Gaussian noise of standard deviation σ·C to the sum of per-example gradients
//! clipped to norm C, over a Poisson sample with rate q.
//!
//! * RDP of one SGM step at order α (Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy
//!   of the Sampled Gaussian Mechanism"): the binomial expansion for integer α, the two
//!   erfc-weighted series for fractional α, summed in log space with signs.
//! * Composition over T steps is T times the per-step RDP.
//! * Conversion to (ε, δ): ε = min over α of
//!   `rdp(α) − (ln δ + ln α)/(α − 1) + ln((α − 1)/α)` (Balle et al. 2020), the conversion Opacus
//!   uses, tighter than the classic `rdp − ln δ/(α − 1)`.
//! * [`noise_for_epsilon`] inverts this by bisection on σ (ε is decreasing in σ).

/// The order grid: 1.1 … 10.9 in steps of 0.1, then 11 … 63, 128, 256, 512, 1024.
pub const DEFAULT_ORDERS: &[f64] = &[
    1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0, 2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 2.9,
    3.0, 3.1, 3.2, 3.3, 3.4, 3.5, 3.6, 3.7, 3.8, 3.9, 4.0, 4.1, 4.2, 4.3, 4.4, 4.5, 4.6, 4.7, 4.8,
    4.9, 5.0, 5.1, 5.2, 5.3, 5.4, 5.5, 5.6, 5.7, 5.8, 5.9, 6.0, 6.1, 6.2, 6.3, 6.4, 6.5, 6.6, 6.7,
    6.8, 6.9, 7.0, 7.1, 7.2, 7.3, 7.4, 7.5, 7.6, 7.7, 7.8, 7.9, 8.0, 8.1, 8.2, 8.3, 8.4, 8.5, 8.6,
    8.7, 8.8, 8.9, 9.0, 9.1, 9.2, 9.3, 9.4, 9.5, 9.6, 9.7, 9.8, 9.9, 10.0, 10.1, 10.2, 10.3, 10.4,
    10.5, 10.6, 10.7, 10.8, 10.9, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0, 20.0, 21.0,
    22.0, 23.0, 24.0, 25.0, 26.0, 27.0, 28.0, 29.0, 30.0, 31.0, 32.0, 33.0, 34.0, 35.0, 36.0, 37.0,
    38.0, 39.0, 40.0, 41.0, 42.0, 43.0, 44.0, 45.0, 46.0, 47.0, 48.0, 49.0, 50.0, 51.0, 52.0, 53.0,
    54.0, 55.0, 56.0, 57.0, 58.0, 59.0, 60.0, 61.0, 62.0, 63.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Invalid accounting parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PrivacyError {
    /// A parameter is out of its domain.
    #[error("{0}")]
    Invalid(String),
    /// No noise level reaches the target ε (within σ ≤ 10⁶).
    #[error("no noise multiplier up to 1e6 reaches ε = {0}")]
    Unreachable(f64),
}

/// `ln(e^a + e^b)`.
fn log_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// `ln(e^a − e^b)` for a ≥ b (−∞ when equal).
fn log_sub(a: f64, b: f64) -> f64 {
    if b == f64::NEG_INFINITY {
        return a;
    }
    if a <= b {
        return f64::NEG_INFINITY;
    }
    a + (-(b - a).exp()).ln_1p()
}

/// `ln(erfc(x))`, accurate in the far tail where `erfc` underflows.
fn log_erfc(x: f64) -> f64 {
    if x < 20.0 {
        let v = libm::erfc(x);
        if v > 0.0 {
            return v.ln();
        }
    }
    // Asymptotic series: erfc(x) ~ e^{-x²}/(x√π) · (1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶) + 105/(16x⁸)).
    let x2 = x * x;
    let series = 1.0 - 1.0 / (2.0 * x2) + 3.0 / (4.0 * x2 * x2) - 15.0 / (8.0 * x2 * x2 * x2)
        + 105.0 / (16.0 * x2 * x2 * x2 * x2);
    -x2 - (x * std::f64::consts::PI.sqrt()).ln() + series.ln()
}

/// `ln A_α` for integer α ≥ 2.
fn log_a_int(q: f64, sigma: f64, alpha: u64) -> f64 {
    let mut log_a = f64::NEG_INFINITY;
    let mut log_binom = 0.0f64; // ln C(α, 0)
    let (lq, l1q) = (q.ln(), (-q).ln_1p());
    for i in 0..=alpha {
        #[allow(clippy::cast_precision_loss)]
        let (fi, fa) = (i as f64, alpha as f64);
        if i > 0 {
            log_binom += (fa - fi + 1.0).ln() - fi.ln();
        }
        let term = log_binom + fi * lq + (fa - fi) * l1q + (fi * fi - fi) / (2.0 * sigma * sigma);
        log_a = log_add(log_a, term);
    }
    log_a
}

/// `ln A_α` for fractional α > 1: two alternating series weighted by erfc, summed with signs.
fn log_a_frac(q: f64, sigma: f64, alpha: f64) -> f64 {
    let (mut log_a0, mut log_a1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let z0 = sigma * sigma * (1.0 / q - 1.0).ln() + 0.5;
    let (lq, l1q) = (q.ln(), (-q).ln_1p());
    let s2 = std::f64::consts::SQRT_2 * sigma;
    // Generalised binomial coefficient C(α, i), as log-magnitude and sign.
    let (mut log_coef, mut positive) = (0.0f64, true);
    for i in 0..100_000u32 {
        let fi = f64::from(i);
        if i > 0 {
            let factor = alpha - fi + 1.0;
            log_coef += factor.abs().ln() - fi.ln();
            if factor < 0.0 {
                positive = !positive;
            }
        }
        let j = alpha - fi;
        let log_t0 = log_coef + fi * lq + j * l1q;
        let log_t1 = log_coef + j * lq + fi * l1q;
        let log_e0 = 0.5f64.ln() + log_erfc((fi - z0) / s2);
        let log_e1 = 0.5f64.ln() + log_erfc((z0 - j) / s2);
        let log_s0 = log_t0 + (fi * fi - fi) / (2.0 * sigma * sigma) + log_e0;
        let log_s1 = log_t1 + (j * j - j) / (2.0 * sigma * sigma) + log_e1;
        if positive {
            log_a0 = log_add(log_a0, log_s0);
            log_a1 = log_add(log_a1, log_s1);
        } else {
            log_a0 = log_sub(log_a0, log_s0);
            log_a1 = log_sub(log_a1, log_s1);
        }
        if log_s0.max(log_s1) < -30.0 {
            break;
        }
    }
    log_add(log_a0, log_a1)
}

/// RDP of one sampled Gaussian step at order `alpha`.
#[must_use]
pub fn rdp_step(q: f64, sigma: f64, alpha: f64) -> f64 {
    if q == 0.0 {
        return 0.0;
    }
    if sigma == 0.0 || alpha.is_infinite() {
        return f64::INFINITY;
    }
    if q == 1.0 {
        return alpha / (2.0 * sigma * sigma);
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let log_a = if alpha.fract() == 0.0 && alpha < 1e6 {
        log_a_int(q, sigma, alpha as u64)
    } else {
        log_a_frac(q, sigma, alpha)
    };
    log_a / (alpha - 1.0)
}

fn check(q: f64, steps: u64, delta: f64, orders: &[f64]) -> Result<(), PrivacyError> {
    if !(0.0..=1.0).contains(&q) || q.is_nan() {
        return Err(PrivacyError::Invalid(format!(
            "sample rate {q} is not in [0, 1]"
        )));
    }
    if !(delta > 0.0 && delta < 1.0) {
        return Err(PrivacyError::Invalid(format!(
            "delta {delta} is not in (0, 1)"
        )));
    }
    if steps == 0 {
        return Err(PrivacyError::Invalid("steps must be at least 1".into()));
    }
    if orders.is_empty() || orders.iter().any(|a| a.is_nan() || *a <= 1.0) {
        return Err(PrivacyError::Invalid("orders must be > 1".into()));
    }
    Ok(())
}

/// (ε, best order) after `steps` steps of the sampled Gaussian mechanism with sample rate `q`
/// and noise multiplier `sigma`, for `delta`.
///
/// # Errors
/// [`PrivacyError::Invalid`] for parameters out of their domain.
pub fn epsilon(
    q: f64,
    sigma: f64,
    steps: u64,
    delta: f64,
    orders: &[f64],
) -> Result<(f64, f64), PrivacyError> {
    check(q, steps, delta, orders)?;
    if sigma.is_nan() || sigma < 0.0 {
        return Err(PrivacyError::Invalid(format!(
            "noise multiplier {sigma} is negative"
        )));
    }
    #[allow(clippy::cast_precision_loss)]
    let t = steps as f64;
    let mut best = (f64::INFINITY, f64::NAN);
    for &alpha in orders {
        let rdp = rdp_step(q, sigma, alpha) * t;
        let eps = rdp - (delta.ln() + alpha.ln()) / (alpha - 1.0) + ((alpha - 1.0) / alpha).ln();
        if eps.is_finite() && eps < best.0 {
            best = (eps, alpha);
        }
    }
    Ok((best.0.max(0.0), best.1))
}

/// The smallest noise multiplier σ (to a relative 1e-6) whose ε is at most `target`.
///
/// # Errors
/// [`PrivacyError::Invalid`] for bad parameters, [`PrivacyError::Unreachable`] when even
/// σ = 10⁶ does not reach the target.
pub fn noise_for_epsilon(
    q: f64,
    steps: u64,
    delta: f64,
    target: f64,
    orders: &[f64],
) -> Result<f64, PrivacyError> {
    check(q, steps, delta, orders)?;
    if target.is_nan() || target <= 0.0 {
        return Err(PrivacyError::Invalid(format!(
            "target epsilon {target} must be positive"
        )));
    }
    let eps = |s: f64| epsilon(q, s, steps, delta, orders).map(|e| e.0);
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while eps(hi)? > target {
        lo = hi;
        hi *= 2.0;
        if hi > 1e6 {
            return Err(PrivacyError::Unreachable(target));
        }
    }
    while hi - lo > 1e-6 * hi {
        let mid = 0.5 * (lo + hi);
        if eps(mid)? > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_batch_gaussian_is_exact() {
        // q = 1: RDP(α) = α / (2σ²).
        assert!((rdp_step(1.0, 2.0, 3.0) - 3.0 / 8.0).abs() < 1e-12);
        // Integer and fractional paths agree around an integer order.
        let a = rdp_step(0.01, 1.0, 4.0);
        let b = rdp_step(0.01, 1.0, 4.0 + 1e-7);
        assert!((a - b).abs() / a < 1e-4, "{a} vs {b}");
    }

    #[test]
    fn epsilon_grows_with_steps_and_falls_with_noise() {
        let (e1, _) = epsilon(0.01, 1.0, 1_000, 1e-5, DEFAULT_ORDERS).unwrap();
        let (e2, _) = epsilon(0.01, 1.0, 10_000, 1e-5, DEFAULT_ORDERS).unwrap();
        let (e3, _) = epsilon(0.01, 2.0, 10_000, 1e-5, DEFAULT_ORDERS).unwrap();
        assert!(e1 < e2 && e3 < e2, "{e1} {e2} {e3}");
        let sigma = noise_for_epsilon(0.01, 10_000, 1e-5, 1.0, DEFAULT_ORDERS).unwrap();
        let (e, _) = epsilon(0.01, sigma, 10_000, 1e-5, DEFAULT_ORDERS).unwrap();
        assert!(e <= 1.0 && e > 0.999, "{e} at sigma {sigma}");
        assert!(epsilon(1.5, 1.0, 1, 1e-5, DEFAULT_ORDERS).is_err());
        assert!(epsilon(0.1, 1.0, 1, 0.0, DEFAULT_ORDERS).is_err());
    }

    #[test]
    fn log_erfc_is_continuous_into_the_tail() {
        for x in [1.0, 5.0, 10.0, 19.9, 20.1, 26.0, 40.0] {
            let a = log_erfc(x);
            assert!(a.is_finite() && a < 0.0, "{x}: {a}");
        }
        assert!((log_erfc(19.99) - log_erfc(20.01)).abs() < 1.0);
    }
}
