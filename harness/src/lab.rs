//! The lab: one run's sandbox. A run has a short random id; each node gets a
//! network namespace `fl-<id>-<node>` with veths (`public`, `private`) to two
//! bridges that live in the run's switch namespace `fl-<id>-sw` (the host's
//! network is never touched), a cgroup subtree
//! `faultline/<id>/<node>/{service,watchdog,workload}`, and a folder with its
//! configuration database and logs.
//!
//! Every run registers itself in `/run/faultline/<id>/harness` (pid and start
//! time), so `faultline cleanup` can tell a dead run's leftovers from a live
//! run. Teardown and cleanup share [`remove_run`]: one way to remove a run.

use std::fs;
use std::path::{Path, PathBuf};

use std::net::Ipv4Addr;

use faultline_agent::launch::{
    ArpSettings, ClusterConfig, ClusterDb, ClusterNode, GroupConfig, NodeCgroups, NodeLaunch,
    WitnessConfig, CLUSDB_FILE, LAUNCH_FILE,
};
use faultline_faults::cgroup::{Cgroup, CgroupError, CgroupHost};
use faultline_faults::netns::{NetError, NetNs};

use crate::plan::{Network, NodePlan, NodeSettings, ScenarioPlan};
use crate::suite::{CLIENT_HOST, NODE_HOST_BASE};
use crate::trace::TopologyNode;

/// Where runs register themselves.
pub const RUN_ROOT: &str = "/run/faultline";
/// The cgroup folder every run lives under.
pub const CGROUP_ROOT: &str = "faultline";
/// Prefix of every namespace of ours.
pub const NETNS_PREFIX: &str = "fl-";
/// RT time granted to each node's watchdog cgroup, per second.
const WATCHDOG_RT_US: u64 = 50_000;
/// The watchdog's SCHED_FIFO priority.
pub const WATCHDOG_RT_PRIORITY: i32 = 50;

/// The networks every node is on: interface name, port suffix, prefix,
/// MAC octet.
pub const NETWORKS: [(&str, &str, &str, u8); 2] = [
    ("public", "pub", "10.77.0", 1),
    ("private", "prv", "10.78.0", 2),
];
/// UDP port of cluster messages (the modelled system's).
pub const CLUSTER_PORT: u16 = 3343;
/// TCP port of every group's application.
pub const APP_PORT: u16 = 7777;

/// The address of node `index` (0-based) on a network prefix.
pub fn node_ip(prefix: &str, index: usize) -> Ipv4Addr {
    format!("{prefix}.{}", NODE_HOST_BASE as usize + index)
        .parse()
        .expect("valid node address")
}

/// The MAC of node `index` (0-based) on network number `net` (1 public, 2
/// private): `02:fa:00:00:<net>:<index+1>`, so that a MAC on the wire names
/// its node.
pub fn node_mac(net: u8, index: usize) -> String {
    format!("02:fa:00:00:{net:02x}:{:02x}", index + 1)
}

/// A node's probe settings, as its configuration database holds them.
fn arp_settings(s: &NodeSettings) -> ArpSettings {
    ArpSettings {
        probe: s.arp_probe,
        probe_num: s.arp.probes,
        probe_interval_ms: s.arp.probe_interval.as_millis() as u64,
        probe_wait_ms: s.arp.probe_wait.as_millis() as u64,
        announce_num: s.arp.announcements,
        announce_interval_ms: s.arp.announce_interval.as_millis() as u64,
    }
}

/// The client's MAC on the public network.
pub const CLIENT_MAC: &str = "02:fa:00:00:01:fa";

