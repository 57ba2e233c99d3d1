//! The `faultline` command line: a thin layer over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use faultline::checks::{judge, ScenarioResult, Verdict};
use faultline::exit;
use faultline::lab::chain;
use faultline::plan::{FaultKind, SuitePlan};
use faultline::report::{self, terminal::Terminal};
use faultline::runner::{run_scenario, scenario_out, RunError, RunOptions};
use faultline::suite::{load_suite, SuiteError};
use faultline::trace::Trace;
use faultline_faults::cgroup::CgroupHost;

mod bench_cmd;

/// Fault-injection test harness for high-availability failover.
///
/// Exit codes: 0 every check passed (or failed as expected); 1 a check
/// failed; 2 invalid input; 3 the host lacks something or the lab could not
/// be built; 130 interrupted (the run was torn down).
#[derive(Parser)]
#[command(name = "faultline", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run suites: build a lab per scenario, inject faults, judge the trace.
    Run {
        /// Suite files.
        #[arg(required = true)]
        suites: Vec<PathBuf>,
        /// Keep each scenario's trace, event logs, cluster logs and dumps
        /// under DIR/<suite>/<scenario>/, and draw them in DIR/report.html.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Write the results as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write the results as JUnit XML.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// The agent binary (default: faultline-agent next to this binary).
        #[arg(long, value_name = "PATH", env = "FAULTLINE_AGENT")]
        agent: Option<PathBuf>,
    },
    /// Benchmark detection: run a scenario N times, fault-free controls
    /// interleaved, and report latency and overshoot per setting.
    ///
    /// Exit codes: 0 every trial ran (a benchmark reports, it does not
    /// gate); 2 invalid input; 3 the host lacks something (or a trial could
    /// not run after every attempt); 130 interrupted
    /// (the first Ctrl-C stops after the current trial, a second cuts it
    /// short; what was measured is reported, nothing is left behind).
    Bench(bench_cmd::BenchArgs),
    /// Validate suites without running them.
    Validate {
        /// Suite files.
        #[arg(required = true)]
        suites: Vec<PathBuf>,
    },
    /// Judge saved traces again (the checks are in each trace's header),
    /// retelling each run as it was shown live.
    ///
    /// Exits 2 when a trace cannot be read (not JSON lines, no header first,
    /// a trace version this build does not read, two traces in one file) or
    /// is not a complete run: a trace without an `end` record (a killed run)
    /// is judged on what it holds, its checks are shown, and the scenario is
    /// an error saying the run did not end. Otherwise as `run`: 1 when a
    /// check failed or is inconclusive.
    Check {
        /// Trace files (trace.jsonl).
        #[arg(required = true)]
        traces: Vec<PathBuf>,
        /// Write the results as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Write the results as JUnit XML.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Draw the runs in one self-contained HTML page (timelines,
        /// checks, links to the files beside each trace).
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Show what this host supports, and which fault kinds it can run.
    Doctor,
    /// A fault's helper process (spinner, leaker, lock holder, scanner),
    /// started by the runner inside a node; not for people.
    #[command(hide = true)]
    Helper {
        /// The helper's name and arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Time building and tearing down labs (network, cgroups, node folders;
    /// no agents) against the shell script a user would write instead, run
    /// interleaved in this process; prints the medians and the speedup.
    LabBench {
        /// Lab sizes.
        #[arg(long, value_delimiter = ',', default_value = "1,3,16,64,128")]
        nodes: Vec<usize>,
        /// Rounds per size, for each side.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// The baseline script (`SCRIPT N` prints `setup_ms S teardown_ms T`).
        #[arg(
            long,
            value_name = "PATH",
            default_value = "../shared/tools/baseline-lab.sh"
        )]
        baseline: PathBuf,
        /// Measure faultline only.
        #[arg(long)]
        no_baseline: bool,
    },
    /// Remove what killed runs left behind (runs whose harness is alive are
    /// left alone).
    Cleanup {
        /// List what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run {
            suites,
            out,
            json,
            junit,
            agent,
        } => cmd_run(&suites, out, json, junit, agent),
        Command::Bench(args) => bench_cmd::cmd_bench(args),
        Command::Validate { suites } => match load_all(&suites) {
            Ok(plans) => {
                for p in &plans {
                    println!(
                        "{}: suite {} is valid: {} scenario(s)",
                        p.path,
                        p.name,
                        p.scenarios.len()
                    );
                }
                exit::PASS
            }
            Err(code) => code,
        },
        Command::Check {
            traces,
            json,
            junit,
            report,
        } => cmd_check(&traces, json, junit, report),
        Command::Doctor => cmd_doctor(),
        Command::Helper { args } => faultline_faults::helper::main(&args),
        Command::Cleanup { dry_run } => cmd_cleanup(dry_run),
        Command::LabBench {
            nodes,
            rounds,
            baseline,
            no_baseline,
        } => cmd_lab_bench(nodes, rounds, (!no_baseline).then_some(baseline)),
    };
    ExitCode::from(code as u8)
}

