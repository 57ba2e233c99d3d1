//! The delay fault: a slow network. Frames leaving a node's interfaces are
//! held `delay` before they go, by one of two mechanisms
//! ([`DelayBackend`], chosen from the host's probes):
//!
//! - netem: a `netem` qdisc on the interfaces inside the node's namespace
//!   (`tc qdisc add dev IF root netem delay D`); proof: the qdisc read back
//!   with `tc qdisc show`; healing deletes it and reads back that none is
//!   left. It changes only the root qdisc of the interfaces it is given.
//! - nfqueue (kernels without `sch_netem`): a `delay` helper (`faultline
//!   helper delay`, in the node's namespace and workload cgroup, with its
//!   own deadline) binds an NFQUEUE, and one iptables chain of the
//!   mangle table in the node's namespace, jumped to from OUTPUT, queues
//!   every IP packet leaving the interfaces to it (`-o IF -j NFQUEUE
//!   --queue-num N --queue-bypass`: if the helper is gone, packets pass
//!   undelayed rather than vanish). iptables (iptables-nft, the xt target
//!   through nft_compat), not an nft `queue` rule: this host's kernel has
//!   no nft_queue. The
//!   helper holds each packet `delay` and accepts it. Proof: a probe
//!   datagram from the node to a peer measured arriving at least `delay`
//!   late, and the rule's counter. Heal: the table goes first (nothing new
//!   is queued), held packets are let go on time, then the helper ends and
//!   says how many it held. ARP is not IP and is not delayed (netem
//!   delays it).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};

use crate::cgroup::Cgroup;
use crate::helper::child::HelperChild;
pub use crate::host::DelayBackend;
use crate::udp_probe::{self, Endpoint, Outcome};

/// Delays every frame leaving `links` (in `ns`) by `delay` until healed.
#[derive(Debug, Clone)]
pub struct Delay {
    /// The node's namespace.
    pub ns: NetNs,
    /// Its interfaces, e.g. `public`.
    pub links: Vec<String>,
    /// The added delay.
    pub delay: Duration,
    /// How.
    pub backend: DelayBackend,
    /// What the nfqueue backend needs (and the probe that proves it).
    pub nfqueue: Option<NfqueueSetup>,
}

/// The nfqueue backend's helper and proof.
#[derive(Debug, Clone)]
pub struct NfqueueSetup {
    /// The program that runs helpers (`faultline`).
    pub program: PathBuf,
    /// The node's workload cgroup, where the helper runs.
    pub workload: Cgroup,
    /// How long the helper may live at most.
    pub lifetime: Duration,
    /// A probe datagram goes from the first endpoint (the node, on a
    /// delayed link) to the second (a peer on that network).
    pub probe: (Endpoint, Endpoint),
}

/// How long the helper may take to bind its queue.
const READY_WITHIN: Duration = Duration::from_secs(5);
/// How long a probe may take beyond the delay.
const PROBE_MARGIN: Duration = Duration::from_secs(2);
/// The longest a heal waits for held packets to leave on time.
const DRAIN_AT_MOST: Duration = Duration::from_secs(1);

/// A queue number no other delay of this process uses (queues are per
/// namespace; this keeps two faults on one node apart).
fn next_queue() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

use std::time::{Duration, Instant};

use crate::clock::monotonic_ns;
use crate::fault::{Fault, FaultError, FaultGuard};
use crate::guard::{Undo, UndoGuard};
use crate::netns::{NetError, NetNs};
use crate::process::run;

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
            "delay {} ms ({}) on {} in {}",
            self.delay.as_secs_f64() * 1e3,
            match self.backend {
                DelayBackend::Netem => "netem",
                DelayBackend::Nfqueue => "nfqueue",
            },
            self.links.join(" "),
            self.ns.name()
        )
    }

    fn inject(&self) -> Result<Box<dyn FaultGuard>, FaultError> {
        match self.backend {
            DelayBackend::Netem => UndoGuard::inject(self.describe(), Netem(self.clone()), |n| {
                let evidence = n.0.apply()?;
                Ok((monotonic_ns(), evidence))
            }),
            DelayBackend::Nfqueue => {
                let Some(setup) = self.nfqueue.clone() else {
                    return Err(self.not_in_effect("no helper or probe given for nfqueue".into()));
                };
                let queue = next_queue();
                let state = Nfq {
                    fault: self.clone(),
                    setup,
                    table: QueueChain::new(self.ns.clone(), queue),
                    queue,
                    child: None,
                };
                UndoGuard::inject(self.describe(), state, Nfq::apply)
            }
        }
    }
}

/// A netem delay; the qdisc goes on heal or drop ([`UndoGuard`]).
#[derive(Debug)]
struct Netem(Delay);

impl Undo for Netem {
    fn undo(&mut self) -> Result<String, FaultError> {
        self.0.remove()
    }
}

impl Delay {
    fn not_in_effect(&self, found: String) -> FaultError {
        FaultError::NotInEffect {
            fault: self.describe(),
            found,
        }
    }
}

