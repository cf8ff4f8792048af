//! The v1 API as the contract's "The v1 write API" section records it: integer ids, `statusId`,
//! PUTs that replace the whole record, contacts under their client, `200` with `null` for a
//! contact not found, `417` with a `userMessage` for a bad value, a plain-text answer to custom
//! values. Records are the same ones v2 serves, seen through v1's shapes.

use super::rules::Object;
use super::store::Store;
use serde_json::{json, Map, Value};

pub type Answer = (u16, Value);

/// v1's error body: the message a user reads, and one for developers.
fn user_error(status: u16, message: impl Into<String>) -> Answer {
    let message = message.into();
    (
        status,
        json!({"userMessage": message, "developerMessage": message}),
    )
}

const STATUSES: [(u64, &str, &str, &str); 4] = [
    (1, "A", "Active", "ACTIVE"),
    (2, "I", "Inactive", "INACTIVE"),
    (3, "T", "Trial", "TRIAL"),
    (4, "X", "Terminated", "TERMINATED"),
];

/// Fields a v1 answer carries that a write may send back and that are ignored.
const READ_ONLY: &[&str] = &["id", "uuid", "customFieldValues"];

/// A stored client as v1 shows it: `statusId`, custom values as an array.
fn client_view(record: &Map<String, Value>) -> Value {
    let mut view = record.clone();
    if let Some(Value::String(status)) = view.shift_remove("status") {
        let id = STATUSES.iter().find(|s| s.3 == status).map(|s| s.0);
        view.insert("statusId".into(), json!(id));
    }
    let custom = match view.shift_remove("custom") {
        Some(Value::Object(custom)) => custom
            .into_iter()
            .map(|(k, v)| json!({"fieldKey": k, "value": v}))
            .collect(),
        _ => Vec::new(),
    };
    view.insert("customFieldValues".into(), Value::Array(custom));
    Value::Object(view)
}

/// A stored contact as v1 shows it: its client by integer id.
fn contact_view(store: &Store, record: &Map<String, Value>) -> Value {
    let mut view = record.clone();
    if let Some(Value::String(parent)) = view.get("clientId") {
        let id = store
            .index_of_uuid(Object::Client, parent)
            .and_then(|i| store.record(Object::Client, i).get("id").cloned());
        view.insert("clientId".into(), id.unwrap_or(Value::Null));
    }
    Value::Object(view)
}

/// A v1 client body → the v2 fields it stands for, refusing what v1 does not take.
fn client_fields(body: &Value) -> Result<Value, String> {
    let Value::Object(body) = body else {
        return Err("the body must be a JSON object".into());
    };
    let mut fields = Map::new();
    for (key, value) in body {
        match key.as_str() {
            k if READ_ONLY.contains(&k) => {}
            "statusId" => {
                let status = match value {
                    Value::Null => Value::Null,
                    _ => match STATUSES.iter().find(|s| Some(s.0) == value.as_u64()) {
                        Some(s) => json!(s.3),
                        None => return Err(format!("statusId {value} is not a client status")),
                    },
                };
                fields.insert("status".into(), status);
            }
            "status" | "custom" => {
                return Err(format!("`{key}` is not a field of a v1 client"));
            }
            k if Object::Client.field_names().any(|f| f == k) => {
                fields.insert(key.clone(), value.clone());
            }
            _ => return Err(format!("unknown field `{key}`")),
        }
    }
    if !fields.contains_key("status") {
        fields.insert("status".into(), Value::Null);
    }
    Ok(Value::Object(fields))
}

/// A v1 contact body → v2 fields under the client `parent` (a uuid).
fn contact_fields(body: &Value, parent: &str) -> Result<Value, String> {
    let Value::Object(body) = body else {
        return Err("the body must be a JSON object".into());
    };
    let mut fields = Map::new();
    for (key, value) in body {
        match key.as_str() {
            k if READ_ONLY.contains(&k) || k == "clientId" => {}
            "custom" => return Err("`custom` is not a field of a v1 contact".into()),
            k if Object::Contact.field_names().any(|f| f == k) => {
                fields.insert(key.clone(), value.clone());
            }
            _ => return Err(format!("unknown field `{key}`")),
        }
    }
    fields.insert("clientId".into(), json!(parent));
    Ok(Value::Object(fields))
}

/// A store message in v1's words: v1 writes `statusId`, not `status`.
fn refusal(message: String) -> Answer {
    user_error(
        417,
        message.replace("status is required", "statusId is required"),
    )
}

fn integer(segment: &str) -> Result<u64, Answer> {
    segment
        .parse()
        .map_err(|_| user_error(400, format!("{segment:?} is not an id")))
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
}

