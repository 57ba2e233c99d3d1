//! Fault injectors for faultline and the kernel plumbing they stand on:
//! cgroups (v1 hybrid and v2), named network namespaces, process launch
//! with a single central reaper, and host capability probes.
//!
//! This crate knows nothing about suites, plans, traces or reports: it
//! offers mechanisms, and the harness decides when to use them.
#![deny(missing_docs)]

pub mod cgroup;
pub mod cpu;
pub mod crash;
pub mod delay;
pub mod fault;
pub mod freeze;
pub mod guard;
pub mod helper;
pub mod host;
pub mod link;
pub mod lock;
pub mod loss;
pub mod memory;
pub mod netns;
pub mod nft;
pub mod partition;
pub mod scanner;
pub mod stop;
pub mod udp_probe;

/// The clock, process launch and reaping live in `faultline-sys`, which the
/// agent shares; they are re-exported here for the harness.
pub use faultline_sys::{clock, process, rtnl};

#[cfg(test)]
mod net_tests;
#[cfg(test)]
pub(crate) mod testutil;
