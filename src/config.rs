//! The connector's configuration: Rust types whose schemars schema *is* the SPEC, and the one
//! step that turns a config file into validated, typed `Settings`.

use crate::catalog::schema_settings;
use crate::clientsuccess::ApiSurface;
use crate::error::ConfigError;
use crate::protocol::{ConnectorSpecification, DestinationSyncMode};
use crate::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

pub const DOCUMENTATION_URL: &str =
    "https://docs.airbyte.com/integrations/destinations/clientsuccess";
pub const DEFAULT_BASE_URL: &str = "https://api.clientsuccess.com/v2";
pub const DEFAULT_AUTH_URL: &str = "https://api.clientsuccess.com/v1/auth";

/// The config file as the user writes it.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(title = "ClientSuccess Destination Spec")]
pub struct RawConfig {
    /// How the connector signs in to ClientSuccess.
    #[schemars(title = "Authentication", extend("order" = 0))]
    pub credentials: Credentials,

    /// Address of the ClientSuccess v2 API. Leave the default unless ClientSuccess gave you
    /// another one; it must use https (plain http is allowed only for a loopback address).
    #[serde(default = "default_base_url")]
    #[schemars(title = "API base URL", extend("order" = 1))]
    pub base_url: String,

    /// Records sent per bulk request when inserting clients and contacts (1 to 100). Lower it
    /// only if ClientSuccess times out on large batches.
    #[serde(default = "default_batch_size")]
    #[schemars(title = "Batch size", range(min = 1, max = 100), extend("order" = 2))]
    pub batch_size: u32,

    /// The most requests the connector keeps in flight at once (1 to 64). The number in use
    /// adapts to how ClientSuccess answers: it grows while answers come back fast and clean and
    /// shrinks on 429, 5xx, timeouts or slow answers, so there is seldom a reason to change this.
    #[serde(default = "default_max_concurrency")]
    #[schemars(title = "Maximum concurrent requests", range(min = 1, max = 64), extend("order" = 3))]
    pub max_concurrency: u32,

    /// How many times a request that failed for a passing reason (429, 408, 5xx, timeout,
    /// dropped connection) is retried, with exponential backoff, before the sync fails (0 to 10).
    #[serde(default = "default_max_retries")]
    #[schemars(title = "Maximum retries", range(min = 0, max = 10), extend("order" = 4))]
    pub max_retries: u32,

    /// Seconds to wait for ClientSuccess to answer one request before treating it as failed and
    /// retrying it (1 to 600).
    #[serde(default = "default_request_timeout_secs")]
    #[schemars(title = "Request timeout (seconds)", range(min = 1, max = 600), extend("order" = 5))]
    pub request_timeout_secs: u64,

    /// Where records that ClientSuccess refuses (or that break the object's schema) are kept:
    /// nowhere, an S3 bucket (or any S3-compatible store), or a local JSON-lines file. With
    /// None, a sync that rejects any record ends as failed after writing all it can.
    #[serde(default)]
    #[schemars(title = "Object storage for rejected records", extend("order" = 6))]
    pub object_storage_config: ObjectStorageConfig,

    /// The earlier name of `object_storage_config` (None or Local), still read when
    /// `object_storage_config` is absent so existing configs keep working.
    #[serde(default)]
    #[schemars(skip)]
    pub rejected_records: Option<ObjectStorageConfig>,

    /// Which ClientSuccess write API to use. `auto` (the default) probes the account at the
    /// start of each check and sync, without creating anything, and uses the best it has: v2
    /// bulk + upsert, else v2 single-record routes, else v1 (clients and contacts only). Pin
    /// one only if detection picks wrong.
    #[serde(default)]
    #[schemars(title = "API surface", extend("order" = 8))]
    pub api_surface: ApiSurface,

    /// When every one of the first N records of a sync is rejected for the same reason, the
    /// cause is a field mapping or configuration mistake, not bad data: the sync then fails with
    /// that reason and emits no state for those records (all of them if the sync has fewer than
    /// N). Raise N to tolerate longer runs of identical rejections; 0 turns the check off.
    #[serde(default = "default_rejection_breaker_records")]
    #[schemars(title = "Rejection breaker (records)", range(min = 0, max = 1_000_000_000), extend("order" = 7))]
    pub rejection_breaker_records: u64,
}

