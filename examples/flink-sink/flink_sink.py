#!/usr/bin/env python3
"""A PyFlink DataStream job that writes sink-protocol-v1 input to Tecton, in either pattern:

* push (default): batches to the Stream Ingest API, ``POST $TECTON_URL/ingest``;
* Kafka (``--kafka-bootstrap HOST:PORT`` or ``TECTON_KAFKA_BOOTSTRAP``): the same records,
  produced to the stream source's topic (``--kafka-topic`` or ``TECTON_KAFKA_TOPIC``, default
  ``transactions``).

Input: JSON Lines on stdin (or ``--input FILE``, e.g. ``--input "$SINK_INPUT"``), one record
per line, read as they arrive. Environment: TECTON_URL, TECTON_API_KEY, TECTON_WORKSPACE,
TECTON_PUSH_SOURCE; SINK_BATCH_SIZE (10), SINK_MAX_RETRIES (3), SINK_TIMEOUT_S (10), SINK_SEED
(0), SINK_LINGER_MS (100: a partial batch waits at most this long), SINK_SHARDS (1: writing
shards; records of one key always share one), SINK_KEY_FIELDS (user_id), SINK_CHECKPOINT_MS
(1000), SINK_KAFKA_BATCH_SIZE (500: records per acknowledged flush in the Kafka mode),
FLINK_SINK_FAIL_AT (test hook: the task's first attempt writes what it holds, then fails, at
that input line).

Exit 0 when every record was acknowledged, 1 when some were not (stderr says which and why),
2 on bad configuration. Prints {"records_written","write_requests","write_errors"} at exit.
"""

import argparse
import glob
import json
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from tecton_sink import METRIC_NAMES, Counters, IngestWriter, KafkaWriter, ShardState, SinkConfig, shard_of  # noqa: E402

# The event-time timer that fires when the input ends: a bounded source's last watermark.
END_OF_INPUT = 2**63 - 1


