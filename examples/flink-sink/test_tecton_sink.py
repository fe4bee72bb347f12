"""Unit tests of the Flink example's sink logic against a scripted loopback HTTP server and a
fake Kafka producer. No Flink needed: run with any Python that has `requests`.

Run: ../../.venv-flink/bin/python -m unittest -v test_tecton_sink
"""

import json
import pickle
import random
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tecton_sink import (
    Counters,
    GiveUp,
    IngestWriter,
    KafkaWriter,
    ShardState,
    SinkConfig,
    backoff_delay,
    shard_of,
)

SUCCESS = {"workspaceName": "prod", "ingestMetrics": {"featureViewIngestMetrics": []}}


class ScriptedServer:
    """Answers each POST with the next scripted reply (status, body, headers, delay_s); once
    the script is used up, Tecton's success body. Keeps every request body in arrival order."""

    def __init__(self, script=()):
        self.script = list(script)
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    outer.requests.append((self.headers.get("Authorization"), json.loads(body)))
                    reply = outer.script.pop(0) if outer.script else (200, SUCCESS, {}, 0)
                status, payload, headers, delay = reply
                time.sleep(delay)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client timed out and left

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def batches(self):
        """The transaction ids of each request, in arrival order (retries included)."""
        return [[r["record"]["transaction_id"] for r in body["records"]["transactions"]] for _, body in self.requests]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def record(i, user="u1"):
    return {"user_id": user, "transaction_id": f"t{i:05d}", "amt": 1.0}


class Harness(unittest.TestCase):
    def writer(self, script=(), **overrides):
        self.server = ScriptedServer(script)
        self.addCleanup(self.server.close)
        fields = dict(url=self.server.url, api_key="k", push_source="transactions", max_retries=3, timeout_s=0.3)
        fields.update(overrides)
        self.config = SinkConfig(**fields)
        self.counters = Counters()
        self.sleeps = []
        w = IngestWriter(self.config, self.counters, random.Random(7), sleep=self.sleeps.append)
        self.addCleanup(w.close)
        return w


class IngestWriterTest(Harness):
    def test_writes_the_v1_envelope_with_the_key(self):
        w = self.writer()
        w.write([record(0), record(1)])
        auth, body = self.server.requests[0]
        self.assertEqual(auth, "Tecton-key k")
        self.assertEqual(body["workspace_name"], "prod")
        self.assertIs(body["dry_run"], False)
        self.assertEqual(body["records"]["transactions"][1], {"record": record(1)})
        self.assertEqual(self.counters.values["records_written"], 2)
        self.assertEqual(self.counters.values["write_requests"], 1)

    def test_retries_503_and_429_then_succeeds(self):
        w = self.writer([(503, {}, {}, 0), (429, {}, {}, 0)])
        w.write([record(0)])
        self.assertEqual(self.server.batches(), [["t00000"]] * 3)
        self.assertEqual(self.counters.values["write_errors"], 2)
        self.assertEqual(len(self.sleeps), 2)

    def test_retry_after_is_a_floor_on_the_wait(self):
        w = self.writer([(429, {}, {"Retry-After": "1.5"}, 0)])
        w.write([record(0)])
        self.assertGreaterEqual(self.sleeps[0], 1.5)

    def test_definite_4xx_is_not_retried_and_quotes_tecton(self):
        body = {"requestError": {"errorType": "TectonObjectValidationError", "errorMessage": "bad amt"}}
        w = self.writer([(400, body, {}, 0)])
        with self.assertRaisesRegex(GiveUp, "1 attempt: HTTP 400: TectonObjectValidationError: bad amt"):
            w.write([record(0)])
        self.assertEqual(len(self.server.requests), 1)

    def test_gives_up_after_the_retry_budget(self):
        w = self.writer([(503, {}, {}, 0)] * 10, max_retries=2)
        with self.assertRaisesRegex(GiveUp, "after 3 attempts"):
            w.write([record(0)])
        self.assertEqual(len(self.server.requests), 3)

    def test_a_hanging_request_times_out_and_is_retried(self):
        w = self.writer([(200, SUCCESS, {}, 1.0)], timeout_s=0.2)
        started = time.monotonic()
        w.write([record(0)])
        self.assertLess(time.monotonic() - started, 0.9)
        self.assertEqual(len(self.server.requests), 2)

    def test_a_200_without_the_success_body_is_not_an_acknowledgement(self):
        w = self.writer([(200, b"<html>proxy</html>", {}, 0)])
        w.write([record(0)])
        self.assertEqual(len(self.server.requests), 2)


class BackoffTest(unittest.TestCase):
    def test_ceiling_doubles_and_waits_differ(self):
        rng = random.Random(1)
        first = [backoff_delay(rng, 1, None) for _ in range(50)]
        third = [backoff_delay(rng, 3, None) for _ in range(50)]
        self.assertLessEqual(max(first), 0.05)
        self.assertLessEqual(max(third), 0.2)
        self.assertGreater(sum(third) / 50, 2 * sum(first) / 50)
        self.assertGreater(len(set(first)), 40)


