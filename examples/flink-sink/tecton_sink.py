"""The sink logic of the Flink example, in plain Python (no Flink needed to test it).

* :class:`IngestWriter` writes one batch to Tecton's Stream Ingest API (``POST <url>/ingest``):
  retries 408, 425, 429, 5xx, timeouts, connection failures and a 200 whose body is not Tecton's
  success body, with capped exponential backoff and full jitter, never sooner than a
  ``Retry-After`` asks; never retries a definite 4xx; bounds every attempt, body included, by
  the per-request timeout.
* :class:`KafkaWriter` produces one batch to the stream source's topic (the Kafka pattern) and
  waits for the broker's acknowledgement of every record.
* :class:`ShardState` is the buffer of one writing shard: what the Flink job keeps in keyed
  state, so a checkpoint holds exactly the records not yet acknowledged.

See README.md in this folder for the delivery guarantee and what the conformance suite found.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import random
import time
import typing
import zlib

# Records per push source in one request: Tecton's recommended batch, and the mock's limit.
MAX_RECORDS_PER_REQUEST = 10
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 2.0
METRIC_NAMES = ("records_written", "write_requests", "write_errors", "records_failed")


def is_retryable_status(status: int) -> bool:
    """408, 425, 429 and every 5xx may succeed later; every other error status is definite."""
    return status in (408, 425, 429) or 500 <= status <= 599


@dataclasses.dataclass(frozen=True)
class SinkConfig:
    """Where and how to write; ``from_env`` reads sink protocol v1's variables."""

    url: str = ""
    api_key: str = ""
    workspace: str = "prod"
    push_source: str = ""
    batch_size: int = 10
    max_retries: int = 3
    timeout_s: float = 10.0
    seed: int = 0
    linger_ms: int = 100
    shards: int = 1
    key_fields: typing.Tuple[str, ...] = ("user_id",)
    # The Kafka pattern: a bootstrap address switches the job from pushing to producing.
    kafka_bootstrap: str = ""
    topic: str = "transactions"
    # A broker takes far more than Tecton's 10 records per request: one acknowledged flush
    # per batch is the Kafka writer's cost, so its batches are larger.
    kafka_batch_size: int = 500

    def __post_init__(self):
        if not self.kafka_bootstrap and not self.url:
            raise ValueError("TECTON_URL (push) or --kafka-bootstrap (Kafka) is required")
        if not self.kafka_bootstrap and not self.push_source:
            raise ValueError("TECTON_PUSH_SOURCE is required")
        if self.batch_size < 1:
            raise ValueError("SINK_BATCH_SIZE must be at least 1")
        if self.max_retries < 0:
            raise ValueError("SINK_MAX_RETRIES must not be negative")
        if self.timeout_s <= 0:
            raise ValueError("SINK_TIMEOUT_S must be positive")
        if self.linger_ms < 1:
            raise ValueError("SINK_LINGER_MS must be at least 1")
        if self.shards < 1:
            raise ValueError("SINK_SHARDS must be at least 1")
        if self.kafka_batch_size < 1:
            raise ValueError("SINK_KAFKA_BATCH_SIZE must be at least 1")

    @property
    def records_per_request(self) -> int:
        if self.kafka_bootstrap:
            return self.kafka_batch_size
        return min(self.batch_size, MAX_RECORDS_PER_REQUEST)

    @staticmethod
    def from_env(env: typing.Mapping[str, str], kafka_bootstrap: str = "") -> "SinkConfig":
        """Reads the protocol's variables; raises ValueError naming the bad one."""

        def hint(name, parse, default):
            value = env.get(name, "").strip()
            try:
                return parse(value) if value else default
            except ValueError:
                raise ValueError(f"{name}={value!r} is not a valid value") from None

        keys = tuple(f for f in env.get("SINK_KEY_FIELDS", "user_id").replace(" ", "").split(",") if f)
        return SinkConfig(
            url=env.get("TECTON_URL", "").strip(),
            api_key=env.get("TECTON_API_KEY", "").strip(),
            workspace=env.get("TECTON_WORKSPACE", "").strip() or "prod",
            push_source=env.get("TECTON_PUSH_SOURCE", "").strip(),
            batch_size=hint("SINK_BATCH_SIZE", int, 10),
            max_retries=hint("SINK_MAX_RETRIES", int, 3),
            timeout_s=hint("SINK_TIMEOUT_S", float, 10.0),
            seed=hint("SINK_SEED", int, 0),
            linger_ms=hint("SINK_LINGER_MS", int, 100),
            shards=hint("SINK_SHARDS", int, 1),
            key_fields=keys,
            kafka_bootstrap=kafka_bootstrap or env.get("TECTON_KAFKA_BOOTSTRAP", "").strip(),
            topic=env.get("TECTON_KAFKA_TOPIC", "").strip() or "transactions",
            kafka_batch_size=hint("SINK_KAFKA_BATCH_SIZE", int, 500),
        )


