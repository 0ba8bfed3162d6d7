"""Cross-check of every report against DuckDB SQL, written independently of the Rust code.

Usage: crosscheck_duckdb.py LAKE_DIR REPORTS_JSON

REPORTS_JSON is the output of `cauce report --format json` over the whole lake. Each report is
recomputed here from the Parquet files with DuckDB (the statistics of the experiments with SciPy
and NumPy: Holm by hand, Benjamini-Hochberg by SciPy, the sequential confidence sequence from its
paper's formula, the Bayesian view from SciPy's Beta moments, CUPED with NumPy over DuckDB's
per-user covariates) and compared row by row; floats must agree within 1e-9. Exits non-zero with
the differences.
"""

import json
import math
import sys
from datetime import date, datetime, timezone

import duckdb
import numpy as np
from scipy.stats import beta, chi2, false_discovery_control, norm

TOL = 1e-9
TOP = 10
# The report's defaults (analytics::report::Settings).
PLANNED_USERS = 10_000
CUPED_DAYS = 14


def connect(lake):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET threads = 1")

    def files(kind):
        return f"read_parquet('{lake}/{kind}/*/*/*.parquet', hive_partitioning = false)"

    # Copies and versions: the first copy of an event; the latest version of a story or test,
    # dropped when that version is a removal.
    con.execute(f"""CREATE VIEW ev AS SELECT * FROM (
        SELECT *, row_number() OVER (PARTITION BY app_id, event_id ORDER BY received_at, ingest_seq) AS rn
        FROM {files('events')}) WHERE rn = 1""")
    con.execute(f"""CREATE VIEW st AS SELECT * FROM (
        SELECT *, row_number() OVER (PARTITION BY app_id, story_id
            ORDER BY updated_at DESC, op = 'remove' DESC, received_at DESC, ingest_seq DESC) AS rn
        FROM {files('stories')}) WHERE rn = 1 AND op <> 'remove'""")
    con.execute(f"""CREATE VIEW te AS SELECT * FROM (
        SELECT *, row_number() OVER (PARTITION BY app_id, experiment, user_id
            ORDER BY updated_at DESC, op = 'remove' DESC, received_at DESC, ingest_seq DESC) AS rn
        FROM {files('tests')}) WHERE rn = 1 AND op <> 'remove'""")
    return con


def rows(con, sql):
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


