//! The lab's addressing plan: node ids, networks, interface and port names,
//! addresses, MACs, the client, ports. Every other module (validation, the
//! lab, the runner, the observers, the trace header) asks this one; none
//! writes an address, a MAC or an interface name of its own.
//!
//! Pure arithmetic: it never touches the host. To raise the node limit,
//! change [`MAX_NODES`] and the layout below (e.g. a /16 and two octets per
//! node); the const assertions and the tests say what must still hold.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::trace::TopologyNode;

/// The node networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// Clients and nodes.
    Public,
    /// Nodes only.
    Private,
}

/// Every network, in the order nodes are wired.
pub const NETWORKS: [Network; 2] = [Network::Public, Network::Private];

impl Network {
    /// The interface name inside a node (and the client), e.g. `public`.
    pub fn name(self) -> &'static str {
        match self {
            Network::Public => "public",
            Network::Private => "private",
        }
    }

    /// The suffix of a node's switch port on this network, e.g. `pub`.
    fn port_suffix(self) -> &'static str {
        match self {
            Network::Public => "pub",
            Network::Private => "prv",
        }
    }

    /// The network's number: the MAC octet that names the network.
    fn number(self) -> u8 {
        match self {
            Network::Public => 1,
            Network::Private => 2,
        }
    }

    /// The network's first three octets.
    fn prefix(self) -> [u8; 3] {
        match self {
            Network::Public => [10, 77, 0],
            Network::Private => [10, 78, 0],
        }
    }

    /// The bridge in the switch namespace, e.g. `br-public`.
    pub fn bridge(self) -> String {
        format!("br-{}", self.name())
    }

    /// The network's address, e.g. `10.77.0.0`.
    pub fn subnet(self) -> Ipv4Addr {
        let [a, b, c] = self.prefix();
        Ipv4Addr::new(a, b, c, 0)
    }

    /// Whether `ip` lies in this network.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        ip.octets()[..3] == self.prefix()
    }

    /// The address with host number `host` on this network.
    fn host(self, host: u8) -> Ipv4Addr {
        let [a, b, c] = self.prefix();
        Ipv4Addr::new(a, b, c, host)
    }
}

/// The prefix length of every network (and of every virtual IP).
pub const PREFIX_LEN: u8 = 24;
/// Node `i` (0-based) has host number `NODE_HOST_BASE + i` on each network.
const NODE_HOST_BASE: u8 = 10;
/// The client's host number on the public network.
const CLIENT_HOST: u8 = 250;
/// The most nodes a scenario may have: host numbers 10..=249, below the
/// client's 250.
pub const MAX_NODES: usize = (CLIENT_HOST - NODE_HOST_BASE) as usize;
/// UDP port of cluster messages (the modelled system's).
pub const CLUSTER_PORT: u16 = 3343;
/// TCP port of every group's application.
pub const APP_PORT: u16 = 7777;

// The layout holds: every node's host number lies below the client's, and
// every node id fits the MAC's two id octets.
const _: () = assert!(NODE_HOST_BASE as usize + MAX_NODES <= CLIENT_HOST as usize);
const _: () = assert!(MAX_NODES < u16::MAX as usize);

/// A node's place in the scenario: its 0-based index in the plan's node
/// order. The cluster id (1-based) and every address follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeIndex(usize);

impl NodeIndex {
    /// The node at `index` (0-based), if the topology has room for it.
    pub fn new(index: usize) -> Option<NodeIndex> {
        (index < MAX_NODES).then_some(NodeIndex(index))
    }

    /// The 0-based index.
    pub fn index(self) -> usize {
        self.0
    }

    /// The node's cluster id (1-based), as its agent knows it.
    pub fn id(self) -> u32 {
        self.0 as u32 + 1
    }

    /// The node's address on `net`.
    pub fn ip(self, net: Network) -> Ipv4Addr {
        net.host(NODE_HOST_BASE + self.0 as u8)
    }

    /// The node's MAC on `net`: `02:fa:<id high>:00:<net>:<id low>`, so
    /// that a MAC on the wire names its node.
    pub fn mac(self, net: Network) -> String {
        let [hi, lo] = (self.id() as u16).to_be_bytes();
        format!("02:fa:{hi:02x}:00:{:02x}:{lo:02x}", net.number())
    }

    /// Another node's id, to claim to be someone else (a forged message):
    /// node 2 for node 1, node 1 for every other.
    pub fn other_id(self) -> u32 {
        if self.0 == 0 {
            2
        } else {
            1
        }
    }
}

