//! The trace: every observation of a run, as timestamped records (JSON lines,
//! CLOCK_MONOTONIC nanoseconds). It is the single source of truth: checks are
//! pure functions of it and every report is a view of it.
//!
//! The first record is the header, which carries the scenario's plan, so a
//! saved trace can be judged again without its suite (`faultline check`).

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use faultline_agent::events::{Event, EventKind};
use serde::{Deserialize, Serialize};

pub use crate::observe::addr::AddrSeen;
pub use crate::observe::arp::ArpSeen;
pub use crate::observe::client::ClientProbe;
use crate::plan::{FaultKind, NodeSettings, ScenarioPlan};

/// The trace format's version, bumped on incompatible change.
pub const TRACE_VERSION: u32 = 2;

/// One record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// Always first: what ran, where.
    Header(Header),
    /// Time zero of the scenario's timeline (every node is up).
    Start {
        /// When.
        t: u64,
    },
    /// An event a node's agent reported (heartbeats included).
    Event(Event),
    /// A fault changed phase.
    Fault(FaultRecord),
    /// The harness (playing the hardware) powered a node off or on.
    Power {
        /// When.
        t: u64,
        /// Which node.
        node: String,
        /// On or off.
        on: bool,
        /// Why.
        reason: String,
    },
    /// An ARP frame the bridge observer saw (replies, announcements, probes).
    Arp(ArpSeen),
    /// A change in whether a node's namespace holds a virtual IP.
    Addr(AddrSeen),
    /// One attempt of the client on the public network.
    Client(ClientProbe),
    /// Something a person needs to know to read the run (a fault skipped,
    /// a node powered off, a datagram that was not an event): what the
    /// terminal showed live, so `faultline check` tells the same story.
    Note(NoteRecord),
    /// Records of one emitter that never reached the collector: its
    /// sequence numbers jumped. Checks that depend on the span say
    /// `inconclusive`.
    Gap(GapRecord),
    /// An observer outside every node started or stopped observing (it
    /// died, a poll failed, or the run ended). The wire checks judge only
    /// the spans between `up` and the next `down`.
    Observer(ObserverRecord),
    /// The timeline is over: the state of the cluster at this moment is
    /// what `group_state` judges; the nodes are stopped after it.
    Settled {
        /// When.
        t: u64,
    },
    /// The run ended.
    End {
        /// When.
        t: u64,
        /// `completed`, `interrupted`, or an error.
        reason: String,
    },
}

impl Record {
    /// The record's timestamp.
    pub fn t(&self) -> u64 {
        match self {
            Record::Header(h) => h.t,
            Record::Start { t }
            | Record::Settled { t }
            | Record::End { t, .. }
            | Record::Power { t, .. } => *t,
            Record::Arp(a) => a.t,
            Record::Addr(a) => a.t,
            Record::Client(c) => c.t,
            Record::Event(e) => e.t,
            Record::Fault(f) => f.t,
            Record::Note(n) => n.t,
            Record::Gap(g) => g.t,
            Record::Observer(o) => o.t,
        }
    }
}

/// What ran, where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// When the trace began.
    pub t: u64,
    /// [`TRACE_VERSION`].
    pub version: u32,
    /// The run's id.
    pub run_id: String,
    /// The suite's name.
    pub suite: String,
    /// The scenario, as planned.
    pub scenario: ScenarioPlan,
    /// The host: kernel release, cgroup layout.
    pub host: String,
    /// Who is who on the networks: each node's addresses and MACs.
    #[serde(default)]
    pub topology: Vec<TopologyNode>,
}

/// A node's identity on the networks, so that wire records can be mapped
/// back to nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyNode {
    /// The node.
    pub name: String,
    /// Its public address.
    pub public_ip: Ipv4Addr,
    /// Its private address.
    pub private_ip: Ipv4Addr,
    /// Its public interface's MAC.
    pub public_mac: String,
    /// Its private interface's MAC.
    pub private_mac: String,
}

/// A fault's phase change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// When the phase was confirmed (the effect read back).
    pub t: u64,
    /// Index of the fault in the scenario's plan.
    pub index: usize,
    /// Its kind.
    pub kind: FaultKind,
    /// Its node.
    pub node: String,
    /// The phase.
    pub phase: FaultPhase,
    /// When the harness asked for it.
    pub requested: u64,
    /// What was read back to prove it (`cgroup.events: frozen 1`), or the error.
    pub evidence: String,
}

/// A note that explains the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteRecord {
    /// When.
    pub t: u64,
    /// The node it is about, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// What happened, in a sentence.
    pub text: String,
}

