//! ClientSuccess on the engine's command line: what `check`, `discover` and `write` ask of
//! this platform. Parsing, exit codes, signals and the pipeline are the engine's.

use crate::catalog::{CustomColumns, ObjectKind};
use crate::clientsuccess::{custom, ApiClient, ClientSuccessWriter};
use crate::config::{self, ApiSurface, Settings};
use engine::cli::Destination;
use engine::protocol::{ConfiguredCatalog, LogLevel};
use engine::write::plan::Plan;
use engine::write::start::Connected;
use std::process::ExitCode;

/// The ClientSuccess destination.
pub struct ClientSuccess;

pub fn main() -> ExitCode {
    engine::cli::main::<ClientSuccess>()
}

impl Destination for ClientSuccess {
    const NAME: &'static str = "destination-clientsuccess";
    const ABOUT: &'static str =
        "Airbyte destination that writes clients, contacts and contracts into ClientSuccess";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    type Object = ObjectKind;
    type Settings = Settings;
    type Writer = ClientSuccessWriter;

    type Config = config::RawConfig;
    const DOCUMENTATION_URL: &'static str = config::DOCUMENTATION_URL;

    fn settings(config: &serde_json::Value) -> Result<Settings, engine::error::ConfigError> {
        config::from_value(config)
    }

    /// Signs in, makes one read, finds the write routes of every object without creating
    /// anything, and proves the rejected-records store; the answer says which surface each
    /// object will use and where rejects go.
    async fn check(settings: &Settings) -> Result<String, String> {
        let client = ApiClient::new(settings).map_err(|e| format!("could not set up HTTP: {e}"))?;
        client.probe().await?;
        let writer = ClientSuccessWriter::connect(settings, &ObjectKind::ALL, None)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let how = match settings.api_surface {
            ApiSurface::Auto => "detected",
            _ => "set by api_surface, not probed",
        };
        let rejects = engine::write::rejects::prove(&settings.sync.rejects, Self::NAME).await?;
        Ok(format!(
            "ClientSuccess write API ({how}): {}. {rejects}",
            writer.surfaces()
        ))
    }

    async fn custom_columns(settings: &Settings) -> Result<CustomColumns, String> {
        let client = ApiClient::new(settings)
            .map_err(|e| e.to_string())?
            .with_max_retries(0);
        Ok(custom::read(&client, &ObjectKind::ALL).await?.columns())
    }

    async fn connect(
        settings: &Settings,
        configured: &ConfiguredCatalog,
    ) -> anyhow::Result<Connected<ClientSuccessWriter>> {
        let plan = Plan::<ObjectKind>::new(configured)?;
        let (notice_tx, notices) = tokio::sync::mpsc::unbounded_channel();
        // Custom fields typed and accepted as columns, as discover published them.
        let (writer, custom) = ClientSuccessWriter::connect_reading_custom_fields(
            settings,
            &plan.objects(),
            Some(notice_tx),
            true,
            &plan.modes(),
        )
        .await?;
        writer.surfaces().require(&plan.needs())?;
        let mut logs = Vec::new();
        let plan = match custom {
            Ok(custom) => Plan::with_custom_fields(configured, &custom.columns())?,
            Err(why) => {
                logs.push((
                    LogLevel::Warn,
                    format!("custom field definitions could not be read ({why}); custom values are sent unchecked in `custom`"),
                ));
                plan
            }
        };
        logs.push((
            LogLevel::Info,
            format!(
                "ClientSuccess write API ({}): {}",
                if writer.surfaces().detected {
                    "detected"
                } else {
                    "set by api_surface"
                },
                writer.surfaces()
            ),
        ));
        Ok(Connected {
            writer,
            plan,
            notices,
            logs,
        })
    }
}
