//! destination-gainsight-px: an Airbyte destination that writes warehouse rows into Gainsight
//! PX as accounts and users, on the shared engine.
//!
//! - [`config`]: the config's Rust types (their schema is the SPEC) → `Settings`.
//! - [`objects`]: `Account`, `User`, the source of every schema; keys, modes, date shaping.
//! - [`api`]: the PX REST API: key header, error envelope, attribute metadata, requests.
//! - [`writer`]: records into POST / PUT / PUT-then-POST, duplicates checked by a GET.
//!
//! The command line, the pipeline, retries, concurrency and the rejects store are the
//! engine's (`engine::cli::Destination`).

pub mod api;
pub mod config;
pub mod objects;
pub mod writer;

use api::ApiClient;
use config::Settings;
use engine::catalog::{CustomColumns, Object};
use engine::cli::Destination;
use engine::error::ConfigError;
use engine::protocol::{ConfiguredCatalog, LogLevel};
use engine::write::plan::Plan;
use engine::write::start::Connected;
use objects::PxObject;
use writer::PxWriter;

/// The Gainsight PX destination.
pub struct GainsightPx;

impl Destination for GainsightPx {
    const NAME: &'static str = "destination-gainsight-px";
    const ABOUT: &'static str =
        "Airbyte destination that writes accounts and users into Gainsight PX";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    type Object = PxObject;
    type Settings = Settings;
    type Writer = PxWriter;

    type Config = config::RawConfig;
    const DOCUMENTATION_URL: &'static str = config::DOCUMENTATION_URL;

    fn settings(config: &serde_json::Value) -> Result<Settings, ConfigError> {
        config::from_value(config)
    }

    /// Reads both attribute lists (the Read permission; nothing is written) and proves the
    /// rejects store. Write is proven only by the first write: PX has no way to ask.
    async fn check(settings: &Settings) -> Result<String, String> {
        let client = ApiClient::new(settings)
            .map_err(|e| format!("could not set up HTTP: {e}"))?
            .with_max_retries(0);
        let attributes = client.attributes(PxObject::ALL).await?;
        let rejects = engine::write::rejects::prove(&settings.sync.rejects, Self::NAME).await?;
        Ok(format!(
            "Gainsight PX at {}: the API key reads attribute metadata (Read permission): {}. \
             The Write permission is proven only by the first write (a 403 then ends the sync). {rejects}",
            settings.base_url,
            attributes.describe()
        ))
    }

    async fn custom_columns(settings: &Settings) -> Result<CustomColumns, String> {
        let client = ApiClient::new(settings)
            .map_err(|e| e.to_string())?
            .with_max_retries(0);
        Ok(client.attributes(PxObject::ALL).await?.columns())
    }

    async fn connect(
        settings: &Settings,
        configured: &ConfiguredCatalog,
    ) -> anyhow::Result<Connected<PxWriter>> {
        let keys = serde_json::to_string(&settings.property_keys)?;
        let with_keys = |plan: Plan<PxObject>| {
            // Every body must also be a valid create body: the product keys go in when a
            // record has none.
            PxObject::ALL.iter().fold(plan, |plan, &object| {
                plan.with_default(object, "propertyKeys", keys.clone())
            })
        };
        let plan = with_keys(Plan::<PxObject>::new(configured)?);
        let (notice_tx, notices) = tokio::sync::mpsc::unbounded_channel();
        let client = ApiClient::new(settings)?.with_notices(notice_tx);
        let mut logs = Vec::new();
        // Custom attributes typed and accepted as columns, as discover published them.
        let plan = match client.attributes(&plan.objects()).await {
            Ok(attributes) => {
                with_keys(Plan::with_custom_fields(configured, &attributes.columns())?)
            }
            Err(why) => {
                logs.push((
                    LogLevel::Warn,
                    format!("attribute definitions could not be read ({why}); custom attribute values are sent unchecked in `customAttributes`"),
                ));
                plan
            }
        };
        logs.push((
            LogLevel::Info,
            format!(
                "Gainsight PX at {}: one request a record; product keys {} added where a record has none",
                settings.base_url,
                settings.property_keys.join(", ")
            ),
        ));
        Ok(Connected {
            writer: PxWriter::new(client, settings.sync.dry_run),
            plan,
            notices,
            logs,
        })
    }
}
