//! destination-clientsuccess: an Airbyte destination that writes warehouse rows into
//! ClientSuccess as clients, contacts and contracts.
//!
//! The modules, in the order data flows through them:
//!
//! - [`cli`]: the four commands (`spec`, `check`, `discover`, `write`) and exit codes.
//! - [`config`]: the config's Rust types (their schema is the SPEC) → validated [`config::Settings`].
//! - [`objects`]: `Client`, `Contact`, `Contract`, the source of every object schema.
//! - [`catalog`]: objects × modes, their per-mode schemas and matching keys (`discover`).
//! - [`protocol`] (engine): Airbyte messages in and out, one JSON line each.
//! - [`json`] (engine): a record's `data` parsed once, borrowed, validated in place.
//! - [`write`] (engine): the pipeline: plan the streams, validate records, batch, send, acknowledge,
//!   echo states once their records are committed.
//! - [`clientsuccess`]: everything that knows ClientSuccess: HTTP, auth, retries, the write
//!   surfaces an account offers (detected), the v1 translation; a `write::Writer`.
//! - [`concurrency`] (engine): adaptive request concurrency, 429s as a cap or a budget.
//! - [`output`] (engine): the single writer of stdout.
//! - [`secret`] (engine): a string type that cannot be printed.
//!
//! The modules marked (engine) live in the `engine` crate, which no platform's name is in.

pub mod catalog;
pub mod cli;
pub mod clientsuccess;
pub mod config;
pub mod objects;

// The engine's modules, at the paths the connector has always used.
pub use engine::{concurrency, error, install_tls_provider, json, output, protocol, secret, write};
