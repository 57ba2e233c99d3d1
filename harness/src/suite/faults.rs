//! The fault vocabulary: one [`FaultDef`] per fault kind, and one slice of
//! them, [`FAULTS`], that drives validation (keys, parameters, rules), error
//! messages, overlap detection and construction of the fault the runner
//! injects. Adding a kind means: a [`FaultKind`] and a [`FaultSpec`] variant,
//! an entry here, and its implementation; the compiler (exhaustive matches)
//! and the tests below catch whatever is forgotten.
//!
//! Nothing here touches the host: `build` only assembles the fault value
//! from the lab's facts; the runner injects it.

use std::net::SocketAddrV4;
use std::path::PathBuf;

use std::time::Duration;

use faultline_agent::launch::CLUSDB_FILE;
use faultline_faults::cgroup::Cgroup;
use faultline_faults::crash::Crash;
use faultline_faults::fault::Fault;
use faultline_faults::freeze::Freeze;
use faultline_faults::host::Probe;
use faultline_faults::link::LinkDown;
use faultline_faults::lock::{Lock, LockKind};
use faultline_faults::netns::NetNs;
use faultline_faults::scanner::{NodeStall, Scanner};

use super::faults_net;
use super::params::Params;
use crate::plan::{FaultKind, FaultPlan, FaultSpec, Network, ScannerScope};
use crate::spoof::ForgedPoison;
use crate::topology::{self, NodeIndex, CLUSTER_PORT};

/// The keys every fault has, besides its kind's parameters.
pub const COMMON_KEYS: &[&str] = &["kind", "node", "at", "for"];

/// What the lab offers a fault to be built on: facts of the target node and
/// the run.
pub struct FaultSite<'a> {
    /// The target node's place in the topology.
    pub node: NodeIndex,
    /// The target node's service cgroup.
    pub service: &'a Cgroup,
    /// The run's switch namespace (holding every node's switch ports).
    pub switch: &'a NetNs,
    /// The run's client namespace, when the scenario is a cluster.
    pub client: Option<PathBuf>,
    /// The target node as the lab built it (its namespace, folder, every
    /// cgroup of it), for faults that need more than the above.
    pub target: &'a crate::lab::LabNode,
    /// The whole lab (every node, the switch), for faults between nodes.
    pub lab: &'a crate::lab::Lab,
    /// The program that runs a fault's helper processes (`faultline
    /// helper NAME ...`, see `faultline_faults::helper`): this binary.
    pub helper: PathBuf,
}

/// Assembles a fault from its plan and the lab's facts (an error says why
/// it cannot be built there).
pub type BuildFn = fn(&FaultPlan, &FaultSite<'_>) -> Result<Box<dyn Fault>, String>;

/// One fault kind: its name, its keys and rules, how its parameters are
/// read, what it targets, and how it is built.
pub struct FaultDef {
    /// The kind.
    pub kind: FaultKind,
    /// Its name in suites and traces (`link_down`).
    pub name: &'static str,
    /// One line for docs and messages.
    pub doc: &'static str,
    /// Its own keys, besides [`COMMON_KEYS`].
    pub params: &'static [&'static str],
    /// Whether it needs a cluster (two or more nodes, a group or a witness).
    pub needs_cluster: bool,
    /// Whether it hangs the node's service (the watchdog must fire).
    pub hangs_service: bool,
    /// The host probes (`faultline doctor`, `faultline_faults::host`) it
    /// cannot run without: a suite using it on a host lacking one exits 3
    /// naming it, before any lab is built.
    pub requires: &'static [&'static str],
    /// A fault of this kind as a suite writes it (node `n1`), for tests and
    /// docs.
    pub example: &'static str,
    /// Reads the kind's parameters.
    pub parse: fn(&mut Params<'_>) -> Option<FaultSpec>,
    /// What a fault of this kind occupies on its node: two faults of one
    /// kind whose targets meet must not overlap in time.
    pub targets: fn(&FaultPlan) -> Vec<String>,
    /// Assembles the fault to inject.
    pub build: BuildFn,
}

/// Every fault kind this build knows.
pub static FAULTS: &[&FaultDef] = &[
    &FREEZE,
    &LINK_DOWN,
    &FORGED_POISON,
    &faults_net::PARTITION,
    &faults_net::LOSS,
    &faults_net::DELAY,
    &SCANNER,
    &LOCK,
    &CRASH,
    &super::faults_res::CPU,
    &super::faults_res::MEMORY,
    &super::faults_cfg::STOP,
];

