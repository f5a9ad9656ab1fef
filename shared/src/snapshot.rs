//! Snapshot planning (pure): which databases to snapshot now, under which deterministic identifier, with which
//! tags. The snapshot function executes the plan; a retried or duplicated run plans the same identifiers, so RDS's
//! "already exists" means the work is done.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, SecondsFormat, Timelike, Utc};

use crate::model::{Database, DatabaseKind, Snapshot, fit_identifier};
use crate::ownership::Deployment;
use crate::policy::{Policy, Tier};
use crate::tags;

/// Why a snapshot run happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotTrigger {
    /// An EventBridge schedule fired; `at` is the scheduled time from the event (the same for every delivery
    /// and retry of that event).
    Scheduled {
        /// Scheduled time of the event.
        at: DateTime<Utc>,
    },
    /// RDS says a database is available again (backup finished, started): the owed scheduled snapshot of `at`'s
    /// window is caught up at once. Only the hourly schedule reports a snapshot missed, so an event in the
    /// reporting hour never repeats that alert.
    CatchUp {
        /// Time of the event.
        at: DateTime<Utc>,
    },
    /// An operator asked for snapshots.
    Manual(ManualRequest),
}

/// An operator's request for manual snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualRequest {
    /// Databases to snapshot; empty means every database the policy selects.
    pub databases: Vec<String>,
    /// Why (written to tags and the ledger).
    pub reason: String,
    /// Days to keep the snapshots; the policy's default when `None`.
    pub retain_days: Option<u32>,
    /// Makes the request idempotent: the same key yields the same snapshot identifiers. The Lambda request ID
    /// (kept by Lambda's own retries) when the operator gives none.
    pub idempotency_key: String,
    /// When the request was made.
    pub requested_at: DateTime<Utc>,
}

/// A request that cannot be planned: nothing is snapshotted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotPlanError {
    /// Named databases do not exist in the region.
    #[error("no DB instance or cluster named {} in {region}", quoted(.missing))]
    UnknownDatabases {
        /// The names not found.
        missing: Vec<String>,
        /// Region searched.
        region: String,
    },
    /// Named DB instances belong to clusters, which are snapshotted as a whole.
    #[error("{} belong(s) to a DB cluster: name the cluster instead ({})", quoted(&.members.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>()), .members.iter().map(|(i, c)| format!("{i} is in {c}")).collect::<Vec<_>>().join(", "))]
    ClusterMembers {
        /// (instance, cluster) pairs.
        members: Vec<(String, String)>,
    },
    /// The requested retention is outside what the policy allows.
    #[error(
        "retain_days {requested} is outside 1..={max} (manual_snapshots.max_retain_days in the policy)"
    )]
    RetentionOutOfRange {
        /// What was asked for.
        requested: u32,
        /// The policy's maximum.
        max: u32,
    },
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One snapshot to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedSnapshot {
    /// The database to snapshot.
    pub database: Database,
    /// Deterministic snapshot identifier.
    pub snapshot_id: String,
    /// Tags to put on the snapshot: the source's own tags, then Lifeboat's.
    pub tags: Vec<(String, String)>,
}

/// A database left out of this run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedDatabase {
    /// The database.
    pub database: Database,
    /// Why it was skipped.
    pub reason: String,
}

/// How many snapshots one scheduled time may take: the first and numbered retries after failed ones.
pub const MAX_ATTEMPTS: u32 = 3;

/// Something about a database an operator must hear of (alerted): a failed snapshot replaced, a snapshot of the same
/// name another deployment made, or a start window closed without a recovery point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The database.
    pub database: Database,
    /// The snapshot concerned, if one.
    pub snapshot: Option<String>,
    /// What happened.
    pub reason: String,
    /// What to do about it.
    pub next_step: String,
}

/// The plan of one snapshot run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotPlan {
    /// Snapshots to take.
    pub snapshots: Vec<PlannedSnapshot>,
    /// Databases left out, an operator hears why (a manual request for a database RDS cannot snapshot now).
    pub skipped: Vec<SkippedDatabase>,
    /// Databases whose scheduled snapshot is still owed and is tried again by the next hourly run within the start
    /// window (the database is busy, or its snapshots so far failed): reported, not alerted.
    pub waiting: Vec<SkippedDatabase>,
    /// Databases whose scheduled recovery point exists already (this deployment's): the snapshot identifier.
    pub taken: Vec<(Database, String)>,
    /// What an operator must hear of.
    pub problems: Vec<Problem>,
}

