//! `revnue-emulator`: the emulator as a standalone server, for the demo and by hand.

use clap::Parser;
use revnue_emulator::{Emulator, Options};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let emulator = Emulator::start(Options::parse()).await?;
    // The first line says where it listens, so a script can read it.
    println!("{}", emulator.base_url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
