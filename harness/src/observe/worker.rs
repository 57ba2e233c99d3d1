//! The thread every observer runs on: named, set up on the thread itself
//! (entering a namespace affects only the calling thread), `start` returning
//! only once that setup worked or failed, and a stop flag the loop checks.
//! It knows nothing about what is observed.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Why an observer thread did not start.
#[derive(Debug)]
pub(crate) enum StartFailure<E> {
    /// Its setup failed.
    Setup(E),
    /// The thread could not be created.
    Spawn(io::Error),
    /// The thread panicked during setup.
    Panicked,
}

/// A running observer thread returning `T` when it ends.
#[derive(Debug)]
pub(crate) struct Worker<T> {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Option<T>>>,
}

impl<T: Send + 'static> Worker<T> {
    /// Runs `setup` on a new thread called `name`, then, if it worked,
    /// `run` with its result and the stop flag. Returns once `setup` is done.
    pub(crate) fn start<S, E: Send + 'static>(
        name: &str,
        setup: impl FnOnce() -> Result<S, E> + Send + 'static,
        run: impl FnOnce(S, &AtomicBool) -> T + Send + 'static,
    ) -> Result<Worker<T>, StartFailure<E>> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || match setup() {
                Ok(state) => {
                    let _ = ready_tx.send(Ok(()));
                    Some(run(state, &flag))
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    None
                }
            })
            .map_err(StartFailure::Spawn)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Worker {
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(StartFailure::Setup(e))
            }
            Err(_) => {
                let _ = thread.join();
                Err(StartFailure::Panicked)
            }
        }
    }

    /// Sets the stop flag and waits for the thread: what `run` returned,
    /// `Ok(None)` if it was already stopped, `Err(())` if it panicked.
    pub(crate) fn stop(&mut self) -> Result<Option<T>, ()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| ()),
            None => Ok(None),
        }
    }
}

impl<T> Drop for Worker<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Moves the calling thread (only) into the network namespace `ns`.
pub(crate) fn enter_netns(ns: &File) -> io::Result<()> {
    // SAFETY: setns on a valid namespace descriptor; it changes only the
    // calling thread.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_failure_comes_back_from_start() {
        let r = Worker::<()>::start("t", || Err::<(), _>("no"), |_, _| ());
        assert!(matches!(r, Err(StartFailure::Setup("no"))));
    }

    #[test]
    fn run_result_comes_back_from_stop_once() {
        let mut w = Worker::start(
            "t",
            || Ok::<u32, ()>(41),
            |n, stop| {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                n + 1
            },
        )
        .unwrap();
        assert_eq!(w.stop(), Ok(Some(42)));
        assert_eq!(w.stop(), Ok(None));
    }
}