/// The identifiers a scheduled run at `at` needs to look up before planning: every attempt (the first and the
/// numbered retries) at the due scheduled snapshot of each selected database whose start window (plus the hour in
/// which a miss is reported) is open. Empty outside every window: the run has nothing to do.
pub fn due_identifiers(
    policy: &Policy,
    databases: &[Database],
    at: DateTime<Utc>,
) -> Vec<(DatabaseKind, String)> {
    databases
        .iter()
        .filter(|db| db.cluster.is_none() && !crate::restore::is_restored(db))
        .filter_map(|db| {
            let due = Due::of(policy, db, at)?;
            Some((1..=MAX_ATTEMPTS).map(move |n| (db.kind, due.identifier(db, n))))
        })
        .flatten()
        .collect()
}

/// When a database's scheduled snapshot was due, and until when it may still be taken.
struct Due {
    at: DateTime<Utc>,
    window_end: DateTime<Utc>,
}

impl Due {
    /// The scheduled snapshot `db` owes at `now`, while its window (plus the reporting hour) is open.
    fn of(policy: &Policy, db: &Database, now: DateTime<Utc>) -> Option<Due> {
        let calendar = &policy.plan_for(db)?.schedule;
        let at = calendar.due_at(now);
        let window_end = at + Duration::from_std(calendar.start_window).ok()?;
        (now < window_end + Duration::hours(1)).then_some(Due { at, window_end })
    }

    fn identifier(&self, db: &Database, attempt: u32) -> String {
        scheduled_identifier(&db.identifier, db.kind, self.at, attempt)
    }
}

/// Plan a snapshot run of `deployment` over `databases` (everything RDS listed in the region). For a scheduled run,
/// `existing` holds the snapshots RDS has under [`due_identifiers`]; a manual run needs none.
///
/// A scheduled run (hourly) takes each selected database's due snapshot (`daily_at` today, or yesterday before
/// then) while its start window is open, under that scheduled time's identifier, so a catch-up never makes two:
/// the first attempt, or after a failed snapshot the next numbered retry (`-r2`, `-r3`), reporting the failure once.
/// A database RDS cannot snapshot now waits for the next hourly run. When the window closes without a recovery
/// point, the next run reports it missing, once.
pub fn plan_snapshots(
    policy: &Policy,
    deployment: &Deployment,
    databases: &[Database],
    trigger: &SnapshotTrigger,
    existing: &[Snapshot],
) -> Result<SnapshotPlan, SnapshotPlanError> {
    match trigger {
        SnapshotTrigger::Scheduled { at } => Ok(plan_scheduled(
            policy, deployment, databases, *at, existing, true,
        )),
        SnapshotTrigger::CatchUp { at } => Ok(plan_scheduled(
            policy, deployment, databases, *at, existing, false,
        )),
        SnapshotTrigger::Manual(request) => {
            plan_manual(policy, deployment, databases, trigger, request)
        }
    }
}

fn plan_scheduled(
    policy: &Policy,
    deployment: &Deployment,
    databases: &[Database],
    now: DateTime<Utc>,
    existing: &[Snapshot],
    reports_missed: bool,
) -> SnapshotPlan {
    let mut plan = SnapshotPlan::default();
    let selected = databases
        .iter()
        .filter(|db| db.cluster.is_none() && !crate::restore::is_restored(db));
    for db in selected {
        let Some(due) = Due::of(policy, db, now) else {
            continue;
        };
        let found = |attempt: u32| {
            let id = due.identifier(db, attempt);
            existing
                .iter()
                .find(move |s| s.kind == db.kind && s.identifier == id)
        };
        let attempts: Vec<(u32, &Snapshot)> = (1..=MAX_ATTEMPTS)
            .filter_map(|n| found(n).map(|s| (n, s)))
            .collect();
        if let Some((_, theirs)) = attempts.iter().find(|(_, s)| !deployment.owns(&s.tags)) {
            plan.problems.push(Problem {
                database: db.clone(),
                snapshot: Some(theirs.identifier.clone()),
                reason: format!(
                    "snapshot `{}` exists but was made by {}: this deployment has no recovery point of {} for {}",
                    theirs.identifier,
                    deployment.owner_of(&theirs.tags),
                    db.identifier,
                    rfc3339(due.at)
                ),
                next_step: format!(
                    "two deployments select {} in {}: narrow one policy's selection so each database has one owner",
                    db.identifier, db.region
                ),
            });
            continue;
        }
        if let Some((_, good)) = attempts
            .iter()
            .find(|(_, s)| !crate::copy::is_failed_status(&s.status))
        {
            plan.taken.push((db.clone(), good.identifier.clone()));
            continue;
        }
        let failed: Vec<&Snapshot> = attempts.iter().map(|(_, s)| *s).collect();
        let history = failed
            .iter()
            .map(|s| format!("`{}` {}", s.identifier, s.status))
            .collect::<Vec<_>>()
            .join(", ");
        if now >= due.window_end && !reports_missed {
            continue;
        }
        if now >= due.window_end {
            let why = if failed.is_empty() {
                format!("the database was `{}`", db.status)
            } else {
                format!("its snapshots failed ({history})")
            };
            plan.problems.push(Problem {
                database: db.clone(),
                snapshot: None,
                reason: format!(
                    "missed: no recovery point for {} within the start window (until {}): {why}",
                    rfc3339(due.at),
                    rfc3339(due.window_end)
                ),
                next_step: "find why RDS could not snapshot the database; take one by hand \
                            ({\"action\":\"snapshot\",\"databases\":[…]}) and check the next scheduled run"
                    .into(),
            });
            continue;
        }
        let next = failed.len() as u32 + 1;
        if next > MAX_ATTEMPTS {
            plan.waiting.push(SkippedDatabase {
                database: db.clone(),
                reason: format!(
                    "{MAX_ATTEMPTS} snapshots failed ({history}); no more are tried: reported missing when the \
                     window closes at {}",
                    rfc3339(due.window_end)
                ),
            });
            continue;
        }
        if !db.can_snapshot_now() {
            plan.waiting.push(SkippedDatabase {
                database: db.clone(),
                reason: format!(
                    "status is `{}`: tried again every hour until {}",
                    db.status,
                    rfc3339(due.window_end)
                ),
            });
            continue;
        }
        let snapshot_id = due.identifier(db, next);
        if let Some(last) = failed.last() {
            plan.problems.push(Problem {
                database: db.clone(),
                snapshot: Some(last.identifier.clone()),
                reason: format!(
                    "snapshot `{}` failed (status `{}`): no recovery point; replaced by `{snapshot_id}`",
                    last.identifier, last.status
                ),
                next_step: "nothing if the replacement succeeds; retention deletes the failed snapshot after a day".into(),
            });
        }
        plan.snapshots.push(PlannedSnapshot {
            database: db.clone(),
            snapshot_id,
            tags: snapshot_tags(
                policy,
                deployment,
                db,
                &SnapshotTrigger::Scheduled { at: due.at },
            ),
        });
    }
    plan
}

