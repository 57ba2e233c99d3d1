use super::*;

const DEMO: &str = "\
suite: demo
scenarios:
  - name: freeze-is-caught
    nodes:
      n1:
        hang_timeout: 1s
        hang_recovery_action: 3
        restart_delay: 2s
    faults:
      - kind: freeze
        node: n1
        at: 2s
        for: 3s
    checks:
      - kind: detected_within
        node: n1
        slack: 20ms
      - kind: recovery_action
        node: n1
        action: bugcheck
";

fn issues(text: &str) -> Vec<String> {
    match parse_suite("t.yaml", text) {
        Err(SuiteError::Invalid { issues }) => issues.iter().map(|i| i.to_string()).collect(),
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn demo_suite_becomes_a_plan() {
    let plan = parse_suite("demo.yaml", DEMO).unwrap();
    assert_eq!(plan.name, "demo");
    let sc = &plan.scenarios[0];
    assert_eq!(sc.nodes[0].settings.hang_timeout, Duration::from_secs(1));
    assert_eq!(
        sc.nodes[0].settings.hang_recovery_action,
        RecoveryAction::Bugcheck
    );
    assert_eq!(sc.faults[0].at, Duration::from_secs(2));
    assert_eq!(sc.faults[0].duration, Duration::from_secs(3));
    assert_eq!(
        sc.checks[0],
        CheckSpec::DetectedWithin {
            node: "n1".into(),
            slack: Duration::from_millis(20)
        }
    );
    // 2s + 3s of fault, 1s timeout + 2s restart delay, 1.5s margin.
    assert_eq!(sc.duration, Duration::from_millis(9500));
}

#[test]
fn unknown_key_is_named_with_line_and_column() {
    let text = DEMO.replace(
        "        slack: 20ms\n",
        "        slack: 20ms\n        slak: 1s\n",
    );
    let got = issues(&text);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("t.yaml:18:9: "), "{got:?}");
    assert!(got[0].contains("slak"), "{got:?}");
}

#[test]
fn unknown_node_fault_and_zero_duration_are_each_reported() {
    let text = DEMO
        .replace(
            "        node: n1\n        at: 2s",
            "        node: n9\n        at: 0s",
        )
        .replace("kind: freeze", "kind: melt");
    let got = issues(&text);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got[0].starts_with("t.yaml:10:15: unknown fault `melt`"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("t.yaml:11:15: unknown node `n9` (this scenario has: n1)"),
        "{got:?}"
    );
    assert!(
        got[2].starts_with("t.yaml:12:13: duration `0s` must be greater than zero"),
        "{got:?}"
    );
}

#[test]
fn bare_numbers_bad_actions_and_misplaced_keys_are_refused() {
    let text = DEMO
        .replace("hang_timeout: 1s", "hang_timeout: 1")
        .replace("hang_recovery_action: 3", "hang_recovery_action: 7")
        .replace(
            "        action: bugcheck\n",
            "        action: bugcheck\n        slack: 1s\n",
        );
    let got = issues(&text);
    assert!(
        got.iter()
            .any(|g| g.starts_with("t.yaml:6:23: duration `1` needs a unit")),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|g| g.starts_with("t.yaml:7:31: hang_recovery_action `7`")),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|g| g.contains("`slack` does not apply to check `recovery_action`")),
        "{got:?}"
    );
}

#[test]
fn expect_fail_must_name_a_check_of_the_scenario() {
    let text = format!("{DEMO}    expect:\n      fail: [no_ip_conflict]\n");
    let got = issues(&text);
    assert!(
        got[0].contains("`expect.fail` names `no_ip_conflict`"),
        "{got:?}"
    );
}

#[test]
fn node_names_must_fit_interface_names() {
    assert!(valid_node_name("n1"));
    assert!(valid_node_name("node10abcd"));
    assert!(!valid_node_name("node10abcde"));
    assert!(!valid_node_name("1n"));
    assert!(!valid_node_name("N1"));
    assert!(!valid_node_name("n-1"));
}

#[test]
fn yaml_syntax_errors_have_a_location() {
    let got = issues("suite: x\nscenarios: [\n");
    assert!(got[0].starts_with("t.yaml:"), "{got:?}");
    assert!(!got[0].starts_with("t.yaml:0:0"), "{got:?}");
}
