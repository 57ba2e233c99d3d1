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
//! - `weight`: busy workers in the workload cgroup at the highest CPU
//!   weight against the service cgroup at the lowest; proof: run delay.
//!
//! It starts and stops its own helpers only (never kills a cgroup: the
//! quota workers share the service's) and restores every file it changed.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cgroup::{Cgroup, CgroupHost, CpuQuota, WeightLevel};
use crate::clock::monotonic_ns;
use crate::fault::{Fault, FaultError, FaultGuard, Healed, Onset};
use crate::helper::{self, Running};

/// How long the proof may take to appear.
const PROOF_TIMEOUT: Duration = Duration::from_secs(5);
/// Run delay the service must gain for `rt_hog` and `weight` to count.
const RUN_DELAY_PROOF_NS: u64 = 1_000_000;
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
        let requested_ns = monotonic_ns();
        let mut guard = CpuGuard {
            fault: self.clone(),
            running: Running::new(),
            undo: Undo::default(),
            onset: Onset {
                requested_ns,
                confirmed_ns: 0,
                evidence: String::new(),
            },
            healed: false,
        };
        match guard.apply() {
            Ok((confirmed_ns, evidence)) => {
                guard.onset.confirmed_ns = confirmed_ns;
                guard.onset.evidence = evidence;
                Ok(Box::new(guard))
            }
            Err(e) => {
                guard.healed = true;
                Err(e.after_undo(self.describe(), guard.restore()))
            }
        }
    }
}

/// CPUs this process may run on (the lab's processes inherit the same).
fn cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return vec![0];
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|c| libc::CPU_ISSET(*c, &set))
            .collect()
    }
}

/// Sum of the run delay (ns waiting on a run queue) of every thread of
/// `pids`, from `/proc/PID/task/TID/schedstat`.
pub fn run_delay_ns(pids: &[i32]) -> u64 {
    let mut total = 0;
    for pid in pids {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            if let Ok(text) = fs::read_to_string(task.path().join("schedstat")) {
                total += text
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total
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
/// or drop.
struct CpuGuard {
    fault: CpuStarve,
    running: Running,
    undo: Undo,
    onset: Onset,
    healed: bool,
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
                self.await_run_delay(&service, before, detail)
            }
            CpuMode::Weight => {
                let service = f.service.pids()?;
                let before = run_delay_ns(&service);
                self.undo.service_weight = Some(f.service.cpu_weight()?);
                self.undo.workload_weight = Some(f.workload.cpu_weight()?);
                let low = f.service.set_cpu_weight_level(WeightLevel::Lowest)?;
                let high = f.workload.set_cpu_weight_level(WeightLevel::Highest)?;
                let (ls, lw) = (f.service.cpu_weight()?, f.workload.cpu_weight()?);
                if (ls, lw) != (low, high) {
                    return Err(self.not_in_effect(format!("weights {ls} / {lw}")));
                }
                for _ in 0..f.workers {
                    self.spawn(&f.workload, &[])?;
                }
                let detail = format!(
                    "weight: service {low}, workload {high} with {} worker(s) {:?}",
                    f.workers,
                    self.running.pids()
                );
                self.await_run_delay(&service, before, detail)
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

    fn await_run_delay(
        &mut self,
        service: &[i32],
        before: u64,
        detail: String,
    ) -> Result<(u64, String), FaultError> {
        if service.is_empty() {
            return Err(self.not_in_effect("no process in the service cgroup".into()));
        }
        let start = Instant::now();
        loop {
            let now = run_delay_ns(service);
            if now >= before + RUN_DELAY_PROOF_NS {
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

impl FaultGuard for CpuGuard {
    fn onset(&self) -> &Onset {
        &self.onset
    }

    fn heal(mut self: Box<Self>) -> Result<Healed, FaultError> {
        let requested_ns = monotonic_ns();
        self.healed = true;
        let evidence = self.restore()?;
        Ok(Healed {
            requested_ns,
            confirmed_ns: monotonic_ns(),
            evidence,
        })
    }
}

impl Drop for CpuGuard {
    fn drop(&mut self) {
        if !self.healed {
            let _ = self.restore();
        }
    }
}

#[cfg(test)]
#[path = "cpu_tests.rs"]
mod tests;
