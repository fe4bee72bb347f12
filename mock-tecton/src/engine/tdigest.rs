//! A merging t-digest (Dunning & Ertl) for `approx_percentile(q, precision)`.
//!
//! Tecton's tiles store "t-digest means and weights" and finish with a closed-source UDF
//! (Tecton's documentation), documented as "not fully deterministic". The mock's digest is fully
//! deterministic: the same inputs in the same order give the same digest, and compressions sort
//! with a total order. The compression δ is the function's precision (20..=500, clamped).
//!
//! Centroid sizes follow the `k1` scale function `k(q) = δ/(2π)·asin(2q−1)`: a centroid may span
//! at most one unit of `k`, which keeps centroids small near the tails, where quantiles are most
//! sensitive. Points are buffered and folded in by a sort-and-sweep pass when the buffer fills or
//! another digest is merged. NaN and ±Inf inputs are ignored, as Tecton documents.
//!
//! Accuracy: on continuous data the answer's rank is within about `3/δ` of `q` (tested against
//! `4/δ`). On data with many ties a centroid can blend two neighbouring values, so an answer may
//! fall between them (e.g. 4.0003 for integer data); the extremes and runs of one value stay exact.

use std::f64::consts::PI;

/// Smallest accepted compression.
pub(crate) const MIN_COMPRESSION: u32 = 20;
/// Largest accepted compression.
pub(crate) const MAX_COMPRESSION: u32 = 500;

/// One centroid: the mean of `weight` points.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Centroid {
    mean: f64,
    weight: f64,
}

/// A mergeable t-digest.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TDigest {
    compression: f64,
    /// Compressed centroids, sorted by mean.
    centroids: Vec<Centroid>,
    /// Points and centroids not yet folded in.
    buffer: Vec<Centroid>,
    /// Total weight of `centroids` and `buffer`.
    total: f64,
    /// Exact extremes, so that q = 0 and q = 1 are exact.
    min: f64,
    max: f64,
}

impl TDigest {
    /// An empty digest with compression `precision`, clamped into `20..=500`.
    pub(crate) fn new(precision: u32) -> Self {
        TDigest {
            compression: f64::from(precision.clamp(MIN_COMPRESSION, MAX_COMPRESSION)),
            centroids: Vec::new(),
            buffer: Vec::new(),
            total: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// Number of points added (NaN and ±Inf excluded).
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        // Weights are whole counts well below 2^53, so the conversion is exact.
        self.total as u64
    }

    /// True when no finite point was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.total == 0.0
    }

    fn buffer_limit(&self) -> usize {
        // Five buffered points per unit of compression amortises the sort well.
        5 * self.compression as usize
    }

