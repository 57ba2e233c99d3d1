//! `no_ip_conflict` and `client_downtime`: judged only from what observers
//! outside every node saw (ARP on the bridges, addresses in the namespaces,
//! the client's answers), so they hold for any HA daemon, not only ours.
//!
//! They judge only the time their observers observed (from an observer's
//! `up` record to its next `down`): a conflict or an outage seen is a
//! failure, but a pass over a window an observer did not fully observe is
//! inconclusive and names the unobserved span.

use std::collections::BTreeSet;
use std::time::Duration;

use faultline_agent::arp::ArpKind;

use super::{CheckResult, Verdict};
use crate::plan::CheckSpec;
use crate::trace::{ms_between, Record, Trace};

/// The judged window of the wire checks: the timeline, from its start to
/// its end (`settled`).
fn timeline(trace: &Trace) -> (u64, u64) {
    let start = trace
        .start()
        .or_else(|| trace.header().map(|h| h.t))
        .unwrap_or(0);
    let end = trace.settled().unwrap_or_else(|| trace.last_t());
    (start, end.max(start))
}

/// Never two hardware addresses answering ARP for the group's IP within
/// `window` of each other, and never two namespaces holding it at once.
/// Inconclusive, when nothing was seen, if the `arp` or `addr` observer
/// missed part of the timeline.
pub fn no_ip_conflict(
    spec: &CheckSpec,
    trace: &Trace,
    group: &str,
    window: Duration,
) -> CheckResult {
    let plan = match super::group_plan(spec, trace, group) {
        Ok(found) => found,
        Err(error) => return *error,
    };
    let ip = plan.ip;
    let start = trace.start().unwrap_or(0);
    let at = |t: u64| format!("{:+.3} s", ms_between(start, t) / 1e3);
    let who = |mac: &str| {
        trace
            .node_of_mac(mac)
            .map(|n| format!("{mac} ({n})"))
            .unwrap_or_else(|| format!("{mac} (no node)"))
    };
    let answers: Vec<(u64, String)> = trace
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Arp(a)
                if a.sender_ip == ip && matches!(a.op, ArpKind::Reply | ArpKind::Announcement) =>
            {
                Some((a.t, a.sender_mac.to_string()))
            }
            _ => None,
        })
        .collect();
    let window_ns = window.as_nanos() as u64;
    let mut problems = Vec::new();
    let mut wire_conflicts = 0usize;
    // Report the closest pair: the clearest evidence of two holders.
    let mut closest: Option<(u64, u64, &str, &str)> = None;
    for (i, (t, mac)) in answers.iter().enumerate() {
        if let Some((t2, mac2)) = answers[i + 1..]
            .iter()
            .take_while(|(t2, _)| t2 - t <= window_ns)
            .find(|(_, m)| m != mac)
        {
            wire_conflicts += 1;
            if closest.is_none_or(|(a, b, _, _)| t2 - t < b - a) {
                closest = Some((*t, *t2, mac, mac2));
            }
        }
    }
    let first_wire = closest.map(|(t, t2, mac, mac2)| {
        format!(
            "{ip} answered on the wire by {} and {} {:.1} ms apart at {} ({wire_conflicts} answers had a rival within {} ms)",
            who(mac),
            who(mac2),
            ms_between(t, t2),
            at(t),
            window.as_millis()
        )
    });
    problems.extend(first_wire);

    let mut held: BTreeSet<String> = BTreeSet::new();
    let mut addr_seen = false;
    let mut max_holders = 0usize;
    let mut double: Option<(u64, Vec<String>)> = None;
    let mut double_for = 0u64;
    for r in &trace.records {
        if let Record::Addr(a) = r {
            if a.ip != ip {
                continue;
            }
            addr_seen = true;
            if a.held {
                held.insert(a.node.clone());
            } else {
                held.remove(&a.node);
            }
            max_holders = max_holders.max(held.len());
            match (&double, held.len() >= 2) {
                (None, true) => double = Some((a.t, held.iter().cloned().collect())),
                (Some((since, _)), false) if double_for == 0 => double_for = a.t - since,
                _ => {}
            }
        }
    }
    if let Some((since, nodes)) = &double {
        let lasted = if double_for > 0 {
            format!("for {:.1} ms", double_for as f64 / 1e6)
        } else {
            "until the end".to_string()
        };
        problems.push(format!(
            "{ip} held by {} at once from {} {lasted}",
            nodes.join(" and "),
            at(*since)
        ));
    }
    let (from, to) = timeline(trace);
    let unobserved: Vec<String> = ["arp", "addr"]
        .iter()
        .filter_map(|o| super::coverage::unobserved_text(trace, o, from, to))
        .collect();
    if problems.is_empty() && !unobserved.is_empty() {
        return CheckResult::new(
            spec,
            Verdict::Inconclusive,
            format!(
                "inconclusive: no conflict seen for {ip}, but {}",
                unobserved.join("; ")
            ),
        )
        .measure("max_holders", max_holders as f64);
    }
    if answers.is_empty() && !addr_seen {
        return CheckResult::new(
            spec,
            Verdict::Error,
            format!("no observation of {ip}: neither ARP answers nor addresses were recorded"),
        );
    }
    let macs: BTreeSet<&str> = answers.iter().map(|(_, m)| m.as_str()).collect();
    let r = if problems.is_empty() {
        CheckResult::new(
            spec,
            Verdict::Pass,
            format!(
                "{ip}: {} ARP answer(s) from {} address(es), never two within {} ms; at most {max_holders} namespace(s) held it",
                answers.len(),
                macs.len(),
                window.as_millis()
            ),
        )
    } else {
        CheckResult::new(
            spec,
            Verdict::Fail,
            format!("IP conflict: {}", problems.join("; ")),
        )
    };
    r.measure("wire_conflicts", wire_conflicts as f64)
        .measure("max_holders", max_holders as f64)
}

