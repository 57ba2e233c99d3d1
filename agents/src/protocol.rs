//! The service-to-watchdog wire protocol: fixed 24-byte datagrams on an
//! abstract unix socket, which the kernel scopes to the node's network
//! namespace, so every node has its own.
//!
//! Layout (little endian): magic `FLWD` (4), kind (1), action (1), reserved
//! (2), service pid (4), hang timeout in ms (4), sequence number (8).
//! Decoding never panics; anything else is rejected.

use crate::events::RecoveryAction;

/// The length of every message.
pub const MESSAGE_LEN: usize = 24;
const MAGIC: [u8; 4] = *b"FLWD";

/// The abstract socket name the watchdog binds in the node's namespace.
pub fn watchdog_socket_name(node: &str) -> String {
    format!("faultline-watchdog-{node}")
}

/// What a message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// The service started and passes its settings (read from its
    /// configuration database at start): arms the countdown.
    Hello,
    /// The service is alive: resets the countdown.
    Heartbeat,
    /// The service stops cleanly: disarms the countdown.
    Stopping,
}

/// One message from the service to its watchdog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    /// What it says.
    pub kind: MessageKind,
    /// The service's pid.
    pub pid: u32,
    /// `hang_timeout` in milliseconds (meaningful in `Hello`).
    pub hang_timeout_ms: u32,
    /// `hang_recovery_action` (meaningful in `Hello`).
    pub action: RecoveryAction,
    /// Heartbeat sequence number, from 0 at each service start.
    pub seq: u64,
}

/// Why a datagram was not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Wrong size.
    #[error("datagram of {0} bytes, expected {MESSAGE_LEN}")]
    Length(usize),
    /// Not ours.
    #[error("bad magic")]
    Magic,
    /// Unknown kind byte.
    #[error("unknown message kind {0}")]
    Kind(u8),
    /// Action outside 0-3.
    #[error("unknown recovery action {0}")]
    Action(u8),
}

impl Message {
    /// Encodes into the fixed layout.
    pub fn encode(&self) -> [u8; MESSAGE_LEN] {
        let mut b = [0u8; MESSAGE_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4] = match self.kind {
            MessageKind::Hello => 1,
            MessageKind::Heartbeat => 2,
            MessageKind::Stopping => 3,
        };
        b[5] = self.action.code();
        b[8..12].copy_from_slice(&self.pid.to_le_bytes());
        b[12..16].copy_from_slice(&self.hang_timeout_ms.to_le_bytes());
        b[16..24].copy_from_slice(&self.seq.to_le_bytes());
        b
    }

    /// Decodes a datagram.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        if b.len() != MESSAGE_LEN {
            return Err(DecodeError::Length(b.len()));
        }
        if b[0..4] != MAGIC {
            return Err(DecodeError::Magic);
        }
        let kind = match b[4] {
            1 => MessageKind::Hello,
            2 => MessageKind::Heartbeat,
            3 => MessageKind::Stopping,
            k => return Err(DecodeError::Kind(k)),
        };
        let action = RecoveryAction::from_code(b[5]).ok_or(DecodeError::Action(b[5]))?;
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&b[16..24]);
        Ok(Message {
            kind,
            pid: u32_at(8),
            hang_timeout_ms: u32_at(12),
            action,
            seq: u64::from_le_bytes(seq),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let m = Message {
            kind: MessageKind::Hello,
            pid: 1234,
            hang_timeout_ms: 1000,
            action: RecoveryAction::Bugcheck,
            seq: u64::MAX - 1,
        };
        assert_eq!(Message::decode(&m.encode()), Ok(m));
    }

    #[test]
    fn garbage_is_rejected_not_acted_on() {
        let good = Message {
            kind: MessageKind::Heartbeat,
            pid: 1,
            hang_timeout_ms: 1,
            action: RecoveryAction::Log,
            seq: 1,
        }
        .encode();
        assert_eq!(Message::decode(&good[..10]), Err(DecodeError::Length(10)));
        let mut bad = good;
        bad[0] = b'X';
        assert_eq!(Message::decode(&bad), Err(DecodeError::Magic));
        let mut bad = good;
        bad[4] = 9;
        assert_eq!(Message::decode(&bad), Err(DecodeError::Kind(9)));
        let mut bad = good;
        bad[5] = 4;
        assert_eq!(Message::decode(&bad), Err(DecodeError::Action(4)));
    }
}
