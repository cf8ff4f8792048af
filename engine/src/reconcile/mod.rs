//! Finding what exists, comparing it with the row, and deciding what to send: the toolkit
//! every destination's upsert (and update, where reading is cheaper than writing) is built on.
//!
//! A destination brings its [`Finder`] (read one key; list the object page by page, the first
//! page saying how many there are) and its [`Rules`] (when a row's value is what the platform
//! holds). [`Reconciler::find`] spends at most about twice the cheaper way: per-key reads while
//! the rows still to come are fewer than the listing's pages, the listing once they are not
//! (read once, held as compact JSON, then every row is found without a request). [`decide`]
//! turns a row and what was found into a [`Decision`]: create, update only what differs,
//! leave unchanged (no request), or ambiguous; [`store`] carries the decision out through a
//! destination's create and update.

pub mod store;

use crate::catalog::Object;
use crate::error::Fatal;
use crate::probe::Probe;
use crate::write::backlog::Backlog;
use rustc_hash::FxHashMap;
use serde_json::{Map, Value};
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// A record as the platform holds it: its id, its natural key as rows give it (normalized as
/// the object compares keys), and its fields in the shape a request body gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub id: String,
    pub key: Option<String>,
    pub fields: Map<String, Value>,
}

/// One page of an object's listing.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<Stored>,
    /// Where the next page is (a page number, a cursor, a URL); `None` on the last page.
    pub next: Option<String>,
    /// How many pages the whole listing has, where the API says (a count, `totalHits`,
    /// `totalElements`, `page_count`). A first "page" may be a count alone, with no records.
    pub pages: Option<u64>,
}

/// How a destination finds existing records of its objects.
pub trait Finder<O>: Send + Sync {
    /// Whether `look_up` can read records of this object by natural key.
    fn can_look_up(&self, object: O) -> bool;

    /// The records whose natural key is `key` (normalized), read from the API.
    fn look_up(
        &self,
        object: O,
        key: &str,
    ) -> impl Future<Output = Result<Vec<Stored>, Fatal>> + Send;

    /// A page of the object's listing: the first with `None`, then each page's `next`.
    fn list_page(
        &self,
        object: O,
        next: Option<String>,
    ) -> impl Future<Output = Result<Page, Fatal>> + Send;
}

/// A destination's comparison of a row's value with the stored one.
pub trait Rules: Send + Sync {
    /// Whether the row's `value` of `field` is what the platform holds (`stored`, null when the
    /// record lacks the field).
    fn same(&self, _field: &str, value: &Value, stored: &Value) -> bool {
        same_value(value, stored)
    }

    /// What an update sends for a field that differs: the row's value, or (for a nested value
    /// the API merges) only its parts that differ.
    fn delta(&self, _field: &str, value: &Value, _stored: &Value) -> Value {
        value.clone()
    }

    /// A field an update sends whenever the row carries it, changed or not (the record's key,
    /// a scope the API requires on every write); never by itself a reason to update.
    fn always_sent(&self, _field: &str) -> bool {
        false
    }

    /// A field sent only when the record is created, never compared (a client's first
    /// location, where the API takes it only inside the create).
    fn create_only(&self, _field: &str) -> bool {
        false
    }

