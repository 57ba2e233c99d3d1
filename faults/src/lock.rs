//! The lock fault: a helper process in the node's workload cgroup holds an
//! exclusive lock (`flock`, OFD or POSIX) on a file of the node, its
//! configuration database by default, for the fault's window; the service
//! blocks on it at its next database access (it takes a shared `flock`
//! and a shared OFD lock, `agents/src/service/db.rs`).
//!
//! Onset is the lock seen held: the holder's `/proc/PID/fdinfo/FD` `lock:`
//! line (which also shows OFD locks, whose `/proc/locks` pid is -1). The
//! evidence adds the service found blocked on it (`/proc/PID/wchan` and
//! `syscall`, KERNEL.md) when that happens within [`BLOCKED_WITHIN`].
//! Healing ends the holder and reads back that the lock is gone; a failed
//! injection and a guard dropped unhealed do the same ([`UndoGuard`]).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cgroup::Cgroup;
use crate::clock::monotonic_ns;
use crate::fault::{Fault, FaultError, FaultGuard};
use crate::guard::{Undo, UndoGuard};
use crate::helper::child::HelperChild;

/// How long the holder may take to get the lock.
const READY_WITHIN: Duration = Duration::from_secs(5);
/// How long inject waits to see the service blocked on the lock.
pub const BLOCKED_WITHIN: Duration = Duration::from_secs(1);

/// The kind of lock held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    /// flock(2) `LOCK_EX`.
    Flock,
    /// An open file description lock (`F_OFD_SETLKW`, `F_WRLCK`).
    Ofd,
    /// A POSIX record lock (`F_SETLKW`, `F_WRLCK`).
    Posix,
}

impl LockKind {
    /// Its name in suites and on the helper's command line.
    pub fn name(self) -> &'static str {
        match self {
            LockKind::Flock => "flock",
            LockKind::Ofd => "ofd",
            LockKind::Posix => "posix",
        }
    }

    /// The `/proc/locks` type word.
    fn proc_word(self) -> &'static str {
        match self {
            LockKind::Flock => "FLOCK",
            LockKind::Ofd => "OFDLCK",
            LockKind::Posix => "POSIX",
        }
    }
}

/// Holds an exclusive lock on `file` from a helper in the node.
#[derive(Debug, Clone)]
pub struct Lock {
    /// The kind of lock.
    pub kind: LockKind,
    /// The locked file.
    pub file: PathBuf,
    /// The program that runs helpers (`faultline`).
    pub program: PathBuf,
    /// The helper's lifetime (it ends by itself after this).
    pub lifetime: Duration,
    /// The node's namespace file.
    pub netns: PathBuf,
    /// The node's workload cgroup, where the holder runs.
    pub workload: Cgroup,
    /// The node's service cgroup, whose processes should block.
    pub service: Cgroup,
}

/// The `lock:` line of `/proc/PID/fdinfo/FD` for an exclusive lock of
/// `kind` on inode `ino`, if there is one.
pub fn held_line(fdinfo: &str, kind: LockKind, ino: u64) -> Option<String> {
    fdinfo
        .lines()
        .filter(|l| l.starts_with("lock:"))
        .find(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            // lock:  1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF
            w.len() >= 7
                && w[2] == kind.proc_word()
                && w[4] == "WRITE"
                && w[6].rsplit(':').next() == Some(&ino.to_string())
        })
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Whether a process is blocked on a lock: `(wchan, syscall number)` when
/// its wait channel and syscall say so (flock 73 in `locks_lock_inode_wait`,
/// fcntl 72 in `fcntl_setlk`).
pub fn blocked_on_lock(pid: i32) -> Option<(String, String)> {
    let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).ok()?;
    let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
    let nr = syscall.split_whitespace().next()?.to_string();
    let blocked = (wchan.contains("lock") || wchan.contains("setlk")) && (nr == "72" || nr == "73");
    blocked.then_some((wchan.trim().to_string(), nr))
}

impl Fault for Lock {
    fn describe(&self) -> String {
        format!("lock ({}) {}", self.kind.name(), self.file.display())
    }

    fn inject(&self) -> Result<Box<dyn FaultGuard>, FaultError> {
        let state = LockGuard {
            fault: self.clone(),
            child: None,
        };
        UndoGuard::inject(self.describe(), state, LockGuard::apply)
    }
}

/// A held lock; the holder is killed on heal or drop ([`UndoGuard`]).
#[derive(Debug)]
struct LockGuard {
    fault: Lock,
    child: Option<HelperChild>,
}

