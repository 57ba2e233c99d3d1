//! The kernel plumbing that both the harness (through `faultline-faults`)
//! and the node agent stand on, each piece in one place: the clock every
//! record is stamped with, launching a process into cgroups and a network
//! namespace (with the one reaper thread, or reaped by its caller), the
//! child subreaper, entering a network namespace on the calling thread, and
//! the text of an error with its causes.
//!
//! It knows nothing about faults, suites, traces or the agent's roles, and
//! holds no policy: each call does one thing and reports what failed.
#![deny(missing_docs)]

pub mod clock;
pub mod error;
pub mod netns;
pub mod process;
pub mod rtnl;
