//! Cluster messages between nodes' services, and their authenticated binary
//! encoding.
//!
//! Every datagram is `header | body | tag`: magic `FLCM` (4), version (1),
//! kind (1), body length (2, little endian), the body, then an HMAC-SHA256
//! tag (32) over everything before it, keyed with the cluster's key. Decoding
//! checks length, magic and version, then verifies the tag in constant time,
//! and only then reads the kind and the body: nothing from outside the
//! cluster (a spoofed poison packet, a forged heartbeat) is ever parsed into
//! a [`ClusterMessage`]. Decoding never panics.
//!
//! This module does no I/O and holds no state beyond the reject counts of an
//! [`Inbox`]. The key proves a datagram came from a holder of the key, not
//! which node: `from` is the sender's claim. Replays of recorded datagrams
//! are not detected here (see the membership's incarnation check).

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const MAGIC: [u8; 4] = *b"FLCM";
/// The encoding version this module writes and reads.
pub const VERSION: u8 = 1;
/// Bytes before the body.
pub const HEADER_LEN: usize = 8;
/// Bytes of the HMAC-SHA256 tag at the end.
pub const TAG_LEN: usize = 32;
/// The largest body (a GUM payload plus its fields) a datagram may carry.
pub const MAX_BODY_LEN: usize = u16::MAX as usize;
/// The shortest key [`ClusterKey::new`] accepts.
pub const MIN_KEY_LEN: usize = 16;

/// A node's number in the cluster ("Node 1", "Node 2", ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One of the cluster's networks; heartbeats go over each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Network {
    /// The client-facing network ('Public').
    Public,
    /// The interconnect between the nodes ('Private').
    Private,
}

impl Network {
    /// Both networks, in a fixed order.
    pub const ALL: [Network; 2] = [Network::Public, Network::Private];

    /// The name the modelled system logs ('Public', 'Private').
    pub fn name(self) -> &'static str {
        match self {
            Network::Public => "Public",
            Network::Private => "Private",
        }
    }

    fn code(self) -> u8 {
        match self {
            Network::Public => 0,
            Network::Private => 1,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(Network::Public),
            1 => Some(Network::Private),
            _ => None,
        }
    }
}

/// Why a node is sent a poison packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoisonReason {
    /// It was evicted from membership and is still (or again) talking.
    Evicted,
    /// It failed, or fell behind on, a global update.
    GumFailed,
}

impl PoisonReason {
    fn code(self) -> u8 {
        match self {
            PoisonReason::Evicted => 1,
            PoisonReason::GumFailed => 2,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        match c {
            1 => Some(PoisonReason::Evicted),
            2 => Some(PoisonReason::GumFailed),
            _ => None,
        }
    }
}

/// A message between the services of two nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterMessage {
    /// "I am alive", sent every heartbeat interval on each network.
    Heartbeat {
        /// The sender.
        from: NodeId,
        /// The network it was sent on.
        network: Network,
        /// Per-sender sequence number.
        seq: u64,
        /// The sender's incarnation: a new value each time its service
        /// starts, so an evicted node that restarted can be told from one
        /// that kept running.
        incarnation: u64,
    },
    /// The sender's membership view after a regroup.
    Regroup {
        /// The sender.
        from: NodeId,
        /// The view's number; grows with each regroup on the sender.
        epoch: u64,
        /// The members, sorted.
        members: Vec<NodeId>,
    },
    /// Stop your service at once.
    Poison {
        /// The sender (a node on the side holding quorum).
        from: NodeId,
        /// The poisoned node.
        to: NodeId,
        /// Why.
        reason: PoisonReason,
    },
    /// A cluster-wide update, applied in `seq` order on every node.
    GumUpdate {
        /// The issuing node.
        from: NodeId,
        /// The cluster-wide sequence number.
        seq: u64,
        /// The update itself, opaque here.
        payload: Vec<u8>,
    },
    /// The sender applied update `seq`.
    GumAck {
        /// The sender.
        from: NodeId,
        /// The update.
        seq: u64,
    },
    /// The sender could not apply update `seq` (failed or out of order).
    GumFail {
        /// The sender.
        from: NodeId,
        /// The update.
        seq: u64,
    },
    /// A fact about a resource group on the sender.
    GroupEvent {
        /// The sender.
        from: NodeId,
        /// The group's name.
        group: String,
        /// What happened to it there.
        state: GroupState,
    },
}

