//! `volume`: daily events, users and sessions; hourly events; the top events; DAU, WAU and MAU.

use polars::prelude::*;

use cauce_store::Kind;

use super::{collect, order, Settings};
use crate::error::Result;
use crate::exprs::{count, day, day_number, hour, sessions, users};
use crate::source::{LakeSource, Scope};

/// Rows `{app_id, day, events, users, sessions}`, one per app and event day.
pub fn daily_volume(source: &LakeSource, scope: &Scope) -> Result<DataFrame> {
    let events = source.frame(Kind::Event, scope)?;
    collect(
        events
            .group_by([col("app_id"), day()])
            .agg([count("events"), users(), sessions()])
            .sort(["app_id", "day"], order(&[false, false])),
    )
}

/// Rows `{app_id, hour, events}`, one per app and event hour with events.
pub fn hourly_volume(source: &LakeSource, scope: &Scope) -> Result<DataFrame> {
    let events = source.frame(Kind::Event, scope)?;
    collect(
        events
            .group_by([col("app_id"), hour()])
            .agg([count("events")])
            .sort(["app_id", "hour"], order(&[false, false])),
    )
}

/// Rows `{app_id, name, events}`: each app's most frequent event names (ties by name).
pub fn top_events(source: &LakeSource, scope: &Scope, settings: &Settings) -> Result<DataFrame> {
    let events = source.frame(Kind::Event, scope)?;
    collect(
        events
            .group_by([col("app_id"), col("name")])
            .agg([count("events")])
            .sort(["app_id", "events", "name"], order(&[false, true, false]))
            .group_by_stable([col("app_id")])
            .head(Some(settings.top))
            .select([col("app_id"), col("name"), col("events")]),
    )
}

/// Distinct users active in the `days` days ending on `as_of` (day numbers).
fn active(days: i32) -> Expr {
    let recent = (col("as_of") - col("day_number")).lt(lit(days));
    col("user_id")
        .filter(recent)
        .drop_nulls()
        .n_unique()
        .cast(DataType::Int64)
}

/// Rows `{app_id, as_of, dau, wau, mau}`: distinct users on the app's last active day in
/// scope (`as_of`), in the 7 days and in the 30 days ending on it.
pub fn active_users(source: &LakeSource, scope: &Scope) -> Result<DataFrame> {
    let events = source.frame(Kind::Event, scope)?.select([
        col("app_id"),
        col("user_id"),
        day_number().alias("day_number"),
    ]);
    let last = events
        .clone()
        .group_by([col("app_id")])
        .agg([col("day_number").max().alias("as_of")]);
    collect(
        events
            .join(
                last,
                [col("app_id")],
                [col("app_id")],
                JoinArgs::new(JoinType::Inner),
            )
            .group_by([col("app_id")])
            .agg([
                col("as_of").first(),
                active(1).alias("dau"),
                active(7).alias("wau"),
                active(30).alias("mau"),
            ])
            .with_column(col("as_of").cast(DataType::Date))
            .sort(["app_id"], order(&[false])),
    )
}
