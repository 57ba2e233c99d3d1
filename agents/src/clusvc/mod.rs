//! The service's cluster side, when the configuration database has a
//! `cluster`: UDP sockets on the node's public and private addresses, the
//! membership state machine ([`crate::cluster::membership`]) fed with what
//! they receive, witness arbitration, and resource groups
//! ([`crate::groups`]) brought online and offline by a [`worker`] thread.
//!
//! The service's loop polls [`Cluster::fds`] next to its own and calls
//! [`Cluster::service`] after each wake-up and at [`Cluster::next_deadline`];
//! nothing here blocks for longer than a non-blocking socket call or an
//! `flock(LOCK_NB)`, so the watchdog heartbeat stays on time.
//!
//! The witness rule: the lowest-id member of a quorate view takes the
//! exclusive lock on `witness.lock_file` if nobody holds it; a node whose
//! view is forming (no quorum yet) tries it each interval, but only after
//! `missed_heartbeats` intervals, long enough to hear peers that started with
//! it (else nodes starting together race for it); it gets it only if nobody
//! holds it (a holder's lock is released with its process); a node that
//! loses quorum or is poisoned releases it.
//!
//! This node's own heartbeats are sent by the watchdog
//! ([`crate::clusnet`]), not here.

mod actions;
mod gum;
pub mod worker;

use std::fs::File;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::arp::ProbeTimers;
use crate::clock::monotonic_ns;
use crate::cluster::membership::{Membership, MembershipConfig, Phase};
use crate::cluster::wire::{ClusterKey, ClusterMessage, GroupState, Inbox, Network, NodeId};
use crate::emit::{io_context, Emitter, Level};
use crate::events::{ClusterMessageRejected, EventData, GroupFailed, GroupReason};
use crate::groups::{GroupAction, Groups};
use crate::launch::ClusterConfig;
use crate::StartError;
use worker::{GroupSpec, Job, Report, Reporter};

const COMPONENT: &str = "ClMsg";
const MS: u64 = 1_000_000;

/// The service's cluster side.
pub struct Cluster {
    cfg: ClusterConfig,
    me: NodeId,
    key: ClusterKey,
    inbox: Inbox,
    socks: Vec<(Network, UdpSocket)>,
    membership: Membership,
    groups: Groups,
    specs: Vec<GroupSpec>,
    witness: Option<File>,
    jobs: Sender<Job>,
    reports: Receiver<Report>,
    wake: UnixStream,
    abort: worker::Abort,
    interval_ns: u64,
    next_tick: u64,
    settle_until: u64,
    /// A node still forming its view claims the witness only after this:
    /// long enough to hear its peers, so that nodes starting together do
    /// not race for it, and the lowest id of the view they form takes it.
    witness_grace_until: u64,
    /// This node's place in the global update sequence.
    gum_rx: crate::cluster::gum::GumReceiver,
    /// The issuing side, while this node is the locker.
    gum_tx: Option<crate::cluster::gum::GumIssuer>,
    /// The replicated cluster database: where each group is.
    registry: std::collections::BTreeMap<String, String>,
    /// This start's join: who sent their database
    /// ([`crate::cluster::gum::Join`]).
    join: crate::cluster::gum::Join,
}

fn bad_config(what: String) -> StartError {
    StartError::Io {
        what,
        source: std::io::Error::from(ErrorKind::InvalidInput),
    }
}

impl Cluster {
    /// This service start's incarnation, which the watchdog puts in the
    /// node heartbeats it sends for it.
    pub fn incarnation(&self) -> u64 {
        self.membership.incarnation()
    }

