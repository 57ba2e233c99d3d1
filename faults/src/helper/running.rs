//! The helper processes one fault started: started through the central
//! reaper, watched for an early end (a spinner refused SCHED_FIFO, a
//! leaker killed by the OOM killer), and stopped by SIGKILL, waiting until
//! each is reaped.
//!
//! It kills only the pids it started, never a whole cgroup: a fault's
//! helpers may share a group with the service (the cpu fault's `quota`
//! mode).

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::clock::monotonic_ns;
use crate::process::{ExitStatus, Reaper, Spawn, SpawnError};

/// One helper process.
#[derive(Debug)]
struct Proc {
    pid: i32,
    exit: Receiver<ExitStatus>,
    /// How it ended and when that was seen (`CLOCK_MONOTONIC` ns).
    ended: Option<(ExitStatus, u64)>,
}

/// The helpers of one fault.
#[derive(Debug, Default)]
pub struct Running {
    procs: Vec<Proc>,
}

impl Running {
    /// No helpers yet.
    pub fn new() -> Running {
        Running::default()
    }

    /// Starts one helper; returns its pid.
    pub fn start(&mut self, spawn: &Spawn) -> Result<i32, SpawnError> {
        let pid = spawn.spawn()?;
        let exit = Reaper::global().watch(pid);
        self.procs.push(Proc {
            pid,
            exit,
            ended: None,
        });
        Ok(pid)
    }

    /// The pids started, in order.
    pub fn pids(&self) -> Vec<i32> {
        self.procs.iter().map(|p| p.pid).collect()
    }

    /// Collects exits reaped so far; the helpers that ended, with how and
    /// when that was seen.
    pub fn ended(&mut self) -> Vec<(i32, ExitStatus, u64)> {
        for p in &mut self.procs {
            if p.ended.is_none() {
                if let Ok(status) = p.exit.try_recv() {
                    p.ended = Some((status, monotonic_ns()));
                }
            }
        }
        self.procs
            .iter()
            .filter_map(|p| p.ended.map(|(s, t)| (p.pid, s, t)))
            .collect()
    }

    /// SIGKILLs every helper still running and waits up to `timeout` for
    /// all to be reaped; `Err` lists those still not reaped.
    pub fn stop(&mut self, timeout: Duration) -> Result<(), Vec<i32>> {
        let start = Instant::now();
        for p in &mut self.procs {
            if p.ended.is_some() {
                continue;
            }
            if let Ok(status) = p.exit.try_recv() {
                p.ended = Some((status, monotonic_ns()));
                continue;
            }
            // SAFETY: kill(2) on a pid we started and have not seen reaped.
            unsafe { libc::kill(p.pid, libc::SIGKILL) };
        }
        let mut left = Vec::new();
        for p in &mut self.procs {
            if p.ended.is_some() {
                continue;
            }
            let wait = timeout.saturating_sub(start.elapsed());
            match p.exit.recv_timeout(wait) {
                Ok(status) => p.ended = Some((status, monotonic_ns())),
                Err(_) => left.push(p.pid),
            }
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(left)
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop(Duration::from_secs(2));
    }
}
