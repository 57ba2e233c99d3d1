//! One cgroup: the same relative path in every hierarchy faultline uses,
//! and what can be done to the processes in it.
//!
//! It must not create groups (that is [`super::CgroupHost::create`]) and
//! must not decide policy such as limits or priorities.

use super::{freezer, walk, CgroupError};
use crate::clock::monotonic_ns;
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long freezing, thawing and killing may take.
pub(super) const STATE_TIMEOUT: Duration = Duration::from_secs(5);

/// When a state change was read back, and what was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// `CLOCK_MONOTONIC` ns when the new state was read back.
    pub confirmed_ns: u64,
    /// What was read back, like `cgroup.events: frozen 1`.
    pub evidence: String,
}

/// A cgroup: one relative path, one folder per hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    rel: PathBuf,
    v1: Vec<(String, PathBuf)>,
    unified: Option<PathBuf>,
}

impl Cgroup {
    pub(super) fn new(rel: PathBuf, v1: Vec<(String, PathBuf)>, unified: Option<PathBuf>) -> Self {
        Cgroup { rel, v1, unified }
    }

    pub(super) fn v1_dirs(&self) -> impl Iterator<Item = &(String, PathBuf)> {
        self.v1.iter()
    }

    pub(super) fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(c, _)| c == controller)
            .map(|(_, d)| d.as_path())
    }

    pub(super) fn unified_dir(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    /// The path relative to each hierarchy's root.
    pub fn rel(&self) -> &Path {
        &self.rel
    }

    /// The group's folder in each hierarchy (each folder once).
    pub fn dirs(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for dir in self.v1.iter().map(|(_, d)| d).chain(self.unified.iter()) {
            if !out.contains(dir) {
                out.push(dir.clone());
            }
        }
        out
    }

    /// `cgroup.procs` in each hierarchy; a process joins the group by
    /// writing `0` to each.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs()
            .into_iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    /// Moves process `pid` into this group in every hierarchy.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        for path in self.procs_files() {
            let value = pid.to_string();
            fs::write(&path, &value).map_err(|source| CgroupError::Write {
                path,
                value,
                source,
            })?;
        }
        Ok(())
    }

    /// Every process in this group and below, over all hierarchies, sorted.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = BTreeSet::new();
        for dir in self.dirs() {
            for sub in walk::bottom_up(&dir)? {
                let path = sub.join("cgroup.procs");
                let text = match fs::read_to_string(&path) {
                    Ok(text) => text,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(source) => return Err(CgroupError::Read { path, source }),
                };
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let pid = line.trim().parse().map_err(|_| CgroupError::Parse {
                        path: path.clone(),
                        text: line.to_string(),
                    })?;
                    pids.insert(pid);
                }
            }
        }
        Ok(pids.into_iter().collect())
    }

    /// `cgroup.kill`, where it exists (unified or v2).
    pub fn kill_file(&self) -> Option<PathBuf> {
        let file = self.unified.as_ref()?.join("cgroup.kill");
        file.exists().then_some(file)
    }

    /// The folder holding `cpu.pressure`, `memory.pressure` and
    /// `io.pressure` for this group, where per-cgroup pressure exists.
    pub fn pressure_dir(&self) -> Option<PathBuf> {
        let dir = self.unified.as_ref()?;
        dir.join("cpu.pressure").exists().then(|| dir.clone())
    }

    /// Freezes the group and returns once the frozen state is read back.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.freeze_confirmed().map(drop)
    }

    /// Thaws the group and returns once the thawed state is read back.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.thaw_confirmed().map(drop)
    }

    /// Like [`Cgroup::freeze`], saying when and how the state was read back.
    pub fn freeze_confirmed(&self) -> Result<StateChange, CgroupError> {
        freezer::set(self, true)
    }

    /// Like [`Cgroup::thaw`], saying when and how the state was read back.
    pub fn thaw_confirmed(&self) -> Result<StateChange, CgroupError> {
        freezer::set(self, false)
    }

    /// Whether the group is frozen now.
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        freezer::is_frozen(self)
    }

    /// Kills every process in the group and below, then waits until none
    /// is left. Uses `cgroup.kill` where it exists; otherwise freezes,
    /// sends SIGKILL to each process and thaws.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        if let Some(path) = self.kill_file() {
            fs::write(&path, "1").map_err(|source| CgroupError::Write {
                path,
                value: "1".into(),
                source,
            })?;
        } else {
            let frozen = match self.freeze() {
                Ok(()) => true,
                Err(CgroupError::NoFreezer { .. }) => false,
                Err(e) => return Err(e),
            };
            sigkill_all(&self.pids()?);
            if frozen {
                self.thaw()?;
            }
        }
        let start = Instant::now();
        let mut last_signal = start;
        loop {
            let pids = self.pids()?;
            if pids.is_empty() {
                return Ok(());
            }
            if start.elapsed() >= STATE_TIMEOUT {
                return Err(CgroupError::KillTimeout {
                    rel: self.rel.clone(),
                    pids,
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            // Processes outside the unified group (joined only v1
            // hierarchies) or forked during the kill: signal them directly.
            if last_signal.elapsed() >= Duration::from_millis(100) {
                sigkill_all(&pids);
                last_signal = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Removes the group and every group below it in every hierarchy,
    /// bottom-up. Missing folders are fine; a busy folder (a process that
    /// has just died) is retried for a short while.
    pub fn remove(&self) -> Result<(), CgroupError> {
        for dir in self.dirs() {
            for sub in walk::bottom_up(&dir)? {
                rmdir_retrying(&sub)?;
            }
        }
        Ok(())
    }
}

/// SIGKILL to each pid; processes already gone are fine.
fn sigkill_all(pids: &[i32]) {
    for &pid in pids {
        // SAFETY: kill(2) with a plain pid and signal number has no memory effects.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

fn rmdir_retrying(dir: &Path) -> Result<(), CgroupError> {
    let start = Instant::now();
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < STATE_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Polls `read`, which says whether the wanted state is reached and what
/// it read, with short sleeps (100 µs growing to 1 ms), for at most
/// [`STATE_TIMEOUT`].
pub(super) fn poll_until(
    path: &Path,
    wanted: &str,
    mut read: impl FnMut() -> Result<(bool, String), CgroupError>,
) -> Result<StateChange, CgroupError> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        let (done, text) = read()?;
        if done {
            return Ok(StateChange {
                confirmed_ns: monotonic_ns(),
                evidence: text,
            });
        }
        if start.elapsed() >= STATE_TIMEOUT {
            return Err(CgroupError::StateTimeout {
                path: path.to_path_buf(),
                wanted: wanted.to_string(),
                waited_ms: start.elapsed().as_millis() as u64,
                last: text,
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(1));
    }
}
