//! The demo scraped by a real Prometheus: the target is healthy (Prometheus parsed the
//! OpenMetrics exposition without complaint), the request counts arrive, the process
//! collector's families answer the usual queries, the shipped recording rules
//! (`prometheus/rules.yml`) evaluate to series, and the trace id a response handed out
//! comes back as a `trace_id` exemplar; `promtool check metrics` accepts the classic
//! text exposition, and `promtool test rules` the shipped alerts' tests.
//!
//! Needs `prometheus` and `promtool` (Debian package `prometheus`; `scripts/test`
//! installs it). Missing binaries fail the test: they are never a reason to skip.

mod common;

use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Running, free_port};
use serde_json::Value;

/// How long any one condition may take to come true before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);
/// How often a condition is checked.
const POLL_EVERY: Duration = Duration::from_millis(250);

const INSTALL_HINT: &str =
    "install the Debian package `prometheus` (apt-get install prometheus; scripts/test does it)";

/// A Prometheus child process with its own config and data directory, killed and
/// cleaned up on drop (also when the test panics).
struct PrometheusProcess {
    /// In a mutex so the polling helpers can check on it through `&self`.
    child: Mutex<Child>,
    dir: PathBuf,
    log: PathBuf,
    base: String,
}

impl PrometheusProcess {
    /// Starts Prometheus on a free loopback port, scraping `target` (`host:port`)
    /// every second, with exemplar storage on.
    fn start(target: &str) -> PrometheusProcess {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "diag-prometheus-test-{}-{}",
            std::process::id(),
            port
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let config = dir.join("prometheus.yml");
        // The rules the repository ships, evaluated every second: their expressions must
        // name what diag really exposes.
        std::fs::copy(rules_dir().join("rules.yml"), dir.join("rules.yml")).unwrap();
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 rule_files: ['rules.yml']\n\
                 scrape_configs:\n  - job_name: checkout\n    metrics_path: /metrics\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let log = dir.join("prometheus.log");
        let stderr = File::create(&log).unwrap();
        let spawned = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--enable-feature=exemplar-storage")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                panic!("cannot start `prometheus` ({e}): {INSTALL_HINT}");
            }
        };
        PrometheusProcess {
            child: Mutex::new(child),
            dir,
            log,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Prometheus's own log, for failure messages.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    /// Fails the test when the child has exited (bad flag, port taken, ...).
    fn assert_running(&self) {
        let exited = self.child.lock().unwrap().try_wait();
        if let Ok(Some(status)) = exited {
            panic!("prometheus exited ({status}); its log:\n{}", self.log());
        }
    }

    /// `GET /api/v1/<path>?<params>`'s `data`, or why not.
    async fn api(
        &self,
        client: &reqwest::Client,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<Value, String> {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        let url = format!("{}/api/v1/{path}?{}", self.base, query.join("&"));
        let res = client.get(&url).send().await.map_err(|e| e.to_string())?;
        let body: Value = res.json().await.map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(format!("{url}: {body}"));
        }
        Ok(body["data"].clone())
    }

    /// Polls `check` until it returns `Ok`, failing with its last reason and
    /// Prometheus's log after [`PATIENCE`].
    async fn wait_for<T, F, Fut>(&self, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        let deadline = Instant::now() + PATIENCE;
        loop {
            self.assert_running();
            let last = match check().await {
                Ok(t) => return t,
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {PATIENCE:?} waiting for {what}; last: {last}\nprometheus log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

impl Drop for PrometheusProcess {
    fn drop(&mut self) {
        // Also after a panic elsewhere poisoned the lock: the child must not outlive us.
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The repository's `prometheus/` folder: recording and alerting rules with their tests.
fn rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../prometheus")
}

/// Percent-encodes a query parameter value (everything but RFC 3986's unreserved set).
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `(trace id, span id)` of a `traceparent` header value.
fn parse_traceparent(value: &str) -> (String, String) {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    assert!(
        parts.len() == 4 && parts[0] == "00" && hex(parts[1], 32) && hex(parts[2], 16),
        "malformed traceparent {value:?}"
    );
    assert_eq!(parts[3], "01", "the demo samples every request: {value}");
    (parts[1].to_owned(), parts[2].to_owned())
}

/// Whether any exemplar in a `query_exemplars` answer carries this trace id on a
/// `/products/{id}` series; returns that exemplar's labels.
fn find_exemplar(data: &Value, trace_id: &str) -> Option<Value> {
    data.as_array()?
        .iter()
        .filter(|series| series["seriesLabels"]["route"] == "/products/{id}")
        .flat_map(|series| series["exemplars"].as_array().into_iter().flatten())
        .find(|e| e["labels"]["trace_id"] == trace_id)
        .map(|e| e["labels"].clone())
}

#[tokio::test]
async fn prometheus_scrapes_the_demo_and_keeps_trace_exemplars() {
    let s = Running::with_token().await;
    let target = s.base.trim_start_matches("http://").to_owned();
    let prom = PrometheusProcess::start(&target);
    // Exemplars are filtered on their own timestamp: start the window before any request.
    let t0 = unix_now() - 5.0;

    // Some traffic of every kind, then the request whose trace we follow, last on its
    // series so no later request takes its exemplar slot.
    for path in [
        "/healthz",
        "/fail",
        "/products/1",
        "/products/2",
        "/nowhere",
    ] {
        s.get(path).send().await.unwrap();
    }
    let res = s.get("/products/3").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let traceparent = res
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .expect("the demo answers with a traceparent")
        .to_owned();
    let (trace_id, span_id) = parse_traceparent(&traceparent);

    let client = reqwest::Client::new();
    let scrape_url = format!("{}/metrics", s.base);
    prom.wait_for("the demo target to be up with no scrape error", || {
        let (client, prom, scrape_url) = (&client, &prom, &scrape_url);
        async move {
            let data = prom.api(client, "targets", &[]).await?;
            let target = data["activeTargets"]
                .as_array()
                .and_then(|ts| ts.iter().find(|t| t["scrapeUrl"] == scrape_url.as_str()))
                .ok_or_else(|| format!("no target {scrape_url} yet: {data}"))?;
            if target["health"] == "up" && target["lastError"] == "" {
                Ok(())
            } else {
                Err(format!("target not healthy: {target}"))
            }
        }
    })
    .await;

    // The counts arrived as numbers Prometheus understood.
    prom.wait_for("the /products/{id} request count", || {
        let (client, prom) = (&client, &prom);
        async move {
            let data = prom
                .api(
                    client,
                    "query",
                    &[(
                        "query",
                        r#"sum(http_server_requests_total{route="/products/{id}",status="200"})"#,
                    )],
                )
                .await?;
            match data["result"][0]["value"][1].as_str() {
                Some("3") => Ok(()),
                other => Err(format!("sum is {other:?}: {data}")),
            }
        }
    })
    .await;

    // The process collector's families, under the names dashboards made for
    // Prometheus's client libraries query, with values a live process has.
    for (query, check) in [
        ("process_resident_memory_bytes > 1e6", "resident memory"),
        (
            "process_open_fds >= 3 and process_open_fds <= process_max_fds",
            "descriptors",
        ),
        ("rate(process_cpu_seconds_total[1m]) >= 0", "a CPU rate"),
        ("time() - process_start_time_seconds > 0", "the start time"),
        (
            r#"service_build_info{service="checkout",diag_version!=""} == 1"#,
            "build info",
        ),
        ("sum(tokio_workers) >= 1", "the runtime's workers"),
        (
            // The README's join: any series split by the version that served it.
            r#"sum by (job, version) (http_server_requests_total{route="/products/{id}"}
                 * on (job, instance) group_left (version) service_build_info) == 3"#,
            "request counts by version",
        ),
    ] {
        prom.wait_for(&format!("{check} ({query})"), || {
            let (client, prom) = (&client, &prom);
            async move {
                let data = prom.api(client, "query", &[("query", query)]).await?;
                match data["result"].as_array().map(Vec::len) {
                    Some(1) => Ok(()),
                    _ => Err(format!("no single series answers: {data}")),
                }
            }
        })
        .await;
    }

    // The shipped recording rules evaluate to series for the demo's route (so they name
    // the metrics and labels diag really exposes), and no rule failed to evaluate.
    // The demo's cache misses call its pricing dependency: the dependency rules too.
    let route = r#"{job="checkout",method="GET",route="/products/{id}"}"#;
    let pricing = r#"{job="checkout",server_address="pricing.internal"}"#;
    let job = r#"{job="checkout"}"#;
    for (record, selector) in [
        ("job:http_server_requests:rate1h", job),
        ("job:http_server_errors:ratio_rate5m", job),
        ("job:http_server_errors:ratio_rate6h", job),
        ("job_route:http_server_requests:rate5m", route),
        ("job_route:http_server_errors:ratio_rate5m", route),
        (
            "job_route:http_server_request_duration_seconds:p99_5m",
            route,
        ),
        ("job_route:http_server_requests_abandoned:rate5m", route),
        ("job_server:http_client_requests:rate5m", pricing),
        ("job_server:http_client_errors:ratio_rate5m", pricing),
        (
            "job_server:http_client_request_duration_seconds:p99_5m",
            pricing,
        ),
    ] {
        let query = format!("{record}{selector}");
        prom.wait_for(&format!("the recording rule {record}"), || {
            let (client, prom, query) = (&client, &prom, &query);
            async move {
                let data = prom.api(client, "query", &[("query", query)]).await?;
                // NaN is a value too: with no traffic since the first scrape, the
                // rates are 0 and the ratio 0/0.
                match data["result"][0]["value"][1].as_str() {
                    Some(v) if v.parse::<f64>().is_ok() => Ok(()),
                    _ => Err(format!("no series yet: {data}")),
                }
            }
        })
        .await;
    }
    let rules = prom.api(&client, "rules", &[]).await.unwrap();
    let groups = rules["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 5, "{rules}");
    for rule in groups.iter().flat_map(|g| g["rules"].as_array().unwrap()) {
        assert_eq!(
            rule["health"], "ok",
            "a shipped rule fails to evaluate: {rule}"
        );
    }

    for metric in [
        "http_server_request_duration_seconds_bucket",
        "http_server_requests_total",
    ] {
        let labels = prom
            .wait_for(
                &format!("trace {trace_id} as an exemplar of {metric}"),
                || {
                    let (client, prom, trace_id) = (&client, &prom, &trace_id);
                    async move {
                        let (start, end) =
                            (format!("{t0:.3}"), format!("{:.3}", unix_now() + 60.0));
                        let params = [("query", metric), ("start", &start), ("end", &end)];
                        let data = prom.api(client, "query_exemplars", &params).await?;
                        find_exemplar(&data, trace_id)
                            .ok_or_else(|| format!("not among the exemplars yet: {data}"))
                    }
                },
            )
            .await;
        assert_eq!(labels["span_id"], span_id.as_str(), "{metric}: {labels}");
    }

    // Nothing of what was scraped was refused (out-of-order exemplars, duplicate or
    // out-of-bounds samples, limits), as Prometheus counts it about itself.
    let own = common::text(client.get(format!("{}/metrics", prom.base))).await;
    let refused: Vec<&str> = own
        .lines()
        .filter(|l| l.starts_with("prometheus_target_scrapes_"))
        .filter(|l| l.rsplit(' ').next() != Some("0"))
        .collect();
    assert!(
        own.contains("prometheus_target_scrapes_exemplar_out_of_order_total"),
        "Prometheus no longer reports refused exemplars under this name:\n{own}"
    );
    assert!(
        refused.is_empty(),
        "Prometheus refused some of the scrape: {refused:?}"
    );
}

#[tokio::test]
async fn promtool_accepts_the_classic_exposition() {
    let s = Running::with_token().await;
    for path in ["/healthz", "/products/5", "/fail", "/nowhere/at/all"] {
        s.get(path).send().await.unwrap();
    }
    let res = s
        .get("/metrics")
        .header("accept", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            "http_server_requests_total{method=\"GET\",route=\"/products/{id}\",status=\"200\"} 1"
        ),
        "{text}"
    );
    check_with_promtool(&text);
}

/// The shipped rules are valid, and fire (or stay quiet) as `prometheus/rules_test.yml`
/// says.
#[test]
fn promtool_checks_and_tests_the_shipped_rules() {
    for args in [
        ["check", "rules", "rules.yml"],
        ["test", "rules", "rules_test.yml"],
    ] {
        let out = match Command::new("promtool")
            .args(args)
            .current_dir(rules_dir())
            .output()
        {
            Ok(out) => out,
            Err(e) => panic!("cannot start `promtool` ({e}): {INSTALL_HINT}"),
        };
        assert!(
            out.status.success(),
            "promtool {} failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs `promtool check metrics` on `text`, failing the test on any complaint.
fn check_with_promtool(text: &str) {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("cannot start `promtool` ({e}): {INSTALL_HINT}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}\n--- exposition ---\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn traceparent_parsing() {
    let (t, s) = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert_eq!(t, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(s, "00f067aa0ba902b7");
    assert!(std::panic::catch_unwind(|| parse_traceparent("00-abc-def-01")).is_err());
    assert_eq!(percent_encode(r#"a{b="/c"}"#), "a%7Bb%3D%22%2Fc%22%7D");
}
