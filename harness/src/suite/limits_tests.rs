//! Regression tests of issue 11: names that would escape `--out`,
//! overlapping faults, numbers out of range, node counts, faults after the
//! end, and messages.

use super::*;

const BASE: &str = "\
suite: t
scenarios:
  - name: s
    nodes:
      n1: { hang_timeout: 1s }
    faults:
      - { kind: freeze, node: n1, at: 2s, for: 3s }
    checks:
      - { kind: detected_within, node: n1 }
";

fn issues(text: &str) -> Vec<String> {
    match parse_suite("t.yaml", text) {
        Err(SuiteError::Invalid { issues }) => issues.iter().map(|i| i.to_string()).collect(),
        other => panic!("expected invalid, got {other:?}"),
    }
}

fn one_issue(text: &str) -> String {
    let got = issues(text);
    assert_eq!(got.len(), 1, "{got:?}");
    got.into_iter().next().unwrap()
}

#[test]
fn names_that_would_escape_the_out_folder_are_refused_with_a_place() {
    for bad in [
        "/some/where",
        "../../escape",
        "a/b",
        "..",
        ".hidden",
        "a b",
        "",
    ] {
        let text = BASE.replace("suite: t", &format!("suite: \"{bad}\""));
        let got = one_issue(&text);
        assert!(got.starts_with("t.yaml:1:8: suite name"), "{bad}: {got}");
        assert!(got.contains("it becomes a folder name"), "{got}");
        let text = BASE.replace("name: s", &format!("name: \"{bad}\""));
        assert!(
            one_issue(&text).starts_with("t.yaml:3:11: scenario name"),
            "{bad}"
        );
    }
    let long = "x".repeat(MAX_NAME_LEN + 1);
    assert!(
        one_issue(&BASE.replace("name: s", &format!("name: {long}"))).contains("scenario name")
    );
    let fine = BASE
        .replace("suite: t", "suite: seeds_2.v1")
        .replace("name: s", "name: Freeze-is-caught");
    assert!(parse_suite("t.yaml", &fine).is_ok());
}

#[test]
fn overlapping_faults_of_one_kind_on_one_target_are_refused_naming_both() {
    let text = BASE.replace(
        "      - { kind: freeze, node: n1, at: 2s, for: 3s }\n",
        "      - { kind: freeze, node: n1, at: 2s, for: 3s }\n      - { kind: freeze, node: n1, at: 4s, for: 3s }\n",
    );
    let got = one_issue(&text);
    assert!(got.starts_with("t.yaml:8:9: fault `freeze` on n1 from 4s to 7s overlaps the one at 7:9 (from 2s to 5s)"), "{got}");
    // Back to back is fine, and so are two nodes or two kinds at once.
    let ok = BASE.replace(
        "      - { kind: freeze, node: n1, at: 2s, for: 3s }\n",
        "      - { kind: freeze, node: n1, at: 2s, for: 3s }\n      - { kind: freeze, node: n1, at: 5s, for: 1s }\n",
    );
    assert!(parse_suite("t.yaml", &ok).is_ok());
}

#[test]
fn link_down_overlaps_only_where_its_ports_meet() {
    let text = BASE.replace("n1: { hang_timeout: 1s }", "n1: {}\n      n2: {}").replace(
        "      - { kind: freeze, node: n1, at: 2s, for: 3s }\n",
        "      - { kind: link_down, node: n2, network: private, at: 2s, for: 8s }\n      - { kind: link_down, node: n2, network: public, at: 2s, for: 3s }\n",
    ).replace("{ kind: detected_within, node: n1 }", "{ kind: no_detection }");
    assert!(parse_suite("t.yaml", &text).is_ok());
    let text = text.replace("network: public", "network: all");
    assert!(one_issue(&text).contains("overlaps the one at"));
}

#[test]
fn a_fault_at_or_after_the_end_is_refused_and_one_that_runs_past_it_is_clipped() {
    let text = BASE.replace("  - name: s\n", "  - name: s\n    duration: 2s\n");
    let got = one_issue(&text);
    assert!(got.starts_with("t.yaml:8:9: fault `freeze` on n1 starts at 2s, at or after the end of the timeline (2s"), "{got}");
    // It starts before the end: accepted; the run heals it as it ends.
    let text = BASE.replace("  - name: s\n", "  - name: s\n    duration: 3s\n");
    assert!(parse_suite("t.yaml", &text).is_ok());
}

