//! What every destination's config shares: where rejected records go (`object_storage_config`),
//! the checks of URLs and credentials, the validation of a config file against the schema
//! its Rust type derives, with errors that name the field and never its value.

use crate::catalog::schema_settings;
use crate::error::ConfigError;
use crate::protocol::{ConnectorSpecification, DestinationSyncMode};
use crate::secret::Secret;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use url::Url;

/// The settings the write pipeline itself reads; each destination's settings give them.
#[derive(Debug, Clone, Default)]
pub struct PipelineSettings {
    /// Request slots: the pipeline runs a few workers per slot.
    pub max_concurrency: usize,
    pub rejects: RejectsTarget,
    /// 0: off. See `rejection_breaker_records` in the SPEC.
    pub rejection_breaker_records: u64,
    /// Reads allowed, no write: each row's planned outcome is reported and no STATE is echoed.
    pub dry_run: bool,
    /// The rejects store keeps every row's outcome, not only the rejected ones.
    pub every_outcome: bool,
}

/// The JSON schema of a config type, as the SPEC's `connectionSpecification`.
pub fn config_schema<T: JsonSchema>() -> Value {
    let mut schema = schema_settings()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    // Airbyte's platform tolerates fields it does not know in a config; so do the connectors.
    schema["additionalProperties"] = Value::Bool(true);
    crate::catalog::drop_nonstandard_formats(&mut schema);
    schema
}

/// The SPEC of a data-activation destination whose config is `T`: as Airbyte's lists them,
/// `append` alone, since the operations and their modes are in the DESTINATION_CATALOG.
pub fn connector_spec<T: JsonSchema>(documentation_url: &str) -> ConnectorSpecification {
    ConnectorSpecification {
        documentation_url: Some(documentation_url.to_owned()),
        changelog_url: None,
        connection_specification: config_schema::<T>(),
        supports_incremental: Some(true),
        supported_destination_sync_modes: Some(vec![DestinationSyncMode::Append]),
        protocol_version: None,
    }
}

/// A config checked against its type's schema (every problem named by field, values masked),
/// then decoded into that type.
pub fn decode<T: JsonSchema + DeserializeOwned>(value: &Value) -> Result<T, ConfigError> {
    let schema = config_schema::<T>();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the config schema compiles");
    let problems: Vec<String> = validator
        .iter_errors(value)
        .map(|error| describe_schema_error(&schema, value, &error))
        .collect();
    if !problems.is_empty() {
        return Err(ConfigError::new(problems.join("; ")));
    }
    serde_json::from_value(value.clone())
        .map_err(|e| ConfigError::new(format!("does not match the spec: {e}")))
}

/// Reads a config file and turns it into settings with `settle`, naming the file in errors.
pub fn load<S>(
    path: &Path,
    settle: impl FnOnce(&Value) -> Result<S, ConfigError>,
) -> Result<S, ConfigError> {
    let value = read_json_file(path, "config")?;
    settle(&value).map_err(|e| ConfigError::new(format!("config file {}: {}", path.display(), e.0)))
}

/// Where rejected records go, with the field names of Airbyte's data-activation destinations.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(tag = "storage_type")]
pub enum ObjectStorageConfig {
    /// Keep rejected records nowhere: a sync that rejects any record fails at its end.
    #[default]
    #[schemars(title = "None")]
    None,
    /// JSON lines (one rejected record, its stream, line, reason and HTTP status each) in an S3
    /// bucket, under `{bucket_path}/{sync id}/`, one object per checkpoint that had rejections.
    #[schemars(title = "S3")]
    S3 {
        /// The access key id of an AWS user that may put, get and delete objects in the bucket.
        #[schemars(title = "Access Key ID", extend("order" = 1, "examples" = ["A012345678910EXAMPLE"], "always_show" = true))]
        access_key_id: Option<Secret>,
        /// That user's secret access key.
        #[schemars(title = "Secret Access Key", extend("order" = 2, "always_show" = true))]
        secret_access_key: Option<Secret>,
        /// An IAM role to assume instead of keys. Not supported yet: give access keys.
        #[schemars(title = "Role ARN", extend("order" = 3))]
        role_arn: Option<String>,
        /// The bucket's name.
        #[schemars(title = "S3 Bucket Name", length(min = 1), extend("order" = 4, "examples" = ["airbyte_sync"]))]
        s3_bucket_name: String,
        /// The bucket's region; empty means us-east-1.
        #[serde(default)]
        #[schemars(title = "S3 Bucket Region", extend("order" = 5, "examples" = ["us-east-1"]))]
        s3_bucket_region: String,
        /// An S3-compatible endpoint instead of AWS (MinIO, R2...): https, or http on this machine.
        #[schemars(title = "S3 Endpoint", extend("order" = 6, "examples" = ["http://localhost:9000"]))]
        s3_endpoint: Option<String>,
        /// The format of the objects: JSON lines.
        #[serde(default)]
        #[schemars(title = "Output Format", extend("order" = 7))]
        format: RejectsFormat,
        /// A folder in the bucket for the rejected records; each sync writes under
        /// `{bucket_path}/{sync id}/`, the layout Airbyte links to.
        #[serde(default)]
        #[schemars(title = "Bucket Path", extend("order" = 8, "examples" = ["prefix/"]))]
        bucket_path: String,
        /// Which rows are kept: the rejected ones (the default), or every row with what became
        /// of it (created with the platform's id, updated with the fields sent, unchanged,
        /// rejected with the reason), in the same objects.
        #[serde(default)]
        #[schemars(title = "Rows kept", extend("order" = 9))]
        rows_kept: RowsKept,
    },
    /// Append each rejected record, with the reason, to a JSON-lines file on this machine.
    #[schemars(title = "Local JSON-lines file")]
    Local {
        /// Path of the JSON-lines file. In Airbyte, use a path under /local, which is mounted
        /// from /tmp/airbyte_local on the host and must be writable by uid 1000.
        #[schemars(title = "File path", length(min = 1), extend("order" = 1))]
        path: String,
        /// Which rows are kept: the rejected ones (the default), or every row with what became
        /// of it (created with the platform's id, updated with the fields sent, unchanged,
        /// rejected with the reason), in the same file.
        #[serde(default)]
        #[schemars(title = "Rows kept", extend("order" = 2))]
        rows_kept: RowsKept,
    },
}

