//! The failover role's fences, request by request, for one deployment (stack `lifeboat` in us-east-2, DR region
//! us-west-2, the Failover* parameters set as an operator would). Each test asks IAM's question ([`Role::decide`])
//! for what the failover function does (allowed) and for what it must never do (refused); where the template has an
//! explicit Deny for it, also that the Deny alone refuses it ([`Role::fences`]), so an Allow added later cannot
//! permit it.

use serde_yaml_ng::Value;

use super::iam::{ACCOUNT, Env, Request, Role};
use super::{TEMPLATE, load, values};

const STACK: &str = "lifeboat";
const PRIMARY: &str = "us-east-2";
const DR: &str = "us-west-2";
/// Route 53's control plane (every Route 53 call is authorized there).
const ROUTE53: &str = "us-east-1";
const ZONE: &str = "Z0123456789ABCDEFGHIJ";
const OTHER_ZONE: &str = "Z9999999999OTHERZONE";
const RECORD: &str = "orders-db.example.com";
const RECORD_RO: &str = "orders-db-ro.example.com";
const DRILL_RECORD: &str = "orders-db-drill.example.com";
const OLD_PRIMARY: &str = "orders-db";
const REPLICA: &str = "orders-db-replica";
const GLOBAL: &str = "orders-global";
const FAILOVER_DB: &str = "lbfailover-orders-db-202611221400";
const DRILL_DB: &str = "lbfodrill-orders-db-202611221400";
const FAILBACK_DB: &str = "lbfailback-orders-db-202612011000";

/// The deployment the tests evaluate.
fn deployment(template: &Value) -> Env<'_> {
    let mut env = Env::new(template, STACK, PRIMARY);
    env.set("DrRegions", &[DR])
        .set("FailoverHostedZoneId", &[ZONE])
        .set("FailoverRecordNames", &[RECORD, RECORD_RO, DRILL_RECORD])
        .set("FailoverDrillRecordName", &[DRILL_RECORD])
        .set("FailoverDatabaseNames", &[OLD_PRIMARY])
        .set("FailoverReplicaNames", &[REPLICA])
        .set("FailoverGlobalClusterNames", &[GLOBAL])
        .set("FailoverAlarmNames", &["orders-db-down"]);
    env
}

fn failover_role(template: &Value) -> Role {
    deployment(template).role("FailoverFunction")
}

fn arn(service: &str, region: &str, resource: &str) -> String {
    format!("arn:aws:{service}:{region}:{ACCOUNT}:{resource}")
}

fn db(region: &str, name: &str) -> String {
    arn("rds", region, &format!("db:{name}"))
}

fn cluster(region: &str, name: &str) -> String {
    arn("rds", region, &format!("cluster:{name}"))
}

fn zone(id: &str) -> String {
    format!("arn:aws:route53:::hostedzone/{id}")
}

/// The tags the failover function gives a database it makes (`drill`: a drill's).
fn failover_tags(name: &'static str, drill: bool) -> Vec<(&'static str, &'static str)> {
    let mut tags = vec![
        ("lifeboat:deployment", STACK),
        ("lifeboat:home-region", PRIMARY),
        ("lifeboat:failover", name),
        ("lifeboat:failover-run", "run-1"),
        ("lifeboat:policy", "default"),
        ("lifeboat:plan", "orders"),
        ("lifeboat:source", OLD_PRIMARY),
        ("lifeboat:failover-phase", "restoring"),
        ("lifeboat:failover-started-at", "2026-11-22T14:00:00Z"),
    ];
    if drill {
        tags.push(("lifeboat:failover-drill", "true"));
    }
    tags
}

/// The same tags with `key` set to `value` (or left out when `value` is empty).
fn with_tag(
    tags: &[(&'static str, &'static str)],
    key: &'static str,
    value: &'static str,
) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<_> = tags.iter().copied().filter(|(k, _)| *k != key).collect();
    if !value.is_empty() {
        out.push((key, value));
    }
    out
}

/// A change batch of CNAME records in `zone_id`: `action` on `names`.
fn change(zone_id: &str, action: &str, names: &[&str]) -> Request {
    Request::new("route53:ChangeResourceRecordSets", ROUTE53)
        .on(&zone(zone_id), &[])
        .with(
            "route53:ChangeResourceRecordSetsNormalizedRecordNames",
            names,
        )
        .with("route53:ChangeResourceRecordSetsRecordTypes", &["CNAME"])
        .with("route53:ChangeResourceRecordSetsActions", &[action])
}

/// Every function role of the template but the failover function's.
fn other_roles(template: &Value) -> Vec<Role> {
    let env = deployment(template);
    let Some(Value::Mapping(resources)) = template.get("Resources") else {
        panic!("the template has no Resources");
    };
    resources
        .iter()
        .filter(|(_, r)| values(r.get("Type")) == ["AWS::Serverless::Function"])
        .map(|(id, _)| values(Some(id)).join(""))
        .filter(|id| id != "FailoverFunction")
        .map(|id| env.role(&id))
        .collect()
}

