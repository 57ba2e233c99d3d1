//! The delay fault: a slow network, made by a `netem` qdisc on a node's
//! interfaces inside its namespace (`tc qdisc add dev IF root netem delay
//! D`). Only hosts whose kernel has `sch_netem` can run it; the harness
//! refuses it elsewhere before any lab is built.
//!
//! Proof: the qdisc read back with `tc qdisc show`; healing deletes it and
//! reads back that no netem is left. It changes only the root qdisc of the
//! interfaces it is given.

use std::time::Duration;

use crate::clock::monotonic_ns;
use crate::fault::{Fault, FaultError, FaultGuard, Healed, Onset};
use crate::netns::{NetError, NetNs};
use crate::process::run;

/// Delays every frame leaving `links` (in `ns`) by `delay` until healed.
#[derive(Debug, Clone)]
pub struct Delay {
    /// The node's namespace.
    pub ns: NetNs,
    /// Its interfaces, e.g. `public`.
    pub links: Vec<String>,
    /// The added delay.
    pub delay: Duration,
}

/// Runs `tc -n NS args...` and returns its stdout.
fn tc(ns: &NetNs, args: &[&str]) -> Result<String, NetError> {
    let mut full = vec!["-n", ns.name()];
    full.extend_from_slice(args);
    let command = format!("tc {}", full.join(" "));
    let out = run("tc", &full).map_err(|source| NetError::Spawn {
        command: command.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(NetError::Failed {
            command,
            status: out.status,
            stderr: out.stderr.trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// The netem line of `tc qdisc show` output, if any.
fn netem_line(shown: &str) -> Option<&str> {
    shown
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("qdisc netem"))
}

impl Delay {
    fn usecs(&self) -> String {
        format!("{}us", self.delay.as_micros())
    }

    /// Adds netem to every link and reads it back.
    fn apply(&self) -> Result<String, FaultError> {
        let usecs = self.usecs();
        let mut evidence = Vec::new();
        for link in &self.links {
            tc(
                &self.ns,
                &[
                    "qdisc", "add", "dev", link, "root", "netem", "delay", &usecs,
                ],
            )?;
            let shown = tc(&self.ns, &["qdisc", "show", "dev", link])?;
            match netem_line(&shown) {
                Some(line) if line.contains("delay") => evidence.push(format!("{link}: {line}")),
                _ => {
                    return Err(FaultError::NotInEffect {
                        fault: self.describe(),
                        found: shown.trim().to_string(),
                    })
                }
            }
        }
        Ok(evidence.join(", "))
    }

    /// Removes netem from every link (best effort for each) and reads back.
    fn remove(&self) -> Result<String, FaultError> {
        let mut first_error = None;
        for link in &self.links {
            let shown = tc(&self.ns, &["qdisc", "show", "dev", link])?;
            if netem_line(&shown).is_some() {
                if let Err(e) = tc(&self.ns, &["qdisc", "del", "dev", link, "root"]) {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e.into());
        }
        let mut evidence = Vec::new();
        for link in &self.links {
            let shown = tc(&self.ns, &["qdisc", "show", "dev", link])?;
            if let Some(line) = netem_line(&shown) {
                return Err(FaultError::NotInEffect {
                    fault: self.describe(),
                    found: format!("{link}: {line}"),
                });
            }
            evidence.push(format!("{link}: no netem"));
        }
        Ok(evidence.join(", "))
    }
}

impl Fault for Delay {
    fn describe(&self) -> String {
        format!(
            "delay {} ms on {} in {}",
            self.delay.as_secs_f64() * 1e3,
            self.links.join(" "),
            self.ns.name()
        )
    }

    fn inject(&self) -> Result<Box<dyn FaultGuard>, FaultError> {
        let requested_ns = monotonic_ns();
        match self.apply() {
            Ok(evidence) => Ok(Box::new(DelayGuard {
                fault: self.clone(),
                onset: Onset {
                    requested_ns,
                    confirmed_ns: monotonic_ns(),
                    evidence,
                },
                healed: false,
            })),
            Err(e) => Err(e.after_undo(self.describe(), self.remove())),
        }
    }
}

#[derive(Debug)]
struct DelayGuard {
    fault: Delay,
    onset: Onset,
    healed: bool,
}

impl FaultGuard for DelayGuard {
    fn onset(&self) -> &Onset {
        &self.onset
    }

    fn heal(mut self: Box<Self>) -> Result<Healed, FaultError> {
        let requested_ns = monotonic_ns();
        self.healed = true;
        let evidence = self.fault.remove()?;
        Ok(Healed {
            requested_ns,
            confirmed_ns: monotonic_ns(),
            evidence,
        })
    }
}

impl Drop for DelayGuard {
    fn drop(&mut self) {
        if !self.healed {
            let _ = self.fault.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_netem_line_is_found_in_tc_output() {
        let shown = "qdisc netem 8001: root refcnt 2 limit 1000 delay 50ms\n";
        assert_eq!(
            netem_line(shown),
            Some("qdisc netem 8001: root refcnt 2 limit 1000 delay 50ms")
        );
        assert_eq!(netem_line("qdisc noqueue 0: root refcnt 2\n"), None);
    }

    #[test]
    fn describe_names_links_and_delay() {
        let d = Delay {
            ns: NetNs::open("fl-x-n1"),
            links: vec!["public".into()],
            delay: Duration::from_millis(50),
        };
        assert_eq!(d.describe(), "delay 50 ms on public in fl-x-n1");
        assert_eq!(d.usecs(), "50000us");
    }
}
