//! The address observer and the client prober on the real kernel, on a
//! bridge of throwaway `fltest-obs-` namespaces. Root only; nothing leaves
//! the namespaces these tests create.

use std::fs::File;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use faultline::observe::addr::{AddrObserver, AddrSeen};
use faultline::observe::client::{Client, ClientProbe};
use faultline_faults::netns::NetNs;

use crate::support::{skip_unless_root, Topology};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 100);
const PORT: u16 = 7777;
const NIC: &str = "public";

/// Records received until `until` holds for everything so far, or 3 s.
fn collect<T>(rx: &Receiver<T>, until: impl Fn(&[T]) -> bool) -> Vec<T> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut seen = Vec::new();
    while !until(&seen) {
        match rx.recv_deadline(deadline) {
            Ok(s) => seen.push(s),
            Err(_) => break,
        }
    }
    seen
}

fn is(r: &AddrSeen, node: &str, held: bool) -> bool {
    r.node == node && r.ip == VIP && r.held == held
}

#[test]
fn root_observe_addr_sees_an_address_taken_twice_then_released_by_link_down() {
    if skip_unless_root() {
        return;
    }
    let topo = Topology::build("obs", NIC, true, &["a", "b", "c"]);
    let (a, b) = (&topo.nodes[0], &topo.nodes[1]);
    let (tx, rx) = crossbeam_channel::unbounded();
    let observer = AddrObserver::start(
        topo.observed(&["a", "b", "c"]),
        vec![VIP, Ipv4Addr::new(10, 99, 0, 1)],
        Duration::from_millis(5),
        tx,
    )
    .unwrap();

    // The initial state of every (node, ip) is there when start returns.
    let initial: Vec<AddrSeen> = rx.try_iter().collect();
    assert_eq!(initial.len(), 6, "{initial:#?}");
    assert!(
        initial.iter().all(|r| r.ip != VIP || !r.held),
        "{initial:#?}"
    );
    assert!(
        initial
            .iter()
            .any(|r| r.node == "a" && r.ip == Ipv4Addr::new(10, 99, 0, 1) && r.held),
        "{initial:#?}"
    );

    let vip = format!("{VIP}/24");
    let before_a = faultline_agent::clock::monotonic_ns();
    a.ip(&["addr", "add", &vip, "dev", NIC]).unwrap();
    let a_held = collect(&rx, |s| s.iter().any(|r| is(r, "a", true)));
    b.ip(&["addr", "add", &vip, "dev", NIC]).unwrap();
    let b_held = collect(&rx, |s| s.iter().any(|r| is(r, "b", true)));
    a.ip(&["link", "set", NIC, "down"]).unwrap();
    let a_released = collect(&rx, |s| s.iter().any(|r| is(r, "a", false)));
    let stats = observer.stop().unwrap();

    let all: Vec<&AddrSeen> = a_held.iter().chain(&b_held).chain(&a_released).collect();
    // Exactly three changes of VIP; a's own address also went with its link.
    let vip_changes: Vec<&&AddrSeen> = all.iter().filter(|r| r.ip == VIP).collect();
    assert_eq!(vip_changes.len(), 3, "{all:#?}");
    let (t1, t2, t3) = (vip_changes[0], vip_changes[1], vip_changes[2]);
    assert!(is(t1, "a", true) && t1.iface == NIC, "{t1:?}");
    assert!(is(t2, "b", true) && t2.iface == NIC, "{t2:?}");
    // Still configured, on a link that is down.
    assert!(is(t3, "a", false) && t3.iface == NIC, "{t3:?}");
    assert!(before_a < t1.t && t1.t < t2.t && t2.t < t3.t, "{all:#?}");
    assert!(
        all.iter()
            .all(|r| r.ip == VIP || (r.node == "a" && !r.held)),
        "{all:#?}"
    );
    assert!(stats.rounds > 3, "{stats:?}");
    eprintln!(
        "changes seen {:?} and {:?} after the previous one; {stats:?}",
        Duration::from_nanos(t2.t - t1.t),
        Duration::from_nanos(t3.t - t2.t)
    );
}