#[test]
fn the_failover_role_changes_only_the_named_records_in_the_named_zone() {
    let template = load(TEMPLATE);
    let role = failover_role(&template);

    // What the function does: upserts the application's names (one or several at once) and the drill record,
    // deletes the drill record, reads the zone, follows the change. Route 53 is authorized in us-east-1, outside
    // this stack's regions (us-east-2, us-west-2): the region fence lets exactly these calls through.
    role.allows(&change(ZONE, "UPSERT", &[RECORD]));
    role.allows(&change(ZONE, "UPSERT", &[RECORD, RECORD_RO]));
    role.allows(&change(ZONE, "UPSERT", &[DRILL_RECORD]));
    role.allows(&change(ZONE, "DELETE", &[DRILL_RECORD]));
    role.allows(&Request::new("route53:ListResourceRecordSets", ROUTE53).on(&zone(ZONE), &[]));
    role.allows(
        &Request::new("route53:GetChange", ROUTE53)
            .on("arn:aws:route53:::change/C2682N5HXP0BZ4", &[]),
    );

    // Never another name, another zone, or a deletion of an application's name; each refused by a Deny too.
    for request in [
        change(ZONE, "UPSERT", &["www.example.com"]),
        change(ZONE, "UPSERT", &[RECORD, "www.example.com"]),
        change(ZONE, "UPSERT", &["orders-db.example.com.evil.example"]),
        change(OTHER_ZONE, "UPSERT", &[RECORD]),
        change(OTHER_ZONE, "DELETE", &[DRILL_RECORD]),
        change(ZONE, "DELETE", &[RECORD]),
        change(ZONE, "DELETE", &[DRILL_RECORD, RECORD_RO]),
    ] {
        role.refuses(&request);
        role.fences(&request);
    }
    // Only CNAME records, only upserts and deletes (the function writes nothing else).
    role.refuses(
        &change(ZONE, "UPSERT", &[RECORD])
            .with("route53:ChangeResourceRecordSetsRecordTypes", &["A"]),
    );
    role.refuses(&change(ZONE, "CREATE", &[RECORD]));
    // A request without names is no way around the names (ForAllValues holds of an empty set).
    role.refuses(
        &Request::new("route53:ChangeResourceRecordSets", ROUTE53)
            .on(&zone(ZONE), &[])
            .with("route53:ChangeResourceRecordSetsActions", &["UPSERT"]),
    );
    role.refuses(
        &Request::new("route53:ListResourceRecordSets", ROUTE53).on(&zone(OTHER_ZONE), &[]),
    );

    // Health checks are never changed: failover routing is switched by rewriting the records.
    for action in ["route53:GetHealthCheck", "route53:UpdateHealthCheck"] {
        assert!(
            !role.allows_any(action),
            "FailoverFunction role: {action} is never needed"
        );
    }

    // With no names configured, nothing may change.
    let mut empty = deployment(&template);
    empty
        .set("FailoverRecordNames", &[""])
        .set("FailoverDrillRecordName", &[""]);
    let empty = empty.role("FailoverFunction");
    for (action, name) in [("UPSERT", RECORD), ("DELETE", DRILL_RECORD)] {
        let request = change(ZONE, action, &[name]);
        empty.refuses(&request);
        empty.fences(&request);
    }

    // Outside us-east-1 the region fences hold for these calls too, and every other call stays in the stack's
    // regions.
    role.fences(
        &Request::new("cloudwatch:DescribeAlarms", "eu-west-1")
            .on(&arn("cloudwatch", "eu-west-1", "alarm:orders-db-down"), &[]),
    );
    role.fences(
        &Request::new("rds:DescribeDBInstances", ROUTE53).on(&db(ROUTE53, OLD_PRIMARY), &[]),
    );
    role.allows(
        &Request::new("cloudwatch:DescribeAlarms", ROUTE53)
            .on(&arn("cloudwatch", ROUTE53, "alarm:orders-db-health"), &[]),
    );

    // No other role may touch Route 53.
    for other in other_roles(&template) {
        other.refuses(&change(ZONE, "UPSERT", &[RECORD]));
    }
}

