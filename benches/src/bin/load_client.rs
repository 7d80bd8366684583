//! An open-loop HTTP/1.1 load client for `benches/load_rate.sh`: a fixed request rate,
//! latency measured from when each request was *due* (not when it was sent), so a slow
//! response counts against every request queued behind it (no coordinated omission, as
//! in wrk2). wrk is closed-loop: at saturation its latencies are mostly queueing.
//!
//! `load_client ADDR RATE SECONDS CONNECTIONS DEBUG_CONNECTIONS`
//!
//! Requests `GET /products/7` over keep-alive connections, each connection sending
//! `RATE / CONNECTIONS` requests per second on its own schedule. The first
//! `DEBUG_CONNECTIONS` connections send `X-Debug: $DIAG_TOKEN`. Prints one line per
//! kind (normal, debug): count, p50, p99, p99.9 and max latency in µs. With
//! `LATENCIES_OUT=FILE` it also appends every normal request's latency (µs, one per
//! line) to FILE, so a script can pool several runs.
//!
//! With `PHASE_MS=N` (`benches/load_p99.sh`), the run alternates phases of N ms: the
//! debug connections send `X-Debug` only in odd phases and plain requests in even ones,
//! and the normal connections' latencies are split by the phase their request was due
//! in, skipping the first `SETTLE_MS` of each phase (default N / 2: diag keeps its log
//! callsites open for 500 ms after the last debug request). Both halves of the
//! comparison then meet the same machine noise, minute by minute. `PHASE_CONTROL=1`
//! keeps X-Debug off in every phase: an A/A run, the method's own noise.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, rate, secs, conns, debug_conns] = args.as_slice() else {
        return Err("usage: load_client ADDR RATE SECONDS CONNECTIONS DEBUG_CONNECTIONS".into());
    };
    let addr: SocketAddr = addr.parse()?;
    let rate: f64 = rate.parse()?;
    let duration = Duration::from_secs_f64(secs.parse()?);
    let conns: usize = conns.parse()?;
    let debug_conns: usize = debug_conns.parse()?;
    let token = std::env::var("DIAG_TOKEN").unwrap_or_default();
    let interval = Duration::from_secs_f64(conns as f64 / rate);
    let phases = Phases::from_env()?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = rt.block_on(async {
        let start = Instant::now() + Duration::from_millis(50);
        let tasks: Vec<_> = (0..conns)
            .map(|i| {
                let debug = i < debug_conns;
                let plain = "GET /products/7 HTTP/1.1\r\nhost: bench\r\n\r\n".to_owned();
                let requests = if debug {
                    let asks = format!(
                        "GET /products/7 HTTP/1.1\r\nhost: bench\r\nx-debug: {token}\r\n\r\n"
                    );
                    match phases {
                        None => Requests::Always(asks),
                        Some(p) if p.control => Requests::Always(plain),
                        Some(p) => Requests::OddPhases {
                            plain,
                            asks,
                            phase: p.length,
                        },
                    }
                } else {
                    Requests::Always(plain)
                };
                // Spread the connections' schedules evenly over one interval.
                let first = start + interval.mul_f64(i as f64 / conns as f64);
                let task = connection(addr, requests, start, first, interval, start + duration);
                (tokio::spawn(task), debug)
            })
            .collect();
        let mut normal = Vec::new();
        let mut debug = Vec::new();
        for (task, is_debug) in tasks {
            let latencies = task.await??;
            if is_debug { &mut debug } else { &mut normal }.extend(latencies);
        }
        Ok::<_, BoxError>((normal, debug))
    })?;
    let (normal, debug) = results;
    if let Some(phases) = phases {
        phases.report(&normal);
        return Ok(());
    }
    let normal: Vec<u64> = normal.into_iter().map(|(_, l)| l).collect();
    let debug: Vec<u64> = debug.into_iter().map(|(_, l)| l).collect();
    if let Ok(path) = std::env::var("LATENCIES_OUT") {
        use std::io::Write;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let mut out = std::io::BufWriter::new(file);
        for l in &normal {
            writeln!(out, "{l}")?;
        }
        out.flush()?;
    }
    report("normal", normal, duration);
    report("debug", debug, duration);
    Ok(())
}

/// What a connection sends.
enum Requests {
    /// The same request every time.
    Always(String),
    /// `plain` in even phases of `phase`, `asks` (with `X-Debug`) in odd ones.
    OddPhases {
        plain: String,
        asks: String,
        phase: Duration,
    },
}

impl Requests {
    fn at(&self, since_start: Duration) -> &str {
        match self {
            Requests::Always(r) => r,
            Requests::OddPhases { plain, asks, phase } => {
                if (since_start.as_nanos() / phase.as_nanos()) % 2 == 1 {
                    asks
                } else {
                    plain
                }
            }
        }
    }
}

/// One keep-alive connection: sends on schedule, returns each request's due time (since
/// `start`) and latency (µs) from its due time.
async fn connection(
    addr: SocketAddr,
    requests: Requests,
    start: Instant,
    first: Instant,
    interval: Duration,
    end: Instant,
) -> Result<Vec<(Duration, u64)>, BoxError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(4096);
    let mut latencies = Vec::new();
    let mut due = first;
    while due < end {
        wait_until(due).await;
        let since_start = due - start;
        stream
            .write_all(requests.at(since_start).as_bytes())
            .await?;
        read_response(&mut stream, &mut buf).await?;
        latencies.push((since_start, due.elapsed().as_micros() as u64));
        due += interval;
    }
    Ok(latencies)
}

/// The alternating phases of a `PHASE_MS` run.
#[derive(Clone, Copy)]
struct Phases {
    length: Duration,
    settle: Duration,
    control: bool,
}

