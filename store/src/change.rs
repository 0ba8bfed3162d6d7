//! The change feed: one [`Change`] per write, whether it came from the SQLite change log or from
//! DynamoDB Streams.

use serde::{Deserialize, Serialize};

use crate::model::{Kind, Record};

/// What a change did to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// The first version of a key.
    Insert,
    /// A newer version replaced an older one.
    Modify,
    /// The record was deleted (by a user, or by TTL expiry: see [`Change::ttl_expired`]).
    Remove,
}

impl Op {
    /// The lowercase name (`insert`, `modify`, `remove`).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Insert => "insert",
            Op::Modify => "modify",
            Op::Remove => "remove",
        }
    }

    /// Parses a lowercase name or a DynamoDB Streams event name (`INSERT`, `MODIFY`, `REMOVE`).
    pub fn parse(s: &str) -> Option<Op> {
        match s {
            "insert" | "INSERT" => Some(Op::Insert),
            "modify" | "MODIFY" => Some(Op::Modify),
            "remove" | "REMOVE" => Some(Op::Remove),
            _ => None,
        }
    }
}

/// One change of one record, as the exporter consumes it.
#[derive(Debug, Clone)]
pub struct Change {
    /// The record's kind.
    pub kind: Kind,
    /// What happened.
    pub op: Op,
    /// The feed the change came from: the stream (or `sqlite` for the embedded change log).
    pub shard: String,
    /// The change's position in its feed.
    pub sequence: String,
    /// True when the service removed the record because its TTL expired: not a deletion.
    pub ttl_expired: bool,
    /// The record after the change (absent for a removal).
    pub new_image: Option<Record>,
    /// The record before the change (absent for an insert).
    pub old_image: Option<Record>,
}

impl Change {
    /// The record this change is about: the new image, or the old one for a removal.
    pub fn record(&self) -> Option<&Record> {
        self.new_image.as_ref().or(self.old_image.as_ref())
    }
}
