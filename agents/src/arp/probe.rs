//! RFC 5227 address conflict detection and announcement on an
//! [`ArpSocket`]: probe an IPv4 address before taking it, announce it
//! after. The timers are settings ([`ProbeTimers`]); nothing here
//! configures addresses or decides what a conflict means for a group.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::frame::{ArpFrame, ArpKind, MacAddr};
use super::socket::{ArpSocket, Received};
use super::ArpError;

/// RFC 5227's timers (section 1.1), here settings rather than constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTimers {
    /// Longest random wait before the first probe (RFC: 1 s).
    pub probe_wait: Duration,
    /// Number of probes (RFC: 3).
    pub probe_num: u32,
    /// Shortest random gap between probes (RFC: 1 s).
    pub probe_min: Duration,
    /// Longest random gap between probes (RFC: 2 s); taken as `probe_min`
    /// when shorter than it.
    pub probe_max: Duration,
    /// How long to keep listening after the last probe (RFC: 2 s).
    pub announce_wait: Duration,
}

impl ProbeTimers {
    /// The RFC's own values: a probe takes 4 to 7 seconds.
    pub const RFC5227: ProbeTimers = ProbeTimers {
        probe_wait: Duration::from_secs(1),
        probe_num: 3,
        probe_min: Duration::from_secs(1),
        probe_max: Duration::from_secs(2),
        announce_wait: Duration::from_secs(2),
    };
}

impl Default for ProbeTimers {
    /// Short timers for a lab whose links answer in well under a
    /// millisecond: up to 10 ms, then 3 probes 50 ms apart, then a 100 ms
    /// wait (about 200 ms in all).
    fn default() -> ProbeTimers {
        ProbeTimers {
            probe_wait: Duration::from_millis(10),
            probe_num: 3,
            probe_min: Duration::from_millis(50),
            probe_max: Duration::from_millis(50),
            announce_wait: Duration::from_millis(100),
        }
    }
}

/// What a probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Nobody claimed the address.
    Free,
    /// Someone else uses or probes for it.
    Conflict {
        /// The sender hardware address of the conflicting packet.
        mac: MacAddr,
        /// What that packet was.
        kind: ArpKind,
    },
}

/// Whether `got` means someone else holds or wants `ip` (RFC 5227 2.1.1):
/// any ARP packet whose sender IP is `ip`, or a probe for `ip` from another
/// hardware address. Our own frames never conflict.
pub fn is_conflict(got: &Received, ip: Ipv4Addr, own_mac: MacAddr) -> bool {
    let arp = &got.frame.arp;
    if got.outgoing || arp.sender_mac == own_mac {
        return false;
    }
    arp.sender_ip == ip || (arp.kind() == ArpKind::Probe && arp.target_ip == ip)
}

/// A uniformly random duration in `[lo, hi]` (`lo` when `hi < lo`).
fn random_between(lo: Duration, hi: Duration) -> Duration {
    if hi <= lo {
        return lo;
    }
    let mut buf = [0u8; 8];
    // SAFETY: buf is valid for 8 bytes. A short or failed read leaves zeroes
    // in buf, which only makes the wait shorter.
    unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    let span = (hi - lo).as_nanos() as u64;
    lo + Duration::from_nanos(u64::from_ne_bytes(buf) % (span + 1))
}

/// Probes `ip` on `sock`'s interface: waits up to `probe_wait`, sends
/// `probe_num` probes `probe_min..=probe_max` apart, then listens
/// `announce_wait` more. Returns at the first conflicting packet. Frames
/// already queued on `sock` count too: open it just before probing.
pub fn probe_on(
    sock: &ArpSocket,
    ip: Ipv4Addr,
    timers: &ProbeTimers,
) -> Result<ProbeOutcome, ArpError> {
    let mac = sock.mac();
    let start = Instant::now();
    let mut sent = 0u32;
    let mut next_probe = start + random_between(Duration::ZERO, timers.probe_wait);
    let mut listen_until = start + timers.announce_wait;
    loop {
        let now = Instant::now();
        if sent < timers.probe_num && now >= next_probe {
            sock.send(&ArpFrame::probe(mac, ip))?;
            sent += 1;
            let now = Instant::now();
            listen_until = now + timers.announce_wait;
            next_probe = now + random_between(timers.probe_min, timers.probe_max);
        }
        let wake = if sent < timers.probe_num {
            next_probe
        } else {
            listen_until
        };
        match sock.recv_until(wake)? {
            Some(got) if is_conflict(&got, ip, mac) => {
                return Ok(ProbeOutcome::Conflict {
                    mac: got.frame.arp.sender_mac,
                    kind: got.frame.arp.kind(),
                })
            }
            Some(_) => {}
            None if sent >= timers.probe_num && Instant::now() >= listen_until => {
                return Ok(ProbeOutcome::Free)
            }
            None => {}
        }
    }
}

/// Sends `count` announcements (gratuitous ARP) of `ip` on `sock`'s
/// interface, `interval` apart.
pub fn announce_on(
    sock: &ArpSocket,
    ip: Ipv4Addr,
    count: u32,
    interval: Duration,
) -> Result<(), ArpError> {
    let frame = ArpFrame::announcement(sock.mac(), ip);
    for i in 0..count {
        if i > 0 {
            std::thread::sleep(interval);
        }
        sock.send(&frame)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const PEER: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
    const IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
    const OTHER_IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 3);

    fn got(frame: ArpFrame, outgoing: bool) -> Received {
        Received { frame, outgoing }
    }

    #[test]
    fn a_reply_an_announcement_or_a_foreign_probe_for_the_ip_conflict() {
        for frame in [
            ArpFrame::reply(PEER, IP, OWN, Ipv4Addr::UNSPECIFIED),
            ArpFrame::announcement(PEER, IP),
            ArpFrame::request(PEER, IP, OTHER_IP),
            ArpFrame::probe(PEER, IP),
        ] {
            assert!(is_conflict(&got(frame, false), IP, OWN), "{frame:?}");
        }
    }

    #[test]
    fn our_own_frames_and_other_addresses_do_not_conflict() {
        for (frame, outgoing) in [
            (ArpFrame::probe(OWN, IP), false),
            (ArpFrame::probe(PEER, IP), true),
            (ArpFrame::probe(PEER, OTHER_IP), false),
            (ArpFrame::request(PEER, OTHER_IP, IP), false),
            (ArpFrame::reply(PEER, OTHER_IP, OWN, IP), false),
        ] {
            assert!(!is_conflict(&got(frame, outgoing), IP, OWN), "{frame:?}");
        }
    }

    #[test]
    fn random_waits_stay_in_their_range() {
        let (lo, hi) = (Duration::from_millis(50), Duration::from_millis(60));
        for _ in 0..200 {
            let d = random_between(lo, hi);
            assert!(d >= lo && d <= hi, "{d:?}");
        }
        assert_eq!(random_between(hi, lo), hi);
        assert_eq!(random_between(lo, lo), lo);
    }

    #[test]
    fn default_timers_are_far_shorter_than_the_rfc() {
        let d = ProbeTimers::default();
        let worst = d.probe_wait + d.probe_max * (d.probe_num - 1) + d.announce_wait;
        assert!(worst < Duration::from_millis(300), "{worst:?}");
        assert_eq!(ProbeTimers::RFC5227.probe_num, 3);
    }
}
