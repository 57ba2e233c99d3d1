//! A running helper process seen from the fault that started it: its pid,
//! the lines it writes (stdout and stderr, each stamped with when it was
//! read), and its exit. Dropping it kills the helper.
//!
//! It starts, reads and stops; it never decides what a line proves.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::clock::monotonic_ns;
use crate::process::{ExitStatus, Reaper, Spawn, SpawnError};

/// A helper could not be started, or did not say what it should.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// Creating its output pipe failed.
    #[error("cannot create a pipe for helper output")]
    Pipe(#[source] std::io::Error),
    /// Launching it failed.
    #[error("cannot start the helper")]
    Spawn(#[from] SpawnError),
    /// It ended before saying what was awaited.
    #[error("helper pid {pid} ended ({status}) before `{awaited}`; it said: {said}")]
    Ended {
        /// Its pid.
        pid: i32,
        /// How it ended.
        status: String,
        /// The line awaited.
        awaited: String,
        /// Everything it wrote.
        said: String,
    },
    /// It said nothing awaited within the time allowed.
    #[error("helper pid {pid} did not say `{awaited}` within {waited:?}; it said: {said}")]
    Silent {
        /// Its pid.
        pid: i32,
        /// The line awaited.
        awaited: String,
        /// How long it was given.
        waited: Duration,
        /// Everything it wrote.
        said: String,
    },
}

/// One line a helper wrote, with the `CLOCK_MONOTONIC` ns it was read.
pub type Line = (u64, String);

/// A started helper; see the module documentation.
#[derive(Debug)]
pub struct HelperChild {
    /// Its pid.
    pub pid: i32,
    lines: Receiver<Line>,
    exit: Receiver<ExitStatus>,
    /// Every line read so far.
    pub said: Vec<Line>,
    ended: Option<ExitStatus>,
}

impl HelperChild {
    /// Starts `spawn` with its stdout and stderr on a pipe this reads.
    pub fn start(spawn: Spawn) -> Result<HelperChild, HelperError> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(HelperError::Pipe(std::io::Error::last_os_error()));
        }
        // SAFETY: pipe2 just returned these two descriptors, owned by no one.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let write = File::from(write);
        let err = write.try_clone().map_err(HelperError::Pipe)?;
        let pid = spawn.stdout(write).stderr(err).spawn()?;
        let exit = Reaper::global().watch(pid);
        let (tx, lines) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name(format!("helper-{pid}"))
            .spawn(move || {
                for line in BufReader::new(File::from(read)).lines() {
                    let Ok(line) = line else { break };
                    if tx.send((monotonic_ns(), line)).is_err() {
                        break;
                    }
                }
            })
            .map_err(HelperError::Pipe)?;
        Ok(HelperChild {
            pid,
            lines,
            exit,
            said: Vec::new(),
            ended: None,
        })
    }

    /// Everything said so far, on one line.
    pub fn transcript(&self) -> String {
        let text: Vec<&str> = self.said.iter().map(|(_, l)| l.as_str()).collect();
        if text.is_empty() {
            "nothing".into()
        } else {
            text.join(" | ")
        }
    }

    /// Reads lines until one satisfies `want` (returned), for up to
    /// `within`; `Ok(None)` if the time passed with no such line while the
    /// helper lives, an error if it ended first.
    pub fn wait_for(
        &mut self,
        within: Duration,
        awaited: &str,
        mut want: impl FnMut(&Line) -> bool,
    ) -> Result<Option<Line>, HelperError> {
        let until = Instant::now() + within;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.said.push(line.clone());
                    if want(&line) {
                        return Ok(Some(line));
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Ok(None),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit(Duration::from_secs(1));
                    return Err(HelperError::Ended {
                        pid: self.pid,
                        status: status.map_or("still running".into(), |s| s.to_string()),
                        awaited: awaited.into(),
                        said: self.transcript(),
                    });
                }
            }
        }
    }

    /// Like [`HelperChild::wait_for`], but silence is an error too.
    pub fn expect(
        &mut self,
        within: Duration,
        awaited: &str,
        want: impl FnMut(&Line) -> bool,
    ) -> Result<Line, HelperError> {
        match self.wait_for(within, awaited, want)? {
            Some(line) => Ok(line),
            None => Err(HelperError::Silent {
                pid: self.pid,
                awaited: awaited.into(),
                waited: within,
                said: self.transcript(),
            }),
        }
    }

    /// Takes the lines read so far without waiting.
    pub fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.said.push(line);
        }
    }

    fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        if self.ended.is_none() {
            self.ended = self.exit.recv_timeout(within).ok();
        }
        self.ended
    }

    /// Sends `signal`, waits up to `within` for the exit (SIGKILL after
    /// that), reads what it said last; how it ended, if it did.
    pub fn stop(&mut self, signal: i32, within: Duration) -> Option<ExitStatus> {
        if self.ended.is_none() {
            // SAFETY: kill(2) on our own child, not yet reaped by the watch.
            unsafe { libc::kill(self.pid, signal) };
            if self.wait_exit(within).is_none() {
                // SAFETY: as above.
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
                self.wait_exit(within);
            }
        }
        // The pipe closes with the process; take every last line.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.said.push(line);
        }
        self.ended
    }
}

impl Drop for HelperChild {
    fn drop(&mut self) {
        if self.ended.is_none() && self.exit.try_recv().is_err() {
            // SAFETY: kill(2) on our own child; if it has just ended and been
            // reaped, the pid is not reused before the reaper's watch ends.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
    }
}