/// What a [`ClusterMessage::GroupEvent`] reports about a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// The group is online on the sender.
    Online,
    /// Bringing the group online on the sender failed.
    AttemptFailed,
    /// The sender took the group offline.
    Offline,
    /// Every possible owner failed within the failover window: the group
    /// stays offline, failed (sent by the lowest-id member of the side
    /// holding quorum).
    Failed,
}

impl GroupState {
    fn code(self) -> u8 {
        match self {
            GroupState::Online => 1,
            GroupState::AttemptFailed => 2,
            GroupState::Offline => 3,
            GroupState::Failed => 4,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => GroupState::Online,
            2 => GroupState::AttemptFailed,
            3 => GroupState::Offline,
            4 => GroupState::Failed,
            _ => return None,
        })
    }
}

/// The cluster's shared secret. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey(Vec<u8>);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterKey({} bytes)", self.0.len())
    }
}

/// The key is too short to be a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cluster key of {0} bytes, at least {MIN_KEY_LEN} needed")]
pub struct KeyError(pub usize);

impl ClusterKey {
    /// A key of at least [`MIN_KEY_LEN`] bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_KEY_LEN {
            return Err(KeyError(bytes.len()));
        }
        Ok(ClusterKey(bytes))
    }

    /// A key from its hex text, as the configuration database holds it;
    /// `None` when it is not hex or shorter than [`MIN_KEY_LEN`] bytes.
    pub fn from_hex(text: &str) -> Option<Self> {
        if !text.len().is_multiple_of(2) {
            return None;
        }
        let bytes = (0..text.len() / 2)
            .map(|i| u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        ClusterKey::new(bytes).ok()
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length; this cannot fail.
        HmacSha256::new_from_slice(&self.0).expect("hmac accepts any key length")
    }
}

/// Why a datagram is not a cluster message. Nothing rejected is acted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than its header says (or than a header).
    #[error("truncated datagram: {got} bytes, expected {expected}")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes the header announces (or the minimum).
        expected: usize,
    },
    /// Longer than its header says.
    #[error("datagram of {got} bytes, expected {expected}")]
    Trailing {
        /// Bytes received.
        got: usize,
        /// Bytes the header announces.
        expected: usize,
    },
    /// Not a faultline cluster datagram.
    #[error("bad magic")]
    Magic,
    /// Another encoding version.
    #[error("unsupported version {0}")]
    Version(u8),
    /// The tag does not match: from outside the cluster, or altered.
    #[error("bad message authentication code")]
    BadMac,
    /// Authentic, but of a kind this version does not know.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// Authentic, but the body does not fit its kind.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The message would not fit in a datagram.
    #[error("body of {0} bytes is too large")]
    TooLarge(usize),
}

impl ClusterMessage {
    fn kind(&self) -> u8 {
        match self {
            ClusterMessage::Heartbeat { .. } => 1,
            ClusterMessage::Regroup { .. } => 2,
            ClusterMessage::Poison { .. } => 3,
            ClusterMessage::GumUpdate { .. } => 4,
            ClusterMessage::GumAck { .. } => 5,
            ClusterMessage::GumFail { .. } => 6,
            ClusterMessage::GroupEvent { .. } => 7,
        }
    }

    /// The node that claims to have sent it.
    pub fn from(&self) -> NodeId {
        match self {
            ClusterMessage::Heartbeat { from, .. }
            | ClusterMessage::Regroup { from, .. }
            | ClusterMessage::Poison { from, .. }
            | ClusterMessage::GumUpdate { from, .. }
            | ClusterMessage::GumAck { from, .. }
            | ClusterMessage::GumFail { from, .. }
            | ClusterMessage::GroupEvent { from, .. } => *from,
        }
    }

