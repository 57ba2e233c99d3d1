//! The client prober: a thread in a client namespace that, every interval,
//! connects over TCP to each target (a group's floating address) and reads
//! one line, the name of the node that answered; each attempt becomes a
//! [`ClientProbe`].
//!
//! This is the harness's view of availability as a client sees it: how
//! long a group could not be reached during a failover, and who answered.
//! It must connect only to the targets it is given (addresses inside the
//! run's namespaces), send nothing on the connections it opens, and keep
//! every attempt bounded by its timeout.

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use faultline_agent::arp::{ArpFrame, ArpSocket};

use super::worker::{StartFailure, ThreadError, Worker};
use faultline_agent::clock::monotonic_ns;
use faultline_sys::netns::{Netns, NetnsError};
use serde::{Deserialize, Serialize};

/// The longest line read from a server; more is an error.
const MAX_LINE: usize = 256;
/// The longest the thread sleeps without looking at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// One attempt to reach a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientProbe {
    /// When the attempt started: CLOCK_MONOTONIC, nanoseconds.
    pub t: u64,
    /// When it finished (answered, failed or timed out).
    pub done: u64,
    /// The group probed.
    pub group: String,
    /// The address probed.
    pub ip: Ipv4Addr,
    /// The line the server sent, trimmed; `None` if none came.
    pub answered_by: Option<String>,
    /// Why there was no answer; `None` when answered.
    pub error: Option<String>,
}

/// Starting or running the client failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The arguments cannot make a working client.
    #[error("invalid client setup: {0}")]
    Invalid(String),
    /// The namespace could not be opened or entered.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// The thread could not run.
    #[error(transparent)]
    Thread(#[from] ThreadError),
}

/// A running client. [`Client::stop`] (or drop) ends its thread after the
/// attempt in progress, i.e. within about twice the timeout.
#[derive(Debug)]
pub struct Client {
    worker: Worker<()>,
}

impl Client {
    /// Starts probing `targets` (group, address) from the namespace at
    /// `netns`, one target after the other, a round every `interval`; each
    /// connect and each read waits at most `timeout`. With `ask_arp`
    /// (interface, own IP), each round also broadcasts an ARP request for
    /// every target's IP, so that every holder answers on the wire where the
    /// bridge observer sees it. Returns once the thread is inside the
    /// namespace.
    pub fn start(
        netns: PathBuf,
        targets: Vec<(String, SocketAddrV4)>,
        interval: Duration,
        timeout: Duration,
        ask_arp: Option<(String, Ipv4Addr)>,
        tx: Sender<ClientProbe>,
    ) -> Result<Client, ClientError> {
        if interval.is_zero() || timeout.is_zero() {
            return Err(ClientError::Invalid(
                "the interval and the timeout must be above zero".into(),
            ));
        }
        let ns = Netns::open(&netns)?;
        let worker = Worker::start(
            "faultline-client",
            move || {
                ns.enter()?;
                drop(ns);
                match ask_arp {
                    Some((iface, ip)) => ArpSocket::open(&iface)
                        .map(|sock| Some((sock, ip)))
                        .map_err(|e| {
                            ClientError::Invalid(format!(
                                "cannot open an ARP socket on {iface}: {e}"
                            ))
                        }),
                    None => Ok(None),
                }
            },
            move |asker: Option<(ArpSocket, Ipv4Addr)>, stop| {
                run(&targets, interval, timeout, asker.as_ref(), stop, &tx)
            },
        )
        .map_err(StartFailure::<ClientError>::into_error)?;
        Ok(Client { worker })
    }

    /// Stops the thread.
    pub fn stop(mut self) -> Result<(), ClientError> {
        self.worker.stop().map(|_| ()).map_err(ClientError::from)
    }
}

/// The thread's loop: a round over the targets every `interval`.
fn run(
    targets: &[(String, SocketAddrV4)],
    interval: Duration,
    timeout: Duration,
    asker: Option<&(ArpSocket, Ipv4Addr)>,
    stop: &AtomicBool,
    tx: &Sender<ClientProbe>,
) {
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(STOP_CHECK));
            continue;
        }
        if let Some((sock, me)) = asker {
            // Who has each virtual IP? Every holder answers; what comes back
            // to this socket is not needed (the bridge observer records it).
            for (_, addr) in targets {
                let _ = sock.send(&ArpFrame::request(sock.mac(), *me, *addr.ip()));
            }
            while let Ok(Some(_)) = sock.try_recv_arp() {}
        }
        for (group, addr) in targets {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if tx.send(probe(group, *addr, timeout)).is_err() {
                return;
            }
        }
        // Skip ticks that a slow round missed rather than bunching up.
        next += interval;
        if next < Instant::now() {
            next = Instant::now() + interval;
        }
    }
}

/// One attempt: connect, read a line.
fn probe(group: &str, addr: SocketAddrV4, timeout: Duration) -> ClientProbe {
    let t = monotonic_ns();
    let got = ask(addr, timeout);
    let done = monotonic_ns();
    let (answered_by, error) = match got {
        Ok(line) => (Some(line), None),
        Err(e) => (None, Some(e)),
    };
    ClientProbe {
        t,
        done,
        group: group.to_string(),
        ip: *addr.ip(),
        answered_by,
        error,
    }
}

