//! `recovery_action`: after a detection, the configured action happened,
//! with the events MODEL.md lists for it, and no other action did.

use faultline_agent::events::{
    hang_event_id, texts, Event, EventData, EventKind, RecoveryAction, Source, BUGCHECK_CODE,
};

use super::{coverage, CheckResult, Verdict};
use crate::plan::CheckSpec;
use crate::trace::{ms_between, FaultPhase, Trace};

/// Margin after `restart_delay` within which a fenced node must report 1001.
const REBOOT_MARGIN_NS: u64 = 2_000_000_000;

/// Checks the recovery action on `node`: `expected`, or the node's setting.
///
/// Inconclusive when a record this verdict needs may have been lost: a gap
/// of the node's watchdog (4869, 4870, 0x9E, the dump, the fence) or of its
/// supervisor (7031, 1001) in the span the verdict rests on.
pub fn recovery_action(
    spec: &CheckSpec,
    trace: &Trace,
    node: &str,
    expected: Option<RecoveryAction>,
) -> CheckResult {
    let Judged { result, rests_on } = judge_action(spec, trace, node, expected);
    let Some((sources, from, to)) = rests_on else {
        return result;
    };
    let gaps = coverage::gaps_within(trace, node, &sources, from, to);
    if gaps.is_empty() {
        result
    } else {
        coverage::inconclusive_gaps(spec, trace, &gaps, &result.detail)
    }
}

/// A verdict and the span of which emitters' records it rests on (`None`:
/// on records that were seen, which no loss can undo).
struct Judged {
    result: CheckResult,
    rests_on: Option<(Vec<Source>, u64, u64)>,
}

impl Judged {
    fn seen(result: CheckResult) -> Self {
        Judged {
            result,
            rests_on: None,
        }
    }

    fn resting_on(result: CheckResult, sources: &[Source], from: u64, to: u64) -> Self {
        Judged {
            result,
            rests_on: Some((sources.to_vec(), from, to)),
        }
    }
}

