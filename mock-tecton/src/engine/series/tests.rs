use super::spec::span;
use super::*;
use crate::duration::{HOUR, MINUTE, SECOND};
use crate::engine::function::AggregateFunction;
use crate::engine::hll::Hll;
use crate::schema::DataType;
use proptest::prelude::*;

/// 2024-01-01T00:00:00Z.
const DAY0: i64 = 1_704_067_200 * SECOND;

/// A time on 2024-01-01, `hh:mm:ss`.
fn at(h: i64, m: i64, s: i64) -> i64 {
    DAY0 + h * HOUR + m * MINUTE + s * SECOND
}

fn agg(f: &str, input: DataType, window: i64, offset: i64) -> Aggregation {
    Aggregation {
        function: f.parse().unwrap(),
        input_type: input,
        window,
        offset,
        input: 0,
    }
}

/// A spec whose event values are one per aggregation, in order.
fn spec(mode: Mode, aggregations: Vec<Aggregation>) -> SeriesSpec {
    SeriesSpec {
        mode,
        aggregations: aggregations
            .into_iter()
            .enumerate()
            .map(|(i, a)| Aggregation { input: i, ..a })
            .collect(),
        feature_start_time: None,
    }
}

fn ti(minutes: i64) -> Mode {
    Mode::TimeInterval {
        interval: minutes * MINUTE,
    }
}

/// sum and count of one Float64 column over 1h, plus the same with a -10m offset.
fn sum_count_spec(mode: Mode) -> SeriesSpec {
    spec(
        mode,
        vec![
            agg("sum", DataType::Float64, HOUR, 0),
            agg("count", DataType::Float64, HOUR, 0),
            agg("sum", DataType::Float64, HOUR, -10 * MINUTE),
        ],
    )
}

fn load(spec: &SeriesSpec, events: &[(i64, Value)]) -> Series {
    let mut s = Series::new(spec);
    for (seq, (ts, v)) in events.iter().enumerate() {
        let n = spec.aggregations.len();
        s.insert(
            spec,
            *ts,
            seq as u64,
            vec![v.clone(); n],
            SameTimestamp::Keep,
        );
    }
    s
}

fn fl(x: f64) -> Value {
    Value::Float(x)
}

/// The worked example of docs/semantics.md, inserted in a scrambled order.
fn worked_example(spec: &SeriesSpec) -> Series {
    let mut events = vec![
        (at(11, 30, 0), fl(1.0)),
        (at(11, 35, 0), fl(2.0)),
        (at(12, 0, 0), fl(4.0)),
        (at(12, 29, 59), fl(8.0)),
        (at(12, 30, 0), fl(16.0)),
        (at(12, 36, 0), fl(32.0)),
        (at(12, 37, 0), Value::Null),
    ];
    events.reverse();
    events.swap(1, 4);
    load(spec, &events)
}

#[test]
fn worked_example_continuous() {
    let spec = sum_count_spec(Mode::Continuous);
    let s = worked_example(&spec);
    assert_eq!(s.len(), 7);
    // Documented rule: the null at 12:37 is excluded (not Rift's quirk of counting it).
    let table = [
        (at(11, 30, 0), fl(1.0), 1),
        (at(12, 29, 59), fl(15.0), 4),
        (at(12, 30, 0), fl(30.0), 4),
        (at(12, 37, 0), fl(60.0), 4),
        (at(12, 40, 0), fl(60.0), 4),
        (at(13, 30, 0), fl(32.0), 1),
    ];
    for (t, sum, count) in table {
        let got = s.evaluate(&spec, t);
        assert_eq!(got[0], sum, "sum at {t}");
        assert_eq!(got[1], Value::Int(count), "count at {t}");
    }
    // Offset window (t−70m, t−10m] at 12:40 → (11:30, 12:30] → 2+4+8+16.
    assert_eq!(s.evaluate(&spec, at(12, 40, 0))[2], fl(30.0));
}

#[test]
fn worked_example_time_interval() {
    let spec = sum_count_spec(ti(10));
    let s = worked_example(&spec);
    let table = [
        (at(11, 30, 0), Value::Null, 0),
        (at(12, 29, 59), fl(7.0), 3),
        (at(12, 30, 0), fl(15.0), 4),
        (at(12, 37, 0), fl(15.0), 4),
        (at(12, 40, 0), fl(60.0), 4),
        (at(13, 30, 0), fl(48.0), 2),
    ];
    for (t, sum, count) in table {
        let got = s.evaluate(&spec, t);
        assert_eq!(got[0], sum, "sum at {t}");
        assert_eq!(got[1], Value::Int(count), "count at {t}");
    }
    // Offset window [fl(t)−70m, fl(t)−10m) at 13:30 → [12:20, 13:20) → 8+16+32.
    assert_eq!(s.evaluate(&spec, at(13, 30, 0))[2], fl(56.0));
}

/// One event at `ts` with value 1; returns the 1h count at `t`.
fn count_one(mode: Mode, offset: i64, ts: i64, t: i64) -> Value {
    let spec = spec(mode, vec![agg("count", DataType::Int64, HOUR, offset)]);
    let s = load(&spec, &[(ts, Value::Int(1))]);
    s.evaluate(&spec, t).remove(0)
}

#[test]
fn continuous_edges() {
    let c = Mode::Continuous;
    let t = at(12, 7, 30);
    let one = Value::Int(1);
    let zero = Value::Int(0);
    assert_eq!(count_one(c, 0, t, t), one, "exactly at t");
    assert_eq!(count_one(c, 0, t - HOUR, t), zero, "exactly at t-W");
    assert_eq!(count_one(c, 0, t - HOUR + 1, t), one, "just after t-W");
    assert_eq!(count_one(c, 0, t + 1, t), zero, "after t");
    // Internal tiles are 5 min; tile boundaries must not matter.
    assert_eq!(count_one(c, 0, at(12, 5, 0), t), one, "on a tile boundary");
    // CONTINUOUS has no in-progress exclusion: the current internal tile counts up to t.
    assert_eq!(
        count_one(c, 0, at(12, 6, 0), t),
        one,
        "inside the current tile"
    );
    assert_eq!(
        count_one(c, 0, at(11, 10, 0), at(12, 10, 0)),
        zero,
        "t-W on a tile boundary"
    );
    assert_eq!(
        count_one(c, 0, at(12, 10, 0), at(12, 10, 0)),
        one,
        "t on a tile boundary"
    );
    // Offset -10m: (t−70m, t−10m].
    let off = -10 * MINUTE;
    assert_eq!(count_one(c, off, t - 10 * MINUTE, t), one, "at t+off");
    assert_eq!(
        count_one(c, off, t - 10 * MINUTE + 1, t),
        zero,
        "after t+off"
    );
    assert_eq!(count_one(c, off, t - 70 * MINUTE, t), zero, "at t-W+off");
    assert_eq!(
        count_one(c, off, t - 70 * MINUTE + 1, t),
        one,
        "after t-W+off"
    );
}