SQL = {
    ("volume", "daily"): """
        SELECT app_id, CAST(ts AS DATE) AS day, count(*) AS events,
               count(DISTINCT user_id) AS users, count(DISTINCT session_id) AS sessions
        FROM ev GROUP BY ALL ORDER BY app_id, day""",
    ("volume", "hourly"): """
        SELECT app_id, date_trunc('hour', ts) AS hour, count(*) AS events
        FROM ev GROUP BY ALL ORDER BY app_id, hour""",
    ("volume", "top_events"): f"""
        SELECT app_id, name, events FROM (
            SELECT app_id, name, count(*) AS events,
                   row_number() OVER (PARTITION BY app_id ORDER BY count(*) DESC, name) AS r
            FROM ev GROUP BY app_id, name) WHERE r <= {TOP} ORDER BY app_id, r""",
    ("volume", "active_users"): """
        WITH d AS (SELECT app_id, user_id, CAST(ts AS DATE) AS day FROM ev),
             l AS (SELECT app_id, max(day) AS as_of FROM d GROUP BY app_id)
        SELECT app_id, as_of,
               count(DISTINCT user_id) FILTER (WHERE as_of - day < 1) AS dau,
               count(DISTINCT user_id) FILTER (WHERE as_of - day < 7) AS wau,
               count(DISTINCT user_id) FILTER (WHERE as_of - day < 30) AS mau
        FROM d JOIN l USING (app_id) GROUP BY ALL ORDER BY app_id""",
    ("anomalies", "anomalies"): """
        WITH c AS (SELECT app_id, date_trunc('hour', ts) AS hour, count(*) AS events FROM ev GROUP BY ALL),
             r AS (SELECT app_id, min(hour) AS f, max(hour) AS l FROM c GROUP BY app_id),
             g AS (SELECT app_id, unnest(generate_series(f, l, INTERVAL 1 HOUR)) AS hour FROM r),
             h AS (SELECT g.app_id, g.hour, coalesce(c.events, 0) AS events, hour(g.hour) AS hod
                   FROM g LEFT JOIN c ON c.app_id = g.app_id AND c.hour = g.hour),
             b AS (SELECT app_id, hod, median(CAST(events AS DOUBLE)) AS baseline, count(*) AS samples
                   FROM h GROUP BY ALL),
             hb AS (SELECT h.*, b.baseline, b.samples FROM h JOIN b USING (app_id, hod)),
             m AS (SELECT app_id, hod, median(abs(events - baseline)) AS mad FROM hb GROUP BY ALL),
             s AS (SELECT hb.*, (events - baseline)
                          / greatest(1.4826 * mad, sqrt(greatest(baseline, 1.0))) AS score
                   FROM hb JOIN m USING (app_id, hod)
                   WHERE samples >= 3 AND (events >= 30 OR baseline >= 30))
        SELECT app_id, hour, events, baseline, score,
               CASE WHEN score > 0 THEN 'spike' ELSE 'drop' END AS kind
        FROM s WHERE abs(score) >= 5 ORDER BY app_id, hour""",
    ("funnels", "funnels"): """
        WITH s AS (SELECT app_id, name AS story, user_id, unnest(steps) AS step,
                          unnest(range(len(steps))) AS step_index
                   FROM st WHERE user_id IS NOT NULL),
             reached AS (SELECT app_id, story, step_index, count(DISTINCT user_id) AS users_reached
                         FROM s GROUP BY ALL),
             names AS (SELECT app_id, story, step_index, step.name AS step,
                              row_number() OVER (PARTITION BY app_id, story, step_index
                                                 ORDER BY count(*) DESC, step.name) AS r
                       FROM s GROUP BY app_id, story, step_index, step.name)
        SELECT app_id, story, step_index, step, users_reached,
               users_reached / first_value(users_reached) OVER w AS conversion_from_start,
               users_reached / lag(users_reached, 1, users_reached) OVER w AS conversion_from_prev
        FROM reached JOIN names USING (app_id, story, step_index)
        WHERE r = 1
        WINDOW w AS (PARTITION BY app_id, story ORDER BY step_index)
        ORDER BY app_id, story, step_index""",
    ("paths", "paths"): f"""
        WITH e AS (SELECT * FROM ev WHERE session_id IS NOT NULL),
             w AS (SELECT app_id, session_id, name AS n0,
                          lead(name, 1) OVER o AS n1, lead(name, 2) OVER o AS n2
                   FROM e WINDOW o AS (PARTITION BY app_id, session_id ORDER BY ts, received_at, ingest_seq)),
             p AS (SELECT app_id, n0 || ' > ' || n1 || ' > ' || n2 AS path,
                          count(DISTINCT session_id) AS sessions
                   FROM w WHERE n2 IS NOT NULL GROUP BY ALL),
             t AS (SELECT app_id, count(DISTINCT session_id) AS total FROM e GROUP BY app_id),
             ranked AS (SELECT p.app_id, path, sessions, sessions / total AS share,
                               row_number() OVER (PARTITION BY p.app_id ORDER BY sessions DESC, path) AS r
                        FROM p JOIN t USING (app_id))
        SELECT app_id, path, sessions, share FROM ranked WHERE r <= {TOP} ORDER BY app_id, r""",
    ("retention", "retention"): """
        WITH a AS (SELECT DISTINCT app_id, user_id, CAST(date_trunc('week', ts) AS DATE) AS week
                   FROM ev WHERE user_id IS NOT NULL),
             c AS (SELECT app_id, user_id, min(week) AS cohort_week FROM a GROUP BY ALL),
             x AS (SELECT a.app_id, cohort_week, (week - cohort_week) // 7 AS week_offset,
                          count(DISTINCT a.user_id) AS users
                   FROM a JOIN c USING (app_id, user_id) GROUP BY ALL)
        SELECT app_id, cohort_week, week_offset, users,
               users / first_value(users) OVER (PARTITION BY app_id, cohort_week ORDER BY week_offset) AS retention
        FROM x ORDER BY app_id, cohort_week, week_offset""",
    ("stories", "stories"): """
        WITH drops AS (SELECT app_id, name AS story, steps[len(steps)].name AS last_step
                       FROM st WHERE outcome IN ('abandoned', 'failed') AND len(steps) > 0),
             top AS (SELECT app_id, story, last_step AS top_drop_step FROM (
                        SELECT app_id, story, last_step,
                               row_number() OVER (PARTITION BY app_id, story ORDER BY count(*) DESC, last_step) AS r
                        FROM drops GROUP BY app_id, story, last_step) WHERE r = 1),
             agg AS (SELECT app_id, name AS story, count(*) AS started,
                            count(*) FILTER (WHERE outcome = 'completed') AS completed,
                            count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned,
                            count(*) FILTER (WHERE outcome = 'failed') AS failed,
                            median((epoch_ms(ended_at) - epoch_ms(started_at)) / 1000.0)
                                FILTER (WHERE outcome = 'completed' AND ended_at IS NOT NULL) AS median_duration_s
                     FROM st GROUP BY ALL)
        SELECT app_id, story, started, completed, abandoned, failed,
               completed / started AS completion_rate, median_duration_s, top_drop_step
        FROM agg LEFT JOIN top USING (app_id, story) ORDER BY app_id, story""",
}