#[test]
fn the_failover_role_deletes_only_this_deployments_drill_databases() {
    let template = load(TEMPLATE);
    let role = failover_role(&template);
    let drill = failover_tags(DRILL_DB, true);
    let member = "lbfodrill-orders-db-202611221400-1";

    // A drill's database, its Aurora cluster and the cluster's member.
    role.allows(&Request::new("rds:DeleteDBInstance", DR).on(&db(DR, DRILL_DB), &drill));
    role.allows(&Request::new("rds:DeleteDBInstance", DR).on(&db(DR, member), &drill));
    role.allows(&Request::new("rds:DeleteDBCluster", DR).on(&cluster(DR, DRILL_DB), &drill));
    role.allows(
        &Request::new("rds:DeleteDBCluster", DR)
            .on(&cluster(DR, DRILL_DB), &drill)
            .on(
                &arn("rds", DR, &format!("cluster-snapshot:{DRILL_DB}-final")),
                &[],
            ),
    );

    let backup = [("lifeboat:backup", "true")];
    let verify_drill = [
        ("lifeboat:drill", "lbdrill-orders-db-1"),
        ("lifeboat:deployment", STACK),
        ("lifeboat:home-region", PRIMARY),
    ];
    // A drill database the policy backs up (someone tagged it): the Allow would let it go, the Deny does not.
    for action in ["rds:DeleteDBInstance", "rds:DeleteDBCluster"] {
        role.fences(&Request::new(action, DR).on(
            &db(DR, DRILL_DB),
            &with_tag(&drill, "lifeboat:backup", "true"),
        ));
    }
    let fenced: Vec<(String, Vec<(&str, &str)>)> = vec![
        // a drill database without the drill tag, of another deployment, untagged
        (
            db(DR, DRILL_DB),
            with_tag(&drill, "lifeboat:failover-drill", ""),
        ),
        (
            db(DR, DRILL_DB),
            with_tag(&drill, "lifeboat:deployment", "lifeboat-staging"),
        ),
        (db(DR, DRILL_DB), Vec::new()),
        // a real failover's database, even tagged as a drill
        (db(DR, FAILOVER_DB), failover_tags(FAILOVER_DB, false)),
        (db(DR, FAILOVER_DB), failover_tags(FAILOVER_DB, true)),
        (cluster(DR, FAILOVER_DB), failover_tags(FAILOVER_DB, true)),
        // the failback replica, the application's databases, other Lifeboat databases
        (db(PRIMARY, FAILBACK_DB), failover_tags(FAILBACK_DB, false)),
        (db(PRIMARY, OLD_PRIMARY), backup.to_vec()),
        (db(DR, REPLICA), Vec::new()),
        (cluster(DR, "orders-cluster-west"), backup.to_vec()),
        (db(DR, "lbdrill-orders-db-1"), verify_drill.to_vec()),
        (db(PRIMARY, "lbrestore-orders-db-1"), Vec::new()),
    ];
    for (resource, tags) in &fenced {
        for action in ["rds:DeleteDBInstance", "rds:DeleteDBCluster"] {
            let region = resource.split(':').nth(3).unwrap_or_default();
            let request = Request::new(action, region).on(resource, tags);
            role.refuses(&request);
            role.fences(&request);
        }
    }
    // Of this deployment but another home region: the Allow refuses it (the Deny compares the deployment only).
    role.refuses(&Request::new("rds:DeleteDBInstance", DR).on(
        &db(DR, DRILL_DB),
        &with_tag(&drill, "lifeboat:home-region", "eu-west-1"),
    ));
}

#[test]
fn the_failover_role_deletes_no_recovery_point() {
    let template = load(TEMPLATE);
    let role = failover_role(&template);
    let own = [
        ("lifeboat:managed", "true"),
        ("lifeboat:deployment", STACK),
        ("lifeboat:home-region", PRIMARY),
    ];
    let copy = "lifeboat-orders-db-2026-11-22-0200-from-us-east-2";
    for (action, resource) in [
        (
            "rds:DeleteDBSnapshot",
            arn("rds", DR, &format!("snapshot:{copy}")),
        ),
        (
            "rds:DeleteDBSnapshot",
            arn(
                "rds",
                PRIMARY,
                "snapshot:lifeboat-orders-db-2026-11-22-0200",
            ),
        ),
        (
            "rds:DeleteDBClusterSnapshot",
            arn("rds", DR, &format!("cluster-snapshot:{copy}")),
        ),
        (
            "rds:DeleteDBClusterSnapshot",
            arn("rds", DR, &format!("cluster-snapshot:{DRILL_DB}-final")),
        ),
        (
            "rds:DeleteDBInstanceAutomatedBackup",
            arn("rds", DR, "auto-backup:ab-orders-db"),
        ),
        (
            "rds:DeleteDBClusterAutomatedBackup",
            arn("rds", DR, "cluster-auto-backup:cab-orders"),
        ),
    ] {
        let region = resource.split(':').nth(3).unwrap_or_default();
        let request = Request::new(action, region).on(&resource, &own);
        role.refuses(&request);
        role.fences(&request);
    }
    // Nor does it take a tag off anything (lifeboat:backup would take a database out of the backups).
    for resource in [
        db(PRIMARY, OLD_PRIMARY),
        db(DR, DRILL_DB),
        db(DR, FAILOVER_DB),
    ] {
        let region = resource.split(':').nth(3).unwrap_or_default();
        let request = Request::new("rds:RemoveTagsFromResource", region)
            .on(&resource, &failover_tags(DRILL_DB, true))
            .with("aws:TagKeys", &["lifeboat:backup"]);
        role.refuses(&request);
        role.fences(&request);
    }
}

