//! `gainsight-px-bench`: destination-gainsight-px's speed against the emulator, as figures.
//! The emulator runs in this process (at `--latency-ms`, `--rate-limit` requests a second);
//! the connector, built beside this binary, runs with default settings as a child.
//!
//! `gainsight-px-bench --records 20000 --runs 3 [--mode append_dedup] [--callgrind]`
//! prints each run and the median: records/s, the share of the rate budget used, requests and
//! 429s; with `--callgrind`, instructions per request (a run less a one-record run).

use clap::Parser;
use emukit::harness::merged;
use gainsight_px_emulator::{Emulator, Options};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 20_000)]
    records: usize,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// append (insert) or append_dedup (upsert of accounts that exist).
    #[arg(long, default_value = "append")]
    mode: String,
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    #[arg(long, default_value_t = 200)]
    rate_limit: u64,
    /// Instructions per request under valgrind's callgrind instead of speed.
    #[arg(long)]
    callgrind: bool,
    /// Upsert the records into an empty account, then measure a second upsert of the same
    /// records: nothing changed, so nothing is written.
    #[arg(long)]
    rerun: bool,
    /// Hold this many accounts first; the upserted records are the last of them, unchanged.
    #[arg(long)]
    account: Option<usize>,
}

struct Measure {
    seconds: f64,
    requests: u64,
    throttled: u64,
    landed: usize,
}

fn account(i: usize) -> serde_json::Value {
    json!({"id": format!("bench-{i}"), "name": format!("Bench account {i}"), "plan": "pro",
        "numberOfEmployees": i % 5000, "renewalDate": "2027-01-31", "website": "https://bench.example",
        "location": {"city": "Portland", "countryCode": "USA"}})
}

async fn run(
    args: &Args,
    records: usize,
    dir: &Path,
    callgrind: Option<&Path>,
) -> anyhow::Result<Measure> {
    let emulator = Emulator::start(Options {
        latency_ms: if callgrind.is_some() {
            0
        } else {
            args.latency_ms
        },
        rate_limit: if callgrind.is_some() {
            1_000_000
        } else {
            args.rate_limit
        },
        ..Options::default()
    })
    .await?;
    let first_row = match args.account {
        Some(held) => {
            for i in 0..held {
                let mut existing = account(i);
                existing["propertyKeys"] = json!(["AP-EMULATOR-2"]);
                existing["renewalDate"] = json!(1_801_353_600_000u64);
                emulator.seed_record("accounts", existing);
            }
            held.saturating_sub(records)
        }
        None => 0,
    };
    if args.mode == "append_dedup" && !args.rerun && args.account.is_none() {
        for i in 0..records {
            let mut existing = account(i);
            existing["propertyKeys"] = json!(["AP-EMULATOR-2"]);
            existing["renewalDate"] = json!(0);
            emulator.seed_record("accounts", existing);
        }
    }
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
        json!({"streams": [{"stream": {"name": "accounts", "json_schema": {}},
        "destination_sync_mode": args.mode, "destination_object_name": "account"}]})
        .to_string(),
    )?;
    let input = dir.join("input.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input)?);
    for i in first_row..first_row + records {
        writeln!(
            file,
            "{}",
            json!({"type": "RECORD", "record": {"stream": "accounts", "data": account(i), "emitted_at": 1}})
        )?;
    }
    writeln!(
        file,
        "{}",
        json!({"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "accounts"}, "stream_state": {"n": records}}}})
    )?;
    drop(file);
    let connector = std::env::current_exe()?.with_file_name("destination-gainsight-px");
    let before = if args.account.is_some() {
        emulator.request_count()
    } else if args.rerun {
        let first = Command::new(&connector)
            .args(["write", "--config"])
            .arg(&config)
            .arg("--catalog")
            .arg(&catalog)
            .stdin(Stdio::from(std::fs::File::open(&input)?))
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(first.success(), "the first sync failed: {first}");
        emulator.request_count()
    } else {
        0
    };
    let mut command = match callgrind {
        Some(out) => {
            let mut valgrind = Command::new("valgrind");
            valgrind
                .arg("--tool=callgrind")
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(&connector)
                .stderr(Stdio::null());
            valgrind
        }
        None => Command::new(&connector),
    };
    command
        .args(["write", "--config"])
        .arg(&config)
        .arg("--catalog")
        .arg(&catalog)
        .stdin(Stdio::from(std::fs::File::open(&input)?))
        .stdout(Stdio::null());
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || command.status()).await??;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(status.success(), "the connector failed: {status}");
    Ok(Measure {
        seconds,
        requests: emulator.request_count() - before,
        throttled: emulator.count_status("429"),
        landed: emulator.records("accounts").len(),
    })
}

/// Instructions of a callgrind profile: its `summary:` line.
fn instructions(profile: &Path) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(profile)?;
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("summary:"))
        .ok_or_else(|| anyhow::anyhow!("no summary"))?;
    Ok(line.split_whitespace().next().unwrap_or("0").parse()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir: PathBuf =
        std::env::temp_dir().join(format!("gainsight-px-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    if args.callgrind {
        let one = run(&args, 1, &dir, Some(&dir.join("one.out"))).await?;
        let many = run(&args, args.records, &dir, Some(&dir.join("many.out"))).await?;
        let extra = instructions(&dir.join("many.out"))?
            .saturating_sub(instructions(&dir.join("one.out"))?);
        let requests = many.requests.saturating_sub(one.requests).max(1);
        println!("{} {} records: {} requests, {:.0} instructions per request (a one-record run subtracted)",
            args.mode, args.records, requests, extra as f64 / requests as f64);
        return Ok(());
    }
    if args.rerun || args.account.is_some() {
        anyhow::ensure!(
            args.mode == "append_dedup",
            "--rerun and --account measure append_dedup"
        );
        let mut runs = Vec::new();
        for i in 0..args.runs {
            let m = run(&args, args.records, &dir, None).await?;
            let into = args
                .account
                .map(|n| format!(", into an account of {n}"))
                .unwrap_or_default();
            println!(
                "{} {}: {} unchanged records in {:.2} s; {} requests ({:.4} a record){into}",
                if args.rerun { "re-run" } else { "run" },
                i + 1,
                args.records,
                m.seconds,
                m.requests,
                m.requests as f64 / args.records as f64
            );
            runs.push((m.seconds, m.requests));
        }
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (seconds, requests) = runs[runs.len() / 2];
        println!(
            "median: {seconds:.2} s, {requests} requests for {} unchanged records",
            args.records
        );
        return Ok(());
    }
    let mut rates = Vec::new();
    for i in 0..args.runs {
        let m = run(&args, args.records, &dir, None).await?;
        let rate = args.records as f64 / m.seconds;
        println!("run {}: {} records in {:.1} s = {:.1} records/s ({:.1}% of {} requests/s); {} requests, {} answered 429 ({:.2}%); {} accounts stored",
            i + 1, args.records, m.seconds, rate, 100.0 * rate / args.rate_limit as f64, args.rate_limit,
            m.requests, m.throttled, 100.0 * m.throttled as f64 / m.requests as f64, m.landed);
        rates.push((rate, m.throttled as f64 / m.requests as f64));
    }
    rates.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (rate, throttled) = rates[rates.len() / 2];
    println!("median: {:.1} records/s = {:.1}% of the budget, {:.2}% answered 429 ({} {} records, {} ms latency)",
        rate, 100.0 * rate / args.rate_limit as f64, 100.0 * throttled, args.mode, args.records, args.latency_ms);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