fn judge_action(
    spec: &CheckSpec,
    trace: &Trace,
    node: &str,
    expected: Option<RecoveryAction>,
) -> Judged {
    let settings = match super::node_settings(spec, trace, node) {
        Ok(found) => found,
        Err(error) => return Judged::seen(*error),
    };
    let end = trace.end().unwrap_or_else(|| trace.last_t());
    let action = expected.unwrap_or(settings.hang_recovery_action);
    let fail = |detail: String| CheckResult::new(spec, Verdict::Fail, detail);
    let detections: Vec<&Event> = trace
        .events(Some(node), Some(EventKind::HangDetected))
        .collect();
    let count = |kind: EventKind, after: u64| {
        trace
            .events(Some(node), Some(kind))
            .filter(|e| e.t >= after)
            .count()
    };

    let Some(first) = detections.first() else {
        let r = if action == RecoveryAction::Disabled {
            CheckResult::new(
                spec,
                Verdict::Pass,
                format!("monitoring disabled on `{node}`: nothing was detected"),
            )
        } else {
            fail(format!(
                "no hang was detected on `{node}`, so no {} happened",
                name(action)
            ))
        };
        // A lost record anywhere could have been a detection.
        return Judged::resting_on(r, &[Source::Watchdog], 0, end);
    };
    let want_id = hang_event_id(action);
    if let Some(wrong) = detections.iter().find(|e| e.id != want_id) {
        return Judged::seen(fail(format!(
            "expected {} (event {}), but the watchdog logged event {} ({})",
            name(action),
            id_text(want_id),
            id_text(wrong.id),
            match &wrong.data {
                EventData::HangDetected(h) => h.action.name(),
                _ => "?",
            }
        )));
    }
    let terminated = count(EventKind::ServiceTerminated, first.t);
    let fenced: Vec<&Event> = trace
        .events(Some(node), Some(EventKind::NodeFenced))
        .filter(|e| e.t >= first.t)
        .collect();
    match action {
        RecoveryAction::Disabled => Judged::seen(fail(format!(
            "monitoring is disabled on `{node}`, yet {} hang detection(s) were logged",
            detections.len()
        ))),
        RecoveryAction::Log => {
            if terminated > 0 || !fenced.is_empty() {
                return Judged::seen(fail(format!(
                    "log-only must leave the node alone, yet the service was terminated {terminated} time(s) and the node fenced {} time(s)",
                    fenced.len()
                )));
            }
            let timeout_ns = settings.hang_timeout.as_nanos() as u64;
            // The hang ends, for the watchdog, at the first heartbeat it
            // receives after firing (its countdown resets), not when the
            // harness confirmed the heal: a repeat may fall between them.
            let healed = trace
                .faults(node)
                .filter(|f| f.phase == FaultPhase::Healed && f.t > first.t)
                .map(|f| f.t)
                .min();
            let hang_end = trace
                .events(Some(node), Some(EventKind::Heartbeat))
                .find(|e| e.t > first.t)
                .map(|e| e.t)
                .or(healed)
                .unwrap_or(end);
            // Repeats every hang_timeout while the hang lasts; allow one at
            // the boundary to fall either side.
            let due = 1 + (hang_end.saturating_sub(first.t) / timeout_ns) as usize;
            let logged = detections.iter().filter(|e| e.t <= hang_end).count();
            if logged + 1 < due {
                return Judged::resting_on(
                    fail(format!(
                        "event 4869 logged {logged} time(s) while the hang lasted; it repeats every {} ms, so {due} were due",
                        settings.hang_timeout.as_millis()
                    )),
                    &[Source::Watchdog],
                    first.t,
                    hang_end,
                );
            }
            Judged::resting_on(
                CheckResult::new(
                    spec,
                    Verdict::Pass,
                    format!("event 4869 logged {logged} time(s) while the hang lasted; the service was left running"),
                )
                .measure("repeats", logged as f64),
                &[Source::Watchdog, Source::Supervisor],
                first.t,
                hang_end,
            )
        }
        RecoveryAction::Terminate => {
            if !fenced.is_empty() {
                return Judged::seen(fail(format!(
                    "terminate must kill only the service, yet `{node}` was fenced"
                )));
            }
            let Some(dead) = trace
                .events(Some(node), Some(EventKind::ServiceTerminated))
                .find(|e| e.t >= first.t)
            else {
                return Judged::resting_on(
                    fail(format!(
                        "event 4870 was logged but the supervisor never reported the service dead (7031) on `{node}`"
                    )),
                    &[Source::Supervisor],
                    first.t,
                    end,
                );
            };
            let r = CheckResult::new(
                spec,
                Verdict::Pass,
                format!(
                    "event 4870, then 7031 {:.1} ms later: only the service was terminated",
                    ms_between(first.t, dead.t)
                ),
            )
            .measure("recovery_ms", ms_between(first.t, dead.t));
            // A fence lost before the service died would make this a failure.
            Judged::resting_on(r, &[Source::Watchdog], first.t, dead.t)
        }
        RecoveryAction::Bugcheck => {
            bugcheck(spec, trace, node, first, &fenced, settings.restart_delay)
        }
    }
}

