//! The watchdog's memory of its last events, for the dump: heartbeats as
//! small plain records in a fixed ring (remembering one allocates nothing),
//! other events, which are rare, as they were emitted. Records become events
//! only when a dump asks for them.
//!
//! It must not do I/O or decide anything.

use std::collections::VecDeque;

use crate::events::{Event, EventData, Heartbeat, Source};

/// How many of each the dump holds.
pub const RING: usize = 64;

/// One heartbeat as the watchdog saw it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeartbeatRecord {
    /// When it was received (CLOCK_MONOTONIC ns).
    pub t: u64,
    /// The emitter's sequence number of its trace record.
    pub seq: u64,
    /// Its fields.
    pub beat: Heartbeat,
}

/// The last [`RING`] heartbeats and the last [`RING`] other events.
#[derive(Debug)]
pub struct Recent {
    beats: [HeartbeatRecord; RING],
    /// Heartbeats remembered so far; the next goes to `count % RING`.
    count: usize,
    events: VecDeque<Event>,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            beats: [HeartbeatRecord::default(); RING],
            count: 0,
            events: VecDeque::with_capacity(RING),
        }
    }
}

impl Recent {
    /// Remembers a heartbeat: a copy into the ring, nothing allocated.
    pub fn heartbeat(&mut self, r: HeartbeatRecord) {
        self.beats[self.count % RING] = r;
        self.count += 1;
    }

    /// Remembers any other event.
    pub fn event(&mut self, ev: Event) {
        if self.events.len() == RING {
            self.events.pop_front();
        }
        self.events.push_back(ev);
    }

    /// The last [`RING`] events of either sort as events of `node`, oldest
    /// first.
    pub fn events(&self, node: &str, pid: u32) -> Vec<Event> {
        let held = self.count.min(RING);
        let beats = (self.count - held..self.count).map(|i| {
            let r = self.beats[i % RING];
            Event {
                t: r.t,
                node: node.to_string(),
                source: Source::Watchdog,
                data: EventData::Heartbeat(r.beat),
                id: None,
                pid,
                seq: r.seq,
                message: String::new(),
                log_source: None,
                log_type: None,
            }
        });
        let mut all: Vec<Event> = beats.chain(self.events.iter().cloned()).collect();
        all.sort_by_key(|e| (e.t, e.seq));
        let skip = all.len().saturating_sub(RING);
        all.drain(..skip);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::WatchdogArmed;

    fn beat(t: u64) -> HeartbeatRecord {
        HeartbeatRecord {
            t,
            seq: t,
            beat: Heartbeat {
                service_seq: t,
                service_pid: 7,
                counted: true,
            },
        }
    }

    #[test]
    fn the_dump_gets_the_last_events_of_both_sorts_in_time_order() {
        let mut r = Recent::default();
        for t in 1..=200 {
            r.heartbeat(beat(t));
        }
        let mut armed = Event::now("n1", Source::Watchdog, WatchdogArmed::default());
        armed.t = 190;
        r.event(armed.clone());
        let evs = r.events("n1", 9);
        assert_eq!(evs.len(), RING);
        assert_eq!(evs.last().unwrap().t, 200);
        assert_eq!(
            evs[0].t,
            200 - RING as u64 + 2,
            "the armed event took a slot"
        );
        assert!(evs.windows(2).all(|w| w[0].t <= w[1].t));
        assert!(evs.contains(&armed));
        let hb = evs.iter().find(|e| e.t == 199).unwrap();
        assert_eq!((hb.seq, hb.pid, &hb.node[..]), (199, 9, "n1"));
        assert_eq!(hb.data, EventData::Heartbeat(beat(199).beat));
    }

    #[test]
    fn a_young_ring_holds_only_what_it_saw() {
        let mut r = Recent::default();
        r.heartbeat(beat(5));
        r.heartbeat(beat(6));
        let ts: Vec<u64> = r.events("n1", 1).iter().map(|e| e.t).collect();
        assert_eq!(ts, [5, 6]);
    }
}
