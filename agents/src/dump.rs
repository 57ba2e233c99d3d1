//! The node's dump: what the seeds ask for before a node is fenced. For every
//! process of the node its state, wait channel, kernel stack, cgroup and
//! resident memory; the pressure figures; the bugcheck's parameters and the
//! exact countdown; and the last events. Captured at the bugcheck, written
//! after the fence.
//!
//! Building a dump never fails: a file that cannot be read is recorded as the
//! error's text. Paths are parameters so tests use a fake `/proc`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::events::Event;

/// What a dump is built from.
#[derive(Debug)]
pub struct DumpInput<'a> {
    /// The node's name.
    pub node: &'a str,
    /// When (CLOCK_MONOTONIC ns).
    pub t: u64,
    /// Why, e.g. `bugcheck 0x9E`.
    pub reason: &'a str,
    /// The bugcheck parameters (the timeout in whole seconds).
    pub params: &'a [u64],
    /// The exact countdown, in milliseconds.
    pub timeout_ms: u32,
    /// The node's cgroup folders; its processes are the `cgroup.procs` below.
    pub node_dirs: &'a [PathBuf],
    /// A folder of per-cgroup pressure files, else `PROC/pressure` is used.
    pub pressure_dir: Option<&'a Path>,
    /// `/proc`, or a fake one.
    pub proc_root: &'a Path,
    /// The last events, oldest first.
    pub last_events: &'a [Event],
}

/// Every pid listed in a `cgroup.procs` file at or below `node_dirs`,
/// sorted and without repeats.
pub fn node_pids(node_dirs: &[PathBuf]) -> Vec<u32> {
    fn walk(dir: &Path, out: &mut BTreeSet<u32>) {
        if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|w| w.parse::<u32>().ok()),
            );
        }
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&entry.path(), out);
                }
            }
        }
    }
    let mut pids = BTreeSet::new();
    for dir in node_dirs {
        walk(dir, &mut pids);
    }
    pids.into_iter().collect()
}

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn text_or_error(path: &Path) -> Value {
    match read_text(path) {
        Ok(t) => Value::String(t.trim_end().to_string()),
        Err(e) => Value::String(e),
    }
}

/// `(comm, state)` from the text of `/proc/PID/stat`; the command name may
/// hold spaces and parentheses, so it ends at the last `)`.
pub fn parse_stat(stat: &str) -> Option<(String, String)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let state = stat
        .get(close + 1..)?
        .split_whitespace()
        .next()?
        .to_string();
    Some((comm, state))
}

fn process(proc_root: &Path, pid: u32) -> Value {
    let dir = proc_root.join(pid.to_string());
    let (comm, state) = match read_text(&dir.join("stat")) {
        Ok(s) => match parse_stat(&s) {
            Some((c, st)) => (Value::String(c), Value::String(st)),
            None => (Value::Null, Value::String(format!("unparsable stat: {s}"))),
        },
        Err(e) => (Value::Null, Value::String(e)),
    };
    let stack = match read_text(&dir.join("stack")) {
        Ok(s) => Value::from(s.lines().map(str::to_string).collect::<Vec<_>>()),
        Err(e) => Value::String(e),
    };
    let rss = match read_text(&dir.join("status")) {
        Ok(s) => s
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .map_or(Value::Null, |v| Value::String(v.trim().to_string())),
        Err(e) => Value::String(e),
    };
    json!({
        "pid": pid,
        "comm": comm,
        "state": state,
        "wchan": text_or_error(&dir.join("wchan")),
        "stack": stack,
        "cgroup": text_or_error(&dir.join("cgroup")),
        "vm_rss": rss,
    })
}

/// Builds the dump as JSON.
pub fn build(input: &DumpInput<'_>) -> Value {
    let processes: Vec<Value> = node_pids(input.node_dirs)
        .into_iter()
        .map(|pid| process(input.proc_root, pid))
        .collect();
    let pressure_file = |name: &str| match input.pressure_dir {
        Some(d) => d.join(format!("{name}.pressure")),
        None => input.proc_root.join("pressure").join(name),
    };
    json!({
        "node": input.node,
        "t": input.t,
        "reason": input.reason,
        "params": input.params,
        "timeout_ms": input.timeout_ms,
        "processes": processes,
        "pressure": {
            "cpu": text_or_error(&pressure_file("cpu")),
            "memory": text_or_error(&pressure_file("memory")),
            "io": text_or_error(&pressure_file("io")),
        },
        "last_events": input.last_events,
    })
}

