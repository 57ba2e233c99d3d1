//! The resource faults end to end: `suites/faults/cpu.yaml` and
//! `suites/faults/memory.yaml` pass on this host, every scenario's trace
//! holds the fault's proof (injected and healed, with what was read back),
//! and nothing is left behind; on a cgroup2 mount without controllers the
//! run exits 3 naming the missing controller.

use crate::support::*;

/// Runs `suite`; returns each scenario's fault records (phase, evidence).
fn run_suite(suite: &str) -> Vec<(String, Vec<(String, String)>)> {
    let dir = tempfile::tempdir().unwrap();
    let out = faultline()
        .arg("run")
        .arg(repo().join(suite))
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let ids = run_ids(&stdout);
    assert!(!ids.is_empty(), "{}", text(&out));
    for id in &ids {
        let left = leftovers(id);
        assert!(left.is_empty(), "run {id} left {left:?}");
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut scenarios = Vec::new();
    // Beside the suites' folders, `--out` holds report.html.
    let dirs = std::fs::read_dir(dir.path()).unwrap().flatten();
    for suite_dir in dirs.filter(|e| e.path().is_dir()) {
        for sc in std::fs::read_dir(suite_dir.path()).unwrap().flatten() {
            let trace = std::fs::read_to_string(sc.path().join("trace.jsonl")).unwrap();
            let faults = trace
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .filter(|r| r["type"] == "fault")
                .map(|r| {
                    (
                        r["phase"].as_str().unwrap().to_string(),
                        r["evidence"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            scenarios.push((sc.file_name().to_string_lossy().into_owned(), faults));
        }
    }
    scenarios
}

fn evidence<'a>(faults: &'a [(String, String)], phase: &str) -> &'a str {
    faults
        .iter()
        .find(|(p, _)| p == phase)
        .map(|(_, e)| e.as_str())
        .unwrap_or_else(|| panic!("no `{phase}` fault record in {faults:?}"))
}

#[test]
fn root_cpu_suite_passes_with_proof_in_every_trace() {
    if skip_unless_root() {
        return;
    }
    let scenarios = run_suite("suites/faults/cpu.yaml");
    assert_eq!(scenarios.len(), 3, "{scenarios:?}");
    for (name, faults) in &scenarios {
        let onset = evidence(faults, "injected");
        let healed = evidence(faults, "healed");
        if name.starts_with("quota") {
            assert!(onset.contains("nr_throttled"), "{name}: {onset}");
            assert!(healed.contains("quota max"), "{name}: {healed}");
        } else {
            assert!(onset.contains("run delay +"), "{name}: {onset}");
        }
        if name.starts_with("weight") {
            assert!(onset.contains("without a CPU"), "{name}: {onset}");
            assert!(onset.contains("kept to CPU"), "{name}: {onset}");
            assert!(healed.contains("service weight 1024"), "{name}: {healed}");
            assert!(healed.contains("on CPUs"), "{name}: {healed}");
        }
        if name.starts_with("rt-hog") {
            assert!(onset.contains("SCHED_FIFO"), "{name}: {onset}");
            assert!(healed.contains("cpu.rt_runtime_us 0"), "{name}: {healed}");
        }
        assert!(healed.contains("reaped"), "{name}: {healed}");
    }
}

#[test]
fn root_memory_suite_passes_and_names_who_the_oom_killer_killed() {
    if skip_unless_root() {
        return;
    }
    let scenarios = run_suite("suites/faults/memory.yaml");
    assert_eq!(scenarios.len(), 3, "{scenarios:?}");
    for (name, faults) in &scenarios {
        let onset = evidence(faults, "injected");
        let healed = evidence(faults, "healed");
        if name.contains("oom-hang") {
            assert!(onset.contains("under_oom 1"), "{name}: {onset}");
            assert!(healed.contains("oom_kill_disable 0"), "{name}: {healed}");
        } else {
            assert!(onset.contains("killed the leaker"), "{name}: {onset}");
        }
        assert!(healed.contains("limit none"), "{name}: {healed}");
    }
}

#[test]
fn root_resource_faults_on_v2_without_controllers_exit_3_naming_them() {
    if skip_unless_root() || !std::path::Path::new("/sys/fs/cgroup/unified").exists() {
        return;
    }
    for (suite, controller) in [
        ("suites/faults/cpu.yaml", "no cpu controller"),
        ("suites/faults/memory.yaml", "no memory controller"),
    ] {
        let out = faultline()
            .env("FAULTLINE_CGROUP_V2_ROOT", "/sys/fs/cgroup/unified")
            .arg("run")
            .arg(repo().join(suite))
            .output()
            .unwrap();
        let all = text(&out);
        let controllers =
            std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").unwrap();
        if controllers.split_whitespace().any(|c| c == "cpu") {
            return; // a real v2 host: nothing to refuse
        }
        assert_eq!(out.status.code(), Some(3), "{all}");
        assert!(all.contains(controller), "{all}");
        assert!(
            run_ids(&String::from_utf8_lossy(&out.stdout)).is_empty(),
            "{all}"
        );
    }
}
