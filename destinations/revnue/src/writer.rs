//! Rows into Revnue writes. Revnue has no bulk, no upsert and no external id: a customer's
//! name is its key. One listing of the company's records per object and sync builds the
//! name → id map and what each record holds now; an upsert then PATCHes what differs (nothing
//! differs: no request) or POSTs; a POST refused "already exists" re-lists once. Where PATCH
//! answers 405, the rest of the sync reads, merges and PUTs, so no field is ever nulled by
//! omission. Countries and categories are resolved before any request for the record.

use crate::api::{duration_of, record_of, ApiClient};
use crate::lookups::{iso_country, Categories, Countries, Template, Templates};
use crate::objects::{name_key, RevnueObject, COUNTRY_FIELDS};
use bytes::Bytes;
use engine::catalog::Object;
use engine::catalog::WriteMode;
use engine::error::Fatal;
use engine::http::sharing_retries;
use engine::http::Reply;
use engine::write::prepare::Prepared;
use engine::write::{Verdict, Writer};
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::OnceCell;

/// What this sync knows of an object's records in the company.
#[derive(Default)]
struct Known {
    /// Normalized name → id.
    by_name: HashMap<String, u64>,
    /// id → its fields as a request body would give them, as compact JSON (a third of a
    /// parsed map's memory; parsed again only for the record being written); `None` when the
    /// answer could not be turned back (a country or template key this connector does not know).
    records: HashMap<u64, Option<Box<str>>>,
    /// Records and pages of the last listing.
    listed: (u64, u64),
}

#[derive(Default)]
struct Listing {
    /// Whether the first listing was read (held while it is read, so it is read once).
    loaded: tokio::sync::Mutex<bool>,
    known: Mutex<Known>,
}

pub struct RevnueWriter {
    client: ApiClient,
    templates: Templates,
    countries: OnceCell<Countries>,
    categories: OnceCell<Categories>,
    listings: [Listing; 2],
    /// PATCH answered 405: read–merge–PUT for the rest of the sync.
    put_instead_of_patch: AtomicBool,
    /// Whether a PATCH has succeeded this sync; until one has, PATCHes go one at a time, so a
    /// 405 is learnt from one request, not from every update already waiting for its turn.
    patch_works: AtomicBool,
    patch_probe: tokio::sync::Mutex<()>,
    /// Requests spent on lookups and list pages (the rest are writes).
    lookups: AtomicU64,
    /// Updates not sent because nothing differed.
    unchanged: AtomicU64,
}

/// Whether two values mean the same to Revnue: an empty string is null; numbers compare by
/// value (1500 is 1500.0); objects member by member, a missing member being null.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::String(s)) | (Value::String(s), Value::Null) => s.is_empty(),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Object(x), Value::Object(y)) => x.keys().chain(y.keys()).all(|k| {
            same(
                x.get(k).unwrap_or(&Value::Null),
                y.get(k).unwrap_or(&Value::Null),
            )
        }),
        _ => a == b,
    }
}

/// The template fields of a body, by field id.
fn template_values(body: &Map<String, Value>) -> Vec<(u64, Value)> {
    body.get("template")
        .and_then(|t| t.get("fields"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f.get("id")?.as_u64()?, f.get("value")?.clone())))
        .collect()
}

fn template_body(id: Value, fields: Vec<(u64, Value)>) -> Value {
    let fields: Vec<Value> = fields
        .into_iter()
        .map(|(id, value)| json!({"id": id, "value": value}))
        .collect();
    json!({"id": id, "fields": fields})
}

/// The fields of `desired` that differ from `current`; of a template, the values that differ.
pub fn changes(desired: &Map<String, Value>, current: &Map<String, Value>) -> Map<String, Value> {
    let mut changed = Map::new();
    for (field, value) in desired {
        if field == "template" {
            let now: HashMap<u64, Value> = template_values(current).into_iter().collect();
            let differing: Vec<(u64, Value)> = template_values(desired)
                .into_iter()
                .filter(|(id, v)| !same(v, now.get(id).unwrap_or(&Value::Null)))
                .collect();
            if !differing.is_empty() {
                let id = value.get("id").cloned().unwrap_or(Value::Null);
                changed.insert(field.clone(), template_body(id, differing));
            }
        } else if !same(value, current.get(field).unwrap_or(&Value::Null)) {
            changed.insert(field.clone(), value.clone());
        }
    }
    changed
}

