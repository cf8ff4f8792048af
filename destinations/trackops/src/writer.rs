//! Rows into Trackops writes. No bulk and no upsert exist, so an upsert finds the record by
//! natural key (an account code, an email: the engine's reconcile toolkit reads one key at a
//! time, or the whole listing once that costs less; a location by name among its client's),
//! then creates, or updates only what differs (nothing differs: no request), and two matches
//! reject the row as ambiguous. Children find their parents, never create them. A create
//! whose outcome is unknown is looked up before it is sent again.

use crate::api::{unwrap_record, ApiClient};
use crate::config::Settings;
use crate::objects::TrackopsObject;
use bytes::Bytes;
use engine::catalog::WriteMode;
use engine::error::Fatal;
use engine::http::sharing_retries;
use engine::http::Reply;
use engine::reconcile::{self, Decision, Finder, Found, Page, Query, Reconciler, Rules, Stored};
use engine::write::backlog::Backlog;
use engine::write::prepare::Prepared;
use engine::write::{Verdict, Writer};
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;

/// Entries a cache may hold before it is emptied: memory stays bounded, at worst a lookup
/// is made again.
const CACHE_LIMIT: usize = 50_000;

/// A client row's columns that belong to its primary location (sent only on create).
const LOCATION_COLUMNS: [&str; 11] = [
    "location_name",
    "address_1",
    "address_2",
    "address_3",
    "city",
    "state",
    "zip",
    "country",
    "phone_primary",
    "phone_secondary",
    "phone_fax",
];

/// Row columns that name a parent; the API takes a location id instead.
const PARENT_COLUMNS: [&str; 3] = ["client_id", "client_account_code", "location_name"];

/// Each client's locations, as read (or created) this sync.
#[derive(Default)]
struct Cache {
    /// root client id → its locations.
    locations: HashMap<u64, Vec<Map<String, Value>>>,
}

impl Cache {
    fn bound(&mut self) {
        if self.locations.len() > CACHE_LIMIT {
            self.locations.clear();
        }
    }
}

pub struct TrackopsWriter {
    client: ApiClient,
    settings: Settings,
    cache: Mutex<Cache>,
    reconciler: Reconciler<TrackopsObject>,
}

/// Trackops compares values as they are: a null is an empty string, numbers by value.
struct TrackopsRules;

impl Rules for TrackopsRules {}

fn id_of(record: &Map<String, Value>) -> u64 {
    record.get("id").and_then(Value::as_u64).unwrap_or_default()
}

/// A record's natural key as rows give it: a client's account code, a contact's email (any
/// case).
fn key_of(object: TrackopsObject, record: &Map<String, Value>) -> Option<String> {
    let text = |field: &str| record.get(field).and_then(Value::as_str).map(str::trim);
    match object {
        TrackopsObject::Client => text("account_code").map(str::to_owned),
        TrackopsObject::Contact => text("email").map(str::to_lowercase),
        TrackopsObject::Location => None,
    }
}

fn stored(object: TrackopsObject, record: Map<String, Value>) -> Stored {
    Stored {
        id: id_of(&record).to_string(),
        key: key_of(object, &record),
        fields: record,
    }
}

impl TrackopsWriter {
    pub fn new(client: ApiClient, settings: Settings) -> Self {
        Self {
            client,
            settings,
            cache: Mutex::new(Cache::default()),
            reconciler: Reconciler::default(),
        }
    }

    fn dry_run(&self) -> bool {
        self.settings.sync.dry_run
    }

    fn wrapped(object: TrackopsObject, record: &Map<String, Value>) -> Bytes {
        Bytes::from(serde_json::to_vec(&json!({ object.wrapper(): record })).expect("JSON"))
    }

    /// Ids of the clients whose account code is exactly `code`.
    async fn clients_with(&self, code: &str) -> Result<Vec<u64>, Fatal> {
        let found = self
            .reconciler
            .find(self, TrackopsObject::Client, code.trim())
            .await?;
        Ok(found
            .iter()
            .map(|s| s.id.parse().unwrap_or_default())
            .collect())
    }

