//! The reconcile toolkit carrying its decisions out through a destination's create and
//! update: only what differs is sent (with the fields always sent, never the create-only
//! ones), each write is learnt for later rows of its key, a dry run writes nothing and yet
//! refuses what the create would, and an update by id is compared once the listing is held.

mod fake;

use engine::catalog::WriteMode;
use engine::error::Fatal;
use engine::reconcile::store::Store;
use engine::reconcile::{Finder, Page, Reconciler, Rules, Stored};
use engine::write::Verdict;
use fake::Fake;
use serde_json::{json, Map, Value};
use std::sync::Mutex;

/// An account of things keyed by `code`, listed two a page, that records every write.
struct Account {
    records: Vec<Stored>,
    pages_read: Mutex<u64>,
    creates: Mutex<Vec<Map<String, Value>>>,
    updates: Mutex<Vec<(String, Map<String, Value>)>>,
    /// Codes are unique: a create of a held one is refused "taken".
    unique: bool,
    /// Creates refused as taken.
    refused: Mutex<u64>,
}

const PAGE: usize = 2;

fn map(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

impl Account {
    fn with(records: &[(&str, Value)]) -> Self {
        Self {
            records: records
                .iter()
                .map(|(id, fields)| Stored {
                    id: (*id).to_owned(),
                    key: fields["code"].as_str().map(str::to_owned),
                    fields: map(fields.clone()),
                })
                .collect(),
            pages_read: Mutex::new(0),
            creates: Mutex::new(Vec::new()),
            updates: Mutex::new(Vec::new()),
            unique: false,
            refused: Mutex::new(0),
        }
    }

    fn unique(records: &[(&str, Value)]) -> Self {
        Self {
            unique: true,
            ..Self::with(records)
        }
    }

    fn writes(&self) -> usize {
        self.creates.lock().unwrap().len() + self.updates.lock().unwrap().len()
    }
}

/// The code travels with every update; `origin` is sent on create only.
struct ThingRules;

impl Rules for ThingRules {
    fn always_sent(&self, field: &str) -> bool {
        field == "code"
    }

    fn create_only(&self, field: &str) -> bool {
        field == "origin"
    }
}

impl Finder<Fake> for Account {
    fn can_look_up(&self, _: Fake) -> bool {
        false
    }

    async fn look_up(&self, _: Fake, _: &str) -> Result<Vec<Stored>, Fatal> {
        unreachable!("this account cannot read by key")
    }

    async fn list_page(&self, _: Fake, next: Option<String>) -> Result<Page, Fatal> {
        *self.pages_read.lock().unwrap() += 1;
        let start: usize = next.map_or(0, |n| n.parse().unwrap());
        let end = (start + PAGE).min(self.records.len());
        Ok(Page {
            records: self.records[start..end].to_vec(),
            next: (end < self.records.len()).then(|| end.to_string()),
            pages: Some(self.records.len().div_ceil(PAGE) as u64),
        })
    }
}

impl Store<Fake> for Account {
    fn rules(&self, _: Fake) -> &dyn Rules {
        &ThingRules
    }

    fn creatable(&self, _: Fake, row: Map<String, Value>) -> Result<Map<String, Value>, Verdict> {
        match row.get("name") {
            Some(_) => Ok(row),
            None => Err(Verdict::refused(
                "field `name` is required to create a thing",
            )),
        }
    }

    async fn create(
        &self,
        _: Fake,
        _: WriteMode,
        body: Map<String, Value>,
    ) -> Result<Result<Stored, Verdict>, Fatal> {
        let code = body["code"].as_str().map(str::to_owned);
        if self.unique && self.records.iter().any(|r| r.key == code) {
            *self.refused.lock().unwrap() += 1;
            return Ok(Err(Verdict::refused_with(400, "code taken")));
        }
        let mut creates = self.creates.lock().unwrap();
        creates.push(body.clone());
        Ok(Ok(Stored {
            id: format!("new-{}", creates.len()),
            key: body["code"].as_str().map(str::to_owned),
            fields: body,
        }))
    }

    fn key_is_unique(&self, _: Fake) -> bool {
        self.unique
    }

    fn taken(&self, _: Fake, _: WriteMode, refused: &Verdict) -> bool {
        matches!(refused, Verdict::Refused { message, .. } if message == "code taken")
    }

    async fn update(
        &self,
        _: Fake,
        _: WriteMode,
        id: &str,
        changed: &Map<String, Value>,
    ) -> Result<Result<(), Verdict>, Fatal> {
        self.updates
            .lock()
            .unwrap()
            .push((id.to_owned(), changed.clone()));
        Ok(Ok(()))
    }
}

fn anything(_: &[String]) -> String {
    "ambiguous".into()
}

#[tokio::test]
async fn an_upsert_sends_what_differs_with_the_key_and_a_later_row_compares_with_what_it_left() {
    let account = Account::with(&[("1", json!({"code": "a", "name": "A", "city": "Oslo"}))]);
    let reconciler = Reconciler::<Fake>::new(false);
    let row = json!({"code": "a", "name": "A", "city": "Bergen", "origin": "warehouse"});
    let verdict = reconciler
        .upsert(&account, Fake::Thing, "a", map(row.clone()), anything)
        .await
        .unwrap();
    assert_eq!(
        verdict,
        Verdict::Updated {
            id: "1".into(),
            fields: vec!["city".into()]
        }
    );
    assert_eq!(
        account.updates.lock().unwrap().clone(),
        vec![("1".to_owned(), map(json!({"city": "Bergen", "code": "a"})))]
    );
    let again = reconciler
        .upsert(&account, Fake::Thing, "a", map(row), anything)
        .await
        .unwrap();
    assert_eq!(again, Verdict::Unchanged { id: "1".into() });
    let new = reconciler
        .upsert(
            &account,
            Fake::Thing,
            "b",
            map(json!({"code": "b", "name": "B", "origin": "w"})),
            anything,
        )
        .await
        .unwrap();
    assert_eq!(
        new,
        Verdict::Created {
            id: Some("new-1".into())
        }
    );
    assert_eq!(account.creates.lock().unwrap()[0]["origin"], "w");
    assert_eq!(account.writes(), 2);
}

#[tokio::test]
async fn a_dry_run_writes_nothing_plans_what_the_sync_would_and_refuses_what_its_create_would() {
    let account = Account::with(&[("1", json!({"code": "a", "name": "A", "city": "Oslo"}))]);
    let reconciler = Reconciler::<Fake>::new(true);
    let upsert = |code: &'static str, row: Value| {
        let reconciler = &reconciler;
        let account = &account;
        async move {
            reconciler
                .upsert(account, Fake::Thing, code, map(row), anything)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        upsert("a", json!({"code": "a", "city": "Bergen"})).await,
        Verdict::Updated {
            id: "1".into(),
            fields: vec!["city".into()]
        }
    );
    assert_eq!(
        upsert("a", json!({"code": "a", "city": "Bergen"})).await,
        Verdict::Unchanged { id: "1".into() }
    );
    assert_eq!(
        upsert("b", json!({"code": "b", "name": "B"})).await,
        Verdict::Created { id: None }
    );
    assert!(matches!(
        upsert("b", json!({"code": "b", "name": "B"})).await,
        Verdict::Unchanged { .. }
    ));
    assert_eq!(
        upsert("c", json!({"code": "c"})).await,
        Verdict::refused("field `name` is required to create a thing")
    );
    assert_eq!(account.writes(), 0);
}

#[tokio::test]
async fn an_update_by_id_goes_whole_until_the_listing_is_held_then_only_what_differs() {
    let things = [
        ("1", json!({"code": "a", "name": "A"})),
        ("2", json!({"code": "b", "name": "B"})),
        ("3", json!({"code": "c", "name": "C"})),
    ];
    // Nothing tells how many rows are coming: the first page, then the row sent as it is.
    let account = Account::with(&things);
    let reconciler = Reconciler::<Fake>::new(false);
    let row = map(json!({"code": "c", "name": "C2"}));
    let verdict = reconciler
        .update_by_id(&account, Fake::Thing, "3", row.clone())
        .await
        .unwrap();
    assert_eq!(
        verdict,
        Verdict::Updated {
            id: "3".into(),
            fields: vec!["code".into(), "name".into()]
        }
    );
    assert_eq!(*account.pages_read.lock().unwrap(), 1);
    // A record on the first page is compared: the same row costs no request.
    let same = reconciler
        .update_by_id(&account, Fake::Thing, "1", map(json!({"name": "A"})))
        .await
        .unwrap();
    assert_eq!(same, Verdict::Unchanged { id: "1".into() });

    // A listing of one page is held at once: an id it lacks is refused with no request.
    let small = Account::with(&things[..2]);
    let reconciler = Reconciler::<Fake>::new(false);
    let missing = reconciler
        .update_by_id(&small, Fake::Thing, "9", row)
        .await
        .unwrap();
    assert!(
        matches!(&missing, Verdict::Refused { status: Some(404), message } if message.contains("\"9\"")),
        "{missing:?}"
    );
    assert_eq!(small.writes(), 0);
}

#[tokio::test]
async fn an_insert_refused_as_existing_is_written_when_the_record_holds_the_row_else_names_what_differs(
) {
    let account = Account::with(&[("1", json!({"code": "a", "name": "A", "city": "Oslo"}))]);
    let reconciler = Reconciler::<Fake>::new(false);
    let refused = Verdict::refused_with(400, "code already exists");
    let mut notices = Vec::new();
    let same = reconciler
        .existing_on_insert(
            &account,
            Fake::Thing,
            "a",
            &map(json!({"code": "a", "name": "A"})),
            refused.clone(),
            |text| notices.push(text),
        )
        .await
        .unwrap();
    assert_eq!(same, Some(Verdict::Written));
    assert!(notices[0].contains("holds the row's values"), "{notices:?}");
    let differs = reconciler
        .existing_on_insert(
            &account,
            Fake::Thing,
            "a",
            &map(json!({"code": "a", "city": "Bergen"})),
            refused.clone(),
            |_| {},
        )
        .await
        .unwrap();
    assert!(
        matches!(&differs, Some(Verdict::Refused { message, .. }) if message.contains("differs from the row in city")),
        "{differs:?}"
    );
    // No record of the key, even in a listing read again: the caller words the refusal.
    let none = reconciler
        .existing_on_insert(
            &account,
            Fake::Thing,
            "z",
            &map(json!({"code": "z"})),
            refused,
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(none, None);
    assert_eq!(
        *account.pages_read.lock().unwrap(),
        2,
        "the listing was read again once"
    );
    assert_eq!(account.writes(), 0);
}

/// An upsert of a thing of `code` called `name`.
async fn upsert(
    reconciler: &Reconciler<Fake>,
    account: &Account,
    code: &str,
    name: &str,
) -> Verdict {
    let row = map(json!({"code": code, "name": name}));
    (reconciler.upsert(account, Fake::Thing, code, row, anything))
        .await
        .unwrap()
}

#[tokio::test]
async fn where_keys_are_unique_and_unreadable_a_few_rows_are_looked_for_by_their_create() {
    // Ten things, five pages: with nothing said of the rows to come, each is one row.
    let things: Vec<(String, Value)> = (0..10)
        .map(|i| (i.to_string(), json!({"code": format!("k{i}"), "name": "N"})))
        .collect();
    let things: Vec<(&str, Value)> = things
        .iter()
        .map(|(id, v)| (id.as_str(), v.clone()))
        .collect();
    let account = Account::unique(&things);
    let reconciler = Reconciler::<Fake>::new(false);
    let new = upsert(&reconciler, &account, "n1", "New").await;
    assert_eq!(
        new,
        Verdict::Created {
            id: Some("new-1".into())
        }
    );
    assert_eq!(
        *account.pages_read.lock().unwrap(),
        1,
        "the first page says how many"
    );
    assert_eq!(reconciler.spent(), 1);

    // An existing key: its create is refused, the rest of the listing read, only what
    // differs sent; the refused create counts as spent finding.
    let existing = upsert(&reconciler, &account, "k9", "Nine").await;
    assert_eq!(
        existing,
        Verdict::Updated {
            id: "9".into(),
            fields: vec!["name".into()]
        }
    );
    assert_eq!(*account.refused.lock().unwrap(), 1);
    assert_eq!(*account.pages_read.lock().unwrap(), 5);
    assert_eq!(reconciler.spent(), 1 + 1 + 4);
    // The listing is held: the next existing row costs no create.
    let same = upsert(&reconciler, &account, "k3", "N").await;
    assert_eq!(same, Verdict::Unchanged { id: "3".into() });
    assert_eq!(*account.refused.lock().unwrap(), 1);

    // A dry run of inserts settles a taken key as the sync would: written where the record
    // holds the row's values, else refused naming what differs; a new key is created.
    let insert = |code: &'static str, name: &'static str| {
        let row = map(json!({"code": code, "name": name}));
        let dry = Reconciler::<Fake>::new(true);
        let account = &account;
        async move {
            (dry.create(account, Fake::Thing, WriteMode::Insert, Some(code), row))
                .await
                .unwrap()
        }
    };
    assert_eq!(insert("k3", "N").await, Verdict::Written);
    let differs = insert("k4", "Four").await;
    assert!(
        matches!(&differs, Verdict::Refused { message, .. } if message.contains("differs from the row in name")),
        "{differs:?}"
    );
    assert_eq!(insert("n9", "New").await, Verdict::Created { id: None });
    assert_eq!(*account.refused.lock().unwrap(), 1, "nothing was sent");

    // A dry run never guesses by creating: it reads the listing.
    let dry = Reconciler::<Fake>::new(true);
    let planned = upsert(&dry, &account, "k9", "Nine").await;
    assert!(matches!(planned, Verdict::Updated { .. }), "{planned:?}");
    assert_eq!(*account.refused.lock().unwrap(), 1);

    // An insert refused as taken is written where the record holds the row's values.
    let insert = reconciler
        .create(
            &account,
            Fake::Thing,
            WriteMode::Insert,
            Some("k3"),
            map(json!({"code": "k3", "name": "N"})),
        )
        .await
        .unwrap();
    assert_eq!(insert, Verdict::Written);
    assert_eq!(account.writes(), 2, "one create, one update");
}