/// Missing records of one emitter (one process of one node).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GapRecord {
    /// When the gap was noticed: the time of the first record after it.
    pub t: u64,
    /// The node.
    pub node: String,
    /// The emitting process's role.
    pub source: faultline_agent::events::Source,
    /// The emitting process's pid.
    pub pid: u32,
    /// Time of the last record received before the gap (the lost records
    /// lie between `after` and `t`).
    pub after: u64,
    /// How many records were lost.
    pub missing: u64,
}

/// An observer's change of state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObserverRecord {
    /// When.
    pub t: u64,
    /// Which observer: `arp`, `addr`, `client:<group>`.
    pub observer: String,
    /// Observing from `t` on, or not.
    pub phase: ObserverPhase,
    /// Why (an error), or figures (polls, frames seen).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Whether an observer is observing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObserverPhase {
    /// Observing from `t` on.
    Up,
    /// Not observing from `t` on.
    Down,
}

/// A fault's phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultPhase {
    /// In effect, confirmed at `t` (the onset).
    Injected,
    /// Over, confirmed at `t`.
    Healed,
    /// Could not be injected or healed.
    Failed,
    /// Never injected (its node was powered off, the run ended first, ...):
    /// `evidence` says why.
    Skipped,
}

/// A whole trace, in memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    /// Every record, in the order recorded.
    pub records: Vec<Record>,
}

/// The trace versions this build reads.
pub const READABLE_VERSIONS: &[u32] = &[TRACE_VERSION];

/// Reading a trace failed.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read.
    #[error("cannot read trace {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a record.
    #[error("{path}:{line}:{column}: not a trace record")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column where parsing failed.
        column: usize,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// No header first.
    #[error("{path}: the first record is not a header")]
    NoHeader {
        /// The file.
        path: String,
    },
    /// The header is of a version this build cannot read.
    #[error("{path}:{line}:{column}: trace version {found} is not one this build reads (it reads version {readable})")]
    Version {
        /// The file.
        path: String,
        /// 1-based line of the header.
        line: usize,
        /// 1-based column of its `version` key.
        column: usize,
        /// The version the header states (0 if none).
        found: u32,
        /// [`READABLE_VERSIONS`], as text.
        readable: String,
    },
    /// A header after the first record: several traces in one file.
    #[error("{path}:{line}:1: a second header: this file holds more than one trace (concatenated?); give each trace its own file")]
    SecondHeader {
        /// The file.
        path: String,
        /// 1-based line of the second header.
        line: usize,
    },
}

/// Just enough of a line to tell a header and its version before the
/// record itself is parsed (an older header may not parse as a current one).
#[derive(Deserialize)]
struct Peek {
    #[serde(rename = "type")]
    kind: Option<String>,
    version: Option<u32>,
}

