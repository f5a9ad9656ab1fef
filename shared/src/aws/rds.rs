//! RDS adapter: lists databases (tags come inline with the describe calls: never one call per resource) and
//! creates snapshots, translating RDS faults into [`CreateSnapshotError`].

use std::collections::BTreeMap;

use aws_sdk_rds::Client;
use aws_sdk_rds::error::ProvideErrorMetadata;
use aws_sdk_rds::operation::copy_db_cluster_snapshot::CopyDBClusterSnapshotError;
use aws_sdk_rds::operation::copy_db_snapshot::CopyDBSnapshotError;
use aws_sdk_rds::operation::create_db_cluster_snapshot::CreateDBClusterSnapshotError;
use aws_sdk_rds::operation::create_db_snapshot::CreateDBSnapshotError;
use aws_sdk_rds::operation::delete_db_cluster_snapshot::DeleteDBClusterSnapshotError;
use aws_sdk_rds::operation::delete_db_snapshot::DeleteDBSnapshotError;
use aws_sdk_rds::types::Tag;
use chrono::{DateTime, Utc};

use super::AwsError;
use crate::copy::PlannedCopy;

#[cfg(feature = "failover")]
mod failover;
use crate::model::{Database, DatabaseKind, Endpoint, ShortText, Snapshot, Tags};
use crate::tags;
#[cfg(feature = "failover")]
pub use failover::{GlobalDatabase, GlobalMember, Replica, ReplicaSpec};

/// Engines that DescribeDBInstances/DescribeDBClusters also return but that are not RDS databases.
const NON_RDS_ENGINES: [&str; 2] = ["neptune", "docdb"];

/// RDS in one region.
#[derive(Clone, Debug)]
pub struct Rds {
    client: Client,
    region: String,
    dating: Dating,
}

/// Where a snapshot's age comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dating {
    /// RDS's own times (`OriginalSnapshotCreateTime` for copies of DB snapshots, else `SnapshotCreateTime`): the
    /// only dating production uses. A `lifeboat:created-at` tag never changes an age.
    FromRds,
    /// The `lifeboat:created-at` tag, for tests that simulate years of history against an emulator that stamps
    /// every snapshot with the real time. Exists only in debug builds with the `test-dating` feature, which only
    /// the tests crate enables (see [`Rds::dated_by_tags_for_tests`]).
    #[cfg(all(feature = "test-dating", debug_assertions))]
    FromTagForTests,
}

/// Environment variable that makes test builds date snapshots by their `lifeboat:created-at` tag (the local DR
/// run's simulated history). Only debug builds with the `test-dating` feature read it: deployable builds lack it.
pub const TEST_DATING_VAR: &str = "LIFEBOAT_TEST_DATE_SNAPSHOTS_BY_TAG";

