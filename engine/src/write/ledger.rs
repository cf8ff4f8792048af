//! Which STATE messages may be echoed, and with which counts. The input is cut into segments at
//! each STATE, and a state goes out once every record of its segment and of all earlier ones is
//! committed (written or rejected), in input order. Its counts are those of the window it closes,
//! as the platform checks each state: a STREAM state the records of its own stream since that
//! stream's previous state; a GLOBAL or LEGACY state the records of every stream since the
//! previous one that closed them. `recordCount` is what was written and `rejectedRecordCount`
//! what was rejected, so their sum is the window's records.

use crate::protocol::{StateMessage, StateType};
use std::collections::VecDeque;

/// Records of one stream: received, and of those rejected.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub received: u64,
    pub rejected: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.received += other.received;
        self.rejected += other.rejected;
    }
}

/// The windows a STATE closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Covers {
    /// A STREAM state: its stream's window (a stream id from [`Ledger::stream_id`]).
    Stream(usize),
    /// A GLOBAL or LEGACY state: every stream's.
    All,
}

#[derive(Debug, Default)]
struct Segment {
    /// The STATE that closes this segment and the windows it closes; `None` while records
    /// may still join it.
    state: Option<(StateMessage, Covers)>,
    received: u64,
    committed: u64,
    /// Per stream id, grown as records of a stream arrive.
    streams: Vec<Counts>,
}

impl Segment {
    fn stream(&mut self, id: usize) -> &mut Counts {
        if id >= self.streams.len() {
            self.streams.resize(id + 1, Counts::default());
        }
        &mut self.streams[id]
    }
}

#[derive(Debug)]
pub struct Ledger {
    segments: VecDeque<Segment>,
    /// Id of `segments[0]`.
    first: u64,
    /// Streams of the catalog: ids `0..planned`, the plan's indexes.
    planned: usize,
    /// Streams named by records or states but not in the catalog: ids from `planned + 1`.
    others: Vec<(String, Option<String>)>,
    /// Per stream id, what released segments hold that no state has closed yet.
    open: Vec<Counts>,
}

impl Ledger {
    /// A ledger for a catalog of `planned` streams.
    pub fn new(planned: usize) -> Self {
        Self {
            segments: VecDeque::from([Segment::default()]),
            first: 0,
            planned,
            others: Vec::new(),
            open: Vec::new(),
        }
    }

    /// The id of lines that name no stream (not JSON, not a record): only a GLOBAL or LEGACY
    /// state counts them.
    pub fn unattributed(&self) -> usize {
        self.planned
    }

    /// The id of a stream outside the catalog, the same for every line that names it.
    pub fn stream_id(&mut self, name: &str, namespace: Option<&str>) -> usize {
        let at = self
            .others
            .iter()
            .position(|(n, ns)| n == name && ns.as_deref() == namespace)
            .unwrap_or_else(|| {
                self.others
                    .push((name.to_owned(), namespace.map(str::to_owned)));
                self.others.len() - 1
            });
        self.planned + 1 + at
    }

    /// A record of stream `stream` arrived; returns the segment it belongs to.
    pub fn receive(&mut self, stream: usize) -> u64 {
        let open = self
            .segments
            .back_mut()
            .expect("there is always an open segment");
        open.received += 1;
        open.stream(stream).received += 1;
        self.first + self.segments.len() as u64 - 1
    }

    /// A record of `segment` and `stream` was written (`rejected` false) or rejected.
    pub fn commit(&mut self, segment: u64, stream: usize, rejected: bool) {
        let index = segment
            .checked_sub(self.first)
            .expect("segment already released") as usize;
        let segment = &mut self.segments[index];
        segment.committed += 1;
        if rejected {
            segment.stream(stream).rejected += 1;
        }
        debug_assert!(segment.committed <= segment.received);
    }

    /// A STATE arrived: it closes the open segment, and `covers` says which windows.
    pub fn receive_state(&mut self, state: StateMessage, covers: Covers) {
        self.segments
            .back_mut()
            .expect("there is always an open segment")
            .state = Some((state, covers));
        self.segments.push_back(Segment::default());
    }

