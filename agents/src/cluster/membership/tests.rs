use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::cluster::gum::{GumIssuer, IssuerEvent};
use crate::cluster::wire::{ClusterKey, Inbox, WireError};

const I: u64 = DEFAULT_HEARTBEAT_INTERVAL_NS;
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);
const N3: NodeId = NodeId(3);
const PUB: Network = Network::Public;
const PRIV: Network = Network::Private;

fn node(me: NodeId, n: u32, witness: u32) -> Membership {
    let ids: Vec<NodeId> = (1..=n).map(NodeId).collect();
    Membership::new(MembershipConfig::new(me, &ids).with_witness(witness), 1).unwrap()
}

fn count(actions: &[Action], want: &Action) -> usize {
    actions.iter().filter(|a| *a == want).count()
}

/// Nodes exchanging heartbeats every interval over links that tests cut and
/// heal; poison packets travel over any open network. Records every action.
struct Sim {
    nodes: BTreeMap<NodeId, Membership>,
    cut: BTreeSet<(NodeId, NodeId, Network)>,
    t: u64,
    log: Vec<(u64, NodeId, Action)>,
}

impl Sim {
    fn new(n: u32, witness: u32) -> Self {
        let nodes = (1..=n)
            .map(|i| (NodeId(i), node(NodeId(i), n, witness)))
            .collect();
        Sim {
            nodes,
            cut: BTreeSet::new(),
            t: 0,
            log: Vec::new(),
        }
    }

    fn key(a: NodeId, b: NodeId, net: Network) -> (NodeId, NodeId, Network) {
        (a.min(b), a.max(b), net)
    }

    fn set(&mut self, a: NodeId, b: NodeId, nets: &[Network], open: bool) {
        for &net in nets {
            if open {
                self.cut.remove(&Self::key(a, b, net));
            } else {
                self.cut.insert(Self::key(a, b, net));
            }
        }
    }

    fn open(&self, a: NodeId, b: NodeId, net: Network) -> bool {
        !self.cut.contains(&Self::key(a, b, net))
    }

    fn record(&mut self, at: NodeId, actions: Vec<Action>) {
        let mut poisons = Vec::new();
        for a in actions {
            if let Action::SendPoison { to, .. } = a {
                poisons.push(to);
            }
            self.log.push((self.t, at, a));
        }
        for to in poisons {
            if Network::ALL.iter().any(|&n| self.open(at, to, n)) {
                let acts = self.nodes.get_mut(&to).unwrap().on_poison(at, to, self.t);
                self.record(to, acts);
            }
        }
    }

    /// One heartbeat interval: every running node sends, then all tick.
    fn step(&mut self) {
        self.t += I;
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        let mut sent = Vec::new();
        for &a in &ids {
            let m = self.nodes.get_mut(&a).unwrap();
            if m.phase() != Phase::Poisoned {
                sent.extend(m.heartbeats());
            }
        }
        for msg in sent {
            let ClusterMessage::Heartbeat { from, network, .. } = msg else {
                unreachable!()
            };
            for &b in &ids {
                if b != from && self.open(from, b, network) {
                    let acts = self.nodes.get_mut(&b).unwrap().on_message(&msg, self.t);
                    self.record(b, acts);
                }
            }
        }
        for &a in &ids {
            let acts = self.nodes.get_mut(&a).unwrap().on_tick(self.t);
            self.record(a, acts);
        }
    }

    fn run(&mut self, intervals: u32) {
        for _ in 0..intervals {
            self.step();
        }
    }

    fn actions(&self, at: NodeId, since: u64) -> Vec<Action> {
        self.log
            .iter()
            .filter(|(t, n, _)| *n == at && *t > since)
            .map(|(_, _, a)| a.clone())
            .collect()
    }

    fn m(&self, id: NodeId) -> &Membership {
        &self.nodes[&id]
    }
}

#[test]
fn loss_and_regain_are_logged_once_per_transition_per_network() {
    let mut m = node(N1, 2, 0);
    let mut all = Vec::new();
    for net in Network::ALL {
        all.extend(m.on_heartbeat(N2, net, 1, 0));
    }
    // Only the public network keeps working for 20 intervals.
    for k in 1..=20 {
        all.extend(m.on_heartbeat(N2, PUB, 1, k * I));
        all.extend(m.on_tick(k * I));
    }
    // Then the private one comes back, twice.
    all.extend(m.on_heartbeat(N2, PRIV, 1, 21 * I));
    all.extend(m.on_heartbeat(N2, PRIV, 1, 22 * I));
    let lost = |network| Action::PeerLost { peer: N2, network };
    let regained = |network| Action::PeerRegained { peer: N2, network };
    assert_eq!(count(&all, &lost(PRIV)), 1);
    assert_eq!(count(&all, &lost(PUB)), 0);
    assert_eq!(count(&all, &regained(PUB)), 1);
    assert_eq!(
        count(&all, &regained(PRIV)),
        2,
        "first contact, then after the loss"
    );
    assert!(!all.iter().any(|a| matches!(a, Action::PeerDown { .. })));
    assert_eq!(m.members(), vec![N1, N2]);
    assert_eq!(lost(PRIV).event_kind().modelled_id(), Some(1123));
    assert_eq!(regained(PRIV).event_kind().modelled_id(), Some(1122));
    assert_eq!(
        lost(PUB).message(),
        "The node lost communication with cluster node 'Node2' on network 'Public'."
    );
}

