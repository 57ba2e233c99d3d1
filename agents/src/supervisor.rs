//! The `supervisor` role: the node's service manager. It reports the node's
//! start (and a reboot after a bugcheck, 1001), starts the watchdog and the
//! service, reaps every child and orphan, restarts a service that died
//! (7031) after `service_restart_delay_ms`, restarts a dead watchdog, and on
//! SIGTERM/SIGINT stops the service, then the watchdog, and exits 0.

use std::path::{Path, PathBuf};

use faultline_sys::error::chain;
use faultline_sys::process::{self, Spawn};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::clock::monotonic_ns;
use crate::emit::{io_context, Emitter, Level};
use crate::events::{
    texts, BugcheckMarker, NodeRebooted, NodeStarted, ServiceRestarted, ServiceTerminated, Source,
    BUGCHECK_CODE,
};
use crate::launch::{ClusterDb, NodeLaunch};
use crate::sys::{self, SignalFd};
use crate::StartError;

/// The cluster-log component of the supervisor.
const COMPONENT: &str = "SCM";
const MS: u64 = 1_000_000;
/// Delay before restarting a dead watchdog (no hot loop if it cannot start).
const WATCHDOG_RESTART_NS: u64 = 200 * MS;
/// Delay before restarting the service when the database cannot be read.
const DEFAULT_RESTART_NS: u64 = 1000 * MS;
/// How long each child gets to stop after SIGTERM before SIGKILL.
const STOP_GRACE_NS: u64 = 2000 * MS;

/// A child role the supervisor keeps running.
#[derive(Debug, Default)]
struct Slot {
    pid: Option<u32>,
    restart_at: Option<u64>,
}

struct Supervisor {
    node_dir: PathBuf,
    launch: NodeLaunch,
    em: Emitter,
    signals: SignalFd,
    service: Slot,
    watchdog: Slot,
    terminations: u64,
    restarts: u64,
}

/// Runs the supervisor of the node whose folder is `node_dir`; returns after
/// a clean shutdown.
pub fn run(node_dir: &Path) -> Result<(), StartError> {
    let launch = NodeLaunch::load(node_dir)?;
    let mut em = Emitter::open(&launch, Source::Supervisor);
    process::set_child_subreaper()?;
    let signals = SignalFd::block(&[libc::SIGTERM, libc::SIGINT, libc::SIGCHLD])
        .map_err(io_context("block SIGTERM, SIGINT and SIGCHLD"))?;
    let mut ev = em
        .event(NodeStarted {
            run_id: launch.run_id.clone(),
        })
        .message(format!("Node {} started", launch.node));
    em.emit(&mut ev, Level::Info, COMPONENT);
    let marker = launch.bugcheck_marker_path();
    if let Ok(text) = std::fs::read_to_string(&marker) {
        let _ = std::fs::remove_file(&marker);
        let m = BugcheckMarker::parse(&text);
        // Seed 003: type Information, source BugCheck.
        let mut ev = em
            .event(NodeRebooted {
                bugcheck_code: BUGCHECK_CODE,
                dump: m.dump,
                params: m.params,
            })
            .message(texts::rebooted_from_bugcheck(BUGCHECK_CODE, &m.params));
        em.emit(&mut ev, Level::Info, COMPONENT);
    }
    let mut s = Supervisor {
        node_dir: node_dir.to_path_buf(),
        launch,
        em,
        signals,
        service: Slot::default(),
        watchdog: Slot::default(),
        terminations: 0,
        restarts: 0,
    };
    s.start_watchdog();
    s.start_service(false);
    s.serve()
}

impl Supervisor {
    fn serve(&mut self) -> Result<(), StartError> {
        loop {
            let now = monotonic_ns();
            let next = [self.service.restart_at, self.watchdog.restart_at]
                .into_iter()
                .flatten()
                .min();
            let timeout = next.map_or(-1, |t| (t.saturating_sub(now).div_ceil(MS)) as i32);
            let mut fds = [sys::pollin(self.signals.fd())];
            sys::poll(&mut fds, timeout).map_err(io_context("poll"))?;
            let mut stop = false;
            while let Some(sig) = self.signals.next() {
                stop |= sig == libc::SIGTERM || sig == libc::SIGINT;
            }
            for (pid, status) in reap() {
                self.on_exit(pid, status);
            }
            if stop {
                self.shutdown();
                return Ok(());
            }
            let now = monotonic_ns();
            if self.watchdog.restart_at.is_some_and(|t| t <= now) {
                self.start_watchdog();
            }
            if self.service.restart_at.is_some_and(|t| t <= now) {
                self.start_service(true);
            }
        }
    }

