//! The deduplication state of one query: which `deduplication_columns` keys it holds.
//!
//! A held key is a 64-bit hash of the row's deduplication columns ([`key`]) with the event time
//! of the row that put it there, in whole milliseconds rounded up; it is let go once that time is
//! at or before the watermark applied at the end of a micro-batch. Under Tecton's default 24 h
//! watermark at 1k records/s a query holds about 86 million keys, so a key costs 12 bytes of
//! table (in a table at most 70% full, [`table`]) and 2 of time index, every probe misses the
//! cache (a micro-batch's probes are started ahead, [`DedupState::check_and_hold_all`]), and
//! nothing is rewritten to let keys go:
//!
//! - eviction is lazy: a key whose time is at or before the last applied cut-off counts as gone
//!   and its slot is reused; the table is rebuilt without such keys when it fills;
//! - a key that is already at or before that cut-off when it arrives still catches duplicates in
//!   its own micro-batch (Spark evicts at the end of the batch), so it is held until then;
//! - `times` counts held keys per millisecond (bucketed by second, two bytes a key), so Spark's
//!   `numRowsTotal` and `numRowsRemoved` stay exact.
//!
//! Two different keys share a hash with probability about n²/2⁶⁵ (1 in 5,000 for 86 million
//! keys), which would drop one record as a false duplicate.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher as _, BuildHasherDefault, Hasher};

use crate::schema::Value;

use super::watermark::MILLISECOND;

mod table;

use table::{KeyTable, Probe};

/// The deduplication key of a row: a 64-bit hash of its deduplication columns, the same in every
/// run.
pub(crate) fn key(columns: &[usize], values: &[Value]) -> u64 {
    let mut h = foldhash::quality::FixedState::with_seed(0x7465_6374_6f6e_2d73).build_hasher();
    for &c in columns {
        match &values[c] {
            Value::String(s) => {
                h.write_u8(1);
                h.write(s.as_bytes());
            }
            Value::Int(i) => {
                h.write_u8(2);
                h.write_i64(*i);
            }
            other => {
                h.write_u8(3);
                h.write(other.to_plain_json().to_string().as_bytes());
            }
        }
        h.write_u8(0xff);
    }
    h.finish()
}

/// Keys are hashes already: a map keyed by them uses them as they are.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, k: u64) {
        self.0 = k;
    }
}

/// Marks a key held only until the end of the running micro-batch.
const DOOMED: u32 = u32::MAX;

/// Marks a key let go before its time would say so (a doomed key at the end of its batch, or a
/// key moved to `far`).
const LET_GO: u32 = u32::MAX - 1;

/// Keys whose table reads [`DedupState::check_and_hold_all`] starts together: as many cache
/// misses as a core keeps in flight, fewer than its reorder window holds.
const TOUCHED: usize = 16;

/// One query's held deduplication keys.
#[derive(Clone, Default)]
pub(crate) struct DedupState {
    held: KeyTable,
    /// Keys whose time does not fit the table's 32-bit range around `base` (rare: events weeks
    /// away from the first one), with their time in ms; `i64::MAX` when doomed.
    far: HashMap<u64, i64, BuildHasherDefault<KeyHasher>>,
    /// Millisecond that `ms` 0 stands for; set by the first key.
    base: Option<i64>,
    /// Held keys per time: second → milliseconds within it, one entry per key.
    times: BTreeMap<i64, Vec<u16>>,
    /// Keys held (exact: lazily let-go keys are not counted).
    len: usize,
    /// The cut-off (ms) applied at the end of the last micro-batch.
    applied: Option<i64>,
    /// Keys to let go at the end of the running micro-batch.
    doomed: Vec<u64>,
}

impl std::fmt::Debug for DedupState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedupState")
            .field("len", &self.len)
            .field("applied", &self.applied)
            .finish_non_exhaustive()
    }
}

/// Event time in whole milliseconds, rounded up: `ts <= cut` iff `ceil_ms(ts) <= cut / 1 ms` for a
/// cut-off in whole milliseconds.
fn ceil_ms(ts: i64) -> i64 {
    -(-ts).div_euclid(MILLISECOND)
}

/// Whether a table time stands for a key still held, given the table's base and the last
/// applied cut-off.
fn holds(ms: u32, base: Option<i64>, applied: Option<i64>) -> bool {
    ms == DOOMED
        || (ms != LET_GO && base.is_some_and(|b| applied.is_none_or(|a| b + i64::from(ms) > a)))
}

impl DedupState {
    /// Keys held now.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Makes room for `keys` more keys at once (a simulation knows how many its watermark holds),
    /// so the table does not grow step by step.
    pub(crate) fn reserve(&mut self, keys: usize) {
        let (base, applied) = (self.base, self.applied);
        let extra = self.held.used() + keys;
        self.held.reserve(extra, |ms| !holds(ms, base, applied));
    }

