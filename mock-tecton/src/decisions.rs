//! Every choice the mock makes where Tecton's behaviour is not documented, in one place.
//!
//! Each item names the gap and what the mock does about it. When Tecton's behaviour
//! becomes known, this is the file to change.

use axum::http::StatusCode;
use serde_json::Value as Json;

/// Records per push source in one ingest request. Tecton documents no hard limit; its Kafka
/// Connect sink recommends 10 and Snowflake's successor API enforces 10, so the mock does too
/// (configurable). Over the limit is a 400 `RequestValidationError`.
pub const DEFAULT_RECORDS_PER_SOURCE: usize = 10;

/// Largest request body accepted before answering 413. Tecton documents none for ingest; the
/// feature server caps request data at 4 MB, which the mock uses for both.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Journal entries kept before the oldest are let go (counters keep counting).
pub const DEFAULT_JOURNAL_CAPACITY: usize = 100_000;

/// Request and response bodies longer than this are cut in the journal (the size is still kept).
pub const JOURNAL_BODY_BYTES: usize = 64 * 1024;

/// JSON nesting deeper than this is refused with a 400 before any validation.
pub const MAX_JSON_DEPTH: usize = 64;

/// Int64/Int32 fields accept JSON integers only: `"1"` and `1.0` are schema mismatches. Tecton's
/// examples send numbers; coercion is unconfirmed, and a strict mock catches sinks that
/// stringify numbers.
pub fn ingest_int(json: &Json) -> Option<i64> {
    json.as_i64()
}

/// Float64/Float32 fields accept any JSON number. The strings `"NaN"`, `"Infinity"` and
/// `"-Infinity"` (the feature server's output encoding) are refused on ingest: acceptance is
/// unconfirmed and a sink that emits them is likely sending garbage.
pub fn ingest_float(json: &Json) -> Option<f64> {
    json.as_f64()
}

/// How long a `hang` fault holds a request when its rule gives no `max_ms`.
pub const DEFAULT_HANG_MS: u64 = 60_000;

/// The Stream Ingest API error body of an injected status: `errorType` and default message.
/// Tecton documents the 429 and 5xx causes (throttling while scaling, internal errors,
/// server-side timeouts) but not their bodies; the `requestError` shape is used for all.
pub fn injected_error(status: StatusCode) -> (&'static str, &'static str) {
    use error_type::*;
    match status.as_u16() {
        400 => (REQUEST_VALIDATION, "The request is invalid"),
        401 => (UNAUTHENTICATED, "invalid 'Tecton-key' authorization header"),
        403 => (
            PERMISSION_DENIED,
            "Not authorized to write to this workspace",
        ),
        404 => (NOT_FOUND, "Not found"),
        405 => (METHOD_NOT_ALLOWED, "Method not allowed"),
        413 => (PAYLOAD_TOO_LARGE, "The request body is too large"),
        429 => (
            RESOURCE_EXHAUSTED,
            "Too many requests: the service is scaling up, please retry later",
        ),
        502 => (INTERNAL, "Bad gateway"),
        503 => (INTERNAL, "Service temporarily unavailable"),
        504 => (INTERNAL, "Timed out"),
        s if s >= 500 => (
            INTERNAL,
            "Internal Server Error. Please contact Tecton Support",
        ),
        _ => (REQUEST_VALIDATION, "The request failed"),
    }
}

/// The feature server's message for an injected status; Tecton's client fixtures give the
/// texts for 429, 503 and 504.
pub fn injected_serving_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        429 => "GetFeatures exceeded the concurrent request limit, please retry later",
        503 => "503 Service Temporarily Unavailable",
        504 => "Timed out",
        s if s >= 500 => "Internal error",
        _ => "The request failed",
    }
}

/// `errorType` values for ingest failures that Tecton does not document. Only
/// `RequestValidationError` and `TectonObjectValidationError` are documented.
pub mod error_type {
    /// Documented: a malformed request.
    pub const REQUEST_VALIDATION: &str = "RequestValidationError";
    /// Documented: a record that fails validation against a feature view.
    pub const TECTON_OBJECT_VALIDATION: &str = "TectonObjectValidationError";
    /// 401: the `Authorization` header is missing or the key is unknown.
    pub const UNAUTHENTICATED: &str = "UnauthenticatedError";
    /// 403: the key's role may not write to the workspace.
    pub const PERMISSION_DENIED: &str = "PermissionDeniedError";
    /// 404: no such workspace, push source, or no online feature view subscribed to it.
    pub const NOT_FOUND: &str = "NotFoundError";
    /// 405: the path exists but not for this method.
    pub const METHOD_NOT_ALLOWED: &str = "MethodNotAllowedError";
    /// 413: the body is larger than the configured limit.
    pub const PAYLOAD_TOO_LARGE: &str = "PayloadTooLargeError";
    /// 429: throttled (only ever produced by an injected fault).
    pub const RESOURCE_EXHAUSTED: &str = "ResourceExhaustedError";
    /// 5xx: internal error (only ever produced by an injected fault).
    pub const INTERNAL: &str = "InternalError";
}

