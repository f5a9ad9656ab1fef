//! Retention planning (pure): which snapshots of one database in one region to keep, by which rule or safety
//! floor, and which to delete.
//!
//! Duration rules (`daily: 30d`, `weekly: 12w`, `monthly: 12m`, `yearly: 7y`) keep each period's recovery point
//! for that long after it was taken. Periods follow the plan's tier calendar ([`TierCalendar::period_start`]): the
//! UTC day, the 7 days from `weekly_on`, the month from `monthly_on_day`, the year from `monthly_on_day` of
//! `yearly_in_month`. A period's recovery point is its earliest scheduled snapshot labelled with the tier in
//! `lifeboat:tier`, or, when the tier day was missed, its earliest scheduled snapshot: the snapshot a label names
//! is the one kept, and a missed Sunday still leaves a weekly.
//!
//! Count rules follow restic `forget` and borg `prune`: walking the scheduled snapshots newest first, the first
//! snapshot of each day (ISO week, month, year) is the newest of its bucket; `keep_daily: N` keeps those of the N
//! newest days that have a snapshot, and so on. `keep_within` keeps everything younger than a duration measured
//! back from the planning time. Manual snapshots are kept until their own `lifeboat:expires-at` and take no
//! period's or bucket's place. Everything is decided from creation times, tags and the policy at planning time,
//! so the same inputs always give the same plan, whatever their order.
//!
//! Safety floors override every rule: a snapshot Lifeboat does not manage, one under legal hold (or whose original
//! or one of whose copies is, see [`held_lineages`]), one RDS has not finished (or is copying from), the newest
//! verified recovery point, the newest recovery point of a database that no longer exists, and the newest
//! `min_count` snapshots are never deleted. A plan that would delete more than `max_delete_fraction` of a
//! database's snapshots is refused as a whole.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Database, DatabaseKind, Snapshot};
use crate::ownership::{Deployment, Owner};
use crate::policy::{CalendarDuration, CopyTarget, Policy, Retention, Tier, TierCalendar};
use crate::tags;

/// Maps a creation time to its calendar bucket (day, ISO week, month or year).
type BucketOf = fn(DateTime<Utc>) -> (i32, u32, u32);

/// The rules that keep snapshots of one database in one region.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Keep each day's recovery point this long.
    pub daily: Option<CalendarDuration>,
    /// Keep each week's recovery point this long.
    pub weekly: Option<CalendarDuration>,
    /// Keep each month's recovery point this long.
    pub monthly: Option<CalendarDuration>,
    /// Keep each year's recovery point this long.
    pub yearly: Option<CalendarDuration>,
    /// Where the weeks, months and years of the duration rules start.
    pub calendar: TierCalendar,
    /// Newest snapshot of each of the last N days that have one.
    pub keep_daily: u32,
    /// … of each of the last N ISO weeks.
    pub keep_weekly: u32,
    /// … of each of the last N months.
    pub keep_monthly: u32,
    /// … of each of the last N years.
    pub keep_yearly: u32,
    /// Everything younger than this.
    pub keep_within: Option<Duration>,
    /// Never fewer than this many managed snapshots.
    pub min_count: u32,
    /// Refuse plans deleting more than this fraction of the managed snapshots.
    pub max_delete_fraction: f64,
}

impl Rules {
    /// Rules for snapshots in the primary region, periods following the calendar the policy stored in `retention`.
    pub fn primary(retention: &Retention) -> Self {
        Self {
            daily: retention.daily,
            weekly: retention.weekly,
            monthly: retention.monthly,
            yearly: retention.yearly,
            calendar: retention.calendar.clone(),
            keep_daily: retention.keep_daily,
            keep_weekly: retention.keep_weekly,
            keep_monthly: retention.keep_monthly,
            keep_yearly: retention.keep_yearly,
            keep_within: retention.keep_within,
            min_count: retention.min_count,
            max_delete_fraction: retention.max_delete_fraction,
        }
    }

    /// Rules for copies in a DR region: kept `retain_days` from the original snapshot time, with the plan's floors.
    pub fn copies(target: &CopyTarget, retention: &Retention) -> Self {
        Self {
            keep_within: Some(Duration::from_secs(u64::from(target.retain_days) * 86_400)),
            min_count: retention.min_count,
            max_delete_fraction: retention.max_delete_fraction,
            ..Self::manual_only()
        }
    }

    /// Rules for snapshots no plan covers: no rule keeps anything and no minimum count applies, so only the floors
    /// (manual snapshots until their expiry, legal hold, unmanaged, …) keep a snapshot.
    pub fn manual_only() -> Self {
        Self {
            daily: None,
            weekly: None,
            monthly: None,
            yearly: None,
            calendar: TierCalendar::default(),
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
            keep_yearly: 0,
            keep_within: None,
            min_count: 0,
            max_delete_fraction: 1.0,
        }
    }
}

/// How long a snapshot RDS failed to make is kept (for an operator to look at) before retention deletes it: it is
/// no recovery point, and it holds manual snapshot quota.
pub const FAILED_SNAPSHOT_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Whether `snapshot` failed for good (`failed`, `error`, `incompatible-*`) more than [`FAILED_SNAPSHOT_GRACE`] ago.
fn failed_past_grace(snapshot: &Snapshot, now: DateTime<Utc>) -> bool {
    crate::copy::is_failed_status(&snapshot.status)
        && now
            .signed_duration_since(snapshot.created_at)
            .to_std()
            .is_ok_and(|age| age >= FAILED_SNAPSHOT_GRACE)
}

/// What retention knows about the database beyond its snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// Whether the source database still exists.
    pub database_exists: bool,
    /// ARNs of snapshots a copy is being made from right now.
    pub copy_sources_in_flight: BTreeSet<String>,
    /// ARNs of originals whose lineage (the original and all its copies) is on legal hold: see [`held_lineages`].
    pub held: BTreeSet<String>,
    /// Identifiers (in the group's region) that the listing held more than once with different details: see
    /// [`listed_inconsistently`].
    pub listed_inconsistently: BTreeSet<String>,
}

/// The lineages on legal hold, from every snapshot listed in every region: for each snapshot tagged
/// `lifeboat:legal-hold=true`, the ARN of its original (what RDS reports it was copied from, and its
/// `lifeboat:copied-from` tag, both when they differ), or its own ARN when it is no copy. A hold thus protects
/// the original and every copy of it, wherever the hold was set.
pub fn held_lineages(all: &[Snapshot]) -> BTreeSet<String> {
    let mut held = BTreeSet::new();
    for snapshot in all.iter().filter(|s| s.on_legal_hold()) {
        let mut originals = [
            snapshot.copied_from.as_deref(),
            snapshot.tags.get(tags::COPIED_FROM),
        ]
        .into_iter()
        .flatten()
        .filter(|arn| !arn.is_empty())
        .peekable();
        if originals.peek().is_none() {
            held.insert(snapshot.arn.clone());
        }
        held.extend(originals.map(str::to_string));
    }
    held
}

/// Whether `snapshot` belongs to a lineage in `held`: it is the held original or a copy of it.
fn in_held_lineage(snapshot: &Snapshot, held: &BTreeSet<String>) -> bool {
    held.contains(&snapshot.arn)
        || snapshot
            .copied_from
            .as_ref()
            .is_some_and(|arn| held.contains(arn))
        || snapshot
            .tags
            .get(tags::COPIED_FROM)
            .is_some_and(|arn| held.contains(arn))
}

/// Why a snapshot is kept. Floors come first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeepReason {
    /// Lifeboat did not make it.
    Unmanaged,
    /// Tagged `lifeboat:legal-hold=true`, or its original or one of its copies is (see [`held_lineages`]).
    LegalHold,
    /// RDS has not finished making it (a failed one only for [`FAILED_SNAPSHOT_GRACE`]: it is no recovery point
    /// and holds quota, so it is deleted after that).
    NotAvailable,
    /// A copy is being made from it.
    CopyInFlight,
    /// Listed more than once with different details (tags or status that changed while the listing was read):
    /// which entry is true is unknown, so it is kept until a listing agrees with itself.
    ListedInconsistently,
    /// The newest snapshot whose restore was verified.
    NewestVerified,
    /// The newest recovery point of a database that no longer exists.
    LastOfDeletedDatabase,
    /// A manual snapshot before its expiry (or without one).
    ManualNotExpired,
    /// Younger than `keep_within` (a snapshot dated after the planning time, by clock skew, counts as new).
    Within,
    /// The daily rule: a day's recovery point younger than `daily`, or the newest of one of the last `keep_daily`
    /// days (a tier has one form in a policy, so the reason is never ambiguous).
    Daily,
    /// The weekly rule: a week's recovery point younger than `weekly`, or the newest of one of the last
    /// `keep_weekly` ISO weeks.
    Weekly,
    /// The monthly rule: a month's recovery point younger than `monthly`, or the newest of one of the last
    /// `keep_monthly` months.
    Monthly,
    /// The yearly rule: a year's recovery point younger than `yearly`, or the newest of one of the last
    /// `keep_yearly` years.
    Yearly,
    /// Among the newest `min_count`.
    MinCount,
}

/// One snapshot's fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Snapshot identifier.
    pub snapshot: String,
    /// When it was taken.
    pub created_at: DateTime<Utc>,
    /// Why it is kept; empty when it is to be deleted.
    pub keep: Vec<KeepReason>,
}

