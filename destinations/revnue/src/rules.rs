//! How Revnue compares a row with a stored record: an empty string is null, numbers by
//! value, and template values by field id (an update sends only those that differ, and the
//! record after it holds them merged).

use crate::lookups::Template;
use engine::reconcile::{self, Rules};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Revnue's comparison: an empty string is null; numbers by value (1500 is 1500.0); template
/// values by field id, and an update sends only the template values that differ.
pub struct RevnueRules;

impl Rules for RevnueRules {
    fn same(&self, field: &str, value: &Value, stored: &Value) -> bool {
        if field == "template" {
            return template_delta(value, stored).is_empty();
        }
        reconcile::same_value(value, stored)
    }

    fn delta(&self, field: &str, value: &Value, stored: &Value) -> Value {
        if field == "template" {
            let id = value.get("id").cloned().unwrap_or(Value::Null);
            return template_body(id, template_delta(value, stored));
        }
        value.clone()
    }

    fn overlay(&self, stored: &mut Map<String, Value>, changed: &Map<String, Value>) {
        overlay(stored, changed);
    }
}

/// The row's template values that differ from the stored ones, by field id.
fn template_delta(desired: &Value, stored: &Value) -> Vec<(u64, Value)> {
    let now: HashMap<u64, Value> = template_fields(stored).into_iter().collect();
    template_fields(desired)
        .into_iter()
        .filter(|(id, v)| !reconcile::same_value(v, now.get(id).unwrap_or(&Value::Null)))
        .collect()
}

/// A template's values, by field id.
fn template_fields(template: &Value) -> Vec<(u64, Value)> {
    template
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f.get("id")?.as_u64()?, f.get("value")?.clone())))
        .collect()
}

/// The template fields of a body, by field id.
fn template_values(body: &Map<String, Value>) -> Vec<(u64, Value)> {
    body.get("template")
        .map(template_fields)
        .unwrap_or_default()
}

fn template_body(id: Value, fields: Vec<(u64, Value)>) -> Value {
    let fields: Vec<Value> = fields
        .into_iter()
        .map(|(id, value)| json!({"id": id, "value": value}))
        .collect();
    json!({"id": id, "fields": fields})
}

/// `current` with `changes` laid over it (template values merged by field id).
pub fn overlay(current: &mut Map<String, Value>, changes: &Map<String, Value>) {
    for (field, value) in changes {
        if field == "template" {
            let mut values = if current.get("template").and_then(|t| t.get("id")) == value.get("id")
            {
                template_values(current)
            } else {
                Vec::new()
            };
            for (id, v) in template_values(changes) {
                match values.iter_mut().find(|(i, _)| *i == id) {
                    Some(slot) => slot.1 = v,
                    None => values.push((id, v)),
                }
            }
            let id = value.get("id").cloned().unwrap_or(Value::Null);
            current.insert(field.clone(), template_body(id, values));
        } else {
            current.insert(field.clone(), value.clone());
        }
    }
}

/// An answer's record as the body that would give it (countries by `country`, template
/// values by `ours`, this object's template): category object → id, country name
/// → code, template field names → `[{id, value}]`. `Err` names what cannot be turned back.
pub fn as_request(
    record: &Map<String, Value>,
    ours: Option<&Template>,
    country: impl Fn(&str) -> Option<u32>,
) -> Result<Map<String, Value>, String> {
    let mut body = Map::new();
    for (field, value) in record {
        let value = match (field.as_str(), value) {
            ("id" | "company", _) => continue,
            ("category", Value::Object(category)) => {
                category.get("id").cloned().unwrap_or(Value::Null)
            }
            ("country" | "business_country", Value::String(name)) => match country(name) {
                Some(code) => json!(code),
                None => {
                    return Err(format!(
                        "its {field} {name:?} is not a country this connector knows"
                    ))
                }
            },
            ("template", Value::Object(template)) => {
                let Some(ours) = ours else {
                    // No template configured here: the stored values are left as they are.
                    continue;
                };
                let mut values = Vec::new();
                if template.get("id").and_then(Value::as_u64) == Some(ours.id) {
                    for (key, v) in template
                        .get("fields")
                        .and_then(Value::as_object)
                        .into_iter()
                        .flatten()
                    {
                        match ours.field_by_key(key) {
                            Some(f) => values.push((f.id, v.clone())),
                            None => {
                                return Err(format!(
                                    "its template field {key:?} is not a field of template {}",
                                    ours.id
                                ))
                            }
                        }
                    }
                }
                template_body(json!(ours.id), values)
            }
            _ => value.clone(),
        };
        body.insert(field.clone(), value);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::reconcile::changes;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn only_what_differs_is_sent_and_template_values_by_field() {
        let current = map(
            json!({"name": "Acme", "city": null, "website": "", "category": 3,
            "template": {"id": 7, "fields": [{"id": 21, "value": 1500.0}, {"id": 22, "value": "gold"}]}}),
        );
        let desired = map(
            json!({"name": "Acme", "city": "", "website": null, "category": 3,
            "template": {"id": 7, "fields": [{"id": 21, "value": 1500}, {"id": 22, "value": "silver"}]}}),
        );
        let changed = changes(&desired, &current, &RevnueRules);
        assert_eq!(
            Value::Object(changed.clone()),
            json!({"template": {"id": 7, "fields": [{"id": 22, "value": "silver"}]}})
        );
        let mut merged = current.clone();
        overlay(&mut merged, &changed);
        assert_eq!(
            merged["template"],
            json!({"id": 7, "fields": [{"id": 21, "value": 1500.0}, {"id": 22, "value": "silver"}]})
        );
        assert!(changes(
            &map(json!({"nda_signed": false})),
            &map(json!({"nda_signed": false})),
            &RevnueRules
        )
        .is_empty());
    }
}
