//! The trace collector: a unix datagram socket in the run's folder where every
//! agent of every node sends its events. A thread turns each datagram into a
//! trace record and hands it to the runner, preceded by a `gap` record when
//! the emitter's sequence number jumped (records it sent, or tried to, that
//! never arrived). It judges nothing.

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use faultline_agent::clock::monotonic_ns;
use faultline_agent::events::Event;

use crate::trace::{GapRecord, Record};

/// A running collector; [`Collector::stop`] ends its thread.
pub struct Collector {
    stop: Arc<AtomicBool>,
    malformed: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    /// Binds `path` and starts forwarding records to `tx`. With
    /// `queue_ns`, the socket is created in that network namespace (one of
    /// the run's) after raising its `net.unix.max_dgram_qlen` to
    /// [`QUEUE_LEN`]: a datagram socket's queue is as long as its creator's
    /// namespace says (10 by default), and agents that find it full drop
    /// their records, so a busy moment (every node starting at once on a
    /// loaded host) would leave gaps. The host's own setting is untouched.
    pub fn start(
        path: &Path,
        tx: Sender<Record>,
        queue_ns: Option<&Path>,
    ) -> std::io::Result<Collector> {
        let mut seqs = Sequences::new(monotonic_ns());
        let _ = std::fs::remove_file(path);
        let sock = match queue_ns {
            Some(ns) => bind_in(ns, path)?,
            None => UnixDatagram::bind(path)?,
        };
        sock.set_read_timeout(Some(Duration::from_millis(50)))?;
        set_rcvbuf(&sock, 4 << 20);
        let stop = Arc::new(AtomicBool::new(false));
        let malformed = Arc::new(AtomicU64::new(0));
        let (s, m) = (stop.clone(), malformed.clone());
        let thread = std::thread::Builder::new()
            .name("faultline-collector".into())
            .spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match sock.recv(&mut buf) {
                        Ok(n) => match serde_json::from_slice::<Event>(&buf[..n]) {
                            Ok(e) => {
                                if let Some(gap) = seqs.see(&e) {
                                    if tx.send(Record::Gap(gap)).is_err() {
                                        return;
                                    }
                                }
                                if tx.send(Record::Event(e)).is_err() {
                                    return;
                                }
                            }
                            Err(_) => {
                                m.fetch_add(1, Ordering::Relaxed);
                            }
                        },
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) =>
                        {
                            if s.load(Ordering::Relaxed) {
                                return;
                            }
                        }
                        Err(_) => return,
                    }
                }
            })?;
        Ok(Collector {
            stop,
            malformed,
            thread: Some(thread),
        })
    }

    /// Stops the thread once the socket is drained; returns how many
    /// datagrams were not events.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.malformed.load(Ordering::Relaxed)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The last sequence number and time seen per emitter (node, source, pid).
#[derive(Debug)]
pub struct Sequences {
    since: u64,
    /// (node, source as a number, pid) -> (seq, t).
    last: HashMap<(String, u8, u32), (u64, u64)>,
}

impl Sequences {
    /// Emitters counted from `since` (the collector's start: an emitter's
    /// first records lost are lost after it).
    pub fn new(since: u64) -> Self {
        Sequences {
            since,
            last: HashMap::new(),
        }
    }

    /// Notes `e`; the gap before it, if its emitter's number jumped.
    /// Unnumbered events (seq 0) and numbers at or below the last one seen
    /// (no loss to report) are not gaps.
    pub fn see(&mut self, e: &Event) -> Option<GapRecord> {
        if e.seq == 0 {
            return None;
        }
        let key = (e.node.clone(), e.source as u8, e.pid);
        let (last_seq, last_t) = self.last.get(&key).copied().unwrap_or((0, self.since));
        if e.seq <= last_seq {
            return None;
        }
        self.last.insert(key, (e.seq, e.t));
        let missing = e.seq - last_seq - 1;
        (missing > 0).then(|| GapRecord {
            t: e.t,
            node: e.node.clone(),
            source: e.source,
            pid: e.pid,
            after: last_t,
            missing,
        })
    }
}

/// How many datagrams the collector's socket queues before senders see it
/// full.
pub const QUEUE_LEN: u32 = 4096;

/// Binds `path` from a thread inside the namespace `ns`, whose datagram
/// queue length is raised to [`QUEUE_LEN`] first.
fn bind_in(ns: &Path, path: &Path) -> std::io::Result<UnixDatagram> {
    let (ns, path) = (ns.to_path_buf(), path.to_path_buf());
    std::thread::Builder::new()
        .name("faultline-collector-bind".into())
        .spawn(move || {
            faultline_sys::netns::enter(&ns).map_err(std::io::Error::other)?;
            let qlen = "/proc/sys/net/unix/max_dgram_qlen";
            std::fs::write(qlen, QUEUE_LEN.to_string())
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot write {qlen}: {e}")))?;
            UnixDatagram::bind(&path)
        })?
        .join()
        .map_err(|_| std::io::Error::other("the collector's bind thread panicked"))?
}

