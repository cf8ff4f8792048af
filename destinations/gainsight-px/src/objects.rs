//! Gainsight PX's two objects as Rust structs, the one source of their JSON schemas, and what
//! the engine needs to know of them: keys, modes, the user's account, and the shaping of a
//! record into a body (dates into epoch milliseconds, string booleans).

use engine::catalog::{schema_of, CustomColumn, Object, WriteMode};
use engine::json::{Doc, Members};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// A date as PX takes it after conversion: an ISO 8601 date (`2024-05-01`, midnight UTC) or
/// date-time (`2024-05-01T12:00:00Z`; no offset means UTC), or epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DateValue {
    Millis(i64),
    Iso(String),
}

/// One type union rather than schemars' `anyOf` of the variants: the same values, and a
/// schema the validation fast path takes without jsonschema.
impl JsonSchema for DateValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DateValue".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": ["integer", "string"]})
    }
}

/// A custom attribute's value: text, a number, a boolean (or "true"/"false").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    Text(String),
    Number(f64),
    Flag(bool),
}

impl JsonSchema for AttributeValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AttributeValue".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": ["string", "number", "boolean"]})
    }
}

/// Where an account or user is. Every part is text (the postal code too).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Location {
    pub country_name: Option<String>,
    /// ISO 3166, such as USA.
    pub country_code: Option<String>,
    pub state_name: Option<String>,
    /// ISO 3166.
    pub state_code: Option<String>,
    pub city: Option<String>,
    pub street: Option<String>,
    pub postal_code: Option<String>,
    /// Such as NA.
    pub continent: Option<String>,
    /// ISO 3166-2.
    pub region_name: Option<String>,
    pub time_zone: Option<String>,
    pub coordinates: Option<Coordinates>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Coordinates {
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// A PX account: a company using your product.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "Gainsight PX account")]
pub struct Account {
    /// The account's id, its natural key (case-sensitive). Required in every mode.
    #[schemars(length(min = 1))]
    pub id: Option<String>,
    /// The account's name. Required to create.
    pub name: Option<String>,
    /// Product tag keys; the configured property_keys when absent.
    pub property_keys: Option<Vec<String>>,
    pub tracked_subscription_id: Option<String>,
    /// Salesforce account id.
    pub sfdc_id: Option<String>,
    pub duns_number: Option<String>,
    pub industry: Option<String>,
    pub sic_code: Option<String>,
    pub naics_code: Option<String>,
    pub website: Option<String>,
    pub plan: Option<String>,
    pub number_of_employees: Option<i32>,
    /// ISO 8601 date or date-time, or epoch milliseconds.
    pub last_seen_date: Option<DateValue>,
    /// ISO 8601 date or date-time, or epoch milliseconds.
    pub renewal_date: Option<DateValue>,
    pub location: Option<Location>,
    /// Custom attribute values by apiName.
    pub custom_attributes: Option<BTreeMap<String, AttributeValue>>,
    /// Groups accounts together.
    pub parent_group_id: Option<String>,
    pub health_score: Option<i32>,
    pub nps: Option<f64>,
    /// Gainsight CS company id.
    pub gs_id: Option<String>,
    /// The CSM's name.
    pub csm: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UserType {
    Lead,
    User,
    Visitor,
    EmptyUserType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Gender {
    Male,
    Female,
    Other,
    EmptyGender,
}

/// A PX user: a person using your product.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "Gainsight PX user")]
pub struct User {
    /// The id your product's tag identifies the user by: the natural key (case-sensitive).
    /// Required in every mode.
    #[schemars(length(min = 1))]
    pub identify_id: Option<String>,
    /// Product tag keys; the configured property_keys when absent.
    pub property_keys: Option<Vec<String>>,
    #[serde(rename = "type")]
    pub user_type: Option<UserType>,
    pub gender: Option<Gender>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub title: Option<String>,
    pub phone: Option<String>,
    pub role: Option<String>,
    pub subscription_id: Option<String>,
    pub sfdc_contact_id: Option<String>,
    /// The `id` of the user's account. Accounts of the same sync are written first.
    pub account_id: Option<String>,
    /// ISO 8601 date or date-time, or epoch milliseconds.
    pub sign_up_date: Option<DateValue>,
    /// ISO 8601 date or date-time, or epoch milliseconds.
    pub first_visit_date: Option<DateValue>,
    pub score: Option<i64>,
    pub global_unsubscribe: Option<bool>,
    pub location: Option<Location>,
    /// Custom attribute values by apiName.
    pub custom_attributes: Option<BTreeMap<String, AttributeValue>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PxObject {
    Account,
    User,
}

impl PxObject {
    /// The collection in the API's paths: `accounts`, `users`.
    pub fn collection(self) -> &'static str {
        match self {
            Self::Account => "accounts",
            Self::User => "users",
        }
    }

    /// The `{type}` of the attribute metadata route.
    pub fn model(self) -> &'static str {
        self.name()
    }

    /// The standard fields that hold dates.
    fn date_fields(self) -> &'static [&'static str] {
        match self {
            Self::Account => &["lastSeenDate", "renewalDate"],
            Self::User => &["signUpDate", "firstVisitDate"],
        }
    }

    /// "Account", "User", as the API's messages say.
    pub fn title(self) -> &'static str {
        match self {
            Self::Account => "Account",
            Self::User => "User",
        }
    }
}

