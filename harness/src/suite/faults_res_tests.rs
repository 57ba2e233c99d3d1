//! Validation of the `cpu` and `memory` keys: ranges, rules between keys,
//! and places in every message.

use super::super::params::{parse_rate, parse_size};
use super::super::{parse_suite, SuiteError};
use crate::plan::{CpuStarveMode, FaultSpec, LeakPolicy, LeakTarget};
use std::time::Duration;

fn suite(fault: &str) -> String {
    format!(
        "suite: t\nscenarios:\n  - name: s\n    nodes: {{ n1: {{}} }}\n    faults:\n      - {fault}\n    checks:\n      - {{ kind: no_detection }}\n"
    )
}

fn spec(fault: &str) -> FaultSpec {
    match parse_suite("t.yaml", &suite(fault)) {
        Ok(mut plan) => plan.scenarios.remove(0).faults.remove(0).spec,
        Err(e) => panic!("{fault}: {e}"),
    }
}

fn issues(fault: &str) -> Vec<String> {
    match parse_suite("t.yaml", &suite(fault)) {
        Err(SuiteError::Invalid { issues }) => issues.iter().map(|i| i.to_string()).collect(),
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn cpu_modes_get_their_defaults() {
    let got = spec("{ kind: cpu, node: n1, mode: quota, workers: 3, at: 1s, for: 2s }");
    assert_eq!(
        got,
        FaultSpec::Cpu {
            mode: CpuStarveMode::Quota,
            quota: Duration::from_millis(1),
            period: Duration::from_secs(1),
            workers: 3,
        }
    );
    let FaultSpec::Cpu { workers, .. } =
        spec("{ kind: cpu, node: n1, mode: weight, at: 1s, for: 2s }")
    else {
        panic!()
    };
    assert!(workers >= 2);
    let FaultSpec::Cpu { mode, .. } =
        spec("{ kind: cpu, node: n1, mode: rt_hog, at: 1s, for: 2s }")
    else {
        panic!()
    };
    assert_eq!(mode, CpuStarveMode::RtHog);
}

#[test]
fn cpu_mistakes_are_located() {
    let got = issues("{ kind: cpu, node: n1, at: 1s, for: 2s }");
    assert!(
        got[0].starts_with("t.yaml:6:17: fault `cpu` needs `mode`"),
        "{got:?}"
    );
    let got = issues("{ kind: cpu, node: n1, mode: spin, at: 1s, for: 2s }");
    assert!(
        got[0].starts_with("t.yaml:6:38: mode `spin` must be one of quota, rt_hog, weight"),
        "{got:?}"
    );
    let got = issues("{ kind: cpu, node: n1, mode: rt_hog, quota: 5ms, at: 1s, for: 2s }");
    assert!(
        got[0].contains("`quota` applies to mode quota only"),
        "{got:?}"
    );
    assert!(got[0].starts_with("t.yaml:6:53:"), "{got:?}");
    let got = issues("{ kind: cpu, node: n1, mode: quota, quota: 2s, at: 1s, for: 2s }");
    assert!(
        got[0].contains("quota `2s` must be from 1ms to 1s"),
        "{got:?}"
    );
    let got = issues(
        "{ kind: cpu, node: n1, mode: quota, quota: 500ms, period: 100ms, at: 1s, for: 2s }",
    );
    assert!(got[0].contains("quota must not exceed period"), "{got:?}");
    let got = issues("{ kind: cpu, node: n1, mode: weight, workers: 0, at: 1s, for: 2s }");
    assert!(
        got[0].contains("workers `0` must be a whole number from 1 to 64"),
        "{got:?}"
    );
    let got = issues("{ kind: cpu, node: n1, mode: rt_hog, workers: 3, at: 1s, for: 2s }");
    assert!(
        got[0].contains("`workers` applies to mode quota, weight only"),
        "{got:?}"
    );
}

#[test]
fn memory_parses_rate_limit_policy_and_target() {
    let got = spec(
        "{ kind: memory, node: n1, rate: 10MB/100ms, limit: 64MB, policy: hang, target: service, at: 1s, for: 2s }",
    );
    assert_eq!(
        got,
        FaultSpec::Memory {
            step: 10 << 20,
            every: Duration::from_millis(100),
            limit: 64 << 20,
            policy: LeakPolicy::Hang,
            target: LeakTarget::Service,
        }
    );
    let FaultSpec::Memory { target, .. } = spec(
        "{ kind: memory, node: n1, rate: 64MB/s, limit: 64MB, policy: oom_kill, at: 1s, for: 2s }",
    ) else {
        panic!()
    };
    assert_eq!(target, LeakTarget::Workload);
}

#[test]
fn memory_limit_beyond_the_host_is_refused_with_a_place() {
    let got = issues("{ kind: memory, node: n1, rate: 10MB/100ms, limit: 100000GB, policy: hang, at: 1s, for: 2s }");
    assert!(
        got[0].starts_with("t.yaml:6:60: limit `100000GB` is above"),
        "{got:?}"
    );
    assert!(got[0].contains("MemAvailable"), "{got:?}");
    let got = issues(
        "{ kind: memory, node: n1, rate: 10MB/100ms, limit: 64, policy: hang, at: 1s, for: 2s }",
    );
    assert!(
        got[0].contains("`limit` must be a size like `64MB`, not `64`"),
        "{got:?}"
    );
    let got = issues(
        "{ kind: memory, node: n1, rate: 1MB/1s, limit: 64MB, policy: hang, at: 1s, for: 2s }",
    );
    assert!(got[0].contains("reaches its limit after"), "{got:?}");
    let got = issues("{ kind: memory, node: n1, rate: 10MB/100ms, limit: 64MB, at: 1s, for: 2s }");
    assert!(got[0].contains("needs `policy`"), "{got:?}");
}

#[test]
fn sizes_and_rates() {
    assert_eq!(parse_size("64MB"), Ok(64 << 20));
    assert_eq!(parse_size("512KB"), Ok(512 << 10));
    assert!(parse_size("64").unwrap_err().contains("needs a unit"));
    assert!(parse_size("64mb").unwrap_err().contains("unknown unit"));
    assert_eq!(
        parse_rate("10MB/100ms"),
        Ok((10 << 20, Duration::from_millis(100)))
    );
    // Per second: ten steps of 100 ms.
    assert_eq!(
        parse_rate("64MB/s"),
        Ok(((64 << 20) / 10, Duration::from_millis(100)))
    );
    assert!(parse_rate("1KB/s").unwrap_err().contains("at least 4KB"));
    assert!(parse_rate("10MB")
        .unwrap_err()
        .contains("size per duration"));
}
