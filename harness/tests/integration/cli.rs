//! CLI behaviour that needs no root: validation, exit codes, re-judging.

use crate::support::*;

#[test]
fn unknown_key_exits_2_naming_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let demo = std::fs::read_to_string(repo().join("suites/demo.yaml")).unwrap();
    let bad = demo.replace(
        "        slack: 20ms\n",
        "        slack: 20ms\n        slak: 1s\n",
    );
    let line = bad.lines().position(|l| l.contains("slak")).unwrap() + 1;
    let path = write_suite(dir.path(), "bad.yaml", &bad);
    for cmd in ["validate", "run"] {
        let out = faultline().arg(cmd).arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("bad.yaml:{line}:9: ")),
            "{}",
            text(&out)
        );
        assert!(err.contains("slak"), "{}", text(&out));
    }
}

#[test]
fn missing_suite_file_is_invalid_input() {
    let out = faultline()
        .args(["validate", "/nonexistent/suite.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/suite.yaml"));
}

#[test]
fn every_shipped_suite_is_valid() {
    let mut suites = Vec::new();
    for dir in ["suites", "suites/seeds"] {
        for e in std::fs::read_dir(repo().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                suites.push(p);
            }
        }
    }
    assert!(suites.len() >= 5, "{suites:?}");
    let out = faultline().arg("validate").args(&suites).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn check_refuses_a_file_that_is_not_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_suite(dir.path(), "trace.jsonl", "{\"type\":\"start\",\"t\":1}\n");
    let out = faultline().arg("check").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a header"),
        "{}",
        text(&out)
    );
}

/// The lines of a short trace of the demo scenario: header, start, and
/// (unless `killed`) settled and end.
fn demo_trace(killed: bool) -> Vec<String> {
    use faultline::trace::{Header, Record, Trace, TRACE_VERSION};
    let suite = faultline::suite::load_suite(&repo().join("suites/demo.yaml")).unwrap();
    let mut records = vec![
        Record::Header(Header {
            t: 1_000,
            version: TRACE_VERSION,
            run_id: "abc123".into(),
            suite: suite.name.clone(),
            scenario: suite.scenarios[0].clone(),
            host: "test".into(),
            topology: Vec::new(),
        }),
        Record::Start { t: 2_000 },
    ];
    if !killed {
        records.push(Record::Settled { t: 3_000 });
        records.push(Record::End {
            t: 4_000,
            reason: "completed".into(),
        });
    }
    let mut out = Vec::new();
    Trace { records }.write_to(&mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn check_refuses_another_trace_version_saying_which_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = demo_trace(false);
    lines[0] = lines[0].replace("\"version\":2", "\"version\":7");
    let path = write_suite(dir.path(), "trace.jsonl", &(lines.join("\n") + "\n"));
    let out = faultline().arg("check").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:1:", path.display()))
            && err.contains("trace version 7 is not one this build reads (it reads version 2)"),
        "{}",
        text(&out)
    );
}

#[test]
fn check_refuses_concatenated_traces_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let lines = demo_trace(false);
    let one = lines.join("\n") + "\n";
    let path = write_suite(dir.path(), "trace.jsonl", &(one.clone() + &one));
    let out = faultline().arg("check").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "{}:{}:1: a second header",
            path.display(),
            lines.len() + 1
        )),
        "{}",
        text(&out)
    );
}

#[test]
fn check_judges_a_killed_run_and_says_it_did_not_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_suite(
        dir.path(),
        "trace.jsonl",
        &(demo_trace(true).join("\n") + "\n"),
    );
    let out = faultline().arg("check").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("the run did not end"), "{}", text(&out));
    assert!(stdout.contains("detected_within[n1]"), "{}", text(&out));
    assert!(stdout.contains("timeline starts"), "{}", text(&out));
}
#[test]
fn unwritable_report_and_out_paths_exit_2_before_any_lab_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let demo = repo().join("suites/demo.yaml");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let cases: [(&[&str], String, &str); 4] = [
        (&["--json"], dir.path().display().to_string(), "is a folder"),
        (
            &["--junit"],
            dir.path().join("missing/junit.xml").display().to_string(),
            "does not exist",
        ),
        (&["--out"], file.display().to_string(), "is not a folder"),
        (
            &["--out"],
            file.join("sub").display().to_string(),
            "cannot create",
        ),
    ];
    for (flag, value, says) in cases {
        let out = faultline()
            .arg("run")
            .arg(&demo)
            .args(flag)
            .arg(&value)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flag:?} {value}: {}",
            text(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(flag[0]) && err.contains(&value),
            "{}",
            text(&out)
        );
        assert!(err.contains(says), "{}", text(&out));
        // Nothing was built: no lab line, no scenario title.
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("demo/freeze-is-caught"),
            "{}",
            text(&out)
        );
    }
    assert!(
        !dir.path().join("missing").exists(),
        "a refused --junit creates no folder"
    );
}

#[test]
fn lab_bench_refuses_bad_sizes_rounds_and_a_missing_script_before_building() {
    for (args, needle) in [
        (vec!["--nodes", "3,0"], "--nodes 0"),
        (vec!["--nodes", "100000"], "--nodes 100000"),
        (vec!["--rounds", "0"], "--rounds 0"),
        (
            vec!["--baseline", "/nonexistent/baseline-lab.sh"],
            "/nonexistent/baseline-lab.sh",
        ),
    ] {
        let out = faultline().arg("lab-bench").args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {}", text(&out));
        assert!(
            out.stdout.is_empty(),
            "{args:?}: nothing measured: {}",
            text(&out)
        );
    }
}
