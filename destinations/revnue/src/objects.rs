//! Revnue's two parties of a contract as the rows a warehouse holds: Rust structs, the one
//! source of their JSON schemas, and what the engine needs of them (keys, modes, shaping).
//! A customer and a supplier share every field but the supplier's business ones.

use engine::catalog::{schema_of, CustomColumn, Object, WriteMode};
use engine::json::{Doc, Members};
use schemars::JsonSchema;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// The six kinds of contact person, fixed in every page that shows the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactType {
    AccountManagement,
    Billing,
    Executive,
    Sales,
    Support,
    Technical,
}

/// The one contact person a customer or supplier has (no id of its own).
#[derive(Debug, Clone, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPerson {
    /// Required when email is given.
    #[schemars(length(max = 50))]
    pub name: Option<String>,
    /// Required when name is given.
    #[schemars(length(max = 254), email)]
    pub email: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<ContactType>,
}

/// A reference by Revnue id, or by what people call it (a category's label; a country's
/// ISO code or English name).
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum IdOrName {
    Id(#[schemars(range(min = 1))] u64),
    Name(#[schemars(length(min = 1, max = 100))] String),
}

/// The fields a customer and a supplier share, with the same rules.
#[derive(Debug, Clone, JsonSchema)]
pub struct Party {
    /// The record's Revnue id: the key of an update; on upsert it wins over the name (a rename).
    #[schemars(range(min = 1))]
    pub id: Option<u64>,
    /// Required to create; the natural key (unique in the account, trimmed, any case); at most
    /// 50 characters after trimming.
    #[schemars(length(min = 1, max = 60))]
    pub name: Option<String>,
    /// A category's id, or its label.
    pub category: Option<IdOrName>,
    /// The embedded contact person (or use the three contact_person_* columns).
    pub contact_person: Option<ContactPerson>,
    /// The contact person's name, as a flat column.
    #[schemars(length(max = 50))]
    pub contact_person_name: Option<String>,
    /// The contact person's email, as a flat column.
    #[schemars(length(max = 254), email)]
    pub contact_person_email: Option<String>,
    /// The contact person's type, as a flat column.
    pub contact_person_type: Option<ContactType>,
    #[schemars(length(max = 50))]
    pub address_line_1: Option<String>,
    #[schemars(length(max = 50))]
    pub address_line_2: Option<String>,
    #[schemars(length(max = 50))]
    pub city: Option<String>,
    #[schemars(length(max = 50))]
    pub state_province: Option<String>,
    #[schemars(length(max = 20))]
    pub zip_postal_code: Option<String>,
    /// ISO 3166-1 numeric code (276), alpha-2 (DE), alpha-3 (DEU) or English name (Germany).
    pub country: Option<IdOrName>,
    #[schemars(length(max = 20))]
    pub phone: Option<String>,
    #[schemars(length(max = 20))]
    pub mobile: Option<String>,
    #[schemars(length(max = 20))]
    pub fax: Option<String>,
    #[schemars(length(max = 50))]
    pub website: Option<String>,
    #[schemars(length(max = 1000))]
    pub general_description: Option<String>,
    #[schemars(length(max = 1000))]
    pub supplementary_description: Option<String>,
    #[schemars(length(max = 1000))]
    pub additional_description: Option<String>,
    pub nda_signed: Option<bool>,
    /// A date (2024-05-01); a date-time gives its date.
    #[schemars(regex(pattern = r"^\d{4}-\d{2}-\d{2}"))]
    pub nda_signed_date: Option<String>,
    pub msa_signed: Option<bool>,
    /// A date (2024-05-01); a date-time gives its date.
    #[schemars(regex(pattern = r"^\d{4}-\d{2}-\d{2}"))]
    pub msa_signed_date: Option<String>,
}

/// A customer of the company.
#[derive(Debug, Clone, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Revnue customer")]
pub struct Customer {
    #[serde(flatten)]
    pub party: Party,
}

/// Whether a supplier is domestic or foreign.
#[derive(Debug, Clone, Copy, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SupplierType {
    Us,
    Foreign,
}

/// A supplier of the company: a customer's fields plus its business identity.
#[derive(Debug, Clone, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Revnue supplier")]
pub struct Supplier {
    #[serde(flatten)]
    pub party: Party,
    #[serde(rename = "type")]
    pub kind: Option<SupplierType>,
    #[schemars(length(max = 50))]
    pub business_name: Option<String>,
    #[schemars(length(max = 50))]
    pub business_address_line_1: Option<String>,
    #[schemars(length(max = 50))]
    pub business_address_line_2: Option<String>,
    #[schemars(length(max = 50))]
    pub business_city: Option<String>,
    #[schemars(length(max = 50))]
    pub business_state_province: Option<String>,
    #[schemars(length(max = 20))]
    pub business_zip_postal_code: Option<String>,
    /// Like country: a numeric code, alpha-2, alpha-3 or English name.
    pub business_country: Option<IdOrName>,
    #[schemars(length(max = 20))]
    pub ein: Option<String>,
    #[schemars(length(max = 1000))]
    pub financial_description: Option<String>,
}

/// The longest name Revnue keeps, counted after trimming.
pub const NAME_MAX: usize = 50;
/// Fields holding a date, sent as `yyyy-MM-dd`.
pub const DATE_FIELDS: [&str; 2] = ["nda_signed_date", "msa_signed_date"];
/// Fields naming a country.
pub const COUNTRY_FIELDS: [&str; 2] = ["country", "business_country"];
const FLAT_CONTACT: [(&str, &str); 3] = [
    ("contact_person_name", "name"),
    ("contact_person_email", "email"),
    ("contact_person_type", "type"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevnueObject {
    Customer,
    Supplier,
}

impl RevnueObject {
    /// The collection route under `/api/v2`, as the vendor writes it (no trailing slash).
    pub fn route(self) -> &'static str {
        match self {
            Self::Customer => "/customer",
            Self::Supplier => "/supplier",
        }
    }
}

impl fmt::Display for RevnueObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Object for RevnueObject {
    const PLATFORM: &'static str = "Revnue";
    const ALL: &'static [Self] = &[Self::Customer, Self::Supplier];
    /// Custom columns are folded here, then turned into `{"fields": [{"id", "value"}]}`.
    const CUSTOM_CONTAINER: &'static str = "template";

    fn name(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Supplier => "supplier",
        }
    }

    fn base_schema(self) -> Value {
        match self {
            Self::Customer => schema_of::<Customer>(),
            Self::Supplier => schema_of::<Supplier>(),
        }
    }

    fn required_fields(self, mode: WriteMode) -> &'static [&'static str] {
        match mode {
            WriteMode::Update => &["id"],
            WriteMode::Insert | WriteMode::Upsert => &["name"],
        }
    }

    fn id_field(self) -> &'static str {
        "id"
    }

    fn natural_keys(self) -> &'static [&'static str] {
        &["name"]
    }

    /// Names are unique in the account trimmed and without regard to case.
    fn normalize_key(self, _field: &str, value: &str) -> String {
        name_key(value)
    }

    /// Names trimmed, the flat contact columns gathered into `contact_person` (its pair rule
    /// checked), dates as `yyyy-MM-dd`, custom values checked by type and listed by field id.
    fn shape(
        self,
        _mode: WriteMode,
        fields: &mut Members,
        custom: &[CustomColumn],
    ) -> Result<bool, String> {
        let mut changed = false;
        if let Some(Doc::String(name)) = fields.get_mut("name") {
            let trimmed = name.trim();
            if trimmed.is_empty() {
                return Err("field `name` is blank".to_owned());
            }
            if trimmed.chars().count() > NAME_MAX {
                return Err(format!(
                    "field `name` has {} characters after trimming; Revnue keeps at most {NAME_MAX} (never truncated: that could merge two records)",
                    trimmed.chars().count()
                ));
            }
            if trimmed.len() != name.len() {
                *name = Cow::Owned(trimmed.to_owned());
                changed = true;
            }
        }
        if FLAT_CONTACT
            .iter()
            .any(|(flat, _)| fields.contains_key(flat))
        {
            let mut person = match fields.remove("contact_person") {
                Some(Doc::Object(person)) => person,
                _ => Members::default(),
            };
            for (flat, inner) in FLAT_CONTACT {
                if let Some(value) = fields.remove(flat) {
                    person.insert(inner, value);
                }
            }
            fields.insert("contact_person", Doc::Object(person));
            changed = true;
        }
        if let Some(Doc::Object(person)) = fields.get_mut("contact_person") {
            let given = |p: &Members, f: &str| matches!(p.get(f), Some(Doc::String(s)) if !s.trim().is_empty());
            match (given(person, "name"), given(person, "email")) {
                (true, false) => {
                    return Err("contact_person: email is required when name is given".into())
                }
                (false, true) => {
                    return Err("contact_person: name is required when email is given".into())
                }
                _ => {}
            }
            let before = person.len();
            person.retain(|_, v| !matches!(v, Doc::Null));
            changed |= person.len() != before;
        }
        for field in DATE_FIELDS {
            if let Some(value) = fields.get_mut(field) {
                changed |= to_date(value).map_err(|why| format!("field `{field}` {why}"))?;
            }
        }
        if let Some(Doc::Object(values)) = fields.get_mut(Self::CUSTOM_CONTAINER) {
            let mut listed = Vec::new();
            for (key, value) in values.iter_mut() {
                let Some(column) = custom.iter().find(|c| c.key.as_str() == key.as_ref()) else {
                    return Err(format!("custom field `{key}` is not in the template"));
                };
                let (data_type, id) = column.kind.split_once(':').unwrap_or_default();
                let id: u64 = id.parse().unwrap_or_default();
                match data_type {
                    "date" => {
                        to_date(value).map_err(|why| format!("custom field `{key}` {why}"))?;
                    }
                    "money" | "number" => {
                        let number = match value {
                            Doc::Number(n) => n.as_f64(),
                            // Decimals often arrive as text (PyAirbyte's cache: "1500.500000000").
                            Doc::String(text) => text.trim().parse::<f64>().ok(),
                            Doc::Null => None,
                            _ => Some(f64::NAN),
                        };
                        if let Some(n) = number {
                            *value = custom_number(key, data_type, n)?;
                        } else if !matches!(value, Doc::Null) {
                            return Err(format!("custom field `{key}` is not a number"));
                        }
                    }
                    _ => {}
                }
                listed.push((id, std::mem::replace(value, Doc::Null)));
            }
            let mut list = Vec::with_capacity(listed.len());
            for (id, value) in listed {
                let mut item = Members::default();
                item.insert("id", Doc::Number(id.into()));
                item.insert("value", value);
                list.push(Doc::Object(item));
            }
            let mut template = Members::default();
            template.insert("fields", Doc::Array(list));
            *values = template;
            changed = true;
        }
        Ok(changed)
    }
}

