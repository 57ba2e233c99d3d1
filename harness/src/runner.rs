//! The runner: executes one scenario in a fresh lab as a loop over events
//! (trace records from the collector, child exits from the reaper, signals,
//! and the timeline's own deadlines), recording everything into the trace.
//!
//! It injects and heals faults, plays the hardware of each node (power off
//! when a watchdog fences it, power on after `restart_delay`), and always
//! tears the lab down. It judges nothing: checks run on the finished trace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};
use faultline_agent::clock::monotonic_ns;
use faultline_agent::events::{EventKind, RecoveryAction};
use faultline_faults::cgroup::CgroupHost;
use faultline_faults::fault::{Fault, FaultGuard};
use faultline_faults::process::{ExitStatus, Reaper, Spawn};

use crate::collector::Collector;

mod observers;
use crate::lab::{chain, Lab, LabError, LabNode};
use crate::plan::ScenarioPlan;
use crate::report::terminal::Terminal;
use crate::suite::faults::FaultSite;
use crate::topology::NodeIndex;
use crate::trace::{FaultPhase, FaultRecord, Header, Record, Trace, TRACE_VERSION};
use observers::Observers;

/// How long every node has to come up (watchdog armed).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long supervisors have to stop on SIGTERM before the run is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// What a run needs besides the plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The `faultline-agent` binary.
    pub agent: PathBuf,
    /// Where to keep this scenario's trace and node folders, if anywhere.
    pub out: Option<PathBuf>,
}

/// A run that could not produce a complete trace.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The lab could not be built.
    #[error("cannot build the lab")]
    Lab(#[from] LabError),
    /// Something of the host failed mid-run.
    #[error("{0}")]
    Host(String),
}

/// A finished run: its trace, and whether a signal cut it short.
pub struct Finished {
    /// Everything recorded.
    pub trace: Trace,
    /// The signal that interrupted the run, if one did.
    pub interrupted: Option<i32>,
    /// The run's id.
    pub run_id: String,
}

enum Step {
    Inject(usize),
    Heal(usize),
    PowerOn(String),
    End,
}

struct NodeState {
    supervisor: Option<i32>,
    starts: u32,
}

struct Run<'a> {
    plan: &'a ScenarioPlan,
    lab: Lab,
    opts: &'a RunOptions,
    trace: Trace,
    term: &'a mut Terminal,
    nodes: BTreeMap<String, NodeState>,
    guards: BTreeMap<usize, Box<dyn FaultGuard>>,
    steps: Vec<(Instant, Step)>,
}

/// Runs one scenario. Must be called from a long-lived thread (the main
/// thread): node processes die with the thread that spawned them.
pub fn run_scenario(
    host: CgroupHost,
    suite: &str,
    plan: &ScenarioPlan,
    opts: &RunOptions,
    term: &mut Terminal,
    signals: &Receiver<i32>,
) -> Result<Finished, RunError> {
    if let Some(out) = &opts.out {
        std::fs::create_dir_all(out)
            .map_err(|e| RunError::Host(format!("cannot create {}: {e}", out.display())))?;
    }
    let built = Instant::now();
    let lab = Lab::build(host, plan, opts.out.as_deref())?;
    term.line(&format!(
        "  lab {} up in {} ms: {} node(s), namespaces fl-{}-*, cgroups faultline/{}",
        lab.id,
        built.elapsed().as_millis(),
        lab.nodes.len(),
        lab.id,
        lab.id
    ));
    let (tx, rx) = crossbeam_channel::unbounded();
    let collector = Collector::start(&lab.trace_socket(), tx.clone())
        .map_err(|e| RunError::Host(format!("cannot bind the trace socket: {e}")))?;
    let exits = Reaper::global().subscribe();
    let observers = match Observers::start(&lab, plan, &tx) {
        Ok(o) => o,
        Err(e) => {
            collector.stop();
            return Err(RunError::Host(format!("cannot start the observers: {e}")));
        }
    };
    drop(tx);
    let run_id = lab.id.clone();
    let mut run = Run {
        plan,
        trace: Trace {
            records: vec![Record::Header(Header {
                t: monotonic_ns(),
                version: TRACE_VERSION,
                run_id: run_id.clone(),
                suite: suite.to_string(),
                scenario: plan.clone(),
                host: host_description(),
                topology: lab.topology.clone(),
            })],
        },
        lab,
        opts,
        term,
        nodes: BTreeMap::new(),
        guards: BTreeMap::new(),
        steps: Vec::new(),
    };
    let outcome = run.drive(&rx, &exits, signals);
    run.stop(&rx, &exits);
    observers.stop();
    let malformed = collector.stop();
    while let Ok(r) = rx.try_recv() {
        run.push(r);
    }
    let (reason, interrupted, error) = match outcome {
        Ok(None) => ("completed".to_string(), None, None),
        Ok(Some(sig)) => (format!("interrupted by signal {sig}"), Some(sig), None),
        Err(e) => (format!("error: {e}"), None, Some(e)),
    };
    if malformed > 0 {
        run.term.line(&format!(
            "  note: {malformed} datagram(s) on the trace socket were not events"
        ));
    }
    run.push(Record::End {
        t: monotonic_ns(),
        reason,
    });
    let mut lab = run.lab;
    if let Err(errors) = lab.teardown() {
        return Err(RunError::Host(format!(
            "teardown failed: {}",
            errors.join("; ")
        )));
    }
    let mut trace = run.trace;
    trace.sort();
    if let Some(out) = &opts.out {
        let path = out.join("trace.jsonl");
        let f = std::fs::File::create(&path)
            .map_err(|e| RunError::Host(format!("cannot write {}: {e}", path.display())))?;
        trace
            .write_to(std::io::BufWriter::new(f))
            .map_err(|e| RunError::Host(format!("cannot write {}: {e}", path.display())))?;
    }
    if let Some(e) = error {
        return Err(e);
    }
    Ok(Finished {
        trace,
        interrupted,
        run_id,
    })
}

