//! `events` and `quorum`: what the nodes reported about themselves. A
//! verdict that rests on an event's absence is inconclusive when records of
//! the nodes concerned were lost (a `gap`); an event seen stands.

use faultline_agent::events::EventKind;

use super::{CheckResult, Verdict};
use crate::plan::{snake_name, CheckSpec};
use crate::trace::{ms_between, Trace};

/// Gaps of `nodes`' agents (every node's when `None`) before the end.
fn lost_records<'a>(trace: &'a Trace, nodes: Option<&[&str]>) -> Vec<&'a crate::trace::GapRecord> {
    let end = trace.end().unwrap_or_else(|| trace.last_t());
    super::coverage::any_gaps_within(trace, 0, end)
        .into_iter()
        .filter(|g| nodes.is_none_or(|ns| ns.contains(&g.node.as_str())))
        .collect()
}

/// Each kind of `must` appears (on `node`, or on any node), and no kind of
/// `must_not` does during the timeline: what the nodes do while they are
/// stopped after it (a healed partition lets a last poison packet through,
/// groups go offline) is not the scenario's behaviour.
pub fn events(
    spec: &CheckSpec,
    trace: &Trace,
    node: Option<&str>,
    must: &[EventKind],
    must_not: &[EventKind],
) -> CheckResult {
    let start = trace.start().unwrap_or(0);
    let whom = node
        .map(|n| format!("`{n}`"))
        .unwrap_or_else(|| "any node".into());
    let mut problems = Vec::new();
    let mut found = Vec::new();
    for k in must {
        match trace.events(node, Some(*k)).next() {
            Some(e) => found.push(format!(
                "{} at {:+.3} s on `{}`",
                snake_name(k),
                ms_between(start, e.t) / 1e3,
                e.node
            )),
            None => problems.push(format!("{} never appeared on {whom}", snake_name(k))),
        }
    }
    let absent_must = problems.len();
    let settled = trace.settled().unwrap_or(u64::MAX);
    for k in must_not {
        let seen: Vec<_> = trace
            .events(node, Some(*k))
            .filter(|e| e.t <= settled)
            .collect();
        if let Some(e) = seen.first() {
            problems.push(format!(
                "{} appeared {} time(s) on {whom}, first at {:+.3} s on `{}`",
                snake_name(k),
                seen.len(),
                ms_between(start, e.t) / 1e3,
                e.node
            ));
        }
    }
    let nodes = node.map(|n| [n]);
    let gaps = lost_records(trace, nodes.as_ref().map(|n| n.as_slice()));
    if problems.is_empty() {
        let mut text = found.join(", ");
        if !must_not.is_empty() {
            if !text.is_empty() {
                text.push_str("; ");
            }
            text.push_str(&format!(
                "none of {} appeared",
                must_not
                    .iter()
                    .map(snake_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let r = CheckResult::new(spec, Verdict::Pass, text);
        if must_not.is_empty() || gaps.is_empty() {
            r
        } else {
            super::coverage::inconclusive_gaps(spec, trace, &gaps, &r.detail)
        }
    } else if absent_must == problems.len() && !gaps.is_empty() {
        // Only missing events: they may be among the lost records.
        super::coverage::inconclusive_gaps(spec, trace, &gaps, &problems.join("; "))
    } else {
        CheckResult::new(spec, Verdict::Fail, problems.join("; "))
    }
}

/// Nodes in `held` gained quorum and never lost it; nodes in `lost` lost it
/// at least once.
pub fn quorum(spec: &CheckSpec, trace: &Trace, held: &[String], lost: &[String]) -> CheckResult {
    let start = trace.start().unwrap_or(0);
    let mut problems = Vec::new();
    let mut r = CheckResult::new(spec, Verdict::Pass, String::new());
    let mut said = Vec::new();
    // Verdicts on held nodes rest on absences (never lost) as do those on
    // lost nodes that never lost it; only a loss seen stands on its own.
    let mut seen_problems = 0usize;
    for n in held {
        let gained = trace.events(Some(n), Some(EventKind::QuorumGained)).next();
        let lost_at = gained.and_then(|g| {
            trace
                .events(Some(n), Some(EventKind::QuorumLost))
                .find(|e| e.t > g.t)
        });
        match (gained, lost_at) {
            (None, _) => problems.push(format!("`{n}` never gained quorum")),
            (Some(_), Some(l)) => {
                seen_problems += 1;
                problems.push(format!(
                    "`{n}` lost quorum at {:+.3} s",
                    ms_between(start, l.t) / 1e3
                ))
            }
            (Some(_), None) => said.push(format!("`{n}` held quorum throughout")),
        }
    }
    for n in lost {
        match trace.events(Some(n), Some(EventKind::QuorumLost)).next() {
            Some(e) => {
                let at = ms_between(start, e.t);
                said.push(format!("`{n}` lost quorum at {:+.3} s", at / 1e3));
                r = r.measure(&format!("{n}_lost_ms"), at);
            }
            None => problems.push(format!("`{n}` never lost quorum")),
        }
    }
    let nodes: Vec<&str> = held.iter().chain(lost).map(String::as_str).collect();
    let gaps = lost_records(trace, Some(&nodes));
    if problems.is_empty() {
        r.detail = said.join("; ");
        if !held.is_empty() && !gaps.is_empty() {
            return super::coverage::inconclusive_gaps(spec, trace, &gaps, &r.detail);
        }
        r
    } else if seen_problems == 0 && !gaps.is_empty() {
        super::coverage::inconclusive_gaps(spec, trace, &gaps, &problems.join("; "))
    } else {
        r.verdict = Verdict::Fail;
        r.detail = problems.join("; ");
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::TraceBuilder;
    use crate::checks::run_check;
    use faultline_agent::events::Source;

    #[test]
    fn events_must_and_must_not() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        b.event("n2", Source::Service, EventKind::IpConflict, 3000.0);
        let trace = b.settled(6000).end(6100).build();
        let spec = |node: &str, must: Vec<EventKind>, must_not: Vec<EventKind>| CheckSpec::Events {
            node: Some(node.into()),
            must,
            must_not,
        };
        let r = run_check(
            &spec("n2", vec![EventKind::IpConflict], vec![EventKind::Poisoned]),
            &trace,
        );
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        let r = run_check(&spec("n1", vec![EventKind::IpConflict], vec![]), &trace);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(
            r.detail.contains("ip_conflict never appeared on `n1`"),
            "{}",
            r.detail
        );
        let r = run_check(&spec("n2", vec![], vec![EventKind::IpConflict]), &trace);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(
            r.detail
                .contains("ip_conflict appeared 1 time(s) on `n2`, first at +3.000 s"),
            "{}",
            r.detail
        );
    }

    /// Regression: a one-way partition healed as the run ended let one
    /// poison packet through while the nodes were being stopped, and
    /// `must_not: [poisoned]` failed on it.
    #[test]
    fn events_must_not_judges_the_timeline_not_the_stopping_after_it() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        b.event("n1", Source::Service, EventKind::Poisoned, 6027.0);
        let trace = b.settled(6000).end(6100).build();
        let spec = CheckSpec::Events {
            node: Some("n1".into()),
            must: vec![],
            must_not: vec![EventKind::Poisoned],
        };
        assert_eq!(run_check(&spec, &trace).verdict, Verdict::Pass);
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        b.event("n1", Source::Service, EventKind::Poisoned, 5990.0);
        let trace = b.settled(6000).end(6100).build();
        assert_eq!(run_check(&spec, &trace).verdict, Verdict::Fail);
    }

    #[test]
    fn events_resting_on_an_absence_over_lost_records_are_inconclusive() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        b.event("n2", Source::Service, EventKind::IpConflict, 3000.0);
        b.event("n2", Source::Service, EventKind::QuorumGained, 4000.0);
        b.lose("n2", Source::Service, 3000.0);
        let trace = b.settled(6000).end(6100).build();
        let spec = |must: Vec<EventKind>, must_not: Vec<EventKind>| CheckSpec::Events {
            node: Some("n2".into()),
            must,
            must_not,
        };
        let r = run_check(&spec(vec![EventKind::IpConflict], vec![]), &trace);
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
        assert!(
            r.detail.contains("ip_conflict never appeared"),
            "{}",
            r.detail
        );
        let r = run_check(&spec(vec![], vec![EventKind::IpConflict]), &trace);
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
        // Seen is seen.
        let r = run_check(&spec(vec![], vec![EventKind::QuorumGained]), &trace);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.detail);
        let r = run_check(&spec(vec![EventKind::QuorumGained], vec![]), &trace);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
    }

    #[test]
    fn quorum_never_lost_over_lost_records_is_inconclusive() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        b.event("n2", Source::Service, EventKind::QuorumGained, 100.0);
        b.event("n2", Source::Service, EventKind::QuorumLost, 3000.0);
        b.event("n2", Source::Service, EventKind::PeerLost, 3500.0);
        b.lose("n2", Source::Service, 3000.0);
        let trace = b.settled(6000).end(6100).build();
        let spec = |held: &[&str], lost: &[&str]| CheckSpec::Quorum {
            held: held.iter().map(|s| s.to_string()).collect(),
            lost: lost.iter().map(|s| s.to_string()).collect(),
        };
        let r = run_check(&spec(&[], &["n2"]), &trace);
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
        assert!(r.detail.contains("`n2` never lost quorum"), "{}", r.detail);
        let r = run_check(&spec(&["n2"], &[]), &trace);
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
    }

    #[test]
    fn quorum_held_and_lost() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        b.event("n1", Source::Service, EventKind::QuorumGained, 100.0);
        b.event("n2", Source::Service, EventKind::QuorumGained, 100.0);
        b.event("n2", Source::Service, EventKind::QuorumLost, 3000.0);
        let trace = b.settled(6000).end(6100).build();
        let spec = |held: &[&str], lost: &[&str]| CheckSpec::Quorum {
            held: held.iter().map(|s| s.to_string()).collect(),
            lost: lost.iter().map(|s| s.to_string()).collect(),
        };
        let r = run_check(&spec(&["n1"], &["n2"]), &trace);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        assert_eq!(r.measured["n2_lost_ms"], 3000.0);
        let r = run_check(&spec(&["n2"], &["n1"]), &trace);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(
            r.detail.contains("`n2` lost quorum at +3.000 s"),
            "{}",
            r.detail
        );
        assert!(r.detail.contains("`n1` never lost quorum"), "{}", r.detail);
    }
}
