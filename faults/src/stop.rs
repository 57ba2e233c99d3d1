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
    use crate::crash::tests::root_ends_a_sleeper;

    #[test]
    fn root_stop_terms_the_group_reads_it_back_and_heal_reports_it_stayed_stopped() {
        root_ends_a_sleeper(
            "stop",
            |service| Box::new(Stop { service }),
            (libc::SIGTERM, "SIGTERM"),
            "stays stopped",
        );
    }
}