    /// What the record holds after an update of `changed` (each field as [`Rules::delta`]
    /// gave it) laid over `stored`.
    fn overlay(&self, stored: &mut Map<String, Value>, changed: &Map<String, Value>) {
        stored.extend(changed.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// The rules of an API whose custom values sit in one object (`custom`, `customAttributes`)
/// that it merges member by member: a member the row does not carry is left as it is, and an
/// update sends only the members that differ. Every other field by [`same_value`]; the
/// `always_sent` fields go with every update.
pub struct MergedContainer {
    pub container: &'static str,
    pub always_sent: &'static [&'static str],
}

impl Rules for MergedContainer {
    fn always_sent(&self, field: &str) -> bool {
        self.always_sent.contains(&field)
    }

    fn same(&self, field: &str, value: &Value, stored: &Value) -> bool {
        match value {
            Value::Object(row) if field == self.container => row
                .iter()
                .all(|(k, v)| same_value(v, stored.get(k).unwrap_or(&Value::Null))),
            _ => same_value(value, stored),
        }
    }

    fn delta(&self, field: &str, value: &Value, stored: &Value) -> Value {
        match value {
            Value::Object(row) if field == self.container => Value::Object(
                row.iter()
                    .filter(|(k, v)| !same_value(v, stored.get(*k).unwrap_or(&Value::Null)))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            _ => value.clone(),
        }
    }

    fn overlay(&self, stored: &mut Map<String, Value>, changed: &Map<String, Value>) {
        for (field, value) in changed {
            match (value, stored.get_mut(field)) {
                (Value::Object(members), Some(Value::Object(held))) if field == self.container => {
                    held.extend(members.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                _ => {
                    stored.insert(field.clone(), value.clone());
                }
            }
        }
    }
}

/// The comparison most APIs need: a null, a missing field and an empty string are one;
/// numbers by value (1500 = 1500.0); strings exactly; objects member by member (a missing
/// member being null); arrays element by element.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::String(s)) | (Value::String(s), Value::Null) => s.is_empty(),
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Object(x), Value::Object(y)) => x.keys().chain(y.keys()).all(|k| {
            same_value(
                x.get(k).unwrap_or(&Value::Null),
                y.get(k).unwrap_or(&Value::Null),
            )
        }),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        _ => a == b,
    }
}

/// The row's fields whose value differs from the stored record's. A field the row does not
/// carry is never among them: it is left as the platform has it.
pub fn changes(
    row: &Map<String, Value>,
    stored: &Map<String, Value>,
    rules: &(impl Rules + ?Sized),
) -> Map<String, Value> {
    row.iter()
        .filter(|(field, _)| !rules.create_only(field))
        .filter_map(|(field, value)| {
            let now = stored.get(field).unwrap_or(&Value::Null);
            (!rules.same(field, value, now))
                .then(|| (field.clone(), rules.delta(field, value, now)))
        })
        .collect()
}

/// What to do with one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// No record has the row's key.
    Create,
    /// One record has it and holds other values in `changed` (only those).
    Update {
        id: String,
        changed: Map<String, Value>,
    },
    /// One record has it and holds the row's values: no request.
    Unchanged { id: String },
    /// Several records have it: which one is meant is unknown.
    Ambiguous { ids: Vec<String> },
}

/// The decision for `row` given the records found for its key.
pub fn decide(
    row: &Map<String, Value>,
    found: &[Stored],
    rules: &(impl Rules + ?Sized),
) -> Decision {
    match found {
        [] => Decision::Create,
        [one] => {
            let changed = changes(row, &one.fields, rules);
            if changed.is_empty() {
                Decision::Unchanged { id: one.id.clone() }
            } else {
                Decision::Update {
                    id: one.id.clone(),
                    changed,
                }
            }
        }
        several => Decision::Ambiguous {
            ids: several.iter().map(|s| s.id.clone()).collect(),
        },
    }
}

/// The names of `changed`'s fields, for a [`crate::write::Verdict::Updated`].
pub fn field_names(changed: &Map<String, Value>) -> Vec<String> {
    changed.keys().cloned().collect()
}

/// What is known of an object's records: compact JSON (about a third of a parsed map's
/// memory), parsed again only for the record a row is compared with.
#[derive(Default)]
struct Index {
    // Fx, not SipHash: a key is hashed on every row, and these are the sync's own records.
    by_key: FxHashMap<Box<str>, Vec<u32>>,
    by_id: FxHashMap<Box<str>, u32>,
    records: Vec<Held>,
}

/// One record in the index: its id, its key, its fields as compact JSON.
type Held = (Box<str>, Option<Box<str>>, Box<str>);

impl Index {
    fn put(&mut self, stored: &Stored) {
        let json = serde_json::to_string(&stored.fields)
            .expect("a JSON map serializes")
            .into_boxed_str();
        let key: Option<Box<str>> = stored.key.as_deref().map(Into::into);
        if let Some(&slot) = self.by_id.get(stored.id.as_str()) {
            let entry = &mut self.records[slot as usize];
            if entry.1 != key {
                if let Some(old) = entry.1.take() {
                    if let Some(slots) = self.by_key.get_mut(&old) {
                        slots.retain(|s| *s != slot);
                    }
                }
                if let Some(key) = &key {
                    self.by_key.entry(key.clone()).or_default().push(slot);
                }
                entry.1 = key;
            }
            entry.2 = json;
            return;
        }
        let slot = self.records.len() as u32;
        let id: Box<str> = stored.id.as_str().into();
        if let Some(key) = &key {
            self.by_key.entry(key.clone()).or_default().push(slot);
        }
        self.by_id.insert(id.clone(), slot);
        self.records.push((id, key, json));
    }

    fn get(&self, query: Query) -> Option<Vec<Stored>> {
        let slots = match query {
            Query::Key(key) => self.by_key.get(key)?.as_slice(),
            Query::Id(id) => std::slice::from_ref(self.by_id.get(id)?),
        };
        Some(slots.iter().map(|&slot| self.stored(slot)).collect())
    }