    fn body(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&self.from().0.to_le_bytes());
        match self {
            ClusterMessage::Heartbeat {
                network,
                seq,
                incarnation,
                ..
            } => {
                b.push(network.code());
                b.extend_from_slice(&seq.to_le_bytes());
                b.extend_from_slice(&incarnation.to_le_bytes());
            }
            ClusterMessage::Regroup { epoch, members, .. } => {
                b.extend_from_slice(&epoch.to_le_bytes());
                b.extend_from_slice(&(members.len() as u32).to_le_bytes());
                for m in members {
                    b.extend_from_slice(&m.0.to_le_bytes());
                }
            }
            ClusterMessage::Poison { to, reason, .. } => {
                b.extend_from_slice(&to.0.to_le_bytes());
                b.push(reason.code());
            }
            ClusterMessage::GumUpdate { seq, payload, .. } => {
                b.extend_from_slice(&seq.to_le_bytes());
                b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
                b.extend_from_slice(payload);
            }
            ClusterMessage::GumAck { seq, .. } | ClusterMessage::GumFail { seq, .. } => {
                b.extend_from_slice(&seq.to_le_bytes());
            }
            ClusterMessage::GroupEvent { group, state, .. } => {
                b.push(state.code());
                b.extend_from_slice(&(group.len() as u32).to_le_bytes());
                b.extend_from_slice(group.as_bytes());
            }
        }
        b
    }

    /// Encodes and signs with `key`. Fails only if the body is larger than
    /// [`MAX_BODY_LEN`] (a huge GUM payload or member list).
    pub fn encode(&self, key: &ClusterKey) -> Result<Vec<u8>, WireError> {
        let body = self.body();
        let body_len = u16::try_from(body.len()).map_err(|_| WireError::TooLarge(body.len()))?;
        let mut out = Vec::with_capacity(HEADER_LEN + body.len() + TAG_LEN);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.kind());
        out.extend_from_slice(&body_len.to_le_bytes());
        out.extend_from_slice(&body);
        let mut mac = key.mac();
        mac.update(&out);
        out.extend_from_slice(&mac.finalize().into_bytes());
        Ok(out)
    }

    /// Verifies and decodes a datagram.
    pub fn decode(b: &[u8], key: &ClusterKey) -> Result<Self, WireError> {
        let min = HEADER_LEN + TAG_LEN;
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated {
                got: b.len(),
                expected: min,
            });
        }
        if b[0..4] != MAGIC {
            return Err(WireError::Magic);
        }
        if b[4] != VERSION {
            return Err(WireError::Version(b[4]));
        }
        let body_len = usize::from(u16::from_le_bytes([b[6], b[7]]));
        let expected = HEADER_LEN + body_len + TAG_LEN;
        if b.len() < expected {
            return Err(WireError::Truncated {
                got: b.len(),
                expected,
            });
        }
        if b.len() > expected {
            return Err(WireError::Trailing {
                got: b.len(),
                expected,
            });
        }
        let (signed, tag) = b.split_at(HEADER_LEN + body_len);
        let mut mac = key.mac();
        mac.update(signed);
        mac.verify_slice(tag).map_err(|_| WireError::BadMac)?;
        parse(b[5], &signed[HEADER_LEN..])
    }
}

