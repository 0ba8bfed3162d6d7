//! The Arrow schemas of the lake, one per kind, built from the lake's one column list
//! ([`cauce_store::lake::schema`]); a test checks that pyarrow would spell each type as
//! `store/SCHEMA.md` does.

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use cauce_store::lake::schema::{columns, Column, ColumnType, STEP_COLUMNS};
use cauce_store::Kind;

/// The type of every timestamp column: epoch milliseconds, UTC.
pub fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// The Arrow type of a lake column type.
fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Text => DataType::Utf8,
        ColumnType::Time => timestamp(),
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Float => DataType::Float64,
        ColumnType::Steps => steps_type(),
    }
}

fn field(c: &Column) -> Field {
    Field::new(c.name, arrow_type(c.ty), c.nullable)
}

/// The fields of one story step.
pub fn step_fields() -> Fields {
    STEP_COLUMNS.iter().map(field).collect()
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
    Arc::new(Schema::new(
        columns(kind).iter().map(field).collect::<Vec<_>>(),
    ))
}

/// The schema of one kind's Parquet files.
pub fn schema(kind: Kind) -> SchemaRef {
    static SCHEMAS: OnceLock<[SchemaRef; 3]> = OnceLock::new();
    let all = SCHEMAS.get_or_init(|| Kind::ALL.map(build));
    all[kind.index()].clone()
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
    fn arrow_schemas_are_the_lake_columns() {
        for kind in Kind::ALL {
            let arrow: Vec<(String, String, bool)> = schema(kind)
                .fields()
                .iter()
                .map(|f| (f.name().clone(), type_name(f.data_type()), f.is_nullable()))
                .collect();
            let lake: Vec<(String, String, bool)> = columns(kind)
                .iter()
                .map(|c| (c.name.to_owned(), c.ty.pyarrow_name(), c.nullable))
                .collect();
            assert_eq!(arrow, lake, "{kind}");
        }
    }
}