    /// Adds one point; NaN and ±Inf are ignored.
    pub(crate) fn insert(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.push(Centroid {
            mean: x,
            weight: 1.0,
        });
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    fn push(&mut self, c: Centroid) {
        self.buffer.push(c);
        self.total += c.weight;
        if self.buffer.len() >= self.buffer_limit() {
            self.compress();
        }
    }

    /// Folds `other` into this digest.
    pub(crate) fn merge(&mut self, other: &TDigest) {
        if other.is_empty() {
            return;
        }
        for c in other.centroids.iter().chain(&other.buffer) {
            self.push(*c);
        }
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Folds the buffer into the centroids.
    fn compress(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let mut all = std::mem::take(&mut self.centroids);
        all.append(&mut self.buffer);
        self.centroids = compress_sorted(all, self.compression, self.total);
    }

    /// The value at quantile `q` (clamped into `[0, 1]`; NaN reads as 0), or `None` when empty.
    ///
    /// The quantile function is piecewise linear through `(0, min)`, each centroid's mean at the
    /// rank of its centre, and `(total, max)`.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        if self.is_empty() {
            return None;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        let compressed;
        let centroids = if self.buffer.is_empty() {
            &self.centroids
        } else {
            let mut all = self.centroids.clone();
            all.extend_from_slice(&self.buffer);
            compressed = compress_sorted(all, self.compression, self.total);
            &compressed
        };
        let rank = q * self.total;
        let (mut prev_rank, mut prev_value) = (0.0, self.min);
        let mut seen = 0.0;
        for c in centroids {
            let centre = seen + c.weight / 2.0;
            if rank < centre {
                return Some(interpolate(prev_rank, prev_value, centre, c.mean, rank));
            }
            (prev_rank, prev_value) = (centre, c.mean);
            seen += c.weight;
        }
        Some(interpolate(
            prev_rank, prev_value, self.total, self.max, rank,
        ))
    }
}

/// Linear interpolation at `x` between `(x0, y0)` and `(x1, y1)`, kept inside `[y0, y1]`.
fn interpolate(x0: f64, y0: f64, x1: f64, y1: f64, x: f64) -> f64 {
    if x1 <= x0 {
        return y1;
    }
    if y0 == y1 {
        // Ties (discrete data) must give back the exact value, not 7.000000000000001.
        return y0;
    }
    let f = ((x - x0) / (x1 - x0)).clamp(0.0, 1.0);
    // A convex combination cannot overflow for huge values; the clamp removes rounding that
    // would step outside [y0, y1].
    (y0 * (1.0 - f) + y1 * f).clamp(y0.min(y1), y0.max(y1))
}

/// The `k1` scale function and its inverse, for compression `d`.
fn k(q: f64, d: f64) -> f64 {
    d / (2.0 * PI) * (2.0 * q - 1.0).clamp(-1.0, 1.0).asin()
}

fn k_inv(k: f64, d: f64) -> f64 {
    ((k * 2.0 * PI / d).sin() + 1.0) / 2.0
}

/// Sorts `all` and sweeps it into centroids that each span at most one unit of `k`.
fn compress_sorted(mut all: Vec<Centroid>, d: f64, total: f64) -> Vec<Centroid> {
    all.sort_by(|a, b| {
        a.mean
            .total_cmp(&b.mean)
            .then(a.weight.total_cmp(&b.weight))
    });
    let mut out: Vec<Centroid> = Vec::with_capacity(d as usize);
    let mut iter = all.into_iter();
    let Some(mut cur) = iter.next() else {
        return out;
    };
    let k_max = d / 4.0; // k(1)
    let limit_after = |done: f64| {
        let next = k(done / total, d) + 1.0;
        if next >= k_max {
            total
        } else {
            k_inv(next, d) * total
        }
    };
    let mut done = 0.0; // weight of the centroids already emitted
    let mut limit = limit_after(done);
    for c in iter {
        if done + cur.weight + c.weight <= limit {
            let w = cur.weight + c.weight;
            cur.mean += (c.mean - cur.mean) * c.weight / w;
            cur.weight = w;
        } else {
            done += cur.weight;
            out.push(cur);
            limit = limit_after(done);
            cur = c;
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Where `v` falls among the sorted data, as a fraction range `[below, at_or_below]`.
    fn rank_range(sorted: &[f64], v: f64) -> (f64, f64) {
        let n = sorted.len() as f64;
        let below = sorted.partition_point(|&x| x < v) as f64;
        let at_or_below = sorted.partition_point(|&x| x <= v) as f64;
        (below / n, at_or_below / n)
    }

    fn rank_error(sorted: &[f64], v: f64, q: f64) -> f64 {
        let (lo, hi) = rank_range(sorted, v);
        if q < lo {
            lo - q
        } else if q > hi {
            q - hi
        } else {
            0.0
        }
    }

    #[test]
    fn empty_and_single() {
        let mut d = TDigest::new(100);
        assert_eq!(d.quantile(0.5), None);
        d.insert(f64::NAN);
        d.insert(f64::INFINITY);
        d.insert(f64::NEG_INFINITY);
        assert_eq!(d.quantile(0.5), None);
        d.insert(7.5);
        for q in [0.0, 0.3, 1.0, f64::NAN, -3.0, 9.0] {
            assert_eq!(d.quantile(q), Some(7.5));
        }
        assert_eq!(d.count(), 1);
    }

    #[test]
    fn small_sets_are_exact_at_the_ends_and_median() {
        let mut d = TDigest::new(100);
        for x in [4.0, 1.0, 3.0, 2.0] {
            d.insert(x);
        }
        assert_eq!(d.quantile(0.0), Some(1.0));
        assert_eq!(d.quantile(1.0), Some(4.0));
        assert_eq!(d.quantile(0.5), Some(2.5));
        assert_eq!(d.quantile(0.25), Some(1.5));
    }

    #[test]
    fn large_uniform_is_accurate_and_compact() {
        let mut d = TDigest::new(100);
        for i in 0..100_000u32 {
            // A scrambled order of 0..100000.
            d.insert(f64::from((i * 7919) % 100_000));
        }
        d.compress();
        assert!(d.centroids.len() <= 100, "{} centroids", d.centroids.len());
        for q in [0.001, 0.01, 0.25, 0.5, 0.75, 0.99, 0.999] {
            let v = d.quantile(q).unwrap();
            assert!((v / 100_000.0 - q).abs() < 0.005, "q={q} v={v}");
        }
    }

    #[test]
    fn discrete_data_stays_in_range() {
        let mut d = TDigest::new(100);
        for i in 0..10_000u32 {
            d.insert(f64::from(i % 10));
        }
        assert_eq!(d.quantile(0.0), Some(0.0));
        assert_eq!(d.quantile(1.0), Some(9.0));
        // Deep inside a run of 4s (ranks 0.4..0.5) the answer is exactly 4.
        assert_eq!(d.quantile(0.45), Some(4.0));
        let median = d.quantile(0.5).unwrap();
        assert!((4.0..=5.0).contains(&median), "{median}");
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let mut d = TDigest::new(20);
        for x in [f64::MAX, -f64::MAX, f64::MAX, 0.0] {
            d.insert(x);
        }
        let v = d.quantile(0.9).unwrap();
        assert!(v.is_finite());
        assert_eq!(d.quantile(1.0), Some(f64::MAX));
        assert_eq!(d.quantile(0.0), Some(-f64::MAX));
    }

    #[test]
    fn deterministic() {
        let build = || {
            let mut d = TDigest::new(50);
            for i in 0..5000u32 {
                d.insert(f64::from(i % 613) * 1.5);
            }
            d
        };
        assert_eq!(build(), build());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// Merged digests answer within a small rank error of the exact quantile.
        #[test]
        fn quantile_rank_error_is_small(
            values in prop::collection::vec(-1.0e6f64..1.0e6, 1..4000),
            parts in 1usize..20,
            precision in MIN_COMPRESSION..=MAX_COMPRESSION,
            q in 0.0f64..=1.0,
        ) {
            let chunk = values.len().div_ceil(parts);
            let mut d = TDigest::new(precision);
            for part in values.chunks(chunk) {
                let mut p = TDigest::new(precision);
                for &x in part {
                    p.insert(x);
                }
                d.merge(&p);
            }
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let v = d.quantile(q).unwrap();
            // Bound: a few centroid widths, the widest being ~π/δ of the data in the middle.
            let bound = 4.0 / f64::from(precision) + 1.0 / values.len() as f64;
            prop_assert!(rank_error(&sorted, v, q) <= bound,
                "q={} v={} err={} bound={}", q, v, rank_error(&sorted, v, q), bound);
        }
    }
}
