//! The link-down fault: takes network links down (a node's ports on the
//! run's bridges) and proves it by reading each link's flags back; healing
//! brings them up and proves that too. Partitions by network are built from
//! it; the harness names the links.
//!
//! It changes only the links it is given; it never touches addresses,
//! routes, or the host's own network (the links live in a namespace).

use crate::clock::monotonic_ns;
use crate::fault::{Fault, FaultError, FaultGuard, Healed, Onset};
use crate::netns::NetNs;

/// Takes `links` (in namespace `ns`) down until healed.
#[derive(Debug, Clone)]
pub struct LinkDown {
    /// The namespace holding the links (the run's switch namespace).
    pub ns: NetNs,
    /// The links, e.g. `n1-pub`.
    pub links: Vec<String>,
}

impl LinkDown {
    fn set(&self, up: bool) -> Result<String, FaultError> {
        let state = if up { "up" } else { "down" };
        for link in &self.links {
            self.ns.ip(&["link", "set", "dev", link, state])?;
        }
        let mut evidence = Vec::new();
        for link in &self.links {
            let shown = self.ns.ip(&["-o", "link", "show", "dev", link])?;
            let is_up = link_flags(&shown).is_some_and(|f| f.split(',').any(|x| x == "UP"));
            if is_up != up {
                return Err(FaultError::NotInEffect {
                    fault: self.describe(),
                    found: shown.trim().to_string(),
                });
            }
            evidence.push(format!("{link}: {}", if is_up { "UP" } else { "not UP" }));
        }
        Ok(evidence.join(", "))
    }
}

/// The flags of `ip -o link show` output: `<BROADCAST,MULTICAST,UP,...>`.
fn link_flags(shown: &str) -> Option<&str> {
    let start = shown.find('<')? + 1;
    let end = start + shown[start..].find('>')?;
    Some(&shown[start..end])
}

impl Fault for LinkDown {
    fn describe(&self) -> String {
        format!("link down {} in {}", self.links.join(" "), self.ns.name())
    }

    fn inject(&self) -> Result<Box<dyn FaultGuard>, FaultError> {
        let requested_ns = monotonic_ns();
        let evidence = match self.set(false) {
            Ok(e) => e,
            Err(e) => {
                let _ = self.set(true);
                return Err(e);
            }
        };
        Ok(Box::new(LinkDownGuard {
            fault: self.clone(),
            onset: Onset {
                requested_ns,
                confirmed_ns: monotonic_ns(),
                evidence,
            },
            healed: false,
        }))
    }
}

#[derive(Debug)]
struct LinkDownGuard {
    fault: LinkDown,
    onset: Onset,
    healed: bool,
}

impl FaultGuard for LinkDownGuard {
    fn onset(&self) -> &Onset {
        &self.onset
    }

    fn heal(mut self: Box<Self>) -> Result<Healed, FaultError> {
        let requested_ns = monotonic_ns();
        self.healed = true;
        let evidence = self.fault.set(true)?;
        Ok(Healed {
            requested_ns,
            confirmed_ns: monotonic_ns(),
            evidence,
        })
    }
}

impl Drop for LinkDownGuard {
    fn drop(&mut self) {
        if !self.healed {
            let _ = self.fault.set(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{is_root, unique_name};

    #[test]
    fn flags_are_read_from_ip_output() {
        let shown = "5: n1-pub@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue";
        assert_eq!(link_flags(shown), Some("BROADCAST,MULTICAST,UP,LOWER_UP"));
        assert_eq!(link_flags("garbage"), None);
    }

    #[test]
    fn root_link_down_is_read_back_and_healed() {
        if !is_root() {
            return;
        }
        let ns = NetNs::create(&unique_name("link")).unwrap();
        let result = std::panic::catch_unwind(|| {
            ns.ip(&["link", "add", "a0", "type", "veth", "peer", "name", "b0"])
                .unwrap();
            ns.ip(&["link", "set", "a0", "up"]).unwrap();
            let fault = LinkDown {
                ns: ns.clone(),
                links: vec!["a0".into()],
            };
            let guard = fault.inject().unwrap();
            assert_eq!(guard.onset().evidence, "a0: not UP");
            assert!(!ns
                .ip(&["-o", "link", "show", "dev", "a0"])
                .unwrap()
                .contains(",UP"));
            let healed = guard.heal().unwrap();
            assert_eq!(healed.evidence, "a0: UP");
            let missing = LinkDown {
                ns: ns.clone(),
                links: vec!["nope0".into()],
            };
            assert!(missing.inject().is_err());
        });
        ns.delete().unwrap();
        result.unwrap();
    }
}
