//! Label cardinality stays bounded however many distinct URLs clients send: the HTTP
//! metrics are labelled by route template, and a service's own labelled metric folds
//! label sets beyond its cap into `__overflow__`, counted and announced.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use checkout_axum::Config;
use common::{Running, diag_with_token};
use futures_util::StreamExt as _;
use serde_json::Value;

const IN_FLIGHT: usize = 32;
const PRODUCTS: u64 = 5_000;
const UNKNOWN_PATHS: usize = 5_000;
const BAD_IDS: usize = 100;

/// Every route template the demo has, and the label for no match.
const TEMPLATES: &[&str] = &[
    "/healthz",
    "/products/{id}",
    "/checkout",
    "/echo",
    "/slow",
    "/fail",
    "unmatched",
];

/// One sample line of a text exposition: metric name and labels.
#[derive(Debug, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
}

/// Parses the name and label set of a sample line (`name{a="x",b="y\"z"} 1 # {...}`);
/// `None` for comments and blank lines.
fn parse_sample(line: &str) -> Option<Sample> {
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = line[..end].to_owned();
    let mut labels = BTreeMap::new();
    if line[end..].starts_with('{') {
        let mut chars = line[end + 1..].chars();
        loop {
            let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
            let key = key.trim_start_matches(',').to_owned();
            if key.is_empty() || key.starts_with('}') {
                break;
            }
            assert_eq!(chars.next(), Some('"'), "label value not quoted: {line}");
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some(c) => value.push(c),
                        None => panic!("dangling escape: {line}"),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => panic!("unterminated label value: {line}"),
                }
            }
            labels.insert(key, value);
            match chars.next() {
                Some(',') => {}
                Some('}') => break,
                other => panic!("unexpected {other:?} after a label value: {line}"),
            }
        }
    }
    Some(Sample { name, labels })
}

fn samples(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_sample).collect()
}

/// A small xorshift generator: unpredictable enough paths without a `rand` dependency.
struct Paths(u64);

