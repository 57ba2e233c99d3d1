//! Where a process's events go: the harness's trace socket (one datagram per
//! event), the node's event log (`events.jsonl`) and the human cluster log
//! (`cluster.log`, in the seeds' `pid.tid::date-time LEVEL [COMPONENT] text`
//! style).
//!
//! Emitting never blocks and never fails: a missing or full trace socket
//! counts a drop, an unwritable log is skipped. Every event sent to the trace
//! socket is numbered (`Event.seq`, 1 for the first, dropped ones included),
//! so the harness sees a lost record as a jump; [`Emitter::stop`] reports the
//! drop count in an event and in the cluster log. Once the socket is
//! connected, sending an event reuses one buffer and allocates nothing. It
//! must not decide anything.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use crate::clock::monotonic_ns;
use crate::events::{EmitterStopped, Event, EventData, Source};
use crate::launch::NodeLaunch;

/// File name of the node's event log inside its folder.
pub const EVENTS_FILE: &str = "events.jsonl";
/// File name of the node's cluster log inside its folder.
pub const CLUSTER_LOG_FILE: &str = "cluster.log";

/// How often a missing trace socket is looked for again.
const RECONNECT_NS: u64 = 500_000_000;
/// Room reserved in the send buffer: a heartbeat is about 200 bytes, most
/// events under 1 KiB.
const BUFFER_BYTES: usize = 4096;

/// Severity of a cluster-log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `INFO`
    Info,
    /// `WARN`
    Warn,
    /// `ERR`
    Err,
}

impl Level {
    /// The word the cluster log uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Err => "ERR",
        }
    }

    /// The event-log type of an event emitted at this level.
    pub fn event_type(self) -> &'static str {
        match self {
            Level::Info => "Information",
            Level::Warn => "Warning",
            Level::Err => "Error",
        }
    }
}

/// One process's outlet for events.
#[derive(Debug)]
pub struct Emitter {
    node: String,
    source: Source,
    trace_path: PathBuf,
    socket: Option<UnixDatagram>,
    last_connect_ns: Option<u64>,
    events: Option<File>,
    cluster_log: Option<File>,
    /// The last sequence number given out.
    seq: u64,
    drops: u64,
    /// One buffer every datagram is serialized into.
    buf: Vec<u8>,
}

