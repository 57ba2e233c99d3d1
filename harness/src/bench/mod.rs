//! `faultline bench`: a scenario run N times through the runner, fault-free
//! control trials interleaved, one or two settings alternated trial by
//! trial, and the figures the checks measured summarized per setting.
//!
//! [`schedule`] is pure (which trials, in which order); [`run`] carries
//! them out one by one with [`crate::runner::run_scenario`] and
//! [`crate::checks::judge`]; [`stats`] summarizes; [`html`] draws.

pub mod builtin;
pub mod html;
pub mod stats;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crossbeam_channel::Receiver;
use faultline_agent::clock::monotonic_ns;
use faultline_faults::cgroup::CgroupHost;
use serde::Serialize;

use crate::checks::judge;
use crate::lab::chain;
use crate::plan::{CheckSpec, FaultPlan, FaultSpec, ScenarioPlan};
use crate::report::terminal::Terminal;
use crate::runner::{run_scenario, RunError, RunOptions};
use crate::suite::{apply_node_setting, SuiteError};
use crate::trace::{FaultPhase, Record, Trace};
use stats::Sample;

/// Attempts of a trial whose run failed (its lab could not be built, a
/// fault could not be injected): on a host shared with other runs, the
/// RT budget every run's watchdogs and `rt_hog` draw from can be taken
/// for a moment.
/// (Other engineers' labs of many nodes hold it for tens of seconds.)
pub const ATTEMPTS: usize = 12;
/// The wait before another attempt: doubling from this, at most 8 s.
const RETRY_WAIT: std::time::Duration = std::time::Duration::from_millis(500);
const RETRY_WAIT_MAX: std::time::Duration = std::time::Duration::from_secs(8);

/// The label of the only setting when nothing is compared.
pub const DEFAULT_SETTING: &str = "default";

/// One setting: its label (`KEY=VALUE`) and the plan it makes of each
/// scenario.
#[derive(Debug, Clone)]
pub struct Setting {
    /// `watchdog_priority=fifo`, or [`DEFAULT_SETTING`].
    pub label: String,
    /// The node setting and value applied to every node, if any.
    pub node_setting: Option<(String, String)>,
}

/// `KEY=A,B` -> the two settings, or why not.
pub fn parse_compare(spec: &str) -> Result<[Setting; 2], String> {
    let (key, values) = spec.split_once('=').ok_or_else(|| {
        format!("--compare `{spec}`: write KEY=A,B (e.g. watchdog_priority=fifo,normal)")
    })?;
    let vals: Vec<&str> = values.split(',').map(str::trim).collect();
    let key = key.trim();
    if key.is_empty() || vals.len() != 2 || vals.iter().any(|v| v.is_empty()) {
        return Err(format!(
            "--compare `{spec}`: write one key and exactly two values, KEY=A,B"
        ));
    }
    if vals[0] == vals[1] {
        return Err(format!("--compare `{spec}`: the two values are the same"));
    }
    Ok([0, 1].map(|i| Setting {
        label: format!("{key}={}", vals[i]),
        node_setting: Some((key.to_string(), vals[i].to_string())),
    }))
}

/// `plan` with `setting` applied to every node.
pub fn apply(plan: &ScenarioPlan, setting: &Setting) -> Result<ScenarioPlan, SuiteError> {
    let mut plan = plan.clone();
    if let Some((key, value)) = &setting.node_setting {
        for node in &mut plan.nodes {
            node.settings = apply_node_setting(&node.settings, "--compare", key, value)?;
        }
    }
    Ok(plan)
}

/// `plan` without its faults, its checks replaced by `no_detection` per
/// node: a control trial, where every detection is false.
pub fn control(plan: &ScenarioPlan) -> ScenarioPlan {
    let mut c = plan.clone();
    c.faults.clear();
    c.expect_fail.clear();
    c.checks = plan
        .nodes
        .iter()
        .map(|n| CheckSpec::NoDetection {
            node: Some(n.name.clone()),
        })
        .collect();
    c
}

/// One trial to run.
#[derive(Debug, Clone)]
pub struct Trial {
    /// The suite's name.
    pub suite: String,
    /// The setting's label.
    pub setting: String,
    /// A control trial.
    pub control: bool,
    /// What to run.
    pub plan: ScenarioPlan,
}

impl Trial {
    /// `suite/scenario`.
    pub fn scenario(&self) -> String {
        format!("{}/{}", self.suite, self.plan.name)
    }
}

