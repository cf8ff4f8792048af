//! The engine every destination here is built on, with no platform in it: the Airbyte
//! protocol, the write pipeline (reader, coordinator, ledger, byte budget, breaker, rejects
//! store, lazy start), the objects and modes a destination describes, the config fields every
//! destination shares, a record's JSON parsed once and validated in place, the single writer
//! of stdout, secrets that cannot be printed, the errors that end a sync, and adaptive request
//! concurrency. A destination brings its config, its objects and its writer.

pub mod catalog;
pub mod cli;
pub mod concurrency;
pub mod config;
pub mod error;
pub mod http;
pub mod json;
pub mod output;
pub mod probe;
pub mod protocol;
pub mod reconcile;
pub mod secret;
pub mod write;

/// Makes rustls's ring provider the process default, once: reqwest and object_store build
/// their TLS from it (the tree carries ring alone, so neither brings a provider of its own).
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means one is installed already, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
