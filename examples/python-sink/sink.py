#!/usr/bin/env python3
"""A sink protocol v1 sink for Tecton's Stream Ingest API, standard library only.

It behaves like tecton-sim's reference sink:

* reads records as JSON Lines from stdin; EOF means "flush and exit";
* sends them in input order, one request at a time, at most SINK_BATCH_SIZE records per
  request (never more than 10, Tecton's recommended batch), the final partial batch included;
* bounds every attempt by SINK_TIMEOUT_S seconds;
* retries 408, 425, 429, any 5xx, connection errors, timeouts and a 200 whose body is not
  Tecton's success response, up to SINK_MAX_RETRIES times, after a capped exponential backoff
  with full jitter (seeded by SINK_SEED) and never sooner than a Retry-After header asks;
* never retries a definite failure (400, 401, 403, 404, 413, ...): it gives up on that batch,
  stops, and says on stderr which records were not written and why;
* prints {"records_written", "write_requests", "write_errors"} on stdout at exit and exits 0
  only when every record was acknowledged (1 when it gave up, 2 on bad configuration or input).

Configuration (environment): TECTON_URL, TECTON_API_KEY, TECTON_WORKSPACE,
TECTON_PUSH_SOURCE (required); SINK_BATCH_SIZE (10), SINK_MAX_RETRIES (3),
SINK_TIMEOUT_S (10), SINK_SEED (0) (optional hints).
"""

import http.client
import json
import os
import random
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

MAX_RECORDS_PER_REQUEST = 10
# The same statuses as conformance::answer::is_retryable_status.
RETRYABLE_STATUSES = {408, 425, 429} | set(range(500, 600))
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 2.0


class Failure(Exception):
    """One failed attempt."""

    def __init__(self, text, retryable, retry_after=None):
        super().__init__(text)
        self.retryable = retryable
        self.retry_after = retry_after


def log(line):
    print(line, file=sys.stderr, flush=True)


def config():
    """Reads protocol v1's environment; exits 2 naming a missing or bad variable."""
    env = os.environ

    def required(name):
        value = env.get(name, "").strip()
        if not value:
            fail_usage(f"environment variable {name} is not set")
        return value

    def hint(name, parse, default):
        value = env.get(name, "").strip()
        if not value:
            return default
        try:
            return parse(value)
        except ValueError:
            fail_usage(f"environment variable {name}={value!r} is not a valid value")

    cfg = {
        "url": required("TECTON_URL").rstrip("/"),
        "key": required("TECTON_API_KEY"),
        "workspace": required("TECTON_WORKSPACE"),
        "source": required("TECTON_PUSH_SOURCE"),
        "batch_size": hint("SINK_BATCH_SIZE", int, 10),
        "max_retries": hint("SINK_MAX_RETRIES", int, 3),
        "timeout": hint("SINK_TIMEOUT_S", float, 10.0),
        "seed": hint("SINK_SEED", int, 0),
    }
    if cfg["timeout"] <= 0 or cfg["max_retries"] < 0:
        fail_usage("SINK_TIMEOUT_S must be positive and SINK_MAX_RETRIES not negative")
    return cfg


def fail_usage(message):
    log(f"sink.py: {message}")
    sys.exit(2)


def read_records():
    """Every stdin line as a JSON object; blank lines are skipped."""
    records = []
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            fail_usage(f"input line {number} is not valid JSON: {e}")
        if not isinstance(record, dict):
            fail_usage(f"input line {number} is not a JSON object")
        records.append(record)
    return records


def error_message(body):
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
                f"{e.get('errorType', 'error')} ({e.get('featureViewName', '?')}): "
                f"{e.get('errorMessage', '')}"
                for e in errors
                if isinstance(e, dict)
            )
    text = body.decode("utf-8", "replace")
    return repr(text[:200]) if text else "(empty body)"


def is_success_body(body):
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("workspaceName"), str)
        and isinstance(doc.get("ingestMetrics"), dict)
    )


