//! A stream source under generated load on the virtual clock, as fast as the machine allows:
//! records are appended to the topic at their arrival times and the engine runs every
//! micro-batch that falls due, exactly as it does live.
//!
//! Records are built from the source schema: join keys pick one of `users` entities,
//! deduplication columns get unique ids, the event time trails the arrival by under a second, or,
//! for `late_share` of the records, by up to twice the watermark delay (so about half of those
//! fall behind the watermark). Records are appended already decoded: the JSON round trip is the
//! HTTP path's cost, not the engine's. One seed drives every choice; the records are generated
//! on a thread of their own, a few thousand ahead of the engine, in the same order as ever.
//!
//! The engine runs once per 30 s of simulated time and catches up every micro-batch due by
//! then: a micro-batch reads what was appended by its start, so when it runs changes nothing it
//! reads. The source's groups run on threads of their own while the next records are appended
//! (the stream engine's `pipeline` module), with the figures of a run tick by tick.
//!
//! Two peers are timed in the same run on the first records, so speeds can be compared on a
//! busy machine: generating the records alone, and applying them through the in-process ingest
//! path ([`MockState::apply_events`]) when a push source has the stream source's schema.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::topic::{Decoded, Row};
use super::{Freshness, StreamConfig};
use crate::config::Config;
use crate::duration::{HOUR, SECOND};
use crate::ingest::Event;
use crate::repo::{Repository, StreamSource};
use crate::schema::{DataType, Value};
use crate::state::MockState;
use smol_str::{format_smolstr, SmolStr, SmolStrBuilder};

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
    /// Keys held in memory at the end: queries that share a deduplication state hold its keys
    /// once.
    pub state_rows_held: u64,
    /// The most topic records held (not yet read by every query) at any sample.
    pub peak_topic_records: u64,
    /// Entities in the online store at the end, over the source's views (0 unless the
    /// simulation writes it, [`StreamConfig::materialize`]).
    pub online_entities: u64,
    /// Wall time of the run (without the peers).
    pub wall: std::time::Duration,
    /// CPU time of the process during the run, every thread (without the peers); `None` where
    /// `/proc/self/stat` is not readable.
    pub cpu: Option<std::time::Duration>,
    /// The peers, timed on the first records.
    pub peers: Peers,
}

/// Peers timed in the same run on the first `events` records, for speed ratios that hold on a
/// busy machine.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    /// Records the peers ran.
    pub events: u64,
    /// Generating the records alone, per record.
    pub generate: std::time::Duration,
    /// Generating them and applying them through the in-process ingest path, per record, with
    /// the push source used; `None` when no push source has the stream source's schema.
    pub apply: Option<(String, std::time::Duration)>,
}

/// Records the peers run at most.
pub(crate) const PEER_EVENTS: u64 = 500_000;

/// Records the generating thread hands over at a time.
const HANDOVER: usize = 4_096;

/// Virtual time between two runs of the engine (the default TIME_INTERVAL trigger).
const SIM_CHUNK: i64 = crate::decisions::TIME_INTERVAL_TRIGGER;

/// CPU time (user and system) the process has used so far, its exited threads included, read
/// from `/proc/self/stat` (Linux; ticks of 1/100 s, the kernel's `USER_HZ`).
fn process_cpu() -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at the third field.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(std::time::Duration::from_millis((user + system) * 10))
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

/// What each schema field of a generated record holds.
enum FieldGen {
    Timestamp,
    Key(DataType),
    Dedup(DataType),
    Other(DataType),
}

/// Generates the simulation's records, the same for a seed.
struct Generator {
    rng: Rng,
    fields: Vec<FieldGen>,
    users: Vec<SmolStr>,
    merchants: Vec<SmolStr>,
    start: i64,
    gap: f64,
    late_share: f64,
    late_span: i64,
}

/// One generated record.
struct Generated {
    arrival: i64,
    ts: i64,
    user: u64,
    values: Vec<Value>,
}

/// A generated record ready to append: decoded for every reader of the topic, and its
/// partition (an entity stays in one, as with a keyed Kafka producer).
struct Produced {
    arrival: i64,
    partition: u32,
    decoded: Arc<[Decoded]>,
}

impl Produced {
    fn new(g: Generated, readers: usize, partitions: u64) -> Self {
        let Generated {
            arrival,
            ts,
            user,
            values,
        } = g;
        let decoded: Arc<[Decoded]> = if readers == 1 {
            // One allocation for the common case.
            Arc::new([Ok(Row { values, ts })])
        } else {
            let mut decoded: Vec<Decoded> = Vec::with_capacity(readers);
            for _ in 1..readers {
                decoded.push(Ok(Row {
                    values: values.clone(),
                    ts,
                }));
            }
            decoded.push(Ok(Row { values, ts }));
            decoded.into()
        };
        Produced {
            arrival,
            partition: u32::try_from(user % partitions.max(1)).unwrap_or(0),
            decoded,
        }
    }
}

