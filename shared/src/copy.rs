//! Cross-region copy scheduling (pure): which managed snapshots to copy to which disaster-recovery region now,
//! under which identifier, with which KMS key, option group and tags, and which copies wait for a slot.
//!
//! The copy function reads the actual state (the snapshots in the primary region and those in every DR region, as
//! [`Snapshot`]s with their tags inline), calls [`plan_copies`] and starts the copies in [`CopyPlan::starts`]. It runs on every
//! "snapshot created" and "copy finished" RDS event and on a schedule as the safety net, and it keeps no state of
//! its own: everything below is decided from what AWS reports, so a repeated, concurrent or crashed run is harmless.
//!
//! # Rules, and why
//!
//! **What needs a copy.** A source snapshot in the primary region needs a copy in a DR region when
//! - this deployment made it (`lifeboat:managed=true` with this deployment's identity, see [`crate::ownership`]):
//!   Lifeboat never copies what it did not make, nor what another deployment made;
//! - it is not itself a copy (RDS reports no source for it, [`Snapshot::copied_from`], and it carries no
//!   `lifeboat:copied-from`): with DR in both directions a region holds copies from the other, and copying those
//!   on would bounce snapshots between regions or chain them into a third. Reported as [`SkipReason::IsACopy`];
//! - its plan lists the region. The plan is the one named by its `lifeboat:plan` tag; when the tag is missing or
//!   names a plan the policy no longer has, the plan whose selection covers the source database (by identifier,
//!   pattern, kind, and the user tags the snapshot carries). No plan: no copy, and the source is reported;
//! - the region is not the source's own region;
//! - no copy of it exists in that region: a snapshot with the target identifier (see [`target_identifier`],
//!   which names the source region) whose source ([`copied_from`]) is this very snapshot's ARN, in any status.
//!   A copy in flight or finished means "done". A failed one (`failed`, `error`, `incompatible-*`) never does: it
//!   is reported, deleted by the copy function when this deployment made it, and the copy is retried under the next
//!   attempt's name (`<source>-retry2-from-<region>`, …); a retry in flight or finished is the copy. A snapshot of
//!   that name copied from anything else is not a copy of this source: it is reported
//!   ([`CopyFinding::NameTaken`]) and left alone;
//! - it is not a manual snapshot whose `lifeboat:expires-at` has passed: it is about to be deleted, and so would
//!   its copy be ([`SkipReason::Expired`]);
//! - it is younger than the region's `retain_days`: `now - created_at < retain_days`, the very test DR retention
//!   applies ([`crate::retention::Rules::copies`] keeps copies `keep_within` `retain_days` of the planning time).
//!   Copies age from the ORIGINAL snapshot time (the copy carries `lifeboat:created-at`), so an older copy would be
//!   deleted by retention at once. This rule also keeps the steady state quiet: monthly and yearly snapshots stay
//!   in the primary region for years while their DR copies expire after `retain_days`, and without it every run
//!   would copy them again. Such sources are reported as [`SkipReason::TooOld`], which is expected, not an alarm.
//!
//! Only `available` sources are copied (RDS refuses anything else, and acting before a snapshot is ready is how
//! peer tools make alarms flap); the others are reported as waiting with their status. The "snapshot created"
//! event, or the schedule, brings them back.
//!
//! **Slots.** The current RDS User Guide allows [`RDS_SNAPSHOT_COPIES_IN_FLIGHT_PER_REGION`] (20) DB snapshot copies
//! and [`RDS_CLUSTER_SNAPSHOT_COPIES_IN_FLIGHT_PER_REGION`] (5) DB cluster snapshot copies in flight per destination
//! region per account, counted per kind; more requests fail or queue, and a copy can take hours. RDS also copies one
//! database's snapshots one after another, so a second copy of a database would hold a slot without progress. So
//! per destination region and kind the planner counts the copies already in flight (DR snapshots that are copies,
//! or carry `lifeboat:managed`, in a status that is not terminal: see [`occupies_copy_slot`]), starts at most
//! `limit - in_flight` copies, never a negative number, and at most one per source database with none in flight. Everything else is the region's backlog: it is not an
//! error and nothing retries noisily. When a copy finishes (RDS-EVENT-0060) the next run sees one copy fewer in
//! flight and starts the next one, so the slots stay busy; the schedule refills them when an event is lost
//! (EventBridge delivers RDS events on a best-effort basis). `shared/tests/copy_simulation.rs` measures what this
//! gives: a backlog drains close to the `sum of copy times / slots` lower bound.
//!
//! Submitting more than the limit would not make anything faster: RDS runs only so many at once, and the requests
//! over it fail (noisy retries and alarms, the complaint about peer tools) or wait in RDS's queue. And a running copy
//! blocks automated backups of the same database in that region, so Lifeboat starts a copy only when RDS will
//! run it at once, and copies each snapshot once per region.
//!
//! **Order.** The oldest source (by `created_at`, ties broken by identifier and kind) goes first: first in, first
//! out bounds how long any snapshot waits, and the oldest is the closest to ageing out of the region's retention.
//! The order depends only on the inputs, never on their order, and new snapshots join the end of the queue, so two
//! runs that overlap (an event and the schedule) choose from the same head of the queue and collide on the same
//! deterministic names ("already exists": done) rather than start twice as many. The planner does not know how
//! long a copy will take; with copy times drawn at random that costs a few percent of makespan for backlogs of a
//! hundred or more (see the simulation).
//!
//! **Encryption.** An encrypted source is copied with the destination region's `kms_key_id` from the policy,
//! never with the source key (a key ID from another region does not work there, and one key everywhere is a
//! single point of failure). An unencrypted source is copied with no key at all (a peer tool's bug was sending
//! "KMS key [None]") and the plan reports a finding, since an unencrypted recovery point is worth knowing about.
//!
//! **Option group.** Option groups are not copied across regions, so the target's `option_group` is passed when
//! the policy names one. Only DB snapshots take one; DB cluster snapshots have none.
//!
//! **Tags.** A copy carries its source's tags, so `lifeboat:created-at`, `lifeboat:source`, `lifeboat:tier` and
//! `lifeboat:expires-at` carry over and the copy ages from the original snapshot, plus [`tags::COPIED_FROM`],
//! [`tags::SOURCE_REGION`], [`tags::COPIED_AT`] and the policy name. `lifeboat:verified-at` does not carry over:
//! a restore of the copy has not been proven. `aws:` keys cannot be set by anyone but AWS. Within RDS's 50-tag
//! limit, user tags are dropped first.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Duration, SecondsFormat, Timelike, Utc};

use crate::model::{Database, DatabaseKind, Snapshot};
use crate::ownership::Deployment;
use crate::policy::{CopyTarget, Plan, Policy};
use crate::tags;

/// DB snapshot copies RDS allows in flight per destination region per account (the current RDS User Guide,
/// USER_CopySnapshot). Counted apart from DB cluster snapshot copies.
pub const RDS_SNAPSHOT_COPIES_IN_FLIGHT_PER_REGION: usize = 20;

/// DB cluster snapshot copies RDS allows in flight per destination region per account (the Aurora User Guide).
pub const RDS_CLUSTER_SNAPSHOT_COPIES_IN_FLIGHT_PER_REGION: usize = 5;

/// How long a recovery point may take to reach a DR region before it is alerted as late, by default.
pub const DEFAULT_COPY_DEADLINE_HOURS: u32 = 24;

/// Copy attempts looked for per source and region (`<source>-from-<region>`, then `-retry2`, … up to this).
pub const MAX_COPY_ATTEMPTS: u32 = 50;

/// Whether `snapshot` takes one of its region's copy slots: its status is not terminal (see
/// [`is_terminal_status`]) and it is a copy made across regions or a Lifeboat snapshot.
///
/// The RDS limit counts every cross-region copy into the region, Lifeboat's or not, so a copy someone else
/// started counts too: any source RDS reports ([`Snapshot::copied_from`]) makes it a copy, unless it is an ARN
/// naming this very region (a copy within the region). A managed snapshot, or one carrying
/// `lifeboat:copied-from`, counts even without a reported source. When in doubt a snapshot counts: a slot left
/// idle for a while costs less than a copy request over the limit.
pub fn occupies_copy_slot(snapshot: &Snapshot) -> bool {
    if is_terminal_status(&snapshot.status) {
        return false;
    }
    let cross_region_copy = snapshot
        .copied_from
        .as_deref()
        .is_some_and(|source| arn_region(source) != Some(snapshot.region.as_str()));
    cross_region_copy || snapshot.is_managed() || snapshot.tags.contains_key(tags::COPIED_FROM)
}

/// Whether `snapshot` is itself a copy of another snapshot: RDS reports a source for it
/// ([`Snapshot::copied_from`], when not empty) or it carries `lifeboat:copied-from`. Copies are never copied on.
pub fn is_a_copy(snapshot: &Snapshot) -> bool {
    snapshot
        .copied_from
        .as_deref()
        .is_some_and(|source| !source.is_empty())
        || snapshot.tags.contains_key(tags::COPIED_FROM)
}

/// When a manual snapshot's `lifeboat:expires-at` has passed at `now` (the expiry, if so). Scheduled snapshots
/// and manual ones without an expiry never expire here; the boundary is retention's: a manual snapshot is kept
/// while its expiry is after `now`.
pub fn expired_at(snapshot: &Snapshot, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    snapshot
        .is_manual()
        .then(|| snapshot.expires_at())
        .flatten()
        .filter(|expiry| *expiry <= now)
}

/// The order copies are started in: oldest first, then by identifier and kind.
fn order_key(snapshot: &Snapshot) -> (DateTime<Utc>, &str, DatabaseKind) {
    (snapshot.created_at, &snapshot.identifier, snapshot.kind)
}

/// A total order over every field of a snapshot, so that the choice among duplicates (same region, kind and
/// identifier, listed twice with different contents) never depends on the order of the inputs.
fn total_cmp(a: &Snapshot, b: &Snapshot) -> Ordering {
    (
        &a.identifier,
        &a.arn,
        &a.region,
        a.kind,
        &a.database,
        a.created_at,
    )
        .cmp(&(
            &b.identifier,
            &b.arn,
            &b.region,
            b.kind,
            &b.database,
            b.created_at,
        ))
        .then_with(|| {
            (&a.status, a.encrypted, &a.copied_from, &a.engine, &a.tags).cmp(&(
                &b.status,
                b.encrypted,
                &b.copied_from,
                &b.engine,
                &b.tags,
            ))
        })
}

/// The region named in an ARN (`arn:aws:rds:us-east-1:123456789012:snapshot:name`), if `text` is an ARN.
fn arn_region(text: &str) -> Option<&str> {
    let mut parts = text.split(':');
    (parts.next() == Some("arn"))
        .then(|| parts.nth(2))
        .flatten()
        .filter(|region| !region.is_empty())
}

/// Whether a snapshot in `status` has stopped changing: `available`, `failed`, `error`, `deleted`, `deleting`
/// or `incompatible-*`. Everything else (`creating`, `copying`, `pending`, and statuses not known here) is
/// in flight.
///
/// `deleting` counts as terminal: a snapshot being deleted copies nothing any more (deleting a copy in flight
/// cancels it), and retention deletes many copies at once, which must not stall the copies that follow.
pub fn is_terminal_status(status: &str) -> bool {
    matches!(
        status,
        "available" | "failed" | "error" | "deleted" | "deleting"
    ) || status.starts_with("incompatible-")
}