/// Answers one v1 request (`segments` after `v1`), authorized already. A JSON string answer
/// is sent as `text/plain`.
pub fn route(
    store: &mut Store,
    method: &str,
    segments: &[&str],
    query: &str,
    body: &[u8],
) -> Answer {
    let parsed = || -> Result<Value, Answer> {
        serde_json::from_slice(body)
            .map_err(|e| user_error(400, format!("the body is not valid JSON: {e}")))
    };
    let result: Result<Answer, Answer> = (|| {
        match (method, segments) {
        ("GET", ["client-statuses"]) => Ok((
            200,
            Value::Array(
                STATUSES
                    .iter()
                    .map(|(id, code, description, _)| json!({"id": id, "code": code, "description": description}))
                    .collect(),
            ),
        )),
        ("POST", ["clients"]) => {
            let fields = client_fields(&parsed()?).map_err(refusal)?;
            let created = store.create_checked(Object::Client, &fields).map_err(refusal)?;
            let index = store.index_of_uuid(Object::Client, created["uuid"].as_str().unwrap_or_default());
            Ok((201, client_view(store.record(Object::Client, index.expect("just created")))))
        }
        ("GET", ["clients"]) => {
            let Some(external) = query_param(query, "externalId") else {
                return Err(user_error(400, "externalId is required"));
            };
            match store.index_of_key(Object::Client, &external) {
                Some(index) => Ok((200, client_view(store.record(Object::Client, index)))),
                None => Err(user_error(404, format!("no client has externalId {external:?}"))),
            }
        }
        ("GET", ["clients", id]) => {
            let index = client_index(store, id)?;
            Ok((200, client_view(store.record(Object::Client, index))))
        }
        ("PUT", ["clients", id]) => {
            let index = client_index(store, id)?;
            let fields = client_fields(&parsed()?).map_err(refusal)?;
            store.replace(Object::Client, index, &fields).map_err(refusal)?;
            Ok((200, client_view(store.record(Object::Client, index))))
        }
        ("POST", ["clients", id, "contacts"]) => {
            let parent = client_index(store, id)?;
            let uuid = store.record(Object::Client, parent)["uuid"].as_str().unwrap_or_default().to_owned();
            let fields = contact_fields(&parsed()?, &uuid).map_err(refusal)?;
            let created = store.create_checked(Object::Contact, &fields).map_err(refusal)?;
            let index = store.index_of_uuid(Object::Contact, created["uuid"].as_str().unwrap_or_default());
            // v1 answers a created contact with 200, not 201.
            Ok((200, contact_view(store, store.record(Object::Contact, index.expect("just created")))))
        }
        ("PUT", ["clients", client, "contacts", id, "details"]) => {
            let parent = client_index(store, client)?;
            let index = store
                .index_of_id(Object::Contact, integer(id)?)
                .ok_or_else(|| user_error(404, format!("no contact with id {id}")))?;
            let uuid = store.record(Object::Client, parent)["uuid"].as_str().unwrap_or_default().to_owned();
            if store.record(Object::Contact, index)["clientId"] != json!(uuid) {
                return Err(user_error(404, format!("client {client} has no contact {id}")));
            }
            let fields = contact_fields(&parsed()?, &uuid).map_err(refusal)?;
            store.replace(Object::Contact, index, &fields).map_err(refusal)?;
            Ok((200, contact_view(store, store.record(Object::Contact, index))))
        }
        ("GET", ["contacts"]) => {
            let (Some(external), Some(email)) = (query_param(query, "clientExternalId"), query_param(query, "email")) else {
                return Err(user_error(400, "clientExternalId and email are required"));
            };
            let parent = store
                .index_of_key(Object::Client, &external)
                .map(|i| store.record(Object::Client, i)["uuid"].clone());
            let found = store.records_of(Object::Contact).iter().find(|c| {
                Some(&c["clientId"]) == parent.as_ref()
                    && c.get("email").and_then(Value::as_str).is_some_and(|e| e.eq_ignore_ascii_case(&email))
            });
            // None found: 200 with a `null` body, as recorded.
            Ok((200, found.map_or(Value::Null, |c| contact_view(store, c))))
        }
        ("GET", ["contacts", "search"]) => {
            let term = query_param(query, "term").unwrap_or_default().to_lowercase();
            let found: Vec<Value> = store
                .records_of(Object::Contact)
                .iter()
                .filter(|c| {
                    ["email", "firstName", "lastName"].iter().any(|f| {
                        c.get(*f).and_then(Value::as_str).is_some_and(|v| v.to_lowercase().contains(&term))
                    })
                })
                .map(|c| contact_view(store, c))
                .collect();
            Ok((200, Value::Array(found)))
        }
        ("PATCH", ["customfield", "value", "client", id]) => {
            let index = client_index(store, id)?;
            let Value::Object(values) = parsed()? else {
                return Err(user_error(417, "the body must map field keys to values"));
            };
            store.set_custom(Object::Client, index, &values).map_err(refusal)?;
            Ok((200, json!("Update successful")))
        }
        (_, ["clients" | "contacts" | "client-statuses" | "customfield", ..]) => {
            Err(user_error(405, format!("{method} is not supported on this path")))
        }
        _ => Err(user_error(404, "no such endpoint")),
    }
    })();
    result.unwrap_or_else(|error| error)
}

fn client_index(store: &Store, id: &str) -> Result<usize, Answer> {
    store
        .index_of_id(Object::Client, integer(id)?)
        .ok_or_else(|| user_error(404, format!("no client with id {id}")))
}
