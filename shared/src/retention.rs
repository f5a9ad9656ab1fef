//! Retention planning (pure): which snapshots of one database in one region to keep, by which rule or safety
//! floor, and which to delete.
//!
//! Bucket rules follow restic `forget` and borg `prune`: walking the scheduled snapshots newest first, the first
//! snapshot of each day (ISO week, month, year) is the newest of its bucket; `keep_daily: N` keeps those of the N
//! newest days that have a snapshot, and so on, so a missed Sunday still yields a weekly. `keep_within` keeps
//! everything younger than a duration measured back from the planning time. Manual snapshots are kept until their
//! own `lifeboat:expires-at` and do not take a bucket's place. Everything is decided from creation times, tags and
//! the policy at planning time, so the same inputs always give the same plan, whatever their order.
//!
//! Safety floors override every rule: a snapshot Lifeboat does not manage, one under legal hold, one RDS has not
//! finished (or is copying from), the newest verified recovery point, the newest recovery point of a database that
//! no longer exists, and the newest `min_count` snapshots are never deleted. A plan that would delete more than
//! `max_delete_fraction` of a database's snapshots is refused as a whole.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::model::Snapshot;
use crate::policy::{CopyTarget, Retention};

/// Maps a creation time to its calendar bucket (day, ISO week, month or year).
type BucketOf = fn(DateTime<Utc>) -> (i32, u32, u32);

/// The rules that keep snapshots of one database in one region.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
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
    /// Rules for snapshots in the primary region.
    pub fn primary(retention: &Retention) -> Self {
        Self {
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
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
            keep_yearly: 0,
            keep_within: Some(Duration::from_secs(u64::from(target.retain_days) * 86_400)),
            min_count: retention.min_count,
            max_delete_fraction: retention.max_delete_fraction,
        }
    }
}

/// What retention knows about the database beyond its snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// Whether the source database still exists.
    pub database_exists: bool,
    /// ARNs of snapshots a copy is being made from right now.
    pub copy_sources_in_flight: BTreeSet<String>,
}

