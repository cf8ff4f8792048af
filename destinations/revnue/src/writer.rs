//! Rows into Revnue writes. Revnue has no bulk, no upsert, no external id and no read by name:
//! a customer's name is its key, unique account-wide. The engine's reconcile toolkit finds it:
//! while the rows to come are fewer than the company's list pages, an upsert's POST is its
//! look (refused "already exists", the listing is read); past that, the listing is read once a
//! sync. Then a PATCH of what differs (nothing differs: no request) or a POST. Where PATCH
//! answers 405, the rest of the sync reads, merges and PUTs, so no field is nulled by omission.
//! Countries and categories are resolved before any request for the record.

use crate::api::{record_of, ApiClient};
use crate::lookups::{Lookups, Templates};
use crate::objects::{name_key, RevnueObject};
use crate::rules::{as_request, overlay, RevnueRules};
use bytes::Bytes;
use engine::catalog::WriteMode;
use engine::error::Fatal;
use engine::http::spending::spending;
use engine::http::{create_until_known, Creation, Reply};
use engine::probe::Probe;
use engine::reconcile::store::Store;
use engine::reconcile::{changes, Finder, Page, Reconciler, Rules, Stored};
use engine::write::backlog::Backlog;
use engine::write::prepare::Prepared;
use engine::write::{Verdict, Writer};
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};

pub struct RevnueWriter {
    client: ApiClient,
    templates: Templates,
    lookups: Lookups,
    reconciler: Reconciler<RevnueObject>,
    /// PATCH answered 405: read–merge–PUT for the rest of the sync.
    put_instead_of_patch: AtomicBool,
    /// Until a PATCH has answered (or a 405 said to PUT), PATCHes go one at a time, so a 405
    /// is learnt from one request, not from every update already waiting for its turn.
    patch: Probe,
}

/// A create refused as "already exists" for a name no record of this company holds.
fn another_company(message: &str, object: RevnueObject, name: &str) -> Verdict {
    Verdict::refused_with(400, format!(
        "{message}: the name {name:?} is used by a {object} of another company of this account; Revnue names are unique account-wide and this connector never writes to another company"
    ))
}

fn json_body(fields: &Map<String, Value>) -> Bytes {
    Bytes::from(serde_json::to_vec(fields).expect("JSON"))
}

impl RevnueWriter {
    pub fn new(client: ApiClient, templates: Templates, dry_run: bool) -> Self {
        Self {
            client,
            templates,
            lookups: Lookups::default(),
            reconciler: Reconciler::new(dry_run),
            put_instead_of_patch: AtomicBool::new(false),
            patch: Probe::default(),
        }
    }

    /// An answer's record as the body that would give it.
    fn as_request(
        &self,
        object: RevnueObject,
        record: &Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        as_request(record, self.templates.of(object), |name| {
            self.lookups.country(name)
        })
    }

    /// A listed record as the toolkit holds it: keyed by its name, its fields as a request
    /// body gives them (none when the answer cannot be turned back, so every field is sent).
    fn stored(&self, object: RevnueObject, item: &Map<String, Value>) -> Option<Stored> {
        let id = item.get("id").and_then(Value::as_u64)?;
        Some(Stored {
            id: id.to_string(),
            key: item.get("name").and_then(Value::as_str).map(name_key),
            fields: self.as_request(object, item).unwrap_or_default(),
        })
    }

    /// An update's answer: a 404 is the record's (it is not there) or the route's (it is).
    async fn settled(
        &self,
        object: RevnueObject,
        id: u64,
        reply: Reply,
    ) -> Result<Result<(), Verdict>, Fatal> {
        let exists = async { Ok(self.client.record(object.route(), id).await?.is_some()) };
        let record = format!("{object} {id} of company {}", self.client.company);
        reply
            .into_update(exists, &record, self.client.base_url())
            .await
    }

