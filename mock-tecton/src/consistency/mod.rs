//! Online/offline consistency: are the features served online at time `t` the point-in-time
//! features training data would get for `t`?
//!
//! The online value at a point `t` is what get-features answers at `t` with exactly the records
//! that had *arrived* by `t` ([`Arrival`]). The check replays the offline log on a virtual clock
//! into a fresh online store: it applies every record that has arrived and every batch job
//! (backfill, scheduled or manual) that had run, with the batch module's precedence rule,
//! samples the points that are due, and moves on; the running mock's own stores are only read.
//! The offline value is point-in-time retrieval over the whole log ([`crate::retrieval`]), which
//! reads the batch jobs' rows where they take precedence. Per feature the report gives Chronon's
//! rates — mismatch (the values differ), missing (online null, offline not), extra
//! (online not null, offline null) — and for numbers the SMAPE `Σ|a−b| / Σ(|a|+|b|)`, plus the
//! first differing rows, each with its [`Cause`].

mod arrival;
mod cause;
mod jobs;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

pub use arrival::Arrival;
pub use cause::Cause;

use crate::repo::{FeatureView, StreamProcessingMode, ViewKind};
use crate::retrieval::{offline_features, SpineRow};
use crate::schema::{format_rfc3339, Value};
use crate::serving::{
    entity_key, online_vector, served_features, FeatureValue, ServedFeature, ServingError,
    UnknownEntity,
};
use crate::state::MockState;
use crate::store::{EntityKey, OnlineStore};
use arrival::Logged;
use cause::Reads;
use jobs::JobArrival;

/// Relative tolerance for comparing floats: both sides run the same arithmetic, so only
/// summation order can differ.
pub(crate) const FLOAT_TOLERANCE: f64 = 1e-9;

/// Differing rows listed when the caller does not say.
pub(crate) const DEFAULT_MAX_ROWS: usize = 20;

/// What a check needs besides the points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// When each record arrived.
    pub arrival: Arrival,
    /// How many differing rows to list.
    pub max_rows: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            arrival: Arrival::EventTime,
            max_rows: DEFAULT_MAX_ROWS,
        }
    }
}

/// Per-feature consistency statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureConsistency {
    /// `view.feature`.
    pub feature: String,
    /// Points compared.
    pub rows: usize,
    /// Fraction of points where the values differ.
    pub mismatch_rate: f64,
    /// Fraction where online is null but offline is not.
    pub missing_rate: f64,
    /// Fraction where online has a value but offline is null.
    pub extra_rate: f64,
    /// For numeric features: `Σ|a−b| / Σ(|a|+|b|)` over points where both are numbers.
    pub smape: Option<f64>,
}

/// One point where online and offline disagree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DifferingRow {
    /// The entity.
    pub join_keys: Map<String, Json>,
    /// The point in time (RFC 3339).
    pub timestamp: String,
    /// `view.feature`.
    pub feature: String,
    /// What the feature server answered at the point.
    pub online: Json,
    /// What point-in-time retrieval gives.
    pub offline: Json,
    /// Why they differ, most direct first.
    pub causes: Vec<Cause>,
    /// The records behind the causes.
    pub detail: String,
}

/// The consistency of one feature service over a set of points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyReport {
    /// The feature service.
    pub feature_service: String,
    /// Points compared.
    pub points: usize,
    /// How arrival times were decided (`Arrival::describe`).
    pub arrival: String,
    /// True when every feature matched at every point.
    pub consistent: bool,
    /// Per feature, in serving order.
    pub features: Vec<FeatureConsistency>,
    /// The first differing rows, in point order then feature order.
    pub differences: Vec<DifferingRow>,
}

/// Compares online and offline features of `service` at `points`.
pub fn check(
    state: &MockState,
    service: &str,
    points: &[SpineRow],
    options: &CheckOptions,
) -> Result<ConsistencyReport, ServingError> {
    let fs = state
        .repo
        .feature_service(service)
        .ok_or_else(|| ServingError::NotFound(format!("no feature service named `{service}`")))?;
    let features = served_features(&state.repo, fs);
    let offline = offline_features(state, &features, points)?;
    let replay = Replay::new(state, &features, &options.arrival)?;
    let online = replay.online_at(state, &features, points)?;

    let mut stats: Vec<(usize, usize, usize, f64, f64, bool)> =
        vec![(0, 0, 0, 0.0, 0.0, false); features.len()];
    let mut differences = Vec::new();
    let mut index: Option<EntityIndex> = None;
    for ((point, on), off) in points.iter().zip(&online).zip(&offline) {
        for (i, f) in features.iter().enumerate() {
            let (a, b) = (&on[i].value, &off[i].value);
            let st = &mut stats[i];
            if !same(a, b) {
                st.0 += 1;
                if differences.len() < options.max_rows {
                    let index = index.get_or_insert_with(|| replay.index(state));
                    let (causes, detail) = replay.explain(state, index, f, point)?;
                    differences.push(DifferingRow {
                        join_keys: point.join_keys.clone(),
                        timestamp: format_rfc3339(point.timestamp),
                        feature: f.name.clone(),
                        online: a.to_plain_json(),
                        offline: b.to_plain_json(),
                        causes,
                        detail,
                    });
                }
            }
            match (a.is_null(), b.is_null()) {
                (true, false) => st.1 += 1,
                (false, true) => st.2 += 1,
                _ => {}
            }
            if let (Some(x), Some(y)) = (number(a), number(b)) {
                st.3 += (x - y).abs();
                st.4 += x.abs() + y.abs();
                st.5 = true;
            }
        }
    }
    let n = points.len();
    let rate = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let features: Vec<FeatureConsistency> = features
        .iter()
        .zip(stats)
        .map(
            |(f, (mismatch, missing, extra, num, den, numeric))| FeatureConsistency {
                feature: f.name.clone(),
                rows: n,
                mismatch_rate: rate(mismatch),
                missing_rate: rate(missing),
                extra_rate: rate(extra),
                smape: numeric.then(|| if den == 0.0 { 0.0 } else { num / den }),
            },
        )
        .collect();
    Ok(ConsistencyReport {
        feature_service: service.to_owned(),
        points: n,
        arrival: options.arrival.describe(),
        consistent: features.iter().all(|f| f.mismatch_rate == 0.0),
        features,
        differences,
    })
}