/// A create refused as "already exists" for a name no record of this company holds.
fn another_company(message: &str, object: RevnueObject, name: &str) -> Verdict {
    Verdict::refused_with(400, format!(
        "{message}: the name {name:?} is used by a {object} of another company of this account; Revnue names are unique account-wide and this connector never writes to another company"
    ))
}

fn compact(record: Map<String, Value>) -> Box<str> {
    Value::Object(record).to_string().into_boxed_str()
}

/// `current` with `changes` laid over it (template values merged by field id).
pub fn overlay(current: &mut Map<String, Value>, changes: &Map<String, Value>) {
    for (field, value) in changes {
        if field == "template" {
            let mut values = if current.get("template").and_then(|t| t.get("id")) == value.get("id")
            {
                template_values(current)
            } else {
                Vec::new()
            };
            for (id, v) in template_values(changes) {
                match values.iter_mut().find(|(i, _)| *i == id) {
                    Some(slot) => slot.1 = v,
                    None => values.push((id, v)),
                }
            }
            let id = value.get("id").cloned().unwrap_or(Value::Null);
            current.insert(field.clone(), template_body(id, values));
        } else {
            current.insert(field.clone(), value.clone());
        }
    }
}

impl RevnueWriter {
    pub fn new(client: ApiClient, templates: Templates) -> Self {
        Self {
            client,
            templates,
            countries: OnceCell::new(),
            categories: OnceCell::new(),
            listings: Default::default(),
            put_instead_of_patch: AtomicBool::new(false),
            patch_works: AtomicBool::new(false),
            patch_probe: tokio::sync::Mutex::new(()),
            lookups: AtomicU64::new(0),
            unchanged: AtomicU64::new(0),
        }
    }

    fn listing(&self, object: RevnueObject) -> &Listing {
        &self.listings[object as usize]
    }

    fn count_lookup(&self, requests: u64) {
        self.lookups.fetch_add(requests, Ordering::Relaxed);
    }

    async fn countries(&self) -> Result<&Countries, Fatal> {
        self.countries
            .get_or_try_init(|| async {
                self.count_lookup(1);
                match Countries::read(&self.client).await {
                    Ok(countries) => Ok(countries),
                    // The list is undocumented: without it, the ISO table alone decides.
                    Err(Fatal::Config(why)) => {
                        self.client.notice(format!(
                            "the country list could not be read ({}); countries are matched by ISO code and name only",
                            why.0
                        ));
                        Ok(Countries::default())
                    }
                    Err(other) => Err(other),
                }
            })
            .await
    }

    async fn categories(&self) -> Result<&Categories, Fatal> {
        self.categories
            .get_or_try_init(|| async {
                self.count_lookup(1);
                Categories::read(&self.client).await
            })
            .await
    }

    /// A country column's value as a numeric code; `Err` says why it is none.
    async fn country_code(&self, field: &str, text: &str) -> Result<Result<u32, String>, Fatal> {
        if let Some(code) = iso_country(text) {
            return Ok(Ok(code));
        }
        Ok(self.countries().await?.find(text).ok_or_else(|| {
            format!(
                "field `{field}`: {text:?} is not a country: give an ISO 3166-1 numeric code (276), alpha-2 (DE), alpha-3 (DEU) or English name (Germany)"
            )
        }))
    }

    /// Countries and categories named as text become the ids Revnue takes.
    async fn resolve(&self, fields: &mut Map<String, Value>) -> Result<Result<(), String>, Fatal> {
        for field in COUNTRY_FIELDS {
            if let Some(Value::String(text)) = fields.get(field) {
                let text = text.clone();
                match self.country_code(field, &text).await? {
                    Ok(code) => {
                        fields.insert(field.into(), json!(code));
                    }
                    Err(why) => return Ok(Err(why)),
                }
            }
        }
        if let Some(Value::String(label)) = fields.get("category") {
            let id = match label.trim().parse::<u64>() {
                Ok(id) => id,
                Err(_) => {
                    let label = label.clone();
                    match self.categories().await?.find(&label) {
                        Ok(id) => id,
                        Err(why) => return Ok(Err(why)),
                    }
                }
            };
            fields.insert("category".into(), json!(id));
        }
        Ok(Ok(()))
    }

