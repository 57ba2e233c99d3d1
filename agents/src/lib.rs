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
//! The harness links only [`protocol`], [`events`] and [`launch`]: the data
//! that crosses between the harness and a node. Nothing here knows about
//! suites, traces or checks.
#![deny(missing_docs)]

pub mod clock;
pub mod events;
pub mod launch;
pub mod protocol;
