//! Runs real nodes (supervisor, watchdog, service) on the host namespace, no
//! root: each test uses a node name unique to its process, since abstract
//! socket names are per network namespace.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use faultline_agent::events::{
    BugcheckMarker, Event, EventData, EventKind, HangDetected, RecoveryAction,
};
use faultline_agent::launch::{ClusterDb, NodeLaunch};

const MS: u64 = 1_000_000;
static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
const WAIT: Duration = Duration::from_secs(10);

struct Node {
    dir: tempfile::TempDir,
    trace: UnixDatagram,
    supervisor: Option<Child>,
    /// Everything received, for failure messages.
    seen: Vec<Event>,
    /// Received but not yet matched: events of different processes may
    /// arrive in either order.
    pending: Vec<Event>,
}

impl Node {
    fn new(action: RecoveryAction, hang_timeout_ms: u32, restart_delay_ms: u64) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let trace_path = dir.path().join("trace.sock");
        let trace = UnixDatagram::bind(&trace_path).unwrap();
        trace
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        // Unique per process and per test: `cargo test` runs tests as
        // threads of one process.
        let node = format!(
            "it{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let launch = NodeLaunch::bare("it", &node, dir.path(), &state, &trace_path);
        std::fs::write(
            dir.path().join("agent.json"),
            serde_json::to_vec(&launch).unwrap(),
        )
        .unwrap();
        let db = ClusterDb {
            hang_timeout_ms,
            hang_recovery_action: action,
            service_restart_delay_ms: restart_delay_ms,
            cluster: None,
        };
        std::fs::write(state.join("clusdb"), serde_json::to_vec(&db).unwrap()).unwrap();
        let mut node = Node {
            dir,
            trace,
            supervisor: None,
            seen: Vec::new(),
            pending: Vec::new(),
        };
        node.boot();
        node
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn boot(&mut self) {
        self.pending.clear();
        let child = Command::new(env!("CARGO_BIN_EXE_faultline-agent"))
            .arg("supervisor")
            .arg("--node-dir")
            .arg(self.dir.path())
            .spawn()
            .unwrap();
        self.supervisor = Some(child);
    }

    /// The first not yet matched event that matches, waiting up to `WAIT`;
    /// panics with what was seen.
    fn expect(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let until = Instant::now() + WAIT;
        let mut buf = vec![0u8; 65536];
        loop {
            if let Some(i) = self.pending.iter().position(&pred) {
                return self.pending.remove(i);
            }
            if Instant::now() >= until {
                break;
            }
            if let Ok(n) = self.trace.recv(&mut buf) {
                let ev: Event = serde_json::from_slice(&buf[..n]).unwrap();
                self.seen.push(ev.clone());
                self.pending.push(ev);
            }
        }
        panic!("no {what} within {WAIT:?}; saw:\n{}", self.dump_seen());
    }

    fn expect_kind(&mut self, kind: EventKind) -> Event {
        self.expect(&format!("{kind:?}"), |e| e.kind() == kind)
    }

    /// Every event that arrives during `d`.
    fn collect_for(&mut self, d: Duration) -> Vec<Event> {
        let until = Instant::now() + d;
        let mut buf = vec![0u8; 65536];
        let mut out = std::mem::take(&mut self.pending);
        while Instant::now() < until {
            if let Ok(n) = self.trace.recv(&mut buf) {
                let ev: Event = serde_json::from_slice(&buf[..n]).unwrap();
                self.seen.push(ev.clone());
                out.push(ev);
            }
        }
        out
    }

    fn dump_seen(&self) -> String {
        self.seen
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// SIGTERM to the supervisor; it must exit 0 within `WAIT`.
    fn stop(&mut self) {
        let mut child = self.supervisor.take().unwrap();
        signal(child.id(), libc::SIGTERM);
        let until = Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert_eq!(status.code(), Some(0), "supervisor: {status}");
                return;
            }
            assert!(Instant::now() < until, "supervisor did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the supervisor to die on its own (a bugcheck).
    fn wait_dead(&mut self) -> std::process::ExitStatus {
        let mut child = self.supervisor.take().unwrap();
        let until = Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < until, "supervisor did not die");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.supervisor.take() {
            // Its children die with it (PR_SET_PDEATHSIG).
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: plain kill(2).
    assert_eq!(
        unsafe { libc::kill(pid as libc::pid_t, sig) },
        0,
        "kill {pid}"
    );
}

/// Whether `pid` is gone within a second: reaped, or (`zombie_ok`) at least
/// dead, for orphans that this host's init may be slow to reap.
fn ended(pid: u32, zombie_ok: bool) -> bool {
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat)
                if zombie_ok
                    && stat
                        .rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z') =>
            {
                return true
            }
            Ok(_) => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn gone(pid: u32) -> bool {
    ended(pid, false)
}

fn service_pid(e: &Event) -> u32 {
    match &e.data {
        EventData::WatchdogArmed(d) => d.service_pid,
        EventData::WatchdogDisarmed(d) => d.service_pid,
        EventData::Heartbeat(d) => d.service_pid,
        EventData::HangDetected(d) => d.service_pid,
        EventData::ServiceRestarted(d) => d.service_pid,
        EventData::ServiceTerminated(d) => d.service_pid,
        other => panic!("{other:?} names no service"),
    }
}

fn hang_of(e: &Event) -> &HangDetected {
    match &e.data {
        EventData::HangDetected(h) => h,
        other => panic!("not a hang: {other:?}"),
    }
}

fn service_seq(e: &Event) -> u64 {
    match &e.data {
        EventData::Heartbeat(h) => h.service_seq,
        other => panic!("not a heartbeat: {other:?}"),
    }
}

#[test]
fn log_action_reports_a_stopped_service_every_timeout_and_shutdown_is_clean() {
    let mut node = Node::new(RecoveryAction::Log, 400, 200);
    node.expect_kind(EventKind::NodeStarted);
    let watchdog = node.expect_kind(EventKind::WatchdogStarted).pid;
    let service = node.expect_kind(EventKind::ServiceStarted).pid;
    let armed = node.expect_kind(EventKind::WatchdogArmed);
    assert_eq!(service_pid(&armed), service);

    // Heartbeats about every 100 ms.
    let mut beats = Vec::new();
    for _ in 0..6 {
        beats.push(node.expect_kind(EventKind::Heartbeat));
    }
    for pair in beats.windows(2) {
        assert_eq!(service_seq(&pair[1]), service_seq(&pair[0]) + 1);
        assert!(
            pair[1].seq > pair[0].seq,
            "the watchdog numbers its records"
        );
        let gap = pair[1].t - pair[0].t;
        assert!((30 * MS..400 * MS).contains(&gap), "gap {gap} ns");
    }

    signal(service, libc::SIGSTOP);
    let hang = node.expect_kind(EventKind::HangDetected);
    assert_eq!(hang.id, Some(4869));
    assert_eq!(hang_of(&hang).action, RecoveryAction::Log);
    assert_eq!(service_pid(&hang), service);
    let last = hang_of(&hang).last_heartbeat_t;
    assert_eq!(hang_of(&hang).deadline_t, last + 400 * MS);
    let after = hang.t - last;
    assert!(
        (400 * MS..1500 * MS).contains(&after),
        "hang after {after} ns"
    );
    // It repeats every timeout while the hang lasts.
    let again = node.expect_kind(EventKind::HangDetected);
    assert_eq!(
        hang_of(&again).deadline_t,
        last + 800 * MS,
        "{}",
        node.dump_seen()
    );

    signal(service, libc::SIGCONT);
    node.expect("a heartbeat after SIGCONT", |e| {
        e.kind() == EventKind::Heartbeat && e.t > again.t
    });
    let log = std::fs::read_to_string(node.path().join("cluster.log")).unwrap();
    assert!(log.contains("INFO [CS] Cluster Service started - Cluster Node Version 5.2.3790"));
    assert!(log.contains("WARN [NM] Watchdog timer timeout for the client process"));

    node.stop();
    node.expect_kind(EventKind::ServiceStopping);
    let disarmed = node.expect_kind(EventKind::WatchdogDisarmed);
    match &disarmed.data {
        EventData::WatchdogDisarmed(d) => assert_eq!(d.reason, "service stopping"),
        other => panic!("{other:?}"),
    }
    assert!(gone(service), "service {service} left behind");
    assert!(gone(watchdog), "watchdog {watchdog} left behind");
    let events = std::fs::read_to_string(node.path().join("events.jsonl")).unwrap();
    assert!(events
        .lines()
        .all(|l| serde_json::from_str::<Event>(l).is_ok()));
    assert!(
        !events.contains("\"heartbeat\""),
        "heartbeats are trace-only"
    );
}

#[test]
fn terminate_action_kills_the_hung_service_and_the_supervisor_restarts_it() {
    let mut node = Node::new(RecoveryAction::Terminate, 400, 300);
    let first = node.expect_kind(EventKind::ServiceStarted).pid;
    node.expect_kind(EventKind::Heartbeat);
    signal(first, libc::SIGSTOP);
    let hang = node.expect_kind(EventKind::HangDetected);
    assert_eq!(hang.id, Some(4870));
    assert_eq!(service_pid(&hang), first);
    let term = node.expect_kind(EventKind::ServiceTerminated);
    assert_eq!(term.id, Some(7031));
    match &term.data {
        EventData::ServiceTerminated(d) => assert_eq!(d.signal, Some(libc::SIGKILL)),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        term.message,
        "The Cluster Service service terminated unexpectedly."
    );
    assert_eq!(term.log_source.as_deref(), Some("Service Control Manager"));
    let clusnet = node.expect_kind(EventKind::ServiceTerminating);
    assert_eq!(clusnet.id, Some(1228));
    assert_eq!(clusnet.log_source.as_deref(), Some("ClusNet"));
    assert_eq!(
        clusnet.message,
        "ClusNet driver couldn't communicate with the ClusSvc for 1 seconds, the Cluster service is being terminated."
    );
    assert_eq!(
        hang.message,
        format!("User mode health monitoring has detected that the system is not being responsive. The Failover cluster virtual adapter has lost contact with the Cluster Server process with a process ID '{first}', for '1' seconds. Recovery action will be taken.")
    );
    let restarted = node.expect_kind(EventKind::ServiceRestarted);
    assert!(restarted.t - term.t >= 300 * MS, "restart delay honoured");
    let second = node.expect_kind(EventKind::ServiceStarted).pid;
    assert_ne!(second, first);
    assert_eq!(service_pid(&restarted), second);
    node.expect("the watchdog armed for the new service", |e| {
        e.kind() == EventKind::WatchdogArmed && service_pid(e) == second
    });
    node.expect("a heartbeat of the new service", |e| {
        e.kind() == EventKind::Heartbeat && service_pid(e) == second
    });
    let log = std::fs::read_to_string(node.path().join("cluster.log")).unwrap();
    assert!(log.contains(&format!(
        "ERR [NM] Watchdog timer timeout for the client process (ID {first}) and it will terminate the client process."
    )));
    node.stop();
    assert!(gone(first) && gone(second));
}

#[test]
fn bugcheck_action_dumps_fences_and_the_next_boot_reports_1001() {
    let mut node = Node::new(RecoveryAction::Bugcheck, 400, 200);
    let service = node.expect_kind(EventKind::ServiceStarted).pid;
    node.expect_kind(EventKind::Heartbeat);
    signal(service, libc::SIGSTOP);
    let hang = node.expect_kind(EventKind::HangDetected);
    assert_eq!(hang.id, Some(158));
    // Seed 003: the timeout in whole seconds, rounded up.
    assert_eq!(hang_of(&hang).params, Some([u64::from(service), 1, 0, 0]));
    // Seed 002: fenced first, then the dump is written.
    let fenced = node.expect_kind(EventKind::NodeFenced);
    let dump = node.expect_kind(EventKind::DumpWritten);
    assert!(fenced.seq < dump.seq, "fenced before the dump was written");
    let path = match &dump.data {
        EventData::DumpWritten(d) => PathBuf::from(&d.path),
        other => panic!("{other:?}"),
    };
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(!json["last_events"].as_array().unwrap().is_empty());
    assert_eq!(
        json["timeout_ms"], 400,
        "the dump keeps the exact countdown"
    );
    let status = node.wait_dead();
    assert!(!status.success(), "the node died: {status}");
    assert!(ended(service, true), "the service died with the node");
    let marker = node.path().join("hw/bugcheck.marker");
    assert_eq!(
        marker,
        faultline_agent::launch::bugcheck_marker_path(node.path())
    );
    let kept = BugcheckMarker::parse(&std::fs::read_to_string(&marker).unwrap());
    assert_eq!(kept.dump, path.to_string_lossy());
    assert_eq!(kept.params, [u64::from(service), 1, 0, 0]);

    node.boot();
    let rebooted = node.expect_kind(EventKind::NodeRebooted);
    assert_eq!(rebooted.id, Some(1001));
    match &rebooted.data {
        EventData::NodeRebooted(d) => assert_eq!(d.bugcheck_code, 158),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rebooted.message,
        format!("The computer has rebooted from a bugcheck.  The bugcheck was 0x0000009E ({service:x}, 1, 0, 0).")
    );
    assert_eq!(rebooted.log_source.as_deref(), Some("BugCheck"));
    assert_eq!(rebooted.log_type.as_deref(), Some("Information"));
    assert!(!marker.exists());
    node.expect_kind(EventKind::WatchdogArmed);
    node.stop();
}

#[test]
fn disabled_action_detects_nothing() {
    let mut node = Node::new(RecoveryAction::Disabled, 200, 200);
    let service = node.expect_kind(EventKind::ServiceStarted).pid;
    // Seed 001: action 0 disables the heartbeat too, not only the action.
    let running = node.collect_for(Duration::from_millis(400));
    assert!(
        running.iter().all(|e| e.kind() != EventKind::Heartbeat),
        "a service with action 0 sent heartbeats: {}",
        node.dump_seen()
    );
    signal(service, libc::SIGSTOP);
    let events = node.collect_for(Duration::from_millis(1200));
    signal(service, libc::SIGCONT);
    assert!(
        events.iter().all(|e| !matches!(
            e.kind(),
            EventKind::HangDetected | EventKind::WatchdogArmed | EventKind::Heartbeat
        )),
        "{}",
        node.dump_seen()
    );
    node.stop();
}

#[test]
fn a_killed_watchdog_is_restarted_and_rearmed_by_the_running_service() {
    let mut node = Node::new(RecoveryAction::Log, 400, 200);
    let first = node.expect_kind(EventKind::WatchdogStarted).pid;
    let service = node.expect_kind(EventKind::ServiceStarted).pid;
    node.expect_kind(EventKind::WatchdogArmed);
    signal(first, libc::SIGKILL);
    let second = node
        .expect("a new watchdog", |e| {
            e.kind() == EventKind::WatchdogStarted && e.pid != first
        })
        .pid;
    let armed = node.expect("the new watchdog armed", |e| {
        e.kind() == EventKind::WatchdogArmed && e.pid == second
    });
    assert_eq!(service_pid(&armed), service, "same service, not restarted");
    node.expect("a heartbeat seen by the new watchdog", |e| {
        e.kind() == EventKind::Heartbeat && e.pid == second
    });
    node.stop();
}

fn armed_timeout(e: &Event) -> u32 {
    match &e.data {
        EventData::WatchdogArmed(a) => a.timeout_ms,
        other => panic!("{other:?}"),
    }
}

/// Seed 001: "when the Cluster service stops for any reason, the ClusNet
/// driver automatically turns off the countdown timer", and "processes the
/// changes to these cluster properties only during the initialization of
/// the Cluster service".
#[test]
fn a_crash_or_a_stop_turns_the_countdown_off_and_settings_change_only_at_a_restart() {
    let mut node = Node::new(RecoveryAction::Terminate, 300, 1000);
    let first = node.expect_kind(EventKind::ServiceStarted).pid;
    let armed = node.expect_kind(EventKind::WatchdogArmed);
    assert_eq!(armed_timeout(&armed), 300);
    // A changed setting while the service runs: no effect.
    let db = ClusterDb {
        hang_timeout_ms: 700,
        hang_recovery_action: RecoveryAction::Terminate,
        service_restart_delay_ms: 1000,
        cluster: None,
    };
    std::fs::write(
        node.path().join("state/clusdb"),
        serde_json::to_vec(&db).unwrap(),
    )
    .unwrap();
    let running = node.collect_for(Duration::from_millis(500));
    assert!(
        running.iter().all(|e| e.kind() != EventKind::WatchdogArmed),
        "re-armed without a restart: {}",
        node.dump_seen()
    );
    // A hang now is judged by the value read at start (300 ms), not the
    // changed one (700 ms): detected, the service terminated (4870, 7031).
    signal(first, libc::SIGSTOP);
    let hang = node.expect("the hang, at the old timeout", |e| {
        e.kind() == EventKind::HangDetected && service_pid(e) == first
    });
    let h = hang_of(&hang);
    assert_eq!(h.timeout_ms, 300, "the setting read at start governs");
    assert_eq!(
        h.deadline_t - h.last_heartbeat_t,
        300 * MS,
        "counted down from the old value"
    );
    node.expect("7031 for the hung service", |e| {
        e.kind() == EventKind::ServiceTerminated && service_pid(e) == first
    });
    // The restart reads the new setting.
    let first = node
        .expect("the service restarted after the hang", |e| {
            e.kind() == EventKind::ServiceStarted && e.pid != first
        })
        .pid;
    let rearmed = node.expect("armed for the new service", |e| {
        e.kind() == EventKind::WatchdogArmed && service_pid(e) == first
    });
    assert_eq!(armed_timeout(&rearmed), 700, "read at the restart");
    // A crash: the countdown is switched off, nothing is detected while
    // the service is down (1000 ms, more than a timeout), 7031.
    signal(first, libc::SIGKILL);
    let down = node.collect_for(Duration::from_millis(900));
    assert!(
        down.iter().any(|e| e.kind() == EventKind::WatchdogDisarmed),
        "{}",
        node.dump_seen()
    );
    let term = down
        .iter()
        .find(|e| e.kind() == EventKind::ServiceTerminated)
        .unwrap_or_else(|| panic!("no 7031: {}", node.dump_seen()));
    assert_eq!(term.id, Some(7031));
    assert!(
        down.iter().all(|e| e.kind() != EventKind::HangDetected),
        "a crashed service was taken for a hung one: {}",
        node.dump_seen()
    );
    let second = node
        .expect("the service restarted after the crash", |e| {
            e.kind() == EventKind::ServiceStarted && e.pid != first
        })
        .pid;
    // A clean stop: disarmed, no detection, no 7031.
    signal(second, libc::SIGTERM);
    let stopped = node.collect_for(Duration::from_millis(1600));
    assert!(
        stopped.iter().any(|e| matches!(&e.data,
            EventData::WatchdogDisarmed(d) if d.reason == "service stopping")),
        "{}",
        node.dump_seen()
    );
    assert!(
        stopped.iter().all(|e| !matches!(
            e.kind(),
            EventKind::HangDetected | EventKind::ServiceTerminated
        )),
        "{}",
        node.dump_seen()
    );
    node.stop();
}
