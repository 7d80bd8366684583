//! The `routes` and `dependencies` reports as a person reads them in a terminal
//! (`curl -H 'Accept: text/plain' …/debug/state/routes`, or `?format=text`): one line
//! per entry, the columns that answer "which one, how bad, which request", each as wide
//! as its widest cell.
//!
//! ```text
//! routes   recent: the last 63.4 s
//! failing  GET /fail: 500×1 (100.0% of its requests) in the last 63.4 s
//!
//! METHOD  ROUTE          | RECENT  req/s    err%  mean ms  p50 ms  p99 ms | TOTAL    err%  mean ms  p99 ms | EXEMPLAR ms         age  trace
//! GET     /slow          |      2   0.03    0.0%   601.54  601.54  701.04 |     2    0.0%   601.54  701.04 |      601.79  62.0 s ago  693dfe63…  /debug/requests/693dfe63…
//! GET     /products/{id} |      4   0.06    0.0%    24.01   20.00   25.62 |     4    0.0%    24.01   25.62 |       25.62  63.2 s ago  815f356f…
//! GET     /fail          |      1   0.02  100.0%    0.305      <5      <5 |     1  100.0%    0.305      <5 |       0.305  62.0 s ago  4fbe828e…
//!
//! p50, p99: estimates from the duration histogram's buckets (<5: under its first bound, >10000: over its last), …
//! EXEMPLAR: a real request from the slowest bucket that kept one, from the recent window when it has one
//! ```
//!
//! The percentiles are estimates from the histogram's buckets (linear within a bucket, as
//! Prometheus's `histogram_quantile`, but never past what is known of the slowest
//! request); a quantile in the first bucket reads `<` its bound, one in `+Inf` `>` the
//! last bound. `mean` is exact. `EXEMPLAR` is a real request from the route's slowest
//! bucket that kept one, from the recent window when it has one, with its age.

use std::fmt::Write as _;

use serde_json::Value;

use super::text::{Align, Table, age, count, number, percent};
use crate::debug::Safe;

/// The text view of a `routes` or `dependencies` report's value; `None` for any other
/// provider (or a value of another shape).
pub(crate) fn render(name: &str, value: &Value) -> Option<String> {
    let list = match name {
        "routes" | "dependencies" => name,
        _ => return None,
    };
    let entries = value.get(list)?.as_array()?;
    let mut out = String::new();
    let window = value.get("window_seconds").and_then(Value::as_f64);
    match window {
        Some(w) => {
            let _ = write!(out, "{list}   recent: the last {w:.1} s");
            if let Some(u) = value
                .get("uncounted_seconds")
                .and_then(Value::as_f64)
                .filter(|u| *u > 0.0)
            {
                let _ = write!(
                    out,
                    ", of which {:.1} s counted (diag was disabled for {u:.1} s)",
                    (w - u).max(0.0)
                );
            }
            out.push('\n');
        }
        None => {
            let _ = writeln!(
                out,
                "{list}   recent: none yet (a read or a /metrics scrape keeps a snapshot at \
                 most every 10 s; read again after a second)"
            );
        }
    }
    if let Some(note) = value.get("kill_switch").and_then(|k| k["note"].as_str()) {
        let _ = writeln!(out, "note     {}", Safe(note));
    }
    for f in value
        .get("failing")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(out, "failing  {}", failing(f, window));
    }
    out.push('\n');
    // Nothing to tabulate: say why, not an empty table and its legend.
    if entries.is_empty() {
        out.push_str(match list {
            "routes" => "(no request counted yet: one is counted when it ends)\n",
            _ => {
                "(no outgoing call recorded yet: calls made through \
                 PropagateLayer::with_metrics or diag.client_call are)\n"
            }
        });
        return Some(out);
    }
    let mut heads: Vec<(&'static str, Align)> = match list {
        "routes" => vec![("METHOD", Align::Left), ("ROUTE", Align::Left)],
        _ => vec![("SERVER", Align::Left)],
    };
    heads.extend([
        ("|", Align::Left),
        ("RECENT", Align::Right),
        ("req/s", Align::Right),
        ("err%", Align::Right),
        ("mean ms", Align::Right),
        ("p50 ms", Align::Right),
        ("p99 ms", Align::Right),
        ("|", Align::Left),
        ("TOTAL", Align::Right),
        ("err%", Align::Right),
        ("mean ms", Align::Right),
        ("p99 ms", Align::Right),
        ("|", Align::Left),
        ("EXEMPLAR ms", Align::Right),
        ("age", Align::Right),
        ("trace", Align::Left),
    ]);
    let mut table = Table::new(&heads);
    for entry in entries {
        let recent = &entry["recent"];
        let total = &entry["since_start"];
        // Escaped, so nothing in a name reaches the terminal as a control sequence.
        let mut cells = match list {
            "routes" => vec![
                Safe(entry["method"].as_str().unwrap_or("?")).to_string(),
                Safe(entry["route"].as_str().unwrap_or("?")).to_string(),
            ],
            _ => vec![Safe(entry["server_address"].as_str().unwrap_or("?")).to_string()],
        };
        cells.extend([
            count(&recent["requests"]),
            number(&recent["per_second"], 2),
            percent(&recent["error_ratio"]),
            millis(&recent["mean_ms"]),
            estimate(recent, "p50"),
            estimate(recent, "p99"),
            count(&total["requests"]),
            percent(&total["error_ratio"]),
            millis(&total["mean_ms"]),
            estimate(total, "p99"),
        ]);
        // The recent window's own when it kept one, else the slowest of all.
        let exemplar = [&entry["recent_exemplar"], &entry["slowest_exemplar"]]
            .into_iter()
            .find(|e| e["trace_id"].is_string());
        match exemplar {
            Some(e) => {
                let mut trace = Safe(e["trace_id"].as_str().unwrap_or("")).to_string();
                if let Some(capture) = e["capture"].as_str() {
                    let _ = write!(trace, "  {}", Safe(capture));
                }
                cells.extend([
                    millis(&e["ms"]),
                    e["age_seconds"]
                        .as_f64()
                        .map_or_else(|| "-".to_owned(), |s| format!("{} ago", age(s))),
                    trace,
                ]);
            }
            None => cells.extend(["-".to_owned(), String::new(), String::new()]),
        }
        table.row(cells);
    }
    table.write(&mut out);
    if let Some(n) = value.get(format!("{list}_omitted")).and_then(Value::as_u64)
        && n > 0
    {
        let _ = writeln!(out, "... and {n} more");
    }
    out.push('\n');
    out.push_str(&legend(value));
    Some(out)
}

