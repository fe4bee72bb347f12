#!/usr/bin/env bash
# Measures the Flink job in the Kafka pattern: pace.py feeds it RATE records/s for DURATION
# seconds, the job produces them to a fresh topic on the broker, and `tecton-sim serve
# --kafka-bootstrap` consumes and materializes them. Prints the mock's consumer counts and the
# stream source's freshness (servable time minus the record's event time, which pace.py stamps
# when it writes the line and the job carries as the Kafka timestamp).
#
#   TECTON_SIM_KAFKA_BOOTSTRAP=127.0.0.1:PORT examples/flink-sink/measure_kafka.sh 500 60
#
# Needs tecton-sim on PATH (or TECTON_SIM=path), .venv-flink (scripts/setup-flink.sh) and a
# broker (scripts/kafka-broker.sh start).
set -euo pipefail
rate="${1:?usage: measure_kafka.sh RATE DURATION_S}"
duration="${2:?usage: measure_kafka.sh RATE DURATION_S}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
python="$repo_root/.venv-flink/bin/python"
sim="${TECTON_SIM:-tecton-sim}"
bootstrap="${TECTON_SIM_KAFKA_BOOTSTRAP:?start a broker: scripts/kafka-broker.sh start}"

work="$(mktemp -d)"
topic="flink_measure_$$_$(date +%s)"
sed "s/topic = \"transactions\"/topic = \"$topic\"/" "$repo_root/mock-tecton/src/repo/default.toml" >"$work/repo.toml"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
"$sim" serve -p "$port" -c "$work/repo.toml" --kafka-bootstrap "$bootstrap" >"$work/serve.log" 2>&1 &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null; rm -rf "$work"' EXIT
until curl -sf "$url/_mock/kafka" >/dev/null; do sleep 0.2; done

started=$(date +%s.%N)
set +e
python3 "$here/pace.py" --rate "$rate" --duration "$duration" |
    "$python" "$here/flink_sink.py" --kafka-bootstrap "$bootstrap" --kafka-topic "$topic" --kafka-partitions 2 \
        >"$work/sink.out" 2>"$work/sink.err"
status=$?
set -e
ended=$(date +%s.%N)
total=$(python3 -c "print(int($rate * $duration))")
# Wait (at most 60 s) until the stream has materialized every record.
for _ in $(seq 300); do
    n="$(curl -s "$url/_mock/streams/transactions_stream/progress?recent=0" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["freshness_ms"]["count"])')"
    [[ "$n" -ge "$total" ]] && break
    sleep 0.2
done
echo "sink exit $status after $(python3 -c "print(round($ended - $started, 1))") s; metrics: $(tail -1 "$work/sink.out")"
curl -s "$url/_mock/streams/transactions_stream/progress?recent=0" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
print("stream freshness_ms:", json.dumps(doc["freshness_ms"]))
print("dropped:", json.dumps(doc.get("dropped", {})))'
curl -s "$url/_mock/kafka" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
parts = doc.get("partitions", [])
print("consumed:", sum(p.get("consumed", 0) for p in parts), "refused:", sum(p.get("refused", 0) for p in parts))'
[[ $status -eq 0 ]] || tail -5 "$work/sink.err" >&2
