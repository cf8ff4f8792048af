//! ClientSuccess as a [`Writer`]: each object × mode over the route its account offers (bulk,
//! single, v1), refused bulk batches bisected to the bad records, upserts done by lookup where
//! there is no upsert route, and a missing collection route turned into a fatal config error,
//! never into rejections. Where the upsert route exists, the engine's reconcile toolkit
//! decides: the blind upsert while the rows to come are fewer than the listing's pages, else
//! the listing once and then only the rows that differ are sent, with only what differs.

use super::custom;
use super::http::{ApiClient, ApiRequest, Reply};
use super::surface::{ApiSurface, Create, ObjectRoutes, SurfacePlan, Update, Upsert};
use super::v1;
use crate::catalog::{CustomFields, ObjectKind, WriteMode};
use crate::config::Settings;
use bytes::Bytes;
use engine::error::Fatal;
use engine::http::{sharing_retries, sharing_retries_from};
use engine::json::Doc;
use engine::reconcile::store::Store;
use engine::reconcile::{
    field_names, Finder, Found, MergedContainer, Page, Query, Reconciler, Rules, Stored,
};
use engine::write::backlog::Backlog;
use engine::write::prepare::Prepared;
use engine::write::{Verdict, Writer};
use futures_util::future::join_all;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::Method;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::OnceCell;

/// Everything but unreserved characters is escaped in a path segment or a query value.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn escape(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

pub struct ClientSuccessWriter {
    client: ApiClient,
    surfaces: SurfacePlan,
    batch_size: usize,
    /// Client uuid → v1 integer id, learned once per sync (v1 addresses clients by id).
    client_ids: Mutex<HashMap<String, u64>>,
    /// Client externalId → the client, for records that name their client by it: looked up
    /// once per sync (concurrent askers share one lookup), or learned from a create.
    parents: Mutex<HashMap<String, Arc<OnceCell<Parent>>>>,
    /// Whether v1 is there, asked when a lookup first needs it (detection may not have).
    v1_asked: OnceCell<bool>,
    /// Without v1, clients are found by reading them all through v2 once.
    client_directory: OnceCell<HashMap<String, Vec<Parent>>>,
    /// Without v1, contacts to upsert are found by email (lower case) in a v2 read of them
    /// all, once; contacts created since are added from their create answers.
    contact_directory: OnceCell<Mutex<HashMap<String, Vec<String>>>>,
    /// The sync writes contacts or contracts: created clients' ids are worth keeping.
    learn_clients: bool,
    reconciler: Reconciler<ObjectKind>,
    dry_run: bool,
}

/// Custom values merge member by member; the rest compares by value. An update through the
/// upsert route carries the natural keys it matches on.
const RULES: [MergedContainer; 3] = [
    MergedContainer {
        container: "custom",
        always_sent: &["externalId", "name"],
    },
    MergedContainer {
        container: "custom",
        always_sent: &["email"],
    },
    MergedContainer {
        container: "custom",
        always_sent: &["externalId"],
    },
];

/// The key an upsert matches a record on, as ClientSuccess does: a client by externalId,
/// else by name; a contact by email (any case); a contract by externalId.
fn upsert_key(object: ObjectKind, record: &Map<String, Value>) -> Option<String> {
    let text = |field: &str| {
        record
            .get(field)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
    };
    match object {
        ObjectKind::Client => text("externalId")
            .map(|x| format!("externalId:{x}"))
            .or_else(|| text("name").map(|n| format!("name:{n}"))),
        ObjectKind::Contact => text("email").map(|e| format!("email:{}", e.to_lowercase())),
        ObjectKind::Contract => text("externalId").map(|x| format!("externalId:{x}")),
    }
}

/// A client record (any surface's answer) as a parent: its uuid, and its v1 id when shown.
fn parent_of(client: &Map<String, Value>) -> Option<Parent> {
    Some(Parent::Found {
        uuid: client.get("uuid")?.as_str()?.to_owned(),
        id: client.get("id").and_then(Value::as_u64),
    })
}

/// A body with the insert's defaults for what it lacks ([`super::fill_create_defaults`]), for
/// an upsert known to create; `None` when nothing is added.
fn with_create_defaults(object: ObjectKind, body: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    let Ok(Doc::Object(mut fields)) = Doc::parse(text) else {
        return None;
    };
    crate::catalog::fill_create_defaults(object, WriteMode::Insert, &mut fields)
        .then(|| serde_json::to_vec(&Doc::Object(fields)).expect("JSON values serialize"))
}

/// Whether an API message says no more than that `status` and/or `active` are missing
/// (`active is required`, `status and active are required`).
fn names_only_create_defaults(message: &str) -> bool {
    let message = message
        .strip_prefix("ClientSuccess refused it: ")
        .unwrap_or(message)
        .to_ascii_lowercase();
    let mut named = false;
    let rest = message
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .filter(|word| match *word {
            "status" | "active" => {
                named = true;
                false
            }
            "is" | "are" | "required" | "and" | "missing" | "field" | "fields" => false,
            _ => true,
        })
        .count();
    named && rest == 0 && message.contains("required")
}

/// Files a contact (a v2 answer or read) under its email, lower case.
fn add_contact(directory: &mut HashMap<String, Vec<String>>, contact: &Map<String, Value>) {
    let email = contact.get("email").and_then(Value::as_str);
    let uuid = contact.get("uuid").and_then(Value::as_str);
    if let (Some(email), Some(uuid)) = (email, uuid) {
        let uuids = directory.entry(email.to_lowercase()).or_default();
        if !uuids.iter().any(|u| u == uuid) {
            uuids.push(uuid.to_owned());
        }
    }
}

/// Clients kept by externalId at most (about 100 bytes each): past it, learning stops and the
/// lookups start afresh, so a sync of millions of clients does not hold them all.
const MAX_PARENTS: usize = 100_000;

/// What a client externalId names.
#[derive(Debug, Clone)]
enum Parent {
    Found { uuid: String, id: Option<u64> },
    Missing,
    Several(usize),
}

/// An answer a write route gave: its body, or the record's refusal.
enum Answer {
    Body(Bytes),
    Refused(Verdict),
}