/// `GET /fail: 500×2 (100.0% of its requests) in the last 62.0 s`.
fn failing(f: &Value, window: Option<f64>) -> String {
    let name = match (f["method"].as_str(), f["route"].as_str()) {
        (Some(method), Some(route)) => format!("{method} {route}"),
        _ => f["server_address"].as_str().unwrap_or("?").to_owned(),
    };
    let mut statuses: Vec<(&String, u64)> = f["statuses"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(s, n)| Some((s, n.as_u64()?)))
        .collect();
    statuses.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let errors = match statuses.is_empty() {
        true => {
            let n = f["errors"].as_u64().unwrap_or(0);
            format!("{n} error{}", if n == 1 { "" } else { "s" })
        }
        false => statuses
            .iter()
            .map(|(s, n)| format!("{}×{n}", Safe(s)))
            .collect::<Vec<_>>()
            .join(" "),
    };
    let span = match (f["window"].as_str(), window) {
        (Some("since_start"), _) | (_, None) => "since the start".to_owned(),
        (_, Some(w)) => format!("in the last {w:.1} s"),
    };
    format!(
        "{}: {errors} ({} of its requests) {span}",
        Safe(&name),
        percent(&f["error_ratio"]),
    )
}

/// What the columns are, with the histogram's own first and last bound.
fn legend(value: &Value) -> String {
    let bounds: Vec<f64> = value["bucket_bounds_ms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .collect();
    let (first, last) = match (bounds.first(), bounds.last()) {
        (Some(f), Some(l)) => (bound(*f), bound(*l)),
        _ => ("b".to_owned(), "b".to_owned()),
    };
    format!(
        "p50, p99: estimates from the duration histogram's buckets (<{first}: under its first \
         bound, >{last}: over its last), never past what is known of the slowest request; \
         mean: exact (sum / count)\n\
         EXEMPLAR: a real request from the slowest bucket that kept one, from the recent \
         window when it has one\n"
    )
}

/// A bucket bound in ms, without trailing zeros: `5`, `2.5`, `10000`.
fn bound(ms: f64) -> String {
    format!("{ms}")
}

/// Milliseconds: three decimals under 1 ms (a 0.029 ms handler is not a 0.03 one), two
/// above.
fn millis(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.abs() < 1.0 => format!("{x:.3}"),
        Some(x) => format!("{x:.2}"),
        None => "-".to_owned(),
    }
}

