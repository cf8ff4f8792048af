//! The command line every destination shares: `spec`, `check`, `discover` and `write`, each
//! error mapped to a TRACE and an exit code, signals turned into a graceful stop. A destination
//! says what is its own through the [`Destination`] trait.

use crate::catalog::{destination_catalog, CustomColumns, Object};
use crate::config::{read_json_file, PipelineSettings};
use crate::error::{failure_type, ConfigError};
use crate::output::Emitter;
use crate::protocol::{
    AirbyteMessage, ConfiguredCatalog, ConnectionStatus, ConnectorSpecification, FailureType,
    LogLevel, Status,
};
use crate::write::plan::Plan;
use crate::write::start::{run_when_needed, Connected};
use crate::write::Writer;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// How long `discover` waits for the account's custom fields before publishing without them.
const DISCOVER_READ_TIMEOUT: Duration = Duration::from_secs(15);

/// What a destination brings to the shared command line.
pub trait Destination: 'static {
    /// The image's and binary's name, `destination-…`.
    const NAME: &'static str;
    /// One line for `--help`.
    const ABOUT: &'static str;
    /// The package version, for `--version`.
    const VERSION: &'static str;

    type Object: Object;
    type Settings: Clone + Into<PipelineSettings> + Send + 'static;
    type Writer: Writer<Object = Self::Object>;

    /// The config as the user writes it: its schema is the SPEC's.
    type Config: schemars::JsonSchema;
    /// Where the SPEC sends the user for documentation.
    const DOCUMENTATION_URL: &'static str;

    /// A config, checked against [`Self::Config`]'s schema and by the destination's own rules,
    /// then typed.
    fn settings(config: &serde_json::Value) -> Result<Self::Settings, ConfigError>;

    /// The SPEC: the config's schema, derived from its Rust type.
    fn spec() -> ConnectorSpecification {
        crate::config::connector_spec::<Self::Config>(Self::DOCUMENTATION_URL)
    }

    /// The config file, validated and typed.
    fn load(path: &Path) -> Result<Self::Settings, ConfigError> {
        crate::config::load(path, Self::settings)
    }

    /// Proves the credentials, the URL and the rejects store; says what the account offers
    /// (`Ok`), or exactly what to fix (`Err`).
    fn check(settings: &Self::Settings) -> impl Future<Output = Result<String, String>>;

    /// The account's custom fields, for `discover`'s typed columns.
    fn custom_columns(
        settings: &Self::Settings,
    ) -> impl Future<Output = Result<CustomColumns, String>>;

    /// Connects for a write of `catalog`: the writer, the plan typed with what the account
    /// adds, its notices, and what to log first. Called only once a record arrives.
    fn connect(
        settings: &Self::Settings,
        catalog: &ConfiguredCatalog,
    ) -> impl Future<Output = anyhow::Result<Connected<Self::Writer>>>;
}

#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the configuration schema as a SPEC message.
    Spec,
    /// Validate a config, prove the credentials and the URL; print a CONNECTION_STATUS.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the DESTINATION_CATALOG of objects and modes this destination writes.
    Discover {
        #[arg(long)]
        config: PathBuf,
    },
    /// Read AirbyteMessages on stdin and write their records to the platform.
    Write {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        catalog: PathBuf,
    },
}

/// The whole process: parse arguments, run one command, report its error as a TRACE.
pub fn main<D: Destination>() -> ExitCode {
    let matches = Cli::command()
        .name(D::NAME)
        .about(D::ABOUT)
        .version(D::VERSION)
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // A bug must still end as an AirbyteMessage on stdout, not as text the platform can't read.
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = format!("the connector hit a bug{location}; please report it");
        let _ = Emitter::stdout().error_trace(FailureType::SystemError, message);
        // A panicked task would leave the others waiting for it forever: end the process now.
        std::process::exit(70);
    }));
    let mut out = Emitter::stdout();
    match run::<D>(cli.command, &mut out) {
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

/// The configured catalog file, typed.
pub fn read_catalog(path: &Path) -> Result<ConfiguredCatalog, ConfigError> {
    let value = read_json_file(path, "catalog")?;
    serde_json::from_value(value).map_err(|e| {
        ConfigError::new(format!(
            "the catalog file {} is not a configured catalog: {e}",
            path.display()
        ))
    })
}

fn run<D: Destination>(command: Command, out: &mut Emitter) -> anyhow::Result<()> {
    match command {
        Command::Spec => out.emit(&AirbyteMessage::Spec(D::spec()))?,
        Command::Check { config } => {
            let status = runtime()?.block_on(async {
                let settings = D::load(&config).map_err(|e| e.0)?;
                D::check(&settings).await
            });
            // Always one CONNECTION_STATUS; `check` itself never fails.
            let (status, message) = match status {
                Ok(message) => (Status::Succeeded, message),
                Err(message) => (Status::Failed, message),
            };
            out.emit(&AirbyteMessage::ConnectionStatus(ConnectionStatus {
                status,
                message: Some(message),
            }))?;
        }
        Command::Discover { config } => {
            // A broken config is worth reporting now; an unreachable API is not: the static
            // catalog still maps everything but custom fields one by one.
            let settings = D::load(&config)?;
            let custom = runtime()?.block_on(async {
                tokio::time::timeout(DISCOVER_READ_TIMEOUT, D::custom_columns(&settings))
                    .await
                    .map_err(|_| {
                        format!("no answer within {} s", DISCOVER_READ_TIMEOUT.as_secs())
                    })?
            });
            let custom = custom.unwrap_or_else(|why| {
                let _ = out.log(
                    LogLevel::Warn,
                    format!(
                        "custom field definitions could not be read ({why}); the catalog has the standard fields and an untyped `{}` object",
                        <D::Object as Object>::CUSTOM_CONTAINER
                    ),
                );
                CustomColumns::default()
            });
            out.emit(&AirbyteMessage::DestinationCatalog(destination_catalog::<
                D::Object,
            >(&custom)))?;
        }
        Command::Write { config, catalog } => {
            let settings = D::load(&config)?;
            let configured = read_catalog(&catalog)?;
            // The plan fails here, before stdin, for a stream this destination cannot write.
            let plan = Plan::new(&configured)?;
            let stdin = std::io::stdin();
            let summary = runtime()?.block_on(async {
                let shutdown = shutdown_signals()?;
                // Sign-in, probes and custom fields wait for the first record: an empty sync
                // makes no request.
                let connect = || D::connect(&settings, &configured);
                run_when_needed(settings.clone(), plan, connect, stdin, shutdown, out).await
            })?;
            summary.into_result()?;
        }
    }
    Ok(())
}
