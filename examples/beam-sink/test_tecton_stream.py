"""Unit tests of WriteToTectonStream against a scripted local HTTP server (loopback only).

Run: ../../.venv-beam/bin/python -m unittest -v test_tecton_stream
"""

import json
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tecton_stream import (
    IngestClient,
    TectonStreamWriteConfig,
    TectonWriteError,
    WriteToTectonStream,
    shard_of,
)

SUCCESS = {"workspaceName": "prod", "ingestMetrics": {"featureViewIngestMetrics": []}}


class ScriptedServer:
    """Answers each POST with the next scripted reply; (status, body, headers, delay_s).

    Once the script is used up every request gets Tecton's success body. Every request's
    records are kept in arrival order.
    """

    def __init__(self, script=()):
        self.script = list(script)
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    outer.requests.append(json.loads(body))
                    reply = outer.script.pop(0) if outer.script else (200, SUCCESS, {}, 0)
                status, payload, headers, delay = reply
                time.sleep(delay)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def records(self):
        """Every record the server received, in arrival order (retries included)."""
        return [r["record"] for req in self.requests for r in req["records"]["transactions"]]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def config(url, **overrides):
    fields = dict(
        tecton_instance="",
        base_url=url,
        api_key="k",
        workspace_name="prod",
        stream_source_name="transactions",
        timeout=0.5,
        max_retries=3,
    )
    fields.update(overrides)
    return TectonStreamWriteConfig(**fields)


def record(i, user):
    return {"user_id": user, "transaction_id": f"t{i}", "amt": float(i)}


class ConfigTest(unittest.TestCase):
    def test_endpoint_follows_the_instance_unless_a_base_url_is_given(self):
        cfg = TectonStreamWriteConfig(tecton_instance="acme.tecton.ai", stream_source_name="s")
        self.assertEqual(cfg.endpoint, "https://preview.acme.tecton.ai/ingest")
        self.assertEqual(config("http://127.0.0.1:9/").endpoint, "http://127.0.0.1:9/ingest")

    def test_required_fields_and_bounds_are_checked(self):
        with self.assertRaisesRegex(ValueError, "tecton_instance"):
            TectonStreamWriteConfig(tecton_instance="", stream_source_name="s")
        with self.assertRaisesRegex(ValueError, "stream_source_name"):
            TectonStreamWriteConfig(tecton_instance="x", stream_source_name="")
        with self.assertRaisesRegex(ValueError, "timeout"):
            config("http://x", timeout=0)

    def test_batches_never_exceed_ten_records(self):
        self.assertEqual(config("http://x", batch_size=50).records_per_request, 10)

    def test_one_key_always_lands_in_one_shard(self):
        shards = {shard_of({"user_id": "u7", "amt": a}, ("user_id",), 4) for a in range(20)}
        self.assertEqual(len(shards), 1)
        self.assertEqual(shard_of({"user_id": "u7"}, (), 4), 0)


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.sleeps = []

    def client(self, server, **overrides):
        return IngestClient(config(server.url, **overrides), sleep=self.sleeps.append)

    def test_retries_throttling_and_honours_retry_after(self):
        server = ScriptedServer([(429, {"requestError": {}}, {"Retry-After": "2"}, 0), (503, b"", {}, 0)])
        self.addCleanup(server.close)
        self.client(server).write([record(0, "u")])
        self.assertEqual(len(server.requests), 3)
        self.assertGreaterEqual(self.sleeps[0], 2.0, "Retry-After is a floor")
        self.assertLessEqual(self.sleeps[1], 0.1, "full jitter below the capped backoff")

    def test_never_retries_a_definite_failure_and_quotes_tecton(self):
        body = {"requestError": {"errorType": "RequestValidationError", "errorMessage": "bad field"}}
        server = ScriptedServer([(400, body, {}, 0)])
        self.addCleanup(server.close)
        with self.assertRaisesRegex(TectonWriteError, "HTTP 400.*bad field"):
            self.client(server).write([record(0, "u")])
        self.assertEqual(len(server.requests), 1)

    def test_gives_up_after_max_retries(self):
        server = ScriptedServer([(503, b"", {}, 0)] * 10)
        self.addCleanup(server.close)
        with self.assertRaisesRegex(TectonWriteError, "after 3 attempts"):
            self.client(server, max_retries=2).write([record(0, "u")])
        self.assertEqual(len(server.requests), 3)

    def test_a_hang_times_out_and_is_retried(self):
        server = ScriptedServer([(200, SUCCESS, {}, 1.5)])
        self.addCleanup(server.close)
        started = time.monotonic()
        self.client(server, timeout=0.3).write([record(0, "u")])
        self.assertEqual(len(server.requests), 2)
        self.assertLess(time.monotonic() - started, 1.4, "the first attempt was cut at the timeout")

    def test_a_200_that_is_not_tecton_s_body_is_retried(self):
        server = ScriptedServer([(200, b"<html>proxy</html>", {}, 0)])
        self.addCleanup(server.close)
        self.client(server).write([record(0, "u")])
        self.assertEqual(len(server.requests), 2)


class TransformTest(unittest.TestCase):
    def run_pipeline(self, server, sequenced, **overrides):
        cfg = config(server.url, **overrides)
        options = PipelineOptions(["--direct_num_workers=4", "--direct_running_mode=multi_threading"])
        with TestPipeline(options=options, blocking=True) as p:
            _ = p | beam.Create(sequenced) | WriteToTectonStream(cfg)

    def test_keeps_each_key_in_sequence_order_across_parallel_workers(self):
        server = ScriptedServer()
        self.addCleanup(server.close)
        sequenced = [(i, record(i, f"u{i % 5}")) for i in range(200)]
        # Hand the runner the input reversed: order must come from the sequence numbers.
        self.run_pipeline(server, list(reversed(sequenced)), key_fields=("user_id",))
        received = server.records()
        self.assertEqual(sorted(r["transaction_id"] for r in received), sorted(f"t{i}" for i in range(200)))
        for user in {r["user_id"] for r in received}:
            ids = [int(r["transaction_id"][1:]) for r in received if r["user_id"] == user]
            self.assertEqual(ids, sorted(ids), f"records of {user} out of order")
        self.assertTrue(all(len(req["records"]["transactions"]) <= 10 for req in server.requests))

    def test_records_that_could_not_be_written_go_to_the_failed_output(self):
        body = {"requestError": {"errorType": "NotFoundError", "errorMessage": "no such source"}}
        server = ScriptedServer([(404, body, {}, 0)])
        self.addCleanup(server.close)
        sequenced = [(i, record(i, "u")) for i in range(12)]
        cfg = config(server.url)
        with TestPipeline(blocking=True) as p:
            failed = p | beam.Create(sequenced) | WriteToTectonStream(cfg)
            assert_that(failed | beam.Map(lambda f: f.seq), equal_to(list(range(12))))
        # One refused batch, then the shard stops: nothing after a lost record is written.
        self.assertEqual(len(server.requests), 1)


if __name__ == "__main__":
    unittest.main()
