//! The validated plan: what a suite says, in types that cannot hold an
//! invalid value. `suite.rs` builds it from YAML; the runner executes it; the
//! trace header carries the scenario's plan so that `faultline check` can
//! re-judge a saved run without the suite file.

use std::time::Duration;

use faultline_agent::events::RecoveryAction;
use serde::{Deserialize, Serialize};

use crate::duration::serde_text;

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
}

impl ScenarioPlan {
    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.name == name)
    }
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
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            hang_timeout: Duration::from_secs(60),
            hang_recovery_action: RecoveryAction::Bugcheck,
            restart_delay: Duration::from_secs(2),
            service_restart_delay: Duration::from_millis(500),
        }
    }
}

/// The kinds of fault this build knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Freeze the node's service cgroup (a plain user-mode hang).
    Freeze,
}

impl FaultKind {
    /// Every kind, for error messages.
    pub const ALL: &'static [&'static str] = &["freeze"];

    /// Parses a kind name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "freeze" => Some(FaultKind::Freeze),
            _ => None,
        }
    }

    /// Whether this fault hangs the node's service (the watchdog must fire).
    pub fn hangs_service(self) -> bool {
        matches!(self, FaultKind::Freeze)
    }
}

/// One fault on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// What.
    pub kind: FaultKind,
    /// On which node.
    pub node: String,
    /// When, after the timeline starts.
    #[serde(with = "serde_text")]
    pub at: Duration,
    /// For how long.
    #[serde(rename = "for", with = "serde_text")]
    pub duration: Duration,
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
}

impl CheckSpec {
    /// Every check kind, for error messages.
    pub const KINDS: &'static [&'static str] =
        &["detected_within", "recovery_action", "no_detection"];

    /// The stable kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            CheckSpec::DetectedWithin { .. } => "detected_within",
            CheckSpec::RecoveryAction { .. } => "recovery_action",
            CheckSpec::NoDetection { .. } => "no_detection",
        }
    }

    /// The node the check is about, if one.
    pub fn node(&self) -> Option<&str> {
        match self {
            CheckSpec::DetectedWithin { node, .. } | CheckSpec::RecoveryAction { node, .. } => {
                Some(node)
            }
            CheckSpec::NoDetection { node } => node.as_deref(),
        }
    }

    /// A label unique enough for a report line: `detected_within[n1]`.
    pub fn label(&self) -> String {
        match self.node() {
            Some(node) => format!("{}[{node}]", self.kind()),
            None => self.kind().to_string(),
        }
    }
}
