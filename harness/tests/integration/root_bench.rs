//! `faultline bench`: bad input refused before any lab (no root needed),
//! and a short live bench whose JSON holds every sample and the summary,
//! whose traces prove each watchdog ran as its setting asked, and whose
//! report opens in Chromium.

use crate::report_html::{broken_links, open};
use crate::support::*;

fn bench(args: &[&str]) -> std::process::Output {
    faultline().arg("bench").args(args).output().unwrap()
}

#[test]
fn bench_refuses_bad_input_with_exit_2() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["--compare", "watchdog_priority=fifo,high"],
            "--compare:1:20: watchdog_priority `high` must be one of fifo, normal",
        ),
        (&["--compare", "watchdog_priority"], "write KEY=A,B"),
        (&["--compare", "no_such_setting=1,2"], "no_such_setting"),
        (&["--fault", "link_down"], "no built-in scenario"),
        (
            &["--scenario", "nope"],
            "no such scenario (it has: cpu-rt_hog)",
        ),
    ];
    for (args, want) in cases {
        let out = bench(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let out = bench(&["--trials", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn root_bench_compares_watchdog_priorities_and_writes_json_and_report() {
    if skip_unless_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out_dir = dir.path().join("out");
    let out = bench(&[
        "--fault",
        "freeze",
        "--trials",
        "2",
        "--controls",
        "1",
        "--compare",
        "watchdog_priority=fifo,normal",
        "--json",
        json.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.contains("overshoot p99"), "{stdout}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let samples = doc["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 5, "2 trials x 2 settings + 1 control");
    assert_eq!(doc["complete"], true);
    assert_eq!(doc["host"]["cores"].as_u64(), Some(num_cpus()));
    assert!(doc["host"]["kernel"].as_str().unwrap().len() > 2);
    assert!(["v1-hybrid", "v2"].contains(&doc["host"]["cgroup_layout"].as_str().unwrap()));
    let summary = doc["summary"].as_array().unwrap();
    assert_eq!(summary.len(), 2);
    for s in summary {
        assert_eq!(s["trials"], 2, "{s}");
        assert_eq!(s["overshoot"]["count"], 2, "{s}");
        assert!(s["latency"]["min"].as_f64().unwrap() > 700.0, "{s}");
    }
    assert_eq!(
        summary
            .iter()
            .map(|s| s["controls"].as_u64().unwrap())
            .sum::<u64>(),
        1
    );
    assert_eq!(doc["comparisons"][0]["b"], "watchdog_priority=normal");
    assert_eq!(doc["lab"][0]["nodes"], 1);
    // Each trial's watchdog ran as its setting asked: its start event
    // reads the policy back from the kernel.
    for s in samples {
        let trace = std::fs::read_to_string(s["trace"].as_str().unwrap()).unwrap();
        let started = trace
            .lines()
            .find(|l| l.contains("\"watchdog_started\""))
            .unwrap_or_else(|| panic!("no watchdog_started in {}", s["trace"]));
        let want = if s["setting"] == "watchdog_priority=normal" {
            "\"policy\":\"other\""
        } else {
            "\"policy\":\"fifo\""
        };
        assert!(started.contains(want), "{}: {started}", s["setting"]);
        let id = s["run_id"].as_str().unwrap();
        assert_eq!(leftovers(id), Vec::<String>::new(), "run {id} left things");
    }
    let page = out_dir.join("report.html");
    let opened = open(&page);
    assert_eq!(
        opened.console,
        Vec::<String>::new(),
        "the page logged errors"
    );
    assert_eq!(
        opened.dom.matches(r#"class="histogram""#).count(),
        4,
        "latency and overshoot, one histogram per setting"
    );
    assert!(opened.dom.contains("id=\"bench-comparison\""));
    assert_eq!(broken_links(&page), Vec::<String>::new());
}

fn num_cpus() -> u64 {
    std::thread::available_parallelism().unwrap().get() as u64
}

#[test]
fn root_bench_stops_on_sigint_reports_what_it_has_and_leaves_nothing() {
    if skip_unless_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out_dir = dir.path().join("out");
    let child = faultline()
        .args([
            "bench",
            "--fault",
            "freeze",
            "--trials",
            "5",
            "--controls",
            "0",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--out")
        .arg(&out_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Into the second trial (each is about 3.3 s).
    std::thread::sleep(std::time::Duration::from_millis(4500));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stopped after"), "{stdout}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["complete"], false);
    let n = doc["samples"].as_array().unwrap().len();
    assert!((1..5).contains(&n), "{n} samples");
    // Every trial started, the one left out included, was torn down.
    let mut ids = Vec::new();
    for e in std::fs::read_dir(out_dir.join("trials")).unwrap().flatten() {
        let trace = std::fs::read_to_string(e.path().join("trace.jsonl")).unwrap();
        let header: serde_json::Value =
            serde_json::from_str(trace.lines().next().unwrap()).unwrap();
        ids.push(header["run_id"].as_str().unwrap().to_string());
    }
    assert_eq!(
        ids.len(),
        n + 1,
        "the trial running at the signal ran to its end"
    );
    for id in ids {
        assert_eq!(leftovers(&id), Vec::<String>::new(), "run {id} left things");
    }
}
