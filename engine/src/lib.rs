//! The engine every destination here is built on, with no platform in it: the Airbyte
//! protocol, a record's JSON parsed once and validated in place, the single writer of stdout,
//! secrets that cannot be printed, the errors that end a sync, and adaptive request
//! concurrency. A destination brings its config, its objects and its writer.

pub mod concurrency;
pub mod error;
pub mod json;
pub mod output;
pub mod protocol;
pub mod secret;
