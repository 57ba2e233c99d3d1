//! Fault helper processes: the spinners, leakers, lock holders, scanners
//! and packet delayers
//! some faults run inside a node (in its namespace and `workload` cgroup).
//!
//! A helper is started as `faultline helper NAME --deadline-ms N [ARGS...]`
//! (the `faultline` binary re-executed, so there is one program to find);
//! [`main`] arms `alarm(2)` for the deadline before it runs the helper, so
//! every helper ends by itself even if the harness is killed with SIGKILL,
//! and `faultline cleanup` finds any still alive through the run's cgroups.
//!
//! A helper does one thing and reports readiness on stdout when asked to;
//! it never decides whether a fault took effect: the fault reads that back
//! from the kernel.

mod delay;
mod leak;
mod running;
mod spin;

pub use running::Running;

use std::path::Path;
use std::time::{Duration, Instant};

use crate::process::Spawn;

pub mod child;
pub mod lock;
pub mod scanner;

/// When a helper must have ended, whatever happens.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    /// The moment, on this process's monotonic clock.
    pub at: Instant,
}

impl Deadline {
    /// Time left, zero once passed.
    pub fn left(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether it has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }
}

/// A helper's entry point: its deadline and its own arguments.
pub type HelperFn = fn(Deadline, &[String]) -> Result<(), String>;

/// Every helper this build has, by name.
pub static HELPERS: &[(&str, HelperFn)] = &[
    ("scanner", scanner::run),
    ("lock", lock::run),
    ("spin", spin::run),
    ("leak", leak::run),
    ("delay", delay::run),
];

/// The command line that starts helper `name` with `args`, ending by itself
/// after `lifetime`; the caller adds namespace, cgroup and output. The
/// helper leads a session of its own, as node processes do: a Ctrl-C at the
/// terminal reaches the harness, which heals the fault, and not the helper
/// behind the harness's back.
pub fn command(program: &Path, name: &str, lifetime: Duration, args: &[String]) -> Spawn {
    Spawn::new(program)
        .new_session()
        .arg("helper")
        .arg(name)
        .arg("--deadline-ms")
        .arg(lifetime.as_millis().max(1).to_string())
        .args(args)
}

/// Runs the helper named by `args[0]` (`NAME --deadline-ms N ARGS...`);
/// returns the process's exit code: 0 done, 2 bad arguments, 1 it failed.
pub fn main(args: &[String]) -> i32 {
    let (Some(name), Some(flag), Some(ms)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("usage: faultline helper NAME --deadline-ms N [ARGS...]");
        return 2;
    };
    let Some(ms) = (flag == "--deadline-ms")
        .then(|| ms.parse::<u64>().ok())
        .flatten()
        .filter(|ms| *ms > 0)
    else {
        eprintln!("faultline helper {name}: --deadline-ms N (N > 0) must come first");
        return 2;
    };
    let Some((_, run)) = HELPERS.iter().find(|(n, _)| n == name) else {
        let known: Vec<&str> = HELPERS.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "faultline helper: unknown helper `{name}` (known: {})",
            known.join(", ")
        );
        return 2;
    };
    let lifetime = Duration::from_millis(ms);
    // SAFETY: alarm(2) has no memory effects; SIGALRM's default action
    // ends the process, which is the point: a deadline nobody can miss.
    unsafe { libc::alarm(lifetime.as_secs().saturating_add(1).min(u32::MAX as u64) as u32) };
    let deadline = Deadline {
        at: Instant::now() + lifetime,
    };
    match run(deadline, &args[3..]) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("faultline helper {name}: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_exit_2_and_never_run_anything() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(main(&s(&[])), 2);
        assert_eq!(main(&s(&["spin"])), 2);
        assert_eq!(main(&s(&["spin", "--deadline-ms", "0"])), 2);
        assert_eq!(main(&s(&["spin", "--deadline-ms", "x"])), 2);
        assert_eq!(main(&s(&["no-such-helper", "--deadline-ms", "10"])), 2);
    }

    #[test]
    fn a_helper_leads_its_own_session_so_a_terminals_ctrl_c_passes_it_by() {
        let spawn = command(Path::new("faultline"), "spin", Duration::from_secs(1), &[]);
        assert!(spawn.new_session);
        let args: Vec<_> = spawn.args.iter().map(|a| a.to_string_lossy()).collect();
        assert_eq!(args, ["helper", "spin", "--deadline-ms", "1000"]);
    }
}