/// Reads the body of an authenticated message.
fn parse(kind: u8, body: &[u8]) -> Result<ClusterMessage, WireError> {
    let mut r = Reader { b: body };
    let what = match kind {
        1 => "heartbeat",
        2 => "regroup",
        3 => "poison",
        4 => "gum update",
        5 => "gum ack",
        6 => "gum fail",
        7 => "group event",
        k => return Err(WireError::UnknownKind(k)),
    };
    let bad = WireError::Malformed(what);
    let from = NodeId(r.u32().ok_or(bad.clone())?);
    let msg = (|| {
        Some(match kind {
            1 => ClusterMessage::Heartbeat {
                from,
                network: Network::from_code(r.u8()?)?,
                seq: r.u64()?,
                incarnation: r.u64()?,
            },
            2 => {
                let epoch = r.u64()?;
                let n = r.u32()? as usize;
                // Each member takes 4 bytes: refuse counts the body cannot hold
                // before allocating.
                if n > r.b.len() / 4 {
                    return None;
                }
                let mut members = Vec::with_capacity(n);
                for _ in 0..n {
                    members.push(NodeId(r.u32()?));
                }
                ClusterMessage::Regroup {
                    from,
                    epoch,
                    members,
                }
            }
            3 => ClusterMessage::Poison {
                from,
                to: NodeId(r.u32()?),
                reason: PoisonReason::from_code(r.u8()?)?,
            },
            4 => {
                let seq = r.u64()?;
                let n = r.u32()? as usize;
                ClusterMessage::GumUpdate {
                    from,
                    seq,
                    payload: r.take(n)?.to_vec(),
                }
            }
            5 => ClusterMessage::GumAck {
                from,
                seq: r.u64()?,
            },
            6 => ClusterMessage::GumFail {
                from,
                seq: r.u64()?,
            },
            _ => {
                let state = GroupState::from_code(r.u8()?)?;
                let n = r.u32()? as usize;
                let group = String::from_utf8(r.take(n)?.to_vec()).ok()?;
                ClusterMessage::GroupEvent { from, group, state }
            }
        })
    })()
    .ok_or(bad.clone())?;
    if !r.b.is_empty() {
        return Err(bad);
    }
    Ok(msg)
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// How many datagrams an [`Inbox`] dropped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejects {
    /// Truncated, trailing bytes, bad magic or version: not a whole message.
    pub malformed_frame: u64,
    /// Failed authentication: from outside the cluster, or altered.
    pub bad_mac: u64,
    /// Authentic but unreadable (unknown kind, bad body).
    pub bad_body: u64,
}

impl Rejects {
    /// All drops.
    pub fn total(&self) -> u64 {
        self.malformed_frame + self.bad_mac + self.bad_body
    }
}

/// The receiving end of the cluster socket: decodes datagrams with the
/// cluster key and counts what it drops. Only what [`Inbox::accept`]
/// returns as `Ok` may reach the membership state machine.
#[derive(Debug, Clone)]
pub struct Inbox {
    key: ClusterKey,
    accepted: u64,
    rejects: Rejects,
}

impl Inbox {
    /// An inbox that trusts `key`.
    pub fn new(key: ClusterKey) -> Self {
        Inbox {
            key,
            accepted: 0,
            rejects: Rejects::default(),
        }
    }

    /// Decodes one datagram; a rejected one is counted and returned as the
    /// error, for the caller to log.
    pub fn accept(&mut self, datagram: &[u8]) -> Result<ClusterMessage, WireError> {
        match ClusterMessage::decode(datagram, &self.key) {
            Ok(m) => {
                self.accepted += 1;
                Ok(m)
            }
            Err(e) => {
                match e {
                    WireError::BadMac => self.rejects.bad_mac += 1,
                    WireError::UnknownKind(_) | WireError::Malformed(_) => {
                        self.rejects.bad_body += 1
                    }
                    _ => self.rejects.malformed_frame += 1,
                }
                Err(e)
            }
        }
    }