    /// Binds the sockets, starts the worker and the membership as a new
    /// incarnation.
    pub fn start(cfg: &ClusterConfig, node: &str) -> Result<Cluster, StartError> {
        let me = NodeId(cfg.node_id);
        let key = ClusterKey::from_hex(&cfg.key_hex)
            .ok_or_else(|| bad_config("use the cluster key: not hex of 16+ bytes".into()))?;
        let interval_ns = cfg.node_heartbeat_ms.max(1) * MS;
        let mcfg = MembershipConfig {
            nodes: cfg.nodes.iter().map(|n| (NodeId(n.id), n.votes)).collect(),
            witness_votes: cfg.witness.as_ref().map_or(0, |w| w.votes),
            heartbeat_interval_ns: interval_ns,
            missed_threshold: cfg.missed_heartbeats,
            ..MembershipConfig::new(me, &[])
        };
        let membership = Membership::new(mcfg, monotonic_ns())
            .map_err(|e| bad_config(format!("start membership: {e}")))?;
        let mine = cfg
            .nodes
            .iter()
            .find(|n| n.id == cfg.node_id)
            .ok_or_else(|| bad_config(format!("find node {me} in the cluster")))?;
        let mut socks = Vec::new();
        for (net, ip) in [
            (Network::Public, mine.public_ip),
            (Network::Private, mine.private_ip),
        ] {
            let s = UdpSocket::bind((ip, cfg.port))
                .map_err(io_context(format!("bind {ip}:{}", cfg.port)))?;
            s.set_nonblocking(true)
                .map_err(io_context("make a socket non-blocking"))?;
            socks.push((net, s));
        }
        let id_of = |name: &String| {
            cfg.nodes
                .iter()
                .find(|n| &n.name == name)
                .map(|n| NodeId(n.id))
        };
        let groups = Groups::new(
            me,
            cfg.failover_window_ms * MS,
            cfg.groups
                .iter()
                .map(|g| (g.name.clone(), g.owners.iter().filter_map(id_of).collect()))
                .collect(),
        );
        let a = &cfg.arp;
        let probe = a.probe.then(|| ProbeTimers {
            probe_wait: Duration::ZERO,
            probe_num: a.probe_num,
            probe_min: Duration::from_millis(a.probe_interval_ms),
            probe_max: Duration::from_millis(a.probe_interval_ms),
            announce_wait: Duration::from_millis(a.probe_wait_ms),
        });
        let specs: Vec<GroupSpec> = cfg
            .groups
            .iter()
            .map(|g| GroupSpec {
                name: g.name.clone(),
                ip: g.ip,
                prefix_len: g.prefix_len,
                app_port: g.app_port,
                disk: g.disk,
                shared_dir: cfg.shared_dir.clone(),
                probe,
                announce: (
                    a.announce_num,
                    Duration::from_millis(a.announce_interval_ms),
                ),
            })
            .collect();
        // A restarted service owns no address: drop what a killed one left.
        for s in &specs {
            let _ = worker::ip_addr("del", s);
        }
        let (wake, wake_tx) = UnixStream::pair().map_err(io_context("create a socket pair"))?;
        wake.set_nonblocking(true)
            .map_err(io_context("make a socket non-blocking"))?;
        let (jobs, job_rx) = mpsc::channel();
        let (rep_tx, reports) = mpsc::channel();
        let abort: worker::Abort = Arc::new(Mutex::new(false));
        let rep = Reporter::new(node, rep_tx, wake_tx);
        let ab = abort.clone();
        std::thread::spawn(move || worker::run(job_rx, rep, ab));
        Ok(Cluster {
            cfg: cfg.clone(),
            me,
            key: key.clone(),
            inbox: Inbox::new(key),
            socks,
            membership,
            groups,
            specs,
            witness: None,
            jobs,
            reports,
            wake,
            abort,
            interval_ns,
            next_tick: monotonic_ns(),
            settle_until: 0,
            gum_rx: crate::cluster::gum::GumReceiver::new(0),
            gum_tx: None,
            registry: std::collections::BTreeMap::new(),
            join: crate::cluster::gum::Join::default(),
            witness_grace_until: monotonic_ns()
                + interval_ns * u64::from(cfg.missed_heartbeats.max(1)),
        })
    }

    /// File descriptors to poll for input.
    pub fn fds(&self) -> Vec<RawFd> {
        let mut v: Vec<RawFd> = self.socks.iter().map(|(_, s)| s.as_raw_fd()).collect();
        v.push(self.wake.as_raw_fd());
        v
    }