/// The switch port of node `node` on `net`, e.g. `n1-pub` (at most 15
/// bytes for a node name of at most 10).
pub fn port(node: &str, net: Network) -> String {
    format!("{node}-{}", net.port_suffix())
}

/// The client's switch port.
pub const CLIENT_PORT: &str = "cl-pub";
/// The client's MAC on the public network.
pub const CLIENT_MAC: &str = "02:fa:00:00:01:fa";

/// The client's address on the public network.
pub fn client_ip() -> Ipv4Addr {
    Network::Public.host(CLIENT_HOST)
}

/// Who is who on the networks for `nodes` (in plan order), as the trace
/// header carries it.
pub fn nodes<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<TopologyNode> {
    names
        .into_iter()
        .zip((0..MAX_NODES).map(NodeIndex))
        .map(|(name, i)| TopologyNode {
            name: name.to_string(),
            public_ip: i.ip(Network::Public),
            private_ip: i.ip(Network::Private),
            public_mac: i.mac(Network::Public),
            private_mac: i.mac(Network::Private),
        })
        .collect()
}

/// Why an address cannot be a virtual IP of a scenario with `node_count`
/// nodes, or `None` when it can.
pub fn vip_refusal(ip: Ipv4Addr, prefix_len: u8, node_count: usize) -> Option<String> {
    let public = Network::Public;
    if !public.contains(ip) || prefix_len != PREFIX_LEN {
        return Some(format!(
            "must be an address of the public network {}/{PREFIX_LEN}, written with /{PREFIX_LEN}",
            public.subnet()
        ));
    }
    let host = ip.octets()[3];
    let nodes = NODE_HOST_BASE as usize..NODE_HOST_BASE as usize + node_count;
    if nodes.contains(&(host as usize)) || host == CLIENT_HOST || host == 0 || host == 255 {
        return Some(format!(
            "is a node's, the client's or a reserved address of the public network \
             (nodes {}-{}, client {})",
            NodeIndex(0).ip(public),
            public.host(NODE_HOST_BASE + node_count.max(1) as u8 - 1),
            client_ip()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn addresses_and_macs_are_as_before() {
        let n1 = NodeIndex::new(0).unwrap();
        assert_eq!(n1.id(), 1);
        assert_eq!(n1.ip(Network::Public), Ipv4Addr::new(10, 77, 0, 10));
        assert_eq!(n1.ip(Network::Private), Ipv4Addr::new(10, 78, 0, 10));
        assert_eq!(n1.mac(Network::Public), "02:fa:00:00:01:01");
        assert_eq!(n1.mac(Network::Private), "02:fa:00:00:02:01");
        assert_eq!(port("n1", Network::Private), "n1-prv");
        assert_eq!(client_ip(), Ipv4Addr::new(10, 77, 0, 250));
    }

    #[test]
    fn every_node_up_to_the_limit_is_distinct_from_each_other_and_the_client() {
        let mut seen = BTreeSet::new();
        let mut macs = BTreeSet::new();
        for i in 0..MAX_NODES {
            let n = NodeIndex::new(i).unwrap();
            for net in NETWORKS {
                assert!(net.contains(n.ip(net)));
                assert!(seen.insert(n.ip(net)), "{} taken twice", n.ip(net));
                assert!(macs.insert(n.mac(net)));
            }
        }
        assert!(!seen.contains(&client_ip()));
        assert!(!macs.contains(CLIENT_MAC));
        const { assert!(MAX_NODES >= 200, "issue 9 needs at least 200 nodes") };
        assert_eq!(NodeIndex::new(MAX_NODES), None);
    }

    #[test]
    fn vips_must_avoid_nodes_the_client_and_reserved_hosts() {
        let vip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(vip_refusal(vip("10.77.0.100"), 24, 3), None);
        assert!(vip_refusal(vip("10.77.0.11"), 24, 3).is_some());
        assert!(vip_refusal(vip("10.77.0.100"), 24, 100).is_some());
        assert!(vip_refusal(vip("10.77.0.250"), 24, 3).is_some());
        assert!(vip_refusal(vip("10.77.0.255"), 24, 3).is_some());
        assert!(vip_refusal(vip("10.78.0.100"), 24, 3).is_some());
        assert!(vip_refusal(vip("10.77.0.100"), 16, 3).is_some());
    }
}
