//! The table catalog over the lake: each `dt`/`hour` folder the exporter writes is registered as
//! a partition of its kind's table, so that engines that read registered partitions (Redshift
//! Spectrum, Glue jobs, Athena without projection) see new data at once. Registering is
//! idempotent: a partition that already exists is fine.
//!
//! In AWS the catalog is Glue ([`GlueCatalog`], with the `aws` feature); an embedded lake has
//! none, since DuckDB and Polars read the Hive folders directly.

use std::collections::BTreeSet;

use async_trait::async_trait;
use cauce_store::lake::layout::Partition;

use crate::error::Result;
use crate::writer::Written;

/// A catalog of the lake's partitions.
#[async_trait]
pub trait Catalog: Send + Sync {
    /// Registers these partitions; those already registered are left as they are.
    async fn register(&self, partitions: &BTreeSet<Partition>) -> Result<()>;
}

/// The partitions that hold the files written (bad rows and reports have no table).
pub fn partitions_of(written: &[Written]) -> BTreeSet<Partition> {
    written
        .iter()
        .filter_map(|w| Partition::parse_key(&w.key))
        .collect()
}

/// A partition's values in the catalog, in the order of the tables' partition keys: `dt`
/// (`YYYY-MM-DD`) and `hour` (`HH`), as the folder names spell them.
pub fn partition_values(partition: &Partition) -> Vec<String> {
    partition
        .dir()
        .split('/')
        .skip(1)
        .filter_map(|part| part.split_once('=').map(|(_, value)| value.to_owned()))
        .collect()
}

#[cfg(feature = "aws")]
pub use glue::GlueCatalog;

/// The Glue catalog of `database` (the setting `CAUCE_GLUE_DATABASE`), with the AWS
/// configuration of the environment; `None` without a database.
#[cfg(feature = "aws")]
pub async fn glue(database: Option<&str>) -> Option<GlueCatalog> {
    let aws = cauce_store::aws::sdk_config().await;
    database.map(|db| GlueCatalog::new(aws_sdk_glue::Client::new(&aws), db))
}

#[cfg(feature = "aws")]
mod glue {
    use std::collections::{BTreeSet, HashMap, HashSet};

    use async_trait::async_trait;
    use aws_sdk_glue::error::{ProvideErrorMetadata, SdkError};
    use aws_sdk_glue::types::{PartitionInput, StorageDescriptor};
    use aws_sdk_glue::Client;
    use cauce_store::lake::layout::Partition;
    use cauce_store::Kind;
    use tokio::sync::Mutex;

    use super::{partition_values, Catalog};
    use crate::error::{ExportError, Result};

    /// `BatchCreatePartition` takes at most this many partitions a call.
    const BATCH: usize = 100;

    /// The Glue Data Catalog: one table per kind (`events`, `stories`, `tests`) in one
    /// database, as `terraform/modules/lake` makes them. Each new partition copies its table's
    /// storage descriptor (columns, formats, SerDe) with the partition's own location.
    ///
    /// What it has registered (or found registered) is remembered for the life of the process,
    /// so a warm Lambda calls Glue about once per new hour, not once per batch.
    #[derive(Debug)]
    pub struct GlueCatalog {
        client: Client,
        database: String,
        known: Mutex<HashSet<Partition>>,
        tables: Mutex<HashMap<Kind, StorageDescriptor>>,
    }

    impl GlueCatalog {
        /// The catalog of the tables in `database`.
        pub fn new(client: Client, database: impl Into<String>) -> Self {
            GlueCatalog {
                client,
                database: database.into(),
                known: Mutex::default(),
                tables: Mutex::default(),
            }
        }

        /// The table's storage descriptor, read once.
        async fn table(&self, kind: Kind) -> Result<StorageDescriptor> {
            if let Some(sd) = self.tables.lock().await.get(&kind) {
                return Ok(sd.clone());
            }
            let out = self
                .client
                .get_table()
                .database_name(&self.database)
                .name(kind.plural())
                .send()
                .await
                .map_err(|e| glue_error("GetTable", e))?;
            let sd = out
                .table()
                .and_then(|t| t.storage_descriptor())
                .cloned()
                .ok_or_else(|| {
                    ExportError::Config(format!(
                        "the Glue table {}.{} has no storage descriptor",
                        self.database,
                        kind.plural()
                    ))
                })?;
            self.tables.lock().await.insert(kind, sd.clone());
            Ok(sd)
        }

