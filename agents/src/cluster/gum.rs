//! The global update manager (GUM): cluster-wide updates applied in one
//! order on every node.
//!
//! One node of the side holding quorum issues updates (the locker: the
//! lowest-numbered member, [`super::membership::Membership::locker`]); each
//! carries the next cluster-wide sequence number. A [`GumReceiver`] on every
//! node delivers them strictly in order; a node that cannot apply one, or
//! receives one out of order, answers `GumFail`. The issuer's [`GumIssuer`]
//! tracks the answers and names the nodes that failed or did not answer in
//! time: the membership then evicts and poisons them
//! ([`super::membership::Membership::on_gum_failed`]).
//!
//! It does no I/O, reads no clock and does not interpret payloads: the
//! caller applies them and reports the outcome.

use std::collections::{BTreeMap, BTreeSet};

use super::wire::{ClusterMessage, NodeId};

/// What a receiver should do with an update it was handed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The next in order: apply it, then call [`GumReceiver::applied`] and
    /// answer `GumAck`, or answer `GumFail` if applying failed.
    Apply,
    /// Already applied (a resend): answer `GumAck` again, apply nothing.
    Duplicate,
    /// A gap: an earlier update is missing. Answer `GumFail`; the issuer
    /// poisons this node, which rejoins and catches up on restart.
    OutOfOrder {
        /// The sequence number this node expected.
        expected: u64,
    },
}

/// A node's position in the update sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GumReceiver {
    last_applied: u64,
}

impl GumReceiver {
    /// A receiver that has applied everything up to `last_applied`
    /// (0: nothing; sequence numbers start at 1).
    pub fn new(last_applied: u64) -> Self {
        GumReceiver { last_applied }
    }

    /// The last update applied.
    pub fn last_applied(&self) -> u64 {
        self.last_applied
    }

    /// Update `seq` arrived.
    pub fn deliver(&self, seq: u64) -> Delivery {
        if seq <= self.last_applied {
            Delivery::Duplicate
        } else if seq == self.last_applied + 1 {
            Delivery::Apply
        } else {
            Delivery::OutOfOrder {
                expected: self.last_applied + 1,
            }
        }
    }

    /// Update `seq` (the one [`deliver`](Self::deliver) said to apply) was
    /// applied. Returns false, changing nothing, if it was not the next one.
    pub fn applied(&mut self, seq: u64) -> bool {
        if seq != self.last_applied + 1 {
            return false;
        }
        self.last_applied = seq;
        true
    }

    /// The answer to send for update `seq` after handling it.
    pub fn answer(&self, me: NodeId, seq: u64) -> ClusterMessage {
        if seq <= self.last_applied {
            ClusterMessage::GumAck { from: me, seq }
        } else {
            ClusterMessage::GumFail { from: me, seq }
        }
    }
}

/// What the issuer learned from an answer or a tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerEvent {
    /// Every node the update was sent to applied it.
    Committed {
        /// The update.
        seq: u64,
    },
    /// A node failed the update or did not answer in time: evict and poison it.
    Failed {
        /// The node.
        node: NodeId,
        /// The update.
        seq: u64,
    },
}

#[derive(Debug, Clone)]
struct Pending {
    waiting: BTreeSet<NodeId>,
    deadline: u64,
    payload: Vec<u8>,
}

/// The issuing side: numbers updates and tracks who applied them.
#[derive(Debug, Clone)]
pub struct GumIssuer {
    me: NodeId,
    last_seq: u64,
    timeout_ns: u64,
    pending: BTreeMap<u64, Pending>,
}

impl GumIssuer {
    /// An issuer whose last issued update is `last_seq`; a node that has not
    /// answered `timeout_ns` after an update was issued has failed it.
    pub fn new(me: NodeId, last_seq: u64, timeout_ns: u64) -> Self {
        GumIssuer {
            me,
            last_seq,
            timeout_ns,
            pending: BTreeMap::new(),
        }
    }