/// Indices into [`Replay::records`] per (view, entity), in application order.
type EntityIndex = HashMap<(usize, EntityKey), Vec<usize>>;

/// The records and batch jobs a service's views are built from, each in the order the online
/// store applied them.
struct Replay {
    /// The service's views.
    views: Vec<usize>,
    /// Views none of whose push sources log offline: nothing to replay, so the running mock's
    /// online store is read as it is.
    live: Vec<usize>,
    records: Vec<Logged>,
    /// The batch job runs of the replayed views, by the time they ran.
    jobs: Vec<JobArrival>,
}

impl Replay {
    fn new(
        state: &MockState,
        features: &[ServedFeature],
        rule: &Arrival,
    ) -> Result<Self, ServingError> {
        let mut views: Vec<usize> = features.iter().map(|f| f.view).collect();
        views.sort_unstable();
        views.dedup();
        let mut sources = Vec::new();
        let mut live = Vec::new();
        for &v in &views {
            let logged: Vec<usize> = state.repo.feature_views[v]
                .sources
                .iter()
                .filter_map(|name| state.plan.source_index(name))
                .filter(|&s| state.repo.push_sources[s].log_offline)
                .collect();
            if logged.is_empty() {
                live.push(v);
            }
            sources.extend(logged);
        }
        sources.sort_unstable();
        sources.dedup();
        let replayed: Vec<usize> = views
            .iter()
            .copied()
            .filter(|v| !live.contains(v))
            .collect();
        Ok(Replay {
            records: arrival::arrivals(state, &sources, rule)?,
            jobs: jobs::arrivals(state, &replayed)?,
            views,
            live,
        })
    }

    /// The online vector at every point: points in time order, each after applying every
    /// record and batch job that arrived at or before it.
    fn online_at(
        &self,
        state: &MockState,
        features: &[ServedFeature],
        points: &[SpineRow],
    ) -> Result<Vec<Vec<FeatureValue>>, ServingError> {
        // Evaluated at past points: the replayed store keeps every event it is given.
        let store = OnlineStore::new(&state.repo, crate::config::Retention::Everything);
        let mut order: Vec<usize> = (0..points.len()).collect();
        order.sort_by_key(|&i| (points[i].timestamp, i));
        let mut out = vec![Vec::new(); points.len()];
        let (mut next, mut next_job) = (0, 0);
        for i in order {
            let point = &points[i];
            loop {
                let rec = self
                    .records
                    .get(next)
                    .filter(|r| r.arrival <= point.timestamp);
                let job = self
                    .jobs
                    .get(next_job)
                    .filter(|j| j.arrival().0 <= point.timestamp);
                match (rec, job) {
                    (Some(r), Some(j)) if jobs::precedes(j.arrival(), (r.arrival, r.seq)) => {
                        j.apply(state, &store);
                        next_job += 1;
                    }
                    (None, Some(j)) => {
                        j.apply(state, &store);
                        next_job += 1;
                    }
                    (Some(rec), _) => {
                        for sub in state.plan.subscriptions(rec.source) {
                            if self.views.contains(&sub.view) {
                                sub.apply_online(&store, rec.ts, rec.seq, &rec.values, rec.arrival);
                            }
                        }
                        next += 1;
                    }
                    (None, None) => break,
                }
            }
            let sample = |online: &OnlineStore| {
                online_vector(
                    &state.repo,
                    online,
                    features,
                    &point.join_keys,
                    point.timestamp,
                    UnknownEntity::EmptyWindow,
                )
            };
            let mut vector = sample(&store)?;
            if !self.live.is_empty() {
                let live = sample(&state.online)?;
                for (k, f) in features.iter().enumerate() {
                    if self.live.contains(&f.view) {
                        vector[k] = live[k].clone();
                    }
                }
            }
            out[i] = vector;
        }
        Ok(out)
    }

