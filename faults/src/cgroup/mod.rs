//! Cgroups for faultline's nodes, on either host layout: cgroup v1 hybrid
//! (one mount per controller, plus an optional cgroup2 "unified" mount) or
//! pure cgroup v2. One [`CgroupHost`] picks the layout at run time; a
//! [`Cgroup`] is the same relative path in every hierarchy faultline uses.
//!
//! It writes small files directly. It must not create groups in
//! hierarchies it does not use (such as `name=systemd`), and it must not
//! know which faults or nodes use a group.

mod error;
mod freezer;
mod group;
pub mod mountinfo;
mod resources;
mod rt;
mod walk;

pub use error::CgroupError;
pub use group::{Cgroup, StateChange};
pub use resources::{Controller, CpuQuota, MemoryEvents, WeightLevel};

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Controllers enabled in `cgroup.subtree_control` on a pure v2 host.
const V2_CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// The environment variable that makes faultline use one cgroup2 mount as
/// if the host were pure cgroup v2 (e.g. `/sys/fs/cgroup/unified`).
pub const V2_ROOT_ENV: &str = "FAULTLINE_CGROUP_V2_ROOT";

/// The cgroup layout of a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// cgroup v1 controllers, each on its own mount, and maybe a cgroup2 mount.
    V1Hybrid {
        /// Mount point of each used controller (cpu, memory, freezer, pids).
        v1: BTreeMap<String, PathBuf>,
        /// The cgroup2 mount (no controllers, but freeze, kill and pressure).
        unified: Option<PathBuf>,
    },
    /// Pure cgroup v2.
    V2 {
        /// The cgroup2 mount point.
        root: PathBuf,
    },
}

/// What this host's cgroups can do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CgroupCapabilities {
    /// `"v1-hybrid"` or `"v2"`.
    pub version: &'static str,
    /// A freezer exists: `cgroup.freeze` or the v1 freezer.
    pub freezer: bool,
    /// `cgroup.kill` exists.
    pub kill: bool,
    /// Per-cgroup pressure files (`cpu.pressure`) exist.
    pub pressure: bool,
    /// RT group scheduling: `cpu.rt_runtime_us` exists.
    pub rt_group_sched: bool,
}

/// The cgroup hierarchies of this host that faultline uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupHost {
    layout: Layout,
}

impl CgroupHost {
    /// Finds the cgroup mounts in `/proc/self/mountinfo`.
    pub fn detect() -> Result<CgroupHost, CgroupError> {
        let path = PathBuf::from("/proc/self/mountinfo");
        let text = fs::read_to_string(&path).map_err(|source| CgroupError::Read {
            path: path.clone(),
            source,
        })?;
        let mounts = mountinfo::parse(&text);
        if mounts.v1.is_empty() && mounts.unified.is_none() {
            return Err(CgroupError::NoCgroupMount { path });
        }
        Ok(CgroupHost::with_roots(mounts.v1, mounts.unified))
    }

    /// Like [`CgroupHost::detect`], unless [`V2_ROOT_ENV`] names a cgroup2
    /// mount to use alone, as if the host were pure v2.
    pub fn detect_or_env() -> Result<CgroupHost, CgroupError> {
        match std::env::var_os(V2_ROOT_ENV) {
            Some(root) => Ok(CgroupHost::with_roots(
                BTreeMap::new(),
                Some(PathBuf::from(root)),
            )),
            None => CgroupHost::detect(),
        }
    }

    /// Whether `controller` (`cpu`, `memory`) can be used in groups this
    /// host creates: its v1 mount, or listed in the v2 root's
    /// `cgroup.controllers`. `Err` says why not.
    pub fn controller(&self, controller: &str) -> Result<String, String> {
        match &self.layout {
            Layout::V1Hybrid { v1, .. } => match v1.get(controller) {
                Some(root) => Ok(format!("v1 {controller} at {}", root.display())),
                None => Err(format!("no v1 {controller} hierarchy mounted")),
            },
            Layout::V2 { root } => {
                let path = root.join("cgroup.controllers");
                let text = fs::read_to_string(&path).unwrap_or_default();
                if text.split_whitespace().any(|c| c == controller) {
                    Ok(format!("v2 {controller} at {}", root.display()))
                } else {
                    Err(format!(
                        "cgroup v2 at {} has no {controller} controller ({}: {:?})",
                        root.display(),
                        path.display(),
                        text.trim()
                    ))
                }
            }
        }
    }