#[test]
fn a_link_is_lost_only_after_more_than_missed_threshold_intervals() {
    let mut m = node(N1, 2, 0);
    m.on_heartbeat(N2, PUB, 1, 1_000);
    assert_eq!(m.next_deadline(), Some(1_000 + 6 * I + 1));
    assert_eq!(m.on_tick(1_000 + 6 * I), vec![]);
    let acts = m.on_tick(1_000 + 6 * I + 1);
    assert_eq!(
        acts[0],
        Action::PeerLost {
            peer: N2,
            network: PUB
        }
    );
}

#[test]
fn peer_is_down_only_when_lost_on_every_network() {
    let mut s = Sim::new(2, 0);
    s.run(3);
    s.set(N1, N2, &[PRIV], false);
    s.run(10);
    assert!(!s.actions(N1, 0).contains(&Action::PeerDown { peer: N2 }));
    let before = s.t;
    s.set(N1, N2, &[PUB], false);
    s.run(10);
    let acts = s.actions(N1, before);
    assert_eq!(
        acts[..2],
        [
            Action::PeerLost {
                peer: N2,
                network: PUB
            },
            Action::PeerDown { peer: N2 }
        ]
    );
    assert_eq!(count(&acts, &Action::PeerDown { peer: N2 }), 1);
    assert_eq!(s.m(N1).members(), vec![N1]);
}

#[test]
fn three_nodes_two_keep_quorum_and_the_isolated_one_stops() {
    let mut s = Sim::new(3, 0);
    s.run(2);
    assert!(s.nodes.values().all(Membership::has_quorum));
    let before = s.t;
    s.set(N3, N1, &Network::ALL, false);
    s.set(N3, N2, &Network::ALL, false);
    s.run(10);
    for n in [N1, N2] {
        assert!(s.m(n).has_quorum());
        assert_eq!(s.m(n).members(), vec![N1, N2]);
        assert!(!s
            .actions(n, before)
            .iter()
            .any(|a| matches!(a, Action::QuorumLost { .. })));
    }
    assert_eq!(s.m(N3).phase(), Phase::NoQuorum);
    assert!(s
        .actions(N3, before)
        .contains(&Action::QuorumLost { votes: 1, total: 3 }));
    assert_eq!(s.m(N1).locker(), Some(N1));
    assert_eq!(s.m(N3).locker(), None);
}

fn two_nodes_and_a_witness_held_by_node_1() -> Sim {
    let mut s = Sim::new(2, 1);
    let acts = s.nodes.get_mut(&N1).unwrap().set_witness(true, 0);
    assert_eq!(acts, vec![Action::QuorumGained { votes: 2, total: 3 }]);
    s.run(2);
    assert!(s.m(N2).has_quorum(), "node 2 with node 1 has 2 of 3");
    s
}

#[test]
fn two_nodes_and_witness_the_side_with_the_witness_keeps_quorum() {
    let mut s = two_nodes_and_a_witness_held_by_node_1();
    let before = s.t;
    s.set(N1, N2, &Network::ALL, false);
    s.run(10);
    assert!(s.m(N1).has_quorum());
    assert_eq!(
        s.actions(N2, before)
            .into_iter()
            .filter(|a| matches!(a, Action::QuorumLost { .. }))
            .collect::<Vec<_>>(),
        vec![Action::QuorumLost { votes: 1, total: 3 }]
    );
    assert_eq!(
        Action::QuorumLost { votes: 1, total: 3 }
            .event_kind()
            .modelled_id(),
        Some(1177)
    );
}

#[test]
fn two_nodes_without_a_witness_both_lose_quorum_on_a_split() {
    let mut s = Sim::new(2, 0);
    s.run(2);
    s.set(N1, N2, &Network::ALL, false);
    s.run(10);
    assert_eq!(s.m(N1).phase(), Phase::NoQuorum);
    assert_eq!(s.m(N2).phase(), Phase::NoQuorum);
}

