//! The run report: the JSON document the binary assembles, and [`html`], one self-contained
//! page of it (inline CSS and SVG; no script, no font, no request leaves the page).
//!
//! The JSON's members, each optional except `pipeline`, `outcome` and `steps`:
//! `pipeline`, `run`, `spec`, `home`, `started`, `finished`, `outcome` (`ok` | `failed`),
//! `failed_step`, `reason`, `steps` (`[{name, status, seconds, summary}]`), `data`
//! (`source`, `dataset`, `counts`, `pii.columns`, `checks`), `training` (`metrics` with
//! `confusion_matrix`, `classes`, `roc_curve`, `roc_auc`…, `run_dir`, `sandbox`), `model`
//! (`root`, `files`, `signature`, `provenance`), `registry` (`name`, `version`, `stage`,
//! `gates`) and `audit` (the run's audit records).

use std::fmt::Write as _;

use serde_json::Value;

/// Text safe inside HTML elements and attribute values.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.as_f64().map_or_else(
            || n.to_string(),
            |f| {
                if n.is_f64() {
                    format!("{f:.4}")
                } else {
                    n.to_string()
                }
            },
        ),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        // An object reads as `key: value; …` (one level; nested values as JSON).
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::Object(_) | Value::Array(_) => format!("{k}: {v}"),
                v => format!("{k}: {}", text(v)),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Value::Array(_) => v.to_string(),
    }
}

fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut cur = v;
    for p in path {
        cur = cur.get(p).unwrap_or(&Value::Null);
    }
    cur
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#1d2330;padding:0 1em}\
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #d5dae3;padding-bottom:.2em}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d5dae3;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#f3f5f8}code{font:12px ui-monospace,monospace;word-break:break-all}.ok{color:#116329;font-weight:600}\
.failed,.fail{color:#b3261e;font-weight:600}.reused{color:#3451b2;font-weight:600}.muted{color:#6b7385}\
.banner{padding:.7em 1em;border-radius:6px;margin:1em 0}.banner.ok{background:#e6f4ea}.banner.failed{background:#fbe9e7}\
.figs{display:flex;gap:2em;flex-wrap:wrap}";

/// The report as one HTML page.
#[must_use]
pub fn html(r: &Value) -> String {
    let mut h = String::new();
    let name = text(get(r, &["pipeline"]));
    let outcome = get(r, &["outcome"]).as_str().unwrap_or("failed");
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
<title>rampart pipeline {n}</title><style>{STYLE}</style></head><body>\
<h1>Pipeline <code>{n}</code></h1><div class=\"muted\">run {run} · {start} → {end} · spec <code>{spec}</code> · home <code>{home}</code></div>",
        n = escape(&name),
        run = escape(&text(get(r, &["run"]))),
        start = escape(&text(get(r, &["started"]))),
        end = escape(&text(get(r, &["finished"]))),
        spec = escape(&text(get(r, &["spec"]))),
        home = escape(&text(get(r, &["home"]))),
    );
    if outcome == "ok" {
        let _ = write!(
            h,
            "<div class=\"banner ok\"><b>Done.</b> {} reached <b>{}</b>.</div>",
            escape(&format!(
                "{}@{}",
                text(get(r, &["registry", "name"])),
                text(get(r, &["registry", "version"]))
            )),
            escape(&text(get(r, &["registry", "stage"])))
        );
    } else {
        let _ = write!(
            h,
            "<div class=\"banner failed\"><b>Failed at {}.</b> {}</div>",
            escape(&text(get(r, &["failed_step"]))),
            escape(&text(get(r, &["reason"])))
        );
    }
    steps(&mut h, r);
    data(&mut h, r);
    training(&mut h, r);
    model(&mut h, r);
    registry(&mut h, r);
    audit(&mut h, r);
    h.push_str("</body></html>\n");
    h
}

fn steps(h: &mut String, r: &Value) {
    h.push_str(
        "<h2>Steps</h2><table><tr><th>step</th><th>status</th><th>seconds</th><th>what</th></tr>",
    );
    for s in get(r, &["steps"]).as_array().into_iter().flatten() {
        let status = get(s, &["status"]).as_str().unwrap_or("not-run");
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&text(get(s, &["name"]))),
            escape(status),
            escape(status),
            get(s, &["seconds"])
                .as_f64()
                .map_or_else(String::new, |x| format!("{x:.1}")),
            escape(&text(get(s, &["summary"])))
        );
    }
    h.push_str("</table>");
}

