//! Rows into Revnue writes. Revnue has no bulk, no upsert, no external id and no read by name:
//! a customer's name is its key, so an upsert finds it in the company's listing (the engine's
//! reconcile toolkit reads it once a sync), then PATCHes what differs (nothing differs: no
//! request) or POSTs; a POST refused "already exists" reads the listing again once. Where
//! PATCH answers 405, the rest of the sync reads, merges and PUTs, so no field is ever nulled
//! by omission. Countries and categories are resolved before any request for the record.

use crate::api::{duration_of, record_of, ApiClient};
use crate::lookups::{iso_country, Categories, Countries, Template, Templates};
use crate::objects::{name_key, RevnueObject, COUNTRY_FIELDS};
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::OnceCell;

pub struct RevnueWriter {
    client: ApiClient,
    templates: Templates,
    countries: OnceCell<Countries>,
    categories: OnceCell<Categories>,
    reconciler: Reconciler<RevnueObject>,
    /// PATCH answered 405: read–merge–PUT for the rest of the sync.
    put_instead_of_patch: AtomicBool,
    /// Whether a PATCH has succeeded this sync; until one has, PATCHes go one at a time, so a
    /// 405 is learnt from one request, not from every update already waiting for its turn.
    patch_works: AtomicBool,
    patch_probe: tokio::sync::Mutex<()>,
    /// Requests spent on lookups (countries, categories, reads before a PUT).
    lookups: AtomicU64,
    dry_run: bool,
}

/// Revnue's comparison: an empty string is null; numbers by value (1500 is 1500.0); template
/// values by field id, and an update sends only the template values that differ.
struct RevnueRules;

impl Rules for RevnueRules {
    fn same(&self, field: &str, value: &Value, stored: &Value) -> bool {
        if field == "template" {
            return template_delta(value, stored).is_empty();
        }
        reconcile::same_value(value, stored)
    }

    fn delta(&self, field: &str, value: &Value, stored: &Value) -> Value {
        if field == "template" {
            let id = value.get("id").cloned().unwrap_or(Value::Null);
            return template_body(id, template_delta(value, stored));
        }
        value.clone()
    }
}

/// The row's template values that differ from the stored ones, by field id.
fn template_delta(desired: &Value, stored: &Value) -> Vec<(u64, Value)> {
    let now: HashMap<u64, Value> = template_fields(stored).into_iter().collect();
    template_fields(desired)
        .into_iter()
        .filter(|(id, v)| !reconcile::same_value(v, now.get(id).unwrap_or(&Value::Null)))
        .collect()
}

/// A template's values, by field id.
fn template_fields(template: &Value) -> Vec<(u64, Value)> {
    template
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f.get("id")?.as_u64()?, f.get("value")?.clone())))
        .collect()
}

/// The template fields of a body, by field id.
fn template_values(body: &Map<String, Value>) -> Vec<(u64, Value)> {
    body.get("template")
        .map(template_fields)
        .unwrap_or_default()
}

fn template_body(id: Value, fields: Vec<(u64, Value)>) -> Value {
    let fields: Vec<Value> = fields
        .into_iter()
        .map(|(id, value)| json!({"id": id, "value": value}))
        .collect();
    json!({"id": id, "fields": fields})
}

