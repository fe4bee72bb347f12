//! Timestamps as the Stream Ingest API accepts them.
//!
//! The grammar is `YYYY-MM-DDThh:mm[:ss[.f{1,9}]][Z|±hh:mm]`: seconds are optional, up to nine
//! fractional digits (not zero-padded), and a missing zone means UTC. Java's
//! `ISO_OFFSET_DATE_TIME` and Python's `datetime.isoformat()` both produce this form.

use std::fmt::Write as _;

use crate::duration::{HOUR, MINUTE, SECOND};

/// Why a timestamp string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp `{input}`: {reason}; expected ISO-8601 like 2024-01-02T03:04:05.123Z")]
pub struct TimestampError {
    input: String,
    reason: &'static str,
}

/// Parses an ingest timestamp into nanoseconds since the Unix epoch (UTC).
pub fn parse_timestamp(input: &str) -> Result<i64, TimestampError> {
    let err = |reason| TimestampError {
        input: truncate(input),
        reason,
    };
    let b = input.as_bytes();
    let mut p = Cursor { b, i: 0 };
    let year = p.digits(4).ok_or_else(|| err("year must be 4 digits"))?;
    p.expect(b'-')
        .ok_or_else(|| err("expected `-` after the year"))?;
    let month = p.digits(2).ok_or_else(|| err("month must be 2 digits"))?;
    p.expect(b'-')
        .ok_or_else(|| err("expected `-` after the month"))?;
    let day = p.digits(2).ok_or_else(|| err("day must be 2 digits"))?;
    p.expect(b'T')
        .ok_or_else(|| err("expected `T` between date and time"))?;
    let hour = p.digits(2).ok_or_else(|| err("hour must be 2 digits"))?;
    p.expect(b':')
        .ok_or_else(|| err("expected `:` after the hour"))?;
    let minute = p.digits(2).ok_or_else(|| err("minute must be 2 digits"))?;
    let mut second = 0;
    let mut nanos = 0;
    if p.peek() == Some(b':') {
        p.i += 1;
        second = p.digits(2).ok_or_else(|| err("seconds must be 2 digits"))?;
        if p.peek() == Some(b'.') {
            p.i += 1;
            let start = p.i;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.i += 1;
            }
            let frac = &b[start..p.i];
            if frac.is_empty() || frac.len() > 9 {
                return Err(err("fraction of a second must have 1 to 9 digits"));
            }
            for (k, d) in frac.iter().enumerate() {
                nanos += i64::from(d - b'0') * 10i64.pow(8 - k as u32);
            }
        }
    }
    let offset = match p.peek() {
        None => 0,
        Some(b'Z') => {
            p.i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            p.i += 1;
            let oh = p
                .digits(2)
                .ok_or_else(|| err("zone hour must be 2 digits"))?;
            p.expect(b':')
                .ok_or_else(|| err("zone must be written ±hh:mm"))?;
            let om = p
                .digits(2)
                .ok_or_else(|| err("zone minute must be 2 digits"))?;
            if oh > 23 || om > 59 {
                return Err(err("zone offset out of range"));
            }
            let o = oh * HOUR + om * MINUTE;
            if sign == b'+' {
                o
            } else {
                -o
            }
        }
        Some(_) => return Err(err("unexpected characters after the time")),
    };
    if p.i != b.len() {
        return Err(err("unexpected characters after the zone"));
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(err("no such date"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(err("no such time of day"));
    }
    let days = days_from_civil(year, month, day);
    // i64 nanoseconds span 1677-09-21 to 2262-04-11; checked arithmetic keeps the edges honest.
    days.checked_mul(86_400 * SECOND)
        .and_then(|v| v.checked_add(hour * HOUR + minute * MINUTE + second * SECOND + nanos))
        .and_then(|v| v.checked_sub(offset))
        .ok_or_else(|| err("outside the representable range 1677..2262"))
}

/// Formats nanoseconds since the epoch as RFC 3339 in UTC, with only as many fractional digits
/// as needed (`2024-01-01T00:00:00Z`, `2024-01-01T00:00:00.5Z`).
pub fn format_rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(SECOND);
    let frac = ns.rem_euclid(SECOND);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    );
    if frac != 0 {
        let digits = format!("{frac:09}");
        let _ = write!(out, ".{}", digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek() == Some(c)).then(|| self.i += 1)
    }
    fn digits(&mut self, n: usize) -> Option<i64> {
        let s = self.b.get(self.i..self.i + n)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(s.iter().fold(0, |acc, d| acc * 10 + i64::from(d - b'0')))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const JAN_2_2023_00_25_06: i64 = 1_672_619_106 * SECOND;

    #[test]
    fn accepts_every_documented_form() {
        for s in [
            "2023-01-02T00:25:06Z",
            "2023-01-02T00:25:06",
            "2023-01-02T00:25:06+00:00",
            "2023-01-02T01:25:06+01:00",
            "2023-01-01T19:25:06-05:00",
        ] {
            assert_eq!(parse_timestamp(s), Ok(JAN_2_2023_00_25_06), "{s}");
        }
        assert_eq!(
            parse_timestamp("2023-01-02T00:25Z"),
            Ok(JAN_2_2023_00_25_06 - 6 * SECOND)
        );
        assert_eq!(
            parse_timestamp("2023-01-02T00:25:06.5Z"),
            Ok(JAN_2_2023_00_25_06 + 500_000_000)
        );
        assert_eq!(
            parse_timestamp("2023-01-02T00:25:06.000000001Z"),
            Ok(JAN_2_2023_00_25_06 + 1)
        );
    }

    #[test]
    fn refuses_what_the_grammar_does_not_allow() {
        for s in [
            "",
            "2023-01-02",
            "2023-01-02 00:25:06Z",
            "2023-01-02T00:25:06.0000000001Z",
            "2023-01-02T00:25:06.Z",
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-01-01T24:00:00Z",
            "2023-01-01T00:00:00+0100",
            "2023-01-01T00:00:00Zjunk",
            "9999-01-01T00:00:00Z",
            "１２３４-01-01T00:00:00Z",
        ] {
            assert!(parse_timestamp(s).is_err(), "{s} should be refused");
        }
    }

    #[test]
    fn leap_day_exists_in_leap_years() {
        assert!(parse_timestamp("2024-02-29T00:00:00Z").is_ok());
        assert!(parse_timestamp("2000-02-29T00:00:00Z").is_ok());
        assert!(parse_timestamp("1900-02-29T00:00:00Z").is_err());
    }

    #[test]
    fn formats_with_minimal_fraction() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_rfc3339(JAN_2_2023_00_25_06 + 500_000_000),
            "2023-01-02T00:25:06.5Z"
        );
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(ns in -9_000_000_000_000_000_000i64..9_000_000_000_000_000_000i64) {
            prop_assert_eq!(parse_timestamp(&format_rfc3339(ns)), Ok(ns));
        }

        #[test]
        fn arbitrary_strings_never_panic(s in "\\PC{0,40}") {
            let _ = parse_timestamp(&s);
        }
    }
}
