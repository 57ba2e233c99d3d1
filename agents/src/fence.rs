//! Fencing a node (recovery action 3): its interfaces go down and every one
//! of its processes is killed, the watchdog last (after it wrote the dump). This is the node's
//! "hardware" halting; nothing here reports or decides.

use std::path::Path;

use crate::dump::node_pids;
use crate::launch::NodeCgroups;

/// Takes every interface in `links` down; returns, for each, the error text
/// if it failed.
pub fn links_down(links: &[String]) -> Vec<(String, Option<String>)> {
    links
        .iter()
        .map(|l| {
            (
                l.clone(),
                crate::sys::link_down(l).err().map(|e| e.to_string()),
            )
        })
        .collect()
}

/// Fences the node's processes but the caller: stops dying with its parent
/// (the supervisor is killed too), then SIGKILLs every process of the
/// node's `cgroup.procs` files but the caller. When the node has no cgroups
/// (tests), the service and the supervisor are killed instead. The caller
/// (the watchdog) then writes the dump and ends with [`kill_node`].
pub fn stop_others(cgroups: &NodeCgroups, service_pid: u32) {
    let me = std::process::id();
    // SAFETY: PR_SET_PDEATHSIG with 0 only clears this process's setting.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
    let pids = node_pids(&cgroups.node_dirs);
    for &pid in pids.iter().filter(|&&p| p != me) {
        let _ = crate::sys::kill(pid, libc::SIGKILL);
    }
    if pids.is_empty() {
        let _ = crate::sys::kill(service_pid, libc::SIGKILL);
        // SAFETY: no arguments.
        let parent = unsafe { libc::getppid() } as u32;
        if same_executable(Path::new("/proc/self/exe"), &format!("/proc/{parent}/exe")) {
            let _ = crate::sys::kill(parent, libc::SIGKILL);
        }
    }
}

/// Kills every process of the node, then the caller. Through `cgroup.kill`
/// where the host has one, else by SIGKILL to each pid in the node's
/// `cgroup.procs` files. When the node has no cgroups at all (tests), the
/// service and the supervisor (the caller's parent, if it runs this same
/// binary) are killed instead.
pub fn kill_node(cgroups: &NodeCgroups, service_pid: u32) -> ! {
    let me = std::process::id();
    if let Some(kill) = &cgroups.kill_file {
        let _ = std::fs::write(kill, "1");
    }
    let pids = node_pids(&cgroups.node_dirs);
    for &pid in pids.iter().filter(|&&p| p != me) {
        let _ = crate::sys::kill(pid, libc::SIGKILL);
    }
    if cgroups.kill_file.is_none() && pids.is_empty() {
        let _ = crate::sys::kill(service_pid, libc::SIGKILL);
        // SAFETY: no arguments.
        let parent = unsafe { libc::getppid() } as u32;
        if same_executable(Path::new("/proc/self/exe"), &format!("/proc/{parent}/exe")) {
            let _ = crate::sys::kill(parent, libc::SIGKILL);
        }
    }
    let _ = crate::sys::kill(me, libc::SIGKILL);
    // SIGKILL to oneself is delivered before kill() returns to user space.
    std::process::abort()
}

fn same_executable(a: &Path, b: &str) -> bool {
    match (std::fs::read_link(a), std::fs::read_link(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
