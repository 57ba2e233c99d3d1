//! The scenario's timeline as a pure state machine: one input at a time (a
//! trace record, a node's exit, a signal, a host failure, or just the time
//! passing) with the time it happened, and out come the actions the shell
//! must carry out (power on, inject, heal, stop) and the records that
//! explain them. It does no I/O and reads no clock, so every decision is
//! unit-tested on hand-made inputs. It must not touch the lab: "this node
//! was bugchecked" is an input the shell reads from the node's folder.
//!
//! Every input first fires the steps that are due at its time, so a flood
//! of records cannot hold a deadline back.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use faultline_agent::events::{EventKind, RecoveryAction};

use crate::plan::ScenarioPlan;
use crate::trace::{FaultPhase, FaultRecord, NoteRecord, Record};

/// How long every node has to come up (watchdog armed, groups online),
/// plus [`STARTUP_PER_NODE`] for each node.
pub(crate) const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// More start-up time per node: three processes each, all starting at
/// once on a host with few CPUs (128 nodes armed in about 3 s on 2 loaded
/// vCPUs, release build).
pub(crate) const STARTUP_PER_NODE: Duration = Duration::from_millis(100);

/// The start-up deadline of a scenario with `nodes` nodes.
pub(crate) fn startup_timeout(nodes: usize) -> Duration {
    STARTUP_TIMEOUT + STARTUP_PER_NODE * u32::try_from(nodes).unwrap_or(u32::MAX)
}

/// One input, stamped by the shell with the time it was taken.
#[derive(Debug)]
pub(crate) enum Input<'r> {
    /// A record reached the trace (an agent's event, an observer's record,
    /// or the outcome of an action the shell carried out).
    Record(&'r Record),
    /// A node's supervisor exited; `bugchecked` when its watchdog left the
    /// bugcheck marker (the node fenced itself).
    Exit {
        /// The node.
        node: &'r str,
        /// How it exited, for people.
        status: String,
        /// Whether its watchdog bugchecked it.
        bugchecked: bool,
    },
    /// SIGINT, SIGTERM or SIGHUP.
    Signal(i32),
    /// The shell could not carry out an action (a node would not start).
    HostError(String),
    /// Nothing happened but the time passed (the next deadline).
    Tick,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Start the node's supervisor (after a reboot: restore its network first).
    PowerOn(String),
    /// Inject fault `index` of the plan and record the outcome.
    Inject(usize),
    /// Heal fault `index` and record the outcome.
    Heal {
        /// The fault.
        index: usize,
        /// Why, for the record.
        why: String,
    },
    /// The timeline is over: stop the nodes and end the run.
    Stop(Outcome),
}

/// How the timeline ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It ran its whole duration.
    Completed,
    /// A signal cut it short.
    Interrupted(i32),
    /// The run could not go on (a node did not start, a fault could not be
    /// injected).
    Failed(String),
}

impl Outcome {
    /// The `end` record's reason.
    pub(crate) fn reason(&self) -> String {
        match self {
            Outcome::Completed => "completed".into(),
            Outcome::Interrupted(sig) => format!("interrupted by signal {sig}"),
            Outcome::Failed(e) => format!("error: {e}"),
        }
    }
}

