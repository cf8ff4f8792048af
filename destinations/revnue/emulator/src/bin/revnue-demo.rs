//! `revnue-demo`: the README's demo for Revnue. Starts the emulator with a budget of 600
//! requests a minute, syncs `destinations/revnue/examples/` through the real connector binary
//! (built beside this one) twice (the second run lists, finds nothing changed and writes
//! nothing), then prints what landed and what was rejected.

use revnue_emulator::{Emulator, Options};
use serde_json::Value;
use std::path::Path;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("destination folder");
    let root = folder
        .parent()
        .and_then(Path::parent)
        .expect("repository root");
    let examples = folder.join("examples");
    let out = root.join("out");
    std::fs::create_dir_all(&out)?;
    let rejected = out.join("revnue-rejected.jsonl");
    let _ = std::fs::remove_file(&rejected);

    // 600 a minute instead of Revnue's 20, so the demo ends in seconds; the connector keeps
    // to it from its first request all the same.
    let emulator = Emulator::start(Options {
        budget_per_minute: 600,
        ..Options::default()
    })
    .await?;
    println!(
        "Revnue emulator listening at {} (budget 600 requests a minute)\n",
        emulator.base_url()
    );
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(examples.join("config.json"))?)?;
    config["base_url"] = Value::String(emulator.base_url());
    config["object_storage_config"]["path"] = Value::String(rejected.display().to_string());
    let config_path = out.join("revnue-config.json");
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;

    let connector = std::env::current_exe()?.with_file_name("destination-revnue");
    let shown = "destination-revnue write --config out/revnue-config.json --catalog destinations/revnue/examples/catalog.json < destinations/revnue/examples/records.jsonl";
    let mut succeeded = true;
    for run in [
        "first sync",
        "the same rows again: one listing a stream; nothing differs, so only the refused row is tried again",
    ] {
        println!("=== {run}");
        let before = emulator.request_count();
        let writes = writes(&emulator);
        succeeded &= integration_tests::harness::print_sync(
            &connector,
            &config_path,
            &examples.join("catalog.json"),
            &examples.join("records.jsonl"),
            shown,
        )?;
        println!(
            "  requests this run: {} ({} writes)\n",
            emulator.request_count() - before,
            writes_since(&emulator, writes)
        );
    }
    for collection in ["customers", "suppliers"] {
        println!("=== {collection} in the emulator");
        for record in emulator.records(collection) {
            let mut shown = serde_json::Map::new();
            for (k, v) in record.as_object().into_iter().flatten() {
                if !v.is_null() && v != &Value::Bool(false) {
                    shown.insert(k.clone(), v.clone());
                }
            }
            println!("  {}", Value::Object(shown));
        }
    }
    println!("\n=== rejected records ({})", rejected.display());
    for line in std::fs::read_to_string(&rejected)
        .unwrap_or_default()
        .lines()
    {
        println!("  {line}");
    }
    if !succeeded {
        return Err("a sync failed".into());
    }
    Ok(())
}

fn writes(emulator: &Emulator) -> u64 {
    ["POST", "PATCH", "PUT"]
        .iter()
        .map(|m| emulator.count_method(m))
        .sum()
}

fn writes_since(emulator: &Emulator, before: u64) -> u64 {
    writes(emulator) - before
}
