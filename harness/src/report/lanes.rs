//! What a scenario's timeline shows, worked out from its trace: one lane per
//! node (heartbeats its watchdog received, fault windows, detection and
//! recovery, power), one per virtual IP (who held it, who answered ARP for
//! it, double ownership), one per group's client (answers and misses), and
//! what went unobserved. Plain data, absolute CLOCK_MONOTONIC nanoseconds,
//! so `timeline.rs` only has to draw it and tests can assert on it.
//!
//! This module reads the trace only; it judges nothing (a red span here is
//! what was recorded, the verdict is the checks').

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use faultline_agent::arp::ArpKind;
use faultline_agent::events::{Event, EventData, BUGCHECK_CODE};

use crate::plan::{snake_name, CheckSpec};
use crate::report::terminal::describe;
use crate::trace::{FaultPhase, Record, Trace};

/// A span of time, `from` to `to` (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Start.
    pub from: u64,
    /// End.
    pub to: u64,
}

/// Everything one scenario's timeline shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Lanes {
    /// Time zero: the timeline's start.
    pub t0: u64,
    /// The right edge: when the timeline settled (else the run's end, else
    /// the last record).
    pub t_end: u64,
    /// One per node, in plan order.
    pub nodes: Vec<NodeLane>,
    /// One per group's virtual IP.
    pub ips: Vec<IpLane>,
    /// One per group's client.
    pub clients: Vec<ClientLane>,
}

/// A node's lane.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLane {
    /// The node.
    pub name: String,
    /// Heartbeats its watchdog received: time, and whether it reset the
    /// countdown.
    pub heartbeats: Vec<(u64, bool)>,
    /// Its faults.
    pub faults: Vec<FaultWindow>,
    /// When it was powered off.
    pub off: Vec<Span>,
    /// Countdowns that expired: last heartbeat counted to detection.
    pub countdowns: Vec<Span>,
    /// Events worth a mark.
    pub marks: Vec<Mark>,
    /// Spans whose agent records were lost (`gap` records), with why.
    pub lost: Vec<(Span, String)>,
}

/// A fault's window on a node.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultWindow {
    /// Its kind's name.
    pub kind: String,
    /// When the harness asked for it.
    pub requested: u64,
    /// When its effect was read back, if it was.
    pub onset: Option<u64>,
    /// When its healing was read back (`None`: held to the end).
    pub healed: Option<u64>,
    /// What was read back, or why it failed or was skipped.
    pub evidence: String,
}

/// What a mark stands for; each is drawn in its own shape and colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkKind {
    /// The watchdog fired.
    Detection,
    /// A recovery step: dump, fence, 7031, restart, 1001.
    Recovery,
    /// Powered off.
    PowerOff,
    /// Powered on.
    PowerOn,
    /// A group came online or went offline here.
    Group,
    /// Something went wrong: address conflict, group failed, disk fenced.
    Trouble,
    /// Membership: peer down, quorum lost, poison.
    Membership,
}

/// One event on a node's lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// When.
    pub t: u64,
    /// What.
    pub kind: MarkKind,
    /// A few characters drawn beside it.
    pub label: String,
    /// The whole story, as the terminal told it (the tooltip).
    pub detail: String,
}

/// A virtual IP's lane.
#[derive(Debug, Clone, PartialEq)]
pub struct IpLane {
    /// The group.
    pub group: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Who held it (namespace polls, the `addr` observer), per node.
    pub held: Vec<(String, Span)>,
    /// When two or more namespaces held it at once, and which.
    pub double: Vec<(Span, Vec<String>)>,
    /// ARP answers and announcements for it on the wire: time, MAC, node.
    pub wire: Vec<(u64, String, Option<String>)>,
    /// When two MACs answered for it within the `no_ip_conflict` window.
    pub wire_double: Vec<Span>,
    /// When the `addr` observer was not observing.
    pub unobserved: Vec<Span>,
    /// When the `arp` observer was not observing.
    pub wire_unobserved: Vec<Span>,
}

