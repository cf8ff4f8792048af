//! Where rejected records go: JSON lines of the stream, the line number, the original record,
//! the reason, the HTTP status and the time, in a local file or in S3 objects (one per
//! checkpoint that had rejections), or nowhere (then the sync must fail). When the store keeps
//! every row's outcome, each written row gets a line there too: what became of it, with the
//! platform's id and the fields sent.

use super::prepare::{Original, Rejection};
use crate::config::{RejectsTarget, S3Target};
use crate::error::ConfigError;
use crate::install_tls_provider;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use serde::Serialize;
use serde_json::value::RawValue;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use time::format_description::well_known::Rfc3339;

pub struct RejectStore {
    sink: Sink,
    /// Written since the last flush: only then does a state need to wait for the store.
    unsynced: bool,
    /// Every row's outcome is kept, not only rejections.
    every_outcome: bool,
}

enum Sink {
    Nowhere,
    File(PathBuf, BufWriter<File>),
    Objects(ObjectSink),
}

/// Rejected records buffered per stream, then put as one object per stream and flush.
struct ObjectSink {
    /// Stream name → its rejected records as JSON lines.
    buffers: std::collections::BTreeMap<String, Vec<u8>>,
    buffered: usize,
    /// `{bucket_path}/{sync id}/`, where this sync's objects go.
    folder: String,
    /// `s3://bucket/folder`, for messages.
    location: String,
    part: u32,
    uploader: Uploader,
}

/// Past this many buffered bytes an object is put before the next state asks for it, so
/// memory stays bounded whatever the rejections.
const OBJECT_BYTES: usize = 8 << 20;

#[derive(Serialize)]
#[serde(untagged)]
enum StoredRecord<'a> {
    Record(&'a RawValue),
    Line(&'a str),
}

#[derive(Serialize)]
struct StoredRejection<'a> {
    stream: Option<&'a str>,
    line: u64,
    record: StoredRecord<'a>,
    /// "rejected", when the store keeps every row's outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'static str>,
    reason: &'a str,
    http_status: Option<u16>,
    rejected_at: String,
}

/// A row that was written (or, in a dry run, would be), as the outcome log keeps it.
#[derive(Serialize)]
struct StoredOutcome<'a> {
    stream: &'a str,
    line: u64,
    record: StoredRecord<'a>,
    /// created, updated, unchanged or written (a write that does not say which).
    outcome: &'static str,
    /// The platform's id of the record, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    /// The fields an update sent (or would send).
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a [String]>,
    dry_run: bool,
    at: String,
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn stored_record(raw: &str) -> StoredRecord<'_> {
    // Checked JSON when it was read; a failure here would be a bug, and the text is kept.
    match serde_json::from_str::<&RawValue>(raw) {
        Ok(raw) => StoredRecord::Record(raw),
        Err(_) => StoredRecord::Line(raw),
    }
}

impl RejectStore {
    /// Opens the store now (the file, appending; or the S3 client), so a bad target fails the
    /// sync before anything is written.
    pub fn open(target: &RejectsTarget) -> Result<Self, ConfigError> {
        let sink = match target {
            RejectsTarget::Nowhere => Sink::Nowhere,
            RejectsTarget::Local(path) => {
                let file = open_local(path)?;
                Sink::File(path.clone(), BufWriter::new(file))
            }
            RejectsTarget::S3(target) => {
                let folder = match target.prefix.as_str() {
                    "" => format!("{}/", sync_id()),
                    prefix => format!("{prefix}/{}/", sync_id()),
                };
                Sink::Objects(ObjectSink {
                    buffers: Default::default(),
                    buffered: 0,
                    location: format!("s3://{}/{folder}", target.bucket),
                    folder,
                    part: 0,
                    uploader: Uploader::start(target)?,
                })
            }
        };
        Ok(Self {
            sink,
            unsynced: false,
            every_outcome: false,
        })
    }

    /// Keeps every row's outcome from now on, not only the rejected ones.
    pub fn keep_every_outcome(mut self, every: bool) -> Self {
        self.every_outcome = every && self.keeps_records();
        self
    }

    pub fn keeps_every_outcome(&self) -> bool {
        self.every_outcome
    }

    /// A written row's outcome, when the store keeps every one.
    pub fn store_outcome(
        &mut self,
        stream: &str,
        line: u64,
        original: &str,
        verdict: &super::Verdict,
        dry_run: bool,
    ) -> io::Result<()> {
        use super::Verdict;
        if !self.every_outcome {
            return Ok(());
        }
        let (id, fields) = match verdict {
            Verdict::Created { id } => (id.as_deref(), None),
            Verdict::Updated { id, fields } => (Some(id.as_str()), Some(fields.as_slice())),
            Verdict::Unchanged { id } => (Some(id.as_str()), None),
            Verdict::Written | Verdict::Refused { .. } => (None, None),
        };
        let stored = StoredOutcome {
            stream,
            line,
            record: stored_record(original),
            outcome: verdict.outcome(),
            id,
            fields,
            dry_run,
            at: now(),
        };
        self.append(Some(stream), &stored)
    }

