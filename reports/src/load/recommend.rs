//! The pattern recommendation: for each band of rates, push or Kafka + Spark, with the numbers
//! behind the choice, and the crossover rate above which Kafka + Spark is the better choice.
//!
//! Rule (also in the user docs). Rates are split into bands at the swept offered rates; a band
//! `(previous rate, r]` is judged by the measurements at `r`, its harder end. At `r`:
//! 1. a pattern *holds* when its achieved rate is at least `min_achieved_ratio` of the offered
//!    rate and its error rate at most `max_error_rate` ([`Criteria`]);
//! 2. Kafka + Spark is chosen when it holds and any of these is true:
//!    (a) *cost*: its hourly cost (cost model) is no more than push's at `r`;
//!    (b) *capacity*: push does not hold;
//!    (c) *freshness*: push's p99 freshness is no better than Kafka's (push lost its edge);
//! 3. otherwise push is chosen when it holds, and neither when nothing holds.
//!
//! The crossover rate is the lowest rate at which (a), (b) or (c) is true. (a) is solved
//! exactly on the cost model; (b) and (c) are only known at swept rates, so the crossover lies
//! between the last swept rate where they were false and the first where they are true.

use serde::{Deserialize, Serialize};

use super::cost::CostModel;
use super::{find_point, fmt_int, fmt_ms, fmt_pct, fmt_usd, LoadReport, Pattern, RunPoint};

/// When a pattern is said to hold a rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Criteria {
    /// Smallest achieved/offered ratio that counts as holding the rate (0.99 = within 1 %).
    pub min_achieved_ratio: f64,
    /// Largest error rate (failed requests over requests) that counts as holding the rate.
    pub max_error_rate: f64,
}

impl Default for Criteria {
    fn default() -> Self {
        Criteria {
            min_achieved_ratio: 0.99,
            max_error_rate: 0.01,
        }
    }
}

impl Criteria {
    /// Whether `p` holds its offered rate.
    pub fn holds(&self, p: &RunPoint) -> bool {
        p.achieved_ratio() >= self.min_achieved_ratio && p.error_rate(None) <= self.max_error_rate
    }
}

/// The pattern chosen for a band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    /// The Stream Ingest API.
    Push,
    /// Kafka/Kinesis + Spark Structured Streaming.
    Kafka,
    /// No measured pattern held this rate.
    Neither,
}

impl Choice {
    /// Label for people.
    pub fn label(self) -> &'static str {
        match self {
            Choice::Push => "push (Stream Ingest API)",
            Choice::Kafka => "Kafka + Spark",
            Choice::Neither => "neither held",
        }
    }
}

/// One rate band and its recommendation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Band {
    /// Lower edge, exclusive (0 for the first band), records/s.
    pub from_rate: f64,
    /// Upper edge, inclusive: the swept rate whose measurements judge the band, records/s.
    pub to_rate: f64,
    /// The recommendation.
    pub choice: Choice,
    /// Why, in one sentence.
    pub because: String,
    /// The measurements and costs behind it, one sentence each.
    pub reasons: Vec<String>,
}

/// Where Kafka + Spark becomes the better choice, by each criterion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Crossover {
    /// The crossover: the lowest of the three rates below, records/s; `None` when push stays
    /// the better choice at every measured rate and the cost model never favours Kafka.
    pub rate: Option<f64>,
    /// Which criterion sets `rate`: `cost`, `capacity` or `freshness`.
    pub basis: Option<String>,
    /// The highest swept rate below `rate` (the crossover lies between it and `rate` when the
    /// basis is measured); `None` when `rate` is at or below the lowest swept rate.
    pub below: Option<f64>,
    /// Lowest rate at which Kafka + Spark costs no more per hour than push (cost model, exact).
    pub cost_rate: Option<f64>,
    /// Lowest swept rate at which push does not hold while Kafka does.
    pub capacity_rate: Option<f64>,
    /// Lowest swept rate at which push's p99 freshness is no better than Kafka's.
    pub freshness_rate: Option<f64>,
    /// Records per push request used for the cost crossover (the median measured).
    pub records_per_request: f64,
}

/// The recommendation for a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// The criteria used.
    pub criteria: Criteria,
    /// The crossover rate.
    pub crossover: Crossover,
    /// One band per swept rate, lowest first.
    pub bands: Vec<Band>,
}