    /// Whether `key` is held (the row is a duplicate); if not, holds it with event time `ts`.
    pub(crate) fn check_and_hold(&mut self, key: u64, ts: i64) -> bool {
        let (base, applied) = (self.base, self.applied);
        if !self.held.fits(1) {
            // Dead keys leave; the table grows when that frees less than half.
            self.held.rebuild(1, |ms| !holds(ms, base, applied));
        }
        let probe = self.held.probe(key, |ms| !holds(ms, base, applied));
        let live_far = |far: &HashMap<u64, i64, _>| {
            far.get(&key)
                .is_some_and(|&ms| ms == i64::MAX || applied.is_none_or(|a| ms > a))
        };
        if let Probe::Found(_, ms) = probe {
            if holds(ms, base, applied) {
                return true;
            }
        }
        if !self.far.is_empty() && live_far(&self.far) {
            return true;
        }
        let ms = ceil_ms(ts);
        let doomed = applied.is_some_and(|a| ms <= a);
        let base = *self.base.get_or_insert(ms - (1 << 31));
        let stored = if doomed {
            Some(DOOMED)
        } else {
            u32::try_from(ms - base).ok().filter(|&r| r < LET_GO)
        };
        match (stored, probe) {
            (Some(t), Probe::Found(i, _)) => self.held.set(i, t),
            (Some(t), Probe::Vacant(i)) => self.held.put(i, key, t),
            (None, found) => {
                if let Probe::Found(i, _) = found {
                    self.held.set(i, LET_GO);
                }
                self.far.insert(key, ms);
            }
        }
        if stored.is_some() && !self.far.is_empty() {
            self.far.remove(&key);
        }
        if doomed {
            self.doomed.push(key);
        }
        self.times
            .entry(ms.div_euclid(1_000))
            .or_default()
            .push(u16::try_from(ms.rem_euclid(1_000)).unwrap_or(0));
        self.len += 1;
        false
    }

    /// [`DedupState::check_and_hold`] for each `(key, ts)` in order, each decision in
    /// `duplicates`. Keys are taken [`TOUCHED`] at a time: the table reads of all of them are
    /// started together, so their cache misses overlap, and then they are decided in order.
    pub(crate) fn check_and_hold_all(&mut self, keys: &[(u64, i64)], duplicates: &mut Vec<bool>) {
        duplicates.clear();
        duplicates.reserve(keys.len());
        let mut touched = 0u64;
        for chunk in keys.chunks(TOUCHED) {
            for &(key, _) in chunk {
                touched ^= self.held.touch(key);
            }
            for &(key, ts) in chunk {
                duplicates.push(self.check_and_hold(key, ts));
            }
        }
        std::hint::black_box(touched);
    }

