//! `revnue-demo`: the README's demo for Revnue. Starts the emulator with a budget of 600
//! requests a minute, syncs `destinations/revnue/examples/` through the real connector binary
//! (built beside this one) twice (the second run lists, finds nothing changed and writes
//! nothing), then prints what landed and what was rejected.

use emukit::demo::Demo;
use revnue_emulator::{Emulator, Options};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start(Options {
        budget_per_minute: 600,
        ..Options::default()
    })
    .await?;
    println!(
        "Revnue emulator listening at {} (budget 600 requests a minute)\n",
        emulator.base_url()
    );
    let demo = Demo::prepare(env!("CARGO_MANIFEST_DIR"), "revnue", &emulator.base_url())?;
    let mut succeeded = true;
    for run in [
        "first sync",
        "the same rows again: one listing a stream; nothing differs, so only the refused row is tried again",
    ] {
        println!("=== {run}");
        let before = emulator.request_count();
        let writes = writes(&emulator);
        succeeded &= demo.sync()?;
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
    demo.print_rejected();
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
