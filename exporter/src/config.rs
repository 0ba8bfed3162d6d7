//! Typed settings of the exporter's Lambda binaries, read once from the environment at start.
//! A missing or bad setting fails at once, with a message that names it.

use cauce_store::env::{optional, parsed, required};

use crate::error::Result;

/// The `exporter` Lambda's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExporterSettings {
    /// `CAUCE_LAKE`: where the lake is, `s3://bucket/prefix`.
    pub lake: String,
    /// `CAUCE_GLUE_DATABASE` (optional): the Glue database whose tables get each new partition.
    pub glue_database: Option<String>,
}

impl ExporterSettings {
    /// Reads the settings.
    pub fn from_env() -> Result<Self> {
        Ok(ExporterSettings {
            lake: required("CAUCE_LAKE")?,
            glue_database: optional("CAUCE_GLUE_DATABASE"),
        })
    }
}

/// The `compactor` Lambda's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactorSettings {
    /// `CAUCE_LAKE`: where the lake is, `s3://bucket/prefix`.
    pub lake: String,
    /// `CAUCE_COMPACT_TARGET_MB` (default 128): the size each compacted file aims for, MiB.
    pub target_mb: u64,
    /// `CAUCE_GLUE_DATABASE` (optional): the Glue database whose tables get the lake's recent
    /// partitions after each run.
    pub glue_database: Option<String>,
}

impl CompactorSettings {
    /// Reads the settings.
    pub fn from_env() -> Result<Self> {
        let target_mb = parsed("CAUCE_COMPACT_TARGET_MB", 128, "a whole number of MiB")?;
        if target_mb == 0 {
            return Err(crate::ExportError::Config(
                "the setting CAUCE_COMPACT_TARGET_MB must be at least 1".into(),
            ));
        }
        Ok(CompactorSettings {
            lake: required("CAUCE_LAKE")?,
            target_mb,
            glue_database: optional("CAUCE_GLUE_DATABASE"),
        })
    }
}
