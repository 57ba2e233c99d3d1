//! The crash fault: the node's service is killed with SIGKILL (MODEL.md
//! "crash"). Onset is the kill read back: the process's pidfd says it has
//! ended. Nothing heals a crash; healing reads back what became of the
//! service (the supervisor restarts it, 7031, and the watchdog's countdown
//! stopped with it, seed 001).
//!
//! It kills the processes of the service cgroup only; it must not touch
//! the watchdog or the supervisor.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::cgroup::Cgroup;
use crate::clock::monotonic_ns;
use crate::fault::{Fault, FaultError, FaultGuard, Healed, Onset};

/// How long a killed process may take to be seen gone.
const GONE_WITHIN: Duration = Duration::from_secs(2);

/// Kills every process of `service` with SIGKILL.
#[derive(Debug, Clone)]
pub struct Crash {
    /// The node's service cgroup.
    pub service: Cgroup,
}

pub(crate) fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; it returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor is new and ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

impl Crash {
    fn not_in_effect(&self, found: String) -> FaultError {
        FaultError::NotInEffect {
            fault: self.describe(),
            found,
        }
    }
}

impl Fault for Crash {
    fn describe(&self) -> String {
        format!("crash (SIGKILL) {}", self.service.rel().display())
    }

    fn inject(&self) -> Result<Box<dyn FaultGuard>, FaultError> {
        let requested_ns = monotonic_ns();
        let pids = self.service.pids()?;
        if pids.is_empty() {
            return Err(self.not_in_effect("no process in the service cgroup".into()));
        }
        let mut killed = Vec::new();
        for pid in &pids {
            // A pidfd first: the kill and the read-back then name this
            // process even if its pid is reused at once.
            let Ok(fd) = pidfd_open(*pid) else { continue };
            // SAFETY: pidfd_send_signal on our own pidfd, no siginfo.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            if rc == 0 {
                killed.push((*pid, fd));
            }
        }
        if killed.is_empty() {
            return Err(self.not_in_effect(format!("none of {pids:?} could be killed")));
        }
        let mut gone = Vec::new();
        for (pid, fd) in &killed {
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut p, 1, GONE_WITHIN.as_millis() as i32) };
            if rc != 1 {
                return Err(self.not_in_effect(format!(
                    "service pid {pid} still running {GONE_WITHIN:?} after SIGKILL"
                )));
            }
            gone.push(pid.to_string());
        }
        let confirmed_ns = monotonic_ns();
        Ok(Box::new(CrashGuard {
            service: self.service.clone(),
            killed: killed.iter().map(|(p, _)| *p).collect(),
            onset: Onset {
                requested_ns,
                confirmed_ns,
                evidence: format!(
                    "SIGKILL to service pid {}: pidfd readable (exited) after {:.1} ms",
                    gone.join(", "),
                    (confirmed_ns - requested_ns) as f64 / 1e6
                ),
            },
        }))
    }
}

/// A crash already happened; healing only reads back what followed.
#[derive(Debug)]
struct CrashGuard {
    service: Cgroup,
    killed: Vec<i32>,
    onset: Onset,
}

impl FaultGuard for CrashGuard {
    fn onset(&self) -> &Onset {
        &self.onset
    }

    fn heal(self: Box<Self>) -> Result<Healed, FaultError> {
        let requested_ns = monotonic_ns();
        let now: Vec<i32> = self.service.pids()?;
        let new: Vec<String> = now
            .iter()
            .filter(|p| !self.killed.contains(p))
            .map(|p| p.to_string())
            .collect();
        let evidence = if new.is_empty() {
            "service cgroup holds no new process: not restarted yet".to_string()
        } else {
            format!(
                "service restarted: pid {} in the service cgroup",
                new.join(", ")
            )
        };
        Ok(Healed {
            requested_ns,
            confirmed_ns: monotonic_ns(),
            evidence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::CgroupHost;
    use crate::process::{Reaper, Spawn};
    use crate::testutil::{is_root, unique_name};
    use std::path::Path;

    #[test]
    fn root_crash_kills_the_group_reads_it_back_and_heal_reports_no_restart() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let host = CgroupHost::detect().unwrap();
        let rel = Path::new("faultline").join(unique_name("crash"));
        let group = host.create(&rel).unwrap();
        let result = std::panic::catch_unwind(|| {
            let fault = Crash {
                service: group.clone(),
            };
            // Nothing to kill: refused, saying so.
            let err = fault.inject().err().expect("an empty group cannot crash");
            assert!(
                err.to_string().contains("no process in the service cgroup"),
                "{err}"
            );
            let pid = Spawn::new("sleep")
                .arg("30")
                .cgroup_procs(group.procs_files())
                .spawn()
                .unwrap();
            let exit = Reaper::global().watch(pid);
            let guard = fault.inject().unwrap();
            let onset = guard.onset().clone();
            assert!(onset.confirmed_ns >= onset.requested_ns);
            assert!(
                onset
                    .evidence
                    .starts_with(&format!("SIGKILL to service pid {pid}: pidfd readable")),
                "{}",
                onset.evidence
            );
            let status = exit.recv_timeout(Duration::from_secs(5)).unwrap();
            assert!(!status.success(), "{status}");
            let healed = guard.heal().unwrap();
            assert!(
                healed.evidence.contains("not restarted yet"),
                "{}",
                healed.evidence
            );
            assert!(group.pids().unwrap().is_empty());
        });
        let _ = group.kill_all();
        group.remove().unwrap();
        host.remove_if_empty(Path::new("faultline")).unwrap();
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}
