//! The stop fault: the node's service is stopped cleanly, as an operator's
//! `net stop clussvc` does (seed 001: "when the Cluster service stops for
//! any reason, the ClusNet driver automatically turns off the countdown
//! timer"). SIGTERM to the service's processes; the service takes its
//! groups offline, says `stopping` to its watchdog and exits 0. Onset is
//! the exit read back (each process's pidfd readable). A stopped service is
//! not a crash: no 7031, and its supervisor (the service manager) does not
//! restart it. Healing reads back that it stayed stopped.
//!
//! It signals the processes of the service cgroup only.

use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::cgroup::Cgroup;
use crate::clock::monotonic_ns;
use crate::crash::pidfd_open;
use crate::fault::{Fault, FaultError, FaultGuard, Healed, Onset};

/// How long a stopping service may take to exit.
const STOPPED_WITHIN: Duration = Duration::from_secs(3);

/// Stops every process of `service` with SIGTERM.
#[derive(Debug, Clone)]
pub struct Stop {
    /// The node's service cgroup.
    pub service: Cgroup,
}

impl Stop {
    fn not_in_effect(&self, found: String) -> FaultError {
        FaultError::NotInEffect {
            fault: self.describe(),
            found,
        }
    }
}

impl Fault for Stop {
    fn describe(&self) -> String {
        format!("stop (SIGTERM) {}", self.service.rel().display())
    }

    fn inject(&self) -> Result<Box<dyn FaultGuard>, FaultError> {
        let requested_ns = monotonic_ns();
        let pids = self.service.pids()?;
        if pids.is_empty() {
            return Err(self.not_in_effect("no process in the service cgroup".into()));
        }
        let mut signalled = Vec::new();
        for pid in &pids {
            let Ok(fd) = pidfd_open(*pid) else { continue };
            // SAFETY: pidfd_send_signal on our own pidfd, no siginfo.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    libc::SIGTERM,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            if rc == 0 {
                signalled.push((*pid, fd));
            }
        }
        if signalled.is_empty() {
            return Err(self.not_in_effect(format!("none of {pids:?} could be signalled")));
        }
        for (pid, fd) in &signalled {
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut p, 1, STOPPED_WITHIN.as_millis() as i32) };
            if rc != 1 {
                return Err(self.not_in_effect(format!(
                    "service pid {pid} still running {STOPPED_WITHIN:?} after SIGTERM"
                )));
            }
        }
        let confirmed_ns = monotonic_ns();
        let stopped: Vec<i32> = signalled.iter().map(|(p, _)| *p).collect();
        Ok(Box::new(StopGuard {
            service: self.service.clone(),
            stopped: stopped.clone(),
            onset: Onset {
                requested_ns,
                confirmed_ns,
                evidence: format!(
                    "SIGTERM to service pid {stopped:?}: pidfd readable (exited) after {:.1} ms",
                    (confirmed_ns - requested_ns) as f64 / 1e6
                ),
            },
        }))
    }
}

/// The stop happened; healing reads back that nothing restarted it.
#[derive(Debug)]
struct StopGuard {
    service: Cgroup,
    stopped: Vec<i32>,
    onset: Onset,
}

impl FaultGuard for StopGuard {
    fn onset(&self) -> &Onset {
        &self.onset
    }

    fn heal(self: Box<Self>) -> Result<Healed, FaultError> {
        let requested_ns = monotonic_ns();
        let now: Vec<i32> = self.service.pids()?;
        let new: Vec<String> = now
            .iter()
            .filter(|p| !self.stopped.contains(p))
            .map(|p| p.to_string())
            .collect();
        let evidence = if new.is_empty() {
            "service cgroup holds no process: a stopped service stays stopped".to_string()
        } else {
            format!(
                "service started again: pid {} in the service cgroup",
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
    fn root_stop_terms_the_group_reads_it_back_and_heal_reports_it_stayed_stopped() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let host = CgroupHost::detect().unwrap();
        let rel = Path::new("faultline").join(unique_name("stop"));
        let group = host.create(&rel).unwrap();
        let result = std::panic::catch_unwind(|| {
            let fault = Stop {
                service: group.clone(),
            };
            let err = fault.inject().err().expect("an empty group cannot stop");
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
            assert!(
                onset
                    .evidence
                    .starts_with(&format!("SIGTERM to service pid [{pid}]: pidfd readable")),
                "{}",
                onset.evidence
            );
            let status = exit.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(
                status,
                faultline_sys::process::ExitStatus::Signal(libc::SIGTERM),
                "{status}"
            );
            let healed = guard.heal().unwrap();
            assert!(
                healed.evidence.contains("stays stopped"),
                "{}",
                healed.evidence
            );
        });
        let _ = group.kill_all();
        group.remove().unwrap();
        host.remove_if_empty(Path::new("faultline")).unwrap();
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}
