//! The validated plan: what a suite says, in types that cannot hold an
//! invalid value. `suite.rs` builds it from YAML; the runner executes it; the
//! trace header carries the scenario's plan so that `faultline check` can
//! re-judge a saved run without the suite file.

use std::net::Ipv4Addr;
use std::time::Duration;

use faultline_agent::events::{EventKind, RecoveryAction};
use serde::{Deserialize, Serialize};

use crate::duration::serde_text;
pub use crate::topology::Network;

/// The name a unit enum variant has in suites, traces and reports
/// (its serde name, e.g. `link_down`, `ip_conflict`).
pub fn snake_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// One suite file, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuitePlan {
    /// The suite's name.
    pub name: String,
    /// Where it was read from.
    pub path: String,
    /// Its scenarios, in file order.
    pub scenarios: Vec<ScenarioPlan>,
}

/// One scenario: nodes, a timeline of faults, checks, expectations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioPlan {
    /// Unique within its suite.
    pub name: String,
    /// The nodes, in the order the suite names them.
    pub nodes: Vec<NodePlan>,
    /// Faults, ordered by `at`.
    pub faults: Vec<FaultPlan>,
    /// What must hold.
    pub checks: Vec<CheckSpec>,
    /// Check kinds that must fail: a known-bad configuration pinned down.
    #[serde(default)]
    pub expect_fail: Vec<String>,
    /// How long the timeline runs after every node is up.
    #[serde(with = "serde_text")]
    pub duration: Duration,
    /// Resource groups, in the order the suite names them.
    #[serde(default)]
    pub groups: Vec<GroupPlan>,
    /// Whether the cluster has a witness (one more vote).
    #[serde(default)]
    pub witness: bool,
    /// A group whose every owner failed within this window stays failed.
    #[serde(default = "default_failover_window", with = "serde_text")]
    pub failover_window: Duration,
}

fn default_failover_window() -> Duration {
    Duration::from_secs(60)
}

impl ScenarioPlan {
    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The group called `name`.
    pub fn group(&self, name: &str) -> Option<&GroupPlan> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Whether the nodes form a cluster (membership between them), rather
    /// than one node running alone.
    pub fn is_cluster(&self) -> bool {
        forms_cluster(self.nodes.len(), !self.groups.is_empty(), self.witness)
    }
}

/// Whether nodes form a cluster: more than one, or any group or witness.
/// One rule for the validator (before a plan exists) and the plan.
pub fn forms_cluster(nodes: usize, has_groups: bool, witness: bool) -> bool {
    nodes > 1 || has_groups || witness
}

/// A resource group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupPlan {
    /// Its name.
    pub name: String,
    /// Its virtual IP on the public network.
    pub ip: Ipv4Addr,
    /// The IP's prefix length.
    pub prefix_len: u8,
    /// Preferred owners, in order.
    pub owners: Vec<String>,
    /// Whether it has a shared disk.
    pub disk: bool,
}

/// A node and its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodePlan {
    /// Short name: lowercase letters and digits, at most 10 characters (it
    /// becomes part of interface and namespace names).
    pub name: String,
    /// Its cluster settings.
    pub settings: NodeSettings,
}

/// A node's cluster settings (the configuration database).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSettings {
    /// ClusSvcHangTimeout: the watchdog's countdown.
    #[serde(with = "serde_text")]
    pub hang_timeout: Duration,
    /// HangRecoveryAction.
    pub hang_recovery_action: RecoveryAction,
    /// After a bugcheck, how long the node stays down before it restarts.
    #[serde(with = "serde_text")]
    pub restart_delay: Duration,
    /// After the service dies, how long the supervisor waits to restart it.
    #[serde(with = "serde_text")]
    pub service_restart_delay: Duration,
    /// Interval of node-to-node heartbeats.
    #[serde(default = "default_node_heartbeat", with = "serde_text")]
    pub node_heartbeat: Duration,
    /// Heartbeats missed on every network before a peer is down.
    #[serde(default = "default_missed")]
    pub missed_heartbeats: u32,
    /// Whether the agent probes a virtual IP (RFC 5227) before claiming it.
    #[serde(default = "default_true")]
    pub arp_probe: bool,
    /// RFC 5227 timers of the agent's probe and announcements.
    #[serde(default)]
    pub arp: ArpTimers,
    /// How the watchdog is scheduled.
    #[serde(default)]
    pub watchdog_priority: WatchdogPriority,
}

/// How a node's watchdog is scheduled: `fifo` (SCHED_FIFO above every
/// load the harness makes, memory locked: ClusNet's design) or `normal`
/// (SCHED_OTHER, to measure what the real-time priority buys).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchdogPriority {
    /// SCHED_FIFO.
    #[default]
    Fifo,
    /// SCHED_OTHER at nice 0.
    Normal,
}