    /// An answer's record as the body that would give it: category object → id, country name
    /// → code, template field names → `[{id, value}]`. `Err` names what cannot be turned back.
    fn to_request(
        &self,
        object: RevnueObject,
        record: &Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        let mut body = Map::new();
        for (field, value) in record {
            let value = match (field.as_str(), value) {
                ("id" | "company", _) => continue,
                ("category", Value::Object(category)) => {
                    category.get("id").cloned().unwrap_or(Value::Null)
                }
                ("country" | "business_country", Value::String(name)) => {
                    let code = iso_country(name)
                        .or_else(|| self.countries.get().and_then(|c| c.find(name)));
                    match code {
                        Some(code) => json!(code),
                        None => {
                            return Err(format!(
                                "its {field} {name:?} is not a country this connector knows"
                            ))
                        }
                    }
                }
                ("template", Value::Object(template)) => {
                    let Some(ours) = self.templates.of(object) else {
                        // No template configured here: the stored values are left as they are.
                        continue;
                    };
                    let mut values = Vec::new();
                    if template.get("id").and_then(Value::as_u64) == Some(ours.id) {
                        for (key, v) in template
                            .get("fields")
                            .and_then(Value::as_object)
                            .into_iter()
                            .flatten()
                        {
                            match ours.field_by_key(key) {
                                Some(f) => values.push((f.id, v.clone())),
                                None => {
                                    return Err(format!(
                                        "its template field {key:?} is not a field of template {}",
                                        ours.id
                                    ))
                                }
                            }
                        }
                    }
                    template_body(json!(ours.id), values)
                }
                _ => value.clone(),
            };
            body.insert(field.clone(), value);
        }
        Ok(body)
    }

    /// Reads the company's records of `object` (again), page by page.
    async fn relist(&self, object: RevnueObject) -> Result<(), Fatal> {
        let route = format!("{}/?company={}", object.route(), self.client.company);
        let (items, pages) = self.client.list(&route).await?;
        self.count_lookup(pages);
        let mut known = Known::default();
        for item in &items {
            let Some(id) = item.get("id").and_then(Value::as_u64) else {
                continue;
            };
            if let Some(name) = item.get("name").and_then(Value::as_str) {
                known.by_name.insert(name_key(name), id);
            }
            known
                .records
                .insert(id, self.to_request(object, item).ok().map(compact));
        }
        known.listed = (items.len() as u64, pages);
        *self.listing(object).known.lock().unwrap() = known;
        Ok(())
    }

    async fn ensure_listed(&self, object: RevnueObject) -> Result<(), Fatal> {
        let mut loaded = self.listing(object).loaded.lock().await;
        if !*loaded {
            self.relist(object).await?;
            *loaded = true;
        }
        Ok(())
    }

    fn id_named(&self, object: RevnueObject, name: &str) -> Option<u64> {
        self.listing(object)
            .known
            .lock()
            .unwrap()
            .by_name
            .get(&name_key(name))
            .copied()
    }

    fn current(&self, object: RevnueObject, id: u64) -> Option<Map<String, Value>> {
        self.listing(object)
            .known
            .lock()
            .unwrap()
            .records
            .get(&id)
            .and_then(|json| json.as_deref().and_then(|j| serde_json::from_str(j).ok()))
    }

    /// After a write: what the record holds now, and its name.
    fn learn(&self, object: RevnueObject, id: u64, changes: &Map<String, Value>) {
        let mut known = self.listing(object).known.lock().unwrap();
        if let Some(Value::String(name)) = changes.get("name") {
            known.by_name.retain(|_, v| *v != id);
            known.by_name.insert(name_key(name), id);
        }
        let entry = known.records.entry(id).or_insert_with(|| Some("{}".into()));
        if let Some(json) = entry {
            let mut current: Map<String, Value> = serde_json::from_str(json).unwrap_or_default();
            overlay(&mut current, changes);
            *json = compact(current);
        }
    }

    fn path_of(object: RevnueObject, id: u64) -> String {
        format!("{}/{id}", object.route())
    }

    /// `GET /customer/{id}/?company=C`: the record, or `None` when there is none.
    async fn read(
        &self,
        object: RevnueObject,
        id: u64,
    ) -> Result<Option<Map<String, Value>>, Fatal> {
        let path = format!("{}/{id}/?company={}", object.route(), self.client.company);
        match self.client.send(Method::GET, &path, None, false).await? {
            Reply::Success { body, .. } => record_of(&body).map(Some).ok_or_else(|| {
                Fatal::config(format!(
                    "GET {}/{{id}}/ did not answer with a JSON record: check base_url ({})",
                    object.route(),
                    self.client.base_url()
                ))
            }),
            Reply::Refused { status: 404, .. } => Ok(None),
            Reply::Refused { status, message } => Err(Fatal::config(format!(
                "GET {}/{{id}}/ answered {status} ({message}): check company ({})",
                object.route(),
                self.client.company
            ))),
            Reply::Unknown { reason, .. } => Err(Fatal::config(reason)),
        }
    }

