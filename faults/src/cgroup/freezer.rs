//! Freezing and thawing a group: `cgroup.freeze` on the unified or v2
//! hierarchy where it exists (SIGKILL still works on frozen tasks there),
//! else the v1 freezer. Each change is confirmed by reading the state back.
//!
//! It must not signal processes; killing is the group's business.

use super::group::{poll_until, Cgroup, StateChange};
use super::CgroupError;
use std::fs;
use std::path::{Path, PathBuf};

/// How a group is frozen.
enum Mechanism {
    /// `cgroup.freeze` and `cgroup.events` in this folder.
    Unified(PathBuf),
    /// `freezer.state` in this v1 freezer folder.
    V1(PathBuf),
}

fn mechanism(group: &Cgroup) -> Result<Mechanism, CgroupError> {
    if let Some(dir) = group.unified_dir() {
        if dir.join("cgroup.freeze").exists() {
            return Ok(Mechanism::Unified(dir.to_path_buf()));
        }
    }
    if let Some(dir) = group.v1_dir("freezer") {
        if dir.join("freezer.state").exists() {
            return Ok(Mechanism::V1(dir.to_path_buf()));
        }
    }
    if group.dirs().iter().all(|d| !d.exists()) {
        return Err(CgroupError::Missing {
            path: group.dirs().into_iter().next().unwrap_or_default(),
        });
    }
    Err(CgroupError::NoFreezer {
        rel: group.rel().to_path_buf(),
    })
}

fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

/// The `frozen` line of a `cgroup.events` text.
fn events_frozen(path: &Path, text: &str) -> Result<bool, CgroupError> {
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("frozen ") {
            return Ok(v.trim() == "1");
        }
    }
    Err(CgroupError::Parse {
        path: path.to_path_buf(),
        text: text.to_string(),
    })
}

/// Freezes (`frozen`) or thaws the group and waits for the read-back.
pub(super) fn set(group: &Cgroup, frozen: bool) -> Result<StateChange, CgroupError> {
    match mechanism(group)? {
        Mechanism::Unified(dir) => {
            write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
            let events = dir.join("cgroup.events");
            let wanted = format!("frozen {}", u8::from(frozen));
            poll_until(&events, &wanted, || {
                let text = read(&events)?;
                let now = events_frozen(&events, &text)?;
                Ok((
                    now == frozen,
                    format!("cgroup.events: frozen {}", u8::from(now)),
                ))
            })
        }
        Mechanism::V1(dir) => {
            let state = dir.join("freezer.state");
            let wanted = if frozen { "FROZEN" } else { "THAWED" };
            write(&state, wanted)?;
            poll_until(&state, wanted, || {
                let text = read(&state)?;
                let text = text.trim();
                Ok((text == wanted, format!("freezer.state: {text}")))
            })
        }
    }
}

/// Whether the group is frozen now, by the same mechanism [`set`] uses.
pub(super) fn is_frozen(group: &Cgroup) -> Result<bool, CgroupError> {
    match mechanism(group)? {
        Mechanism::Unified(dir) => {
            let events = dir.join("cgroup.events");
            events_frozen(&events, &read(&events)?)
        }
        Mechanism::V1(dir) => Ok(read(&dir.join("freezer.state"))?.trim() == "FROZEN"),
    }
}
