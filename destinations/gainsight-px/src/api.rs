//! Everything that knows the Gainsight PX REST API: its host, its key header, its error
//! envelope, the attribute metadata (`check`, `discover`, typed custom columns) and the
//! requests a write makes, over the engine's Sender.

use crate::config::Settings;
use crate::objects::PxObject;
use bytes::Bytes;
use engine::catalog::{CustomColumn, CustomColumns, Object};
use engine::concurrency::Adaptive;
use engine::error::Fatal;
use engine::http::{Answers, Key, Outgoing, Platform, Reply, Sender, Transport};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use reqwest::header::HeaderName;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;

pub const PLATFORM: Platform = Platform {
    name: "Gainsight PX",
    default_url: "https://api.aptrinsic.com",
};
const AGENT: &str = concat!("destination-gainsight-px/", env!("CARGO_PKG_VERSION"));
const KEY_HEADER: &str = "x-aptrinsic-api-key";

/// What to do when PX refuses the key, sent as it is in its own header.
const KEY_REFUSED: &str = "Gainsight PX rejected the API key (401 Unauthorized): create a key under Administration > REST API with the Read and Write permissions and paste it into api_key; check data_center too, since a key works only in its own";

/// The message of a PX error body: `externalapierror.subErrors[0].message`, its `message`,
/// its `status`, a top-level `errorMessage`, else the text itself (some bodies are HTML).
pub fn error_message(body: &[u8]) -> String {
    let found = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        let error = &v["externalapierror"];
        [
            &error["subErrors"][0]["message"],
            &error["message"],
            &error["status"],
            &v["errorMessage"],
        ]
        .into_iter()
        .find_map(|m| m.as_str().filter(|m| !m.is_empty()).map(str::to_owned))
    });
    found.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        match text.trim() {
            "" => "(no message)".to_owned(),
            text => text.chars().take(300).collect(),
        }
    })
}

/// Whether a 404's body is PX's "record not found" (its envelope with `NOT_FOUND`), rather
/// than a route that does not exist.
pub fn is_record_not_found(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .is_ok_and(|v| v["externalapierror"]["status"] == "NOT_FOUND")
}

/// Whether an id may travel in a path; others go through the `/update` body route.
pub fn path_safe(id: &str) -> bool {
    !id.is_empty()
        && id != "update"
        && id != "delete"
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'@' | b'-'))
}

/// `base_url` and a path as a URI.
fn uri_of(base_url: &str, path: &str) -> Result<http::Uri, Fatal> {
    http::Uri::try_from(format!("{base_url}{path}"))
        .map_err(|e| Fatal::config(format!("base_url {base_url} with {path}: {e}")))
}

/// A request as messages name it: `PUT /v1/accounts/{id}`.
pub struct Label {
    pub method: Method,
    pub path: std::borrow::Cow<'static, str>,
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// One attribute definition from `/v1/admin/model/{type}/attributes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attribute {
    pub api_name: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub state: String,
    #[serde(default)]
    pub origin: Option<String>,
}

impl Attribute {
    /// Its values' JSON schema; null allowed (a null is not sent).
    pub fn value_schema(&self) -> Value {
        let mut schema = match self.kind.as_str() {
            "NUMBER" => json!({"type": ["number", "null"]}),
            "BOOLEAN" => {
                json!({"type": ["boolean", "string", "null"], "enum": [true, false, "true", "false", null]})
            }
            "DATE_TIME" => json!({"type": ["string", "integer", "null"]}),
            _ => json!({"type": ["string", "null"]}),
        };
        let label = self.name.as_deref().unwrap_or(&self.api_name);
        schema["title"] = json!(label);
        schema["description"] = json!(format!(
            "Custom attribute {label} (`{}`, {}), written into `customAttributes`{}.",
            self.api_name,
            self.kind,
            if self.kind == "DATE_TIME" {
                "; an ISO 8601 date or date-time, or epoch milliseconds"
            } else {
                ""
            }
        ));
        schema
    }

