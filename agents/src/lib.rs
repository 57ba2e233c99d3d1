//! The reference node agent of faultline.
//!
//! One binary, `faultline-agent`, plays three roles on a node (see
//! `../shared/MODEL.md`, "A node"):
//!
//! - `supervisor`: the node's service manager; starts the watchdog and the
//!   service, restarts the service after it dies (event 7031);
//! - `service`: the user-mode cluster service (ClusSvc); reads the
//!   configuration database at start and heartbeats its watchdog;
//! - `watchdog`: the kernel-mode health monitor (ClusNet); real-time, memory
//!   locked, no file I/O on its hot path; takes the hang recovery action.
//!
//! The roles live in [`supervisor`], [`service`] and [`watchdog`] (with the
//! pure [`countdown`], [`dump`], [`fence`], [`emit`] and the kernel wrappers
//! in [`sys`]; process launch, the clock and the subreaper are
//! `faultline-sys`'s, which the harness shares); membership, quorum and poison packets between nodes'
//! services, as pure logic, are in [`cluster`]; group placement, as pure
//! logic, in [`groups`]; the disk lease in [`lease`]; the service's cluster
//! side (sockets, witness, groups online and offline) in [`clusvc`]. The harness uses only
//! [`protocol`], [`events`], [`launch`] and [`arp`]: the data that crosses
//! between the harness and a node, and the wire format both see. Nothing
//! here knows about
//! suites, traces or checks.
#![deny(missing_docs)]

pub mod arp;
pub mod clock;
pub mod clusnet;
pub mod cluster;
pub mod clusvc;
pub mod countdown;
pub mod dump;
pub mod emit;
pub mod events;
pub mod fence;
pub mod groups;
pub mod launch;
pub mod lease;
pub mod protocol;
pub mod service;
pub mod supervisor;
pub mod sys;
pub mod watchdog;

/// Starting or running one of the agent's roles failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The launch description or the configuration database is unusable.
    #[error(transparent)]
    Load(#[from] launch::LoadError),
    /// A kernel call failed.
    #[error("cannot {what}")]
    Io {
        /// What was being done, with the path or name involved.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A process could not be launched, or the supervisor could not become
    /// a child subreaper.
    #[error(transparent)]
    Process(#[from] faultline_sys::process::SpawnError),
    /// The service received a poison packet and stopped at once (1118).
    #[error("terminated as requested by node {0}")]
    Poisoned(u32),
}
