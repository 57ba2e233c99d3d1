use super::*;
use crate::plan::CheckSpec;
use faultline_agent::events::EventKind;

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

const CLUSTER: &str = "\
suite: c
defaults:
  hang_timeout: 2s
  node_heartbeat: 200ms
  missed_heartbeats: 6
scenarios:
  - name: s
    witness: true
    nodes:
      n1: { hang_recovery_action: 2 }
      n2: { arp_probe: false }
    groups:
      sql: { ip: 10.77.0.100/24, owners: [n1, n2], disk: true }
    faults:
      - { kind: link_down, node: n2, network: all, at: 2s, for: 3s }
    checks:
      - { kind: failover_within, group: sql, within: 5s }
      - { kind: no_ip_conflict, group: sql }
      - { kind: group_state, group: sql, state: online, node: n1 }
      - { kind: client_downtime, group: sql, max: 4s }
      - { kind: events, node: n2, must: [poisoned], must_not: [ip_conflict] }
      - { kind: quorum, held: [n1], lost: [n2] }
    expect:
      fail: [group_state]
";

#[test]
fn cluster_scenarios_become_plans() {
    let plan = parse_suite("c.yaml", CLUSTER).unwrap();
    let sc = &plan.scenarios[0];
    assert!(sc.witness && sc.is_cluster());
    assert_eq!(
        sc.nodes[0].settings.node_heartbeat,
        Duration::from_millis(200)
    );
    assert!(!sc.nodes[1].settings.arp_probe);
    assert_eq!(
        sc.groups[0].ip,
        "10.77.0.100".parse::<std::net::Ipv4Addr>().unwrap()
    );
    assert_eq!(
        sc.faults[0].spec,
        crate::plan::FaultSpec::LinkDown {
            networks: vec![crate::plan::Network::Public, crate::plan::Network::Private]
        }
    );
    assert_eq!(sc.checks.len(), 6);
    assert_eq!(
        sc.checks[4],
        CheckSpec::Events {
            node: Some("n2".into()),
            must: vec![EventKind::Poisoned],
            must_not: vec![EventKind::IpConflict],
        }
    );
}

#[test]
fn cluster_mistakes_are_located() {
    let text = CLUSTER
        .replace("10.77.0.100/24", "10.77.0.11/24")
        .replace("network: all", "network: public2")
        .replace("group: sql, within", "group: web, within")
        .replace("must: [poisoned]", "must: [poisond]")
        .replace("held: [n1]", "held: [n7]");
    let got = issues(&text);
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(
        got.iter()
            .any(|g| g.starts_with("t.yaml:13:18: virtual IP `10.77.0.11/24` is a node's")),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|g| g.contains("network `public2` must be one of public, private, all")),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|g| g.contains("unknown group `web` (this scenario has: sql)")),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|g| g.contains("unknown event kind `poisond`")),
        "{got:?}"
    );
    assert!(
        got.iter().any(|g| g.contains("unknown node `n7`")),
        "{got:?}"
    );
}

#[test]
fn link_down_needs_a_network_and_freeze_refuses_one() {
    let text = CLUSTER.replace(", network: all", "");
    assert!(issues(&text)[0].contains("fault `link_down` needs `network`"));
    let text = CLUSTER.replace("kind: link_down", "kind: freeze");
    assert!(issues(&text)[0].contains("`network` does not apply to fault `freeze`"));
}

#[test]
fn forged_poison_needs_a_cluster() {
    let text = DEMO.replace("kind: freeze", "kind: forged_poison");
    let got = issues(&text);
    assert!(
        got[0].starts_with("t.yaml:10:15: fault `forged_poison` needs a cluster"),
        "{got:?}"
    );
}

