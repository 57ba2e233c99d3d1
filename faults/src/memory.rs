//! The memory fault: a leaker process in a node's memory cgroup (its
//! workload, or its service's), growing at a steady rate against a limit
//! set before it starts, so the leak can never grow past the cgroup.
//! [`MemPolicy`] says what happens at the limit:
//!
//! - `oom_kill`: the kernel's OOM killer kills a process of the group (the
//!   leaker runs at `oom_score_adj` 1000, so it is the one chosen unless
//!   another process is larger still); the onset is the kill read back
//!   (`oom_kill` count rising), and the evidence names who died.
//! - `hang`: allocating tasks stall: v1 `oom_kill_disable` 1 (they sleep
//!   until memory is freed; the onset is `under_oom 1`), v2 `memory.high`
//!   throttling (the onset is `memory.events` `high` rising).
//!
//! It stops only its leaker and restores the limits it changed; it never
//! kills the group.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cgroup::{Cgroup, Controller, MemoryEvents};
use crate::clock::monotonic_ns;
use crate::fault::{Fault, FaultError, FaultGuard};
use crate::guard::UndoGuard;
use crate::helper::{self, Running};
use crate::process::ExitStatus;

/// How long stopped helpers may take to be reaped.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for the policy's effect beyond limit / rate.
const PROOF_MARGIN: Duration = Duration::from_secs(3);

/// What happens when the leak reaches the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemPolicy {
    /// The OOM killer kills a process of the group.
    OomKill,
    /// Allocating tasks stall (v1 OOM killer disabled, v2 `memory.high`).
    Hang,
}

impl MemPolicy {
    /// Its name in suites.
    pub fn name(self) -> &'static str {
        match self {
            MemPolicy::OomKill => "oom_kill",
            MemPolicy::Hang => "hang",
        }
    }
}

/// A leak in `group` until healed.
#[derive(Debug, Clone)]
pub struct Leak {
    /// The memory cgroup the leaker runs in (workload or service).
    pub group: Cgroup,
    /// Bytes leaked per step.
    pub step: u64,
    /// Time between steps.
    pub every: Duration,
    /// The group's limit during the fault, bytes.
    pub limit: u64,
    /// What happens at the limit.
    pub policy: MemPolicy,
    /// The program that runs helpers (`faultline`).
    pub helper: PathBuf,
    /// The node's network namespace, for the leaker.
    pub netns: Option<PathBuf>,
    /// How long the leaker may live at most.
    pub lifetime: Duration,
}

/// What was changed, so it can be undone.
#[derive(Debug, Default)]
struct Undo {
    limit: Option<Option<u64>>,
    high: Option<Option<u64>>,
    oom_kill_disable: Option<bool>,
}

impl Leak {
    /// The time the leak needs to reach the limit.
    pub fn time_to_limit(&self) -> Duration {
        let steps = self.limit.div_ceil(self.step.max(1));
        self.every
            .saturating_mul(u32::try_from(steps).unwrap_or(u32::MAX))
    }
}

impl Fault for Leak {
    fn describe(&self) -> String {
        format!(
            "memory leak {} B / {} ms to {} B ({}) in {}",
            self.step,
            self.every.as_millis(),
            self.limit,
            self.policy.name(),
            self.group.rel().display()
        )
    }

    fn inject(&self) -> Result<Box<dyn FaultGuard>, FaultError> {
        let state = LeakGuard {
            fault: self.clone(),
            running: Running::new(),
            undo: Undo::default(),
            leaker: 0,
        };
        UndoGuard::inject(self.describe(), state, LeakGuard::apply)
    }
}

/// `pid (comm)` for each pid.
fn names(pids: &[i32]) -> BTreeMap<i32, String> {
    pids.iter()
        .map(|p| {
            let comm = fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            (*p, comm.trim().to_string())
        })
        .collect()
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1 << 20) as f64)
}

/// A leaking group; the leaker stops and the limits are restored on heal
/// or drop ([`UndoGuard`]).
struct LeakGuard {
    fault: Leak,
    running: Running,
    undo: Undo,
    leaker: i32,
}

impl LeakGuard {
    fn not_in_effect(&self, found: String) -> FaultError {
        FaultError::NotInEffect {
            fault: self.fault.describe(),
            found,
        }
    }