/// A create refused as "already exists" for a name no record of this company holds.
fn another_company(message: &str, object: RevnueObject, name: &str) -> Verdict {
    Verdict::refused_with(400, format!(
        "{message}: the name {name:?} is used by a {object} of another company of this account; Revnue names are unique account-wide and this connector never writes to another company"
    ))
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
    pub fn new(client: ApiClient, templates: Templates, dry_run: bool) -> Self {
        Self {
            client,
            templates,
            countries: OnceCell::new(),
            categories: OnceCell::new(),
            reconciler: Reconciler::default(),
            put_instead_of_patch: AtomicBool::new(false),
            patch_works: AtomicBool::new(false),
            patch_probe: tokio::sync::Mutex::new(()),
            lookups: AtomicU64::new(0),
            dry_run,
        }
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

    /// A listed record as the toolkit holds it: keyed by its name, its fields as a request
    /// body gives them (none when the answer cannot be turned back, so every field is sent).
    fn stored(&self, object: RevnueObject, item: &Map<String, Value>) -> Option<Stored> {
        let id = item.get("id").and_then(Value::as_u64)?;
        Some(Stored {
            id: id.to_string(),
            key: item.get("name").and_then(Value::as_str).map(name_key),
            fields: self.to_request(object, item).unwrap_or_default(),
        })
    }

    /// After a write (or, in a dry run, instead of it): what the record holds now.
    fn learn(
        &self,
        object: RevnueObject,
        id: &str,
        name: Option<&str>,
        fields: Map<String, Value>,
    ) {
        self.reconciler.learn(
            object,
            &Stored {
                id: id.to_owned(),
                key: name.map(name_key),
                fields,
            },
        );
    }

    /// The record of this name, found in the listing; read again once when it is not there
    /// (it may have appeared since).
    async fn named(&self, object: RevnueObject, name: &str) -> Result<Option<Stored>, Fatal> {
        let key = name_key(name);
        let mut found = self.reconciler.find(self, object, &key).await?;
        if found.is_empty() {
            self.reconciler.forget(object).await;
            found = self.reconciler.find(self, object, &key).await?;
        }
        Ok(found.into_iter().next())
    }

    /// After an update: the changes laid over what the toolkit held of the record.
    fn learn_update(&self, object: RevnueObject, id: u64, changed: &Map<String, Value>) {
        let id = id.to_string();
        let held = match self.reconciler.held(object, Query::Id(&id)) {
            Some(mut held) => {
                overlay(&mut held.fields, changed);
                held
            }
            None => return,
        };
        let name = held
            .fields
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.learn(object, &id, name.as_deref(), held.fields);
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
        if self.dry_run {
            self.learn(object, "(new)", Some(&name), desired);
            return Ok(Verdict::Created { id: None });
        }
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
                        self.learn(object, &id.to_string(), Some(&name), body);
                        return Ok(Verdict::Created { id: Some(id.to_string()) });
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
                        self.reconciler.forget(object).await;
                        return match self.named(object, &name).await? {
                            Some(stored) if uncertain && mode == WriteMode::Insert => {
                                self.client.notice(format!("POST {} had an unknown outcome; {object} {} named {name:?} exists: it landed", object.route(), stored.id));
                                Ok(Verdict::Created { id: Some(stored.id) })
                            }
                            Some(stored) => {
                                let changed = reconcile::changes(&desired, &stored.fields, &RevnueRules);
                                if changed.is_empty() {
                                    return Ok(Verdict::Unchanged { id: stored.id });
                                }
                                self.update(object, stored.id.parse().unwrap_or_default(), changed).await
                            }
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
        let Some(stored) = self.named(object, name).await? else {
            return Ok(another_company(&message, object, name));
        };
        let differing = reconcile::changes(desired, &stored.fields, &RevnueRules);
        let record = format!("{object} {} named {name:?}", stored.id);
        Ok(Verdict::for_existing(
            Verdict::refused_with(400, message),
            &record,
            differing.keys(),
            |text| self.client.notice(text),
        ))
    }

    /// Creates, updates only what differs, or leaves unchanged: the toolkit's decision for
    /// `desired` against the records `found` for it.
    async fn reconcile(
        &self,
        object: RevnueObject,
        desired: Map<String, Value>,
        found: &[Stored],
    ) -> Result<Verdict, Fatal> {
        match reconcile::decide(&desired, found, &RevnueRules) {
            Decision::Create => self.create(object, WriteMode::Upsert, desired).await,
            Decision::Unchanged { id } => Ok(Verdict::Unchanged { id }),
            Decision::Update { id, changed } => {
                let id: u64 = id.parse().unwrap_or_default();
                self.update(object, id, changed).await
            }
            Decision::Ambiguous { ids } => Ok(Verdict::refused(format!(
                "{} {object}s of company {} hold this name: {}",
                ids.len(),
                self.client.company,
                ids.join(", ")
            ))),
        }
    }

    /// PATCH the changes; where PATCH answers 405, read, merge and PUT the whole record.
    async fn update(
        &self,
        object: RevnueObject,
        id: u64,
        changed: Map<String, Value>,
    ) -> Result<Verdict, Fatal> {
        let fields = reconcile::field_names(&changed);
        if self.dry_run {
            self.learn_update(object, id, &changed);
            return Ok(Verdict::Updated {
                id: id.to_string(),
                fields,
            });
        }
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
                    self.learn_update(object, id, &changed);
                    return Ok(Verdict::Updated {
                        id: id.to_string(),
                        fields,
                    });
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
                let name = whole.get("name").and_then(Value::as_str).map(str::to_owned);
                self.learn(object, &id.to_string(), name.as_deref(), whole);
                Ok(Verdict::Updated { id: id.to_string(), fields })
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
                // By id: compared with the listing once reading it costs less than sending
                // every row; until then each row's fields are PATCHed as they are.
                match self
                    .reconciler
                    .find_or_blind(self, object, Query::Id(&id.to_string()))
                    .await?
                {
                    Found::Records(found) if !found.is_empty() => {
                        self.reconcile(object, fields, &found).await
                    }
                    _ => self.update(object, id, fields).await,
                }
            }
            (WriteMode::Update, None) => Ok(Verdict::refused("field `id` is required to update")),
            (WriteMode::Upsert, None) => {
                let name = fields
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let found = self.reconciler.find(self, object, &name_key(name)).await?;
                self.reconcile(object, fields, &found).await
            }
        }
    }
}

