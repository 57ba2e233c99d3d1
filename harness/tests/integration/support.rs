//! Helpers: run the binary, find a run's id, prove it left nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn faultline() -> Command {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Run ids printed in `lab <id> up` lines.
pub fn run_ids(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("lab "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Everything of run `id` still on the host, described; empty when none.
pub fn leftovers(id: &str) -> Vec<String> {
    let mut left = Vec::new();
    let prefix = format!("fl-{id}-");
    if let Ok(entries) = std::fs::read_dir("/run/netns") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) {
                left.push(format!("namespace {name}"));
            }
        }
    }
    for root in [
        "/sys/fs/cgroup",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup/cpu",
        "/sys/fs/cgroup/freezer",
        "/sys/fs/cgroup/memory",
        "/sys/fs/cgroup/pids",
    ] {
        let dir = Path::new(root).join("faultline").join(id);
        if dir.exists() {
            left.push(format!("cgroup {}", dir.display()));
        }
    }
    if Path::new("/run/faultline").join(id).exists() {
        left.push(format!("folder /run/faultline/{id}"));
    }
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let cg = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
            if cg.contains(&format!("/faultline/{id}/")) {
                left.push(format!("process {}", e.file_name().to_string_lossy()));
            }
        }
    }
    left
}

pub fn write_suite(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
