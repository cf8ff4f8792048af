//! Trackops's three objects as the rows a warehouse holds: Rust structs, the one source of
//! their JSON schemas, and what the engine needs of them (keys, modes, the hierarchy).
//! Clients come before their locations, locations before their contacts.

use crate::config::Settings;
use engine::catalog::{schema_of, Object, WriteMode};
use engine::json::{Doc, Members};
use engine::write::Verdict;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::fmt;

/// A client: a customer of the investigation firm, with its primary location.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Trackops client")]
pub struct Client {
    /// The client's Trackops id. Required to update.
    #[schemars(range(min = 1))]
    pub id: Option<u64>,
    /// The client's name. Required to create.
    #[schemars(length(min = 1, max = 255))]
    pub name: Option<String>,
    /// Your system's id for the client: the natural key for upsert (trimmed, compared exactly).
    #[schemars(length(max = 255))]
    pub account_code: Option<String>,
    /// A URL starting http:// or https://.
    #[schemars(length(max = 255), regex(pattern = r"^https?://"))]
    pub website: Option<String>,
    /// The billing email address.
    #[schemars(length(max = 255), email)]
    pub email_invoice: Option<String>,
    #[schemars(length(max = 65535))]
    pub notes: Option<String>,
    pub has_invoice_reminders: Option<bool>,
    pub show_location_on_invoice: Option<bool>,
    /// The primary location's name, on create (default: the configured default_location_name).
    #[schemars(length(max = 255))]
    pub location_name: Option<String>,
    #[schemars(length(max = 255))]
    pub address_1: Option<String>,
    #[schemars(length(max = 255))]
    pub address_2: Option<String>,
    #[schemars(length(max = 255))]
    pub address_3: Option<String>,
    #[schemars(length(max = 255))]
    pub city: Option<String>,
    /// Two-character state or province code, on create (default: default_state).
    #[schemars(length(min = 2, max = 2))]
    pub state: Option<String>,
    #[schemars(length(max = 255))]
    pub zip: Option<String>,
    /// ISO 3166-1 alpha-2 country code, on create (default: default_country).
    #[schemars(length(min = 2, max = 2))]
    pub country: Option<String>,
    #[schemars(length(max = 255))]
    pub phone_primary: Option<String>,
    #[schemars(length(max = 255))]
    pub phone_secondary: Option<String>,
    #[schemars(length(max = 255))]
    pub phone_fax: Option<String>,
}

/// A location: a branch of a client.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Trackops location")]
pub struct Location {
    /// The location's Trackops id. Required to update.
    #[schemars(range(min = 1))]
    pub id: Option<u64>,
    /// The Trackops id of its client. To create, give this or client_account_code.
    #[schemars(range(min = 1))]
    pub client_id: Option<u64>,
    /// The account_code of its client, which the connector finds (a client of this sync too).
    #[schemars(length(min = 1, max = 255))]
    pub client_account_code: Option<String>,
    /// The location's name: with its client, the natural key (any case).
    #[schemars(length(min = 1, max = 255))]
    pub name: Option<String>,
    /// Whether it becomes the client's primary location (the previous one is demoted).
    pub is_primary: Option<bool>,
    #[schemars(length(max = 255), email)]
    pub email_invoice: Option<String>,
    #[schemars(length(max = 255))]
    pub address_1: Option<String>,
    #[schemars(length(max = 255))]
    pub address_2: Option<String>,
    #[schemars(length(max = 255))]
    pub address_3: Option<String>,
    #[schemars(length(max = 255))]
    pub city: Option<String>,
    /// Two-character state or province code (default: default_state).
    #[schemars(length(min = 2, max = 2))]
    pub state: Option<String>,
    #[schemars(length(max = 255))]
    pub zip: Option<String>,
    /// ISO 3166-1 alpha-2 country code (default: default_country).
    #[schemars(length(min = 2, max = 2))]
    pub country: Option<String>,
    #[schemars(length(max = 255))]
    pub phone_primary: Option<String>,
    #[schemars(length(max = 255))]
    pub phone_secondary: Option<String>,
    #[schemars(length(max = 255))]
    pub phone_fax: Option<String>,
    #[schemars(length(max = 65535))]
    pub notes: Option<String>,
}