/// How the connector authenticates.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "auth_type")]
pub enum Credentials {
    /// An API key from ClientSuccess: Global Settings > API Credentials.
    #[serde(rename = "api_key")]
    #[schemars(title = "API key")]
    ApiKey {
        /// The key from Global Settings > API Credentials in ClientSuccess. It is sent as the
        /// Authorization header of every request.
        #[schemars(title = "API key", length(min = 1), extend("order" = 1))]
        api_key: Secret,
    },
    /// A ClientSuccess user's username and password, exchanged for a token that is renewed
    /// when it expires.
    #[serde(rename = "username_password")]
    #[schemars(title = "Username and password")]
    UsernamePassword {
        /// The ClientSuccess user to sign in as; a dedicated "API Access" user is recommended.
        #[schemars(title = "Username", length(min = 1), extend("order" = 1))]
        username: String,
        /// That user's password.
        #[schemars(title = "Password", length(min = 1), extend("order" = 2))]
        password: Secret,
        /// Where the token is obtained. Leave the default unless ClientSuccess gave you another.
        #[serde(default = "default_auth_url")]
        #[schemars(title = "Authentication URL", extend("order" = 3))]
        auth_url: String,
    },
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
    },
    /// Append each rejected record, with the reason, to a JSON-lines file on this machine.
    #[schemars(title = "Local JSON-lines file")]
    Local {
        /// Path of the JSON-lines file. In Airbyte, use a path under /local, which is mounted
        /// from /tmp/airbyte_local on the host and must be writable by uid 1000.
        #[schemars(title = "File path", length(min = 1), extend("order" = 1))]
        path: String,
    },
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

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}
fn default_auth_url() -> String {
    DEFAULT_AUTH_URL.to_owned()
}
fn default_batch_size() -> u32 {
    100
}
fn default_max_concurrency() -> u32 {
    32
}
fn default_max_retries() -> u32 {
    3
}
fn default_request_timeout_secs() -> u64 {
    30
}
fn default_rejection_breaker_records() -> u64 {
    1000
}

/// How the connector authenticates, validated.
#[derive(Debug, Clone)]
pub enum Auth {
    ApiKey(Secret),
    UsernamePassword {
        username: String,
        password: Secret,
        auth_url: Url,
    },
}

/// The configuration, checked and typed: what the rest of the connector reads.
#[derive(Debug, Clone)]
pub struct Settings {
    pub auth: Auth,
    /// Without a trailing slash; endpoint paths are appended to it.
    pub base_url: String,
    pub batch_size: usize,
    pub max_concurrency: usize,
    pub max_retries: u32,
    pub request_timeout: Duration,
    pub rejects: RejectsTarget,
    /// 0: off. See `RawConfig::rejection_breaker_records`.
    pub rejection_breaker_records: u64,
    pub api_surface: ApiSurface,
}

/// The JSON schema of the config, as the SPEC's `connectionSpecification`.
pub fn config_schema() -> Value {
    let mut schema = schema_settings()
        .into_generator()
        .into_root_schema_for::<RawConfig>()
        .to_value();
    // Airbyte's platform tolerates fields it does not know in a config; so does the connector.
    schema["additionalProperties"] = Value::Bool(true);
    crate::catalog::drop_nonstandard_formats(&mut schema);
    schema
}

pub fn spec() -> ConnectorSpecification {
    ConnectorSpecification {
        documentation_url: Some(DOCUMENTATION_URL.to_owned()),
        changelog_url: None,
        connection_specification: config_schema(),
        supports_incremental: Some(true),
        // As Airbyte's data-activation destinations list them: the operations (insert, update,
        // upsert) and their modes are in the DESTINATION_CATALOG.
        supported_destination_sync_modes: Some(vec![DestinationSyncMode::Append]),
        protocol_version: None,
    }
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

/// Loads, validates and types the config in one step.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    let value = read_json_file(path, "config")?;
    from_value(&value)
        .map_err(|e| ConfigError::new(format!("config file {}: {}", path.display(), e.0)))
}

pub fn from_value(value: &Value) -> Result<Settings, ConfigError> {
    let schema = config_schema();
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
    let raw: RawConfig = serde_json::from_value(value.clone())
        .map_err(|e| ConfigError::new(format!("does not match the spec: {e}")))?;
    settings_from(raw)
}