impl Emitter {
    /// Opens the node's logs and connects to the trace socket, tolerating
    /// failures of either.
    pub fn open(launch: &NodeLaunch, source: Source) -> Self {
        let append = |name: &str| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(launch.node_dir.join(name))
                .ok()
        };
        let mut e = Emitter {
            node: launch.node.clone(),
            source,
            trace_path: launch.trace_socket.clone(),
            socket: None,
            last_connect_ns: None,
            events: append(EVENTS_FILE),
            cluster_log: append(CLUSTER_LOG_FILE),
            seq: 0,
            drops: 0,
            buf: Vec::with_capacity(BUFFER_BYTES),
        };
        e.connect();
        e
    }

    /// A new event of this node and source, stamped now.
    pub fn event(&self, data: impl Into<EventData>) -> Event {
        Event::now(&self.node, self.source, data)
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Datagrams that could not be sent to the trace socket.
    pub fn drops(&self) -> u64 {
        self.drops
    }

    /// Events numbered so far (the last `seq` given out).
    pub fn numbered(&self) -> u64 {
        self.seq
    }

    /// Records `event` everywhere: event log, trace socket and cluster log
    /// (its message, or its kind when it has none). Sets its `seq`, and for
    /// a modelled id its event-log source and type.
    pub fn emit(&mut self, event: &mut Event, level: Level, component: &str) {
        self.record(event, level);
        if event.message.is_empty() {
            let text = serde_json::to_value(event.kind())
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            self.log(level, component, &text);
        } else {
            let text = std::mem::take(&mut event.message);
            self.log(level, component, &text);
            event.message = text;
        }
    }

    /// Records `event` in the event log and the trace, and writes
    /// `cluster_line` to the cluster log instead of its message: where the
    /// seeds show a cluster-log line that differs from the event's text
    /// (4870's `[ERR] Watchdog timer timeout ...`).
    pub fn emit_with_line(
        &mut self,
        event: &mut Event,
        level: Level,
        component: &str,
        cluster_line: &str,
    ) {
        self.record(event, level);
        self.log(level, component, cluster_line);
    }

    /// Records `event` in the event log and the trace only (no cluster-log
    /// line).
    pub fn record(&mut self, event: &mut Event, level: Level) {
        if let Some(id) = event.id {
            if event.log_source.is_none() {
                event.log_source = crate::events::texts::source_of(id).map(str::to_string);
            }
            event.log_type = Some(level.event_type().to_string());
        }
        if self.serialize(event) {
            self.send();
            self.buf.push(b'\n');
            if let Some(f) = self.events.as_mut() {
                let _ = f.write_all(&self.buf);
            }
        }
    }

    /// Sends `event` to the trace socket only: no file I/O and, once the
    /// socket is connected, no allocation (heartbeats). Sets its `seq`.
    pub fn trace_only(&mut self, event: &mut Event) {
        if self.serialize(event) {
            self.send();
        }
    }

    /// The process stops emitting: logs how many of its events never
    /// reached the trace socket and emits [`EventData::EmitterStopped`]
    /// saying so. Returns the drop count.
    pub fn stop(&mut self, component: &str) -> u64 {
        let numbered = self.seq + 1;
        let dropped = self.drops;
        let level = if dropped > 0 {
            Level::Warn
        } else {
            Level::Info
        };
        let mut ev = self
            .event(EmitterStopped { numbered, dropped })
            .message(format!(
                "{dropped} of {numbered} event(s) of this process could not be sent to the trace socket."
            ));
        self.emit(&mut ev, level, component);
        dropped
    }

    /// Numbers `event` and serializes it into the send buffer; false (and
    /// a drop) if it cannot be serialized.
    fn serialize(&mut self, event: &mut Event) -> bool {
        self.seq += 1;
        event.seq = self.seq;
        self.buf.clear();
        if serde_json::to_writer(&mut self.buf, event).is_err() {
            self.drops += 1;
            return false;
        }
        true
    }

    /// Writes one line to the cluster log only.
    pub fn log(&mut self, level: Level, component: &str, message: &str) {
        if let Some(f) = self.cluster_log.as_mut() {
            let line = cluster_log_line(
                std::process::id(),
                crate::sys::gettid(),
                wall_clock(),
                level,
                component,
                message,
            );
            let _ = f.write_all(line.as_bytes());
        }
    }

    fn connect(&mut self) {
        self.last_connect_ns = Some(monotonic_ns());
        let Ok(sock) = UnixDatagram::unbound() else {
            return;
        };
        if sock.connect(&self.trace_path).is_ok() && sock.set_nonblocking(true).is_ok() {
            self.socket = Some(sock);
        }
    }

    /// Sends the send buffer as one datagram, or counts a drop.
    fn send(&mut self) {
        if self.socket.is_none()
            && self
                .last_connect_ns
                .is_none_or(|t| monotonic_ns().saturating_sub(t) >= RECONNECT_NS)
        {
            self.connect();
        }
        let Some(sock) = self.socket.as_ref() else {
            self.drops += 1;
            return;
        };
        if let Err(e) = sock.send(&self.buf) {
            self.drops += 1;
            // The listener went away (or was replaced): look for it again.
            if matches!(
                e.raw_os_error(),
                Some(libc::ECONNREFUSED | libc::ENOTCONN | libc::ENOENT)
            ) {
                self.socket = None;
            }
        }
    }
}

/// UTC wall-clock time now, as (seconds, nanoseconds) since the epoch.
pub fn wall_clock() -> (i64, u32) {
    // SAFETY: plain data out-parameter.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer; CLOCK_REALTIME is always readable.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec as i64, ts.tv_nsec as u32)
}

/// One cluster-log line (with its newline), in the seeds' style:
/// `0000172a.0000077c::2009/07/20-14:42:13.623 INFO [CS] message`.
pub fn cluster_log_line(
    pid: u32,
    tid: u32,
    wall: (i64, u32),
    level: Level,
    component: &str,
    message: &str,
) -> String {
    // SAFETY: tm is plain data; gmtime_r fills it from a valid time_t.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        let secs = wall.0 as libc::time_t;
        libc::gmtime_r(&secs, &mut tm);
        tm
    };
    format!(
        "{pid:08x}.{tid:08x}::{:04}/{:02}/{:02}-{:02}:{:02}:{:02}.{:03} {} [{component}] {message}\n",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        wall.1 / 1_000_000,
        level.as_str(),
    )
}

