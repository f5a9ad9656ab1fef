//! Restore-drill planning (pure): which databases are due for a drill, from which recovery point, and the tags a
//! drill starts with.
//!
//! A drill restores a snapshot into a temporary, private instance (Aurora: a temporary cluster with one instance),
//! sets credentials that exist only for the drill, runs the policy's SQL checks, records the result and deletes
//! everything. It is restored and advanced by the one restore engine ([`crate::restore`], purpose
//! [`Purpose::Drill`](crate::restore::Purpose::Drill)): its state lives in the tags of its temporary resources.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::{Database, Snapshot};
use crate::ownership::Deployment;
use crate::policy::Policy;
use crate::restore::{self, Phase, Restoration};
use crate::tags;

/// How long a drill may live before the sweeper deletes what is left of it.
pub const DRILL_LIFETIME: Duration = Duration::from_secs(6 * 3600);

/// Grace after `every` before a drill counts as overdue.
pub const OVERDUE_GRACE: Duration = Duration::from_secs(24 * 3600);

/// `lifeboat:verify-result` values. Only `failed` says the recovery point itself is at fault.
pub mod result {
    /// Every check passed on the restored database.
    pub const PASSED: &str = "passed";
    /// The restore failed, or a check failed on a connected database: the recovery point is at fault.
    pub const FAILED: &str = "failed";
    /// The drill infrastructure failed on every attempt (or the drill expired unfinished): nothing is known
    /// about the recovery point. The next recovery point is drilled.
    pub const INCONCLUSIVE: &str = "inconclusive";
    /// RDS refused to start the drill (for example an instance class the engine does not offer): recorded and
    /// alerted once for this recovery point, never retried on it.
    pub const NOT_STARTED: &str = "not-started";
}

/// A drill to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDrill {
    /// The database whose newest recovery point is drilled.
    pub database: Database,
    /// The snapshot to restore.
    pub snapshot: Snapshot,
    /// The deterministic drill identifier.
    pub id: String,
    /// Since when the database (in this region) has waited for a drill: its last drill, passed or not (the
    /// verification time, or the time of the newest recovery point that has a result), else its oldest recovery
    /// point; for a drill asked for by hand, when it was asked. Drills wait for a place in this order, the longest
    /// waiting first, so that databases whose drills keep failing do not take every place.
    pub waiting_since: DateTime<Utc>,
}

/// A database whose last verified recovery point is older than its cadence allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overdue {
    /// The database.
    pub database: String,
    /// When a restore was last verified, if ever.
    pub last_verified: Option<DateTime<Utc>>,
}

/// Which drills `deployment` starts at `now`: every database whose plan has `verification`, whose newest
/// verification is older than `every`, and that has no drill in progress, drilled from its newest available
/// snapshot that this deployment made and has not drilled yet (a failed drill is retried on the next recovery
/// point, not in a loop). Also returns the databases that are overdue (past `every` plus a day).
pub fn due_drills(
    policy: &Policy,
    deployment: &Deployment,
    databases: &[Database],
    snapshots: &[Snapshot],
    drills: &[Restoration],
    now: DateTime<Utc>,
) -> (Vec<DueDrill>, Vec<Overdue>) {
    due_drills_in(policy, deployment, databases, snapshots, drills, None, now)
}

