//! One source's groups on threads that live for a whole run, while the caller appends records
//! in time order.
//!
//! A group reads the topic at its own offsets and writes its own views, and what a micro-batch
//! reads is fixed once every record appended by its start is in the topic. So when the caller
//! promises that every record appended at or before `now` is in the topic, each group can run
//! its micro-batches due by `now` on its own thread while the caller appends the next records
//! and other groups run theirs. Each group gets the same runs, in the same order, as
//! [`Streams::tick`] would give it; the source's journal and offline store take each run's
//! output in run order, then group order, as a tick does. So the figures are the same as a run
//! tick by tick, only sooner on a machine with cores to spare.
//!
//! Runs are fed `LEAD` ahead at most: a caller faster than a group waits, so the topic holds a
//! few runs' records, not the whole run's. Where a group's output would meet another
//! source's work (another source reads the same topic, or batch jobs write the same stores on
//! the clock), the pipeline runs everything in line instead, one tick per run.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, SyncSender};

use super::{
    lower_to_unread, GroupRun, LiveQuery, Outputs, StreamConfig, Streams, Topic, TopicRecord,
};
use crate::state::MockState;

/// Runs queued per group before the feeding thread waits.
const LEAD: usize = 2;

/// What a group's thread hands back after one run.
#[derive(Debug)]
struct Done {
    run: GroupRun,
    /// Its offsets after the run.
    offsets: Vec<u64>,
    /// Keys its queries hold after the run, as [`super::StreamTotals::state_rows`] counts them.
    state_rows: u64,
    /// The records of the micro-batches it applied, to be freed.
    spent: Vec<Vec<TopicRecord>>,
}

/// A source's groups, running as they are fed (see the module docs).
#[derive(Debug)]
pub(crate) struct Pipeline<'a> {
    state: &'a MockState,
    source: usize,
    /// `None` when the groups run in line.
    lanes: Option<Lanes<'a>>,
    /// The most keys held after any run.
    peak_state_rows: u64,
}

/// What a pipelined run left beside the feeder's own result.
#[derive(Debug)]
pub(crate) struct Piped<R> {
    /// What the feeder returned.
    pub(crate) result: R,
    /// The most keys the source's queries held after any run, as
    /// [`super::StreamTotals::state_rows`] counts them.
    pub(crate) peak_state_rows: u64,
}

/// The threaded half of a [`Pipeline`]: a queue of runs to each group's thread, and what they
/// hand back.
#[derive(Debug)]
struct Lanes<'a> {
    source: usize,
    topic: &'a Topic,
    config: &'a StreamConfig,
    reader: usize,
    feeds: Vec<SyncSender<i64>>,
    done: Receiver<(usize, Done)>,
    /// Per group: runs handed back, not yet taken by the source.
    ready: Vec<VecDeque<Done>>,
    /// Per group: its offsets after the last run taken.
    offsets: Vec<Vec<u64>>,
    out: &'a mut Outputs,
    fed: u64,
    taken: u64,
}

