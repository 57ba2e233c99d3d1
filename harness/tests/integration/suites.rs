//! Suites a careful user could break the binary with (issue 11): every one
//! exits 2 with a place from `validate` and from `run` alike, before a lab
//! is built, and never panics (exit 101).

use crate::support::*;

fn demo() -> String {
    std::fs::read_to_string(repo().join("suites/demo.yaml")).unwrap()
}

fn refused(name: &str, suite: &str, expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_suite(dir.path(), name, suite);
    for cmd in ["validate", "run"] {
        let out = faultline().arg(cmd).arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd} {name}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{name}:")), "{cmd}: {}", text(&out));
        assert!(err.contains(expect), "{cmd}: {}", text(&out));
        assert!(!err.contains("panicked"), "{cmd}: {}", text(&out));
    }
}

#[test]
fn a_suite_name_that_escapes_out_exits_2() {
    refused(
        "escape.yaml",
        &demo().replace("suite: demo", "suite: ../../escape"),
        "suite name `../../escape` must be",
    );
}

#[test]
fn numbers_too_large_to_represent_exit_2_not_101() {
    let huge = demo().replace(
        "hang_timeout: 1s",
        "hang_timeout: 99999999999999999999999999s",
    );
    refused("huge.yaml", &huge, "longer than the limit of 24h");
    let wraps = demo().replace("hang_timeout: 1s", "hang_timeout: 4294967296ms");
    refused("wraps.yaml", &wraps, "longer than the limit of 24h");
}

#[test]
fn more_nodes_than_addresses_exit_2() {
    let nodes: String = (2..=300).map(|i| format!("      n{i}: {{}}\n")).collect();
    let many = demo().replace("    faults:\n", &format!("{nodes}    faults:\n"));
    refused("many.yaml", &many, "300 nodes: a scenario has at most 240");
}

#[test]
fn cleanup_as_non_root_says_it_needs_root_and_touches_nothing() {
    if skip_unless_root() {
        return;
    }
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_faultline"))
        .arg("cleanup")
        .output();
    let Ok(out) = out else {
        eprintln!("skipped: setpriv is not available");
        return;
    };
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("faultline cleanup needs root"), "{all}");
    assert!(!all.contains("removed"), "{all}");
}
