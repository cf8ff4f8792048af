//! What a write looks up once per sync: countries (an ISO 3166-1 table carried here, then
//! the API's own list for a name it does not know), categories by label, and the custom
//! field templates whose fields become typed columns.

use crate::api::ApiClient;
use crate::objects::{column_name, RevnueObject, COUNTRY_FIELDS};
use engine::catalog::{CustomColumn, CustomColumns, Object};
use engine::error::Fatal;
use isocountry::CountryCode;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::OnceCell;

/// A country as a warehouse may give it (numeric code, alpha-2, alpha-3, English name) →
/// its ISO numeric code, from the ISO table alone. Names match without regard to case, whole
/// or without a parenthesized or comma-separated qualifier ("Bolivia", "Korea, Republic of"
/// stays ambiguous and is not matched by "Korea").
pub fn iso_country(text: &str) -> Option<u32> {
    let text = text.trim();
    if let Ok(code) = text.parse::<u32>() {
        return CountryCode::for_id(code).ok().map(|c| c.numeric_id());
    }
    let upper = text.to_ascii_uppercase();
    match text.len() {
        2 => return CountryCode::for_alpha2(&upper).ok().map(|c| c.numeric_id()),
        3 => {
            if let Ok(c) = CountryCode::for_alpha3(&upper) {
                return Some(c.numeric_id());
            }
        }
        _ => {}
    }
    let wanted = text.to_lowercase();
    let short = |name: &str| -> String {
        name.split([',', '('])
            .next()
            .unwrap_or(name)
            .trim()
            .to_lowercase()
    };
    let all = CountryCode::as_array();
    if let Some(c) = all.iter().find(|c| c.name().to_lowercase() == wanted) {
        return Some(c.numeric_id());
    }
    let by_short: Vec<&CountryCode> = all.iter().filter(|c| short(c.name()) == wanted).collect();
    match by_short.as_slice() {
        [one] => Some(one.numeric_id()),
        _ => COMMON_NAMES
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, code)| *code),
    }
}

/// English names in common use that the ISO short names spell otherwise.
const COMMON_NAMES: [(&str, u32); 12] = [
    ("united states", 840),
    ("usa", 840),
    ("united kingdom", 826),
    ("uk", 826),
    ("great britain", 826),
    ("russia", 643),
    ("south korea", 410),
    ("north korea", 408),
    ("vietnam", 704),
    ("czech republic", 203),
    ("iran", 364),
    ("syria", 760),
];

/// The ISO English name of a numeric code, for messages and the emulator.
pub fn iso_name(code: u32) -> Option<&'static str> {
    CountryCode::for_id(code).ok().map(|c| c.name())
}

/// The API's country list (`GET /country/`), read once when the ISO table does not know a
/// name: `numeric_code` (or `id`) and `name` / `alpha_2`.
#[derive(Debug, Default)]
pub struct Countries(Vec<(u32, String, String)>);

impl Countries {
    pub async fn read(client: &ApiClient) -> Result<Self, Fatal> {
        let (items, _) = client.list("/country/").await?;
        Ok(Self(
            items
                .iter()
                .filter_map(|c| {
                    let code = c
                        .get("numeric_code")
                        .or_else(|| c.get("id"))
                        .and_then(Value::as_u64)?;
                    let text = |k: &str| {
                        c.get(k)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .trim()
                            .to_lowercase()
                    };
                    Some((code as u32, text("name"), text("alpha_2")))
                })
                .collect(),
        ))
    }

    pub fn find(&self, text: &str) -> Option<u32> {
        let wanted = text.trim().to_lowercase();
        self.0
            .iter()
            .find(|(_, name, alpha2)| *name == wanted || *alpha2 == wanted)
            .map(|(code, _, _)| *code)
    }
}

/// The company's categories (`GET /category/?company=C`): id and label.
#[derive(Debug, Default)]
pub struct Categories(Vec<(u64, String)>);

impl Categories {
    pub async fn read(client: &ApiClient) -> Result<Self, Fatal> {
        let (items, _) = client
            .list(&format!("/category/?company={}", client.company))
            .await?;
        Ok(Self(
            items
                .iter()
                .filter_map(|c| {
                    let id = c.get("id").and_then(Value::as_u64)?;
                    let label = c
                        .get("category")
                        .or_else(|| c.get("name"))
                        .and_then(Value::as_str)?;
                    Some((id, label.trim().to_owned()))
                })
                .collect(),
        ))
    }

    /// A label's id (any case); `Err` names the labels there are.
    pub fn find(&self, label: &str) -> Result<u64, String> {
        let wanted = label.trim();
        let matches: Vec<u64> = self
            .0
            .iter()
            .filter(|(_, l)| l.eq_ignore_ascii_case(wanted))
            .map(|(id, _)| *id)
            .collect();
        match matches.as_slice() {
            [id] => Ok(*id),
            [] => {
                let known: Vec<&str> = self.0.iter().take(12).map(|(_, l)| l.as_str()).collect();
                Err(format!(
                    "category {wanted:?} is not a category of this company (there are: {})",
                    known.join(", ")
                ))
            }
            ids => Err(format!("category {wanted:?} is ambiguous: ids {ids:?}")),
        }
    }
}

