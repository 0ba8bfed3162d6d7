"""Prints the rows of a lake's table as JSON, with pyarrow (an independent reader).
Usage: lake_rows.py LAKE_DIR TABLE [COLUMN ...]: [{column: value}], the Hive partitions left out.
"""

import json
import os
import sys

import pyarrow.dataset as ds


def main():
    lake, table, columns = sys.argv[1], sys.argv[2], sys.argv[3:]
    path = os.path.join(lake, table)
    if not os.path.isdir(path):
        print("[]")
        return
    data = ds.dataset(path, format="parquet", partitioning="hive")
    rows = data.to_table(columns=columns or None).to_pylist()
    print(json.dumps(rows, default=str))


if __name__ == "__main__":
    main()
