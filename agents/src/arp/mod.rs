//! ARP for the node and the harness: the Ethernet + ARP frame codec
//! ([`ArpFrame`]), an AF_PACKET socket on one interface ([`ArpSocket`]),
//! RFC 5227 probing ([`probe`]) and announcing ([`announce`]).
//!
//! Protocol level, so the harness may use it (its ARP observer) as well as
//! the agent (bringing a virtual IP online). It works in the calling
//! thread's network namespace and must not change it, configure addresses,
//! or know about groups and events: what a conflict means is the caller's
//! business.

mod frame;
mod probe;
mod socket;

use std::net::Ipv4Addr;
use std::time::Duration;

pub use frame::{
    ArpFrame, ArpKind, ArpOp, ArpPacket, MacAddr, MacParseError, ParseError, ETH_P_ARP, FRAME_LEN,
};
pub use probe::{announce_on, is_conflict, probe_on, ProbeOutcome, ProbeTimers};
pub use socket::{ArpSocket, Received};

/// An ARP socket operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ArpError {
    /// A kernel call failed.
    #[error("cannot {what}")]
    Io {
        /// What was being done, with the interface involved.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Probes `ip` on interface `iface` of the current network namespace
/// (RFC 5227); see [`probe_on`].
pub fn probe(iface: &str, ip: Ipv4Addr, timers: &ProbeTimers) -> Result<ProbeOutcome, ArpError> {
    probe_on(&ArpSocket::open(iface)?, ip, timers)
}

/// Announces `ip` on interface `iface` of the current network namespace
/// `count` times, `interval` apart; see [`announce_on`].
pub fn announce(iface: &str, ip: Ipv4Addr, count: u32, interval: Duration) -> Result<(), ArpError> {
    announce_on(&ArpSocket::open(iface)?, ip, count, interval)
}