fn data(h: &mut String, r: &Value) {
    let d = get(r, &["data"]);
    if d.is_null() {
        return;
    }
    let c = get(d, &["counts"]);
    let _ = write!(
        h,
        "<h2>Data</h2><table><tr><th>source</th><td><code>{}</code></td></tr>\
<tr><th>source digest</th><td><code>{}</code> ({})</td></tr>\
<tr><th>ingested dataset</th><td><code>{}</code></td></tr>\
<tr><th>rows</th><td>{} read = {} accepted + {} quarantined{}</td></tr></table>",
        escape(&text(get(d, &["source", "path"]))),
        escape(&text(get(d, &["source", "sha256"]))),
        escape(&text(get(d, &["source", "integrity"]))),
        escape(&text(get(d, &["dataset"]))),
        escape(&text(get(c, &["rows_read"]))),
        escape(&text(get(c, &["accepted"]))),
        escape(&text(get(c, &["rejected"]))),
        if get(c, &["reconciled"]).as_bool() == Some(true) {
            " (reconciled)"
        } else {
            ""
        }
    );
    if let Some(by) = get(c, &["by_column"]).as_object().filter(|m| !m.is_empty()) {
        h.push_str("<h3>Rejected rows by column and rule</h3><table><tr><th>column</th><th>rule</th><th>rows</th></tr>");
        for (col, rules) in by {
            for (rule, n) in rules.as_object().into_iter().flatten() {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(col),
                    escape(rule),
                    escape(&text(n))
                );
            }
        }
        h.push_str("</table>");
    }
    if let Some(cols) = get(d, &["pii", "columns"]).as_array() {
        let _ = write!(
            h,
            "<h3>Personal data found and redacted</h3><p class=\"muted\">{} findings, {} values rewritten. Samples are masked; no raw value is in this report.</p>\
<table><tr><th>column</th><th>entity</th><th>findings</th><th>rows</th><th>masked samples</th></tr>",
            escape(&text(get(d, &["pii", "findings"]))),
            escape(&text(get(d, &["pii", "redacted"])))
        );
        for col in cols {
            for (entity, st) in get(col, &["entities"]).as_object().into_iter().flatten() {
                let samples: Vec<String> = get(st, &["samples"])
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|s| format!("<code>{}</code>", escape(&text(s))))
                    .collect();
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&text(get(col, &["column"]))),
                    escape(entity),
                    escape(&text(get(st, &["count"]))),
                    escape(&text(get(st, &["rows"]))),
                    samples.join(" ")
                );
            }
        }
        h.push_str("</table>");
    }
    if let Some(checks) = get(d, &["checks", "checks"]).as_array() {
        h.push_str("<h3>Poisoning checks</h3><table><tr><th>check</th><th>severity</th><th>result</th></tr>");
        for c in checks {
            let sev = get(c, &["severity"]).as_str().unwrap_or("");
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
                escape(&text(get(c, &["id"]))),
                if sev == "pass" { "ok" } else { "fail" },
                escape(sev),
                escape(&text(get(c, &["summary"])))
            );
        }
        h.push_str("</table>");
    }
}