fn load_all(paths: &[PathBuf]) -> Result<Vec<SuitePlan>, i32> {
    let mut plans = Vec::new();
    let mut bad = false;
    for p in paths {
        match load_suite(p) {
            Ok(plan) => plans.push(plan),
            Err(e @ SuiteError::Read { .. }) => {
                eprintln!("error: {}", chain(&e));
                bad = true;
            }
            Err(e) => {
                eprintln!("{e}");
                bad = true;
            }
        }
    }
    if bad {
        Err(exit::INVALID_INPUT)
    } else {
        Ok(plans)
    }
}

fn default_agent() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("faultline-agent")))
        .unwrap_or_else(|| PathBuf::from("faultline-agent"))
}

/// What `run` needs of the host; a missing piece is exit 3.
fn preflight(agent: &Path, plans: &[SuitePlan]) -> Result<CgroupHost, String> {
    let probes = faultline_faults::host::probe_host();
    let mut missing: Vec<String> = probes
        .iter()
        .filter(|p| p.required && !p.ok)
        .map(|p| format!("{}: {}", p.name, p.detail))
        .collect();
    let mut kinds: Vec<FaultKind> = plans
        .iter()
        .flat_map(|p| &p.scenarios)
        .flat_map(|s| &s.faults)
        .map(|f| f.kind())
        .collect();
    kinds.sort_by_key(|k| k.name());
    kinds.dedup();
    for k in kinds {
        if let Err(why) = k.available(&probes) {
            missing.push(format!("fault `{}` needs {why}", k.name()));
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "this host lacks what faultline needs (see `faultline doctor`):\n  {}",
            missing.join("\n  ")
        ));
    }
    if !agent.is_file() {
        return Err(format!(
            "the agent binary {} does not exist (build it, or pass --agent)",
            agent.display()
        ));
    }
    faultline::lab::host_cgroups().map_err(|e| chain(&e))
}

/// What `run` and `bench` need before their first lab.
struct Prepared {
    /// `--out`, absolute.
    out: Option<PathBuf>,
    /// The agent binary.
    agent: PathBuf,
    /// The host's cgroups, once preflight passed.
    host: faultline_faults::cgroup::CgroupHost,
    /// Signals (SIGINT, SIGTERM, SIGHUP) as they arrive.
    signals: crossbeam_channel::Receiver<i32>,
}

/// Makes `--out` absolute (node folders are named to processes in other
/// namespaces and compared with the paths the kernel reports, a scanner's
/// exclusions), checks the host for `plans` (exit 3 naming what is
/// missing), becomes the child subreaper and starts taking signals; on
/// failure, the exit code, the reason already printed.
fn prepare(
    out: Option<PathBuf>,
    agent: Option<PathBuf>,
    plans: &[SuitePlan],
) -> Result<Prepared, i32> {
    let out = match out
        .map(|o| std::path::absolute(&o).map_err(|e| (o, e)))
        .transpose()
    {
        Ok(out) => out,
        Err((o, e)) => {
            eprintln!("error: --out {}: {e}", o.display());
            return Err(exit::INVALID_INPUT);
        }
    };
    let agent = agent.unwrap_or_else(default_agent);
    let host = preflight(&agent, plans).map_err(|e| {
        eprintln!("error: {e}");
        exit::HOST
    })?;
    if let Err(e) = faultline_faults::process::set_child_subreaper() {
        eprintln!("error: {}", chain(&e));
        return Err(exit::HOST);
    }
    let signals = signal_channel().map_err(|e| {
        eprintln!("error: cannot handle signals: {e}");
        exit::HOST
    })?;
    Ok(Prepared {
        out,
        agent,
        host,
        signals,
    })
}

