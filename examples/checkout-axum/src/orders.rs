//! The bounded order queue and the worker that drains it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use diag_core::state::QueueProbe;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// An order as `POST /checkout` takes it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct OrderRequest {
    /// Which product.
    pub product_id: u64,
    /// How many.
    pub qty: u32,
}

#[derive(Debug)]
struct Order {
    id: u64,
    request: OrderRequest,
}

/// Handle to the queue; cheap to clone.
#[derive(Clone, Debug)]
pub struct Orders {
    tx: mpsc::Sender<Order>,
    next_id: Arc<AtomicU64>,
    processed: Arc<AtomicU64>,
    probe: Option<QueueProbe>,
}

/// What `/debug/state/orders` shows.
#[derive(Debug, Serialize)]
pub struct OrdersSummary {
    depth: usize,
    capacity: usize,
    processed: u64,
}

/// Why an order was not taken.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The queue is full: the worker falls behind.
    #[error("the order queue is full; try again shortly")]
    Full,
    /// The worker is gone.
    #[error("the order worker has stopped")]
    Closed,
}

impl Orders {
    /// Creates the queue and spawns its worker on the current runtime.
    /// `probe` counts what goes in and out for diag's `queues` provider.
    pub fn start(capacity: usize, probe: Option<QueueProbe>) -> Orders {
        let (tx, mut rx) = mpsc::channel::<Order>(capacity.max(1));
        if let Some(p) = &probe {
            p.set_capacity(capacity.max(1) as u64);
        }
        let processed = Arc::new(AtomicU64::new(0));
        let done = processed.clone();
        let consumer = probe.clone();
        tokio::spawn(async move {
            while let Some(order) = rx.recv().await {
                // Simulated fulfilment work.
                tokio::time::sleep(Duration::from_millis(2)).await;
                tracing::debug!(
                    order_id = order.id,
                    product_id = order.request.product_id,
                    qty = order.request.qty,
                    "order fulfilled"
                );
                done.fetch_add(1, Ordering::Relaxed);
                if let Some(p) = &consumer {
                    p.consumed();
                }
            }
        });
        Orders {
            tx,
            next_id: Arc::new(AtomicU64::new(1)),
            processed,
            probe,
        }
    }

    /// Queues an order; returns its id.
    pub fn submit(&self, request: OrderRequest) -> Result<u64, EnqueueError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.tx
            .try_send(Order { id, request })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => EnqueueError::Full,
                mpsc::error::TrySendError::Closed(_) => EnqueueError::Closed,
            })?;
        if let Some(p) = &self.probe {
            p.produced();
        }
        Ok(id)
    }

    /// Counts for the `orders` state provider.
    pub fn summary(&self) -> OrdersSummary {
        OrdersSummary {
            depth: self.tx.max_capacity() - self.tx.capacity(),
            capacity: self.tx.max_capacity(),
            processed: self.processed.load(Ordering::Relaxed),
        }
    }
}