#[test]
fn time_interval_edges() {
    let m = ti(10);
    let t = at(12, 7, 30); // fl(t) = 12:00, window [11:00, 12:00)
    let one = Value::Int(1);
    let zero = Value::Int(0);
    assert_eq!(
        count_one(m, 0, t, t),
        zero,
        "exactly at t (in-progress tile)"
    );
    assert_eq!(
        count_one(m, 0, at(12, 0, 0), t),
        zero,
        "at fl(t): in-progress tile"
    );
    assert_eq!(
        count_one(m, 0, at(12, 0, 0) - 1, t),
        one,
        "last ns of the last full tile"
    );
    assert_eq!(
        count_one(m, 0, at(11, 0, 0), t),
        one,
        "at fl(t)-W: included"
    );
    assert_eq!(count_one(m, 0, at(11, 0, 0) - 1, t), zero, "before fl(t)-W");
    assert_eq!(
        count_one(m, 0, t - HOUR, t),
        one,
        "t-W is inside the window"
    );
    assert_eq!(count_one(m, 0, t + 1, t), zero, "after t");
    // Requesting exactly on a tile boundary closes the previous tile.
    assert_eq!(
        count_one(m, 0, at(12, 0, 0), at(12, 10, 0)),
        one,
        "tile just closed"
    );
    assert_eq!(count_one(m, 0, at(11, 0, 0), at(12, 0, 0)), one);
    assert_eq!(
        count_one(m, 0, at(11, 0, 0), at(12, 10, 0)),
        zero,
        "tile just left"
    );
    // Offset -10m: [fl(t)−70m, fl(t)−10m) = [10:50, 11:50).
    let off = -10 * MINUTE;
    assert_eq!(count_one(m, off, at(11, 50, 0) - 1, t), one);
    assert_eq!(count_one(m, off, at(11, 50, 0), t), zero);
    assert_eq!(count_one(m, off, at(10, 50, 0), t), one);
    assert_eq!(count_one(m, off, at(10, 50, 0) - 1, t), zero);
}

#[test]
fn windows_not_aligned_to_the_interval_are_exact() {
    // 25-minute window over 10-minute tiles: [fl(t)-25m, fl(t)) = [11:35, 12:00).
    let m = ti(10);
    let spec = spec(m, vec![agg("count", DataType::Int64, 25 * MINUTE, 0)]);
    let s = load(
        &spec,
        &[
            (at(11, 34, 59), Value::Int(1)),
            (at(11, 35, 0), Value::Int(1)),
            (at(11, 45, 0), Value::Int(1)),
            (at(11, 59, 0), Value::Int(1)),
        ],
    );
    assert_eq!(s.evaluate(&spec, at(12, 3, 0)), vec![Value::Int(3)]);
}

#[test]
fn feature_start_time() {
    let fst = at(12, 5, 0);
    for (mode, null_at, value_at) in [
        (Mode::Continuous, fst - 1, fst),
        // TIME_INTERVAL: null while fl(t) < fst, i.e. until 12:10.
        (ti(10), at(12, 9, 59), at(12, 10, 0)),
    ] {
        let mut spec = spec(
            mode,
            vec![
                agg("count", DataType::Int64, HOUR, 0),
                agg("last(2)", DataType::Int64, HOUR, 0),
            ],
        );
        spec.feature_start_time = Some(fst);
        // An event from before fst still counts once features are served.
        let s = load(&spec, &[(at(11, 50, 0), Value::Int(5))]);
        assert_eq!(
            s.evaluate(&spec, null_at),
            vec![Value::Null, Value::Null],
            "{mode:?}"
        );
        assert_eq!(
            s.evaluate(&spec, value_at),
            vec![Value::Int(1), Value::Array(vec![Value::Int(5)])],
            "{mode:?}"
        );
    }
}

#[test]
fn empty_series_gives_empty_values() {
    let spec = spec(
        Mode::Continuous,
        vec![
            agg("count", DataType::Int64, HOUR, 0),
            agg("sum", DataType::Int64, HOUR, 0),
            agg("last_distinct(3)", DataType::String, HOUR, 0),
            agg("approx_count_distinct", DataType::String, HOUR, 0),
            agg("max", DataType::String, HOUR, 0),
        ],
    );
    let s = Series::new(&spec);
    assert!(s.is_empty());
    assert_eq!(
        s.evaluate(&spec, at(12, 0, 0)),
        vec![
            Value::Int(0),
            Value::Null,
            Value::Array(vec![]),
            Value::Int(0),
            Value::Null
        ]
    );
}

