//! The freeze fault: a plain user-mode hang, made by freezing a cgroup
//! (the harness passes the node's service cgroup).
//!
//! It freezes and thaws only; it must not kill or move processes.

use crate::cgroup::Cgroup;
use crate::clock::monotonic_ns;
use crate::fault::{Fault, FaultError, FaultGuard, Healed, Onset};

/// Freezes every process of `target` until healed.
#[derive(Debug, Clone)]
pub struct Freeze {
    /// The group to freeze.
    pub target: Cgroup,
}

impl Fault for Freeze {
    fn describe(&self) -> String {
        format!("freeze {}", self.target.rel().display())
    }

    fn inject(&self) -> Result<Box<dyn FaultGuard>, FaultError> {
        let requested_ns = monotonic_ns();
        let change = match self.target.freeze_confirmed() {
            Ok(change) => change,
            Err(e) => {
                // A freeze that timed out may still be half in effect.
                return Err(FaultError::from(e).after_undo(self.describe(), self.target.thaw()));
            }
        };
        Ok(Box::new(FreezeGuard {
            target: self.target.clone(),
            onset: Onset {
                requested_ns,
                confirmed_ns: change.confirmed_ns,
                evidence: change.evidence,
            },
            healed: false,
        }))
    }
}

/// A frozen group; thaws on heal or drop.
#[derive(Debug)]
struct FreezeGuard {
    target: Cgroup,
    onset: Onset,
    healed: bool,
}

impl FaultGuard for FreezeGuard {
    fn onset(&self) -> &Onset {
        &self.onset
    }

    fn heal(mut self: Box<Self>) -> Result<Healed, FaultError> {
        let requested_ns = monotonic_ns();
        // Whatever happens, drop must not try again.
        self.healed = true;
        let change = self.target.thaw_confirmed()?;
        Ok(Healed {
            requested_ns,
            confirmed_ns: change.confirmed_ns,
            evidence: change.evidence,
        })
    }
}

impl Drop for FreezeGuard {
    fn drop(&mut self) {
        if !self.healed {
            let _ = self.target.thaw();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::CgroupHost;
    use crate::process::{Reaper, Spawn};
    use crate::testutil::{is_root, unique_name};
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::time::Duration;

    #[test]
    fn describe_names_the_group() {
        let host = CgroupHost::with_roots(BTreeMap::new(), Some("/nonexistent".into()));
        let fault = Freeze {
            target: host.open(Path::new("faultline/r1/n1/service")),
        };
        assert_eq!(fault.describe(), "freeze faultline/r1/n1/service");
        // No freezer file: injection fails and says why.
        assert!(fault.inject().is_err());
    }

    #[test]
    fn root_freeze_fault_onset_evidence_and_heal() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let host = CgroupHost::detect().unwrap();
        let rel = Path::new("faultline").join(unique_name("freeze"));
        let group = host.create(&rel).unwrap();
        let result = std::panic::catch_unwind(|| {
            let pid = Spawn::new("sleep")
                .arg("30")
                .cgroup_procs(group.procs_files())
                .spawn()
                .unwrap();
            let exit = Reaper::global().watch(pid);
            let fault = Freeze {
                target: group.clone(),
            };
            let guard = fault.inject().unwrap();
            let onset = guard.onset().clone();
            assert!(onset.confirmed_ns >= onset.requested_ns);
            assert!(
                onset.evidence == "cgroup.events: frozen 1"
                    || onset.evidence == "freezer.state: FROZEN",
                "{}",
                onset.evidence
            );
            assert!(group.is_frozen().unwrap());
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            let state = stat.rsplit(") ").next().unwrap().chars().next().unwrap();
            assert!(matches!(state, 'S' | 'D'), "{stat}");
            let healed = guard.heal().unwrap();
            assert!(healed.confirmed_ns >= healed.requested_ns);
            assert!(healed.requested_ns >= onset.confirmed_ns);
            assert!(healed.evidence.ends_with("frozen 0") || healed.evidence.ends_with("THAWED"));
            assert!(!group.is_frozen().unwrap());
            // Dropping an unhealed guard thaws too.
            drop(fault.inject().unwrap());
            assert!(!group.is_frozen().unwrap());
            group.kill_all().unwrap();
            assert!(exit.recv_timeout(Duration::from_secs(5)).is_ok());
        });
        let _ = group.kill_all();
        group.remove().unwrap();
        host.remove_if_empty(Path::new("faultline")).unwrap();
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}
