//! Why online and offline differ at one point: the records of the entity, when they were pushed
//! and when they arrived, explain each differing row.

use serde::{Deserialize, Serialize};

use super::arrival::Logged;
use super::jobs::{precedes, KeyJob};
use crate::schema::format_rfc3339;

/// The reason a feature differs online and offline at a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cause {
    /// An event stamped at or before the point arrived after it: offline counts it, the feature
    /// server could not have.
    #[serde(rename = "late arrival")]
    LateArrival,
    /// An attribute row was pushed after a newer one: the online store keeps the most recently
    /// pushed row, offline takes the newest by event time.
    #[serde(rename = "pushed out of order")]
    PushedOutOfOrder,
    /// Two events of one entity share a timestamp: the online store keeps the last written,
    /// the offline log keeps both.
    #[serde(rename = "same key and timestamp replaced online")]
    SameKeyAndTimestamp,
    /// An attribute row stamped after the point had already arrived (its arrival time is before
    /// its event time) and was served online; offline it lies outside the point's window.
    #[serde(rename = "outside window online only")]
    OutsideWindowOnlineOnly,
    /// A batch job that ran after the point materialized part of what the feature reads:
    /// offline reads the job's rows, the feature server could not have had them.
    #[serde(rename = "batch job ran after the point")]
    BatchJobAfterPoint,
    /// A record arrived after the batch job that materialized its interval: online serves it,
    /// offline reads the job's rows instead (the skew Tecton documents for stream data too late
    /// for its batch job).
    #[serde(rename = "arrived after its batch job")]
    AfterBatchJob,
    /// The view's records are not in the offline store (the view is not offline, or its push
    /// sources do not log offline): offline retrieval finds nothing.
    #[serde(rename = "not in the offline store")]
    NotOffline,
    /// The view is not online: the feature server has nothing to serve.
    #[serde(rename = "not served online")]
    NotOnline,
    /// None of the above: a defect of the mock; please report it.
    #[serde(rename = "unexplained")]
    Unexplained,
}

impl Cause {
    /// The cause as the report spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Cause::LateArrival => "late arrival",
            Cause::PushedOutOfOrder => "pushed out of order",
            Cause::SameKeyAndTimestamp => "same key and timestamp replaced online",
            Cause::OutsideWindowOnlineOnly => "outside window online only",
            Cause::BatchJobAfterPoint => "batch job ran after the point",
            Cause::AfterBatchJob => "arrived after its batch job",
            Cause::NotOffline => "not in the offline store",
            Cause::NotOnline => "not served online",
            Cause::Unexplained => "unexplained",
        }
    }
}

/// What a differing feature reads at point `t`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Reads {
    /// An attribute: one row.
    Attribute,
    /// An aggregate: the events stamped in `[lo, hi]` (inclusive).
    Window {
        /// The earliest event time in the window.
        lo: i64,
        /// The latest event time in the window.
        hi: i64,
    },
}

impl Reads {
    /// Whether an event stamped `ts` is read at point `t`.
    fn holds(self, ts: i64, t: i64) -> bool {
        match self {
            Reads::Attribute => ts <= t,
            Reads::Window { lo, hi } => lo <= ts && ts <= hi,
        }
    }

    /// Whether the interval `[start, end)` meets what is read at point `t`.
    fn meets(self, start: i64, end: i64, t: i64) -> bool {
        let (lo, hi) = match self {
            Reads::Attribute => (i64::MIN, t),
            Reads::Window { lo, hi } => (lo, hi),
        };
        start <= hi && lo < end
    }
}