    /// A custom attribute a record may carry: CUSTOM origin and ENABLED.
    fn writable(&self) -> bool {
        self.state == "ENABLED" && self.origin.as_deref() == Some("CUSTOM")
    }
}

/// The account's attributes of each object, read once.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    pub by_object: Vec<(PxObject, Vec<Attribute>)>,
}

impl Attributes {
    /// The enabled custom attributes as typed columns.
    pub fn columns(&self) -> CustomColumns {
        let mut columns = CustomColumns::default();
        for (object, attributes) in &self.by_object {
            let writable = attributes
                .iter()
                .filter(|a| a.writable())
                .map(|a| CustomColumn {
                    key: a.api_name.clone(),
                    schema: a.value_schema(),
                    required_to_insert: false,
                    kind: a.kind.clone(),
                })
                .collect();
            columns.set(*object, writable);
        }
        columns
    }

    /// "account: 22 attributes (3 custom enabled)" for each object.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .by_object
            .iter()
            .map(|(object, attributes)| {
                format!(
                    "{object}: {} attributes ({} custom enabled)",
                    attributes.len(),
                    attributes.iter().filter(|a| a.writable()).count()
                )
            })
            .collect();
        parts.join(", ")
    }
}

pub struct ApiClient {
    sender: Sender<Key>,
    base_url: String,
    /// `/v1/accounts` and `/v1/users` as URIs, parsed once: every create goes there.
    collections: Vec<(PxObject, http::Uri)>,
}