/// Why a snapshot was not created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateSnapshotError {
    /// A snapshot with this identifier exists already: the work is done.
    #[error("snapshot `{0}` already exists")]
    AlreadyExists(String),
    /// The database is in a state RDS cannot snapshot now.
    #[error("not ready for a snapshot: {0}")]
    NotReady(String),
    /// The database does not exist (any more).
    #[error("database not found: {0}")]
    NotFound(String),
    /// The region's manual snapshot quota is used up.
    #[error("manual snapshot quota exceeded: {0}")]
    QuotaExceeded(String),
    /// Any other failure.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// Why a snapshot was not deleted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeleteSnapshotError {
    /// It does not exist (any more): the work is done.
    #[error("snapshot not found: {0}")]
    NotFound(String),
    /// RDS cannot delete it in its current state (being created or copied).
    #[error("snapshot cannot be deleted now: {0}")]
    InvalidState(String),
    /// Any other failure.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// Why a copy was not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopySnapshotError {
    /// The target exists already (in flight or done): the work is done.
    #[error("copy `{0}` already exists")]
    AlreadyExists(String),
    /// The source snapshot is gone.
    #[error("source snapshot not found: {0}")]
    SourceNotFound(String),
    /// The source is not in a state RDS copies from.
    #[error("source not ready for a copy: {0}")]
    NotReady(String),
    /// RDS refused because the region's concurrent-copy limit is reached: the copy waits for a slot.
    #[error("concurrent copy limit reached in {region}: {message}")]
    CopyLimitReached {
        /// Destination region.
        region: String,
        /// RDS's message.
        message: String,
    },
    /// The destination KMS key cannot be used.
    #[error("KMS key `{key}` in {region} is not accessible: {message}")]
    KeyNotAccessible {
        /// The key named in the policy.
        key: String,
        /// Destination region.
        region: String,
        /// RDS's message.
        message: String,
    },
    /// The destination region's manual snapshot quota is used up.
    #[error("manual snapshot quota exceeded in {region}: {message}")]
    QuotaExceeded {
        /// Destination region.
        region: String,
        /// RDS's message.
        message: String,
    },
    /// Any other failure.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl Rds {
    /// RDS through `client`, which is configured for `region`.
    pub fn new(client: Client, region: impl Into<String>) -> Self {
        Self {
            client,
            region: region.into(),
            dating: Dating::FromRds,
        }
    }

    /// Test-only: date snapshots by their `lifeboat:created-at` tag instead of RDS's times, because the emulator
    /// stamps every snapshot with the real time and tests simulate years. Exists only in debug builds with the
    /// `test-dating` feature (the tests crate's): deployable builds have no way to let a tag decide an age.
    #[cfg(all(feature = "test-dating", debug_assertions))]
    pub fn dated_by_tags_for_tests(mut self) -> Self {
        self.dating = Dating::FromTagForTests;
        self
    }

    /// [`Rds::dated_by_tags_for_tests`] when [`TEST_DATING_VAR`] is `1` in a test build; unchanged otherwise (and
    /// always in deployable builds).
    pub fn dated_by_tags_if_testing(self, var: impl Fn(&str) -> Option<String>) -> Self {
        #[cfg(all(feature = "test-dating", debug_assertions))]
        if var(TEST_DATING_VAR).as_deref() == Some("1") {
            return self.dated_by_tags_for_tests();
        }
        let _ = var;
        self
    }

    /// The region this adapter talks to.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Every RDS DB instance and DB cluster in the region, with tags. Cost: one call per 100 databases.
    pub async fn list_databases(&self) -> Result<Vec<Database>, AwsError> {
        Ok(self.list_databases_with_backup_facts().await?.0)
    }

    /// [`Rds::list_databases`], with the automated-backup facts and allocated storage of each database by kind
    /// and identifier, from the same describes (the monitor's read).
    pub async fn list_databases_with_backup_facts(
        &self,
    ) -> Result<(Vec<Database>, BTreeMap<(DatabaseKind, String), BackupFacts>), AwsError> {
        let time = |t: Option<&aws_smithy_types::DateTime>| {
            t.and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()))
        };
        let mut databases = Vec::new();
        let mut facts = BTreeMap::new();
        let mut instances = self
            .client
            .describe_db_instances()
            .into_paginator()
            .items()
            .send();
        while let Some(item) = instances.next().await {
            let db =
                item.map_err(|e| AwsError::from_sdk("rds:DescribeDBInstances", &self.region, &e))?;
            let engine = db.engine().unwrap_or_default().to_string();
            if is_rds_engine(&engine) {
                let identifier = db.db_instance_identifier().unwrap_or_default().to_string();
                facts.insert(
                    (DatabaseKind::Instance, identifier.clone()),
                    BackupFacts {
                        point_in_time: crate::monitor::PointInTimeFacts {
                            retention_days: db
                                .backup_retention_period()
                                .and_then(|d| u32::try_from(d).ok())
                                .unwrap_or(0),
                            earliest_restorable: None,
                            latest_restorable: time(db.latest_restorable_time()),
                        },
                        allocated_bytes: db
                            .allocated_storage()
                            .and_then(|gib| u64::try_from(gib).ok())
                            .filter(|gib| *gib > 0)
                            .map(|gib| gib << 30),
                    },
                );
                databases.push(Database {
                    identifier,
                    kind: DatabaseKind::Instance,
                    arn: db.db_instance_arn().unwrap_or_default().to_string(),
                    region: self.region.clone(),
                    engine,
                    status: db.db_instance_status().unwrap_or_default().to_string(),
                    encrypted: db.storage_encrypted().unwrap_or(false),
                    cluster: db.db_cluster_identifier().map(str::to_string),
                    endpoint: db.endpoint().and_then(|e| {
                        Some(Endpoint {
                            host: e.address()?.to_string(),
                            port: u16::try_from(e.port()?).ok()?,
                        })
                    }),
                    master_username: db.master_username().map(str::to_string),
                    engine_version: db.engine_version().map(str::to_string),
                    replica_source: db
                        .read_replica_source_db_instance_identifier()
                        .map(str::to_string),
                    tags: tag_map(db.tag_list()),
                });
            }
        }
        let mut clusters = self
            .client
            .describe_db_clusters()
            .into_paginator()
            .items()
            .send();
        while let Some(item) = clusters.next().await {
            let cluster =
                item.map_err(|e| AwsError::from_sdk("rds:DescribeDBClusters", &self.region, &e))?;
            let engine = cluster.engine().unwrap_or_default().to_string();
            if is_rds_engine(&engine) {
                let identifier = cluster
                    .db_cluster_identifier()
                    .unwrap_or_default()
                    .to_string();
                facts.insert(
                    (DatabaseKind::Cluster, identifier.clone()),
                    BackupFacts {
                        point_in_time: crate::monitor::PointInTimeFacts {
                            retention_days: cluster
                                .backup_retention_period()
                                .and_then(|d| u32::try_from(d).ok())
                                .unwrap_or(0),
                            earliest_restorable: time(cluster.earliest_restorable_time()),
                            latest_restorable: time(cluster.latest_restorable_time()),
                        },
                        allocated_bytes: None,
                    },
                );
                databases.push(Database {
                    identifier,
                    kind: DatabaseKind::Cluster,
                    arn: cluster.db_cluster_arn().unwrap_or_default().to_string(),
                    region: self.region.clone(),
                    engine,
                    status: cluster.status().unwrap_or_default().to_string(),
                    encrypted: cluster.storage_encrypted().unwrap_or(false),
                    cluster: None,
                    endpoint: cluster.endpoint().map(|host| Endpoint {
                        host: host.to_string(),
                        port: cluster
                            .port()
                            .and_then(|p| u16::try_from(p).ok())
                            .unwrap_or(0),
                    }),
                    master_username: cluster.master_username().map(str::to_string),
                    engine_version: cluster.engine_version().map(str::to_string),
                    replica_source: cluster.replication_source_identifier().map(str::to_string),
                    tags: tag_map(cluster.tag_list()),
                });
            }
        }
        Ok((databases, facts))
    }

    /// Start a snapshot of `db` named `snapshot_id` with `tags`; returns the snapshot's ARN. A request whose
    /// answer was lost (or that AWS failed inside) is read back: a snapshot under that name with every tag asked
    /// for is this request's, and the call succeeds.
    pub async fn create_snapshot(
        &self,
        db: &Database,
        snapshot_id: &str,
        tags: &[(String, String)],
    ) -> Result<String, CreateSnapshotError> {
        match self.request_snapshot(db, snapshot_id, tags).await {
            Err(CreateSnapshotError::Aws(e)) if e.may_have_taken_effect() => {
                match self.read_back_made(db.kind, snapshot_id, tags).await {
                    Some(arn) => Ok(arn),
                    None => Err(CreateSnapshotError::Aws(e)),
                }
            }
            other => other,
        }
    }

    /// The ARN of snapshot `identifier` of `kind` if it exists with every tag in `tags` (the write that asked for
    /// it took effect); `None` when it does not, or cannot be read.
    async fn read_back_made(
        &self,
        kind: DatabaseKind,
        identifier: &str,
        tags: &[(String, String)],
    ) -> Option<String> {
        let found = self.read_back(kind, identifier).await.ok()??;
        let has_every_tag = tags
            .iter()
            .all(|(key, value)| found.tags.get(key) == Some(value));
        has_every_tag.then_some(found.arn)
    }

    /// [`Rds::describe_snapshot`] after a write whose answer was lost, asked up to [`READ_BACK_ATTEMPTS`] times
    /// while it fails for a passing reason: a write left unconfirmed is reported failed and left out of the
    /// ledger's "done" records for good, since the next run finds nothing left to do.
    async fn read_back(
        &self,
        kind: DatabaseKind,
        identifier: &str,
    ) -> Result<Option<Snapshot>, AwsError> {
        let mut attempt = 1;
        loop {
            match self.describe_snapshot(kind, identifier).await {
                Err(e)
                    if (e.is_retryable() || e.may_have_taken_effect())
                        && attempt < READ_BACK_ATTEMPTS =>
                {
                    tokio::time::sleep(READ_BACK_PAUSE * attempt).await;
                    attempt += 1
                }
                answer => return answer,
            }
        }
    }

    async fn request_snapshot(
        &self,
        db: &Database,
        snapshot_id: &str,
        tags: &[(String, String)],
    ) -> Result<String, CreateSnapshotError> {
        let tags = tag_list(tags);
        match db.kind {
            DatabaseKind::Instance => {
                let result = self
                    .client
                    .create_db_snapshot()
                    .db_instance_identifier(&db.identifier)
                    .db_snapshot_identifier(snapshot_id)
                    .set_tags(Some(tags))
                    .send()
                    .await;
                match result {
                    Ok(out) => Ok(out
                        .db_snapshot()
                        .and_then(|s| s.db_snapshot_arn())
                        .unwrap_or_default()
                        .to_string()),
                    Err(err) => Err(match err.as_service_error() {
                        Some(CreateDBSnapshotError::DbSnapshotAlreadyExistsFault(_)) => {
                            CreateSnapshotError::AlreadyExists(snapshot_id.to_string())
                        }
                        Some(CreateDBSnapshotError::InvalidDbInstanceStateFault(e)) => {
                            CreateSnapshotError::NotReady(
                                e.message().unwrap_or("invalid state").to_string(),
                            )
                        }
                        Some(CreateDBSnapshotError::DbInstanceNotFoundFault(e)) => {
                            CreateSnapshotError::NotFound(
                                e.message().unwrap_or(&db.identifier).to_string(),
                            )
                        }
                        Some(CreateDBSnapshotError::SnapshotQuotaExceededFault(e)) => {
                            CreateSnapshotError::QuotaExceeded(
                                e.message().unwrap_or("quota exceeded").to_string(),
                            )
                        }
                        _ => AwsError::from_sdk("rds:CreateDBSnapshot", &self.region, &err).into(),
                    }),
                }
            }
            DatabaseKind::Cluster => {
                let result = self
                    .client
                    .create_db_cluster_snapshot()
                    .db_cluster_identifier(&db.identifier)
                    .db_cluster_snapshot_identifier(snapshot_id)
                    .set_tags(Some(tags))
                    .send()
                    .await;
                match result {
                    Ok(out) => Ok(out
                        .db_cluster_snapshot()
                        .and_then(|s| s.db_cluster_snapshot_arn())
                        .unwrap_or_default()
                        .to_string()),
                    Err(err) => Err(match err.as_service_error() {
                        Some(
                            CreateDBClusterSnapshotError::DbClusterSnapshotAlreadyExistsFault(_),
                        ) => CreateSnapshotError::AlreadyExists(snapshot_id.to_string()),
                        Some(CreateDBClusterSnapshotError::InvalidDbClusterStateFault(e)) => {
                            CreateSnapshotError::NotReady(
                                e.message().unwrap_or("invalid state").to_string(),
                            )
                        }
                        Some(CreateDBClusterSnapshotError::DbClusterNotFoundFault(e)) => {
                            CreateSnapshotError::NotFound(
                                e.message().unwrap_or(&db.identifier).to_string(),
                            )
                        }
                        Some(CreateDBClusterSnapshotError::SnapshotQuotaExceededFault(e)) => {
                            CreateSnapshotError::QuotaExceeded(
                                e.message().unwrap_or("quota exceeded").to_string(),
                            )
                        }
                        _ => AwsError::from_sdk("rds:CreateDBClusterSnapshot", &self.region, &err)
                            .into(),
                    }),
                }
            }
        }
    }
}

impl Rds {
    /// Every manual DB snapshot and DB cluster snapshot in the region, with tags. Cost: one call per 100
    /// snapshots of each kind (tags come inline; never one call per snapshot).
    pub async fn list_snapshots(&self) -> Result<Vec<Snapshot>, AwsError> {
        let mut snapshots = Vec::new();
        self.list_snapshots_into(&mut snapshots).await?;
        Ok(snapshots)
    }

    /// [`Rds::list_snapshots`] appended to `snapshots` (a listing of several regions in one vector, never two
    /// copies of one); on an error `snapshots` is left as it was.
    pub async fn list_snapshots_into(&self, snapshots: &mut Vec<Snapshot>) -> Result<(), AwsError> {
        let listed_before = snapshots.len();
        let result = self.append_snapshots(snapshots).await;
        if result.is_err() {
            snapshots.truncate(listed_before);
        }
        result
    }

