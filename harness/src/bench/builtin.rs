//! The built-in scenarios of `faultline bench --fault KIND`, written as
//! suites so they are validated like any suite and can be copied out.
//!
//! Both keep trials short and repeatable: the measured node has
//! `hang_timeout: 1s` and `hang_recovery_action: 1` (log: no bugcheck, no
//! reboot to wait for), the hang begins 1 s in (the watchdog is armed and
//! heartbeats are flowing) and the timeline ends 3 s in, after the
//! detection (about 1.75-2.0 s) and the heal.
//!
//! `cpu` measures the watchdog while every core is starved. The starvation
//! cannot itself be the hang here: `rt_hog`'s spinners are throttled to
//! 300 ms per second of each CPU (the workload cgroup's RT time), shorter
//! than a 1 s timeout, and while they spin the harness itself (SCHED_OTHER)
//! cannot stamp an onset. So n1's service is frozen at 1 s (a clean onset,
//! stamped before any load), and at 1.7 s the `cpu` fault starts its
//! spinners from a second node, n2 (its service's run delay proves the
//! starvation; spinners pinned one per CPU starve the whole host, n1's
//! watchdog included, whatever cgroup they sit in). Their first 300 ms
//! window, 1.7-2.0 s, covers n1's deadline (last heartbeat before the
//! freeze + 1 s, so 1.75-2.0 s): a watchdog at SCHED_FIFO above the
//! spinners fires on time, one at normal priority waits for the window's
//! end.
//!
//! `cpu-weight` is the other starvation: the `cpu` fault's `weight` mode
//! on n1 itself, workers at the top weight pinned to every CPU against
//! n1's service at the bottom, kept to one CPU. Here the starvation *is*
//! the hang (it holds the service for seconds, past the timeout), and the
//! weights are hierarchical: only n1's own watchdog competes with n1's
//! workers, so the fault must be on the measured node. A watchdog at normal priority (its
//! own cgroup at the default weight) competes with the workers and is a
//! few ms late at p90 (it wakes rarely and owes them little); one at
//! SCHED_FIFO does not compete. The fault's onset is the start of the
//! service's wait on the run queue; the overshoot past the deadline is
//! the figure to compare.

use crate::plan::ScenarioPlan;
use crate::suite::parse_suite;

/// The `cpu` fault's mode in the built-in `cpu` scenario.
pub const CPU_MODE: &str = "rt_hog";

/// The built-in scenarios: a fault kind, or a kind and its mode.
pub const KINDS: &[&str] = &["freeze", "cpu", "cpu-weight"];

/// The built-in scenario for fault `kind`, as a suite name and plan.
pub fn scenario(kind: &str) -> Option<(String, ScenarioPlan)> {
    let text = suite_text(kind)?;
    let plan = parse_suite(&format!("<built-in {kind}>"), &text)
        .unwrap_or_else(|e| panic!("built-in scenario {kind} is invalid: {e}"));
    let sc = plan.scenarios.into_iter().next()?;
    Some((plan.name, sc))
}

/// The suite text of the built-in scenario for `kind`.
pub fn suite_text(kind: &str) -> Option<String> {
    let body = match kind {
        "freeze" => "  - name: freeze
    duration: 3s
    nodes:
      n1: { hang_timeout: 1s, hang_recovery_action: 1 }
    faults:
      - { kind: freeze, node: n1, at: 1s, for: 1500ms }
    checks:
      - { kind: detected_within, node: n1, slack: 20ms }
"
        .to_string(),
        "cpu" => format!(
            "  - name: cpu-{CPU_MODE}
    duration: 3s
    nodes:
      n1: {{ hang_timeout: 1s, hang_recovery_action: 1 }}
      n2: {{ hang_timeout: 1s, hang_recovery_action: 1 }}
    faults:
      - {{ kind: freeze, node: n1, at: 1s, for: 1500ms }}
      - {{ kind: cpu, node: n2, mode: {CPU_MODE}, at: 1700ms, for: 1s }}
    checks:
      - {{ kind: detected_within, node: n1, slack: 20ms }}
"
        ),
        "cpu-weight" => "  - name: cpu-weight
    duration: 4s
    nodes:
      n1: { hang_timeout: 1s, hang_recovery_action: 1 }
    faults:
      - { kind: cpu, node: n1, mode: weight, at: 1s, for: 2500ms }
    checks:
      - { kind: detected_within, node: n1, slack: 20ms }
"
        .to_string(),
        _ => return None,
    };
    Some(format!("suite: bench\nscenarios:\n{body}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::FaultKind;

    #[test]
    fn every_built_in_scenario_is_a_valid_suite() {
        for kind in KINDS {
            let (suite, sc) = scenario(kind).expect(kind);
            assert_eq!(suite, "bench");
            let fault = kind.split('-').next().unwrap();
            assert!(
                sc.faults.iter().any(|f| f.kind().name() == fault),
                "{kind}: {:?}",
                sc.faults
            );
            assert!(sc.duration.as_secs_f64() <= 4.0, "trials stay short");
        }
        assert!(scenario("link_down").is_none());
    }

    #[test]
    fn the_cpu_load_starts_after_the_freeze_and_covers_the_deadline() {
        let (_, sc) = scenario("cpu").unwrap();
        let freeze = sc
            .faults
            .iter()
            .find(|f| f.kind() == FaultKind::Freeze)
            .unwrap();
        let cpu = sc
            .faults
            .iter()
            .find(|f| f.kind() == FaultKind::Cpu)
            .unwrap();
        assert_eq!(freeze.node, "n1");
        assert_ne!(
            cpu.node, "n1",
            "a frozen service's run delay cannot prove the load"
        );
        let timeout = sc.node("n1").unwrap().settings.hang_timeout;
        // Deadline: last heartbeat (at most timeout/4 before the freeze) + timeout.
        let earliest = freeze.at + timeout - timeout / 4;
        assert!(cpu.at <= earliest && freeze.at + timeout <= cpu.at + cpu.duration);
    }
}