/// Building or tearing down a lab failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A cgroup operation failed.
    #[error("cgroup setup failed")]
    Cgroup(#[from] CgroupError),
    /// A namespace or link operation failed.
    #[error("network setup failed")]
    Net(#[from] NetError),
    /// A file of the run could not be written.
    #[error("cannot write {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LabError + '_ {
    move |source| LabError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One node of a built lab.
#[derive(Debug)]
pub struct LabNode {
    /// Its name.
    pub name: String,
    /// Its network namespace.
    pub ns: NetNs,
    /// Its folder: `agent.json`, `events.jsonl`, `cluster.log`, `dumps/`, `state/`.
    pub dir: PathBuf,
    /// Its service cgroup (the freeze fault's target).
    pub service: Cgroup,
    /// Its watchdog cgroup (where the supervisor and watchdog run).
    pub watchdog: Cgroup,
    /// Its workload cgroup.
    pub workload: Cgroup,
    /// The node's whole subtree.
    pub node: Cgroup,
}

/// A built sandbox. Dropping it tears it down.
#[derive(Debug)]
pub struct Lab {
    /// The run's id.
    pub id: String,
    /// `/run/faultline/<id>`.
    pub run_dir: PathBuf,
    /// The nodes, in plan order.
    pub nodes: Vec<LabNode>,
    /// The run's switch namespace, holding the bridges.
    pub switch: NetNs,
    /// The client's namespace on the public network, when the scenario has
    /// groups to serve it.
    pub client: Option<NetNs>,
    /// Who is who on the networks.
    pub topology: Vec<TopologyNode>,
    /// The virtual IPs of the scenario's groups.
    pub vips: Vec<Ipv4Addr>,
    host: CgroupHost,
    torn_down: bool,
}

/// The environment variable that makes faultline use one cgroup2 mount as
/// if the host were pure cgroup v2 (e.g. `/sys/fs/cgroup/unified` on a
/// hybrid host), to exercise the v2 path where the host is not v2.
pub const CGROUP_V2_ROOT_ENV: &str = "FAULTLINE_CGROUP_V2_ROOT";

/// The host's cgroups as faultline uses them: detected, or the cgroup2
/// mount named by [`CGROUP_V2_ROOT_ENV`] used as a pure v2 hierarchy.
pub fn host_cgroups() -> Result<CgroupHost, CgroupError> {
    match std::env::var_os(CGROUP_V2_ROOT_ENV) {
        Some(root) => Ok(CgroupHost::with_roots(
            Default::default(),
            Some(PathBuf::from(root)),
        )),
        None => CgroupHost::detect(),
    }
}

/// A fresh run id: six lowercase letters and digits.
pub fn new_run_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut buf = [0u8; 6];
    let mut f = fs::File::open("/dev/urandom").expect("/dev/urandom is readable");
    std::io::Read::read_exact(&mut f, &mut buf).expect("/dev/urandom is readable");
    buf.iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// This process's start time (field 22 of /proc/PID/stat), to tell a live
/// harness from a reused pid.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl Lab {
    /// Builds the sandbox for `scenario`. Node folders go under `work_dir`,
    /// or inside the run's folder (removed with it) when `None`.
    /// On failure, whatever was built is removed before returning.
    pub fn build(
        host: CgroupHost,
        scenario: &ScenarioPlan,
        work_dir: Option<&Path>,
    ) -> Result<Lab, LabError> {
        let id = new_run_id();
        let run_dir = Path::new(RUN_ROOT).join(&id);
        let mut lab = Lab {
            switch: NetNs::open(&format!("{NETNS_PREFIX}{id}-sw")),
            id,
            run_dir,
            nodes: Vec::new(),
            client: None,
            topology: Vec::new(),
            vips: scenario.groups.iter().map(|g| g.ip).collect(),
            host,
            torn_down: false,
        };
        let work_dir = work_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| lab.run_dir.join("work"));
        // On error, `lab` drops here and tears down what exists.
        lab.build_inner(scenario, &work_dir)?;
        Ok(lab)
    }

    fn build_inner(&mut self, scenario: &ScenarioPlan, work_dir: &Path) -> Result<(), LabError> {
        fs::create_dir_all(&self.run_dir).map_err(io_err(&self.run_dir))?;
        let reg = self.run_dir.join("harness");
        let me = std::process::id();
        let registration = format!("{me} {}\n", process_start_time(me).unwrap_or(0));
        fs::write(&reg, registration).map_err(io_err(&reg))?;

        self.switch = NetNs::create(self.switch.name())?;
        for (net, _, _, _) in NETWORKS {
            let br = format!("br-{net}");
            self.switch.ip(&["link", "add", &br, "type", "bridge"])?;
            self.switch.ip(&["link", "set", &br, "up"])?;
        }
        let shared = work_dir.join("shared");
        fs::create_dir_all(&shared).map_err(io_err(&shared))?;
        let cluster = scenario
            .is_cluster()
            .then(|| self.cluster_config(scenario, &shared));
        for (i, node) in scenario.nodes.iter().enumerate() {
            let cluster = cluster.clone().map(|c| ClusterConfig {
                node_id: i as u32 + 1,
                arp: arp_settings(&node.settings),
                node_heartbeat_ms: node.settings.node_heartbeat.as_millis() as u64,
                missed_heartbeats: node.settings.missed_heartbeats,
                ..c
            });
            let lab_node = self.build_node(i, node, work_dir, cluster)?;
            self.nodes.push(lab_node);
        }
        if scenario.is_cluster() {
            let ns = NetNs::create(&format!("{NETNS_PREFIX}{}-cl", self.id))?;
            self.switch.ip(&[
                "link",
                "add",
                "cl-pub",
                "type",
                "veth",
                "peer",
                "name",
                "public",
                "address",
                CLIENT_MAC,
                "netns",
                ns.name(),
            ])?;
            self.switch
                .ip(&["link", "set", "cl-pub", "master", "br-public", "up"])?;
            ns.ip(&[
                "addr",
                "add",
                &format!("10.77.0.{CLIENT_HOST}/24"),
                "dev",
                "public",
            ])?;
            ns.ip(&["link", "set", "public", "up"])?;
            self.client = Some(ns);
        }
        Ok(())
    }

    /// The cluster settings every node shares; per-node fields are filled in
    /// by the caller.
    fn cluster_config(&self, scenario: &ScenarioPlan, shared: &Path) -> ClusterConfig {
        let mut key = [0u8; 32];
        let mut f = fs::File::open("/dev/urandom").expect("/dev/urandom is readable");
        std::io::Read::read_exact(&mut f, &mut key).expect("/dev/urandom is readable");
        ClusterConfig {
            node_id: 0,
            nodes: scenario
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| ClusterNode {
                    id: i as u32 + 1,
                    name: n.name.clone(),
                    public_ip: node_ip(NETWORKS[0].2, i),
                    private_ip: node_ip(NETWORKS[1].2, i),
                    votes: 1,
                })
                .collect(),
            witness: scenario.witness.then(|| WitnessConfig {
                lock_file: shared.join("witness.lock"),
                votes: 1,
            }),
            key_hex: key.iter().map(|b| format!("{b:02x}")).collect(),
            port: CLUSTER_PORT,
            node_heartbeat_ms: 1200,
            missed_heartbeats: 6,
            groups: scenario
                .groups
                .iter()
                .map(|g| GroupConfig {
                    name: g.name.clone(),
                    ip: g.ip,
                    prefix_len: g.prefix_len,
                    app_port: APP_PORT,
                    owners: g.owners.clone(),
                    disk: g.disk,
                })
                .collect(),
            // Per node; filled in by the caller.
            arp: arp_settings(&NodeSettings::default()),
            failover_window_ms: scenario.failover_window.as_millis() as u64,
            shared_dir: shared.to_path_buf(),
        }
    }

    fn build_node(
        &mut self,
        index: usize,
        plan: &NodePlan,
        work_dir: &Path,
        cluster: Option<ClusterConfig>,
    ) -> Result<LabNode, LabError> {
        let name = &plan.name;
        let rel = Path::new(CGROUP_ROOT).join(&self.id).join(name);
        let node = self.host.create(&rel)?;
        let service = self.host.create(&rel.join("service"))?;
        let watchdog = self.host.create(&rel.join("watchdog"))?;
        let workload = self.host.create(&rel.join("workload"))?;
        self.host
            .grant_rt_runtime(&rel.join("watchdog"), WATCHDOG_RT_US)?;

        let ns = NetNs::create(&format!("{NETNS_PREFIX}{}-{name}", self.id))?;
        for (net, short, prefix, octet) in NETWORKS {
            let port = format!("{name}-{short}");
            let mac = node_mac(octet, index);
            self.switch.ip(&[
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                net,
                "address",
                &mac,
                "netns",
                ns.name(),
            ])?;
            self.switch
                .ip(&["link", "set", &port, "master", &format!("br-{net}"), "up"])?;
            ns.ip(&[
                "addr",
                "add",
                &format!("{}/24", node_ip(prefix, index)),
                "dev",
                net,
            ])?;
            ns.ip(&["link", "set", net, "up"])?;
        }
        self.topology.push(TopologyNode {
            name: name.clone(),
            public_ip: node_ip(NETWORKS[0].2, index),
            private_ip: node_ip(NETWORKS[1].2, index),
            public_mac: node_mac(NETWORKS[0].3, index),
            private_mac: node_mac(NETWORKS[1].3, index),
        });

        let dir = work_dir.join("nodes").join(name);
        let state_dir = dir.join("state");
        fs::create_dir_all(&state_dir).map_err(io_err(&state_dir))?;
        let s = &plan.settings;
        let db = ClusterDb {
            hang_timeout_ms: s.hang_timeout.as_millis() as u32,
            hang_recovery_action: s.hang_recovery_action,
            service_restart_delay_ms: s.service_restart_delay.as_millis() as u64,
            cluster,
        };
        let db_path = state_dir.join(CLUSDB_FILE);
        fs::write(
            &db_path,
            serde_json::to_vec_pretty(&db).expect("db serializes"),
        )
        .map_err(io_err(&db_path))?;
        let launch = NodeLaunch {
            run_id: self.id.clone(),
            node: name.clone(),
            node_dir: dir.clone(),
            state_dir,
            trace_socket: self.trace_socket(),
            cgroups: NodeCgroups {
                service_procs: service.procs_files(),
                watchdog_procs: watchdog.procs_files(),
                node_dirs: node.dirs(),
                kill_file: node.kill_file(),
                pressure_dir: node.pressure_dir(),
            },
            links: NETWORKS
                .iter()
                .map(|(net, _, _, _)| net.to_string())
                .collect(),
            watchdog_rt_priority: WATCHDOG_RT_PRIORITY,
        };
        let launch_path = dir.join(LAUNCH_FILE);
        fs::write(
            &launch_path,
            serde_json::to_vec_pretty(&launch).expect("launch serializes"),
        )
        .map_err(io_err(&launch_path))?;
        Ok(LabNode {
            name: name.clone(),
            ns,
            dir,
            service,
            watchdog,
            workload,
            node,
        })
    }

    /// The harness's trace socket for this run.
    pub fn trace_socket(&self) -> PathBuf {
        self.run_dir.join("trace.sock")
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&LabNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Reboots a fenced node's network: a reboot clears what was configured
    /// at run time (virtual IPs), then its links come back up.
    pub fn reboot_network(&self, node: &LabNode) -> Result<(), LabError> {
        for vip in &self.vips {
            // Not configured there is fine: only stale ones are removed.
            let _ = node
                .ns
                .ip(&["addr", "del", &format!("{vip}/24"), "dev", NETWORKS[0].0]);
        }
        for (net, _, _, _) in NETWORKS {
            node.ns.ip(&["link", "set", net, "up"])?;
        }
        Ok(())
    }

    /// The switch port of `node` on `network`, e.g. `n1-pub`.
    pub fn port(node: &str, network: Network) -> String {
        let short = NETWORKS
            .iter()
            .find(|(net, _, _, _)| *net == network.name())
            .map(|(_, short, _, _)| *short)
            .expect("every network has a port suffix");
        format!("{node}-{short}")
    }

    /// Kills every process of the run.
    pub fn kill_all(&self) -> Result<(), LabError> {
        let run = self.host.open(&Path::new(CGROUP_ROOT).join(&self.id));
        Ok(run.kill_all()?)
    }

    /// Removes everything of the run; safe to call twice. Errors are
    /// returned after every step was tried.
    pub fn teardown(&mut self) -> Result<(), Vec<String>> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        let errors = remove_run(&self.host, &self.id);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(errors) = self.teardown() {
            for e in errors {
                eprintln!("faultline: teardown of run {}: {e}", self.id);
            }
        }
    }
}

