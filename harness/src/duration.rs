//! Durations as suites write them: `250ms`, `1s`, `1.5s`, `2m`. A bare number
//! is refused (a unit is never guessed), and so is zero, a negative value, a
//! fraction of a millisecond, or more than [`MAX_DURATION`]: every duration
//! of a plan (and so of a trace header) is a whole number of milliseconds
//! from 1 ms to 24 h, so that whatever the runner, the lab and the agents
//! compute from it (instants, sums, milliseconds as `u32`) cannot overflow.
//!
//! Parsing is exact decimal arithmetic: no float, so no rounding and no
//! panic on huge input.

use std::time::Duration;

/// The longest duration any key accepts (24 h).
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

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
    /// Finer than a millisecond.
    #[error("duration `{0}` must be a whole number of milliseconds")]
    SubMillisecond(String),
    /// Longer than [`MAX_DURATION`].
    #[error("duration `{0}` is longer than the limit of 24h")]
    TooLong(String),
}

/// Parses a positive duration with a unit: whole milliseconds, at most
/// [`MAX_DURATION`].
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
    let bad = || DurationError::BadNumber(s.to_string());
    let (negative, digits) = match num.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, num.strip_prefix('+').unwrap_or(num)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return Err(bad());
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let zero = int.is_empty() && frac.is_empty();
    let scale_ms: u128 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        // `1e300s`: an exponent is not a unit.
        _ if unit.starts_with(|c: char| c.is_ascii_digit() || c == 'e' || c == 'E') => {
            return Err(bad())
        }
        _ => return Err(DurationError::BadUnit(s.to_string())),
    };
    if negative || zero {
        return Err(DurationError::NotPositive(s.to_string()));
    }
    // More integer digits than any limit has: too long, whatever follows.
    if int.len() > 12 {
        return Err(DurationError::TooLong(s.to_string()));
    }
    // A fraction finer than 1e-12 of the unit is never whole milliseconds.
    if frac.len() > 12 {
        return Err(DurationError::SubMillisecond(s.to_string()));
    }
    let int_v: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let frac_v: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| bad())?
    };
    let denom = 10u128.pow(frac.len() as u32);
    let frac_ms = frac_v * scale_ms;
    let whole_frac_ms = frac_ms / denom;
    if whole_frac_ms * denom != frac_ms {
        return Err(DurationError::SubMillisecond(s.to_string()));
    }
    let ms = int_v * scale_ms + whole_frac_ms;
    if ms > MAX_DURATION.as_millis() {
        return Err(DurationError::TooLong(s.to_string()));
    }
    Ok(Duration::from_millis(ms as u64))
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
    fn refuses_what_cannot_be_represented_without_panicking() {
        // Each of these panicked in `Duration::from_secs_f64` or was
        // rounded before: huge, sub-millisecond, and absurdly long input.
        for text in [
            "1e300s",
            "99999999999999999999999999s",
            "184467440737095516160ms",
        ] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
        assert!(matches!(
            parse_duration("99999999999999999999999999s"),
            Err(DurationError::TooLong(_))
        ));
        assert!(matches!(
            parse_duration("0.5ms"),
            Err(DurationError::SubMillisecond(_))
        ));
        assert!(matches!(
            parse_duration("0.0000000000000000001s"),
            Err(DurationError::SubMillisecond(_))
        ));
        assert!(matches!(
            parse_duration("1e300s"),
            Err(DurationError::BadNumber(_))
        ));
        assert!(matches!(
            parse_duration("25h"),
            Err(DurationError::BadUnit(_))
        ));
        assert!(matches!(
            parse_duration("1441m"),
            Err(DurationError::TooLong(_))
        ));
        assert_eq!(parse_duration("1440m"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("0.001s"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_duration("1.0000s"), Ok(Duration::from_secs(1)));
        assert!(matches!(
            parse_duration(".s"),
            Err(DurationError::BadNumber(_))
        ));
        assert!(matches!(
            parse_duration("1.2.3s"),
            Err(DurationError::BadNumber(_))
        ));
        assert!(matches!(
            parse_duration("--1s"),
            Err(DurationError::BadNumber(_))
        ));
    }

    #[test]
    fn formats_round_trip() {
        for text in ["250ms", "1s", "1.5s", "20ms", "2s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}
