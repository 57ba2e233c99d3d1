//! A small synchronous rtnetlink client: a NETLINK_ROUTE socket from
//! `netlink-sys` (blocking, no runtime) speaking the messages of
//! `netlink-packet-route`. It builds what a lab needs (bridges, veth pairs
//! whose peer is created directly in another namespace, masters, MACs, link
//! states, IPv4 addresses) and dumps links and addresses.
//!
//! A netlink socket stays bound to the network namespace it was created in
//! for its whole life: [`Rtnl::open`] uses the calling thread's namespace,
//! [`Rtnl::open_in`] creates the socket on a scratch thread that entered the
//! namespace, so the caller never moves.
//!
//! Every change is a request with NLM_F_ACK; several can go in one datagram
//! ([`Rtnl::exec_all`]) and each is acknowledged on its own. A refusal names
//! the operation and the interface, with the kernel's errno and its extended
//! ack message when it sends one. It holds no policy: naming, addressing and
//! order are the caller's.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE,
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};

use crate::netns::{Netns, NetnsError};

/// Large enough for any message the kernel builds for a dump (it sizes them
/// to the reader's buffer, up to 32 KiB).
const RECV_BUF: usize = 64 * 1024;
/// How long a reply may take unless [`Rtnl::set_timeout`] says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// NLMSGERR_ATTR_MSG: the extended ack's text.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// NLM_F_ACK_TLVS on an error message: extended ack attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// Length of a netlink header, which a capped error message carries.
const NLMSG_HDRLEN: usize = 16;

/// A netlink request or its answer failed.
#[derive(Debug, thiserror::Error)]
pub enum RtnlError {
    /// The socket could not be opened or set up.
    #[error("cannot open a NETLINK_ROUTE socket")]
    Open(#[source] io::Error),
    /// The namespace to open a socket in could not be entered.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// Sending or receiving failed (a timeout included).
    #[error("cannot {op}: netlink socket")]
    Io {
        /// The operation, e.g. `add veth n1-pub`.
        op: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The kernel refused the request.
    #[error("cannot {op}")]
    Refused {
        /// The operation, e.g. `add veth n1-pub`.
        op: String,
        /// The kernel's errno (positive).
        errno: i32,
        /// The errno, with the kernel's extended ack text when it sent one.
        #[source]
        source: io::Error,
    },
    /// An answer did not parse.
    #[error("cannot {op}: malformed netlink answer: {detail}")]
    Malformed {
        /// The operation.
        op: String,
        /// What was wrong.
        detail: String,
    },
    /// A dump changed while it was read (NLM_F_DUMP_INTR), twice in a row.
    #[error("cannot {op}: the dump was interrupted by changes twice")]
    Interrupted {
        /// The operation.
        op: String,
    },
}

impl RtnlError {
    /// The errno of a refusal or a socket error.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            RtnlError::Refused { errno, .. } => Some(*errno),
            RtnlError::Io { source, .. } | RtnlError::Open(source) => source.raw_os_error(),
            _ => None,
        }
    }
}

impl From<RtnlError> for io::Error {
    fn from(e: RtnlError) -> io::Error {
        let kind = match &e {
            RtnlError::Open(s) | RtnlError::Io { source: s, .. } => s.kind(),
            RtnlError::Refused { source, .. } => source.kind(),
            RtnlError::Netns(_) => io::ErrorKind::NotFound,
            RtnlError::Malformed { .. } | RtnlError::Interrupted { .. } => {
                io::ErrorKind::InvalidData
            }
        };
        io::Error::new(kind, e)
    }
}

/// One interface, from a link dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// `ifi_flags` (IFF_UP, IFF_LOWER_UP, ...).
    pub flags: u32,
    /// IFLA_IFNAME; empty if the kernel sent none.
    pub name: String,
    /// IFLA_MASTER: the bridge it is enslaved to.
    pub master: Option<u32>,
    /// IFLA_ADDRESS: its MAC, when it has one.
    pub mac: Option<[u8; 6]>,
}

impl Link {
    /// Administratively up (IFF_UP).
    pub fn is_up(&self) -> bool {
        self.flags & libc::IFF_UP as u32 != 0
    }
}

