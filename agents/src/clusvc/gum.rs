//! The service's cluster side, continued: the global update manager wired
//! to the wire. The cluster database it replicates is small: where each
//! resource group is (`group/<name>` = `online@<node>`, `failed`,
//! `offline`). The locker (lowest-id member of the side holding quorum)
//! issues an update when a group fact changes; every member applies updates
//! in sequence order and acknowledges them; a member that reports one out of
//! order, or does not answer in time (a hung service still counted as a
//! member because the watchdog heartbeats for it), is evicted and poisoned
//! by the membership (`on_gum_failed`).
//!
//! Joining: a service that has applied nothing yet takes the first update it
//! is sent as its starting point (it has no database to be behind on).
//! A restarted node that becomes the locker again (lowest id) issues from
//! its own sequence; a member that has applied further answers such a stale
//! update with a snapshot of its database at its sequence number
//! (`snapshot` payload), which the locker adopts: database and sequence.
//!
//! Starting: a service asks every other node for its database (a `join`
//! payload) every interval until it has it: a snapshot from one member that
//! had joined, or from every member when all are starting
//! ([`crate::cluster::gum::Join`]); until then it places no group and
//! issues no update, and it then hands what the database records to
//! [`crate::groups::Groups::sync`]. The locker records each member's join
//! (and each leave) as an update, `node/<name>` = `up` / `down`. An update applied before a snapshot
//! that is older than it keeps its key: the snapshot fills in the rest.
//! Decisions about groups stay in [`crate::groups`]; this only replicates.

use crate::clock::monotonic_ns;
use crate::cluster::gum::{Delivery, GumIssuer, IssuerEvent};
use crate::cluster::wire::{ClusterMessage, GroupState, NodeId};
use crate::emit::{Emitter, Level};
use crate::events::GlobalUpdate;
use crate::groups::Recorded;

use super::Cluster;

/// The payload prefix of a database snapshot (not an update) from a node
/// still joining.
const SNAPSHOT: &[u8] = b"snapshot\n";
/// The same from a node that has joined: the cluster's database.
const SNAPSHOT_JOINED: &[u8] = b"snapshot joined\n";
/// The payload of a starting node's request for a member's database.
const JOIN: &[u8] = b"join\n";

impl Cluster {
    /// How long the locker waits for every member to apply an update.
    fn gum_timeout_ns(&self) -> u64 {
        2 * self.interval_ns * u64::from(self.cfg.missed_heartbeats.max(1))
    }

    /// A group fact, learned from this node or a peer: the locker makes it
    /// a cluster-wide update if the database does not already say so.
    pub(super) fn record_fact(
        &mut self,
        node: NodeId,
        group: &str,
        state: GroupState,
        em: &mut Emitter,
    ) -> Result<(), NodeId> {
        let value = match state {
            GroupState::Online => format!("online@{}", self.name_of(node)),
            GroupState::Failed => "failed".to_string(),
            GroupState::Offline => "offline".to_string(),
            GroupState::AttemptFailed => return Ok(()),
        };
        self.issue(format!("group/{group}"), value, em);
        // An update to nobody else commits at once; nothing to wait for.
        Ok(())
    }

    /// A node joined or left the membership: the locker records it as an
    /// update (`node/<name>` = `up` or `down`), as the modelled system
    /// makes a join a global update. A joining node that cannot apply it,
    /// because its links still fail, is evicted and poisoned (seed 004:
    /// the restarted service rejoins, fails an update, is poisoned again).
    pub(super) fn record_node(&mut self, node: NodeId, up: bool, em: &mut Emitter) {
        let key = format!("node/{}", self.name_of(node));
        self.issue(key, if up { "up" } else { "down" }.to_string(), em);
    }

    /// The locker, once joined, issues `key=value` to every other member
    /// and applies it itself, unless the database already says so.
    fn issue(&mut self, key: String, value: String, em: &mut Emitter) {
        if !self.join.is_done()
            || self.membership.locker() != Some(self.me)
            || self.registry.get(&key) == Some(&value)
        {
            return;
        }
        let now = monotonic_ns();
        let last = self.gum_rx.last_applied();
        let timeout = self.gum_timeout_ns();
        let issuer = self
            .gum_tx
            .get_or_insert_with(|| GumIssuer::new(self.me, last, timeout));
        let to: Vec<NodeId> = self
            .membership
            .members()
            .into_iter()
            .filter(|m| *m != self.me)
            .collect();
        let msg = issuer.issue(format!("{key}={value}").into_bytes(), &to, now);
        if let ClusterMessage::GumUpdate { seq, payload, .. } = &msg {
            for peer in &to {
                self.send_to(*peer, &msg, None);
            }
            if self.gum_rx.deliver(*seq) == Delivery::Apply {
                self.apply_update(*seq, payload.clone(), self.me, em);
            }
        }
    }

