//! Plain data describing what Lifeboat finds in AWS. No SDK types: adapters translate into these.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Whether a database is a DB instance or a DB cluster (Aurora or Multi-AZ cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseKind {
    /// An RDS DB instance (not a member of a cluster).
    Instance,
    /// An Aurora DB cluster or a Multi-AZ DB cluster.
    Cluster,
}

impl DatabaseKind {
    /// Lower-case name used in tags and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseKind::Instance => "instance",
            DatabaseKind::Cluster => "cluster",
        }
    }
}

impl fmt::Display for DatabaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A database as described by RDS, with its tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Database {
    /// DB instance identifier or DB cluster identifier.
    pub identifier: String,
    /// Instance or cluster.
    pub kind: DatabaseKind,
    /// ARN of the instance or cluster.
    pub arn: String,
    /// Region it lives in.
    pub region: String,
    /// Engine name (`postgres`, `mysql`, `aurora-postgresql`, …).
    pub engine: String,
    /// Status as RDS reports it (`available`, `backing-up`, `deleting`, …).
    pub status: String,
    /// Whether its storage is encrypted.
    pub encrypted: bool,
    /// For a DB instance that belongs to a cluster: the cluster's identifier. Such instances are backed up
    /// through their cluster.
    pub cluster: Option<String>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

impl Database {
    /// Whether RDS accepts a manual snapshot of the database in its current status.
    ///
    /// RDS takes snapshots of `available` databases and of stopped ones; every other status (creating,
    /// backing-up, modifying, deleting, failed, …) is refused or unsafe, and the database is skipped.
    pub fn can_snapshot_now(&self) -> bool {
        matches!(self.status.as_str(), "available" | "stopped")
    }
}
