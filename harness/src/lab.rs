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
use std::sync::atomic::{AtomicBool, Ordering};

use faultline_agent::launch::{
    ArpSettings, ClusterConfig, ClusterDb, ClusterNode, GroupConfig, NodeCgroups, NodeLaunch,
    WitnessConfig, CLUSDB_FILE, LAUNCH_FILE,
};
use faultline_faults::cgroup::{Cgroup, CgroupError, CgroupHost};
use faultline_faults::netns::{lo_up, NetError, NetNs};
use faultline_faults::rtnl::{parse_mac, LinkChange, Request, Rtnl, VethPeer};

use crate::plan::{NodePlan, NodeSettings, ScenarioPlan, WatchdogPriority};
use crate::topology::{self, Network, NodeIndex, APP_PORT, CLUSTER_PORT, NETWORKS, PREFIX_LEN};
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

/// A node's probe settings, as its configuration database holds them.
pub fn arp_settings(s: &NodeSettings) -> ArpSettings {
    ArpSettings {
        probe: s.arp_probe,
        probe_num: s.arp.probes,
        probe_interval_ms: ms(s.arp.probe_interval),
        probe_wait_ms: ms(s.arp.probe_wait),
        announce_num: s.arp.announcements,
        announce_interval_ms: ms(s.arp.announce_interval),
    }
}

/// A node's configuration database. Pure: the numbers are converted
/// without narrowing (validation bounds every duration, see
/// [`crate::plan::MAX_DURATION`]; a value beyond it is a broken invariant).
pub fn node_db(s: &NodeSettings, cluster: Option<ClusterConfig>) -> ClusterDb {
    ClusterDb {
        hang_timeout_ms: u32::try_from(s.hang_timeout.as_millis())
            .expect("validated: hang_timeout fits the agent's u32 milliseconds"),
        hang_recovery_action: s.hang_recovery_action,
        service_restart_delay_ms: ms(s.service_restart_delay),
        cluster,
    }
}

/// Whole milliseconds of a validated duration.
pub fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).expect("validated: durations are bounded")
}