/// The trials, in order: per scenario, `trials` rounds of one fault trial
/// per setting (the settings' order alternating round by round, so neither
/// always runs first), with `controls` control trials spread evenly
/// between the rounds, their setting alternating too.
pub fn schedule(
    scenarios: &[(String, ScenarioPlan)],
    settings: &[Setting],
    trials: usize,
    controls: usize,
) -> Result<Vec<Trial>, SuiteError> {
    let mut out = Vec::new();
    for (suite, plan) in scenarios {
        let plans: Vec<ScenarioPlan> = settings
            .iter()
            .map(|s| apply(plan, s))
            .collect::<Result<_, _>>()?;
        let mut controls_done = 0;
        for round in 0..trials {
            for k in 0..settings.len() {
                let i = if round % 2 == 0 {
                    k
                } else {
                    settings.len() - 1 - k
                };
                out.push(Trial {
                    suite: suite.clone(),
                    setting: settings[i].label.clone(),
                    control: false,
                    plan: plans[i].clone(),
                });
            }
            // After round r, (r+1)*controls/trials controls are due.
            while controls_done < (round + 1) * controls / trials.max(1) {
                let i = controls_done % settings.len();
                out.push(Trial {
                    suite: suite.clone(),
                    setting: settings[i].label.clone(),
                    control: true,
                    plan: control(&plans[i]),
                });
                controls_done += 1;
            }
        }
    }
    Ok(out)
}

/// What the trials need besides their plans.
pub struct BenchOptions {
    /// The agent binary.
    pub agent: PathBuf,
    /// Where to keep each trial's trace and node folders, if anywhere
    /// (absolute): `DIR/trials/NNN-<setting>[-control]/`.
    pub out: Option<PathBuf>,
}

/// The folder of trial `n` under `out`.
pub fn trial_dir(out: &Path, n: usize, t: &Trial) -> PathBuf {
    let setting: String = t
        .setting
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let kind = if t.control { "-control" } else { "" };
    out.join("trials")
        .join(format!("{n:03}-{}-{setting}{kind}", t.plan.name))
}

/// How a bench ended.
pub struct Ran {
    /// One per trial that ran to its end (or failed to run).
    pub samples: Vec<Sample>,
    /// The signal that cut a trial short, if one did.
    pub interrupted: Option<i32>,
    /// Whether a stop was asked between trials (first Ctrl-C).
    pub stopped: bool,
}

