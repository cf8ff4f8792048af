//! Everything that knows ClientSuccess: routes, bodies, status codes, auth, retries, lookups,
//! which of the three write surfaces an account offers, the v1 translation, and the defaults a
//! created client gets. The write pipeline sees only [`ClientSuccessWriter`], a
//! [`crate::write::Writer`].

pub mod custom;
pub mod http;
pub mod surface;
pub mod v1;
pub mod writer;

pub use http::ApiClient;
pub use surface::{ApiSurface, SurfacePlan};
pub use writer::ClientSuccessWriter;

use crate::catalog::{ObjectKind, WriteMode};
use crate::json::{Doc, Members};

/// ClientSuccess requires `status` and `active` to create a client. On insert a missing
/// `status` is sent as `ACTIVE`, and a missing `active` as whether the status is `ACTIVE` or
/// `TRIAL`. Upserts and updates get nothing filled in: it could overwrite what the client has.
/// Returns whether a field was added.
pub fn fill_create_defaults(object: ObjectKind, mode: WriteMode, fields: &mut Members) -> bool {
    if object != ObjectKind::Client || mode != WriteMode::Insert {
        return false;
    }
    let mut added = false;
    if !fields.contains_key("status") {
        fields.insert("status", Doc::String("ACTIVE".into()));
        added = true;
    }
    if !fields.contains_key("active") {
        let active = matches!(
            fields.get("status").and_then(Doc::as_str),
            Some("ACTIVE" | "TRIAL")
        );
        fields.insert("active", Doc::Bool(active));
        added = true;
    }
    added
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn members(json: &str) -> Members<'_> {
        match Doc::parse(json).unwrap() {
            Doc::Object(members) => members,
            _ => unreachable!(),
        }
    }

    #[test]
    fn inserted_clients_get_status_and_active_and_nothing_else_does() {
        let mut fields = members(r#"{"name":"A"}"#);
        assert!(fill_create_defaults(
            ObjectKind::Client,
            WriteMode::Insert,
            &mut fields
        ));
        assert_eq!(
            Doc::Object(fields).to_value(),
            json!({"name": "A", "status": "ACTIVE", "active": true})
        );
        let mut terminated = members(r#"{"status":"TERMINATED"}"#);
        fill_create_defaults(ObjectKind::Client, WriteMode::Insert, &mut terminated);
        assert_eq!(terminated.get("active"), Some(&Doc::Bool(false)));
        let mut upsert = Members::default();
        assert!(!fill_create_defaults(
            ObjectKind::Client,
            WriteMode::Upsert,
            &mut upsert
        ));
        assert!(!fill_create_defaults(
            ObjectKind::Contact,
            WriteMode::Insert,
            &mut upsert
        ));
        assert!(upsert.is_empty());
    }
}
