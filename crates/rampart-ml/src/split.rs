//! Seeded train/test splits, optionally stratified by class.

/// A small, seedable generator (SplitMix64): the same seed gives the same split on every
/// platform.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Seeded.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    #[allow(clippy::cast_precision_loss)]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        normal_from(|| self.next_f64())
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = usize::try_from(self.below(i as u64 + 1)).unwrap_or(0);
            items.swap(i, j);
        }
    }
}

/// A standard normal from a source of uniforms in `[0, 1)` (Box–Muller).
pub fn normal_from(mut uniform: impl FnMut() -> f64) -> f64 {
    let u1 = 1.0 - uniform(); // (0, 1]: the logarithm stays finite
    let u2 = uniform();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Row indices of a train/test split: `test_fraction` of the rows (rounded up, at least one
/// when there are two or more rows) go to the test set; with `labels`, each class is split in
/// that proportion. Both index lists are sorted.
#[must_use]
pub fn train_test_split(
    n: usize,
    test_fraction: f64,
    seed: u64,
    labels: Option<&[usize]>,
) -> (Vec<usize>, Vec<usize>) {
    let mut rng = SplitMix64::new(seed);
    let groups: Vec<Vec<usize>> = match labels {
        Some(l) => {
            let k = l.iter().copied().max().map_or(0, |m| m + 1);
            let mut g = vec![Vec::new(); k];
            for (i, &c) in l.iter().enumerate().take(n) {
                if let Some(v) = g.get_mut(c) {
                    v.push(i);
                }
            }
            g
        }
        None => vec![(0..n).collect()],
    };
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for mut g in groups {
        rng.shuffle(&mut g);
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let mut k = (g.len() as f64 * test_fraction.clamp(0.0, 1.0)).ceil() as usize;
        if g.len() >= 2 {
            k = k.clamp(1, g.len() - 1);
        }
        let k = k.min(g.len());
        test.extend_from_slice(g.get(..k).unwrap_or_default());
        train.extend_from_slice(g.get(k..).unwrap_or_default());
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_disjoint_and_stratified() {
        let labels: Vec<usize> = (0..100).map(|i| usize::from(i % 10 == 0)).collect();
        let (tr, te) = train_test_split(100, 0.2, 7, Some(&labels));
        assert_eq!((tr.len(), te.len()), (80, 20));
        assert_eq!(te.iter().filter(|&&i| labels[i] == 1).count(), 2);
        assert_eq!(
            train_test_split(100, 0.2, 7, Some(&labels)),
            (tr.clone(), te.clone())
        );
        assert_ne!(train_test_split(100, 0.2, 8, Some(&labels)).1, te);
        let mut all: Vec<usize> = tr.iter().chain(&te).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }
}
