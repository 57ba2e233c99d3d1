//! Root tests of the network faults on a small real topology: a switch
//! namespace with one bridge and three member namespaces (`a`, `b`, `c`),
//! each with a veth port on the bridge. They inject, check the proof, heal
//! and check that nothing is left; with `FAULTLINE_MEASURE=N` they also
//! inject each fault N times and print the request-to-confirmed latency.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::delay::Delay;
use crate::fault::Fault;
use crate::loss::Loss;
use crate::netns::NetNs;
use crate::nft::nft;
use crate::partition::{Partition, Port};
use crate::testutil::{is_root, unique_name};
use crate::udp_probe::{probe, Endpoint, Outcome};

struct Mini {
    switch: NetNs,
    members: Vec<(NetNs, Port)>,
}

impl Mini {
    fn build() -> Mini {
        let switch = NetNs::create(&unique_name("sw")).unwrap();
        let mut mini = Mini {
            switch,
            members: Vec::new(),
        };
        mini.switch
            .ip(&["link", "add", "br0", "type", "bridge"])
            .unwrap();
        mini.switch.ip(&["link", "set", "br0", "up"]).unwrap();
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            let ns = NetNs::create(&unique_name(name)).unwrap();
            let port = format!("p{name}");
            let ip = Ipv4Addr::new(10, 99, 0, 1 + i as u8);
            mini.switch
                .ip(&[
                    "link",
                    "add",
                    &port,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    ns.name(),
                ])
                .unwrap();
            mini.switch
                .ip(&["link", "set", &port, "master", "br0", "up"])
                .unwrap();
            ns.ip(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"])
                .unwrap();
            ns.ip(&["link", "set", "eth0", "up"]).unwrap();
            let endpoint = Endpoint {
                label: name.to_string(),
                ns: ns.path(),
                ip,
            };
            mini.members.push((
                ns,
                Port {
                    port,
                    network: "public".into(),
                    endpoint,
                },
            ));
        }
        mini
    }

    fn port(&self, i: usize) -> Port {
        self.members[i].1.clone()
    }

    fn send(&self, from: usize, to: usize) -> Outcome {
        probe(
            &self.port(from).endpoint,
            &self.port(to).endpoint,
            Duration::from_millis(500),
        )
        .unwrap()
    }

    fn delete(&self) {
        for (ns, _) in &self.members {
            ns.delete().unwrap();
        }
        self.switch.delete().unwrap();
    }
}

/// Builds the topology, runs `f`, and always deletes it.
fn with_mini(f: impl FnOnce(&Mini) + std::panic::UnwindSafe) {
    let mini = Mini::build();
    let names: Vec<String> = std::iter::once(mini.switch.name().to_string())
        .chain(mini.members.iter().map(|(ns, _)| ns.name().to_string()))
        .collect();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mini)));
    mini.delete();
    let left = NetNs::list().unwrap();
    assert!(names.iter().all(|n| !left.contains(n)), "{left:?}");
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn tables(ns: &NetNs) -> String {
    nft(ns, &["list", "tables"]).unwrap()
}