/// Which rows the object storage keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RowsKept {
    /// Only the rejected rows, with the reason.
    #[default]
    Rejected,
    /// Every row, with what became of it: the sync's outcome log.
    All,
}

impl ObjectStorageConfig {
    fn rows_kept(&self) -> RowsKept {
        match self {
            Self::None => RowsKept::Rejected,
            Self::S3 { rows_kept, .. } | Self::Local { rows_kept, .. } => *rows_kept,
        }
    }
}

/// The objects' format: JSON lines only.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(tag = "format_type")]
pub enum RejectsFormat {
    #[default]
    #[schemars(title = "JSON Lines: Newline-delimited JSON")]
    #[serde(rename = "JSONL")]
    Jsonl,
}

/// Where rejected records go, checked.
#[derive(Debug, Clone, Default)]
pub enum RejectsTarget {
    #[default]
    Nowhere,
    Local(PathBuf),
    S3(S3Target),
}

#[derive(Debug, Clone)]
pub struct S3Target {
    pub bucket: String,
    pub region: String,
    pub endpoint: Option<Url>,
    pub access_key_id: Option<Secret>,
    pub secret_access_key: Option<Secret>,
    /// `bucket_path` without slashes at its ends; may be empty.
    pub prefix: String,
}

/// Reads a JSON file, naming the file in every error.
pub fn read_json_file(path: &Path, what: &str) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(format!(
            "cannot read the {what} file {}: {e}",
            path.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        ConfigError::new(format!(
            "the {what} file {} is not valid JSON: {e}",
            path.display()
        ))
    })
}

pub fn rejects_target(config: ObjectStorageConfig) -> Result<RejectsTarget, ConfigError> {
    Ok(match config {
        ObjectStorageConfig::None => RejectsTarget::Nowhere,
        ObjectStorageConfig::Local { path, .. } => RejectsTarget::Local(PathBuf::from(path)),
        ObjectStorageConfig::S3 {
            access_key_id,
            secret_access_key,
            role_arn,
            s3_bucket_name,
            s3_bucket_region,
            s3_endpoint,
            format: RejectsFormat::Jsonl,
            bucket_path,
            ..
        } => {
            if role_arn.is_some_and(|r| !r.is_empty()) && access_key_id.is_none() {
                return Err(ConfigError::new(
                    "object_storage_config.role_arn: assuming a role is not supported yet; give access_key_id and secret_access_key",
                ));
            }
            if access_key_id.is_some() != secret_access_key.is_some() {
                return Err(ConfigError::new(
                    "object_storage_config: give both access_key_id and secret_access_key, or neither (then the AWS environment's credentials are used)",
                ));
            }
            for (key, field) in [
                (&access_key_id, "access_key_id"),
                (&secret_access_key, "secret_access_key"),
            ] {
                if let Some(key) = key {
                    no_control_characters(key.expose(), &format!("object_storage_config.{field}"))?;
                }
            }
            let endpoint = s3_endpoint
                .filter(|e| !e.is_empty())
                .map(|e| checked_url(&e, "object_storage_config.s3_endpoint"))
                .transpose()?;
            RejectsTarget::S3(S3Target {
                bucket: s3_bucket_name,
                region: match s3_bucket_region.as_str() {
                    "" => "us-east-1".to_owned(),
                    region => region.to_owned(),
                },
                endpoint,
                access_key_id,
                secret_access_key,
                prefix: bucket_path.trim_matches('/').to_owned(),
            })
        }
    })
}

