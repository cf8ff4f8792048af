//! The one writer of stdout: every line it prints is one AirbyteMessage.

use crate::protocol::{AirbyteMessage, FailureType, LogLevel};
use std::io::{self, Write};

pub struct Emitter {
    out: Box<dyn Write + Send>,
}

impl Emitter {
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Self { out: Box::new(out) }
    }

    pub fn stdout() -> Self {
        Self::new(io::stdout())
    }

    /// Writes one message and flushes, so the platform sees it (states above all) at once.
    pub fn emit(&mut self, message: &AirbyteMessage) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, message)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    pub fn log(&mut self, level: LogLevel, message: impl Into<String>) -> io::Result<()> {
        self.emit(&AirbyteMessage::log(level, message))
    }

    pub fn error_trace(
        &mut self,
        failure_type: FailureType,
        message: impl Into<String>,
    ) -> io::Result<()> {
        self.emit(&AirbyteMessage::error_trace(failure_type, message, None))
    }
}
