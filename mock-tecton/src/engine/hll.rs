//! HyperLogLog for `approx_count_distinct(precision)`.
//!
//! Tecton's Spark plan hashes each value (SHA-256, first 64 bits), uses the first `p` bits as the
//! register index and the 1-based position of the first 1 in the remaining bits as the register
//! value; the final estimator is a closed-source UDF (Tecton's documentation). The mock keeps the
//! index/register layout but hashes with a small, stable function of its own: FNV-1a over a
//! canonical byte encoding of the [`Value`], then a splitmix64 finalizer so that the high bits
//! (which pick the register) are well mixed. `std`'s `DefaultHasher` is not used because its output
//! may change between Rust releases, and estimates must be reproducible.
//!
//! The estimator is the classic one (Flajolet et al. 2007) with the small-range correction
//! (linear counting while at least one register is empty and the raw estimate is at most
//! `2.5·m`). With a 64-bit hash no large-range correction is needed.
//!
//! Registers start sparse (a sorted list of `(index, rank)` pairs) and switch to a dense byte array
//! once that is no smaller, so a tile holding a handful of values does not cost `2^p` bytes.

use crate::schema::Value;

/// Smallest accepted precision.
pub(crate) const MIN_PRECISION: u8 = 4;
/// Largest accepted precision.
pub(crate) const MAX_PRECISION: u8 = 16;

/// A mergeable HyperLogLog sketch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hll {
    precision: u8,
    registers: Registers,
}

#[derive(Debug, Clone, PartialEq)]
enum Registers {
    /// Sorted by index, one entry per non-zero register: `(index << 8) | rank`.
    Sparse(Vec<u32>),
    /// One byte per register.
    Dense(Vec<u8>),
}

impl Hll {
    /// An empty sketch. `precision` is clamped into `4..=16`, so no input can make it panic.
    pub(crate) fn new(precision: u8) -> Self {
        Hll {
            precision: precision.clamp(MIN_PRECISION, MAX_PRECISION),
            registers: Registers::Sparse(Vec::new()),
        }
    }

    /// The precision `p` in use (number of index bits).
    #[cfg(test)]
    pub(crate) fn precision(&self) -> u8 {
        self.precision
    }

    /// Number of registers, `2^p`.
    fn m(&self) -> usize {
        1usize << self.precision
    }

    /// Adds a value (nulls are the caller's business: they are hashed like any other value).
    pub(crate) fn insert(&mut self, value: &Value) {
        self.insert_hash(hash_value(value));
    }

    /// Adds a precomputed 64-bit hash.
    pub(crate) fn insert_hash(&mut self, hash: u64) {
        let p = u32::from(self.precision);
        let index = (hash >> (64 - p)) as u32;
        // The remaining 64-p bits, moved to the top; an all-zero rest gets the largest rank.
        let rest = hash << p;
        let rank = if rest == 0 {
            64 - p + 1
        } else {
            rest.leading_zeros() + 1
        } as u8;
        self.set_max(index, rank);
    }

    fn set_max(&mut self, index: u32, rank: u8) {
        let m = self.m();
        match &mut self.registers {
            Registers::Dense(d) => {
                let slot = &mut d[index as usize];
                *slot = (*slot).max(rank);
            }
            Registers::Sparse(s) => {
                match s.binary_search_by_key(&index, |e| e >> 8) {
                    Ok(i) => {
                        if (s[i] & 0xff) < u32::from(rank) {
                            s[i] = (index << 8) | u32::from(rank);
                        }
                    }
                    Err(i) => s.insert(i, (index << 8) | u32::from(rank)),
                }
                // 4 bytes per sparse entry: dense is no larger once 4·len ≥ m.
                if s.len() * 4 >= m {
                    self.densify();
                }
            }
        }
    }

    fn densify(&mut self) {
        if let Registers::Sparse(s) = &self.registers {
            let mut d = vec![0u8; self.m()];
            for e in s {
                d[(e >> 8) as usize] = (e & 0xff) as u8;
            }
            self.registers = Registers::Dense(d);
        }
    }

    /// Merges another sketch into this one (register-wise max). Sketches of different precision
    /// cannot be combined; `other` is then ignored (the engine never builds such a pair).
    pub(crate) fn merge(&mut self, other: &Hll) {
        if other.precision != self.precision {
            return;
        }
        match &other.registers {
            Registers::Sparse(s) => {
                for e in s {
                    self.set_max(e >> 8, (e & 0xff) as u8);
                }
            }
            Registers::Dense(od) => {
                self.densify();
                if let Registers::Dense(d) = &mut self.registers {
                    for (a, b) in d.iter_mut().zip(od) {
                        *a = (*a).max(*b);
                    }
                }
            }
        }
    }

