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

/// True (after saying so) when the test cannot run without root.
pub fn skip_unless_root() -> bool {
    if !is_root() {
        eprintln!("skipped: needs root");
        return true;
    }
    false
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

/// A switch namespace with bridge `br0` and node namespaces, each with a
/// veth `nic` on the bridge (with address 10.99.0.<n>/24, n from 1, when
/// `addresses`). Names start `fltest-<tag>-`. Dropping it deletes every
/// namespace it created, even after a panic.
pub struct Topology {
    pub sw: faultline_faults::netns::NetNs,
    pub nodes: Vec<faultline_faults::netns::NetNs>,
    pub created: Vec<faultline_faults::netns::NetNs>,
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            if let Err(e) = ns.delete() {
                eprintln!("cannot delete {}: {e}", ns.name());
            }
        }
    }
}

impl Topology {
    pub fn build(tag: &str, nic: &str, addresses: bool, nodes: &[&str]) -> Topology {
        use faultline_faults::netns::NetNs;
        use std::sync::atomic::{AtomicU32, Ordering};
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let base = format!(
            "fltest-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let mut topo = Topology {
            sw: NetNs::open(&format!("{base}-sw")),
            nodes: Vec::new(),
            created: Vec::new(),
        };
        // Each namespace joins `created` as soon as it exists, so a panic
        // below still deletes it.
        topo.sw = NetNs::create(topo.sw.name()).unwrap();
        topo.created.push(topo.sw.clone());
        topo.sw
            .ip(&["link", "add", "br0", "type", "bridge"])
            .unwrap();
        topo.sw.ip(&["link", "set", "br0", "up"]).unwrap();
        for (i, node) in nodes.iter().enumerate() {
            let ns = NetNs::create(&format!("{base}-{node}")).unwrap();
            topo.created.push(ns.clone());
            let port = format!("{node}-p");
            topo.sw
                .ip(&[
                    "link",
                    "add",
                    &port,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    nic,
                    "netns",
                    ns.name(),
                ])
                .unwrap();
            topo.sw
                .ip(&["link", "set", &port, "master", "br0", "up"])
                .unwrap();
            if addresses {
                ns.ip(&["addr", "add", &format!("10.99.0.{}/24", i + 1), "dev", nic])
                    .unwrap();
            }
            ns.ip(&["link", "set", nic, "up"]).unwrap();
            topo.nodes.push(ns);
        }
        for ns in &topo.nodes {
            wait_lower_up(ns, nic);
        }
        topo
    }

    /// (name, namespace file) of each node.
    pub fn observed(&self, names: &[&str]) -> Vec<(String, PathBuf)> {
        names
            .iter()
            .zip(&self.nodes)
            .map(|(n, ns)| (n.to_string(), ns.path()))
            .collect()
    }
}

/// Waits until `iface` in `ns` is up with carrier.
pub fn wait_lower_up(ns: &faultline_faults::netns::NetNs, iface: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let out = ns.ip(&["-o", "link", "show", iface]).unwrap();
        if out.contains("LOWER_UP") && out.contains("state UP") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{iface} never came up: {out}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