/// Runs `trials` in order. `signals` reaches the runner (it cuts the
/// current trial short and tears it down); `stop` ends the bench once the
/// current trial has ended and been torn down (that trial is left out:
/// the signal cut it short). `done` sees each sample as it
/// comes, with the samples so far.
pub fn run(
    host: &CgroupHost,
    trials: &[Trial],
    opts: &BenchOptions,
    signals: &Receiver<i32>,
    stop: &AtomicBool,
    done: &mut dyn FnMut(&[Sample], usize),
) -> Ran {
    let mut samples: Vec<Sample> = Vec::new();
    let mut quiet = Terminal::new(Box::new(std::io::sink()), false);
    for (i, t) in trials.iter().enumerate() {
        if stop.load(Ordering::SeqCst) {
            return Ran {
                samples,
                interrupted: None,
                stopped: true,
            };
        }
        let n = i + 1;
        let mut s = Sample::new(n, &t.scenario(), &t.setting, t.control);
        s.nodes = t.plan.nodes.len();
        s.planned_ms = t.plan.duration.as_secs_f64() * 1e3;
        let out = opts.out.as_ref().map(|o| trial_dir(o, n, t));
        let run_opts = RunOptions {
            agent: opts.agent.clone(),
            out: out.clone(),
        };
        // The last attempt's own time: waits for the host are not the
        // harness's overhead (the bench's whole wall time has them).
        let mut began = Instant::now();
        let mut attempt = 1;
        let outcome = loop {
            let r = run_scenario(
                host.clone(),
                &t.suite,
                &t.plan,
                &run_opts,
                &mut quiet,
                signals,
            );
            match r {
                Err(e @ (RunError::Lab(_) | RunError::Host(_)))
                    if attempt < ATTEMPTS && !stop.load(Ordering::SeqCst) =>
                {
                    s.failed_attempts.push(chain(&e));
                    attempt += 1;
                    let wait = RETRY_WAIT
                        .saturating_mul(1 << (attempt - 2).min(5))
                        .min(RETRY_WAIT_MAX);
                    if let Ok(sig) = signals.recv_timeout(wait) {
                        return Ran {
                            samples,
                            interrupted: Some(sig),
                            stopped: false,
                        };
                    }
                }
                r => break r,
            }
            began = Instant::now();
        };
        match outcome {
            Ok(finished) => {
                let returned = monotonic_ns();
                if let Some(sig) = finished.interrupted {
                    // A trial cut short measures nothing.
                    return Ran {
                        samples,
                        interrupted: Some(sig),
                        stopped: false,
                    };
                }
                let result = judge(&finished.trace);
                s.take_figures(&result);
                s.lab_up_ms = lab_up_ms(&finished.trace);
                s.teardown_ms = finished
                    .trace
                    .end()
                    .map(|end| returned.saturating_sub(end) as f64 / 1e6);
                s.run_id = Some(finished.run_id.clone());
                s.onsets = onsets(&t.plan, &finished.trace);
                s.trace = out.map(|o| o.join("trace.jsonl").display().to_string());
            }
            Err(RunError::Interrupted(sig)) => {
                return Ran {
                    samples,
                    interrupted: Some(sig),
                    stopped: false,
                }
            }
            Err(e) => {
                if stop.load(Ordering::SeqCst) {
                    // A terminal's Ctrl-C also reaches the lab build's
                    // commands: the failure is the interrupt's, not a
                    // measurement.
                    return Ran {
                        samples,
                        interrupted: None,
                        stopped: true,
                    };
                }
                s.error = Some(chain(&e));
                // It did not run: it adds no planned time.
                s.planned_ms = 0.0;
            }
        }
        s.wall_ms = began.elapsed().as_secs_f64() * 1e3;
        if stop.load(Ordering::SeqCst) {
            // Asked to stop while this trial ran: a terminal's Ctrl-C also
            // reached the fault's helpers (they share our process group),
            // so what it measured is not the scenario's. It ran to its end
            // and was torn down; it is left out.
            return Ran {
                samples,
                interrupted: None,
                stopped: true,
            };
        }
        samples.push(s);
        done(&samples, trials.len());
    }
    Ran {
        samples,
        interrupted: None,
        stopped: false,
    }
}

/// Each injected fault's request-to-onset time, labelled by kind and, for
/// `cpu` and `memory`, mode (`cpu weight`, `memory oom_kill`).
pub fn onsets(plan: &ScenarioPlan, trace: &Trace) -> Vec<stats::Onset> {
    trace
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Fault(f) if f.phase == FaultPhase::Injected => Some(stats::Onset {
                fault: plan
                    .faults
                    .get(f.index)
                    .map_or_else(|| f.kind.name().to_string(), fault_label),
                ms: f.t.saturating_sub(f.requested) as f64 / 1e6,
            }),
            _ => None,
        })
        .collect()
}

/// A fault's kind, with its mode where it has one.
fn fault_label(f: &FaultPlan) -> String {
    let mode = match &f.spec {
        FaultSpec::Cpu { mode, .. } => serde_json::to_value(mode).ok(),
        FaultSpec::Memory { policy, .. } => serde_json::to_value(policy).ok(),
        _ => None,
    };
    match mode.as_ref().and_then(|m| m.as_str()) {
        Some(m) => format!("{} {m}", f.kind().name()),
        None => f.kind().name().to_string(),
    }
}

/// The lab's bring-up time, from the note the runner records
/// (`lab ID up in N ms: ...`).
pub fn lab_up_ms(trace: &Trace) -> Option<f64> {
    trace.records.iter().find_map(|r| match r {
        Record::Note(n) if n.node.is_none() && n.text.starts_with("lab ") => {
            let (_, rest) = n.text.split_once(" up in ")?;
            let (num, _) = rest.split_once(" ms")?;
            num.trim().parse::<f64>().ok()
        }
        _ => None,
    })
}

/// The host a bench ran on.
#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    /// `uname -r`.
    pub kernel: String,
    /// CPUs this process may use.
    pub cores: usize,
    /// `v1-hybrid` or `v2`.
    pub cgroup_layout: String,
    /// `/proc/loadavg`'s three figures at the start and at the end.
    pub load_average_start: String,
    /// At the end.
    pub load_average_end: String,
}

/// `/proc/loadavg`'s first three fields.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

