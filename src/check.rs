//! `check`: prove the config, the credentials and the URL work, or say exactly what to fix.

use crate::api::ApiClient;
use crate::config;
use crate::protocol::{AirbyteMessage, ConnectionStatus, Status};
use std::path::Path;

/// Always one CONNECTION_STATUS; `check` itself never fails.
pub async fn run(config_path: &Path) -> AirbyteMessage {
    let status = match probe(config_path).await {
        Ok(()) => ConnectionStatus {
            status: Status::Succeeded,
            message: None,
        },
        Err(message) => ConnectionStatus {
            status: Status::Failed,
            message: Some(message),
        },
    };
    AirbyteMessage::ConnectionStatus(status)
}

async fn probe(config_path: &Path) -> Result<(), String> {
    let settings = config::load(config_path).map_err(|e| e.0)?;
    let client = ApiClient::new(&settings).map_err(|e| format!("could not set up HTTP: {e}"))?;
    client.probe().await
}
