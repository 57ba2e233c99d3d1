//! RT group scheduling (`cpu.rt_runtime_us`, v1 cpu with
//! `CONFIG_RT_GROUP_SCHED`): a new group gets 0 µs and SCHED_FIFO in it
//! fails with EPERM, so RT time is granted along the whole path.
//!
//! Each group below the root must hold at least the sum of its children's
//! time, so ancestors are raised (counting their other children) and the
//! values written top-down; a leaf written first fails with EINVAL. All
//! groups are assumed to keep the default `cpu.rt_period_us`. It never
//! writes the hierarchy root, and never lowers an ancestor.

use super::{walk, CgroupError};
use std::fs;
use std::path::{Path, PathBuf};

const FILE: &str = "cpu.rt_runtime_us";

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

/// The value each folder on the path must hold, root's child first.
/// `None` means leave it (unlimited, -1).
fn plan(dirs: &[PathBuf], leaf_us: u64) -> Result<Vec<Option<i64>>, CgroupError> {
    let mut need: Vec<Option<i64>> = vec![None; dirs.len()];
    let Some(last) = need.last_mut() else {
        return Ok(need);
    };
    *last = Some(leaf_us as i64);
    for i in (0..dirs.len() - 1).rev() {
        let current = read_runtime(&dirs[i])?;
        need[i] = match need[i + 1] {
            _ if current < 0 => None,
            None => None,
            Some(child_need) => {
                let mut siblings = 0;
                for child in walk::child_dirs(&dirs[i])? {
                    if child != dirs[i + 1] {
                        siblings += read_runtime(&child)?.max(0);
                    }
                }
                Some(current.max(siblings + child_need))
            }
        };
    }
    Ok(need)
}

/// Grants `leaf_us` to `root/rel`, raising ancestors as needed.
pub(super) fn grant(root: &Path, rel: &Path, leaf_us: u64) -> Result<(), CgroupError> {
    let mut dirs = Vec::new();
    let mut dir = root.to_path_buf();
    for component in rel.components() {
        dir.push(component);
        if !dir.is_dir() {
            return Err(CgroupError::Missing { path: dir });
        }
        dirs.push(dir.clone());
    }
    let need = plan(&dirs, leaf_us)?;
    for (dir, need) in dirs.iter().zip(need) {
        let Some(value) = need else { continue };
        if read_runtime(dir)? != value {
            let path = dir.join(FILE);
            let value = value.to_string();
            fs::write(&path, &value).map_err(|source| CgroupError::Write {
                path,
                value,
                source,
            })?;
        }
    }
    Ok(())
}

/// Takes RT time back from the leaf `root/rel` (writes 0), where the file
/// exists; ancestors keep what they were raised to. Fails while RT tasks
/// still run in the leaf.
pub(super) fn release(root: &Path, rel: &Path) -> Result<(), CgroupError> {
    let path = root.join(rel).join(FILE);
    if !path.exists() {
        return Ok(());
    }
    fs::write(&path, "0").map_err(|source| CgroupError::Write {
        path,
        value: "0".into(),
        source,
    })
}
