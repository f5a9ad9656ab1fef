//! Monitoring (pure): recovery point and recovery time posture of every database, and the conditions an on-call
//! person must hear of.
//!
//! The monitor function reads the facts (databases with their point-in-time facts, snapshots in the primary and every
//! DR region, the newest drill evidence, manual-snapshot quotas, storage) into [`Inputs`], and [`assess`] turns
//! them into an [`Assessment`]: RPO per database, region and recovery source against the plan's objective,
//! point-in-time posture, RTO evidence, and the open [`Condition`]s, worst first. Which conditions to announce, and
//! when, is [`alerts::transition`]'s decision; the posture report is [`crate::posture::Report`]. Nothing here
//! names an SDK type or talks to AWS.

pub mod alerts;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::copy;
use crate::drill::OVERDUE_GRACE;
use crate::model::{Database, DatabaseKind, Snapshot};
use crate::ownership::Deployment;
use crate::policy::{Plan, Policy};

/// Grace after a scheduled snapshot's start window closes before a database without a recovery point since the
/// scheduled time is reported missing: the hour in which the snapshot function's last catch-up attempt lands.
pub const MISSING_DAILY_GRACE: Duration = Duration::from_secs(3600);

/// Storage use above this fraction of the allocated storage is a condition (the seed plans' "more than 80 % full").
pub const STORAGE_USAGE_LIMIT: f64 = 0.8;

/// How far back quota samples count when estimating the days until a quota is full.
pub const QUOTA_RATE_WINDOW: Duration = Duration::from_secs(7 * 86_400);

/// Everything [`assess`] needs, as plain data the monitor function reads from AWS.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The policy.
    pub policy: &'a Policy,
    /// This deployment: only its own snapshots and copies count as recovery points.
    pub deployment: &'a Deployment,
    /// The time of the assessment.
    pub now: DateTime<Utc>,
    /// Every database in the primary region (selected or not: the unselected ones are reported unprotected).
    pub databases: Vec<DatabaseFacts>,
    /// Snapshots of the primary region and of every DR region, each carrying its region.
    pub snapshots: Vec<Snapshot>,
    /// Regions whose snapshots could not be listed, with the reason: their RPO is unknown, never a breach.
    pub unreadable_regions: BTreeMap<String, String>,
    /// Since when each region has been unreadable (the first of its consecutive failed runs, kept between runs; a
    /// region missing here is unreadable since `now`). `region-unreadable` opens only for a region unreadable
    /// since before `now`, two consecutive runs: a blip that heals by itself on the next run pages nobody (its
    /// run error is logged and counted, and its RPO is unknown meanwhile).
    pub unreadable_since: BTreeMap<String, DateTime<Utc>>,
    /// Regions whose replicated automated backups could not be read: a DB instance's point-in-time source there is
    /// unknown, not absent.
    pub replicated_backups_unread: BTreeSet<String>,
    /// Regions whose manual-snapshot quotas could not be read.
    pub quotas_unread: BTreeSet<String>,
    /// Progress (0 to 100 per cent) of snapshots being created, by snapshot ARN (RDS's `PercentProgress`).
    pub snapshot_progress: BTreeMap<String, u32>,
    /// When the monitor first saw each snapshot still `creating` (kept between runs): RDS gives a snapshot no
    /// `SnapshotCreateTime` until it is done, so how long one has been creating is measured from there.
    pub creating_since: CreatingSince,
    /// The newest restore-drill evidence of each database and region (older evidence may be given too; the
    /// newest counts).
    pub drills: Vec<DrillEvidence>,
    /// Manual-snapshot quota use per region and kind (`DescribeAccountAttributes`).
    pub quotas: Vec<QuotaUsage>,
    /// The DR regions in which each plan (by name) asks for replicated automated backups (cross-region
    /// point-in-time recovery); a plan not named asks for none.
    pub replication_wanted: BTreeMap<String, BTreeSet<String>>,
}

/// A database and the facts about it beyond its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseFacts {
    /// The database as RDS describes it.
    pub database: Database,
    /// Its automated backups in its own region.
    pub point_in_time: PointInTimeFacts,
    /// Its automated backups replicated to other regions (`DescribeDBInstanceAutomatedBackups` there).
    pub replicated_backups: Vec<ReplicatedBackup>,
    /// Its storage, where known (DB instances; Aurora storage grows by itself).
    pub storage: Option<Storage>,
    /// Whether its storage should be known but could not be read this run (CloudWatch failed or gave no
    /// `FreeStorageSpace` datapoint).
    pub storage_unread: bool,
}

/// Automated backups of a database in its own region.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PointInTimeFacts {
    /// Automated-backup retention in days (`BackupRetentionPeriod`); 0 means automated backups are off.
    pub retention_days: u32,
    /// The earliest time it can be restored to, when known.
    pub earliest_restorable: Option<DateTime<Utc>>,
    /// The latest time it can be restored to (`LatestRestorableTime`).
    pub latest_restorable: Option<DateTime<Utc>>,
}

/// Automated backups of a database replicated to another region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicatedBackup {
    /// The region the backups are replicated to.
    pub region: String,
    /// Retention of the replicated backups in days.
    pub retention_days: u32,
    /// The start of the restore window (`RestoreWindow.EarliestTime`).
    pub earliest: Option<DateTime<Utc>>,
    /// The end of the restore window (`RestoreWindow.LatestTime`).
    pub latest: Option<DateTime<Utc>>,
}

/// Storage of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Storage {
    /// Allocated storage in bytes.
    pub allocated_bytes: u64,
    /// Free storage in bytes (CloudWatch `FreeStorageSpace`).
    pub free_bytes: u64,
}

impl Storage {
    /// The fraction of the allocated storage in use (0 to 1).
    pub fn used_fraction(&self) -> f64 {
        if self.allocated_bytes == 0 {
            return 0.0;
        }
        let used = self.allocated_bytes.saturating_sub(self.free_bytes);
        used as f64 / self.allocated_bytes as f64
    }
}

/// The evidence a restore drill left (the verify function's ledger result record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillEvidence {
    /// The database whose recovery point was restored.
    pub database: String,
    /// The region the drill ran in.
    pub region: String,
    /// The snapshot restored.
    pub snapshot: String,
    /// When the drill finished.
    pub at: DateTime<Utc>,
    /// Whether every check passed.
    pub passed: bool,
    /// Seconds from the restore request to an available database (the measured restore time).
    pub restore_seconds: u64,
    /// Seconds from the restore request to the checks' result (the whole drill).
    pub drill_seconds: u64,
    /// The checks and their results.
    pub checks: Vec<CheckEvidence>,
}

/// One check of a drill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckEvidence {
    /// Name of the check.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
}

/// Manual-snapshot quota use of one region and kind, with earlier samples of `used` for the rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaUsage {
    /// The region.
    pub region: String,
    /// DB snapshots (`ManualSnapshots`) or DB cluster snapshots (`ManualClusterSnapshots`).
    pub kind: DatabaseKind,
    /// Manual snapshots in use.
    pub used: u64,
    /// The quota.
    pub max: u64,
    /// Earlier samples (see [`QuotaHistory`]).
    pub history: Vec<QuotaSample>,
}

/// One sample of a quota's use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaSample {
    /// When it was read.
    pub at: DateTime<Utc>,
    /// Manual snapshots in use then.
    pub used: u64,
}

/// Quota samples kept between monitor runs (serialised with the alert state), [`QUOTA_RATE_WINDOW`] deep.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QuotaHistory {
    /// Samples by `region/kind`, oldest first.
    pub samples: BTreeMap<String, Vec<QuotaSample>>,
}

impl QuotaHistory {
    fn key(region: &str, kind: DatabaseKind) -> String {
        format!("{region}/{kind}")
    }

    /// The samples of `region` and `kind`, oldest first.
    pub fn of(&self, region: &str, kind: DatabaseKind) -> Vec<QuotaSample> {
        self.samples
            .get(&Self::key(region, kind))
            .cloned()
            .unwrap_or_default()
    }

    /// Add a sample and forget those older than [`QUOTA_RATE_WINDOW`] before `sample.at`.
    pub fn record(&mut self, region: &str, kind: DatabaseKind, sample: QuotaSample) {
        let window = TimeDelta::from_std(QUOTA_RATE_WINDOW).unwrap_or_default();
        let samples = self.samples.entry(Self::key(region, kind)).or_default();
        samples.push(sample);
        samples.retain(|s| s.at >= sample.at - window && s.at <= sample.at);
        samples.sort_by_key(|s| s.at);
    }
}

/// When the monitor first saw a snapshot `creating`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstSeenCreating {
    /// The snapshot's region.
    pub region: String,
    /// The first run that saw it `creating`.
    pub at: DateTime<Utc>,
}

/// Snapshots seen `creating`, kept between monitor runs (serialised with the alert state). RDS reports no
/// `SnapshotCreateTime` for a snapshot it has not finished (the adapter dates it [`DateTime::<Utc>::MAX_UTC`]), so
/// without this a snapshot stuck in `creating` would look 0 seconds old on every run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CreatingSince {
    /// First seen `creating`, by [`CreatingSince::key`].
    pub snapshots: BTreeMap<String, FirstSeenCreating>,
}

impl CreatingSince {
    /// The key of a snapshot: its ARN (which names region, kind and identifier), else `region kind identifier`.
    pub fn key(snapshot: &Snapshot) -> String {
        if snapshot.arn.is_empty() {
            format!(
                "{} {} {}",
                snapshot.region, snapshot.kind, snapshot.identifier
            )
        } else {
            snapshot.arn.clone()
        }
    }

    /// When `snapshot` was first seen `creating`, if it was.
    pub fn of(&self, snapshot: &Snapshot) -> Option<DateTime<Utc>> {
        self.snapshots.get(&Self::key(snapshot)).map(|s| s.at)
    }

