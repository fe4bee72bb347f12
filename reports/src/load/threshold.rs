//! Thresholds: k6-style pass/fail expressions over a load report, such as
//! `push.freshness.p99<500ms` or `kafka.achieved_rate>=900`, that decide a run's exit code.
//!
//! Grammar (whitespace is ignored):
//!
//! ```text
//! threshold := pattern "." metric [".change"] op value
//! pattern   := push | kafka | sink
//! metric    := latency.STAT | latency_uncorrected.STAT | freshness.FSTAT
//!            | errors.rate | errors.count | errors.CAUSE.rate | errors.CAUSE.count
//!            | achieved_rate | achieved_ratio | late_sends | late_sends.rate
//! STAT      := p50 | p90 | p99 | p999 | max          FSTAT := p50 | p90 | p99 | max
//! op        := < | <= | > | >= | ==
//! ```
//!
//! A threshold holds when it holds at every point of its pattern; a point that cannot measure
//! the metric (no freshness observed, no baseline point for `.change`) fails it, and so does a
//! report without any point of the pattern.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{LoadReport, Pattern, RunPoint};

/// A latency or freshness statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stat {
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 99th percentile.
    P99,
    /// 99.9th percentile (latency only).
    P999,
    /// Largest value.
    Max,
}

impl Stat {
    /// The name used in expressions and reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P99 => "p99",
            Stat::P999 => "p999",
            Stat::Max => "max",
        }
    }

    fn parse(s: &str) -> Option<Stat> {
        Some(match s {
            "p50" => Stat::P50,
            "p90" => Stat::P90,
            "p99" => Stat::P99,
            "p999" => Stat::P999,
            "max" => Stat::Max,
            _ => return None,
        })
    }
}

/// What a threshold (or a comparison) measures at one run point.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Corrected latency (from each request's intended start), milliseconds.
    Latency(Stat),
    /// Uncorrected latency (from each request's actual start), milliseconds.
    LatencyUncorrected(Stat),
    /// Send-to-servable time, milliseconds. Never [`Stat::P999`].
    Freshness(Stat),
    /// Failed requests over requests (a fraction), all causes or one (`"429"`, `"timeout"`).
    ErrorRate(Option<String>),
    /// Failed requests, all causes or one.
    ErrorCount(Option<String>),
    /// Acknowledged records per second.
    AchievedRate,
    /// Achieved rate over offered rate (a fraction).
    AchievedRatio,
    /// Sends that started behind schedule.
    LateSends,
    /// Late sends over requests (a fraction).
    LateSendRate,
}

/// The unit a metric's values are in; decides how a threshold's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds; values may carry `us`, `ms`, `s` or `m`.
    Millis,
    /// A fraction; values may carry `%`.
    Fraction,
    /// A plain count.
    Count,
    /// Records per second; values may carry `/s`.
    PerSecond,
}

impl Metric {
    /// The metric's name as written in expressions, e.g. `latency.p99` or `errors.429.rate`.
    pub(crate) fn name(&self) -> String {
        match self {
            Metric::Latency(s) => format!("latency.{}", s.name()),
            Metric::LatencyUncorrected(s) => format!("latency_uncorrected.{}", s.name()),
            Metric::Freshness(s) => format!("freshness.{}", s.name()),
            Metric::ErrorRate(None) => "errors.rate".into(),
            Metric::ErrorRate(Some(c)) => format!("errors.{c}.rate"),
            Metric::ErrorCount(None) => "errors.count".into(),
            Metric::ErrorCount(Some(c)) => format!("errors.{c}.count"),
            Metric::AchievedRate => "achieved_rate".into(),
            Metric::AchievedRatio => "achieved_ratio".into(),
            Metric::LateSends => "late_sends".into(),
            Metric::LateSendRate => "late_sends.rate".into(),
        }
    }

    /// The unit of the metric's values.
    pub(crate) fn unit(&self) -> Unit {
        match self {
            Metric::Latency(_) | Metric::LatencyUncorrected(_) | Metric::Freshness(_) => {
                Unit::Millis
            }
            Metric::ErrorRate(_) | Metric::AchievedRatio | Metric::LateSendRate => Unit::Fraction,
            Metric::ErrorCount(_) | Metric::LateSends => Unit::Count,
            Metric::AchievedRate => Unit::PerSecond,
        }
    }