    /// When [`service`](Self::service) must run next at the latest.
    pub fn next_deadline(&self) -> u64 {
        self.next_tick
    }

    /// Handles what arrived and what is due. `Err(n)`: poisoned by node `n`;
    /// the groups are already offline and the service must exit at once.
    pub fn service(&mut self, em: &mut Emitter) -> Result<(), NodeId> {
        let mut buf = [0u8; 2048];
        let mut wake = [0u8; 64];
        while matches!(std::io::Read::read(&mut &self.wake, &mut wake), Ok(n) if n > 0) {}
        while let Ok(r) = self.reports.try_recv() {
            self.on_report(r, em);
        }
        for i in 0..self.socks.len() {
            let net = self.socks[i].0;
            while let Ok((n, from)) = self.socks[i].1.recv_from(&mut buf) {
                let now = monotonic_ns();
                match self.inbox.accept(&buf[..n]) {
                    Err(e) => {
                        let mut ev = em
                            .event(ClusterMessageRejected {
                                reason: e.to_string(),
                                sender: from.to_string(),
                                network: net.name().to_string(),
                            })
                            .message(format!("Dropped a cluster datagram from {from}: {e}."));
                        em.emit(&mut ev, Level::Warn, COMPONENT);
                    }
                    Ok(ClusterMessage::GroupEvent { from, group, state }) => {
                        if self.membership.members().contains(&from) && from != self.me {
                            self.groups.on_fact(from, &group, state, now);
                            self.record_fact(from, &group, state, em)?;
                        }
                    }
                    Ok(ClusterMessage::GumUpdate { from, seq, payload }) => {
                        self.on_gum_update(from, seq, payload, em);
                    }
                    Ok(m @ (ClusterMessage::GumAck { .. } | ClusterMessage::GumFail { .. })) => {
                        self.on_gum_answer(&m, em)?;
                    }
                    Ok(m) => {
                        let acts = self.membership.on_message(&m, now);
                        self.apply(acts, em)?;
                    }
                }
            }
        }
        let now = monotonic_ns();
        if now >= self.next_tick {
            while self.next_tick <= now {
                self.next_tick += self.interval_ns;
            }
            self.tick(now, em)?;
        }
        self.decide(em);
        Ok(())
    }

    fn tick(&mut self, now: u64, em: &mut Emitter) -> Result<(), NodeId> {
        let acts = self.membership.on_tick(now);
        self.apply(acts, em)?;
        self.arbitrate_witness(now, em)?;
        self.gum_tick(now, em)?;
        self.ask_to_join();
        // This node's heartbeats are not sent here: the watchdog sends them
        // (crate::clusnet), so a hung service does not stop them.
        let lowest = self.membership.members().first() == Some(&self.me);
        for (group, state) in self
            .groups
            .facts_to_repeat(lowest && self.membership.has_quorum())
        {
            self.broadcast_group(group, state);
        }
        Ok(())
    }