    fn json_body(fields: &Map<String, Value>) -> Bytes {
        Bytes::from(serde_json::to_vec(fields).expect("JSON"))
    }

    /// POSTs a create; "already exists" after an upsert's listing re-lists once and updates.
    async fn create(
        &self,
        object: RevnueObject,
        mode: WriteMode,
        desired: Map<String, Value>,
    ) -> Result<Verdict, Fatal> {
        let mut body = desired.clone();
        body.retain(|_, v| !v.is_null());
        body.insert("company".into(), json!(self.client.company));
        let bytes = Self::json_body(&body);
        let name = desired
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut uncertain = false;
        sharing_retries(async {
            loop {
                match self
                    .client
                    .send(Method::POST, object.route(), Some(bytes.clone()), true)
                    .await?
                {
                    Reply::Success { body: answer, .. } => {
                        let id = record_of(&answer)
                            .and_then(|r| r.get("id").and_then(Value::as_u64))
                            .ok_or_else(|| {
                                Fatal::config(format!(
                                    "POST {} answered without a record id: check base_url ({})",
                                    object.route(),
                                    self.client.base_url()
                                ))
                            })?;
                        body.remove("company");
                        self.learn(object, id, &body);
                        return Ok(Verdict::Written);
                    }
                    Reply::Refused { status: status @ (404 | 405), message } => {
                        return Err(Fatal::config(format!(
                            "POST {} answered {status} ({message}): the route is missing there; check base_url ({})",
                            object.route(),
                            self.client.base_url()
                        )))
                    }
                    Reply::Refused { status: 400, message } if message.contains("already exists") => {
                        if mode == WriteMode::Insert && !uncertain {
                            return self.exists_on_insert(object, &name, &desired, message).await;
                        }
                        // The name appeared since the listing (or our own create landed before a
                        // timeout): read the company's list once more.
                        self.relist(object).await?;
                        return match self.id_named(object, &name) {
                            Some(id) if uncertain && mode == WriteMode::Insert => {
                                self.client.notice(format!("POST {} had an unknown outcome; {object} {id} named {name:?} exists: it landed", object.route()));
                                Ok(Verdict::Written)
                            }
                            Some(id) => self.update_known(object, id, desired).await,
                            None => Ok(another_company(&message, object, &name)),
                        };
                    }
                    Reply::Refused { status, message } => return Ok(Verdict::refused_with(status, message)),
                    Reply::Unknown { reason } => {
                        // Sent again: the unique name makes a twin impossible, "already exists"
                        // then tells us it landed.
                        self.client.notice(format!(
                            "POST {} failed ({reason}) and may have created {name:?}; sending it again, a name that now exists is taken as landed",
                            object.route()
                        ));
                        uncertain = true;
                    }
                }
            }
        }).await
    }

    /// An insert refused as "already exists": written when the company's record of that name
    /// holds the row's values (a resumed sync sending again what its killed run stored), else
    /// refused naming the fields that differ. One listing a sync, and another only for a name
    /// that appeared since.
    async fn exists_on_insert(
        &self,
        object: RevnueObject,
        name: &str,
        desired: &Map<String, Value>,
        message: String,
    ) -> Result<Verdict, Fatal> {
        self.ensure_listed(object).await?;
        let id = match self.id_named(object, name) {
            Some(id) => Some(id),
            None => {
                self.relist(object).await?;
                self.id_named(object, name)
            }
        };
        let Some(id) = id else {
            return Ok(another_company(&message, object, name));
        };
        let differing = match self.current(object, id) {
            Some(current) => changes(desired, &current),
            None => desired.clone(),
        };
        let record = format!("{object} {id} named {name:?}");
        Ok(Verdict::for_existing(
            Verdict::refused_with(400, message),
            &record,
            differing.keys(),
            |text| self.client.notice(text),
        ))
    }