#[test]
fn replace_vs_keep_on_duplicate_timestamp() {
    let spec = spec(
        Mode::Continuous,
        vec![
            agg("count", DataType::Int64, HOUR, 0),
            agg("sum", DataType::Int64, HOUR, 0),
            agg("max", DataType::Int64, HOUR, 0),
            agg("last(3)", DataType::Int64, HOUR, 0),
        ],
    );
    let ts = at(12, 0, 0);
    let run = |mode: SameTimestamp| {
        let mut s = Series::new(&spec);
        s.insert(&spec, ts - MINUTE, 0, vec![Value::Int(1); 4], mode);
        s.insert(&spec, ts, 1, vec![Value::Int(10); 4], mode);
        // A smaller value at the same ts: with Replace, max must drop back (no subtraction).
        s.insert(&spec, ts, 2, vec![Value::Int(3); 4], mode);
        (s.len(), s.evaluate(&spec, ts))
    };
    let list = |xs: &[i64]| Value::Array(xs.iter().map(|&x| Value::Int(x)).collect());
    assert_eq!(
        run(SameTimestamp::Replace),
        (
            2,
            vec![Value::Int(2), Value::Int(4), Value::Int(3), list(&[1, 3])]
        )
    );
    assert_eq!(
        run(SameTimestamp::Keep),
        (
            3,
            vec![
                Value::Int(3),
                Value::Int(14),
                Value::Int(10),
                list(&[1, 10, 3])
            ]
        )
    );
}

#[test]
fn late_events_land_in_their_tile() {
    let spec = spec(
        ti(10),
        vec![
            agg("first(2)", DataType::Int64, HOUR, 0),
            agg("last", DataType::Int64, HOUR, 0),
            agg("min", DataType::Int64, HOUR, 0),
        ],
    );
    let mut s = Series::new(&spec);
    for (seq, (ts, v)) in [(at(11, 15, 0), 5), (at(11, 45, 0), 7), (at(11, 12, 0), 9)]
        .into_iter()
        .enumerate()
    {
        s.insert(
            &spec,
            ts,
            seq as u64,
            vec![Value::Int(v); 3],
            SameTimestamp::Keep,
        );
    }
    assert_eq!(
        s.evaluate(&spec, at(12, 0, 0)),
        vec![
            Value::Array(vec![Value::Int(9), Value::Int(5)]),
            Value::Int(7),
            Value::Int(5)
        ]
    );
    let ts: Vec<i64> = s.events().map(|(ts, _, _)| ts).collect();
    assert_eq!(ts, vec![at(11, 12, 0), at(11, 15, 0), at(11, 45, 0)]);
}

#[test]
fn negative_times_and_extremes_do_not_panic() {
    let spec = spec(
        ti(10),
        vec![
            agg("count", DataType::Int64, HOUR, 0),
            agg("count", DataType::Int64, i64::MAX, i64::MIN),
            agg("count", DataType::Int64, 0, 0),
            agg("count", DataType::Int64, -5, 0),
        ],
    );
    let mut s = Series::new(&spec);
    for (seq, ts) in [i64::MIN, -1, 0, -10 * MINUTE, i64::MAX]
        .into_iter()
        .enumerate()
    {
        s.insert(
            &spec,
            ts,
            seq as u64,
            vec![Value::Int(1)],
            SameTimestamp::Keep,
        );
    }
    // Tiles before the epoch are aligned too: at 00:00 UTC 1970 the window is [-1h, 0).
    assert_eq!(s.evaluate(&spec, 0)[0], Value::Int(2));
    assert_eq!(s.evaluate(&spec, 5 * MINUTE)[0], Value::Int(2));
    for t in [i64::MIN, -1, 0, i64::MAX] {
        let v = s.evaluate(&spec, t);
        assert_eq!(v.len(), 4);
        assert_eq!(v[2], Value::Int(0));
        assert_eq!(v[3], Value::Int(0));
    }
    assert_eq!(s.evaluate(&spec, i64::MAX)[0], Value::Int(0));
    let c = SeriesSpec {
        mode: Mode::Continuous,
        ..spec.clone()
    };
    let mut s = Series::new(&c);
    for (seq, ts) in [i64::MIN, 0, i64::MAX].into_iter().enumerate() {
        s.insert(
            &c,
            ts,
            seq as u64,
            vec![Value::Int(1); 4],
            SameTimestamp::Keep,
        );
    }
    assert_eq!(s.evaluate(&c, i64::MAX)[0], Value::Int(1));
    assert_eq!(s.evaluate(&c, i64::MIN)[0], Value::Int(1));
    let bad = spec.clone();
    let bad = SeriesSpec {
        mode: Mode::TimeInterval { interval: 0 },
        ..bad
    };
    let mut s = Series::new(&bad);
    s.insert(&bad, 5, 0, vec![], SameTimestamp::Replace);
    assert_eq!(
        s.evaluate(&bad, 6)[0],
        Value::Int(0),
        "value was missing: null"
    );
}

/// Dense tiles (with precomputed partials) and sparse tiles (folded at read time) must give
/// the same answers, including after late events and replacements switch a tile over.
#[test]
fn dense_and_sparse_tiles_agree() {
    let sp = spec(
        Mode::TimeInterval {
            interval: 10 * MINUTE,
        },
        vec![
            agg("sum", DataType::Int64, HOUR, 0),
            agg("max", DataType::Int64, HOUR, 0),
            agg("count", DataType::Int64, HOUR, 0),
        ],
    );
    let mut s = Series::new(&sp);
    // 20 events in one 10-minute tile, newest first (every insert is late), one replaced.
    for k in (0..20i64).rev() {
        s.insert(
            &sp,
            at(12, 0, 0) + k * SECOND,
            k as u64,
            vec![Value::Int(k); 3],
            SameTimestamp::Replace,
        );
    }
    s.insert(
        &sp,
        at(12, 0, 19),
        99,
        vec![Value::Int(-5); 3],
        SameTimestamp::Replace,
    );
    let got = s.evaluate(&sp, at(12, 10, 0));
    let sum: i64 = (0..19).sum::<i64>() - 5;
    assert_eq!(got, vec![Value::Int(sum), Value::Int(18), Value::Int(20)]);
    assert_eq!(
        s.tiles().first().map(|t| t.partials.len()),
        Some(3),
        "the tile became dense"
    );
}

