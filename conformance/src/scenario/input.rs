//! A scenario's input records: written inline, read from a JSONL file, or generated from the
//! run's seed.

use std::time::Duration;

use mock_tecton::schema::format_rfc3339;
use serde_json::{Map, Value as Json};

use crate::sink::Record;
use mock_tecton::rng::SplitMix64;

/// How far (in positions) a disordered event's time may move: a generated event chosen for
/// disorder swaps its event time with one of the events at most this many positions away.
pub const DISORDER_WINDOW: usize = 5;

/// Merchants of generated records.
const MERCHANTS: [&str; 8] = [
    "acme_grocery",
    "blue_fuel",
    "corner_cafe",
    "delta_air",
    "echo_books",
    "fig_pharmacy",
    "gamma_games",
    "harbor_hotel",
];

/// Where a scenario's records come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Records given in the scenario file or read from its JSONL file, in order.
    Records(Vec<Record>),
    /// Records generated from the run's seed.
    Generated(Generator),
}

impl Input {
    /// The records of a run with `seed` (fixed records ignore the seed).
    pub(crate) fn records(&self, seed: u64) -> Vec<Record> {
        match self {
            Input::Records(r) => r.clone(),
            Input::Generated(g) => g.generate(seed),
        }
    }

    /// How many records a run gets.
    pub fn len(&self) -> usize {
        match self {
            Input::Records(r) => r.len(),
            Input::Generated(g) => g.count,
        }
    }

    /// Whether a run gets no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Generated transactions for the demo's `transactions` push source.
///
/// Record `i` has `transaction_id` `t{i:05}`, a `user_id` drawn from `keys` users, a merchant,
/// an amount, a rare fraud flag, and an event time `start + i * step` (all in May 2024 by
/// default, inside the demo's 30-day TTL at the harness's virtual now). A `disorder` fraction
/// of events swap their event time with an event at most [`DISORDER_WINDOW`] positions away, so
/// event time and input order disagree the way they do in real streams. Every choice comes
/// from the run's seed mixed with `salt`.
#[derive(Debug, Clone, PartialEq)]
pub struct Generator {
    /// Records to generate.
    pub count: usize,
    /// Distinct `user_id`s.
    pub keys: usize,
    /// Fraction of events whose event time is shuffled, in `0..=1`.
    pub disorder: f64,
    /// Event time of the first record, ns since the epoch.
    pub start: i64,
    /// Event-time step between consecutive records.
    pub step: Duration,
    /// Mixed with the run's seed, so two scenarios with the same seed differ.
    pub salt: u64,
}

impl Generator {
    /// Generates the records of a run with `seed`.
    pub(crate) fn generate(&self, seed: u64) -> Vec<Record> {
        let mut rng = SplitMix64::new(crate::scenario::mix_seed(seed, self.salt));
        let step = i64::try_from(self.step.as_nanos()).unwrap_or(i64::MAX);
        let mut times: Vec<i64> = (0..self.count)
            .map(|i| {
                self.start
                    .saturating_add(step.saturating_mul(i64::try_from(i).unwrap_or(i64::MAX)))
            })
            .collect();
        let keys = self.keys.max(1) as u64;
        let mut users = Vec::with_capacity(self.count);
        for _ in 0..self.count {
            users.push(rng.next_u64() % keys);
        }
        if self.disorder > 0.0 && self.count > 1 {
            for i in 0..self.count {
                if rng.next_f64() < self.disorder {
                    let lo = i.saturating_sub(DISORDER_WINDOW);
                    let hi = (i + DISORDER_WINDOW).min(self.count - 1);
                    let span = (hi - lo + 1) as u64;
                    let j = lo + (rng.next_u64() % span) as usize;
                    times.swap(i, j);
                }
            }
        }
        (0..self.count)
            .map(|i| {
                let mut r = Map::new();
                r.insert("user_id".into(), format!("user_{:03}", users[i]).into());
                r.insert("transaction_id".into(), format!("t{i:05}").into());
                let merchant = MERCHANTS[(rng.next_u64() % MERCHANTS.len() as u64) as usize];
                r.insert("merchant".into(), merchant.into());
                let cents = 100 + rng.next_u64() % 50_000;
                r.insert("amt".into(), Json::from(cents as f64 / 100.0));
                let fraud = i64::from(rng.next_f64() < 0.02);
                r.insert("is_fraud".into(), fraud.into());
                r.insert("timestamp".into(), format_rfc3339(times[i]).into());
                r
            })
            .collect()
    }
}

/// Reads JSON Lines: one object per non-empty line. Errors name the line (from 1).
pub(crate) fn parse_jsonl(text: &str) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<Json>(line) {
            Ok(Json::Object(m)) => out.push(m),
            Ok(_) => return Err(format!("line {}: not a JSON object", n + 1)),
            Err(e) => return Err(format!("line {}: {e}", n + 1)),
        }
    }
    Ok(out)
}

/// Converts a TOML value to JSON; TOML datetimes become their RFC 3339 text.
pub(crate) fn toml_to_json(v: &toml::Value) -> Json {
    match v {
        toml::Value::String(s) => Json::String(s.clone()),
        toml::Value::Integer(i) => Json::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(a) => Json::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Json::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen(disorder: f64) -> Generator {
        Generator {
            count: 200,
            keys: 7,
            disorder,
            start: 1_716_163_200_000_000_000,
            step: Duration::from_secs(1),
            salt: 3,
        }
    }

    #[test]
    fn same_seed_same_records_and_ids_in_order() {
        let a = gen(0.3).generate(9);
        assert_eq!(a, gen(0.3).generate(9));
        assert_ne!(a, gen(0.3).generate(10));
        for (i, r) in a.iter().enumerate() {
            assert_eq!(r["transaction_id"], format!("t{i:05}"));
        }
    }

    #[test]
    fn disorder_moves_some_event_times_within_the_window() {
        let ordered = gen(0.0).generate(1);
        let shuffled = gen(0.3).generate(1);
        let ts = |r: &Record| {
            mock_tecton::schema::parse_timestamp(r["timestamp"].as_str().unwrap_or_default())
                .unwrap_or(0)
        };
        assert!(ordered.windows(2).all(|w| ts(&w[0]) < ts(&w[1])));
        let moved = shuffled
            .iter()
            .zip(&ordered)
            .filter(|(a, b)| ts(a) != ts(b))
            .count();
        assert!(moved > 20, "{moved} events moved");
        for (a, b) in shuffled.iter().zip(&ordered) {
            let d = (ts(a) - ts(b)).abs();
            assert!(
                d <= 4 * DISORDER_WINDOW as i64 * 1_000_000_000,
                "moved {d} ns"
            );
        }
    }

    #[test]
    fn jsonl_errors_name_the_line() {
        assert_eq!(
            parse_jsonl("{\"a\":1}\n\n{\"b\":2}\n").map(|r| r.len()),
            Ok(2)
        );
        let e = parse_jsonl("{\"a\":1}\n[1]\n").err().unwrap_or_default();
        assert!(e.starts_with("line 2"), "{e}");
    }
}
