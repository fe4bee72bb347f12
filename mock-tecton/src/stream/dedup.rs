//! The deduplication state of one query: which `deduplication_columns` keys it holds.
//!
//! A held key is a 64-bit hash of the row's deduplication columns ([`key`]) with the event time
//! of the row that put it there, in whole milliseconds rounded up; it is let go once that time is
//! at or before the watermark applied at the end of a micro-batch. Under Tecton's default 24 h
//! watermark at 1k records/s a query holds about 86 million keys, so a key costs 13 bytes of
//! table and 2 of time index, and nothing is rewritten to let keys go:
//!
//! - eviction is lazy: a key whose time is at or before the last applied cut-off counts as gone
//!   and is overwritten if its columns come back; the table is swept of such keys when it would
//!   otherwise grow;
//! - a key that is already at or before that cut-off when it arrives still catches duplicates in
//!   its own micro-batch (Spark evicts at the end of the batch), so it is held until then;
//! - `times` counts held keys per millisecond (bucketed by second, two bytes a key), so Spark's
//!   `numRowsTotal` and `numRowsRemoved` stay exact.
//!
//! Two different keys share a hash with probability about n²/2⁶⁵ (1 in 5,000 for 86 million
//! keys), which would drop one record as a false duplicate.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher as _, BuildHasherDefault, Hash, Hasher};

use crate::schema::Value;

use super::watermark::MILLISECOND;

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

/// A held key in the table: its hash and its time (ms after the table's base), packed to 12
/// bytes.
#[derive(Clone, Copy)]
#[repr(C, packed(4))]
struct Held {
    key: u64,
    ms: u32,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.key, other.key);
        a == b
    }
}

impl Eq for Held {}

impl Hash for Held {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let k = self.key;
        state.write_u64(k);
    }
}

/// Keys are hashes already: the table uses them as they are.
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

type KeyTable = HashSet<Held, BuildHasherDefault<KeyHasher>>;

/// Marks a key held only until the end of the running micro-batch.
const DOOMED: u32 = u32::MAX;

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

impl DedupState {
    /// Keys held now.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Makes room for `keys` more keys at once (a simulation knows how many its watermark holds),
    /// so the table does not grow step by step.
    pub(crate) fn reserve(&mut self, keys: usize) {
        self.held.reserve(keys);
    }

    fn live(&self, ms: i64) -> bool {
        self.applied.is_none_or(|a| ms > a)
    }

    /// The time (ms) a held key was stored with, `None` when it is not held.
    fn lookup(&self, key: u64) -> Option<bool> {
        let probe = Held { key, ms: 0 };
        if let Some(h) = self.held.get(&probe) {
            let ms = h.ms;
            return Some(ms == DOOMED || self.base.is_some_and(|b| self.live(b + i64::from(ms))));
        }
        if self.far.is_empty() {
            return None;
        }
        self.far
            .get(&key)
            .map(|&ms| ms == i64::MAX || self.live(ms))
    }

    /// Whether `key` is held (the row is a duplicate); if not, holds it with event time `ts`.
    pub(crate) fn check_and_hold(&mut self, key: u64, ts: i64) -> bool {
        if self.lookup(key) == Some(true) {
            return true;
        }
        let ms = ceil_ms(ts);
        let doomed = self.applied.is_some_and(|a| ms <= a);
        let base = *self.base.get_or_insert(ms - (1 << 31));
        let rel = ms - base;
        if self.held.len() >= self.held.capacity() {
            self.sweep();
        }
        let stored = if doomed {
            Some(DOOMED)
        } else {
            u32::try_from(rel).ok().filter(|&r| r < DOOMED)
        };
        match stored {
            Some(ms) => {
                self.held.replace(Held { key, ms });
                if !self.far.is_empty() {
                    self.far.remove(&key);
                }
            }
            None => {
                self.held.remove(&Held { key, ms: 0 });
                self.far.insert(key, ms);
            }
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

    /// Drops let-go keys from the table; grows it when that frees less than half.
    fn sweep(&mut self) {
        let (base, applied) = (self.base.unwrap_or(0), self.applied);
        let live = |ms: i64| applied.is_none_or(|a| ms > a);
        self.held.retain(|h| {
            let ms = h.ms;
            ms == DOOMED || live(base + i64::from(ms))
        });
        self.far.retain(|_, ms| *ms == i64::MAX || live(*ms));
        let cap = self.held.capacity();
        if self.held.len() >= cap / 2 {
            self.held.reserve(cap.max(16));
        }
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
            let probe = Held { key, ms: 0 };
            if self.held.get(&probe).is_some_and(|h| h.ms == DOOMED) {
                self.held.remove(&probe);
            } else if self.far.get(&key) == Some(&i64::MAX) {
                self.far.remove(&key);
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
