//! Test support for destination-clientsuccess: a ClientSuccess emulator ([`emulator`]) and a
//! harness that runs the real connector binary against it ([`harness`]).
//!
//! The emulator knows nothing of the connector's code; it implements the API contract alone.

pub mod emulator;
pub mod harness;

pub use emulator::{Emulator, Options};
