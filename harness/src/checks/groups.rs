//! `failover_within` and `group_state`: where a resource group was online,
//! from the agents' group events, cross-checked against the address
//! observer, which no agent can influence.

use std::collections::BTreeSet;
use std::time::Duration;

use faultline_agent::events::{EventData, EventKind};

use super::{CheckResult, Verdict};
use crate::plan::{CheckSpec, GroupState};
use crate::trace::{ms_between, FaultPhase, Record, Trace};

/// One stretch of time a group was online on a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Online {
    /// The node.
    pub node: String,
    /// When it came online (GroupOnline).
    pub from: u64,
    /// When it stopped being online, if it did: offline, the service died
    /// (the application ran in it), or the node lost power.
    pub to: Option<u64>,
}

/// Every stretch the group was online, in time order.
pub fn online_intervals(trace: &Trace, group: &str) -> Vec<Online> {
    let mut open: Vec<Online> = Vec::new();
    let mut done = Vec::new();
    let is_group = |e: &faultline_agent::events::Event| e.data.group() == Some(group);
    for r in &trace.records {
        let (t, node, ends) = match r {
            Record::Event(e) if e.kind() == EventKind::GroupOnline && is_group(e) => {
                open.retain(|o| {
                    o.node != e.node || {
                        done.push(Online {
                            to: Some(e.t),
                            ..o.clone()
                        });
                        false
                    }
                });
                open.push(Online {
                    node: e.node.clone(),
                    from: e.t,
                    to: None,
                });
                continue;
            }
            Record::Event(e) if e.kind() == EventKind::GroupOffline && is_group(e) => {
                (e.t, e.node.as_str(), true)
            }
            Record::Event(e)
                if matches!(
                    e.kind(),
                    EventKind::ServiceTerminated | EventKind::Poisoned | EventKind::NodeFenced
                ) =>
            {
                (e.t, e.node.as_str(), true)
            }
            Record::Power {
                t, node, on: false, ..
            } => (*t, node.as_str(), true),
            _ => continue,
        };
        if ends {
            open.retain(|o| {
                o.node != node || {
                    done.push(Online {
                        to: Some(t),
                        ..o.clone()
                    });
                    false
                }
            });
        }
    }
    done.extend(open);
    done.sort_by_key(|o| o.from);
    done
}

/// Nodes on which the group was online at `t`.
pub fn online_at(intervals: &[Online], t: u64) -> Vec<String> {
    let mut nodes: Vec<String> = intervals
        .iter()
        .filter(|o| o.from <= t && o.to.is_none_or(|to| to > t))
        .map(|o| o.node.clone())
        .collect();
    nodes.sort();
    nodes.dedup();
    nodes
}

/// Namespaces holding `ip` at `t`, by the address observer; `None` when the
/// observer recorded nothing for it.
pub fn holders_at(trace: &Trace, ip: std::net::Ipv4Addr, t: u64) -> Option<BTreeSet<String>> {
    let mut seen = false;
    let mut held = BTreeSet::new();
    for r in &trace.records {
        if let Record::Addr(a) = r {
            if a.ip != ip {
                continue;
            }
            seen = true;
            if a.t > t {
                break;
            }
            if a.held {
                held.insert(a.node.clone());
            } else {
                held.remove(&a.node);
            }
        }
    }
    seen.then_some(held)
}

/// After the first fault's onset, the group came online on exactly one node
/// other than the faulted one within `within`.
///
/// Inconclusive when agents' records were lost between the onset and the
/// cross-check (a lost 1201 or 1203 changes who was online), or when the
/// address observer did not observe the timeline up to the cross-check.
/// `served_ms` is measured only when the client observed the whole span
/// from the takeover to the first answer.
pub fn failover_within(
    spec: &CheckSpec,
    trace: &Trace,
    group: &str,
    within: Duration,
) -> CheckResult {
    let (r, span) = judge_failover(spec, trace, group, within);
    let Some((from, to)) = span else { return r };
    let gaps = super::coverage::any_gaps_within(trace, from, to);
    if gaps.is_empty() {
        r
    } else {
        super::coverage::inconclusive_gaps(spec, trace, &gaps, &r.detail)
    }
}

