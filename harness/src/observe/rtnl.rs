//! A small rtnetlink client for the address observer: a NETLINK_ROUTE
//! socket and a hand-written codec for the two dumps it needs (links and
//! IPv4 addresses).
//!
//! It only reads: it sends dump requests and never a message that changes
//! anything. Parsing is defensive: a short, truncated or odd message is
//! skipped or reported as an error, never a panic.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const RTA_HDRLEN: usize = 4;
/// Large enough for any dump message the kernel builds (it sizes them to
/// the reader's buffer, up to 32 KiB).
const RECV_BUF: usize = 64 * 1024;

/// One interface, from an RTM_NEWLINK message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    /// Interface index.
    pub index: u32,
    /// `ifi_flags` (IFF_UP, IFF_LOWER_UP, ...).
    pub flags: u32,
    /// IFLA_IFNAME; empty if the kernel sent none.
    pub name: String,
}

impl Link {
    /// Administratively up (IFF_UP).
    pub fn is_up(&self) -> bool {
        self.flags & libc::IFF_UP as u32 != 0
    }
}

/// One IPv4 address, from an RTM_NEWADDR message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Addr {
    /// Index of the interface that holds it.
    pub index: u32,
    /// IFA_LOCAL, or IFA_ADDRESS when there is no IFA_LOCAL.
    pub ip: Ipv4Addr,
}