    /// Issues an update to `to` (the other members) at `now`: the message
    /// to send to each of them. The issuer applies it itself, through its
    /// own receiver, like any other node.
    pub fn issue(&mut self, payload: Vec<u8>, to: &[NodeId], now: u64) -> ClusterMessage {
        self.last_seq += 1;
        let waiting: BTreeSet<NodeId> = to.iter().copied().filter(|n| *n != self.me).collect();
        if !waiting.is_empty() {
            self.pending.insert(
                self.last_seq,
                Pending {
                    waiting,
                    deadline: now.saturating_add(self.timeout_ns),
                    payload: payload.clone(),
                },
            );
        }
        ClusterMessage::GumUpdate {
            from: self.me,
            seq: self.last_seq,
            payload,
        }
    }

    /// Each pending update again, for each node that has not answered it
    /// yet, in order of sequence. Sent on every tick until the deadline: an
    /// update or an answer lost on the wire (a lossy link), or an update a
    /// member dropped because it came before the issuer's heartbeats made
    /// it a member there (a join's race: both peers of a new locker were
    /// evicted 2.4 s into a run, measured 1 in 22), is not a failed
    /// update. A receiver answers a resend without applying it twice
    /// ([`Delivery::Duplicate`]).
    pub fn resends(&self) -> Vec<(NodeId, ClusterMessage)> {
        self.pending
            .iter()
            .flat_map(|(seq, p)| {
                p.waiting.iter().map(move |n| {
                    (
                        *n,
                        ClusterMessage::GumUpdate {
                            from: self.me,
                            seq: *seq,
                            payload: p.payload.clone(),
                        },
                    )
                })
            })
            .collect()
    }

    /// Node `from` applied `seq`.
    pub fn on_ack(&mut self, from: NodeId, seq: u64) -> Option<IssuerEvent> {
        let p = self.pending.get_mut(&seq)?;
        p.waiting.remove(&from);
        if p.waiting.is_empty() {
            self.pending.remove(&seq);
            return Some(IssuerEvent::Committed { seq });
        }
        None
    }

    /// Node `from` failed `seq`: it stops being waited for, on every update.
    pub fn on_fail(&mut self, from: NodeId, seq: u64) -> Vec<IssuerEvent> {
        if !self
            .pending
            .get(&seq)
            .is_some_and(|p| p.waiting.contains(&from))
        {
            return Vec::new();
        }
        let mut out = vec![IssuerEvent::Failed { node: from, seq }];
        out.extend(self.forget(from));
        out
    }

    /// Nodes that have not answered by their deadline have failed.
    pub fn on_tick(&mut self, now: u64) -> Vec<IssuerEvent> {
        let late: Vec<(NodeId, u64)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .flat_map(|(seq, p)| p.waiting.iter().map(move |n| (*n, *seq)))
            .collect();
        let mut out = Vec::new();
        let mut failed = BTreeSet::new();
        for (node, seq) in late {
            if failed.insert(node) {
                out.push(IssuerEvent::Failed { node, seq });
                out.extend(self.forget(node));
            }
        }
        out
    }

    /// Stops waiting for `node` (evicted, or failed): updates it alone held
    /// back are committed.
    pub fn forget(&mut self, node: NodeId) -> Vec<IssuerEvent> {
        let mut out = Vec::new();
        self.pending.retain(|seq, p| {
            if p.waiting.remove(&node) && p.waiting.is_empty() {
                out.push(IssuerEvent::Committed { seq: *seq });
                return false;
            }
            true
        });
        out
    }

    /// The earliest deadline still pending, for the caller's timer.
    pub fn next_deadline(&self) -> Option<u64> {
        self.pending.values().map(|p| p.deadline).min()
    }
}

