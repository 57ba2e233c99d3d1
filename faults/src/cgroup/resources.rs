//! The cpu and memory controller files of one group, on cgroup v1 (one
//! folder per controller) or v2 (the group's unified folder, where the
//! controller is enabled): quota and weight, memory limits, and the
//! counters that prove a limit bites (`nr_throttled`, `failcnt`,
//! `memory.events`, `under_oom`).
//!
//! It reads and writes files only. It must not decide values (the faults
//! do) and must not pretend: a controller that is not there is
//! [`CgroupError::NoController`], never a silent no-op.

use super::{Cgroup, CgroupError};
use std::fs;
use std::path::{Path, PathBuf};

/// v1 `memory.limit_in_bytes` at or above this is "no limit".
const V1_UNLIMITED: u64 = 1 << 60;

/// Where a controller's files for a group are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Controller {
    /// The group's folder in the controller's v1 hierarchy.
    V1(PathBuf),
    /// The group's unified folder, where the controller is enabled.
    V2(PathBuf),
}

impl Controller {
    fn dir(&self) -> &Path {
        match self {
            Controller::V1(d) | Controller::V2(d) => d,
        }
    }
}

/// A CFS bandwidth limit: `quota_us` of CPU time per `period_us` (`None`:
/// unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuQuota {
    /// CPU time allowed per period, µs.
    pub quota_us: Option<u64>,
    /// The period, µs.
    pub period_us: u64,
}

/// The two ends of the CPU weight scale, in either version's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightLevel {
    /// `cpu.shares` 2 / `cpu.weight` 1.
    Lowest,
    /// `cpu.shares` 262144 / `cpu.weight` 10000.
    Highest,
}

/// What the memory controller of a group has counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryEvents {
    /// Times the limit was hit: v1 `memory.failcnt`, v2 `memory.events` `max`.
    pub limit_hits: u64,
    /// Processes the OOM killer killed in the group (v1 `oom_control`
    /// `oom_kill`, v2 `memory.events` `oom_kill`).
    pub oom_kills: u64,
    /// v1: `under_oom` (tasks sleeping with the OOM killer disabled).
    pub under_oom: Option<bool>,
    /// v2: `memory.events` `high` (throttling above `memory.high`).
    pub high: Option<u64>,
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

fn parse<T: std::str::FromStr>(path: &Path, text: &str) -> Result<T, CgroupError> {
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        text: text.to_string(),
    })
}

fn read_num(path: &Path) -> Result<i64, CgroupError> {
    parse(path, &read(path)?)
}

/// The value of `key` in a flat keyed file (`cpu.stat`, `memory.events`).
fn keyed(path: &Path, text: &str, key: &str) -> Result<Option<u64>, CgroupError> {
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        if parts.next() == Some(key) {
            return parts.next().map(|v| parse(path, v)).transpose();
        }
    }
    Ok(None)
}

impl Cgroup {
    /// Where `controller`'s files for this group are: its v1 folder, else
    /// the unified folder when it holds `probe_file` (v2 with the
    /// controller enabled in the parent's `cgroup.subtree_control`).
    fn controller(
        &self,
        controller: &'static str,
        probe_file: &str,
    ) -> Result<Controller, CgroupError> {
        if let Some(dir) = self.v1_dir(controller) {
            return Ok(Controller::V1(dir.to_path_buf()));
        }
        if let Some(dir) = self.unified_dir() {
            if dir.join(probe_file).exists() {
                return Ok(Controller::V2(dir.to_path_buf()));
            }
        }
        Err(CgroupError::NoController {
            rel: self.rel().to_path_buf(),
            controller,
        })
    }

    /// The cpu controller's folder for this group.
    pub fn cpu_controller(&self) -> Result<Controller, CgroupError> {
        self.controller("cpu", "cpu.max")
    }

    /// The memory controller's folder for this group.
    pub fn memory_controller(&self) -> Result<Controller, CgroupError> {
        self.controller("memory", "memory.max")
    }