/// The plan for one database in one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Every snapshot (once, however often it was listed), newest first, with its reasons.
    pub decisions: Vec<Decision>,
    /// Why the deletions were refused, if they were.
    pub refused: Option<String>,
}

impl Plan {
    /// Identifiers to delete (none when refused), newest first.
    pub fn deletions(&self) -> Vec<&str> {
        if self.refused.is_some() {
            return Vec::new();
        }
        self.decisions
            .iter()
            .filter(|d| d.keep.is_empty())
            .map(|d| d.snapshot.as_str())
            .collect()
    }

    /// Decisions that keep their snapshot.
    pub fn kept(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| !d.keep.is_empty())
    }
}

/// Every keep reason, in the order of its bit in [`Reasons`].
const ALL_REASONS: [KeepReason; 14] = [
    KeepReason::Unmanaged,
    KeepReason::LegalHold,
    KeepReason::NotAvailable,
    KeepReason::CopyInFlight,
    KeepReason::ListedInconsistently,
    KeepReason::NewestVerified,
    KeepReason::LastOfDeletedDatabase,
    KeepReason::ManualNotExpired,
    KeepReason::Within,
    KeepReason::Daily,
    KeepReason::Weekly,
    KeepReason::Monthly,
    KeepReason::Yearly,
    KeepReason::MinCount,
];

/// A set of keep reasons as bits (planning a million snapshots allocates nothing per snapshot).
#[derive(Clone, Copy, Default)]
struct Reasons(u16);

impl Reasons {
    fn insert(&mut self, reason: KeepReason) {
        self.0 |= 1 << reason as u16;
    }
    fn is_empty(self) -> bool {
        self.0 == 0
    }
    fn to_vec(self) -> Vec<KeepReason> {
        ALL_REASONS
            .iter()
            .copied()
            .filter(|r| self.0 & (1 << *r as u16) != 0)
            .collect()
    }
}

/// The tiers a snapshot's `lifeboat:tier` label names (`daily+weekly`), one bit per [`Tier`].
fn labelled_tiers(label: &str) -> u8 {
    // The names of `Tier::as_str`, matched directly: this runs for every snapshot.
    label.split('+').fold(0, |bits, name| {
        bits | match name {
            "daily" => tier_bit(Tier::Daily),
            "weekly" => tier_bit(Tier::Weekly),
            "monthly" => tier_bit(Tier::Monthly),
            "yearly" => tier_bit(Tier::Yearly),
            _ => 0,
        }
    })
}

/// The bit of `tier` in [`labelled_tiers`].
fn tier_bit(tier: Tier) -> u8 {
    1 << tier as u8
}

/// A period of a duration rule while the planner walks it: when it starts (00:00 UTC of its first day), its
/// earliest scheduled snapshot so far and its earliest one labelled with the tier (indexes into the newest-first
/// order).
type Period = (DateTime<Utc>, usize, Option<usize>);

/// What the tags and status of one snapshot say, read once.
struct Facts {
    /// Managed by Lifeboat and available: the snapshots rules and floors count.
    counted: bool,
    /// Managed, available and not manual: the snapshots the duration and count rules apply to.
    scheduled: bool,
    verified: bool,
    /// The tiers its `lifeboat:tier` label names, as [`labelled_tiers`] bits (none when no duration rule reads them).
    labelled: u8,
}

/// Plan retention for `snapshots` (one database, one region) under `rules` at `now`.
pub fn plan(snapshots: &[Snapshot], rules: &Rules, context: &Context, now: DateTime<Utc>) -> Plan {
    let mut order: Vec<&Snapshot> = snapshots.iter().collect();
    order.sort_unstable_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| a.identifier.cmp(&b.identifier))
    });
    // A snapshot listed twice (a listing that shifted between its pages) is one recovery point. Planned twice,
    // a period rule would keep one entry and delete the other: the same snapshot, so a kept one. When its entries
    // differ, which one is true is unknown: it is kept.
    let mut first_listed: HashMap<&str, &Snapshot> = HashMap::with_capacity(order.len());
    let mut inconsistent = HashSet::new();
    order.retain(|snap| match first_listed.entry(snap.identifier.as_str()) {
        Entry::Vacant(entry) => {
            entry.insert(snap);
            true
        }
        Entry::Occupied(entry) => {
            if *entry.get() != *snap {
                inconsistent.insert(snap.identifier.as_str());
            }
            false
        }
    });
    let mut reasons = vec![Reasons::default(); order.len()];
    let mut facts = Vec::with_capacity(order.len());

    // Floors, and what the snapshot is. Only the duration rules read tier labels.
    let reads_labels = [rules.daily, rules.weekly, rules.monthly, rules.yearly]
        .iter()
        .any(Option::is_some);
    for (snap, keep) in order.iter().zip(reasons.iter_mut()) {
        let label = snap.tags.get(tags::TIER);
        let (managed, available, manual) = (
            snap.is_managed(),
            snap.is_available(),
            label == Some(tags::MANUAL_TIER),
        );
        if !managed {
            keep.insert(KeepReason::Unmanaged);
        }
        if inconsistent.contains(snap.identifier.as_str())
            || (!context.listed_inconsistently.is_empty()
                && context.listed_inconsistently.contains(&snap.identifier))
        {
            keep.insert(KeepReason::ListedInconsistently);
        }
        if snap.on_legal_hold()
            || (!context.held.is_empty() && in_held_lineage(snap, &context.held))
        {
            keep.insert(KeepReason::LegalHold);
        }
        // A snapshot RDS failed to make is no recovery point: past its grace only the floors above keep it.
        let dead = failed_past_grace(snap, now);
        if !available && !dead {
            keep.insert(KeepReason::NotAvailable);
        }
        if !context.copy_sources_in_flight.is_empty()
            && context.copy_sources_in_flight.contains(&snap.arn)
        {
            keep.insert(KeepReason::CopyInFlight);
        }
        if manual && !dead && snap.expires_at().is_none_or(|expiry| expiry > now) {
            keep.insert(KeepReason::ManualNotExpired);
        }
        if let Some(within) = rules.keep_within
            && !dead
            && now
                .signed_duration_since(snap.created_at)
                .to_std()
                .unwrap_or_default()
                < within
        {
            keep.insert(KeepReason::Within);
        }
        let counted = managed && available;
        facts.push(Facts {
            counted,
            scheduled: counted && !manual,
            verified: counted && snap.verified_at().is_some(),
            labelled: label.filter(|_| reads_labels).map_or(0, labelled_tiers),
        });
    }
    if let Some(i) = facts.iter().position(|f| f.verified) {
        reasons[i].insert(KeepReason::NewestVerified);
    }
    if !context.database_exists
        && let Some(i) = facts.iter().position(|f| f.counted)
    {
        reasons[i].insert(KeepReason::LastOfDeletedDatabase);
    }

    // Duration rules over scheduled (non-manual) managed snapshots. Periods are contiguous in the newest-first
    // order: a snapshot is in the current period while it is no older than the period's start, and the walk
    // through a period ends on its earliest (labelled) snapshot. The walk stops at the first period whose newest
    // snapshot is already too old, as every snapshot from there on is.
    let durations = [
        (rules.daily, Tier::Daily, KeepReason::Daily),
        (rules.weekly, Tier::Weekly, KeepReason::Weekly),
        (rules.monthly, Tier::Monthly, KeepReason::Monthly),
        (rules.yearly, Tier::Yearly, KeepReason::Yearly),
    ];
    for (duration, tier, reason) in durations {
        let Some(duration) = duration else { continue };
        let cutoff = duration.before(now);
        let young = |i: usize| cutoff.is_none_or(|cutoff| order[i].created_at > cutoff);
        let mut keep_recovery_point = |(_, earliest, labelled): Period| {
            let recovery_point = labelled.unwrap_or(earliest);
            if young(recovery_point) {
                reasons[recovery_point].insert(reason);
            }
        };
        let mut period: Option<Period> = None;
        for i in (0..order.len()).filter(|&i| facts[i].scheduled) {
            let created_at = order[i].created_at;
            let is_labelled = facts[i].labelled & tier_bit(tier) != 0;
            match &mut period {
                Some((start, earliest, labelled)) if created_at >= *start => {
                    *earliest = i;
                    if is_labelled {
                        *labelled = Some(i);
                    }
                }
                _ => {
                    if let Some(finished) = period.take() {
                        keep_recovery_point(finished);
                    }
                    if !young(i) {
                        break;
                    }
                    let start = rules
                        .calendar
                        .period_start(tier, created_at.date_naive())
                        .and_time(NaiveTime::MIN)
                        .and_utc();
                    period = Some((start, i, is_labelled.then_some(i)));
                }
            }
        }
        if let Some(finished) = period {
            keep_recovery_point(finished);
        }
    }

    // Count rules (restic buckets) over scheduled (non-manual) managed snapshots, newest first.
    let buckets: [(u32, KeepReason, BucketOf); 4] = [
        (rules.keep_daily, KeepReason::Daily, |t| {
            (t.year(), t.ordinal(), 0)
        }),
        (rules.keep_weekly, KeepReason::Weekly, |t| {
            (t.iso_week().year(), t.iso_week().week(), 0)
        }),
        (rules.keep_monthly, KeepReason::Monthly, |t| {
            (t.year(), t.month(), 0)
        }),
        (rules.keep_yearly, KeepReason::Yearly, |t| (t.year(), 0, 0)),
    ];
    for (count, reason, bucket_of) in buckets {
        let mut last = None;
        let mut left = count;
        for i in (0..order.len()).filter(|&i| facts[i].scheduled) {
            if left == 0 {
                break;
            }
            let bucket = bucket_of(order[i].created_at);
            if last != Some(bucket) {
                last = Some(bucket);
                left -= 1;
                reasons[i].insert(reason);
            }
        }
    }

    // Minimum count: keep the newest managed snapshots until there are enough.
    let kept_counted = facts
        .iter()
        .zip(&reasons)
        .filter(|(f, r)| f.counted && !r.is_empty())
        .count();
    let mut missing = (rules.min_count as usize).saturating_sub(kept_counted);
    for (fact, keep) in facts.iter().zip(reasons.iter_mut()) {
        if missing == 0 {
            break;
        }
        if fact.counted && keep.is_empty() {
            keep.insert(KeepReason::MinCount);
            missing -= 1;
        }
    }

    let managed_count = order.iter().filter(|s| s.is_managed()).count();
    let deleting = reasons.iter().filter(|r| r.is_empty()).count();
    let decisions: Vec<Decision> = order
        .iter()
        .zip(reasons)
        .map(|(snap, keep)| Decision {
            snapshot: snap.identifier.clone(),
            created_at: snap.created_at,
            keep: keep.to_vec(),
        })
        .collect();
    let refused = (deleting as f64 > rules.max_delete_fraction * managed_count as f64).then(|| {
        format!(
            "would delete {deleting} of {managed_count} managed snapshots ({:.0}%), more than max_delete_fraction {:.0}%",
            100.0 * deleting as f64 / managed_count.max(1) as f64,
            100.0 * rules.max_delete_fraction
        )
    });
    Plan { decisions, refused }
}

