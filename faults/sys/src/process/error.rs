//! The error type of launching and running processes.
//!
//! Each variant names the program or file involved; causes are attached
//! as sources.

use std::io;
use std::path::PathBuf;

/// Launching a process failed.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The program is not on `PATH` or does not exist.
    #[error("program {program} not found")]
    NotFound {
        /// The program as given.
        program: PathBuf,
    },
    /// The program is not an executable file.
    #[error("{path} is not an executable file")]
    NotExecutable {
        /// The resolved path.
        path: PathBuf,
    },
    /// A path holds a NUL byte.
    #[error("path {path:?} holds a nul byte")]
    NulInPath {
        /// The path.
        path: PathBuf,
    },
    /// The network namespace could not be opened.
    #[error("cannot open network namespace {path}")]
    OpenNetns {
        /// The namespace file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A pipe could not be made.
    #[error("cannot create a pipe to launch {program}")]
    Pipe {
        /// The program.
        program: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// fork or exec failed.
    #[error("cannot spawn {program}")]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A step between fork and exec failed; the child exited with 127.
    #[error("cannot {step} for {program}{}", path.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default())]
    Setup {
        /// The program.
        program: PathBuf,
        /// What failed, like "join cgroup".
        step: &'static str,
        /// The file involved, if any.
        path: Option<PathBuf>,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading the child's output failed.
    #[error("cannot read the output of {program}")]
    ReadOutput {
        /// The program.
        program: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The reaper dropped the child's exit.
    #[error("the reaper lost the exit of {program} (pid {pid})")]
    ReaperLost {
        /// The program.
        program: PathBuf,
        /// Its pid.
        pid: i32,
    },
    /// `PR_SET_CHILD_SUBREAPER` failed.
    #[error("cannot become a child subreaper")]
    Subreaper {
        /// The cause.
        #[source]
        source: io::Error,
    },
}
