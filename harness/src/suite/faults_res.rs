//! The resource faults' table entries: `cpu` (starvation by quota, RT
//! spinners or weight) and `memory` (a leak up to a limit). Their keys,
//! ranges and construction; the mechanisms are `faultline_faults::cpu`
//! and `faultline_faults::memory`.
//!
//! Nothing here touches the host except reading `MemAvailable` to refuse
//! a limit the host cannot hold.

use std::time::Duration;

use faultline_faults::cpu::{CpuMode, CpuStarve};
use faultline_faults::memory::{Leak, MemPolicy};

use super::faults::{on_node, FaultDef};
use super::params::{mem_available, Params};
use crate::lab::WATCHDOG_RT_PRIORITY;
use crate::plan::{CpuStarveMode, FaultKind, FaultSpec, LeakPolicy, LeakTarget};

/// Helpers live this much longer than their fault, then end by
/// themselves (the harness normally stops them at heal).
const HELPER_MARGIN: Duration = Duration::from_secs(5);
/// Spinners of `rt_hog` run this far below the watchdog's priority.
const RT_HOG_BELOW_WATCHDOG: i32 = 10;
/// RT time per second the `rt_hog` spinners may take of each CPU (the
/// workload cgroup's `cpu.rt_runtime_us`, granted for the fault only):
/// normal tasks, the service among them, wait up to this long each
/// second. It comes out of the host's 950 ms shared with every run's
/// watchdogs (50 ms each): a hog and 13 watchdogs fit.
const RT_HOG_RUNTIME: Duration = Duration::from_millis(300);
/// The longest time a leak may take to reach its limit (the runner waits
/// for the policy's effect when injecting).
const MAX_TIME_TO_LIMIT: Duration = Duration::from_secs(10);

fn cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

fn parse_cpu(p: &mut Params<'_>) -> Option<FaultSpec> {
    let mode = p.choice(
        "mode",
        &[
            ("quota", CpuStarveMode::Quota),
            ("rt_hog", CpuStarveMode::RtHog),
            ("weight", CpuStarveMode::Weight),
        ],
    );
    let mode = p.required("mode", mode)?;
    let period = p
        .duration_in("period", Duration::from_millis(1), Duration::from_secs(1))?
        .unwrap_or(Duration::from_secs(1));
    let quota = p
        .duration_in("quota", Duration::from_millis(1), Duration::from_secs(1))?
        .unwrap_or(Duration::from_millis(1));
    let workers = p.count("workers", 1, 64)?;
    let only = |p: &mut Params<'_>, key: &str, modes: &str| {
        if p.has(key) {
            p.problem(key, format!("`{key}` applies to mode {modes} only"));
            true
        } else {
            false
        }
    };
    let misplaced = match mode {
        CpuStarveMode::Quota => false,
        CpuStarveMode::RtHog => {
            only(p, "quota", "quota")
                | only(p, "period", "quota")
                | only(p, "workers", "quota, weight")
        }
        CpuStarveMode::Weight => only(p, "quota", "quota") | only(p, "period", "quota"),
    };
    if quota > period {
        p.problem("quota", "quota must not exceed period".into());
        return None;
    }
    if misplaced {
        return None;
    }
    // Two workers per CPU: with one, the service often wins the quota
    // back at a period's start (heartbeats leak through; measured).
    let workers = workers.unwrap_or(2 * cpus());
    Some(FaultSpec::Cpu {
        mode,
        quota,
        period,
        workers,
    })
}