#[test]
fn the_failover_role_stops_only_the_named_old_primaries_and_its_own_dr_databases() {
    let template = load(TEMPLATE);
    let role = failover_role(&template);

    // After a failover: the old primary, although the policy backs it up. After a failback: the DR database.
    role.allows(
        &Request::new("rds:StopDBInstance", PRIMARY)
            .on(&db(PRIMARY, OLD_PRIMARY), &[("lifeboat:backup", "true")]),
    );
    role.allows(
        &Request::new("rds:StopDBInstance", DR)
            .on(&db(DR, FAILOVER_DB), &failover_tags(FAILOVER_DB, false)),
    );

    for (action, resource, tags) in [
        (
            "rds:StopDBInstance",
            db(PRIMARY, "payments-db"),
            vec![("lifeboat:backup", "true")],
        ),
        ("rds:StopDBInstance", db(PRIMARY, "orders-db-2"), Vec::new()),
        ("rds:StopDBInstance", db(DR, REPLICA), Vec::new()),
        (
            "rds:StopDBInstance",
            db(DR, DRILL_DB),
            failover_tags(DRILL_DB, true),
        ),
        (
            "rds:StopDBInstance",
            db(PRIMARY, FAILBACK_DB),
            failover_tags(FAILBACK_DB, false),
        ),
        (
            "rds:StopDBCluster",
            cluster(PRIMARY, OLD_PRIMARY),
            vec![("lifeboat:backup", "true")],
        ),
        (
            "rds:StopDBCluster",
            cluster(DR, FAILOVER_DB),
            failover_tags(FAILOVER_DB, false),
        ),
    ] {
        let region = resource.split(':').nth(3).unwrap_or_default();
        let request = Request::new(action, region).on(&resource, &tags);
        role.refuses(&request);
        role.fences(&request);
    }
    // Another deployment's DR database: its name is Lifeboat's, its tags are not this deployment's.
    role.refuses(&Request::new("rds:StopDBInstance", DR).on(
        &db(DR, FAILOVER_DB),
        &with_tag(
            &failover_tags(FAILOVER_DB, false),
            "lifeboat:deployment",
            "lifeboat-staging",
        ),
    ));
    // With no database named, no old primary may be stopped.
    let mut unnamed = deployment(&template);
    unnamed.set("FailoverDatabaseNames", &[""]);
    let unnamed = unnamed.role("FailoverFunction");
    let request = Request::new("rds:StopDBInstance", PRIMARY).on(&db(PRIMARY, OLD_PRIMARY), &[]);
    unnamed.refuses(&request);
    unnamed.fences(&request);
    // No other role stops a database.
    for other in other_roles(&template) {
        other.refuses(
            &Request::new("rds:StopDBInstance", PRIMARY).on(&db(PRIMARY, OLD_PRIMARY), &[]),
        );
    }
}

