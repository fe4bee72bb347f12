//! Partial aggregates: the mergeable state of one [`AggregateFunction`] over a set of events.
//!
//! A tile stores one [`Partial`] per aggregation; a window's value is the merge of the partials of
//! the tiles it covers (plus raw edge events), finalized into a [`Value`]. Merging is associative
//! and, apart from float rounding in sum/mean/variance, gives the same result as inserting the
//! events one by one in any order:
//! - order-dependent functions (`last`, the n-lists) key every value by `(ts, seq)`, where `seq`
//!   is the ingestion order and breaks ties between equal timestamps (later ingested is later);
//! - float sums use Neumaier compensated summation, integer sums an `i128` accumulator, and
//!   variance the Welford update with Chan et al.'s pairwise merge of `(count, mean, M2)`.
//!
//! Null rules (docs/semantics.md: nulls are excluded from every aggregate, lists too): nulls never reach any state. Values of a kind a function cannot use (a string given to
//! `sum`) are ignored the same way, so no input can panic.

use std::cmp::Ordering;

use crate::engine::function::AggregateFunction;
use crate::engine::hll::Hll;
use crate::engine::tdigest::TDigest;
use crate::schema::{DataType, Value};

/// A value stamped with its event time and ingestion sequence, ordered by `(ts, seq)`.
#[derive(Debug, Clone, PartialEq)]
struct Stamped {
    ts: i64,
    seq: u64,
    value: Value,
}

impl Stamped {
    fn key(&self) -> (i64, u64) {
        (self.ts, self.seq)
    }
}

/// The mergeable state of one aggregation over a set of events.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Partial(State);

#[derive(Debug, Clone, PartialEq)]
enum State {
    Count(i64),
    /// `sum` and `mean`.
    Sum(NumSum),
    Min(Option<Value>),
    Max(Option<Value>),
    Last(Option<Stamped>),
    /// Variance and standard deviation.
    Moments(Moments),
    /// The `n` oldest values, oldest first.
    FirstN(usize, Vec<Stamped>),
    /// The `n` newest values, oldest first.
    LastN(usize, Vec<Stamped>),
    /// The `n` distinct values with the oldest first occurrences; each stamped with that
    /// first occurrence, oldest first.
    FirstDistinct(usize, Vec<Stamped>),
    /// The `n` distinct values with the newest last occurrences; each stamped with that last
    /// occurrence, oldest first.
    LastDistinct(usize, Vec<Stamped>),
    Hll(Hll),
    Digest(TDigest),
}

impl Partial {
    /// The empty state of `f`.
    pub(crate) fn new(f: &AggregateFunction) -> Partial {
        use AggregateFunction as F;
        // n is at most 1000 after parsing; u32 -> usize cannot fail on the supported targets.
        let n = |n: &u32| *n as usize;
        Partial(match f {
            F::Count => State::Count(0),
            F::Sum | F::Mean => State::Sum(NumSum::default()),
            F::Min => State::Min(None),
            F::Max => State::Max(None),
            F::Last => State::Last(None),
            F::VarSamp | F::VarPop | F::StddevSamp | F::StddevPop => {
                State::Moments(Moments::default())
            }
            F::FirstN(k) => State::FirstN(n(k), Vec::new()),
            F::LastN(k) => State::LastN(n(k), Vec::new()),
            F::FirstDistinctN(k) => State::FirstDistinct(n(k), Vec::new()),
            F::LastDistinctN(k) => State::LastDistinct(n(k), Vec::new()),
            F::ApproxCountDistinct { precision } => State::Hll(Hll::new(*precision)),
            F::ApproxPercentile { precision, .. } => State::Digest(TDigest::new(*precision)),
        })
    }

