//! Typed access to the keys of one fault or check, for the vocabulary
//! tables' parse functions: each accessor reads one key, records a problem
//! with its place when the value is wrong, and remembers nothing else.
//! Which keys exist is the table entry's list; a parse function that reads a
//! key its entry does not list is a bug, caught by the tables' tests.

use std::time::Duration;

use faultline_agent::events::{EventKind, RecoveryAction};
use serde_saphyr::Spanned;

use super::raw::{Scalar, Value};
use super::validate::Validator;

/// The keys of one fault or check, as written, with what validation knows
/// (the scenario's nodes and groups).
pub struct Params<'a> {
    pub(super) v: &'a mut Validator,
    /// `check `x`` or `fault `x``, for messages.
    pub(super) owner: String,
    /// Where problems that belong to no key (a missing key) are reported.
    pub(super) at: &'a Spanned<Value>,
    pub(super) allowed: &'static [&'static str],
    pub(super) given: &'a [(String, Spanned<Value>)],
    pub(super) nodes: &'a [&'a str],
    pub(super) groups: &'a [&'a str],
    /// The node a fault names in its own parameters, for kinds that list
    /// `node` among them (see [`Params::set_fault_node`]).
    pub(super) fault_node: Option<String>,
}

/// A key's outcome: `None` when its value was wrong (the problem is
/// recorded), `Some(None)` when absent, `Some(Some(v))` when given.
pub type Field<T> = Option<Option<T>>;

fn scalar_of(v: &Spanned<Value>) -> Option<Spanned<Scalar>> {
    match &v.value {
        Value::Scalar(s) => Some(Spanned::new(s.clone(), v.referenced, v.defined)),
        Value::List(_) => None,
    }
}

