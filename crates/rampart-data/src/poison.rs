//! Signs of data poisoning in a labelled table, optionally against a trusted reference.
//!
//! Every check has a stable id, a severity (`pass`, `low`, `medium`, `high`), a one-line
//! summary and JSON details. The checks and their thresholds:
//!
//! * `label-distribution` (reference): Pearson's chi-square test of the current class counts
//!   against the reference's shares; `high` when p < 0.001 and a class share moved by 0.10 or
//!   more (or by a ratio of 1.5 or more), `medium` when p < 0.001 and it moved by 0.03.
//! * `conflicting-duplicates`: rows with identical features and different labels (what a label
//!   flip of copied rows leaves); `high` at 10 rows and 0.5% of the table, else `medium`.
//! * `duplicate-rows`: exact copies (features and label); `medium` at 5% of the table, `high`
//!   at 20%.
//! * `near-duplicate-flood`: the largest group of rows whose categorical features are equal and
//!   whose numeric features agree to within 0.1% of each feature's standard deviation; `high`
//!   when it holds max(20, 2%) of the rows, `medium` at max(10, 1%).
//! * `class-outliers`: per class, rows with a robust z-score (0.6745·|x − median| / MAD) over 6
//!   on some numeric feature, and rows an isolation forest fitted on that class scores over
//!   0.7; `medium` when either is over 2% of the class (at least 5 rows), `high` over 10%.
//! * `feature-shift` (reference): PSI per feature (the reference's deciles; categories for
//!   the rest) and the KS test; `high` at PSI ≥ 0.25, `medium` at PSI ≥ 0.1 with KS p < 0.001.
//! * `class-conditional-shift` (reference): the same PSI within each class; a class whose
//!   features moved while the whole table's did not (PSI < 0.1) is what flipped labels look
//!   like; `high` at PSI ≥ 0.1 with KS p < 0.001 for a class of at least 50 rows on both sides.
//! * `backdoor-trigger`: a rare feature value (at least max(10, 0.2%) rows, at most 10%) whose
//!   rows carry one label at least 95% of the time when that label's base rate is at most 63%
//!   (lift ≥ 1.5); a repeated value in an otherwise continuous column counts too. Against a
//!   reference where the value has the same purity it is `low` (a real pattern); otherwise
//!   `high` for repeated continuous values and values the reference never had, `medium` else.
//!   Pairs of values of two categorical columns (up to 20 columns of at most 50 values, on at
//!   most 200,000 rows) under the same rules, when neither value is 95% pure alone, are
//!   `medium`.

use std::collections::{BTreeMap, HashMap};

use rampart_ml::Matrix;
use rampart_ml::iforest::{IsolationForest, IsolationParams};
use serde::Serialize;
use serde_json::{Value, json};

use crate::drift::{Binning, numeric_psi};
use crate::frame::Frame;

/// How serious a check's result is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing found.
    Pass,
    /// Worth a look.
    Low,
    /// Likely tampering or a data problem.
    Medium,
    /// Strong sign of poisoning.
    High,
}

/// A severity that is not `low`, `medium` or `high`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("severity {0:?}: use low, medium or high")]
pub struct UnknownSeverity(pub String);

impl std::str::FromStr for Severity {
    type Err = UnknownSeverity;
    fn from_str(s: &str) -> Result<Self, UnknownSeverity> {
        match s {
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            _ => Err(UnknownSeverity(s.to_owned())),
        }
    }
}

/// Check ids (stable).
pub const CHECKS: &[&str] = &[
    "label-distribution",
    "conflicting-duplicates",
    "duplicate-rows",
    "near-duplicate-flood",
    "class-outliers",
    "feature-shift",
    "class-conditional-shift",
    "backdoor-trigger",
];

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// The check id (one of [`CHECKS`]).
    pub id: &'static str,
    /// Its severity.
    pub severity: Severity,
    /// One line for people.
    pub summary: String,
    /// Numbers behind it.
    pub details: Value,
}