    /// Datagrams accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Datagrams dropped so far.
    pub fn rejects(&self) -> Rejects {
        self.rejects
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ClusterKey {
        ClusterKey::new(*b"cluster-key-0123456789").unwrap()
    }

    fn all_kinds() -> Vec<ClusterMessage> {
        vec![
            ClusterMessage::Heartbeat {
                from: NodeId(1),
                network: Network::Private,
                seq: 7,
                incarnation: u64::MAX,
            },
            ClusterMessage::Regroup {
                from: NodeId(2),
                epoch: 3,
                members: vec![NodeId(1), NodeId(2)],
            },
            ClusterMessage::Poison {
                from: NodeId(1),
                to: NodeId(2),
                reason: PoisonReason::Evicted,
            },
            ClusterMessage::GumUpdate {
                from: NodeId(1),
                seq: 9,
                payload: b"group=sql owner=2".to_vec(),
            },
            ClusterMessage::GumAck {
                from: NodeId(3),
                seq: 9,
            },
            ClusterMessage::GumFail {
                from: NodeId(3),
                seq: 10,
            },
            ClusterMessage::GroupEvent {
                from: NodeId(2),
                group: "sql".into(),
                state: GroupState::AttemptFailed,
            },
            ClusterMessage::GroupEvent {
                from: NodeId(1),
                group: String::new(),
                state: GroupState::Failed,
            },
        ]
    }

    /// Signs arbitrary header fields and body, as a key holder could.
    fn signed(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.push(VERSION);
        out.push(kind);
        out.extend_from_slice(&(body.len() as u16).to_le_bytes());
        out.extend_from_slice(body);
        let mut mac = key().mac();
        mac.update(&out);
        out.extend_from_slice(&mac.finalize().into_bytes());
        out
    }

    #[test]
    fn every_kind_round_trips() {
        for m in all_kinds() {
            let b = m.encode(&key()).unwrap();
            assert_eq!(ClusterMessage::decode(&b, &key()), Ok(m));
        }
    }

    #[test]
    fn any_tampered_byte_is_rejected() {
        for m in all_kinds() {
            let good = m.encode(&key()).unwrap();
            for i in 0..good.len() {
                let mut bad = good.clone();
                bad[i] ^= 0x40;
                assert!(
                    ClusterMessage::decode(&bad, &key()).is_err(),
                    "{m:?} byte {i}"
                );
            }
        }
    }

    #[test]
    fn a_body_change_is_a_bad_mac_not_a_different_message() {
        let poison = ClusterMessage::Poison {
            from: NodeId(1),
            to: NodeId(2),
            reason: PoisonReason::Evicted,
        };
        let mut b = poison.encode(&key()).unwrap();
        b[HEADER_LEN + 4] = 3; // retarget the poison to node 3
        assert_eq!(ClusterMessage::decode(&b, &key()), Err(WireError::BadMac));
    }

    #[test]
    fn wrong_key_is_rejected() {
        let other = ClusterKey::new(*b"another-cluster-key!").unwrap();
        for m in all_kinds() {
            let b = m.encode(&other).unwrap();
            assert_eq!(ClusterMessage::decode(&b, &key()), Err(WireError::BadMac));
        }
    }

    #[test]
    fn truncated_and_padded_datagrams_are_rejected() {
        let good = all_kinds()[0].encode(&key()).unwrap();
        for n in 0..good.len() {
            let e = ClusterMessage::decode(&good[..n], &key()).unwrap_err();
            assert!(matches!(e, WireError::Truncated { .. }), "{n}: {e:?}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            ClusterMessage::decode(&long, &key()),
            Err(WireError::Trailing { .. })
        ));
        let mut bad = good;
        bad[0] = b'X';
        assert_eq!(ClusterMessage::decode(&bad, &key()), Err(WireError::Magic));
    }

    #[test]
    fn authentic_but_unknown_or_malformed_is_a_typed_error() {
        assert_eq!(
            ClusterMessage::decode(&signed(99, &[0; 4]), &key()),
            Err(WireError::UnknownKind(99))
        );
        // A heartbeat body cut short, with a valid tag.
        assert_eq!(
            ClusterMessage::decode(&signed(1, &[1, 0, 0, 0, 0]), &key()),
            Err(WireError::Malformed("heartbeat"))
        );
        // A regroup claiming four billion members.
        let mut body = 1u32.to_le_bytes().to_vec();
        body.extend_from_slice(&0u64.to_le_bytes());
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            ClusterMessage::decode(&signed(2, &body), &key()),
            Err(WireError::Malformed("regroup"))
        );
        // A network code that does not exist.
        let mut body = 1u32.to_le_bytes().to_vec();
        body.push(7);
        body.extend_from_slice(&[0; 16]);
        assert_eq!(
            ClusterMessage::decode(&signed(1, &body), &key()),
            Err(WireError::Malformed("heartbeat"))
        );
    }