#[test]
fn seed_004_evicted_node_heard_again_is_poisoned_and_stops() {
    let mut s = two_nodes_and_a_witness_held_by_node_1();
    // Private and public cut: node 1 (quorum) declares node 2 offline.
    s.set(N1, N2, &Network::ALL, false);
    s.run(10);
    let evicted_at = s.t;
    // One network heals: node 2 still talks, and is poisoned.
    s.set(N1, N2, &[PUB], true);
    s.step();
    let n1 = s.actions(N1, evicted_at);
    assert_eq!(
        n1,
        vec![
            Action::PeerRegained {
                peer: N2,
                network: PUB
            },
            Action::SendPoison {
                to: N2,
                reason: PoisonReason::Evicted
            },
        ]
    );
    let n2 = s.actions(N2, evicted_at);
    assert!(n2.contains(&Action::Poisoned { from: N1 }));
    assert!(
        !n2.iter().any(|a| matches!(a, Action::Regroup { .. })),
        "no quorum, no readmission"
    );
    assert_eq!(s.m(N2).phase(), Phase::Poisoned);
    assert_eq!(
        Action::Poisoned { from: N1 }.message(),
        "Cluster service was terminated as requested by Node 1."
    );
    assert_eq!(
        Action::Poisoned { from: N1 }.event_kind().modelled_id(),
        Some(1118)
    );
    let lines = poison_log_lines(N2, N1);
    assert_eq!(
        (lines[0].0, lines[0].1, lines[0].2.as_str()),
        (Level::Info, "ClMsg", "Received poison event.")
    );
    assert_eq!(
        (lines[1].0, lines[1].1, lines[1].2.as_str()),
        (
            Level::Err,
            "RGP",
            "Node 2: REGROUP ERROR: poison packet received from node 1"
        )
    );
    // The poisoned service sends nothing more; node 1 stays quorate alone.
    s.run(10);
    assert!(s.m(N1).has_quorum());
    assert_eq!(s.m(N1).members(), vec![N1]);
    // Node 2's service restarts (a new incarnation) and is admitted.
    let restarted =
        Membership::new(MembershipConfig::new(N2, &[N1, N2]).with_witness(1), 2).unwrap();
    s.nodes.insert(N2, restarted);
    let before = s.t;
    s.set(N1, N2, &[PRIV], true);
    s.run(2);
    assert!(s.actions(N1, before).contains(&Action::Regroup {
        epoch: 3,
        members: vec![N1, N2]
    }));
    assert!(!s
        .actions(N1, before)
        .iter()
        .any(|a| matches!(a, Action::SendPoison { .. })));
    assert!(s.m(N2).has_quorum());
}

#[test]
fn poison_to_an_evicted_node_is_sent_at_most_once_per_interval() {
    let mut m = node(N1, 2, 1);
    m.set_witness(true, 0);
    m.on_heartbeat(N2, PUB, 7, 0);
    m.on_tick(7 * I);
    let mut poisons = 0;
    for k in 0..20 {
        let t = 8 * I + k * I / 4;
        poisons += count(
            &m.on_heartbeat(N2, PUB, 7, t),
            &Action::SendPoison {
                to: N2,
                reason: PoisonReason::Evicted,
            },
        );
    }
    assert_eq!(poisons, 5);
}

#[test]
fn a_poisoned_node_reports_once_then_ignores_everything() {
    let mut m = node(N2, 3, 0);
    assert_eq!(m.on_poison(N1, N3, 0), vec![], "addressed to someone else");
    assert_eq!(m.on_poison(NodeId(9), N2, 0), vec![], "not a cluster node");
    assert_eq!(m.on_poison(N1, N2, 5), vec![Action::Poisoned { from: N1 }]);
    assert_eq!(m.on_poison(N3, N2, 6), vec![]);
    assert_eq!(m.on_heartbeat(N1, PUB, 1, 7), vec![]);
    assert_eq!(m.on_tick(100 * I), vec![]);
    assert_eq!(m.set_witness(true, 8), vec![]);
    assert_eq!(m.phase(), Phase::Poisoned);
}

