//! Property: for suites with random (including extreme) values in every
//! numeric key, `validate` either accepts them and everything the runner
//! and the lab compute from the plan can be computed (instants, node
//! addresses, the agents' configuration, the trace header's round trip),
//! or returns issues that each have a place. Never a panic.

use std::time::Instant;

use proptest::prelude::*;

use super::*;
use crate::lab::{arp_settings, ms, node_db};
use crate::plan::ScenarioPlan;
use crate::topology::{self, NodeIndex, NETWORKS};

/// A number at the edges, or absurd.
fn extreme() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just(u32::MAX.to_string()),
        Just((u64::from(u32::MAX) + 1).to_string()),
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_string()),
        Just("99999999999999999999999999999999999999999".to_string()),
        Just("1.5".to_string()),
        Just("0.0001".to_string()),
        Just("1e300".to_string()),
        Just("86400000".to_string()),
        Just("86400001".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

/// A duration: mostly ordinary, so that whole suites are often valid,
/// sometimes extreme in its number or its unit.
fn duration() -> impl Strategy<Value = String> {
    let unit = prop_oneof![Just("ms"), Just("s"), Just("m"), Just("")];
    prop_oneof![
        9 => (40u64..3000, prop_oneof![Just("ms"), Just("s")])
            .prop_map(|(n, unit)| format!("{n}{unit}")),
        1 => (extreme(), unit).prop_map(|(n, unit)| format!("{n}{unit}")),
    ]
}

/// A count: mostly in range, sometimes extreme.
fn count() -> impl Strategy<Value = String> {
    prop_oneof![9 => (1u64..4).prop_map(|n| n.to_string()), 1 => extreme()]
}

fn node_count() -> impl Strategy<Value = usize> {
    prop_oneof![
        12 => 1usize..4,
        1 => Just(topology::MAX_NODES),
        1 => Just(topology::MAX_NODES + 1),
        1 => Just(300),
    ]
}

prop_compose! {
    fn suite_text()(
        nodes in node_count(),
        d in proptest::collection::vec(duration(), 14),
        c in proptest::collection::vec(count(), 4),
        explicit_duration in any::<bool>(),
    ) -> String {
        let node_lines: String = (1..=nodes)
            .map(|i| format!("      n{i}: {{}}\n"))
            .collect();
        let duration_line = if explicit_duration {
            format!("    duration: {}\n", d[0])
        } else {
            String::new()
        };
        format!(
            "suite: p
defaults:
  hang_timeout: {}
  restart_delay: {}
  service_restart_delay: {}
  node_heartbeat: {}
  arp_probe_interval: {}
  arp_probe_wait: {}
  arp_announce_interval: {}
  missed_heartbeats: {}
  arp_probes: {}
  arp_announcements: {}
  hang_recovery_action: {}
scenarios:
  - name: s
{duration_line}    failover_window: {}
    nodes:
{node_lines}    groups:
      sql: {{ ip: 10.77.0.253/24, owners: [n1] }}
    faults:
      - {{ kind: freeze, node: n1, at: {}, for: {} }}
    checks:
      - {{ kind: detected_within, node: n1, slack: {} }}
      - {{ kind: client_downtime, group: sql, max: {} }}
",
            d[1], d[2], d[3], d[4], d[5], d[6], d[7], c[0], c[1], c[2], c[3], d[8], d[9], d[10],
            d[11], d[12]
        )
    }
}

/// What the runner and the lab compute from a plan, computed.
fn plan_can_be_run(sc: &ScenarioPlan) {
    let t0 = Instant::now();
    assert!(t0.checked_add(sc.duration).is_some());
    for f in &sc.faults {
        let due = t0.checked_add(f.at).and_then(|t| t.checked_add(f.duration));
        assert!(due.is_some(), "fault instants overflow");
        assert!(f.at < sc.duration, "a fault after the end was accepted");
    }
    let _ = ms(sc.failover_window);
    for (i, n) in sc.nodes.iter().enumerate() {
        let index = NodeIndex::new(i).expect("every accepted node has an address");
        for net in NETWORKS {
            assert!(net.contains(index.ip(net)));
            assert_ne!(index.ip(net), topology::client_ip());
        }
        let s = &n.settings;
        let db = node_db(s, None);
        assert_eq!(u128::from(db.hang_timeout_ms), s.hang_timeout.as_millis());
        let _ = arp_settings(s);
        let _ = ms(s.node_heartbeat);
        assert!(t0.checked_add(s.restart_delay).is_some());
        assert!(t0.checked_add(s.hang_timeout).is_some());
    }
    assert_eq!(
        topology::nodes(sc.nodes.iter().map(|n| n.name.as_str())).len(),
        sc.nodes.len()
    );
    let json = serde_json::to_string(sc).expect("the header serializes");
    let back: ScenarioPlan = serde_json::from_str(&json).expect("the header reads back");
    assert_eq!(&back, sc);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn validate_accepts_a_runnable_plan_or_places_every_issue(text in suite_text()) {
        match parse_suite("p.yaml", &text) {
            Ok(plan) => plan.scenarios.iter().for_each(plan_can_be_run),
            Err(SuiteError::Invalid { issues }) => {
                prop_assert!(!issues.is_empty());
                for i in &issues {
                    prop_assert!(i.line > 0 && i.column > 0, "no place: {i}\n{text}");
                }
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }
}

#[test]
fn the_property_sees_accepted_plans_too() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut accepted = 0;
    for _ in 0..200 {
        let text = suite_text().new_tree(&mut runner).unwrap().current();
        accepted += usize::from(parse_suite("p.yaml", &text).is_ok());
    }
    assert!(
        accepted >= 10,
        "only {accepted} of 200 generated suites were valid"
    );
}