/// A group's client lane.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientLane {
    /// The group.
    pub group: String,
    /// Each attempt: its span, and who answered (`None`: no answer).
    pub probes: Vec<(Span, Option<String>, String)>,
    /// When the client observer was not observing.
    pub unobserved: Vec<Span>,
}

/// The lanes of `trace`, or `None` when it has no header or start.
pub fn lanes(trace: &Trace) -> Option<Lanes> {
    let header = trace.header()?;
    let t0 = trace.start()?;
    let t_end = trace
        .settled()
        .unwrap_or_else(|| trace.last_t())
        .max(t0 + 1);
    let scenario = &header.scenario;
    let clip = |t: u64| t.clamp(t0, t_end);
    let mut nodes: Vec<NodeLane> = scenario
        .nodes
        .iter()
        .map(|n| NodeLane {
            name: n.name.clone(),
            heartbeats: Vec::new(),
            faults: Vec::new(),
            off: Vec::new(),
            countdowns: Vec::new(),
            marks: Vec::new(),
            lost: Vec::new(),
        })
        .collect();
    let mut faults: BTreeMap<(String, usize), FaultWindow> = BTreeMap::new();
    let mut off_since: BTreeMap<String, u64> = BTreeMap::new();
    for rec in &trace.records {
        if rec.t() > t_end {
            continue;
        }
        let lane_of = |nodes: &[NodeLane], name: &str| nodes.iter().position(|n| n.name == name);
        match rec {
            Record::Event(e) => {
                let Some(i) = lane_of(&nodes, &e.node) else {
                    continue;
                };
                if let EventData::Heartbeat(h) = &e.data {
                    if e.t >= t0 {
                        nodes[i].heartbeats.push((e.t, h.counted));
                    }
                    continue;
                }
                if let EventData::HangDetected(h) = &e.data {
                    if h.last_heartbeat_t > 0 && h.last_heartbeat_t < e.t {
                        nodes[i].countdowns.push(Span {
                            from: clip(h.last_heartbeat_t),
                            to: clip(e.t),
                        });
                    }
                }
                if e.t >= t0 {
                    if let Some((kind, label)) = mark_of(e) {
                        nodes[i].marks.push(Mark {
                            t: e.t,
                            kind,
                            label,
                            detail: describe(rec).unwrap_or_default(),
                        });
                    }
                }
            }
            Record::Power { t, node, on, .. } => {
                let Some(i) = lane_of(&nodes, node) else {
                    continue;
                };
                if *on {
                    if let Some(from) = off_since.remove(node) {
                        nodes[i].off.push(Span {
                            from: clip(from),
                            to: clip(*t),
                        });
                    }
                } else {
                    off_since.insert(node.clone(), *t);
                }
                nodes[i].marks.push(Mark {
                    t: clip(*t),
                    kind: if *on {
                        MarkKind::PowerOn
                    } else {
                        MarkKind::PowerOff
                    },
                    label: if *on { "on" } else { "off" }.into(),
                    detail: describe(rec).unwrap_or_default(),
                });
            }
            Record::Fault(f) => {
                let w = faults
                    .entry((f.node.clone(), f.index))
                    .or_insert_with(|| FaultWindow {
                        kind: snake_name(&f.kind),
                        requested: f.requested,
                        onset: None,
                        healed: None,
                        evidence: String::new(),
                    });
                match f.phase {
                    FaultPhase::Injected => {
                        w.requested = f.requested;
                        w.onset = Some(f.t);
                        w.evidence = f.evidence.clone();
                    }
                    FaultPhase::Healed => w.healed = Some(f.t),
                    FaultPhase::Failed | FaultPhase::Skipped => {
                        w.evidence = format!("{}: {}", snake_name(&f.phase), f.evidence);
                    }
                }
            }
            Record::Gap(g) => {
                if let Some(i) = lane_of(&nodes, &g.node) {
                    nodes[i].lost.push((
                        Span {
                            from: clip(g.after),
                            to: clip(g.t),
                        },
                        describe(rec).unwrap_or_default(),
                    ));
                }
            }
            _ => {}
        }
    }
    for (node, from) in off_since {
        if let Some(lane) = nodes.iter_mut().find(|n| n.name == node) {
            lane.off.push(Span {
                from: clip(from),
                to: t_end,
            });
        }
    }
    for ((node, _), w) in faults {
        if let Some(lane) = nodes.iter_mut().find(|n| n.name == node) {
            lane.faults.push(w);
        }
    }
    let unobserved = |name: &str| -> Vec<Span> {
        if !trace
            .records
            .iter()
            .any(|r| matches!(r, Record::Observer(o) if o.observer == name))
        {
            // A trace without observer records says nothing either way.
            return Vec::new();
        }
        trace
            .unobserved(name, t0, t_end)
            .into_iter()
            .map(|(from, to)| Span { from, to })
            .collect()
    };
    let mut ips = Vec::new();
    let mut clients = Vec::new();
    for g in &scenario.groups {
        let window = scenario
            .checks
            .iter()
            .find_map(|c| match c {
                CheckSpec::NoIpConflict { group, window } if *group == g.name => Some(*window),
                _ => None,
            })
            .unwrap_or(Duration::from_secs(1));
        let held = held_spans(trace, g.ip, t0, t_end);
        let double = overlaps(&held);
        let wire: Vec<(u64, String, Option<String>)> = trace
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Arp(a)
                    if a.sender_ip == g.ip
                        && matches!(a.op, ArpKind::Reply | ArpKind::Announcement)
                        && (t0..=t_end).contains(&a.t) =>
                {
                    let mac = a.sender_mac.to_string();
                    let node = trace.node_of_mac(&mac).map(str::to_string);
                    Some((a.t, mac, node))
                }
                _ => None,
            })
            .collect();
        let mut wire_double = Vec::new();
        let w = window.as_nanos() as u64;
        for pair in wire.windows(2) {
            let ((ta, ma, _), (tb, mb, _)) = (&pair[0], &pair[1]);
            if ma != mb && tb - ta <= w {
                wire_double.push(Span { from: *ta, to: *tb });
            }
        }
        ips.push(IpLane {
            group: g.name.clone(),
            ip: g.ip,
            held,
            double,
            wire,
            wire_double: merge(wire_double),
            unobserved: unobserved("addr"),
            wire_unobserved: unobserved("arp"),
        });
        let probes = trace
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Client(c) if c.group == g.name && (t0..=t_end).contains(&c.t) => Some((
                    Span {
                        from: c.t,
                        to: clip(c.done.max(c.t)),
                    },
                    c.answered_by.clone(),
                    c.error.clone().unwrap_or_default(),
                )),
                _ => None,
            })
            .collect();
        clients.push(ClientLane {
            group: g.name.clone(),
            probes,
            unobserved: unobserved(&format!("client:{}", g.name)),
        });
    }
    Some(Lanes {
        t0,
        t_end,
        nodes,
        ips,
        clients,
    })
}

