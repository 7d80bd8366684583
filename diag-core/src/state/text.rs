//! The providers that also read as text in a terminal (`curl -H 'Accept: text/plain'
//! …/debug/state/{name}`, or `?format=text`): `routes` and `dependencies` (see
//! `routes_text`), `requests` and `queues`; and what their views share: columns as wide
//! as their widest cell, ages and times as a person says them.
//!
//! Each view is rendered from the provider's JSON value, so the text says nothing the
//! JSON does not; a value of another shape (a provider of the service's own under one of
//! these names) has no text view and is served as JSON.

use std::fmt::Write as _;

use serde_json::Value;

use crate::debug::Safe;

/// The providers with a text view.
pub(crate) const TEXT_VIEWS: &[&str] = &["dependencies", "queues", "requests", "routes"];

/// The text view of provider `name`'s value; `None` for a provider without one (or a
/// value of another shape).
pub(crate) fn render(name: &str, value: &Value) -> Option<String> {
    match name {
        "routes" | "dependencies" => super::routes_text::render(name, value),
        "requests" => requests(value),
        "queues" => queues(value),
        _ => None,
    }
}

/// `secs` ago, to the precision a person needs.
pub(crate) fn age(secs: f64) -> String {
    let secs = secs.max(0.0);
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else if secs < 90.0 {
        format!("{secs:.1} s")
    } else if secs < 90.0 * 60.0 {
        format!("{:.0} min", secs / 60.0)
    } else {
        format!("{:.1} h", secs / 3600.0)
    }
}

