//! The records every pattern sends: generated card transactions or the lines of a JSONL file.
//!
//! Generated records fit the embedded demo's `transactions` schema (`user_id`,
//! `transaction_id`, `merchant`, `amt`, `is_fraud`, `timestamp`). Users are drawn with a Zipf
//! skew (a few hot keys, a long tail), which is what makes hot partitions and hot online rows;
//! a share of records is stamped late. Each record's event time is the instant it is due, so a
//! replay with the same seed sends the same records at the same offsets.

use std::path::Path;

use serde_json::{Map, Value};

use crate::rng::Rng;

/// A record: the fields of one event.
pub(crate) type Record = Map<String, Value>;

/// How generated records look.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSpec {
    /// Distinct users (`u0` … `u{n-1}`).
    pub users: u64,
    /// Distinct merchants.
    pub merchants: u64,
    /// Zipf exponent of the user draw: 0 is uniform, 1 is classic Zipf, larger is hotter.
    pub key_skew: f64,
    /// Mean amount (amounts are exponential around it, rounded to cents).
    pub mean_amount: f64,
    /// Share of records stamped late, 0..=1.
    pub late_share: f64,
    /// How late a late record is at most (uniform in `(0, max_lateness]`).
    pub max_lateness_ns: i64,
}

impl Default for EventSpec {
    fn default() -> Self {
        EventSpec {
            users: 10_000,
            merchants: 500,
            key_skew: 1.0,
            mean_amount: 50.0,
            late_share: 0.0,
            max_lateness_ns: 600_000_000_000,
        }
    }
}

/// Largest number of distinct users (the Zipf table holds one number per user).
pub(crate) const MAX_USERS: u64 = 10_000_000;

/// Why a record source could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// A setting out of range.
    #[error("{0}")]
    Invalid(String),
    /// The JSONL file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A line of the JSONL file is not a JSON object.
    #[error("{path}:{line}: not a JSON object: {message}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Where records come from.
#[derive(Debug, Clone)]
pub enum RecordSource {
    /// Generated events.
    Generated(Generator),
    /// The lines of a JSONL file, sent in order and from the top again when they run out.
    File {
        /// The records.
        records: Vec<Record>,
        /// The next one.
        next: usize,
    },
}

impl RecordSource {
    /// Generated events from `spec`, drawn from `seed`.
    pub fn generated(spec: EventSpec, seed: u64) -> Result<Self, RecordsError> {
        Ok(RecordSource::Generated(Generator::new(spec, seed)?))
    }

    /// The records of a JSONL file (blank lines skipped).
    pub(crate) fn file(path: &Path) -> Result<Self, RecordsError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RecordsError::Read {
            path: shown.clone(),
            source,
        })?;
        let mut records = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(map)) => records.push(map),
                Ok(_) => {
                    return Err(RecordsError::Line {
                        path: shown,
                        line: i + 1,
                        message: "a JSON value that is not an object".into(),
                    })
                }
                Err(e) => {
                    return Err(RecordsError::Line {
                        path: shown,
                        line: i + 1,
                        message: e.to_string(),
                    })
                }
            }
        }
        if records.is_empty() {
            return Err(RecordsError::Invalid(format!("{shown} holds no records")));
        }
        Ok(RecordSource::File { records, next: 0 })
    }

    /// The next record, for an event due at `due_ns` (Unix ns).
    pub(crate) fn next(&mut self, due_ns: i64) -> Record {
        match self {
            RecordSource::Generated(g) => g.next(due_ns),
            RecordSource::File { records, next } => {
                let r = records[*next % records.len()].clone();
                *next += 1;
                r
            }
        }
    }
}

/// Seeded generator of demo transactions.
#[derive(Debug, Clone)]
pub struct Generator {
    spec: EventSpec,
    rng: Rng,
    /// Cumulative Zipf weights of users, normalised to end at 1 (empty when uniform).
    cdf: Vec<f64>,
    seed: u64,
    count: u64,
}

impl Generator {
    /// A generator for `spec`, drawing from `seed`.
    pub(crate) fn new(spec: EventSpec, seed: u64) -> Result<Self, RecordsError> {
        if spec.users == 0 || spec.users > MAX_USERS {
            return Err(RecordsError::Invalid(format!(
                "users must be between 1 and {MAX_USERS}"
            )));
        }
        if spec.merchants == 0 {
            return Err(RecordsError::Invalid("merchants must be at least 1".into()));
        }
        if !(0.0..=1.0).contains(&spec.late_share) {
            return Err(RecordsError::Invalid(
                "the late share must be between 0 and 1".into(),
            ));
        }
        if !(0.0..=10.0).contains(&spec.key_skew) {
            return Err(RecordsError::Invalid(
                "the key skew must be between 0 and 10".into(),
            ));
        }
        if !(spec.mean_amount.is_finite() && spec.mean_amount > 0.0) {
            return Err(RecordsError::Invalid(
                "the mean amount must be above 0".into(),
            ));
        }
        let cdf = if spec.key_skew == 0.0 {
            Vec::new()
        } else {
            let mut acc = 0.0;
            let mut cdf: Vec<f64> = (1..=spec.users)
                .map(|k| {
                    acc += (k as f64).powf(-spec.key_skew);
                    acc
                })
                .collect();
            cdf.iter_mut().for_each(|c| *c /= acc);
            cdf
        };
        Ok(Generator {
            spec,
            rng: Rng::new(seed, 1),
            cdf,
            seed,
            count: 0,
        })
    }