impl Generator {
    fn new(sim: &Simulation, source: &StreamSource, key_fields: &[String]) -> Self {
        let fields = source
            .schema
            .fields
            .iter()
            .map(|f| {
                let t = f.data_type.clone();
                if f.name == source.timestamp_field {
                    FieldGen::Timestamp
                } else if key_fields.contains(&f.name) {
                    FieldGen::Key(t)
                } else if source.deduplication_columns.contains(&f.name) {
                    FieldGen::Dedup(t)
                } else {
                    FieldGen::Other(t)
                }
            })
            .collect();
        let users = sim.users.max(1);
        Generator {
            rng: Rng(sim.seed),
            fields,
            // Strings made once: the records' cost is the engine's, not the formatter's.
            users: (0..users.min(1 << 24))
                .map(|u| format_smolstr!("u{u}"))
                .collect(),
            merchants: (0..50).map(|m| format_smolstr!("m{m}")).collect(),
            start: sim.start,
            gap: SECOND as f64 / sim.rate,
            late_share: sim.late_share,
            late_span: if source.watermark_delay_threshold > 0 {
                2 * source.watermark_delay_threshold
            } else {
                2 * HOUR
            },
        }
    }

    fn record(&mut self, i: u64, users: u64) -> Generated {
        let rng = &mut self.rng;
        let arrival = self.start + (i as f64 * self.gap) as i64;
        let ts = if rng.unit() < self.late_share {
            arrival - (rng.unit() * self.late_span as f64) as i64
        } else {
            arrival - (rng.unit() * SECOND as f64) as i64
        };
        let user = rng.below(users.max(1));
        let values = self
            .fields
            .iter()
            .map(|f| match f {
                FieldGen::Timestamp => Value::Timestamp(ts),
                FieldGen::Key(DataType::String) => Value::String(
                    self.users
                        .get(user as usize)
                        .cloned()
                        .unwrap_or_else(|| format_smolstr!("u{user}")),
                ),
                FieldGen::Key(_) => Value::Int(user as i64),
                FieldGen::Dedup(DataType::String) => {
                    let mut text = SmolStrBuilder::new();
                    text.push('e');
                    text.push_str(itoa::Buffer::new().format(i));
                    Value::String(text.finish())
                }
                FieldGen::Dedup(_) => Value::Int(i as i64),
                FieldGen::Other(t) => {
                    let r = rng.next();
                    match t {
                        DataType::String => {
                            Value::String(self.merchants[(r % 50) as usize].clone())
                        }
                        DataType::Int64 | DataType::Int32 => Value::Int((r % 2) as i64),
                        DataType::Float64 | DataType::Float32 => {
                            Value::Float((r % 100_000) as f64 / 100.0)
                        }
                        DataType::Bool => Value::Bool(r.is_multiple_of(2)),
                        _ => Value::Null,
                    }
                }
            })
            .collect();
        Generated {
            arrival,
            ts,
            user,
            values,
        }
    }
}

/// Why a simulation could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The repository has no stream source of that name.
    #[error("no stream source named `{0}`")]
    UnknownSource(String),
    /// The rate is not a positive, finite number.
    #[error("--rate must be a positive number of records per second")]
    BadRate,
    /// The mock has no topic for the source (a repository the mock did not build topics for).
    #[error("no topic `{0}`")]
    NoTopic(String),
}

