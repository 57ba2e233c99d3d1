//! Probes of what this host offers, for `faultline doctor` and for
//! refusing to start on a host that lacks something required.
//!
//! Each probe is small and undoes what it tries (a probe namespace is
//! deleted, a fanotify descriptor closed). It must not change the host's
//! lasting state, and must not decide exit codes.

use crate::cgroup::{CgroupHost, Layout};
use crate::netns::NetNs;
use crate::process::run;
use std::path::Path;

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Probe {
    /// What was probed, like `freezer`.
    pub name: &'static str,
    /// Whether it is there and works.
    pub ok: bool,
    /// What was found, for the operator.
    pub detail: String,
    /// Whether faultline cannot run without it.
    pub required: bool,
}

fn probe(name: &'static str, required: bool, result: Result<String, String>) -> Probe {
    let (ok, detail) = match result {
        Ok(detail) => (true, detail),
        Err(detail) => (false, detail),
    };
    Probe {
        name,
        ok,
        detail,
        required,
    }
}

/// Probes the host; see the module documentation.
pub fn probe_host() -> Vec<Probe> {
    let mut probes = Vec::new();
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    probes.push(probe(
        "root",
        true,
        if euid == 0 {
            Ok("euid 0".into())
        } else {
            Err(format!("euid {euid}, need 0"))
        },
    ));
    let host = CgroupHost::detect_or_env();
    probes.push(probe(
        "cgroups",
        true,
        match &host {
            Ok(host) => Ok(describe_layout(host.layout())),
            Err(e) => Err(e.to_string()),
        },
    ));
    let caps = host.as_ref().ok().map(CgroupHost::capabilities);
    let cap = |f: fn(&crate::cgroup::CgroupCapabilities) -> bool| caps.as_ref().is_some_and(f);
    probes.push(probe(
        "freezer",
        true,
        if cap(|c| c.freezer) {
            Ok("cgroup.freeze or the v1 freezer".into())
        } else {
            Err("neither cgroup.freeze nor a v1 freezer".into())
        },
    ));
    probes.push(probe(
        "cgroup.kill",
        false,
        if cap(|c| c.kill) {
            Ok("cgroup.kill exists".into())
        } else {
            Err("no cgroup.kill: kill falls back to freeze + SIGKILL".into())
        },
    ));
    probes.push(probe("pressure", false, pressure(cap(|c| c.pressure))));
    probes.push(probe(
        "rt-group-sched",
        false,
        rt_group_sched(
            cap(|c| c.rt_group_sched),
            host.as_ref()
                .ok()
                .and_then(|h| h.rt_budget().ok().flatten()),
        ),
    ));
    probes.push(probe("sched-fifo", false, sched_fifo()));
    for (name, controller) in [("cpu-controller", "cpu"), ("memory-controller", "memory")] {
        probes.push(probe(
            name,
            false,
            match &host {
                Ok(host) => host.controller(controller),
                Err(e) => Err(e.to_string()),
            },
        ));
    }
    probes.push(probe("netns", true, netns()));
    probes.push(probe("fanotify", false, fanotify()));
    probes.push(probe("nftables", false, nftables()));
    let netem = probe(
        "netem",
        false,
        forced_absent("netem").map_or_else(netem, Err),
    );
    let nfqueue = probe(
        "nfqueue",
        false,
        forced_absent("nfqueue").map_or_else(nfqueue, Err),
    );
    let delay = probe(
        "delay",
        false,
        delay_backend(&netem, &nfqueue).map(|b| b.describe()),
    );
    probes.extend([netem, nfqueue, delay]);
    probes
}

/// How this host can delay packets, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelayBackend {
    /// tc netem on the node's interfaces.
    Netem,
    /// nftables `queue` rules and the `delay` helper (NFQUEUE).
    Nfqueue,
}

impl DelayBackend {
    /// Its name and how it works, for `doctor`.
    pub fn describe(self) -> String {
        match self {
            DelayBackend::Netem => "netem (tc qdisc on the node's interfaces)".into(),
            DelayBackend::Nfqueue => "nfqueue (no netem here: iptables NFQUEUE rules queue \
                                      the node's packets to a helper that holds each one)"
                .into(),
        }
    }
}

/// Picks the delay mechanism from the `netem` and `nfqueue` probes:
/// netem when it works, nfqueue otherwise; an error naming both modules
/// when neither does.
pub fn delay_backend(netem: &Probe, nfqueue: &Probe) -> Result<DelayBackend, String> {
    if netem.ok {
        Ok(DelayBackend::Netem)
    } else if nfqueue.ok {
        Ok(DelayBackend::Nfqueue)
    } else {
        Err(format!(
            "neither netem nor nfqueue: {}; {}",
            netem.detail, nfqueue.detail
        ))
    }
}

