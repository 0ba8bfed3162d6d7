"""Reads a Cauce lake folder with pyarrow and with DuckDB, independently of the Rust code, and
prints what it found as JSON: per kind, the column types and the rows (timestamps as epoch ms).
Used by exporter/tests/roundtrip.rs."""
import glob
import json
import os
import sys

import duckdb
import pyarrow.parquet as pq

root = sys.argv[1]
out = {}
for kind in ("events", "stories", "tests"):
    files = sorted(glob.glob(os.path.join(root, kind, "dt=*", "hour=*", "*.parquet")))
    if not files:
        continue
    tables = [pq.read_table(f, partitioning=None) for f in files]
    schema = tables[0].schema
    rows = []
    for t in tables:
        assert t.schema.equals(schema), "one schema per kind"
        for row in t.to_pylist():
            rows.append(row)

    def plain(v):
        if hasattr(v, "timestamp"):
            return round(v.timestamp() * 1000)
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    pattern = os.path.join(root, kind, "dt=*", "hour=*", "*.parquet")
    con = duckdb.connect()
    count = con.execute(f"SELECT count(*) FROM read_parquet('{pattern}', hive_partitioning = false)").fetchone()[0]
    apps = con.execute(
        f"SELECT app_id, count(*) FROM read_parquet('{pattern}', hive_partitioning = false) GROUP BY 1 ORDER BY 1"
    ).fetchall()
    out[kind] = {
        "types": {f.name: str(f.type) for f in schema},
        "nullable": {f.name: f.nullable for f in schema},
        "rows": [{k: plain(v) for k, v in r.items()} for r in rows],
        "duckdb_count": count,
        "duckdb_per_app": [[a, n] for a, n in apps],
    }
print(json.dumps(out))