/// Builds the recommendation for `report`.
pub fn recommend(report: &LoadReport, cost: &CostModel, criteria: &Criteria) -> Recommendation {
    let mut rates: Vec<f64> = report
        .points
        .iter()
        .filter(|p| matches!(p.pattern, Some(Pattern::Push | Pattern::Kafka)))
        .map(|p| p.offered_rate)
        .collect();
    rates.sort_by(f64::total_cmp);
    rates.dedup_by(|a, b| same_rate(*a, *b));

    let mut rpr: Vec<f64> = report
        .points
        .iter()
        .filter(|p| p.pattern == Some(Pattern::Push))
        .filter_map(RunPoint::records_per_request)
        .collect();
    rpr.sort_by(f64::total_cmp);
    let records_per_request = rpr
        .get(rpr.len() / 2)
        .copied()
        .unwrap_or(cost.default_records_per_request);

    let cost_rate = cost.cost_crossover(records_per_request);
    let mut capacity_rate = None;
    let mut freshness_rate = None;
    let mut bands = Vec::new();
    let mut from = 0.0;
    for &r in &rates {
        let push = find_point(report, Some(Pattern::Push), r);
        let kafka = find_point(report, Some(Pattern::Kafka), r);
        let sink = find_point(report, Some(Pattern::Sink), r);
        let push_holds = push.is_some_and(|p| criteria.holds(p));
        let kafka_holds = kafka.is_some_and(|p| criteria.holds(p));
        let mut reasons = Vec::new();
        if let Some(p) = push {
            reasons.push(describe("push", p, criteria));
        } else {
            reasons.push("push: not measured at this rate.".to_string());
        }
        if let Some(k) = kafka {
            reasons.push(describe("Kafka + Spark", k, criteria));
        } else {
            reasons.push("Kafka + Spark: not measured at this rate.".to_string());
        }

        let push_usd = cost.push_usd_per_hour(r, records_per_request);
        let kafka_usd = cost.kafka_usd_per_hour(r);
        let cheaper = kafka_usd <= push_usd;
        let capacity = push.is_some() && !push_holds && kafka_holds;
        let fresh_lost = match (
            push.and_then(|p| p.freshness_ms),
            kafka.and_then(|k| k.freshness_ms),
        ) {
            (Some(pf), Some(kf)) => pf.p99 >= kf.p99,
            _ => false,
        };
        if capacity && capacity_rate.is_none() {
            capacity_rate = Some(r);
        }
        if fresh_lost && freshness_rate.is_none() {
            freshness_rate = Some(r);
        }
        if push.is_some() && kafka.is_some() {
            reasons.push(format!(
                "Example cost per hour at {}/s: push {} vs Kafka + Spark {} ({} Spark cluster(s)).",
                fmt_int(r),
                fmt_usd(push_usd),
                fmt_usd(kafka_usd),
                cost.spark_clusters(r)
            ));
        }
        let because;
        let choice = if kafka_holds && (cheaper || !push_holds || fresh_lost) {
            let why: Vec<&str> = [
                (cheaper, "it costs no more"),
                (!push_holds, "push does not hold this rate"),
                (fresh_lost, "push is no fresher at p99"),
            ]
            .iter()
            .filter(|(c, _)| *c)
            .map(|(_, w)| *w)
            .collect();
            because = format!("Kafka + Spark because {}.", join_and(&why));
            Choice::Kafka
        } else if push_holds {
            let why = if kafka.is_none() {
                "push holds this rate (Kafka + Spark not measured)".to_string()
            } else if !kafka_holds {
                "push holds this rate and Kafka + Spark does not".to_string()
            } else {
                "push holds this rate, is fresher at p99 and costs less".to_string()
            };
            because = format!("Push because {why}.");
            Choice::Push
        } else {
            because = "Neither pattern held this rate: raise limits, scale out or lower the rate."
                .to_string();
            Choice::Neither
        };
        if let Some(s) = sink {
            reasons.push(format!(
                "Your sink {} this rate ({} achieved, {} errors).",
                if criteria.holds(s) {
                    "held"
                } else {
                    "did not hold"
                },
                fmt_pct(s.achieved_ratio()),
                fmt_pct(s.error_rate(None))
            ));
        }
        bands.push(Band {
            from_rate: from,
            to_rate: r,
            choice,
            because,
            reasons,
        });
        from = r;
    }

    let candidates = [
        (cost_rate, "cost"),
        (capacity_rate, "capacity"),
        (freshness_rate, "freshness"),
    ];
    let best = candidates
        .iter()
        .filter_map(|(r, b)| r.map(|r| (r, *b)))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    let below = best.and_then(|(r, _)| rates.iter().rev().find(|&&x| x < r).copied());
    Recommendation {
        criteria: *criteria,
        crossover: Crossover {
            rate: best.map(|b| b.0),
            basis: best.map(|b| b.1.to_string()),
            below,
            cost_rate,
            capacity_rate,
            freshness_rate,
            records_per_request,
        },
        bands,
    }
}

