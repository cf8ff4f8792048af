//! ClientSuccess's emulator ([`emulator`]) and the harness that runs this connector against it
//! ([`harness`]); both are built on the emulator kit, `emukit`.
//!
//! The emulator knows nothing of the connector's code; it implements the API contract alone.

pub mod emulator;
pub mod harness;

pub use emulator::{Emulator, Options};
