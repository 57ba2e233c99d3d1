//! Real runs on the real kernel: root only.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn root_demo_passes_with_measured_latency_then_check_rejudges_it() {
    if skip_unless_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = faultline()
        .arg("run")
        .arg(repo().join("suites/demo.yaml"))
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--json")
        .arg(&json)
        .arg("--junit")
        .arg(dir.path().join("r.xml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let checks = &report["scenarios"][0]["checks"];
    assert_eq!(checks[0]["kind"], "detected_within");
    assert_eq!(checks[0]["verdict"], "pass");
    let latency = checks[0]["measured"]["latency_ms"].as_f64().unwrap();
    let overshoot = checks[0]["measured"]["overshoot_ms"].as_f64().unwrap();
    assert!(latency > 0.0 && latency <= 1020.0, "latency {latency}");
    assert!((0.0..=20.0).contains(&overshoot), "overshoot {overshoot}");
    assert!(std::fs::read_to_string(dir.path().join("r.xml"))
        .unwrap()
        .contains("detected_within[n1]"));

    let kept = dir.path().join("out/demo/freeze-is-caught");
    let node = kept.join("nodes/n1");
    assert!(std::fs::read_to_string(node.join("cluster.log"))
        .unwrap()
        .contains("[CS] Cluster Service started"));
    assert!(std::fs::read_dir(node.join("dumps")).unwrap().count() >= 1);

    let again = faultline()
        .arg("check")
        .arg(kept.join("trace.jsonl"))
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    for id in run_ids(&stdout) {
        assert_eq!(
            leftovers(&id),
            Vec::<String>::new(),
            "run {id} left things behind"
        );
    }
}

#[test]
fn root_demo_with_monitoring_disabled_fails_detected_within() {
    if skip_unless_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let demo = std::fs::read_to_string(repo().join("suites/demo.yaml")).unwrap();
    let off = demo.replace("hang_recovery_action: 3", "hang_recovery_action: 0");
    let suite = write_suite(dir.path(), "off.yaml", &off);
    let json = dir.path().join("r.json");
    let out = faultline()
        .arg("run")
        .arg(&suite)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let check = &report["scenarios"][0]["checks"][0];
    assert_eq!(check["kind"], "detected_within");
    assert_eq!(check["verdict"], "fail");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("monitoring disabled"),
        "{check}"
    );
    for id in run_ids(&String::from_utf8_lossy(&out.stdout)) {
        assert_eq!(leftovers(&id), Vec::<String>::new());
    }
}

/// Starts the demo and returns the child and the run id once the timeline
/// has started.
fn start_demo() -> (std::process::Child, String, Vec<String>) {
    start_demo_with(&[])
}

