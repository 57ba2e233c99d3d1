//! One node's view of cluster membership and quorum, as a pure state
//! machine: heartbeats, ticks, poison packets and GUM failures in, actions
//! out. It does no I/O and reads no clock; the caller passes the time
//! (CLOCK_MONOTONIC ns) of each input and carries out the actions.
//!
//! The rules (`../shared/MODEL.md`, "Membership and failover"; seed 004):
//!
//! - A link (peer, network) is lost when nothing was heard on it for more
//!   than `missed_threshold` heartbeat intervals: 1123, once; the next
//!   heartbeat on it regains it: 1122, once.
//! - A member lost on every network is down (1135): the nodes that still
//!   talk regroup without it. Connectivity is taken as seen from this node;
//!   there is no agreement round (a later change may add one over
//!   [`ClusterMessage::Regroup`]).
//! - Quorum: this side holds it while its votes are more than half of all
//!   votes (every node's plus the witness's). A side that had quorum and
//!   loses it must stop its resources ([`Action::QuorumLost`]) and stays out
//!   for this incarnation: it never readmits peers, it waits to be poisoned
//!   or restarted, and rejoins as a new incarnation.
//! - The witness: its vote counts for this side only while the caller says
//!   this side holds it ([`Membership::set_witness`]). The caller arbitrates
//!   it the way the modelled system does, with an exclusive reservation on
//!   the witness (disk or file share) that only one side can take: the
//!   tie-breaker is whoever holds that reservation. This module only counts.
//! - A peer that the side holding quorum declared down is evicted, with the
//!   incarnation it had. If it is heard again with that incarnation (it kept
//!   running and still talks), it is sent a poison packet, at most once per
//!   heartbeat interval. Heard with a newer incarnation (its service
//!   restarted), it is admitted again.
//! - A member that fails a global update is evicted and poisoned the same way
//!   ([`Membership::on_gum_failed`]).
//! - A poison packet addressed to this node stops it at once
//!   ([`Action::Poisoned`]: 1118 and the cluster-log lines of seed 004);
//!   after that every input is ignored.

use std::collections::BTreeMap;

use super::wire::{ClusterMessage, Network, NodeId, PoisonReason};
use crate::emit::Level;
use crate::events::EventKind;

/// The modelled system's heartbeat interval: 1.2 s.
pub const DEFAULT_HEARTBEAT_INTERVAL_NS: u64 = 1_200_000_000;
/// The modelled system's missed-heartbeat threshold: 6.
pub const DEFAULT_MISSED_THRESHOLD: u32 = 6;

/// The cluster as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipConfig {
    /// This node.
    pub me: NodeId,
    /// Every node of the cluster (this one included) with its votes.
    pub nodes: Vec<(NodeId, u32)>,
    /// The witness's votes; 0 when there is no witness.
    pub witness_votes: u32,
    /// Time between heartbeats on each network.
    pub heartbeat_interval_ns: u64,
    /// Intervals without a heartbeat after which a link is lost.
    pub missed_threshold: u32,
    /// The networks heartbeats go over.
    pub networks: Vec<Network>,
}

impl MembershipConfig {
    /// The modelled defaults: one vote per node, no witness, 1.2 s, 6
    /// missed, both networks.
    pub fn new(me: NodeId, nodes: &[NodeId]) -> Self {
        MembershipConfig {
            me,
            nodes: nodes.iter().map(|n| (*n, 1)).collect(),
            witness_votes: 0,
            heartbeat_interval_ns: DEFAULT_HEARTBEAT_INTERVAL_NS,
            missed_threshold: DEFAULT_MISSED_THRESHOLD,
            networks: Network::ALL.to_vec(),
        }
    }

    /// With a witness holding `votes`.
    pub fn with_witness(mut self, votes: u32) -> Self {
        self.witness_votes = votes;
        self
    }

    fn silence_limit_ns(&self) -> u64 {
        self.heartbeat_interval_ns
            .saturating_mul(u64::from(self.missed_threshold))
    }
}

/// Why a membership configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `me` is not among `nodes`.
    #[error("node {0} is not a node of the cluster")]
    NotANode(NodeId),
    /// A node is listed twice.
    #[error("node {0} is listed twice")]
    Duplicate(NodeId),
    /// Interval or threshold is zero.
    #[error("heartbeat interval and missed threshold must be positive")]
    ZeroTiming,
    /// No network, or one listed twice.
    #[error("networks must be listed, each once")]
    Networks,
    /// Nobody has a vote.
    #[error("the cluster has no votes")]
    NoVotes,
}