fn set_rcvbuf(sock: &UnixDatagram, bytes: i32) {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt on a valid fd with a pointer to a live i32.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_agent::events::{EventKind, Source};

    fn datagram(node: &str, source: Source, pid: u32, seq: u64, t: u64) -> Vec<u8> {
        let mut e = Event::now(node, source, EventKind::Heartbeat.default_data());
        e.pid = pid;
        e.seq = seq;
        e.t = t;
        serde_json::to_vec(&e).unwrap()
    }

    fn gaps(datagrams: &[Vec<u8>]) -> Vec<GapRecord> {
        let mut seqs = Sequences::new(100);
        datagrams
            .iter()
            .filter_map(|d| seqs.see(&serde_json::from_slice::<Event>(d).unwrap()))
            .collect()
    }

    #[test]
    fn a_jump_in_one_emitters_numbers_is_a_gap_between_its_records() {
        let got = gaps(&[
            datagram("n1", Source::Watchdog, 7, 1, 1000),
            datagram("n1", Source::Watchdog, 7, 2, 2000),
            datagram("n1", Source::Watchdog, 7, 5, 5000),
            datagram("n1", Source::Watchdog, 7, 6, 6000),
        ]);
        assert_eq!(
            got,
            vec![GapRecord {
                t: 5000,
                node: "n1".into(),
                source: Source::Watchdog,
                pid: 7,
                after: 2000,
                missing: 2,
            }]
        );
    }

    #[test]
    fn emitters_are_counted_apart_by_node_source_and_pid() {
        let got = gaps(&[
            datagram("n1", Source::Watchdog, 7, 1, 1000),
            datagram("n2", Source::Watchdog, 7, 1, 1100),
            datagram("n1", Source::Service, 7, 1, 1200),
            datagram("n1", Source::Watchdog, 8, 1, 1300),
            datagram("n1", Source::Watchdog, 7, 2, 1400),
            datagram("n2", Source::Watchdog, 7, 2, 1500),
        ]);
        assert_eq!(got, vec![]);
    }

    #[test]
    fn an_emitters_first_records_lost_are_a_gap_after_the_collector_started() {
        let got = gaps(&[datagram("n1", Source::Service, 9, 4, 900)]);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].after, got[0].t, got[0].missing), (100, 900, 3));
    }

    #[test]
    fn unnumbered_and_repeated_numbers_are_no_gap() {
        let got = gaps(&[
            datagram("n1", Source::Watchdog, 7, 0, 1000),
            datagram("n1", Source::Watchdog, 7, 0, 2000),
            datagram("n1", Source::Watchdog, 7, 1, 3000),
            datagram("n1", Source::Watchdog, 7, 1, 3500),
            datagram("n1", Source::Watchdog, 7, 2, 4000),
        ]);
        assert_eq!(got, vec![]);
    }

    #[test]
    fn the_collector_puts_the_gap_before_the_record_after_it() {
        let dir = std::env::temp_dir().join(format!("faultline-coll-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("trace.sock");
        let (tx, rx) = crossbeam_channel::unbounded();
        let c = Collector::start(&path, tx, None).unwrap();
        let sender = UnixDatagram::unbound().unwrap();
        let now = monotonic_ns();
        for (seq, t) in [(1, now + 1), (3, now + 3)] {
            sender
                .send_to(&datagram("n1", Source::Watchdog, 7, seq, t), &path)
                .unwrap();
        }
        sender.send_to(b"not an event", &path).unwrap();
        let first = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let second = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let third = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(
            matches!(first, Record::Event(ref e) if e.seq == 1),
            "{first:?}"
        );
        assert!(
            matches!(second, Record::Gap(ref g) if g.missing == 1 && g.after == now + 1 && g.t == now + 3),
            "{second:?}"
        );
        assert!(
            matches!(third, Record::Event(ref e) if e.seq == 3),
            "{third:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(c.stop(), 1, "one malformed datagram");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Regression: with the host's queue of 10 datagrams, agents starting
    /// together on a loaded host dropped records (gaps in the seed suites).
    #[test]
    fn root_the_socket_made_in_a_run_namespace_queues_thousands() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root");
            return;
        }
        let name = format!("fl-test-collector-{}", std::process::id());
        let ns = faultline_faults::netns::NetNs::create(&name).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.sock");
        let bound = bind_in(&ns.path(), &path);
        let queued = bound.map(|sock| {
            let sender = UnixDatagram::unbound().unwrap();
            sender.set_nonblocking(true).unwrap();
            let n = (0..1000)
                .take_while(|_| sender.send_to(b"x", &path).is_ok())
                .count();
            drop(sock);
            n
        });
        ns.delete().unwrap();
        // The host's default queues 10; past that, one sender is bounded
        // by its own send buffer (a few hundred small datagrams).
        let queued = queued.unwrap();
        assert!(queued > 100, "the queue filled up after {queued} datagrams");
    }
}
