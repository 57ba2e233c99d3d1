//! Suite files: YAML -> raw structs (unknown keys refused) -> a validated
//! [`SuitePlan`]. Every error names the file, line and column.
//!
//! This module reads and validates; it never touches the host.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use faultline_agent::events::RecoveryAction;

pub mod checks;
mod entries;
pub mod faults;
mod faults_cfg;
mod faults_net;
mod faults_res;
mod params;
mod raw;
mod validate;

use crate::plan::{FaultPlan, NodePlan, NodeSettings, SuitePlan};
pub use checks::{DEFAULT_CONFLICT_WINDOW, DEFAULT_SLACK};
pub use params::{Field, Params};
use raw::RawSuite;
pub use raw::Scalar;
use validate::Validator;

/// The longest suite or scenario name.
pub const MAX_NAME_LEN: usize = 64;

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
                message: yaml_message(&e),
            }],
        }
    })?;
    let mut v = Validator {
        file: file.to_string(),
        issues: Vec::new(),
    };
    let plan = v.suite(raw);
    // In the order a reader meets them in the file.
    v.issues.sort_by_key(|i| (i.line, i.column));
    if v.issues.is_empty() {
        Ok(plan)
    } else {
        Err(SuiteError::Invalid { issues: v.issues })
    }
}

/// `base` with one node setting changed, written as a suite writes it
/// (`key` and `value` as in `watchdog_priority: normal`) and validated as a
/// suite's node settings are; `origin` names the source in errors (e.g.
/// `--compare`). Unknown keys and bad values are errors.
pub fn apply_node_setting(
    base: &NodeSettings,
    origin: &str,
    key: &str,
    value: &str,
) -> Result<NodeSettings, SuiteError> {
    let invalid = |message: String| SuiteError::Invalid {
        issues: vec![SuiteIssue {
            file: origin.to_string(),
            line: 1,
            column: 1,
            message,
        }],
    };
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return Err(invalid(format!("`{key}` is not a node setting")));
    }
    let text = format!("{key}: {value}\n");
    let raw: raw::RawNode = serde_saphyr::from_str(&text).map_err(|e| invalid(yaml_message(&e)))?;
    let mut v = Validator {
        file: origin.to_string(),
        issues: Vec::new(),
    };
    let settings = v.settings(&raw, base);
    if v.issues.is_empty() {
        Ok(settings)
    } else {
        Err(SuiteError::Invalid { issues: v.issues })
    }
}

/// The YAML library's message, in our words where it speaks to a
/// programmer (`use from_str_multiple...`), without the position it
/// prefixes (`error: line 6 column 7: `), since we print our own
/// `file:line:col:`, and without its rendered snippet.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    match e.without_snippet() {
        serde_saphyr::Error::MultipleDocuments { .. } => {
            "a suite file holds one YAML document: remove the second `---` and what \
             follows, or put each suite in a file of its own"
                .to_string()
        }
        serde_saphyr::Error::DuplicateMappingKey { key: Some(k), .. } => {
            format!("key `{k}` is given twice")
        }
        serde_saphyr::Error::DuplicateMappingKey { key: None, .. } => {
            "a key is given twice".to_string()
        }
        _ => strip_position(&first_line(&e.to_string())),
    }
}

/// `error: line 6 column 7: unknown field` -> `unknown field`.
fn strip_position(msg: &str) -> String {
    let mut rest = msg.trim();
    rest = rest.strip_prefix("error:").unwrap_or(rest).trim_start();
    if let Some(after) = rest.strip_prefix("line ") {
        let mut words = after.splitn(4, ' ');
        let (line, col_word, col) = (words.next(), words.next(), words.next());
        let is_num = |w: Option<&str>| {
            w.map(|w| w.trim_end_matches(':'))
                .is_some_and(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
        };
        if is_num(line) && col_word == Some("column") && is_num(col) {
            rest = words.next().unwrap_or("").trim_start();
        }
    }
    rest.to_string()
}

/// serde-saphyr's message may carry a rendered snippet after the first line;
/// we print our own `file:line:col:` prefix, so keep the message part only.
fn first_line(msg: &str) -> String {
    let line = msg.lines().find(|l| !l.trim().is_empty()).unwrap_or(msg);
    line.trim().to_string()
}

/// Suite and scenario names become folder names under `--out`: 1 to
/// [`MAX_NAME_LEN`] ASCII letters, digits, `-`, `_` or `.`, not starting
/// with `.` (so never `.` or `..`), no separator.
pub fn valid_path_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
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
    let last_fault_end = faults.iter().map(FaultPlan::end).max().unwrap_or_default();
    let slowest = nodes
        .iter()
        .map(|n| {
            let s = &n.settings;
            let recovery = match s.hang_recovery_action {
                RecoveryAction::Bugcheck => s.restart_delay,
                RecoveryAction::Terminate => s.service_restart_delay,
                _ => Duration::ZERO,
            };
            s.hang_timeout.saturating_add(recovery)
        })
        .max()
        .unwrap_or_default();
    last_fault_end
        .saturating_add(slowest)
        .saturating_add(Duration::from_millis(1500))
}

#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod net_tests;
#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod svc_fault_tests;
#[cfg(test)]
mod table_tests;
#[cfg(test)]
mod tests;
