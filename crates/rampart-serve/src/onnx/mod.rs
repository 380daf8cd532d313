//! ONNX models in the gateway: the runtime is `rampart-onnx` (ONNX Runtime; see there for the
//! choice and the limits); here are the V2 request parsing ([`tensor`]) and output hardening.

pub mod tensor;

pub use rampart_onnx::{Isolation, LIBRARY_ENV, OnnxError, OnnxLimits, OnnxModel, runtime, worker};

use self::tensor::{Data, Tensor};

/// A graph's outputs as the caller may see them under `mode` (output hardening):
///
/// - `raw`: as computed;
/// - `round:N`: every floating-point value rounded to `N` decimals;
/// - `label`: every floating-point output dropped; each `[rows, k ≥ 2]` one (probabilities or
///   scores) replaced by `NAME_label`, the index of each row's top column (`INT64 [rows]`);
/// - `bins`: as `label`, plus `NAME_band` (`BYTES [rows]`), the band of the top probability,
///   for outputs whose rows are probabilities.
#[must_use]
pub fn harden(outputs: Vec<Tensor>, mode: &crate::OutputMode) -> Vec<Tensor> {
    use crate::OutputMode;
    match mode {
        OutputMode::Raw => outputs,
        OutputMode::Round(n) => outputs
            .into_iter()
            .map(|mut t| {
                let k = 10f64.powi(i32::try_from(*n).unwrap_or(15));
                let round = |v: f64| (v * k).round() / k;
                t.data = match t.data {
                    #[allow(clippy::cast_possible_truncation)]
                    Data::Fp32(v) => {
                        Data::Fp32(v.into_iter().map(|x| round(f64::from(x)) as f32).collect())
                    }
                    Data::Fp64(v) => Data::Fp64(v.into_iter().map(round).collect()),
                    other => other,
                };
                t
            })
            .collect(),
        OutputMode::Label | OutputMode::Bins(_) => {
            let mut out = Vec::with_capacity(outputs.len());
            for t in outputs {
                let values: Vec<f64> = match &t.data {
                    Data::Fp32(v) => v.iter().map(|x| f64::from(*x)).collect(),
                    Data::Fp64(v) => v.clone(),
                    _ => {
                        out.push(t);
                        continue;
                    }
                };
                let &[rows, k] = t.shape.as_slice() else {
                    continue;
                };
                if k < 2 {
                    continue;
                }
                let mut labels = Vec::with_capacity(rows);
                let mut bands = Vec::with_capacity(rows);
                let mut probabilities = true;
                for row in values.chunks_exact(k) {
                    let top = row
                        .iter()
                        .enumerate()
                        .max_by(|a, b| a.1.total_cmp(b.1))
                        .map_or(0, |(i, _)| i);
                    labels.push(i64::try_from(top).unwrap_or(i64::MAX));
                    let sum: f64 = row.iter().sum();
                    probabilities &=
                        (sum - 1.0).abs() < 1e-3 && row.iter().all(|p| (0.0..=1.0).contains(p));
                    bands.push(crate::oip::harden(mode, row).1.unwrap_or_default());
                }
                out.push(Tensor {
                    name: format!("{}_label", t.name),
                    shape: vec![rows],
                    data: Data::Int64(labels),
                    parameters: t.parameters.clone(),
                });
                if matches!(mode, OutputMode::Bins(_)) && probabilities {
                    out.push(Tensor {
                        name: format!("{}_band", t.name),
                        shape: vec![rows],
                        data: Data::Bytes(bands),
                        parameters: None,
                    });
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::OutputMode;

    fn t(name: &str, shape: Vec<usize>, data: Data) -> Tensor {
        Tensor {
            name: name.into(),
            shape,
            data,
            parameters: None,
        }
    }

    fn outputs() -> Vec<Tensor> {
        vec![
            t("label", vec![2], Data::Int64(vec![1, 0])),
            t(
                "proba",
                vec![2, 2],
                Data::Fp32(vec![0.123_456, 0.876_544, 0.9, 0.1]),
            ),
            t("logits", vec![2, 2], Data::Fp64(vec![-3.0, 2.5, 4.0, -1.0])),
        ]
    }

    #[test]
    fn hardening_rounds_or_replaces_every_float_output() {
        assert_eq!(harden(outputs(), &OutputMode::Raw), outputs());
        let r = harden(outputs(), &OutputMode::Round(2));
        assert_eq!(r[0], outputs()[0]);
        assert_eq!(r[1].data, Data::Fp32(vec![0.12, 0.88, 0.9, 0.1]));
        let names = |v: &[Tensor]| v.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
        // label: no float leaves; each [rows, k] output gives its top column.
        let l = harden(outputs(), &OutputMode::Label);
        assert_eq!(names(&l), ["label", "proba_label", "logits_label"]);
        assert_eq!(l[1].data, Data::Int64(vec![1, 0]));
        assert_eq!(l[2].data, Data::Int64(vec![1, 0]));
        // bins: a band for probability rows only (logits are not probabilities).
        let b = harden(
            outputs(),
            &OutputMode::Bins(vec!["low".into(), "high".into()]),
        );
        assert_eq!(
            names(&b),
            ["label", "proba_label", "proba_band", "logits_label"]
        );
        assert_eq!(b[2].data, Data::Bytes(vec!["high".into(), "high".into()]));
    }
}