/// A credential with a line break or another control character cannot go into an HTTP header
/// (it usually comes from a copy and paste); say so instead of failing every request.
pub fn no_control_characters(value: &str, field: &str) -> Result<(), ConfigError> {
    match value.chars().position(char::is_control) {
        None => Ok(()),
        Some(at) => Err(ConfigError::new(format!(
            "field `{field}` contains a control character (a line break, tab or similar) at character {}; \
             paste the value again without it",
            at + 1
        ))),
    }
}

/// A URL the connector may send credentials to: https, or plain http to this machine only.
pub fn checked_url(text: &str, field: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text)
        .map_err(|e| ConfigError::new(format!("field `{field}`: {text:?} is not a URL ({e})")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(ConfigError::new(format!(
            "field `{field}`: {text:?} uses plain http, which would send your credentials unencrypted; \
             use https (http is allowed only for localhost / 127.0.0.1)"
        ))),
        other => Err(ConfigError::new(format!(
            "field `{field}`: {text:?} has scheme {other:?}; use an https:// address"
        ))),
    }
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `/credentials/api_key` → `credentials.api_key`; the root is `(root)`.
pub fn dotted_path(pointer: &str) -> String {
    let path = pointer.trim_start_matches('/').replace('/', ".");
    if path.is_empty() {
        "(root)".to_owned()
    } else {
        path
    }
}

/// One schema error as a sentence naming the field. The offending value is masked, since it
/// may be a secret. A failed `oneOf` is explained by the option its discriminator picks.
pub fn describe_schema_error(
    schema: &Value,
    instance: &Value,
    error: &jsonschema::ValidationError,
) -> String {
    let pointer = error.instance_path().as_str().to_owned();
    let field = dotted_path(&pointer);
    if let jsonschema::error::ValidationErrorKind::OneOfNotValid { .. } = error.kind() {
        if let Some(explained) = explain_one_of(schema, instance, &pointer) {
            return explained;
        }
    }
    format!("field `{field}`: {}", error.masked())
}

fn explain_one_of(schema: &Value, instance: &Value, pointer: &str) -> Option<String> {
    // Walk the schema along the instance path (object properties only, which is all the spec has).
    let mut sub = schema;
    for segment in pointer
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
    {
        sub = sub.get("properties")?.get(segment)?;
    }
    let options = sub.get("oneOf")?.as_array()?;
    let value = instance.pointer(pointer)?;
    let field = dotted_path(pointer);
    let (discriminator, consts) = discriminator_of(options)?;
    let chosen = value.get(&discriminator);
    let Some(option) = options
        .iter()
        .find(|o| chosen.is_some() && o["properties"][&discriminator]["const"] == *chosen.unwrap())
    else {
        return Some(format!(
            "field `{field}.{discriminator}` must be one of {}",
            consts.join(", ")
        ));
    };
    let validator = jsonschema::validator_for(option).ok()?;
    let problems: Vec<String> = validator
        .iter_errors(value)
        .map(|e| {
            let inner = dotted_path(&format!("{pointer}{}", e.instance_path().as_str()));
            format!("field `{inner}`: {}", e.masked())
        })
        .collect();
    (!problems.is_empty()).then(|| problems.join("; "))
}

fn discriminator_of(options: &[Value]) -> Option<(String, Vec<String>)> {
    let first = options.first()?.get("properties")?.as_object()?;
    let key = first
        .iter()
        .find(|(_, p)| p.get("const").is_some())?
        .0
        .clone();
    let consts = options
        .iter()
        .filter_map(|o| {
            o["properties"][&key]["const"]
                .as_str()
                .map(|c| format!("{c:?}"))
        })
        .collect();
    Some((key, consts))
}

/// A destination's defaults and bounds for the options every config shares ([`SyncOptions`]).
pub trait SyncLimits {
    /// Requests in flight by default, and the most a user may set.
    const MAX_CONCURRENCY: (u32, u32);
    /// What the concurrency setting means for this API, for its description.
    const CONCURRENCY_NOTE: &'static str;
    /// Retries of a failed request by default.
    const MAX_RETRIES: u32;
    /// Identical rejections that end a sync, by default.
    const REJECTION_BREAKER_RECORDS: u64;
    /// The field order of the first shared option in the SPEC: after the destination's own.
    const FIRST_ORDER: u32;

    fn max_concurrency() -> u32 {
        Self::MAX_CONCURRENCY.0
    }
    fn max_retries() -> u32 {
        Self::MAX_RETRIES
    }
    fn request_timeout_secs() -> u64 {
        30
    }
    fn rejection_breaker_records() -> u64 {
        Self::REJECTION_BREAKER_RECORDS
    }
}

/// The options every destination's config shares, flattened into it with the destination's
/// [`SyncLimits`]: how many requests at once, how often to retry, how long to wait, where
/// rejected records go, and when identical rejections end a sync.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(bound = "")]
#[schemars(bound = "L: SyncLimits")]
pub struct SyncOptions<L: SyncLimits> {
    #[serde(default = "L::max_concurrency")]
    #[schemars(title = "Maximum concurrent requests", description = L::CONCURRENCY_NOTE,
        range(min = 1, max = L::MAX_CONCURRENCY.1), extend("order" = L::FIRST_ORDER))]
    pub max_concurrency: u32,

    /// How many times a request that failed for a passing reason (408, 5xx, timeout, dropped
    /// connection) is retried, with exponential backoff, before the sync fails. A 429 spends
    /// no retry: every request waits its Retry-After (up to 15 minutes a request in all).
    #[serde(default = "L::max_retries")]
    #[schemars(title = "Maximum retries", range(min = 0, max = 10), extend("order" = L::FIRST_ORDER + 1))]
    pub max_retries: u32,

    /// Seconds to wait for one answer before treating the request as failed and retrying it.
    #[serde(default = "L::request_timeout_secs")]
    #[schemars(title = "Request timeout (seconds)", range(min = 1, max = 600), extend("order" = L::FIRST_ORDER + 2))]
    pub request_timeout_secs: u64,

    /// Where records the API refuses (or that break the object's schema) are kept: nowhere, an
    /// S3 bucket (or any S3-compatible store), or a local JSON-lines file. With None, a sync
    /// that rejects any record ends as failed after writing all it can.
    #[serde(default)]
    #[schemars(title = "Object storage for rejected records", extend("order" = L::FIRST_ORDER + 3, "default" = {"storage_type": "None"}))]
    pub object_storage_config: ObjectStorageConfig,

    /// When every one of the first N records of a sync is rejected for the same reason, the
    /// cause is a field mapping or configuration mistake, not bad data: the sync then fails
    /// with that reason and emits no state for those records (all of them if the sync has
    /// fewer than N). 0 turns the check off.
    #[serde(default = "L::rejection_breaker_records")]
    #[schemars(title = "Rejection breaker (records)", range(min = 0, max = 1_000_000_000), extend("order" = L::FIRST_ORDER + 4))]
    pub rejection_breaker_records: u64,

    /// Reads what exists and compares it with each row, but writes nothing: every row's planned
    /// outcome (create, update with the fields it would change, unchanged, rejected with the
    /// reason) goes to the log, one summary line per stream, and to the object storage when
    /// it keeps all rows. No STATE is echoed, so the source's cursor does not move.
    #[serde(default)]
    #[schemars(title = "Dry run", extend("order" = L::FIRST_ORDER + 5))]
    pub dry_run: bool,

    #[serde(skip)]
    #[schemars(skip)]
    limits: std::marker::PhantomData<L>,
}