/// What a create came to: an answer, or an outcome unknown.
enum Attempt {
    Known(Answer),
    Unknown,
}

/// A create that is known to have happened: its answer, or the record found after an
/// unknown outcome.
enum Created {
    Answer(Bytes),
    Found(Map<String, Value>),
}

/// Whether a record whose create had an unknown outcome exists now.
enum Existence {
    Found(Map<String, Value>),
    Absent,
    /// It has no natural key, or this account has no way to look it up.
    Unknowable,
}

type Step<T> = Result<Result<T, Verdict>, Fatal>;

fn refused(status: Option<u16>, message: impl std::fmt::Display) -> Verdict {
    Verdict::Refused {
        status,
        message: format!("ClientSuccess refused it: {message}"),
    }
}

fn object_of(body: &[u8]) -> Map<String, Value> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn json_body(value: &Map<String, Value>) -> Option<Bytes> {
    Some(Bytes::from(
        serde_json::to_vec(value).expect("JSON values serialize"),
    ))
}

impl ClientSuccessWriter {
    /// Signs in, then finds the routes for `objects`: probed (`api_surface: auto`) or pinned.
    pub async fn connect(
        settings: &Settings,
        objects: &[ObjectKind],
        notices: Option<UnboundedSender<String>>,
    ) -> anyhow::Result<Self> {
        Ok(
            Self::connect_reading_custom_fields(settings, objects, notices, false, &[])
                .await?
                .0,
        )
    }

    /// `connect`, and when `custom` is set, the account's custom field definitions for
    /// `objects` read alongside the probes (each is a round trip before the first write).
    pub async fn connect_reading_custom_fields(
        settings: &Settings,
        objects: &[ObjectKind],
        notices: Option<UnboundedSender<String>>,
        custom: bool,
        needs: &[(ObjectKind, WriteMode)],
    ) -> anyhow::Result<(Self, Result<CustomFields, String>)> {
        let mut client = ApiClient::new(settings)?;
        if let Some(notices) = notices {
            client = client.with_notices(notices);
        }
        let detect = async {
            match settings.api_surface {
                ApiSurface::Auto => SurfacePlan::detect(&client, objects, needs).await,
                pinned => Ok(SurfacePlan::pinned(pinned, objects)),
            }
        };
        let read_custom = async {
            if custom {
                custom::read(&client, objects).await
            } else {
                Ok(CustomFields::default())
            }
        };
        let (surfaces, custom) = tokio::join!(detect, read_custom);
        let surfaces = surfaces?;
        // Upserts found through a v2 read also learn the clients this sync creates.
        let reads_clients = needs.contains(&(ObjectKind::Client, WriteMode::Upsert))
            && surfaces.routes(ObjectKind::Client).and_then(|r| r.upsert) == Some(Upsert::ReadAll);
        let writer = Self {
            surfaces,
            client,
            batch_size: settings.batch_size,
            client_ids: Mutex::new(HashMap::new()),
            parents: Mutex::new(HashMap::new()),
            client_directory: OnceCell::new(),
            contact_directory: OnceCell::new(),
            v1_asked: OnceCell::new(),
            learn_clients: reads_clients || objects.iter().any(|o| o.parent().is_some()),
            reconciler: Reconciler::new(settings.sync.dry_run),
            dry_run: settings.sync.dry_run,
        };
        Ok((writer, custom))
    }

    pub fn surfaces(&self) -> &SurfacePlan {
        &self.surfaces
    }

    /// Whether v1's lookups can be used: as detection found, or asked once now.
    async fn v1_reads(&self) -> Result<bool, Fatal> {
        match self.surfaces.v1_reads {
            Some(known) => Ok(known),
            None => self
                .v1_asked
                .get_or_try_init(|| super::surface::v1_exists(&self.client))
                .await
                .copied(),
        }
    }

    fn routes(&self, object: ObjectKind) -> Result<ObjectRoutes, Fatal> {
        self.surfaces.routes(object).ok_or_else(|| {
            Fatal::config(format!(
                "{object} was not part of the routes probed at start"
            ))
        })
    }

    /// Sends a request. A 404 or 405 from a collection route (a create, bulk or upsert route)
    /// means the route is missing, which no record can cause: that ends the sync.
    async fn call(&self, request: ApiRequest, collection: bool) -> Result<Answer, Fatal> {
        match self.attempt(request, collection).await? {
            Attempt::Known(answer) => Ok(answer),
            Attempt::Unknown => unreachable!("only a request marked `creates` answers Unknown"),
        }
    }

    /// [`Self::call`] for a create, whose outcome may be unknown.
    async fn attempt(&self, request: ApiRequest, collection: bool) -> Result<Attempt, Fatal> {
        let answer = match self.client.send(&request).await? {
            Reply::Success { body, .. } => Answer::Body(body),
            Reply::Refused { status, .. } if collection && matches!(status, 404 | 405) => {
                return Err(Fatal::config(format!(
                    "{request} answered {status}: this ClientSuccess account has no such route, so no record was sent through it. \
                     Routes in use: {}. Check base_url, and set api_surface to auto (or to the surface your account offers)",
                    self.surfaces
                )))
            }
            Reply::Refused { status, message } => Answer::Refused(refused(Some(status), message)),
            Reply::Unknown { .. } => return Ok(Attempt::Unknown),
        };
        Ok(Attempt::Known(answer))
    }

    /// A create or upsert whose answer may teach a client's ids.
    async fn learning_verdict(
        &self,
        object: ObjectKind,
        request: ApiRequest,
    ) -> Result<Verdict, Fatal> {
        Ok(match self.call(request, true).await? {
            Answer::Body(body) => {
                self.learn(object, &body);
                Verdict::Written
            }
            Answer::Refused(verdict) => verdict,
        })
    }

