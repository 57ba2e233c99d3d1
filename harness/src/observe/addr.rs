//! Placeholder for the address observer's record (the observer lands next).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// A change in whether a node holds an IP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrSeen {
    /// CLOCK_MONOTONIC ns of the poll that saw it.
    pub t: u64,
    /// The node.
    pub node: String,
    /// The IP.
    pub ip: Ipv4Addr,
    /// Configured on an interface that is up.
    pub held: bool,
    /// The interface.
    pub iface: String,
}