class GiveUp(Exception):
    """A batch could not be written; the message says why (Tecton's errorMessage quoted)."""


class Counters:
    """The four counts; the Flink job mirrors each increment into its metric group."""

    def __init__(self, on_inc=None):
        self.values = {name: 0 for name in METRIC_NAMES}
        self.on_inc = on_inc

    def inc(self, name: str, n: int = 1):
        self.values[name] += n
        if self.on_inc is not None:
            self.on_inc(name, n)


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
                f"{e.get('errorType', 'error')}: {e.get('errorMessage', '')}" for e in errors if isinstance(e, dict)
            )
    return repr(body[:200].decode("utf-8", "replace")) if body else "(empty body)"


def is_success_body(body: bytes) -> bool:
    """Tecton's 200 body names the workspace and carries ingest metrics."""
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("workspaceName"), str) and isinstance(doc.get("ingestMetrics"), dict)


def retry_after_seconds(value: typing.Optional[str]) -> typing.Optional[float]:
    """Retry-After in its delta-seconds form (the HTTP-date form is not honoured)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and seconds >= 0 else None


def backoff_delay(rng: random.Random, retry: int, retry_after: typing.Optional[float]) -> float:
    """Full jitter over a ceiling that doubles per retry (capped), never below Retry-After."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (retry - 1))
    delay = rng.uniform(0, ceiling)
    return max(delay, retry_after) if retry_after is not None else delay


class IngestWriter:
    """Writes batches to one push source, one request at a time, each retried on its own."""

    def __init__(self, config: SinkConfig, counters: Counters, rng: random.Random, sleep=time.sleep):
        import requests  # imported here so the Kafka mode does not need it loaded

        self.requests = requests
        self.config = config
        self.counters = counters
        self.rng = rng
        self.sleep = sleep
        self.session = requests.Session()
        # A loopback mock must not be reached through a proxy from the environment.
        self.session.trust_env = False

    def close(self):
        self.session.close()

    def write(self, records: typing.List[dict]) -> None:
        """Writes one batch (at most records_per_request records) or raises GiveUp."""
        body = json.dumps(
            {
                "workspace_name": self.config.workspace,
                "dry_run": False,
                "records": {self.config.push_source: [{"record": r} for r in records]},
            }
        ).encode()
        attempts = 0
        while True:
            attempts += 1
            self.counters.inc("write_requests")
            try:
                self._attempt(body)
                self.counters.inc("records_written", len(records))
                return
            except _AttemptFailed as failure:
                self.counters.inc("write_errors")
                if not failure.retryable or attempts > self.config.max_retries:
                    tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
                    raise GiveUp(f"{len(records)} records not written after {tries}: {failure}") from None
                self.sleep(backoff_delay(self.rng, attempts, failure.retry_after))

    def _attempt(self, body: bytes) -> None:
        timeout = self.config.timeout_s
        deadline = time.monotonic() + timeout
        headers = {"Authorization": "Tecton-key " + self.config.api_key, "Content-Type": "application/json"}
        requests = self.requests
        try:
            response = self.session.post(
                self.config.url.rstrip("/") + "/ingest",
                data=body,
                headers=headers,
                timeout=timeout,
                stream=True,
                allow_redirects=False,
            )
            with response:
                payload = _read_within(response, deadline)
        except requests.Timeout:
            raise _AttemptFailed(f"no response within {timeout} s", True) from None
        except requests.RequestException as e:
            raise _AttemptFailed(f"connection failed: {e.__class__.__name__}", True) from None
        status = response.status_code
        if status == 200 and is_success_body(payload):
            return
        if status == 200:
            raise _AttemptFailed(
                f"HTTP 200 with a body that is not Tecton's success response: {error_message(payload)}", True
            )
        raise _AttemptFailed(
            f"HTTP {status}: {error_message(payload)}",
            is_retryable_status(status),
            retry_after_seconds(response.headers.get("Retry-After")),
        )


