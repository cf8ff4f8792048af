//! What finding existing records costs: requests spent by the reconcile toolkit against an
//! account in memory, for the cases: a few rows into a large account, as many rows as
//! records, and rows that trickle in so that nothing tells how many are coming.

mod fake;

use engine::error::Fatal;
use engine::reconcile::{Finder, Page, Reconciler, Stored};
use engine::write::backlog::Backlog;
use fake::Fake;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};

const PAGE: u64 = 100;

/// An account of `records` things named `t0`, `t1`, …, readable by key or page by page.
struct Account {
    records: u64,
    look_ups: AtomicU64,
    pages: AtomicU64,
}

impl Account {
    fn new(records: u64) -> Self {
        Self {
            records,
            look_ups: AtomicU64::new(0),
            pages: AtomicU64::new(0),
        }
    }

    fn stored(i: u64) -> Stored {
        Stored {
            id: i.to_string(),
            key: Some(format!("t{i}")),
            fields: json!({"name": format!("t{i}"), "tag": "old"})
                .as_object()
                .unwrap()
                .clone(),
        }
    }

    fn requests(&self) -> u64 {
        self.look_ups.load(Ordering::Relaxed) + self.pages.load(Ordering::Relaxed)
    }
}

impl Finder<Fake> for Account {
    fn can_look_up(&self, _: Fake) -> bool {
        true
    }

    async fn look_up(&self, _: Fake, key: &str) -> Result<Vec<Stored>, Fatal> {
        self.look_ups.fetch_add(1, Ordering::Relaxed);
        let i: u64 = key.trim_start_matches('t').parse().unwrap();
        Ok((i < self.records)
            .then(|| Self::stored(i))
            .into_iter()
            .collect())
    }

    async fn list_page(&self, _: Fake, next: Option<String>) -> Result<Page, Fatal> {
        self.pages.fetch_add(1, Ordering::Relaxed);
        let page: u64 = next.map_or(0, |n| n.parse().unwrap());
        let start = page * PAGE;
        let end = (start + PAGE).min(self.records);
        Ok(Page {
            records: (start..end).map(Self::stored).collect(),
            next: (end < self.records).then(|| (page + 1).to_string()),
            pages: Some(self.records.div_ceil(PAGE)),
        })
    }
}

/// Finds `rows` keys (every `stride`th record, some past the account's end), the rows all
/// read ahead (`trickle` false) or arriving one at a time; returns the requests spent and how
/// many keys were found.
async fn find_rows(records: u64, rows: u64, stride: u64, trickle: bool) -> (u64, u64) {
    let account = Account::new(records);
    let reconciler = Reconciler::<Fake>::default();
    let backlog = Backlog::new(2);
    reconciler.attach(backlog.clone());
    if !trickle {
        backlog.read(0, rows);
        backlog.end();
    }
    let mut found = 0;
    for row in 0..rows {
        if trickle {
            backlog.read(0, 1);
        }
        let key = format!("t{}", row * stride);
        if !reconciler
            .find(&account, Fake::Thing, &key)
            .await
            .unwrap()
            .is_empty()
        {
            found += 1;
        }
        backlog.settled(0);
    }
    assert_eq!(account.requests(), reconciler.spent());
    (account.requests(), found)
}

/// The bound: 2 × the smaller of (rows, pages) + 2.
fn bound(rows: u64, records: u64) -> u64 {
    2 * rows.min(records.div_ceil(PAGE)) + 2
}

#[tokio::test(start_paused = true)]
async fn ten_rows_into_a_hundred_thousand_records_are_looked_up() {
    let (requests, found) = find_rows(100_000, 10, 7_919, false).await;
    assert_eq!(found, 10);
    // The first page (which says there are 1,000 and holds the first row's record), then one
    // read for each of the other nine.
    assert_eq!(requests, 10);
    assert!(requests <= bound(10, 100_000));
}

#[tokio::test(start_paused = true)]
async fn as_many_rows_as_records_are_found_in_the_listing() {
    let (requests, found) = find_rows(10_000, 10_000, 1, false).await;
    assert_eq!(found, 10_000);
    // The listing's 100 pages and nothing else: also the re-run's whole cost of finding.
    assert_eq!(requests, 100);
    assert!(requests <= bound(10_000, 10_000));
}

#[tokio::test(start_paused = true)]
async fn rows_that_trickle_in_switch_to_the_listing_within_twice_its_cost() {
    let (requests, found) = find_rows(10_000, 10_000, 1, true).await;
    assert_eq!(found, 10_000);
    // Reads while they cost less than the pages left, then the listing.
    assert!(requests <= bound(10_000, 10_000), "{requests}");
    assert!(
        requests > 100,
        "{requests}: nothing told it the rows were coming"
    );
    let (requests, found) = find_rows(100_000, 30, 3_001, true).await;
    assert_eq!((requests, found), (30, 30));
}

#[tokio::test(start_paused = true)]
async fn keys_missing_from_a_held_listing_cost_nothing() {
    // 500 rows, half of them new, into 300 records: 3 pages, then no request.
    let (requests, found) = find_rows(300, 500, 1, false).await;
    assert_eq!((requests, found), (3, 300));
}