impl Params<'_> {
    fn get(&self, key: &str) -> Option<&Spanned<Value>> {
        debug_assert!(
            self.allowed.contains(&key),
            "{} reads `{key}`, which its table entry does not list",
            self.owner
        );
        self.given.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn issue(&mut self, at: &Spanned<Value>, message: String) {
        self.v.issue(at, message);
    }

    /// Records that a required key is missing.
    pub fn missing(&mut self, what: &str) {
        let message = format!("{} needs {what}", self.owner);
        let at = self.at;
        self.issue(at, message);
    }

    /// A required value: the key's outcome, or a "needs" problem when
    /// absent.
    pub fn required<T>(&mut self, key: &str, field: Field<T>) -> Option<T> {
        match field {
            Some(Some(v)) => Some(v),
            Some(None) => {
                self.missing(&format!("`{key}`"));
                None
            }
            None => None,
        }
    }

    /// Whether `key` is given.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    fn scalar(&mut self, key: &str, what: &str) -> Field<Spanned<Scalar>> {
        let Some(v) = self.get(key).cloned() else {
            return Some(None);
        };
        match scalar_of(&v) {
            Some(s) => Some(Some(s)),
            None => {
                self.issue(&v, format!("`{key}` must be {what}, not a list"));
                None
            }
        }
    }

    fn text(&mut self, key: &str, what: &str) -> Field<Spanned<String>> {
        let Some(s) = self.scalar(key, what)? else {
            return Some(None);
        };
        match &s.value {
            Scalar::Str(t) => Some(Some(Spanned::new(t.clone(), s.referenced, s.defined))),
            other => {
                let message = format!("`{key}` must be {what}, not `{other}`");
                self.v.issue(&s, message);
                None
            }
        }
    }

    /// A string.
    pub fn string(&mut self, key: &str) -> Field<String> {
        let t = self.text(key, "a string")?;
        Some(t.map(|t| t.value))
    }

    /// A duration with a unit.
    pub fn duration(&mut self, key: &str) -> Field<Duration> {
        let Some(s) = self.scalar(key, "a duration")? else {
            return Some(None);
        };
        self.v.duration(&s).map(Some)
    }

    /// A recovery action: 0-3 or its name.
    pub fn action(&mut self, key: &str) -> Field<RecoveryAction> {
        let Some(s) = self.scalar(key, "a recovery action")? else {
            return Some(None);
        };
        self.v.action(&s).map(Some)
    }

    /// A node of the scenario.
    pub fn node(&mut self, key: &str) -> Field<String> {
        let Some(n) = self.text(key, "a node name")? else {
            return Some(None);
        };
        let nodes = self.nodes;
        self.v.node_ref(&n, nodes).then_some(Some(n.value))
    }

    /// A group of the scenario.
    pub fn group(&mut self, key: &str) -> Field<String> {
        let Some(g) = self.text(key, "a group name")? else {
            return Some(None);
        };
        if self.groups.contains(&g.value.as_str()) {
            return Some(Some(g.value));
        }
        let message = if self.groups.is_empty() {
            format!("unknown group `{}` (this scenario has no groups)", g.value)
        } else {
            format!(
                "unknown group `{}` (this scenario has: {})",
                g.value,
                self.groups.join(", ")
            )
        };
        self.v.issue(&g, message);
        None
    }

    /// One of a fixed set of names.
    pub fn choice<T: Copy>(&mut self, key: &str, options: &[(&str, T)]) -> Field<T> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let what = format!("one of {}", names.join(", "));
        let Some(t) = self.text(key, &what)? else {
            return Some(None);
        };
        match options.iter().find(|(n, _)| *n == t.value) {
            Some((_, v)) => Some(Some(*v)),
            None => {
                let message = format!("{key} `{}` must be {what}", t.value);
                self.v.issue(&t, message);
                None
            }
        }
    }

    fn list(&mut self, key: &str) -> Field<Vec<Spanned<String>>> {
        let Some(v) = self.get(key).cloned() else {
            return Some(None);
        };
        let Value::List(items) = &v.value else {
            self.issue(&v, format!("`{key}` must be a list, e.g. `{key}: [a, b]`"));
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            match &item.value {
                Value::Scalar(Scalar::Str(s)) => {
                    out.push(Spanned::new(s.clone(), item.referenced, item.defined))
                }
                Value::Scalar(other) => {
                    self.v
                        .issue(item, format!("`{key}` must list names, not `{other}`"));
                    ok = false;
                }
                Value::List(_) => {
                    self.v
                        .issue(item, format!("`{key}` must list names, not lists"));
                    ok = false;
                }
            }
        }
        ok.then_some(Some(out))
    }

    /// A whole number from `min` to `max`.
    pub fn count(&mut self, key: &str, min: u32, max: u32) -> Field<u32> {
        let Some(s) = self.scalar(key, "a whole number")? else {
            return Some(None);
        };
        match s.value {
            Scalar::Int(n) if (i128::from(min)..=i128::from(max)).contains(&n) => {
                u32::try_from(n).ok().map(Some)
            }
            _ => {
                let message = format!(
                    "{key} `{}` must be a whole number from {min} to {max}",
                    s.value
                );
                self.v.issue(&s, message);
                None
            }
        }
    }

    /// A list of paths inside a node's folder: relative, without `..`,
    /// at most 200 bytes each (absent: `None` inside).
    pub fn rel_paths(&mut self, key: &str) -> Field<Vec<String>> {
        let Some(items) = self.list(key)? else {
            return Some(None);
        };
        let mut ok = true;
        for p in &items {
            let path = std::path::Path::new(&p.value);
            let bad = if p.value.is_empty() || p.value.len() > 200 {
                Some("must be 1-200 bytes")
            } else if path.is_absolute() {
                Some("must be relative to the node's folder")
            } else if path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                Some("must stay inside the node's folder (no `..`)")
            } else {
                None
            };
            if let Some(why) = bad {
                self.v.issue(p, format!("{key} entry `{}` {why}", p.value));
                ok = false;
            }
        }
        ok.then(|| Some(items.into_iter().map(|p| p.value).collect()))
    }

    /// A list of event kinds (empty when absent).
    pub fn event_kinds(&mut self, key: &str) -> Option<Vec<EventKind>> {
        let names = self.list(key)?.unwrap_or_default();
        let mut kinds = Vec::new();
        let mut ok = true;
        for k in names {
            match serde_json::from_value::<EventKind>(serde_json::Value::String(k.value.clone())) {
                Ok(kind) => kinds.push(kind),
                Err(_) => {
                    self.v
                        .issue(&k, format!("unknown event kind `{}`", k.value));
                    ok = false;
                }
            }
        }
        ok.then_some(kinds)
    }

    /// A list of the scenario's nodes (empty when absent).
    pub fn node_list(&mut self, key: &str) -> Option<Vec<String>> {
        let names = self.list(key)?.unwrap_or_default();
        let mut ok = true;
        let nodes = self.nodes;
        for n in &names {
            ok &= self.v.node_ref(n, nodes);
        }
        ok.then(|| names.into_iter().map(|n| n.value).collect())
    }

    /// The scenario's nodes, in order.
    pub fn scenario_nodes(&self) -> &[&str] {
        self.nodes
    }

    /// For a fault kind that lists `node` among its own parameters (it
    /// reads `node` itself, optional or refused): the node the fault is
    /// recorded on, which the validator puts in `FaultPlan.node`.
    pub fn set_fault_node(&mut self, node: String) {
        self.fault_node = Some(node);
    }

    /// Records a problem of the whole value of `key` (given), where it is
    /// written.
    pub fn problem(&mut self, key: &str, message: String) {
        match self.get(key).cloned() {
            Some(v) => self.issue(&v, message),
            None => {
                let at = self.at;
                self.issue(at, message);
            }
        }
    }

    /// A refusal of `key`, where it is written, when it is given.
    pub fn refuse(&mut self, key: &str, why: &str) {
        if let Some(v) = self.get(key).cloned() {
            let message = format!("{} takes no `{key}`: {why}", self.owner);
            self.issue(&v, message);
        }
    }

    /// Lists of the scenario's nodes (a partition's `sides: [[n1], [n2,
    /// n3]]`): each a non-empty list, no node named twice, every problem
    /// reported where it is written.
    pub fn node_sides(&mut self, key: &str) -> Field<Vec<Vec<String>>> {
        let Some(v) = self.get(key).cloned() else {
            return Some(None);
        };
        let example = format!("`{key}: [[n1], [n2, n3]]`");
        let Value::List(sides) = &v.value else {
            self.issue(
                &v,
                format!("`{key}` must be a list of lists of nodes, e.g. {example}"),
            );
            return None;
        };
        if sides.is_empty() {
            self.issue(
                &v,
                format!("`{key}` must name at least one side, e.g. {example}"),
            );
            return None;
        }
        let mut out = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let mut ok = true;
        let nodes = self.nodes;
        for side in sides {
            let Value::List(items) = &side.value else {
                self.v.issue(
                    side,
                    format!("each of `{key}` must be a list of nodes, e.g. {example}"),
                );
                ok = false;
                continue;
            };
            if items.is_empty() {
                self.v
                    .issue(side, format!("a side of `{key}` must name a node"));
                ok = false;
                continue;
            }
            let mut names = Vec::new();
            for item in items {
                let Value::Scalar(Scalar::Str(name)) = &item.value else {
                    self.v
                        .issue(item, format!("each side of `{key}` must list node names"));
                    ok = false;
                    continue;
                };
                let spanned = Spanned::new(name.clone(), item.referenced, item.defined);
                if !self.v.node_ref(&spanned, nodes) {
                    ok = false;
                } else if seen.contains(name) {
                    self.v
                        .issue(item, format!("node `{name}` is on two sides of `{key}`"));
                    ok = false;
                } else {
                    seen.push(name.clone());
                    names.push(name.clone());
                }
            }
            out.push(names);
        }
        ok.then_some(Some(out))
    }

    /// A duration from `min` to `max`.
    pub fn duration_in(&mut self, key: &str, min: Duration, max: Duration) -> Field<Duration> {
        let d = self.duration(key)?;
        match d {
            Some(d) if d < min || d > max => {
                let message = format!(
                    "{key} `{}` must be from {} to {}",
                    crate::duration::format_duration(d),
                    crate::duration::format_duration(min),
                    crate::duration::format_duration(max)
                );
                self.problem(key, message);
                None
            }
            d => Some(d),
        }
    }

    /// A size in bytes (`64MB`, `512KB`, `1GB`; 1 MB = 1048576 bytes) from
    /// `min` to `max`; `max_why` says where the bound comes from.
    pub fn size(&mut self, key: &str, min: u64, max: u64, max_why: &str) -> Field<u64> {
        let Some(t) = self.text(key, "a size like `64MB`")? else {
            return Some(None);
        };
        match parse_size(&t.value) {
            Ok(n) if n < min => {
                self.v.issue(
                    &t,
                    format!("{key} `{}` is below {}", t.value, show_size(min)),
                );
                None
            }
            Ok(n) if n > max => {
                let message = format!(
                    "{key} `{}` is above {} ({max_why})",
                    t.value,
                    show_size(max)
                );
                self.v.issue(&t, message);
                None
            }
            Ok(n) => Some(Some(n)),
            Err(e) => {
                self.v.issue(&t, format!("{key} `{}`: {e}", t.value));
                None
            }
        }
    }

    /// A rate `SIZE/DURATION` (`10MB/100ms`, `64MB/s`): bytes per step and
    /// the step, with steps of at most 100 ms.
    pub fn rate(&mut self, key: &str) -> Field<(u64, Duration)> {
        let Some(t) = self.text(key, "a rate like `10MB/100ms`")? else {
            return Some(None);
        };
        match parse_rate(&t.value) {
            Ok(r) => Some(Some(r)),
            Err(e) => {
                self.v.issue(&t, format!("{key} `{}`: {e}", t.value));
                None
            }
        }
    }
}

