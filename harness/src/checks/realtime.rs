//! `watchdog_realtime`: every start of a node's watchdog ran SCHED_FIFO, as
//! the watchdog read it back from the kernel after asking
//! (`watchdog_started.policy`). A watchdog that could not get RT time
//! (an empty `cpu.rt_runtime_us`, a host budget spent) still runs, at
//! normal priority, and only this check tells.

use faultline_agent::events::{EventData, EventKind, Source};

use super::coverage;
use super::{CheckResult, Verdict};
use crate::plan::CheckSpec;
use crate::trace::Trace;

/// Judges `node`'s watchdog starts, or every node's when `None`.
pub fn watchdog_realtime(spec: &CheckSpec, trace: &Trace, node: Option<&str>) -> CheckResult {
    let nodes = match super::judged_nodes(spec, trace, node) {
        Ok(nodes) => nodes,
        Err(result) => return *result,
    };
    let start = trace.start().unwrap_or(0);
    let end = trace.end().unwrap_or_else(|| trace.last_t());
    let mut problems = Vec::new();
    let mut unseen = Vec::new();
    let mut starts = 0usize;
    let mut priorities = std::collections::BTreeSet::new();
    for n in &nodes {
        let mut seen = 0usize;
        for e in trace.events(Some(n), Some(EventKind::WatchdogStarted)) {
            let EventData::WatchdogStarted(d) = &e.data else {
                continue;
            };
            seen += 1;
            let at = (e.t as f64 - start as f64) / 1e9;
            if d.rt_priority <= 0 {
                problems.push(format!(
                    "`{n}`: its watchdog (pid {}) started at {at:+.3} s asked for normal \
                     scheduling (rt_priority {})",
                    e.pid, d.rt_priority
                ));
            } else if d.policy != "fifo" {
                problems.push(format!(
                    "`{n}`: its watchdog (pid {}) started at {at:+.3} s runs `{}`, not \
                     SCHED_FIFO (asked for priority {}; no RT time in its cgroup?)",
                    e.pid, d.policy, d.rt_priority
                ));
            } else {
                priorities.insert(d.rt_priority);
            }
        }
        if seen == 0 {
            problems.push(format!(
                "`{n}`: no watchdog_started: its watchdog never started"
            ));
            unseen.extend(coverage::gaps_within(trace, n, &[Source::Watchdog], 0, end));
        }
        starts += seen;
    }
    let r = if problems.is_empty() {
        let prios: Vec<String> = priorities.iter().map(i32::to_string).collect();
        CheckResult::new(
            spec,
            Verdict::Pass,
            format!(
                "{starts} watchdog start(s) on {} node(s), every one SCHED_FIFO (priority {})",
                nodes.len(),
                prios.join(", ")
            ),
        )
    } else {
        CheckResult::new(spec, Verdict::Fail, problems.join("; "))
    };
    // A start never seen may be a start lost: that alone is no proof.
    let only_unseen = problems.len() == nodes_without_start(trace, &nodes);
    if r.verdict == Verdict::Fail && only_unseen && !unseen.is_empty() {
        return coverage::inconclusive_gaps(spec, trace, &unseen, &r.detail)
            .measure("watchdog_starts", starts as f64);
    }
    r.measure("watchdog_starts", starts as f64)
}

fn nodes_without_start(trace: &Trace, nodes: &[&str]) -> usize {
    nodes
        .iter()
        .filter(|n| {
            trace
                .events(Some(n), Some(EventKind::WatchdogStarted))
                .next()
                .is_none()
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::TraceBuilder;
    use crate::checks::run_check;
    use faultline_agent::events::{RecoveryAction, WatchdogStarted};

    fn started(b: &mut TraceBuilder, node: &str, ms: f64, prio: i32, fifo: bool) {
        b.event(node, Source::Watchdog, EventKind::WatchdogStarted, ms)
            .data = EventData::WatchdogStarted(WatchdogStarted {
            rt_priority: prio,
            policy: if fifo { "fifo" } else { "other" }.into(),
            memory_locked: true,
        });
    }

    fn every_node() -> CheckSpec {
        CheckSpec::WatchdogRealtime { node: None }
    }

    #[test]
    fn passes_when_every_start_is_sched_fifo() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        started(&mut b, "n1", 1.0, 50, true);
        started(&mut b, "n2", 1.0, 50, true);
        started(&mut b, "n1", 3000.0, 50, true);
        let r = run_check(&every_node(), &b.end(5000).build());
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        assert_eq!(
            r.detail,
            "3 watchdog start(s) on 2 node(s), every one SCHED_FIFO (priority 50)"
        );
    }

    #[test]
    fn fails_on_a_start_at_normal_priority_naming_the_node() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        started(&mut b, "n1", 1.0, 50, true);
        started(&mut b, "n2", 1.0, 50, false);
        let r = run_check(&every_node(), &b.end(5000).build());
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.detail);
        assert!(
            r.detail.contains(
                "`n2`: its watchdog (pid 100) started at +0.001 s runs `other`, not \
                 SCHED_FIFO (asked for priority 50"
            ),
            "{}",
            r.detail
        );
        // One node only: n1 passes.
        let n1 = CheckSpec::WatchdogRealtime {
            node: Some("n1".into()),
        };
        assert_eq!(run_check(&n1, &b.build()).verdict, Verdict::Pass);
        // Asked for no RT priority at all: fails too.
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Bugcheck);
        started(&mut b, "n1", 1.0, 0, false);
        let r = run_check(&every_node(), &b.end(5000).build());
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.detail);
        assert!(r.detail.contains("normal scheduling"), "{}", r.detail);
    }

    #[test]
    fn a_watchdog_that_never_started_fails_or_is_inconclusive_over_a_gap() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        started(&mut b, "n1", 1.0, 50, true);
        b.heartbeats("n2", 0, 1000, 250);
        let r = run_check(&every_node(), &b.end(5000).build());
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.detail);
        assert!(
            r.detail.contains("`n2`: no watchdog_started"),
            "{}",
            r.detail
        );
        started(&mut b, "n2", 0.5, 50, true);
        b.lose("n2", Source::Watchdog, 0.5);
        let r = run_check(&every_node(), &b.build());
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
    }
}
