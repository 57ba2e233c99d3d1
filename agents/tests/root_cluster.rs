//! Two real nodes in network namespaces of their own (`fltest-*`, removed by
//! a guard even on failure), on two bridges in a third namespace: the group
//! comes online on its first owner and serves clients; a poison packet
//! forged with another key, sent from an intruder namespace, is only logged
//! as rejected; then seed 004: n2 cut off loses quorum, and is poisoned
//! when public heals. Needs root; skipped otherwise.

use std::io::Read;
use std::net::{Ipv4Addr, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use faultline_agent::cluster::wire::{ClusterKey, ClusterMessage, NodeId, PoisonReason};
use faultline_agent::events::{Event, EventData, EventKind, RecoveryAction};
use faultline_agent::launch::*;

const PORT: u16 = 7700;
const KEY: &str = "00112233445566778899aabbccddeeff";

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deletes the namespaces (and so every link in them) and kills the nodes.
struct Lab {
    names: Vec<String>,
    nodes: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.nodes {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        let until = Instant::now() + Duration::from_secs(5);
        for c in &mut self.nodes {
            while c.try_wait().ok().flatten().is_none() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Runs `f` in namespace `ns`, on a thread of its own.
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(path).unwrap();
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

fn expect(
    trace: &UnixDatagram,
    seen: &mut Vec<Event>,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    let until = Instant::now() + Duration::from_secs(15);
    let mut buf = vec![0u8; 65536];
    while Instant::now() < until {
        if let Ok(n) = trace.recv(&mut buf) {
            let ev: Event = serde_json::from_slice(&buf[..n]).unwrap();
            seen.push(ev.clone());
            if pred(&ev) {
                return ev;
            }
        }
    }
    let kinds: Vec<String> = seen
        .iter()
        .map(|e| format!("{}:{:?}", e.node, e.kind()))
        .collect();
    panic!("no {what}; saw {kinds:?}");
}

#[test]
fn root_group_online_on_first_owner_and_forged_poison_is_only_rejected() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let tag = std::process::id() % 100_000;
    let sw = format!("fltest-sw{tag}");
    let ns: Vec<String> = (1..=2).map(|i| format!("fltest-n{i}-{tag}")).collect();
    let intruder = format!("fltest-x{tag}");
    let mut lab = Lab {
        names: vec![sw.clone(), ns[0].clone(), ns[1].clone(), intruder.clone()],
        nodes: vec![],
    };
    for n in &lab.names {
        ip(&["netns", "add", n]);
        ip(&["-n", n, "link", "set", "lo", "up"]);
    }
    for br in ["brpub", "brpriv"] {
        ip(&["-n", &sw, "link", "add", br, "type", "bridge"]);
        ip(&["-n", &sw, "link", "set", br, "up"]);
    }
    let attach = |node_ns: &str, iface: &str, peer: &str, br: &str, addr: &str| {
        ip(&[
            "link", "add", iface, "netns", node_ns, "type", "veth", "peer", "name", peer, "netns",
            &sw,
        ]);
        ip(&["-n", &sw, "link", "set", peer, "master", br, "up"]);
        ip(&["-n", node_ns, "addr", "add", addr, "dev", iface]);
        ip(&["-n", node_ns, "link", "set", iface, "up"]);
    };
    for (i, n) in ns.iter().enumerate() {
        attach(
            n,
            "public",
            &format!("p{i}"),
            "brpub",
            &format!("10.77.0.{}/24", 10 + i),
        );
        attach(
            n,
            "private",
            &format!("q{i}"),
            "brpriv",
            &format!("10.78.0.{}/24", 10 + i),
        );
    }
    attach(&intruder, "public", "px", "brpub", "10.77.0.99/24");

    let shared = tempfile::tempdir().unwrap();
    let nodes: Vec<ClusterNode> = (0..2u8)
        .map(|i| ClusterNode {
            id: u32::from(i) + 1,
            name: format!("n{}", i + 1),
            public_ip: Ipv4Addr::new(10, 77, 0, 10 + i),
            private_ip: Ipv4Addr::new(10, 78, 0, 10 + i),
            votes: 1,
        })
        .collect();
    let mut dirs = Vec::new();
    let mut traces = Vec::new();
    for (i, n) in ns.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let trace_path = dir.path().join("trace.sock");
        let trace = UnixDatagram::bind(&trace_path).unwrap();
        trace
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let launch = NodeLaunch::bare(
            "it",
            &format!("n{}", i + 1),
            dir.path(),
            &state,
            &trace_path,
        );
        std::fs::write(
            dir.path().join(LAUNCH_FILE),
            serde_json::to_vec(&launch).unwrap(),
        )
        .unwrap();
        let db = ClusterDb {
            hang_timeout_ms: 2000,
            hang_recovery_action: RecoveryAction::Log,
            service_restart_delay_ms: 300,
            cluster: Some(ClusterConfig {
                node_id: i as u32 + 1,
                nodes: nodes.clone(),
                witness: Some(WitnessConfig {
                    lock_file: shared.path().join("witness.lock"),
                    votes: 1,
                }),
                key_hex: KEY.into(),
                port: PORT,
                node_heartbeat_ms: 100,
                missed_heartbeats: 6,
                groups: vec![GroupConfig {
                    name: "sql".into(),
                    ip: Ipv4Addr::new(10, 77, 0, 100),
                    prefix_len: 24,
                    app_port: 1433,
                    owners: vec!["n1".into(), "n2".into()],
                    disk: true,
                }],
                arp: ArpSettings {
                    probe: true,
                    probe_num: 2,
                    probe_interval_ms: 30,
                    probe_wait_ms: 60,
                    announce_num: 1,
                    announce_interval_ms: 20,
                },
                failover_window_ms: 5000,
                shared_dir: shared.path().into(),
            }),
        };
        std::fs::write(state.join(CLUSDB_FILE), serde_json::to_vec(&db).unwrap()).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                n,
                env!("CARGO_BIN_EXE_faultline-agent"),
                "supervisor",
                "--node-dir",
            ])
            .arg(dir.path())
            .spawn()
            .unwrap();
        lab.nodes.push(child);
        dirs.push(dir);
        traces.push(trace);
        // n1 first, so that it forms the cluster with the witness.
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut seen = Vec::new();
    let on = expect(&traces[0], &mut seen, "group online on n1", |e| {
        e.kind() == EventKind::GroupOnline
    });
    assert_eq!(on.data.group(), Some("sql"));
    expect(&traces[1], &mut seen, "n2 hears n1", |e| {
        e.kind() == EventKind::Regrouped
    });
    // A client on the public network is served by n1.
    let answer = in_ns(&intruder, || {
        let mut s = TcpStream::connect_timeout(
            &"10.77.0.100:1433".parse().unwrap(),
            Duration::from_secs(2),
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    });
    assert_eq!(answer, "n1\n");
    let lease: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shared.path().join("sql.lease")).unwrap()).unwrap();
    assert_eq!(lease["holder"], "n1");

    // A poison packet for n2, forged with a key that is not the cluster's.
    let forged = ClusterMessage::Poison {
        from: NodeId(1),
        to: NodeId(2),
        reason: PoisonReason::Evicted,
    }
    .encode(&ClusterKey::new(*b"not-the-cluster-key!").unwrap())
    .unwrap();
    in_ns(&intruder, move || {
        let s = UdpSocket::bind("10.77.0.99:0").unwrap();
        s.send_to(&forged, ("10.77.0.11", PORT)).unwrap();
    });
    let rej = expect(&traces[1], &mut seen, "rejection on n2", |e| {
        e.kind() == EventKind::ClusterMessageRejected
    });
    match &rej.data {
        EventData::ClusterMessageRejected(d) => {
            assert_eq!(d.reason, "bad message authentication code")
        }
        other => panic!("{other:?}"),
    }
    // Nothing stops: no poison, no offline, for a while.
    let until = Instant::now() + Duration::from_millis(800);
    let mut buf = vec![0u8; 65536];
    while Instant::now() < until {
        for t in &traces {
            if let Ok(n) = t.recv(&mut buf) {
                let ev: Event = serde_json::from_slice(&buf[..n]).unwrap();
                assert!(
                    !matches!(
                        ev.kind(),
                        EventKind::Poisoned
                            | EventKind::GroupOffline
                            | EventKind::ServiceTerminated
                    ),
                    "{ev:?}"
                );
            }
        }
    }
    // Seed 004: n2 cut off on both networks. n1 keeps quorum with the
    // witness; n2 loses it; healing public gets n2 poisoned.
    for l in ["p1", "q1"] {
        ip(&["-n", &sw, "link", "set", l, "down"]);
    }
    expect(&traces[1], &mut seen, "quorum lost on n2", |e| {
        e.kind() == EventKind::QuorumLost
    });
    expect(&traces[0], &mut seen, "n2 down on n1", |e| {
        e.kind() == EventKind::PeerDown
    });
    ip(&["-n", &sw, "link", "set", "p1", "up"]);
    expect(&traces[0], &mut seen, "poison sent by n1", |e| {
        e.kind() == EventKind::PoisonSent
    });
    let p = expect(&traces[1], &mut seen, "n2 poisoned", |e| {
        e.kind() == EventKind::Poisoned
    });
    assert_eq!(p.id, Some(1118));
    // Seed 004: "Error ClusNet 1118 Cluster service was terminated as
    // requested by Node 1."
    assert_eq!(
        p.message,
        "Cluster service was terminated as requested by Node 1."
    );
    assert_eq!(p.log_source.as_deref(), Some("ClusNet"));
    assert_eq!(p.log_type.as_deref(), Some("Error"));
    let log = std::fs::read_to_string(dirs[1].path().join("cluster.log")).unwrap();
    assert!(
        log.contains("REGROUP ERROR: poison packet received from node 1"),
        "{log}"
    );
    expect(&traces[1], &mut seen, "n2 restarted", |e| {
        e.kind() == EventKind::ServiceTerminated
    });
    drop(lab);
    let left = String::from_utf8(
        Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(!left.contains(&format!("{tag}")), "{left}");
    let _: Vec<PathBuf> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
}
