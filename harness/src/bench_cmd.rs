//! `faultline bench`: arguments, preflight, progress and the files it
//! writes. The trials, their schedule and the statistics are in the
//! library (`faultline::bench`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use faultline::bench::{self, builtin, stats, BenchOptions, Report, Setting, DEFAULT_SETTING};
use faultline::exit;
use faultline::plan::{ScenarioPlan, SuitePlan};
use indicatif::{ProgressBar, ProgressStyle};

/// `faultline bench` arguments.
#[derive(Args)]
pub struct BenchArgs {
    /// A suite file; without it, the built-in scenario of `--fault`.
    suite: Option<PathBuf>,
    /// The fault kind whose built-in scenario to run (freeze, cpu;
    /// default cpu when no suite is given).
    #[arg(long, value_name = "KIND", conflicts_with = "suite")]
    fault: Option<String>,
    /// Run only this scenario of the suite.
    #[arg(long, value_name = "NAME")]
    scenario: Option<String>,
    /// Fault trials per scenario and setting.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    trials: u32,
    /// Two values of one node setting, alternated trial by trial and
    /// applied to every node: KEY=A,B (e.g. watchdog_priority=fifo,normal).
    #[arg(long, value_name = "KEY=A,B")]
    compare: Option<String>,
    /// Fault-free control trials per scenario, spread between the fault
    /// trials (default: one per five fault trials, at least one).
    #[arg(long, value_name = "N")]
    controls: Option<u32>,
    /// Write every sample, the summary and the host's description as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Keep each trial's trace and node folders under DIR/trials/ and write
    /// DIR/report.html (histograms per setting, the comparison table).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The agent binary (default: faultline-agent next to this binary).
    #[arg(long, value_name = "PATH", env = "FAULTLINE_AGENT")]
    agent: Option<PathBuf>,
}

