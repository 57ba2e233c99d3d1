//! The address observer: one thread that polls, every few milliseconds,
//! which node namespaces hold which IPv4 addresses, and reports each change
//! as an [`AddrSeen`].
//!
//! This is how the harness sees where a floating address actually is (and
//! when two nodes hold it at once), independent of what the agents say.
//! For each node it keeps a NETLINK_ROUTE socket opened inside that node's
//! namespace (a netlink socket stays bound to the namespace it was created
//! in), and dumps links and IPv4 addresses from it through
//! [`faultline_sys::rtnl`] (the rust-netlink crates). It only reads: it must
//! not change any namespace's configuration, and it judges nothing.
//!
//! A node holds an address when the address is configured on one of its
//! interfaces that is administratively up (IFF_UP); IPv4 addresses stay
//! configured on a link that goes down, so a downed link releases them.
//!
//! A node whose namespace file disappears (the node was torn down) holds
//! nothing; the observer then closes its socket at once, because an open
//! socket keeps the namespace, and its veths, alive.
//!
//! Measured (root test `root_observe_addr_poll_round_over_three_namespaces`,
//! debug build, 3 namespaces of 2 interfaces, 5 ms interval, 199 rounds):
//! one round, i.e. a stat of each namespace file plus a link and an address
//! dump per namespace, took 0.25 ms on average and 0.47 ms at most (release
//! build: 0.15 ms and 0.25 ms), far below the 10 ms interval it is meant for. [`AddrStats`] reports it for
//! every run.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use faultline_agent::clock::monotonic_ns;
use serde::{Deserialize, Serialize};

use super::worker::{StartFailure, ThreadError, Worker};
use faultline_sys::netns::{Netns, NetnsError};
use faultline_sys::rtnl::{Addr, Link, Rtnl};

/// How long one netlink dump may take before the poll counts as failed.
const DUMP_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest the thread sleeps without looking at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// A change in whether a node holds an address (or, at start, the initial
/// state of every watched node and address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddrSeen {
    /// When the poll that saw it read the node's addresses:
    /// CLOCK_MONOTONIC, nanoseconds. The change happened after the node's
    /// previous poll and before `t`.
    pub t: u64,
    /// The node.
    pub node: String,
    /// The address.
    pub ip: Ipv4Addr,
    /// Configured on an interface that is up.
    pub held: bool,
    /// The interface it is configured on: the one that is up when held;
    /// otherwise a downed one, or empty when not configured at all.
    pub iface: String,
}

/// A change in whether the observer can read a node: its polls started
/// failing (it no longer sees that node's addresses), or work again. Sent
/// only to the health channel of [`AddrObserver::start_reporting`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrHealth {
    /// When the poll that changed it ended.
    pub t: u64,
    /// The node.
    pub node: String,
    /// Whether its addresses are observed from `t` on.
    pub observing: bool,
    /// Why not (the error), or empty.
    pub detail: String,
}

/// How the observer's polling went, returned by [`AddrObserver::stop`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrStats {
    /// Poll rounds done, the first one included.
    pub rounds: u64,
    /// Rounds that took longer than the interval.
    pub overruns: u64,
    /// Mean duration of a round.
    pub mean_round: Duration,
    /// Longest round.
    pub max_round: Duration,
}

