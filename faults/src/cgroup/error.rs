//! The error type of every cgroup operation.
//!
//! Each variant names the file or group involved; causes are attached as
//! sources, not pasted into messages.

use std::io;
use std::path::PathBuf;

/// A cgroup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No cgroup filesystem is mounted.
    #[error("no cgroup filesystem found in {path}")]
    NoCgroupMount {
        /// The mount table read.
        path: PathBuf,
    },
    /// Reading a cgroup file or folder failed.
    #[error("cannot read {path}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing a cgroup file failed.
    #[error("cannot write {value:?} to {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Creating a group folder failed.
    #[error("cannot create cgroup {path}")]
    Create {
        /// The folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Removing a group folder failed.
    #[error("cannot remove cgroup {path}")]
    Remove {
        /// The folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file held something unexpected.
    #[error("cannot parse {path}: {text:?}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it held.
        text: String,
    },
    /// The group does not exist.
    #[error("cgroup {path} does not exist")]
    Missing {
        /// The folder.
        path: PathBuf,
    },
    /// Neither `cgroup.freeze` nor a v1 freezer exists for the group.
    #[error("no freezer for cgroup {rel}")]
    NoFreezer {
        /// The group's relative path.
        rel: PathBuf,
    },
    /// The freezer state did not reach the wanted value in time.
    #[error("{path} did not read back {wanted:?} within {waited_ms} ms (last: {last:?})")]
    StateTimeout {
        /// The file polled.
        path: PathBuf,
        /// The state waited for.
        wanted: String,
        /// How long it waited.
        waited_ms: u64,
        /// The last state read.
        last: String,
    },
    /// Processes remained in the group after killing it.
    #[error("processes {pids:?} remain in cgroup {rel} after {waited_ms} ms")]
    KillTimeout {
        /// The group's relative path.
        rel: PathBuf,
        /// The processes left.
        pids: Vec<i32>,
        /// How long it waited.
        waited_ms: u64,
    },
    /// The group has no folder with this controller's files (on a v2
    /// mount without the controller enabled, for one).
    #[error("no {controller} controller for cgroup {rel}")]
    NoController {
        /// The group's relative path.
        rel: PathBuf,
        /// The controller, like `memory`.
        controller: &'static str,
    },
    /// The operation exists only on the other cgroup version.
    #[error("{what} needs cgroup {needs} (cgroup {rel})")]
    WrongVersion {
        /// The group's relative path.
        rel: PathBuf,
        /// What was asked, like `memory.oom_control`.
        what: &'static str,
        /// The version it needs, `v1` or `v2`.
        needs: &'static str,
    },
    /// The host's RT budget cannot cover a grant: the root's
    /// `cpu.rt_runtime_us`, less what other top-level groups hold, is less
    /// than the top group of the path would need.
    #[error(
        "not enough RT time for {asked_us} µs per second to {rel}: {top} would need \
         {top_need_us} µs, but the host's budget ({root_us} µs at the root's \
         cpu.rt_runtime_us) leaves it {available_us} µs; held: {}",
        describe_holders(holders)
    )]
    RtBudget {
        /// The group asked for.
        rel: PathBuf,
        /// What was asked for it, per period.
        asked_us: i64,
        /// The group below the root on its path (like `faultline`).
        top: PathBuf,
        /// What that group would need to hold.
        top_need_us: i64,
        /// What the root leaves for it.
        available_us: i64,
        /// The root's value.
        root_us: i64,
        /// Who holds RT time: the root's other children and the top
        /// group's children (other runs), with their µs.
        holders: Vec<(String, i64)>,
    },
}

fn describe_holders(holders: &[(String, i64)]) -> String {
    if holders.is_empty() {
        return "nothing".into();
    }
    holders
        .iter()
        .map(|(who, us)| format!("{who} {us} µs"))
        .collect::<Vec<_>>()
        .join(", ")
}