fn bugcheck(
    spec: &CheckSpec,
    trace: &Trace,
    node: &str,
    first: &Event,
    fenced: &[&Event],
    restart_delay: std::time::Duration,
) -> Judged {
    let fail = |detail: String| CheckResult::new(spec, Verdict::Fail, detail);
    let end = trace.end().unwrap_or_else(|| trace.last_t());
    let hang = match &first.data {
        EventData::HangDetected(h) => Some(h),
        _ => None,
    };
    let params = hang.and_then(|h| h.params);
    // Seed 003: (process id, timeout value in seconds, 0, 0); seed 001
    // shows 0x3c for 60 s. A timeout below a second rounds up.
    let want = hang.map(|h| {
        [
            u64::from(h.service_pid),
            texts::timeout_seconds(h.timeout_ms),
            0,
            0,
        ]
    });
    if params.is_none() || params != want {
        return Judged::seen(fail(format!(
            "bugcheck 0x{BUGCHECK_CODE:X} must carry (service pid, timeout in seconds, 0, 0), got {params:?}"
        )));
    }
    let dump = trace
        .events(Some(node), Some(EventKind::DumpWritten))
        .find(|e| e.t >= first.t);
    let Some(dump) = dump else {
        return Judged::resting_on(
            fail(format!("bugcheck on `{node}` wrote no dump")),
            &[Source::Watchdog],
            first.t,
            end,
        );
    };
    let Some(fence) = fenced.first() else {
        return Judged::resting_on(
            fail(format!("bugcheck on `{node}` did not fence the node")),
            &[Source::Watchdog],
            first.t,
            end,
        );
    };
    // Seed 002: the node "is now Blue Screened while it writes out the
    // memory dump": fenced first, then the dump.
    if (dump.t, dump.seq) < (fence.t, fence.seq) {
        return Judged::seen(fail(format!(
            "`{node}` wrote its dump {:.1} ms before it was fenced: it kept its addresses and disks while writing",
            ms_between(dump.t, fence.t)
        )));
    }
    let mut r = CheckResult::new(spec, Verdict::Pass, String::new())
        .measure("fence_ms", ms_between(first.t, fence.t));
    let rebooted = trace
        .events(Some(node), Some(EventKind::NodeRebooted))
        .find(|e| e.t > fence.t);
    let due = fence.t + restart_delay.as_nanos() as u64 + REBOOT_MARGIN_NS;
    match rebooted {
        Some(e) => {
            r.detail = format!(
                "bugcheck 0x9E, dump written, node fenced {:.1} ms after detection, back (1001) {:.1} ms after the fence",
                ms_between(first.t, fence.t),
                ms_between(fence.t, e.t)
            );
            r = r.measure("reboot_ms", ms_between(fence.t, e.t));
        }
        None if trace.end().is_some_and(|end| end >= due) => {
            return Judged::resting_on(
                fail(format!(
                    "`{node}` was fenced but never came back (no 1001 within restart_delay {} ms + 2 s)",
                    restart_delay.as_millis()
                )),
                &[Source::Supervisor],
                fence.t,
                end,
            );
        }
        None => {
            r.detail = format!(
                "bugcheck 0x9E, dump written, node fenced {:.1} ms after detection; the run ended before it was due back",
                ms_between(first.t, fence.t)
            );
        }
    }
    Judged::seen(r)
}

fn name(action: RecoveryAction) -> &'static str {
    match action {
        RecoveryAction::Disabled => "no action",
        RecoveryAction::Log => "log-only (4869)",
        RecoveryAction::Terminate => "service termination (4870)",
        RecoveryAction::Bugcheck => "bugcheck (0x9E)",
    }
}

