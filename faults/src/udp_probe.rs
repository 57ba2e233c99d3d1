//! Probe datagrams between namespaces: the proof that a network cut holds
//! (a datagram sent across it does not arrive) or does not (one sent the
//! other way, or after healing, does).
//!
//! A probe runs on a thread of its own, which enters the receiver's
//! namespace to open a listener and then the sender's to send: sockets stay
//! in the namespace they were opened in. It sends one small datagram per
//! probe, only between the addresses it is given; it must not be used
//! towards anything outside the run's namespaces.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use faultline_sys::error::chain;
use faultline_sys::netns;

/// One side of a probe: a namespace and an address in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// For messages, like `n1 public`.
    pub label: String,
    /// The namespace file (`/run/netns/NAME`).
    pub ns: PathBuf,
    /// The address the socket binds to.
    pub ip: Ipv4Addr,
}

/// How a probe went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It arrived after this long.
    Arrived(Duration),
    /// It did not arrive within the wait.
    Lost(Duration),
}

/// Sends one datagram from `from` to `to` and waits up to `wait` for it to
/// arrive.
pub fn probe(from: &Endpoint, to: &Endpoint, wait: Duration) -> Result<Outcome, String> {
    let (from, to) = (from.clone(), to.clone());
    std::thread::spawn(move || run(&from, &to, wait))
        .join()
        .map_err(|_| "the probe thread panicked".to_string())?
}

fn run(from: &Endpoint, to: &Endpoint, wait: Duration) -> Result<Outcome, String> {
    netns::enter(&to.ns).map_err(|e| chain(&e))?;
    let listener = UdpSocket::bind(SocketAddrV4::new(to.ip, 0))
        .map_err(|e| format!("cannot listen on {} ({}): {e}", to.ip, to.label))?;
    let target = match listener.local_addr() {
        Ok(std::net::SocketAddr::V4(a)) => a,
        other => return Err(format!("listener address: {other:?}")),
    };
    netns::enter(&from.ns).map_err(|e| chain(&e))?;
    let sender = UdpSocket::bind(SocketAddrV4::new(from.ip, 0))
        .map_err(|e| format!("cannot bind {} ({}): {e}", from.ip, from.label))?;
    let token = format!(
        "faultline-probe {} {}",
        std::process::id(),
        faultline_sys::clock::monotonic_ns()
    );
    let start = Instant::now();
    sender
        .send_to(token.as_bytes(), target)
        .map_err(|e| format!("cannot send {} -> {target}: {e}", from.label))?;
    let mut buf = [0u8; 128];
    loop {
        let left = wait.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ok(Outcome::Lost(start.elapsed()));
        }
        listener
            .set_read_timeout(Some(left))
            .map_err(|e| e.to_string())?;
        match listener.recv(&mut buf) {
            Ok(n) if &buf[..n] == token.as_bytes() => return Ok(Outcome::Arrived(start.elapsed())),
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(format!("receiving on {}: {e}", to.label)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_namespace_is_an_error_not_a_loss() {
        let e = Endpoint {
            label: "nowhere".into(),
            ns: "/nonexistent/ns".into(),
            ip: Ipv4Addr::LOCALHOST,
        };
        let err = probe(&e, &e, Duration::from_millis(10)).unwrap_err();
        assert!(err.contains("/nonexistent/ns"), "{err}");
    }

    #[test]
    fn a_probe_on_loopback_of_this_namespace_arrives() {
        let here = Endpoint {
            label: "here".into(),
            ns: "/proc/self/ns/net".into(),
            ip: Ipv4Addr::LOCALHOST,
        };
        match probe(&here, &here, Duration::from_secs(2)) {
            Ok(Outcome::Arrived(_)) => {}
            // Entering a namespace needs CAP_SYS_ADMIN.
            Err(e) if e.contains("cannot enter") => {}
            other => panic!("{other:?}"),
        }
    }
}
