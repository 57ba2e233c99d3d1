//! The suite as YAML holds it: raw structs with spans, unknown keys refused.
//! Nothing here validates; `validate.rs` turns these into a plan.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

/// A YAML scalar, kept as written so validation can say what was wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Str(s) => write!(f, "{s}"),
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Float(x) => write!(f, "{x}"),
            Scalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v as i64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool(v))
            }
        }
        d.deserialize_any(V)
    }
}

pub(super) type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSuite {
    pub(super) suite: S<String>,
    #[serde(default)]
    pub(super) defaults: Option<S<RawNode>>,
    pub(super) scenarios: S<Vec<S<RawScenario>>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNode {
    pub(super) hang_timeout: Option<S<Scalar>>,
    pub(super) hang_recovery_action: Option<S<Scalar>>,
    pub(super) restart_delay: Option<S<Scalar>>,
    pub(super) service_restart_delay: Option<S<Scalar>>,
    pub(super) node_heartbeat: Option<S<Scalar>>,
    pub(super) missed_heartbeats: Option<S<Scalar>>,
    pub(super) arp_probe: Option<S<Scalar>>,
    pub(super) arp_probes: Option<S<Scalar>>,
    pub(super) arp_probe_interval: Option<S<Scalar>>,
    pub(super) arp_probe_wait: Option<S<Scalar>>,
    pub(super) arp_announcements: Option<S<Scalar>>,
    pub(super) arp_announce_interval: Option<S<Scalar>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) name: S<String>,
    #[serde(default)]
    pub(super) duration: Option<S<Scalar>>,
    pub(super) nodes: S<BTreeMap<String, S<Option<RawNode>>>>,
    #[serde(default)]
    pub(super) faults: Vec<S<RawFault>>,
    #[serde(default)]
    pub(super) checks: Vec<S<RawCheck>>,
    #[serde(default)]
    pub(super) expect: Option<S<RawExpect>>,
    #[serde(default)]
    pub(super) groups: Option<S<BTreeMap<String, S<RawGroup>>>>,
    #[serde(default)]
    pub(super) witness: Option<S<Scalar>>,
    #[serde(default)]
    pub(super) failover_window: Option<S<Scalar>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGroup {
    pub(super) ip: S<String>,
    pub(super) owners: S<Vec<S<String>>>,
    #[serde(default)]
    pub(super) disk: Option<S<Scalar>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFault {
    pub(super) kind: S<String>,
    pub(super) node: S<String>,
    pub(super) at: S<Scalar>,
    #[serde(rename = "for")]
    pub(super) duration: S<Scalar>,
    #[serde(default)]
    pub(super) network: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    pub(super) kind: S<String>,
    pub(super) node: Option<S<String>>,
    pub(super) slack: Option<S<Scalar>>,
    pub(super) action: Option<S<Scalar>>,
    pub(super) group: Option<S<String>>,
    pub(super) within: Option<S<Scalar>>,
    pub(super) window: Option<S<Scalar>>,
    pub(super) state: Option<S<String>>,
    pub(super) max: Option<S<Scalar>>,
    pub(super) must: Option<S<Vec<S<String>>>>,
    pub(super) must_not: Option<S<Vec<S<String>>>>,
    pub(super) held: Option<S<Vec<S<String>>>>,
    pub(super) lost: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    #[serde(default)]
    pub(super) fail: Vec<S<String>>,
}
