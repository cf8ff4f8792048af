//! `trackops-bench`: destination-trackops against its emulator, as figures. The emulator runs
//! in this process (`--latency-ms`, `--budget-per-minute`, `--max-in-flight`); the connector,
//! built beside this binary, runs with default settings as a child: an upsert of new clients,
//! then the same rows again (nothing differs, so no write).
//!
//! `trackops-bench --records 2000 --budget-per-minute 1200` prints both runs: records/s,
//! requests a second against the budget, 429s, requests per record, writes.

use clap::Parser;
use emukit::harness::merged;
use serde_json::json;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;
use trackops_emulator::{Emulator, Options};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 2000)]
    records: usize,
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    #[arg(long, default_value_t = 1200)]
    budget_per_minute: usize,
    #[arg(long, default_value_t = 4)]
    max_in_flight: usize,
    /// Hold this many clients first; the rows are the last of them, unchanged.
    #[arg(long)]
    account: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("trackops-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let client = |i: usize| {
        json!({"account_code": format!("BENCH-{i:06}"), "name": format!("Bench client {i}"),
            "website": "https://bench.example"})
    };
    let fixture = match args.account {
        Some(n) => {
            let mut fixture = trackops_emulator::default_fixture();
            fixture["clients"] = (0..n)
                .map(|i| {
                    let mut held = client(i);
                    held["id"] = json!(i + 1);
                    held
                })
                .collect();
            let path = dir.join("fixture.json");
            std::fs::write(&path, fixture.to_string())?;
            Some(path)
        }
        None => None,
    };
    let emulator = Emulator::start(Options {
        latency_ms: args.latency_ms,
        budget_per_minute: args.budget_per_minute,
        max_in_flight: args.max_in_flight,
        fixture,
        ..Options::default()
    })
    .await?;
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        merged(
            emulator.connector_config(),
            json!({"object_storage_config": {"storage_type": "Local", "path": dir.join("rejected.jsonl")}}),
        )
        .to_string(),
    )?;
    let catalog = dir.join("catalog.json");
    std::fs::write(
        &catalog,
        json!({"streams": [{"stream": {"name": "clients", "json_schema": {}},
        "destination_sync_mode": "append_dedup", "destination_object_name": "client"}]})
        .to_string(),
    )?;
    let input = dir.join("input.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input)?);
    let first_row = args.account.map_or(0, |n| n.saturating_sub(args.records));
    for i in first_row..first_row + args.records {
        let data = match args.account {
            Some(_) => client(i),
            None => {
                json!({"account_code": format!("BENCH-{i:06}"), "name": format!("Bench client {i}"),
                "website": "https://bench.example", "city": "Denver", "zip": "80202"})
            }
        };
        writeln!(
            file,
            "{}",
            json!({"type": "RECORD", "record": {"stream": "clients", "data": data, "emitted_at": 1}})
        )?;
    }
    writeln!(
        file,
        "{}",
        json!({"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "clients"}, "stream_state": {"n": args.records}}}})
    )?;
    drop(file);
    let connector = std::env::current_exe()?.with_file_name("destination-trackops");
    let budget = args.budget_per_minute as f64 / 60.0;
    for run in ["upsert of new clients", "the same rows again"] {
        let (requests_before, throttled_before, writes_before) = (
            emulator.request_count(),
            emulator.count_status("429"),
            emulator.count_writes(),
        );
        let started = Instant::now();
        let mut command = Command::new(&connector);
        command
            .args(["write", "--config"])
            .arg(&config)
            .arg("--catalog")
            .arg(&catalog)
            .stdin(Stdio::from(std::fs::File::open(&input)?))
            .stdout(Stdio::null());
        let status = tokio::task::spawn_blocking(move || command.status()).await??;
        let seconds = started.elapsed().as_secs_f64();
        anyhow::ensure!(status.success(), "the connector failed: {status}");
        let requests = emulator.request_count() - requests_before;
        let throttled = emulator.count_status("429") - throttled_before;
        let writes = emulator.count_writes() - writes_before;
        let accepted = (requests - throttled) as f64 / seconds;
        println!(
            "{run}: {} records in {seconds:.1} s = {:.1} records/s; {:.2} requests/s accepted = {:.1}% of the budget ({} a minute); {requests} requests ({:.2} a record), {throttled} answered 429 ({:.2}%), {writes} writes",
            args.records,
            args.records as f64 / seconds,
            accepted,
            100.0 * accepted / budget,
            args.budget_per_minute,
            requests as f64 / args.records as f64,
            100.0 * throttled as f64 / requests.max(1) as f64,
        );
    }
    println!("clients stored: {}", emulator.records("clients").len());
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