/// One output, in the order the shell must handle them.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a few outputs per input, each moved straight to the sink or the lab"
)]
pub(crate) enum Out {
    /// Carry this out.
    Act(Action),
    /// Record this.
    Record(Record),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaultState {
    /// Not yet due.
    Pending,
    /// The shell was asked to inject it.
    Requested,
    /// The shell was asked to inject it, and its heal came due before the
    /// injection was confirmed: heal it as soon as it is in effect.
    RequestedOverdue,
    /// In effect.
    Active,
    /// The shell was asked to heal it.
    Healing,
    /// Healed, failed or skipped.
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Inject(usize),
    Heal(usize),
    PowerOn(String),
    End,
}

#[derive(Debug)]
enum Phase {
    Starting {
        deadline: u64,
        up: BTreeSet<String>,
        online: BTreeSet<String>,
    },
    Running,
    Stopped,
}

/// The timeline of one scenario.
#[derive(Debug)]
pub(crate) struct Timeline<'p> {
    plan: &'p ScenarioPlan,
    phase: Phase,
    powered: BTreeMap<String, bool>,
    faults: Vec<FaultState>,
    steps: Vec<(u64, Step)>,
    /// Why the faults that never came were not injected, once stopped.
    stopped_why: Option<String>,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl<'p> Timeline<'p> {
    /// A timeline that starts every node at `now`; the actions to do so.
    pub(crate) fn begin(plan: &'p ScenarioPlan, now: u64) -> (Self, Vec<Out>) {
        let tl = Timeline {
            plan,
            phase: Phase::Starting {
                deadline: now.saturating_add(ns(startup_timeout(plan.nodes.len()))),
                up: BTreeSet::new(),
                online: BTreeSet::new(),
            },
            powered: plan.nodes.iter().map(|n| (n.name.clone(), true)).collect(),
            faults: vec![FaultState::Pending; plan.faults.len()],
            steps: Vec::new(),
            stopped_why: None,
        };
        let outs = plan
            .nodes
            .iter()
            .map(|n| Out::Act(Action::PowerOn(n.name.clone())))
            .collect();
        (tl, outs)
    }

    /// When the timeline next needs a [`Input::Tick`], if ever.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        let step = self.steps.iter().map(|(at, _)| *at).min();
        match &self.phase {
            Phase::Starting { deadline, .. } => Some(*deadline),
            Phase::Running => step,
            Phase::Stopped => None,
        }
    }

    /// Whether the timeline has stopped.
    pub(crate) fn stopped(&self) -> bool {
        matches!(self.phase, Phase::Stopped)
    }

    /// Takes one input at `now`; what to do and record, in order.
    pub(crate) fn step(&mut self, input: Input<'_>, now: u64) -> Vec<Out> {
        let mut out = Vec::new();
        self.fire_due(now, &mut out);
        if self.stopped() {
            return out;
        }
        match input {
            Input::Record(r) => self.on_record(r, now, &mut out),
            Input::Exit {
                node,
                status,
                bugchecked,
            } => self.on_exit(node, &status, bugchecked, now, &mut out),
            Input::Signal(sig) => self.stop(Outcome::Interrupted(sig), now, &mut out),
            Input::HostError(e) => self.stop(Outcome::Failed(e), now, &mut out),
            Input::Tick => {}
        }
        out
    }

    /// The shell did not carry out `Inject(i)` because the timeline stopped
    /// meanwhile (an earlier action failed): the record that says so.
    pub(crate) fn abandon(&mut self, i: usize, now: u64) -> Vec<Out> {
        let mut out = Vec::new();
        if self.faults.get(i) == Some(&FaultState::Requested) {
            let why = self
                .stopped_why
                .clone()
                .unwrap_or_else(|| "the run stopped before it was injected".into());
            self.skip(i, why, now, &mut out);
        }
        out
    }

    fn fire_due(&mut self, now: u64, out: &mut Vec<Out>) {
        if let Phase::Starting { deadline, .. } = &self.phase {
            if now >= *deadline {
                let why = self.startup_failure();
                self.stop(Outcome::Failed(why), now, out);
            }
            return;
        }
        loop {
            if self.stopped() {
                return;
            }
            let Some(pos) = (0..self.steps.len())
                .filter(|&i| self.steps[i].0 <= now)
                .min_by_key(|&i| self.steps[i].0)
            else {
                return;
            };
            let (_, step) = self.steps.remove(pos);
            self.fire(step, now, out);
        }
    }

