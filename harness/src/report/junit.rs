//! JUnit XML (through quick-junit): one test suite per scenario, one test
//! case per check. An expected failure is a success whose output says so;
//! an inconclusive check is a failure whose message starts `inconclusive:`
//! (CI must not read a verdict that rests on a gap as a pass).

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::checks::{ScenarioResult, Verdict};

/// Renders the `--junit` document.
pub fn junit(results: &[ScenarioResult]) -> String {
    let mut report = Report::new("faultline");
    for sc in results {
        let mut suite = TestSuite::new(format!("{}/{}", sc.suite, sc.name));
        if let Some(err) = &sc.error {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(err.clone());
            suite.add_test_case(TestCase::new("run", status));
        }
        for c in &sc.checks {
            let name = c.label();
            let status = if c.as_expected() {
                TestCaseStatus::success()
            } else {
                let kind = match c.verdict {
                    Verdict::Error => NonSuccessKind::Error,
                    _ => NonSuccessKind::Failure,
                };
                let mut s = TestCaseStatus::non_success(kind);
                let msg = match c.verdict {
                    Verdict::Pass if c.expected_failure => {
                        format!("expected to fail, but passed: {}", c.detail)
                    }
                    Verdict::Inconclusive if !c.detail.starts_with("inconclusive:") => {
                        format!("inconclusive: {}", c.detail)
                    }
                    _ => c.detail.clone(),
                };
                s.set_message(msg);
                s
            };
            let mut case = TestCase::new(name, status);
            case.set_classname(format!("{}.{}", sc.suite, sc.name));
            let mut out = c.detail.clone();
            if c.expected_failure && c.verdict == Verdict::Fail {
                out = format!("expected failure: {out}");
            }
            for (k, v) in &c.measured {
                out.push_str(&format!("\n{k} = {v}"));
            }
            case.set_system_out(out);
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string().expect("junit serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_report_shape() {
        insta::assert_snapshot!(junit(&crate::report::tests::sample()));
    }

    #[test]
    fn an_inconclusive_check_is_a_failure_saying_so() {
        let xml = junit(&crate::report::tests::sample());
        assert!(
            xml.contains("<failure message=\"inconclusive: observer `addr` did not observe"),
            "{xml}"
        );
        assert!(
            xml.contains("<failure message=\"inconclusive: 1 record(s) of"),
            "{xml}"
        );
    }
}
