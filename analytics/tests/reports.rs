//! Known-answer tests: every report on small hand-built lakes, the expected numbers worked out
//! here by hand. Edge cases: an empty range, one user, no control variant, all converted, ties
//! in paths, resent events and newer versions.

mod common;

use cauce_analytics::stats::two_sided_p;
use cauce_analytics::{Scope, Settings};
use chrono::NaiveDate;
use common::{close, reports, rows, Lake, DAY, HOUR, MONDAY};
use serde_json::json;

fn all() -> Scope {
    Scope::default()
}

#[tokio::test(flavor = "multi_thread")]
async fn volume_counts_days_users_sessions_and_active_users_once_per_event() {
    let mut lake = Lake::default();
    let d1 = MONDAY + 10 * HOUR;
    lake.event("a", "e1", "open", "u1", "s1", d1);
    lake.export_again(); // a retried stream batch: counts once
    lake.event("a", "e2", "tap", "u1", "s1", d1 + 1000);
    lake.event("a", "e3", "tap", "u2", "s2", d1 + 2000);
    lake.event("a", "e4", "tap", "", "", d1 + 3000);
    lake.event("a", "e5", "open", "u1", "s3", d1 + 3 * DAY);
    lake.event("a", "e6", "buy", "u3", "s4", d1 + 20 * DAY);
    lake.event("b", "e1", "open", "u9", "", d1);
    let dir = lake.write().await;
    let r = reports(dir.path(), &all(), &Settings::default());

    assert_eq!(
        rows(&r, "volume", "daily"),
        vec![
            json!({"app_id": "a", "day": "2026-11-02", "events": 4, "users": 2, "sessions": 2}),
            json!({"app_id": "a", "day": "2026-11-05", "events": 1, "users": 1, "sessions": 1}),
            json!({"app_id": "a", "day": "2026-11-22", "events": 1, "users": 1, "sessions": 1}),
            json!({"app_id": "b", "day": "2026-11-02", "events": 1, "users": 1, "sessions": 0}),
        ]
    );
    assert_eq!(
        rows(&r, "volume", "top_events"),
        vec![
            json!({"app_id": "a", "name": "tap", "events": 3}),
            json!({"app_id": "a", "name": "open", "events": 2}),
            json!({"app_id": "a", "name": "buy", "events": 1}),
            json!({"app_id": "b", "name": "open", "events": 1}),
        ]
    );
    // a's last day is 11-22: u3 that day and that week; u1, u2 (11-02) and u3 in 30 days.
    assert_eq!(
        rows(&r, "volume", "active_users"),
        vec![
            json!({"app_id": "a", "as_of": "2026-11-22", "dau": 1, "wau": 1, "mau": 3}),
            json!({"app_id": "b", "as_of": "2026-11-02", "dau": 1, "wau": 1, "mau": 1}),
        ]
    );

    // One app and a range of days.
    let scope = Scope {
        app: Some("a".into()),
        from: NaiveDate::from_ymd_opt(2026, 11, 3),
        to: NaiveDate::from_ymd_opt(2026, 11, 21),
    };
    let r = reports(dir.path(), &scope, &Settings::default());
    assert_eq!(
        rows(&r, "volume", "daily"),
        vec![json!({"app_id": "a", "day": "2026-11-05", "events": 1, "users": 1, "sessions": 1})]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_range_gives_empty_tables_and_an_empty_lake_too() {
    let mut lake = Lake::default();
    lake.event("a", "e1", "open", "u1", "s1", MONDAY);
    lake.story(
        "a",
        "s1",
        Some("u1"),
        &["cart"],
        "completed",
        MONDAY,
        Some(MONDAY + 1),
        MONDAY,
    );
    lake.test("a", "x", "u1", "control", Some(true), 0);
    let dir = lake.write().await;
    let future = Scope {
        from: NaiveDate::from_ymd_opt(2030, 1, 1),
        ..Scope::default()
    };
    let empty = tempfile::tempdir().unwrap();
    for (path, scope) in [(dir.path(), &future), (empty.path(), &all())] {
        let r = reports(path, scope, &Settings::default());
        for report in &r.0 {
            for (table, df) in &report.tables {
                assert_eq!(df.height(), 0, "{} {table}", report.name);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn anomalies_find_a_spike_and_a_drop_but_not_the_daily_cycle() {
    let mut lake = Lake::default();
    let mut n = 0;
    for day in 0..5 {
        for hour in 0..24 {
            // Daily seasonality: 100 events per working hour, 10 at night.
            let mut events = if (9..17).contains(&hour) { 100 } else { 10 };
            if day == 2 && hour == 3 {
                events = 210; // the spike
            }
            if day == 3 && hour == 12 {
                events = 0; // the drop
            }
            for k in 0..events {
                n += 1;
                let at = MONDAY + day * DAY + hour * HOUR + k * 1000;
                lake.event("a", &format!("e{n}"), "tick", "", "", at);
            }
        }
    }
    let r = lake.reports().await;
    let found = rows(&r, "anomalies", "anomalies");
    assert_eq!(found.len(), 2, "{found:?}");
    // Hour 3: values 10, 10, 210, 10, 10 → median 10, MAD 0 → scale sqrt(10).
    assert_eq!(found[0]["hour"], "2026-11-04T03:00:00Z");
    assert_eq!(found[0]["kind"], "spike");
    assert_eq!(found[0]["events"], 210);
    assert!(close(&found[0]["baseline"], 10.0));
    assert!(close(&found[0]["score"], 200.0 / 10f64.sqrt()));
    // Hour 12: 100, 100, 100, 0, 100 → median 100, MAD 0 → scale 10.
    assert_eq!(found[1]["hour"], "2026-11-05T12:00:00Z");
    assert_eq!(found[1]["kind"], "drop");
    assert_eq!(found[1]["events"], 0);
    assert!(close(&found[1]["score"], -10.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn funnels_count_users_reaching_each_step_of_the_latest_version() {
    let mut lake = Lake::default();
    let t = MONDAY;
    let steps = ["cart", "address", "pay"];
    lake.story(
        "a",
        "s1",
        Some("u1"),
        &steps,
        "completed",
        t,
        Some(t + 1),
        t + 10,
    );
    lake.story(
        "a",
        "s2",
        Some("u2"),
        &steps[..2],
        "abandoned",
        t,
        None,
        t + 10,
    );
    lake.story(
        "a",
        "s3",
        Some("u3"),
        &steps[..1],
        "abandoned",
        t,
        None,
        t + 10,
    );
    lake.story(
        "a",
        "s4",
        Some("u4"),
        &steps[..1],
        "in_progress",
        t,
        None,
        t + 10,
    );
    lake.story(
        "a",
        "s4",
        Some("u4"),
        &steps,
        "completed",
        t,
        Some(t + 5),
        t + 20,
    );
    lake.story("a", "s5", None, &steps, "completed", t, Some(t + 1), t + 10); // no user
    lake.story(
        "a",
        "s6",
        Some("u1"),
        &["cart", "wishlist"],
        "abandoned",
        t,
        None,
        t + 10,
    );
    lake.story(
        "solo",
        "s1",
        Some("u1"),
        &steps[..2],
        "abandoned",
        t,
        None,
        t + 10,
    );
    let r = lake.reports().await;
    let f = rows(&r, "funnels", "funnels");
    let row = |i: usize, step: &str, users: i64, start: f64, prev: f64| {
        assert_eq!(f[i]["step"], step, "{:?}", f[i]);
        assert_eq!(f[i]["users_reached"], users, "{:?}", f[i]);
        assert!(close(&f[i]["conversion_from_start"], start), "{:?}", f[i]);
        assert!(close(&f[i]["conversion_from_prev"], prev), "{:?}", f[i]);
    };
    assert_eq!(f.len(), 5);
    // u1..u4 start; u1, u2, u4 reach step 1 ("address" 3 stories vs "wishlist" 1); u1, u4 pay.
    row(0, "cart", 4, 1.0, 1.0);
    row(1, "address", 3, 0.75, 0.75);
    row(2, "pay", 2, 0.5, 2.0 / 3.0);
    // One user.
    assert_eq!(f[3]["app_id"], "solo");
    row(3, "cart", 1, 1.0, 1.0);
    row(4, "address", 1, 1.0, 1.0);
    assert_eq!(f[2]["step_index"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_count_sessions_per_ngram_with_ties_broken_by_path() {
    let mut lake = Lake::default();
    let mut n = 0;
    let mut session = |lake: &mut Lake, s: &str, names: &[&str]| {
        // Sent in reverse order: the report orders by event time, not arrival.
        for (i, name) in names.iter().enumerate().rev() {
            n += 1;
            lake.event(
                "a",
                &format!("e{n}"),
                name,
                "u",
                s,
                MONDAY + i as i64 * 1000,
            );
        }
    };
    session(&mut lake, "s1", &["a", "b", "c", "d"]);
    session(&mut lake, "s2", &["a", "b", "c"]);
    session(&mut lake, "s3", &["b", "c", "d"]);
    session(&mut lake, "s4", &["a", "b"]);
    session(&mut lake, "s5", &["x", "y", "z", "x", "y", "z"]);
    lake.event("a", "lonely", "a", "u", "", MONDAY); // no session: not counted
    let dir = lake.write().await;
    let r = reports(dir.path(), &all(), &Settings::default());
    let p = rows(&r, "paths", "paths");
    let got: Vec<(String, i64)> = p
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_owned(),
                r["sessions"].as_i64().unwrap(),
            )
        })
        .collect();
    let expect = [
        ("a > b > c", 2),
        ("b > c > d", 2),
        ("x > y > z", 1),
        ("y > z > x", 1),
        ("z > x > y", 1),
    ];
    assert_eq!(got, expect.map(|(p, s)| (p.to_owned(), s)).to_vec());
    assert!(close(&p[0]["share"], 2.0 / 5.0));
    assert!(close(&p[4]["share"], 1.0 / 5.0));

    let pairs = Settings {
        path_length: 2,
        top: 1,
        ..Settings::default()
    };
    let r = reports(dir.path(), &all(), &pairs);
    let p = rows(&r, "paths", "paths");
    // "a > b" (s1, s2, s4) and "b > c" (s1, s2, s3) tie at 3: "a > b" first.
    assert_eq!(p.len(), 1);
    assert_eq!(
        (&p[0]["path"], &p[0]["sessions"]),
        (&json!("a > b"), &json!(3))
    );
    assert!(close(&p[0]["share"], 3.0 / 5.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_follows_weekly_cohorts() {
    let mut lake = Lake::default();
    let week = 7 * DAY;
    let seen = [("u1", [0, 1, 2].as_slice()), ("u2", &[0, 2]), ("u3", &[1])];
    for (user, weeks) in seen {
        for w in weeks {
            // Wednesday and Sunday night of the week: one week, not two.
            for at in [
                MONDAY + w * week + 2 * DAY,
                MONDAY + w * week + 6 * DAY + 23 * HOUR,
            ] {
                lake.event("a", &format!("{user}-{at}"), "open", user, "", at);
            }
        }
    }
    let r = lake.reports().await;
    assert_eq!(
        rows(&r, "retention", "retention"),
        vec![
            json!({"app_id": "a", "cohort_week": "2026-11-02", "week_offset": 0, "users": 2, "retention": 1.0}),
            json!({"app_id": "a", "cohort_week": "2026-11-02", "week_offset": 1, "users": 1, "retention": 0.5}),
            json!({"app_id": "a", "cohort_week": "2026-11-02", "week_offset": 2, "users": 2, "retention": 1.0}),
            json!({"app_id": "a", "cohort_week": "2026-11-09", "week_offset": 0, "users": 1, "retention": 1.0}),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stories_count_outcomes_durations_and_the_top_drop_step() {
    let mut lake = Lake::default();
    let t = MONDAY;
    let s = ["cart", "address", "pay"];
    let m = 60_000;
    lake.story(
        "a",
        "s1",
        Some("u1"),
        &s,
        "completed",
        t,
        Some(t + m),
        t + 1,
    );
    lake.story(
        "a",
        "s2",
        Some("u2"),
        &s,
        "completed",
        t,
        Some(t + 2 * m),
        t + 1,
    );
    lake.story(
        "a",
        "s3",
        Some("u3"),
        &s,
        "completed",
        t,
        Some(t + m / 2),
        t + 1,
    );
    lake.story(
        "a",
        "s4",
        Some("u4"),
        &s[..1],
        "in_progress",
        t,
        None,
        t + 1,
    );
    lake.story(
        "a",
        "s4",
        Some("u4"),
        &s[..2],
        "abandoned",
        t,
        Some(t + 9 * m),
        t + 2,
    );
    lake.story(
        "a",
        "s5",
        Some("u5"),
        &s,
        "failed",
        t,
        Some(t + 9 * m),
        t + 1,
    );
    lake.story("a", "s6", Some("u6"), &s[..2], "abandoned", t, None, t + 1);
    lake.story(
        "a",
        "s7",
        Some("u7"),
        &s[..1],
        "in_progress",
        t,
        None,
        t + 1,
    );
    lake.story(
        "b",
        "s1",
        Some("u1"),
        &s,
        "completed",
        t,
        Some(t + m),
        t + 1,
    );
    let r = lake.reports().await;
    let got = rows(&r, "stories", "stories");
    assert_eq!(got.len(), 2);
    let a = &got[0];
    assert_eq!(
        (
            &a["story"],
            &a["started"],
            &a["completed"],
            &a["abandoned"],
            &a["failed"]
        ),
        (
            &json!("checkout"),
            &json!(7),
            &json!(3),
            &json!(2),
            &json!(1)
        )
    );
    assert!(close(&a["completion_rate"], 3.0 / 7.0));
    assert!(close(&a["median_duration_s"], 60.0)); // 60, 120, 30
    assert_eq!(a["top_drop_step"], "address"); // address twice, pay once
    let b = &got[1];
    assert!(close(&b["completion_rate"], 1.0));
    assert_eq!(b["top_drop_step"], json!(null));
}

/// The expected statistics, from the formulas written out again here.
fn expected(x: f64, n: f64, xc: f64, nc: f64) -> (f64, f64, f64, f64) {
    let (p, pc) = (x / n, xc / nc);
    let se = (p * (1.0 - p) / n + pc * (1.0 - pc) / nc).sqrt();
    let pool = (x + xc) / (n + nc);
    let z = (p - pc) / (pool * (1.0 - pool) * (1.0 / n + 1.0 / nc)).sqrt();
    (
        (p - pc) / pc,
        p - pc - 1.959963984540054 * se,
        p - pc + 1.959963984540054 * se,
        two_sided_p(z),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn experiments_compare_variants_with_the_control_on_latest_versions() {
    let mut lake = Lake::default();
    // control: 20 users, 5 converted; "b": 30 users, 12 converted. The control sorts after "b".
    for i in 0..20 {
        lake.test("a", "price", &format!("c{i}"), "control", Some(i < 5), 0);
    }
    for i in 0..30 {
        // Every "b" user first shows up unconverted; 12 convert in a later version.
        lake.test("a", "price", &format!("b{i}"), "b", Some(false), 0);
        if i < 12 {
            lake.test("a", "price", &format!("b{i}"), "b", Some(true), 5);
        }
    }
    // No control: "alpha" is the baseline. All converted in both arms.
    for i in 0..4 {
        lake.test(
            "a",
            "colors",
            &format!("u{i}"),
            ["alpha", "beta"][i % 2],
            Some(true),
            0,
        );
    }
    let r = lake.reports().await;
    let got = rows(&r, "experiments", "experiments");
    assert_eq!(got.len(), 4, "{got:?}");

    let (alpha, beta) = (&got[0], &got[1]);
    assert_eq!(
        (&alpha["experiment"], &alpha["variant"]),
        (&json!("colors"), &json!("alpha"))
    );
    assert_eq!(alpha["lift"], json!(null));
    assert_eq!(beta["variant"], "beta");
    assert!(close(&beta["lift"], 0.0));
    assert!(close(&beta["ci95_low"], 0.0) && close(&beta["ci95_high"], 0.0));
    assert!(close(&beta["p_value"], 1.0));
    assert!(close(&beta["srm_p_value"], 1.0));

    let (b, control) = (&got[2], &got[3]);
    assert_eq!(
        (&b["variant"], &b["exposures"], &b["conversions"]),
        (&json!("b"), &json!(30), &json!(12))
    );
    assert_eq!(
        (&control["variant"], &control["exposures"]),
        (&json!("control"), &json!(20))
    );
    assert!(close(&control["conversion_rate"], 0.25));
    assert_eq!(control["p_value"], json!(null));
    let (lift, low, high, p) = expected(12.0, 30.0, 5.0, 20.0);
    assert!(close(&b["lift"], lift), "{b}");
    assert!(
        close(&b["ci95_low"], low) && close(&b["ci95_high"], high),
        "{b}"
    );
    assert!(close(&b["p_value"], p), "{b}");
    // 50 users, 25 expected per arm: chi2 = (25 + 25) / 25 = 2 on one degree of freedom.
    let srm = libm_erfc_sqrt(1.0);
    assert!(close(&b["srm_p_value"], srm) && close(&control["srm_p_value"], srm));
}

/// `P(χ²₁ ≥ 2) = erfc(1)`, from the closed form of one degree of freedom.
fn libm_erfc_sqrt(x: f64) -> f64 {
    // erfc(1) to 16 digits.
    assert_eq!(x, 1.0);
    0.157_299_207_050_285_13
}

#[tokio::test(flavor = "multi_thread")]
async fn experiments_adjust_across_variants_warn_and_reduce_variance_with_cuped() {
    let mut lake = Lake::default();
    // "onboarding": 160 users per arm, as a randomized experiment has them: each arm's users
    // were equally active before their exposure (user i: i % 4 events in the 14 days before
    // MONDAY), and activity drives conversion: in the control only the most active (x = 3)
    // convert (25%); "a" also converts half of the x = 2 users (37.5%), "b" a quarter (31.25%).
    let mut e = 0;
    for arm in ["control", "a", "b"] {
        for i in 0..160i64 {
            let user = format!("{arm}{i}");
            let x = i % 4;
            for d in 1..=x {
                e += 1;
                lake.event("a", &format!("e{e}"), "open", &user, "", MONDAY - d * DAY);
            }
            let yes = x == 3
                || (x == 2 && arm == "a" && i % 8 == 2)
                || (x == 2 && arm == "b" && i % 16 == 2);
            lake.test("a", "onboarding", &user, arm, Some(yes), HOUR);
        }
    }
    // One user of "a" had been shown "b" first.
    lake.test("a", "onboarding", "a159", "b", None, 0);
    // "tiny": too few users to conclude anything.
    for i in 0..20 {
        lake.test(
            "a",
            "tiny",
            &format!("t{i}"),
            ["control", "x"][i % 2],
            Some(i % 4 == 0),
            HOUR,
        );
    }
    let r = lake.reports().await;
    let got = rows(&r, "experiments", "experiments");
    let row = |exp: &str, variant: &str| {
        got.iter()
            .find(|r| r["experiment"] == exp && r["variant"] == variant)
            .unwrap_or_else(|| panic!("no {exp}/{variant} in {got:?}"))
            .clone()
    };
    let (a, b, control) = (
        row("onboarding", "a"),
        row("onboarding", "b"),
        row("onboarding", "control"),
    );
    let f = |r: &serde_json::Value, c: &str| r[c].as_f64().unwrap_or_else(|| panic!("{c}: {r}"));

    // Holm and Benjamini–Hochberg over the two comparisons, written out for two p-values.
    let (pa, pb) = (f(&a, "p_value"), f(&b, "p_value"));
    assert!(pa < pb, "{pa} {pb}");
    assert!(close(&a["p_value_holm"], (2.0 * pa).min(1.0)));
    assert!(close(&b["p_value_holm"], (2.0 * pa).min(1.0).max(pb)));
    assert!(close(&a["q_value_bh"], (2.0 * pa).min(pb)));
    assert!(close(&b["q_value_bh"], pb));
    assert_eq!(control["p_value_holm"], json!(null));

    // Sequential: more cautious than the fixed horizon, and says what it is.
    for r in [&a, &b] {
        assert!(f(r, "sequential_p_value") >= f(r, "p_value"), "{r}");
        assert!(f(r, "sequential_cs95_low") <= f(r, "ci95_low"), "{r}");
        assert!(f(r, "sequential_cs95_high") >= f(r, "ci95_high"), "{r}");
    }
    assert!(a["sequential_method"]
        .as_str()
        .unwrap()
        .starts_with("Gaussian-mixture confidence sequence"));

    // Bayesian: "a" (37.5% against 25%) almost surely beats the control; "b" likely does.
    assert!(f(&a, "chance_to_beat") > 0.97, "{a}");
    assert!((0.5..0.97).contains(&f(&b, "chance_to_beat")), "{b}");
    assert!(f(&a, "expected_loss") < f(&b, "expected_loss"));

    // CUPED: the pre-exposure activity explains the conversions here, so it removes most of
    // the variance, and the difference keeps its sign with a far smaller p-value.
    assert!(f(&a, "cuped_variance_reduction") > 0.5, "{a}");
    assert!(
        f(&a, "cuped_diff") > 0.0 && f(&a, "cuped_p_value") < pa,
        "{a}"
    );

    // Guardrails: the user shown two variants; too few users in "tiny".
    assert_eq!(a["multiple_exposures"], 1);
    let warned = a["warnings"].as_str().unwrap();
    assert!(warned.contains("multiple_exposures: 1 users"), "{warned}");
    assert!(!warned.contains("min_sample"), "{warned}");
    let tiny = row("tiny", "x");
    assert!(tiny["warnings"]
        .as_str()
        .unwrap()
        .contains("min_sample: control has 10 exposures"));
}