    #[test]
    fn group_events_round_trip_and_refuse_bad_states_and_names() {
        for state in [
            GroupState::Online,
            GroupState::AttemptFailed,
            GroupState::Offline,
            GroupState::Failed,
        ] {
            let m = ClusterMessage::GroupEvent {
                from: NodeId(3),
                group: "exchange".into(),
                state,
            };
            assert_eq!(
                ClusterMessage::decode(&m.encode(&key()).unwrap(), &key()),
                Ok(m)
            );
        }
        let body = |state: u8, name: &[u8]| {
            let mut b = 1u32.to_le_bytes().to_vec();
            b.push(state);
            b.extend_from_slice(&(name.len() as u32).to_le_bytes());
            b.extend_from_slice(name);
            b
        };
        let bad = Err(WireError::Malformed("group event"));
        assert_eq!(
            ClusterMessage::decode(&signed(7, &body(9, b"g")), &key()),
            bad
        );
        assert_eq!(
            ClusterMessage::decode(&signed(7, &body(1, &[0xff, 0xfe])), &key()),
            bad
        );
        let mut long = body(1, b"g");
        long[5] = 200; // claims a longer name than the body holds
        assert_eq!(ClusterMessage::decode(&signed(7, &long), &key()), bad);
        // Forged with another key: never parsed.
        let forger = ClusterKey::new(*b"not-the-cluster-key").unwrap();
        let forged = ClusterMessage::GroupEvent {
            from: NodeId(1),
            group: "sql".into(),
            state: GroupState::Offline,
        }
        .encode(&forger)
        .unwrap();
        assert_eq!(
            ClusterMessage::decode(&forged, &key()),
            Err(WireError::BadMac)
        );
    }

    #[test]
    fn short_keys_are_refused_and_never_printed() {
        assert_eq!(ClusterKey::new(*b"short"), Err(KeyError(5)));
        assert_eq!(format!("{:?}", key()), "ClusterKey(22 bytes)");
    }

    #[test]
    fn oversized_payload_is_refused_at_encode() {
        let m = ClusterMessage::GumUpdate {
            from: NodeId(1),
            seq: 1,
            payload: vec![0; MAX_BODY_LEN],
        };
        assert!(matches!(m.encode(&key()), Err(WireError::TooLarge(_))));
    }

    #[test]
    fn inbox_passes_authentic_messages_and_counts_the_rest() {
        let mut inbox = Inbox::new(key());
        let forger = ClusterKey::new(*b"not-the-cluster-key").unwrap();
        let spoofed = ClusterMessage::Poison {
            from: NodeId(1),
            to: NodeId(2),
            reason: PoisonReason::Evicted,
        }
        .encode(&forger)
        .unwrap();
        assert_eq!(inbox.accept(&spoofed), Err(WireError::BadMac));
        assert!(matches!(
            inbox.accept(b"junk"),
            Err(WireError::Truncated { .. })
        ));
        assert_eq!(
            inbox.accept(&signed(42, &[])),
            Err(WireError::UnknownKind(42))
        );
        let hb = all_kinds().remove(0);
        assert_eq!(inbox.accept(&hb.encode(&key()).unwrap()), Ok(hb));
        assert_eq!(inbox.accepted(), 1);
        assert_eq!(
            inbox.rejects(),
            Rejects {
                malformed_frame: 1,
                bad_mac: 1,
                bad_body: 1
            }
        );
        assert_eq!(inbox.rejects().total(), 3);
    }
}
