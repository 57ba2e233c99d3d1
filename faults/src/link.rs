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
use faultline_sys::rtnl::{Link, LinkChange, Request};

/// Takes `links` (in namespace `ns`) down until healed.
#[derive(Debug, Clone)]
pub struct LinkDown {
    /// The namespace holding the links (the run's switch namespace).
    pub ns: NetNs,
    /// The links, e.g. `n1-pub`.
    pub links: Vec<String>,
}

impl LinkDown {
    /// Sets every link up or down in one netlink datagram, then reads the
    /// links back (a dump from the same socket) as evidence.
    fn set(&self, up: bool) -> Result<String, FaultError> {
        let mut rtnl = self.ns.rtnl()?;
        let change = LinkChange {
            up: Some(up),
            ..LinkChange::default()
        };
        rtnl.exec_all(
            self.links
                .iter()
                .map(|l| Request::set_link(l, &change))
                .collect(),
        )
        .map_err(|e| self.ns.rtnl_err(e))?;
        let shown = rtnl.links().map_err(|e| self.ns.rtnl_err(e))?;
        evidence(&self.links, &shown, up).map_err(|found| FaultError::NotInEffect {
            fault: self.describe(),
            found,
        })
    }
}

/// `a0: UP, b0: UP` when every link of `names` is in the state wanted;
/// otherwise what was found instead.
fn evidence(names: &[String], shown: &[Link], up: bool) -> Result<String, String> {
    let mut evidence = Vec::new();
    for name in names {
        let Some(link) = shown.iter().find(|l| &l.name == name) else {
            return Err(format!("{name}: no such link"));
        };
        if link.is_up() != up {
            return Err(format!(
                "{name}: {} (flags {:#x})",
                if link.is_up() { "UP" } else { "not UP" },
                link.flags
            ));
        }
        evidence.push(format!("{name}: {}", if up { "UP" } else { "not UP" }));
    }
    Ok(evidence.join(", "))
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

    fn link(name: &str, up: bool) -> Link {
        Link {
            index: 2,
            flags: if up { libc::IFF_UP as u32 } else { 0 },
            name: name.into(),
            master: None,
            mac: None,
        }
    }

    #[test]
    fn evidence_is_read_from_the_dump_and_a_wrong_state_or_missing_link_refused() {
        let names = vec!["a0".to_string(), "b0".to_string()];
        let shown = [link("a0", false), link("b0", false)];
        assert_eq!(
            evidence(&names, &shown, false).unwrap(),
            "a0: not UP, b0: not UP"
        );
        let e = evidence(&names, &shown, true).unwrap_err();
        assert_eq!(e, "a0: not UP (flags 0x0)");
        let e = evidence(&names, &shown[..1], false).unwrap_err();
        assert_eq!(e, "b0: no such link");
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