    /// Note the snapshots `creating` now (first seen `now` unless seen before) and forget the ones no longer
    /// `creating` (done, failed or gone). Entries of the regions in `unread` (whose snapshots this run could not
    /// list) are kept as they are.
    pub fn observe(
        &mut self,
        snapshots: &[Snapshot],
        unread: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) {
        let creating: BTreeMap<String, &Snapshot> = snapshots
            .iter()
            .filter(|s| s.status == "creating")
            .map(|s| (Self::key(s), s))
            .collect();
        self.snapshots
            .retain(|key, seen| creating.contains_key(key) || unread.contains_key(&seen.region));
        for (key, snapshot) in creating {
            self.snapshots
                .entry(key)
                .or_insert_with(|| FirstSeenCreating {
                    region: snapshot.region.to_string(),
                    at: now,
                });
        }
    }

    /// Since when `snapshot` (`creating`) has been creating, as far as is known: RDS's own time when it gives one,
    /// else the first run that saw it `creating`, else `now` (this is the first). The second return is whether the
    /// time is RDS's.
    pub fn started(&self, snapshot: &Snapshot, now: DateTime<Utc>) -> (DateTime<Utc>, bool) {
        if snapshot.created_at < DateTime::<Utc>::MAX_UTC {
            (snapshot.created_at, true)
        } else {
            (self.of(snapshot).unwrap_or(now).min(now), false)
        }
    }
}

/// Where a recovery point comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The newest available snapshot this deployment made, in the primary region.
    Snapshot,
    /// The newest available copy this deployment made, in a DR region.
    Copy,
    /// Point-in-time recovery from automated backups (`LatestRestorableTime`).
    PointInTime,
    /// Point-in-time recovery from automated backups replicated to a DR region (`RestoreWindow.LatestTime`).
    ReplicatedBackups,
}

impl Source {
    /// The name used in metrics and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Snapshot => "snapshot",
            Source::Copy => "copy",
            Source::PointInTime => "point-in-time",
            Source::ReplicatedBackups => "replicated-backups",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The RPO one recovery source gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRpo {
    /// The source.
    pub source: Source,
    /// The newest time it restores to.
    pub recovery_point: DateTime<Utc>,
    /// The snapshot or copy, for snapshot sources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Seconds of data that would be lost restoring from it now.
    pub rpo_seconds: u64,
    /// `rpo_seconds` as a fraction of the objective (above 1: breached).
    pub fraction: f64,
}

/// Whether a region meets the RPO objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RpoStatus {
    /// Some recovery point there is newer than the objective.
    Met,
    /// The region could not be read: unknown.
    Unknown,
    /// No recovery point there is newer than the objective.
    Breached,
}

/// RPO of a database in one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionRpo {
    /// The region.
    pub region: String,
    /// Whether it is the database's own (primary) region.
    pub primary: bool,
    /// Every source with a recovery point there, best first.
    pub sources: Vec<SourceRpo>,
    /// Whether the best source meets the objective.
    pub status: RpoStatus,
    /// When [`RpoStatus::Unknown`]: which read failed (its snapshots could not be listed, or its replicated
    /// automated backups could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_because: Option<String>,
}

impl RegionRpo {
    /// The best source (the newest recovery point): the region's RPO.
    pub fn best(&self) -> Option<&SourceRpo> {
        self.sources.first()
    }
}

/// A recovery point in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryPoint {
    /// Snapshot identifier.
    pub identifier: String,
    /// When it was taken; for a snapshot RDS has not finished (no create time yet), since when it is creating as
    /// far as the monitor knows (the first run that saw it so).
    pub at: DateTime<Utc>,
    /// Its status.
    pub status: String,
    /// Whether it is encrypted.
    pub encrypted: bool,
}

impl RecoveryPoint {
    fn of(snapshot: &Snapshot) -> Self {
        Self {
            identifier: snapshot.identifier.clone(),
            at: snapshot.created_at,
            status: snapshot.status.to_string(),
            encrypted: snapshot.encrypted,
        }
    }
}

/// The copies of a database in one DR region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionCopies {
    /// The DR region.
    pub region: String,
    /// Available copies there.
    pub available: usize,
    /// The newest available copy.
    pub newest: Option<RecoveryPoint>,
}

/// Point-in-time recovery of a database against its plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointInTimePosture {
    /// Its automated backups in its own region.
    pub facts: PointInTimeFacts,
    /// The retention the plan asks for (`point_in_time.min_retention_days`), if any.
    pub min_retention_days: Option<u32>,
    /// Replicated automated backups per DR region, wanted or present.
    pub replication: Vec<ReplicationPosture>,
}

/// Replicated automated backups of a database in one DR region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationPosture {
    /// The DR region.
    pub region: String,
    /// Whether the plan asks for them there.
    pub wanted: bool,
    /// The replicated backups, when present.
    pub present: Option<ReplicatedBackup>,
}

/// RTO evidence of a database: its newest drill against the objective.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RtoEvidence {
    /// The newest drill.
    pub drill: DrillEvidence,
    /// Seconds since the drill.
    pub age_seconds: u64,
    /// Whether its restore time is within the RTO.
    pub restore_within_rto: bool,
    /// Whether the whole drill (restore and checks) is within the RTO.
    pub drill_within_rto: bool,
}

/// Everything assessed about one database a plan selects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseAssessment {
    /// Its identifier.
    pub identifier: String,
    /// Instance or cluster.
    pub kind: DatabaseKind,
    /// Its engine.
    pub engine: String,
    /// Whether its storage is encrypted.
    pub encrypted: bool,
    /// The plan that selects it.
    pub plan: String,
    /// The plan's RPO in seconds.
    pub rpo_objective_seconds: u64,
    /// The plan's RTO in seconds.
    pub rto_objective_seconds: u64,
    /// RPO per region: the primary first, then the DR regions by name.
    pub regions: Vec<RegionRpo>,
    /// Its newest snapshot in the primary region, whatever its status.
    pub last_snapshot: Option<RecoveryPoint>,
    /// Its copies per DR region of its plan.
    pub copies: Vec<RegionCopies>,
    /// Point-in-time recovery.
    pub point_in_time: PointInTimePosture,
    /// The newest drill in the primary region, against the RTO.
    pub rto: Option<RtoEvidence>,
    /// Storage use, where known.
    pub storage: Option<Storage>,
}

impl DatabaseAssessment {
    /// The worst RPO fraction over its regions (`None` when no region has a recovery point).
    pub fn worst_rpo_fraction(&self) -> Option<f64> {
        self.regions
            .iter()
            .filter_map(|r| r.best().map(|b| b.fraction))
            .reduce(f64::max)
    }

    /// Whether some region breaches the RPO objective.
    pub fn rpo_breached(&self) -> bool {
        self.regions.iter().any(|r| r.status == RpoStatus::Breached)
    }
}

/// A database no plan selects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnprotectedDatabase {
    /// Its identifier.
    pub identifier: String,
    /// Instance or cluster.
    pub kind: DatabaseKind,
    /// Its engine.
    pub engine: String,
    /// Whether its storage is encrypted.
    pub encrypted: bool,
}

/// Quota use of one region and kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaAssessment {
    /// The region.
    pub region: String,
    /// Kind of snapshot the quota counts.
    pub kind: DatabaseKind,
    /// In use.
    pub used: u64,
    /// The quota.
    pub max: u64,
    /// `used / max`.
    pub fraction: f64,
    /// Days until full at the rate of the recent samples; `None` when use is not growing.
    pub days_until_full: Option<f64>,
}

/// How bad a condition is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Recovery is at risk now: act today.
    Critical,
    /// Will become a problem, or weakens the evidence: act this week.
    Warning,
}

impl Severity {
    /// The name used in messages and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
        }
    }
}

/// What kind of condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConditionKind {
    /// No recovery point in a region newer than the RPO objective.
    RpoBreach,
    /// A snapshot RDS failed to make.
    SnapshotFailed,
    /// A cross-region copy that failed.
    CopyFailed,
    /// No snapshot since the last scheduled time, after its start window and a grace.
    MissingDaily,
    /// The newest restore drill failed.
    DrillFailed,
    /// A snapshot still `creating` after `alerts.max_backup_duration`.
    BackupTooLong,
    /// Manual-snapshot quota use above `alerts.snapshot_quota_usage`.
    QuotaHigh,
    /// Database storage above [`STORAGE_USAGE_LIMIT`].
    StorageHigh,
    /// Automated-backup retention below `point_in_time.min_retention_days` (or off).
    PointInTimeRetention,
    /// Replicated automated backups the plan asks for are missing in a DR region.
    ReplicationMissing,
    /// The newest drill's restore took longer than the RTO.
    RtoExceeded,
    /// No drill evidence within the verification cadence (and a grace).
    DrillStale,
    /// A database no plan selects.
    Unprotected,
    /// A database whose storage is not encrypted.
    UnencryptedDatabase,
    /// Recovery points that are not encrypted.
    UnencryptedRecoveryPoints,
    /// A region whose snapshots could not be read.
    RegionUnreadable,
}

impl ConditionKind {
    /// The name used in keys, metrics and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionKind::RpoBreach => "rpo-breach",
            ConditionKind::SnapshotFailed => "snapshot-failed",
            ConditionKind::CopyFailed => "copy-failed",
            ConditionKind::MissingDaily => "missing-daily",
            ConditionKind::DrillFailed => "drill-failed",
            ConditionKind::BackupTooLong => "backup-too-long",
            ConditionKind::QuotaHigh => "quota-high",
            ConditionKind::StorageHigh => "storage-high",
            ConditionKind::PointInTimeRetention => "point-in-time-retention",
            ConditionKind::ReplicationMissing => "replication-missing",
            ConditionKind::RtoExceeded => "rto-exceeded",
            ConditionKind::DrillStale => "drill-stale",
            ConditionKind::Unprotected => "unprotected",
            ConditionKind::UnencryptedDatabase => "unencrypted-database",
            ConditionKind::UnencryptedRecoveryPoints => "unencrypted-recovery-points",
            ConditionKind::RegionUnreadable => "region-unreadable",
        }
    }
}

impl fmt::Display for ConditionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What identifies a condition from run to run: its kind, the resource and the region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ConditionKey {
    /// The kind.
    pub kind: ConditionKind,
    /// The resource (a database or snapshot identifier, or a quota kind).
    pub resource: String,
    /// The region.
    pub region: String,
}