/// `cpu`: see the module documentation of `faultline_faults::cpu`.
pub static CPU: FaultDef = FaultDef {
    kind: FaultKind::Cpu,
    name: "cpu",
    doc: "CPU starvation of the node's service: `mode` quota (CFS quota on the \
          service cgroup, spent by workers inside it), rt_hog (SCHED_FIFO \
          spinners on every CPU below the watchdog's priority) or weight \
          (high-weight workers pinned to every CPU against a low-weight \
          service kept to one CPU)",
    params: &["mode", "quota", "period", "workers"],
    needs_cluster: false,
    // `quota` at 1ms per 1s and `weight` stop heartbeats for seconds;
    // `rt_hog` is load the service survives at the suites' timeouts (its
    // scenario checks `no_detection`).
    hangs_service: true,
    requires: &["cpu-controller"],
    example:
        "{ kind: cpu, node: n1, mode: quota, quota: 1ms, period: 1s, workers: 1, at: 1s, for: 4s }",
    parse: parse_cpu,
    targets: on_node,
    build: |f, site| {
        let FaultSpec::Cpu {
            mode,
            quota,
            period,
            workers,
        } = &f.spec
        else {
            return Err(format!("not a cpu fault: {:?}", f.spec));
        };
        let mode = match mode {
            CpuStarveMode::Quota => CpuMode::Quota {
                quota_us: quota.as_micros() as u64,
                period_us: period.as_micros() as u64,
            },
            CpuStarveMode::RtHog => CpuMode::RtHog {
                priority: (WATCHDOG_RT_PRIORITY - RT_HOG_BELOW_WATCHDOG).max(1),
                runtime_us: RT_HOG_RUNTIME.as_micros() as u64,
            },
            CpuStarveMode::Weight => CpuMode::Weight,
        };
        Ok(Box::new(CpuStarve {
            mode,
            host: site.lab.cgroups().clone(),
            service: site.target.service.clone(),
            workload: site.target.workload.clone(),
            workers: *workers as usize,
            helper: site.helper.clone(),
            netns: Some(site.target.ns.path()),
            lifetime: f.duration + HELPER_MARGIN,
        }))
    },
};

fn parse_memory(p: &mut Params<'_>) -> Option<FaultSpec> {
    let rate = p.rate("rate");
    let available = mem_available().unwrap_or(u64::MAX);
    let limit = p.size(
        "limit",
        1 << 20,
        available,
        "the host's available memory, /proc/meminfo MemAvailable",
    );
    let policy = p.choice(
        "policy",
        &[
            ("oom_kill", LeakPolicy::OomKill),
            ("hang", LeakPolicy::Hang),
        ],
    );
    let target = p.choice(
        "target",
        &[
            ("workload", LeakTarget::Workload),
            ("service", LeakTarget::Service),
        ],
    );
    let (step, every) = p.required("rate", rate)?;
    let limit = p.required("limit", limit)?;
    let policy = p.required("policy", policy)?;
    let target = target?.unwrap_or(LeakTarget::Workload);
    let steps = limit.div_ceil(step);
    let to_limit = every.saturating_mul(u32::try_from(steps).unwrap_or(u32::MAX));
    if to_limit > MAX_TIME_TO_LIMIT {
        p.problem(
            "rate",
            format!(
                "at this rate the leak reaches its limit after {} ms; at most {} s",
                to_limit.as_millis(),
                MAX_TIME_TO_LIMIT.as_secs()
            ),
        );
        return None;
    }
    Some(FaultSpec::Memory {
        step,
        every,
        limit,
        policy,
        target,
    })
}

/// `memory`: see the module documentation of `faultline_faults::memory`.
pub static MEMORY: FaultDef = FaultDef {
    kind: FaultKind::Memory,
    name: "memory",
    doc: "a leaker in the node's workload (or service) memory cgroup grows at \
          `rate` against `limit`; `policy` oom_kill (the OOM killer kills a \
          process, the leaker first) or hang (allocating tasks stall)",
    params: &["rate", "limit", "policy", "target"],
    needs_cluster: false,
    // Neither policy stops the reference service's heartbeats (measured):
    // `oom_kill` kills the leaker (oom_score_adj 1000), and `hang` stalls
    // only tasks that allocate, which its heartbeat path never does.
    hangs_service: false,
    requires: &["memory-controller"],
    example: "{ kind: memory, node: n1, rate: 10MB/100ms, limit: 64MB, policy: oom_kill, \
              target: workload, at: 1s, for: 3s }",
    parse: parse_memory,
    targets: on_node,
    build: |f, site| {
        let FaultSpec::Memory {
            step,
            every,
            limit,
            policy,
            target,
        } = &f.spec
        else {
            return Err(format!("not a memory fault: {:?}", f.spec));
        };
        Ok(Box::new(Leak {
            group: match target {
                LeakTarget::Workload => site.target.workload.clone(),
                LeakTarget::Service => site.target.service.clone(),
            },
            step: *step,
            every: *every,
            limit: *limit,
            policy: match policy {
                LeakPolicy::OomKill => MemPolicy::OomKill,
                LeakPolicy::Hang => MemPolicy::Hang,
            },
            helper: site.helper.clone(),
            netns: Some(site.target.ns.path()),
            lifetime: f.duration + HELPER_MARGIN,
        }))
    },
};

#[cfg(test)]
#[path = "faults_res_tests.rs"]
mod tests;