/// `14:02:11 UTC`: the time of day of `time_unix` (seconds since the Unix epoch).
pub(crate) fn time_of_day_utc(time_unix: f64) -> String {
    let secs = (time_unix.max(0.0) as u64) % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// A table whose columns are as wide as their widest cell (header included), so no
/// value, however long, pushes the others out of line. A column headed `|` separates
/// groups and takes no cell.
pub(crate) struct Table {
    heads: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(heads: &[(&'static str, Align)]) -> Self {
        Table {
            heads: heads.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row: one cell per column that is not a separator, already escaped.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Writes the header and the rows, each line without trailing spaces.
    pub(crate) fn write(&self, out: &mut String) {
        let columns: Vec<(&str, Align)> = self
            .heads
            .iter()
            .copied()
            .filter(|(h, _)| *h != "|")
            .collect();
        let mut widths: Vec<usize> = columns.iter().map(|(h, _)| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let header: Vec<String> = columns.iter().map(|(h, _)| (*h).to_owned()).collect();
        for cells in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            let mut column = 0;
            for (i, (head, _)) in self.heads.iter().enumerate() {
                if *head == "|" {
                    line.push_str(" | ");
                    continue;
                }
                if i > 0 && self.heads[i - 1].0 != "|" {
                    line.push_str("  ");
                }
                let cell = cells.get(column).map_or("", String::as_str);
                let (w, align) = (widths[column], columns[column].1);
                let _ = match align {
                    Align::Left => write!(line, "{cell:<w$}"),
                    Align::Right => write!(line, "{cell:>w$}"),
                };
                column += 1;
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

pub(crate) fn count(v: &Value) -> String {
    v.as_u64().map_or_else(|| "-".to_owned(), |n| n.to_string())
}

pub(crate) fn number(v: &Value, decimals: usize) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |x| format!("{x:.decimals$}"))
}

pub(crate) fn percent(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |x| format!("{:.1}%", x * 100.0))
}

/// The `requests` provider's value as text: the count in flight, the kill switch's note,
/// then one line per route, most in flight first.
fn requests(value: &Value) -> Option<String> {
    let routes = value.get("routes")?.as_array()?;
    let in_flight = value.get("in_flight")?.as_u64()?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "requests   {in_flight} in flight ({} of at most {} routes tracked)",
        count(&value["routes_tracked"]),
        count(&value["route_cap"]),
    );
    if let Some(note) = value["kill_switch"]["note"].as_str() {
        let _ = writeln!(out, "note       {}", Safe(note));
    }
    for (key, what) in [
        (
            "route_overflow",
            "requests since the start counted under __overflow__ (the route table was full)",
        ),
        (
            "requests_without_age",
            "requests since the start found no free age slot (counted, their age unknown)",
        ),
    ] {
        if let Some(n) = value[key].as_u64().filter(|n| *n > 0) {
            let _ = writeln!(out, "note       {n} {what}");
        }
    }
    out.push('\n');
    if routes.is_empty() {
        out.push_str("(none in flight)\n");
        return Some(out);
    }
    let mut table = Table::new(&[
        ("METHOD", Align::Left),
        ("ROUTE", Align::Left),
        ("IN FLIGHT", Align::Right),
        ("OLDEST", Align::Right),
    ]);
    for r in routes {
        table.row(vec![
            Safe(r["method"].as_str().unwrap_or("?")).to_string(),
            Safe(r["route"].as_str().unwrap_or("?")).to_string(),
            count(&r["in_flight"]),
            r["oldest_age_ms"]
                .as_f64()
                .map_or_else(|| "-".to_owned(), |ms| age(ms / 1000.0)),
        ]);
    }
    table.write(&mut out);
    Some(out)
}

/// The `queues` provider's value as text: one line per queue, in name order.
fn queues(value: &Value) -> Option<String> {
    let queues = value.as_object()?;
    let mut out = String::new();
    if queues.is_empty() {
        out.push_str("queues   none registered (diag.queue(\"name\") makes one)\n");
        return Some(out);
    }
    out.push_str(
        "queues   rates over each queue's WINDOW (about a minute while it is read or scraped \
         at least that often)\n\n",
    );
    let mut table = Table::new(&[
        ("QUEUE", Align::Left),
        ("DEPTH", Align::Right),
        ("CAPACITY", Align::Right),
        ("CHANGE", Align::Right),
        ("IN/s", Align::Right),
        ("OUT/s", Align::Right),
        ("REJECTED/s", Align::Right),
        ("WINDOW", Align::Right),
        ("LAGGING", Align::Left),
    ]);
    for (name, q) in queues {
        table.row(vec![
            Safe(name).to_string(),
            count(&q["depth"]),
            count(&q["capacity"]),
            q["depth_change"]
                .as_i64()
                .map_or_else(|| "-".to_owned(), |d| format!("{d:+}")),
            number(&q["producer_rate_per_s"], 2),
            number(&q["consumer_rate_per_s"], 2),
            number(&q["rejection_rate_per_s"], 2),
            q["window_seconds"]
                .as_f64()
                .map_or_else(|| "-".to_owned(), |w| format!("{w:.1} s")),
            match q["consumer_lagging"].as_bool() {
                Some(true) => "yes".to_owned(),
                Some(false) => "no".to_owned(),
                None => "-".to_owned(),
            },
        ]);
    }
    table.write(&mut out);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut t = Table::new(&[
            ("NAME", Align::Left),
            ("|", Align::Left),
            ("N", Align::Right),
            ("MS", Align::Right),
            ("|", Align::Left),
            ("LAST", Align::Left),
        ]);
        t.row(vec!["a".into(), "1".into(), "10000.00".into(), "x".into()]);
        t.row(vec![
            "longer".into(),
            "17".into(),
            "0.24".into(),
            String::new(),
        ]);
        let mut out = String::new();
        t.write(&mut out);
        assert_eq!(
            out,
            "NAME   |  N        MS | LAST\n\
             a      |  1  10000.00 | x\n\
             longer | 17      0.24 |\n"
        );
    }

    #[test]
    fn ages_and_times_read_like_a_person_says_them() {
        assert_eq!(age(0.0123), "12 ms");
        assert_eq!(age(528.0), "9 min");
        assert_eq!(time_of_day_utc(1_764_210_131.7), "02:22:11 UTC");
        assert_eq!(time_of_day_utc(-5.0), "00:00:00 UTC");
    }

    #[test]
    fn requests_read_as_one_line_per_route() {
        let value = json!({
            "in_flight": 3,
            "routes": [
                {"method": "GET", "route": "/slow", "in_flight": 2, "oldest_age_ms": 4260.0},
                {"method": "OPTIONS", "route": "/x\u{1b}[2J", "in_flight": 1, "oldest_age_ms": null}
            ],
            "routes_tracked": 2, "route_cap": 128, "route_overflow": 0, "requests_without_age": 1,
            "kill_switch": {"disabled": true, "changed_unix": 0.0, "seconds_ago": 73.0,
                            "note": "diag disabled since 00:00:00 UTC (73.0 s ago): requests are not counted"}
        });
        let text = render("requests", &value).unwrap();
        assert_eq!(
            text,
            "requests   3 in flight (2 of at most 128 routes tracked)\n\
             note       diag disabled since 00:00:00 UTC (73.0 s ago): requests are not counted\n\
             note       1 requests since the start found no free age slot (counted, their age unknown)\n\
             \n\
             METHOD   ROUTE        IN FLIGHT  OLDEST\n\
             GET      /slow                2   4.3 s\n\
             OPTIONS  /x\\u{1b}[2J          1       -\n"
        );
        let empty = json!({"in_flight": 0, "routes": [], "routes_tracked": 0, "route_cap": 128});
        assert!(
            render("requests", &empty)
                .unwrap()
                .ends_with("\n(none in flight)\n")
        );
    }

    #[test]
    fn queues_read_as_one_line_per_queue() {
        let value = json!({
            "emails": {"produced_total": 10, "consumed_total": 7, "depth": 3, "capacity": null,
                       "producer_rate_per_s": 0.5, "consumer_rate_per_s": 0.35,
                       "rejection_rate_per_s": 1.25, "window_seconds": 60.0, "depth_change": 3, "consumer_lagging": true},
            "thumbnails": {"produced_total": 0, "consumed_total": 0, "depth": 0, "capacity": 1000,
                           "producer_rate_per_s": null, "consumer_rate_per_s": null,
                           "window_seconds": 0.2, "depth_change": 0, "consumer_lagging": false}
        });
        let text = render("queues", &value).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[2],
            "QUEUE       DEPTH  CAPACITY  CHANGE  IN/s  OUT/s  REJECTED/s  WINDOW  LAGGING"
        );
        assert_eq!(
            lines[3],
            "emails          3         -      +3  0.50   0.35        1.25  60.0 s  yes"
        );
        assert_eq!(
            lines[4],
            "thumbnails      0      1000      +0     -      -           -   0.2 s  no"
        );
        assert!(
            render("queues", &json!({}))
                .unwrap()
                .contains("none registered")
        );
        assert_eq!(render("queues", &json!([1])), None);
        assert_eq!(render("process", &json!({"pid": 1})), None);
    }
}
