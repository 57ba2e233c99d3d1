//! The lab benchmark: builds and tears down labs of several sizes (network,
//! cgroups per node, node folders; no agents started), interleaved in one
//! process with the hand-rolled shell script a user would write instead
//! (`../shared/tools/baseline-lab.sh N`, which builds the same topology with
//! `ip` and `mkdir` and prints its own setup and teardown milliseconds), and
//! reports the medians side by side.
//!
//! The statistics ([`median`], [`summarize`]) and the table ([`render`]) are
//! pure; [`measure_lab`] and [`measure_baseline`] do one round each, so
//! `faultline bench` can call them too. It knows nothing of suites or traces.
//!
//! Measured on 6 December 2026 (2 vCPUs, quiet host, release build,
//! watchdog RT grants as in a run, `faultline lab-bench --nodes
//! 1,3,16,64,128 --rounds 5`), medians in ms, setup then teardown:
//!
//! | nodes | faultline | script | speedup | faultline | script | speedup |
//! | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
//! | 1 | 6.0 | 112 | 18.7x | 2.6 | 35 | 13.5x |
//! | 3 | 14.5 | 179 | 12.4x | 5.0 | 75 | 15.1x |
//! | 16 | 51.3 | 791 | 15.4x | 24.9 | 345 | 13.8x |
//! | 64 | 208.4 | 2739 | 13.1x | 87.3 | 1199 | 13.7x |
//! | 128 | 477.0 | 5507 | 11.5x | 192.8 | 2384 | 12.4x |
//!
//! Teardown had been 54-78 ms at 1-16 nodes, slower than the script at
//! 1 node: the run's RT time went back only after its groups were removed,
//! and the kernel frees a removed group's RT time after an RCU grace
//! period, so lowering the parent was refused and retried every 25 ms.
//! The subtree now gives it back before removal.
//!
//! The lab as it was (an `ip` process per step), measured the same way:
//! 1.6x-2.0x the script's speed at 1, 3, 16 and 64 nodes (3 nodes 171 ms,
//! 64 nodes 2467 ms).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faultline_faults::cgroup::CgroupHost;
use faultline_faults::process;

use crate::lab::{chain, Lab};
use crate::plan::{NodePlan, NodeSettings, ScenarioPlan};

/// One build and teardown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// From nothing to a lab ready for its agents.
    pub setup: Duration,
    /// From a built lab to nothing.
    pub teardown: Duration,
}

/// The medians of one side (ours or the baseline) at one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Medians {
    /// Median setup.
    pub setup: Duration,
    /// Median teardown.
    pub teardown: Duration,
    /// Rounds measured.
    pub rounds: usize,
}

/// One size's result: each side's medians, or why it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Nodes in the lab.
    pub nodes: usize,
    /// faultline's lab.
    pub ours: Result<Medians, String>,
    /// The baseline script.
    pub baseline: Result<Medians, String>,
}

impl Row {
    /// How many times faster our setup is than the baseline's.
    pub fn setup_speedup(&self) -> Option<f64> {
        ratio(&self.ours, &self.baseline, |m| m.setup)
    }

    /// How many times faster our teardown is than the baseline's.
    pub fn teardown_speedup(&self) -> Option<f64> {
        ratio(&self.ours, &self.baseline, |m| m.teardown)
    }
}

fn ratio(
    ours: &Result<Medians, String>,
    base: &Result<Medians, String>,
    f: impl Fn(&Medians) -> Duration,
) -> Option<f64> {
    let (o, b) = (f(ours.as_ref().ok()?), f(base.as_ref().ok()?));
    (!o.is_zero()).then(|| b.as_secs_f64() / o.as_secs_f64())
}

/// The median of `xs` (the mean of the middle two for an even count);
/// `None` when empty.
pub fn median(xs: &[Duration]) -> Option<Duration> {
    let mut v = xs.to_vec();
    v.sort();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2),
    }
}

/// The medians of `samples`; `None` when there are none.
pub fn medians(samples: &[Sample]) -> Option<Medians> {
    let setup: Vec<_> = samples.iter().map(|s| s.setup).collect();
    let teardown: Vec<_> = samples.iter().map(|s| s.teardown).collect();
    Some(Medians {
        setup: median(&setup)?,
        teardown: median(&teardown)?,
        rounds: samples.len(),
    })
}