#[test]
fn tile_sizes() {
    let c = spec(
        Mode::Continuous,
        vec![
            agg("count", DataType::Int64, 3 * 24 * HOUR, 0),
            agg("count", DataType::Int64, HOUR, 0),
        ],
    );
    assert_eq!(c.tile_size(), 5 * MINUTE);
    assert_eq!(spec(Mode::Continuous, vec![]).tile_size(), HOUR);
    assert_eq!(spec(ti(10), vec![]).tile_size(), 10 * MINUTE);
    // Coarse levels: 2 h and 1 day over 5-minute tiles; 4 h and 2 days over 10-minute ones,
    // each kept while no longer than the longest window.
    assert_eq!(c.coarse_levels(), 2);
    assert!(matches!(Series::new(&c).levels, Levels::Two(_)));
    let t = |windows: &[i64]| {
        let aggs = windows
            .iter()
            .map(|&w| agg("count", DataType::Int64, w, 0))
            .collect();
        spec(ti(10), aggs).coarse_levels()
    };
    assert_eq!(t(&[HOUR]), 0);
    assert_eq!(t(&[HOUR, 4 * HOUR - 1]), 0);
    assert_eq!(t(&[HOUR, 4 * HOUR]), 1);
    assert_eq!(t(&[HOUR, 24 * HOUR]), 1);
    assert_eq!(t(&[48 * HOUR]), 2);
    assert_eq!(spec(Mode::Continuous, vec![]).coarse_levels(), 0);
}

/// Aggregations with equal states over one column share a slot: one partial per slot in
/// dense tiles and heads, and the same answers as computed apart.
#[test]
fn aggregations_share_slots() {
    let amt = |f: &str, w: i64| Aggregation {
        input: 0,
        ..agg(f, DataType::Float64, w, 0)
    };
    let sp = SeriesSpec {
        mode: ti(10),
        aggregations: vec![
            amt("sum", HOUR),
            amt("mean", 5 * HOUR),
            amt("count", HOUR),
            amt("sum", 5 * HOUR),
            amt("var_pop", HOUR),
            amt("stddev_samp", 5 * HOUR),
            amt("approx_percentile(0.5, 100)", HOUR),
            amt("approx_percentile(0.9, 100)", HOUR),
            amt("approx_percentile(0.9, 50)", HOUR),
            Aggregation {
                input: 1,
                ..agg("count", DataType::Int64, HOUR, 0)
            },
        ],
        feature_start_time: None,
    };
    // sum/mean, count, the variance pair, two digests of precision 100 and 50, count of 1.
    assert_eq!(slot_map(&sp), vec![0, 0, 1, 0, 2, 2, 3, 3, 4, 5]);
    assert_eq!(slot_firsts(&sp), Some(0b11_0101_0101));
    let mut s = Series::new(&sp);
    for k in 0..40i64 {
        let v = vec![Value::Float(k as f64), Value::Int(k)];
        s.insert(
            &sp,
            at(10, 0, 0) + k * 30 * SECOND,
            k as u64,
            v,
            SameTimestamp::Keep,
        );
    }
    assert_eq!(s.check_tree(&sp), Ok(()));
    let tiles = s.tiles();
    let (newest, older) = tiles.split_last().expect("tiles");
    assert!(older.iter().all(|t| t.partials.len() == 6), "dense tiles");
    // The newest tile folds its events once FOLD_BATCH wait, or when it stops being the newest.
    assert!(newest.keys.len() >= super::tile::DENSE_TILE && newest.partials.is_empty());
    let Levels::One(top) = &s.levels else {
        panic!("one coarse level");
    };
    assert!(
        top.iter()
            .all(|(_, c)| c.head.get().is_some_and(|h| h.len() == 6)),
        "heads"
    );
    let got = s.evaluate(&sp, at(11, 0, 0));
    let sum: f64 = (0..40).map(|k| k as f64).sum();
    assert_eq!(got[0], Value::Float(sum));
    assert_eq!(got[1], Value::Float(sum / 40.0));
    assert_eq!(got[2], Value::Int(40));
    assert_eq!(got[3], Value::Float(sum));
    assert_eq!(got[9], Value::Int(40));
}

// ---- brute force ------------------------------------------------------------------------

/// The window rule of semantics.md §4.1, written independently of `SeriesSpec::bounds`.
fn included(mode: Mode, a: &Aggregation, t: i64, ts: i64) -> bool {
    let (t, ts, w, off) = (t as i128, ts as i128, a.window as i128, a.offset as i128);
    match mode {
        Mode::Continuous => t - w + off < ts && ts <= t + off,
        Mode::TimeInterval { interval } => {
            let i = interval as i128;
            let f = t - t.rem_euclid(i);
            f - w + off <= ts && ts < f + off
        }
    }
}

struct Raw {
    ts: i64,
    seq: u64,
    values: Vec<Value>,
}

enum Expect {
    Exact(Value),
    /// A float within `tol` of the value.
    Close(f64, f64),
    /// A float whose rank among the values is within `tol` of `q`.
    Quantile(Vec<f64>, f64, f64),
}

fn brute(spec: &SeriesSpec, events: &[Raw], t: i64) -> Vec<Expect> {
    let before = match (spec.feature_start_time, spec.mode) {
        (None, _) => false,
        (Some(fst), Mode::Continuous) => t < fst,
        (Some(fst), Mode::TimeInterval { interval }) => t - t.rem_euclid(interval) < fst,
    };
    spec.aggregations
        .iter()
        .map(|a| {
            if before {
                return Expect::Exact(Value::Null);
            }
            let mut rows: Vec<&Raw> = events
                .iter()
                .filter(|e| included(spec.mode, a, t, e.ts) && !e.values[a.input].is_null())
                .collect();
            rows.sort_by_key(|e| (e.ts, e.seq));
            let vals: Vec<Value> = rows.iter().map(|e| e.values[a.input].clone()).collect();
            brute_one(&a.function, &a.input_type, &vals)
        })
        .collect()
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => panic!("not a number: {v:?}"),
    }
}

