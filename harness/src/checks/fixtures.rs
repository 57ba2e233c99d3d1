//! Hand-made traces for the checks' unit tests. Times are milliseconds after
//! the timeline's start.

use std::net::Ipv4Addr;
use std::time::Duration;

use faultline_agent::arp::ArpKind;
use faultline_agent::events::{
    hang_event_id, Event, EventData, EventKind, GroupFailed, GroupOnline, GroupReason,
    HangDetected, Heartbeat, RecoveryAction, Source,
};

use crate::plan::{FaultKind, GroupPlan, NodePlan, NodeSettings, ScenarioPlan};
use crate::trace::{
    AddrSeen, ArpSeen, ClientProbe, FaultPhase, FaultRecord, GapRecord, Header, ObserverPhase,
    ObserverRecord, Record, TopologyNode, Trace, TRACE_VERSION,
};

const BASE: u64 = 1_000_000_000_000;

pub(crate) fn at(ms: f64) -> u64 {
    BASE + (ms * 1e6).round() as u64
}

pub(crate) struct TraceBuilder {
    scenario: ScenarioPlan,
    records: Vec<Record>,
    topology: Vec<TopologyNode>,
}

/// The observers a cluster run has (one client per group: `sql`).
const CLUSTER_OBSERVERS: [&str; 3] = ["arp", "addr", "client:sql"];

const SQL_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 100);

/// The fixture MAC of `node` (`n1` -> 02:fa:00:00:01:01).
fn mac(node: &str) -> String {
    let i: u8 = node.trim_start_matches('n').parse().unwrap_or(0);
    format!("02:fa:00:00:01:{i:02x}")
}

impl TraceBuilder {
    pub(crate) fn one_node(timeout_ms: u64, action: RecoveryAction) -> Self {
        TraceBuilder {
            scenario: ScenarioPlan {
                name: "s".into(),
                nodes: vec![NodePlan {
                    name: "n1".into(),
                    settings: NodeSettings {
                        hang_timeout: Duration::from_millis(timeout_ms),
                        hang_recovery_action: action,
                        restart_delay: Duration::from_secs(2),
                        service_restart_delay: Duration::from_millis(500),
                        ..NodeSettings::default()
                    },
                }],
                faults: Vec::new(),
                checks: Vec::new(),
                expect_fail: Vec::new(),
                duration: Duration::from_secs(9),
                groups: Vec::new(),
                witness: false,
                failover_window: Duration::from_secs(60),
            },
            records: vec![Record::Start { t: at(0.0) }],
            topology: Vec::new(),
        }
    }