fn cmd_run(
    suites: &[PathBuf],
    out: Option<PathBuf>,
    json: Option<PathBuf>,
    junit: Option<PathBuf>,
    agent: Option<PathBuf>,
) -> i32 {
    let plans = match load_all(suites) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Err(e) = check_outputs(out.as_deref(), json.as_deref(), junit.as_deref(), None) {
        eprintln!("error: {e}");
        return exit::INVALID_INPUT;
    }
    let Prepared {
        out,
        agent,
        host,
        signals,
    } = match prepare(out, agent, &plans) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut term = Terminal::default();
    let mut results: Vec<ScenarioResult> = Vec::new();
    // Per result: its trace and trace file, for report.html.
    let mut drawn: Vec<(Option<faultline::trace::Trace>, Option<PathBuf>)> = Vec::new();
    let mut code = exit::PASS;
    'suites: for plan in &plans {
        for sc in &plan.scenarios {
            term.scenario(&plan.name, &sc.name);
            let opts = RunOptions {
                agent: agent.clone(),
                out: out.as_ref().map(|o| scenario_out(o, &plan.name, &sc.name)),
            };
            match run_scenario(host.clone(), &plan.name, sc, &opts, &mut term, &signals) {
                Ok(finished) => {
                    let result = judge(&finished.trace);
                    term.result(&result);
                    if let Some(o) = &opts.out {
                        term.line(&format!("  trace, logs and dumps kept in {}", o.display()));
                    }
                    results.push(result);
                    let interrupted = finished.interrupted;
                    let file = opts.out.as_ref().map(|o| o.join("trace.jsonl"));
                    drawn.push((out.is_some().then_some(finished.trace), file));
                    if let Some(sig) = interrupted {
                        term.line(&format!(
                            "interrupted by signal {sig}: run {} torn down",
                            finished.run_id
                        ));
                        code = exit::INTERRUPTED;
                        break 'suites;
                    }
                }
                Err(RunError::Interrupted(sig)) => {
                    term.line(&format!(
                        "interrupted by signal {sig} before the lab of {}/{} was up; it was removed",
                        plan.name, sc.name
                    ));
                    code = exit::INTERRUPTED;
                    break 'suites;
                }
                Err(e) => {
                    let what = chain(&e);
                    term.line(&format!("  error: {what}"));
                    results.push(ScenarioResult {
                        name: sc.name.clone(),
                        suite: plan.name.clone(),
                        verdict: Verdict::Error,
                        error: Some(what),
                        checks: Vec::new(),
                    });
                    drawn.push((None, None));
                    match e {
                        RunError::Out(_) if code == exit::PASS => code = exit::INVALID_INPUT,
                        RunError::Lab(_) | RunError::Host(_) => code = exit::HOST,
                        _ => {}
                    }
                }
            }
        }
    }
    term.summary(&results);
    if let Err(c) = write_reports(&results, json.as_deref(), junit.as_deref()) {
        return c;
    }
    if let Some(out) = &out {
        let path = out.join("report.html");
        let traces: Vec<_> = drawn
            .iter()
            .map(|(t, file)| (t.as_ref(), file.as_deref()))
            .collect();
        if let Err(c) = write_html(&path, &results, &traces) {
            return c;
        }
        term.line(&format!("report: {}", path.display()));
    }
    if code != exit::PASS {
        return code;
    }
    verdict_code(&results)
}

/// Refuses output paths that cannot be written, before any lab is built:
/// `--json` and `--junit` must name a file (new or writable) in an existing
/// folder; `--out` must be a folder (created if missing) this run can write.
fn check_outputs(
    out: Option<&Path>,
    json: Option<&Path>,
    junit: Option<&Path>,
    report: Option<&Path>,
) -> Result<(), String> {
    for (flag, path) in [("--json", json), ("--junit", junit), ("--report", report)] {
        let Some(path) = path else { continue };
        if path.is_dir() {
            return Err(format!(
                "{flag} {}: is a folder; give a file",
                path.display()
            ));
        }
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(format!(
                "{flag} {}: folder {} does not exist",
                path.display(),
                parent.display()
            ));
        }
        let existed = path.exists();
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| format!("{flag} {}: cannot write: {e}", path.display()))?;
        if !existed {
            let _ = std::fs::remove_file(path);
        }
    }
    if let Some(out) = out {
        if out.exists() && !out.is_dir() {
            return Err(format!("--out {}: is not a folder", out.display()));
        }
        std::fs::create_dir_all(out)
            .map_err(|e| format!("--out {}: cannot create: {e}", out.display()))?;
        let probe = out.join(format!(".faultline-probe-{}", std::process::id()));
        std::fs::write(&probe, b"")
            .map_err(|e| format!("--out {}: cannot write: {e}", out.display()))?;
        let _ = std::fs::remove_file(&probe);
    }
    Ok(())
}