/// Expected value over the non-null values of the window, oldest first.
fn brute_one(f: &AggregateFunction, input: &DataType, vals: &[Value]) -> Expect {
    use AggregateFunction as F;
    use Expect::*;
    let n = vals.len();
    let xs: Vec<f64> = if matches!(input, DataType::String) {
        vec![]
    } else {
        vals.iter().map(num).collect()
    };
    let abs_sum: f64 = xs.iter().map(|x| x.abs()).sum();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let m2: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
    let var_tol = 1e-9 * (1.0 + xs.iter().map(|x| x * x).sum::<f64>() / n.max(1) as f64);
    let null_if_empty = |e: Expect| if n == 0 { Exact(Value::Null) } else { e };
    let cmp = crate::engine::partial::compare_values;
    let arr = |v: Vec<Value>| Exact(Value::Array(v));
    match f {
        F::Count => Exact(Value::Int(n as i64)),
        F::Sum if *input == DataType::Int64 => null_if_empty(Exact(Value::Int(
            vals.iter().fold(0i64, |s, v| s.wrapping_add(num(v) as i64)),
        ))),
        F::Sum => null_if_empty(Close(xs.iter().sum(), 1e-9 * (1.0 + abs_sum))),
        F::Mean => null_if_empty(Close(mean, 1e-9 * (1.0 + abs_sum / n as f64))),
        F::Min => null_if_empty(Exact(
            vals.iter()
                .min_by(|a, b| cmp(a, b))
                .cloned()
                .unwrap_or(Value::Null),
        )),
        F::Max => null_if_empty(Exact(
            vals.iter()
                .max_by(|a, b| cmp(a, b))
                .cloned()
                .unwrap_or(Value::Null),
        )),
        F::Last => Exact(vals.last().cloned().unwrap_or(Value::Null)),
        F::VarPop => null_if_empty(Close(m2 / n as f64, var_tol)),
        F::StddevPop => null_if_empty(Close((m2 / n as f64).sqrt(), var_tol.sqrt())),
        F::VarSamp if n < 2 => Exact(Value::Null),
        F::VarSamp => Close(m2 / (n - 1) as f64, var_tol),
        F::StddevSamp if n < 2 => Exact(Value::Null),
        F::StddevSamp => Close((m2 / (n - 1) as f64).sqrt(), var_tol.sqrt()),
        F::FirstN(k) => arr(vals.iter().take(*k as usize).cloned().collect()),
        F::LastN(k) => arr(vals[n.saturating_sub(*k as usize)..].to_vec()),
        F::FirstDistinctN(k) => {
            let mut seen: Vec<Value> = vec![];
            for v in vals {
                if !seen.contains(v) {
                    seen.push(v.clone());
                }
            }
            seen.truncate(*k as usize);
            arr(seen)
        }
        F::LastDistinctN(k) => {
            let mut seen: Vec<Value> = vec![];
            for v in vals.iter().rev() {
                if !seen.contains(v) {
                    seen.push(v.clone());
                }
            }
            seen.truncate(*k as usize);
            seen.reverse();
            arr(seen)
        }
        F::ApproxCountDistinct { precision } => {
            // HLL merges are exact (register max), so tiling must not change the estimate.
            let mut h = Hll::new(*precision);
            for v in vals {
                h.insert(v);
            }
            Exact(Value::Int(h.count()))
        }
        F::ApproxPercentile {
            percentile,
            precision,
        } => null_if_empty({
            let mut sorted = xs.clone();
            sorted.sort_by(f64::total_cmp);
            Quantile(
                sorted,
                *percentile,
                4.0 / f64::from(*precision) + 1.0 / n as f64,
            )
        }),
    }
}

fn check(got: &Value, want: &Expect) -> Result<(), String> {
    match (want, got) {
        (Expect::Exact(w), g) if w == g => Ok(()),
        (Expect::Close(w, tol), Value::Float(g)) if (g - w).abs() <= *tol => Ok(()),
        (Expect::Quantile(sorted, q, tol), Value::Float(g)) => {
            let n = sorted.len() as f64;
            let lo = sorted.partition_point(|x| x < g) as f64 / n;
            let hi = sorted.partition_point(|x| x <= g) as f64 / n;
            let err = if *q < lo {
                lo - q
            } else if *q > hi {
                q - hi
            } else {
                0.0
            };
            if err <= *tol {
                Ok(())
            } else {
                Err(format!("quantile {q}: got {g}, rank error {err} > {tol}"))
            }
        }
        (Expect::Exact(w), g) => Err(format!("want {w:?}, got {g:?}")),
        (Expect::Close(w, tol), g) => Err(format!("want {w} ± {tol}, got {g:?}")),
        (Expect::Quantile(..), g) => Err(format!("want a float, got {g:?}")),
    }
}

/// Function, input column (0 = Float64, 1 = Int64, 2 = String).
const FUNCTIONS: [(&str, usize); 22] = [
    ("sum", 0),
    ("mean", 0),
    ("min", 0),
    ("max", 0),
    ("last", 0),
    ("var_samp", 0),
    ("var_pop", 0),
    ("stddev_samp", 0),
    ("stddev_pop", 0),
    ("first(3)", 0),
    ("last(3)", 0),
    ("approx_percentile(0.5, 100)", 0),
    ("approx_percentile(0.9, 20)", 0),
    ("count", 1),
    ("sum", 1),
    ("min", 1),
    ("first_distinct(2)", 1),
    ("last_distinct(3)", 1),
    ("approx_count_distinct(10)", 1),
    ("max", 2),
    ("last_distinct(2)", 2),
    ("count", 2),
];

fn arb_mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        Just(Mode::Continuous),
        prop::sample::select(vec![5i64, 7, 10]).prop_map(ti),
    ]
}

/// (window, offset) per function.
fn arb_windows() -> impl Strategy<Value = Vec<(i64, i64)>> {
    let w = prop::sample::select(vec![30 * MINUTE, HOUR, 2 * HOUR, 90 * MINUTE + 7 * SECOND]);
    let o = prop::sample::select(vec![0, 0, -10 * MINUTE, -7 * MINUTE - 1]);
    prop::collection::vec((w, o), FUNCTIONS.len())
}

/// One event: ts, values (float, int, string), Replace?
type ArbEvent = (i64, Option<f64>, Option<i64>, Option<u8>, bool);

fn arb_event() -> impl Strategy<Value = ArbEvent> {
    let minute = 0i64..240;
    let jitter = prop_oneof![Just(0i64), Just(1), Just(MINUTE - 1), 0..MINUTE];
    (
        (minute, jitter).prop_map(|(m, j)| m * MINUTE + j),
        prop::option::weighted(0.8, -1000.0f64..1000.0),
        prop::option::weighted(0.8, -3i64..6),
        prop::option::weighted(0.8, 0u8..5),
        prop::bool::weighted(0.3),
    )
}