    /// The user index of the next draw (0 is the hottest key).
    fn user(&mut self) -> u64 {
        if self.cdf.is_empty() {
            return self.rng.range(0, self.spec.users - 1);
        }
        let u = self.rng.unit();
        (self.cdf.partition_point(|c| *c < u) as u64).min(self.spec.users - 1)
    }

    /// The next event, due at `due_ns`.
    pub(crate) fn next(&mut self, due_ns: i64) -> Record {
        let user = self.user();
        let merchant = self.rng.range(0, self.spec.merchants - 1);
        // Exponential amounts: many small purchases, a few large ones.
        let amount = -(1.0 - self.rng.unit()).ln() * self.spec.mean_amount;
        let amount = (amount * 100.0).round() / 100.0;
        let fraud = i64::from(self.rng.chance(0.01));
        let mut ts = due_ns;
        if self.spec.late_share > 0.0 && self.rng.chance(self.spec.late_share) {
            let max = self.spec.max_lateness_ns.max(1) as u64;
            ts -= self.rng.range(1, max) as i64;
        }
        let id = format!("t{:x}-{}", self.seed, self.count);
        self.count += 1;
        let mut r = Map::new();
        r.insert("user_id".into(), Value::String(format!("u{user}")));
        r.insert("transaction_id".into(), Value::String(id));
        r.insert("merchant".into(), Value::String(format!("m{merchant}")));
        r.insert("amt".into(), Value::from(amount));
        r.insert("is_fraud".into(), Value::from(fraud));
        r.insert(
            "timestamp".into(),
            Value::String(mock_tecton::schema::format_rfc3339(ts)),
        );
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(spec: EventSpec, n: usize) -> Vec<u64> {
        let mut g = Generator::new(spec, 42).unwrap();
        (0..n)
            .map(|_| {
                let r = g.next(1_700_000_000_000_000_000);
                r["user_id"].as_str().unwrap()[1..].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn same_seed_same_records() {
        let mut a = Generator::new(EventSpec::default(), 9).unwrap();
        let mut b = Generator::new(EventSpec::default(), 9).unwrap();
        for _ in 0..100 {
            assert_eq!(a.next(0), b.next(0));
        }
    }

    #[test]
    fn zipf_skew_makes_hot_keys_and_zero_is_uniform() {
        let n = 20_000;
        let skewed = users(
            EventSpec {
                users: 1000,
                key_skew: 1.0,
                ..Default::default()
            },
            n,
        );
        let hot = skewed.iter().filter(|u| **u == 0).count() as f64 / n as f64;
        // Zipf(1) over 1000 keys gives the hottest key 1/H(1000) ≈ 13 %.
        assert!((0.11..0.16).contains(&hot), "hottest key share {hot}");
        let flat = users(
            EventSpec {
                users: 1000,
                key_skew: 0.0,
                ..Default::default()
            },
            n,
        );
        let hot = flat.iter().filter(|u| **u == 0).count() as f64 / n as f64;
        assert!(hot < 0.005, "uniform hottest share {hot}");
    }

    #[test]
    fn late_share_stamps_that_share_early() {
        let spec = EventSpec {
            late_share: 0.25,
            ..Default::default()
        };
        let mut g = Generator::new(spec, 3).unwrap();
        let due = 1_717_200_000_000_000_000;
        let late = (0..4000)
            .filter(|_| {
                let r = g.next(due);
                mock_tecton::schema::parse_timestamp(r["timestamp"].as_str().unwrap()).unwrap()
                    < due
            })
            .count();
        assert!((800..1200).contains(&late), "{late} late of 4000");
    }

    #[test]
    fn bad_settings_and_files_are_clear_errors() {
        assert!(Generator::new(
            EventSpec {
                users: 0,
                ..Default::default()
            },
            0
        )
        .is_err());
        assert!(Generator::new(
            EventSpec {
                late_share: 2.0,
                ..Default::default()
            },
            0
        )
        .is_err());
        let dir = std::env::temp_dir().join(format!("loadgen-records-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("bad.jsonl");
        std::fs::write(&f, "{\"a\":1}\n[1]\n").unwrap();
        let e = RecordSource::file(&f).unwrap_err().to_string();
        assert!(e.contains(":2:"), "{e}");
        std::fs::write(&f, "{\"a\":1}\n\n{\"a\":2}\n").unwrap();
        let mut s = RecordSource::file(&f).unwrap();
        let got: Vec<i64> = (0..3).map(|_| s.next(0)["a"].as_i64().unwrap()).collect();
        assert_eq!(got, [1, 2, 1]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
