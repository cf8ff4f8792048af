//! The configured catalog turned into a plan before the first byte of stdin: each stream's
//! object, mode and compiled validator. Anything unsupported fails here, naming the stream.

use crate::catalog::{
    matching_keys, operation_schema_with, CustomColumn, CustomColumns, Object, WriteMode,
};
use crate::config::dotted_path;
use crate::error::ConfigError;
use crate::json::{Doc, DocJson, Members};
use crate::protocol::ConfiguredCatalog;
use jsonschema::Validator;
use rustc_hash::FxHashMap;
use serde_json::Value;
use std::borrow::Cow;

pub struct StreamPlan<O> {
    pub name: String,
    pub namespace: Option<String>,
    pub object: O,
    pub mode: WriteMode,
    /// Index into `Plan::operations`.
    operation: usize,
}

impl<O: Object> StreamPlan<O> {
    /// "stream `people` (person upsert)", for messages.
    pub fn label(&self) -> String {
        format!("stream `{}` ({} {})", self.name, self.object, self.mode)
    }
}

/// One object × mode, with its schema compiled once for every stream that uses it.
pub struct Operation<O> {
    pub object: O,
    pub mode: WriteMode,
    pub validator: Validator<DocJson>,
    /// The same schema's fast path: records it is sure of skip jsonschema.
    pub fast: crate::json::FastSchema,
    /// Each field's name lower-cased → the name.
    by_lowercase: FxHashMap<String, String>,
    /// Custom fields accepted as top-level columns, folded into the object's custom container
    /// before sending.
    pub custom_keys: Vec<String>,
    /// The account's custom fields of this object, for [`Object::shape`].
    pub custom: Vec<CustomColumn>,
    /// A bit for each custom key's length (mod 64): most columns are known not to be custom
    /// keys without comparing a string, so records without such columns pay almost nothing.
    custom_key_lengths: u64,
}

fn length_bit(name: &str) -> u64 {
    1 << (name.len() % 64)
}

impl<O: Object> Operation<O> {
    /// Fits columns an orchestrator renamed or added: PyAirbyte's cache lower-cases names and
    /// adds `_airbyte_raw_id`, `_airbyte_extracted_at`, `_airbyte_meta`. Those are dropped, and
    /// a column that matches a field only by case is taken as that field when nothing else
    /// claims it. Returns whether anything changed; run only when a record failed validation,
    /// so records that fit cost nothing.
    pub fn adapt_columns(&self, members: &mut Members) -> bool {
        let before = members.len();
        members.retain(|name, _| !name.starts_with("_airbyte_"));
        let mut changed = members.len() != before;
        let renames: Vec<Option<&String>> = members
            .iter()
            .map(|(name, _)| {
                let field = self.by_lowercase.get(&name.to_lowercase())?;
                (field != name && !members.contains_key(field)).then_some(field)
            })
            .collect();
        for (i, (name, _)) in members.iter_mut().enumerate() {
            let Some(field) = renames[i] else { continue };
            let claimed = renames.iter().filter(|r| *r == &Some(field)).count();
            if claimed == 1 {
                *name = Cow::Owned(field.clone());
                changed = true;
            }
        }
        changed
    }

    /// Moves custom-field columns into the record's custom container, where the API takes
    /// them (a column wins over the same key already there). Returns whether any moved.
    pub fn fold_custom(&self, members: &mut Members) -> bool {
        let is_custom = |name: &str| {
            self.custom_key_lengths & length_bit(name) != 0
                && self.custom_keys.iter().any(|k| k == name)
        };
        if !members.iter().any(|(name, _)| is_custom(name)) {
            return false;
        }
        let mut moved = Vec::new();
        for key in &self.custom_keys {
            if let Some(value) = members.remove(key) {
                moved.push((key.clone(), value));
            }
        }
        if moved.is_empty() {
            return false;
        }
        let mut custom = match members.remove(O::CUSTOM_CONTAINER) {
            Some(Doc::Object(custom)) => custom,
            _ => Members::default(),
        };
        for (key, value) in moved {
            custom.insert(key, value);
        }
        members.insert(O::CUSTOM_CONTAINER, Doc::Object(custom));
        true
    }
}

