"""Checks the catalog that `cauce catalog` writes against a real lake, with readers that are not
Cauce's: pyarrow for the files' own schemas, DuckDB for the SQL.

Usage: catalog_check.py LAKE_DIR GLUE_JSON DUCKDB_SQL

* Every Parquet file of each table has exactly the Glue table's columns, in order, with the
  pyarrow types the Hive types stand for.
* The DuckDB views read the lake with the declared types (DESCRIBE), every row of it, and the
  `*_latest` views hold one row per key: the latest `updated_at` of a story or test, its key
  dropped when that row is a removal (computed here in plain Python from pyarrow's rows).

Prints JSON: {table: {"files", "rows", "latest", "columns"}}.
"""

import json
import os
import sys
from collections import defaultdict

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

KEYS = {
    "events": ["app_id", "event_id"],
    "stories": ["app_id", "story_id"],
    "tests": ["app_id", "experiment", "user_id"],
}


def hive_to_arrow(t):
    """The pyarrow type a Hive type stands for, as Cauce's files write it."""
    simple = {
        "string": pa.string(),
        "timestamp": pa.timestamp("ms", tz="UTC"),
        "boolean": pa.bool_(),
        "double": pa.float64(),
    }
    if t in simple:
        return simple[t]
    assert t.startswith("array<struct<") and t.endswith(">>"), t
    fields = []
    for f in t[len("array<struct<") : -2].split(","):
        name, ft = f.split(":")
        fields.append(pa.field(name, hive_to_arrow(ft)))
    return pa.list_(pa.struct(fields))


def same_type(declared, actual):
    """Types equal but for nullability, which Hive does not declare."""
    if pa.types.is_list(declared) and pa.types.is_list(actual):
        d, a = declared.value_type, actual.value_type
        return len(d) == len(a) and all(
            d.field(i).name == a.field(i).name and same_type(d.field(i).type, a.field(i).type)
            for i in range(len(d))
        )
    return declared == actual


def latest(rows, table):
    """One row per key: the latest version, removals dropped; any copy of an event."""
    best = {}
    for r in rows:
        k = tuple(r[c] for c in KEYS[table])
        if table == "events":
            best.setdefault(k, r)
            continue
        rank = (r["updated_at"], r["op"] == "remove")
        if k not in best or rank > (best[k]["updated_at"], best[k]["op"] == "remove"):
            best[k] = r
    return {k: r for k, r in best.items() if r.get("op") != "remove"}


def main():
    lake, glue_path, sql_path = sys.argv[1:4]
    glue = json.load(open(glue_path))
    con = duckdb.connect()
    con.execute(open(sql_path).read())
    out = {}
    for table in glue["TableInputs"]:
        name = table["Name"]
        declared = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
        files = []
        for root, _, names in os.walk(os.path.join(lake, name)):
            files += [os.path.join(root, n) for n in names if n.endswith(".parquet")]
        assert files, f"{name}: no Parquet files in the lake"
        rows = []
        for f in files:
            schema = pq.read_schema(f)
            got = [(fld.name, fld.type) for fld in schema]
            assert [n for n, _ in got] == [n for n, _ in declared], (f, got, declared)
            for (n, t), (_, a) in zip(declared, got):
                assert same_type(hive_to_arrow(t), a), (f, n, t, a)
            rows += pq.read_table(f).to_pylist()

        described = {r[0]: r[1] for r in con.execute(f'DESCRIBE "{name}"').fetchall()}
        assert list(described)[: len(declared)] == [n for n, _ in declared], described
        assert described["dt"] == "VARCHAR" and described["hour"] == "VARCHAR", described
        count = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        assert count == len(rows), (name, count, len(rows))

        want = latest(rows, name)
        got = con.execute(f'SELECT * FROM "{name}_latest"').fetchall()
        cols = [d[0] for d in con.execute(f'SELECT * FROM "{name}_latest" LIMIT 0').description]
        got_keys = {tuple(dict(zip(cols, r))[c] for c in KEYS[name]) for r in got}
        assert len(got) == len(got_keys), f"{name}_latest has a key twice"
        assert got_keys == set(want), (name, len(got_keys), len(want))
        if name != "events":
            for r in got:
                d = dict(zip(cols, r))
                w = want[tuple(d[c] for c in KEYS[name])]
                assert d["updated_at"].timestamp() == w["updated_at"].timestamp(), (d, w)
        out[name] = {
            "files": len(files),
            "rows": len(rows),
            "latest": len(got),
            "columns": described,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