    async fn append_snapshots(&self, snapshots: &mut Vec<Snapshot>) -> Result<(), AwsError> {
        let mut pages = self
            .client
            .describe_db_snapshots()
            .snapshot_type("manual")
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let snap =
                item.map_err(|e| AwsError::from_sdk("rds:DescribeDBSnapshots", &self.region, &e))?;
            snapshots.push(self.instance_snapshot(&snap));
        }
        let mut pages = self
            .client
            .describe_db_cluster_snapshots()
            .snapshot_type("manual")
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let snap = item.map_err(|e| {
                AwsError::from_sdk("rds:DescribeDBClusterSnapshots", &self.region, &e)
            })?;
            snapshots.push(self.cluster_snapshot(&snap));
        }
        Ok(())
    }

    /// The manual snapshot `identifier` of `kind`, if it exists.
    pub async fn describe_snapshot(
        &self,
        kind: DatabaseKind,
        identifier: &str,
    ) -> Result<Option<Snapshot>, AwsError> {
        match kind {
            DatabaseKind::Instance => {
                let result = self
                    .client
                    .describe_db_snapshots()
                    .db_snapshot_identifier(identifier)
                    .send()
                    .await;
                match result {
                    Ok(out) => Ok(out
                        .db_snapshots()
                        .first()
                        .map(|snap| self.instance_snapshot(snap))),
                    Err(err)
                        if err
                            .as_service_error()
                            .is_some_and(|e| e.is_db_snapshot_not_found_fault()) =>
                    {
                        Ok(None)
                    }
                    Err(err) => Err(AwsError::from_sdk(
                        "rds:DescribeDBSnapshots",
                        &self.region,
                        &err,
                    )),
                }
            }
            DatabaseKind::Cluster => {
                let result = self
                    .client
                    .describe_db_cluster_snapshots()
                    .db_cluster_snapshot_identifier(identifier)
                    .send()
                    .await;
                match result {
                    Ok(out) => Ok(out
                        .db_cluster_snapshots()
                        .first()
                        .map(|snap| self.cluster_snapshot(snap))),
                    Err(err)
                        if err
                            .as_service_error()
                            .is_some_and(|e| e.is_db_cluster_snapshot_not_found_fault()) =>
                    {
                        Ok(None)
                    }
                    Err(err) => Err(AwsError::from_sdk(
                        "rds:DescribeDBClusterSnapshots",
                        &self.region,
                        &err,
                    )),
                }
            }
        }
    }

    /// The snapshots among `wanted` (kind and identifier) that exist, whoever made them. Cost: one call per 100
    /// identifiers of each kind (a `db-snapshot-id` / `db-cluster-snapshot-id` filter), whatever else the region holds.
    pub async fn snapshots_named(
        &self,
        wanted: &[(DatabaseKind, String)],
    ) -> Result<Vec<Snapshot>, AwsError> {
        let ids = |kind: DatabaseKind| -> Vec<String> {
            wanted
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, id)| id.clone())
                .collect()
        };
        let mut found = Vec::new();
        for chunk in ids(DatabaseKind::Instance).chunks(100) {
            let filter = aws_sdk_rds::types::Filter::builder()
                .name("db-snapshot-id")
                .set_values(Some(chunk.to_vec()))
                .build();
            let mut pages = self
                .client
                .describe_db_snapshots()
                .filters(filter)
                .into_paginator()
                .items()
                .send();
            while let Some(item) = pages.next().await {
                let snap = item
                    .map_err(|e| AwsError::from_sdk("rds:DescribeDBSnapshots", &self.region, &e))?;
                found.push(self.instance_snapshot(&snap));
            }
        }
        for chunk in ids(DatabaseKind::Cluster).chunks(100) {
            let filter = aws_sdk_rds::types::Filter::builder()
                .name("db-cluster-snapshot-id")
                .set_values(Some(chunk.to_vec()))
                .build();
            let mut pages = self
                .client
                .describe_db_cluster_snapshots()
                .filters(filter)
                .into_paginator()
                .items()
                .send();
            while let Some(item) = pages.next().await {
                let snap = item.map_err(|e| {
                    AwsError::from_sdk("rds:DescribeDBClusterSnapshots", &self.region, &e)
                })?;
                found.push(self.cluster_snapshot(&snap));
            }
        }
        Ok(found)
    }

    /// A DB snapshot as Lifeboat sees it. A copy's age is its original's (`OriginalSnapshotCreateTime`).
    fn instance_snapshot(&self, snap: &aws_sdk_rds::types::DbSnapshot) -> Snapshot {
        let tags = tag_map(snap.tag_list());
        let reported = snap
            .original_snapshot_create_time()
            .or(snap.snapshot_create_time());
        Snapshot {
            identifier: snap
                .db_snapshot_identifier()
                .unwrap_or_default()
                .to_string(),
            arn: snap.db_snapshot_arn().unwrap_or_default().to_string(),
            region: self.region.as_str().into(),
            kind: DatabaseKind::Instance,
            database: source_of(&tags, snap.db_instance_identifier()),
            created_at: self.taken_at(&tags, reported),
            status: snap.status().unwrap_or_default().into(),
            encrypted: snap.encrypted().unwrap_or(false),
            copied_from: snap.source_db_snapshot_identifier().map(str::to_string),
            engine: snap.engine().map(ShortText::from),
            tags,
        }
    }

    /// A DB cluster snapshot as Lifeboat sees it (`SnapshotCreateTime`: when the cluster volume was captured).
    fn cluster_snapshot(&self, snap: &aws_sdk_rds::types::DbClusterSnapshot) -> Snapshot {
        let tags = tag_map(snap.tag_list());
        Snapshot {
            identifier: snap
                .db_cluster_snapshot_identifier()
                .unwrap_or_default()
                .to_string(),
            arn: snap
                .db_cluster_snapshot_arn()
                .unwrap_or_default()
                .to_string(),
            region: self.region.as_str().into(),
            kind: DatabaseKind::Cluster,
            database: source_of(&tags, snap.db_cluster_identifier()),
            created_at: self.taken_at(&tags, snap.snapshot_create_time()),
            status: snap.status().unwrap_or_default().into(),
            encrypted: snap.storage_encrypted().unwrap_or(false),
            copied_from: snap.source_db_cluster_snapshot_arn().map(str::to_string),
            engine: snap.engine().map(ShortText::from),
            tags,
        }
    }

    /// When the recovery point was taken: RDS's time. A snapshot RDS has not timed yet (still creating) counts as
    /// the newest. Only tests dating by tag (debug builds) read `lifeboat:created-at`.
    fn taken_at(
        &self,
        tags: &Tags,
        reported: Option<&aws_smithy_types::DateTime>,
    ) -> DateTime<Utc> {
        let from_rds = reported.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
        #[cfg(not(all(feature = "test-dating", debug_assertions)))]
        let _ = tags;
        match self.dating {
            Dating::FromRds => from_rds,
            #[cfg(all(feature = "test-dating", debug_assertions))]
            Dating::FromTagForTests => {
                crate::model::parse_tag_time(tags.get(tags::CREATED_AT)).or(from_rds)
            }
        }
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Delete the snapshot `identifier` of `kind`. A request whose answer was lost (or that AWS failed inside) is
    /// read back: a snapshot that is gone, or being deleted, was deleted by it.
    pub async fn delete_snapshot(
        &self,
        kind: DatabaseKind,
        identifier: &str,
    ) -> Result<(), DeleteSnapshotError> {
        match self.request_deletion(kind, identifier).await {
            Err(DeleteSnapshotError::Aws(e)) if e.may_have_taken_effect() => {
                match self.read_back(kind, identifier).await {
                    Ok(None) => Ok(()),
                    Ok(Some(found)) if found.status == "deleting" => Ok(()),
                    _ => Err(DeleteSnapshotError::Aws(e)),
                }
            }
            other => other,
        }
    }

    async fn request_deletion(
        &self,
        kind: DatabaseKind,
        identifier: &str,
    ) -> Result<(), DeleteSnapshotError> {
        match kind {
            DatabaseKind::Instance => {
                let result = self
                    .client
                    .delete_db_snapshot()
                    .db_snapshot_identifier(identifier)
                    .send()
                    .await;
                result
                    .map(|_| ())
                    .map_err(|err| match err.as_service_error() {
                        Some(DeleteDBSnapshotError::DbSnapshotNotFoundFault(_)) => {
                            DeleteSnapshotError::NotFound(identifier.to_string())
                        }
                        Some(DeleteDBSnapshotError::InvalidDbSnapshotStateFault(e)) => {
                            DeleteSnapshotError::InvalidState(
                                e.message().unwrap_or("invalid state").to_string(),
                            )
                        }
                        _ => AwsError::from_sdk("rds:DeleteDBSnapshot", &self.region, &err).into(),
                    })
            }
            DatabaseKind::Cluster => {
                let result = self
                    .client
                    .delete_db_cluster_snapshot()
                    .db_cluster_snapshot_identifier(identifier)
                    .send()
                    .await;
                result
                    .map(|_| ())
                    .map_err(|err| match err.as_service_error() {
                        Some(DeleteDBClusterSnapshotError::DbClusterSnapshotNotFoundFault(_)) => {
                            DeleteSnapshotError::NotFound(identifier.to_string())
                        }
                        Some(DeleteDBClusterSnapshotError::InvalidDbClusterSnapshotStateFault(
                            e,
                        )) => DeleteSnapshotError::InvalidState(
                            e.message().unwrap_or("invalid state").to_string(),
                        ),
                        _ => AwsError::from_sdk("rds:DeleteDBClusterSnapshot", &self.region, &err)
                            .into(),
                    })
            }
        }
    }
}