/// All checks.
#[derive(Debug, Clone, Serialize)]
pub struct PoisonReport {
    /// Rows checked.
    pub rows: usize,
    /// Rows of the reference, if any.
    pub reference_rows: Option<usize>,
    /// The label column.
    pub label: String,
    /// Each check, in [`CHECKS`] order (those needing a reference are skipped without one).
    pub checks: Vec<CheckResult>,
}

impl PoisonReport {
    /// The most serious severity.
    #[must_use]
    pub fn worst(&self) -> Severity {
        self.checks
            .iter()
            .map(|c| c.severity)
            .max()
            .unwrap_or(Severity::Pass)
    }

    /// What an audit record keeps of the report: each check's id and severity, no values.
    #[must_use]
    pub fn audit_summary(&self) -> Value {
        json!(
            self.checks
                .iter()
                .map(|c| (c.id, c.severity))
                .collect::<BTreeMap<_, _>>()
        )
    }
}

/// What the columns are.
#[derive(Debug, Clone)]
pub struct Columns {
    /// The label column.
    pub label: String,
    /// Numeric feature columns.
    pub numeric: Vec<String>,
    /// Categorical feature columns.
    pub categorical: Vec<String>,
}

/// The columns a check needs are not there, or hold the wrong kind of value: which, and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ColumnError(pub String);

impl From<String> for ColumnError {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for ColumnError {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl Columns {
    /// The roles a schema gives its columns: the label from `[label]`; int and float columns
    /// numeric; bool, category and string columns categorical; unique columns (identifiers),
    /// personal columns and dates left out.
    ///
    /// # Errors
    /// When the schema names no label.
    pub fn from_schema(schema: &crate::schema::Schema) -> Result<Self, ColumnError> {
        use crate::schema::ColumnType;
        let label = schema
            .label
            .as_ref()
            .map(|l| l.column.clone())
            .ok_or("the schema has no [label]: the poisoning checks need one")?;
        let mut cols = Self {
            label: label.clone(),
            numeric: Vec::new(),
            categorical: Vec::new(),
        };
        for c in schema
            .columns
            .iter()
            .filter(|c| c.name != label && !c.unique && !c.personal)
        {
            match c.kind {
                ColumnType::Int | ColumnType::Float => cols.numeric.push(c.name.clone()),
                ColumnType::Bool | ColumnType::Category | ColumnType::String => {
                    cols.categorical.push(c.name.clone());
                }
                ColumnType::Date => {}
            }
        }
        Ok(cols)
    }
}

struct Prepared<'a> {
    frame: &'a Frame,
    labels: Vec<Box<str>>,
    classes: Vec<Box<str>>,
    /// Class index per row.
    y: Vec<usize>,
    numeric: Vec<(String, Vec<f64>)>,
    categorical: Vec<(String, &'a [Option<Box<str>>])>,
}

fn prepare<'a>(frame: &'a Frame, cols: &Columns) -> Result<Prepared<'a>, String> {
    let li = frame
        .index(&cols.label)
        .ok_or_else(|| format!("the table has no label column {:?}", cols.label))?;
    let labels: Vec<Box<str>> = frame
        .columns
        .get(li)
        .map(|c| c.iter().map(|v| v.clone().unwrap_or_default()).collect())
        .unwrap_or_default();
    let mut classes: Vec<Box<str>> = labels.clone();
    classes.sort();
    classes.dedup();
    let y = labels
        .iter()
        .map(|l| classes.binary_search(l).unwrap_or(0))
        .collect();
    let mut numeric = Vec::new();
    for n in &cols.numeric {
        let i = frame.index(n).ok_or_else(|| format!("no column {n:?}"))?;
        let v = frame
            .numeric(i, true)
            .ok_or_else(|| format!("column {n:?} is not numeric"))?;
        numeric.push((n.clone(), v));
    }
    let mut categorical = Vec::new();
    for n in &cols.categorical {
        let i = frame.index(n).ok_or_else(|| format!("no column {n:?}"))?;
        categorical.push((
            n.clone(),
            frame.columns.get(i).map_or(&[][..], Vec::as_slice),
        ));
    }
    Ok(Prepared {
        frame,
        labels,
        classes,
        y,
        numeric,
        categorical,
    })
}

