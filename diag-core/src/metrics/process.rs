//! The process collector: on every scrape of `/metrics`, what the operating system
//! and the Tokio runtime say about this process, and what was built, under the names
//! Prometheus's client libraries use (`process_*`), so the dashboards and alerts made
//! for those (memory growth, descriptors near the limit, CPU saturation, restarts)
//! work unchanged. Read at scrape time only: a request pays nothing for it.
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `process_cpu_seconds_total` | counter | | user plus system CPU time |
//! | `process_resident_memory_bytes` | gauge | | resident set size (Linux) |
//! | `process_virtual_memory_bytes` | gauge | | virtual memory size (Linux) |
//! | `process_threads` | gauge | | operating system threads (Linux) |
//! | `process_open_fds` | gauge | | open file descriptors (Linux) |
//! | `process_max_fds` | gauge | | their soft limit (Linux) |
//! | `process_start_time_seconds` | gauge | | when the process started, Unix time |
//! | `service_build_info` | gauge, always 1 | `service`, `version`, `git_sha`, `diag_version`, `diag_instance` | what runs where: join on it to split any series by version |
//! | `tokio_workers` | gauge | | workers of the runtime serving the scrape |
//! | `tokio_alive_tasks` | gauge | | its tasks alive now |
//! | `tokio_global_queue_depth` | gauge | | tasks waiting in its shared queue |
//! | `tokio_worker_busy_seconds_total` | counter | `worker` (the first 64 workers) | time each worker spent busy: its rate is the worker's load, 1.0 saturated |
//!
//! A figure the platform does not give is left out rather than written as 0. Turn the
//! collector off with [`DiagBuilder::process_metrics`](crate::DiagBuilder::process_metrics)
//! when another library already writes these names.

use std::sync::Arc;

use super::collector::{Collector, ScrapeWriter};
use crate::Diag;
use crate::clock::unix_seconds;
use crate::diag::Inner;
use crate::process::{ProcessStats, RuntimeStats};

/// Registers the process collector; called once by the builder unless turned off.
pub(crate) fn register(diag: &Diag) {
    // Weak: the collector lives inside the `Inner` it reads.
    let weak = Arc::downgrade(&diag.inner);
    let _ = diag.inner.metrics.add_collector(Collector {
        collect: Box::new(move |w| {
            if let Some(inner) = weak.upgrade() {
                collect(&inner, ProcessStats::read(), RuntimeStats::read(), w);
            }
        }),
        own: true,
    });
}

fn collect(inner: &Inner, os: ProcessStats, runtime: Option<RuntimeStats>, w: &mut ScrapeWriter) {
    if let Some(cpu) = os.cpu_seconds {
        w.counter_float(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            &[],
            cpu,
        );
    }
    let gauges = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            os.resident_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            os.virtual_bytes,
        ),
        (
            "process_threads",
            "Number of OS threads in the process.",
            os.threads,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            os.open_fds,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            os.max_fds,
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(v) = value {
            w.gauge(name, help, &[], v as f64);
        }
    }
    w.gauge(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        &[],
        os.start_time_unix
            .unwrap_or_else(|| unix_seconds(inner.started_at)),
    );
    w.gauge(
        "service_build_info",
        "The service's build: version and git sha, with the diag version and instance name; always 1.",
        &[
            ("service", &inner.service),
            ("version", &inner.version),
            ("git_sha", inner.git_sha.as_deref().unwrap_or("")),
            ("diag_version", env!("CARGO_PKG_VERSION")),
            ("diag_instance", &inner.instance),
        ],
        1.0,
    );
    if let Some(rt) = runtime {
        runtime_metrics(rt, w);
    }
}