/// Whether a snapshot in `status` failed for good (`failed`, `error`, `incompatible-*`).
pub fn is_failed_status(status: &str) -> bool {
    matches!(status, "failed" | "error") || status.starts_with("incompatible-")
}

/// The deterministic identifier of the copy of `source_id` (a snapshot of `kind` in `source_region`) in any DR
/// region: `<source identifier>-from-<source region>`, within RDS's length limit for the kind (a long source name
/// is cut and a hash of it added, see [`crate::model::fit_identifier`]; the name still ends `-from-<source region>`).
///
/// Naming the source region keeps copies apart from the DR region's own originals of a database of the same name
/// (two deployments with DR in opposite directions), and an operator sees at once which snapshot a copy is. Every
/// run plans the same name, so RDS's "already exists" means the copy was started before.
pub fn target_identifier(source_id: &str, source_region: &str, kind: DatabaseKind) -> String {
    attempt_identifier(source_id, source_region, kind, 1)
}

/// The identifier of copy attempt `attempt` (1 is the first) of `source_id`: the first is
/// [`target_identifier`], a retry after a failed copy is `<source identifier>-retry<n>-from-<source region>`.
///
/// The retry number goes before `-from-<source region>` so that every attempt still ends with it: the copy
/// function's IAM policy lets it create copies only under names `lifeboat-*-from-<its region>`
/// (`CopyToOwnCopyNames` in infra/template.yaml). It is `-retry<n>`, not `-r<n>`, so that it never reads like
/// the copy of a retried source snapshot. Within RDS's length limit a long source name is cut, never the suffix.
pub fn attempt_identifier(
    source_id: &str,
    source_region: &str,
    kind: DatabaseKind,
    attempt: u32,
) -> String {
    let tail = if attempt <= 1 {
        format!("-from-{source_region}")
    } else {
        format!("-retry{attempt}-from-{source_region}")
    };
    crate::model::fit_identifier(source_id, &tail, kind.max_snapshot_identifier_len())
}

/// The source database a copy in flight belongs to, for RDS's one-at-a-time queue per source database: its
/// `lifeboat:source` tag when it has one, else the database RDS reports ([`Snapshot::database`]).
pub fn source_database(copy: &Snapshot) -> &str {
    copy.tags
        .get(tags::SOURCE)
        .unwrap_or(copy.database.as_str())
}

/// The ARN of the snapshot `copy` was copied from: what RDS reports when it is an ARN (cross-region copies), else
/// the `lifeboat:copied-from` tag Lifeboat wrote on it.
pub fn copied_from(copy: &Snapshot) -> Option<&str> {
    copy.copied_from
        .as_deref()
        .filter(|source| source.starts_with("arn:"))
        .or_else(|| copy.tags.get(tags::COPIED_FROM))
}

/// When a copy of a snapshot taken at `created_at` leaves a region that keeps copies `retain_days` days (copies
/// age from the original snapshot time). `None` when that is beyond the representable range: never.
pub fn copy_expiry(created_at: DateTime<Utc>, retain_days: u32) -> Option<DateTime<Utc>> {
    created_at.checked_add_signed(Duration::days(i64::from(retain_days)))
}

/// The plan a source snapshot belongs to (`None` for an ad-hoc restore's final snapshot): the plan named by its
/// `lifeboat:plan` tag ([`tags::PLAN`]); when that
/// is missing or no longer in the policy, the first plan whose selection covers the source database
/// ([`Snapshot::database`]), judged by its identifier, its kind and the user tags the snapshot carries (snapshots
/// carry their database's user tags; `lifeboat:` and `aws:` keys are left out, since they describe the snapshot).
pub fn plan_for_source<'p>(policy: &'p Policy, source: &Snapshot) -> Option<&'p Plan> {
    // The final snapshot of an expired ad-hoc restore is no recovery point of a source database: never copied,
    // whatever a plan's patterns match.
    if source.tags.get(tags::TRIGGER) == Some(tags::RESTORE_EXPIRY_TRIGGER) {
        return None;
    }
    if let Some(name) = source.tags.get(tags::PLAN)
        && let Some(plan) = policy.plans.iter().find(|plan| plan.name == name)
    {
        return Some(plan);
    }
    let database = Database {
        identifier: source.database.to_string(),
        kind: source.kind,
        arn: String::new(),
        region: source.region.to_string(),
        engine: String::new(),
        status: String::new(),
        encrypted: source.encrypted,
        cluster: None,
        endpoint: None,
        master_username: None,
        engine_version: None,
        replica_source: None,
        tags: source
            .tags
            .iter()
            .filter(|(key, _)| !tags::is_reserved_key(key))
            .collect(),
    };
    policy.plan_for(&database)
}

/// How many copies may be in flight per destination region and snapshot kind, and how long a copy may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyLimits {
    /// DB snapshot copies in flight per destination region not listed in `regions`; RDS's default is
    /// [`RDS_SNAPSHOT_COPIES_IN_FLIGHT_PER_REGION`].
    pub snapshots_per_region: usize,
    /// DB cluster snapshot copies in flight per destination region not listed in `regions`; RDS's default is
    /// [`RDS_CLUSTER_SNAPSHOT_COPIES_IN_FLIGHT_PER_REGION`].
    pub cluster_snapshots_per_region: usize,
    /// Per (region, kind) limits that differ from the defaults (a raised quota, or a lower share of it).
    pub regions: BTreeMap<(String, DatabaseKind), usize>,
    /// A recovery point that has not reached a DR region this long after it was taken is late (alerted).
    pub deadline: Duration,
}

impl Default for CopyLimits {
    fn default() -> Self {
        Self::new(
            RDS_SNAPSHOT_COPIES_IN_FLIGHT_PER_REGION,
            RDS_CLUSTER_SNAPSHOT_COPIES_IN_FLIGHT_PER_REGION,
        )
    }
}

impl CopyLimits {
    /// `snapshots` DB snapshot copies and `cluster_snapshots` DB cluster snapshot copies in flight in every
    /// region, and the default deadline.
    pub fn new(snapshots: usize, cluster_snapshots: usize) -> Self {
        Self {
            snapshots_per_region: snapshots,
            cluster_snapshots_per_region: cluster_snapshots,
            regions: BTreeMap::new(),
            deadline: Duration::hours(i64::from(DEFAULT_COPY_DEADLINE_HOURS)),
        }
    }

    /// The same limit for both kinds in every region.
    pub fn uniform(in_flight_per_region: usize) -> Self {
        Self::new(in_flight_per_region, in_flight_per_region)
    }

    /// The same limits with another copy deadline.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The limit for copies of `kind` into `region`.
    pub fn for_region(&self, region: &str, kind: DatabaseKind) -> usize {
        self.regions
            .get(&(region.to_string(), kind))
            .copied()
            .unwrap_or(match kind {
                DatabaseKind::Instance => self.snapshots_per_region,
                DatabaseKind::Cluster => self.cluster_snapshots_per_region,
            })
    }
}
/// One copy: what the copy request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCopy {
    /// The snapshot to copy (its ARN, region and kind make the request).
    pub source: Snapshot,
    /// Destination region (the request is made there).
    pub region: String,
    /// Identifier of the copy, [`target_identifier`] of the source.
    pub target_id: String,
    /// KMS key in the destination region: the policy's key for an encrypted source, `None` for an unencrypted one.
    pub kms_key_id: Option<String>,
    /// Option group in the destination region, for DB snapshots when the policy names one.
    pub option_group: Option<String>,
    /// Tags to create the copy with (sorted by key; at most [`tags::MAX_TAGS_PER_RESOURCE`]).
    pub tags: Vec<(String, String)>,
}

/// The copy slots of one destination region for one snapshot kind (RDS counts DB snapshot and DB cluster snapshot
/// copies apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionSlots {
    /// Copies allowed in flight.
    pub limit: usize,
    /// Copies found in flight before this run.
    pub in_flight: usize,
    /// Copies this plan starts (the region's entries of this kind in [`CopyPlan::starts`]).
    pub starting: usize,
    /// Copies needed that wait, in the order they will start.
    pub backlog: Vec<WaitingCopy>,
}

impl RegionSlots {
    /// Slots free before this run: `limit - in_flight`, never negative.
    pub fn free(&self) -> usize {
        self.limit.saturating_sub(self.in_flight)
    }
}

/// Why a needed copy is not started in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WaitReason {
    /// Every slot of its region and kind is taken.
    Slot,
    /// A copy of the same source database to the same region is in flight (or starts in this run): RDS would
    /// queue this one behind it, holding a slot without progress.
    SameDatabase,
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WaitReason::Slot => "waiting for a free copy slot",
            WaitReason::SameDatabase => {
                "waiting behind the copy of the same database in flight (RDS copies one at a time per database)"
            }
        })
    }
}

/// A needed copy that waits. The run that starts it plans it in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingCopy {
    /// Identifier of the source snapshot.
    pub source_id: String,
    /// Identifier the copy will have ([`attempt_identifier`] of the source).
    pub target_id: String,
    /// DB snapshot or DB cluster snapshot.
    pub kind: DatabaseKind,
    /// The database the snapshot is of.
    pub database: String,
    /// When the source was taken (the backlog is in this order, oldest first).
    pub created_at: DateTime<Utc>,
    /// What it waits for.
    pub waits_for: WaitReason,
}

/// A copy that failed (`failed`, `error`, `incompatible-*`): no recovery point. The copy function deletes it when
/// [`FailedCopy::deletable`] and the planner retries it under [`FailedCopy::retry_id`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCopy {
    /// The failed copy, as listed in its region.
    pub copy: Snapshot,
    /// Identifier of its source snapshot.
    pub source_id: String,
    /// The source database.
    pub database: String,
    /// Whether this deployment made it (`lifeboat:managed` with its identity): only then is it deleted.
    pub deletable: bool,
    /// The identifier of the attempt that replaces it (in flight already, starting, or waiting).
    pub retry_id: String,
}

/// Why a late recovery point has not reached a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LateReason {
    /// Its copy was only started in this run.
    StartingNow,
    /// Its copy waits.
    Waiting(WaitReason),
    /// Its copy is in flight.
    InFlight {
        /// Identifier of the copy.
        copy: String,
        /// Its status.
        status: String,
    },
    /// An attempt failed; a retry is in flight, starting or waiting.
    Failed {
        /// Identifier of the failed copy.
        copy: String,
        /// Its status.
        status: String,
    },
}

impl fmt::Display for LateReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LateReason::StartingNow => f.write_str("its copy starts only now"),
            LateReason::Waiting(why) => write!(f, "{why}"),
            LateReason::InFlight { copy, status } => {
                write!(f, "its copy `{copy}` is still `{status}`")
            }
            LateReason::Failed { copy, status } => {
                write!(f, "copy `{copy}` is `{status}` and is being retried")
            }
        }
    }
}

