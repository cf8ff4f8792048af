//! A budget of record bytes between stdin and the API: the reader takes bytes before it hands
//! a record on, and they come back once the record is written or rejected. Memory is then
//! bounded by bytes, not by a count of records, whatever the records' width.

use std::sync::{Arc, Condvar, Mutex};

#[derive(Clone)]
pub struct ByteBudget {
    inner: Arc<(Mutex<State>, Condvar)>,
    capacity: usize,
}

struct State {
    available: usize,
    closed: bool,
}

impl ByteBudget {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new((
                Mutex::new(State {
                    available: capacity,
                    closed: false,
                }),
                Condvar::new(),
            )),
            capacity,
        }
    }

    /// What `bytes` costs: a record wider than the whole budget takes all of it, so it still
    /// goes through, alone.
    fn cost(&self, bytes: usize) -> usize {
        bytes.min(self.capacity)
    }

    /// Blocks the calling (reader) thread until `cost(bytes)` is available and returns that
    /// cost, to be released later; `None` once the budget is closed (the sync is stopping).
    pub fn acquire(&self, bytes: usize) -> Option<usize> {
        self.acquire_or_else(bytes, || true)
    }

    /// As `acquire`, but when the bytes are not there yet, first calls `before_waiting`
    /// (without the lock held); its `false` gives up, as a closed budget does.
    pub fn acquire_or_else(
        &self,
        bytes: usize,
        before_waiting: impl FnOnce() -> bool,
    ) -> Option<usize> {
        let cost = self.cost(bytes);
        let (lock, ready) = &*self.inner;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        if !state.closed && state.available < cost {
            drop(state);
            if !before_waiting() {
                return None;
            }
            state = lock.lock().unwrap_or_else(|e| e.into_inner());
            while !state.closed && state.available < cost {
                state = ready.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        }
        if state.closed {
            return None;
        }
        state.available -= cost;
        Some(cost)
    }

    /// Gives back costs that `acquire` returned.
    pub fn release(&self, cost: usize) {
        if cost == 0 {
            return;
        }
        let (lock, ready) = &*self.inner;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        state.available = (state.available + cost).min(self.capacity);
        ready.notify_all();
    }

    /// Wakes and refuses every waiting and later `acquire`.
    pub fn close(&self) {
        let (lock, ready) = &*self.inner;
        lock.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_record_wider_than_the_budget_takes_all_of_it() {
        let budget = ByteBudget::new(100);
        assert_eq!(budget.acquire(1_000), Some(100));
        budget.release(100);
        assert_eq!(budget.acquire(100), Some(100));
    }

    #[test]
    fn a_waiting_reader_resumes_on_release() {
        let budget = ByteBudget::new(100);
        assert_eq!(budget.acquire(80), Some(80));
        let waiter = {
            let budget = budget.clone();
            std::thread::spawn(move || budget.acquire(50))
        };
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished(), "only 20 bytes are free");
        budget.release(80);
        assert_eq!(waiter.join().unwrap(), Some(50));
        let blocked = {
            let budget = budget.clone();
            std::thread::spawn(move || budget.acquire(100))
        };
        std::thread::sleep(Duration::from_millis(20));
        budget.close();
        assert_eq!(blocked.join().unwrap(), None, "closing refuses the waiter");
    }

    #[test]
    fn the_reader_hands_on_what_it_holds_only_before_waiting() {
        let budget = ByteBudget::new(100);
        let mut calls = 0;
        assert_eq!(
            budget.acquire_or_else(60, || {
                calls += 1;
                true
            }),
            Some(60)
        );
        assert_eq!(calls, 0, "the bytes were there");
        // Short of bytes: the hook runs (here it gives the bytes back, as a written chunk
        // would), then the wait succeeds.
        let giver = budget.clone();
        assert_eq!(
            budget.acquire_or_else(60, || {
                calls += 1;
                giver.release(60);
                true
            }),
            Some(60)
        );
        assert_eq!(calls, 1);
        assert_eq!(
            budget.acquire_or_else(60, || false),
            None,
            "a false hook gives up"
        );
    }
}