/// Runs every check on `current`, and those needing one against `reference`.
///
/// # Errors
/// A message when a named column is missing or a numeric column holds text.
pub fn check(
    current: &Frame,
    reference: Option<&Frame>,
    cols: &Columns,
) -> Result<PoisonReport, ColumnError> {
    let cur = prepare(current, cols)?;
    let refp = reference.map(|r| prepare(r, cols)).transpose()?;
    let mut checks = Vec::new();
    let skipped = |id: &'static str| CheckResult {
        id,
        severity: Severity::Pass,
        summary: "skipped: needs --reference".into(),
        details: json!({"skipped": true}),
    };
    checks.push(refp.as_ref().map_or_else(
        || skipped("label-distribution"),
        |r| label_distribution(&cur, r),
    ));
    let (conflicts, dups) = duplicates(&cur);
    checks.push(conflicts);
    checks.push(dups);
    checks.push(flood(&cur));
    checks.push(class_outliers(&cur));
    checks.push(
        refp.as_ref()
            .map_or_else(|| skipped("feature-shift"), |r| feature_shift(&cur, r)),
    );
    checks.push(refp.as_ref().map_or_else(
        || skipped("class-conditional-shift"),
        |r| class_shift(&cur, r),
    ));
    checks.push(backdoor(&cur, refp.as_ref()));
    Ok(PoisonReport {
        rows: current.rows(),
        reference_rows: reference.map(Frame::rows),
        label: cols.label.clone(),
        checks,
    })
}

#[allow(clippy::cast_precision_loss)]
fn share(n: usize, of: usize) -> f64 {
    if of == 0 { 0.0 } else { n as f64 / of as f64 }
}

fn class_counts<'p>(p: &'p Prepared<'_>) -> BTreeMap<&'p str, usize> {
    let mut m = BTreeMap::new();
    for l in &p.labels {
        *m.entry(&**l).or_default() += 1;
    }
    m
}

#[allow(clippy::cast_precision_loss)]
fn label_distribution(cur: &Prepared<'_>, r: &Prepared<'_>) -> CheckResult {
    let (cc, rc) = (class_counts(cur), class_counts(r));
    let (n, nr) = (cur.labels.len(), r.labels.len());
    let mut chi2 = 0.0;
    let mut max_diff = 0.0f64;
    let mut max_ratio = 1.0f64;
    let mut shares = serde_json::Map::new();
    let classes: std::collections::BTreeSet<&str> = cc.keys().chain(rc.keys()).copied().collect();
    for c in &classes {
        let o = cc.get(c).copied().unwrap_or(0);
        let rs = share(rc.get(c).copied().unwrap_or(0), nr).max(0.5 / nr.max(1) as f64);
        let cs = share(o, n);
        let e = rs * n as f64;
        chi2 += (o as f64 - e).powi(2) / e;
        max_diff = max_diff.max((cs - rs).abs());
        max_ratio = max_ratio.max((cs.max(1e-9) / rs).max(rs / cs.max(1e-9)).min(1e9));
        shares.insert((*c).to_owned(), json!({"reference": rs, "current": cs}));
    }
    let dof = classes.len().saturating_sub(1).max(1);
    let p = chi2_sf(chi2, dof as f64);
    let severity = if p < 1e-3 && (max_diff >= 0.10 || (max_ratio >= 1.5 && max_diff >= 0.03)) {
        Severity::High
    } else if p < 1e-3 && max_diff >= 0.03 {
        Severity::Medium
    } else {
        Severity::Pass
    };
    CheckResult {
        id: "label-distribution",
        severity,
        summary: format!(
            "chi-square {chi2:.2} on {dof} degrees of freedom, p = {p:.3e}; largest share change {max_diff:.3}"
        ),
        details: json!({"chi2": chi2, "dof": dof, "p_value": p, "max_share_change": max_diff, "max_ratio": max_ratio, "shares": shares}),
    }
}