#[test]
fn arp_timers_are_node_settings() {
    let text = CLUSTER.replace(
        "  missed_heartbeats: 6\n",
        "  missed_heartbeats: 6\n  arp_probes: 2\n  arp_probe_wait: 300ms\n  arp_announcements: 0\n",
    );
    let plan = parse_suite("c.yaml", &text).unwrap();
    let arp = &plan.scenarios[0].nodes[0].settings.arp;
    assert_eq!((arp.probes, arp.announcements), (2, 0));
    assert_eq!(arp.probe_wait, Duration::from_millis(300));
    assert_eq!(arp.probe_interval, Duration::from_millis(50));
    let bad = CLUSTER.replace(
        "  missed_heartbeats: 6\n",
        "  missed_heartbeats: 6\n  arp_probes: 0\n",
    );
    assert!(issues(&bad)[0].contains("arp_probes `0` must be a whole number from 1 to 10"));
}

#[test]
fn watchdog_priority_defaults_to_fifo_and_takes_normal() {
    use crate::plan::WatchdogPriority;
    let plan = parse_suite("demo.yaml", DEMO).unwrap();
    assert_eq!(
        plan.scenarios[0].nodes[0].settings.watchdog_priority,
        WatchdogPriority::Fifo
    );
    let text = DEMO.replace(
        "        restart_delay: 2s\n",
        "        restart_delay: 2s\n        watchdog_priority: normal\n",
    );
    let plan = parse_suite("t.yaml", &text).unwrap();
    assert_eq!(
        plan.scenarios[0].nodes[0].settings.watchdog_priority,
        WatchdogPriority::Normal
    );
    let text = format!("defaults:\n  watchdog_priority: normal\n{DEMO}");
    let plan = parse_suite("t.yaml", &text).unwrap();
    assert_eq!(
        plan.scenarios[0].nodes[0].settings.watchdog_priority,
        WatchdogPriority::Normal,
        "defaults apply to every node"
    );
}

#[test]
fn a_bad_watchdog_priority_is_named_with_line_and_column() {
    for (value, shown) in [("high", "high"), ("50", "50"), ("true", "true")] {
        let text = DEMO.replace(
            "        restart_delay: 2s\n",
            &format!("        restart_delay: 2s\n        watchdog_priority: {value}\n"),
        );
        let got = issues(&text);
        assert_eq!(
            got,
            vec![format!(
                "t.yaml:9:28: watchdog_priority `{shown}` must be one of fifo, normal"
            )],
            "{value}"
        );
    }
}

#[test]
fn one_node_setting_applies_as_a_suite_would_write_it() {
    use crate::plan::{NodeSettings, WatchdogPriority};
    let base = NodeSettings::default();
    let s = apply_node_setting(&base, "--compare", "watchdog_priority", "normal").unwrap();
    assert_eq!(s.watchdog_priority, WatchdogPriority::Normal);
    assert_eq!(s.hang_timeout, base.hang_timeout);
    let s = apply_node_setting(&base, "--compare", "hang_timeout", "250ms").unwrap();
    assert_eq!(s.hang_timeout, Duration::from_millis(250));
    for (key, value) in [
        ("watchdog_priority", "rt"),
        ("hang_timeout", "1"),
        ("nope", "1"),
        ("hang_timeout: 1s\nnope", "1"),
    ] {
        let e = apply_node_setting(&base, "--compare", key, value)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--compare:"), "{key}: {e}");
    }
}

#[test]
fn service_restart_delay_defaults_to_the_seeds_minute_and_a_suite_may_shorten_it() {
    // Seed 002: "services are normally restarted after 60 seconds".
    let plan = parse_suite("demo.yaml", DEMO).unwrap();
    assert_eq!(
        plan.scenarios[0].nodes[0].settings.service_restart_delay,
        Duration::from_secs(60)
    );
    let text = format!("defaults:\n  service_restart_delay: 500ms\n{DEMO}");
    let plan = parse_suite("t.yaml", &text).unwrap();
    assert_eq!(
        plan.scenarios[0].nodes[0].settings.service_restart_delay,
        Duration::from_millis(500)
    );
}