    /// The records of `object` whose natural key is `key`, read now (the API's filter may
    /// match substrings, so the matches are checked).
    async fn read_key(
        &self,
        object: TrackopsObject,
        key: &str,
    ) -> Result<Vec<Map<String, Value>>, Fatal> {
        let field = match object {
            TrackopsObject::Client => "account_code",
            _ => "email",
        };
        let all = self
            .client
            .list(object.route(), &[(field, key.to_owned())])
            .await?;
        Ok(all
            .into_iter()
            .filter(|r| key_of(object, r).as_deref() == Some(key))
            .collect())
    }

    /// Creates, updates only what differs, or leaves unchanged: the toolkit's decision for
    /// `fields` against the records `found` (creates are the caller's, `create`).
    async fn apply(
        &self,
        object: TrackopsObject,
        fields: &Map<String, Value>,
        found: &[Stored],
        ambiguous: impl FnOnce(&[String]) -> String,
    ) -> Result<Option<Verdict>, Fatal> {
        Ok(Some(
            match reconcile::decide(fields, found, &TrackopsRules) {
                Decision::Create => return Ok(None),
                Decision::Unchanged { id } => Verdict::Unchanged { id },
                Decision::Ambiguous { ids } => Verdict::refused(ambiguous(&ids)),
                Decision::Update { id, changed } => {
                    let verdict = self
                        .update(object, id.parse().unwrap_or_default(), &changed)
                        .await?;
                    if verdict.is_written() {
                        let mut merged = found[0].fields.clone();
                        merged.extend(changed);
                        self.reconciler.learn(object, &stored(object, merged));
                    }
                    verdict
                }
            },
        ))
    }

    /// A client's locations, read once per sync.
    async fn locations_of(&self, root: u64) -> Result<Vec<Map<String, Value>>, Fatal> {
        if let Some(locations) = self.cache.lock().unwrap().locations.get(&root) {
            return Ok(locations.clone());
        }
        let all = self
            .client
            .list("/client/locations", &[("parent", root.to_string())])
            .await?;
        let mine: Vec<Map<String, Value>> = all
            .into_iter()
            .filter(|l| l.get("root_id").and_then(Value::as_u64) == Some(root))
            .collect();
        let mut cache = self.cache.lock().unwrap();
        cache.bound();
        cache.locations.insert(root, mine.clone());
        Ok(mine)
    }

    fn learn_location(&self, root: u64, location: Map<String, Value>) {
        let mut cache = self.cache.lock().unwrap();
        if let Some(known) = cache.locations.get_mut(&root) {
            known.retain(|l| id_of(l) != id_of(&location));
            if location.get("is_primary") == Some(&Value::Bool(true)) {
                for other in known.iter_mut() {
                    other.insert("is_primary".into(), Value::Bool(false));
                }
            }
            known.push(location);
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
        Ok(match self.clients_with(code).await?.as_slice() {
            [] => Err(Verdict::refused(format!(
                "no client has account_code {code:?}; a child row never creates its client: write the client first (a clients stream in the same sync is written before it)"
            ))),
            [id] => Ok(*id),
            ids => Err(Verdict::refused(format!("account_code {code:?} is ambiguous: clients {ids:?} carry it"))),
        })
    }

    /// The location a contact row names under `root`: by name (any case), blank for the primary.
    async fn location_for(
        &self,
        root: u64,
        name: Option<&str>,
    ) -> Result<Result<u64, Verdict>, Fatal> {
        let locations = self.locations_of(root).await?;
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        let matches: Vec<&Map<String, Value>> = match name {
            None => {
                let primary: Vec<&Map<String, Value>> = locations
                    .iter()
                    .filter(|l| l.get("is_primary") == Some(&Value::Bool(true)))
                    .collect();
                if primary.is_empty() {
                    locations
                        .iter()
                        .min_by_key(|l| id_of(l))
                        .into_iter()
                        .collect()
                } else {
                    primary
                }
            }
            Some(name) => locations
                .iter()
                .filter(|l| {
                    l.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| n.trim().eq_ignore_ascii_case(name))
                })
                .collect(),
        };
        Ok(match matches.as_slice() {
            [] => Err(Verdict::refused(match name {
                Some(name) => format!("client {root} has no location named {name:?}"),
                None => format!("client {root} has no location"),
            })),
            [one] => Ok(id_of(one)),
            several => Err(Verdict::refused(format!(
                "location name {:?} is ambiguous at client {root}: locations {:?}",
                name.unwrap_or_default(),
                several.iter().map(|l| id_of(l)).collect::<Vec<_>>()
            ))),
        })
    }

