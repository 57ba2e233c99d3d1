//! The benchmark's numbers: one [`Sample`] per trial, and the pure
//! summaries over them (HDR histograms per setting, the comparison of two
//! settings, lab times by node count). No I/O; unit-tested without root.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::checks::{ScenarioResult, Verdict};

/// Histograms hold microseconds, from 1 µs to an hour, 3 significant digits.
const HIST_MAX_US: u64 = 3_600_000_000;

/// One trial's figures, taken from the checks' measured values (the
/// `detected_within` computation, `failover_within`, `client_downtime`,
/// `no_detection`): nothing is derived here that a check already measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Its place in the run, from 1.
    pub trial: usize,
    /// `suite/scenario`.
    pub scenario: String,
    /// The setting compared (`watchdog_priority=fifo`), or `default`.
    pub setting: String,
    /// A fault-free control trial: faults removed, checks `no_detection`.
    pub control: bool,
    /// The scenario's verdict (`pass`, `fail`, ...), or `error`.
    pub verdict: String,
    /// Why the trial could not run or be judged, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Detection latency from the confirmed onset, per `detected_within`.
    pub latency_ms: Vec<f64>,
    /// Past the deadline (last heartbeat received + hang_timeout), per
    /// `detected_within`; negative when the watchdog fired early.
    pub overshoot_ms: Vec<f64>,
    /// `detected_within` checks that measured no detection.
    pub missed: u64,
    /// Onset to the group online elsewhere, per `failover_within`.
    pub failover_ms: Vec<f64>,
    /// Longest gap between the client's answers, per `client_downtime`.
    pub downtime_ms: Vec<f64>,
    /// Hang detections in a control trial (every one is false).
    pub false_detections: u64,
    /// Nodes in the lab.
    pub nodes: usize,
    /// The lab's bring-up, from the run's own note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lab_up_ms: Option<f64>,
    /// From the `end` record to the run's return (teardown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown_ms: Option<f64>,
    /// The scenario's planned duration.
    pub planned_ms: f64,
    /// The whole trial, lab to teardown and judging.
    pub wall_ms: f64,
    /// The trial's trace, when kept (`--out`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// Why earlier attempts of this trial failed to run (the host's RT
    /// budget taken by other runs, ...); the trial was run again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_attempts: Vec<String>,
    /// The run's id (its namespaces are `fl-<id>-*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Checks that did not go as the scenario wanted: `kind[node]: what
    /// was found`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_checks: Vec<String>,
    /// Each fault injected: from the harness's request to the effect read
    /// back (the onset), ms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub onsets: Vec<Onset>,
}

/// One fault's time from request to confirmed effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Onset {
    /// The kind, with its mode where it has one (`cpu weight`).
    pub fault: String,
    /// Request to onset, ms.
    pub ms: f64,
}

/// Request-to-onset times of one fault kind over every trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnsetSummary {
    /// The kind, with its mode where it has one.
    pub fault: String,
    /// The distribution, ms.
    pub onset: Distribution,
}

/// Request-to-onset per fault kind, in the order of their names.
pub fn onsets(samples: &[Sample]) -> Vec<OnsetSummary> {
    let mut by: BTreeMap<&str, Hist> = BTreeMap::new();
    for o in samples.iter().flat_map(|s| &s.onsets) {
        by.entry(&o.fault).or_default().record(o.ms);
    }
    by.into_iter()
        .filter_map(|(fault, h)| {
            Some(OnsetSummary {
                fault: fault.to_string(),
                onset: h.distribution()?,
            })
        })
        .collect()
}

impl Sample {
    /// A sample with no figures yet.
    pub fn new(trial: usize, scenario: &str, setting: &str, control: bool) -> Self {
        Sample {
            trial,
            scenario: scenario.to_string(),
            setting: setting.to_string(),
            control,
            verdict: "error".into(),
            error: None,
            latency_ms: Vec::new(),
            overshoot_ms: Vec::new(),
            missed: 0,
            failover_ms: Vec::new(),
            downtime_ms: Vec::new(),
            false_detections: 0,
            nodes: 0,
            lab_up_ms: None,
            teardown_ms: None,
            planned_ms: 0.0,
            wall_ms: 0.0,
            trace: None,
            failed_attempts: Vec::new(),
            run_id: None,
            failed_checks: Vec::new(),
            onsets: Vec::new(),
        }
    }

