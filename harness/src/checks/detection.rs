//! `detected_within` and `no_detection`: did the watchdog fire when, and only
//! when, it had to?

use std::time::Duration;

use faultline_agent::events::{EventKind, RecoveryAction};

use super::{CheckResult, Verdict};
use crate::plan::CheckSpec;
use crate::trace::{ms_between, FaultPhase, Trace};

/// The watchdog of `node` fired no earlier than the last heartbeat it saw
/// before each hang fault's onset plus `hang_timeout`, and no later than that
/// plus `slack`.
///
/// Measured (of the worst fault): `latency_ms` from the confirmed onset to
/// the detection, `overshoot_ms` past the deadline, `deadline_ms` from onset.
pub fn detected_within(
    spec: &CheckSpec,
    trace: &Trace,
    node: &str,
    slack: Duration,
) -> CheckResult {
    let fail = |detail: String| CheckResult::new(spec, Verdict::Fail, detail);
    let settings = match super::node_settings(spec, trace, node) {
        Ok(found) => found,
        Err(error) => return *error,
    };
    let timeout_ns = settings.hang_timeout.as_nanos() as u64;
    let slack_ns = slack.as_nanos() as u64;
    let onsets: Vec<u64> = trace
        .faults(node)
        .filter(|f| f.phase == FaultPhase::Injected && f.kind.hangs_service())
        .map(|f| f.t)
        .collect();
    if onsets.is_empty() {
        return CheckResult::new(
            spec,
            Verdict::Error,
            format!("no hang fault took effect on `{node}`: nothing to detect"),
        );
    }
    let mut worst: Option<CheckResult> = None;
    for onset in onsets {
        let Some(last_hb) = trace
            .events(Some(node), Some(EventKind::Heartbeat))
            .filter(|e| e.t <= onset)
            .map(|e| e.t)
            .max()
        else {
            let mut why = format!(
                "the watchdog of `{node}` saw no heartbeat before the fault: it was never armed"
            );
            if settings.hang_recovery_action == RecoveryAction::Disabled {
                why.push_str(" (hang_recovery_action is 0, monitoring disabled)");
            }
            return fail(why);
        };
        let deadline = last_hb + timeout_ns;
        let late_beats = trace
            .events(Some(node), Some(EventKind::Heartbeat))
            .filter(|e| e.t > onset)
            .take_while(|e| e.t < deadline + slack_ns)
            .count();
        let detection = trace
            .events(Some(node), Some(EventKind::HangDetected))
            .find(|e| e.t > last_hb)
            .map(|e| e.t);
        let result = match detection {
            None => {
                let mut why = format!(
                    "no detection: the watchdog of `{node}` never fired (deadline was {:.1} ms after onset",
                    ms_between(onset, deadline)
                );
                if settings.hang_recovery_action == RecoveryAction::Disabled {
                    why.push_str("; hang_recovery_action is 0, monitoring disabled");
                }
                if late_beats > 0 {
                    why.push_str(&format!(
                        "; {late_beats} heartbeat(s) arrived after the onset: the fault did not stop the service"
                    ));
                }
                why.push(')');
                fail(why)
            }
            Some(t) => {
                let latency = ms_between(onset, t);
                let overshoot = ms_between(deadline, t);
                let r = if t < deadline {
                    fail(format!(
                        "fired early: {:.3} ms before the deadline (last heartbeat + {} ms)",
                        -overshoot,
                        settings.hang_timeout.as_millis()
                    ))
                } else if t > deadline + slack_ns {
                    fail(format!(
                        "fired late: {overshoot:.3} ms past the deadline, slack is {} ms (latency {latency:.1} ms from onset)",
                        slack.as_secs_f64() * 1e3
                    ))
                } else {
                    CheckResult::new(
                        spec,
                        Verdict::Pass,
                        format!(
                            "detected {latency:.1} ms after onset, {overshoot:.3} ms past the deadline (last heartbeat + {} ms, slack {} ms)",
                            settings.hang_timeout.as_millis(),
                            slack.as_secs_f64() * 1e3
                        ),
                    )
                };
                r.measure("latency_ms", latency)
                    .measure("overshoot_ms", overshoot)
                    .measure("deadline_ms", ms_between(onset, deadline))
            }
        };
        let worse = match &worst {
            None => true,
            Some(w) => {
                (w.verdict == Verdict::Pass && result.verdict != Verdict::Pass)
                    || (w.verdict == result.verdict
                        && result.measured.get("overshoot_ms") > w.measured.get("overshoot_ms"))
            }
        };
        if worse {
            worst = Some(result);
        }
    }
    worst.expect("at least one onset")
}

