"""Runs micro-batch cases through real Spark Structured Streaming and prints what each batch did.

Usage: python spark_stream_check.py CASES_JSON WORK_DIR

CASES_JSON holds [{"name": str, "delay_s": int, "batches": [[{"user_id", "id", "amt", "ts"}, ...], ...]}].
For each case the job is Tecton's TIME_INTERVAL stream job in miniature: withWatermark (only when
the delay is not 0) -> groupBy(10-minute tumbling window, user_id) -> sum/count of amt, update
output mode, one input file per micro-batch (maxFilesPerTrigger=1; an empty batch is an empty
file). Prints one JSON object: {"spark": version, "cases": {name: [per batch: batch_id,
num_input_rows, watermark, dropped_late, rows]}}. One Spark session serves every case.
"""

import json
import os
import sys
import time

from pyspark.sql import SparkSession, functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

FMT = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
SCHEMA = StructType(
    [
        StructField("user_id", StringType()),
        StructField("id", StringType()),
        StructField("amt", DoubleType()),
        StructField("ts", TimestampType()),
    ]
)


def run_case(spark, case, work):
    base = os.path.join(work, case["name"])
    source = os.path.join(base, "in")
    os.makedirs(source)
    # The file source orders new files by modification time: give each batch its own second.
    t0 = time.time() - 3600
    for i, batch in enumerate(case["batches"]):
        path = os.path.join(source, "batch-%05d.json" % i)
        with open(path, "w") as f:
            for record in batch:
                f.write(json.dumps(record) + "\n")
        os.utime(path, (t0 + i, t0 + i))

    emitted = {}

    def collect(df, batch_id):
        rows = df.select(
            "user_id",
            F.date_format("window.start", FMT).alias("tile_start"),
            F.date_format("window.end", FMT).alias("tile_end"),
            "amt_sum",
            "amt_count",
        ).collect()
        emitted[batch_id] = [r.asDict() for r in rows]

    stream = spark.readStream.schema(SCHEMA).option("maxFilesPerTrigger", 1).json(source)
    if case["delay_s"] > 0:
        stream = stream.withWatermark("ts", "%d seconds" % case["delay_s"])
    agg = stream.groupBy(F.window("ts", "10 minutes"), "user_id").agg(
        F.sum("amt").alias("amt_sum"), F.count("amt").alias("amt_count")
    )
    query = (
        agg.writeStream.outputMode("update")
        .foreachBatch(collect)
        .option("checkpointLocation", os.path.join(base, "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    out = []
    for p in query.recentProgress:
        # pyspark 3.x gives dicts, 4.x progress objects with the same JSON.
        p = p if isinstance(p, dict) else json.loads(p.json)
        batch_id = p["batchId"]
        if batch_id >= len(case["batches"]):
            # A trailing no-data batch Spark may run to evict state; nothing was read.
            continue
        dropped = sum(op.get("numRowsDroppedByWatermark", 0) for op in p.get("stateOperators", []))
        out.append(
            {
                "batch_id": batch_id,
                "num_input_rows": p["numInputRows"],
                "watermark": p.get("eventTime", {}).get("watermark"),
                "dropped_late": dropped,
                "rows": sorted(
                    emitted.get(batch_id, []), key=lambda r: (r["user_id"], r["tile_start"])
                ),
            }
        )
    return out


def main():
    cases_path, work = sys.argv[1], sys.argv[2]
    with open(cases_path) as f:
        cases = json.load(f)
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("tecton-sim-differential")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.streaming.noDataMicroBatches.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    result = {"spark": spark.version, "cases": {}}
    for case in cases:
        result["cases"][case["name"]] = run_case(spark, case, work)
    spark.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
