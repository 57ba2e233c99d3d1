//! The service's cluster side, continued: carrying out the membership's
//! actions (events, regroup and poison messages, stopping on a poison).
//! No decisions here beyond what [`Action`] says.

use crate::clock::monotonic_ns;
use crate::cluster::membership::{poison_log_lines, Action};
use crate::cluster::wire::{ClusterMessage, NodeId};
use crate::emit::{Emitter, Level};
use crate::events::{EventData, PeerDown, PeerLink, PoisonSent, Poisoned, Quorum, Regrouped};

use super::Cluster;

impl Cluster {
    pub(super) fn name_of(&self, id: NodeId) -> String {
        let node = self.cfg.nodes.iter().find(|n| n.id == id.0);
        node.map_or_else(|| id.to_string(), |n| n.name.clone())
    }

    pub(super) fn apply(&mut self, acts: Vec<Action>, em: &mut Emitter) -> Result<(), NodeId> {
        for a in acts {
            let mut level = Level::Info;
            let mut down = None;
            let now = monotonic_ns();
            let data: EventData = match &a {
                Action::PeerLost { peer, network } | Action::PeerRegained { peer, network } => {
                    let link = PeerLink {
                        peer: self.name_of(*peer),
                        peer_id: peer.0,
                        network: network.name().to_string(),
                    };
                    if matches!(a, Action::PeerLost { .. }) {
                        level = Level::Warn;
                        EventData::PeerLost(link)
                    } else {
                        EventData::PeerRegained(link)
                    }
                }
                Action::PeerDown { peer } => {
                    self.groups.on_member_down(*peer);
                    self.gum_forget(*peer);
                    down = Some(*peer);
                    level = Level::Warn;
                    PeerDown {
                        peer: self.name_of(*peer),
                        peer_id: peer.0,
                    }
                    .into()
                }
                Action::Regroup { epoch, members } => {
                    let names: Vec<String> = members.iter().map(|m| self.name_of(*m)).collect();
                    let msg = ClusterMessage::Regroup {
                        from: self.me,
                        epoch: *epoch,
                        members: members.clone(),
                    };
                    self.send_all(&msg, None);
                    self.settle_until = now + 2 * self.interval_ns;
                    Regrouped {
                        epoch: *epoch,
                        members: names,
                    }
                    .into()
                }
                Action::QuorumGained { votes, total } | Action::QuorumLost { votes, total } => {
                    let q = Quorum {
                        votes: *votes,
                        total: *total,
                    };
                    self.settle_until = now + 2 * self.interval_ns;
                    if matches!(a, Action::QuorumLost { .. }) {
                        self.witness = None;
                        level = Level::Err;
                        EventData::QuorumLost(q)
                    } else {
                        EventData::QuorumGained(q)
                    }
                }
                Action::SendPoison { to, reason } => {
                    let msg = ClusterMessage::Poison {
                        from: self.me,
                        to: *to,
                        reason: *reason,
                    };
                    self.send_to(*to, &msg, None);
                    PoisonSent {
                        to: self.name_of(*to),
                        to_id: to.0,
                        reason: format!("{reason:?}").to_lowercase(),
                    }
                    .into()
                }
                Action::Poisoned { from } => {
                    let mut cluster_log = Vec::new();
                    for (lvl, comp, text) in poison_log_lines(self.me, *from) {
                        em.log(lvl, comp, &text);
                        cluster_log.push(format!("{} [{comp}] {text}", lvl.as_str()));
                    }
                    self.witness = None;
                    let data = Poisoned {
                        from: self.name_of(*from),
                        from_id: from.0,
                        cluster_log,
                    };
                    // Seed 004: Error, ClusNet, 1118, this exact text.
                    let mut ev = em
                        .event(data)
                        .message(crate::events::texts::terminated_as_requested(from.0));
                    debug_assert_eq!(ev.kind(), a.event_kind());
                    em.emit(&mut ev, Level::Err, "RGP");
                    self.shutdown("poisoned", em);
                    return Err(*from);
                }
            };
            debug_assert_eq!(data.kind(), a.event_kind());
            let mut ev = em.event(data).message(a.message());
            em.emit(&mut ev, level, "RGP");
            if let Some(peer) = down {
                // After its 1135: the locker records the node down.
                self.record_node(peer, false, em);
            }
        }
        Ok(())
    }
}