/// The contract's largest money or number value.
const CUSTOM_NUMBER_MAX: f64 = 999_999_999_999_999.0;

/// A custom money (0 to 999999999999999.00, cents) or number (an integer of at most 15
/// digits) as the JSON number Revnue takes.
fn custom_number(key: &str, data_type: &str, n: f64) -> Result<Doc<'static>, String> {
    let number = if data_type == "money" {
        if !(0.0..=CUSTOM_NUMBER_MAX).contains(&n) {
            return Err(format!(
                "custom field `{key}` is out of range ({n}): money is 0.00 to 999999999999999.00"
            ));
        }
        if !at_most_two_decimals(n) {
            return Err(format!(
                "custom field `{key}` has more than 2 decimals ({n}); money keeps cents only"
            ));
        }
        serde_json::Number::from_f64(n)
    } else {
        if n.fract() != 0.0 || n.abs() > CUSTOM_NUMBER_MAX {
            return Err(format!(
                "custom field `{key}` is not a whole number of at most 15 digits ({n})"
            ));
        }
        Some(serde_json::Number::from(n as i64))
    };
    number
        .map(Doc::Number)
        .ok_or_else(|| format!("custom field `{key}` is not a number"))
}

/// A name as Revnue compares it: trimmed, without regard to case.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Whether a number has at most two digits after its point (as its shortest decimal text).
fn at_most_two_decimals(n: f64) -> bool {
    let text = n.to_string();
    text.split_once('.')
        .is_none_or(|(_, decimals)| decimals.len() <= 2)
}