/// `64MB` and the like, in bytes (KB, MB, GB are powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(digits);
    let num: u64 = num
        .parse()
        .map_err(|_| "a size is a whole number and a unit, e.g. `64MB`".to_string())?;
    let mult: u64 = match unit.trim() {
        "B" => 1,
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "" => return Err(format!("needs a unit: B, KB, MB or GB (e.g. `{num}MB`)")),
        other => return Err(format!("unknown unit `{other}` (use B, KB, MB or GB)")),
    };
    num.checked_mul(mult).ok_or_else(|| "too large".to_string())
}

fn show_size(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{}MB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{}KB", bytes >> 10)
    } else {
        format!("{bytes}B")
    }
}

/// `10MB/100ms` or `64MB/s`: (bytes per step, step), steps of at most
/// 100 ms and at least 4 KB.
pub fn parse_rate(text: &str) -> Result<(u64, Duration), String> {
    let (size, per) = text
        .split_once('/')
        .ok_or("a rate is a size per duration, e.g. `10MB/100ms` or `64MB/s`")?;
    let bytes = parse_size(size)?;
    let per = match per.trim() {
        "s" => Duration::from_secs(1),
        other => crate::duration::parse_duration(other).map_err(|e| e.to_string())?,
    };
    if per < Duration::from_millis(1) {
        return Err("the duration must be at least 1ms".into());
    }
    let step_ms = 100u64;
    let (bytes, every) = if per > Duration::from_millis(step_ms) {
        let parts = (per.as_millis() as u64).div_ceil(step_ms);
        (bytes / parts, per / parts as u32)
    } else {
        (bytes, per)
    };
    if bytes < 4096 {
        return Err("at least 4KB per 100ms".into());
    }
    Ok((bytes, every))
}

/// The host's available memory (`/proc/meminfo` `MemAvailable`), bytes.
pub fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