    /// Sets the limit, starts the leaker and waits for the policy's
    /// effect: (confirmed ns, evidence).
    fn apply(&mut self) -> Result<(u64, String), FaultError> {
        let f = self.fault.clone();
        let g = &f.group;
        let v2 = matches!(g.memory_controller()?, Controller::V2(_));
        // Limit first: the leak can never grow past the group.
        self.undo.limit = Some(g.memory_limit()?);
        match (f.policy, v2) {
            (MemPolicy::OomKill, _) => g.set_memory_limit(Some(f.limit))?,
            (MemPolicy::Hang, false) => {
                g.set_memory_limit(Some(f.limit))?;
                self.undo.oom_kill_disable = Some(g.oom_kill_disabled()?);
                g.set_oom_kill_disable(true)?;
            }
            (MemPolicy::Hang, true) => {
                // Throttle at the limit; the hard ceiling a quarter above.
                g.set_memory_limit(Some(f.limit + f.limit / 4))?;
                self.undo.high = Some(g.memory_high()?);
                g.set_memory_high(Some(f.limit))?;
            }
        }
        let limit_read = g.memory_limit()?;
        if limit_read.is_none() {
            return Err(self.not_in_effect("no memory limit read back".into()));
        }
        let before = g.memory_events()?;
        let others = names(&g.pids()?);
        let mut cmd = helper::command(
            &f.helper,
            "leak",
            f.lifetime,
            &[
                "--step".into(),
                f.step.to_string(),
                "--every-ms".into(),
                f.every.as_millis().max(1).to_string(),
            ],
        )
        .cgroup_procs(g.procs_files())
        .parent_death_signal(libc::SIGKILL)
        .new_session();
        if let Some(ns) = &f.netns {
            cmd = cmd.netns(ns);
        }
        self.leaker = self
            .running
            .start(&cmd)
            .map_err(|source| FaultError::HelperSpawn {
                helper: "leak",
                source,
            })?;
        let deadline = Instant::now() + f.time_to_limit() + PROOF_MARGIN;
        loop {
            let now = g.memory_events()?;
            let usage = g.memory_usage()?;
            let ended = self.running.ended();
            let limits = format!(
                "usage {} of limit {}; limit hits {} -> {}",
                mb(usage),
                mb(limit_read.unwrap_or(0)),
                before.limit_hits,
                now.limit_hits
            );
            if let Some(found) = self.effect(&before, &now, &ended, &others, v2) {
                return Ok((monotonic_ns(), format!("{found}; {limits}")));
            }
            if let Some((pid, status, _)) = ended.first() {
                return Err(self.not_in_effect(format!("leaker {pid} ended ({status}); {limits}")));
            }
            if Instant::now() > deadline {
                return Err(self.not_in_effect(format!(
                    "no {} effect within {} ms; {limits}",
                    f.policy.name(),
                    (f.time_to_limit() + PROOF_MARGIN).as_millis()
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The policy's effect, if read back.
    fn effect(
        &mut self,
        before: &MemoryEvents,
        now: &MemoryEvents,
        ended: &[(i32, ExitStatus, u64)],
        others: &BTreeMap<i32, String>,
        v2: bool,
    ) -> Option<String> {
        let g = &self.fault.group;
        match self.fault.policy {
            MemPolicy::OomKill => {
                if now.oom_kills <= before.oom_kills {
                    return None;
                }
                let mut who = Vec::new();
                if let Some((pid, status, _)) = ended.iter().find(|e| e.0 == self.leaker) {
                    who.push(format!("the leaker (pid {pid}, {status})"));
                }
                let alive = g.pids().unwrap_or_default();
                for (pid, comm) in others {
                    if !alive.contains(pid) {
                        who.push(format!("pid {pid} ({comm})"));
                    }
                }
                if who.is_empty() {
                    // The kill is counted before the victim is reaped.
                    if let Ok(status) = self.wait_leaker(Duration::from_millis(200)) {
                        who.push(format!("the leaker (pid {}, {status})", self.leaker));
                    } else {
                        who.push("a process not yet gone".into());
                    }
                }
                Some(format!(
                    "oom_kill {} -> {}: killed {}",
                    before.oom_kills,
                    now.oom_kills,
                    who.join(", ")
                ))
            }
            MemPolicy::Hang if !v2 => (now.under_oom == Some(true)).then(|| {
                let wchan =
                    fs::read_to_string(format!("/proc/{}/wchan", self.leaker)).unwrap_or_default();
                format!(
                    "memory.oom_control oom_kill_disable 1, under_oom 1; leaker {} waits in {}",
                    self.leaker,
                    if wchan.is_empty() {
                        "?"
                    } else {
                        wchan.as_str()
                    }
                )
            }),
            MemPolicy::Hang => {
                let (b, n) = (before.high.unwrap_or(0), now.high.unwrap_or(0));
                (n > b).then(|| format!("memory.events high {b} -> {n} (throttled)"))
            }
        }
    }

    /// Waits for the leaker's exit, already seen or within `wait`.
    fn wait_leaker(&mut self, wait: Duration) -> Result<ExitStatus, ()> {
        let start = Instant::now();
        loop {
            if let Some((_, status, _)) = self
                .running
                .ended()
                .into_iter()
                .find(|e| e.0 == self.leaker)
            {
                return Ok(status);
            }
            if start.elapsed() > wait {
                return Err(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl crate::guard::Undo for LeakGuard {
    /// Stops the leaker and restores the limits; what was read back.
    fn undo(&mut self) -> Result<String, FaultError> {
        let g = self.fault.group.clone();
        let ended_before: Vec<_> = self.running.ended();
        let events = g.memory_events().ok();
        self.running
            .stop(STOP_TIMEOUT)
            .map_err(|pids| FaultError::HelpersLeft {
                fault: self.fault.describe(),
                pids,
            })?;
        let mut evidence = Vec::new();
        if self.leaker != 0 {
            evidence.push(match ended_before.iter().find(|e| e.0 == self.leaker) {
                Some((pid, status, _)) => format!("leaker {pid} had ended ({status})"),
                None => format!("leaker {} stopped", self.leaker),
            });
        }
        if let Some(ev) = events {
            evidence.push(format!(
                "limit hits {}, oom_kill {}",
                ev.limit_hits, ev.oom_kills
            ));
        }
        if let Some(disabled) = self.undo.oom_kill_disable.take() {
            g.set_oom_kill_disable(disabled)?;
            evidence.push(format!(
                "oom_kill_disable {}",
                u8::from(g.oom_kill_disabled()?)
            ));
        }
        if let Some(high) = self.undo.high.take() {
            g.set_memory_high(high)?;
            evidence.push(format!(
                "memory.high {}",
                g.memory_high()?.map_or("max".into(), mb)
            ));
        }
        if let Some(limit) = self.undo.limit.take() {
            g.set_memory_limit(limit)?;
            evidence.push(format!(
                "limit {}",
                g.memory_limit()?.map_or("none".into(), mb)
            ));
        }
        evidence.push(format!("usage {}", mb(g.memory_usage()?)));
        Ok(evidence.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::CgroupHost;
    use std::path::Path;

    fn leak(dir: &Path, policy: MemPolicy) -> Leak {
        let host = CgroupHost::with_roots(BTreeMap::new(), Some(dir.to_path_buf()));
        fs::create_dir_all(dir.join("f/n1/workload")).unwrap();
        Leak {
            group: host.open(Path::new("f/n1/workload")),
            step: 10 << 20,
            every: Duration::from_millis(100),
            limit: 64 << 20,
            policy,
            helper: "/nonexistent/faultline".into(),
            netns: None,
            lifetime: Duration::from_secs(1),
        }
    }

    #[test]
    fn describe_and_time_to_limit() {
        let dir = tempfile::tempdir().unwrap();
        let l = leak(dir.path(), MemPolicy::OomKill);
        assert_eq!(
            l.describe(),
            "memory leak 10485760 B / 100 ms to 67108864 B (oom_kill) in f/n1/workload"
        );
        // 64 MB at 10 MB a step: 7 steps.
        assert_eq!(l.time_to_limit(), Duration::from_millis(700));
    }

    #[test]
    fn without_a_memory_controller_it_is_refused_by_name_and_starts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        for policy in [MemPolicy::OomKill, MemPolicy::Hang] {
            let e = leak(dir.path(), policy).inject().err().unwrap();
            let text = faultline_sys::error::chain(&e);
            assert!(text.contains("no memory controller"), "{text}");
        }
    }
}