    fn fire(&mut self, step: Step, now: u64, out: &mut Vec<Out>) {
        match step {
            Step::Inject(i) => {
                let node = &self.plan.faults[i].node;
                if self.powered.get(node) == Some(&true) {
                    self.faults[i] = FaultState::Requested;
                    out.push(Out::Act(Action::Inject(i)));
                } else {
                    self.skip(i, format!("node {node} is powered off"), now, out);
                }
            }
            Step::Heal(i) => {
                if self.faults[i] == FaultState::Requested {
                    self.faults[i] = FaultState::RequestedOverdue;
                }
                if self.faults[i] == FaultState::Active {
                    self.faults[i] = FaultState::Healing;
                    out.push(Out::Act(Action::Heal {
                        index: i,
                        why: "its time is up".into(),
                    }));
                }
            }
            Step::PowerOn(node) => {
                self.powered.insert(node.clone(), true);
                out.push(Out::Record(Record::Power {
                    t: now,
                    node: node.clone(),
                    on: true,
                    reason: "restart after bugcheck".into(),
                }));
                out.push(Out::Act(Action::PowerOn(node)));
            }
            Step::End => {
                out.push(Out::Record(Record::Settled { t: now }));
                self.stop(Outcome::Completed, now, out);
            }
        }
    }

    fn skip(&mut self, i: usize, why: String, now: u64, out: &mut Vec<Out>) {
        let f = &self.plan.faults[i];
        self.faults[i] = FaultState::Done;
        out.push(Out::Record(Record::Fault(FaultRecord {
            t: now,
            index: i,
            kind: f.kind(),
            node: f.node.clone(),
            phase: FaultPhase::Skipped,
            requested: now,
            evidence: why,
        })));
    }

    fn on_record(&mut self, r: &Record, now: u64, out: &mut Vec<Out>) {
        match r {
            Record::Event(e) => {
                if let Phase::Starting { up, online, .. } = &mut self.phase {
                    let ready = match self
                        .plan
                        .node(&e.node)
                        .map(|n| n.settings.hang_recovery_action)
                    {
                        Some(RecoveryAction::Disabled) => e.kind() == EventKind::ServiceStarted,
                        Some(_) => e.kind() == EventKind::WatchdogArmed,
                        None => false,
                    };
                    if ready {
                        up.insert(e.node.clone());
                    }
                    if e.kind() == EventKind::GroupOnline {
                        if let Some(g) = e.data.group() {
                            online.insert(g.to_string());
                        }
                    }
                    let all_up = self.plan.nodes.iter().all(|n| up.contains(&n.name));
                    let all_online = self.plan.groups.iter().all(|g| online.contains(&g.name));
                    if all_up && all_online {
                        self.run_from(now, out);
                    }
                }
            }
            Record::Fault(f) if f.index < self.faults.len() => {
                let overdue = self.faults[f.index] == FaultState::RequestedOverdue;
                let requested = overdue || self.faults[f.index] == FaultState::Requested;
                self.faults[f.index] = match f.phase {
                    FaultPhase::Injected if overdue => {
                        out.push(Out::Act(Action::Heal {
                            index: f.index,
                            why: "its time was up before its injection was confirmed".into(),
                        }));
                        FaultState::Healing
                    }
                    FaultPhase::Injected => FaultState::Active,
                    _ => FaultState::Done,
                };
                if requested && f.phase == FaultPhase::Failed {
                    let why = format!(
                        "cannot inject fault #{} ({} on {}): {}",
                        f.index,
                        crate::plan::snake_name(&f.kind),
                        f.node,
                        f.evidence
                    );
                    self.stop(Outcome::Failed(why), now, out);
                }
            }
            _ => {}
        }
    }

    /// Every node is up: time zero of the timeline.
    fn run_from(&mut self, t0: u64, out: &mut Vec<Out>) {
        self.phase = Phase::Running;
        out.push(Out::Record(Record::Start { t: t0 }));
        for (i, f) in self.plan.faults.iter().enumerate() {
            let at = t0.saturating_add(ns(f.at));
            self.steps.push((at, Step::Inject(i)));
            self.steps
                .push((at.saturating_add(ns(f.duration)), Step::Heal(i)));
        }
        self.steps
            .push((t0.saturating_add(ns(self.plan.duration)), Step::End));
    }

