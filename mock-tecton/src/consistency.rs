//! Online/offline consistency: are the features served online at time `t` the point-in-time
//! features training data would get for `t`?
//!
//! For each (entity, time) point, the online value (the online store evaluated at `t`; an entity
//! it has never seen reads as empty windows, as offline retrieval reports it) is compared with
//! the offline value. Per feature the report gives Chronon's rates — mismatch (the values differ),
//! missing (online null, offline not), extra (online not null, offline null) — and for numbers
//! the SMAPE `Σ|a−b| / Σ(|a|+|b|)`, plus the first differing rows, so a skew can be traced to
//! its cause (a reordering sink, a duplicated event, a late event).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::retrieval::{offline_features, SpineRow};
use crate::schema::{format_rfc3339, Value};
use crate::serving::{online_vector, served_features, ServingError, UnknownEntity};
use crate::state::MockState;

/// Relative tolerance for comparing floats: both sides run the same arithmetic, so only
/// summation order can differ.
pub const FLOAT_TOLERANCE: f64 = 1e-9;

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
    /// What the online store serves.
    pub online: Json,
    /// What point-in-time retrieval gives.
    pub offline: Json,
}

/// The consistency of one feature service over a set of points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyReport {
    /// The feature service.
    pub feature_service: String,
    /// Points compared.
    pub points: usize,
    /// True when every feature matched at every point.
    pub consistent: bool,
    /// Per feature, in serving order.
    pub features: Vec<FeatureConsistency>,
    /// The first differing rows, in point order then feature order.
    pub differences: Vec<DifferingRow>,
}

/// Compares online and offline features of `service` at `points`, listing up to `max_rows`
/// differing rows.
pub fn check(
    state: &MockState,
    service: &str,
    points: &[SpineRow],
    max_rows: usize,
) -> Result<ConsistencyReport, ServingError> {
    let fs = state
        .repo
        .feature_service(service)
        .ok_or_else(|| ServingError::new(404, format!("no feature service named `{service}`")))?;
    let features = served_features(&state.repo, fs);
    let offline = offline_features(state, &features, points)?;
    let mut stats: Vec<(usize, usize, usize, f64, f64, bool)> =
        vec![(0, 0, 0, 0.0, 0.0, false); features.len()];
    let mut differences = Vec::new();
    for (point, off) in points.iter().zip(&offline) {
        let on = online_vector(
            &state.repo,
            &state.online,
            &features,
            &point.join_keys,
            point.timestamp,
            UnknownEntity::EmptyWindow,
        )?;
        for (i, f) in features.iter().enumerate() {
            let (a, b) = (&on[i].value, &off[i].value);
            let st = &mut stats[i];
            if !same(a, b) {
                st.0 += 1;
                if differences.len() < max_rows {
                    differences.push(DifferingRow {
                        join_keys: point.join_keys.clone(),
                        timestamp: format_rfc3339(point.timestamp),
                        feature: f.name.clone(),
                        online: a.to_plain_json(),
                        offline: b.to_plain_json(),
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
        consistent: features.iter().all(|f| f.mismatch_rate == 0.0),
        features,
        differences,
    })
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) if f.is_finite() => Some(*f),
        _ => None,
    }
}

/// Equality for feature values: floats within [`FLOAT_TOLERANCE`], lists element by element.
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
            "# Online/offline consistency: `{}`\n\n{} points; {}\n\n| feature | mismatch | missing | extra | SMAPE |\n|---|---:|---:|---:|---:|\n",
            self.feature_service,
            self.points,
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
            out.push_str("\n## First differing rows\n\n| entity | time | feature | online | offline |\n|---|---|---|---|---|\n");
            for d in &self.differences {
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} |\n",
                    Json::Object(d.join_keys.clone()),
                    d.timestamp,
                    d.feature,
                    d.online,
                    d.offline
                ));
            }
        }
        out
    }
}
