//! Validation of the service-side faults' keys (`scanner`, `lock`,
//! `crash`) and of `service_ready`: defaults, and each bad value refused
//! with its place.

use super::*;
use crate::plan::{CheckSpec, FaultSpec, ScannerScope};
use faultline_faults::lock::LockKind;
use std::time::Duration;

fn suite(fault: &str, check: &str) -> String {
    format!(
        "suite: t\nscenarios:\n  - name: s\n    nodes: {{ n1: {{}} }}\n    faults:\n      - {fault}\n    checks:\n      - {check}\n"
    )
}

fn issues(fault: &str, check: &str) -> Vec<String> {
    match parse_suite("t.yaml", &suite(fault, check)) {
        Err(SuiteError::Invalid { issues }) => issues.iter().map(|i| i.to_string()).collect(),
        Err(e) => panic!("{e}"),
        Ok(_) => Vec::new(),
    }
}

#[test]
fn scanner_defaults_to_the_state_folder_and_operation_scope() {
    let plan = parse_suite(
        "t.yaml",
        &suite(
            "{ kind: scanner, node: n1, at: 1s, for: 2s, hold: 10m }",
            "{ kind: service_ready, node: n1, within: 1s }",
        ),
    )
    .unwrap();
    let sc = &plan.scenarios[0];
    assert_eq!(
        sc.faults[0].spec,
        FaultSpec::Scanner {
            hold: Duration::from_secs(600),
            paths: vec!["state".into()],
            exclude: vec![],
            scope: ScannerScope::Operation,
        }
    );
    assert_eq!(
        sc.checks[0],
        CheckSpec::ServiceReady {
            node: "n1".into(),
            within: Duration::from_secs(1),
        }
    );
}

#[test]
fn scanner_paths_must_stay_inside_the_node_folder() {
    let got = issues(
        "{ kind: scanner, node: n1, at: 1s, for: 2s, hold: 1s, paths: [/etc, ../x], scope: disk }",
        "{ kind: no_detection }",
    );
    assert_eq!(
        got,
        [
            "t.yaml:6:71: paths entry `/etc` must be relative to the node's folder",
            "t.yaml:6:77: paths entry `../x` must stay inside the node's folder (no `..`)",
            "t.yaml:6:91: scope `disk` must be one of operation, node",
        ]
    );
    let got = issues(
        "{ kind: scanner, node: n1, at: 1s, for: 2s }",
        "{ kind: no_detection }",
    );
    assert_eq!(got, ["t.yaml:6:17: fault `scanner` needs `hold`"]);
}

#[test]
fn lock_needs_its_kind_and_crash_takes_no_parameters() {
    let plan = parse_suite(
        "t.yaml",
        &suite(
            "{ kind: lock, node: n1, at: 1s, for: 2s, lock: posix }",
            "{ kind: no_detection }",
        ),
    )
    .unwrap();
    assert_eq!(
        plan.scenarios[0].faults[0].spec,
        FaultSpec::Lock {
            lock: LockKind::Posix
        }
    );
    let got = issues(
        "{ kind: lock, node: n1, at: 1s, for: 2s, lock: mutex }",
        "{ kind: no_detection }",
    );
    assert_eq!(
        got,
        ["t.yaml:6:56: lock `mutex` must be one of flock, ofd, posix"]
    );
    let got = issues(
        "{ kind: crash, node: n1, at: 1s, for: 2s, signal: 9 }",
        "{ kind: service_ready, node: n1 }",
    );
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].contains("`signal` does not apply to fault `crash`"),
        "{got:?}"
    );
    assert!(
        got[1].contains("check `service_ready` needs `within`"),
        "{got:?}"
    );
}