/// Runs `faultline bench`; returns the exit code.
pub fn cmd_bench(args: BenchArgs) -> i32 {
    let wall = Instant::now();
    // What to run: (suite name, scenario).
    let (suite_plan, scenarios) = match scenarios(&args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let settings: Vec<Setting> = match &args.compare {
        None => vec![Setting {
            label: DEFAULT_SETTING.into(),
            node_setting: None,
        }],
        Some(spec) => match bench::parse_compare(spec) {
            Ok(pair) => pair.to_vec(),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::INVALID_INPUT;
            }
        },
    };
    let trials = args.trials as usize;
    let controls = args
        .controls
        .map_or(trials.div_ceil(5).max(1), |c| c as usize);
    let schedule = match bench::schedule(&scenarios, &settings, trials, controls) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return exit::INVALID_INPUT;
        }
    };
    if let Err(e) = super::check_outputs(args.out.as_deref(), args.json.as_deref(), None, None) {
        eprintln!("error: {e}");
        return exit::INVALID_INPUT;
    }
    let super::Prepared {
        out,
        agent,
        host,
        signals,
    } = match super::prepare(
        args.out.clone(),
        args.agent.clone(),
        std::slice::from_ref(&suite_plan),
    ) {
        Ok(p) => p,
        Err(code) => return code,
    };
    // The first signal stops the bench after the current trial; the next
    // ones reach the runner, which cuts the trial short and tears it down.
    let stop = Arc::new(AtomicBool::new(false));
    let (to_runner, runner_signals) = crossbeam_channel::unbounded();
    {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("faultline-bench-signals".into())
            .spawn(move || {
                for sig in signals.iter() {
                    if !stop.swap(true, Ordering::SeqCst) {
                        eprintln!(
                            "\nsignal {sig}: stopping after the current trial (again to cut it short)"
                        );
                    } else if to_runner.send(sig).is_err() {
                        return;
                    }
                }
            })
            .ok();
    }
    let mut info = bench::HostInfo::probe(&host);
    println!(
        "bench: {} trial(s) ({} fault trial(s) per setting of {} scenario(s), {} control(s) each), settings: {}",
        schedule.len(),
        trials,
        scenarios.len(),
        controls,
        settings
            .iter()
            .map(|s| s.label.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let bar = std::io::stderr().is_terminal().then(|| {
        let pb = ProgressBar::new(schedule.len() as u64);
        pb.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} trials, {elapsed} elapsed, ETA {eta} {msg}",
            )
            .expect("valid template"),
        );
        pb
    });
    let opts = BenchOptions {
        agent,
        out: out.clone(),
    };
    let mut on_done = |samples: &[stats::Sample], total: usize| {
        let s = samples.last().expect("a sample");
        let running = stats::running(samples)
            .map(|(p50, p99)| {
                format!(
                    "overshoot p50 {} ms, p99 {} ms",
                    stats::ms(Some(p50)),
                    stats::ms(Some(p99))
                )
            })
            .unwrap_or_default();
        match &bar {
            Some(pb) => {
                pb.set_position(samples.len() as u64);
                pb.set_message(running);
            }
            None => {
                let what = if s.control {
                    format!("control, {} false detection(s)", s.false_detections)
                } else if s.overshoot_ms.is_empty() {
                    format!("no detection measured ({})", s.verdict)
                } else {
                    format!(
                        "latency {} ms, overshoot {} ms",
                        s.latency_ms
                            .iter()
                            .map(|v| stats::ms(Some(*v)))
                            .collect::<Vec<_>>()
                            .join("/"),
                        s.overshoot_ms
                            .iter()
                            .map(|v| stats::ms(Some(*v)))
                            .collect::<Vec<_>>()
                            .join("/")
                    )
                };
                let mut err = s
                    .error
                    .as_deref()
                    .map(|e| format!(" error: {e}"))
                    .unwrap_or_default();
                for c in &s.failed_checks {
                    err.push_str(&format!(" FAILED {c};"));
                }
                println!(
                    "trial {}/{total} {} {}: {what}{err}; {running}",
                    s.trial, s.scenario, s.setting
                );
            }
        }
    };
    let ran = bench::run(
        &host,
        &schedule,
        &opts,
        &runner_signals,
        &stop,
        &mut on_done,
    );
    if let Some(pb) = &bar {
        pb.finish_and_clear();
    }
    info.ended();
    let complete = ran.samples.len() == schedule.len();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let report = Report::new(
        command,
        info,
        trials,
        controls,
        complete,
        ran.samples,
        &settings,
        wall.elapsed().as_secs_f64() * 1e3,
    );
    print!("{}", report.text());
    let mut code = exit::PASS;
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).expect("report serializes");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("error: cannot write {}: {e}", path.display());
            code = exit::HOST;
        }
    }
    if let Some(dir) = &out {
        let path = dir.join("report.html");
        let html = bench::html::page(&report, &|trace| {
            std::path::Path::new(trace)
                .strip_prefix(dir)
                .ok()
                .map(|p| p.display().to_string())
        });
        match std::fs::write(&path, html) {
            Ok(()) => println!("report: {}", path.display()),
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                code = exit::HOST;
            }
        }
    }
    if let Some(sig) = ran.interrupted {
        println!("interrupted by signal {sig}: the trial was cut short and torn down");
        return exit::INTERRUPTED;
    }
    if ran.stopped {
        println!(
            "stopped after {} of {} trial(s)",
            report.samples.len(),
            schedule.len()
        );
        return exit::INTERRUPTED;
    }
    // A trial that could not run at all (after every attempt) measured
    // nothing: the host could not do what the bench needs.
    let not_run = report
        .samples
        .iter()
        .filter(|s| s.planned_ms == 0.0)
        .count();
    if not_run > 0 && code == exit::PASS {
        eprintln!(
            "error: {not_run} trial(s) could not run after {} attempts each (see their errors above)",
            bench::ATTEMPTS
        );
        return exit::HOST;
    }
    code
}

/// The scenarios to bench, with a suite plan of them for the preflight.
fn scenarios(args: &BenchArgs) -> Result<(SuitePlan, Vec<(String, ScenarioPlan)>), i32> {
    let plan = match &args.suite {
        Some(path) => super::load_all(std::slice::from_ref(path))?
            .pop()
            .expect("one suite"),
        None => {
            let kind = args.fault.as_deref().unwrap_or("cpu");
            let Some((suite, sc)) = builtin::scenario(kind) else {
                eprintln!(
                    "error: --fault {kind}: no built-in scenario for this kind (built-in: {}); give a suite file",
                    builtin::KINDS.join(", ")
                );
                return Err(exit::INVALID_INPUT);
            };
            SuitePlan {
                name: suite,
                path: format!("<built-in {kind}>"),
                scenarios: vec![sc],
            }
        }
    };
    let chosen: Vec<ScenarioPlan> = match &args.scenario {
        None => plan.scenarios.clone(),
        Some(name) => {
            let found: Vec<ScenarioPlan> = plan
                .scenarios
                .iter()
                .filter(|s| &s.name == name)
                .cloned()
                .collect();
            if found.is_empty() {
                eprintln!(
                    "error: --scenario {name}: {} has no such scenario (it has: {})",
                    plan.path,
                    plan.scenarios
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return Err(exit::INVALID_INPUT);
            }
            found
        }
    };
    let pairs = chosen
        .iter()
        .map(|s| (plan.name.clone(), s.clone()))
        .collect();
    Ok((
        SuitePlan {
            scenarios: chosen,
            ..plan
        },
        pairs,
    ))
}
