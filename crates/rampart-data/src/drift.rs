//! Column drift between a reference table and a current one, with the statistics of
//! `rampart-ml` (the gateway's drift monitor uses the same functions):
//!
//! * numeric columns: PSI with edges at the reference's deciles (numpy's linear quantiles;
//!   bins `(-inf, e1) [e1, e2) … [e9, +inf)`, duplicate edges kept, empty shares floored at
//!   1e-4 without renormalising) or `equal-width:N` between the reference's min and max, and
//!   the two-sided two-sample KS test as scipy's `ks_2samp(method="auto")` computes it;
//! * other columns: PSI over categories (nulls are a category of their own).
//!
//! A column drifts when its PSI is at or above the threshold (0.2 by default), or when its KS
//! p-value is under 0.001 with a statistic of at least 0.1 (a shift PSI's bins can miss).

use std::collections::BTreeMap;

use rampart_ml::drift::{
    decile_edges, equal_width_edges, psi_categorical, psi_from_shares, shares,
};
use rampart_ml::ks::ks_2samp;
use serde::Serialize;

use crate::frame::Frame;

/// How numeric columns are binned for PSI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binning {
    /// The reference's deciles.
    Deciles,
    /// N equal-width bins between the reference's min and max.
    EqualWidth(usize),
}

/// A `--bins` value that is not `deciles` or `equal-width:N` (N from 2 to 1000).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bins {0:?}: use deciles or equal-width:N with N from 2 to 1000")]
pub struct BadBinning(pub String);

impl std::str::FromStr for Binning {
    type Err = BadBinning;
    fn from_str(s: &str) -> Result<Self, BadBinning> {
        if s == "deciles" {
            return Ok(Self::Deciles);
        }
        s.strip_prefix("equal-width:")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (2..=1000).contains(n))
            .map(Self::EqualWidth)
            .ok_or_else(|| BadBinning(s.to_owned()))
    }
}

/// The KS p-value under which, with [`KS_MIN_STATISTIC`], a column drifts.
pub const KS_ALPHA: f64 = 1e-3;
/// The smallest KS statistic that counts as drift.
pub const KS_MIN_STATISTIC: f64 = 0.1;

/// One column's drift.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnDrift {
    /// `numeric` or `categorical`.
    pub kind: &'static str,
    /// Population stability index.
    pub psi: f64,
    /// KS statistic (numeric columns).
    pub ks_statistic: Option<f64>,
    /// KS p-value (numeric columns).
    pub ks_pvalue: Option<f64>,
    /// Whether the column drifted.
    pub drift: bool,
}

/// Drift of every shared column.
#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    /// Per column.
    pub columns: BTreeMap<String, ColumnDrift>,
    /// Rows of the reference and the current table.
    pub reference_rows: usize,
    /// Rows of the current table.
    pub current_rows: usize,
    /// The PSI threshold used.
    pub threshold: f64,
}

impl DriftReport {
    /// Names of the drifted columns.
    #[must_use]
    pub fn drifted(&self) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|(_, c)| c.drift)
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// Numeric PSI with the given binning.
#[must_use]
pub fn numeric_psi(reference: &[f64], current: &[f64], bins: Binning) -> f64 {
    let edges = match bins {
        Binning::Deciles => decile_edges(reference),
        Binning::EqualWidth(n) => equal_width_edges(reference, n),
    };
    psi_from_shares(&shares(reference, &edges), &shares(current, &edges))
}

/// Drift of one column given as numbers (both samples non-empty) or as categories.
#[must_use]
pub fn column_drift(
    reference: &Frame,
    current: &Frame,
    rc: usize,
    cc: usize,
    bins: Binning,
    threshold: f64,
) -> Option<ColumnDrift> {
    if let (Some(r), Some(c)) = (reference.numeric(rc, false), current.numeric(cc, false)) {
        let psi = numeric_psi(&r, &c, bins);
        let ks = ks_2samp(&r, &c).ok();
        let drift = psi >= threshold
            || ks.is_some_and(|k| k.p_value < KS_ALPHA && k.statistic >= KS_MIN_STATISTIC);
        return Some(ColumnDrift {
            kind: "numeric",
            psi,
            ks_statistic: ks.map(|k| k.statistic),
            ks_pvalue: ks.map(|k| k.p_value),
            drift,
        });
    }
    let r = reference.columns.get(rc)?;
    let c = current.columns.get(cc)?;
    let psi = psi_categorical(r, c);
    Some(ColumnDrift {
        kind: "categorical",
        psi,
        ks_statistic: None,
        ks_pvalue: None,
        drift: psi >= threshold,
    })
}

/// Drift of every column the two tables share (by name), but `ignore`.
///
/// # Errors
/// A message naming the columns of the current table missing from the reference.
pub fn drift(
    reference: &Frame,
    current: &Frame,
    bins: Binning,
    threshold: f64,
    ignore: &[String],
) -> Result<DriftReport, crate::poison::ColumnError> {
    let missing: Vec<&str> = current
        .names
        .iter()
        .filter(|n| !ignore.contains(n) && reference.index(n).is_none())
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "columns of the current table missing from the reference: {}",
            missing.join(", ")
        )
        .into());
    }
    let mut columns = BTreeMap::new();
    for (cc, name) in current.names.iter().enumerate() {
        if ignore.contains(name) {
            continue;
        }
        let Some(rc) = reference.index(name) else {
            continue;
        };
        if let Some(d) = column_drift(reference, current, rc, cc, bins, threshold) {
            columns.insert(name.clone(), d);
        }
    }
    Ok(DriftReport {
        columns,
        reference_rows: reference.rows(),
        current_rows: current.rows(),
        threshold,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::csv::ReaderOptions;
    use crate::frame::{DEFAULT_NULLS, FrameLimits};

    fn frame(text: &str) -> Frame {
        Frame::read_csv(
            text.as_bytes(),
            DEFAULT_NULLS,
            ReaderOptions::default(),
            FrameLimits::default(),
        )
        .unwrap()
    }

    fn table(shift: f64, colour: &str) -> Frame {
        let mut s = String::from("x,colour\n");
        for i in 0..500 {
            let c = if i % 5 == 0 { colour } else { "red" };
            s.push_str(&format!("{},{c}\n", f64::from(i) / 10.0 + shift));
        }
        frame(&s)
    }

    #[test]
    fn same_data_does_not_drift_and_a_shift_does() {
        let r = table(0.0, "blue");
        let same = drift(&r, &table(0.0, "blue"), Binning::Deciles, 0.2, &[]).unwrap();
        assert!(same.drifted().is_empty());
        assert!(same.columns["x"].psi.abs() < 1e-12);
        assert_eq!(same.columns["x"].ks_pvalue, Some(1.0));
        let moved = drift(&r, &table(20.0, "green"), Binning::Deciles, 0.2, &[]).unwrap();
        assert_eq!(moved.drifted(), vec!["colour", "x"]);
        assert_eq!(moved.columns["colour"].kind, "categorical");
        assert!(moved.columns["x"].ks_statistic.unwrap() > 0.3);
        let ew = drift(&r, &table(20.0, "blue"), Binning::EqualWidth(10), 0.2, &[]).unwrap();
        assert!(ew.columns["x"].drift);
        assert!(!ew.columns["colour"].drift);
        assert!(drift(&r, &frame("y\n1\n"), Binning::Deciles, 0.2, &[]).is_err());
        assert_eq!(
            "equal-width:5".parse::<Binning>().unwrap(),
            Binning::EqualWidth(5)
        );
        assert!("equal-width:1".parse::<Binning>().is_err());
    }
}
