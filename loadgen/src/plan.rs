//! The arrival plan: when each record is due, computed from the rate shape alone.
//!
//! An open-loop generator must never let the system under test set its pace. The plan is a
//! list of segments whose rate changes linearly (a constant rate is a flat segment, a ramp a
//! sloped one, steps and bursts several flat ones); record `k` is due at the instant the
//! cumulative arrivals reach `k`. The schedule is thus a pure function of the plan: the timer
//! and the server's answers only decide whether a send is on time, never when it is due.

use std::fmt;
use std::time::Duration;

/// Why a rate or burst string could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    /// A malformed number, shape or duration.
    #[error("{0}")]
    Syntax(String),
}

/// How the offered rate (records per second) moves over the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// The same rate throughout (`1000`).
    Constant(f64),
    /// A linear ramp from the first rate to the second (`100..5000`).
    Ramp(f64, f64),
    /// Equal-length steps at each rate in turn (`100,500,1000`).
    Steps(Vec<f64>),
}

/// A burst laid over the shape: `rate` records/s from `at` for `len` (`5000@10s+2s`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// Rate during the burst.
    pub rate: f64,
    /// Start of the burst, from the run's start.
    pub at: Duration,
    /// Length of the burst.
    pub len: Duration,
}

/// Largest rate accepted, records per second.
pub(crate) const MAX_RATE: f64 = 10_000_000.0;

impl Shape {
    /// Reads `1000`, `100..5000` or `100,500,1000`.
    pub fn parse(text: &str) -> Result<Shape, PlanError> {
        let text = text.trim();
        if let Some((a, b)) = text.split_once("..") {
            return Ok(Shape::Ramp(rate(a)?, rate(b)?));
        }
        if text.contains(',') {
            let rates = text.split(',').map(rate).collect::<Result<Vec<_>, _>>()?;
            return Ok(Shape::Steps(rates));
        }
        Ok(Shape::Constant(rate(text)?))
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Constant(r) => write!(f, "{r}"),
            Shape::Ramp(a, b) => write!(f, "{a}..{b}"),
            Shape::Steps(rs) => {
                let parts: Vec<String> = rs.iter().map(|r| r.to_string()).collect();
                write!(f, "{}", parts.join(","))
            }
        }
    }
}

impl Burst {
    /// Reads `RATE@START+LEN`, e.g. `5000@10s+2s`.
    pub fn parse(text: &str) -> Result<Burst, PlanError> {
        let bad = || {
            PlanError::Syntax(format!(
                "burst `{text}`: expected RATE@START+LEN, e.g. 5000@10s+2s"
            ))
        };
        let (r, rest) = text.split_once('@').ok_or_else(bad)?;
        let (at, len) = rest.split_once('+').ok_or_else(bad)?;
        Ok(Burst {
            rate: rate(r)?,
            at: duration(at)?,
            len: duration(len)?,
        })
    }
}

fn rate(text: &str) -> Result<f64, PlanError> {
    let t = text.trim();
    match t.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= MAX_RATE => Ok(r),
        Ok(_) => Err(PlanError::Syntax(format!(
            "rate `{t}` must be above 0 and at most {MAX_RATE} records/s"
        ))),
        Err(_) => Err(PlanError::Syntax(format!("rate `{t}` is not a number"))),
    }
}