impl Rds {
    /// Start `copy` into this adapter's region (the destination); returns the copy's ARN. The destination key is
    /// passed only for encrypted sources, the option group only when the policy names one. A request whose answer
    /// was lost (or that AWS failed inside) is read back: a copy under the target name with every tag asked for
    /// (among them the source it copies) is this request's, and the call succeeds.
    pub async fn copy_snapshot(&self, copy: &PlannedCopy) -> Result<String, CopySnapshotError> {
        match self.request_copy(copy).await {
            Err(CopySnapshotError::Aws(e)) if e.may_have_taken_effect() => {
                match self
                    .read_back_made(copy.source.kind, &copy.target_id, &copy.tags)
                    .await
                {
                    Some(arn) => Ok(arn),
                    None => Err(CopySnapshotError::Aws(e)),
                }
            }
            other => other,
        }
    }

    async fn request_copy(&self, copy: &PlannedCopy) -> Result<String, CopySnapshotError> {
        let tags = tag_list(&copy.tags);
        let region = &self.region;
        let key_error = |message: Option<&str>| CopySnapshotError::KeyNotAccessible {
            key: copy
                .kms_key_id
                .clone()
                .unwrap_or_else(|| "(none: unencrypted source)".into()),
            region: region.clone(),
            message: message.unwrap_or("no message").to_string(),
        };
        // RDS reports its concurrent-copy limit as a quota fault (or a generic error) whose message says so.
        let quota_error = |message: Option<&str>| {
            let message = message.unwrap_or("no message").to_string();
            if is_copy_limit_message(&message) {
                CopySnapshotError::CopyLimitReached {
                    region: region.clone(),
                    message,
                }
            } else {
                CopySnapshotError::QuotaExceeded {
                    region: region.clone(),
                    message,
                }
            }
        };
        let other_error = |message: Option<&str>, error: AwsError| match message {
            Some(message) if is_copy_limit_message(message) => {
                CopySnapshotError::CopyLimitReached {
                    region: region.clone(),
                    message: message.to_string(),
                }
            }
            _ => CopySnapshotError::Aws(error),
        };
        match copy.source.kind {
            DatabaseKind::Instance => {
                let result = self
                    .client
                    .copy_db_snapshot()
                    .source_db_snapshot_identifier(&copy.source.arn)
                    .target_db_snapshot_identifier(&copy.target_id)
                    .set_kms_key_id(copy.kms_key_id.clone())
                    .set_option_group_name(copy.option_group.clone())
                    .set_tags(Some(tags))
                    .send()
                    .await;
                match result {
                    Ok(out) => Ok(out
                        .db_snapshot()
                        .and_then(|s| s.db_snapshot_arn())
                        .unwrap_or_default()
                        .to_string()),
                    Err(err) => Err(match err.as_service_error() {
                        Some(CopyDBSnapshotError::DbSnapshotAlreadyExistsFault(_)) => {
                            CopySnapshotError::AlreadyExists(copy.target_id.clone())
                        }
                        Some(CopyDBSnapshotError::DbSnapshotNotFoundFault(_)) => {
                            CopySnapshotError::SourceNotFound(copy.source.arn.clone())
                        }
                        Some(CopyDBSnapshotError::InvalidDbSnapshotStateFault(e)) => {
                            CopySnapshotError::NotReady(
                                e.message().unwrap_or("invalid state").to_string(),
                            )
                        }
                        Some(CopyDBSnapshotError::KmsKeyNotAccessibleFault(e)) => {
                            key_error(e.message())
                        }
                        Some(CopyDBSnapshotError::SnapshotQuotaExceededFault(e)) => {
                            quota_error(e.message())
                        }
                        _ => other_error(
                            err.message(),
                            AwsError::from_sdk("rds:CopyDBSnapshot", region, &err),
                        ),
                    }),
                }
            }
            DatabaseKind::Cluster => {
                let result = self
                    .client
                    .copy_db_cluster_snapshot()
                    .source_db_cluster_snapshot_identifier(&copy.source.arn)
                    .target_db_cluster_snapshot_identifier(&copy.target_id)
                    .set_kms_key_id(copy.kms_key_id.clone())
                    .set_tags(Some(tags))
                    .send()
                    .await;
                match result {
                    Ok(out) => Ok(out
                        .db_cluster_snapshot()
                        .and_then(|s| s.db_cluster_snapshot_arn())
                        .unwrap_or_default()
                        .to_string()),
                    Err(err) => Err(match err.as_service_error() {
                        Some(CopyDBClusterSnapshotError::DbClusterSnapshotAlreadyExistsFault(
                            _,
                        )) => CopySnapshotError::AlreadyExists(copy.target_id.clone()),
                        Some(CopyDBClusterSnapshotError::DbClusterSnapshotNotFoundFault(_)) => {
                            CopySnapshotError::SourceNotFound(copy.source.arn.clone())
                        }
                        Some(CopyDBClusterSnapshotError::InvalidDbClusterSnapshotStateFault(e)) => {
                            CopySnapshotError::NotReady(
                                e.message().unwrap_or("invalid state").to_string(),
                            )
                        }
                        Some(CopyDBClusterSnapshotError::KmsKeyNotAccessibleFault(e)) => {
                            key_error(e.message())
                        }
                        Some(CopyDBClusterSnapshotError::SnapshotQuotaExceededFault(e)) => {
                            quota_error(e.message())
                        }
                        _ => other_error(
                            err.message(),
                            AwsError::from_sdk("rds:CopyDBClusterSnapshot", region, &err),
                        ),
                    }),
                }
            }
        }
    }
}

/// What a restore restores from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreSource<'a> {
    /// A manual snapshot (or copy) in this region: its identifier.
    Snapshot(&'a str),
    /// The source database's automated backups and transaction logs, in this region: its identifier, and the time
    /// (`None`: the latest restorable time).
    PointInTime {
        /// The source instance or cluster.
        database: &'a str,
        /// The time to restore to.
        time: Option<DateTime<Utc>>,
    },
    /// Automated backups replicated into this region from a DB instance elsewhere: their ARN, and the time.
    ReplicatedBackup {
        /// ARN of the replicated automated backup (`DBInstanceAutomatedBackupsArn`).
        arn: &'a str,
        /// The time to restore to.
        time: Option<DateTime<Utc>>,
    },
}

/// A database to restore: always private, without deletion protection or Multi-AZ, tagged.
pub struct RestoreSpec<'a> {
    /// Identifier of the new instance or cluster.
    pub id: &'a str,
    /// The tag key that marks it (with `id` as value): what proves a clash of names is this very restore.
    pub marker: &'a str,
    /// Instance or cluster.
    pub kind: DatabaseKind,
    /// What to restore.
    pub source: RestoreSource<'a>,
    /// Engine of the source database (required to restore an Aurora cluster).
    pub engine: &'a str,
    /// Instance class of the instance (or of the Aurora cluster's one member).
    pub instance_class: &'a str,
    /// DB subnet group in this region.
    pub subnet_group: &'a str,
    /// VPC security groups in this region (never empty: the default security group is never used).
    pub security_groups: &'a [String],
    /// DB parameter group (instances) or DB cluster parameter group (clusters); the engine default when `None`.
    pub parameter_group: Option<&'a str>,
    /// Option group (instances); the snapshot's or default when `None`.
    pub option_group: Option<&'a str>,
    /// Tags of the new resources.
    pub tags: &'a [(String, String)],
}