        async fn create(&self, kind: Kind, partitions: &[Partition]) -> Result<()> {
            let table = self.table(kind).await?;
            let base = table.location.clone().unwrap_or_default();
            let base = base.trim_end_matches('/');
            let inputs: Vec<PartitionInput> = partitions
                .iter()
                .map(|p| {
                    let values = partition_values(p);
                    let mut sd = table.clone();
                    let folder: Vec<String> = ["dt", "hour"]
                        .iter()
                        .zip(&values)
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    sd.location = Some(format!("{base}/{}/", folder.join("/")));
                    PartitionInput::builder()
                        .set_values(Some(values))
                        .storage_descriptor(sd)
                        .build()
                })
                .collect();
            for chunk in inputs.chunks(BATCH) {
                let out = self
                    .client
                    .batch_create_partition()
                    .database_name(&self.database)
                    .table_name(kind.plural())
                    .set_partition_input_list(Some(chunk.to_vec()))
                    .send()
                    .await
                    .map_err(|e| glue_error("BatchCreatePartition", e))?;
                let refused = out.errors().iter().find(|e| {
                    e.error_detail().and_then(|d| d.error_code()) != Some("AlreadyExistsException")
                });
                if let Some(e) = refused {
                    let detail = e.error_detail();
                    return Err(ExportError::Catalog {
                        operation: "BatchCreatePartition",
                        transient: detail
                            .and_then(|d| d.error_code())
                            .is_some_and(transient_code),
                        source: format!(
                            "partition {:?} of {}.{}: {} {}",
                            e.partition_values(),
                            self.database,
                            kind.plural(),
                            detail.and_then(|d| d.error_code()).unwrap_or("?"),
                            detail.and_then(|d| d.error_message()).unwrap_or(""),
                        )
                        .into(),
                    });
                }
            }
            Ok(())
        }
    }

    #[async_trait]
    impl Catalog for GlueCatalog {
        async fn register(&self, partitions: &BTreeSet<Partition>) -> Result<()> {
            let new: Vec<Partition> = {
                let known = self.known.lock().await;
                partitions
                    .iter()
                    .filter(|p| !known.contains(p))
                    .copied()
                    .collect()
            };
            for kind in Kind::ALL {
                let of_kind: Vec<Partition> =
                    new.iter().filter(|p| p.kind == kind).copied().collect();
                if !of_kind.is_empty() {
                    self.create(kind, &of_kind).await?;
                }
            }
            self.known.lock().await.extend(new);
            Ok(())
        }
    }

    fn transient_code(code: &str) -> bool {
        matches!(
            code,
            "ThrottlingException"
                | "InternalServiceException"
                | "OperationTimeoutException"
                | "ConcurrentModificationException"
                | "ResourceNumberLimitExceededException"
        )
    }

    fn glue_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> ExportError
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let transient = match &err {
            SdkError::ServiceError(e) => e.err().code().is_some_and(transient_code),
            SdkError::ConstructionFailure(_) => false,
            _ => true,
        };
        ExportError::Catalog {
            operation,
            transient,
            source: Box::new(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cauce_store::Kind;

    #[test]
    fn the_values_are_the_folder_names() {
        let p = Partition::of(Kind::Story, 1_764_406_800_000 + 9 * 3_600_000 + 5);
        assert_eq!(p.dir(), "stories/dt=2025-11-29/hour=18");
        assert_eq!(partition_values(&p), ["2025-11-29", "18"]);
    }

    #[test]
    fn only_table_files_have_partitions() {
        let file = |key: &str| Written {
            key: key.into(),
            rows: 1,
            bytes: 1,
        };
        let written = [
            file("events/dt=2026-11-30/hour=01/a.parquet"),
            file("events/dt=2026-11-30/hour=01/b.parquet"),
            file("tests/dt=2026-11-30/hour=02/c.parquet"),
            file("bad_rows/dt=2026-11-30/x.jsonl"),
            file("reports/app/volume.json"),
        ];
        let dirs: Vec<String> = partitions_of(&written).iter().map(|p| p.dir()).collect();
        assert_eq!(
            dirs,
            [
                "events/dt=2026-11-30/hour=01",
                "tests/dt=2026-11-30/hour=02"
            ]
        );
    }
}