#[test]
fn the_failover_role_restores_only_its_own_names_with_this_deployments_tags() {
    let template = load(TEMPLATE);
    let role = failover_role(&template);
    let copy_tags = [
        ("lifeboat:managed", "true"),
        ("lifeboat:deployment", STACK),
        ("lifeboat:home-region", PRIMARY),
    ];
    let copy = arn(
        "rds",
        DR,
        "snapshot:lifeboat-orders-db-2026-11-22-0200-from-us-east-2",
    );
    let cluster_copy = arn(
        "rds",
        DR,
        "cluster-snapshot:lifeboat-orders-cluster-2026-11-22-0200-from-us-east-2",
    );
    let subnet_group = arn("rds", DR, "subgrp:lifeboat-failover");
    let parameter_group = arn("rds", DR, "pg:default.postgres16");
    let option_group = arn("rds", DR, "og:default:postgres-16");
    let restore = |name: &str, tags: &[(&str, &str)]| {
        Request::new("rds:RestoreDBInstanceFromDBSnapshot", DR)
            .on(&db(DR, name), &[])
            .on(&copy, &copy_tags)
            .on(&subnet_group, &[])
            .on(&parameter_group, &[])
            .on(&option_group, &[])
            .tagging(tags)
    };
    // The tags of a restore are also authorized as rds:AddTagsToResource on the new database.
    let tag_new = |resource: &str, tags: &[(&str, &str)]| {
        let region = resource.split(':').nth(3).unwrap_or_default().to_string();
        Request::new("rds:AddTagsToResource", &region)
            .on(resource, &[])
            .tagging(tags)
    };
    let real = failover_tags(FAILOVER_DB, false);
    let drill = failover_tags(DRILL_DB, true);

    // A real failover's database and a drill's, from this deployment's copy, into the failover network; also at
    // a point in time from replicated backups, and as an Aurora cluster with its member.
    role.allows(&restore(FAILOVER_DB, &real));
    role.allows(&tag_new(&db(DR, FAILOVER_DB), &real));
    role.allows(&restore(DRILL_DB, &drill));
    role.allows(&tag_new(&db(DR, DRILL_DB), &drill));
    role.allows(
        &Request::new("rds:RestoreDBInstanceToPointInTime", DR)
            .on(&db(DR, FAILOVER_DB), &[])
            .on(&arn("rds", DR, "auto-backup:ab-orders-db"), &[])
            .on(&arn("rds", DR, "subgrp:lifeboat-drills"), &[])
            .tagging(&real),
    );
    role.allows(
        &Request::new("rds:RestoreDBClusterFromSnapshot", DR)
            .on(&cluster(DR, FAILOVER_DB), &[])
            .on(&cluster_copy, &copy_tags)
            .on(&subnet_group, &[])
            .tagging(&real),
    );
    role.allows(
        &Request::new("rds:CreateDBInstance", DR)
            .on(&db(DR, "lbfailover-orders-db-202611221400-1"), &[])
            .on(&cluster(DR, FAILOVER_DB), &real)
            .tagging(&real),
    );

    // Never under another name, without this deployment's identity or the failover marker, a drill without its
    // drill tag, from another deployment's or a foreign snapshot, into another network.
    for request in [
        restore("orders-db-restored", &real),
        restore(OLD_PRIMARY, &real),
        restore("lbrestore-orders-db-1", &real),
        restore(FAILOVER_DB, &with_tag(&real, "lifeboat:deployment", "")),
        restore(
            FAILOVER_DB,
            &with_tag(&real, "lifeboat:deployment", "lifeboat-staging"),
        ),
        restore(
            FAILOVER_DB,
            &with_tag(&real, "lifeboat:home-region", "eu-west-1"),
        ),
        restore(FAILOVER_DB, &with_tag(&real, "lifeboat:failover", "")),
        restore(DRILL_DB, &with_tag(&drill, "lifeboat:failover-drill", "")),
        Request::new("rds:RestoreDBInstanceFromDBSnapshot", DR)
            .on(&db(DR, FAILOVER_DB), &[])
            .on(
                &copy,
                &with_tag(&copy_tags, "lifeboat:deployment", "lifeboat-staging"),
            )
            .on(&subnet_group, &[])
            .tagging(&real),
        Request::new("rds:RestoreDBInstanceFromDBSnapshot", DR)
            .on(&db(DR, FAILOVER_DB), &[])
            .on(
                &arn("rds", DR, "snapshot:rds:orders-db-2026-11-22-02-00"),
                &[],
            )
            .on(&subnet_group, &[])
            .tagging(&real),
        // a snapshot not named by Lifeboat, whatever its tags say
        Request::new("rds:RestoreDBInstanceFromDBSnapshot", DR)
            .on(&db(DR, FAILOVER_DB), &[])
            .on(
                &arn("rds", DR, "snapshot:orders-db-before-migration"),
                &copy_tags,
            )
            .on(&subnet_group, &[])
            .tagging(&real),
        Request::new("rds:RestoreDBInstanceFromDBSnapshot", DR)
            .on(&db(DR, FAILOVER_DB), &[])
            .on(&copy, &copy_tags)
            .on(&arn("rds", DR, "subgrp:default"), &[])
            .tagging(&real),
        // born as something the policy backs up, or with a key that is not Lifeboat's
        tag_new(
            &db(DR, FAILOVER_DB),
            &with_tag(&real, "lifeboat:backup", "true"),
        ),
        tag_new(
            &db(DR, FAILOVER_DB),
            &with_tag(&real, "cost-center", "1234"),
        ),
    ] {
        role.refuses(&request);
    }
    // A real failover's database is never born a drill (it would look temporary): refused by a Deny (the Allows
    // cannot tell a drill tag from the other lifeboat: tags).
    for request in [
        restore(FAILOVER_DB, &drill),
        tag_new(&db(DR, FAILOVER_DB), &drill),
        tag_new(&db(PRIMARY, FAILBACK_DB), &drill),
    ] {
        role.fences(&request);
    }

    // Existing databases: a run's progress on its own; the master password of its own; nothing of the
    // databases the policy backs up (fenced), of another deployment or of other Lifeboat functions.
    let progress = [("lifeboat:failover-phase", "securing")];
    role.allows(
        &Request::new("rds:AddTagsToResource", DR)
            .on(&db(DR, FAILOVER_DB), &real)
            .tagging(&progress),
    );
    role.allows(&Request::new("rds:ModifyDBInstance", DR).on(&db(DR, FAILOVER_DB), &real));
    role.allows(&Request::new("rds:ModifyDBCluster", DR).on(&cluster(DR, DRILL_DB), &drill));
    for key in [
        "lifeboat:failover-drill",
        "lifeboat:deployment",
        "lifeboat:expires-at",
        "lifeboat:backup",
    ] {
        role.refuses(
            &Request::new("rds:AddTagsToResource", DR)
                .on(&db(DR, FAILOVER_DB), &real)
                .tagging(&[(key, "x")]),
        );
    }
    let backed_up = [("lifeboat:backup", "true")];
    // A DR database someone since tagged for backups (it is the application's database now): its own Allow
    // would still change it, the Deny does not.
    role.fences(&Request::new("rds:ModifyDBInstance", DR).on(
        &db(DR, FAILOVER_DB),
        &with_tag(&real, "lifeboat:backup", "true"),
    ));
    for request in [
        Request::new("rds:ModifyDBInstance", PRIMARY).on(&db(PRIMARY, OLD_PRIMARY), &backed_up),
        Request::new("rds:RebootDBInstance", PRIMARY).on(&db(PRIMARY, OLD_PRIMARY), &backed_up),
        Request::new("rds:AddTagsToResource", PRIMARY)
            .on(&db(PRIMARY, OLD_PRIMARY), &backed_up)
            .tagging(&real),
    ] {
        role.refuses(&request);
        role.fences(&request);
    }
    for request in [
        Request::new("rds:ModifyDBInstance", DR).on(
            &db(DR, FAILOVER_DB),
            &with_tag(&real, "lifeboat:deployment", "lifeboat-staging"),
        ),
        // named like a failover database, but not marked as one
        Request::new("rds:ModifyDBInstance", DR).on(
            &db(DR, FAILOVER_DB),
            &[
                ("lifeboat:deployment", STACK),
                ("lifeboat:home-region", PRIMARY),
            ],
        ),
        Request::new("rds:ModifyDBInstance", PRIMARY)
            .on(&db(PRIMARY, "lbrestore-orders-db-1"), &[]),
        Request::new("rds:ModifyDBInstance", PRIMARY).on(&db(PRIMARY, "payments-db"), &[]),
    ] {
        role.refuses(&request);
    }

    // Failback: a replica lbfailback-* in the primary region of the serving DR database (its own lbfailover-* or
    // a promoted replica), then promoted; the named replicas and global databases only.
    let replica_back = |target: &str, source: &str, source_tags: &[(&str, &str)]| {
        let region = target.split(':').nth(3).unwrap_or_default().to_string();
        Request::new("rds:CreateDBInstanceReadReplica", &region)
            .on(target, &[])
            .on(source, source_tags)
            .on(&arn("rds", &region, "subgrp:lifeboat-drills"), &[])
            .tagging(&failover_tags(FAILBACK_DB, false))
    };
    role.allows(&replica_back(
        &db(PRIMARY, FAILBACK_DB),
        &db(DR, FAILOVER_DB),
        &real,
    ));
    role.allows(&replica_back(
        &db(PRIMARY, FAILBACK_DB),
        &db(DR, REPLICA),
        &[],
    ));
    role.refuses(&replica_back(
        &db(DR, FAILBACK_DB),
        &db(DR, FAILOVER_DB),
        &real,
    ));
    role.refuses(&replica_back(
        &db(PRIMARY, "orders-db-2"),
        &db(DR, FAILOVER_DB),
        &real,
    ));
    role.refuses(&replica_back(
        &db(PRIMARY, FAILBACK_DB),
        &db(DR, "payments-db"),
        &[],
    ));
    role.refuses(
        &Request::new("rds:CreateDBInstanceReadReplica", PRIMARY)
            .on(&db(PRIMARY, FAILBACK_DB), &[])
            .on(&db(DR, FAILOVER_DB), &real)
            .tagging(&with_tag(
                &failover_tags(FAILBACK_DB, false),
                "lifeboat:deployment",
                "",
            )),
    );
    role.refuses(&replica_back(
        &db(PRIMARY, FAILBACK_DB),
        &db(DR, FAILOVER_DB),
        &with_tag(&real, "lifeboat:deployment", "lifeboat-staging"),
    ));

    role.allows(&Request::new("rds:PromoteReadReplica", DR).on(&db(DR, REPLICA), &backed_up));
    role.allows(&Request::new("rds:PromoteReadReplica", PRIMARY).on(
        &db(PRIMARY, FAILBACK_DB),
        &failover_tags(FAILBACK_DB, false),
    ));
    role.refuses(
        &Request::new("rds:PromoteReadReplica", DR).on(&db(DR, "payments-db-replica"), &[]),
    );
    role.refuses(&Request::new("rds:PromoteReadReplica", PRIMARY).on(
        &db(PRIMARY, FAILBACK_DB),
        &with_tag(
            &failover_tags(FAILBACK_DB, false),
            "lifeboat:deployment",
            "lifeboat-staging",
        ),
    ));
    let global = |name: &str| format!("arn:aws:rds::{ACCOUNT}:global-cluster:{name}");
    for action in ["rds:SwitchoverGlobalCluster", "rds:FailoverGlobalCluster"] {
        role.allows(
            &Request::new(action, DR)
                .on(&global(GLOBAL), &[])
                .on(&cluster(DR, "orders-cluster-west"), &backed_up),
        );
        role.refuses(
            &Request::new(action, DR)
                .on(&global("payments-global"), &[])
                .on(&cluster(DR, "payments-cluster-west"), &[]),
        );
    }
}

