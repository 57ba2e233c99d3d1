//! The cpu fault: CPU starvation of a node's service, by one of three
//! mechanisms ([`CpuMode`]):
//!
//! - `quota`: a CFS quota on the service's cgroup with busy workers in the
//!   same cgroup, so the quota is spent and the service waits for the next
//!   period; proof: `cpu.stat` `nr_throttled` rising, or (sooner: that is
//!   counted when a period ends) the service waiting 20 ms on the run
//!   queue at the quota ([`StarveWatch`]).
//! - `rt_hog`: one SCHED_FIFO spinner per CPU the service may use, in the
//!   workload cgroup (granted RT time for the fault's length), at a
//!   priority below the watchdog's; proof: the service's run delay
//!   (`/proc/PID/task/*/schedstat`, second field) rising.
//! - `weight`: the service cgroup at the lowest CPU weight, workers in the
//!   workload cgroup at the highest, pinned round-robin to every CPU the
//!   service may use (at least one per CPU), and the service's threads
//!   kept to the CPU they last ran on; proof: after the one slice a
//!   group owing nothing gets through, a thread of the service runnable
//!   with no thread of it on a CPU for 20 ms ([`StarveWatch`]), the onset
//!   being the start of that wait. (The run delay of `schedstat` grows only
//!   when a wait ends, so it cannot prove a starvation that lasts: it
//!   failed 3 of 4 runs on a quiet host, where the starvation was best.)
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
/// How long `weight` must keep a runnable service off the CPU to count:
/// five ticks at HZ=250, and a fifth of the shortest heartbeat period
/// of the suites.
const STARVED_PROOF_NS: u64 = 20_000_000;
/// How long `weight` must keep the service off the CPU at its first
/// wake-up among the workers (see [`StarveWatch`]): the suites' hang
/// timeout. On a quiet host that wake-up got through after 2-280 ms, on
/// a busy one (three busy loops besides) after up to 840 ms or not at all.
const FIRST_WAIT_PROOF_NS: u64 = 1_000_000_000;
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
    /// Each service thread's CPUs before `weight` kept it to one, the
    /// first (a main thread's) also for threads started since.
    affinity: Vec<(i32, Vec<usize>)>,
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

/// Lets thread `tid` run on `cpus` only.
fn set_affinity(tid: i32, cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET stays within it for
    // CPUs below CPU_SETSIZE, which affinity() only returns.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in cpus {
            libc::CPU_SET(*c, &mut set);
        }
        if libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Every thread of `pids`.
