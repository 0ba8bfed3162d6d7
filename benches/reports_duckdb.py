"""The DuckDB anchor of the reports benchmark: each report's SQL from tests/crosscheck_duckdb.py,
on one thread, timed over the same lake. Prints {report: median milliseconds}.

Usage: reports_duckdb.py LAKE_DIR RUNS
"""

import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
import crosscheck_duckdb as cc  # noqa: E402


def main():
    lake, runs = sys.argv[1], int(sys.argv[2])
    con = cc.connect(lake)
    reports = {}
    for (report, _table), sql in cc.SQL.items():
        reports.setdefault(report, []).append(lambda sql=sql: cc.rows(con, sql))
    reports["experiments"] = [lambda: cc.experiments(con)]
    out = {}
    for report, queries in reports.items():
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            for q in queries:
                q()
            times.append((time.perf_counter() - start) * 1000)
        out[report] = statistics.median(times)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
