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

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = rt.block_on(async {
        let start = Instant::now() + Duration::from_millis(50);
        let tasks: Vec<_> = (0..conns)
            .map(|i| {
                let debug = i < debug_conns;
                let request = if debug {
                    format!("GET /products/7 HTTP/1.1\r\nhost: bench\r\nx-debug: {token}\r\n\r\n")
                } else {
                    "GET /products/7 HTTP/1.1\r\nhost: bench\r\n\r\n".to_owned()
                };
                // Spread the connections' schedules evenly over one interval.
                let first = start + interval.mul_f64(i as f64 / conns as f64);
                let task = connection(addr, request, first, interval, start + duration);
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

/// One keep-alive connection: sends on schedule, returns each request's latency (µs)
/// from its due time.
async fn connection(
    addr: SocketAddr,
    request: String,
    first: Instant,
    interval: Duration,
    end: Instant,
) -> Result<Vec<u64>, BoxError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(4096);
    let mut latencies = Vec::new();
    let mut due = first;
    while due < end {
        wait_until(due).await;
        stream.write_all(request.as_bytes()).await?;
        read_response(&mut stream, &mut buf).await?;
        latencies.push(due.elapsed().as_micros() as u64);
        due += interval;
    }
    Ok(latencies)
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
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
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