/// The source database's settings a restore takes over where they exist in the target region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceSettings {
    /// Its instance class (a cluster: its first member's).
    pub instance_class: Option<String>,
    /// Its DB parameter group (instance) or DB cluster parameter group (cluster).
    pub parameter_group: Option<String>,
    /// Its option group (instances).
    pub option_group: Option<String>,
    /// Start of its point-in-time restore window (clusters; instances: from their automated backups).
    pub earliest_restorable: Option<DateTime<Utc>>,
    /// End of its point-in-time restore window.
    pub latest_restorable: Option<DateTime<Utc>>,
}

fn sdk_time(time: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(time.timestamp())
}

fn chrono_time(time: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    time.and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()))
}

/// Restores: the one restore engine's calls ([`crate::restore::engine`]).
impl Rds {
    /// Restore `spec`: a private database without deletion protection, Multi-AZ or automated backups, tagged
    /// `spec.tags`. Aurora: a cluster plus one instance ([`cluster_member`]). A restore that exists already
    /// (answer lost, request retried) counts as done.
    pub async fn restore(&self, spec: &RestoreSpec<'_>) -> Result<(), AwsError> {
        let tags = tag_list(spec.tags);
        let groups = (!spec.security_groups.is_empty()).then(|| spec.security_groups.to_vec());
        match spec.kind {
            DatabaseKind::Instance => {
                let result = match spec.source {
                    RestoreSource::Snapshot(snapshot) => self
                        .client
                        .restore_db_instance_from_db_snapshot()
                        .db_instance_identifier(spec.id)
                        .db_snapshot_identifier(snapshot)
                        .db_instance_class(spec.instance_class)
                        .db_subnet_group_name(spec.subnet_group)
                        .set_vpc_security_group_ids(groups)
                        .set_db_parameter_group_name(spec.parameter_group.map(str::to_string))
                        .set_option_group_name(spec.option_group.map(str::to_string))
                        .publicly_accessible(false)
                        .deletion_protection(false)
                        .multi_az(false)
                        .set_tags(Some(tags))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| {
                            let exists = e
                                .as_service_error()
                                .is_some_and(|e| e.is_db_instance_already_exists_fault());
                            (
                                exists,
                                AwsError::from_sdk(
                                    "rds:RestoreDBInstanceFromDBSnapshot",
                                    &self.region,
                                    &e,
                                ),
                            )
                        }),
                    RestoreSource::PointInTime { .. } | RestoreSource::ReplicatedBackup { .. } => {
                        let (database, arn, time) = match spec.source {
                            RestoreSource::PointInTime { database, time } => {
                                (Some(database), None, time)
                            }
                            RestoreSource::ReplicatedBackup { arn, time } => {
                                (None, Some(arn), time)
                            }
                            RestoreSource::Snapshot(_) => (None, None, None),
                        };
                        self.client
                            .restore_db_instance_to_point_in_time()
                            .target_db_instance_identifier(spec.id)
                            .set_source_db_instance_identifier(database.map(str::to_string))
                            .set_source_db_instance_automated_backups_arn(arn.map(str::to_string))
                            .set_restore_time(time.map(sdk_time))
                            .use_latest_restorable_time(time.is_none())
                            .db_instance_class(spec.instance_class)
                            .db_subnet_group_name(spec.subnet_group)
                            .set_vpc_security_group_ids(groups)
                            .set_db_parameter_group_name(spec.parameter_group.map(str::to_string))
                            .set_option_group_name(spec.option_group.map(str::to_string))
                            .publicly_accessible(false)
                            .deletion_protection(false)
                            .multi_az(false)
                            .set_tags(Some(tags))
                            .send()
                            .await
                            .map(|_| ())
                            .map_err(|e| {
                                let exists = e
                                    .as_service_error()
                                    .is_some_and(|e| e.is_db_instance_already_exists_fault());
                                (
                                    exists,
                                    AwsError::from_sdk(
                                        "rds:RestoreDBInstanceToPointInTime",
                                        &self.region,
                                        &e,
                                    ),
                                )
                            })
                    }
                };
                match result {
                    Ok(()) => Ok(()),
                    // An instance of this identifier exists: this very restore (an answer lost, a request
                    // retried) only if it carries the marker with this identifier; anyone else's is an error.
                    Err((true, error)) => match self
                        .is_restored(DatabaseKind::Instance, spec.id, spec.marker)
                        .await
                    {
                        true => Ok(()),
                        false => Err(error),
                    },
                    Err((false, error)) => Err(error),
                }
            }
            DatabaseKind::Cluster => {
                let result = match spec.source {
                    RestoreSource::Snapshot(snapshot) => self
                        .client
                        .restore_db_cluster_from_snapshot()
                        .db_cluster_identifier(spec.id)
                        .snapshot_identifier(snapshot)
                        .engine(spec.engine)
                        .db_subnet_group_name(spec.subnet_group)
                        .set_vpc_security_group_ids(groups)
                        .set_db_cluster_parameter_group_name(
                            spec.parameter_group.map(str::to_string),
                        )
                        .deletion_protection(false)
                        .set_tags(Some(tags))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| {
                            let exists = e
                                .as_service_error()
                                .is_some_and(|e| e.is_db_cluster_already_exists_fault());
                            (
                                exists,
                                AwsError::from_sdk(
                                    "rds:RestoreDBClusterFromSnapshot",
                                    &self.region,
                                    &e,
                                ),
                            )
                        }),
                    RestoreSource::PointInTime { database, time } => self
                        .client
                        .restore_db_cluster_to_point_in_time()
                        .db_cluster_identifier(spec.id)
                        .source_db_cluster_identifier(database)
                        .set_restore_to_time(time.map(sdk_time))
                        .use_latest_restorable_time(time.is_none())
                        .db_subnet_group_name(spec.subnet_group)
                        .set_vpc_security_group_ids(groups)
                        .set_db_cluster_parameter_group_name(
                            spec.parameter_group.map(str::to_string),
                        )
                        .deletion_protection(false)
                        .set_tags(Some(tags))
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| {
                            let exists = e
                                .as_service_error()
                                .is_some_and(|e| e.is_db_cluster_already_exists_fault());
                            (
                                exists,
                                AwsError::from_sdk(
                                    "rds:RestoreDBClusterToPointInTime",
                                    &self.region,
                                    &e,
                                ),
                            )
                        }),
                    RestoreSource::ReplicatedBackup { .. } => {
                        return Err(AwsError::Service {
                            operation: "rds:RestoreDBClusterToPointInTime".into(),
                            region: self.region.clone(),
                            code: "InvalidParameterCombination".into(),
                            message: "Aurora clusters have no replicated automated backups: restore a copy in \
                                      that region"
                                .into(),
                        });
                    }
                };
                match result {
                    Ok(()) | Err((true, _)) => {}
                    // The SDK's retry of a restore whose answer was lost may be answered with an error although
                    // the first attempt restored the cluster (moto answers with a clash of its automated backup's
                    // name, not DBClusterAlreadyExistsFault): a cluster of this identifier, tagged as this very
                    // restore, is the restore done.
                    Err((false, error)) => {
                        if !self
                            .is_restored(DatabaseKind::Cluster, spec.id, spec.marker)
                            .await
                        {
                            return Err(error);
                        }
                    }
                }
                self.create_cluster_member(spec.id, spec.engine, spec.instance_class, spec.tags)
                    .await
            }
        }
    }

    /// The settings of the source database `id` a restore takes over, and its point-in-time window.
    pub async fn source_settings(
        &self,
        kind: DatabaseKind,
        id: &str,
    ) -> Result<SourceSettings, AwsError> {
        match kind {
            DatabaseKind::Instance => {
                let out = self
                    .client
                    .describe_db_instances()
                    .db_instance_identifier(id)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("rds:DescribeDBInstances", &self.region, &e))?;
                let Some(db) = out.db_instances().first() else {
                    return Ok(SourceSettings::default());
                };
                // The start of an instance's window is only on its automated backups; unknown when unreadable.
                let earliest = self
                    .client
                    .describe_db_instance_automated_backups()
                    .db_instance_identifier(id)
                    .send()
                    .await
                    .ok()
                    .and_then(|out| {
                        out.db_instance_automated_backups()
                            .iter()
                            .filter_map(|b| chrono_time(b.restore_window()?.earliest_time()))
                            .min()
                    });
                Ok(SourceSettings {
                    instance_class: db.db_instance_class().map(str::to_string),
                    parameter_group: db
                        .db_parameter_groups()
                        .first()
                        .and_then(|g| g.db_parameter_group_name())
                        .map(str::to_string),
                    option_group: db
                        .option_group_memberships()
                        .first()
                        .and_then(|g| g.option_group_name())
                        .map(str::to_string),
                    earliest_restorable: earliest,
                    latest_restorable: chrono_time(db.latest_restorable_time()),
                })
            }
            DatabaseKind::Cluster => {
                let out = self
                    .client
                    .describe_db_clusters()
                    .db_cluster_identifier(id)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("rds:DescribeDBClusters", &self.region, &e))?;
                let Some(cluster) = out.db_clusters().first() else {
                    return Ok(SourceSettings::default());
                };
                Ok(SourceSettings {
                    instance_class: None,
                    parameter_group: cluster.db_cluster_parameter_group().map(str::to_string),
                    option_group: None,
                    earliest_restorable: chrono_time(cluster.earliest_restorable_time()),
                    latest_restorable: chrono_time(cluster.latest_restorable_time()),
                })
            }
        }
    }

    /// Whether the parameter group (`cluster`: DB cluster parameter group) `name` exists in this region.
    pub async fn parameter_group_exists(
        &self,
        kind: DatabaseKind,
        name: &str,
    ) -> Result<bool, AwsError> {
        match kind {
            DatabaseKind::Instance => match self
                .client
                .describe_db_parameter_groups()
                .db_parameter_group_name(name)
                .send()
                .await
            {
                Ok(out) => Ok(!out.db_parameter_groups().is_empty()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_db_parameter_group_not_found_fault()) =>
                {
                    Ok(false)
                }
                Err(e) => Err(AwsError::from_sdk(
                    "rds:DescribeDBParameterGroups",
                    &self.region,
                    &e,
                )),
            },
            DatabaseKind::Cluster => match self
                .client
                .describe_db_cluster_parameter_groups()
                .db_cluster_parameter_group_name(name)
                .send()
                .await
            {
                Ok(out) => Ok(!out.db_cluster_parameter_groups().is_empty()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_db_parameter_group_not_found_fault()) =>
                {
                    Ok(false)
                }
                Err(e) => Err(AwsError::from_sdk(
                    "rds:DescribeDBClusterParameterGroups",
                    &self.region,
                    &e,
                )),
            },
        }
    }

    /// Whether the option group `name` exists in this region.
    pub async fn option_group_exists(&self, name: &str) -> Result<bool, AwsError> {
        match self
            .client
            .describe_option_groups()
            .option_group_name(name)
            .send()
            .await
        {
            Ok(out) => Ok(!out.option_groups_list().is_empty()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_option_group_not_found_fault()) =>
            {
                Ok(false)
            }
            Err(e) => Err(AwsError::from_sdk(
                "rds:DescribeOptionGroups",
                &self.region,
                &e,
            )),
        }
    }

    /// The replicated automated backup in this region of the DB instance `source_arn` (another region's): its ARN
    /// and restore window.
    pub async fn replicated_backup_of(
        &self,
        source_arn: &str,
    ) -> Result<Option<(String, Option<DateTime<Utc>>, Option<DateTime<Utc>>)>, AwsError> {
        let mut pages = self
            .client
            .describe_db_instance_automated_backups()
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let backup = item.map_err(|e| {
                AwsError::from_sdk("rds:DescribeDBInstanceAutomatedBackups", &self.region, &e)
            })?;
            if backup.db_instance_arn() == Some(source_arn) {
                let window = backup.restore_window();
                return Ok(Some((
                    backup
                        .db_instance_automated_backups_arn()
                        .unwrap_or_default()
                        .to_string(),
                    chrono_time(window.and_then(|w| w.earliest_time())),
                    chrono_time(window.and_then(|w| w.latest_time())),
                )));
            }
        }
        Ok(None)
    }

    /// Whether the DB instance or cluster `id` exists and carries `marker` = `id`: a restore of that identifier
    /// is this very restore (an answer that cannot be had counts as no).
    async fn is_restored(&self, kind: DatabaseKind, id: &str, marker: &str) -> bool {
        let marked = |tags: &[Tag]| {
            tags.iter()
                .any(|t| t.key() == Some(marker) && t.value() == Some(id))
        };
        match kind {
            DatabaseKind::Instance => self
                .client
                .describe_db_instances()
                .db_instance_identifier(id)
                .send()
                .await
                .is_ok_and(|out| out.db_instances().iter().any(|db| marked(db.tag_list()))),
            DatabaseKind::Cluster => self
                .client
                .describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
                .await
                .is_ok_and(|out| out.db_clusters().iter().any(|c| marked(c.tag_list()))),
        }
    }

    /// Create the one instance (`<id>-1`, of `instance_class`, private, tagged `tags`) of the drill cluster `id`
    /// of `engine`: the second half of an Aurora drill's restore, asked for again when a drill cluster is found
    /// without it (the run that restored the cluster never heard back, or could not create it). An instance that
    /// exists already counts as done.
    pub async fn create_cluster_member(
        &self,
        id: &str,
        engine: &str,
        instance_class: &str,
        tags: &[(String, String)],
    ) -> Result<(), AwsError> {
        let tags = tag_list(tags);
        let result = self
            .client
            .create_db_instance()
            .db_instance_identifier(cluster_member(id))
            .db_cluster_identifier(id)
            .engine(engine)
            .db_instance_class(instance_class)
            .publicly_accessible(false)
            .set_tags(Some(tags))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_db_instance_already_exists_fault()) =>
            {
                Ok(())
            }
            Err(err) => Err(AwsError::from_sdk(
                "rds:CreateDBInstance",
                &self.region,
                &err,
            )),
        }
    }

    /// Give a restored database credentials of Lifeboat's own; unless `keep_backups` (a failover's database, the
    /// application's from then on), an instance's automated backups are switched off (a temporary database).
    pub async fn set_master_password(
        &self,
        kind: DatabaseKind,
        id: &str,
        password: &str,
        keep_backups: bool,
    ) -> Result<(), AwsError> {
        match kind {
            DatabaseKind::Instance => self
                .client
                .modify_db_instance()
                .db_instance_identifier(id)
                .master_user_password(password)
                .set_backup_retention_period((!keep_backups).then_some(0))
                .apply_immediately(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::from_sdk("rds:ModifyDBInstance", &self.region, &e)),
            DatabaseKind::Cluster => self
                .client
                .modify_db_cluster()
                .db_cluster_identifier(id)
                .master_user_password(password)
                .apply_immediately(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::from_sdk("rds:ModifyDBCluster", &self.region, &e)),
        }
    }

    /// Whether RDS is still applying a drill's credentials: `Some(why)` while the temporary database is not
    /// `available` or RDS lists the master password among its pending modifications (DescribeDBInstances /
    /// DescribeDBClusters `PendingModifiedValues`; Aurora: the cluster's, and its member must be available too);
    /// `None` once the drill credentials are in effect. A database that is not found is reported as such.
    pub async fn credentials_pending(
        &self,
        kind: DatabaseKind,
        id: &str,
    ) -> Result<Option<String>, AwsError> {
        let instance_state = |id: &str, instances: &[aws_sdk_rds::types::DbInstance]| {
            let Some(db) = instances
                .iter()
                .find(|db| db.db_instance_identifier() == Some(id))
            else {
                return Some(format!("{id} not found"));
            };
            let status = db.db_instance_status().unwrap_or_default();
            if status != "available" {
                return Some(format!("{id} is {status}"));
            }
            db.pending_modified_values()
                .and_then(|p| p.master_user_password())
                .map(|_| format!("{id} has the master password change pending"))
        };
        let describe_instance = |instance: String| async move {
            self.client
                .describe_db_instances()
                .db_instance_identifier(&instance)
                .send()
                .await
                .map(|out| instance_state(&instance, out.db_instances()))
                .or_else(|err| {
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_db_instance_not_found_fault())
                    {
                        Ok(Some(format!("{instance} not found")))
                    } else {
                        Err(AwsError::from_sdk(
                            "rds:DescribeDBInstances",
                            &self.region,
                            &err,
                        ))
                    }
                })
        };
        match kind {
            DatabaseKind::Instance => describe_instance(id.to_string()).await,
            DatabaseKind::Cluster => {
                let out = self
                    .client
                    .describe_db_clusters()
                    .db_cluster_identifier(id)
                    .send()
                    .await;
                let out = match out {
                    Ok(out) => out,
                    Err(err)
                        if err
                            .as_service_error()
                            .is_some_and(|e| e.is_db_cluster_not_found_fault()) =>
                    {
                        return Ok(Some(format!("{id} not found")));
                    }
                    Err(err) => {
                        return Err(AwsError::from_sdk(
                            "rds:DescribeDBClusters",
                            &self.region,
                            &err,
                        ));
                    }
                };
                let Some(cluster) = out
                    .db_clusters()
                    .iter()
                    .find(|c| c.db_cluster_identifier() == Some(id))
                else {
                    return Ok(Some(format!("{id} not found")));
                };
                let status = cluster.status().unwrap_or_default();
                if status != "available" {
                    return Ok(Some(format!("{id} is {status}")));
                }
                if cluster
                    .pending_modified_values()
                    .and_then(|p| p.master_user_password())
                    .is_some()
                {
                    return Ok(Some(format!("{id} has the master password change pending")));
                }
                describe_instance(cluster_member(id)).await
            }
        }
    }

    /// Add `tags` to the resource `arn` (a drill's phase; a snapshot's verification result).
    pub async fn add_tags(&self, arn: &str, tags: &[(String, String)]) -> Result<(), AwsError> {
        let tags = tag_list(tags);
        self.client
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk("rds:AddTagsToResource", &self.region, &e))
    }

    /// Delete a drill's temporary database without a final snapshot (Aurora: its instance, then the cluster once
    /// the instance is gone). Already gone or already being deleted counts as done; returns whether the drill's
    /// resources are all gone.
    pub async fn delete_restored(&self, kind: DatabaseKind, id: &str) -> Result<bool, AwsError> {
        let instance = match kind {
            DatabaseKind::Instance => id.to_string(),
            DatabaseKind::Cluster => cluster_member(id),
        };
        let result = self
            .client
            .delete_db_instance()
            .db_instance_identifier(&instance)
            .skip_final_snapshot(true)
            .delete_automated_backups(true)
            .send()
            .await;
        let instance_gone = match result {
            Ok(_) => false,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_db_instance_not_found_fault()) =>
            {
                true
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_invalid_db_instance_state_fault()) =>
            {
                false
            }
            Err(err) => {
                return Err(AwsError::from_sdk(
                    "rds:DeleteDBInstance",
                    &self.region,
                    &err,
                ));
            }
        };
        if kind == DatabaseKind::Instance {
            return Ok(instance_gone);
        }
        let result = self
            .client
            .delete_db_cluster()
            .db_cluster_identifier(id)
            .skip_final_snapshot(true)
            .send()
            .await;
        match result {
            Ok(_) => Ok(false),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_db_cluster_not_found_fault()) =>
            {
                Ok(true)
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_invalid_db_cluster_state_fault()) =>
            {
                Ok(false)
            }
            Err(err) => Err(AwsError::from_sdk(
                "rds:DeleteDBCluster",
                &self.region,
                &err,
            )),
        }
    }
}