    /// Which records belong to which entity of which view (only what the view keeps).
    fn index(&self, state: &MockState) -> EntityIndex {
        let mut index = EntityIndex::new();
        for (i, rec) in self.records.iter().enumerate() {
            for sub in state.plan.subscriptions(rec.source) {
                if !self.views.contains(&sub.view) || !sub.keeps(rec.ts) {
                    continue;
                }
                if let Some(key) = sub.entity_key(&rec.values) {
                    index.entry((sub.view, key)).or_default().push(i);
                }
            }
        }
        index
    }

    /// Why `feature` differs at `point`.
    fn explain(
        &self,
        state: &MockState,
        index: &EntityIndex,
        feature: &ServedFeature,
        point: &SpineRow,
    ) -> Result<(Vec<Cause>, String), ServingError> {
        let view = &state.repo.feature_views[feature.view];
        if !view.online {
            return Ok((
                vec![Cause::NotOnline],
                format!("feature view `{}` is not online", view.name),
            ));
        }
        if !view.offline || self.live.contains(&feature.view) {
            return Ok((
                vec![Cause::NotOffline],
                format!(
                    "feature view `{}` is not offline or its push sources do not log offline",
                    view.name
                ),
            ));
        }
        let key = entity_key(view, &point.join_keys)?;
        let records: Vec<&Logged> = key
            .as_ref()
            .and_then(|key| index.get(&(feature.view, key.clone())))
            .map(|ix| ix.iter().map(|&i| &self.records[i]).collect())
            .unwrap_or_default();
        let jobs: Vec<jobs::KeyJob> = key
            .as_ref()
            .map(|key| {
                self.jobs
                    .iter()
                    .filter(|j| j.view == feature.view)
                    .filter_map(|j| j.for_key(key))
                    .collect()
            })
            .unwrap_or_default();
        Ok(cause::diagnose(
            &records,
            &jobs,
            reads(view, feature, point.timestamp),
            point.timestamp,
        ))
    }
}

/// What `feature` reads at `t`: its window's event times, as the engine bounds them.
fn reads(view: &FeatureView, feature: &ServedFeature, t: i64) -> Reads {
    let ViewKind::Aggregates {
        features,
        mode,
        aggregation_interval,
    } = &view.kind
    else {
        return Reads::Attribute;
    };
    let short = feature
        .name
        .split_once('.')
        .map_or(feature.name.as_str(), |(_, n)| n);
    let Some(agg) = features.iter().find(|f| f.name == short) else {
        return Reads::Attribute;
    };
    let (w, off) = (i128::from(agg.window), i128::from(agg.offset));
    let (lo, hi) = match (mode, aggregation_interval) {
        (StreamProcessingMode::TimeInterval, Some(i)) => {
            let fl = i128::from(t - t.rem_euclid((*i).max(1)));
            (fl - w + off, fl + off - 1)
        }
        (StreamProcessingMode::Continuous, _) | (StreamProcessingMode::TimeInterval, None) => {
            (i128::from(t) - w + off + 1, i128::from(t) + off)
        }
    };
    let clamp = |x: i128| i64::try_from(x.clamp(i128::from(i64::MIN), i128::from(i64::MAX)));
    match (clamp(lo), clamp(hi)) {
        (Ok(lo), Ok(hi)) => Reads::Window { lo, hi },
        _ => Reads::Window {
            lo: i64::MIN,
            hi: t,
        },
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) if f.is_finite() => Some(*f),
        _ => None,
    }
}

/// Equality for feature values: floats within `FLOAT_TOLERANCE`, lists element by element.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => {
            x == y
                || (x - y).abs() <= FLOAT_TOLERANCE * x.abs().max(y.abs())
                || (x.is_nan() && y.is_nan())
        }
        (Value::Array(x), Value::Array(y)) | (Value::Struct(x), Value::Struct(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        _ => a == b,
    }
}

impl ConsistencyReport {
    /// A Markdown rendering for people: a verdict, the per-feature table, the differing rows.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "# Online/offline consistency: `{}`\n\n{} points, arrival at {}; {}\n\n| feature | mismatch | missing | extra | SMAPE |\n|---|---:|---:|---:|---:|\n",
            self.feature_service,
            self.points,
            self.arrival,
            if self.consistent { "online equals offline for every feature." } else { "**online and offline differ**." }
        );
        for f in &self.features {
            let smape = f.smape.map_or("-".to_owned(), |s| format!("{s:.6}"));
            out.push_str(&format!(
                "| {} | {:.4} | {:.4} | {:.4} | {smape} |\n",
                f.feature, f.mismatch_rate, f.missing_rate, f.extra_rate
            ));
        }
        if !self.differences.is_empty() {
            out.push_str("\n## First differing rows\n\n| entity | time | feature | online | offline | cause | detail |\n|---|---|---|---|---|---|---|\n");
            for d in &self.differences {
                let causes: Vec<&str> = d.causes.iter().map(|c| c.as_str()).collect();
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {} |\n",
                    Json::Object(d.join_keys.clone()),
                    d.timestamp,
                    d.feature,
                    d.online,
                    d.offline,
                    causes.join(", "),
                    d.detail.replace('|', "\\|")
                ));
            }
        }
        out
    }
}
