//! The runner: executes one scenario in a fresh lab. A thin shell around the
//! pure [`timeline::Timeline`]: its `select!` turns each source (trace
//! records from the collector and the observers, child exits from the
//! reaper, signals, the timeline's next deadline) into one input, carries
//! out the actions that come back through the lab (power on, inject, heal,
//! stop), and hands every record to one [`sink::Sink`] (the terminal and
//! the trace file, written as the run goes). It always tears the lab down.
//! It judges nothing: checks run on the trace.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};
use faultline_agent::clock::monotonic_ns;
use faultline_faults::cgroup::CgroupHost;
use faultline_faults::fault::FaultGuard;
use faultline_faults::process::{ExitStatus, Reaper, Spawn};

use crate::collector::Collector;

mod faults;
mod observers;
pub mod out;
mod sink;
mod timeline;

use crate::lab::{chain, Lab, LabError};
use crate::plan::ScenarioPlan;
use crate::report::terminal::Terminal;
use crate::trace::{FaultPhase, FaultRecord, Header, NoteRecord, Record, Trace, TRACE_VERSION};
use observers::Observers;
use sink::Sink;
use timeline::{Action, Input, Out, Outcome, Timeline};

/// How long supervisors have to stop on SIGTERM before the run is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How long a failed lab build waits for the signal that may have caused it
/// (Ctrl-C reaches the build's `ip` children too).
const SIGNAL_GRACE: Duration = Duration::from_millis(200);
/// How long a run waits for RT time that other live runs hold.
const RT_WAIT: Duration = Duration::from_secs(60);
/// How often it asks again meanwhile.
const RT_RETRY: Duration = Duration::from_secs(1);