/// The delay mechanism of this host (probed once per process).
pub fn host_delay_backend() -> Result<DelayBackend, String> {
    static CHOSEN: std::sync::OnceLock<Result<DelayBackend, String>> = std::sync::OnceLock::new();
    CHOSEN
        .get_or_init(|| {
            let probes = probe_host();
            let find = |n| probes.iter().find(|p| p.name == n).cloned();
            match (find("netem"), find("nfqueue")) {
                (Some(netem), Some(nfq)) => delay_backend(&netem, &nfq),
                _ => Err("netem and nfqueue not probed".into()),
            }
        })
        .clone()
}

/// Tests simulate a host without a probed part: `FAULTLINE_PROBE_ABSENT`
/// lists probe names (`netem,nfqueue`) reported absent without trying.
fn forced_absent(name: &str) -> Option<String> {
    let list = std::env::var("FAULTLINE_PROBE_ABSENT").ok()?;
    list.split(',').any(|n| n.trim() == name).then(|| {
        let module = match name {
            "netem" => " (module sch_netem)",
            "nfqueue" => " (module nfnetlink_queue)",
            _ => "",
        };
        format!("{name}{module} reported absent by FAULTLINE_PROBE_ABSENT")
    })
}

/// Whether an NFQUEUE can be bound and fed, in a probe namespace (queue
/// numbers and tables are per namespace, so no other run's are touched):
/// the kernel's NFQUEUE (module nfnetlink_queue) and an `iptables` NFQUEUE
/// rule (this kernel's nftables may lack its own `queue` expression,
/// module nft_queue; iptables-nft reaches the xt target).
fn nfqueue() -> Result<String, String> {
    let ns = NetNs::create(&probe_ns_name("-nfq")).map_err(|e| error_chain(&e))?;
    let path = ns.path();
    let bound = std::thread::spawn(move || -> Result<(), String> {
        faultline_sys::netns::enter(&path).map_err(|e| error_chain(&e))?;
        let mut q = nfq::Queue::open().map_err(|e| format!("NFQUEUE socket: {e}"))?;
        q.bind(0).map_err(|e| format!("binding NFQUEUE 0: {e}"))?;
        q.unbind(0).map_err(|e| format!("unbinding NFQUEUE 0: {e}"))
    })
    .join()
    .unwrap_or_else(|_| Err("the probe thread panicked".into()))
    .map_err(|e| format!("no nfqueue (module nfnetlink_queue): {e}"));
    let rule = bound.and_then(|()| {
        let chain = crate::delay::QueueChain::new(ns.clone(), 0);
        chain
            .create(&["lo".to_string()])
            .and_then(|()| chain.delete())
            .map_err(|e| {
                format!(
                    "an NFQUEUE binds, but an iptables NFQUEUE rule fails (Debian package \
                     iptables; kernel NETFILTER_XT_TARGET_NFQUEUE): {}",
                    error_chain(&e)
                )
            })
    });
    let _ = ns.delete();
    rule.map(|()| {
        "an NFQUEUE binds and an iptables NFQUEUE rule works in a namespace (module \
         nfnetlink_queue)"
            .into()
    })
}

fn describe_layout(layout: &Layout) -> String {
    match layout {
        Layout::V1Hybrid { v1, unified } => format!(
            "v1-hybrid: {} controllers ({}), unified {}",
            v1.len(),
            v1.keys().cloned().collect::<Vec<_>>().join(", "),
            unified
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "absent".into())
        ),
        Layout::V2 { root } => format!("v2 at {}", root.display()),
    }
}

fn pressure(per_cgroup: bool) -> Result<String, String> {
    if per_cgroup {
        Ok("per-cgroup pressure files".into())
    } else if Path::new("/proc/pressure/cpu").exists() {
        Ok("system-wide /proc/pressure only".into())
    } else {
        Err("no pressure stall information".into())
    }
}

fn rt_group_sched(present: bool, budget: Option<(i64, i64)>) -> Result<String, String> {
    if present {
        let mut text = "cpu.rt_runtime_us exists: RT time must be granted per group".to_string();
        if let Some((root, free)) = budget {
            text.push_str(&format!(
                "; the host's budget is {root} µs per second, {free} µs not held"
            ));
        }
        Ok(text)
    } else {
        Err("no cpu.rt_runtime_us: SCHED_FIFO needs no grant".into())
    }
}

/// Tries SCHED_FIFO on a short-lived thread of this process.
fn sched_fifo() -> Result<String, String> {
    std::thread::spawn(|| {
        let param = libc::sched_param { sched_priority: 1 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
        if rc == 0 {
            let normal = libc::sched_param { sched_priority: 0 };
            // SAFETY: as above.
            unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &normal) };
            Ok("SCHED_FIFO allowed in this process's cgroup".into())
        } else {
            Err(format!(
                "SCHED_FIFO refused: {}",
                std::io::Error::last_os_error()
            ))
        }
    })
    .join()
    .unwrap_or_else(|_| Err("the probe thread panicked".into()))
}