fn plan_manual(
    policy: &Policy,
    deployment: &Deployment,
    databases: &[Database],
    trigger: &SnapshotTrigger,
    request: &ManualRequest,
) -> Result<SnapshotPlan, SnapshotPlanError> {
    let targets: Vec<&Database> = if request.databases.is_empty() {
        databases
            .iter()
            .filter(|db| {
                db.cluster.is_none()
                    && !crate::restore::is_restored(db)
                    && policy.plan_for(db).is_some()
            })
            .collect()
    } else {
        named_databases(databases, &request.databases)?
    };
    let max = policy.manual_snapshots.max_retain_days;
    if let Some(days) = request.retain_days.filter(|d| !(1..=max).contains(d)) {
        return Err(SnapshotPlanError::RetentionOutOfRange {
            requested: days,
            max,
        });
    }
    let mut plan = SnapshotPlan::default();
    for db in targets {
        if !db.can_snapshot_now() {
            plan.skipped.push(SkippedDatabase {
                database: db.clone(),
                reason: format!(
                    "status is `{}`: RDS takes snapshots of available or stopped databases only",
                    db.status
                ),
            });
            continue;
        }
        plan.snapshots.push(PlannedSnapshot {
            database: db.clone(),
            snapshot_id: snapshot_identifier(&db.identifier, db.kind, trigger),
            tags: snapshot_tags(policy, deployment, db, trigger),
        });
    }
    Ok(plan)
}

/// Resolve operator-named databases, refusing the whole request if any is unknown or a cluster member.
fn named_databases<'a>(
    databases: &'a [Database],
    names: &[String],
) -> Result<Vec<&'a Database>, SnapshotPlanError> {
    let wanted: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let found: Vec<&Database> = databases
        .iter()
        .filter(|db| wanted.contains(db.identifier.as_str()))
        .collect();
    let missing: Vec<String> = wanted
        .iter()
        .filter(|name| !found.iter().any(|db| db.identifier == **name))
        .map(|name| name.to_string())
        .collect();
    if !missing.is_empty() {
        let region = databases
            .first()
            .map(|db| db.region.clone())
            .unwrap_or_default();
        return Err(SnapshotPlanError::UnknownDatabases { missing, region });
    }
    let members: Vec<(String, String)> = found
        .iter()
        .filter_map(|db| {
            db.cluster
                .as_ref()
                .map(|c| (db.identifier.clone(), c.clone()))
        })
        .collect();
    if !members.is_empty() {
        return Err(SnapshotPlanError::ClusterMembers { members });
    }
    Ok(found)
}

