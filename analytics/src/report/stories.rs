//! `stories`: how journeys end.
//!
//! Counts the latest version of each story in scope. `completion_rate` is `completed / started`;
//! `median_duration_s` is the median of `ended_at − started_at` over completed stories that have
//! an end; `top_drop_step` is the most frequent last step of abandoned and failed stories (ties
//! by name), null when none dropped.

use polars::prelude::*;

use cauce_store::Kind;

use super::{collect, order};
use crate::error::Result;
use crate::exprs::{count, count_if, most_frequent, ratio};
use crate::source::{LakeSource, Scope};

fn outcome(name: &str) -> Expr {
    count_if(col("outcome").eq(lit(name))).alias(name)
}

/// Rows `{app_id, story, started, completed, abandoned, failed, completion_rate,
/// median_duration_s, top_drop_step}`, by app and story.
pub fn stories(source: &LakeSource, scope: &Scope) -> Result<DataFrame> {
    let stories = source
        .frame(Kind::Story, scope)?
        .with_column(col("name").alias("story"));
    let duration_s = (col("ended_at").cast(DataType::Int64)
        - col("started_at").cast(DataType::Int64))
    .cast(DataType::Float64)
        / lit(1000.0);
    let completed_duration = duration_s
        .filter(
            col("outcome")
                .eq(lit("completed"))
                .and(col("ended_at").is_not_null()),
        )
        .median();
    let dropped = stories
        .clone()
        .filter(
            col("outcome")
                .eq(lit("abandoned"))
                .or(col("outcome").eq(lit("failed"))),
        )
        .with_column(
            col("steps")
                .list()
                .last()
                .struct_()
                .field_by_name("name")
                .alias("last_step"),
        )
        .filter(col("last_step").is_not_null());
    let drop_steps = most_frequent(dropped, &["app_id", "story"], "last_step", "top_drop_step");
    let key = [col("app_id"), col("story")];
    collect(
        stories
            .group_by(key.clone())
            .agg([
                count("started"),
                outcome("completed"),
                outcome("abandoned"),
                outcome("failed"),
                completed_duration.alias("median_duration_s"),
            ])
            .with_column(ratio(col("completed"), col("started")).alias("completion_rate"))
            .join(drop_steps, key.clone(), key, JoinArgs::new(JoinType::Left))
            .select([
                col("app_id"),
                col("story"),
                col("started"),
                col("completed"),
                col("abandoned"),
                col("failed"),
                col("completion_rate"),
                col("median_duration_s"),
                col("top_drop_step"),
            ])
            .sort(["app_id", "story"], order(&[false, false])),
    )
}
