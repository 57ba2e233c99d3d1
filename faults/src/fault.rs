//! What a fault is: something injected that returns a guard, which heals
//! the fault explicitly (reporting failure) or on drop (best effort). Both
//! ends carry proof: when the change was requested, when it was read back
//! from the kernel, and what was read.
//!
//! It must not know about suites, plans or traces: the harness records
//! onsets and heals in its own terms.

use crate::cgroup::CgroupError;

/// When a fault took effect, and the proof.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Onset {
    /// `CLOCK_MONOTONIC` ns just before the fault was requested.
    pub requested_ns: u64,
    /// `CLOCK_MONOTONIC` ns when its effect was read back.
    pub confirmed_ns: u64,
    /// What was read back, like `cgroup.events: frozen 1`.
    pub evidence: String,
}

/// When a fault was healed, and the proof.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Healed {
    /// `CLOCK_MONOTONIC` ns just before healing was requested.
    pub requested_ns: u64,
    /// `CLOCK_MONOTONIC` ns when the healed state was read back.
    pub confirmed_ns: u64,
    /// What was read back, like `cgroup.events: frozen 0`.
    pub evidence: String,
}

/// A fault in effect. Dropping it heals it best-effort; call
/// [`FaultGuard::heal`] to learn whether healing worked.
pub trait FaultGuard: Send {
    /// When and how the fault took effect.
    fn onset(&self) -> &Onset;
    /// Heals the fault and confirms it.
    fn heal(self: Box<Self>) -> Result<Healed, FaultError>;
}

/// A fault that can be injected.
pub trait Fault {
    /// A one-line description, like `freeze faultline/ab12/n1/service`.
    fn describe(&self) -> String;
    /// Injects the fault; it lasts until the guard is healed or dropped.
    #[must_use = "dropping the guard heals the fault at once"]
    fn inject(&self) -> Result<Box<dyn FaultGuard>, FaultError>;
}

/// Injecting or healing a fault failed.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// A cgroup operation failed.
    #[error("cgroup operation failed")]
    Cgroup(#[from] CgroupError),
    /// A network operation failed.
    #[error("network operation failed")]
    Net(#[from] crate::netns::NetError),
    /// The fault was applied but reading it back shows it did not take
    /// effect (or, on heal, did not end).
    #[error("{fault}: read back {found}")]
    NotInEffect {
        /// The fault, described.
        fault: String,
        /// What was read back.
        found: String,
    },
    /// A helper process of the fault failed to start or to say it was ready.
    #[error("{fault}: helper failed")]
    Helper {
        /// The fault, described.
        fault: String,
        /// Why.
        #[source]
        source: crate::helper::child::HelperError,
    },
    /// A helper process of the fault could not be started.
    #[error("cannot start helper `{helper}`")]
    HelperSpawn {
        /// The helper's name.
        helper: &'static str,
        /// The cause.
        #[source]
        source: crate::process::SpawnError,
    },
    /// Helper processes did not end when stopped.
    #[error("helpers {pids:?} of {fault} were not reaped after SIGKILL")]
    HelpersLeft {
        /// The fault, described.
        fault: String,
        /// The pids left.
        pids: Vec<i32>,
    },
    /// Injecting failed, and undoing the partial injection failed too.
    #[error("cannot inject {fault}, and undoing it failed too ({undo})")]
    InjectUndo {
        /// The fault, described.
        fault: String,
        /// The undo failure, rendered.
        undo: String,
        /// The injection failure.
        #[source]
        source: Box<FaultError>,
    },
}

impl FaultError {
    /// This failure to inject `fault`, after what was already applied was
    /// undone: a failed `undo` is attached, so the caller learns the host
    /// may still hold part of the fault.
    pub fn after_undo<T, E: std::error::Error>(self, fault: String, undo: Result<T, E>) -> Self {
        match undo {
            Ok(_) => self,
            Err(u) => FaultError::InjectUndo {
                fault,
                undo: faultline_sys::error::chain(&u),
                source: Box::new(self),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> FaultError {
        FaultError::NotInEffect {
            fault: "f".into(),
            found: "nothing".into(),
        }
    }

    #[test]
    fn a_clean_undo_keeps_the_injection_error_and_a_failed_one_is_attached() {
        let kept = failed().after_undo("f".into(), Ok::<(), std::io::Error>(()));
        assert!(matches!(kept, FaultError::NotInEffect { .. }), "{kept:?}");
        let undo = std::io::Error::other("table busy");
        let both = failed().after_undo("loss on n1".into(), Err::<(), _>(undo));
        assert_eq!(
            both.to_string(),
            "cannot inject loss on n1, and undoing it failed too (table busy)"
        );
        let FaultError::InjectUndo { source, .. } = both else {
            panic!("not an InjectUndo: {both:?}");
        };
        assert!(matches!(*source, FaultError::NotInEffect { .. }));
    }
}
