//! The table behind a deduplication state: 64-bit keys with a 32-bit time each, in one flat
//! array with linear probing.
//!
//! A general hash set (hashbrown) reads two places per probe, its control bytes and its slot,
//! and hides where they are. Under Tecton's default 24 h watermark at 1k records/s a query holds
//! about 86 million keys, so every probe misses the cache; here a key and its time share one
//! 12-byte slot, a probe reads one or two neighbouring cache lines, and a caller that knows the
//! keys ahead can start those reads early ([`KeyTable::touch`]) so that the misses of a
//! micro-batch overlap instead of queueing.
//!
//! Nothing is removed in place: a slot whose time says "let go" is dead, skipped by lookups and
//! reused by inserts, and the table is rebuilt without dead slots when it fills
//! ([`KeyTable::rebuild`]).

/// One slot: a key (0 = empty) and the time it was held with, packed to 12 bytes.
#[derive(Clone, Copy, Default)]
#[repr(C, packed(4))]
struct Slot {
    key: u64,
    ms: u32,
}

/// Slots in use (held or dead) above which the table is rebuilt: at 70%, a probe for a key
/// that is not there reads about six slots (72 bytes) on average.
const MAX_LOAD: f64 = 0.7;

/// Where a key is, or where it would go.
pub(super) enum Probe {
    /// The key's slot (live or dead); its time.
    Found(usize, u32),
    /// Not in the table: the first dead or empty slot on its probe path.
    Vacant(usize),
}

/// Keys with a time each; see the module docs.
#[derive(Clone, Default)]
pub(super) struct KeyTable {
    slots: Vec<Slot>,
    /// Slots not empty (live or dead).
    used: usize,
    /// The capacity never shrinks below this ([`KeyTable::reserve`]).
    floor: usize,
}

impl KeyTable {
    /// The key stored for `key`: 0 marks an empty slot, so a key of 0 is stored as 1 (two keys
    /// of a 64-bit hash meet there with probability 2⁻⁶⁴).
    fn stored(key: u64) -> u64 {
        key.max(1)
    }

    /// The first slot of `key`'s probe path: the key's high bits scaled to the capacity, so the
    /// capacity need not be a power of two.
    fn home(&self, key: u64) -> usize {
        ((u128::from(key) * self.slots.len() as u128) >> 64) as usize
    }

    /// Slots in use (held or dead).
    pub(super) fn used(&self) -> usize {
        self.used
    }

    /// Whether `extra` more keys fit without a rebuild.
    pub(super) fn fits(&self, extra: usize) -> bool {
        ((self.used + extra) as f64) <= self.slots.len() as f64 * MAX_LOAD
    }

    /// Reads the first slot of `key`'s probe path and the one a cache line further, so that a
    /// later [`KeyTable::probe`] of it finds them in the cache. Returns what it read, for the
    /// caller to fold into a value it keeps (a read whose result is unused may be dropped).
    pub(super) fn touch(&self, key: u64) -> u64 {
        if self.slots.is_empty() {
            return 0;
        }
        let home = self.home(Self::stored(key));
        let next = (home + 5) % self.slots.len();
        self.slots[home].key ^ self.slots[next].key
    }

    /// Finds `key`, or the slot it would be stored in: the first slot on its path that is empty
    /// or whose time `dead` says is let go. The table must not be full ([`KeyTable::fits`]).
    pub(super) fn probe(&self, key: u64, dead: impl Fn(u32) -> bool) -> Probe {
        let key = Self::stored(key);
        let n = self.slots.len();
        if n == 0 {
            return Probe::Vacant(0);
        }
        let mut i = self.home(key);
        let mut reuse = None;
        loop {
            let slot = self.slots[i];
            let (k, ms) = (slot.key, slot.ms);
            if k == key {
                return Probe::Found(i, ms);
            }
            if k == 0 {
                return Probe::Vacant(reuse.unwrap_or(i));
            }
            if reuse.is_none() && dead(ms) {
                reuse = Some(i);
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }

    /// The time stored with `key`, if it is in the table (live or dead).
    #[cfg(test)]
    pub(super) fn get(&self, key: u64) -> Option<u32> {
        match self.probe(key, |_| false) {
            Probe::Found(_, ms) => Some(ms),
            Probe::Vacant(_) => None,
        }
    }

    /// Stores `key` with `ms` in slot `i`, as found by [`KeyTable::probe`].
    pub(super) fn put(&mut self, i: usize, key: u64, ms: u32) {
        let slot = &mut self.slots[i];
        if slot.key == 0 {
            self.used += 1;
        }
        *slot = Slot {
            key: Self::stored(key),
            ms,
        };
    }

    /// Sets the time of the key in slot `i`.
    pub(super) fn set(&mut self, i: usize, ms: u32) {
        self.slots[i].ms = ms;
    }

    /// Makes room for `keys` keys in all without a rebuild, and keeps at least that room.
    pub(super) fn reserve(&mut self, keys: usize, dead: impl Fn(u32) -> bool) {
        self.floor = self.floor.max((keys as f64 / MAX_LOAD).ceil() as usize + 1);
        if self.slots.len() < self.floor {
            self.rebuild(0, dead);
        }
    }

    /// Copies the live keys into a new array with room for `extra` more (at least twice the
    /// live keys, so rebuilds stay rare) and drops the dead ones.
    pub(super) fn rebuild(&mut self, extra: usize, dead: impl Fn(u32) -> bool) {
        let live: Vec<Slot> = self
            .slots
            .iter()
            .copied()
            .filter(|s| s.key != 0 && !dead(s.ms))
            .collect();
        let wanted = ((2 * live.len() + extra) as f64 / MAX_LOAD).ceil() as usize;
        let capacity = wanted.max(self.floor).max(16);
        self.slots = Vec::new();
        self.slots = vec![Slot::default(); capacity];
        self.used = 0;
        for s in live {
            let Probe::Vacant(i) = self.probe(s.key, |_| false) else {
                continue;
            };
            self.put(i, s.key, s.ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(t: &mut KeyTable, key: u64, ms: u32, dead: impl Fn(u32) -> bool + Copy) {
        if !t.fits(1) {
            t.rebuild(1, dead);
        }
        match t.probe(key, dead) {
            Probe::Found(i, _) => t.set(i, ms),
            Probe::Vacant(i) => t.put(i, key, ms),
        }
    }

    #[test]
    fn keys_are_found_through_growth_and_dead_slots_are_reused() {
        let key = |k: u64| k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let ms = |k: u64| u32::try_from(k).unwrap_or(u32::MAX);
        let mut t = KeyTable::default();
        for k in 0..10_000 {
            insert(&mut t, key(k), ms(k), |_| false);
        }
        for k in 0..10_000 {
            assert_eq!(t.get(key(k)), Some(ms(k)), "key {k}");
        }
        assert_eq!(t.get(key(10_000)), None);
        // Every key so far is let go; as many new ones take dead slots or a rebuild drops the
        // dead, so the table does not grow.
        let capacity = t.slots.len();
        let dead = |m: u32| m < 10_000;
        for k in 10_000..20_000 {
            insert(&mut t, key(k), ms(k), dead);
        }
        assert!(t.slots.len() <= capacity, "{} > {capacity}", t.slots.len());
        for k in 10_000..20_000 {
            assert_eq!(t.get(key(k)), Some(ms(k)), "key {k}");
        }
    }

    #[test]
    fn a_key_of_zero_is_stored() {
        let mut t = KeyTable::default();
        insert(&mut t, 0, 7, |_| false);
        assert_eq!(t.get(0), Some(7));
    }
}
