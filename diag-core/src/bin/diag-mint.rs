//! `diag-mint [TTL_SECONDS]`: prints a signed `X-Debug` credential valid for
//! TTL_SECONDS (default 300, at most 86400), keyed by `DIAG_DEBUG_TOKEN`, or by
//! `DIAG_TOKEN` when that is unset, exactly as the service keys its check.
//!
//! ```sh
//! curl -H "X-Debug: $(DIAG_TOKEN=... diag-mint 600)" https://service/checkout
//! ```

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use diag_core::debug::{MAX_TTL, sign_credential};

fn main() -> ExitCode {
    let ttl = match std::env::args().nth(1) {
        None => 300,
        Some(arg) if arg == "-h" || arg == "--help" => {
            println!(
                "usage: diag-mint [TTL_SECONDS]\n\
                 Prints a signed X-Debug credential (default TTL 300 s, at most {} s),\n\
                 keyed by $DIAG_DEBUG_TOKEN, or $DIAG_TOKEN when that is unset.",
                MAX_TTL.as_secs()
            );
            return ExitCode::SUCCESS;
        }
        Some(arg) => match arg.parse::<u64>() {
            Ok(ttl) => ttl,
            Err(_) => {
                eprintln!("diag-mint: `{arg}` is not a number of seconds");
                return ExitCode::from(2);
            }
        },
    };
    if Duration::from_secs(ttl) > MAX_TTL {
        eprintln!(
            "diag-mint: a credential lives at most {} s",
            MAX_TTL.as_secs()
        );
        return ExitCode::from(2);
    }
    // Trimmed as the service trims its token (a secret file's trailing newline).
    let key = ["DIAG_DEBUG_TOKEN", "DIAG_TOKEN"].iter().find_map(|name| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim_ascii().to_owned())
            .filter(|v| !v.is_empty())
    });
    let Some(key) = key else {
        eprintln!("diag-mint: set DIAG_DEBUG_TOKEN or DIAG_TOKEN to the service's token");
        return ExitCode::from(2);
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    println!("{}", sign_credential(key.as_bytes(), now + ttl));
    eprintln!(
        "diag-mint: valid for {ttl} s (until unix time {})",
        now + ttl
    );
    ExitCode::SUCCESS
}
