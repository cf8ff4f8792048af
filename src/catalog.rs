//! What this destination can write: objects × modes, each with its JSON schema and matching keys.
//!
//! `discover` prints these operations, and `write` validates records against the very same
//! `operation_schema` values, so what is published is what is enforced.

use crate::objects::{Client, Contact, Contract};
pub use engine::catalog::{
    drop_nonstandard_formats, matching_keys, operation_schema, schema_of, schema_settings,
    CustomColumn, CustomColumns, Object, WriteMode,
};
use engine::json::{Doc, Members};
use engine::protocol::DestinationCatalog;
use serde::Deserialize;
use serde_json::{json, Value};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Client,
    Contact,
    Contract,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 3] = [Self::Client, Self::Contact, Self::Contract];

    /// Accepts `client`, `Clients`, `CONTACT`...: singular or plural, any case.
    pub fn parse(name: &str) -> Option<Self> {
        <Self as Object>::parse(name)
    }

    /// The name used in the API's paths and in the catalog's `object_name`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Contact => "contact",
            Self::Contract => "contract",
        }
    }

    /// The base schema, every field optional, straight from the struct.
    pub fn base_schema_of(self) -> Value {
        <Self as Object>::base_schema(self)
    }

    /// Whether the API has a bulk insert route for this object (contracts have none).
    pub fn has_bulk_insert(self) -> bool {
        !matches!(self, Self::Contract)
    }

    /// The two ways a record names its parent client: its uuid, or its natural key (which the
    /// connector resolves). Clients have no parent.
    pub fn parent_fields(self) -> Option<(&'static str, &'static str)> {
        <Self as Object>::parent_fields(self)
    }

    /// The object a record of this one belongs to.
    pub fn parent(self) -> Option<ObjectKind> {
        <Self as Object>::parent(self)
    }

    /// The fields ClientSuccess matches an upsert on, in order: the first one a record carries
    /// is used (a client without externalId is matched on its name).
    pub fn natural_keys(self) -> &'static [&'static str] {
        <Self as Object>::natural_keys(self)
    }
}

impl Object for ObjectKind {
    const PLATFORM: &'static str = "ClientSuccess";
    const ALL: &'static [Self] = &Self::ALL;
    const CUSTOM_CONTAINER: &'static str = "custom";

    fn name(self) -> &'static str {
        ObjectKind::name(self)
    }

    fn base_schema(self) -> Value {
        match self {
            Self::Client => schema_of::<Client>(),
            Self::Contact => schema_of::<Contact>(),
            Self::Contract => schema_of::<Contract>(),
        }
    }

    fn required_fields(self, mode: WriteMode) -> &'static [&'static str] {
        match (self, mode) {
            (_, WriteMode::Update) => &["uuid"],
            (Self::Client, _) => &["name"],
            // Their parent is required too, as one of two fields: see `operation_schema`.
            (Self::Contact | Self::Contract, _) => &[],
        }
    }

    fn id_field(self) -> &'static str {
        "uuid"
    }

    fn natural_keys(self) -> &'static [&'static str] {
        match self {
            Self::Client => &["externalId", "name"],
            Self::Contact => &["email"],
            Self::Contract => &["externalId"],
        }
    }

    /// Emails are compared without regard to case.
    fn normalize_key(self, field: &str, value: &str) -> String {
        if field == "email" {
            value.to_ascii_lowercase()
        } else {
            value.to_owned()
        }
    }

    fn parent(self) -> Option<Self> {
        self.parent_fields().map(|_| Self::Client)
    }

    fn parent_fields(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Client => None,
            Self::Contact | Self::Contract => Some(("clientId", "clientExternalId")),
        }
    }

    fn shape(
        self,
        mode: WriteMode,
        fields: &mut Members,
        _custom: &[CustomColumn],
    ) -> Result<bool, String> {
        Ok(fill_create_defaults(self, mode, fields))
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Fields a record must carry in this mode, per the API contract.
pub fn required_fields(object: ObjectKind, mode: WriteMode) -> &'static [&'static str] {
    object.required_fields(mode)
}

