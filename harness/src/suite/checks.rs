//! The check vocabulary: one [`CheckDef`] per check kind, and one slice of
//! them, [`CHECKS`], that drives validation (which keys apply, how they are
//! read, defaults) and error messages. Adding a check means: a
//! [`CheckSpec`] variant, an entry here, and its implementation (and its
//! arm in `checks::run_check`); the compiler (exhaustive matches) and the
//! tests below catch whatever is forgotten.
//!
//! Nothing here judges: the implementations live in `checks/`.

use std::time::Duration;

use super::params::Params;
use crate::plan::{CheckSpec, GroupState};

/// The default `slack` of `detected_within`.
pub const DEFAULT_SLACK: Duration = Duration::from_millis(20);
/// The default `window` of `no_ip_conflict`.
pub const DEFAULT_CONFLICT_WINDOW: Duration = Duration::from_secs(1);

/// One check kind: its name, its keys, and how they are read.
pub struct CheckDef {
    /// Its name in suites, traces and reports (`detected_within`).
    pub name: &'static str,
    /// One line for docs and messages.
    pub doc: &'static str,
    /// Its keys, besides `kind`.
    pub keys: &'static [&'static str],
    /// A check of this kind as a suite writes it, in a scenario with nodes
    /// `n1`, `n2` and group `sql`, for tests and docs.
    pub example: &'static str,
    /// Reads the keys into a spec.
    pub parse: fn(&mut Params<'_>) -> Option<CheckSpec>,
}

/// Every check kind this build knows.
pub static CHECKS: &[&CheckDef] = &[
    &DETECTED_WITHIN,
    &RECOVERY_ACTION,
    &NO_DETECTION,
    &WATCHDOG_REALTIME,
    &FAILOVER_WITHIN,
    &NO_IP_CONFLICT,
    &GROUP_STATE,
    &CLIENT_DOWNTIME,
    &EVENTS,
    &QUORUM,
    &SERVICE_READY,
    &EVENT_TEXT,
    &EVENT_SEQUENCE,
];

impl CheckSpec {
    /// This check's table entry.
    pub fn def(&self) -> &'static CheckDef {
        match self {
            CheckSpec::DetectedWithin { .. } => &DETECTED_WITHIN,
            CheckSpec::RecoveryAction { .. } => &RECOVERY_ACTION,
            CheckSpec::NoDetection { .. } => &NO_DETECTION,
            CheckSpec::WatchdogRealtime { .. } => &WATCHDOG_REALTIME,
            CheckSpec::FailoverWithin { .. } => &FAILOVER_WITHIN,
            CheckSpec::NoIpConflict { .. } => &NO_IP_CONFLICT,
            CheckSpec::GroupState { .. } => &GROUP_STATE,
            CheckSpec::ClientDowntime { .. } => &CLIENT_DOWNTIME,
            CheckSpec::Events { .. } => &EVENTS,
            CheckSpec::Quorum { .. } => &QUORUM,
            CheckSpec::ServiceReady { .. } => &SERVICE_READY,
            CheckSpec::EventText { .. } => &EVENT_TEXT,
            CheckSpec::EventSequence { .. } => &EVENT_SEQUENCE,
        }
    }

    /// The stable kind name.
    pub fn kind(&self) -> &'static str {
        self.def().name
    }
}

/// The entry called `name`.
pub fn check_def(name: &str) -> Option<&'static CheckDef> {
    CHECKS.iter().copied().find(|d| d.name == name)
}

static DETECTED_WITHIN: CheckDef = CheckDef {
    name: "detected_within",
    doc: "the watchdog fired within [last heartbeat + hang_timeout, that + slack]",
    keys: &["node", "slack"],
    example: "{ kind: detected_within, node: n1, slack: 30ms }",
    parse: |p| {
        let node = p.node("node");
        let slack = p.duration("slack");
        Some(CheckSpec::DetectedWithin {
            node: p.required("node", node)?,
            slack: slack?.unwrap_or(DEFAULT_SLACK),
        })
    },
};

static RECOVERY_ACTION: CheckDef = CheckDef {
    name: "recovery_action",
    doc: "the configured (or named) recovery action happened, with its events",
    keys: &["node", "action"],
    example: "{ kind: recovery_action, node: n1, action: terminate }",
    parse: |p| {
        let node = p.node("node");
        let action = p.action("action");
        Some(CheckSpec::RecoveryAction {
            node: p.required("node", node)?,
            action: action?,
        })
    },
};

static NO_DETECTION: CheckDef = CheckDef {
    name: "no_detection",
    doc: "no hang was detected on the node (or on any node)",
    keys: &["node"],
    example: "{ kind: no_detection, node: n2 }",
    parse: |p| {
        Some(CheckSpec::NoDetection {
            node: p.node("node")?,
        })
    },
};

static WATCHDOG_REALTIME: CheckDef = CheckDef {
    name: "watchdog_realtime",
    doc: "every start of the node's (or every node's) watchdog ran SCHED_FIFO",
    keys: &["node"],
    example: "{ kind: watchdog_realtime, node: n1 }",
    parse: |p| {
        Some(CheckSpec::WatchdogRealtime {
            node: p.node("node")?,
        })
    },
};

