//! Lazy start: nothing is asked of the API until the first record arrives. An empty sync (an
//! incremental one with nothing new, the most common kind) echoes its states and ends without
//! a request, even with the API down.

use super::plan::Plan;
use super::prepare::Prepared;
use super::{Sink, Summary, Verdict, Writer};
use crate::catalog::{Object, WriteMode};
use crate::config::PipelineSettings;
use crate::error::{Fatal, TransientError};
use crate::output::Emitter;
use crate::protocol::{LogLevel, MessageType};
use std::future::Future;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Lines read ahead while waiting for the first record, at most: a source sending this much
/// state before any record gets its destination connected anyway, so memory stays bounded.
const MAX_LOOKAHEAD: usize = 4 << 20;

/// What connecting to a destination gives a sync: its writer, the plan with what the account
/// adds (custom fields), its notices, and what to log before the first write.
pub struct Connected<W: Writer> {
    pub writer: W,
    pub plan: Plan<W::Object>,
    pub notices: mpsc::UnboundedReceiver<String>,
    pub logs: Vec<(LogLevel, String)>,
}

/// Runs a sync as [`super::run`] does, calling `connect` only when a line that may be a record
/// arrives (a RECORD, or a line that is not a message at all, which is rejected into the
/// rejects store). Lines before it (states, logs) are held and handed to the pipeline after.
/// Without one, the sync runs over a writer that is never called.
pub async fn run_when_needed<W, C, F>(
    settings: impl Into<PipelineSettings>,
    plan: Plan<W::Object>,
    connect: C,
    input: impl Read + Send + 'static,
    mut shutdown: mpsc::UnboundedReceiver<&'static str>,
    out: &mut Emitter,
) -> anyhow::Result<Summary>
where
    W: Writer,
    C: FnOnce() -> F,
    F: Future<Output = anyhow::Result<Connected<W>>>,
{
    let (ahead_tx, ahead) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("lookahead".into())
        .spawn(move || {
            let _ = ahead_tx.send(look_ahead(input));
        })?;
    let stopped = |signal: &str, when: &str| {
        TransientError(format!(
            "{signal} received {when}, before any record was sent; nothing was written"
        ))
    };
    // The reader may wait on a silent source: a signal meanwhile stops at once.
    let ahead = tokio::select! {
        ahead = ahead => ahead?,
        Some(signal) = shutdown.recv() => {
            return Err(stopped(signal, "while waiting for the first record").into())
        }
    };
    let records_follow = ahead.records_follow;
    let input = io::Cursor::new(ahead.held).chain(ahead.rest);
    if !records_follow {
        let (_, notices) = mpsc::unbounded_channel();
        let sink = Sink {
            writer: Arc::new(NothingToWrite::<W::Object>(std::marker::PhantomData)),
            notices,
            shutdown,
        };
        return super::run(settings, plan, sink, input, out).await;
    }
    // A cancel while connecting (each probe may be slow) stops at once: nothing was sent yet,
    // and the states held so far are taken again from the last one echoed before.
    let connected = tokio::select! {
        connected = connect() => connected?,
        Some(signal) = shutdown.recv() => {
            return Err(stopped(signal, "while connecting").into())
        }
    };
    for (level, message) in connected.logs {
        out.log(level, message)?;
    }
    let sink = Sink {
        writer: Arc::new(connected.writer),
        notices: connected.notices,
        shutdown,
    };
    super::run(settings, connected.plan, sink, input, out).await
}

/// The input up to and including the first line that may be a record, and the rest of it.
struct LookAhead<R> {
    held: Vec<u8>,
    rest: Remainder<R>,
    records_follow: bool,
}

/// The unread input; a read error met while looking ahead is handed on once, where the
/// pipeline reads it, so what came before is still checkpointed.
enum Remainder<R> {
    Input(BufReader<R>),
    Failed(Option<io::Error>),
}

impl<R: Read> Read for Remainder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Input(input) => input.read(buf),
            Self::Failed(error) => error.take().map_or(Ok(0), Err),
        }
    }
}

fn look_ahead<R: Read>(input: R) -> LookAhead<R> {
    let mut input = BufReader::with_capacity(1 << 16, input);
    let mut held = Vec::new();
    loop {
        let start = held.len();
        match input.read_until(b'\n', &mut held) {
            Ok(0) => {
                return LookAhead {
                    held,
                    rest: Remainder::Input(input),
                    records_follow: false,
                }
            }
            Ok(_) if may_be_a_record(&held[start..]) || held.len() > MAX_LOOKAHEAD => {
                return LookAhead {
                    held,
                    rest: Remainder::Input(input),
                    records_follow: true,
                }
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return LookAhead {
                    held,
                    rest: Remainder::Failed(Some(e)),
                    records_follow: false,
                }
            }
        }
    }
}

/// False only for a blank line and a message that is surely not a record: a STATE (even a
/// broken one, which is only logged), LOG, TRACE or CONTROL.
fn may_be_a_record(line: &[u8]) -> bool {
    if line.iter().all(u8::is_ascii_whitespace) {
        return false;
    }
    let Ok(text) = std::str::from_utf8(line) else {
        return true;
    };
    let text = text.trim_start_matches('\u{feff}');
    !matches!(
        super::prepare::declared_type(text),
        Some(MessageType::State | MessageType::Log | MessageType::Trace | MessageType::Control)
    )
}

/// The writer of a sync with no record: the pipeline only echoes states, so it is never called.
struct NothingToWrite<O>(std::marker::PhantomData<O>);

impl<O: Object> Writer for NothingToWrite<O> {
    type Object = O;

    fn batch_limit(&self, _: O, _: WriteMode) -> usize {
        1
    }

    async fn write(&self, _: O, _: WriteMode, _: &[Prepared]) -> Result<Vec<Verdict>, Fatal> {
        Err(Fatal::config("a sync without records wrote a record"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_states_and_the_like_are_read_past() {
        for line in [
            "\n",
            "  \r\n",
            r#"{"type":"STATE","state":{"type":"LEGACY","data":{}}}"#,
            r#"{"type":"STATE","state":[]}"#,
            "\u{feff}{\"type\":\"LOG\",\"log\":{\"level\":\"INFO\",\"message\":\"m\"}}",
        ] {
            assert!(!may_be_a_record(line.as_bytes()), "{line}");
        }
        for line in [
            r#"{"type":"RECORD","record":{}}"#,
            "not json",
            r#"{"type":"SOMETHING"}"#,
            "\u{ff}",
        ] {
            assert!(may_be_a_record(line.as_bytes()), "{line}");
        }
    }

    #[test]
    fn the_first_record_line_ends_the_look_ahead_and_nothing_is_lost() {
        let input = "{\"type\":\"STATE\",\"state\":{}}\n{\"type\":\"RECORD\"}\nrest\n";
        let mut ahead = look_ahead(input.as_bytes());
        assert!(ahead.records_follow);
        let mut all = String::from_utf8(ahead.held).unwrap();
        ahead.rest.read_to_string(&mut all).unwrap();
        assert_eq!(all, input);
        assert!(!look_ahead("{\"type\":\"STATE\",\"state\":{}}".as_bytes()).records_follow);
    }
}
