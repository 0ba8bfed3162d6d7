//! The Arrow schemas of the lake, one per kind. `SCHEMA.md` beside this crate documents them
//! column by column, and a test checks that the two agree.

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use cauce_store::Kind;

/// The type of every timestamp column: epoch milliseconds, UTC.
pub fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

fn text(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

fn time(name: &str, nullable: bool) -> Field {
    Field::new(name, timestamp(), nullable)
}

/// The fields of one story step.
pub fn step_fields() -> Fields {
    Fields::from(vec![
        text("name", false),
        time("at", false),
        text("properties", true),
    ])
}

/// The type of a story's `steps` column: a list of step structs.
pub fn steps_type() -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(step_fields()),
        true,
    )))
}

fn build(kind: Kind) -> SchemaRef {
    let head = [text("op", false), text("app_id", false)];
    let tail = [
        time("ts", false),
        time("received_at", false),
        text("ingest_seq", false),
    ];
    let middle: Vec<Field> = match kind {
        Kind::Event => vec![
            text("event_id", false),
            text("name", false),
            time("timestamp", false),
            text("user_id", true),
            text("session_id", true),
            text("properties", true),
            text("context", true),
        ],
        Kind::Story => vec![
            text("story_id", false),
            text("name", false),
            text("user_id", true),
            text("session_id", true),
            time("started_at", false),
            time("ended_at", true),
            time("updated_at", false),
            text("outcome", false),
            Field::new("steps", steps_type(), false),
            text("properties", true),
        ],
        Kind::Test => vec![
            text("experiment", false),
            text("user_id", false),
            text("variant", false),
            time("exposed_at", false),
            time("updated_at", false),
            Field::new("converted", DataType::Boolean, true),
            Field::new("value", DataType::Float64, true),
            text("properties", true),
        ],
    };
    let fields: Vec<Field> = head.into_iter().chain(middle).chain(tail).collect();
    Arc::new(Schema::new(fields))
}

/// The schema of one kind's Parquet files.
pub fn schema(kind: Kind) -> SchemaRef {
    static SCHEMAS: OnceLock<[SchemaRef; 3]> = OnceLock::new();
    let all = SCHEMAS.get_or_init(|| Kind::ALL.map(build));
    all[kind.index()].clone()
}

/// The columns that identify a record within an app (the dedup key).
pub fn key_columns(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Event => &["app_id", "event_id"],
        Kind::Story => &["app_id", "story_id"],
        Kind::Test => &["app_id", "experiment", "user_id"],
    }
}

/// A type as `SCHEMA.md` writes it: pyarrow's spelling.
pub fn type_name(t: &DataType) -> String {
    let field = |f: &arrow_schema::Field| {
        let null = if f.is_nullable() { "" } else { " not null" };
        format!("{}: {}{null}", f.name(), type_name(f.data_type()))
    };
    match t {
        DataType::Utf8 => "string".into(),
        DataType::Boolean => "bool".into(),
        DataType::Float64 => "double".into(),
        DataType::Timestamp(TimeUnit::Millisecond, Some(tz)) => format!("timestamp[ms, tz={tz}]"),
        DataType::List(f) => format!("list<{}>", field(f)),
        DataType::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| field(f))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_doc_matches_the_code() {
        let doc = include_str!("../SCHEMA.md");
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
            let code: Vec<(String, String, bool)> = schema(kind)
                .fields()
                .iter()
                .map(|f| (f.name().clone(), type_name(f.data_type()), f.is_nullable()))
                .collect();
            assert_eq!(documented, code, "SCHEMA.md's {} table", kind.plural());
        }
    }
}
