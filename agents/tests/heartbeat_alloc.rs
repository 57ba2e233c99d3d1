//! The watchdog's heartbeat path allocates nothing once running (a
//! SCHED_FIFO process with locked memory must not enter the allocator per
//! heartbeat). A test binary of its own, because it installs a counting
//! global allocator; it counts only the watchdog's thread.
//!
//! The watchdog runs in-process on a thread (no root needed: priority 0, and
//! a failed mlockall only logs). Its socket name is unique to this process.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use faultline_agent::events::{Event, EventData, EventKind, RecoveryAction};
use faultline_agent::launch::{NodeLaunch, LAUNCH_FILE};
use faultline_agent::protocol::{watchdog_socket_name, Message, MessageKind};

/// Allocations (and reallocations) made by threads that asked to be counted.
static COUNTED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNT_ME: Cell<bool> = const { Cell::new(false) };
}

struct Counting;

impl Counting {
    fn note(&self) {
        if COUNT_ME.with(Cell::get) {
            COUNTED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.note();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.note();
        // SAFETY: forwarded with the caller's pointer and layouts.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.note();
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn recv_kind(trace: &UnixDatagram, kind: EventKind) -> Event {
    let mut buf = [0u8; 65536];
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if let Ok(n) = trace.recv(&mut buf) {
            let e: Event = serde_json::from_slice(&buf[..n]).expect("the collector parses it");
            if e.kind() == kind {
                return e;
            }
        }
    }
    panic!("no {kind:?} within 5 s");
}

#[test]
fn a_running_watchdog_allocates_nothing_per_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let node = format!("alloc{}", std::process::id());
    let trace_path = dir.path().join("trace.sock");
    let trace = UnixDatagram::bind(&trace_path).unwrap();
    trace
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let launch = NodeLaunch::bare("r", &node, dir.path(), dir.path(), &trace_path);
    std::fs::write(
        dir.path().join(LAUNCH_FILE),
        serde_json::to_vec(&launch).unwrap(),
    )
    .unwrap();
    let node_dir = dir.path().to_path_buf();
    std::thread::spawn(move || {
        COUNT_ME.with(|c| c.set(true));
        let _ = faultline_agent::watchdog::run(&node_dir);
    });
    recv_kind(&trace, EventKind::WatchdogStarted);

    let service = UnixDatagram::unbound().unwrap();
    let addr = SocketAddr::from_abstract_name(watchdog_socket_name(&node).as_bytes()).unwrap();
    let send = |kind, seq| {
        let m = Message {
            kind,
            pid: std::process::id(),
            hang_timeout_ms: 60_000,
            action: RecoveryAction::Log,
            seq,
        };
        service.send_to_addr(&m.encode(), &addr).unwrap();
    };
    send(MessageKind::Hello, 0);
    recv_kind(&trace, EventKind::WatchdogArmed);
    // Warm up: the first heartbeats may grow what is reused afterwards.
    let mut seq = 0;
    let mut last_record = 0;
    for _ in 0..100 {
        seq += 1;
        send(MessageKind::Heartbeat, seq);
        last_record = recv_kind(&trace, EventKind::Heartbeat).seq;
    }
    let before = COUNTED.load(Ordering::SeqCst);
    for _ in 0..500 {
        seq += 1;
        send(MessageKind::Heartbeat, seq);
        let hb = recv_kind(&trace, EventKind::Heartbeat);
        assert_eq!(hb.seq, last_record + 1, "numbered without a gap");
        last_record = hb.seq;
        match hb.data {
            EventData::Heartbeat(b) => assert!(b.service_seq == seq && b.counted),
            other => panic!("{other:?}"),
        }
    }
    let during = COUNTED.load(Ordering::SeqCst) - before;
    assert_eq!(during, 0, "the heartbeat path allocated {during} time(s)");

    // The counter does see the watchdog: a hang (log action) allocates.
    send(MessageKind::Stopping, seq);
    recv_kind(&trace, EventKind::WatchdogDisarmed);
    assert!(
        COUNTED.load(Ordering::SeqCst) > before,
        "the allocator counts the watchdog's thread"
    );
}