/// Why a snapshot is kept. Floors come first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeepReason {
    /// Lifeboat did not make it.
    Unmanaged,
    /// Tagged `lifeboat:legal-hold=true`.
    LegalHold,
    /// RDS has not finished making it.
    NotAvailable,
    /// A copy is being made from it.
    CopyInFlight,
    /// The newest snapshot whose restore was verified.
    NewestVerified,
    /// The newest recovery point of a database that no longer exists.
    LastOfDeletedDatabase,
    /// A manual snapshot before its expiry (or without one).
    ManualNotExpired,
    /// Younger than `keep_within` (a snapshot dated after the planning time, by clock skew, counts as new).
    Within,
    /// Newest of one of the last `keep_daily` days.
    Daily,
    /// Newest of one of the last `keep_weekly` ISO weeks.
    Weekly,
    /// Newest of one of the last `keep_monthly` months.
    Monthly,
    /// Newest of one of the last `keep_yearly` years.
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
    /// Every snapshot, newest first, with its reasons.
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
const ALL_REASONS: [KeepReason; 13] = [
    KeepReason::Unmanaged,
    KeepReason::LegalHold,
    KeepReason::NotAvailable,
    KeepReason::CopyInFlight,
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

/// What the tags and status of one snapshot say, read once.
struct Facts {
    /// Managed by Lifeboat and available: the snapshots rules and floors count.
    counted: bool,
    /// Managed, available and not manual: the snapshots bucket rules apply to.
    scheduled: bool,
    verified: bool,
}

/// Plan retention for `snapshots` (one database, one region) under `rules` at `now`.
pub fn plan(snapshots: &[Snapshot], rules: &Rules, context: &Context, now: DateTime<Utc>) -> Plan {
    let mut order: Vec<&Snapshot> = snapshots.iter().collect();
    order.sort_unstable_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| a.identifier.cmp(&b.identifier))
    });
    let mut reasons = vec![Reasons::default(); order.len()];
    let mut facts = Vec::with_capacity(order.len());

    // Floors, and what the snapshot is.
    for (snap, keep) in order.iter().zip(reasons.iter_mut()) {
        let (managed, available, manual) =
            (snap.is_managed(), snap.is_available(), snap.is_manual());
        if !managed {
            keep.insert(KeepReason::Unmanaged);
        }
        if snap.on_legal_hold() {
            keep.insert(KeepReason::LegalHold);
        }
        if !available {
            keep.insert(KeepReason::NotAvailable);
        }
        if !context.copy_sources_in_flight.is_empty()
            && context.copy_sources_in_flight.contains(&snap.arn)
        {
            keep.insert(KeepReason::CopyInFlight);
        }
        if manual && snap.expires_at().is_none_or(|expiry| expiry > now) {
            keep.insert(KeepReason::ManualNotExpired);
        }
        if let Some(within) = rules.keep_within
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

    // Bucket rules over scheduled (non-manual) managed snapshots, newest first.
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

/// Snapshots grouped by (region, database, kind), each group sorted by identifier.
pub fn group(
    snapshots: Vec<Snapshot>,
) -> BTreeMap<(String, String, crate::model::DatabaseKind), Vec<Snapshot>> {
    let mut groups: BTreeMap<_, Vec<Snapshot>> = BTreeMap::new();
    for snap in snapshots {
        groups
            .entry((snap.region.clone(), snap.database.clone(), snap.kind))
            .or_default()
            .push(snap);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DatabaseKind;
    use crate::tags;
    use chrono::{Duration as Days, NaiveDate, TimeZone};
    use proptest::prelude::*;

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
            copied_from: None,
            tags,
        }
    }

    fn seed_rules() -> Rules {
        Rules {
            keep_daily: 30,
            keep_weekly: 12,
            keep_monthly: 12,
            keep_yearly: 7,
            keep_within: None,
            min_count: 3,
            max_delete_fraction: 1.0,
        }
    }

    fn exists() -> Context {
        Context {
            database_exists: true,
            ..Context::default()
        }
    }

    /// Daily snapshots at 02:00 UTC from `first` to `last` inclusive.
    fn daily_history(first: NaiveDate, last: NaiveDate) -> Vec<Snapshot> {
        first
            .iter_days()
            .take_while(|d| *d <= last)
            .map(|d| {
                snap(
                    &format!("s-{d}"),
                    Utc.from_utc_datetime(&d.and_hms_opt(2, 0, 0).unwrap()),
                    &[],
                )
            })
            .collect()
    }

    #[test]
    fn seed_plan_over_eight_years_of_daily_snapshots() {
        let first = NaiveDate::from_ymd_opt(2019, 1, 1).unwrap();
        let last = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        let history = daily_history(first, last);
        assert_eq!(history.len(), 2922);
        let now = Utc.with_ymd_and_hms(2026, 12, 31, 3, 0, 0).unwrap();
        let plan = plan(&history, &seed_rules(), &exists(), now);

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
    }

    #[test]
    fn missed_sunday_still_yields_a_weekly() {
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
            ..seed_rules()
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
                tags: BTreeMap::new(),
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
            ..seed_rules()
        };
        let context = Context {
            database_exists: true,
            copy_sources_in_flight: [
                "arn:aws:rds:us-east-1:123456789012:snapshot:copy-source".to_string()
            ]
            .into(),
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
            ..seed_rules()
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
            keep_weekly: 0,
            keep_monthly: 0,
            keep_yearly: 0,
            min_count: 1,
            max_delete_fraction: 0.5,
            keep_within: None,
        };
        let plan = plan(&history, &rules, &exists(), now);
        assert_eq!(
            plan.refused.as_deref(),
            Some("would delete 8 of 10 managed snapshots (80%), more than max_delete_fraction 50%")
        );
        assert!(plan.deletions().is_empty());
    }

    // Property tests over random histories and policies.

    fn arb_snapshot() -> impl Strategy<Value = Snapshot> {
        (
            0i64..(3 * 365 * 24),
            prop::bool::weighted(0.9),
            prop::bool::weighted(0.05),
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.1),
            prop::option::of(0i64..(3 * 365 * 24)),
            prop::bool::weighted(0.05),
        )
            .prop_map(
                |(hours_ago, managed, hold, manual, verified, expiry_hours, creating)| {
                    let now = Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap();
                    let created = now - Days::hours(hours_ago);
                    let mut s = snap(&format!("s{hours_ago}"), created, &[]);
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
                        s.status = "creating".into();
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

    fn arb_rules() -> impl Strategy<Value = Rules> {
        (
            0u32..40,
            0u32..15,
            0u32..15,
            0u32..8,
            prop::option::of(0u64..(60 * 86_400)),
            1u32..6,
        )
            .prop_map(|(d, w, m, y, within, min)| Rules {
                keep_daily: d,
                keep_weekly: w,
                keep_monthly: m,
                keep_yearly: y,
                keep_within: within.map(Duration::from_secs),
                min_count: min,
                max_delete_fraction: 1.0,
            })
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
            (a.created_at, std::cmp::Reverse(&a.identifier))
                > (b.created_at, std::cmp::Reverse(&b.identifier))
        };
        let mut out = BTreeSet::new();
        if !s.is_managed() {
            out.insert(KeepReason::Unmanaged);
        }
        if s.on_legal_hold() {
            out.insert(KeepReason::LegalHold);
        }
        if !s.is_available() {
            out.insert(KeepReason::NotAvailable);
        }
        if s.is_manual() && s.expires_at().is_none_or(|e| e > now) {
            out.insert(KeepReason::ManualNotExpired);
        }
        if let Some(w) = rules.keep_within
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
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn every_decision_is_explained_and_no_kept_snapshot_is_deleted(history in arb_history(), rules in arb_rules(), exists in any::<bool>()) {
            let now = Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap();
            let context = Context { database_exists: exists, ..Context::default() };
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
        fn planning_what_was_kept_deletes_nothing_more(history in arb_history(), rules in arb_rules(), exists in any::<bool>()) {
            let now = Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap();
            let context = Context { database_exists: exists, ..Context::default() };
            let first = plan(&history, &rules, &context, now);
            let deleted: BTreeSet<&str> = first.deletions().into_iter().collect();
            let survivors: Vec<Snapshot> = history.iter().filter(|s| !deleted.contains(s.identifier.as_str())).cloned().collect();
            let second = plan(&survivors, &rules, &context, now);
            prop_assert!(second.deletions().is_empty(), "{:?}", second.deletions());
        }
    }
}
