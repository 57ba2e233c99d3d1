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

use std::time::Duration;

use crate::cgroup::Cgroup;
use crate::crash::{end_service, Ending};
use crate::fault::{Fault, FaultError, FaultGuard};

/// SIGTERM: the service takes its groups offline and exits; nothing
/// restarts it.
const STOP: Ending = Ending {
    signal: libc::SIGTERM,
    name: "SIGTERM",
    // How long a stopping service may take to exit.
    within: Duration::from_secs(3),
    none_after: "service cgroup holds no process: a stopped service stays stopped",
    new_after: "service started again",
};

/// Stops every process of `service` with SIGTERM.
#[derive(Debug, Clone)]
pub struct Stop {
    /// The node's service cgroup.
    pub service: Cgroup,
}

impl Fault for Stop {
    fn describe(&self) -> String {
        format!("stop (SIGTERM) {}", self.service.rel().display())
    }

    fn inject(&self) -> Result<Box<dyn FaultGuard>, FaultError> {
        end_service(&self.describe(), &self.service, &STOP)
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
                    .starts_with(&format!("SIGTERM to service pid {pid}: pidfd readable")),
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