fn settings_from(raw: RawConfig) -> Result<Settings, ConfigError> {
    let base_url = checked_url(&raw.base_url, "base_url")?;
    let auth = match raw.credentials {
        Credentials::ApiKey { api_key } => {
            no_control_characters(api_key.expose(), "credentials.api_key")?;
            Auth::ApiKey(api_key)
        }
        Credentials::UsernamePassword {
            username,
            password,
            auth_url,
        } => {
            no_control_characters(&username, "credentials.username")?;
            no_control_characters(password.expose(), "credentials.password")?;
            Auth::UsernamePassword {
                username,
                password,
                auth_url: checked_url(&auth_url, "credentials.auth_url")?,
            }
        }
    };
    Ok(Settings {
        auth,
        base_url: base_url.as_str().trim_end_matches('/').to_owned(),
        batch_size: raw.batch_size as usize,
        max_concurrency: raw.max_concurrency as usize,
        max_retries: raw.max_retries,
        request_timeout: Duration::from_secs(raw.request_timeout_secs),
        rejects: rejects_target(match (raw.object_storage_config, raw.rejected_records) {
            (ObjectStorageConfig::None, Some(earlier)) => earlier,
            (config, _) => config,
        })?,
        rejection_breaker_records: raw.rejection_breaker_records,
        api_surface: raw.api_surface,
    })
}