    /// Where PATCH answered 405: the record read, the changes merged into it, PUT whole.
    async fn put_merged(
        &self,
        object: RevnueObject,
        id: u64,
        changed: &Map<String, Value>,
    ) -> Result<Result<(), Verdict>, Fatal> {
        let Some(record) = self.client.record(object.route(), id).await? else {
            let company = self.client.company;
            return Ok(Err(Verdict::refused_with(
                404,
                format!("{object} {id} does not exist in company {company}"),
            )));
        };
        let mut whole = match self.as_request(object, &record) {
            Ok(whole) => whole,
            Err(why) => {
                return Ok(Err(Verdict::refused(format!(
                    "{object} {id} cannot be updated by read-merge-PUT without losing data: {why}"
                ))))
            }
        };
        overlay(&mut whole, changed);
        whole.insert("company".into(), json!(self.client.company));
        let path = format!("{}/{id}?company={}", object.route(), self.client.company);
        match self.client.send(Method::PUT, &path, Some(json_body(&whole)), false).await? {
            Reply::Refused { status: 405, message } => Err(Fatal::config(format!(
                "PUT {}/{{id}} answered 405 ({message}) after PATCH did: this account cannot update {object}s through the API",
                object.route()
            ))),
            reply => self.settled(object, id, reply).await,
        }
    }

    async fn write_one(
        &self,
        object: RevnueObject,
        mode: WriteMode,
        record: &Prepared,
    ) -> Result<Verdict, Fatal> {
        let mut fields = record.fields();
        let id = record
            .id
            .as_deref()
            .and_then(|i| i.parse::<u64>().ok())
            .or_else(|| fields.get("id").and_then(Value::as_u64));
        fields.remove("id");
        if let Err(why) = self.lookups.resolve(&self.client, &mut fields).await? {
            return Ok(Verdict::refused(why));
        }
        let company = self.client.company;
        if let Err(why) = self.templates.fill(object, company, &mut fields) {
            return Ok(Verdict::refused(why));
        }
        let name = name_key(
            fields
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        let reconciler = &self.reconciler;
        match (mode, id) {
            (WriteMode::Insert, _) => {
                reconciler
                    .create(self, object, mode, Some(&name), fields)
                    .await
            }
            // By id: compared with the listing once reading it costs less than sending every
            // row; until then each row's fields are PATCHed as they are.
            (_, Some(id)) => {
                reconciler
                    .update_by_id(self, object, &id.to_string(), fields)
                    .await
            }
            (WriteMode::Update, None) => Ok(Verdict::refused("field `id` is required to update")),
            (WriteMode::Upsert, None) => {
                let ambiguous = |ids: &[String]| {
                    format!(
                        "{} {object}s of company {company} hold this name: {}",
                        ids.len(),
                        ids.join(", ")
                    )
                };
                reconciler
                    .upsert(self, object, &name, fields, ambiguous)
                    .await
            }
        }
    }
}

/// POST creates (a name is unique, so one sent again after a lost answer is refused "already
/// exists" if it landed), PATCH updates (read–merge–PUT where PATCH answers 405).
impl Store<RevnueObject> for RevnueWriter {
    fn rules(&self, _: RevnueObject) -> &dyn Rules {
        &RevnueRules
    }

    /// Names are unique account-wide: a POST is the cheapest look for a name.
    fn key_is_unique(&self, _: RevnueObject) -> bool {
        true
    }

    fn taken(&self, _: RevnueObject, _: WriteMode, refused: &Verdict) -> bool {
        matches!(refused, Verdict::Refused { status: Some(400), message } if message.contains("already exists"))
    }

    fn taken_elsewhere(
        &self,
        object: RevnueObject,
        row: &Map<String, Value>,
        refused: Verdict,
    ) -> Verdict {
        let name = row.get("name").and_then(Value::as_str).unwrap_or_default();
        match refused {
            Verdict::Refused { message, .. } => another_company(&message, object, name),
            other => other,
        }
    }

    fn notice(&self, text: String) {
        self.client.notice(text);
    }

