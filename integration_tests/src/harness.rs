//! ClientSuccess's harness: the kit's ([`emukit::harness`]), plus running this connector
//! against the ClientSuccess emulator.

pub use emukit::harness::*;
use serde_json::{json, Value};
use std::path::PathBuf;

/// `target/<profile>/destination-clientsuccess`, found from the running test's own path
/// (`target/<profile>/deps/...`).
pub fn connector_bin() -> PathBuf {
    bin_named("destination-clientsuccess")
}

/// Runs the connector with `args`, feeding `stdin`, and decodes stdout line by line.
pub async fn run_connector(args: &[&str], stdin: &[u8]) -> Run {
    run_connector_with_env(args, stdin, &[]).await
}

/// `run_connector` with these environment variables set.
pub async fn run_connector_with_env(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
    run_bin(&connector_bin(), args, stdin, env).await
}

/// A config for the emulator, API-key auth, with `extra` fields merged in.
pub fn config_for(base_url: &str, api_key: &str, extra: Value) -> Value {
    let mut config = json!({
        "credentials": {"auth_type": "api_key", "api_key": api_key},
        "base_url": base_url,
    });
    if let (Value::Object(config), Value::Object(extra)) = (&mut config, extra) {
        config.extend(extra);
    }
    config
}

/// What a sync printed, and the records it rejected (from its Local rejects file).
pub struct Sync {
    pub run: Run,
    pub rejected: Vec<Value>,
}

/// Runs one `write` against `emulator`; rejected records go to a Local file unless `extra`
/// sets `rejected_records`. Asserts no credential appears in what it printed.
pub async fn sync(
    emulator: &crate::Emulator,
    extra: Value,
    streams: &[(&str, &str, &str)],
    lines: &[String],
) -> Sync {
    let dir = scratch_dir("sync");
    let rejected_path = dir.join("rejected.jsonl");
    let mut extra = extra;
    if extra.get("rejected_records").is_none() {
        extra["rejected_records"] = json!({"storage_type": "Local", "path": rejected_path});
    }
    let config = write_json(
        &dir,
        "config.json",
        &config_for(&emulator.base_url(), emulator.api_key(), extra),
    );
    let catalog = write_json(&dir, "catalog.json", &catalog(streams));
    let input = lines.join("\n") + "\n";
    let run = run_connector(
        &["write", "--config", &config, "--catalog", &catalog],
        input.as_bytes(),
    )
    .await;
    run.assert_no_secret(emulator.api_key());
    run.assert_no_secret(&emulator.options().password);
    let rejected = std::fs::read_to_string(&rejected_path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Sync { run, rejected }
}