/// The defaults of the `tecton` latency and capacity profile (`serve --profile tecton`), each
/// with where it comes from. Tecton publishes ranges and rules of thumb, not distributions: where
/// it gives a range the profile takes its middle, and where it gives nothing the choice is
/// marked as the mock's own. Every value can be changed in a profile file.
pub mod tecton_profile {
    /// Median ingest latency for a request of one record, in ms. Tecton's "Stream Ingest API
    /// performance" page reports p50 of 55–57 ms for single-record requests at 100–1,000
    /// requests/s (DynamoDB, online and offline writes, with a transformation):
    /// <https://docs.tecton.ai/docs/beta/defining-features/feature-views/stream-feature-view/stream-feature-view-with-rift/stream-ingest-api-performance>
    pub const INGEST_ONE_P50_MS: f64 = 55.0;
    /// p99 ingest latency for one record, in ms: the middle of the 108–165 ms range on the same
    /// page.
    pub const INGEST_ONE_P99_MS: f64 = 136.0;
    /// Median ingest latency for a request of ten records, in ms: the middle of the 82–112 ms
    /// range on the same page (20–200 requests/s).
    pub const INGEST_TEN_P50_MS: f64 = 97.0;
    /// p99 ingest latency for ten records, in ms: the middle of the 156–213 ms range on the
    /// same page.
    pub const INGEST_TEN_P99_MS: f64 = 185.0;
    /// Ingest capacity, in records/s, before the service has scaled up. Tecton documents no
    /// figure; it advises the Stream Ingest API below about 1,000 records/s and Kafka or Kinesis
    /// above ("Stream Feature View" and "Flink integration" pages:
    /// <https://docs.tecton.ai/docs/beta/defining-features/feature-views/stream-feature-view>),
    /// so the profile starts there. The mock's own choice.
    pub const INGEST_INITIAL_RECORDS_PER_S: f64 = 1_000.0;
    /// How long demand must be observed before ingest capacity follows it, in seconds. The
    /// Stream Ingest API page says only that 429s rise "during sudden increases in request
    /// volume" until the service has scaled; the profile borrows the feature server's
    /// documented autoscaling delay of 60 s ("Scaling the feature server":
    /// <https://docs.tecton.ai/docs/beta/running-in-production/scaling-feature-server>).
    pub const INGEST_SCALE_PERIOD_S: f64 = 60.0;
    /// Utilization the ingest service scales to: after each period, capacity becomes the
    /// observed demand divided by this (never below the initial capacity). The feature server
    /// scales up above 50 % concurrency utilization (same page); the profile uses 50 % too.
    pub const INGEST_TARGET_UTILIZATION: f64 = 0.5;
    /// Seconds of capacity a burst may use at once, for ingest and serving: a request is
    /// refused when it would take the service more than this far ahead of its rate. The mock's
    /// own choice (Tecton documents none).
    pub const BURST_S: f64 = 1.0;
    /// Feature server capacity in requests/s (rows of a batch request count one each). Tecton's
    /// limits page gives "roughly 200 QPS" as the default provisioned capacity
    /// (<https://docs.tecton.ai/docs/beta/running-in-production/limits>); beyond it the server
    /// answers 429 ("Monitoring online serving":
    /// <https://docs.tecton.ai/docs/beta/running-in-production/monitoring/online-serving>),
    /// without `Retry-After`.
    pub const SERVING_CAPACITY_QPS: f64 = 200.0;
    /// A feature server request not answered after this many ms gets a 504: Tecton's default
    /// request timeout of 2 s ("Monitoring online serving" above, and "Latency budgets":
    /// <https://docs.tecton.ai/docs/beta/reading-feature-data/reading-feature-data-for-inference/latency-budgets>).
    pub const SERVING_TIMEOUT_MS: u64 = 2_000;
    /// Median feature server latency in ms: compute p50 7 ms at 10k QPS without cache
    /// ("Caching": <https://docs.tecton.ai/docs/beta/running-in-production/caching>) plus a
    /// DynamoDB read p50 of 3–4 ms ("Selecting your online store":
    /// <https://docs.tecton.ai/docs/beta/setting-up-tecton/connecting-an-online-store-aws/selecting-your-online-store>).
    pub const SERVING_P50_MS: f64 = 10.5;
    /// p99 feature server latency in ms: compute p99 29 ms plus a DynamoDB read p99 of
    /// 20–25 ms (same pages). Adding percentiles overstates the sum's p99 a little, which
    /// errs on the slow side.
    pub const SERVING_P99_MS: f64 = 51.5;
    /// Fixed cost of each Spark micro-batch, in ms, on top of the trigger interval. Not a
    /// Tecton figure: measured by running a small Structured Streaming job (watermark,
    /// 10-minute tumbling window, sum and count, update mode) on local Spark, which took about
    /// 0.8 s per micro-batch whatever the batch size.
    pub const SPARK_BATCH_OVERHEAD_MS: u64 = 800;
}