    pub fn keeps_records(&self) -> bool {
        !matches!(self.sink, Sink::Nowhere)
    }

    /// Where the records go, for messages: a path or an `s3://` address.
    pub fn location(&self) -> Option<String> {
        match &self.sink {
            Sink::Nowhere => None,
            Sink::File(path, _) => Some(path.display().to_string()),
            Sink::Objects(objects) => Some(objects.location.clone()),
        }
    }

    pub fn store(&mut self, entry: &Rejection) -> io::Result<()> {
        let record = match &entry.original {
            Original::Record(raw) => stored_record(raw),
            Original::Line(text) => StoredRecord::Line(text),
        };
        let stored = StoredRejection {
            stream: entry.stream.as_deref(),
            line: entry.line,
            record,
            outcome: self.every_outcome.then_some("rejected"),
            reason: &entry.reason,
            http_status: entry.http_status,
            rejected_at: now(),
        };
        self.append(entry.stream.as_deref(), &stored)
    }

    fn append(&mut self, stream: Option<&str>, stored: &impl Serialize) -> io::Result<()> {
        match &mut self.sink {
            Sink::Nowhere => return Ok(()),
            Sink::File(_, file) => {
                serde_json::to_writer(&mut *file, stored)?;
                file.write_all(b"\n")?;
            }
            Sink::Objects(objects) => {
                // A line that named no stream (not even a record) goes under `_unparsed`.
                let stream = stream.unwrap_or("_unparsed");
                let buffer = objects.buffers.entry(stream.replace('/', "_")).or_default();
                let before = buffer.len();
                serde_json::to_writer(&mut *buffer, stored)?;
                buffer.push(b'\n');
                objects.buffered += buffer.len() - before;
                if objects.buffered >= OBJECT_BYTES {
                    objects.put()?;
                }
            }
        }
        self.unsynced = true;
        Ok(())
    }

    /// Called before any STATE goes out: a state promises its rejected records are stored.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.unsynced {
            return Ok(());
        }
        match &mut self.sink {
            Sink::Nowhere => {}
            Sink::File(_, file) => {
                file.flush()?;
                file.get_ref().sync_data()?;
            }
            Sink::Objects(objects) => objects.put()?,
        }
        self.unsynced = false;
        Ok(())
    }
}

impl ObjectSink {
    /// Puts each stream's buffered records as `{folder}{stream}/{date}_{epoch ms}_{part}.jsonl`,
    /// the CDK's `{sync_id}/{stream_name}/` layout under `bucket_path`.
    fn put(&mut self) -> io::Result<()> {
        let now = time::OffsetDateTime::now_utc();
        let epoch_ms = now.unix_timestamp() * 1000 + i64::from(now.millisecond());
        for (stream, bytes) in std::mem::take(&mut self.buffers) {
            self.part += 1;
            let name = format!(
                "{}{stream}/{}_{:02}_{:02}_{epoch_ms}_{}.jsonl",
                self.folder,
                now.year(),
                u8::from(now.month()),
                now.day(),
                self.part
            );
            self.uploader.put(name, bytes)?;
        }
        self.buffered = 0;
        Ok(())
    }
}

/// The id of this sync in object names: Airbyte's job id when it runs the connector (the
/// platform links rejected records at `{bucket_path}/{job id}/`), else the start time.
fn sync_id() -> String {
    match std::env::var("WORKER_JOB_ID") {
        Ok(id) if !id.is_empty() && !id.contains('/') => id,
        _ => {
            let now = time::OffsetDateTime::now_utc();
            format!(
                "{}{:02}{:02}T{:02}{:02}{:02}Z",
                now.year(),
                u8::from(now.month()),
                now.day(),
                now.hour(),
                now.minute(),
                now.second()
            )
        }
    }
}

fn open_local(path: &Path) -> Result<File, ConfigError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            ConfigError::new(format!(
                "object_storage_config.path: cannot create the folder {}: {e}",
                parent.display()
            ))
        })?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            ConfigError::new(format!(
                "object_storage_config.path: cannot open {} for writing: {e}{}",
                path.display(),
                uid_hint(&e)
            ))
        })
}

/// What to fix when the image's user may not write there.
fn uid_hint(error: &io::Error) -> &'static str {
    if error.kind() == io::ErrorKind::PermissionDenied {
        " (in Airbyte, /local must be writable by uid 1000)"
    } else {
        ""
    }
}