#[test]
fn root_observe_addr_a_deleted_namespace_holds_nothing_and_is_let_go() {
    if skip_unless_root() {
        return;
    }
    let topo = Topology::build("obs", NIC, true, &["a", "b"]);
    let b = &topo.nodes[1];
    b.ip(&["addr", "add", &format!("{VIP}/24"), "dev", NIC])
        .unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let observer = AddrObserver::start(
        topo.observed(&["a", "b"]),
        vec![VIP],
        Duration::from_millis(5),
        tx,
    )
    .unwrap();
    let initial: Vec<AddrSeen> = rx.try_iter().collect();
    assert_eq!(initial.len(), 2, "{initial:#?}");
    assert!(initial.iter().any(|r| is(r, "b", true)), "{initial:#?}");

    b.delete().unwrap();
    let gone = collect(&rx, |s| s.iter().any(|r| is(r, "b", false)));
    assert_eq!(gone.len(), 1, "{gone:#?}");
    assert_eq!(gone[0].iface, "", "{gone:#?}");
    // The observer closed its socket, so the namespace really died and
    // took its veth's peer on the bridge with it.
    let deadline = Instant::now() + Duration::from_secs(2);
    while topo.sw.ip(&["link", "show", "b-p"]).is_ok() {
        assert!(Instant::now() < deadline, "b's namespace is kept alive");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A gone namespace is not a failure.
    observer.stop().unwrap();
}

#[test]
fn root_observe_addr_poll_round_over_three_namespaces() {
    if skip_unless_root() {
        return;
    }
    let topo = Topology::build("obs", NIC, true, &["a", "b", "c"]);
    let (tx, _rx) = crossbeam_channel::unbounded();
    let interval = Duration::from_millis(5);
    let observer =
        AddrObserver::start(topo.observed(&["a", "b", "c"]), vec![VIP], interval, tx).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let started = Instant::now();
    let stats = observer.stop().unwrap();
    assert!(started.elapsed() < Duration::from_millis(200));
    eprintln!("poll round over 3 namespaces: {stats:?}");
    assert!(stats.rounds > 100, "{stats:?}");
    assert!(stats.mean_round < interval, "{stats:?}");
}

#[test]
fn root_observe_addr_refuses_a_path_that_is_not_a_namespace() {
    if skip_unless_root() {
        return;
    }
    let (tx, _rx) = crossbeam_channel::unbounded();
    let err = AddrObserver::start(
        vec![("a".into(), "/proc/self/status".into())],
        vec![VIP],
        Duration::from_millis(5),
        tx,
    )
    .unwrap_err();
    assert!(err.to_string().contains("/proc/self/status"), "{err}");
}

/// A TCP server on VIP:PORT inside `ns` that answers every connection with
/// `name` and a newline, until dropped.
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(ns: &NetNs, name: &'static str) -> Server {
        let path = ns.path();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let thread = std::thread::spawn(move || {
            let file = File::open(&path).unwrap();
            // SAFETY: setns on a valid namespace descriptor, this thread only.
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            let listener = TcpListener::bind(SocketAddrV4::new(VIP, PORT)).unwrap();
            listener.set_nonblocking(true).unwrap();
            ready_tx.send(()).unwrap();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = writeln!(s, "{name}");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(2))
            .expect("the server did not start");
        Server {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn root_observe_client_is_answered_then_refused_once_the_server_stops() {
    if skip_unless_root() {
        return;
    }
    let topo = Topology::build("obs", NIC, true, &["a", "c"]);
    let (a, c) = (&topo.nodes[0], &topo.nodes[1]);
    a.ip(&["addr", "add", &format!("{VIP}/24"), "dev", NIC])
        .unwrap();
    let server = Server::start(a, "a");

    let (tx, rx) = crossbeam_channel::unbounded();
    let client = Client::start(
        c.path(),
        vec![("web".into(), SocketAddrV4::new(VIP, PORT))],
        Duration::from_millis(20),
        Duration::from_millis(200),
        None,
        tx,
    )
    .unwrap();
    let answered = |s: &[ClientProbe]| {
        s.iter()
            .filter(|p| p.answered_by.as_deref() == Some("a"))
            .count()
    };
    let before = collect(&rx, |s| answered(s) >= 3);
    assert!(answered(&before) >= 3, "{before:#?}");

    drop(server);
    let stopped = faultline_agent::clock::monotonic_ns();
    let after = collect(&rx, |s| {
        s.iter()
            .filter(|p| p.t > stopped && p.error.is_some())
            .count()
            >= 3
    });
    client.stop().unwrap();

    let refused: Vec<&ClientProbe> = after.iter().filter(|p| p.t > stopped).collect();
    assert!(refused.len() >= 3, "{after:#?}");
    for p in &refused {
        assert_eq!(p.answered_by, None, "{p:?}");
        assert!(p.error.as_deref().unwrap().contains("refused"), "{p:?}");
    }
    for p in before.iter().chain(&after) {
        assert_eq!((p.group.as_str(), p.ip), ("web", VIP));
        assert!(p.t <= p.done, "{p:?}");
        // Bounded: connect and read each wait at most the timeout.
        assert!(p.done - p.t < 450_000_000, "{p:?}");
    }
    let ts: Vec<u64> = before.iter().chain(&after).map(|p| p.t).collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "{ts:?}");
}
