//! `revnue-bench`: destination-revnue against its emulator, as figures. The emulator runs in
//! this process with a budget per minute and a latency; the connector, built beside this
//! binary, runs as a child with `requests_per_minute` set to that budget: an upsert of
//! `--records` customers, half of them new, the other half existing with a changed field.
//!
//! `revnue-bench --records 3000 --budget-per-minute 600 --latency-ms 50` prints the share of
//! the budget used (requests accepted over the run's span), the 429s and requests per record.

use clap::Parser;
use emukit::harness::merged;
use revnue_emulator::{Emulator, Options};
use serde_json::json;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 3000)]
    records: usize,
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    #[arg(long, default_value_t = 600)]
    budget_per_minute: usize,
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// `append_dedup` (half the rows exist, with another city) or `append` (none exist).
    #[arg(long, default_value = "append_dedup")]
    mode: String,
    /// Of the rows, the share that exist before the sync (every other one), with another city.
    #[arg(long, default_value_t = 0.5)]
    existing: f64,
    /// The connector's `max_concurrency`.
    /// After each run, sync the same rows again and print what that re-run spent (nothing
    /// differs, so nothing is written).
    #[arg(long)]
    rerun: bool,
    /// Hold this many customers first; the rows are the last of them.
    #[arg(long)]
    account: Option<usize>,
    /// With `--account`: the rows are new names, none of them held.
    #[arg(long)]
    new_rows: bool,
    #[arg(long, default_value_t = 2)]
    max_concurrency: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("revnue-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let existing = if args.mode == "append" {
        0
    } else {
        (args.records as f64 * args.existing.clamp(0.0, 0.5)) as usize
    };
    let connector = std::env::current_exe()?.with_file_name("destination-revnue");
    let catalog = dir.join("catalog.json");
    std::fs::write(
        &catalog,
        json!({"streams": [{"stream": {"name": "customers", "json_schema": {}},
        "destination_sync_mode": args.mode, "destination_object_name": "customer"}]})
        .to_string(),
    )?;
    let input = dir.join("input.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input)?);
    let held_rows = match args.account {
        Some(_) if args.new_rows => 0,
        Some(_) => args.records,
        None => existing,
    };
    let first_row = match args.account {
        Some(n) if args.new_rows => n,
        Some(n) => n.saturating_sub(args.records),
        None => 0,
    };
    for i in first_row..first_row + args.records {
        let data = json!({"name": format!("Bench customer {i:05}"), "city": "New", "country": "DE",
            "contact_person_name": "Ann Lee", "contact_person_email": "ann@bench.example", "tier": "gold"});
        writeln!(
            file,
            "{}",
            json!({"type": "RECORD", "record": {"stream": "customers", "data": data, "emitted_at": 1}})
        )?;
    }
    writeln!(
        file,
        "{}",
        json!({"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "customers"}, "stream_state": {"n": args.records}}}})
    )?;
    drop(file);
    let fixture = dir.join("fixture.json");
    let customers: Vec<_> = match args.account {
        Some(n) => (0..n)
            .map(|i| json!({"id": i + 1, "company": 1, "name": format!("Bench customer {i:05}"), "city": "Old"}))
            .collect(),
        None => (0..existing)
            .map(|i| json!({"id": i + 1, "company": 1, "name": format!("Bench customer {:05}", 2 * i), "city": "Old"}))
            .collect(),
    };
    std::fs::write(&fixture, json!({"customers": customers}).to_string())?;
    let budget = args.budget_per_minute as f64 / 60.0;
    let mut shares = Vec::new();
    for run in 1..=args.runs {
        // A fresh account each run: half the names exist (the even ones), half are new.
        let emulator = Emulator::start(Options {
            latency_ms: args.latency_ms,
            budget_per_minute: args.budget_per_minute,
            fixture: Some(fixture.clone()),
            ..Options::default()
        })
        .await?;
        let config = dir.join("config.json");
        std::fs::write(
            &config,
            merged(
                emulator.connector_config(),
                json!({"requests_per_minute": args.budget_per_minute, "max_concurrency": args.max_concurrency,
                "object_storage_config": {"storage_type": "Local", "path": dir.join("rejected.jsonl")}}),
            )
            .to_string(),
        )?;
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
        let requests = emulator.request_count();
        let throttled = emulator.count_status("429");
        let accepted = (requests - throttled) as f64 / seconds;
        let share = 100.0 * accepted / budget;
        shares.push(share);
        println!(
            "run {run}: {} rows {} ({held_rows} existing) in {seconds:.1} s = {:.1} records/s; {:.2} requests/s accepted = {share:.1}% of the budget ({} a minute); {requests} requests = {:.3} a record (POST {}, PATCH {}, list pages {}), {throttled} answered 429 ({:.2}%); customers stored {}; at most {} requests in flight",
            args.records,
            args.mode,
            args.records as f64 / seconds,
            accepted,
            args.budget_per_minute,
            requests as f64 / args.records as f64,
            emulator.count_method("POST"),
            emulator.count_method("PATCH"),
            emulator.stats().get("GET /customer").map_or(0, |s| s.values().sum::<u64>()),
            100.0 * throttled as f64 / requests.max(1) as f64,
            emulator.records("customers").len(),
            emulator.peak_in_flight(),
        );
        if args.rerun {
            let writes = || {
                ["POST", "PATCH", "PUT"]
                    .iter()
                    .map(|m| emulator.count_method(m))
                    .sum::<u64>()
            };
            let (requests_before, writes_before) = (emulator.request_count(), writes());
            let started = Instant::now();
            let status = Command::new(&connector)
                .args(["write", "--config"])
                .arg(&config)
                .arg("--catalog")
                .arg(&catalog)
                .stdin(Stdio::from(std::fs::File::open(&input)?))
                .stdout(Stdio::null())
                .status()?;
            anyhow::ensure!(status.success(), "the re-run failed: {status}");
            let requests = emulator.request_count() - requests_before;
            println!(
                "  re-run {run}: the same {} rows in {:.2} s; {requests} requests ({:.4} a record), {} writes",
                args.records,
                started.elapsed().as_secs_f64(),
                requests as f64 / args.records as f64,
                writes() - writes_before,
            );
        }
    }
    shares.sort_by(f64::total_cmp);
    println!(
        "median share of the budget over {} runs: {:.1}%",
        shares.len(),
        shares[shares.len() / 2]
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
