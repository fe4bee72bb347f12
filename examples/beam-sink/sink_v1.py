#!/usr/bin/env python3
"""Sink protocol v1 around WriteToTectonStream: a Beam pipeline that reads JSON Lines from stdin
and writes them with the transform on the DirectRunner.

Environment: TECTON_URL, TECTON_API_KEY, TECTON_WORKSPACE, TECTON_PUSH_SOURCE (required);
SINK_BATCH_SIZE (10), SINK_MAX_RETRIES (3), SINK_TIMEOUT_S (30), SINK_SEED (0);
SINK_KEY_FIELDS (comma-separated join key fields; records of one key stay in input order,
different keys are written by SINK_SHARDS (4) parallel shards; without it, one shard keeps the
whole input in order), BEAM_OPTIONS (runner flags).
Exit 0 when every record was acknowledged, 1 when some were not (stderr says which), 2 on bad
configuration or input. Prints {"records_written","write_requests","write_errors"} at exit.
"""

import json
import logging
import os
import sys

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from tecton_stream import METRICS_NAMESPACE, TectonStreamWriteConfig, WriteToTectonStream


def fail_usage(message):
    print(f"sink_v1.py: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def config_from_env():
    env = os.environ

    def required(name):
        value = env.get(name, "").strip()
        if not value:
            fail_usage(f"environment variable {name} is not set")
        return value

    def hint(name, parse, default):
        value = env.get(name, "").strip()
        try:
            return parse(value) if value else default
        except ValueError:
            fail_usage(f"environment variable {name}={value!r} is not a valid value")

    try:
        return TectonStreamWriteConfig(
            tecton_instance="",
            base_url=required("TECTON_URL"),
            api_key=required("TECTON_API_KEY"),
            workspace_name=required("TECTON_WORKSPACE"),
            stream_source_name=required("TECTON_PUSH_SOURCE"),
            batch_size=hint("SINK_BATCH_SIZE", int, 10),
            max_retries=hint("SINK_MAX_RETRIES", int, 3),
            timeout=hint("SINK_TIMEOUT_S", float, 30.0),
            seed=hint("SINK_SEED", int, 0),
            key_fields=tuple(f for f in env.get("SINK_KEY_FIELDS", "").replace(" ", "").split(",") if f),
            shards=hint("SINK_SHARDS", int, 4),
        )
    except ValueError as e:
        fail_usage(str(e))


def read_records(stream):
    records = []
    for number, line in enumerate(stream, start=1):
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


def counter(result, name):
    found = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name(name))
    return sum(c.committed or 0 for c in found["counters"])


def main():
    logging.getLogger().setLevel(logging.ERROR)
    config = config_from_env()
    records = read_records(sys.stdin)
    # BEAM_OPTIONS passes runner flags through, e.g. "--direct_num_workers=4
    # --direct_running_mode=multi_threading" to run the way a parallel deployment does.
    options = PipelineOptions(["--runner=DirectRunner", *os.environ.get("BEAM_OPTIONS", "").split()])
    pipeline = beam.Pipeline(options=options)
    failed = pipeline | beam.Create(list(enumerate(records))) | WriteToTectonStream(config)
    _ = failed | "Report" >> beam.Map(report_failure)
    try:
        result = pipeline.run()
        result.wait_until_finish()
    except Exception as e:  # the pipeline itself failed: nothing can be said of the records
        print(f"sink_v1.py: the pipeline failed: {e}", file=sys.stderr, flush=True)
        return 1
    names = ("records_written", "write_requests", "write_errors")
    print(json.dumps({name: counter(result, name) for name in names}), flush=True)
    failed_count = counter(result, "records_failed")
    if failed_count:
        print(
            f"sink_v1.py: {failed_count} of {len(records)} records were not written",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0


def report_failure(failed):
    """One stderr line per record that was not written (input position counted from 0)."""
    print(f"not written: input #{failed.seq}: {failed.reason}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
