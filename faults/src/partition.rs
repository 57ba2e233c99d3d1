//! The partition fault: sides of the network stop hearing each other. The
//! cut is one nftables table of the bridge family in the run's switch
//! namespace: frames entering from one side's switch ports and leaving
//! through another side's are dropped where the bridge forwards them. Both
//! ways, every frame (ARP included) is dropped, as a broken switch would;
//! one way, only the first side's frames towards the second are dropped,
//! and ARP still flows so that the second side can keep reaching the first.
//!
//! Proof (onset): a probe datagram sent across every cut, from a node's
//! namespace to another's, does not arrive; one way, one sent back does.
//! Proof (heal): the table is gone, and a probe across every cut arrives;
//! it is the undo of [`UndoGuard`], so a failed injection and a guard
//! dropped unhealed prove it too (the proof's error is then dropped or
//! attached). It never touches the nodes' namespaces, only the switch's.

use std::time::Duration;

use crate::clock::monotonic_ns;
use crate::fault::{Fault, FaultError, FaultGuard};
use crate::guard::{Undo, UndoGuard};
use crate::netns::NetNs;
use crate::nft::{unique_table_name, Table};
use crate::udp_probe::{probe, Endpoint, Outcome};

/// How long a probe across a cut is given to arrive before it counts as
/// lost: a bridge between namespaces delivers in well under a millisecond.
pub const LOST_AFTER: Duration = Duration::from_millis(50);
/// How long a probe that must arrive (the way back, or after healing) may
/// take: address resolution across a path that was cut may need a retry.
pub const ARRIVES_WITHIN: Duration = Duration::from_secs(3);

/// One member's presence on one network: its switch port, and where a
/// probe to or from it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// The switch port (in the switch namespace), e.g. `n1-pub`.
    pub port: String,
    /// The network's name, e.g. `public`: probes go between ports of one
    /// network.
    pub network: String,
    /// The member's namespace and address on that network.
    pub endpoint: Endpoint,
}

/// Cuts `sides` from each other on the switch.
#[derive(Debug, Clone)]
pub struct Partition {
    /// The run's switch namespace.
    pub switch: NetNs,
    /// Two or more sides, each with its members' ports on the networks cut.
    pub sides: Vec<Vec<Port>>,
    /// Only the first side's frames towards the second are dropped.
    pub one_way: bool,
}

impl Partition {
    /// The ordered pairs of sides whose frames are dropped (from, to).
    fn cuts(&self) -> Vec<(usize, usize)> {
        if self.one_way {
            return vec![(0, 1)];
        }
        let n = self.sides.len();
        (0..n)
            .flat_map(|a| (0..n).filter(move |&b| b != a).map(move |b| (a, b)))
            .collect()
    }

    fn rules(&self) -> Vec<String> {
        let set = |side: &[Port]| {
            let names: Vec<String> = side.iter().map(|p| format!("\"{}\"", p.port)).collect();
            format!("{{ {} }}", names.join(", "))
        };
        let only = if self.one_way {
            "ether type != arp "
        } else {
            ""
        };
        self.cuts()
            .into_iter()
            .map(|(a, b)| {
                format!(
                    "iifname {} oifname {} {only}counter drop",
                    set(&self.sides[a]),
                    set(&self.sides[b])
                )
            })
            .collect()
    }

    /// One probe per cut and network: the first port of each side there.
    fn probes(&self, cuts: &[(usize, usize)]) -> Vec<(Endpoint, Endpoint)> {
        let mut out = Vec::new();
        for &(a, b) in cuts {
            let mut networks: Vec<&str> =
                self.sides[a].iter().map(|p| p.network.as_str()).collect();
            networks.sort_unstable();
            networks.dedup();
            for net in networks {
                let from = self.sides[a].iter().find(|p| p.network == net);
                let to = self.sides[b].iter().find(|p| p.network == net);
                if let (Some(from), Some(to)) = (from, to) {
                    out.push((from.endpoint.clone(), to.endpoint.clone()));
                }
            }
        }
        out
    }