impl fmt::Display for ConditionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.kind, self.region, self.resource)
    }
}

/// Something wrong that an on-call person must hear of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// Its stable identity.
    pub key: ConditionKey,
    /// How bad it is.
    pub severity: Severity,
    /// The database it concerns, if one.
    pub database: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What the on-call person should do next.
    pub next_step: String,
}

impl Condition {
    fn new(
        kind: ConditionKind,
        severity: Severity,
        resource: &str,
        region: &str,
        database: Option<&str>,
        message: String,
        next_step: impl Into<String>,
    ) -> Self {
        Self {
            key: ConditionKey {
                kind,
                resource: resource.to_string(),
                region: region.to_string(),
            },
            severity,
            database: database.map(str::to_string),
            message,
            next_step: next_step.into(),
        }
    }
}

/// Conditions a run could not decide because a read failed (a region's snapshots or replicated automated backups,
/// quotas, storage): whether they hold is unknown, so an open one is kept as it was, neither announced again nor
/// cleared (see [`alerts::transition`]), instead of flapping "cleared" and "opened" with the reads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Undecided {
    /// The kind of condition.
    pub kind: ConditionKind,
    /// The region.
    pub region: String,
    /// The resource; `None`: every resource of the kind in the region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

impl Undecided {
    fn new(kind: ConditionKind, region: &str, resource: Option<&str>) -> Self {
        Self {
            kind,
            region: region.to_string(),
            resource: resource.map(str::to_string),
        }
    }

    /// Whether the condition `key` is one this run could not decide.
    pub fn covers(&self, key: &ConditionKey) -> bool {
        key.kind == self.kind
            && key.region == self.region
            && self.resource.as_ref().is_none_or(|r| *r == key.resource)
    }
}

/// The monitor's view of the deployment at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// When.
    pub at: DateTime<Utc>,
    /// The deployment's name.
    pub deployment: String,
    /// Its primary region.
    pub home_region: String,
    /// The policy's name.
    pub policy: String,
    /// Every database a plan selects, by identifier.
    pub databases: Vec<DatabaseAssessment>,
    /// Databases no plan selects.
    pub unprotected: Vec<UnprotectedDatabase>,
    /// Quota use per region and kind.
    pub quotas: Vec<QuotaAssessment>,
    /// Every open condition, worst first (severity, then kind, then key).
    pub conditions: Vec<Condition>,
    /// The conditions this run could not decide (a read failed), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undecided: Vec<Undecided>,
    /// Conditions open before this run that it could not re-check (a read failed), held open as last decided
    /// (see [`alerts::AlertState::held_open`]): set by the monitor function after the alert transition, counted
    /// in the report's status and totals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_open: Vec<HeldOpen>,
}

/// An open condition this run could not re-check: still open as last decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldOpen {
    /// The condition as last decided.
    pub condition: Condition,
    /// Since when it is open.
    pub open_since: DateTime<Utc>,
    /// The last run that decided it (it has not been re-checked since: a read failed).
    pub checked_at: DateTime<Utc>,
}

impl HeldOpen {
    /// The condition with its message saying it was not re-checked.
    pub fn annotated(&self) -> Condition {
        let mut c = self.condition.clone();
        c.message = format!(
            "{} (not re-checked since {}: read failed)",
            c.message,
            rfc3339(self.checked_at)
        );
        c
    }
}

impl Assessment {
    /// The open conditions of `database`, worst first.
    pub fn conditions_of<'a>(&'a self, database: &'a str) -> impl Iterator<Item = &'a Condition> {
        self.conditions
            .iter()
            .filter(move |c| c.database.as_deref() == Some(database))
    }
}

/// Seconds from `then` to `now`, 0 when `then` is later.
fn seconds_since(now: DateTime<Utc>, then: DateTime<Utc>) -> u64 {
    u64::try_from((now - then).num_seconds()).unwrap_or(0)
}