fn training(h: &mut String, r: &Value) {
    let t = get(r, &["training"]);
    if t.is_null() {
        return;
    }
    let m = get(t, &["metrics"]);
    h.push_str("<h2>Training</h2><table>");
    for (k, label) in [
        ("kind", "model"),
        ("rows", "training rows"),
        ("features", "features"),
        ("holdout", "held out"),
        ("accuracy", "accuracy"),
        ("roc_auc", "ROC AUC"),
        ("f1_macro", "macro F1"),
        ("log_loss", "log loss"),
    ] {
        let v = get(m, &[k]);
        if !v.is_null() {
            let _ = write!(h, "<tr><th>{label}</th><td>{}</td></tr>", escape(&text(v)));
        }
    }
    let _ = write!(
        h,
        "<tr><th>sandbox</th><td>{}</td></tr><tr><th>run directory</th><td><code>{}</code></td></tr></table><div class=\"figs\">",
        escape(&text(get(t, &["sandbox"]))),
        escape(&text(get(t, &["run_dir"])))
    );
    if let Some(svg) = confusion_svg(get(m, &["confusion_matrix"]), get(m, &["classes"])) {
        h.push_str("<figure><figcaption>Confusion matrix (held-out rows; rows: truth, columns: prediction)</figcaption>");
        h.push_str(&svg);
        h.push_str("</figure>");
    }
    if let Some(svg) = roc_svg(get(m, &["roc_curve"]), get(m, &["roc_auc"]).as_f64()) {
        h.push_str("<figure><figcaption>ROC curve (held-out rows)</figcaption>");
        h.push_str(&svg);
        h.push_str("</figure>");
    }
    h.push_str("</div>");
}

/// The confusion matrix as an SVG grid, cells shaded by their share of their row.
#[must_use]
pub fn confusion_svg(matrix: &Value, classes: &Value) -> Option<String> {
    let rows: Vec<Vec<f64>> = matrix
        .as_array()?
        .iter()
        .map(|r| {
            r.as_array()
                .map(|c| c.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        })
        .collect();
    let k = rows.len();
    if k == 0 || k > 50 || rows.iter().any(|r| r.len() != k) {
        return None;
    }
    let names: Vec<String> = (0..k)
        .map(|i| {
            classes
                .get(i)
                .map_or_else(|| i.to_string(), text)
                .chars()
                .take(14)
                .collect()
        })
        .collect();
    let cell = 64.0;
    let pad = 90.0;
    #[allow(clippy::cast_precision_loss)]
    let size = pad + cell * k as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{w}\" viewBox=\"0 0 {w} {w}\" role=\"img\" aria-label=\"confusion matrix\" font-size=\"12\">",
        w = size + 10.0
    );
    for (i, row) in rows.iter().enumerate() {
        let total: f64 = row.iter().sum();
        #[allow(clippy::cast_precision_loss)]
        let y = pad + cell * i as f64;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            pad - 6.0,
            y + cell / 2.0 + 4.0,
            escape(names.get(i).map_or("", String::as_str))
        );
        for (j, v) in row.iter().enumerate() {
            #[allow(clippy::cast_precision_loss)]
            let x = pad + cell * j as f64;
            let share = if total > 0.0 { v / total } else { 0.0 };
            let fill = if i == j {
                format!("rgba(17,99,41,{:.3})", 0.12 + 0.78 * share)
            } else {
                format!("rgba(179,38,30,{:.3})", 0.08 + 0.8 * share)
            };
            let _ = write!(
                s,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{cell}\" height=\"{cell}\" fill=\"{fill}\" stroke=\"#fff\"/>\
<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"600\">{v}</text>",
                x + cell / 2.0,
                y + cell / 2.0 + 4.0
            );
        }
    }
    for (j, n) in names.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let x = pad + cell * j as f64 + cell / 2.0;
        let _ = write!(
            s,
            "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            pad - 8.0,
            escape(n)
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"16\" text-anchor=\"middle\" fill=\"#6b7385\">predicted</text><text x=\"12\" y=\"{}\" fill=\"#6b7385\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">true</text></svg>",
        pad + cell * f64::from(u32::try_from(k).unwrap_or(1)) / 2.0,
        pad + 40.0,
        pad + 40.0
    );
    Some(s)
}