    fn describe_sides(&self) -> String {
        let sides: Vec<String> = self
            .sides
            .iter()
            .map(|s| {
                let ports: Vec<&str> = s.iter().map(|p| p.port.as_str()).collect();
                format!("[{}]", ports.join(" "))
            })
            .collect();
        sides.join(if self.one_way { " -/-> " } else { " | " })
    }

    /// Proves the cut: every probe across it is lost; one way, every probe
    /// back arrives.
    fn prove_cut(&self, table: &Table) -> Result<String, FaultError> {
        let across = self.probes(&self.cuts());
        let back: Vec<(Endpoint, Endpoint)> = if self.one_way {
            across.iter().map(|(a, b)| (b.clone(), a.clone())).collect()
        } else {
            Vec::new()
        };
        let lost = run_all(&across, LOST_AFTER);
        let arrived = run_all(&back, ARRIVES_WITHIN);
        let mut evidence = Vec::new();
        for ((from, to), r) in across.iter().zip(lost) {
            match r {
                Ok(Outcome::Lost(after)) => evidence.push(format!(
                    "{} -> {} lost ({} ms)",
                    from.label,
                    to.label,
                    after.as_millis()
                )),
                Ok(Outcome::Arrived(after)) => {
                    return Err(self.not_in_effect(format!(
                        "a probe {} -> {} arrived after {:.1} ms",
                        from.label,
                        to.label,
                        after.as_secs_f64() * 1e3
                    )))
                }
                Err(e) => return Err(self.not_in_effect(e)),
            }
        }
        for ((from, to), r) in back.iter().zip(arrived) {
            match r {
                Ok(Outcome::Arrived(after)) => evidence.push(format!(
                    "{} -> {} arrived ({:.1} ms)",
                    from.label,
                    to.label,
                    after.as_secs_f64() * 1e3
                )),
                Ok(Outcome::Lost(after)) => {
                    return Err(self.not_in_effect(format!(
                        "one way, yet a probe {} -> {} was lost ({} ms)",
                        from.label,
                        to.label,
                        after.as_millis()
                    )))
                }
                Err(e) => return Err(self.not_in_effect(e)),
            }
        }
        let dropped: u64 = table.counters()?.iter().map(|c| c.packets).sum();
        Ok(format!(
            "{}: {} rule(s), {dropped} frame(s) dropped; probes: {}",
            table.describe(),
            self.cuts().len(),
            evidence.join(", ")
        ))
    }

    fn not_in_effect(&self, found: String) -> FaultError {
        FaultError::NotInEffect {
            fault: self.describe(),
            found,
        }
    }
}

/// Runs the probes at once (each on its own thread), in order of `pairs`.
fn run_all(pairs: &[(Endpoint, Endpoint)], wait: Duration) -> Vec<Result<Outcome, String>> {
    let handles: Vec<_> = pairs
        .iter()
        .cloned()
        .map(|(from, to)| std::thread::spawn(move || probe(&from, &to, wait)))
        .collect();
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap_or_else(|_| Err("a probe thread panicked".into()))
        })
        .collect()
}

impl Fault for Partition {
    fn describe(&self) -> String {
        format!("partition {}", self.describe_sides())
    }

    fn inject(&self) -> Result<Box<dyn FaultGuard>, FaultError> {
        if self.sides.len() < 2 || self.sides.iter().any(Vec::is_empty) {
            return Err(self.not_in_effect("fewer than two non-empty sides".into()));
        }
        let state = PartitionGuard {
            fault: self.clone(),
            table: Table::new(self.switch.clone(), "bridge", unique_table_name("cut")),
            created: false,
        };
        UndoGuard::inject(self.describe(), state, PartitionGuard::apply)
    }
}

/// A cut switch; the table goes on heal or drop, and probes prove the
/// sides hear each other again ([`UndoGuard`]).
#[derive(Debug)]
struct PartitionGuard {
    fault: Partition,
    table: Table,
    /// Whether the table was created (nothing to undo before).
    created: bool,
}