    /// Keeps the ids of the clients an answer shows (one record or an array of them), so a
    /// contact naming one by externalId later in the sync needs no lookup.
    fn learn(&self, object: ObjectKind, answer: &[u8]) {
        if object == ObjectKind::Contact {
            return self.learn_contact(answer);
        }
        if object != ObjectKind::Client || !self.learn_clients {
            return;
        }
        let records = match serde_json::from_slice(answer) {
            Ok(Value::Array(items)) => items,
            Ok(one @ Value::Object(_)) => vec![one],
            _ => return,
        };
        let mut parents = self.parents.lock().unwrap();
        for record in records.iter().filter_map(Value::as_object) {
            if parents.len() >= MAX_PARENTS {
                return;
            }
            let external = record.get("externalId").and_then(Value::as_str);
            if let (Some(external), Some(found)) = (external, parent_of(record)) {
                parents.insert(
                    external.to_owned(),
                    Arc::new(OnceCell::new_with(Some(found))),
                );
            }
        }
    }

    /// The body to send for `record`: as prepared, or, when it names its client by
    /// externalId, with that replaced by the client's uuid. `Err` rejects the record.
    async fn with_parent<'r>(
        &self,
        object: ObjectKind,
        record: &'r Prepared,
    ) -> Step<Cow<'r, [u8]>> {
        let Some((by_id, by_key)) = object.parent_fields().filter(|_| record.after_parent) else {
            return Ok(Ok(Cow::Borrowed(record.body())));
        };
        let mut fields = object_of(record.body());
        let Some(Value::String(external)) = fields.remove(by_key) else {
            return Ok(Ok(Cow::Borrowed(record.body())));
        };
        let reject = |message: String| {
            Ok(Err(Verdict::Refused {
                status: None,
                message,
            }))
        };
        match self.parent(&external).await? {
            Parent::Found { uuid, id } => {
                if let Some(id) = id {
                    self.remember_client_id(&uuid, id);
                }
                fields.insert(by_id.to_owned(), Value::String(uuid));
                Ok(Ok(Cow::Owned(
                    serde_json::to_vec(&fields).expect("JSON values serialize"),
                )))
            }
            Parent::Missing => reject(format!(
                "{by_key} {external:?} matches no client in ClientSuccess (nor one created earlier in this sync)"
            )),
            Parent::Several(n) => reject(format!(
                "{by_key} {external:?} matches {n} clients in ClientSuccess; give clientId to say which"
            )),
        }
    }

    /// The client whose externalId is `external`, asked once per sync.
    async fn parent(&self, external: &str) -> Result<Parent, Fatal> {
        let cell = {
            let mut parents = self.parents.lock().unwrap();
            if parents.len() >= MAX_PARENTS && !parents.contains_key(external) {
                // Memory stays bounded; what is forgotten is looked up again if needed.
                parents.clear();
            }
            parents.entry(external.to_owned()).or_default().clone()
        };
        cell.get_or_try_init(|| self.find_client(external))
            .await
            .cloned()
    }

    async fn find_client(&self, external: &str) -> Result<Parent, Fatal> {
        if !self.v1_reads().await? {
            let directory = self
                .client_directory
                .get_or_try_init(|| self.read_all_clients())
                .await?;
            return Ok(match directory.get(external).map(Vec::as_slice) {
                None | Some([]) => Parent::Missing,
                Some([one]) => one.clone(),
                Some(several) => Parent::Several(several.len()),
            });
        }
        Ok(match self.client_by_external_id(external).await? {
            Ok(found) => found
                .as_ref()
                .and_then(parent_of)
                .unwrap_or(Parent::Missing),
            Err(Verdict::Refused { status, message }) => {
                return Err(Fatal::config(format!(
                "looking a client up by externalId (GET /v1/clients) was refused ({}): {message}",
                status.map_or("no status".into(), |s| s.to_string())
            )))
            }
            Err(_) => Parent::Missing,
        })
    }

    /// Every client's externalId, read page by page through v2 (an account without v1).
    async fn read_all_clients(&self) -> Result<HashMap<String, Vec<Parent>>, Fatal> {
        let mut directory: HashMap<String, Vec<Parent>> = HashMap::new();
        self.read_all(ObjectKind::Client, |client| {
            let external = client.get("externalId").and_then(Value::as_str);
            if let (Some(external), Some(found)) = (external, parent_of(client)) {
                directory
                    .entry(external.to_owned())
                    .or_default()
                    .push(found);
            }
        })
        .await?;
        Ok(directory)
    }

    /// Every contact's uuid by email (lower case), read page by page through v2.
    async fn read_all_contacts(&self) -> Result<Mutex<HashMap<String, Vec<String>>>, Fatal> {
        let mut directory: HashMap<String, Vec<String>> = HashMap::new();
        self.read_all(ObjectKind::Contact, |contact| {
            add_contact(&mut directory, contact);
        })
        .await?;
        Ok(Mutex::new(directory))
    }

    /// Keeps a created contact in the directory, when this sync reads one.
    fn learn_contact(&self, answer: &[u8]) {
        let Some(directory) = self.contact_directory.get() else {
            return;
        };
        let mut directory = directory.lock().unwrap();
        match serde_json::from_slice(answer) {
            Ok(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_object)
                .for_each(|c| add_contact(&mut directory, c)),
            Ok(Value::Object(one)) => add_contact(&mut directory, &one),
            _ => {}
        }
    }

    /// The uuids of the contacts with this email, any case.
    async fn contacts_by_email(&self, email: &str) -> Result<Vec<String>, Fatal> {
        let directory = self
            .contact_directory
            .get_or_try_init(|| self.read_all_contacts())
            .await?;
        let directory = directory.lock().unwrap();
        Ok(directory
            .get(&email.to_lowercase())
            .cloned()
            .unwrap_or_default())
    }

    /// Every record of `object`, handed to `each` page by page (the listing the reconcile
    /// toolkit reads too).
    async fn read_all(
        &self,
        object: ObjectKind,
        mut each: impl FnMut(&Map<String, Value>),
    ) -> Result<(), Fatal> {
        let mut next = None;
        loop {
            let page = self.list_page(object, next).await?;
            page.records.iter().for_each(|r| each(&r.fields));
            match page.next {
                Some(more) => next = Some(more),
                None => return Ok(()),
            }
        }
    }

    async fn verdict(&self, request: ApiRequest, collection: bool) -> Result<Verdict, Fatal> {
        Ok(match self.call(request, collection).await? {
            Answer::Body(_) => Verdict::Written,
            Answer::Refused(verdict) => verdict,
        })
    }

    /// A bulk insert is all or nothing and a refusal need not say which record was bad, so a
    /// refused batch is split in halves until each refusal is pinned to one record; every
    /// other record still lands.
    ///
    /// Each record's attempts are counted: those of the requests that carried it and of its
    /// own look-ups after an unknown outcome, one count of retries for all of them.
    async fn bulk(&self, object: ObjectKind, bodies: &[&[u8]]) -> Result<Vec<Verdict>, Fatal> {
        let mut verdicts: Vec<Option<Verdict>> = vec![None; bodies.len()];
        let mut spent = vec![0u32; bodies.len()];
        // Records to send together.
        let mut pending: Vec<Vec<usize>> = vec![(0..bodies.len()).collect()];
        while let Some(chunk) = pending.pop() {
            let request = ApiRequest::v2(
                Method::POST,
                format!("/{object}/bulk"),
                Some(json_array(chunk.iter().map(|&i| bodies[i]))),
            )
            .creating();
            let before = chunk.iter().map(|&i| spent[i]).max().unwrap_or(0);
            let (attempt, after) = sharing_retries_from(before, self.attempt(request, true)).await;
            chunk.iter().for_each(|&i| spent[i] = after);
            match attempt? {
                Attempt::Known(Answer::Body(created)) => {
                    self.learn(object, &created);
                    chunk
                        .iter()
                        .for_each(|&i| verdicts[i] = Some(Verdict::Written));
                }
                Attempt::Known(Answer::Refused(_)) if chunk.len() > 1 => {
                    let (left, right) = chunk.split_at(chunk.len() / 2);
                    pending.push(right.to_vec());
                    pending.push(left.to_vec());
                }
                Attempt::Known(Answer::Refused(verdict)) => verdicts[chunk[0]] = Some(verdict),
                Attempt::Unknown => {
                    let checks = chunk
                        .iter()
                        .map(|&i| sharing_retries_from(spent[i], self.existing(object, bodies[i])));
                    let mut again = Vec::new();
                    for (&i, (existence, after)) in chunk.iter().zip(join_all(checks).await) {
                        spent[i] = after;
                        match existence? {
                            Existence::Found(_) => verdicts[i] = Some(Verdict::Written),
                            Existence::Absent | Existence::Unknowable => again.push(i),
                        }
                    }
                    if !again.is_empty() {
                        pending.push(again);
                    }
                }
            }
        }
        Ok(verdicts
            .into_iter()
            .map(|v| v.expect("every record got a verdict"))
            .collect())
    }

    /// After a create of unknown outcome: does the record exist? Looked up by its natural key
    /// (a client's externalId, a contact's email) through v1.
    async fn existing(&self, object: ObjectKind, body: &[u8]) -> Result<Existence, Fatal> {
        if !self.v1_reads().await? {
            return Ok(Existence::Unknowable);
        }
        let fields = object_of(body);
        let found = match object {
            ObjectKind::Client => match fields.get("externalId").and_then(Value::as_str) {
                Some(external) => self.client_by_external_id(external).await?,
                None => return Ok(Existence::Unknowable),
            },
            ObjectKind::Contact => match fields.get("email").and_then(Value::as_str) {
                Some(email) => self.contact_by_email(email).await?,
                None => return Ok(Existence::Unknowable),
            },
            ObjectKind::Contract => return Ok(Existence::Unknowable),
        };
        Ok(match found {
            Ok(Some(record)) => Existence::Found(record),
            Ok(None) => Existence::Absent,
            Err(_) => Existence::Unknowable,
        })
    }

    /// `GET /v1/clients?externalId=`: the client, or `None` (a 404).
    async fn client_by_external_id(&self, external: &str) -> Step<Option<Map<String, Value>>> {
        let request = ApiRequest::v1(
            Method::GET,
            format!("/clients?externalId={}", escape(external)),
            None,
        );
        Ok(match self.call(request, false).await? {
            Answer::Body(body) => Ok(Some(object_of(&body)).filter(|c| !c.is_empty())),
            Answer::Refused(Verdict::Refused {
                status: Some(404), ..
            }) => Ok(None),
            Answer::Refused(verdict) => Err(verdict),
        })
    }

    /// `GET /v1/contacts/search?term=`: the contact with exactly this email (any case).
    async fn contact_by_email(&self, email: &str) -> Step<Option<Map<String, Value>>> {
        let request = ApiRequest::v1(
            Method::GET,
            format!("/contacts/search?term={}", escape(email)),
            None,
        );
        Ok(match self.call(request, false).await? {
            Answer::Body(body) => Ok(serde_json::from_slice::<Vec<Value>>(&body)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|c| match c {
                    Value::Object(c) => Some(c),
                    _ => None,
                })
                .find(|c| {
                    c.get("email")
                        .and_then(Value::as_str)
                        .is_some_and(|e| e.eq_ignore_ascii_case(email))
                })),
            Answer::Refused(verdict) => Err(verdict),
        })
    }

    /// Creates one record through `create`; the body is v2-shaped.
    async fn create(
        &self,
        object: ObjectKind,
        create: Create,
        body: &[u8],
    ) -> Result<Verdict, Fatal> {
        match create {
            Create::Bulk => Ok(self.bulk(object, &[body]).await?.remove(0)),
            Create::Single => {
                let make = || {
                    ApiRequest::v2(
                        Method::POST,
                        format!("/{object}"),
                        Some(Bytes::copy_from_slice(body)),
                    )
                };
                Ok(match self.create_known(object, make, body).await? {
                    Ok(_) => Verdict::Written,
                    Err(verdict) => verdict,
                })
            }
            Create::V1 => self.create_v1(object, object_of(body)).await,
        }
    }

    /// Sends a create until its outcome is known. After a failure that may have applied, a
    /// record found by its natural key is done (`Found`) and one not found is sent again; one
    /// that cannot be looked up goes through the upsert route when it has a key and the
    /// account one, else it is sent again as it is.
    async fn create_known(
        &self,
        object: ObjectKind,
        make: impl Fn() -> ApiRequest,
        v2_body: &[u8],
    ) -> Step<Created> {
        sharing_retries(self.create_known_chain(object, make, v2_body)).await
    }

    async fn create_known_chain(
        &self,
        object: ObjectKind,
        make: impl Fn() -> ApiRequest,
        v2_body: &[u8],
    ) -> Step<Created> {
        loop {
            match self.attempt(make().creating(), true).await? {
                Attempt::Known(Answer::Body(created)) => {
                    self.learn(object, &created);
                    return Ok(Ok(Created::Answer(created)));
                }
                Attempt::Known(Answer::Refused(verdict)) => return Ok(Err(verdict)),
                Attempt::Unknown => {}
            }
            match self.existing(object, v2_body).await? {
                Existence::Found(found) => return Ok(Ok(Created::Found(found))),
                Existence::Absent => {}
                Existence::Unknowable => {
                    let keyed = object_of(v2_body).contains_key("externalId");
                    let upsert = self.routes(object)?.upsert == Some(Upsert::Native);
                    if keyed && upsert && object == ObjectKind::Contract {
                        return Ok(match self.upsert_native(object, v2_body).await? {
                            Verdict::Written => Ok(Created::Found(Map::new())),
                            verdict => Err(verdict),
                        });
                    }
                }
            }
        }
    }

    /// `POST /v2/{object}/upsert`. A refusal that names only a client's missing `status` or
    /// `active` says the record is new (an existing one has them): it is sent once more with
    /// the insert's defaults, which an update never gets.
    async fn upsert_native(&self, object: ObjectKind, body: &[u8]) -> Result<Verdict, Fatal> {
        let request = |body: &[u8]| {
            ApiRequest::v2(
                Method::POST,
                format!("/{object}/upsert"),
                Some(Bytes::copy_from_slice(body)),
            )
        };
        let verdict = self.learning_verdict(object, request(body)).await?;
        if let Verdict::Refused {
            status: Some(400),
            message,
        } = &verdict
        {
            if names_only_create_defaults(message) {
                if let Some(defaulted) = with_create_defaults(object, body) {
                    return self.learning_verdict(object, request(&defaulted)).await;
                }
            }
        }
        Ok(verdict)
    }

    /// The upsert route, through the reconcile toolkit: blind while that is cheaper; once
    /// the listing is held, nothing for a row it already holds, and only the differing
    /// fields (with the key) for one that differs.
    async fn upsert_reconciled(&self, object: ObjectKind, body: &[u8]) -> Result<Verdict, Fatal> {
        let row = object_of(body);
        let Some(key) = upsert_key(object, &row) else {
            return self.upsert_blind(object, body).await;
        };
        match self
            .reconciler
            .find_or_blind(self, object, Query::Key(&key))
            .await?
        {
            Found::Blind => self.upsert_blind(object, body).await,
            Found::Records(found) => {
                let ambiguous = |ids: &[String]| {
                    format!("{} {object}s match {key}: {}", ids.len(), ids.join(", "))
                };
                self.reconciler
                    .apply(self, object, Some(&key), row, &found, ambiguous)
                    .await
            }
        }
    }

    /// The upsert route with the row as it is; in a dry run, nothing.
    async fn upsert_blind(&self, object: ObjectKind, body: &[u8]) -> Result<Verdict, Fatal> {
        if self.dry_run {
            return Ok(Verdict::Written);
        }
        self.upsert_native(object, body).await
    }

    async fn create_v1(
        &self,
        object: ObjectKind,
        mut fields: Map<String, Value>,
    ) -> Result<Verdict, Fatal> {
        match object {
            ObjectKind::Client => {
                let v2_body = serde_json::to_vec(&fields).expect("JSON values serialize");
                let (body, custom) = v1::client_body(fields);
                let make = || ApiRequest::v1(Method::POST, "/clients".into(), json_body(&body));
                let created = match self.create_known(object, make, &v2_body).await? {
                    Ok(Created::Answer(created)) => object_of(&created),
                    Ok(Created::Found(found)) => found,
                    Err(verdict) => return Ok(verdict),
                };
                let id = created.get("id").and_then(Value::as_u64);
                match (custom, id) {
                    (Some(custom), Some(id)) => self.custom_values_v1(id, &custom, "created").await,
                    _ => Ok(Verdict::Written),
                }
            }
            ObjectKind::Contact => {
                if fields.contains_key("custom") {
                    return Ok(contact_custom_refused());
                }
                let parent = match fields.remove("clientId") {
                    Some(Value::String(uuid)) => uuid,
                    _ => return Ok(refused(None, "clientId is required")),
                };
                let client_id = match self.client_id(&parent).await? {
                    Ok(id) => id,
                    Err(verdict) => return Ok(verdict),
                };
                let v2_body = serde_json::to_vec(&fields).expect("JSON values serialize");
                let make = || {
                    ApiRequest::v1(
                        Method::POST,
                        format!("/clients/{client_id}/contacts"),
                        json_body(&fields),
                    )
                };
                Ok(match self.create_known(object, make, &v2_body).await? {
                    Ok(_) => Verdict::Written,
                    Err(verdict) => verdict,
                })
            }
            ObjectKind::Contract => Err(Fatal::config(
                "contracts cannot be written through the v1 API",
            )),
        }
    }

    /// Writes a client's custom values through v1's own route, after the client itself.
    async fn custom_values_v1(
        &self,
        id: u64,
        custom: &Map<String, Value>,
        done: &str,
    ) -> Result<Verdict, Fatal> {
        let request = ApiRequest::v1(
            Method::PATCH,
            format!("/customfield/value/client/{id}"),
            json_body(custom),
        );
        Ok(match self.call(request, false).await? {
            Answer::Body(_) => Verdict::Written,
            Answer::Refused(Verdict::Refused { status, message }) => Verdict::Refused {
                status,
                message: format!("the client was {done} (v1 id {id}), but its custom values were not written: {message}"),
            },
            Answer::Refused(written) => written,
        })
    }

    fn remember_client_id(&self, uuid: &str, id: u64) {
        let mut ids = self.client_ids.lock().unwrap();
        if ids.len() >= MAX_PARENTS {
            ids.clear();
        }
        ids.insert(uuid.to_owned(), id);
    }

    /// The v1 integer id of the client with this uuid, read once through v2 and then cached.
    async fn client_id(&self, uuid: &str) -> Step<u64> {
        if let Some(&id) = self.client_ids.lock().unwrap().get(uuid) {
            return Ok(Ok(id));
        }
        let request = ApiRequest::v2(Method::GET, format!("/client/{}", escape(uuid)), None);
        match self.call(request, false).await? {
            Answer::Body(body) => match object_of(&body).get("id").and_then(Value::as_u64) {
                Some(id) => {
                    self.remember_client_id(uuid, id);
                    Ok(Ok(id))
                }
                None => Err(Fatal::config(format!(
                    "GET /v2/client/{uuid} answered without an integer `id`, which the v1 API needs; set api_surface to a v2 surface"
                ))),
            },
            Answer::Refused(Verdict::Refused { status: Some(404), .. }) => Ok(Err(refused(
                Some(404),
                format!("clientId {uuid:?} names no client"),
            ))),
            Answer::Refused(verdict) => Ok(Err(verdict)),
        }
    }

    async fn update(
        &self,
        object: ObjectKind,
        update: Update,
        uuid: &str,
        body: &[u8],
    ) -> Result<Verdict, Fatal> {
        match update {
            Update::V2Put => {
                let request = ApiRequest::v2(
                    Method::PUT,
                    format!("/{object}/{}", escape(uuid)),
                    Some(Bytes::copy_from_slice(body)),
                );
                self.verdict(request, false).await
            }
            Update::V1Replace => self.update_v1_by_uuid(object, uuid, object_of(body)).await,
        }
    }

    async fn update_v1_by_uuid(
        &self,
        object: ObjectKind,
        uuid: &str,
        fields: Map<String, Value>,
    ) -> Result<Verdict, Fatal> {
        match object {
            ObjectKind::Client => {
                let id = match self.client_id(uuid).await? {
                    Ok(id) => id,
                    Err(Verdict::Refused {
                        status: Some(404), ..
                    }) => return Ok(refused(Some(404), format!("no client with uuid {uuid:?}"))),
                    Err(verdict) => return Ok(verdict),
                };
                let request = ApiRequest::v1(Method::GET, format!("/clients/{id}"), None);
                let whole = match self.call(request, false).await? {
                    Answer::Body(body) => object_of(&body),
                    Answer::Refused(verdict) => return Ok(verdict),
                };
                self.replace_client_v1(id, &whole, fields).await
            }
            ObjectKind::Contact => {
                let request =
                    ApiRequest::v2(Method::GET, format!("/contact/{}", escape(uuid)), None);
                let whole = match self.call(request, false).await? {
                    Answer::Body(body) => object_of(&body),
                    Answer::Refused(verdict) => return Ok(verdict),
                };
                let parent = whole
                    .get("clientId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                if fields
                    .get("clientId")
                    .is_some_and(|c| c.as_str() != Some(parent.as_str()))
                {
                    return Ok(refused(
                        None,
                        "a contact cannot move to another client through the v1 API",
                    ));
                }
                let client_id = match self.client_id(&parent).await? {
                    Ok(id) => id,
                    Err(verdict) => return Ok(verdict),
                };
                let Some(id) = whole.get("id").and_then(Value::as_u64) else {
                    return Err(Fatal::config(format!(
                        "GET /v2/contact/{uuid} answered without an integer `id`, which the v1 API needs; set api_surface to a v2 surface"
                    )));
                };
                self.replace_contact_v1(client_id, id, &whole, fields).await
            }
            ObjectKind::Contract => Err(Fatal::config(
                "contracts cannot be written through the v1 API",
            )),
        }
    }

    /// `PUT /v1/clients/{id}` replaces: `whole` (as read) with `fields` over it goes out whole.
    async fn replace_client_v1(
        &self,
        id: u64,
        whole: &Map<String, Value>,
        fields: Map<String, Value>,
    ) -> Result<Verdict, Fatal> {
        let (changes, custom) = v1::client_body(fields);
        let body = v1::merged(whole, &changes);
        let request = ApiRequest::v1(Method::PUT, format!("/clients/{id}"), json_body(&body));
        match self.verdict(request, false).await? {
            Verdict::Written => match custom {
                Some(custom) => self.custom_values_v1(id, &custom, "updated").await,
                None => Ok(Verdict::Written),
            },
            verdict => Ok(verdict),
        }
    }

    async fn replace_contact_v1(
        &self,
        client_id: u64,
        id: u64,
        whole: &Map<String, Value>,
        mut fields: Map<String, Value>,
    ) -> Result<Verdict, Fatal> {
        if fields.contains_key("custom") {
            return Ok(contact_custom_refused());
        }
        fields.remove("clientId");
        let mut body = v1::merged(whole, &fields);
        body.remove("clientId");
        let request = ApiRequest::v1(
            Method::PUT,
            format!("/clients/{client_id}/contacts/{id}/details"),
            json_body(&body),
        );
        self.verdict(request, false).await
    }

    /// Upsert without an upsert route: look the record up by its natural key through v1,
    /// then update what was found or create it.
    async fn upsert_by_lookup(
        &self,
        object: ObjectKind,
        routes: ObjectRoutes,
        body: &[u8],
    ) -> Result<Verdict, Fatal> {
        let (Some(create), Some(update)) = (routes.create, routes.update) else {
            return Err(Fatal::config(format!(
                "no route to create and update a {object}"
            )));
        };
        let fields = object_of(body);
        let found = match object {
            ObjectKind::Client => {
                let Some(external) = fields.get("externalId").and_then(Value::as_str) else {
                    return Ok(refused(None, "without an externalId a client can only be upserted (on its name) through POST /v2/client/upsert, which this account lacks; give the record an externalId"));
                };
                match self.client_by_external_id(external).await? {
                    Ok(found) => found,
                    Err(verdict) => return Ok(verdict),
                }
            }
            ObjectKind::Contact => {
                let Some(email) = fields.get("email").and_then(Value::as_str) else {
                    return Ok(refused(None, "without an email a contact can only be created: use insert, or give the record an email"));
                };
                match self.contact_by_email(email).await? {
                    Ok(found) => found,
                    Err(verdict) => return Ok(verdict),
                }
            }
            ObjectKind::Contract => {
                return Err(Fatal::config("contracts have no v1 API to look them up"))
            }
        };
        let Some(found) = found else {
            return self.create_found_missing(object, create, body).await;
        };
        let uuid = found
            .get("uuid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let updated = planned_update(uuid, &fields);
        if self.dry_run {
            return Ok(updated);
        }
        let verdict = match update {
            Update::V2Put => {
                let Some(uuid) = found.get("uuid").and_then(Value::as_str) else {
                    return Err(Fatal::config(format!(
                        "a v1 {object} lookup answered without a uuid"
                    )));
                };
                self.update(object, Update::V2Put, uuid, body).await
            }
            Update::V1Replace => {
                let id = found.get("id").and_then(Value::as_u64);
                match (object, id) {
                    (ObjectKind::Client, Some(id)) => {
                        self.replace_client_v1(id, &found, fields).await
                    }
                    (ObjectKind::Contact, Some(id)) => {
                        let Some(client_id) = found.get("clientId").and_then(Value::as_u64) else {
                            return Err(Fatal::config(
                                "a v1 contact lookup answered without its integer clientId",
                            ));
                        };
                        self.replace_contact_v1(client_id, id, &found, fields).await
                    }
                    _ => Err(Fatal::config(format!(
                        "a v1 {object} lookup answered without an integer id"
                    ))),
                }
            }
        }?;
        Ok(match verdict {
            Verdict::Written => updated,
            other => other,
        })
    }

    /// An upsert that found no record: created with the insert's defaults (in a dry run,
    /// planned).
    async fn create_found_missing(
        &self,
        object: ObjectKind,
        create: Create,
        body: &[u8],
    ) -> Result<Verdict, Fatal> {
        if self.dry_run {
            return Ok(Verdict::Created { id: None });
        }
        let defaulted = with_create_defaults(object, body);
        Ok(
            match self
                .create(object, create, defaulted.as_deref().unwrap_or(body))
                .await?
            {
                Verdict::Written => Verdict::Created { id: None },
                other => other,
            },
        )
    }

    /// Upsert on an account with v2 single writes and neither v1 nor an upsert route: the
    /// record is found by its natural key in a v2 read of its object (once per sync, records
    /// created since included), then updated by uuid or created.
    async fn upsert_by_reading(
        &self,
        object: ObjectKind,
        routes: ObjectRoutes,
        body: &[u8],
    ) -> Result<Verdict, Fatal> {
        let Some(create) = routes.create else {
            return Err(Fatal::config(format!("no route to create a {object}")));
        };
        let fields = object_of(body);
        let (key, found) = match object {
            ObjectKind::Client => {
                let Some(external) = fields.get("externalId").and_then(Value::as_str) else {
                    return Ok(refused(None, "without an externalId a client can only be upserted (on its name) through POST /v2/client/upsert, which this account lacks; give the record an externalId"));
                };
                let found = match self.parent(external).await? {
                    Parent::Found { uuid, .. } => Ok(Some(uuid)),
                    Parent::Missing => Ok(None),
                    Parent::Several(n) => Err(n),
                };
                (format!("externalId {external:?}"), found)
            }
            ObjectKind::Contact => {
                let Some(email) = fields.get("email").and_then(Value::as_str) else {
                    return Ok(refused(None, "without an email a contact can only be created: use insert, or give the record an email"));
                };
                let found = match self.contacts_by_email(email).await?.as_slice() {
                    [] => Ok(None),
                    [uuid] => Ok(Some(uuid.clone())),
                    several => Err(several.len()),
                };
                (format!("email {email:?}"), found)
            }
            ObjectKind::Contract => {
                return Err(Fatal::config(
                    "contracts are upserted through POST /v2/contract/upsert only",
                ))
            }
        };
        match found {
            Ok(None) => self.create_found_missing(object, create, body).await,
            Ok(Some(uuid)) => {
                let updated = planned_update(&uuid, &fields);
                if self.dry_run {
                    return Ok(updated);
                }
                Ok(match self.update(object, Update::V2Put, &uuid, body).await? {
                    Verdict::Written => updated,
                    other => other,
                })
            }
            Err(several) => Ok(Verdict::Refused {
                status: None,
                message: format!(
                    "{key} matches {several} {object}s in ClientSuccess, so which one to update is unknown"
                ),
            }),
        }
    }

    async fn write_one(
        &self,
        object: ObjectKind,
        mode: WriteMode,
        routes: ObjectRoutes,
        record: &Prepared,
        body: &[u8],
    ) -> Result<Verdict, Fatal> {
        let unsupported =
            || Fatal::config(format!("this account offers no route to {mode} a {object}"));
        match mode {
            WriteMode::Insert => {
                self.create(object, routes.create.ok_or_else(unsupported)?, body)
                    .await
            }
            WriteMode::Update => {
                routes.update.ok_or_else(unsupported)?;
                let uuid = record.id.as_deref().unwrap_or_default();
                // Compared with the listing once reading it costs less than sending every row.
                self.reconciler
                    .update_by_id(self, object, uuid, object_of(body))
                    .await
            }
            WriteMode::Upsert => match routes.upsert.ok_or_else(unsupported)? {
                Upsert::Native => self.upsert_reconciled(object, body).await,
                Upsert::Lookup => self.upsert_by_lookup(object, routes, body).await,
                Upsert::ReadAll => self.upsert_by_reading(object, routes, body).await,
            },
        }
    }
}

/// An update by lookup: the record `uuid` sent the row's fields, which are not compared with
/// it.
fn planned_update(uuid: &str, fields: &Map<String, Value>) -> Verdict {
    Verdict::Updated {
        id: uuid.to_owned(),
        fields: field_names(fields),
    }
}

fn contact_custom_refused() -> Verdict {
    refused(
        None,
        "the v1 API writes no custom values of a contact; leave `custom` out, or use an account with the v2 write API",
    )
}

/// A bulk body: the records' JSON bodies as one array, copied once.
fn json_array<'a>(bodies: impl IntoIterator<Item = &'a [u8]> + Clone) -> Bytes {
    let size = bodies
        .clone()
        .into_iter()
        .map(|b| b.len() + 1)
        .sum::<usize>()
        + 2;
    let mut array = Vec::with_capacity(size);
    array.push(b'[');
    for (i, body) in bodies.into_iter().enumerate() {
        if i > 0 {
            array.push(b',');
        }
        array.extend_from_slice(body);
    }
    array.push(b']');
    Bytes::from(array)
}