    /// Ends a micro-batch: lets go of every key whose time is at or before `cutoff` (ns, whole
    /// milliseconds) and returns how many.
    pub(crate) fn evict(&mut self, cutoff: i64) -> u64 {
        let cut = cutoff.div_euclid(MILLISECOND);
        let mut removed = 0u64;
        while let Some(mut entry) = self.times.first_entry() {
            let second = *entry.key() * 1_000;
            if second + 999 <= cut {
                removed += entry.remove().len() as u64;
                continue;
            }
            if second <= cut {
                let bucket = entry.get_mut();
                let before = bucket.len();
                bucket.retain(|&m| second + i64::from(m) > cut);
                removed += (before - bucket.len()) as u64;
            }
            break;
        }
        self.len -= usize::try_from(removed).unwrap_or(0).min(self.len);
        self.applied = Some(self.applied.map_or(cut, |a| a.max(cut)));
        for key in std::mem::take(&mut self.doomed) {
            match self.held.probe(key, |_| false) {
                Probe::Found(i, DOOMED) => self.held.set(i, LET_GO),
                _ if self.far.get(&key) == Some(&i64::MAX) => {
                    self.far.remove(&key);
                }
                _ => {}
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: i64 = crate::duration::SECOND;

    #[test]
    fn a_key_is_held_until_the_cutoff_passes_its_time() {
        let mut d = DedupState::default();
        assert!(!d.check_and_hold(1, 10 * S));
        assert!(d.check_and_hold(1, 50 * S), "held: a duplicate");
        assert_eq!(d.evict(10 * S - MILLISECOND), 0, "just before its time");
        assert!(d.check_and_hold(1, 11 * S));
        assert_eq!(d.evict(10 * S), 1, "at its time");
        assert_eq!(d.len(), 0);
        assert!(!d.check_and_hold(1, 60 * S), "let go: held again");
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn times_round_up_to_whole_milliseconds() {
        let mut d = DedupState::default();
        d.check_and_hold(1, 10 * S + 1);
        assert_eq!(d.evict(10 * S), 0, "10 s + 1 ns is after a 10 s cut-off");
        assert!(d.check_and_hold(1, 0));
        assert_eq!(d.evict(10 * S + MILLISECOND), 1);
    }

    #[test]
    fn a_key_older_than_the_cutoff_still_catches_duplicates_in_its_batch() {
        let mut d = DedupState::default();
        d.check_and_hold(1, 100 * S);
        d.evict(50 * S);
        assert!(!d.check_and_hold(2, 10 * S));
        assert!(d.check_and_hold(2, 10 * S), "same micro-batch");
        assert_eq!(d.evict(50 * S), 1);
        assert!(!d.check_and_hold(2, 10 * S), "let go with its batch");
    }

    #[test]
    fn far_times_and_sweeps_keep_the_same_answers() {
        let mut d = DedupState::default();
        let day = 86_400 * S;
        d.check_and_hold(7, 1000 * day);
        assert!(!d.check_and_hold(8, 10 * day), "far before the base");
        assert!(d.check_and_hold(8, 0));
        // Enough keys to grow and sweep the table several times; half are let go on the way.
        for k in 100..5_000u64 {
            assert!(!d.check_and_hold(k, 1000 * day + i64::try_from(k).unwrap_or(0) * S));
            if k % 500 == 0 {
                d.evict(1000 * day + i64::try_from(k).unwrap_or(0) * S / 2);
            }
        }
        assert!(d.check_and_hold(4_999, 0));
        assert!(!d.check_and_hold(100, 0), "let go long ago");
        assert!(
            !d.check_and_hold(8, 0),
            "the far key was let go by the first cut-off"
        );
    }

    /// What a deduplication state must answer, kept the plain way: every key with its time,
    /// nothing lazy, no table.
    #[derive(Default)]
    struct Model {
        keys: HashMap<u64, (i64, bool)>,
        times: Vec<i64>,
        applied: Option<i64>,
    }

    impl Model {
        fn check_and_hold(&mut self, key: u64, ts: i64) -> bool {
            let applied = self.applied;
            if let Some(&(ms, doomed)) = self.keys.get(&key) {
                if doomed || applied.is_none_or(|a| ms > a) {
                    return true;
                }
            }
            let ms = ceil_ms(ts);
            self.keys
                .insert(key, (ms, applied.is_some_and(|a| ms <= a)));
            self.times.push(ms);
            false
        }

        fn evict(&mut self, cutoff: i64) -> u64 {
            let cut = cutoff.div_euclid(MILLISECOND);
            let before = self.times.len();
            self.times.retain(|&t| t > cut);
            self.applied = Some(self.applied.map_or(cut, |a| a.max(cut)));
            for (_, doomed) in self.keys.values_mut() {
                *doomed = false;
            }
            (before - self.times.len()) as u64
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Check(u64, i64),
        CheckAll(Vec<(u64, i64)>),
        Evict(i64),
        Reserve(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let day = 86_400 * S;
        // Few keys, so duplicates and let-go keys coming back are common (from 2: the table
        // stores key 0 as 1); now and then a time far from the rest.
        let time = prop_oneof![
            8 => 0..120 * S,
            1 => (-3_000 * day)..(3_000 * day),
        ];
        let check = (2..66u64, time);
        prop_oneof![
            6 => check.clone().prop_map(|(k, t)| Op::Check(k, t)),
            2 => proptest::collection::vec(check, 0..40).prop_map(Op::CheckAll),
            2 => (0..130 * S).prop_map(Op::Evict),
            1 => (0..200usize).prop_map(Op::Reserve),
        ]
    }

    proptest! {
        #[test]
        fn answers_as_the_plain_model_does(ops in proptest::collection::vec(op(), 1..300)) {
            let mut state = DedupState::default();
            let mut model = Model::default();
            let mut duplicates = Vec::new();
            for (n, op) in ops.iter().enumerate() {
                match op {
                    Op::Check(k, t) => prop_assert_eq!(
                        state.check_and_hold(*k, *t),
                        model.check_and_hold(*k, *t),
                        "op {}: {:?}", n, op
                    ),
                    Op::CheckAll(keys) => {
                        state.check_and_hold_all(keys, &mut duplicates);
                        let expected: Vec<bool> =
                            keys.iter().map(|&(k, t)| model.check_and_hold(k, t)).collect();
                        prop_assert_eq!(&duplicates, &expected, "op {}", n);
                    }
                    Op::Evict(c) => {
                        prop_assert_eq!(state.evict(*c), model.evict(*c), "op {}", n);
                    }
                    Op::Reserve(k) => state.reserve(*k),
                }
                prop_assert_eq!(state.len(), model.times.len(), "op {}", n);
            }
        }
    }
}
