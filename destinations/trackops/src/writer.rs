//! Rows into Trackops writes. No bulk and no upsert exist, so an upsert finds the record by
//! natural key (an account code, an email: the engine's reconcile toolkit reads one key at a
//! time, or the whole listing once that costs less; a location by name among its client's),
//! then creates, or updates only what differs (nothing differs: no request), and two matches
//! reject the row as ambiguous. Children find their parents, never create them. A create
//! whose outcome is unknown is looked up before it is sent again.

use crate::api::ApiClient;
use crate::config::Settings;
use crate::locations::{id_of, named, Locations};
use crate::objects::{create_body, key_of, text, TrackopsObject, LOCATION_COLUMNS, PARENT_COLUMNS};
use engine::catalog::WriteMode;
use engine::error::Fatal;
use engine::http::spending::spending;
use engine::reconcile::store::Store;
use engine::reconcile::{Finder, Page, Reconciler, Rules, Stored};
use engine::write::backlog::Backlog;
use engine::write::prepare::Prepared;
use engine::write::{Verdict, Writer};
use reqwest::Method;
use serde_json::{json, Map, Value};

pub struct TrackopsWriter {
    client: ApiClient,
    settings: Settings,
    locations: Locations,
    reconciler: Reconciler<TrackopsObject>,
}

fn stored(object: TrackopsObject, record: Map<String, Value>) -> Stored {
    Stored {
        id: id_of(&record).to_string(),
        key: key_of(object, &record),
        fields: record,
    }
}

/// The platform id an update row carries.
fn id_in(record: &Prepared) -> String {
    let id: u64 = record
        .id
        .as_deref()
        .and_then(|i| i.parse().ok())
        .unwrap_or_default();
    id.to_string()
}

impl TrackopsWriter {
    pub fn new(client: ApiClient, settings: Settings) -> Self {
        Self {
            reconciler: Reconciler::new(settings.sync.dry_run),
            client,
            settings,
            locations: Locations::default(),
        }
    }

    /// The root client a location or contact row names: by id, or by account code.
    async fn root_of(&self, fields: &Map<String, Value>) -> Result<Result<u64, Verdict>, Fatal> {
        if let Some(id) = fields.get("client_id").and_then(Value::as_u64) {
            return Ok(Ok(id));
        }
        let Some(code) = fields.get("client_account_code").and_then(Value::as_str) else {
            return Ok(Err(Verdict::refused(
                "name the client: give client_id or client_account_code",
            )));
        };
        let found = self
            .reconciler
            .find(self, TrackopsObject::Client, code.trim())
            .await?;
        Ok(match found.as_slice() {
            [] => Err(Verdict::refused(format!(
                "no client has account_code {code:?}; a child row never creates its client: write the client first (a clients stream in the same sync is written before it)"
            ))),
            [one] => Ok(one.id.parse().unwrap_or_default()),
            several => Err(Verdict::refused(format!(
                "account_code {code:?} is ambiguous: clients {:?} carry it",
                several.iter().map(|s| s.id.as_str()).collect::<Vec<_>>()
            ))),
        })
    }

    async fn write_client(&self, mode: WriteMode, record: &Prepared) -> Result<Verdict, Fatal> {
        let mut fields = record.fields();
        let object = TrackopsObject::Client;
        let code = text(&fields, "account_code").to_owned();
        match mode {
            WriteMode::Update => {
                fields.retain(|field, _| !LOCATION_COLUMNS.contains(&field.as_str()));
                self.reconciler
                    .update_by_id(self, object, &id_in(record), fields)
                    .await
            }
            WriteMode::Insert => {
                self.reconciler
                    .create(self, object, mode, Some(&code), fields)
                    .await
            }
            WriteMode::Upsert => {
                let ambiguous = |ids: &[String]| {
                    format!("account_code {code:?} is ambiguous: clients {ids:?} carry it")
                };
                self.reconciler
                    .upsert(self, object, &code, fields, ambiguous)
                    .await
            }
        }
    }