/// Where the upsert route exists: a create and an update through it (the update with only
/// what differs, and the keys); an update by uuid through the account's update route.
impl Store<ObjectKind> for ClientSuccessWriter {
    fn rules(&self, object: ObjectKind) -> &dyn Rules {
        &RULES[engine::catalog::Object::index(object)]
    }

    async fn create(
        &self,
        object: ObjectKind,
        _: WriteMode,
        row: Map<String, Value>,
    ) -> Result<Result<Stored, Verdict>, Fatal> {
        let body = serde_json::to_vec(&row).expect("JSON");
        Ok(match self.upsert_native(object, &body).await? {
            Verdict::Written => Ok(Stored {
                id: String::new(),
                key: upsert_key(object, &row),
                fields: row,
            }),
            verdict => Err(verdict),
        })
    }

    async fn update(
        &self,
        object: ObjectKind,
        mode: WriteMode,
        id: &str,
        changed: &Map<String, Value>,
    ) -> Result<Result<(), Verdict>, Fatal> {
        let body = serde_json::to_vec(changed).expect("JSON");
        let verdict = match (mode, self.routes(object)?.update) {
            (WriteMode::Update, Some(route)) => self.update(object, route, id, &body).await?,
            _ => self.upsert_native(object, &body).await?,
        };
        Ok(match verdict {
            Verdict::Written => Ok(()),
            verdict => Err(verdict),
        })
    }
}

