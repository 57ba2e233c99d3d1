//! Validation of the network faults (`partition`, `loss`, `delay`): their
//! keys, the sides of a partition against the scenario's nodes, and the
//! node each is recorded on.

use super::*;
use crate::plan::{FaultSpec, Network};

fn suite(faults: &str) -> String {
    format!(
        "\
suite: net
scenarios:
  - name: s
    nodes: {{ n1: {{}}, n2: {{}}, n3: {{}} }}
    groups:
      sql: {{ ip: 10.77.0.100/24, owners: [n1, n2, n3] }}
    faults:
{faults}
    checks:
      - {{ kind: no_detection }}
"
    )
}

fn issues(text: &str) -> Vec<String> {
    match parse_suite("t.yaml", text) {
        Err(SuiteError::Invalid { issues }) => issues.iter().map(|i| i.to_string()).collect(),
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn a_partition_is_recorded_on_its_first_sides_first_node() {
    let text = suite(
        "      - { kind: partition, sides: [[n2], [n1, n3]], network: all, direction: one_way, at: 1s, for: 1s }",
    );
    let plan = parse_suite("t.yaml", &text).unwrap();
    let f = &plan.scenarios[0].faults[0];
    assert_eq!(f.node, "n2");
    assert_eq!(
        f.spec,
        FaultSpec::Partition {
            sides: vec![vec!["n2".into()], vec!["n1".into(), "n3".into()]],
            networks: vec![Network::Public, Network::Private],
            one_way: true,
        }
    );
    // `direction` defaults to both ways.
    let text =
        suite("      - { kind: partition, sides: [[n1]], network: private, at: 1s, for: 1s }");
    let plan = parse_suite("t.yaml", &text).unwrap();
    assert!(matches!(
        plan.scenarios[0].faults[0].spec,
        FaultSpec::Partition { one_way: false, .. }
    ));
}

#[test]
fn partition_sides_are_checked_against_the_nodes_with_places() {
    let got = issues(&suite(
        "      - { kind: partition, node: n1, sides: [[n1, n9], [n1], []], network: all, at: 1s, for: 1s }",
    ));
    assert_eq!(
        got,
        [
            "t.yaml:8:34: fault `partition` takes no `node`: a partition names its nodes in `sides` (it is recorded on the first side's first node)",
            "t.yaml:8:51: unknown node `n9` (this scenario has: n1, n2, n3)",
            "t.yaml:8:57: node `n1` is on two sides of `sides`",
            "t.yaml:8:62: a side of `sides` must name a node",
        ]
    );
    let got = issues(&suite(
        "      - { kind: partition, sides: [[n1, n2, n3]], network: all, direction: sideways, at: 1s, for: 1s }",
    ));
    assert_eq!(
        got,
        ["t.yaml:8:76: direction `sideways` must be one of both, one_way"]
    );
    let got = issues(&suite(
        "      - { kind: partition, sides: [[n1, n2, n3]], network: all, at: 1s, for: 1s }",
    ));
    assert_eq!(
        got,
        ["t.yaml:8:35: a partition needs nodes on two sides: name two sides, or leave a node out (the nodes not named form one more side with the client)"]
    );
    let got = issues(&suite(
        "      - { kind: partition, sides: [n1, n2], at: 1s, for: 1s }",
    ));
    assert_eq!(
        got,
        [
            "t.yaml:8:17: fault `partition` needs `network`",
            "t.yaml:8:36: each of `sides` must be a list of nodes, e.g. `sides: [[n1], [n2, n3]]`",
            "t.yaml:8:40: each of `sides` must be a list of nodes, e.g. `sides: [[n1], [n2, n3]]`",
        ]
    );
}

#[test]
fn loss_is_per_node_or_for_every_node_with_a_percentage() {
    let text = suite("      - { kind: loss, network: public, percent: 20, at: 1s, for: 1s }");
    let f = &parse_suite("t.yaml", &text).unwrap().scenarios[0].faults[0];
    assert_eq!(f.node, "n1");
    assert!(matches!(
        f.spec,
        FaultSpec::Loss {
            every_node: true,
            percent: 20,
            ..
        }
    ));
    let text = suite("      - { kind: loss, node: n3, network: all, percent: 5, at: 1s, for: 1s }");
    let f = &parse_suite("t.yaml", &text).unwrap().scenarios[0].faults[0];
    assert_eq!(f.node, "n3");
    assert!(matches!(
        f.spec,
        FaultSpec::Loss {
            every_node: false,
            ..
        }
    ));
    let got = issues(&suite(
        "      - { kind: loss, node: n7, network: all, percent: 101, at: 1s, for: 1s }\n      - { kind: loss, network: all, at: 1s, for: 1s }",
    ));
    assert_eq!(
        got,
        [
            "t.yaml:8:29: unknown node `n7` (this scenario has: n1, n2, n3)",
            "t.yaml:8:56: percent `101` must be a whole number from 1 to 100",
            "t.yaml:9:17: fault `loss` needs `percent`",
        ]
    );
}

#[test]
fn delay_needs_a_node_a_network_and_a_delay() {
    let text =
        suite("      - { kind: delay, node: n2, network: private, delay: 30ms, at: 1s, for: 1s }");
    let f = &parse_suite("t.yaml", &text).unwrap().scenarios[0].faults[0];
    assert_eq!(
        f.spec,
        FaultSpec::Delay {
            networks: vec![Network::Private],
            delay: Duration::from_millis(30)
        }
    );
    let got = issues(&suite(
        "      - { kind: delay, network: all, delay: 30, at: 1s, for: 1s }",
    ));
    assert_eq!(
        got,
        [
            "t.yaml:8:17: fault `delay` needs `node`",
            "t.yaml:8:45: duration `30` needs a unit: ms, s or m (e.g. `30s`)",
        ]
    );
}

#[test]
fn overlapping_network_faults_on_one_target_are_refused() {
    let got = issues(&suite(
        "      - { kind: partition, sides: [[n1]], network: all, at: 1s, for: 2s }\n      - { kind: partition, sides: [[n2]], network: public, at: 2s, for: 2s }\n      - { kind: loss, node: n1, network: all, percent: 5, at: 1s, for: 2s }\n      - { kind: loss, node: n2, network: all, percent: 5, at: 1s, for: 2s }",
    ));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("t.yaml:9:9: fault `partition` on n2"),
        "{got:?}"
    );
}