    fn arbitrate_witness(&mut self, now: u64, em: &mut Emitter) -> Result<(), NodeId> {
        let Some(w) = self.cfg.witness.as_ref() else {
            return Ok(());
        };
        let phase = self.membership.phase();
        let want = match phase {
            Phase::Forming => now >= self.witness_grace_until,
            Phase::Quorate => self.witness.is_some() || self.membership.members()[0] == self.me,
            Phase::NoQuorum | Phase::Poisoned => false,
        };
        if !want {
            self.witness = None;
        } else if self.witness.is_none() {
            self.witness = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&w.lock_file)
                .ok()
                .filter(
                    |f| unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0,
                );
            if self.witness.is_some() {
                em.log(Level::Info, "QUORUM", "took the witness lock");
            }
        }
        let acts = self.membership.set_witness(self.witness.is_some(), now);
        self.apply(acts, em)
    }

    fn decide(&mut self, em: &mut Emitter) {
        let now = monotonic_ns();
        let quorate = self.membership.has_quorum() && now >= self.settle_until;
        let members = self.membership.members();
        if !self.join.is_done() {
            if !self
                .join
                .complete(self.me, &members, self.membership.has_quorum())
            {
                return;
            }
            self.joined(now, em);
        }
        let acting = quorate || !self.membership.has_quorum();
        if !acting {
            return;
        }
        for act in self.groups.decide(&members, quorate, now) {
            match act {
                GroupAction::BringOnline(g) => {
                    if let Some(spec) = self.spec(&g) {
                        let _ = self.jobs.send(Job::Online(spec));
                    }
                }
                GroupAction::TakeOffline { group, reason } => {
                    if let Some(spec) = self.spec(&group) {
                        let _ = self.jobs.send(Job::Offline { spec, reason });
                    }
                    self.broadcast_group(group, GroupState::Offline);
                }
                GroupAction::DeclareFailed { group, failed_on } => {
                    let names: Vec<String> = failed_on.iter().map(|n| self.name_of(*n)).collect();
                    // 1205: the id the Windows cluster service logs when it
                    // cannot bring a group online anywhere; no seed quotes
                    // its text, so the wording is ours.
                    let mut ev = em
                        .event(GroupFailed {
                            group: group.clone(),
                            failed_on: names,
                        })
                        .message(format!("Cluster resource group '{group}' failed."));
                    em.emit(&mut ev, Level::Err, "FM");
                    let _ = self.record_fact(self.me, &group, GroupState::Failed, em);
                    self.broadcast_group(group, GroupState::Failed);
                }
            }
        }
    }

    fn on_report(&mut self, r: Report, em: &mut Emitter) {
        match r {
            Report::Event(mut ev, level) => em.emit(&mut ev, level, "FM"),
            Report::Online(g) => {
                self.groups.local_online(&g);
                let _ = self.record_fact(self.me, &g, GroupState::Online, em);
                self.broadcast_group(g, GroupState::Online);
            }
            Report::Failed(g) => {
                self.groups.local_failed(&g, monotonic_ns());
                self.broadcast_group(g, GroupState::AttemptFailed);
            }
        }
    }

    fn spec(&self, group: &str) -> Option<GroupSpec> {
        self.specs.iter().find(|s| s.name == group).cloned()
    }

    /// Takes every group offline now, from this thread: no address is
    /// added after this returns. For SIGTERM and poison.
    pub fn shutdown(&mut self, reason: &str, em: &mut Emitter) {
        let held = self.groups.held();
        {
            let mut aborted = self.abort.lock().unwrap_or_else(|p| p.into_inner());
            *aborted = true;
            for s in &self.specs {
                let _ = worker::ip_addr("del", s);
            }
        }
        for g in held {
            self.groups.local_offline(&g);
            // 1203, as in the worker: the wording is ours.
            let mut ev = em
                .event(EventData::GroupOffline(GroupReason {
                    group: g.clone(),
                    reason: reason.to_string(),
                }))
                .message(format!("Cluster group '{g}' is offline ({reason})."));
            em.emit(&mut ev, Level::Info, "FM");
            self.broadcast_group(g, GroupState::Offline);
        }
        self.witness = None;
    }

    fn broadcast_group(&self, group: String, state: GroupState) {
        let msg = ClusterMessage::GroupEvent {
            from: self.me,
            group,
            state,
        };
        self.send_all(&msg, None);
    }

    fn send_all(&self, msg: &ClusterMessage, only: Option<Network>) {
        for n in self.cfg.nodes.iter().filter(|n| n.id != self.me.0) {
            self.send_to(NodeId(n.id), msg, only);
        }
    }

    fn send_to(&self, to: NodeId, msg: &ClusterMessage, only: Option<Network>) {
        let Ok(bytes) = msg.encode(&self.key) else {
            return;
        };
        let Some(node) = self.cfg.nodes.iter().find(|n| n.id == to.0) else {
            return;
        };
        for (net, sock) in &self.socks {
            if only.is_some_and(|o| o != *net) {
                continue;
            }
            let ip: Ipv4Addr = match net {
                Network::Public => node.public_ip,
                Network::Private => node.private_ip,
            };
            let _ = sock.send_to(&bytes, SocketAddr::from((ip, self.cfg.port)));
        }
    }
}
