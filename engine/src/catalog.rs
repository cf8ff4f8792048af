//! What a destination writes, described once: its objects (the [`Object`] trait), the three
//! write modes, and the per-mode JSON schemas and matching keys derived from them, which
//! `discover` publishes and `write` enforces.

use crate::json::Members;
use crate::protocol::{DestinationCatalog, DestinationOperation, DestinationSyncMode};
use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Value};
use std::fmt;
use std::hash::Hash;

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

/// One of a destination's objects: everything the pipeline, the catalog and the error
/// messages need to know about it. Implemented by a small `Copy` enum per destination.
pub trait Object: Copy + Eq + Hash + fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// The platform's name, for schema titles and messages ("not a field of a <platform> <object>").
    const PLATFORM: &'static str;
    /// Every object, each parent before its children.
    const ALL: &'static [Self];
    /// The object into which custom-field columns are folded (`custom`, `customAttributes`).
    const CUSTOM_CONTAINER: &'static str;

    /// The name in the catalog's `object_name`.
    fn name(self) -> &'static str;

    /// The base schema, every field optional, from the object's Rust struct ([`schema_of`]).
    fn base_schema(self) -> Value;

    /// Fields a record must carry in this mode, by the API's rules.
    fn required_fields(self, mode: WriteMode) -> &'static [&'static str];

    /// The field an update names its record by.
    fn id_field(self) -> &'static str;

    /// Whether an update's id travels in the request path, so it is taken out of the body.
    fn id_in_path(self) -> bool {
        true
    }

    /// The fields an upsert matches on, in order: the first one a record carries is used.
    fn natural_keys(self) -> &'static [&'static str];

    /// A natural key's value as the API compares it (emails without regard to case, say).
    fn normalize_key(self, _field: &str, value: &str) -> String {
        value.to_owned()
    }

    /// The object a record of this one belongs to; its writes of a sync go first.
    fn parent(self) -> Option<Self> {
        None
    }

    /// The object [`Object::parent_fields`] name, for messages: the parent, unless a record
    /// names an ancestor and the destination finds the parent from it.
    fn names_parent(self) -> Option<Self> {
        self.parent()
    }

    /// The two fields by which a record names its parent: by the parent's id, or by its
    /// natural key; a create needs exactly one. `None` when naming the parent is optional.
    fn parent_fields(self) -> Option<(&'static str, &'static str)> {
        None
    }

    /// The field naming a parent that this sync may still be writing: a record carrying it
    /// waits until the parent's writes in flight have landed.
    fn waits_for_parent(self) -> Option<&'static str> {
        self.parent_fields().map(|(_, by_key)| by_key)
    }

    /// Turns a valid record's fields into the body the API takes (defaults filled in, values
    /// converted). Returns whether anything changed; `Err` rejects the record with the reason.
    fn shape(
        self,
        _mode: WriteMode,
        _fields: &mut Members,
        _custom: &[CustomColumn],
    ) -> Result<bool, String> {
        Ok(false)
    }

    /// The modes this object offers.
    fn modes(self) -> &'static [WriteMode] {
        &WriteMode::ALL
    }

    /// The object's position in [`Object::ALL`]: for per-object arrays.
    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|o| *o == self)
            .expect("every object is in ALL")
    }

    /// Accepts `person`, `Persons`, `PERSON`...: singular or plural, any case.
    fn parse(name: &str) -> Option<Self> {
        let lower = name.trim().to_ascii_lowercase();
        let singular = lower.strip_suffix('s').unwrap_or(&lower);
        Self::ALL.iter().copied().find(|o| o.name() == singular)
    }
}

/// A custom field the account defines, as a typed top-level column of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomColumn {
    /// Its key in the API (the column's name).
    pub key: String,
    /// The JSON schema of its value.
    pub schema: Value,
    /// Whether the account requires it to create a record.
    pub required_to_insert: bool,
    /// The platform's name for its type (`DATE_TIME`...), for [`Object::shape`].
    pub kind: String,
}

