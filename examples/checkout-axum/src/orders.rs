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
    /// `probe` counts what goes in, comes out and is refused for diag's `queues`
    /// provider: an order is consumed when the worker takes it off the queue, so the
    /// probe's depth is the orders waiting, not the one being fulfilled.
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
                // Off the queue: counted now, before the work (a count after it read a
                // full queue of 2 as depth 3).
                if let Some(p) = &consumer {
                    p.consumed();
                }
                // Simulated fulfilment work.
                tokio::time::sleep(Duration::from_millis(2)).await;
                tracing::debug!(
                    order_id = order.id,
                    product_id = order.request.product_id,
                    qty = order.request.qty,
                    "order fulfilled"
                );
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
        Orders {
            tx,
            next_id: Arc::new(AtomicU64::new(1)),
            processed,
            probe,
        }
    }

    /// Queues an order; returns its id. An order the queue refuses (full, or its
    /// worker gone) is counted as rejected, never as produced.
    pub fn submit(&self, request: OrderRequest) -> Result<u64, EnqueueError> {
        let slot = match self.tx.try_reserve() {
            Ok(slot) => slot,
            Err(e) => {
                if let Some(p) = &self.probe {
                    p.rejected();
                }
                return Err(match e {
                    mpsc::error::TrySendError::Full(()) => EnqueueError::Full,
                    mpsc::error::TrySendError::Closed(()) => EnqueueError::Closed,
                });
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Counted while the slot is held, before the worker can take the order: the
        // consumed count never runs ahead of the produced one.
        if let Some(p) = &self.probe {
            p.produced();
        }
        slot.send(Order { id, request });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> OrderRequest {
        OrderRequest {
            product_id: 7,
            qty: 1,
        }
    }

    /// The clock is paused: the worker's 2 ms of work only pass when the test waits.
    #[tokio::test(start_paused = true)]
    async fn refused_orders_are_rejected_and_taken_ones_consumed_before_the_work() {
        let diag = diag_core::Diag::builder().build().unwrap();
        let probe = diag.queue("orders").unwrap();
        let orders = Orders::start(2, Some(probe.clone()));
        // The worker has not run yet: two orders fit, the third is refused.
        assert_eq!(orders.submit(order()).unwrap(), 1);
        assert_eq!(orders.submit(order()).unwrap(), 2);
        assert!(matches!(orders.submit(order()), Err(EnqueueError::Full)));
        assert_eq!(
            (
                probe.produced_total(),
                probe.rejected_total(),
                probe.depth()
            ),
            (2, 1, 2)
        );

        // The worker takes the first order and works on it (until 2 ms).
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(orders.processed.load(Ordering::Relaxed), 0, "still working");
        assert_eq!(probe.consumed_total(), 1, "counted as it left the queue");
        assert_eq!(probe.depth(), 1, "the one waiting, not the one in hand");
        // Its slot is free again: the next order fits, and depth stays within capacity.
        assert_eq!(orders.submit(order()).unwrap(), 3);
        assert_eq!(probe.depth(), 2);
        let snap = probe.snapshot();
        assert_eq!(snap.capacity, Some(2));
        assert!(snap.consumer_lagging, "it refused an order: {snap:?}");

        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(orders.processed.load(Ordering::Relaxed), 3);
        assert_eq!(
            (
                probe.consumed_total(),
                probe.depth(),
                probe.rejected_total()
            ),
            (3, 0, 1)
        );
    }

    #[tokio::test]
    async fn a_closed_queue_rejects() {
        let diag = diag_core::Diag::builder().build().unwrap();
        let probe = diag.queue("orders").unwrap();
        let (tx, rx) = mpsc::channel::<Order>(4);
        drop(rx);
        let orders = Orders {
            tx,
            next_id: Arc::new(AtomicU64::new(1)),
            processed: Arc::new(AtomicU64::new(0)),
            probe: Some(probe.clone()),
        };
        assert!(matches!(orders.submit(order()), Err(EnqueueError::Closed)));
        assert_eq!((probe.produced_total(), probe.rejected_total()), (0, 1));
    }
}
