//! `faultline cleanup`: finds what runs whose harness is gone left behind
//! (processes, cgroups, namespaces, run folders, all found by our name
//! prefixes) and removes it with the same code a normal teardown uses.
//! A run whose harness is still alive is left alone. It needs root, and
//! says so before it looks at anything.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use faultline_faults::cgroup::CgroupHost;
use faultline_faults::netns::NetNs;

use crate::lab::{process_start_time, remove_run, CGROUP_ROOT, NETNS_PREFIX, RUN_ROOT};

/// What one run left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The run's id.
    pub id: String,
    /// The pid of its harness, if that harness is still alive.
    pub live_harness: Option<u32>,
    /// Its namespaces.
    pub namespaces: Vec<String>,
    /// Processes still in its cgroups.
    pub processes: Vec<i32>,
    /// Whether its cgroup subtree exists.
    pub cgroup: bool,
    /// Whether its run folder exists.
    pub run_dir: bool,
    /// Its run folder is younger than [`STARTING_GRACE`] and holds no
    /// registration yet: a run being set up, left alone like a live one.
    pub starting: bool,
}

/// How long a run folder without a registration counts as a run starting
/// (the lab writes the registration right after creating the folder).
pub const STARTING_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether `name` can be a run id ([`crate::lab::new_run_id`]: six
/// lowercase letters and digits). Anything else under our prefixes (a
/// test's own group, a lock) is not a run and is never removed.
pub fn is_run_id(name: &str) -> bool {
    name.len() == 6
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// Whether the run with this folder is in use: its harness is alive, or
/// it is so young that it may not have registered yet.
fn may_be_starting(registered: bool, age: Option<std::time::Duration>) -> bool {
    !registered && age.is_some_and(|a| a < STARTING_GRACE)
}

impl Leftover {
    /// Whether the run is live (or starting): cleanup leaves it alone.
    pub fn in_use(&self) -> bool {
        self.live_harness.is_some() || self.starting
    }
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "run {}:", self.id)?;
        if !self.processes.is_empty() {
            write!(f, " processes {:?};", self.processes)?;
        }
        if self.cgroup {
            write!(f, " cgroup {CGROUP_ROOT}/{};", self.id)?;
        }
        if !self.namespaces.is_empty() {
            write!(f, " namespaces {};", self.namespaces.join(" "))?;
        }
        if self.run_dir {
            write!(f, " folder {RUN_ROOT}/{};", self.id)?;
        }
        if let Some(pid) = self.live_harness {
            write!(f, " (in use: harness pid {pid} is alive)")?;
        } else if self.starting {
            write!(f, " (in use: starting, not registered yet)")?;
        }
        Ok(())
    }
}

/// Every run with something left on this host.
pub fn find(host: &CgroupHost) -> Vec<Leftover> {
    let mut ids = BTreeSet::new();
    if let Ok(entries) = fs::read_dir(RUN_ROOT) {
        ids.extend(
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned()),
        );
    }
    let namespaces: Vec<String> = NetNs::list()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.starts_with(NETNS_PREFIX))
        .collect();
    for ns in &namespaces {
        if let Some(id) = ns[NETNS_PREFIX.len()..].split('-').next() {
            ids.insert(id.to_string());
        }
    }
    ids.extend(host.children(Path::new(CGROUP_ROOT)).unwrap_or_default());
    ids.retain(|id| is_run_id(id));
    ids.into_iter()
        .map(|id| {
            let dir = Path::new(RUN_ROOT).join(&id);
            let age = fs::metadata(&dir)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            let group = host.open(&Path::new(CGROUP_ROOT).join(&id));
            let prefix = format!("{NETNS_PREFIX}{id}-");
            Leftover {
                live_harness: live_harness(&id),
                namespaces: namespaces
                    .iter()
                    .filter(|n| n.starts_with(&prefix))
                    .cloned()
                    .collect(),
                processes: group.pids().unwrap_or_default(),
                cgroup: group.dirs().iter().any(|d| d.exists()),
                run_dir: dir.exists(),
                starting: may_be_starting(dir.join("harness").exists(), age),
                id,
            }
        })
        .collect()
}

/// The pid of run `id`'s harness if it is alive (same pid, same start time).
fn live_harness(id: &str) -> Option<u32> {
    let text = fs::read_to_string(Path::new(RUN_ROOT).join(id).join("harness")).ok()?;
    let mut parts = text.split_whitespace();
    let pid: u32 = parts.next()?.parse().ok()?;
    let start: u64 = parts.next()?.parse().ok()?;
    (process_start_time(pid) == Some(start) && pid != std::process::id()).then_some(pid)
}

/// Cleanup was refused before anything was touched.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// Not root: namespaces, cgroups and other users' processes are out of
    /// reach, so cleanup would remove half a run and fail on the rest.
    #[error("faultline cleanup needs root (running as uid {0}): nothing was touched")]
    NotRoot(u32),
}

/// Refuses to go on unless `euid` is root.
pub fn require_root(euid: u32) -> Result<(), CleanupError> {
    if euid == 0 {
        Ok(())
    } else {
        Err(CleanupError::NotRoot(euid))
    }
}

/// Removes every leftover of dead runs; returns what was found and the
/// errors met. Refused, touching nothing, unless running as root.
pub fn clean(host: &CgroupHost) -> Result<(Vec<Leftover>, Vec<String>), CleanupError> {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    require_root(unsafe { libc::geteuid() })?;
    let found = find(host);
    let mut errors = Vec::new();
    for l in found.iter().filter(|l| !l.in_use()) {
        errors.extend(remove_run(host, &l.id));
    }
    // RT time the shared parent holds beyond what live runs hold (left by
    // a run killed before its teardown, or by an older faultline that
    // never lowered it) goes back to the host.
    if let Err(e) = host.trim_rt_runtime(Path::new(CGROUP_ROOT)) {
        errors.push(format!("giving back RT time: {}", crate::lab::chain(&e)));
    }
    let _ = host.remove_if_empty(Path::new(CGROUP_ROOT));
    Ok((found, errors))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_run_ids_are_runs() {
        assert!(is_run_id(&crate::lab::new_run_id()));
        assert!(is_run_id("ab12cd"));
        for not in [
            "fltest-rt-1-2-3",
            "ab12c",
            "ab12cde",
            "AB12CD",
            "ab-2cd",
            "rt.lock",
            "",
        ] {
            assert!(!is_run_id(not), "{not}");
        }
    }

    #[test]
    fn a_young_unregistered_run_is_starting_an_old_one_is_dead() {
        assert!(may_be_starting(false, Some(Duration::from_millis(5))));
        assert!(!may_be_starting(false, Some(STARTING_GRACE)));
        assert!(!may_be_starting(false, None));
        // Registered: its harness's pid decides, not its age.
        assert!(!may_be_starting(true, Some(Duration::from_millis(5))));
    }

    #[test]
    fn cleanup_refuses_a_non_root_user_before_touching_anything() {
        assert!(require_root(0).is_ok());
        let err = require_root(1000).unwrap_err();
        assert_eq!(
            err.to_string(),
            "faultline cleanup needs root (running as uid 1000): nothing was touched"
        );
    }
}
