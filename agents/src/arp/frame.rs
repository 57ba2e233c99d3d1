//! The Ethernet + ARP frame codec (RFC 826, with RFC 5227's probe and
//! announcement): 14 bytes of Ethernet header and 28 bytes of ARP for
//! Ethernet hardware and IPv4. Pure data: no sockets, and parsing never
//! panics on any input.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// Length of an encoded frame: Ethernet header (14) + ARP body (28).
pub const FRAME_LEN: usize = 42;
const ETH_HEADER_LEN: usize = 14;
const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

/// An Ethernet (MAC) address. Serialized as `aa:bb:cc:dd:ee:ff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00, the unknown target hardware address of a request.
    pub const ZERO: MacAddr = MacAddr([0; 6]);
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// A string is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}")]
pub struct MacParseError(pub String);

impl FromStr for MacAddr {
    type Err = MacParseError;

    fn from_str(s: &str) -> Result<MacAddr, MacParseError> {
        let err = || MacParseError(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(err)?;
            if part.is_empty() || part.len() > 2 {
                return Err(err());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<MacAddr, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The ARP operation field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArpOp {
    /// 1: who has `target_ip`?
    Request,
    /// 2: `sender_ip` is at `sender_mac`.
    Reply,
}

/// What an ARP packet means, beyond its operation field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArpKind {
    /// A request with sender IP 0.0.0.0 (RFC 5227 probe).
    Probe,
    /// A request or reply whose sender IP equals its target IP (gratuitous ARP).
    Announcement,
    /// Any other request.
    Request,
    /// Any other reply.
    Reply,
}

/// The 28-byte ARP body for Ethernet and IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket {
    /// Request or reply.
    pub op: ArpOp,
    /// Sender hardware address.
    pub sender_mac: MacAddr,
    /// Sender protocol address (0.0.0.0 in a probe).
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in a request).
    pub target_mac: MacAddr,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpPacket {
    /// What the packet means: probe, announcement, request or reply.
    pub fn kind(&self) -> ArpKind {
        match self.op {
            ArpOp::Request if self.sender_ip.is_unspecified() => ArpKind::Probe,
            _ if self.sender_ip == self.target_ip => ArpKind::Announcement,
            ArpOp::Request => ArpKind::Request,
            ArpOp::Reply => ArpKind::Reply,
        }
    }
}

/// An Ethernet frame carrying ARP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpFrame {
    /// Ethernet destination.
    pub eth_dst: MacAddr,
    /// Ethernet source.
    pub eth_src: MacAddr,
    /// The ARP body.
    pub arp: ArpPacket,
}

/// Why bytes are not an Ethernet ARP frame for IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Fewer than 42 bytes.
    #[error("frame of {0} bytes is too short for ARP")]
    TooShort(usize),
    /// The EtherType is not ARP.
    #[error("EtherType {0:#06x} is not ARP")]
    NotArp(u16),
    /// ARP for other hardware or protocol types, or other address lengths.
    #[error(
        "ARP for htype {htype}, ptype {ptype:#06x}, hlen {hlen}, plen {plen} is not Ethernet/IPv4"
    )]
    Unsupported {
        /// Hardware type.
        htype: u16,
        /// Protocol type.
        ptype: u16,
        /// Hardware address length.
        hlen: u8,
        /// Protocol address length.
        plen: u8,
    },
    /// An operation other than request (1) or reply (2).
    #[error("ARP operation {0} is neither request nor reply")]
    Op(u16),
}

fn mac_at(b: &[u8], at: usize) -> MacAddr {
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[at..at + 6]);
    MacAddr(m)
}

fn ip_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