    async fn write_location(&self, mode: WriteMode, record: &Prepared) -> Result<Verdict, Fatal> {
        let mut fields = record.fields();
        let object = TrackopsObject::Location;
        let root = match mode {
            WriteMode::Update => None,
            _ => match self.root_of(&fields).await? {
                Ok(root) => Some(root),
                Err(verdict) => return Ok(verdict),
            },
        };
        fields.retain(|field, _| !PARENT_COLUMNS.contains(&field.as_str()));
        let Some(root) = root else {
            return self
                .reconciler
                .update_by_id(self, object, &id_in(record), fields)
                .await;
        };
        fields.insert("root_id".into(), json!(root));
        if mode == WriteMode::Insert {
            return self
                .reconciler
                .create(self, object, mode, None, fields)
                .await;
        }
        let name = text(&fields, "name").to_owned();
        let found: Vec<Stored> = (self.locations.of(&self.client, root).await?)
            .into_iter()
            .filter(|l| named(l, &name))
            .map(|l| stored(object, l))
            .collect();
        let ambiguous = |ids: &[String]| {
            format!("location {name:?} is ambiguous at client {root}: locations {ids:?}")
        };
        let verdict = self
            .reconciler
            .apply(self, object, None, fields.clone(), &found, ambiguous)
            .await?;
        if let (Verdict::Updated { .. }, [current]) = (&verdict, &found[..]) {
            let mut now = current.fields.clone();
            now.extend(fields);
            self.locations.learn(root, now);
        }
        Ok(verdict)
    }

    async fn write_contact(&self, mode: WriteMode, record: &Prepared) -> Result<Verdict, Fatal> {
        let mut fields = record.fields();
        let object = TrackopsObject::Contact;
        let names_client =
            fields.contains_key("client_id") || fields.contains_key("client_account_code");
        let root = match names_client {
            true => match self.root_of(&fields).await? {
                Ok(root) => Some(root),
                Err(verdict) => return Ok(verdict),
            },
            false => None,
        };
        if let Some(root) = root {
            let name = fields.get("location_name").and_then(Value::as_str);
            match self.locations.find(&self.client, root, name).await? {
                Ok(location) => {
                    fields.retain(|field, _| !PARENT_COLUMNS.contains(&field.as_str()));
                    fields.insert("client_id".into(), json!(location));
                }
                Err(verdict) => return Ok(verdict),
            }
        } else {
            fields.retain(|field, _| !PARENT_COLUMNS.contains(&field.as_str()));
        }
        let email = text(&fields, "email").to_owned();
        let key = email.to_lowercase();
        match mode {
            WriteMode::Update => {
                return self
                    .reconciler
                    .update_by_id(self, object, &id_in(record), fields)
                    .await
            }
            WriteMode::Insert => {
                return self
                    .reconciler
                    .create(self, object, mode, Some(&key), fields)
                    .await
            }
            WriteMode::Upsert => {}
        }
        let found = self.reconciler.find(self, object, &key).await?;
        if let ([current], Some(root)) = (&found[..], root) {
            let theirs = current
                .fields
                .get("client_id")
                .and_then(Value::as_u64)
                .unwrap_or_default();
            let ours = self
                .locations
                .of(&self.client, root)
                .await?
                .iter()
                .any(|l| id_of(l) == theirs);
            if !ours {
                return Ok(Verdict::refused(format!(
                    "the email {email:?} belongs to contact {} at another client (location {theirs}); contacts are not moved between clients",
                    current.id
                )));
            }
        }
        // The role stays unless the row gives one.
        let ambiguous = |ids: &[String]| format!("email {email:?} is ambiguous: contacts {ids:?}");
        self.reconciler
            .apply(self, object, Some(&key), fields, &found, ambiguous)
            .await
    }
}

/// Creates and partial updates (PUT takes only the fields it is sent).
impl Store<TrackopsObject> for TrackopsWriter {
    fn rules(&self, object: TrackopsObject) -> &dyn Rules {
        crate::rules::of(object)
    }

    fn creatable(
        &self,
        object: TrackopsObject,
        row: Map<String, Value>,
    ) -> Result<Map<String, Value>, Verdict> {
        create_body(object, row, &self.settings)
    }

    /// Emails are unique: an insert sent again after its run was killed finds its own.
    fn key_is_unique(&self, object: TrackopsObject) -> bool {
        object == TrackopsObject::Contact
    }

    /// On insert only: an upsert looked the email up just before, and updating a contact found
    /// now could move it to another client.
    fn taken(&self, _: TrackopsObject, mode: WriteMode, refused: &Verdict) -> bool {
        mode == WriteMode::Insert
            && matches!(refused, Verdict::Refused { message, .. } if message.contains("already been taken"))
    }