/// The S3 client for a target.
pub fn s3_store(target: &S3Target) -> Result<AmazonS3, ConfigError> {
    install_tls_provider();
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&target.bucket)
        .with_region(&target.region);
    if let Some(endpoint) = &target.endpoint {
        builder = builder
            .with_endpoint(endpoint.as_str().trim_end_matches('/'))
            .with_allow_http(endpoint.scheme() == "http");
    }
    if let (Some(key), Some(secret)) = (&target.access_key_id, &target.secret_access_key) {
        builder = builder
            .with_access_key_id(key.expose())
            .with_secret_access_key(secret.expose());
    }
    builder.build().map_err(|e| {
        ConfigError::new(format!(
            "object_storage_config: cannot set up S3 for bucket {:?}: {e}",
            target.bucket
        ))
    })
}

/// Puts objects from a thread of its own: the pipeline's store and flush are synchronous
/// (a state waits for its rejected records), and object_store is async.
struct Uploader {
    requests: mpsc::Sender<(String, Vec<u8>, mpsc::Sender<io::Result<()>>)>,
}

impl Uploader {
    fn start(target: &S3Target) -> Result<Self, ConfigError> {
        let store = s3_store(target)?;
        let (requests, incoming) =
            mpsc::channel::<(String, Vec<u8>, mpsc::Sender<io::Result<()>>)>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ConfigError::new(format!("cannot start the S3 uploader: {e}")))?;
        std::thread::Builder::new()
            .name("rejects-s3".into())
            .spawn(move || {
                for (name, bytes, done) in incoming {
                    let put = runtime.block_on(
                        store.put(&ObjectPath::from(name.as_str()), PutPayload::from(bytes)),
                    );
                    let _ = done.send(put.map(|_| ()).map_err(|e| {
                        io::Error::other(format!("putting rejected records at {name}: {e}"))
                    }));
                }
            })
            .map_err(|e| ConfigError::new(format!("cannot start the S3 uploader: {e}")))?;
        Ok(Self { requests })
    }

    fn put(&self, name: String, bytes: Vec<u8>) -> io::Result<()> {
        let (done, result) = mpsc::channel();
        self.requests
            .send((name, bytes, done))
            .map_err(|_| io::Error::other("the S3 uploader stopped"))?;
        result
            .recv()
            .map_err(|_| io::Error::other("the S3 uploader stopped"))?
    }
}

/// `check`: proves records can be kept where the config says, by writing, reading back and
/// deleting a small object (or file). Says what to fix when it cannot.
pub async fn prove(target: &RejectsTarget, connector: &str) -> Result<String, String> {
    let probe_text = format!("{{\"check\":\"{connector}\"}}\n");
    let probe_bytes = probe_text.into_bytes();
    let probe_body = probe_bytes.clone();
    match target {
        RejectsTarget::Nowhere => Ok("rejected records are kept nowhere (object_storage_config None): a sync that rejects any record fails".into()),
        RejectsTarget::Local(path) => {
            drop(open_local(path).map_err(|e| e.0)?);
            let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let probe = folder.join(format!(".{connector}-check-{}", std::process::id()));
            let proved = std::fs::write(&probe, &probe_bytes)
                .and_then(|()| std::fs::read(&probe))
                .and_then(|read| {
                    (read == probe_bytes)
                        .then_some(())
                        .ok_or_else(|| io::Error::other("what was read back differs"))
                });
            let _ = std::fs::remove_file(&probe);
            proved.map_err(|e| {
                format!(
                    "object_storage_config.path: cannot write and read back a file in {}: {e}{}",
                    folder.display(),
                    uid_hint(&e)
                )
            })?;
            Ok(format!("rejected records go to {}", path.display()))
        }
        RejectsTarget::S3(target) => {
            let store = s3_store(target).map_err(|e| e.0)?;
            let name = match target.prefix.as_str() {
                "" => format!("_airbyte_check/{}.jsonl", std::process::id()),
                prefix => format!("{prefix}/_airbyte_check/{}.jsonl", std::process::id()),
            };
            let path = ObjectPath::from(name.as_str());
            let fix = |step: &str, e: &dyn std::fmt::Display| {
                format!(
                    "object_storage_config: could not {step} s3://{}/{name}: {e}. Check the bucket name and region, the endpoint, and that the keys may put, get and delete objects there",
                    target.bucket
                )
            };
            store.put(&path, PutPayload::from(probe_body)).await.map_err(|e| fix("put", &e))?;
            let read = store.get(&path).await.map_err(|e| fix("get", &e))?.bytes().await.map_err(|e| fix("read", &e))?;
            if read.as_ref() != probe_bytes.as_slice() {
                return Err(fix("read back", &"the object differs from what was put"));
            }
            store.delete(&path).await.map_err(|e| fix("delete", &e))?;
            Ok(format!("rejected records go to s3://{}/{}", target.bucket, target.prefix))
        }
    }
}
