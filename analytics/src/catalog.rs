//! The lake's tables for SQL engines, written from the lake's one schema source
//! ([`cauce_store::lake::schema`]): `cauce catalog --format …`.
//!
//! * [`Dialect::Athena`]: `CREATE EXTERNAL TABLE` per kind with partition projection on `dt`
//!   and `hour` (no crawler, no `MSCK REPAIR`), and a `*_latest` view per kind.
//! * [`Dialect::Redshift`]: Redshift Spectrum's `CREATE EXTERNAL SCHEMA … FROM DATA CATALOG`,
//!   the external tables, the partitions found in the lake (Spectrum does not use Athena's
//!   projection), late-binding `*_latest` views, and a `COPY … FORMAT AS PARQUET` recipe into
//!   native tables.
//! * [`Dialect::GlueJson`]: the Glue `TableInput` of each kind, as `aws glue create-table
//!   --table-input` takes it (the Terraform `lake` module makes the same tables).
//! * [`Dialect::DuckDb`]: views over the lake's files with the declared types, for a laptop.
//!
//! The `*_latest` views read the lake the documented way (`store/SCHEMA.md`): one row per key,
//! the latest `updated_at` of a story or test (a removal wins the tie with the version it
//! removed, and a key whose latest row is a removal is gone); one copy of each event.

use cauce_store::lake::layout::Partition;
use cauce_store::lake::schema::{columns, key_columns, Column, ColumnType, STEP_COLUMNS};
use cauce_store::Kind;

/// An SQL engine, or Glue's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Amazon Athena (Hive DDL for the tables, Trino SQL for the views).
    Athena,
    /// Amazon Redshift: Spectrum over the lake, and native tables loaded by `COPY`.
    Redshift,
    /// Glue's `TableInput` JSON.
    GlueJson,
    /// DuckDB, over a folder lake (or S3 with DuckDB's `httpfs`).
    DuckDb,
}

/// Where the tables point and what they are called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The lake: `s3://bucket/prefix`, or a folder.
    pub location: String,
    /// The Glue database (the Terraform names it `{name}_lake`).
    pub database: String,
    /// The IAM role Redshift assumes to read the catalog and the lake.
    pub iam_role: String,
    /// The first day partition projection enumerates (`YYYY-MM-DD`).
    pub projection_start: String,
    /// The lake's partitions, for the engines that must be told them (Redshift Spectrum).
    pub partitions: Vec<Partition>,
}

/// The partition columns: the ingest day and hour, as the keys spell them.
const PARTITIONS: [&str; 2] = ["dt", "hour"];

/// A column's type in `dialect` (for Redshift, in an external table).
pub fn sql_type(ty: ColumnType, dialect: Dialect) -> String {
    use ColumnType::{Bool, Float, Steps, Text, Time};
    match dialect {
        Dialect::Athena | Dialect::GlueJson => ty.hive_name(),
        Dialect::Redshift => match ty {
            Text => "varchar(65535)".into(),
            Time => "timestamp".into(),
            Bool => "boolean".into(),
            Float => "double precision".into(),
            Steps => format!("array<struct<{}>>", fields(dialect, ":")),
        },
        Dialect::DuckDb => match ty {
            Text => "VARCHAR".into(),
            Time => "TIMESTAMP WITH TIME ZONE".into(),
            Bool => "BOOLEAN".into(),
            Float => "DOUBLE".into(),
            Steps => format!("STRUCT({})[]", fields(dialect, " ")),
        },
    }
}

/// A column's type in a native Redshift table (`COPY … FORMAT AS PARQUET`): the steps, a
/// nested list, load as `SUPER`.
fn redshift_native_type(ty: ColumnType) -> String {
    match ty {
        ColumnType::Steps => "super".into(),
        ColumnType::Time => "timestamptz".into(),
        other => sql_type(other, Dialect::Redshift),
    }
}

/// A step's fields in `dialect`, each `name{sep}type`.
fn fields(dialect: Dialect, sep: &str) -> String {
    STEP_COLUMNS
        .iter()
        .map(|c| match dialect {
            Dialect::DuckDb => format!("\"{}\"{sep}{}", c.name, sql_type(c.ty, dialect)),
            _ => format!("{}{sep}{}", c.name, sql_type(c.ty, dialect)),
        })
        .collect::<Vec<_>>()
        .join(if dialect == Dialect::DuckDb {
            ", "
        } else {
            ","
        })
}

/// The DDL (or JSON) of every kind's table in `dialect`.
pub fn render(dialect: Dialect, target: &Target) -> String {
    match dialect {
        Dialect::Athena => athena(target),
        Dialect::Redshift => redshift(target),
        Dialect::GlueJson => glue_json(target),
        Dialect::DuckDb => duckdb(target),
    }
}