    /// A host with the given roots: an empty `v1` map with `unified` set
    /// means pure v2. For tests on a temporary folder.
    pub fn with_roots(v1: BTreeMap<String, PathBuf>, unified: Option<PathBuf>) -> CgroupHost {
        let layout = match (v1.is_empty(), unified) {
            (true, Some(root)) => Layout::V2 { root },
            (_, unified) => Layout::V1Hybrid { v1, unified },
        };
        CgroupHost { layout }
    }

    /// The layout in use.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn unified_root(&self) -> Option<&Path> {
        match &self.layout {
            Layout::V1Hybrid { unified, .. } => unified.as_deref(),
            Layout::V2 { root } => Some(root),
        }
    }

    fn v1_root(&self, controller: &str) -> Option<&Path> {
        match &self.layout {
            Layout::V1Hybrid { v1, .. } => v1.get(controller).map(PathBuf::as_path),
            Layout::V2 { .. } => None,
        }
    }

    /// The hierarchy holding `cpu.rt_runtime_us`, if any.
    fn rt_root(&self) -> Option<&Path> {
        let root = match &self.layout {
            Layout::V1Hybrid { .. } => self.v1_root("cpu")?,
            Layout::V2 { root } => root,
        };
        root.join("cpu.rt_runtime_us").exists().then_some(root)
    }

    /// What the cgroups of this host can do.
    pub fn capabilities(&self) -> CgroupCapabilities {
        let unified = self.unified_root();
        let has_unified = |file: &str, since: (u32, u32)| {
            unified.is_some_and(|root| unified_feature(root, file, since))
        };
        CgroupCapabilities {
            version: match self.layout {
                Layout::V1Hybrid { .. } => "v1-hybrid",
                Layout::V2 { .. } => "v2",
            },
            freezer: has_unified("cgroup.freeze", (5, 2)) || self.v1_root("freezer").is_some(),
            kill: has_unified("cgroup.kill", (5, 14)),
            pressure: unified.is_some_and(|root| root.join("cpu.pressure").exists()),
            rt_group_sched: self.rt_root().is_some(),
        }
    }

    /// The group at `rel` (like `faultline/ab12cd/n1/service`), not created.
    pub fn open(&self, rel: &Path) -> Cgroup {
        let mut v1: Vec<(String, PathBuf)> = Vec::new();
        if let Layout::V1Hybrid { v1: roots, .. } = &self.layout {
            for (controller, root) in roots {
                v1.push((controller.clone(), root.join(rel)));
            }
        }
        let unified = self.unified_root().map(|root| root.join(rel));
        Cgroup::new(rel.to_path_buf(), v1, unified)
    }

    /// Creates the group at `rel` and its ancestors in every hierarchy used.
    /// On v2, enables cpu, memory and pids in `cgroup.subtree_control` of
    /// each ancestor, from the root down, where the parent offers them.
    pub fn create(&self, rel: &Path) -> Result<Cgroup, CgroupError> {
        let group = self.open(rel);
        for (_, dir) in group.v1_dirs() {
            fs::create_dir_all(dir).map_err(|source| CgroupError::Create {
                path: dir.clone(),
                source,
            })?;
        }
        if let Some(root) = self.unified_root() {
            let mut dir = root.to_path_buf();
            for component in rel.components() {
                if matches!(self.layout, Layout::V2 { .. }) {
                    enable_controllers(&dir)?;
                }
                dir.push(component);
                match fs::create_dir(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(source) => return Err(CgroupError::Create { path: dir, source }),
                }
            }
        }
        Ok(group)
    }

    /// Names of the child groups of `rel`, over every hierarchy, sorted.
    pub fn children(&self, rel: &Path) -> Result<Vec<String>, CgroupError> {
        let mut names = std::collections::BTreeSet::new();
        for dir in self.open(rel).dirs() {
            names.extend(
                walk::child_dirs(&dir)?
                    .into_iter()
                    .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())),
            );
        }
        Ok(names.into_iter().collect())
    }

    /// Removes the folder `rel` in every hierarchy if it is empty; a busy,
    /// non-empty or missing folder is left alone. For shared parents such
    /// as `faultline`.
    pub fn remove_if_empty(&self, rel: &Path) -> Result<(), CgroupError> {
        for dir in self.open(rel).dirs() {
            match fs::remove_dir(&dir) {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENOENT | libc::EBUSY | libc::ENOTEMPTY)
                    ) => {}
                Err(source) => return Err(CgroupError::Remove { path: dir, source }),
            }
        }
        Ok(())
    }

    /// Grants `leaf_us` of RT time per period to the group at `rel_leaf`, so
    /// SCHED_FIFO works in it, where the host has `cpu.rt_runtime_us`; a
    /// no-op elsewhere. Raises ancestors as needed and writes top-down,
    /// under the host-wide RT lock; [`CgroupError::RtBudget`] when the
    /// host's budget cannot cover it (see `rt.rs`).
    pub fn grant_rt_runtime(&self, rel_leaf: &Path, leaf_us: u64) -> Result<(), CgroupError> {
        match self.rt_root() {
            Some(root) => rt::grant(root, rel_leaf, leaf_us),
            None => Ok(()),
        }
    }

    /// Takes back the RT time of the group at `rel_leaf` (0 µs) and lowers
    /// its ancestors to what their children still hold, where the host has
    /// `cpu.rt_runtime_us`; a no-op elsewhere. Its RT tasks must have ended.
    pub fn release_rt_runtime(&self, rel_leaf: &Path) -> Result<(), CgroupError> {
        match self.rt_root() {
            Some(root) => rt::release(root, rel_leaf),
            None => Ok(()),
        }
    }

    /// Takes back the RT time of the group at `rel` and every group under
    /// it (0 µs, leaves first), where the host has `cpu.rt_runtime_us`; a
    /// no-op elsewhere. Its RT tasks must have ended.
    pub fn zero_rt_subtree(&self, rel: &Path) -> Result<(), CgroupError> {
        match self.rt_root() {
            Some(root) => rt::zero_subtree(root, rel),
            None => Ok(()),
        }
    }

    /// Lowers the RT time of the group at `rel` and its ancestors to what
    /// their children hold (after a child group was removed), where the
    /// host has `cpu.rt_runtime_us`; a no-op elsewhere.
    pub fn trim_rt_runtime(&self, rel: &Path) -> Result<(), CgroupError> {
        match self.rt_root() {
            Some(root) => rt::trim(root, rel),
            None => Ok(()),
        }
    }

    /// The host's RT budget, where it has `cpu.rt_runtime_us`: the root's
    /// value and what its child groups do not hold (µs per period). A
    /// negative root (-1) means unlimited.
    pub fn rt_budget(&self) -> Result<Option<(i64, i64)>, CgroupError> {
        match self.rt_root() {
            Some(root) => rt::budget(root).map(Some),
            None => Ok(None),
        }
    }

    /// `cpu.rt_runtime_us` of the group at `rel`, where the host has it.
    pub fn rt_runtime(&self, rel: &Path) -> Result<Option<i64>, CgroupError> {
        let Some(root) = self.rt_root() else {
            return Ok(None);
        };
        let path = root.join(rel).join("cpu.rt_runtime_us");
        let text = fs::read_to_string(&path).map_err(|source| CgroupError::Read {
            path: path.clone(),
            source,
        })?;
        text.trim()
            .parse()
            .map(Some)
            .map_err(|_| CgroupError::Parse { path, text })
    }
}

