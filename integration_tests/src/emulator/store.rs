//! The emulator's in-memory records: create, update, upsert, read and search, per the contract.

use super::rules::{check_fields, check_owned_fields, check_record, Definitions, Object};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// An API answer: status and JSON body.
pub type Answer = (u16, Value);

fn error(status: u16, message: impl Into<String>) -> Answer {
    (status, json!({ "message": message.into() }))
}

#[derive(Default)]
struct Table {
    records: Vec<Map<String, Value>>,
    by_uuid: HashMap<String, usize>,
    /// The integer `id` every record also has (v1 addresses records by it).
    by_id: HashMap<u64, usize>,
    /// Natural key → index: client and contract externalId, contact email (lowercased).
    by_key: HashMap<String, usize>,
    /// Clients only: name → index, the upsert fallback when a client has no externalId.
    by_name: HashMap<String, usize>,
}

impl Table {
    fn with_capacity(records: usize) -> Self {
        Self {
            records: Vec::with_capacity(records),
            by_uuid: HashMap::with_capacity(records),
            by_id: HashMap::with_capacity(records),
            by_key: HashMap::with_capacity(records),
            by_name: HashMap::with_capacity(records),
        }
    }
}

/// `POST /{object}/bulk`'s checks: 1 to 100 records, all valid, or one 400 whose message does
/// not say which record failed (all or nothing). Runs outside the store's lock.
pub fn check_bulk(
    object: Object,
    body: Value,
    client_exists: &dyn Fn(&str) -> bool,
    definitions: &Definitions,
) -> Result<Vec<Map<String, Value>>, Answer> {
    let Value::Array(items) = body else {
        return Err(error(400, "a bulk request must be a JSON array of records"));
    };
    if items.is_empty() || items.len() > 100 {
        return Err(error(
            400,
            format!("a bulk request takes 1 to 100 records, got {}", items.len()),
        ));
    }
    items
        .into_iter()
        .map(|item| {
            check_owned_fields(object, item, client_exists)
                .and_then(|fields| check_custom(object, &fields, definitions).map(|_| fields))
                .and_then(|fields| check_record(object, &fields).map(|_| fields))
                .map_err(|message| error(400, message))
        })
        .collect()
}

/// A record's `custom` values against the definitions.
pub fn check_custom(
    object: Object,
    fields: &Map<String, Value>,
    definitions: &Definitions,
) -> Result<(), String> {
    match fields.get("custom") {
        Some(Value::Object(custom)) => definitions.check(object, custom),
        _ => Ok(()),
    }
}

pub struct Store {
    tables: HashMap<Object, Table>,
    presize: usize,
    next_id: u64,
    seed: u64,
    definitions: Arc<Definitions>,
}

fn natural_key(object: Object, record: &Map<String, Value>) -> Option<String> {
    let field = match object {
        Object::Client | Object::Contract => "externalId",
        Object::Contact => "email",
    };
    let value = record.get(field)?.as_str()?;
    Some(match object {
        Object::Contact => value.to_ascii_lowercase(),
        _ => value.to_owned(),
    })
}

impl Store {
    pub fn new(seed: u64, definitions: Arc<Definitions>, presize: usize) -> Self {
        let tables = [Object::Client, Object::Contact, Object::Contract]
            .into_iter()
            .map(|o| (o, Table::with_capacity(presize)))
            .collect();
        Self {
            tables,
            next_id: 0,
            seed,
            definitions,
            presize,
        }
    }

    pub fn reset(&mut self) {
        *self = Self::new(self.seed, self.definitions.clone(), self.presize);
    }

