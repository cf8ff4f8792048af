//! Carrying out what the toolkit decides through a destination's create and update, the same
//! way for every destination: a dry run plans each write without a request, each write is
//! learnt so later rows of the key compare with what it left, an update sends only what
//! differs, and an update by id is compared once the listing is held.

use super::{
    changes, decide, field_names, Decision, Finder, Found, Query, Reconciler, Rules, Stored,
};
use crate::catalog::{Object, WriteMode};
use crate::error::Fatal;
use crate::write::Verdict;
use serde_json::{Map, Value};
use std::future::Future;
use std::sync::atomic::Ordering;

/// How a destination writes one record: the two requests the toolkit's decisions become.
pub trait Store<O>: Finder<O> {
    /// How this object's rows compare with its stored records.
    fn rules(&self, object: O) -> &dyn Rules;

    /// The body a create of `row` sends (defaults added, columns nested as the API takes
    /// them), or the verdict refusing it before any request. A dry run asks it too, so it
    /// refuses what the sync would.
    fn creatable(
        &self,
        _object: O,
        row: Map<String, Value>,
    ) -> Result<Map<String, Value>, Verdict> {
        Ok(row)
    }

    /// Creates a record of `body` (as [`Store::creatable`] made it) for a row of `mode`: what
    /// the platform holds now (its id, its key as rows give it, its fields), or the verdict
    /// that settles the row otherwise (refused, which [`Store::taken`] may say means the key
    /// exists; or updated, where the destination learnt that itself).
    fn create(
        &self,
        object: O,
        mode: WriteMode,
        body: Map<String, Value>,
    ) -> impl Future<Output = Result<Result<Stored, Verdict>, Fatal>> + Send;

    /// Whether the object's key is unique, so that a create of a key some record holds is
    /// refused (as [`Store::taken`] tells). Where the API cannot read by key, an upsert then
    /// tries the create first while the rows to come are fewer than the listing's pages: a
    /// new row costs no request to find, an existing one the refused create.
    fn key_is_unique(&self, _object: O) -> bool {
        false
    }

    /// Whether `refused`, the verdict of a create for a row of `mode`, says a record of the
    /// row's key exists and the toolkit is to find it: an upsert then updates it (or leaves
    /// it, holding the row's values), an insert is counted written where it holds them.
    fn taken(&self, _object: O, _mode: WriteMode, _refused: &Verdict) -> bool {
        false
    }

    /// The verdict for a create refused as taken when no record of the key is found where
    /// this sync writes (the key is held elsewhere, such as by another company).
    fn taken_elsewhere(&self, _object: O, _row: &Map<String, Value>, refused: Verdict) -> Verdict {
        refused
    }

    /// Tells the sync's log what the toolkit decided on its own (such as an insert counted
    /// written because its record exists with the row's values).
    fn notice(&self, _text: String) {}

    /// Sends `changed` (each field as [`Rules::delta`] gave it) to the record `id`, for a row
    /// of `mode`; `Err` with the verdict when the API refuses it.
    fn update(
        &self,
        object: O,
        mode: WriteMode,
        id: &str,
        changed: &Map<String, Value>,
    ) -> impl Future<Output = Result<Result<(), Verdict>, Fatal>> + Send;
}

impl<O: Object> Reconciler<O> {
    /// An upsert by natural key: the one record of `key` gets only what differs (nothing
    /// differs: no request), none is created, several refuse the row (`ambiguous` says so).
    /// Where the API cannot read by key but refuses a create of a taken one
    /// ([`Store::key_is_unique`]), the create is the look while the rows to come are fewer
    /// than the listing's pages (never in a dry run, which reads the listing instead).
    pub async fn upsert(
        &self,
        store: &impl Store<O>,
        object: O,
        key: &str,
        row: Map<String, Value>,
        ambiguous: impl FnOnce(&[String]) -> String,
    ) -> Result<Verdict, Fatal> {
        if self.dry_run || !store.key_is_unique(object) || store.can_look_up(object) {
            let found = self.find(store, object, key).await?;
            return self
                .apply(store, object, Some(key), row, &found, ambiguous)
                .await;
        }
        let known = &self.known[object.index()];
        let probe = known.create_probe.turn().await;
        match self.find_or_blind(store, object, Query::Key(key)).await? {
            Found::Records(found) => {
                drop(probe);
                self.apply(store, object, Some(key), row, &found, ambiguous)
                    .await
            }
            // The create is the look: refused as taken, the record is found then.
            Found::Blind => {
                let verdict =
                    (self.create(store, object, WriteMode::Upsert, Some(key), row)).await?;
                if matches!(verdict, Verdict::Created { .. }) {
                    known.create_probe.settle();
                }
                Ok(verdict)
            }
        }
    }

