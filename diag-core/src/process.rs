//! What the operating system and the Tokio runtime say about this process, read on
//! demand: by the `process` state provider and by the process collector on `/metrics`.
//! Nothing here runs on a request's path or in the background.
//!
//! On Linux the figures come from `/proc/self` (one read of `stat`, one of `limits`, a
//! count of `fd`); CPU time from `getrusage` on every Unix. A figure the platform does
//! not give is `None`, never a made-up zero.

use std::time::SystemTime;

use crate::clock::unix_seconds;

/// The process as the kernel sees it; each field `None` where the platform does not say.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ProcessStats {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set size, bytes.
    pub resident_bytes: Option<u64>,
    /// Virtual memory size, bytes.
    pub virtual_bytes: Option<u64>,
    /// Operating system threads.
    pub threads: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit on open descriptors.
    pub max_fds: Option<u64>,
    /// When the process started, seconds since the Unix epoch (from the kernel, so it
    /// is the process's start, not diag's).
    pub start_time_unix: Option<f64>,
}

impl ProcessStats {
    /// When the process started, as Unix seconds (the kernel's figure, else `fallback`),
    /// and how long ago, to the millisecond: what the `process` provider and the `/debug`
    /// index both show.
    pub(crate) fn start_and_uptime(&self, fallback: SystemTime) -> (f64, f64) {
        let start = self
            .start_time_unix
            .unwrap_or_else(|| unix_seconds(fallback));
        let uptime = (crate::clock::unix_now() - start).max(0.0);
        (start, (uptime * 1000.0).round() / 1000.0)
    }

    /// Reads the figures now.
    pub(crate) fn read() -> ProcessStats {
        let mut stats = ProcessStats {
            cpu_seconds: cpu_seconds(),
            ..ProcessStats::default()
        };
        #[cfg(target_os = "linux")]
        linux::fill(&mut stats);
        stats
    }
}

/// `getrusage(RUSAGE_SELF)`: user plus system time, to the microsecond.
#[cfg(unix)]
fn cpu_seconds() -> Option<f64> {
    // SAFETY: `getrusage` writes a `rusage` into the zeroed value we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(secs(usage.ru_utime) + secs(usage.ru_stime))
}

#[cfg(not(unix))]
fn cpu_seconds() -> Option<f64> {
    None
}

#[cfg(target_os = "linux")]
mod linux {
    use super::ProcessStats;

    pub(super) fn fill(stats: &mut ProcessStats) {
        // SAFETY: `sysconf` only reads configuration values.
        let (tick, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if let Some(stat) = read("/proc/self/stat").as_deref().and_then(parse_stat) {
            stats.threads = Some(stat.threads);
            stats.virtual_bytes = Some(stat.vsize);
            if page > 0 {
                stats.resident_bytes = Some(stat.rss_pages * page as u64);
            }
            let boot = read("/proc/stat").as_deref().and_then(boot_time);
            if let (Some(boot), true) = (boot, tick > 0) {
                stats.start_time_unix = Some(boot as f64 + stat.start_ticks as f64 / tick as f64);
            }
        }
        stats.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        stats.max_fds = read("/proc/self/limits")
            .as_deref()
            .and_then(max_open_files);
    }

    fn read(path: &str) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    /// The fields of `/proc/<pid>/stat` used here.
    #[derive(Debug, PartialEq)]
    pub(super) struct Stat {
        pub threads: u64,
        pub start_ticks: u64,
        pub vsize: u64,
        pub rss_pages: u64,
    }

    /// Parses `/proc/<pid>/stat` (proc(5)). The command name (field 2) is in
    /// parentheses and may itself hold spaces and parentheses, so the fields are
    /// counted from the *last* `)`.
    pub(super) fn parse_stat(text: &str) -> Option<Stat> {
        let rest = &text[text.rfind(')')? + 1..];
        // `rest` starts at field 3 (state): field n is at index n - 3.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(Stat {
            threads: field(20)?,
            start_ticks: field(22)?,
            vsize: field(23)?,
            rss_pages: field(24)?,
        })
    }

    /// The `btime` line of `/proc/stat`: boot time, seconds since the Unix epoch.
    pub(super) fn boot_time(text: &str) -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|n| n.trim().parse().ok())
    }

    /// The soft limit from the `Max open files` line of `/proc/self/limits`.
    pub(super) fn max_open_files(limits: &str) -> Option<u64> {
        limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    }
}