fn kind_location(target: &Target, kind: Kind) -> String {
    format!(
        "{}/{}/",
        target.location.trim_end_matches('/'),
        kind.plural()
    )
}

fn header(dialect: &str) -> String {
    format!(
        "-- Cauce's lake for {dialect}: written by `cauce catalog` from the lake's one schema\n\
         -- (store/SCHEMA.md). Partitions are the ingest day and hour (`received_at`, UTC); the\n\
         -- event time is `ts`.\n\n"
    )
}

/// `name type` lines of a table's columns, quoted with `quote`.
fn column_lines(cols: &[Column], quote: char, ty: impl Fn(ColumnType) -> String) -> String {
    cols.iter()
        .map(|c| format!("  {quote}{}{quote} {}", c.name, ty(c.ty)))
        .collect::<Vec<_>>()
        .join(",\n")
}

/// The projection parameters of Athena (and of the Glue table), for one kind.
fn projection(target: &Target, kind: Kind) -> Vec<(&'static str, String)> {
    vec![
        ("classification", "parquet".into()),
        ("parquet.compression", "ZSTD".into()),
        ("projection.enabled", "true".into()),
        ("projection.dt.type", "date".into()),
        ("projection.dt.format", "yyyy-MM-dd".into()),
        (
            "projection.dt.range",
            format!("{},NOW", target.projection_start),
        ),
        ("projection.dt.interval", "1".into()),
        ("projection.dt.unit", "DAYS".into()),
        ("projection.hour.type", "integer".into()),
        ("projection.hour.range", "0,23".into()),
        ("projection.hour.digits", "2".into()),
        (
            "storage.location.template",
            format!("{}dt=${{dt}}/hour=${{hour}}/", kind_location(target, kind)),
        ),
    ]
}

/// The `*_latest` view's query over `table` (double-quoted identifiers: Trino, Redshift and
/// DuckDB agree on them).
fn latest_query(kind: Kind, table: &str) -> String {
    let cols: Vec<String> = columns(kind)
        .iter()
        .map(|c| c.name)
        .chain(PARTITIONS)
        .map(|n| format!("\"{n}\""))
        .collect();
    let key = key_columns(kind)
        .iter()
        .map(|k| format!("\"{k}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let (order, keep) = if kind.is_upsert() {
        (
            "\"updated_at\" DESC, CASE WHEN \"op\" = 'remove' THEN 0 ELSE 1 END",
            " AND \"op\" <> 'remove'",
        )
    } else {
        ("\"received_at\"", "")
    };
    format!(
        "SELECT {cols}\nFROM (\n  SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY {order}) AS \"version_rank\"\n  FROM {table}\n) AS versions\nWHERE \"version_rank\" = 1{keep}",
        cols = cols.join(", ")
    )
}

fn athena(target: &Target) -> String {
    let db = &target.database;
    let mut out = header("Amazon Athena");
    out.push_str(&format!("CREATE DATABASE IF NOT EXISTS `{db}`;\n\n"));
    for kind in Kind::ALL {
        let name = kind.plural();
        let props = projection(target, kind)
            .iter()
            .map(|(k, v)| format!("  '{k}' = '{v}'"))
            .collect::<Vec<_>>()
            .join(",\n");
        out.push_str(&format!(
            "CREATE EXTERNAL TABLE IF NOT EXISTS `{db}`.`{name}` (\n{cols}\n)\nPARTITIONED BY (`dt` string, `hour` string)\nSTORED AS PARQUET\nLOCATION '{loc}'\nTBLPROPERTIES (\n{props}\n);\n\n",
            cols = column_lines(&columns(kind), '`', ColumnType::hive_name),
            loc = kind_location(target, kind),
        ));
        out.push_str(&format!(
            "CREATE OR REPLACE VIEW \"{db}\".\"{name}_latest\" AS\n{};\n\n",
            latest_query(kind, &format!("\"{db}\".\"{name}\""))
        ));
    }
    out
}

fn redshift(target: &Target) -> String {
    let (db, role) = (&target.database, &target.iam_role);
    let mut out = header("Amazon Redshift");
    out.push_str(&format!(
        "-- 1. Redshift Spectrum: the lake in place, through the Glue catalog. With the Terraform\n\
         --    deployment the Glue tables exist already; the CREATE EXTERNAL TABLEs below are for a\n\
         --    catalog without them.\nCREATE EXTERNAL SCHEMA IF NOT EXISTS {db}\nFROM DATA CATALOG DATABASE '{db}'\nIAM_ROLE '{role}'\nCREATE EXTERNAL DATABASE IF NOT EXISTS;\n\n"
    ));
    for kind in Kind::ALL {
        let name = kind.plural();
        out.push_str(&format!(
            "CREATE EXTERNAL TABLE {db}.{name} (\n{cols}\n)\nPARTITIONED BY (dt varchar(10), hour varchar(2))\nSTORED AS PARQUET\nLOCATION '{loc}';\n\n",
            cols = column_lines(&columns(kind), '"', |t| sql_type(t, Dialect::Redshift)),
            loc = kind_location(target, kind),
        ));
    }
    out.push_str(
        "-- Spectrum does not read Athena's partition projection: each partition is registered.\n\
         -- These are the partitions in the lake now; the ones added later need the same statement\n\
         -- (run it after each hour, or let a Glue crawler do it).\n",
    );
    for p in &target.partitions {
        let (dt, hour) = (
            p.day(),
            p.hour_start_ms.div_euclid(3_600_000).rem_euclid(24),
        );
        out.push_str(&format!(
            "ALTER TABLE {db}.{name} ADD IF NOT EXISTS PARTITION (dt = '{dt}', hour = '{hour:02}') LOCATION '{loc}{dir}/';\n",
            name = p.kind.plural(),
            loc = target.location.trim_end_matches('/').to_owned() + "/",
            dir = p.dir(),
        ));
    }
    out.push_str(
        "\n-- The latest version of each key: late-binding views in a local schema (Redshift keeps\n\
         -- no view inside an external schema).\n",
    );
    for kind in Kind::ALL {
        let name = kind.plural();
        out.push_str(&format!(
            "CREATE OR REPLACE VIEW public.{db}_{name}_latest AS\n{}\nWITH NO SCHEMA BINDING;\n\n",
            latest_query(kind, &format!("{db}.{name}"))
        ));
    }
    out.push_str(
        "-- 2. Native tables, loaded with COPY. COPY reads Parquet columns by position: the tables\n\
         --    have the files' columns in the files' order (dt and hour are in the path, not the\n\
         --    file). Load one partition at a time; files written before a column was added (see\n\
         --    store/SCHEMA.md) lack it and need a table without it. Stories' steps load as SUPER.\n\
         --    COPY appends: take the latest version per key as the views above do.\n",
    );
    out.push_str(&format!("CREATE SCHEMA IF NOT EXISTS {db}_native;\n\n"));
    for kind in Kind::ALL {
        let name = kind.plural();
        out.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {db}_native.{name} (\n{cols}\n)\nSORTKEY (app_id, ts);\n\n",
            cols = column_lines(&columns(kind), '"', redshift_native_type),
        ));
        out.push_str(&format!(
            "COPY {db}_native.{name}\nFROM '{loc}dt=YYYY-MM-DD/'\nIAM_ROLE '{role}'\nFORMAT AS PARQUET{json};\n\n",
            loc = kind_location(target, kind),
            json = if kind == Kind::Story { " SERIALIZETOJSON" } else { "" },
        ));
    }
    out
}