fn verdict_code(results: &[ScenarioResult]) -> i32 {
    if results.iter().all(|r| r.verdict == Verdict::Pass) {
        exit::PASS
    } else if results.iter().any(|r| r.verdict == Verdict::Error) {
        exit::HOST
    } else {
        exit::CHECK_FAILED
    }
}

fn write_reports(
    results: &[ScenarioResult],
    json: Option<&Path>,
    junit: Option<&Path>,
) -> Result<(), i32> {
    let docs = [
        (json, report::json(results)),
        (junit, report::junit::junit(results)),
    ];
    for (path, text) in docs {
        if let Some(path) = path {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return Err(exit::HOST);
            }
        }
    }
    Ok(())
}

/// Writes `report.html` to `path`: each result drawn from its trace, with
/// links (relative to `path`'s folder) to the trace file and to the files
/// that exist beside it.
fn write_html(
    path: &Path,
    results: &[ScenarioResult],
    traces: &[(Option<&Trace>, Option<&Path>)],
) -> Result<(), i32> {
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .canonicalize()
        .ok();
    let inputs: Vec<report::html::ScenarioInput> = results
        .iter()
        .zip(traces)
        .map(|(result, (trace, file))| {
            let name = file.and_then(Path::file_name);
            let folder = file
                .and_then(Path::parent)
                .map(|d| {
                    if d.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        d
                    }
                })
                .and_then(|d| d.canonicalize().ok());
            let rel = base
                .as_deref()
                .zip(folder.as_deref())
                .and_then(|(b, f)| report::html::relative(b, f));
            let files = match (trace, folder, rel) {
                (Some(t), Some(folder), Some(rel)) => report::html::expected_files(t)
                    .into_iter()
                    .map(|(f, what)| match name {
                        Some(n) if f == "trace.jsonl" => (n.to_string_lossy().into_owned(), what),
                        _ => (f, what),
                    })
                    .filter(|(f, _)| folder.join(f).exists())
                    .map(|(f, what)| (rel.join(f).display().to_string(), what))
                    .collect(),
                _ => Vec::new(),
            };
            report::html::ScenarioInput {
                result,
                trace: *trace,
                files,
            }
        })
        .collect();
    let html = report::html::report("faultline report", &inputs);
    std::fs::write(path, html).map_err(|e| {
        eprintln!("error: cannot write {}: {e}", path.display());
        exit::HOST
    })
}

fn cmd_check(
    traces: &[PathBuf],
    json: Option<PathBuf>,
    junit: Option<PathBuf>,
    report: Option<PathBuf>,
) -> i32 {
    if let Err(e) = check_outputs(None, json.as_deref(), junit.as_deref(), report.as_deref()) {
        eprintln!("error: {e}");
        return exit::INVALID_INPUT;
    }
    let mut term = Terminal::default();
    let mut results = Vec::new();
    let mut loaded = Vec::new();
    for path in traces {
        let trace = match Trace::load(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {}", chain(&e));
                return exit::INVALID_INPUT;
            }
        };
        let result = judge(&trace);
        term.scenario(&result.suite, &result.name);
        for record in &trace.records {
            term.record(record);
        }
        term.result(&result);
        results.push(result);
        loaded.push(trace);
    }
    term.summary(&results);
    if let Err(c) = write_reports(&results, json.as_deref(), junit.as_deref()) {
        return c;
    }
    if let Some(path) = &report {
        let drawn: Vec<_> = loaded
            .iter()
            .zip(traces)
            .map(|(t, p)| (Some(t), Some(p.as_path())))
            .collect();
        if let Err(c) = write_html(path, &results, &drawn) {
            return c;
        }
    }
    if results.iter().any(|r| r.verdict == Verdict::Error) {
        exit::INVALID_INPUT
    } else {
        verdict_code(&results)
    }
}