/// A recovery point that has not reached a DR region within the copy deadline ([`CopyLimits::deadline`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateCopy {
    /// Identifier of the source snapshot.
    pub source_id: String,
    /// The database.
    pub database: String,
    /// DB snapshot or DB cluster snapshot.
    pub kind: DatabaseKind,
    /// The DR region it has not reached.
    pub region: String,
    /// When the source was taken.
    pub created_at: DateTime<Utc>,
    /// How long ago, at planning time.
    pub age: Duration,
    /// Why it is not there.
    pub reason: LateReason,
}
/// Why a source snapshot is not copied (to a region).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// No plan in the policy covers it: neither its `lifeboat:plan` tag nor the selections.
    NoPlan,
    /// It is itself a copy of another snapshot (see [`is_a_copy`]); only originals are copied.
    IsACopy,
    /// It is a manual snapshot whose `lifeboat:expires-at` has passed: it, and any copy, is about to be deleted.
    Expired {
        /// Its `lifeboat:expires-at`.
        expires_at: DateTime<Utc>,
    },
    /// It is not `available` yet (or any more); copies start once it is.
    NotAvailable {
        /// Its status.
        status: String,
    },
    /// It is older than the region's retention: its copy would be deleted at once.
    TooOld {
        /// When the source was taken.
        created_at: DateTime<Utc>,
        /// Days the region keeps copies.
        retain_days: u32,
    },
    /// The plan lists the source's own region as a DR region.
    SameRegion,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NoPlan => f.write_str("no plan in the policy covers it"),
            SkipReason::IsACopy => {
                f.write_str("it is itself a copy of another snapshot: only originals are copied")
            }
            SkipReason::Expired { expires_at } => write!(
                f,
                "manual snapshot expired {}: it is about to be deleted",
                rfc3339(*expires_at)
            ),
            SkipReason::NotAvailable { status } => {
                write!(
                    f,
                    "waiting: status is `{status}`, copies start once it is available"
                )
            }
            SkipReason::TooOld {
                created_at,
                retain_days,
            } => write!(
                f,
                "taken {} and the region keeps copies {retain_days} days: a copy would expire at once",
                rfc3339(*created_at)
            ),
            SkipReason::SameRegion => f.write_str("the DR region is the snapshot's own region"),
        }
    }
}

/// A source snapshot not copied (to one region, or at all), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedCopy {
    /// The source snapshot's identifier (not the snapshot: at 90 snapshots a database, most sources of a fleet are
    /// older than the copies' retention, and a clone of each was a third of a run's memory).
    pub source: String,
    /// The DR region concerned; `None` when the reason concerns every region ([`SkipReason::NoPlan`],
    /// [`SkipReason::IsACopy`]).
    pub region: Option<String>,
    /// Why.
    pub reason: SkipReason,
}
/// Something an operator should know, found while planning.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum CopyFinding {
    /// An unencrypted source is being copied, without a KMS key.
    UnencryptedSource {
        /// Source snapshot identifier.
        source: String,
        /// Destination region.
        region: String,
    },
    /// A snapshot with the copy's identifier exists in the region but is not a copy of the source: the copy cannot
    /// be made under its name. Two deployments in one primary region select the same database.
    NameTaken {
        /// The database whose copy it would have been.
        database: String,
        /// DB snapshot or DB cluster snapshot.
        kind: DatabaseKind,
        /// The identifier.
        target: String,
        /// Its region.
        region: String,
        /// What it was copied from, if anything.
        holder: Option<String>,
    },
}

impl fmt::Display for CopyFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopyFinding::UnencryptedSource { source, region } => write!(
                f,
                "unencrypted source `{source}` copied to {region} without a key"
            ),
            CopyFinding::NameTaken {
                target,
                region,
                holder,
                ..
            } => write!(
                f,
                "`{target}` in {region} is not a copy of this deployment's snapshot (it is {}): no copy made; \
                 two deployments select the same database, narrow one policy's selection",
                holder
                    .as_deref()
                    .map_or_else(|| "an original".to_string(), |h| format!("a copy of {h}"))
            ),
        }
    }
}

/// The plan of one copy run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyPlan {
    /// Copies to start now, by region and kind, oldest source first.
    pub starts: Vec<PlannedCopy>,
    /// Every DR region of the policy, per snapshot kind: its limit, copies in flight, copies starting and backlog.
    pub regions: BTreeMap<(String, DatabaseKind), RegionSlots>,
    /// Sources not copied (to a region), with the reason, in source order.
    pub skipped: Vec<SkippedCopy>,
    /// Findings for the operator, sorted.
    pub findings: Vec<CopyFinding>,
    /// Failed copies of this deployment's sources (to delete when deletable, and retried), in source order.
    pub failed: Vec<FailedCopy>,
    /// Recovery points that have not reached a DR region within the copy deadline, in source order.
    pub late: Vec<LateCopy>,
    /// Source snapshots ignored because this deployment did not make them (unmanaged, or another deployment's).
    pub not_ours: usize,
}

impl CopyPlan {
    /// The copies starting in `region`.
    pub fn starts_in<'a>(&'a self, region: &'a str) -> impl Iterator<Item = &'a PlannedCopy> + 'a {
        self.starts.iter().filter(move |copy| copy.region == region)
    }

    /// The slots of `kind` in `region`, if the policy copies there.
    pub fn slots(&self, region: &str, kind: DatabaseKind) -> Option<&RegionSlots> {
        self.regions.get(&(region.to_string(), kind))
    }

    /// Copies waiting, over all regions and kinds.
    pub fn backlog_len(&self) -> usize {
        self.regions.values().map(|slots| slots.backlog.len()).sum()
    }
}

/// The DR regions' snapshots, for lookups by name and by source: sorted references, not maps (a fleet's DR regions
/// hold tens of thousands of copies, and maps of them were 15 MiB of a copy run at 1,000 databases).
struct Existing<'s> {
    /// One per (region, kind, identifier), the greatest by [`total_cmp`] (so that duplicates cannot depend on input
    /// order), sorted by (region, kind, identifier).
    by_name: Vec<&'s Snapshot>,
    /// Those that are copies, sorted by (region, kind, what they were copied from).
    by_source: Vec<&'s Snapshot>,
}

impl<'s> Existing<'s> {
    fn of(dr_snapshots: &'s [Snapshot]) -> Self {
        let mut by_name: Vec<&Snapshot> = dr_snapshots.iter().collect();
        by_name.sort_unstable_by(|a, b| name_of(a).cmp(&name_of(b)).then_with(|| total_cmp(b, a)));
        by_name.dedup_by(|later, first| name_of(later) == name_of(first));
        let mut by_source: Vec<&Snapshot> = by_name
            .iter()
            .copied()
            .filter(|s| copied_from(s).is_some())
            .collect();
        by_source.sort_unstable_by(|a, b| source_of(a).cmp(&source_of(b)));
        Self { by_name, by_source }
    }

    /// Every snapshot kept, once.
    fn all(&self) -> impl Iterator<Item = &'s Snapshot> + '_ {
        self.by_name.iter().copied()
    }

    /// The snapshot `identifier` of `kind` in `region`.
    fn named(&self, region: &str, kind: DatabaseKind, identifier: &str) -> Option<&'s Snapshot> {
        self.by_name
            .binary_search_by(|s| {
                (s.region.as_str(), s.kind, s.identifier.as_str()).cmp(&(region, kind, identifier))
            })
            .ok()
            .map(|at| self.by_name[at])
    }

    /// Whether `region` holds a copy (of `kind`) of the snapshot whose ARN is `source_arn`.
    fn has_copy_of(&self, region: &str, kind: DatabaseKind, source_arn: &str) -> bool {
        self.by_source
            .binary_search_by(|s| {
                (s.region.as_str(), s.kind, copied_from(s)).cmp(&(region, kind, Some(source_arn)))
            })
            .is_ok()
    }
}

/// A DR snapshot's name: region, kind, identifier.
fn name_of(snapshot: &Snapshot) -> (&str, DatabaseKind, &str) {
    (&snapshot.region, snapshot.kind, &snapshot.identifier)
}

/// A DR snapshot by source: region, kind, what it was copied from.
fn source_of(snapshot: &Snapshot) -> (&str, DatabaseKind, Option<&str>) {
    (&snapshot.region, snapshot.kind, copied_from(snapshot))
}

/// A copy needed in one region: its source, plan and target, the attempt it is, and a failed earlier attempt.
struct Needed<'s> {
    source: &'s Snapshot,
    plan: &'s Plan,
    target: &'s CopyTarget,
    target_id: String,
    failed: Option<&'s Snapshot>,
}