    /// Whether a larger value is better (rates achieved) or worse (latency, errors).
    pub fn higher_is_better(&self) -> bool {
        matches!(self, Metric::AchievedRate | Metric::AchievedRatio)
    }

    /// The metric's value at `point`; `None` when the point did not observe it.
    pub(crate) fn value(&self, point: &RunPoint) -> Option<f64> {
        let pick = |l: &super::LatencyMs, s: Stat| match s {
            Stat::P50 => l.p50,
            Stat::P90 => l.p90,
            Stat::P99 => l.p99,
            Stat::P999 => l.p999,
            Stat::Max => l.max,
        };
        Some(match self {
            Metric::Latency(s) => pick(&point.latency_ms, *s),
            Metric::LatencyUncorrected(s) => pick(&point.latency_uncorrected_ms, *s),
            Metric::Freshness(s) => {
                let f = point.freshness_ms.as_ref()?;
                match s {
                    Stat::P50 => f.p50,
                    Stat::P90 => f.p90,
                    Stat::P99 => f.p99,
                    Stat::Max => f.max,
                    Stat::P999 => return None,
                }
            }
            Metric::ErrorRate(cause) => point.error_rate(cause.as_deref()),
            Metric::ErrorCount(cause) => point.error_count(cause.as_deref()) as f64,
            Metric::AchievedRate => point.achieved_rate,
            Metric::AchievedRatio => point.achieved_ratio(),
            Metric::LateSends => point.late_sends as f64,
            Metric::LateSendRate => point.late_send_rate(),
        })
    }

    /// Formats a value of this metric for people (`812 ms`, `1.25%`, `4,980/s`).
    pub(crate) fn format_value(&self, v: f64) -> String {
        match self.unit() {
            Unit::Millis => super::fmt_ms(v),
            Unit::Fraction => super::fmt_pct(v),
            Unit::Count => super::fmt_int(v),
            Unit::PerSecond => format!("{}/s", super::fmt_int(v)),
        }
    }

    fn parse(parts: &[&str]) -> Result<Metric, String> {
        let stat = |kind: &str, s: &str| {
            Stat::parse(s).ok_or_else(|| {
                format!("unknown statistic `{s}` for {kind}; use p50, p90, p99, p999 or max")
            })
        };
        match parts {
            ["latency", s] => Ok(Metric::Latency(stat("latency", s)?)),
            ["latency_uncorrected", s] => Ok(Metric::LatencyUncorrected(stat("latency", s)?)),
            ["freshness", "p999"] => {
                Err("freshness has no p999; use p50, p90, p99 or max".to_owned())
            }
            ["freshness", s] => Ok(Metric::Freshness(stat("freshness", s)?)),
            ["errors", "rate"] => Ok(Metric::ErrorRate(None)),
            ["errors", "count"] => Ok(Metric::ErrorCount(None)),
            ["errors", cause, "rate"] => Ok(Metric::ErrorRate(Some((*cause).to_owned()))),
            ["errors", cause, "count"] => Ok(Metric::ErrorCount(Some((*cause).to_owned()))),
            ["achieved_rate"] => Ok(Metric::AchievedRate),
            ["achieved_ratio"] => Ok(Metric::AchievedRatio),
            ["late_sends"] | ["late_sends", "count"] => Ok(Metric::LateSends),
            ["late_sends", "rate"] => Ok(Metric::LateSendRate),
            _ => Err(format!(
                "unknown metric `{}`; use latency.STAT, latency_uncorrected.STAT, freshness.STAT, \
                 errors.rate, errors.count, errors.CAUSE.rate, errors.CAUSE.count, achieved_rate, \
                 achieved_ratio, late_sends or late_sends.rate",
                parts.join(".")
            )),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
}

impl Op {
    /// The operator as written.
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }

    /// Whether `value op limit` holds.
    pub(crate) fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Op::Lt => value < limit,
            Op::Le => value <= limit,
            Op::Gt => value > limit,
            Op::Ge => value >= limit,
            Op::Eq => (value - limit).abs() <= f64::EPSILON * limit.abs().max(1.0),
        }
    }
}