fn probe_ns_name(tag: &str) -> String {
    format!("fltest-probe-{}{tag}", std::process::id())
}

fn netns() -> Result<String, String> {
    let ns = NetNs::create(&probe_ns_name("")).map_err(|e| error_chain(&e))?;
    ns.delete().map_err(|e| error_chain(&e))?;
    Ok("ip netns add / del work".into())
}

fn netem() -> Result<String, String> {
    let ns = NetNs::create(&probe_ns_name("-netem")).map_err(|e| error_chain(&e))?;
    let result = run(
        "tc",
        &[
            "-n",
            ns.name(),
            "qdisc",
            "add",
            "dev",
            "lo",
            "root",
            "netem",
            "delay",
            "1ms",
        ],
    );
    let _ = ns.delete();
    match result {
        Ok(out) if out.status.success() => Ok("tc netem works".into()),
        Ok(out) => Err(format!(
            "the kernel has no netem (module sch_netem): `tc qdisc add ... netem` failed: {}",
            out.stderr.trim()
        )),
        Err(e) => Err(error_chain(&e)),
    }
}

/// Whether `nft` exists and can add (and delete) a bridge-family table in
/// a probe namespace, as the network faults do in a run's switch.
fn nftables() -> Result<String, String> {
    let version = run("nft", &["--version"])
        .map(|out| out.stdout.trim().to_string())
        .map_err(|e| {
            format!(
                "no `nft` program (Debian package nftables): {}",
                error_chain(&e)
            )
        })?;
    let ns = NetNs::create(&probe_ns_name("-nft")).map_err(|e| error_chain(&e))?;
    let table = crate::nft::Table::new(ns.clone(), "bridge", "fl_probe".into());
    let result = table
        .create("forward", &["counter drop".into()])
        .and_then(|()| table.delete());
    let _ = ns.delete();
    match result {
        Ok(()) => Ok(format!("{version}; a bridge table in a namespace works")),
        Err(e) => Err(format!(
            "{version}, but a bridge table in a namespace fails: {}",
            error_chain(&e)
        )),
    }
}

fn fanotify() -> Result<String, String> {
    // SAFETY: fanotify_init takes flags only; the descriptor is closed below.
    let fd = unsafe {
        libc::fanotify_init(
            libc::FAN_CLASS_CONTENT | libc::FAN_CLOEXEC,
            libc::O_RDONLY as u32,
        )
    };
    if fd < 0 {
        return Err(format!(
            "fanotify_init(FAN_CLASS_CONTENT): {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `fd` is ours and open.
    unsafe { libc::close(fd) };
    Ok("fanotify_init(FAN_CLASS_CONTENT) works".into())
}

/// An error and its sources on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::is_root;

    #[test]
    fn root_probe_host_finds_the_required_parts_and_leaves_nothing() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let probes = probe_host();
        for p in &probes {
            eprintln!("{:<16} {:<5} {}", p.name, p.ok, p.detail);
        }
        for p in probes.iter().filter(|p| p.required) {
            assert!(p.ok, "{}: {}", p.name, p.detail);
        }
        let names: Vec<_> = probes.iter().map(|p| p.name).collect();
        for name in [
            "root", "cgroups", "freezer", "netns", "fanotify", "nftables", "netem", "nfqueue",
            "delay",
        ] {
            assert!(names.contains(&name), "{name}");
        }
        let left = NetNs::list().unwrap();
        assert!(
            !left.iter().any(|n| n.starts_with(&probe_ns_name(""))),
            "{left:?}"
        );
    }

    #[test]
    fn delay_prefers_netem_then_nfqueue_and_names_both_when_neither() {
        let p = |name, ok, detail: &str| {
            probe(
                name,
                false,
                if ok {
                    Ok(detail.into())
                } else {
                    Err(detail.into())
                },
            )
        };
        let netem_no = p("netem", false, "the kernel has no netem (module sch_netem)");
        let nfq_no = p("nfqueue", false, "no nfqueue (module nfnetlink_queue)");
        let netem_ok = p("netem", true, "tc netem works");
        let nfq_ok = p("nfqueue", true, "binds");
        assert_eq!(delay_backend(&netem_ok, &nfq_ok), Ok(DelayBackend::Netem));
        assert_eq!(delay_backend(&netem_ok, &nfq_no), Ok(DelayBackend::Netem));
        assert_eq!(delay_backend(&netem_no, &nfq_ok), Ok(DelayBackend::Nfqueue));
        let e = delay_backend(&netem_no, &nfq_no).unwrap_err();
        assert!(
            e.contains("sch_netem") && e.contains("nfnetlink_queue"),
            "{e}"
        );
    }

    #[test]
    fn error_chain_joins_sources() {
        let e = crate::cgroup::CgroupError::Read {
            path: "/x".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert!(error_chain(&e).starts_with("cannot read /x: No such file"));
    }
}
