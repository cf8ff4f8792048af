//! Runs the ClientSuccess emulator until interrupted, printing its base URL on the first line.

use clap::Parser;
use integration_tests::{Emulator, Options};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    let emulator = Emulator::start(options).await?;
    println!("{}", emulator.base_url());
    eprintln!(
        "ClientSuccess emulator listening: base_url {} auth_url {} api_key {}",
        emulator.base_url(),
        emulator.auth_url(),
        emulator.api_key()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