/// ClientSuccess v2 has no read by key: its write is itself an upsert, the per-row way; the
/// listing is `GET /v2/{object}/search`, 1,000 a page, with `totalPages`.
impl Finder<ObjectKind> for ClientSuccessWriter {
    fn can_look_up(&self, _: ObjectKind) -> bool {
        false
    }

    async fn look_up(&self, _: ObjectKind, _: &str) -> Result<Vec<Stored>, Fatal> {
        Ok(Vec::new())
    }

    async fn list_page(&self, object: ObjectKind, next: Option<String>) -> Result<Page, Fatal> {
        let page: u64 = next.and_then(|n| n.parse().ok()).unwrap_or(0);
        let request = ApiRequest::v2(
            Method::GET,
            format!("/{object}/search?page={page}&size=1000"),
            None,
        );
        let mut body = match self.call(request, false).await? {
            Answer::Body(body) => object_of(&body),
            Answer::Refused(verdict) => {
                return Err(Fatal::config(format!(
                    "listing {object}s (GET /v2/{object}/search) failed: {verdict:?}"
                )))
            }
        };
        let pages = body.get("totalPages").and_then(Value::as_u64);
        let data = match body.remove("data") {
            Some(Value::Array(data)) => data,
            _ => Vec::new(),
        };
        let records: Vec<Stored> = data
            .into_iter()
            .filter_map(|record| {
                let Value::Object(fields) = record else {
                    return None;
                };
                Some(Stored {
                    id: fields.get("uuid")?.as_str()?.to_owned(),
                    key: upsert_key(object, &fields),
                    fields,
                })
            })
            .collect();
        let more = !records.is_empty() && pages.is_some_and(|p| page + 1 < p);
        Ok(Page {
            records,
            next: more.then(|| (page + 1).to_string()),
            pages,
        })
    }
}