def _read_within(response, deadline) -> bytes:
    # requests' timeout bounds each socket read, not the whole body: a body dribbled byte by
    # byte would never time out without this deadline.
    chunks = []
    for chunk in response.iter_content(chunk_size=65536):
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise _AttemptFailed("no complete response within the timeout", True)
    return b"".join(chunks)


class KafkaWriter:
    """Produces batches to the stream source's topic and waits until the broker acknowledged
    every record (acks=all). Records are keyed by their join key, so one key stays in one
    partition; one request in flight per connection keeps the order through the client's own
    retries."""

    def __init__(self, config: SinkConfig, counters: Counters, rng: random.Random, sleep=time.sleep, producer=None):
        self.config = config
        self.counters = counters
        self.rng = rng
        self.sleep = sleep
        if producer is None:
            from kafka import KafkaProducer

            producer = KafkaProducer(
                bootstrap_servers=config.kafka_bootstrap,
                acks="all",
                retries=0,  # this writer retries whole batches itself, with backoff
                max_in_flight_requests_per_connection=1,
                request_timeout_ms=max(1000, int(config.timeout_s * 1000)),
                linger_ms=0,
            )
        self.producer = producer

    def close(self):
        self.producer.close(timeout=self.config.timeout_s)

    @staticmethod
    def event_time_ms(record: dict) -> typing.Optional[int]:
        """The record's ``timestamp`` as the Kafka record's CreateTime (as Flink's own Kafka
        sink writes a record's event time), or None (the producer's clock) when unparsable."""
        value = record.get("timestamp")
        if not isinstance(value, str):
            return None
        try:
            return int(datetime.datetime.fromisoformat(value).timestamp() * 1000)
        except ValueError:
            return None

    def key_of(self, record: dict) -> bytes:
        return json.dumps([record.get(f) for f in self.config.key_fields], default=str).encode()

    def write(self, records: typing.List[dict]) -> None:
        attempts = 0
        while True:
            attempts += 1
            self.counters.inc("write_requests")
            try:
                futures = [
                    self.producer.send(
                        self.config.topic,
                        value=json.dumps(r).encode(),
                        key=self.key_of(r),
                        timestamp_ms=self.event_time_ms(r),
                    )
                    for r in records
                ]
                self.producer.flush(timeout=self.config.timeout_s)
                for future in futures:
                    future.get(timeout=self.config.timeout_s)
                self.counters.inc("records_written", len(records))
                return
            except Exception as e:  # the client's errors have no common retryable marker
                self.counters.inc("write_errors")
                if attempts > self.config.max_retries:
                    raise GiveUp(f"{len(records)} records not produced after {attempts} attempts: {e}") from None
                self.sleep(backoff_delay(self.rng, attempts, None))


def shard_of(record: dict, key_fields: typing.Sequence[str], shards: int) -> int:
    """A stable shard for a record's join key: every record of one key lands in one shard."""
    if shards <= 1:
        return 0
    key = json.dumps([record.get(f) for f in key_fields], sort_keys=True, default=str)
    return zlib.crc32(key.encode()) % shards


@dataclasses.dataclass
class ShardState:
    """One shard's buffer: records taken in but not yet acknowledged, in input order.

    ``high_seq`` is the highest input position taken in; after a restore from a checkpoint the
    source replays from the start and every record at or below it is skipped (it is either in
    ``buffer`` or was acknowledged before the checkpoint). ``failed`` is set when a batch was
    given up: every later record of the shard is not written either, so no key ever has a
    later record written after an earlier one was lost.
    """

    buffer: typing.List[typing.Tuple[int, dict]] = dataclasses.field(default_factory=list)
    high_seq: int = -1
    deadline_ms: int = 0
    failed: typing.Optional[str] = None

    def offer(self, seq: int, record: dict) -> bool:
        """Takes a record in; False when it was taken in before (a replay after a restore)."""
        if seq <= self.high_seq:
            return False
        self.high_seq = seq
        self.buffer.append((seq, record))
        return True

    def flush(self, writer, size: int, dead_letter) -> None:
        """Writes the whole buffer in batches of ``size``; what cannot be written goes to
        ``dead_letter(seq, record, reason)``. Never raises for a failed write: raising would
        fail the task and make Flink restart it and re-send acknowledged records."""
        while self.buffer:
            batch = self.buffer[:size]
            if self.failed is None:
                try:
                    writer.write([record for _, record in batch])
                except GiveUp as e:
                    self.failed = str(e)
            if self.failed is not None:
                for seq, record in batch:
                    dead_letter(seq, record, self.failed)
            del self.buffer[: len(batch)]
        self.deadline_ms = 0
