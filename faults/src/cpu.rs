//! The cpu fault: CPU starvation of a node's service, by one of three
//! mechanisms ([`CpuMode`]):
//!
//! - `quota`: a CFS quota on the service's cgroup with busy workers in the
//!   same cgroup, so the quota is spent and the service waits for the next
//!   period; proof: `cpu.stat` `nr_throttled` rising.
//! - `rt_hog`: one SCHED_FIFO spinner per CPU the service may use, in the
//!   workload cgroup (granted RT time for the fault's length), at a
//!   priority below the watchdog's; proof: the service's run delay
//!   (`/proc/PID/task/*/schedstat`, second field) rising.
//! - `weight`: the service cgroup at the lowest CPU weight; once the
//!   service has run at it, workers in the workload cgroup at the highest
//!   weight, pinned round-robin to every CPU the service may use (at least
//!   one per CPU); proof: 500 ms of run delay. Unpinned, 4 workers on 2
//!   CPUs let the service through every 0.3-1.6 s (measured: the load
//!   balancer moves tasks and a CPU's worker group is briefly thin or
//!   absent). Pinned, the service still got one more slice 150-680 ms in,
//!   in a quarter of the runs, and was starved after it (a woken entity's
//!   lag, which the kernel scales by old/new weight when the sleeping
//!   service is next enqueued, is the likely credit); a 1 ms proof could
//!   not tell that apart, half a second can.
//!
//! It starts and stops its own helpers only (never kills a cgroup: the
//! quota workers share the service's) and restores every file it changed.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cgroup::{Cgroup, CgroupHost, CpuQuota, WeightLevel};
use crate::clock::monotonic_ns;
use crate::fault::{Fault, FaultError, FaultGuard};
use crate::guard::UndoGuard;
use crate::helper::{self, Running};

/// How long the proof may take to appear.
const PROOF_TIMEOUT: Duration = Duration::from_secs(5);
/// Run delay the service must gain for `rt_hog` and `weight` to count.
const RUN_DELAY_PROOF_NS: u64 = 1_000_000;
/// Run delay `weight` must add before it counts: half a second kept off
/// the CPU, two heartbeat intervals of the suites' services. A first
/// millisecond was no proof of starvation: in 5 of 20 runs the service
/// then got one more slice 250-680 ms later (the lag EEVDF gives back to
/// a woken entity, scaled x512 by the weight change; see the suite), and
/// its heartbeat came after the onset.
const WEIGHT_PROOF_NS: u64 = 500_000_000;
/// How long stopped helpers may take to be reaped.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// How the CPU is taken from the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuMode {
    /// CFS quota on the service's cgroup, spent by workers inside it.
    Quota {
        /// CPU time allowed per period, µs.
        quota_us: u64,
        /// The period, µs.
        period_us: u64,
    },
    /// SCHED_FIFO spinners on every CPU, in the workload cgroup.
    RtHog {
        /// Their priority (below the watchdog's).
        priority: i32,
        /// RT time granted to the workload cgroup per 1 s period (µs):
        /// what the spinners may take of each CPU each second.
        runtime_us: u64,
    },
    /// High-weight workers against a low-weight service.
    Weight,
}

impl CpuMode {
    /// Its name in suites.
    pub fn name(&self) -> &'static str {
        match self {
            CpuMode::Quota { .. } => "quota",
            CpuMode::RtHog { .. } => "rt_hog",
            CpuMode::Weight => "weight",
        }
    }
}

/// Starves the service of CPU until healed.
#[derive(Debug, Clone)]
pub struct CpuStarve {
    /// The mechanism.
    pub mode: CpuMode,
    /// The host's cgroups (for RT time).
    pub host: CgroupHost,
    /// The node's service cgroup.
    pub service: Cgroup,
    /// The node's workload cgroup.
    pub workload: Cgroup,
    /// Busy workers (`quota`, `weight`); `rt_hog` runs one per CPU.
    pub workers: usize,
    /// The program that runs helpers (`faultline`).
    pub helper: PathBuf,
    /// The node's network namespace, for the helpers.
    pub netns: Option<PathBuf>,
    /// How long helpers may live at most (the fault's length plus margin).
    pub lifetime: Duration,
}

/// What was changed, so it can be undone.
#[derive(Debug, Default)]
struct Undo {
    quota: Option<CpuQuota>,
    service_weight: Option<u64>,
    workload_weight: Option<u64>,
    rt_granted: bool,
}

