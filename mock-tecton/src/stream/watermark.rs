//! Spark's event-time watermark as Tecton's stream job sets it (`withWatermark` with the stream
//! source's `watermark_delay_threshold`), and which watermark judges late rows.
//!
//! - After each micro-batch, `watermark = max event time seen − delay`, in whole milliseconds,
//!   and it only moves up. It starts at 0, so nothing is late in the first micro-batch.
//! - A threshold of 0 means no `withWatermark` at all: no row is ever late and state is kept.
//! - Late rows: Spark ≥ 3.4 filters input rows with the watermark of the *previous* micro-batch
//!   and evicts state with the current one; Spark ≤ 3.3 uses the current one for both.

/// One millisecond in nanoseconds: Spark keeps event times and watermarks in whole milliseconds.
pub(crate) const MILLISECOND: i64 = 1_000_000;

/// Which Spark rule picks the watermark that judges late rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SparkVersion {
    /// Spark ≥ 3.4: late rows are judged by the previous micro-batch's watermark.
    #[default]
    #[serde(rename = "3.4")]
    V3_4,
    /// Spark ≤ 3.3: late rows are judged by the current micro-batch's watermark.
    #[serde(rename = "3.3")]
    V3_3,
}

impl std::str::FromStr for SparkVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "3.4" | "3.5" | "4" | "4.0" => Ok(SparkVersion::V3_4),
            "3.3" | "3.2" | "3.1" | "3.0" => Ok(SparkVersion::V3_3),
            other => Err(format!(
                "unknown Spark rule `{other}`: use 3.4 (Spark 3.4 and later) or 3.3 (3.3 and earlier)"
            )),
        }
    }
}

/// One streaming query's watermark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Watermark {
    /// The delay (ns); `None` when the source's threshold is 0 (no watermark).
    delay: Option<i64>,
    /// The watermark in force for the running (or next) micro-batch (ns, whole ms).
    current: i64,
    /// The watermark that was in force for the previous micro-batch.
    previous: i64,
    /// Largest event time seen so far.
    max_seen: Option<i64>,
}

impl Watermark {
    /// A watermark with `delay` ns (0 for none), starting at 0.
    pub(crate) fn new(delay: i64) -> Self {
        Watermark {
            delay: (delay > 0).then_some(delay),
            current: 0,
            previous: 0,
            max_seen: None,
        }
    }

    /// Whether the query has a watermark at all.
    #[cfg(test)]
    pub(crate) fn is_defined(&self) -> bool {
        self.delay.is_some()
    }

    /// The watermark in force for the micro-batch about to run (or running), if defined.
    pub(crate) fn current(&self) -> Option<i64> {
        self.delay.map(|_| self.current)
    }

    /// The cut-off for late rows in the running micro-batch under `spark`'s rule: a row of a
    /// tile ending at or before it is late. `None` when there is no watermark.
    pub(crate) fn late_cutoff(&self, spark: SparkVersion) -> Option<i64> {
        self.delay.map(|_| match spark {
            SparkVersion::V3_4 => self.previous,
            SparkVersion::V3_3 => self.current,
        })
    }

    /// The cut-off for evicting state after the running micro-batch (the current watermark).
    pub(crate) fn eviction_cutoff(&self) -> Option<i64> {
        self.current()
    }

    /// Notes an event time seen by the running micro-batch.
    pub(crate) fn observe(&mut self, ts: i64) {
        self.max_seen = Some(self.max_seen.map_or(ts, |m| m.max(ts)));
    }

    /// Ends the running micro-batch: the next one runs with `max(current, max seen − delay)`,
    /// and the current one becomes the previous one. Returns the new watermark.
    pub(crate) fn advance(&mut self) -> Option<i64> {
        let delay = self.delay?;
        self.previous = self.current;
        if let Some(max) = self.max_seen {
            // Spark tracks event times in whole milliseconds.
            let candidate = max.div_euclid(MILLISECOND) * MILLISECOND - delay;
            self.current = self.current.max(candidate);
        }
        Some(self.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::MINUTE;

    #[test]
    fn starts_at_zero_and_moves_only_up_after_a_batch() {
        let mut w = Watermark::new(10 * MINUTE);
        assert_eq!(w.current(), Some(0));
        w.observe(100 * MINUTE);
        // Seeing an event does not move the watermark of the running batch.
        assert_eq!(w.current(), Some(0));
        assert_eq!(w.advance(), Some(90 * MINUTE));
        w.observe(50 * MINUTE);
        assert_eq!(w.advance(), Some(90 * MINUTE), "never moves back");
    }

    #[test]
    fn a_zero_threshold_means_no_watermark() {
        let mut w = Watermark::new(0);
        w.observe(100 * MINUTE);
        assert_eq!(w.advance(), None);
        assert_eq!(w.late_cutoff(SparkVersion::V3_4), None);
        assert!(!w.is_defined());
    }

    #[test]
    fn spark_3_4_judges_late_rows_by_the_previous_batch_and_3_3_by_the_current() {
        let mut w = Watermark::new(10 * MINUTE);
        w.observe(34 * MINUTE);
        w.advance(); // batch 1 runs with 24m; batch 0 ran with 0
        assert_eq!(w.late_cutoff(SparkVersion::V3_4), Some(0));
        assert_eq!(w.late_cutoff(SparkVersion::V3_3), Some(24 * MINUTE));
        assert_eq!(w.eviction_cutoff(), Some(24 * MINUTE));
        // After an empty batch both rules agree.
        w.advance();
        assert_eq!(w.late_cutoff(SparkVersion::V3_4), Some(24 * MINUTE));
    }

    #[test]
    fn event_times_count_in_whole_milliseconds() {
        let mut w = Watermark::new(MINUTE);
        w.observe(2 * MINUTE + 999_999); // 0.999999 ms past
        assert_eq!(w.advance(), Some(MINUTE));
    }
}