/// The iptables chain `FL_DELAY_<queue>` of the mangle table in a node's
/// namespace, jumped to from OUTPUT, queueing what leaves the given
/// interfaces to NFQUEUE `queue`. Deleting it deletes every rule it made.
#[derive(Debug, Clone)]
pub struct QueueChain {
    ns: NetNs,
    queue: u16,
}

impl QueueChain {
    /// The chain of `queue` in `ns` (not created yet).
    pub fn new(ns: NetNs, queue: u16) -> QueueChain {
        QueueChain { ns, queue }
    }

    fn name(&self) -> String {
        format!("FL_DELAY_{}", self.queue)
    }

    /// `chain mangle FL_DELAY_1 in fl-ab12-n1`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "iptables chain mangle {} in {}",
            self.name(),
            self.ns.name()
        )
    }

    fn ipt(&self, args: &[&str]) -> Result<String, NetError> {
        let mut full = vec!["-w", "-t", "mangle"];
        full.extend_from_slice(args);
        self.ns.run("iptables", &full)
    }

    /// Creates the chain and its rules, then the jump to it (so nothing is
    /// queued before every rule is there); a failure undoes what was made.
    pub fn create(&self, links: &[String]) -> Result<(), NetError> {
        let chain = self.name();
        let queue = self.queue.to_string();
        self.ipt(&["-N", &chain])?;
        let made = links
            .iter()
            .try_for_each(|link| {
                self.ipt(&[
                    "-A",
                    &chain,
                    "-o",
                    link,
                    "-j",
                    "NFQUEUE",
                    "--queue-num",
                    &queue,
                    "--queue-bypass",
                ])
                .map(drop)
            })
            .and_then(|()| self.ipt(&["-A", "OUTPUT", "-j", &chain]).map(drop));
        if let Err(e) = made {
            let _ = self.delete();
            return Err(e);
        }
        Ok(())
    }

    /// Packets its rules have queued (`iptables -L -v -x`, first column).
    pub fn packets(&self) -> Result<u64, NetError> {
        let shown = self.ipt(&["-L", &self.name(), "-v", "-n", "-x"])?;
        Ok(parse_packets(&shown))
    }

    /// Whether the chain exists.
    pub fn exists(&self) -> Result<bool, NetError> {
        if !self.ns.path().exists() {
            return Ok(false);
        }
        let shown = self.ipt(&["-S"])?;
        Ok(shown
            .lines()
            .any(|l| l.trim() == format!("-N {}", self.name())))
    }

    /// Removes the jump, the rules and the chain; gone already is fine.
    pub fn delete(&self) -> Result<(), NetError> {
        if !self.exists()? {
            return Ok(());
        }
        let chain = self.name();
        // The jump may be missing if creation failed half-way.
        let _ = self.ipt(&["-D", "OUTPUT", "-j", &chain]);
        self.ipt(&["-F", &chain])?;
        self.ipt(&["-X", &chain]).map(drop)
    }
}