/// The mark an event gets, if any: kind and short label. Routine events
/// (starts, arming, peer links flapping, global updates) get none; they
/// are in the story below the timeline.
fn mark_of(e: &Event) -> Option<(MarkKind, String)> {
    let group = |g: &str, what: &str| format!("{g} {what}");
    Some(match &e.data {
        EventData::HangDetected(_) => (
            MarkKind::Detection,
            match e.id {
                Some(BUGCHECK_CODE) => "0x9E".to_string(),
                Some(id) => id.to_string(),
                None => "hang".to_string(),
            },
        ),
        EventData::DumpWritten(_) => (MarkKind::Recovery, "dump".into()),
        EventData::NodeFenced(_) => (MarkKind::Recovery, "fenced".into()),
        EventData::NodeRebooted(_) => (MarkKind::Recovery, "1001".into()),
        EventData::ServiceTerminated(_) => (MarkKind::Recovery, "7031".into()),
        EventData::ServiceRestarted(_) => (MarkKind::Recovery, "restart".into()),
        EventData::Poisoned(_) => (MarkKind::Membership, "poisoned".into()),
        EventData::PoisonSent(p) => (MarkKind::Membership, format!("poison {}", p.to)),
        EventData::QuorumLost(_) => (MarkKind::Membership, "no quorum".into()),
        EventData::PeerDown(p) => (MarkKind::Membership, format!("{} down", p.peer)),
        EventData::ClusterMessageRejected(_) => (MarkKind::Membership, "rejected".into()),
        EventData::GroupOnline(g) => (MarkKind::Group, group(&g.group, "online")),
        EventData::GroupOffline(g) => (MarkKind::Group, group(&g.group, "offline")),
        EventData::GroupOnlineFailed(g) => (MarkKind::Trouble, group(&g.group, "not here")),
        EventData::GroupFailed(g) => (MarkKind::Trouble, group(&g.group, "FAILED")),
        EventData::IpConflict(_) => (MarkKind::Trouble, "4199".into()),
        EventData::DiskWriteFailed(_) => (MarkKind::Trouble, "57/50".into()),
        _ => return None,
    })
}