    /// POSTs a create; a create of unknown outcome is looked up with `find` first.
    async fn create<F, Fut>(
        &self,
        object: TrackopsObject,
        record: &Map<String, Value>,
        find: F,
    ) -> Result<Result<Map<String, Value>, Verdict>, Fatal>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Map<String, Value>>, Fatal>>,
    {
        if self.dry_run() {
            let mut planned = record.clone();
            planned.insert("id".into(), json!(0));
            return Ok(Ok(planned));
        }
        let body = Self::wrapped(object, record);
        sharing_retries(async {
            loop {
                match self.client.send(Method::POST, object.route(), Some(body.clone()), true).await? {
                    Reply::Success { body, .. } => {
                        return unwrap_record(&body, object.wrapper()).map(Ok).ok_or_else(|| {
                            Fatal::config(format!(
                                "POST {} answered without a JSON record (a login page?): check base_url ({})",
                                object.route(),
                                self.client.base_url()
                            ))
                        })
                    }
                    Reply::Refused { status: 404, message } => {
                        return Err(Fatal::config(format!(
                            "POST {} answered 404 ({message}): the route is missing, or this account has no write access to it; check base_url ({})",
                            object.route(),
                            self.client.base_url()
                        )))
                    }
                    Reply::Refused { status, message } => return Ok(Err(Verdict::refused_with(status, message))),
                    Reply::Unknown { reason } => {
                        if let Some(existing) = find().await? {
                            self.client.notice(format!("POST {} failed ({reason}) but the record exists: it landed", object.route()));
                            return Ok(Ok(existing));
                        }
                    }
                }
            }
        }).await
    }

    /// An update by id: compared with the listing once reading it costs less than sending
    /// every row (nothing differs: no request; else only what differs), until then sent whole.
    async fn update_by_id(
        &self,
        object: TrackopsObject,
        id: u64,
        fields: &Map<String, Value>,
    ) -> Result<Verdict, Fatal> {
        let query = id.to_string();
        if let Found::Records(found) = self
            .reconciler
            .find_or_blind(self, object, Query::Id(&query))
            .await?
        {
            if let [held] = &found[..] {
                let changed = reconcile::changes(fields, &held.fields, &TrackopsRules);
                if changed.is_empty() {
                    return Ok(Verdict::Unchanged {
                        id: held.id.clone(),
                    });
                }
                return self.update(object, id, &changed).await;
            }
        }
        self.update(object, id, fields).await
    }

    /// PUTs a partial update; a 404 is the record's (it does not exist) or the route's.
    async fn update(
        &self,
        object: TrackopsObject,
        id: u64,
        changes: &Map<String, Value>,
    ) -> Result<Verdict, Fatal> {
        let updated = Verdict::Updated {
            id: id.to_string(),
            fields: reconcile::field_names(changes),
        };
        if self.dry_run() {
            return Ok(updated);
        }
        let path = format!("{}/{id}", object.route());
        match self
            .client
            .send(
                Method::PUT,
                &path,
                Some(Self::wrapped(object, changes)),
                false,
            )
            .await?
        {
            Reply::Success { .. } => Ok(updated),
            Reply::Refused {
                status: 404,
                message,
            } => {
                let read = self.client.send(Method::GET, &path, None, false).await?;
                if matches!(read, Reply::Success { .. }) {
                    return Err(Fatal::config(format!(
                        "PUT {} answered 404 although {object} {id} exists: the update route is missing or this account cannot write; check base_url ({})",
                        object.route(),
                        self.client.base_url()
                    )));
                }
                Ok(Verdict::refused_with(
                    404,
                    format!("{object} {id} does not exist ({message})"),
                ))
            }
            Reply::Refused { status, message } => Ok(Verdict::refused_with(status, message)),
            Reply::Unknown { reason, .. } => Err(Fatal::config(reason)),
        }
    }

