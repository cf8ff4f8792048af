//! A string that must never be printed: API keys, passwords and tokens.

use serde::Deserialize;
use std::fmt;
use std::sync::Arc;

/// Holds a credential. `Debug` and `Display` print a mask, and it implements no `Serialize`,
/// so it cannot end up in a log line, a trace, a panic message or an echoed config by accident.
/// Shared, not copied: a credential goes out with every request, and a clone is a count.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

pub const MASK: &str = "**********";

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::from(value.into()))
    }

    /// The only way to the value; call it where the value goes on the wire and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl schemars::JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "airbyte_secret": true })
    }

    fn inline_schema() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_mask_the_value() {
        let secret = Secret::new("sk-live-123");
        assert_eq!(format!("{secret}"), MASK);
        assert_eq!(format!("{secret:?}"), MASK);
        assert_eq!(format!("{:?}", Some(&secret)), format!("Some({MASK})"));
        assert_eq!(secret.expose(), "sk-live-123");
    }
}
