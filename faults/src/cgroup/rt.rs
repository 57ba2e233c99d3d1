//! RT group scheduling (`cpu.rt_runtime_us`, v1 cpu with
//! `CONFIG_RT_GROUP_SCHED`): one budget for every run on the host.
//!
//! A new group gets 0 µs and SCHED_FIFO in it fails with EPERM, so RT time
//! is granted along the whole path. The kernel keeps every group at or
//! above the sum of its children (a write that breaks that fails with
//! EINVAL), and the root's value (950000 of 1000000 µs by default) bounds
//! everything below it: that is the host's budget, shared by every run's
//! watchdogs and every active `rt_hog`.
//!
//! Every grant and release goes through one host-wide lock, an exclusive
//! `flock` on the hierarchy's root folder (the thing the lock protects, so
//! no lock file is ever left behind and a fake tree in a temporary folder
//! has its own). Under it a change reads the tree, plans, and writes: runs
//! side by side never act on a stale plan.
//!
//! - [`grant`] raises each ancestor to what its children need (never
//!   lowering one), writing top-down, and refuses with
//!   [`CgroupError::RtBudget`] (naming what was asked, what the root leaves
//!   and who holds the rest) when the top group would exceed what the root
//!   leaves for it.
//! - [`release`] writes 0 to a leaf, then lowers each ancestor to the sum
//!   of its children, bottom-up.
//! - [`trim`] lowers a group and its ancestors to the sum of their
//!   children: after a run's groups were removed, the shared `faultline`
//!   parent gives back what they held.
//!
//! All groups are assumed to keep the default `cpu.rt_period_us`. The
//! hierarchy root is never written; a negative value (-1, unlimited) is
//! left as it is and bounds nothing.

use super::{walk, CgroupError};
use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

const FILE: &str = "cpu.rt_runtime_us";

/// The host-wide RT lock, held while alive.
pub(super) struct Locked {
    _dir: fs::File,
}

/// Takes the exclusive lock on `root` (waits for other runs' changes, each
/// a few file writes).
pub(super) fn lock(root: &Path) -> Result<Locked, CgroupError> {
    let dir = fs::File::open(root).map_err(|source| CgroupError::Read {
        path: root.to_path_buf(),
        source,
    })?;
    loop {
        // SAFETY: flock(2) on a descriptor we own; no memory is passed.
        if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(Locked { _dir: dir });
        }
        let source = std::io::Error::last_os_error();
        if source.kind() != std::io::ErrorKind::Interrupted {
            return Err(CgroupError::Read {
                path: root.to_path_buf(),
                source,
            });
        }
    }
}

fn read_runtime(dir: &Path) -> Result<i64, CgroupError> {
    let path = dir.join(FILE);
    let text = fs::read_to_string(&path).map_err(|source| CgroupError::Read {
        path: path.clone(),
        source,
    })?;
    text.trim()
        .parse()
        .map_err(|_| CgroupError::Parse { path, text })
}

fn write_runtime(dir: &Path, value: i64) -> Result<(), CgroupError> {
    let path = dir.join(FILE);
    let value = value.to_string();
    fs::write(&path, &value).map_err(|source| CgroupError::Write {
        path,
        value,
        source,
    })
}

