//! The trace: every observation of a run, as timestamped records (JSON lines,
//! CLOCK_MONOTONIC nanoseconds). It is the single source of truth: checks are
//! pure functions of it and every report is a view of it.
//!
//! The first record is the header, which carries the scenario's plan, so a
//! saved trace can be judged again without its suite (`faultline check`).

use std::io::{BufRead, Write};
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
    #[error("{path}:{line}: not a trace record")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
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
}

impl Trace {
    /// Reads a JSON-lines trace.
    pub fn load(path: &Path) -> Result<Trace, TraceError> {
        let p = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| TraceError::Read {
            path: p.clone(),
            source,
        })?;
        let mut records = Vec::new();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|source| TraceError::Read {
                path: p.clone(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let rec = serde_json::from_str(&line).map_err(|source| TraceError::Parse {
                path: p.clone(),
                line: i + 1,
                source,
            })?;
            records.push(rec);
        }
        // Written in arrival order as the run went: order it by time.
        let mut trace = Trace { records };
        trace.sort();
        if trace.header().is_none() {
            return Err(TraceError::NoHeader { path: p });
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
                if node.is_none_or(|n| e.node == n) && kind.is_none_or(|k| e.kind == k) =>
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