/// Who held `ip`, per node, from the `addr` observer's records; a hold
/// still open at the end runs to `t_end`.
fn held_spans(trace: &Trace, ip: Ipv4Addr, t0: u64, t_end: u64) -> Vec<(String, Span)> {
    let mut since: BTreeMap<String, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for r in &trace.records {
        let Record::Addr(a) = r else { continue };
        if a.ip != ip || a.t > t_end {
            continue;
        }
        match (a.held, since.contains_key(&a.node)) {
            (true, false) => {
                since.insert(a.node.clone(), a.t.max(t0));
            }
            (false, true) => {
                let from = since.remove(&a.node).unwrap_or(t0);
                if a.t > t0 {
                    out.push((
                        a.node.clone(),
                        Span {
                            from,
                            to: a.t.max(from),
                        },
                    ));
                }
            }
            _ => {}
        }
    }
    out.extend(
        since
            .into_iter()
            .map(|(node, from)| (node, Span { from, to: t_end })),
    );
    out.sort_by_key(|(_, s)| s.from);
    out
}

/// Where two or more of `held` overlap, with who held it then.
fn overlaps(held: &[(String, Span)]) -> Vec<(Span, Vec<String>)> {
    let mut edges: Vec<(u64, i32)> = held
        .iter()
        .flat_map(|(_, s)| [(s.from, 1), (s.to, -1)])
        .collect();
    // At one instant, ends before starts: touching spans do not overlap.
    edges.sort();
    let mut out = Vec::new();
    let mut count = 0;
    let mut since = 0;
    for (t, d) in edges {
        let before = count;
        count += d;
        if before < 2 && count >= 2 {
            since = t;
        } else if before >= 2 && count < 2 && t > since {
            out.push(Span { from: since, to: t });
        }
    }
    out.into_iter()
        .map(|span| {
            let mut who: Vec<String> = held
                .iter()
                .filter(|(_, s)| s.from < span.to && s.to > span.from)
                .map(|(n, _)| n.clone())
                .collect();
            who.sort();
            who.dedup();
            (span, who)
        })
        .collect()
}