impl HostInfo {
    /// This host, now (the end load is filled in by [`HostInfo::ended`]).
    pub fn probe(host: &CgroupHost) -> Self {
        HostInfo {
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cgroup_layout: host.capabilities().version.to_string(),
            load_average_start: load_average(),
            load_average_end: String::new(),
        }
    }

    /// Records the load at the end.
    pub fn ended(&mut self) {
        self.load_average_end = load_average();
    }
}

/// Everything `--json` writes.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The command line.
    pub command: String,
    /// The host.
    pub host: HostInfo,
    /// Fault trials per setting asked for.
    pub trials: usize,
    /// Control trials asked for per scenario.
    pub controls: usize,
    /// Whether every scheduled trial ran.
    pub complete: bool,
    /// Every trial.
    pub samples: Vec<Sample>,
    /// Per scenario and setting.
    pub summary: Vec<stats::SettingSummary>,
    /// The two settings compared, per scenario, when `--compare` was given.
    pub comparisons: Vec<stats::Comparison>,
    /// Lab bring-up and teardown by node count.
    pub lab: Vec<stats::LabTimes>,
    /// Request to confirmed onset, per fault kind.
    pub onsets: Vec<stats::OnsetSummary>,
    /// Wall time against the planned durations.
    pub overhead: stats::Overhead,
}

