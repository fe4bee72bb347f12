"""An Apache Beam sink for Tecton's Stream Ingest API: ``WriteToTectonStream``.

``WriteToTectonStream(config)`` is a ``PTransform`` that writes a ``PCollection`` of records
(dicts matching a Tecton push source's schema) to ``POST <endpoint>/ingest``:

* at most ``config.batch_size`` records per request (never more than 10, the per-source limit);
* retries throttling (429), server errors (5xx), 408, timeouts, connection failures and a 200
  whose body is not Tecton's success response, with capped exponential backoff and full
  jitter, never sooner than a ``Retry-After`` header asks, up to ``config.max_retries`` times;
* never retries a definite failure (400, 401, 403, 404, 413): the write fails at once with
  Tecton's error message;
* bounds every attempt, response body included, by ``config.timeout`` seconds;
* counts ``records_written``, ``write_requests`` and ``write_errors`` as Beam metrics.

See README.md in this folder for the design review the conformance suite did on it.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
import typing
import zlib

import apache_beam as beam
import requests
from apache_beam.metrics import Metrics

# Records per push source in one request: Tecton's recommended batch, and the mock's limit.
MAX_RECORDS_PER_REQUEST = 10
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 2.0
METRICS_NAMESPACE = "tecton"


@dataclasses.dataclass(frozen=True)
class TectonStreamWriteConfig:
    """Where and how to write. Field names and defaults follow the public sink design."""

    tecton_instance: str
    stream_source_name: str
    api_key: str = ""
    workspace_name: str = "prod"
    batch_size: int = 10
    max_retries: int = 3
    timeout: float = 30.0
    # Not in the design: the endpoint is https://preview.<tecton_instance>/ingest unless a base
    # URL is given here (a local mock, a proxy).
    base_url: typing.Optional[str] = None
    # Seeds the backoff jitter so a run can be replayed.
    seed: int = 0
    # Not in the design: the join key fields that decide which records must stay in order, and
    # how many shards write in parallel (records of one key always share a shard).
    key_fields: typing.Tuple[str, ...] = ()
    shards: int = 4

    def __post_init__(self):
        if not self.tecton_instance and not self.base_url:
            raise ValueError("tecton_instance is required")
        if not self.stream_source_name:
            raise ValueError("stream_source_name is required")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.max_retries < 0:
            raise ValueError("max_retries must not be negative")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.shards < 1:
            raise ValueError("shards must be at least 1")

    @property
    def endpoint(self) -> str:
        base = self.base_url or f"https://preview.{self.tecton_instance}"
        return base.rstrip("/") + "/ingest"

    @property
    def records_per_request(self) -> int:
        return min(self.batch_size, MAX_RECORDS_PER_REQUEST)


class TectonWriteError(RuntimeError):
    """Some records could not be written; the message says which and why."""


class _AttemptFailed(Exception):
    def __init__(self, text, retryable, retry_after=None):
        super().__init__(text)
        self.retryable = retryable
        self.retry_after = retry_after


def error_message(body: bytes) -> str:
    """What an error body says: Tecton's errorType/errorMessage, or the start of the body."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        err = doc.get("requestError")
        if isinstance(err, dict):
            return f"{err.get('errorType', 'error')}: {err.get('errorMessage', '')}"
        errors = doc.get("recordErrors")
        if isinstance(errors, list):
            return "; ".join(
                f"{e.get('errorType', 'error')}: {e.get('errorMessage', '')}"
                for e in errors
                if isinstance(e, dict)
            )
    return repr(body[:200].decode("utf-8", "replace")) if body else "(empty body)"


def is_success_body(body: bytes) -> bool:
    """Tecton's 200 body names the workspace and carries ingest metrics."""
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("workspaceName"), str)
        and isinstance(doc.get("ingestMetrics"), dict)
    )