/// What a run needs besides the plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The `faultline-agent` binary.
    pub agent: PathBuf,
    /// Where to keep this scenario's trace and node folders, if anywhere.
    /// The run locks it and clears what an earlier run left there.
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
    /// The `--out` folder is another live run's, or cannot be prepared.
    #[error(transparent)]
    Out(#[from] out::OutError),
    /// A signal arrived before the timeline began (before or during the
    /// lab's build); nothing is left of the run.
    #[error("interrupted by signal {0} before the run began")]
    Interrupted(i32),
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
    if let Ok(sig) = signals.try_recv() {
        return Err(RunError::Interrupted(sig));
    }
    let pid = std::process::id();
    let mut owned = match &opts.out {
        Some(dir) => Some(out::claim(dir, &format!("pid {pid}"))?),
        None => None,
    };
    let mut built = Instant::now();
    let waiting_since = Instant::now();
    let mut noted = false;
    let lab = loop {
        match Lab::build(host.clone(), plan, opts.out.as_deref()) {
            Ok(lab) => break lab,
            Err(e) => {
                if let Ok(sig) = signals.recv_timeout(SIGNAL_GRACE) {
                    return Err(RunError::Interrupted(sig));
                }
                // Other runs hold the RT time this one needs: they give it
                // back when they end, so wait for them (a while, and
                // interruptibly) before refusing.
                match e.rt_held_by_other_runs() {
                    Some(who) if waiting_since.elapsed() < RT_WAIT => {
                        if !noted {
                            term.line(&format!(
                                "            waiting up to {} s for RT time held by other \
                                 runs: {who}",
                                RT_WAIT.as_secs()
                            ));
                            noted = true;
                        }
                        if let Ok(sig) = signals.recv_timeout(RT_RETRY) {
                            return Err(RunError::Interrupted(sig));
                        }
                        built = Instant::now();
                    }
                    _ => return Err(e.into()),
                }
            }
        }
    };
    let build_ms = built.elapsed().as_millis();
    if let Some(lock) = &mut owned {
        lock.describe(&format!("pid {pid}, run {}", lab.id))?;
    }
    let trace_path = opts.out.as_ref().map(|o| o.join("trace.jsonl"));
    let mut sink = Sink::new(term, trace_path.as_deref()).map_err(RunError::Host)?;
    let run_id = lab.id.clone();
    sink.push(Record::Header(Header {
        t: monotonic_ns(),
        version: TRACE_VERSION,
        run_id: run_id.clone(),
        suite: suite.to_string(),
        scenario: plan.clone(),
        host: host_description(),
        topology: lab.topology.clone(),
    }));
    sink.push(note(format!(
        "lab {} up in {build_ms} ms: {} node(s), namespaces fl-{}-*, cgroups faultline/{}{}",
        lab.id,
        lab.nodes.len(),
        lab.id,
        lab.id,
        match lab.watchdog_rt_us() {
            0 => String::new(),
            us => format!(", {us} µs/s of RT time per watchdog"),
        }
    )));
    let (tx, rx) = crossbeam_channel::unbounded();
    // Past this point a failure still ends the trace file with its reason.
    let fail = |sink: &mut Sink<'_>, what: String| {
        sink.push(Record::End {
            t: monotonic_ns(),
            reason: Outcome::Failed(what.clone()).reason(),
        });
        RunError::Host(what)
    };
    let collector =
        match Collector::start(&lab.trace_socket(), tx.clone(), Some(&lab.switch.path())) {
            Ok(c) => c,
            Err(e) => {
                return Err(fail(
                    &mut sink,
                    format!("cannot bind the trace socket: {e}"),
                ))
            }
        };
    let exits = Reaper::global().subscribe();
    let observers = match Observers::start(&lab, plan, &tx) {
        Ok(o) => o,
        Err(e) => {
            collector.stop();
            return Err(fail(&mut sink, format!("cannot start the observers: {e}")));
        }
    };
    drop(tx);
    let mut shell = Shell {
        plan,
        lab,
        agent: &opts.agent,
        sink,
        supervisors: BTreeMap::new(),
        starts: BTreeMap::new(),
        guards: BTreeMap::new(),
    };
    let outcome = shell.drive(&rx, &exits, signals);
    shell.stop(&rx, &exits);
    for r in observers.stop() {
        shell.sink.push(r);
    }
    let malformed = collector.stop();
    while let Ok(r) = rx.try_recv() {
        shell.sink.push(r);
    }
    if malformed > 0 {
        shell.sink.push(note(format!(
            "{malformed} datagram(s) on the trace socket were not events"
        )));
    }
    shell.sink.push(Record::End {
        t: monotonic_ns(),
        reason: outcome.reason(),
    });
    let Shell { mut lab, sink, .. } = shell;
    let (trace, write_error) = sink.finish();
    if let Err(errors) = lab.teardown() {
        return Err(RunError::Host(format!(
            "teardown failed: {}",
            errors.join("; ")
        )));
    }
    if let Some(e) = write_error {
        return Err(RunError::Host(e));
    }
    match outcome {
        Outcome::Failed(e) => Err(RunError::Host(e)),
        Outcome::Completed => Ok(Finished {
            trace,
            interrupted: None,
            run_id,
        }),
        Outcome::Interrupted(sig) => Ok(Finished {
            trace,
            interrupted: Some(sig),
            run_id,
        }),
    }
}

fn note(text: String) -> Record {
    Record::Note(NoteRecord {
        t: monotonic_ns(),
        node: None,
        text,
    })
}

/// Carries out the timeline's actions through the lab.
struct Shell<'a, 't> {
    plan: &'a ScenarioPlan,
    lab: Lab,
    agent: &'a Path,
    sink: Sink<'t>,
    /// The live supervisor of each node, by pid.
    supervisors: BTreeMap<i32, String>,
    /// How many times each node was started.
    starts: BTreeMap<String, u32>,
    guards: BTreeMap<usize, Box<dyn FaultGuard>>,
}