/// Plan a copy run of `deployment`: which copies to start now in each DR region of the policy.
///
/// `sources` are the snapshots listed in the primary region (those this deployment did not make are ignored,
/// copies are skipped),
/// `dr_snapshots` those listed in the DR regions (any status; regions the policy does not name are ignored), `now`
/// the time of the run. The result depends only on the inputs as sets: their order, and exact duplicates, change
/// nothing.
pub fn plan_copies(
    policy: &Policy,
    deployment: &Deployment,
    sources: &[Snapshot],
    dr_snapshots: &[Snapshot],
    limits: &CopyLimits,
    now: DateTime<Utc>,
) -> CopyPlan {
    let mut plan = CopyPlan::default();

    let existing = Existing::of(dr_snapshots);

    for target in policy.plans.iter().flat_map(|p| &p.copies) {
        for kind in [DatabaseKind::Instance, DatabaseKind::Cluster] {
            plan.regions
                .entry((target.region.clone(), kind))
                .or_insert_with(|| RegionSlots {
                    limit: limits.for_region(&target.region, kind),
                    in_flight: 0,
                    starting: 0,
                    backlog: Vec::new(),
                });
        }
    }
    // Source databases with a copy in flight, per region and kind: RDS runs their next copy only after it.
    let mut busy: BTreeSet<(&str, DatabaseKind, &str)> = BTreeSet::new();
    for snap in existing.all() {
        if let Some(slots) = plan.regions.get_mut(&(snap.region.to_string(), snap.kind))
            && occupies_copy_slot(snap)
        {
            slots.in_flight += 1;
            busy.insert((snap.region.as_str(), snap.kind, source_database(snap)));
        }
    }

    // One source per (kind, identifier): the first in planning order (a sort and adjacent duplicates, not a set of
    // every source), then in planning order.
    let in_planning_order = |a: &&Snapshot, b: &&Snapshot| {
        order_key(a)
            .cmp(&order_key(b))
            .then_with(|| total_cmp(b, a))
    };
    let mut ordered: Vec<&Snapshot> = sources.iter().collect();
    ordered.sort_unstable_by(|a, b| {
        (a.kind, &a.identifier)
            .cmp(&(b.kind, &b.identifier))
            .then_with(|| in_planning_order(a, b))
    });
    ordered.dedup_by(|later, first| {
        (later.kind, &later.identifier) == (first.kind, &first.identifier)
    });
    ordered.sort_unstable_by(in_planning_order);

    let late = |source: &Snapshot, region: &str, reason: LateReason| {
        let age = now.signed_duration_since(source.created_at);
        (age > limits.deadline).then(|| LateCopy {
            source_id: source.identifier.clone(),
            database: source.database.to_string(),
            kind: source.kind,
            region: region.to_string(),
            created_at: source.created_at,
            age,
            reason,
        })
    };

    let mut needed: BTreeMap<(&str, DatabaseKind), Vec<Needed>> = BTreeMap::new();
    for source in ordered {
        if !deployment.owns(&source.tags) {
            plan.not_ours += 1;
            continue;
        }
        if is_a_copy(source) {
            plan.skipped.push(SkippedCopy {
                source: source.identifier.clone(),
                region: None,
                reason: SkipReason::IsACopy,
            });
            continue;
        }
        let Some(source_plan) = plan_for_source(policy, source) else {
            plan.skipped.push(SkippedCopy {
                source: source.identifier.clone(),
                region: None,
                reason: SkipReason::NoPlan,
            });
            continue;
        };
        for target in &source_plan.copies {
            let skip = |reason| SkippedCopy {
                source: source.identifier.clone(),
                region: Some(target.region.clone()),
                reason,
            };
            if target.region == source.region {
                plan.skipped.push(skip(SkipReason::SameRegion));
                continue;
            }
            let region = target.region.as_str();
            let first_id = target_identifier(&source.identifier, &source.region, source.kind);
            if let Some(copy) = existing.named(region, source.kind, &first_id)
                && copied_from(copy) != Some(source.arn.as_str())
            {
                plan.findings.push(CopyFinding::NameTaken {
                    database: source.database.to_string(),
                    kind: source.kind,
                    target: first_id.clone(),
                    region: region.to_string(),
                    holder: copied_from(copy).map(str::to_string),
                });
                continue;
            }
            // Every attempt at this copy: `-from-<region>`, then `-retry<n>-from-<region>`. Looked for only when
            // the first is not simply there and available and some copy of the source exists in the region.
            let first = existing.named(region, source.kind, &first_id);
            if first.is_some_and(|c| c.is_available()) {
                continue;
            }
            let mut attempts: Vec<&Snapshot> = Vec::new();
            let mut last_taken = 0;
            let any_copy =
                first.is_some() || existing.has_copy_of(region, source.kind, &source.arn);
            for attempt in (1..=MAX_COPY_ATTEMPTS).take_while(|_| any_copy) {
                let id =
                    attempt_identifier(&source.identifier, &source.region, source.kind, attempt);
                if let Some(copy) = existing.named(region, source.kind, &id) {
                    last_taken = attempt;
                    if copied_from(copy) == Some(source.arn.as_str()) {
                        attempts.push(copy);
                    }
                }
            }
            if attempts.iter().any(|c| c.is_available()) {
                continue;
            }
            let in_flight = attempts.iter().find(|c| !is_terminal_status(&c.status));
            let failed: Vec<&Snapshot> = attempts
                .iter()
                .copied()
                .filter(|c| is_failed_status(&c.status))
                .collect();
            let retry_id = in_flight.map_or_else(
                || {
                    attempt_identifier(
                        &source.identifier,
                        &source.region,
                        source.kind,
                        last_taken + 1,
                    )
                },
                |c| c.identifier.clone(),
            );
            for copy in &failed {
                plan.failed.push(FailedCopy {
                    copy: (*copy).clone(),
                    source_id: source.identifier.clone(),
                    database: source.database.to_string(),
                    deletable: deployment.owns(&copy.tags),
                    retry_id: retry_id.clone(),
                });
            }
            if let Some(copy) = in_flight {
                plan.late.extend(late(
                    source,
                    region,
                    LateReason::InFlight {
                        copy: copy.identifier.clone(),
                        status: copy.status.to_string(),
                    },
                ));
                continue;
            }
            if let Some(expires_at) = expired_at(source, now) {
                plan.skipped.push(skip(SkipReason::Expired { expires_at }));
                continue;
            }
            if copy_expiry(source.created_at, target.retain_days).is_some_and(|end| end <= now) {
                plan.skipped.push(skip(SkipReason::TooOld {
                    created_at: source.created_at,
                    retain_days: target.retain_days,
                }));
                continue;
            }
            if !source.is_available() {
                plan.skipped.push(skip(SkipReason::NotAvailable {
                    status: source.status.to_string(),
                }));
                continue;
            }
            needed
                .entry((region, source.kind))
                .or_default()
                .push(Needed {
                    source,
                    plan: source_plan,
                    target,
                    target_id: retry_id,
                    failed: failed.last().copied(),
                });
        }
    }

    for ((region, kind), copies) in needed {
        let Some(slots) = plan.regions.get_mut(&(region.to_string(), kind)) else {
            continue;
        };
        let mut free = slots.free();
        for copy in copies {
            let database = copy.source.database.as_str();
            let wait = if busy.contains(&(region, kind, database)) {
                Some(WaitReason::SameDatabase)
            } else if free == 0 {
                Some(WaitReason::Slot)
            } else {
                None
            };
            let reason = match (copy.failed, wait) {
                (Some(failed), _) => LateReason::Failed {
                    copy: failed.identifier.clone(),
                    status: failed.status.to_string(),
                },
                (None, Some(why)) => LateReason::Waiting(why),
                (None, None) => LateReason::StartingNow,
            };
            plan.late.extend(late(copy.source, region, reason));
            match wait {
                Some(waits_for) => slots.backlog.push(WaitingCopy {
                    source_id: copy.source.identifier.clone(),
                    target_id: copy.target_id,
                    kind,
                    database: database.to_string(),
                    created_at: copy.source.created_at,
                    waits_for,
                }),
                None => {
                    let planned = planned_copy(
                        policy,
                        deployment,
                        copy.plan,
                        copy.target,
                        copy.source,
                        copy.target_id,
                        now,
                    );
                    if !planned.source.encrypted {
                        plan.findings.push(CopyFinding::UnencryptedSource {
                            source: planned.source.identifier.clone(),
                            region: planned.region.clone(),
                        });
                    }
                    free -= 1;
                    busy.insert((region, kind, database));
                    slots.starting += 1;
                    plan.starts.push(planned);
                }
            }
        }
    }
    plan.findings.sort();
    plan.findings.dedup();
    plan
}

fn planned_copy(
    policy: &Policy,
    deployment: &Deployment,
    plan: &Plan,
    target: &CopyTarget,
    source: &Snapshot,
    target_id: String,
    now: DateTime<Utc>,
) -> PlannedCopy {
    PlannedCopy {
        source: source.clone(),
        region: target.region.clone(),
        target_id,
        kms_key_id: source.encrypted.then(|| target.kms_key_id.clone()),
        option_group: match source.kind {
            DatabaseKind::Instance => target.option_group.clone(),
            DatabaseKind::Cluster => None,
        },
        tags: copy_tags(policy, deployment, &plan.name, source, now),
    }
}

/// Tag keys a copy never takes from its source: a restore of the copy has not been proven (nor has it failed), and
/// a legal hold is an operator's act (a hold on the original protects its copies through retention's lineage rule;
/// no Lifeboat role may write the hold tag).
const NOT_CARRIED: [&str; 3] = [tags::VERIFIED_AT, tags::VERIFY_RESULT, tags::LEGAL_HOLD];

/// Tag keys kept first when RDS's tag limit forces a choice.
const ESSENTIAL: [&str; 11] = [
    tags::MANAGED,
    tags::DEPLOYMENT,
    tags::HOME_REGION,
    tags::POLICY,
    tags::PLAN,
    tags::SOURCE,
    tags::SOURCE_KIND,
    tags::CREATED_AT,
    tags::COPIED_FROM,
    tags::SOURCE_REGION,
    tags::COPIED_AT,
];

