//! The built-in `process` provider: what the operating system says about this process,
//! what was built (version, git sha, build facts), and what the Tokio runtime serving
//! `/debug/state` reports about itself.
//!
//! The git sha comes from the service's build, since diag is compiled apart from it:
//! `Diag::builder().git_sha(option_env!("GIT_SHA"))` reads `GIT_SHA` when the *service*
//! is compiled (set it in CI: `GIT_SHA=$(git rev-parse HEAD) cargo build`), and
//! [`DiagBuilder::build_info`](crate::DiagBuilder::build_info) adds any other fact.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::Serialize;

use crate::Diag;
use crate::process::{ProcessStats, RuntimeStats};

#[derive(Debug, Serialize)]
struct ProcessState {
    pid: u32,
    service: String,
    version: String,
    /// When the process started (the kernel's figure where there is one, else when
    /// `Diag` was built), seconds since the Unix epoch.
    started_at_unix: f64,
    uptime_seconds: f64,
    /// User plus system CPU time since the start, seconds.
    cpu_seconds: Option<f64>,
    /// Resident set size, bytes (Linux).
    rss_bytes: Option<u64>,
    /// Virtual memory size, bytes (Linux).
    virtual_memory_bytes: Option<u64>,
    threads: Option<u64>,
    open_fds: Option<u64>,
    /// The soft limit on open descriptors: `open_fds` creeping towards it is a leak.
    max_fds: Option<u64>,
    build: BuildReport,
    /// `null` when the provider runs outside a Tokio runtime.
    tokio: Option<RuntimeStats>,
}

#[derive(Debug, Serialize)]
struct BuildReport {
    git_sha: Option<String>,
    diag_version: &'static str,
    /// Whatever the service added with `build_info(key, value)`.
    extra: BTreeMap<String, String>,
}

/// Registers `process`; called once by the builder.
pub(crate) fn register(diag: &Diag) {
    // Hold a weak reference so the registry (owned by `Diag`) does not keep itself alive.
    let weak = std::sync::Arc::downgrade(&diag.inner);
    let _ = diag.state().register("process", move || {
        let inner = weak.upgrade();
        let os = ProcessStats::read();
        let (started_at_unix, uptime_seconds) = os.start_and_uptime(
            inner
                .as_ref()
                .map_or(SystemTime::UNIX_EPOCH, |i| i.started_at),
        );
        ProcessState {
            pid: std::process::id(),
            service: inner
                .as_ref()
                .map(|i| i.service.clone())
                .unwrap_or_default(),
            version: inner
                .as_ref()
                .map(|i| i.version.clone())
                .unwrap_or_default(),
            started_at_unix,
            uptime_seconds,
            cpu_seconds: os.cpu_seconds,
            rss_bytes: os.resident_bytes,
            virtual_memory_bytes: os.virtual_bytes,
            threads: os.threads,
            open_fds: os.open_fds,
            max_fds: os.max_fds,
            build: BuildReport {
                git_sha: inner.as_ref().and_then(|i| i.git_sha.clone()),
                diag_version: env!("CARGO_PKG_VERSION"),
                extra: inner
                    .as_ref()
                    .map(|i| i.build_info.clone())
                    .unwrap_or_default(),
            },
            tokio: RuntimeStats::read(),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn reports_this_process() {
        let diag = Diag::builder().version("9.9.9").build().unwrap();
        let rep = diag.state().collect("process").await.unwrap();
        let v = rep.value.unwrap();
        assert_eq!(v["pid"], std::process::id());
        assert_eq!(v["version"], "9.9.9");
        assert!(v["rss_bytes"].as_u64().unwrap() > 0);
        assert!(v["virtual_memory_bytes"].as_u64() >= v["rss_bytes"].as_u64());
        assert!(v["cpu_seconds"].as_f64().unwrap() > 0.0);
        assert!(v["uptime_seconds"].as_f64().unwrap() >= 0.0);
        assert!(v["threads"].as_u64().unwrap() >= 1);
        assert!(v["open_fds"].as_u64().unwrap() >= 3);
        assert!(v["max_fds"].as_u64().unwrap() >= v["open_fds"].as_u64().unwrap());
        assert_eq!(v["build"]["git_sha"], serde_json::Value::Null);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reports_build_info_and_runtime_figures() {
        let diag = Diag::builder()
            .git_sha(Some("0123abc"))
            .build_info("profile", "release")
            .build()
            .unwrap();
        let parked = tokio::spawn(std::future::pending::<()>());
        let rep = diag.state().collect("process").await.unwrap();
        let v = rep.value.unwrap();
        assert_eq!(v["build"]["git_sha"], "0123abc");
        assert_eq!(v["build"]["extra"]["profile"], "release");
        assert_eq!(v["build"]["diag_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(v["tokio"]["flavor"], "MultiThread");
        assert_eq!(v["tokio"]["workers"], 2);
        assert!(v["tokio"]["alive_tasks"].as_u64().unwrap() >= 1);
        assert_eq!(v["tokio"]["per_worker"].as_array().unwrap().len(), 2);
        parked.abort();
        assert!(diag.events().recent()[0].message.contains("0123abc"));
    }
}