impl Paths {
    fn seeded() -> Paths {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        Paths(u64::from(nanos) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Six random letters and digits, e.g. `q0lm2a`.
    fn word(&mut self) -> String {
        let n = self.next_u64();
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..6)
            .map(|i| alphabet[((n >> (i * 6)) % 36) as usize] as char)
            .collect()
    }

    /// A path no route matches, e.g. `/k3x9ab/q0lm2a`.
    fn unknown(&mut self) -> String {
        format!("/{}/{}", self.word(), self.word())
    }
}

/// GETs every path, `IN_FLIGHT` at a time; returns how many answered each status.
async fn get_all(s: &Running, paths: Vec<String>) -> BTreeMap<u16, usize> {
    let statuses: Vec<u16> = futures_util::stream::iter(paths)
        .map(|path| async move {
            let res = s.get(&path).send().await.unwrap();
            res.status().as_u16()
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut by_status = BTreeMap::new();
    for status in statuses {
        *by_status.entry(status).or_default() += 1;
    }
    by_status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_metrics_stay_bounded_under_distinct_urls() {
    let config = Config {
        pricing_latency_ms: (0, 1),
        ..common::test_config()
    };
    let s = Running::start_with(diag_with_token(|b| b), config).await;
    let mut rng = Paths::seeded();
    let products: Vec<String> = (1..=PRODUCTS).map(|id| format!("/products/{id}")).collect();
    let unknown: Vec<String> = (0..UNKNOWN_PATHS).map(|_| rng.unknown()).collect();
    // Matched by the template but rejected by the handler's extractor.
    let bad_ids: Vec<String> = (0..BAD_IDS)
        .map(|_| format!("/products/x{}", rng.word()))
        .collect();

    assert_eq!(get_all(&s, products).await, BTreeMap::from([(200, 5_000)]));
    assert_eq!(
        get_all(&s, unknown.clone()).await,
        BTreeMap::from([(404, 5_000)])
    );
    assert_eq!(get_all(&s, bad_ids).await, BTreeMap::from([(400, BAD_IDS)]));

    let text = s.openmetrics().await;
    let all = samples(&text);
    let http: Vec<&Sample> = all
        .iter()
        .filter(|x| x.name.starts_with("http_server_"))
        .collect();
    assert!(!http.is_empty(), "{text}");

    // Route labels are templates, never a raw path.
    let raw_segments: BTreeSet<&str> = unknown
        .iter()
        .flat_map(|p| p.split('/'))
        .filter(|seg| !seg.is_empty())
        .collect();
    for sample in &http {
        let route = sample.labels["route"].as_str();
        assert!(
            TEMPLATES.contains(&route),
            "route label {route:?} is not a template: {sample:?}"
        );
        assert!(!raw_segments.contains(route.trim_start_matches('/')));
    }

    // Only a handful of series: (method, route, status) of the duration histogram.
    let duration_series: BTreeSet<Vec<(&str, &str)>> = http
        .iter()
        .filter(|x| x.name.starts_with("http_server_request_duration_seconds"))
        .map(|x| {
            x.labels
                .iter()
                .filter(|(k, _)| k.as_str() != "le")
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect()
        })
        .collect();
    assert!(
        (3..=6).contains(&duration_series.len()),
        "{} series: {duration_series:?}",
        duration_series.len()
    );
    let active_series = http
        .iter()
        .filter(|x| x.name == "http_server_active_requests")
        .count();
    assert!(active_series <= 4, "{active_series} active-request series");

    // Every request was counted on its template, none folded away.
    let count = |route: &str, status: &str| -> u64 {
        http.iter()
            .filter(|x| x.name == "http_server_requests_total")
            .filter(|x| x.labels["route"] == route && x.labels["status"] == status)
            .map(|x| counter_value(&text, x))
            .sum()
    };
    assert_eq!(count("/products/{id}", "200"), PRODUCTS);
    assert_eq!(count("unmatched", "404"), UNKNOWN_PATHS as u64);
    assert_eq!(count("/products/{id}", "400"), BAD_IDS as u64);
    assert!(
        all.iter()
            .all(|x| x.labels.values().all(|v| v != "__overflow__")),
        "nothing overflowed:\n{text}"
    );
    for family in [
        "http_server_request_duration_seconds",
        "http_server_active_requests",
    ] {
        let line = format!("diag_metrics_overflow_total{{family=\"{family}\"}} 0");
        assert!(text.contains(&line), "missing {line}");
    }
}

/// The value of a counter sample, found again by its name and labels.
fn counter_value(text: &str, sample: &Sample) -> u64 {
    text.lines()
        .find(|l| parse_sample(l).as_ref() == Some(sample))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value for {sample:?}"))
}

#[tokio::test]
async fn a_service_metric_folds_label_sets_past_its_cap() {
    const CAP: usize = 4;
    const CODES: usize = 10;
    let s = Running::start(diag_with_token(|b| b.max_label_sets(CAP))).await;
    let redemptions = s
        .diag
        .counter_family(
            "coupon_redemptions",
            "Coupons redeemed, by code.",
            ["coupon"],
        )
        .unwrap();
    for i in 0..CODES {
        redemptions.with([&format!("SPRING{i}")]).inc();
    }
    // A label set that made it in keeps its own series after the cap is reached.
    redemptions.with(["SPRING0"]).inc();

    let text = s.openmetrics().await;
    let series: Vec<Sample> = samples(&text)
        .into_iter()
        .filter(|x| x.name == "coupon_redemptions_total")
        .collect();
    assert_eq!(series.len(), CAP + 1, "the cap plus __overflow__:\n{text}");
    let folded = (CODES - CAP) as u64;
    for want in [
        "coupon_redemptions_total{coupon=\"SPRING0\"} 2".to_owned(),
        format!("coupon_redemptions_total{{coupon=\"__overflow__\"}} {folded}"),
        format!("diag_metrics_overflow_total{{family=\"coupon_redemptions\"}} {folded}"),
    ] {
        assert!(text.contains(&want), "missing {want}\n{text}");
    }
    for i in CAP..CODES {
        assert!(
            !text.contains(&format!("SPRING{i}\"")),
            "SPRING{i} kept:\n{text}"
        );
    }

    let res = s
        .get("/debug/events?kind=metric_overflow")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "the timeline needs the token");
    let page: Value = s.admin_json("/debug/events?kind=metric_overflow").await;
    let ours: Vec<&Value> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .unwrap_or("")
                .contains("coupon_redemptions")
        })
        .collect();
    assert_eq!(ours.len(), 1, "announced once per family: {page}");
    assert_eq!(ours[0]["kind"], "metric_overflow");
    assert!(
        ours[0]["message"]
            .as_str()
            .unwrap()
            .contains(&CAP.to_string()),
        "{}",
        ours[0]
    );
}

#[test]
fn sample_parsing() {
    let s = parse_sample(
        r#"x_bucket{route="/a\"b\\c\n",le="+Inf"} 3 # {trace_id="ab",span_id="cd"} 1.0 2.5"#,
    )
    .unwrap();
    assert_eq!(s.name, "x_bucket");
    assert_eq!(s.labels["route"], "/a\"b\\c\n");
    assert_eq!(s.labels["le"], "+Inf");
    assert_eq!(s.labels.len(), 2);
    let s = parse_sample("up 1").unwrap();
    assert_eq!((s.name.as_str(), s.labels.len()), ("up", 0));
    assert_eq!(parse_sample("# EOF"), None);
}