/// What one retention run of a deployment is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunRequest {
    /// Only these databases (every database when empty).
    pub only: BTreeSet<String>,
    /// Lift the `max_delete_fraction` refusal for the databases in `only`.
    pub allow_large_deletions: bool,
    /// Keep every decision in the plan (dry runs show them).
    pub with_decisions: bool,
}

/// The plan and outcome for one database in one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseRetention {
    /// Region of the snapshots.
    pub region: String,
    /// The database.
    pub database: String,
    /// Instance or cluster snapshots.
    pub kind: DatabaseKind,
    /// Plan of the policy that applies, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Snapshots kept.
    pub kept: usize,
    /// Snapshots the plan deletes (deleted unless dry run or refused).
    pub delete: Vec<String>,
    /// Why the deletions were refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Anything else an operator should know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Every snapshot with its reasons (dry runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decisions: Option<Vec<Decision>>,
}

/// Snapshots in one region that another deployment made (or nobody can prove it made), left alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftAlone {
    /// Their region.
    pub region: String,
    /// Who made them (another deployment, an unidentified Lifeboat, or not Lifeboat).
    pub owner: String,
    /// How many.
    pub count: usize,
    /// One of them, for example.
    pub example: String,
}

/// The plan of one retention run of a deployment over every region.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    /// Per database and region, this deployment's snapshots only.
    pub groups: Vec<DatabaseRetention>,
    /// What the deployment did not make, left alone, by region and owner.
    pub left_alone: Vec<LeftAlone>,
    /// A `lifeboat:created-at` tag that disagrees with RDS, per snapshot.
    pub findings: Vec<String>,
}

/// Plan a retention run of `deployment` (pure): `databases` are the databases in its home region, `snapshots` every
/// snapshot listed in every region, whoever made it.
///
/// Facts come from every snapshot (a hold anywhere protects its lineage, a copy in flight protects its source);
/// plans cover only the deployment's own snapshots, grouped by (region, database, kind). A group's plan is the one
/// its newest snapshot names, else the one whose selection covers it ([`crate::copy::plan_for_source`]); its rules
/// are the plan's retention in the home region and the plan's copy retention in a DR region. Without a plan,
/// scheduled snapshots are kept (a renamed plan never wipes a history) and manual ones still expire.
pub fn plan_run(
    policy: &Policy,
    deployment: &Deployment,
    databases: &[Database],
    snapshots: Vec<Snapshot>,
    request: &RunRequest,
    now: DateTime<Utc>,
) -> RunPlan {
    let existing: BTreeSet<(&str, DatabaseKind)> = databases
        .iter()
        .map(|db| (db.identifier.as_str(), db.kind))
        .collect();
    let held = held_lineages(&snapshots);
    let in_flight: BTreeSet<String> = snapshots
        .iter()
        .filter(|s| !crate::copy::is_terminal_status(&s.status))
        .filter_map(|s| s.copied_from.clone())
        .collect();
    let left_alone = left_alone(deployment, &snapshots);
    // In place, without a second copy of the listing: a fleet's listing is most of a run's memory.
    let mut mine = snapshots;
    // Before anything is set aside by its tags: an entry that lost `lifeboat:managed` or moved group mid-listing
    // must still mark its twin.
    let inconsistent = listed_inconsistently(&mut mine);
    mine.retain(|s| deployment.owns(&s.tags));
    let findings = mine
        .iter()
        .filter_map(|s| {
            s.dating_disagreement().map(|tagged| {
                format!(
                    "{} in {}: tag {} says {} but RDS says it was taken {}; its age comes from RDS",
                    s.identifier,
                    s.region,
                    tags::CREATED_AT,
                    tagged.to_rfc3339(),
                    s.created_at.to_rfc3339()
                )
            })
        })
        .collect();
    let mut groups = Vec::new();
    for members in grouped(&mut mine) {
        let (region, database, kind) = group_key(&members[0]);
        if !request.only.is_empty() && !request.only.contains(database) {
            continue;
        }
        let context = Context {
            database_exists: existing.contains(&(database, kind)),
            copy_sources_in_flight: in_flight.clone(),
            held: held.clone(),
            listed_inconsistently: inconsistent.get(region).cloned().unwrap_or_default(),
        };
        let newest = members.iter().max_by_key(|s| s.created_at);
        let policy_plan = newest.and_then(|s| crate::copy::plan_for_source(policy, s));
        let rules = policy_plan.and_then(|plan| {
            if region == deployment.home_region {
                Some(Rules::primary(&plan.retention))
            } else {
                plan.copies
                    .iter()
                    .find(|c| c.region == region)
                    .map(|target| Rules::copies(target, &plan.retention))
            }
        });
        let manual: Vec<Snapshot>;
        let (mut rules, members, note, kept_unplanned) = match rules {
            Some(rules) => (rules, members, None, 0),
            None => {
                manual = members.iter().filter(|s| s.is_manual()).cloned().collect();
                let scheduled = members.len() - manual.len();
                let note = format!(
                    "no plan of policy `{}` covers {database} in {region}: its {scheduled} scheduled snapshot(s) \
                     are kept; manual snapshots still expire",
                    policy.name,
                );
                (Rules::manual_only(), &manual[..], Some(note), scheduled)
            }
        };
        if request.allow_large_deletions && request.only.contains(database) {
            rules.max_delete_fraction = 1.0;
        }
        let planned = plan(members, &rules, &context, now);
        let delete = planned
            .decisions
            .iter()
            .filter(|d| d.keep.is_empty())
            .map(|d| d.snapshot.clone())
            .collect();
        groups.push(DatabaseRetention {
            kept: planned.kept().count() + kept_unplanned,
            delete,
            refused: planned.refused.clone(),
            note,
            decisions: request.with_decisions.then_some(planned.decisions),
            plan: policy_plan.map(|p| p.name.clone()),
            region: region.to_string(),
            database: database.to_string(),
            kind,
        });
    }
    RunPlan {
        groups,
        left_alone,
        findings,
    }
}

/// The identifiers, by region, that `snapshots` holds more than once with different details (a listing that changed
/// while it was paged: a tag removed or changed, a status that moved on). Which entry is true is unknown, so
/// retention keeps them. Sorts `snapshots` by region and identifier, in place.
pub fn listed_inconsistently(snapshots: &mut [Snapshot]) -> BTreeMap<String, BTreeSet<String>> {
    snapshots.sort_unstable_by(|a, b| (&a.region, &a.identifier).cmp(&(&b.region, &b.identifier)));
    let mut found: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for pair in snapshots.windows(2) {
        let [a, b] = pair else { continue };
        if a.region == b.region && a.identifier == b.identifier && a != b {
            found
                .entry(a.region.to_string())
                .or_default()
                .insert(a.identifier.clone());
        }
    }
    found
}

/// What `deployment` leaves alone among `snapshots` (those it did not make), by region and owner.
fn left_alone(deployment: &Deployment, snapshots: &[Snapshot]) -> Vec<LeftAlone> {
    let mut by_owner: BTreeMap<(String, String), LeftAlone> = BTreeMap::new();
    for snap in snapshots {
        let owner = deployment.owner_of(&snap.tags);
        if owner == Owner::Mine {
            continue;
        }
        let owner = owner.to_string();
        by_owner
            .entry((snap.region.to_string(), owner.clone()))
            .and_modify(|alone| alone.count += 1)
            .or_insert_with(|| LeftAlone {
                region: snap.region.to_string(),
                owner,
                count: 1,
                example: snap.identifier.clone(),
            });
    }
    by_owner.into_values().collect()
}