pub struct Plan<O> {
    pub streams: Vec<StreamPlan<O>>,
    operations: Vec<Operation<O>>,
    by_name: FxHashMap<String, Vec<usize>>,
    /// A null column is sent as null (to clear the field on update) instead of left out.
    pub keep_nulls: bool,
    /// Fields a record of an object gets when it has none (a destination's configured
    /// defaults), already parsed.
    defaults: Vec<(O, &'static str, Doc<'static>)>,
    /// The stream [`Plan::find`] found last.
    last_found: std::sync::atomic::AtomicUsize,
}

impl<O: Object> Plan<O> {
    /// The plan with the static schemas (no custom field definitions read).
    pub fn new(catalog: &ConfiguredCatalog) -> Result<Self, ConfigError> {
        Self::with_custom_fields(catalog, &CustomColumns::default())
    }

    /// The plan with the account's custom fields: typed, and accepted as top-level columns.
    pub fn with_custom_fields(
        catalog: &ConfiguredCatalog,
        custom: &CustomColumns,
    ) -> Result<Self, ConfigError> {
        let mut operations: Vec<Operation<O>> = Vec::new();
        let mut streams: Vec<StreamPlan<O>> = Vec::new();
        let mut by_name: FxHashMap<String, Vec<usize>> = FxHashMap::default();
        for configured in &catalog.streams {
            let name = &configured.stream.name;
            let namespace = configured.stream.namespace.as_deref();
            let twice = by_name.get(name).is_some_and(|indexes| {
                indexes
                    .iter()
                    .any(|&i| streams[i].namespace.as_deref() == namespace)
            });
            if twice {
                return Err(ConfigError::new(format!(
                    "stream `{name}`{} is configured twice in the catalog; each stream may appear once",
                    namespace.map(|n| format!(" (namespace `{n}`)")).unwrap_or_default()
                )));
            }
            let primary_key = primary_key(name, configured.primary_key.as_ref())?;
            let object_name = configured
                .destination_object_name
                .as_deref()
                .unwrap_or(name);
            let object = O::parse(object_name).ok_or_else(|| {
                let names: Vec<&str> = O::ALL.iter().map(|o| o.name()).collect();
                ConfigError::new(format!(
                    "stream `{name}`: {object_name:?} is not an object this destination writes; \
                     set destination_object_name to one of {}",
                    names.join(", ")
                ))
            })?;
            let mode =
                WriteMode::from_sync_mode(&configured.destination_sync_mode).ok_or_else(|| {
                    ConfigError::new(format!(
                        "stream `{name}`: destination_sync_mode {:?} is not supported; \
                     use append (insert), update, or append_dedup (upsert)",
                        configured.destination_sync_mode
                    ))
                })?;
            if !object.modes().contains(&mode) {
                return Err(ConfigError::new(format!(
                    "stream `{name}`: {} does not {mode} a {object}; choose another destination_sync_mode",
                    O::PLATFORM
                )));
            }
            if let (WriteMode::Upsert, Some(chosen)) = (mode, &primary_key) {
                let supported = matching_keys(object, mode).unwrap_or_default();
                if let Some(bad) = chosen.iter().find(|key| !supported.contains(key)) {
                    let names: Vec<String> = supported.iter().map(|k| k.join(".")).collect();
                    return Err(ConfigError::new(format!(
                        "stream `{name}`: {} upserts a {object} on {} only, not on `{}`; \
                         choose one of those as the matching key",
                        O::PLATFORM,
                        names.join(" or "),
                        dotted_path(&bad.join("/"))
                    )));
                }
            }
            let operation = match operations
                .iter()
                .position(|op| op.object == object && op.mode == mode)
            {
                Some(index) => index,
                None => {
                    let (schema, custom_keys) =
                        operation_schema_with(object, mode, custom.of(object));
                    let validator = jsonschema::options_for::<DocJson>()
                        .should_validate_formats(true)
                        .build(&schema)
                        .expect("operation schemas compile");
                    let by_lowercase = schema["properties"]
                        .as_object()
                        .into_iter()
                        .flat_map(|p| p.keys())
                        .map(|name| (name.to_lowercase(), name.clone()))
                        .collect();
                    operations.push(Operation {
                        object,
                        mode,
                        fast: crate::json::FastSchema::compile(&schema),
                        validator,
                        by_lowercase,
                        custom_key_lengths: custom_keys
                            .iter()
                            .fold(0, |bits, key| bits | length_bit(key)),
                        custom_keys,
                        custom: custom.of(object).to_vec(),
                    });
                    operations.len() - 1
                }
            };
            by_name.entry(name.clone()).or_default().push(streams.len());
            streams.push(StreamPlan {
                name: name.clone(),
                namespace: configured.stream.namespace.clone(),
                object,
                mode,
                operation,
            });
        }
        Ok(Self {
            streams,
            operations,
            by_name,
            keep_nulls: false,
            defaults: Vec::new(),
            last_found: std::sync::atomic::AtomicUsize::new(usize::MAX),
        })
    }