    /// Updates `id` to hold `desired`: only what differs from what the listing holds.
    async fn update_known(
        &self,
        object: RevnueObject,
        id: u64,
        desired: Map<String, Value>,
    ) -> Result<Verdict, Fatal> {
        let changed = match self.current(object, id) {
            Some(current) => changes(&desired, &current),
            None => desired,
        };
        if changed.is_empty() {
            self.unchanged.fetch_add(1, Ordering::Relaxed);
            return Ok(Verdict::Written);
        }
        self.update(object, id, changed).await
    }

    /// PATCH the changes; where PATCH answers 405, read, merge and PUT the whole record.
    async fn update(
        &self,
        object: RevnueObject,
        id: u64,
        changed: Map<String, Value>,
    ) -> Result<Verdict, Fatal> {
        let path = Self::path_of(object, id);
        let unknown = || {
            !self.patch_works.load(Ordering::Relaxed)
                && !self.put_instead_of_patch.load(Ordering::Relaxed)
        };
        let probing = match unknown() {
            true => Some(self.patch_probe.lock().await),
            false => None,
        };
        if !self.put_instead_of_patch.load(Ordering::Relaxed) {
            // With the company, an id of another company of the account is not found there
            // (this connector never writes to another company).
            let mut body = changed.clone();
            body.insert("company".into(), json!(self.client.company));
            match self
                .client
                .send(Method::PATCH, &path, Some(Self::json_body(&body)), false)
                .await?
            {
                Reply::Success { .. } => {
                    self.patch_works.store(true, Ordering::Relaxed);
                    self.learn(object, id, &changed);
                    return Ok(Verdict::Written);
                }
                Reply::Refused { status: 405, .. } => {
                    if !self.put_instead_of_patch.swap(true, Ordering::Relaxed) {
                        self.client.notice(format!(
                            "PATCH {}/{{id}} answered 405: this account has no partial update; for the rest of the sync each update reads the {object}, merges the row into it and PUTs it whole (two requests an update)",
                            object.route()
                        ));
                    }
                }
                Reply::Refused {
                    status: 404,
                    message,
                } => return self.not_found(object, id, message).await,
                Reply::Refused { status, message } => {
                    return Ok(Verdict::refused_with(status, message))
                }
                Reply::Unknown { reason, .. } => return Err(Fatal::config(reason)),
            }
        }
        drop(probing);
        let Some(record) = self.read(object, id).await? else {
            return Ok(Verdict::refused_with(
                404,
                format!(
                    "{object} {id} does not exist in company {}",
                    self.client.company
                ),
            ));
        };
        let mut whole = match self.to_request(object, &record) {
            Ok(whole) => whole,
            Err(why) => {
                return Ok(Verdict::refused(format!(
                    "{object} {id} cannot be updated by read-merge-PUT without losing data: {why}"
                )))
            }
        };
        overlay(&mut whole, &changed);
        whole.insert("company".into(), json!(self.client.company));
        let put_path = format!("{path}?company={}", self.client.company);
        match self
            .client
            .send(Method::PUT, &put_path, Some(Self::json_body(&whole)), false)
            .await?
        {
            Reply::Success { .. } => {
                whole.remove("company");
                self.learn(object, id, &whole);
                Ok(Verdict::Written)
            }
            Reply::Refused { status: 405, message } => Err(Fatal::config(format!(
                "PUT {}/{{id}} answered 405 ({message}) after PATCH did: this account cannot update {object}s through the API",
                object.route()
            ))),
            Reply::Refused { status: 404, message } => self.not_found(object, id, message).await,
            Reply::Refused { status, message } => Ok(Verdict::refused_with(status, message)),
            Reply::Unknown { reason, .. } => Err(Fatal::config(reason)),
        }
    }

    /// A 404 to an update: the record's (it is not there), or the route's (it is).
    async fn not_found(
        &self,
        object: RevnueObject,
        id: u64,
        message: String,
    ) -> Result<Verdict, Fatal> {
        if self.read(object, id).await?.is_some() {
            return Err(Fatal::config(format!(
                "updating {object} {id} answered 404 ({message}) although it exists: the update route is missing there; check base_url ({})",
                self.client.base_url()
            )));
        }
        Ok(Verdict::refused_with(
            404,
            format!(
                "{object} {id} does not exist in company {} ({message})",
                self.client.company
            ),
        ))
    }