/// Reads of a snapshot after a write whose answer was lost, before the write is reported unconfirmed.
pub const READ_BACK_ATTEMPTS: u32 = 3;

/// Pause before the second read back; the n-th waits n times as long (the API may be throttling).
const READ_BACK_PAUSE: std::time::Duration = std::time::Duration::from_millis(200);

/// Identifier of the instance inside an Aurora drill cluster.
pub fn cluster_member(cluster_id: &str) -> String {
    format!("{cluster_id}-1")
}

/// Whether an RDS error message is about the concurrent cross-region copy limit.
fn is_copy_limit_message(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("concurrent") || (message.contains("in progress") && message.contains("cop"))
}

/// The database a snapshot belongs to: its `lifeboat:source` tag, else what RDS reports.
fn source_of(tags: &Tags, reported: Option<&str>) -> ShortText {
    tags.get(tags::SOURCE)
        .or(reported)
        .unwrap_or_default()
        .into()
}

fn is_rds_engine(engine: &str) -> bool {
    !NON_RDS_ENGINES
        .iter()
        .any(|other| engine.starts_with(other))
}

/// Tags as RDS takes them.
fn tag_list(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn tag_map(tags: &[Tag]) -> Tags {
    tags.iter()
        .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default())))
        .collect()
}

/// What the monitor reads of a database beyond [`Database`]: its automated backups and allocated storage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BackupFacts {
    /// Automated backups in the database's own region.
    pub point_in_time: crate::monitor::PointInTimeFacts,
    /// Allocated storage in bytes (DB instances; `None` for clusters, whose storage grows by itself).
    pub allocated_bytes: Option<u64>,
}