fn arb_time() -> impl Strategy<Value = i64> {
    prop_oneof![
        -HOUR..5 * HOUR,
        (0i64..300, prop::sample::select(vec![-1i64, 0, 1])).prop_map(|(m, d)| m * MINUTE + d),
    ]
}

/// One generated event: time, (float, int, string) column values, inserted with Replace?
type Case = (i64, [Value; 3], bool);

fn columns(x: Option<f64>, i: Option<i64>, s: Option<u8>) -> [Value; 3] {
    [
        x.map_or(Value::Null, Value::Float),
        i.map_or(Value::Null, Value::Int),
        s.map_or(Value::Null, |s| Value::String(format!("s{s}").into())),
    ]
}

/// The 22 [`FUNCTIONS`] with the given windows.
fn functions_spec(mode: Mode, windows: &[(i64, i64)], fst: Option<i64>) -> SeriesSpec {
    let inputs = [DataType::Float64, DataType::Int64, DataType::String];
    SeriesSpec {
        mode,
        aggregations: FUNCTIONS
            .iter()
            .zip(windows)
            .map(|((f, col), (w, o))| Aggregation {
                input: *col,
                ..agg(f, inputs[*col].clone(), *w, *o)
            })
            .collect(),
        feature_start_time: fst,
    }
}

/// Inserts `events` in the order given (seq = position), checks the tile tree's invariants,
/// and compares every feature at every time with the brute force.
fn run_case(spec: &SeriesSpec, events: &[Case], times: &[i64]) -> Result<(), TestCaseError> {
    let mut series = Series::new(spec);
    let mut raw: Vec<Raw> = Vec::new();
    for (seq, (ts, cols, replace)) in events.iter().enumerate() {
        // One value per column: aggregations find theirs through `input`.
        let values: Vec<Value> = cols.to_vec();
        let same = if *replace {
            SameTimestamp::Replace
        } else {
            SameTimestamp::Keep
        };
        if *replace {
            raw.retain(|e| e.ts != *ts);
        }
        raw.push(Raw {
            ts: *ts,
            seq: seq as u64,
            values: values.clone(),
        });
        series.insert(spec, *ts, seq as u64, values, same);
    }
    prop_assert_eq!(series.len(), raw.len());
    if let Err(e) = series.check_tree(spec) {
        prop_assert!(false, "tile tree: {}", e);
    }
    for &t in times {
        let got = series.evaluate(spec, t);
        let want = brute(spec, &raw, t);
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            if let Err(e) = check(g, w) {
                prop_assert!(
                    false,
                    "{} ({:?}) at t={}: {}",
                    FUNCTIONS[k].0,
                    spec.aggregations[k],
                    t,
                    e
                );
            }
        }
    }
    Ok(())
}

const DAY: i64 = 24 * HOUR;

/// Where a generated time lands, resolved against the series' tile sizes in
/// [`place`]: anywhere in the span, next to a tile boundary of some level, or on the
/// timestamp of an earlier event (so that Replace and ties cross coarse tiles too).
#[derive(Debug, Clone)]
enum Place {
    At(i64),
    /// Boundary `index` of level `level` (0 = fine) after the span's start, plus `delta` ns.
    Boundary(usize, i64, i64),
    /// The time of event `index` (modulo those placed so far), plus `delta` ns.
    Event(usize, i64),
}

fn arb_place() -> impl Strategy<Value = Place> {
    let delta = prop::sample::select(vec![-1i64, 0, 0, 1]);
    prop_oneof![
        // Anywhere in four days.
        2 => (0..4 * DAY).prop_map(Place::At),
        // Clusters: a few hours apart, a couple of hours wide, so coarse tiles get several
        // children; and bursts of seconds, so fine tiles get dense.
        3 => (0i64..10, 0..2 * HOUR).prop_map(|(c, d)| Place::At(c * 9 * HOUR + 17 * MINUTE + d)),
        2 => (0i64..6, 0..30 * SECOND).prop_map(|(c, d)| Place::At(c * 14 * HOUR + 5 * MINUTE + d)),
        2 => (0usize..3, 0i64..60, delta.clone()).prop_map(|(l, i, d)| Place::Boundary(l, i, d)),
        1 => (any::<usize>(), delta).prop_map(|(i, d)| Place::Event(i, d)),
    ]
}

fn place(p: &Place, base: i64, tile: i64, placed: &[i64]) -> i64 {
    match *p {
        Place::At(x) => base + x,
        Place::Boundary(level, index, delta) => {
            let size = tile * span(level);
            base.div_euclid(size) * size + index * size + delta
        }
        Place::Event(i, delta) if !placed.is_empty() => placed[i % placed.len()] + delta,
        Place::Event(_, delta) => base + delta,
    }
}

type ArbDayEvent = (Place, Option<f64>, Option<i64>, Option<u8>, bool);

fn arb_day_event() -> impl Strategy<Value = ArbDayEvent> {
    (
        arb_place(),
        prop::option::weighted(0.8, -1000.0f64..1000.0),
        prop::option::weighted(0.8, -3i64..6),
        prop::option::weighted(0.8, 0u8..5),
        prop::bool::weighted(0.3),
    )
}

/// (window, offset) per function, from minutes to days; none shorter than `floor` (which
/// varies the fine tile size, and so the coarse ones, from case to case).
fn arb_day_windows() -> impl Strategy<Value = Vec<(i64, i64)>> {
    let w = prop::sample::select(vec![
        5 * MINUTE,
        HOUR,
        90 * MINUTE + 7 * SECOND,
        DAY,
        26 * HOUR,
        2 * DAY + HOUR + SECOND,
        3 * DAY,
    ]);
    let o = prop::sample::select(vec![0, 0, -10 * MINUTE, -7 * MINUTE - 1, -DAY]);
    let floor = prop::sample::select(vec![0, 0, HOUR, 6 * HOUR, DAY]);
    (prop::collection::vec((w, o), FUNCTIONS.len()), floor)
        .prop_map(|(ws, f)| ws.into_iter().map(|(w, o)| (w.max(f), o)).collect())
}