    /// [`Reconciler::upsert`] with the records already `found` (by a destination's own
    /// search, such as children within their parent).
    pub async fn apply(
        &self,
        store: &impl Store<O>,
        object: O,
        key: Option<&str>,
        row: Map<String, Value>,
        found: &[Stored],
        ambiguous: impl FnOnce(&[String]) -> String,
    ) -> Result<Verdict, Fatal> {
        match decide(&row, found, store.rules(object)) {
            Decision::Create => {
                self.create(store, object, WriteMode::Upsert, key, row)
                    .await
            }
            Decision::Unchanged { id } => Ok(Verdict::Unchanged { id }),
            Decision::Ambiguous { ids } => Ok(Verdict::refused(ambiguous(&ids))),
            Decision::Update { changed, .. } => {
                self.update(store, object, WriteMode::Upsert, &found[0], changed, &row)
                    .await
            }
        }
    }

    /// Creates `row` (of `mode`), and learns what the platform then holds; a dry run plans it
    /// instead.
    pub async fn create(
        &self,
        store: &impl Store<O>,
        object: O,
        mode: WriteMode,
        key: Option<&str>,
        row: Map<String, Value>,
    ) -> Result<Verdict, Fatal> {
        let row = match store.creatable(object, row) {
            Ok(body) => body,
            Err(verdict) => return Ok(verdict),
        };
        if self.dry_run {
            // An insert of a unique key a record holds would be refused as taken: the dry run
            // settles it as the sync then would.
            if let Some(key) =
                key.filter(|_| mode == WriteMode::Insert && store.key_is_unique(object))
            {
                if !self.find(store, object, key).await?.is_empty() {
                    let refused = Verdict::refused(format!("a {object} of {key:?} exists already"));
                    return self.taken(store, object, mode, key, &row, refused).await;
                }
            }
            let planned = Stored {
                id: String::new(),
                key: key.map(str::to_owned),
                fields: row,
            };
            self.learn(object, &planned);
            return Ok(Verdict::Created { id: None });
        }
        let kept = key
            .filter(|_| store.key_is_unique(object))
            .map(|key| (key, row.clone()));
        Ok(match store.create(object, mode, row).await? {
            Ok(created) => {
                self.learn(object, &created);
                Verdict::Created {
                    id: Some(created.id).filter(|id| !id.is_empty()),
                }
            }
            Err(refused) => match kept {
                Some((key, row)) if store.taken(object, mode, &refused) => {
                    // The refused create was spent finding the record.
                    self.spent.fetch_add(1, Ordering::Relaxed);
                    self.taken(store, object, mode, key, &row, refused).await?
                }
                _ => refused,
            },
        })
    }

    /// A create of `row` `refused` because a record of `key` exists (it appeared since the
    /// listing, the create was the look, or a run killed after sending it made it; in a dry
    /// run, it would be): an insert is written where that record holds the row's values, else
    /// refused naming what differs; an upsert updates what differs.
    async fn taken(
        &self,
        store: &impl Store<O>,
        object: O,
        mode: WriteMode,
        key: &str,
        row: &Map<String, Value>,
        refused: Verdict,
    ) -> Result<Verdict, Fatal> {
        if mode == WriteMode::Insert {
            let notice = |text| store.notice(text);
            let existing = self
                .existing_on_insert(store, object, key, row, refused.clone(), notice)
                .await?;
            return Ok(existing.unwrap_or_else(|| store.taken_elsewhere(object, row, refused)));
        }
        let found = self.find_fresh(store, object, key).await?;
        match decide(row, &found, store.rules(object)) {
            Decision::Create => Ok(store.taken_elsewhere(object, row, refused)),
            Decision::Unchanged { id } => Ok(Verdict::Unchanged { id }),
            Decision::Ambiguous { ids } => Ok(Verdict::refused(format!(
                "{key:?} is held by {} {object}s ({}); the row is not written to any",
                ids.len(),
                ids.join(", ")
            ))),
            Decision::Update { changed, .. } => {
                self.update(store, object, mode, &found[0], changed, row)
                    .await
            }
        }
    }