/// The first line the server at `addr` sends, trimmed; or why not.
fn ask(addr: SocketAddrV4, timeout: Duration) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&SocketAddr::V4(addr), timeout)
        .map_err(|e| format!("connect: {e}"))?;
    let deadline = Instant::now() + timeout;
    read_line(&mut stream, deadline)
}

/// Reads up to the first newline, the end of the stream or `MAX_LINE`
/// bytes, whichever comes first, giving up at `deadline`.
fn read_line(stream: &mut TcpStream, deadline: Instant) -> Result<String, String> {
    let mut line = Vec::new();
    let mut buf = [0u8; MAX_LINE];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("read: timed out".into());
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| format!("read: {e}"))?;
        let n = match stream.read(&mut buf[..MAX_LINE - line.len()]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err("read: timed out".into())
            }
            Err(e) => return Err(format!("read: {e}")),
        };
        line.extend_from_slice(&buf[..n]);
        if let Some(end) = line.iter().position(|&b| b == b'\n') {
            line.truncate(end);
            break;
        }
        if n == 0 {
            break;
        }
        if line.len() >= MAX_LINE {
            return Err(format!("read: no newline in the first {MAX_LINE} bytes"));
        }
    }
    let text = String::from_utf8_lossy(&line).trim().to_string();
    if text.is_empty() {
        return Err("read: closed without an answer".into());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    /// A one-shot server on loopback that sends `reply` then closes.
    fn serve_once(reply: &'static [u8]) -> SocketAddrV4 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(addr) = listener.local_addr().unwrap() else {
            unreachable!("bound to an IPv4 address")
        };
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let _ = s.write_all(reply);
        });
        addr
    }

    #[test]
    fn the_first_line_trimmed_is_the_answer() {
        let p = probe("g", serve_once(b" a \nrest\n"), Duration::from_secs(2));
        assert_eq!(p.answered_by.as_deref(), Some("a"), "{p:?}");
        assert_eq!(p.error, None);
        assert_eq!(p.group, "g");
        assert_eq!(p.ip, Ipv4Addr::LOCALHOST);
        assert!(p.t <= p.done);
    }

    #[test]
    fn a_line_without_newline_before_close_still_counts() {
        let p = probe("g", serve_once(b"b"), Duration::from_secs(2));
        assert_eq!(p.answered_by.as_deref(), Some("b"), "{p:?}");
    }

    #[test]
    fn closing_without_a_word_is_an_error() {
        let p = probe("g", serve_once(b""), Duration::from_secs(2));
        assert_eq!(p.answered_by, None);
        assert!(p.error.unwrap().contains("closed"));
    }

    #[test]
    fn a_silent_server_times_out_within_the_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(addr) = listener.local_addr().unwrap() else {
            unreachable!("bound to an IPv4 address")
        };
        let timeout = Duration::from_millis(100);
        let p = probe("g", addr, timeout);
        drop(listener);
        assert_eq!(p.error.as_deref(), Some("read: timed out"), "{p:?}");
        let took = Duration::from_nanos(p.done - p.t);
        assert!(took >= timeout && took < timeout * 3, "{took:?}");
    }

    #[test]
    fn a_closed_port_is_a_connect_error() {
        let addr = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            match l.local_addr().unwrap() {
                SocketAddr::V4(a) => a,
                SocketAddr::V6(_) => unreachable!("bound to an IPv4 address"),
            }
        };
        let p = probe("g", addr, Duration::from_secs(1));
        assert!(p.error.unwrap().starts_with("connect:"));
    }

    #[test]
    fn a_record_serializes_as_flat_json() {
        let p = ClientProbe {
            t: 1,
            done: 2,
            group: "web".into(),
            ip: Ipv4Addr::new(10, 99, 0, 100),
            answered_by: Some("a".into()),
            error: None,
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"t":1,"done":2,"group":"web","ip":"10.99.0.100","answered_by":"a","error":null}"#
        );
        assert_eq!(serde_json::from_str::<ClientProbe>(&json).unwrap(), p);
    }

    #[test]
    fn a_missing_namespace_or_zero_timeout_is_refused() {
        let (tx, _rx) = crossbeam_channel::unbounded();
        let target = vec![("g".to_string(), SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1))];
        let err = Client::start(
            "/run/netns/fltest-none-such".into(),
            target.clone(),
            Duration::from_millis(10),
            Duration::from_millis(10),
            None,
            tx.clone(),
        )
        .unwrap_err();
        assert!(
            matches!(err, ClientError::Netns(NetnsError::Open { .. })),
            "{err}"
        );
        let err = Client::start(
            "/proc/self/ns/net".into(),
            target,
            Duration::from_millis(10),
            Duration::ZERO,
            None,
            tx,
        )
        .unwrap_err();
        assert!(matches!(err, ClientError::Invalid(_)), "{err}");
    }
}