/// The longest time between two answers the client got from the group is at
/// most `max` (counted from the first answer to the end of the timeline).
/// Only time the client observed counts: a stretch between two answers
/// that the client's observer did not observe is no outage seen; if the
/// longest outage seen is within `max` but some of the window was not
/// observed, the check is inconclusive.
pub fn client_downtime(spec: &CheckSpec, trace: &Trace, group: &str, max: Duration) -> CheckResult {
    let (_, end) = timeline(trace);
    let observer = format!("client:{group}");
    let probes: Vec<_> = trace
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Client(c) if c.group == group && c.t <= end => Some(c),
            _ => None,
        })
        .collect();
    if probes.is_empty() {
        return CheckResult::new(
            spec,
            Verdict::Error,
            format!("the client never tried `{group}`"),
        );
    }
    let served: Vec<u64> = probes
        .iter()
        .filter(|c| c.answered_by.is_some())
        .map(|c| c.t)
        .collect();
    let failed = probes.len() - served.len();
    let Some(first) = served.first() else {
        let why = probes
            .last()
            .and_then(|c| c.error.clone())
            .unwrap_or_default();
        return CheckResult::new(
            spec,
            Verdict::Fail,
            format!(
                "the client was never served by `{group}` in {} attempt(s) (last: {why})",
                probes.len()
            ),
        )
        .measure("failed_probes", failed as f64);
    };
    let last = *served.last().expect("non-empty");
    let last_probe = probes.last().expect("non-empty").t;
    // Stretches without an answer: between answers, and from the last
    // answer to the last attempt.
    let mut stretches: Vec<(u64, u64)> = served.windows(2).map(|w| (w[0], w[1])).collect();
    if last_probe > last {
        stretches.push((last, last_probe));
    }
    // Of each, only the parts the client observed are outages seen.
    // A trace without observer records (version 1) does not say when the
    // client observed: its outages are measured as recorded, and a pass
    // over them is inconclusive below.
    let spans_known = !trace.observed_spans(&observer).is_empty();
    let mut longest = (0u64, *first, *first);
    for (a, b) in stretches {
        let mut cursor = a;
        let mut pieces = Vec::new();
        let holes = if spans_known {
            trace.unobserved(&observer, a, b)
        } else {
            Vec::new()
        };
        for (hole_from, hole_to) in holes {
            pieces.push((cursor, hole_from));
            cursor = hole_to;
        }
        pieces.push((cursor, b));
        for (x, y) in pieces {
            if y > x && y - x > longest.0 {
                longest = (y - x, x, y);
            }
        }
    }
    let start = trace.start().unwrap_or(0);
    let gap_ms = longest.0 as f64 / 1e6;
    let text = format!(
        "longest gap between answers {gap_ms:.1} ms, from {:+.3} s{} ({failed} of {} attempts unanswered)",
        ms_between(start, longest.1) / 1e3,
        if longest.2 == last_probe && last_probe > last { " to the end" } else { "" },
        probes.len()
    );
    let unobserved = super::coverage::unobserved_text(trace, &observer, *first, end);
    let (verdict, text) = if gap_ms > max.as_secs_f64() * 1e3 {
        (
            Verdict::Fail,
            format!("{text}, more than {} ms", max.as_millis()),
        )
    } else if let Some(hole) = unobserved {
        (
            Verdict::Inconclusive,
            format!("inconclusive: {text} in what was observed, but {hole}"),
        )
    } else {
        (Verdict::Pass, text)
    };
    CheckResult::new(spec, verdict, text)
        .measure("downtime_ms", gap_ms)
        .measure("failed_probes", failed as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::TraceBuilder;
    use crate::checks::run_check;

    fn conflict() -> CheckSpec {
        CheckSpec::NoIpConflict {
            group: "sql".into(),
            window: Duration::from_secs(1),
        }
    }

    #[test]
    fn no_conflict_when_the_ip_moves_cleanly() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        b.arp_answer(500.0, "n1").addr("n1", 500.0, true);
        b.addr("n1", 3000.0, false)
            .addr("n2", 3500.0, true)
            .arp_answer(3500.0, "n2");
        let r = run_check(&conflict(), &b.settled(6000).end(6100).build());
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
    }

    #[test]
    fn two_macs_answering_is_a_conflict_naming_ip_macs_and_nodes() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        b.arp_answer(500.0, "n1")
            .arp_answer(3500.0, "n2")
            .arp_answer(3510.0, "n1");
        let r = run_check(&conflict(), &b.settled(6000).end(6100).build());
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(
            r.detail.contains("10.77.0.100 answered on the wire by 02:fa:00:00:01:02 (n2) and 02:fa:00:00:01:01 (n1)"),
            "{}",
            r.detail
        );
        assert_eq!(r.measured["wire_conflicts"], 1.0);
    }

    #[test]
    fn two_namespaces_holding_is_a_conflict_even_if_the_wire_was_quiet() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        b.addr("n1", 500.0, true)
            .addr("n2", 3500.0, true)
            .addr("n2", 4000.0, false);
        let r = run_check(&conflict(), &b.settled(6000).end(6100).build());
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(
            r.detail
                .contains("held by n1 and n2 at once from +3.500 s for 500.0 ms"),
            "{}",
            r.detail
        );
    }

    /// n1 holds the IP from 0.5 s to 5 s; n2 takes it at 3.5 s as well.
    fn double_held() -> TraceBuilder {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        b.arp_answer(500.0, "n1").addr("n1", 500.0, true);
        b.addr("n2", 3500.0, true).addr("n1", 5000.0, false);
        b.settled(6000).end(6100);
        b
    }

    #[test]
    fn a_conflict_the_address_observer_missed_is_inconclusive_naming_the_span() {
        let r = run_check(&conflict(), &double_held().build());
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.detail);

        let mut b = double_held();
        b.observer_down("addr", 3000.0, 4500.0);
        let r = run_check(&conflict(), &b.build());
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
        assert!(
            r.detail
                .contains("observer `addr` did not observe from +3.000 s to +4.500 s"),
            "{}",
            r.detail
        );
    }

    #[test]
    fn a_conflict_seen_fails_even_if_an_observer_was_down_elsewhere() {
        let mut b = double_held();
        b.observer_down("arp", 1000.0, 2000.0);
        let r = run_check(&conflict(), &b.build());
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.detail);
        assert!(
            r.detail.contains("held by n1 and n2 at once"),
            "{}",
            r.detail
        );
    }

    #[test]
    fn a_trace_without_observer_records_proves_no_absence_of_conflict() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        b.arp_answer(500.0, "n1").addr("n1", 500.0, true);
        b.settled(6000).end(6100).without_observer_records();
        let r = run_check(&conflict(), &b.build());
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
        assert!(
            r.detail
                .contains("observer `arp` has no record of observing at all"),
            "{}",
            r.detail
        );
    }

    #[test]
    fn no_observation_is_an_error_not_a_pass() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        assert_eq!(
            run_check(&conflict(), &b.settled(6000).end(6100).build()).verdict,
            Verdict::Error
        );
    }

    fn downtime(max_ms: u64) -> CheckSpec {
        CheckSpec::ClientDowntime {
            group: "sql".into(),
            max: Duration::from_millis(max_ms),
        }
    }

    #[test]
    fn downtime_is_the_longest_gap_between_answers() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        for ms in (0..=2000).step_by(100) {
            b.client(ms as f64, Some("n1"));
        }
        for ms in (2100..3500).step_by(100) {
            b.client(ms as f64, None);
        }
        for ms in (3500..=6000).step_by(100) {
            b.client(ms as f64, Some("n2"));
        }
        let trace = b.settled(6000).end(6100).build();
        let r = run_check(&downtime(2000), &trace);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        assert_eq!(r.measured["downtime_ms"], 1500.0);
        assert_eq!(r.measured["failed_probes"], 14.0);
        let r = run_check(&downtime(1000), &trace);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.contains("more than 1000 ms"), "{}", r.detail);
    }

    fn outage_2100_to_3500() -> TraceBuilder {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        for ms in (0..=2000).step_by(100) {
            b.client(ms as f64, Some("n1"));
        }
        for ms in (2100..3500).step_by(100) {
            b.client(ms as f64, None);
        }
        for ms in (3500..=6000).step_by(100) {
            b.client(ms as f64, Some("n2"));
        }
        b.settled(6000).end(6100);
        b
    }

    #[test]
    fn an_outage_the_client_did_not_observe_is_inconclusive_not_a_pass() {
        let mut b = outage_2100_to_3500();
        b.observer_down("client:sql", 2050.0, 3400.0);
        let r = run_check(&downtime(1000), &b.build());
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
        assert!(
            r.detail
                .contains("observer `client:sql` did not observe from +2.050 s to +3.400 s"),
            "{}",
            r.detail
        );
        assert_eq!(r.measured["downtime_ms"], 100.0);
    }

    #[test]
    fn an_outage_seen_fails_even_with_an_unobserved_span_elsewhere() {
        let mut b = outage_2100_to_3500();
        b.observer_down("client:sql", 4500.0, 5000.0);
        let r = run_check(&downtime(1000), &b.build());
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.detail);
        assert_eq!(r.measured["downtime_ms"], 1500.0);
        let r = run_check(&downtime(2000), &b.build());
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
    }

    #[test]
    fn without_observer_records_outages_are_measured_but_a_pass_is_inconclusive() {
        let mut b = outage_2100_to_3500();
        b.without_observer_records();
        let r = run_check(&downtime(2000), &b.build());
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
        assert_eq!(r.measured["downtime_ms"], 1500.0);
        let r = run_check(&downtime(1000), &b.build());
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.detail);
    }

    #[test]
    fn never_served_or_unserved_to_the_end_fails() {
        let mut b = TraceBuilder::cluster(&["n1"]);
        b.client(100.0, None).client(200.0, None);
        assert_eq!(
            run_check(&downtime(5000), &b.settled(6000).end(6100).build()).verdict,
            Verdict::Fail
        );

        let mut b = TraceBuilder::cluster(&["n1"]);
        b.client(100.0, Some("n1"));
        for ms in (200..=6000).step_by(100) {
            b.client(ms as f64, None);
        }
        let r = run_check(&downtime(5000), &b.settled(6000).end(6100).build());
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.contains("to the end"), "{}", r.detail);
    }
}
