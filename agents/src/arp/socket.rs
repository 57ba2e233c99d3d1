//! `ArpSocket`: an AF_PACKET socket bound to one interface of the calling
//! thread's network namespace, that sends and receives ARP frames.
//!
//! It binds with ETH_P_ALL, because a socket bound to ETH_P_ARP does not
//! see frames the host itself sends; each received frame says whether it
//! was outgoing. It must not choose a namespace: callers that need another
//! one run it on a thread that has called setns().

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use super::frame::{ArpFrame, MacAddr};
use super::ArpError;

const ETH_P_ALL: u16 = 0x0003;
/// Large enough for any frame on our links (MTU 1500 plus headers).
const RECV_BUF: usize = 2048;

/// One ARP frame read from the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// The frame.
    pub frame: ArpFrame,
    /// Whether this host sent it (PACKET_OUTGOING) rather than received it.
    pub outgoing: bool,
}

/// An AF_PACKET socket bound to one interface.
#[derive(Debug)]
pub struct ArpSocket {
    fd: OwnedFd,
    iface: String,
    ifindex: libc::c_int,
    mac: MacAddr,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn ifreq_for(name: &str) -> io::Result<libc::ifreq> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface names are 1 to 15 bytes",
        ));
    }
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

impl ArpSocket {
    /// Opens a socket on interface `iface` of the calling thread's network
    /// namespace. Needs CAP_NET_RAW.
    pub fn open(iface: &str) -> Result<ArpSocket, ArpError> {
        let err = |what: &str| {
            let what = format!("{what} on interface {iface}");
            move |source| ArpError::Io { what, source }
        };
        // Protocol 0 receives nothing until bind(), so no frame of another
        // interface slips in between socket() and bind().
        // SAFETY: plain syscall with integer arguments.
        let raw =
            cvt(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })
                .map_err(err("open an AF_PACKET socket"))?;
        // SAFETY: the kernel returned a new descriptor that we now own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        let mut req = ifreq_for(iface).map_err(err("name"))?;
        // SAFETY: req is a valid ifreq with a NUL-terminated name.
        cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFINDEX, &mut req) })
            .map_err(err("find the index (SIOCGIFINDEX)"))?;
        // SAFETY: SIOCGIFINDEX filled the ifindex member.
        let ifindex = unsafe { req.ifr_ifru.ifru_ifindex };
        // SAFETY: as above; SIOCGIFHWADDR fills the hwaddr member.
        cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) })
            .map_err(err("read the MAC address (SIOCGIFHWADDR)"))?;
        // SAFETY: SIOCGIFHWADDR filled the hwaddr member.
        let hw = unsafe { req.ifr_ifru.ifru_hwaddr };
        let mut mac = [0u8; 6];
        for (dst, src) in mac.iter_mut().zip(hw.sa_data.iter()) {
            *dst = *src as u8;
        }

        let addr = sockaddr_ll(ifindex, ETH_P_ALL, MacAddr::ZERO);
        // SAFETY: addr is a valid sockaddr_ll of the given length.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })
        .map_err(err("bind the AF_PACKET socket"))?;
        Ok(ArpSocket {
            fd,
            iface: iface.to_string(),
            ifindex,
            mac: MacAddr(mac),
        })
    }

    /// The interface's name.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// The interface's index in its namespace.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// The interface's MAC address, read when the socket was opened.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The descriptor, for poll().
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Puts the interface in promiscuous mode for as long as this socket
    /// lives (PACKET_MR_PROMISC), so that a bridge passes up the unicast
    /// frames it forwards between its ports.
    pub fn set_promiscuous(&self) -> Result<(), ArpError> {
        // SAFETY: packet_mreq is plain data; all zeroes is valid.
        let mut mreq: libc::packet_mreq = unsafe { zeroed() };
        mreq.mr_ifindex = self.ifindex;
        mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
        // SAFETY: mreq is a valid packet_mreq of the given length.
        cvt(unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                (&mreq as *const libc::packet_mreq).cast(),
                size_of::<libc::packet_mreq>() as libc::socklen_t,
            )
        })
        .map_err(|source| ArpError::Io {
            what: format!("enter promiscuous mode on interface {}", self.iface),
            source,
        })?;
        Ok(())
    }

    /// Sends `frame` out of the interface as is.
    pub fn send(&self, frame: &ArpFrame) -> Result<(), ArpError> {
        let bytes = frame.encode();
        let addr = sockaddr_ll(self.ifindex, super::ETH_P_ARP, frame.eth_dst);
        // SAFETY: bytes and addr are valid for the lengths given.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(ArpError::Io {
                what: format!("send an ARP frame on interface {}", self.iface),
                source: io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// The next ARP frame, waiting until `deadline` at most (`None` then).
    /// Frames that are not ARP are skipped.
    pub fn recv_until(&self, deadline: Instant) -> Result<Option<Received>, ArpError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // One last non-blocking look: a frame may already be queued.
                return self.try_recv_arp();
            }
            let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: pfd is one valid pollfd.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(self.recv_error(e));
            }
            if r == 0 {
                continue;
            }
            if let Some(got) = self.try_recv_arp()? {
                return Ok(Some(got));
            }
        }
    }

    /// The next queued ARP frame, without waiting (`None` when none is
    /// queued). Frames that are not ARP are skipped.
    pub fn try_recv_arp(&self) -> Result<Option<Received>, ArpError> {
        loop {
            let mut buf = [0u8; RECV_BUF];
            // SAFETY: sockaddr_ll is plain data.
            let mut from: libc::sockaddr_ll = unsafe { zeroed() };
            let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: buf and from are valid for the lengths given.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock => Ok(None),
                    io::ErrorKind::Interrupted => continue,
                    _ => Err(self.recv_error(e)),
                };
            }
            let n = n as usize;
            if from.sll_ifindex != self.ifindex {
                continue;
            }
            if let Ok(frame) = ArpFrame::parse(&buf[..n.min(RECV_BUF)]) {
                return Ok(Some(Received {
                    frame,
                    outgoing: from.sll_pkttype == libc::PACKET_OUTGOING,
                }));
            }
        }
    }

    fn recv_error(&self, source: io::Error) -> ArpError {
        ArpError::Io {
            what: format!("receive on interface {}", self.iface),
            source,
        }
    }
}

fn sockaddr_ll(ifindex: libc::c_int, protocol: u16, dst: MacAddr) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain data; all zeroes is valid.
    let mut addr: libc::sockaddr_ll = unsafe { zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol.to_be();
    addr.sll_ifindex = ifindex;
    addr.sll_halen = 6;
    addr.sll_addr[..6].copy_from_slice(&dst.0);
    addr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_that_cannot_fit_an_ifreq_are_refused() {
        for bad in ["", "sixteen-chars-xx", "a\0b"] {
            assert!(ifreq_for(bad).is_err(), "{bad:?}");
        }
        assert!(ifreq_for("public").is_ok());
    }

    #[test]
    fn the_sockaddr_carries_protocol_in_network_order() {
        let a = sockaddr_ll(7, super::super::ETH_P_ARP, MacAddr::BROADCAST);
        assert_eq!(a.sll_protocol, 0x0806u16.to_be());
        assert_eq!(a.sll_ifindex, 7);
        assert_eq!(&a.sll_addr[..6], &[0xff; 6]);
    }
}
