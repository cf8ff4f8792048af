//! Which STATE messages may be echoed: the input is cut into segments at each STATE, and a
//! state goes out once every record of its segment and of all earlier ones is committed
//! (written or rejected), in input order, with that segment's counts: `recordCount` the records
//! written and `rejectedRecordCount` those rejected, so that their sum is the segment's records,
//! as the platform checks.

use crate::protocol::StateMessage;
use std::collections::VecDeque;

#[derive(Debug, Default)]
struct Segment {
    /// The STATE that closes this segment; `None` while records may still join it.
    state: Option<StateMessage>,
    received: u64,
    committed: u64,
    rejected: u64,
}

#[derive(Debug)]
pub struct Ledger {
    segments: VecDeque<Segment>,
    /// Id of `segments[0]`.
    first: u64,
}

impl Default for Ledger {
    fn default() -> Self {
        Self {
            segments: VecDeque::from([Segment::default()]),
            first: 0,
        }
    }
}

impl Ledger {
    /// A record arrived; returns the segment it belongs to.
    pub fn receive(&mut self) -> u64 {
        self.segments
            .back_mut()
            .expect("there is always an open segment")
            .received += 1;
        self.first + self.segments.len() as u64 - 1
    }

    /// A record of `segment` was written (`rejected` false) or rejected.
    pub fn commit(&mut self, segment: u64, rejected: bool) {
        let index = segment
            .checked_sub(self.first)
            .expect("segment already released") as usize;
        let segment = &mut self.segments[index];
        segment.committed += 1;
        segment.rejected += u64::from(rejected);
        debug_assert!(segment.committed <= segment.received);
    }

    /// A STATE arrived: it closes the open segment.
    pub fn receive_state(&mut self, state: StateMessage) {
        self.segments
            .back_mut()
            .expect("there is always an open segment")
            .state = Some(state);
        self.segments.push_back(Segment::default());
    }

    /// States whose records are all committed, in input order, with `destinationStats` set.
    pub fn release(&mut self) -> Vec<StateMessage> {
        let mut ready = Vec::new();
        while let Some(front) = self.segments.front() {
            let complete = front.state.is_some() && front.committed == front.received;
            if !complete {
                break;
            }
            let segment = self.segments.pop_front().expect("front exists");
            self.first += 1;
            let state = segment.state.expect("checked above");
            // The platform adds the two and checks the sum against the source's count.
            let written = segment.received - segment.rejected;
            ready.push(state.with_destination_stats(written, segment.rejected));
        }
        ready
    }

    /// States still held back because some of their records are not committed.
    pub fn held_states(&self) -> usize {
        self.segments.iter().filter(|s| s.state.is_some()).count()
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
        let mut ledger = Ledger::default();
        let a = ledger.receive();
        let b = ledger.receive();
        ledger.receive_state(state(1));
        let c = ledger.receive();
        ledger.receive_state(state(2));
        ledger.receive_state(state(3)); // a state with no records before it
        assert!(ledger.release().is_empty());
        ledger.commit(c, true); // a later segment finishing first releases nothing
        assert!(ledger.release().is_empty());
        ledger.commit(a, false);
        assert!(ledger.release().is_empty());
        ledger.commit(b, true);
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
        let mut ledger = Ledger::default();
        let a = ledger.receive();
        ledger.commit(a, false);
        assert!(ledger.release().is_empty());
    }
}
