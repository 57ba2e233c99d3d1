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
}