/// One size's row from each side's samples and first error: a side with
/// no sample reports its error (or that it was not run).
pub fn summarize(
    nodes: usize,
    ours: &[Sample],
    ours_err: Option<&str>,
    base: &[Sample],
    base_err: Option<&str>,
) -> Row {
    let side = |s: &[Sample], e: Option<&str>| {
        medians(s).ok_or_else(|| e.unwrap_or("not measured").to_string())
    };
    Row {
        nodes,
        ours: side(ours, ours_err),
        baseline: side(base, base_err),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// The table: nodes, medians of setup and teardown for both sides, and the
/// speedups (baseline / ours); a side that failed shows why under the table.
pub fn render(rows: &[Row]) -> String {
    let mut out = format!(
        "{:>5}  {:>6}  {:>11}  {:>11}  {:>7}  {:>11}  {:>11}  {:>7}\n",
        "nodes",
        "rounds",
        "setup ms",
        "script ms",
        "speedup",
        "teardown ms",
        "script ms",
        "speedup"
    );
    let mut notes = Vec::new();
    for r in rows {
        let cell = |m: &Result<Medians, String>, f: fn(&Medians) -> Duration| {
            m.as_ref().map(|m| ms(f(m))).unwrap_or_else(|_| "-".into())
        };
        let x = |v: Option<f64>| v.map(|v| format!("{v:.1}x")).unwrap_or_else(|| "-".into());
        let rounds = r
            .ours
            .as_ref()
            .map(|m| m.rounds.to_string())
            .unwrap_or_else(|_| "-".into());
        out.push_str(&format!(
            "{:>5}  {:>6}  {:>11}  {:>11}  {:>7}  {:>11}  {:>11}  {:>7}\n",
            r.nodes,
            rounds,
            cell(&r.ours, |m| m.setup),
            cell(&r.baseline, |m| m.setup),
            x(r.setup_speedup()),
            cell(&r.ours, |m| m.teardown),
            cell(&r.baseline, |m| m.teardown),
            x(r.teardown_speedup()),
        ));
        if let Err(e) = &r.ours {
            notes.push(format!("{} nodes, faultline: {e}", r.nodes));
        }
        if let Err(e) = &r.baseline {
            notes.push(format!("{} nodes, script: {e}", r.nodes));
        }
    }
    for n in notes {
        out.push_str(&format!("  note: {n}\n"));
    }
    out
}

/// A scenario of `nodes` nodes `n1`..`nN` with default settings and
/// nothing else: the lab the benchmark builds.
pub fn bench_scenario(nodes: usize) -> ScenarioPlan {
    ScenarioPlan {
        name: format!("lab-bench-{nodes}"),
        nodes: (1..=nodes)
            .map(|i| NodePlan {
                name: format!("n{i}"),
                settings: NodeSettings::default(),
            })
            .collect(),
        faults: Vec::new(),
        checks: Vec::new(),
        expect_fail: Vec::new(),
        duration: Duration::from_secs(1),
        groups: Vec::new(),
        witness: false,
        failover_window: Duration::from_secs(60),
    }
}

/// Builds and tears down one lab for `scenario`, timing each half. A
/// teardown that reports errors is an error.
pub fn measure_lab(host: &CgroupHost, scenario: &ScenarioPlan) -> Result<Sample, String> {
    let t0 = Instant::now();
    let mut lab = Lab::build(host.clone(), scenario, None).map_err(|e| chain(&e))?;
    let setup = t0.elapsed();
    let t1 = Instant::now();
    lab.teardown().map_err(|e| e.join("; "))?;
    Ok(Sample {
        setup,
        teardown: t1.elapsed(),
    })
}

/// Runs `bash SCRIPT N` and reads the figures it prints
/// (`nodes N setup_ms S teardown_ms T`).
pub fn measure_baseline(script: &Path, nodes: usize) -> Result<Sample, String> {
    let n = nodes.to_string();
    let script_s = script.to_string_lossy();
    let out = process::run("bash", &[&script_s, &n])
        .map_err(|e| format!("cannot run {}: {}", script.display(), chain(&e)))?;
    if !out.status.success() {
        return Err(format!(
            "{} {nodes} failed with {}: {}",
            script.display(),
            out.status,
            out.stderr.trim()
        ));
    }
    parse_baseline(&out.stdout).ok_or_else(|| {
        format!(
            "{} printed no `setup_ms S teardown_ms T` line: {:?}",
            script.display(),
            out.stdout.trim()
        )
    })
}

/// The figures of the script's last line `nodes N setup_ms S teardown_ms T`.
pub fn parse_baseline(stdout: &str) -> Option<Sample> {
    let line = stdout.lines().rev().find(|l| l.contains("setup_ms"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let field = |key: &str| -> Option<Duration> {
        let i = words.iter().position(|w| *w == key)?;
        let v: u64 = words.get(i + 1)?.parse().ok()?;
        Some(Duration::from_millis(v))
    };
    Some(Sample {
        setup: field("setup_ms")?,
        teardown: field("teardown_ms")?,
    })
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    /// Lab sizes, in order.
    pub nodes: Vec<usize>,
    /// Rounds per size and side.
    pub rounds: usize,
    /// The baseline script; `None` measures faultline only.
    pub baseline: Option<PathBuf>,
}

/// Measures every size: per round, our lab then the script (the order
/// alternates each round), so both see the same host. `progress` gets a
/// line per round; `stop` is asked between rounds. A side that fails at a
/// size is not retried at that size.
pub fn run(
    host: &CgroupHost,
    plan: &BenchPlan,
    mut progress: impl FnMut(&str),
    stop: impl Fn() -> bool,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for &n in &plan.nodes {
        let scenario = bench_scenario(n);
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        let (mut ours_err, mut base_err) = (None::<String>, None::<String>);
        for round in 0..plan.rounds {
            if stop() {
                break;
            }
            let order = if round % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for is_ours in order {
                if is_ours && ours_err.is_none() {
                    match measure_lab(host, &scenario) {
                        Ok(s) => {
                            progress(&format!(
                                "{n:>4} nodes round {}: faultline setup {} ms, teardown {} ms",
                                round + 1,
                                ms(s.setup),
                                ms(s.teardown)
                            ));
                            ours.push(s);
                        }
                        Err(e) => {
                            progress(&format!("{n:>4} nodes: faultline failed: {e}"));
                            ours_err = Some(e);
                        }
                    }
                } else if let (false, None, Some(script)) =
                    (is_ours, &base_err, plan.baseline.as_deref())
                {
                    match measure_baseline(script, n) {
                        Ok(s) => {
                            progress(&format!(
                                "{n:>4} nodes round {}: script setup {} ms, teardown {} ms",
                                round + 1,
                                ms(s.setup),
                                ms(s.teardown)
                            ));
                            base.push(s);
                        }
                        Err(e) => {
                            progress(&format!("{n:>4} nodes: script failed: {e}"));
                            base_err = Some(e);
                        }
                    }
                }
            }
        }
        let base_err = base_err.or_else(|| plan.baseline.is_none().then(|| "no script".into()));
        rows.push(summarize(
            n,
            &ours,
            ours_err.as_deref(),
            &base,
            base_err.as_deref(),
        ));
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn the_median_of_odd_and_even_counts_and_of_nothing() {
        assert_eq!(median(&[d(9), d(1), d(5)]), Some(d(5)));
        assert_eq!(median(&[d(4), d(1), d(10), d(2)]), Some(d(3)));
        assert_eq!(median(&[d(7)]), Some(d(7)));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn a_row_carries_medians_and_the_speedup_over_the_script() {
        let ours = [
            Sample {
                setup: d(20),
                teardown: d(10),
            },
            Sample {
                setup: d(30),
                teardown: d(40),
            },
            Sample {
                setup: d(25),
                teardown: d(20),
            },
        ];
        let base = [
            Sample {
                setup: d(100),
                teardown: d(20),
            },
            Sample {
                setup: d(75),
                teardown: d(20),
            },
        ];
        let row = summarize(3, &ours, None, &base, None);
        let m = row.ours.clone().unwrap();
        assert_eq!((m.setup, m.teardown, m.rounds), (d(25), d(20), 3));
        assert_eq!(
            row.baseline.clone().unwrap().setup,
            d(87) + Duration::from_micros(500)
        );
        assert!((row.setup_speedup().unwrap() - 3.5).abs() < 1e-9);
        assert!((row.teardown_speedup().unwrap() - 1.0).abs() < 1e-9);
        let table = render(&[row]);
        assert!(table.contains("  3.5x"), "{table}");
        assert!(
            table.lines().nth(1).unwrap().trim_start().starts_with("3 "),
            "{table}"
        );
    }

    #[test]
    fn a_side_without_samples_reports_why_and_has_no_speedup() {
        let row = summarize(64, &[], Some("cgroup setup failed: RT"), &[], None);
        assert_eq!(row.ours, Err("cgroup setup failed: RT".into()));
        assert_eq!(row.baseline, Err("not measured".into()));
        assert_eq!(row.setup_speedup(), None);
        let table = render(&[row]);
        assert!(
            table.contains("note: 64 nodes, faultline: cgroup setup failed: RT"),
            "{table}"
        );
    }

    #[test]
    fn the_scripts_figures_are_read_from_its_last_line() {
        let s = parse_baseline("noise\nnodes 3 setup_ms 181 teardown_ms 95\n").unwrap();
        assert_eq!(
            s,
            Sample {
                setup: d(181),
                teardown: d(95)
            }
        );
        assert_eq!(parse_baseline("nodes 3 setup_ms x teardown_ms 1"), None);
        assert_eq!(parse_baseline(""), None);
    }

    #[test]
    fn the_bench_scenario_has_n_named_nodes_and_nothing_else() {
        let s = bench_scenario(3);
        let names: Vec<_> = s.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["n1", "n2", "n3"]);
        assert!(s.faults.is_empty() && s.groups.is_empty() && !s.witness);
    }
}