/// A parsed threshold expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The pattern whose points it applies to.
    pub pattern: Pattern,
    /// What it measures.
    pub metric: Metric,
    /// `true` for `….change`: the relative change against the baseline run's same point,
    /// `(new - old) / old`, instead of the value itself.
    pub change: bool,
    /// The comparison.
    pub op: Op,
    /// The limit, in the metric's unit (milliseconds, a fraction, a count, records/s), or a
    /// fraction for `.change`.
    pub limit: f64,
}

/// Why a threshold expression could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdError {
    /// The expression as given.
    pub expression: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ThresholdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad threshold `{}`: {}", self.expression, self.reason)
    }
}

impl std::error::Error for ThresholdError {}

impl FromStr for Threshold {
    type Err = ThresholdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ThresholdError {
            expression: s.to_owned(),
            reason,
        };
        let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let at = compact.find(['<', '>', '=']).ok_or_else(|| {
            err("no comparison; write e.g. `push.freshness.p99<500ms`".to_owned())
        })?;
        let (lhs, rest) = compact.split_at(at);
        let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
            (Op::Le, v)
        } else if let Some(v) = rest.strip_prefix(">=") {
            (Op::Ge, v)
        } else if let Some(v) = rest.strip_prefix("==") {
            (Op::Eq, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (Op::Lt, v)
        } else if let Some(v) = rest.strip_prefix('>') {
            (Op::Gt, v)
        } else {
            return Err(err("use one of <, <=, >, >=, ==".to_owned()));
        };
        let mut parts: Vec<&str> = lhs.split('.').collect();
        let pattern = match parts.first().copied() {
            Some("push") => Pattern::Push,
            Some("kafka") => Pattern::Kafka,
            Some("sink") => Pattern::Sink,
            Some(other) => {
                return Err(err(format!(
                    "unknown pattern `{other}`; use push, kafka or sink"
                )))
            }
            None => return Err(err("missing pattern".to_owned())),
        };
        parts.remove(0);
        let change = parts.last() == Some(&"change");
        if change {
            parts.pop();
        }
        let metric = Metric::parse(&parts).map_err(err)?;
        let unit = if change {
            Unit::Fraction
        } else {
            metric.unit()
        };
        let limit = parse_value(value, unit).map_err(err)?;
        Ok(Threshold {
            pattern,
            metric,
            change,
            op,
            limit,
        })
    }
}

