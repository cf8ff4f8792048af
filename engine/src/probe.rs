//! A way of writing that may not work on this account (a PATCH that may answer 405, a create
//! used as a look that may be refused): tried by one request at a time until one answer
//! settles it, so the requests waiting learn from that answer instead of each repeating it.

use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Mutex, MutexGuard};

#[derive(Default)]
pub struct Probe {
    settled: AtomicBool,
    turn: Mutex<()>,
}

impl Probe {
    /// While unsettled, waits for this request's turn (the guard passes it on when dropped);
    /// once settled, `None` at once.
    pub async fn turn(&self) -> Option<MutexGuard<'_, ()>> {
        if self.is_settled() {
            return None;
        }
        let guard = self.turn.lock().await;
        (!self.is_settled()).then_some(guard)
    }

    /// An answer said what the way does: requests go together from now on.
    pub fn settle(&self) {
        self.settled.store(true, Ordering::Relaxed);
    }

    pub fn is_settled(&self) -> bool {
        self.settled.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn one_at_a_time_until_settled_then_together() {
        let probe = Arc::new(Probe::default());
        let first = probe.turn().await.expect("unsettled: a turn");
        let waiting = tokio::spawn({
            let probe = Arc::clone(&probe);
            async move { probe.turn().await.is_none() }
        });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "the second waits for the first's answer"
        );
        probe.settle();
        drop(first);
        assert!(
            waiting.await.unwrap(),
            "settled while it waited: no turn needed"
        );
        assert!(probe.turn().await.is_none());
    }
}
