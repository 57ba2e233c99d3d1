//! `report.html` opened in headless Chromium (installed by
//! `ci/install-deps.sh`): the page must hold a timeline SVG per scenario
//! and log nothing to the console. Saved runs (`data/`, recorded with
//! `faultline run --out`) are drawn without root; `root_*` draws a live run.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// What Chromium made of a page: the DOM after load, and the page's
/// console lines (errors, uncaught exceptions) from its log.
pub(crate) struct Opened {
    pub(crate) dom: String,
    pub(crate) console: Vec<String>,
}

fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("chromium is not installed: run ci/install-deps.sh (apt-get install chromium)");
}

pub(crate) fn open(page: &Path) -> Opened {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let log = String::from_utf8_lossy(&out.stderr);
    Opened {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console: log
            .lines()
            .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
            .map(str::to_string)
            .collect(),
    }
}

fn data(name: &str) -> PathBuf {
    repo().join("harness/tests/integration/data").join(name)
}

/// The page's local links that do not resolve to a file beside it.
pub(crate) fn broken_links(page: &Path) -> Vec<String> {
    let html = std::fs::read_to_string(page).unwrap();
    let dir = page.parent().unwrap();
    html.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|l| !l.starts_with('#'))
        .filter(|l| !dir.join(l).is_file())
        .map(str::to_string)
        .collect()
}

#[test]
fn report_of_saved_demo_and_seed_runs_opens_in_chromium_without_errors() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let out = faultline()
        .arg("check")
        .arg(data("demo-freeze-is-caught.jsonl"))
        .arg(data("bugcheck-fences.jsonl"))
        .arg("--report")
        .arg(&page)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let opened = open(&page);
    assert_eq!(
        opened.console,
        Vec::<String>::new(),
        "the page logged errors"
    );
    assert_eq!(
        opened.dom.matches("<svg").count(),
        2,
        "one timeline per scenario"
    );
    assert_eq!(opened.dom.matches(r#"class="timeline""#).count(), 2);
    // The seed's cluster: three node lanes, the virtual IP, the client.
    assert!(opened.dom.contains("</title>10.77.0.100 (sql)</text>"));
    assert!(opened.dom.contains("</title>client → sql</text>"));
    assert!(opened.dom.contains(">0x9E</text>"));
    assert!(opened.dom.contains("failover_within[sql]"));
    // The traces are linked by their own names, from the page's folder.
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches(r#"<a href="../"#).count(), 2, "{html}");
    assert!(html.contains("/data/bugcheck-fences.jsonl\""));
    assert_eq!(broken_links(&page), Vec::<String>::new());
}

#[test]
fn check_report_refuses_a_folder_before_judging() {
    let dir = tempfile::tempdir().unwrap();
    let out = faultline()
        .arg("check")
        .arg(data("demo-freeze-is-caught.jsonl"))
        .arg("--report")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--report"),
        "{}",
        text(&out)
    );
}

/// The console check can fail: a page with an error is caught.
#[test]
fn chromium_console_errors_are_seen() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><script>undefinedFn();</script></body></html>",
    )
    .unwrap();
    let opened = open(&page);
    assert_eq!(opened.console.len(), 1, "{:?}", opened.console);
    assert!(opened.console[0].contains("Uncaught ReferenceError"));
}

#[test]
fn root_report_of_a_demo_run_opens_in_chromium_with_working_links() {
    if skip_unless_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = faultline()
        .arg("run")
        .arg(repo().join("suites/demo.yaml"))
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let page = out_dir.join("report.html");
    assert!(
        stdout.contains(&format!("report: {}", page.display())),
        "{stdout}"
    );
    let opened = open(&page);
    assert_eq!(
        opened.console,
        Vec::<String>::new(),
        "the page logged errors"
    );
    assert_eq!(opened.dom.matches(r#"class="timeline""#).count(), 1);
    let html = std::fs::read_to_string(&page).unwrap();
    for file in [
        "trace.jsonl",
        "nodes/n1/events.jsonl",
        "nodes/n1/cluster.log",
    ] {
        let link = format!(r#"href="demo/freeze-is-caught/{file}""#);
        assert!(html.contains(&link), "no link {link}");
    }
    assert!(html.contains(r#"href="demo/freeze-is-caught/nodes/n1/dumps/"#));
    assert_eq!(broken_links(&page), Vec::<String>::new());
    for id in run_ids(&stdout) {
        assert_eq!(
            leftovers(&id),
            Vec::<String>::new(),
            "run {id} left things behind"
        );
    }
}
