//! The network faults' table entries (`partition`, `loss`, `delay`): their
//! keys, rules and construction from the lab's topology. They are listed
//! in [`super::faults::FAULTS`] like every other kind.
//!
//! Nothing here touches the host: `build` only names ports, namespaces and
//! addresses (from `topology.rs`); the faults themselves live in
//! `faultline_faults::{partition, loss, delay}`.

use faultline_faults::delay::{Delay, DelayBackend, NfqueueSetup};
use faultline_faults::loss::Loss;
use faultline_faults::partition::{Partition, Port};
use faultline_faults::udp_probe::Endpoint;

use super::faults::{FaultDef, FaultSite};
use super::params::{Field, Params};
use crate::plan::{FaultKind, FaultSpec, Network};
use crate::topology::{self, NodeIndex};

/// `network: public | private | all`.
fn networks(p: &mut Params<'_>) -> Field<Vec<Network>> {
    p.choice(
        "network",
        &[
            ("public", &[Network::Public][..]),
            ("private", &[Network::Private][..]),
            ("all", &topology::NETWORKS[..]),
        ],
    )
    .map(|n| n.map(<[Network]>::to_vec))
}

/// A node's ports on `networks`, with probe endpoints in its namespace.
fn node_ports(site: &FaultSite<'_>, name: &str, networks: &[Network]) -> Result<Vec<Port>, String> {
    let i = site
        .lab
        .nodes
        .iter()
        .position(|n| n.name == name)
        .ok_or_else(|| format!("node {name} is not in the lab"))?;
    let index = NodeIndex::new(i).ok_or_else(|| format!("node {name}: no address"))?;
    let ns = site.lab.nodes[i].ns.path();
    Ok(networks
        .iter()
        .map(|&net| Port {
            port: topology::port(name, net),
            network: net.name().to_string(),
            endpoint: Endpoint {
                label: format!("{name} {}", net.name()),
                ns: ns.clone(),
                ip: index.ip(net),
            },
        })
        .collect())
}

/// The client's port, when it exists and `networks` has the public one.
fn client_port(site: &FaultSite<'_>, networks: &[Network]) -> Option<Port> {
    let client = site.lab.client.as_ref()?;
    networks.contains(&Network::Public).then(|| Port {
        port: topology::CLIENT_PORT.to_string(),
        network: Network::Public.name().to_string(),
        endpoint: Endpoint {
            label: "client public".into(),
            ns: client.path(),
            ip: topology::client_ip(),
        },
    })
}

pub(super) static PARTITION: FaultDef = FaultDef {
    kind: FaultKind::Partition,
    name: "partition",
    doc: "`sides` stop hearing each other on `network` (public, private or all); the nodes \
          not named form one more side with the client; `direction: one_way` drops only \
          the first side's frames towards the second",
    params: &["node", "sides", "network", "direction"],
    needs_cluster: true,
    hangs_service: false,
    requires: &["netns", "nftables"],
    example: "{ kind: partition, sides: [[n1]], network: all, direction: both, at: 1s, for: 2s }",
    parse: |p| {
        p.refuse(
            "node",
            "a partition names its nodes in `sides` (it is recorded on the first side's first node)",
        );
        let sides = p.node_sides("sides");
        let networks = networks(p);
        let one_way = p.choice("direction", &[("both", false), ("one_way", true)]);
        let sides = p.required("sides", sides);
        let networks = p.required("network", networks);
        let (sides, networks, one_way) = (sides?, networks?, one_way?.unwrap_or(false));
        let named = sides.iter().flatten().count();
        let rest = p.scenario_nodes().len().saturating_sub(named);
        if sides.len() + usize::from(rest > 0) < 2 {
            p.problem(
                "sides",
                "a partition needs nodes on two sides: name two sides, or leave a node out \
                 (the nodes not named form one more side with the client)"
                    .into(),
            );
            return None;
        }
        p.set_fault_node(sides[0][0].clone());
        Some(FaultSpec::Partition {
            sides,
            networks,
            one_way,
        })
    },
    targets: |f| match &f.spec {
        FaultSpec::Partition { networks, .. } => networks
            .iter()
            .map(|n| format!("the {} switch", n.name()))
            .collect(),
        _ => vec![f.node.clone()],
    },
    build: |f, site| {
        let FaultSpec::Partition {
            sides,
            networks,
            one_way,
        } = &f.spec
        else {
            return Err(format!("not a partition fault: {:?}", f.spec));
        };
        let mut built = Vec::new();
        for side in sides {
            let mut ports = Vec::new();
            for name in side {
                ports.extend(node_ports(site, name, networks)?);
            }
            built.push(ports);
        }
        let mut rest = Vec::new();
        for node in &site.lab.nodes {
            if !sides.iter().flatten().any(|n| *n == node.name) {
                rest.extend(node_ports(site, &node.name, networks)?);
            }
        }
        rest.extend(client_port(site, networks));
        if !rest.is_empty() {
            built.push(rest);
        }
        Ok(Box::new(Partition {
            switch: site.switch.clone(),
            sides: built,
            one_way: *one_way,
        }))
    },
};