#[test]
fn the_failover_role_keeps_credentials_under_lifeboat_failover() {
    let template = load(TEMPLATE);
    let role = failover_role(&template);
    let secret =
        |region: &str, name: &str| arn("secretsmanager", region, &format!("secret:{name}-AbCdEf"));
    let own = [
        ("lifeboat:failover", FAILOVER_DB),
        ("lifeboat:deployment", STACK),
        ("lifeboat:home-region", PRIMARY),
    ];
    let name = format!("lifeboat/failover/{FAILOVER_DB}");
    for action in ["secretsmanager:CreateSecret", "secretsmanager:TagResource"] {
        role.allows(
            &Request::new(action, PRIMARY)
                .on(&secret(PRIMARY, &name), &[])
                .tagging(&own),
        );
        for request in [
            Request::new(action, PRIMARY)
                .on(&secret(PRIMARY, "lifeboat/restore/x"), &[])
                .tagging(&own),
            Request::new(action, PRIMARY)
                .on(&secret(PRIMARY, "lifeboat/drill/x"), &[])
                .tagging(&own),
            Request::new(action, PRIMARY)
                .on(&secret(PRIMARY, "orders/app"), &[])
                .tagging(&own),
            Request::new(action, DR)
                .on(&secret(DR, &name), &[])
                .tagging(&own),
            Request::new(action, PRIMARY).on(&secret(PRIMARY, &name), &[]),
            Request::new(action, PRIMARY)
                .on(&secret(PRIMARY, &name), &[])
                .tagging(&with_tag(&own, "lifeboat:deployment", "lifeboat-staging")),
        ] {
            role.refuses(&request);
        }
    }
    for action in [
        "secretsmanager:GetSecretValue",
        "secretsmanager:DeleteSecret",
    ] {
        role.allows(&Request::new(action, PRIMARY).on(&secret(PRIMARY, &name), &own));
        for request in [
            Request::new(action, PRIMARY).on(&secret(PRIMARY, &name), &[]),
            Request::new(action, PRIMARY).on(
                &secret(PRIMARY, &name),
                &with_tag(&own, "lifeboat:deployment", "lifeboat-staging"),
            ),
            Request::new(action, PRIMARY).on(&secret(PRIMARY, "lifeboat/restore/x"), &own),
            Request::new(action, PRIMARY).on(&secret(PRIMARY, "orders/app"), &own),
        ] {
            role.refuses(&request);
        }
    }
    role.refuses(
        &Request::new("secretsmanager:PutSecretValue", PRIMARY).on(&secret(PRIMARY, &name), &own),
    );
}