/// What a dump returned, or why it did not.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RtnlError {
    /// A system call on the socket failed.
    #[error("cannot {what}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The kernel answered the request with an error.
    #[error("the kernel refused the dump request")]
    Refused(#[source] io::Error),
    /// A message did not parse.
    #[error("malformed netlink message: {0}")]
    Malformed(&'static str),
    /// The dump changed while it was read (NLM_F_DUMP_INTR), twice in a row.
    #[error("the dump was interrupted by changes")]
    Interrupted,
}

/// A NETLINK_ROUTE socket, bound to the network namespace of the thread
/// that opened it for its whole life.
#[derive(Debug)]
pub(crate) struct RtnlSocket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl RtnlSocket {
    /// Opens a socket in the calling thread's current network namespace;
    /// every receive waits at most `timeout`.
    pub fn open(timeout: Duration) -> Result<RtnlSocket, RtnlError> {
        // SAFETY: plain socket(2) call; the result is checked below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(RtnlError::Io {
                what: "open a NETLINK_ROUTE socket",
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: tv is a valid timeval and its size is passed.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(RtnlError::Io {
                what: "set the netlink socket's receive timeout",
                source: io::Error::last_os_error(),
            });
        }
        Ok(RtnlSocket {
            fd,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Every interface of the socket's namespace.
    pub fn links(&mut self) -> Result<Vec<Link>, RtnlError> {
        let payloads = self.dump(libc::RTM_GETLINK, libc::RTM_NEWLINK, &[0; IFINFOMSG_LEN])?;
        Ok(payloads.iter().filter_map(|p| parse_link(p)).collect())
    }

    /// Every IPv4 address of the socket's namespace.
    pub fn addrs(&mut self) -> Result<Vec<Addr>, RtnlError> {
        let mut req = [0u8; IFADDRMSG_LEN];
        req[0] = libc::AF_INET as u8;
        let payloads = self.dump(libc::RTM_GETADDR, libc::RTM_NEWADDR, &req)?;
        Ok(payloads.iter().filter_map(|p| parse_addr(p)).collect())
    }

    /// Sends a dump request and collects the payloads of the answers of
    /// type `want`; retries once if the dump was interrupted.
    fn dump(&mut self, kind: u16, want: u16, body: &[u8]) -> Result<Vec<Vec<u8>>, RtnlError> {
        for _ in 0..2 {
            self.seq = self.seq.wrapping_add(1);
            let seq = self.seq;
            self.send(&request(kind, seq, body))?;
            match self.collect(seq, want)? {
                Some(payloads) => return Ok(payloads),
                None => continue,
            }
        }
        Err(RtnlError::Interrupted)
    }

    fn send(&self, msg: &[u8]) -> Result<(), RtnlError> {
        // SAFETY: an all-zero sockaddr_nl is valid; pid 0 is the kernel.
        let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: msg and to are valid for the lengths passed.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&to as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(RtnlError::Io {
                what: "send a netlink dump request",
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// Reads answers to request `seq` until NLMSG_DONE. `None` when the
    /// kernel flagged the dump as interrupted.
    fn collect(&mut self, seq: u32, want: u16) -> Result<Option<Vec<Vec<u8>>>, RtnlError> {
        let mut payloads = Vec::new();
        let mut interrupted = false;
        loop {
            let n = self.recv()?;
            for msg in Messages::new(&self.buf[..n]) {
                let msg = msg?;
                if msg.seq != seq {
                    // A late answer to an earlier request: not ours.
                    continue;
                }
                if msg.flags & libc::NLM_F_DUMP_INTR as u16 != 0 {
                    interrupted = true;
                }
                match msg.kind {
                    t if t == libc::NLMSG_DONE as u16 => {
                        return Ok((!interrupted).then_some(payloads));
                    }
                    t if t == libc::NLMSG_ERROR as u16 => {
                        let code = error_code(msg.payload)?;
                        if code == 0 {
                            continue;
                        }
                        return Err(RtnlError::Refused(io::Error::from_raw_os_error(-code)));
                    }
                    t if t == want => payloads.push(msg.payload.to_vec()),
                    _ => {}
                }
            }
        }
    }

    fn recv(&mut self) -> Result<usize, RtnlError> {
        loop {
            // SAFETY: buf is valid for writes of its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(RtnlError::Io {
                    what: "read a netlink dump",
                    source: e,
                });
            }
            let n = n as usize;
            if n > self.buf.len() {
                return Err(RtnlError::Malformed("message larger than the buffer"));
            }
            return Ok(n);
        }
    }
}

/// A dump request: nlmsghdr (REQUEST | DUMP) followed by `body`.
pub(crate) fn request(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + body.len();
    let mut msg = Vec::with_capacity(len);
    msg.extend_from_slice(&(len as u32).to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(body);
    msg
}

/// One netlink message inside a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// The messages of one datagram, in order; a malformed header ends the
/// iteration with one error.
pub(crate) struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Messages<'a> {
    pub fn new(buf: &'a [u8]) -> Messages<'a> {
        Messages { rest: buf }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, RtnlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = self.rest;
        let Some(len) = u32_at(rest, 0) else {
            self.rest = &[];
            return Some(Err(RtnlError::Malformed("truncated message header")));
        };
        let len = len as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            self.rest = &[];
            return Some(Err(RtnlError::Malformed("message length out of range")));
        }
        let msg = Message {
            kind: u16_at(rest, 4).unwrap_or(0),
            flags: u16_at(rest, 6).unwrap_or(0),
            seq: u32_at(rest, 8).unwrap_or(0),
            payload: &rest[NLMSG_HDRLEN..len],
        };
        self.rest = rest.get(align(len)..).unwrap_or(&[]);
        Some(Ok(msg))
    }
}

/// The (negative) errno of an NLMSG_ERROR payload; 0 is an acknowledgement.
fn error_code(payload: &[u8]) -> Result<i32, RtnlError> {
    payload
        .get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(RtnlError::Malformed("short error message"))
}

/// An RTM_NEWLINK payload: ifinfomsg, then attributes.
pub(crate) fn parse_link(payload: &[u8]) -> Option<Link> {
    let index = u32_at(payload, 4)?;
    let flags = u32_at(payload, 8)?;
    let mut name = String::new();
    for (kind, value) in attrs(payload.get(IFINFOMSG_LEN..)?) {
        if kind == libc::IFLA_IFNAME {
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            name = String::from_utf8_lossy(&value[..end]).into_owned();
        }
    }
    Some(Link { index, flags, name })
}

/// An RTM_NEWADDR payload: ifaddrmsg, then attributes. `None` for anything
/// but a well-formed IPv4 address.
pub(crate) fn parse_addr(payload: &[u8]) -> Option<Addr> {
    if *payload.first()? != libc::AF_INET as u8 {
        return None;
    }
    let index = u32_at(payload, 4)?;
    let (mut local, mut address) = (None, None);
    for (kind, value) in attrs(payload.get(IFADDRMSG_LEN..)?) {
        let ip = <[u8; 4]>::try_from(value).ok().map(Ipv4Addr::from);
        match kind {
            libc::IFA_LOCAL => local = ip,
            libc::IFA_ADDRESS => address = ip,
            _ => {}
        }
    }
    Some(Addr {
        index,
        ip: local.or(address)?,
    })
}

/// The attributes (type without its flag bits, value) of `buf`, stopping
/// at the first one that does not fit.
fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let len = u16_at(rest, 0)? as usize;
        let kind = u16_at(rest, 2)?;
        if len < RTA_HDRLEN || len > rest.len() {
            rest = &[];
            return None;
        }
        let value = &rest[RTA_HDRLEN..len];
        rest = rest.get(align(len)..).unwrap_or(&[]);
        // NLA_F_NESTED and NLA_F_NET_BYTEORDER live in the top two bits.
        Some((kind & 0x3fff, value))
    })
}

fn align(len: usize) -> usize {
    len.saturating_add(3) & !3
}