impl ArpFrame {
    /// A broadcast request from `mac`/`sender_ip`: who has `target_ip`?
    pub fn request(mac: MacAddr, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> ArpFrame {
        ArpFrame {
            eth_dst: MacAddr::BROADCAST,
            eth_src: mac,
            arp: ArpPacket {
                op: ArpOp::Request,
                sender_mac: mac,
                sender_ip,
                target_mac: MacAddr::ZERO,
                target_ip,
            },
        }
    }

    /// An RFC 5227 probe for `ip`: a request with sender IP 0.0.0.0.
    pub fn probe(mac: MacAddr, ip: Ipv4Addr) -> ArpFrame {
        ArpFrame::request(mac, Ipv4Addr::UNSPECIFIED, ip)
    }

    /// An RFC 5227 announcement (gratuitous ARP) of `ip`: a request with
    /// sender IP and target IP both `ip`.
    pub fn announcement(mac: MacAddr, ip: Ipv4Addr) -> ArpFrame {
        ArpFrame::request(mac, ip, ip)
    }

    /// A unicast reply from `mac`/`ip` to `to_mac`/`to_ip`.
    pub fn reply(mac: MacAddr, ip: Ipv4Addr, to_mac: MacAddr, to_ip: Ipv4Addr) -> ArpFrame {
        ArpFrame {
            eth_dst: to_mac,
            eth_src: mac,
            arp: ArpPacket {
                op: ArpOp::Reply,
                sender_mac: mac,
                sender_ip: ip,
                target_mac: to_mac,
                target_ip: to_ip,
            },
        }
    }

    /// The frame's 42 bytes (the driver pads it to the Ethernet minimum).
    pub fn encode(&self) -> [u8; FRAME_LEN] {
        let mut b = [0u8; FRAME_LEN];
        b[0..6].copy_from_slice(&self.eth_dst.0);
        b[6..12].copy_from_slice(&self.eth_src.0);
        b[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
        let a = &mut b[ETH_HEADER_LEN..];
        a[0..2].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        a[2..4].copy_from_slice(&PTYPE_IPV4.to_be_bytes());
        a[4] = 6;
        a[5] = 4;
        let op: u16 = match self.arp.op {
            ArpOp::Request => 1,
            ArpOp::Reply => 2,
        };
        a[6..8].copy_from_slice(&op.to_be_bytes());
        a[8..14].copy_from_slice(&self.arp.sender_mac.0);
        a[14..18].copy_from_slice(&self.arp.sender_ip.octets());
        a[18..24].copy_from_slice(&self.arp.target_mac.0);
        a[24..28].copy_from_slice(&self.arp.target_ip.octets());
        b
    }

    /// Parses an Ethernet frame (without FCS; trailing padding is ignored).
    /// Never panics.
    pub fn parse(b: &[u8]) -> Result<ArpFrame, ParseError> {
        if b.len() < ETH_HEADER_LEN {
            return Err(ParseError::TooShort(b.len()));
        }
        let ethertype = u16_at(b, 12);
        if ethertype != ETH_P_ARP {
            return Err(ParseError::NotArp(ethertype));
        }
        if b.len() < FRAME_LEN {
            return Err(ParseError::TooShort(b.len()));
        }
        let a = &b[ETH_HEADER_LEN..FRAME_LEN];
        let (htype, ptype, hlen, plen) = (u16_at(a, 0), u16_at(a, 2), a[4], a[5]);
        if (htype, ptype, hlen, plen) != (HTYPE_ETHERNET, PTYPE_IPV4, 6, 4) {
            return Err(ParseError::Unsupported {
                htype,
                ptype,
                hlen,
                plen,
            });
        }
        let op = match u16_at(a, 6) {
            1 => ArpOp::Request,
            2 => ArpOp::Reply,
            other => return Err(ParseError::Op(other)),
        };
        Ok(ArpFrame {
            eth_dst: mac_at(b, 0),
            eth_src: mac_at(b, 6),
            arp: ArpPacket {
                op,
                sender_mac: mac_at(a, 8),
                sender_ip: ip_at(a, 14),
                target_mac: mac_at(a, 18),
                target_ip: ip_at(a, 24),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
    const OTHER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
    const IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
    const IP2: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

    #[test]
    fn every_constructor_round_trips_and_is_classified() {
        let cases = [
            (ArpFrame::probe(MAC, IP), ArpKind::Probe),
            (ArpFrame::announcement(MAC, IP), ArpKind::Announcement),
            (ArpFrame::request(MAC, IP2, IP), ArpKind::Request),
            (ArpFrame::reply(MAC, IP, OTHER, IP2), ArpKind::Reply),
            (ArpFrame::reply(MAC, IP, OTHER, IP), ArpKind::Announcement),
        ];
        for (frame, kind) in cases {
            let bytes = frame.encode();
            assert_eq!(ArpFrame::parse(&bytes), Ok(frame));
            assert_eq!(frame.arp.kind(), kind, "{frame:?}");
        }
    }

    #[test]
    fn a_probe_encodes_to_the_rfc_5227_bytes() {
        let bytes = ArpFrame::probe(MAC, IP).encode();
        #[rustfmt::skip]
        let expected: [u8; FRAME_LEN] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06,
            0, 1, 0x08, 0x00, 6, 4, 0, 1,
            2, 0, 0, 0, 0, 1, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 10, 99, 0, 1,
        ];
        assert_eq!(bytes, expected);
    }

    #[test]
    fn padding_after_the_arp_body_is_ignored() {
        let mut padded = ArpFrame::reply(MAC, IP, OTHER, IP2).encode().to_vec();
        padded.resize(60, 0xaa);
        assert_eq!(
            ArpFrame::parse(&padded),
            Ok(ArpFrame::reply(MAC, IP, OTHER, IP2))
        );
    }

    #[test]
    fn malformed_frames_are_refused_not_panicked_on() {
        let good = ArpFrame::probe(MAC, IP).encode();
        for len in 0..FRAME_LEN {
            assert!(ArpFrame::parse(&good[..len]).is_err(), "length {len}");
        }
        let mut ipv4 = good;
        ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(ArpFrame::parse(&ipv4), Err(ParseError::NotArp(0x0800)));
        let mut op = good;
        op[21] = 3;
        assert_eq!(ArpFrame::parse(&op), Err(ParseError::Op(3)));
        let mut hlen = good;
        hlen[18] = 8;
        assert!(matches!(
            ArpFrame::parse(&hlen),
            Err(ParseError::Unsupported { hlen: 8, .. })
        ));
        // Every single-byte corruption of every byte parses or errs, never panics.
        for i in 0..FRAME_LEN {
            for v in [0u8, 1, 2, 0x7f, 0xff] {
                let mut b = good;
                b[i] = v;
                let _ = ArpFrame::parse(&b);
            }
        }
    }

    #[test]
    fn mac_addresses_print_parse_and_serialize_as_text() {
        let mac = MacAddr([0x02, 0xab, 0, 0x10, 0xff, 9]);
        assert_eq!(mac.to_string(), "02:ab:00:10:ff:09");
        assert_eq!("02:AB:0:10:ff:09".parse(), Ok(mac));
        for bad in [
            "",
            "02:ab:00:10:ff",
            "02:ab:00:10:ff:09:00",
            "02:ab:00:10:ff:xx",
            "002:ab:00:10:ff:09",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&mac).unwrap();
        assert_eq!(json, "\"02:ab:00:10:ff:09\"");
        assert_eq!(serde_json::from_str::<MacAddr>(&json).unwrap(), mac);
    }
}