/// Where this node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Started, has not had quorum yet: admits peers as it hears them.
    Forming,
    /// This side holds quorum: runs resources, evicts and poisons.
    Quorate,
    /// Had quorum and lost it: resources stopped; readmits nobody.
    NoQuorum,
    /// Received a poison packet: the service must have stopped.
    Poisoned,
}

/// What the caller must do or record after an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Lost communication with `peer` on `network` (1123).
    PeerLost {
        /// The peer.
        peer: NodeId,
        /// The network.
        network: Network,
    },
    /// (Re)established communication with `peer` on `network` (1122).
    PeerRegained {
        /// The peer.
        peer: NodeId,
        /// The network.
        network: Network,
    },
    /// `peer` was lost on every network and left membership (1135).
    PeerDown {
        /// The peer.
        peer: NodeId,
    },
    /// The new membership view: broadcast it as a `Regroup` message.
    Regroup {
        /// The view's number on this node.
        epoch: u64,
        /// The members, sorted, this node included.
        members: Vec<NodeId>,
    },
    /// This side now holds quorum: it may run resources.
    QuorumGained {
        /// This side's votes.
        votes: u32,
        /// All votes.
        total: u32,
    },
    /// This side lost quorum: stop every resource now (1177).
    QuorumLost {
        /// This side's votes.
        votes: u32,
        /// All votes.
        total: u32,
    },
    /// Send a poison packet to `to` (on every network).
    SendPoison {
        /// The evicted node.
        to: NodeId,
        /// Why.
        reason: PoisonReason,
    },
    /// A poison packet from `from`: stop the service at once (1118).
    Poisoned {
        /// The node that sent it.
        from: NodeId,
    },
}

impl Action {
    /// The event the caller reports for this action.
    pub fn event_kind(&self) -> EventKind {
        match self {
            Action::PeerLost { .. } => EventKind::PeerLost,
            Action::PeerRegained { .. } => EventKind::PeerRegained,
            Action::PeerDown { .. } => EventKind::PeerDown,
            Action::Regroup { .. } => EventKind::Regrouped,
            Action::QuorumGained { .. } => EventKind::QuorumGained,
            Action::QuorumLost { .. } => EventKind::QuorumLost,
            Action::SendPoison { .. } => EventKind::PoisonSent,
            Action::Poisoned { .. } => EventKind::Poisoned,
        }
    }

    /// The event's human text, in the modelled system's words.
    pub fn message(&self) -> String {
        match self {
            Action::PeerLost { peer, network } => format!(
                "The node lost communication with cluster node 'Node{peer}' on network '{}'.",
                network.name()
            ),
            Action::PeerRegained { peer, network } => format!(
                "The node (re)established communication with cluster node 'Node{peer}' on network '{}'.",
                network.name()
            ),
            // 1135 and 1177: KB 892422 lists both as ClusSvc events (a node
            // removed from membership, quorum lost); no seed quotes their
            // text, so the wording is ours.
            Action::PeerDown { peer } => {
                format!("Cluster node Node{peer} was removed from the active cluster membership.")
            }
            Action::Regroup { epoch, members } => {
                let m: Vec<String> = members.iter().map(|n| n.to_string()).collect();
                format!("Regroup {epoch}: members {}.", m.join(", "))
            }
            Action::QuorumGained { votes, total } => {
                format!("This side holds quorum ({votes} of {total} votes).")
            }
            Action::QuorumLost { votes, total } => format!(
                "The Cluster service is stopping its resources because quorum was lost ({votes} of {total} votes)."
            ),
            Action::SendPoison { to, reason } => {
                format!("Sending a poison packet to node {to} ({reason:?}).")
            }
            Action::Poisoned { from } => {
                crate::events::texts::terminated_as_requested(from.0)
            }
        }
    }
}