/// Reads a duration such as `60s`, `2m`, `1m30s` or `500ms`.
pub fn duration(text: &str) -> Result<Duration, PlanError> {
    let t = text.trim();
    match mock_tecton::duration::parse(t) {
        Ok(ns) if ns >= 0 => Ok(Duration::from_nanos(ns as u64)),
        Ok(_) => Err(PlanError::Syntax(format!("duration `{t}` is negative"))),
        Err(e) => Err(PlanError::Syntax(format!("duration `{t}`: {e}"))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    /// Start, seconds from the run's start.
    start: f64,
    /// Length in seconds.
    len: f64,
    /// Rate at the start and at the end (records/s).
    r0: f64,
    r1: f64,
    /// Arrivals due before the segment starts.
    before: f64,
}

impl Segment {
    fn arrivals(&self) -> f64 {
        (self.r0 + self.r1) * 0.5 * self.len
    }

    /// Seconds into the segment at which `n` arrivals of it are due.
    fn time_of(&self, n: f64) -> f64 {
        // N(τ) = r0·τ + a·τ², a = (r1 − r0) / 2L; this root form is stable for a = 0 too.
        let a = (self.r1 - self.r0) / (2.0 * self.len);
        let disc = (self.r0 * self.r0 + 4.0 * a * n).max(0.0);
        let denom = self.r0 + disc.sqrt();
        if denom > 0.0 {
            2.0 * n / denom
        } else {
            0.0
        }
    }
}

/// A run's arrival plan: shape, optional burst and duration.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    segments: Vec<Segment>,
    duration: Duration,
    total: u64,
}

impl Plan {
    /// The plan for `shape` over `duration`, with an optional burst laid over it.
    pub fn new(shape: &Shape, burst: Option<Burst>, duration: Duration) -> Result<Plan, PlanError> {
        let d = duration.as_secs_f64();
        if d <= 0.0 {
            return Err(PlanError::Syntax("the duration must be above 0".into()));
        }
        // Flat or sloped pieces as (start, len, r0, r1), before the burst is laid over.
        let mut pieces: Vec<(f64, f64, f64, f64)> = match shape {
            Shape::Constant(r) => vec![(0.0, d, *r, *r)],
            Shape::Ramp(a, b) => vec![(0.0, d, *a, *b)],
            Shape::Steps(rs) if rs.is_empty() => {
                return Err(PlanError::Syntax("no step rates given".into()))
            }
            Shape::Steps(rs) => {
                let len = d / rs.len() as f64;
                rs.iter()
                    .enumerate()
                    .map(|(i, r)| (i as f64 * len, len, *r, *r))
                    .collect()
            }
        };
        if let Some(b) = burst {
            let (bs, be) = (b.at.as_secs_f64(), (b.at + b.len).as_secs_f64().min(d));
            if bs >= d || be <= bs {
                return Err(PlanError::Syntax(format!(
                    "the burst must start and end inside the run's {d} s"
                )));
            }
            let mut cut = Vec::new();
            for (s, len, r0, r1) in pieces {
                let e = s + len;
                let at = |t: f64| r0 + (r1 - r0) * (t - s) / len;
                let mut push = |a: f64, z: f64, ra: f64, rz: f64| {
                    if z - a > 1e-12 {
                        cut.push((a, z - a, ra, rz));
                    }
                };
                push(s, e.min(bs), r0, at(e.min(bs)));
                push(s.max(bs), e.min(be), b.rate, b.rate);
                push(s.max(be), e, at(s.max(be)), r1);
            }
            cut.sort_by(|x, y| x.0.total_cmp(&y.0));
            pieces = cut;
        }
        let mut segments = Vec::with_capacity(pieces.len());
        let mut before = 0.0;
        for (start, len, r0, r1) in pieces {
            let seg = Segment {
                start,
                len,
                r0,
                r1,
                before,
            };
            before += seg.arrivals();
            segments.push(seg);
        }
        // A hair of tolerance so that 100/s for 1 s is 100 records, not 99 by rounding.
        let total = (before + 1e-6).floor() as u64;
        Ok(Plan {
            segments,
            duration,
            total,
        })
    }

    /// A constant-rate plan.
    pub fn constant(rate: f64, duration: Duration) -> Result<Plan, PlanError> {
        Plan::new(&Shape::Constant(rate), None, duration)
    }

    /// Records the plan sends in all.
    pub fn total_records(&self) -> u64 {
        self.total
    }

    /// The planned duration.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Mean offered rate over the run, records per second.
    pub fn offered_rate(&self) -> f64 {
        self.total as f64 / self.duration.as_secs_f64()
    }

    /// When record `k` (from 0) is due, from the run's start; `None` past the last record.
    pub(crate) fn due(&self, k: u64) -> Option<Duration> {
        if k >= self.total {
            return None;
        }
        let n = k as f64;
        // The last segment whose arrivals began at or before n, skipping zero-rate pieces.
        let i = self
            .segments
            .partition_point(|s| s.before <= n)
            .saturating_sub(1);
        let seg = &self.segments[i];
        let t = seg.start + seg.time_of(n - seg.before).min(seg.len);
        Some(Duration::from_secs_f64(t.min(self.duration.as_secs_f64())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(p: &Plan, k: u64) -> f64 {
        p.due(k).map(|d| d.as_secs_f64()).unwrap_or(f64::NAN)
    }

    #[test]
    fn constant_rate_is_evenly_spaced_and_counted() {
        let p = Plan::constant(100.0, Duration::from_secs(2)).unwrap();
        assert_eq!(p.total_records(), 200);
        for k in 0..200 {
            assert!((secs(&p, k) - k as f64 / 100.0).abs() < 1e-9, "record {k}");
        }
        assert_eq!(p.due(200), None);
        assert!((p.offered_rate() - 100.0).abs() < 1e-9);
    }

    #[test]
    fn ramp_speeds_up_linearly() {
        // 0 → 200/s over 10 s: 1000 records, N(t) = 10 t², so record k is due at sqrt(k / 10).
        let p = Plan::new(&Shape::Ramp(1e-9, 200.0), None, Duration::from_secs(10)).unwrap();
        assert_eq!(p.total_records(), 1000);
        for k in [1, 10, 250, 999] {
            assert!(
                (secs(&p, k) - (k as f64 / 10.0).sqrt()).abs() < 1e-3,
                "record {k}"
            );
        }
        let gaps = |k: u64| secs(&p, k + 1) - secs(&p, k);
        assert!(gaps(10) > gaps(900));
    }

    #[test]
    fn steps_and_bursts_change_the_rate_where_planned() {
        let p = Plan::new(
            &Shape::parse("10,100").unwrap(),
            None,
            Duration::from_secs(2),
        )
        .unwrap();
        assert_eq!(p.total_records(), 110);
        assert!((secs(&p, 10) - 1.0).abs() < 1e-9);
        assert!((secs(&p, 11) - 1.01).abs() < 1e-9);

        let burst = Burst::parse("1000@1s+500ms").unwrap();
        let p = Plan::new(&Shape::Constant(100.0), Some(burst), Duration::from_secs(2)).unwrap();
        // 1.5 s at 100/s plus 0.5 s at 1000/s.
        assert_eq!(p.total_records(), 650);
        assert!((secs(&p, 99) - 0.99).abs() < 1e-9);
        assert!((secs(&p, 101) - 1.001).abs() < 1e-9);
        assert!((secs(&p, 600) - 1.5).abs() < 1e-9);
        assert!((secs(&p, 601) - 1.51).abs() < 1e-9);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        for bad in ["", "abc", "-5", "0", "1e12", "5..x"] {
            assert!(Shape::parse(bad).is_err(), "{bad}");
        }
        assert!(Burst::parse("5000@10s").is_err());
        assert!(Plan::new(
            &Shape::Constant(1.0),
            Burst::parse("5@3s+1s").ok(),
            Duration::from_secs(2)
        )
        .is_err());
        assert!(duration("soon").is_err());
    }
}
