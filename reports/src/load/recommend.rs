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

/// When a pattern is said to hold a rate, and the freshness a user needs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Criteria {
    /// Smallest achieved/offered ratio that counts as holding the rate (0.99 = within 1 %).
    pub min_achieved_ratio: f64,
    /// Largest error rate (failed requests over requests) that counts as holding the rate.
    pub max_error_rate: f64,
    /// The p99 freshness (event sent → servable) a pattern must reach to be chosen, in
    /// milliseconds; `None`: no target.
    #[serde(default)]
    pub freshness_target_ms: Option<f64>,
}

impl Default for Criteria {
    fn default() -> Self {
        Criteria {
            min_achieved_ratio: 0.99,
            max_error_rate: 0.01,
            freshness_target_ms: None,
        }
    }
}

/// The criteria names accepted by [`Criteria::set`], in the order reports list them.
pub const CRITERIA_KEYS: [&str; 3] = ["min_achieved_ratio", "max_error_rate", "freshness_target"];

impl Criteria {
    /// Whether `p` holds its offered rate.
    pub(crate) fn holds(&self, p: &RunPoint) -> bool {
        p.achieved_ratio() >= self.min_achieved_ratio && p.error_rate(None) <= self.max_error_rate
    }

    /// Whether `p`'s p99 freshness meets the target: true without a target, false when the
    /// point has no freshness figure (a missing figure never passes).
    pub(crate) fn fresh_enough(&self, p: &RunPoint) -> bool {
        match self.freshness_target_ms {
            None => true,
            Some(t) => p.freshness_ms.is_some_and(|f| f.p99 <= t),
        }
    }

    /// Whether `p` can be chosen: it holds its rate and meets the freshness target.
    pub(crate) fn qualifies(&self, p: &RunPoint) -> bool {
        self.holds(p) && self.fresh_enough(p)
    }

    /// Applies one `key=value` setting and returns the key: `min_achieved_ratio=99%`,
    /// `max_error_rate=0.5%` (a fraction or a percentage), `freshness_target=1s` (a duration:
    /// `us`, `ms`, `s`, `m`; `none` for no target).
    pub fn set(&mut self, setting: &str) -> Result<&'static str, CriterionError> {
        let (key, value) = setting
            .split_once('=')
            .ok_or_else(|| CriterionError(format!("bad criterion `{setting}`: write key=value")))?;
        let (key, value) = (key.trim(), value.trim());
        let bad = |e: String| CriterionError(format!("bad criterion `{setting}`: {e}"));
        match key {
            "min_achieved_ratio" | "max_error_rate" => {
                let v = super::threshold::parse_value(value, super::Unit::Fraction).map_err(bad)?;
                if !(0.0..=1.0).contains(&v) {
                    return Err(bad("must be between 0 and 100%".into()));
                }
                if key == "min_achieved_ratio" {
                    self.min_achieved_ratio = v;
                    Ok(CRITERIA_KEYS[0])
                } else {
                    self.max_error_rate = v;
                    Ok(CRITERIA_KEYS[1])
                }
            }
            "freshness_target" | "freshness_target_ms" => {
                if value == "none" {
                    self.freshness_target_ms = None;
                    return Ok(CRITERIA_KEYS[2]);
                }
                let v = super::threshold::parse_value(value, super::Unit::Millis).map_err(bad)?;
                if v <= 0.0 {
                    return Err(bad("must be above 0".into()));
                }
                self.freshness_target_ms = Some(v);
                Ok(CRITERIA_KEYS[2])
            }
            _ => Err(CriterionError(format!(
                "unknown criterion `{key}`; known: {}",
                CRITERIA_KEYS.join(", ")
            ))),
        }
    }
}

/// A `key=value` criterion that [`Criteria::set`] did not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriterionError(pub String);