fn threads(pids: &[i32]) -> Vec<i32> {
    pids.iter()
        .flat_map(|pid| {
            fs::read_dir(format!("/proc/{pid}/task"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|t| t.file_name().to_str()?.parse().ok())
        })
        .collect()
}

/// Field `n` (numbered from 1, as in proc(5)) of `/proc/ID/stat` of a
/// process or thread, from the 3rd on (after the command's parentheses).
fn stat_field<T: std::str::FromStr>(id: i32, n: usize) -> Option<T> {
    let stat = fs::read_to_string(format!("/proc/{id}/stat")).ok()?;
    stat.rsplit_once(") ")?
        .1
        .split_whitespace()
        .nth(n.checked_sub(3)?)?
        .parse()
        .ok()
}

/// The CPU thread `tid` last ran on (field 39, `processor`).
fn last_cpu(tid: i32) -> Option<usize> {
    stat_field(tid, 39)
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
/// `pids`.
pub fn run_delay_ns(pids: &[i32]) -> u64 {
    threads(pids).into_iter().map(|t| schedstat(t)[1]).sum()
}

/// `/proc/TID/schedstat` of one thread: CPU time (ns), run delay (ns) and
/// slices (times put on a CPU); zeros for a thread that is gone.
fn schedstat(tid: i32) -> [u64; 3] {
    let text = fs::read_to_string(format!("/proc/{tid}/schedstat")).unwrap_or_default();
    let mut out = [0; 3];
    for (o, v) in out.iter_mut().zip(text.split_whitespace()) {
        *o = v.parse().unwrap_or(0);
    }
    out
}

/// The scheduler's view of a service at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// Times its threads were put on a CPU, summed.
    pub slices: u64,
    /// CPU time of its threads, ns, summed.
    pub cpu_ns: u64,
    /// Its threads in state R (running or waiting on a run queue).
    pub runnable: Vec<i32>,
}

/// Reads [`Sample`] of every thread of `pids` (`/proc/TID/stat` and
/// `schedstat`).
pub fn sample(pids: &[i32]) -> Sample {
    let mut s = Sample::default();
    for tid in threads(pids) {
        let [cpu_ns, _, slices] = schedstat(tid);
        s.cpu_ns += cpu_ns;
        s.slices += slices;
        // Field 3, `state`.
        if stat_field::<char>(tid, 3) == Some('R') {
            s.runnable.push(tid);
        }
    }
    s.runnable.sort_unstable();
    s
}

/// The proof that a low-weight service is starved, from samples.
///
/// `run_delay` is no proof here: the kernel adds a wait to it only when
/// the wait ends, so a service starved for good never shows one. What a
/// starved service shows is a thread in state R while no thread of it
/// gets a CPU: slices and CPU time stand still (a running thread's CPU
/// time grows every tick).
///
/// And not always at once: EEVDF places a task that wakes in a group
/// owing nothing (it last ran alone on its CPU) where it is eligible, even
/// at the lowest weight, so the service's first wake-up among the
/// workers gets through (measured: after 2-280 ms on a quiet host, up to
/// 840 ms on a busy one). The slice it then runs puts its group hundreds
/// of times ahead of the workers (its virtual time grows by the inverse
/// of its weight), and that lag keeps it off the CPU for seconds. On a
/// busy host the first wake-up may also wait for good. So a wait counts
/// after `proof_ns` once the service has had a slice among the workers,
/// and after `first_ns` before that; the onset is the first sample of the
/// wait.
#[derive(Debug)]
pub struct StarveWatch {
    proof_ns: u64,
    first_ns: u64,
    last: Option<(u64, u64)>,
    wait_since: Option<u64>,
    /// The longest wait seen so far, ns.
    pub longest_ns: u64,
    /// How long the first wait lasted before its slice came, ns.
    pub first_wait_ns: Option<u64>,
    slices_spinning: u64,
}

/// A starvation proven by [`StarveWatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Starved {
    /// The first sample of the wait, ns (CLOCK_MONOTONIC).
    pub onset_ns: u64,
    /// How long it had lasted when proven, ns.
    pub waited_ns: u64,
    /// Slices the service took with the workers spinning, before it.
    pub slices_while_spinning: u64,
}

impl StarveWatch {
    /// A watch that proves a wait of `proof_ns` after a slice among the
    /// workers, or of `first_ns` without one.
    pub fn new(proof_ns: u64, first_ns: u64) -> Self {
        StarveWatch {
            proof_ns,
            first_ns,
            last: None,
            wait_since: None,
            longest_ns: 0,
            first_wait_ns: None,
            slices_spinning: 0,
        }
    }

    /// Slices the service was given with every worker spinning.
    pub fn slices_while_spinning(&self) -> u64 {
        self.slices_spinning
    }

    /// Takes the sample at `t_ns`, `spinning` when every worker spins;
    /// the proof once a wait is long enough. A wait may begin before the
    /// workers all spin (they take the CPU as they come), but only a slice
    /// taken once they all do is the one a group owing nothing gets.
    pub fn feed(&mut self, t_ns: u64, s: &Sample, spinning: bool) -> Option<Starved> {
        let had_slice = self.slices_spinning > 0;
        let now = (s.slices, s.cpu_ns);
        if let (true, Some((slices, _))) = (spinning, self.last) {
            self.slices_spinning += s.slices.saturating_sub(slices);
        }
        let ran = self.last.is_some_and(|last| last != now);
        self.last = Some(now);
        if ran || s.runnable.is_empty() {
            if !had_slice && self.slices_spinning > 0 {
                self.first_wait_ns = Some(self.wait_since.map_or(0, |w| t_ns - w));
            }
            self.wait_since = None;
            return None;
        }
        let since = *self.wait_since.get_or_insert(t_ns);
        let waited = t_ns - since;
        self.longest_ns = self.longest_ns.max(waited);
        let needed = if self.slices_spinning > 0 {
            self.proof_ns
        } else {
            self.first_ns
        };
        (waited >= needed).then_some(Starved {
            onset_ns: since,
            waited_ns: waited,
            slices_while_spinning: self.slices_spinning,
        })
    }
}