    /// [`Partial::update`] with the value given away: a function that keeps values (`last`,
    /// the distinct lists) keeps this one instead of a copy. The same state either way.
    pub(crate) fn update_owned(&mut self, value: Value, ts: i64, seq: u64) {
        if value.is_null() {
            return;
        }
        match &mut self.0 {
            State::Last(l) => {
                if l.as_ref().is_none_or(|old| (ts, seq) > old.key()) {
                    *l = Some(Stamped { ts, seq, value });
                }
            }
            State::FirstDistinct(n, items) => {
                let n = *n;
                distinct_add(items, Stamped { ts, seq, value }, n, true);
            }
            State::LastDistinct(n, items) => {
                let n = *n;
                distinct_add(items, Stamped { ts, seq, value }, n, false);
            }
            _ => self.update(&value, ts, seq),
        }
    }

    /// Adds one event's value. `seq` is the ingestion order: for equal `ts`, higher `seq` is
    /// later. Nulls are ignored by every function.
    pub(crate) fn update(&mut self, value: &Value, ts: i64, seq: u64) {
        if value.is_null() {
            return;
        }
        let stamped = || Stamped {
            ts,
            seq,
            value: value.clone(),
        };
        match &mut self.0 {
            State::Count(c) => *c = c.wrapping_add(1),
            State::Sum(s) => s.add(value),
            State::Min(m) => keep_if(m, value, Ordering::Less),
            State::Max(m) => keep_if(m, value, Ordering::Greater),
            State::Last(l) => {
                if l.as_ref().is_none_or(|old| (ts, seq) > old.key()) {
                    *l = Some(stamped());
                }
            }
            State::Moments(m) => {
                if let Some(x) = as_f64(value) {
                    m.add(x);
                }
            }
            State::FirstN(n, items) => merge_first(items, std::slice::from_ref(&stamped()), *n),
            State::LastN(n, items) => merge_last(items, std::slice::from_ref(&stamped()), *n),
            State::FirstDistinct(n, items) => distinct_add(items, stamped(), *n, true),
            State::LastDistinct(n, items) => distinct_add(items, stamped(), *n, false),
            State::Hll(h) => h.insert(value),
            State::Digest(d) => {
                if let Some(x) = as_f64(value) {
                    d.insert(x);
                }
            }
        }
    }

    /// Merges `other` (a partial of the same function) into this one. Partials of different
    /// functions cannot be combined; `other` is then ignored (the engine never builds such a pair).
    pub(crate) fn merge(&mut self, other: &Partial) {
        match (&mut self.0, &other.0) {
            (State::Count(a), State::Count(b)) => *a = a.wrapping_add(*b),
            (State::Sum(a), State::Sum(b)) => a.merge(b),
            (State::Min(a), State::Min(Some(b))) => keep_if(a, b, Ordering::Less),
            (State::Max(a), State::Max(Some(b))) => keep_if(a, b, Ordering::Greater),
            (State::Last(a), State::Last(Some(b)))
                if a.as_ref().is_none_or(|old| b.key() > old.key()) =>
            {
                *a = Some(b.clone());
            }
            (State::Moments(a), State::Moments(b)) => a.merge(b),
            (State::FirstN(n, a), State::FirstN(_, b)) => merge_first(a, b, *n),
            (State::LastN(n, a), State::LastN(_, b)) => merge_last(a, b, *n),
            (State::FirstDistinct(n, a), State::FirstDistinct(_, b)) => {
                for s in b {
                    distinct_add(a, s.clone(), *n, true);
                }
            }
            (State::LastDistinct(n, a), State::LastDistinct(_, b)) => {
                for s in b {
                    distinct_add(a, s.clone(), *n, false);
                }
            }
            (State::Hll(a), State::Hll(b)) => a.merge(b),
            (State::Digest(a), State::Digest(b)) => a.merge(b),
            // Empty sides and pairs of different functions: nothing to merge.
            (
                State::Count(_)
                | State::Sum(_)
                | State::Min(_)
                | State::Max(_)
                | State::Last(_)
                | State::Moments(_)
                | State::FirstN(..)
                | State::LastN(..)
                | State::FirstDistinct(..)
                | State::LastDistinct(..)
                | State::Hll(_)
                | State::Digest(_),
                _,
            ) => {}
        }
    }

