//! Snapshot planning (pure): which databases to snapshot now, under which deterministic identifier, with which
//! tags. The snapshot function executes the plan; a retried or duplicated run plans the same identifiers, so RDS's
//! "already exists" means the work is done.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, SecondsFormat, Timelike, Utc};

use crate::model::{Database, DatabaseKind, fit_identifier};
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

/// The plan of one snapshot run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotPlan {
    /// Snapshots to take.
    pub snapshots: Vec<PlannedSnapshot>,
    /// Databases skipped with their reason.
    pub skipped: Vec<SkippedDatabase>,
}

/// Plan a snapshot run of `deployment` over `databases` (everything RDS listed in the region).
pub fn plan_snapshots(
    policy: &Policy,
    deployment: &Deployment,
    databases: &[Database],
    trigger: &SnapshotTrigger,
) -> Result<SnapshotPlan, SnapshotPlanError> {
    let targets: Vec<&Database> = match trigger {
        SnapshotTrigger::Manual(request) if !request.databases.is_empty() => {
            named_databases(databases, &request.databases)?
        }
        _ => databases
            .iter()
            .filter(|db| db.cluster.is_none() && policy.plan_for(db).is_some())
            .collect(),
    };
    if let SnapshotTrigger::Manual(request) = trigger {
        let max = policy.manual_snapshots.max_retain_days;
        if let Some(days) = request.retain_days.filter(|d| !(1..=max).contains(d)) {
            return Err(SnapshotPlanError::RetentionOutOfRange {
                requested: days,
                max,
            });
        }
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
/// schedule tick names the same snapshot. Manual: `lifeboat-<db>-manual-<8 hex>` from the idempotency key. Within
/// RDS's length limit for the kind (63 for cluster snapshots): a long database name is cut and a hash of it added
/// (see [`fit_identifier`]).
pub fn snapshot_identifier(
    database: &str,
    kind: DatabaseKind,
    trigger: &SnapshotTrigger,
) -> String {
    let tail = match trigger {
        SnapshotTrigger::Scheduled { at } => format!("-{}", at.format("%Y-%m-%d-%H%M")),
        SnapshotTrigger::Manual(request) => {
            let digest = uuid::Uuid::new_v5(
                &uuid::Uuid::NAMESPACE_OID,
                request.idempotency_key.as_bytes(),
            );
            format!("-manual-{}", &digest.simple().to_string()[..8])
        }
    };
    fit_identifier(
        &format!("lifeboat-{database}"),
        &tail,
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
        SnapshotTrigger::Scheduled { at } => {
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
        .map(|(k, v)| (k.clone(), v.clone()))
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
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
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
        let plan = plan_snapshots(&policy(), &deployment(), &fleet, &trigger).unwrap();
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
        assert_eq!(plan.skipped.len(), 1);
        assert_eq!(plan.skipped[0].database.identifier, "reports");
        assert!(plan.skipped[0].reason.contains("backing-up"));
        let tags: BTreeMap<_, _> = plan.snapshots[0].tags.iter().cloned().collect();
        assert_eq!(tags["lifeboat:tier"], "daily+weekly");
        assert_eq!(tags["lifeboat:created-at"], "2026-11-22T02:00:00Z");
        assert_eq!(tags["team"], "bookings", "source tags carry over");
        assert_eq!(tags["lifeboat:plan"], "prod");
        assert_eq!(tags["lifeboat:deployment"], "lifeboat");
        assert_eq!(tags["lifeboat:home-region"], "us-east-1");
        assert!(deployment().owns(&tags));
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
        )
        .unwrap();
        assert!(plan.snapshots.is_empty());
        let err = plan_snapshots(
            &policy(),
            &deployment(),
            &[member],
            &manual(&["billing-1"], "k"),
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
}