    /// The next integer id, and an opaque uuid such as `cln_qfhfeb05` (not RFC 4122: the
    /// real API's are not either), the same sequence for the same seed.
    fn new_ids(&mut self, object: Object) -> (u64, String) {
        self.next_id += 1;
        let id = self.next_id;
        let mut mixed = (id ^ self.seed.rotate_left(17)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut suffix = String::with_capacity(8);
        for _ in 0..8 {
            suffix.push(char::from_digit((mixed % 36) as u32, 36).expect("a base-36 digit"));
            mixed /= 36;
        }
        (id, format!("{}_{suffix}", object.uuid_prefix()))
    }

    pub fn client_exists(&self, uuid: &str) -> bool {
        self.tables[&Object::Client].by_uuid.contains_key(uuid)
    }

    pub fn definitions(&self) -> &Definitions {
        &self.definitions
    }

    fn validate(&self, object: Object, body: &Value) -> Result<Map<String, Value>, String> {
        let fields = check_fields(object, body, &|uuid| self.client_exists(uuid))?;
        check_custom(object, &fields, &self.definitions)?;
        Ok(fields)
    }

    fn insert(&mut self, object: Object, mut fields: Map<String, Value>) -> Value {
        let (id, uuid) = self.new_ids(object);
        fields.retain(|_, v| !v.is_null());
        fields.shift_remove("id");
        let mut record = Map::with_capacity(fields.len() + 2);
        record.insert("id".into(), Value::from(id));
        record.insert("uuid".into(), Value::String(uuid.clone()));
        record.extend(fields);
        let table = self
            .tables
            .get_mut(&object)
            .expect("every object has a table");
        let index = table.records.len();
        table.by_uuid.insert(uuid, index);
        table.by_id.insert(id, index);
        if let Some(key) = natural_key(object, &record) {
            table.by_key.entry(key).or_insert(index);
        }
        if let (Object::Client, Some(Value::String(name))) = (object, record.get("name")) {
            table.by_name.entry(name.clone()).or_insert(index);
        }
        table.records.push(record.clone());
        Value::Object(record)
    }

    /// Stores records that `check_bulk` accepted, in order, and answers with them.
    pub fn insert_many(&mut self, object: Object, checked: Vec<Map<String, Value>>) -> Answer {
        let created: Vec<Value> = checked
            .into_iter()
            .map(|f| self.insert(object, f))
            .collect();
        (201, Value::Array(created))
    }

    /// `POST /{object}`: one record.
    pub fn create(&mut self, object: Object, body: &Value) -> Answer {
        match self
            .validate(object, body)
            .and_then(|f| check_record(object, &f).map(|_| f))
        {
            Ok(fields) => (201, self.insert(object, fields)),
            Err(message) => error(400, message),
        }
    }

    /// `PUT /{object}/{uuid}`: the fields given change; the others stay.
    pub fn update(&mut self, object: Object, uuid: &str, body: &Value) -> Answer {
        let Some(&index) = self.tables[&object].by_uuid.get(uuid) else {
            return error(404, format!("no {} with uuid {uuid:?}", object.name()));
        };
        let fields = match self.validate(object, body) {
            Ok(fields) => fields,
            Err(message) => return error(400, message),
        };
        self.apply(object, index, fields)
    }

    fn apply(&mut self, object: Object, index: usize, fields: Map<String, Value>) -> Answer {
        let table = self
            .tables
            .get_mut(&object)
            .expect("every object has a table");
        let mut merged = table.records[index].clone();
        for (k, v) in fields {
            match (k.as_str(), v, merged.get_mut("custom")) {
                // Each custom value is a field of its own: an update changes the keys it
                // names and keeps the others, as v1's custom value route does.
                ("custom", Value::Object(values), Some(Value::Object(custom))) => {
                    for (key, value) in values {
                        if value.is_null() {
                            custom.remove(&key);
                        } else {
                            custom.insert(key, value);
                        }
                    }
                }
                (_, Value::Null, _) => {
                    merged.remove(&k);
                }
                (_, v, _) => {
                    merged.insert(k, v);
                }
            }
        }
        if let Err(message) = check_record(object, &merged) {
            return error(400, message);
        }
        let old_key = natural_key(object, &table.records[index]);
        let new_key = natural_key(object, &merged);
        if old_key != new_key {
            if let Some(old) = old_key {
                table.by_key.remove(&old);
            }
            if let Some(new) = new_key {
                table.by_key.insert(new, index);
            }
        }
        if object == Object::Client {
            let old_name = table.records[index]
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let new_name = merged
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if old_name != new_name {
                if let Some(old) = old_name {
                    if table.by_name.get(&old) == Some(&index) {
                        table.by_name.remove(&old);
                    }
                }
                if let Some(new) = new_name {
                    table.by_name.insert(new, index);
                }
            }
        }
        table.records[index] = merged.clone();
        (200, Value::Object(merged))
    }

    /// `POST /{object}/upsert`: match on the natural key (clients fall back to name), update
    /// what matched or create.
    pub fn upsert(&mut self, object: Object, body: &Value) -> Answer {
        let fields = match self.validate(object, body) {
            Ok(fields) => fields,
            Err(message) => return error(400, message),
        };
        let table = &self.tables[&object];
        let matched = match natural_key(object, &fields) {
            Some(key) => table.by_key.get(&key).copied(),
            None if object == Object::Client => fields
                .get("name")
                .and_then(Value::as_str)
                .and_then(|name| table.by_name.get(name).copied()),
            None => None,
        };
        match matched {
            Some(index) => self.apply(object, index, fields),
            None => match check_record(object, &fields) {
                Ok(()) => (201, self.insert(object, fields)),
                Err(message) => error(400, message),
            },
        }
    }

    pub fn read(&self, object: Object, uuid: &str) -> Answer {
        let table = &self.tables[&object];
        match table.by_uuid.get(uuid) {
            Some(&index) => (200, Value::Object(table.records[index].clone())),
            None => error(404, format!("no {} with uuid {uuid:?}", object.name())),
        }
    }

    /// `GET /{object}/search?page=&size=`: 0-based pages in creation order.
    pub fn search(&self, object: Object, page: usize, size: usize) -> Answer {
        if size == 0 || size > 1000 {
            return error(400, "size must be between 1 and 1000");
        }
        let records = &self.tables[&object].records;
        let data: Vec<Value> = records
            .iter()
            .skip(page.saturating_mul(size))
            .take(size)
            .cloned()
            .map(Value::Object)
            .collect();
        let total = records.len();
        (
            200,
            json!({"data": data, "page": page, "size": size, "totalPages": total.div_ceil(size), "totalElements": total}),
        )
    }

    /// The index of the record with this integer id.
    pub fn index_of_id(&self, object: Object, id: u64) -> Option<usize> {
        self.tables[&object].by_id.get(&id).copied()
    }

    pub fn index_of_uuid(&self, object: Object, uuid: &str) -> Option<usize> {
        self.tables[&object].by_uuid.get(uuid).copied()
    }

    /// The index of the record whose natural key (externalId; a contact's email) is `key`.
    pub fn index_of_key(&self, object: Object, key: &str) -> Option<usize> {
        let key = match object {
            Object::Contact => key.to_ascii_lowercase(),
            _ => key.to_owned(),
        };
        self.tables[&object].by_key.get(&key).copied()
    }

    pub fn record(&self, object: Object, index: usize) -> &Map<String, Value> {
        &self.tables[&object].records[index]
    }

    pub fn records_of(&self, object: Object) -> &[Map<String, Value>] {
        &self.tables[&object].records
    }

    /// Creates a record from v2-shaped fields, checked like any create; the error is the
    /// message alone, for the caller's answer format.
    pub fn create_checked(&mut self, object: Object, body: &Value) -> Result<Value, String> {
        let fields = self.validate(object, body)?;
        check_record(object, &fields)?;
        Ok(self.insert(object, fields))
    }

    /// Replaces a record whole (a v1 PUT): every field not in `body` is gone afterwards.
    pub fn replace(&mut self, object: Object, index: usize, body: &Value) -> Result<Value, String> {
        let fields = self.validate(object, body)?;
        let current = &self.tables[&object].records[index];
        let mut cleared: Map<String, Value> = current
            .keys()
            // Custom values are written through their own v1 route, never by a PUT.
            .filter(|k| !matches!(k.as_str(), "id" | "uuid" | "custom"))
            .map(|k| (k.clone(), Value::Null))
            .collect();
        cleared.extend(fields);
        match self.apply(object, index, cleared) {
            (200, record) => Ok(record),
            (_, answer) => Err(answer["message"].as_str().unwrap_or_default().to_owned()),
        }
    }

    /// Sets custom values of a record, each checked against the definitions.
    pub fn set_custom(
        &mut self,
        object: Object,
        index: usize,
        values: &Map<String, Value>,
    ) -> Result<(), String> {
        self.definitions.check(object, values)?;
        let record = &mut self
            .tables
            .get_mut(&object)
            .expect("every object has a table")
            .records[index];
        let custom = record
            .entry("custom")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(custom) = custom {
            for (k, v) in values {
                custom.insert(k.clone(), v.clone());
            }
        }
        Ok(())
    }

    pub fn dump(&self, object: Object) -> Vec<Value> {
        self.tables[&object]
            .records
            .iter()
            .cloned()
            .map(Value::Object)
            .collect()
    }

    pub fn count(&self, object: Object) -> usize {
        self.tables[&object].records.len()
    }
}