    /// The feature value, typed per [`AggregateFunction::result_type`] for an input column of type
    /// `input`. Empty states give `0` for count and approx_count_distinct, `[]` for the n-lists
    /// and null for everything else.
    pub(crate) fn finalize(&self, f: &AggregateFunction, input: &DataType) -> Value {
        use AggregateFunction as F;
        let float = |x: Option<f64>| x.map_or(Value::Null, Value::Float);
        let list =
            |items: &[Stamped]| Value::Array(items.iter().map(|s| s.value.clone()).collect());
        match (&self.0, f) {
            (State::Count(c), _) => Value::Int(*c),
            (State::Sum(s), F::Mean) => float(s.mean()),
            (State::Sum(s), _) => match input {
                // Integer sums wrap on i64 overflow, like Spark's non-ANSI `sum`.
                DataType::Int64 | DataType::Int32 => s.int_sum().map_or(Value::Null, Value::Int),
                _ => float(s.float_sum()),
            },
            (State::Min(m) | State::Max(m), _) => m.clone().unwrap_or(Value::Null),
            (State::Last(l), _) => l.as_ref().map_or(Value::Null, |s| s.value.clone()),
            (State::Moments(m), F::VarPop) => float(m.var_pop()),
            (State::Moments(m), F::StddevPop) => float(m.var_pop().map(f64::sqrt)),
            (State::Moments(m), F::StddevSamp) => float(m.var_samp().map(f64::sqrt)),
            (State::Moments(m), _) => float(m.var_samp()),
            (State::FirstN(_, items) | State::LastN(_, items), _) => list(items),
            (State::FirstDistinct(_, items) | State::LastDistinct(_, items), _) => list(items),
            (State::Hll(h), _) => Value::Int(h.count()),
            (State::Digest(d), F::ApproxPercentile { percentile, .. }) => {
                float(d.quantile(*percentile))
            }
            (State::Digest(d), _) => float(d.quantile(0.5)),
        }
    }
}

/// Numeric value of an `Int` or `Float`; other kinds are not numbers.
fn as_f64(value: &Value) -> Option<f64> {
    match value {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// Replaces `slot` with `candidate` when the slot is empty or `candidate` compares `wanted`
/// against it (strictly, so ties keep the first value; tied values are equal anyway).
fn keep_if(slot: &mut Option<Value>, candidate: &Value, wanted: Ordering) {
    if candidate.is_null() {
        return;
    }
    if slot
        .as_ref()
        .is_none_or(|cur| compare_values(candidate, cur) == wanted)
    {
        *slot = Some(candidate.clone());
    }
}

/// A total order over values for min/max and distinctness.
///
/// Numbers compare numerically across `Int`/`Float`; among floats every NaN is greater than
/// any number (as in Spark) and `-0.0 < 0.0` (IEEE total order, for determinism). Strings compare
/// lexicographically by bytes (code points). Arrays and structs compare element by element.
/// Values of different kinds order by kind, which only matters for malformed input.
pub(crate) fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn kind(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) => 2,
            Value::String(_) => 3,
            Value::Timestamp(_) => 4,
            Value::Array(_) => 5,
            Value::Struct(_) => 6,
            Value::Map(_) => 7,
        }
    }
    fn float_cmp(x: f64, y: f64) -> Ordering {
        match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => x.total_cmp(&y),
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => float_cmp(*x, *y),
        // Mixed kinds only arise from malformed input; compare as floats, then by kind.
        (Value::Int(x), Value::Float(y)) => float_cmp(*x as f64, *y).then(Ordering::Less),
        (Value::Float(x), Value::Int(y)) => float_cmp(*x, *y as f64).then(Ordering::Greater),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Timestamp(x), Value::Timestamp(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) | (Value::Struct(x), Value::Struct(y)) => x
            .iter()
            .zip(y)
            .map(|(p, q)| compare_values(p, q))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        (Value::Map(x), Value::Map(y)) => x
            .iter()
            .zip(y)
            .map(|((kp, p), (kq, q))| kp.cmp(kq).then_with(|| compare_values(p, q)))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        _ => kind(a).cmp(&kind(b)),
    }
}

