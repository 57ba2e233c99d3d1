//! `recovery_action`: after a detection, the configured action happened,
//! with the events MODEL.md lists for it, and no other action did.

use faultline_agent::events::{
    hang_event_id, Event, EventData, EventKind, RecoveryAction, BUGCHECK_CODE,
};

use super::{CheckResult, Verdict};
use crate::plan::CheckSpec;
use crate::trace::{ms_between, FaultPhase, Trace};

/// Margin after `restart_delay` within which a fenced node must report 1001.
const REBOOT_MARGIN_NS: u64 = 2_000_000_000;

/// Checks the recovery action on `node`: `expected`, or the node's setting.
pub fn recovery_action(
    spec: &CheckSpec,
    trace: &Trace,
    node: &str,
    expected: Option<RecoveryAction>,
) -> CheckResult {
    let settings = match super::node_settings(spec, trace, node) {
        Ok(found) => found,
        Err(error) => return *error,
    };
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
        return if action == RecoveryAction::Disabled {
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
    };
    let want_id = hang_event_id(action);
    if let Some(wrong) = detections.iter().find(|e| e.id != want_id) {
        return fail(format!(
            "expected {} (event {}), but the watchdog logged event {} ({})",
            name(action),
            id_text(want_id),
            id_text(wrong.id),
            match &wrong.data {
                EventData::HangDetected(h) => h.action.name(),
                _ => "?",
            }
        ));
    }
    let terminated = count(EventKind::ServiceTerminated, first.t);
    let fenced: Vec<&Event> = trace
        .events(Some(node), Some(EventKind::NodeFenced))
        .filter(|e| e.t >= first.t)
        .collect();
    match action {
        RecoveryAction::Disabled => fail(format!(
            "monitoring is disabled on `{node}`, yet {} hang detection(s) were logged",
            detections.len()
        )),
        RecoveryAction::Log => {
            if terminated > 0 || !fenced.is_empty() {
                return fail(format!(
                    "log-only must leave the node alone, yet the service was terminated {terminated} time(s) and the node fenced {} time(s)",
                    fenced.len()
                ));
            }
            let timeout_ns = settings.hang_timeout.as_nanos() as u64;
            let hang_end = trace
                .faults(node)
                .filter(|f| f.phase == FaultPhase::Healed && f.t > first.t)
                .map(|f| f.t)
                .min()
                .or(trace.end())
                .unwrap_or(first.t);
            // Repeats every hang_timeout while the hang lasts; allow one at
            // the boundary to fall either side.
            let due = 1 + (hang_end.saturating_sub(first.t) / timeout_ns) as usize;
            let logged = detections.iter().filter(|e| e.t <= hang_end).count();
            if logged + 1 < due {
                return fail(format!(
                    "event 4869 logged {logged} time(s) while the hang lasted; it repeats every {} ms, so {due} were due",
                    settings.hang_timeout.as_millis()
                ));
            }
            CheckResult::new(
                spec,
                Verdict::Pass,
                format!("event 4869 logged {logged} time(s) while the hang lasted; the service was left running"),
            )
            .measure("repeats", logged as f64)
        }
        RecoveryAction::Terminate => {
            if !fenced.is_empty() {
                return fail(format!(
                    "terminate must kill only the service, yet `{node}` was fenced"
                ));
            }
            let Some(dead) = trace
                .events(Some(node), Some(EventKind::ServiceTerminated))
                .find(|e| e.t >= first.t)
            else {
                return fail(format!(
                    "event 4870 was logged but the supervisor never reported the service dead (7031) on `{node}`"
                ));
            };
            CheckResult::new(
                spec,
                Verdict::Pass,
                format!(
                    "event 4870, then 7031 {:.1} ms later: only the service was terminated",
                    ms_between(first.t, dead.t)
                ),
            )
            .measure("recovery_ms", ms_between(first.t, dead.t))
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
) -> CheckResult {
    let fail = |detail: String| CheckResult::new(spec, Verdict::Fail, detail);
    let hang = match &first.data {
        EventData::HangDetected(h) => Some(h),
        _ => None,
    };
    let params = hang.and_then(|h| h.params);
    let want = hang.map(|h| [u64::from(h.service_pid), u64::from(h.timeout_ms), 0, 0]);
    if params.is_none() || params != want {
        return fail(format!(
            "bugcheck 0x{BUGCHECK_CODE:X} must carry (service pid, timeout, 0, 0), got {params:?}"
        ));
    }
    if trace
        .events(Some(node), Some(EventKind::DumpWritten))
        .all(|e| e.t < first.t)
    {
        return fail(format!("bugcheck on `{node}` wrote no dump"));
    }
    let Some(fence) = fenced.first() else {
        return fail(format!("bugcheck on `{node}` did not fence the node"));
    };
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
            return fail(format!(
                "`{node}` was fenced but never came back (no 1001 within restart_delay {} ms + 2 s)",
                restart_delay.as_millis()
            ));
        }
        None => {
            r.detail = format!(
                "bugcheck 0x9E, dump written, node fenced {:.1} ms after detection; the run ended before it was due back",
                ms_between(first.t, fence.t)
            );
        }
    }
    r
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
        if dump {
            b.event("n1", Source::Watchdog, EventKind::DumpWritten, 3010.0);
        }
        b.event("n1", Source::Watchdog, EventKind::NodeFenced, 3012.0);
        if reboot {
            b.event("n1", Source::Supervisor, EventKind::NodeRebooted, 5100.0);
        }
        b.end(9500).build()
    }

    #[test]
    fn bugcheck_passes_with_dump_fence_and_reboot() {
        let r = run_check(&spec(None), &bugchecked(true, true));
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        assert_eq!(r.measured["fence_ms"], 11.5);
        assert_eq!(r.measured["reboot_ms"], 2088.0);
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
