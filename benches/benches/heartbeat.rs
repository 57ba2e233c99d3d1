//! The watchdog's heartbeat path: how many heartbeats per second one
//! watchdog takes, each received, counted and recorded, without missing a
//! deadline. The watchdog runs in-process on a thread (as
//! `agents/tests/heartbeat_alloc.rs` runs it: priority 0, so no root is
//! needed); one iteration is one heartbeat sent and its record received on
//! the trace socket, so criterion's throughput line is heartbeats per
//! second. The service arms it with a 250 ms timeout for each batch of
//! iterations (and disarms it after, outside the measured time), far more
//! than a round trip takes: a hang detected while armed is a missed
//! deadline and fails the bench.

use std::hint::black_box;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use faultline_agent::events::{Event, EventData, EventKind, RecoveryAction};
use faultline_agent::launch::{NodeLaunch, LAUNCH_FILE};
use faultline_agent::protocol::{watchdog_socket_name, Message, MessageKind};

/// The timeout the bench's service arms its watchdog with.
const HANG_TIMEOUT_MS: u32 = 250;

struct Rig {
    _dir: tempfile::TempDir,
    trace: UnixDatagram,
    service: UnixDatagram,
    watchdog: SocketAddr,
    seq: u64,
    buf: Vec<u8>,
}

impl Rig {
    fn start() -> Rig {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let node = format!("hbbench{}", std::process::id());
        let trace_path = dir.path().join("trace.sock");
        let trace = UnixDatagram::bind(&trace_path).expect("bind the trace socket");
        trace
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("a read timeout");
        let launch = NodeLaunch::bare("bench", &node, dir.path(), dir.path(), &trace_path);
        std::fs::write(
            dir.path().join(LAUNCH_FILE),
            serde_json::to_vec(&launch).expect("launch serializes"),
        )
        .expect("write the launch file");
        let node_dir = dir.path().to_path_buf();
        std::thread::spawn(move || {
            let _ = faultline_agent::watchdog::run(&node_dir);
        });
        let watchdog = SocketAddr::from_abstract_name(watchdog_socket_name(&node).as_bytes())
            .expect("an abstract name");
        let mut rig = Rig {
            _dir: dir,
            trace,
            service: UnixDatagram::unbound().expect("a service socket"),
            watchdog,
            seq: 0,
            buf: vec![0; 65536],
        };
        rig.wait(EventKind::WatchdogStarted);
        rig
    }

    /// Arms the watchdog, as a starting service does.
    fn arm(&mut self) {
        self.send(MessageKind::Hello);
        self.wait(EventKind::WatchdogArmed);
    }

    /// Disarms it, as a stopping service does; a hang detected before
    /// the disarm fails the bench.
    fn disarm(&mut self) {
        self.send(MessageKind::Stopping);
        self.wait(EventKind::WatchdogDisarmed);
    }

    fn send(&mut self, kind: MessageKind) {
        let m = Message {
            kind,
            pid: std::process::id(),
            hang_timeout_ms: HANG_TIMEOUT_MS,
            action: RecoveryAction::Log,
            seq: self.seq,
        };
        self.service
            .send_to_addr(&m.encode(), &self.watchdog)
            .expect("the watchdog's socket takes it");
    }

    /// The next record of `kind`; panics on a detected hang or after 5 s.
    fn wait(&mut self, kind: EventKind) -> Event {
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(n) = self.trace.recv(&mut self.buf) {
                let e: Event = serde_json::from_slice(&self.buf[..n]).expect("a valid event");
                if e.kind() == EventKind::HangDetected {
                    panic!("the watchdog missed a deadline during the bench: {e:?}");
                }
                if e.kind() == kind {
                    return e;
                }
            }
        }
        panic!("no {kind:?} within 5 s");
    }

    /// One heartbeat: sent, then its record received.
    fn beat(&mut self) {
        self.seq += 1;
        self.send(MessageKind::Heartbeat);
        let e = self.wait(EventKind::Heartbeat);
        match e.data {
            EventData::Heartbeat(b) => assert_eq!(b.service_seq, self.seq, "in order"),
            other => panic!("{other:?}"),
        }
        black_box(e);
    }
}

fn bench(c: &mut Criterion) {
    let mut rig = Rig::start();
    let mut group = c.benchmark_group("watchdog");
    group.throughput(Throughput::Elements(1));
    group.bench_function("heartbeat received and recorded", |b| {
        b.iter_custom(|iters| {
            // Armed only while measured: criterion's pauses between
            // batches are not the service's.
            rig.arm();
            let start = Instant::now();
            for _ in 0..iters {
                rig.beat();
            }
            let took = start.elapsed();
            rig.disarm();
            took
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