    /// States whose records are all committed, in input order, with `destinationStats` set
    /// to the counts of the windows they close.
    pub fn release(&mut self) -> Vec<StateMessage> {
        let mut ready = Vec::new();
        while let Some(front) = self.segments.front() {
            let complete = front.state.is_some() && front.committed == front.received;
            if !complete {
                break;
            }
            let segment = self.segments.pop_front().expect("front exists");
            self.first += 1;
            if segment.streams.len() > self.open.len() {
                self.open.resize(segment.streams.len(), Counts::default());
            }
            for (open, counts) in self.open.iter_mut().zip(&segment.streams) {
                open.add(*counts);
            }
            let (state, covers) = segment.state.expect("checked above");
            let mut window = Counts::default();
            match covers {
                Covers::Stream(id) => {
                    if let Some(open) = self.open.get_mut(id) {
                        window = std::mem::take(open);
                    }
                }
                Covers::All => self.open.drain(..).for_each(|c| window.add(c)),
            }
            // The platform adds the two and checks the sum against the source's count.
            let written = window.received - window.rejected;
            ready.push(state.with_destination_stats(written, window.rejected));
        }
        ready
    }

    /// States still held back because some of their records are not committed.
    pub fn held_states(&self) -> usize {
        self.segments.iter().filter(|s| s.state.is_some()).count()
    }
}

/// The windows `state` closes, given how to find a stream's id from its descriptor.
pub fn covers(state: &StateMessage, stream_id: impl FnOnce(&str, Option<&str>) -> usize) -> Covers {
    match (state.state_type(), state.stream()) {
        (Some(StateType::Stream), Some(stream)) => {
            let descriptor = stream.stream_descriptor;
            Covers::Stream(stream_id(&descriptor.name, descriptor.namespace.as_deref()))
        }
        _ => Covers::All,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::AirbyteMessage;

    fn state(n: u32) -> StateMessage {
        let line = format!(
            r#"{{"type":"STATE","state":{{"type":"LEGACY","data":{{"n":{n}}},"id":{n}}}}}"#
        );
        match AirbyteMessage::from_line(&line).unwrap() {
            AirbyteMessage::State(s) => s,
            _ => unreachable!(),
        }
    }

    #[test]
    fn states_wait_for_their_records_and_keep_order() {
        let mut ledger = Ledger::new(1);
        let a = ledger.receive(0);
        let b = ledger.receive(0);
        ledger.receive_state(state(1), Covers::All);
        let c = ledger.receive(0);
        ledger.receive_state(state(2), Covers::All);
        ledger.receive_state(state(3), Covers::All); // a state with no records before it
        assert!(ledger.release().is_empty());
        ledger.commit(c, 0, true); // a later segment finishing first releases nothing
        assert!(ledger.release().is_empty());
        ledger.commit(a, 0, false);
        assert!(ledger.release().is_empty());
        ledger.commit(b, 0, true);
        let released = ledger.release();
        let ids: Vec<_> = released.iter().map(|s| s.id().unwrap()).collect();
        assert_eq!(ids, vec![1, 2, 3]);
        let stats: Vec<_> = released
            .iter()
            .map(|s| {
                let st = s.destination_stats().unwrap();
                (st.record_count.unwrap(), st.rejected_record_count.unwrap())
            })
            .collect();
        assert_eq!(stats, vec![(1.0, 1.0), (0.0, 1.0), (0.0, 0.0)]);
        assert_eq!(ledger.held_states(), 0);
    }

    #[test]
    fn records_after_the_last_state_invent_no_state() {
        let mut ledger = Ledger::new(1);
        let a = ledger.receive(0);
        ledger.commit(a, 0, false);
        assert!(ledger.release().is_empty());
    }

    #[test]
    fn a_stream_state_counts_its_own_stream_and_a_global_one_every_stream() {
        let mut ledger = Ledger::new(2);
        let other = ledger.stream_id("elsewhere", None);
        let records = [0, 0, 1, other, ledger.unattributed()].map(|s| (ledger.receive(s), s));
        ledger.receive_state(state(1), Covers::Stream(0));
        ledger.receive_state(state(2), Covers::Stream(1));
        let late = ledger.receive(1);
        ledger.receive_state(state(3), Covers::All);
        for (i, (segment, stream)) in records.into_iter().enumerate() {
            ledger.commit(segment, stream, i == 1);
        }
        ledger.commit(late, 1, true);
        let stats: Vec<_> = ledger
            .release()
            .iter()
            .map(|s| {
                let st = s.destination_stats().unwrap();
                (st.record_count.unwrap(), st.rejected_record_count.unwrap())
            })
            .collect();
        // a, a (one rejected); b; then b's late record with the outside and unattributed ones.
        assert_eq!(stats, vec![(1.0, 1.0), (1.0, 0.0), (2.0, 1.0)]);
        assert_eq!(ledger.stream_id("elsewhere", None), other);
        assert_ne!(ledger.stream_id("elsewhere", Some("ns")), other);
    }
}
