//! A stand-in OTLP/HTTP collector for the load benchmarks: answers every `POST` with
//! 200 and counts posts and bytes (printed every 10 s to stderr), so a server's export
//! cost can be measured without a real collector's CPU on the server's core.
//!
//! ```text
//! taskset -c 1 target/release/otlp_sink 127.0.0.1:4318 &
//! B_ENV=DIAG_OTLP_ENDPOINT=http://127.0.0.1:4318 benches/load_ab.sh diag diag
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static POSTS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4318".into());
    let listener = TcpListener::bind(&addr)?;
    std::thread::spawn(|| {
        loop {
            std::thread::sleep(Duration::from_secs(10));
            eprintln!(
                "otlp_sink: {} posts, {} bytes",
                POSTS.load(Ordering::Relaxed),
                BYTES.load(Ordering::Relaxed)
            );
        }
    });
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || serve(stream));
    }
    Ok(())
}

/// Requests on one connection until it closes.
fn serve(mut stream: TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() < end + 4 + len {
                break;
            }
            buf.drain(..end + 4 + len);
            POSTS.fetch_add(1, Ordering::Relaxed);
            BYTES.fetch_add(len as u64, Ordering::Relaxed);
            if stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .is_err()
            {
                return;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