fn arb_day_mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        2 => Just(Mode::Continuous),
        1 => prop::sample::select(vec![5i64, 7, 10, 60]).prop_map(ti),
    ]
}

/// 300 cases, or `PROPTEST_CASES` for a longer run (an explicit count would ignore it).
fn cases() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(300);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases())]
    /// Tiled evaluation equals a brute-force pass over the raw events.
    #[test]
    fn tiled_equals_brute_force(
        mode in arb_mode(),
        windows in arb_windows(),
        base in prop::sample::select(vec![DAY0, 0, -3 * HOUR - 17 * SECOND]),
        fst in prop::option::weighted(0.3, 0i64..3 * HOUR),
        events in prop::collection::vec(arb_event(), 0..80),
        times in prop::collection::vec(arb_time(), 1..25),
    ) {
        let spec = functions_spec(mode, &windows, fst.map(|f| base + f));
        let events: Vec<Case> = events
            .into_iter()
            .map(|(ts, x, i, s, replace)| (base + ts, columns(x, i, s), replace))
            .collect();
        let times: Vec<i64> = times.into_iter().map(|t| base + t).collect();
        run_case(&spec, &events, &times)?;
    }

    /// The same over several days with windows from minutes to days, so that both coarse
    /// levels are built and cut: clustered events, events on (and next to) coarse tile
    /// boundaries, late events (the order is random) and replacements everywhere, requests
    /// on boundaries and one window length after events.
    #[test]
    fn coarse_tiles_equal_brute_force(
        mode in arb_day_mode(),
        windows in arb_day_windows(),
        base in prop::sample::select(vec![DAY0 + 3 * HOUR, 0, -3 * HOUR - 17 * SECOND]),
        events in prop::collection::vec(arb_day_event(), 0..160),
        times in prop::collection::vec((arb_place(), 0usize..FUNCTIONS.len(), any::<bool>()), 1..16),
    ) {
        let spec = functions_spec(mode, &windows, None);
        let tile = spec.tile_size();
        let mut placed: Vec<i64> = Vec::new();
        let mut cases: Vec<Case> = Vec::new();
        for (p, x, i, s, replace) in &events {
            let ts = place(p, base, tile, &placed);
            placed.push(ts);
            cases.push((ts, columns(*x, *i, *s), *replace));
        }
        let times: Vec<i64> = times
            .iter()
            .map(|(p, k, shift)| {
                let t = place(p, base, tile, &placed);
                // Shifted by a window, the lower edge lands where the upper one was.
                if *shift { t.saturating_add(windows[*k].0) } else { t }
            })
            .collect();
        run_case(&spec, &cases, &times)?;
    }

    /// Evicting the events before a horizon (in steps, as a moving clock does) leaves the
    /// same tree as inserting only the remaining events: the same invariants and the same
    /// answers bit for bit at every time.
    #[test]
    fn eviction_equals_inserting_the_rest(
        mode in arb_day_mode(),
        windows in arb_day_windows(),
        events in prop::collection::vec(arb_day_event(), 0..160),
        horizons in prop::collection::vec(arb_place(), 1..4),
        times in prop::collection::vec(arb_place(), 1..12),
    ) {
        let spec = functions_spec(mode, &windows, None);
        let (base, tile) = (DAY0, spec.tile_size());
        let mut placed: Vec<i64> = Vec::new();
        let mut evicted = Series::new(&spec);
        let mut kept: Vec<(i64, u64, Vec<Value>)> = Vec::new();
        for (seq, (p, x, i, s, replace)) in events.iter().enumerate() {
            let ts = place(p, base, tile, &placed);
            placed.push(ts);
            let same = if *replace { SameTimestamp::Replace } else { SameTimestamp::Keep };
            if *replace {
                kept.retain(|e| e.0 != ts);
            }
            let values = columns(*x, *i, *s).to_vec();
            kept.push((ts, seq as u64, values.clone()));
            evicted.insert(&spec, ts, seq as u64, values, same);
        }
        let mut horizons: Vec<i64> = horizons.iter().map(|p| place(p, base, tile, &placed)).collect();
        horizons.sort_unstable();
        for h in horizons {
            let before = evicted.len();
            let removed = evicted.evict_before(&spec, h);
            kept.retain(|e| e.0 >= h);
            prop_assert_eq!(before - removed, kept.len());
            prop_assert_eq!(evicted.len(), kept.len());
            prop_assert_eq!(evicted.first_ts(), kept.iter().map(|e| e.0).min());
            if let Err(e) = evicted.check_tree(&spec) {
                prop_assert!(false, "tile tree after evicting before {}: {}", h, e);
            }
        }
        kept.sort_by_key(|e| (e.0, e.1));
        let mut rest = Series::new(&spec);
        for (ts, seq, values) in kept {
            rest.insert(&spec, ts, seq, values, SameTimestamp::Keep);
        }
        for t in times.iter().map(|p| place(p, base, tile, &placed)) {
            prop_assert_eq!(evicted.evaluate(&spec, t), rest.evaluate(&spec, t), "at {}", t);
        }
    }
}

