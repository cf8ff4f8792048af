//! Custom field definitions (`GET /v2/customfield/all/{CLIENT|CONTACT|CONTRACT}`): read once,
//! published as typed top-level properties in `discover`, and checked by `write`, which folds
//! those columns back into the record's `custom` object.

use super::http::{ApiClient, ApiRequest, Reply};
use crate::catalog::{Object, ObjectKind};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

/// One custom field as ClientSuccess defines it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomField {
    pub field_key: String,
    #[serde(default)]
    pub field_label: Option<String>,
    pub field_type_name: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub picklist_values: Vec<Value>,
}

impl CustomField {
    /// The JSON schema of a value of this field; null always allowed (a null is not sent).
    pub fn value_schema(&self) -> Value {
        let mut schema = match self.field_type_name.as_str() {
            "INTEGER" => json!({"type": ["integer", "null"]}),
            "DECIMAL" => json!({"type": ["number", "null"]}),
            "BOOLEAN" => json!({"type": ["boolean", "null"]}),
            "DATE" => json!({"type": ["string", "null"], "format": "date"}),
            "PICKLIST" => {
                let mut options = self.picklist_values.clone();
                options.push(Value::Null);
                json!({"type": ["string", "null"], "enum": options})
            }
            // STRING, and any type this connector does not know yet: sent as text.
            _ => json!({"type": ["string", "null"]}),
        };
        let label = self.field_label.as_deref().unwrap_or(&self.field_key);
        schema["title"] = json!(label);
        schema["description"] = json!(format!(
            "Custom field {label} (`{}`, {}{}), written into the record's `custom` object.",
            self.field_key,
            self.field_type_name,
            if self.required { ", required" } else { "" }
        ));
        schema
    }
}

/// The custom fields of each object, as read from the account.
#[derive(Debug, Clone, Default)]
pub struct CustomFields {
    by_object: [Vec<CustomField>; 3],
}

impl CustomFields {
    /// Every object's fields as the engine's typed columns.
    pub fn columns(&self) -> crate::catalog::CustomColumns {
        let mut columns = crate::catalog::CustomColumns::default();
        for object in ObjectKind::ALL {
            columns.set(object, crate::catalog::custom_columns(self.of(object)));
        }
        columns
    }

    pub fn of(&self, object: ObjectKind) -> &[CustomField] {
        &self.by_object[object.index()]
    }

    /// Reads the definitions of `objects`. Any failure is an error naming the route and why:
    /// callers fall back to the static schemas and say so.
    pub async fn read(client: &ApiClient, objects: &[ObjectKind]) -> Result<Self, String> {
        // All objects at once: each read is a round trip before the first record goes out.
        let reads = objects.iter().map(|&object| async move {
            let resource = object.name().to_ascii_uppercase();
            let request = ApiRequest::v2(Method::GET, format!("/customfield/all/{resource}"), None);
            let reply = client
                .send(&request)
                .await
                .map_err(|e| e.message().to_owned())?;
            let body = match reply {
                Reply::Success { body, .. } => body,
                Reply::Refused { status, message } => {
                    return Err(format!("{request} answered {status}: {message}"))
                }
                Reply::Unknown { reason, .. } => return Err(reason),
            };
            let definitions: Vec<CustomField> = serde_json::from_slice(&body)
                .map_err(|e| format!("{request} answered something that is not a list of custom field definitions: {e}"))?;
            Ok((object, definitions))
        });
        let mut fields = Self::default();
        for (object, definitions) in futures_util::future::try_join_all(reads).await? {
            fields.by_object[object.index()] = definitions;
        }
        Ok(fields)
    }
}
