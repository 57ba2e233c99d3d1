//! What the harness hands a node's agents: the launch description
//! (`agent.json` in the node's folder: paths, cgroups, sockets) and the
//! configuration database (`state/clusdb` in the node's state folder: the
//! cluster settings, read by the service only when it starts).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::events::RecoveryAction;

/// File name of the launch description inside a node's folder.
pub const LAUNCH_FILE: &str = "agent.json";
/// File name of the configuration database inside the state folder.
pub const CLUSDB_FILE: &str = "clusdb";

/// Everything a node's agents need to know about where they run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeLaunch {
    /// The run's id.
    pub run_id: String,
    /// The node's name.
    pub node: String,
    /// The node's folder: `events.jsonl`, `cluster.log`, `dumps/`.
    pub node_dir: PathBuf,
    /// The node's state folder, holding the configuration database.
    pub state_dir: PathBuf,
    /// The harness's unix datagram socket that collects the trace.
    pub trace_socket: PathBuf,
    /// The node's cgroups.
    pub cgroups: NodeCgroups,
    /// Interfaces in the node's namespace that fencing takes down.
    pub links: Vec<String>,
    /// Real-time priority of the watchdog (SCHED_FIFO); 0 runs it at normal
    /// priority.
    pub watchdog_rt_priority: i32,
}

/// The node's cgroups, as paths the agents write to themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeCgroups {
    /// `cgroup.procs` files of the service cgroup, one per hierarchy: a
    /// process joins by writing `0` to each.
    pub service_procs: Vec<PathBuf>,
    /// `cgroup.procs` files of the watchdog cgroup.
    pub watchdog_procs: Vec<PathBuf>,
    /// The node's cgroup folder in every hierarchy: the processes of the node
    /// are the union of the `cgroup.procs` below these.
    pub node_dirs: Vec<PathBuf>,
    /// The node-level `cgroup.kill`, where the host has one.
    pub kill_file: Option<PathBuf>,
    /// A folder holding `cpu.pressure`, `memory.pressure`, `io.pressure` for
    /// the node, where the host has per-cgroup pressure.
    pub pressure_dir: Option<PathBuf>,
}

impl NodeLaunch {
    /// Reads `agent.json` from a node folder.
    pub fn load(node_dir: &Path) -> Result<Self, LoadError> {
        load_json(&node_dir.join(LAUNCH_FILE))
    }

    /// The configuration database's path.
    pub fn clusdb_path(&self) -> PathBuf {
        self.state_dir.join(CLUSDB_FILE)
    }
}

/// The cluster settings of a node, as the configuration database holds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterDb {
    /// ClusSvcHangTimeout, in milliseconds.
    pub hang_timeout_ms: u32,
    /// HangRecoveryAction.
    pub hang_recovery_action: RecoveryAction,
    /// How long the supervisor waits before restarting a dead service.
    pub service_restart_delay_ms: u64,
}

impl ClusterDb {
    /// Reads and parses the database.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        load_json(path)
    }
}

/// Reading a launch file or the configuration database failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not what it should be.
    #[error("cannot parse {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

fn load_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, LoadError> {
    let text = std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| LoadError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusdb_round_trips_and_names_the_file_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = ClusterDb {
            hang_timeout_ms: 1000,
            hang_recovery_action: RecoveryAction::Bugcheck,
            service_restart_delay_ms: 500,
        };
        let path = dir.path().join(CLUSDB_FILE);
        std::fs::write(&path, serde_json::to_vec(&db).unwrap()).unwrap();
        assert_eq!(ClusterDb::load(&path).unwrap(), db);
        std::fs::write(&path, b"{\"hang_timeout_ms\": 1, \"bogus\": 2}").unwrap();
        let err = ClusterDb::load(&path).unwrap_err();
        assert!(err.to_string().contains("clusdb"), "{err}");
    }
}
