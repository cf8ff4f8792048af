//! How Trackops's stored records compare with rows: values as they are (a null is an empty
//! string, numbers by value), a client's primary location sent with its create only.

use crate::objects::{TrackopsObject, LOCATION_COLUMNS};
use engine::reconcile::Rules;

/// Trackops compares values as they are: a null is an empty string, numbers by value. A
/// client's primary location goes with its create only.
struct TrackopsRules {
    create_only: &'static [&'static str],
}

impl Rules for TrackopsRules {
    fn create_only(&self, field: &str) -> bool {
        self.create_only.contains(&field)
    }
}

const CLIENT_RULES: TrackopsRules = TrackopsRules {
    create_only: &LOCATION_COLUMNS,
};
const RULES: TrackopsRules = TrackopsRules { create_only: &[] };

/// How `object`'s rows compare with its records.
pub fn of(object: TrackopsObject) -> &'static dyn Rules {
    match object {
        TrackopsObject::Client => &CLIENT_RULES,
        _ => &RULES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map, Value};

    #[test]
    fn only_what_differs_is_sent_and_a_clients_location_only_on_create() {
        let current: Map<String, Value> = serde_json::from_str(
            r#"{"id":1,"name":"Acme","website":"https://a.example","notes":"x"}"#,
        )
        .unwrap();
        let desired: Map<String, Value> = serde_json::from_str(
            r#"{"name":"Acme","website":"https://b.example","city":null,"zip":"12345"}"#,
        )
        .unwrap();
        assert_eq!(
            Value::Object(engine::reconcile::changes(
                &desired,
                &current,
                &CLIENT_RULES
            )),
            json!({"website": "https://b.example"})
        );
        let clearing: Map<String, Value> = serde_json::from_str(r#"{"notes":null}"#).unwrap();
        assert_eq!(
            Value::Object(engine::reconcile::changes(&clearing, &current, &RULES)),
            json!({"notes": null})
        );
    }
}
