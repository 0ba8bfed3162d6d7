//! The lake's columns, one list per kind, and how rows of one record relate: the one home of
//! the lake schema. `store/SCHEMA.md` documents it column by column, and a test checks that the
//! two agree. The exporter builds its Arrow schemas from [`columns`], analytics its Polars
//! schemas; each crate has a test that ties its schema to this one.
//!
//! Copies and versions (what readers and compaction resolve):
//! * A **copy** is a row written twice by a retried stream batch. The store sends no change for
//!   a resent event and accepts only strictly newer versions of a story or test, so copies are
//!   byte-identical and share their ingest hour; [`copy_columns`] tells them apart from real
//!   versions. Any copy may be kept.
//! * A **version** of a story or test is a row with its own `updated_at`; the latest per
//!   [`key_columns`] wins. A user's removal carries the version it removed and wins the tie
//!   with it; a key whose latest row is a removal is gone. Events have one version.

use crate::model::Kind;

/// A column's type, in the lake's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// UTF-8 text (JSON objects are text too).
    Text,
    /// Epoch milliseconds, UTC.
    Time,
    /// True or false.
    Bool,
    /// A 64-bit float.
    Float,
    /// A story's steps: a list of structs with the columns of [`STEP_COLUMNS`].
    Steps,
}

/// One column of a lake file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Its name: the data model's field name.
    pub name: &'static str,
    /// Its type.
    pub ty: ColumnType,
    /// Whether it may be null.
    pub nullable: bool,
}

const fn col(name: &'static str, ty: ColumnType, nullable: bool) -> Column {
    Column { name, ty, nullable }
}

use ColumnType::{Bool, Float, Steps, Text, Time};

/// The fields of one story step.
pub const STEP_COLUMNS: [Column; 3] = [
    col("name", Text, false),
    col("at", Time, false),
    col("properties", Text, true),
];

const HEAD: [Column; 2] = [col("op", Text, false), col("app_id", Text, false)];

const TAIL: [Column; 4] = [
    col("ts", Time, false),
    col("received_at", Time, false),
    col("ingest_seq", Text, false),
    col("extra", Text, true),
];

const EVENT: [Column; 7] = [
    col("event_id", Text, false),
    col("name", Text, false),
    col("timestamp", Time, false),
    col("user_id", Text, true),
    col("session_id", Text, true),
    col("properties", Text, true),
    col("context", Text, true),
];

/// Columns added to a kind after its first files were written: last, and nullable, so that a
/// reader matching Parquet columns by position, not by name, still reads older files.
const EVENT_ADDED: [Column; 2] = [col("anonymous_id", Text, true), col("type", Text, true)];

const STORY: [Column; 10] = [
    col("story_id", Text, false),
    col("name", Text, false),
    col("user_id", Text, true),
    col("session_id", Text, true),
    col("started_at", Time, false),
    col("ended_at", Time, true),
    col("updated_at", Time, false),
    col("outcome", Text, false),
    col("steps", Steps, false),
    col("properties", Text, true),
];

const EXPOSURE: [Column; 8] = [
    col("experiment", Text, false),
    col("user_id", Text, false),
    col("variant", Text, false),
    col("exposed_at", Time, false),
    col("updated_at", Time, false),
    col("converted", Bool, true),
    col("value", Float, true),
    col("properties", Text, true),
];

/// The columns of one kind's files, in order: `op`, `app_id`, the kind's own, then `ts`,
/// `received_at`, `ingest_seq`, `extra`, then the kind's columns added since.
pub fn columns(kind: Kind) -> Vec<Column> {
    let (own, added): (&[Column], &[Column]) = match kind {
        Kind::Event => (&EVENT, &EVENT_ADDED),
        Kind::Story => (&STORY, &[]),
        Kind::Exposure => (&EXPOSURE, &[]),
    };
    HEAD.iter()
        .chain(own)
        .chain(&TAIL)
        .chain(added)
        .copied()
        .collect()
}