impl ApiClient {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let transport = Transport::new(
            settings.sync.request_timeout,
            settings.sync.max_concurrency.max(1),
            HeaderName::from_static(KEY_HEADER),
            AGENT,
        )?;
        let answers = Answers {
            platform: PLATFORM,
            base_url: settings.base_url.clone(),
            forbidden_hint: "give the API key the Write permission under Administration > REST API (Read alone lets check pass but no write)",
            error_message,
            missing_route: |status, body| {
                status == 405 || (status == 404 && !is_record_not_found(body))
            },
        };
        Ok(Self {
            sender: Sender::new(
                transport,
                Key {
                    key: settings.api_key.clone(),
                    refused: KEY_REFUSED,
                },
                answers,
                Adaptive::with_budget(
                    settings.sync.max_concurrency,
                    f64::from(settings.requests_per_second),
                ),
                settings.sync.max_retries,
                settings.sync.request_timeout,
            )
            .read_only(settings.sync.dry_run),
            base_url: settings.base_url.clone(),
            collections: PxObject::ALL
                .iter()
                .map(|&object| {
                    let path = format!("/v1/{}", object.collection());
                    Ok((
                        object,
                        uri_of(&settings.base_url, &path)
                            .map_err(|e| anyhow::anyhow!(e.message().to_owned()))?,
                    ))
                })
                .collect::<anyhow::Result<_>>()?,
        })
    }

    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.sender = self.sender.with_max_retries(max_retries);
        self
    }

    pub fn with_notices(mut self, notices: UnboundedSender<String>) -> Self {
        self.sender = self.sender.with_notices(notices);
        self
    }

    pub fn stop(&self) {
        self.sender.stop();
    }

    pub fn concurrency_limit(&self) -> usize {
        self.sender.concurrency_limit()
    }

    pub fn notice(&self, message: String) {
        self.sender.notice(message);
    }

    /// Sends `method path` (the path already encoded), retrying passing failures.
    pub async fn send(
        &self,
        method: Method,
        path: String,
        body: Option<Bytes>,
        creates: bool,
    ) -> Result<Reply, Fatal> {
        let uri = uri_of(&self.base_url, &path)?;
        self.send_to(method, uri, path.into(), body, creates).await
    }

    /// POSTs a create to `object`'s collection, whose URI is parsed once.
    pub async fn create(&self, object: PxObject, body: Bytes) -> Result<Reply, Fatal> {
        let uri = self
            .collections
            .iter()
            .find(|(o, _)| *o == object)
            .map(|(_, uri)| uri.clone())
            .expect("every object's collection");
        let path = match object {
            PxObject::Account => "/v1/accounts",
            PxObject::User => "/v1/users",
        };
        self.send_to(Method::POST, uri, path.into(), Some(body), true)
            .await
    }

    async fn send_to(
        &self,
        method: Method,
        uri: http::Uri,
        path: std::borrow::Cow<'static, str>,
        body: Option<Bytes>,
        creates: bool,
    ) -> Result<Reply, Fatal> {
        let label = Label {
            method: method.clone(),
            path,
        };
        self.sender
            .send(Outgoing {
                label: &label,
                method,
                uri,
                body,
                creates,
            })
            .await
    }

    /// Reads the attribute definitions of `objects`. Errors say what to fix.
    pub async fn attributes(&self, objects: &[PxObject]) -> Result<Attributes, String> {
        let mut attributes = Attributes::default();
        for &object in objects {
            let path = format!("/v1/admin/model/{}/attributes", object.model());
            let reply = self
                .send(Method::GET, path.clone(), None, false)
                .await
                .map_err(|fatal| fatal.message().to_owned())?;
            let body = match reply {
                Reply::Success { body, .. } => body,
                Reply::Refused { status, message } => {
                    return Err(format!(
                    "GET {path} answered {status} ({message}): check base_url ({}) or data_center",
                    self.base_url
                ))
                }
                Reply::Unknown { reason, .. } => return Err(reason),
            };
            let list: Vec<Attribute> = serde_json::from_slice(&body).map_err(|_| {
                format!(
                    "GET {path} did not answer with a list of attributes: check that base_url ({}) is the Gainsight PX API",
                    self.base_url
                )
            })?;
            attributes.by_object.push((object, list));
        }
        Ok(attributes)
    }

    /// The path of a record's route: by id in the path when it may travel there.
    pub fn record_path(object: PxObject, id: &str) -> String {
        format!(
            "/v1/{}/{}",
            object.collection(),
            utf8_percent_encode(id, NON_ALPHANUMERIC)
        )
    }

    /// One record by its key as PX holds it; `None` when there is none.
    pub async fn read(
        &self,
        object: PxObject,
        id: &str,
    ) -> Result<Option<serde_json::Map<String, Value>>, Fatal> {
        if !path_safe(id) {
            let (records, _, _) = self
                .search(
                    object,
                    Some(&format!("{}=={id}", object.id_field())),
                    None,
                    10,
                )
                .await?;
            return Ok(records.into_iter().find(|r| r[object.id_field()] == id));
        }
        match self
            .send(Method::GET, Self::record_path(object, id), None, false)
            .await?
        {
            Reply::Success { body, .. } => Ok(serde_json::from_slice(&body).ok()),
            Reply::Refused { status: 404, .. } => Ok(None),
            Reply::Refused { status, message } => Err(Fatal::config(format!(
                "GET /v1/{}/{{id}} answered {status} ({message}): check base_url ({}) or data_center",
                object.collection(),
                self.base_url
            ))),
            Reply::Unknown { reason } => Err(Fatal::config(reason)),
        }
    }

    /// A page of the object's search, `page_size` records: the records, the `scrollId` for the
    /// next page, and `totalHits`.
    pub async fn search(
        &self,
        object: PxObject,
        filter: Option<&str>,
        scroll: Option<String>,
        page_size: usize,
    ) -> Result<
        (
            Vec<serde_json::Map<String, Value>>,
            Option<String>,
            Option<u64>,
        ),
        Fatal,
    > {
        let mut path = format!("/v1/{}?pageSize={page_size}", object.collection());
        if let Some(filter) = filter {
            path += &format!("&filter={}", utf8_percent_encode(filter, NON_ALPHANUMERIC));
        }
        if let Some(scroll) = scroll {
            path += &format!(
                "&scrollId={}",
                utf8_percent_encode(&scroll, NON_ALPHANUMERIC)
            );
        }
        let body = match self.send(Method::GET, path, None, false).await? {
            Reply::Success { body, .. } => body,
            Reply::Refused { status, message } => {
                return Err(Fatal::config(format!(
                    "GET /v1/{} answered {status} ({message}): check base_url ({}) or data_center",
                    object.collection(),
                    self.base_url
                )))
            }
            Reply::Unknown { reason } => return Err(Fatal::config(reason)),
        };
        let mut found: Value = serde_json::from_slice(&body).unwrap_or_default();
        let records: Vec<serde_json::Map<String, Value>> = match found[object.collection()].take() {
            Value::Array(all) => all
                .into_iter()
                .filter_map(|r| match r {
                    Value::Object(map) => Some(map),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        // PX keeps a scrollId on its last page: a page shorter than asked is the last.
        let scroll = (records.len() >= page_size)
            .then(|| found["scrollId"].as_str().map(str::to_owned))
            .flatten();
        Ok((records, scroll, found["totalHits"].as_u64()))
    }

    /// Reads one record by its key; `None` when it does not exist. Ids that cannot travel in
    /// a path are found by filter and compared exactly (filters ignore case).
    pub async fn exists(&self, object: PxObject, id: &str) -> Result<Option<bool>, Fatal> {
        let path = if path_safe(id) {
            Self::record_path(object, id)
        } else {
            format!(
                "/v1/{}?pageSize=10&filter={}",
                object.collection(),
                utf8_percent_encode(&format!("{}=={id}", object.id_field()), NON_ALPHANUMERIC)
            )
        };
        match self.send(Method::GET, path, None, false).await? {
            Reply::Success { body, .. } if path_safe(id) => Ok(Some(!body.is_empty())),
            Reply::Success { body, .. } => {
                let found: Value = serde_json::from_slice(&body).unwrap_or_default();
                let key = object.id_field();
                Ok(Some(
                    found[object.collection()]
                        .as_array()
                        .is_some_and(|all| all.iter().any(|r| r[key] == id)),
                ))
            }
            Reply::Refused { status: 404, .. } => Ok(Some(false)),
            Reply::Refused { .. } | Reply::Unknown { .. } => Ok(None),
        }
    }

    /// Whether `object`'s collection answers a read: a 404 to a record's route is the
    /// record's only where it does (a wrong base_url answers 404 everywhere).
    pub async fn collection_exists(&self, object: PxObject) -> Result<(), Fatal> {
        let path = format!("/v1/{}?pageSize=1", object.collection());
        match self.send(Method::GET, path.clone(), None, false).await? {
            Reply::Refused {
                status: status @ (404 | 405),
                message,
            } => Err(Fatal::config(format!(
                "Gainsight PX answered {status} to GET {} ({message}) as to the record's own route: the route is missing there, not the record; check base_url ({}) and data_center",
                path.split('?').next().unwrap_or(&path),
                self.base_url
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_read_in_the_loaders_order() {
        let body = br#"{"externalapierror":{"status":"BAD_REQUEST","message":"Bad request","subErrors":[{"field":"name","message":"name is required"}]}}"#;
        assert_eq!(error_message(body), "name is required");
        let body = br#"{"externalapierror":{"status":"NOT_FOUND","message":"User was not found for parameters {id=x}","subErrors":null}}"#;
        assert_eq!(
            error_message(body),
            "User was not found for parameters {id=x}"
        );
        assert!(is_record_not_found(body));
        assert!(!is_record_not_found(b"<html>404</html>"));
        assert_eq!(error_message(br#"{"errorMessage":"nope"}"#), "nope");
        assert_eq!(
            error_message(b"<html>403 Forbidden</html>"),
            "<html>403 Forbidden</html>"
        );
    }

    #[test]
    fn ids_travel_in_paths_only_when_plain() {
        assert!(path_safe("acme-1.x_y~z@q"));
        for id in ["", "update", "delete", "a/b", "a b", "a?b", "é"] {
            assert!(!path_safe(id), "{id}");
        }
    }
}