/// Starts the demo with `args` and returns once its fault is in effect.
fn start_demo_with(args: &[&std::ffi::OsStr]) -> (std::process::Child, String, Vec<String>) {
    let mut child = faultline()
        .arg("run")
        .arg(repo().join("suites/demo.yaml"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let mut id = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(found) = run_ids(&line).pop() {
            id = Some(found);
        }
        let started = line.contains("fault freeze in effect");
        seen.push(line);
        if started {
            break;
        }
    }
    // Keep draining so the harness never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.by_ref() {});
    let id = id.unwrap_or_else(|| panic!("no run id in {seen:?}"));
    (child, id, seen)
}

#[test]
fn root_sigint_mid_run_tears_everything_down() {
    if skip_unless_root() {
        return;
    }
    let (mut child, id, seen) = start_demo();
    assert!(
        !leftovers(&id).is_empty(),
        "the lab should exist mid-run: {seen:?}"
    );
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(leftovers(&id), Vec::<String>::new());
}

#[test]
fn root_kill_9_then_cleanup_leaves_nothing() {
    if skip_unless_root() {
        return;
    }
    let (mut child, id, _) = start_demo();
    child.kill().unwrap();
    child.wait().unwrap();
    // The agents die with the harness (parent-death signal); the namespaces,
    // cgroups and run folder stay until cleanup.
    let deadline = Instant::now() + Duration::from_secs(5);
    while leftovers(&id).iter().any(|l| l.starts_with("process")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = leftovers(&id);
    assert!(!left.iter().any(|l| l.starts_with("process")), "{left:?}");
    assert!(left.iter().any(|l| l.starts_with("namespace")), "{left:?}");

    let dry = faultline().args(["cleanup", "--dry-run"]).output().unwrap();
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains(&format!("would remove run {id}")),
        "{}",
        text(&dry)
    );
    assert!(!leftovers(&id).is_empty(), "dry run must remove nothing");

    let clean = faultline().arg("cleanup").output().unwrap();
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    assert_eq!(leftovers(&id), Vec::<String>::new());
}

#[test]
fn root_seed_suites_reproduce_seeds_001_to_004_and_prove_the_fix() {
    if skip_unless_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let kept = dir.path().join("out");
    let seeds = repo().join("suites/seeds");
    let out = faultline()
        .arg("run")
        .arg(seeds.join("terminate-leaves-ip.yaml"))
        .arg(seeds.join("bugcheck-fences.yaml"))
        .arg(seeds.join("poison-packet.yaml"))
        .arg(seeds.join("hung-node-looks-alive.yaml"))
        .arg("--json")
        .arg(&json)
        .arg("--out")
        .arg(&kept)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let scenario = |name: &str| {
        report["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no scenario {name}"))
            .clone()
    };
    let check = |sc: &serde_json::Value, kind: &str| {
        sc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == kind)
            .unwrap_or_else(|| panic!("no check {kind} in {sc}"))
            .clone()
    };

    // Seed 002 with action 2: each of the four other owners' probe is
    // answered (4199), the group fails.
    let t = scenario("action-2-leaves-the-ip-answered");
    assert_eq!(t["verdict"], "pass", "{t}");
    let state = check(&t, "group_state");
    assert!(
        state["detail"]
            .as_str()
            .unwrap()
            .contains(r#"every owner failed on ["n2", "n3", "n4", "n5"]"#),
        "{state}"
    );

    // Without the agents' probe, the harness sees the conflict on the wire itself.
    let w = scenario("without-probe-the-wire-shows-two-macs");
    let conflict = check(&w, "no_ip_conflict");
    assert_eq!(conflict["verdict"], "fail");
    let detail = conflict["detail"].as_str().unwrap();
    for needle in [
        "10.77.0.100",
        "02:fa:00:00:01:01 (n1)",
        "02:fa:00:00:01:02 (n2)",
    ] {
        assert!(detail.contains(needle), "{needle} missing from {detail}");
    }

    // Seed 002's disk errors: the cut-off owner's writes fail, 57 then 50.
    let d = scenario("an-owner-cut-off-still-writes-and-logs-57-and-50");
    assert_eq!(d["verdict"], "pass", "{d}");

    // Action 3: clean failover, measured.
    let b = scenario("action-3-fences-and-fails-over");
    assert_eq!(b["verdict"], "pass");
    assert!(
        check(&b, "failover_within")["measured"]["failover_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(
        check(&b, "client_downtime")["measured"]["downtime_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // Seed 002 complete: the group is still failed after n1's service
    // restarted and rejoined (the scenario's group_state), and n1 did not
    // bring it online again.
    let t_trace = trace_of(&kept.join("terminate-leaves-ip/action-2-leaves-the-ip-answered"));
    assert_eq!(events(&t_trace, "n1", "service_started").len(), 2);
    let restarted = events(&t_trace, "n1", "service_started")[1]["t"]
        .as_u64()
        .unwrap();
    assert!(
        events(&t_trace, "n1", "group_online")
            .iter()
            .all(|e| e["t"].as_u64().unwrap() < restarted),
        "n1 brought the failed group online after its restart"
    );

    // Seed 004: the node without quorum is poisoned, and n1's 1122 for a
    // network comes when that network's link comes back.
    let p = scenario("evicted-node-is-poisoned-when-the-path-returns");
    assert_eq!(p["verdict"], "pass", "{p}");
    let p_trace =
        trace_of(&kept.join("poison-packet/evicted-node-is-poisoned-when-the-path-returns"));
    regained_when_healed(&p_trace, "Public", 1);

    // Seed 004's loop: n2 restarted, failed the join update, was poisoned
    // again; 1122 per network as each network's links come back.
    let l = scenario("restarted-node-fails-an-update-and-is-poisoned-again");
    assert_eq!(l["verdict"], "pass", "{l}");
    let l_trace =
        trace_of(&kept.join("poison-packet/restarted-node-fails-an-update-and-is-poisoned-again"));
    let poisoned = events(&l_trace, "n2", "poisoned");
    assert_eq!(poisoned.len(), 2, "1118 twice");
    assert!(poisoned.iter().all(|e| e["id"] == 1118));
    let reasons: Vec<&str> = events(&l_trace, "n1", "poison_sent")
        .iter()
        .map(|e| e["data"]["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"evicted") && reasons.contains(&"gumfailed"),
        "{reasons:?}"
    );
    regained_when_healed(&l_trace, "Public", 1);
    regained_when_healed(&l_trace, "Private", 0);

    // Seeds 001 and 003: a log-only hang is not failed over; its clients
    // go unserved (the pinned known-bad setting).
    let h = scenario("log-only-hang-is-not-failed-over");
    assert_eq!(h["verdict"], "pass", "{h}");
    let downtime = check(&h, "client_downtime");
    assert_eq!(
        (
            downtime["verdict"].as_str(),
            downtime["expected_failure"].as_bool()
        ),
        (Some("fail"), Some(true))
    );

    // Seed 001: a clean stop is not a hang: no detection, no 7031, no
    // restart (the scenario's checks), and the stop's heal read back that
    // nothing restarted the service.
    let s = scenario("stopped-service-is-not-a-hang");
    assert_eq!(s["verdict"], "pass", "{s}");
    let s_trace = trace_of(&kept.join("hung-node-looks-alive/stopped-service-is-not-a-hang"));
    assert!(
        s_trace.iter().any(|r| r["type"] == "fault"
            && r["kind"] == "stop"
            && r["phase"] == "healed"
            && r["evidence"]
                .as_str()
                .is_some_and(|e| e.contains("stays stopped"))),
        "no healed stop saying it stayed stopped"
    );

    for id in run_ids(&String::from_utf8_lossy(&out.stdout)) {
        assert_eq!(
            leftovers(&id),
            Vec::<String>::new(),
            "run {id} left things behind"
        );
    }
}

/// The records of a scenario's kept trace.
fn trace_of(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("trace.jsonl"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A node's events of one kind, in trace order.
fn events<'a>(
    trace: &'a [serde_json::Value],
    node: &str,
    kind: &str,
) -> Vec<&'a serde_json::Value> {
    trace
        .iter()
        .filter(|r| r["type"] == "event" && r["node"] == node && r["kind"] == kind)
        .collect()
}

/// Seed 004: n1 lost n2 on `network` (1123), logs no 1122 for it while
/// the fault at `index` (a cut of that network) holds, and logs it within
/// 2 s of the heal's request (the heal's own record may come seconds later
/// when its probes are slow to prove it).
fn regained_when_healed(trace: &[serde_json::Value], network: &str, index: u64) {
    let t = |r: &serde_json::Value| r["t"].as_u64().unwrap();
    let on = |e: &&&serde_json::Value| e["data"]["network"] == network;
    let lost = t(events(trace, "n1", "peer_lost")
        .iter()
        .find(on)
        .expect("1123"));
    let healed = trace
        .iter()
        .find(|r| {
            r["type"] == "fault"
                && r["index"] == index
                && (r["phase"] == "healed" || r["phase"] == "failed")
        })
        .map(|r| r["requested"].as_u64().unwrap_or_else(|| t(r)))
        .expect("the cut's heal");
    let back = events(trace, "n1", "peer_regained")
        .into_iter()
        .filter(|e| e["data"]["network"] == network && t(e) > lost)
        .map(t)
        .next()
        .unwrap_or_else(|| panic!("no 1122 on {network} after its 1123"));
    assert!(
        back > healed && back - healed < 2_000_000_000,
        "1122 on {network} at {back}, its links back at {healed}"
    );
}

/// The pure cgroup v2 path (one cgroup2 hierarchy: `cgroup.procs`,
/// `cgroup.freeze`, `cgroup.kill`), on this host's cgroup2 mount, leaving
/// nothing behind.
#[test]
fn root_demo_passes_on_the_pure_cgroup_v2_path() {
    if skip_unless_root() {
        return;
    }
    let root = std::path::Path::new("/sys/fs/cgroup/unified");
    let v2_root = if root.join("cgroup.procs").exists() {
        root
    } else if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        std::path::Path::new("/sys/fs/cgroup")
    } else {
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    let out = faultline()
        .env("FAULTLINE_CGROUP_V2_ROOT", v2_root)
        .arg("run")
        .arg(repo().join("suites/demo.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("cgroup.events: frozen 1"), "{stdout}");
    for id in run_ids(&stdout) {
        assert_eq!(leftovers(&id), Vec::<String>::new());
    }
}

/// Waits until no process of run `id` is left (they die with the harness).
fn wait_for_no_process(id: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while leftovers(id).iter().any(|l| l.starts_with("process")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn root_kill_9_leaves_a_trace_that_check_reads_up_to_the_kill() {
    if skip_unless_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut child, id, _) = start_demo_with(&["--out".as_ref(), dir.path().as_os_str()]);
    // The watchdog fires ~0.75 s after the onset: let it land in the trace.
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for_no_process(&id);
    let clean = faultline().arg("cleanup").output().unwrap();
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    assert_eq!(leftovers(&id), Vec::<String>::new());

    let trace = dir.path().join("demo/freeze-is-caught/trace.jsonl");
    let lines = std::fs::read_to_string(&trace).unwrap_or_default();
    assert!(lines.starts_with("{\"type\":\"header\""), "{lines}");
    assert!(lines.contains("\"phase\":\"injected\""), "{lines}");
    assert!(lines.contains("\"kind\":\"hang_detected\""), "{lines}");
    assert!(!lines.contains("\"type\":\"end\""), "{lines}");

    let check = faultline().arg("check").arg(&trace).output().unwrap();
    let said = text(&check);
    assert_eq!(check.status.code(), Some(2), "{said}");
    assert!(said.contains("the run did not end"), "{said}");
    assert!(said.contains("PASS  detected_within[n1]"), "{said}");
}

#[test]
fn root_a_live_runs_out_is_refused_and_a_reused_one_holds_nothing_stale() {
    if skip_unless_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_args = ["--out".as_ref(), dir.path().as_os_str()];
    let (mut first, id, _) = start_demo_with(&out_args);
    let second = faultline()
        .arg("run")
        .arg(repo().join("suites/demo.yaml"))
        .args(out_args)
        .output()
        .unwrap();
    let said = text(&second);
    assert_eq!(second.status.code(), Some(2), "{said}");
    assert!(said.contains("in use by another faultline run"), "{said}");
    assert!(said.contains("demo/freeze-is-caught"), "{said}");
    assert_eq!(
        run_ids(&String::from_utf8_lossy(&second.stdout)),
        Vec::<String>::new(),
        "the refused run built no lab: {said}"
    );
    assert_eq!(
        first.wait().unwrap().code(),
        Some(0),
        "the first run is unharmed"
    );
    assert_eq!(leftovers(&id), Vec::<String>::new());

    // What a killed run would leave: a bugcheck marker read at the next
    // start as "rebooted from a bugcheck".
    let kept = dir.path().join("demo/freeze-is-caught");
    let hw = kept.join("nodes/n1/hw");
    std::fs::create_dir_all(&hw).unwrap();
    std::fs::write(hw.join("bugcheck.marker"), "stale").unwrap();
    let again = faultline()
        .arg("run")
        .arg(repo().join("suites/demo.yaml"))
        .args(out_args)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let trace = std::fs::read_to_string(kept.join("trace.jsonl")).unwrap();
    assert_eq!(
        trace.matches("\"kind\":\"node_rebooted\"").count(),
        1,
        "only the real bugcheck's reboot: {trace}"
    );
    for id in run_ids(&String::from_utf8_lossy(&again.stdout)) {
        assert_eq!(leftovers(&id), Vec::<String>::new());
    }
}

#[test]
fn root_ctrl_c_during_the_lab_build_exits_130_and_builds_no_further_lab() {
    use std::os::unix::process::CommandExt;
    if skip_unless_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nodes: String = (1..=8)
        .map(|i| format!("      n{i}:\n        hang_timeout: 1s\n"))
        .collect();
    let scenario = |name: &str| {
        format!(
            "  - name: {name}\n    nodes:\n{nodes}    checks:\n      - kind: recovery_action\n        node: n1\n        action: bugcheck\n"
        )
    };
    let suite = write_suite(
        dir.path(),
        "big.yaml",
        &format!(
            "suite: big\nscenarios:\n{}{}",
            scenario("first"),
            scenario("second")
        ),
    );
    let child = faultline()
        .arg("run")
        .arg(&suite)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // The build registers the run first thing: interrupt right after, as
    // Ctrl-C does (the whole process group, the build's `ip` children too).
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = loop {
        let found = std::fs::read_dir("/run/faultline").ok().and_then(|dirs| {
            dirs.flatten().find_map(|d| {
                let reg = std::fs::read_to_string(d.path().join("harness")).ok()?;
                (reg.split_whitespace().next()? == pid.to_string())
                    .then(|| d.file_name().to_string_lossy().into_owned())
            })
        });
        if let Some(id) = found {
            break id;
        }
        assert!(Instant::now() < deadline, "no run registered");
        std::thread::sleep(Duration::from_millis(1));
    };
    // Again every 2 ms until it exits, so that some land on the build's
    // `ip` children whatever the timing.
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        // SAFETY: kill(2) on the process group of our own child.
        unsafe { libc::kill(-(pid as i32), libc::SIGINT) };
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = child.wait_with_output().unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(130), "{said}");
    assert!(
        !said.contains("big/second"),
        "a lab was started after the interrupt: {said}"
    );
    assert_eq!(leftovers(&id), Vec::<String>::new(), "{said}");
}