    async fn write_one(
        &self,
        object: RevnueObject,
        mode: WriteMode,
        record: &Prepared,
    ) -> Result<Verdict, Fatal> {
        let mut fields: Map<String, Value> =
            serde_json::from_slice(record.body()).expect("a JSON object");
        let id = record
            .id
            .as_deref()
            .and_then(|i| i.parse::<u64>().ok())
            .or_else(|| fields.get("id").and_then(Value::as_u64));
        fields.remove("id");
        if let Err(why) = self.resolve(&mut fields).await? {
            return Ok(Verdict::refused(why));
        }
        if let Some(Value::Object(template)) = fields.get_mut("template") {
            match self.templates.of(object) {
                Some(Template { id, .. }) => {
                    template.insert("id".into(), json!(id));
                }
                None => {
                    return Ok(Verdict::refused(format!(
                        "this {object} has custom field values but company {} has no {object} template to hold them: set {object}_template_id",
                        self.client.company
                    )))
                }
            }
        }
        match (mode, id) {
            (WriteMode::Insert, _) => self.create(object, mode, fields).await,
            (WriteMode::Update | WriteMode::Upsert, Some(id)) => {
                self.ensure_listed(object).await?;
                self.update_known(object, id, fields).await
            }
            (WriteMode::Update, None) => Ok(Verdict::refused("field `id` is required to update")),
            (WriteMode::Upsert, None) => {
                self.ensure_listed(object).await?;
                let name = fields
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match self.id_named(object, name) {
                    Some(id) => self.update_known(object, id, fields).await,
                    None => self.create(object, mode, fields).await,
                }
            }
        }
    }
}

impl Writer for RevnueWriter {
    type Object = RevnueObject;

    fn batch_limit(&self, _: RevnueObject, _: WriteMode) -> usize {
        1
    }

    fn stop(&self) {
        self.client.stop();
    }

    fn concurrency_limit(&self) -> Option<usize> {
        Some(self.client.concurrency_limit())
    }

    fn progress(&self, settled: u64, waiting: u64) -> Option<String> {
        let spent = self.client.requests_sent();
        let lookups = self.lookups.load(Ordering::Relaxed);
        let pace = self.client.pace_per_minute();
        let per_record = if settled > 0 {
            (spent - lookups.min(spent)) as f64 / settled as f64
        } else {
            1.0
        };
        let left = (waiting as f64 * per_record).ceil() as u64;
        let listed: Vec<String> = RevnueObject::ALL
            .iter()
            .filter_map(|&object| {
                let (records, pages) = self.listing(object).known.lock().unwrap().listed;
                (pages > 0).then(|| format!("{records} {object}s listed in {pages} pages"))
            })
            .collect();
        let listed = if listed.is_empty() {
            String::new()
        } else {
            format!("{}; ", listed.join(", "))
        };
        Some(format!(
            "{listed}{spent} requests spent ({lookups} on lookups and list pages, {:.2} a record; {} updates unchanged and not sent), pace {pace:.0} requests/min{}",
            per_record,
            self.unchanged.load(Ordering::Relaxed),
            if waiting > 0 {
                format!("; the {waiting} records waiting take ~{} at this pace", duration_of(left, pace))
            } else {
                String::new()
            }
        ))
    }

    async fn write(
        &self,
        object: RevnueObject,
        mode: WriteMode,
        records: &[Prepared],
    ) -> Result<Vec<Verdict>, Fatal> {
        let mut verdicts = Vec::with_capacity(records.len());
        for record in records {
            verdicts.push(self.write_one(object, mode, record).await?);
        }
        Ok(verdicts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn only_what_differs_is_sent_and_template_values_by_field() {
        let current = map(
            json!({"name": "Acme", "city": null, "website": "", "category": 3,
            "template": {"id": 7, "fields": [{"id": 21, "value": 1500.0}, {"id": 22, "value": "gold"}]}}),
        );
        let desired = map(
            json!({"name": "Acme", "city": "", "website": null, "category": 3,
            "template": {"id": 7, "fields": [{"id": 21, "value": 1500}, {"id": 22, "value": "silver"}]}}),
        );
        assert_eq!(
            Value::Object(changes(&desired, &current)),
            json!({"template": {"id": 7, "fields": [{"id": 22, "value": "silver"}]}})
        );
        let mut merged = current.clone();
        overlay(&mut merged, &changes(&desired, &current));
        assert_eq!(
            merged["template"],
            json!({"id": 7, "fields": [{"id": 21, "value": 1500.0}, {"id": 22, "value": "silver"}]})
        );
        assert!(changes(
            &map(json!({"nda_signed": false})),
            &map(json!({"nda_signed": false}))
        )
        .is_empty());
    }
}
