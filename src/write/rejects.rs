//! Where rejected records go: a JSON-lines file of the stream, the line number, the original
//! record, the reason, the HTTP status and the time, or nowhere (then the sync must fail).

use super::prepare::{Original, Rejection};
use crate::error::ConfigError;
use serde::Serialize;
use serde_json::value::RawValue;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use time::format_description::well_known::Rfc3339;

pub struct RejectStore {
    file: Option<(PathBuf, BufWriter<File>)>,
    /// Written since the last flush: only then does a state need to wait for the disk.
    unsynced: bool,
}

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
    reason: &'a str,
    http_status: Option<u16>,
    rejected_at: String,
}

impl RejectStore {
    /// Opens (appending) the file now, so a bad path fails the sync before anything is written.
    pub fn open(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self {
                file: None,
                unsynced: false,
            });
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                ConfigError::new(format!(
                    "rejected_records.path: cannot create the folder {}: {e}",
                    parent.display()
                ))
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| {
                ConfigError::new(format!(
                    "rejected_records.path: cannot open {} for writing: {e}",
                    path.display()
                ))
            })?;
        Ok(Self {
            file: Some((path.to_owned(), BufWriter::new(file))),
            unsynced: false,
        })
    }

    pub fn keeps_records(&self) -> bool {
        self.file.is_some()
    }

    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|(p, _)| p.as_path())
    }

    pub fn store(&mut self, entry: &Rejection) -> io::Result<()> {
        let Some((_, file)) = &mut self.file else {
            return Ok(());
        };
        let record = match &entry.original {
            // Checked JSON when it was read; a failure here would be a bug, and the text is kept.
            Original::Record(raw) => match serde_json::from_str::<&RawValue>(raw) {
                Ok(raw) => StoredRecord::Record(raw),
                Err(_) => StoredRecord::Line(raw),
            },
            Original::Line(text) => StoredRecord::Line(text),
        };
        let stored = StoredRejection {
            stream: entry.stream.as_deref(),
            line: entry.line,
            record,
            reason: &entry.reason,
            http_status: entry.http_status,
            rejected_at: time::OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .unwrap_or_default(),
        };
        serde_json::to_writer(&mut *file, &stored)?;
        self.unsynced = true;
        file.write_all(b"\n")
    }

    /// Called before any STATE goes out: a state promises its rejected records are on disk.
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some((_, file)) if self.unsynced => {
                file.flush()?;
                file.get_ref().sync_data()?;
                self.unsynced = false;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