    /// The cardinality estimate.
    pub(crate) fn estimate(&self) -> f64 {
        let m = self.m() as f64;
        let (zeros, harmonic) = match &self.registers {
            Registers::Sparse(s) => {
                let zeros = self.m() - s.len();
                let sum: f64 = s.iter().map(|e| inv_pow2((e & 0xff) as u8)).sum();
                (zeros, zeros as f64 + sum)
            }
            Registers::Dense(d) => {
                let zeros = d.iter().filter(|&&r| r == 0).count();
                (zeros, d.iter().map(|&r| inv_pow2(r)).sum())
            }
        };
        let alpha = match self.m() {
            16 => 0.673,
            32 => 0.697,
            64 => 0.709,
            _ => 0.7213 / (1.0 + 1.079 / m),
        };
        let raw = alpha * m * m / harmonic;
        if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        }
    }

    /// The estimate rounded to a whole count, as the feature value.
    pub(crate) fn count(&self) -> i64 {
        // The estimate is finite and at most ~2^64·m, so the saturating cast is exact in practice.
        self.estimate().round() as i64
    }
}

/// `2^-r` for a register value.
fn inv_pow2(r: u8) -> f64 {
    0.5f64.powi(i32::from(r))
}

/// A stable 64-bit hash of a value's canonical encoding (see the module docs).
///
/// The encoding is a type tag followed by the payload, with lengths before variable-size parts,
/// so different values never share an encoding. `Int32` and `Int64` columns both arrive as
/// [`Value::Int`] and therefore hash alike. `-0.0` hashes like `0.0` and every NaN alike.
pub(crate) fn hash_value(value: &Value) -> u64 {
    let mut h = Fnv1a::new();
    encode(value, &mut h);
    splitmix64(h.0)
}

fn encode(value: &Value, h: &mut Fnv1a) {
    match value {
        Value::Null => h.write(&[0]),
        Value::Bool(b) => h.write(&[1, u8::from(*b)]),
        Value::Int(i) => {
            h.write(&[2]);
            h.write(&i.to_le_bytes());
        }
        Value::Float(f) => {
            let canonical = if f.is_nan() {
                f64::NAN
            } else if *f == 0.0 {
                0.0
            } else {
                *f
            };
            h.write(&[3]);
            h.write(&canonical.to_bits().to_le_bytes());
        }
        Value::String(s) => {
            h.write(&[4]);
            h.write(&(s.len() as u64).to_le_bytes());
            h.write(s.as_bytes());
        }
        Value::Timestamp(ns) => {
            h.write(&[5]);
            h.write(&ns.to_le_bytes());
        }
        Value::Array(items) | Value::Struct(items) => {
            h.write(&[if matches!(value, Value::Array(_)) {
                6
            } else {
                7
            }]);
            h.write(&(items.len() as u64).to_le_bytes());
            for item in items {
                encode(item, h);
            }
        }
        Value::Map(entries) => {
            h.write(&[8]);
            h.write(&(entries.len() as u64).to_le_bytes());
            for (k, v) in entries {
                h.write(&(k.len() as u64).to_le_bytes());
                h.write(k.as_bytes());
                encode(v, h);
            }
        }
    }
}

