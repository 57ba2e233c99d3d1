//! Checks: pure functions from a trace to a verdict. They never touch the
//! host, so they are unit-tested on hand-made traces, and `faultline check`
//! re-judges a saved run with exactly the code that judged it live.

mod coverage;
mod detection;
mod eventlog;
pub mod groups;
mod membership;
mod realtime;
mod recovery;
mod service;
mod wire;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::plan::CheckSpec;
use crate::trace::Trace;

pub use detection::{detected_within, no_detection};
pub use membership::{events, quorum};
pub use realtime::watchdog_realtime;
pub use recovery::recovery_action;
pub use service::service_ready;
pub use wire::{client_downtime, no_ip_conflict};

/// A check's or scenario's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// It holds.
    Pass,
    /// It does not hold.
    Fail,
    /// It could not be judged (the run broke, the trace lacks what it needs).
    Error,
    /// The verdict would rest on what the trace did not record (lost
    /// records, an observer that was down): the detail names the gap.
    Inconclusive,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Stable kind name.
    pub kind: String,
    /// The node it is about, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The group it is about, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Its own outcome.
    pub verdict: Verdict,
    /// Whether the scenario expects this check to fail (`expect.fail`).
    #[serde(default)]
    pub expected_failure: bool,
    /// What was found, in a sentence a person can act on.
    pub detail: String,
    /// Figures measured on the way (`latency_ms`, `overshoot_ms`, ...).
    #[serde(default)]
    pub measured: BTreeMap<String, f64>,
}

impl CheckResult {
    pub(crate) fn new(spec: &CheckSpec, verdict: Verdict, detail: impl Into<String>) -> Self {
        CheckResult {
            kind: spec.kind().to_string(),
            node: spec.node().map(str::to_string),
            group: spec.group().map(str::to_string),
            verdict,
            expected_failure: false,
            detail: detail.into(),
            measured: BTreeMap::new(),
        }
    }

    /// `kind[group or node]`, for report lines.
    pub fn label(&self) -> String {
        match self.group.as_ref().or(self.node.as_ref()) {
            Some(s) => format!("{}[{s}]", self.kind),
            None => self.kind.clone(),
        }
    }

    pub(crate) fn measure(mut self, key: &str, value: f64) -> Self {
        self.measured
            .insert(key.to_string(), (value * 1000.0).round() / 1000.0);
        self
    }

    /// Whether this outcome is what the scenario wanted: a pass, or a failure
    /// that `expect.fail` names.
    pub fn as_expected(&self) -> bool {
        matches!(
            (self.verdict, self.expected_failure),
            (Verdict::Pass, false) | (Verdict::Fail, true)
        )
    }
}

/// The settings of `node` from the trace header, or the error result a
/// check returns when the trace does not know the node.
pub(crate) fn node_settings<'a>(
    spec: &CheckSpec,
    trace: &'a Trace,
    node: &str,
) -> Result<&'a crate::plan::NodeSettings, Box<CheckResult>> {
    trace.settings(node).ok_or_else(|| {
        Box::new(CheckResult::new(
            spec,
            Verdict::Error,
            format!("node `{node}` is not in the trace header"),
        ))
    })
}

/// The nodes a check with an optional `node` judges: that one, or every
/// node of the trace header; the error result a check returns when the
/// trace has no header.
pub(crate) fn judged_nodes<'a>(
    spec: &CheckSpec,
    trace: &'a Trace,
    node: Option<&'a str>,
) -> Result<Vec<&'a str>, Box<CheckResult>> {
    let Some(header) = trace.header() else {
        return Err(Box::new(CheckResult::new(
            spec,
            Verdict::Error,
            "the trace has no header",
        )));
    };
    Ok(match node {
        Some(n) => vec![n],
        None => header
            .scenario
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect(),
    })
}

/// The plan of `group` from the trace header, or the error result a check
/// returns when the trace does not know the group.
pub(crate) fn group_plan<'a>(
    spec: &CheckSpec,
    trace: &'a Trace,
    group: &str,
) -> Result<&'a crate::plan::GroupPlan, Box<CheckResult>> {
    trace
        .header()
        .and_then(|h| h.scenario.group(group))
        .ok_or_else(|| {
            Box::new(CheckResult::new(
                spec,
                Verdict::Error,
                format!("group `{group}` is not in the trace header"),
            ))
        })
}