    async fn write_client(&self, mode: WriteMode, record: &Prepared) -> Result<Verdict, Fatal> {
        let mut fields: Map<String, Value> =
            serde_json::from_slice(record.body()).expect("a JSON object");
        let mut location = Map::new();
        for column in LOCATION_COLUMNS {
            if let Some(value) = fields.remove(column) {
                location.insert(
                    if column == "location_name" {
                        "name".into()
                    } else {
                        column.into()
                    },
                    value,
                );
            }
        }
        match mode {
            WriteMode::Update => {
                let id: u64 = record
                    .id
                    .as_deref()
                    .and_then(|i| i.parse().ok())
                    .unwrap_or_default();
                self.update_by_id(TrackopsObject::Client, id, &fields).await
            }
            WriteMode::Insert => self.create_client(fields, location).await,
            WriteMode::Upsert => {
                let code = fields
                    .get("account_code")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let found = self
                    .reconciler
                    .find(self, TrackopsObject::Client, code.trim())
                    .await?;
                let ambiguous = |ids: &[String]| {
                    format!("account_code {code:?} is ambiguous: clients {ids:?} carry it")
                };
                match self
                    .apply(TrackopsObject::Client, &fields, &found, ambiguous)
                    .await?
                {
                    Some(verdict) => Ok(verdict),
                    None => self.create_client(fields, location).await,
                }
            }
        }
    }

    /// A record by id, for an upsert's comparison.
    async fn read(&self, object: TrackopsObject, id: u64) -> Result<Map<String, Value>, Fatal> {
        let path = format!("{}/{id}", object.route());
        match self.client.send(Method::GET, &path, None, false).await? {
            Reply::Success { body, .. } => {
                unwrap_record(&body, object.wrapper()).ok_or_else(|| {
                    Fatal::config(format!(
                        "GET {path} did not answer with JSON: check base_url ({})",
                        self.client.base_url()
                    ))
                })
            }
            // Gone since the lookup: compare with nothing, so every field is sent.
            _ => Ok(Map::new()),
        }
    }