fn id_text(id: Option<u32>) -> String {
    match id {
        Some(BUGCHECK_CODE) => "0x9E".into(),
        Some(id) => id.to_string(),
        None => "none".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::TraceBuilder;
    use crate::checks::run_check;
    use crate::trace::FaultPhase;
    use faultline_agent::events::Source;

    fn spec(action: Option<RecoveryAction>) -> CheckSpec {
        CheckSpec::RecoveryAction {
            node: "n1".into(),
            action,
        }
    }

    fn bugchecked(reboot: bool, dump: bool) -> Trace {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Bugcheck);
        b.heartbeats("n1", 0, 2000, 250).freeze("n1", 2100, 5000);
        b.hang_detected("n1", 3000.5, RecoveryAction::Bugcheck);
        b.event("n1", Source::Watchdog, EventKind::NodeFenced, 3010.0);
        if dump {
            b.event("n1", Source::Watchdog, EventKind::DumpWritten, 3012.0);
        }
        if reboot {
            b.event("n1", Source::Supervisor, EventKind::NodeRebooted, 5100.0);
        }
        b.end(9500).build()
    }

    #[test]
    fn bugcheck_passes_with_dump_fence_and_reboot() {
        let r = run_check(&spec(None), &bugchecked(true, true));
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        assert_eq!(r.measured["fence_ms"], 9.5, "measured from detection");
        assert_eq!(r.measured["reboot_ms"], 2090.0);
    }

    #[test]
    fn a_dump_written_before_the_fence_fails() {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Bugcheck);
        b.heartbeats("n1", 0, 2000, 250).freeze("n1", 2100, 5000);
        b.hang_detected("n1", 3000.5, RecoveryAction::Bugcheck);
        b.event("n1", Source::Watchdog, EventKind::DumpWritten, 3010.0);
        b.event("n1", Source::Watchdog, EventKind::NodeFenced, 3012.0);
        b.event("n1", Source::Supervisor, EventKind::NodeRebooted, 5100.0);
        let r = run_check(&spec(None), &b.end(9500).build());
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.contains("before it was fenced"), "{}", r.detail);
    }

    #[test]
    fn bugcheck_parameters_in_milliseconds_fail() {
        // Seed 001: {812d5b08, 3c, 0, 0} for 60 s; 0x3e8 for 1 s is wrong.
        let mut t = bugchecked(true, true);
        for r in &mut t.records {
            if let crate::trace::Record::Event(e) = r {
                if let EventData::HangDetected(h) = &mut e.data {
                    h.params = Some([100, 1000, 0, 0]);
                }
            }
        }
        let r = run_check(&spec(None), &t);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.contains("timeout in seconds"), "{}", r.detail);
    }

    #[test]
    fn bugcheck_fails_without_reboot_or_dump() {
        let r = run_check(&spec(None), &bugchecked(false, true));
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.contains("never came back"), "{}", r.detail);
        let r = run_check(&spec(None), &bugchecked(true, false));
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.contains("no dump"), "{}", r.detail);
    }

    #[test]
    fn the_wrong_action_fails() {
        let r = run_check(
            &spec(Some(RecoveryAction::Terminate)),
            &bugchecked(true, true),
        );
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(
            r.detail.contains("expected service termination (4870)"),
            "{}",
            r.detail
        );
        assert!(r.detail.contains("event 0x9E"), "{}", r.detail);
    }

    #[test]
    fn terminate_needs_7031_and_no_fence() {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Terminate);
        b.heartbeats("n1", 0, 2000, 250).freeze("n1", 2100, 5000);
        b.hang_detected("n1", 3000.5, RecoveryAction::Terminate);
        let missing = b.end(9500).build();
        let r = run_check(&spec(None), &missing);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.contains("7031"), "{}", r.detail);

        b.event(
            "n1",
            Source::Supervisor,
            EventKind::ServiceTerminated,
            3001.0,
        );
        let r = run_check(&spec(None), &b.build());
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        assert_eq!(r.measured["recovery_ms"], 0.5);

        b.event("n1", Source::Watchdog, EventKind::NodeFenced, 3002.0);
        assert_eq!(run_check(&spec(None), &b.build()).verdict, Verdict::Fail);
    }

    #[test]
    fn log_only_must_repeat_while_the_hang_lasts() {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Log);
        b.heartbeats("n1", 0, 2000, 250).freeze("n1", 2100, 6500);
        b.hang_detected("n1", 3000.0, RecoveryAction::Log);
        let once = b.end(9000).build();
        let r = run_check(&spec(None), &once);
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.detail);
        assert!(r.detail.contains("4 were due"), "{}", r.detail);
        for ms in [4000.0, 5000.0, 6000.0] {
            b.hang_detected("n1", ms, RecoveryAction::Log);
        }
        let r = run_check(&spec(None), &b.build());
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        assert_eq!(r.measured["repeats"], 4.0);
    }

    #[test]
    fn log_only_hang_ends_when_the_watchdog_hears_a_heartbeat_again() {
        // The heal could not be confirmed (read-back failed), but the
        // service heartbeats again at 6500.5 ms: the hang is over for the
        // watchdog then, not at the end of the run (which would make 7
        // repeats due).
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Log);
        b.heartbeats("n1", 0, 2000, 250)
            .fault_phase("n1", 2100, FaultPhase::Injected)
            .fault_phase("n1", 6500, FaultPhase::Failed)
            .heartbeats("n1", 6501, 9000, 250);
        for ms in [3000.0, 4000.0, 5000.0, 6000.0] {
            b.hang_detected("n1", ms, RecoveryAction::Log);
        }
        let r = run_check(&spec(None), &b.end(9500).build());
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        assert_eq!(r.measured["repeats"], 4.0);
    }

    #[test]
    fn log_only_with_lost_repeats_is_inconclusive_not_a_failure() {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Log);
        b.heartbeats("n1", 0, 2000, 250).freeze("n1", 2100, 6500);
        for ms in [3000.0, 4000.0, 5000.0, 6000.0] {
            b.hang_detected("n1", ms, RecoveryAction::Log);
        }
        b.heartbeats("n1", 6501, 9000, 250);
        b.lose("n1", Source::Watchdog, 4000.0)
            .lose("n1", Source::Watchdog, 5000.0);
        let r = run_check(&spec(None), &b.end(9500).build());
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
        assert!(
            r.detail.contains("were lost between +3.000 s and +6.000 s"),
            "{}",
            r.detail
        );
        assert!(r.detail.contains("so 4 were due"), "{}", r.detail);
    }

    #[test]
    fn a_lost_7031_or_dump_is_inconclusive_while_a_seen_wrong_action_still_fails() {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Terminate);
        b.heartbeats("n1", 0, 2000, 250).freeze("n1", 2100, 5000);
        b.hang_detected("n1", 3000.5, RecoveryAction::Terminate)
            .service_terminated("n1", 3001.0);
        b.event(
            "n1",
            Source::Supervisor,
            EventKind::ServiceRestarted,
            3500.0,
        );
        b.lose("n1", Source::Supervisor, 3001.0);
        let r = run_check(&spec(None), &b.end(9500).build());
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
        assert!(r.detail.contains("`n1`'s supervisor"), "{}", r.detail);
        assert!(r.detail.contains("7031"), "{}", r.detail);
        // The same loss cannot excuse a bugcheck where a terminate was due.
        let r = run_check(&spec(Some(RecoveryAction::Bugcheck)), &b.build());
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.detail);

        let mut t = bugchecked(true, true);
        t.records.retain(
            |r| !matches!(r, crate::trace::Record::Event(e) if e.kind() == EventKind::DumpWritten),
        );
        assert_eq!(run_check(&spec(None), &t).verdict, Verdict::Fail);
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Bugcheck);
        b.heartbeats("n1", 0, 2000, 250).freeze("n1", 2100, 5000);
        b.hang_detected("n1", 3000.5, RecoveryAction::Bugcheck);
        b.event("n1", Source::Watchdog, EventKind::DumpWritten, 3010.0);
        b.event("n1", Source::Watchdog, EventKind::NodeFenced, 3012.0);
        b.event("n1", Source::Supervisor, EventKind::NodeRebooted, 5100.0);
        b.lose("n1", Source::Watchdog, 3010.0);
        let r = run_check(&spec(None), &b.end(9500).build());
        assert_eq!(r.verdict, Verdict::Inconclusive, "{}", r.detail);
        assert!(r.detail.contains("wrote no dump"), "{}", r.detail);
    }

    #[test]
    fn disabled_passes_only_when_nothing_fired() {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Disabled);
        b.heartbeats("n1", 0, 2000, 250).freeze("n1", 2100, 5000);
        assert_eq!(
            run_check(&spec(None), &b.end(9000).build()).verdict,
            Verdict::Pass
        );
        b.hang_detected("n1", 3000.0, RecoveryAction::Log);
        assert_eq!(run_check(&spec(None), &b.build()).verdict, Verdict::Fail);
    }
}