/// Runs one check over a trace: one arm per [`CheckSpec`] variant and no
/// catch-all, so a check added to the vocabulary table
/// (`suite/checks.rs`) fails to compile until it is dispatched here.
pub fn run_check(spec: &CheckSpec, trace: &Trace) -> CheckResult {
    match spec {
        CheckSpec::DetectedWithin { node, slack } => detected_within(spec, trace, node, *slack),
        CheckSpec::RecoveryAction { node, action } => recovery_action(spec, trace, node, *action),
        CheckSpec::NoDetection { node } => no_detection(spec, trace, node.as_deref()),
        CheckSpec::WatchdogRealtime { node } => watchdog_realtime(spec, trace, node.as_deref()),
        CheckSpec::FailoverWithin { group, within } => {
            groups::failover_within(spec, trace, group, *within)
        }
        CheckSpec::NoIpConflict { group, window } => no_ip_conflict(spec, trace, group, *window),
        CheckSpec::GroupState { group, state, node } => {
            groups::group_state(spec, trace, group, *state, node.as_deref())
        }
        CheckSpec::ClientDowntime { group, max } => client_downtime(spec, trace, group, *max),
        CheckSpec::Events {
            node,
            must,
            must_not,
        } => events(spec, trace, node.as_deref(), must, must_not),
        CheckSpec::Quorum { held, lost } => quorum(spec, trace, held, lost),
        CheckSpec::ServiceReady { node, within } => service_ready(spec, trace, node, *within),
        CheckSpec::EventText {
            node,
            id,
            text,
            source,
            log_type,
            line,
        } => eventlog::event_text(
            spec,
            trace,
            node,
            *id,
            eventlog::Expected {
                text,
                source: source.as_deref(),
                log_type: log_type.as_deref(),
                line: line.as_deref(),
            },
        ),
        CheckSpec::EventSequence { node, kinds } => {
            eventlog::event_sequence(spec, trace, node, kinds)
        }
    }
}

/// The outcome of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub name: String,
    /// Suite name.
    pub suite: String,
    /// `pass` when every check came out as expected, `error` when the run
    /// could not be judged, `inconclusive` when no check failed but some
    /// rest on a gap in the trace, else `fail`.
    pub verdict: Verdict,
    /// Why the run could not be judged, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// One per check, in plan order.
    pub checks: Vec<CheckResult>,
}

/// Judges a whole trace with the checks its header carries.
pub fn judge(trace: &Trace) -> ScenarioResult {
    let Some(header) = trace.header() else {
        return ScenarioResult {
            name: String::new(),
            suite: String::new(),
            verdict: Verdict::Error,
            error: Some("the trace has no header".into()),
            checks: Vec::new(),
        };
    };
    let scenario = &header.scenario;
    let checks: Vec<CheckResult> = scenario
        .checks
        .iter()
        .map(|spec| {
            let mut r = run_check(spec, trace);
            r.expected_failure = scenario.expect_fail.iter().any(|k| k == spec.kind());
            r
        })
        .collect();
    let error = match trace.records.iter().rev().find_map(|r| match r {
        crate::trace::Record::End { reason, .. } => Some(reason.as_str()),
        _ => None,
    }) {
        None => Some(format!(
            "the run did not end: the trace has no end record (the run was killed, or the file was cut); the checks judged what was recorded, up to {}",
            coverage::rel(trace, trace.last_t())
        )),
        Some("completed") => None,
        Some(reason) => Some(format!("the run did not complete: {reason}")),
    };
    let verdict = if error.is_some() || checks.iter().any(|c| c.verdict == Verdict::Error) {
        Verdict::Error
    } else if checks.iter().all(CheckResult::as_expected) {
        Verdict::Pass
    } else if checks
        .iter()
        .all(|c| c.as_expected() || c.verdict == Verdict::Inconclusive)
    {
        Verdict::Inconclusive
    } else {
        Verdict::Fail
    };
    ScenarioResult {
        name: scenario.name.clone(),
        suite: header.suite.clone(),
        verdict,
        error,
        checks,
    }
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use faultline_agent::events::{RecoveryAction, Source};

    use super::fixtures::TraceBuilder;
    use super::*;

    fn demo(detect_ms: f64) -> TraceBuilder {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Log);
        b.check(CheckSpec::DetectedWithin {
            node: "n1".into(),
            slack: Duration::from_millis(20),
        });
        b.armed("n1", 0.0)
            .heartbeats("n1", 0, 2000, 250)
            .freeze("n1", 2100, 5000)
            .hang_detected("n1", detect_ms, RecoveryAction::Log)
            .heartbeat("n1", 5000.5);
        b
    }

    #[test]
    fn a_trace_without_an_end_is_judged_and_says_the_run_did_not_end() {
        let r = judge(&demo(3000.2).build());
        assert_eq!(r.verdict, Verdict::Error);
        assert_eq!(r.checks.len(), 1);
        assert_eq!(r.checks[0].verdict, Verdict::Pass, "{}", r.checks[0].detail);
        let error = r.error.unwrap_or_default();
        assert!(
            error.starts_with("the run did not end: the trace has no end record"),
            "{error}"
        );
        assert!(error.ends_with("up to +5.000 s"), "{error}");

        let r = judge(&demo(3000.2).end(6000).build());
        assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.error);
        assert_eq!(r.error, None);
    }

    #[test]
    fn the_scenario_is_inconclusive_when_nothing_failed_but_a_check_rests_on_a_gap() {
        let mut b = demo(3000.2);
        b.lose("n1", Source::Watchdog, 2000.0).end(6000);
        let r = judge(&b.build());
        assert_eq!(r.checks[0].verdict, Verdict::Inconclusive);
        assert_eq!(r.verdict, Verdict::Inconclusive);

        // A failure elsewhere makes the scenario a failure.
        b.check(CheckSpec::NoDetection { node: None });
        assert_eq!(judge(&b.build()).verdict, Verdict::Fail);
    }
}
