//! Comparison of a run against a stored one (`--compare OLD.json`): points are matched by
//! pattern and offered rate, and each compared metric is flagged as a regression when it moved
//! the wrong way by more than the [`Tolerance`].

use serde::Serialize;

use super::threshold::{Metric, Stat};
use super::{find_point, LoadReport, Pattern};

/// How far a metric may move the wrong way before it counts as a regression. Timing on a
/// shared machine is noisy, so both a relative and an absolute margin must be exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    /// Latency and freshness: relative increase allowed (0.10 = 10 %).
    pub time_relative: f64,
    /// Latency and freshness: absolute increase always allowed, in milliseconds.
    pub time_absolute_ms: f64,
    /// Achieved rate: drop allowed, as a fraction of the offered rate.
    pub rate_drop: f64,
    /// Error and late-send rates: increase allowed, as a fraction of requests.
    pub share_increase: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            time_relative: 0.10,
            time_absolute_ms: 1.0,
            rate_drop: 0.01,
            share_increase: 0.001,
        }
    }
}

/// One metric of one point in both runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricDelta {
    /// The metric's name, as in threshold expressions (`latency.p99`, `errors.rate`).
    pub metric: String,
    /// Value in the baseline run (`None`: not observed there).
    pub old: Option<f64>,
    /// Value in this run (`None`: not observed).
    pub new: Option<f64>,
    /// Whether it moved the wrong way beyond the tolerance.
    pub regression: bool,
    /// The change for people: `+12.0%`, `+0.30 pp`, `n/a`.
    pub change: String,
}

/// A point present in both runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PointDelta {
    /// The point's pattern.
    pub pattern: Option<Pattern>,
    /// The point's offered rate, records per second.
    pub offered_rate: f64,
    /// The compared metrics.
    pub metrics: Vec<MetricDelta>,
}

/// A point (pattern, offered rate) found in only one of the runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnmatchedPoint {
    /// The point's pattern.
    pub pattern: Option<Pattern>,
    /// The point's offered rate, records per second.
    pub offered_rate: f64,
}

/// The comparison of this run (`new`) with a stored baseline (`old`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The baseline's `started_at`.
    pub baseline_started_at: String,
    /// The baseline's `tool_version`.
    pub baseline_tool_version: String,
    /// The baseline's profile; a different profile makes the comparison meaningless, which the
    /// reports point out.
    pub baseline_profile: String,
    /// The tolerance used.
    pub tolerance: Tolerance,
    /// Points present in both runs, in the new run's order.
    pub points: Vec<PointDelta>,
    /// Points only the baseline has.
    pub only_in_baseline: Vec<UnmatchedPoint>,
    /// Points only this run has.
    pub only_in_new: Vec<UnmatchedPoint>,
}

impl Comparison {
    /// Every regression, with its point.
    pub(crate) fn regressions(&self) -> impl Iterator<Item = (&PointDelta, &MetricDelta)> + '_ {
        self.points
            .iter()
            .flat_map(|p| p.metrics.iter().map(move |m| (p, m)))
            .filter(|(_, m)| m.regression)
    }

    /// Whether any metric regressed.
    pub(crate) fn has_regressions(&self) -> bool {
        self.regressions().next().is_some()
    }
}

/// The metrics a comparison looks at, in display order.
pub(super) fn compared_metrics() -> Vec<Metric> {
    vec![
        Metric::AchievedRate,
        Metric::Latency(Stat::P50),
        Metric::Latency(Stat::P99),
        Metric::Latency(Stat::P999),
        Metric::Freshness(Stat::P50),
        Metric::Freshness(Stat::P99),
        Metric::ErrorRate(None),
        Metric::LateSendRate,
    ]
}

/// Compares `new` against `old` with the default [`Tolerance`].
pub fn compare(old: &LoadReport, new: &LoadReport) -> Comparison {
    compare_with(old, new, Tolerance::default())
}

/// Compares `new` against `old` with `tolerance`.
pub fn compare_with(old: &LoadReport, new: &LoadReport, tolerance: Tolerance) -> Comparison {
    let metrics = compared_metrics();
    let mut points = Vec::new();
    let mut only_in_new = Vec::new();
    for p in &new.points {
        let Some(o) = find_point(old, p.pattern, p.offered_rate) else {
            only_in_new.push(UnmatchedPoint {
                pattern: p.pattern,
                offered_rate: p.offered_rate,
            });
            continue;
        };
        let deltas = metrics
            .iter()
            .map(|m| {
                let (ov, nv) = (m.value(o), m.value(p));
                MetricDelta {
                    metric: m.name(),
                    old: ov,
                    new: nv,
                    regression: regressed(m, ov, nv, p.offered_rate, &tolerance),
                    change: describe_change(m, ov, nv),
                }
            })
            .collect();
        points.push(PointDelta {
            pattern: p.pattern,
            offered_rate: p.offered_rate,
            metrics: deltas,
        });
    }
    let only_in_baseline = old
        .points
        .iter()
        .filter(|o| find_point(new, o.pattern, o.offered_rate).is_none())
        .map(|o| UnmatchedPoint {
            pattern: o.pattern,
            offered_rate: o.offered_rate,
        })
        .collect();
    Comparison {
        baseline_started_at: old.started_at.clone(),
        baseline_tool_version: old.tool_version.clone(),
        baseline_profile: old.profile.clone(),
        tolerance,
        points,
        only_in_baseline,
        only_in_new,
    }
}