/// One IPv4 address, from an address dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    /// Index of the interface that holds it.
    pub index: u32,
    /// IFA_LOCAL, or IFA_ADDRESS when there is no IFA_LOCAL.
    pub ip: Ipv4Addr,
    /// The prefix length.
    pub prefix_len: u8,
}

/// A change of an existing link: each field set is applied, in one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkChange {
    /// Administratively up or down.
    pub up: Option<bool>,
    /// Enslave to the bridge of this index.
    pub master: Option<u32>,
    /// Set this MAC.
    pub mac: Option<[u8; 6]>,
}

/// The end of a veth pair that goes to another namespace.
#[derive(Debug, Clone, Copy)]
pub struct VethPeer<'a> {
    /// Its name there.
    pub name: &'a str,
    /// The namespace it is created in (an open namespace file); `None`
    /// keeps it in the socket's namespace.
    pub netns: Option<BorrowedFd<'a>>,
    /// Its MAC; the kernel picks one when `None`.
    pub mac: Option<[u8; 6]>,
    /// The index it gets there; the kernel picks one when 0.
    pub index: u32,
    /// Brought up at creation.
    pub up: bool,
}

/// One request: what it does (for errors) and its message.
#[derive(Debug, Clone)]
pub struct Request {
    op: String,
    flags: u16,
    msg: RouteNetlinkMessage,
}

fn link_msg(index: u32, name: Option<&str>, change: &LinkChange) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    if let Some(name) = name {
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
    }
    if let Some(up) = change.up {
        m.header.change_mask = LinkFlags::Up;
        if up {
            m.header.flags = LinkFlags::Up;
        }
    }
    if let Some(master) = change.master {
        m.attributes.push(LinkAttribute::Controller(master));
    }
    if let Some(mac) = change.mac {
        m.attributes.push(LinkAttribute::Address(mac.to_vec()));
    }
    m
}

fn describe(change: &LinkChange) -> String {
    let mut parts = Vec::new();
    if let Some(m) = change.master {
        parts.push(format!("master index {m}"));
    }
    if let Some(mac) = change.mac {
        parts.push(format!("address {}", format_mac(&mac)));
    }
    if let Some(up) = change.up {
        parts.push(if up { "up" } else { "down" }.to_string());
    }
    parts.join(" ")
}

impl Request {
    /// `ip link add NAME type bridge`, brought up when `up`.
    pub fn add_bridge(name: &str, up: bool) -> Request {
        let mut m = link_msg(
            0,
            Some(name),
            &LinkChange {
                up: Some(up).filter(|u| *u),
                ..LinkChange::default()
            },
        );
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        Request {
            op: format!("add bridge {name}"),
            flags: NLM_F_CREATE | NLM_F_EXCL,
            msg: RouteNetlinkMessage::NewLink(m),
        }
    }

    /// `ip link add NAME [master M] [up] type veth peer name P [address A]
    /// [netns NS]`: both ends in one message; `local` applies to `name`.
    pub fn add_veth(name: &str, local: &LinkChange, peer: &VethPeer<'_>) -> Request {
        let mut p = link_msg(
            peer.index,
            Some(peer.name),
            &LinkChange {
                up: Some(peer.up).filter(|u| *u),
                master: None,
                mac: peer.mac,
            },
        );
        if let Some(fd) = peer.netns {
            p.attributes
                .push(LinkAttribute::NetNsFd(fd.as_raw_fd() as RawFd));
        }
        let mut m = link_msg(0, Some(name), local);
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        let mut op = format!("add veth {name}");
        let local = describe(local);
        if !local.is_empty() {
            op.push_str(&format!(" ({local})"));
        }
        op.push_str(&format!(" with peer {}", peer.name));
        if let Some(mac) = peer.mac {
            op.push_str(&format!(" address {}", format_mac(&mac)));
        }
        if peer.netns.is_some() {
            op.push_str(" in another namespace");
        }
        Request {
            op,
            flags: NLM_F_CREATE | NLM_F_EXCL,
            msg: RouteNetlinkMessage::NewLink(m),
        }
    }

