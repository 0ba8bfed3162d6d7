//! Small named expressions that the reports are built from.

use polars::prelude::*;

/// Explode as a list column usually is: an empty or null list becomes one null row.
pub const EXPLODE: ExplodeOptions = ExplodeOptions {
    empty_as_null: true,
    keep_nulls: true,
};

/// The event day (`ts`, UTC) as a date: `day`.
pub fn day() -> Expr {
    col("ts").dt().date().alias("day")
}

/// The event day as a day number (days since 1970-01-01), for day arithmetic.
pub fn day_number() -> Expr {
    col("ts").dt().date().cast(DataType::Int32)
}

/// The event hour (`ts` truncated to the hour): `hour`.
pub fn hour() -> Expr {
    col("ts").dt().truncate(lit("1h")).alias("hour")
}

/// The Monday that starts the event's ISO week, as a date: `week`.
pub fn week() -> Expr {
    col("ts").dt().truncate(lit("1w")).dt().date().alias("week")
}

/// How many distinct non-null values `column` holds.
pub fn distinct(column: &str) -> Expr {
    col(column).drop_nulls().n_unique().cast(DataType::Int64)
}

/// Distinct non-null users: `users`.
pub fn users() -> Expr {
    distinct("user_id").alias("users")
}

/// Distinct non-null sessions: `sessions`.
pub fn sessions() -> Expr {
    distinct("session_id").alias("sessions")
}

/// The number of rows: `name`.
pub fn count(name: &str) -> Expr {
    len().cast(DataType::Int64).alias(name)
}

/// How many rows satisfy `condition`.
pub fn count_if(condition: Expr) -> Expr {
    condition.cast(DataType::Int64).sum()
}

/// `numerator / denominator` as a float, null when the denominator is 0.
pub fn ratio(numerator: Expr, denominator: Expr) -> Expr {
    let den = denominator.cast(DataType::Float64);
    when(den.clone().eq(lit(0.0)))
        .then(lit(NULL).cast(DataType::Float64))
        .otherwise(numerator.cast(DataType::Float64) / den)
}

/// The most frequent value of `value` per `group`, ties broken by the smallest value: one row
/// per group with the column `value` renamed `alias`.
pub fn most_frequent(rows: LazyFrame, group: &[&str], value: &str, alias: &str) -> LazyFrame {
    let mut keys: Vec<Expr> = group.iter().map(|c| col(*c)).collect();
    keys.push(col(value));
    let mut order: Vec<Expr> = group.iter().map(|c| col(*c)).collect();
    order.extend([col("n"), col(value)]);
    let mut descending = vec![false; group.len()];
    descending.extend([true, false]);
    rows.group_by(keys)
        .agg([len().alias("n")])
        .sort_by_exprs(
            order,
            SortMultipleOptions::default().with_order_descending_multi(descending),
        )
        .group_by_stable(group.iter().map(|c| col(*c)).collect::<Vec<_>>())
        .agg([col(value).first().alias(alias)])
}
