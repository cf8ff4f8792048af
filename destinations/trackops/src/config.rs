//! The Trackops config: Rust types whose schemars schema is the SPEC, and the one step that
//! turns a config file into validated `Settings`.

use engine::config::{
    checked_url, no_control_characters, PipelineSettings, SyncLimits, SyncOptions, SyncSettings,
};
use engine::error::ConfigError;
use engine::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

pub const DOCUMENTATION_URL: &str = "https://docs.airbyte.com/integrations/destinations/trackops";

/// The config file as the user writes it.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(title = "Trackops Destination Spec")]
pub struct RawConfig {
    /// Your Trackops tenant: the `acme` of https://acme.viewcases.com. Give this or base_url.
    #[serde(default)]
    #[schemars(title = "Subdomain", extend("order" = 0))]
    pub subdomain: Option<String>,

    /// The API's address instead of the subdomain's (https://acme.viewcases.com/api/v1); https
    /// only, or http on a loopback address.
    #[serde(default)]
    #[schemars(title = "API base URL", extend("order" = 1))]
    pub base_url: Option<String>,

    /// The login name of an active Full Access employee (a dedicated one is advised: every
    /// change is recorded under its name). The connector adds `/token` itself.
    #[schemars(title = "Username", length(min = 1), extend("order" = 2))]
    pub username: String,

    /// A company API token (Settings > API Tokens, created by the Chief Operator).
    #[schemars(title = "API token", length(min = 1), extend("order" = 3))]
    pub api_token: Secret,

    /// The role id new contacts get when a row has no role_id (from Trackops' user roles; it
    /// must be a role available to client contacts).
    #[schemars(title = "Default contact role id", range(min = 1), extend("order" = 4))]
    pub default_role_id: u64,

    /// The name of the primary location a new client gets when its row names none.
    #[serde(default = "default_location_name")]
    #[schemars(title = "Default location name", extend("order" = 5))]
    pub default_location_name: String,

    /// The two-character state or province code a new client's (or location's) row falls
    /// back on when it has none.
    #[serde(default)]
    #[schemars(title = "Default state", length(min = 2, max = 2), extend("order" = 6))]
    pub default_state: Option<String>,

    /// The ISO 3166-1 alpha-2 country code a row falls back on when it has none.
    #[serde(default)]
    #[schemars(title = "Default country", length(min = 2, max = 2), extend("order" = 7))]
    pub default_country: Option<String>,

    /// Whether a null column clears that field on update. Off (the default): a null is left
    /// out, so a sparse row never wipes data.
    #[serde(default)]
    #[schemars(title = "Nulls clear fields", extend("order" = 8))]
    pub null_clears: bool,

    /// The options every destination shares (concurrency, retries, timeout, rejects store,
    /// rejection breaker), with this destination's defaults and bounds.
    #[serde(flatten)]
    pub sync: SyncOptions<Limits>,
}

/// This destination's defaults and bounds for the options every destination shares.
#[derive(Debug)]
pub struct Limits;

impl SyncLimits for Limits {
    const MAX_CONCURRENCY: (u32, u32) = (4, 8);
    const CONCURRENCY_NOTE: &'static str = "The most requests in flight at once (1 to 8). Trackops publishes no limit: the connector starts at one request at a time and one a second, and grows only while answers stay clean.";
    const MAX_RETRIES: u32 = 5;
    const REJECTION_BREAKER_RECORDS: u64 = 1000;
    const FIRST_ORDER: u32 = 9;
}

fn default_location_name() -> String {
    "Main Location".to_owned()
}

/// The configuration, checked and typed.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `https://{subdomain}.viewcases.com/api/v1`, without a trailing slash.
    pub base_url: String,
    pub username: String,
    pub api_token: Secret,
    pub default_role_id: u64,
    pub default_location_name: String,
    pub default_state: Option<String>,
    pub default_country: Option<String>,
    pub null_clears: bool,
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
    no_control_characters(&raw.username, "username")?;
    no_control_characters(raw.api_token.expose(), "api_token")?;
    if raw.username.contains(':') {
        return Err(ConfigError::new(
            "field `username` contains a colon, which Basic authentication cannot carry",
        ));
    }
    let base_url = match (
        raw.subdomain.as_deref().map(str::trim),
        raw.base_url.as_deref().map(str::trim),
    ) {
        (_, Some(url)) if !url.is_empty() => checked_url(url, "base_url")?
            .as_str()
            .trim_end_matches('/')
            .to_owned(),
        (Some(sub), _) if !sub.is_empty() => {
            let valid = sub.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !sub.starts_with('-');
            if !valid {
                return Err(ConfigError::new(format!(
                    "field `subdomain`: {sub:?} is not a subdomain; give only the `acme` of https://acme.viewcases.com"
                )));
            }
            format!("https://{}.viewcases.com/api/v1", sub.to_ascii_lowercase())
        }
        _ => {
            return Err(ConfigError::new(
                "give `subdomain` (the `acme` of https://acme.viewcases.com) or `base_url`",
            ))
        }
    };
    let code = |value: Option<String>, field: &str| -> Result<Option<String>, ConfigError> {
        match value
            .map(|v| v.trim().to_ascii_uppercase())
            .filter(|v| !v.is_empty())
        {
            Some(v) if v.len() == 2 && v.bytes().all(|b| b.is_ascii_alphanumeric()) => Ok(Some(v)),
            Some(v) => Err(ConfigError::new(format!(
                "field `{field}`: {v:?} is not a two-character code"
            ))),
            None => Ok(None),
        }
    };
    Ok(Settings {
        base_url,
        username: raw.username.trim().to_owned(),
        api_token: raw.api_token,
        default_role_id: raw.default_role_id,
        default_location_name: raw.default_location_name,
        default_state: code(raw.default_state, "default_state")?,
        default_country: code(raw.default_country, "default_country")?,
        null_clears: raw.null_clears,
        sync: raw.sync.settle(None)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"username": "api", "api_token": "t-1", "default_role_id": 3})
    }

    #[test]
    fn the_subdomain_makes_the_host_and_base_url_overrides_it() {
        let mut config = base();
        config["subdomain"] = json!("Acme");
        assert_eq!(
            from_value(&config).unwrap().base_url,
            "https://acme.viewcases.com/api/v1"
        );
        config["base_url"] = json!("http://127.0.0.1:9/api/v1/");
        assert_eq!(
            from_value(&config).unwrap().base_url,
            "http://127.0.0.1:9/api/v1"
        );
        assert!(from_value(&base()).unwrap_err().0.contains("subdomain"));
        let mut bad = base();
        bad["subdomain"] = json!("acme.viewcases.com/x");
        assert!(from_value(&bad).unwrap_err().0.contains("not a subdomain"));
    }

    #[test]
    fn codes_are_checked_and_secrets_never_shown() {
        let mut config = base();
        config["subdomain"] = json!("acme");
        config["default_country"] = json!("us");
        let settings = from_value(&config).unwrap();
        assert_eq!(settings.default_country.as_deref(), Some("US"));
        assert_eq!(settings.default_location_name, "Main Location");
        config["api_token"] = json!("sekrit\n");
        let err = from_value(&config).unwrap_err().0;
        assert!(
            err.contains("api_token") && !err.contains("sekrit"),
            "{err}"
        );
    }
}