/// A starting service's join (seed 002: the group "stays offline failed,
/// even after the cluster service restarts on the original node"). A node
/// that starts knows nothing of the cluster database: it asks the other
/// nodes for it, and places no group and issues no update until it has it:
/// from one member that had itself joined (its database is the cluster's;
/// later updates reach the joiner like any member), or, when no member had
/// (nodes starting together), from every member, each answering with an
/// empty database. So a node that restarts into a running cluster neither
/// brings a failed group back online nor decides from what it knew before
/// it died, and a hung member that never answers does not hold it back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Join {
    heard: BTreeMap<NodeId, bool>,
    done: bool,
}

impl Join {
    /// Node `from` sent its database; `joined`: it had joined itself.
    pub fn heard_from(&mut self, from: NodeId, joined: bool) {
        let j = self.heard.entry(from).or_default();
        *j |= joined;
    }

    /// Whether this start has the cluster database.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Which of `nodes` to ask for their database now (none once joined):
    /// those other than this node that have not answered.
    pub fn to_ask(&self, me: NodeId, nodes: &[NodeId]) -> Vec<NodeId> {
        if self.done {
            return Vec::new();
        }
        nodes
            .iter()
            .copied()
            .filter(|m| *m != me && !self.heard.contains_key(m))
            .collect()
    }