/// A date as `yyyy-MM-dd`, in place: a date-time gives its date part. Returns whether it
/// changed; the error ends "… is not …" after the field's name.
fn to_date(value: &mut Doc) -> Result<bool, String> {
    let text = match value {
        Doc::String(text) => text,
        Doc::Null => return Ok(false),
        _ => return Err("is not a date: give yyyy-MM-dd".to_owned()),
    };
    let date = text
        .get(..10)
        .filter(|d| is_calendar_date(d))
        .ok_or_else(|| {
            format!("is not a date ({text:?}): give yyyy-MM-dd, or a date-time whose date is taken")
        })?;
    if date.len() == text.len() {
        return Ok(false);
    }
    *value = Doc::String(Cow::Owned(date.to_owned()));
    Ok(true)
}

/// `yyyy-MM-dd` naming a real day.
pub fn is_calendar_date(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let number = |r: std::ops::Range<usize>| text[r].parse::<u32>().ok();
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

/// A template field's name as a column: lower-case, runs of other characters as `_`
/// (`Contract value` → `contract_value`), as warehouses and PyAirbyte name columns.
pub fn column_name(field_name: &str) -> String {
    let mut column = String::with_capacity(field_name.len());
    for c in field_name.trim().chars() {
        if c.is_alphanumeric() {
            column.extend(c.to_lowercase());
        } else if !column.ends_with('_') && !column.is_empty() {
            column.push('_');
        }
    }
    column.trim_end_matches('_').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(json: &str) -> Members<'static> {
        let text: &'static str = Box::leak(json.to_owned().into_boxed_str());
        match Doc::parse(text).unwrap() {
            Doc::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn flat_contact_columns_dates_and_custom_values_are_shaped() {
        let mut fields = members(
            r#"{"name":"  Acme  ","contact_person_name":"Ann","contact_person_email":"ann@a.example","nda_signed_date":"2024-05-01T10:00:00Z","template":{"tier":"gold","contract_value":1500.5}}"#,
        );
        let custom =
            [("tier", "text:22"), ("contract_value", "money:21")].map(|(key, kind)| CustomColumn {
                key: key.into(),
                schema: Value::Null,
                required_to_insert: false,
                kind: kind.into(),
            });
        assert!(RevnueObject::Customer
            .shape(WriteMode::Insert, &mut fields, &custom)
            .unwrap());
        assert_eq!(
            serde_json::to_string(&fields).unwrap(),
            r#"{"name":"Acme","nda_signed_date":"2024-05-01","template":{"fields":[{"id":22,"value":"gold"},{"id":21,"value":1500.5}]},"contact_person":{"name":"Ann","email":"ann@a.example"}}"#
        );
    }

    #[test]
    fn bad_values_are_named() {
        let err = |json: &str| {
            RevnueObject::Customer
                .shape(WriteMode::Upsert, &mut members(json), &[])
                .unwrap_err()
        };
        assert!(
            err(r#"{"name":"A","contact_person":{"name":"Ann"}}"#).contains("email is required")
        );
        assert!(err(r#"{"name":"A","msa_signed_date":"2023-02-29"}"#).contains("msa_signed_date"));
        assert!(err(&format!(r#"{{"name":"{}"}}"#, "x".repeat(51))).contains("at most 50"));
        let money = [CustomColumn {
            key: "v".into(),
            schema: Value::Null,
            required_to_insert: false,
            kind: "money:1".into(),
        }];
        let e = RevnueObject::Customer
            .shape(
                WriteMode::Insert,
                &mut members(r#"{"name":"A","template":{"v":1.005}}"#),
                &money,
            )
            .unwrap_err();
        assert!(e.contains("2 decimals"), "{e}");
    }

    #[test]
    fn columns_are_snake_case() {
        assert_eq!(column_name("Contract value"), "contract_value");
        assert_eq!(column_name(" Renewal (date) "), "renewal_date");
    }
}