    /// The CFS bandwidth limit now.
    pub fn cpu_quota(&self) -> Result<CpuQuota, CgroupError> {
        match self.cpu_controller()? {
            Controller::V1(dir) => {
                let quota = read_num(&dir.join("cpu.cfs_quota_us"))?;
                let period = read_num(&dir.join("cpu.cfs_period_us"))?;
                Ok(CpuQuota {
                    quota_us: u64::try_from(quota).ok(),
                    period_us: period.max(0) as u64,
                })
            }
            Controller::V2(dir) => {
                let path = dir.join("cpu.max");
                let text = read(&path)?;
                let mut parts = text.split_whitespace();
                let quota = parts.next().unwrap_or_default();
                let period = parts.next().unwrap_or_default();
                Ok(CpuQuota {
                    quota_us: if quota == "max" {
                        None
                    } else {
                        Some(parse(&path, quota)?)
                    },
                    period_us: parse(&path, period)?,
                })
            }
        }
    }

    /// Sets the CFS bandwidth limit (v1: quota lifted first, so a new
    /// period never conflicts with the old quota).
    pub fn set_cpu_quota(&self, q: CpuQuota) -> Result<(), CgroupError> {
        match self.cpu_controller()? {
            Controller::V1(dir) => {
                let quota = dir.join("cpu.cfs_quota_us");
                write(&quota, "-1")?;
                write(&dir.join("cpu.cfs_period_us"), &q.period_us.to_string())?;
                if let Some(us) = q.quota_us {
                    write(&quota, &us.to_string())?;
                }
                Ok(())
            }
            Controller::V2(dir) => {
                let quota = q.quota_us.map_or("max".to_string(), |us| us.to_string());
                write(&dir.join("cpu.max"), &format!("{quota} {}", q.period_us))
            }
        }
    }

    /// `cpu.stat` `nr_throttled`: periods in which the group was throttled.
    pub fn cpu_nr_throttled(&self) -> Result<u64, CgroupError> {
        let path = self.cpu_controller()?.dir().join("cpu.stat");
        let text = read(&path)?;
        keyed(&path, &text, "nr_throttled")?.ok_or(CgroupError::Parse { path, text })
    }

    /// The CPU weight now, in this version's units (`cpu.shares` or
    /// `cpu.weight`).
    pub fn cpu_weight(&self) -> Result<u64, CgroupError> {
        let path = match self.cpu_controller()? {
            Controller::V1(dir) => dir.join("cpu.shares"),
            Controller::V2(dir) => dir.join("cpu.weight"),
        };
        parse(&path, &read(&path)?)
    }

    /// Sets the CPU weight in this version's units (to restore one read
    /// with [`Cgroup::cpu_weight`]).
    pub fn set_cpu_weight(&self, native: u64) -> Result<(), CgroupError> {
        let path = match self.cpu_controller()? {
            Controller::V1(dir) => dir.join("cpu.shares"),
            Controller::V2(dir) => dir.join("cpu.weight"),
        };
        write(&path, &native.to_string())
    }

    /// Sets the CPU weight to one end of the scale; returns the value
    /// written, in this version's units.
    pub fn set_cpu_weight_level(&self, level: WeightLevel) -> Result<u64, CgroupError> {
        let v1 = matches!(self.cpu_controller()?, Controller::V1(_));
        let value = match (level, v1) {
            (WeightLevel::Lowest, true) => 2,
            (WeightLevel::Highest, true) => 262_144,
            (WeightLevel::Lowest, false) => 1,
            (WeightLevel::Highest, false) => 10_000,
        };
        self.set_cpu_weight(value)?;
        Ok(value)
    }

    /// The hard memory limit (`None`: unlimited).
    pub fn memory_limit(&self) -> Result<Option<u64>, CgroupError> {
        match self.memory_controller()? {
            Controller::V1(dir) => {
                let v = read_num(&dir.join("memory.limit_in_bytes"))?;
                Ok(u64::try_from(v).ok().filter(|v| *v < V1_UNLIMITED))
            }
            Controller::V2(dir) => v2_bytes(&dir.join("memory.max")),
        }
    }