impl FaultKind {
    /// This kind's table entry.
    pub fn def(self) -> &'static FaultDef {
        match self {
            FaultKind::Freeze => &FREEZE,
            FaultKind::LinkDown => &LINK_DOWN,
            FaultKind::ForgedPoison => &FORGED_POISON,
            FaultKind::Partition => &faults_net::PARTITION,
            FaultKind::Loss => &faults_net::LOSS,
            FaultKind::Delay => &faults_net::DELAY,
            FaultKind::Scanner => &SCANNER,
            FaultKind::Lock => &LOCK,
            FaultKind::Crash => &CRASH,
            FaultKind::Cpu => &super::faults_res::CPU,
            FaultKind::Memory => &super::faults_res::MEMORY,
            FaultKind::Stop => &super::faults_cfg::STOP,
        }
    }

    /// Its name in suites and traces.
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// Whether this fault hangs the node's service (the watchdog must fire).
    pub fn hangs_service(self) -> bool {
        self.def().hangs_service
    }

    /// Whether a power-off of its node ends it. Not for `partition` and
    /// `loss`: they live in the run's switch (a cut cable and a lossy
    /// network do not mend when a node reboots) and are recorded on one
    /// node only to give them a place in the trace.
    pub fn ends_with_reboot(self) -> bool {
        !matches!(self, FaultKind::Partition | FaultKind::Loss)
    }

    /// The kind called `name`.
    pub fn parse(name: &str) -> Option<FaultKind> {
        FAULTS.iter().find(|d| d.name == name).map(|d| d.kind)
    }

    /// Whether this host can run the kind, from the host's probes: `Err`
    /// names each missing capability and why.
    pub fn available(self, probes: &[Probe]) -> Result<(), String> {
        let missing: Vec<String> = self
            .def()
            .requires
            .iter()
            .filter_map(|name| match probes.iter().find(|p| p.name == *name) {
                Some(p) if p.ok => None,
                Some(p) => Some(format!("{name}: {}", p.detail)),
                None => Some(format!("{name}: not probed")),
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("; "))
        }
    }
}

impl FaultPlan {
    /// Assembles the fault to inject on `site`.
    pub fn build(&self, site: &FaultSite<'_>) -> Result<Box<dyn Fault>, String> {
        (self.kind().def().build)(self, site)
    }
}

pub(super) fn on_node(f: &FaultPlan) -> Vec<String> {
    vec![f.node.clone()]
}

static FREEZE: FaultDef = FaultDef {
    kind: FaultKind::Freeze,
    name: "freeze",
    doc: "cgroup freezer on the node's service cgroup (a plain user-mode hang)",
    params: &[],
    needs_cluster: false,
    hangs_service: true,
    requires: &["freezer"],
    example: "{ kind: freeze, node: n1, at: 1s, for: 2s }",
    parse: |_| Some(FaultSpec::Freeze),
    targets: on_node,
    build: |_, site| {
        Ok(Box::new(Freeze {
            target: site.service.clone(),
        }))
    },
};

static LINK_DOWN: FaultDef = FaultDef {
    kind: FaultKind::LinkDown,
    name: "link_down",
    doc: "the node's switch ports on `network` (public, private or all) go down",
    params: &["network"],
    needs_cluster: false,
    hangs_service: false,
    requires: &["netns"],
    example: "{ kind: link_down, node: n1, network: all, at: 1s, for: 2s }",
    parse: |p| {
        let networks = p.choice(
            "network",
            &[
                ("public", &[Network::Public][..]),
                ("private", &[Network::Private][..]),
                ("all", &topology::NETWORKS[..]),
            ],
        );
        let networks = p.required("network", networks)?;
        Some(FaultSpec::LinkDown {
            networks: networks.to_vec(),
        })
    },
    targets: |f| match &f.spec {
        FaultSpec::LinkDown { networks } => networks
            .iter()
            .map(|n| topology::port(&f.node, *n))
            .collect(),
        _ => on_node(f),
    },
    build: |f, site| {
        let FaultSpec::LinkDown { networks } = &f.spec else {
            return Err(format!("not a link_down fault: {:?}", f.spec));
        };
        Ok(Box::new(LinkDown {
            ns: site.switch.clone(),
            links: networks
                .iter()
                .map(|n| topology::port(&f.node, *n))
                .collect(),
        }))
    },
};

static FORGED_POISON: FaultDef = FaultDef {
    kind: FaultKind::ForgedPoison,
    name: "forged_poison",
    doc: "an intruder in the client namespace sends the node poison packets \
          with a wrong key; they must be rejected",
    params: &[],
    needs_cluster: true,
    hangs_service: false,
    requires: &["netns"],
    example: "{ kind: forged_poison, node: n1, at: 1s, for: 1s }",
    parse: |_| Some(FaultSpec::ForgedPoison),
    targets: on_node,
    build: |_, site| {
        let Some(client) = &site.client else {
            return Err("forged_poison needs a cluster (the client namespace)".into());
        };
        Ok(Box::new(ForgedPoison {
            from_ns: client.clone(),
            target: SocketAddrV4::new(site.node.ip(Network::Public), CLUSTER_PORT),
            claimed_from: site.node.other_id(),
            to: site.node.id(),
        }))
    },
};