/// Manual-snapshot quota use of one kind in one region (`DescribeAccountAttributes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotQuota {
    /// DB snapshots (`ManualSnapshots`) or DB cluster snapshots (`ManualClusterSnapshots`).
    pub kind: DatabaseKind,
    /// In use.
    pub used: u64,
    /// The quota.
    pub max: u64,
}

/// Read-only reads of the monitor function.
impl Rds {
    /// Automated backups replicated into this region from DB instances elsewhere, by the source instance's ARN
    /// (`DescribeDBInstanceAutomatedBackups`; backups of this region's own instances are left out). Cost: one call
    /// per 100 automated backups.
    pub async fn replicated_backups(
        &self,
    ) -> Result<Vec<(String, crate::monitor::ReplicatedBackup)>, AwsError> {
        let mut found = Vec::new();
        let mut pages = self
            .client
            .describe_db_instance_automated_backups()
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let backup = item.map_err(|e| {
                AwsError::from_sdk("rds:DescribeDBInstanceAutomatedBackups", &self.region, &e)
            })?;
            let Some(source) = backup.db_instance_arn() else {
                continue;
            };
            if source.split(':').nth(3) == Some(self.region.as_str()) {
                continue;
            }
            let window = backup.restore_window();
            let time = |t: Option<&aws_smithy_types::DateTime>| {
                t.and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()))
            };
            found.push((
                source.to_string(),
                crate::monitor::ReplicatedBackup {
                    region: self.region.clone(),
                    retention_days: backup
                        .backup_retention_period()
                        .and_then(|d| u32::try_from(d).ok())
                        .unwrap_or(0),
                    earliest: time(window.and_then(|w| w.earliest_time())),
                    latest: time(window.and_then(|w| w.latest_time())),
                },
            ));
        }
        Ok(found)
    }

    /// Manual-snapshot quota use of DB snapshots and DB cluster snapshots in this region, as RDS counts it
    /// (`DescribeAccountAttributes`: one call, no counting).
    pub async fn snapshot_quotas(&self) -> Result<Vec<SnapshotQuota>, AwsError> {
        let out = self
            .client
            .describe_account_attributes()
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("rds:DescribeAccountAttributes", &self.region, &e))?;
        Ok(out
            .account_quotas()
            .iter()
            .filter_map(|q| {
                let kind = match q.account_quota_name()? {
                    "ManualSnapshots" => DatabaseKind::Instance,
                    "ManualClusterSnapshots" => DatabaseKind::Cluster,
                    _ => return None,
                };
                Some(SnapshotQuota {
                    kind,
                    used: q.used().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                    max: q.max().and_then(|n| u64::try_from(n).ok())?,
                })
            })
            .collect())
    }

    /// How far RDS is with the snapshot `identifier` of `kind` (`PercentProgress`, 0 to 100), if it exists.
    pub async fn snapshot_progress(
        &self,
        kind: DatabaseKind,
        identifier: &str,
    ) -> Result<Option<u32>, AwsError> {
        let progress = match kind {
            DatabaseKind::Instance => self
                .client
                .describe_db_snapshots()
                .db_snapshot_identifier(identifier)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("rds:DescribeDBSnapshots", &self.region, &e))?
                .db_snapshots()
                .first()
                .and_then(|s| s.percent_progress()),
            DatabaseKind::Cluster => self
                .client
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(identifier)
                .send()
                .await
                .map_err(|e| {
                    AwsError::from_sdk("rds:DescribeDBClusterSnapshots", &self.region, &e)
                })?
                .db_cluster_snapshots()
                .first()
                .and_then(|s| s.percent_progress()),
        };
        Ok(progress.and_then(|p| u32::try_from(p).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
    use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
    use aws_sdk_rds::types::DbSnapshot;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    fn time(text: &str) -> aws_smithy_types::DateTime {
        let t: DateTime<Utc> = text.parse().unwrap();
        aws_smithy_types::DateTime::from_secs(t.timestamp())
    }

    /// RDS listing `snapshots` (and no cluster snapshots) in us-west-2.
    fn rds_listing(snapshots: Vec<DbSnapshot>) -> Rds {
        let instances = mock!(Client::describe_db_snapshots).then_output(move || {
            DescribeDbSnapshotsOutput::builder()
                .set_db_snapshots(Some(snapshots.clone()))
                .build()
        });
        let clusters = mock!(Client::describe_db_cluster_snapshots)
            .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build());
        Rds::new(
            mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&instances, &clusters]),
            "us-west-2",
        )
    }

    /// A copy whose tag claims it is from 2019, while RDS says the original was taken in 2026.
    fn copy_with_old_tag() -> DbSnapshot {
        DbSnapshot::builder()
            .db_snapshot_identifier("lifeboat-db-2026-11-01-0200-from-us-east-1")
            .db_snapshot_arn("arn:aws:rds:us-west-2:123456789012:snapshot:lifeboat-db-2026-11-01-0200-from-us-east-1")
            .status("available")
            .snapshot_type("manual")
            .snapshot_create_time(time("2026-11-01T05:00:00Z"))
            .original_snapshot_create_time(time("2026-11-01T02:00:07Z"))
            .tag_list(Tag::builder().key(tags::CREATED_AT).value("2019-11-01T02:00:00Z").build())
            .build()
    }

    #[tokio::test]
    async fn ages_come_from_rds_and_a_copy_ages_from_its_original() {
        let listed = rds_listing(vec![copy_with_old_tag()])
            .list_snapshots()
            .await
            .unwrap();
        assert_eq!(
            listed[0].created_at,
            "2026-11-01T02:00:07Z".parse::<DateTime<Utc>>().unwrap(),
            "OriginalSnapshotCreateTime, not the copy's own time, not the tag"
        );
        assert_eq!(
            listed[0].dating_disagreement(),
            Some("2019-11-01T02:00:00Z".parse().unwrap()),
            "a tag that would make the snapshot older is reported"
        );
    }

    #[tokio::test]
    async fn a_tag_within_a_late_schedule_delivery_is_no_disagreement() {
        let mut snapshot = copy_with_old_tag();
        snapshot.tag_list = Some(vec![
            Tag::builder()
                .key(tags::CREATED_AT)
                .value("2026-11-01T02:00:00Z")
                .build(),
        ]);
        let listed = rds_listing(vec![snapshot]).list_snapshots().await.unwrap();
        assert_eq!(listed[0].dating_disagreement(), None);
    }

    #[tokio::test]
    async fn outside_test_builds_the_variable_changes_nothing() {
        let asked = rds_listing(vec![copy_with_old_tag()])
            .dated_by_tags_if_testing(|name| (name == TEST_DATING_VAR).then(|| "1".into()));
        let listed = asked.list_snapshots().await.unwrap();
        let by_rds = "2026-11-01T02:00:07Z".parse::<DateTime<Utc>>().unwrap();
        if cfg!(all(feature = "test-dating", debug_assertions)) {
            assert_ne!(
                listed[0].created_at, by_rds,
                "test builds date by tag when asked"
            );
        } else {
            assert_eq!(
                listed[0].created_at, by_rds,
                "deployable builds date by RDS"
            );
        }
        let unasked = rds_listing(vec![copy_with_old_tag()]).dated_by_tags_if_testing(|_| None);
        let listed = unasked.list_snapshots().await.unwrap();
        assert_eq!(
            listed[0].created_at, by_rds,
            "every build dates by RDS unless asked"
        );
    }

    /// An answer RDS gives when it failed inside: the write may or may not have landed.
    fn internal_failure() -> aws_smithy_runtime_api::http::Response {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(500).unwrap(),
            aws_smithy_types::body::SdkBody::from(
                "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>\
                 <Message>internal failure</Message></Error></ErrorResponse>",
            ),
        )
    }

    /// A gateway's 502, no AWS error in it: the answer never came from RDS.
    fn bad_gateway() -> aws_smithy_runtime_api::http::Response {
        aws_smithy_runtime_api::http::Response::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(502).unwrap(),
            aws_smithy_types::body::SdkBody::from("<html><body>502 Bad Gateway</body></html>"),
        )
    }

    fn booking_db() -> Database {
        Database {
            identifier: "booking-db".into(),
            kind: DatabaseKind::Instance,
            arn: "arn:aws:rds:us-east-1:123456789012:db:booking-db".into(),
            region: "us-east-1".into(),
            engine: "postgres".into(),
            status: "available".into(),
            encrypted: true,
            cluster: None,
            endpoint: None,
            master_username: None,
            engine_version: None,
            replica_source: None,
            tags: Default::default(),
        }
    }

    fn no_sdk_retries(config: aws_sdk_rds::config::Builder) -> aws_sdk_rds::config::Builder {
        config.retry_config(aws_sdk_rds::config::retry::RetryConfig::disabled())
    }

    /// A snapshot request that RDS failed inside, though the snapshot is there with every tag asked for: read
    /// back, it is this request's, and the call succeeds. One that is not there stays a failure.
    #[tokio::test]
    async fn a_snapshot_whose_answer_failed_is_read_back() {
        let asked = vec![
            (tags::DEPLOYMENT.to_string(), "lifeboat".to_string()),
            (
                tags::CREATED_AT.to_string(),
                "2026-11-22T02:00:00Z".to_string(),
            ),
        ];
        let made = DbSnapshot::builder()
            .db_snapshot_identifier("lifeboat-booking-db-2026-11-22-0200")
            .db_snapshot_arn(
                "arn:aws:rds:us-east-1:123456789012:snapshot:lifeboat-booking-db-2026-11-22-0200",
            )
            .status("creating")
            .snapshot_type("manual")
            .set_tag_list(Some(
                asked
                    .iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build())
                    .collect(),
            ))
            .build();
        let answers: [fn() -> aws_smithy_runtime_api::http::Response; 2] =
            [internal_failure, bad_gateway];
        let cases = answers
            .into_iter()
            .flat_map(|answer| [(answer, Some(made.clone()), true), (answer, None, false)]);
        for (answer, found, succeeds) in cases {
            let create = mock!(Client::create_db_snapshot).then_http_response(answer);
            let describe = mock!(Client::describe_db_snapshots).then_output(move || {
                DescribeDbSnapshotsOutput::builder()
                    .set_db_snapshots(Some(found.clone().into_iter().collect()))
                    .build()
            });
            let rds = Rds::new(
                mock_client!(
                    aws_sdk_rds,
                    RuleMode::MatchAny,
                    [&create, &describe],
                    no_sdk_retries
                ),
                "us-east-1",
            );
            let result = rds
                .create_snapshot(&booking_db(), "lifeboat-booking-db-2026-11-22-0200", &asked)
                .await;
            assert_eq!(result.is_ok(), succeeds, "{result:?}");
            assert_eq!((create.num_calls(), describe.num_calls()), (1, 1));
        }
    }

    /// A deletion that RDS failed inside, of a snapshot that is gone when read back, was done by it.
    #[tokio::test]
    async fn a_deletion_whose_answer_failed_is_read_back() {
        let delete = mock!(Client::delete_db_snapshot).then_http_response(internal_failure);
        let describe = mock!(Client::describe_db_snapshots)
            .then_output(|| DescribeDbSnapshotsOutput::builder().build());
        let rds = Rds::new(
            mock_client!(
                aws_sdk_rds,
                RuleMode::MatchAny,
                [&delete, &describe],
                no_sdk_retries
            ),
            "us-east-1",
        );
        rds.delete_snapshot(
            DatabaseKind::Instance,
            "lifeboat-booking-db-2026-10-01-0200",
        )
        .await
        .unwrap();
        assert_eq!(describe.num_calls(), 1);
    }

    /// A region whose listing fails part way adds nothing to a listing of several regions.
    #[tokio::test]
    async fn a_failed_listing_leaves_the_listing_as_it_was() {
        let instances = mock!(Client::describe_db_snapshots).then_output(|| {
            DescribeDbSnapshotsOutput::builder()
                .db_snapshots(copy_with_old_tag())
                .build()
        });
        let clusters =
            mock!(Client::describe_db_cluster_snapshots).then_http_response(internal_failure);
        let rds = Rds::new(
            mock_client!(
                aws_sdk_rds,
                RuleMode::MatchAny,
                [&instances, &clusters],
                no_sdk_retries
            ),
            "us-west-2",
        );
        let mut listing = rds_listing(vec![copy_with_old_tag()])
            .list_snapshots()
            .await
            .unwrap();
        let before = listing.clone();
        let error = rds.list_snapshots_into(&mut listing).await.unwrap_err();
        assert!(
            error.to_string().contains("DescribeDBClusterSnapshots"),
            "{error}"
        );
        assert_eq!(listing, before, "the half-listed region is not in it");
        assert_eq!((instances.num_calls(), clusters.num_calls()), (1, 1));
    }
}