/// Building or tearing down a lab failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A cgroup operation failed.
    #[error("cgroup setup failed")]
    Cgroup(#[from] CgroupError),
    /// A namespace or link operation failed.
    #[error("network setup failed")]
    Net(#[from] NetError),
    /// The plan has more nodes than the topology has addresses for
    /// (validation refuses such plans).
    #[error("{0} nodes, more than the {max} the topology has addresses for", max = topology::MAX_NODES)]
    TooManyNodes(usize),
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
            topology: topology::nodes(scenario.nodes.iter().map(|n| n.name.as_str())),
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

        let (switch, mut sw) = NetNs::create_bare(self.switch.name())?;
        self.switch = switch;
        let mut reqs = vec![lo_up()];
        reqs.extend(
            NETWORKS
                .iter()
                .map(|n| Request::add_bridge(&n.bridge(), true)),
        );
        sw.exec_all(reqs).map_err(|e| self.switch.rtnl_err(e))?;
        let mut bridges = [0u32; NETWORKS.len()];
        for (slot, net) in bridges.iter_mut().zip(NETWORKS) {
            *slot = sw
                .index_of(&net.bridge())
                .map_err(|e| self.switch.rtnl_err(e))?;
        }
        let shared = work_dir.join("shared");
        fs::create_dir_all(&shared).map_err(io_err(&shared))?;
        let cluster = scenario
            .is_cluster()
            .then(|| self.cluster_config(scenario, &shared));
        let mut jobs = Vec::with_capacity(scenario.nodes.len());
        for (i, node) in scenario.nodes.iter().enumerate() {
            let index = NodeIndex::new(i).ok_or(LabError::TooManyNodes(scenario.nodes.len()))?;
            let cluster = cluster.clone().map(|c| ClusterConfig {
                node_id: index.id(),
                arp: arp_settings(&node.settings),
                node_heartbeat_ms: ms(node.settings.node_heartbeat),
                missed_heartbeats: node.settings.missed_heartbeats,
                ..c
            });
            jobs.push((index, node, cluster));
        }
        self.build_nodes(jobs, work_dir, &mut sw, &bridges)?;
        if scenario.is_cluster() {
            let (ns, rtnl) = NetNs::create_bare(&format!("{NETNS_PREFIX}{}-cl", self.id))?;
            self.client = Some(ns.clone());
            let public = Network::Public;
            let mac = parse_mac(topology::CLIENT_MAC).expect("the client's MAC is well formed");
            self.wire(
                &mut sw,
                &bridges,
                &ns,
                rtnl,
                &[(
                    public,
                    topology::CLIENT_PORT.to_string(),
                    mac,
                    topology::client_ip(),
                )],
            )?;
        }
        Ok(())
    }

    /// Builds every node: cgroups, namespace, links and files. Nodes are
    /// independent, so they are built by a few threads, each with its own
    /// netlink socket in the switch namespace (a socket belongs to one
    /// thread's requests at a time); with one thread, on the caller's.
    fn build_nodes(
        &mut self,
        jobs: Vec<(NodeIndex, &NodePlan, Option<ClusterConfig>)>,
        work_dir: &Path,
        sw: &mut Rtnl,
        bridges: &[u32; NETWORKS.len()],
    ) -> Result<(), LabError> {
        let threads = build_threads(jobs.len());
        if threads <= 1 {
            for (index, plan, cluster) in jobs {
                let node = self.build_node(index, plan, work_dir, cluster, sw, bridges)?;
                self.nodes.push(node);
            }
            return Ok(());
        }
        let chunk = jobs.len().div_ceil(threads);
        let mut chunks: Vec<Vec<_>> = Vec::new();
        let mut jobs = jobs.into_iter().peekable();
        while jobs.peek().is_some() {
            chunks.push(jobs.by_ref().take(chunk).collect());
        }
        let this = &*self;
        let failed = AtomicBool::new(false);
        let results: Vec<(Vec<LabNode>, Option<LabError>)> = std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    let failed = &failed;
                    s.spawn(move || this.build_chunk(chunk, work_dir, bridges, failed))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a lab build thread panicked"))
                .collect()
        });
        let mut first_error = None;
        for (nodes, error) in results {
            self.nodes.extend(nodes);
            if let Some(e) = error {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// One build thread's nodes, through its own socket in the switch
    /// namespace; it stops early once any thread has failed. Returns what it
    /// built (to be torn down with the rest) and its error.
    fn build_chunk(
        &self,
        chunk: Vec<(NodeIndex, &NodePlan, Option<ClusterConfig>)>,
        work_dir: &Path,
        bridges: &[u32; NETWORKS.len()],
        failed: &AtomicBool,
    ) -> (Vec<LabNode>, Option<LabError>) {
        let mut built = Vec::new();
        let mut sw = match self.switch.rtnl() {
            Ok(sw) => sw,
            Err(e) => {
                failed.store(true, Ordering::Relaxed);
                return (built, Some(e.into()));
            }
        };
        for (index, plan, cluster) in chunk {
            if failed.load(Ordering::Relaxed) {
                break;
            }
            match self.build_node(index, plan, work_dir, cluster, &mut sw, bridges) {
                Ok(node) => built.push(node),
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    return (built, Some(e));
                }
            }
        }
        (built, None)
    }

    /// Connects namespace `ns` (with `rtnl`, a socket inside it) to the
    /// bridges: per link, a veth whose switch end `port` is enslaved and up
    /// and whose other end, named after the network, is created directly in
    /// `ns` with its MAC; then `lo` and the links up and the addresses on,
    /// in one datagram.
    fn wire(
        &self,
        sw: &mut Rtnl,
        bridges: &[u32; NETWORKS.len()],
        ns: &NetNs,
        mut rtnl: Rtnl,
        links: &[(Network, String, [u8; 6], Ipv4Addr)],
    ) -> Result<(), LabError> {
        let file = fs::File::open(ns.path()).map_err(io_err(&ns.path()))?;
        let fd = std::os::fd::AsFd::as_fd(&file);
        let reqs = links
            .iter()
            .map(|(net, port, mac, _)| {
                let bridge = NETWORKS.iter().position(|n| n == net).map(|i| bridges[i]);
                Request::add_veth(
                    port,
                    &LinkChange {
                        up: Some(true),
                        master: bridge,
                        mac: None,
                    },
                    &VethPeer {
                        name: net.name(),
                        netns: Some(fd),
                        mac: Some(*mac),
                        index: 0,
                        up: false,
                    },
                )
            })
            .collect();
        sw.exec_all(reqs).map_err(|e| self.switch.rtnl_err(e))?;
        let shown = rtnl.links().map_err(|e| ns.rtnl_err(e))?;
        let mut reqs = vec![lo_up()];
        for (net, _, _, ip) in links {
            let name = net.name();
            let index = shown
                .iter()
                .find(|l| l.name == name)
                .map(|l| l.index)
                .ok_or_else(|| NetError::Rtnl {
                    ns: ns.name().to_string(),
                    source: faultline_faults::rtnl::RtnlError::Malformed {
                        op: format!("find link {name}"),
                        detail: "the veth end is not in the namespace".into(),
                    },
                })?;
            reqs.push(Request::add_addr(index, name, *ip, PREFIX_LEN));
            let up = LinkChange {
                up: Some(true),
                ..LinkChange::default()
            };
            reqs.push(Request::set_link_index(index, name, &up));
        }
        rtnl.exec_all(reqs).map_err(|e| ns.rtnl_err(e))?;
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
                .zip((0..).map_while(NodeIndex::new))
                .map(|(n, i)| ClusterNode {
                    id: i.id(),
                    name: n.name.clone(),
                    public_ip: i.ip(Network::Public),
                    private_ip: i.ip(Network::Private),
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
            failover_window_ms: ms(scenario.failover_window),
            shared_dir: shared.to_path_buf(),
        }
    }

    fn build_node(
        &self,
        index: NodeIndex,
        plan: &NodePlan,
        work_dir: &Path,
        cluster: Option<ClusterConfig>,
        sw: &mut Rtnl,
        bridges: &[u32; NETWORKS.len()],
    ) -> Result<LabNode, LabError> {
        let name = &plan.name;
        let rel = Path::new(CGROUP_ROOT).join(&self.id).join(name);
        let node = self.host.create(&rel)?;
        let service = self.host.create(&rel.join("service"))?;
        let watchdog = self.host.create(&rel.join("watchdog"))?;
        let workload = self.host.create(&rel.join("workload"))?;
        self.host
            .grant_rt_runtime(&rel.join("watchdog"), WATCHDOG_RT_US)?;

        let (ns, rtnl) = NetNs::create_bare(&format!("{NETNS_PREFIX}{}-{name}", self.id))?;
        let links: Vec<_> = NETWORKS
            .iter()
            .map(|&net| {
                let mac = index.mac(net);
                let mac = parse_mac(&mac).expect("topology MACs are well formed");
                (net, topology::port(name, net), mac, index.ip(net))
            })
            .collect();
        self.wire(sw, bridges, &ns, rtnl, &links)?;

        let dir = work_dir.join("nodes").join(name);
        let state_dir = dir.join("state");
        fs::create_dir_all(&state_dir).map_err(io_err(&state_dir))?;
        let db = node_db(&plan.settings, cluster);
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
            links: NETWORKS.iter().map(|n| n.name().to_string()).collect(),
            watchdog_rt_priority: match plan.settings.watchdog_priority {
                WatchdogPriority::Fifo => WATCHDOG_RT_PRIORITY,
                WatchdogPriority::Normal => 0,
            },
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

    /// The host's cgroups as this lab uses them.
    pub fn cgroups(&self) -> &CgroupHost {
        &self.host
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
        let mut rtnl = node.ns.rtnl()?;
        let public = Network::Public.name();
        let index = rtnl.index_of(public).map_err(|e| node.ns.rtnl_err(e))?;
        for vip in &self.vips {
            // Not configured there is fine: only stale ones are removed.
            match rtnl.exec(Request::del_addr(index, public, *vip, PREFIX_LEN)) {
                Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => {}
                other => other.map_err(|e| node.ns.rtnl_err(e))?,
            }
        }
        let up = LinkChange {
            up: Some(true),
            ..LinkChange::default()
        };
        rtnl.exec_all(
            NETWORKS
                .iter()
                .map(|net| Request::set_link(net.name(), &up))
                .collect(),
        )
        .map_err(|e| node.ns.rtnl_err(e))?;
        Ok(())
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

/// How many threads build a lab of `nodes` nodes: nodes are built in
/// parallel from [`PARALLEL_FROM`] nodes on, by at most [`BUILD_THREADS`]
/// ([`LAB_THREADS_ENV`] overrides the most, e.g. 1 to compare).
pub fn build_threads(nodes: usize) -> usize {
    let most = std::env::var(LAB_THREADS_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&t| t > 0);
    if let Some(most) = most {
        return most.min(nodes).max(1);
    }
    if nodes < PARALLEL_FROM {
        1
    } else {
        BUILD_THREADS.min(nodes)
    }
}

/// The environment variable that sets how many threads build a lab's nodes.
pub const LAB_THREADS_ENV: &str = "FAULTLINE_LAB_THREADS";
/// The smallest lab built by more than one thread.
const PARALLEL_FROM: usize = 4;
/// The most threads that build one lab's nodes.
const BUILD_THREADS: usize = 4;

/// An error with its causes, for a person; it lives in `faultline-sys`.
pub use faultline_sys::error::chain;