    fn on_exit(&mut self, pid: u32, status: WaitStatus) {
        let (text, clean) = describe(status);
        if self.service.pid == Some(pid) {
            self.service.pid = None;
            if clean {
                self.em.log(
                    Level::Info,
                    COMPONENT,
                    "The Cluster Service service stopped.",
                );
                return;
            }
            self.terminations += 1;
            let (exit_code, signal) = match status {
                WaitStatus::Exited(_, code) => (Some(code), None),
                WaitStatus::Signaled(_, sig, _) => (None, Some(sig as i32)),
                _ => (None, None),
            };
            let mut ev = self
                .em
                .event(ServiceTerminated {
                    status: text,
                    service_pid: pid,
                    count: self.terminations,
                    exit_code,
                    signal,
                })
                .message(texts::SERVICE_TERMINATED);
            self.em.emit(&mut ev, Level::Err, COMPONENT);
            let delay = match ClusterDb::load(&self.launch.clusdb_path()) {
                Ok(db) => db.service_restart_delay_ms * MS,
                Err(e) => {
                    self.em.log(
                        Level::Err,
                        COMPONENT,
                        &format!("{e}; default restart delay"),
                    );
                    DEFAULT_RESTART_NS
                }
            };
            self.service.restart_at = Some(monotonic_ns() + delay);
        } else if self.watchdog.pid == Some(pid) {
            self.watchdog.pid = None;
            self.em.log(
                Level::Err,
                COMPONENT,
                &format!("The watchdog (ID {pid}) exited ({text}); restarting it."),
            );
            self.watchdog.restart_at = Some(monotonic_ns() + WATCHDOG_RESTART_NS);
        }
        // Anything else is an orphan we reaped as the subreaper.
    }

    /// This binary in `role`, killed when the supervisor dies and not
    /// started at all if it already has (the signals the supervisor takes
    /// through its signalfd start unblocked in the child: `Spawn` says so).
    fn command(&self, role: &str) -> Spawn {
        Spawn::new("/proc/self/exe")
            .arg(role)
            .arg("--node-dir")
            .arg(&self.node_dir)
            .parent_death_signal(libc::SIGKILL)
    }

    fn start_watchdog(&mut self) {
        self.watchdog.restart_at = None;
        match self.command("watchdog").spawn_child() {
            Ok(pid) => self.watchdog.pid = Some(pid),
            Err(e) => {
                self.em.log(
                    Level::Err,
                    COMPONENT,
                    &format!("cannot start the watchdog: {}", chain(&e)),
                );
                self.watchdog.restart_at = Some(monotonic_ns() + WATCHDOG_RESTART_NS);
            }
        }
    }

    fn start_service(&mut self, restart: bool) {
        self.service.restart_at = None;
        let spawn = self
            .command("service")
            .cgroup_procs(self.launch.cgroups.service_procs.clone());
        match spawn.spawn_child() {
            Ok(pid) => {
                self.service.pid = Some(pid);
                if restart {
                    self.restarts += 1;
                    let mut ev = self
                        .em
                        .event(ServiceRestarted {
                            service_pid: pid,
                            restarts: self.restarts,
                        })
                        .message("The Cluster Service service was restarted.");
                    self.em.emit(&mut ev, Level::Info, COMPONENT);
                }
            }
            Err(e) => {
                self.em.log(
                    Level::Err,
                    COMPONENT,
                    &format!("cannot start the service: {}", chain(&e)),
                );
                self.service.restart_at = Some(monotonic_ns() + DEFAULT_RESTART_NS);
            }
        }
    }

    /// Stops the service, then the watchdog: SIGTERM, a grace period, SIGKILL.
    fn shutdown(&mut self) {
        self.em
            .log(Level::Info, COMPONENT, "Shutting down the node's services.");
        self.service.restart_at = None;
        self.watchdog.restart_at = None;
        for which in [true, false] {
            let pid = if which {
                self.service.pid
            } else {
                self.watchdog.pid
            };
            let Some(pid) = pid else { continue };
            let _ = sys::kill(pid, libc::SIGTERM);
            if !self.wait_for(pid, STOP_GRACE_NS) {
                let _ = sys::kill(pid, libc::SIGKILL);
                self.wait_for(pid, STOP_GRACE_NS);
            }
        }
        reap();
        self.em.stop(COMPONENT);
        self.em.log(Level::Info, COMPONENT, "Node stopped.");
    }

    /// Waits until `pid` has been reaped, up to `timeout_ns`.
    fn wait_for(&mut self, pid: u32, timeout_ns: u64) -> bool {
        let until = monotonic_ns() + timeout_ns;
        loop {
            for (p, status) in reap() {
                if self.service.pid == Some(p) {
                    self.service.pid = None;
                } else if self.watchdog.pid == Some(p) {
                    self.watchdog.pid = None;
                }
                if p == pid {
                    let (text, _) = describe(status);
                    self.em.log(
                        Level::Info,
                        COMPONENT,
                        &format!("process {pid} ended: {text}"),
                    );
                    return true;
                }
            }
            let now = monotonic_ns();
            if now >= until {
                return false;
            }
            let mut fds = [sys::pollin(self.signals.fd())];
            let _ = sys::poll(&mut fds, (until - now).div_ceil(MS).min(50) as i32);
            while self.signals.next().is_some() {}
        }
    }
}

/// Reaps every child that has ended, without waiting.
fn reap() -> Vec<(u32, WaitStatus)> {
    let mut out = Vec::new();
    while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        match status.pid() {
            Some(pid) if matches!(status, WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => {
                out.push((pid.as_raw() as u32, status))
            }
            Some(_) => {}
            None => break,
        }
    }
    out
}

/// A status's text, and whether it is a clean exit (code 0).
fn describe(status: WaitStatus) -> (String, bool) {
    match status {
        WaitStatus::Exited(_, code) => (format!("exit code {code}"), code == 0),
        WaitStatus::Signaled(_, sig, core) => (
            format!(
                "killed by {}{}",
                sig.as_str(),
                if core { " (core dumped)" } else { "" }
            ),
            false,
        ),
        other => (format!("{other:?}"), false),
    }
}