/// Overlapping or touching spans joined, in time order.
fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|s| s.from);
    let mut out: Vec<Span> = Vec::new();
    for s in spans {
        match out.last_mut() {
            Some(last) if s.from <= last.to => last.to = last.to.max(s.to),
            _ => out.push(s),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{at, TraceBuilder};
    use faultline_agent::events::{EventKind, RecoveryAction, Source};

    fn demo() -> Trace {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Bugcheck);
        b.heartbeats("n1", 0, 2000, 250)
            .freeze("n1", 2100, 5000)
            .hang_detected("n1", 3000.2, RecoveryAction::Bugcheck);
        b.event("n1", Source::Watchdog, EventKind::NodeFenced, 3004.0);
        b.settled(8000).end(8100);
        b.build()
    }

    #[test]
    fn a_node_lane_has_its_heartbeats_fault_window_and_detection() {
        let l = lanes(&demo()).unwrap();
        assert_eq!((l.t0, l.t_end), (at(0.0), at(8000.0)));
        let n1 = &l.nodes[0];
        assert_eq!(n1.heartbeats.len(), 9);
        assert_eq!(n1.faults.len(), 1);
        let f = &n1.faults[0];
        assert_eq!(f.kind, "freeze");
        assert_eq!(f.onset, Some(at(2100.0)));
        assert_eq!(f.healed, Some(at(5000.0)));
        assert!(f.requested < at(2100.0));
        let labels: Vec<&str> = n1.marks.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(labels, ["0x9E", "fenced"]);
        assert_eq!(n1.marks[0].kind, MarkKind::Detection);
        assert!(
            n1.marks[0].detail.contains("hang_detected"),
            "{:?}",
            n1.marks[0]
        );
        assert!(l.ips.is_empty() && l.clients.is_empty());
    }

    #[test]
    fn two_namespaces_holding_the_ip_at_once_is_a_double_span() {
        let mut b = TraceBuilder::cluster(&["n1", "n2", "n3"]);
        b.addr("n1", -20.0, true)
            .addr("n2", 3000.0, true)
            .addr("n1", 4500.0, false)
            .settled(6000);
        let l = lanes(&b.build()).unwrap();
        let ip = &l.ips[0];
        assert_eq!(ip.held.len(), 2, "{:?}", ip.held);
        assert_eq!(ip.held[0].1.from, at(0.0), "clipped to the start");
        assert_eq!(
            ip.double,
            vec![(
                Span {
                    from: at(3000.0),
                    to: at(4500.0)
                },
                vec!["n1".to_string(), "n2".to_string()]
            )]
        );
        assert_eq!(ip.held[1].1.to, at(6000.0), "still held at the end");
    }

    #[test]
    fn a_handover_is_not_double_ownership() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        b.addr("n1", 10.0, true)
            .addr("n1", 3000.0, false)
            .addr("n2", 3000.0, true)
            .settled(6000);
        assert!(lanes(&b.build()).unwrap().ips[0].double.is_empty());
    }

    #[test]
    fn two_macs_answering_within_the_window_mark_the_wire_red() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        b.arp_answer(1000.0, "n1")
            .arp_answer(1500.0, "n1")
            .arp_answer(4000.0, "n2")
            .arp_answer(4200.0, "n1")
            .settled(6000);
        let ip = &lanes(&b.build()).unwrap().ips[0];
        assert_eq!(ip.wire.len(), 4);
        assert_eq!(ip.wire[2].2.as_deref(), Some("n2"));
        assert_eq!(
            ip.wire_double,
            vec![Span {
                from: at(4000.0),
                to: at(4200.0)
            }]
        );
    }

    #[test]
    fn observer_down_spans_and_lost_records_are_unobserved() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        b.client(100.0, Some("n1"))
            .client(200.0, None)
            .client(3000.0, Some("n1"));
        b.heartbeats("n1", 0, 2000, 500);
        b.observer_down("addr", 1000.0, 2000.0)
            .lose("n1", Source::Watchdog, 1000.0)
            .settled(4000);
        let l = lanes(&b.build()).unwrap();
        assert_eq!(
            l.ips[0].unobserved,
            vec![Span {
                from: at(1000.0),
                to: at(2000.0)
            }]
        );
        assert!(l.ips[0].wire_unobserved.is_empty());
        assert_eq!(l.clients[0].probes.len(), 3);
        assert_eq!(l.clients[0].probes[1].1, None);
        let lost = &l.nodes[0].lost;
        assert_eq!(lost.len(), 1);
        assert_eq!(
            lost[0].0,
            Span {
                from: at(500.0),
                to: at(1500.0)
            }
        );
    }

    #[test]
    fn a_node_powered_off_until_the_end_is_off_to_the_edge() {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Bugcheck);
        b.settled(5000);
        let mut t = b.build();
        t.records.push(Record::Power {
            t: at(3000.0),
            node: "n1".into(),
            on: false,
            reason: "fenced".into(),
        });
        t.sort();
        let l = lanes(&t).unwrap();
        assert_eq!(
            l.nodes[0].off,
            vec![Span {
                from: at(3000.0),
                to: at(5000.0)
            }]
        );
        assert_eq!(l.nodes[0].marks[0].kind, MarkKind::PowerOff);
    }
}
