//! What the harness hands a node's agents: the launch description
//! (`agent.json` in the node's folder: paths, cgroups, sockets) and the
//! configuration database (`state/clusdb` in the node's state folder: the
//! cluster settings, read by the service only when it starts).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::events::RecoveryAction;

/// File name of the launch description inside a node's folder.
pub const LAUNCH_FILE: &str = "agent.json";
/// File name of the configuration database inside the state folder.
pub const CLUSDB_FILE: &str = "clusdb";
/// The node's "hardware" folder, beside `state/`: what the harness reads
/// as the machine itself (the bugcheck marker, standing in for the stop
/// code a real machine shows and its crash-dump settings). It is not part
/// of the node's file system as the service sees it, so an on-access
/// scanner or a lock on `state/` never touches it: a bugchecking kernel
/// does not open files through a filter driver.
pub const HW_DIR: &str = "hw";
/// File name of the marker a bugcheck leaves in the hardware folder.
pub const BUGCHECK_MARKER: &str = "bugcheck.marker";

/// Where a node's bugcheck marker is, from the node's folder: what the
/// watchdog writes, the supervisor reads at boot and the harness reads when
/// the node's supervisor exits.
pub fn bugcheck_marker_path(node_dir: &Path) -> PathBuf {
    node_dir.join(HW_DIR).join(BUGCHECK_MARKER)
}

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
    /// A node outside any lab: no cgroups, no links to fence, a watchdog at
    /// normal priority. For running the agents on their own (tests).
    pub fn bare(
        run_id: &str,
        node: &str,
        node_dir: &Path,
        state_dir: &Path,
        trace_socket: &Path,
    ) -> Self {
        NodeLaunch {
            run_id: run_id.to_string(),
            node: node.to_string(),
            node_dir: node_dir.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            trace_socket: trace_socket.to_path_buf(),
            cgroups: NodeCgroups {
                service_procs: vec![],
                watchdog_procs: vec![],
                node_dirs: vec![],
                kill_file: None,
                pressure_dir: None,
            },
            links: vec![],
            watchdog_rt_priority: 0,
        }
    }

    /// Reads `agent.json` from a node folder.
    pub fn load(node_dir: &Path) -> Result<Self, LoadError> {
        load_json(&node_dir.join(LAUNCH_FILE))
    }

    /// The configuration database's path.
    pub fn clusdb_path(&self) -> PathBuf {
        self.state_dir.join(CLUSDB_FILE)
    }

    /// The bugcheck marker's path ([`bugcheck_marker_path`]).
    pub fn bugcheck_marker_path(&self) -> PathBuf {
        bugcheck_marker_path(&self.node_dir)
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
    /// Membership, quorum and resource groups; absent for a node that
    /// runs alone (hang detection only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterConfig>,
}

/// The cluster a node belongs to, as its configuration database holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's id (its index in `nodes`, from 1).
    pub node_id: u32,
    /// Every node of the cluster, this one included.
    pub nodes: Vec<ClusterNode>,
    /// The witness, if the cluster has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<WitnessConfig>,
    /// The cluster's HMAC key, hex; every cluster message carries a MAC.
    pub key_hex: String,
    /// UDP port of cluster messages on both networks.
    pub port: u16,
    /// Interval of node-to-node heartbeats (1.2 s in the modelled system).
    pub node_heartbeat_ms: u64,
    /// Heartbeats missed on every network before a peer is down (6).
    pub missed_heartbeats: u32,
    /// The resource groups.
    pub groups: Vec<GroupConfig>,
    /// How groups claim their virtual IPs.
    pub arp: ArpSettings,
    /// A group whose every possible owner failed within this window stays
    /// failed.
    pub failover_window_ms: u64,
    /// The folder shared by every node: disk lease files.
    pub shared_dir: PathBuf,
}

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterNode {
    /// Its id, from 1.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Its address on the public network.
    pub public_ip: Ipv4Addr,
    /// Its address on the private network.
    pub private_ip: Ipv4Addr,
    /// Its quorum votes (1).
    pub votes: u32,
}

/// A witness: one more vote, held by one node at a time through an
/// exclusive lock on `lock_file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// The lock file, in the shared folder.
    pub lock_file: PathBuf,
    /// Its votes (1).
    pub votes: u32,
}

/// A resource group: a virtual IP, an application serving clients on it,
/// an optional shared disk, and an ordered list of preferred owners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Its name.
    pub name: String,
    /// The virtual IP, on the public network.
    pub ip: Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// TCP port of the application (it answers with the serving node's name).
    pub app_port: u16,
    /// Preferred owners, by node name, in order.
    pub owners: Vec<String>,
    /// Whether the group has a shared disk (a lease file in the shared
    /// folder, with a generation number).
    pub disk: bool,
}

/// How a group claims its virtual IP (RFC 5227).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArpSettings {
    /// Probe before configuring the IP; off only to reproduce a conflict.
    pub probe: bool,
    /// Probes sent.
    pub probe_num: u32,
    /// Interval between probes, ms.
    pub probe_interval_ms: u64,
    /// Wait for answers after the last probe, ms.
    pub probe_wait_ms: u64,
    /// Gratuitous ARP announcements after configuring.
    pub announce_num: u32,
    /// Interval between announcements, ms.
    pub announce_interval_ms: u64,
}

impl ClusterDb {
    /// Reads and parses the database.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        load_json(path)
    }

    /// Parses the database's bytes, read from `path` by the caller.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, LoadError> {
        serde_json::from_slice(bytes).map_err(|source| LoadError::Parse {
            path: path.to_path_buf(),
            source,
        })
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
            cluster: None,
        };
        let path = dir.path().join(CLUSDB_FILE);
        std::fs::write(&path, serde_json::to_vec(&db).unwrap()).unwrap();
        assert_eq!(ClusterDb::load(&path).unwrap(), db);
        std::fs::write(&path, b"{\"hang_timeout_ms\": 1, \"bogus\": 2}").unwrap();
        let err = ClusterDb::load(&path).unwrap_err();
        assert!(err.to_string().contains("clusdb"), "{err}");
    }

    #[test]
    fn the_bugcheck_marker_is_outside_the_state_folder() {
        // The marker is the machine's, not the node's files: a scanner or a
        // lock on `state/` (seed 000) must not hold the watchdog's write of
        // it, nor the harness's read.
        let l = NodeLaunch::bare(
            "r",
            "n1",
            Path::new("/x/nodes/n1"),
            Path::new("/x/nodes/n1/state"),
            Path::new("/x/sock"),
        );
        let m = l.bugcheck_marker_path();
        assert_eq!(m, Path::new("/x/nodes/n1/hw/bugcheck.marker"));
        assert!(!m.starts_with(&l.state_dir), "{}", m.display());
    }
}