    /// An update arrived from `from`.
    pub(super) fn on_gum_update(
        &mut self,
        from: NodeId,
        seq: u64,
        payload: Vec<u8>,
        em: &mut Emitter,
    ) {
        if from == self.me {
            return;
        }
        let member = self.membership.members().contains(&from);
        if payload == JOIN {
            // Any node of the cluster may ask (it may not be a member in
            // this node's view yet): the answer is this node's database.
            // The locker makes a member's join an update.
            self.send_to(from, &self.snapshot(), None);
            if member {
                self.record_node(from, true, em);
            }
            return;
        }
        // A joining node takes updates from whoever sponsors it, before it
        // hears that node's heartbeats; a joined one only from members.
        if !member && self.join.is_done() {
            return;
        }
        let snapshot = payload
            .strip_prefix(SNAPSHOT_JOINED)
            .map(|s| (s, true))
            .or_else(|| payload.strip_prefix(SNAPSHOT).map(|s| (s, false)));
        if let Some((snapshot, joined)) = snapshot {
            self.join.heard_from(from, joined);
            self.adopt_snapshot(from, seq, snapshot, em);
            return;
        }
        if self.gum_rx.last_applied() == 0 {
            self.gum_rx = crate::cluster::gum::GumReceiver::new(seq.saturating_sub(1));
        }
        if seq < self.gum_rx.last_applied() && self.membership.locker() == Some(from) {
            // The locker is behind this node: it restarted. Send it the
            // database at this node's sequence number.
            self.send_to(from, &self.snapshot(), None);
        }
        match self.gum_rx.deliver(seq) {
            Delivery::Apply => self.apply_update(seq, payload, from, em),
            Delivery::Duplicate => {}
            Delivery::OutOfOrder { expected } => {
                em.log(
                    Level::Err,
                    "GUM",
                    &format!("update {seq} from node {from} arrived before {expected}: failing it"),
                );
            }
        }
        self.send_to(from, &self.gum_rx.answer(self.me, seq), None);
    }

    /// This node's database at its sequence number, as a message.
    fn snapshot(&self) -> ClusterMessage {
        let mut text = if self.join.is_done() {
            SNAPSHOT_JOINED
        } else {
            SNAPSHOT
        }
        .to_vec();
        for (k, v) in &self.registry {
            text.extend_from_slice(format!("{k}={v}\n").as_bytes());
        }
        ClusterMessage::GumUpdate {
            from: self.me,
            seq: self.gum_rx.last_applied(),
            payload: text,
        }
    }

    /// Each interval until joined: ask every node of the cluster that has
    /// not sent its database yet (a node that hears nobody yet may still be
    /// heard: seed 004's one-way paths).
    pub(super) fn ask_to_join(&self) {
        let ask = ClusterMessage::GumUpdate {
            from: self.me,
            seq: 0,
            payload: JOIN.to_vec(),
        };
        let nodes: Vec<NodeId> = self.cfg.nodes.iter().map(|n| NodeId(n.id)).collect();
        for m in self.join.to_ask(self.me, &nodes) {
            self.send_to(m, &ask, None);
        }
    }

    /// Every other member sent its database: place groups from it.
    pub(super) fn joined(&mut self, now: u64, em: &mut Emitter) {
        let db: Vec<(String, Recorded)> = self
            .registry
            .iter()
            .filter_map(|(k, v)| {
                let group = k.strip_prefix("group/")?;
                let rec = match v.as_str() {
                    "failed" => Recorded::Failed,
                    "offline" => Recorded::Offline,
                    v => {
                        let name = v.strip_prefix("online@")?;
                        let n = self.cfg.nodes.iter().find(|n| n.name == name)?;
                        Recorded::OnlineOn(NodeId(n.id))
                    }
                };
                Some((group.to_string(), rec))
            })
            .collect();
        self.groups.sync(&db, now);
        let said: Vec<String> = self
            .registry
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        em.log(
            Level::Info,
            "GUM",
            &format!(
                "joined with the cluster database at global update {}: {}",
                self.gum_rx.last_applied(),
                if said.is_empty() {
                    "empty".to_string()
                } else {
                    said.join(", ")
                }
            ),
        );
    }

