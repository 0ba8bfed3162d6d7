//! `cauce catalog`: the lake's tables for SQL engines (Athena, Redshift, Glue, DuckDB), written
//! from the lake's one schema source.

use std::collections::BTreeSet;

use cauce_analytics::catalog::{render, Dialect, Target};
use cauce_store::lake::layout::Partition;

use super::LakeArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Athena: external tables with partition projection, and `*_latest` views.
    Athena,
    /// Redshift: Spectrum's external schema and tables, the lake's partitions, `*_latest` views,
    /// and a COPY recipe into native tables.
    Redshift,
    /// Glue's `TableInput` of each table (`aws glue create-table --table-input`).
    GlueJson,
    /// DuckDB: views over the lake's files, with the declared types.
    Duckdb,
}

#[derive(Debug, clap::Args)]
pub struct CatalogArgs {
    #[command(flatten)]
    lake: LakeArgs,
    /// What to write.
    #[arg(long, value_enum)]
    format: Format,
    /// The Glue database (the Terraform deployment's is `{name}_lake`).
    #[arg(long, default_value = "cauce_lake")]
    database: String,
    /// The IAM role Redshift assumes to read the catalog and the lake.
    #[arg(long, default_value = "arn:aws:iam::123456789012:role/cauce-redshift")]
    iam_role: String,
    /// The first day Athena's partition projection enumerates.
    #[arg(long, default_value = "2024-01-01")]
    projection_start: chrono::NaiveDate,
}

pub async fn run(args: CatalogArgs) -> anyhow::Result<()> {
    let location = args.lake.location();
    let dialect = match args.format {
        Format::Athena => Dialect::Athena,
        Format::Redshift => Dialect::Redshift,
        Format::GlueJson => Dialect::GlueJson,
        Format::Duckdb => Dialect::DuckDb,
    };
    // Only Redshift is told the partitions: read them from the lake then.
    let partitions = if dialect == Dialect::Redshift {
        let lake = cauce_store::lake::open(&location).await?;
        let mut found = BTreeSet::new();
        for kind in cauce_store::Kind::ALL {
            let prefix = cauce_store::lake::layout::kind_prefix(kind);
            for object in lake.list(&prefix).await? {
                found.extend(Partition::parse_key(&object.key));
            }
        }
        found.into_iter().collect()
    } else {
        Vec::new()
    };
    let target = Target {
        location,
        database: args.database,
        iam_role: args.iam_role,
        projection_start: args.projection_start.to_string(),
        partitions,
    };
    print!("{}", render(dialect, &target));
    Ok(())
}