    fn notice(&self, text: String) {
        self.client.notice(text);
    }

    async fn create(
        &self,
        object: TrackopsObject,
        _: WriteMode,
        row: Map<String, Value>,
    ) -> Result<Result<Stored, Verdict>, Fatal> {
        // A create whose answer was lost is looked for before it is sent again.
        let root = row
            .get("root_id")
            .and_then(Value::as_u64)
            .unwrap_or_default();
        let find = || async {
            match object {
                TrackopsObject::Client => self.client.client_like(&row).await,
                TrackopsObject::Location => {
                    let name = text(&row, "name");
                    self.locations.read_again(&self.client, root, name).await
                }
                TrackopsObject::Contact => {
                    let email = text(&row, "email").to_lowercase();
                    Ok(self
                        .client
                        .with_key(object, &email)
                        .await?
                        .into_iter()
                        .next())
                }
            }
        };
        let created = self.client.create(object, &row, find).await?;
        Ok(created.map(|record| {
            if object == TrackopsObject::Location {
                self.locations.learn(root, record.clone());
            }
            stored(object, record)
        }))
    }

    /// A 404 is the record's (it does not exist) or the route's.
    async fn update(
        &self,
        object: TrackopsObject,
        _: WriteMode,
        id: &str,
        changed: &Map<String, Value>,
    ) -> Result<Result<(), Verdict>, Fatal> {
        let path = format!("{}/{id}", object.route());
        let body = Some(ApiClient::wrapped(object, changed));
        let reply = self.client.send(Method::PUT, &path, body, false).await?;
        let id_number = id.parse().unwrap_or_default();
        let exists = async { Ok(self.client.record(object, id_number).await?.is_some()) };
        let record = format!("{object} {id}");
        reply
            .into_update(exists, &record, self.client.base_url())
            .await
    }
}

/// Clients by account code and contacts by email, one key at a time or from the listing.
impl Finder<TrackopsObject> for TrackopsWriter {
    fn can_look_up(&self, object: TrackopsObject) -> bool {
        object != TrackopsObject::Location
    }

    async fn look_up(&self, object: TrackopsObject, key: &str) -> Result<Vec<Stored>, Fatal> {
        let found = self.client.with_key(object, key).await?;
        Ok(found.into_iter().map(|r| stored(object, r)).collect())
    }

    /// The first "page" is the count (`mode=count`); then the pages from 1.
    async fn list_page(&self, object: TrackopsObject, next: Option<String>) -> Result<Page, Fatal> {
        let Some(page) = next.and_then(|n| n.parse::<u64>().ok()) else {
            let pages = self.client.pages(object.route()).await?;
            return Ok(Page {
                records: Vec::new(),
                next: (pages > 0).then(|| "1".to_owned()),
                pages: Some(pages + 1),
            });
        };
        let records = self.client.page(object.route(), &[], page).await?;
        Ok(Page {
            next: (records.len() >= crate::api::PAGE).then(|| (page + 1).to_string()),
            records: records.into_iter().map(|r| stored(object, r)).collect(),
            pages: None,
        })
    }
}

impl Writer for TrackopsWriter {
    type Object = TrackopsObject;

    fn attach(&self, backlog: Backlog) {
        self.reconciler.attach(backlog);
    }

    fn batch_limit(&self, _: TrackopsObject, _: WriteMode) -> usize {
        1
    }

    fn stop(&self) {
        self.client.stop();
    }

    fn concurrency_limit(&self) -> Option<usize> {
        Some(self.client.concurrency_limit())
    }

    fn progress(&self, settled: u64, waiting: u64) -> Option<String> {
        let finding = self.reconciler.spent() + self.locations.reads();
        let (spent, pace) = (self.client.requests_sent(), self.client.pace_per_minute());
        Some(spending(spent, finding, pace, settled, waiting))
    }

    async fn write(
        &self,
        object: TrackopsObject,
        mode: WriteMode,
        records: &[Prepared],
    ) -> Result<Vec<Verdict>, Fatal> {
        let mut verdicts = Vec::with_capacity(records.len());
        for record in records {
            verdicts.push(match object {
                TrackopsObject::Client => self.write_client(mode, record).await?,
                TrackopsObject::Location => self.write_location(mode, record).await?,
                TrackopsObject::Contact => self.write_contact(mode, record).await?,
            });
        }
        Ok(verdicts)
    }
}
