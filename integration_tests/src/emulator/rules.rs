//! The API contract's field rules, written from `clientsuccess-api.md` and nothing else: this
//! emulator must not share code with the connector, or it could not catch the connector's bugs.

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Object {
    Client,
    Contact,
    Contract,
}

impl Object {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "client" => Some(Self::Client),
            "contact" => Some(Self::Contact),
            "contract" => Some(Self::Contract),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Contact => "contact",
            Self::Contract => "contract",
        }
    }

    /// The name in custom field routes: `CLIENT`, `CONTACT`, `CONTRACT`.
    pub fn resource(self) -> &'static str {
        match self {
            Self::Client => "CLIENT",
            Self::Contact => "CONTACT",
            Self::Contract => "CONTRACT",
        }
    }

    /// The prefix of this object's opaque uuids (`cln_qfhfeb05`).
    pub fn uuid_prefix(self) -> &'static str {
        match self {
            Self::Client => "cln",
            Self::Contact => "cnt",
            Self::Contract => "ctr",
        }
    }

    /// The fields a record may carry, for the v1 translation.
    pub fn field_names(self) -> impl Iterator<Item = &'static str> {
        self.fields().iter().map(|(name, _)| *name)
    }

    fn fields(self) -> &'static [(&'static str, Kind)] {
        match self {
            Self::Client => CLIENT,
            Self::Contact => CONTACT,
            Self::Contract => CONTRACT,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Read-only: accepted in a body and ignored.
    Uuid,
    Text(usize),
    FreeText,
    Bool,
    Int(i64, i64),
    NonNegativeNumber,
    Date,
    Status,
    Email,
    TimeZone,
    Region,
    TeamingRoles,
    Custom,
    /// A contact's or contract's parent client uuid.
    ClientRef,
}

const ID: Kind = Kind::Int(0, i64::MAX);

const CLIENT: &[(&str, Kind)] = &[
    ("uuid", Kind::Uuid),
    ("name", Kind::Text(255)),
    ("status", Kind::Status),
    ("active", Kind::Bool),
    ("externalId", Kind::Text(100)),
    ("siteUrl", Kind::Text(1024)),
    ("logoUrl", Kind::Text(1024)),
    ("inceptionDate", Kind::Date),
    ("terminatedDate", Kind::Date),
    ("street", Kind::Text(100)),
    ("city", Kind::Text(100)),
    ("state", Kind::Text(100)),
    ("country", Kind::Text(100)),
    ("zip", Kind::Text(20)),
    ("region", Kind::Region),
    ("timezone", Kind::TimeZone),
    ("salesforceAccountId", Kind::Text(18)),
    ("zendeskId", Kind::Text(200)),
    ("freshdeskId", Kind::Text(200)),
    ("usageId", Kind::Text(200)),
    ("stripeId", Kind::Text(200)),
    ("externalStatusId", Kind::Text(200)),
    ("npsScore", Kind::Int(-100, 100)),
    ("note", Kind::FreeText),
    ("createdByEmployeeId", ID),
    ("modifiedByEmployeeId", ID),
    ("managedByEmployeeId", ID),
    ("assignedSalesRepId", ID),
    ("clientTypeId", ID),
    ("successCycleTemplateId", ID),
    ("primaryContactId", ID),
    ("parentClientId", ID),
    ("assignedSalesRep", Kind::Text(45)),
    ("accTeamingRoles", Kind::TeamingRoles),
    ("custom", Kind::Custom),
];

const CONTACT: &[(&str, Kind)] = &[
    ("uuid", Kind::Uuid),
    ("clientId", Kind::ClientRef),
    ("email", Kind::Email),
    ("firstName", Kind::Text(100)),
    ("lastName", Kind::Text(100)),
    ("title", Kind::Text(100)),
    ("phone", Kind::Text(20)),
    ("mobile", Kind::Text(20)),
    ("linkedinUrl", Kind::Text(1024)),
    ("externalId", Kind::Text(100)),
    ("custom", Kind::Custom),
];

const CONTRACT: &[(&str, Kind)] = &[
    ("uuid", Kind::Uuid),
    ("clientId", Kind::ClientRef),
    ("name", Kind::Text(255)),
    ("amount", Kind::NonNegativeNumber),
    ("startDate", Kind::Date),
    ("endDate", Kind::Date),
    ("externalId", Kind::Text(100)),
    ("custom", Kind::Custom),
];

/// Checks every field of a body against the contract. `client_exists` answers for `clientId`.
/// Returns the body's fields without the read-only `uuid`.
pub fn check_fields(
    object: Object,
    body: &Value,
    client_exists: &dyn Fn(&str) -> bool,
) -> Result<Map<String, Value>, String> {
    check_owned_fields(object, body.clone(), client_exists)
}

/// As `check_fields`, consuming the body so that no value is copied (the bulk hot path).
pub fn check_owned_fields(
    object: Object,
    body: Value,
    client_exists: &dyn Fn(&str) -> bool,
) -> Result<Map<String, Value>, String> {
    let Value::Object(mut fields) = body else {
        return Err(format!("a {} must be a JSON object", object.name()));
    };
    for (name, value) in &fields {
        let Some((_, kind)) = object.fields().iter().find(|(field, _)| field == name) else {
            return Err(format!("unknown field `{name}` for a {}", object.name()));
        };
        if !value.is_null() {
            check_value(name, *kind, value, client_exists)?;
        }
    }
    fields.shift_remove("uuid");
    Ok(fields)
}

/// Rules that need the whole record: what creating requires, and date order.
pub fn check_record(object: Object, record: &Map<String, Value>) -> Result<(), String> {
    let present = |name: &str| record.get(name).is_some_and(|v| !v.is_null());
    // A client needs name, status and active to exist [000].
    let required: &[&str] = match object {
        Object::Client => &["name", "status", "active"],
        Object::Contact | Object::Contract => &["clientId"],
    };
    if let Some(missing) = required.iter().find(|f| !present(f)) {
        return Err(format!("{missing} is required"));
    }
    if object == Object::Contract {
        if let (Some(Value::String(start)), Some(Value::String(end))) =
            (record.get("startDate"), record.get("endDate"))
        {
            // Both already checked as YYYY-MM-DD, so text order is date order.
            if end < start {
                return Err("endDate must not be before startDate".into());
            }
        }
    }
    Ok(())
}

fn check_value(
    name: &str,
    kind: Kind,
    value: &Value,
    client_exists: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    let text = || {
        value
            .as_str()
            .ok_or_else(|| format!("{name} must be a string"))
    };
    match kind {
        Kind::Uuid => Ok(()),
        Kind::Text(max) => {
            let len = text()?.chars().count();
            if len > max {
                return Err(format!(
                    "{name} must be at most {max} characters, got {len}"
                ));
            }
            Ok(())
        }
        Kind::FreeText => text().map(drop),
        Kind::Bool => value
            .as_bool()
            .map(drop)
            .ok_or_else(|| format!("{name} must be true or false")),
        Kind::Int(min, max) => {
            let n = value
                .as_i64()
                .ok_or_else(|| format!("{name} must be an integer"))?;
            if n < min || n > max {
                return Err(format!("{name} must be between {min} and {max}, got {n}"));
            }
            Ok(())
        }
        Kind::NonNegativeNumber => {
            let n = value
                .as_f64()
                .ok_or_else(|| format!("{name} must be a number"))?;
            if n < 0.0 {
                return Err(format!("{name} must not be negative"));
            }
            Ok(())
        }
        Kind::Date => {
            let date = text()?;
            let well_formed =
                date.len() == 10 && chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok();
            if !well_formed {
                return Err(format!(
                    "{name} must be a real date in YYYY-MM-DD format, got {date:?}"
                ));
            }
            Ok(())
        }
        Kind::Status => match text()? {
            "ACTIVE" | "INACTIVE" | "TRIAL" | "TERMINATED" => Ok(()),
            other => Err(format!(
                "status must be one of ACTIVE, INACTIVE, TRIAL, TERMINATED, got {other:?}"
            )),
        },
        Kind::Email => {
            let email = text()?;
            if email.chars().count() > 254 {
                return Err(format!("{name} must be at most 254 characters"));
            }
            if !looks_like_email(email) {
                return Err(format!("{name} is not a valid email address: {email:?}"));
            }
            Ok(())
        }
        Kind::TimeZone => {
            let zone = text()?;
            if zone.chars().count() > 60 || zone.parse::<chrono_tz::Tz>().is_err() {
                return Err(format!(
                    "timezone must be a tz database name such as America/Denver, got {zone:?}"
                ));
            }
            Ok(())
        }
        Kind::Region => {
            let region = value
                .as_object()
                .ok_or_else(|| "region must be an object".to_owned())?;
            for (key, v) in region {
                match key.as_str() {
                    "id" if v.is_null() || v.as_u64().is_some() => {}
                    "id" => return Err("region.id must be an integer of 0 or more".into()),
                    "name" if v.is_null() || v.is_string() => {}
                    "name" => return Err("region.name must be a string".into()),
                    other => return Err(format!("unknown field `region.{other}`")),
                }
            }
            Ok(())
        }
        Kind::TeamingRoles => {
            let roles = value
                .as_array()
                .ok_or_else(|| "accTeamingRoles must be an array".to_owned())?;
            for role in roles {
                let ok = role.as_object().is_some_and(|r| {
                    r.len() == 2
                        && r.get("employeeId").and_then(Value::as_u64).is_some()
                        && r.get("roleId").and_then(Value::as_u64).is_some()
                });
                if !ok {
                    return Err("each accTeamingRoles item must be {\"employeeId\": integer, \"roleId\": integer}".into());
                }
            }
            Ok(())
        }
        Kind::Custom => {
            let custom = value
                .as_object()
                .ok_or_else(|| "custom must be an object".to_owned())?;
            for (key, v) in custom {
                if v.is_array() || v.is_object() {
                    return Err(format!(
                        "custom.{key} must be a string, number, boolean or null"
                    ));
                }
            }
            Ok(())
        }
        Kind::ClientRef => {
            let uuid = text()?;
            if !client_exists(uuid) {
                return Err(format!("clientId {uuid:?} names no client"));
            }
            Ok(())
        }
    }
}

/// Custom field definitions by object, as `GET /v2/customfield/all/{RESOURCE}` answers them.
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    by_object: std::collections::HashMap<Object, Vec<Value>>,
}