impl LockGuard {
    /// Starts the holder, reads its lock back and looks for the service
    /// blocked on it: (confirmed ns, evidence), confirmed when the lock is
    /// seen held.
    fn apply(&mut self) -> Result<(u64, String), FaultError> {
        let f = &self.fault;
        let helper_err = |source| FaultError::Helper {
            fault: f.describe(),
            source,
        };
        let ino = std::fs::metadata(&f.file)
            .map_err(|e| FaultError::NotInEffect {
                fault: f.describe(),
                found: format!("cannot stat {}: {e}", f.file.display()),
            })?
            .ino();
        let spawn = crate::helper::command(
            &f.program,
            "lock",
            f.lifetime,
            &[
                "--kind".into(),
                f.kind.name().into(),
                "--file".into(),
                f.file.display().to_string(),
            ],
        )
        .netns(&f.netns)
        .cgroup_procs(f.workload.procs_files())
        // Gone with the harness at once; its own deadline covers the rest.
        .parent_death_signal(libc::SIGKILL);
        let child = self
            .child
            .insert(HelperChild::start(spawn).map_err(helper_err)?);
        let (_, ready) = child
            .expect(READY_WITHIN, "ready FD", |(_, l)| l.starts_with("ready "))
            .map_err(helper_err)?;
        let fd = ready.trim_start_matches("ready ").trim().to_string();
        let fdinfo_path = format!("/proc/{}/fdinfo/{fd}", child.pid);
        let fdinfo = std::fs::read_to_string(&fdinfo_path).unwrap_or_default();
        let Some(line) = held_line(&fdinfo, f.kind, ino) else {
            return Err(FaultError::NotInEffect {
                fault: f.describe(),
                found: format!("no exclusive lock in {fdinfo_path}: {}", fdinfo.trim()),
            });
        };
        let confirmed_ns = monotonic_ns();
        let mut evidence = format!("holder pid {}: {fdinfo_path}: {line}", child.pid);
        let until = Instant::now() + BLOCKED_WITHIN;
        let blocked = loop {
            let found = f
                .service
                .pids()
                .unwrap_or_default()
                .into_iter()
                .find_map(|p| blocked_on_lock(p).map(|b| (p, b)));
            if found.is_some() || Instant::now() >= until {
                break found;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        match blocked {
            Some((pid, (wchan, nr))) => evidence.push_str(&format!(
                "; service pid {pid} blocked on it: wchan {wchan}, syscall {nr}"
            )),
            None => evidence.push_str(&format!(
                "; no service process seen blocked on it within {BLOCKED_WITHIN:?}"
            )),
        }
        Ok((confirmed_ns, evidence))
    }
}

impl Undo for LockGuard {
    /// Kills the holder and reads back that `/proc/locks` lists no lock
    /// of it.
    fn undo(&mut self) -> Result<String, FaultError> {
        let Some(child) = self.child.as_mut() else {
            return Ok("no lock holder was started".into());
        };
        let pid = child.pid;
        let status = child.stop(libc::SIGKILL, Duration::from_secs(2));
        let Some(status) = status else {
            return Err(FaultError::NotInEffect {
                fault: self.fault.describe(),
                found: format!("lock holder pid {pid} still alive after SIGKILL"),
            });
        };
        let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
        let mine = format!(" {pid} ");
        if locks.lines().any(|l| l.contains(&mine)) {
            return Err(FaultError::NotInEffect {
                fault: self.fault.describe(),
                found: format!("/proc/locks still lists pid {pid}"),
            });
        }
        Ok(format!(
            "lock holder pid {pid} ended ({status}); /proc/locks lists no lock of it"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fdinfo_lock_line_is_found_by_kind_and_inode() {
        let info = "pos:\t0\nflags:\t02\nlock:\t1: OFDLCK  ADVISORY  WRITE -1 00:2a:5678 0 EOF\n";
        assert_eq!(
            held_line(info, LockKind::Ofd, 5678).as_deref(),
            Some("lock: 1: OFDLCK ADVISORY WRITE -1 00:2a:5678 0 EOF")
        );
        assert_eq!(held_line(info, LockKind::Ofd, 567), None);
        assert_eq!(held_line(info, LockKind::Flock, 5678), None);
        let read = "lock:\t1: FLOCK  ADVISORY  READ 12 00:2a:5678 0 EOF\n";
        assert_eq!(held_line(read, LockKind::Flock, 5678), None);
    }
}