/// The verdict, and the span in which lost agents' records could change it.
fn judge_failover(
    spec: &CheckSpec,
    trace: &Trace,
    group: &str,
    within: Duration,
) -> (CheckResult, Option<(u64, u64)>) {
    let plan = match super::group_plan(spec, trace, group) {
        Ok(found) => found,
        Err(error) => return (*error, None),
    };
    let end = trace.settled().unwrap_or_else(|| trace.last_t());
    let Some((onset, faulted)) = trace.records.iter().find_map(|r| match r {
        Record::Fault(f) if f.phase == FaultPhase::Injected => Some((f.t, f.node.clone())),
        _ => None,
    }) else {
        return (
            CheckResult::new(
                spec,
                Verdict::Error,
                "no fault took effect: nothing to fail over from",
            ),
            None,
        );
    };
    let intervals = online_intervals(trace, group);
    let Some(moved) = intervals
        .iter()
        .find(|o| o.from >= onset && o.node != faulted)
    else {
        let why: Vec<String> = trace
            .events(None, None)
            .filter(|e| e.t >= onset && e.data.group() == Some(group))
            .filter(|e| {
                matches!(
                    e.kind(),
                    EventKind::IpConflict | EventKind::GroupOnlineFailed | EventKind::GroupFailed
                )
            })
            .map(|e| {
                format!(
                    "{} {:?} at {:+.3} s",
                    e.node,
                    e.kind(),
                    ms_between(onset, e.t) / 1e3
                )
                .to_lowercase()
            })
            .collect();
        let mut detail =
            format!("`{group}` never came online on a node other than `{faulted}` after the fault");
        if !why.is_empty() {
            detail.push_str(&format!(" ({})", why.join("; ")));
        }
        return (
            CheckResult::new(spec, Verdict::Fail, detail),
            Some((onset, end)),
        );
    };
    let took = ms_between(onset, moved.from);
    let mut r = if took > within.as_secs_f64() * 1e3 {
        CheckResult::new(
            spec,
            Verdict::Fail,
            format!(
                "`{group}` came online on `{}` {took:.1} ms after the onset, later than {} ms",
                moved.node,
                within.as_millis()
            ),
        )
    } else {
        CheckResult::new(
            spec,
            Verdict::Pass,
            format!(
                "`{group}` online on `{}` {took:.1} ms after the onset",
                moved.node
            ),
        )
    };
    // Exactly one: no other node online, and the wire observer agrees.
    let others = online_at(&intervals, moved.from);
    if others.len() > 1 {
        r.verdict = Verdict::Fail;
        r.detail = format!("`{group}` was online on {} at once", others.join(" and "));
    }
    let settle = moved.from + 500_000_000;
    let start = trace.start().unwrap_or(0);
    let addr_hole = super::coverage::unobserved_text(trace, "addr", start, settle);
    match (&addr_hole, holders_at(trace, plan.ip, settle)) {
        // A state pieced together over a hole may be stale: no cross-check.
        (Some(_), _) | (None, None) => {}
        (None, Some(holders)) => {
            if holders.len() != 1 || !holders.contains(&moved.node) {
                r.verdict = Verdict::Fail;
                r.detail = format!(
                    "`{group}` reported online on `{}`, but 500 ms later {} held {} in the address observer's view",
                    moved.node,
                    if holders.is_empty() { "nobody".to_string() } else { holders.iter().cloned().collect::<Vec<_>>().join(" and ") },
                    plan.ip
                );
            }
        }
    }
    r = r.measure("failover_ms", took);
    if let (Verdict::Pass, Some(hole)) = (r.verdict, &addr_hole) {
        r.verdict = Verdict::Inconclusive;
        r.detail = format!(
            "inconclusive: {}, but the address observer cannot confirm it: {hole}",
            r.detail
        );
    }
    let client = format!("client:{group}");
    if let Some(served) = trace.records.iter().find_map(|rec| match rec {
        Record::Client(c)
            if c.group == group
                && c.t >= moved.from
                && c.answered_by.as_deref() == Some(moved.node.as_str()) =>
        {
            Some(c.t)
        }
        _ => None,
    }) {
        match super::coverage::unobserved_text(trace, &client, moved.from, served) {
            None => r = r.measure("served_ms", ms_between(onset, served)),
            Some(hole) => r
                .detail
                .push_str(&format!("; served_ms not measured: {hole}")),
        }
    }
    (r, Some((onset, settle)))
}

