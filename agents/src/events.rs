//! The event schema: what a node's agents report, one JSON object per event.
//!
//! Each event goes to the node's event log (`events.jsonl`, one line each) and,
//! as a datagram, to the harness's trace socket. Heartbeats as the watchdog
//! saw them go only to the trace socket (the watchdog's hot path does no file
//! I/O). Kind names are stable: checks and reports match on them. Each
//! kind's fields are a typed payload ([`EventData`], in `data.rs`), written
//! and read through the same struct.

use serde::{Deserialize, Serialize};

mod data;
pub mod texts;

pub use data::*;

/// Which process of the node reported an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The per-node service manager.
    Supervisor,
    /// The cluster service (ClusSvc).
    Service,
    /// The health monitor (ClusNet).
    Watchdog,
}

impl EventKind {
    /// The event id of the modelled system, where it has a fixed one.
    /// `HangDetected` depends on the action: see [`hang_event_id`].
    ///
    /// Membership (seed 004, KB 892422): 1123 lost communication with a
    /// peer on a network, 1122 (re)established it, 1135 peer removed from
    /// membership, 1177 quorum lost, 1118 service terminated as requested
    /// by another node (a poison packet).
    ///
    /// Hang detection (seeds 002, 003): 1228 ClusNet terminating the
    /// service, 7031 it terminated unexpectedly, 1001 rebooted from a
    /// bugcheck.
    ///
    /// Resource groups (seed 002): 4199 address conflict (Tcpip), 57 failed
    /// to flush (ftdisk; 50 from ntfs follows), 1201 group online, 1203 group
    /// offline, 1069 resource failed, 1205 group failed.
    pub fn modelled_id(self) -> Option<u32> {
        match self {
            EventKind::NodeRebooted => Some(1001),
            EventKind::ServiceTerminated => Some(7031),
            EventKind::ServiceTerminating => Some(1228),
            EventKind::PeerLost => Some(1123),
            EventKind::PeerRegained => Some(1122),
            EventKind::PeerDown => Some(1135),
            EventKind::QuorumLost => Some(1177),
            EventKind::Poisoned => Some(1118),
            EventKind::IpConflict => Some(4199),
            EventKind::DiskWriteFailed => Some(57),
            EventKind::GroupOnline => Some(1201),
            EventKind::GroupOffline => Some(1203),
            EventKind::GroupOnlineFailed => Some(1069),
            EventKind::GroupFailed => Some(1205),
            // No fixed id: the hang's depends on the action, the rest are
            // the model's own. Listed so a new kind must choose.
            EventKind::NodeStarted
            | EventKind::ServiceStarted
            | EventKind::ServiceStopping
            | EventKind::ServiceRestarted
            | EventKind::WatchdogStarted
            | EventKind::WatchdogArmed
            | EventKind::WatchdogDisarmed
            | EventKind::Heartbeat
            | EventKind::HangDetected
            | EventKind::DumpWritten
            | EventKind::NodeFenced
            | EventKind::Regrouped
            | EventKind::QuorumGained
            | EventKind::PoisonSent
            | EventKind::ClusterMessageRejected
            | EventKind::DiskReserved
            | EventKind::GlobalUpdate
            | EventKind::EmitterStopped => None,
        }
    }
}

/// The bugcheck code of a hang that action 3 turns into a crash of the node.
pub const BUGCHECK_CODE: u32 = 0x9E;

/// The event id logged when the countdown expires with `action`.
pub fn hang_event_id(action: RecoveryAction) -> Option<u32> {
    match action {
        RecoveryAction::Disabled => None,
        RecoveryAction::Log => Some(4869),
        RecoveryAction::Terminate => Some(4870),
        RecoveryAction::Bugcheck => Some(BUGCHECK_CODE),
    }
}

/// `hang_recovery_action`: what the watchdog does when its countdown expires.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryAction {
    /// 0: monitoring disabled; nothing is detected.
    #[default]
    Disabled,
    /// 1: log event 4869, again every `hang_timeout` while the hang lasts.
    Log,
    /// 2: terminate the service (4870); the supervisor restarts it (7031).
    Terminate,
    /// 3: bugcheck the node (0x9E): dump, fence, restart after a delay (1001).
    Bugcheck,
}