def parse_retry_after(value):
    """Retry-After as delta-seconds; the HTTP-date form is not honoured."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def make_opener(url):
    """An opener that never follows redirects and skips proxies for a loopback URL."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None  # a redirected POST would silently become a GET

    handlers = [NoRedirect()]
    if (urllib.parse.urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1"):
        handlers.append(urllib.request.ProxyHandler({}))  # a proxy cannot reach our loopback
    return urllib.request.build_opener(*handlers)


def attempt(cfg, opener, body):
    """One POST; returns None on Tecton's success response, raises Failure otherwise."""
    request = urllib.request.Request(
        cfg["url"] + "/ingest",
        data=body,
        method="POST",
        headers={
            "Authorization": "Tecton-key " + cfg["key"],
            "Content-Type": "application/json",
        },
    )
    deadline = time.monotonic() + cfg["timeout"]
    try:
        # The socket timeout bounds each blocking read; the deadline bounds the whole exchange
        # (a response dribbled byte by byte would otherwise never time out).
        with opener.open(request, timeout=cfg["timeout"]) as response:
            status = response.status
            payload = read_until(response, deadline)
    except urllib.error.HTTPError as e:
        try:
            payload = read_until(e, deadline)
        except Failure:
            payload = b""
        retry_after = parse_retry_after(e.headers.get("Retry-After"))
        raise Failure(
            f"HTTP {e.code}: {error_message(payload)}",
            e.code in RETRYABLE_STATUSES,
            retry_after,
        ) from None
    except (socket.timeout, TimeoutError):
        raise Failure(f"no response within {cfg['timeout']} s", True) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise Failure(f"no response within {cfg['timeout']} s", True) from None
        raise Failure(f"connection failed: {reason!r}", True) from None
    if status == 200 and is_success_body(payload):
        return
    if status == 200:
        text = payload.decode("utf-8", "replace")[:200]
        raise Failure(f"HTTP 200 with a body that is not Tecton's success response: {text!r}", True)
    raise Failure(f"HTTP {status}: {error_message(payload)}", status in RETRYABLE_STATUSES)


def read_until(response, deadline):
    chunks = []
    while True:
        if time.monotonic() > deadline:
            raise Failure("no complete response within the timeout", True)
        chunk = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def ranges(positions):
    """Positions as compact ranges: "0-9, 20-24"."""
    parts = []
    positions = sorted(set(positions))
    i = 0
    while i < len(positions):
        j = i
        while j + 1 < len(positions) and positions[j + 1] == positions[j] + 1:
            j += 1
        parts.append(str(positions[i]) if i == j else f"{positions[i]}-{positions[j]}")
        i = j + 1
    return ", ".join(parts)


def main():
    cfg = config()
    records = read_records()
    rng = random.Random(cfg["seed"])
    opener = make_opener(cfg["url"])
    size = max(1, min(cfg["batch_size"], MAX_RECORDS_PER_REQUEST))
    batches = [(first, records[first:first + size]) for first in range(0, len(records), size)]
    metrics = {"records_written": 0, "write_requests": 0, "write_errors": 0}
    gave_up = False

    for index, (first, batch) in enumerate(batches):
        label = f"batch {index + 1} of {len(batches)} (records {ranges(range(first, first + len(batch)))})"
        body = json.dumps({
            "workspace_name": cfg["workspace"],
            "dry_run": False,
            "records": {cfg["source"]: [{"record": r} for r in batch]},
        }).encode()
        attempts = 0
        while True:
            attempts += 1
            metrics["write_requests"] += 1
            try:
                attempt(cfg, opener, body)
                metrics["records_written"] += len(batch)
                break
            except Failure as failure:
                metrics["write_errors"] += 1
                if not failure.retryable or attempts > cfg["max_retries"]:
                    tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
                    log(f"gave up on {label} after {tries}: {failure}")
                    gave_up = True
                    break
                # Full jitter: uniform(0, min(cap, base * 2^retry)), but never sooner than
                # the server asked.
                ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempts - 1))
                delay = rng.uniform(0, ceiling)
                if failure.retry_after is not None:
                    delay = max(delay, failure.retry_after)
                log(f"{label}: {failure}; retry {attempts} of {cfg['max_retries']} in {int(delay * 1000)} ms")
                time.sleep(delay)
        if gave_up:
            unwritten = [p for f, b in batches[index:] for p in range(f, f + len(b))]
            log(
                f"{len(unwritten)} of {len(records)} records were not written "
                f"(input positions {ranges(unwritten)}, counted from 0)"
            )
            break

    print(json.dumps(metrics), flush=True)
    return 1 if gave_up else 0


if __name__ == "__main__":
    sys.exit(main())
