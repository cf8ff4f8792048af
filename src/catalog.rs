//! What this destination can write: objects × modes, each with its JSON schema and matching keys.
//!
//! `discover` prints these operations, and `write` validates records against the very same
//! `operation_schema` values, so what is published is what is enforced.

use crate::clientsuccess::custom::{CustomField, CustomFields};
use crate::objects::{Client, Contact, Contract};
use crate::protocol::{DestinationCatalog, DestinationOperation, DestinationSyncMode};
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
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

    /// 0, 1, 2: for per-object arrays.
    pub fn index(self) -> usize {
        match self {
            Self::Client => 0,
            Self::Contact => 1,
            Self::Contract => 2,
        }
    }

    /// The name used in the API's paths and in the catalog's `object_name`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Contact => "contact",
            Self::Contract => "contract",
        }
    }

    /// Accepts `client`, `Clients`, `CONTACT`...: singular or plural, any case.
    pub fn parse(name: &str) -> Option<Self> {
        let lower = name.trim().to_ascii_lowercase();
        let singular = lower.strip_suffix('s').unwrap_or(&lower);
        Self::ALL.into_iter().find(|kind| kind.name() == singular)
    }

    /// The base schema, every field optional, straight from the struct.
    pub fn base_schema(self) -> Value {
        match self {
            Self::Client => schema_of::<Client>(),
            Self::Contact => schema_of::<Contact>(),
            Self::Contract => schema_of::<Contract>(),
        }
    }

    /// Whether the API has a bulk insert route for this object (contracts have none).
    pub fn has_bulk_insert(self) -> bool {
        !matches!(self, Self::Contract)
    }

    /// The two ways a record names its parent client: its uuid, or its natural key (which the
    /// connector resolves). Clients have no parent.
    pub fn parent_fields(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Client => None,
            Self::Contact | Self::Contract => Some(("clientId", "clientExternalId")),
        }
    }

    /// The object a record of this one belongs to.
    pub fn parent(self) -> Option<ObjectKind> {
        self.parent_fields().map(|_| Self::Client)
    }

    /// The fields ClientSuccess matches an upsert on, in order: the first one a record carries
    /// is used (a client without externalId is matched on its name).
    pub fn natural_keys(self) -> &'static [&'static str] {
        match self {
            Self::Client => &["externalId", "name"],
            Self::Contact => &["email"],
            Self::Contract => &["externalId"],
        }
    }

    /// A natural key's value as the API compares it: emails without regard to case.
    pub fn normalize_key(self, field: &str, value: &str) -> String {
        if field == "email" {
            value.to_ascii_lowercase()
        } else {
            value.to_owned()
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteMode {
    Insert,
    Update,
    Upsert,
}

impl WriteMode {
    pub const ALL: [WriteMode; 3] = [Self::Insert, Self::Update, Self::Upsert];

    pub fn sync_mode(self) -> DestinationSyncMode {
        match self {
            Self::Insert => DestinationSyncMode::Append,
            Self::Update => DestinationSyncMode::Update,
            Self::Upsert => DestinationSyncMode::AppendDedup,
        }
    }

    pub fn from_sync_mode(mode: &str) -> Option<Self> {
        match mode {
            "append" => Some(Self::Insert),
            "update" => Some(Self::Update),
            "append_dedup" => Some(Self::Upsert),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Insert => "insert",
            Self::Update => "update",
            Self::Upsert => "upsert",
        }
    }
}

impl fmt::Display for WriteMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Draft-07 with every subschema inlined: Airbyte's UI and the platform read no `$ref`.
pub fn schema_settings() -> SchemaSettings {
    SchemaSettings::draft07().with(|s| s.inline_subschemas = true)
}

fn schema_of<T: JsonSchema>() -> Value {
    let mut schema = schema_settings()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    drop_nonstandard_formats(&mut schema);
    schema
}

/// Removes the `format`s schemars derives from Rust integer and float types (`uint64`,
/// `int32`, `double`...): JSON Schema does not define them and Airbyte's UI does not read them;
/// the ranges they imply are already `minimum`/`maximum`.
pub fn drop_nonstandard_formats(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let nonstandard = map.get("format").and_then(Value::as_str).is_some_and(|f| {
                matches!(
                    f,
                    "uint"
                        | "uint8"
                        | "uint16"
                        | "uint32"
                        | "uint64"
                        | "uint128"
                        | "int"
                        | "int8"
                        | "int16"
                        | "int32"
                        | "int64"
                        | "int128"
                        | "float"
                        | "double"
                )
            });
            if nonstandard {
                map.remove("format");
            }
            map.values_mut().for_each(drop_nonstandard_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nonstandard_formats),
        _ => {}
    }
}

/// Fields a record must carry in this mode, per the API contract.
pub fn required_fields(object: ObjectKind, mode: WriteMode) -> &'static [&'static str] {
    match (object, mode) {
        (_, WriteMode::Update) => &["uuid"],
        (ObjectKind::Client, _) => &["name"],
        // Their parent is required too, as one of two fields: see `operation_schema`.
        (ObjectKind::Contact | ObjectKind::Contract, _) => &[],
    }
}