/// The children of `dir` with the RT time each holds (negative as 0),
/// except `skip`. A child that vanished while read holds nothing.
fn children(dir: &Path, skip: Option<&Path>) -> Result<Vec<(PathBuf, i64)>, CgroupError> {
    let mut out = Vec::new();
    for child in walk::child_dirs(dir)? {
        if Some(child.as_path()) == skip {
            continue;
        }
        match read_runtime(&child) {
            Ok(v) => out.push((child, v.max(0))),
            Err(_) if !child.exists() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn sum(children: &[(PathBuf, i64)]) -> i64 {
    children.iter().map(|(_, v)| v).sum()
}

/// The folders from `root`'s child down to `root/rel`, each required to exist.
fn path_dirs(root: &Path, rel: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut dirs = Vec::new();
    let mut dir = root.to_path_buf();
    for component in rel.components() {
        dir.push(component);
        if !dir.is_dir() {
            return Err(CgroupError::Missing { path: dir });
        }
        dirs.push(dir.clone());
    }
    Ok(dirs)
}

/// Who holds RT time in `dir`'s subtree, one level below the root and one
/// more inside the group that asks (the other runs), for the refusal.
fn holders(root: &Path, top: &Path) -> Result<Vec<(String, i64)>, CgroupError> {
    let name = |p: &Path| {
        p.strip_prefix(root)
            .unwrap_or(p)
            .to_string_lossy()
            .into_owned()
    };
    let mut out = Vec::new();
    for (child, v) in children(root, None)? {
        if child == top {
            out.extend(
                children(&child, None)?
                    .into_iter()
                    .filter(|(_, v)| *v > 0)
                    .map(|(p, v)| (name(&p), v)),
            );
        } else if v > 0 {
            out.push((name(&child), v));
        }
    }
    Ok(out)
}

/// How often a change is planned again when a write fails with EINVAL, and
/// how long it waits before each: a writer that does not take the lock (an
/// older faultline) raises one group after another while it builds its lab.
const ATTEMPTS: usize = 20;
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_millis(25);

/// Whether `e` is the kernel refusing a value that breaks the hierarchy's
/// sums: under the lock only a writer that does not take it (a build of
/// faultline from before the lock) can have changed the tree meanwhile.
fn is_stale_plan(e: &CgroupError) -> bool {
    matches!(e, CgroupError::Write { source, .. } if source.raw_os_error() == Some(libc::EINVAL))
}

/// Runs `change` again (reading the tree afresh) while it fails on a stale plan.
fn with_fresh_plans(
    mut change: impl FnMut() -> Result<(), CgroupError>,
) -> Result<(), CgroupError> {
    let mut result = change();
    for _ in 1..ATTEMPTS {
        match &result {
            Err(e) if is_stale_plan(e) => {
                std::thread::sleep(RETRY_AFTER);
                result = change();
            }
            _ => break,
        }
    }
    result
}

/// Grants `leaf_us` to `root/rel`, raising ancestors as needed, under the
/// host-wide lock; refuses when the root cannot cover it.
pub(super) fn grant(root: &Path, rel: &Path, leaf_us: u64) -> Result<(), CgroupError> {
    let _lock = lock(root)?;
    with_fresh_plans(|| grant_locked(root, rel, leaf_us))
}

fn grant_locked(root: &Path, rel: &Path, leaf_us: u64) -> Result<(), CgroupError> {
    let dirs = path_dirs(root, rel)?;
    let Some(leaf) = dirs.last() else {
        return Ok(());
    };
    let leaf_us = i64::try_from(leaf_us).unwrap_or(i64::MAX);
    // What each folder must hold, leaf last; `None`: leave it (unlimited).
    let mut need: Vec<Option<i64>> = vec![None; dirs.len()];
    let mut current = vec![0; dirs.len()];
    current[dirs.len() - 1] = read_runtime(leaf)?;
    need[dirs.len() - 1] = Some(leaf_us);
    for i in (0..dirs.len() - 1).rev() {
        current[i] = read_runtime(&dirs[i])?;
        need[i] = match need[i + 1] {
            _ if current[i] < 0 => None,
            None => None,
            Some(child_need) => {
                let others = sum(&children(&dirs[i], Some(&dirs[i + 1]))?);
                Some(current[i].max(others + child_need))
            }
        };
    }
    let root_us = read_runtime(root)?;
    if let Some(top_need) = need[0] {
        if root_us >= 0 {
            let available = root_us - sum(&children(root, Some(&dirs[0]))?);
            if top_need > available {
                return Err(CgroupError::RtBudget {
                    rel: rel.to_path_buf(),
                    asked_us: leaf_us,
                    top: dirs[0].strip_prefix(root).unwrap_or(&dirs[0]).to_path_buf(),
                    top_need_us: top_need,
                    available_us: available,
                    root_us,
                    holders: holders(root, &dirs[0])?,
                });
            }
        }
    }
    for (i, dir) in dirs.iter().enumerate() {
        if let Some(value) = need[i] {
            if value != current[i] {
                write_runtime(dir, value)?;
            }
        }
    }
    Ok(())
}

/// Lowers each of `dirs` (bottom-up order) that exists to the sum of its
/// children, where that is less than it holds. A group left higher than
/// needed is harmless (the old behaviour), so a plan that stays stale is
/// given up silently.
fn lower_to_children(dirs: &[PathBuf]) -> Result<(), CgroupError> {
    match with_fresh_plans(|| lower_once(dirs)) {
        Err(e) if is_stale_plan(&e) => Ok(()),
        other => other,
    }
}

fn lower_once(dirs: &[PathBuf]) -> Result<(), CgroupError> {
    for dir in dirs {
        if !dir.is_dir() {
            continue;
        }
        let current = read_runtime(dir)?;
        if current < 0 {
            continue;
        }
        let needed = sum(&children(dir, None)?);
        if needed < current {
            write_runtime(dir, needed)?;
        }
    }
    Ok(())
}

/// The existing folders from `root/rel` up to `root`'s child, bottom-up.
fn up_from(root: &Path, rel: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = rel
        .ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .map(|a| root.join(a))
        .collect();
    dirs.retain(|d| d.is_dir());
    dirs
}

/// Takes RT time back from the leaf `root/rel` (writes 0), where it
/// exists, then lowers its ancestors to what their other children hold,
/// under the host-wide lock. Fails while RT tasks still run in the leaf.
pub(super) fn release(root: &Path, rel: &Path) -> Result<(), CgroupError> {
    let _lock = lock(root)?;
    let leaf = root.join(rel);
    if !leaf.join(FILE).exists() {
        return Ok(());
    }
    if read_runtime(&leaf)? != 0 {
        write_runtime(&leaf, 0)?;
    }
    let ancestors = up_from(root, rel);
    lower_to_children(&ancestors[1.min(ancestors.len())..])
}

/// Takes RT time back from `root/rel` and every group under it, leaves
/// first (each write keeps the hierarchy's sums valid), under the host-wide
/// lock; its RT tasks must have ended. Done before the groups are removed:
/// a group removed while it holds RT time gives it back only after an RCU
/// grace period, and lowering its parent meanwhile is refused (EINVAL),
/// which cost every teardown 50-75 ms of retries (measured).
pub(super) fn zero_subtree(root: &Path, rel: &Path) -> Result<(), CgroupError> {
    let _lock = lock(root)?;
    zero(&root.join(rel))
}

fn zero(dir: &Path) -> Result<(), CgroupError> {
    if !dir.join(FILE).exists() {
        return Ok(());
    }
    for (child, _) in children(dir, None)? {
        zero(&child)?;
    }
    if read_runtime(dir)? > 0 {
        write_runtime(dir, 0)?;
    }
    Ok(())
}

/// Lowers `root/rel` and its ancestors to the sum of their children, under
/// the host-wide lock: what a removed run held goes back to the host.
pub(super) fn trim(root: &Path, rel: &Path) -> Result<(), CgroupError> {
    let _lock = lock(root)?;
    lower_to_children(&up_from(root, rel))
}

/// The root's value and what its children do not hold.
pub(super) fn budget(root: &Path) -> Result<(i64, i64), CgroupError> {
    let root_us = read_runtime(root)?;
    Ok((root_us, root_us - sum(&children(root, None)?)))
}