impl WatchdogPriority {
    /// Every value, as the suite writes it.
    pub const NAMES: &'static [&'static str] = &["fifo", "normal"];

    /// The value called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "fifo" => Some(WatchdogPriority::Fifo),
            "normal" => Some(WatchdogPriority::Normal),
            _ => None,
        }
    }
}

/// The agent's RFC 5227 timers, far shorter by default than the RFC's
/// (3 probes 1-2 s apart, 2 s wait) so a failover takes a fraction of a
/// second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArpTimers {
    /// Probes sent.
    pub probes: u32,
    /// Between probes.
    #[serde(with = "serde_text")]
    pub probe_interval: Duration,
    /// Waiting for an answer after the last probe.
    #[serde(with = "serde_text")]
    pub probe_wait: Duration,
    /// Gratuitous announcements once the address is configured.
    pub announcements: u32,
    /// Between announcements.
    #[serde(with = "serde_text")]
    pub announce_interval: Duration,
}

impl Default for ArpTimers {
    fn default() -> Self {
        ArpTimers {
            probes: 3,
            probe_interval: Duration::from_millis(50),
            probe_wait: Duration::from_millis(100),
            announcements: 2,
            announce_interval: Duration::from_millis(50),
        }
    }
}

fn default_node_heartbeat() -> Duration {
    Duration::from_millis(1200)
}

fn default_missed() -> u32 {
    6
}

fn default_true() -> bool {
    true
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            hang_timeout: Duration::from_secs(60),
            hang_recovery_action: RecoveryAction::Bugcheck,
            restart_delay: Duration::from_secs(2),
            // Seed 002: "services are normally restarted after 60 seconds /
            // 1 minute"; suites that want it shorter say so.
            service_restart_delay: Duration::from_secs(60),
            node_heartbeat: default_node_heartbeat(),
            missed_heartbeats: default_missed(),
            arp_probe: true,
            arp: ArpTimers::default(),
            watchdog_priority: WatchdogPriority::Fifo,
        }
    }
}

/// The kinds of fault this build knows: the names of the fault table
/// ([`crate::suite::faults::FAULTS`]), where each kind's keys, parameters
/// and construction are defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Freeze the node's service cgroup (a plain user-mode hang).
    Freeze,
    /// Take a node's link to one network's bridge down (its switch port):
    /// the node is cut off from that network, both ways.
    LinkDown,
    /// An intruder on the public network sends the node poison packets with
    /// a key that is not the cluster's: they must be rejected.
    ForgedPoison,
    /// Sides of the network stop hearing each other (both ways, or the
    /// first side's frames never reach the second): nftables on the switch.
    Partition,
    /// A share of the frames of a node's links (or of every link) is lost
    /// at random: nftables on the switch.
    Loss,
    /// Frames leaving a node's interfaces are delayed: tc netem in its
    /// namespace, or where the kernel lacks netem iptables NFQUEUE rules
    /// there and a helper holding each packet.
    Delay,
    /// An on-access scanner holds opens of the node's state folder (seed
    /// 000): fanotify permission events answered late.
    Scanner,
    /// A process holds an exclusive lock on the node's database.
    Lock,
    /// The node's service is killed (SIGKILL).
    Crash,
    /// The node's service is stopped cleanly (SIGTERM): not restarted.
    Stop,
    /// Starve the node's service of CPU (`mode`: quota, rt_hog, weight).
    Cpu,
    /// A leak in the node's memory cgroup up to a limit (`policy`:
    /// oom_kill, hang).
    Memory,
}

/// What a `scanner` stalls besides the opens it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScannerScope {
    /// Only the processes whose opens it holds.
    Operation,
    /// Every process of the node, watchdog included (the seed's filter
    /// driver spinning in the kernel).
    Node,
}

/// How the cpu fault starves the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CpuStarveMode {
    /// A CFS quota on the service's cgroup, spent by workers inside it.
    Quota,
    /// SCHED_FIFO spinners on every CPU in the workload cgroup.
    RtHog,
    /// High-weight workers against a low-weight service cgroup.
    Weight,
}

/// What the memory fault's limit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeakPolicy {
    /// The OOM killer kills a process of the group.
    OomKill,
    /// Allocating tasks stall.
    Hang,
}

/// Which of the node's cgroups leaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeakTarget {
    /// The workload cgroup (the service is untouched unless it shares).
    Workload,
    /// The service's own cgroup.
    Service,
}