    /// Nodes with default settings and one group `sql` on 10.77.0.100,
    /// owned in the order given; node i has MAC 02:fa:00:00:01:0i.
    pub(crate) fn cluster(nodes: &[&str]) -> Self {
        let mut b = TraceBuilder::one_node(2000, RecoveryAction::Bugcheck);
        let settings = b.scenario.nodes[0].settings.clone();
        b.scenario.nodes = nodes
            .iter()
            .map(|n| NodePlan {
                name: n.to_string(),
                settings: settings.clone(),
            })
            .collect();
        b.scenario.groups = vec![GroupPlan {
            name: "sql".into(),
            ip: SQL_IP,
            prefix_len: 24,
            owners: nodes.iter().map(|n| n.to_string()).collect(),
            disk: true,
        }];
        b.topology = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| TopologyNode {
                name: n.to_string(),
                public_ip: Ipv4Addr::new(10, 77, 0, 10 + i as u8),
                private_ip: Ipv4Addr::new(10, 78, 0, 10 + i as u8),
                public_mac: mac(n),
                private_mac: format!("02:fa:00:00:02:{:02x}", i + 1),
            })
            .collect();
        for observer in CLUSTER_OBSERVERS {
            b.observer(observer, -50.0, ObserverPhase::Up);
        }
        b
    }

    /// A check the scenario carries (what `judge` runs).
    pub(crate) fn check(&mut self, spec: crate::plan::CheckSpec) -> &mut Self {
        self.scenario.checks.push(spec);
        self
    }

    /// An observer record.
    pub(crate) fn observer(&mut self, name: &str, ms: f64, phase: ObserverPhase) -> &mut Self {
        self.records.push(Record::Observer(ObserverRecord {
            t: at(ms),
            observer: name.into(),
            phase,
            detail: String::new(),
        }));
        self
    }

    /// `observer` stopped observing at `from_ms` and resumed at `to_ms`;
    /// whatever it would have recorded in between is removed.
    pub(crate) fn observer_down(&mut self, name: &str, from_ms: f64, to_ms: f64) -> &mut Self {
        let (from, to) = (at(from_ms), at(to_ms));
        self.records.retain(|r| {
            let seen_by = match r {
                Record::Arp(_) => "arp".to_string(),
                Record::Addr(_) => "addr".to_string(),
                Record::Client(c) => format!("client:{}", c.group),
                _ => return true,
            };
            seen_by != name || r.t() < from || r.t() > to
        });
        self.observer(name, from_ms, ObserverPhase::Down)
            .observer(name, to_ms, ObserverPhase::Up)
    }

    /// No observer records at all, as in a version 1 trace.
    pub(crate) fn without_observer_records(&mut self) -> &mut Self {
        self.records.retain(|r| !matches!(r, Record::Observer(_)));
        self
    }

    /// Removes the record of `node`'s `source` at `ms` and records the gap
    /// the collector would see: between that emitter's previous record and
    /// its next one.
    pub(crate) fn lose(&mut self, node: &str, source: Source, ms: f64) -> &mut Self {
        let lost = at(ms);
        let of_emitter = |r: &Record| match r {
            Record::Event(e) if e.node == node && e.source == source => Some(e.t),
            _ => None,
        };
        let before = self.records.len();
        self.records.retain(|r| of_emitter(r) != Some(lost));
        let missing = (before - self.records.len()) as u64;
        assert!(missing > 0, "no record of {node} {source:?} at {ms} ms");
        let times: Vec<u64> = self.records.iter().filter_map(of_emitter).collect();
        let after = times.iter().copied().filter(|t| *t < lost).max();
        let next = times.iter().copied().filter(|t| *t > lost).min();
        self.records.push(Record::Gap(GapRecord {
            t: next.unwrap_or(lost + 1),
            node: node.into(),
            source,
            pid: 100,
            after: after.unwrap_or(at(0.0)),
            missing,
        }));
        self
    }

    fn group_event(&mut self, node: &str, data: EventData, ms: f64) -> &mut Self {
        let kind = data.kind();
        self.event(node, Source::Service, kind, ms).data = data;
        self
    }

    pub(crate) fn group_online(&mut self, node: &str, ms: f64) -> &mut Self {
        let data = GroupOnline {
            group: "sql".into(),
            ip: Ipv4Addr::new(10, 77, 0, 100),
        };
        self.group_event(node, data.into(), ms)
    }

    pub(crate) fn group_event_offline(&mut self, node: &str, ms: f64) -> &mut Self {
        let data = GroupReason {
            group: "sql".into(),
            reason: String::new(),
        };
        self.group_event(node, EventData::GroupOffline(data), ms)
    }

    pub(crate) fn group_failed(&mut self, node: &str, ms: f64) -> &mut Self {
        let data = GroupFailed {
            group: "sql".into(),
            failed_on: Vec::new(),
        };
        self.group_event(node, data.into(), ms)
    }

    pub(crate) fn service_terminated(&mut self, node: &str, ms: f64) -> &mut Self {
        self.event(node, Source::Supervisor, EventKind::ServiceTerminated, ms);
        self
    }

    pub(crate) fn addr(&mut self, node: &str, ms: f64, held: bool) -> &mut Self {
        self.records.push(Record::Addr(AddrSeen {
            t: at(ms),
            node: node.into(),
            ip: SQL_IP,
            held,
            iface: "public".into(),
        }));
        self
    }

    /// An ARP reply for the group's IP from `node`'s public MAC.
    pub(crate) fn arp_answer(&mut self, ms: f64, node: &str) -> &mut Self {
        self.records.push(Record::Arp(ArpSeen {
            t: at(ms),
            bridge: "br-public".into(),
            op: ArpKind::Reply,
            sender_ip: SQL_IP,
            sender_mac: mac(node).parse().expect("fixture MAC"),
            target_ip: Ipv4Addr::new(10, 77, 0, 250),
        }));
        self
    }

    pub(crate) fn client(&mut self, ms: f64, answered_by: Option<&str>) -> &mut Self {
        self.records.push(Record::Client(ClientProbe {
            t: at(ms),
            done: at(ms + 1.0),
            group: "sql".into(),
            ip: SQL_IP,
            answered_by: answered_by.map(str::to_string),
            error: answered_by
                .is_none()
                .then(|| "connection refused".to_string()),
        }));
        self
    }

    pub(crate) fn settled(&mut self, ms: u64) -> &mut Self {
        self.records.push(Record::Settled { t: at(ms as f64) });
        self
    }

    pub(crate) fn event(
        &mut self,
        node: &str,
        source: Source,
        kind: EventKind,
        ms: f64,
    ) -> &mut Event {
        let mut e = Event::now(node, source, kind.default_data());
        e.t = at(ms);
        e.pid = 100;
        self.records.push(Record::Event(e));
        match self.records.last_mut() {
            Some(Record::Event(e)) => e,
            _ => unreachable!(),
        }
    }

    pub(crate) fn heartbeats(
        &mut self,
        node: &str,
        from_ms: u64,
        to_ms: u64,
        step_ms: u64,
    ) -> &mut Self {
        for (seq, ms) in (from_ms..=to_ms).step_by(step_ms as usize).enumerate() {
            self.event(node, Source::Watchdog, EventKind::Heartbeat, ms as f64)
                .data = EventData::Heartbeat(Heartbeat {
                service_seq: seq as u64,
                service_pid: 100,
                counted: true,
            });
        }
        self
    }

    /// One heartbeat, as the watchdog received it.
    pub(crate) fn heartbeat(&mut self, node: &str, ms: f64) -> &mut Self {
        self.event(node, Source::Watchdog, EventKind::Heartbeat, ms);
        self
    }

    pub(crate) fn armed(&mut self, node: &str, ms: f64) -> &mut Self {
        self.event(node, Source::Watchdog, EventKind::WatchdogArmed, ms);
        self
    }

    pub(crate) fn freeze(&mut self, node: &str, on_ms: u64, off_ms: u64) -> &mut Self {
        self.fault_phase(node, on_ms, FaultPhase::Injected)
            .fault_phase(node, off_ms, FaultPhase::Healed)
    }

    /// One phase of fault 0, a freeze of `node`.
    pub(crate) fn fault_phase(&mut self, node: &str, ms: u64, phase: FaultPhase) -> &mut Self {
        self.records.push(Record::Fault(FaultRecord {
            t: at(ms as f64),
            index: 0,
            kind: FaultKind::Freeze,
            node: node.into(),
            phase,
            requested: at(ms as f64) - 300_000,
            evidence: "cgroup.events: frozen 1".into(),
        }));
        self
    }

    pub(crate) fn hang_detected(
        &mut self,
        node: &str,
        ms: f64,
        action: RecoveryAction,
    ) -> &mut Self {
        let e = self.event(node, Source::Watchdog, EventKind::HangDetected, ms);
        e.id = hang_event_id(action);
        let bugcheck = action == RecoveryAction::Bugcheck;
        e.data = EventData::HangDetected(HangDetected {
            action,
            service_pid: 100,
            timeout_ms: 1000,
            params: bugcheck.then_some([100, 1, 0, 0]),
            code: bugcheck.then_some(faultline_agent::events::BUGCHECK_CODE),
            ..HangDetected::default()
        });
        self
    }

    pub(crate) fn end(&mut self, ms: u64) -> &mut Self {
        self.records.push(Record::End {
            t: at(ms as f64),
            reason: "completed".into(),
        });
        self
    }

    pub(crate) fn build(&mut self) -> Trace {
        let mut records = vec![Record::Header(Header {
            t: at(-1000.0),
            version: TRACE_VERSION,
            run_id: "test".into(),
            suite: "unit".into(),
            scenario: self.scenario.clone(),
            host: "test".into(),
            topology: self.topology.clone(),
        })];
        records.extend(self.records.iter().cloned());
        let mut t = Trace { records };
        t.sort();
        t
    }
}