impl Streams {
    /// Runs `feed` with a [`Pipeline`] of `source`'s groups. `feed` appends records to the
    /// source's topic in time order and calls [`Pipeline::run`] where a tick would be called;
    /// when this returns, every run fed has completed and its output is in place. The source is
    /// locked meanwhile: `feed` must not read it through [`Streams`].
    pub(crate) fn pipelined<R>(
        &self,
        state: &MockState,
        source: usize,
        feed: impl FnOnce(&mut Pipeline<'_>) -> R,
    ) -> Piped<R> {
        // An unknown source runs in line too: its ticks find nothing to do.
        let threaded = source < self.sources.len()
            && self.topics[self.lock(source).topic].readers().len() == 1
            && state.batch.is_empty();
        if !threaded {
            let mut pipe = Pipeline {
                state,
                source,
                lanes: None,
                peak_state_rows: 0,
            };
            let result = feed(&mut pipe);
            return Piped {
                result,
                peak_state_rows: pipe.peak_state_rows,
            };
        }
        let mut guard = self.lock(source);
        let s = &mut *guard;
        let topic = &self.topics[s.topic];
        let config = &self.config;
        let reader = s.reader;
        let mut members: Vec<Vec<&mut LiveQuery>> = s.groups.iter().map(|_| Vec::new()).collect();
        for q in &mut s.queries {
            members[q.group].push(q);
        }
        let groups = s.groups.len();
        std::thread::scope(|scope| {
            let (hand_back, done) = mpsc::channel();
            let mut feeds = Vec::with_capacity(groups);
            for (g, (group, mut members)) in s.groups.iter_mut().zip(members).enumerate() {
                let (feed, runs) = mpsc::sync_channel::<i64>(LEAD);
                feeds.push(feed);
                let hand_back = hand_back.clone();
                scope.spawn(move || {
                    for now in runs {
                        // Records up to `now` are all in: `now` is the horizon.
                        let run = group.run_due(
                            &mut members,
                            state,
                            topic,
                            config,
                            reader,
                            now,
                            now,
                            false,
                        );
                        // The records of applied micro-batches are freed by the feeding
                        // thread, which has time to spare: freeing them cost the busiest group
                        // an eighth of its time.
                        let spent = std::mem::take(&mut group.spent);
                        let state_rows = members.iter().map(|q| q.state_rows(group) as u64).sum();
                        let done = Done {
                            run,
                            offsets: group.offsets.clone(),
                            state_rows,
                            spent,
                        };
                        if hand_back.send((g, done)).is_err() {
                            break;
                        }
                    }
                });
            }
            // Only the groups' threads hand back: with all of them gone, waiting ends.
            drop(hand_back);
            let mut pipe = Pipeline {
                state,
                source,
                lanes: Some(Lanes {
                    source,
                    topic,
                    config,
                    reader,
                    feeds,
                    done,
                    ready: (0..groups).map(|_| VecDeque::new()).collect(),
                    offsets: vec![Vec::new(); groups],
                    out: &mut s.out,
                    fed: 0,
                    taken: 0,
                }),
                peak_state_rows: 0,
            };
            let result = feed(&mut pipe);
            if let Some(mut lanes) = pipe.lanes.take() {
                // Without feeds the groups' threads end after their last run: a thread that
                // panicked cannot keep the wait going (the scope raises its panic).
                lanes.feeds.clear();
                let peak = lanes.take(state, true);
                pipe.peak_state_rows = pipe.peak_state_rows.max(peak);
            }
            Piped {
                result,
                peak_state_rows: pipe.peak_state_rows,
            }
        })
    }
}

impl Pipeline<'_> {
    /// Runs every micro-batch due by `now` and applies the writes completed by then, as a tick
    /// at `now` does. The caller promises that every record appended at or before `now` is in
    /// the topic, and that no more will be. Returns before the runs complete when the groups
    /// run on threads of their own.
    pub(crate) fn run(&mut self, now: i64) {
        let state = self.state;
        let rows = match self.lanes.as_mut() {
            None => {
                state.clock.set(now);
                state.run_streams();
                if self.source >= state.streams.sources.len() {
                    return;
                }
                let topic = state.streams.lock(self.source).topic;
                state.streams.release(&state.streams.topics[topic]);
                state.streams.totals(self.source).state_rows
            }
            Some(lanes) => {
                for feed in &lanes.feeds {
                    // Fails only when the group's thread panicked; the scope raises that.
                    let _ = feed.send(now);
                }
                lanes.fed += 1;
                lanes.take(state, false)
            }
        };
        self.peak_state_rows = self.peak_state_rows.max(rows);
    }
}

