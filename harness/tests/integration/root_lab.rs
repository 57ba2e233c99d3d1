//! The lab's network is built through netlink, with no `ip` process; here
//! `ip` is the independent witness: it must see the namespaces, addresses,
//! MACs, bridge masters and link states the topology names, traffic must
//! cross the bridges, a node's reboot must clear its virtual IP and bring
//! its links back, and teardown must leave nothing.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use faultline_faults::udp_probe::{probe, Endpoint, Outcome};

use faultline::lab::Lab;
use faultline::suite::parse_suite;
use faultline::topology::{self, Network, NodeIndex, NETWORKS};

use crate::support::{leftovers, skip_unless_root};

const SUITE: &str = r#"
suite: lab-netlink
scenarios:
  - name: three-nodes-and-a-client
    duration: 1s
    nodes: { n1: {}, n2: {}, n3: {} }
    groups:
      web: { ip: 10.77.0.100/24, owners: [n1, n2] }
    checks:
      - { kind: group_state, group: web, state: online, node: n1 }
"#;

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip -o link show` of one link, e.g. `5: n1-pub@if2: <...,UP,LOWER_UP> ... master br-public ...`.
fn link(ns: &str, dev: &str) -> String {
    ip(&["-n", ns, "-o", "link", "show", "dev", dev])
}

fn flags(shown: &str) -> Vec<&str> {
    let start = shown.find('<').unwrap() + 1;
    let end = start + shown[start..].find('>').unwrap();
    shown[start..end].split(',').collect()
}

/// Whether a datagram from `from` reaches `to` (namespace, address).
fn reaches(from: (&str, Ipv4Addr), to: (&str, Ipv4Addr)) -> bool {
    let end = |(ns, ip): (&str, Ipv4Addr)| Endpoint {
        label: ns.to_string(),
        ns: format!("/run/netns/{ns}").into(),
        ip,
    };
    // ARP and the bridge ports may need a moment after they come up.
    (0..10).any(|_| {
        matches!(
            probe(&end(from), &end(to), Duration::from_millis(500)),
            Ok(Outcome::Arrived(_))
        )
    })
}

#[test]
fn root_lab_built_by_netlink_is_what_ip_sees_and_teardown_leaves_nothing() {
    if skip_unless_root() {
        return;
    }
    let suite = parse_suite("lab-netlink.yaml", SUITE).unwrap();
    let plan = &suite.scenarios[0];
    let host = faultline::lab::host_cgroups().unwrap();
    let mut lab = Lab::build(host, plan, None).unwrap();
    let id = lab.id.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let sw = format!("fl-{id}-sw");
        let cl = format!("fl-{id}-cl");
        let listed = ip(&["netns", "list"]);
        for name in [&sw, &cl]
            .into_iter()
            .cloned()
            .chain((1..=3).map(|i| format!("fl-{id}-n{i}")))
        {
            assert!(
                listed
                    .lines()
                    .any(|l| l.split_whitespace().next() == Some(&name)),
                "{name} not in `ip netns list`:\n{listed}"
            );
        }
        for net in NETWORKS {
            let br = link(&sw, &net.bridge());
            assert!(flags(&br).contains(&"UP"), "{br}");
        }
        // Where the host has br_netfilter, the switch's bridges are plain
        // L2 switches all the same (a new namespace would default to 1).
        if std::path::Path::new("/proc/sys/net/bridge").exists() {
            for (key, _) in faultline::lab::BRIDGE_NETFILTER_OFF {
                let out = std::process::Command::new("ip")
                    .args(["netns", "exec", &sw, "cat"])
                    .arg(format!("/proc/sys/{}", key.replace('.', "/")))
                    .output()
                    .unwrap();
                let value = String::from_utf8_lossy(&out.stdout).trim().to_string();
                assert_eq!(value, "0", "{key} in {sw}");
            }
        }
        for (i, node) in ["n1", "n2", "n3"].into_iter().enumerate() {
            let index = NodeIndex::new(i).unwrap();
            let ns = format!("fl-{id}-{node}");
            assert!(flags(&link(&ns, "lo")).contains(&"UP"));
            for net in NETWORKS {
                let port = link(&sw, &topology::port(node, net));
                assert!(
                    port.contains(&format!(" master {} ", net.bridge())),
                    "{port}"
                );
                assert!(flags(&port).contains(&"UP"), "{port}");
                let end = link(&ns, net.name());
                assert!(flags(&end).contains(&"UP"), "{end}");
                assert!(
                    end.contains(&format!("link/ether {} ", index.mac(net))),
                    "{end}"
                );
                let addrs = ip(&["-n", &ns, "-o", "-4", "addr", "show", "dev", net.name()]);
                assert!(
                    addrs.contains(&format!(" {}/24 ", index.ip(net))),
                    "{addrs}"
                );
            }
        }
        let client = link(&cl, Network::Public.name());
        assert!(client.contains(topology::CLIENT_MAC), "{client}");
        let port = link(&sw, topology::CLIENT_PORT);
        assert!(port.contains(" master br-public "), "{port}");
        let addrs = ip(&["-n", &cl, "-o", "-4", "addr", "show"]);
        assert!(
            addrs.contains(&format!(" {}/24 ", topology::client_ip())),
            "{addrs}"
        );

        // Datagrams cross the bridges between every two nodes, on both
        // networks, and from the client to every node.
        let nodes: Vec<(String, NodeIndex)> = (0..3)
            .map(|i| (format!("fl-{id}-n{}", i + 1), NodeIndex::new(i).unwrap()))
            .collect();
        for (a, ia) in &nodes {
            for (b, ib) in &nodes {
                if a == b {
                    continue;
                }
                for net in NETWORKS {
                    let (from, to) = ((a.as_str(), ia.ip(net)), (b.as_str(), ib.ip(net)));
                    if !reaches(from, to) {
                        let sw_links = ip(&["-n", &sw, "-o", "link", "show"]);
                        panic!("{a} -> {b} on {net:?} lost; switch links:\n{sw_links}");
                    }
                }
            }
            assert!(
                reaches((&cl, topology::client_ip()), (a, ia.ip(Network::Public))),
                "client -> {a}"
            );
        }
        // A reboot clears the virtual IP and brings the links back up.
        let n1 = format!("fl-{id}-n1");
        ip(&["-n", &n1, "addr", "add", "10.77.0.100/24", "dev", "public"]);
        ip(&["-n", &n1, "link", "set", "private", "down"]);
        lab.reboot_network(lab.node("n1").unwrap()).unwrap();
        let addrs = ip(&["-n", &n1, "-o", "-4", "addr", "show", "dev", "public"]);
        assert!(!addrs.contains("10.77.0.100"), "{addrs}");
        assert!(flags(&link(&n1, "private")).contains(&"UP"));
        // A second reboot finds nothing to clear: not an error.
        lab.reboot_network(lab.node("n1").unwrap()).unwrap();
    }));
    let torn = lab.teardown();
    assert!(torn.is_ok(), "{torn:?}");
    let listed = ip(&["netns", "list"]);
    assert!(!listed.contains(&format!("fl-{id}-")), "{listed}");
    assert_eq!(leftovers(&id), Vec::<String>::new());
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
