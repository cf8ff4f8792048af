//! Errors the command line maps to an Airbyte failure type; everything else is a system error.

use crate::protocol::FailureType;
use std::fmt;

/// The user's configuration or catalog is wrong: they must change it.
#[derive(Debug, Clone)]
pub struct ConfigError(pub String);

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The API or the network failed past every retry: running again later may work.
#[derive(Debug, Clone)]
pub struct TransientError(pub String);

impl fmt::Display for TransientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TransientError {}

/// The failure type an error chain maps to.
pub fn failure_type(error: &anyhow::Error) -> FailureType {
    if error.chain().any(|e| e.is::<ConfigError>()) {
        FailureType::ConfigError
    } else if error.chain().any(|e| e.is::<TransientError>()) {
        FailureType::TransientError
    } else {
        FailureType::SystemError
    }
}

/// A failure that ends a sync (as opposed to the refusal of one record).
#[derive(Debug)]
pub enum Fatal {
    Config(ConfigError),
    Transient(TransientError),
    /// The sync is stopping (a signal): the request was not sent. Its records are neither
    /// written nor rejected, and no state covers them.
    Stopped,
}

impl Fatal {
    pub fn config(message: impl Into<String>) -> Self {
        Self::Config(ConfigError::new(message))
    }

    pub fn message(&self) -> &str {
        match self {
            Self::Config(e) => &e.0,
            Self::Transient(e) => &e.0,
            Self::Stopped => "the sync is stopping: the request was not sent",
        }
    }
}

impl From<Fatal> for anyhow::Error {
    fn from(f: Fatal) -> Self {
        match f {
            Fatal::Config(e) => e.into(),
            Fatal::Transient(e) => e.into(),
            Fatal::Stopped => TransientError(f.message().to_owned()).into(),
        }
    }
}