/// [`due_drills`] of the recovery points in `region`: `None` for the primary region (the databases' own), or a DR
/// region listed in the plan's `verification.regions`, whose copies are drilled on that region's cadence.
/// `snapshots` and `drills` may hold other regions' too: only `region`'s count.
pub fn due_drills_in(
    policy: &Policy,
    deployment: &Deployment,
    databases: &[Database],
    snapshots: &[Snapshot],
    drills: &[Restoration],
    region: Option<&str>,
    now: DateTime<Utc>,
) -> (Vec<DueDrill>, Vec<Overdue>) {
    let mut due = Vec::new();
    let mut overdue = Vec::new();
    let own = deployment.own_snapshots_by_database(snapshots);
    for db in databases
        .iter()
        .filter(|db| db.cluster.is_none() && !crate::restore::is_restored(db))
    {
        let Some(verification) = policy
            .plan_for(db)
            .and_then(|plan| plan.verification.as_ref())
        else {
            continue;
        };
        if region.is_some_and(|r| !verification.regions.contains_key(r)) {
            continue;
        }
        let every = verification.every_in(region);
        let where_ = region.unwrap_or(&db.region);
        let mine: Vec<&Snapshot> = own
            .get(&(db.identifier.as_str(), db.kind))
            .into_iter()
            .flatten()
            .copied()
            .filter(|s| s.region == where_)
            .collect();
        let last_verified = mine.iter().filter_map(|s| s.verified_at()).max();
        let age = |t: DateTime<Utc>| now.signed_duration_since(t).to_std().unwrap_or_default();
        if last_verified.is_some_and(|t| age(t) < every) {
            continue;
        }
        let protected_since = mine.iter().map(|s| s.created_at).min();
        let last_tried = mine
            .iter()
            .filter(|s| s.tags.contains_key(tags::VERIFY_RESULT))
            .map(|s| s.created_at)
            .max();
        let late = match last_verified {
            Some(t) => age(t) >= every + OVERDUE_GRACE,
            None => protected_since.is_some_and(|t| age(t) >= every + OVERDUE_GRACE),
        };
        if late {
            overdue.push(Overdue {
                database: db.identifier.clone(),
                last_verified,
            });
        }
        if drills
            .iter()
            .any(|d| d.database == db.identifier && d.resource.region == where_)
        {
            continue;
        }
        let newest = mine
            .into_iter()
            .filter(|s| s.is_available() && !s.tags.contains_key(tags::VERIFY_RESULT))
            .max_by(|a, b| {
                a.created_at
                    .cmp(&b.created_at)
                    .then_with(|| b.identifier.cmp(&a.identifier))
            });
        if let Some(snapshot) = newest {
            due.push(DueDrill {
                database: db.clone(),
                id: drill_identifier_in(&db.identifier, &snapshot.identifier, region),
                snapshot: snapshot.clone(),
                waiting_since: last_verified
                    .max(last_tried)
                    .or(protected_since)
                    .unwrap_or(snapshot.created_at),
            });
        }
    }
    (due, overdue)
}

/// A due drill and the region it restores in.
pub type DueIn = (DueDrill, String);

/// Due drills split into those to start now and those that wait: at most `max_in_progress` drills in progress per
/// region, counting `in_progress`, started the longest waiting first ([`DueDrill::waiting_since`]; by database for
/// a tie).
pub fn within_limit(
    mut due: Vec<DueIn>,
    in_progress: &[Restoration],
    max_in_progress: u32,
) -> (Vec<DueIn>, Vec<DueIn>) {
    due.sort_by(|(a, a_region), (b, b_region)| {
        (a.waiting_since, &a.database.identifier, a_region).cmp(&(
            b.waiting_since,
            &b.database.identifier,
            b_region,
        ))
    });
    let mut busy: BTreeMap<&str, u32> = BTreeMap::new();
    for drill in in_progress {
        *busy.entry(drill.resource.region.as_str()).or_default() += 1;
    }
    let mut started: BTreeMap<String, u32> = BTreeMap::new();
    let (mut start, mut wait) = (Vec::new(), Vec::new());
    for (drill, region) in due {
        let taken = busy.get(region.as_str()).copied().unwrap_or(0)
            + started.get(&region).copied().unwrap_or(0);
        if taken < max_in_progress {
            *started.entry(region.clone()).or_default() += 1;
            start.push((drill, region));
        } else {
            wait.push((drill, region));
        }
    }
    (start, wait)
}

/// The deterministic identifier of the drill of `snapshot` (a valid DB instance and cluster identifier):
/// `lbdrill-<database, cut>-<8 hex>`, so starting the same drill twice finds "already exists".
pub fn drill_identifier(database: &str, snapshot: &str) -> String {
    let digest = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{database}/{snapshot}").as_bytes(),
    );
    let cut: String = database.chars().take(40).collect();
    let cut = cut.trim_end_matches('-');
    format!("lbdrill-{cut}-{}", &digest.simple().to_string()[..8])
}

/// [`drill_identifier`] of a drill in `region`: a DR region's drill of a copy gets an identifier of its own (a
/// copy may carry its original's name, and the drill credentials of both live in the primary region).
pub fn drill_identifier_in(database: &str, snapshot: &str, region: Option<&str>) -> String {
    match region {
        None => drill_identifier(database, snapshot),
        Some(region) => drill_identifier(database, &format!("{snapshot}@{region}")),
    }
}