/// Sorts `snapshots` by (region, database, kind), in place, and yields each group: the snapshots of one database in
/// one region.
pub fn grouped(snapshots: &mut [Snapshot]) -> impl Iterator<Item = &[Snapshot]> {
    snapshots.sort_unstable_by(|a, b| group_key(a).cmp(&group_key(b)));
    snapshots.chunk_by(|a, b| group_key(a) == group_key(b))
}

/// The group a snapshot belongs to: (region, database, kind).
fn group_key(snapshot: &Snapshot) -> (&str, &str, DatabaseKind) {
    (&snapshot.region, &snapshot.database, snapshot.kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DatabaseKind;
    use crate::policy::{CalendarUnit, DEFAULT_POLICY_YAML, Policy};
    use chrono::{Duration as Days, Month, Months, NaiveDate, TimeZone, Weekday};
    use proptest::prelude::*;
    use std::cmp::Reverse;

    fn snap(id: &str, created_at: DateTime<Utc>, extra: &[(&str, &str)]) -> Snapshot {
        let mut tags: BTreeMap<String, String> =
            [(tags::MANAGED, tags::TRUE), (tags::TIER, "daily")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        for (k, v) in extra {
            tags.insert(k.to_string(), v.to_string());
        }
        Snapshot {
            identifier: id.into(),
            arn: format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}"),
            region: "us-east-1".into(),
            kind: DatabaseKind::Instance,
            database: "db".into(),
            created_at,
            status: "available".into(),
            encrypted: true,
            engine: None,
            copied_from: None,
            tags: tags.into(),
        }
    }

    /// A snapshot listed twice, once as this deployment's and once without `lifeboat:managed` (the tag removed
    /// mid-listing), is kept: the unmanaged entry is set aside by ownership, yet still marks its twin.
    #[test]
    fn a_twin_that_lost_its_managed_tag_keeps_the_snapshot() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap();
        let policy = Policy::default_policy().unwrap();
        let deployment = Deployment::new("lifeboat", "us-east-1").unwrap();
        let [(dk, dv), (hk, hv)] = deployment.tags();
        let expired = "2026-11-01T00:00:00Z";
        let owned = snap(
            "before-upgrade",
            now - Days::days(60),
            &[
                (tags::TIER, tags::MANUAL_TIER),
                (tags::EXPIRES_AT, expired),
                (&dk, &dv),
                (&hk, &hv),
            ],
        );
        // A newer one, so that the expired one is not the last recovery point of a database gone.
        let newer = snap(
            "after-upgrade",
            now - Days::days(1),
            &[(tags::TIER, tags::MANUAL_TIER), (&dk, &dv), (&hk, &hv)],
        );
        let run = |mut listing: Vec<Snapshot>| {
            listing.push(newer.clone());
            plan_run(
                &policy,
                &deployment,
                &[],
                listing,
                &RunRequest::default(),
                now,
            )
            .groups
        };
        let alone = run(vec![owned.clone()]);
        assert_eq!(
            alone[0].delete,
            ["before-upgrade"],
            "expired: deleted when listed once"
        );

        let mut unmanaged = owned.clone();
        unmanaged.tags.remove(tags::MANAGED);
        let groups = run(vec![unmanaged, owned]);
        assert!(groups.iter().all(|g| g.delete.is_empty()), "{groups:#?}");
    }

    /// The seed plan as restic counts.
    fn seed_counts() -> Rules {
        Rules {
            keep_daily: 30,
            keep_weekly: 12,
            keep_monthly: 12,
            keep_yearly: 7,
            min_count: 3,
            ..Rules::manual_only()
        }
    }

    fn duration(text: &str) -> CalendarDuration {
        text.parse().unwrap()
    }

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    /// 02:00 UTC on `date`, when the snapshot schedule runs.
    fn at_two(date: NaiveDate) -> DateTime<Utc> {
        Utc.from_utc_datetime(&date.and_hms_opt(2, 0, 0).unwrap())
    }

    /// The scheduled snapshot of `date`, labelled with the tiers `calendar` gives that day.
    fn scheduled(calendar: &TierCalendar, date: NaiveDate) -> Snapshot {
        let label: Vec<&str> = calendar
            .tiers_on(date)
            .into_iter()
            .map(Tier::as_str)
            .collect();
        snap(
            &format!("s-{date}"),
            at_two(date),
            &[(tags::TIER, &label.join("+"))],
        )
    }

    /// Labelled scheduled snapshots of every day from `first` to `last`, except the `missed` days.
    fn labelled_history(
        calendar: &TierCalendar,
        first: NaiveDate,
        last: NaiveDate,
        missed: &[NaiveDate],
    ) -> Vec<Snapshot> {
        first
            .iter_days()
            .take_while(|d| *d <= last)
            .filter(|d| !missed.contains(d))
            .map(|d| scheduled(calendar, d))
            .collect()
    }

    fn kept_ids(plan: &Plan) -> Vec<&str> {
        plan.kept().map(|d| d.snapshot.as_str()).collect()
    }

    fn exists() -> Context {
        Context {
            database_exists: true,
            ..Context::default()
        }
    }

    /// Daily snapshots at 02:00 UTC from `first` to `last` inclusive, labelled `daily` only.
    fn daily_history(first: NaiveDate, last: NaiveDate) -> Vec<Snapshot> {
        first
            .iter_days()
            .take_while(|d| *d <= last)
            .map(|d| snap(&format!("s-{d}"), at_two(d), &[]))
            .collect()
    }

    #[test]
    fn a_failed_snapshot_is_deleted_after_a_days_grace() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let failed = |id: &str, hours: i64| Snapshot {
            status: "failed".into(),
            ..snap(id, now - Days::hours(hours), &[])
        };
        let history = vec![
            snap("good", now - Days::hours(10), &[]),
            failed("failed-recently", 10),
            failed("failed-long-ago", 30),
        ];
        let rules = Rules {
            keep_within: Some(Duration::from_secs(7 * 86_400)),
            min_count: 1,
            max_delete_fraction: 1.0,
            ..Rules::manual_only()
        };
        let plan = plan(&history, &rules, &exists(), now);
        assert_eq!(
            plan.deletions(),
            ["failed-long-ago"],
            "a failed snapshot is no recovery point, whatever its age"
        );
        let kept: BTreeMap<&str, &Vec<KeepReason>> = plan
            .decisions
            .iter()
            .map(|d| (d.snapshot.as_str(), &d.keep))
            .collect();
        assert!(
            kept["failed-recently"].contains(&KeepReason::NotAvailable),
            "kept a day for an operator to look at"
        );
    }

    #[test]
    fn restic_counts_over_eight_years_of_daily_snapshots() {
        let first = NaiveDate::from_ymd_opt(2019, 1, 1).unwrap();
        let last = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        let history = daily_history(first, last);
        assert_eq!(history.len(), 2922);
        let now = Utc.with_ymd_and_hms(2026, 12, 31, 3, 0, 0).unwrap();
        let plan = plan(&history, &seed_counts(), &exists(), now);

        let count = |reason| plan.kept().filter(|d| d.keep.contains(&reason)).count();
        assert_eq!(count(KeepReason::Daily), 30);
        assert_eq!(count(KeepReason::Weekly), 12);
        assert_eq!(count(KeepReason::Monthly), 12);
        assert_eq!(count(KeepReason::Yearly), 7);
        // Overlaps: the 12 weeklies are the Sundays back to 18 Oct plus Thursday 31 Dec (ISO week 53), 5 of them
        // inside the 30 dailies (2..31 Dec); the monthlies are the last day of each month of 2026, only 31 Dec
        // among the dailies; the yearlies are 31 Dec of 2020..2026, 31 Dec 2026 already kept.
        assert_eq!(plan.kept().count(), 30 + (12 - 5) + (12 - 1) + (7 - 1));
        let kept: BTreeSet<&str> = plan.kept().map(|d| d.snapshot.as_str()).collect();
        for id in [
            "s-2026-12-02",
            "s-2026-10-18",
            "s-2026-11-30",
            "s-2026-01-31",
            "s-2020-12-31",
        ] {
            assert!(kept.contains(id), "{id}");
        }
        for id in [
            "s-2026-12-01",
            "s-2026-10-17",
            "s-2019-12-31",
            "s-2026-02-27",
        ] {
            assert!(!kept.contains(id), "{id}");
        }
        assert_eq!(plan.deletions().len(), 2922 - 54);
        // So `keep_yearly: 7` reaches back six years, not seven: what the duration form is for.
        assert_eq!(
            plan.decisions.last().map(|d| d.created_at.year()),
            Some(2019)
        );
        assert_eq!(
            plan.kept().last().map(|d| d.snapshot.as_str()),
            Some("s-2020-12-31")
        );
    }

    #[test]
    fn missed_sunday_still_yields_a_weekly_by_count() {
        let history: Vec<Snapshot> = daily_history(
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        )
        .into_iter()
        .filter(|s| s.identifier != "s-2026-11-15") // Sunday missed
        .collect();
        let rules = Rules {
            keep_daily: 0,
            keep_weekly: 3,
            min_count: 1,
            ..seed_counts()
        };
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap();
        let plan = plan(&history, &rules, &exists(), now);
        let weeklies: Vec<&str> = plan.kept().map(|d| d.snapshot.as_str()).collect();
        assert_eq!(weeklies, ["s-2026-11-30", "s-2026-11-29", "s-2026-11-22"]);
        let rules = Rules {
            keep_weekly: 4,
            ..rules
        };
        let plan = super::plan(&history, &rules, &exists(), now);
        assert!(
            plan.kept().any(|d| d.snapshot == "s-2026-11-14"),
            "Saturday stands in for the missed Sunday"
        );
    }

    #[test]
    fn floors_override_rules() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap();
        let day = |n: i64| now - Days::days(n);
        let history = vec![
            snap("newest", day(1), &[]),
            snap(
                "verified",
                day(10),
                &[(tags::VERIFIED_AT, "2026-11-21T05:00:00Z")],
            ),
            snap(
                "older-verified",
                day(20),
                &[(tags::VERIFIED_AT, "2026-11-11T05:00:00Z")],
            ),
            snap("hold", day(400), &[(tags::LEGAL_HOLD, "true")]),
            snap(
                "manual-live",
                day(30),
                &[
                    (tags::TIER, tags::MANUAL_TIER),
                    (tags::EXPIRES_AT, "2026-12-30T00:00:00Z"),
                ],
            ),
            snap(
                "manual-expired",
                day(100),
                &[
                    (tags::TIER, tags::MANUAL_TIER),
                    (tags::EXPIRES_AT, "2026-09-01T00:00:00Z"),
                ],
            ),
            Snapshot {
                tags: Default::default(),
                ..snap("unmanaged", day(500), &[])
            },
            Snapshot {
                status: "creating".into(),
                ..snap("creating", day(0), &[])
            },
            snap("copy-source", day(50), &[]),
            snap("plain-old", day(60), &[]),
        ];
        let rules = Rules {
            keep_daily: 1,
            keep_weekly: 0,
            keep_monthly: 0,
            keep_yearly: 0,
            min_count: 1,
            ..seed_counts()
        };
        let context = Context {
            database_exists: true,
            copy_sources_in_flight: [
                "arn:aws:rds:us-east-1:123456789012:snapshot:copy-source".to_string()
            ]
            .into(),
            held: BTreeSet::new(),
            listed_inconsistently: BTreeSet::new(),
        };
        let plan = plan(&history, &rules, &context, now);
        let reasons: BTreeMap<&str, Vec<KeepReason>> = plan
            .decisions
            .iter()
            .map(|d| (d.snapshot.as_str(), d.keep.clone()))
            .collect();
        assert_eq!(reasons["newest"], [KeepReason::Daily]);
        assert_eq!(reasons["verified"], [KeepReason::NewestVerified]);
        assert_eq!(reasons["older-verified"], []);
        assert_eq!(reasons["hold"], [KeepReason::LegalHold]);
        assert_eq!(reasons["manual-live"], [KeepReason::ManualNotExpired]);
        assert_eq!(reasons["manual-expired"], []);
        assert_eq!(reasons["unmanaged"], [KeepReason::Unmanaged]);
        assert_eq!(reasons["creating"], [KeepReason::NotAvailable]);
        assert_eq!(reasons["copy-source"], [KeepReason::CopyInFlight]);
        assert_eq!(
            plan.deletions(),
            ["older-verified", "plain-old", "manual-expired"]
        );
    }

    #[test]
    fn deleted_database_keeps_its_last_recovery_point_and_min_count_holds() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap();
        let history: Vec<Snapshot> = (0..10)
            .map(|n| snap(&format!("s{n}"), now - Days::days(100 + n), &[]))
            .collect();
        let rules = Rules {
            keep_within: Some(Duration::from_secs(7 * 86_400)),
            min_count: 1,
            ..seed_counts()
        };
        let rules = Rules {
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
            keep_yearly: 0,
            ..rules
        };
        let gone = plan(&history, &rules, &Context::default(), now);
        assert_eq!(
            gone.kept().map(|d| d.snapshot.as_str()).collect::<Vec<_>>(),
            ["s0"]
        );
        assert_eq!(gone.decisions[0].keep, [KeepReason::LastOfDeletedDatabase]);
        let rules = Rules {
            min_count: 4,
            ..rules
        };
        let kept = plan(&history, &rules, &exists(), now);
        assert_eq!(
            kept.kept().map(|d| d.snapshot.as_str()).collect::<Vec<_>>(),
            ["s0", "s1", "s2", "s3"]
        );
        assert!(kept.kept().all(|d| d.keep == [KeepReason::MinCount]));
    }

    #[test]
    fn runaway_plans_are_refused() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap();
        let history: Vec<Snapshot> = (0..10)
            .map(|n| snap(&format!("s{n}"), now - Days::days(n), &[]))
            .collect();
        let rules = Rules {
            keep_daily: 2,
            min_count: 1,
            max_delete_fraction: 0.5,
            ..Rules::manual_only()
        };
        let plan = plan(&history, &rules, &exists(), now);
        assert_eq!(
            plan.refused.as_deref(),
            Some("would delete 8 of 10 managed snapshots (80%), more than max_delete_fraction 50%")
        );
        assert!(plan.deletions().is_empty());
    }

    #[test]
    fn labels_are_read_as_the_snapshot_function_writes_them() {
        let all = [Tier::Daily, Tier::Weekly, Tier::Monthly, Tier::Yearly];
        for tier in all {
            assert_eq!(labelled_tiers(tier.as_str()), tier_bit(tier));
        }
        let every = all.map(Tier::as_str).join("+");
        assert_eq!(labelled_tiers(&every), 0b1111);
        for unlabelled in ["", tags::MANUAL_TIER, "dailyweekly", "Weekly"] {
            assert_eq!(labelled_tiers(unlabelled), 0, "{unlabelled}");
        }
    }

    #[test]
    fn the_labelled_monthly_is_kept_not_the_last_snapshot_of_the_month() {
        let calendar = TierCalendar::default();
        let history = labelled_history(&calendar, day("2025-11-01"), day("2026-02-15"), &[]);
        let now = at_two(day("2026-02-15")) + Days::hours(1);
        let rules = Rules {
            monthly: Some(duration("12m")),
            min_count: 1,
            ..Rules::manual_only()
        };
        let plan = plan(&history, &rules, &exists(), now);
        assert_eq!(
            kept_ids(&plan),
            [
                "s-2026-02-01",
                "s-2026-01-01",
                "s-2025-12-01",
                "s-2025-11-01"
            ]
        );
        assert!(plan.kept().all(|d| d.keep == [KeepReason::Monthly]));
        assert!(plan.deletions().contains(&"s-2026-01-31"));
        assert!(plan.deletions().contains(&"s-2025-12-31"));

        // The restic count keeps the newest of each month instead: the unlabelled 31st, not the monthly.
        let counts = Rules {
            keep_monthly: 4,
            min_count: 1,
            ..Rules::manual_only()
        };
        let plan = super::plan(&history, &counts, &exists(), now);
        assert_eq!(
            kept_ids(&plan),
            [
                "s-2026-02-15",
                "s-2026-01-31",
                "s-2025-12-31",
                "s-2025-11-30"
            ]
        );
    }

    #[test]
    fn a_duration_keeps_recovery_points_younger_than_it_in_calendar_months() {
        let calendar = TierCalendar::default();
        let history = labelled_history(&calendar, day("2025-01-01"), day("2026-03-31"), &[]);
        let rules = Rules {
            monthly: Some(duration("12m")),
            min_count: 1,
            ..Rules::manual_only()
        };
        // One hour before 1 March 2025 02:00 turns twelve months old it is kept; one hour after, it is not.
        let oldest_monthly = |now| {
            plan(&history, &rules, &exists(), now)
                .kept()
                .last()
                .map(|d| d.snapshot.clone())
        };
        let turns_twelve_months = at_two(day("2026-03-01"));
        assert_eq!(
            oldest_monthly(turns_twelve_months - Days::hours(1)).as_deref(),
            Some("s-2025-03-01")
        );
        assert_eq!(
            oldest_monthly(turns_twelve_months + Days::hours(1)).as_deref(),
            Some("s-2025-04-01")
        );
    }

    /// A cross-region copy of `original` in `region`, carrying `lifeboat:copied-from` as Lifeboat's copies do.
    fn copy_of(original: &Snapshot, region: &str, extra: &[(&str, &str)]) -> Snapshot {
        let mut copy = snap(&original.identifier, original.created_at, extra);
        copy.region = region.into();
        copy.arn = original.arn.replace("us-east-1", region);
        copy.copied_from = Some(original.arn.clone());
        copy.tags
            .insert(tags::COPIED_FROM.into(), original.arn.clone());
        copy
    }

    /// Plan one region's snapshots with no rule keeping anything, so only floors keep.
    fn floors_only(
        snapshots: &[Snapshot],
        held: &BTreeSet<String>,
    ) -> BTreeMap<String, Vec<KeepReason>> {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap();
        let context = Context {
            database_exists: true,
            held: held.clone(),
            ..Context::default()
        };
        plan(snapshots, &Rules::manual_only(), &context, now)
            .decisions
            .into_iter()
            .map(|d| (d.snapshot, d.keep))
            .collect()
    }

    #[test]
    fn a_hold_on_the_original_protects_its_copies_in_every_dr_region() {
        let created = Utc.with_ymd_and_hms(2024, 3, 3, 2, 0, 0).unwrap();
        let original = snap("held", created, &[(tags::LEGAL_HOLD, "true")]);
        let other = snap("other", created, &[]);
        let west = [
            copy_of(&original, "us-west-2", &[]),
            copy_of(&other, "us-west-2", &[]),
        ];
        let mut frankfurt = [
            copy_of(&original, "eu-central-1", &[]),
            copy_of(&other, "eu-central-1", &[]),
        ];
        // RDS may not report the source of a copy: the tag alone ties it to its original.
        frankfurt[0].copied_from = None;
        let everywhere: Vec<Snapshot> = [original.clone(), other.clone()]
            .into_iter()
            .chain(west.iter().cloned())
            .chain(frankfurt.iter().cloned())
            .collect();
        let held = held_lineages(&everywhere);
        assert_eq!(held, BTreeSet::from([original.arn.clone()]));
        for region in [&west[..], &frankfurt[..]] {
            let reasons = floors_only(region, &held);
            assert_eq!(reasons["held"], [KeepReason::LegalHold]);
            assert_eq!(reasons["other"], []);
            // Without the lineage, the copy is just an old copy.
            assert_eq!(floors_only(region, &BTreeSet::new())["held"], []);
        }
    }

    #[test]
    fn a_hold_on_a_copy_protects_the_original_and_its_other_copies() {
        let created = Utc.with_ymd_and_hms(2024, 3, 3, 2, 0, 0).unwrap();
        let original = snap("held", created, &[]);
        let other = snap("other", created, &[]);
        let west = copy_of(&original, "us-west-2", &[(tags::LEGAL_HOLD, "true")]);
        let mut frankfurt = copy_of(&original, "eu-central-1", &[]);
        // A copy RDS reports the source of but whose tags were lost still belongs to the lineage.
        frankfurt.tags.remove(tags::COPIED_FROM);
        let everywhere = [
            original.clone(),
            other.clone(),
            west.clone(),
            frankfurt.clone(),
        ];
        let held = held_lineages(&everywhere);
        assert_eq!(held, BTreeSet::from([original.arn.clone()]));

        let primary = floors_only(&[original, other], &held);
        assert_eq!(primary["held"], [KeepReason::LegalHold]);
        assert_eq!(primary["other"], []);
        assert_eq!(
            floors_only(&[frankfurt], &held)["held"],
            [KeepReason::LegalHold]
        );
        assert_eq!(
            floors_only(&[west], &BTreeSet::new())["held"],
            [KeepReason::LegalHold]
        );
    }

    /// The duration rules of `rules`, with the reason each gives and the longest its period can be (in days).
    fn duration_rules(rules: &Rules) -> Vec<(Tier, CalendarDuration, KeepReason, i64)> {
        [
            (Tier::Daily, rules.daily, KeepReason::Daily, 1),
            (Tier::Weekly, rules.weekly, KeepReason::Weekly, 7),
            (Tier::Monthly, rules.monthly, KeepReason::Monthly, 31),
            (Tier::Yearly, rules.yearly, KeepReason::Yearly, 366),
        ]
        .into_iter()
        .filter_map(|(tier, duration, reason, longest)| {
            duration.map(|duration| (tier, duration, reason, longest))
        })
        .collect()
    }

    /// The oldest recovery point each duration rule keeps, at the end of a simulation.
    struct Oldest {
        tier: Tier,
        duration: CalendarDuration,
        taken: NaiveDate,
        age_days: i64,
    }

    /// Run `rules` every day at 03:00 UTC from `first` to `last`, after that day's 02:00 snapshot (none on the
    /// `missed` days), deleting what each plan deletes before the next day, and check every day that each
    /// duration rule reaches back its full duration, with no gap and nothing older; returns the oldest recovery
    /// point per tier on the last day.
    fn simulate_daily_runs(
        rules: &Rules,
        first: NaiveDate,
        last: NaiveDate,
        missed: &[NaiveDate],
    ) -> Vec<Oldest> {
        let calendar = &rules.calendar;
        let tiers = duration_rules(rules);
        assert!(!tiers.is_empty(), "the policy states durations");
        let mut alive: Vec<Snapshot> = Vec::new();
        let mut stand_ins_checked = BTreeSet::new();
        let mut oldest = Vec::new();
        for today in first.iter_days().take_while(|d| *d <= last) {
            if !missed.contains(&today) {
                alive.push(scheduled(calendar, today));
            }
            let now = at_two(today) + Days::hours(1);
            let planned = plan(&alive, rules, &exists(), now);
            assert_eq!(planned.refused, None, "{today}");
            let newest_taken = alive.last().map(|s| s.created_at.date_naive());
            for &(tier, duration, reason, longest) in &tiers {
                let period = |date: NaiveDate| calendar.period_start(tier, date);
                let cutoff = duration.before(now).unwrap();
                let kept: Vec<NaiveDate> = planned
                    .kept()
                    .filter(|d| d.keep.contains(&reason))
                    .map(|d| d.created_at.date_naive())
                    .collect();
                let context = format!("{} {duration} on {today}", tier.as_str());
                assert_eq!(
                    kept.first().copied().map(period),
                    newest_taken.map(period),
                    "{context}"
                );
                // No gap: each kept recovery point is in the period before the next newer one (a missed day
                // leaves no daily period to keep).
                for pair in kept.windows(2) {
                    let mut expected = period(period(pair[0]).pred_opt().unwrap());
                    while tier == Tier::Daily && missed.contains(&expected) {
                        expected = expected.pred_opt().unwrap();
                    }
                    assert_eq!(
                        period(pair[1]),
                        expected,
                        "{context}: gap after {}",
                        pair[0]
                    );
                }
                // Back the full duration, within one period (and a day, for a stand-in taken the day after a
                // missed tier day).
                let oldest_kept = *kept.last().unwrap();
                if at_two(first) <= cutoff {
                    assert!(
                        at_two(oldest_kept) <= cutoff + Days::days(longest + 1),
                        "{context}: oldest {oldest_kept} is short of {cutoff}"
                    );
                }
                assert!(
                    at_two(oldest_kept) > cutoff,
                    "{context}: {oldest_kept} too old"
                );
                // A missed tier day's period keeps the next day's snapshot as long as it is young enough.
                for &missed_day in missed {
                    let stand_in = missed_day.succ_opt().unwrap();
                    if tier != Tier::Daily
                        && calendar.tiers_on(missed_day).contains(&tier)
                        && today >= stand_in
                        && at_two(stand_in) > cutoff
                    {
                        assert!(
                            kept.contains(&stand_in),
                            "{context}: no stand-in for {missed_day}"
                        );
                        stand_ins_checked.insert((missed_day, tier));
                    }
                }
                if today == last {
                    oldest.push(Oldest {
                        tier,
                        duration,
                        taken: oldest_kept,
                        age_days: (now - at_two(oldest_kept)).num_days(),
                    });
                }
            }
            // Nothing a rule keeps is older than the longest duration of the tiers it serves: those of its label,
            // or the tier it stands in for. Floors (here only min_count) aside.
            for decision in planned.kept() {
                let taken = decision.created_at.date_naive();
                // It stands in for a tier when no snapshot was taken earlier in its period (a missed tier day, or
                // the partial period the history starts in).
                let serves = |tier: Tier| {
                    calendar.tiers_on(taken).contains(&tier)
                        || calendar
                            .period_start(tier, taken)
                            .iter_days()
                            .take_while(|d| *d < taken)
                            .all(|d| d < first || missed.contains(&d))
                };
                let longest_cutoff = tiers
                    .iter()
                    .filter(|(tier, ..)| serves(*tier))
                    .filter_map(|(_, duration, ..)| duration.before(now))
                    .min();
                if decision.keep != [KeepReason::MinCount] {
                    assert!(
                        longest_cutoff.is_some_and(|cutoff| decision.created_at > cutoff),
                        "{} kept on {today} by {:?}",
                        decision.snapshot,
                        decision.keep
                    );
                }
            }
            let deleted: BTreeSet<&str> = planned.deletions().into_iter().collect();
            alive.retain(|s| !deleted.contains(s.identifier.as_str()));
        }
        let missed_tier_days: BTreeSet<(NaiveDate, Tier)> = missed
            .iter()
            .flat_map(|m| {
                calendar
                    .tiers_on(*m)
                    .into_iter()
                    .map(move |tier| (*m, tier))
            })
            .filter(|(_, tier)| *tier != Tier::Daily && tiers.iter().any(|(t, ..)| t == tier))
            .collect();
        assert_eq!(
            stand_ins_checked, missed_tier_days,
            "every missed tier day was checked"
        );
        oldest
    }

    #[test]
    fn every_policy_keeps_each_tier_for_its_duration_over_eight_years_of_daily_runs() {
        let policies = [
            ("infra/policy.yaml", DEFAULT_POLICY_YAML),
            (
                "infra/examples/luxhedge.yaml",
                include_str!("../../infra/examples/luxhedge.yaml"),
            ),
            (
                "infra/examples/nbne-booking.yaml",
                include_str!("../../infra/examples/nbne-booking.yaml"),
            ),
            (
                "infra/examples/live-event-service.yaml",
                include_str!("../../infra/examples/live-event-service.yaml"),
            ),
        ];
        let (first, last) = (day("2019-01-01"), day("2027-03-31"));
        for (file, yaml) in policies {
            let policy = Policy::from_yaml(yaml).unwrap();
            let rules = Rules::primary(&policy.plans[0].retention);
            let calendar = &rules.calendar;
            // A missed weekly day, a missed monthly day, and a missed yearly day (which serves every tier).
            let first_on = |from: &str, tier: Tier| {
                day(from)
                    .iter_days()
                    .find(|d| calendar.tiers_on(*d).contains(&tier))
                    .unwrap()
            };
            let missed = [
                first_on("2026-12-01", Tier::Weekly),
                first_on("2026-06-02", Tier::Monthly),
                first_on("2023-01-01", Tier::Yearly),
            ];
            assert!(missed.iter().all(|d| !calendar.tiers_on(*d).is_empty()));
            let oldest = simulate_daily_runs(&rules, first, last, &missed);
            let line: Vec<String> = oldest
                .iter()
                .map(|o| {
                    format!(
                        "{} {}: {} ({} days)",
                        o.tier.as_str(),
                        o.duration,
                        o.taken,
                        o.age_days
                    )
                })
                .collect();
            println!(
                "{file}, oldest recovery point per tier on {last}: {}",
                line.join("; ")
            );
            let yearly = oldest.iter().find(|o| o.tier == Tier::Yearly);
            if let Some(yearly) = yearly {
                // The seven-year promise: a yearly recovery point more than six years old is still there.
                assert!(yearly.age_days > 6 * 365, "{file}: {}", yearly.taken);
            }
        }
    }

    /// The table in docs/policy.md of what the default policy keeps on 22 November 2026, from the planner.
    fn default_policy_table() -> String {
        let policy = Policy::default_policy().unwrap();
        let retention = &policy.plans[0].retention;
        let rules = Rules::primary(retention);
        let today = day("2026-11-22");
        let history = labelled_history(&rules.calendar, day("2018-01-01"), today, &[]);
        let planned = plan(&history, &rules, &exists(), at_two(today) + Days::hours(1));
        let mut table = format!(
            "| tier | kept for | snapshots kept on {today} (taken 02:00 UTC, planned 03:00) | count |\n| --- | --- | --- | --- |\n"
        );
        for (tier, duration, reason, _) in duration_rules(&rules) {
            let mut dates: Vec<NaiveDate> = planned
                .kept()
                .filter(|d| d.keep.contains(&reason))
                .map(|d| d.created_at.date_naive())
                .collect();
            dates.reverse();
            let consecutive = dates.windows(2).all(|w| w[0].succ_opt() == Some(w[1]));
            let listed = if consecutive && dates.len() > 2 {
                format!("every day, {} … {}", dates[0], dates[dates.len() - 1])
            } else {
                dates
                    .iter()
                    .map(NaiveDate::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            table += &format!(
                "| {} | `{duration}` | {listed} | {} |\n",
                tier.as_str(),
                dates.len()
            );
        }
        let kept = planned.kept().count();
        table += &format!(
            "\n{kept} distinct snapshots are kept (a snapshot serving several tiers counts once); the other {} of \
             the {} taken since 2018-01-01 are deleted.\n",
            history.len() - kept,
            history.len()
        );
        table
    }

    #[test]
    fn docs_show_what_the_default_policy_keeps() {
        let table = default_policy_table();
        println!("{table}");
        assert!(
            include_str!("../../docs/policy.md").contains(&table),
            "docs/policy.md should contain this table:\n{table}"
        );
    }

    // Property tests over random histories and policies.

    /// The original snapshots random copies are made from: `o0` … `o4` (they need not be in the history).
    fn original_arn(n: u8) -> String {
        format!("arn:aws:rds:us-east-1:123456789012:snapshot:o{n}")
    }

    /// How a random snapshot names its original: RDS's report, the tag, or both.
    #[derive(Debug, Clone, Copy)]
    enum Lineage {
        Reported,
        Tagged,
        Both,
    }

    fn arb_snapshot() -> impl Strategy<Value = Snapshot> {
        let lineage = prop::option::weighted(
            0.15,
            (
                0u8..5,
                prop_oneof![
                    Just(Lineage::Reported),
                    Just(Lineage::Tagged),
                    Just(Lineage::Both)
                ],
            ),
        );
        (
            (
                0i64..(3 * 365 * 24),
                prop::bool::weighted(0.9),
                prop::bool::weighted(0.05),
                prop::bool::weighted(0.1),
                prop::bool::weighted(0.1),
                prop::option::of(0i64..(3 * 365 * 24)),
                prop::bool::weighted(0.05),
            ),
            0u8..16,
            lineage,
        )
            .prop_map(
                |(
                    (hours_ago, managed, hold, manual, verified, expiry_hours, creating),
                    tier_bits,
                    lineage,
                )| {
                    let now = Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap();
                    let created = now - Days::hours(hours_ago);
                    // A random label (`weekly+yearly`, or none at all), so a period may or may not have one.
                    let label: Vec<&str> = [Tier::Daily, Tier::Weekly, Tier::Monthly, Tier::Yearly]
                        .into_iter()
                        .filter(|tier| tier_bits & (1 << *tier as u8) != 0)
                        .map(Tier::as_str)
                        .collect();
                    let mut s = snap(
                        &format!("s{hours_ago}"),
                        created,
                        &[(tags::TIER, &label.join("+"))],
                    );
                    if !managed {
                        s.tags.clear();
                    }
                    if hold {
                        s.tags.insert(tags::LEGAL_HOLD.into(), "true".into());
                    }
                    if manual {
                        s.tags.insert(tags::TIER.into(), tags::MANUAL_TIER.into());
                        if let Some(h) = expiry_hours {
                            let expiry = created + Days::hours(h);
                            s.tags.insert(tags::EXPIRES_AT.into(), expiry.to_rfc3339());
                        }
                    }
                    if verified {
                        s.tags.insert(
                            tags::VERIFIED_AT.into(),
                            (created + Days::hours(5)).to_rfc3339(),
                        );
                    }
                    if creating {
                        // Still being made, or failed (deleted a day after it failed).
                        s.status = if hours_ago % 2 == 0 {
                            "creating"
                        } else {
                            "failed"
                        }
                        .into();
                    }
                    if let Some((original, how)) = lineage {
                        if matches!(how, Lineage::Reported | Lineage::Both) {
                            s.copied_from = Some(original_arn(original));
                        }
                        if matches!(how, Lineage::Tagged | Lineage::Both) {
                            s.tags
                                .insert(tags::COPIED_FROM.into(), original_arn(original));
                        }
                    }
                    s
                },
            )
    }

    fn arb_history() -> impl Strategy<Value = Vec<Snapshot>> {
        prop::collection::vec(arb_snapshot(), 0..120).prop_map(|mut v| {
            // identifiers are unique in a region
            v.sort_by(|a, b| a.identifier.cmp(&b.identifier));
            v.dedup_by(|a, b| a.identifier == b.identifier);
            v
        })
    }

    fn arb_duration() -> impl Strategy<Value = Option<CalendarDuration>> {
        let unit = prop_oneof![
            Just(CalendarUnit::Days),
            Just(CalendarUnit::Weeks),
            Just(CalendarUnit::Months),
            Just(CalendarUnit::Years),
        ];
        prop::option::of(
            (unit, 1u32..60).prop_map(|(unit, amount)| CalendarDuration {
                // Up to about 60 days, 15 weeks, 15 months, 4 years: around the 3 years of history.
                amount: match unit {
                    CalendarUnit::Days => amount,
                    CalendarUnit::Weeks | CalendarUnit::Months => amount / 4 + 1,
                    CalendarUnit::Years => amount / 15 + 1,
                },
                unit,
            }),
        )
    }

    fn arb_calendar() -> impl Strategy<Value = TierCalendar> {
        (0u8..7, 1u32..=28, 0u8..12).prop_map(|(weekday, monthly_on_day, month)| TierCalendar {
            weekly_on: Weekday::try_from(weekday).unwrap(),
            monthly_on_day,
            yearly_in_month: Month::try_from(month + 1).unwrap(),
            ..TierCalendar::default()
        })
    }

    fn arb_rules() -> impl Strategy<Value = Rules> {
        (
            (0u32..40, 0u32..15, 0u32..15, 0u32..8),
            (
                arb_duration(),
                arb_duration(),
                arb_duration(),
                arb_duration(),
            ),
            arb_calendar(),
            prop::option::of(0u64..(60 * 86_400)),
            1u32..6,
        )
            .prop_map(
                |((d, w, m, y), (daily, weekly, monthly, yearly), calendar, within, min)| Rules {
                    daily,
                    weekly,
                    monthly,
                    yearly,
                    calendar,
                    keep_daily: d,
                    keep_weekly: w,
                    keep_monthly: m,
                    keep_yearly: y,
                    keep_within: within.map(Duration::from_secs),
                    min_count: min,
                    max_delete_fraction: 1.0,
                },
            )
    }

    /// Lineages on hold: some of the originals `o0` … `o4`.
    fn arb_held() -> impl Strategy<Value = BTreeSet<String>> {
        prop::collection::btree_set((0u8..5).prop_map(original_arn), 0..3)
    }

    /// The reasons that keep `s`, computed independently of the planner, one rule at a time (the oracle).
    fn oracle_reasons(
        s: &Snapshot,
        all: &[Snapshot],
        rules: &Rules,
        context: &Context,
        now: DateTime<Utc>,
    ) -> BTreeSet<KeepReason> {
        let managed = |x: &Snapshot| x.is_managed() && x.is_available();
        let newer = |a: &Snapshot, b: &Snapshot| {
            (a.created_at, Reverse(&a.identifier)) > (b.created_at, Reverse(&b.identifier))
        };
        let mut out = BTreeSet::new();
        if !s.is_managed() {
            out.insert(KeepReason::Unmanaged);
        }
        let lineage = [
            Some(s.arn.as_str()),
            s.copied_from.as_deref(),
            s.tags.get(tags::COPIED_FROM),
        ];
        if s.on_legal_hold()
            || lineage
                .into_iter()
                .flatten()
                .any(|arn| context.held.contains(arn))
        {
            out.insert(KeepReason::LegalHold);
        }
        let dead = crate::copy::is_failed_status(&s.status)
            && now.signed_duration_since(s.created_at).num_seconds() >= 24 * 3600;
        if !s.is_available() && !dead {
            out.insert(KeepReason::NotAvailable);
        }
        if s.is_manual() && !dead && s.expires_at().is_none_or(|e| e > now) {
            out.insert(KeepReason::ManualNotExpired);
        }
        if let Some(w) = rules.keep_within
            && !dead
            && (now - s.created_at).to_std().unwrap_or_default() < w
        {
            out.insert(KeepReason::Within);
        }
        if managed(s)
            && s.verified_at().is_some()
            && !all
                .iter()
                .any(|o| managed(o) && o.verified_at().is_some() && newer(o, s))
        {
            out.insert(KeepReason::NewestVerified);
        }
        if !context.database_exists && managed(s) && !all.iter().any(|o| managed(o) && newer(o, s))
        {
            out.insert(KeepReason::LastOfDeletedDatabase);
        }
        if managed(s) && !s.is_manual() {
            let eligible: Vec<&Snapshot> = all
                .iter()
                .filter(|o| managed(o) && !o.is_manual())
                .collect();
            let rules_list: [(u32, KeepReason, BucketOf); 4] = [
                (rules.keep_daily, KeepReason::Daily, |t| {
                    (t.year(), t.ordinal(), 0)
                }),
                (rules.keep_weekly, KeepReason::Weekly, |t| {
                    (t.iso_week().year(), t.iso_week().week(), 0)
                }),
                (rules.keep_monthly, KeepReason::Monthly, |t| {
                    (t.year(), t.month(), 0)
                }),
                (rules.keep_yearly, KeepReason::Yearly, |t| (t.year(), 0, 0)),
            ];
            for (n, reason, bucket_of) in rules_list {
                let mine = bucket_of(s.created_at);
                let newest_in_bucket = !eligible
                    .iter()
                    .any(|o| bucket_of(o.created_at) == mine && newer(o, s));
                let newer_buckets: BTreeSet<_> = eligible
                    .iter()
                    .map(|o| bucket_of(o.created_at))
                    .filter(|b| *b > mine)
                    .collect();
                if newest_in_bucket && (newer_buckets.len() as u32) < n {
                    out.insert(reason);
                }
            }
            // Duration rules: the earliest snapshot labelled with the tier in the period, else the earliest of
            // the period, is kept while younger than the duration (calendar months and years).
            let durations = [
                (rules.daily, Tier::Daily, KeepReason::Daily),
                (rules.weekly, Tier::Weekly, KeepReason::Weekly),
                (rules.monthly, Tier::Monthly, KeepReason::Monthly),
                (rules.yearly, Tier::Yearly, KeepReason::Yearly),
            ];
            for (duration, tier, reason) in durations {
                let Some(duration) = duration else { continue };
                let period =
                    |x: &Snapshot| rules.calendar.period_start(tier, x.created_at.date_naive());
                let labelled = |x: &Snapshot| {
                    x.tags
                        .get(tags::TIER)
                        .is_some_and(|label| label.split('+').any(|name| name == tier.as_str()))
                };
                let members: Vec<&Snapshot> = eligible
                    .iter()
                    .copied()
                    .filter(|o| period(o) == period(s))
                    .collect();
                let earliest = |candidates: &mut dyn Iterator<Item = &Snapshot>| {
                    candidates
                        .min_by_key(|x| (x.created_at, Reverse(x.identifier.clone())))
                        .map(|x| x.identifier.clone())
                };
                let recovery_point = earliest(&mut members.iter().copied().filter(|o| labelled(o)))
                    .or_else(|| earliest(&mut members.iter().copied()));
                let n = duration.amount;
                let cutoff = match duration.unit {
                    CalendarUnit::Days => now - Days::days(i64::from(n)),
                    CalendarUnit::Weeks => now - Days::weeks(i64::from(n)),
                    CalendarUnit::Months => now.checked_sub_months(Months::new(n)).unwrap(),
                    CalendarUnit::Years => now.checked_sub_months(Months::new(12 * n)).unwrap(),
                };
                if recovery_point.as_ref() == Some(&s.identifier) && s.created_at > cutoff {
                    out.insert(reason);
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn a_snapshot_listed_twice_is_planned_once(history in arb_history(), rules in arb_rules(), repeat in proptest::collection::vec(any::<prop::sample::Index>(), 1..20)) {
            let now = Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap();
            prop_assume!(!history.is_empty());
            let context = Context::default();
            let once = plan(&history, &rules, &context, now);
            let mut listed = history.clone();
            listed.extend(repeat.iter().map(|i| i.get(&history).clone()));
            let twice = plan(&listed, &rules, &context, now);
            prop_assert_eq!(twice.decisions.len(), history.len());
            prop_assert_eq!(twice.deletions(), once.deletions());
            let kept: BTreeSet<&str> = twice.kept().map(|d| d.snapshot.as_str()).collect();
            prop_assert!(twice.deletions().iter().all(|id| !kept.contains(id)));
        }

        #[test]
        fn a_snapshot_listed_twice_with_different_details_is_kept(history in arb_history(), rules in arb_rules(), which in any::<prop::sample::Index>(), change in 0..3usize) {
            let now = Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap();
            prop_assume!(!history.is_empty());
            let context = Context::default();
            let once = plan(&history, &rules, &context, now);
            let mut other = which.get(&history).clone();
            match change {
                0 => other.status = "deleting".into(),
                1 => { other.tags.insert(tags::LEGAL_HOLD.into(), "true".into()); }
                _ => other.created_at -= Days::days(400),
            }
            prop_assume!(other != *which.get(&history), "already so");
            let mut listed = history.clone();
            listed.push(other.clone());
            let twice = plan(&listed, &rules, &context, now);
            prop_assert_eq!(twice.decisions.len(), history.len());
            let decision = twice.decisions.iter().find(|d| d.snapshot == other.identifier).unwrap();
            prop_assert!(decision.keep.contains(&KeepReason::ListedInconsistently), "{:?}", decision);
            // And the odd entry deletes nothing the plan without it kept.
            let before: BTreeSet<&str> = once.deletions().into_iter().collect();
            prop_assert!(twice.deletions().iter().all(|id| before.contains(id)), "{:?} vs {:?}", twice.deletions(), before);
        }

        #[test]
        fn every_decision_is_explained_and_no_kept_snapshot_is_deleted(history in arb_history(), rules in arb_rules(), exists in any::<bool>(), held in arb_held()) {
            let now = Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap();
            let context = Context { database_exists: exists, held, ..Context::default() };
            let plan = plan(&history, &rules, &context, now);
            prop_assert_eq!(plan.decisions.len(), history.len());
            for decision in &plan.decisions {
                let s = history.iter().find(|s| s.identifier == decision.snapshot).unwrap();
                let oracle = oracle_reasons(s, &history, &rules, &context, now);
                let planned: BTreeSet<KeepReason> = decision.keep.iter().copied().filter(|r| *r != KeepReason::MinCount).collect();
                // Every reason the planner gives is one a rule or floor gives, and vice versa.
                prop_assert_eq!(&planned, &oracle, "{}", decision.snapshot);
                // So nothing a rule or floor keeps is deleted.
                if !oracle.is_empty() {
                    prop_assert!(!decision.keep.is_empty());
                }
            }
            // The minimum count holds.
            let managed = history.iter().filter(|s| s.is_managed() && s.is_available()).count();
            let kept_managed = plan.kept().filter(|d| history.iter().any(|s| s.identifier == d.snapshot && s.is_managed() && s.is_available())).count();
            prop_assert!(kept_managed >= managed.min(rules.min_count as usize));
        }

        #[test]
        fn plan_does_not_depend_on_input_order(history in arb_history(), rules in arb_rules(), seed in any::<u64>()) {
            let now = Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap();
            let mut shuffled = history.clone();
            let len = shuffled.len();
            for i in (1..len).rev() {
                let j = (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) % (i as u64 + 1)) as usize;
                shuffled.swap(i, j);
            }
            prop_assert_eq!(plan(&history, &rules, &exists(), now), plan(&shuffled, &rules, &exists(), now));
        }

        #[test]
        fn planning_what_was_kept_deletes_nothing_more(history in arb_history(), rules in arb_rules(), exists in any::<bool>(), held in arb_held()) {
            let now = Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap();
            let context = Context { database_exists: exists, held, ..Context::default() };
            let first = plan(&history, &rules, &context, now);
            let deleted: BTreeSet<&str> = first.deletions().into_iter().collect();
            let survivors: Vec<Snapshot> = history.iter().filter(|s| !deleted.contains(s.identifier.as_str())).cloned().collect();
            let second = plan(&survivors, &rules, &context, now);
            prop_assert!(second.deletions().is_empty(), "{:?}", second.deletions());
        }
    }
}