/// Partitions of each in-memory topic (the producer may name any partition; a real broker's
/// topic brings its own count). Four lets per-partition order show without a large fan-out.
pub const DEFAULT_TOPIC_PARTITIONS: u32 = 4;

/// Per-event entries (materialized or dropped records) kept in each stream's journal.
pub const DEFAULT_STREAM_JOURNAL_EVENTS: usize = 10_000;

/// Trigger of a CONTINUOUS view's stream job: `Trigger.ProcessingTime("0 seconds")`, a new
/// micro-batch as soon as the previous one completes and new data exists (Tecton's stream job).
pub const CONTINUOUS_TRIGGER: i64 = 0;

/// How long a micro-batch takes, which is what Tecton's 0 s trigger turns on: with
/// `Trigger.ProcessingTime(0)` Spark starts the next micro-batch as soon as the previous one has
/// completed (if new data exists), so a CONTINUOUS view's batch holds what arrived while the
/// previous one ran, and its rows wait that long. Tecton publishes no batch duration. The mock
/// gives every micro-batch a duration of `batch_overhead` plus `row_cost` per input row
/// ([`crate::stream::StreamConfig`]); rows are servable at its end and the query's next batch
/// starts no earlier. `tecton-sim stream simulate` and the `tecton` profile default to this
/// value, [`tecton_profile::SPARK_BATCH_OVERHEAD_MS`] (local Spark took about 0.8 s per
/// micro-batch whatever its size, so the default per-row cost is 0); `serve` without a profile
/// uses 0, so that on the virtual clock a test sees CONTINUOUS rows servable at once.
pub const STREAM_BATCH_DURATION: std::time::Duration =
    std::time::Duration::from_millis(tecton_profile::SPARK_BATCH_OVERHEAD_MS);

/// Default per-row processing time of a micro-batch (see [`STREAM_BATCH_DURATION`]).
pub const STREAM_ROW_COST: std::time::Duration = std::time::Duration::ZERO;

/// Trigger of every other stream job (TIME_INTERVAL and attribute views): 30 s (Tecton's stream
/// job). Attribute views have no processing mode; Tecton defaults non-push stream views to
/// TIME_INTERVAL, so they get its trigger.
pub const TIME_INTERVAL_TRIGGER: i64 = 30 * crate::duration::SECOND;

/// Stream deduplication. Tecton calls `dropDuplicates(deduplication_columns)` before it adds
/// the watermark, yet documents duplicates as dropped "within the watermark delay". The mock
/// holds each key with the event time of its first row and lets it go once that time is at or
/// before the watermark (state stays bounded); deduplication itself drops no row as late.
/// Without a watermark (threshold 0) keys are held for the life of the stream.
pub const STREAM_DEDUP_EVICTED_BY_WATERMARK: bool = true;

/// Queries that share a deduplication state. Tecton runs one Spark job per stream feature view,
/// each with its own `dropDuplicates` state. Two views of one source with the same trigger, join
/// keys, deduplication columns and watermark delay read the same micro-batches and decide every
/// duplicate alike, so the mock runs their micro-batches together and holds their keys once (a
/// 24 h watermark at 1k records/s holds some 86 million keys per state). Each query still
/// reports the state as its own (`numRowsTotal`). On the virtual clock nothing observable
/// changes; on the wall clock the group's micro-batch takes the time of all its members' work.
pub const STREAM_QUERIES_SHARE_DEDUP_STATE: bool = true;