    /// Sets the hard memory limit (`None`: unlimited).
    pub fn set_memory_limit(&self, bytes: Option<u64>) -> Result<(), CgroupError> {
        match self.memory_controller()? {
            Controller::V1(dir) => write(
                &dir.join("memory.limit_in_bytes"),
                &bytes.map_or("-1".to_string(), |b| b.to_string()),
            ),
            Controller::V2(dir) => write(
                &dir.join("memory.max"),
                &bytes.map_or("max".to_string(), |b| b.to_string()),
            ),
        }
    }

    /// v2 only: the `memory.high` throttling threshold (`None`: none).
    pub fn memory_high(&self) -> Result<Option<u64>, CgroupError> {
        match self.memory_controller()? {
            Controller::V1(_) => Err(self.wrong_version("memory.high", "v2")),
            Controller::V2(dir) => v2_bytes(&dir.join("memory.high")),
        }
    }

    /// v2 only: sets `memory.high` (`None`: no throttling).
    pub fn set_memory_high(&self, bytes: Option<u64>) -> Result<(), CgroupError> {
        match self.memory_controller()? {
            Controller::V1(_) => Err(self.wrong_version("memory.high", "v2")),
            Controller::V2(dir) => write(
                &dir.join("memory.high"),
                &bytes.map_or("max".to_string(), |b| b.to_string()),
            ),
        }
    }

    /// v1 only: `memory.oom_control` `oom_kill_disable` (tasks that
    /// allocate past the limit sleep instead of the OOM killer running).
    pub fn set_oom_kill_disable(&self, disable: bool) -> Result<(), CgroupError> {
        match self.memory_controller()? {
            Controller::V1(dir) => write(
                &dir.join("memory.oom_control"),
                if disable { "1" } else { "0" },
            ),
            Controller::V2(_) => Err(self.wrong_version("memory.oom_control", "v1")),
        }
    }

    /// v1 only: whether the OOM killer is disabled for the group.
    pub fn oom_kill_disabled(&self) -> Result<bool, CgroupError> {
        match self.memory_controller()? {
            Controller::V1(dir) => {
                let path = dir.join("memory.oom_control");
                let text = read(&path)?;
                Ok(keyed(&path, &text, "oom_kill_disable")? == Some(1))
            }
            Controller::V2(_) => Err(self.wrong_version("memory.oom_control", "v1")),
        }
    }

    /// Memory charged to the group now, bytes.
    pub fn memory_usage(&self) -> Result<u64, CgroupError> {
        let path = match self.memory_controller()? {
            Controller::V1(dir) => dir.join("memory.usage_in_bytes"),
            Controller::V2(dir) => dir.join("memory.current"),
        };
        parse(&path, &read(&path)?)
    }

    /// The memory controller's counters.
    pub fn memory_events(&self) -> Result<MemoryEvents, CgroupError> {
        match self.memory_controller()? {
            Controller::V1(dir) => {
                let failcnt = read_num(&dir.join("memory.failcnt"))?.max(0) as u64;
                let path = dir.join("memory.oom_control");
                let text = read(&path)?;
                Ok(MemoryEvents {
                    limit_hits: failcnt,
                    oom_kills: keyed(&path, &text, "oom_kill")?.unwrap_or(0),
                    under_oom: Some(keyed(&path, &text, "under_oom")? == Some(1)),
                    high: None,
                })
            }
            Controller::V2(dir) => {
                let path = dir.join("memory.events");
                let text = read(&path)?;
                Ok(MemoryEvents {
                    limit_hits: keyed(&path, &text, "max")?.unwrap_or(0),
                    oom_kills: keyed(&path, &text, "oom_kill")?.unwrap_or(0),
                    under_oom: None,
                    high: Some(keyed(&path, &text, "high")?.unwrap_or(0)),
                })
            }
        }
    }

    fn wrong_version(&self, what: &'static str, needs: &'static str) -> CgroupError {
        CgroupError::WrongVersion {
            rel: self.rel().to_path_buf(),
            what,
            needs,
        }
    }
}

/// A v2 bytes file: a number or `max`.
fn v2_bytes(path: &Path) -> Result<Option<u64>, CgroupError> {
    let text = read(path)?;
    if text.trim() == "max" {
        Ok(None)
    } else {
        parse(path, &text).map(Some)
    }
}

#[cfg(test)]
#[path = "resources_tests.rs"]
mod tests;