impl Shell<'_, '_> {
    /// Feeds the timeline until it stops; how it ended.
    fn drive(
        &mut self,
        rx: &Receiver<Record>,
        exits: &Receiver<(i32, ExitStatus)>,
        signals: &Receiver<i32>,
    ) -> Outcome {
        let plan = self.plan;
        let (mut tl, outs) = Timeline::begin(plan, monotonic_ns());
        let mut outcome = self.carry_out(&mut tl, outs);
        // A source that closed is never selected again.
        let (mut rx, mut exits) = (rx.clone(), exits.clone());
        while outcome.is_none() {
            let next = tl
                .next_deadline()
                .map_or_else(crossbeam_channel::never, |t| {
                    crossbeam_channel::at(instant_of(t))
                });
            let mut record = None;
            let mut exit = None;
            let mut input = Input::Tick;
            select! {
                recv(rx) -> r => match r {
                    Ok(r) => record = Some(r),
                    Err(_) => rx = crossbeam_channel::never(),
                },
                recv(exits) -> e => match e {
                    Ok((pid, status)) => exit = self.exited(pid, status),
                    Err(_) => exits = crossbeam_channel::never(),
                },
                recv(signals) -> s => input = Input::Signal(s.unwrap_or(libc::SIGINT)),
                recv(next) -> _ => {},
            }
            if let Some(r) = &record {
                input = Input::Record(r);
            }
            if let Some((node, status, bugchecked)) = &exit {
                input = Input::Exit {
                    node,
                    status: status.clone(),
                    bugchecked: *bugchecked,
                };
            }
            let outs = tl.step(input, monotonic_ns());
            if let Some(r) = record {
                self.sink.push(r);
            }
            outcome = self.carry_out(&mut tl, outs);
        }
        outcome.expect("the loop ends on an outcome")
    }

    /// The node whose supervisor `pid` was, how it exited, and whether its
    /// watchdog bugchecked it (the marker it leaves in the node's state).
    fn exited(&mut self, pid: i32, status: ExitStatus) -> Option<(String, String, bool)> {
        let node = self.supervisors.remove(&pid)?;
        let bugchecked = self
            .lab
            .node(&node)
            .is_some_and(|n| faultline_agent::launch::bugcheck_marker_path(&n.dir).exists());
        Some((node, status.to_string(), bugchecked))
    }

    /// Carries out `outs` in order; what the timeline says to an action's
    /// outcome is carried out before the next action. Once the timeline has
    /// stopped, nothing more is started or injected.
    fn carry_out(&mut self, tl: &mut Timeline<'_>, outs: Vec<Out>) -> Option<Outcome> {
        let mut queue: VecDeque<Out> = outs.into();
        let mut outcome = None;
        while let Some(o) = queue.pop_front() {
            let done = match o {
                Out::Act(Action::Inject(i)) if outcome.is_some() => tl.abandon(i, monotonic_ns()),
                Out::Act(Action::PowerOn(_)) if outcome.is_some() => continue,
                Out::Record(r) => {
                    self.sink.push(r);
                    continue;
                }
                Out::Act(Action::Stop(o)) => {
                    outcome = Some(o);
                    continue;
                }
                Out::Act(Action::PowerOn(node)) => match self.power_on(&node) {
                    Ok(()) => continue,
                    Err(e) => tl.step(Input::HostError(e), monotonic_ns()),
                },
                Out::Act(Action::Inject(i)) => {
                    let r = self.inject(i);
                    let next = tl.step(Input::Record(&r), monotonic_ns());
                    self.sink.push(r);
                    next
                }
                Out::Act(Action::Heal { index, why }) => {
                    let Some(r) = self.heal(index, &why) else {
                        continue;
                    };
                    let next = tl.step(Input::Record(&r), monotonic_ns());
                    self.sink.push(r);
                    next
                }
            };
            for o in done.into_iter().rev() {
                queue.push_front(o);
            }
        }
        outcome
    }