    async fn create(
        &self,
        object: RevnueObject,
        mode: WriteMode,
        desired: Map<String, Value>,
    ) -> Result<Result<Stored, Verdict>, Fatal> {
        let mut body = desired.clone();
        body.retain(|_, v| !v.is_null());
        body.insert("company".into(), json!(self.client.company));
        let bytes = json_body(&body);
        let name = desired
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let route = object.route();
        let uncertain = AtomicBool::new(false);
        let send = || {
            self.client
                .send(Method::POST, route, Some(bytes.clone()), true)
        };
        let look = |reason: String| {
            // Sent again: the unique name makes a twin impossible, "already exists" then
            // tells us it landed.
            self.client.notice(format!(
                "POST {route} failed ({reason}) and may have created {name:?}; sending it again, a name that now exists is taken as landed"
            ));
            uncertain.store(true, Ordering::Relaxed);
            async { Ok(None::<Infallible>) }
        };
        let (status, message) = match create_until_known(send, look).await? {
            Creation::Answered(answer) => {
                let id = record_of(&answer).and_then(|r| r.get("id").and_then(Value::as_u64)).ok_or_else(|| {
                    Fatal::config(format!("POST {route} answered without a record id: check base_url ({})", self.client.base_url()))
                })?;
                body.remove("company");
                return Ok(Ok(Stored { id: id.to_string(), key: Some(name_key(&name)), fields: body }));
            }
            Creation::Found(never) => match never {},
            Creation::Refused { status: status @ (404 | 405), message } => {
                return Err(Fatal::config(format!(
                    "POST {route} answered {status} ({message}): the route is missing there; check base_url ({})",
                    self.client.base_url()
                )))
            }
            Creation::Refused { status, message } => (status, message),
        };
        let refused = Verdict::refused_with(status, message);
        if uncertain.load(Ordering::Relaxed) && self.taken(object, mode, &refused) {
            // Our own create may have landed before its answer was lost: it did when the
            // record of the name holds the row's values.
            let found = self
                .reconciler
                .find_fresh(self, object, &name_key(&name))
                .await?;
            if let [stored] = &found[..] {
                if changes(&desired, &stored.fields, &RevnueRules).is_empty() {
                    self.client.notice(format!("POST {route} had an unknown outcome; {object} {} named {name:?} exists with the row's values: it landed", stored.id));
                    return Ok(Ok(stored.clone()));
                }
            }
        }
        Ok(Err(refused))
    }

    /// PATCH the changes; where PATCH answers 405, read, merge and PUT the whole record.
    async fn update(
        &self,
        object: RevnueObject,
        _: WriteMode,
        id: &str,
        changed: &Map<String, Value>,
    ) -> Result<Result<(), Verdict>, Fatal> {
        let id: u64 = id.parse().unwrap_or_default();
        let probing = self.patch.turn().await;
        if !self.put_instead_of_patch.load(Ordering::Relaxed) {
            // With the company, an id of another company of the account is not found there
            // (this connector never writes to another company).
            let mut body = changed.clone();
            body.insert("company".into(), json!(self.client.company));
            let path = format!("{}/{id}", object.route());
            match self
                .client
                .send(Method::PATCH, &path, Some(json_body(&body)), false)
                .await?
            {
                Reply::Success { .. } => {
                    self.patch.settle();
                    return Ok(Ok(()));
                }
                Reply::Refused { status: 405, .. } => {
                    self.patch.settle();
                    if !self.put_instead_of_patch.swap(true, Ordering::Relaxed) {
                        self.client.notice(format!(
                            "PATCH {}/{{id}} answered 405: this account has no partial update; for the rest of the sync each update reads the {object}, merges the row into it and PUTs it whole (two requests an update)",
                            object.route()
                        ));
                    }
                }
                reply => return self.settled(object, id, reply).await,
            }
        }
        drop(probing);
        self.put_merged(object, id, changed).await
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
        self.lookups.countries(&self.client).await?;
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
        let finding = self.reconciler.spent() + self.lookups.spent();
        let pace = Some(self.client.pace_per_minute());
        let spent = self.client.requests_sent();
        Some(spending(spent, finding, pace, settled, waiting))
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
