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

/// The switch namespace's bridges skip the IP, IPv6 and ARP netfilter
/// hooks (`br_netfilter`'s per-namespace switches, on by default).
pub const BRIDGE_NETFILTER_OFF: [(&str, &str); 3] = [
    ("net.bridge.bridge-nf-call-iptables", "0"),
    ("net.bridge.bridge-nf-call-ip6tables", "0"),
    ("net.bridge.bridge-nf-call-arptables", "0"),
];

/// Where runs register themselves.
pub const RUN_ROOT: &str = "/run/faultline";
/// The cgroup folder every run lives under.
pub const CGROUP_ROOT: &str = "faultline";
/// Prefix of every namespace of ours.
pub const NETNS_PREFIX: &str = "fl-";
/// RT time granted to each node's watchdog cgroup, per second, from the
/// host's one budget (`faults/src/cgroup/rt.rs`): [`WATCHDOG_RT_BASE_US`]
/// plus [`WATCHDOG_RT_PER_PEER_US`] for each other node of a cluster (the
/// watchdog sends the node's heartbeats to every peer on both networks).
///
/// Measured with `/proc/PID/schedstat` of every SCHED_FIFO watchdog on this
/// 2-vCPU VM (load 12-18: other engineers building and running labs):
/// - one node, `hang_timeout` 1 s (4 heartbeats/s): 160-240 µs per second
///   while idle; the bugcheck (action 3, the demo: fence, then the dump)
///   is a burst: sampled every 1 ms, up to 7.6 ms in a 1 s window
///   (release build; schedstat counts the start-up before SCHED_FIFO too).
///   At 3 ms a debug build's watchdog was throttled mid-fence and the node
///   powered off before its dump was written; at 10 ms it fenced up to
///   194 ms late;
/// - 64-node cluster: 1.5 ms/s steady, at most 2.6 ms in a 1 s window
///   after start-up;
/// - 128-node cluster: 1.6 ms/s median, 2.7 ms/s the busiest, at most
///   4.9 ms in a 1 s window.
///
/// So: 20 ms base (2.6x the bugcheck's worst window) and 25 µs per peer
/// (2x the cluster's steady worst). A few nodes hold what one node held
/// before (50 ms); a big run does not fit whole and shares what the host
/// has left ([`watchdog_rt_share`]): 128 nodes on an otherwise idle host
/// get 7.4 ms each.
pub fn watchdog_rt_us(nodes: usize) -> u64 {
    WATCHDOG_RT_BASE_US + WATCHDOG_RT_PER_PEER_US * nodes.saturating_sub(1) as u64
}
/// The least RT time a watchdog of a run with `nodes` nodes is given when
/// the host cannot give [`watchdog_rt_us`] to every one: 1 ms plus 12 µs
/// per peer, about 1.5x the steady use measured (1.6 ms/s at 127 peers,
/// 0.24 ms/s alone). Between the two, the run shares what the host has
/// left equally between its watchdogs; below it, it is refused.
pub fn watchdog_rt_floor_us(nodes: usize) -> u64 {
    1_000 + 12 * nodes.saturating_sub(1) as u64
}

/// What each of `nodes` watchdogs is given when the host leaves `room_us`
/// for the run: [`watchdog_rt_us`] if it fits, else an equal share of
/// `room_us` if that is at least [`watchdog_rt_floor_us`], else `None`.
pub fn watchdog_rt_share(nodes: usize, room_us: i64) -> Option<u64> {
    let n = nodes.max(1) as u64;
    let room = u64::try_from(room_us).unwrap_or(0);
    let ideal = watchdog_rt_us(nodes);
    if ideal * n <= room {
        return Some(ideal);
    }
    let share = room / n;
    (share >= watchdog_rt_floor_us(nodes)).then_some(share)
}

/// See [`watchdog_rt_us`].
pub const WATCHDOG_RT_BASE_US: u64 = 20_000;
/// See [`watchdog_rt_us`].
pub const WATCHDOG_RT_PER_PEER_US: u64 = 25;
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
    /// The run's watchdogs could not be given their RT time.
    #[error("the run's {nodes} watchdog(s) need {per_watchdog_us} µs of RT time per second each")]
    RtTime {
        /// The run's nodes.
        nodes: usize,
        /// What each watchdog is given ([`watchdog_rt_us`]).
        per_watchdog_us: u64,
        /// Why it failed, naming the numbers when the budget refused.
        #[source]
        source: CgroupError,
    },
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