#[test]
fn numbers_out_of_range_are_refused_with_a_place_never_a_panic() {
    let node = |settings: &str| BASE.replace("{ hang_timeout: 1s }", &format!("{{ {settings} }}"));
    // Was reported as `-1`.
    let got = one_issue(&node("missed_heartbeats: 18446744073709551615"));
    assert!(
        got.contains(
            "missed_heartbeats `18446744073709551615` must be a whole number from 1 to 1000"
        ),
        "{got}"
    );
    // Panicked in Duration::from_secs_f64 (exit 101).
    assert!(
        one_issue(&node("hang_timeout: 99999999999999999999999999s"))
            .contains("longer than the limit of 24h")
    );
    // 2^32 ms wrapped to a watchdog of a few hundred ms.
    assert!(one_issue(&node("hang_timeout: 4294967296ms")).contains("longer than the limit of 24h"));
    assert!(one_issue(&node("restart_delay: 0.5ms")).contains("whole number of milliseconds"));
    assert!(one_issue(&node("hang_recovery_action: 18446744073709551619")).contains("must be 0-3"));
    assert!(one_issue(&node("arp_probes: -9223372036854775809")).contains("from 1 to 10"));
    let at = BASE.replace("at: 2s", "at: 86400001ms");
    assert!(one_issue(&at).contains("longer than the limit of 24h"));
    // Every key at its limit is accepted: nothing overflows downstream.
    let max = BASE
        .replace("n1: { hang_timeout: 1s }", "n1: { hang_timeout: 24h0 }")
        .replace("24h0", "1440m");
    let got = issues(&max.replace("at: 2s, for: 3s", "at: 1439m, for: 1440m"));
    assert!(got[0].contains("default duration"), "{got:?}");
}

#[test]
fn node_counts_beyond_the_topology_are_refused_by_validation() {
    let nodes = |n: usize| {
        let list: String = (1..=n).map(|i| format!("      n{i}: {{}}\n")).collect();
        BASE.replace("      n1: { hang_timeout: 1s }\n", &list)
    };
    let got = one_issue(&nodes(300));
    assert!(
        got.starts_with("t.yaml:5:7: 300 nodes: a scenario has at most 240"),
        "{got}"
    );
    assert!(one_issue(&nodes(241)).contains("at most 240"));
    assert!(parse_suite("t.yaml", &nodes(240)).is_ok());
}

#[test]
fn a_scenario_without_checks_is_refused() {
    let empty = BASE.replace(
        "    checks:\n      - { kind: detected_within, node: n1 }\n",
        "    checks: []\n",
    );
    assert!(one_issue(&empty).starts_with("t.yaml:8:13: a scenario needs at least one check"));
    let none = BASE.replace(
        "    checks:\n      - { kind: detected_within, node: n1 }\n",
        "",
    );
    assert!(one_issue(&none).contains("a scenario with no checks proves nothing"));
}

#[test]
fn yaml_messages_speak_to_users_and_give_the_place_once() {
    let two = format!("{BASE}---\nsuite: u\n");
    let got = one_issue(&two);
    assert!(got.starts_with("t.yaml:"), "{got}");
    assert!(
        got.contains("a suite file holds one YAML document"),
        "{got}"
    );
    assert!(!got.contains("from_str"), "{got}");
    let twice = BASE.replace("at: 2s, for: 3s", "at: 2s, for: 3s, at: 4s");
    let got = one_issue(&twice);
    assert!(got.ends_with(": key `at` is given twice"), "{got}");
    let unknown = BASE.replace("  - name: s\n", "  - name: s\n    bogus: 1\n");
    let got = one_issue(&unknown);
    assert!(
        got.starts_with("t.yaml:4:5: unknown field `bogus`"),
        "{got}"
    );
    assert!(!got.contains("line 4"), "{got}");
}

#[test]
fn strip_position_leaves_messages_without_one_alone() {
    assert_eq!(strip_position("error: line 6 column 7: bad"), "bad");
    assert_eq!(strip_position("line 6 column 7: bad"), "bad");
    assert_eq!(
        strip_position("line numbers are odd"),
        "line numbers are odd"
    );
}

#[test]
fn a_trace_header_with_out_of_range_durations_is_refused_not_a_panic() {
    let plan = parse_suite("t.yaml", BASE).unwrap().scenarios.remove(0);
    let json = serde_json::to_string(&plan).unwrap();
    assert!(serde_json::from_str::<crate::plan::ScenarioPlan>(&json).is_ok());
    for bad in ["1e300s", "99999999999999999999999999s", "4294967296ms"] {
        let json = json.replace(
            "\"hang_timeout\":\"1s\"",
            &format!("\"hang_timeout\":\"{bad}\""),
        );
        let err = serde_json::from_str::<crate::plan::ScenarioPlan>(&json).unwrap_err();
        assert!(err.to_string().contains("duration"), "{bad}: {err}");
    }
}

/// Every message a suite with many mistakes gets, as a user reads them.
#[test]
fn messages_of_a_suite_with_many_mistakes() {
    let text = "\
suite: ../out
scenarios:
  - name: s
    duration: 3s
    nodes:
      n1: { hang_timeout: 30ms, missed_heartbeats: 18446744073709551615 }
      n2: { restart_delay: 0.5ms, hang_recovery_action: 7 }
    groups:
      sql: { ip: 10.77.0.11/24, owners: [n1, n3] }
    faults:
      - { kind: freeze, node: n1, at: 1s, for: 3s }
      - { kind: freeze, node: n1, at: 2s, for: 1s }
      - { kind: link_down, node: n2, at: 3s, for: 1s }
      - { kind: melt, node: n9, at: 1e300s, for: 1s }
    checks:
      - { kind: detected_within, node: n1, slak: 1s }
      - { kind: group_state, group: web, state: up }
      - { kind: events, must: poisoned }
      - { kind: quorums }
    expect:
      fail: [no_detection]
";
    insta::assert_snapshot!(issues(text).join("\n"));
}
