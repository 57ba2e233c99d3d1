//! ARP on the real kernel: probing (the agent's `arp` module) and the
//! harness's ARP observer, on a bridge of throwaway `fltest-` namespaces.
//! Root only; nothing leaves the namespaces these tests create.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use faultline::observe::arp::{ArpObserver, ArpSeen};
use faultline_agent::arp::{
    self, ArpFrame, ArpKind, ArpSocket, MacAddr, ProbeOutcome, ProbeTimers,
};
use faultline_faults::netns::NetNs;

use crate::support::{skip_unless_root, Topology};

const HELD: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const FREE: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
const ASKER: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 3);
const BRIDGE: &str = "br0";
const NIC: &str = "eth0";

/// Runs `f` on a thread that has entered `ns` (setns affects only it).
fn in_netns<T: Send + 'static>(ns: &NetNs, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = ns.path();
    let t = std::thread::spawn(move || {
        let file = File::open(&path).unwrap();
        // SAFETY: setns on a valid namespace descriptor, this thread only.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(
            r,
            0,
            "setns {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
        f()
    });
    t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

fn mac_of(ns: &NetNs) -> MacAddr {
    in_netns(ns, || ArpSocket::open(NIC).unwrap().mac())
}

/// Records received until `until` holds for everything so far, or 2 s.
fn collect(
    rx: &crossbeam_channel::Receiver<ArpSeen>,
    until: impl Fn(&[ArpSeen]) -> bool,
) -> Vec<ArpSeen> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut seen = Vec::new();
    while !until(&seen) {
        match rx.recv_deadline(deadline) {
            Ok(s) => seen.push(s),
            Err(_) => break,
        }
    }
    seen
}

#[test]
fn root_arp_probe_finds_the_holder_and_frees_an_unused_address() {
    if skip_unless_root() {
        return;
    }
    let topo = Topology::build("arp", NIC, false, &["a", "b"]);
    let (a, b) = (&topo.nodes[0], &topo.nodes[1]);
    a.ip(&["addr", "add", &format!("{HELD}/24"), "dev", NIC])
        .unwrap();
    let (a_mac, b_mac) = (mac_of(a), mac_of(b));
    assert_ne!(a_mac, b_mac);

    let (tx, rx) = crossbeam_channel::unbounded();
    let observer = ArpObserver::start(&topo.sw.path(), &[BRIDGE], tx).unwrap();

    let started = Instant::now();
    let held = in_netns(b, || {
        arp::probe(NIC, HELD, &ProbeTimers::default()).unwrap()
    });
    let took_held = started.elapsed();
    assert_eq!(
        held,
        ProbeOutcome::Conflict {
            mac: a_mac,
            kind: ArpKind::Reply
        }
    );

    let started = Instant::now();
    let free = in_netns(b, || {
        arp::probe(NIC, FREE, &ProbeTimers::default()).unwrap()
    });
    let took_free = started.elapsed();
    assert_eq!(free, ProbeOutcome::Free);
    // Three probes 50 ms apart and a 100 ms wait: at least 200 ms.
    assert!(took_free >= Duration::from_millis(200), "{took_free:?}");
    assert!(took_held < took_free, "{took_held:?} vs {took_free:?}");
    eprintln!("conflict found in {took_held:?}, free after {took_free:?}");

    // b takes the free address and announces it twice.
    b.ip(&["addr", "add", &format!("{FREE}/24"), "dev", NIC])
        .unwrap();
    in_netns(b, || {
        arp::announce(NIC, FREE, 2, Duration::from_millis(20)).unwrap()
    });

    // The observer saw b's probes for both addresses, a's reply and b's
    // announcements.
    let announced = |s: &[ArpSeen]| {
        s.iter()
            .filter(|r| {
                r.op == ArpKind::Announcement && r.sender_ip == FREE && r.sender_mac == b_mac
            })
            .count()
    };
    let seen = collect(&rx, |s| announced(s) >= 2);
    assert_eq!(announced(&seen), 2, "{seen:#?}");
    observer.stop().unwrap();
    let probes_free = seen
        .iter()
        .filter(|r| r.op == ArpKind::Probe && r.target_ip == FREE && r.sender_mac == b_mac)
        .count();
    assert_eq!(probes_free, 3, "{seen:#?}");
    assert!(
        seen.iter()
            .any(|r| r.op == ArpKind::Probe && r.target_ip == HELD && r.sender_mac == b_mac),
        "{seen:#?}"
    );
    assert!(
        seen.iter()
            .any(|r| r.op == ArpKind::Reply && r.sender_ip == HELD && r.sender_mac == a_mac),
        "{seen:#?}"
    );
    assert!(seen.iter().all(|r| r.bridge == BRIDGE && r.t > 0));
}

#[test]
fn root_arp_observer_sees_two_macs_answer_for_one_address() {
    if skip_unless_root() {
        return;
    }
    let topo = Topology::build("arp", NIC, false, &["a", "b", "c"]);
    let (a, b, c) = (&topo.nodes[0], &topo.nodes[1], &topo.nodes[2]);
    for ns in [a, b] {
        // The kernel accepts the same address in two namespaces silently.
        ns.ip(&["addr", "add", &format!("{HELD}/24"), "dev", NIC])
            .unwrap();
    }
    let (a_mac, b_mac) = (mac_of(a), mac_of(b));

    let (tx, rx) = crossbeam_channel::unbounded();
    let observer = ArpObserver::start(&topo.sw.path(), &[BRIDGE], tx).unwrap();

    // c asks who has HELD with a request of its own; both holders answer.
    let c_saw = in_netns(c, || {
        let sock = ArpSocket::open(NIC).unwrap();
        sock.send(&ArpFrame::request(sock.mac(), ASKER, HELD))
            .unwrap();
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut macs = BTreeSet::new();
        while let Some(got) = sock.recv_until(deadline).unwrap() {
            let arp = got.frame.arp;
            if arp.kind() == ArpKind::Reply && arp.sender_ip == HELD {
                macs.insert(arp.sender_mac);
            }
        }
        macs
    });
    assert_eq!(c_saw, BTreeSet::from([a_mac, b_mac]));

    let replies = |s: &[ArpSeen]| -> BTreeSet<MacAddr> {
        s.iter()
            .filter(|r| r.op == ArpKind::Reply && r.sender_ip == HELD && r.target_ip == ASKER)
            .map(|r| r.sender_mac)
            .collect()
    };
    let seen = collect(&rx, |s| replies(s).len() >= 2);
    observer.stop().unwrap();
    assert_eq!(replies(&seen), BTreeSet::from([a_mac, b_mac]), "{seen:#?}");
}

#[test]
fn root_arp_observer_stops_promptly_and_topology_leaves_nothing() {
    if skip_unless_root() {
        return;
    }
    let names: Vec<String>;
    {
        let topo = Topology::build("arp", NIC, false, &["a"]);
        names = topo.created.iter().map(|n| n.name().to_string()).collect();
        let (tx, _rx) = crossbeam_channel::unbounded();
        let observer = ArpObserver::start(&topo.sw.path(), &[BRIDGE], tx).unwrap();
        let started = Instant::now();
        observer.stop().unwrap();
        assert!(started.elapsed() < Duration::from_millis(500));
        // A bridge that does not exist is an error, not a silent observer.
        let (tx, _rx) = crossbeam_channel::unbounded();
        let err = ArpObserver::start(&topo.sw.path(), &["br-none"], tx).unwrap_err();
        assert!(err.to_string().contains("br-none"), "{err}");
    }
    let left = NetNs::list().unwrap();
    for name in names {
        assert!(!left.contains(&name), "{name} left behind");
    }
}