fn rejects_target(config: ObjectStorageConfig) -> Result<RejectsTarget, ConfigError> {
    Ok(match config {
        ObjectStorageConfig::None => RejectsTarget::Nowhere,
        ObjectStorageConfig::Local { path } => RejectsTarget::Local(PathBuf::from(path)),
        ObjectStorageConfig::S3 {
            access_key_id,
            secret_access_key,
            role_arn,
            s3_bucket_name,
            s3_bucket_region,
            s3_endpoint,
            format: RejectsFormat::Jsonl,
            bucket_path,
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
fn no_control_characters(value: &str, field: &str) -> Result<(), ConfigError> {
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
fn checked_url(text: &str, field: &str) -> Result<Url, ConfigError> {
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

fn is_loopback(url: &Url) -> bool {
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
fn describe_schema_error(
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api_key_config() -> Value {
        json!({"credentials": {"auth_type": "api_key", "api_key": "k-123"}})
    }

    #[test]
    fn defaults_apply() {
        let settings = from_value(&api_key_config()).unwrap();
        assert_eq!(settings.base_url, DEFAULT_BASE_URL);
        assert_eq!(settings.batch_size, 100);
        assert_eq!(settings.max_concurrency, 32);
        assert_eq!(settings.max_retries, 3);
        assert_eq!(settings.request_timeout, Duration::from_secs(30));
        assert!(matches!(settings.rejects, RejectsTarget::Nowhere));
        assert!(matches!(settings.auth, Auth::ApiKey(_)));
    }

    #[test]
    fn username_password_gets_default_auth_url() {
        let settings = from_value(&json!({"credentials": {"auth_type": "username_password",
            "username": "u", "password": "p"}, "rejected_records": {"storage_type": "Local", "path": "/tmp/r.jsonl"}}))
        .unwrap();
        let Auth::UsernamePassword { auth_url, .. } = settings.auth else {
            panic!()
        };
        assert_eq!(auth_url.as_str(), DEFAULT_AUTH_URL);
        // The earlier field name still works.
        assert!(
            matches!(settings.rejects, RejectsTarget::Local(ref p) if p == Path::new("/tmp/r.jsonl"))
        );
    }

    #[test]
    fn object_storage_config_takes_the_cdk_s3_fields() {
        let settings = from_value(&json!({"credentials": {"auth_type": "api_key", "api_key": "k"},
            "object_storage_config": {"storage_type": "S3", "access_key_id": "AKIA", "secret_access_key": "s",
            "s3_bucket_name": "b", "s3_bucket_region": "", "s3_endpoint": "http://127.0.0.1:9000",
            "format": {"format_type": "JSONL"}, "bucket_path": "/rejects/"}}))
        .unwrap();
        let RejectsTarget::S3(target) = settings.rejects else {
            panic!()
        };
        assert_eq!(
            (
                target.bucket.as_str(),
                target.region.as_str(),
                target.prefix.as_str()
            ),
            ("b", "us-east-1", "rejects")
        );
        let error = from_value(&json!({"credentials": {"auth_type": "api_key", "api_key": "k"},
            "object_storage_config": {"storage_type": "S3", "s3_bucket_name": "b", "s3_endpoint": "http://storage.example"}}))
        .unwrap_err();
        assert!(
            error.0.contains("object_storage_config.s3_endpoint"),
            "{}",
            error.0
        );
        let error = from_value(&json!({"credentials": {"auth_type": "api_key", "api_key": "k"},
            "object_storage_config": {"storage_type": "S3", "s3_bucket_name": "b", "role_arn": "arn:aws:iam::1:role/x"}}))
        .unwrap_err();
        assert!(error.0.contains("role_arn"), "{}", error.0);
    }

    #[test]
    fn errors_name_the_field_and_never_the_secret() {
        let mut config = api_key_config();
        config["batch_size"] = json!(500);
        let err = from_value(&config).unwrap_err().0;
        assert!(err.contains("`batch_size`"), "{err}");

        let err = from_value(&json!({"credentials": {"auth_type": "api_key", "api_key": 424242}}))
            .unwrap_err()
            .0;
        assert!(err.contains("`credentials.api_key`"), "{err}");
        assert!(!err.contains("424242"), "secret leaked: {err}");

        let err = from_value(&json!({"credentials": {"auth_type": "oauth"}}))
            .unwrap_err()
            .0;
        assert!(
            err.contains("credentials.auth_type") && err.contains("\"api_key\""),
            "{err}"
        );

        let err = from_value(&json!({})).unwrap_err().0;
        assert!(err.contains("credentials"), "{err}");

        let err = from_value(
            &json!({"credentials": {"auth_type": "api_key", "api_key": "sekrit-999\n"}}),
        )
        .unwrap_err()
        .0;
        assert!(
            err.contains("`credentials.api_key`") && err.contains("control character"),
            "{err}"
        );
        assert!(!err.contains("sekrit"), "secret leaked: {err}");
        let err = from_value(&json!({"credentials": {"auth_type": "username_password",
            "username": "u", "password": "p\tq"}}))
        .unwrap_err()
        .0;
        assert!(err.contains("`credentials.password`"), "{err}");
    }

    #[test]
    fn base_url_must_be_https_unless_loopback() {
        for (url, ok) in [
            ("https://api.clientsuccess.com/v2/", true),
            ("http://127.0.0.1:8080/v2", true),
            ("http://localhost:1/v2", true),
            ("http://[::1]:1/v2", true),
            ("http://api.clientsuccess.com/v2", false),
            ("ftp://x/v2", false),
            ("not a url", false),
        ] {
            let mut config = api_key_config();
            config["base_url"] = json!(url);
            let result = from_value(&config);
            assert_eq!(result.is_ok(), ok, "{url}: {result:?}");
            if let Err(e) = result {
                assert!(e.0.contains("base_url"), "{}", e.0);
            }
        }
        let settings = from_value(
            &json!({"credentials": {"auth_type": "api_key", "api_key": "k"},
            "base_url": "https://x.example/v2/"}),
        )
        .unwrap();
        assert_eq!(settings.base_url, "https://x.example/v2");
    }

    #[test]
    fn spec_marks_secrets_orders_fields_and_has_one_of() {
        let schema = config_schema();
        let text = schema.to_string();
        assert!(!text.contains("$ref"));
        let options = schema["properties"]["credentials"]["oneOf"]
            .as_array()
            .unwrap();
        assert_eq!(options.len(), 2);
        assert_eq!(
            options[0]["properties"]["api_key"]["airbyte_secret"],
            json!(true)
        );
        assert_eq!(
            options[1]["properties"]["password"]["airbyte_secret"],
            json!(true)
        );
        assert_eq!(
            options[1]["properties"]["auth_url"]["default"],
            json!(DEFAULT_AUTH_URL)
        );
        for (name, property) in schema["properties"].as_object().unwrap() {
            assert!(property.get("title").is_some(), "{name} has no title");
            assert!(
                property.get("description").is_some(),
                "{name} has no description"
            );
            assert!(property.get("order").is_some(), "{name} has no order");
        }
        assert_eq!(schema["properties"]["batch_size"]["maximum"], json!(100));
        assert_eq!(
            schema["properties"]["base_url"]["default"],
            json!(DEFAULT_BASE_URL)
        );
    }
}
