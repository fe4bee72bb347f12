//! A stream source under generated load on the virtual clock, as fast as the machine allows:
//! records are appended to the topic at their arrival times and the engine runs every
//! micro-batch that falls due, exactly as it does live.
//!
//! Records are built from the source schema: join keys pick one of `users` entities,
//! deduplication columns get unique ids, the event time trails the arrival by under a second, or,
//! for `late_share` of the records, by up to twice the watermark delay (so about half of those
//! fall behind the watermark). Records are appended already decoded: the JSON round trip is the
//! HTTP path's cost, not the engine's. One seed drives every choice.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::topic::{Decoded, Row};
use super::{Freshness, StreamConfig};
use crate::config::Config;
use crate::duration::{HOUR, SECOND};
use crate::repo::Repository;
use crate::schema::{DataType, Value};
use crate::state::MockState;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// The stream source.
    pub source: String,
    /// Records per second of virtual time.
    pub rate: f64,
    /// Virtual duration (ns).
    pub duration: i64,
    /// Distinct entities.
    pub users: u64,
    /// Share of records that arrive late (0..=1).
    pub late_share: f64,
    /// Drives every random choice.
    pub seed: u64,
    /// Virtual start time (ns).
    pub start: i64,
}

/// What a simulation measured.
#[derive(Debug, Clone)]
pub struct SimReport {
    /// Records appended.
    pub records: u64,
    /// Per view: name, micro-batches, rows written, drops (late, duplicate, invalid), freshness.
    pub views: Vec<(String, u64, u64, [u64; 3], Freshness)>,
    /// Every view's materialized events.
    pub freshness: Freshness,
    /// Keys held in state at the end (aggregation groups plus deduplication keys).
    pub state_rows: u64,
    /// The most keys held at any sample.
    pub peak_state_rows: u64,
    /// The most topic records held (not yet read by every query) at any sample.
    pub peak_topic_records: u64,
    /// Entities in the online store at the end, over the source's views.
    pub online_entities: u64,
    /// Wall time of the run.
    pub wall: std::time::Duration,
}

/// splitmix64: a small, seedable generator (the same one the fault engine draws from).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

impl Simulation {
    /// Runs the simulation; `tick(done, total)` is called every few thousand records.
    pub fn run(
        &self,
        repo: &Repository,
        stream: StreamConfig,
        mut tick: impl FnMut(u64, u64),
    ) -> Result<SimReport, String> {
        let index = repo
            .stream_sources
            .iter()
            .position(|s| s.name == self.source)
            .ok_or_else(|| format!("no stream source named `{}`", self.source))?;
        let source = repo.stream_sources[index].clone();
        if !(self.rate > 0.0 && self.rate.is_finite()) {
            return Err("--rate must be a positive number of records per second".into());
        }
        let views = repo.views_of_source(&source.name);
        let key_fields: Vec<String> = views
            .first()
            .map(|&v| {
                repo.feature_views[v]
                    .join_keys
                    .iter()
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        let state = MockState::new(
            &Config::new(repo.clone())
                .virtual_clock(self.start)
                .stream(stream.clone()),
        );
        let topic = state
            .streams
            .topic(&source.topic)
            .ok_or_else(|| format!("no topic `{}`", source.topic))?;
        let readers = topic.readers().len();
        let partitions = u64::from(topic.partition_count());
        let total = (self.rate * self.duration as f64 / SECOND as f64).round() as u64;
        let gap = SECOND as f64 / self.rate;
        let late_span = if source.watermark_delay_threshold > 0 {
            2 * source.watermark_delay_threshold
        } else {
            2 * HOUR
        };
        let mut rng = Rng(self.seed);
        let began = Instant::now();
        let (mut peak_state, mut peak_topic) = (0u64, 0u64);
        for i in 0..total {
            let arrival = self.start + (i as f64 * gap) as i64;
            let ts = if rng.unit() < self.late_share {
                arrival - (rng.unit() * late_span as f64) as i64
            } else {
                arrival - (rng.unit() * SECOND as f64) as i64
            };
            let user = rng.below(self.users.max(1));
            let values: Vec<Value> = source
                .schema
                .fields
                .iter()
                .map(|f| {
                    if f.name == source.timestamp_field {
                        Value::Timestamp(ts)
                    } else if key_fields.contains(&f.name) {
                        match f.data_type {
                            DataType::String => Value::String(format!("u{user}")),
                            _ => Value::Int(user as i64),
                        }
                    } else if source.deduplication_columns.contains(&f.name) {
                        match f.data_type {
                            DataType::String => Value::String(format!("e{i}")),
                            _ => Value::Int(i as i64),
                        }
                    } else {
                        let r = rng.next();
                        match f.data_type {
                            DataType::String => Value::String(format!("m{}", r % 50)),
                            DataType::Int64 | DataType::Int32 => Value::Int((r % 2) as i64),
                            DataType::Float64 | DataType::Float32 => {
                                Value::Float((r % 100_000) as f64 / 100.0)
                            }
                            DataType::Bool => Value::Bool(r % 2 == 0),
                            _ => Value::Null,
                        }
                    }
                })
                .collect();
            let decoded: Arc<[Decoded]> = (0..readers)
                .map(|_| {
                    Ok(Row {
                        values: values.clone(),
                        ts,
                    })
                })
                .collect();
            // Entities stay in one partition, as with a keyed Kafka producer.
            let partition = u32::try_from(user % partitions).unwrap_or(0);
            state.clock.set(arrival);
            topic.append(partition, Bytes::new(), decoded, arrival, arrival, None);
            state.run_streams();
            if i % 4096 == 0 {
                tick(i, total);
                peak_state = peak_state.max(state.streams.totals(index).state_rows);
                peak_topic = peak_topic.max(topic.held() as u64);
            }
        }
        // Let the last triggers fire and the last writes land.
        let triggers = [
            crate::decisions::TIME_INTERVAL_TRIGGER,
            stream.trigger_interval.map_or(0, super::nanos),
            source.trigger_interval.unwrap_or(0),
        ];
        let end = self.start + self.duration;
        state.clock.set(
            end + triggers.iter().max().copied().unwrap_or(0)
                + super::nanos(stream.batch_overhead)
                + SECOND,
        );
        state.run_streams();
        tick(total, total);
        let totals = state.streams.totals(index);
        let progress = state.streams.progress(repo, index, 0);
        let mut view_rows = Vec::new();
        for (k, &v) in views.iter().enumerate() {
            let q = &progress["queries"][k];
            let drops = &q["dropped"];
            let n = |x: &serde_json::Value| x.as_u64().unwrap_or(0);
            view_rows.push((
                repo.feature_views[v].name.clone(),
                state.streams.query_batches(index, k),
                state.streams.query_rows_written(index, k),
                [
                    n(&drops["late"]),
                    n(&drops["duplicate"]),
                    n(&drops["invalid"]),
                ],
                state.streams.query_freshness(index, k),
            ));
        }
        Ok(SimReport {
            records: total,
            views: view_rows,
            freshness: state.streams.freshness(index),
            state_rows: totals.state_rows,
            peak_state_rows: peak_state.max(totals.state_rows),
            peak_topic_records: peak_topic,
            online_entities: views.iter().map(|&v| state.online.len(v) as u64).sum(),
            wall: began.elapsed(),
        })
    }
}
