//! The `watchdog` role, modelled on ClusNet: real-time, memory locked, no
//! file I/O on its hot path. It waits in poll(2) on its socket, an absolute
//! timerfd, the service's pidfd, a signalfd and the node-heartbeat timerfd
//! (the [`Fd`] slots), feeds the [`Countdown`] and carries out its steps:
//! log (4869), terminate the service (4870, then ClusNet's 1228) or
//! bugcheck the node (0x9E: fence first, then write the dump captured at
//! the bugcheck).
//!
//! Once running, a service heartbeat costs one `recv`, one trace `send` and
//! the timer re-arm, and allocates nothing: the trace record is serialized
//! from a kept event into the emitter's buffer, and the dump's memory of it
//! is a plain record ([`recent`]).

pub mod recent;

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;

use crate::clock::monotonic_ns;
use crate::clusnet::NodeHeartbeats;
use crate::countdown::{Countdown, Hang, Step};
use crate::emit::{io_context, Emitter, Level};
use crate::events::{
    hang_event_id, texts, BugcheckMarker, DumpWritten, Event, EventData, HangDetected, Heartbeat,
    NodeFenced, RecoveryAction, ServiceTerminating, Source, WatchdogArmed, WatchdogDisarmed,
    WatchdogStarted, BUGCHECK_CODE,
};
use crate::launch::{ClusterDb, NodeLaunch};
use crate::protocol::{watchdog_socket_name, Message, MessageKind};
use crate::sys::{self, SignalFd, Timer};
use crate::StartError;

/// The cluster-log component of the watchdog.
const COMPONENT: &str = "NM";
pub use crate::launch::BUGCHECK_MARKER;

/// The descriptors the loop polls, by slot in its `pollfd` array.
#[derive(Debug, Clone, Copy)]
enum Fd {
    /// The service's datagrams (hello, heartbeat, stopping).
    Socket,
    /// The countdown's absolute deadline.
    Countdown,
    /// The watched service's pidfd (-1 when none: poll skips it).
    Service,
    /// SIGTERM and SIGINT.
    Signals,
    /// When this node's next heartbeat to its peers is due.
    NodeBeat,
}

impl Fd {
    const COUNT: usize = 5;
}

struct Watchdog {
    launch: NodeLaunch,
    em: Emitter,
    countdown: Countdown,
    /// The watched service and its pidfd.
    service: Option<(u32, OwnedFd)>,
    recent: recent::Recent,
    /// The trace record of every heartbeat, filled in place.
    heartbeat: Event,
    malformed: u64,
    /// This node's heartbeats to its peers, in a cluster (ClusNet's job).
    heartbeats: Option<NodeHeartbeats>,
    /// When the next node heartbeat is due, while they are being sent.
    next_beat: Option<u64>,
}