/// Builds the dump and writes it to `path` (creating its folder).
pub fn write(path: &Path, input: &DumpInput<'_>) -> std::io::Result<()> {
    write_value(path, &build(input))
}

/// Writes a dump built earlier (captured at the bugcheck) to `path`.
pub fn write_value(path: &Path, dump: &Value) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let bytes = serde_json::to_vec_pretty(dump).map_err(std::io::Error::other)?;
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Heartbeat, Source};

    #[test]
    fn stat_parsing_handles_odd_command_names() {
        assert_eq!(
            parse_stat("42 (a) b (c)) D 1 2 3"),
            Some(("a) b (c)".into(), "D".into()))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn dump_is_built_from_a_fake_proc_and_cgroup_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let proc_root = tmp.path().join("proc");
        let p = proc_root.join("100");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("stat"), "100 (faultline-agent) S 1 100 100 0").unwrap();
        std::fs::write(p.join("wchan"), "do_epoll_wait").unwrap();
        std::fs::write(
            p.join("stack"),
            "[<0>] ep_poll+0x1\n[<0>] do_epoll_wait+0x2\n",
        )
        .unwrap();
        std::fs::write(p.join("cgroup"), "0::/faultline/n1/service\n").unwrap();
        std::fs::write(p.join("status"), "Name:\tx\nVmRSS:\t  1234 kB\n").unwrap();
        // pid 200 is listed but has vanished from /proc.
        let cg = tmp.path().join("cg/n1");
        std::fs::create_dir_all(cg.join("service")).unwrap();
        std::fs::write(cg.join("cgroup.procs"), "").unwrap();
        std::fs::write(cg.join("service/cgroup.procs"), "200\n100\n").unwrap();
        let pressure = tmp.path().join("pressure");
        std::fs::create_dir_all(&pressure).unwrap();
        std::fs::write(pressure.join("cpu.pressure"), "some avg10=1.00\n").unwrap();
        let ev = Event::now("n1", Source::Watchdog, Heartbeat::default());
        let input = DumpInput {
            node: "n1",
            t: 5,
            reason: "bugcheck 0x9E",
            params: &[100, 1, 0, 0],
            timeout_ms: 400,
            node_dirs: &[cg],
            pressure_dir: Some(&pressure),
            proc_root: &proc_root,
            last_events: std::slice::from_ref(&ev),
        };
        let d = build(&input);
        assert_eq!(d["params"], json!([100, 1, 0, 0]));
        assert_eq!(d["timeout_ms"], 400, "the exact countdown is kept");
        let procs = d["processes"].as_array().unwrap();
        assert_eq!(procs.len(), 2);
        assert_eq!(procs[0]["pid"], 100);
        assert_eq!(procs[0]["comm"], "faultline-agent");
        assert_eq!(procs[0]["state"], "S");
        assert_eq!(procs[0]["wchan"], "do_epoll_wait");
        assert_eq!(procs[0]["stack"].as_array().unwrap().len(), 2);
        assert_eq!(procs[0]["cgroup"], "0::/faultline/n1/service");
        assert_eq!(procs[0]["vm_rss"], "1234 kB");
        assert!(procs[1]["state"]
            .as_str()
            .unwrap()
            .starts_with("cannot read"));
        assert_eq!(d["pressure"]["cpu"], "some avg10=1.00");
        assert!(d["pressure"]["io"]
            .as_str()
            .unwrap()
            .starts_with("cannot read"));
        assert_eq!(d["last_events"][0]["kind"], "heartbeat");

        let out = tmp.path().join("dumps/bugcheck-5.json");
        write(&out, &input).unwrap();
        let back: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(back, d);
    }
}