fn runtime_metrics(rt: RuntimeStats, w: &mut ScrapeWriter) {
    w.gauge(
        "tokio_workers",
        "Worker threads of the Tokio runtime serving this scrape.",
        &[],
        rt.workers as f64,
    );
    w.gauge(
        "tokio_alive_tasks",
        "Tasks alive in the Tokio runtime.",
        &[],
        rt.alive_tasks as f64,
    );
    w.gauge(
        "tokio_global_queue_depth",
        "Tasks waiting in the Tokio runtime's shared injection queue.",
        &[],
        rt.global_queue_depth as f64,
    );
    let mut worker = itoa::Buffer::new();
    for (i, stats) in rt.per_worker.iter().enumerate() {
        w.counter_float(
            "tokio_worker_busy_seconds_total",
            "Time each Tokio worker spent busy; its rate is the worker's load (1.0 saturated).",
            &[("worker", worker.format(i))],
            stats.busy_seconds,
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Diag;
    use crate::endpoint::EndpointRequest;

    async fn scrape(diag: &Diag, accept: &str) -> String {
        let req = EndpointRequest {
            method: "GET".into(),
            path: "/metrics".into(),
            headers: vec![("accept".into(), accept.into())],
            ..Default::default()
        };
        String::from_utf8(diag.serve(req).await.body).unwrap()
    }

    /// The value of the sample line starting with `prefix` (name and labels).
    fn value(text: &str, prefix: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no sample {prefix} in:\n{text}"))
            .parse()
            .unwrap()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_the_process_families() {
        let diag = Diag::builder()
            .service("checkout")
            .version("1.2.3")
            .git_sha(Some("abc123"))
            .instance("pod-7")
            .build()
            .unwrap();
        let text = scrape(&diag, "application/openmetrics-text").await;
        for family in [
            "# TYPE process_cpu_seconds counter\n# UNIT process_cpu_seconds seconds\n",
            "# TYPE process_resident_memory_bytes gauge\n# UNIT process_resident_memory_bytes bytes\n",
            "# TYPE process_start_time_seconds gauge\n",
            "# TYPE service_build_info gauge\n",
            "# TYPE tokio_worker_busy_seconds counter\n",
        ] {
            assert!(text.contains(family), "{family:?} missing:\n{text}");
        }
        assert!(value(&text, "process_cpu_seconds_total") > 0.0);
        assert!(value(&text, "process_resident_memory_bytes") > 1e6);
        let (open, max) = (
            value(&text, "process_open_fds"),
            value(&text, "process_max_fds"),
        );
        assert!(open >= 3.0 && max >= open, "{open} of {max}");
        assert!(value(&text, "process_threads") >= 2.0);
        let started = value(&text, "process_start_time_seconds");
        let now = crate::clock::unix_now();
        assert!(started > 1.58e9 && started <= now, "{started}");
        let info = format!(
            "service_build_info{{service=\"checkout\",version=\"1.2.3\",git_sha=\"abc123\",\
             diag_version=\"{}\",diag_instance=\"pod-7\"}}",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(value(&text, &info), 1.0);
        assert_eq!(value(&text, "tokio_workers"), 2.0);
        assert!(value(&text, "tokio_alive_tasks") >= 0.0);
        assert!(value(&text, "tokio_worker_busy_seconds_total{worker=\"1\"}") >= 0.0);
        // Nothing diag wrote was refused by its own collector checks.
        assert_eq!(value(&text, "diag_metrics_collector_dropped_samples"), 0.0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_builder_turns_it_off_and_a_service_may_then_write_the_names() {
        let diag = Diag::builder().process_metrics(false).build().unwrap();
        diag.register_collector(|w| {
            w.gauge(
                "process_open_fds",
                "From the service's own reader.",
                &[],
                42.0,
            );
        })
        .unwrap();
        let text = scrape(&diag, "text/plain").await;
        assert!(!text.contains("process_cpu_seconds_total"), "{text}");
        assert!(!text.contains("service_build_info"), "{text}");
        assert_eq!(value(&text, "process_open_fds"), 42.0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_service_collector_cannot_shadow_them() {
        let diag = Diag::builder().build().unwrap();
        diag.register_collector(|w| {
            w.gauge("process_threads", "A second writer.", &[], -1.0);
        })
        .unwrap();
        let text = scrape(&diag, "text/plain").await;
        assert!(value(&text, "process_threads") >= 1.0 || !cfg!(target_os = "linux"));
        assert_eq!(text.matches("# TYPE process_threads ").count(), 1, "{text}");
        assert!(value(&text, "diag_metrics_collector_dropped_samples") >= 1.0);
    }
}