/// 64-bit FNV-1a.
struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// One SplitMix64 step from `z`: a bijective avalanche of the FNV hash.
fn splitmix64(z: u64) -> u64 {
    crate::rng::SplitMix64::new(z).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sketch(p: u8, values: impl IntoIterator<Item = Value>) -> Hll {
        let mut h = Hll::new(p);
        for v in values {
            h.insert(&v);
        }
        h
    }

    #[test]
    fn empty_is_zero_and_one_is_one() {
        for p in MIN_PRECISION..=MAX_PRECISION {
            assert_eq!(Hll::new(p).count(), 0);
            assert_eq!(sketch(p, [Value::Int(42)]).count(), 1, "p={p}");
            assert_eq!(
                sketch(p, [Value::String("a".into()), Value::String("a".into())]).count(),
                1
            );
        }
    }

    #[test]
    fn hash_is_stable_and_canonical() {
        // Pinned (recomputed independently from the FNV-1a and splitmix64 definitions): a change
        // here changes every approx_count_distinct the mock has ever served.
        assert_eq!(hash_value(&Value::Int(0)), hash_value(&Value::Int(0)));
        assert_eq!(
            hash_value(&Value::Float(-0.0)),
            hash_value(&Value::Float(0.0))
        );
        assert_ne!(
            hash_value(&Value::Int(1)),
            hash_value(&Value::String("1".into()))
        );
        assert_ne!(
            hash_value(&Value::Array(vec![Value::String("ab".into())])),
            hash_value(&Value::Array(vec![
                Value::String("a".into()),
                Value::String("b".into())
            ]))
        );
        assert_eq!(hash_value(&Value::String("user_1".into())), PINNED_USER_1);
    }
    const PINNED_USER_1: u64 = 0xd81c_821e_51e4_a680;

    #[test]
    fn precision_is_clamped() {
        assert_eq!(Hll::new(0).precision(), 4);
        assert_eq!(Hll::new(200).precision(), 16);
    }

    #[test]
    fn merge_equals_union_and_ignores_other_precision() {
        let a = sketch(10, (0..3000).map(Value::Int));
        let b = sketch(10, (2000..6000).map(Value::Int));
        let mut ab = a.clone();
        ab.merge(&b);
        assert_eq!(ab, sketch(10, (0..6000).map(Value::Int)));
        let mut c = a.clone();
        c.merge(&sketch(12, [Value::Int(-1)]));
        assert_eq!(c, a);
    }

    #[test]
    fn sparse_and_dense_agree() {
        // 20 values at p=14 stay sparse; forcing dense must not change the estimate.
        let mut s = sketch(14, (0..20).map(Value::Int));
        assert!(matches!(s.registers, Registers::Sparse(_)));
        let before = s.estimate();
        s.densify();
        assert!(matches!(s.registers, Registers::Dense(_)));
        assert_eq!(s.estimate(), before);
        assert_eq!(s.count(), 20);
    }

    /// Allowed error for `n` distinct values: 4 standard errors, plus one count for rounding and
    /// for the odd register collision among a handful of values.
    fn allowed(p: u8, n: usize) -> f64 {
        4.0 * 1.04 / f64::from(1u32 << p).sqrt() * n as f64 + 1.0
    }

    /// `n` distinct values derived from `seed`.
    fn distinct(seed: u64, n: usize, strings: bool) -> impl Iterator<Item = Value> {
        (0..n).map(move |i| {
            // splitmix64 is a bijection, so distinct i give distinct values.
            let k = splitmix64(seed ^ i as u64);
            if strings {
                Value::String(format!("user-{k:x}").into())
            } else {
                Value::Int(k as i64)
            }
        })
    }

    #[test]
    fn error_distribution_matches_theory() {
        // 4 SE is a tail bound, not a guarantee: even an ideal hash exceeds it for ~0.3% of sets
        // at p = 4 (measured over 20 000 sets, same rate as random 64-bit hashes). So check
        // the distribution over many sets instead of every set.
        for p in [4u8, 6, 8, 10, 12, 14] {
            let se = 1.04 / f64::from(1u32 << p).sqrt();
            let sets = 300;
            let (mut outside, mut sq) = (0, 0.0);
            for k in 0..sets {
                let n = 1 + (splitmix64(k) % 5000) as usize;
                let est =
                    sketch(p, distinct(k.wrapping_mul(7919) ^ u64::from(p), n, false)).estimate();
                let err = est - n as f64;
                if err.abs() > allowed(p, n) {
                    outside += 1;
                }
                sq += (err / n as f64).powi(2);
            }
            let rmse = (sq / sets as f64).sqrt();
            assert!(outside <= 3, "p={p}: {outside} of {sets} sets beyond 4 SE");
            assert!(rmse <= 1.3 * se, "p={p}: relative rmse {rmse} vs SE {se}");
        }
    }

    proptest! {
        // A fixed seed: see `error_distribution_matches_theory` for why a random one would make
        // this flaky at p = 4. Every case still checks a fresh set against the bound.
        #![proptest_config(ProptestConfig {
            cases: 400,
            rng_seed: proptest::test_runner::RngSeed::Fixed(20240101),
            ..ProptestConfig::default()
        })]
        /// Within 4 standard errors (1.04/sqrt(2^p)) of the true count, merged in random splits.
        #[test]
        fn estimate_within_four_standard_errors(
            p in MIN_PRECISION..=MAX_PRECISION,
            n in 1usize..5000,
            seed in any::<u64>(),
            strings in any::<bool>(),
            split in 0usize..5000,
        ) {
            let cut = split.min(n);
            let mut h = sketch(p, distinct(seed, n, strings).take(cut));
            h.merge(&sketch(p, distinct(seed, n, strings).skip(cut)));
            let err = (h.estimate() - n as f64).abs();
            prop_assert!(err <= allowed(p, n), "p={} n={} estimate={}", p, n, h.estimate());
        }
    }
}