/// The feature key of row `r` (numeric features exact, or quantised when `widths` is given).
fn row_key(p: &Prepared<'_>, r: usize, widths: Option<&[f64]>) -> String {
    let mut k = String::new();
    for (i, (_, v)) in p.numeric.iter().enumerate() {
        let x = v.get(r).copied().unwrap_or(f64::NAN);
        match widths.and_then(|w| w.get(i)) {
            Some(&w) if w > 0.0 && x.is_finite() => k.push_str(&format!("{}", (x / w).round())),
            _ => k.push_str(&format!("{x:?}")),
        }
        k.push('\u{1f}');
    }
    for (_, c) in &p.categorical {
        k.push_str(c.get(r).and_then(|v| v.as_deref()).unwrap_or("\u{0}"));
        k.push('\u{1f}');
    }
    k
}

fn duplicates(p: &Prepared<'_>) -> (CheckResult, CheckResult) {
    let n = p.labels.len();
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for r in 0..n {
        groups.entry(row_key(p, r, None)).or_default().push(r);
    }
    let mut conflict_rows = 0usize;
    let mut conflict_groups = 0usize;
    let mut exact_extra = 0usize;
    let mut examples = Vec::new();
    for rows in groups.values().filter(|g| g.len() > 1) {
        let mut by_label: HashMap<usize, usize> = HashMap::new();
        for &r in rows {
            *by_label
                .entry(p.y.get(r).copied().unwrap_or(0))
                .or_default() += 1;
        }
        exact_extra += by_label.values().map(|c| c - 1).sum::<usize>();
        if by_label.len() > 1 {
            conflict_groups += 1;
            conflict_rows += rows.len();
            if examples.len() < 5 {
                examples.push(rows.iter().take(5).map(|r| r + 1).collect::<Vec<_>>());
            }
        }
    }
    let cs = share(conflict_rows, n);
    let conflicts = CheckResult {
        id: "conflicting-duplicates",
        severity: if conflict_rows >= 10 && cs >= 0.005 {
            Severity::High
        } else if conflict_groups > 0 {
            Severity::Medium
        } else {
            Severity::Pass
        },
        summary: format!(
            "{conflict_rows} rows in {conflict_groups} groups of identical features with different labels"
        ),
        details: json!({"rows": conflict_rows, "groups": conflict_groups, "share": cs, "example_rows": examples}),
    };
    let ds = share(exact_extra, n);
    let dups = CheckResult {
        id: "duplicate-rows",
        severity: if ds >= 0.20 {
            Severity::High
        } else if ds >= 0.05 {
            Severity::Medium
        } else {
            Severity::Pass
        },
        summary: format!(
            "{exact_extra} rows repeat an earlier row exactly ({:.1}%)",
            ds * 100.0
        ),
        details: json!({"extra_copies": exact_extra, "share": ds}),
    };
    (conflicts, dups)
}

