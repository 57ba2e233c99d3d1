//! Suite files: YAML -> raw structs (unknown keys refused) -> a validated
//! [`SuitePlan`]. Every error names the file, line and column.
//!
//! This module reads and validates; it never touches the host.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use faultline_agent::events::RecoveryAction;

mod raw;
mod validate;

use crate::plan::{FaultPlan, NodePlan, SuitePlan};
use raw::RawSuite;
pub use raw::Scalar;
use validate::Validator;

/// The default `slack` of `detected_within`.
pub const DEFAULT_SLACK: Duration = Duration::from_millis(20);
/// The default `window` of `no_ip_conflict`.
pub const DEFAULT_CONFLICT_WINDOW: Duration = Duration::from_secs(1);
/// The public network's first three octets (10.77.0.0/24).
pub const PUBLIC_NET: [u8; 3] = [10, 77, 0];
/// Node `i` (0-based) has host number `NODE_HOST_BASE + i` on each network.
pub const NODE_HOST_BASE: u8 = 10;
/// The client's host number on the public network.
pub const CLIENT_HOST: u8 = 250;

/// One problem in a suite, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteIssue {
    /// The file.
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: u64,
    /// 1-based column, 0 when unknown.
    pub column: u64,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SuiteIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// A suite that could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The file could not be read.
    #[error("cannot read suite {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid suite.
    #[error("{}", issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// Every problem found.
        issues: Vec<SuiteIssue>,
    },
}

/// Reads and validates a suite file.
pub fn load_suite(path: &Path) -> Result<SuitePlan, SuiteError> {
    let text = std::fs::read_to_string(path).map_err(|source| SuiteError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_suite(&path.display().to_string(), &text)
}

/// Parses and validates suite text; `file` names it in errors.
pub fn parse_suite(file: &str, text: &str) -> Result<SuitePlan, SuiteError> {
    let raw: RawSuite = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        SuiteError::Invalid {
            issues: vec![SuiteIssue {
                file: file.to_string(),
                line,
                column,
                message: first_line(&e.to_string()),
            }],
        }
    })?;
    let mut v = Validator {
        file: file.to_string(),
        issues: Vec::new(),
    };
    let plan = v.suite(raw);
    if v.issues.is_empty() {
        Ok(plan)
    } else {
        Err(SuiteError::Invalid { issues: v.issues })
    }
}

/// serde-saphyr's message may carry a rendered snippet after the first line;
/// we print our own `file:line:col:` prefix, so keep the message part only.
fn first_line(msg: &str) -> String {
    let line = msg.lines().find(|l| !l.trim().is_empty()).unwrap_or(msg);
    line.trim().to_string()
}

/// Node names become parts of interface names (at most 15 bytes with a
/// `-pub` suffix) and namespace names.
pub fn valid_node_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name.len() <= 10
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// When a scenario gives no `duration`: long enough for the last fault to
/// heal, the slowest watchdog to fire after it, and a fenced node to return.
pub fn default_duration(nodes: &[NodePlan], faults: &[FaultPlan]) -> Duration {
    let last_fault_end = faults
        .iter()
        .map(|f| f.at + f.duration)
        .max()
        .unwrap_or_default();
    let slowest = nodes
        .iter()
        .map(|n| {
            let s = &n.settings;
            let recovery = match s.hang_recovery_action {
                RecoveryAction::Bugcheck => s.restart_delay,
                RecoveryAction::Terminate => s.service_restart_delay,
                _ => Duration::ZERO,
            };
            s.hang_timeout + recovery
        })
        .max()
        .unwrap_or_default();
    last_fault_end + slowest + Duration::from_millis(1500)
}

#[cfg(test)]
mod tests;
