//! The loss fault: a flaky network that drops a percentage of frames at
//! random. It is one nftables table of the bridge family in the run's
//! switch namespace: frames entering through the given switch ports (and,
//! for one node's links, leaving through them too) are counted, and
//! `numgen random mod 100 < N` of them dropped.
//!
//! Proof (onset): the rules are read back from the kernel with their
//! counters. Proof (heal): the frames counted and dropped while it lasted,
//! then the table is gone. It never touches the nodes' namespaces.

use crate::clock::monotonic_ns;
use crate::fault::{Fault, FaultError, FaultGuard};
use crate::guard::{Undo, UndoGuard};
use crate::netns::NetNs;
use crate::nft::{unique_table_name, RuleCounter, Table};

/// Drops `percent` of the frames through `ports` until healed.
#[derive(Debug, Clone)]
pub struct Loss {
    /// The run's switch namespace.
    pub switch: NetNs,
    /// The switch ports whose frames are lossy, e.g. `n1-pub`.
    pub ports: Vec<String>,
    /// Frames leaving through `ports` are lossy too (one node's links: its
    /// frames both ways). Off when `ports` are every port of a network, so
    /// that each frame is judged once.
    pub outgoing_too: bool,
    /// 1-100.
    pub percent: u32,
}

impl Loss {
    /// The match of a random `percent` of the frames: `numgen random mod
    /// 100 < N` (nft refuses `< 100`, so 100% is `<= 99`).
    fn share(&self) -> String {
        if self.percent >= 100 {
            "numgen random mod 100 <= 99".into()
        } else {
            format!("numgen random mod 100 < {}", self.percent)
        }
    }

    fn rules(&self) -> Vec<String> {
        let names: Vec<String> = self.ports.iter().map(|p| format!("\"{p}\"")).collect();
        let set = format!("{{ {} }}", names.join(", "));
        let mut dirs = vec!["iifname"];
        if self.outgoing_too {
            dirs.push("oifname");
        }
        dirs.iter()
            .flat_map(|dir| {
                [
                    format!("{dir} {set} counter"),
                    format!("{dir} {set} {} counter drop", self.share()),
                ]
            })
            .collect()
    }

    fn not_in_effect(&self, found: String) -> FaultError {
        FaultError::NotInEffect {
            fault: self.describe(),
            found,
        }
    }
}

/// Frames counted and frames dropped, from the table's counters.
fn tally(counters: &[RuleCounter]) -> (u64, u64) {
    let dropped = counters
        .iter()
        .filter(|c| c.rule.ends_with(" drop"))
        .map(|c| c.packets)
        .sum();
    let seen = counters
        .iter()
        .filter(|c| !c.rule.ends_with(" drop"))
        .map(|c| c.packets)
        .sum();
    (seen, dropped)
}

impl Fault for Loss {
    fn describe(&self) -> String {
        format!("loss {}% on {}", self.percent, self.ports.join(" "))
    }

    fn inject(&self) -> Result<Box<dyn FaultGuard>, FaultError> {
        if self.ports.is_empty() || !(1..=100).contains(&self.percent) {
            return Err(self.not_in_effect(format!(
                "{} port(s), {}%: nothing to make lossy",
                self.ports.len(),
                self.percent
            )));
        }
        let state = LossGuard {
            fault: self.clone(),
            table: Table::new(self.switch.clone(), "bridge", unique_table_name("loss")),
            created: false,
        };
        UndoGuard::inject(self.describe(), state, LossGuard::apply)
    }
}

/// A lossy switch; the table goes on heal or drop ([`UndoGuard`]).
#[derive(Debug)]
struct LossGuard {
    fault: Loss,
    table: Table,
    /// Whether the table was created (nothing to undo before).
    created: bool,
}

impl LossGuard {
    /// Creates the table and reads its rules back: (confirmed ns,
    /// evidence).
    fn apply(&mut self) -> Result<(u64, String), FaultError> {
        self.table.create("forward", &self.fault.rules())?;
        self.created = true;
        let c = self.table.counters()?;
        let needle = self.fault.share();
        let lossy: Vec<&RuleCounter> = c.iter().filter(|c| c.rule.contains(&needle)).collect();
        if lossy.len() != if self.fault.outgoing_too { 2 } else { 1 } {
            return Err(self.fault.not_in_effect(format!("rules read back: {c:?}")));
        }
        let rules: Vec<&str> = lossy.iter().map(|c| c.rule.as_str()).collect();
        Ok((
            monotonic_ns(),
            format!("{}: {}", self.table.describe(), rules.join("; ")),
        ))
    }
}

impl Undo for LossGuard {
    /// Reads the counters, deletes the table and reads back that it is
    /// gone.
    fn undo(&mut self) -> Result<String, FaultError> {
        if !self.created {
            return Ok(String::new());
        }
        let counted = self.table.counters();
        let deleted = self.table.delete();
        let (seen, dropped) = tally(&counted?);
        deleted?;
        if self.table.exists()? {
            return Err(self
                .fault
                .not_in_effect(format!("{} still listed", self.table.describe())));
        }
        let share = if seen == 0 {
            String::new()
        } else {
            format!(" ({:.1}%)", dropped as f64 * 100.0 / seen as f64)
        };
        Ok(format!(
            "{seen} frame(s) counted, {dropped} dropped{share}; {} deleted",
            self.table.describe()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_nodes_links_are_lossy_both_ways_every_port_once() {
        let mut l = Loss {
            switch: NetNs::open("sw"),
            ports: vec!["n1-pub".into()],
            outgoing_too: true,
            percent: 10,
        };
        assert_eq!(
            l.rules(),
            vec![
                "iifname { \"n1-pub\" } counter",
                "iifname { \"n1-pub\" } numgen random mod 100 < 10 counter drop",
                "oifname { \"n1-pub\" } counter",
                "oifname { \"n1-pub\" } numgen random mod 100 < 10 counter drop",
            ]
        );
        l.percent = 100;
        assert!(l.rules()[1].contains("numgen random mod 100 <= 99 counter drop"));
        l.outgoing_too = false;
        assert_eq!(l.rules().len(), 2);
        l.percent = 0;
        assert!(matches!(l.inject(), Err(FaultError::NotInEffect { .. })));
    }

    #[test]
    fn tally_counts_seen_and_dropped_frames() {
        let c = |rule: &str, packets| RuleCounter {
            rule: rule.into(),
            packets,
        };
        let counters = [
            c("iifname \"a\"", 100),
            c("iifname \"a\" numgen random mod 100 < 10 drop", 9),
            c("oifname \"a\"", 50),
            c("oifname \"a\" numgen random mod 100 < 10 drop", 6),
        ];
        assert_eq!(tally(&counters), (150, 15));
    }
}