/// The scheduling policy of `pid` (field 41, `policy`).
fn policy(pid: i32) -> Option<u32> {
    stat_field(pid, 41)
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
                // The service's own processes, before the workers join.
                let service = f.service.pids()?;
                let before = f.service.cpu_nr_throttled()?;
                for pid in self.running.pids() {
                    f.service.add_process(pid)?;
                }
                // nr_throttled is counted when a period ends (up to
                // `period` later: onsets came up to 1 s late and the hang
                // was detected 100 ms "after" them); the service waiting
                // on the run queue at the quota shows it sooner.
                let mut watch = StarveWatch::new(STARVED_PROOF_NS, STARVED_PROOF_NS);
                let detail = format!(
                    "quota {quota_us} µs per {period_us} µs; {} worker(s) {:?} in the \
                     service cgroup",
                    f.workers,
                    self.running.pids()
                );
                let start = Instant::now();
                loop {
                    let now = f.service.cpu_nr_throttled()?;
                    if now > before {
                        return Ok((
                            monotonic_ns(),
                            format!("cpu.stat nr_throttled {before} -> {now}; {detail}"),
                        ));
                    }
                    let s = sample(&service);
                    if let Some(p) = watch.feed(monotonic_ns(), &s, true) {
                        return Ok((
                            p.onset_ns,
                            format!(
                                "service thread(s) {:?} runnable {:.1} ms without a CPU at the \
                                 quota (cpu.stat nr_throttled {now}: it counts when a period \
                                 ends); {detail}",
                                s.runnable,
                                p.waited_ns as f64 / 1e6
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
                if service.is_empty() {
                    return Err(self.not_in_effect("no process in the service cgroup".into()));
                }
                let cpus = service_cpus(&service);
                if cpus.is_empty() {
                    return Err(self.not_in_effect(format!(
                        "the service's processes {service:?} are gone (no CPU affinity to read)"
                    )));
                }
                // The service is kept to the CPU it last ran on. EEVDF
                // lets a wake-up through wherever the service's group owes
                // nothing (its per-CPU entity last ran alone), once per CPU;
                // a heartbeat woken from another CPU migrated and got a
                // second one through, 80-690 ms into the fault (measured).
                let home = last_cpu(service[0])
                    .filter(|c| cpus.contains(c))
                    .unwrap_or(cpus[0]);
                for tid in threads(&service) {
                    let Some(old) = affinity(tid) else { continue };
                    self.undo.affinity.push((tid, old));
                    set_affinity(tid, &[home]).map_err(|e| {
                        self.not_in_effect(format!(
                            "cannot keep service thread {tid} to CPU {home}: {e}"
                        ))
                    })?;
                }
                // Weights first, then the workers, watched from before
                // they start: on a busy host the service's wait can begin
                // before the last of them spins. (Workers first, at the
                // old weights, left the service owed time that the new
                // weights multiplied: on a busy host it ran on.)
                let low = f.service.set_cpu_weight_level(WeightLevel::Lowest)?;
                let high = f.workload.set_cpu_weight_level(WeightLevel::Highest)?;
                let (ls, lw) = (f.service.cpu_weight()?, f.workload.cpu_weight()?);
                if (ls, lw) != (low, high) {
                    return Err(self.not_in_effect(format!("weights {ls} / {lw}")));
                }
                let mut watch = StarveWatch::new(STARVED_PROOF_NS, FIRST_WAIT_PROOF_NS);
                let delay_before = run_delay_ns(&service);
                watch.feed(monotonic_ns(), &sample(&service), false);
                let plan = pin_plan(&cpus, f.workers);
                for cpu in &plan {
                    self.spawn(&f.workload, &["--cpu".into(), cpu.to_string()])?;
                }
                let detail = format!(
                    "weight: service {low}, workload {high} with {} worker(s) {:?} pinned to \
                     CPUs {plan:?}; the service's threads kept to CPU {home} of {cpus:?}",
                    plan.len(),
                    self.running.pids()
                );
                self.await_starved(&service, watch, delay_before, detail)
            }
        }
    }

    /// `weight`'s proof: a thread of the service runnable while no thread
    /// of it gets a CPU ([`StarveWatch`]), sampled every millisecond.
    fn await_starved(
        &mut self,
        service: &[i32],
        mut watch: StarveWatch,
        delay_before: u64,
        detail: String,
    ) -> Result<(u64, String), FaultError> {
        let start = Instant::now();
        let mut spinning = false;
        loop {
            // Once every worker has spun, they all do until healed.
            spinning = spinning || self.spinning();
            let s = sample(service);
            if let Some(proof) = watch.feed(monotonic_ns(), &s, spinning) {
                return Ok((
                    proof.onset_ns,
                    format!(
                        "service thread(s) {:?} runnable {:.1} ms without a CPU (slices {}, CPU \
                         time {:.1} ms, both unchanged), {}; run delay +{:.1} ms; {detail}",
                        s.runnable,
                        proof.waited_ns as f64 / 1e6,
                        s.slices,
                        s.cpu_ns as f64 / 1e6,
                        match watch.first_wait_ns {
                            Some(w) => format!(
                                "after {} slice(s) among the workers (the first wake-up got \
                                 through after {:.1} ms)",
                                proof.slices_while_spinning,
                                w as f64 / 1e6
                            ),
                            None => "at its first wake-up among the workers".into(),
                        },
                        run_delay_ns(service).saturating_sub(delay_before) as f64 / 1e6,
                    ),
                ));
            }
            self.check_alive()?;
            if start.elapsed() > PROOF_TIMEOUT {
                if !spinning {
                    return Err(self.not_in_effect("workers never started spinning".into()));
                }
                return Err(self.not_in_effect(format!(
                    "the service {service:?} was never kept off the CPU for {} ms ({} slice(s) \
                     with the workers spinning, longest wait {:.1} ms); {detail}",
                    STARVED_PROOF_NS / 1_000_000,
                    watch.slices_while_spinning(),
                    watch.longest_ns as f64 / 1e6
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits until every helper is past exec and burning CPU
    /// ([`Self::spinning`]).
    fn await_spinning(&mut self) -> Result<(), FaultError> {
        let start = Instant::now();
        while !self.spinning() {
            self.check_alive()?;
            if start.elapsed() > PROOF_TIMEOUT {
                return Err(self.not_in_effect("workers never started spinning".into()));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Every helper is past exec and has burnt a tick of CPU.
    fn spinning(&self) -> bool {
        // Field 14, `utime`.
        self.running
            .pids()
            .iter()
            .all(|pid| stat_field::<u64>(*pid, 14).unwrap_or(0) > 0)
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
        let kept = std::mem::take(&mut self.undo.affinity);
        if let Some((_, default)) = kept.first() {
            // Threads started during the fault get the process's old mask.
            let service = f.service.pids().unwrap_or_default();
            let mut restored = 0;
            for tid in threads(&service) {
                let old = kept
                    .iter()
                    .find(|(t, _)| *t == tid)
                    .map_or(default, |(_, cpus)| cpus);
                if set_affinity(tid, old).is_ok() && affinity(tid).as_ref() == Some(old) {
                    restored += 1;
                }
            }
            evidence.push(format!(
                "{restored} service thread(s) on CPUs {default:?} again"
            ));
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
