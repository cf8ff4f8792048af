//! The command line: parse arguments, run one command, map its error to a TRACE and an exit code.

use crate::clientsuccess::custom::CustomFields;
use crate::clientsuccess::ClientSuccessWriter;
use crate::error::{failure_type, ConfigError};
use crate::output::Emitter;
use crate::protocol::{AirbyteMessage, LogLevel};
use crate::{catalog, check, config, write};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Airbyte destination that writes clients, contacts and contracts into ClientSuccess.
#[derive(Debug, Parser)]
#[command(name = "destination-clientsuccess", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the configuration schema as a SPEC message.
    Spec,
    /// Validate a config, sign in and make one read; print a CONNECTION_STATUS.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the DESTINATION_CATALOG of objects and modes this destination writes.
    Discover {
        #[arg(long)]
        config: PathBuf,
    },
    /// Read AirbyteMessages on stdin and write their records to ClientSuccess.
    Write {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        catalog: PathBuf,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // A bug must still end as an AirbyteMessage on stdout, not as text the platform can't read.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = format!("the connector hit a bug{location}; please report it");
        let _ = Emitter::stdout().error_trace(crate::protocol::FailureType::SystemError, message);
        // A panicked task would leave the others waiting for it forever: end the process now.
        std::process::exit(70);
    }));
    let mut out = Emitter::stdout();
    match run(cli.command, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The chain's messages are ours and never hold a secret (Secret prints a mask).
            let message = format!("{error:#}");
            let _ = out.error_trace(failure_type(&error), message);
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// SIGTERM (how a platform cancels a sync) and SIGINT, by name, as they arrive.
fn shutdown_signals() -> std::io::Result<tokio::sync::mpsc::UnboundedReceiver<&'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            };
            if tx.send(name).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

pub fn run(command: Command, out: &mut Emitter) -> anyhow::Result<()> {
    match command {
        Command::Spec => out.emit(&AirbyteMessage::Spec(config::spec()))?,
        Command::Check { config } => {
            let status = runtime()?.block_on(check::run(&config));
            out.emit(&status)?;
        }
        Command::Discover { config } => {
            // A broken config is worth reporting now; an unreachable API is not: the static
            // catalog still maps everything but custom fields one by one.
            let settings = config::load(&config)?;
            let custom = runtime()?.block_on(async {
                let client = crate::clientsuccess::ApiClient::new(&settings)
                    .map_err(|e| e.to_string())?
                    .with_max_retries(0);
                let read = CustomFields::read(&client, &catalog::ObjectKind::ALL);
                tokio::time::timeout(std::time::Duration::from_secs(15), read)
                    .await
                    .map_err(|_| "no answer within 15 s".to_owned())?
            });
            let custom = custom.unwrap_or_else(|why| {
                let _ = out.log(
                    LogLevel::Warn,
                    format!("custom field definitions could not be read ({why}); the catalog has the standard fields and an untyped `custom` object"),
                );
                CustomFields::default()
            });
            out.emit(&AirbyteMessage::DestinationCatalog(
                catalog::destination_catalog_with(&custom),
            ))?;
        }
        Command::Write { config, catalog } => {
            let settings = config::load(&config)?;
            let catalog_value = config::read_json_file(&catalog, "catalog")?;
            let configured = serde_json::from_value(catalog_value).map_err(|e| {
                ConfigError::new(format!(
                    "the catalog file {} is not a configured catalog: {e}",
                    catalog.display()
                ))
            })?;
            let plan = write::plan::Plan::new(&configured)?;
            let stdin = std::io::stdin();
            let summary = runtime()?.block_on(async {
                let shutdown = shutdown_signals()?;
                // Sign-in, surface probes and custom fields wait for the first record: an
                // empty sync makes no request.
                let connect = || async {
                    let (notice_tx, notices) = tokio::sync::mpsc::unbounded_channel();
                    // Custom fields typed and accepted as columns, as discover published them.
                    let (writer, custom) = ClientSuccessWriter::connect_reading_custom_fields(
                        &settings,
                        &plan.objects(),
                        Some(notice_tx),
                        true,
                        &plan.modes(),
                    )
                    .await?;
                    writer.surfaces().require(&plan.needs())?;
                    let mut logs = Vec::new();
                    let plan = match custom {
                        Ok(custom) => write::plan::Plan::with_custom_fields(&configured, &custom.columns())?,
                        Err(why) => {
                            logs.push((
                                LogLevel::Warn,
                                format!("custom field definitions could not be read ({why}); custom values are sent unchecked in `custom`"),
                            ));
                            write::plan::Plan::new(&configured)?
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
                    anyhow::Ok(write::start::Connected {
                        writer,
                        plan,
                        notices,
                        logs,
                    })
                };
                let base_plan = write::plan::Plan::new(&configured)?;
                write::start::run_when_needed(settings.clone(), base_plan, connect, stdin, shutdown, out)
                    .await
            })?;
            summary.into_result()?;
        }
    }
    Ok(())
}