/// Whether a unified-hierarchy interface file exists: looked up in an
/// existing child group (the root has none), else judged by kernel version.
fn unified_feature(root: &Path, file: &str, since: (u32, u32)) -> bool {
    if let Ok(children) = walk::child_dirs(root) {
        if let Some(child) = children.first() {
            return child.join(file).exists();
        }
    }
    kernel_version().is_some_and(|v| v >= since)
}

/// The running kernel's (major, minor).
fn kernel_version() -> Option<(u32, u32)> {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Enables the wanted v2 controllers that `dir` offers in its subtree.
fn enable_controllers(dir: &Path) -> Result<(), CgroupError> {
    let read = |name: &str| {
        let path = dir.join(name);
        fs::read_to_string(&path).map_err(|source| CgroupError::Read { path, source })
    };
    let available = read("cgroup.controllers")?;
    let enabled = read("cgroup.subtree_control")?;
    let path = dir.join("cgroup.subtree_control");
    for controller in V2_CONTROLLERS {
        let offered = available.split_whitespace().any(|c| c == controller);
        let on = enabled.split_whitespace().any(|c| c == controller);
        if offered && !on {
            let value = format!("+{controller}");
            fs::write(&path, &value).map_err(|source| CgroupError::Write {
                path: path.clone(),
                value,
                source,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