/// A contact: a person at a client's location, with a Trackops user account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Trackops contact")]
pub struct Contact {
    /// The contact's Trackops id. Required to update.
    #[schemars(range(min = 1))]
    pub id: Option<u64>,
    /// The Trackops id of the contact's client. To create, give this or client_account_code.
    #[schemars(range(min = 1))]
    pub client_id: Option<u64>,
    /// The account_code of the contact's client, which the connector finds.
    #[schemars(length(min = 1, max = 255))]
    pub client_account_code: Option<String>,
    /// The name of the client's location the contact works at; blank: the primary location.
    #[schemars(length(max = 255))]
    pub location_name: Option<String>,
    /// The contact's role; blank: the configured default_role_id.
    #[schemars(range(min = 1))]
    pub role_id: Option<u64>,
    /// Required to create.
    #[schemars(length(min = 1, max = 255))]
    pub first_name: Option<String>,
    /// Required to create.
    #[schemars(length(min = 1, max = 255))]
    pub last_name: Option<String>,
    /// The natural key (any case); unique among contacts.
    #[schemars(length(max = 255), email)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackopsObject {
    Client,
    Location,
    Contact,
}

impl TrackopsObject {
    /// The collection route, under `/api/v1`.
    pub fn route(self) -> &'static str {
        match self {
            Self::Client => "/clients",
            Self::Location => "/client/locations",
            Self::Contact => "/client/contacts",
        }
    }

    /// The key a write body's record sits under.
    pub fn wrapper(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Location => "client_location",
            Self::Contact => "client_contact",
        }
    }
}

impl fmt::Display for TrackopsObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Object for TrackopsObject {
    const PLATFORM: &'static str = "Trackops";
    const ALL: &'static [Self] = &[Self::Client, Self::Location, Self::Contact];
    /// Trackops's custom fields are not written by this connector.
    const CUSTOM_CONTAINER: &'static str = "custom_fields";

    fn name(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Location => "location",
            Self::Contact => "contact",
        }
    }

    fn base_schema(self) -> Value {
        match self {
            Self::Client => schema_of::<Client>(),
            Self::Location => schema_of::<Location>(),
            Self::Contact => schema_of::<Contact>(),
        }
    }

    fn required_fields(self, mode: WriteMode) -> &'static [&'static str] {
        match (self, mode) {
            (_, WriteMode::Update) => &["id"],
            (Self::Client, WriteMode::Insert) => &["name"],
            // A row with an empty key cannot be matched: the schema says so before anything.
            (Self::Client, WriteMode::Upsert) => &["account_code"],
            (Self::Location, _) => &["name"],
            (Self::Contact, WriteMode::Insert) => &["first_name", "last_name", "email"],
            (Self::Contact, WriteMode::Upsert) => &["email"],
        }
    }

    fn id_field(self) -> &'static str {
        "id"
    }

    fn natural_keys(self) -> &'static [&'static str] {
        match self {
            Self::Client => &["account_code"],
            Self::Location => &["name"],
            Self::Contact => &["email"],
        }
    }

    /// Emails and location names are compared without regard to case; account codes trimmed.
    fn normalize_key(self, _field: &str, value: &str) -> String {
        match self {
            Self::Client => value.trim().to_owned(),
            Self::Location | Self::Contact => value.trim().to_lowercase(),
        }
    }

    fn parent(self) -> Option<Self> {
        match self {
            Self::Client => None,
            Self::Location => Some(Self::Client),
            Self::Contact => Some(Self::Location),
        }
    }

    /// A contact names its client (and the client's location by name), not the location.
    fn names_parent(self) -> Option<Self> {
        (self != Self::Client).then_some(Self::Client)
    }

    fn parent_fields(self) -> Option<(&'static str, &'static str)> {
        (self != Self::Client).then_some(("client_id", "client_account_code"))
    }

    /// Codes are sent upper-case, and an account code without its surrounding blanks.
    fn shape(
        self,
        _mode: WriteMode,
        fields: &mut Members,
        _custom: &[engine::catalog::CustomColumn],
    ) -> Result<bool, String> {
        let mut changed = false;
        for field in ["state", "country"] {
            if let Some(Doc::String(code)) = fields.get_mut(field) {
                if code.bytes().any(|b| b.is_ascii_lowercase()) {
                    *code = code.to_ascii_uppercase().into();
                    changed = true;
                }
            }
        }
        for field in ["account_code", "client_account_code"] {
            if let Some(Doc::String(code)) = fields.get_mut(field) {
                if code.trim() != code.as_ref() {
                    *code = code.trim().to_owned().into();
                    changed = true;
                }
            }
        }
        Ok(changed)
    }
}

