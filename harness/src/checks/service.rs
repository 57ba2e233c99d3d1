//! `service_ready`: every start of a node's service (the node's power-on,
//! or a restart by its supervisor) is followed by the service's own
//! `service_started` (it read its database and said hello to its watchdog)
//! within `within`. This sees what hang detection cannot: a service held
//! while it starts, before its watchdog is armed (seed 000).
//!
//! It judges the trace only; it never reads the host.

use std::time::Duration;

use faultline_agent::events::{EventKind, Source};

use super::coverage::{gaps_within, rel};
use super::{CheckResult, Verdict};
use crate::plan::CheckSpec;
use crate::trace::Trace;

fn ms(from: u64, to: u64) -> f64 {
    to.saturating_sub(from) as f64 / 1e6
}

/// See the module documentation. Measured: `ready_ms`, the slowest start.
pub fn service_ready(spec: &CheckSpec, trace: &Trace, node: &str, within: Duration) -> CheckResult {
    let within_ns = within.as_nanos() as u64;
    let starts: Vec<u64> = trace
        .events(Some(node), None)
        .filter(|e| {
            matches!(
                e.kind(),
                EventKind::NodeStarted | EventKind::ServiceRestarted
            )
        })
        .map(|e| e.t)
        .collect();
    if starts.is_empty() {
        return CheckResult::new(
            spec,
            Verdict::Error,
            format!("`{node}`'s service never started: nothing to judge"),
        );
    }
    let readies: Vec<u64> = trace
        .events(Some(node), Some(EventKind::ServiceStarted))
        .map(|e| e.t)
        .collect();
    let end = trace.settled().unwrap_or_else(|| trace.last_t());
    let mut slowest = 0.0f64;
    let mut late = Vec::new();
    let mut unknown = Vec::new();
    for (i, &s) in starts.iter().enumerate() {
        let next = starts.get(i + 1).copied().unwrap_or(u64::MAX);
        let ready = readies.iter().copied().find(|&r| r >= s && r < next);
        match ready {
            Some(r) => {
                slowest = slowest.max(ms(s, r));
                if r - s > within_ns {
                    late.push(format!(
                        "started at {} but ready only {:.1} ms later",
                        rel(trace, s),
                        ms(s, r)
                    ));
                }
            }
            None => {
                let until = next.min(end);
                if until.saturating_sub(s) > within_ns {
                    slowest = slowest.max(ms(s, until));
                    let gaps = gaps_within(trace, node, &[Source::Service], s, s + within_ns);
                    if gaps.is_empty() {
                        late.push(format!(
                            "started at {} and not ready {:.1} ms later",
                            rel(trace, s),
                            ms(s, until)
                        ));
                    } else {
                        unknown.push(format!(
                            "started at {}: not seen ready, but {} of its records were lost",
                            rel(trace, s),
                            gaps.iter().map(|g| g.missing).sum::<u64>()
                        ));
                    }
                }
            }
        }
    }
    let (verdict, detail) = if !late.is_empty() {
        (
            Verdict::Fail,
            format!(
                "`{node}`'s service {}, more than {} ms",
                late.join("; "),
                within.as_millis()
            ),
        )
    } else if !unknown.is_empty() {
        (
            Verdict::Inconclusive,
            format!("`{node}`'s service {}", unknown.join("; ")),
        )
    } else {
        (
            Verdict::Pass,
            format!(
                "`{node}`'s service was ready within {:.1} ms of each of its {} start(s) (at most {} ms)",
                slowest,
                starts.len(),
                within.as_millis()
            ),
        )
    };
    CheckResult::new(spec, verdict, detail).measure("ready_ms", slowest)
}

#[cfg(test)]
mod tests {
    use faultline_agent::events::RecoveryAction;

    use super::super::fixtures::TraceBuilder;
    use super::super::run_check;
    use super::*;

    fn spec() -> CheckSpec {
        CheckSpec::ServiceReady {
            node: "n1".into(),
            within: Duration::from_millis(500),
        }
    }

    fn base() -> TraceBuilder {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Bugcheck);
        b.check(spec());
        b.event("n1", Source::Supervisor, EventKind::NodeStarted, 0.0);
        b.event("n1", Source::Service, EventKind::ServiceStarted, 20.0);
        b
    }

    #[test]
    fn a_prompt_start_and_restart_pass() {
        let mut b = base();
        b.service_terminated("n1", 1000.0);
        b.event(
            "n1",
            Source::Supervisor,
            EventKind::ServiceRestarted,
            1300.0,
        );
        b.event("n1", Source::Service, EventKind::ServiceStarted, 1320.0);
        b.end(5000);
        let r = run_check(&spec(), &b.build());
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        assert_eq!(r.measured["ready_ms"], 20.0);
    }

    #[test]
    fn a_restart_held_past_the_bound_fails_seed_000() {
        let mut b = base();
        b.event(
            "n1",
            Source::Supervisor,
            EventKind::ServiceRestarted,
            1300.0,
        );
        b.event("n1", Source::Service, EventKind::ServiceStarted, 4100.0);
        b.end(6000);
        let r = run_check(&spec(), &b.build());
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.detail);
        assert!(
            r.detail.contains("ready only 2800.0 ms later"),
            "{}",
            r.detail
        );

        // Never ready before the run ended: a failure too.
        let mut b = base();
        b.event(
            "n1",
            Source::Supervisor,
            EventKind::ServiceRestarted,
            1300.0,
        );
        b.end(6000);
        let r = run_check(&spec(), &b.build());
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.detail);
        assert!(
            r.detail.contains("not ready 4700.0 ms later"),
            "{}",
            r.detail
        );
    }

    #[test]
    fn lost_service_records_make_a_missing_start_inconclusive() {
        let mut b = base();
        b.event(
            "n1",
            Source::Supervisor,
            EventKind::ServiceRestarted,
            1300.0,
        );
        b.event("n1", Source::Service, EventKind::ServiceStarted, 1400.0);
        b.lose("n1", Source::Service, 1400.0);
        b.end(6000);
        let r = run_check(&spec(), &b.build());
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
    }

    #[test]
    fn a_start_the_run_ended_too_soon_after_is_not_judged_and_no_start_is_an_error() {
        let mut b = base();
        b.event(
            "n1",
            Source::Supervisor,
            EventKind::ServiceRestarted,
            5800.0,
        );
        b.end(6000);
        assert_eq!(run_check(&spec(), &b.build()).verdict, Verdict::Pass);
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Bugcheck);
        b.end(100);
        assert_eq!(run_check(&spec(), &b.build()).verdict, Verdict::Error);
    }
}