    /// Completes the join once this side holds quorum and a member that
    /// had joined answered, or every other member did. True exactly once:
    /// when it completes.
    pub fn complete(&mut self, me: NodeId, members: &[NodeId], quorate: bool) -> bool {
        if self.done || !quorate {
            return false;
        }
        let sponsored = members.iter().any(|m| self.heard.get(m) == Some(&true));
        if !sponsored && !self.to_ask(me, members).is_empty() {
            return false;
        }
        self.done = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N1: NodeId = NodeId(1);
    const N2: NodeId = NodeId(2);
    const N3: NodeId = NodeId(3);

    #[test]
    fn a_join_completes_once_every_other_member_answered_with_quorum() {
        let mut j = Join::default();
        let members = [N1, N2, N3];
        assert_eq!(j.to_ask(N1, &members), vec![N2, N3]);
        assert!(!j.complete(N1, &members, true));
        j.heard_from(N2, false);
        assert_eq!(j.to_ask(N1, &members), vec![N3]);
        assert!(!j.complete(N1, &members, true), "N2 is starting too");
        j.heard_from(N3, false);
        assert!(!j.complete(N1, &members, false), "not without quorum");
        assert!(j.complete(N1, &members, true));
        assert!(j.is_done());
        assert!(!j.complete(N1, &members, true), "once");
        assert_eq!(j.to_ask(N1, &[N1, N2, N3, NodeId(4)]), vec![]);
    }

    #[test]
    fn one_joined_member_is_enough_a_silent_one_does_not_hold_the_join() {
        let mut j = Join::default();
        let members = [N1, N2, N3];
        j.heard_from(NodeId(4), true);
        assert!(!j.complete(N1, &members, true), "not a member");
        j.heard_from(N3, true);
        assert!(j.complete(N1, &members, true), "N2 never answered");
    }

    #[test]
    fn pending_updates_are_sent_again_to_whoever_has_not_answered_until_the_deadline() {
        let mut issuer = GumIssuer::new(N1, 4, 1_000);
        let first = issuer.issue(b"a=1".to_vec(), &[N1, N2, N3], 0);
        let second = issuer.issue(b"b=2".to_vec(), &[N2, N3], 10);
        assert_eq!(
            issuer.resends(),
            vec![
                (N2, first.clone()),
                (N3, first.clone()),
                (N2, second.clone()),
                (N3, second.clone())
            ]
        );
        assert_eq!(issuer.on_ack(N2, 5), None);
        assert_eq!(issuer.on_ack(N2, 6), None);
        assert_eq!(issuer.resends(), vec![(N3, first), (N3, second)]);
        // N3 never answers: failed at the deadline, and no longer resent.
        let failed = issuer.on_tick(1_000);
        assert_eq!(failed[0], IssuerEvent::Failed { node: N3, seq: 5 });
        assert_eq!(issuer.resends(), vec![]);
        // A resend that arrives after the original was applied is answered,
        // not applied twice.
        let r = GumReceiver::new(5);
        assert_eq!(r.deliver(5), Delivery::Duplicate);
        assert_eq!(r.answer(N2, 5), ClusterMessage::GumAck { from: N2, seq: 5 });
    }

    #[test]
    fn receiver_applies_strictly_in_order() {
        let mut r = GumReceiver::new(0);
        assert_eq!(r.deliver(1), Delivery::Apply);
        assert!(r.applied(1));
        assert_eq!(r.answer(N2, 1), ClusterMessage::GumAck { from: N2, seq: 1 });
        assert_eq!(r.deliver(1), Delivery::Duplicate);
        assert_eq!(r.deliver(3), Delivery::OutOfOrder { expected: 2 });
        assert!(!r.applied(3), "a gap is never marked applied");
        assert_eq!(
            r.answer(N2, 3),
            ClusterMessage::GumFail { from: N2, seq: 3 }
        );
        assert_eq!(r.deliver(2), Delivery::Apply);
        assert!(r.applied(2));
        assert_eq!(r.last_applied(), 2);
    }

    #[test]
    fn every_node_applies_the_same_sequence_whatever_the_arrival_order() {
        let mut issuer = GumIssuer::new(N1, 0, 1_000);
        let updates: Vec<ClusterMessage> = (0..5)
            .map(|i| issuer.issue(vec![i], &[N1, N2, N3], 0))
            .collect();
        // Node 2 gets them in order; node 3 gets them shuffled and is only
        // handed what is next, holding the rest back as a real queue would.
        let mut logs = Vec::new();
        for order in [[0usize, 1, 2, 3, 4], [3, 0, 4, 2, 1]] {
            let mut r = GumReceiver::new(0);
            let mut log = Vec::new();
            let mut held: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
            for i in order {
                let ClusterMessage::GumUpdate { seq, payload, .. } = &updates[i] else {
                    unreachable!()
                };
                held.insert(*seq, payload.clone());
                while let Some((s, p)) = held.pop_first() {
                    if r.deliver(s) != Delivery::Apply {
                        held.insert(s, p);
                        break;
                    }
                    log.push(p);
                    r.applied(s);
                }
            }
            logs.push(log);
        }
        assert_eq!(logs[0], logs[1]);
        assert_eq!(logs[0], (0..5).map(|i| vec![i]).collect::<Vec<_>>());
    }

    #[test]
    fn issuer_commits_when_all_ack_and_names_who_fails() {
        let mut g = GumIssuer::new(N1, 10, 1_000);
        let ClusterMessage::GumUpdate { seq, .. } = g.issue(b"x".to_vec(), &[N1, N2, N3], 0) else {
            unreachable!()
        };
        assert_eq!(seq, 11);
        assert_eq!(g.on_ack(N2, 11), None);
        assert_eq!(
            g.on_fail(N3, 11),
            vec![
                IssuerEvent::Failed { node: N3, seq: 11 },
                IssuerEvent::Committed { seq: 11 },
            ]
        );
        assert_eq!(g.next_deadline(), None);
        // A stray or repeated answer changes nothing.
        assert_eq!(g.on_fail(N3, 11), vec![]);
        assert_eq!(g.on_ack(N2, 99), None);
    }

    #[test]
    fn a_node_that_never_answers_fails_at_the_deadline() {
        let mut g = GumIssuer::new(N1, 0, 1_000);
        g.issue(vec![], &[N2, N3], 100);
        g.issue(vec![], &[N2, N3], 200);
        g.on_ack(N2, 1);
        g.on_ack(N2, 2);
        assert_eq!(g.next_deadline(), Some(1_100));
        assert_eq!(g.on_tick(1_099), vec![]);
        assert_eq!(
            g.on_tick(1_100),
            vec![
                IssuerEvent::Failed { node: N3, seq: 1 },
                IssuerEvent::Committed { seq: 1 },
                IssuerEvent::Committed { seq: 2 },
            ]
        );
        assert_eq!(g.on_tick(5_000), vec![]);
    }
}