def fail_usage(message):
    print(f"flink_sink.py: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


class LineRelay:
    """Reads the input as it arrives and serves it, numbered, to Flink's socket source.

    Every connection gets every line from the first one: after Flink restores a checkpoint the
    source connects again and the writer skips what its restored state already covers (see
    ``ShardState.high_seq``), like a replayable source rewinding to its checkpointed offset.
    The connection is closed at the end of the input, which ends the job.
    """

    def __init__(self, stream, dead_letter, shard):
        self.lines = []
        self.shard = shard
        self.done = False
        self.cond = threading.Condition()
        self.dead_letter = dead_letter
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()
        threading.Thread(target=self._accept, daemon=True).start()

    def _read(self, stream):
        for number, line in enumerate(stream):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError as e:
                self.dead_letter(number, None, f"input line {number + 1} is not valid JSON: {e}")
                continue
            if not isinstance(record, dict):
                self.dead_letter(number, None, f"input line {number + 1} is not a JSON object")
                continue
            # One line per record, whatever whitespace the input had, after its shard: Flink
            # keys by that prefix without running Python in the source's task (see run_job).
            compact = json.dumps(record, separators=(",", ":"))
            encoded = f"{self.shard(record)}\t{number}\t{compact}\n".encode()
            with self.cond:
                self.lines.append(encoded)
                self.cond.notify_all()
        with self.cond:
            self.done = True
            self.cond.notify_all()

    def _accept(self):
        while True:
            conn, _ = self.server.accept()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        sent = 0
        try:
            with conn:
                while True:
                    with self.cond:
                        while sent == len(self.lines) and not self.done:
                            self.cond.wait()
                        chunk = self.lines[sent:]
                        done = self.done
                    if chunk:
                        conn.sendall(b"".join(chunk))
                        sent += len(chunk)
                    elif done:
                        return
        except OSError:
            return  # the source went away (a restart): it connects again


def build_writer_function(config, state_dir, fail_at):
    from pyflink.common import Types
    from pyflink.datastream import KeyedProcessFunction
    from pyflink.datastream.state import ValueStateDescriptor

    class WriteShard(KeyedProcessFunction):
        """Writes one shard's records in input order; its buffer lives in Flink keyed state.

        A checkpoint therefore holds exactly the records taken in and not yet acknowledged
        (acknowledged ones are removed before the element's processing ends, and PyFlink
        finishes the Python bundle, state included, before the checkpoint barrier passes).
        """

        def open(self, ctx):
            self.state = ctx.get_state(ValueStateDescriptor("shard", Types.PICKLED_BYTE_ARRAY()))
            group = ctx.get_metrics_group().add_group("tecton")
            flink_counters = {name: group.counter(name) for name in METRIC_NAMES}
            self.counters = Counters(on_inc=lambda name, n: flink_counters[name].inc(n))
            self.subtask = ctx.get_index_of_this_subtask()
            self.attempt = ctx.get_attempt_number()
            rng = random.Random(f"{config.seed}/{self.subtask}/{self.attempt}")
            make = KafkaWriter if config.kafka_bootstrap else IngestWriter
            self.writer = make(config, self.counters, rng)
            # One file per opened instance: an instance opened again for the same attempt
            # (its counters back at zero) must not overwrite what the first one counted.
            self.tag = f"{self.subtask}-{self.attempt}-{uuid.uuid4().hex[:8]}"
            self.size = config.records_per_request

        def close(self):
            self.writer.close()
            self._save_metrics()

        def _save_metrics(self):
            path = os.path.join(state_dir, f"metrics-{self.tag}.json")
            with open(path + ".tmp", "w") as f:
                json.dump(self.counters.values, f)
            os.replace(path + ".tmp", path)

        def _flush(self, shard):
            failed = []
            shard.flush(self.writer, self.size, lambda seq, record, reason: failed.append((seq, reason)))
            if failed:
                self.counters.inc("records_failed", len(failed))
                with open(os.path.join(state_dir, f"failed-{self.tag}.jsonl"), "a") as f:
                    for seq, reason in failed:
                        f.write(json.dumps({"seq": seq, "reason": reason}) + "\n")
            self._save_metrics()

        def process_element(self, value, ctx):
            _shard, seq_text, line = value.split("\t", 2)
            seq = int(seq_text)
            shard = self.state.value() or ShardState()
            first = shard.high_seq < 0
            if not shard.offer(seq, json.loads(line)):
                return  # replayed after a restore: in the restored buffer or acknowledged before
                yield
            if fail_at is not None and seq == fail_at and self.attempt == 0:
                # The test hook: a crash right after Tecton acknowledged a write, before any
                # checkpoint could record it (the worst moment for duplicates).
                self._flush(shard)
                raise RuntimeError(f"injected failure at input line {seq} (FLINK_SINK_FAIL_AT)")
            timers = ctx.timer_service()
            if first:
                timers.register_event_time_timer(END_OF_INPUT)
            if len(shard.buffer) >= self.size:
                self._flush(shard)
            elif shard.deadline_ms == 0:
                shard.deadline_ms = timers.current_processing_time() + config.linger_ms
                timers.register_processing_time_timer(shard.deadline_ms)
            self.state.update(shard)
            yield from ()  # PyFlink iterates what its functions return; this one emits nothing

        def on_timer(self, timestamp, ctx):
            shard = self.state.value()
            if shard is None or not shard.buffer:
                return
                yield
            if timestamp == END_OF_INPUT or timestamp == shard.deadline_ms:
                self._flush(shard)
                self.state.update(shard)
            yield from ()

    return WriteShard()


def ensure_topic(config, partitions):
    """Creates the stream source's topic when the broker does not have it yet."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=config.kafka_bootstrap, request_timeout_ms=10000)
    try:
        if config.topic not in admin.list_topics():
            admin.create_topics([NewTopic(config.topic, num_partitions=partitions, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def run_job(config, port, state_dir, fail_at, checkpoint_ms, tmp_dir):
    from pyflink.common import Configuration, Types
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.datastream.data_stream import DataStream, KeyedStream
    from pyflink.java_gateway import get_gateway
    from pyflink.table import StreamTableEnvironment

    conf = Configuration()
    # Flink's Python workers run this interpreter, whatever PATH says.
    conf.set_string("python.executable", sys.executable)
    conf.set_string("python.client.executable", sys.executable)
    conf.set_string("io.tmp.dirs", tmp_dir)
    conf.set_string("restart-strategy.type", "fixed-delay")
    conf.set_string("restart-strategy.fixed-delay.attempts", "10")
    conf.set_string("restart-strategy.fixed-delay.delay", "500 ms")
    # Small Python bundles: elements reach the writer as they come, not 1,000 at a time.
    conf.set_string("python.fn-execution.bundle.size", "100")
    conf.set_string("python.fn-execution.bundle.time", "5")
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(1)
    env.enable_checkpointing(checkpoint_ms)
    env.add_python_file(os.path.join(HERE, "tecton_sink.py"))

    j_lines = env._j_stream_execution_environment.socketTextStream("127.0.0.1", port, "\n", 0)
    # Keyed by the shard the relay wrote before each line, in Java. DataStream.key_by would run
    # a Python function in the source's task; when the writer's task fails, Flink cancels that
    # task, and cancelling a Python operator while its bundle is in flight can drive the shared
    # Python environment's reference count below zero: a fatal error that stops the
    # mini-cluster's only TaskManager, after which the restarted job waits for a slot forever.
    # With no Python in the source's task only the writer's task uses the Python environment.
    t_env = StreamTableEnvironment.create(env)
    t_env.create_temporary_view("relay_lines", t_env.from_data_stream(DataStream(j_lines)))
    keyed_rows = t_env.to_append_stream(
        t_env.sql_query("SELECT CAST(SPLIT_INDEX(f0, CHR(9), 0) AS INT), f0 FROM relay_lines"),
        Types.ROW([Types.INT(), Types.STRING()]),
    )
    # The row layout PyFlink's own key_by produces: (key, element), keyed by field 0.
    j_keyed = keyed_rows._j_data_stream.keyBy(
        get_gateway().jvm.KeyByKeySelector(), Types.ROW([Types.INT()]).get_java_type_info()
    )
    shards = config.shards
    (
        KeyedStream(j_keyed, Types.STRING(), keyed_rows)
        .process(build_writer_function(config, state_dir, fail_at))
        .name("write-to-tecton")
        .set_parallelism(min(shards, os.cpu_count() or 1))
    )
    env.execute("flink-sink")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", help="a JSON Lines file instead of stdin (e.g. $SINK_INPUT)")
    parser.add_argument("--kafka-bootstrap", default="", help="produce to this broker (the Kafka pattern)")
    parser.add_argument("--kafka-topic", default="", help="the stream source's topic (default transactions)")
    parser.add_argument("--kafka-partitions", type=int, default=1, help="partitions of the topic if it is created")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.kafka_topic:
        env["TECTON_KAFKA_TOPIC"] = args.kafka_topic
    try:
        config = SinkConfig.from_env(env, args.kafka_bootstrap)
    except ValueError as e:
        fail_usage(str(e))
    fail_at = int(os.environ["FLINK_SINK_FAIL_AT"]) if os.environ.get("FLINK_SINK_FAIL_AT") else None
    checkpoint_ms = int(os.environ.get("SINK_CHECKPOINT_MS") or 1000)

    if config.kafka_bootstrap:
        try:
            ensure_topic(config, args.kafka_partitions)
        except Exception as e:  # an unreachable broker: nothing was written
            print(f"flink_sink.py: the Kafka broker {config.kafka_bootstrap} is not usable: {e}", file=sys.stderr)
            return 1

    bad_input = []
    stream = open(args.input, encoding="utf-8") if args.input else sys.stdin
    relay = LineRelay(
        stream,
        lambda seq, _record, reason: bad_input.append((seq, reason)),
        lambda record: shard_of(record, config.key_fields, config.shards),
    )
    state_dir = tempfile.mkdtemp(prefix="flink-sink-")
    # Flink unpacks a 24 MB RPC jar and its working files into the JVM's temp directory and
    # leaves them there: keep them in this run's directory, removed at exit.
    jvm_tmp = os.path.join(state_dir, "tmp")
    os.makedirs(jvm_tmp)
    os.environ["JVM_ARGS"] = f"{os.environ.get('JVM_ARGS', '')} -Djava.io.tmpdir={jvm_tmp}".strip()
    try:
        run_job(config, relay.port, state_dir, fail_at, checkpoint_ms, jvm_tmp)
    except Exception as e:  # the job itself failed: nothing more can be said of the records
        shutil.rmtree(state_dir, ignore_errors=True)
        causes = [line.strip() for line in str(e).splitlines() if line.strip().startswith("Caused by")]
        why = causes[-1] if causes else str(e).splitlines()[0]
        print(f"flink_sink.py: the Flink job failed: {why}", file=sys.stderr, flush=True)
        return 1

    totals = {name: 0 for name in METRIC_NAMES}
    for path in glob.glob(os.path.join(state_dir, "metrics-*.json")):
        with open(path) as f:
            for name, value in json.load(f).items():
                totals[name] += value
    attempts = {os.path.basename(p).split("-")[2] for p in glob.glob(os.path.join(state_dir, "metrics-*.json"))}
    if len(attempts) > 1:
        print(
            f"flink_sink.py: the writer ran {len(attempts)} attempts (Flink restored the last checkpoint in between)",
            file=sys.stderr,
        )
    failed = list(bad_input)
    for path in glob.glob(os.path.join(state_dir, "failed-*.jsonl")):
        with open(path) as f:
            failed.extend((doc["seq"], doc["reason"]) for doc in map(json.loads, f))
    print(json.dumps({name: totals[name] for name in METRIC_NAMES[:3]}), flush=True)
    for seq, reason in sorted(failed):
        print(f"not written: input #{seq}: {reason}", file=sys.stderr)
    shutil.rmtree(state_dir, ignore_errors=True)
    if failed:
        print(f"flink_sink.py: {len(failed)} records were not written", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The py4j gateway's threads can keep the interpreter alive after the job; leave now.
    os._exit(code)