    fn on_exit(
        &mut self,
        node: &str,
        status: &str,
        bugchecked: bool,
        now: u64,
        out: &mut Vec<Out>,
    ) {
        if let Phase::Starting { .. } = self.phase {
            let why = format!("node {node} died while starting ({status}); see its agent.log");
            out.push(Out::Record(Record::Note(NoteRecord {
                t: now,
                node: Some(node.to_string()),
                text: format!("died while starting ({status})"),
            })));
            self.stop(Outcome::Failed(why), now, out);
            return;
        }
        self.powered.insert(node.to_string(), false);
        let delay = self
            .plan
            .node(node)
            .map(|n| n.settings.restart_delay)
            .unwrap_or_default();
        let reason = if bugchecked {
            format!(
                "fenced by its watchdog (bugcheck); back in {} ms",
                delay.as_millis()
            )
        } else {
            format!("supervisor exited unexpectedly ({status})")
        };
        out.push(Out::Record(Record::Power {
            t: now,
            node: node.to_string(),
            on: false,
            reason,
        }));
        // A reboot ends every user-mode hang of the node; faults of the
        // network outside it (partition, loss) stay until their time.
        for i in 0..self.faults.len() {
            if self.faults[i] == FaultState::Active
                && self.plan.faults[i].node == node
                && self.plan.faults[i].kind().ends_with_reboot()
            {
                self.faults[i] = FaultState::Healing;
                out.push(Out::Act(Action::Heal {
                    index: i,
                    why: "the node was powered off".into(),
                }));
            }
        }
        if bugchecked {
            self.steps.push((
                now.saturating_add(ns(delay)),
                Step::PowerOn(node.to_string()),
            ));
        }
    }

    /// Ends the timeline: heals what is in effect, records the faults that
    /// never came, and tells the shell to stop.
    fn stop(&mut self, outcome: Outcome, now: u64, out: &mut Vec<Out>) {
        self.phase = Phase::Stopped;
        self.steps.clear();
        let why = match &outcome {
            Outcome::Completed => "the run ended before it was due".to_string(),
            Outcome::Interrupted(sig) => {
                format!("the run was interrupted (signal {sig}) before it was due")
            }
            Outcome::Failed(e) => format!("the run stopped on an error before it was due: {e}"),
        };
        self.stopped_why = Some(why.clone());
        for i in 0..self.faults.len() {
            match self.faults[i] {
                FaultState::Pending => self.skip(i, why.clone(), now, out),
                FaultState::Active => {
                    self.faults[i] = FaultState::Healing;
                    out.push(Out::Act(Action::Heal {
                        index: i,
                        why: "the run is ending".into(),
                    }));
                }
                _ => {}
            }
        }
        out.push(Out::Act(Action::Stop(outcome)));
    }

    fn startup_failure(&self) -> String {
        let Phase::Starting { up, online, .. } = &self.phase else {
            return String::new();
        };
        let missing: Vec<&str> = self
            .plan
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .filter(|n| !up.contains(*n))
            .collect();
        let offline: Vec<&str> = self
            .plan
            .groups
            .iter()
            .map(|g| g.name.as_str())
            .filter(|g| !online.contains(*g))
            .collect();
        let mut why = Vec::new();
        if !missing.is_empty() {
            why.push(format!(
                "node(s) {} did not come up (no armed watchdog)",
                missing.join(", ")
            ));
        }
        if !offline.is_empty() {
            why.push(format!("group(s) {} never came online", offline.join(", ")));
        }
        format!(
            "{} within {} s; see agent.log and cluster.log in the nodes' folders",
            why.join(" and "),
            startup_timeout(self.plan.nodes.len()).as_secs_f64()
        )
    }
}

#[cfg(test)]
#[path = "timeline_tests.rs"]
mod tests;
