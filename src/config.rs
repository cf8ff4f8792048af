//! The connector's configuration: Rust types whose schemars schema *is* the SPEC, and the one
//! step that turns a config file into validated, typed `Settings`.

use engine::config::{
    checked_url, no_control_characters, ObjectStorageConfig, PipelineSettings, SyncLimits,
    SyncOptions, SyncSettings,
};
use engine::error::ConfigError;
use engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
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
    #[schemars(title = "API surface", extend("order" = 8, "default" = "auto"))]
    pub api_surface: ApiSurface,

    /// The options every destination shares (concurrency, retries, timeout, rejects store,
    /// rejection breaker), with this destination's defaults and bounds.
    #[serde(flatten)]
    pub sync: SyncOptions<Limits>,
}

/// This destination's defaults and bounds for the options every destination shares.
#[derive(Debug)]
pub struct Limits;

impl SyncLimits for Limits {
    const MAX_CONCURRENCY: (u32, u32) = (32, 64);
    const CONCURRENCY_NOTE: &'static str = "The most requests the connector keeps in flight at once (1 to 64). The number in use adapts to how ClientSuccess answers: it grows while answers come back fast and clean and shrinks on 429, 5xx, timeouts or slow answers, so there is seldom a reason to change this.";
    const MAX_RETRIES: u32 = 3;
    const REJECTION_BREAKER_RECORDS: u64 = 1000;
    const FIRST_ORDER: u32 = 9;
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

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}
fn default_auth_url() -> String {
    DEFAULT_AUTH_URL.to_owned()
}
fn default_batch_size() -> u32 {
    100
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
    /// The options every destination shares, checked.
    pub sync: SyncSettings,
    pub api_surface: ApiSurface,
}

/// The JSON schema of the config, as the SPEC's `connectionSpecification`.
pub fn config_schema() -> Value {
    engine::config::config_schema::<RawConfig>()
}

pub fn from_value(value: &Value) -> Result<Settings, ConfigError> {
    settings_from(engine::config::decode::<RawConfig>(value)?)
}

impl From<&Settings> for PipelineSettings {
    fn from(settings: &Settings) -> Self {
        (&settings.sync).into()
    }
}

impl From<Settings> for PipelineSettings {
    fn from(settings: Settings) -> Self {
        Self::from(&settings)
    }
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
        sync: raw.sync.settle(raw.rejected_records)?,
        api_surface: raw.api_surface,
    })
}

/// The `api_surface` setting: detect, or pin one surface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiSurface {
    /// Probe the account at the start of each check and sync, and use the best surface it has.
    #[default]
    Auto,
    /// `/v2/{object}/bulk`, `/v2/{object}/upsert`, `PUT /v2/{object}/{uuid}`.
    V2Bulk,
    /// `POST /v2/{object}` one record at a time and `PUT /v2/{object}/{uuid}`; upserts look
    /// records up through v1.
    V2Single,
    /// The v1 API (clients and contacts only).
    V1,
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::config::RejectsTarget;
    use serde_json::json;
    use std::time::Duration;

    fn api_key_config() -> Value {
        json!({"credentials": {"auth_type": "api_key", "api_key": "k-123"}})
    }

    #[test]
    fn defaults_apply() {
        let settings = from_value(&api_key_config()).unwrap();
        assert_eq!(settings.base_url, DEFAULT_BASE_URL);
        assert_eq!(settings.batch_size, 100);
        assert_eq!(settings.sync.max_concurrency, 32);
        assert_eq!(settings.sync.max_retries, 3);
        assert_eq!(settings.sync.request_timeout, Duration::from_secs(30));
        assert!(matches!(settings.sync.rejects, RejectsTarget::Nowhere));
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
            matches!(settings.sync.rejects, RejectsTarget::Local(ref p) if p == std::path::Path::new("/tmp/r.jsonl"))
        );
    }

    #[test]
    fn object_storage_config_takes_the_cdk_s3_fields() {
        let settings = from_value(&json!({"credentials": {"auth_type": "api_key", "api_key": "k"},
            "object_storage_config": {"storage_type": "S3", "access_key_id": "AKIA", "secret_access_key": "s",
            "s3_bucket_name": "b", "s3_bucket_region": "", "s3_endpoint": "http://127.0.0.1:9000",
            "format": {"format_type": "JSONL"}, "bucket_path": "/rejects/"}}))
        .unwrap();
        let RejectsTarget::S3(target) = settings.sync.rejects else {
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