/// The most workers reported one by one, in `/debug/state/process` and as
/// `tokio_worker_busy_seconds_total` series.
pub(crate) const MAX_WORKERS_SHOWN: usize = 64;

/// What the Tokio runtime the caller runs on reports about itself (stable
/// `tokio::runtime::RuntimeMetrics` only); `/debug/state/process` shows it as it is.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct RuntimeStats {
    pub flavor: String,
    pub workers: usize,
    pub alive_tasks: usize,
    /// Tasks waiting in the shared injection queue: a deep one means workers are busy.
    pub global_queue_depth: usize,
    /// Per worker (at most [`MAX_WORKERS_SHOWN`]): seconds busy and times parked since
    /// the runtime started.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_worker: Vec<WorkerStats>,
}

/// One runtime worker's totals.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct WorkerStats {
    pub busy_seconds: f64,
    pub park_count: u64,
}

impl RuntimeStats {
    /// The current runtime's figures, `None` outside a Tokio runtime.
    pub(crate) fn read() -> Option<RuntimeStats> {
        let handle = tokio::runtime::Handle::try_current().ok()?;
        let m = handle.metrics();
        #[cfg(target_has_atomic = "64")]
        let per_worker = (0..m.num_workers().min(MAX_WORKERS_SHOWN))
            .map(|w| WorkerStats {
                busy_seconds: m.worker_total_busy_duration(w).as_secs_f64(),
                park_count: m.worker_park_count(w),
            })
            .collect();
        #[cfg(not(target_has_atomic = "64"))]
        let per_worker = Vec::new();
        Some(RuntimeStats {
            flavor: format!("{:?}", handle.runtime_flavor()),
            workers: m.num_workers(),
            alive_tasks: m.num_alive_tasks(),
            global_queue_depth: m.global_queue_depth(),
            per_worker,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn parses_proc_formats() {
        use linux::*;
        // A command name with a space and a `)` in it, as proc(5) allows.
        let stat = "4242 (my) app) S 1 4242 4242 0 -1 4194560 1500 0 0 0 \
                    120 30 0 0 20 0 7 0 987654 123456789 2500 18446744073709551615 \
                    1 1 0 0 0 0 0 4096 17920 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(stat),
            Some(Stat {
                threads: 7,
                start_ticks: 987654,
                vsize: 123456789,
                rss_pages: 2500,
            })
        );
        assert_eq!(parse_stat("4242 (cut short) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1795700000\nprocesses 9\n"),
            Some(1_795_700_000)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(max_open_files("Max processes 10 10\n"), None);
    }

    #[test]
    fn uptime_for_people_stops_at_the_millisecond() {
        let started = SystemTime::now() - std::time::Duration::from_nanos(1_516_033_882);
        let (start, uptime) = ProcessStats::default().start_and_uptime(started);
        assert_eq!(
            start,
            unix_seconds(started),
            "no kernel figure: the fallback"
        );
        assert!((1.516..1.6).contains(&uptime), "{uptime}");
        assert_eq!((uptime * 1000.0).round() / 1000.0, uptime, "{uptime}");
        let kernel = ProcessStats {
            start_time_unix: Some(unix_seconds(started) - 60.0),
            ..Default::default()
        };
        let (start, uptime) = kernel.start_and_uptime(started);
        assert_eq!(
            start,
            unix_seconds(started) - 60.0,
            "the kernel's figure first"
        );
        assert!((61.5..61.6).contains(&uptime), "{uptime}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let before = ProcessStats::read();
        // Burn some CPU so the counter has to move.
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let after = ProcessStats::read();
        assert!(after.cpu_seconds.unwrap() > before.cpu_seconds.unwrap());
        assert!(after.resident_bytes.unwrap() > 1 << 20);
        assert!(after.virtual_bytes.unwrap() >= after.resident_bytes.unwrap());
        assert!(after.threads.unwrap() >= 1);
        assert!(after.open_fds.unwrap() >= 3);
        assert!(after.max_fds.unwrap() >= after.open_fds.unwrap());
        // The process started before this test and after the Unix epoch plus 2020.
        let start = after.start_time_unix.unwrap();
        let now = crate::clock::unix_now();
        assert!(
            start > 1.58e9 && start <= now + 1.0,
            "start {start}, now {now}"
        );
    }
}
