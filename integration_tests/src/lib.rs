//! Test support for destination-clientsuccess: a ClientSuccess emulator ([`emulator`]) and a
//! harness that runs the real connector binary against it ([`harness`]).
//!
//! The emulator knows nothing of the connector's code; it implements the API contract alone.

pub mod demo;
pub mod emukit;
pub mod emulator;
pub mod harness;
pub mod moto;
pub mod packaging;
pub mod proxy;

pub use emulator::{Emulator, Options};

/// An HTTP client for tests and benches. reqwest brings no TLS provider of its own (the
/// connector's tree carries rustls's ring alone): it is made the default first.
pub fn http_client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