/// The deterministic snapshot identifier for `database` (of `kind`) under `trigger`.
///
/// Scheduled: `lifeboat-<db>-<yyyy>-<mm>-<dd>-<hhmm>` from the scheduled time, so every delivery of one
/// schedule tick, and every catch-up of it, names the same snapshot. Manual: `lifeboat-<db>-manual-<8 hex>` from the
/// idempotency key and the UTC day of the request (a key reused another day takes a new snapshot). Within RDS's
/// length limit for the kind (63 for cluster snapshots): a long database name is cut and a hash of it added (see
/// [`fit_identifier`]).
pub fn snapshot_identifier(
    database: &str,
    kind: DatabaseKind,
    trigger: &SnapshotTrigger,
) -> String {
    match trigger {
        SnapshotTrigger::Scheduled { at } | SnapshotTrigger::CatchUp { at } => {
            scheduled_identifier(database, kind, *at, 1)
        }
        SnapshotTrigger::Manual(request) => {
            let scoped = format!(
                "{}/{}",
                request.requested_at.format("%Y-%m-%d"),
                request.idempotency_key
            );
            let digest = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, scoped.as_bytes());
            fit_identifier(
                &format!("lifeboat-{database}"),
                &format!("-manual-{}", &digest.simple().to_string()[..8]),
                kind.max_snapshot_identifier_len(),
            )
        }
    }
}

/// The identifier of `attempt` (1 for the first, then numbered retries `-r2`, `-r3`) at the snapshot of `database`
/// scheduled at `at`.
pub fn scheduled_identifier(
    database: &str,
    kind: DatabaseKind,
    at: DateTime<Utc>,
    attempt: u32,
) -> String {
    let retry = if attempt > 1 {
        format!("-r{attempt}")
    } else {
        String::new()
    };
    fit_identifier(
        &format!("lifeboat-{database}"),
        &format!("-{}{retry}", at.format("%Y-%m-%d-%H%M")),
        kind.max_snapshot_identifier_len(),
    )
}

