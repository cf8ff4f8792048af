//! `trackops-demo`: the README's demo for Trackops. Starts the emulator, syncs
//! `destinations/trackops/examples/` through the real connector binary (built beside this one)
//! twice (the second run finds nothing to change), then prints what landed and what was
//! rejected.

use emukit::demo::Demo;
use trackops_emulator::{collections, Emulator, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start(Options {
        budget_per_minute: 10_000,
        ..Options::default()
    })
    .await?;
    println!("Trackops emulator listening at {}\n", emulator.base_url());
    let demo = Demo::prepare(env!("CARGO_MANIFEST_DIR"), "trackops", &emulator.base_url())?;
    let mut succeeded = true;
    for run in [
        "first sync",
        "the same rows again: each looked up; nothing differs, so only the refused row is tried again",
    ] {
        println!("=== {run}");
        let writes = emulator.count_method("POST") + emulator.count_method("PUT");
        succeeded &= demo.sync()?;
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
    demo.print_rejected();
    if !succeeded {
        return Err("a sync failed".into());
    }
    Ok(())
}