    /// `ip link set NAME ...` by name.
    pub fn set_link(name: &str, change: &LinkChange) -> Request {
        Request {
            op: format!("set link {name} {}", describe(change)),
            flags: 0,
            msg: RouteNetlinkMessage::SetLink(link_msg(0, Some(name), change)),
        }
    }

    /// `ip link set dev INDEX ...`; `label` names it in errors.
    pub fn set_link_index(index: u32, label: &str, change: &LinkChange) -> Request {
        Request {
            op: format!("set link {label} {}", describe(change)),
            flags: 0,
            msg: RouteNetlinkMessage::SetLink(link_msg(index, None, change)),
        }
    }

    fn addr_msg(index: u32, ip: Ipv4Addr, prefix_len: u8) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = prefix_len;
        m.header.index = index;
        m.attributes.push(AddressAttribute::Local(ip.into()));
        m.attributes.push(AddressAttribute::Address(ip.into()));
        m
    }

    /// `ip addr add IP/PREFIX dev INDEX`: as `ip` does without `brd`, no
    /// broadcast address; `label` names the interface in errors.
    pub fn add_addr(index: u32, label: &str, ip: Ipv4Addr, prefix_len: u8) -> Request {
        let m = Self::addr_msg(index, ip, prefix_len);
        Request {
            op: format!("add address {ip}/{prefix_len} to {label}"),
            flags: NLM_F_CREATE | NLM_F_EXCL,
            msg: RouteNetlinkMessage::NewAddress(m),
        }
    }

    /// `ip addr del IP/PREFIX dev INDEX`.
    pub fn del_addr(index: u32, label: &str, ip: Ipv4Addr, prefix_len: u8) -> Request {
        Request {
            op: format!("delete address {ip}/{prefix_len} from {label}"),
            flags: 0,
            msg: RouteNetlinkMessage::DelAddress(Self::addr_msg(index, ip, prefix_len)),
        }
    }

    /// What it does, as errors name it.
    pub fn op(&self) -> &str {
        &self.op
    }
}

