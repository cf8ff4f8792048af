//! `check`: prove the config, the credentials and the URL work, or say exactly what to fix.

use crate::catalog::ObjectKind;
use crate::clientsuccess::ClientSuccessWriter;
use crate::clientsuccess::{ApiClient, ApiSurface};
use crate::config;
use crate::protocol::{AirbyteMessage, ConnectionStatus, Status};
use std::path::Path;

/// Always one CONNECTION_STATUS; `check` itself never fails.
pub async fn run(config_path: &Path) -> AirbyteMessage {
    let status = match probe(config_path).await {
        Ok(surfaces) => ConnectionStatus {
            status: Status::Succeeded,
            message: Some(surfaces),
        },
        Err(message) => ConnectionStatus {
            status: Status::Failed,
            message: Some(message),
        },
    };
    AirbyteMessage::ConnectionStatus(status)
}

/// Signs in, makes one read, finds the write routes of every object without creating
/// anything, and proves the rejected-records store by writing, reading back and deleting a
/// small object; the answer says which surface each object will use and where rejects go.
async fn probe(config_path: &Path) -> Result<String, String> {
    let settings = config::load(config_path).map_err(|e| e.0)?;
    let client = ApiClient::new(&settings).map_err(|e| format!("could not set up HTTP: {e}"))?;
    client.probe().await?;
    let writer = ClientSuccessWriter::connect(&settings, &ObjectKind::ALL, None)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let how = match settings.api_surface {
        ApiSurface::Auto => "detected",
        _ => "set by api_surface, not probed",
    };
    let rejects =
        crate::write::rejects::prove(&settings.rejects, "destination-clientsuccess").await?;
    Ok(format!(
        "ClientSuccess write API ({how}): {}. {rejects}",
        writer.surfaces()
    ))
}
