//! The `routes` and `dependencies` reports as a person reads them in a terminal
//! (`curl -H 'Accept: text/plain' …/debug/state/routes`, or `?format=text`): one line
//! per entry, the columns that answer "which one, how bad, which request".
//!
//! ```text
//! routes   recent: the last 62.0 s
//! failing  GET    /fail: 2 errors (100.0%)
//!
//! METHOD ROUTE             | RECENT  req/s   err%  p50 ms  p99 ms | TOTAL   err%  p99 ms | EXEMPLAR ms  trace
//! GET    /slow             |      1   0.02   0.0%  175.00  248.50 |     1   0.0%  248.50 |      201.80  b8dd3449…
//! ```
//!
//! The percentiles are estimates from the histogram's buckets (linear within a bucket, as
//! Prometheus's `histogram_quantile`), so a p99 may lie above every request there was;
//! `EXEMPLAR` is a real request from the route's slowest bucket.

use std::fmt::Write as _;

use serde_json::Value;

use crate::debug::Safe;

/// The text view of a `routes` or `dependencies` report's value; `None` for any other
/// provider (or a value of another shape).
pub(crate) fn render(name: &str, value: &Value) -> Option<String> {
    let (list, first) = match name {
        "routes" => ("routes", "METHOD ROUTE"),
        "dependencies" => ("dependencies", "SERVER"),
        _ => return None,
    };
    let entries = value.get(list)?.as_array()?;
    let mut out = String::new();
    match value.get("window_seconds").and_then(Value::as_f64) {
        Some(w) => {
            let _ = writeln!(out, "{list}   recent: the last {w:.1} s");
        }
        None => {
            let _ = writeln!(
                out,
                "{list}   recent: none yet (a read or a /metrics scrape keeps a snapshot at \
                 most every 10 s; read again in 10 s)"
            );
        }
    }
    for f in value
        .get("failing")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let errors = f["errors"].as_u64().unwrap_or(0);
        let _ = writeln!(
            out,
            "failing  {}: {errors} error{} ({})",
            Safe(&name_of(f)),
            if errors == 1 { "" } else { "s" },
            percent(&f["error_ratio"]),
        );
    }
    // Escaped first, so the columns line up with what the terminal shows.
    let names: Vec<String> = entries
        .iter()
        .map(|e| Safe(&name_of(e)).to_string())
        .collect();
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(first.len());
    let _ = writeln!(
        out,
        "\n{first:<width$} | RECENT  req/s   err%  p50 ms  p99 ms | TOTAL   err%  p99 ms | EXEMPLAR ms  trace"
    );
    for (entry, name) in entries.iter().zip(&names) {
        let recent = &entry["recent"];
        let total = &entry["since_start"];
        let slowest = &entry["slowest_exemplar"];
        let _ = write!(
            out,
            "{:<width$} | {:>6} {:>6} {:>6} {:>7} {:>7} | {:>5} {:>6} {:>7} | ",
            name,
            count(&recent["requests"]),
            number(&recent["per_second"], 2),
            percent(&recent["error_ratio"]),
            number(&recent["p50_ms"], 2),
            number(&recent["p99_ms"], 2),
            count(&total["requests"]),
            percent(&total["error_ratio"]),
            number(&total["p99_ms"], 2),
        );
        match slowest["trace_id"].as_str() {
            Some(trace) => {
                let _ = write!(out, "{:>11}  {trace}", number(&slowest["ms"], 2));
                if let Some(capture) = slowest["capture"].as_str() {
                    let _ = write!(out, "  {capture}");
                }
            }
            None => out.push_str(&format!("{:>11}", "-")),
        }
        out.push('\n');
    }
    if let Some(n) = value.get(format!("{list}_omitted")).and_then(Value::as_u64)
        && n > 0
    {
        let _ = writeln!(out, "... and {n} more");
    }
    Some(out)
}

/// `GET /cart` or `pricing:8080`.
fn name_of(entry: &Value) -> String {
    match (entry["method"].as_str(), entry["route"].as_str()) {
        (Some(method), Some(route)) => format!("{method:<6} {route}"),
        _ => entry["server_address"].as_str().unwrap_or("?").to_owned(),
    }
}

fn count(v: &Value) -> String {
    v.as_u64().map_or_else(|| "-".to_owned(), |n| n.to_string())
}

fn number(v: &Value, decimals: usize) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |x| format!("{x:.decimals$}"))
}

fn percent(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |x| format!("{:.1}%", x * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_line_per_route_with_its_slowest_request() {
        let value = json!({
            "window_seconds": 61.96,
            "failing": [{"method": "GET", "route": "/fail", "errors": 2, "error_ratio": 1.0}],
            "routes": [
                {"method": "GET", "route": "/slow",
                 "recent": {"requests": 1, "per_second": 0.016, "errors": 0, "error_ratio": 0.0, "p50_ms": 175.0, "p99_ms": 248.5},
                 "since_start": {"requests": 3, "errors": 0, "error_ratio": 0.0, "p99_ms": 248.5},
                 "slowest_exemplar": {"trace_id": "b8dd34491fc63a5d880467d824598b45", "ms": 201.803, "capture": "/debug/requests/b8dd34491fc63a5d880467d824598b45"}},
                {"method": "GET", "route": "/fail\u{1b}[31m",
                 "recent": {"requests": 0, "per_second": 0.0, "errors": 0},
                 "since_start": {"requests": 2, "errors": 2, "error_ratio": 1.0, "p99_ms": 4.95}}
            ],
            "routes_omitted": 4
        });
        let text = render("routes", &value).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "routes   recent: the last 62.0 s");
        assert_eq!(lines[1], "failing  GET    /fail: 2 errors (100.0%)");
        assert!(lines[3].starts_with("METHOD ROUTE"), "{text}");
        assert!(
            lines[4].contains("|      1   0.02   0.0%  175.00  248.50 |     3   0.0%  248.50 |      201.80  b8dd34491fc63a5d880467d824598b45  /debug/requests/b8dd"),
            "{text}"
        );
        // A control character in a name is shown escaped, never sent to the terminal.
        assert!(lines[5].contains("/fail\\u{1b}[31m"), "{text}");
        assert!(!text.contains('\u{1b}'));
        assert!(
            lines[5].contains(
                "|      0   0.00      -       -       - |     2 100.0%    4.95 |           -"
            ),
            "{text}"
        );
        assert_eq!(lines[6], "... and 4 more");
        // The columns line up, whatever the names.
        let bar = |l: &str| l.find('|');
        assert_eq!(bar(lines[3]), bar(lines[4]));
        assert_eq!(bar(lines[4]), bar(lines[5]));
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
        assert_eq!(render("queues", &value), None);
        assert_eq!(render("routes", &json!({"unexpected": true})), None);
    }
}
