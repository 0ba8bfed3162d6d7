//! `paths`: the most frequent sequences of `n` consecutive events within a session.
//!
//! A session's events are ordered by `ts` (then arrival). Every window of `n` consecutive
//! events is a path, its names joined by ` > `. `sessions` counts the sessions that contain the
//! path at least once; `share` divides it by the app's sessions in scope. Each app keeps its
//! `top` paths, by sessions, ties by path. Events without a session are not counted.

use polars::prelude::*;

use cauce_store::Kind;

use super::{collect, order, Settings};
use crate::error::{AnalyticsError, Result};
use crate::exprs::{count, distinct, ratio, sessions};
use crate::source::{LakeSource, Scope};

/// The column `c` of the `k`-th next row.
fn ahead(c: &str, k: usize) -> Expr {
    col(c).shift(lit(-(k as i64)))
}

/// Rows `{app_id, path, sessions, share}`, by app, then sessions (descending), then path.
pub fn paths(source: &LakeSource, scope: &Scope, settings: &Settings) -> Result<DataFrame> {
    let n = settings.path_length;
    if n == 0 {
        return Err(AnalyticsError::Invalid(
            "the path length must be at least 1".into(),
        ));
    }
    let events = source
        .frame(Kind::Event, scope)?
        .filter(col("session_id").is_not_null())
        .select([
            col("app_id"),
            col("session_id"),
            col("name"),
            col("ts"),
            col("received_at"),
            col("ingest_seq"),
        ])
        .sort(
            ["app_id", "session_id", "ts", "received_at", "ingest_seq"],
            order(&[false; 5]),
        );
    let totals = events
        .clone()
        .group_by([col("app_id")])
        .agg([sessions().alias("app_sessions")]);
    let same_session = (1..n).fold(lit(true), |all, k| {
        all.and(ahead("session_id", k).eq(col("session_id")))
            .and(ahead("app_id", k).eq(col("app_id")))
    });
    let names: Vec<Expr> = (0..n).map(|k| ahead("name", k)).collect();
    collect(
        events
            .with_columns([
                same_session.alias("whole"),
                concat_str(names, " > ", false).alias("path"),
            ])
            .filter(col("whole"))
            .group_by([col("app_id"), col("path")])
            .agg([distinct("session_id").alias("sessions"), count("windows")])
            .join(
                totals,
                [col("app_id")],
                [col("app_id")],
                JoinArgs::new(JoinType::Inner),
            )
            .with_column(ratio(col("sessions"), col("app_sessions")).alias("share"))
            .sort(["app_id", "sessions", "path"], order(&[false, true, false]))
            .group_by_stable([col("app_id")])
            .head(Some(settings.top))
            .select([col("app_id"), col("path"), col("sessions"), col("share")]),
    )
}
