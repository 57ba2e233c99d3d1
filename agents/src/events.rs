//! The event schema: what a node's agents report, one JSON object per event.
//!
//! Each event goes to the node's event log (`events.jsonl`, one line each) and,
//! as a datagram, to the harness's trace socket. Heartbeats as the watchdog
//! saw them go only to the trace socket (the watchdog's hot path does no file
//! I/O). Kind names are stable: checks and reports match on them.

use serde::{Deserialize, Serialize};

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

/// What happened. The modelled event id, where the seeds give one, is in
/// [`EventKind::modelled_id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The supervisor started (the node powered on).
    NodeStarted,
    /// The node came back after a bugcheck (1001).
    NodeRebooted,
    /// The service read its configuration database and started.
    ServiceStarted,
    /// The service is stopping cleanly; the watchdog disarms.
    ServiceStopping,
    /// The supervisor saw the service die without a clean stop (7031).
    ServiceTerminated,
    /// The supervisor restarted the service.
    ServiceRestarted,
    /// The watchdog started and is waiting for the service.
    WatchdogStarted,
    /// The watchdog armed its countdown with the service's settings.
    WatchdogArmed,
    /// The watchdog switched its countdown off (the service stopped).
    WatchdogDisarmed,
    /// A heartbeat, as the watchdog received it.
    Heartbeat,
    /// The countdown expired: 4869 (log), 4870 (terminate) or 0x9E (bugcheck).
    HangDetected,
    /// The watchdog wrote the node's dump before fencing it.
    DumpWritten,
    /// The node was fenced: every process killed, addresses down.
    NodeFenced,
    /// The service lost communication with a peer on one network (1123).
    PeerLost,
    /// The service (re)established communication with a peer on one
    /// network (1122).
    PeerRegained,
    /// A peer was lost on every network and removed from membership (1135).
    PeerDown,
    /// The nodes that still talk regrouped into a new membership view.
    Regrouped,
    /// This node's side holds a majority of the votes.
    QuorumGained,
    /// This node's side lost quorum and stops its resources (1177).
    QuorumLost,
    /// This node, on the side holding quorum, sent a poison packet.
    PoisonSent,
    /// A poison packet arrived: the service stops at once (1118,
    /// "terminated as requested by node N").
    Poisoned,
    /// A datagram on the cluster socket failed authentication or decoding
    /// and was dropped.
    ClusterMessageRejected,
    /// This node took a group's shared-disk reservation (data: `group`,
    /// `generation`).
    DiskReserved,
    /// A write to a group's shared disk failed because another node took
    /// the reservation: 57 (ftdisk, failed to flush), then 50 (ntfs,
    /// delayed write failed). Data: `group`, `generation`, `holder`.
    DiskWriteFailed,
    /// The ARP probe for a group's virtual IP was answered: address
    /// conflict (4199). Data: `group`, `ip`, `mac` (who answered).
    IpConflict,
    /// A group came online on this node: disk taken, IP probed, configured
    /// and announced, application serving (1201). Data: `group`, `ip`.
    GroupOnline,
    /// A group went offline on this node (1203). Data: `group`, `reason`.
    GroupOffline,
    /// Bringing a group online on this node failed (1069). Data: `group`,
    /// `reason`.
    GroupOnlineFailed,
    /// Every possible owner failed within the failover window: the group
    /// stays offline, failed (1205). Data: `group`, `failed_on`.
    GroupFailed,
    /// A cluster-wide update was applied, in sequence order (the global
    /// update manager). Data: `seq`, `key`, `value`, `issuer`.
    GlobalUpdate,
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
    /// Resource groups (seed 002): 4199 address conflict (Tcpip), 57 failed
    /// to flush (ftdisk; 50 from ntfs follows), 1201 group online, 1203 group
    /// offline, 1069 resource failed, 1205 group failed.
    pub fn modelled_id(self) -> Option<u32> {
        match self {
            EventKind::NodeRebooted => Some(1001),
            EventKind::ServiceTerminated => Some(7031),
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
            _ => None,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryAction {
    /// 0: monitoring disabled; nothing is detected.
    Disabled,
    /// 1: log event 4869, again every `hang_timeout` while the hang lasts.
    Log,
    /// 2: terminate the service (4870); the supervisor restarts it (7031).
    Terminate,
    /// 3: bugcheck the node (0x9E): dump, fence, restart after a delay (1001).
    Bugcheck,
}

impl RecoveryAction {
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

/// One event, as written to the event log and sent to the trace socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// CLOCK_MONOTONIC, nanoseconds.
    pub t: u64,
    /// The node's name.
    pub node: String,
    /// The reporting process.
    pub source: Source,
    /// Stable kind name.
    pub kind: EventKind,
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
    /// Kind-specific fields: `seq` on heartbeats; `action`, `service_pid`,
    /// `timeout_ms`, `params` on hang_detected; `path` on dump_written; ...
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// Human text, as it also appears in the cluster log.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl Event {
    /// A new event stamped now, with the kind's modelled id.
    pub fn now(node: &str, source: Source, kind: EventKind) -> Self {
        Event {
            t: crate::clock::monotonic_ns(),
            node: node.to_string(),
            source,
            kind,
            id: kind.modelled_id(),
            pid: std::process::id(),
            seq: 0,
            data: serde_json::Map::new(),
            message: String::new(),
        }
    }

    /// Adds a kind-specific field.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.data.insert(key.to_string(), value.into());
        self
    }

    /// Sets the human text.
    pub fn message(mut self, text: impl Into<String>) -> Self {
        self.message = text.into();
        self
    }

    /// Reads a numeric field of `data`.
    pub fn data_u64(&self, key: &str) -> Option<u64> {
        self.data.get(key).and_then(|v| v.as_u64())
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
            kind: EventKind::HangDetected,
            id: hang_event_id(RecoveryAction::Terminate),
            pid: 7,
            seq: 0,
            data: serde_json::Map::new(),
            message: String::new(),
        }
        .with("action", "terminate");
        let line = serde_json::to_string(&e).unwrap();
        assert_eq!(
            line,
            r#"{"t":42,"node":"n1","source":"watchdog","kind":"hang_detected","id":4870,"pid":7,"data":{"action":"terminate"}}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), e);
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
