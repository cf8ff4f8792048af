//! Runs the real connector binary against an emulator and decodes what it prints.
//!
//! Every stdout line of every run is also appended to `target/protocol-lines/`, where
//! `scripts/test.sh` checks each one against Airbyte's official `AirbyteMessage` model.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `target/<profile>/<name>`: a binary of the workspace, built beside the running test.
pub fn bin_named(name: &str) -> PathBuf {
    let bin = profile_dir().join(name);
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build --workspace --bins` (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// `target/<profile>`, where the workspace's binaries live: found from the running test's own
/// path (`target/<profile>/deps/...`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// A fresh directory under `target/test-runs/` for one test's files.
pub fn scratch_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = profile_dir()
        .join("test-runs")
        .join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub messages: Vec<Value>,
}

impl Run {
    pub fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.messages.iter().filter(|m| m["type"] == kind).collect()
    }

    pub fn states(&self) -> Vec<&Value> {
        self.of_type("STATE")
            .into_iter()
            .map(|m| &m["state"])
            .collect()
    }

    pub fn logs(&self, level: &str) -> Vec<String> {
        self.of_type("LOG")
            .into_iter()
            .filter(|m| m["log"]["level"] == level)
            .map(|m| m["log"]["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub fn error_trace(&self) -> Option<&Value> {
        self.of_type("TRACE")
            .into_iter()
            .map(|m| &m["trace"]["error"])
            .next()
    }

    /// The process exited 0; else fails with what it printed.
    pub fn assert_ok(&self) {
        assert!(
            self.status.success(),
            "sync failed:\n{}\n{}",
            self.stdout,
            self.stderr
        );
    }

    /// The sync ended as an API that stays down must end it: a non-zero exit, its last
    /// message the one TRACE, a `transient_error` naming a route and the 503 it last got, and
    /// fewer states echoed than the `states_sent` (the records after the outage began are not
    /// committed). Returns the message.
    pub fn assert_ended_by_outage(&self, states_sent: usize) -> String {
        assert!(
            !self.status.success(),
            "a sync against a dead API exited 0:\n{}",
            self.stdout
        );
        let traces = self.of_type("TRACE");
        assert_eq!(traces.len(), 1, "{}", self.stdout);
        assert_eq!(
            self.messages.last(),
            Some(traces[0]),
            "the TRACE is the last message"
        );
        let error = &traces[0]["trace"]["error"];
        assert_eq!(error["failure_type"], "transient_error", "{error}");
        let message = error["message"].as_str().unwrap_or_default().to_owned();
        assert!(
            message.contains("503"),
            "the last answer is named: {message}"
        );
        assert!(
            ["GET /", "POST /", "PUT /", "PATCH /"]
                .iter()
                .any(|m| message.contains(m)),
            "the route is named: {message}"
        );
        assert!(self.states().len() < states_sent, "{}", self.stdout);
        message
    }

    /// No secret anywhere in what the process printed.
    pub fn assert_no_secret(&self, secret: &str) {
        assert!(
            !self.stdout.contains(secret),
            "secret on stdout:\n{}",
            self.stdout
        );
        assert!(
            !self.stderr.contains(secret),
            "secret on stderr:\n{}",
            self.stderr
        );
    }
}

/// Runs the binary `bin` with `args` and `env`, feeding `stdin`; decodes stdout line by line.
pub async fn run_bin(bin: &Path, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Run {
    let mut child = tokio::process::Command::new(bin)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("connector starts");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let feeder = tokio::spawn(async move {
        // The connector may stop reading early (a fatal error): a broken pipe is expected then.
        let _ = input.write_all(&data).await;
        let _ = input.shutdown().await;
    });
    let output = child.wait_with_output().await.expect("connector runs");
    let _ = feeder.await;
    let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    keep_output(&stdout, &stderr);
    let messages = stdout
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            assert!(
                value["type"].is_string(),
                "stdout line is not an AirbyteMessage: {line}"
            );
            value
        })
        .collect();
    Run {
        status: output.status,
        stdout,
        stderr,
        messages,
    }
}

/// Keeps stdout (for the AirbyteMessage check) and stderr (for the secret search).
pub fn keep_output(stdout: &str, stderr: &str) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = profile_dir().join("protocol-lines");
    std::fs::create_dir_all(&dir).expect("protocol-lines dir");
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let stem = format!("{}-{n}", std::process::id());
    std::fs::write(dir.join(format!("{stem}.jsonl")), stdout).expect("stdout kept");
    std::fs::write(dir.join(format!("{stem}.stderr")), stderr).expect("stderr kept");
}

/// Appends printed lines to `protocol-lines/<stem>-<pid>.jsonl`, for many small runs (a fuzz
/// test's cases) that would otherwise make a file each.
pub fn append_protocol_lines(stem: &str, stdout: &str) {
    use std::io::Write as _;
    if stdout.is_empty() {
        return;
    }
    let dir = profile_dir().join("protocol-lines");
    std::fs::create_dir_all(&dir).expect("protocol-lines dir");
    let path = dir.join(format!("{stem}-{}.jsonl", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("protocol-lines file");
    file.write_all(stdout.as_bytes()).expect("lines kept");
}

/// Writes `value` as JSON to `dir/name` and returns the path as a string.
pub fn write_json(dir: &Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

/// A configured catalog of `(stream, object, sync mode)`.
pub fn catalog(streams: &[(&str, &str, &str)]) -> Value {
    let streams: Vec<Value> = streams
        .iter()
        .map(|(name, object, mode)| {
            json!({
                "stream": {"name": name, "json_schema": {"type": "object"}, "supported_sync_modes": ["full_refresh"]},
                "sync_mode": "full_refresh",
                "destination_sync_mode": mode,
                "destination_object_name": object,
                "generation_id": null, "minimum_generation_id": null, "sync_id": null
            })
        })
        .collect();
    json!({ "streams": streams })
}

pub fn record_line(stream: &str, data: &Value) -> String {
    json!({"type": "RECORD", "record": {"stream": stream, "data": data, "emitted_at": 1_700_000_000_000u64}}).to_string()
}

/// A STREAM state with a platform `id`, as Airbyte sends it.
pub fn state_line(stream: &str, id: u64) -> String {
    json!({"type": "STATE", "state": {"type": "STREAM",
        "stream": {"stream_descriptor": {"name": stream}, "stream_state": {"cursor": id}},
        "sourceStats": {"recordCount": 0.0}, "id": id}})
    .to_string()
}

/// A misbehaving HTTP server on 127.0.0.1: `answer` gets each request's method and path and
/// returns the raw status line, headers and body to send back (`HTTP/1.1 ...`). Each
/// connection serves one request and is closed. The task stops when the returned handle drops.
pub async fn scripted_server(
    answer: impl Fn(&str, &str) -> String + Send + std::marker::Sync + 'static,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = std::sync::Arc::new(answer);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).await.is_err() {
                    return;
                }
                let mut length = 0usize;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':') {
                        if name.eq_ignore_ascii_case("content-length") {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body).await;
                let mut parts = request_line.split_whitespace();
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let reply = answer(method, path);
                let mut stream = reader.into_inner();
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, task)
}

/// A raw HTTP/1.1 answer with a JSON body, `extra` headers (each ending in `\r\n`) and
/// `Connection: close`.
pub fn http_answer(status: &str, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
}

/// A running connector whose stdin stays open until dropped, so a test can signal it mid-sync.
pub struct Live {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
}

impl Live {
    /// `bin write --config … --catalog …`, its stdin left open.
    pub async fn start(bin: &Path, config: &str, catalog: &str) -> Self {
        let mut child = tokio::process::Command::new(bin)
            .args(["write", "--config", config, "--catalog", catalog])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        Self { child, stdin }
    }

    pub async fn send(&mut self, lines: &[String]) {
        let text = lines.join("\n") + "\n";
        let stdin = self.stdin.as_mut().expect("input still open");
        stdin.write_all(text.as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// Ends the input, as a source that has sent everything does.
    pub fn close_input(&mut self) {
        self.stdin = None;
    }

    pub fn signal(&self, signal: i32) {
        let pid = self.child.id().unwrap() as i32;
        // SAFETY: signalling our own child process.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Waits for the exit, then decodes stdout like `run_bin` does.
    pub async fn finish(mut self) -> (Run, Duration) {
        let started = Instant::now();
        let mut stdout = String::new();
        let mut stderr = String::new();
        let mut out = self.child.stdout.take().unwrap();
        let mut err = self.child.stderr.take().unwrap();
        let (_, _, status) = tokio::join!(
            out.read_to_string(&mut stdout),
            err.read_to_string(&mut stderr),
            self.child.wait()
        );
        let waited = started.elapsed();
        let messages = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        keep_output(&stdout, &stderr);
        (
            Run {
                status: status.unwrap(),
                stdout,
                stderr,
                messages,
            },
            waited,
        )
    }
}

/// The demos' sync: runs `connector write` with `config` and `catalog` on the lines of
/// `input`, prints the command as `shown` and each line the connector printed; returns
/// whether it succeeded.
pub fn print_sync(
    connector: &Path,
    config: &Path,
    catalog: &Path,
    input: &Path,
    shown: &str,
) -> std::io::Result<bool> {
    println!("$ {shown}");
    let run = std::process::Command::new(connector)
        .args(["write", "--config"])
        .arg(config)
        .arg("--catalog")
        .arg(catalog)
        .stdin(Stdio::from(std::fs::File::open(input)?))
        .output()?;
    for line in String::from_utf8_lossy(&run.stdout).lines() {
        println!("  {line}");
    }
    println!("  (exit {})\n", run.status.code().unwrap_or(-1));
    Ok(run.status.success())
}

/// `bin <command> --config …` with `config` written to a fresh scratch directory.
pub async fn run_command(bin: &Path, command: &str, config: &Value) -> Run {
    let dir = scratch_dir(command);
    let path = write_json(&dir, "config.json", config);
    run_bin(bin, &[command, "--config", &path], b"", &[]).await
}

/// `base` with each top-level key of `extra` set over it: a test's config from the
/// destination's usual one.
pub fn merged(mut base: Value, extra: Value) -> Value {
    if let Value::Object(extra) = extra {
        for (key, value) in extra {
            base[key] = value;
        }
    }
    base
}

/// `config.json` and `catalog.json` for `streams` (name, object, mode) in a fresh scratch
/// directory: their paths, and the directory.
pub fn write_files(config: &Value, streams: &[(&str, &str, &str)]) -> (String, String, PathBuf) {
    let dir = scratch_dir("write");
    let config_path = write_json(&dir, "config.json", config);
    let catalog_path = write_json(&dir, "catalog.json", &catalog(streams));
    (config_path, catalog_path, dir)
}

/// `bin write` of `lines` for `streams` (name, object, mode), with `config`; the files go to
/// a fresh scratch directory, which is returned too.
pub async fn run_write(
    bin: &Path,
    config: &Value,
    streams: &[(&str, &str, &str)],
    lines: &[String],
) -> (Run, PathBuf) {
    let (config_path, catalog_path, dir) = write_files(config, streams);
    let input = lines.join("\n") + "\n";
    let args = [
        "write",
        "--config",
        &config_path,
        "--catalog",
        &catalog_path,
    ];
    (run_bin(bin, &args, input.as_bytes(), &[]).await, dir)
}

/// An `object_storage_config` keeping rejected records in `dir/rejects.jsonl`.
pub fn local_rejects(dir: &Path) -> Value {
    json!({"storage_type": "Local", "path": dir.join("rejects.jsonl").to_string_lossy()})
}

/// The records kept in `dir/rejects.jsonl` by [`local_rejects`], in order.
pub fn rejected_in(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("rejects.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// An echoed state's `destinationStats`: (records written, records rejected).
pub fn state_counts(state: &Value) -> (f64, f64) {
    let stats = &state["destinationStats"];
    (
        stats["recordCount"].as_f64().unwrap_or(-1.0),
        stats["rejectedRecordCount"].as_f64().unwrap_or(0.0),
    )
}

/// The SPEC of destination `D` says what an empty optional field becomes: each one not
/// required names its `default` or may be null, and `minimal` (the required fields) with every
/// default written out turns into the same settings as `minimal` alone, field by field.
pub fn assert_spec_defaults<D: engine::cli::Destination>(minimal: &Value)
where
    D::Settings: std::fmt::Debug,
{
    let spec = serde_json::to_value(D::spec()).expect("a SPEC serializes");
    let settings = D::settings;
    let schema = &spec["connectionSpecification"];
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let base = format!("{:?}", settings(minimal).expect("the minimal config loads"));
    let properties = schema["properties"].as_object().expect("properties");
    for (name, property) in properties {
        // One of a pair the config needs (a subdomain or a URL) is set in `minimal`.
        if required.contains(&name.as_str()) || minimal.get(name).is_some() {
            continue;
        }
        let nullable = property["type"]
            .as_array()
            .is_some_and(|types| types.iter().any(|t| t == "null"));
        let Some(default) = property.get("default") else {
            assert!(
                nullable,
                "`{name}` is optional, may not be null and has no default in the SPEC: {property}"
            );
            continue;
        };
        let explicit = merged(minimal.clone(), json!({ name: default }));
        let with_default = format!(
            "{:?}",
            settings(&explicit)
                .unwrap_or_else(|e| panic!("`{name}` = its default {default}: {e:?}"))
        );
        assert_eq!(
            with_default, base,
            "`{name}`: the SPEC's default {default} is not what an empty field becomes"
        );
    }
}

/// `n` records of `stream`, `row(i)` each, with a STATE after every `every`; and how many
/// states that is. The input of the outage tests.
pub fn records_with_states(
    stream: &str,
    n: usize,
    every: usize,
    row: impl Fn(usize) -> Value,
) -> (Vec<String>, usize) {
    let mut lines = Vec::with_capacity(n + n / every);
    for i in 0..n {
        lines.push(record_line(stream, &row(i)));
        if i % every == every - 1 {
            lines.push(state_line(stream, i as u64));
        }
    }
    (lines, n / every)
}

/// Runs `sync`, a write against an API that went down for good mid-way, and asserts it ended
/// as it must ([`Run::assert_ended_by_outage`]) within a minute: a ceiling no hanging sync
/// passes (the bound at the defaults is seconds, docs/sync.md). Prints how long it took.
pub async fn assert_outage_ends(
    what: &str,
    states: usize,
    sync: impl std::future::Future<Output = Run>,
) {
    let started = std::time::Instant::now();
    let run = sync.await;
    let took = started.elapsed();
    let message = run.assert_ended_by_outage(states);
    assert!(took.as_secs() < 60, "{what}: {took:?}");
    eprintln!("{what}: ended in {:.2} s: {message}", took.as_secs_f64());
}

/// An emulator's request counts: "METHOD /path" → status → requests.
pub type Stats = std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>;

/// Requests in `stats` in all.
pub fn requests_in(stats: &Stats) -> u64 {
    stats
        .values()
        .flat_map(|by_status| by_status.values())
        .sum()
}

/// Requests in `stats` that write (POST, PUT, PATCH, DELETE), whatever their answer.
pub fn writes_in(stats: &Stats) -> u64 {
    stats
        .iter()
        .filter(|(label, _)| {
            ["POST ", "PUT ", "PATCH ", "DELETE "]
                .iter()
                .any(|m| label.starts_with(m))
        })
        .flat_map(|(_, by_status)| by_status.values())
        .sum()
}

/// The counts of a stream's summary line (`stream `s`: 3 created, …` or, in a dry run,
/// `dry run, stream `s` would be: 3 created, …`).
pub fn stream_summary(run: &Run, stream: &str) -> Option<String> {
    let real = format!("stream `{stream}`: ");
    let dry = format!("dry run, stream `{stream}` would be: ");
    run.logs("INFO").into_iter().find_map(|line| {
        line.strip_prefix(&real)
            .or_else(|| line.strip_prefix(&dry))
            .map(str::to_owned)
    })
}

/// What the reconcile toolkit promises on every destination, checked against its emulator:
/// `rows` synced into an empty account; then a dry run of `changed` (the same rows, `n_changed`
/// of them with one field changed) writes nothing, echoes no state and counts what the real
/// sync of `changed` then does, which writes `n_changed` times; then `changed` again writes
/// nothing and spends at most the listing's `pages` + 2 requests beyond what a sync of no
/// rows spends. `sync(dry_run, lines)` runs one sync. Returns the re-run's requests.
pub async fn assert_reconciles<F, Fut>(
    stats: impl Fn() -> Stats,
    sync: F,
    stream: &str,
    rows: &[String],
    changed: &[String],
    n_changed: u64,
    pages: u64,
) -> u64
where
    F: Fn(bool, Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Run>,
{
    let with_state = |lines: &[String]| {
        let mut lines = lines.to_vec();
        lines.push(state_line(stream, 1));
        lines
    };
    let measure = |before: &Stats, after: &Stats| {
        (
            requests_in(after) - requests_in(before),
            writes_in(after) - writes_in(before),
        )
    };
    let before = stats();
    sync(false, with_state(&[])).await.assert_ok();
    let (base_requests, base_writes) = measure(&before, &stats());

    sync(false, with_state(rows)).await.assert_ok();

    let before = stats();
    let dry = sync(true, with_state(changed)).await;
    dry.assert_ok();
    assert!(dry.states().is_empty(), "a dry run echoes no state");
    assert_eq!(
        measure(&before, &stats()).1,
        base_writes,
        "a dry run writes nothing"
    );
    let planned = stream_summary(&dry, stream).expect("the dry run's summary line");

    let before = stats();
    let real = sync(false, with_state(changed)).await;
    real.assert_ok();
    assert_eq!(
        measure(&before, &stats()).1 - base_writes,
        n_changed,
        "one write a changed row"
    );
    assert_eq!(
        stream_summary(&real, stream).as_deref(),
        Some(planned.as_str()),
        "the dry run's counts are the sync's"
    );
    let unchanged = rows.len() as u64 - n_changed;
    assert!(
        planned.contains(&format!("{n_changed} updated"))
            && planned.contains(&format!("{unchanged} unchanged")),
        "{planned}"
    );

    let before = stats();
    let again = sync(false, with_state(changed)).await;
    again.assert_ok();
    let (requests, writes) = measure(&before, &stats());
    assert_eq!(
        writes, base_writes,
        "a re-run of unchanged rows writes nothing"
    );
    assert!(
        requests - base_requests <= pages + 2,
        "the re-run spent {} requests beyond a sync of no rows; the listing is {pages} pages",
        requests - base_requests
    );
    assert_eq!(
        stream_summary(&again, stream).as_deref(),
        Some(format!("{} unchanged (no request)", rows.len()).as_str())
    );
    requests - base_requests
}