impl Lanes<'_> {
    /// Takes the runs every group has handed back, in run order and then group order: journal
    /// entries and offline rows, then the topic lets go of what every group has read. With
    /// `wait`, waits for every run fed. Returns the most keys held after a run taken.
    fn take(&mut self, state: &MockState, wait: bool) -> u64 {
        let mut peak = 0;
        while self.taken < self.fed {
            let next = if wait {
                self.done.recv().ok()
            } else {
                self.done.try_recv().ok()
            };
            let Some((g, done)) = next else {
                break;
            };
            self.ready[g].push_back(done);
            while self.ready.iter().all(|r| !r.is_empty()) {
                let mut rows = 0;
                for (g, ready) in self.ready.iter_mut().enumerate() {
                    let Some(done) = ready.pop_front() else {
                        continue;
                    };
                    rows += done.state_rows;
                    self.offsets[g] = done.offsets;
                    for mut records in done.spent {
                        super::topic::free(&mut records);
                    }
                    // The journal buffer stays here: the group's thread starts a new one.
                    let _ = self
                        .out
                        .take(state, self.config, self.source, self.reader, done.run);
                }
                peak = peak.max(rows);
                self.taken += 1;
                let mut floor = self.topic.end_offsets();
                lower_to_unread(&mut floor, self.offsets.iter().map(|o| &o[..]), self.out);
                self.topic.release_before(&floor);
            }
        }
        peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::duration::SECOND;
    use crate::repo::Repository;
    use bytes::Bytes;
    use proptest::prelude::*;
    use serde_json::{json, Value as Json};
    use std::time::Duration;

    const MS: i64 = 1_000_000;
    const T0: i64 = 1_717_200_000 * SECOND;

    /// A generated record: milliseconds since the previous arrival, how far its event time
    /// trails its arrival, its user, and its transaction id.
    type Spec = (i64, i64, u8, u16);

    fn mock(repo: &Repository, overhead_ms: u64, row_cost_us: u64) -> MockState {
        MockState::new(
            &Config::new(repo.clone())
                .virtual_clock(T0)
                .stream(StreamConfig {
                    batch_overhead: Duration::from_millis(overhead_ms),
                    row_cost: Duration::from_micros(row_cost_us),
                    offline: true,
                    ..StreamConfig::default()
                }),
        )
    }

    /// Appends the records in arrival order and runs the engine once per `chunk` (as the
    /// simulation does), through `run`, then lets every trigger fire.
    fn feed(state: &MockState, records: &[Spec], chunk: i64, mut run: impl FnMut(i64)) {
        let topic = state
            .streams
            .topic("transactions")
            .expect("the demo's topic");
        let (mut arrival, mut next_run, mut due) = (T0, T0, None);
        for &(gap_ms, late_ms, user, id) in records {
            arrival += gap_ms * MS;
            if let Some(at) = due.filter(|&at| arrival > at) {
                run(at);
                due = None;
            }
            let ts = crate::schema::format_rfc3339(arrival - late_ms * MS);
            let record = json!({"user_id": format!("u{user}"), "transaction_id": format!("t{id}"),
                "merchant": "m", "amt": f64::from(id % 7), "is_fraud": 0, "timestamp": ts});
            let payload = Bytes::from(record.to_string());
            let partition = topic.partition_for(&record);
            topic.append(
                partition,
                payload.clone(),
                topic.decode(&payload),
                arrival,
                arrival,
                None,
            );
            if arrival >= next_run {
                due = Some(arrival);
                next_run = arrival + chunk;
            }
        }
        if let Some(at) = due {
            run(at);
        }
    }

    /// What a user sees of a source after a run: progress, journal, summary, offline rows
    /// (without their sequence numbers, which concurrent writers take in any order) and online
    /// entities per view.
    fn seen(state: &MockState) -> Vec<Json> {
        let end = state.clock.now() + 3 * 24 * 3600 * SECOND;
        state.clock.set(end);
        state.run_streams();
        while let Some(next) = state.streams.next_due() {
            state.clock.set(next.max(state.clock.now()));
            state.run_streams();
        }
        let repo = state.repo();
        let topic = state
            .streams
            .topic("transactions")
            .expect("the demo's topic");
        state.streams.release(topic);
        let offline: Vec<Json> = state
            .offline
            .rows(repo.push_sources.len())
            .unwrap_or_default()
            .iter()
            .map(|r| json!([r.ingested_at, r.ts, format!("{:?}", r.values)]))
            .collect();
        let online: Vec<usize> = (0..repo.feature_views.len())
            .map(|v| state.online.len(v))
            .collect();
        vec![
            state.streams.progress(repo, 0, usize::MAX),
            state.streams.journal(repo, 0, usize::MAX),
            state.streams.summary(repo),
            json!(offline),
            json!(online),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The groups on threads of their own, fed while records are appended, leave exactly
        /// what ticks at the same times leave (and so does the in-line fallback).
        #[test]
        fn a_pipeline_leaves_what_ticks_at_the_same_times_leave(
            records in prop::collection::vec(
                (0i64..2_500, prop_oneof![8 => 0i64..1_000, 1 => 0i64..200_000], 0u8..6, 0u16..400),
                1..400,
            ),
            chunk_ms in prop::sample::select(vec![1i64, 700, 5_000, 30_000, 95_000]),
            delay_s in prop::sample::select(vec![0i64, 10, 86_400]),
            overhead_ms in prop::sample::select(vec![0u64, 800]),
            row_cost_us in prop::sample::select(vec![0u64, 3_000]),
            shared_topic in any::<bool>(),
        ) {
            let mut repo = Repository::demo();
            repo.stream_sources[0].watermark_delay_threshold = delay_s * SECOND;
            if shared_topic {
                // A second reader of the topic: the pipeline then runs in line.
                let mut other = repo.stream_sources[0].clone();
                other.name = "transactions_stream_2".to_owned();
                repo.stream_sources.push(other);
            }
            let chunk = chunk_ms * MS;

            let ticked = mock(&repo, overhead_ms, row_cost_us);
            let mut ticked_peak = 0;
            feed(&ticked, &records, chunk, |at| {
                ticked.clock.set(at);
                ticked.run_streams();
                ticked_peak = ticked_peak.max(ticked.streams.totals(0).state_rows);
            });
            let piped = mock(&repo, overhead_ms, row_cost_us);
            let peak = piped.streams.pipelined(&piped, 0, |pipe| {
                feed(&piped, &records, chunk, |at| pipe.run(at));
            }).peak_state_rows;
            piped.clock.set(ticked.clock.now());

            let (want, got) = (seen(&ticked), seen(&piped));
            prop_assert_eq!(peak, ticked_peak, "the most keys held after a run");
            for (w, g) in want.iter().zip(&got) {
                prop_assert_eq!(w, g);
            }
        }
    }
}