/// A duration for messages: `3d 4h`, `2h 5m`, `45m`, `30s`.
pub fn human(seconds: u64) -> String {
    let (d, h, m) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Assess the deployment: RPO and RTO posture of every database a plan selects, quotas, coverage, and every open
/// condition, worst first.
pub fn assess(inputs: &Inputs<'_>) -> Assessment {
    let now = inputs.now;
    let mut conditions = Vec::new();
    let mut undecided = BTreeSet::new();
    let mut databases = Vec::new();
    let mut unprotected = Vec::new();

    for (region, why) in &inputs.unreadable_regions {
        // What the region's snapshots decide: failed, slow and unencrypted recovery points there.
        for kind in [
            ConditionKind::SnapshotFailed,
            ConditionKind::CopyFailed,
            ConditionKind::BackupTooLong,
            ConditionKind::UnencryptedRecoveryPoints,
        ] {
            undecided.insert(Undecided::new(kind, region, None));
        }
        let Some(since) = inputs
            .unreadable_since
            .get(region)
            .filter(|since| **since < now)
        else {
            // The first failed run: no condition yet (the next run opens it if the region is still unreadable).
            continue;
        };
        conditions.push(Condition::new(
            ConditionKind::RegionUnreadable,
            Severity::Warning,
            "snapshots",
            region,
            None,
            format!(
                "the snapshots in {region} could not be listed since {}: {why}; its RPO is unknown",
                rfc3339(*since)
            ),
            "check the monitor function's permissions and the region's RDS health; the next run retries",
        ));
    }

    // Each database's own snapshots, found once: scanning every snapshot for every database grew with
    // databases x snapshots.
    let own = inputs
        .deployment
        .own_snapshots_by_database(&inputs.snapshots);
    for facts in &inputs.databases {
        let db = &facts.database;
        if db.cluster.is_some() || crate::restore::is_restored(db) {
            // Cluster members are protected through their cluster; drill databases are temporary.
            continue;
        }
        if !db.encrypted {
            conditions.push(Condition::new(
                ConditionKind::UnencryptedDatabase,
                Severity::Warning,
                &db.identifier,
                &db.region,
                Some(&db.identifier),
                format!(
                    "{} {} is not encrypted at rest, nor are its snapshots and copies",
                    db.kind, db.identifier
                ),
                "plan a migration to an encrypted database (snapshot, copy with a KMS key, restore); RDS cannot encrypt a database in place",
            ));
        }
        match inputs.policy.plan_for(db) {
            None => {
                unprotected.push(UnprotectedDatabase {
                    identifier: db.identifier.clone(),
                    kind: db.kind,
                    engine: db.engine.clone(),
                    encrypted: db.encrypted,
                });
                conditions.push(Condition::new(
                    ConditionKind::Unprotected,
                    Severity::Warning,
                    &db.identifier,
                    &db.region,
                    Some(&db.identifier),
                    format!("{} {} is selected by no plan: Lifeboat takes no snapshots of it", db.kind, db.identifier),
                    "tag it for a plan (lifeboat:backup=true in the default policy) or exclude it in the policy if it needs no backups",
                ));
            }
            Some(plan) => {
                let own = own
                    .get(&(db.identifier.as_str(), db.kind))
                    .map_or(&[][..], Vec::as_slice);
                databases.push(assess_database(
                    inputs,
                    facts,
                    own,
                    plan,
                    &mut conditions,
                    &mut undecided,
                ));
            }
        }
    }
    databases.sort_by(|a, b| a.identifier.cmp(&b.identifier).then(a.kind.cmp(&b.kind)));

    let threshold = inputs
        .policy
        .plans
        .iter()
        .map(|p| p.alerts.snapshot_quota_usage)
        .reduce(f64::min)
        .unwrap_or(0.8);
    for region in &inputs.quotas_unread {
        undecided.insert(Undecided::new(ConditionKind::QuotaHigh, region, None));
    }
    let mut quotas = Vec::new();
    for usage in &inputs.quotas {
        let quota = assess_quota(usage, now);
        if quota.fraction > threshold {
            let until_full = quota.days_until_full.map_or_else(
                || "not growing over the last days".to_string(),
                |d| format!("full in about {d:.0} days at the current rate"),
            );
            conditions.push(Condition::new(
                ConditionKind::QuotaHigh,
                if quota.fraction >= 0.95 { Severity::Critical } else { Severity::Warning },
                &format!("manual-{}-snapshots", usage.kind),
                &usage.region,
                None,
                format!(
                    "manual {} snapshot quota in {} is {:.0} % used ({} of {}; alert above {:.0} %), {until_full}",
                    usage.kind,
                    usage.region,
                    quota.fraction * 100.0,
                    quota.used,
                    quota.max,
                    threshold * 100.0
                ),
                "request a higher RDS quota (Service Quotas: manual DB snapshots / manual DB cluster snapshots) before it is full: snapshots and copies fail once it is",
            ));
        }
        quotas.push(quota);
    }
    quotas.sort_by(|a, b| (&a.region, a.kind).cmp(&(&b.region, b.kind)));

    sort_conditions(&mut conditions);
    Assessment {
        at: now,
        deployment: inputs.deployment.name.clone(),
        home_region: inputs.deployment.home_region.clone(),
        policy: inputs.policy.name.clone(),
        databases,
        unprotected,
        quotas,
        conditions,
        undecided: undecided.into_iter().collect(),
        held_open: Vec::new(),
    }
}

/// Worst first: severity, then kind, then key.
fn sort_conditions(conditions: &mut [Condition]) {
    conditions.sort_by(|a, b| (a.severity, &a.key).cmp(&(b.severity, &b.key)));
}

fn assess_quota(usage: &QuotaUsage, now: DateTime<Utc>) -> QuotaAssessment {
    let fraction = if usage.max == 0 {
        1.0
    } else {
        usage.used as f64 / usage.max as f64
    };
    let window = TimeDelta::from_std(QUOTA_RATE_WINDOW).unwrap_or_default();
    let oldest = usage
        .history
        .iter()
        .filter(|s| s.at >= now - window && s.at < now)
        .min_by_key(|s| s.at);
    let days_until_full = oldest.and_then(|s| {
        let days = (now - s.at).num_seconds() as f64 / 86_400.0;
        let rate = (usage.used as f64 - s.used as f64) / days;
        (rate > 0.0).then(|| usage.max.saturating_sub(usage.used) as f64 / rate)
    });
    QuotaAssessment {
        region: usage.region.clone(),
        kind: usage.kind,
        used: usage.used,
        max: usage.max,
        fraction,
        days_until_full,
    }
}

/// The assessment of one database, from `own`: the snapshots this deployment made of it, in every region.
fn assess_database(
    inputs: &Inputs<'_>,
    facts: &DatabaseFacts,
    own: &[&Snapshot],
    plan: &Plan,
    conditions: &mut Vec<Condition>,
    undecided: &mut BTreeSet<Undecided>,
) -> DatabaseAssessment {
    let now = inputs.now;
    let db = &facts.database;
    let id = db.identifier.as_str();
    let objective = plan.objectives.rpo.as_secs().max(1);
    let rto = plan.objectives.rto.as_secs();
    let primary: Vec<&Snapshot> = own
        .iter()
        .copied()
        .filter(|s| s.region == db.region && !copy::is_a_copy(s))
        .collect();
    let rpo_of = |source, point: DateTime<Utc>, resource: Option<&str>| {
        let rpo_seconds = seconds_since(now, point);
        SourceRpo {
            source,
            recovery_point: point,
            resource: resource.map(str::to_string),
            rpo_seconds,
            fraction: rpo_seconds as f64 / objective as f64,
        }
    };

    // The regions: the primary, the plan's copy regions, and any region with (or wanting) replicated backups.
    let wanted = inputs
        .replication_wanted
        .get(&plan.name)
        .cloned()
        .unwrap_or_default();
    let mut dr_regions: BTreeSet<String> = plan.copies.iter().map(|c| c.region.clone()).collect();
    dr_regions.extend(wanted.iter().cloned());
    dr_regions.extend(facts.replicated_backups.iter().map(|r| r.region.clone()));
    dr_regions.remove(&db.region);

    // A region some of whose sources could not be read: its snapshots, or (DB instances only: RDS replicates the
    // automated backups of instances, not of clusters) its replicated automated backups.
    let replicated_unread = |region: &str| {
        db.kind == DatabaseKind::Instance && inputs.replicated_backups_unread.contains(region)
    };
    let incomplete = |region: &str| {
        if inputs.unreadable_regions.contains_key(region) {
            Some(format!("its snapshots in {region} could not be listed"))
        } else if replicated_unread(region) {
            Some(format!(
                "its replicated automated backups in {region} could not be read"
            ))
        } else {
            None
        }
    };

    let mut regions = Vec::new();
    let mut copies = Vec::new();
    // The primary region.
    {
        let mut sources = Vec::new();
        if let Some(newest) = newest_available(&primary) {
            sources.push(rpo_of(
                Source::Snapshot,
                newest.created_at,
                Some(&newest.identifier),
            ));
        }
        if facts.point_in_time.retention_days > 0
            && let Some(latest) = facts.point_in_time.latest_restorable
        {
            sources.push(rpo_of(Source::PointInTime, latest, None));
        }
        regions.push(region_rpo(
            &db.region,
            true,
            sources,
            objective,
            inputs
                .unreadable_regions
                .contains_key(&db.region)
                .then(|| format!("its snapshots in {} could not be listed", db.region)),
        ));
    }
    for region in &dr_regions {
        let in_region: Vec<&Snapshot> = own
            .iter()
            .copied()
            .filter(|s| s.region == region && copy::is_a_copy(s))
            .collect();
        let mut sources = Vec::new();
        let newest = newest_available(&in_region);
        if let Some(newest) = newest {
            sources.push(rpo_of(
                Source::Copy,
                newest.created_at,
                Some(&newest.identifier),
            ));
        }
        if let Some(latest) = facts
            .replicated_backups
            .iter()
            .filter(|r| &r.region == region)
            .filter_map(|r| r.latest)
            .max()
        {
            sources.push(rpo_of(Source::ReplicatedBackups, latest, None));
        }
        if plan.copies.iter().any(|c| &c.region == region) {
            copies.push(RegionCopies {
                region: region.clone(),
                available: in_region.iter().filter(|s| s.is_available()).count(),
                newest: newest.map(RecoveryPoint::of),
            });
        }
        regions.push(region_rpo(
            region,
            false,
            sources,
            objective,
            incomplete(region),
        ));
    }
    for region in &regions {
        if region.status == RpoStatus::Unknown {
            undecided.insert(Undecided::new(
                ConditionKind::RpoBreach,
                &region.region,
                Some(id),
            ));
        }
    }
    // A region known only from its replicated backups, which this run could not read: its RPO is unknown too.
    for region in &inputs.replicated_backups_unread {
        if replicated_unread(region)
            && *region != db.region
            && !regions.iter().any(|r| &r.region == region)
        {
            undecided.insert(Undecided::new(ConditionKind::RpoBreach, region, Some(id)));
        }
    }
    for region in &regions {
        if region.status != RpoStatus::Breached {
            continue;
        }
        let (what, next) = match region.best() {
            Some(best) => (
                format!(
                    "its newest recovery point in {} is {} old ({}, {} at {}), beyond the RPO of {} ({:.1}x)",
                    region.region,
                    human(best.rpo_seconds),
                    best.source,
                    best.resource.as_deref().unwrap_or("restore window"),
                    rfc3339(best.recovery_point),
                    human(objective),
                    best.fraction
                ),
                if region.primary {
                    "check the snapshot function's last runs and the database's automated backups; take a manual snapshot if the database is at risk"
                } else {
                    "check the copy function's last runs and the copy backlog; for an RPO shorter than a day in a DR region, replicate automated backups there"
                },
            ),
            None => (
                format!("it has no recovery point at all in {}", region.region),
                if region.primary {
                    "take a manual snapshot now and check why the snapshot function made none (plan selection, permissions, the database's status)"
                } else {
                    "check the copy function: it copies every available snapshot of the plan to this region"
                },
            ),
        };
        conditions.push(Condition::new(
            ConditionKind::RpoBreach,
            Severity::Critical,
            id,
            &region.region,
            Some(id),
            format!(
                "RPO breached for {} {id} in {}: {what}",
                db.kind, region.region
            ),
            next,
        ));
    }

    // Failed, slow and unencrypted recovery points.
    let max_backup = plan.alerts.max_backup_duration.as_secs();
    let mut unencrypted: BTreeMap<&str, usize> = BTreeMap::new();
    for snapshot in own {
        let is_copy = copy::is_a_copy(snapshot);
        if copy::is_failed_status(&snapshot.status) {
            let (kind, what, next) = if is_copy {
                (
                    ConditionKind::CopyFailed,
                    "copy",
                    "the copy function retries under a new name; if copies keep failing, check the DR key's policy and the option group in that region",
                )
            } else {
                (
                    ConditionKind::SnapshotFailed,
                    "snapshot",
                    "the snapshot function replaces it within the start window; if it failed again, check the database's status and the RDS events",
                )
            };
            conditions.push(Condition::new(
                kind,
                Severity::Critical,
                &snapshot.identifier,
                &snapshot.region,
                Some(id),
                format!(
                    "{what} {} of {id} in {} failed (status {})",
                    snapshot.identifier, snapshot.region, snapshot.status
                ),
                next,
            ));
        }
        if !is_copy && snapshot.status == "creating" {
            let (started, timed_by_rds) = inputs.creating_since.started(snapshot, now);
            let running = seconds_since(now, started);
            if running > max_backup {
                let progress = inputs
                    .snapshot_progress
                    .get(&snapshot.arn)
                    .map_or_else(|| "progress unknown".to_string(), |p| format!("{p} % done"));
                conditions.push(Condition::new(
                    ConditionKind::BackupTooLong,
                    Severity::Warning,
                    &snapshot.identifier,
                    &snapshot.region,
                    Some(id),
                    format!(
                        "snapshot {} of {id} has been creating for {}{} ({progress}), longer than the {} the plan allows",
                        snapshot.identifier,
                        if timed_by_rds { "" } else { "at least " },
                        human(running),
                        human(max_backup)
                    ),
                    "watch its progress in the RDS console; a snapshot that does not progress may need an AWS support case. Until it is available the previous recovery point is the newest",
                ));
            }
        }
        if !snapshot.encrypted && snapshot.is_available() {
            *unencrypted.entry(snapshot.region.as_str()).or_default() += 1;
        }
    }
    for (region, count) in unencrypted {
        conditions.push(Condition::new(
            ConditionKind::UnencryptedRecoveryPoints,
            Severity::Warning,
            id,
            region,
            Some(id),
            format!("{count} recovery point(s) of {id} in {region} are not encrypted"),
            "encrypt the database (restore an encrypted copy); unencrypted recovery points age out under retention",
        ));
    }

    // Missing daily recovery point: none since the last scheduled time whose start window and grace are over.
    let calendar = &plan.schedule;
    let late = TimeDelta::from_std(calendar.start_window + MISSING_DAILY_GRACE).unwrap_or_default();
    let mut due = calendar.due_at(now);
    if now < due + late {
        due -= TimeDelta::days(1);
    }
    if !primary
        .iter()
        .any(|s| s.is_available() && s.created_at >= due)
    {
        conditions.push(Condition::new(
            ConditionKind::MissingDaily,
            Severity::Critical,
            id,
            &db.region,
            Some(id),
            format!(
                "no recovery point of {} {id} since its scheduled snapshot at {} (start window {} closed)",
                db.kind,
                rfc3339(due),
                human(calendar.start_window.as_secs())
            ),
            "read the snapshot function's summary for the reason (database busy, stopped, RDS refused); take a manual snapshot if the database is at risk",
        ));
    }

    // Point in time.
    let min_retention_days = plan.point_in_time.as_ref().map(|p| p.min_retention_days);
    let pitr = &facts.point_in_time;
    if let Some(min) = min_retention_days
        && pitr.retention_days < min
    {
        let (severity, what) = if pitr.retention_days == 0 {
            (Severity::Critical, "automated backups are off".to_string())
        } else {
            (
                Severity::Warning,
                format!("automated backups are kept {} day(s)", pitr.retention_days),
            )
        };
        conditions.push(Condition::new(
            ConditionKind::PointInTimeRetention,
            severity,
            id,
            &db.region,
            Some(id),
            format!("{what} for {id}; the plan asks for at least {min} (point-in-time recovery)"),
            format!("set the backup retention period of {id} to {min} days or more (modify the database; applies at once)"),
        ));
    }
    let mut replication = Vec::new();
    for region in &dr_regions {
        let present = facts
            .replicated_backups
            .iter()
            .find(|r| &r.region == region)
            .cloned();
        let wanted_here = wanted.contains(region);
        if wanted_here && present.is_none() && replicated_unread(region) {
            undecided.insert(Undecided::new(
                ConditionKind::ReplicationMissing,
                region,
                Some(id),
            ));
        } else if wanted_here && present.is_none() {
            conditions.push(Condition::new(
                ConditionKind::ReplicationMissing,
                Severity::Warning,
                id,
                region,
                Some(id),
                format!("automated backups of {id} are not replicated to {region}, as the plan asks"),
                format!("start automated-backup replication of {id} to {region} (StartDBInstanceAutomatedBackupsReplication there, with the DR key)"),
            ));
        }
        if wanted_here || present.is_some() {
            replication.push(ReplicationPosture {
                region: region.clone(),
                wanted: wanted_here,
                present,
            });
        }
    }

    // RTO evidence and drills.
    let newest_drill = |region: &str| {
        inputs
            .drills
            .iter()
            .filter(|d| d.database == db.identifier && d.region == region)
            .max_by_key(|d| d.at)
    };
    let rto_evidence = newest_drill(&db.region).map(|d| RtoEvidence {
        drill: d.clone(),
        age_seconds: seconds_since(now, d.at),
        restore_within_rto: d.restore_seconds <= rto,
        drill_within_rto: d.drill_seconds <= rto,
    });
    if let Some(verification) = &plan.verification {
        let drill_regions =
            std::iter::once(None).chain(verification.regions.keys().map(|r| Some(r.as_str())));
        for region in drill_regions {
            let where_ = region.unwrap_or(&db.region);
            let every = verification.every_in(region).as_secs();
            let grace = OVERDUE_GRACE.as_secs();
            let drill = newest_drill(where_);
            if let Some(drill) = drill {
                if !drill.passed {
                    let failed: Vec<&str> = drill
                        .checks
                        .iter()
                        .filter(|c| !c.passed)
                        .map(|c| c.name.as_str())
                        .collect();
                    conditions.push(Condition::new(
                        ConditionKind::DrillFailed,
                        Severity::Critical,
                        id,
                        where_,
                        Some(id),
                        format!(
                            "the restore drill of {id} in {where_} from {} failed at {}{}",
                            drill.snapshot,
                            rfc3339(drill.at),
                            if failed.is_empty() { String::new() } else { format!(": {}", failed.join(", ")) }
                        ),
                        "the recovery point does not hold what the policy expects: read the drill's ledger record and investigate before relying on it",
                    ));
                } else if drill.restore_seconds > rto {
                    conditions.push(Condition::new(
                        ConditionKind::RtoExceeded,
                        Severity::Warning,
                        id,
                        where_,
                        Some(id),
                        format!(
                            "the last restore drill of {id} in {where_} took {} to restore, beyond the RTO of {}",
                            human(drill.restore_seconds),
                            human(rto)
                        ),
                        "the RTO cannot be met from snapshots: consider a standby (Multi-AZ, a replica to promote) or a larger drill instance class",
                    ));
                }
            }
            let protected_since = own
                .iter()
                .filter(|s| s.region == where_ && s.is_available())
                .map(|s| s.created_at)
                .min();
            let evidence_age = drill.map(|d| seconds_since(now, d.at));
            if evidence_age.is_none() && inputs.unreadable_regions.contains_key(where_) {
                // Never drilled there: stale once protected there long enough, which its snapshots would tell.
                undecided.insert(Undecided::new(ConditionKind::DrillStale, where_, Some(id)));
            }
            let stale = match evidence_age {
                Some(age) => age > every + grace,
                None => protected_since.is_some_and(|t| seconds_since(now, t) > every + grace),
            };
            if stale {
                conditions.push(Condition::new(
                    ConditionKind::DrillStale,
                    Severity::Warning,
                    id,
                    where_,
                    Some(id),
                    match evidence_age {
                        Some(age) => format!(
                            "the newest restore drill of {id} in {where_} is {} old; the plan drills every {}",
                            human(age),
                            human(every)
                        ),
                        None => format!("{id} has never been restore-drilled in {where_}; the plan drills every {}", human(every)),
                    },
                    "read the verify function's last summaries (drills refused or inconclusive?) or start one: {\"action\":\"verify\",\"database\":\"<name>\"}",
                ));
            }
        }
    }

    // Storage.
    if facts.storage_unread {
        undecided.insert(Undecided::new(
            ConditionKind::StorageHigh,
            &db.region,
            Some(id),
        ));
    }
    if let Some(storage) = facts.storage {
        let used = storage.used_fraction();
        if used > STORAGE_USAGE_LIMIT {
            conditions.push(Condition::new(
                ConditionKind::StorageHigh,
                if used >= 0.95 { Severity::Critical } else { Severity::Warning },
                id,
                &db.region,
                Some(id),
                format!(
                    "storage of {id} is {:.0} % full ({} GiB free of {} GiB)",
                    used * 100.0,
                    storage.free_bytes / (1 << 30),
                    storage.allocated_bytes / (1 << 30)
                ),
                "increase the allocated storage or enable storage autoscaling; a full database stops accepting writes",
            ));
        }
    }

    DatabaseAssessment {
        identifier: db.identifier.clone(),
        kind: db.kind,
        engine: db.engine.clone(),
        encrypted: db.encrypted,
        plan: plan.name.clone(),
        rpo_objective_seconds: objective,
        rto_objective_seconds: rto,
        regions,
        // A snapshot RDS has not timed yet (dated `MAX_UTC`) is the newest; it is dated from when it was first seen.
        last_snapshot: primary
            .iter()
            .max_by_key(|s| (s.created_at, &s.identifier))
            .map(|s| RecoveryPoint {
                at: inputs.creating_since.started(s, now).0,
                ..RecoveryPoint::of(s)
            }),
        copies,
        point_in_time: PointInTimePosture {
            facts: facts.point_in_time.clone(),
            min_retention_days,
            replication,
        },
        rto: rto_evidence,
        storage: facts.storage,
    }
}

fn newest_available<'s>(snapshots: &[&'s Snapshot]) -> Option<&'s Snapshot> {
    snapshots
        .iter()
        .filter(|s| s.is_available())
        .max_by_key(|s| (s.created_at, &s.identifier))
        .copied()
}