/// Tags for the copy of `source` made by `deployment` under `plan_name` at `now`: the source's tags (so
/// `lifeboat:created-at`, `lifeboat:source`, `lifeboat:tier` and `lifeboat:expires-at` carry over), without
/// `lifeboat:verified-at`, `lifeboat:verify-result`, `lifeboat:legal-hold` and `aws:` keys, plus the deployment's identity,
/// `lifeboat:copied-from`, `lifeboat:source-region`, `lifeboat:copied-at`, the policy and plan names. To stay
/// within RDS's limit of [`tags::MAX_TAGS_PER_RESOURCE`], user tags are dropped first, then `lifeboat:` tags
/// outside the ones Lifeboat relies on. Sorted by key.
pub fn copy_tags(
    policy: &Policy,
    deployment: &Deployment,
    plan_name: &str,
    source: &Snapshot,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let mut own: BTreeMap<String, String> = source
        .tags
        .iter()
        .filter(|(key, _)| key.starts_with("lifeboat:") && !NOT_CARRIED.contains(key))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    own.entry(tags::SOURCE.into())
        .or_insert_with(|| source.database.to_string());
    own.entry(tags::SOURCE_KIND.into())
        .or_insert_with(|| source.kind.as_str().into());
    own.entry(tags::CREATED_AT.into())
        .or_insert_with(|| rfc3339(source.created_at));
    own.extend(deployment.tags());
    for (key, value) in [
        (tags::MANAGED, tags::TRUE.to_string()),
        (tags::POLICY, policy.name.clone()),
        (tags::PLAN, plan_name.to_string()),
        (tags::COPIED_FROM, source.arn.clone()),
        (tags::SOURCE_REGION, source.region.to_string()),
        (tags::COPIED_AT, rfc3339(now)),
    ] {
        own.insert(key.into(), value);
    }

    let (essential, other_own): (Vec<_>, Vec<_>) = own
        .into_iter()
        .partition(|(key, _)| ESSENTIAL.contains(&key.as_str()));
    let user = source
        .tags
        .iter()
        .filter(|(key, _)| !tags::is_reserved_key(key))
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let mut all: Vec<(String, String)> = essential
        .into_iter()
        .chain(other_own)
        .chain(user)
        .take(tags::MAX_TAGS_PER_RESOURCE)
        .collect();
    all.sort();
    all
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.with_nanosecond(0)
        .unwrap_or(t)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    use crate::retention;

    const PRIMARY: &str = "us-east-1";
    const WEST: &str = "us-west-2";
    const EU: &str = "eu-west-1";

    fn policy() -> Policy {
        Policy::from_yaml(
            r#"
version: 1
name: test
plans:
  - name: prod
    select:
      identifiers: [db0, db1, db2, db3]
      patterns: ["prod-*"]
    retention: {keep_daily: 30}
    objectives: {rpo: 1h, rto: 4h}
    copies:
      - {region: us-west-2, kms_key_id: alias/west, retain_days: 90}
      - {region: eu-west-1, kms_key_id: "arn:aws:kms:eu-west-1:123456789012:key/eu", option_group: og-eu, retain_days: 30}
  - name: dev
    select:
      patterns: ["dev-*"]
    retention: {keep_daily: 7}
    objectives: {rpo: 1h, rto: 4h}
    copies:
      - {region: us-west-2, kms_key_id: alias/west-dev, retain_days: 7}
  - name: local
    select:
      patterns: ["local-*"]
    retention: {keep_daily: 7}
    objectives: {rpo: 1h, rto: 4h}
"#,
        )
        .unwrap()
    }

    fn deployment() -> Deployment {
        Deployment::new("lifeboat", PRIMARY).unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2026-11-22T12:00:00Z".parse().unwrap()
    }

    fn source(database: &str, age_hours: i64) -> Snapshot {
        source_at(database, now() - Duration::hours(age_hours))
    }

    #[test]
    fn an_adhoc_restores_final_snapshot_is_never_copied() {
        // Even when a plan's pattern matches the restore's name.
        let mut last = source("prod-lbrestore-x", 2);
        assert!(plan_for_source(&policy(), &last).is_some());
        last.tags
            .insert(tags::TRIGGER.into(), tags::RESTORE_EXPIRY_TRIGGER.into());
        assert!(plan_for_source(&policy(), &last).is_none());
    }

    fn source_at(database: &str, created_at: DateTime<Utc>) -> Snapshot {
        let identifier = format!("lifeboat-{database}-{}", created_at.format("%Y-%m-%d-%H%M"));
        let mut tags: BTreeMap<String, String> = [
            (tags::MANAGED, tags::TRUE),
            (tags::POLICY, "test"),
            (tags::SOURCE, database),
            (tags::TIER, "daily"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        tags.extend(deployment().tags());
        tags.insert(tags::CREATED_AT.into(), rfc3339(created_at));
        Snapshot {
            arn: format!("arn:aws:rds:{PRIMARY}:123456789012:snapshot:{identifier}"),
            identifier,
            region: PRIMARY.into(),
            kind: DatabaseKind::Instance,
            database: database.into(),
            created_at,
            status: "available".into(),
            encrypted: true,
            engine: None,
            copied_from: None,
            tags: tags.into(),
        }
    }

    /// The copy of `source` in `region` as the RDS adapter lists it there.
    fn copy_of(source: &Snapshot, region: &str, status: &str) -> Snapshot {
        let identifier = target_identifier(&source.identifier, &source.region, source.kind);
        Snapshot {
            arn: format!("arn:aws:rds:{region}:123456789012:snapshot:{identifier}"),
            identifier,
            region: region.into(),
            kind: source.kind,
            database: source.database.clone(),
            created_at: source.created_at,
            status: status.into(),
            encrypted: source.encrypted,
            engine: None,
            copied_from: Some(source.arn.clone()),
            tags: source.tags.clone(),
        }
    }

    fn run(sources: &[Snapshot], dr: &[Snapshot]) -> CopyPlan {
        plan_copies(
            &policy(),
            &deployment(),
            sources,
            dr,
            &CopyLimits::default(),
            now(),
        )
    }

    fn tag_map(copy: &PlannedCopy) -> BTreeMap<String, String> {
        copy.tags.iter().cloned().collect()
    }

    #[test]
    fn copies_go_to_every_region_of_the_plan_with_the_destination_key() {
        let src = source("db1", 2);
        let plan = run(std::slice::from_ref(&src), &[]);
        assert_eq!(plan.starts.len(), 2);
        let eu = plan.starts_in(EU).next().unwrap();
        assert_eq!(eu.target_id, format!("{}-from-us-east-1", src.identifier));
        assert_eq!(
            eu.kms_key_id.as_deref(),
            Some("arn:aws:kms:eu-west-1:123456789012:key/eu")
        );
        assert_eq!(eu.option_group.as_deref(), Some("og-eu"));
        let west = plan.starts_in(WEST).next().unwrap();
        assert_eq!(west.kms_key_id.as_deref(), Some("alias/west"));
        assert_eq!(west.option_group, None);

        let tags = tag_map(west);
        assert_eq!(tags[tags::COPIED_FROM], src.arn);
        assert_eq!(tags[tags::SOURCE_REGION], PRIMARY);
        assert_eq!(tags[tags::COPIED_AT], "2026-11-22T12:00:00Z");
        assert_eq!(
            tags[tags::CREATED_AT],
            "2026-11-22T10:00:00Z",
            "ages from the original"
        );
        assert_eq!(tags[tags::POLICY], "test");
        assert_eq!(tags[tags::PLAN], "prod", "found through the selection");
        assert_eq!(tags[tags::TIER], "daily");
        assert!(plan.findings.is_empty() && plan.skipped.is_empty());
        assert_eq!(west_slots(&plan).starting, 1);
    }

    #[test]
    fn unencrypted_source_is_copied_without_a_key_and_reported() {
        let mut src = source("db1", 2);
        src.encrypted = false;
        let plan = run(std::slice::from_ref(&src), &[]);
        assert!(plan.starts.iter().all(|c| c.kms_key_id.is_none()));
        assert_eq!(
            plan.findings,
            vec![
                CopyFinding::UnencryptedSource {
                    source: src.identifier.clone(),
                    region: EU.into()
                },
                CopyFinding::UnencryptedSource {
                    source: src.identifier.clone(),
                    region: WEST.into()
                },
            ]
        );
        assert!(plan.findings[0].to_string().contains("without a key"));
    }

    #[test]
    fn cluster_snapshots_get_no_option_group() {
        let mut src = source("db1", 2);
        src.kind = DatabaseKind::Cluster;
        let plan = run(&[src], &[]);
        assert!(plan.starts.iter().all(|c| c.option_group.is_none()));
    }

    fn west_slots(plan: &CopyPlan) -> &RegionSlots {
        plan.slots(WEST, DatabaseKind::Instance).unwrap()
    }

    #[test]
    fn slots_are_limited_and_the_oldest_go_first() {
        // Seven databases, one snapshot each; two copies of other databases in flight; 5 slots.
        let sources: Vec<Snapshot> = (0..7)
            .map(|i| source(&format!("dev-{i}"), 10 + i))
            .collect();
        let running = [
            copy_of(&source("dev-b", 1), WEST, "copying"),
            copy_of(&source("dev-c", 1), WEST, "pending"),
        ];
        let limits = CopyLimits::uniform(5);
        let plan = plan_copies(&policy(), &deployment(), &sources, &running, &limits, now());
        let west = west_slots(&plan);
        assert_eq!((west.limit, west.in_flight, west.free()), (5, 2, 3));
        let started: Vec<&str> = plan
            .starts
            .iter()
            .map(|c| c.source.identifier.as_str())
            .collect();
        let oldest: Vec<&str> = sources[4..]
            .iter()
            .rev()
            .map(|s| s.identifier.as_str())
            .collect();
        assert_eq!(started, oldest);
        assert_eq!(west.backlog.len(), 4);
        assert_eq!(west.backlog[0].source_id, sources[3].identifier);
        assert!(west.backlog.iter().all(|w| w.waits_for == WaitReason::Slot));
        assert_eq!(plan.backlog_len(), 4);

        let mut custom = CopyLimits::uniform(5);
        custom
            .regions
            .insert((WEST.to_string(), DatabaseKind::Instance), 1);
        let plan = plan_copies(&policy(), &deployment(), &sources, &running, &custom, now());
        assert!(
            plan.starts.is_empty(),
            "in flight above the limit: no start"
        );
        assert_eq!(west_slots(&plan).free(), 0);
        assert_eq!(plan.slots(EU, DatabaseKind::Instance).unwrap().limit, 5);
        assert_eq!(plan.slots(WEST, DatabaseKind::Cluster).unwrap().limit, 5);
    }

    #[test]
    fn default_limits_follow_the_rds_guide_per_kind() {
        let limits = CopyLimits::default();
        assert_eq!(limits.for_region(WEST, DatabaseKind::Instance), 20);
        assert_eq!(limits.for_region(WEST, DatabaseKind::Cluster), 5);
        assert_eq!(limits.deadline, Duration::hours(24));
        // 30 databases of each kind: 20 DB snapshot copies and 5 DB cluster snapshot copies start, counted apart.
        let mut sources = Vec::new();
        for i in 0..30 {
            sources.push(source(&format!("prod-{i:02}"), 1));
            let mut cluster = source(&format!("prod-{i:02}"), 1);
            cluster.kind = DatabaseKind::Cluster;
            sources.push(cluster);
        }
        // Three cluster snapshot copies already in flight take cluster slots only.
        let running: Vec<Snapshot> = (0..3)
            .map(|i| {
                let mut s = source(&format!("prod-x{i}"), 1);
                s.kind = DatabaseKind::Cluster;
                copy_of(&s, WEST, "copying")
            })
            .collect();
        let plan = run(&sources, &running);
        let count = |kind| {
            plan.starts_in(WEST)
                .filter(|c| c.source.kind == kind)
                .count()
        };
        assert_eq!(count(DatabaseKind::Instance), 20);
        assert_eq!(count(DatabaseKind::Cluster), 2);
        let cluster = plan.slots(WEST, DatabaseKind::Cluster).unwrap();
        assert_eq!(
            (cluster.limit, cluster.in_flight, cluster.starting),
            (5, 3, 2)
        );
        assert_eq!(west_slots(&plan).in_flight, 0);
    }

    #[test]
    fn one_copy_in_flight_per_database_and_region_the_others_fill_the_slots() {
        // db1 has four days of snapshots waiting, db0 has one copy in flight and one waiting, db2 and db3 one each.
        let mut sources: Vec<Snapshot> = (0..4).map(|d| source("db1", 100 - d)).collect();
        sources.push(source("db0", 50));
        sources.push(source("db2", 20));
        sources.push(source("db3", 10));
        let running = [copy_of(&source("db0", 60), WEST, "copying")];
        let plan = plan_copies(
            &policy(),
            &deployment(),
            &sources,
            &running,
            &CopyLimits::uniform(5),
            now(),
        );
        let started: Vec<&str> = plan
            .starts_in(WEST)
            .map(|c| c.source.identifier.as_str())
            .collect();
        // The oldest of db1, then db2 and db3: db0 waits behind its copy in flight, db1's others behind the first.
        assert_eq!(
            started,
            [
                sources[0].identifier.as_str(),
                sources[5].identifier.as_str(),
                sources[6].identifier.as_str()
            ]
        );
        let west = west_slots(&plan);
        assert_eq!((west.in_flight, west.starting), (1, 3));
        assert_eq!(west.backlog.len(), 4);
        assert!(
            west.backlog
                .iter()
                .all(|w| w.waits_for == WaitReason::SameDatabase),
            "a free slot is left free rather than queued behind the same database: {:?}",
            west.backlog
        );
        assert!(
            WaitReason::SameDatabase
                .to_string()
                .contains("one at a time per database")
        );
        // The in-flight copy's database is read from its lifeboat:source tag first.
        let mut renamed = copy_of(&source("db2", 60), WEST, "copying");
        renamed.database = "something-else".into();
        assert_eq!(source_database(&renamed), "db2");
    }

    #[test]
    fn what_takes_a_slot() {
        let mine = source("db1", 1);
        let mut foreign = copy_of(&source("other", 1), WEST, "copying");
        foreign.tags.clear();
        let mut local = foreign.clone();
        local.identifier = "made-here".into();
        local.copied_from = None;
        let mut same_region_copy = foreign.clone();
        same_region_copy.identifier = "copied-within".into();
        same_region_copy.copied_from = Some(format!("arn:aws:rds:{WEST}:123456789012:snapshot:x"));
        let dr = [
            copy_of(&mine, WEST, "copying"),
            foreign,
            local,
            same_region_copy,
            copy_of(&source("db2", 1), WEST, "deleting"),
            copy_of(&source("db3", 1), WEST, "incompatible-restore"),
            copy_of(&source("db0", 1), WEST, "something-new"),
            copy_of(&source("db0", 1), "ap-south-1", "copying"),
        ];
        let slots: Vec<bool> = dr.iter().map(occupies_copy_slot).collect();
        assert_eq!(slots, [true, true, false, false, false, false, true, true]);
        let plan = run(&[], &dr);
        assert_eq!(west_slots(&plan).in_flight, 3);
        assert!(plan.slots("ap-south-1", DatabaseKind::Instance).is_none());
    }

    #[test]
    fn an_existing_copy_in_flight_or_available_means_done() {
        let src = source("db1", 1);
        for status in ["copying", "available", "creating", "pending"] {
            let plan = run(
                std::slice::from_ref(&src),
                &[copy_of(&src, WEST, status), copy_of(&src, EU, status)],
            );
            assert!(plan.starts.is_empty(), "{status}");
            assert!(
                plan.findings.is_empty() && plan.failed.is_empty(),
                "{status}"
            );
        }
        let mut other_kind = copy_of(&src, WEST, "available");
        other_kind.kind = DatabaseKind::Cluster;
        assert_eq!(
            run(&[src], &[other_kind]).starts.len(),
            2,
            "kinds are separate names"
        );
    }

    #[test]
    fn a_failed_copy_never_counts_as_done_and_is_retried_under_a_new_name() {
        let src = source("db1", 1);
        let retry2 = attempt_identifier(&src.identifier, PRIMARY, DatabaseKind::Instance, 2);
        assert_eq!(retry2, format!("{}-retry2-from-{PRIMARY}", src.identifier));
        for status in [
            "failed",
            "error",
            "incompatible-parameters",
            "incompatible-restore",
        ] {
            let failed = copy_of(&src, WEST, status);
            let plan = run(std::slice::from_ref(&src), std::slice::from_ref(&failed));
            let west: Vec<&str> = plan.starts_in(WEST).map(|c| c.target_id.as_str()).collect();
            assert_eq!(west, [retry2.as_str()], "{status}");
            assert_eq!(
                plan.failed,
                [FailedCopy {
                    copy: failed.clone(),
                    source_id: src.identifier.clone(),
                    database: "db1".into(),
                    deletable: true,
                    retry_id: retry2.clone(),
                }],
                "{status}"
            );
            assert_eq!(
                west_slots(&plan).in_flight,
                0,
                "a failed copy holds no slot"
            );
        }

        // The retry in flight is the copy: nothing starts; the failed one is still reported (to delete).
        let failed = copy_of(&src, WEST, "failed");
        let mut in_flight = copy_of(&src, WEST, "copying");
        in_flight.identifier = retry2.clone();
        let plan = run(
            std::slice::from_ref(&src),
            &[
                failed.clone(),
                in_flight.clone(),
                copy_of(&src, EU, "available"),
            ],
        );
        assert!(plan.starts.is_empty(), "{:?}", plan.starts);
        assert_eq!(plan.failed.len(), 1);
        assert_eq!(plan.failed[0].retry_id, retry2);
        // Once the failed copy is being deleted and the retry is done, all is quiet.
        let mut deleting = failed.clone();
        deleting.status = "deleting".into();
        let mut done = in_flight.clone();
        done.status = "available".into();
        let plan = run(
            std::slice::from_ref(&src),
            &[deleting.clone(), done, copy_of(&src, EU, "available")],
        );
        assert!(plan.starts.is_empty() && plan.failed.is_empty() && plan.late.is_empty());
        // The retry failed too: the third attempt, never a name that exists.
        let mut failed2 = in_flight.clone();
        failed2.status = "failed".into();
        let plan = run(
            std::slice::from_ref(&src),
            &[deleting, failed2, copy_of(&src, EU, "available")],
        );
        assert_eq!(
            plan.starts[0].target_id,
            attempt_identifier(&src.identifier, PRIMARY, DatabaseKind::Instance, 3)
        );
        assert_eq!(plan.failed.len(), 1);

        // Another deployment's failed copy of it is reported, not deletable; the retry still goes ahead.
        let mut foreign = copy_of(&src, WEST, "failed");
        foreign.tags.remove(tags::MANAGED);
        let plan = run(std::slice::from_ref(&src), &[foreign]);
        assert!(!plan.failed[0].deletable);
        assert_eq!(plan.starts_in(WEST).count(), 1);
    }

    #[test]
    fn retry_names_stay_within_rds_limits() {
        let long = format!("lifeboat-{}-2026-11-22-0200", "c".repeat(60));
        for attempt in [1, 2, 17] {
            let id = attempt_identifier(&long, PRIMARY, DatabaseKind::Cluster, attempt);
            assert!(id.len() <= 63, "{id}");
            assert!(id.ends_with(&format!("-from-{PRIMARY}")), "{id}");
            if attempt > 1 {
                assert!(
                    id.ends_with(&format!("-retry{attempt}-from-{PRIMARY}")),
                    "{id}"
                );
            }
        }
    }

    #[test]
    fn recovery_points_past_the_copy_deadline_are_late_with_the_reason() {
        let limits = CopyLimits::uniform(2);
        let fresh = source("db0", 23);
        let waiting = source("db1", 30);
        let starting = source("db2", 40);
        let flying = source("db3", 26);
        let failed_src = source("prod-a", 25);
        let dr = [
            copy_of(&flying, WEST, "copying"),
            copy_of(&flying, EU, "available"),
            copy_of(&failed_src, WEST, "failed"),
            copy_of(&failed_src, EU, "available"),
        ];
        let sources = [
            fresh.clone(),
            waiting.clone(),
            starting.clone(),
            flying.clone(),
            failed_src.clone(),
        ];
        let plan = plan_copies(&policy(), &deployment(), &sources, &dr, &limits, now());
        let west: BTreeMap<&str, &LateReason> = plan
            .late
            .iter()
            .filter(|l| l.region == WEST)
            .map(|l| (l.database.as_str(), &l.reason))
            .collect();
        // Within the deadline: never late, whatever it waits for.
        assert!(!west.contains_key("db0"));
        assert_eq!(west["db2"], &LateReason::StartingNow, "{west:?}");
        // One slot taken (db3 in flight), one free for the oldest (db2): db1 waits, prod-a's retry waits.
        assert_eq!(west["db1"], &LateReason::Waiting(WaitReason::Slot));
        assert_eq!(
            west["db3"],
            &LateReason::InFlight {
                copy: format!("{}-from-{PRIMARY}", flying.identifier),
                status: "copying".into()
            }
        );
        assert!(matches!(west["prod-a"], LateReason::Failed { status, .. } if status == "failed"));
        let late = plan
            .late
            .iter()
            .find(|l| l.database == "db1" && l.region == WEST)
            .unwrap();
        assert_eq!(late.age, Duration::hours(30));
        assert!(late.reason.to_string().contains("free copy slot"));
        // A longer deadline: nothing is late.
        let patient = CopyLimits::uniform(2).with_deadline(Duration::hours(48));
        let plan = plan_copies(&policy(), &deployment(), &sources, &dr, &patient, now());
        assert!(plan.late.is_empty(), "{:?}", plan.late);
    }

    #[test]
    fn old_sources_are_copied_only_where_retention_would_keep_them() {
        let src = source("db1", 40 * 24);
        let plan = run(std::slice::from_ref(&src), &[]);
        assert_eq!(plan.starts.len(), 1);
        assert_eq!(plan.starts[0].region, WEST);
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.skipped[0].region.as_deref(), Some(EU));
        assert!(matches!(
            plan.skipped[0].reason,
            SkipReason::TooOld {
                retain_days: 30,
                ..
            }
        ));
        assert!(plan.skipped[0].reason.to_string().contains("30 days"));
        let boundary = source("db1", 30 * 24);
        let plan = run(&[boundary], &[]);
        assert_eq!(plan.starts.len(), 1, "exactly retain_days old: expired");
    }

    #[test]
    fn unavailable_sources_wait_with_their_status() {
        let mut src = source("db1", 1);
        src.status = "creating".into();
        let plan = run(&[src], &[]);
        assert!(plan.starts.is_empty());
        assert_eq!(plan.skipped.len(), 2);
        assert!(plan.skipped.iter().all(|s| s.reason
            == SkipReason::NotAvailable {
                status: "creating".into()
            }));
        assert!(plan.skipped[0].reason.to_string().contains("`creating`"));
    }

    #[test]
    fn plan_comes_from_the_tag_then_the_selection() {
        let mut tagged = source("anything", 1);
        tagged.tags.insert(tags::PLAN.into(), "dev".into());
        let mut renamed = source("prod-x", 1);
        renamed.tags.insert(tags::PLAN.into(), "gone".into());
        let stray = source("stray", 1);
        let mut unmanaged = source("db1", 1);
        unmanaged.tags.remove(tags::MANAGED);
        let local = source("local-1", 1);
        let plan = run(
            &[
                tagged.clone(),
                renamed.clone(),
                stray.clone(),
                unmanaged,
                local,
            ],
            &[],
        );
        let started: BTreeSet<(&str, &str)> = plan
            .starts
            .iter()
            .map(|c| (c.source.database.as_str(), c.region.as_str()))
            .collect();
        assert_eq!(
            started,
            [("anything", WEST), ("prod-x", WEST), ("prod-x", EU)].into()
        );
        assert_eq!(
            plan.starts_in(WEST)
                .find(|c| c.source == tagged)
                .unwrap()
                .kms_key_id
                .as_deref(),
            Some("alias/west-dev")
        );
        assert_eq!(
            tag_map(plan.starts_in(EU).next().unwrap())[tags::PLAN],
            "prod"
        );
        assert_eq!(plan.not_ours, 1);
        assert_eq!(plan.skipped.len(), 1, "a plan without copies needs none");
        assert_eq!(plan.skipped[0].source, stray.identifier);
        assert_eq!(plan.skipped[0].reason, SkipReason::NoPlan);
    }

    /// The copy `plan` would make of `source` in `region`, as the RDS adapter lists it there once finished: its
    /// `created_at` read back from the `lifeboat:created-at` tag it was given.
    fn listed_copy(source: &Snapshot, region: &str) -> Snapshot {
        let tags: BTreeMap<String, String> =
            copy_tags(&policy(), &deployment(), "prod", source, now())
                .into_iter()
                .collect();
        Snapshot {
            created_at: tags[tags::CREATED_AT].parse().unwrap(),
            tags: tags.into(),
            ..copy_of(source, region, "available")
        }
    }

    #[test]
    fn too_old_uses_the_boundary_of_dr_retention() {
        let policy = policy();
        let prod = policy.plans.iter().find(|p| p.name == "prod").unwrap();
        let context = retention::Context {
            database_exists: true,
            ..retention::Context::default()
        };
        for target in &prod.copies {
            let window = Duration::days(i64::from(target.retain_days));
            let rules = retention::Rules::copies(target, &prod.retention);
            // The same rules without the floors that keep a lone snapshot whatever its age: only age decides.
            let age_only = retention::Rules {
                min_count: 0,
                max_delete_fraction: 1.0,
                ..rules.clone()
            };
            for (age, inside) in [
                (window - Duration::seconds(1), true),
                (window, false),
                (window + Duration::seconds(1), false),
            ] {
                let src = source_at("db1", now() - age);
                let plan = run(std::slice::from_ref(&src), &[]);
                let copied = plan.starts_in(&target.region).next().is_some();
                let too_old = plan.skipped.iter().any(|s| {
                    s.region.as_deref() == Some(target.region.as_str())
                        && matches!(s.reason, SkipReason::TooOld { .. })
                });
                assert_eq!(copied, inside, "{} at age {age}", target.region);
                assert_eq!(too_old, !inside, "{} at age {age}", target.region);

                let copy = listed_copy(&src, &target.region);
                assert_eq!(copy.created_at, src.created_at, "ages from the original");
                let kept = retention::plan(std::slice::from_ref(&copy), &rules, &context, now());
                assert_eq!(
                    kept.decisions[0]
                        .keep
                        .contains(&retention::KeepReason::Within),
                    copied,
                    "{} at age {age}: retention's window and the planner's agree",
                    target.region
                );
                let age_only = retention::plan(&[copy], &age_only, &context, now());
                assert_eq!(
                    age_only.deletions().is_empty(),
                    copied,
                    "{} at age {age}: a copy is made exactly when retention would keep it",
                    target.region
                );
            }
        }
    }

    #[test]
    fn copies_are_never_copied_on() {
        let reported = {
            let mut s = source("db1", 1);
            s.copied_from = Some(format!(
                "arn:aws:rds:{WEST}:123456789012:snapshot:{}",
                s.identifier
            ));
            s
        };
        let tagged = {
            let mut s = source("db2", 1);
            s.tags.insert(
                tags::COPIED_FROM.into(),
                "arn:aws:rds:eu-west-1:123456789012:snapshot:x".into(),
            );
            s
        };
        let mut unmanaged = reported.clone();
        unmanaged.identifier = "someone-elses-copy".into();
        unmanaged.tags.remove(tags::MANAGED);
        let mut empty_source = source("db3", 1);
        empty_source.copied_from = Some(String::new());

        let plan = run(
            &[
                reported.clone(),
                tagged.clone(),
                unmanaged,
                empty_source.clone(),
            ],
            &[],
        );
        assert!(plan.starts.iter().all(|c| c.source == empty_source));
        assert_eq!(plan.starts.len(), 2, "an empty reported source is no copy");
        assert_eq!(plan.not_ours, 1);
        let skipped: Vec<(&str, Option<&str>, &SkipReason)> = plan
            .skipped
            .iter()
            .map(|s| (s.source.as_str(), s.region.as_deref(), &s.reason))
            .collect();
        assert_eq!(
            skipped,
            [
                (reported.identifier.as_str(), None, &SkipReason::IsACopy),
                (tagged.identifier.as_str(), None, &SkipReason::IsACopy)
            ]
        );
        assert!(plan.skipped[0].reason.to_string().contains("itself a copy"));
        assert!(is_a_copy(&reported) && is_a_copy(&tagged) && !is_a_copy(&empty_source));
    }

    #[test]
    fn expired_manual_snapshots_are_not_copied() {
        let manual = |database: &str, expires_at: Option<DateTime<Utc>>| {
            let mut s = source(database, 1);
            s.tags.insert(tags::TIER.into(), tags::MANUAL_TIER.into());
            if let Some(at) = expires_at {
                s.tags.insert(tags::EXPIRES_AT.into(), rfc3339(at));
            }
            s
        };
        let expired = manual("db0", Some(now()));
        let expiring = manual("db1", Some(now() + Duration::seconds(1)));
        let forever = manual("db2", None);
        let mut scheduled = source("db3", 1);
        scheduled
            .tags
            .insert(tags::EXPIRES_AT.into(), rfc3339(now() - Duration::days(1)));

        let plan = run(
            &[
                expired.clone(),
                expiring.clone(),
                forever.clone(),
                scheduled.clone(),
            ],
            &[],
        );
        let copied: BTreeSet<&str> = plan
            .starts
            .iter()
            .map(|c| c.source.database.as_str())
            .collect();
        assert_eq!(copied, ["db1", "db2", "db3"].into());
        assert_eq!(plan.starts.len(), 6);
        assert_eq!(plan.skipped.len(), 2, "one per DR region");
        for skip in &plan.skipped {
            assert_eq!(skip.source, expired.identifier);
            assert_eq!(skip.reason, SkipReason::Expired { expires_at: now() });
        }
        assert!(
            plan.skipped[0]
                .reason
                .to_string()
                .contains("expired 2026-11-22T12:00:00Z")
        );

        // An expired source whose copy exists is done, not reported.
        let plan = run(
            std::slice::from_ref(&expired),
            &[
                copy_of(&expired, WEST, "available"),
                copy_of(&expired, EU, "available"),
            ],
        );
        assert!(plan.starts.is_empty() && plan.skipped.is_empty());

        // Retention draws the same line: the copy of `expiring` is kept as an unexpired manual snapshot, the copy
        // of `expired` is not.
        let prod = policy()
            .plans
            .into_iter()
            .find(|p| p.name == "prod")
            .unwrap();
        let rules = retention::Rules::copies(&prod.copies[0], &prod.retention);
        let context = retention::Context {
            database_exists: true,
            ..retention::Context::default()
        };
        for (src, kept) in [(&expired, false), (&expiring, true)] {
            let copy = listed_copy(src, WEST);
            let plan = retention::plan(&[copy], &rules, &context, now());
            assert_eq!(
                plan.decisions[0]
                    .keep
                    .contains(&retention::KeepReason::ManualNotExpired),
                kept
            );
        }
    }

    #[test]
    fn the_source_region_is_never_a_target() {
        let mut src = source("db1", 1);
        src.region = WEST.into();
        let plan = run(&[src], &[]);
        assert_eq!(plan.starts.len(), 1);
        assert_eq!(plan.skipped[0].reason, SkipReason::SameRegion);
    }

    #[test]
    fn duplicates_change_nothing_and_far_future_times_do_not_overflow() {
        let src = source("db1", 1);
        let copy = copy_of(&src, WEST, "copying");
        let once = run(std::slice::from_ref(&src), std::slice::from_ref(&copy));
        let twice = run(&[src.clone(), src.clone()], &[copy.clone(), copy]);
        assert_eq!(once, twice);
        let mut future = src;
        future.created_at = DateTime::<Utc>::MAX_UTC;
        assert_eq!(run(&[future], &[]).starts.len(), 2);
    }

    #[test]
    fn only_this_deployments_snapshots_are_copied() {
        let mine = source("db1", 2);
        let mut theirs = source("db2", 2);
        theirs
            .tags
            .extend(Deployment::new("lifeboat-other", PRIMARY).unwrap().tags());
        let mut same_name_other_region = source("db3", 2);
        same_name_other_region
            .tags
            .insert(tags::HOME_REGION.into(), WEST.into());
        let plan = run(&[mine.clone(), theirs, same_name_other_region], &[]);
        assert!(plan.starts.iter().all(|c| c.source == mine));
        assert_eq!(plan.not_ours, 2);
    }

    #[test]
    fn a_copy_is_done_only_when_it_was_copied_from_this_very_source() {
        let src = source("db1", 2);
        // The copy of another snapshot holds the name in us-west-2 (an overlapping deployment); its own copy in
        // eu-west-1 is the real one.
        let mut impostor = copy_of(&src, WEST, "available");
        impostor.copied_from = Some(format!(
            "arn:aws:rds:{PRIMARY}:210987654321:snapshot:{}",
            src.identifier
        ));
        impostor.tags.remove(tags::COPIED_FROM);
        let real = copy_of(&src, EU, "available");
        let plan = run(std::slice::from_ref(&src), &[impostor, real]);
        assert!(plan.starts.is_empty(), "{:?}", plan.starts);
        assert_eq!(
            plan.findings,
            [CopyFinding::NameTaken {
                database: "db1".into(),
                kind: DatabaseKind::Instance,
                target: format!("{}-from-{PRIMARY}", src.identifier),
                region: WEST.into(),
                holder: Some(format!(
                    "arn:aws:rds:{PRIMARY}:210987654321:snapshot:{}",
                    src.identifier
                )),
            }]
        );
        assert!(
            plan.findings[0]
                .to_string()
                .contains("narrow one policy's selection")
        );
    }

    #[test]
    fn opposite_directions_never_mistake_an_original_for_a_copy() {
        // The us-west-2 deployment's own original of a database of the same name, with the same schedule name.
        let east = source("db1", 2);
        let west_deployment = Deployment::new("lifeboat", WEST).unwrap();
        let mut west_original = east.clone();
        west_original.region = WEST.into();
        west_original.arn = format!(
            "arn:aws:rds:{WEST}:123456789012:snapshot:{}",
            east.identifier
        );
        west_original.tags.extend(west_deployment.tags());
        let plan = run(std::slice::from_ref(&east), &[west_original]);
        assert_eq!(
            plan.starts_in(WEST)
                .map(|c| c.target_id.as_str())
                .collect::<Vec<_>>(),
            [format!("{}-from-{PRIMARY}", east.identifier)]
        );
        assert!(plan.findings.is_empty());
    }

    #[test]
    fn tags_respect_the_limit_and_drop_user_tags_first() {
        let mut src = source("db1", 1);
        for i in 0..60 {
            src.tags.insert(format!("user-{i:02}"), "v".into());
        }
        src.tags
            .insert(tags::VERIFIED_AT.into(), "2026-11-21T00:00:00Z".into());
        src.tags
            .insert(tags::EXPIRES_AT.into(), "2027-02-20T00:00:00Z".into());
        src.tags.insert(tags::LEGAL_HOLD.into(), "true".into());
        src.tags
            .insert("aws:backup:source-resource".into(), "x".into());
        let tags = copy_tags(&policy(), &deployment(), "prod", &src, now());
        assert_eq!(tags.len(), tags::MAX_TAGS_PER_RESOURCE);
        let map: BTreeMap<_, _> = tags.iter().cloned().collect();
        for key in ESSENTIAL.iter().chain(&[tags::EXPIRES_AT, tags::TIER]) {
            assert!(map.contains_key(*key), "{key}");
        }
        assert!(!map.contains_key(tags::VERIFIED_AT));
        assert!(
            !map.contains_key(tags::LEGAL_HOLD),
            "holds are an operator's act; lineage carries them"
        );
        assert_eq!(map[tags::DEPLOYMENT], "lifeboat");
        assert_eq!(map[tags::HOME_REGION], PRIMARY);
        assert!(!map.keys().any(|k| k.starts_with("aws:")));
        assert!(map.contains_key("user-00") && !map.contains_key("user-59"));
    }

    #[test]
    fn created_at_tag_falls_back_to_the_resolved_time() {
        let mut src = source("db1", 5);
        src.tags.remove(tags::CREATED_AT);
        src.tags.remove(tags::SOURCE);
        let map: BTreeMap<_, _> = copy_tags(&policy(), &deployment(), "prod", &src, now())
            .into_iter()
            .collect();
        assert_eq!(map[tags::CREATED_AT], "2026-11-22T07:00:00Z");
        assert_eq!(map[tags::SOURCE], "db1");
        assert_eq!(map[tags::SOURCE_KIND], "instance");
    }

    // Properties over random fleets: a small name space so targets, in-flight copies and duplicates collide.

    const STATUSES: [&str; 9] = [
        "available",
        "available",
        "copying",
        "creating",
        "pending",
        "failed",
        "deleting",
        "incompatible-restore",
        "weird",
    ];
    const DATABASES: [&str; 6] = ["db0", "db1", "prod-x", "dev-a", "stray", "local-1"];

    /// How a source is a copy: not at all, by what RDS reports (a real or an empty source), or by its tag.
    #[derive(Debug, Clone, Copy)]
    enum Copied {
        No,
        Reported,
        ReportedEmpty,
        Tagged,
    }

    fn arb_source() -> impl Strategy<Value = Snapshot> {
        (
            (
                0usize..DATABASES.len(),
                0i64..3,
                any::<bool>(),
                prop::sample::select(STATUSES.to_vec()),
                any::<bool>(),
                0i64..100 * 24,
            ),
            prop::option::of(prop::sample::select(vec!["prod", "dev", "local", "gone"])),
            prop::bool::weighted(0.9),
            prop::sample::select(vec![
                Copied::No,
                Copied::No,
                Copied::No,
                Copied::No,
                Copied::No,
                Copied::No,
                Copied::No,
                Copied::Reported,
                Copied::ReportedEmpty,
                Copied::Tagged,
            ]),
            // Manual, expiring that many hours from now (or never).
            prop::option::weighted(0.2, prop::option::of(-48i64..48)),
        )
            .prop_map(
                |((db, n, cluster, status, encrypted, age), plan, managed, copied, manual)| {
                    let mut s = source(DATABASES[db], 1 + n + age);
                    s.kind = if cluster {
                        DatabaseKind::Cluster
                    } else {
                        DatabaseKind::Instance
                    };
                    s.status = status.into();
                    s.encrypted = encrypted;
                    if let Some(plan) = plan {
                        s.tags.insert(tags::PLAN.into(), plan.into());
                    }
                    if !managed {
                        s.tags.remove(tags::MANAGED);
                    }
                    let elsewhere =
                        format!("arn:aws:rds:{WEST}:123456789012:snapshot:{}", s.identifier);
                    match copied {
                        Copied::No => {}
                        Copied::Reported => s.copied_from = Some(elsewhere),
                        Copied::ReportedEmpty => s.copied_from = Some(String::new()),
                        Copied::Tagged => {
                            s.tags.insert(tags::COPIED_FROM.into(), elsewhere);
                        }
                    }
                    if let Some(expiry) = manual {
                        s.tags.insert(tags::TIER.into(), tags::MANUAL_TIER.into());
                        if let Some(hours) = expiry {
                            s.tags.insert(
                                tags::EXPIRES_AT.into(),
                                rfc3339(now() + Duration::hours(hours)),
                            );
                        }
                    }
                    s
                },
            )
    }

    fn arb_dr(sources: Vec<Snapshot>) -> impl Strategy<Value = Vec<Snapshot>> {
        let n = sources.len().max(1);
        prop::collection::vec(
            (
                0..n,
                prop::sample::select(vec![WEST, EU, "ap-south-1"]),
                prop::sample::select(STATUSES.to_vec()),
                any::<bool>(),
                any::<bool>(),
            ),
            0..12,
        )
        .prop_map(move |picks| {
            let mut seen = BTreeSet::new();
            picks
                .into_iter()
                .map(|(i, region, status, managed, foreign)| {
                    let mut snap = match sources.get(i) {
                        Some(s) => copy_of(s, region, status),
                        None => copy_of(&source("other", 1), region, status),
                    };
                    if foreign {
                        snap.identifier = format!("{}-foreign", snap.identifier);
                    }
                    if !managed {
                        snap.tags.remove(tags::MANAGED);
                        snap.copied_from = None;
                    }
                    snap
                })
                .filter(|snap| {
                    seen.insert((snap.region.clone(), snap.kind, snap.identifier.clone()))
                })
                .collect()
        })
    }

    fn arb_fleet() -> impl Strategy<Value = (Vec<Snapshot>, Vec<Snapshot>, usize)> {
        // One snapshot per (kind, identifier), as in RDS.
        let unique = prop::collection::vec(arb_source(), 0..16).prop_map(|sources| {
            let mut seen = BTreeSet::new();
            sources
                .into_iter()
                .filter(|s| seen.insert((s.kind, s.identifier.clone())))
                .collect::<Vec<_>>()
        });
        unique.prop_flat_map(|sources| (Just(sources.clone()), arb_dr(sources), 0usize..7))
    }

    /// What needs copying, computed independently of the planner: (region, kind, target id).
    fn needed(sources: &[Snapshot], dr: &[Snapshot]) -> BTreeSet<(String, DatabaseKind, String)> {
        let policy = policy();
        let mut out = BTreeSet::new();
        for s in sources
            .iter()
            .filter(|s| deployment().owns(&s.tags) && s.status == "available")
            .filter(|s| {
                s.copied_from.as_ref().is_none_or(String::is_empty)
                    && !s.tags.contains_key(tags::COPIED_FROM)
            })
            .filter(|s| {
                s.tags.get(tags::TIER) != Some(tags::MANUAL_TIER)
                    || s.tags
                        .get(tags::EXPIRES_AT)
                        .is_none_or(|e| e.parse::<DateTime<Utc>>().unwrap() > now())
            })
        {
            let Some(plan) = plan_for_source(&policy, s) else {
                continue;
            };
            for t in &plan.copies {
                let first = format!("{}-from-{}", s.identifier, s.region);
                let found = dr
                    .iter()
                    .find(|d| d.region == t.region && d.kind == s.kind && d.identifier == first);
                // A copy of it in flight or available is done, a snapshot of that name copied from anything else
                // blocks it; a failed (or vanishing) copy of it is retried under the second attempt's name.
                let (blocked, target) = match found {
                    None => (false, first),
                    Some(d) => {
                        let ours = d.copied_from.as_deref() == Some(s.arn.as_str());
                        let live = !["failed", "incompatible-restore", "deleting"]
                            .contains(&d.status.as_str());
                        (
                            !ours || live,
                            format!("{}-retry2-from-{}", s.identifier, s.region),
                        )
                    }
                };
                let young = s.created_at + Duration::days(i64::from(t.retain_days)) > now();
                if !blocked && young && t.region != s.region {
                    out.insert((t.region.clone(), s.kind, target));
                }
            }
        }
        out
    }

    proptest! {
        #[test]
        fn starts_stay_within_free_slots_and_cover_every_need(
            (sources, dr, limit) in arb_fleet(),
        ) {
            let limits = CopyLimits::uniform(limit);
            let plan = plan_copies(&policy(), &deployment(), &sources, &dr, &limits, now());
            for ((region, kind), slots) in &plan.regions {
                let occupying: BTreeMap<&str, &str> = dr
                    .iter()
                    .filter(|d| d.region == region && d.kind == *kind)
                    .filter(|d| !["available", "failed", "deleting", "incompatible-restore"].contains(&d.status.as_str()))
                    .filter(|d| d.is_managed() || d.copied_from.is_some() || d.tags.contains_key(tags::COPIED_FROM))
                    .map(|d| (d.identifier.as_str(), d.tags.get(tags::SOURCE).unwrap_or(&d.database)))
                    .collect();
                prop_assert_eq!(slots.in_flight, occupying.len());
                prop_assert_eq!(slots.limit, limit);
                let busy: BTreeSet<&str> = occupying.values().copied().collect();
                let started: Vec<&PlannedCopy> = plan
                    .starts_in(region)
                    .filter(|c| c.source.kind == *kind)
                    .collect();
                prop_assert_eq!(started.len(), slots.starting);
                // Never over the per-kind limit.
                prop_assert!(started.len() <= limit.saturating_sub(occupying.len()));
                // Never more than one copy in flight per database and destination.
                let mut starting: BTreeSet<&str> = BTreeSet::new();
                for copy in &started {
                    let database = copy.source.database.as_str();
                    prop_assert!(!busy.contains(database), "{} already has a copy in flight", database);
                    prop_assert!(starting.insert(database), "two copies of {} started", database);
                }
                // Every free slot is used while an eligible copy (of a database with none in flight) waits.
                let eligible = |w: &WaitingCopy| {
                    !busy.contains(w.database.as_str()) && !starting.contains(w.database.as_str())
                };
                if slots.backlog.iter().any(eligible) {
                    prop_assert_eq!(started.len(), slots.free());
                }
                for waiting in &slots.backlog {
                    let expected = if eligible(waiting) { WaitReason::Slot } else { WaitReason::SameDatabase };
                    prop_assert_eq!(waiting.waits_for, expected);
                }
                // Oldest first among the eligible: every start is older than every copy waiting for a slot.
                if let (Some(last), Some(next)) = (
                    started.last(),
                    slots.backlog.iter().find(|w| w.waits_for == WaitReason::Slot),
                ) {
                    prop_assert!(order_key(&last.source) < (next.created_at, next.source_id.as_str(), next.kind));
                }
                for pair in slots.backlog.windows(2) {
                    prop_assert!((pair[0].created_at, &pair[0].source_id, pair[0].kind) < (pair[1].created_at, &pair[1].source_id, pair[1].kind));
                }
            }
            let want = needed(&sources, &dr);
            let mut got = BTreeSet::new();
            for copy in &plan.starts {
                prop_assert!(!dr.iter().any(|d| d.region == copy.region && d.kind == copy.source.kind && d.identifier == copy.target_id));
                prop_assert!(got.insert((copy.region.clone(), copy.source.kind, copy.target_id.clone())), "planned twice");
                prop_assert!(
                    [format!("{}-from-{}", copy.source.identifier, copy.source.region),
                     format!("{}-retry2-from-{}", copy.source.identifier, copy.source.region)]
                        .contains(&copy.target_id),
                    "{}", copy.target_id
                );
                prop_assert!(copy.tags.len() <= tags::MAX_TAGS_PER_RESOURCE);
            }
            for ((region, _), slots) in &plan.regions {
                for waiting in &slots.backlog {
                    prop_assert!(!dr.iter().any(|d| d.region == region && d.kind == waiting.kind && d.identifier == waiting.target_id));
                    prop_assert!(got.insert((region.clone(), waiting.kind, waiting.target_id.clone())), "planned twice");
                }
            }
            prop_assert_eq!(got, want);
        }

        #[test]
        fn keys_come_from_the_destination_and_unencrypted_copies_are_reported(
            (sources, dr, limit) in arb_fleet(),
        ) {
            let policy = policy();
            let plan = plan_copies(&policy, &deployment(), &sources, &dr, &CopyLimits::uniform(limit), now());
            for copy in &plan.starts {
                let target = plan_for_source(&policy, &copy.source)
                    .and_then(|p| p.copies.iter().find(|c| c.region == copy.region))
                    .unwrap();
                if copy.source.encrypted {
                    prop_assert_eq!(copy.kms_key_id.as_ref(), Some(&target.kms_key_id));
                } else {
                    prop_assert_eq!(copy.kms_key_id.as_ref(), None);
                    let finding = CopyFinding::UnencryptedSource {
                        source: copy.source.identifier.clone(),
                        region: copy.region.clone(),
                    };
                    prop_assert!(plan.findings.contains(&finding));
                }
                let tags: BTreeMap<_, _> = copy.tags.iter().cloned().collect();
                prop_assert_eq!(&tags[tags::COPIED_FROM], &copy.source.arn);
                prop_assert_eq!(tags[tags::CREATED_AT].as_str(), copy.source.tags.get(tags::CREATED_AT).unwrap());
            }
        }

        #[test]
        fn the_plan_does_not_depend_on_input_order(
            ((sources, dr, limit), seed) in (arb_fleet(), any::<u64>()),
        ) {
            let limits = CopyLimits::uniform(limit);
            let plan = plan_copies(&policy(), &deployment(), &sources, &dr, &limits, now());
            let mut shuffled_sources = sources.clone();
            let mut shuffled_dr = dr.clone();
            shuffle(&mut shuffled_sources, seed);
            shuffle(&mut shuffled_dr, seed.rotate_left(17));
            shuffled_sources.extend(sources.first().cloned());
            let again = plan_copies(&policy(), &deployment(), &shuffled_sources, &shuffled_dr, &limits, now());
            prop_assert_eq!(plan, again);
        }
    }

    /// Fisher–Yates with a small LCG: deterministic for a seed.
    fn shuffle<T>(items: &mut [T], seed: u64) {
        let mut state = seed | 1;
        for i in (1..items.len()).rev() {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let j = (state >> 33) as usize % (i + 1);
            items.swap(i, j);
        }
    }
}
