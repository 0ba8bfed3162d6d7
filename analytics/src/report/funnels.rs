//! `funnels`: how far users get through the steps of each story.
//!
//! A user reaches step `k` of a story (0-based `step_index`) when one of their stories of that
//! name, in its latest version, has at least `k + 1` steps. The step's name is the most frequent
//! name at that position (ties by name). Stories without a user are not counted.

use polars::prelude::*;

use cauce_store::Kind;

use super::{collect, order};
use crate::error::Result;
use crate::exprs::{most_frequent, ratio, users};
use crate::source::{LakeSource, Scope};

const FUNNEL: [&str; 3] = ["app_id", "story", "step_index"];

/// Rows `{app_id, story, step_index, step, users_reached, conversion_from_start,
/// conversion_from_prev}`, by app, story and step.
pub fn funnels(source: &LakeSource, scope: &Scope) -> Result<DataFrame> {
    let steps = source
        .frame(Kind::Story, scope)?
        .filter(col("user_id").is_not_null())
        .select([
            col("app_id"),
            col("name").alias("story"),
            col("user_id"),
            col("steps"),
            int_ranges(
                lit(0i64),
                col("steps").list().len().cast(DataType::Int64),
                lit(1i64),
                DataType::Int64,
            )
            .alias("step_index"),
        ])
        .explode(cols(["steps", "step_index"]), crate::exprs::EXPLODE)
        .filter(col("step_index").is_not_null())
        .with_column(col("steps").struct_().field_by_name("name").alias("step"));
    let reached = steps
        .clone()
        .group_by(FUNNEL.map(col))
        .agg([users().alias("users_reached")]);
    let names = most_frequent(steps, &FUNNEL, "step", "step");
    let per_story = [col("app_id"), col("story")];
    collect(
        reached
            .join(
                names,
                FUNNEL.map(col),
                FUNNEL.map(col),
                JoinArgs::new(JoinType::Inner),
            )
            .sort(FUNNEL, order(&[false, false, false]))
            .with_columns([
                ratio(
                    col("users_reached"),
                    col("users_reached").first().over(per_story.clone())?,
                )
                .alias("conversion_from_start"),
                ratio(
                    col("users_reached"),
                    col("users_reached")
                        .shift(lit(1))
                        .over(per_story)?
                        .fill_null(col("users_reached")),
                )
                .alias("conversion_from_prev"),
            ])
            .select([
                col("app_id"),
                col("story"),
                col("step_index"),
                col("step"),
                col("users_reached"),
                col("conversion_from_start"),
                col("conversion_from_prev"),
            ]),
    )
}
