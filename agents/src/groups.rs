//! Where each resource group belongs, as pure logic computed the same way on
//! every node of the side holding quorum (`../shared/MODEL.md`, "Membership
//! and failover"; seed 002).
//!
//! The rule ([`place`]): a group stays on the member it is online on; else it
//! belongs on the first of its preferred owners that is a current member and
//! has not failed to bring it online within the failover window. When every
//! owner that is a member failed within the window, the group is failed: the
//! lowest-id member declares it (1205, once) and it stays offline until the
//! window has passed since then.
//!
//! A node that starts places nothing until it has the cluster database
//! ([`Groups::sync`], after [`crate::cluster::gum::Join`]): a service that
//! restarts into a running cluster must learn that a group failed, or where
//! it is online, before the rule runs on its own empty facts (seed 002: the
//! group "stays offline failed, even after the cluster service restarts on
//! the original node").
//!
//! [`Groups`] keeps one node's knowledge of each group (facts from its own
//! attempts and from other nodes' `GroupEvent` messages) and turns it into
//! [`GroupAction`]s. It does no I/O and reads no clock: the service brings
//! groups online and offline and reports the outcomes back.

use std::collections::BTreeMap;

use crate::cluster::wire::{GroupState, NodeId};

/// Where the rule puts a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// On this node.
    On(NodeId),
    /// Every owner that is a member failed within the window.
    Failed {
        /// Those owners.
        failed_on: Vec<NodeId>,
    },
    /// No preferred owner is a member.
    Nowhere,
}

/// What one node knows about one group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFacts {
    /// The node it is online on, as last reported.
    pub online_on: Option<NodeId>,
    /// When each node last failed to bring it online.
    pub failures: BTreeMap<NodeId, u64>,
    /// When it was declared failed, while that lasts.
    pub failed_at: Option<u64>,
}

impl GroupFacts {
    fn failed_recently(&self, node: NodeId, now: u64, window_ns: u64) -> bool {
        self.failures
            .get(&node)
            .is_some_and(|&t| now.saturating_sub(t) < window_ns)
    }
}

/// The placement rule; `members` is the current view of the side holding
/// quorum, `owners` the group's preferred owners in order.
pub fn place(
    owners: &[NodeId],
    members: &[NodeId],
    facts: &GroupFacts,
    now: u64,
    window_ns: u64,
) -> Placement {
    if let Some(n) = facts.online_on.filter(|n| members.contains(n)) {
        return Placement::On(n);
    }
    let candidates: Vec<NodeId> = owners
        .iter()
        .copied()
        .filter(|o| members.contains(o))
        .collect();
    match candidates
        .iter()
        .find(|o| !facts.failed_recently(**o, now, window_ns))
    {
        Some(&o) => Placement::On(o),
        None if candidates.is_empty() => Placement::Nowhere,
        None => Placement::Failed {
            failed_on: candidates,
        },
    }
}

/// The group on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// Not here.
    Offline,
    /// Being brought online here.
    Starting,
    /// Online here.
    Online,
}

/// A group as the replicated cluster database records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Online on this node.
    OnlineOn(NodeId),
    /// Declared failed: every owner failed within the window.
    Failed,
    /// Offline.
    Offline,
}

/// What the service must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupAction {
    /// Bring the group online here (it is now [`Local::Starting`]).
    BringOnline(String),
    /// Take the group offline here (it is now [`Local::Offline`]).
    TakeOffline {
        /// The group.
        group: String,
        /// Why, for event 1203.
        reason: String,
    },
    /// Report the group failed (1205) and tell the other nodes.
    DeclareFailed {
        /// The group.
        group: String,
        /// The owners that failed it.
        failed_on: Vec<NodeId>,
    },
}

#[derive(Debug, Clone)]
struct Group {
    owners: Vec<NodeId>,
    facts: GroupFacts,
    local: Local,
}

/// One node's groups.
#[derive(Debug, Clone)]
pub struct Groups {
    me: NodeId,
    window_ns: u64,
    groups: BTreeMap<String, Group>,
    synced: bool,
}

impl Groups {
    /// `groups`: each group's name and preferred owners, in order.
    pub fn new(me: NodeId, window_ns: u64, groups: Vec<(String, Vec<NodeId>)>) -> Self {
        let groups = groups
            .into_iter()
            .map(|(name, owners)| {
                let g = Group {
                    owners,
                    facts: GroupFacts::default(),
                    local: Local::Offline,
                };
                (name, g)
            })
            .collect();
        Groups {
            me,
            window_ns,
            groups,
            synced: false,
        }
    }

