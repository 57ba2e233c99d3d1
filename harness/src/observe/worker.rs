//! The thread every observer runs on: named, set up on the thread itself
//! (entering a namespace, `faultline_sys::netns`, affects only the calling
//! thread), `start` returning only once that setup worked or failed, and a
//! stop flag the loop checks. Its own failures (no thread, a panic) are one
//! error type every observer shares. It knows nothing about what is observed.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// An observer's thread could not run.
#[derive(Debug, thiserror::Error)]
pub enum ThreadError {
    /// The thread could not be created.
    #[error("cannot start the {name} thread")]
    Spawn {
        /// The thread's name.
        name: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The thread panicked.
    #[error("the {name} thread panicked")]
    Panicked {
        /// The thread's name.
        name: String,
    },
}

/// Why an observer thread did not start.
#[derive(Debug)]
pub(crate) enum StartFailure<E> {
    /// Its setup failed.
    Setup(E),
    /// The thread could not be created, or panicked during setup.
    Thread(ThreadError),
}

impl<E: From<ThreadError>> StartFailure<E> {
    /// The observer's own error, whichever way it failed.
    pub(crate) fn into_error(self) -> E {
        match self {
            StartFailure::Setup(e) => e,
            StartFailure::Thread(t) => t.into(),
        }
    }
}

/// A running observer thread returning `T` when it ends.
#[derive(Debug)]
pub(crate) struct Worker<T> {
    name: String,
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
            .map_err(|source| {
                StartFailure::Thread(ThreadError::Spawn {
                    name: name.into(),
                    source,
                })
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Worker {
                name: name.into(),
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(StartFailure::Setup(e))
            }
            Err(_) => {
                let _ = thread.join();
                Err(StartFailure::Thread(ThreadError::Panicked {
                    name: name.into(),
                }))
            }
        }
    }

    /// Sets the stop flag and waits for the thread: what `run` returned,
    /// `Ok(None)` if it was already stopped, an error if it panicked.
    pub(crate) fn stop(&mut self) -> Result<Option<T>, ThreadError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| ThreadError::Panicked {
                name: self.name.clone(),
            }),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_failure_comes_back_from_start() {
        let r = Worker::<()>::start("t", || Err::<(), _>("no"), |_, _| ());
        assert!(matches!(r, Err(StartFailure::Setup("no"))));
    }

    #[test]
    fn a_panic_in_setup_or_run_is_a_thread_error_naming_the_thread() {
        let r = Worker::<()>::start("fl-t", || -> Result<(), ()> { panic!("setup") }, |_, _| ());
        let Err(StartFailure::Thread(e)) = r else {
            panic!("a panic in setup must be a thread error");
        };
        assert_eq!(e.to_string(), "the fl-t thread panicked");
        let mut w = Worker::start("fl-u", || Ok::<(), ()>(()), |(), _| panic!("run")).unwrap();
        let e = w.stop().unwrap_err();
        assert!(matches!(e, ThreadError::Panicked { ref name } if name == "fl-u"));
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
        assert_eq!(w.stop().unwrap(), Some(42));
        assert_eq!(w.stop().unwrap(), None);
    }
}
