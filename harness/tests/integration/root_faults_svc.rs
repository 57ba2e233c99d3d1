//! The service-side faults end to end: `scanner`, `lock` and `crash` run
//! their suites (`suites/faults/`), each fault's proof is in its trace, the
//! dump of a scanner hang shows the service held in open(2), and every run
//! leaves nothing behind.

use std::path::Path;

use crate::support::*;

/// The fault records of a saved trace: `(kind, phase, evidence)`.
fn fault_records(trace: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(trace)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["type"] == "fault")
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (s("kind"), s("phase"), s("evidence"))
        })
        .collect()
}

fn has(records: &[(String, String, String)], kind: &str, phase: &str, needle: &str) -> bool {
    records
        .iter()
        .any(|(k, p, e)| k == kind && p == phase && e.contains(needle))
}

#[test]
fn root_service_fault_suites_prove_each_fault_and_leave_nothing() {
    if skip_unless_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let json = dir.path().join("r.json");
    let out = faultline()
        .arg("run")
        .args(["crash", "lock", "scanner"].map(|s| repo().join(format!("suites/faults/{s}.yaml"))))
        .arg("--out")
        .arg(&out_dir)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let ids = run_ids(&stdout);
    assert_eq!(ids.len(), 8, "{}", text(&out));
    for id in &ids {
        assert_eq!(leftovers(id), Vec::<String>::new(), "run {id}");
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let trace = |suite: &str, scenario: &str| {
        fault_records(&out_dir.join(suite).join(scenario).join("trace.jsonl"))
    };
    let crash = trace("fault-crash", "crash-is-not-a-hang");
    assert!(
        has(&crash, "crash", "injected", "pidfd readable (exited)"),
        "{crash:?}"
    );
    assert!(
        has(&crash, "crash", "healed", "service restarted: pid"),
        "{crash:?}"
    );
    for (scenario, word) in [
        ("flock-hangs-the-service", "FLOCK ADVISORY WRITE"),
        ("ofd-hangs-the-service", "OFDLCK ADVISORY WRITE -1"),
        ("posix-hangs-the-service", "POSIX ADVISORY WRITE"),
    ] {
        let lock = trace("fault-lock", scenario);
        assert!(has(&lock, "lock", "injected", word), "{lock:?}");
        assert!(
            has(&lock, "lock", "injected", "blocked on it: wchan"),
            "{lock:?}"
        );
        assert!(
            has(&lock, "lock", "healed", "lists no lock of it"),
            "{lock:?}"
        );
    }
    let held = trace("fault-scanner", "held-during-operation");
    assert!(
        has(&held, "scanner", "injected", "1 FAN_OPEN_PERM mark(s)"),
        "{held:?}"
    );
    assert!(
        has(&held, "scanner", "injected", "held in open of state/clusdb"),
        "{held:?}"
    );
    assert!(has(&held, "scanner", "healed", "state/clusdb"), "{held:?}");
    // The bugcheck marker is the machine's (`hw/`, beside `state/`): the
    // watchdog's write of it never waits for the scanner.
    assert!(
        !has(&held, "scanner", "healed", "bugcheck.marker"),
        "{held:?}"
    );
    let excluded = trace("fault-scanner", "folder-excluded");
    assert!(
        has(&excluded, "scanner", "healed", "0 open(s) held"),
        "{excluded:?}"
    );
    assert!(
        has(&excluded, "scanner", "healed", "excluded open(s) passed"),
        "{excluded:?}"
    );
    let stall = trace("fault-scanner", "whole-node-stall-in-a-cluster");
    assert!(
        has(&stall, "scanner", "injected", "held by the scanner"),
        "{stall:?}"
    );
    assert!(has(&stall, "scanner", "healed", "node thawed"), "{stall:?}");

    // The dump of the scanner hang shows the service held inside open(2).
    let dumps = out_dir.join("fault-scanner/held-during-operation/nodes/n1/dumps");
    let dump = std::fs::read_dir(&dumps)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let dump: serde_json::Value = serde_json::from_slice(&std::fs::read(&dump).unwrap()).unwrap();
    let service = dump["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["cgroup"]
                .as_str()
                .unwrap_or_default()
                .ends_with("/service")
        })
        .unwrap_or_else(|| panic!("no service process in {dump}"));
    assert_eq!(service["state"], "D", "{service}");
    assert!(
        service["wchan"].as_str().unwrap().contains("fanotify"),
        "{service}"
    );
    let stack = service["stack"].to_string();
    assert!(stack.contains("openat"), "{stack}");
}