class ShardStateTest(Harness):
    def test_flush_writes_full_batches_in_input_order(self):
        w = self.writer()
        shard = ShardState()
        for i in range(23):
            shard.offer(i, record(i))
        shard.flush(w, 10, lambda *a: self.fail("nothing is dead-lettered"))
        self.assertEqual([len(b) for b in self.server.batches()], [10, 10, 3])
        self.assertEqual(sum(self.server.batches(), []), [f"t{i:05d}" for i in range(23)])
        self.assertEqual(shard.buffer, [])

    def test_a_replay_after_restore_skips_what_the_state_covers(self):
        shard = ShardState()
        for i in range(5):
            self.assertTrue(shard.offer(i, record(i)))
        restored = pickle.loads(pickle.dumps(shard))  # what a checkpoint keeps
        self.assertEqual([s for s, _ in restored.buffer], [0, 1, 2, 3, 4])
        self.assertFalse(restored.offer(3, record(3)))
        self.assertTrue(restored.offer(5, record(5)))

    def test_after_giving_up_later_records_of_the_shard_are_not_written(self):
        w = self.writer([(400, {"requestError": {"errorMessage": "no"}}, {}, 0)])
        shard = ShardState()
        for i in range(15):
            shard.offer(i, record(i))
        dead = []
        shard.flush(w, 10, lambda seq, rec, reason: dead.append(seq))
        shard.offer(15, record(15))
        shard.flush(w, 10, lambda seq, rec, reason: dead.append(seq))
        self.assertEqual(dead, list(range(16)))
        self.assertEqual(len(self.server.requests), 1)


class FakeFuture:
    def __init__(self, error):
        self.error = error

    def get(self, timeout):
        if self.error:
            raise self.error


class FakeProducer:
    """Fails the first ``failures`` sends, then acknowledges; keeps what was acknowledged."""

    def __init__(self, failures):
        self.failures = failures
        self.sent = []
        self.acked = []
        self.timestamps = []

    def send(self, topic, value, key, timestamp_ms=None):
        self.sent.append((topic, key, json.loads(value)["transaction_id"]))
        self.timestamps.append(timestamp_ms)
        if self.failures:
            self.failures -= 1
            return FakeFuture(RuntimeError("NotLeaderForPartitionError"))
        self.acked.append(self.sent[-1])
        return FakeFuture(None)

    def flush(self, timeout):
        pass

    def close(self, timeout):
        pass


class KafkaWriterTest(unittest.TestCase):
    def make(self, failures, max_retries=3):
        config = SinkConfig(kafka_bootstrap="127.0.0.1:1", max_retries=max_retries, topic="transactions")
        self.counters = Counters()
        self.producer = FakeProducer(failures)
        return KafkaWriter(config, self.counters, random.Random(1), sleep=lambda s: None, producer=self.producer)

    def test_keys_by_join_key_and_retries_the_batch(self):
        w = self.make(failures=1)
        w.write([record(0, "u1"), record(1, "u2")])
        self.assertEqual(self.producer.sent[0][:2], ("transactions", b'["u1"]'))
        self.assertEqual(self.counters.values["write_requests"], 2)
        self.assertEqual(self.counters.values["records_written"], 2)

    def test_the_event_time_becomes_the_kafka_timestamp(self):
        w = self.make(failures=0)
        w.write([dict(record(0), timestamp="2024-05-31T23:00:00Z"), dict(record(1), timestamp="soon")])
        self.assertEqual(self.producer.timestamps, [1717196400000, None])

    def test_gives_up_after_the_budget(self):
        w = self.make(failures=100, max_retries=1)
        with self.assertRaisesRegex(GiveUp, "not produced after 2 attempts"):
            w.write([record(0)])


class ConfigTest(unittest.TestCase):
    def test_protocol_variables_and_defaults(self):
        c = SinkConfig.from_env({"TECTON_URL": "http://x", "TECTON_PUSH_SOURCE": "s", "SINK_BATCH_SIZE": "25"})
        self.assertEqual(c.records_per_request, 10)
        self.assertEqual((c.max_retries, c.timeout_s, c.key_fields), (3, 10.0, ("user_id",)))

    def test_kafka_batches_are_not_bound_by_the_ingest_limit(self):
        c = SinkConfig.from_env({"SINK_BATCH_SIZE": "10"}, kafka_bootstrap="127.0.0.1:9092")
        self.assertEqual(c.records_per_request, 500)

    def test_the_load_generator_names_the_broker_and_topic(self):
        # `tecton-sim load --pattern sink --kafka-bootstrap` sets these (sink protocol, optional).
        c = SinkConfig.from_env({"TECTON_KAFKA_BOOTSTRAP": "127.0.0.1:9", "TECTON_KAFKA_TOPIC": "events"})
        self.assertEqual((c.kafka_bootstrap, c.topic), ("127.0.0.1:9", "events"))
        self.assertEqual(SinkConfig.from_env({"TECTON_KAFKA_BOOTSTRAP": "h:1"}).topic, "transactions")

    def test_bad_values_name_the_variable(self):
        with self.assertRaisesRegex(ValueError, "SINK_TIMEOUT_S"):
            SinkConfig.from_env({"TECTON_URL": "http://x", "TECTON_PUSH_SOURCE": "s", "SINK_TIMEOUT_S": "soon"})
        with self.assertRaisesRegex(ValueError, "TECTON_URL"):
            SinkConfig.from_env({})

    def test_one_key_one_shard(self):
        shards = {shard_of(record(i, "u7"), ("user_id",), 4) for i in range(20)}
        self.assertEqual(len(shards), 1)


if __name__ == "__main__":
    unittest.main()