/// The RPO of a region from its `sources`: met when one is within the objective; else unknown when some source
/// could not be read (`incomplete`: which read failed; it might have been), else breached.
fn region_rpo(
    region: &str,
    primary: bool,
    mut sources: Vec<SourceRpo>,
    objective: u64,
    incomplete: Option<String>,
) -> RegionRpo {
    sources.sort_by_key(|a| (a.rpo_seconds, a.source));
    let met = sources
        .first()
        .is_some_and(|best| best.rpo_seconds <= objective);
    let status = if met {
        RpoStatus::Met
    } else if incomplete.is_some() {
        RpoStatus::Unknown
    } else {
        RpoStatus::Breached
    };
    RegionRpo {
        region: region.to_string(),
        primary,
        sources,
        unknown_because: incomplete.filter(|_| status == RpoStatus::Unknown),
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags;
    use proptest::prelude::*;

    pub(crate) const POLICY: &str = "version: 1\nname: t\nplans:\n  - name: prod\n    select: {tags: {backup: \"true\"}}\n    retention: {daily: 30d}\n    copies: [{region: us-west-2, kms_key_id: alias/dr, retain_days: 90}]\n    point_in_time: {min_retention_days: 7}\n    verification: {every: 7d, instance_class: db.t3.micro, subnet_group: drills, security_groups: [sg-1]}\n    objectives: {rpo: 1h, rto: 4h}\n";

    fn policy() -> Policy {
        Policy::from_yaml(POLICY).unwrap()
    }

    fn deployment() -> Deployment {
        Deployment::new("lifeboat", "us-east-1").unwrap()
    }

    fn at(t: &str) -> DateTime<Utc> {
        t.parse().unwrap()
    }

    fn db(id: &str, selected: bool) -> DatabaseFacts {
        let mut tags = BTreeMap::new();
        if selected {
            tags.insert("backup".to_string(), "true".to_string());
        }
        DatabaseFacts {
            database: Database {
                identifier: id.into(),
                kind: DatabaseKind::Instance,
                arn: format!("arn:aws:rds:us-east-1:123456789012:db:{id}"),
                region: "us-east-1".into(),
                engine: "postgres".into(),
                status: "available".into(),
                encrypted: true,
                cluster: None,
                endpoint: None,
                master_username: None,
                engine_version: None,
                replica_source: None,
                tags: tags.into(),
            },
            point_in_time: PointInTimeFacts {
                retention_days: 7,
                earliest_restorable: None,
                latest_restorable: None,
            },
            replicated_backups: vec![],
            storage: None,
            storage_unread: false,
        }
    }

    fn snap(
        id: &str,
        database: &str,
        region: &str,
        created: DateTime<Utc>,
        status: &str,
    ) -> Snapshot {
        let mut tags: BTreeMap<String, String> =
            [(tags::MANAGED.to_string(), tags::TRUE.to_string())]
                .into_iter()
                .chain(deployment().tags())
                .collect();
        let copied_from = (region != "us-east-1").then(|| {
            tags.insert(tags::SOURCE.into(), database.into());
            format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}")
        });
        Snapshot {
            identifier: id.into(),
            arn: format!("arn:aws:rds:{region}:123456789012:snapshot:{id}"),
            region: region.into(),
            kind: DatabaseKind::Instance,
            database: database.into(),
            created_at: created,
            status: status.into(),
            encrypted: true,
            copied_from,
            engine: None,
            tags: tags.into(),
        }
    }

    fn drill(
        database: &str,
        when: DateTime<Utc>,
        passed: bool,
        restore_seconds: u64,
    ) -> DrillEvidence {
        DrillEvidence {
            database: database.into(),
            region: "us-east-1".into(),
            snapshot: format!("lifeboat-{database}-x"),
            at: when,
            passed,
            restore_seconds,
            drill_seconds: restore_seconds + 120,
            checks: vec![CheckEvidence {
                name: "orders present".into(),
                passed,
            }],
        }
    }

    fn inputs<'a>(
        policy: &'a Policy,
        deployment: &'a Deployment,
        now: DateTime<Utc>,
    ) -> Inputs<'a> {
        Inputs {
            policy,
            deployment,
            now,
            databases: vec![],
            snapshots: vec![],
            unreadable_regions: BTreeMap::new(),
            unreadable_since: BTreeMap::new(),
            replicated_backups_unread: BTreeSet::new(),
            quotas_unread: BTreeSet::new(),
            snapshot_progress: BTreeMap::new(),
            creating_since: CreatingSince::default(),
            drills: vec![],
            quotas: vec![],
            replication_wanted: BTreeMap::new(),
        }
    }

    fn kinds(a: &Assessment, database: &str) -> Vec<(ConditionKind, String)> {
        a.conditions_of(database)
            .map(|c| (c.key.kind, c.key.region.clone()))
            .collect()
    }

    #[test]
    fn rpo_per_region_and_source_with_the_best_source_first() {
        let (policy, me) = (policy(), deployment());
        let now = at("2026-11-22T10:00:00Z");
        let mut i = inputs(&policy, &me, now);
        let mut booking = db("booking", true);
        booking.point_in_time.latest_restorable = Some(now - TimeDelta::minutes(5));
        i.databases = vec![booking];
        i.snapshots = vec![
            snap(
                "s-today",
                "booking",
                "us-east-1",
                at("2026-11-22T02:00:00Z"),
                "available",
            ),
            snap(
                "s-today-from-us-east-1",
                "booking",
                "us-west-2",
                at("2026-11-22T02:00:00Z"),
                "available",
            ),
        ];
        i.drills = vec![drill("booking", now - TimeDelta::days(2), true, 900)];
        let a = assess(&i);
        let d = &a.databases[0];
        assert_eq!(d.regions.len(), 2);
        let primary = &d.regions[0];
        assert!(primary.primary);
        assert_eq!(primary.best().unwrap().source, Source::PointInTime);
        assert_eq!(primary.best().unwrap().rpo_seconds, 300);
        assert_eq!(primary.sources[1].source, Source::Snapshot);
        assert_eq!(primary.status, RpoStatus::Met);
        let dr = &d.regions[1];
        assert_eq!(
            (dr.region.as_str(), dr.status),
            ("us-west-2", RpoStatus::Breached)
        );
        assert_eq!(dr.best().unwrap().source, Source::Copy);
        assert!((dr.best().unwrap().fraction - 8.0).abs() < 1e-9);
        assert_eq!(
            kinds(&a, "booking"),
            vec![(ConditionKind::RpoBreach, "us-west-2".into())]
        );
        let breach = &a.conditions[0];
        assert!(breach.message.contains("8h 0m old"), "{}", breach.message);
        assert!(
            breach.next_step.contains("replicate automated backups"),
            "{}",
            breach.next_step
        );
        assert_eq!(d.copies[0].available, 1);
        assert!(
            d.rto
                .as_ref()
                .is_some_and(|r| r.restore_within_rto && r.age_seconds == 2 * 86_400)
        );

        // Replicated automated backups in the DR region meet the objective there.
        i.databases[0].replicated_backups = vec![ReplicatedBackup {
            region: "us-west-2".into(),
            retention_days: 7,
            earliest: None,
            latest: Some(now - TimeDelta::minutes(10)),
        }];
        let a = assess(&i);
        assert_eq!(a.databases[0].regions[1].status, RpoStatus::Met);
        assert_eq!(
            a.databases[0].regions[1].best().unwrap().source,
            Source::ReplicatedBackups
        );
        assert!(a.conditions.is_empty(), "{:?}", a.conditions);
    }

    /// A plan with `point_in_time.replicate_to` asks for replicated automated backups in that DR region: a
    /// database without them is reported there, one with them is not.
    #[test]
    fn replication_the_policy_asks_for_is_reported_when_missing() {
        let policy = Policy::from_yaml(&POLICY.replace(
            "point_in_time: {min_retention_days: 7}",
            "point_in_time: {min_retention_days: 7, replicate_to: [us-west-2]}",
        ))
        .unwrap();
        let me = deployment();
        let now = at("2026-11-22T10:00:00Z");
        let mut i = inputs(&policy, &me, now);
        i.replication_wanted = policy.replication_wanted();
        i.databases = vec![db("booking", true)];
        let missing = |a: &Assessment| {
            kinds(a, "booking").contains(&(ConditionKind::ReplicationMissing, "us-west-2".into()))
        };
        assert!(missing(&assess(&i)));
        i.databases[0].replicated_backups = vec![ReplicatedBackup {
            region: "us-west-2".into(),
            retention_days: 7,
            earliest: None,
            latest: Some(now - TimeDelta::minutes(10)),
        }];
        assert!(!missing(&assess(&i)));
        // Without the setting, nothing is asked for.
        let plain = self::policy();
        let mut i = inputs(&plain, &me, now);
        i.replication_wanted = plain.replication_wanted();
        i.databases = vec![db("booking", true)];
        assert!(!missing(&assess(&i)));
    }

    #[test]
    fn a_missing_daily_is_reported_only_after_the_window_and_grace() {
        let (policy, me) = (policy(), deployment());
        let yesterday = snap(
            "s-y",
            "booking",
            "us-east-1",
            at("2026-11-21T02:00:00Z"),
            "available",
        );
        let mut i = inputs(&policy, &me, at("2026-11-22T10:59:00Z"));
        i.databases = vec![db("booking", true)];
        i.snapshots = vec![yesterday];
        assert!(
            !kinds(&assess(&i), "booking")
                .contains(&(ConditionKind::MissingDaily, "us-east-1".into()))
        );
        i.now = at("2026-11-22T11:00:00Z");
        let a = assess(&i);
        let missing = a
            .conditions
            .iter()
            .find(|c| c.key.kind == ConditionKind::MissingDaily)
            .unwrap();
        assert!(
            missing.message.contains("2026-11-22T02:00:00Z"),
            "{}",
            missing.message
        );
        // A manual snapshot since the scheduled time is a recovery point too.
        i.snapshots.push(snap(
            "manual",
            "booking",
            "us-east-1",
            at("2026-11-22T03:00:00Z"),
            "available",
        ));
        assert!(
            !kinds(&assess(&i), "booking")
                .iter()
                .any(|(k, _)| *k == ConditionKind::MissingDaily)
        );
    }

    #[test]
    fn seed_alerts_failed_slow_quota_storage_coverage_drills() {
        let (policy, me) = (policy(), deployment());
        let now = at("2026-11-22T03:00:00Z");
        let mut i = inputs(&policy, &me, now);
        let mut booking = db("booking", true);
        booking.point_in_time.retention_days = 0;
        booking.storage = Some(Storage {
            allocated_bytes: 100 << 30,
            free_bytes: 15 << 30,
        });
        let mut legacy = db("legacy", false);
        legacy.database.encrypted = false;
        i.databases = vec![booking, legacy];
        let stuck = snap(
            "s-stuck",
            "booking",
            "us-east-1",
            at("2026-11-22T02:00:00Z"),
            "creating",
        );
        i.snapshot_progress.insert(stuck.arn.clone(), 42);
        let mut plain = snap(
            "s-old",
            "booking",
            "us-east-1",
            at("2026-11-10T02:00:00Z"),
            "available",
        );
        plain.encrypted = false;
        i.snapshots = vec![
            stuck,
            plain,
            snap(
                "s-failed",
                "booking",
                "us-east-1",
                at("2026-11-21T02:00:00Z"),
                "failed",
            ),
            snap(
                "c-failed",
                "booking",
                "us-west-2",
                at("2026-11-21T02:00:00Z"),
                "failed",
            ),
        ];
        i.drills = vec![drill("booking", now - TimeDelta::days(1), false, 20_000)];
        i.quotas = vec![QuotaUsage {
            region: "us-east-1".into(),
            kind: DatabaseKind::Instance,
            used: 90,
            max: 100,
            history: vec![QuotaSample {
                at: now - TimeDelta::days(5),
                used: 80,
            }],
        }];
        let a = assess(&i);
        let by_kind = |kind| {
            a.conditions
                .iter()
                .find(|c| c.key.kind == kind)
                .unwrap_or_else(|| panic!("{kind}: {:?}", a.conditions))
        };
        let slow = by_kind(ConditionKind::BackupTooLong);
        assert!(
            slow.message.contains("42 % done") && slow.message.contains("1h 0m"),
            "{}",
            slow.message
        );
        assert_eq!(
            by_kind(ConditionKind::SnapshotFailed).key.resource,
            "s-failed"
        );
        assert_eq!(by_kind(ConditionKind::CopyFailed).key.region, "us-west-2");
        let quota = by_kind(ConditionKind::QuotaHigh);
        assert!(
            quota.message.contains("90 % used") && quota.message.contains("full in about 5 days"),
            "{}",
            quota.message
        );
        assert!((a.quotas[0].days_until_full.unwrap() - 5.0).abs() < 1e-9);
        assert!(
            by_kind(ConditionKind::StorageHigh)
                .message
                .contains("85 % full")
        );
        assert_eq!(
            by_kind(ConditionKind::PointInTimeRetention).severity,
            Severity::Critical
        );
        assert!(
            by_kind(ConditionKind::DrillFailed)
                .message
                .contains("orders present")
        );
        assert_eq!(by_kind(ConditionKind::Unprotected).key.resource, "legacy");
        assert_eq!(
            by_kind(ConditionKind::UnencryptedDatabase).key.resource,
            "legacy"
        );
        assert!(
            by_kind(ConditionKind::UnencryptedRecoveryPoints)
                .message
                .starts_with("1 recovery point")
        );
        assert_eq!(a.unprotected.len(), 1);
        assert_eq!(a.databases.len(), 1);
        // Worst first.
        assert!(
            a.conditions
                .windows(2)
                .all(|w| w[0].severity <= w[1].severity)
        );

        // A passed drill slower than the RTO; evidence older than the cadence and a grace day.
        i.drills = vec![drill("booking", now - TimeDelta::days(9), true, 5 * 3600)];
        let a = assess(&i);
        let found = kinds(&a, "booking");
        assert!(
            found.contains(&(ConditionKind::RtoExceeded, "us-east-1".into())),
            "{found:?}"
        );
        assert!(
            found.contains(&(ConditionKind::DrillStale, "us-east-1".into())),
            "{found:?}"
        );
    }

    /// RDS gives a snapshot it has not finished no `SnapshotCreateTime` (the adapter dates it `MAX_UTC`): how long
    /// it has been creating is measured from the first monitor run that saw it so, for a DB snapshot and an Aurora
    /// cluster snapshot alike; the plan's 30 minutes are exceeded only after 30 minutes of being seen creating.
    #[test]
    fn a_snapshot_rds_has_not_timed_is_too_long_from_when_it_was_first_seen_creating() {
        let (policy, me) = (policy(), deployment());
        let first_seen = at("2026-11-22T02:10:00Z");
        for kind in [DatabaseKind::Instance, DatabaseKind::Cluster] {
            let mut booking = db("booking", true);
            booking.database.kind = kind;
            let mut creating = snap(
                "s-untimed",
                "booking",
                "us-east-1",
                DateTime::<Utc>::MAX_UTC,
                "creating",
            );
            creating.kind = kind;
            if kind == DatabaseKind::Cluster {
                creating.arn =
                    "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:s-untimed".into();
            }
            let too_long = |since: &CreatingSince, snapshot: &Snapshot, now| {
                let mut i = inputs(&policy, &me, now);
                i.databases = vec![booking.clone()];
                i.snapshots = vec![snapshot.clone()];
                i.creating_since = since.clone();
                assess(&i)
                    .conditions
                    .into_iter()
                    .find(|c| c.key.kind == ConditionKind::BackupTooLong)
            };
            let mut since = CreatingSince::default();
            // Runs every 15 minutes: up to 30 minutes creating is within the plan.
            for minutes in [0, 15, 30] {
                let now = first_seen + TimeDelta::minutes(minutes);
                since.observe(std::slice::from_ref(&creating), &BTreeMap::new(), now);
                assert_eq!(
                    too_long(&since, &creating, now),
                    None,
                    "{kind}: {minutes} minutes"
                );
            }
            let now = first_seen + TimeDelta::minutes(45);
            since.observe(std::slice::from_ref(&creating), &BTreeMap::new(), now);
            assert_eq!(since.of(&creating), Some(first_seen), "{kind}");
            // The newest snapshot is dated from when it was first seen creating, never MAX_UTC.
            let mut i = inputs(&policy, &me, now);
            i.databases = vec![booking.clone()];
            i.snapshots = vec![creating.clone()];
            i.creating_since = since.clone();
            let last = assess(&i).databases[0].last_snapshot.clone().expect("last");
            assert_eq!(
                (last.at, last.status.as_str()),
                (first_seen, "creating"),
                "{kind}"
            );
            let slow = too_long(&since, &creating, now)
                .unwrap_or_else(|| panic!("{kind}: 45 minutes creating is too long"));
            assert_eq!(
                (slow.key.resource.as_str(), slow.key.region.as_str()),
                ("s-untimed", "us-east-1")
            );
            assert!(
                slow.message.contains("creating for at least 45m"),
                "{kind}: {}",
                slow.message
            );
            // Without the first sighting the snapshot looks just started: the blocker this guards against.
            assert_eq!(too_long(&CreatingSince::default(), &creating, now), None);
            // A region not read this run keeps its sightings; one no longer creating is forgotten.
            let unread: BTreeMap<String, String> =
                [("us-east-1".to_string(), "throttled".to_string())].into();
            since.observe(&[], &unread, now + TimeDelta::minutes(15));
            assert_eq!(since.of(&creating), Some(first_seen));
            creating.status = "available".into();
            since.observe(std::slice::from_ref(&creating), &BTreeMap::new(), now);
            assert!(since.snapshots.is_empty(), "{kind}: {since:?}");
        }
    }

    /// A region unreadable for one run (a blip that heals by itself on the next) opens nothing; unreadable since
    /// an earlier run too, it opens `region-unreadable`, saying since when.
    #[test]
    fn region_unreadable_opens_only_on_the_second_consecutive_failed_run() {
        let (policy, me) = (policy(), deployment());
        let now = at("2026-11-22T03:00:00Z");
        let mut i = inputs(&policy, &me, now);
        i.databases = vec![db("booking", true)];
        i.unreadable_regions
            .insert("us-west-2".into(), "throttled".into());
        let unreadable = |a: &Assessment| -> Vec<String> {
            a.conditions
                .iter()
                .filter(|c| c.key.kind == ConditionKind::RegionUnreadable)
                .map(|c| c.message.clone())
                .collect()
        };
        let first = assess(&i);
        assert_eq!(unreadable(&first), Vec::<String>::new(), "first failed run");
        assert_eq!(first.databases[0].regions[1].status, RpoStatus::Unknown);
        i.unreadable_since.insert("us-west-2".into(), now);
        assert_eq!(unreadable(&assess(&i)), Vec::<String>::new(), "since now");
        i.unreadable_since
            .insert("us-west-2".into(), now - TimeDelta::minutes(15));
        assert_eq!(
            unreadable(&assess(&i)),
            [
                "the snapshots in us-west-2 could not be listed since 2026-11-22T02:45:00Z: throttled; its RPO is unknown"
            ]
        );
    }

    #[test]
    fn an_unreadable_region_is_unknown_not_a_breach_and_other_deployments_do_not_count() {
        let (policy, me) = (policy(), deployment());
        let now = at("2026-11-22T03:00:00Z");
        let mut i = inputs(&policy, &me, now);
        i.databases = vec![db("booking", true)];
        let mut theirs = snap(
            "theirs",
            "booking",
            "us-east-1",
            now - TimeDelta::minutes(1),
            "available",
        );
        theirs
            .tags
            .insert(tags::HOME_REGION.into(), "us-west-2".into());
        i.snapshots = vec![theirs];
        i.unreadable_regions
            .insert("us-west-2".into(), "throttled".into());
        i.unreadable_since
            .insert("us-west-2".into(), now - TimeDelta::minutes(15));
        let a = assess(&i);
        assert_eq!(
            a.databases[0].regions[0].status,
            RpoStatus::Breached,
            "another deployment's snapshot is no recovery point of ours"
        );
        assert_eq!(a.databases[0].regions[1].status, RpoStatus::Unknown);
        let found = kinds(&a, "booking");
        assert!(
            !found.contains(&(ConditionKind::RpoBreach, "us-west-2".into())),
            "{found:?}"
        );
        assert!(
            a.conditions
                .iter()
                .any(|c| c.key.kind == ConditionKind::RegionUnreadable)
        );
    }

    /// Reads that fail (storage, quotas, a DR region's replicated automated backups or snapshots) leave the
    /// conditions they decide undecided, never absent: the alert state keeps them open (see `alerts`) instead of
    /// announcing them cleared and reopening them on the next good run.
    #[test]
    fn failed_reads_leave_their_conditions_undecided_not_cleared() {
        let policy = Policy::from_yaml(&POLICY.replace(
            "point_in_time: {min_retention_days: 7}",
            "point_in_time: {min_retention_days: 7, replicate_to: [us-west-2]}",
        ))
        .unwrap();
        let me = deployment();
        let now = at("2026-11-22T10:00:00Z");
        let mut i = inputs(&policy, &me, now);
        i.replication_wanted = policy.replication_wanted();
        let mut booking = db("booking", true);
        booking.point_in_time.latest_restorable = Some(now - TimeDelta::minutes(5));
        booking.storage = Some(Storage {
            allocated_bytes: 100 << 30,
            free_bytes: 8 << 30,
        });
        i.databases = vec![booking];
        i.snapshots = vec![
            snap(
                "s-today",
                "booking",
                "us-east-1",
                at("2026-11-22T02:00:00Z"),
                "available",
            ),
            snap(
                "c-failed",
                "booking",
                "us-west-2",
                at("2026-11-21T02:00:00Z"),
                "failed",
            ),
        ];
        i.quotas = vec![QuotaUsage {
            region: "us-east-1".into(),
            kind: DatabaseKind::Instance,
            used: 90,
            max: 100,
            history: vec![],
        }];
        let all_read = assess(&i);
        let open: BTreeSet<(ConditionKind, String)> = all_read
            .conditions
            .iter()
            .map(|c| (c.key.kind, c.key.region.clone()))
            .collect();
        for expected in [
            (ConditionKind::StorageHigh, "us-east-1"),
            (ConditionKind::QuotaHigh, "us-east-1"),
            (ConditionKind::RpoBreach, "us-west-2"),
            (ConditionKind::ReplicationMissing, "us-west-2"),
            (ConditionKind::CopyFailed, "us-west-2"),
        ] {
            assert!(
                open.contains(&(expected.0, expected.1.into())),
                "{expected:?}: {open:?}"
            );
        }
        assert!(all_read.undecided.is_empty());

        // The same, with every one of those reads failing.
        i.databases[0].storage = None;
        i.databases[0].storage_unread = true;
        i.quotas.clear();
        i.quotas_unread.insert("us-east-1".into());
        i.replicated_backups_unread.insert("us-west-2".into());
        i.snapshots.retain(|s| s.region != "us-west-2");
        i.unreadable_regions
            .insert("us-west-2".into(), "throttled".into());
        i.unreadable_since
            .insert("us-west-2".into(), i.now - TimeDelta::minutes(15));
        let failed = assess(&i);
        let west = &failed.databases[0].regions[1];
        assert_eq!(
            (west.region.as_str(), west.status),
            ("us-west-2", RpoStatus::Unknown)
        );
        for c in &all_read.conditions {
            assert!(
                failed.conditions.iter().any(|f| f.key == c.key)
                    || failed.undecided.iter().any(|u| u.covers(&c.key)),
                "{} looks cleared: {:?}",
                c.key,
                failed.undecided
            );
        }
        let now_open: Vec<ConditionKind> = failed.conditions.iter().map(|c| c.key.kind).collect();
        assert_eq!(
            now_open,
            [ConditionKind::RegionUnreadable],
            "nothing decided from the failed reads"
        );

        // Only the replicated backups unread, the copies read (none): the DR region's RPO is unknown, not breached.
        i.unreadable_regions.clear();
        let a = assess(&i);
        assert_eq!(a.databases[0].regions[1].status, RpoStatus::Unknown);
        assert!(
            a.conditions.iter().all(|c| c.key.region != "us-west-2"),
            "{:?}",
            a.conditions
        );
        // A cluster has no replicated automated backups: that read does not make its DR region unknown.
        i.databases[0].database.kind = DatabaseKind::Cluster;
        let a = assess(&i);
        assert_eq!(a.databases[0].regions[1].status, RpoStatus::Breached);
    }

    prop_compose! {
        /// A deployment's facts (ages in minutes: up to two weeks, past the drill cadence), and which reads fail.
        fn arb_reads()(
            primary in prop::collection::vec((0i64..20_000, 0usize..3, prop::bool::ANY), 0..3),
            copies in prop::collection::vec((0i64..20_000, 0usize..3, prop::bool::ANY), 0..3),
            pitr in prop::option::of(0i64..200),
            replicated in prop::option::of(0i64..200),
            cluster in prop::bool::ANY,
            free_percent in 0u64..=100,
            quota_used in (0u64..=100, 0u64..=100),
            failing in (prop::bool::ANY, prop::bool::ANY, prop::bool::ANY, prop::bool::ANY, prop::bool::ANY),
        ) -> (Vec<(i64, usize, bool)>, Vec<(i64, usize, bool)>, Option<i64>, Option<i64>, bool, u64, (u64, u64), (bool, bool, bool, bool, bool)) {
            (primary, copies, pitr, replicated, cluster, free_percent, quota_used, failing)
        }
    }

    proptest! {
        /// Whatever reads fail, a condition open when everything is read is still open or undecided (never looks
        /// cleared), and a failed read opens nothing but `region-unreadable`.
        #[test]
        fn a_failed_read_never_makes_a_condition_look_cleared_or_opens_one(
            (primary, copies, pitr, replicated, cluster, free_percent, quota_used, failing) in arb_reads(),
        ) {
            let policy = Policy::from_yaml(&POLICY
                .replace("point_in_time: {min_retention_days: 7}", "point_in_time: {min_retention_days: 7, replicate_to: [us-west-2]}")
                .replace("security_groups: [sg-1]}", "security_groups: [sg-1], regions: {us-west-2: {security_groups: [sg-2]}}}")).unwrap();
            let me = deployment();
            let now = at("2026-11-22T12:00:00Z");
            let mut i = inputs(&policy, &me, now);
            i.replication_wanted = policy.replication_wanted();
            let mut booking = db("booking", true);
            booking.point_in_time.latest_restorable = pitr.map(|m| now - TimeDelta::minutes(m));
            booking.storage = Some(Storage { allocated_bytes: 100 << 30, free_bytes: (free_percent << 30) });
            if cluster {
                booking.database.kind = DatabaseKind::Cluster;
            } else {
                // RDS replicates the automated backups of DB instances only.
                booking.replicated_backups = replicated.into_iter().map(|m| ReplicatedBackup {
                    region: "us-west-2".into(), retention_days: 7, earliest: None, latest: Some(now - TimeDelta::minutes(m)),
                }).collect();
            }
            i.databases = vec![booking];
            let kind = i.databases[0].database.kind;
            let statuses = [["available", "creating", "failed"], ["available", "copying", "failed"]];
            for (n, (age, status, encrypted)) in primary.iter().enumerate() {
                let mut s = snap(&format!("p{n}"), "booking", "us-east-1", now - TimeDelta::minutes(*age), statuses[0][*status]);
                (s.kind, s.encrypted) = (kind, *encrypted);
                i.snapshots.push(s);
            }
            for (n, (age, status, encrypted)) in copies.iter().enumerate() {
                let mut s = snap(&format!("c{n}"), "booking", "us-west-2", now - TimeDelta::minutes(*age), statuses[1][*status]);
                (s.kind, s.encrypted) = (kind, *encrypted);
                i.snapshots.push(s);
            }
            for (region, used) in [("us-east-1", quota_used.0), ("us-west-2", quota_used.1)] {
                i.quotas.push(QuotaUsage { region: region.into(), kind: DatabaseKind::Instance, used, max: 100, history: vec![] });
            }
            let all_read = assess(&i);

            let (west_snapshots, west_replicated, east_quotas, west_quotas, storage) = failing;
            if west_snapshots {
                i.snapshots.retain(|s| s.region != "us-west-2");
                i.unreadable_regions.insert("us-west-2".into(), "throttled".into());
            }
            if west_replicated {
                i.databases[0].replicated_backups.clear();
                i.replicated_backups_unread.insert("us-west-2".into());
            }
            for (unread, region) in [(east_quotas, "us-east-1"), (west_quotas, "us-west-2")] {
                if unread {
                    i.quotas.retain(|q| q.region != region);
                    i.quotas_unread.insert(region.into());
                }
            }
            if storage {
                i.databases[0].storage = None;
                i.databases[0].storage_unread = true;
            }
            let failed = assess(&i);
            for c in &all_read.conditions {
                prop_assert!(
                    failed.conditions.iter().any(|f| f.key == c.key) || failed.undecided.iter().any(|u| u.covers(&c.key)),
                    "{} looks cleared when reads fail ({:?})", c.key, failing
                );
            }
            for c in &failed.conditions {
                prop_assert!(
                    c.key.kind == ConditionKind::RegionUnreadable || all_read.conditions.iter().any(|a| a.key == c.key),
                    "{} opened by a failed read ({:?})", c.key, failing
                );
            }
        }
    }

    #[test]
    fn quota_history_keeps_a_week() {
        let mut history = QuotaHistory::default();
        let t = at("2026-11-01T00:00:00Z");
        for day in 0..20 {
            history.record(
                "us-east-1",
                DatabaseKind::Cluster,
                QuotaSample {
                    at: t + TimeDelta::days(day),
                    used: day as u64,
                },
            );
        }
        let kept = history.of("us-east-1", DatabaseKind::Cluster);
        assert_eq!(kept.len(), 8);
        assert_eq!(kept[0].used, 12);
        assert!(history.of("us-east-1", DatabaseKind::Instance).is_empty());
        let json = serde_json::to_string(&history).unwrap();
        assert_eq!(
            serde_json::from_str::<QuotaHistory>(&json).unwrap(),
            history
        );
    }

    prop_compose! {
        /// Ages in minutes of primary snapshots, DR copies, the point-in-time latest time and replicated backups.
        fn arb_sources()(
            primary in prop::collection::vec((0i64..3000, prop::bool::ANY), 0..4),
            copies in prop::collection::vec((0i64..3000, prop::bool::ANY), 0..4),
            pitr in prop::option::of(0i64..200),
            replicated in prop::option::of(0i64..200),
        ) -> (Vec<(i64, bool)>, Vec<(i64, bool)>, Option<i64>, Option<i64>) {
            (primary, copies, pitr, replicated)
        }
    }

    proptest! {
        #[test]
        fn the_best_source_is_the_newest_recovery_point_and_a_breach_means_none_within_the_objective(
            (primary, copies, pitr, replicated) in arb_sources(),
        ) {
            let (policy, me) = (policy(), deployment());
            let now = at("2026-11-22T12:00:00Z");
            let mut i = inputs(&policy, &me, now);
            let mut booking = db("booking", true);
            booking.point_in_time.latest_restorable = pitr.map(|m| now - TimeDelta::minutes(m));
            booking.replicated_backups = replicated.into_iter().map(|m| ReplicatedBackup {
                region: "us-west-2".into(), retention_days: 7, earliest: None, latest: Some(now - TimeDelta::minutes(m)),
            }).collect();
            i.databases = vec![booking];
            for (n, (age, available)) in primary.iter().enumerate() {
                let status = if *available { "available" } else { "creating" };
                i.snapshots.push(snap(&format!("p{n}"), "booking", "us-east-1", now - TimeDelta::minutes(*age), status));
            }
            for (n, (age, available)) in copies.iter().enumerate() {
                let status = if *available { "available" } else { "copying" };
                i.snapshots.push(snap(&format!("c{n}"), "booking", "us-west-2", now - TimeDelta::minutes(*age), status));
            }
            let a = assess(&i);
            let d = &a.databases[0];
            let newest = |ages: &[(i64, bool)], extra: Option<i64>| ages.iter().filter(|(_, ok)| *ok).map(|(m, _)| *m).chain(extra).min();
            for (region, expected) in [(&d.regions[0], newest(&primary, pitr)), (&d.regions[1], newest(&copies, replicated))] {
                prop_assert_eq!(region.best().map(|b| b.rpo_seconds), expected.map(|m| m as u64 * 60));
                prop_assert!(region.sources.windows(2).all(|w| w[0].rpo_seconds <= w[1].rpo_seconds));
                for s in &region.sources {
                    prop_assert!((s.fraction - s.rpo_seconds as f64 / 3600.0).abs() < 1e-9);
                }
                let breached = expected.is_none_or(|m| m > 60);
                prop_assert_eq!(region.status == RpoStatus::Breached, breached);
                let alerted = a.conditions.iter().any(|c| c.key.kind == ConditionKind::RpoBreach && c.key.region == region.region);
                prop_assert_eq!(alerted, breached);
            }
            let keys: BTreeSet<&ConditionKey> = a.conditions.iter().map(|c| &c.key).collect();
            prop_assert_eq!(keys.len(), a.conditions.len(), "condition keys are unique");
            prop_assert!(a.conditions.windows(2).all(|w| (w[0].severity, &w[0].key) <= (w[1].severity, &w[1].key)));
        }
    }
}