/// The tiers a scheduled snapshot of `db` serves under `policy` at `at`.
pub fn scheduled_tiers(policy: &Policy, db: &Database, at: DateTime<Utc>) -> Vec<Tier> {
    policy
        .plan_for(db)
        .map(|plan| plan.schedule.tiers_on(at.date_naive()))
        .unwrap_or_else(|| vec![Tier::Daily])
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.with_nanosecond(0)
        .unwrap_or(t)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Tags for a snapshot of `db` made by `deployment`: the source's user tags (so cost allocation carries over),
/// then the `lifeboat:` state tags, the deployment's identity among them. User tags are dropped first if RDS's
/// 50-tag limit would be passed.
pub fn snapshot_tags(
    policy: &Policy,
    deployment: &Deployment,
    db: &Database,
    trigger: &SnapshotTrigger,
) -> Vec<(String, String)> {
    let [deployment_tag, home_region_tag] = deployment.tags();
    let mut own: Vec<(String, String)> = vec![
        (tags::MANAGED.into(), tags::TRUE.into()),
        deployment_tag,
        home_region_tag,
        (tags::POLICY.into(), policy.name.clone()),
        (tags::SOURCE.into(), db.identifier.clone()),
        (tags::SOURCE_KIND.into(), db.kind.as_str().into()),
    ];
    if let Some(plan) = policy.plan_for(db) {
        own.push((tags::PLAN.into(), plan.name.clone()));
    }
    match trigger {
        SnapshotTrigger::Scheduled { at } | SnapshotTrigger::CatchUp { at } => {
            let tiers: Vec<&str> = scheduled_tiers(policy, db, *at)
                .iter()
                .map(|t| t.as_str())
                .collect();
            own.push((tags::TIER.into(), tiers.join("+")));
            own.push((tags::TRIGGER.into(), "schedule".into()));
            own.push((tags::CREATED_AT.into(), rfc3339(*at)));
        }
        SnapshotTrigger::Manual(request) => {
            let days = request
                .retain_days
                .unwrap_or(policy.manual_snapshots.retain_days);
            own.push((tags::TIER.into(), tags::MANUAL_TIER.into()));
            own.push((tags::TRIGGER.into(), "manual".into()));
            own.push((tags::CREATED_AT.into(), rfc3339(request.requested_at)));
            own.push((
                tags::EXPIRES_AT.into(),
                rfc3339(request.requested_at + Duration::days(i64::from(days))),
            ));
            if !request.reason.trim().is_empty() {
                own.push((
                    tags::REASON.into(),
                    tags::sanitize_value(request.reason.trim()),
                ));
            }
        }
    }
    let room = tags::MAX_TAGS_PER_RESOURCE.saturating_sub(own.len());
    let mut all: Vec<(String, String)> = db
        .tags
        .iter()
        .filter(|(key, _)| !tags::is_reserved_key(key))
        .take(room)
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    all.extend(own);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DatabaseKind;
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    fn db(id: &str, kind: DatabaseKind, status: &str, tags: &[(&str, &str)]) -> Database {
        Database {
            identifier: id.into(),
            kind,
            arn: format!(
                "arn:aws:rds:us-east-1:123456789012:{}:{id}",
                if kind == DatabaseKind::Cluster {
                    "cluster"
                } else {
                    "db"
                }
            ),
            region: "us-east-1".into(),
            engine: "postgres".into(),
            status: status.into(),
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

    fn policy() -> Policy {
        Policy::from_yaml(
            "version: 1\nname: test\nmanual_snapshots:\n  retain_days: 90\nplans:\n  - name: prod\n    select:\n      tags: {backup: lifeboat}\n      identifiers: [billing]\n    retention:\n      keep_daily: 30\n    objectives: {rpo: 1h, rto: 4h}\n",
        )
        .unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn deployment() -> Deployment {
        Deployment::new("lifeboat", "us-east-1").unwrap()
    }

    fn manual(names: &[&str], key: &str) -> SnapshotTrigger {
        SnapshotTrigger::Manual(ManualRequest {
            databases: names.iter().map(|s| s.to_string()).collect(),
            reason: "pre-deploy v42".into(),
            retain_days: None,
            idempotency_key: key.into(),
            requested_at: at("2026-11-21T10:15:00Z"),
        })
    }

    #[test]
    fn scheduled_run_selects_by_policy_and_skips_unready() {
        let fleet = vec![
            db(
                "booking",
                DatabaseKind::Instance,
                "available",
                &[("backup", "lifeboat"), ("team", "bookings")],
            ),
            db("billing", DatabaseKind::Cluster, "available", &[]),
            db("scratch", DatabaseKind::Instance, "available", &[]),
            db(
                "reports",
                DatabaseKind::Instance,
                "backing-up",
                &[("backup", "lifeboat")],
            ),
        ];
        let trigger = SnapshotTrigger::Scheduled {
            at: at("2026-11-22T02:00:00Z"),
        };
        let plan = plan_snapshots(&policy(), &deployment(), &fleet, &trigger, &[]).unwrap();
        let ids: Vec<&str> = plan
            .snapshots
            .iter()
            .map(|s| s.snapshot_id.as_str())
            .collect();
        assert_eq!(
            ids,
            [
                "lifeboat-booking-2026-11-22-0200",
                "lifeboat-billing-2026-11-22-0200"
            ]
        );
        assert!(plan.skipped.is_empty());
        assert_eq!(
            plan.waiting.len(),
            1,
            "a busy database waits for the next hourly run"
        );
        assert_eq!(plan.waiting[0].database.identifier, "reports");
        assert!(
            plan.waiting[0].reason.contains("backing-up"),
            "{:?}",
            plan.waiting
        );
        assert!(
            plan.waiting[0].reason.contains("2026-11-22T10:00:00Z"),
            "the start window closes at 10:00"
        );
        let tags: BTreeMap<_, _> = plan.snapshots[0].tags.iter().cloned().collect();
        assert_eq!(tags["lifeboat:tier"], "daily+weekly");
        assert_eq!(tags["lifeboat:created-at"], "2026-11-22T02:00:00Z");
        assert_eq!(tags["team"], "bookings", "source tags carry over");
        assert_eq!(tags["lifeboat:plan"], "prod");
        assert_eq!(tags["lifeboat:deployment"], "lifeboat");
        assert_eq!(tags["lifeboat:home-region"], "us-east-1");
        assert!(deployment().owns(&tags.into()));
    }

    #[test]
    fn cluster_members_are_snapshotted_through_their_cluster() {
        let mut member = db(
            "billing-1",
            DatabaseKind::Instance,
            "available",
            &[("backup", "lifeboat")],
        );
        member.cluster = Some("billing".into());
        let trigger = SnapshotTrigger::Scheduled {
            at: at("2026-11-22T02:00:00Z"),
        };
        let plan = plan_snapshots(
            &policy(),
            &deployment(),
            std::slice::from_ref(&member),
            &trigger,
            &[],
        )
        .unwrap();
        assert!(plan.snapshots.is_empty());
        let err = plan_snapshots(
            &policy(),
            &deployment(),
            &[member],
            &manual(&["billing-1"], "k"),
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("billing-1 is in billing"), "{err}");
    }

    #[test]
    fn manual_request_names_databases_and_sets_expiry() {
        let fleet = vec![db("scratch", DatabaseKind::Instance, "available", &[])];
        let plan = plan_snapshots(
            &policy(),
            &deployment(),
            &fleet,
            &manual(&["scratch"], "req-1"),
            &[],
        )
        .unwrap();
        let snap = &plan.snapshots[0];
        assert!(snap.snapshot_id.starts_with("lifeboat-scratch-manual-"));
        let tags: BTreeMap<_, _> = snap.tags.iter().cloned().collect();
        assert_eq!(tags["lifeboat:tier"], "manual");
        assert_eq!(tags["lifeboat:expires-at"], "2027-02-19T10:15:00Z");
        assert_eq!(tags["lifeboat:reason"], "pre-deploy v42");
        assert!(!tags.contains_key("lifeboat:plan"), "scratch is in no plan");
    }

    #[test]
    fn unknown_database_rejects_the_whole_request() {
        let fleet = vec![db("scratch", DatabaseKind::Instance, "available", &[])];
        let err = plan_snapshots(
            &policy(),
            &deployment(),
            &fleet,
            &manual(&["scratch", "nope"], "k"),
            &[],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no DB instance or cluster named `nope` in us-east-1"
        );
    }

    #[test]
    fn retention_beyond_policy_maximum_is_rejected() {
        let fleet = vec![db("scratch", DatabaseKind::Instance, "available", &[])];
        let SnapshotTrigger::Manual(mut request) = manual(&["scratch"], "k") else {
            unreachable!()
        };
        request.retain_days = Some(100_000);
        let err = plan_snapshots(
            &policy(),
            &deployment(),
            &fleet,
            &SnapshotTrigger::Manual(request),
            &[],
        )
        .unwrap_err();
        assert!(matches!(
            err,
            SnapshotPlanError::RetentionOutOfRange {
                requested: 100_000,
                max: 3650
            }
        ));
    }

    #[test]
    fn tags_never_exceed_the_rds_limit() {
        let many: Vec<(String, String)> = (0..60)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        let refs: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let big = db("booking", DatabaseKind::Instance, "available", &refs);
        let tags = snapshot_tags(&policy(), &deployment(), &big, &manual(&[], "k"));
        assert_eq!(tags.len(), tags::MAX_TAGS_PER_RESOURCE);
        assert!(tags.iter().any(|(k, _)| k == tags::MANAGED));
    }

    fn snap(id: &str, status: &str, owner: &Deployment) -> Snapshot {
        Snapshot {
            identifier: id.into(),
            arn: format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}"),
            region: "us-east-1".into(),
            kind: DatabaseKind::Instance,
            database: "booking".into(),
            created_at: at("2026-11-22T02:00:07Z"),
            status: status.into(),
            encrypted: true,
            engine: None,
            copied_from: None,
            tags: [(tags::MANAGED.to_string(), tags::TRUE.to_string())]
                .into_iter()
                .chain(owner.tags())
                .collect(),
        }
    }

    fn booking(status: &str) -> Vec<Database> {
        vec![db(
            "booking",
            DatabaseKind::Instance,
            status,
            &[("backup", "lifeboat")],
        )]
    }

    fn scheduled(time: &str) -> SnapshotTrigger {
        SnapshotTrigger::Scheduled { at: at(time) }
    }

    #[test]
    fn a_missed_snapshot_is_caught_up_within_the_window_under_that_days_identifier() {
        let busy = plan_snapshots(
            &policy(),
            &deployment(),
            &booking("backing-up"),
            &scheduled("2026-11-22T02:00:00Z"),
            &[],
        )
        .unwrap();
        assert!(busy.snapshots.is_empty() && busy.problems.is_empty());
        assert_eq!(busy.waiting.len(), 1);
        let caught_up = plan_snapshots(
            &policy(),
            &deployment(),
            &booking("available"),
            &scheduled("2026-11-22T05:00:00Z"),
            &[],
        )
        .unwrap();
        assert_eq!(
            caught_up.snapshots[0].snapshot_id,
            "lifeboat-booking-2026-11-22-0200"
        );
        let tags: BTreeMap<_, _> = caught_up.snapshots[0].tags.iter().cloned().collect();
        assert_eq!(
            tags["lifeboat:created-at"], "2026-11-22T02:00:00Z",
            "the recovery point of 02:00"
        );
        assert_eq!(tags["lifeboat:tier"], "daily+weekly");
        // Once taken, the hourly runs find it and do nothing.
        let taken = [snap(
            "lifeboat-booking-2026-11-22-0200",
            "creating",
            &deployment(),
        )];
        let later = plan_snapshots(
            &policy(),
            &deployment(),
            &booking("available"),
            &scheduled("2026-11-22T06:00:00Z"),
            &taken,
        )
        .unwrap();
        assert!(
            later.snapshots.is_empty() && later.waiting.is_empty() && later.problems.is_empty()
        );
        assert_eq!(later.taken.len(), 1);
        // Before 02:00 the due snapshot is yesterday's, whose window closed long ago: nothing to do, nothing to look up.
        assert!(
            due_identifiers(&policy(), &booking("available"), at("2026-11-22T01:00:00Z"))
                .is_empty()
        );
        assert_eq!(
            due_identifiers(&policy(), &booking("available"), at("2026-11-22T03:00:00Z")),
            [
                (
                    DatabaseKind::Instance,
                    "lifeboat-booking-2026-11-22-0200".to_string()
                ),
                (
                    DatabaseKind::Instance,
                    "lifeboat-booking-2026-11-22-0200-r2".to_string()
                ),
                (
                    DatabaseKind::Instance,
                    "lifeboat-booking-2026-11-22-0200-r3".to_string()
                ),
            ]
        );
    }

    #[test]
    fn a_failed_snapshot_is_replaced_by_a_numbered_retry_and_reported_once() {
        let failed = [snap(
            "lifeboat-booking-2026-11-22-0200",
            "failed",
            &deployment(),
        )];
        let plan = plan_snapshots(
            &policy(),
            &deployment(),
            &booking("available"),
            &scheduled("2026-11-22T03:00:00Z"),
            &failed,
        )
        .unwrap();
        assert_eq!(
            plan.snapshots[0].snapshot_id,
            "lifeboat-booking-2026-11-22-0200-r2"
        );
        assert_eq!(plan.problems.len(), 1);
        assert!(
            plan.problems[0].reason.contains("failed (status `failed`)"),
            "{:?}",
            plan.problems
        );
        let retried = [
            failed[0].clone(),
            snap(
                "lifeboat-booking-2026-11-22-0200-r2",
                "creating",
                &deployment(),
            ),
        ];
        let next = plan_snapshots(
            &policy(),
            &deployment(),
            &booking("available"),
            &scheduled("2026-11-22T04:00:00Z"),
            &retried,
        )
        .unwrap();
        assert!(
            next.problems.is_empty() && next.snapshots.is_empty(),
            "reported once"
        );
        assert_eq!(next.taken[0].1, "lifeboat-booking-2026-11-22-0200-r2");
    }

    #[test]
    fn a_window_closing_without_a_recovery_point_is_reported_once() {
        let at_close = plan_snapshots(
            &policy(),
            &deployment(),
            &booking("backing-up"),
            &scheduled("2026-11-22T10:00:00Z"),
            &[],
        )
        .unwrap();
        assert_eq!(at_close.problems.len(), 1);
        assert!(
            at_close.problems[0]
                .reason
                .starts_with("missed: no recovery point for 2026-11-22T02:00:00Z"),
            "{:?}",
            at_close.problems
        );
        assert!(at_close.problems[0].reason.contains("`backing-up`"));
        let after = plan_snapshots(
            &policy(),
            &deployment(),
            &booking("backing-up"),
            &scheduled("2026-11-22T11:00:00Z"),
            &[],
        )
        .unwrap();
        assert_eq!(
            after,
            SnapshotPlan::default(),
            "nothing more until tomorrow's is due"
        );
        // RDS events in the reporting hour (the database available again, at last) catch up nothing and never
        // repeat the hourly run's alert.
        for minute in ["10:00", "10:20", "10:59"] {
            let event = plan_snapshots(
                &policy(),
                &deployment(),
                &booking("available"),
                &SnapshotTrigger::CatchUp {
                    at: at(&format!("2026-11-22T{minute}:00Z")),
                },
                &[],
            )
            .unwrap();
            assert_eq!(event, SnapshotPlan::default(), "event at {minute}");
        }
        // Within the window an event catches up at once, under the day's identifier.
        let early = plan_snapshots(
            &policy(),
            &deployment(),
            &booking("available"),
            &SnapshotTrigger::CatchUp {
                at: at("2026-11-22T06:10:00Z"),
            },
            &[],
        )
        .unwrap();
        assert_eq!(
            early.snapshots[0].snapshot_id,
            "lifeboat-booking-2026-11-22-0200"
        );
    }

    #[test]
    fn another_deployments_snapshot_of_the_due_name_is_a_conflict() {
        let other = Deployment::new("lifeboat-other", "us-east-1").unwrap();
        let theirs = [snap(
            "lifeboat-booking-2026-11-22-0200",
            "available",
            &other,
        )];
        let plan = plan_snapshots(
            &policy(),
            &deployment(),
            &booking("available"),
            &scheduled("2026-11-22T02:00:00Z"),
            &theirs,
        )
        .unwrap();
        assert!(plan.snapshots.is_empty() && plan.taken.is_empty());
        assert!(
            plan.problems[0]
                .reason
                .contains("made by deployment `lifeboat-other`"),
            "{:?}",
            plan.problems
        );
    }

    #[test]
    fn restored_databases_drills_and_adhoc_restores_are_never_snapshotted() {
        let mut drill = db(
            "lbdrill-booking-1234",
            DatabaseKind::Instance,
            "available",
            &[("backup", "lifeboat")],
        );
        drill
            .tags
            .insert(tags::DRILL.into(), "lbdrill-booking-1234".into());
        // An ad-hoc restore may carry the source's selection tags (a point-in-time restore copies them in some
        // engines' tooling): it is still never backed up as a source.
        let mut adhoc = db(
            "lbrestore-booking-20261120-1345",
            DatabaseKind::Instance,
            "available",
            &[("backup", "lifeboat")],
        );
        adhoc.tags.insert(
            tags::RESTORE.into(),
            "lbrestore-booking-20261120-1345".into(),
        );
        let plan = plan_snapshots(
            &policy(),
            &deployment(),
            &[drill, adhoc],
            &scheduled("2026-11-22T02:00:00Z"),
            &[],
        )
        .unwrap();
        assert_eq!(plan, SnapshotPlan::default());
    }

    #[test]
    fn an_idempotency_key_names_the_same_snapshot_on_its_day_only() {
        let on = |day: &str, key: &str| {
            let SnapshotTrigger::Manual(mut request) = manual(&[], key) else {
                unreachable!()
            };
            request.requested_at = at(day);
            snapshot_identifier(
                "booking",
                DatabaseKind::Instance,
                &SnapshotTrigger::Manual(request),
            )
        };
        assert_eq!(
            on("2026-11-22T10:00:00Z", "pre-deploy"),
            on("2026-11-22T18:00:00Z", "pre-deploy")
        );
        assert_ne!(
            on("2026-11-22T10:00:00Z", "pre-deploy"),
            on("2026-12-22T10:00:00Z", "pre-deploy"),
            "next month: a new snapshot"
        );
    }

    proptest! {
        #[test]
        fn identifiers_are_deterministic_valid_distinct_and_within_rds_limits(
            id in "[a-z]([a-z0-9]|-[a-z0-9]){0,31}",
            other in "[a-z]([a-z0-9]|-[a-z0-9]){0,31}",
            minute in 0i64..10_000_000,
            key in ".{1,40}",
            region in "(us|eu|ap)-(east|west|southeast|northeast)-[1-9]",
        ) {
            let scheduled = SnapshotTrigger::Scheduled { at: DateTime::from_timestamp(minute * 60, 0).unwrap() };
            let manual = manual(&[], &key);
            let valid = |name: &str| {
                name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !name.contains("--")
                    && !name.ends_with('-')
            };
            for kind in [DatabaseKind::Instance, DatabaseKind::Cluster] {
                for trigger in [&scheduled, &manual] {
                    let first = snapshot_identifier(&id, kind, trigger);
                    prop_assert_eq!(&first, &snapshot_identifier(&id, kind, trigger));
                    prop_assert!(first.len() <= kind.max_snapshot_identifier_len(), "{first}");
                    prop_assert!(first.starts_with("lifeboat-") && valid(&first), "{first}");
                    let copy = crate::copy::target_identifier(&first, &region, kind);
                    prop_assert!(copy.len() <= kind.max_snapshot_identifier_len(), "{copy}");
                    prop_assert!(copy.starts_with("lifeboat-") && valid(&copy), "{copy}");
                    prop_assert!(copy.ends_with(&format!("-from-{region}")), "{copy}");
                    if id != other {
                        let theirs = snapshot_identifier(&other, kind, trigger);
                        prop_assert_ne!(&first, &theirs);
                        prop_assert_ne!(copy, crate::copy::target_identifier(&theirs, &region, kind));
                    }
                }
            }
        }
    }

    #[test]
    fn drill_databases_are_never_selected_even_by_a_catch_all_pattern() {
        let everything = Policy::from_yaml(
            "version: 1\nname: all\nplans:\n  - name: everything\n    select:\n      patterns: ['*']\n    retention:\n      keep_daily: 7\n    objectives: {rpo: 1h, rto: 4h}\n",
        )
        .unwrap();
        let fleet = [
            db("booking", DatabaseKind::Instance, "available", &[]),
            db(
                "lbdrill-booking-0badc0de",
                DatabaseKind::Instance,
                "available",
                &[(tags::DRILL, "lbdrill-booking-0badc0de")],
            ),
            db(
                "lbdrill-billing-0badf00d",
                DatabaseKind::Cluster,
                "available",
                &[(tags::DRILL, "lbdrill-billing-0badf00d")],
            ),
        ];
        for trigger in [scheduled("2026-11-22T02:00:00Z"), manual(&[], "pre-deploy")] {
            let plan = plan_snapshots(&everything, &deployment(), &fleet, &trigger, &[]).unwrap();
            let selected: Vec<&str> = plan
                .snapshots
                .iter()
                .map(|s| s.database.identifier.as_str())
                .collect();
            assert_eq!(selected, ["booking"], "{trigger:?}");
        }
    }
}
