//! Small named expressions that the reports are built from.

use polars::prelude::*;

/// Explode as a list column usually is: an empty or null list becomes one null row.
pub const EXPLODE: ExplodeOptions = ExplodeOptions {
    empty_as_null: true,
    keep_nulls: true,
};

const HOUR_MS: i64 = 3_600_000;
/// A day, in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// A time column as epoch milliseconds: integer arithmetic on UTC times needs no time-zone
/// rules, and is much faster than calendar functions.
pub fn ms(column: &str) -> Expr {
    col(column).cast(DataType::Int64)
}

/// `ts` as epoch milliseconds: the time helpers below are integer arithmetic on it.
fn ts_ms() -> Expr {
    ms("ts")
}

/// `value / unit` for non-negative integers, exactly (the remainder is taken off first, so the
/// quotient is an integer whichever division the engine does).
fn whole(value: Expr, unit: i64) -> Expr {
    ((value.clone() - value % lit(unit)) / lit(unit)).cast(DataType::Int64)
}

/// The event day as a day number (days since 1970-01-01), for day arithmetic.
pub fn day_number() -> Expr {
    whole(ts_ms(), DAY_MS).cast(DataType::Int32)
}

/// The event day (`ts`, UTC) as a date: `day`.
pub fn day() -> Expr {
    day_number().cast(DataType::Date).alias("day")
}

/// The event hour (`ts` truncated to the hour, UTC): `hour`.
pub fn hour() -> Expr {
    (whole(ts_ms(), HOUR_MS) * lit(HOUR_MS))
        .cast(DataType::Datetime(
            TimeUnit::Milliseconds,
            Some(TimeZone::UTC),
        ))
        .alias("hour")
}

/// The hour of the day (0–23, UTC) of a datetime column.
pub fn hour_of_day(column: &str) -> Expr {
    (whole(col(column).cast(DataType::Int64), HOUR_MS) % lit(24i64)).alias("hour_of_day")
}

/// The Monday that starts the event's ISO week (UTC), as a date: `week`. Day 0, 1970-01-01,
/// was a Thursday.
pub fn week() -> Expr {
    let day = day_number();
    (day.clone() - (day + lit(3)) % lit(7))
        .cast(DataType::Date)
        .alias("week")
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
