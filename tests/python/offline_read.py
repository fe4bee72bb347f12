"""Reads one push source's offline store with pyarrow, as a user would, and prints JSON.

    python offline_read.py <data-dir>/offline/<source> <nested column>...

Prints {"schema": {column: arrow type}, "rows": [...]} with rows sorted by _seq, timestamps as
integer nanoseconds, and the named nested columns parsed from their JSON strings.
"""
import json
import sys

import pyarrow as pa
import pyarrow.dataset as ds


def main() -> None:
    root, nested = sys.argv[1], set(sys.argv[2:])
    table = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    schema = {f.name: str(f.type) for f in table.schema}
    columns = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.int64())
        elif pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if pa.types.is_date(col.type):
            # The hive partition `date=YYYY-MM-DD`, which pyarrow may infer as a date.
            col = col.cast(pa.string())
        values = col.to_pylist()
        if name in nested:
            values = [None if v is None else json.loads(v) for v in values]
        columns[name] = values
    rows = [
        {name: columns[name][i] for name in table.column_names}
        for i in range(table.num_rows)
    ]
    rows.sort(key=lambda r: r["_seq"])
    print(json.dumps({"schema": schema, "rows": rows}))


if __name__ == "__main__":
    main()