fn regressed(m: &Metric, old: Option<f64>, new: Option<f64>, offered: f64, t: &Tolerance) -> bool {
    match (old, new) {
        // A figure the baseline had and this run lost (freshness no longer observed) is worse.
        (Some(_), None) => true,
        (None, _) => false,
        (Some(o), Some(n)) => match m {
            Metric::AchievedRate | Metric::AchievedRatio => o - n > t.rate_drop * offered,
            Metric::ErrorRate(_) | Metric::LateSendRate => n - o > t.share_increase,
            Metric::Latency(_) | Metric::LatencyUncorrected(_) | Metric::Freshness(_) => {
                n - o > t.time_absolute_ms && n > o * (1.0 + t.time_relative)
            }
            Metric::ErrorCount(_) | Metric::LateSends => n > o,
        },
    }
}

fn describe_change(m: &Metric, old: Option<f64>, new: Option<f64>) -> String {
    match (old, new) {
        (Some(o), Some(n)) => match m {
            Metric::ErrorRate(_) | Metric::LateSendRate | Metric::AchievedRatio => {
                format!("{:+.2} pp", (n - o) * 100.0)
            }
            _ if o == 0.0 && n == 0.0 => "±0%".to_owned(),
            _ if o == 0.0 => "new".to_owned(),
            _ => format!("{:+.1}%", (n - o) / o.abs() * 100.0),
        },
        (Some(_), None) => "lost".to_owned(),
        (None, Some(_)) => "new".to_owned(),
        (None, None) => "n/a".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::sample::sweep;

    fn regressions(c: &Comparison) -> Vec<(f64, String)> {
        c.regressions()
            .map(|(p, m)| {
                (
                    p.offered_rate,
                    format!("{}:{}", super::super::markdown::name(p.pattern), m.metric),
                )
            })
            .collect()
    }

    #[test]
    fn the_same_run_has_no_regressions() {
        let r = sweep();
        let c = compare(&r, &r);
        assert!(!c.has_regressions());
        assert_eq!(c.points.len(), 12);
        assert!(c.only_in_baseline.is_empty() && c.only_in_new.is_empty());
    }

    #[test]
    fn moves_the_wrong_way_beyond_the_tolerance_are_regressions() {
        let old = sweep();
        let mut new = old.clone();
        new.points[0].latency_ms.p99 *= 1.5; // 110 -> 165 ms
        new.points[1].latency_ms.p99 *= 1.05; // within 10 %
        new.points[2].achieved_rate = 980.0; // 2 % of 1,000 lost
        new.points[3].errors.insert("503".into(), 400); // +1 % of 40,000 requests
        new.points[7].latency_ms.p50 = 1.8; // kafka 1.1 -> 1.8 ms: +64 % but < 1 ms
        new.points[8].freshness_ms = None; // kafka freshness lost
        new.points[9].latency_ms.p99 = 1.0; // better is never a regression
        let c = compare(&old, &new);
        assert_eq!(
            regressions(&c),
            [
                (100.0, "push:latency.p99".to_owned()),
                (1000.0, "push:achieved_rate".to_owned()),
                (2000.0, "push:errors.rate".to_owned()),
                (1000.0, "kafka:freshness.p50".to_owned()),
                (1000.0, "kafka:freshness.p99".to_owned()),
            ]
        );
        let (_, m) = c.regressions().next().unwrap_or_else(|| unreachable!());
        assert_eq!(m.change, "+50.0%");
    }

    #[test]
    fn points_in_only_one_run_are_listed() {
        let old = sweep();
        let mut new = old.clone();
        new.points.remove(0);
        new.points[0].offered_rate = 600.0;
        let c = compare(&old, &new);
        let rates = |l: &[UnmatchedPoint]| l.iter().map(|u| u.offered_rate).collect::<Vec<_>>();
        assert_eq!(rates(&c.only_in_baseline), [100.0, 500.0]);
        assert_eq!(rates(&c.only_in_new), [600.0]);
        assert_eq!(c.points.len(), 10);
    }
}
