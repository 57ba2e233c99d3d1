//! The vocabulary tables are complete: every entry parses, validates,
//! serializes and round-trips, and every variant of the plan's enums is
//! reachable from a table entry (the variant lists come from serde, i.e.
//! from the types themselves, not from a list kept by hand).

use std::collections::BTreeSet;

use super::checks::CHECKS;
use super::faults::{COMMON_KEYS, FAULTS};
use super::*;
use crate::plan::{snake_name, CheckSpec, FaultKind, FaultSpec, ScenarioPlan};

const SCENARIO: &str = "\
suite: t
scenarios:
  - name: s
    witness: true
    nodes: { n1: {}, n2: {} }
    groups:
      sql: { ip: 10.77.0.100/24, owners: [n1, n2] }
    faults:
      - FAULT
    checks:
      - CHECK
";

fn scenario(fault: &str, check: &str) -> ScenarioPlan {
    let text = SCENARIO.replace("FAULT", fault).replace("CHECK", check);
    match parse_suite("t.yaml", &text) {
        Ok(mut plan) => plan.scenarios.remove(0),
        Err(e) => panic!("{fault} / {check}: {e}"),
    }
}

/// The variant names serde knows for `T`, from its "unknown variant" error.
fn serde_variants<T: serde::de::DeserializeOwned + std::fmt::Debug>(
    probe: serde_json::Value,
) -> BTreeSet<String> {
    let err = serde_json::from_value::<T>(probe).unwrap_err().to_string();
    let list = err
        .split("expected one of ")
        .nth(1)
        .unwrap_or_else(|| panic!("no variant list in `{err}`"));
    list.split(", ")
        .map(|v| {
            v.trim_matches(|c: char| c == '`' || c.is_whitespace())
                .to_string()
        })
        .filter(|v| !v.is_empty())
        .collect()
}

fn round_trips(sc: &ScenarioPlan) {
    let json = serde_json::to_string(sc).unwrap();
    let back: ScenarioPlan = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, sc, "{json}");
}

#[test]
fn every_fault_entry_parses_validates_and_round_trips() {
    for def in FAULTS {
        let sc = scenario(def.example, "{ kind: no_detection }");
        let f = &sc.faults[0];
        assert_eq!(f.kind(), def.kind, "{}", def.name);
        assert_eq!(def.kind.def().name, def.name);
        assert_eq!(snake_name(&def.kind), def.name);
        assert_eq!(FaultKind::parse(def.name), Some(def.kind));
        round_trips(&sc);
        // A kind lists `node` among its own keys when it reads `node` itself
        // (optional, or refused with a reason): the validator then takes the
        // fault's node from its parse function.
        for key in def.params.iter().filter(|k| **k != "node") {
            assert!(
                !COMMON_KEYS.contains(key),
                "{}: `{key}` is common",
                def.name
            );
            assert!(
                def.example.contains(&format!("{key}:")),
                "{}'s example leaves out `{key}`",
                def.name
            );
        }
        assert!(!(def.targets)(f).is_empty(), "{} targets nothing", def.name);
    }
}

#[test]
fn every_fault_kind_and_spec_is_in_the_table() {
    let table: BTreeSet<String> = FAULTS.iter().map(|d| d.name.to_string()).collect();
    assert_eq!(table.len(), FAULTS.len(), "a fault is listed twice");
    let kinds = serde_variants::<FaultKind>(serde_json::json!("__none__"));
    assert_eq!(kinds, table);
    let specs = serde_variants::<FaultSpec>(serde_json::json!({ "kind": "__none__" }));
    assert_eq!(specs, table);
}

#[test]
fn every_check_entry_parses_validates_and_round_trips() {
    for def in CHECKS {
        let sc = scenario("{ kind: freeze, node: n1, at: 1s, for: 1s }", def.example);
        let c = &sc.checks[0];
        assert!(
            std::ptr::eq(c.def(), *def),
            "{} parses as {}",
            def.name,
            c.kind()
        );
        assert_eq!(c.kind(), def.name);
        round_trips(&sc);
        for key in def.keys {
            assert!(
                def.example.contains(&format!("{key}:")),
                "{}'s example leaves out `{key}`",
                def.name
            );
        }
    }
}

#[test]
fn every_check_spec_variant_is_reachable_from_the_table() {
    let table: BTreeSet<String> = CHECKS.iter().map(|d| d.name.to_string()).collect();
    assert_eq!(table.len(), CHECKS.len(), "a check is listed twice");
    let variants = serde_variants::<CheckSpec>(serde_json::json!({ "kind": "__none__" }));
    assert_eq!(variants, table);
}

#[test]
fn an_unknown_check_is_refused_not_taken_for_another() {
    let text = SCENARIO
        .replace("FAULT", "{ kind: freeze, node: n1, at: 1s, for: 1s }")
        .replace("CHECK", "{ kind: quorums, held: [n1] }");
    let Err(SuiteError::Invalid { issues }) = parse_suite("t.yaml", &text) else {
        panic!("an unknown check was accepted");
    };
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert!(issues[0]
        .message
        .starts_with("unknown check `quorums` (known: detected_within"));
}

/// A `Params` over `given` (YAML flow mapping) allowing `allowed`, handed
/// to `f`; returns the issues recorded.
fn with_params(
    allowed: &'static [&'static str],
    given: &str,
    f: impl FnOnce(&mut super::params::Params<'_>),
) -> Vec<String> {
    let raw: Spanned<super::raw::RawEntry> = serde_saphyr::from_str(given).unwrap();
    let keys: Vec<(String, Spanned<super::raw::Value>)> = raw
        .value
        .keys
        .iter()
        .map(|(k, v)| (k.value.clone(), v.clone()))
        .collect();
    let at = keys[0].1.clone();
    let mut v = super::validate::Validator {
        file: "t.yaml".into(),
        issues: Vec::new(),
    };
    let mut p = super::params::Params {
        v: &mut v,
        owner: "fault `x`".into(),
        at: &at,
        allowed,
        given: &keys,
        nodes: &["n1"],
        groups: &[],
        fault_node: None,
    };
    f(&mut p);
    v.issues.iter().map(|i| i.to_string()).collect()
}

use serde_saphyr::Spanned;

#[test]
#[should_panic(expected = "reads `percent`, which its table entry does not list")]
fn a_parse_function_reading_an_unlisted_key_is_caught() {
    with_params(&["network"], "{ network: all }", |p| {
        let _ = p.count("percent", 0, 100);
    });
}

#[test]
fn counts_and_nested_lists_are_read_with_their_place() {
    let got = with_params(
        &["percent", "sides"],
        "{ percent: 101, sides: [[n1], n2] }",
        |p| {
            assert_eq!(p.count("percent", 0, 100), None);
            assert_eq!(p.node_list("sides"), None);
        },
    );
    assert_eq!(
        got,
        [
            "t.yaml:1:12: percent `101` must be a whole number from 0 to 100",
            "t.yaml:1:25: `sides` must list names, not lists",
        ]
    );
    let got = with_params(&["percent"], "{ percent: 18446744073709551615 }", |p| {
        assert_eq!(p.count("percent", 0, 100), None);
    });
    assert!(got[0].contains("`18446744073709551615`"), "{got:?}");
    assert!(with_params(&["percent"], "{ percent: 7 }", |p| {
        assert_eq!(p.count("percent", 0, 100), Some(Some(7)));
    })
    .is_empty());
}
