//! destination-clientsuccess: an Airbyte destination that writes warehouse rows into
//! ClientSuccess as clients, contacts and contracts.
//!
//! The modules, in the order data flows through them:
//!
//! - [`cli`]: the four commands (`spec`, `check`, `discover`, `write`) and exit codes.
//! - [`config`]: the config's Rust types (their schema is the SPEC) → validated [`config::Settings`].
//! - [`objects`]: `Client`, `Contact`, `Contract`, the source of every object schema.
//! - [`catalog`]: objects × modes, their per-mode schemas and matching keys (`discover`).
//! - `engine::write`: the pipeline every destination shares (plan, validate, batch, send,
//!   acknowledge, echo states once their records are committed).
//! - [`clientsuccess`]: everything that knows ClientSuccess: HTTP, auth, retries, the write
//!   surfaces an account offers (detected), the v1 translation; an `engine::write::Writer`.
//!
//! Protocol, JSON, concurrency, output and secrets are the `engine` crate's, which names no
//! platform.

pub mod catalog;
pub mod cli;
pub mod clientsuccess;
pub mod config;
pub mod objects;