static FAILOVER_WITHIN: CheckDef = CheckDef {
    name: "failover_within",
    doc: "after the first fault's onset, the group came online on exactly one other node",
    keys: &["group", "within"],
    example: "{ kind: failover_within, group: sql, within: 5s }",
    parse: |p| {
        let group = p.group("group");
        let within = p.duration("within");
        let group = p.required("group", group);
        Some(CheckSpec::FailoverWithin {
            group: group?,
            within: p.required("within", within)?,
        })
    },
};

static NO_IP_CONFLICT: CheckDef = CheckDef {
    name: "no_ip_conflict",
    doc: "never two MACs answering ARP for the group's IP within `window`",
    keys: &["group", "window"],
    example: "{ kind: no_ip_conflict, group: sql, window: 2s }",
    parse: |p| {
        let group = p.group("group");
        let window = p.duration("window");
        Some(CheckSpec::NoIpConflict {
            group: p.required("group", group)?,
            window: window?.unwrap_or(DEFAULT_CONFLICT_WINDOW),
        })
    },
};

static GROUP_STATE: CheckDef = CheckDef {
    name: "group_state",
    doc: "the group's state at the end of the timeline (and where)",
    keys: &["group", "state", "node"],
    example: "{ kind: group_state, group: sql, state: online, node: n2 }",
    parse: |p| {
        let group = p.group("group");
        let state = p.choice(
            "state",
            &[
                ("online", GroupState::Online),
                ("failed", GroupState::Failed),
                ("offline", GroupState::Offline),
            ],
        );
        let node = p.node("node");
        let group = p.required("group", group);
        let state = p.required("state", state);
        Some(CheckSpec::GroupState {
            group: group?,
            state: state?,
            node: node?,
        })
    },
};

static CLIENT_DOWNTIME: CheckDef = CheckDef {
    name: "client_downtime",
    doc: "the client's longest gap between answers is at most `max`",
    keys: &["group", "max"],
    example: "{ kind: client_downtime, group: sql, max: 1s }",
    parse: |p| {
        let group = p.group("group");
        let max = p.duration("max");
        let group = p.required("group", group);
        Some(CheckSpec::ClientDowntime {
            group: group?,
            max: p.required("max", max)?,
        })
    },
};

static EVENTS: CheckDef = CheckDef {
    name: "events",
    doc: "event kinds that must, and must not, appear (on one node or any)",
    keys: &["node", "must", "must_not"],
    example: "{ kind: events, node: n1, must: [poisoned], must_not: [ip_conflict] }",
    parse: |p| {
        let node = p.node("node");
        let must = p.event_kinds("must");
        let must_not = p.event_kinds("must_not");
        if !p.has("must") && !p.has("must_not") {
            p.missing("`must` or `must_not`");
            return None;
        }
        Some(CheckSpec::Events {
            node: node?,
            must: must?,
            must_not: must_not?,
        })
    },
};

static QUORUM: CheckDef = CheckDef {
    name: "quorum",
    doc: "which nodes kept quorum through the timeline and which lost it",
    keys: &["held", "lost"],
    example: "{ kind: quorum, held: [n1], lost: [n2] }",
    parse: |p| {
        let held = p.node_list("held");
        let lost = p.node_list("lost");
        if !p.has("held") && !p.has("lost") {
            p.missing("`held` or `lost`");
            return None;
        }
        Some(CheckSpec::Quorum {
            held: held?,
            lost: lost?,
        })
    },
};

static SERVICE_READY: CheckDef = CheckDef {
    name: "service_ready",
    doc: "every start of the node's service is followed by its service_started within `within`",
    keys: &["node", "within"],
    example: "{ kind: service_ready, node: n1, within: 1s }",
    parse: |p| {
        let node = p.node("node");
        let within = p.duration("within");
        let node = p.required("node", node);
        Some(CheckSpec::ServiceReady {
            node: node?,
            within: p.required("within", within)?,
        })
    },
};
static EVENT_TEXT: CheckDef = CheckDef {
    name: "event_text",
    doc: "an event of a node with a modelled id reads as the seeds quote it (`*` matches any run of characters)",
    keys: &["node", "id", "text", "source", "type", "line"],
    example: "{ kind: event_text, node: n1, id: 1118, text: 'Cluster service was terminated as requested by Node *.', source: ClusNet, type: Error, line: 'INFO [ClMsg] Received poison event.' }",
    parse: |p| {
        let node = p.node("node");
        let id = p.count("id", 1, 65535);
        let text = p.string("text");
        let source = p.string("source");
        let line = p.string("line");
        let log_type = p.choice(
            "type",
            &[
                ("Information", "Information"),
                ("Warning", "Warning"),
                ("Error", "Error"),
            ],
        );
        let node = p.required("node", node);
        let id = p.required("id", id);
        let text = p.required("text", text);
        Some(CheckSpec::EventText {
            node: node?,
            id: id?,
            text: text?,
            source: source?,
            log_type: log_type?.map(str::to_string),
            line: line?,
        })
    },
};

static EVENT_SEQUENCE: CheckDef = CheckDef {
    name: "event_sequence",
    doc: "event kinds appear on a node in this order (others may come between)",
    keys: &["node", "kinds"],
    example: "{ kind: event_sequence, node: n2, kinds: [ip_conflict, group_online_failed] }",
    parse: |p| {
        let node = p.node("node");
        let kinds = p.event_kinds("kinds");
        let node = p.required("node", node);
        let kinds = kinds?;
        if kinds.is_empty() {
            p.missing("`kinds`");
            return None;
        }
        Some(CheckSpec::EventSequence { node: node?, kinds })
    },
};