impl fmt::Display for PxObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Object for PxObject {
    const PLATFORM: &'static str = "Gainsight PX";
    const ALL: &'static [Self] = &[Self::Account, Self::User];
    const CUSTOM_CONTAINER: &'static str = "customAttributes";

    fn name(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::User => "user",
        }
    }

    fn base_schema(self) -> Value {
        match self {
            Self::Account => schema_of::<Account>(),
            Self::User => schema_of::<User>(),
        }
    }

    fn required_fields(self, mode: WriteMode) -> &'static [&'static str] {
        match (self, mode) {
            (Self::Account, WriteMode::Insert) => &["id", "name"],
            (Self::Account, _) => &["id"],
            (Self::User, _) => &["identifyId"],
        }
    }

    fn id_field(self) -> &'static str {
        match self {
            Self::Account => "id",
            Self::User => "identifyId",
        }
    }

    /// The key stays in the body: every body must also be a valid create body.
    fn id_in_path(self) -> bool {
        false
    }

    fn natural_keys(self) -> &'static [&'static str] {
        match self {
            Self::Account => &["id"],
            Self::User => &["identifyId"],
        }
    }

    fn parent(self) -> Option<Self> {
        (self == Self::User).then_some(Self::Account)
    }

    fn waits_for_parent(self) -> Option<&'static str> {
        (self == Self::User).then_some("accountId")
    }

    /// Dates become epoch milliseconds; custom booleans sent as "true"/"false" become
    /// booleans; custom DATE_TIME values are dates like the standard ones.
    fn shape(
        self,
        _mode: WriteMode,
        fields: &mut Members,
        custom: &[CustomColumn],
    ) -> Result<bool, String> {
        let mut changed = false;
        for field in self.date_fields() {
            if let Some(value) = fields.get_mut(field) {
                changed |= to_millis(value).map_err(|why| format!("field `{field}` {why}"))?;
            }
        }
        if let Some(Doc::Object(attributes)) = fields.get_mut(Self::CUSTOM_CONTAINER) {
            for (key, value) in attributes.iter_mut() {
                let Some(column) = custom.iter().find(|c| c.key.as_str() == key.as_ref()) else {
                    continue;
                };
                match column.kind.as_str() {
                    "DATE_TIME" => {
                        changed |= to_millis(value)
                            .map_err(|why| format!("custom attribute `{key}` {why}"))?;
                    }
                    "BOOLEAN" => {
                        if let Doc::String(text) = value {
                            *value = Doc::Bool(text.as_ref() == "true");
                            changed = true;
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(changed)
    }
}

/// A date value as epoch milliseconds, in place. Returns whether it changed; the error ends
/// "… is not …" after the field's name.
fn to_millis(value: &mut Doc) -> Result<bool, String> {
    let text = match value {
        Doc::String(text) => text,
        Doc::Number(_) => return Ok(false),
        _ => return Err("is not a date".to_owned()),
    };
    let millis = parse_date(text).ok_or_else(|| {
        "is not a date: give an ISO 8601 date (2024-05-01) or date-time (2024-05-01T12:00:00Z), or epoch milliseconds".to_owned()
    })?;
    *value = Doc::Number(millis.into());
    Ok(true)
}

/// `YYYY-MM-DD` (a real calendar date) as epoch milliseconds at midnight UTC, read by hand:
/// it is the commonest form, and a general parser costs ten times as much.
fn date_millis(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        b[range].iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&day) {
        return None;
    }
    // Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400_000)
}

/// ISO 8601 date or date-time as epoch milliseconds (UTC when no offset is given).
pub fn parse_date(text: &str) -> Option<i64> {
    use time::format_description::well_known::{Iso8601, Rfc3339};
    let text = text.trim();
    if let Ok(millis) = text.parse::<i64>() {
        return Some(millis);
    }
    // The likeliest form first: a date alone, then a date-time with an offset, then one
    // without (taken as UTC); each parse that fails costs as much as one that succeeds.
    if text.len() == 10 {
        return date_millis(text);
    }
    let at = time::OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| time::OffsetDateTime::parse(text, &Iso8601::DEFAULT))
        .or_else(|_| {
            time::PrimitiveDateTime::parse(text, &Iso8601::DEFAULT).map(|t| t.assume_utc())
        })
        .ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_as_iso_dates_date_times_or_millis() {
        assert_eq!(parse_date("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_date("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_date("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_date("1970-01-01T00:00:02"), Some(2000));
        assert_eq!(parse_date("1714521600000"), Some(1_714_521_600_000));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2024-13-01"), None);
        assert_eq!(parse_date("2024-1-011"), None);
        assert_eq!(parse_date("1969-12-31"), Some(-86_400_000));
        // Dates read by hand agree with the time crate's.
        for text in [
            "1970-01-01",
            "1999-12-31",
            "2024-02-29",
            "2027-01-31",
            "2100-02-28",
            "1600-02-29",
        ] {
            let theirs = time::Date::parse(
                text,
                &time::format_description::well_known::Iso8601::DEFAULT,
            )
            .unwrap()
            .midnight()
            .assume_utc()
            .unix_timestamp()
                * 1000;
            assert_eq!(parse_date(text), Some(theirs), "{text}");
        }
        assert_eq!(parse_date("soon"), None);
    }

    #[test]
    fn shape_converts_dates_and_string_booleans() {
        let Doc::Object(mut fields) = Doc::parse(
            r#"{"id":"a","renewalDate":"1970-01-02","customAttributes":{"d":"1970-01-01T00:00:01Z","b":"false","n":3}}"#,
        )
        .unwrap() else {
            unreachable!()
        };
        let custom = [("d", "DATE_TIME"), ("b", "BOOLEAN"), ("n", "NUMBER")].map(|(key, kind)| {
            CustomColumn {
                key: key.into(),
                schema: Value::Null,
                required_to_insert: false,
                kind: kind.into(),
            }
        });
        assert!(PxObject::Account
            .shape(WriteMode::Insert, &mut fields, &custom)
            .unwrap());
        assert_eq!(
            serde_json::to_string(&fields).unwrap(),
            r#"{"id":"a","renewalDate":86400000,"customAttributes":{"d":1000,"b":false,"n":3}}"#
        );
        let Doc::Object(mut bad) =
            Doc::parse(r#"{"identifyId":"u","signUpDate":"May 1st"}"#).unwrap()
        else {
            unreachable!()
        };
        let err = PxObject::User
            .shape(WriteMode::Upsert, &mut bad, &[])
            .unwrap_err();
        assert!(err.starts_with("field `signUpDate` is not a date"), "{err}");
    }
}
