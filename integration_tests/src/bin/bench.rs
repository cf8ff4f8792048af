//! Connector benchmark: generates N synthetic client records, runs the release connector binary
//! against the emulator (a fresh `clientsuccess-emulator` process per run, as the API is a
//! server of its own), and prints records/s, requests sent, CPU seconds and peak RSS of the
//! connector (from wait4's rusage). Not a test: it prints figures.
//!
//! `cargo run --release -p integration_tests --bin bench -- --records 200000 --runs 3`

use clap::Parser;
use integration_tests::harness::connector_bin;
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;
use tokio::io::AsyncBufReadExt;

#[derive(Parser, Debug, Clone)]
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
    /// The connector's max_concurrency; unset, its default.
    #[arg(long)]
    concurrency: Option<u32>,
    /// Emulator: requests allowed in flight (429 past it).
    #[arg(long)]
    max_in_flight: Option<usize>,
    /// Emulator: requests allowed per second (429 past it).
    #[arg(long)]
    rate_limit: Option<u64>,
    /// Emulator: share of requests answered 5xx.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Emulator: share of connections dropped.
    #[arg(long, default_value_t = 0.0)]
    drop_rate: f64,
    /// Emulator: share of writes applied, then failed.
    #[arg(long, default_value_t = 0.0)]
    applied_then_failed_rate: f64,
    /// The connector's max_retries; unset, its default.
    #[arg(long)]
    max_retries: Option<u32>,
    /// The sync mode: append (bulk insert) or append_dedup (upsert, one record a request).
    #[arg(long, default_value = "append")]
    mode: String,
    /// The connector's batch_size.
    #[arg(long, default_value_t = 100)]
    batch_size: u32,
    /// Pad each record with a `note` of this many bytes (wide records, for memory).
    #[arg(long, default_value_t = 0)]
    note_bytes: usize,
    /// Run the connector under valgrind's callgrind and report instructions per record: the
    /// instructions of each run less those of a one-record write (which pays the start-up:
    /// an empty write makes no request, so it no longer does), over the other records.
    #[arg(long)]
    callgrind: bool,
    /// Sync the records once, then measure a second sync of the same records (append_dedup:
    /// nothing changed, so the reconcile toolkit lists and writes nothing).
    #[arg(long)]
    rerun: bool,
    /// Fill the account with this many clients first (a bulk insert, not measured); the
    /// measured sync's records are the first of them, unchanged.
    #[arg(long)]
    account: Option<usize>,
}

struct Measure {
    throttled: u64,
    seconds: f64,
    cpu_seconds: f64,
    peak_rss_mb: f64,
    requests: u64,
    stored: usize,
    /// Instructions the connector executed, under --callgrind.
    instructions: Option<u64>,
    /// Clients stored more than once (by externalId).
    duplicates: usize,
}

fn input_file(records: usize, note_bytes: usize) -> anyhow::Result<PathBuf> {
    input_file_ordered(records, note_bytes, false)
}

