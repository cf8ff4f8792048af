//! Connector benchmark: generates N synthetic client records, runs the release connector binary
//! against the in-process emulator, and prints records/s, requests sent, CPU seconds and peak
//! RSS of the connector (from wait4's rusage). Not a test: it prints figures.
//!
//! `cargo run --release -p integration_tests --bin bench -- --records 200000 --runs 3`

use clap::Parser;
use integration_tests::harness::connector_bin;
use integration_tests::{Emulator, Options};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

#[derive(Parser, Debug)]
struct Args {
    /// Records per run.
    #[arg(long, default_value_t = 200_000)]
    records: usize,
    /// Runs; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Emulator latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// The connector's max_concurrency.
    #[arg(long, default_value_t = 4)]
    concurrency: u32,
    /// The connector's batch_size.
    #[arg(long, default_value_t = 100)]
    batch_size: u32,
    /// Pad each record with a `note` of this many bytes (wide records, for memory).
    #[arg(long, default_value_t = 0)]
    note_bytes: usize,
}

struct Measure {
    seconds: f64,
    cpu_seconds: f64,
    peak_rss_mb: f64,
    requests: u64,
    stored: usize,
}

fn input_file(records: usize, note_bytes: usize) -> anyhow::Result<PathBuf> {
    let dir = connector_bin().parent().unwrap().join("bench-data");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("clients-{records}-{note_bytes}.jsonl"));
    if path.exists() {
        return Ok(path);
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let note = "n".repeat(note_bytes);
    for i in 0..records {
        let mut data = json!({"name": format!("Client {i}"), "externalId": format!("EXT-{i:08}"), "status": "ACTIVE",
            "siteUrl": format!("https://client{i}.example"), "city": "Denver", "state": "CO", "country": "US",
            "zip": "80202", "timezone": "America/Denver", "npsScore": (i % 201) as i64 - 100,
            "custom": {"industry__cs": "Retail", "seats__cs": i % 500}});
        if note_bytes > 0 {
            data["note"] = json!(note);
        }
        let line = json!({"type": "RECORD", "record": {"stream": "clients", "data": data, "emitted_at": 1_763_800_000_000u64}});
        writeln!(out, "{line}")?;
        if (i + 1) % 10_000 == 0 {
            let state = json!({"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "clients"}, "stream_state": {"n": i}}, "id": i}});
            writeln!(out, "{state}")?;
        }
    }
    out.flush()?;
    Ok(path)
}

async fn run_once(args: &Args, input: &PathBuf) -> anyhow::Result<Measure> {
    let emulator = Emulator::start(Options {
        latency_ms: args.latency_ms,
        ..Options::default()
    })
    .await?;
    let dir = connector_bin().parent().unwrap().join("bench-data");
    let config = dir.join("config.json");
    std::fs::write(&config, json!({
        "credentials": {"auth_type": "api_key", "api_key": emulator.api_key()},
        "base_url": emulator.base_url(), "batch_size": args.batch_size, "max_concurrency": args.concurrency,
        "rejected_records": {"storage_type": "Local", "path": dir.join("rejected.jsonl")}
    }).to_string())?;
    let catalog = dir.join("catalog.json");
    std::fs::write(
        &catalog,
        json!({"streams": [{"stream": {"name": "clients", "json_schema": {}},
        "destination_sync_mode": "append", "destination_object_name": "client"}]})
        .to_string(),
    )?;
    let started = Instant::now();
    let child = Command::new(connector_bin())
        .args([
            "write",
            "--config",
            &config.to_string_lossy(),
            "--catalog",
            &catalog.to_string_lossy(),
        ])
        .stdin(Stdio::from(std::fs::File::open(input)?))
        .stdout(Stdio::null())
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    // ru_maxrss survives fork and exec, so it would report this process's size (the emulator
    // holds every record). VmHWM belongs to the connector's own address space: sample it.
    let (status, usage, peak_kb) = tokio::task::spawn_blocking(move || {
        let mut status = 0;
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let mut peak_kb = 0u64;
        loop {
            if let Some(kb) = vm_hwm_kb(pid) {
                peak_kb = peak_kb.max(kb);
            }
            // SAFETY: pid is our own child; status and usage are valid out-pointers.
            let done = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
            if done == pid {
                return (status, usage, peak_kb);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    })
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(status == 0, "connector exited with status {status}");
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Measure {
        seconds,
        cpu_seconds: cpu(usage.ru_utime) + cpu(usage.ru_stime),
        peak_rss_mb: peak_kb as f64 / 1024.0,
        requests: emulator.request_count(),
        stored: emulator.count("client"),
    })
}

/// The process's peak resident set size so far, from /proc/PID/status.
fn vm_hwm_kb(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let input = input_file(args.records, args.note_bytes)?;
    println!(
        "bench: {} client records{}, bulk insert, batch_size {}, max_concurrency {}, emulator latency {} ms, {} runs",
        args.records,
        match args.note_bytes {
            0 => String::new(),
            n => format!(" with a {n}-byte note each"),
        },
        args.batch_size,
        args.concurrency,
        args.latency_ms,
        args.runs
    );
    let mut measures = Vec::new();
    for run in 1..=args.runs {
        let m = run_once(&args, &input).await?;
        anyhow::ensure!(
            m.stored == args.records,
            "run {run}: {} of {} records stored",
            m.stored,
            args.records
        );
        println!(
            "  run {run}: {:.2} s, {:.0} records/s, {} requests, {:.2} CPU s, peak RSS {:.1} MB",
            m.seconds,
            args.records as f64 / m.seconds,
            m.requests,
            m.cpu_seconds,
            m.peak_rss_mb
        );
        measures.push(m);
    }
    let rate = median(
        measures
            .iter()
            .map(|m| args.records as f64 / m.seconds)
            .collect(),
    );
    let cpu = median(measures.iter().map(|m| m.cpu_seconds).collect());
    let rss = median(measures.iter().map(|m| m.peak_rss_mb).collect());
    print!("median: {rate:.0} records/s, {cpu:.2} connector CPU s, peak RSS {rss:.1} MB");
    if args.latency_ms > 0 {
        let ceiling =
            args.concurrency as f64 * args.batch_size as f64 / (args.latency_ms as f64 / 1000.0);
        print!(
            ", ceiling {ceiling:.0} records/s ({} × {} / {} ms), {:.1}% of it",
            args.concurrency,
            args.batch_size,
            args.latency_ms,
            100.0 * rate / ceiling
        );
    }
    println!();
    Ok(())
}