#[allow(clippy::cast_precision_loss)]
fn std_dev(v: &[f64]) -> f64 {
    let xs: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if xs.len() < 2 {
        return 0.0;
    }
    let m = xs.iter().sum::<f64>() / xs.len() as f64;
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

#[allow(clippy::cast_precision_loss)]
fn flood(p: &Prepared<'_>) -> CheckResult {
    let n = p.labels.len();
    let widths: Vec<f64> = p.numeric.iter().map(|(_, v)| std_dev(v) * 1e-3).collect();
    let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
    for r in 0..n {
        groups
            .entry(row_key(p, r, Some(&widths)))
            .or_default()
            .push(r);
    }
    let biggest = groups
        .values()
        .max_by_key(|g| g.len())
        .cloned()
        .unwrap_or_default();
    let g = biggest.len();
    let span = match (biggest.first(), biggest.last()) {
        (Some(a), Some(b)) => b - a + 1,
        _ => 0,
    };
    let high = (20.0f64).max(0.02 * n as f64);
    let medium = (10.0f64).max(0.01 * n as f64);
    let severity = if g as f64 >= high {
        Severity::High
    } else if g as f64 >= medium {
        Severity::Medium
    } else {
        Severity::Pass
    };
    CheckResult {
        id: "near-duplicate-flood",
        severity,
        summary: format!(
            "largest group of near-identical rows: {g} ({:.1}% of the table{})",
            share(g, n) * 100.0,
            if g > 1 && span <= 2 * g {
                ", in one burst"
            } else {
                ""
            }
        ),
        details: json!({"largest_group": g, "share": share(g, n), "first_row": biggest.first().map(|r| r + 1), "rows_spanned": span}),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    rampart_ml::drift::quantile_sorted(&v, 0.5)
}

#[allow(clippy::cast_possible_truncation)]
fn class_outliers(p: &Prepared<'_>) -> CheckResult {
    let mut per_class = serde_json::Map::new();
    let mut worst = Severity::Pass;
    for (ci, class) in p.classes.iter().enumerate() {
        let rows: Vec<usize> = (0..p.y.len())
            .filter(|&r| p.y.get(r) == Some(&ci))
            .collect();
        if rows.len() < 20 || p.numeric.is_empty() {
            continue;
        }
        let mut outlier = vec![false; rows.len()];
        for (_, v) in &p.numeric {
            let xs: Vec<f64> = rows
                .iter()
                .filter_map(|&r| v.get(r).copied())
                .filter(|x| x.is_finite())
                .collect();
            let med = median(xs.clone());
            let mad = median(xs.iter().map(|x| (x - med).abs()).collect());
            if mad <= 0.0 {
                continue;
            }
            for (k, &r) in rows.iter().enumerate() {
                let x = v.get(r).copied().unwrap_or(f64::NAN);
                if x.is_finite()
                    && 0.6745 * (x - med).abs() / mad > 6.0
                    && let Some(o) = outlier.get_mut(k)
                {
                    *o = true;
                }
            }
        }
        let z_count = outlier.iter().filter(|&&o| o).count();
        let if_count = if rows.len() >= 100 {
            isolation_count(p, &rows)
        } else {
            0
        };
        let zs = share(z_count, rows.len());
        let is = share(if_count, rows.len());
        let top = zs.max(is);
        let count = z_count.max(if_count);
        let sev = if count >= 5 && top > 0.10 {
            Severity::High
        } else if count >= 5 && top > 0.02 {
            Severity::Medium
        } else {
            Severity::Pass
        };
        worst = worst.max(sev);
        per_class.insert(
            class.to_string(),
            json!({"rows": rows.len(), "robust_z_outliers": z_count, "isolation_forest_outliers": if_count, "severity": sev}),
        );
    }
    CheckResult {
        id: "class-outliers",
        severity: worst,
        summary: format!(
            "per-class outliers (robust z > 6, isolation score > 0.7): {}",
            per_class
                .iter()
                .map(|(k, v)| format!(
                    "{k}: {}/{}",
                    v["robust_z_outliers"]
                        .as_u64()
                        .unwrap_or(0)
                        .max(v["isolation_forest_outliers"].as_u64().unwrap_or(0)),
                    v["rows"]
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        details: Value::Object(per_class),
    }
}

#[allow(clippy::cast_possible_truncation)]
fn isolation_count(p: &Prepared<'_>, rows: &[usize]) -> usize {
    let d = p.numeric.len();
    let mut data = Vec::with_capacity(rows.len() * d);
    for &r in rows {
        for (_, v) in &p.numeric {
            let x = v.get(r).copied().unwrap_or(0.0);
            data.push(if x.is_finite() { x as f32 } else { 0.0 });
        }
    }
    let Ok(m) = Matrix::new(rows.len(), d, data) else {
        return 0;
    };
    let Ok(forest) = IsolationForest::fit(&m, &IsolationParams::default()) else {
        return 0;
    };
    forest.score(&m).iter().filter(|&&s| s > 0.7).count()
}

fn feature_shift(cur: &Prepared<'_>, r: &Prepared<'_>) -> CheckResult {
    let mut cols = serde_json::Map::new();
    let mut worst = Severity::Pass;
    for ((name, c), (_, rv)) in cur.numeric.iter().zip(&r.numeric) {
        let (c, rv): (Vec<f64>, Vec<f64>) = (
            c.iter().copied().filter(|x| x.is_finite()).collect(),
            rv.iter().copied().filter(|x| x.is_finite()).collect(),
        );
        if c.is_empty() || rv.is_empty() {
            continue;
        }
        let psi = numeric_psi(&rv, &c, Binning::Deciles);
        let ks = rampart_ml::ks::ks_2samp(&rv, &c).ok();
        let p = ks.map_or(1.0, |k| k.p_value);
        let sev = if psi >= 0.25 {
            Severity::High
        } else if psi >= 0.1 && p < 1e-3 {
            Severity::Medium
        } else {
            Severity::Pass
        };
        worst = worst.max(sev);
        cols.insert(name.clone(), json!({"psi": psi, "ks_statistic": ks.map(|k| k.statistic), "ks_pvalue": p, "severity": sev}));
    }
    for ((name, c), (_, rv)) in cur.categorical.iter().zip(&r.categorical) {
        let psi = rampart_ml::drift::psi_categorical(rv, c);
        let sev = if psi >= 0.25 {
            Severity::High
        } else {
            Severity::Pass
        };
        worst = worst.max(sev);
        cols.insert(name.clone(), json!({"psi": psi, "severity": sev}));
    }
    let shifted: Vec<&String> = cols
        .iter()
        .filter(|(_, v)| v["severity"] != json!("pass"))
        .map(|(k, _)| k)
        .collect();
    CheckResult {
        id: "feature-shift",
        severity: worst,
        summary: if shifted.is_empty() {
            "no feature moved against the reference (PSI over its deciles, KS)".into()
        } else {
            format!(
                "features moved against the reference: {}",
                shifted
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        details: Value::Object(cols),
    }
}

fn class_shift(cur: &Prepared<'_>, r: &Prepared<'_>) -> CheckResult {
    let mut hits = Vec::new();
    let mut details = serde_json::Map::new();
    for class in &cur.classes {
        let ci = cur.classes.iter().position(|c| c == class);
        let ri = r.classes.iter().position(|c| c == class);
        let (Some(ci), Some(ri)) = (ci, ri) else {
            continue;
        };
        let cur_rows: Vec<usize> = (0..cur.y.len())
            .filter(|&i| cur.y.get(i) == Some(&ci))
            .collect();
        let ref_rows: Vec<usize> = (0..r.y.len())
            .filter(|&i| r.y.get(i) == Some(&ri))
            .collect();
        if cur_rows.len() < 50 || ref_rows.len() < 50 {
            continue;
        }
        let mut per = serde_json::Map::new();
        for ((name, c), (_, rv)) in cur.numeric.iter().zip(&r.numeric) {
            let a: Vec<f64> = ref_rows
                .iter()
                .filter_map(|&i| rv.get(i).copied())
                .filter(|x| x.is_finite())
                .collect();
            let b: Vec<f64> = cur_rows
                .iter()
                .filter_map(|&i| c.get(i).copied())
                .filter(|x| x.is_finite())
                .collect();
            if a.is_empty() || b.is_empty() {
                continue;
            }
            let whole_c: Vec<f64> = c.iter().copied().filter(|x| x.is_finite()).collect();
            let whole_r: Vec<f64> = rv.iter().copied().filter(|x| x.is_finite()).collect();
            let psi = numeric_psi(&a, &b, Binning::Deciles);
            let p = rampart_ml::ks::ks_2samp(&a, &b).map_or(1.0, |k| k.p_value);
            let whole = numeric_psi(&whole_r, &whole_c, Binning::Deciles);
            per.insert(
                name.clone(),
                json!({"psi": psi, "ks_pvalue": p, "whole_table_psi": whole}),
            );
            if psi >= 0.1 && p < 1e-3 && whole < 0.1 {
                hits.push(format!("{class}/{name} (PSI {psi:.2})"));
            }
        }
        details.insert(class.to_string(), Value::Object(per));
    }
    CheckResult {
        id: "class-conditional-shift",
        severity: if hits.is_empty() {
            Severity::Pass
        } else {
            Severity::High
        },
        summary: if hits.is_empty() {
            "no class moved on its own against the reference".into()
        } else {
            format!(
                "classes whose features moved while the table's did not (flipped labels?): {}",
                hits.join(", ")
            )
        },
        details: Value::Object(details),
    }
}

/// A column's cells.
type Cells<'a> = &'a [Option<Box<str>>];

/// Rows, and rows per class.
type ClassCounts = (usize, HashMap<usize, usize>);

/// Per feature value: rows, and rows per class.
type ValueStats = HashMap<Box<str>, ClassCounts>;

fn value_stats(p: &Prepared<'_>, values: &[Option<Box<str>>]) -> ValueStats {
    let mut m: ValueStats = HashMap::new();
    for (r, v) in values.iter().enumerate() {
        let Some(v) = v else { continue };
        let e = m.entry(v.clone()).or_default();
        e.0 += 1;
        *e.1.entry(p.y.get(r).copied().unwrap_or(0)).or_default() += 1;
    }
    m
}

#[allow(clippy::cast_precision_loss)]
fn backdoor(cur: &Prepared<'_>, r: Option<&Prepared<'_>>) -> CheckResult {
    let n = cur.labels.len();
    let counts: Vec<usize> = (0..cur.classes.len())
        .map(|c| cur.y.iter().filter(|&&y| y == c).count())
        .collect();
    let min_support = (10.0f64).max(0.002 * n as f64);
    let mut found = Vec::new();
    let mut worst = Severity::Pass;
    // Categorical columns, and numeric ones through their text (repeated exact values).
    let mut columns: Vec<(&str, Cells<'_>, bool)> = Vec::new();
    for (name, col) in &cur.categorical {
        columns.push((name, col, false));
    }
    for (name, _) in &cur.numeric {
        if let Some(i) = cur.frame.index(name) {
            let col = cur.frame.columns.get(i).map_or(&[][..], Vec::as_slice);
            let distinct: std::collections::HashSet<&Option<Box<str>>> = col.iter().collect();
            columns.push((name, col, distinct.len() * 2 > col.len()));
        }
    }
    for (name, col, continuous) in columns {
        let stats = value_stats(cur, col);
        let ref_stats = r.and_then(|r| {
            r.frame
                .index(name)
                .and_then(|i| r.frame.columns.get(i))
                .map(|c| (value_stats(r, c), r))
        });
        for (value, (support, by_class)) in &stats {
            let s = *support as f64;
            if s < min_support || s > 0.10 * n as f64 {
                continue;
            }
            let Some((&class, &k)) = by_class.iter().max_by_key(|(_, k)| **k) else {
                continue;
            };
            let purity = k as f64 / s;
            let base = share(counts.get(class).copied().unwrap_or(0), n);
            if purity < 0.95 || base > 0.63 || purity / base.max(1e-9) < 1.5 {
                continue;
            }
            let label = cur.classes.get(class).map_or("?", |c| &**c);
            // The same value in the reference: the same purity there means a real pattern.
            let in_ref = ref_stats.as_ref().map(|(rs, rp)| {
                rs.get(value).map_or(0.0, |(rsup, rbc)| {
                    let rc = rp.classes.iter().position(|c| &**c == label);
                    rc.and_then(|rc| rbc.get(&rc))
                        .map_or(0.0, |&rk| rk as f64 / *rsup as f64)
                })
            });
            let sev = match in_ref {
                Some(rp) if rp >= 0.9 => Severity::Low,
                Some(0.0) => Severity::High,
                _ if continuous => Severity::High,
                _ => Severity::Medium,
            };
            worst = worst.max(sev);
            found.push(json!({
                "column": name, "value": &**value, "rows": support, "label": label,
                "purity": purity, "label_base_rate": base, "reference_purity": in_ref,
                "continuous_column": continuous, "severity": sev,
            }));
        }
    }
    for t in pair_triggers(cur, &counts, min_support) {
        worst = worst.max(Severity::Medium);
        found.push(t);
    }
    found.sort_by(|a, b| b["rows"].as_u64().cmp(&a["rows"].as_u64()));
    found.truncate(20);
    CheckResult {
        id: "backdoor-trigger",
        severity: worst,
        summary: if found.is_empty() {
            "no rare value carries one label almost always".into()
        } else {
            format!(
                "rare values that almost always carry one label: {}",
                found
                    .iter()
                    .take(5)
                    .map(|f| format!(
                        "{}={} → {} ({} rows)",
                        f["column"].as_str().unwrap_or(""),
                        f["value"].as_str().unwrap_or(""),
                        f["label"].as_str().unwrap_or(""),
                        f["rows"]
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        details: json!({"triggers": found}),
    }
}

/// Columns with more distinct values than this are left out of the pair search.
const PAIR_MAX_DISTINCT: usize = 50;
/// At most this many categorical columns take part in the pair search.
const PAIR_MAX_COLUMNS: usize = 20;
/// The pair search looks at an evenly spaced sample of at most this many rows.
const PAIR_MAX_ROWS: usize = 200_000;

/// Value combinations of two categorical columns that almost always carry one label while
/// neither value does on its own: a trigger made of two ordinary
/// values (one that is 95% pure alone is the single-value finding). Same support and purity
/// rules as single values; `medium`.
#[allow(clippy::cast_precision_loss)]
fn pair_triggers(p: &Prepared<'_>, counts: &[usize], min_support: f64) -> Vec<Value> {
    let n = p.labels.len();
    let cols: Vec<(&str, Cells<'_>, ValueStats)> = p
        .categorical
        .iter()
        .map(|(name, col)| (name.as_str(), *col, value_stats(p, col)))
        .filter(|(_, _, st)| st.len() <= PAIR_MAX_DISTINCT)
        .take(PAIR_MAX_COLUMNS)
        .collect();
    let stride = n.div_ceil(PAIR_MAX_ROWS).max(1);
    let scale = stride as f64;
    let mut out = Vec::new();
    for (i, (na, ca, sa)) in cols.iter().enumerate() {
        for (nb, cb, sb) in cols.iter().skip(i + 1) {
            let mut m: HashMap<(&str, &str), ClassCounts> = HashMap::new();
            for r in (0..n).step_by(stride) {
                let (Some(Some(a)), Some(Some(b))) = (ca.get(r), cb.get(r)) else {
                    continue;
                };
                let e = m.entry((&**a, &**b)).or_default();
                e.0 += 1;
                *e.1.entry(p.y.get(r).copied().unwrap_or(0)).or_default() += 1;
            }
            for ((a, b), (support, by_class)) in &m {
                let s = *support as f64 * scale;
                if s < min_support || s > 0.10 * n as f64 {
                    continue;
                }
                let Some((&class, &k)) = by_class.iter().max_by_key(|(_, k)| **k) else {
                    continue;
                };
                let purity = k as f64 / *support as f64;
                let base = share(counts.get(class).copied().unwrap_or(0), n);
                if purity < 0.95 || base > 0.63 || purity / base.max(1e-9) < 1.5 {
                    continue;
                }
                let alone = |st: &ValueStats, v: &str| {
                    st.get(v).map_or(0.0, |(sup, bc)| {
                        bc.get(&class).map_or(0.0, |&c| c as f64 / *sup as f64)
                    })
                };
                if alone(sa, a) >= 0.95 || alone(sb, b) >= 0.95 {
                    continue;
                }
                let label = p.classes.get(class).map_or("?", |c| &**c);
                out.push(json!({
                    "column": format!("{na}+{nb}"), "value": format!("{a}+{b}"),
                    "rows": support * stride, "label": label, "purity": purity,
                    "label_base_rate": base, "severity": Severity::Medium,
                }));
            }
        }
    }
    out
}

/// The chi-square survival function: Q(k/2, x/2), the regularised upper incomplete gamma.
#[must_use]
pub fn chi2_sf(x: f64, k: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    gamma_q(k / 2.0, x / 2.0)
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos approximation (g = 7, n = 9), accurate to ~1e-15 for x > 0.
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let mut a = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

fn gamma_q(a: f64, x: f64) -> f64 {
    if x < a + 1.0 {
        // Series for P, then Q = 1 − P.
        let mut sum = 1.0 / a;
        let mut term = sum;
        let mut ap = a;
        for _ in 0..1000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        1.0 - (sum.ln() - x + a * x.ln() - ln_gamma(a)).exp()
    } else {
        // Lentz's continued fraction for Q.
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -f64::from(i) * (f64::from(i) - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (-x + a * x.ln() - ln_gamma(a)).exp() * h
    }
}

#[cfg(test)]
mod tests;