/// The causes (most direct first: the records' own, then the batch jobs') and a sentence naming
/// the records involved, for one entity and one feature at point `t`. `records` are the
/// entity's records the view keeps, in the order the online store applied them; `jobs` the
/// batch jobs' outputs for the entity, in the order they ran.
pub(super) fn diagnose(
    records: &[&Logged],
    jobs: &[KeyJob],
    reads: Reads,
    t: i64,
) -> (Vec<Cause>, String) {
    let mut causes = Vec::new();
    let mut details = Vec::new();
    let at = format_rfc3339;
    let arrived: Vec<&Logged> = records.iter().copied().filter(|r| r.arrival <= t).collect();
    // Offline reads a batch job's rows instead of the records in its interval.
    let read_offline = |r: &Logged| !jobs.iter().any(|j| j.covers(r.ts));
    if let Reads::Window { lo, hi } = reads {
        let inside = |r: &Logged| lo <= r.ts && r.ts <= hi;
        let late: Vec<&&Logged> = records
            .iter()
            .filter(|r| inside(r) && r.arrival > t && read_offline(r))
            .collect();
        if let Some(first) = late.first() {
            causes.push(Cause::LateArrival);
            details.push(format!(
                "{} event(s) in the window arrived after the point (first: stamped {}, arrived {})",
                late.len(),
                at(first.ts),
                at(first.arrival)
            ));
        }
        let mut stamped: Vec<i64> = arrived.iter().filter(|r| inside(r)).map(|r| r.ts).collect();
        stamped.sort_unstable();
        if let Some(ts) = stamped.windows(2).find(|w| w[0] == w[1]).map(|w| w[0]) {
            causes.push(Cause::SameKeyAndTimestamp);
            details.push(format!(
                "several events stamped {}: online keeps the last written, offline all",
                at(ts)
            ));
        }
    } else {
        // Online serves the last applied row; offline the newest row stamped at or before `t`.
        let online = arrived.last();
        let offline = records
            .iter()
            .filter(|r| r.ts <= t && read_offline(r))
            .max_by_key(|r| (r.ts, r.seq));
        if let Some(best) = offline.filter(|r| r.arrival > t) {
            causes.push(Cause::LateArrival);
            details.push(format!(
                "the row stamped {} arrived {}, after the point",
                at(best.ts),
                at(best.arrival)
            ));
        }
        if let Some(row) = online.filter(|r| r.ts > t) {
            causes.push(Cause::OutsideWindowOnlineOnly);
            details.push(format!(
                "the row stamped {} arrived {}, before its event time, and is served online",
                at(row.ts),
                at(row.arrival)
            ));
        }
        if let (Some(row), Some(best)) = (online, offline) {
            if best.arrival <= t && row.ts < best.ts {
                causes.push(Cause::PushedOutOfOrder);
                details.push(format!(
                    "the row stamped {} was pushed after the newer row stamped {}",
                    at(row.ts),
                    at(best.ts)
                ));
            } else if row.ts == best.ts && row.seq != best.seq {
                causes.push(Cause::SameKeyAndTimestamp);
                details.push(format!(
                    "two rows stamped {}: online keeps the one applied last",
                    at(row.ts)
                ));
            }
        }
    }
    if let Some(job) = jobs
        .iter()
        .find(|j| j.ran_at > t && reads.meets(j.start, j.end, t))
    {
        causes.push(Cause::BatchJobAfterPoint);
        details.push(format!(
            "the batch job of [{}, {}) ran {}, after the point; offline reads its {} row(s)",
            at(job.start),
            at(job.end),
            at(job.ran_at),
            job.rows.len()
        ));
    }
    // A record online at `t` that a job over its time replaced offline: such a job reached the
    // store before it, and none did between its arrival and the point. An attribute view serves
    // one row: the last applied.
    let online: Vec<&Logged> = match reads {
        Reads::Attribute => arrived.last().copied().into_iter().collect(),
        Reads::Window { .. } => arrived.clone(),
    };
    let overridden = online.into_iter().find(|r| {
        let over = || jobs.iter().filter(|j| j.covers(r.ts));
        let before = |j: &&KeyJob| precedes(j.arrival(), (r.arrival, r.seq));
        reads.holds(r.ts, t)
            && over().any(|j| before(&j))
            && !over().any(|j| !before(&j) && j.ran_at <= t)
    });
    if let Some(r) = overridden {
        causes.push(Cause::AfterBatchJob);
        details.push(format!(
            "the record stamped {} arrived {}, after the batch job of its interval; online serves it, offline reads the job's rows",
            at(r.ts),
            at(r.arrival)
        ));
    }
    if let Reads::Attribute = reads {
        // A job that ran by `t` wrote a row stamped after it, and no record came after the job.
        let future = jobs.iter().rev().find(|j| {
            j.ran_at <= t
                && j.rows.last().is_some_and(|&ts| ts > t)
                && !arrived
                    .iter()
                    .any(|r| precedes(j.arrival(), (r.arrival, r.seq)))
        });
        if let Some(job) = future.filter(|_| !causes.contains(&Cause::OutsideWindowOnlineOnly)) {
            causes.push(Cause::OutsideWindowOnlineOnly);
            details.push(format!(
                "the batch job of [{}, {}) ran {} and wrote the row stamped {}, after the point, which is served online",
                at(job.start),
                at(job.end),
                at(job.ran_at),
                at(job.rows.last().copied().unwrap_or(job.start))
            ));
        }
    }
    if let (Reads::Attribute, Some(row)) = (reads, arrived.last()) {
        // The newest batch row at or before `t` that offline reads, when it reached the online
        // store before an older record that is served instead.
        let newer = final_rows(jobs)
            .into_iter()
            .filter(|&(ts, job)| ts <= t && ts > row.ts && job.ran_at <= t)
            .max_by_key(|&(ts, _)| ts)
            .filter(|(_, job)| precedes(job.arrival(), (row.arrival, row.seq)));
        if let Some((ts, job)) = newer {
            if !causes.contains(&Cause::PushedOutOfOrder) {
                causes.push(Cause::PushedOutOfOrder);
                details.push(format!(
                    "the row stamped {} was pushed after the newer batch row stamped {} (its job ran {})",
                    at(row.ts),
                    at(ts),
                    at(job.ran_at)
                ));
            }
        }
    }
    if causes.is_empty() {
        causes.push(Cause::Unexplained);
    }
    (causes, details.join("; "))
}

/// The batch rows offline reads for one entity, each with the job that wrote it: every job's
/// rows replace the earlier ones in its window, in run order.
fn final_rows(jobs: &[KeyJob]) -> Vec<(i64, &KeyJob)> {
    let mut rows: Vec<(i64, &KeyJob)> = Vec::new();
    for job in jobs {
        rows.retain(|&(ts, _)| !job.covers(ts));
        rows.extend(job.rows.iter().map(|&ts| (ts, job)));
    }
    rows
}
