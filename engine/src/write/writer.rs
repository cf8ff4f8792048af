//! What the pipeline needs from the API it writes to: take records of one object in one mode
//! and say, per record, what happened. Each destination brings one; a test can bring its own
//! without HTTP.

use super::prepare::Prepared;
use crate::catalog::{Object, WriteMode};
use crate::error::Fatal;
use std::future::Future;

/// What became of one record (in a dry run: what would become of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Written, by a request that does not say whether it created or updated (a bulk insert,
    /// a blind upsert).
    Written,
    /// A new record, with the platform's id when the answer gave one.
    Created { id: Option<String> },
    /// An existing record, sent only these fields, which differed.
    Updated { id: String, fields: Vec<String> },
    /// An existing record that already holds the row's values: no request was sent.
    Unchanged { id: String },
    /// The API refused this record, with its HTTP status (when one said so) and its message.
    Refused {
        status: Option<u16>,
        message: String,
    },
}

impl Verdict {
    /// Whether the platform holds the row now (or, in a dry run, would): every verdict but a
    /// refusal. The counts the platform checks call all of these written.
    pub fn is_written(&self) -> bool {
        !matches!(self, Self::Refused { .. })
    }

    /// The outcome's name in the outcome log and the summaries.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Written => "written",
            Self::Created { .. } => "created",
            Self::Updated { .. } => "updated",
            Self::Unchanged { .. } => "unchanged",
            Self::Refused { .. } => "rejected",
        }
    }

    /// Refused by the connector before any request (or with no status to name).
    pub fn refused(message: impl Into<String>) -> Self {
        Self::Refused {
            status: None,
            message: message.into(),
        }
    }

    /// Refused by the API with `status`.
    pub fn refused_with(status: u16, message: impl Into<String>) -> Self {
        Self::Refused {
            status: Some(status),
            message: message.into(),
        }
    }

    /// An insert the API `refused` because `record` exists already: written when the stored
    /// record holds the row's values (a resumed sync sending again what its killed run
    /// stored), which `notice` is told, else refused naming the fields that differ.
    pub fn for_existing<'a>(
        refused: Verdict,
        record: &str,
        differing: impl IntoIterator<Item = &'a String>,
        notice: impl FnOnce(String),
    ) -> Self {
        let fields: Vec<&str> = differing.into_iter().map(String::as_str).collect();
        match refused {
            _ if fields.is_empty() => {
                notice(format!(
                    "{record} exists already and holds the row's values: counted as written"
                ));
                Self::Written
            }
            Self::Refused { status, message } => Self::Refused {
                status,
                message: format!(
                    "{message}: {record} exists and differs from the row in {}; append only creates, use append_dedup to update it",
                    fields.join(", ")
                ),
            },
            written => written,
        }
    }
}

pub trait Writer: Send + Sync + 'static {
    /// The destination's objects.
    type Object: Object;

    /// How many records one `write` call may take for this object and mode: more than one
    /// when the API writes them in one request; 1 otherwise.
    fn batch_limit(&self, object: Self::Object, mode: WriteMode) -> usize;

    /// How many requests the writer lets out at once now, when it adapts that; for progress logs.
    fn concurrency_limit(&self) -> Option<usize> {
        None
    }

    /// What the writer adds to a progress line (requests spent, time left at its pace), given
    /// the records settled so far (written or rejected) and those read and not yet settled.
    fn progress(&self, _settled: u64, _waiting: u64) -> Option<String> {
        None
    }

    /// Called once before the first write: the rows read ahead and not yet settled, per
    /// object, for a writer that chooses how to find existing records by how many are coming.
    fn attach(&self, _backlog: super::backlog::Backlog) {}

    /// The sync is stopping (a signal): send no new request; those out may finish. A write
    /// whose request was not sent ends with [`Fatal::Stopped`].
    fn stop(&self) {}

    /// Writes `records`, in order. One verdict per record, in the same order; `Err` ends the
    /// sync (the API or the configuration failed, not these records).
    fn write(
        &self,
        object: Self::Object,
        mode: WriteMode,
        records: &[Prepared],
    ) -> impl Future<Output = Result<Vec<Verdict>, Fatal>> + Send;
}