impl Report {
    /// Summarizes `samples`; `settings` (two when compared) pair up the
    /// comparisons.
    #[expect(
        clippy::too_many_arguments,
        reason = "one constructor of the report's fields"
    )]
    pub fn new(
        command: String,
        host: HostInfo,
        trials: usize,
        controls: usize,
        complete: bool,
        samples: Vec<Sample>,
        settings: &[Setting],
        wall_ms: f64,
    ) -> Self {
        let summary = stats::summarize(&samples);
        let mut comparisons = Vec::new();
        if let [a, b] = settings {
            let mut scenarios: Vec<&str> = summary.iter().map(|s| s.scenario.as_str()).collect();
            scenarios.dedup();
            for sc in scenarios {
                let find = |label: &str| {
                    summary
                        .iter()
                        .find(|s| s.scenario == sc && s.setting == label)
                };
                if let (Some(sa), Some(sb)) = (find(&a.label), find(&b.label)) {
                    comparisons.push(stats::compare(sa, sb));
                }
            }
        }
        Report {
            command,
            host,
            trials,
            controls,
            complete,
            lab: stats::lab_times(&samples),
            onsets: stats::onsets(&samples),
            overhead: stats::overhead(&samples, wall_ms),
            samples,
            summary,
            comparisons,
        }
    }

    /// The summary as terminal lines: a table per scenario and setting,
    /// the comparisons with their ratios, lab times, overhead.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let w = |f: fn(&stats::SettingSummary) -> &str| {
            self.summary
                .iter()
                .map(|s| f(s).len())
                .max()
                .unwrap_or(0)
                .max(8)
        };
        let (ws, wt) = (w(|s| &s.scenario), w(|s| &s.setting));
        let _ = writeln!(
            out,
            "\nhost: linux {}, {} core(s), cgroup {}, load {} -> {}",
            self.host.kernel,
            self.host.cores,
            self.host.cgroup_layout,
            self.host.load_average_start,
            self.host.load_average_end
        );
        let _ = writeln!(
            out,
            "\n{:<ws$} {:<wt$} {:>6} {:<10} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "scenario", "setting", "n", "figure (ms)", "min", "p50", "p90", "p99", "max"
        );
        for s in &self.summary {
            let rows = [
                ("latency", s.latency),
                ("overshoot", s.overshoot),
                ("failover", s.failover),
                ("downtime", s.downtime),
            ];
            for (name, d) in rows {
                let Some(d) = d else { continue };
                let _ = writeln!(
                    out,
                    "{:<ws$} {:<wt$} {:>6} {:<10} {:>9} {:>9} {:>9} {:>9} {:>9}",
                    s.scenario,
                    s.setting,
                    d.count,
                    name,
                    stats::ms(Some(d.min)),
                    stats::ms(Some(d.p50)),
                    stats::ms(Some(d.p90)),
                    stats::ms(Some(d.p99)),
                    stats::ms(Some(d.max)),
                );
            }
            let _ = writeln!(
                out,
                "{:<ws$} {:<wt$} trials {}, errors {} (retried {}), missed detections {}, early {}, controls {}, false detections {}",
                s.scenario, s.setting, s.trials, s.errors, s.retries, s.missed, s.early, s.controls, s.false_detections
            );
        }
        for c in &self.comparisons {
            let _ = writeln!(
                out,
                "\n{}: {} vs {} (ratio = second / first)",
                c.scenario, c.a, c.b
            );
            for r in &c.rows {
                let _ = writeln!(
                    out,
                    "  {:<16} {:>10} {:>10} {:>8}",
                    r.figure,
                    stats::ms(r.a),
                    stats::ms(r.b),
                    stats::times(r.ratio)
                );
            }
        }
        if !self.onsets.is_empty() {
            let wf = self
                .onsets
                .iter()
                .map(|o| o.fault.len())
                .max()
                .unwrap_or(0)
                .max(5);
            let _ = writeln!(
                out,
                "\n{:<wf$} {:>6} {:<17} {:>9} {:>9} {:>9} {:>9}",
                "fault", "n", "request to onset", "min", "p50", "p90", "max"
            );
            for o in &self.onsets {
                let d = o.onset;
                let _ = writeln!(
                    out,
                    "{:<wf$} {:>6} {:<17} {:>9} {:>9} {:>9} {:>9}",
                    o.fault,
                    d.count,
                    "(ms)",
                    stats::ms(Some(d.min)),
                    stats::ms(Some(d.p50)),
                    stats::ms(Some(d.p90)),
                    stats::ms(Some(d.max)),
                );
            }
        }
        for l in &self.lab {
            let f = |d: Option<stats::Distribution>| {
                d.map_or("-".into(), |d| {
                    format!(
                        "p50 {} max {}",
                        stats::ms(Some(d.p50)),
                        stats::ms(Some(d.max))
                    )
                })
            };
            let _ = writeln!(
                out,
                "\nlab with {} node(s): bring-up {} ms, teardown {} ms",
                l.nodes,
                f(l.up),
                f(l.teardown)
            );
        }
        let _ = writeln!(
            out,
            "wall time {:.1} s for {:.1} s of planned scenario time ({}); the trials themselves {:.1} s ({})",
            self.overhead.wall_ms / 1e3,
            self.overhead.planned_ms / 1e3,
            stats::times(self.overhead.ratio),
            self.overhead.trials_ms / 1e3,
            stats::times(self.overhead.trials_ratio)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> (String, ScenarioPlan) {
        builtin::scenario("freeze").unwrap()
    }

    #[test]
    fn compare_takes_one_key_and_two_values() {
        let [a, b] = parse_compare("watchdog_priority=fifo,normal").unwrap();
        assert_eq!(a.label, "watchdog_priority=fifo");
        assert_eq!(
            b.node_setting,
            Some(("watchdog_priority".into(), "normal".into()))
        );
        for bad in [
            "watchdog_priority",
            "k=a",
            "k=a,b,c",
            "=a,b",
            "k=a,a",
            "k=a,",
        ] {
            assert!(parse_compare(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_apply_to_every_node_and_bad_ones_name_the_problem() {
        let (_, sc) = builtin::scenario("cpu").unwrap();
        let [_, normal] = parse_compare("watchdog_priority=fifo,normal").unwrap();
        let p = apply(&sc, &normal).unwrap();
        assert!(p
            .nodes
            .iter()
            .all(|n| n.settings.watchdog_priority == crate::plan::WatchdogPriority::Normal));
        let [_, bad] = parse_compare("watchdog_priority=fifo,high").unwrap();
        let e = apply(&sc, &bad).unwrap_err().to_string();
        assert!(e.starts_with("--compare:1:"), "{e}");
        assert!(
            e.contains("watchdog_priority `high` must be one of fifo, normal"),
            "{e}"
        );
        let [_, unknown] = parse_compare("no_such_key=1,2").unwrap();
        let e = apply(&sc, &unknown).unwrap_err().to_string();
        assert!(e.contains("no_such_key"), "{e}");
        let [_, timeout] = parse_compare("hang_timeout=1s,2s").unwrap();
        let p = apply(&sc, &timeout).unwrap();
        assert_eq!(p.nodes[1].settings.hang_timeout.as_secs(), 2);
    }

    #[test]
    fn controls_have_no_faults_and_check_every_node_for_silence() {
        let (_, sc) = builtin::scenario("cpu").unwrap();
        let c = control(&sc);
        assert!(c.faults.is_empty());
        assert_eq!(c.duration, sc.duration);
        assert_eq!(
            c.checks,
            vec![
                CheckSpec::NoDetection {
                    node: Some("n1".into())
                },
                CheckSpec::NoDetection {
                    node: Some("n2".into())
                },
            ]
        );
    }

    #[test]
    fn the_schedule_alternates_settings_and_spreads_controls() {
        let settings = parse_compare("watchdog_priority=fifo,normal").unwrap();
        let t = schedule(&[plan()], &settings, 4, 2).unwrap();
        let shape: Vec<String> = t
            .iter()
            .map(|t| {
                let v = t.setting.rsplit('=').next().unwrap().to_string();
                if t.control {
                    format!("c-{v}")
                } else {
                    v
                }
            })
            .collect();
        assert_eq!(
            shape,
            [
                "fifo", "normal", "normal", "fifo", "c-fifo", "fifo", "normal", "normal", "fifo",
                "c-normal"
            ]
        );
        let one = [Setting {
            label: DEFAULT_SETTING.into(),
            node_setting: None,
        }];
        let t = schedule(&[plan()], &one, 30, 6).unwrap();
        assert_eq!(t.iter().filter(|t| t.control).count(), 6);
        assert_eq!(t.iter().filter(|t| !t.control).count(), 30);
        assert!(!t[0].control, "a control follows fault trials");
    }

    #[test]
    fn onsets_are_request_to_confirmed_per_injected_fault_named_with_their_mode() {
        let (_, sc) = builtin::scenario("cpu").unwrap();
        let rec = |index, kind, phase, requested, t| {
            Record::Fault(crate::trace::FaultRecord {
                t,
                index,
                kind,
                node: "n1".into(),
                phase,
                requested,
                evidence: String::new(),
            })
        };
        use crate::plan::FaultKind as K;
        let mut tr = Trace::default();
        tr.records.push(rec(
            0,
            K::Freeze,
            FaultPhase::Injected,
            1_000_000,
            3_500_000,
        ));
        tr.records
            .push(rec(1, K::Cpu, FaultPhase::Injected, 10_000_000, 30_000_000));
        tr.records
            .push(rec(1, K::Cpu, FaultPhase::Healed, 40_000_000, 41_000_000));
        tr.records
            .push(rec(1, K::Cpu, FaultPhase::Failed, 50_000_000, 51_000_000));
        tr.records
            .push(rec(9, K::Lock, FaultPhase::Injected, 0, 1_000_000));
        let got = onsets(&sc, &tr);
        let pairs: Vec<(&str, f64)> = got.iter().map(|o| (o.fault.as_str(), o.ms)).collect();
        assert_eq!(
            pairs,
            vec![("freeze", 2.5), ("cpu rt_hog", 20.0), ("lock", 1.0)]
        );

        let mut a = Sample::new(1, "b/s", "default", false);
        a.onsets = got;
        let mut b = Sample::new(2, "b/s", "default", false);
        b.onsets = vec![stats::Onset {
            fault: "freeze".into(),
            ms: 4.5,
        }];
        let sum = stats::onsets(&[a, b]);
        let names: Vec<&str> = sum.iter().map(|o| o.fault.as_str()).collect();
        assert_eq!(names, vec!["cpu rt_hog", "freeze", "lock"]);
        assert_eq!(sum[1].onset.count, 2);
        assert!((sum[1].onset.max - 4.5).abs() < 0.01, "{:?}", sum[1]);
    }

    #[test]
    fn lab_bring_up_is_read_from_the_runners_note() {
        let mut tr = Trace::default();
        tr.records.push(Record::Note(crate::trace::NoteRecord {
            t: 1,
            node: None,
            text: "lab abc123 up in 87 ms: 2 node(s), namespaces fl-abc123-*".into(),
        }));
        assert_eq!(lab_up_ms(&tr), Some(87.0));
        assert_eq!(lab_up_ms(&Trace::default()), None);
    }

    #[test]
    fn trial_folders_are_numbered_and_named_by_setting() {
        let (suite, plan) = plan();
        let t = Trial {
            suite,
            setting: "watchdog_priority=normal".into(),
            control: true,
            plan,
        };
        assert_eq!(
            trial_dir(Path::new("/o"), 7, &t),
            Path::new("/o/trials/007-freeze-watchdog_priority-normal-control")
        );
    }
}