/// Makes an I/O error name what it was about; `what` becomes a `String`
/// only on an error, so a hot loop may call this freely.
pub fn io_context<S: Into<String>>(what: S) -> impl FnOnce(io::Error) -> crate::StartError {
    move |source| crate::StartError::Io {
        what: what.into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Heartbeat, NodeStarted, ServiceStarted};

    #[test]
    fn cluster_log_line_has_the_seeds_format() {
        // 2009-07-20 14:42:13.623 UTC
        let line = cluster_log_line(
            0x1728,
            0x77c,
            (1_248_100_933, 623_456_789),
            Level::Info,
            "CS",
            "Cluster Service started - Cluster Node Version 5.2.3790",
        );
        assert_eq!(
            line,
            "00001728.0000077c::2009/07/20-14:42:13.623 INFO [CS] Cluster Service started - Cluster Node Version 5.2.3790\n"
        );
        let err = cluster_log_line(1, 2, (0, 0), Level::Err, "NM", "x");
        assert_eq!(
            err,
            "00000001.00000002::1970/01/01-00:00:00.000 ERR [NM] x\n"
        );
    }

    #[test]
    fn emit_writes_event_log_and_cluster_log_and_trace() {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("trace.sock");
        let listener = UnixDatagram::bind(&trace).unwrap();
        let launch = NodeLaunch::bare("r", "n1", dir.path(), dir.path(), &trace);
        let mut em = Emitter::open(&launch, Source::Supervisor);
        let mut ev = em.event(NodeStarted::default()).message("hello");
        em.emit(&mut ev, Level::Warn, "SM");
        assert_eq!(ev.seq, 1);
        let beat = Heartbeat {
            service_seq: 3,
            service_pid: 9,
            counted: true,
        };
        em.trace_only(&mut em.event(beat));
        let mut buf = [0u8; 4096];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(serde_json::from_slice::<Event>(&buf[..n]).unwrap(), ev);
        let n = listener.recv(&mut buf).unwrap();
        let hb: Event = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(hb.data, EventData::Heartbeat(beat));
        assert_eq!(hb.seq, 2, "heartbeats are numbered with the rest");
        let log = std::fs::read_to_string(dir.path().join(EVENTS_FILE)).unwrap();
        assert_eq!(log.lines().count(), 1, "heartbeats stay off the event log");
        let cl = std::fs::read_to_string(dir.path().join(CLUSTER_LOG_FILE)).unwrap();
        assert!(cl.ends_with(" WARN [SM] hello\n"), "{cl}");
        assert_eq!(em.drops(), 0);
    }

    #[test]
    fn a_missing_trace_socket_counts_drops_and_never_fails() {
        let dir = tempfile::tempdir().unwrap();
        let launch: NodeLaunch = serde_json::from_value(serde_json::json!({
            "run_id": "r", "node": "n", "node_dir": dir.path(), "state_dir": dir.path(),
            "trace_socket": dir.path().join("absent.sock"),
            "cgroups": {"service_procs": [], "watchdog_procs": [], "node_dirs": [],
                        "kill_file": null, "pressure_dir": null},
            "links": [], "watchdog_rt_priority": 0
        }))
        .unwrap();
        let mut em = Emitter::open(&launch, Source::Service);
        em.emit(&mut em.event(ServiceStarted::default()), Level::Info, "CS");
        assert_eq!(em.drops(), 1);
    }

    #[test]
    fn drops_are_numbered_and_reported_when_the_emitter_stops() {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("trace.sock");
        let launch = NodeLaunch::bare("r", "n1", dir.path(), dir.path(), &trace);
        // No listener yet: the first two events are dropped.
        let mut em = Emitter::open(&launch, Source::Watchdog);
        for _ in 0..2 {
            em.trace_only(&mut em.event(Heartbeat::default()));
        }
        assert_eq!((em.numbered(), em.drops()), (2, 2));
        let listener = UnixDatagram::bind(&trace).unwrap();
        em.socket = None;
        em.last_connect_ns = None;
        em.trace_only(&mut em.event(Heartbeat::default()));
        assert_eq!(em.stop("NM"), 2);
        let mut buf = [0u8; 4096];
        let n = listener.recv(&mut buf).unwrap();
        let third: Event = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(third.seq, 3, "the jump from 0 to 3 shows two lost");
        let n = listener.recv(&mut buf).unwrap();
        let last: Event = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(last.seq, 4);
        assert_eq!(
            last.data,
            EventData::EmitterStopped(EmitterStopped {
                numbered: 4,
                dropped: 2
            })
        );
        let cl = std::fs::read_to_string(dir.path().join(CLUSTER_LOG_FILE)).unwrap();
        assert!(
            cl.contains(" WARN [NM] 2 of 4 event(s) of this process could not be sent"),
            "{cl}"
        );
    }
}
