//! Observers: what the harness sees on the wire from outside every node,
//! independent of what the agents report about themselves.
//!
//! An observer only records; it never sends a frame, never changes a
//! namespace's configuration, and judges nothing (checks do, over the trace).

pub mod addr;
pub mod arp;
pub mod client;
mod rtnl;
