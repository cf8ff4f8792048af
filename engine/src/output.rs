//! The one writer of stdout: every line it prints is one AirbyteMessage.

use crate::protocol::{AirbyteMessage, FailureType, LogLevel};
use std::borrow::Cow;
use std::io::{self, Write};

/// JSON allows DEL, the C1 controls (U+0085 among them), U+2028 and U+2029 raw inside strings,
/// but line-based readers (Python's `splitlines`, among others) break lines at some of them.
/// serde_json escapes only the C0 controls. These can only occur inside strings, where
/// `\uXXXX` means the same, so they are escaped too: no output line has a raw control.
fn escape_line_separators(line: &str) -> Cow<'_, str> {
    let needs = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if !line.contains(needs) {
        return Cow::Borrowed(line);
    }
    let mut escaped = String::with_capacity(line.len() + 12);
    for c in line.chars() {
        if needs(c) {
            escaped.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

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
        let line = serde_json::to_string(message)?;
        self.out
            .write_all(escape_line_separators(&line).as_bytes())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_separators_inside_strings_are_escaped() {
        let line = "{\"a\":\"x\u{2028}y\u{85}\u{7f}\"}";
        let escaped = escape_line_separators(line);
        assert_eq!(escaped, r#"{"a":"x\u2028y\u0085\u007f"}"#);
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back["a"], "x\u{2028}y\u{85}\u{7f}");
        assert!(matches!(escape_line_separators("{}"), Cow::Borrowed(_)));
    }
}