/// What a stream writes to the offline store. Tecton's offline store is written from the stream
/// source's batch source, "an accurate historical record of the stream": every record, including
/// those the stream job dropped as late or duplicate. The mock appends every record that matches
/// the schema once, when the first query reads it; records that do not match are not stored.
pub const STREAM_OFFLINE_KEEPS_DROPPED_ROWS: bool = true;

/// No-data micro-batches. Spark runs an extra micro-batch without new data when the watermark
/// moved and state could be evicted (`spark.sql.streaming.noDataMicroBatches.enabled`). The mock
/// follows Tecton's description of the trigger instead: no micro-batch without new data. Eviction
/// and the late cut-off then advance with the next data micro-batch; `stream replay` can declare
/// an empty micro-batch explicitly.
pub const STREAM_NO_DATA_BATCHES: bool = false;

/// Trigger precedence: a stream source's `trigger_interval` in the repository, else `serve
/// --trigger-interval`, else Tecton's defaults ([`CONTINUOUS_TRIGGER`], [`TIME_INTERVAL_TRIGGER`]).
pub const STREAM_TRIGGER_SOURCE_FIRST: bool = true;

/// Whether an attribute view keeps a row stamped `ts`. Tecton's point-in-time query removes
/// feature rows stamped before `feature_start_time` (its `RespectFeatureStartTimeNode`); the mock
/// ignores such a row everywhere, so it is never served online and never found by retrieval.
///
/// Aggregations are different: their offline store holds partial aggregates from before the
/// start so that the first served aggregate is complete. The mock stores and aggregates every
/// event whatever its time, and instead nulls every aggregate feature (count included) while
/// the request time is before the start (TIME_INTERVAL: while `fl(t)` is), online and offline
/// alike (`crate::engine::SeriesSpec::before_start`).
pub fn attribute_row_kept(feature_start_time: Option<i64>, ts: i64) -> bool {
    feature_start_time.is_none_or(|fst| ts >= fst)
}
/// The offline store writes a push source's waiting rows to a Parquet file once this many have
/// arrived. Large enough that a file is worth opening, small enough to bound the memory tail.
pub const DEFAULT_OFFLINE_FLUSH_ROWS: usize = 65_536;

/// Rows of one push source that may wait in memory, as a multiple of the flush size. A write that
/// finds this many waiting (the flusher is behind the ingest rate) writes them to disk itself
/// before it returns, so a fast producer is slowed to the disk's pace instead of growing the
/// heap without bound.
pub const OFFLINE_MAX_WAITING_FLUSHES: usize = 4;

/// The offline store also writes waiting rows at least this often, so a quiet source reaches disk
/// soon.
pub const DEFAULT_OFFLINE_FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Batch schedule of a feature view reading a batch source: its `batch_schedule`, else Tecton's
/// default for its kind: the `aggregation_interval` of a TIME_INTERVAL view, one day for a
/// CONTINUOUS view (Tecton's SDK fixes CONTINUOUS views at one day whatever is set; the mock
/// honours an explicit `batch_schedule` there so that tests can use short schedules), and one
/// day for an attribute view (Tecton documents no default for non-aggregate stream views; its
/// batch views default to a day).
pub fn batch_schedule(view: &crate::repo::FeatureView) -> i64 {
    use crate::repo::{StreamProcessingMode, ViewKind};
    match (&view.kind, view.batch_schedule) {
        (_, Some(schedule)) => schedule,
        (
            ViewKind::Aggregates {
                mode: StreamProcessingMode::TimeInterval,
                aggregation_interval: Some(iv),
                ..
            },
            None,
        ) => *iv,
        (
            ViewKind::Attributes { .. }
            | ViewKind::Aggregates {
                mode: StreamProcessingMode::Continuous,
                ..
            }
            | ViewKind::Aggregates {
                mode: StreamProcessingMode::TimeInterval,
                aggregation_interval: None,
                ..
            },
            None,
        ) => crate::duration::DAY,
    }
}

/// Delay between the end of a batch window and its job: none. Tecton runs a window's job after
/// the window has passed plus the source's `data_delay`, which the repository does not model, so
/// the job for `[start, end)` runs as soon as the clock reaches `end` (on the virtual clock, when
/// the clock is moved there; on the wall clock, within a fraction of a second).
pub const BATCH_DATA_DELAY: i64 = 0;

