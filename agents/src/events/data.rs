//! What each kind of event carries: one typed payload per kind, declared
//! once in the table below, which also yields [`EventKind`] (the stable
//! snake_case names suites and checks match on) and the mapping between the
//! two. Writers build a payload struct; readers match on [`EventData`]. No
//! payload field is ever looked up by a string key.
//!
//! This module holds data only: no I/O, no decisions.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::RecoveryAction;

/// Declares [`EventKind`], [`EventData`] and their mapping from one table of
/// `Kind(Payload)` rows, so the two cannot drift apart.
macro_rules! event_table {
    ($($(#[$doc:meta])* $kind:ident($payload:ident),)*) => {
        /// What happened: the stable name of an event's kind. The modelled
        /// event id, where the seeds give one, is in
        /// [`EventKind::modelled_id`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum EventKind {
            $($(#[$doc])* $kind,)*
        }

        /// An event's kind-specific fields, tagged with its kind: serialized
        /// as `"kind": "<name>", "data": {...}`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", content = "data", rename_all = "snake_case")]
        pub enum EventData {
            $($(#[$doc])* $kind($payload),)*
        }

        impl EventData {
            /// The kind this payload belongs to.
            pub fn kind(&self) -> EventKind {
                match self {
                    $(EventData::$kind(_) => EventKind::$kind,)*
                }
            }
        }

        impl EventKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [EventKind] = &[$(EventKind::$kind,)*];

            /// A payload of this kind with every field at its default (for
            /// tests and fixtures).
            pub fn default_data(self) -> EventData {
                match self {
                    $(EventKind::$kind => EventData::$kind($payload::default()),)*
                }
            }
        }
    };
}

event_table! {
    /// The supervisor started (the node powered on).
    NodeStarted(NodeStarted),
    /// The node came back after a bugcheck (1001).
    NodeRebooted(NodeRebooted),
    /// The service read its configuration database and started.
    ServiceStarted(ServiceStarted),
    /// The service is stopping cleanly; the watchdog disarms.
    ServiceStopping(ServiceStopping),
    /// The supervisor saw the service die without a clean stop (7031).
    ServiceTerminated(ServiceTerminated),
    /// The supervisor restarted the service.
    ServiceRestarted(ServiceRestarted),
    /// The watchdog started and is waiting for the service.
    WatchdogStarted(WatchdogStarted),
    /// The watchdog armed its countdown with the service's settings.
    WatchdogArmed(WatchdogArmed),
    /// The watchdog switched its countdown off (the service stopped).
    WatchdogDisarmed(WatchdogDisarmed),
    /// A heartbeat, as the watchdog received it.
    Heartbeat(Heartbeat),
    /// The countdown expired: 4869 (log), 4870 (terminate) or 0x9E (bugcheck).
    HangDetected(HangDetected),
    /// ClusNet is terminating the hung service (1228, seed 002): logged
    /// after 4870 on action 2.
    ServiceTerminating(ServiceTerminating),
    /// The watchdog wrote the node's dump, after fencing it, from what it
    /// captured at the bugcheck.
    DumpWritten(DumpWritten),
    /// The node was fenced: every process killed, addresses down.
    NodeFenced(NodeFenced),
    /// The service lost communication with a peer on one network (1123).
    PeerLost(PeerLink),
    /// The service (re)established communication with a peer on one
    /// network (1122).
    PeerRegained(PeerLink),
    /// A peer was lost on every network and removed from membership (1135).
    PeerDown(PeerDown),
    /// The nodes that still talk regrouped into a new membership view.
    Regrouped(Regrouped),
    /// This node's side holds a majority of the votes.
    QuorumGained(Quorum),
    /// This node's side lost quorum and stops its resources (1177).
    QuorumLost(Quorum),
    /// This node, on the side holding quorum, sent a poison packet.
    PoisonSent(PoisonSent),
    /// A poison packet arrived: the service stops at once (1118,
    /// "terminated as requested by node N").
    Poisoned(Poisoned),
    /// A datagram on the cluster socket failed authentication or decoding
    /// and was dropped.
    ClusterMessageRejected(ClusterMessageRejected),
    /// This node took a group's shared-disk reservation.
    DiskReserved(DiskReserved),
    /// A write to a group's shared disk failed because another node took
    /// the reservation: 57 (ftdisk, failed to flush), then 50 (ntfs,
    /// delayed write failed).
    DiskWriteFailed(DiskWriteFailed),
    /// The ARP probe for a group's virtual IP was answered: address
    /// conflict (4199).
    IpConflict(IpConflict),
    /// A group came online on this node: disk taken, IP probed, configured
    /// and announced, application serving (1201).
    GroupOnline(GroupOnline),
    /// A group went offline on this node (1203).
    GroupOffline(GroupReason),
    /// Bringing a group online on this node failed (1069).
    GroupOnlineFailed(GroupReason),
    /// Every possible owner failed within the failover window: the group
    /// stays offline, failed (1205).
    GroupFailed(GroupFailed),
    /// A cluster-wide update was applied, in sequence order (the global
    /// update manager).
    GlobalUpdate(GlobalUpdate),
    /// A process stops emitting: its last numbered event, saying how many
    /// of its events never reached the trace socket.
    EmitterStopped(EmitterStopped),
}

impl EventData {
    /// The cluster-log lines the event carries (`LEVEL [COMPONENT] text`),
    /// for the kinds that carry them.
    pub fn cluster_log(&self) -> &[String] {
        match self {
            EventData::Poisoned(p) => &p.cluster_log,
            _ => &[],
        }
    }

    /// The resource group the event is about, for the kinds that have one.
    pub fn group(&self) -> Option<&str> {
        match self {
            EventData::DiskReserved(d) => Some(&d.group),
            EventData::DiskWriteFailed(d) => Some(&d.group),
            EventData::IpConflict(d) => Some(&d.group),
            EventData::GroupOnline(d) => Some(&d.group),
            EventData::GroupOffline(d) | EventData::GroupOnlineFailed(d) => Some(&d.group),
            EventData::GroupFailed(d) => Some(&d.group),
            EventData::NodeStarted(_)
            | EventData::NodeRebooted(_)
            | EventData::ServiceStarted(_)
            | EventData::ServiceStopping(_)
            | EventData::ServiceTerminated(_)
            | EventData::ServiceRestarted(_)
            | EventData::WatchdogStarted(_)
            | EventData::WatchdogArmed(_)
            | EventData::WatchdogDisarmed(_)
            | EventData::Heartbeat(_)
            | EventData::HangDetected(_)
            | EventData::ServiceTerminating(_)
            | EventData::DumpWritten(_)
            | EventData::NodeFenced(_)
            | EventData::PeerLost(_)
            | EventData::PeerRegained(_)
            | EventData::PeerDown(_)
            | EventData::Regrouped(_)
            | EventData::QuorumGained(_)
            | EventData::QuorumLost(_)
            | EventData::PoisonSent(_)
            | EventData::Poisoned(_)
            | EventData::ClusterMessageRejected(_)
            | EventData::GlobalUpdate(_)
            | EventData::EmitterStopped(_) => None,
        }
    }
}

/// Implements `From<payload>` for the payloads that belong to one kind only.
macro_rules! from_payload {
    ($($payload:ident),*) => {
        $(impl From<$payload> for EventData {
            fn from(p: $payload) -> Self {
                EventData::$payload(p)
            }
        })*
    };
}

from_payload!(
    NodeStarted,
    NodeRebooted,
    ServiceStarted,
    ServiceStopping,
    ServiceTerminated,
    ServiceRestarted,
    WatchdogStarted,
    WatchdogArmed,
    WatchdogDisarmed,
    Heartbeat,
    HangDetected,
    ServiceTerminating,
    DumpWritten,
    NodeFenced,
    PeerDown,
    Regrouped,
    PoisonSent,
    Poisoned,
    ClusterMessageRejected,
    DiskReserved,
    DiskWriteFailed,
    IpConflict,
    GroupOnline,
    GroupFailed,
    GlobalUpdate,
    EmitterStopped
);

/// [`EventKind::NodeStarted`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStarted {
    /// The run the node belongs to.
    pub run_id: String,
}

/// [`EventKind::NodeRebooted`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRebooted {
    /// The bugcheck the node rebooted from (0x9E).
    pub bugcheck_code: u32,
    /// Its parameters (service pid, timeout in seconds, 0, 0), as the
    /// marker kept them.
    #[serde(default)]
    pub params: [u64; 4],
    /// Where the dump was written.
    pub dump: String,
}

/// [`EventKind::ServiceStarted`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStarted {
    /// `hang_timeout` read from the configuration database.
    pub hang_timeout_ms: u32,
    /// `hang_recovery_action` read from it.
    pub action: RecoveryAction,
    /// Whether the watchdog's socket was found.
    pub watchdog_connected: bool,
}

/// [`EventKind::ServiceStopping`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStopping {
    /// Heartbeats sent to the watchdog.
    pub heartbeats: u64,
    /// Heartbeats that could not be sent to it.
    pub dropped_heartbeats: u64,
}