impl Fault for CpuStarve {
    fn describe(&self) -> String {
        format!(
            "cpu {} on {}",
            self.mode.name(),
            self.service.rel().display()
        )
    }

    fn inject(&self) -> Result<Box<dyn FaultGuard>, FaultError> {
        let state = CpuGuard {
            fault: self.clone(),
            running: Running::new(),
            undo: Undo::default(),
        };
        UndoGuard::inject(self.describe(), state, CpuGuard::apply)
    }
}

/// CPUs this process may run on (the lab's processes inherit the same).
fn cpus() -> Vec<usize> {
    affinity(0).unwrap_or_else(|| vec![0])
}

/// CPUs `pid` (0: this process) may run on; `None` if it cannot be read
/// (the process is gone).
pub fn affinity(pid: i32) -> Option<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        Some(
            (0..libc::CPU_SETSIZE as usize)
                .filter(|c| libc::CPU_ISSET(*c, &set))
                .collect(),
        )
    }
}

/// Every CPU any of `pids` may run on, in order.
fn service_cpus(pids: &[i32]) -> Vec<usize> {
    let mut all: Vec<usize> = pids.iter().filter_map(|p| affinity(*p)).flatten().collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// The CPU of each weight worker: `workers` of them (at least one per
/// CPU) dealt round-robin over `cpus`.
pub fn pin_plan(cpus: &[usize], workers: usize) -> Vec<usize> {
    (0..workers.max(cpus.len()))
        .map(|i| cpus[i % cpus.len()])
        .collect()
}

/// Sum of the run delay (ns waiting on a run queue) of every thread of
/// `pids`, from `/proc/PID/task/TID/schedstat`.
pub fn run_delay_ns(pids: &[i32]) -> u64 {
    schedstat_sum(pids, 1)
}

/// Sum of field `field` of `/proc/PID/task/TID/schedstat` over every
/// thread of `pids`.
fn schedstat_sum(pids: &[i32], field: usize) -> u64 {
    let mut total = 0;
    for pid in pids {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            if let Ok(text) = fs::read_to_string(task.path().join("schedstat")) {
                total += text
                    .split_whitespace()
                    .nth(field)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}

/// Times the threads of `pids` were put on a CPU
/// (`/proc/PID/task/TID/schedstat`, third field).
pub fn slices(pids: &[i32]) -> u64 {
    schedstat_sum(pids, 2)
}

/// The scheduling policy of `pid` (`/proc/PID/stat` field 41).
fn policy(pid: i32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?
        .1
        .split_whitespace()
        .nth(38)?
        .parse()
        .ok()
}

/// A starved service; the helpers stop and the files are restored on heal
/// or drop ([`UndoGuard`]).
struct CpuGuard {
    fault: CpuStarve,
    running: Running,
    undo: Undo,
}

impl CpuGuard {
    fn spawn(&mut self, group: &Cgroup, extra: &[String]) -> Result<i32, FaultError> {
        let mut cmd = helper::command(&self.fault.helper, "spin", self.fault.lifetime, extra)
            .cgroup_procs(group.procs_files())
            .parent_death_signal(libc::SIGKILL)
            .new_session();
        if let Some(ns) = &self.fault.netns {
            cmd = cmd.netns(ns);
        }
        self.running
            .start(&cmd)
            .map_err(|source| FaultError::HelperSpawn {
                helper: "spin",
                source,
            })
    }

    /// A helper that already ended is a failed injection.
    fn check_alive(&mut self) -> Result<(), FaultError> {
        if let Some((pid, status, _)) = self.running.ended().first() {
            return Err(FaultError::NotInEffect {
                fault: self.fault.describe(),
                found: format!("spinner pid {pid} ended early ({status})"),
            });
        }
        Ok(())
    }

    /// Applies the mode and waits for its proof: (confirmed ns, evidence).
    fn apply(&mut self) -> Result<(u64, String), FaultError> {
        let f = self.fault.clone();
        match f.mode {
            CpuMode::Quota {
                quota_us,
                period_us,
            } => {
                // Read first: no controller, nothing started. A quota
                // already there would hold our own workers' exec for
                // seconds: refuse rather than block.
                let old = f.service.cpu_quota()?;
                if old.quota_us.is_some() {
                    return Err(self.not_in_effect(format!(
                        "the service cgroup already has a CPU quota ({} µs per {} µs)",
                        old.quota_us.unwrap_or_default(),
                        old.period_us
                    )));
                }
                self.undo.quota = Some(old);
                // Workers start in the workload cgroup and spin there
                // (exec done), then the quota goes on and they move into
                // the service's cgroup, where they spend it at once.
                for _ in 0..f.workers {
                    self.spawn(&f.workload, &[])?;
                }
                self.await_spinning()?;
                let q = CpuQuota {
                    quota_us: Some(quota_us),
                    period_us,
                };
                f.service.set_cpu_quota(q)?;
                let read = f.service.cpu_quota()?;
                if read != q {
                    return Err(self.not_in_effect(format!("cpu quota {read:?}")));
                }
                let before = f.service.cpu_nr_throttled()?;
                for pid in self.running.pids() {
                    f.service.add_process(pid)?;
                }
                let start = Instant::now();
                loop {
                    let now = f.service.cpu_nr_throttled()?;
                    if now > before {
                        return Ok((
                            monotonic_ns(),
                            format!(
                                "cpu.stat nr_throttled {before} -> {now}; quota {quota_us} µs \
                                 per {period_us} µs; {} worker(s) {:?} in the service cgroup",
                                f.workers,
                                self.running.pids()
                            ),
                        ));
                    }
                    self.check_alive()?;
                    if start.elapsed() > PROOF_TIMEOUT {
                        return Err(self.not_in_effect(format!("nr_throttled still {now}")));
                    }
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
            CpuMode::RtHog {
                priority,
                runtime_us,
            } => {
                let service = f.service.pids()?;
                let before = run_delay_ns(&service);
                // From the host's one RT budget, under its lock (other
                // runs grant and release concurrently); given back at heal.
                if let Err(e) = f.host.grant_rt_runtime(f.workload.rel(), runtime_us) {
                    return Err(self.not_in_effect(format!(
                        "cannot grant {runtime_us} µs of RT time to the workload cgroup: {}",
                        faultline_sys::error::chain(&e)
                    )));
                }
                self.undo.rt_granted = true;
                for cpu in cpus() {
                    let args = [
                        "--fifo".into(),
                        priority.to_string(),
                        "--cpu".into(),
                        cpu.to_string(),
                    ];
                    self.spawn(&f.workload, &args)?;
                }
                // Every spinner must really be SCHED_FIFO (1).
                let start = Instant::now();
                while !self.running.pids().iter().all(|p| policy(*p) == Some(1)) {
                    self.check_alive()?;
                    if start.elapsed() > PROOF_TIMEOUT {
                        return Err(self.not_in_effect("spinners not SCHED_FIFO".into()));
                    }
                    std::thread::sleep(Duration::from_micros(500));
                }
                let rt = f.host.rt_runtime(f.workload.rel())?;
                let detail = format!(
                    "{} SCHED_FIFO {priority} spinner(s) {:?}, one per CPU, workload \
                     cpu.rt_runtime_us {}",
                    self.running.pids().len(),
                    self.running.pids(),
                    rt.map_or("absent".into(), |v| v.to_string())
                );
                self.await_run_delay(&service, before, RUN_DELAY_PROOF_NS, detail)
            }
            CpuMode::Weight => {
                let service = f.service.pids()?;
                self.undo.service_weight = Some(f.service.cpu_weight()?);
                self.undo.workload_weight = Some(f.workload.cpu_weight()?);
                // The service's weight goes down first, and the service
                // runs once at it before any worker spins: the kernel
                // scales a sleeping entity's lag by old/new weight when it
                // next wakes (x512 here), and that inflated credit, paid
                // out against the workers, let one heartbeat through a
                // quarter second into the fault (measured).
                let ran = slices(&service);
                let low = f.service.set_cpu_weight_level(WeightLevel::Lowest)?;
                self.await_slices(&service, ran)?;
                let before = run_delay_ns(&service);
                let high = f.workload.set_cpu_weight_level(WeightLevel::Highest)?;
                let (ls, lw) = (f.service.cpu_weight()?, f.workload.cpu_weight()?);
                if (ls, lw) != (low, high) {
                    return Err(self.not_in_effect(format!("weights {ls} / {lw}")));
                }
                let cpus = service_cpus(&service);
                if cpus.is_empty() {
                    return Err(self.not_in_effect(format!(
                        "the service's processes {service:?} are gone (no CPU affinity to read)"
                    )));
                }
                let plan = pin_plan(&cpus, f.workers);
                for cpu in &plan {
                    self.spawn(&f.workload, &["--cpu".into(), cpu.to_string()])?;
                }
                let detail = format!(
                    "weight: service {low}, workload {high} with {} worker(s) {:?} pinned to \
                     CPUs {plan:?} (the service's CPUs {cpus:?})",
                    plan.len(),
                    self.running.pids()
                );
                self.await_run_delay(&service, before, WEIGHT_PROOF_NS, detail)
            }
        }
    }

    /// Waits until every helper is past exec and burning CPU (its
    /// `/proc/PID/comm` is the helper's and it has run a tick).
    fn await_spinning(&mut self) -> Result<(), FaultError> {
        let start = Instant::now();
        loop {
            let ready = self.running.pids().iter().all(|pid| {
                let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let utime = stat
                    .rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split_whitespace().nth(11))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                utime > 0
            });
            if ready {
                return Ok(());
            }
            self.check_alive()?;
            if start.elapsed() > PROOF_TIMEOUT {
                return Err(self.not_in_effect("workers never started spinning".into()));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits until the service's threads have been put on a CPU more
    /// often than `ran` times.
    fn await_slices(&mut self, service: &[i32], ran: u64) -> Result<(), FaultError> {
        let start = Instant::now();
        while slices(service) <= ran {
            if start.elapsed() > PROOF_TIMEOUT {
                return Err(self.not_in_effect(format!(
                    "the service {service:?} never ran at its new weight"
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    fn await_run_delay(
        &mut self,
        service: &[i32],
        before: u64,
        proof_ns: u64,
        detail: String,
    ) -> Result<(u64, String), FaultError> {
        if service.is_empty() {
            return Err(self.not_in_effect("no process in the service cgroup".into()));
        }
        let start = Instant::now();
        loop {
            let now = run_delay_ns(service);
            if now >= before + proof_ns {
                return Ok((
                    monotonic_ns(),
                    format!(
                        "service {service:?} run delay +{:.1} ms; {detail}",
                        (now - before) as f64 / 1e6
                    ),
                ));
            }
            self.check_alive()?;
            if start.elapsed() > PROOF_TIMEOUT {
                return Err(self.not_in_effect(format!(
                    "service run delay +{} µs only; {detail}",
                    (now - before) / 1000
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn not_in_effect(&self, found: String) -> FaultError {
        FaultError::NotInEffect {
            fault: self.fault.describe(),
            found,
        }
    }

    /// Restores what was changed and stops the helpers; what was read
    /// back. The quota and weights go first (a throttled worker cannot
    /// even die until its group runs again); RT time last (it cannot be
    /// taken back while FIFO spinners run).
    fn restore(&mut self) -> Result<String, FaultError> {
        let f = self.fault.clone();
        let mut evidence = Vec::new();
        if let Some(q) = self.undo.quota.take() {
            f.service.set_cpu_quota(q)?;
            let read = f.service.cpu_quota()?;
            evidence.push(format!(
                "quota {} per {} µs",
                read.quota_us.map_or("max".into(), |v| v.to_string()),
                read.period_us
            ));
        }
        if let Some(w) = self.undo.service_weight.take() {
            f.service.set_cpu_weight(w)?;
            evidence.push(format!("service weight {}", f.service.cpu_weight()?));
        }
        if let Some(w) = self.undo.workload_weight.take() {
            f.workload.set_cpu_weight(w)?;
            evidence.push(format!("workload weight {}", f.workload.cpu_weight()?));
        }
        let pids = self.running.pids();
        if self.undo.rt_granted {
            // A throttled FIFO spinner cannot even die until its group's
            // next RT period: make it an ordinary task first.
            let normal = libc::sched_param { sched_priority: 0 };
            for pid in &pids {
                // SAFETY: a pid we started; `normal` is a valid sched_param.
                unsafe { libc::sched_setscheduler(*pid, libc::SCHED_OTHER, &normal) };
            }
        }
        self.running
            .stop(STOP_TIMEOUT)
            .map_err(|pids| FaultError::HelpersLeft {
                fault: f.describe(),
                pids,
            })?;
        evidence.push(format!("spinners {pids:?} reaped"));
        if std::mem::take(&mut self.undo.rt_granted) {
            f.host.release_rt_runtime(f.workload.rel())?;
            let rt = f.host.rt_runtime(f.workload.rel())?;
            evidence.push(format!(
                "workload cpu.rt_runtime_us {}",
                rt.map_or("absent".into(), |v| v.to_string())
            ));
        }
        Ok(evidence.join("; "))
    }
}

impl crate::guard::Undo for CpuGuard {
    fn undo(&mut self) -> Result<String, FaultError> {
        self.restore()
    }
}

#[cfg(test)]
#[path = "cpu_tests.rs"]
mod tests;