impl RecoveryAction {
    /// The snake_case name events carry.
    pub fn name(self) -> &'static str {
        match self {
            RecoveryAction::Disabled => "disabled",
            RecoveryAction::Log => "log",
            RecoveryAction::Terminate => "terminate",
            RecoveryAction::Bugcheck => "bugcheck",
        }
    }

    /// The numeric setting, as the modelled system stores it.
    pub fn code(self) -> u8 {
        match self {
            RecoveryAction::Disabled => 0,
            RecoveryAction::Log => 1,
            RecoveryAction::Terminate => 2,
            RecoveryAction::Bugcheck => 3,
        }
    }

    /// The action for a numeric setting, if it is one of 0-3.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => RecoveryAction::Disabled,
            1 => RecoveryAction::Log,
            2 => RecoveryAction::Terminate,
            3 => RecoveryAction::Bugcheck,
            _ => return None,
        })
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One event, as written to the event log and sent to the trace socket:
/// `{"t":..,"node":..,"source":..,"kind":"<name>","data":{..},..}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// CLOCK_MONOTONIC, nanoseconds.
    pub t: u64,
    /// The node's name.
    pub node: String,
    /// The reporting process.
    pub source: Source,
    /// The kind (a stable name) and its typed fields.
    #[serde(flatten)]
    pub data: EventData,
    /// The modelled event id (4870, 7031, 0x9E = 158, 1001, ...), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    /// The reporting process's pid.
    pub pid: u32,
    /// The emitter's sequence number: 1 for the first event a process
    /// tries to send to the trace socket, +1 for each after it, heartbeats
    /// included, sent or dropped. A jump is a lost record. 0: unnumbered.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seq: u64,
    /// Human text: the event-log description (for a modelled id, the
    /// seeds' wording from [`texts`]); the cluster log shows it too unless
    /// the emitter was given the cluster log's own line.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The event-log source of a modelled id (`ClusNet`, `BugCheck`,
    /// `Service Control Manager`, ...: [`texts::source_of`]), set when the
    /// event is emitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_source: Option<String>,
    /// The event-log type of a modelled id (`Information`, `Warning`,
    /// `Error`), from the level it was emitted at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_type: Option<String>,
}

impl Event {
    /// A new event stamped now, with the kind's modelled id.
    pub fn now(node: &str, source: Source, data: impl Into<EventData>) -> Self {
        let data = data.into();
        Event {
            t: crate::clock::monotonic_ns(),
            node: node.to_string(),
            source,
            id: data.kind().modelled_id(),
            data,
            pid: std::process::id(),
            seq: 0,
            message: String::new(),
            log_source: None,
            log_type: None,
        }
    }

    /// The event's kind, from its payload.
    pub fn kind(&self) -> EventKind {
        self.data.kind()
    }

    /// Sets the human text.
    pub fn message(mut self, text: impl Into<String>) -> Self {
        self.message = text.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_round_trips_as_one_json_line_with_stable_names() {
        let e = Event {
            t: 42,
            node: "n1".into(),
            source: Source::Watchdog,
            data: EventData::WatchdogDisarmed(WatchdogDisarmed {
                reason: "service exited".into(),
                service_pid: 9,
            }),
            id: None,
            pid: 7,
            seq: 3,
            message: String::new(),
            log_source: None,
            log_type: None,
        };
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(
            line,
            r#"{"t":42,"node":"n1","source":"watchdog","kind":"watchdog_disarmed","data":{"reason":"service exited","service_pid":9},"pid":7,"seq":3}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), e);
    }

    #[test]
    fn every_kind_name_is_its_payload_tag_and_round_trips() {
        for &kind in EventKind::ALL {
            let data = kind.default_data();
            assert_eq!(data.kind(), kind);
            let tagged = serde_json::to_value(&data).unwrap();
            assert_eq!(tagged["kind"], serde_json::to_value(kind).unwrap());
            let e = Event::now("n1", Source::Service, data);
            let line = serde_json::to_string(&e).unwrap();
            let back: Event = serde_json::from_str(&line).unwrap();
            assert_eq!(back, e, "{line}");
            assert_eq!(back.kind(), kind);
        }
    }

    #[test]
    fn a_payload_under_the_wrong_kind_is_refused() {
        let line = r#"{"t":1,"node":"n1","source":"watchdog","kind":"heartbeat","data":{"group":"sql","ip":"10.0.0.1"},"pid":7}"#;
        assert!(serde_json::from_str::<Event>(line).is_err());
        let unknown =
            r#"{"t":1,"node":"n1","source":"watchdog","kind":"no_such_kind","data":{},"pid":7}"#;
        assert!(serde_json::from_str::<Event>(unknown).is_err());
    }

    #[test]
    fn the_group_accessor_covers_the_group_kinds() {
        let on = EventData::GroupOnline(GroupOnline {
            group: "sql".into(),
            ip: "10.77.0.100".parse().unwrap(),
        });
        assert_eq!(on.group(), Some("sql"));
        assert_eq!(EventKind::Heartbeat.default_data().group(), None);
    }

    #[test]
    fn recovery_action_codes_are_the_modelled_ones() {
        for code in 0..4 {
            assert_eq!(RecoveryAction::from_code(code).unwrap().code(), code);
        }
        assert_eq!(RecoveryAction::from_code(4), None);
        assert_eq!(hang_event_id(RecoveryAction::Bugcheck), Some(0x9E));
        assert_eq!(hang_event_id(RecoveryAction::Log), Some(4869));
        assert_eq!(hang_event_id(RecoveryAction::Disabled), None);
    }
}