/// Merges sorted `other` into sorted `items`, keeping the `n` oldest.
fn merge_first(items: &mut Vec<Stamped>, other: &[Stamped], n: usize) {
    // Tiles are visited oldest first, so `other` usually lies wholly after a full list.
    if other.is_empty()
        || (items.len() >= n && items.last().map(Stamped::key) < other.first().map(Stamped::key))
    {
        return;
    }
    let merged = merge_sorted(items, other);
    *items = merged;
    items.truncate(n);
}

/// Merges sorted `other` into sorted `items`, keeping the `n` newest.
fn merge_last(items: &mut Vec<Stamped>, other: &[Stamped], n: usize) {
    if other.is_empty() {
        return;
    }
    if items.last().map(Stamped::key) < other.first().map(Stamped::key) {
        // Fast path: `other` is wholly newer (tiles visited oldest first).
        items.extend_from_slice(&other[other.len().saturating_sub(n)..]);
    } else {
        *items = merge_sorted(items, other);
    }
    let excess = items.len().saturating_sub(n);
    items.drain(..excess);
}

/// The sorted union of two lists sorted by `(ts, seq)`.
fn merge_sorted(a: &[Stamped], b: &[Stamped]) -> Vec<Stamped> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if b[j].key() < a[i].key() {
            out.push(b[j].clone());
            j += 1;
        } else {
            out.push(a[i].clone());
            i += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Adds an occurrence to a distinct list sorted by stamp, keeping `n` values.
///
/// `first`: each value keeps its oldest occurrence and the `n` oldest values are kept; otherwise
/// the newest occurrence and the `n` newest values. A value dropped from a partial can never
/// belong to the merged result: `n` other values already beat it inside that partial.
fn distinct_add(items: &mut Vec<Stamped>, s: Stamped, n: usize, first: bool) {
    if let Some(i) = items
        .iter()
        .position(|x| compare_values(&x.value, &s.value).is_eq())
    {
        let better = if first {
            s.key() < items[i].key()
        } else {
            s.key() > items[i].key()
        };
        if !better {
            return;
        }
        items.remove(i);
    }
    let at = items.partition_point(|x| x.key() < s.key());
    items.insert(at, s);
    if items.len() > n {
        if first {
            items.truncate(n);
        } else {
            let excess = items.len() - n;
            items.drain(..excess);
        }
    }
}

/// Sum state for `sum` and `mean`: integers exactly, floats compensated.
#[derive(Debug, Clone, Default, PartialEq)]
struct NumSum {
    /// Exact sum of `Int` values (cannot overflow below 2^64 additions; wraps, never panics,
    /// beyond, and its low 64 bits stay the wrapping i64 sum either way).
    ints: i128,
    /// Neumaier sum of `Float` values: running sum and compensation.
    floats: f64,
    comp: f64,
    /// Numeric values seen.
    n: u64,
}

impl NumSum {
    fn add(&mut self, value: &Value) {
        match value {
            Value::Int(i) => self.ints = self.ints.wrapping_add(i128::from(*i)),
            Value::Float(f) => self.add_float(*f),
            _ => return,
        }
        self.n += 1;
    }

    fn add_float(&mut self, x: f64) {
        let t = self.floats + x;
        // The compensation is meaningless once the sum is infinite or NaN (and would turn inf
        // into NaN), so it is only kept while the sum is finite.
        if t.is_finite() {
            if self.floats.abs() >= x.abs() {
                self.comp += (self.floats - t) + x;
            } else {
                self.comp += (x - t) + self.floats;
            }
        }
        self.floats = t;
    }

    fn merge(&mut self, other: &NumSum) {
        self.ints = self.ints.wrapping_add(other.ints);
        self.add_float(other.floats);
        self.comp += other.comp;
        self.n += other.n;
    }

    fn float_total(&self) -> f64 {
        let f = if self.floats.is_finite() {
            self.floats + self.comp
        } else {
            self.floats
        };
        f + self.ints as f64
    }

    fn int_sum(&self) -> Option<i64> {
        // Truncating the i128 is exactly two's-complement wrapping of the i64 sum.
        (self.n > 0).then_some(self.ints as i64)
    }

    fn float_sum(&self) -> Option<f64> {
        (self.n > 0).then(|| self.float_total())
    }

    fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.float_total() / self.n as f64)
    }
}

