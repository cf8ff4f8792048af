//! `gainsight-px-demo`: the README's demo for Gainsight PX. Starts the emulator, syncs
//! `destinations/gainsight-px/examples/` through the real connector binary (built beside this
//! one), prints what the connector said, then what landed and what was rejected.

use gainsight_px_emulator::{Emulator, Options};
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
    let rejected = out.join("gainsight-px-rejected.jsonl");
    let _ = std::fs::remove_file(&rejected);

    let emulator = Emulator::start(Options::default()).await?;
    println!(
        "Gainsight PX emulator listening at {}\n",
        emulator.base_url()
    );
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(examples.join("config.json"))?)?;
    config["base_url"] = Value::String(emulator.base_url());
    config["object_storage_config"]["path"] = Value::String(rejected.display().to_string());
    let config_path = out.join("gainsight-px-config.json");
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;

    let connector = std::env::current_exe()?.with_file_name("destination-gainsight-px");
    let succeeded = integration_tests::harness::print_sync(
        &connector,
        &config_path,
        &examples.join("catalog.json"),
        &examples.join("records.jsonl"),
        "destination-gainsight-px write --config out/gainsight-px-config.json --catalog destinations/gainsight-px/examples/catalog.json < destinations/gainsight-px/examples/records.jsonl",
    )?;
    for collection in ["accounts", "users"] {
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
        return Err("the sync failed".into());
    }
    Ok(())
}