/// No hang was detected on `node` (or on any node), and the watchdogs that
/// should be watching were armed, so the silence means something.
pub fn no_detection(spec: &CheckSpec, trace: &Trace, node: Option<&str>) -> CheckResult {
    let Some(header) = trace.header() else {
        return CheckResult::new(spec, Verdict::Error, "the trace has no header");
    };
    let nodes: Vec<&str> = match node {
        Some(n) => vec![n],
        None => header
            .scenario
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect(),
    };
    let mut problems = Vec::new();
    let mut fired = 0usize;
    for n in &nodes {
        let detections: Vec<u64> = trace
            .events(Some(n), Some(EventKind::HangDetected))
            .map(|e| e.t)
            .collect();
        if let Some(first) = detections.first() {
            let at = trace.start().map(|s| ms_between(s, *first)).unwrap_or(0.0);
            problems.push(format!(
                "`{n}`: {} hang detection(s), the first at {:+.3} s",
                detections.len(),
                at / 1e3
            ));
            fired += detections.len();
        }
        let watching = trace
            .settings(n)
            .is_some_and(|s| s.hang_recovery_action != RecoveryAction::Disabled);
        if watching
            && trace
                .events(Some(n), Some(EventKind::WatchdogArmed))
                .next()
                .is_none()
        {
            problems.push(format!(
                "`{n}`: its watchdog was never armed, so its silence proves nothing"
            ));
        }
    }
    let r = if problems.is_empty() {
        CheckResult::new(
            spec,
            Verdict::Pass,
            format!("no hang detected on {} (watchdogs armed)", nodes.join(", ")),
        )
    } else {
        CheckResult::new(spec, Verdict::Fail, problems.join("; "))
    };
    r.measure("detections", fired as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::TraceBuilder;
    use crate::checks::run_check;

    fn spec(slack_ms: u64) -> CheckSpec {
        CheckSpec::DetectedWithin {
            node: "n1".into(),
            slack: Duration::from_millis(slack_ms),
        }
    }

    /// Heartbeats every 250 ms from 0 to 2000 ms, freeze confirmed at 2100 ms:
    /// the deadline is 2000 + 1000 = 3000 ms.
    fn frozen_at_2100(detect_ms: Option<f64>) -> Trace {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Bugcheck);
        b.heartbeats("n1", 0, 2000, 250).freeze("n1", 2100, 5000);
        if let Some(ms) = detect_ms {
            b.hang_detected("n1", ms, RecoveryAction::Bugcheck);
        }
        b.end(9000).build()
    }

    #[test]
    fn passes_within_slack_and_measures_latency_and_overshoot() {
        let r = run_check(&spec(20), &frozen_at_2100(Some(3000.4)));
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        assert_eq!(r.measured["latency_ms"], 900.4);
        assert_eq!(r.measured["overshoot_ms"], 0.4);
        assert_eq!(r.measured["deadline_ms"], 900.0);
    }

    #[test]
    fn fails_when_late_past_slack() {
        let r = run_check(&spec(20), &frozen_at_2100(Some(3025.0)));
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(
            r.detail.starts_with("fired late: 25.000 ms"),
            "{}",
            r.detail
        );
        assert_eq!(r.measured["overshoot_ms"], 25.0);
    }

    #[test]
    fn fails_when_early() {
        let r = run_check(&spec(20), &frozen_at_2100(Some(2990.0)));
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.starts_with("fired early"), "{}", r.detail);
    }

    #[test]
    fn fails_when_never_detected_and_says_monitoring_was_off() {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Disabled);
        b.heartbeats("n1", 0, 2000, 250).freeze("n1", 2100, 5000);
        let r = run_check(&spec(20), &b.end(9000).build());
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.contains("never fired"), "{}", r.detail);
        assert!(r.detail.contains("monitoring disabled"), "{}", r.detail);
    }

    #[test]
    fn fails_when_the_watchdog_never_saw_a_heartbeat() {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Bugcheck);
        b.freeze("n1", 2100, 5000)
            .hang_detected("n1", 3100.0, RecoveryAction::Bugcheck);
        let r = run_check(&spec(20), &b.end(9000).build());
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.contains("never armed"), "{}", r.detail);
    }

    #[test]
    fn is_an_error_when_no_fault_took_effect() {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Bugcheck);
        b.heartbeats("n1", 0, 2000, 250);
        let r = run_check(&spec(20), &b.end(9000).build());
        assert_eq!(r.verdict, Verdict::Error);
    }

    #[test]
    fn no_detection_passes_on_a_quiet_armed_node_and_fails_on_a_detection() {
        let quiet = {
            let mut b = TraceBuilder::one_node(1000, RecoveryAction::Bugcheck);
            b.armed("n1", 0.0).heartbeats("n1", 0, 5000, 250);
            b.end(6000).build()
        };
        let spec = CheckSpec::NoDetection { node: None };
        assert_eq!(run_check(&spec, &quiet).verdict, Verdict::Pass);

        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Bugcheck);
        b.armed("n1", 0.0).heartbeats("n1", 0, 2000, 250);
        b.hang_detected("n1", 3000.0, RecoveryAction::Bugcheck);
        let r = run_check(&spec, &b.end(6000).build());
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(
            r.detail
                .contains("1 hang detection(s), the first at +3.000 s"),
            "{}",
            r.detail
        );
    }

    #[test]
    fn no_detection_fails_when_the_watchdog_was_never_armed() {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Log);
        b.heartbeats("n1", 0, 2000, 250);
        let r = run_check(
            &CheckSpec::NoDetection {
                node: Some("n1".into()),
            },
            &b.end(6000).build(),
        );
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.contains("never armed"), "{}", r.detail);
    }
}