/// A late event, a replacement and an event on a boundary inside coarse tiles that are
/// already built give the same state as inserting the final events in order: the same
/// answers bit for bit (floats included), whatever the window cuts.
#[test]
fn late_and_replaced_events_in_built_coarse_tiles() {
    let sp = spec(
        Mode::Continuous,
        vec![
            agg("sum", DataType::Float64, HOUR, 0),
            agg("mean", DataType::Float64, 3 * DAY, 0),
            agg("stddev_samp", DataType::Float64, 26 * HOUR, -7 * MINUTE),
            agg("max", DataType::Float64, 3 * DAY, 0),
            agg("last_distinct(3)", DataType::Float64, DAY, 0),
            agg("count", DataType::Float64, 2 * DAY, 0),
        ],
    );
    // 5-minute tiles, 2-hour level-1 tiles, 1-day level-2 tiles.
    assert_eq!(sp.tile_size(), 5 * MINUTE);
    assert_eq!(sp.coarse_levels(), 2);
    let n = sp.aggregations.len();
    let value = |k: i64| Value::Float(((k * 7919) % 1000) as f64 / 7.0 + 1e6 * (k % 3) as f64);
    // One event every 7 minutes for three days, plus a burst making a fine tile dense.
    let mut events: Vec<(i64, u64, Value)> = (0..3 * 24 * 60 / 7)
        .map(|k| (DAY0 + k * 7 * MINUTE + 13 * SECOND, k as u64, value(k)))
        .collect();
    events.extend((0..12).map(|k| (DAY0 + 30 * HOUR + k * SECOND, 5000 + k as u64, value(k))));
    let late = [
        // Inside day 0's fourth level-1 tile, long after it was built.
        (DAY0 + 7 * HOUR + 3 * SECOND, 9001, value(1)),
        // Exactly on a level-2 (and level-1, and fine) boundary.
        (DAY0 + DAY, 9002, value(2)),
        // Into the dense burst.
        (DAY0 + 30 * HOUR + 5 * SECOND + 1, 9003, value(3)),
    ];
    // Replacing an event of day 1 with another value.
    let (old_ts, _, _) = events[300];
    let replacement = (old_ts, 9004, Value::Float(-42.5));

    let mut in_order: Vec<(i64, u64, Value)> = events.clone();
    in_order.retain(|e| e.0 != old_ts);
    in_order.extend(late.iter().cloned());
    in_order.push(replacement.clone());
    in_order.sort_by_key(|e| (e.0, e.1));
    let mut a = Series::new(&sp);
    for (ts, seq, v) in &in_order {
        a.insert(&sp, *ts, *seq, vec![v.clone(); n], SameTimestamp::Replace);
    }

    let mut sorted = events.clone();
    sorted.sort_by_key(|e| (e.0, e.1));
    let mut b = Series::new(&sp);
    for (ts, seq, v) in sorted.iter().chain(&late).chain([&replacement]) {
        b.insert(&sp, *ts, *seq, vec![v.clone(); n], SameTimestamp::Replace);
    }
    assert_eq!(a.check_tree(&sp), Ok(()));
    assert_eq!(b.check_tree(&sp), Ok(()));
    assert_eq!(a.stale_heads(), 0, "in order, every head is kept");
    let stale = b.stale_heads();
    assert!(stale > 0, "late events leave stale heads");
    assert_eq!(a.len(), in_order.len());
    assert_eq!(b.len(), in_order.len());

    let raw: Vec<Raw> = in_order
        .iter()
        .map(|(ts, seq, v)| Raw {
            ts: *ts,
            seq: *seq,
            values: vec![v.clone(); n],
        })
        .collect();
    let times = (0..80).map(|k| DAY0 + k * 67 * MINUTE + (k % 3 - 1));
    for t in times.chain([DAY0 + DAY, DAY0 + 2 * DAY, DAY0 + 3 * DAY, DAY0 + 4 * DAY]) {
        let got = b.evaluate(&sp, t);
        assert_eq!(got, a.evaluate(&sp, t), "at {t}");
        for (k, (g, w)) in got.iter().zip(brute(&sp, &raw, t)).enumerate() {
            assert_eq!(check(g, &w), Ok(()), "aggregation {k} at {t}");
        }
    }
    assert!(
        b.stale_heads() < stale,
        "reads build (and keep) the heads they need"
    );
    // More events, in order and late, after the reads: still the same answers.
    for s in [&mut a, &mut b] {
        for k in 0..3 {
            let ts = DAY0 + 3 * DAY + k * HOUR - k * DAY;
            s.insert(
                &sp,
                ts,
                10_000 + k as u64,
                vec![value(k); n],
                SameTimestamp::Replace,
            );
        }
    }
    for t in (0..40).map(|k| DAY0 + k * 131 * MINUTE) {
        assert_eq!(b.evaluate(&sp, t), a.evaluate(&sp, t), "at {t}");
    }
}

/// A newest fine tile with more than FOLD_BATCH events, read after every write while some of
/// its events wait to be folded: the answers equal brute force, and bit for bit those of a
/// series that received the same events newest first (every tile then fully folded).
#[test]
fn a_busy_newest_tile_reads_the_same_while_its_folds_wait() {
    let windows = [(HOUR, 0); FUNCTIONS.len()];
    let spec = functions_spec(Mode::Continuous, &windows, None);
    let start = DAY0 - DAY0.rem_euclid(spec.tile_size());
    let n = 3 * super::tile::FOLD_BATCH + 5;
    let mut series = Series::new(&spec);
    let mut raw: Vec<Raw> = Vec::new();
    for k in 0..n {
        let ts = start + k as i64 * SECOND;
        let k8 = u8::try_from(k % 5).unwrap_or(0);
        let values = columns(Some(k as f64 * 0.1 - 3.0), Some(k as i64 % 7), Some(k8)).to_vec();
        raw.push(Raw {
            ts,
            seq: k as u64,
            values: values.clone(),
        });
        series.insert(&spec, ts, k as u64, values, SameTimestamp::Keep);
        assert_eq!(series.check_tree(&spec), Ok(()), "after event {k}");
        let mut reversed = Series::new(&spec);
        for e in raw.iter().rev() {
            reversed.insert(&spec, e.ts, e.seq, e.values.clone(), SameTimestamp::Keep);
        }
        for t in [ts, ts + SECOND / 2, start + spec.tile_size()] {
            let got = series.evaluate(&spec, t);
            assert_eq!(got, reversed.evaluate(&spec, t), "event {k}, t={t}");
            for (j, (g, w)) in got.iter().zip(brute(&spec, &raw, t)).enumerate() {
                assert_eq!(check(g, &w), Ok(()), "{} after event {k}", FUNCTIONS[j].0);
            }
        }
    }
    let tiles = series.tiles();
    assert_eq!(tiles.len(), 1, "one fine tile");
    assert!(
        tiles[0].folded as usize >= 3 * super::tile::FOLD_BATCH,
        "folded in runs"
    );
}
