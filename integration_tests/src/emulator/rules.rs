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
    match object {
        Object::Client if !present("name") => return Err("name is required".into()),
        Object::Contact | Object::Contract if !present("clientId") => {
            return Err("clientId is required".into())
        }
        _ => {}
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