/// The group's state when the timeline ended. Inconclusive when any agent's
/// records were lost before then: a lost 1201, 1203 or 1205 changes it.
pub fn group_state(
    spec: &CheckSpec,
    trace: &Trace,
    group: &str,
    want: GroupState,
    node: Option<&str>,
) -> CheckResult {
    let Some(end) = trace.settled() else {
        return CheckResult::new(spec, Verdict::Error, "the trace has no end");
    };
    let r = state_at(spec, trace, group, want, node, end);
    let gaps = super::coverage::any_gaps_within(trace, 0, end);
    if gaps.is_empty() || r.verdict == Verdict::Error {
        r
    } else {
        super::coverage::inconclusive_gaps(spec, trace, &gaps, &r.detail)
    }
}

fn state_at(
    spec: &CheckSpec,
    trace: &Trace,
    group: &str,
    want: GroupState,
    node: Option<&str>,
    end: u64,
) -> CheckResult {
    let intervals = online_intervals(trace, group);
    let online = online_at(&intervals, end);
    let last_online = intervals
        .iter()
        .map(|o| o.from)
        .filter(|t| *t <= end)
        .max()
        .unwrap_or(0);
    let failed = trace
        .events(None, Some(EventKind::GroupFailed))
        .filter(|e| e.data.group() == Some(group))
        .find(|e| e.t <= end && e.t >= last_online);
    let (actual, text) = match (online.as_slice(), failed) {
        ([one], _) => (GroupState::Online, format!("online on `{one}`")),
        ([], Some(e)) => (
            GroupState::Failed,
            format!(
                "failed (1205 from `{}`: every owner failed{})",
                e.node,
                match &e.data {
                    EventData::GroupFailed(f) => format!(" on {:?}", f.failed_on),
                    _ => String::new(),
                }
            ),
        ),
        ([], None) => (GroupState::Offline, "offline".to_string()),
        (many, _) => {
            return CheckResult::new(
                spec,
                Verdict::Fail,
                format!("`{group}` is online on {} at once", many.join(" and ")),
            )
        }
    };
    let place_ok = match (want, node) {
        (GroupState::Online, Some(n)) => online.iter().any(|o| o == n),
        _ => true,
    };
    if actual == want && place_ok {
        CheckResult::new(
            spec,
            Verdict::Pass,
            format!("`{group}` is {text} at the end"),
        )
    } else {
        let wanted = match (want, node) {
            (GroupState::Online, Some(n)) => format!("online on `{n}`"),
            (s, _) => format!("{s:?}").to_lowercase(),
        };
        CheckResult::new(
            spec,
            Verdict::Fail,
            format!("`{group}` is {text} at the end, expected {wanted}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::TraceBuilder;
    use crate::checks::run_check;
    use faultline_agent::events::Source;

    fn failover(within_ms: u64) -> CheckSpec {
        CheckSpec::FailoverWithin {
            group: "sql".into(),
            within: Duration::from_millis(within_ms),
        }
    }

    /// n1 owns sql, is frozen at 2000 ms; n2 takes over at `takeover_ms`.
    fn moved(takeover_ms: Option<f64>, n1_keeps_ip: bool) -> TraceBuilder {
        let mut b = TraceBuilder::cluster(&["n1", "n2", "n3"]);
        b.group_online("n1", 500.0)
            .addr("n1", 500.0, true)
            .freeze("n1", 2000, 9000);
        b.event("n1", Source::Watchdog, EventKind::NodeFenced, 3000.0);
        if let Some(ms) = takeover_ms {
            b.group_online("n2", ms).addr("n2", ms, true);
            if !n1_keeps_ip {
                b.addr("n1", ms - 100.0, false);
            }
            b.client(ms + 100.0, Some("n2"));
        }
        b.settled(9000).end(9100);
        b
    }

    #[test]
    fn failover_passes_and_measures_when_one_other_node_takes_over_in_time() {
        let r = run_check(&failover(5000), &moved(Some(4000.0), false).build());
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        assert_eq!(r.measured["failover_ms"], 2000.0);
        assert_eq!(r.measured["served_ms"], 2100.0);
    }

    #[test]
    fn failover_fails_when_late_never_or_doubly_held() {
        let late = run_check(&failover(1000), &moved(Some(4000.0), false).build());
        assert_eq!(late.verdict, Verdict::Fail);
        assert!(
            late.detail.contains("later than 1000 ms"),
            "{}",
            late.detail
        );

        let never = run_check(&failover(5000), &moved(None, false).build());
        assert_eq!(never.verdict, Verdict::Fail);
        assert!(
            never.detail.contains("never came online"),
            "{}",
            never.detail
        );

        let twice = run_check(&failover(5000), &moved(Some(4000.0), true).build());
        assert_eq!(twice.verdict, Verdict::Fail);
        assert!(twice.detail.contains("n1 and n2 held"), "{}", twice.detail);
    }

    #[test]
    fn failover_unconfirmed_by_the_address_observer_is_inconclusive() {
        let mut b = moved(Some(4000.0), false);
        b.observer_down("addr", 3000.0, 5000.0);
        let r = run_check(&failover(5000), &b.build());
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
        assert!(
            r.detail
                .contains("observer `addr` did not observe from +3.000 s to +4.500 s"),
            "{}",
            r.detail
        );
        // A state pieced together over the hole is not evidence either way.
        let mut b = moved(Some(4000.0), true);
        b.observer_down("addr", 3000.0, 5000.0);
        let r = run_check(&failover(5000), &b.build());
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
        // Late is late, whatever the observer saw.
        let r = run_check(&failover(1000), &b.build());
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.detail);
    }

    #[test]
    fn failover_with_a_lost_group_event_is_inconclusive() {
        let mut b = moved(Some(4000.0), false);
        b.event("n2", Source::Service, EventKind::QuorumGained, 6000.0);
        b.lose("n2", Source::Service, 4000.0);
        let r = run_check(&failover(5000), &b.build());
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
        assert!(r.detail.contains("`n2`'s service"), "{}", r.detail);
        assert!(r.detail.contains("never came online"), "{}", r.detail);
    }

    #[test]
    fn served_ms_is_measured_only_over_what_the_client_observed() {
        let mut b = moved(Some(4000.0), false);
        b.observer_down("client:sql", 3500.0, 4050.0);
        let r = run_check(&failover(5000), &b.build());
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        assert!(!r.measured.contains_key("served_ms"), "{:?}", r.measured);
        assert!(r.detail.contains("served_ms not measured"), "{}", r.detail);
    }

    #[test]
    fn group_state_with_a_lost_group_event_is_inconclusive() {
        let mut b = moved(Some(4000.0), false);
        b.event("n2", Source::Service, EventKind::QuorumGained, 6000.0);
        b.group_event_offline("n2", 5000.0);
        let trace = b.build();
        assert_eq!(
            run_check(&state(GroupState::Offline, None), &trace).verdict,
            Verdict::Pass
        );
        b.lose("n2", Source::Service, 5000.0);
        let r = run_check(&state(GroupState::Offline, None), &b.build());
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
        assert!(
            r.detail.contains("online on `n2` at the end"),
            "{}",
            r.detail
        );
    }

    fn state(want: GroupState, node: Option<&str>) -> CheckSpec {
        CheckSpec::GroupState {
            group: "sql".into(),
            state: want,
            node: node.map(str::to_string),
        }
    }

    #[test]
    fn group_state_online_where_expected() {
        let trace = moved(Some(4000.0), false).build();
        assert_eq!(
            run_check(&state(GroupState::Online, Some("n2")), &trace).verdict,
            Verdict::Pass
        );
        let r = run_check(&state(GroupState::Online, Some("n1")), &trace);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(
            r.detail
                .contains("online on `n2` at the end, expected online on `n1`"),
            "{}",
            r.detail
        );
        assert_eq!(
            run_check(&state(GroupState::Failed, None), &trace).verdict,
            Verdict::Fail
        );
    }

    #[test]
    fn group_state_failed_when_every_owner_failed_after_the_service_died() {
        let mut b = TraceBuilder::cluster(&["n1", "n2", "n3"]);
        b.group_online("n1", 500.0).freeze("n1", 2000, 9000);
        b.service_terminated("n1", 4000.0)
            .group_failed("n2", 5000.0);
        let trace = b.settled(9000).end(9100).build();
        let r = run_check(&state(GroupState::Failed, None), &trace);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        let r = run_check(&state(GroupState::Online, None), &trace);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.contains("failed (1205 from `n2`"), "{}", r.detail);
    }

    #[test]
    fn group_state_fails_when_online_on_two_nodes() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        b.group_online("n1", 500.0).group_online("n2", 3000.0);
        let r = run_check(
            &state(GroupState::Online, None),
            &b.settled(9000).end(9100).build(),
        );
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(
            r.detail.contains("online on n1 and n2 at once"),
            "{}",
            r.detail
        );
    }
}