/// [`EventKind::ServiceTerminated`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTerminated {
    /// How it ended, in words.
    pub status: String,
    /// The service's pid.
    pub service_pid: u32,
    /// Unexpected terminations so far.
    pub count: u64,
    /// Its exit code, if it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that killed it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
}

/// [`EventKind::ServiceRestarted`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRestarted {
    /// The new service's pid.
    pub service_pid: u32,
    /// Restarts so far.
    pub restarts: u64,
}

/// [`EventKind::WatchdogStarted`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchdogStarted {
    /// The SCHED_FIFO priority asked for (0: normal scheduling).
    pub rt_priority: i32,
    /// Whether it runs SCHED_FIFO, read back from the kernel
    /// (`sched_getscheduler`) after asking.
    #[serde(default)]
    pub sched_fifo: bool,
    /// Whether its memory is locked.
    pub memory_locked: bool,
}

/// [`EventKind::WatchdogArmed`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchdogArmed {
    /// The watched service.
    pub service_pid: u32,
    /// The countdown.
    pub timeout_ms: u32,
    /// What expiry does.
    pub action: RecoveryAction,
}

/// [`EventKind::WatchdogDisarmed`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchdogDisarmed {
    /// Why, e.g. `service stopping`, `service exited`.
    pub reason: String,
    /// The service that was watched.
    pub service_pid: u32,
}

