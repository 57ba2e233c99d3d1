//! The `service` role, modelled on ClusSvc: reads the configuration database
//! once at start, says hello to its watchdog, then every `hang_timeout / 4`
//! (absolute deadlines, no drift) does its periodic work (open, read and
//! lock, read and close the database, [`db`]: a held open or lock stalls
//! it) and sends a heartbeat.
//! On SIGTERM it tells the watchdog it is stopping and exits 0.
//!
//! With a `cluster` in the database it also runs the node's cluster side
//! ([`crate::clusvc`]) in the same loop: membership, quorum, witness and
//! resource groups. A poison packet makes it take its groups offline and
//! exit at once with an error (the supervisor restarts it: 7031).

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::Duration;

use crate::clock::monotonic_ns;
use crate::emit::{io_context, Emitter, Level};
use crate::events::{RecoveryAction, ServiceStarted, ServiceStopping, Source};
use crate::launch::{ClusterDb, LoadError, NodeLaunch};
use crate::protocol::{watchdog_socket_name, Message, MessageKind};
use crate::sys::{self, SignalFd, Timer};
use crate::StartError;

mod db;

/// The cluster-log component of the service.
const COMPONENT: &str = "CS";
/// How long the service looks for its watchdog's socket at start.
const CONNECT_FOR: Duration = Duration::from_secs(5);

/// The service's connection to its watchdog. Sends never block; when the
/// watchdog's socket goes away (the watchdog restarted) it reconnects and
/// says hello again so the new watchdog arms.
struct WatchdogLink {
    name: String,
    sock: Option<UnixDatagram>,
    hello: Message,
    drops: u64,
}

impl WatchdogLink {
    fn connect(&mut self) -> bool {
        let sock = UnixDatagram::unbound().and_then(|s| {
            let addr = SocketAddr::from_abstract_name(self.name.as_bytes())?;
            s.connect_addr(&addr)?;
            s.set_nonblocking(true)?;
            Ok(s)
        });
        self.sock = sock.ok();
        if self.sock.is_some() {
            let hello = self.hello.encode();
            self.raw_send(&hello);
        }
        self.sock.is_some()
    }

    fn raw_send(&mut self, bytes: &[u8]) -> bool {
        let Some(sock) = self.sock.as_ref() else {
            return false;
        };
        match sock.send(bytes) {
            Ok(_) => true,
            Err(e) => {
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ECONNREFUSED | libc::ENOTCONN | libc::ENOENT)
                ) {
                    self.sock = None;
                }
                false
            }
        }
    }

    fn send(&mut self, m: Message) {
        let bytes = m.encode();
        if self.raw_send(&bytes) {
            return;
        }
        if self.sock.is_none() && self.connect() && self.raw_send(&bytes) {
            return;
        }
        self.drops += 1;
    }
}

