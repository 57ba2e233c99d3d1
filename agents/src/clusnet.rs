//! ClusNet's node heartbeats: the watchdog, not the service, sends this
//! node's heartbeats to every peer on both networks, as the kernel-mode
//! driver does in the modelled system (seed 001). A hung service therefore
//! does not stop them, and its peers do not notice the hang until the
//! watchdog acts: terminating the service ends them (the node leaves the
//! cluster with its virtual IP still configured, seed 002), a bugcheck
//! fences the node. A service that stops or dies ends them too.
//!
//! It sends only; receiving and membership stay in the service. No file I/O:
//! it is on the watchdog's hot path.

use std::net::{SocketAddr, UdpSocket};

use crate::cluster::wire::{ClusterKey, ClusterMessage, Network, NodeId};
use crate::launch::ClusterConfig;

/// The heartbeats of one node.
pub struct NodeHeartbeats {
    key: ClusterKey,
    me: NodeId,
    /// Per network: a socket bound to this node's address there, and every
    /// peer's address on it.
    nets: Vec<(Network, UdpSocket, Vec<SocketAddr>)>,
    interval_ns: u64,
    seq: u64,
    incarnation: Option<u64>,
    /// Datagrams the kernel refused (no route while a link is down, ...).
    pub send_errors: u64,
}

impl NodeHeartbeats {
    /// Binds a sending socket on each of this node's addresses.
    pub fn new(cfg: &ClusterConfig) -> Result<Self, String> {
        let key =
            ClusterKey::from_hex(&cfg.key_hex).ok_or("the cluster key is not hex of 16+ bytes")?;
        let mine = cfg
            .nodes
            .iter()
            .find(|n| n.id == cfg.node_id)
            .ok_or_else(|| format!("node {} is not in the cluster", cfg.node_id))?;
        let mut nets = Vec::new();
        for net in [Network::Public, Network::Private] {
            let ip_of = |n: &crate::launch::ClusterNode| match net {
                Network::Public => n.public_ip,
                Network::Private => n.private_ip,
            };
            let sock = UdpSocket::bind((ip_of(mine), 0))
                .map_err(|e| format!("bind {}: {e}", ip_of(mine)))?;
            sock.set_nonblocking(true)
                .map_err(|e| format!("non-blocking socket: {e}"))?;
            let peers = cfg
                .nodes
                .iter()
                .filter(|n| n.id != cfg.node_id)
                .map(|n| SocketAddr::from((ip_of(n), cfg.port)))
                .collect();
            nets.push((net, sock, peers));
        }
        Ok(NodeHeartbeats {
            key,
            me: NodeId(cfg.node_id),
            nets,
            interval_ns: cfg.node_heartbeat_ms.max(1) * 1_000_000,
            seq: 0,
            incarnation: None,
            send_errors: 0,
        })
    }

    /// The interval between heartbeats, ns.
    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    /// A service started as `incarnation`: heartbeat on its behalf.
    pub fn start(&mut self, incarnation: u64) {
        self.incarnation = Some(incarnation);
    }

    /// The service stopped or died: the node leaves the cluster.
    pub fn stop(&mut self) {
        self.incarnation = None;
    }

    /// Whether heartbeats are being sent.
    pub fn active(&self) -> bool {
        self.incarnation.is_some()
    }

    /// Sends one heartbeat on every network to every peer.
    pub fn beat(&mut self) {
        let Some(incarnation) = self.incarnation else {
            return;
        };
        self.seq += 1;
        for (network, sock, peers) in &self.nets {
            let msg = ClusterMessage::Heartbeat {
                from: self.me,
                network: *network,
                seq: self.seq,
                incarnation,
            };
            let Ok(bytes) = msg.encode(&self.key) else {
                continue;
            };
            for peer in peers {
                if sock.send_to(&bytes, peer).is_err() {
                    self.send_errors += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::wire::Inbox;
    use crate::launch::{ArpSettings, ClusterNode};
    use std::net::Ipv4Addr;

    fn cfg(port: u16) -> ClusterConfig {
        let node = |id: u32| ClusterNode {
            id,
            name: format!("n{id}"),
            public_ip: Ipv4Addr::LOCALHOST,
            private_ip: Ipv4Addr::LOCALHOST,
            votes: 1,
        };
        ClusterConfig {
            node_id: 1,
            nodes: vec![node(1), node(2)],
            witness: None,
            key_hex: "00112233445566778899aabbccddeeff".into(),
            port,
            node_heartbeat_ms: 200,
            missed_heartbeats: 6,
            groups: vec![],
            arp: ArpSettings {
                probe: true,
                probe_num: 1,
                probe_interval_ms: 1,
                probe_wait_ms: 1,
                announce_num: 1,
                announce_interval_ms: 1,
            },
            failover_window_ms: 1,
            shared_dir: "/nonexistent".into(),
        }
    }

    #[test]
    fn beats_only_while_a_service_is_alive_and_peers_can_authenticate_them() {
        let peer = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        peer.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let port = peer.local_addr().unwrap().port();
        let c = cfg(port);
        let mut hb = NodeHeartbeats::new(&c).unwrap();
        assert_eq!(hb.interval_ns(), 200_000_000);
        hb.beat();
        peer.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        assert!(peer.recv(&mut buf).is_err(), "no service yet: nothing sent");
        peer.set_nonblocking(false).unwrap();

        hb.start(42);
        hb.beat();
        let mut inbox = Inbox::new(ClusterKey::from_hex(&c.key_hex).unwrap());
        let mut seen = Vec::new();
        for _ in 0..2 {
            let n = peer.recv(&mut buf).unwrap();
            seen.push(inbox.accept(&buf[..n]).unwrap());
        }
        assert!(seen.iter().all(|m| matches!(
            m,
            ClusterMessage::Heartbeat {
                from: NodeId(1),
                incarnation: 42,
                seq: 1,
                ..
            }
        )));

        hb.stop();
        hb.beat();
        peer.set_nonblocking(true).unwrap();
        assert!(peer.recv(&mut buf).is_err(), "service gone: nothing sent");
    }

    #[test]
    fn a_bad_key_is_refused() {
        let mut c = cfg(1);
        c.key_hex = "zz".into();
        assert!(NodeHeartbeats::new(&c).is_err());
    }
}