/// [`EventKind::Heartbeat`]. Plain data: the watchdog sends it without
/// allocating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The service's heartbeat number (the protocol's `seq`).
    pub service_seq: u64,
    /// The service that sent it.
    pub service_pid: u32,
    /// Whether it reset the countdown.
    pub counted: bool,
}

/// [`EventKind::HangDetected`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HangDetected {
    /// The action taken.
    pub action: RecoveryAction,
    /// The hung service.
    pub service_pid: u32,
    /// The countdown.
    pub timeout_ms: u32,
    /// The last heartbeat the watchdog counted.
    pub last_heartbeat_t: u64,
    /// When the countdown expired.
    pub deadline_t: u64,
    /// How late the watchdog woke past the deadline.
    pub late_ns: u64,
    /// On a bugcheck: its parameters (service pid, timeout, 0, 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<[u64; 4]>,
    /// On a bugcheck: its code (0x9E).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
}

/// [`EventKind::ServiceTerminating`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTerminating {
    /// The hung service being terminated.
    pub service_pid: u32,
    /// The countdown, in whole seconds rounded up (the text's `%2`).
    pub timeout_s: u64,
}

/// What a bugcheck leaves in the node's state folder for the next boot
/// (`state/bugcheck.marker`): where the dump is and the bugcheck's
/// parameters, so that 1001 can quote them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BugcheckMarker {
    /// The dump's file.
    pub dump: String,
    /// The bugcheck's parameters (service pid, timeout in seconds, 0, 0).
    pub params: [u64; 4],
}

impl BugcheckMarker {
    /// The marker as one JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a marker; an older or damaged one (a bare path) gives that
    /// path and zero parameters.
    pub fn parse(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_else(|_| BugcheckMarker {
            dump: text.trim().to_string(),
            params: [0; 4],
        })
    }
}