/// How long a fault's helper outlives the fault's window, so that it is
/// healed (not expired) on time; it still ends by itself after this.
const HELPER_MARGIN: Duration = Duration::from_secs(2);

static SCANNER: FaultDef = FaultDef {
    kind: FaultKind::Scanner,
    name: "scanner",
    doc: "an on-access scanner (fanotify FAN_OPEN_PERM) holds each open of `paths` \
          (default: the node's state folder) for `hold`, except under `exclude`; \
          `scope: node` also freezes every process of the node (seed 000)",
    params: &["hold", "paths", "exclude", "scope"],
    needs_cluster: false,
    hangs_service: true,
    requires: &["fanotify", "freezer"],
    example: "{ kind: scanner, node: n1, at: 1s, for: 2s, hold: 2s, paths: [state], \
              exclude: [state/cache], scope: operation }",
    parse: |p| {
        let hold = p.duration("hold");
        let paths = p.rel_paths("paths");
        let exclude = p.rel_paths("exclude");
        let scope = p.choice(
            "scope",
            &[
                ("operation", ScannerScope::Operation),
                ("node", ScannerScope::Node),
            ],
        );
        let hold = p.required("hold", hold);
        Some(FaultSpec::Scanner {
            hold: hold?,
            paths: paths?.unwrap_or_else(|| vec!["state".into()]),
            exclude: exclude?.unwrap_or_default(),
            scope: scope?.unwrap_or(ScannerScope::Operation),
        })
    },
    targets: on_node,
    build: |f, site| {
        let FaultSpec::Scanner {
            hold,
            paths,
            exclude,
            scope,
        } = &f.spec
        else {
            return Err(format!("not a scanner fault: {:?}", f.spec));
        };
        let dir = &site.target.dir;
        Ok(Box::new(Scanner {
            root: dir.clone(),
            marks: paths.iter().map(|p| dir.join(p)).collect(),
            exclude: exclude.iter().map(|p| dir.join(p)).collect(),
            hold: *hold,
            program: site.helper.clone(),
            lifetime: f.duration + HELPER_MARGIN,
            netns: site.target.ns.path(),
            workload: site.target.workload.clone(),
            service: site.service.clone(),
            freeze: (*scope == ScannerScope::Node).then(|| NodeStall {
                node: site.target.node.clone(),
                parts: vec![site.target.watchdog.clone(), site.target.workload.clone()],
                service: site.service.clone(),
            }),
        }))
    },
};

static LOCK: FaultDef = FaultDef {
    kind: FaultKind::Lock,
    name: "lock",
    doc: "a process in the node holds an exclusive lock (`lock: flock|ofd|posix`) \
          on the node's configuration database; the service blocks on it",
    params: &["lock"],
    needs_cluster: false,
    hangs_service: true,
    requires: &[],
    example: "{ kind: lock, node: n1, at: 1s, for: 2s, lock: ofd }",
    parse: |p| {
        let lock = p.choice(
            "lock",
            &[
                ("flock", LockKind::Flock),
                ("ofd", LockKind::Ofd),
                ("posix", LockKind::Posix),
            ],
        );
        Some(FaultSpec::Lock {
            lock: p.required("lock", lock)?,
        })
    },
    targets: on_node,
    build: |f, site| {
        let FaultSpec::Lock { lock } = &f.spec else {
            return Err(format!("not a lock fault: {:?}", f.spec));
        };
        Ok(Box::new(Lock {
            kind: *lock,
            file: site.target.dir.join("state").join(CLUSDB_FILE),
            program: site.helper.clone(),
            lifetime: f.duration + HELPER_MARGIN,
            netns: site.target.ns.path(),
            workload: site.target.workload.clone(),
            service: site.service.clone(),
        }))
    },
};

static CRASH: FaultDef = FaultDef {
    kind: FaultKind::Crash,
    name: "crash",
    doc: "the node's service is killed (SIGKILL); the supervisor restarts it (7031) \
          and the watchdog's countdown stops with it: nothing to detect",
    params: &[],
    needs_cluster: false,
    hangs_service: false,
    requires: &[],
    example: "{ kind: crash, node: n1, at: 1s, for: 1s }",
    parse: |_| Some(FaultSpec::Crash),
    targets: on_node,
    build: |_, site| {
        Ok(Box::new(Crash {
            service: site.service.clone(),
        }))
    },
};