/// How many injections to time (`FAULTLINE_MEASURE`), 0 by default.
fn measure_count() -> usize {
    std::env::var("FAULTLINE_MEASURE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Injects and heals `fault` `n` times; prints the median and max of
/// request -> confirmed for onset and heal.
fn measure(name: &str, fault: &dyn Fault, n: usize) {
    if n == 0 {
        return;
    }
    let (mut onsets, mut heals) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let guard = fault.inject().unwrap();
        let o = guard.onset().clone();
        onsets.push((o.confirmed_ns - o.requested_ns) as f64 / 1e6);
        let h = guard.heal().unwrap();
        heals.push((h.confirmed_ns - h.requested_ns) as f64 / 1e6);
    }
    for (what, v) in [("onset", &mut onsets), ("heal", &mut heals)] {
        v.sort_by(f64::total_cmp);
        eprintln!(
            "measure {name} {what}: n={} median {:.1} ms, max {:.1} ms",
            v.len(),
            v[v.len() / 2],
            v[v.len() - 1]
        );
    }
}

fn skip() -> bool {
    if !is_root() || crate::process::run("nft", &["--version"]).is_err() {
        eprintln!("skipped: needs root and nft");
        return true;
    }
    false
}

#[test]
fn root_partition_both_ways_and_one_way_are_proven_by_probes_and_healed() {
    if skip() {
        return;
    }
    with_mini(|m| {
        assert!(matches!(m.send(0, 1), Outcome::Arrived(_)));
        let both = Partition {
            switch: m.switch.clone(),
            sides: vec![vec![m.port(0)], vec![m.port(1), m.port(2)]],
            one_way: false,
        };
        let guard = both.inject().unwrap();
        let evidence = guard.onset().evidence.clone();
        assert!(evidence.contains("a -> b lost"), "{evidence}");
        assert!(evidence.contains("b -> a lost"), "{evidence}");
        assert!(matches!(m.send(2, 0), Outcome::Lost(_)));
        // The same side still talks.
        assert!(matches!(m.send(1, 2), Outcome::Arrived(_)));
        let healed = guard.heal().unwrap();
        assert!(
            healed.evidence.contains("a -> b arrived"),
            "{}",
            healed.evidence
        );
        assert!(!tables(&m.switch).contains("fl_cut_"));
        assert!(matches!(m.send(2, 0), Outcome::Arrived(_)));

        let one_way = Partition {
            one_way: true,
            ..both.clone()
        };
        let guard = one_way.inject().unwrap();
        let evidence = guard.onset().evidence.clone();
        assert!(evidence.contains("a -> b lost"), "{evidence}");
        assert!(evidence.contains("b -> a arrived"), "{evidence}");
        assert!(matches!(m.send(0, 2), Outcome::Lost(_)));
        assert!(matches!(m.send(2, 0), Outcome::Arrived(_)));
        // Dropping the guard heals too.
        drop(guard);
        assert!(!tables(&m.switch).contains("fl_cut_"));
        assert!(matches!(m.send(0, 2), Outcome::Arrived(_)));

        let n = measure_count();
        measure("partition(both)", &both, n);
        measure("partition(one_way)", &one_way, n);
        assert!(!tables(&m.switch).contains("fl_cut_"));
    });
}

#[test]
fn root_partition_that_does_not_cut_is_refused_and_undone() {
    if skip() {
        return;
    }
    with_mini(|m| {
        // Port names that are not on the bridge: the rule matches nothing,
        // the probe arrives, the fault says so and removes its table.
        let mut a = m.port(0);
        a.port = "nope0".into();
        let fake = Partition {
            switch: m.switch.clone(),
            sides: vec![vec![a], vec![m.port(1)]],
            one_way: false,
        };
        let err = fake.inject().err().expect("a cut that cuts nothing");
        assert!(err.to_string().contains("arrived"), "{err}");
        assert!(!tables(&m.switch).contains("fl_cut_"));
    });
}

#[test]
fn root_loss_counts_and_drops_about_its_share() {
    if skip() {
        return;
    }
    with_mini(|m| {
        // Resolve addresses first: a lost ARP answer would hold every probe
        // for a second, and they would all count as lost.
        assert!(matches!(m.send(1, 0), Outcome::Arrived(_)));
        let loss = Loss {
            switch: m.switch.clone(),
            ports: vec!["pa".into()],
            outgoing_too: true,
            percent: 50,
        };
        let guard = loss.inject().unwrap();
        assert!(guard
            .onset()
            .evidence
            .contains("iifname \"pa\" numgen random mod 100 < 50 drop"));
        let lost = (0..40)
            .filter(|_| {
                matches!(
                    probe(
                        &m.port(1).endpoint,
                        &m.port(0).endpoint,
                        Duration::from_millis(30)
                    ),
                    Ok(Outcome::Lost(_))
                )
            })
            .count();
        // 40 tries at 50%: all or none lost has probability 2^-39.
        assert!((1..40).contains(&lost), "{lost} of 40 lost");
        let healed = guard.heal().unwrap();
        assert!(healed.evidence.contains("dropped"), "{}", healed.evidence);
        assert!(!tables(&m.switch).contains("fl_loss_"));
        measure("loss", &loss, measure_count());
    });
}

#[test]
fn root_delay_is_read_back_and_healed_where_the_kernel_has_netem() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    with_mini(|m| {
        let delay = Delay {
            ns: m.members[0].0.clone(),
            links: vec!["eth0".into()],
            delay: Duration::from_millis(40),
            backend: crate::delay::DelayBackend::Netem,
            nfqueue: None,
        };
        let guard = match delay.inject() {
            Ok(guard) => guard,
            Err(e) => {
                let text = faultline_sys::error::chain(&e);
                assert!(text.contains("qdisc kind is unknown"), "{text}");
                eprintln!("skipped: this kernel has no netem (sch_netem): {text}");
                // A failed injection left nothing behind.
                let shown = m.members[0].0.ip(&["link", "show", "eth0"]).unwrap();
                assert!(!shown.contains("netem"), "{shown}");
                return;
            }
        };
        assert!(guard.onset().evidence.contains("netem"));
        match m.send(0, 1) {
            Outcome::Arrived(after) => assert!(after >= Duration::from_millis(40), "{after:?}"),
            Outcome::Lost(_) => panic!("delayed, not lost"),
        }
        let healed = guard.heal().unwrap();
        assert_eq!(healed.evidence, "eth0: no netem");
        measure("delay", &delay, measure_count());
    });
}
