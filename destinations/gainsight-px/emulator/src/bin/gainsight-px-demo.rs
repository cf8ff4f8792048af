//! `gainsight-px-demo`: the README's demo for Gainsight PX. Starts the emulator, syncs
//! `destinations/gainsight-px/examples/` through the real connector binary (built beside this
//! one), prints what the connector said, then what landed and what was rejected.

use emukit::demo::Demo;
use gainsight_px_emulator::{Emulator, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start(Options::default()).await?;
    println!(
        "Gainsight PX emulator listening at {}\n",
        emulator.base_url()
    );
    let demo = Demo::prepare(
        env!("CARGO_MANIFEST_DIR"),
        "gainsight-px",
        &emulator.base_url(),
    )?;
    let succeeded = demo.sync()?;
    for collection in ["accounts", "users"] {
        println!("=== {collection} in the emulator");
        for record in emulator.records(collection) {
            println!("  {record}");
        }
    }
    demo.print_rejected();
    if !succeeded {
        return Err("the sync failed".into());
    }
    Ok(())
}
