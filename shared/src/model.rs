//! Plain data describing what Lifeboat finds in AWS. No SDK types: adapters translate into these.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::tags;

mod tag_set;
pub use tag_set::Tags;

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
    /// The longest snapshot identifier RDS accepts for this kind: 255 characters for a DB snapshot, 63 for a DB
    /// cluster snapshot.
    pub fn max_snapshot_identifier_len(self) -> usize {
        match self {
            DatabaseKind::Instance => 255,
            DatabaseKind::Cluster => 63,
        }
    }

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
    /// Where it accepts connections, once RDS has given it an address.
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    /// Its master user name.
    #[serde(default)]
    pub master_username: Option<String>,
    /// Its engine version, as RDS reports it.
    #[serde(default)]
    pub engine_version: Option<String>,
    /// For a read replica: its source (`ReadReplicaSourceDBInstanceIdentifier`, an ARN for a cross-region
    /// replica); for a cluster replicating from another: `ReplicationSourceIdentifier`. `None` once promoted.
    #[serde(default)]
    pub replica_source: Option<String>,
    /// Its tags.
    pub tags: Tags,
}

/// A database's network address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
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

/// Text that is short in practice (a region, a status, an engine, a database identifier), held in place up to 24
/// bytes instead of in an allocation of its own: a fleet's listing holds four per snapshot, and at 181,000 snapshots
/// their allocations (32 bytes each, whatever the length) were 23 MiB.
pub type ShortText = compact_str::CompactString;

/// A manual DB snapshot or DB cluster snapshot as RDS describes it, with its tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Snapshot identifier.
    pub identifier: String,
    /// Snapshot ARN.
    pub arn: String,
    /// Region it is in.
    pub region: ShortText,
    /// DB snapshot (of an instance) or DB cluster snapshot.
    pub kind: DatabaseKind,
    /// The database it is a recovery point of: the `lifeboat:source` tag (which copies carry across regions),
    /// else the instance or cluster identifier RDS reports.
    pub database: ShortText,
    /// When the recovery point was taken, as RDS reports it: `OriginalSnapshotCreateTime` for copies of DB
    /// snapshots (so a copy ages from its original), else `SnapshotCreateTime`. Tags never change it (see
    /// [`Snapshot::dating_disagreement`]).
    pub created_at: DateTime<Utc>,
    /// Status (`creating`, `available`, `copying`, …).
    pub status: ShortText,
    /// Whether it is encrypted.
    pub encrypted: bool,
    /// For a copy: the ARN of the snapshot it was copied from.
    pub copied_from: Option<String>,
    /// Engine of the database it was taken of, as RDS reports it (`None` where not read).
    #[serde(default)]
    pub engine: Option<ShortText>,
    /// Its tags.
    pub tags: Tags,
}

impl Snapshot {
    /// Whether Lifeboat made and manages it (`lifeboat:managed=true`).
    pub fn is_managed(&self) -> bool {
        self.tags
            .get(tags::MANAGED)
            .is_some_and(|v| v == tags::TRUE)
    }

    /// Whether it is under legal hold: it carries `lifeboat:legal-hold`, whatever the value (`true`, `yes`, even
    /// `false`), as the IAM fence that forbids its deletion sees it. Removing the tag lifts the hold.
    pub fn on_legal_hold(&self) -> bool {
        self.tags.contains_key(tags::LEGAL_HOLD)
    }

    /// Whether it is a manual (operator-requested) snapshot.
    pub fn is_manual(&self) -> bool {
        self.tags
            .get(tags::TIER)
            .is_some_and(|v| v == tags::MANUAL_TIER)
    }

    /// When a restore of it was last verified.
    pub fn verified_at(&self) -> Option<DateTime<Utc>> {
        self.tag_time(tags::VERIFIED_AT)
    }