    /// Sends `changed` (with the fields of `row` the rules always send) to the record
    /// `current`, and learns it laid over what was held.
    pub async fn update(
        &self,
        store: &impl Store<O>,
        object: O,
        mode: WriteMode,
        current: &Stored,
        changed: Map<String, Value>,
        row: &Map<String, Value>,
    ) -> Result<Verdict, Fatal> {
        let rules = store.rules(object);
        let fields = field_names(&changed);
        let mut body = changed;
        for (field, value) in row {
            if rules.always_sent(field) && !body.contains_key(field) {
                body.insert(field.clone(), value.clone());
            }
        }
        if !self.dry_run {
            if let Err(verdict) = store.update(object, mode, &current.id, &body).await? {
                return Ok(verdict);
            }
        }
        let mut now = current.fields.clone();
        rules.overlay(&mut now, &body);
        self.learn(
            object,
            &Stored {
                id: current.id.clone(),
                key: current.key.clone(),
                fields: now,
            },
        );
        Ok(Verdict::Updated {
            id: current.id.clone(),
            fields,
        })
    }

    /// The records of `key`, read now where the API reads by key; else from the listing, read
    /// again once when it lacks the key (the record may have appeared since).
    pub async fn find_fresh(
        &self,
        store: &impl Store<O>,
        object: O,
        key: &str,
    ) -> Result<Vec<Stored>, Fatal> {
        if store.can_look_up(object) {
            self.spent.fetch_add(1, Ordering::Relaxed);
            return store.look_up(object, key).await;
        }
        let found = self.find(store, object, key).await?;
        if !found.is_empty() {
            return Ok(found);
        }
        self.forget(object).await;
        self.find(store, object, key).await
    }

    /// An insert the API `refused` because a record of `key` exists: counted as written when
    /// that record holds the row's values (a resumed sync sending again what its killed run
    /// stored; `notice` is told), else refused naming the fields that differ. `None` when no
    /// record of the key is found (the refusal is the caller's to word).
    pub async fn existing_on_insert(
        &self,
        store: &impl Store<O>,
        object: O,
        key: &str,
        row: &Map<String, Value>,
        refused: Verdict,
        notice: impl FnOnce(String),
    ) -> Result<Option<Verdict>, Fatal> {
        let found = self.find_fresh(store, object, key).await?;
        let [current] = &found[..] else {
            return Ok((!found.is_empty()).then_some(refused));
        };
        let differing = changes(row, &current.fields, store.rules(object));
        let record = format!("{object} {} ({key})", current.id);
        Ok(Some(Verdict::for_existing(
            refused,
            &record,
            differing.keys(),
            notice,
        )))
    }

    /// An update by the platform's id. Once the listing is held (it costs less than sending
    /// every row), the row is compared with it: nothing differs, no request; else only what
    /// differs; an id it lacks is refused with no request. Until then the row is sent as it is.
    pub async fn update_by_id(
        &self,
        store: &impl Store<O>,
        object: O,
        id: &str,
        row: Map<String, Value>,
    ) -> Result<Verdict, Fatal> {
        if let Found::Records(found) = self.find_or_blind(store, object, Query::Id(id)).await? {
            if let [current] = &found[..] {
                let changed = changes(&row, &current.fields, store.rules(object));
                if changed.is_empty() {
                    return Ok(Verdict::Unchanged {
                        id: current.id.clone(),
                    });
                }
                return self
                    .update(store, object, WriteMode::Update, current, changed, &row)
                    .await;
            }
            if found.is_empty() {
                // The listing is held and has no record of this id.
                return Ok(Verdict::refused_with(
                    404,
                    format!("{object} {id:?} was not found: the {object}s listed this sync have no such id"),
                ));
            }
        }
        if !self.dry_run {
            if let Err(verdict) = store.update(object, WriteMode::Update, id, &row).await? {
                return Ok(verdict);
            }
        }
        Ok(Verdict::Updated {
            id: id.to_owned(),
            fields: field_names(&row),
        })
    }
}