    fn stored(&self, slot: u32) -> Stored {
        let (id, key, json) = &self.records[slot as usize];
        Stored {
            id: id.to_string(),
            key: key.as_deref().map(str::to_owned),
            fields: serde_json::from_str(json).unwrap_or_default(),
        }
    }
}

/// What a row is found by.
#[derive(Debug, Clone, Copy)]
pub enum Query<'a> {
    /// Its natural key, normalized as [`Stored::key`] is.
    Key(&'a str),
    /// The platform's id (an update).
    Id(&'a str),
}

/// What [`Reconciler::find_or_blind`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// The records the query matches, from the listing or a read.
    Records(Vec<Stored>),
    /// Writing the row as it is costs less than finding what exists: the API's write is
    /// itself an upsert (or an update by id), so the row is sent without a comparison.
    Blind,
}

/// How one object's records are being found.
#[derive(Debug, Clone, Default)]
enum Strategy {
    /// Nothing read yet.
    #[default]
    Unknown,
    /// Per-key reads, while cheaper than the `pages_left` pages of the listing after `next`.
    PerKey { pages_left: u64, next: String },
    /// The whole listing is held.
    Listed,
}

#[derive(Default)]
struct Known {
    strategy: tokio::sync::Mutex<Strategy>,
    /// Set once the listing is held: a find then takes no lock but the index's.
    listed: AtomicBool,
    index: Mutex<Index>,
    lookups: AtomicU64,
    /// Where a create is the look: one goes at a time until one has created, so rows in
    /// flight together do not each spend a refused create on a listing the first one reads.
    create_probe: Probe,
}

/// Finds existing records for a destination's writer, spending at most about twice the
/// cheaper of per-key reads and the listing.
pub struct Reconciler<O> {
    known: Vec<Known>,
    backlog: OnceLock<Backlog>,
    /// Requests spent finding (look-ups and listing pages).
    spent: AtomicU64,
    /// Plan every write (reads allowed), send none.
    dry_run: bool,
    objects: PhantomData<O>,
}

impl<O: Object> Default for Reconciler<O> {
    fn default() -> Self {
        Self::new(false)
    }
}

impl<O: Object> Reconciler<O> {
    /// A reconciler that, in a `dry_run`, plans each write (and learns what it would leave)
    /// without sending it.
    pub fn new(dry_run: bool) -> Self {
        Self {
            known: (0..O::ALL.len()).map(|_| Known::default()).collect(),
            backlog: OnceLock::new(),
            spent: AtomicU64::new(0),
            dry_run,
            objects: PhantomData,
        }
    }

    /// The pipeline's rows read ahead (from [`crate::write::Writer::attach`]).
    pub fn attach(&self, backlog: Backlog) {
        let _ = self.backlog.set(backlog);
    }

    /// Whether writes are planned, not sent.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Requests spent finding existing records so far.
    pub fn spent(&self) -> u64 {
        self.spent.load(Ordering::Relaxed)
    }

    fn waiting(&self, object: O) -> u64 {
        self.backlog
            .get()
            .map_or(0, |backlog| backlog.waiting(object.index()))
    }

    /// The records whose natural key is `key` (normalized as the destination normalizes
    /// [`Stored::key`]): read one by one while that is cheaper, else from the listing (which
    /// is always read where the API cannot read by key).
    pub async fn find(
        &self,
        finder: &impl Finder<O>,
        object: O,
        key: &str,
    ) -> Result<Vec<Stored>, Fatal> {
        match self.search(finder, object, Query::Key(key), false).await? {
            Found::Records(found) => Ok(found),
            Found::Blind => Ok(Vec::new()),
        }
    }

    /// As [`Reconciler::find`], where the API's write is itself an upsert or an update by id:
    /// while the rows to come are fewer than the listing's pages, [`Found::Blind`] (write the
    /// row as it is, no request to find it); past that, the listing.
    pub async fn find_or_blind(
        &self,
        finder: &impl Finder<O>,
        object: O,
        query: Query<'_>,
    ) -> Result<Found, Fatal> {
        self.search(finder, object, query, true).await
    }