/// A client row's columns that belong to its primary location (sent only on create).
pub const LOCATION_COLUMNS: [&str; 11] = [
    "location_name",
    "address_1",
    "address_2",
    "address_3",
    "city",
    "state",
    "zip",
    "country",
    "phone_primary",
    "phone_secondary",
    "phone_fax",
];

/// Row columns that name a parent; the API takes a location id instead.
pub const PARENT_COLUMNS: [&str; 3] = ["client_id", "client_account_code", "location_name"];

/// A record's natural key as rows give it: a client's account code, a contact's email (any
/// case).
pub fn key_of(object: TrackopsObject, record: &Map<String, Value>) -> Option<String> {
    let text = |field: &str| record.get(field).and_then(Value::as_str).map(str::trim);
    match object {
        TrackopsObject::Client => text("account_code").map(str::to_owned),
        TrackopsObject::Contact => text("email").map(str::to_lowercase),
        TrackopsObject::Location => None,
    }
}

/// A text field's value, trimmed; empty when absent.
pub fn text<'a>(fields: &'a Map<String, Value>, field: &str) -> &'a str {
    fields
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
}

/// What a create of each object sends, and the verdict refusing it before any request.
pub fn create_body(
    object: TrackopsObject,
    mut row: Map<String, Value>,
    settings: &Settings,
) -> Result<Map<String, Value>, Verdict> {
    match object {
        TrackopsObject::Client => client_body(settings, row),
        TrackopsObject::Location => {
            place(settings, &mut row, "a new location")?;
            row.retain(|_, v| !v.is_null());
            Ok(row)
        }
        TrackopsObject::Contact => contact_body(settings, row),
    }
}

/// A state and country for a new location, from the row or the defaults; `Err` names
/// what is missing, before any request.
fn place(
    settings: &Settings,
    location: &mut Map<String, Value>,
    what: &str,
) -> Result<(), Verdict> {
    for (field, default, setting) in [
        ("state", &settings.default_state, "default_state"),
        ("country", &settings.default_country, "default_country"),
    ] {
        if !text(location, field).is_empty() {
            continue;
        }
        let Some(code) = default else {
            return Err(Verdict::refused(format!(
                "{what} needs `{field}` (a two-character code): map a {field} column or set {setting}"
            )));
        };
        location.insert(field.into(), Value::String(code.clone()));
    }
    Ok(())
}

/// A client's body: its primary location nested, with a state and country.
fn client_body(
    settings: &Settings,
    mut fields: Map<String, Value>,
) -> Result<Map<String, Value>, Verdict> {
    let mut location = Map::new();
    for column in LOCATION_COLUMNS {
        if let Some(value) = fields.remove(column) {
            let field = if column == "location_name" {
                "name"
            } else {
                column
            };
            location.insert(field.into(), value);
        }
    }
    if text(&fields, "name").is_empty() {
        return Err(Verdict::refused(
            "field `name` is required to create a client",
        ));
    }
    location
        .entry("name")
        .or_insert_with(|| Value::String(settings.default_location_name.clone()));
    place(settings, &mut location, "a new client's primary location")?;
    location.retain(|_, v| !v.is_null());
    fields.insert("primary_location".into(), Value::Object(location));
    Ok(fields)
}

/// A contact's body: a role, and the fields a create needs.
fn contact_body(
    settings: &Settings,
    mut fields: Map<String, Value>,
) -> Result<Map<String, Value>, Verdict> {
    if !fields.contains_key("client_id") {
        return Err(Verdict::refused(
            "to create a contact, name its client: give client_id or client_account_code",
        ));
    }
    fields
        .entry("role_id")
        .or_insert(json!(settings.default_role_id));
    fields.retain(|_, v| !v.is_null());
    for required in ["first_name", "last_name", "email"] {
        if text(&fields, required).is_empty() {
            return Err(Verdict::refused(format!(
                "field `{required}` is required to create a contact"
            )));
        }
    }
    Ok(fields)
}