    /// A state and country for a new location, from the row or the defaults; `Err` names
    /// what is missing, before any request.
    fn place(&self, location: &mut Map<String, Value>, what: &str) -> Result<(), Verdict> {
        for (field, default, setting) in [
            ("state", &self.settings.default_state, "default_state"),
            ("country", &self.settings.default_country, "default_country"),
        ] {
            let given = location
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty());
            if !given {
                match default {
                    Some(code) => {
                        location.insert(field.into(), Value::String(code.clone()));
                    }
                    None => {
                        return Err(Verdict::refused(format!(
                            "{what} needs `{field}` (a two-character code): map a {field} column or set {setting}"
                        )))
                    }
                }
            }
        }
        Ok(())
    }

    async fn create_client(
        &self,
        mut fields: Map<String, Value>,
        mut location: Map<String, Value>,
    ) -> Result<Verdict, Fatal> {
        if fields
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Ok(Verdict::refused(
                "field `name` is required to create a client",
            ));
        }
        if !location.contains_key("name") {
            location.insert(
                "name".into(),
                Value::String(self.settings.default_location_name.clone()),
            );
        }
        if let Err(verdict) = self.place(&mut location, "a new client's primary location") {
            return Ok(verdict);
        }
        location.retain(|_, v| !v.is_null());
        fields.insert("primary_location".into(), Value::Object(location));
        let code = fields
            .get("account_code")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let name = fields
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let find = || async {
            let existing = match &code {
                Some(code) => self
                    .read_key(TrackopsObject::Client, code.trim())
                    .await?
                    .first()
                    .map(id_of),
                None => {
                    let all = self
                        .client
                        .list("/clients", &[("name", name.clone())])
                        .await?;
                    all.iter()
                        .find(|c| c.get("name").and_then(Value::as_str) == Some(name.as_str()))
                        .map(id_of)
                }
            };
            Ok(match existing {
                Some(id) => Some(self.read(TrackopsObject::Client, id).await?),
                None => None,
            })
        };
        let created = match self.create(TrackopsObject::Client, &fields, find).await? {
            Ok(created) => created,
            Err(verdict) => return Ok(verdict),
        };
        let id = id_of(&created);
        self.reconciler.learn(
            TrackopsObject::Client,
            &stored(TrackopsObject::Client, created),
        );
        Ok(created_verdict(id))
    }

    async fn write_location(&self, mode: WriteMode, record: &Prepared) -> Result<Verdict, Fatal> {
        let mut fields: Map<String, Value> =
            serde_json::from_slice(record.body()).expect("a JSON object");
        if mode == WriteMode::Update {
            let id: u64 = record
                .id
                .as_deref()
                .and_then(|i| i.parse().ok())
                .unwrap_or_default();
            for column in PARENT_COLUMNS {
                fields.remove(column);
            }
            return self
                .update_by_id(TrackopsObject::Location, id, &fields)
                .await;
        }
        let root = match self.root_of(&fields).await? {
            Ok(root) => root,
            Err(verdict) => return Ok(verdict),
        };
        for column in PARENT_COLUMNS {
            fields.remove(column);
        }
        let name = fields
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_owned();
        if mode == WriteMode::Upsert {
            let matches: Vec<Map<String, Value>> = self
                .locations_of(root)
                .await?
                .into_iter()
                .filter(|l| {
                    l.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| n.trim().eq_ignore_ascii_case(&name))
                })
                .collect();
            let found: Vec<Stored> = matches
                .into_iter()
                .map(|l| stored(TrackopsObject::Location, l))
                .collect();
            let ambiguous = |ids: &[String]| {
                format!("location {name:?} is ambiguous at client {root}: locations {ids:?}")
            };
            if let Some(verdict) = self
                .apply(TrackopsObject::Location, &fields, &found, ambiguous)
                .await?
            {
                if let (true, [current]) = (matches!(verdict, Verdict::Updated { .. }), &found[..])
                {
                    let mut merged = current.fields.clone();
                    merged.extend(fields.clone());
                    self.learn_location(root, merged);
                }
                return Ok(verdict);
            }
        }
        if let Err(verdict) = self.place(&mut fields, "a new location") {
            return Ok(verdict);
        }
        fields.retain(|_, v| !v.is_null());
        fields.insert("root_id".into(), json!(root));
        let find = || async {
            self.cache.lock().unwrap().locations.remove(&root);
            Ok(self.locations_of(root).await?.into_iter().find(|l| {
                l.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.trim().eq_ignore_ascii_case(&name))
            }))
        };
        match self.create(TrackopsObject::Location, &fields, find).await? {
            Ok(created) => {
                let id = id_of(&created);
                self.learn_location(root, created);
                Ok(created_verdict(id))
            }
            Err(verdict) => Ok(verdict),
        }
    }

    async fn write_contact(&self, mode: WriteMode, record: &Prepared) -> Result<Verdict, Fatal> {
        let mut fields: Map<String, Value> =
            serde_json::from_slice(record.body()).expect("a JSON object");
        let names_client =
            fields.contains_key("client_id") || fields.contains_key("client_account_code");
        let location_name = fields
            .get("location_name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let root = if names_client {
            match self.root_of(&fields).await? {
                Ok(root) => Some(root),
                Err(verdict) => return Ok(verdict),
            }
        } else {
            None
        };
        let location = match root {
            Some(root) => match self.location_for(root, location_name.as_deref()).await? {
                Ok(location) => Some(location),
                Err(verdict) => return Ok(verdict),
            },
            None => None,
        };
        for column in PARENT_COLUMNS {
            fields.remove(column);
        }
        if let Some(location) = location {
            fields.insert("client_id".into(), json!(location));
        }
        if mode == WriteMode::Update {
            let id: u64 = record
                .id
                .as_deref()
                .and_then(|i| i.parse().ok())
                .unwrap_or_default();
            return self
                .update_by_id(TrackopsObject::Contact, id, &fields)
                .await;
        }
        let email = fields
            .get("email")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_owned();
        let key = email.to_lowercase();
        let with_email = || self.read_key(TrackopsObject::Contact, &key);
        if mode == WriteMode::Upsert {
            let found = self
                .reconciler
                .find(self, TrackopsObject::Contact, &key)
                .await?;
            if let [current] = &found[..] {
                let their_location = current
                    .fields
                    .get("client_id")
                    .and_then(Value::as_u64)
                    .unwrap_or_default();
                if let Some(root) = root {
                    let ours = self
                        .locations_of(root)
                        .await?
                        .iter()
                        .any(|l| id_of(l) == their_location);
                    if !ours {
                        return Ok(Verdict::refused(format!(
                            "the email {email:?} belongs to contact {} at another client (location {their_location}); contacts are not moved between clients",
                            current.id
                        )));
                    }
                }
            }
            // The role stays unless the row gives one.
            let ambiguous =
                |ids: &[String]| format!("email {email:?} is ambiguous: contacts {ids:?}");
            if let Some(verdict) = self
                .apply(TrackopsObject::Contact, &fields, &found, ambiguous)
                .await?
            {
                return Ok(verdict);
            }
        }
        if location.is_none() {
            return Ok(Verdict::refused(
                "to create a contact, name its client: give client_id or client_account_code",
            ));
        }
        fields
            .entry("role_id")
            .or_insert(json!(self.settings.default_role_id));
        fields.retain(|_, v| !v.is_null());
        for required in ["first_name", "last_name", "email"] {
            if fields
                .get(required)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Ok(Verdict::refused(format!(
                    "field `{required}` is required to create a contact"
                )));
            }
        }
        let find = || async { Ok(with_email().await?.into_iter().next()) };
        match self.create(TrackopsObject::Contact, &fields, find).await? {
            Ok(created) => {
                let id = id_of(&created);
                self.reconciler.learn(
                    TrackopsObject::Contact,
                    &stored(TrackopsObject::Contact, created),
                );
                Ok(created_verdict(id))
            }
            // Emails are unique: an insert sent again after its run was killed finds its own.
            Err(Verdict::Refused { status, message }) if message.contains("already been taken") => {
                let refused = Verdict::Refused { status, message };
                let [current] = &with_email().await?[..] else {
                    return Ok(refused);
                };
                let record = format!("contact {} with email {email:?}", id_of(current));
                let differing = reconcile::changes(&fields, current, &TrackopsRules);
                Ok(Verdict::for_existing(
                    refused,
                    &record,
                    differing.keys(),
                    |text| self.client.notice(text),
                ))
            }
            Err(verdict) => Ok(verdict),
        }
    }
}