/// Tags of a drill's temporary database at its start, `deployment`'s identity among them.
pub fn drill_tags(
    policy: &Policy,
    deployment: &Deployment,
    due: &DueDrill,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let time = restore::tag_time;
    let expires = now + chrono::Duration::from_std(DRILL_LIFETIME).unwrap_or_default();
    let plan = policy
        .plan_for(&due.database)
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let [deployment_tag, home_region_tag] = deployment.tags();
    vec![
        (tags::MANAGED.into(), tags::TRUE.into()),
        deployment_tag,
        home_region_tag,
        (tags::PLAN.into(), plan),
        (tags::DRILL.into(), due.id.clone()),
        (tags::POLICY.into(), policy.name.clone()),
        (tags::SOURCE.into(), due.database.identifier.clone()),
        (tags::DRILL_SNAPSHOT.into(), due.snapshot.identifier.clone()),
        (tags::DRILL_SNAPSHOT_ARN.into(), due.snapshot.arn.clone()),
        (
            tags::DRILL_SNAPSHOT_TIME.into(),
            time(due.snapshot.created_at),
        ),
        (tags::DRILL_PHASE.into(), Phase::Restoring.as_str().into()),
        (tags::DRILL_STARTED_AT.into(), time(now)),
        (tags::EXPIRES_AT.into(), time(expires)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DatabaseKind;
    use crate::restore::{InfrastructureRetry, Step, after_infrastructure_failure, next_step};
    use std::collections::BTreeMap;

    fn db(id: &str, tags: &[(&str, &str)]) -> Database {
        Database {
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
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn snap(id: &str, database: &str, created: &str, verified: Option<&str>) -> Snapshot {
        let mut tags: BTreeMap<String, String> =
            [(tags::MANAGED.to_string(), tags::TRUE.to_string())]
                .into_iter()
                .chain(deployment().tags())
                .collect();
        if let Some(v) = verified {
            tags.insert(tags::VERIFIED_AT.into(), v.into());
        }
        Snapshot {
            identifier: id.into(),
            arn: format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}"),
            region: "us-east-1".into(),
            kind: DatabaseKind::Instance,
            database: database.into(),
            created_at: created.parse().unwrap(),
            status: "available".into(),
            encrypted: true,
            engine: None,
            copied_from: None,
            tags: tags.into(),
        }
    }

    fn policy() -> Policy {
        Policy::from_yaml(
            "version: 1\nname: t\nplans:\n  - name: p\n    select: {tags: {drill: \"yes\"}}\n    retention: {keep_daily: 7}\n    verification: {every: 7d, instance_class: db.t3.micro, subnet_group: drills, security_groups: [sg-1]}\n    objectives: {rpo: 1h, rto: 4h}\n",
        )
        .unwrap()
    }

    fn deployment() -> Deployment {
        Deployment::new("lifeboat", "us-east-1").unwrap()
    }

    fn at(t: &str) -> DateTime<Utc> {
        t.parse().unwrap()
    }

    fn now() -> DateTime<Utc> {
        at("2026-11-22T03:00:00Z")
    }

    #[test]
    fn due_when_never_or_long_ago_verified_from_the_newest_snapshot() {
        let fleet = [
            db("booking", &[("drill", "yes")]),
            db("fresh", &[("drill", "yes")]),
            db("other", &[]),
        ];
        let snaps = [
            snap(
                "b-old",
                "booking",
                "2026-11-20T02:00:00Z",
                Some("2026-11-01T05:00:00Z"),
            ),
            snap("b-new", "booking", "2026-11-21T02:00:00Z", None),
            snap(
                "f-1",
                "fresh",
                "2026-11-21T02:00:00Z",
                Some("2026-11-19T05:00:00Z"),
            ),
            snap("o-1", "other", "2026-11-21T02:00:00Z", None),
        ];
        let (due, overdue) = due_drills(
            &policy(),
            &deployment(),
            &fleet,
            &snaps,
            &[],
            at("2026-11-22T03:00:00Z"),
        );
        assert_eq!(due.len(), 1);
        assert_eq!(
            (
                due[0].database.identifier.as_str(),
                due[0].snapshot.identifier.as_str()
            ),
            ("booking", "b-new")
        );
        assert_eq!(
            overdue.len(),
            1,
            "21 days since the last verification is past 7 days and a grace day"
        );
        assert_eq!(overdue[0].last_verified, Some(at("2026-11-01T05:00:00Z")));
    }

    #[test]
    fn a_failed_drill_is_not_repeated_on_the_same_snapshot() {
        let fleet = [db("booking", &[("drill", "yes")])];
        let mut failed = snap("b-new", "booking", "2026-11-21T02:00:00Z", None);
        failed
            .tags
            .insert(tags::VERIFY_RESULT.into(), "failed".into());
        let (due, overdue) = due_drills(
            &policy(),
            &deployment(),
            &fleet,
            std::slice::from_ref(&failed),
            &[],
            at("2026-11-21T05:00:00Z"),
        );
        assert!(due.is_empty(), "nothing new to drill");
        assert!(
            overdue.is_empty(),
            "protected for hours only: not overdue yet"
        );
        let (_, overdue) = due_drills(
            &policy(),
            &deployment(),
            &fleet,
            std::slice::from_ref(&failed),
            &[],
            at("2026-11-30T05:00:00Z"),
        );
        assert_eq!(overdue.len(), 1, "never verified in over a week: overdue");
        let next = snap("b-next", "booking", "2026-11-22T02:00:00Z", None);
        let (due, _) = due_drills(
            &policy(),
            &deployment(),
            &fleet,
            &[failed, next],
            &[],
            at("2026-11-22T03:00:00Z"),
        );
        assert_eq!(
            due[0].snapshot.identifier, "b-next",
            "the next recovery point is drilled"
        );
        assert_eq!(
            due[0].waiting_since,
            at("2026-11-21T02:00:00Z"),
            "it waits since its last drill (the failed one), not since it was last verified (never)"
        );
    }

    #[test]
    fn a_drill_in_progress_is_not_started_twice() {
        let fleet = [db("booking", &[("drill", "yes")])];
        let snaps = [snap("b-new", "booking", "2026-11-21T02:00:00Z", None)];
        let id = drill_identifier("booking", "b-new");
        let mut resource = db(&id, &[]);
        resource.tags = [(tags::DRILL, id.as_str()), (tags::SOURCE, "booking")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let drill = Restoration::from_resource(&resource).unwrap();
        let (due, _) = due_drills(
            &policy(),
            &deployment(),
            &fleet,
            &snaps,
            &[drill],
            at("2026-11-22T03:00:00Z"),
        );
        assert!(due.is_empty());
    }

    /// The temporary database of the drill of booking's newest snapshot, tagged as it started at `now`.
    fn started_drill_resource(now: DateTime<Utc>) -> Database {
        let due = DueDrill {
            database: db("booking", &[]),
            snapshot: snap("b-new", "booking", "2026-11-21T02:00:00Z", None),
            id: drill_identifier("booking", "b-new"),
            waiting_since: now,
        };
        let mut resource = db(&due.id, &[]);
        resource.tags = drill_tags(&policy(), &deployment(), &due, now)
            .into_iter()
            .collect();
        resource
    }

    #[test]
    fn steps_follow_phase_status_and_expiry() {
        let now = at("2026-11-22T03:00:00Z");
        let mut drill = Restoration::from_resource(&started_drill_resource(now)).unwrap();
        assert_eq!(drill.phase, Phase::Restoring);
        assert_eq!(next_step(&drill, now), Step::SecureCredentials);
        drill.resource.status = "creating".into();
        assert_eq!(next_step(&drill, now), Step::Wait);
        drill.resource.status = "failed".into();
        assert_eq!(next_step(&drill, now), Step::RecordFailedRestore);
        drill.resource.status = "available".into();
        drill.phase = Phase::Securing;
        assert_eq!(next_step(&drill, now), Step::RunChecks);
        drill.resource.status = "modifying".into();
        assert_eq!(next_step(&drill, now), Step::Wait);
        assert_eq!(
            next_step(&drill, now + chrono::Duration::hours(7)),
            Step::CleanUp,
            "expired: swept"
        );
        drill.phase = Phase::CleaningUp;
        assert_eq!(next_step(&drill, now), Step::CleanUp);
    }

    #[test]
    fn infrastructure_failures_are_retried_a_bounded_number_of_times() {
        let now = at("2026-11-22T03:00:00Z");
        let mut resource = started_drill_resource(now);
        let drill = Restoration::from_resource(&resource).unwrap();
        assert_eq!(drill.attempts, 0, "no attempt failed yet");
        assert_eq!(
            after_infrastructure_failure(&drill),
            InfrastructureRetry::Retry { attempt: 1, of: 3 }
        );
        resource
            .tags
            .insert(tags::DRILL_ATTEMPTS.into(), "1".into());
        let drill = Restoration::from_resource(&resource).unwrap();
        assert_eq!(
            after_infrastructure_failure(&drill),
            InfrastructureRetry::Retry { attempt: 2, of: 3 }
        );
        resource
            .tags
            .insert(tags::DRILL_ATTEMPTS.into(), "2".into());
        let drill = Restoration::from_resource(&resource).unwrap();
        assert_eq!(
            after_infrastructure_failure(&drill),
            InfrastructureRetry::GiveUp { attempts: 3 }
        );
        assert!(!drill.swept_unfinished(now));
        assert!(drill.swept_unfinished(now + chrono::Duration::hours(7)));
    }

    #[test]
    fn an_inconclusive_or_refused_drill_is_not_repeated_on_the_same_snapshot() {
        let fleet = [db("booking", &[("drill", "yes")])];
        for result in [result::INCONCLUSIVE, result::NOT_STARTED] {
            let mut tried = snap("b-new", "booking", "2026-11-21T02:00:00Z", None);
            tried.tags.insert(tags::VERIFY_RESULT.into(), result.into());
            let (due, _) = due_drills(
                &policy(),
                &deployment(),
                &fleet,
                std::slice::from_ref(&tried),
                &[],
                at("2026-11-21T05:00:00Z"),
            );
            assert!(
                due.is_empty(),
                "{result}: recorded once, not retried every run"
            );
            let next = snap("b-next", "booking", "2026-11-22T02:00:00Z", None);
            let (due, _) = due_drills(
                &policy(),
                &deployment(),
                &fleet,
                &[tried, next],
                &[],
                at("2026-11-22T03:00:00Z"),
            );
            assert_eq!(due[0].snapshot.identifier, "b-next", "{result}");
        }
    }

    #[test]
    fn dr_region_copies_are_drilled_on_their_own_cadence() {
        let policy = Policy::from_yaml(
            "version: 1\nname: t\nplans:\n  - name: p\n    select: {tags: {drill: \"yes\"}}\n    retention: {keep_daily: 7}\n    copies: [{region: us-west-2, kms_key_id: alias/lifeboat-dr, retain_days: 90}]\n    verification:\n      every: 7d\n      instance_class: db.t3.micro\n      subnet_group: drills\n      security_groups: [sg-east]\n      regions: {us-west-2: {security_groups: [sg-west], every: 30d}}\n    objectives: {rpo: 1h, rto: 4h}\n",
        )
        .unwrap();
        let fleet = [db("booking", &[("drill", "yes")])];
        let mut copy = snap("b-new-copy", "booking", "2026-11-21T02:00:00Z", None);
        copy.region = "us-west-2".into();
        copy.arn = "arn:aws:rds:us-west-2:123456789012:snapshot:b-new-copy".into();
        let mut old_copy = snap(
            "b-old-copy",
            "booking",
            "2026-11-01T02:00:00Z",
            Some("2026-11-10T05:00:00Z"),
        );
        old_copy.region = "us-west-2".into();
        let primary = snap(
            "b-new",
            "booking",
            "2026-11-21T02:00:00Z",
            Some("2026-11-21T05:00:00Z"),
        );
        let all = [primary, copy.clone(), old_copy];
        let now = at("2026-11-22T03:00:00Z");
        let (due, _) = due_drills(&policy, &deployment(), &fleet, &all, &[], now);
        assert!(due.is_empty(), "verified in the primary region yesterday");
        let (due, _) = due_drills_in(
            &policy,
            &deployment(),
            &fleet,
            &all,
            &[],
            Some("us-west-2"),
            now,
        );
        assert!(
            due.is_empty(),
            "us-west-2 verified 12 days ago, its cadence is 30 days"
        );
        let (due, _) = due_drills_in(
            &policy,
            &deployment(),
            &fleet,
            &all,
            &[],
            Some("us-west-2"),
            at("2026-12-11T03:00:00Z"),
        );
        assert_eq!(
            due[0].snapshot.identifier, "b-new-copy",
            "the region's own newest copy"
        );
        assert_ne!(
            due[0].id,
            drill_identifier("booking", "b-new-copy"),
            "a DR drill's identifier (and credentials) differ from a primary drill's"
        );
        let (due, _) = due_drills_in(
            &policy,
            &deployment(),
            &fleet,
            &all,
            &[],
            Some("eu-west-1"),
            at("2026-12-11T03:00:00Z"),
        );
        assert!(due.is_empty(), "not a drill region of the plan");
        let v = policy.plans[0].verification.as_ref().unwrap();
        assert_eq!(
            v.network_in(Some("us-west-2")),
            ("drills", &["sg-west".to_string()][..])
        );
        assert_eq!(v.network_in(None), ("drills", &["sg-east".to_string()][..]));
    }

    #[test]
    fn drill_identifiers_are_valid_and_deterministic() {
        let id = drill_identifier(&"a-very-long-database-name-".repeat(4), "snap-1");
        assert!(id.len() <= 63, "{id}");
        assert!(id.starts_with("lbdrill-") && !id.contains("--"), "{id}");
        assert_eq!(
            id,
            drill_identifier(&"a-very-long-database-name-".repeat(4), "snap-1")
        );
        assert_ne!(
            drill_identifier("db", "snap-1"),
            drill_identifier("db", "snap-2")
        );
    }

    /// A due drill of database `n`, waiting since `hours` hours before `now()`.
    fn due_of(n: usize, hours: i64) -> DueDrill {
        let id = format!("db-{n}");
        DueDrill {
            database: db(&id, &[]),
            snapshot: snap(&format!("{id}-s"), &id, "2026-11-21T02:00:00Z", None),
            id: drill_identifier(&id, &format!("{id}-s")),
            waiting_since: now() - chrono::Duration::hours(hours),
        }
    }

    #[test]
    fn drills_beyond_the_limit_wait_the_longest_waiting_first() {
        let regions = |drills: &[DueIn]| -> Vec<(String, String)> {
            drills
                .iter()
                .map(|(d, r)| (d.database.identifier.clone(), r.clone()))
                .collect()
        };
        let mut busy = Restoration::from_resource(&started_drill_resource(now())).unwrap();
        busy.resource.region = "us-west-2".into();
        let due = vec![
            (due_of(1, 10), "us-east-1".to_string()),
            (due_of(2, 900), "us-east-1".to_string()),
            (due_of(3, 500), "us-east-1".to_string()),
            (due_of(4, 1), "us-west-2".to_string()),
            (due_of(5, 2), "us-west-2".to_string()),
        ];
        let (start, wait) = within_limit(due, &[busy], 2);
        assert_eq!(
            regions(&start),
            [
                ("db-2".to_string(), "us-east-1".to_string()),
                ("db-3".into(), "us-east-1".into()),
                ("db-5".into(), "us-west-2".into()),
            ],
            "the longest waiting first; one place left in us-west-2"
        );
        assert_eq!(
            regions(&wait),
            [
                ("db-1".to_string(), "us-east-1".to_string()),
                ("db-4".into(), "us-west-2".into()),
            ]
        );
    }

    proptest::proptest! {
        /// Whatever is due and in progress: no region goes over the limit, nothing due is lost or doubled, and no
        /// drill waits while one in its region that has waited less starts.
        #[test]
        fn the_drill_limit_holds_and_waits_in_order(
            due in proptest::collection::vec((0usize..3, 0i64..100), 0..30),
            busy in proptest::collection::vec(0usize..3, 0..8),
            limit in 1u32..6,
        ) {
            let region = |r: usize| ["us-east-1", "us-west-2", "eu-west-1"][r].to_string();
            let due: Vec<DueIn> = due
                .iter()
                .enumerate()
                .map(|(n, (r, hours))| (due_of(n, *hours), region(*r)))
                .collect();
            let in_progress: Vec<Restoration> = busy
                .iter()
                .map(|r| {
                    let mut drill = Restoration::from_resource(&started_drill_resource(now())).unwrap();
                    drill.resource.region = region(*r);
                    drill
                })
                .collect();
            let (start, wait) = within_limit(due.clone(), &in_progress, limit);
            let mut all: Vec<String> = start.iter().chain(&wait).map(|(d, _)| d.id.clone()).collect();
            all.sort();
            let mut expected: Vec<String> = due.iter().map(|(d, _)| d.id.clone()).collect();
            expected.sort();
            proptest::prop_assert_eq!(all, expected);
            for r in 0..3 {
                let busy_here = busy.iter().filter(|b| **b == r).count() as u32;
                let started_here: Vec<&DueDrill> =
                    start.iter().filter(|(_, g)| *g == region(r)).map(|(d, _)| d).collect();
                proptest::prop_assert!(
                    started_here.is_empty() || busy_here + started_here.len() as u32 <= limit
                );
                let waiting_here = wait.iter().filter(|(_, g)| *g == region(r)).count();
                if waiting_here > 0 {
                    // A drill waits only when its region is full.
                    proptest::prop_assert_eq!(started_here.len() as u32, limit.saturating_sub(busy_here));
                }
                for (waiting, _) in wait.iter().filter(|(_, g)| *g == region(r)) {
                    for started in &started_here {
                        proptest::prop_assert!(started.waiting_since <= waiting.waiting_since);
                    }
                }
            }
        }
    }
}