/// The records, last first when `reversed` (an account whose first listing page does not
/// hold the first records).
fn input_file_ordered(
    records: usize,
    note_bytes: usize,
    reversed: bool,
) -> anyhow::Result<PathBuf> {
    let dir = connector_bin().parent().unwrap().join("bench-data");
    std::fs::create_dir_all(&dir)?;
    let order = if reversed { "-reversed" } else { "" };
    let path = dir.join(format!(
        "clients-active-{records}-{note_bytes}{order}.jsonl"
    ));
    if path.exists() {
        return Ok(path);
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let note = "n".repeat(note_bytes);
    for n in 0..records {
        let i = if reversed { records - 1 - n } else { n };
        let mut data = json!({"name": format!("Client {i}"), "externalId": format!("EXT-{i:08}"), "status": "ACTIVE",
            "siteUrl": format!("https://client{i}.example"), "city": "Denver", "state": "CO", "country": "US",
            "zip": "80202", "timezone": "America/Denver", "npsScore": (i % 201) as i64 - 100,
            "active": true, "custom": {"industry__cs": "Retail", "seats__cs": i % 500}});
        if note_bytes > 0 {
            data["note"] = json!(note);
        }
        let line = json!({"type": "RECORD", "record": {"stream": "clients", "data": data, "emitted_at": 1_763_800_000_000u64}});
        writeln!(out, "{line}")?;
        if (n + 1) % 10_000 == 0 {
            let state = json!({"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "clients"}, "stream_state": {"n": i}}, "id": i}});
            writeln!(out, "{state}")?;
        }
    }
    out.flush()?;
    Ok(path)
}

/// The emulator in a process of its own, started fresh for each run: what a run stored, and
/// the memory and CPU that took, are gone before the next run starts.
struct EmulatorProcess {
    _child: tokio::process::Child,
    base_url: String,
    api_key: String,
}

impl EmulatorProcess {
    async fn start(args: &Args) -> anyhow::Result<Self> {
        let binary = connector_bin()
            .parent()
            .unwrap()
            .join("clientsuccess-emulator");
        let mut command = tokio::process::Command::new(binary);
        command.args([
            "--latency-ms".to_owned(),
            args.latency_ms.to_string(),
            "--error-rate".to_owned(),
            args.error_rate.to_string(),
            "--drop-rate".to_owned(),
            args.drop_rate.to_string(),
            "--applied-then-failed-rate".to_owned(),
            args.applied_then_failed_rate.to_string(),
            "--presize".to_owned(),
            args.records.to_string(),
        ]);
        if let Some(cap) = args.max_in_flight {
            command.args(["--max-in-flight".to_owned(), cap.to_string()]);
        }
        if let Some(rate) = args.rate_limit {
            command.args(["--rate-limit".to_owned(), rate.to_string()]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        // Its first line on stdout is its base URL; the key is the default one.
        let base_url = lines
            .next_line()
            .await?
            .ok_or_else(|| anyhow::anyhow!("the emulator printed nothing"))?;
        let api_key = integration_tests::Options::default().api_key;
        // Whatever else it prints is read, so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            _child: child,
            base_url,
            api_key,
        })
    }

    async fn inspect(&self, what: &str) -> anyhow::Result<Value> {
        let root = self.base_url.trim_end_matches("/v2");
        Ok(emukit::http_client()
            .build()?
            .get(format!("{root}/_emulator/{what}"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}

async fn run_once(args: &Args, input: &PathBuf) -> anyhow::Result<Measure> {
    let dir = connector_bin().parent().unwrap().join("bench-data");
    let profile = dir.join(format!("callgrind.out.{}", args.records));
    let emulator = EmulatorProcess::start(args).await?;
    let config = dir.join("config.json");
    let mut settings = json!({
        "credentials": {"auth_type": "api_key", "api_key": emulator.api_key},
        "base_url": emulator.base_url, "batch_size": args.batch_size,
        "object_storage_config": {"storage_type": "Local", "path": dir.join("rejected.jsonl")}
    });
    if let Some(concurrency) = args.concurrency {
        settings["max_concurrency"] = json!(concurrency);
    }
    if let Some(retries) = args.max_retries {
        settings["max_retries"] = json!(retries);
    }
    std::fs::write(&config, settings.to_string())?;
    let catalog = dir.join("catalog.json");
    std::fs::write(
        &catalog,
        json!({"streams": [{"stream": {"name": "clients", "json_schema": {}},
        "destination_sync_mode": args.mode, "destination_object_name": "client"}]})
        .to_string(),
    )?;
    if let Some(account) = args.account {
        let fill = dir.join("catalog-fill.json");
        std::fs::write(
            &fill,
            json!({"streams": [{"stream": {"name": "clients", "json_schema": {}},
            "destination_sync_mode": "append", "destination_object_name": "client"}]})
            .to_string(),
        )?;
        let quiet = Args {
            callgrind: false,
            ..args.clone()
        };
        let filled = input_file_ordered(account, 0, true)?;
        let (status, ..) = launch(&quiet, &config, &fill, &filled, &profile).await?;
        anyhow::ensure!(
            status == 0,
            "filling the account exited with status {status}"
        );
    }
    let before = if args.account.is_some() {
        emulator.inspect("stats").await?["total"]
            .as_u64()
            .unwrap_or_default()
    } else if args.rerun {
        let (status, ..) = launch(
            &Args {
                callgrind: false,
                ..args.clone()
            },
            &config,
            &catalog,
            input,
            &profile,
        )
        .await?;
        anyhow::ensure!(status == 0, "the first sync exited with status {status}");
        emulator.inspect("stats").await?["total"]
            .as_u64()
            .unwrap_or_default()
    } else {
        0
    };
    let (status, usage, peak_kb, seconds) =
        launch(args, &config, &catalog, input, &profile).await?;
    anyhow::ensure!(status == 0, "connector exited with status {status}");
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let stats = emulator.inspect("stats").await?;
    let throttled = stats["requests"]
        .as_object()
        .into_iter()
        .flat_map(|by_label| by_label.values())
        .filter_map(|by_status| by_status["429"].as_u64())
        .sum();
    let clients = emulator.inspect("records/client").await?;
    let clients = clients.as_array().cloned().unwrap_or_default();
    let distinct: std::collections::HashSet<&str> = clients
        .iter()
        .filter_map(|c| c["externalId"].as_str())
        .collect();
    Ok(Measure {
        throttled,
        seconds,
        cpu_seconds: cpu(usage.ru_utime) + cpu(usage.ru_stime),
        peak_rss_mb: peak_kb as f64 / 1024.0,
        requests: stats["total"].as_u64().unwrap_or_default() - before,
        stored: clients.len(),
        duplicates: clients.len() - distinct.len(),
        instructions: args
            .callgrind
            .then(|| callgrind_total(&profile))
            .transpose()?,
    })
}

/// Runs the connector once (under callgrind when asked): its exit status, rusage, peak RSS
/// in KB and wall seconds.
async fn launch(
    args: &Args,
    config: &std::path::Path,
    catalog: &std::path::Path,
    input: &PathBuf,
    profile: &std::path::Path,
) -> anyhow::Result<(i32, libc::rusage, u64, f64)> {
    let started = Instant::now();
    let mut command = if args.callgrind {
        let mut valgrind = Command::new("valgrind");
        valgrind
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", profile.display()))
            .arg(connector_bin())
            .stderr(Stdio::null());
        valgrind
    } else {
        Command::new(connector_bin())
    };
    let child = command
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
    Ok((status, usage, peak_kb, started.elapsed().as_secs_f64()))
}

/// The instruction count in a callgrind profile's `summary:` (or `totals:`) line.
fn callgrind_total(profile: &PathBuf) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(profile)?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|n| n.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no instruction total in {}", profile.display()))
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
    let concurrency = args.concurrency.unwrap_or(32);
    println!(
        "bench: {} client records{}, {}, batch_size {}, max_concurrency {}, emulator latency {} ms{}{}{}, {} runs",
        args.records,
        match args.note_bytes {
            0 => String::new(),
            n => format!(" with a {n}-byte note each"),
        },
        args.mode,
        args.batch_size,
        concurrency,
        args.latency_ms,
        args.max_in_flight.map(|n| format!(", in-flight cap {n}")).unwrap_or_default(),
        args.rate_limit.map(|n| format!(", rate budget {n}/s")).unwrap_or_default(),
        if args.error_rate + args.drop_rate + args.applied_then_failed_rate > 0.0 {
            format!(", faults: {} 5xx, {} dropped, {} applied then failed", args.error_rate, args.drop_rate, args.applied_then_failed_rate)
        } else {
            String::new()
        },
        args.runs
    );
    let mut measures = Vec::new();
    for run in 1..=args.runs {
        let m = run_once(&args, &input).await?;
        anyhow::ensure!(
            m.stored >= args.records,
            "run {run}: {} of {} records stored",
            m.stored,
            args.records
        );
        println!(
            "  run {run}{}: {:.2} s, {:.0} records/s, {} requests ({:.4} a record, {} answered 429), {} duplicates, {:.2} CPU s, peak RSS {:.1} MB",
            if args.rerun { " (the re-run)" } else { "" },
            m.seconds,
            args.records as f64 / m.seconds,
            m.requests,
            m.requests as f64 / args.records.max(1) as f64,
            m.throttled,
            m.duplicates,
            m.cpu_seconds,
            m.peak_rss_mb
        );
        measures.push(m);
    }
    if args.callgrind && args.records > 1 {
        let one = Args { records: 1, ..args };
        let baseline = run_once(&one, &input_file(1, args.note_bytes)?).await?;
        let fixed = baseline.instructions.unwrap_or_default();
        let total = median(
            measures
                .iter()
                .filter_map(|m| m.instructions)
                .map(|i| i as f64)
                .collect(),
        );
        let per_record = (total - fixed as f64) / (args.records - 1) as f64;
        let requests =
            median(measures.iter().map(|m| m.requests as f64).collect()) - baseline.requests as f64;
        println!(
            "callgrind: {total:.0} instructions (median), {fixed} for a one-record write; {per_record:.0} per further record, {:.0} per further request",
            (total - fixed as f64) / requests.max(1.0)
        );
        return Ok(());
    }
    if args.records == 0 {
        let ms = median(measures.iter().map(|m| m.seconds * 1000.0).collect());
        println!("median: an empty write takes {ms:.1} ms, surface detection included");
        return Ok(());
    }
    let rate = median(
        measures
            .iter()
            .map(|m| args.records as f64 / m.seconds)
            .collect(),
    );
    let cpu = median(measures.iter().map(|m| m.cpu_seconds).collect());
    let rss = median(measures.iter().map(|m| m.peak_rss_mb).collect());
    let throttled = median(
        measures
            .iter()
            .map(|m| 100.0 * m.throttled as f64 / m.requests.max(1) as f64)
            .collect(),
    );
    print!("median: {rate:.0} records/s, {cpu:.2} connector CPU s, peak RSS {rss:.1} MB, {throttled:.1}% of requests answered 429");
    let per_request = if args.mode == "append" {
        args.batch_size as f64
    } else {
        1.0
    };
    let ceiling = match (args.rate_limit, args.max_in_flight) {
        (Some(rate), _) => Some((
            rate as f64 * per_request,
            format!("{rate} requests/s × {per_request}"),
        )),
        (None, Some(cap)) if args.latency_ms > 0 => Some((
            cap as f64 * per_request / (args.latency_ms as f64 / 1000.0),
            format!("{cap} × {per_request} / {} ms", args.latency_ms),
        )),
        (None, None) if args.latency_ms > 0 => Some((
            concurrency as f64 * per_request / (args.latency_ms as f64 / 1000.0),
            format!("{concurrency} × {per_request} / {} ms", args.latency_ms),
        )),
        _ => None,
    };
    if let Some((ceiling, how)) = ceiling {
        print!(
            ", ceiling {ceiling:.0} records/s ({how}), {:.1}% of it",
            100.0 * rate / ceiling
        );
    }
    println!();
    Ok(())
}