/// The account's custom fields of one object as the engine's typed columns.
pub fn custom_columns(custom: &[CustomField]) -> Vec<CustomColumn> {
    custom
        .iter()
        .map(|field| CustomColumn {
            key: field.field_key.clone(),
            schema: field.value_schema(),
            required_to_insert: field.required,
            kind: field.field_type_name.clone(),
        })
        .collect()
}

/// [`operation_schema`] with the account's custom fields of that object.
pub fn operation_schema_with(
    object: ObjectKind,
    mode: WriteMode,
    custom: &[CustomField],
) -> (Value, Vec<String>) {
    engine::catalog::operation_schema_with(object, mode, &custom_columns(custom))
}

/// The DESTINATION_CATALOG `discover` prints, typed with the account's custom fields.
pub fn destination_catalog_with(custom: &CustomFields) -> DestinationCatalog {
    engine::catalog::destination_catalog::<ObjectKind>(&custom.columns())
}

/// The DESTINATION_CATALOG without the account's custom fields: every object in every mode.
pub fn destination_catalog() -> DestinationCatalog {
    destination_catalog_with(&CustomFields::default())
}

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
    pub fn columns(&self) -> CustomColumns {
        let mut columns = CustomColumns::default();
        for object in ObjectKind::ALL {
            columns.set(object, custom_columns(self.of(object)));
        }
        columns
    }

    pub fn of(&self, object: ObjectKind) -> &[CustomField] {
        &self.by_object[object.index()]
    }

    pub fn set(&mut self, object: ObjectKind, fields: Vec<CustomField>) {
        self.by_object[object.index()] = fields;
    }
}

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

    use super::*;
    use engine::protocol::DestinationSyncMode;
    use serde_json::json;

    fn validator(object: ObjectKind, mode: WriteMode) -> jsonschema::Validator {
        jsonschema::options()
            .should_validate_formats(true)
            .build(&operation_schema(object, mode))
            .unwrap()
    }

    #[test]
    fn object_names_parse_singular_plural_any_case() {
        assert_eq!(ObjectKind::parse("Clients"), Some(ObjectKind::Client));
        assert_eq!(ObjectKind::parse("CONTACT"), Some(ObjectKind::Contact));
        assert_eq!(ObjectKind::parse("contracts"), Some(ObjectKind::Contract));
        assert_eq!(ObjectKind::parse("deals"), None);
    }

    #[test]
    fn schemas_carry_the_contract_rules() {
        let client = operation_schema(ObjectKind::Client, WriteMode::Insert);
        assert_eq!(client["additionalProperties"], json!(false));
        assert_eq!(client["properties"]["name"]["maxLength"], json!(255));
        assert_eq!(client["properties"]["name"]["type"], json!("string"));
        assert_eq!(client["properties"]["npsScore"]["minimum"], json!(-100));
        assert_eq!(client["properties"]["npsScore"]["maximum"], json!(100));
        assert_eq!(
            client["properties"]["inceptionDate"]["format"],
            json!("date")
        );
        assert_eq!(client["required"], json!(["name"]));
        let text = client.to_string();
        assert!(text.contains("TERMINATED"), "status enum missing: {text}");
        assert!(!text.contains("$ref"), "subschemas must be inlined");
        let update = operation_schema(ObjectKind::Contract, WriteMode::Update);
        assert_eq!(update["required"], json!(["uuid"]));
        assert_eq!(update["properties"]["amount"]["minimum"], json!(0));
    }

    #[test]
    fn custom_fields_become_typed_properties_and_required_ones_are_required_to_insert() {
        let fields: Vec<CustomField> = serde_json::from_value(json!([
            {"fieldKey": "tier__cs", "fieldLabel": "Tier", "fieldTypeName": "PICKLIST", "required": true, "picklistValues": ["A", "B"]},
            {"fieldKey": "seats__cs", "fieldLabel": "Seats", "fieldTypeName": "INTEGER", "required": false},
            {"fieldKey": "name", "fieldLabel": "Clash", "fieldTypeName": "STRING"}
        ]))
        .unwrap();
        let (insert, top) = operation_schema_with(ObjectKind::Client, WriteMode::Insert, &fields);
        assert_eq!(
            top,
            ["tier__cs", "seats__cs"],
            "a clash with a standard field stays nested"
        );
        assert_eq!(insert["properties"]["tier__cs"]["title"], "Tier");
        assert_eq!(
            insert["properties"]["tier__cs"]["enum"],
            json!(["A", "B", null])
        );
        assert_eq!(
            insert["properties"]["seats__cs"]["type"],
            json!(["integer", "null"])
        );
        assert_eq!(insert["required"], json!(["name", "tier__cs"]));
        assert_eq!(
            insert["properties"]["custom"]["additionalProperties"],
            false
        );
        let (upsert, _) = operation_schema_with(ObjectKind::Client, WriteMode::Upsert, &fields);
        assert_eq!(upsert["required"], json!(["name"]));
    }

    #[test]
    fn validators_enforce_required_types_lengths_enums_and_dates() {
        let insert = validator(ObjectKind::Client, WriteMode::Insert);
        assert!(insert
            .is_valid(&json!({"name": "Acme", "status": "TRIAL", "inceptionDate": "2024-02-29"})));
        assert!(
            !insert.is_valid(&json!({"status": "ACTIVE"})),
            "name required"
        );
        assert!(
            !insert.is_valid(&json!({"name": null})),
            "required name is not nullable"
        );
        assert!(!insert.is_valid(&json!({"name": "x".repeat(256)})));
        assert!(!insert.is_valid(&json!({"name": "A", "status": "GONE"})));
        assert!(!insert.is_valid(&json!({"name": "A", "inceptionDate": "2023-02-29"})));
        assert!(!insert.is_valid(&json!({"name": "A", "npsScore": 101})));
        assert!(
            !insert.is_valid(&json!({"name": "A", "colour": "red"})),
            "unknown field"
        );
        assert!(insert
            .is_valid(&json!({"name": "A", "custom": {"seats__cs": 12, "x": null, "y": "z"}})));
        let contact = validator(ObjectKind::Contact, WriteMode::Upsert);
        assert!(contact.is_valid(&json!({"clientId": "c1", "email": "a@b.co"})));
        assert!(!contact.is_valid(&json!({"clientId": "c1", "email": "not an email"})));
        let update = validator(ObjectKind::Contact, WriteMode::Update);
        assert!(
            !update.is_valid(&json!({"email": "a@b.co"})),
            "uuid required"
        );
    }

    #[test]
    fn schema_and_struct_agree() {
        // A record the schema accepts decodes into the struct, so the two cannot drift apart.
        let record = json!({"name": "Acme", "region": {"id": 1, "name": "EMEA"},
            "accTeamingRoles": [{"employeeId": 1, "roleId": 2}], "custom": {"a": true}});
        assert!(validator(ObjectKind::Client, WriteMode::Insert).is_valid(&record));
        let client: Client = serde_json::from_value(record).unwrap();
        assert_eq!(client.name.as_deref(), Some("Acme"));
    }

    #[test]
    fn catalog_has_nine_operations_with_keys() {
        let catalog = destination_catalog();
        assert_eq!(catalog.operations.len(), 9);
        let upsert_client = catalog
            .operations
            .iter()
            .find(|op| {
                op.object_name == "client" && op.sync_mode == DestinationSyncMode::AppendDedup
            })
            .unwrap();
        assert_eq!(
            upsert_client.matching_keys,
            Some(vec![vec!["externalId".to_owned()], vec!["name".to_owned()]])
        );
    }
}