/// Starting or running the address observer failed.
#[derive(Debug, thiserror::Error)]
pub enum AddrError {
    /// The arguments cannot make a working observer.
    #[error("invalid address observer setup: {0}")]
    Invalid(String),
    /// A namespace could not be opened or entered.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// The netlink socket inside a node's namespace could not be opened.
    #[error("cannot open a netlink socket in network namespace {path}")]
    Socket {
        /// The namespace file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The thread could not return to the namespace it started in.
    #[error("cannot return to the observer's own network namespace")]
    Return(#[source] NetnsError),
    /// Reading a node's links or addresses failed while its namespace
    /// still existed; `failures` polls of it were lost in all.
    #[error("cannot read the addresses of node {node} ({failures} polls lost)")]
    Poll {
        /// The node.
        node: String,
        /// Polls of this node that failed.
        failures: u64,
        /// The first failure.
        #[source]
        source: io::Error,
    },
    /// The thread could not run.
    #[error(transparent)]
    Thread(#[from] ThreadError),
}

/// A running observer. [`AddrObserver::stop`] (or drop) ends its thread
/// within about one interval and closes its sockets.
#[derive(Debug)]
pub struct AddrObserver {
    worker: Worker<Result<AddrStats, AddrError>>,
}

impl AddrObserver {
    /// Starts watching whether each of `nodes` (name, namespace file) holds
    /// each of `ips`, polling every `interval` (meant to be at most 10 ms).
    /// Returns once the first round is done and the initial state of every
    /// (node, ip) has been sent to `tx`.
    pub fn start(
        nodes: Vec<(String, PathBuf)>,
        ips: Vec<Ipv4Addr>,
        interval: Duration,
        tx: Sender<AddrSeen>,
    ) -> Result<AddrObserver, AddrError> {
        Self::start_reporting(nodes, ips, interval, tx, None)
    }

    /// [`AddrObserver::start`], also sending to `health` each time a node's
    /// polls start failing and each time they work again.
    pub fn start_reporting(
        nodes: Vec<(String, PathBuf)>,
        ips: Vec<Ipv4Addr>,
        interval: Duration,
        tx: Sender<AddrSeen>,
        health: Option<Sender<AddrHealth>>,
    ) -> Result<AddrObserver, AddrError> {
        if interval.is_zero() {
            return Err(AddrError::Invalid("the interval is zero".into()));
        }
        let mut names = HashSet::new();
        for (name, _) in &nodes {
            if !names.insert(name) {
                return Err(AddrError::Invalid(format!("node {name} is listed twice")));
            }
        }
        // Refuse a bad path here, where the caller can act on it.
        for (_, path) in &nodes {
            Netns::open(path)?;
        }
        let worker = Worker::start(
            "faultline-addr-observer",
            move || {
                let mut poller = Poller::new(nodes, ips, tx, health)?;
                poller.first_round()?;
                Ok(poller)
            },
            move |mut poller: Poller, stop| poller.run(interval, stop),
        )
        .map_err(StartFailure::<AddrError>::into_error)?;
        Ok(AddrObserver { worker })
    }

    /// Stops the thread and reports how polling went; an error if polls of
    /// a node that still existed failed.
    pub fn stop(mut self) -> Result<AddrStats, AddrError> {
        self.worker.stop()?.unwrap_or(Ok(AddrStats::default()))
    }
}

impl Default for AddrStats {
    fn default() -> Self {
        AddrStats {
            rounds: 0,
            overruns: 0,
            mean_round: Duration::ZERO,
            max_round: Duration::ZERO,
        }
    }
}

/// Where one address is, in one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holding {
    held: bool,
    iface: String,
}

/// One watched node.
struct Node {
    name: String,
    path: PathBuf,
    /// The namespace the socket is bound to: (st_dev, st_ino).
    ident: Option<(u64, u64)>,
    sock: Option<Rtnl>,
    /// What was last reported per address; empty before the first round.
    reported: BTreeMap<Ipv4Addr, Holding>,
    failures: u64,
    first_failure: Option<io::Error>,
    /// Whether its last poll worked.
    observing: bool,
}

impl Node {
    /// Notes how a poll went; the health change it makes, if any.
    fn health(&mut self, t: u64, failure: Option<&io::Error>) -> Option<AddrHealth> {
        let ok = failure.is_none();
        if ok == self.observing {
            return None;
        }
        self.observing = ok;
        Some(AddrHealth {
            t,
            node: self.name.clone(),
            observing: ok,
            detail: failure.map(|e| e.to_string()).unwrap_or_default(),
        })
    }
}

/// The thread's state.
struct Poller {
    own: Netns,
    nodes: Vec<Node>,
    ips: Vec<Ipv4Addr>,
    tx: Sender<AddrSeen>,
    health: Option<Sender<AddrHealth>>,
}

/// Why a node could not be read this round.
enum NodeFailure {
    /// A bad namespace file or a failed setns: the caller's problem at start.
    Setup(AddrError),
    /// A socket or dump failure.
    Read(io::Error),
    /// The thread is stuck in another namespace: it must end.
    Fatal(AddrError),
}

impl Poller {
    fn new(
        nodes: Vec<(String, PathBuf)>,
        ips: Vec<Ipv4Addr>,
        tx: Sender<AddrSeen>,
        health: Option<Sender<AddrHealth>>,
    ) -> Result<Poller, AddrError> {
        let own = Netns::current()?;
        let nodes = nodes
            .into_iter()
            .map(|(name, path)| Node {
                name,
                path,
                ident: None,
                sock: None,
                reported: BTreeMap::new(),
                failures: 0,
                first_failure: None,
                observing: true,
            })
            .collect();
        Ok(Poller {
            own,
            nodes,
            ips,
            tx,
            health,
        })
    }

    /// The first round: every node must be readable; sends every state.
    fn first_round(&mut self) -> Result<(), AddrError> {
        for i in 0..self.nodes.len() {
            let now = match self.read(i) {
                Ok(now) => now,
                Err(NodeFailure::Setup(e) | NodeFailure::Fatal(e)) => return Err(e),
                Err(NodeFailure::Read(source)) => {
                    return Err(AddrError::Poll {
                        node: self.nodes[i].name.clone(),
                        failures: 1,
                        source,
                    })
                }
            };
            self.report(i, now);
        }
        Ok(())
    }

    /// Polls every `interval` until `stop`; then reports how it went.
    fn run(&mut self, interval: Duration, stop: &AtomicBool) -> Result<AddrStats, AddrError> {
        let mut stats = AddrStats {
            rounds: 1,
            ..AddrStats::default()
        };
        let mut total = Duration::ZERO;
        let mut next = Instant::now() + interval;
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now < next {
                std::thread::sleep((next - now).min(STOP_CHECK));
                continue;
            }
            let started = Instant::now();
            for i in 0..self.nodes.len() {
                match self.read(i) {
                    Ok(now) => {
                        let change = self.nodes[i].health(now.0, None);
                        self.tell(change);
                        if !self.report(i, now) {
                            return Ok(stats);
                        }
                    }
                    Err(e) => {
                        let e = match e {
                            NodeFailure::Fatal(e) => return Err(e),
                            NodeFailure::Setup(e) => io::Error::other(e),
                            NodeFailure::Read(e) => e,
                        };
                        let change = self.nodes[i].health(monotonic_ns(), Some(&e));
                        self.tell(change);
                        let node = &mut self.nodes[i];
                        node.failures += 1;
                        node.first_failure.get_or_insert(e);
                        // Reopen next round; keep what was last reported.
                        node.sock = None;
                        node.ident = None;
                    }
                }
            }
            let took = started.elapsed();
            stats.rounds += 1;
            total += took;
            stats.max_round = stats.max_round.max(took);
            if took > interval {
                stats.overruns += 1;
            }
            // Skip ticks that a slow round missed rather than bunching up.
            next += interval;
            if next < Instant::now() {
                next = Instant::now() + interval;
            }
        }
        let timed = u128::from(stats.rounds.saturating_sub(1).max(1));
        stats.mean_round = Duration::from_nanos((total.as_nanos() / timed) as u64);
        for node in &mut self.nodes {
            if let Some(source) = node.first_failure.take() {
                return Err(AddrError::Poll {
                    node: node.name.clone(),
                    failures: node.failures,
                    source,
                });
            }
        }
        Ok(stats)
    }

    /// Where each watched address is in node `i` now, and when that was
    /// read. A namespace that is gone holds nothing.
    fn read(&mut self, i: usize) -> Result<(u64, BTreeMap<Ipv4Addr, Holding>), NodeFailure> {
        let current = ident_of(&self.nodes[i].path);
        let node = &mut self.nodes[i];
        if current.is_none() || current != node.ident {
            // Gone, or replaced by a new namespace of the same name: the old
            // socket must not keep the old namespace alive.
            node.sock = None;
            node.ident = None;
        }
        if current.is_some() && node.sock.is_none() {
            match open_in(&self.own, &node.path) {
                Ok((sock, ident)) => {
                    node.sock = Some(sock);
                    node.ident = Some(ident);
                }
                Err(e @ AddrError::Return(_)) => return Err(NodeFailure::Fatal(e)),
                // Deleted between the stat and the open: gone.
                Err(_) if ident_of(&node.path).is_none() => {}
                Err(e) => return Err(NodeFailure::Setup(e)),
            }
        }
        let Some(sock) = node.sock.as_mut() else {
            return Ok((
                monotonic_ns(),
                self.ips.iter().map(|&ip| (ip, absent())).collect(),
            ));
        };
        let dumped = sock.links().and_then(|links| Ok((links, sock.addrs()?)));
        let t = monotonic_ns();
        match dumped {
            Ok((links, addrs)) => Ok((t, holdings(&self.ips, &links, &addrs))),
            Err(_) if ident_of(&node.path).is_none() => {
                node.sock = None;
                node.ident = None;
                Ok((t, self.ips.iter().map(|&ip| (ip, absent())).collect()))
            }
            Err(e) => Err(NodeFailure::Read(e.into())),
        }
    }

    /// Sends a change of a node's health to whoever listens for it.
    fn tell(&self, change: Option<AddrHealth>) {
        if let (Some(tx), Some(change)) = (&self.health, change) {
            let _ = tx.send(change);
        }
    }

    /// Sends what changed for node `i`; false once nobody listens.
    fn report(&mut self, i: usize, (t, now): (u64, BTreeMap<Ipv4Addr, Holding>)) -> bool {
        let node = &mut self.nodes[i];
        for (ip, holding) in now {
            let changed = match node.reported.get(&ip) {
                None => true,
                Some(old) => is_change(old, &holding),
            };
            if !changed {
                continue;
            }
            let seen = AddrSeen {
                t,
                node: node.name.clone(),
                ip,
                held: holding.held,
                iface: holding.iface.clone(),
            };
            node.reported.insert(ip, holding);
            if self.tx.send(seen).is_err() {
                return false;
            }
        }
        true
    }
}

fn absent() -> Holding {
    Holding {
        held: false,
        iface: String::new(),
    }
}

/// Worth a record: the address was taken or released, or moved to another
/// interface while held. Where an unheld address sits is not.
fn is_change(old: &Holding, new: &Holding) -> bool {
    old.held != new.held || (new.held && old.iface != new.iface)
}

/// Where each of `ips` is, given a namespace's links and addresses. An
/// address on an up interface wins over the same address on a down one.
fn holdings(ips: &[Ipv4Addr], links: &[Link], addrs: &[Addr]) -> BTreeMap<Ipv4Addr, Holding> {
    let mut out: BTreeMap<Ipv4Addr, Holding> = ips.iter().map(|&ip| (ip, absent())).collect();
    for addr in addrs {
        let Some(slot) = out.get_mut(&addr.ip) else {
            continue;
        };
        // An index missing from the link dump (created in between) counts
        // as down until the next poll.
        let link = links.iter().find(|l| l.index == addr.index);
        let up = link.is_some_and(|l| l.is_up());
        let iface = link.map(|l| l.name.clone()).unwrap_or_default();
        if slot.held {
            continue;
        }
        if up || slot.iface.is_empty() {
            *slot = Holding { held: up, iface };
        }
    }
    out
}

/// The namespace at `path` as (st_dev, st_ino); `None` when it is gone.
fn ident_of(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Opens a netlink socket inside the namespace at `path` and returns the
/// thread to `own`.
fn open_in(own: &Netns, path: &Path) -> Result<(Rtnl, (u64, u64)), AddrError> {
    let ns = Netns::open(path)?;
    let meta = ns.file().metadata().map_err(|source| NetnsError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    ns.enter()?;
    let sock = Rtnl::open().and_then(|s| s.set_timeout(DUMP_TIMEOUT).map(|()| s));
    // Back to the namespace the thread started in.
    own.enter().map_err(AddrError::Return)?;
    let sock = sock.map_err(|e| AddrError::Socket {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    Ok((sock, (meta.dev(), meta.ino())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
    const OTHER: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 101);

    fn link(index: u32, up: bool, name: &str) -> Link {
        Link {
            index,
            flags: if up { libc::IFF_UP as u32 } else { 0 },
            name: name.into(),
            master: None,
            mac: None,
        }
    }

    fn held(iface: &str) -> Holding {
        Holding {
            held: true,
            iface: iface.into(),
        }
    }

    #[test]
    fn a_nodes_health_changes_only_when_its_polls_start_failing_or_work_again() {
        let mut node = Node {
            name: "n2".into(),
            path: PathBuf::from("/run/netns/x"),
            ident: None,
            sock: None,
            reported: BTreeMap::new(),
            failures: 0,
            first_failure: None,
            observing: true,
        };
        assert_eq!(node.health(1, None), None);
        let e = io::Error::other("dump timed out");
        let down = node.health(2, Some(&e)).unwrap();
        assert_eq!(
            (
                down.t,
                down.node.as_str(),
                down.observing,
                down.detail.as_str()
            ),
            (2, "n2", false, "dump timed out")
        );
        assert_eq!(node.health(3, Some(&e)), None, "still failing: no news");
        let up = node.health(4, None).unwrap();
        assert!(up.observing && up.detail.is_empty());
    }

    #[test]
    fn an_address_is_held_only_on_an_interface_that_is_up() {
        let ips = [VIP, OTHER];
        let links = [link(2, true, "public"), link(3, false, "private")];
        let addrs = [
            Addr {
                index: 3,
                ip: OTHER,
                prefix_len: 24,
            },
            Addr {
                index: 2,
                ip: VIP,
                prefix_len: 24,
            },
            // Not watched.
            Addr {
                index: 2,
                ip: Ipv4Addr::new(10, 99, 0, 1),
                prefix_len: 24,
            },
        ];
        let got = holdings(&ips, &links, &addrs);
        assert_eq!(got.len(), 2);
        assert_eq!(got[&VIP], held("public"));
        assert_eq!(
            got[&OTHER],
            Holding {
                held: false,
                iface: "private".into()
            }
        );
    }

    #[test]
    fn an_up_interface_wins_whatever_the_dump_order() {
        let links = [link(2, false, "public"), link(3, true, "private")];
        for addrs in [
            [
                Addr {
                    index: 2,
                    ip: VIP,
                    prefix_len: 24,
                },
                Addr {
                    index: 3,
                    ip: VIP,
                    prefix_len: 24,
                },
            ],
            [
                Addr {
                    index: 3,
                    ip: VIP,
                    prefix_len: 24,
                },
                Addr {
                    index: 2,
                    ip: VIP,
                    prefix_len: 24,
                },
            ],
        ] {
            assert_eq!(holdings(&[VIP], &links, &addrs)[&VIP], held("private"));
        }
    }

    #[test]
    fn an_address_on_an_unknown_link_is_not_held() {
        let got = holdings(
            &[VIP],
            &[],
            &[Addr {
                index: 9,
                ip: VIP,
                prefix_len: 24,
            }],
        );
        assert_eq!(got[&VIP], absent());
    }

    #[test]
    fn only_taking_releasing_or_moving_a_held_address_is_a_change() {
        let down = Holding {
            held: false,
            iface: "public".into(),
        };
        assert!(is_change(&absent(), &held("public")));
        assert!(is_change(&held("public"), &down));
        assert!(is_change(&held("public"), &held("private")));
        assert!(!is_change(&held("public"), &held("public")));
        assert!(!is_change(&down, &absent()));
    }

    #[test]
    fn a_record_serializes_as_flat_json_with_a_text_address() {
        let seen = AddrSeen {
            t: 7,
            node: "a".into(),
            ip: VIP,
            held: true,
            iface: "public".into(),
        };
        let json = serde_json::to_string(&seen).unwrap();
        assert_eq!(
            json,
            r#"{"t":7,"node":"a","ip":"10.99.0.100","held":true,"iface":"public"}"#
        );
        assert_eq!(serde_json::from_str::<AddrSeen>(&json).unwrap(), seen);
    }

    #[test]
    fn a_missing_namespace_is_an_open_error() {
        let (tx, _rx) = crossbeam_channel::unbounded();
        let err = AddrObserver::start(
            vec![("a".into(), "/run/netns/fltest-none-such".into())],
            vec![VIP],
            Duration::from_millis(5),
            tx,
        )
        .unwrap_err();
        assert!(
            matches!(err, AddrError::Netns(NetnsError::Open { .. })),
            "{err}"
        );
    }

    #[test]
    fn a_zero_interval_and_a_node_listed_twice_are_refused() {
        let (tx, _rx) = crossbeam_channel::unbounded();
        let me: PathBuf = "/proc/self/ns/net".into();
        let err = AddrObserver::start(vec![], vec![VIP], Duration::ZERO, tx.clone()).unwrap_err();
        assert!(matches!(err, AddrError::Invalid(_)), "{err}");
        let err = AddrObserver::start(
            vec![("a".into(), me.clone()), ("a".into(), me)],
            vec![VIP],
            Duration::from_millis(5),
            tx,
        )
        .unwrap_err();
        assert!(err.to_string().contains("node a"), "{err}");
    }
}