/// The packets of every rule in `iptables -L CHAIN -v -n -x` output.
fn parse_packets(shown: &str) -> u64 {
    shown
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// A delay by nfqueue: the chain and the helper, removed on heal or drop
/// ([`UndoGuard`]).
#[derive(Debug)]
struct Nfq {
    fault: Delay,
    setup: NfqueueSetup,
    table: QueueChain,
    queue: u16,
    child: Option<HelperChild>,
}

impl Nfq {
    /// Starts the helper, adds the rules and proves them: (confirmed ns,
    /// evidence).
    fn apply(&mut self) -> Result<(u64, String), FaultError> {
        let start = Instant::now();
        if self.fault.links.is_empty() {
            return Err(self.fault.not_in_effect("no interface to delay".into()));
        }
        let describe = self.fault.describe();
        let helper_err = |source| FaultError::Helper {
            fault: describe.clone(),
            source,
        };
        let queue = self.queue;
        let spawn = crate::helper::command(
            &self.setup.program,
            "delay",
            self.setup.lifetime,
            &[
                "--queue".into(),
                queue.to_string(),
                "--delay-us".into(),
                self.fault.delay.as_micros().to_string(),
            ],
        )
        .netns(self.fault.ns.path())
        .cgroup_procs(self.setup.workload.procs_files())
        .parent_death_signal(libc::SIGKILL);
        let child = self
            .child
            .insert(HelperChild::start(spawn).map_err(helper_err)?);
        child
            .expect(READY_WITHIN, "ready queue N", |(_, l)| {
                l.starts_with("ready ")
            })
            .map_err(helper_err)?;
        let pid = child.pid;
        let rule = self
            .fault
            .links
            .iter()
            .map(|l| format!("-o {l} -j NFQUEUE --queue-num {queue} --queue-bypass"))
            .collect::<Vec<_>>()
            .join("; ");
        self.table.create(&self.fault.links)?;
        let live_ms = start.elapsed().as_secs_f64() * 1e3;
        let (from, to) = &self.setup.probe;
        let outcome = udp_probe::probe(from, to, self.fault.delay + PROBE_MARGIN)
            .map_err(|e| self.fault.not_in_effect(format!("probe failed: {e}")))?;
        let took = match outcome {
            Outcome::Arrived(took) if took >= self.fault.delay => took,
            other => {
                return Err(self.fault.not_in_effect(format!(
                    "probe {} -> {}: {other:?}, expected to arrive no sooner than {:?}",
                    from.label, to.label, self.fault.delay
                )))
            }
        };
        let queued = self.table.packets()?;
        if queued == 0 {
            return Err(self.fault.not_in_effect(format!(
                "the queue rules of {} counted no packet",
                self.table.describe()
            )));
        }
        let evidence = format!(
            "{}: `{rule}`, live {live_ms:.1} ms after the request, {queued} packet(s) queued to \
             NFQUEUE {queue} (helper pid {}); probe {} -> {} arrived after {:.1} ms (delay {} ms)",
            self.table.describe(),
            pid,
            from.label,
            to.label,
            took.as_secs_f64() * 1e3,
            self.fault.delay.as_secs_f64() * 1e3
        );
        Ok((monotonic_ns(), evidence))
    }

    /// Deletes the table, lets held packets go on time, stops the helper;
    /// what was read back.
    fn remove(&mut self) -> Result<String, FaultError> {
        let counted = self.table.packets().ok();
        let deleted = self.table.delete();
        std::thread::sleep(self.fault.delay.min(DRAIN_AT_MOST));
        let helper = self.child.as_mut().map(|child| {
            let status = child.stop(libc::SIGTERM, Duration::from_secs(2));
            let said = child
                .said
                .iter()
                .rev()
                .find(|(_, l)| l.starts_with("held "))
                .map(|(_, l)| l.clone())
                .unwrap_or_else(|| format!("said {}", child.transcript()));
            format!(
                "helper pid {} ended ({}): {said}",
                child.pid,
                status.map_or("still running".into(), |s| s.to_string())
            )
        });
        deleted?;
        if self.table.exists()? {
            return Err(self
                .fault
                .not_in_effect(format!("{} still there", self.table.describe())));
        }
        Ok(format!(
            "{} deleted (its queue rules counted {} packet(s)); {}",
            self.table.describe(),
            counted.map_or("?".into(), |n| n.to_string()),
            helper.unwrap_or_else(|| "no helper was started".into())
        ))
    }
}

impl Undo for Nfq {
    fn undo(&mut self) -> Result<String, FaultError> {
        self.remove()
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
    fn undoing_an_nfqueue_delay_that_never_started_touches_nothing() {
        let ns = NetNs::open("fl-nonexistent-n1");
        let mut state = Nfq {
            fault: Delay {
                ns: ns.clone(),
                links: vec!["public".into()],
                delay: Duration::from_millis(1),
                backend: DelayBackend::Nfqueue,
                nfqueue: None,
            },
            setup: NfqueueSetup {
                program: "/nonexistent/faultline".into(),
                workload: crate::cgroup::CgroupHost::with_roots(Default::default(), None)
                    .open(std::path::Path::new("f/n1/workload")),
                lifetime: Duration::from_secs(1),
                probe: (
                    Endpoint {
                        label: "a".into(),
                        ns: ns.path(),
                        ip: std::net::Ipv4Addr::LOCALHOST,
                    },
                    Endpoint {
                        label: "b".into(),
                        ns: ns.path(),
                        ip: std::net::Ipv4Addr::LOCALHOST,
                    },
                ),
            },
            table: QueueChain::new(ns, 9),
            queue: 9,
            child: None,
        };
        let said = state.undo().unwrap();
        assert!(
            said.contains("FL_DELAY_9") && said.contains("no helper was started"),
            "{said}"
        );
    }

    #[test]
    fn queued_packets_are_summed_from_iptables_output() {
        let shown = "Chain FL_DELAY_1 (1 references)\n    pkts      bytes target     prot opt in     out     source               destination\n       3      252 NFQUEUE    0    --  *      public  0.0.0.0/0            0.0.0.0/0            NFQUEUE num 1 bypass\n       2      100 NFQUEUE    0    --  *      private 0.0.0.0/0            0.0.0.0/0            NFQUEUE num 1 bypass\n";
        assert_eq!(parse_packets(shown), 5);
        assert_eq!(parse_packets("Chain X (0 references)\n pkts bytes\n"), 0);
    }

    #[test]
    fn describe_names_links_and_delay() {
        let d = Delay {
            ns: NetNs::open("fl-x-n1"),
            links: vec!["public".into()],
            delay: Duration::from_millis(50),
            backend: DelayBackend::Netem,
            nfqueue: None,
        };
        assert_eq!(d.describe(), "delay 50 ms (netem) on public in fl-x-n1");
        assert_eq!(d.usecs(), "50000us");
    }
}
