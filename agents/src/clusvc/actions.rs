//! The service's cluster side, continued: carrying out the membership's
//! actions (events, regroup and poison messages, stopping on a poison).
//! No decisions here beyond what [`Action`] says.

use crate::clock::monotonic_ns;
use crate::cluster::membership::{poison_log_lines, Action};
use crate::cluster::wire::{ClusterMessage, NodeId};
use crate::emit::{Emitter, Level};

use super::Cluster;

impl Cluster {
    pub(super) fn name_of(&self, id: NodeId) -> String {
        let node = self.cfg.nodes.iter().find(|n| n.id == id.0);
        node.map_or_else(|| id.to_string(), |n| n.name.clone())
    }

    pub(super) fn apply(&mut self, acts: Vec<Action>, em: &mut Emitter) -> Result<(), NodeId> {
        for a in acts {
            let mut ev = em.event(a.event_kind()).message(a.message());
            let mut level = Level::Info;
            let now = monotonic_ns();
            match &a {
                Action::PeerLost { peer, network } | Action::PeerRegained { peer, network } => {
                    ev = ev.with("peer", self.name_of(*peer)).with("peer_id", peer.0);
                    ev = ev.with("network", network.name());
                    if matches!(a, Action::PeerLost { .. }) {
                        level = Level::Warn;
                    }
                }
                Action::PeerDown { peer } => {
                    ev = ev.with("peer", self.name_of(*peer)).with("peer_id", peer.0);
                    self.groups.on_member_down(*peer);
                    self.gum_forget(*peer);
                    level = Level::Warn;
                }
                Action::Regroup { epoch, members } => {
                    let names: Vec<String> = members.iter().map(|m| self.name_of(*m)).collect();
                    ev = ev.with("epoch", *epoch).with("members", names);
                    let msg = ClusterMessage::Regroup {
                        from: self.me,
                        epoch: *epoch,
                        members: members.clone(),
                    };
                    self.send_all(&msg, None);
                    self.settle_until = now + 2 * self.interval_ns;
                }
                Action::QuorumGained { votes, total } | Action::QuorumLost { votes, total } => {
                    ev = ev.with("votes", *votes).with("total", *total);
                    self.settle_until = now + 2 * self.interval_ns;
                    if matches!(a, Action::QuorumLost { .. }) {
                        self.witness = None;
                        level = Level::Err;
                    }
                }
                Action::SendPoison { to, reason } => {
                    ev = ev.with("to", self.name_of(*to)).with("to_id", to.0);
                    ev = ev.with("reason", format!("{reason:?}").to_lowercase());
                    let msg = ClusterMessage::Poison {
                        from: self.me,
                        to: *to,
                        reason: *reason,
                    };
                    self.send_to(*to, &msg, None);
                }
                Action::Poisoned { from } => {
                    for (lvl, comp, text) in poison_log_lines(self.me, *from) {
                        em.log(lvl, comp, &text);
                    }
                    self.witness = None;
                    let ev = ev
                        .with("from", self.name_of(*from))
                        .with("from_id", from.0)
                        .message(format!(
                            "The Cluster service was terminated as requested by node {from}"
                        ));
                    em.emit(&ev, Level::Err, "RGP");
                    self.shutdown("poisoned", em);
                    return Err(*from);
                }
            }
            em.emit(&ev, level, "RGP");
        }
        Ok(())
    }
}