pub(super) static LOSS: FaultDef = FaultDef {
    kind: FaultKind::Loss,
    name: "loss",
    doc: "`percent` of the frames of the node's links on `network` (public, private or \
          all) are dropped at random; without `node`, of every link",
    params: &["node", "network", "percent"],
    needs_cluster: true,
    hangs_service: false,
    requires: &["netns", "nftables"],
    example: "{ kind: loss, node: n1, network: all, percent: 10, at: 1s, for: 2s }",
    parse: |p| {
        let node = p.node("node");
        let networks = networks(p);
        let percent = p.count("percent", 1, 100);
        let networks = p.required("network", networks);
        let percent = p.required("percent", percent);
        let (node, networks, percent) = (node?, networks?, percent?);
        let every_node = node.is_none();
        // Without `node`, the fault is recorded on the scenario's first node.
        let node = node.or_else(|| p.scenario_nodes().first().map(|n| n.to_string()))?;
        p.set_fault_node(node);
        Some(FaultSpec::Loss {
            every_node,
            networks,
            percent,
        })
    },
    targets: |f| match &f.spec {
        FaultSpec::Loss {
            every_node: true,
            networks,
            ..
        } => networks
            .iter()
            .map(|n| format!("every link of {}", n.name()))
            .collect(),
        FaultSpec::Loss { networks, .. } => networks
            .iter()
            .map(|n| topology::port(&f.node, *n))
            .collect(),
        _ => vec![f.node.clone()],
    },
    build: |f, site| {
        let FaultSpec::Loss {
            every_node,
            networks,
            percent,
        } = &f.spec
        else {
            return Err(format!("not a loss fault: {:?}", f.spec));
        };
        let mut ports = Vec::new();
        if *every_node {
            for node in &site.lab.nodes {
                ports.extend(node_ports(site, &node.name, networks)?);
            }
            ports.extend(client_port(site, networks));
        } else {
            ports.extend(node_ports(site, &f.node, networks)?);
        }
        Ok(Box::new(Loss {
            switch: site.switch.clone(),
            ports: ports.into_iter().map(|p| p.port).collect(),
            // Every port: each frame enters through one of them, once.
            outgoing_too: !*every_node,
            percent: *percent,
        }))
    },
};

/// The nfqueue delay helper lives this much longer than its fault.
const DELAY_HELPER_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The probe that proves a delay on `node`'s `net`: from its address there
/// to another node's (or the client's, on the public network).
fn delay_probe(
    site: &FaultSite<'_>,
    node: &str,
    net: Network,
) -> Result<(Endpoint, Endpoint), String> {
    let from = node_ports(site, node, &[net])?.remove(0).endpoint;
    let peer = site
        .lab
        .nodes
        .iter()
        .find(|n| n.name != node)
        .map(|n| node_ports(site, &n.name, &[net]).map(|mut p| p.remove(0).endpoint))
        .transpose()?
        .or_else(|| client_port(site, &[net]).map(|p| p.endpoint))
        .ok_or_else(|| format!("no peer of {node} on the {} network to probe", net.name()))?;
    Ok((from, peer))
}

pub(super) static DELAY: FaultDef = FaultDef {
    kind: FaultKind::Delay,
    name: "delay",
    doc: "frames leaving the node's interfaces on `network` (public, private or all) are \
          delayed by `delay` (tc netem where the kernel has sch_netem, else iptables NFQUEUE \
          rules and a helper holding each packet)",
    params: &["network", "delay"],
    needs_cluster: true,
    hangs_service: false,
    requires: &["netns", "delay"],
    example: "{ kind: delay, node: n1, network: all, delay: 50ms, at: 1s, for: 2s }",
    parse: |p| {
        let networks = networks(p);
        let delay = p.duration("delay");
        let networks = p.required("network", networks);
        let delay = p.required("delay", delay);
        Some(FaultSpec::Delay {
            networks: networks?,
            delay: delay?,
        })
    },
    targets: |f| match &f.spec {
        FaultSpec::Delay { networks, .. } => networks
            .iter()
            .map(|n| format!("{} {}", f.node, n.name()))
            .collect(),
        _ => vec![f.node.clone()],
    },
    build: |f, site| {
        let FaultSpec::Delay { networks, delay } = &f.spec else {
            return Err(format!("not a delay fault: {:?}", f.spec));
        };
        let backend = faultline_faults::host::host_delay_backend()?;
        let nfqueue = match backend {
            DelayBackend::Netem => None,
            DelayBackend::Nfqueue => Some(NfqueueSetup {
                program: site.helper.clone(),
                workload: site.target.workload.clone(),
                lifetime: f.duration + DELAY_HELPER_MARGIN,
                probe: delay_probe(site, &f.node, networks[0])?,
            }),
        };
        Ok(Box::new(Delay {
            ns: site.target.ns.clone(),
            links: networks.iter().map(|n| n.name().to_string()).collect(),
            delay: *delay,
            backend,
            nfqueue,
        }))
    },
};