def retry_after_seconds(value: typing.Optional[str]) -> typing.Optional[float]:
    """Retry-After in its delta-seconds form (the HTTP-date form is not honoured)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


class IngestClient:
    """One push source's writer: batches go out one at a time, each retried on its own."""

    def __init__(self, config: TectonStreamWriteConfig, metrics=None, sleep=time.sleep):
        self.config = config
        self.session = requests.Session()
        # A loopback mock must not be sent through a proxy from the environment.
        self.session.trust_env = False
        self.rng = random.Random(config.seed)
        self.metrics = metrics
        self.sleep = sleep

    def close(self):
        self.session.close()

    def _count(self, name, n=1):
        if self.metrics is not None:
            self.metrics[name].inc(n)

    def write(self, records: list) -> None:
        """Writes one batch (at most records_per_request records) or raises TectonWriteError."""
        body = json.dumps(
            {
                "workspace_name": self.config.workspace_name,
                "dry_run": False,
                "records": {self.config.stream_source_name: [{"record": r} for r in records]},
            }
        ).encode()
        attempts = 0
        while True:
            attempts += 1
            self._count("write_requests")
            try:
                self._attempt(body)
                self._count("records_written", len(records))
                return
            except _AttemptFailed as failure:
                self._count("write_errors")
                if not failure.retryable or attempts > self.config.max_retries:
                    tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
                    raise TectonWriteError(f"{len(records)} records not written after {tries}: {failure}")
                ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempts - 1))
                delay = self.rng.uniform(0, ceiling)
                if failure.retry_after is not None:
                    delay = max(delay, failure.retry_after)
                self.sleep(delay)

    def _attempt(self, body: bytes) -> None:
        timeout = self.config.timeout
        deadline = time.monotonic() + timeout
        headers = {
            "Authorization": "Tecton-key " + self.config.api_key,
            "Content-Type": "application/json",
        }
        try:
            response = self.session.post(
                self.config.endpoint,
                data=body,
                headers=headers,
                timeout=timeout,
                stream=True,
                allow_redirects=False,
            )
            with response:
                payload = self._read(response, deadline)
        except requests.Timeout:
            raise _AttemptFailed(f"no response within {timeout} s", True) from None
        except requests.RequestException as e:
            raise _AttemptFailed(f"connection failed: {e.__class__.__name__}", True) from None
        status = response.status_code
        if status == 200 and is_success_body(payload):
            return
        if status == 200:
            raise _AttemptFailed(
                f"HTTP 200 with a body that is not Tecton's success response: {error_message(payload)}",
                True,
            )
        raise _AttemptFailed(
            f"HTTP {status}: {error_message(payload)}",
            status in RETRYABLE_STATUSES,
            retry_after_seconds(response.headers.get("Retry-After")),
        )

    @staticmethod
    def _read(response, deadline) -> bytes:
        # requests' timeout bounds each socket read, not the whole body: a response dribbled
        # byte by byte would never time out without this deadline.
        chunks = []
        for chunk in response.iter_content(chunk_size=65536):
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise _AttemptFailed("no complete response within the timeout", True)
        return b"".join(chunks)


def shard_of(record: dict, key_fields: typing.Sequence[str], shards: int) -> int:
    """A stable shard for a record's join key: every record of one key lands in one shard."""
    if not key_fields or shards <= 1:
        return 0
    key = json.dumps([record.get(f) for f in key_fields], sort_keys=True, default=str)
    return zlib.crc32(key.encode()) % shards


class _WriteShardFn(beam.DoFn):
    """Writes one shard's records in sequence order, in batches, one request at a time.

    Giving up never raises: an exception would make the runner retry the whole bundle and
    re-send records Tecton already acknowledged. Records that could not be written go to the
    ``failed`` output instead, with the reason, and the shard stops so that no later record of
    a key is written after an earlier one was lost.
    """

    def __init__(self, config: TectonStreamWriteConfig):
        self.config = config
        self.metrics = {
            name: Metrics.counter(METRICS_NAMESPACE, name)
            for name in ("records_written", "write_requests", "write_errors", "records_failed")
        }

    def setup(self):
        self.client = IngestClient(self.config, self.metrics)

    def teardown(self):
        self.client.close()

    def process(self, shard_and_records):
        _, sequenced = shard_and_records
        ordered = sorted(sequenced, key=lambda pair: pair[0])
        size = self.config.records_per_request
        for first in range(0, len(ordered), size):
            batch = ordered[first : first + size]
            try:
                self.client.write([record for _, record in batch])
            except TectonWriteError as e:
                unwritten = ordered[first:]
                self.metrics["records_failed"].inc(len(unwritten))
                for seq, record in unwritten:
                    yield beam.pvalue.TaggedOutput(FAILED, FailedRecord(seq, record, str(e)))
                return


class FailedRecord(typing.NamedTuple):
    """A record that was not written: its sequence number, the record, and why."""

    seq: int
    record: dict
    reason: str


FAILED = "failed"


class WriteToTectonStream(beam.PTransform):
    """Writes ``(sequence, record)`` pairs to a Tecton push source through the Stream Ingest API.

    The sequence number (an input line, a Kafka offset) orders the records of one key: Beam's
    parallel stages do not keep order, and Tecton serves the most recently *pushed* value, so
    the transform groups records by a shard of their join key (``config.key_fields``; all in one
    shard when empty) and writes each shard in sequence order. Returns the PCollection of
    :class:`FailedRecord` for the records it could not write (a dead-letter output).
    """

    def __init__(self, config: TectonStreamWriteConfig):
        super().__init__()
        self.config = config

    def expand(self, sequenced):
        config = self.config
        outputs = (
            sequenced
            | "ShardByKey"
            >> beam.Map(lambda pair: (shard_of(pair[1], config.key_fields, config.shards), pair))
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(_WriteShardFn(config)).with_outputs(FAILED)
        )
        return outputs[FAILED]
