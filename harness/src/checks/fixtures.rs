//! Hand-made traces for the checks' unit tests. Times are milliseconds after
//! the timeline's start.

use std::time::Duration;

use faultline_agent::events::{hang_event_id, Event, EventKind, RecoveryAction, Source};

use crate::plan::{FaultKind, NodePlan, NodeSettings, ScenarioPlan};
use crate::trace::{FaultPhase, FaultRecord, Header, Record, Trace, TRACE_VERSION};

const BASE: u64 = 1_000_000_000_000;

pub(crate) fn at(ms: f64) -> u64 {
    BASE + (ms * 1e6).round() as u64
}

pub(crate) struct TraceBuilder {
    scenario: ScenarioPlan,
    records: Vec<Record>,
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
                    },
                }],
                faults: Vec::new(),
                checks: Vec::new(),
                expect_fail: Vec::new(),
                duration: Duration::from_secs(9),
            },
            records: vec![Record::Start { t: at(0.0) }],
        }
    }

    pub(crate) fn event(
        &mut self,
        node: &str,
        source: Source,
        kind: EventKind,
        ms: f64,
    ) -> &mut Event {
        let mut e = Event::now(node, source, kind);
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
                .data
                .insert("seq".into(), seq.into());
        }
        self
    }

    pub(crate) fn armed(&mut self, node: &str, ms: f64) -> &mut Self {
        self.event(node, Source::Watchdog, EventKind::WatchdogArmed, ms);
        self
    }

    pub(crate) fn freeze(&mut self, node: &str, on_ms: u64, off_ms: u64) -> &mut Self {
        for (ms, phase) in [(on_ms, FaultPhase::Injected), (off_ms, FaultPhase::Healed)] {
            self.records.push(Record::Fault(FaultRecord {
                t: at(ms as f64),
                index: 0,
                kind: FaultKind::Freeze,
                node: node.into(),
                phase,
                requested: at(ms as f64) - 300_000,
                evidence: "cgroup.events: frozen 1".into(),
            }));
        }
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
        e.data.insert("service_pid".into(), 100.into());
        e.data.insert("timeout_ms".into(), 1000.into());
        if action == RecoveryAction::Bugcheck {
            e.data
                .insert("params".into(), serde_json::json!([100, 1000, 0, 0]));
        }
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
        })];
        records.extend(self.records.iter().cloned());
        let mut t = Trace { records };
        t.sort();
        t
    }
}