/// The ROC curve as an SVG plot, with the chance diagonal.
#[must_use]
pub fn roc_svg(curve: &Value, auc: Option<f64>) -> Option<String> {
    let pts: Vec<(f64, f64)> = curve
        .as_array()?
        .iter()
        .filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?)))
        .filter(|(x, y)| (0.0..=1.0).contains(x) && (0.0..=1.0).contains(y))
        .collect();
    if pts.len() < 2 {
        return None;
    }
    let (ox, oy, side) = (45.0, 15.0, 260.0);
    let map = |(x, y): (f64, f64)| (ox + x * side, oy + (1.0 - y) * side);
    let line: Vec<String> = pts
        .iter()
        .map(|&p| {
            let (x, y) = map(p);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"330\" height=\"320\" viewBox=\"0 0 330 320\" role=\"img\" aria-label=\"ROC curve\" font-size=\"12\">\
<rect x=\"{ox}\" y=\"{oy}\" width=\"{side}\" height=\"{side}\" fill=\"none\" stroke=\"#9aa3b5\"/>\
<line x1=\"{ox}\" y1=\"{}\" x2=\"{}\" y2=\"{oy}\" stroke=\"#9aa3b5\" stroke-dasharray=\"4 4\"/>\
<polyline fill=\"none\" stroke=\"#3451b2\" stroke-width=\"2\" points=\"{}\"/>",
        oy + side,
        ox + side,
        line.join(" ")
    );
    for t in [0.0, 0.5, 1.0] {
        let (x, _) = map((t, 0.0));
        let (_, y) = map((0.0, t));
        let _ = write!(
            s,
            "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{t}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{t}</text>",
            oy + side + 15.0,
            ox - 5.0,
            y + 4.0
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"312\" text-anchor=\"middle\" fill=\"#6b7385\">false positive rate</text>\
<text x=\"12\" y=\"{}\" fill=\"#6b7385\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">true positive rate</text>",
        ox + side / 2.0,
        oy + side / 2.0,
        oy + side / 2.0
    );
    if let Some(a) = auc {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">AUC {a:.3}</text>",
            ox + side - 8.0,
            oy + side - 10.0
        );
    }
    s.push_str("</svg>");
    Some(s)
}

fn model(h: &mut String, r: &Value) {
    let m = get(r, &["model"]);
    if m.is_null() {
        return;
    }
    h.push_str("<h2>Model, signature and provenance</h2><table>");
    let _ = write!(
        h,
        "<tr><th>model root digest (OMS)</th><td><code>{}</code></td></tr>",
        escape(&text(get(m, &["root"])))
    );
    for f in get(m, &["files"]).as_array().into_iter().flatten() {
        let _ = write!(
            h,
            "<tr><th>file</th><td><code>{}</code> <code>{}</code> ({} bytes)</td></tr>",
            escape(&text(get(f, &["name"]))),
            escape(&text(get(f, &["sha256"]))),
            escape(&text(get(f, &["size"])))
        );
    }
    let _ = write!(
        h,
        "<tr><th>signature</th><td><code>{}</code>, key <code>{}</code>: {}</td></tr>\
<tr><th>provenance</th><td><code>{}</code>: {}</td></tr>\
<tr><th>dataset in the provenance</th><td><code>{}</code></td></tr></table>",
        escape(&text(get(m, &["signature", "path"]))),
        escape(&text(get(m, &["signature", "key"]))),
        verified(get(m, &["signature", "verified"])),
        escape(&text(get(m, &["provenance", "path"]))),
        verified(get(m, &["provenance", "verified"])),
        escape(&text(get(m, &["provenance", "dataset"])))
    );
}

fn verified(v: &Value) -> &'static str {
    if v.as_bool() == Some(true) {
        "<span class=\"ok\">verified</span>"
    } else {
        "<span class=\"fail\">NOT verified</span>"
    }
}