/// One custom field of a template.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateField {
    pub id: u64,
    pub name: String,
    /// `money`, `number`, `date` or `text`.
    pub data_type: String,
    /// Its column: the name in snake case.
    pub column: String,
}

/// The template an object's custom columns are written to.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub id: u64,
    pub name: String,
    pub fields: Vec<TemplateField>,
}

impl Template {
    /// A response's `template.fields` key (a field's name, or its id in digits) → the field.
    pub fn field_by_key(&self, key: &str) -> Option<&TemplateField> {
        match key.parse::<u64>() {
            Ok(id) => self.fields.iter().find(|f| f.id == id),
            Err(_) => self
                .fields
                .iter()
                .find(|f| f.name == key || f.name.eq_ignore_ascii_case(key.trim())),
        }
    }

    pub fn field(&self, id: u64) -> Option<&TemplateField> {
        self.fields.iter().find(|f| f.id == id)
    }
}

/// The templates chosen for each object: the configured id, or the one active template of
/// the object's kind.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    pub customer: Option<Template>,
    pub supplier: Option<Template>,
    /// Why an object has none, when that is worth a warning.
    pub warnings: Vec<String>,
}

impl Templates {
    pub async fn read(
        client: &ApiClient,
        chosen: [(RevnueObject, Option<u64>); 2],
    ) -> Result<Self, String> {
        let (items, _) = client
            .list(&format!(
                "/custom-field-template/?company={}",
                client.company
            ))
            .await
            .map_err(|f| f.message().to_owned())?;
        let mut templates = Self::default();
        for (object, configured) in chosen {
            // A template's `type` is the object's name (`customer`, `supplier`).
            let kind = object.name();
            let active = |t: &&Map<String, Value>| t.get("is_active") != Some(&Value::Bool(false));
            let picked = match configured {
                Some(id) => {
                    let found = items
                        .iter()
                        .find(|t| t.get("id").and_then(Value::as_u64) == Some(id));
                    match found {
                        Some(t) if active(&t) => Some(t),
                        Some(_) => return Err(format!("{object}_template_id {id} names a template that is not active; activate it or choose another")),
                        None => return Err(format!("{object}_template_id {id} is not a custom field template of company {}", client.company)),
                    }
                }
                None => {
                    let of_kind: Vec<&Map<String, Value>> = items
                        .iter()
                        .filter(|t| t.get("type").and_then(Value::as_str) == Some(kind))
                        .filter(active)
                        .collect();
                    match of_kind.as_slice() {
                        [] => None,
                        [one] => Some(*one),
                        several => {
                            let ids: Vec<u64> = several
                                .iter()
                                .filter_map(|t| t.get("id").and_then(Value::as_u64))
                                .collect();
                            templates.warnings.push(format!(
                                "company {} has {} active {kind} templates ({ids:?}): set {object}_template_id to write custom fields",
                                client.company,
                                ids.len()
                            ));
                            None
                        }
                    }
                }
            };
            let template = picked.map(|t| Template {
                id: t.get("id").and_then(Value::as_u64).unwrap_or_default(),
                name: t
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                fields: t
                    .get("fields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|f| f.get("is_active") != Some(&Value::Bool(false)))
                    .filter_map(|f| {
                        let name = f.get("name").and_then(Value::as_str)?.to_owned();
                        let data_type = f.get("data_type").and_then(Value::as_str)?.to_owned();
                        matches!(data_type.as_str(), "money" | "number" | "date" | "text").then(
                            || TemplateField {
                                id: f.get("id").and_then(Value::as_u64).unwrap_or_default(),
                                column: column_name(&name),
                                name,
                                data_type,
                            },
                        )
                    })
                    .filter(|f| !f.column.is_empty())
                    .collect(),
            });
            match object {
                RevnueObject::Customer => templates.customer = template,
                RevnueObject::Supplier => templates.supplier = template,
            }
        }
        Ok(templates)
    }

    pub fn of(&self, object: RevnueObject) -> Option<&Template> {
        match object {
            RevnueObject::Customer => self.customer.as_ref(),
            RevnueObject::Supplier => self.supplier.as_ref(),
        }
    }

    /// Names in a row's custom values (`template`, when it has any) the template they go to,
    /// or says why it cannot: company `company` has no template of `object`.
    pub fn fill(
        &self,
        object: RevnueObject,
        company: u64,
        fields: &mut Map<String, Value>,
    ) -> Result<(), String> {
        let Some(Value::Object(values)) = fields.get_mut("template") else {
            return Ok(());
        };
        let template = self.of(object).ok_or_else(|| format!(
            "this {object} has custom field values but company {company} has no {object} template to hold them: set {object}_template_id"
        ))?;
        values.insert("id".into(), json!(template.id));
        Ok(())
    }

    /// Each template's fields as typed top-level columns.
    pub fn columns(&self) -> CustomColumns {
        let mut columns = CustomColumns::default();
        for &object in RevnueObject::ALL {
            let Some(template) = self.of(object) else {
                continue;
            };
            columns.set(
                object,
                template
                    .fields
                    .iter()
                    .map(|f| CustomColumn {
                        key: f.column.clone(),
                        schema: value_schema(f, template),
                        required_to_insert: false,
                        kind: format!("{}:{}", f.data_type, f.id),
                    })
                    .collect(),
            );
        }
        columns
    }

    /// "customer: template 7 "Customer fields" (4 fields)" for each object.
    pub fn describe(&self) -> String {
        RevnueObject::ALL
            .iter()
            .map(|&o| match self.of(o) {
                Some(t) => format!(
                    "{o}: template {} {:?} ({} fields)",
                    t.id,
                    t.name,
                    t.fields.len()
                ),
                None => format!("{o}: no custom field template"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A custom field's value schema, with the contract's ranges.
fn value_schema(field: &TemplateField, template: &Template) -> Value {
    let mut schema = match field.data_type.as_str() {
        // A decimal may come as text (warehouse decimals often do): checked when shaped.
        "money" => {
            json!({"type": ["number", "string", "null"], "minimum": 0, "maximum": 999_999_999_999_999.0_f64})
        }
        "number" => {
            json!({"type": ["integer", "string", "null"], "minimum": -999_999_999_999_999_i64, "maximum": 999_999_999_999_999_i64})
        }
        "date" => json!({"type": ["string", "null"], "pattern": r"^\d{4}-\d{2}-\d{2}"}),
        _ => json!({"type": ["string", "null"], "maxLength": 50}),
    };
    schema["title"] = json!(field.name);
    schema["description"] = json!(format!(
        "Custom field {:?} ({}, field {} of template {} {:?}), written into `template.fields`{}.",
        field.name,
        field.data_type,
        field.id,
        template.id,
        template.name,
        match field.data_type.as_str() {
            "money" => "; 0.00 to 999999999999999.00, at most 2 decimals",
            "date" => "; yyyy-MM-dd",
            "text" => "; at most 50 characters",
            _ => "",
        }
    ));
    schema
}

/// Countries and categories as a write resolves them: each list read once a sync, when a row
/// first needs it, and the requests that cost.
#[derive(Default)]
pub struct Lookups {
    countries: OnceCell<Countries>,
    categories: OnceCell<Categories>,
    spent: AtomicU64,
}

impl Lookups {
    /// Requests spent reading the lists.
    pub fn spent(&self) -> u64 {
        self.spent.load(Ordering::Relaxed)
    }

    pub async fn countries(&self, client: &ApiClient) -> Result<&Countries, Fatal> {
        self.countries
            .get_or_try_init(|| async {
                self.spent.fetch_add(1, Ordering::Relaxed);
                match Countries::read(client).await {
                    Ok(countries) => Ok(countries),
                    // The list is undocumented: without it, the ISO table alone decides.
                    Err(Fatal::Config(why)) => {
                        client.notice(format!(
                            "the country list could not be read ({}); countries are matched by ISO code and name only",
                            why.0
                        ));
                        Ok(Countries::default())
                    }
                    Err(other) => Err(other),
                }
            })
            .await
    }

    /// A country name's code, from the ISO table or the list already read.
    pub fn country(&self, name: &str) -> Option<u32> {
        iso_country(name).or_else(|| self.countries.get().and_then(|c| c.find(name)))
    }

    /// Countries and categories named as text become the ids Revnue takes; `Err` says which
    /// value is none.
    pub async fn resolve(
        &self,
        client: &ApiClient,
        fields: &mut Map<String, Value>,
    ) -> Result<Result<(), String>, Fatal> {
        for field in COUNTRY_FIELDS {
            let Some(Value::String(text)) = fields.get(field) else {
                continue;
            };
            let code = match iso_country(text) {
                Some(code) => code,
                None => match self.countries(client).await?.find(text) {
                    Some(code) => code,
                    None => return Ok(Err(format!(
                        "field `{field}`: {text:?} is not a country: give an ISO 3166-1 numeric code (276), alpha-2 (DE), alpha-3 (DEU) or English name (Germany)"
                    ))),
                },
            };
            fields.insert(field.into(), json!(code));
        }
        if let Some(Value::String(label)) = fields.get("category") {
            let id = match label.trim().parse::<u64>() {
                Ok(id) => id,
                Err(_) => {
                    let categories = self
                        .categories
                        .get_or_try_init(|| async {
                            self.spent.fetch_add(1, Ordering::Relaxed);
                            Categories::read(client).await
                        })
                        .await?;
                    match categories.find(label) {
                        Ok(id) => id,
                        Err(why) => return Ok(Err(why)),
                    }
                }
            };
            fields.insert("category".into(), json!(id));
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_in_every_form() {
        for text in ["276", "DE", "de", "DEU", "Germany", " germany "] {
            assert_eq!(iso_country(text), Some(276), "{text}");
        }
        assert_eq!(iso_country("Bolivia"), Some(68));
        assert_eq!(iso_country("United States"), Some(840));
        assert_eq!(iso_country("Korea"), None, "two Koreas: ambiguous");
        assert_eq!(iso_country("Atlantis"), None);
        assert_eq!(iso_country("999"), None);
    }
}