/// A fault kind with its parameters: what a fault does, apart from where
/// and when. Each variant's parameters belong to that kind only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultSpec {
    /// See [`FaultKind::Freeze`].
    Freeze,
    /// See [`FaultKind::LinkDown`].
    LinkDown {
        /// The networks cut.
        networks: Vec<Network>,
    },
    /// See [`FaultKind::ForgedPoison`].
    ForgedPoison,
    /// See [`FaultKind::Partition`].
    Partition {
        /// The sides the suite names; the nodes it does not name form one
        /// more side, with the client.
        sides: Vec<Vec<String>>,
        /// The networks cut.
        networks: Vec<Network>,
        /// Only the first side's frames towards the second are dropped.
        one_way: bool,
    },
    /// See [`FaultKind::Loss`].
    Loss {
        /// One node's links (`FaultPlan.node`), or every link when false.
        every_node: bool,
        /// The lossy networks.
        networks: Vec<Network>,
        /// The share of frames dropped, 1-100.
        percent: u32,
    },
    /// See [`FaultKind::Delay`].
    Delay {
        /// The networks whose interfaces are slowed.
        networks: Vec<Network>,
        /// The added delay.
        #[serde(with = "serde_text")]
        delay: Duration,
    },
    /// See [`FaultKind::Scanner`].
    Scanner {
        /// How long each open is held.
        #[serde(with = "serde_text")]
        hold: Duration,
        /// Paths marked, relative to the node's folder.
        paths: Vec<String>,
        /// Paths whose opens pass at once, relative to the node's folder.
        #[serde(default)]
        exclude: Vec<String>,
        /// What stalls while it holds.
        scope: ScannerScope,
    },
    /// See [`FaultKind::Lock`].
    Lock {
        /// The kind of lock held.
        lock: faultline_faults::lock::LockKind,
    },
    /// See [`FaultKind::Crash`].
    Crash,
    /// See [`FaultKind::Stop`].
    Stop,
    /// See [`FaultKind::Cpu`].
    Cpu {
        /// The mechanism.
        mode: CpuStarveMode,
        /// `quota`: CPU time allowed per period.
        #[serde(with = "serde_text")]
        quota: Duration,
        /// `quota`: the CFS period.
        #[serde(with = "serde_text")]
        period: Duration,
        /// `quota`, `weight`: busy workers.
        workers: u32,
    },
    /// See [`FaultKind::Memory`].
    Memory {
        /// Bytes leaked per step.
        step: u64,
        /// Time between steps.
        #[serde(with = "serde_text")]
        every: Duration,
        /// The group's limit, bytes.
        limit: u64,
        /// What the limit does.
        policy: LeakPolicy,
        /// Which group leaks.
        target: LeakTarget,
    },
}

impl FaultSpec {
    /// Its kind.
    pub fn kind(&self) -> FaultKind {
        match self {
            FaultSpec::Freeze => FaultKind::Freeze,
            FaultSpec::LinkDown { .. } => FaultKind::LinkDown,
            FaultSpec::ForgedPoison => FaultKind::ForgedPoison,
            FaultSpec::Partition { .. } => FaultKind::Partition,
            FaultSpec::Loss { .. } => FaultKind::Loss,
            FaultSpec::Delay { .. } => FaultKind::Delay,
            FaultSpec::Scanner { .. } => FaultKind::Scanner,
            FaultSpec::Lock { .. } => FaultKind::Lock,
            FaultSpec::Crash => FaultKind::Crash,
            FaultSpec::Stop => FaultKind::Stop,
            FaultSpec::Cpu { .. } => FaultKind::Cpu,
            FaultSpec::Memory { .. } => FaultKind::Memory,
        }
    }
}

/// One fault on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// On which node.
    pub node: String,
    /// When, after the timeline starts.
    #[serde(with = "serde_text")]
    pub at: Duration,
    /// For how long.
    #[serde(rename = "for", with = "serde_text")]
    pub duration: Duration,
    /// What, with the kind's parameters.
    #[serde(flatten)]
    pub spec: FaultSpec,
}

impl FaultPlan {
    /// Its kind.
    pub fn kind(&self) -> FaultKind {
        self.spec.kind()
    }

    /// When it heals, after the timeline starts.
    pub fn end(&self) -> Duration {
        self.at.saturating_add(self.duration)
    }
}

/// A group's expected state at the end of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupState {
    /// Online on exactly one node.
    Online,
    /// Every owner failed: offline, failed.
    Failed,
    /// Offline, not failed.
    Offline,
}