/// The Glue catalog's columns of every kind, as the Terraform reads them
/// (`terraform/modules/lake/columns.json`): `{"events": [{"name", "type"}, ...], ...}`.
pub fn glue_columns_json() -> String {
    let kinds: serde_json::Map<String, serde_json::Value> = Kind::ALL
        .iter()
        .map(|&kind| {
            let cols = columns(kind)
                .iter()
                .map(|c| serde_json::json!({"name": c.name, "type": c.ty.hive_name()}))
                .collect();
            (kind.plural().to_owned(), serde_json::Value::Array(cols))
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&kinds).expect("JSON values serialize");
    out.push('\n');
    out
}

/// The lake's row order within a file: by `app_id`, then `ts`.
pub const SORT_COLUMNS: [&str; 2] = ["app_id", "ts"];

/// The columns that identify a record within the lake (the store's key, with the app).
pub fn key_columns(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Event => &["app_id", "event_id"],
        Kind::Story => &["app_id", "story_id"],
        Kind::Exposure => &["app_id", "experiment", "user_id"],
    }
}

/// The columns that tell a copy from a real version: the key, and for stories and tests the
/// version (`updated_at`) and `op`. Rows equal on these are copies of one another.
pub fn copy_columns(kind: Kind) -> Vec<&'static str> {
    let mut out = key_columns(kind).to_vec();
    if kind.is_upsert() {
        out.extend(["updated_at", "op"]);
    }
    out
}

impl ColumnType {
    /// The type as Hive DDL writes it: the Glue catalog's column type, which Athena and
    /// Redshift Spectrum read.
    pub fn hive_name(self) -> String {
        match self {
            Text => "string".into(),
            Time => "timestamp".into(),
            Bool => "boolean".into(),
            Float => "double".into(),
            Steps => format!(
                "array<struct<{}>>",
                STEP_COLUMNS
                    .iter()
                    .map(|c| format!("{}:{}", c.name, c.ty.hive_name()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }

    /// The type as pyarrow prints it (and `SCHEMA.md` writes it).
    pub fn pyarrow_name(self) -> String {
        match self {
            Text => "string".into(),
            Time => "timestamp[ms, tz=UTC]".into(),
            Bool => "bool".into(),
            Float => "double".into(),
            Steps => format!(
                "list<item: struct<{}>>",
                STEP_COLUMNS
                    .iter()
                    .map(|c| format!(
                        "{}: {}{}",
                        c.name,
                        c.ty.pyarrow_name(),
                        if c.nullable { "" } else { " not null" }
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Terraform's Glue tables read their columns from a file that this code writes: run
    /// with `CAUCE_WRITE_GLUE_COLUMNS=1` to rewrite it after a schema change.
    #[test]
    fn glue_columns_file_matches_the_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../terraform/modules/lake/columns.json");
        let want = glue_columns_json();
        if std::env::var_os("CAUCE_WRITE_GLUE_COLUMNS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            have,
            want,
            "{} is stale: see this test's doc",
            path.display()
        );
    }

    #[test]
    fn schema_doc_matches_the_code() {
        let doc = include_str!("../../SCHEMA.md");
        for kind in Kind::ALL {
            let heading = format!("## {}", kind.plural());
            let section = doc.split(&heading).nth(1).expect("a section per kind");
            let documented: Vec<(String, String, bool)> = section
                .lines()
                .skip_while(|l| !l.starts_with("|---"))
                .skip(1)
                .take_while(|l| l.starts_with('|'))
                .map(|l| {
                    let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
                    (cells[0].to_owned(), cells[1].to_owned(), cells[2] == "yes")
                })
                .collect();
            let code: Vec<(String, String, bool)> = columns(kind)
                .iter()
                .map(|c| (c.name.to_owned(), c.ty.pyarrow_name(), c.nullable))
                .collect();
            assert_eq!(documented, code, "SCHEMA.md's {} table", kind.plural());
        }
    }

    #[test]
    fn keys_sort_and_copy_columns_are_columns() {
        for kind in Kind::ALL {
            let names: Vec<&str> = columns(kind).iter().map(|c| c.name).collect();
            for c in copy_columns(kind).iter().chain(&SORT_COLUMNS) {
                assert!(names.contains(c), "{kind}: {c}");
            }
            assert!(copy_columns(kind).starts_with(key_columns(kind)));
        }
        assert_eq!(copy_columns(Kind::Event), ["app_id", "event_id"]);
        assert_eq!(
            copy_columns(Kind::Story),
            ["app_id", "story_id", "updated_at", "op"]
        );
    }
}