fn u16_at(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes([b[0], b[1]]))
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((RTA_HDRLEN + value.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        a.resize(align(a.len()), 0);
        a
    }

    fn message(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&(libc::NLM_F_MULTI as u16).to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        m.resize(align(m.len()), 0);
        m
    }

    fn link_payload(index: u32, flags: u32, name: &str) -> Vec<u8> {
        let mut p = vec![0u8; IFINFOMSG_LEN];
        p[4..8].copy_from_slice(&index.to_ne_bytes());
        p[8..12].copy_from_slice(&flags.to_ne_bytes());
        p.extend(attr(libc::IFLA_MTU, &1500u32.to_ne_bytes()));
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        p.extend(attr(libc::IFLA_IFNAME, &n));
        p
    }

    fn addr_payload(index: u32, local: Option<[u8; 4]>, address: [u8; 4]) -> Vec<u8> {
        let mut p = vec![libc::AF_INET as u8, 24, 0, 0];
        p.extend_from_slice(&index.to_ne_bytes());
        p.extend(attr(libc::IFA_ADDRESS, &address));
        if let Some(l) = local {
            p.extend(attr(libc::IFA_LOCAL, &l));
        }
        p.extend(attr(libc::IFA_LABEL, b"public\0"));
        p
    }

    #[test]
    fn a_dump_request_has_the_header_the_kernel_expects() {
        let req = request(libc::RTM_GETADDR, 7, &[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(req.len(), 24);
        assert_eq!(u32_at(&req, 0), Some(24));
        assert_eq!(u16_at(&req, 4), Some(libc::RTM_GETADDR));
        assert_eq!(
            u16_at(&req, 6),
            Some((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16)
        );
        assert_eq!(u32_at(&req, 8), Some(7));
        assert_eq!(req[16], 2);
    }

    #[test]
    fn links_and_addresses_parse_from_a_multipart_datagram() {
        let mut dgram = message(libc::RTM_NEWLINK, 3, &link_payload(2, 0x1043, "public"));
        dgram.extend(message(
            libc::RTM_NEWADDR,
            3,
            &addr_payload(2, Some([10, 99, 0, 100]), [10, 99, 0, 1]),
        ));
        dgram.extend(message(libc::NLMSG_DONE as u16, 3, &0i32.to_ne_bytes()));
        let msgs: Vec<_> = Messages::new(&dgram).map(Result::unwrap).collect();
        assert_eq!(msgs.len(), 3);
        let link = parse_link(msgs[0].payload).unwrap();
        assert_eq!(
            link,
            Link {
                index: 2,
                flags: 0x1043,
                name: "public".into()
            }
        );
        assert!(link.is_up());
        // IFA_LOCAL wins over IFA_ADDRESS (the peer on point-to-point links).
        assert_eq!(
            parse_addr(msgs[1].payload),
            Some(Addr {
                index: 2,
                ip: Ipv4Addr::new(10, 99, 0, 100)
            })
        );
        assert_eq!(msgs[2].kind, libc::NLMSG_DONE as u16);
    }

    #[test]
    fn an_address_without_ifa_local_uses_ifa_address() {
        let p = addr_payload(5, None, [10, 77, 0, 9]);
        assert_eq!(parse_addr(&p).unwrap().ip, Ipv4Addr::new(10, 77, 0, 9));
        let mut v6 = p.clone();
        v6[0] = libc::AF_INET6 as u8;
        assert_eq!(parse_addr(&v6), None);
    }

    #[test]
    fn a_link_that_is_down_is_not_up() {
        let link = parse_link(&link_payload(3, 0x1002, "private")).unwrap();
        assert!(!link.is_up());
    }

    #[test]
    fn a_bad_message_length_is_an_error_not_a_panic() {
        let mut dgram = message(libc::RTM_NEWLINK, 1, &link_payload(2, 1, "x"));
        dgram[0..4].copy_from_slice(&9999u32.to_ne_bytes());
        let got: Vec<_> = Messages::new(&dgram).collect();
        assert!(matches!(got.as_slice(), [Err(RtnlError::Malformed(_))]));
        dgram[0..4].copy_from_slice(&3u32.to_ne_bytes());
        let got: Vec<_> = Messages::new(&dgram).collect();
        assert!(matches!(got.as_slice(), [Err(RtnlError::Malformed(_))]));
    }

    /// Every truncation and many corruptions of real-looking datagrams
    /// parse to something or to an error, and never panic.
    #[test]
    fn truncated_and_corrupted_input_never_panics() {
        let mut dgram = message(libc::RTM_NEWLINK, 1, &link_payload(2, 1, "public"));
        dgram.extend(message(
            libc::RTM_NEWADDR,
            1,
            &addr_payload(2, Some([10, 0, 0, 1]), [10, 0, 0, 1]),
        ));
        let walk = |buf: &[u8]| {
            for m in Messages::new(buf).flatten() {
                let _ = parse_link(m.payload);
                let _ = parse_addr(m.payload);
                let _ = error_code(m.payload);
            }
            let _ = parse_link(buf);
            let _ = parse_addr(buf);
        };
        for cut in 0..=dgram.len() {
            walk(&dgram[..cut]);
        }
        let mut state: u32 = 0x2545_f491;
        for _ in 0..20_000 {
            let mut bad = dgram.clone();
            for _ in 0..3 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let at = state as usize % bad.len();
                bad[at] = (state >> 24) as u8;
            }
            walk(&bad);
        }
    }
}
