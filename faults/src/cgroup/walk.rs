//! Walking a cgroup folder tree: child folders and bottom-up order.
//!
//! Folders that vanish while walked are skipped: groups come and go.

use super::CgroupError;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The child folders of `dir`, sorted; a missing `dir` has none.
pub fn child_dirs(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(CgroupError::Read {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        };
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// `dir` and every folder below it, children before parents.
pub fn bottom_up(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut out = Vec::new();
    for child in child_dirs(dir)? {
        out.extend(bottom_up(&child)?);
    }
    if dir.exists() {
        out.push(dir.to_path_buf());
    }
    Ok(out)
}