    /// Takes the figures the checks measured.
    pub fn take_figures(&mut self, result: &ScenarioResult) {
        self.verdict = verdict_name(result.verdict).into();
        self.error = result.error.clone();
        for c in &result.checks {
            if !c.as_expected() {
                self.failed_checks
                    .push(format!("{}: {}", c.label(), c.detail));
            }
            let m = |k: &str| c.measured.get(k).copied();
            match c.kind.as_str() {
                "detected_within" => match (m("latency_ms"), m("overshoot_ms")) {
                    (Some(l), Some(o)) => {
                        self.latency_ms.push(l);
                        self.overshoot_ms.push(o);
                    }
                    _ => self.missed += 1,
                },
                "failover_within" => self.failover_ms.extend(m("failover_ms")),
                "client_downtime" => self.downtime_ms.extend(m("downtime_ms")),
                "no_detection" => {
                    self.false_detections += m("detections").unwrap_or(0.0) as u64;
                }
                _ => {}
            }
        }
    }
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Error => "error",
        Verdict::Inconclusive => "inconclusive",
    }
}

/// A distribution's figures, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Values recorded.
    pub count: u64,
    /// Smallest.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// An HDR histogram of millisecond values, kept in microseconds, with the
/// exact smallest and largest value beside it (HDR reports a bucket's
/// bounds: at 3 significant digits, 749.9 ms reads as 749.6).
/// Negative values are clamped to 0 (the caller counts them apart).
pub struct Hist {
    h: Histogram<u64>,
    min_us: u64,
    max_us: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            h: Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid bounds"),
            min_us: u64::MAX,
            max_us: 0,
        }
    }
}

impl Hist {
    /// A histogram of `values` (ms).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut h = Hist::default();
        for v in values {
            h.record(v);
        }
        h
    }

    /// Records one value in milliseconds.
    pub fn record(&mut self, ms: f64) {
        let us = ((ms.max(0.0) * 1e3).round() as u64).min(HIST_MAX_US);
        self.h.saturating_record(us);
        self.min_us = self.min_us.min(us);
        self.max_us = self.max_us.max(us);
    }

    /// The figures, or `None` when nothing was recorded.
    pub fn distribution(&self) -> Option<Distribution> {
        let h = &self.h;
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1e3;
        // A percentile is a bucket's value, kept within the exact range.
        let q = |p: f64| ms(h.value_at_quantile(p).clamp(self.min_us, self.max_us));
        Some(Distribution {
            count: h.len(),
            min: ms(self.min_us),
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            max: ms(self.max_us),
        })
    }

    /// Counts per bucket for a histogram plot: `buckets` equal bins from
    /// `lo` to `hi` ms (values outside go to the first or last bin).
    pub fn bins(&self, lo: f64, hi: f64, buckets: usize) -> Vec<u64> {
        let mut out = vec![0u64; buckets.max(1)];
        let width = ((hi - lo) / out.len() as f64).max(1e-9);
        for v in self.h.iter_recorded() {
            let ms = v.value_iterated_to() as f64 / 1e3;
            let i = (((ms - lo) / width).floor().max(0.0) as usize).min(out.len() - 1);
            out[i] += v.count_at_value();
        }
        out
    }
}

/// The figures of one (scenario, setting): fault trials and controls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingSummary {
    /// `suite/scenario`.
    pub scenario: String,
    /// The setting, or `default`.
    pub setting: String,
    /// Fault trials run (errors included).
    pub trials: usize,
    /// Trials, controls included, that could not run or be judged.
    pub errors: usize,
    /// Attempts run again because the run failed (see `failed_attempts`).
    pub retries: usize,
    /// Detection latency from the confirmed onset.
    pub latency: Option<Distribution>,
    /// Overshoot past the deadline (early firings count as 0 here and are
    /// counted in `early`).
    pub overshoot: Option<Distribution>,
    /// Detections before the deadline.
    pub early: usize,
    /// `detected_within` checks that saw no detection.
    pub missed: u64,
    /// Failover time.
    pub failover: Option<Distribution>,
    /// Client downtime.
    pub downtime: Option<Distribution>,
    /// Control trials run.
    pub controls: usize,
    /// Hang detections across the controls.
    pub false_detections: u64,
}