impl Trace {
    /// Reads a JSON-lines trace: one header first, of a version this build
    /// reads ([`READABLE_VERSIONS`]), and no second header; records are
    /// sorted by time. A last line cut
    /// off without its newline (a run killed while writing it) is dropped
    /// and a [`Record::Note`] says so; a bad line anywhere else is an error.
    pub fn load(path: &Path) -> Result<Trace, TraceError> {
        let p = path.display().to_string();
        let read = |source| TraceError::Read {
            path: p.clone(),
            source,
        };
        let text = std::fs::read(path).map_err(read)?;
        let text = String::from_utf8(text)
            .map_err(|e| read(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        let complete = text.ends_with('\n');
        let lines: Vec<&str> = text.lines().collect();
        let mut records = Vec::new();
        let mut torn = None;
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let peek: Option<Peek> = serde_json::from_str(line).ok();
            let is_header = peek
                .as_ref()
                .is_some_and(|pk| pk.kind.as_deref() == Some("header"));
            if is_header && !records.is_empty() {
                return Err(TraceError::SecondHeader {
                    path: p,
                    line: i + 1,
                });
            }
            if is_header {
                let found = peek.as_ref().and_then(|pk| pk.version).unwrap_or(0);
                if !READABLE_VERSIONS.contains(&found) {
                    return Err(TraceError::Version {
                        path: p,
                        line: i + 1,
                        column: line.find("\"version\"").map_or(1, |c| c + 1),
                        found,
                        readable: READABLE_VERSIONS
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
            match serde_json::from_str(line) {
                Ok(rec) => records.push(rec),
                Err(_) if i + 1 == lines.len() && !complete && !records.is_empty() => {
                    torn = Some(i + 1);
                }
                Err(source) => {
                    return Err(TraceError::Parse {
                        path: p,
                        line: i + 1,
                        column: source.column().max(1),
                        source,
                    })
                }
            }
        }
        let mut trace = Trace { records };
        if trace.header().is_none() {
            return Err(TraceError::NoHeader { path: p });
        }
        // A trace written as the run goes holds agents' datagrams slightly
        // out of order with the harness's own records.
        trace.sort();
        if let Some(line) = torn {
            let t = trace.last_t();
            trace.records.push(Record::Note(NoteRecord {
                t,
                node: None,
                text: format!(
                    "{p}:{line}: the last line is cut off (the run stopped while writing it): ignored"
                ),
            }));
        }
        Ok(trace)
    }

    /// Writes every record as a JSON line.
    pub fn write_to(&self, mut w: impl Write) -> std::io::Result<()> {
        for r in &self.records {
            serde_json::to_writer(&mut w, r)?;
            w.write_all(b"\n")?;
        }
        w.flush()
    }

    /// The header, if the first record is one.
    pub fn header(&self) -> Option<&Header> {
        match self.records.first() {
            Some(Record::Header(h)) => Some(h),
            _ => None,
        }
    }

    /// The settings of `node`, from the header.
    pub fn settings(&self, node: &str) -> Option<&NodeSettings> {
        self.header()?.scenario.node(node).map(|n| &n.settings)
    }

    /// Time zero of the timeline.
    pub fn start(&self) -> Option<u64> {
        self.records.iter().find_map(|r| match r {
            Record::Start { t } => Some(*t),
            _ => None,
        })
    }

    /// When the timeline ended (the nodes were still running), else when
    /// the run ended.
    pub fn settled(&self) -> Option<u64> {
        self.records
            .iter()
            .rev()
            .find_map(|r| match r {
                Record::Settled { t } => Some(*t),
                _ => None,
            })
            .or_else(|| self.end())
    }

    /// The node whose interface has `mac`, from the header's topology.
    pub fn node_of_mac(&self, mac: &str) -> Option<&str> {
        self.header()?
            .topology
            .iter()
            .find(|n| {
                n.public_mac.eq_ignore_ascii_case(mac) || n.private_mac.eq_ignore_ascii_case(mac)
            })
            .map(|n| n.name.as_str())
    }

    /// When the run ended.
    pub fn end(&self) -> Option<u64> {
        self.records.iter().rev().find_map(|r| match r {
            Record::End { t, .. } => Some(*t),
            _ => None,
        })
    }

    /// Agent events of `node` (every node when `None`), optionally of one kind.
    pub fn events<'a>(
        &'a self,
        node: Option<&'a str>,
        kind: Option<EventKind>,
    ) -> impl Iterator<Item = &'a Event> + 'a {
        self.records.iter().filter_map(move |r| match r {
            Record::Event(e)
                if node.is_none_or(|n| e.node == n) && kind.is_none_or(|k| e.kind() == k) =>
            {
                Some(e)
            }
            _ => None,
        })
    }

    /// Fault records of `node`.
    pub fn faults<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a FaultRecord> + 'a {
        self.records.iter().filter_map(move |r| match r {
            Record::Fault(f) if f.node == node => Some(f),
            _ => None,
        })
    }

    /// The time of the last record: where a trace without an `end` record
    /// stops knowing anything.
    pub fn last_t(&self) -> u64 {
        self.records.iter().map(Record::t).max().unwrap_or(0)
    }

    /// The lost records of `node`'s emitters of `source`.
    pub fn gaps<'a>(
        &'a self,
        node: &'a str,
        source: faultline_agent::events::Source,
    ) -> impl Iterator<Item = &'a GapRecord> + 'a {
        self.records.iter().filter_map(move |r| match r {
            Record::Gap(g) if g.node == node && g.source == source => Some(g),
            _ => None,
        })
    }

    /// The spans `observer` observed, in time order: from an `up` to the
    /// next `down` (`None`: until the end of the trace). No observer
    /// records at all (a version 1 trace): no span.
    pub fn observed_spans(&self, observer: &str) -> Vec<(u64, Option<u64>)> {
        let mut spans = Vec::new();
        let mut up: Option<u64> = None;
        for r in &self.records {
            if let Record::Observer(o) = r {
                if o.observer != observer {
                    continue;
                }
                match (o.phase, up) {
                    (ObserverPhase::Up, None) => up = Some(o.t),
                    (ObserverPhase::Down, Some(from)) => {
                        spans.push((from, Some(o.t)));
                        up = None;
                    }
                    _ => {}
                }
            }
        }
        if let Some(from) = up {
            spans.push((from, None));
        }
        spans
    }

    /// The parts of `[from, to]` that `observer` did not observe, in time
    /// order.
    pub fn unobserved(&self, observer: &str, from: u64, to: u64) -> Vec<(u64, u64)> {
        let mut holes = Vec::new();
        let mut cursor = from;
        for (up, down) in self.observed_spans(observer) {
            let down = down.unwrap_or(u64::MAX);
            if down <= cursor {
                continue;
            }
            if up > to {
                break;
            }
            if up > cursor {
                holes.push((cursor, up));
            }
            cursor = cursor.max(down);
            if cursor >= to {
                break;
            }
        }
        if cursor < to {
            holes.push((cursor, to));
        }
        holes
    }

    /// Records sorted by time (agents' datagrams may arrive slightly out of
    /// order with the harness's own records).
    pub fn sort(&mut self) {
        if let Some((first, rest)) = self.records.split_first_mut() {
            if matches!(first, Record::Header(_)) {
                rest.sort_by_key(Record::t);
                return;
            }
        }
        self.records.sort_by_key(Record::t);
    }
}

/// Milliseconds between two monotonic timestamps, signed.
pub fn ms_between(from: u64, to: u64) -> f64 {
    (to as f64 - from as f64) / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::TraceBuilder;
    use faultline_agent::events::RecoveryAction;

    /// A small real trace as JSON lines.
    fn lines() -> Vec<String> {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Bugcheck);
        b.heartbeats("n1", 0, 500, 250).end(1000);
        let mut out = Vec::new();
        b.build().write_to(&mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn load(text: &str) -> (Result<Trace, TraceError>, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.jsonl");
        std::fs::write(&path, text).unwrap();
        let r = Trace::load(&path);
        (r, path.display().to_string())
    }

    #[test]
    fn loads_what_it_writes() {
        let text = lines().join("\n") + "\n";
        let (r, _) = load(&text);
        assert_eq!(r.unwrap().records.len(), lines().len());
    }

    #[test]
    fn refuses_another_version_saying_which_it_reads() {
        let mut l = lines();
        l[0] = l[0].replace("\"version\":2", "\"version\":1");
        let (r, path) = load(&(l.join("\n") + "\n"));
        let err = r.unwrap_err();
        let col = l[0].find("\"version\"").unwrap() + 1;
        assert_eq!(
            err.to_string(),
            format!(
                "{path}:1:{col}: trace version 1 is not one this build reads (it reads version 2)"
            )
        );
    }

    #[test]
    fn refuses_concatenated_traces_naming_the_second_header() {
        let l = lines();
        let text = l.join("\n") + "\n" + &l.join("\n") + "\n";
        let (r, path) = load(&text);
        let err = r.unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{path}:{}:1: a second header", l.len() + 1)),
            "{err}"
        );
        // Even when the second one is of an older version.
        let old = l[0].replace("\"version\":2", "\"version\":1");
        let (r, _) = load(&(l.join("\n") + "\n" + &old + "\n"));
        assert!(matches!(r, Err(TraceError::SecondHeader { .. })), "{r:?}");
    }

    #[test]
    fn a_cut_last_line_is_dropped_with_a_note_but_a_bad_line_elsewhere_is_an_error() {
        let l = lines();
        let cut = &l[2][..l[2].len() / 2];
        let (r, path) = load(&(l[..2].join("\n") + "\n" + cut));
        let t = r.unwrap();
        assert_eq!(t.records.len(), 3);
        match t.records.last() {
            Some(Record::Note(n)) => assert!(
                n.text
                    .starts_with(&format!("{path}:3: the last line is cut off")),
                "{}",
                n.text
            ),
            other => panic!("{other:?}"),
        }
        let (r, path) = load(&(l[..2].join("\n") + "\n" + cut + "\n" + &l[3] + "\n"));
        let err = r.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{path}:3:")) && err.ends_with("not a trace record"),
            "{err}"
        );
    }

    #[test]
    fn unobserved_spans_are_the_complement_of_up_down() {
        let mut t = Trace::default();
        for (at, phase) in [
            (10, ObserverPhase::Up),
            (20, ObserverPhase::Down),
            (30, ObserverPhase::Up),
        ] {
            t.records.push(Record::Observer(ObserverRecord {
                t: at,
                observer: "arp".into(),
                phase,
                detail: String::new(),
            }));
        }
        assert_eq!(t.unobserved("arp", 0, 100), vec![(0, 10), (20, 30)]);
        assert_eq!(t.unobserved("arp", 12, 18), vec![]);
        assert_eq!(t.unobserved("arp", 15, 35), vec![(20, 30)]);
        assert_eq!(t.unobserved("addr", 15, 35), vec![(15, 35)]);
    }
}