/// A create's verdict: its id, none in a dry run.
fn created_verdict(id: u64) -> Verdict {
    Verdict::Created {
        id: (id != 0).then(|| id.to_string()),
    }
}

/// Clients by account code and contacts by email, one key at a time or from the listing.
impl Finder<TrackopsObject> for TrackopsWriter {
    fn can_look_up(&self, object: TrackopsObject) -> bool {
        object != TrackopsObject::Location
    }

    async fn look_up(&self, object: TrackopsObject, key: &str) -> Result<Vec<Stored>, Fatal> {
        let found = self.read_key(object, key).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_differs_is_sent() {
        let current: Map<String, Value> = serde_json::from_str(
            r#"{"id":1,"name":"Acme","website":"https://a.example","notes":"x"}"#,
        )
        .unwrap();
        let desired: Map<String, Value> =
            serde_json::from_str(r#"{"name":"Acme","website":"https://b.example","city":null}"#)
                .unwrap();
        assert_eq!(
            Value::Object(reconcile::changes(&desired, &current, &TrackopsRules)),
            json!({"website": "https://b.example"})
        );
        let clearing: Map<String, Value> = serde_json::from_str(r#"{"notes":null}"#).unwrap();
        assert_eq!(
            Value::Object(reconcile::changes(&clearing, &current, &TrackopsRules)),
            json!({"notes": null})
        );
    }
}
