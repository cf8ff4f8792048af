//! destination-revnue: an Airbyte destination that writes warehouse rows into Revnue as
//! customers and suppliers, on the shared engine, under the account's budget of requests a
//! minute.
//!
//! - [`config`]: the config's Rust types (their schema is the SPEC) → `Settings`.
//! - [`objects`]: `Customer`, `Supplier`, the source of every schema; keys, value shaping.
//! - [`lookups`]: countries, categories and custom field templates.
//! - [`api`]: the Revnue API's wire: Bearer token, error bodies, paged lists, the budget.
//! - [`rules`]: how a row compares with a stored record (template values by field id).
//! - [`writer`]: creates, updates of what differs, upsert by name through one listing.
//!
//! The command line, the pipeline, retries, the pace and the rejects store are the engine's.

pub mod api;
pub mod config;
pub mod lookups;
pub mod objects;
pub mod rules;
pub mod writer;

use api::{ApiClient, PAGE_SIZE};
use config::Settings;
use engine::catalog::CustomColumns;
use engine::cli::Destination;
use engine::error::ConfigError;
use engine::http::spending::{duration_of, thousands};
use engine::protocol::{ConfiguredCatalog, LogLevel};
use engine::write::plan::Plan;
use engine::write::start::Connected;
use lookups::Templates;
use objects::RevnueObject;
use writer::RevnueWriter;

/// The Revnue destination.
pub struct Revnue;

fn templates_wanted(settings: &Settings) -> [(RevnueObject, Option<u64>); 2] {
    [
        (RevnueObject::Customer, settings.customer_template_id),
        (RevnueObject::Supplier, settings.supplier_template_id),
    ]
}

/// What a budget means in records, said where a sync starts and in `check`.
fn budget_plan(per_minute: u32) -> String {
    format!(
        "{per_minute} requests a minute (requests_per_minute), shared by every caller of the account: \
         about {} records an hour at one request a record; 10,000 records take about {}",
        thousands(u64::from(per_minute) * 60),
        duration_of(10_000, f64::from(per_minute))
    )
}

impl Destination for Revnue {
    const NAME: &'static str = "destination-revnue";
    const ABOUT: &'static str =
        "Airbyte destination that writes customers and suppliers into Revnue";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    type Object = RevnueObject;
    type Settings = Settings;
    type Writer = RevnueWriter;

    type Config = config::RawConfig;
    const DOCUMENTATION_URL: &'static str = config::DOCUMENTATION_URL;

    fn settings(config: &serde_json::Value) -> Result<Settings, ConfigError> {
        config::from_value(config)
    }

    /// One read of the company's customers proves the token and the company (one request of
    /// the budget); then the rejects store.
    async fn check(settings: &Settings) -> Result<String, String> {
        let client = ApiClient::new(settings)
            .map_err(|e| format!("could not set up HTTP: {e}"))?
            .with_max_retries(0);
        let customers = client.probe().await?;
        let rejects = engine::write::rejects::prove(&settings.sync.rejects, Self::NAME).await?;
        Ok(format!(
            "Revnue at {}: the token reads company {}{}. Budget: {}. {rejects}",
            settings.base_url,
            settings.company,
            customers
                .map(|n| format!(" ({n} customers)"))
                .unwrap_or_default(),
            budget_plan(settings.requests_per_minute)
        ))
    }

    /// The chosen templates' fields, typed, as top-level columns.
    async fn custom_columns(settings: &Settings) -> Result<CustomColumns, String> {
        let client = ApiClient::new(settings)
            .map_err(|e| e.to_string())?
            .with_max_retries(0);
        Ok(Templates::read(&client, templates_wanted(settings))
            .await?
            .columns())
    }

    async fn connect(
        settings: &Settings,
        configured: &ConfiguredCatalog,
    ) -> anyhow::Result<Connected<RevnueWriter>> {
        let (notice_tx, notices) = tokio::sync::mpsc::unbounded_channel();
        let client = ApiClient::new(settings)?.with_notices(notice_tx);
        let mut logs = vec![(
            LogLevel::Info,
            format!(
                "Revnue at {}, company {}: budget {}; kept from the first request and shared by lookups and writes. \
                 Each update and append_dedup stream first lists the company's records ({PAGE_SIZE} a page); \
                 an update that changes nothing is not sent",
                settings.base_url,
                settings.company,
                budget_plan(settings.requests_per_minute)
            ),
        )];
        let templates = match Templates::read(&client, templates_wanted(settings)).await {
            Ok(templates) => {
                for warning in &templates.warnings {
                    logs.push((LogLevel::Warn, warning.clone()));
                }
                logs.push((
                    LogLevel::Info,
                    format!("custom fields: {}", templates.describe()),
                ));
                templates
            }
            Err(why)
                if settings.customer_template_id.is_some()
                    || settings.supplier_template_id.is_some() =>
            {
                anyhow::bail!(engine::error::Fatal::config(why))
            }
            Err(why) => {
                logs.push((
                    LogLevel::Warn,
                    format!("custom field templates could not be read ({why}); custom columns are not accepted"),
                ));
                Templates::default()
            }
        };
        let plan = Plan::<RevnueObject>::with_custom_fields(configured, &templates.columns())?
            .keeping_nulls(settings.null_clears);
        Ok(Connected {
            writer: RevnueWriter::new(client, templates, settings.sync.dry_run),
            plan,
            notices,
            logs,
        })
    }
}