fn registry(h: &mut String, r: &Value) {
    let g = get(r, &["registry"]);
    if g.is_null() {
        return;
    }
    let _ = write!(
        h,
        "<h2>Registry and gates</h2><p><code>{}@{}</code> is in <b>{}</b>.</p><table><tr><th>gate</th><th>result</th><th>detail</th></tr>",
        escape(&text(get(g, &["name"]))),
        escape(&text(get(g, &["version"]))),
        escape(&text(get(g, &["stage"])))
    );
    for gate in get(g, &["gates"]).as_array().into_iter().flatten() {
        let ok = get(gate, &["ok"]).as_bool() == Some(true);
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td></tr>",
            escape(&text(get(gate, &["gate"]))),
            if ok { "ok" } else { "fail" },
            if ok { "pass" } else { "FAIL" },
            escape(&text(get(gate, &["detail"])))
        );
    }
    h.push_str("</table>");
}

fn audit(h: &mut String, r: &Value) {
    let Some(records) = get(r, &["audit"]).as_array() else {
        return;
    };
    let _ = write!(
        h,
        "<h2>Audit records of this run</h2><p class=\"muted\">{} records; <code>rampart audit verify</code> checks the chain and its signed checkpoints.</p>\
<table><tr><th>seq</th><th>time</th><th>action</th><th>outcome</th><th>subject</th></tr>",
        records.len()
    );
    for rec in records {
        let subject = [
            get(rec, &["subject", "path"]),
            get(rec, &["subject", "digest"]),
        ]
        .iter()
        .filter(|v| !v.is_null())
        .map(|v| text(v))
        .collect::<Vec<_>>()
        .join(" ");
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            escape(&text(get(rec, &["seq"]))),
            escape(&text(get(rec, &["time"]))),
            escape(&text(get(rec, &["action"]))),
            escape(&text(get(rec, &["outcome"]))),
            escape(&subject)
        );
    }
    h.push_str("</table>");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::{confusion_svg, escape, html, roc_svg};

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn draws_the_figures() {
        let cm = confusion_svg(&json!([[50, 3], [7, 40]]), &json!(["no", "yes"])).unwrap();
        assert!(cm.starts_with("<svg") && cm.ends_with("</svg>"));
        assert_eq!(cm.matches("<rect").count(), 4);
        assert!(cm.contains(">40</text>") && cm.contains(">yes</text>"));
        assert!(confusion_svg(&json!([[1, 2], [3]]), &json!([])).is_none());
        let roc = roc_svg(&json!([[0.0, 0.0], [0.1, 0.6], [1.0, 1.0]]), Some(0.83)).unwrap();
        assert!(
            roc.contains("points=\"45.0,275.0 71.0,119.0 305.0,15.0\""),
            "{roc}"
        );
        assert!(roc.contains("AUC 0.830"));
        assert!(roc_svg(&json!([[0.0, 0.0]]), None).is_none());
    }

    #[test]
    fn page_is_self_contained_and_escaped() {
        let r = json!({
            "pipeline": "demo", "outcome": "failed", "failed_step": "ingest",
            "reason": "<script>alert(1)</script>",
            "steps": [{"name": "ingest", "status": "failed", "seconds": 0.5, "summary": "x"}],
            "data": {"pii": {"findings": 2, "redacted": 2, "columns": [{"column": "email", "entities": {"EMAIL": {"count": 2, "rows": 2, "samples": ["****@*******.*om"]}}}]}},
        });
        let page = html(&r);
        assert!(!page.contains("<script>"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("http://") || !page.contains("src=\"http"));
        assert!(!page.contains("<link") && !page.contains("<img"));
        assert!(page.contains("Failed at ingest."));
        assert!(page.contains("****@*******.*om"));
        assert!(page.contains("<td>0.5</td>"), "seconds to one decimal");
    }
}