/// Runs the watchdog of the node whose folder is `node_dir`; returns after
/// SIGTERM or SIGINT, or on a failure to start or to wait.
pub fn run(node_dir: &Path) -> Result<(), StartError> {
    let launch = NodeLaunch::load(node_dir)?;
    let mut em = Emitter::open(&launch, Source::Watchdog);
    let prio = launch.watchdog_rt_priority;
    // Memory is locked (every page faulted in, milliseconds) before the
    // switch to SCHED_FIFO, so that start-up cost is not spent from the
    // watchdog's RT time, which is sized for heartbeats (`lab.rs`).
    let locked = match sys::lock_memory() {
        Ok(()) => true,
        Err(e) => {
            em.log(Level::Warn, COMPONENT, &format!("memory not locked: {e}"));
            false
        }
    };
    if prio > 0 {
        match sys::set_fifo(prio) {
            Ok(()) => em.log(
                Level::Info,
                COMPONENT,
                &format!("running SCHED_FIFO {prio}"),
            ),
            Err(e) => em.log(
                Level::Err,
                COMPONENT,
                &format!("cannot set SCHED_FIFO {prio}: {e}; running at normal priority"),
            ),
        }
    }
    let name = watchdog_socket_name(&launch.node);
    let sock = SocketAddr::from_abstract_name(name.as_bytes())
        .and_then(|addr| UnixDatagram::bind_addr(&addr))
        .map_err(io_context(format!("bind abstract socket @{name}")))?;
    sock.set_nonblocking(true)
        .map_err(io_context("make the watchdog socket non-blocking"))?;
    let timer = Timer::new().map_err(io_context("create a timerfd"))?;
    let signals = SignalFd::block(&[libc::SIGTERM, libc::SIGINT])
        .map_err(io_context("block SIGTERM and SIGINT"))?;
    // Read once at start, off the hot path: who the peers are.
    let heartbeats = match ClusterDb::load(&launch.clusdb_path()).map(|db| db.cluster) {
        Ok(Some(cfg)) => match NodeHeartbeats::new(&cfg) {
            Ok(hb) => Some(hb),
            Err(e) => {
                em.log(Level::Err, COMPONENT, &format!("no node heartbeats: {e}"));
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            em.log(Level::Warn, COMPONENT, &format!("no node heartbeats: {e}"));
            None
        }
    };
    let beat_timer = Timer::new().map_err(io_context("create a timerfd"))?;
    let heartbeat = em.event(Heartbeat::default());
    let mut w = Watchdog {
        launch,
        em,
        countdown: Countdown::new(),
        service: None,
        recent: recent::Recent::default(),
        heartbeat,
        malformed: 0,
        heartbeats,
        next_beat: None,
    };
    let ev =
        w.em.event(WatchdogStarted {
            rt_priority: prio,
            policy: sys::policy().to_string(),
            memory_locked: locked,
        })
        .message(format!("Watchdog started, listening on @{name}"));
    w.emit(ev, Level::Info);
    w.serve(&sock, &timer, &beat_timer, &signals)
}

impl Watchdog {
    /// Waits and acts until SIGTERM or SIGINT.
    fn serve(
        &mut self,
        sock: &UnixDatagram,
        timer: &Timer,
        beat_timer: &Timer,
        signals: &SignalFd,
    ) -> Result<(), StartError> {
        let mut buf = [0u8; 64];
        // What the heartbeat timer is armed for: re-armed only on change, so
        // a service heartbeat costs no extra syscall.
        let mut beat_armed: Option<u64> = None;
        loop {
            let pidfd = self.service.as_ref().map_or(-1, |(_, fd)| fd.as_raw_fd());
            let watched = self.service.as_ref().map(|(pid, _)| *pid);
            let mut fds = [sys::pollin(-1); Fd::COUNT];
            fds[Fd::Socket as usize] = sys::pollin(sock.as_raw_fd());
            fds[Fd::Countdown as usize] = sys::pollin(timer.fd());
            fds[Fd::Service as usize] = sys::pollin(pidfd);
            fds[Fd::Signals as usize] = sys::pollin(signals.fd());
            fds[Fd::NodeBeat as usize] = sys::pollin(beat_timer.fd());
            sys::poll(&mut fds, -1).map_err(io_context("poll"))?;
            let ready = |fd: Fd| sys::ready(&fds[fd as usize]);
            // Messages first: what the service sent before it died explains
            // its death (a clean stop), and a heartbeat already queued when
            // the timer fires wins over the expiry.
            if ready(Fd::Socket) {
                while let Ok(n) = sock.recv(&mut buf) {
                    let now = monotonic_ns();
                    match Message::decode(&buf[..n]) {
                        Ok(m) => self.on_message(m, now),
                        Err(e) => self.on_malformed(e),
                    }
                }
            }
            if ready(Fd::Service) {
                self.stop_beats();
                if let Some(pid) = watched {
                    if self.service.as_ref().is_some_and(|(p, _)| *p == pid) {
                        self.service = None;
                    }
                    if self.countdown.on_service_gone(pid) == Step::Disarmed {
                        self.disarmed(pid, "service exited");
                    }
                }
            }
            // A stop request last, so that messages queued before it (the
            // service's clean stop) are acted on and reported first.
            if ready(Fd::Signals) && signals.next().is_some() {
                self.em.log(Level::Info, COMPONENT, "Watchdog stopping.");
                self.em.stop(COMPONENT);
                return Ok(());
            }
            if ready(Fd::Countdown) {
                timer.clear();
                let now = monotonic_ns();
                if let Step::Hang(h) = self.countdown.on_timer(now) {
                    self.on_hang(h, now);
                }
            }
            if ready(Fd::NodeBeat) {
                beat_timer.clear();
                self.beat(monotonic_ns());
            }
            timer
                .set(self.countdown.deadline())
                .map_err(io_context("arm the timerfd"))?;
            if self.next_beat != beat_armed {
                beat_timer
                    .set(self.next_beat)
                    .map_err(io_context("arm the heartbeat timerfd"))?;
                beat_armed = self.next_beat;
            }
        }
    }

    /// Sends this node's heartbeats if they are due, and schedules the next.
    fn beat(&mut self, now: u64) {
        let (Some(hb), Some(due)) = (self.heartbeats.as_mut(), self.next_beat) else {
            return;
        };
        if now < due {
            return;
        }
        hb.beat();
        let interval = hb.interval_ns();
        // Absolute schedule; skip what a stall missed rather than bursting.
        let mut next = due + interval;
        if next <= now {
            next = now + interval;
        }
        self.next_beat = Some(next);
    }

    fn stop_beats(&mut self) {
        if let Some(hb) = self.heartbeats.as_mut() {
            hb.stop();
        }
        self.next_beat = None;
    }

    fn on_message(&mut self, m: Message, now: u64) {
        match m.kind {
            MessageKind::Hello => {
                // The node heartbeats go on whatever the action: they are
                // the node's, not the countdown's. They stop with the
                // service, so watch it even when monitoring is disabled.
                if let Some(hb) = self.heartbeats.as_mut() {
                    hb.start(m.seq);
                    self.next_beat = Some(now);
                    if self.service.as_ref().is_none_or(|(p, _)| *p != m.pid) {
                        self.service = sys::pidfd_open(m.pid).ok().map(|fd| (m.pid, fd));
                    }
                }
                if let Step::Armed(a) =
                    self.countdown
                        .on_hello(m.pid, m.hang_timeout_ms, m.action, now)
                {
                    let mut ev = self
                        .em
                        .event(WatchdogArmed {
                            service_pid: a.service_pid,
                            timeout_ms: a.timeout_ms,
                            action: a.action,
                        })
                        .message(format!(
                            "Watchdog armed for the client process (ID {}): timeout {} ms, action {}",
                            a.service_pid,
                            a.timeout_ms,
                            a.action.code()
                        ));
                    ev.t = now;
                    self.emit(ev, Level::Info);
                    match sys::pidfd_open(m.pid) {
                        Ok(fd) => self.service = Some((m.pid, fd)),
                        Err(_) => {
                            self.service = None;
                            self.countdown.on_service_gone(m.pid);
                            self.disarmed(m.pid, "service exited");
                        }
                    }
                }
            }
            MessageKind::Heartbeat => {
                // Every heartbeat the watchdog sees goes to the trace, also
                // while monitoring is disabled: the trace shows the service
                // was alive even when nobody counted down.
                let counted = self.countdown.on_heartbeat(m.pid, now) == Step::Heartbeat;
                let beat = Heartbeat {
                    service_seq: m.seq,
                    service_pid: m.pid,
                    counted,
                };
                self.heartbeat.t = now;
                self.heartbeat.data = EventData::Heartbeat(beat);
                self.em.trace_only(&mut self.heartbeat);
                self.recent.heartbeat(recent::HeartbeatRecord {
                    t: now,
                    seq: self.heartbeat.seq,
                    beat,
                });
            }
            MessageKind::Stopping => {
                self.stop_beats();
                if self.countdown.on_service_gone(m.pid) == Step::Disarmed {
                    self.service = None;
                    self.disarmed(m.pid, "service stopping");
                }
            }
        }
    }

    fn on_malformed(&mut self, e: crate::protocol::DecodeError) {
        self.malformed += 1;
        if self.malformed.is_power_of_two() {
            let text = format!(
                "ignored a malformed datagram ({e}); {} so far",
                self.malformed
            );
            self.em.log(Level::Warn, COMPONENT, &text);
        }
    }

    fn disarmed(&mut self, pid: u32, reason: &str) {
        let ev = self
            .em
            .event(WatchdogDisarmed {
                reason: reason.to_string(),
                service_pid: pid,
            })
            .message(format!("Watchdog disarmed: {reason} (ID {pid})"));
        self.emit(ev, Level::Info);
    }

    fn on_hang(&mut self, h: Hang, t_fire: u64) {
        let pid = h.service_pid;
        let hang = HangDetected {
            action: h.action,
            service_pid: pid,
            timeout_ms: h.timeout_ms,
            last_heartbeat_t: h.last_heartbeat_t,
            deadline_t: h.deadline_t,
            late_ns: h.late_ns,
            params: None,
            code: None,
        };
        let mut ev = self.em.event(hang.clone());
        ev.t = t_fire;
        ev.id = hang_event_id(h.action);
        let secs = texts::timeout_seconds(h.timeout_ms);
        match h.action {
            RecoveryAction::Disabled => {}
            RecoveryAction::Log => {
                let mut ev = ev.message(texts::hang_logged(pid, secs));
                self.em.emit_with_line(
                    &mut ev,
                    Level::Warn,
                    COMPONENT,
                    &format!(
                        "Watchdog timer timeout for the client process (ID {pid}); hang recovery action is to log only."
                    ),
                );
                self.recent.event(ev);
            }
            RecoveryAction::Terminate => {
                let mut ev = ev.message(texts::hang_terminating(pid, secs));
                self.em.emit_with_line(
                    &mut ev,
                    Level::Err,
                    COMPONENT,
                    &texts::watchdog_terminate_log(pid),
                );
                self.recent.event(ev);
                // Seed 002's ClusNet 1228, the 2003 wording of the same act,
                // logged as the service "is being terminated": before the kill.
                let term = self
                    .em
                    .event(ServiceTerminating {
                        service_pid: pid,
                        timeout_s: secs,
                    })
                    .message(texts::clusnet_terminating(secs));
                self.emit(term, Level::Err);
                // Keep watching it: its death (the pidfd) is what ends the
                // node heartbeats, and so tells the peers the node is gone.
                if let Some((p, fd)) = self.service.as_ref() {
                    if *p == pid {
                        if let Err(e) = sys::pidfd_send_signal(fd, libc::SIGKILL) {
                            self.em.log(
                                Level::Err,
                                COMPONENT,
                                &format!("cannot terminate the client process (ID {pid}): {e}"),
                            );
                        }
                    }
                }
            }
            RecoveryAction::Bugcheck => self.bugcheck(ev, hang, t_fire),
        }
    }

    /// Action 3, in the seed's order: the bugcheck is logged and the node's
    /// state captured at once; then the node is fenced (links down, every
    /// other process killed: "it will no longer fight the disk arbitration
    /// OR advertise", seed 002); then the dump is written from what was
    /// captured; then the watchdog dies with the node.
    fn bugcheck(&mut self, mut ev: Event, hang: HangDetected, t_fire: u64) -> ! {
        let pid = hang.service_pid;
        // Seed 003: (process id, timeout value in seconds, 0, 0).
        let params = [
            u64::from(pid),
            texts::timeout_seconds(hang.timeout_ms),
            0,
            0,
        ];
        let timeout_ms = hang.timeout_ms;
        ev.data = EventData::HangDetected(HangDetected {
            params: Some(params),
            code: Some(BUGCHECK_CODE),
            ..hang
        });
        let ev = ev.message(format!(
            "Watchdog timer timeout for the client process (ID {pid}): the computer will bugcheck {}.",
            texts::bugcheck_values(BUGCHECK_CODE, &params)
        ));
        self.emit(ev, Level::Err);
        let path = self
            .launch
            .node_dir
            .join("dumps")
            .join(format!("bugcheck-{t_fire}.json"));
        let last = self.recent.events(&self.launch.node, std::process::id());
        let reason = format!("bugcheck 0x{BUGCHECK_CODE:X}: service hang");
        let input = crate::dump::DumpInput {
            node: &self.launch.node,
            t: t_fire,
            reason: &reason,
            params: &params,
            timeout_ms,
            node_dirs: &self.launch.cgroups.node_dirs,
            pressure_dir: self.launch.cgroups.pressure_dir.as_deref(),
            proc_root: Path::new("/proc"),
            last_events: &last,
        };
        let captured = crate::dump::build(&input);
        // The marker before the fence: the harness reads it when the
        // supervisor dies, and the next boot reports 1001 from it.
        let marker = self.launch.bugcheck_marker_path();
        if let Some(dir) = marker.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let text = BugcheckMarker {
            dump: path.to_string_lossy().into_owned(),
            params,
        }
        .to_json();
        if let Err(e) = std::fs::write(&marker, text) {
            self.em.log(
                Level::Err,
                COMPONENT,
                &format!("cannot write {}: {e}", marker.display()),
            );
        }
        let downs = crate::fence::links_down(&self.launch.links);
        crate::fence::stop_others(&self.launch.cgroups, pid);
        let link_errors = downs
            .into_iter()
            .filter_map(|(l, e)| e.map(|e| (l, e)))
            .collect();
        let fenced = self
            .em
            .event(NodeFenced {
                links: self.launch.links.clone(),
                link_errors,
            })
            .message("The node is fenced: its links are down and its processes are killed; the dump is being written.");
        self.emit(fenced, Level::Err);
        let (error, message) = match crate::dump::write_value(&path, &captured) {
            Ok(()) => (None, format!("Dump written to {}", path.display())),
            Err(e) => (
                Some(e.to_string()),
                format!("Cannot write the dump {}: {e}", path.display()),
            ),
        };
        let dump = self
            .em
            .event(DumpWritten {
                path: path.to_string_lossy().into_owned(),
                error,
            })
            .message(message);
        self.emit(dump, Level::Err);
        crate::fence::kill_node(&self.launch.cgroups, pid)
    }

    /// Emits everywhere and remembers the event for the dump.
    fn emit(&mut self, mut ev: Event, level: Level) {
        self.em.emit(&mut ev, level, COMPONENT);
        self.recent.event(ev);
    }
}
