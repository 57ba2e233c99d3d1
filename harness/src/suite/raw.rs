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
    /// An integer (wide enough for any YAML integer serde reports, so a
    /// `u64` is never shown as a negative number).
    Int(i128),
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
                Ok(Scalar::Int(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v.into()))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Scalar, E> {
                // Beyond i128: keep the digits, refused as text later.
                Ok(i128::try_from(v).map_or_else(|_| Scalar::Str(v.to_string()), Scalar::Int))
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
    pub(super) watchdog_priority: Option<S<Scalar>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) name: S<String>,
    #[serde(default)]
    pub(super) duration: Option<S<Scalar>>,
    pub(super) nodes: S<BTreeMap<String, S<Option<RawNode>>>>,
    #[serde(default)]
    pub(super) faults: Vec<S<RawEntry>>,
    #[serde(default)]
    pub(super) checks: Option<S<Vec<S<RawEntry>>>>,
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

/// A value of a fault's or a check's key: a scalar or a list of values
/// (lists nest, e.g. a partition's `sides: [[n1], [n2, n3]]`).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    /// `slack: 20ms`.
    Scalar(Scalar),
    /// `must: [poisoned, quorum_lost]`.
    List(Vec<S<Value>>),
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar or a list")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Scalar(Scalar::Str(v.to_string())))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
                Ok(Value::Scalar(Scalar::Int(v)))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
                Ok(Value::Scalar(
                    i128::try_from(v).map_or_else(|_| Scalar::Str(v.to_string()), Scalar::Int),
                ))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Scalar(Scalar::Int(v.into())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(Value::Scalar(Scalar::Int(v.into())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Scalar(Scalar::Float(v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Scalar(Scalar::Bool(v)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<S<Value>>()? {
                    items.push(item);
                }
                Ok(Value::List(items))
            }
        }
        d.deserialize_any(V)
    }
}

/// A fault or a check as written: a mapping from keys to values, in file
/// order. Which keys apply is the vocabulary tables' business, not the
/// parser's.
#[derive(Debug, Default)]
pub(super) struct RawEntry {
    pub(super) keys: Vec<(S<String>, S<Value>)>,
}

impl<'de> Deserialize<'de> for RawEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of keys to values")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<RawEntry, A::Error> {
                let mut keys: Vec<(S<String>, S<Value>)> = Vec::new();
                while let Some(key) = map.next_key::<S<String>>()? {
                    if keys.iter().any(|(k, _)| k.value == key.value) {
                        return Err(de::Error::custom(format!(
                            "key `{}` is given twice",
                            key.value
                        )));
                    }
                    keys.push((key, map.next_value()?));
                }
                Ok(RawEntry { keys })
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    #[serde(default)]
    pub(super) fail: Vec<S<String>>,
}