impl Crossover {
    /// One sentence for people that states the crossover and what sets it.
    pub fn sentence(&self) -> String {
        let Some(rate) = self.rate else {
            return "No crossover: push stays the better choice at every measured rate, and the \
                    cost model never favours Kafka + Spark."
                .to_string();
        };
        let basis = self.basis.as_deref().unwrap_or_default();
        let what = match basis {
            "cost" => format!(
                "Kafka + Spark costs no more per hour than push (example prices, {:.1} records \
                 per push request)",
                self.records_per_request
            ),
            "capacity" => "push no longer holds the offered rate while Kafka + Spark does".into(),
            _ => "push's p99 freshness is no better than Kafka + Spark's".into(),
        };
        let place = match (basis, self.below) {
            ("cost", _) => format!("at {}/s", fmt_int(rate)),
            (_, Some(b)) => format!(
                "between {}/s and {}/s (first seen at {}/s)",
                fmt_int(b),
                fmt_int(rate),
                fmt_int(rate)
            ),
            (_, None) => format!("at or below {}/s, the lowest rate measured", fmt_int(rate)),
        };
        format!("Crossover {place}: from there on {what}.")
    }
}

impl Crossover {
    /// The rate by each criterion, for people.
    pub fn by_criterion(&self) -> String {
        let r = |v: Option<f64>| {
            v.map(|v| format!("{}/s", fmt_int(v)))
                .unwrap_or_else(|| "none".to_string())
        };
        format!(
            "By criterion: cost {} (example prices, {:.1} records per push request); capacity {}; \
             freshness {}.",
            r(self.cost_rate),
            self.records_per_request,
            r(self.capacity_rate),
            r(self.freshness_rate)
        )
    }
}

/// `a`, `a and b`, `a, b and c`.
fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn describe(name: &str, p: &RunPoint, c: &Criteria) -> String {
    let fresh = p
        .freshness_ms
        .map(|f| format!(", freshness p99 {}", fmt_ms(f.p99)))
        .unwrap_or_default();
    format!(
        "{name}: {} {} ({} of offered), errors {}, latency p99 {}{fresh}.",
        if c.holds(p) { "holds" } else { "does not hold" },
        format_args!("{}/s", fmt_int(p.achieved_rate)),
        fmt_pct(p.achieved_ratio()),
        fmt_pct(p.error_rate(None)),
        fmt_ms(p.latency_ms.p99),
    )
}

/// Offered rates compare equal within a millionth, so `1000` and `999.9999999` match.
pub(super) fn same_rate(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::sample::sweep;

    fn choices(r: &Recommendation) -> Vec<Choice> {
        r.bands.iter().map(|b| b.choice).collect()
    }

    #[test]
    fn the_sweep_recommends_push_below_the_crossover_and_kafka_above() {
        let r = recommend(&sweep(), &CostModel::default(), &Criteria::default());
        use Choice::*;
        assert_eq!(choices(&r), [Push, Push, Push, Push, Kafka, Kafka]);
        let c = &r.crossover;
        assert_eq!(c.rate, Some(5000.0));
        assert_eq!(c.basis.as_deref(), Some("capacity"));
        assert_eq!(c.below, Some(2000.0));
        assert_eq!(c.capacity_rate, Some(5000.0));
        assert_eq!(c.freshness_rate, Some(5000.0));
        assert_eq!(c.records_per_request, 5.0);
        assert!((c.cost_rate.unwrap_or_default() - 6666.67).abs() < 0.01);
        assert_eq!(
            c.sentence(),
            "Crossover between 2,000/s and 5,000/s (first seen at 5,000/s): from there on push \
             no longer holds the offered rate while Kafka + Spark does."
        );
        assert_eq!(
            r.bands[4].because,
            "Kafka + Spark because push does not hold this rate and push is no fresher at p99."
        );
        assert_eq!((r.bands[4].from_rate, r.bands[4].to_rate), (2000.0, 5000.0));
    }

    #[test]
    fn cheaper_kafka_wins_even_where_push_holds() {
        let mut cost = CostModel::default();
        cost.set("spark_cluster_usd_per_hour=0.5")
            .unwrap_or_default();
        let r = recommend(&sweep(), &cost, &Criteria::default());
        let c = &r.crossover;
        assert_eq!(c.basis.as_deref(), Some("cost"));
        // (0.60 + 0.50) / 0.00054 = 2,037/s, between the 2,000 and 5,000 sweeps.
        assert!((c.rate.unwrap_or_default() - 2037.04).abs() < 0.01);
        assert!(c
            .sentence()
            .starts_with("Crossover at 2,037/s: from there on Kafka + Spark costs no more"));
    }

    #[test]
    fn a_pattern_alone_or_nothing_holding_is_said_so() {
        let mut r = sweep();
        r.points.retain(|p| p.pattern == Some(Pattern::Push));
        let rec = recommend(&r, &CostModel::default(), &Criteria::default());
        use Choice::*;
        assert_eq!(choices(&rec), [Push, Push, Push, Push, Neither, Neither]);
        assert_eq!(
            rec.bands[0].because,
            "Push because push holds this rate (Kafka + Spark not measured)."
        );
        assert_eq!(rec.crossover.capacity_rate, None);
        assert!(recommend(
            &LoadReport::default(),
            &CostModel::default(),
            &Criteria::default()
        )
        .bands
        .is_empty());
    }
}
