//! The v1 API's shapes: `statusId` where v2 has `status`, custom field values written apart,
//! and PUTs that replace the whole record (a field left out becomes null).

use serde_json::{Map, Value};

/// v1's `statusId` for a v2 `status` (`GET /v1/client-statuses`).
pub fn status_id(status: &str) -> Option<u64> {
    match status {
        "ACTIVE" => Some(1),
        "INACTIVE" => Some(2),
        "TRIAL" => Some(3),
        "TERMINATED" => Some(4),
        _ => None,
    }
}

/// Fields v1 answers with that are not written back: ids, and custom values (written through
/// their own route).
const READ_ONLY: &[&str] = &["id", "uuid", "customFieldValues", "custom"];

/// A v2-shaped client → its v1 body and its custom values, which v1 writes through
/// `PATCH /v1/customfield/value/client/{id}`.
pub fn client_body(
    mut fields: Map<String, Value>,
) -> (Map<String, Value>, Option<Map<String, Value>>) {
    if let Some(Value::String(status)) = fields.remove("status") {
        if let Some(id) = status_id(&status) {
            fields.insert("statusId".into(), Value::from(id));
        }
    }
    let custom = match fields.remove("custom") {
        Some(Value::Object(custom)) if !custom.is_empty() => Some(custom),
        _ => None,
    };
    (fields, custom)
}

/// The body of a v1 full-replace PUT: the record as read, the changed fields over it. Sending
/// anything less would null every field the record did not carry.
pub fn merged(whole: &Map<String, Value>, changes: &Map<String, Value>) -> Map<String, Value> {
    let mut body: Map<String, Value> = whole
        .iter()
        .filter(|(k, _)| !READ_ONLY.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in changes {
        body.insert(k.clone(), v.clone());
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn status_becomes_status_id_and_custom_goes_apart() {
        let (body, custom) = client_body(map(
            json!({"name": "A", "status": "TRIAL", "custom": {"seats__cs": 3}}),
        ));
        assert_eq!(Value::Object(body), json!({"name": "A", "statusId": 3}));
        assert_eq!(Value::Object(custom.unwrap()), json!({"seats__cs": 3}));
    }

    #[test]
    fn a_replace_body_keeps_every_field_the_change_did_not_carry() {
        let whole = map(
            json!({"id": 7, "uuid": "cln_1", "name": "A", "city": "Lyon",
            "statusId": 1, "customFieldValues": []}),
        );
        let body = merged(&whole, &map(json!({"city": "Denver"})));
        assert_eq!(
            Value::Object(body),
            json!({"name": "A", "city": "Denver", "statusId": 1})
        );
    }
}