impl Run<'_> {
    fn push(&mut self, r: Record) {
        self.term.record(&r);
        self.trace.records.push(r);
    }

    /// Runs the timeline; `Ok(Some(signal))` when interrupted.
    fn drive(
        &mut self,
        rx: &Receiver<Record>,
        exits: &Receiver<(i32, ExitStatus)>,
        signals: &Receiver<i32>,
    ) -> Result<Option<i32>, RunError> {
        for i in 0..self.lab.nodes.len() {
            let name = self.lab.nodes[i].name.clone();
            self.nodes.insert(
                name.clone(),
                NodeState {
                    supervisor: None,
                    starts: 0,
                },
            );
            self.power_on(&name)?;
        }
        if let Some(sig) = self.wait_until_up(rx, exits, signals)? {
            return Ok(Some(sig));
        }
        let t0 = Instant::now();
        self.push(Record::Start { t: monotonic_ns() });
        for (i, f) in self.plan.faults.iter().enumerate() {
            self.steps.push((t0 + f.at, Step::Inject(i)));
            self.steps.push((t0 + f.at + f.duration, Step::Heal(i)));
        }
        self.steps.push((t0 + self.plan.duration, Step::End));
        loop {
            self.steps.sort_by_key(|(at, _)| *at);
            let next = self
                .steps
                .first()
                .map(|(at, _)| *at)
                .expect("End is always scheduled");
            let wait = next.saturating_duration_since(Instant::now());
            select! {
                recv(rx) -> r => if let Ok(r) = r { self.push(r) },
                recv(exits) -> e => if let Ok((pid, status)) = e { self.on_exit(pid, status)? },
                recv(signals) -> s => return Ok(Some(s.unwrap_or(libc::SIGINT))),
                default(wait) => {
                    let (_, step) = self.steps.remove(0);
                    match step {
                        Step::Inject(i) => self.inject(i)?,
                        Step::Heal(i) => self.heal(i, "its time is up"),
                        Step::PowerOn(node) => self.power_on(&node)?,
                        Step::End => {
                            self.push(Record::Settled { t: monotonic_ns() });
                            return Ok(None);
                        }
                    }
                }
            }
        }
    }

    fn wait_until_up(
        &mut self,
        rx: &Receiver<Record>,
        exits: &Receiver<(i32, ExitStatus)>,
        signals: &Receiver<i32>,
    ) -> Result<Option<i32>, RunError> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut up: Vec<String> = Vec::new();
        // Up means every watchdog armed and, in a cluster, every group
        // online somewhere: faults hit a cluster in its steady state.
        let mut groups_online: Vec<String> = Vec::new();
        while up.len() < self.plan.nodes.len() || groups_online.len() < self.plan.groups.len() {
            let wait = deadline.saturating_duration_since(Instant::now());
            select! {
                            recv(rx) -> r => if let Ok(r) = r {
                                if let Record::Event(e) = &r {
                                    let ready = match self.plan.node(&e.node).map(|n| n.settings.hang_recovery_action) {
                                        Some(RecoveryAction::Disabled) => e.kind() == EventKind::ServiceStarted,
                                        Some(_) => e.kind() == EventKind::WatchdogArmed,
                                        None => false,
                                    };
                                    if ready && !up.contains(&e.node) {
                                        up.push(e.node.clone());
                                    }
                                    if e.kind() == EventKind::GroupOnline {
                                        if let Some(g) = e.data.group() {
                                            if !groups_online.iter().any(|x| x == g) {
                                                groups_online.push(g.to_string());
                                            }
                                        }
                                    }
                                }
                                self.push(r);
                            },
                            recv(exits) -> e => if let Ok((pid, status)) = e {
                                if let Some(node) = self.node_of(pid) {
                                    return Err(RunError::Host(format!(
                                        "node {node} died while starting ({status}); see {}/agent.log",
                                        self.lab.node(&node).map(|n| n.dir.display().to_string()).unwrap_or_default()
                                    )));
                                }
                            },
                            recv(signals) -> s => return Ok(Some(s.unwrap_or(libc::SIGINT))),
                            default(wait) => {
            let missing: Vec<&str> = self
                                    .plan
                                    .nodes
                                    .iter()
                                    .map(|n| n.name.as_str())
                                    .filter(|n| !up.iter().any(|u| u == n))
                                    .collect();
                                let offline: Vec<&str> = self
                                    .plan
                                    .groups
                                    .iter()
                                    .map(|g| g.name.as_str())
                                    .filter(|g| !groups_online.iter().any(|o| o == g))
                                    .collect();
                                let mut why = Vec::new();
                                if !missing.is_empty() {
                                    why.push(format!("node(s) {} did not come up (no armed watchdog)", missing.join(", ")));
                                }
                                if !offline.is_empty() {
                                    why.push(format!("group(s) {} never came online", offline.join(", ")));
                                }
                                return Err(RunError::Host(format!(
                                    "{} within {} s; see agent.log and cluster.log in the nodes' folders",
                                    why.join(" and "),
                                    STARTUP_TIMEOUT.as_secs()
                                )));
                            }
                        }
        }
        Ok(None)
    }

    fn node_of(&self, pid: i32) -> Option<String> {
        self.nodes
            .iter()
            .find(|(_, s)| s.supervisor == Some(pid))
            .map(|(n, _)| n.clone())
    }

    fn lab_node(&self, name: &str) -> &LabNode {
        self.lab.node(name).expect("plan nodes exist in the lab")
    }

    fn power_on(&mut self, name: &str) -> Result<(), RunError> {
        let node = self.lab_node(name);
        let starts = self.nodes[name].starts;
        if starts > 0 {
            self.lab.reboot_network(node)?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("agent.log"))
            .map_err(|e| {
                RunError::Host(format!("cannot open {}/agent.log: {e}", node.dir.display()))
            })?;
        let err = log
            .try_clone()
            .map_err(|e| RunError::Host(format!("cannot open agent.log: {e}")))?;
        let pid = Spawn::new(&self.opts.agent)
            .arg("supervisor")
            .arg("--node-dir")
            .arg(&node.dir)
            .netns(node.ns.path())
            .cgroup_procs(node.watchdog.procs_files())
            .parent_death_signal(libc::SIGKILL)
            .new_session()
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| RunError::Host(format!("cannot start node {name}: {}", chain(&e))))?;
        let state = self.nodes.get_mut(name).expect("node state exists");
        state.supervisor = Some(pid);
        state.starts += 1;
        if starts > 0 {
            self.push(Record::Power {
                t: monotonic_ns(),
                node: name.to_string(),
                on: true,
                reason: "restart after bugcheck".into(),
            });
        }
        Ok(())
    }

    fn on_exit(&mut self, pid: i32, status: ExitStatus) -> Result<(), RunError> {
        let Some(name) = self.node_of(pid) else {
            return Ok(());
        };
        self.nodes.get_mut(&name).expect("node").supervisor = None;
        let node = self.lab_node(&name);
        let bugchecked = node.dir.join("state").join("bugcheck.marker").exists();
        let restart_delay = self
            .plan
            .node(&name)
            .map(|n| n.settings.restart_delay)
            .unwrap_or_default();
        let reason = if bugchecked {
            format!(
                "fenced by its watchdog (bugcheck); back in {} ms",
                restart_delay.as_millis()
            )
        } else {
            format!("supervisor exited unexpectedly ({status})")
        };
        self.push(Record::Power {
            t: monotonic_ns(),
            node: name.clone(),
            on: false,
            reason,
        });
        // A reboot ends every user-mode hang of the node.
        let active: Vec<usize> = self
            .guards
            .keys()
            .copied()
            .filter(|i| self.plan.faults[*i].node == name)
            .collect();
        for i in active {
            self.heal(i, "the node was powered off");
        }
        if bugchecked {
            self.steps
                .push((Instant::now() + restart_delay, Step::PowerOn(name)));
        }
        Ok(())
    }

    /// Assembles fault `i` from its table entry and the lab's facts.
    fn build_fault(&self, i: usize) -> Result<Box<dyn Fault>, RunError> {
        let f = &self.plan.faults[i];
        let index = self
            .plan
            .nodes
            .iter()
            .position(|n| n.name == f.node)
            .and_then(NodeIndex::new)
            .expect("validated node");
        let site = FaultSite {
            node: index,
            service: &self.lab_node(&f.node).service,
            switch: &self.lab.switch,
            client: self.lab.client.as_ref().map(|c| c.path()),
        };
        f.build(&site).map_err(RunError::Host)
    }

    fn inject(&mut self, i: usize) -> Result<(), RunError> {
        let f = &self.plan.faults[i];
        if self.nodes[&f.node].supervisor.is_none() {
            self.term.line(&format!(
                "  note: fault #{i} skipped: node {} is powered off",
                f.node
            ));
            return Ok(());
        }
        let fault = self.build_fault(i)?;
        let requested = monotonic_ns();
        match fault.inject() {
            Ok(guard) => {
                let onset = guard.onset().clone();
                self.guards.insert(i, guard);
                self.push(Record::Fault(FaultRecord {
                    t: onset.confirmed_ns,
                    index: i,
                    kind: f.kind(),
                    node: f.node.clone(),
                    phase: FaultPhase::Injected,
                    requested: onset.requested_ns,
                    evidence: onset.evidence,
                }));
                Ok(())
            }
            Err(e) => {
                let detail = chain(&e);
                self.push(Record::Fault(FaultRecord {
                    t: monotonic_ns(),
                    index: i,
                    kind: f.kind(),
                    node: f.node.clone(),
                    phase: FaultPhase::Failed,
                    requested,
                    evidence: detail.clone(),
                }));
                Err(RunError::Host(format!(
                    "cannot inject {}: {detail}",
                    fault.describe()
                )))
            }
        }
    }

    fn heal(&mut self, i: usize, why: &str) {
        let Some(guard) = self.guards.remove(&i) else {
            return;
        };
        let f = &self.plan.faults[i];
        let (kind, node) = (f.kind(), f.node.clone());
        let requested = monotonic_ns();
        let rec = match guard.heal() {
            Ok(h) => FaultRecord {
                t: h.confirmed_ns,
                index: i,
                kind,
                node,
                phase: FaultPhase::Healed,
                requested: h.requested_ns,
                evidence: format!("{}; {why}", h.evidence),
            },
            Err(e) => FaultRecord {
                t: monotonic_ns(),
                index: i,
                kind,
                node,
                phase: FaultPhase::Failed,
                requested,
                evidence: format!("heal failed: {}", chain(&e)),
            },
        };
        self.push(Record::Fault(rec));
    }

    /// Heals what is active, stops the nodes (SIGTERM, then kill).
    fn stop(&mut self, rx: &Receiver<Record>, exits: &Receiver<(i32, ExitStatus)>) {
        let active: Vec<usize> = self.guards.keys().copied().collect();
        for i in active {
            self.heal(i, "the run is ending");
        }
        for s in self.nodes.values() {
            if let Some(pid) = s.supervisor {
                // SAFETY: kill(2) on a pid we spawned and have not reaped.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        while self.nodes.values().any(|s| s.supervisor.is_some()) {
            let wait = deadline.saturating_duration_since(Instant::now());
            select! {
                recv(rx) -> r => if let Ok(r) = r { self.push(r) },
                recv(exits) -> e => if let Ok((pid, _)) = e {
                    if let Some(n) = self.node_of(pid) {
                        self.nodes.get_mut(&n).expect("node").supervisor = None;
                    }
                },
                default(wait) => break,
            }
        }
        if let Err(e) = self.lab.kill_all() {
            self.term.line(&format!("  warning: {}", chain(&e)));
        }
    }
}

fn host_description() -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cgroups = crate::lab::host_cgroups()
        .map(|h| h.capabilities().version.to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("linux {} cgroup {cgroups}", kernel.trim())
}

/// The `--out` folder of one scenario.
pub fn scenario_out(out: &Path, suite: &str, scenario: &str) -> PathBuf {
    out.join(suite).join(scenario)
}
