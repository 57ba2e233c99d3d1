//! Reports: views of judged runs. Each is a pure function of the results (and,
//! for the terminal, of trace records as they arrive); none judges anything.

pub mod html;
pub mod junit;
pub mod lanes;
pub mod svg;
pub mod terminal;
pub mod timeline;

use serde::Serialize;

use crate::checks::ScenarioResult;

/// The `--json` document.
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    /// One per scenario run.
    pub scenarios: &'a [ScenarioResult],
}

/// The key figures every summary shows, in order: the measured key that
/// checks report, and the column's title.
pub const FIGURES: [(&str, &str); 4] = [
    ("latency_ms", "latency"),
    ("overshoot_ms", "overshoot"),
    ("failover_ms", "failover"),
    ("downtime_ms", "downtime"),
];

/// A scenario's [`FIGURES`] as text (`750.1 ms`), `None` where no check
/// measured it; several checks measuring one (two nodes) are joined by ` / `.
pub fn figures(r: &ScenarioResult) -> [Option<String>; 4] {
    FIGURES.map(|(key, _)| {
        let values: Vec<String> = r
            .checks
            .iter()
            .filter_map(|c| c.measured.get(key))
            .map(|v| {
                if key == "overshoot_ms" {
                    format!("{v:.3} ms")
                } else {
                    format!("{v:.1} ms")
                }
            })
            .collect();
        (!values.is_empty()).then(|| values.join(" / "))
    })
}

/// Renders the `--json` document.
pub fn json(results: &[ScenarioResult]) -> String {
    serde_json::to_string_pretty(&JsonReport { scenarios: results }).expect("results serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{CheckResult, Verdict};

    pub(crate) fn sample() -> Vec<ScenarioResult> {
        let pass = CheckResult {
            kind: "detected_within".into(),
            node: Some("n1".into()),
            group: None,
            verdict: Verdict::Pass,
            expected_failure: false,
            detail: "detected 900.4 ms after onset".into(),
            measured: [
                ("latency_ms".to_string(), 900.4),
                ("overshoot_ms".to_string(), 0.4),
            ]
            .into(),
        };
        let xfail = CheckResult {
            kind: "recovery_action".into(),
            verdict: Verdict::Fail,
            expected_failure: true,
            detail: "bugcheck on `n1` did not fence the node".into(),
            measured: Default::default(),
            ..pass.clone()
        };
        let fail = CheckResult {
            kind: "no_detection".into(),
            node: None,
            verdict: Verdict::Fail,
            detail: "`n1`: 1 hang detection(s) & <more>".into(),
            measured: [("detections".to_string(), 1.0)].into(),
            ..pass.clone()
        };
        let unobserved = CheckResult {
            kind: "no_ip_conflict".into(),
            node: None,
            group: Some("sql".into()),
            verdict: Verdict::Inconclusive,
            detail: "observer `addr` did not observe from +3.000 s to +4.500 s".into(),
            measured: [("max_holders".to_string(), 1.0)].into(),
            ..pass.clone()
        };
        let lost = CheckResult {
            verdict: Verdict::Inconclusive,
            detail: "inconclusive: 1 record(s) of `n1`'s watchdog (pid 4242) were lost between +1.750 s and +3.001 s; without them the check would say: fired late".into(),
            measured: Default::default(),
            ..pass.clone()
        };
        vec![
            ScenarioResult {
                name: "freeze-is-caught".into(),
                suite: "demo".into(),
                verdict: Verdict::Pass,
                error: None,
                checks: vec![pass, xfail],
            },
            ScenarioResult {
                name: "quiet".into(),
                suite: "demo".into(),
                verdict: Verdict::Fail,
                error: None,
                checks: vec![fail],
            },
            ScenarioResult {
                name: "observer-died".into(),
                suite: "demo".into(),
                verdict: Verdict::Inconclusive,
                error: None,
                checks: vec![lost, unobserved],
            },
        ]
    }

    #[test]
    fn json_report_shape() {
        insta::assert_snapshot!(json(&sample()));
    }

    #[test]
    fn json_says_inconclusive_for_checks_and_scenarios() {
        let doc: serde_json::Value = serde_json::from_str(&json(&sample())).unwrap();
        let sc = &doc["scenarios"][2];
        assert_eq!(sc["verdict"], "inconclusive");
        assert_eq!(sc["checks"][1]["verdict"], "inconclusive");
    }
}