/// Revnue reads by id only: records are found by name in the company's listing.
impl Finder<RevnueObject> for RevnueWriter {
    fn can_look_up(&self, _: RevnueObject) -> bool {
        false
    }

    async fn look_up(&self, _: RevnueObject, _: &str) -> Result<Vec<Stored>, Fatal> {
        Ok(Vec::new())
    }

    async fn list_page(&self, object: RevnueObject, next: Option<String>) -> Result<Page, Fatal> {
        // Countries first: a listed record's country name is turned back into its code.
        self.countries().await?;
        let route = format!("{}/?company={}", object.route(), self.client.company);
        let page = self.client.page(&route, next).await?;
        let per_page = (page.items.len() as u64).max(1);
        Ok(Page {
            records: page
                .items
                .iter()
                .filter_map(|item| self.stored(object, item))
                .collect(),
            pages: page.count.map(|count| count.div_ceil(per_page)),
            next: page.next,
        })
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

    fn attach(&self, backlog: Backlog) {
        self.reconciler.attach(backlog);
    }

    fn progress(&self, settled: u64, waiting: u64) -> Option<String> {
        let spent = self.client.requests_sent();
        let finding = self.reconciler.spent() + self.lookups.load(Ordering::Relaxed);
        let pace = self.client.pace_per_minute();
        let per_record = if settled > 0 {
            (spent - finding.min(spent)) as f64 / settled as f64
        } else {
            1.0
        };
        let left = (waiting as f64 * per_record).ceil() as u64;
        Some(format!(
            "{spent} requests spent ({finding} on list pages and lookups, {:.2} a record), pace {pace:.0} requests/min{}",
            per_record,
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
        let changed = reconcile::changes(&desired, &current, &RevnueRules);
        assert_eq!(
            Value::Object(changed.clone()),
            json!({"template": {"id": 7, "fields": [{"id": 22, "value": "silver"}]}})
        );
        let mut merged = current.clone();
        overlay(&mut merged, &changed);
        assert_eq!(
            merged["template"],
            json!({"id": 7, "fields": [{"id": 21, "value": 1500.0}, {"id": 22, "value": "silver"}]})
        );
        assert!(reconcile::changes(
            &map(json!({"nda_signed": false})),
            &map(json!({"nda_signed": false})),
            &RevnueRules
        )
        .is_empty());
    }
}