/// [`EventKind::DumpWritten`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpWritten {
    /// The dump's file.
    pub path: String,
    /// Why it could not be written, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// [`EventKind::NodeFenced`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFenced {
    /// The links taken down.
    pub links: Vec<String>,
    /// Links that could not be taken down, and why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub link_errors: BTreeMap<String, String>,
}

/// [`EventKind::PeerLost`] and [`EventKind::PeerRegained`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerLink {
    /// The peer's name.
    pub peer: String,
    /// The peer's id.
    pub peer_id: u32,
    /// The network (`public`, `private`).
    pub network: String,
}

/// [`EventKind::PeerDown`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerDown {
    /// The peer's name.
    pub peer: String,
    /// The peer's id.
    pub peer_id: u32,
}

/// [`EventKind::Regrouped`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regrouped {
    /// The view's number on this node.
    pub epoch: u64,
    /// The members' names, this node included.
    pub members: Vec<String>,
}

/// [`EventKind::QuorumGained`] and [`EventKind::QuorumLost`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quorum {
    /// This side's votes.
    pub votes: u32,
    /// All votes.
    pub total: u32,
}

/// [`EventKind::PoisonSent`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoisonSent {
    /// The poisoned node's name.
    pub to: String,
    /// Its id.
    pub to_id: u32,
    /// Why, e.g. `evicted`.
    pub reason: String,
}

/// [`EventKind::Poisoned`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Poisoned {
    /// The sender's name.
    pub from: String,
    /// Its id.
    pub from_id: u32,
    /// The cluster-log lines written as it arrived, `LEVEL [COMPONENT]
    /// text` (seed 004's `INFO [ClMsg] Received poison event.` and
    /// `ERR [RGP] Node 2: REGROUP ERROR: ...`), so a suite can check them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_log: Vec<String>,
}

/// [`EventKind::ClusterMessageRejected`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMessageRejected {
    /// Why it was dropped.
    pub reason: String,
    /// The sender's socket address.
    pub sender: String,
    /// The network it came in on.
    pub network: String,
}

/// [`EventKind::DiskReserved`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskReserved {
    /// The group.
    pub group: String,
    /// The reservation's generation.
    pub generation: u64,
}

/// [`EventKind::DiskWriteFailed`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskWriteFailed {
    /// The group.
    pub group: String,
    /// The generation now on the disk.
    pub generation: u64,
    /// Who holds the disk now.
    pub holder: String,
    /// The generation this node held.
    pub our_generation: u64,
}

/// [`EventKind::IpConflict`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConflict {
    /// The group.
    pub group: String,
    /// Its virtual IP.
    pub ip: Ipv4Addr,
    /// Who answered the probe.
    pub mac: String,
}

impl Default for IpConflict {
    fn default() -> Self {
        IpConflict {
            group: String::new(),
            ip: Ipv4Addr::UNSPECIFIED,
            mac: String::new(),
        }
    }
}

/// [`EventKind::GroupOnline`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupOnline {
    /// The group.
    pub group: String,
    /// Its virtual IP.
    pub ip: Ipv4Addr,
}

impl Default for GroupOnline {
    fn default() -> Self {
        GroupOnline {
            group: String::new(),
            ip: Ipv4Addr::UNSPECIFIED,
        }
    }
}

/// [`EventKind::GroupOffline`] and [`EventKind::GroupOnlineFailed`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupReason {
    /// The group.
    pub group: String,
    /// Why.
    pub reason: String,
}

/// [`EventKind::GroupFailed`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupFailed {
    /// The group.
    pub group: String,
    /// The nodes it failed on.
    pub failed_on: Vec<String>,
}

/// [`EventKind::GlobalUpdate`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalUpdate {
    /// The update's sequence number.
    pub seq: u64,
    /// The key (`*` for a snapshot).
    pub key: String,
    /// The value.
    pub value: String,
    /// The issuing node's name.
    pub issuer: String,
}

/// [`EventKind::EmitterStopped`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmitterStopped {
    /// Events this process numbered, this one included.
    pub numbered: u64,
    /// Of those, how many never reached the trace socket (this one is
    /// counted if it does not either, but cannot say so).
    pub dropped: u64,
}
