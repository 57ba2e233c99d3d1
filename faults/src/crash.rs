//! The crash fault: the node's service is killed with SIGKILL (MODEL.md
//! "crash"). Onset is the kill read back: the process's pidfd says it has
//! ended. Nothing heals a crash; healing reads back what became of the
//! service (the supervisor restarts it, 7031, and the watchdog's countdown
//! stopped with it, seed 001).
//!
//! It kills the processes of the service cgroup only; it must not touch
//! the watchdog or the supervisor. The signalling and its read-back
//! ([`end_service`]) serve the stop fault too (`stop.rs`, SIGTERM).

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

impl Fault for Crash {
    fn describe(&self) -> String {
        format!("crash (SIGKILL) {}", self.service.rel().display())
    }

    fn inject(&self) -> Result<Box<dyn FaultGuard>, FaultError> {
        end_service(&self.describe(), &self.service, &CRASH)
    }
}

/// How a service is ended: the signal, how long its processes may take to
/// be seen gone, and how healing reads back what followed.
#[derive(Debug)]
pub(crate) struct Ending {
    pub(crate) signal: i32,
    pub(crate) name: &'static str,
    pub(crate) within: Duration,
    /// Healing found no new process in the service cgroup.
    pub(crate) none_after: &'static str,
    /// Healing found these new processes (pids follow).
    pub(crate) new_after: &'static str,
}

/// SIGKILL: the supervisor restarts the service (7031).
const CRASH: Ending = Ending {
    signal: libc::SIGKILL,
    name: "SIGKILL",
    within: GONE_WITHIN,
    none_after: "service cgroup holds no new process: not restarted yet",
    new_after: "service restarted",
};

/// Signals every process of `service` through a pidfd (the signal and the
/// read-back then name this process even if its pid is reused at once)
/// and waits for each pidfd to say it exited.
pub(crate) fn end_service(
    fault: &str,
    service: &Cgroup,
    how: &'static Ending,
) -> Result<Box<dyn FaultGuard>, FaultError> {
    let not_in_effect = |found: String| FaultError::NotInEffect {
        fault: fault.to_string(),
        found,
    };
    let requested_ns = monotonic_ns();
    let pids = service.pids()?;
    if pids.is_empty() {
        return Err(not_in_effect("no process in the service cgroup".into()));
    }
    let mut signalled = Vec::new();
    for pid in &pids {
        let Ok(fd) = pidfd_open(*pid) else { continue };
        // SAFETY: pidfd_send_signal on our own pidfd, no siginfo.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                how.signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc == 0 {
            signalled.push((*pid, fd));
        }
    }
    if signalled.is_empty() {
        return Err(not_in_effect(format!(
            "none of {pids:?} could be sent {}",
            how.name
        )));
    }
    for (pid, fd) in &signalled {
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut p, 1, how.within.as_millis() as i32) };
        if rc != 1 {
            return Err(not_in_effect(format!(
                "service pid {pid} still running {:?} after {}",
                how.within, how.name
            )));
        }
    }
    let confirmed_ns = monotonic_ns();
    let ended: Vec<i32> = signalled.iter().map(|(p, _)| *p).collect();
    let list: Vec<String> = ended.iter().map(i32::to_string).collect();
    Ok(Box::new(EndedGuard {
        service: service.clone(),
        ended,
        how,
        onset: Onset {
            requested_ns,
            confirmed_ns,
            evidence: format!(
                "{} to service pid {}: pidfd readable (exited) after {:.1} ms",
                how.name,
                list.join(", "),
                (confirmed_ns - requested_ns) as f64 / 1e6
            ),
        },
    }))
}

/// The service was ended; nothing heals that, so healing only reads back
/// what followed.
#[derive(Debug)]
struct EndedGuard {
    service: Cgroup,
    ended: Vec<i32>,
    how: &'static Ending,
    onset: Onset,
}

impl FaultGuard for EndedGuard {
    fn onset(&self) -> &Onset {
        &self.onset
    }

    fn heal(self: Box<Self>) -> Result<Healed, FaultError> {
        let requested_ns = monotonic_ns();
        let new: Vec<String> = self
            .service
            .pids()?
            .iter()
            .filter(|p| !self.ended.contains(p))
            .map(|p| p.to_string())
            .collect();
        let evidence = if new.is_empty() {
            self.how.none_after.to_string()
        } else {
            format!(
                "{}: pid {} in the service cgroup",
                self.how.new_after,
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
pub(crate) mod tests {
    use super::*;
    use crate::cgroup::CgroupHost;
    use crate::process::{ExitStatus, Reaper, Spawn};
    use crate::testutil::{is_root, unique_name};
    use std::path::Path;

    /// Ends a sleeper in a fresh cgroup with the fault `make` builds:
    /// refused on the empty group, then the onset names `signal` and the
    /// pid, the sleeper dies of `signal`, and the heal says `healed`.
    pub(crate) fn root_ends_a_sleeper(
        what: &str,
        make: fn(Cgroup) -> Box<dyn Fault>,
        signal: (i32, &str),
        healed: &str,
    ) {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let host = CgroupHost::detect().unwrap();
        let rel = Path::new("faultline").join(unique_name(what));
        let group = host.create(&rel).unwrap();
        let result = std::panic::catch_unwind(|| {
            let fault = make(group.clone());
            let err = fault.inject().err().expect("an empty group is refused");
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
            let prefix = format!("{} to service pid {pid}: pidfd readable", signal.1);
            assert!(onset.evidence.starts_with(&prefix), "{}", onset.evidence);
            let status = exit.recv_timeout(Duration::from_secs(5)).unwrap();
            assert_eq!(status, ExitStatus::Signal(signal.0), "{status}");
            let heal = guard.heal().unwrap();
            assert!(heal.evidence.contains(healed), "{}", heal.evidence);
            assert!(group.pids().unwrap().is_empty());
        });
        let _ = group.kill_all();
        group.remove().unwrap();
        host.remove_if_empty(Path::new("faultline")).unwrap();
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }

    #[test]
    fn root_crash_kills_the_group_reads_it_back_and_heal_reports_no_restart() {
        root_ends_a_sleeper(
            "crash",
            |service| Box::new(Crash { service }),
            (libc::SIGKILL, "SIGKILL"),
            "not restarted yet",
        );
    }
}
