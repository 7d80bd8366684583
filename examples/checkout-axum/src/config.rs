//! The demo's configuration, from the environment.

use serde::Serialize;

/// Effective configuration. `pricing_api_key` is a secret: `/debug/state/config` must
/// show it redacted.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// Where to listen (`LISTEN`, default `127.0.0.1:8080`).
    pub listen: String,
    /// Simulated pricing latency range in ms (`PRICING_LATENCY_MS`, default `20-50`).
    pub pricing_latency_ms: (u64, u64),
    /// Order queue capacity (`ORDER_QUEUE_CAPACITY`, default 1024).
    pub order_queue_capacity: usize,
    /// Key for the (simulated) pricing API (`PRICING_API_KEY`).
    pub pricing_api_key: String,
}

impl Config {
    /// Reads the environment, with defaults for everything.
    pub fn from_env() -> Config {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let latency = var("PRICING_LATENCY_MS")
            .and_then(|v| {
                let (a, b) = v.split_once('-')?;
                Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
            })
            .unwrap_or((20, 50));
        Config {
            listen: var("LISTEN").unwrap_or_else(|| "127.0.0.1:8080".to_owned()),
            pricing_latency_ms: latency,
            order_queue_capacity: var("ORDER_QUEUE_CAPACITY")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1024),
            pricing_api_key: var("PRICING_API_KEY")
                .unwrap_or_else(|| "pk_live_demo_5up3r53cr3t".to_owned()),
        }
    }
}
