//! Emulator benchmark: how many records per second the emulator stores through bulk create at
//! zero latency, driven over loopback HTTP by concurrent reqwest clients. Prints figures.

use clap::Parser;
use integration_tests::{Emulator, Options};
use serde_json::json;
use std::time::Instant;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value_t = 300_000)]
    records: usize,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Emulator latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let batches = args.records / 100;
    let mut rates = Vec::new();
    for run in 1..=args.runs {
        let emulator = Emulator::start(Options {
            latency_ms: args.latency_ms,
            ..Options::default()
        })
        .await?;
        let url = format!("{}/client/bulk", emulator.base_url());
        let key = emulator.api_key().to_owned();
        let client = emukit::http_client().build().unwrap();
        let started = Instant::now();
        let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..args.concurrency {
            let (client, url, key, next) = (client.clone(), url.clone(), key.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let batch = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if batch >= batches {
                        return anyhow::Ok(());
                    }
                    let records: Vec<_> = (0..100).map(|i| json!({"name": format!("B{batch}-{i}"), "externalId": format!("{batch}-{i}"),
                        "status": "ACTIVE", "active": true, "city": "Denver", "timezone": "America/Denver", "npsScore": 10})).collect();
                    let body = serde_json::to_vec(&records)?;
                    let response = client.post(&url).header("authorization", &key).header("content-type", "application/json").body(body).send().await?;
                    anyhow::ensure!(response.status() == 201, "status {}", response.status());
                    response.bytes().await?;
                }
            }));
        }
        for task in tasks {
            task.await??;
        }
        let seconds = started.elapsed().as_secs_f64();
        let stored = emulator.count("client");
        anyhow::ensure!(stored == batches * 100);
        let rate = stored as f64 / seconds;
        println!("  run {run}: {stored} records stored in {seconds:.2} s: {rate:.0} records/s");
        rates.push(rate);
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "emulator bulk create, {} concurrent clients: median {:.0} records/s",
        args.concurrency,
        rates[rates.len() / 2]
    );
    Ok(())
}