/// A quantile estimate: `<5` in the first bucket (under its bound), `>10000` in `+Inf`
/// (over the last bound), else its value.
fn estimate(figures: &Value, q: &str) -> String {
    let value = &figures[format!("{q}_ms")];
    if value.as_f64().is_none() {
        return "-".to_owned();
    }
    let gt = figures[format!("{q}_gt_ms")].as_f64();
    let le = figures[format!("{q}_le_ms")].as_f64();
    match (gt, le) {
        (Some(gt), None) => format!(">{}", bound(gt)),
        (Some(gt), Some(le)) if gt <= 0.0 => format!("<{}", bound(le)),
        _ => millis(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "window_seconds": 61.96,
            "bucket_bounds_ms": [5.0, 10.0, 250.0, 10000.0],
            "failing": [{"method": "POST", "route": "/checkout", "errors": 193561, "error_ratio": 0.926,
                         "statuses": {"503": 193561}, "window": "recent"}],
            "routes": [
                {"method": "GET", "route": "/slow",
                 "recent": {"requests": 17, "per_second": 0.24, "errors": 0, "error_ratio": 0.0,
                            "mean_ms": 10000.0,
                            "p50_ms": 10000.0, "p50_gt_ms": 10000.0,
                            "p99_ms": 10000.0, "p99_gt_ms": 10000.0},
                 "since_start": {"requests": 17, "errors": 0, "error_ratio": 0.0, "mean_ms": 10000.0,
                                 "p99_ms": 10000.0, "p99_gt_ms": 10000.0},
                 "slowest_exemplar": {"trace_id": "b8dd34491fc63a5d880467d824598b45", "ms": 12001.803,
                                      "age_seconds": 528.0},
                 "recent_exemplar": {"trace_id": "0e4c45ae0e7cd122a58c1f8b7999c17b", "ms": 10001.2,
                                     "age_seconds": 4.26,
                                     "capture": "/debug/requests/0e4c45ae0e7cd122a58c1f8b7999c17b"}},
                {"method": "POST", "route": "/checkout",
                 "recent": {"requests": 209000, "per_second": 3370.97, "errors": 193561, "error_ratio": 0.926,
                            "mean_ms": 0.029,
                            "p50_ms": 2.5, "p50_gt_ms": 0.0, "p50_le_ms": 5.0,
                            "p99_ms": 4.95, "p99_gt_ms": 0.0, "p99_le_ms": 5.0},
                 "since_start": {"requests": 209010, "errors": 193561, "error_ratio": 0.926,
                                 "mean_ms": 0.029, "p99_ms": 4.95, "p99_gt_ms": 0.0, "p99_le_ms": 5.0},
                 "slowest_exemplar": {"trace_id": "4dde051bf1618d815fcbc83ff0556803", "ms": 0.43,
                                      "age_seconds": 528.0}},
                {"method": "OPTIONS", "route": "/fail\u{1b}[31m",
                 "recent": {"requests": 0, "per_second": 0.0, "errors": 0},
                 "since_start": {"requests": 2, "errors": 0, "error_ratio": 0.0, "mean_ms": 175.0,
                                 "p99_ms": 248.5, "p99_gt_ms": 10.0, "p99_le_ms": 250.0}}
            ],
            "routes_omitted": 4
        })
    }

    /// Estimates in the first bucket read `<5` and in `+Inf` `>10000`,
    /// next to the exact mean; the exemplar is the recent window's, with its age; a wide
    /// value widens its column instead of pushing the others out of line.
    #[test]
    fn one_line_per_route_sized_to_its_contents() {
        let text = render("routes", &sample()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "routes   recent: the last 62.0 s", "{text}");
        assert_eq!(
            lines[3],
            "METHOD   ROUTE           | RECENT    req/s   err%   mean ms  p50 ms  p99 ms |  \
             TOTAL   err%   mean ms  p99 ms | EXEMPLAR ms        age  trace"
        );
        assert_eq!(
            lines[4],
            "GET      /slow           |     17     0.24   0.0%  10000.00  >10000  >10000 |     \
             17   0.0%  10000.00  >10000 |    10001.20  4.3 s ago  \
             0e4c45ae0e7cd122a58c1f8b7999c17b  /debug/requests/0e4c45ae0e7cd122a58c1f8b7999c17b"
        );
        assert_eq!(
            lines[5],
            "POST     /checkout       | 209000  3370.97  92.6%     0.029      <5      <5 | \
             209010  92.6%     0.029      <5 |       0.430  9 min ago  \
             4dde051bf1618d815fcbc83ff0556803"
        );
        // A control character in a name is shown escaped, never sent to the terminal.
        assert_eq!(
            lines[6],
            "OPTIONS  /fail\\u{1b}[31m |      0     0.00      -         -       -       - |      \
             2   0.0%    175.00  248.50 |           -"
        );
        assert!(!text.contains('\u{1b}'));
        assert_eq!(lines[7], "... and 4 more");
        assert!(
            lines[9].starts_with(
                "p50, p99: estimates from the duration histogram's buckets (<5: under its first \
                 bound, >10000: over its last)"
            ),
            "{text}"
        );
        assert!(lines[10].starts_with("EXEMPLAR: "), "{text}");
        // The columns line up, whatever the values.
        let bars = |l: &str| l.match_indices('|').map(|(i, _)| i).collect::<Vec<_>>();
        for l in &lines[4..7] {
            assert_eq!(bars(l), bars(lines[3]), "{text}");
        }
    }

    /// A failing route names its statuses and the span they were counted over.
    #[test]
    fn failing_routes_name_their_statuses_and_the_window() {
        let text = render("routes", &sample()).unwrap();
        assert_eq!(
            text.lines().nth(1),
            Some("failing  POST /checkout: 503×193561 (92.6% of its requests) in the last 62.0 s")
        );
        let f = json!({"method": "GET", "route": "/fail", "errors": 5, "error_ratio": 1.0,
                       "statuses": {"500": 2, "503": 3}, "window": "since_start"});
        assert_eq!(
            failing(&f, Some(60.0)),
            "GET /fail: 503×3 500×2 (100.0% of its requests) since the start"
        );
        // A report of before the statuses were listed still reads.
        let f = json!({"server_address": "pricing:8080", "errors": 1, "error_ratio": 0.5});
        assert_eq!(
            failing(&f, Some(60.0)),
            "pricing:8080: 1 error (50.0% of its requests) in the last 60.0 s"
        );
    }

    /// The kill switch's note, and how much of the window was counted.
    #[test]
    fn the_kill_switch_is_said_above_the_table() {
        let mut value = sample();
        value["uncounted_seconds"] = json!(70.0);
        value["window_seconds"] = json!(73.0);
        value["kill_switch"] =
            json!({"disabled": false, "note": "diag was disabled for 70.0 s\u{7}"});
        let text = render("routes", &value).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "routes   recent: the last 73.0 s, of which 3.0 s counted (diag was disabled for 70.0 s)"
        );
        assert_eq!(lines[1], "note     diag was disabled for 70.0 s\\u{7}");
        assert!(lines[2].starts_with("failing  POST /checkout"));
    }

    #[test]
    fn dependencies_are_named_by_address_and_others_have_no_text() {
        let value = json!({
            "failing": [],
            "dependencies": [{"server_address": "pricing:8080", "since_start": {"requests": 1, "errors": 0, "error_ratio": 0.0}}],
            "dependencies_omitted": 0
        });
        let text = render("dependencies", &value).unwrap();
        assert!(
            text.starts_with("dependencies   recent: none yet"),
            "{text}"
        );
        assert!(text.contains("\nSERVER       | RECENT"), "{text}");
        assert!(text.contains("\npricing:8080 |      -"), "{text}");
        // No bounds known: the legend says so without them.
        assert!(
            text.contains("(<b: under its first bound, >b: over its last)"),
            "{text}"
        );
        assert_eq!(render("queues", &value), None);
        // None yet: a sentence, not an empty table.
        let none = json!({"failing": [], "dependencies": [], "dependencies_omitted": 0});
        let text = render("dependencies", &none).unwrap();
        assert!(text.contains("(no outgoing call recorded yet"), "{text}");
        assert!(
            !text.contains("SERVER") && !text.contains("first bound"),
            "{text}"
        );
        let none = json!({"failing": [], "routes": [], "routes_omitted": 0});
        let text = render("routes", &none).unwrap();
        assert!(text.contains("(no request counted yet"), "{text}");
        assert!(!text.contains("ROUTE"), "{text}");
        assert_eq!(render("routes", &json!({"unexpected": true})), None);
    }
}