/// One check, with its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckSpec {
    /// The watchdog fired in `[last heartbeat before onset + hang_timeout,
    /// that + slack]`.
    DetectedWithin {
        /// The hung node.
        node: String,
        /// Allowed lateness past the deadline.
        #[serde(with = "serde_text")]
        slack: Duration,
    },
    /// The configured (or named) recovery action happened, with its events.
    RecoveryAction {
        /// The hung node.
        node: String,
        /// The action expected; the node's setting when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        action: Option<RecoveryAction>,
    },
    /// Nothing fired: no hang was detected on the node (or on any node).
    NoDetection {
        /// One node, or every node when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    /// Every start of the node's (or every node's) watchdog ran
    /// SCHED_FIFO, as it read back from the kernel.
    WatchdogRealtime {
        /// One node, or every node when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    /// After the first fault's onset, the group came online on exactly one
    /// node other than the faulted one within `within`.
    FailoverWithin {
        /// The group.
        group: String,
        /// The deadline after the onset.
        #[serde(with = "serde_text")]
        within: Duration,
    },
    /// Never two hardware addresses answering ARP for the group's IP within
    /// `window`, and never two namespaces holding it at once.
    NoIpConflict {
        /// The group.
        group: String,
        /// How close two different answers must be to count as a conflict.
        #[serde(with = "serde_text")]
        window: Duration,
    },
    /// The group's state at the end of the timeline (and where, if `node`).
    GroupState {
        /// The group.
        group: String,
        /// Its expected state.
        state: GroupState,
        /// Where it must be online.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    /// The longest time the client went unanswered is at most `max`.
    ClientDowntime {
        /// The group.
        group: String,
        /// The longest acceptable gap.
        #[serde(with = "serde_text")]
        max: Duration,
    },
    /// Event kinds that must, and must not, appear (on one node or any).
    Events {
        /// One node, or every node when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
        /// Kinds that must appear.
        #[serde(default)]
        must: Vec<EventKind>,
        /// Kinds that must not appear.
        #[serde(default)]
        must_not: Vec<EventKind>,
    },
    /// Which nodes kept quorum through the timeline and which lost it.
    Quorum {
        /// Nodes that gained quorum and never lost it.
        #[serde(default)]
        held: Vec<String>,
        /// Nodes that lost quorum at least once.
        #[serde(default)]
        lost: Vec<String>,
    },
    /// Every start of the node's service is followed by its
    /// `service_started` within `within` (a start held before the watchdog
    /// is armed, seed 000, is seen here).
    ServiceReady {
        /// The node.
        node: String,
        /// The longest acceptable time from a start to ready.
        #[serde(with = "serde_text")]
        within: Duration,
    },
    /// An event of `node` with modelled id `id` reads as the seeds quote
    /// it: its text matches `text` (`*` stands for any run of characters),
    /// and its event-log source and type are these when given.
    EventText {
        /// The node.
        node: String,
        /// The modelled event id (4870, 1228, 1001, 158 for 0x9E, ...).
        id: u32,
        /// The text, with `*` for values that vary (pids).
        text: String,
        /// The event-log source (`ClusNet`, `BugCheck`, ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
        /// The event-log type (`Information`, `Warning`, `Error`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        log_type: Option<String>,
        /// A cluster-log line the event carries (`LEVEL [COMPONENT] text`,
        /// `*` as in `text`), e.g. seed 004's `ERR [RGP] ...`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<String>,
    },
    /// Event kinds that appear on `node` in this order (others may come
    /// between them).
    EventSequence {
        /// The node.
        node: String,
        /// The kinds, in order.
        kinds: Vec<EventKind>,
    },
}

impl CheckSpec {
    /// The group the check is about, if one.
    pub fn group(&self) -> Option<&str> {
        match self {
            CheckSpec::FailoverWithin { group, .. }
            | CheckSpec::NoIpConflict { group, .. }
            | CheckSpec::GroupState { group, .. }
            | CheckSpec::ClientDowntime { group, .. } => Some(group),
            CheckSpec::DetectedWithin { .. }
            | CheckSpec::RecoveryAction { .. }
            | CheckSpec::NoDetection { .. }
            | CheckSpec::WatchdogRealtime { .. }
            | CheckSpec::Events { .. }
            | CheckSpec::Quorum { .. }
            | CheckSpec::ServiceReady { .. }
            | CheckSpec::EventText { .. }
            | CheckSpec::EventSequence { .. } => None,
        }
    }

    /// The node the check is about, if one.
    pub fn node(&self) -> Option<&str> {
        match self {
            CheckSpec::DetectedWithin { node, .. }
            | CheckSpec::RecoveryAction { node, .. }
            | CheckSpec::ServiceReady { node, .. } => Some(node),
            CheckSpec::NoDetection { node }
            | CheckSpec::WatchdogRealtime { node }
            | CheckSpec::Events { node, .. } => node.as_deref(),
            CheckSpec::GroupState { node, .. } => node.as_deref(),
            CheckSpec::EventText { node, .. } | CheckSpec::EventSequence { node, .. } => Some(node),
            CheckSpec::FailoverWithin { .. }
            | CheckSpec::NoIpConflict { .. }
            | CheckSpec::ClientDowntime { .. }
            | CheckSpec::Quorum { .. } => None,
        }
    }
}