impl Writer for ClientSuccessWriter {
    type Object = ObjectKind;

    fn attach(&self, backlog: Backlog) {
        self.reconciler.attach(backlog);
    }

    fn stop(&self) {
        self.client.stop();
    }

    fn concurrency_limit(&self) -> Option<usize> {
        Some(self.client.concurrency_limit())
    }

    fn batch_limit(&self, object: ObjectKind, mode: WriteMode) -> usize {
        let bulk = self
            .surfaces
            .routes(object)
            .is_some_and(|r| r.create == Some(Create::Bulk));
        if mode == WriteMode::Insert && bulk {
            self.batch_size
        } else {
            1
        }
    }

    async fn write(
        &self,
        object: ObjectKind,
        mode: WriteMode,
        records: &[Prepared],
    ) -> Result<Vec<Verdict>, Fatal> {
        let routes = self.routes(object)?;
        let mut verdicts: Vec<Option<Verdict>> = vec![None; records.len()];
        let mut outgoing: Vec<(usize, Cow<[u8]>)> = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            match self.with_parent(object, record).await? {
                Ok(body) => outgoing.push((i, body)),
                Err(verdict) => verdicts[i] = Some(verdict),
            }
        }
        if self.dry_run && mode == WriteMode::Insert {
            for (i, _) in &outgoing {
                verdicts[*i] = Some(Verdict::Created { id: None });
            }
        } else if mode == WriteMode::Insert && routes.create == Some(Create::Bulk) {
            let bodies: Vec<&[u8]> = outgoing.iter().map(|(_, b)| b.as_ref()).collect();
            let written = self.bulk(object, &bodies).await?;
            for ((i, _), verdict) in outgoing.iter().zip(written) {
                verdicts[*i] = Some(verdict);
            }
        } else {
            for (i, body) in &outgoing {
                let verdict = self
                    .write_one(object, mode, routes, &records[*i], body)
                    .await?;
                verdicts[*i] = Some(verdict);
            }
        }
        Ok(verdicts
            .into_iter()
            .map(|v| v.expect("every record got a verdict"))
            .collect())
    }
}