    /// A member sent its database: this node is starting (its join), or
    /// it is the locker and was behind. A newer one is taken whole, and
    /// numbering goes on from its sequence; an older one, while joining,
    /// fills in the keys no update applied since has set.
    fn adopt_snapshot(&mut self, from: NodeId, seq: u64, snapshot: &[u8], em: &mut Emitter) {
        let entries: Vec<(String, String)> = String::from_utf8_lossy(snapshot)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if seq <= self.gum_rx.last_applied() {
            if !self.join.is_done() {
                for (k, v) in entries {
                    self.registry.entry(k).or_insert(v);
                }
            }
            return;
        }
        self.registry = entries.into_iter().collect();
        self.gum_rx = crate::cluster::gum::GumReceiver::new(seq);
        if self.gum_tx.is_some() {
            self.gum_tx = Some(GumIssuer::new(self.me, seq, self.gum_timeout_ns()));
        }
        let mut ev = em
            .event(GlobalUpdate {
                seq,
                key: "*".into(),
                value: format!("snapshot of {} key(s)", self.registry.len()),
                issuer: self.name_of(from),
            })
            .message(format!(
                "Cluster database taken from node {from} at global update {seq}."
            ));
        em.emit(&mut ev, Level::Info, "GUM");
    }

    fn apply_update(&mut self, seq: u64, payload: Vec<u8>, issuer: NodeId, em: &mut Emitter) {
        let text = String::from_utf8_lossy(&payload).into_owned();
        let Some((key, value)) = text.split_once('=') else {
            em.log(
                Level::Err,
                "GUM",
                &format!("update {seq} is not key=value: {text}"),
            );
            return;
        };
        self.gum_rx.applied(seq);
        self.registry.insert(key.to_string(), value.to_string());
        let mut ev = em
            .event(GlobalUpdate {
                seq,
                key: key.to_string(),
                value: value.to_string(),
                issuer: self.name_of(issuer),
            })
            .message(format!(
                "Global update {seq} from node {issuer} applied: {key} = {value}."
            ));
        em.emit(&mut ev, Level::Info, "GUM");
    }

    /// A member answered an update this node issued.
    pub(super) fn on_gum_answer(
        &mut self,
        msg: &ClusterMessage,
        em: &mut Emitter,
    ) -> Result<(), NodeId> {
        let Some(issuer) = self.gum_tx.as_mut() else {
            return Ok(());
        };
        let events = match *msg {
            ClusterMessage::GumAck { from, seq } => issuer.on_ack(from, seq).into_iter().collect(),
            ClusterMessage::GumFail { from, seq } => issuer.on_fail(from, seq),
            _ => Vec::new(),
        };
        self.on_issuer_events(events, em)
    }

    /// Each tick: members that did not answer in time have failed.
    pub(super) fn gum_tick(&mut self, now: u64, em: &mut Emitter) -> Result<(), NodeId> {
        if self.membership.locker() != Some(self.me) {
            // Another node issues now; it starts from what it applied.
            self.gum_tx = None;
            return Ok(());
        }
        let events = self
            .gum_tx
            .as_mut()
            .map(|i| i.on_tick(now))
            .unwrap_or_default();
        self.on_issuer_events(events, em)?;
        let resends = self
            .gum_tx
            .as_ref()
            .map(|i| i.resends())
            .unwrap_or_default();
        for (peer, msg) in resends {
            self.send_to(peer, &msg, None);
        }
        Ok(())
    }

    /// A member left: stop waiting for its answers.
    pub(super) fn gum_forget(&mut self, node: NodeId) {
        if let Some(i) = self.gum_tx.as_mut() {
            let _ = i.forget(node);
        }
    }

    fn on_issuer_events(
        &mut self,
        events: Vec<IssuerEvent>,
        em: &mut Emitter,
    ) -> Result<(), NodeId> {
        for e in events {
            if let IssuerEvent::Failed { node, seq } = e {
                em.log(
                    Level::Err,
                    "GUM",
                    &format!("node {node} failed global update {seq}: evicting and poisoning it"),
                );
                let acts = self.membership.on_gum_failed(node, monotonic_ns());
                self.apply(acts, em)?;
            }
        }
        Ok(())
    }
}