fn cmd_doctor() -> i32 {
    let probes = faultline_faults::host::probe_host();
    let mut missing = false;
    for p in &probes {
        let tag = match (p.ok, p.required) {
            (true, _) => "ok     ",
            (false, true) => "MISSING",
            (false, false) => "absent ",
        };
        missing |= p.required && !p.ok;
        println!(
            "{tag} {:<16} {}{}",
            p.name,
            p.detail,
            if p.required { "" } else { " (optional)" }
        );
    }
    println!("\nfault kinds:");
    for def in faultline::suite::faults::FAULTS {
        match def.kind.available(&probes) {
            Ok(()) => println!("ok      {:<16} {}", def.name, def.doc),
            Err(why) => println!("absent  {:<16} needs {why}", def.name),
        }
    }
    if missing {
        println!("\nthis host cannot run faultline suites");
        exit::HOST
    } else {
        println!("\nthis host can run faultline suites");
        exit::PASS
    }
}

fn cmd_lab_bench(nodes: Vec<usize>, rounds: usize, baseline: Option<PathBuf>) -> i32 {
    use faultline::labbench;
    let max = faultline::topology::MAX_NODES;
    if let Some(bad) = nodes.iter().find(|&&n| n == 0 || n > max) {
        eprintln!("error: --nodes {bad}: a lab has 1 to {max} nodes");
        return exit::INVALID_INPUT;
    }
    if rounds == 0 {
        eprintln!("error: --rounds 0: at least one round");
        return exit::INVALID_INPUT;
    }
    if let Some(script) = &baseline {
        if !script.is_file() {
            eprintln!(
                "error: --baseline {}: no such file (or pass --no-baseline)",
                script.display()
            );
            return exit::INVALID_INPUT;
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("error: lab-bench builds labs: it needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN)");
        return exit::HOST;
    }
    let host = match faultline::lab::host_cgroups() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            return exit::HOST;
        }
    };
    let signals = match signal_channel() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot watch signals: {e}");
            return exit::HOST;
        }
    };
    let interrupted = std::cell::Cell::new(false);
    let plan = labbench::BenchPlan {
        nodes,
        rounds,
        baseline,
    };
    let rows = labbench::run(
        &host,
        &plan,
        |line| println!("{line}"),
        || {
            if signals.try_recv().is_ok() {
                interrupted.set(true);
            }
            interrupted.get()
        },
    );
    println!();
    print!("{}", labbench::render(&rows));
    if interrupted.get() {
        return exit::INTERRUPTED;
    }
    if rows.iter().any(|r| r.ours.is_err()) {
        return exit::HOST;
    }
    exit::PASS
}

fn cmd_cleanup(dry_run: bool) -> i32 {
    let host = match faultline::lab::host_cgroups() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {}", chain(&e));
            return exit::HOST;
        }
    };
    if dry_run {
        let found = faultline::cleanup::find(&host);
        if found.is_empty() {
            println!("nothing of faultline is left on this host");
        }
        for l in &found {
            if l.in_use() {
                println!("would leave alone: {l}");
            } else {
                println!("would remove {l}");
            }
        }
        return exit::PASS;
    }
    let (found, errors) = match faultline::cleanup::clean(&host) {
        Ok(done) => done,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::HOST;
        }
    };
    for l in &found {
        if l.in_use() {
            println!("left alone: {l}");
        } else {
            println!("removed {l}");
        }
    }
    if found.is_empty() {
        println!("nothing of faultline is left on this host");
    }
    for e in &errors {
        eprintln!("error: {e}");
    }
    if errors.is_empty() {
        exit::PASS
    } else {
        exit::HOST
    }
}

/// SIGINT, SIGTERM and SIGHUP as a channel the runner selects on.
fn signal_channel() -> std::io::Result<crossbeam_channel::Receiver<i32>> {
    let mut signals =
        signal_hook::iterator::Signals::new([libc::SIGINT, libc::SIGTERM, libc::SIGHUP])?;
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("faultline-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if tx.send(sig).is_err() {
                    return;
                }
            }
        })?;
    Ok(rx)
}
