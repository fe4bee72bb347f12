//! In-process ingest: applying already validated events to the stores, without HTTP or JSON.
//!
//! A simulation (a micro-batch engine, a replay of a day of traffic) produces events faster than
//! any server can parse requests. [`Applier`] writes them exactly as an acknowledged
//! `POST /ingest` would (same sequence numbers, online views, offline log, feature start time,
//! eviction), minus what belongs to the HTTP exchange: no journal entry, no authentication, no
//! TTL refusal (an event the TTL or every window no longer serves is logged offline and not
//! kept online, like a backfill).
//!
//! ```
//! use mock_tecton::ingest::Event;
//! use mock_tecton::schema::Value;
//! use mock_tecton::{state::MockState, Config};
//!
//! let state = MockState::new(&Config::default().virtual_clock(1_717_200_000_000_000_000));
//! let applier = state.applier("transactions").expect("the demo's push source");
//! let event = Event::new(vec![
//!     Value::String("u1".into()),          // user_id
//!     Value::String("t1".into()),          // transaction_id
//!     Value::String("m1".into()),          // merchant
//!     Value::Float(12.5),                  // amt
//!     Value::Int(0),                       // is_fraud
//!     Value::Timestamp(1_717_199_000_000_000_000), // timestamp
//! ]);
//! let applied = applier.apply(vec![event]);
//! assert_eq!(applied.events, 1);
//! assert_eq!(state.offline().rows(0).map(|rows| rows.len()).ok(), Some(1));
//! ```

use super::{write, IngestContext};
use crate::schema::Value;
use crate::state::MockState;

/// The journal sequence number recorded on offline rows written without an exchange.
pub const NO_REQUEST: u64 = u64::MAX;

/// One validated record of a push source: its values in the order of the source schema's
/// fields, as [`crate::schema::validate_record`] returns them. The event time is the value of
/// the source's timestamp field.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Field values in schema order.
    pub values: Vec<Value>,
}

impl Event {
    /// An event from values in schema order.
    pub fn new(values: Vec<Value>) -> Self {
        Event { values }
    }
}

/// What one [`Applier::apply`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Events written (each took a record sequence number and reached the offline log, when
    /// the source logs offline, and every subscribed online view).
    pub events: usize,
    /// Events refused because they do not fit the schema's shape: a different number of
    /// values, or no timestamp in the timestamp field. Nothing of them was written.
    pub skipped: usize,
}

impl std::ops::AddAssign for Applied {
    fn add_assign(&mut self, other: Applied) {
        self.events += other.events;
        self.skipped += other.skipped;
    }
}

/// A push source that is not in the repository.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("push source `{0}` is not in the repository")]
pub struct UnknownSource(pub String);

/// Writes validated events of one push source to a mock's stores. Cheap to create; resolve it
/// once per source and reuse it for every batch.
#[derive(Debug, Clone, Copy)]
pub struct Applier<'a> {
    state: &'a MockState,
    source: usize,
    timestamp: usize,
    fields: usize,
}

impl<'a> Applier<'a> {
    /// The applier of push source `source` of `state`.
    pub fn new(state: &'a MockState, source: &str) -> Result<Self, UnknownSource> {
        let index = state
            .plan
            .source_index(source)
            .ok_or_else(|| UnknownSource(source.to_owned()))?;
        Ok(Applier {
            state,
            source: index,
            timestamp: state.plan.timestamp_index(index),
            fields: state.repo.push_sources[index].schema.fields.len(),
        })
    }

    /// The push source's index in the repository (as the offline log numbers sources).
    pub fn source(&self) -> usize {
        self.source
    }

    /// Applies `events` in order at the mock clock's current time (read once per call), as
    /// one acknowledged ingest request each would. Malformed events are skipped and counted.
    pub fn apply(&self, events: impl IntoIterator<Item = Event>) -> Applied {
        let ctx = IngestContext {
            check_ttl: false,
            ..self.state.ingest_context(NO_REQUEST)
        };
        let mut applied = Applied::default();
        for Event { values } in events {
            let ts = match values.get(self.timestamp) {
                Some(Value::Timestamp(ts)) if values.len() == self.fields => *ts,
                _ => {
                    applied.skipped += 1;
                    continue;
                }
            };
            write(&ctx, self.source, ts, values, None);
            applied.events += 1;
        }
        applied
    }
}

impl MockState {
    /// The [`Applier`] of a push source: the in-process ingest path for simulations.
    pub fn applier(&self, source: &str) -> Result<Applier<'_>, UnknownSource> {
        Applier::new(self, source)
    }

    /// Applies validated events to push source `source` (see [`Applier::apply`]).
    pub fn apply_events(
        &self,
        source: &str,
        events: impl IntoIterator<Item = Event>,
    ) -> Result<Applied, UnknownSource> {
        Ok(self.applier(source)?.apply(events))
    }
}