/// Each object's custom columns, as an account defines them.
#[derive(Debug, Clone, Default)]
pub struct CustomColumns {
    by_object: Vec<(&'static str, Vec<CustomColumn>)>,
}

impl CustomColumns {
    pub fn set<O: Object>(&mut self, object: O, columns: Vec<CustomColumn>) {
        self.by_object.retain(|(name, _)| *name != object.name());
        self.by_object.push((object.name(), columns));
    }

    pub fn of<O: Object>(&self, object: O) -> &[CustomColumn] {
        self.by_object
            .iter()
            .find(|(name, _)| *name == object.name())
            .map_or(&[], |(_, columns)| columns)
    }
}

/// Draft-07 with every subschema inlined: Airbyte's UI and the platform read no `$ref`.
pub fn schema_settings() -> SchemaSettings {
    SchemaSettings::draft07().with(|s| s.inline_subschemas = true)
}

/// A Rust type's JSON schema as the catalog publishes it.
pub fn schema_of<T: JsonSchema>() -> Value {
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

/// Natural keys the API matches on, as the catalog's `matching_keys`.
pub fn matching_keys<O: Object>(object: O, mode: WriteMode) -> Option<Vec<Vec<String>>> {
    let id = [object.id_field()];
    let keys: &[&str] = match mode {
        WriteMode::Insert => return None,
        WriteMode::Update => &id,
        WriteMode::Upsert => object.natural_keys(),
    };
    Some(keys.iter().map(|k| vec![(*k).to_owned()]).collect())
}

/// The schema a record of `object` must satisfy in `mode`: the struct's schema with the mode's
/// required fields made required and non-null.
pub fn operation_schema<O: Object>(object: O, mode: WriteMode) -> Value {
    let mut schema = object.base_schema();
    let required = object.required_fields(mode);
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
            // Moving a record to another parent is optional, but by one field only.
            json!([{"not": {"required": [by_id, by_key]}}])
        } else {
            json!([{"oneOf": [{"required": [by_id]}, {"required": [by_key]}]}])
        };
    }
    schema["title"] = json!(format!("{} {object} ({mode})", O::PLATFORM));
    schema
}

/// [`operation_schema`] with the account's custom fields: each a typed top-level property
/// (mappable column by column, folded into the custom container by `write`), and the
/// container itself typed. Returns the schema and the custom keys published at the top level.
pub fn operation_schema_with<O: Object>(
    object: O,
    mode: WriteMode,
    custom: &[CustomColumn],
) -> (Value, Vec<String>) {
    let mut schema = operation_schema(object, mode);
    if custom.is_empty() {
        return (schema, Vec::new());
    }
    let mut top_level = Vec::new();
    let mut nested = serde_json::Map::new();
    for field in custom {
        nested.insert(field.key.clone(), field.schema.clone());
        // A key that is also a standard field stays reachable through the container only.
        if schema["properties"].get(&field.key).is_none() {
            schema["properties"][&field.key] = field.schema.clone();
            top_level.push(field.key.clone());
            // A field the account requires must be mapped to create a record.
            if field.required_to_insert && mode == WriteMode::Insert {
                if let Some(required) = schema["required"].as_array_mut() {
                    required.push(json!(field.key));
                }
            }
        }
    }
    let property = &mut schema["properties"][O::CUSTOM_CONTAINER];
    property["properties"] = Value::Object(nested);
    property["additionalProperties"] = json!(false);
    (schema, top_level)
}

/// The DESTINATION_CATALOG `discover` prints: every object in each of its modes, typed with
/// the account's custom fields.
pub fn destination_catalog<O: Object>(custom: &CustomColumns) -> DestinationCatalog {
    let operations = O::ALL
        .iter()
        .flat_map(|&object| {
            object
                .modes()
                .iter()
                .map(move |&mode| DestinationOperation {
                    object_name: object.name().to_owned(),
                    sync_mode: mode.sync_mode(),
                    json_schema: operation_schema_with(object, mode, custom.of(object)).0,
                    matching_keys: matching_keys(object, mode),
                })
        })
        .collect();
    DestinationCatalog { operations }
}