/// `(count, mean, M2)` for variance: Welford per value, Chan et al. to merge.
#[derive(Debug, Clone, Default, PartialEq)]
struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn add(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    fn merge(&mut self, o: &Moments) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = o.clone();
            return;
        }
        let (na, nb) = (self.n as f64, o.n as f64);
        let n = na + nb;
        let d = o.mean - self.mean;
        self.mean += d * nb / n;
        self.m2 += o.m2 + d * d * na * nb / n;
        self.n += o.n;
    }

    fn m2(&self) -> f64 {
        // Clamped at 0 against rounding, as Rift does with greatest(var, 0); NaN stays NaN
        // (`f64::max` would turn it into 0).
        if self.m2 < 0.0 {
            0.0
        } else {
            self.m2
        }
    }

    fn var_pop(&self) -> Option<f64> {
        (self.n > 0).then(|| self.m2() / self.n as f64)
    }

    fn var_samp(&self) -> Option<f64> {
        (self.n > 1).then(|| self.m2() / (self.n - 1) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> AggregateFunction {
        s.parse().unwrap()
    }

    /// Folds `(value, ts, seq)` events and finalizes.
    fn run(func: &str, input: DataType, events: &[(Value, i64, u64)]) -> Value {
        let func = f(func);
        let mut p = Partial::new(&func);
        for (v, ts, seq) in events {
            p.update(v, *ts, *seq);
        }
        p.finalize(&func, &input)
    }

    /// Same events split into singletons and merged right to left.
    fn run_merged(func: &str, input: DataType, events: &[(Value, i64, u64)]) -> Value {
        let func = f(func);
        let mut acc = Partial::new(&func);
        for (v, ts, seq) in events.iter().rev() {
            let mut one = Partial::new(&func);
            one.update(v, *ts, *seq);
            one.merge(&acc);
            acc = one;
        }
        acc.finalize(&func, &input)
    }

    fn ints(xs: &[i64]) -> Vec<(Value, i64, u64)> {
        xs.iter()
            .enumerate()
            .map(|(i, x)| (Value::Int(*x), i as i64 * 10, i as u64))
            .collect()
    }

    fn s(x: &str) -> Value {
        Value::String(x.into())
    }

    fn arr(xs: &[Value]) -> Value {
        Value::Array(xs.to_vec())
    }

    const ALL: [&str; 16] = [
        "count",
        "sum",
        "mean",
        "min",
        "max",
        "last",
        "var_samp",
        "var_pop",
        "stddev_samp",
        "stddev_pop",
        "first(2)",
        "last(2)",
        "first_distinct(2)",
        "last_distinct(2)",
        "approx_count_distinct(8)",
        "approx_percentile(0.5, 100)",
    ];

    fn empty_value(func: &str) -> Value {
        match func {
            "count" | "approx_count_distinct(8)" => Value::Int(0),
            _ if func.contains('(') && !func.starts_with("approx") => arr(&[]),
            _ => Value::Null,
        }
    }

    #[test]
    fn empty_and_all_null_windows() {
        let nulls = [(Value::Null, 1, 1), (Value::Null, 2, 2)];
        for func in ALL {
            assert_eq!(
                run(func, DataType::Int64, &[]),
                empty_value(func),
                "{func} empty"
            );
            assert_eq!(
                run(func, DataType::Int64, &nulls),
                empty_value(func),
                "{func} all null"
            );
        }
    }

    #[test]
    fn simple_values_over_ints() {
        let ev = ints(&[4, -2, 7, 7, 1]);
        let want = [
            ("count", Value::Int(5)),
            ("sum", Value::Int(17)),
            ("mean", Value::Float(3.4)),
            ("min", Value::Int(-2)),
            ("max", Value::Int(7)),
            ("last", Value::Int(1)),
            ("var_pop", Value::Float(12.24)),
            ("var_samp", Value::Float(15.3)),
            ("first(2)", arr(&[Value::Int(4), Value::Int(-2)])),
            ("last(2)", arr(&[Value::Int(7), Value::Int(1)])),
            ("first_distinct(2)", arr(&[Value::Int(4), Value::Int(-2)])),
            ("last_distinct(2)", arr(&[Value::Int(7), Value::Int(1)])),
            (
                "last_distinct(3)",
                arr(&[Value::Int(-2), Value::Int(7), Value::Int(1)]),
            ),
            ("approx_count_distinct(8)", Value::Int(4)),
            ("approx_percentile(0.5)", Value::Float(4.0)),
        ];
        for (func, want) in want {
            for got in [
                run(func, DataType::Int64, &ev),
                run_merged(func, DataType::Int64, &ev),
            ] {
                match (&got, &want) {
                    (Value::Float(g), Value::Float(w)) => {
                        assert!((g - w).abs() < 1e-12, "{func}: {g} vs {w}")
                    }
                    _ => assert_eq!(got, want, "{func}"),
                }
            }
        }
    }

    #[test]
    fn variance_with_one_value() {
        let one = [(Value::Float(3.0), 0, 0)];
        assert_eq!(run("var_samp", DataType::Float64, &one), Value::Null);
        assert_eq!(run("stddev_samp", DataType::Float64, &one), Value::Null);
        assert_eq!(run("var_pop", DataType::Float64, &one), Value::Float(0.0));
        assert_eq!(
            run("stddev_pop", DataType::Float64, &one),
            Value::Float(0.0)
        );
        let two = [(Value::Float(3.0), 0, 0), (Value::Float(5.0), 1, 1)];
        assert_eq!(run("var_samp", DataType::Float64, &two), Value::Float(2.0));
        assert_eq!(
            run("stddev_samp", DataType::Float64, &two),
            Value::Float(2f64.sqrt())
        );
        assert_eq!(run("var_pop", DataType::Float64, &two), Value::Float(1.0));
    }

    #[test]
    fn variance_is_clamped_and_stable() {
        // Large offset, tiny spread: naive Σx² − (Σx)²/n would lose everything.
        let ev: Vec<_> = [1e9 + 4.0, 1e9 + 7.0, 1e9 + 13.0, 1e9 + 16.0]
            .iter()
            .enumerate()
            .map(|(i, x)| (Value::Float(*x), i as i64, i as u64))
            .collect();
        assert_eq!(run("var_samp", DataType::Float64, &ev), Value::Float(30.0));
        assert_eq!(
            run_merged("var_samp", DataType::Float64, &ev),
            Value::Float(30.0)
        );
        let same = [
            (Value::Float(0.1), 0, 0),
            (Value::Float(0.1), 1, 1),
            (Value::Float(0.1), 2, 2),
        ];
        assert_eq!(
            run_merged("var_pop", DataType::Float64, &same),
            Value::Float(0.0)
        );
    }

    #[test]
    fn sum_types_and_wrapping() {
        let floats = [(Value::Float(0.5), 0, 0), (Value::Float(0.25), 1, 1)];
        assert_eq!(run("sum", DataType::Float64, &floats), Value::Float(0.75));
        assert_eq!(run("sum", DataType::Int32, &ints(&[1, 2])), Value::Int(3));
        // Documented: integer sums wrap on overflow.
        assert_eq!(
            run("sum", DataType::Int64, &ints(&[i64::MAX, 2])),
            Value::Int(i64::MIN + 1)
        );
        // But the mean uses the exact sum.
        assert_eq!(
            run("mean", DataType::Int64, &ints(&[i64::MAX, i64::MAX])),
            Value::Float(i64::MAX as f64)
        );
        // Compensated: 1e16 + 1 + 1 - 1e16 is 2, not 0.
        let ev: Vec<_> = [1e16, 1.0, 1.0, -1e16]
            .iter()
            .enumerate()
            .map(|(i, x)| (Value::Float(*x), i as i64, i as u64))
            .collect();
        assert_eq!(run("sum", DataType::Float64, &ev), Value::Float(2.0));
        assert_eq!(run_merged("sum", DataType::Float64, &ev), Value::Float(2.0));
    }

    #[test]
    fn non_finite_inputs_do_not_panic() {
        let ev = [
            (Value::Float(f64::INFINITY), 0, 0),
            (Value::Float(1.0), 1, 1),
        ];
        assert_eq!(
            run("sum", DataType::Float64, &ev),
            Value::Float(f64::INFINITY)
        );
        assert_eq!(
            run_merged("sum", DataType::Float64, &ev),
            Value::Float(f64::INFINITY)
        );
        let nan = [(Value::Float(f64::NAN), 0, 0), (Value::Float(1.0), 1, 1)];
        assert!(matches!(run("mean", DataType::Float64, &nan), Value::Float(x) if x.is_nan()));
        assert!(matches!(run("var_samp", DataType::Float64, &nan), Value::Float(x) if x.is_nan()));
        // NaN is the greatest float, as in Spark.
        assert!(matches!(run("max", DataType::Float64, &nan), Value::Float(x) if x.is_nan()));
        assert_eq!(run("min", DataType::Float64, &nan), Value::Float(1.0));
        // approx_percentile ignores NaN.
        assert_eq!(
            run("approx_percentile(0.5)", DataType::Float64, &nan),
            Value::Float(1.0)
        );
    }

    #[test]
    fn strings_compare_lexicographically() {
        let ev = [(s("banana"), 0, 0), (s("Zebra"), 1, 1), (s("apple"), 2, 2)];
        assert_eq!(run("min", DataType::String, &ev), s("Zebra"));
        assert_eq!(run("max", DataType::String, &ev), s("banana"));
        assert_eq!(run("last", DataType::String, &ev), s("apple"));
    }

    #[test]
    fn ties_at_equal_timestamps_follow_seq() {
        // Same ts; seq 1, 2, 3 carry a, b, c, so they must read as a, b, c whatever the order
        // of updates and merges.
        let (a, b, c) = ((s("a"), 100, 1), (s("b"), 100, 2), (s("c"), 100, 3));
        let orders = [
            [a.clone(), b.clone(), c.clone()],
            [a.clone(), c.clone(), b.clone()],
            [b.clone(), a.clone(), c.clone()],
            [b.clone(), c.clone(), a.clone()],
            [c.clone(), a.clone(), b.clone()],
            [c, b, a],
        ];
        for ev in &orders {
            for runner in [run, run_merged] {
                assert_eq!(runner("last", DataType::String, ev), s("c"), "{ev:?}");
                assert_eq!(
                    runner("first(2)", DataType::String, ev),
                    arr(&[s("a"), s("b")])
                );
                assert_eq!(
                    runner("last(2)", DataType::String, ev),
                    arr(&[s("b"), s("c")])
                );
                assert_eq!(
                    runner("first_distinct(3)", DataType::String, ev),
                    arr(&[s("a"), s("b"), s("c")])
                );
            }
        }
    }

    #[test]
    fn lists_are_ordered_oldest_first_and_skip_nulls() {
        // Arrival order is scrambled; timestamps decide.
        let ev = [
            (s("d"), 40, 0),
            (s("a"), 10, 1),
            (Value::Null, 50, 2),
            (s("c"), 30, 3),
            (s("b"), 20, 4),
        ];
        for runner in [run, run_merged] {
            assert_eq!(
                runner("first(3)", DataType::String, &ev),
                arr(&[s("a"), s("b"), s("c")])
            );
            assert_eq!(
                runner("last(3)", DataType::String, &ev),
                arr(&[s("b"), s("c"), s("d")])
            );
            assert_eq!(
                runner("last(10)", DataType::String, &ev),
                arr(&[s("a"), s("b"), s("c"), s("d")])
            );
            assert_eq!(runner("last", DataType::String, &ev), s("d"));
        }
    }

    #[test]
    fn distinct_lists_use_first_or_last_occurrence() {
        // Time order: x, y, x, z, y.
        let ev = [
            (s("x"), 1, 0),
            (s("y"), 2, 1),
            (s("x"), 3, 2),
            (s("z"), 4, 3),
            (s("y"), 5, 4),
        ];
        for runner in [run, run_merged] {
            // first occurrences: x@1, y@2, z@4.
            assert_eq!(
                runner("first_distinct(2)", DataType::String, &ev),
                arr(&[s("x"), s("y")])
            );
            assert_eq!(
                runner("first_distinct(5)", DataType::String, &ev),
                arr(&[s("x"), s("y"), s("z")])
            );
            // last occurrences: x@3, z@4, y@5.
            assert_eq!(
                runner("last_distinct(2)", DataType::String, &ev),
                arr(&[s("z"), s("y")])
            );
            assert_eq!(
                runner("last_distinct(3)", DataType::String, &ev),
                arr(&[s("x"), s("z"), s("y")])
            );
            // The plain lists keep duplicates.
            assert_eq!(
                runner("last(3)", DataType::String, &ev),
                arr(&[s("x"), s("z"), s("y")])
            );
            assert_eq!(
                runner("first(3)", DataType::String, &ev),
                arr(&[s("x"), s("y"), s("x")])
            );
        }
    }

    #[test]
    fn distinct_survives_dropping_inside_a_partial() {
        // Partial A (older) sees a, b, c with n = 2 and drops c; partial B sees c first.
        let func = f("last_distinct(2)");
        let mut a = Partial::new(&func);
        for (i, v) in ["c", "a", "b"].iter().enumerate() {
            a.update(&s(v), i as i64, i as u64);
        }
        let mut b = Partial::new(&func);
        b.update(&s("c"), 10, 10);
        a.merge(&b);
        assert_eq!(a.finalize(&func, &DataType::String), arr(&[s("b"), s("c")]));

        let func = f("first_distinct(2)");
        let mut older = Partial::new(&func);
        older.update(&s("q"), 1, 1);
        let mut newer = Partial::new(&func);
        for (i, v) in ["p", "q", "r"].iter().enumerate() {
            newer.update(&s(v), 10 + i as i64, 10 + i as u64);
        }
        older.merge(&newer);
        assert_eq!(
            older.finalize(&func, &DataType::String),
            arr(&[s("q"), s("p")])
        );
    }

    #[test]
    fn mismatched_merge_is_ignored() {
        let mut a = Partial::new(&f("count"));
        a.update(&Value::Int(1), 0, 0);
        let mut b = Partial::new(&f("sum"));
        b.update(&Value::Int(5), 0, 0);
        a.merge(&b);
        assert_eq!(a.finalize(&f("count"), &DataType::Int64), Value::Int(1));
    }

    #[test]
    fn wrong_kinds_are_ignored_by_numeric_functions() {
        let ev = [(s("oops"), 0, 0), (Value::Int(2), 1, 1)];
        assert_eq!(run("sum", DataType::Int64, &ev), Value::Int(2));
        assert_eq!(run("mean", DataType::Int64, &ev), Value::Float(2.0));
        assert_eq!(run("count", DataType::Int64, &ev), Value::Int(2));
    }
}