    /// When a manual snapshot stops being kept.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.tag_time(tags::EXPIRES_AT)
    }

    /// Whether RDS has finished making it.
    pub fn is_available(&self) -> bool {
        self.status == "available"
    }

    /// The `lifeboat:created-at` tag when it disagrees with RDS's time by more than a scheduled run's lateness
    /// allows (earlier by more than [`DATING_TOLERANCE_EARLY`], or later by more than [`DATING_TOLERANCE_LATE`]).
    /// Such a tag is reported and never used: ages come from RDS.
    pub fn dating_disagreement(&self) -> Option<DateTime<Utc>> {
        let tagged = self.tag_time(tags::CREATED_AT)?;
        if !self.is_available() {
            return None;
        }
        let early = chrono::Duration::from_std(DATING_TOLERANCE_EARLY).unwrap_or_default();
        let late = chrono::Duration::from_std(DATING_TOLERANCE_LATE).unwrap_or_default();
        (tagged < self.created_at - early || tagged > self.created_at + late).then_some(tagged)
    }

    fn tag_time(&self, key: &str) -> Option<DateTime<Utc>> {
        parse_tag_time(self.tags.get(key))
    }
}

/// How much earlier than RDS's time a snapshot's `lifeboat:created-at` may be without being reported: the tag holds
/// the scheduled time, and a delivery of the schedule may come hours late (EventBridge and Lambda retries).
pub const DATING_TOLERANCE_EARLY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// How much later than RDS's time a snapshot's `lifeboat:created-at` may be without being reported.
pub const DATING_TOLERANCE_LATE: std::time::Duration = std::time::Duration::from_secs(3600);

/// The RFC 3339 time in a tag's `value`, if present and valid.
pub fn parse_tag_time(value: Option<&str>) -> Option<DateTime<Utc>> {
    value
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// `{head}{tail}` when it fits in `max` characters; otherwise `head` cut short, a hash of the whole `head`, then
/// `tail` (`{head cut}-{8 hex}{tail}`), so that distinct heads stay distinct and the name stays deterministic.
/// `head` and `tail` are letters, digits and single hyphens; so is the result, which never ends with a hyphen
/// unless `tail` does.
pub fn fit_identifier(head: &str, tail: &str, max: usize) -> String {
    if head.len() + tail.len() <= max {
        return format!("{head}{tail}");
    }
    let digest = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, head.as_bytes());
    let hash = &digest.simple().to_string()[..8];
    let room = max.saturating_sub(tail.len() + hash.len() + 1);
    let cut = head[..room.min(head.len())].trim_end_matches('-');
    format!("{cut}-{hash}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_legal_hold_is_the_tag_whatever_its_value() {
        let mut snapshot = Snapshot {
            identifier: "s".into(),
            arn: "arn:aws:rds:us-east-1:123456789012:snapshot:s".into(),
            region: "us-east-1".into(),
            kind: DatabaseKind::Instance,
            database: "db".into(),
            created_at: DateTime::<Utc>::MIN_UTC,
            status: "available".into(),
            encrypted: true,
            engine: None,
            copied_from: None,
            tags: Default::default(),
        };
        assert!(!snapshot.on_legal_hold());
        for value in ["true", "yes", "false", ""] {
            snapshot.tags.insert(tags::LEGAL_HOLD.into(), value.into());
            assert!(snapshot.on_legal_hold(), "{value}");
        }
    }

    #[test]
    fn long_names_are_cut_with_a_hash_and_keep_their_tail() {
        assert_eq!(
            fit_identifier("lifeboat-db", "-2026-11-22-0200", 63),
            "lifeboat-db-2026-11-22-0200"
        );
        // The copy of an Aurora cluster's scheduled snapshot: 77 characters as they come, 63 allowed.
        let source = "lifeboat-orders-aurora-production-cluster-2026-11-22-0200";
        let cut = fit_identifier(source, "-from-ap-southeast-2", 63);
        assert!(cut.len() <= 63, "{cut}");
        assert!(
            cut.starts_with("lifeboat-orders-aurora-production-"),
            "{cut}"
        );
        assert!(cut.ends_with("-from-ap-southeast-2"), "{cut}");
        let next_day = "lifeboat-orders-aurora-production-cluster-2026-11-23-0200";
        assert_ne!(cut, fit_identifier(next_day, "-from-ap-southeast-2", 63));
    }
}