/// Reads a limit in `unit`: `500ms`, `2s`, `1%`, `0.01`, `900`, `900/s`.
pub(super) fn parse_value(v: &str, unit: Unit) -> Result<f64, String> {
    if v.is_empty() {
        return Err("missing value after the operator".to_owned());
    }
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(v.len());
    let (num, suffix) = v.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{v}` is not a number with an optional unit"))?;
    if !n.is_finite() {
        return Err(format!("`{v}` is not a finite number"));
    }
    let factor = match (unit, suffix) {
        (Unit::Millis, "" | "ms") => 1.0,
        (Unit::Millis, "us" | "µs") => 0.001,
        (Unit::Millis, "s") => 1000.0,
        (Unit::Millis, "m") => 60_000.0,
        (Unit::Fraction, "") => 1.0,
        (Unit::Fraction, "%") => 0.01,
        (Unit::Count, "") => 1.0,
        (Unit::PerSecond, "" | "/s") => 1.0,
        (Unit::Millis, s) => {
            return Err(format!("unknown duration unit `{s}`; use us, ms, s or m"))
        }
        (Unit::Fraction, s) => {
            return Err(format!(
                "unknown unit `{s}` for a rate; write a percentage (`1%`) or a fraction (`0.01`)"
            ))
        }
        (Unit::Count, s) => return Err(format!("a count takes no unit, found `{s}`")),
        (Unit::PerSecond, s) => {
            return Err(format!(
                "unknown unit `{s}` for records per second; use `/s` or none"
            ))
        }
    };
    // A percentage divides (95 / 100 is exactly 0.95; 95 * 0.01 is not).
    Ok(if suffix == "%" { n / 100.0 } else { n * factor })
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.change {
            Unit::Fraction
        } else {
            self.metric.unit()
        };
        let value = match unit {
            Unit::Millis if self.limit >= 1000.0 && self.limit % 1000.0 == 0.0 => {
                format!("{}s", trim_float(self.limit / 1000.0))
            }
            Unit::Millis => format!("{}ms", trim_float(self.limit)),
            Unit::Fraction => format!("{}%", trim_float(self.limit * 100.0)),
            Unit::Count | Unit::PerSecond => trim_float(self.limit),
        };
        write!(
            f,
            "{}.{}{}{}{}",
            pattern_name(self.pattern),
            self.metric.name(),
            if self.change { ".change" } else { "" },
            self.op.symbol(),
            value
        )
    }
}

/// A number without trailing zeros: `500`, `0.5`, `1.25`.
fn trim_float(v: f64) -> String {
    let s = format!("{:.6}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

pub(super) fn pattern_name(p: Pattern) -> &'static str {
    match p {
        Pattern::Push => "push",
        Pattern::Kafka => "kafka",
        Pattern::Sink => "sink",
    }
}

impl Serialize for Threshold {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One run point's part in a threshold's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// The point's offered rate, records per second.
    pub offered_rate: f64,
    /// The measured value (the relative change for `.change`); `None` when not observed.
    pub value: Option<f64>,
    /// Whether the threshold holds at this point.
    pub passed: bool,
}

/// A threshold and its verdict on a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdResult {
    /// The threshold, in canonical form.
    pub threshold: Threshold,
    /// Whether it held at every point of its pattern (and there was at least one).
    pub passed: bool,
    /// One entry per point of the pattern, in the report's order.
    pub observations: Vec<Observation>,
    /// One sentence for people: the worst point, or why nothing could be measured.
    pub detail: String,
}

/// Evaluates `thresholds` on `report`. `.change` thresholds fail (no baseline); use
/// [`evaluate_with`] to give them one.
pub fn evaluate(report: &LoadReport, thresholds: &[Threshold]) -> Vec<ThresholdResult> {
    evaluate_with(report, thresholds, None)
}

/// Evaluates `thresholds` on `report`, reading `.change` thresholds against `baseline`'s point
/// of the same pattern and offered rate.
pub fn evaluate_with(
    report: &LoadReport,
    thresholds: &[Threshold],
    baseline: Option<&LoadReport>,
) -> Vec<ThresholdResult> {
    thresholds
        .iter()
        .map(|t| evaluate_one(report, t, baseline))
        .collect()
}

fn evaluate_one(
    report: &LoadReport,
    t: &Threshold,
    baseline: Option<&LoadReport>,
) -> ThresholdResult {
    let points: Vec<&RunPoint> = report
        .points
        .iter()
        .filter(|p| p.pattern == Some(t.pattern))
        .collect();
    let name = pattern_name(t.pattern);
    if points.is_empty() {
        return ThresholdResult {
            threshold: t.clone(),
            passed: false,
            observations: Vec::new(),
            detail: format!("no {name} point in this report"),
        };
    }
    if t.change && baseline.is_none() {
        return ThresholdResult {
            threshold: t.clone(),
            passed: false,
            observations: Vec::new(),
            detail: "a `.change` threshold needs a baseline run (--compare OLD.json)".into(),
        };
    }
    // Why a point has no value, for the detail sentence.
    let mut missing: Option<String> = None;
    let observations: Vec<Observation> = points
        .iter()
        .map(|p| {
            let value = if t.change {
                match baseline.and_then(|b| super::find_point(b, p.pattern, p.offered_rate)) {
                    None => {
                        missing.get_or_insert_with(|| {
                            format!("no baseline point at {}/s", super::fmt_int(p.offered_rate))
                        });
                        None
                    }
                    Some(old) => t
                        .metric
                        .value(old)
                        .zip(t.metric.value(p))
                        .and_then(|(o, n)| relative_change(o, n)),
                }
            } else {
                t.metric.value(p)
            };
            if value.is_none() {
                missing.get_or_insert_with(|| {
                    format!(
                        "{} not measured at {}/s",
                        t.metric.name(),
                        super::fmt_int(p.offered_rate)
                    )
                });
            }
            Observation {
                offered_rate: p.offered_rate,
                value,
                passed: value.is_some_and(|v| t.op.holds(v, t.limit)),
            }
        })
        .collect();
    let passed = observations.iter().all(|o| o.passed);
    let fmt = |v: f64| {
        if t.change {
            format!("{:+.1}%", v * 100.0)
        } else {
            t.metric.format_value(v)
        }
    };
    let detail = if let Some(why) = missing {
        why
    } else {
        // The worst observation: the one furthest on the wrong side of the limit.
        let worse = |a: f64, b: f64| match t.op {
            Op::Lt | Op::Le => a > b,
            Op::Gt | Op::Ge => a < b,
            Op::Eq => (a - t.limit).abs() > (b - t.limit).abs(),
        };
        let mut worst = &observations[0];
        for o in &observations[1..] {
            if let (Some(a), Some(b)) = (o.value, worst.value) {
                if worse(a, b) {
                    worst = o;
                }
            }
        }
        let v = worst.value.unwrap_or_default();
        let failing = observations.iter().filter(|o| !o.passed).count();
        if passed {
            format!(
                "worst {} at {}/s across {} point(s)",
                fmt(v),
                super::fmt_int(worst.offered_rate),
                observations.len()
            )
        } else {
            format!(
                "{} at {}/s; fails at {} of {} point(s)",
                fmt(v),
                super::fmt_int(worst.offered_rate),
                failing,
                observations.len()
            )
        }
    };
    ThresholdResult {
        threshold: t.clone(),
        passed,
        observations,
        detail,
    }
}

/// `(new - old) / old`; a change from zero is 0 when both are zero and unbounded otherwise.
pub(super) fn relative_change(old: f64, new: f64) -> Option<f64> {
    if old == 0.0 {
        Some(if new == 0.0 {
            0.0
        } else {
            f64::INFINITY * new.signum()
        })
    } else {
        Some((new - old) / old.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::sample::sweep;

    fn t(s: &str) -> Threshold {
        match s.parse() {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    fn reason(s: &str) -> String {
        match s.parse::<Threshold>() {
            Ok(t) => panic!("`{s}` parsed as {t:?}"),
            Err(e) => e.reason,
        }
    }

    #[test]
    fn the_documented_examples_parse_to_their_meaning() {
        let f = t("push.freshness.p99<500ms");
        assert_eq!(
            (f.pattern, &f.metric, f.op, f.limit, f.change),
            (
                Pattern::Push,
                &Metric::Freshness(Stat::P99),
                Op::Lt,
                500.0,
                false
            )
        );
        let k = t("kafka.latency.p99<=2s");
        assert_eq!(
            (k.metric.clone(), k.op, k.limit),
            (Metric::Latency(Stat::P99), Op::Le, 2000.0)
        );
        let e = t("push.errors.rate<1%");
        assert_eq!((e.metric.clone(), e.limit), (Metric::ErrorRate(None), 0.01));
        let s = t("sink.achieved_rate>=900");
        assert_eq!(
            (s.pattern, s.metric.clone(), s.op, s.limit),
            (Pattern::Sink, Metric::AchievedRate, Op::Ge, 900.0)
        );
        let c = t(" push.latency.p99.change <= 10% ");
        assert!(c.change);
        assert!((c.limit - 0.10).abs() < 1e-12);
        assert_eq!(
            t("push.errors.429.rate<0.5%").metric,
            Metric::ErrorRate(Some("429".into()))
        );
        assert_eq!(t("kafka.latency.p50<800us").limit, 0.8);
    }

    #[test]
    fn the_canonical_form_parses_back_to_the_same_threshold() {
        for s in [
            "push.freshness.p99<500ms",
            "kafka.latency.p999<=2s",
            "push.errors.rate<1%",
            "sink.achieved_rate>=900",
            "kafka.achieved_ratio>0.99",
            "push.errors.timeout.count==0",
            "push.late_sends.rate<0.1%",
            "push.latency_uncorrected.max<1m",
            "kafka.freshness.p50.change<=+25%",
        ] {
            let first = t(s);
            assert_eq!(t(&first.to_string()), first, "{s} -> {first}");
        }
        assert_eq!(
            t("kafka.latency.p99<=2000ms").to_string(),
            "kafka.latency.p99<=2s"
        );
        assert_eq!(
            t("kafka.latency.p99<1.5s").to_string(),
            "kafka.latency.p99<1500ms"
        );
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        assert!(reason("flink.latency.p99<1s").contains("unknown pattern `flink`"));
        assert!(reason("push.latency.p95<1s").contains("unknown statistic `p95`"));
        assert!(reason("push.freshness.p999<1s").contains("freshness has no p999"));
        assert!(reason("push.speed<1").contains("unknown metric `speed`"));
        assert!(reason("push.latency.p99").contains("no comparison"));
        assert!(reason("push.latency.p99<").contains("missing value"));
        assert!(reason("push.latency.p99<5h").contains("unknown duration unit `h`"));
        assert!(reason("push.errors.rate<1ms").contains("percentage"));
        assert!(reason("push.late_sends<3%").contains("a count takes no unit"));
        assert!(reason("push.latency.p99<fast").contains("not a number"));
        assert!(reason("push.latency.p99=<5").contains("use one of"));
        let e = match "x<1".parse::<Threshold>() {
            Err(e) => e.to_string(),
            Ok(_) => String::new(),
        };
        assert!(e.starts_with("bad threshold `x<1`:"), "{e}");
    }

    #[test]
    fn a_threshold_holds_only_when_every_point_of_its_pattern_passes() {
        let r = sweep();
        let res = evaluate(
            &r,
            &[
                t("push.freshness.p99<500ms"),
                t("kafka.freshness.p99<5s"),
                t("push.errors.rate<1%"),
                t("kafka.achieved_ratio>=99%"),
            ],
        );
        assert!(!res[0].passed);
        let failing: Vec<f64> = res[0]
            .observations
            .iter()
            .filter(|o| !o.passed)
            .map(|o| o.offered_rate)
            .collect();
        assert_eq!(failing, [5000.0, 10000.0]);
        assert_eq!(
            res[0].detail,
            "9.80 s at 10,000/s; fails at 2 of 6 point(s)"
        );
        assert!(res[1].passed, "{}", res[1].detail);
        assert_eq!(res[1].detail, "worst 3.30 s at 10,000/s across 6 point(s)");
        assert!(!res[2].passed);
        assert!(res[3].passed);
    }

    #[test]
    fn missing_data_fails_instead_of_passing_silently() {
        let mut r = sweep();
        r.points[0].freshness_ms = None;
        let res = evaluate(
            &r,
            &[
                t("push.freshness.p99<1m"),
                t("sink.achieved_rate>=1"),
                t("push.latency.p99.change<10%"),
            ],
        );
        assert!(!res[0].passed);
        assert_eq!(res[0].detail, "freshness.p99 not measured at 100/s");
        assert!(!res[1].passed);
        assert_eq!(res[1].detail, "no sink point in this report");
        assert!(!res[2].passed);
        assert!(res[2].detail.contains("needs a baseline"));
    }

    #[test]
    fn change_thresholds_read_against_the_baseline() {
        let new = sweep();
        let mut old = new.clone();
        old.points[1].latency_ms.p99 = 100.0; // new is 118: +18 %
        let res = evaluate_with(
            &new,
            &[
                t("push.latency.p99.change<10%"),
                t("push.latency.p99.change<20%"),
            ],
            Some(&old),
        );
        assert!(!res[0].passed);
        assert_eq!(res[0].detail, "+18.0% at 500/s; fails at 1 of 6 point(s)");
        assert!(res[1].passed, "{}", res[1].detail);
    }
}
