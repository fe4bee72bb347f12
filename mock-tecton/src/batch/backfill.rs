//! The start-up backfill: each view reading a batch source materializes, in one job, the
//! window from the first time it can need ([`crate::decisions::backfill_start`]) to the last
//! `batch_schedule` boundary at or before now; scheduled jobs carry on from that boundary.

use super::schedule::{run_windows, JobKind};
use super::{floor, lock};
use crate::decisions;
use crate::state::MockState;

/// Runs every view's backfill at the clock's current time.
pub(crate) fn run(state: &MockState) {
    let now = state.clock.now();
    for slot in &state.batch.views {
        let mut vb = lock(slot);
        let view = &state.repo.feature_views[vb.view];
        let end = floor(now, vb.schedule);
        let mut start = decisions::backfill_start(view);
        if start == i64::MIN {
            // No feature_start_time: from the earliest row.
            start = vb
                .inputs
                .iter()
                .filter_map(|i| {
                    let s = state.batch.sources[i.source]
                        .read()
                        .unwrap_or_else(|p| p.into_inner());
                    s.rows.iter().map(|r| r.ts).min()
                })
                .min()
                .unwrap_or(end);
        }
        if start < end {
            run_windows(state, &mut vb, &[(start, end)], JobKind::Backfill, |_| now);
        }
        vb.next_start = Some(end);
    }
}
