//! The Gainsight PX config: Rust types whose schemars schema is the SPEC, and the one step
//! that turns a config file into validated `Settings`.

use engine::config::{
    checked_url, no_control_characters, PipelineSettings, SyncLimits, SyncOptions, SyncSettings,
};
use engine::error::ConfigError;
use engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

pub const DOCUMENTATION_URL: &str =
    "https://docs.airbyte.com/integrations/destinations/gainsight-px";

/// The config file as the user writes it.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(title = "Gainsight PX Destination Spec")]
pub struct RawConfig {
    /// A Gainsight PX REST API key (Administration > REST API > New API Key) with the Read and
    /// Write permissions. It is sent as the X-APTRINSIC-API-KEY header.
    #[schemars(title = "API key", length(min = 1), extend("order" = 0))]
    pub api_key: Secret,

    /// The data center your PX subscription lives in: US (api.aptrinsic.com), EU
    /// (api-eu.aptrinsic.com) or US2 (api-us2.aptrinsic.com).
    #[serde(default)]
    #[schemars(title = "Data center", extend("order" = 1, "default" = "US"))]
    pub data_center: DataCenter,

    /// The product tag keys (AP-XXXXXXXXXX-2, under Administration > Products) added to every
    /// account and user that carries no propertyKeys of its own. At least one.
    #[schemars(title = "Product tag keys", length(min = 1), extend("order" = 2))]
    pub property_keys: Vec<String>,

    /// Overrides the data center's address (a proxy, a test server). It must use https
    /// (plain http is allowed only for a loopback address).
    #[serde(default)]
    #[schemars(title = "API base URL", extend("order" = 3))]
    pub base_url: Option<String>,

    /// The requests a second the connector keeps to, from the first request. PX publishes
    /// about 200 a second per subscription; lower it to leave room for other users of the key.
    /// A 429 still pauses every request for its Retry-After and lowers the pace to what PX took.
    #[serde(default = "default_requests_per_second")]
    #[schemars(title = "Requests per second", range(min = 1, max = 1000), extend("order" = 5))]
    pub requests_per_second: u32,

    /// The options every destination shares (concurrency, retries, timeout, rejects store,
    /// rejection breaker), with this destination's defaults and bounds.
    #[serde(flatten)]
    pub sync: SyncOptions<Limits>,
}

/// This destination's defaults and bounds for the options every destination shares.
#[derive(Debug)]
pub struct Limits;

impl SyncLimits for Limits {
    const MAX_CONCURRENCY: (u32, u32) = (16, 64);
    const CONCURRENCY_NOTE: &'static str = "The most requests kept in flight at once (1 to 64). The number in use adapts to how PX answers (it shrinks on 429, 5xx and timeouts), so it seldom needs changing.";
    const MAX_RETRIES: u32 = 5;
    const REJECTION_BREAKER_RECORDS: u64 = 1000;
    const FIRST_ORDER: u32 = 6;
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum DataCenter {
    #[default]
    US,
    EU,
    US2,
}

impl DataCenter {
    pub fn base_url(self) -> &'static str {
        match self {
            Self::US => "https://api.aptrinsic.com",
            Self::EU => "https://api-eu.aptrinsic.com",
            Self::US2 => "https://api-us2.aptrinsic.com",
        }
    }
}

fn default_requests_per_second() -> u32 {
    200
}

/// The configuration, checked and typed.
#[derive(Debug, Clone)]
pub struct Settings {
    pub api_key: Secret,
    /// Without a trailing slash; `/v1/...` is appended to it.
    pub base_url: String,
    pub property_keys: Vec<String>,
    pub requests_per_second: u32,
    /// The options every destination shares, checked.
    pub sync: SyncSettings,
}

impl From<Settings> for PipelineSettings {
    fn from(settings: Settings) -> Self {
        (&settings.sync).into()
    }
}

pub fn from_value(value: &Value) -> Result<Settings, ConfigError> {
    let raw: RawConfig = engine::config::decode(value)?;
    no_control_characters(raw.api_key.expose(), "api_key")?;
    let base_url = match &raw.base_url {
        Some(url) if !url.trim().is_empty() => checked_url(url.trim(), "base_url")?
            .as_str()
            .trim_end_matches('/')
            .to_owned(),
        _ => raw.data_center.base_url().to_owned(),
    };
    for (i, key) in raw.property_keys.iter().enumerate() {
        if key.trim().is_empty() {
            return Err(ConfigError::new(format!(
                "field `property_keys.{i}` is empty; give a product tag key such as AP-XXXXXXXXXX-2"
            )));
        }
    }
    Ok(Settings {
        api_key: raw.api_key,
        base_url,
        property_keys: raw.property_keys,
        requests_per_second: raw.requests_per_second,
        sync: raw.sync.settle(None)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_center_picks_the_host_and_base_url_overrides_it() {
        let config = json!({"api_key": "k", "property_keys": ["AP-1"], "data_center": "EU"});
        assert_eq!(
            from_value(&config).unwrap().base_url,
            "https://api-eu.aptrinsic.com"
        );
        let config =
            json!({"api_key": "k", "property_keys": ["AP-1"], "base_url": "http://127.0.0.1:9/"});
        let settings = from_value(&config).unwrap();
        assert_eq!(settings.base_url, "http://127.0.0.1:9");
        assert_eq!(settings.sync.max_concurrency, 16);
        let plain =
            json!({"api_key": "k", "property_keys": ["AP-1"], "base_url": "http://px.example"});
        assert!(from_value(&plain).unwrap_err().0.contains("plain http"));
    }

    #[test]
    fn property_keys_are_required_and_errors_never_show_the_key() {
        let err = from_value(&json!({"api_key": "sekrit-1", "property_keys": []}))
            .unwrap_err()
            .0;
        assert!(err.contains("property_keys"), "{err}");
        let err = from_value(&json!({"api_key": "sekrit\n1", "property_keys": ["AP-1"]}))
            .unwrap_err()
            .0;
        assert!(err.contains("api_key") && !err.contains("sekrit"), "{err}");
        let err = from_value(&json!({"api_key": 5, "property_keys": ["AP-1"]}))
            .unwrap_err()
            .0;
        assert!(err.contains("api_key"), "{err}");
    }
}
