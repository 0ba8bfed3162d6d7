"""The DuckDB anchor of the reports benchmark: each report's SQL from tests/crosscheck_duckdb.py,
on one thread, over the same lake.

Usage: reports_duckdb.py LAKE_DIR

Reads report names from standard input, one per line; for each, runs the report once and prints
its time in milliseconds. The Rust side alternates its own runs with these, so both engines see
the same moments of a shared machine.
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
import crosscheck_duckdb as cc  # noqa: E402


def main():
    con = cc.connect(sys.argv[1])
    reports = {}
    for (report, _table), sql in cc.SQL.items():
        reports.setdefault(report, []).append(lambda sql=sql: cc.rows(con, sql))
    reports["experiments"] = [lambda: cc.experiments(con, sys.argv[1])]
    for line in sys.stdin:
        name = line.strip()
        start = time.perf_counter()
        for q in reports[name]:
            q()
        print(f"{(time.perf_counter() - start) * 1000:.3f}", flush=True)


if __name__ == "__main__":
    main()
