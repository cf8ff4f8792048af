//! destination-trackops: an Airbyte destination that writes warehouse rows into Trackops as
//! clients, their locations and the contacts who work at them, on the shared engine.
//!
//! - [`config`]: the config's Rust types (their schema is the SPEC) → `Settings`.
//! - [`objects`]: `Client`, `Location`, `Contact`, the source of every schema; keys, hierarchy.
//! - [`api`]: the Trackops API's wire: Basic `login/token`, error bodies, paged lists.
//! - [`writer`]: lookups, creates, updates of what differs, parents found never created.
//! - [`locations`]: each client's locations, read once a sync, for the rows that name one.
//!
//! The command line, the pipeline, retries, the gentle adaptive pace and the rejects store
//! are the engine's.

pub mod api;
pub mod config;
pub mod locations;
pub mod objects;
pub mod rules;
pub mod writer;

use api::ApiClient;
use config::Settings;
use engine::catalog::CustomColumns;
use engine::cli::Destination;
use engine::error::ConfigError;
use engine::protocol::{ConfiguredCatalog, LogLevel};
use engine::write::plan::Plan;
use engine::write::start::Connected;
use objects::TrackopsObject;
use writer::TrackopsWriter;

/// The Trackops destination.
pub struct Trackops;

impl Destination for Trackops {
    const NAME: &'static str = "destination-trackops";
    const ABOUT: &'static str =
        "Airbyte destination that writes clients, their locations and contacts into Trackops";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    type Object = TrackopsObject;
    type Settings = Settings;
    type Writer = TrackopsWriter;

    type Config = config::RawConfig;
    const DOCUMENTATION_URL: &'static str = config::DOCUMENTATION_URL;

    fn settings(config: &serde_json::Value) -> Result<Settings, ConfigError> {
        config::from_value(config)
    }

    /// One count of clients (creating nothing) proves the tenant, the employee and the token;
    /// then the rejects store.
    async fn check(settings: &Settings) -> Result<String, String> {
        let client = ApiClient::new(settings)
            .map_err(|e| format!("could not set up HTTP: {e}"))?
            .with_max_retries(0);
        let clients = client.probe().await?;
        let rejects = engine::write::rejects::prove(&settings.sync.rejects, Self::NAME).await?;
        Ok(format!(
            "Trackops at {}: signed in as {:?} (a Full Access employee); the tenant has {clients} clients. Write access is proven by the first write. {rejects}",
            settings.base_url, settings.username
        ))
    }

    /// Trackops's custom fields are not written by this connector: the catalog is static.
    async fn custom_columns(_: &Settings) -> Result<CustomColumns, String> {
        Ok(CustomColumns::default())
    }

    async fn connect(
        settings: &Settings,
        configured: &ConfiguredCatalog,
    ) -> anyhow::Result<Connected<TrackopsWriter>> {
        let plan = Plan::<TrackopsObject>::new(configured)?.keeping_nulls(settings.null_clears);
        let (notice_tx, notices) = tokio::sync::mpsc::unbounded_channel();
        let client = ApiClient::new(settings)?.with_notices(notice_tx);
        let logs = vec![(
            LogLevel::Info,
            format!(
                "Trackops at {}: one request at a time and one a second to begin with, growing while answers stay clean (Trackops publishes no limit); clients, then locations, then contacts",
                settings.base_url
            ),
        )];
        Ok(Connected {
            writer: TrackopsWriter::new(client, settings.clone()),
            plan,
            notices,
            logs,
        })
    }
}