/// What a source's batch source holds: the rows of its `batch_config` file, present from the
/// moment the mock starts, and rows appended later through `POST /_mock/batch/sources/{source}/rows`
/// (present from their append). Records pushed to the Stream Ingest API or produced to a topic
/// do not enter it: in Tecton the batch source is a separate table that the user's own pipeline
/// fills, "expected to align" with the stream, and a test that wants them there appends them.
pub const BATCH_SOURCE_IS_SEPARATE: bool = true;

/// The backfill at start covers one window, from the first time a view can need to the last
/// batch-schedule boundary at or before now (Tecton backfills from `feature_start_time` to the
/// time materialization is enabled, and its first incremental job covers the next whole
/// schedule window; its cold-start example writes online "up until" the last boundary).
/// An attribute view starts at `feature_start_time` (earlier rows are ignored,
/// [`attribute_row_kept`]); an aggregate view starts one reach (longest window plus offset plus
/// a tile) earlier, since aggregates count events from before the start so the first served
/// value is complete. Tecton splits long backfills into several jobs; the mock runs one.
pub fn backfill_start(view: &crate::repo::FeatureView) -> i64 {
    match (view.feature_start_time, view.series_spec()) {
        (None, _) => i64::MIN,
        (Some(fst), None) => fst,
        (Some(fst), Some(spec)) => fst.saturating_sub(spec.reach()),
    }
}

/// Data that reaches the batch source after the job of its window ran is not in that job's
/// output, and later scheduled jobs do not pick it up: each covers only its own window. Tecton
/// documents exactly this ("Data that arrives after the batch job has run will not be written to
/// the offline store by future jobs") and fixes it with an overwrite job, which is
/// `POST /_mock/batch/{view}/run` with the window here.
pub const BATCH_LATE_DATA_NEEDS_RERUN: bool = true;

/// Batch precedence. Tecton documents that "batch data always takes precedence over streaming
/// data (when the entity and timestamp match)", not how it applies to tiles. The mock applies it
/// per entity key and materialized interval: for each key in a job's output, the job's rows
/// replace every event the stream or the Stream Ingest API wrote for that key in `[start, end)`,
/// online (the key's events, so its TIME_INTERVAL tiles, are rebuilt from the batch rows) and
/// offline (retrieval reads the batch rows instead of the logged ones). A key absent from the
/// output keeps its stream data. An attribute view's online row becomes the job's last row of
/// the interval ("Tecton will write the last value"), unless the online row is already stamped
/// at or after the interval's end. Within a job every row is kept, duplicates included.
pub const BATCH_PRECEDENCE_PER_KEY: bool = true;

/// A batch file that cannot be read at all (missing, unreadable, not in its format, a CSV or
/// Parquet file without a schema column) stops the mock from starting, naming the file. A row
/// that does not fit the schema is skipped, counted and listed with its `file:line` (Parquet:
/// row number), like an invalid stream record, so one bad row does not hide the rest.
pub const BATCH_BAD_ROWS_SKIPPED: bool = true;

/// In the consistency check's replay, a batch job's output and a record that reach the online
/// store at the same mock time are applied in the order the mock handled them: a job numbers its
/// rows when it runs, from the sequence that numbers records as they are ingested, so the
/// record's number and the job's first row number say which came first. The running mock
/// applies a job as it runs, so a record acknowledged after it at the same instant is not
/// replaced (it shows online, as a record too late for its job does) and one acknowledged before
/// it is. With an arrival rule other than ingestion time (event time, a field), the same order
/// breaks ties.
pub const BATCH_JOB_AND_RECORD_AT_ONE_INSTANT: bool = true;

/// Refused rows listed per batch source (the count is kept whatever the number).
pub const BATCH_ROW_ERRORS_KEPT: usize = 100;

/// Batch job runs listed by `GET /_mock/batch/jobs` (counters keep counting).
pub const BATCH_JOBS_KEPT: usize = 1_000;

/// Columns of a batch file that the source schema does not name are ignored: a batch table
/// commonly carries more columns than its stream (partition columns, load times).
pub const BATCH_EXTRA_COLUMNS_IGNORED: bool = true;

/// An empty CSV cell is null, for every type (Spark's CSV reader's default `nullValue`).
pub const BATCH_CSV_EMPTY_IS_NULL: bool = true;