/// The cluster-log lines of a received poison packet, as seed 004 shows them
/// on the poisoned node: `(level, component, text)`.
pub fn poison_log_lines(me: NodeId, from: NodeId) -> [(Level, &'static str, String); 2] {
    [
        (Level::Info, "ClMsg", "Received poison event.".to_string()),
        (
            Level::Err,
            "RGP",
            format!("Node {me}: REGROUP ERROR: poison packet received from node {from}"),
        ),
    ]
}

#[derive(Debug, Clone, Copy)]
struct Link {
    last_heard: u64,
    up: bool,
}

#[derive(Debug, Clone, Default)]
struct Peer {
    votes: u32,
    links: BTreeMap<Network, Link>,
    member: bool,
    incarnation: Option<u64>,
    /// Set when the side holding quorum evicted it: its incarnation then.
    evicted: Option<u64>,
    last_poison: Option<u64>,
}

impl Peer {
    fn up_anywhere(&self) -> bool {
        self.links.values().any(|l| l.up)
    }
}

/// One node's membership state machine.
#[derive(Debug, Clone)]
pub struct Membership {
    cfg: MembershipConfig,
    my_votes: u32,
    peers: BTreeMap<NodeId, Peer>,
    phase: Phase,
    witness_held: bool,
    epoch: u64,
    incarnation: u64,
    heartbeat_seq: u64,
}

impl Membership {
    /// A node that just started, alone in its view, as `incarnation` (a new
    /// value each time the service starts, e.g. its start time). Call
    /// [`on_tick`](Self::on_tick) at once: a node with enough votes alone
    /// gains quorum there.
    pub fn new(cfg: MembershipConfig, incarnation: u64) -> Result<Self, ConfigError> {
        if cfg.heartbeat_interval_ns == 0 || cfg.missed_threshold == 0 {
            return Err(ConfigError::ZeroTiming);
        }
        let mut nets = cfg.networks.clone();
        nets.sort();
        nets.dedup();
        if nets.is_empty() || nets.len() != cfg.networks.len() {
            return Err(ConfigError::Networks);
        }
        let mut peers = BTreeMap::new();
        let mut my_votes = None;
        for &(id, votes) in &cfg.nodes {
            if id == cfg.me {
                if my_votes.replace(votes).is_some() {
                    return Err(ConfigError::Duplicate(id));
                }
            } else if peers
                .insert(
                    id,
                    Peer {
                        votes,
                        ..Peer::default()
                    },
                )
                .is_some()
            {
                return Err(ConfigError::Duplicate(id));
            }
        }
        let my_votes = my_votes.ok_or(ConfigError::NotANode(cfg.me))?;
        let m = Membership {
            cfg,
            my_votes,
            peers,
            phase: Phase::Forming,
            witness_held: false,
            epoch: 0,
            incarnation,
            heartbeat_seq: 0,
        };
        if m.total_votes() == 0 {
            return Err(ConfigError::NoVotes);
        }
        Ok(m)
    }

    /// Where this node stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether this side holds quorum (and so may run resources).
    pub fn has_quorum(&self) -> bool {
        self.phase == Phase::Quorate
    }

    /// The current members, sorted, this node included.
    pub fn members(&self) -> Vec<NodeId> {
        let mut m: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.member)
            .map(|(id, _)| *id)
            .collect();
        m.push(self.cfg.me);
        m.sort();
        m
    }

    /// The number of the current membership view.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The node that issues global updates: the lowest-numbered member,
    /// while this side holds quorum.
    pub fn locker(&self) -> Option<NodeId> {
        self.has_quorum().then(|| self.members()[0])
    }

    /// This side's votes and all votes.
    pub fn votes(&self) -> (u32, u32) {
        let mut side = self.my_votes;
        for p in self.peers.values().filter(|p| p.member) {
            side += p.votes;
        }
        if self.witness_held {
            side += self.cfg.witness_votes;
        }
        (side, self.total_votes())
    }

    fn total_votes(&self) -> u32 {
        self.my_votes + self.peers.values().map(|p| p.votes).sum::<u32>() + self.cfg.witness_votes
    }

    /// This node's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// This node's heartbeats for the next interval, one per network.
    pub fn heartbeats(&mut self) -> Vec<ClusterMessage> {
        self.heartbeat_seq += 1;
        self.cfg
            .networks
            .iter()
            .map(|&network| ClusterMessage::Heartbeat {
                from: self.cfg.me,
                network,
                seq: self.heartbeat_seq,
                incarnation: self.incarnation,
            })
            .collect()
    }

    /// The earliest time a link can be lost, for the caller's timer (it may
    /// also just tick every heartbeat interval).
    pub fn next_deadline(&self) -> Option<u64> {
        let limit = self.cfg.silence_limit_ns();
        self.peers
            .values()
            .flat_map(|p| p.links.values())
            .filter(|l| l.up)
            .map(|l| l.last_heard.saturating_add(limit).saturating_add(1))
            .min()
    }

    /// An authenticated message (from a [`super::wire::Inbox`]) arrived at
    /// `now`. GUM messages are not handled here: see [`super::gum`].
    pub fn on_message(&mut self, msg: &ClusterMessage, now: u64) -> Vec<Action> {
        match *msg {
            ClusterMessage::Heartbeat {
                from,
                network,
                incarnation,
                ..
            } => self.on_heartbeat(from, network, incarnation, now),
            ClusterMessage::Poison { from, to, .. } => self.on_poison(from, to, now),
            _ => Vec::new(),
        }
    }

    /// A heartbeat from `peer` (as `incarnation`) arrived on `network` at
    /// `now`. Heartbeats from unknown nodes or networks are ignored.
    pub fn on_heartbeat(
        &mut self,
        peer: NodeId,
        network: Network,
        incarnation: u64,
        now: u64,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if self.phase == Phase::Poisoned || !self.cfg.networks.contains(&network) {
            return out;
        }
        let interval = self.cfg.heartbeat_interval_ns;
        let (phase, me) = (self.phase, self.cfg.me);
        let Some(p) = self.peers.get_mut(&peer) else {
            return out;
        };
        let link = p.links.entry(network).or_insert(Link {
            last_heard: now,
            up: false,
        });
        link.last_heard = now;
        if !link.up {
            link.up = true;
            out.push(Action::PeerRegained { peer, network });
        }
        if p.member {
            p.incarnation = Some(p.incarnation.map_or(incarnation, |i| i.max(incarnation)));
            return out;
        }
        match p.evicted {
            Some(evicted_as) if incarnation <= evicted_as => {
                // Seed 004: the evicted node still talks. Only the side
                // holding quorum poisons it.
                let due = p
                    .last_poison
                    .is_none_or(|t| now >= t.saturating_add(interval));
                if phase == Phase::Quorate && due {
                    p.last_poison = Some(now);
                    out.push(Action::SendPoison {
                        to: peer,
                        reason: PoisonReason::Evicted,
                    });
                }
            }
            _ if phase != Phase::NoQuorum && peer != me => {
                p.evicted = None;
                p.last_poison = None;
                p.member = true;
                p.incarnation = Some(incarnation);
                self.regroup(&mut out);
                self.recheck_quorum(&mut out);
            }
            _ => {}
        }
        out
    }

    /// Time passed: links silent for more than `missed_threshold` intervals
    /// are lost; members lost everywhere are down.
    pub fn on_tick(&mut self, now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.phase == Phase::Poisoned {
            return out;
        }
        let limit = self.cfg.silence_limit_ns();
        let quorate = self.phase == Phase::Quorate;
        let mut changed = false;
        for (&peer, p) in self.peers.iter_mut() {
            for (&network, link) in p.links.iter_mut() {
                if link.up && now.saturating_sub(link.last_heard) > limit {
                    link.up = false;
                    out.push(Action::PeerLost { peer, network });
                }
            }
            if p.member && !p.up_anywhere() {
                p.member = false;
                if quorate {
                    p.evicted = Some(p.incarnation.unwrap_or(0));
                }
                out.push(Action::PeerDown { peer });
                changed = true;
            }
        }
        if changed {
            self.regroup(&mut out);
        }
        self.recheck_quorum(&mut out);
        out
    }

    /// Whether this side holds the witness, as the caller's arbitration
    /// found at `now` (see the module doc).
    pub fn set_witness(&mut self, held: bool, _now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.phase == Phase::Poisoned {
            return out;
        }
        self.witness_held = held;
        self.recheck_quorum(&mut out);
        out
    }

    /// A poison packet from `from` addressed to `to` arrived at `now`. One
    /// for this node from another node of the cluster stops it at once.
    pub fn on_poison(&mut self, from: NodeId, to: NodeId, _now: u64) -> Vec<Action> {
        if self.phase == Phase::Poisoned || to != self.cfg.me || !self.peers.contains_key(&from) {
            return Vec::new();
        }
        self.phase = Phase::Poisoned;
        vec![Action::Poisoned { from }]
    }

    /// Node `node` failed (or fell behind on) a global update, as the GUM
    /// issuer found at `now`: the side holding quorum evicts and poisons it.
    pub fn on_gum_failed(&mut self, node: NodeId, now: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.phase != Phase::Quorate {
            return out;
        }
        let Some(p) = self.peers.get_mut(&node) else {
            return out;
        };
        let was_member = p.member;
        if was_member {
            p.member = false;
            p.evicted = Some(p.incarnation.unwrap_or(0));
        }
        p.last_poison = Some(now);
        if was_member {
            out.push(Action::PeerDown { peer: node });
            self.regroup(&mut out);
        }
        out.push(Action::SendPoison {
            to: node,
            reason: PoisonReason::GumFailed,
        });
        self.recheck_quorum(&mut out);
        out
    }

    fn regroup(&mut self, out: &mut Vec<Action>) {
        self.epoch += 1;
        out.push(Action::Regroup {
            epoch: self.epoch,
            members: self.members(),
        });
    }

    fn recheck_quorum(&mut self, out: &mut Vec<Action>) {
        let (votes, total) = self.votes();
        let majority = u64::from(votes) * 2 > u64::from(total);
        match (self.phase, majority) {
            (Phase::Forming, true) => {
                self.phase = Phase::Quorate;
                out.push(Action::QuorumGained { votes, total });
            }
            (Phase::Quorate, false) => {
                self.phase = Phase::NoQuorum;
                out.push(Action::QuorumLost { votes, total });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
