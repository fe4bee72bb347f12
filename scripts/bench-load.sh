#!/usr/bin/env bash
# Benchmark of the load generator beside wrk, on the same target: the mock's POST /ingest
# with one record per request, served by `tecton-sim serve` in its own process on loopback.
# Both tools send the same record (the generator through --input), so the server does the same
# work for each; generated records would grow the mock's state and measure the mock instead.
#
#   scripts/bench-load.sh            # DUR=10 CONN=64 ROUNDS=3 PORT=18089 by default
#
# Prints (1) the maximum throughput of each tool (requests/s; best of ROUNDS, alternating so
# both see the same machine) and their ratio, and (2) the generator's rate accuracy: achieved
# vs offered records/s and late sends at fixed rates (wrk has no rate control, so this part
# has no peer). Installs wrk (Debian package) when it is missing. Numbers depend on the
# machine; compare the ratio, not the absolute figures.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${DUR:-10}
CONN=${CONN:-64}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18089}
RATES=${RATES:-1000 5000 10000 20000}
URL="http://127.0.0.1:$PORT"

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  if [ "$(id -u)" -eq 0 ]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
fi
cargo build --release --quiet --bin tecton-sim
BIN=target/release/tecton-sim
WORK=$(mktemp -d)

"$BIN" serve --port "$PORT" --journal-capacity 10000 >"$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do
  curl -sf "$URL/_mock/health" >/dev/null 2>&1 && break
  sleep 0.1
done

NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
RECORD='{"user_id":"u1","transaction_id":"t1","merchant":"m1","amt":12.5,"is_fraud":0,"timestamp":"'"$NOW"'"}'
echo "$RECORD" >"$WORK/one.jsonl"
cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Tecton-key demo-editor-key"
wrk.body = '{"workspace_name":"prod","dry_run":false,"records":{"transactions":[{"record":$RECORD}]}}'
LUA

wrk_rps() {
  curl -sf -X POST "$URL/_mock/reset" >/dev/null
  wrk -t2 -c"$CONN" -d"${DUR}s" -s "$WORK/post.lua" "$URL/ingest" | awk '/Requests\/sec/ {print $2}'
}

ours() { # rate [batch] -> "achieved late errors p99 uncorrected-p99"
  "$BIN" load run --url "$URL" --pattern push --rate "$1" --duration "${DUR}s" --batch "${2:-1}" \
    --connections "$CONN" --seed 1 --quiet --input "$WORK/one.jsonl" --out "$WORK/r" >/dev/null
  python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["points"][0]
print(round(p["achieved_rate"],1), p["late_sends"], sum(p["errors"].values()), p["latency_ms"]["p99"], p["latency_uncorrected_ms"]["p99"])' "$WORK/r/report.json"
}

best_wrk=0; best_ours=0
for round in $(seq "$ROUNDS"); do
  w=$(wrk_rps); o=$(ours 200000 | cut -d' ' -f1)
  echo "round $round: wrk $w req/s, tecton-sim load $o req/s"
  best_wrk=$(python3 -c "print(max($best_wrk, $w))"); best_ours=$(python3 -c "print(max($best_ours, $o))")
done
echo "max throughput (best of $ROUNDS, $CONN connections, ${DUR}s): wrk $best_wrk req/s, tecton-sim load $best_ours req/s, ratio $(python3 -c "print(round($best_ours / $best_wrk, 3))")"

echo "rate accuracy (push, 1 record per request, ${DUR}s each):"
printf '  %10s %12s %9s %8s %7s %12s %12s\n' offered achieved ratio late errors "p99 ms" "uncorr p99"
for r in $RATES; do
  read -r achieved late errors p99 up99 < <(ours "$r")
  printf '  %10s %12s %9s %8s %7s %12s %12s\n' "$r" "$achieved" "$(python3 -c "print(round($achieved / $r, 4))")" "$late" "$errors" "$p99" "$up99"
done
echo "and in batches of 10 records per request:"
for r in 10 ${BATCH_RATES:-50000}; do
  read -r achieved late errors p99 up99 < <(ours "$r" 10)
  printf '  %10s %12s %9s %8s %7s %12s %12s\n' "$r" "$achieved" "$(python3 -c "print(round($achieved / $r, 4))")" "$late" "$errors" "$p99" "$up99"
done