/// Summaries per (scenario, setting), in the order they first appear.
pub fn summarize(samples: &[Sample]) -> Vec<SettingSummary> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for s in samples {
        let k = (s.scenario.clone(), s.setting.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|(scenario, setting)| {
            let mine = || {
                samples
                    .iter()
                    .filter(|s| s.scenario == scenario && s.setting == setting)
            };
            let faulted = || mine().filter(|s| !s.control);
            let controls = || mine().filter(|s| s.control);
            let dist = |f: &dyn Fn(&Sample) -> &Vec<f64>| {
                Hist::of(faulted().flat_map(|s| f(s).iter().copied())).distribution()
            };
            SettingSummary {
                trials: faulted().count(),
                errors: mine()
                    .filter(|s| s.error.is_some() && s.verdict == "error")
                    .count(),
                retries: mine().map(|s| s.failed_attempts.len()).sum(),
                latency: dist(&|s| &s.latency_ms),
                overshoot: dist(&|s| &s.overshoot_ms),
                early: faulted()
                    .flat_map(|s| &s.overshoot_ms)
                    .filter(|o| **o < 0.0)
                    .count(),
                missed: faulted().map(|s| s.missed).sum(),
                failover: dist(&|s| &s.failover_ms),
                downtime: dist(&|s| &s.downtime_ms),
                controls: controls().count(),
                false_detections: controls().map(|s| s.false_detections).sum(),
                scenario,
                setting,
            }
        })
        .collect()
}

/// One figure of two settings side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRow {
    /// `overshoot p99`, ...
    pub figure: String,
    /// The first setting's value (ms).
    pub a: Option<f64>,
    /// The second setting's value (ms).
    pub b: Option<f64>,
    /// `b / a`; `None` when either is missing or `a` is 0.
    pub ratio: Option<f64>,
}

/// Two settings of one scenario compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// `suite/scenario`.
    pub scenario: String,
    /// The first setting.
    pub a: String,
    /// The second setting.
    pub b: String,
    /// Latency and overshoot at p50, p90, p99, max; failover and downtime
    /// p50 and max where measured.
    pub rows: Vec<ComparisonRow>,
}

type Figure = fn(&SettingSummary) -> Option<Distribution>;
type Stat = fn(&Distribution) -> f64;

/// `b` against `a`, figure by figure.
pub fn compare(a: &SettingSummary, b: &SettingSummary) -> Comparison {
    let mut rows = Vec::new();
    let pick: [(&str, Figure); 4] = [
        ("latency", |s| s.latency),
        ("overshoot", |s| s.overshoot),
        ("failover", |s| s.failover),
        ("downtime", |s| s.downtime),
    ];
    for (name, get) in pick {
        let (da, db) = (get(a), get(b));
        if da.is_none() && db.is_none() {
            continue;
        }
        let stats: [(&str, Stat); 5] = [
            ("min", |d| d.min),
            ("p50", |d| d.p50),
            ("p90", |d| d.p90),
            ("p99", |d| d.p99),
            ("max", |d| d.max),
        ];
        for (stat, f) in stats {
            let (va, vb) = (da.as_ref().map(f), db.as_ref().map(f));
            rows.push(ComparisonRow {
                figure: format!("{name} {stat}"),
                a: va,
                b: vb,
                ratio: ratio(va, vb),
            });
        }
    }
    Comparison {
        scenario: a.scenario.clone(),
        a: a.setting.clone(),
        b: b.setting.clone(),
        rows,
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => Some(b / a),
        _ => None,
    }
}

/// Lab bring-up and teardown by node count, over every trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabTimes {
    /// Nodes in the lab.
    pub nodes: usize,
    /// Bring-up.
    pub up: Option<Distribution>,
    /// Teardown.
    pub teardown: Option<Distribution>,
}

/// [`LabTimes`] per node count, ascending.
pub fn lab_times(samples: &[Sample]) -> Vec<LabTimes> {
    let mut by: BTreeMap<usize, (Hist, Hist)> = BTreeMap::new();
    for s in samples {
        let (up, down) = by.entry(s.nodes).or_default();
        if let Some(v) = s.lab_up_ms {
            up.record(v);
        }
        if let Some(v) = s.teardown_ms {
            down.record(v);
        }
    }
    by.into_iter()
        .map(|(nodes, (up, down))| LabTimes {
            nodes,
            up: up.distribution(),
            teardown: down.distribution(),
        })
        .collect()
}

/// The bench's wall time against the scenarios' planned durations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Overhead {
    /// The whole bench, ms, waits before retried attempts included.
    pub wall_ms: f64,
    /// The trials that ran, each its last attempt from lab to judged.
    pub trials_ms: f64,
    /// The sum of the planned durations of the trials that ran, ms.
    pub planned_ms: f64,
    /// `wall / planned`.
    pub ratio: Option<f64>,
    /// `trials / planned`: the harness's own overhead per trial.
    pub trials_ratio: Option<f64>,
}