    fn power_on(&mut self, name: &str) -> Result<(), String> {
        let node = self
            .lab
            .node(name)
            .ok_or_else(|| format!("node {name} is not in the lab"))?;
        let starts = self.starts.get(name).copied().unwrap_or(0);
        if starts > 0 {
            self.lab
                .reboot_network(node)
                .map_err(|e| format!("cannot reboot node {name}'s network: {}", chain(&e)))?;
        }
        let log_path = node.dir.join("agent.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let err = log
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let pid = Spawn::new(self.agent)
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
            .map_err(|e| format!("cannot start node {name}: {}", chain(&e)))?;
        self.supervisors.insert(pid, name.to_string());
        self.starts.insert(name.to_string(), starts + 1);
        Ok(())
    }

    /// Injects fault `i`; the record of how it went.
    fn inject(&mut self, i: usize) -> Record {
        let f = &self.plan.faults[i];
        let requested = monotonic_ns();
        let failed = |evidence: String| {
            Record::Fault(FaultRecord {
                t: monotonic_ns(),
                index: i,
                kind: f.kind(),
                node: f.node.clone(),
                phase: FaultPhase::Failed,
                requested,
                evidence,
            })
        };
        let fault = match faults::build_fault(f, i, self.plan, &self.lab) {
            Ok(fault) => fault,
            Err(e) => return failed(e),
        };
        match fault.inject() {
            Ok(guard) => {
                let onset = guard.onset().clone();
                self.guards.insert(i, guard);
                Record::Fault(FaultRecord {
                    t: onset.confirmed_ns,
                    index: i,
                    kind: f.kind(),
                    node: f.node.clone(),
                    phase: FaultPhase::Injected,
                    requested: onset.requested_ns,
                    evidence: onset.evidence,
                })
            }
            Err(e) => failed(format!("{}: {}", fault.describe(), chain(&e))),
        }
    }

    /// Heals fault `i` if it is in effect; the record of how it went.
    fn heal(&mut self, i: usize, why: &str) -> Option<Record> {
        let guard = self.guards.remove(&i)?;
        let f = &self.plan.faults[i];
        let requested = monotonic_ns();
        let rec = match guard.heal() {
            Ok(h) => FaultRecord {
                t: h.confirmed_ns,
                index: i,
                kind: f.kind(),
                node: f.node.clone(),
                phase: FaultPhase::Healed,
                requested: h.requested_ns,
                evidence: format!("{}; {why}", h.evidence),
            },
            Err(e) => FaultRecord {
                t: monotonic_ns(),
                index: i,
                kind: f.kind(),
                node: f.node.clone(),
                phase: FaultPhase::Failed,
                requested,
                evidence: format!("heal failed: {}", chain(&e)),
            },
        };
        Some(Record::Fault(rec))
    }

    /// Heals what is still in effect, stops the nodes (SIGTERM, then kill).
    fn stop(&mut self, rx: &Receiver<Record>, exits: &Receiver<(i32, ExitStatus)>) {
        let active: Vec<usize> = self.guards.keys().copied().collect();
        for i in active {
            if let Some(r) = self.heal(i, "the run is ending") {
                self.sink.push(r);
            }
        }
        for pid in self.supervisors.keys() {
            // SAFETY: kill(2) on a pid we spawned and have not reaped.
            unsafe { libc::kill(*pid, libc::SIGTERM) };
        }
        let deadline = crossbeam_channel::at(Instant::now() + STOP_GRACE);
        while !self.supervisors.is_empty() {
            select! {
                recv(rx) -> r => match r {
                    Ok(r) => self.sink.push(r),
                    Err(_) => break,
                },
                recv(exits) -> e => match e {
                    Ok((pid, _)) => {
                        self.supervisors.remove(&pid);
                    }
                    Err(_) => break,
                },
                recv(deadline) -> _ => break,
            }
        }
        if let Err(e) = self.lab.kill_all() {
            self.sink.push(note(format!(
                "cannot kill every process of the run: {}",
                chain(&e)
            )));
        }
    }
}

/// The `Instant` of a CLOCK_MONOTONIC timestamp (both read the same clock).
fn instant_of(t: u64) -> Instant {
    let now_ns = monotonic_ns();
    let now = Instant::now();
    if t >= now_ns {
        now + Duration::from_nanos(t - now_ns)
    } else {
        now.checked_sub(Duration::from_nanos(now_ns - t))
            .unwrap_or(now)
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