impl PartitionGuard {
    /// Creates the table and proves the cut: (confirmed ns, evidence).
    fn apply(&mut self) -> Result<(u64, String), FaultError> {
        self.table.create("forward", &self.fault.rules())?;
        self.created = true;
        let evidence = self.fault.prove_cut(&self.table)?;
        Ok((monotonic_ns(), evidence))
    }
}

impl Undo for PartitionGuard {
    /// Deletes the table, reads back that it is gone, and proves that a
    /// probe across every cut arrives.
    fn undo(&mut self) -> Result<String, FaultError> {
        if !self.created {
            return Ok(String::new());
        }
        let dropped: u64 = self
            .table
            .counters()
            .map(|c| c.iter().map(|c| c.packets).sum())
            .unwrap_or(0);
        self.table.delete()?;
        if self.table.exists()? {
            return Err(self
                .fault
                .not_in_effect(format!("{} still listed", self.table.describe())));
        }
        let across = self.fault.probes(&self.fault.cuts());
        let mut evidence = Vec::new();
        for ((from, to), r) in across.iter().zip(run_all(&across, ARRIVES_WITHIN)) {
            match r {
                Ok(Outcome::Arrived(after)) => evidence.push(format!(
                    "{} -> {} arrived ({:.1} ms)",
                    from.label,
                    to.label,
                    after.as_secs_f64() * 1e3
                )),
                Ok(Outcome::Lost(after)) => {
                    return Err(self.fault.not_in_effect(format!(
                        "healed, yet a probe {} -> {} was lost ({} ms)",
                        from.label,
                        to.label,
                        after.as_millis()
                    )))
                }
                Err(e) => return Err(self.fault.not_in_effect(e)),
            }
        }
        Ok(format!(
            "{} deleted after dropping {dropped} frame(s); probes: {}",
            self.table.describe(),
            evidence.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(node: &str, net: &str) -> Port {
        Port {
            port: format!("{node}-{}", &net[..3]),
            network: net.into(),
            endpoint: Endpoint {
                label: format!("{node} {net}"),
                ns: format!("/run/netns/{node}").into(),
                ip: std::net::Ipv4Addr::LOCALHOST,
            },
        }
    }

    fn partition(one_way: bool) -> Partition {
        Partition {
            switch: NetNs::open("sw"),
            sides: vec![
                vec![port("n1", "public"), port("n1", "private")],
                vec![port("n2", "public"), port("n3", "public")],
                vec![port("cl", "public")],
            ],
            one_way,
        }
    }

    #[test]
    fn both_ways_cuts_every_ordered_pair_of_sides_and_arp_too() {
        let p = partition(false);
        assert_eq!(p.cuts().len(), 6);
        let rules = p.rules();
        assert_eq!(
            rules[0],
            "iifname { \"n1-pub\", \"n1-pri\" } oifname { \"n2-pub\", \"n3-pub\" } counter drop"
        );
        assert!(rules.iter().all(|r| !r.contains("arp")));
        assert_eq!(
            p.describe(),
            "partition [n1-pub n1-pri] | [n2-pub n3-pub] | [cl-pub]"
        );
    }

    #[test]
    fn one_way_cuts_first_to_second_only_and_lets_arp_through() {
        let p = partition(true);
        assert_eq!(p.cuts(), vec![(0, 1)]);
        assert_eq!(
            p.rules(),
            vec!["iifname { \"n1-pub\", \"n1-pri\" } oifname { \"n2-pub\", \"n3-pub\" } ether type != arp counter drop"]
        );
        // One probe per network both sides are on: public only.
        let probes = p.probes(&p.cuts());
        assert_eq!(probes.len(), 1);
        assert_eq!(probes[0].0.label, "n1 public");
        assert_eq!(probes[0].1.label, "n2 public");
    }

    #[test]
    fn fewer_than_two_sides_is_refused_before_touching_anything() {
        let mut p = partition(false);
        p.sides.truncate(1);
        assert!(matches!(p.inject(), Err(FaultError::NotInEffect { .. })));
    }
}