    async fn search(
        &self,
        finder: &impl Finder<O>,
        object: O,
        query: Query<'_>,
        blind_allowed: bool,
    ) -> Result<Found, Fatal> {
        let known = &self.known[object.index()];
        let held = |known: &Known| {
            Found::Records(known.index.lock().unwrap().get(query).unwrap_or_default())
        };
        if known.listed.load(Ordering::Acquire) {
            return Ok(held(known));
        }
        // Per row: a read by key, or (where it cannot read, or the query is an id) the blind
        // write; without either, the listing is the only way.
        let per_row = match query {
            Query::Key(_) if finder.can_look_up(object) => true,
            _ => blind_allowed,
        };
        {
            let mut strategy = known.strategy.lock().await;
            let list_rest = match strategy.clone() {
                Strategy::Listed => None,
                Strategy::Unknown => {
                    let first = finder.list_page(object, None).await?;
                    self.spent.fetch_add(1, Ordering::Relaxed);
                    self.hold(known, &first.records);
                    match first.next {
                        None => Some(None),
                        Some(next) => {
                            let pages_left = first.pages.map_or(u64::MAX, |p| p.saturating_sub(1));
                            // Rows already read ahead tell how many are coming.
                            if let Some(backlog) = self.backlog.get() {
                                backlog.read_ahead().await;
                            }
                            if !per_row || self.waiting(object) >= pages_left {
                                Some(Some(next))
                            } else {
                                *strategy = Strategy::PerKey { pages_left, next };
                                None
                            }
                        }
                    }
                }
                Strategy::PerKey { pages_left, next } => {
                    let rows = known.lookups.load(Ordering::Relaxed);
                    // Past this, reading the rest of the listing costs less than going on.
                    (!per_row
                        || rows.saturating_add(self.waiting(object).saturating_sub(1))
                            >= pages_left)
                        .then_some(Some(next))
                }
            };
            if let Some(next) = list_rest {
                self.list(finder, object, known, next).await?;
                *strategy = Strategy::Listed;
                known.listed.store(true, Ordering::Release);
            }
            if known.listed.load(Ordering::Acquire) {
                return Ok(held(known));
            }
            if let Some(found) = known.index.lock().unwrap().get(query) {
                return Ok(Found::Records(found));
            }
            known.lookups.fetch_add(1, Ordering::Relaxed);
        }
        match query {
            Query::Key(key) if finder.can_look_up(object) => {
                self.spent.fetch_add(1, Ordering::Relaxed);
                Ok(Found::Records(finder.look_up(object, key).await?))
            }
            _ => Ok(Found::Blind),
        }
    }

    /// Reads the listing from `next` to its end into the index.
    async fn list(
        &self,
        finder: &impl Finder<O>,
        object: O,
        known: &Known,
        mut next: Option<String>,
    ) -> Result<(), Fatal> {
        while let Some(cursor) = next {
            let page = finder.list_page(object, Some(cursor)).await?;
            self.spent.fetch_add(1, Ordering::Relaxed);
            self.hold(known, &page.records);
            next = page.next;
        }
        Ok(())
    }

    fn hold(&self, known: &Known, records: &[Stored]) {
        let mut index = known.index.lock().unwrap();
        for record in records {
            index.put(record);
        }
    }

    /// What a write made the record hold (a create, an update laid over what was found; in a
    /// dry run, what it would hold): later rows of the key are compared with it.
    pub fn learn(&self, object: O, stored: &Stored) {
        self.known[object.index()].index.lock().unwrap().put(stored);
    }

    /// What is held of the record `query` names, with no request.
    pub fn held(&self, object: O, query: Query<'_>) -> Option<Stored> {
        let index = self.known[object.index()].index.lock().unwrap();
        index.get(query).and_then(|found| found.into_iter().next())
    }

    /// Drops what is held of `object`: the next find reads again (a record appeared since the
    /// listing, as a create refused "already exists" shows).
    pub async fn forget(&self, object: O) {
        let known = &self.known[object.index()];
        let mut strategy = known.strategy.lock().await;
        *strategy = Strategy::Unknown;
        known.listed.store(false, Ordering::Release);
        *known.index.lock().unwrap() = Index::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Plain;
    impl Rules for Plain {}

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn only_the_differing_fields_the_row_carries_are_changes() {
        let stored =
            map(json!({"name": "A", "size": 1500.0, "city": "", "tags": ["x"], "note": "kept"}));
        let row = map(json!({"name": "A", "size": 1500, "city": null, "tags": ["y"]}));
        assert_eq!(changes(&row, &stored, &Plain), map(json!({"tags": ["y"]})));
        let found = [Stored {
            id: "7".into(),
            key: Some("a".into()),
            fields: stored,
        }];
        assert_eq!(
            decide(&map(json!({"name": "A"})), &found, &Plain),
            Decision::Unchanged { id: "7".into() }
        );
        assert_eq!(decide(&row, &[], &Plain), Decision::Create);
        let twice = [
            found[0].clone(),
            Stored {
                id: "8".into(),
                ..found[0].clone()
            },
        ];
        assert_eq!(
            decide(&row, &twice, &Plain),
            Decision::Ambiguous {
                ids: vec!["7".into(), "8".into()]
            }
        );
    }
}
