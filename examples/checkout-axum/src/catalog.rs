//! Products, cached in process and priced by a slow dependency on a miss.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diag_core::Diag;
use serde::Serialize;
use tokio::sync::RwLock;

/// A product as the API returns it.
#[derive(Clone, Debug, Serialize)]
pub struct Product {
    /// Its id.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// Price in cents, from the pricing dependency.
    pub price_cents: u64,
}

/// The product cache.
#[derive(Debug)]
pub struct Catalog {
    entries: RwLock<HashMap<u64, Product>>,
    hits: AtomicU64,
    misses: AtomicU64,
    latency_ms: (u64, u64),
    /// Times each pricing call for `http_client_request_duration_seconds` and
    /// `/debug/state/dependencies`.
    diag: Diag,
}

/// Where the (simulated) pricing dependency lives, as `server_address` shows it.
pub const PRICING_ADDRESS: &str = "pricing.internal";

/// What `/debug/state/cache` shows.
#[derive(Debug, Serialize)]
pub struct CacheSummary {
    entries: usize,
    hits: u64,
    misses: u64,
    hit_ratio: f64,
}

/// The most products the cache keeps; beyond it, the cache is cleared (a demo policy).
const MAX_ENTRIES: usize = 10_000;

impl Catalog {
    /// An empty cache in front of a pricing dependency answering in `latency_ms` (min, max).
    pub fn new(latency_ms: (u64, u64), diag: &Diag) -> Self {
        Catalog {
            entries: RwLock::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            latency_ms,
            diag: diag.clone(),
        }
    }

    /// The product, from the cache or, on a miss, from the pricing dependency.
    pub async fn get(&self, id: u64) -> Product {
        if let Some(p) = self.entries.read().await.get(&id).cloned() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(product_id = id, "cache hit");
            return p;
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(product_id = id, "cache miss, asking pricing");
        // The pricing service is simulated in process; a real client (reqwest, say) is
        // timed the same way (a tower client: `PropagateLayer::with_metrics`).
        let call = self.diag.client_call("GET", PRICING_ADDRESS);
        let price_cents = fetch_price(id, self.latency_ms).await;
        call.finish(200);
        let product = Product {
            id,
            name: format!("Product #{id}"),
            price_cents,
        };
        let mut entries = self.entries.write().await;
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(id, product.clone());
        product
    }

    /// Counts for the `cache` state provider.
    pub fn summary(&self) -> CacheSummary {
        let hits = self.hits.load(Ordering::Relaxed);
        let misses = self.misses.load(Ordering::Relaxed);
        let entries = self.entries.try_read().map(|e| e.len()).unwrap_or(0);
        CacheSummary {
            entries,
            hits,
            misses,
            hit_ratio: if hits + misses == 0 {
                0.0
            } else {
                hits as f64 / (hits + misses) as f64
            },
        }
    }
}

/// The simulated slow pricing dependency.
#[tracing::instrument(level = "debug", name = "pricing_fetch")]
async fn fetch_price(id: u64, latency_ms: (u64, u64)) -> u64 {
    let (lo, hi) = latency_ms;
    // A cheap deterministic jitter: this is a demo, not a simulation study.
    let spread = hi.saturating_sub(lo).max(1);
    let ms = lo + (id.wrapping_mul(2_654_435_761) % spread);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    tracing::debug!(latency_ms = ms, "pricing answered");
    1_000 + id % 9_000
}