/// A NETLINK_ROUTE socket, bound to the network namespace it was opened in
/// for its whole life.
#[derive(Debug)]
pub struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Rtnl, RtnlError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(RtnlError::Open)?;
        sock.bind_auto().map_err(RtnlError::Open)?;
        // Errors carry only the request's header, plus the kernel's text.
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_ext_ack(true);
        let rtnl = Rtnl {
            sock,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        };
        rtnl.set_timeout(DEFAULT_TIMEOUT)?;
        Ok(rtnl)
    }

    /// Opens a socket inside the namespace at `path` (e.g.
    /// `/run/netns/NAME`) from a scratch thread; the caller does not move.
    pub fn open_in(path: &Path) -> Result<Rtnl, RtnlError> {
        let ns = Netns::open(path)?;
        Self::open_in_ns(&ns)
    }

    /// [`Rtnl::open_in`] for a namespace file already open.
    pub fn open_in_ns(ns: &Netns) -> Result<Rtnl, RtnlError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                ns.enter()?;
                Rtnl::open()
            })
            .join()
            .unwrap_or_else(|_| {
                Err(RtnlError::Open(io::Error::other(
                    "the thread opening the socket panicked",
                )))
            })
        })
    }

    /// Every receive waits at most `timeout`.
    pub fn set_timeout(&self, timeout: Duration) -> Result<(), RtnlError> {
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: tv is a valid timeval and its size is passed.
        let r = unsafe {
            libc::setsockopt(
                self.sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(RtnlError::Open(io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Sends one request and waits for its acknowledgement.
    pub fn exec(&mut self, req: Request) -> Result<(), RtnlError> {
        self.exec_all(vec![req])
    }

    /// Sends every request in one datagram (the kernel handles them in
    /// order, each on its own) and waits for every acknowledgement. The
    /// first refusal, in request order, is returned.
    pub fn exec_all(&mut self, reqs: Vec<Request>) -> Result<(), RtnlError> {
        if reqs.is_empty() {
            return Ok(());
        }
        let first = self.seq.wrapping_add(1);
        let mut out = Vec::new();
        let mut ops = Vec::with_capacity(reqs.len());
        for req in reqs {
            self.seq = self.seq.wrapping_add(1);
            encode(
                &mut out,
                req.msg,
                NLM_F_REQUEST | NLM_F_ACK | req.flags,
                self.seq,
            );
            ops.push(req.op);
        }
        if let Err(source) = self.sock.send(&out, 0) {
            return Err(RtnlError::Io {
                op: ops.swap_remove(0),
                source,
            });
        }
        let mut results: Vec<Option<Result<(), (i32, io::Error)>>> =
            (0..ops.len()).map(|_| None).collect();
        let mut pending = ops.len();
        while pending > 0 {
            let n = self.recv().map_err(|source| RtnlError::Io {
                op: ops[results.iter().position(Option::is_none).unwrap_or(0)].clone(),
                source,
            })?;
            let mut off = 0;
            while off < n {
                let (len, seq, outcome) = match parse_ack(&self.buf[off..n]) {
                    Ok(x) => x,
                    Err(detail) => {
                        return Err(RtnlError::Malformed {
                            op: ops[0].clone(),
                            detail,
                        })
                    }
                };
                off += align(len);
                let i = seq.wrapping_sub(first) as usize;
                if let (Some(slot @ None), Some(outcome)) = (results.get_mut(i), outcome) {
                    *slot = Some(outcome);
                    pending -= 1;
                }
            }
        }
        for (op, result) in ops.into_iter().zip(results) {
            if let Some(Err((errno, source))) = result {
                return Err(RtnlError::Refused { op, errno, source });
            }
        }
        Ok(())
    }

    /// The index of the interface called `name`.
    pub fn index_of(&mut self, name: &str) -> Result<u32, RtnlError> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        let op = format!("find link {name}");
        let got = self.query(&op, RouteNetlinkMessage::GetLink(m), 0)?;
        got.into_iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
                _ => None,
            })
            .ok_or(RtnlError::Malformed {
                op,
                detail: "no link in the answer".into(),
            })
    }

    /// Every interface of the socket's namespace.
    pub fn links(&mut self) -> Result<Vec<Link>, RtnlError> {
        let got = self.dump(
            "dump links",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
        )?;
        Ok(got
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(to_link(l)),
                _ => None,
            })
            .collect())
    }

    /// Every IPv4 address of the socket's namespace.
    pub fn addrs(&mut self) -> Result<Vec<Addr>, RtnlError> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        let got = self.dump("dump addresses", RouteNetlinkMessage::GetAddress(m))?;
        Ok(got
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => to_addr(a),
                _ => None,
            })
            .collect())
    }

    /// A dump, retried once if the kernel flagged it as interrupted.
    fn dump(
        &mut self,
        op: &str,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, RtnlError> {
        for _ in 0..2 {
            match self.query(op, msg.clone(), NLM_F_DUMP) {
                Err(RtnlError::Interrupted { .. }) => continue,
                other => return other,
            }
        }
        Err(RtnlError::Interrupted { op: op.into() })
    }

    /// Sends a get request and collects the answers until NLMSG_DONE (a
    /// dump) or the one answer (a get).
    fn query(
        &mut self,
        op: &str,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, RtnlError> {
        let dump = flags & NLM_F_DUMP != 0;
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut out = Vec::new();
        encode(&mut out, msg, NLM_F_REQUEST | flags, seq);
        let io_err = |source| RtnlError::Io {
            op: op.to_string(),
            source,
        };
        self.sock.send(&out, 0).map_err(io_err)?;
        let malformed = |detail: String| RtnlError::Malformed {
            op: op.to_string(),
            detail,
        };
        let mut got = Vec::new();
        let mut interrupted = false;
        loop {
            let n = self.recv().map_err(io_err)?;
            let mut off = 0;
            while off < n {
                let buf = &self.buf[off..n];
                let len = NetlinkBuffer::new_checked(buf)
                    .map_err(|e| malformed(e.to_string()))?
                    .length() as usize;
                off += align(len);
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[..len])
                    .map_err(|e| malformed(e.to_string()))?;
                if msg.header.sequence_number != seq {
                    // A late answer to an earlier request: not ours.
                    continue;
                }
                if msg.header.flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => {
                        if interrupted {
                            return Err(RtnlError::Interrupted { op: op.into() });
                        }
                        return Ok(got);
                    }
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        let errno = e.raw_code().saturating_abs();
                        return Err(RtnlError::Refused {
                            op: op.into(),
                            errno,
                            source: refusal(msg.header.flags, errno, &e.header),
                        });
                    }
                    NetlinkPayload::InnerMessage(m) => {
                        got.push(m);
                        if !dump {
                            return Ok(got);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn recv(&mut self) -> Result<usize, io::Error> {
        loop {
            self.buf.clear();
            self.buf.reserve(RECV_BUF);
            match self.sock.recv(&mut self.buf, libc::MSG_TRUNC) {
                Ok(n) if n > self.buf.len() => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "netlink message larger than the buffer",
                    ))
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

fn encode(out: &mut Vec<u8>, msg: RouteNetlinkMessage, flags: u16, seq: u32) {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    m.finalize();
    let start = out.len();
    out.resize(start + align(m.buffer_len()), 0);
    m.serialize(&mut out[start..]);
}

/// One message of an answer to change requests: its length, sequence
/// number, and the outcome when it is an acknowledgement.
type Ack = (usize, u32, Option<Result<(), (i32, io::Error)>>);

fn parse_ack(buf: &[u8]) -> Result<Ack, String> {
    let nl = NetlinkBuffer::new_checked(buf).map_err(|e| e.to_string())?;
    let len = nl.length() as usize;
    let (seq, flags, kind) = (nl.sequence_number(), nl.flags(), nl.message_type());
    if kind != netlink_packet_core::NLMSG_ERROR {
        return Ok((len, seq, None));
    }
    let payload = &buf[NLMSG_HDRLEN..len];
    if payload.len() < 4 {
        return Err("short error message".into());
    }
    let code = i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
    if code == 0 {
        return Ok((len, seq, Some(Ok(()))));
    }
    let errno = code.saturating_abs();
    Ok((
        len,
        seq,
        Some(Err((errno, refusal(flags, errno, &payload[4..])))),
    ))
}

/// The errno, with the kernel's extended ack text when the error message
/// carries one (`rest` is what follows the code: the capped request
/// header, then the attributes).
fn refusal(flags: u16, errno: i32, rest: &[u8]) -> io::Error {
    let plain = io::Error::from_raw_os_error(errno);
    let text = (flags & NLM_F_ACK_TLVS != 0)
        .then(|| ext_ack_msg(rest.get(NLMSG_HDRLEN..).unwrap_or(&[])))
        .flatten();
    match text {
        Some(t) => io::Error::new(plain.kind(), format!("{plain}: {t}")),
        None => plain,
    }
}

fn ext_ack_msg(mut attrs: &[u8]) -> Option<String> {
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]);
        if len < 4 || len > attrs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &attrs[4..len];
            let text = text.split(|b| *b == 0).next().unwrap_or(&[]);
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        attrs = &attrs[align(len).min(attrs.len())..];
    }
    None
}

fn to_link(l: LinkMessage) -> Link {
    let mut link = Link {
        index: l.header.index,
        flags: l.header.flags.bits(),
        name: String::new(),
        master: None,
        mac: None,
    };
    for a in l.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n,
            LinkAttribute::Controller(m) => link.master = Some(m),
            LinkAttribute::Address(a) => link.mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
            _ => {}
        }
    }
    link
}

fn to_addr(a: AddressMessage) -> Option<Addr> {
    let mut local = None;
    let mut address = None;
    for attr in a.attributes {
        match attr {
            AddressAttribute::Local(std::net::IpAddr::V4(ip)) => local = Some(ip),
            AddressAttribute::Address(std::net::IpAddr::V4(ip)) => address = Some(ip),
            _ => {}
        }
    }
    Some(Addr {
        index: a.header.index,
        ip: local.or(address)?,
        prefix_len: a.header.prefix_len,
    })
}

/// `02:fa:00:00:01:0a` as bytes; `None` if it is not six hex octets.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.split(':');
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// `02:fa:00:00:01:0a`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse_and_print_and_bad_ones_are_refused() {
        let mac = parse_mac("02:fa:00:00:01:0A").unwrap();
        assert_eq!(mac, [0x02, 0xfa, 0, 0, 1, 0x0a]);
        assert_eq!(format_mac(&mac), "02:fa:00:00:01:0a");
        for bad in [
            "",
            "02:fa:00:00:01",
            "02:fa:00:00:01:0a:00",
            "2:fa:0:0:1:a",
            "zz:fa:00:00:01:0a",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_ack_and_a_refusal_with_its_kernel_text_are_read() {
        // nlmsghdr(len, NLMSG_ERROR, flags, seq 7, pid 0) + code.
        let mut ack = Vec::new();
        ack.extend_from_slice(&20u32.to_ne_bytes());
        ack.extend_from_slice(&2u16.to_ne_bytes());
        ack.extend_from_slice(&0u16.to_ne_bytes());
        ack.extend_from_slice(&7u32.to_ne_bytes());
        ack.extend_from_slice(&0u32.to_ne_bytes());
        ack.extend_from_slice(&0i32.to_ne_bytes());
        let (len, seq, outcome) = parse_ack(&ack).unwrap();
        assert_eq!((len, seq), (20, 7));
        assert!(outcome.unwrap().is_ok());

        let text = b"Master device not found\0";
        let attr_len = 4 + text.len();
        let total = 16 + 4 + 16 + align(attr_len);
        let mut nack = Vec::new();
        nack.extend_from_slice(&(total as u32).to_ne_bytes());
        nack.extend_from_slice(&2u16.to_ne_bytes());
        nack.extend_from_slice(&NLM_F_ACK_TLVS.to_ne_bytes());
        nack.extend_from_slice(&8u32.to_ne_bytes());
        nack.extend_from_slice(&0u32.to_ne_bytes());
        nack.extend_from_slice(&(-libc::ENODEV).to_ne_bytes());
        nack.extend_from_slice(&[0u8; 16]);
        nack.extend_from_slice(&(attr_len as u16).to_ne_bytes());
        nack.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        nack.extend_from_slice(text);
        nack.resize(total, 0);
        let (_, seq, outcome) = parse_ack(&nack).unwrap();
        assert_eq!(seq, 8);
        let (errno, e) = outcome.unwrap().unwrap_err();
        assert_eq!(errno, libc::ENODEV);
        assert!(e.to_string().ends_with(": Master device not found"), "{e}");
        assert!(e.to_string().contains("No such device"), "{e}");
        assert!(parse_ack(&nack[..10]).is_err());
    }

    #[test]
    fn a_refusal_names_the_operation_and_the_interface() {
        let req = Request::add_veth(
            "n1-pub",
            &LinkChange {
                up: Some(true),
                master: Some(4),
                mac: None,
            },
            &VethPeer {
                name: "public",
                netns: None,
                mac: parse_mac("02:fa:00:00:01:01"),
                index: 2,
                up: true,
            },
        );
        assert_eq!(
            req.op(),
            "add veth n1-pub (master index 4 up) with peer public address 02:fa:00:00:01:01"
        );
        let e = RtnlError::Refused {
            op: req.op,
            errno: libc::EEXIST,
            source: io::Error::from_raw_os_error(libc::EEXIST),
        };
        assert!(crate::error::chain(&e).starts_with("cannot add veth n1-pub"));
        assert!(crate::error::chain(&e).ends_with("File exists (os error 17)"));
    }

    #[test]
    fn a_request_encodes_as_one_aligned_netlink_message() {
        let mut out = Vec::new();
        let req = Request::add_addr(2, "public", Ipv4Addr::new(10, 1, 0, 11), 24);
        encode(&mut out, req.msg.clone(), NLM_F_REQUEST | NLM_F_ACK, 3);
        encode(&mut out, req.msg, NLM_F_REQUEST | NLM_F_ACK, 4);
        let first = NetlinkBuffer::new_checked(&out[..]).unwrap();
        let len = first.length() as usize;
        assert_eq!(len % 4, 0);
        assert_eq!(out.len(), 2 * len);
        let back = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&out[len..]).unwrap();
        assert_eq!(back.header.sequence_number, 4);
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) = back.payload else {
            panic!("not an address");
        };
        assert_eq!(to_addr(a).unwrap().ip, Ipv4Addr::new(10, 1, 0, 11));
    }
}