impl std::fmt::Display for CriterionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CriterionError {}

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
    pub(crate) fn label(self) -> &'static str {
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
    /// Whether `rate` is solved exactly on the cost model (true) or only known at a swept
    /// rate (false: the crossover lies between `below` and `rate`).
    pub exact: bool,
    /// The highest swept rate below `rate` (the crossover lies between it and `rate` when the
    /// basis is measured); `None` when `rate` is at or below the lowest swept rate.
    pub below: Option<f64>,
    /// Lowest rate at which Kafka + Spark costs no more per hour than push (cost model, exact).
    pub cost_rate: Option<f64>,
    /// Lowest swept rate at which push does not hold while Kafka does.
    pub capacity_rate: Option<f64>,
    /// Lowest swept rate at which push's p99 freshness is no better than Kafka's, or push
    /// misses the freshness target while Kafka meets it.
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
    let mut cost_seen = None;
    let mut capacity_rate = None;
    let mut freshness_rate = None;
    let mut bands = Vec::new();
    let mut from = 0.0;
    for &r in &rates {
        let push = find_point(report, Some(Pattern::Push), r);
        let kafka = find_point(report, Some(Pattern::Kafka), r);
        let sink = find_point(report, Some(Pattern::Sink), r);
        let push_holds = push.is_some_and(|p| criteria.holds(p));
        let push_ok = push.is_some_and(|p| criteria.qualifies(p));
        let kafka_ok = kafka.is_some_and(|p| criteria.qualifies(p));
        let mut reasons = Vec::new();
        if let Some(p) = push {
            reasons.push(describe("push", p, criteria));
        } else {
            reasons.push("push: not measured at this rate.".to_owned());
        }
        if let Some(k) = kafka {
            reasons.push(describe("Kafka + Spark", k, criteria));
        } else {
            reasons.push("Kafka + Spark: not measured at this rate.".to_owned());
        }

        let push_usd = cost.push_usd_per_hour(r, records_per_request);
        let kafka_usd = cost.kafka_usd_per_hour(r);
        let cheaper = kafka_usd <= push_usd;
        let capacity = push.is_some() && !push_holds && kafka_ok;
        // Push lost its freshness edge: no fresher than Kafka, or it misses the target that
        // Kafka meets. Only where Kafka can be chosen.
        let fresh_lost = kafka_ok
            && (match (
                push.and_then(|p| p.freshness_ms),
                kafka.and_then(|k| k.freshness_ms),
            ) {
                (Some(pf), Some(kf)) => pf.p99 >= kf.p99,
                _ => false,
            } || (push_holds && !push_ok));
        if capacity && capacity_rate.is_none() {
            capacity_rate = Some(r);
        }
        if fresh_lost && freshness_rate.is_none() {
            freshness_rate = Some(r);
        }
        if kafka_ok && cheaper && cost_seen.is_none() && cost_rate.is_some_and(|c| c <= r) {
            // The first swept rate at or above the cost crossover where Kafka can be chosen.
            cost_seen = Some(r);
        }
        if push.is_some() && kafka.is_some() {
            reasons.push(format!(
                "Cost per hour at {}/s: push {} vs Kafka + Spark {} ({} Spark cluster(s)).",
                fmt_int(r),
                fmt_usd(push_usd),
                fmt_usd(kafka_usd),
                cost.spark_clusters(r)
            ));
        }
        let target = criteria.freshness_target_ms.map(fmt_ms).unwrap_or_default();
        let because;
        let choice = if kafka_ok && (cheaper || !push_ok || fresh_lost) {
            let misses = format!("push misses the p99 freshness target of {target}");
            let why: Vec<&str> = [
                (cheaper, "it costs no more"),
                (!push_holds, "push does not hold this rate"),
                (push_holds && !push_ok, misses.as_str()),
                (fresh_lost, "push is no fresher at p99"),
            ]
            .iter()
            .filter(|(c, _)| *c)
            .map(|(_, w)| *w)
            .collect();
            because = format!("Kafka + Spark because {}.", join_and(&why));
            Choice::Kafka
        } else if push_ok {
            let why = if kafka.is_none() {
                "push holds this rate (Kafka + Spark not measured)".to_owned()
            } else if !kafka_ok {
                if kafka.is_some_and(|k| criteria.holds(k)) {
                    format!(
                        "push holds this rate and Kafka + Spark misses the p99 freshness target \
                         of {target}"
                    )
                } else {
                    "push holds this rate and Kafka + Spark does not".to_owned()
                }
            } else {
                "push holds this rate, is fresher at p99 and costs less".to_owned()
            };
            because = format!("Push because {why}.");
            Choice::Push
        } else {
            let held = |p: Option<&RunPoint>| p.is_some_and(|p| criteria.holds(p));
            because = if held(push) || held(kafka) {
                format!(
                    "Neither pattern met the p99 freshness target of {target} while holding this \
                     rate: relax the target, or lower the rate."
                )
            } else {
                "Neither pattern held this rate: raise limits, scale out or lower the rate."
                    .to_owned()
            };
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

    // The cost crossover counts where Kafka + Spark can be chosen there: exactly, when Kafka
    // qualifies at the swept rate that judges its band (or it lies beyond every swept rate);
    // otherwise at the first swept rate where Kafka qualifies and costs no more.
    let judge = cost_rate.and_then(|c| rates.iter().copied().find(|&r| r >= c));
    let cost_candidate = match (cost_rate, judge) {
        (Some(c), None) => Some((c, true)),
        (Some(_), Some(j)) if cost_seen == Some(j) => cost_rate.map(|c| (c, true)),
        _ => cost_seen.map(|r| (r, false)),
    };
    let candidates = [
        (cost_candidate, "cost"),
        (capacity_rate.map(|r| (r, false)), "capacity"),
        (freshness_rate.map(|r| (r, false)), "freshness"),
    ];
    let best = candidates
        .iter()
        .filter_map(|(r, b)| r.map(|(r, exact)| (r, *b, exact)))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    let below = best.and_then(|(r, _, _)| rates.iter().rev().find(|&&x| x < r).copied());
    Recommendation {
        criteria: *criteria,
        crossover: Crossover {
            rate: best.map(|b| b.0),
            basis: best.map(|b| b.1.to_owned()),
            exact: best.is_some_and(|b| b.2),
            below,
            cost_rate,
            capacity_rate,
            freshness_rate,
            records_per_request,
        },
        bands,
    }
}

impl Recommendation {
    /// One sentence for people that states the crossover and what sets it, with the freshness
    /// target when there is one.
    pub fn crossover_sentence(&self) -> String {
        let s = self.crossover.sentence();
        match (
            self.criteria.freshness_target_ms,
            self.crossover.basis.as_deref(),
        ) {
            (Some(t), None) => format!(
                "No crossover: push stays the choice wherever it holds the rate, and Kafka + \
                 Spark never qualifies where it would be chosen under the p99 freshness target \
                 of {}.",
                fmt_ms(t)
            ),
            (Some(t), Some("freshness")) => s.replace(
                "push's p99 freshness is no better than Kafka + Spark's.",
                &format!(
                    "push's p99 freshness is no better than Kafka + Spark's, or misses the \
                     target of {} that Kafka + Spark meets.",
                    fmt_ms(t)
                ),
            ),
            _ => s,
        }
    }
}

impl Crossover {
    /// One sentence for people that states the crossover and what sets it.
    pub(crate) fn sentence(&self) -> String {
        let Some(rate) = self.rate else {
            return "No crossover: push stays the better choice at every measured rate, and the \
                    cost model never favours Kafka + Spark."
                .to_owned();
        };
        let basis = self.basis.as_deref().unwrap_or_default();
        let what = match basis {
            "cost" => format!(
                "Kafka + Spark costs no more per hour than push (cost model, {:.1} records per \
                 push request)",
                self.records_per_request
            ),
            "capacity" => "push no longer holds the offered rate while Kafka + Spark does".into(),
            _ => "push's p99 freshness is no better than Kafka + Spark's".into(),
        };
        let place = match (self.exact, self.below) {
            (true, _) => format!("at {}/s", fmt_int(rate)),
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
    pub(crate) fn by_criterion(&self) -> String {
        let r = |v: Option<f64>| {
            v.map(|v| format!("{}/s", fmt_int(v)))
                .unwrap_or_else(|| "none".to_owned())
        };
        format!(
            "By criterion: cost {} (cost model, {:.1} records per push request); capacity {}; \
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
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn describe(name: &str, p: &RunPoint, c: &Criteria) -> String {
    let mut fresh = p
        .freshness_ms
        .map(|f| format!(", freshness p99 {}", fmt_ms(f.p99)))
        .unwrap_or_default();
    if let Some(t) = c.freshness_target_ms {
        let verdict = if c.fresh_enough(p) { "meets" } else { "misses" };
        fresh.push_str(&format!(" ({verdict} the {} target)", fmt_ms(t)));
    }
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
    fn a_freshness_target_rules_out_the_pattern_that_misses_it() {
        let mut criteria = Criteria::default();
        assert_eq!(criteria.set("freshness_target=3s"), Ok("freshness_target"));
        let r = recommend(&sweep(), &CostModel::default(), &criteria);
        use Choice::*;
        // Kafka's p99 is 2.5 s at 5,000/s and 3.3 s at 10,000/s; push no longer holds there.
        assert_eq!(choices(&r), [Push, Push, Push, Push, Kafka, Neither]);
        assert!(
            r.bands[5].because.starts_with(
                "Neither pattern met the p99 freshness target of 3.00 s while holding this rate"
            ),
            "{}",
            r.bands[5].because
        );
        assert!(r.bands[5].reasons[1].contains("(misses the 3.00 s target)"));
        // The cost model alone would favour Kafka from 6,667/s, but Kafka misses the target at
        // 10,000/s, the rate that judges that band: cost sets no crossover.
        let c = &r.crossover;
        assert!((c.cost_rate.unwrap_or_default() - 6666.67).abs() < 0.01);
        assert_eq!(
            (c.rate, c.basis.as_deref()),
            (Some(5000.0), Some("capacity"))
        );

        // A target no Kafka point meets: push wherever it holds, and no crossover.
        criteria.set("freshness_target=1s").unwrap_or_default();
        let r = recommend(&sweep(), &CostModel::default(), &criteria);
        assert_eq!(choices(&r), [Push, Push, Push, Push, Neither, Neither]);
        assert_eq!(r.crossover.rate, None);
        assert!(r.crossover_sentence().contains("target of 1.00 s"));
        assert_eq!(
            r.bands[0].because,
            "Push because push holds this rate and Kafka + Spark misses the p99 freshness \
             target of 1.00 s."
        );
    }

    #[test]
    fn criteria_settings_are_checked() {
        let mut c = Criteria::default();
        assert_eq!(c.set("min_achieved_ratio=95%"), Ok("min_achieved_ratio"));
        assert_eq!(c.set("max_error_rate = 0.005"), Ok("max_error_rate"));
        assert_eq!(c.set("freshness_target=500ms"), Ok("freshness_target"));
        assert_eq!(
            (
                c.min_achieved_ratio,
                c.max_error_rate,
                c.freshness_target_ms
            ),
            (0.95, 0.005, Some(500.0))
        );
        assert_eq!(c.set("freshness_target=none"), Ok("freshness_target"));
        assert_eq!(c.freshness_target_ms, None);
        let err = |s: &str| {
            Criteria::default()
                .set(s)
                .err()
                .map(|e| e.0)
                .unwrap_or_default()
        };
        assert!(err("speed=1").contains("unknown criterion `speed`"));
        assert!(err("min_achieved_ratio").contains("key=value"));
        assert!(err("min_achieved_ratio=150%").contains("between 0 and 100%"));
        assert!(err("freshness_target=1h").contains("unknown duration unit"));
        assert!(err("freshness_target=0s").contains("above 0"));
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