/// [`Overhead`] of `samples` run in `wall_ms`.
pub fn overhead(samples: &[Sample], wall_ms: f64) -> Overhead {
    let planned_ms: f64 = samples.iter().map(|s| s.planned_ms).sum();
    let trials_ms: f64 = samples
        .iter()
        .filter(|s| s.planned_ms > 0.0)
        .map(|s| s.wall_ms)
        .sum();
    Overhead {
        wall_ms,
        trials_ms,
        planned_ms,
        ratio: (planned_ms > 0.0).then(|| wall_ms / planned_ms),
        trials_ratio: (planned_ms > 0.0).then(|| trials_ms / planned_ms),
    }
}

/// The running p50 and p99 of the overshoot so far, for the progress line.
pub fn running(samples: &[Sample]) -> Option<(f64, f64)> {
    let d = Hist::of(
        samples
            .iter()
            .filter(|s| !s.control)
            .flat_map(|s| s.overshoot_ms.iter().copied()),
    )
    .distribution()?;
    Some((d.p50, d.p99))
}

/// `12.345 ms` or `-` for a missing figure.
pub fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v.abs() >= 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
        None => "-".into(),
    }
}

/// `12.3x` or `-`.
pub fn times(r: Option<f64>) -> String {
    match r {
        Some(r) => format!("{r:.1}x"),
        None => "-".into(),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::checks::CheckResult;

    /// A passing check of n1 with these measured figures.
    pub(in crate::bench) fn check(kind: &str, measured: &[(&str, f64)]) -> CheckResult {
        CheckResult {
            kind: kind.into(),
            node: Some("n1".into()),
            group: None,
            verdict: Verdict::Pass,
            expected_failure: false,
            detail: String::new(),
            measured: measured.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    /// A passing scenario result with these checks.
    pub(in crate::bench) fn result(checks: Vec<CheckResult>) -> ScenarioResult {
        ScenarioResult {
            name: "s".into(),
            suite: "b".into(),
            verdict: Verdict::Pass,
            error: None,
            checks,
        }
    }

    fn trial(n: usize, setting: &str, overshoot: f64) -> Sample {
        let mut s = Sample::new(n, "b/s", setting, false);
        s.take_figures(&result(vec![check(
            "detected_within",
            &[
                ("latency_ms", 900.0 + overshoot),
                ("overshoot_ms", overshoot),
            ],
        )]));
        s
    }

    #[test]
    fn figures_come_from_the_checks_measured_values() {
        let mut s = Sample::new(1, "b/s", "default", false);
        s.take_figures(&result(vec![
            check(
                "detected_within",
                &[("latency_ms", 801.5), ("overshoot_ms", 0.25)],
            ),
            check("detected_within", &[("deadline_ms", 900.0)]),
            check("failover_within", &[("failover_ms", 120.0)]),
            check("client_downtime", &[("downtime_ms", 300.0)]),
            check("recovery_action", &[("fence_ms", 7.0)]),
        ]));
        assert_eq!(s.latency_ms, vec![801.5]);
        assert_eq!(s.overshoot_ms, vec![0.25]);
        assert_eq!(
            s.missed, 1,
            "a detected_within without a detection is a miss"
        );
        assert_eq!(s.failover_ms, vec![120.0]);
        assert_eq!(s.downtime_ms, vec![300.0]);
        assert_eq!(s.verdict, "pass");
        let mut c = Sample::new(2, "b/s", "default", true);
        c.take_figures(&result(vec![check("no_detection", &[("detections", 2.0)])]));
        assert_eq!(c.false_detections, 2);
        assert!(s.failed_checks.is_empty() && c.failed_checks.is_empty());
    }

    #[test]
    fn checks_that_went_otherwise_than_wanted_are_named_with_what_they_found() {
        let mut failed = check("no_ip_conflict", &[]);
        failed.node = None;
        failed.group = Some("sql".into());
        failed.verdict = Verdict::Fail;
        failed.detail = "two holders".into();
        let mut expected = check("client_downtime", &[]);
        expected.verdict = Verdict::Fail;
        expected.expected_failure = true;
        let mut missing = check("detected_within", &[]);
        missing.expected_failure = true;
        missing.detail = "detected".into();
        let mut s = Sample::new(1, "b/s", "default", false);
        s.take_figures(&result(vec![
            failed,
            expected,
            missing,
            check("events", &[]),
        ]));
        assert_eq!(
            s.failed_checks,
            vec![
                "no_ip_conflict[sql]: two holders".to_string(),
                "detected_within[n1]: detected".to_string()
            ]
        );
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        // 1..=100 ms: p50 50, p90 90, p99 99, within HDR's 3 digits.
        let d = Hist::of((1..=100).map(f64::from)).distribution().unwrap();
        assert_eq!(d.count, 100);
        assert!((d.min - 1.0).abs() < 1e-3);
        assert!((d.p50 - 50.0).abs() < 0.05, "{d:?}");
        assert!((d.p90 - 90.0).abs() < 0.1, "{d:?}");
        assert!((d.p99 - 99.0).abs() < 0.1, "{d:?}");
        assert!((d.max - 100.0).abs() < 0.1, "{d:?}");
        assert!(Hist::default().distribution().is_none());
        // Microsecond values survive (the checks round to 1 µs).
        let d = Hist::of([0.004, 0.180, 0.250]).distribution().unwrap();
        assert!(
            (d.min - 0.004).abs() < 1e-9 && (d.max - 0.250).abs() < 1e-9,
            "{d:?}"
        );
        // Min and max are exact where HDR's buckets are wide.
        let d = Hist::of([749.9, 999.9]).distribution().unwrap();
        assert_eq!((d.min, d.max), (749.9, 999.9));
    }

    #[test]
    fn summaries_split_settings_and_controls_and_count_misses() {
        let mut samples = vec![trial(1, "p=a", 0.2), trial(2, "p=b", 150.0)];
        samples.push(trial(3, "p=a", -0.5));
        let mut ctl = Sample::new(4, "b/s", "p=a", true);
        ctl.take_figures(&result(vec![check("no_detection", &[("detections", 1.0)])]));
        samples.push(ctl);
        let sums = summarize(&samples);
        assert_eq!(sums.len(), 2);
        let a = &sums[0];
        assert_eq!((a.setting.as_str(), a.trials, a.controls), ("p=a", 2, 1));
        assert_eq!(a.false_detections, 1);
        assert_eq!(a.early, 1, "a negative overshoot is an early firing");
        assert_eq!(a.overshoot.unwrap().min, 0.0);
        let cmp = compare(&sums[0], &sums[1]);
        let p99 = cmp
            .rows
            .iter()
            .find(|r| r.figure == "overshoot p99")
            .unwrap();
        assert!((p99.ratio.unwrap() - 150.0 / 0.2).abs() < 1.0, "{p99:?}");
        assert!(cmp.rows.iter().all(|r| !r.figure.starts_with("failover")));
    }

    #[test]
    fn a_zero_baseline_has_no_ratio() {
        assert_eq!(ratio(Some(0.0), Some(5.0)), None);
        assert_eq!(ratio(None, Some(5.0)), None);
        assert_eq!(ratio(Some(2.0), Some(5.0)), Some(2.5));
    }

    #[test]
    fn lab_times_group_by_node_count_and_overhead_sums_plans() {
        let mut samples = Vec::new();
        for (n, up) in [(1, 40.0), (1, 60.0), (3, 200.0)] {
            let mut s = Sample::new(1, "b/s", "default", false);
            s.nodes = n;
            s.lab_up_ms = Some(up);
            s.teardown_ms = Some(up / 2.0);
            s.planned_ms = 1000.0;
            s.wall_ms = 1100.0;
            samples.push(s);
        }
        let labs = lab_times(&samples);
        assert_eq!(labs.iter().map(|l| l.nodes).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(labs[0].up.unwrap().count, 2);
        assert!((labs[1].teardown.unwrap().max - 100.0).abs() < 0.1);
        let o = overhead(&samples, 3900.0);
        assert_eq!(o.planned_ms, 3000.0);
        assert!((o.ratio.unwrap() - 1.3).abs() < 1e-9);
        assert!((o.trials_ratio.unwrap() - 1.1).abs() < 1e-9);
        // A trial that did not run plans nothing and adds no trial time.
        let mut failed = Sample::new(4, "b/s", "default", false);
        failed.wall_ms = 50.0;
        samples.push(failed);
        assert_eq!(overhead(&samples, 3900.0).trials_ms, 3300.0);
    }

    #[test]
    fn bins_count_every_value_once() {
        let h = Hist::of([0.1, 0.2, 5.0, 9.9, 50.0]);
        let b = h.bins(0.0, 10.0, 10);
        assert_eq!(b.iter().sum::<u64>(), 5);
        assert_eq!(b[0], 2);
        assert_eq!(b[9], 2, "9.9 and the out-of-range 50 land in the last bin");
    }
}