impl LabError {
    /// When the host's RT budget refused the run only because other runs
    /// hold it (it would fit once they end and give theirs back): who
    /// holds it, for a note while waiting. `None` for any other error, and
    /// when the host could not cover the run even alone.
    pub fn rt_held_by_other_runs(&self) -> Option<String> {
        let LabError::RtTime {
            source:
                CgroupError::RtBudget {
                    rel,
                    top,
                    top_need_us,
                    available_us,
                    holders,
                    ..
                },
            ..
        } = self
        else {
            return None;
        };
        let prefix = format!("{}/", top.display());
        let own = rel.to_string_lossy();
        // Only runs end and give their time back.
        let runs: Vec<&(String, i64)> = holders
            .iter()
            .filter(|(who, _)| {
                who.strip_prefix(&prefix)
                    .is_some_and(crate::cleanup::is_run_id)
                    && *who != own
            })
            .collect();
        let held: i64 = runs.iter().map(|(_, us)| us).sum();
        (held > 0 && top_need_us - held <= *available_us).then(|| {
            runs.iter()
                .map(|(who, us)| format!("{who} {us} µs"))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
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
    /// RT time granted to each watchdog, µs per second.
    rt_us: u64,
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

/// A fresh run id that no other run (live or left behind) uses, held by
/// creating its folder exclusively: two runs started at once can never
/// share one.
fn claim_run_id(host: &CgroupHost) -> Result<(String, PathBuf), LabError> {
    let root = Path::new(RUN_ROOT);
    let mut last = std::io::Error::other("no free run id");
    for _ in 0..16 {
        let id = new_run_id();
        let prefix = format!("{NETNS_PREFIX}{id}-");
        let group = host.open(&Path::new(CGROUP_ROOT).join(&id));
        if group.dirs().iter().any(|d| d.exists())
            || NetNs::list()
                .unwrap_or_default()
                .iter()
                .any(|n| n.starts_with(&prefix))
        {
            continue;
        }
        fs::create_dir_all(root).map_err(io_err(root))?;
        let dir = root.join(&id);
        match fs::create_dir(&dir) {
            Ok(()) => return Ok((id, dir)),
            // Taken meanwhile, or `/run/faultline` removed by a teardown
            // between the two calls: try again.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotFound
                ) =>
            {
                last = e;
            }
            Err(source) => return Err(LabError::Io { path: dir, source }),
        }
    }
    Err(LabError::Io {
        path: root.to_path_buf(),
        source: last,
    })
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
        let (id, run_dir) = claim_run_id(&host)?;
        let mut lab = Lab {
            switch: NetNs::open(&format!("{NETNS_PREFIX}{id}-sw")),
            id,
            run_dir,
            nodes: Vec::new(),
            client: None,
            topology: topology::nodes(scenario.nodes.iter().map(|n| n.name.as_str())),
            vips: scenario.groups.iter().map(|g| g.ip).collect(),
            host,
            rt_us: 0,
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

        // The whole run's RT time is asked for at once, before anything
        // slow is built: a host that cannot cover it refuses now, naming
        // the numbers. Each node's grant below then fits inside it.
        let run_cgroup = Path::new(CGROUP_ROOT).join(&self.id);
        self.host.create(&run_cgroup)?;
        let nodes = scenario.nodes.len();
        self.rt_us = watchdog_rt_us(nodes);
        let mut granted = self
            .host
            .grant_rt_runtime(&run_cgroup, self.rt_us * nodes as u64);
        if let Err(CgroupError::RtBudget {
            asked_us,
            top_need_us,
            available_us,
            ..
        }) = &granted
        {
            // What the host leaves this run: share it, or ask for the
            // floor (refused, naming the numbers).
            let room = available_us - (top_need_us - asked_us);
            self.rt_us = watchdog_rt_share(nodes, room).unwrap_or(watchdog_rt_floor_us(nodes));
            granted = self
                .host
                .grant_rt_runtime(&run_cgroup, self.rt_us * nodes as u64);
        }
        granted.map_err(|source| LabError::RtTime {
            nodes,
            per_watchdog_us: self.rt_us,
            source,
        })?;

        let (switch, mut sw) = NetNs::create_bare(self.switch.name())?;
        self.switch = switch;
        // The switch is a plain L2 switch: where the host has br_netfilter,
        // a new namespace's bridges hand every frame to its IPv4, IPv6 and
        // ARP netfilter hooks (and conntrack, if anything asks for it).
        // The network faults filter in the bridge family, which needs none
        // of that.
        self.switch.set_sysctls(&BRIDGE_NETFILTER_OFF)?;
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
            .grant_rt_runtime(&rel.join("watchdog"), self.rt_us)?;

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

    /// RT time each watchdog was given, µs per second (0 where the host
    /// has no RT group scheduling to grant).
    pub fn watchdog_rt_us(&self) -> u64 {
        match self.host.capabilities().rt_group_sched {
            true => self.rt_us,
            false => 0,
        }
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
    // Its RT time first, while the groups exist (see zero_rt_subtree).
    if let Err(e) = host.zero_rt_subtree(&rel) {
        errors.push(format!(
            "taking back RT time of faultline/{id}: {}",
            chain(&e)
        ));
    }
    if let Err(e) = run.remove() {
        errors.push(format!("removing cgroup faultline/{id}: {}", chain(&e)));
    }
    // What the run held goes back to the host's RT budget.
    if let Err(e) = host.trim_rt_runtime(Path::new(CGROUP_ROOT)) {
        errors.push(format!("giving back RT time: {}", chain(&e)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_rt_time_grows_with_peers_and_128_nodes_fit_the_host() {
        assert_eq!(watchdog_rt_us(1), 20_000);
        assert_eq!(watchdog_rt_us(3), 20_050);
        assert_eq!(watchdog_rt_us(128), 23_175);
        // 128 and 240 nodes (the topology's most) run on the default
        // 950000 µs, sharing it; their floor leaves room beside them.
        assert_eq!(watchdog_rt_share(128, 950_000), Some(7_421));
        assert!(watchdog_rt_floor_us(128) * 128 <= 400_000);
        assert!(watchdog_rt_floor_us(240) * 240 <= 950_000);
    }

    #[test]
    fn a_host_with_less_room_shares_it_down_to_the_floor() {
        // Room for the ideal: the ideal.
        assert_eq!(watchdog_rt_share(3, 950_000), Some(20_050));
        // 200 nodes cannot have 24975 µs each: they share 950 ms.
        assert_eq!(watchdog_rt_share(200, 950_000), Some(4_750));
        assert_eq!(watchdog_rt_floor_us(200), 3_388);
        // 128 nodes beside runs holding 500 ms share the 450 ms left.
        assert_eq!(watchdog_rt_share(128, 450_000), Some(3_515));
        // Below the floor: refused.
        assert_eq!(watchdog_rt_share(128, 300_000), None);
        assert_eq!(watchdog_rt_share(400, 950_000), None);
        assert_eq!(watchdog_rt_share(1, -5), None);
    }

    fn refusal(asked: i64, top_need: i64, available: i64, holders: &[(&str, i64)]) -> LabError {
        let source = CgroupError::RtBudget {
            rel: "faultline/mine01".into(),
            asked_us: asked,
            top: "faultline".into(),
            top_need_us: top_need,
            available_us: available,
            root_us: 950_000,
            holders: holders.iter().map(|(w, u)| (w.to_string(), *u)).collect(),
        };
        LabError::RtTime {
            nodes: 2,
            per_watchdog_us: 3_025,
            source,
        }
    }

    #[test]
    fn a_refusal_waits_only_when_other_runs_hold_what_it_needs() {
        // Other runs hold 400 ms; alone it would fit: wait for them.
        let e = refusal(
            790_400,
            1_190_400,
            950_000,
            &[("faultline/ab12cd", 400_000)],
        );
        assert_eq!(
            e.rt_held_by_other_runs().as_deref(),
            Some("faultline/ab12cd 400000 µs")
        );
        // More than the host has even alone: refuse at once.
        let e = refusal(
            1_595_000,
            1_995_000,
            950_000,
            &[("faultline/ab12cd", 400_000)],
        );
        assert_eq!(e.rt_held_by_other_runs(), None);
        // Held outside faultline (another program's group), or by a group
        // that is not a run: nothing to wait for.
        let e = refusal(790_400, 790_400, 650_000, &[("other", 300_000)]);
        assert_eq!(e.rt_held_by_other_runs(), None);
        let e = refusal(
            790_400,
            1_190_400,
            950_000,
            &[("faultline/fltest-x", 400_000)],
        );
        assert_eq!(e.rt_held_by_other_runs(), None);
    }
}
