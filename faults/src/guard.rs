//! One guard for the faults that end by undoing what they did: the state
//! an injection built implements [`Undo`], and [`UndoGuard`] does the
//! rest every such fault used to write out by hand: undo at once when the
//! injection fails (keeping both errors), heal with requested and
//! confirmed times, and undo best-effort on drop unless already healed.
//!
//! It decides nothing about a fault: what is applied, proven and undone
//! is the state's business.

use crate::clock::monotonic_ns;
use crate::fault::{FaultError, FaultGuard, Healed, Onset};

/// What an injection changed, able to change it back.
pub trait Undo: Send {
    /// Undoes everything applied so far (also after a partial apply) and
    /// says what was read back.
    fn undo(&mut self) -> Result<String, FaultError>;
}

/// A fault in effect whose heal is its state's [`Undo::undo`].
#[derive(Debug)]
pub struct UndoGuard<U: Undo> {
    state: U,
    onset: Onset,
    done: bool,
}

impl<U: Undo + 'static> UndoGuard<U> {
    /// Applies the fault through `apply` (which returns the confirmed time
    /// and the evidence); on failure undoes at once and returns the error,
    /// with the undo's own failure attached if it failed too.
    pub fn inject(
        describe: String,
        mut state: U,
        apply: impl FnOnce(&mut U) -> Result<(u64, String), FaultError>,
    ) -> Result<Box<dyn FaultGuard>, FaultError> {
        let requested_ns = monotonic_ns();
        match apply(&mut state) {
            Ok((confirmed_ns, evidence)) => Ok(Box::new(UndoGuard {
                state,
                onset: Onset {
                    requested_ns,
                    confirmed_ns,
                    evidence,
                },
                done: false,
            })),
            Err(e) => {
                let undone = state.undo();
                Err(e.after_undo(describe, undone))
            }
        }
    }
}

impl<U: Undo> FaultGuard for UndoGuard<U> {
    fn onset(&self) -> &Onset {
        &self.onset
    }

    fn heal(mut self: Box<Self>) -> Result<Healed, FaultError> {
        let requested_ns = monotonic_ns();
        self.done = true;
        let evidence = self.state.undo()?;
        Ok(Healed {
            requested_ns,
            confirmed_ns: monotonic_ns(),
            evidence,
        })
    }
}

impl<U: Undo> Drop for UndoGuard<U> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.state.undo();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts its undos; fails them when asked.
    struct Counted(Arc<AtomicUsize>, bool);

    impl Undo for Counted {
        fn undo(&mut self) -> Result<String, FaultError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            if self.1 {
                return Err(FaultError::NotInEffect {
                    fault: "t".into(),
                    found: "still there".into(),
                });
            }
            Ok(format!("undone {n}"))
        }
    }

    fn failed() -> FaultError {
        FaultError::NotInEffect {
            fault: "t".into(),
            found: "nothing".into(),
        }
    }

    #[test]
    fn heal_undoes_once_and_drop_does_not_again() {
        let n = Arc::new(AtomicUsize::new(0));
        let g = UndoGuard::inject("t".into(), Counted(n.clone(), false), |_| {
            Ok((monotonic_ns(), "in effect".into()))
        })
        .unwrap();
        assert_eq!(g.onset().evidence, "in effect");
        assert!(g.onset().confirmed_ns >= g.onset().requested_ns);
        let healed = g.heal().unwrap();
        assert_eq!(healed.evidence, "undone 1");
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn drop_undoes_a_guard_never_healed() {
        let n = Arc::new(AtomicUsize::new(0));
        let g = UndoGuard::inject("t".into(), Counted(n.clone(), false), |_| {
            Ok((monotonic_ns(), String::new()))
        })
        .unwrap();
        drop(g);
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failed_apply_is_undone_at_once_and_a_failed_undo_is_attached() {
        let n = Arc::new(AtomicUsize::new(0));
        let e = UndoGuard::inject("t".into(), Counted(n.clone(), false), |_| Err(failed()))
            .err()
            .unwrap();
        assert!(matches!(e, FaultError::NotInEffect { .. }), "{e:?}");
        assert_eq!(n.load(Ordering::SeqCst), 1);
        let e = UndoGuard::inject("t".into(), Counted(n.clone(), true), |_| Err(failed()))
            .err()
            .unwrap();
        assert!(matches!(e, FaultError::InjectUndo { .. }), "{e:?}");
        assert_eq!(n.load(Ordering::SeqCst), 2);
    }
}