#[test]
fn forged_messages_never_reach_the_state_machine() {
    let key = ClusterKey::new(*b"the-cluster-key-0001").unwrap();
    let outsider = ClusterKey::new(*b"an-outsider-guessing").unwrap();
    let mut inbox = Inbox::new(key.clone());
    let mut m = node(N2, 2, 0);
    let forged = [
        ClusterMessage::Poison {
            from: N1,
            to: N2,
            reason: PoisonReason::Evicted,
        }
        .encode(&outsider)
        .unwrap(),
        ClusterMessage::Heartbeat {
            from: N1,
            network: PUB,
            seq: 1,
            incarnation: 1,
        }
        .encode(&outsider)
        .unwrap(),
    ];
    let mut truncated = ClusterMessage::Poison {
        from: N1,
        to: N2,
        reason: PoisonReason::Evicted,
    }
    .encode(&key)
    .unwrap();
    truncated.pop();
    for d in forged.iter().chain([&truncated]) {
        // The event loop: only what the inbox accepts is handed on.
        if let Ok(msg) = inbox.accept(d) {
            m.on_message(&msg, 0);
        }
    }
    assert_eq!(inbox.rejects().bad_mac, 2);
    assert_eq!(inbox.rejects().total(), 3);
    assert_eq!(inbox.accepted(), 0);
    assert_eq!(m.phase(), Phase::Forming);
    assert_eq!(m.members(), vec![N2]);
    // The same poison, signed with the cluster key, does act.
    let real = ClusterMessage::Poison {
        from: N1,
        to: N2,
        reason: PoisonReason::Evicted,
    }
    .encode(&key)
    .unwrap();
    let msg = inbox.accept(&real).unwrap();
    assert_eq!(m.on_message(&msg, 1), vec![Action::Poisoned { from: N1 }]);
    assert!(matches!(
        inbox.accept(b""),
        Err(WireError::Truncated { .. })
    ));
}

#[test]
fn a_node_failing_a_global_update_is_evicted_and_poisoned() {
    let mut s = Sim::new(3, 0);
    s.run(2);
    let mut issuer = GumIssuer::new(N1, 0, I);
    issuer.issue(b"move group".to_vec(), &s.m(N1).members(), s.t);
    issuer.on_ack(N2, 1);
    let failed = issuer.on_fail(N3, 1);
    assert_eq!(failed[0], IssuerEvent::Failed { node: N3, seq: 1 });
    let acts = s.nodes.get_mut(&N1).unwrap().on_gum_failed(N3, s.t);
    assert_eq!(
        acts,
        vec![
            Action::PeerDown { peer: N3 },
            Action::Regroup {
                epoch: 3,
                members: vec![N1, N2]
            },
            Action::SendPoison {
                to: N3,
                reason: PoisonReason::GumFailed
            },
        ]
    );
    // Its heartbeats (same incarnation) now draw poison, not readmission.
    let later = s.t + 2 * I;
    assert_eq!(
        s.nodes
            .get_mut(&N1)
            .unwrap()
            .on_heartbeat(N3, PUB, 1, later),
        vec![Action::SendPoison {
            to: N3,
            reason: PoisonReason::Evicted
        }]
    );
    // A side without quorum poisons nobody.
    let mut alone = node(N1, 3, 0);
    assert_eq!(alone.on_gum_failed(N3, 0), vec![]);
}

#[test]
fn a_side_that_lost_quorum_readmits_nobody() {
    let mut s = Sim::new(3, 0);
    s.run(2);
    s.set(N3, N1, &Network::ALL, false);
    s.set(N3, N2, &Network::ALL, false);
    s.run(10);
    let mut n3 = s.nodes.remove(&N3).unwrap();
    let acts = n3.on_heartbeat(N1, PUB, 1, s.t + I);
    assert_eq!(
        acts,
        vec![Action::PeerRegained {
            peer: N1,
            network: PUB
        }]
    );
    assert_eq!(n3.members(), vec![N3]);
    assert_eq!(n3.phase(), Phase::NoQuorum);
}

#[test]
fn bad_configurations_are_refused() {
    let ids = [N1, N2];
    let mut c = MembershipConfig::new(N3, &ids);
    assert_eq!(
        Membership::new(c.clone(), 1).unwrap_err(),
        ConfigError::NotANode(N3)
    );
    c.me = N1;
    c.nodes.push((N2, 1));
    assert_eq!(
        Membership::new(c.clone(), 1).unwrap_err(),
        ConfigError::Duplicate(N2)
    );
    c.nodes.pop();
    c.networks = vec![PUB, PUB];
    assert_eq!(
        Membership::new(c.clone(), 1).unwrap_err(),
        ConfigError::Networks
    );
    c.networks = vec![PRIV];
    c.missed_threshold = 0;
    assert_eq!(
        Membership::new(c.clone(), 1).unwrap_err(),
        ConfigError::ZeroTiming
    );
    c.missed_threshold = 6;
    c.nodes = vec![(N1, 0), (N2, 0)];
    assert_eq!(
        Membership::new(c.clone(), 1).unwrap_err(),
        ConfigError::NoVotes
    );
}

#[test]
fn a_single_node_cluster_gains_quorum_on_its_first_tick() {
    let mut m = node(N1, 1, 0);
    assert_eq!(
        m.on_tick(0),
        vec![Action::QuorumGained { votes: 1, total: 1 }]
    );
    assert_eq!(m.on_tick(1), vec![]);
}