/// Removes everything of run `id`: its processes (through its cgroup
/// subtree), namespaces, cgroups, and registration. Every step is tried;
/// the failures are returned.
pub fn remove_run(host: &CgroupHost, id: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let rel = Path::new(CGROUP_ROOT).join(id);
    let run = host.open(&rel);
    if let Err(e) = run.kill_all() {
        errors.push(format!(
            "killing processes of faultline/{id}: {}",
            chain(&e)
        ));
    }
    let prefix = format!("{NETNS_PREFIX}{id}-");
    match NetNs::list() {
        Ok(names) => {
            for name in names.iter().filter(|n| n.starts_with(&prefix)) {
                if let Err(e) = NetNs::open(name).delete() {
                    errors.push(format!("deleting namespace {name}: {}", chain(&e)));
                }
            }
        }
        Err(e) => errors.push(format!("listing namespaces: {}", chain(&e))),
    }
    if let Err(e) = run.remove() {
        errors.push(format!("removing cgroup faultline/{id}: {}", chain(&e)));
    }
    let _ = host.remove_if_empty(Path::new(CGROUP_ROOT));
    let dir = Path::new(RUN_ROOT).join(id);
    if dir.exists() {
        if let Err(e) = fs::remove_dir_all(&dir) {
            errors.push(format!("removing {}: {e}", dir.display()));
        }
    }
    let _ = fs::remove_dir(RUN_ROOT);
    errors
}

/// An error with its causes, for a person; it lives in `faultline-sys`.
pub use faultline_sys::error::chain;
