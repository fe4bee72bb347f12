#!/usr/bin/env python3
"""Writes demo `transactions` records as JSON Lines at a steady rate, for feeding a sink by hand
(the Kafka pattern's measurement in README.md; the push pattern uses `tecton-sim load`).

    python3 pace.py --rate 500 --duration 60 [--users 100] [--seed 7] | python flink_sink.py ...

Each record's `timestamp` is the time it is written; stderr gets the lines written late (more
than 10 ms after they were due) at the end.
"""

import argparse
import datetime
import json
import random
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, required=True, help="records per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    total = int(args.rate * args.duration)
    start = time.monotonic()
    late = 0
    for i in range(total):
        due = start + i / args.rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        elif now - due > 0.01:
            late += 1
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        record = {
            "user_id": f"user_{rng.randrange(args.users):03d}",
            "transaction_id": f"p{args.seed}-{i}",
            "merchant": f"m{rng.randrange(50)}",
            "amt": round(rng.uniform(1, 500), 2),
            "is_fraud": 0,
            "timestamp": stamp,
        }
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()
    print(f"pace.py: {total} records in {time.monotonic() - start:.1f} s, {late} late", file=sys.stderr)


if __name__ == "__main__":
    main()
