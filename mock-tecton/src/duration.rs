//! Durations as Tecton writes them: `10m`, `1h30m`, `3d`, `90s`.
//!
//! All times in the mock are `i64` nanoseconds; a duration is the same unit. Parsing accepts any
//! concatenation of `<n>d`, `<n>h`, `<n>m`, `<n>s`, `<n>ms`; formatting follows Tecton's
//! `to_human_readable_str`, which is what default feature names are made of (`1m30s`, never `90s`).

use std::fmt;

/// Nanoseconds in one second.
pub(crate) const SECOND: i64 = 1_000_000_000;
/// Nanoseconds in one minute.
pub const MINUTE: i64 = 60 * SECOND;
/// Nanoseconds in one hour.
pub(crate) const HOUR: i64 = 60 * MINUTE;
/// Nanoseconds in one day.
pub const DAY: i64 = 24 * HOUR;

/// Why a duration string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{input}`: {reason} (write it like `10m`, `1h30m`, `3d` or `90s`)")]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

/// Parses `1h30m`-style durations into nanoseconds.
pub fn parse(input: &str) -> Result<i64, DurationError> {
    let err = |reason| DurationError {
        input: input.to_owned(),
        reason,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("it is empty"));
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(err("expected a number"));
        }
        let n: i64 = s[start..i].parse().map_err(|_| err("number too large"))?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = match &s[unit_start..i] {
            "d" => DAY,
            "h" => HOUR,
            "m" => MINUTE,
            "s" => SECOND,
            "ms" => 1_000_000,
            "" => return Err(err("a number needs a unit (d, h, m, s or ms)")),
            _ => return Err(err("unknown unit (use d, h, m, s or ms)")),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| err("duration too large"))?;
    }
    Ok(total)
}

/// A duration printed the way Tecton prints it in feature names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Human(pub i64);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0.unsigned_abs();
        if rest == 0 {
            return f.write_str("0s");
        }
        for (unit, suffix) in [(DAY, "d"), (HOUR, "h"), (MINUTE, "m"), (SECOND, "s")] {
            let unit = unit as u64;
            let n = rest / unit;
            if n > 0 {
                write!(f, "{n}{suffix}")?;
            }
            rest %= unit;
        }
        if rest > 0 {
            write!(f, "{}ms", rest / 1_000_000)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_like_tecton() {
        assert_eq!(parse("1h30m"), Ok(90 * MINUTE));
        assert_eq!(Human(parse("90s").unwrap()).to_string(), "1m30s");
        assert_eq!(Human(parse("1d30m").unwrap()).to_string(), "1d30m");
        assert_eq!(Human(0).to_string(), "0s");
        assert_eq!(Human(3 * DAY).to_string(), "3d");
    }

    #[test]
    fn rejects_unitless_and_unknown_units() {
        assert!(parse("10").is_err());
        assert!(parse("10w").is_err());
        assert!(parse("").is_err());
        assert!(parse("h").is_err());
        assert!(parse("99999999999999999999d").is_err());
    }
}
