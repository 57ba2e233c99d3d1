//! Cluster membership between nodes' services, as pure logic: the
//! authenticated messages nodes exchange ([`wire`]), the per-node membership
//! and quorum state machine ([`membership`]) and the global update manager
//! ([`gum`]).
//!
//! Nothing here opens a socket or reads a clock: the service's event loop
//! receives datagrams, passes them through a [`wire::Inbox`], feeds the
//! messages and the time (CLOCK_MONOTONIC ns) to the state machines, and
//! carries out the actions they return (send, log, stop resources, stop the
//! service).

pub mod gum;
pub mod membership;
pub mod wire;