impl Simulation {
    /// Runs the simulation; `tick(done, total)` is called every few thousand records.
    pub fn run(
        &self,
        repo: &Repository,
        stream: StreamConfig,
        mut tick: impl FnMut(u64, u64),
    ) -> Result<SimReport, SimError> {
        let index = repo
            .stream_sources
            .iter()
            .position(|s| s.name == self.source)
            .ok_or_else(|| SimError::UnknownSource(self.source.clone()))?;
        let source = repo.stream_sources[index].clone();
        if !(self.rate > 0.0 && self.rate.is_finite()) {
            return Err(SimError::BadRate);
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
        let total = (self.rate * self.duration as f64 / SECOND as f64).round() as u64;
        // Before the run: after it, the allocator is still giving back the run's gigabytes.
        let peers = self.peers(repo, &source, &key_fields, total.min(PEER_EVENTS));
        let state = MockState::new(
            &Config::new(repo.clone())
                .virtual_clock(self.start)
                .stream(stream.clone()),
        );
        let topic = state
            .streams
            .topic(&source.topic)
            .ok_or_else(|| SimError::NoTopic(source.topic.clone()))?;
        let readers = topic.readers().len();
        let partitions = u64::from(topic.partition_count());
        if !source.deduplication_columns.is_empty() {
            // Every key stays held for the watermark delay: size the tables once.
            let held = if source.watermark_delay_threshold > 0 {
                self.rate * source.watermark_delay_threshold as f64 / SECOND as f64
            } else {
                total as f64
            };
            let keys = (total as f64).min(held * 1.05);
            state
                .streams
                .reserve_dedup(index, usize::try_from(keys as u64).unwrap_or(usize::MAX));
        }
        let mut gen = Generator::new(self, &source, &key_fields);
        let began = Instant::now();
        let cpu_before = process_cpu();
        // The engine runs once per chunk of virtual time: each group then runs every micro-batch
        // due by then, each reading what was appended by its own start, exactly as if it had
        // run at that start. A chunk gives every group a full micro-batch to work on, and the
        // groups run on threads of their own while the next chunk's records are appended.
        let chunk = SIM_CHUNK;
        let users = self.users;
        let piped = state.streams.pipelined(&state, index, |pipe| {
            let mut peak_topic = 0u64;
            let mut next_run = self.start;
            // A run at this time, waiting for the first record after it: a run may start
            // once every record appended by its time is in the topic.
            let mut due: Option<i64> = None;
            std::thread::scope(|scope| {
                // Records are generated on a thread of their own, a few thousand ahead, while
                // this one appends them and feeds the engine.
                let (ready, arrived) = std::sync::mpsc::sync_channel::<Vec<Produced>>(2);
                let (recycle, spare) = std::sync::mpsc::channel::<Vec<Produced>>();
                scope.spawn(move || {
                    let mut i = 0;
                    while i < total {
                        let mut handover = spare
                            .try_recv()
                            .unwrap_or_else(|_| Vec::with_capacity(HANDOVER));
                        while i < total && handover.len() < HANDOVER {
                            handover.push(Produced::new(gen.record(i, users), readers, partitions));
                            i += 1;
                        }
                        if ready.send(handover).is_err() {
                            break;
                        }
                    }
                });
                let mut done = 0u64;
                for mut handover in arrived {
                    for Produced {
                        arrival,
                        partition,
                        decoded,
                    } in handover.drain(..)
                    {
                        if let Some(at) = due.filter(|&at| arrival > at) {
                            pipe.run(at);
                            due = None;
                            peak_topic = peak_topic.max(topic.held() as u64);
                        }
                        topic.append(partition, Bytes::new(), decoded, arrival, arrival, None);
                        if arrival >= next_run {
                            due = Some(arrival);
                            next_run = arrival + chunk;
                        }
                    }
                    done += HANDOVER as u64;
                    tick(done.min(total), total);
                    // The generator may have finished and gone: its buffer is then just dropped.
                    let _ = recycle.send(handover);
                }
            });
            if let Some(at) = due {
                pipe.run(at);
            }
            peak_topic
        });
        let (peak_state, peak_topic) = (piped.peak_state_rows, piped.result);
        // Let the last triggers fire and the last writes land.
        let triggers = [
            crate::decisions::TIME_INTERVAL_TRIGGER,
            stream.trigger_interval.map_or(0, super::nanos),
            source.trigger_interval.unwrap_or(0),
        ];
        let end = self.start + self.duration;
        let mut at = end + triggers.iter().max().copied().unwrap_or(0) + SECOND;
        state.clock.set(at);
        state.run_streams();
        // Each run completes what is due by then; a 0 s trigger may chain more batches.
        while let Some(next) = state.streams.next_due() {
            at = at.max(next);
            state.clock.set(at);
            state.run_streams();
        }
        tick(total, total);
        let wall = began.elapsed();
        let cpu = process_cpu()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before));
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
        let report = SimReport {
            records: total,
            views: view_rows,
            freshness: state.streams.freshness(index),
            state_rows: totals.state_rows,
            state_rows_held: totals.state_rows_held,
            peak_state_rows: peak_state.max(totals.state_rows),
            peak_topic_records: peak_topic,
            online_entities: views.iter().map(|&v| state.online.len(v) as u64).sum(),
            wall,
            cpu,
            peers,
        };
        Ok(report)
    }

    /// Times the peers on the first `events` records.
    fn peers(
        &self,
        repo: &Repository,
        source: &StreamSource,
        key_fields: &[String],
        events: u64,
    ) -> Peers {
        let per = |d: std::time::Duration| d / u32::try_from(events.max(1)).unwrap_or(u32::MAX);
        let mut gen = Generator::new(self, source, key_fields);
        let began = Instant::now();
        for i in 0..events {
            std::hint::black_box(gen.record(i, self.users));
        }
        let generate = per(began.elapsed());
        let push = repo
            .push_sources
            .iter()
            .find(|p| p.schema == source.schema && p.timestamp_field == source.timestamp_field);
        let apply = push.map(|push| {
            let state = MockState::new(&Config::new(repo.clone()).virtual_clock(self.start));
            let mut gen = Generator::new(self, source, key_fields);
            let began = Instant::now();
            let mut chunk = Vec::with_capacity(1_000);
            let mut i = 0;
            while i < events {
                chunk.clear();
                let mut last = self.start;
                while i < events && chunk.len() < 1_000 {
                    let g = gen.record(i, self.users);
                    last = g.arrival;
                    chunk.push(Event::new(g.values));
                    i += 1;
                }
                state.clock.set(last);
                let _ = state.apply_events(&push.name, chunk.drain(..));
            }
            (push.name.clone(), per(began.elapsed()))
        });
        Peers {
            events,
            generate,
            apply,
        }
    }
}
