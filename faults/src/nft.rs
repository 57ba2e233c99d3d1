//! nftables tables inside a namespace, through the `nft` program: the one
//! seam the network faults (`partition`, `loss`) use to add a table, read
//! its rules' counters back, and delete it. Issue 9 may move this onto
//! netlink; callers see only [`Table`].
//!
//! It runs `nft` inside the namespace it is given (entered by the child before exec), one
//! table per fault, so deleting a fault's rules is deleting its table. It
//! must not touch the host's own ruleset or a table it did not create.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::netns::{NetError, NetNs};

/// One nftables table of a fault, in a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    ns: NetNs,
    family: &'static str,
    name: String,
}

/// A rule as `nft list table` shows it, with its counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCounter {
    /// The rule's text without its counter, e.g. `iifname "n1-pub" drop`.
    pub rule: String,
    /// Packets the rule's counter has seen.
    pub packets: u64,
}

/// A table name no other fault of this process uses: `fl_<what>_<pid>_<n>`.
pub fn unique_table_name(what: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "fl_{what}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `nft args...` inside `ns` and returns its stdout.
pub fn nft(ns: &NetNs, args: &[&str]) -> Result<String, NetError> {
    ns.run("nft", args)
}

impl Table {
    /// The table `name` of `family` (`bridge`, `inet`, ...) in `ns`; it
    /// need not exist yet.
    pub fn new(ns: NetNs, family: &'static str, name: String) -> Table {
        Table { ns, family, name }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `bridge fl_x_1 in fl-ab12-sw`, for messages.
    pub fn describe(&self) -> String {
        format!("table {} {} in {}", self.family, self.name, self.ns.name())
    }

    /// Creates the table with one base chain `chain` (`type filter hook
    /// <hook> priority 0; policy accept`) holding `rules`, in one
    /// transaction: all of it or nothing.
    pub fn create(&self, hook: &str, rules: &[String]) -> Result<(), NetError> {
        let mut body = format!(
            "table {} {} {{ chain cut {{ type filter hook {hook} priority 0; policy accept; ",
            self.family, self.name
        );
        for rule in rules {
            body.push_str(rule);
            body.push_str("; ");
        }
        body.push_str("}; }");
        nft(&self.ns, &[&body]).map(drop)
    }

    /// The rules of the table with their counters, in order.
    pub fn counters(&self) -> Result<Vec<RuleCounter>, NetError> {
        let shown = nft(&self.ns, &["list", "table", self.family, &self.name])?;
        Ok(parse_counters(&shown))
    }

    /// Whether the table exists (`nft list tables`).
    pub fn exists(&self) -> Result<bool, NetError> {
        let shown = nft(&self.ns, &["list", "tables", self.family])?;
        Ok(shown
            .lines()
            .any(|l| l.trim() == format!("table {} {}", self.family, self.name)))
    }

    /// Deletes the table; already gone (or its namespace gone) is fine.
    pub fn delete(&self) -> Result<(), NetError> {
        if !self.ns.path().exists() || !self.exists()? {
            return Ok(());
        }
        nft(&self.ns, &["delete", "table", self.family, &self.name]).map(drop)
    }
}

/// The rules with a counter in `nft list table` output.
pub fn parse_counters(shown: &str) -> Vec<RuleCounter> {
    shown
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let at = line.find("counter packets ")?;
            let rest = &line[at + "counter packets ".len()..];
            let packets = rest.split_whitespace().next()?.parse().ok()?;
            // `counter packets N bytes M` is dropped from the rule's text.
            let after = rest
                .split_whitespace()
                .skip(3)
                .collect::<Vec<_>>()
                .join(" ");
            let rule = format!("{}{after}", &line[..at]).trim().to_string();
            Some(RuleCounter { rule, packets })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{is_root, unique_name};

    #[test]
    fn counters_are_read_from_nft_list_output() {
        let shown = "table bridge t {\n\tchain cut {\n\t\ttype filter hook forward priority 0; policy accept;\n\
                     \t\tiifname { \"a\", \"b\" } oifname \"c\" counter packets 12 bytes 840 drop\n\
                     \t\tiifname \"a\" numgen random mod 100 < 30 counter packets 0 bytes 0 drop\n\t}\n}\n";
        assert_eq!(
            parse_counters(shown),
            vec![
                RuleCounter {
                    rule: "iifname { \"a\", \"b\" } oifname \"c\" drop".into(),
                    packets: 12
                },
                RuleCounter {
                    rule: "iifname \"a\" numgen random mod 100 < 30 drop".into(),
                    packets: 0
                },
            ]
        );
        assert!(parse_counters("garbage\ncounter packets x").is_empty());
    }

    #[test]
    fn table_names_are_unique() {
        assert_ne!(unique_table_name("loss"), unique_table_name("loss"));
        assert!(unique_table_name("cut").starts_with("fl_cut_"));
    }

    #[test]
    fn root_table_is_created_counted_and_deleted() {
        if !is_root() || crate::process::run("nft", &["--version"]).is_err() {
            eprintln!("skipped: needs root and nft");
            return;
        }
        let ns = NetNs::create(&unique_name("nft")).unwrap();
        let result = std::panic::catch_unwind(|| {
            let t = Table::new(ns.clone(), "bridge", unique_table_name("t"));
            assert!(!t.exists().unwrap());
            t.create("forward", &["iifname \"x0\" counter drop".into()])
                .unwrap();
            assert!(t.exists().unwrap());
            let c = t.counters().unwrap();
            assert_eq!(c.len(), 1);
            assert_eq!(c[0].rule, "iifname \"x0\" drop");
            // A bad rule creates nothing.
            let bad = Table::new(ns.clone(), "bridge", unique_table_name("bad"));
            assert!(bad.create("forward", &["no such syntax".into()]).is_err());
            assert!(!bad.exists().unwrap());
            t.delete().unwrap();
            assert!(!t.exists().unwrap());
            t.delete().unwrap();
        });
        ns.delete().unwrap();
        result.unwrap();
    }
}
