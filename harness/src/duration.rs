//! Durations as suites write them: `250ms`, `1s`, `1.5s`, `2m`. A bare number
//! is refused (a unit is never guessed), and so is zero or a negative value.

use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing to parse.
    #[error("empty duration")]
    Empty,
    /// No unit after the number.
    #[error("duration `{0}` needs a unit: ms, s or m (e.g. `{0}s`)")]
    NoUnit(String),
    /// Unknown unit.
    #[error("duration `{0}` has an unknown unit: use ms, s or m")]
    BadUnit(String),
    /// Not a number.
    #[error("duration `{0}` is not a number followed by a unit")]
    BadNumber(String),
    /// Zero or negative.
    #[error("duration `{0}` must be greater than zero")]
    NotPositive(String),
}

/// Parses a positive duration with a unit.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let unit = unit.trim();
    if unit.is_empty() {
        return Err(DurationError::NoUnit(s.to_string()));
    }
    let value: f64 = num
        .parse()
        .map_err(|_| DurationError::BadNumber(s.to_string()))?;
    let scale = match unit {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        _ => return Err(DurationError::BadUnit(s.to_string())),
    };
    let secs = value * scale;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(DurationError::NotPositive(s.to_string()));
    }
    let d = Duration::from_secs_f64(secs);
    if d.is_zero() {
        return Err(DurationError::NotPositive(s.to_string()));
    }
    Ok(d)
}

/// Formats a duration the way suites write it (`250ms`, `1s`, `1.5s`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 1000.0 {
        format!("{}ms", trim_float(ms))
    } else {
        format!("{}s", trim_float(ms / 1e3))
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// serde helpers storing a `Duration` as its suite text in plans and traces.
pub mod serde_text {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as `1s` / `250ms`.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// Deserializes from `1s` / `250ms`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    }

    #[test]
    fn refuses_zero_negative_bare_and_unknown() {
        assert!(matches!(
            parse_duration("0s"),
            Err(DurationError::NotPositive(_))
        ));
        assert!(matches!(
            parse_duration("-1s"),
            Err(DurationError::NotPositive(_))
        ));
        assert!(matches!(parse_duration("5"), Err(DurationError::NoUnit(_))));
        assert!(matches!(
            parse_duration("5h"),
            Err(DurationError::BadUnit(_))
        ));
        assert!(matches!(
            parse_duration("xs"),
            Err(DurationError::BadNumber(_))
        ));
        assert!(matches!(parse_duration(""), Err(DurationError::Empty)));
    }

    #[test]
    fn formats_round_trip() {
        for text in ["250ms", "1s", "1.5s", "20ms", "2s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