def holm(ps):
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    out, running = [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        out[i] = running
    return out


def sequential(x, n, xc, nc):
    """Howard et al. (2021), eq. 14: the Gaussian-mixture confidence sequence, tuned for
    PLANNED_USERS; the p-value is the smallest alpha whose sequence excludes 0."""
    p, pc, big_n = x / n, xc / nc, n + nc
    diff = p - pc
    sigma2 = (p * (1 - p) / n + pc * (1 - pc) / nc) * big_n
    l2 = -2 * math.log(0.05)
    rho2 = (l2 + math.log(l2 + 1)) / PLANNED_USERS
    spread = big_n * rho2 + 1
    half = math.sqrt(sigma2 * 2 * spread / (big_n ** 2 * rho2) * math.log(math.sqrt(spread) / 0.05))
    if sigma2 > 0:
        pv = min(1.0, math.sqrt(spread) * math.exp(-diff ** 2 * big_n ** 2 * rho2 / (2 * sigma2 * spread)))
    else:
        pv = 1.0 if diff == 0 else 0.0
    return pv, diff - half, diff + half


def bayes(x, n, xc, nc):
    v, c = beta(1 + x, 1 + n - x), beta(1 + xc, 1 + nc - xc)
    mu, sd = v.mean() - c.mean(), math.sqrt(v.var() + c.var())
    return float(norm.cdf(mu / sd)), float(sd * norm.pdf(mu / sd) - mu * norm.cdf(-mu / sd))


def cuped(variant, control):
    if len(variant) < 2 or len(control) < 2:
        return None
    y = np.array([r[0] for r in variant + control], float)
    x = np.array([r[1] for r in variant + control], float)
    if np.var(x, ddof=1) <= 0:
        return None
    theta = np.cov(y, x, ddof=1)[0, 1] / np.var(x, ddof=1)
    adj = y - theta * (x - x.mean())
    a, b = adj[: len(variant)], adj[len(variant):]
    diff = a.mean() - b.mean()
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    z95 = norm.ppf(0.975)
    return dict(
        cuped_diff=float(diff),
        cuped_ci95_low=float(diff - z95 * se),
        cuped_ci95_high=float(diff + z95 * se),
        cuped_p_value=float(2 * norm.sf(abs(diff / se))) if se > 0 else 1.0,
        cuped_variance_reduction=float(1 - adj.var(ddof=1) / y.var(ddof=1)) if y.var(ddof=1) > 0 else 0.0,
    )


def experiments(con, lake):
    arms = rows(con, """
        SELECT app_id, experiment, variant, count(*) AS exposures,
               count(*) FILTER (WHERE converted) AS conversions
        FROM te GROUP BY ALL ORDER BY app_id, experiment, variant""")
    # Each exposed user's conversion and their events in the CUPED_DAYS before the exposure.
    users = {}
    for r in rows(con, f"""
        SELECT te.app_id, te.experiment, te.variant, te.user_id,
               CASE WHEN te.converted THEN 1.0 ELSE 0.0 END AS y,
               (SELECT count(*) FROM ev WHERE ev.app_id = te.app_id AND ev.user_id = te.user_id
                  AND ev.ts < te.exposed_at
                  AND ev.ts >= te.exposed_at - INTERVAL {CUPED_DAYS} DAY)::DOUBLE AS x
        FROM te"""):
        users.setdefault((r["app_id"], r["experiment"], r["variant"]), []).append((r["y"], r["x"]))
    multiple = {(r["app_id"], r["experiment"]): r["n"] for r in rows(con, f"""
        SELECT app_id, experiment, count(*) AS n FROM (
            SELECT app_id, experiment, user_id FROM read_parquet('{lake}/tests/*/*/*.parquet')
            GROUP BY ALL HAVING count(DISTINCT variant) > 1) GROUP BY ALL""")}
    out = []
    groups = {}
    for a in arms:
        groups.setdefault((a["app_id"], a["experiment"]), []).append(a)
    for (app, exp), variants in sorted(groups.items()):
        control = next((v for v in variants if v["variant"] == "control"), variants[0])
        total = sum(v["exposures"] for v in variants)
        if len(variants) >= 2:
            expected = total / len(variants)
            stat = sum((v["exposures"] - expected) ** 2 / expected for v in variants)
            srm = float(chi2.sf(stat, len(variants) - 1))
        else:
            srm = None
        xc, nc = control["conversions"], control["exposures"]
        pc = xc / nc
        group = []
        for v in variants:
            x, n = v["conversions"], v["exposures"]
            p = x / n
            row = dict(v, conversion_rate=p, lift=None, ci95_low=None, ci95_high=None,
                       p_value=None, p_value_holm=None, q_value_bh=None, sequential_p_value=None,
                       sequential_cs95_low=None, sequential_cs95_high=None, chance_to_beat=None,
                       expected_loss=None, cuped_diff=None, cuped_ci95_low=None,
                       cuped_ci95_high=None, cuped_p_value=None, cuped_variance_reduction=None,
                       srm_p_value=srm, multiple_exposures=multiple.get((app, exp), 0))
            if v is not control:
                se = math.sqrt(p * (1 - p) / n + pc * (1 - pc) / nc)
                z95 = norm.ppf(0.975)
                pool = (x + xc) / (n + nc)
                se_pool = math.sqrt(pool * (1 - pool) * (1 / n + 1 / nc))
                seq = sequential(x, n, xc, nc)
                chance, loss = bayes(x, n, xc, nc)
                row.update(
                    lift=(p - pc) / pc if pc > 0 else None,
                    ci95_low=p - pc - z95 * se,
                    ci95_high=p - pc + z95 * se,
                    p_value=float(2 * norm.sf(abs((p - pc) / se_pool))) if se_pool > 0 else 1.0,
                    sequential_p_value=seq[0],
                    sequential_cs95_low=seq[1],
                    sequential_cs95_high=seq[2],
                    chance_to_beat=chance,
                    expected_loss=loss,
                )
                row.update(cuped(users[(app, exp, v["variant"])],
                                 users[(app, exp, control["variant"])]) or {})
            group.append(row)
        compared = [r for r in group if r["p_value"] is not None]
        if compared:
            ps = [r["p_value"] for r in compared]
            for r, h, q in zip(compared, holm(ps), false_discovery_control(ps, method="bh")):
                r.update(p_value_holm=h, q_value_bh=float(q))
        out += group
    return out


def normal(v):
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(v, date):
        return v.isoformat()
    return v


def same(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=TOL, abs_tol=TOL)
    return a == b


def compare(name, ours, theirs, problems):
    theirs = [{k: normal(v) for k, v in r.items()} for r in theirs]
    if len(ours) != len(theirs):
        problems.append(f"{name}: {len(ours)} rows here, {len(theirs)} in DuckDB")
    for i, (o, t) in enumerate(zip(ours, theirs)):
        for k, v in t.items():
            if not same(o.get(k), v):
                problems.append(f"{name} row {i} {k}: ours {o.get(k)!r}, DuckDB {v!r}\n  ours  {o}\n  duck  {t}")
                break
    return len(theirs)


def main():
    lake, reports_path = sys.argv[1], sys.argv[2]
    with open(reports_path) as f:
        ours = json.load(f)
    con = connect(lake)
    problems = []
    checked = {}
    for (report, table), sql in SQL.items():
        data = ours[report]
        got = data[table] if isinstance(data, dict) else data
        checked[f"{report}.{table}"] = compare(f"{report}.{table}", got, rows(con, sql), problems)
    checked["experiments"] = compare("experiments", ours["experiments"], experiments(con, lake), problems)
    lake_rows = con.execute(
        f"SELECT (SELECT count(*) FROM read_parquet('{lake}/*/*/*/*.parquet', union_by_name = true))").fetchone()[0]
    print(json.dumps({"lake_rows": lake_rows, "rows_checked": checked, "problems": len(problems)}))
    if problems:
        print("\n".join(problems[:30]), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
