//! The ARP observer: a thread in the run's switch namespace that watches
//! each bridge with an AF_PACKET socket (ETH_P_ALL, promiscuous so the
//! bridge passes up the unicast replies it forwards between ports) and
//! reports every ARP reply, announcement and probe as an [`ArpSeen`].
//!
//! This is how the harness sees two nodes answering for one address, which
//! no node can report about itself. It must not send frames.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::Sender;

use super::worker::{StartFailure, ThreadError, Worker};
use faultline_agent::arp::{ArpError, ArpKind, ArpSocket, MacAddr};
use faultline_agent::clock::monotonic_ns;
use faultline_sys::netns::{Netns, NetnsError};
use serde::{Deserialize, Serialize};

/// How often the thread looks at its stop flag.
const POLL_MS: libc::c_int = 50;

/// One ARP reply, announcement or probe seen on a bridge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArpSeen {
    /// When the observer read it: CLOCK_MONOTONIC, nanoseconds.
    pub t: u64,
    /// The bridge it crossed.
    pub bridge: String,
    /// What it was.
    pub op: ArpKind,
    /// Sender IP (0.0.0.0 for a probe).
    pub sender_ip: Ipv4Addr,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Target IP.
    pub target_ip: Ipv4Addr,
}

/// Starting or running the observer failed.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The namespace could not be opened or entered.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// A socket on a bridge failed.
    #[error(transparent)]
    Arp(#[from] ArpError),
    /// The thread could not run.
    #[error(transparent)]
    Thread(#[from] ThreadError),
}

/// A running observer. [`ArpObserver::stop`] (or drop) ends its thread
/// within about 50 ms and closes its sockets.
#[derive(Debug)]
pub struct ArpObserver {
    worker: Worker<Result<(), ObserveError>>,
}

impl ArpObserver {
    /// Starts watching `ifaces` (bridge names) of the network namespace at
    /// `netns_path`, sending each record to `tx`. Returns once every socket
    /// is open, so nothing sent afterwards is missed.
    pub fn start(
        netns_path: &Path,
        ifaces: &[&str],
        tx: Sender<ArpSeen>,
    ) -> Result<ArpObserver, ObserveError> {
        let ns = Netns::open(netns_path)?;
        let ifaces: Vec<String> = ifaces.iter().map(|s| s.to_string()).collect();
        let worker = Worker::start(
            "faultline-arp-observer",
            move || open_in(&ns, &ifaces),
            move |socks: Vec<ArpSocket>, stop| watch(&socks, stop, &tx),
        )
        .map_err(StartFailure::<ObserveError>::into_error)?;
        Ok(ArpObserver { worker })
    }

    /// Stops the thread and reports how it ended.
    pub fn stop(mut self) -> Result<(), ObserveError> {
        self.worker.stop()?.unwrap_or(Ok(()))
    }
}

/// Enters the namespace (this thread only) and opens one socket per bridge.
fn open_in(ns: &Netns, ifaces: &[String]) -> Result<Vec<ArpSocket>, ObserveError> {
    ns.enter()?;
    ifaces
        .iter()
        .map(|iface| {
            let sock = ArpSocket::open(iface)?;
            sock.set_promiscuous()?;
            Ok(sock)
        })
        .collect()
}

/// The thread's loop: poll every socket, drain the ready ones.
fn watch(socks: &[ArpSocket], stop: &AtomicBool, tx: &Sender<ArpSeen>) -> Result<(), ObserveError> {
    let mut fds: Vec<libc::pollfd> = socks
        .iter()
        .map(|s| libc::pollfd {
            fd: s.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: fds is a valid array of pollfd of the given length.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, POLL_MS) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(ArpError::Io {
                what: "poll the bridges' sockets".into(),
                source: e,
            }
            .into());
        }
        for (sock, pfd) in socks.iter().zip(&fds) {
            if pfd.revents == 0 {
                continue;
            }
            while let Some(got) = sock.try_recv_arp()? {
                if let Some(seen) = record(sock.iface(), &got.frame.arp) {
                    if tx.send(seen).is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }
    Ok(())
}

/// The record for a packet worth keeping: replies, announcements, probes.
fn record(bridge: &str, arp: &faultline_agent::arp::ArpPacket) -> Option<ArpSeen> {
    let op = arp.kind();
    if op == ArpKind::Request {
        return None;
    }
    Some(ArpSeen {
        t: monotonic_ns(),
        bridge: bridge.to_string(),
        op,
        sender_ip: arp.sender_ip,
        sender_mac: arp.sender_mac,
        target_ip: arp.target_ip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_agent::arp::ArpFrame;

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 9]);
    const IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
    const IP2: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

    #[test]
    fn plain_requests_are_not_recorded_the_rest_are() {
        assert_eq!(record("br", &ArpFrame::request(MAC, IP2, IP).arp), None);
        for (frame, op) in [
            (ArpFrame::reply(MAC, IP, MAC, IP2), ArpKind::Reply),
            (ArpFrame::announcement(MAC, IP), ArpKind::Announcement),
            (ArpFrame::probe(MAC, IP), ArpKind::Probe),
        ] {
            let seen = record("br-public", &frame.arp).unwrap();
            assert_eq!(seen.op, op);
            assert_eq!(seen.bridge, "br-public");
            assert_eq!(seen.sender_mac, MAC);
        }
    }

    #[test]
    fn a_record_serializes_as_flat_json_with_text_addresses() {
        let seen = ArpSeen {
            t: 5,
            bridge: "br-public".into(),
            op: ArpKind::Reply,
            sender_ip: IP,
            sender_mac: MAC,
            target_ip: IP2,
        };
        let json = serde_json::to_string(&seen).unwrap();
        assert_eq!(
            json,
            r#"{"t":5,"bridge":"br-public","op":"reply","sender_ip":"10.99.0.1","sender_mac":"02:00:00:00:00:09","target_ip":"10.99.0.2"}"#
        );
        assert_eq!(serde_json::from_str::<ArpSeen>(&json).unwrap(), seen);
    }

    #[test]
    fn a_missing_namespace_is_an_open_error() {
        let (tx, _rx) = crossbeam_channel::unbounded();
        let err =
            ArpObserver::start(Path::new("/run/netns/fltest-none-such"), &["br"], tx).unwrap_err();
        assert!(
            matches!(err, ObserveError::Netns(NetnsError::Open { .. })),
            "{err}"
        );
    }
}
