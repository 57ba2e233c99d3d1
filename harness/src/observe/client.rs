//! Placeholder for the client's record (the client lands next).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// One attempt of the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientProbe {
    /// When the attempt started.
    pub t: u64,
    /// When it finished.
    pub done: u64,
    /// The group.
    pub group: String,
    /// Its IP.
    pub ip: Ipv4Addr,
    /// The answer (the serving node's name).
    pub answered_by: Option<String>,
    /// Why nobody answered.
    pub error: Option<String>,
}