impl Definitions {
    /// `{"CLIENT": [definition, ...], "CONTACT": [...], "CONTRACT": [...]}`.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let mut by_object = std::collections::HashMap::new();
        for object in [Object::Client, Object::Contact, Object::Contract] {
            let list = match value.get(object.resource()) {
                Some(Value::Array(list)) => list.clone(),
                None => Vec::new(),
                Some(_) => return Err(format!("{} must be an array", object.resource())),
            };
            for definition in &list {
                let ok = definition["fieldKey"].is_string()
                    && matches!(
                        definition["fieldTypeName"].as_str(),
                        Some("STRING" | "INTEGER" | "DECIMAL" | "BOOLEAN" | "DATE" | "PICKLIST")
                    );
                if !ok {
                    return Err(format!("not a custom field definition: {definition}"));
                }
            }
            by_object.insert(object, list);
        }
        Ok(Self { by_object })
    }

    /// A few fields per object, so a demo and the tests have something to write.
    pub fn sample() -> Self {
        let field = |key: &str, label: &str, kind: &str, picklist: &[&str]| {
            serde_json::json!({"fieldKey": key, "fieldLabel": label, "fieldTypeName": kind,
                "required": false, "picklistValues": picklist})
        };
        let value = serde_json::json!({
            "CLIENT": [
                field("industry__cs", "Industry", "PICKLIST", &["Retail", "Manufacturing", "Software", "Healthcare", "Finance", "Other"]),
                field("seats__cs", "Seats", "INTEGER", &[]),
                field("arr__cs", "ARR", "DECIMAL", &[]),
                field("renewal__cs", "Renewal date", "DATE", &[]),
                field("vip__cs", "VIP", "BOOLEAN", &[]),
                field("segment__cs", "Segment", "STRING", &[]),
            ],
            "CONTACT": [field("role__cs", "Role", "STRING", &[])],
            "CONTRACT": [field("term_months__cs", "Term (months)", "INTEGER", &[])],
        });
        Self::from_json(&value).expect("sample definitions are valid")
    }

    pub fn list(&self, object: Object) -> Vec<Value> {
        self.by_object.get(&object).cloned().unwrap_or_default()
    }

    /// Checks a record's `custom` values against the definitions: an undefined key, a value of
    /// the wrong type or a picklist value not offered is refused, naming the key.
    pub fn check(&self, object: Object, custom: &Map<String, Value>) -> Result<(), String> {
        let defined = self
            .by_object
            .get(&object)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for (key, value) in custom {
            let Some(definition) = defined.iter().find(|d| d["fieldKey"] == *key) else {
                return Err(format!(
                    "custom field `{key}` is not defined for {}",
                    object.resource()
                ));
            };
            if value.is_null() {
                continue;
            }
            let ok = match definition["fieldTypeName"].as_str() {
                Some("STRING") => value.is_string(),
                Some("INTEGER") => value.is_i64() || value.is_u64(),
                Some("DECIMAL") => value.is_number(),
                Some("BOOLEAN") => value.is_boolean(),
                Some("DATE") => value.as_str().is_some_and(|d| {
                    d.len() == 10 && chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok()
                }),
                Some("PICKLIST") => definition["picklistValues"]
                    .as_array()
                    .is_some_and(|values| values.contains(value)),
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "custom field `{key}` must be a {} value{}",
                    definition["fieldTypeName"].as_str().unwrap_or("valid"),
                    match definition["picklistValues"].as_array() {
                        Some(values) if !values.is_empty() => format!(
                            " among {}",
                            values
                                .iter()
                                .map(Value::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        _ => String::new(),
                    }
                ));
            }
        }
        Ok(())
    }
}

/// local@domain.tld, no spaces: the shape check an API does, not RFC 5322.
fn looks_like_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain.contains('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn email_shapes() {
        assert!(looks_like_email("a@b.co"));
        for bad in ["a", "a@b", "@b.co", "a b@c.co", "a@.co", "a@b.co."] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }

    #[test]
    fn uuid_is_ignored_and_unknown_fields_refused() {
        let ok = check_fields(Object::Client, &json!({"uuid": "x", "name": "A"}), &|_| {
            true
        })
        .unwrap();
        assert!(!ok.contains_key("uuid"));
        let err = check_fields(Object::Client, &json!({"name": "A", "colour": 1}), &|_| {
            true
        })
        .unwrap_err();
        assert!(err.contains("colour"));
    }
}