/// [`SyncOptions`], checked.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub max_concurrency: usize,
    pub max_retries: u32,
    pub request_timeout: std::time::Duration,
    pub rejects: RejectsTarget,
    /// 0: off.
    pub rejection_breaker_records: u64,
    /// Reads only, no write, no STATE.
    pub dry_run: bool,
    /// The rejects store keeps every row's outcome.
    pub every_outcome: bool,
}

impl<L: SyncLimits> SyncOptions<L> {
    /// Checks the options; `object_storage_config` is replaced by `earlier` where a destination
    /// still reads an older name for it and the config gives only that.
    pub fn settle(self, earlier: Option<ObjectStorageConfig>) -> Result<SyncSettings, ConfigError> {
        let storage = match (self.object_storage_config, earlier) {
            (ObjectStorageConfig::None, Some(earlier)) => earlier,
            (storage, _) => storage,
        };
        Ok(SyncSettings {
            max_concurrency: self.max_concurrency as usize,
            max_retries: self.max_retries,
            request_timeout: std::time::Duration::from_secs(self.request_timeout_secs),
            every_outcome: storage.rows_kept() == RowsKept::All,
            rejects: rejects_target(storage)?,
            rejection_breaker_records: self.rejection_breaker_records,
            dry_run: self.dry_run,
        })
    }
}

impl From<&SyncSettings> for PipelineSettings {
    fn from(sync: &SyncSettings) -> Self {
        Self {
            max_concurrency: sync.max_concurrency,
            rejects: sync.rejects.clone(),
            rejection_breaker_records: sync.rejection_breaker_records,
            dry_run: sync.dry_run,
            every_outcome: sync.every_outcome,
        }
    }
}
