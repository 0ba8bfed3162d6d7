//! `retention`: weekly cohorts of users by the week they were first seen.
//!
//! Weeks start on Monday (UTC). A user's cohort is the week of their first event in scope; they
//! are retained in week offset `k` when they have an event `k` weeks after their cohort week.
//! `retention` divides by the cohort's size (its users at offset 0).

use polars::prelude::*;

use cauce_store::Kind;

use super::{collect, order};
use crate::error::Result;
use crate::exprs::{ratio, users, week};
use crate::source::{LakeSource, Scope};

/// Rows `{app_id, cohort_week, week_offset, users, retention}`, by app, cohort and offset.
pub fn retention(source: &LakeSource, scope: &Scope) -> Result<DataFrame> {
    let active = source
        .frame(Kind::Event, scope)?
        .filter(col("user_id").is_not_null())
        .select([col("app_id"), col("user_id"), week()])
        .unique(None, UniqueKeepStrategy::Any);
    let user = [col("app_id"), col("user_id")];
    let cohorts = active
        .clone()
        .group_by(user.clone())
        .agg([col("week").min().alias("cohort_week")]);
    let cohort = [col("app_id"), col("cohort_week")];
    let weeks_between =
        (col("week").cast(DataType::Int32) - col("cohort_week").cast(DataType::Int32)) / lit(7);
    collect(
        active
            .join(cohorts, user.clone(), user, JoinArgs::new(JoinType::Inner))
            .with_column(weeks_between.cast(DataType::Int64).alias("week_offset"))
            .group_by([col("app_id"), col("cohort_week"), col("week_offset")])
            .agg([users()])
            .sort(
                ["app_id", "cohort_week", "week_offset"],
                order(&[false, false, false]),
            )
            .with_column(
                ratio(col("users"), col("users").first().over(cohort)?).alias("retention"),
            ),
    )
}
