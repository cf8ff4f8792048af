//! `trackops-demo`: the README's demo for Trackops. Starts the emulator, syncs
//! `destinations/trackops/examples/` through the real connector binary (built beside this one)
//! twice (the second run finds nothing to change), then prints what landed and what was
//! rejected.

use serde_json::Value;
use std::path::Path;
use trackops_emulator::{collections, Emulator, Options};

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
    let rejected = out.join("trackops-rejected.jsonl");
    let _ = std::fs::remove_file(&rejected);

    // The emulator's default budget (120 a minute) would make the demo wait; the connector
    // still starts gently, at one request a second.
    let emulator = Emulator::start(Options {
        budget_per_minute: 10_000,
        ..Options::default()
    })
    .await?;
    println!("Trackops emulator listening at {}\n", emulator.base_url());
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(examples.join("config.json"))?)?;
    config["base_url"] = Value::String(emulator.base_url());
    config["object_storage_config"]["path"] = Value::String(rejected.display().to_string());
    let config_path = out.join("trackops-config.json");
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;

    let connector = std::env::current_exe()?.with_file_name("destination-trackops");
    let shown = "destination-trackops write --config out/trackops-config.json --catalog destinations/trackops/examples/catalog.json < destinations/trackops/examples/records.jsonl";
    let mut succeeded = true;
    for run in [
        "first sync",
        "the same rows again: each looked up; nothing differs, so only the refused row is tried again",
    ] {
        println!("=== {run}");
        let writes = emulator.count_method("POST") + emulator.count_method("PUT");
        succeeded &= integration_tests::harness::print_sync(
            &connector,
            &config_path,
            &examples.join("catalog.json"),
            &examples.join("records.jsonl"),
            shown,
        )?;
        println!(
            "  writes this run: {}\n",
            emulator.count_method("POST") + emulator.count_method("PUT") - writes
        );
    }
    for collection in collections() {
        println!("=== {collection} in the emulator");
        for record in emulator.records(collection) {
            println!("  {record}");
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