impl Phases {
    fn from_env() -> Result<Option<Self>, BoxError> {
        let Ok(ms) = std::env::var("PHASE_MS") else {
            return Ok(None);
        };
        let length = Duration::from_millis(ms.parse()?);
        let settle = match std::env::var("SETTLE_MS") {
            Ok(ms) => Duration::from_millis(ms.parse()?),
            Err(_) => length / 2,
        };
        if length.is_zero() || settle >= length {
            return Err("PHASE_MS must be > 0 and SETTLE_MS < PHASE_MS".into());
        }
        let control = std::env::var("PHASE_CONTROL").is_ok_and(|v| v == "1");
        Ok(Some(Phases {
            length,
            settle,
            control,
        }))
    }

    /// The phase a request due at `t` counts in (odd phases carry the debug traffic), or
    /// `None` while the phase settles.
    fn of(&self, t: Duration) -> Option<u128> {
        let index = t.as_nanos() / self.length.as_nanos();
        let into = t.as_nanos() % self.length.as_nanos();
        (into >= self.settle.as_nanos()).then_some(index)
    }

    /// Normal requests' p99 in odd (debug) and even (quiet) phases: the median over
    /// phases of each phase's own p99, then pooled, for the whole run and for each half
    /// of it (how far the estimate moves).
    fn report(&self, normal: &[(Duration, u64)]) {
        let mut by_phase: BTreeMap<u128, Vec<u64>> = BTreeMap::new();
        for &(t, l) in normal {
            if let Some(i) = self.of(t) {
                by_phase.entry(i).or_default().push(l);
            }
        }
        by_phase.values_mut().for_each(|l| l.sort_unstable());
        // Each phase's own p99 (its counted part: ~RATE × 0.9 × (PHASE_MS − SETTLE_MS)
        // requests), then the median over the odd and over the even phases: a stall
        // of the VM lifts the p99 of the phase it falls in, not the median.
        let [even_p99s, odd_p99s] =
            by_parity(by_phase.iter().map(|(i, l)| (*i, vec![quantile(l, 0.99)])));
        let (odd_median, even_median) = (quantile(&odd_p99s, 0.5), quantile(&even_p99s, 0.5));
        println!(
            "per-phase p99, median over phases: odd {odd_median} µs ({} phases), \
             even {even_median} µs ({} phases); odd / even {:.3}",
            odd_p99s.len(),
            even_p99s.len(),
            odd_median as f64 / even_median.max(1) as f64
        );
        // Each odd phase with the even phase before it, for a paired comparison pooled
        // over runs by `load_p99.sh`.
        let pairs: Vec<String> = by_phase
            .iter()
            .filter(|(i, _)| *i % 2 == 1)
            .filter_map(|(i, odd)| {
                let even = by_phase.get(&(i - 1))?;
                Some(format!("{}:{}", quantile(even, 0.99), quantile(odd, 0.99)))
            })
            .collect();
        println!("phase pairs, p99 µs even:odd: {}", pairs.join(" "));
        let label = if self.control {
            "odd phases (no X-Debug: control)"
        } else {
            "odd phases (X-Debug on)"
        };
        let count = by_phase.keys().next_back().map_or(0, |last| last + 1);
        let half = count / 2;
        for (part, phases) in [
            ("whole run", 0..count),
            ("first half", 0..half),
            ("second half", half..count),
        ] {
            let [even, odd] = by_parity(by_phase.range(phases).map(|(i, l)| (*i, l.clone())));
            let (p_odd, p_even) = (quantile(&odd, 0.99), quantile(&even, 0.99));
            println!(
                "{part}: normal requests, {label}: {} requests, p50 {} µs, p99 {} µs; \
                 even phases: {} requests, p50 {} µs, p99 {} µs; p99 odd / even {:.3}",
                odd.len(),
                quantile(&odd, 0.5),
                p_odd,
                even.len(),
                quantile(&even, 0.5),
                p_even,
                p_odd as f64 / p_even.max(1) as f64,
            );
        }
    }
}

/// The values of even and of odd phases, each pooled and sorted.
fn by_parity(phases: impl Iterator<Item = (u128, Vec<u64>)>) -> [Vec<u64>; 2] {
    let mut pooled = [Vec::new(), Vec::new()];
    for (i, values) in phases {
        pooled[(i % 2) as usize].extend(values);
    }
    pooled.iter_mut().for_each(|v| v.sort_unstable());
    pooled
}

/// The `q` quantile of `sorted` (0 when empty).
fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Waits until `due`. tokio's timer ticks in milliseconds, too coarse for latencies of
/// tens of microseconds: it sleeps only to 2 ms before, then yields until the time (the
/// client has a core of its own to spin on).
async fn wait_until(due: Instant) {
    const COARSE: Duration = Duration::from_millis(2);
    loop {
        let now = Instant::now();
        if now >= due {
            return;
        }
        if due - now > COARSE {
            tokio::time::sleep_until((due - COARSE).into()).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
}

/// Reads one response with a `content-length` body.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), BoxError> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(head_end) = find(buf, b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..head_end])?.to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .ok_or("response without content-length")?
                .trim()
                .parse()?;
            if buf.len() >= head_end + 4 + len {
                return Ok(());
            }
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn report(kind: &str, mut latencies: Vec<u64>, duration: Duration) {
    if latencies.is_empty() {
        return;
    }
    latencies.sort_unstable();
    let at = |q| quantile(&latencies, q);
    println!(
        "{kind}: {} requests ({:.0}/s), p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs",
        latencies.len(),
        latencies.len() as f64 / duration.as_secs_f64(),
        at(0.50),
        at(0.99),
        at(0.999),
        latencies[latencies.len() - 1]
    );
}
