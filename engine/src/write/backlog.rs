//! Rows read ahead and not yet settled, per object: what tells a destination, before its
//! first request for an object, how many rows are coming, so it can choose between looking
//! records up one by one and listing them all.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Input that adds no row for this long has paused (a slow source, or the byte budget full).
const PAUSE: Duration = Duration::from_millis(25);

#[derive(Clone, Debug)]
pub struct Backlog(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// Per object index: rows read and not yet settled.
    waiting: Vec<AtomicU64>,
    /// Rows read in all, to see whether reading goes on.
    read: AtomicU64,
    /// The input has ended (or failed).
    ended: AtomicBool,
}

impl Backlog {
    pub fn new(objects: usize) -> Self {
        Self(Arc::new(Inner {
            waiting: (0..objects).map(|_| AtomicU64::new(0)).collect(),
            read: AtomicU64::new(0),
            ended: AtomicBool::new(false),
        }))
    }

    /// Rows of this object read and not yet settled.
    pub fn waiting(&self, object: usize) -> u64 {
        self.0.waiting[object].load(Ordering::Relaxed)
    }

    /// `rows` more of this object were read.
    pub fn read(&self, object: usize, rows: u64) {
        self.0.waiting[object].fetch_add(rows, Ordering::Relaxed);
        self.0.read.fetch_add(rows, Ordering::Relaxed);
    }

    /// One row of this object settled (written or rejected).
    pub fn settled(&self, object: usize) {
        let _ = self.0.waiting[object]
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// No more input will come.
    pub fn end(&self) {
        self.0.ended.store(true, Ordering::Relaxed);
    }

    /// Waits until the reader has read what it can for now: to the end of the input, or until
    /// reading pauses (the source is slow, or the bytes read ahead are at their budget).
    pub async fn read_ahead(&self) {
        loop {
            if self.0.ended.load(Ordering::Relaxed) {
                return;
            }
            let before = self.0.read.load(Ordering::Relaxed);
            tokio::time::sleep(PAUSE).await;
            if self.0.read.load(Ordering::Relaxed) == before {
                return;
            }
        }
    }
}