fn glue_json(target: &Target) -> String {
    use serde_json::{json, Map, Value};
    let tables: Vec<Value> = Kind::ALL
        .iter()
        .map(|&kind| {
            let cols: Vec<Value> = columns(kind)
                .iter()
                .map(|c| json!({"Name": c.name, "Type": c.ty.hive_name()}))
                .collect();
            let params: Map<String, Value> = projection(target, kind)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v)))
                .collect();
            json!({
                "Name": kind.plural(),
                "TableType": "EXTERNAL_TABLE",
                "Parameters": params,
                "PartitionKeys": PARTITIONS.map(|p| json!({"Name": p, "Type": "string"})),
                "StorageDescriptor": {
                    "Columns": cols,
                    "Location": kind_location(target, kind),
                    "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    "SerdeInfo": {
                        "SerializationLibrary":
                            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    }
                }
            })
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&json!({
        "DatabaseName": target.database,
        "TableInputs": tables,
    }))
    .expect("JSON values serialize");
    out.push('\n');
    out
}

fn duckdb(target: &Target) -> String {
    let mut out = header("DuckDB");
    for kind in Kind::ALL {
        let name = kind.plural();
        let cols = columns(kind)
            .iter()
            .map(|c| {
                format!(
                    "CAST(\"{0}\" AS {1}) AS \"{0}\"",
                    c.name,
                    sql_type(c.ty, Dialect::DuckDb)
                )
            })
            .chain(PARTITIONS.iter().map(|p| format!("\"{p}\"")))
            .collect::<Vec<_>>()
            .join(",\n  ");
        out.push_str(&format!(
            "CREATE OR REPLACE VIEW \"{name}\" AS\nSELECT\n  {cols}\nFROM read_parquet('{loc}*/*/*.parquet', hive_partitioning = true, hive_types = {{'dt': VARCHAR, 'hour': VARCHAR}}, union_by_name = true);\n\n",
            loc = kind_location(target, kind),
        ));
        out.push_str(&format!(
            "CREATE OR REPLACE VIEW \"{name}_latest\" AS\n{};\n\n",
            latest_query(kind, &format!("\"{name}\""))
        ));
    }
    out
}