/// Natural keys the API matches on, as the catalog's `matching_keys`.
pub fn matching_keys(object: ObjectKind, mode: WriteMode) -> Option<Vec<Vec<String>>> {
    let keys: &[&str] = match mode {
        WriteMode::Insert => return None,
        WriteMode::Update => &["uuid"],
        WriteMode::Upsert => object.natural_keys(),
    };
    Some(keys.iter().map(|k| vec![(*k).to_owned()]).collect())
}

/// The schema a record of `object` must satisfy in `mode`: the struct's schema with the mode's
/// required fields made required and non-null.
pub fn operation_schema(object: ObjectKind, mode: WriteMode) -> Value {
    let mut schema = object.base_schema();
    let required = required_fields(object, mode);
    for field in required {
        let property = &mut schema["properties"][*field];
        if let Some(Value::Array(types)) = property.get_mut("type") {
            types.retain(|t| t != "null");
            if types.len() == 1 {
                property["type"] = types[0].clone();
            }
        }
    }
    schema["required"] = json!(required);
    if let Some((by_id, by_key)) = object.parent_fields() {
        schema["allOf"] = if mode == WriteMode::Update {
            // Moving a record to another client is optional, but by one field only.
            json!([{"not": {"required": [by_id, by_key]}}])
        } else {
            json!([{"oneOf": [{"required": [by_id]}, {"required": [by_key]}]}])
        };
    }
    schema["title"] = json!(format!("ClientSuccess {object} ({mode})"));
    schema
}

/// [`operation_schema`] with the account's custom fields: each a typed top-level property
/// (mappable column by column, folded into `custom` by `write`), and `custom` itself typed.
/// Returns the schema and the custom keys published at the top level.
pub fn operation_schema_with(
    object: ObjectKind,
    mode: WriteMode,
    custom: &[CustomField],
) -> (Value, Vec<String>) {
    let mut schema = operation_schema(object, mode);
    if custom.is_empty() {
        return (schema, Vec::new());
    }
    let mut top_level = Vec::new();
    let mut nested = serde_json::Map::new();
    for field in custom {
        let value = field.value_schema();
        nested.insert(field.field_key.clone(), value.clone());
        // A key that is also a standard field stays reachable through `custom` only.
        if schema["properties"].get(&field.field_key).is_none() {
            schema["properties"][&field.field_key] = value;
            top_level.push(field.field_key.clone());
            // A field the account requires must be mapped to create a record.
            if field.required && mode == WriteMode::Insert {
                if let Some(required) = schema["required"].as_array_mut() {
                    required.push(json!(field.field_key));
                }
            }
        }
    }
    let property = &mut schema["properties"]["custom"];
    property["properties"] = Value::Object(nested);
    property["additionalProperties"] = json!(false);
    (schema, top_level)
}

/// The DESTINATION_CATALOG `discover` prints, typed with the account's custom fields.
pub fn destination_catalog_with(custom: &CustomFields) -> DestinationCatalog {
    let operations = ObjectKind::ALL
        .into_iter()
        .flat_map(|object| {
            WriteMode::ALL
                .into_iter()
                .map(move |mode| DestinationOperation {
                    object_name: object.name().to_owned(),
                    sync_mode: mode.sync_mode(),
                    json_schema: operation_schema_with(object, mode, custom.of(object)).0,
                    matching_keys: matching_keys(object, mode),
                })
        })
        .collect();
    DestinationCatalog { operations }
}

/// The DESTINATION_CATALOG without the account's custom fields: every object in every mode.
pub fn destination_catalog() -> DestinationCatalog {
    destination_catalog_with(&CustomFields::default())
}

#[cfg(test)]
mod tests {
    use super::*;

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