#[test]
fn the_failover_role_writes_its_state_only_under_failover_in_the_reports_bucket() {
    let template = load(TEMPLATE);
    let role = failover_role(&template);
    let reports = format!("arn:aws:s3:::{STACK}-reportsbucket-4d5e6f");
    let ledger = format!("arn:aws:s3:::{STACK}-ledgerbucket-1a2b3c");
    let object = |bucket: &str, key: &str| format!("{bucket}/{key}");

    for action in ["s3:GetObject", "s3:PutObject"] {
        role.allows(
            &Request::new(action, PRIMARY).on(&object(&reports, "failover/orders.json"), &[]),
        );
        for key in [
            "monitor/state.json",
            "reports/posture.html",
            "orders.json",
            "failoverx/orders.json",
        ] {
            role.refuses(&Request::new(action, PRIMARY).on(&object(&reports, key), &[]));
        }
        role.refuses(
            &Request::new(action, PRIMARY).on(&object(&ledger, "failover/orders.json"), &[]),
        );
    }
    // A missing state object must read as 404: ListBucket on the reports bucket, not on the ledger.
    role.allows(&Request::new("s3:ListBucket", PRIMARY).on(&reports, &[]));
    role.refuses(&Request::new("s3:ListBucket", PRIMARY).on(&ledger, &[]));
    // The ledger: records appended, never read or removed; the state never deleted either.
    role.allows(
        &Request::new("s3:PutObject", PRIMARY)
            .on(&object(&ledger, "ledger/2026/11/22/x.json"), &[]),
    );
    role.refuses(
        &Request::new("s3:GetObject", PRIMARY)
            .on(&object(&ledger, "ledger/2026/11/22/x.json"), &[]),
    );
    for resource in [
        object(&reports, "failover/orders.json"),
        object(&ledger, "ledger/x.json"),
    ] {
        let request = Request::new("s3:DeleteObject", PRIMARY).on(&resource, &[]);
        role.refuses(&request);
        role.fences(&request);
    }
    // Its environment names the bucket.
    let variable = template
        .get("Resources")
        .and_then(|r| r.get("FailoverFunction"))
        .and_then(|f| f.get("Properties"))
        .and_then(|p| p.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(|v| v.get("LIFEBOAT_REPORTS_BUCKET"));
    assert_eq!(
        values(variable),
        ["${ReportsBucket}"],
        "FailoverFunction: LIFEBOAT_REPORTS_BUCKET must be !Ref ReportsBucket"
    );
}

/// What may invoke the function: the alarm rule (only with alarms named), the alarms' own actions (only this
/// account's alarms in this region), the every-minute schedule.
#[test]
fn the_failover_function_is_invoked_only_by_this_accounts_alarms_and_rules() {
    let template = load(TEMPLATE);
    let resource = |id: &str| {
        template
            .get("Resources")
            .and_then(|r| r.get(id))
            .unwrap_or_else(|| panic!("the template has no {id}"))
    };
    let property =
        |id: &str, name: &str| values(resource(id).get("Properties").and_then(|p| p.get(name)));

    let rule = resource("FailoverAlarmRule");
    assert_eq!(
        values(rule.get("Condition")),
        ["HasFailoverAlarms"],
        "FailoverAlarmRule: only with alarms named"
    );
    let pattern = rule
        .get("Properties")
        .and_then(|p| p.get("EventPattern"))
        .expect("FailoverAlarmRule: no EventPattern");
    assert_eq!(values(pattern.get("source")), ["aws.cloudwatch"]);
    assert_eq!(
        values(pattern.get("detail-type")),
        ["CloudWatch Alarm State Change"]
    );
    assert_eq!(
        values(pattern.get("detail").and_then(|d| d.get("alarmName"))),
        ["${FailoverAlarmNames}"],
        "FailoverAlarmRule: the alarms named in FailoverAlarmNames only"
    );
    assert!(
        property("FailoverAlarmRule", "Name")
            .join("")
            .starts_with("${AWS::StackName}-"),
        "FailoverAlarmRule: named after the stack (DeadLetterQueuePolicy admits the stack's rules only)"
    );

    for (id, principal, source_arn) in [
        (
            "FailoverAlarmRulePermission",
            "events.amazonaws.com",
            "${FailoverAlarmRule.Arn}",
        ),
        (
            "FailoverAlarmActionPermission",
            "lambda.alarms.cloudwatch.amazonaws.com",
            "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*",
        ),
    ] {
        assert_eq!(
            values(resource(id).get("Condition")),
            ["HasFailoverAlarms"],
            "{id}: only with alarms named"
        );
        assert_eq!(
            property(id, "FunctionName"),
            ["${FailoverFunction.Arn}"],
            "{id}"
        );
        assert_eq!(property(id, "Principal"), [principal], "{id}");
        assert_eq!(
            property(id, "SourceAccount"),
            ["${AWS::AccountId}"],
            "{id}: SourceAccount must be this account (confused deputy)"
        );
        assert_eq!(property(id, "SourceArn"), [source_arn], "{id}: SourceArn");
    }

    let mut env = deployment(&template);
    assert!(env.condition("HasFailoverAlarms"));
    env.set("FailoverAlarmNames", &[""]);
    assert!(
        !env.condition("HasFailoverAlarms"),
        "no alarms named: no rule, no permissions"
    );

    let schedule = resource("FailoverFunction")
        .get("Properties")
        .and_then(|p| p.get("Events"))
        .and_then(Value::as_mapping)
        .and_then(|events| {
            events
                .values()
                .find(|e| values(e.get("Type")) == ["Schedule"])
        })
        .expect("FailoverFunction: no schedule");
    assert_eq!(
        values(schedule.get("Properties").and_then(|p| p.get("Schedule"))),
        ["rate(1 minute)"],
        "FailoverFunction: advanced every minute"
    );
}

/// The DR-region stack of the failover network: the subnet group the template's parameter names by default, and a
/// security group open to the application only.
#[test]
fn the_dr_failover_network_admits_only_the_application() {
    let network = load(super::DR_FAILOVER);
    let template = load(TEMPLATE);
    let default_of = |t: &Value, p: &str| {
        values(
            t.get("Parameters")
                .and_then(|ps| ps.get(p))
                .and_then(|p| p.get("Default")),
        )
        .join("")
    };
    assert_eq!(
        default_of(&network, "SubnetGroupName"),
        default_of(&template, "FailoverSubnetGroupName"),
        "the DR stack's subnet group must be the one the failover role may restore into by default"
    );
    let group = network
        .get("Resources")
        .and_then(|r| r.get("DatabaseSecurityGroup"))
        .and_then(|g| g.get("Properties"))
        .expect("no DatabaseSecurityGroup");
    let rules = group
        .get("SecurityGroupIngress")
        .map(|r| format!("{r:?}"))
        .unwrap_or_default();
    assert!(
        !rules.contains("0.0.0.0/0") && !rules.contains("::/0"),
        "DatabaseSecurityGroup: the failover database must not be open to the internet"
    );
    for (key, parameter) in [
        ("CidrIp", "ApplicationCidr"),
        ("SourceSecurityGroupId", "ApplicationSecurityGroupId"),
        ("CidrIp", "LifeboatCheckCidr"),
    ] {
        assert!(
            rules.contains(key) && rules.contains(parameter),
            "DatabaseSecurityGroup: no ingress from {parameter} ({key})"
        );
    }
    let egress = group
        .get("SecurityGroupEgress")
        .map(|r| format!("{r:?}"))
        .unwrap_or_default();
    assert!(
        egress.contains("255.255.255.255/32"),
        "DatabaseSecurityGroup: the default allow-all egress must be replaced (the database calls nothing)"
    );
}

/// The evaluator itself, on the IAM semantics the fences above rely on.
#[test]
fn the_iam_evaluator_follows_iam() {
    use super::iam::glob;
    let template: Value = serde_yaml_ng::from_str(
        r#"
Parameters:
  Names: {Type: CommaDelimitedList, Default: "a.example.com,b.example.com"}
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Policies:
        - Statement:
            - Sid: AllowNamed
              Effect: Allow
              Action: route53:ChangeResourceRecordSets
              Resource: "*"
              Condition:
                ForAllValues:StringEquals:
                  route53:ChangeResourceRecordSetsNormalizedRecordNames: !Ref Names
            - Sid: DenyOthers
              Effect: Deny
              Action: route53:ChangeResourceRecordSets
              Resource: "*"
              Condition:
                ForAnyValue:StringNotEquals:
                  route53:ChangeResourceRecordSetsNormalizedRecordNames: !Ref Names
            - Sid: AllowTagged
              Effect: Allow
              Action: rds:DeleteDBInstance
              NotResource: !Split [",", !Sub ["arn:aws:rds:*:*:db:${X}", {X: !Join [",arn:aws:rds:*:*:db:", [keep, safe]]}]]
              Condition:
                StringNotEquals:
                  aws:ResourceTag/owner: someone-else
                "Null":
                  aws:ResourceTag/drill: "false"
"#,
    )
    .expect("YAML");
    let role = Env::new(&template, "s", "us-east-2").role("Fn");
    let change = |names: &[&str]| {
        let request =
            Request::new("route53:ChangeResourceRecordSets", ROUTE53).on(&zone(ZONE), &[]);
        if names.is_empty() {
            request
        } else {
            request.with(
                "route53:ChangeResourceRecordSetsNormalizedRecordNames",
                names,
            )
        }
    };
    role.allows(&change(&["a.example.com"]));
    role.allows(&change(&["a.example.com", "b.example.com"]));
    // ForAllValues holds of a request without the key; ForAnyValue does not.
    role.allows(&change(&[]));
    assert_eq!(role.fence(&change(&[])), None);
    // ForAnyValue:StringNotEquals: one value outside the list is enough for the Deny.
    role.fences(&change(&["a.example.com", "c.example.com"]));
    // NotResource, StringNotEquals of a missing key (holds), Null.
    let delete = |name: &str, tags: &[(&str, &str)]| {
        Request::new("rds:DeleteDBInstance", "us-east-2").on(&db("us-east-2", name), tags)
    };
    role.allows(&delete("scratch", &[("drill", "yes")]));
    role.refuses(&delete("keep", &[("drill", "yes")]));
    role.refuses(&delete("scratch", &[]));
    role.refuses(&delete(
        "scratch",
        &[("drill", "yes"), ("owner", "someone-else")],
    ));
    role.allows(&delete("scratch", &[("drill", "yes"), ("owner", "me")]));
    // Actions compare without case, resources with it.
    assert!(glob("rds:Delete*", "RDS:DELETEDBINSTANCE", false));
    assert!(!glob(
        "arn:aws:rds:*:*:db:Keep",
        "arn:aws:rds:x:1:db:keep",
        true
    ));
}
