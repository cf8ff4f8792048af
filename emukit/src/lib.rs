//! The emulator kit every destination's emulator and tests are built on; it names no platform.
//!
//! [`server`]: the HTTP/1.1 server on loopback an emulator answers from. [`harness`]: runs a
//! connector binary and decodes what it prints. [`moto`]: an S3-compatible server for the
//! rejects store. [`proxy`]: a forward proxy that counts what it carried. [`packaging`]: the
//! checks every destination folder passes. [`demo`]: the demos' shared steps.

pub mod demo;
pub mod harness;
pub mod moto;
pub mod packaging;
pub mod proxy;
pub mod server;

/// An HTTP client for tests and benches. reqwest brings no TLS provider of its own (the
/// connector's tree carries rustls's ring alone): it is made the default first.
pub fn http_client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
