//! ClientSuccess as a [`Writer`]: each object × mode over the route its account offers (bulk,
//! single, v1), refused bulk batches bisected to the bad records, upserts done by lookup where
//! there is no upsert route, and a missing collection route turned into a fatal config error,
//! never into rejections.

use super::http::{ApiClient, ApiRequest, Reply};
use super::surface::{ApiSurface, Create, ObjectRoutes, SurfacePlan, Update, Upsert};
use super::v1;
use crate::catalog::{ObjectKind, WriteMode};
use crate::config::Settings;
use crate::error::Fatal;
use crate::write::prepare::Prepared;
use crate::write::{Verdict, Writer};
use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::Method;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::mpsc::UnboundedSender;

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
}

/// An answer a write route gave: its body, or the record's refusal.
enum Answer {
    Body(Bytes),
    Refused(Verdict),
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
        let mut client = ApiClient::new(settings)?;
        if let Some(notices) = notices {
            client = client.with_notices(notices);
        }
        let surfaces = match settings.api_surface {
            ApiSurface::Auto => SurfacePlan::detect(&client, objects).await?,
            pinned => SurfacePlan::pinned(pinned, objects),
        };
        Ok(Self {
            client,
            surfaces,
            batch_size: settings.batch_size,
            client_ids: Mutex::new(HashMap::new()),
        })
    }

    pub fn surfaces(&self) -> &SurfacePlan {
        &self.surfaces
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
        match self.client.send(&request).await? {
            Reply::Success { body, .. } => Ok(Answer::Body(body)),
            Reply::Refused { status, .. } if collection && matches!(status, 404 | 405) => {
                Err(Fatal::config(format!(
                    "{request} answered {status}: this ClientSuccess account has no such route, so no record was sent through it. \
                     Routes in use: {}. Check base_url, and set api_surface to auto (or to the surface your account offers)",
                    self.surfaces
                )))
            }
            Reply::Refused { status, message } => {
                Ok(Answer::Refused(refused(Some(status), message)))
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
    async fn bulk(&self, object: ObjectKind, records: &[Prepared]) -> Result<Vec<Verdict>, Fatal> {
        let mut verdicts: Vec<Option<Verdict>> = vec![None; records.len()];
        let mut pending = Vec::with_capacity(8);
        pending.push(0..records.len());
        while let Some(range) = pending.pop() {
            let chunk = &records[range.clone()];
            let request = ApiRequest::v2(
                Method::POST,
                format!("/{object}/bulk"),
                Some(json_array(chunk.iter().map(Prepared::body))),
            );
            match self.call(request, true).await? {
                Answer::Body(_) => range.for_each(|i| verdicts[i] = Some(Verdict::Written)),
                Answer::Refused(_) if range.len() > 1 => {
                    let middle = range.start + range.len() / 2;
                    pending.push(middle..range.end);
                    pending.push(range.start..middle);
                }
                Answer::Refused(verdict) => verdicts[range.start] = Some(verdict),
            }
        }
        Ok(verdicts
            .into_iter()
            .map(|v| v.expect("every record got a verdict"))
            .collect())
    }

    /// Creates one record through `create`; the body is v2-shaped.
    async fn create(
        &self,
        object: ObjectKind,
        create: Create,
        body: &[u8],
    ) -> Result<Verdict, Fatal> {
        match create {
            Create::Bulk => {
                let batch = json_array([body]);
                let request = ApiRequest::v2(Method::POST, format!("/{object}/bulk"), Some(batch));
                self.verdict(request, true).await
            }
            Create::Single => {
                let request = ApiRequest::v2(
                    Method::POST,
                    format!("/{object}"),
                    Some(Bytes::copy_from_slice(body)),
                );
                self.verdict(request, true).await
            }
            Create::V1 => self.create_v1(object, object_of(body)).await,
        }
    }

    async fn create_v1(
        &self,
        object: ObjectKind,
        mut fields: Map<String, Value>,
    ) -> Result<Verdict, Fatal> {
        match object {
            ObjectKind::Client => {
                let (body, custom) = v1::client_body(fields);
                let request = ApiRequest::v1(Method::POST, "/clients".into(), json_body(&body));
                let created = match self.call(request, true).await? {
                    Answer::Body(created) => object_of(&created),
                    Answer::Refused(verdict) => return Ok(verdict),
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
                let request = ApiRequest::v1(
                    Method::POST,
                    format!("/clients/{client_id}/contacts"),
                    json_body(&fields),
                );
                self.verdict(request, true).await
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

    /// The v1 integer id of the client with this uuid, read once through v2 and then cached.
    async fn client_id(&self, uuid: &str) -> Step<u64> {
        if let Some(&id) = self.client_ids.lock().unwrap().get(uuid) {
            return Ok(Ok(id));
        }
        let request = ApiRequest::v2(Method::GET, format!("/client/{}", escape(uuid)), None);
        match self.call(request, false).await? {
            Answer::Body(body) => match object_of(&body).get("id").and_then(Value::as_u64) {
                Some(id) => {
                    self.client_ids.lock().unwrap().insert(uuid.to_owned(), id);
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
                let request = ApiRequest::v1(
                    Method::GET,
                    format!("/clients?externalId={}", escape(external)),
                    None,
                );
                match self.call(request, false).await? {
                    Answer::Body(body) => Some(object_of(&body)).filter(|c| !c.is_empty()),
                    Answer::Refused(Verdict::Refused {
                        status: Some(404), ..
                    }) => None,
                    Answer::Refused(verdict) => return Ok(verdict),
                }
            }
            ObjectKind::Contact => {
                let Some(email) = fields.get("email").and_then(Value::as_str) else {
                    return Ok(refused(None, "without an email a contact can only be created: use insert, or give the record an email"));
                };
                let request = ApiRequest::v1(
                    Method::GET,
                    format!("/contacts/search?term={}", escape(email)),
                    None,
                );
                match self.call(request, false).await? {
                    Answer::Body(body) => serde_json::from_slice::<Vec<Value>>(&body)
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
                        }),
                    Answer::Refused(verdict) => return Ok(verdict),
                }
            }
            ObjectKind::Contract => {
                return Err(Fatal::config("contracts have no v1 API to look them up"))
            }
        };
        let Some(found) = found else {
            return self.create(object, create, body).await;
        };
        match update {
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
        }
    }

    async fn write_one(
        &self,
        object: ObjectKind,
        mode: WriteMode,
        routes: ObjectRoutes,
        record: &Prepared,
    ) -> Result<Verdict, Fatal> {
        let unsupported =
            || Fatal::config(format!("this account offers no route to {mode} a {object}"));
        match mode {
            WriteMode::Insert => {
                self.create(
                    object,
                    routes.create.ok_or_else(unsupported)?,
                    record.body(),
                )
                .await
            }
            WriteMode::Update => {
                let uuid = record.uuid.as_deref().unwrap_or_default();
                self.update(
                    object,
                    routes.update.ok_or_else(unsupported)?,
                    uuid,
                    record.body(),
                )
                .await
            }
            WriteMode::Upsert => match routes.upsert.ok_or_else(unsupported)? {
                Upsert::Native => {
                    let request = ApiRequest::v2(
                        Method::POST,
                        format!("/{object}/upsert"),
                        Some(Bytes::copy_from_slice(record.body())),
                    );
                    self.verdict(request, true).await
                }
                Upsert::Lookup => self.upsert_by_lookup(object, routes, record.body()).await,
            },
        }
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

impl Writer for ClientSuccessWriter {
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
        if mode == WriteMode::Insert && routes.create == Some(Create::Bulk) {
            return self.bulk(object, records).await;
        }
        let mut verdicts = Vec::with_capacity(records.len());
        for record in records {
            verdicts.push(self.write_one(object, mode, routes, record).await?);
        }
        Ok(verdicts)
    }
}