    /// Whether this node has taken the cluster database ([`sync`](Self::sync)).
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// This node joined at `now` with the cluster database `db` (group name,
    /// what it records): from now on [`decide`](Self::decide) places groups.
    /// A group recorded failed counts as declared failed at `now` (the
    /// database keeps no clock: the window runs from when this node
    /// learned it); one recorded online elsewhere is online there unless a
    /// fresher fact already says otherwise; one recorded online here is not
    /// (this start holds nothing).
    pub fn sync(&mut self, db: &[(String, Recorded)], now: u64) {
        for (name, rec) in db {
            let Some(g) = self.groups.get_mut(name) else {
                continue;
            };
            match *rec {
                Recorded::OnlineOn(n) if n != self.me => {
                    g.facts.online_on.get_or_insert(n);
                }
                Recorded::Failed => {
                    g.facts.failed_at.get_or_insert(now);
                }
                Recorded::OnlineOn(_) | Recorded::Offline => {}
            }
        }
        self.synced = true;
    }

    /// The group on this node, if it is a group.
    pub fn local(&self, group: &str) -> Option<Local> {
        self.groups.get(group).map(|g| g.local)
    }

    /// What this node knows about a group.
    pub fn facts(&self, group: &str) -> Option<&GroupFacts> {
        self.groups.get(group).map(|g| &g.facts)
    }

    /// Groups online or starting here.
    pub fn held(&self) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, g)| g.local != Local::Offline)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The facts this node repeats every interval: the groups online here,
    /// and, from the lowest-id member, the failed ones.
    pub fn facts_to_repeat(&self, lowest: bool) -> Vec<(String, GroupState)> {
        let mut out = Vec::new();
        for (name, g) in &self.groups {
            if g.local == Local::Online {
                out.push((name.clone(), GroupState::Online));
            } else if lowest && g.facts.failed_at.is_some() {
                out.push((name.clone(), GroupState::Failed));
            }
        }
        out
    }

    /// A fact from node `from` (a `GroupEvent`) arrived at `now`.
    pub fn on_fact(&mut self, from: NodeId, group: &str, state: GroupState, now: u64) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let f = &mut g.facts;
        match state {
            GroupState::Online => f.online_on = Some(from),
            GroupState::AttemptFailed => {
                f.failures.insert(from, now);
                if f.online_on == Some(from) {
                    f.online_on = None;
                }
            }
            GroupState::Offline => {
                if f.online_on == Some(from) {
                    f.online_on = None;
                }
            }
            GroupState::Failed => {
                f.failed_at.get_or_insert(now);
            }
        }
    }

    /// `node` left the membership: whatever it held is no longer online.
    pub fn on_member_down(&mut self, node: NodeId) {
        for g in self.groups.values_mut() {
            if g.facts.online_on == Some(node) {
                g.facts.online_on = None;
            }
        }
    }

    /// The group came online here.
    pub fn local_online(&mut self, group: &str) {
        if let Some(g) = self.groups.get_mut(group) {
            g.local = Local::Online;
            g.facts.online_on = Some(self.me);
        }
    }

    /// Bringing the group online here failed at `now`.
    pub fn local_failed(&mut self, group: &str, now: u64) {
        let me = self.me;
        self.on_fact(me, group, GroupState::AttemptFailed, now);
        if let Some(g) = self.groups.get_mut(group) {
            g.local = Local::Offline;
        }
    }

    /// The group is offline here.
    pub fn local_offline(&mut self, group: &str) {
        let me = self.me;
        self.on_fact(me, group, GroupState::Offline, 0);
        if let Some(g) = self.groups.get_mut(group) {
            g.local = Local::Offline;
        }
    }

    /// What to do now. `members`: the current view, sorted; `quorate`:
    /// whether this side holds quorum (and has settled). A node without
    /// quorum only takes its own groups offline.
    /// Nothing before [`sync`](Self::sync).
    pub fn decide(&mut self, members: &[NodeId], quorate: bool, now: u64) -> Vec<GroupAction> {
        let mut out = Vec::new();
        if !self.synced {
            return out;
        }
        let (me, window) = (self.me, self.window_ns);
        let lowest = members.first() == Some(&me);
        for (name, g) in self.groups.iter_mut() {
            if !quorate {
                if g.local == Local::Online {
                    g.local = Local::Offline;
                    if g.facts.online_on == Some(me) {
                        g.facts.online_on = None;
                    }
                    out.push(GroupAction::TakeOffline {
                        group: name.clone(),
                        reason: "quorum lost".into(),
                    });
                }
                continue;
            }
            if g.facts
                .failed_at
                .is_some_and(|t| now.saturating_sub(t) >= window)
            {
                g.facts.failed_at = None;
            }
            if g.facts.failed_at.is_some() || g.local == Local::Starting {
                continue;
            }
            match place(&g.owners, members, &g.facts, now, window) {
                Placement::On(n) if n == me && g.local == Local::Offline => {
                    g.local = Local::Starting;
                    out.push(GroupAction::BringOnline(name.clone()));
                }
                Placement::On(n) if n != me && g.local == Local::Online => {
                    g.local = Local::Offline;
                    out.push(GroupAction::TakeOffline {
                        group: name.clone(),
                        reason: format!("online on node {n}"),
                    });
                }
                Placement::Failed { failed_on } if lowest => {
                    g.facts.failed_at = Some(now);
                    out.push(GroupAction::DeclareFailed {
                        group: name.clone(),
                        failed_on,
                    });
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
