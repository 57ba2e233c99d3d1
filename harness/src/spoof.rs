//! The forged-poison fault: an intruder on the public network (the run's
//! client namespace) sends a node poison packets that claim to come from
//! another node, authenticated with a key that is not the cluster's. The
//! node must log them as rejected and stop nothing (`events` checks say so).
//!
//! It sends only inside the run's own namespaces, only to the target node,
//! and a fixed, small number of datagrams.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;

use faultline_agent::clock::monotonic_ns;
use faultline_agent::cluster::wire::{ClusterKey, ClusterMessage, NodeId, PoisonReason};
use faultline_faults::fault::{Fault, FaultError, FaultGuard, Healed, Onset};

use faultline_sys::netns;

/// How many forged packets one injection sends.
const PACKETS: usize = 3;

/// Forged poison packets from `from_ns` to `target`.
#[derive(Debug, Clone)]
pub struct ForgedPoison {
    /// The intruder's namespace (the run's client namespace).
    pub from_ns: PathBuf,
    /// The node's address and cluster port.
    pub target: SocketAddrV4,
    /// The node claimed as sender.
    pub claimed_from: u32,
    /// The poisoned node's id.
    pub to: u32,
}

impl ForgedPoison {
    fn send(&self) -> Result<usize, String> {
        let me = self.clone();
        // setns changes only the calling thread: use a thread of its own.
        std::thread::spawn(move || -> Result<usize, String> {
            netns::enter(&me.from_ns).map_err(|e| faultline_sys::error::chain(&e))?;
            let wrong = ClusterKey::new(monotonic_ns().to_le_bytes().repeat(4))
                .map_err(|e| e.to_string())?;
            let msg = ClusterMessage::Poison {
                from: NodeId(me.claimed_from),
                to: NodeId(me.to),
                reason: PoisonReason::Evicted,
            };
            let bytes = msg.encode(&wrong).map_err(|e| e.to_string())?;
            let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| e.to_string())?;
            let mut sent = 0;
            for _ in 0..PACKETS {
                sock.send_to(&bytes, me.target)
                    .map_err(|e| format!("send to {}: {e}", me.target))?;
                sent += 1;
            }
            Ok(sent)
        })
        .join()
        .map_err(|_| "the sending thread panicked".to_string())?
    }
}

impl Fault for ForgedPoison {
    fn describe(&self) -> String {
        format!(
            "forged poison to {} claiming node {}",
            self.target, self.claimed_from
        )
    }

    fn inject(&self) -> Result<Box<dyn FaultGuard>, FaultError> {
        let requested_ns = monotonic_ns();
        let sent = self.send().map_err(|found| FaultError::NotInEffect {
            fault: self.describe(),
            found,
        })?;
        Ok(Box::new(Sent {
            onset: Onset {
                requested_ns,
                confirmed_ns: monotonic_ns(),
                evidence: format!(
                    "{sent} poison packet(s) claiming node {} sent to {} with a key that is not the cluster's",
                    self.claimed_from, self.target
                ),
            },
        }))
    }
}

/// Packets once sent cannot be unsent: healing is a no-op.
struct Sent {
    onset: Onset,
}

impl FaultGuard for Sent {
    fn onset(&self) -> &Onset {
        &self.onset
    }

    fn heal(self: Box<Self>) -> Result<Healed, FaultError> {
        let t = monotonic_ns();
        Ok(Healed {
            requested_ns: t,
            confirmed_ns: t,
            evidence: "nothing to undo: the packets were sent".into(),
        })
    }
}