    /// Gives every record of `object` that lacks `field` the value `json` (valid JSON). The
    /// text lives for the process: a handful of small defaults, parsed once.
    pub fn with_default(mut self, object: O, field: &'static str, json: String) -> Self {
        let text: &'static str = Box::leak(json.into_boxed_str());
        let value = Doc::parse(text).expect("a default is valid JSON");
        self.defaults.push((object, field, value));
        self
    }

    /// The defaults of `object`'s records.
    pub fn defaults_of(&self, object: O) -> impl Iterator<Item = (&&'static str, &Doc<'static>)> {
        self.defaults
            .iter()
            .filter(move |(o, _, _)| *o == object)
            .map(|(_, field, value)| (field, value))
    }

    /// Nulls sent as null, so that an update clears those fields (a destination's setting).
    pub fn keeping_nulls(mut self, keep: bool) -> Self {
        self.keep_nulls = keep;
        self
    }

    /// The stream a record belongs to: by name and namespace, or by name alone when only one
    /// configured stream has that name.
    pub fn find(&self, name: &str, namespace: Option<&str>) -> Option<usize> {
        // Records come in runs of one stream: the last stream found is checked first. A name
        // and namespace match one stream at most (the plan refuses a stream twice).
        let last = self.last_found.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(stream) = self.streams.get(last) {
            if crate::json::same_text(&stream.name, name)
                && stream.namespace.as_deref() == namespace
            {
                return Some(last);
            }
        }
        let found = self.find_hashed(name, namespace)?;
        self.last_found
            .store(found, std::sync::atomic::Ordering::Relaxed);
        Some(found)
    }

    fn find_hashed(&self, name: &str, namespace: Option<&str>) -> Option<usize> {
        let candidates = self.by_name.get(name)?;
        candidates
            .iter()
            .copied()
            .find(|&i| self.streams[i].namespace.as_deref() == namespace)
            .or_else(|| (candidates.len() == 1).then(|| candidates[0]))
    }

    /// The objects the catalog writes, each once.
    pub fn objects(&self) -> Vec<O> {
        let mut objects: Vec<O> = Vec::new();
        for stream in &self.streams {
            if !objects.contains(&stream.object) {
                objects.push(stream.object);
            }
        }
        objects
    }

    /// Each object and mode the streams write.
    pub fn modes(&self) -> Vec<(O, WriteMode)> {
        self.streams.iter().map(|s| (s.object, s.mode)).collect()
    }

    /// Each stream's object and mode, with the stream named for messages.
    pub fn needs(&self) -> Vec<(O, WriteMode, String)> {
        self.streams
            .iter()
            .map(|s| (s.object, s.mode, format!("stream `{}`", s.name)))
            .collect()
    }

    pub fn operation(&self, stream: usize) -> &Operation<O> {
        &self.operations[self.streams[stream].operation]
    }
}

/// A stream's `primary_key`: a list of field paths, each a list of names (`[["email"]]`).
fn primary_key(
    stream: &str,
    value: Option<&Value>,
) -> Result<Option<Vec<Vec<String>>>, ConfigError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    serde_json::from_value(value.clone()).map(Some).map_err(|_| {
        let got = match value {
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Object(_) => "an object",
            Value::Array(_) => "a list that is not a list of lists of field names",
            Value::Null => "null",
        };
        ConfigError::new(format!(
            "stream `{stream}`: field `primary_key` must be a list of field paths such as [[\"email\"]], got {got}"
        ))
    })
}
