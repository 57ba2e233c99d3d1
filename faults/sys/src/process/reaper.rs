//! The one thread that reaps every child of the process: it calls
//! `waitid(P_ALL, WEXITED)` and hands each exit to whoever watches that
//! pid and to every subscriber.
//!
//! Nothing else in a process that uses it may wait for children (std's
//! `Child::wait`, `output`, `status`): they would race with this thread.

use crossbeam_channel::{unbounded, Receiver, Sender};
use nix::errno::Errno;
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long an exit nobody has watched yet is kept for a late `watch`.
const KEEP_UNCLAIMED: Duration = Duration::from_secs(60);

/// How long the thread sleeps when the process has no children, unless
/// a spawn wakes it first.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl ExitStatus {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        *self == ExitStatus::Code(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exit code {code}"),
            ExitStatus::Signal(sig) => write!(f, "signal {sig}"),
        }
    }
}

struct Unclaimed {
    status: ExitStatus,
    seq: u64,
    at: Instant,
}

#[derive(Default)]
struct State {
    /// Number of exits reaped so far.
    seq: u64,
    watchers: HashMap<i32, Vec<Sender<ExitStatus>>>,
    unclaimed: HashMap<i32, Unclaimed>,
    subscribers: Vec<Sender<(i32, ExitStatus)>>,
    child_added: bool,
}

/// The process-wide reaper; see the module documentation.
pub struct Reaper {
    state: Mutex<State>,
    wake: Condvar,
}

static GLOBAL: OnceLock<Reaper> = OnceLock::new();

impl Reaper {
    /// The reaper, starting its thread on first use.
    pub fn global() -> &'static Reaper {
        GLOBAL.get_or_init(|| {
            std::thread::Builder::new()
                .name("faultline-reaper".into())
                .spawn(|| Reaper::global().run())
                .expect("cannot start the reaper thread");
            Reaper {
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
            }
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A receiver for the exit of `pid`. If it was reaped before this
    /// call and nobody claimed it, the status is delivered at once.
    pub fn watch(&self, pid: i32) -> Receiver<ExitStatus> {
        let (tx, rx) = unbounded();
        let mut state = self.lock();
        match state.unclaimed.remove(&pid) {
            Some(u) => {
                let _ = tx.send(u.status);
            }
            None => state.watchers.entry(pid).or_default().push(tx),
        }
        rx
    }

    /// A receiver for every exit reaped from now on.
    pub fn subscribe(&self) -> Receiver<(i32, ExitStatus)> {
        let (tx, rx) = unbounded();
        self.lock().subscribers.push(tx);
        rx
    }

    /// The count of exits reaped so far; taken before a fork.
    pub(super) fn seq(&self) -> u64 {
        self.lock().seq
    }

    /// After a fork that returned `pid`: drops an unclaimed exit of an
    /// earlier process with the same pid (reaped at or before `seq`), and
    /// wakes the thread if it idles for want of children.
    pub(super) fn forked(&self, pid: i32, seq: u64) {
        let mut state = self.lock();
        if state.unclaimed.get(&pid).is_some_and(|u| u.seq <= seq) {
            state.unclaimed.remove(&pid);
        }
        state.child_added = true;
        self.wake.notify_all();
    }

    fn deliver(&self, pid: i32, status: ExitStatus) {
        let mut state = self.lock();
        state.seq += 1;
        let seq = state.seq;
        state
            .subscribers
            .retain(|tx| tx.send((pid, status)).is_ok());
        match state.watchers.remove(&pid) {
            Some(watchers) => {
                for tx in watchers {
                    let _ = tx.send(status);
                }
            }
            None => {
                let now = Instant::now();
                state
                    .unclaimed
                    .retain(|_, u| now.duration_since(u.at) < KEEP_UNCLAIMED);
                state.unclaimed.insert(
                    pid,
                    Unclaimed {
                        status,
                        seq,
                        at: now,
                    },
                );
            }
        }
    }

    fn run(&self) {
        loop {
            match waitid(Id::All, WaitPidFlag::WEXITED) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    self.deliver(pid.as_raw(), ExitStatus::Code(code))
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    self.deliver(pid.as_raw(), ExitStatus::Signal(sig as i32))
                }
                Ok(_) | Err(Errno::EINTR) => {}
                Err(Errno::ECHILD) => {
                    let state = self.lock();
                    let mut state = if state.child_added {
                        state
                    } else {
                        self.wake
                            .wait_timeout(state, IDLE_POLL)
                            .unwrap_or_else(|e| e.into_inner())
                            .0
                    };
                    state.child_added = false;
                }
                Err(_) => std::thread::sleep(IDLE_POLL),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reaper() -> Reaper {
        Reaper {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        }
    }

    #[test]
    fn exit_reaped_before_watch_is_delivered_at_once() {
        let r = reaper();
        r.deliver(4242, ExitStatus::Code(3));
        let rx = r.watch(4242);
        assert_eq!(rx.try_recv(), Ok(ExitStatus::Code(3)));
        // Claimed once only.
        assert!(r.watch(4242).try_recv().is_err());
    }

    #[test]
    fn stale_exit_of_a_reused_pid_is_dropped_at_fork() {
        let r = reaper();
        r.deliver(77, ExitStatus::Signal(9));
        let seq = r.seq();
        r.forked(77, seq);
        assert!(r.watch(77).try_recv().is_err());
        r.deliver(77, ExitStatus::Code(0));
        assert_eq!(r.watch(78).try_recv().ok(), None);
    }

    #[test]
    fn exit_after_fork_survives_forked() {
        let r = reaper();
        let seq = r.seq();
        r.deliver(91, ExitStatus::Code(1));
        r.forked(91, seq);
        assert_eq!(r.watch(91).try_recv(), Ok(ExitStatus::Code(1)));
    }

    #[test]
    fn subscribers_see_every_exit_and_watchers_theirs() {
        let r = reaper();
        let all = r.subscribe();
        let one = r.watch(5);
        r.deliver(5, ExitStatus::Code(0));
        r.deliver(6, ExitStatus::Signal(15));
        assert_eq!(one.try_recv(), Ok(ExitStatus::Code(0)));
        let got: Vec<_> = all.try_iter().collect();
        assert_eq!(
            got,
            vec![(5, ExitStatus::Code(0)), (6, ExitStatus::Signal(15))]
        );
    }
}