/// Runs the service of the node whose folder is `node_dir`; returns after a
/// clean stop (SIGTERM or SIGINT).
pub fn run(node_dir: &Path) -> Result<(), StartError> {
    let launch = NodeLaunch::load(node_dir)?;
    let mut em = Emitter::open(&launch, Source::Service);
    let clusdb = launch.clusdb_path();
    // At start too the database is opened and locked: a scanner or a lock
    // holding it holds the start (seed 000), before the watchdog is armed.
    let db = match db::read_locked(&clusdb)
        .map_err(|source| LoadError::Read {
            path: clusdb.clone(),
            source,
        })
        .and_then(|bytes| ClusterDb::parse(&clusdb, &bytes))
    {
        Ok(db) => db,
        Err(e) => {
            em.log(Level::Err, COMPONENT, &format!("cannot start: {e}"));
            return Err(e.into());
        }
    };
    let mut cluster = match db.cluster.as_ref() {
        Some(c) => match crate::clusvc::Cluster::start(c, &launch.node) {
            Ok(c) => Some(c),
            Err(e) => {
                em.log(Level::Err, COMPONENT, &format!("cannot start: {e}"));
                return Err(e);
            }
        },
        None => None,
    };
    let signals = SignalFd::block(&[libc::SIGTERM, libc::SIGINT])
        .map_err(io_context("block SIGTERM and SIGINT"))?;
    let timer = Timer::new().map_err(io_context("create a timerfd"))?;
    let pid = std::process::id();
    let message = |kind, seq| Message {
        kind,
        pid,
        hang_timeout_ms: db.hang_timeout_ms,
        action: db.hang_recovery_action,
        seq,
    };
    let mut link = WatchdogLink {
        name: watchdog_socket_name(&launch.node),
        sock: None,
        // Hello's sequence number carries the incarnation: the watchdog
        // sends the node heartbeats on this service start's behalf.
        hello: message(
            MessageKind::Hello,
            cluster.as_ref().map_or(0, |c| c.incarnation()),
        ),
        drops: 0,
    };
    let give_up = monotonic_ns() + CONNECT_FOR.as_nanos() as u64;
    while !link.connect() && monotonic_ns() < give_up {
        std::thread::sleep(Duration::from_millis(20));
    }
    if link.sock.is_none() {
        em.log(
            Level::Warn,
            COMPONENT,
            "watchdog socket not found; will keep trying at each heartbeat",
        );
    }
    let action = db.hang_recovery_action;
    let mut ev = em
        .event(ServiceStarted {
            hang_timeout_ms: db.hang_timeout_ms,
            action,
            watchdog_connected: link.sock.is_some(),
        })
        .message(crate::events::texts::service_started());
    em.emit(&mut ev, Level::Info, COMPONENT);
    if action == RecoveryAction::Disabled {
        em.log(Level::Info, COMPONENT, "hang recovery is disabled");
    }

    let period = (u64::from(db.hang_timeout_ms) * 1_000_000 / 4).max(1_000_000);
    let mut next = monotonic_ns() + period;
    let mut seq = 0u64;
    let mut work_failing = false;
    loop {
        let deadline = cluster
            .as_ref()
            .map_or(next, |c| c.next_deadline().min(next));
        timer
            .set(Some(deadline))
            .map_err(io_context("arm the timerfd"))?;
        let mut fds = vec![sys::pollin(signals.fd()), sys::pollin(timer.fd())];
        if let Some(c) = cluster.as_ref() {
            fds.extend(c.fds().into_iter().map(sys::pollin));
        }
        sys::poll(&mut fds, -1).map_err(io_context("poll"))?;
        if signals.next().is_some() {
            link.send(message(MessageKind::Stopping, seq));
            if let Some(c) = cluster.as_mut() {
                c.shutdown("service stopping", &mut em);
            }
            let mut ev = em
                .event(ServiceStopping {
                    heartbeats: seq,
                    dropped_heartbeats: link.drops,
                })
                .message("Cluster Service is stopping");
            em.emit(&mut ev, Level::Info, COMPONENT);
            em.stop(COMPONENT);
            return Ok(());
        }
        if sys::ready(&fds[1]) {
            timer.clear();
        }
        if let Some(c) = cluster.as_mut() {
            if let Err(from) = c.service(&mut em) {
                em.stop(COMPONENT);
                return Err(StartError::Poisoned(from.0));
            }
        }
        if monotonic_ns() < next {
            continue;
        }
        match periodic_work(&clusdb) {
            Ok(()) if work_failing => {
                work_failing = false;
                em.log(
                    Level::Info,
                    COMPONENT,
                    "configuration database readable again",
                );
            }
            Err(e) if !work_failing => {
                work_failing = true;
                em.log(Level::Warn, COMPONENT, &e);
            }
            _ => {}
        }
        // Action 0 "disables the heartbeat and monitoring mechanism" (seed
        // 001): no heartbeats at all.
        if action != RecoveryAction::Disabled {
            link.send(message(MessageKind::Heartbeat, seq));
            seq += 1;
        }
        // Beats missed while stalled are skipped, not sent in a burst.
        let now = monotonic_ns();
        while next <= now {
            next += period;
        }
    }
}

/// The service's periodic work: open the database, lock it, read it all,
/// close it.
fn periodic_work(clusdb: &Path) -> Result<(), String> {
    db::read_locked(clusdb).map(drop).map_err(|e| e.to_string())
}
