//! The real restore handler against moto server (every restore is available at once there), its checks pointed
//! (test-only endpoint override) at the local PostgreSQL server, which the tests seed: a named snapshot restored,
//! secured, checked and announced once; the newest recovery point and a point in time; a copy in a DR region with
//! that region's network; a dry run that changes nothing; expiry (notice, final snapshot, deletion) and `keep`; and
//! bad input, each rejected saying what is possible, with nothing made.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use lifeboat::lambda::HandlerError;
use lifeboat::ledger::{LedgerRecord, Phase};
use lifeboat::report::ItemStatus;
use lifeboat::restore::adhoc::Source;
use lifeboat_integration_tests::{Sandbox, at, context, event, seed_postgres};
use lifeboat_restore::RestoreReport;
use serde_json::{Value, json};

/// The snapshot time of the history the tests build.
const SNAPSHOT_TIME: &str = "2026-11-22T02:00:00Z";

/// The snapshot the snapshot function takes of `incident-db` at [`SNAPSHOT_TIME`].
const SNAPSHOT: &str = "lifeboat-incident-db-2026-11-22-0200";

/// Who asks, as the CLI sends it.
const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/oncall/alice";

/// The tag this file's policy selects by: other test files share the emulator's regions, and their functions select
/// `lifeboat:backup=true`; this file's databases never join their fleets.
const SELECTED: [(&str, &str); 1] = [("restore-test", "true")];

/// A policy whose plan restores into the subnet group `lifeboat-restores` and the security group `sg-0restores`,
/// its checks reading `database` on the local PostgreSQL server.
fn policy(database: &str) -> String {
    format!(
        r#"
version: 1
name: restore-test
plans:
  - name: production
    select: {{tags: {{"restore-test": "true"}}}}
    retention: {{keep_daily: 30}}
    verification:
      every: 7d
      instance_class: db.t3.micro
      subnet_group: lifeboat-restores
      security_groups: [sg-0restores]
      database_name: {database}
      checks:
        - {{kind: tables_present, tables: [bookings]}}
        - {{kind: min_rows, table: bookings, at_least: 3}}
        - {{kind: freshness, table: bookings, column: created_at, tolerance: 24h}}
    objectives: {{rpo: 1h, rto: 4h}}
"#
    )
}

/// Run the restore function "as of" `now` with the DR regions `dr`.
async fn invoke(
    sandbox: &Sandbox,
    policy: &str,
    now: DateTime<Utc>,
    dr: &[&str],
    payload: Value,
) -> Result<RestoreReport, HandlerError> {
    sandbox
        .restore_function(policy, now, dr, 5432)
        .await
        .handle(payload, &context(&format!("restore-{now}")))
        .await
}

/// [`invoke`] that must succeed.
async fn run(
    sandbox: &Sandbox,
    policy: &str,
    now: DateTime<Utc>,
    dr: &[&str],
    payload: Value,
) -> RestoreReport {
    invoke(sandbox, policy, now, dr, payload.clone())
        .await
        .unwrap_or_else(|e| panic!("restore run {payload} at {now}: {e}"))
}

/// A sandbox with `incident-db` (PostgreSQL, selected by the plan), the restore subnet group and one snapshot by the
/// real snapshot function at [`SNAPSHOT_TIME`].
async fn fleet(region: &str, policy: &str) -> Sandbox {
    let sandbox = Sandbox::new(region).await;
    sandbox.drill_subnet_group("lifeboat-restores").await;
    sandbox
        .instance_of("incident-db", "postgres", "lifeboat", &SELECTED)
        .await;
    sandbox.snapshot_history(policy, [at(SNAPSHOT_TIME)]).await;
    sandbox
}

/// The DB instance `id` in `rds`'s region, as RDS describes it.
async fn instance(rds: &aws_sdk_rds::Client, id: &str) -> aws_sdk_rds::types::DbInstance {
    rds.describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("describe {id}: {e:?}"))
        .db_instances()
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no instance {id}"))
}

fn tags_of(db: &aws_sdk_rds::types::DbInstance) -> BTreeMap<String, String> {
    db.tag_list()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The restore function's ledger records of `action`.
async fn records(sandbox: &Sandbox, action: &str) -> Vec<LedgerRecord> {
    sandbox
        .ledger_records()
        .await
        .into_iter()
        .filter(|r| r.function == "restore" && r.action == action)
        .collect()
}

/// The notifications whose subject starts with `prefix`.
async fn notifications(sandbox: &Sandbox, prefix: &str) -> Vec<(String, String)> {
    sandbox
        .notifications()
        .await
        .into_iter()
        .filter(|(subject, _)| subject.starts_with(prefix))
        .collect()
}

fn restore_request(snapshot: &str) -> Value {
    json!({
        "action": "restore",
        "database": "incident-db",
        "snapshot": snapshot,
        "reason": "INC-481 compare bookings",
        "requested_by": ALICE,
        "expires_in": "48h",
    })
}

#[tokio::test]
async fn a_named_snapshot_is_restored_private_in_the_plans_network_secured_checked_and_announced_once()
 {
    let database = seed_postgres(10, at(SNAPSHOT_TIME) - Duration::minutes(5)).await;
    let policy = policy(&database);
    let sandbox = fleet("eu-west-3", &policy).await;
    let target = "lbrestore-incident-db-20261122-0200";

    // 09:00 the operator asks; moto restores at once, so the same run already sets the credentials.
    let started = run(
        &sandbox,
        &policy,
        at("2026-11-22T09:00:00Z"),
        &[],
        restore_request(SNAPSHOT),
    )
    .await;
    let plan = started.plan.clone().expect("the plan is returned");
    assert!(!started.dry_run);
    assert_eq!(
        plan.target, target,
        "derived from the source and the data's time"
    );
    assert_eq!(
        plan.source,
        Source::Snapshot {
            identifier: SNAPSHOT.into(),
            arn: format!("arn:aws:rds:eu-west-3:123456789012:snapshot:{SNAPSHOT}"),
            time: at(SNAPSHOT_TIME),
        }
    );
    assert_eq!((plan.gap_seconds, plan.age_seconds), (0, 7 * 3600));
    assert_eq!(plan.expires_at, at("2026-11-24T09:00:00Z"));
    let start = started
        .results
        .iter()
        .find(|r| r.action == "start-restore")
        .unwrap_or_else(|| panic!("{started:#?}"));
    assert_eq!(
        (start.status, start.resource.as_deref()),
        (ItemStatus::Done, Some(target))
    );
    assert_eq!(started.restores.len(), 1, "{started:#?}");
    assert_eq!(started.restores[0].step, "credentials-set", "{started:#?}");

    let db = instance(&sandbox.rds, target).await;
    assert_ne!(db.publicly_accessible(), Some(true), "restores are private");
    assert_eq!(
        db.db_subnet_group().and_then(|g| g.db_subnet_group_name()),
        Some("lifeboat-restores")
    );
    let groups: Vec<&str> = db
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    assert_eq!(groups, ["sg-0restores"]);
    let tags = tags_of(&db);
    for (key, value) in [
        ("lifeboat:restore", target),
        ("lifeboat:reason", "INC-481 compare bookings"),
        ("lifeboat:requested-by", ALICE),
        ("lifeboat:expires-at", "2026-11-24T09:00:00Z"),
        ("lifeboat:deployment", "lifeboat"),
        ("lifeboat:home-region", "eu-west-3"),
        ("lifeboat:source", "incident-db"),
        ("lifeboat:restore-snapshot", SNAPSHOT),
        ("lifeboat:restore-snapshot-time", SNAPSHOT_TIME),
        ("lifeboat:restore-started-at", "2026-11-22T09:00:00Z"),
        ("lifeboat:restore-phase", "securing"),
    ] {
        assert_eq!(
            tags.get(key).map(String::as_str),
            Some(value),
            "{key}: {tags:#?}"
        );
    }
    assert!(
        !tags.keys().any(|k| k.starts_with("lifeboat:drill")),
        "an ad-hoc restore is no drill: {tags:#?}"
    );
    let secret_name = format!("lifeboat/restore/{target}");
    let password = sandbox.secret(&secret_name).await.expect("credentials set");
    assert!(password.len() >= 32, "a password of its own");

    let [start_record] = &records(&sandbox, "start-restore").await[..] else {
        panic!("one start-restore record");
    };
    assert_eq!(start_record.phase, Phase::Result);
    assert_eq!(start_record.outcome.as_deref(), Some("ok"));
    assert_eq!(start_record.resource, target);
    assert_eq!(start_record.database, "incident-db");
    assert_eq!(start_record.details["requested_by"], ALICE);
    assert_eq!(start_record.details["reason"], "INC-481 compare bookings");
    assert_eq!(start_record.details["plan"]["target"], target);
    assert!(
        start_record.reason.contains(ALICE),
        "{}",
        start_record.reason
    );

    // 09:20 credentials in effect: the plan's checks run against the real database, one message says it is ready.
    let ready = run(
        &sandbox,
        &policy,
        at("2026-11-22T09:20:00Z"),
        &[],
        event("restore/instance-restored.json"),
    )
    .await;
    assert_eq!(ready.trigger, "rds-event");
    let progress = &ready.restores[0];
    assert_eq!(progress.step, "ready", "{ready:#?}");
    assert_eq!(
        progress.restore_seconds,
        Some(0),
        "available when first seen"
    );
    let names: Vec<(&str, bool)> = progress
        .checks
        .iter()
        .map(|c| (c.name.as_str(), c.passed))
        .collect();
    assert_eq!(
        names,
        [
            ("connectivity", true),
            ("tables_present", true),
            ("min_rows:bookings", true),
            ("freshness:bookings.created_at", true)
        ],
        "{ready:#?}"
    );
    assert_eq!(ready.counts.failed, 0, "{ready:#?}");
    let endpoint = progress.endpoint.clone().expect("an endpoint");
    let announced = notifications(&sandbox, "Lifeboat restore ready").await;
    let [(subject, body)] = &announced[..] else {
        panic!("one ready message: {announced:#?}");
    };
    assert_eq!(
        subject,
        &format!("Lifeboat restore ready: {target} (incident-db as of {SNAPSHOT_TIME})")
    );
    assert!(body.contains(&format!("Endpoint: {endpoint}")), "{body}");
    assert!(body.contains(&format!("secret {secret_name}")), "{body}");
    assert!(
        body.contains(&format!("Recovery point: {SNAPSHOT}")),
        "{body}"
    );
    assert!(body.contains("4 check(s) passed"), "{body}");
    assert!(body.contains("Expires: 2026-11-24T09:00:00Z"), "{body}");
    assert!(
        !body.contains(&password),
        "credentials never reach the message"
    );
    let tags = tags_of(&instance(&sandbox.rds, target).await);
    assert_eq!(tags["lifeboat:restore-phase"], "ready");
    assert_eq!(tags["lifeboat:restore-notified"], "ready");
    let [ready_record] = &records(&sandbox, "restore-ready").await[..] else {
        panic!("one restore-ready record");
    };
    assert_eq!(
        ready_record.details["checks"].as_array().map(Vec::len),
        Some(4)
    );

    // 09:25 and 10:00: nothing more to say.
    for now in ["2026-11-22T09:25:00Z", "2026-11-22T10:00:00Z"] {
        let later = run(
            &sandbox,
            &policy,
            at(now),
            &[],
            event("restore/scheduled.json"),
        )
        .await;
        assert_eq!(later.restores[0].step, "ready", "{later:#?}");
        assert!(later.results.is_empty(), "{later:#?}");
    }
    assert_eq!(
        sandbox.notifications().await.len(),
        1,
        "one message in all: {:#?}",
        sandbox.notifications().await
    );
    assert_eq!(records(&sandbox, "restore-ready").await.len(), 1);
    assert_eq!(
        sandbox.databases_named("lbrestore-").await,
        [target],
        "the restore is kept until it expires"
    );
}

/// Now, to the second (moto's latest restorable time is the real time, so point-in-time tests run near it).
fn real_now() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now")
}

fn default_name(time: DateTime<Utc>) -> String {
    format!("lbrestore-incident-db-{}", time.format("%Y%m%d-%H%M"))
}

#[tokio::test]
async fn the_newest_recovery_point_and_a_point_in_time_restore_from_the_automated_backups() {
    // moto's window: its latest restorable time is the real time, its earliest unknown. The handler runs two
    // minutes ahead of it, so the newest recovery point is the window's end, a minute before the handler's now.
    let requested = real_now() - Duration::minutes(20);
    let database = seed_postgres(10, requested - Duration::minutes(5)).await;
    let policy = policy(&database);
    let sandbox = fleet("eu-north-1", &policy).await;

    // Neither snapshot nor time: the newest recovery point, the latest restorable time (newer than the 02:00
    // snapshot).
    let before = real_now();
    let now = before + Duration::minutes(2);
    let newest = run(
        &sandbox,
        &policy,
        now,
        &[],
        json!({"action": "restore", "database": "incident-db", "reason": "INC-9 newest",
            "requested_by": ALICE}),
    )
    .await;
    let after = real_now() + Duration::seconds(1);
    let plan = newest.plan.clone().expect("plan");
    let Source::PointInTime { time: latest } = plan.source else {
        panic!("the latest restorable time: {plan:#?}");
    };
    assert!(
        before <= latest && latest <= after,
        "{latest} is moto's now"
    );
    assert_eq!(plan.requested_time, None);
    assert_eq!(plan.gap_seconds, 0);
    assert_eq!(plan.age_seconds, (now - latest).num_seconds());
    assert_eq!(
        plan.restorable_window.map(|w| (w.earliest, w.latest)),
        Some((None, latest))
    );
    assert_eq!(
        plan.expires_at,
        now + Duration::hours(48),
        "48 hours by default"
    );
    let newest_target = default_name(latest);
    assert_eq!(plan.target, newest_target);
    let tags = tags_of(&instance(&sandbox.rds, &newest_target).await);
    assert_eq!(tags["lifeboat:restore-snapshot"], "point-in-time");
    assert_eq!(
        tags["lifeboat:restore-snapshot-time"],
        latest.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert!(
        !tags.contains_key("lifeboat:restore-snapshot-arn"),
        "{tags:#?}"
    );

    // A point in time inside the window: restored exactly to it (no gap), from the automated backups.
    let pit = run(
        &sandbox,
        &policy,
        now,
        &[],
        json!({"action": "restore", "database": "incident-db", "point_in_time": requested.to_rfc3339(),
            "reason": "INC-9 the minute before", "requested_by": ALICE}),
    )
    .await;
    let plan = pit.plan.clone().expect("plan");
    assert_eq!(plan.source, Source::PointInTime { time: requested });
    assert_eq!(plan.requested_time, Some(requested));
    assert_eq!(
        (plan.gap_seconds, plan.age_seconds),
        (0, (now - requested).num_seconds())
    );
    let target = default_name(requested);
    assert_eq!(plan.target, target);
    let db = instance(&sandbox.rds, &target).await;
    assert_eq!(
        db.db_subnet_group().and_then(|g| g.db_subnet_group_name()),
        Some("lifeboat-restores")
    );
    let groups: Vec<&str> = db
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    assert_eq!(groups, ["sg-0restores"]);
    assert_ne!(db.publicly_accessible(), Some(true));
    let tags = tags_of(&db);
    assert_eq!(tags["lifeboat:restore-snapshot"], "point-in-time");
    assert_eq!(
        tags["lifeboat:restore-snapshot-time"],
        requested.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_eq!(tags["lifeboat:reason"], "INC-9 the minute before");
    let mut targets = vec![newest_target.clone(), target.clone()];
    targets.sort();
    assert_eq!(sandbox.databases_named("lbrestore-").await, targets);
    let starts = records(&sandbox, "start-restore").await;
    assert_eq!(starts.len(), 2, "{starts:#?}");
    assert!(starts.iter().all(|r| r.details["requested_by"] == ALICE));

    // Both go on to ready; the checks measure freshness against the time restored to.
    let ready = run(
        &sandbox,
        &policy,
        now + Duration::minutes(5),
        &[],
        json!({"action": "restore"}),
    )
    .await;
    let progress = ready
        .restores
        .iter()
        .find(|r| r.target == target)
        .unwrap_or_else(|| panic!("{ready:#?}"));
    assert_eq!(
        (progress.step.as_str(), progress.recovery_point.as_str()),
        ("ready", "point-in-time"),
        "{ready:#?}"
    );
    assert!(progress.checks.iter().all(|c| c.passed), "{ready:#?}");
    let announced = notifications(&sandbox, "Lifeboat restore ready").await;
    assert_eq!(
        announced.len(),
        2,
        "one message per restore: {announced:#?}"
    );
    let (_, body) = announced
        .iter()
        .find(|(subject, _)| subject.contains(&target))
        .expect("the point-in-time restore's message");
    assert!(
        body.contains(&format!(
            "Recovery point: point-in-time (data as of {})",
            requested.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )),
        "{body}"
    );
}

#[tokio::test]
async fn a_copy_in_the_dr_region_is_restored_there_with_that_regions_network_and_key() {
    let (primary, dr) = ("ap-south-1", "ap-southeast-2");
    let database = seed_postgres(10, at(SNAPSHOT_TIME) - Duration::minutes(5)).await;
    let policy = policy(&database).replace(
        "    verification:\n",
        &format!(
            "    copies:\n      - {{region: {dr}, kms_key_id: alias/lifeboat-dr, retain_days: 14}}\n    \
             verification:\n      regions:\n        {dr}: {{subnet_group: lifeboat-dr-restores, \
             security_groups: [sg-0drrestores]}}\n"
        ),
    );
    let sandbox = Sandbox::new(primary).await;
    let dr_rds = aws_sdk_rds::Client::new(
        &lifeboat_integration_tests::sdk_config_at(&sandbox.endpoint, dr).await,
    );
    let dr_key = lifeboat_integration_tests::kms_key_in(dr, "alias/lifeboat-dr").await;
    let primary_key = sandbox.kms_key().await;
    sandbox
        .instance("incident-db", &SELECTED, Some(&primary_key))
        .await;
    sandbox.drill_subnet_group("lifeboat-restores").await;
    let dr_subnets = sandbox
        .drill_subnet_group_in(dr, "lifeboat-dr-restores")
        .await;
    sandbox.snapshot_history(&policy, [at(SNAPSHOT_TIME)]).await;

    // The real copy function copies the snapshot to the DR region, encrypted with the DR key.
    let copied = sandbox
        .copy_function(&policy, at("2026-11-22T02:05:00Z"), &[dr], 5)
        .await
        .handle(event("copy/scheduled-hourly.json"), &context("copy"))
        .await
        .expect("copy run");
    assert_eq!(copied.counts.failed, 0, "{copied:#?}");
    let copies = dr_rds
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .expect("DR snapshots");
    let [copy] = copies.db_snapshots() else {
        panic!("one copy in {dr}: {copies:#?}");
    };
    let copy_id = copy.db_snapshot_identifier().expect("copy id").to_string();
    let copy_arn = copy.db_snapshot_arn().expect("copy ARN").to_string();

    // The operator restores the newest recovery point in the DR region: the copy (no replicated backups there).
    let now = at("2026-11-22T09:00:00Z");
    let started = run(
        &sandbox,
        &policy,
        now,
        &[dr],
        json!({"action": "restore", "database": "incident-db", "region": dr,
            "reason": "INC-77 primary region down", "requested_by": ALICE, "expires_in": "3d"}),
    )
    .await;
    let plan = started.plan.clone().expect("plan");
    assert_eq!(plan.region, dr);
    assert_eq!(
        plan.source,
        Source::Snapshot {
            identifier: copy_id.clone(),
            arn: copy_arn.clone(),
            time: at(SNAPSHOT_TIME),
        }
    );
    assert_eq!(
        plan.restorable_window, None,
        "no replicated backups in {dr}"
    );
    assert_eq!(
        (plan.subnet_group.as_str(), plan.security_groups.as_slice()),
        ("lifeboat-dr-restores", &["sg-0drrestores".to_string()][..])
    );
    assert_eq!(plan.expires_at, at("2026-11-25T09:00:00Z"));
    let target = plan.target.clone();
    assert_eq!(target, "lbrestore-incident-db-20261122-0200");
    let db = instance(&dr_rds, &target).await;
    assert!(
        db.db_instance_arn()
            .is_some_and(|a| a.contains(&format!(":{dr}:"))),
        "{db:?}"
    );
    let subnet_group = db.db_subnet_group().expect("subnet group");
    assert_eq!(
        subnet_group.db_subnet_group_name(),
        Some("lifeboat-dr-restores")
    );
    let mut subnets: Vec<&str> = subnet_group
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_identifier())
        .collect();
    subnets.sort();
    let mut expected: Vec<&str> = dr_subnets.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(subnets, expected, "the DR region's own subnets");
    let groups: Vec<&str> = db
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    assert_eq!(groups, ["sg-0drrestores"]);
    assert_eq!(db.kms_key_id(), Some(dr_key.as_str()), "the DR key: {db:?}");
    assert_ne!(db.publicly_accessible(), Some(true));
    let tags = tags_of(&db);
    assert_eq!(tags["lifeboat:restore-snapshot"], copy_id);
    assert_eq!(tags["lifeboat:restore-snapshot-arn"], copy_arn);
    assert_eq!(tags["lifeboat:home-region"], primary);
    assert!(
        sandbox.databases_named("lbrestore-").await.is_empty(),
        "nothing restored in the primary region"
    );
    let [start_record] = &records(&sandbox, "start-restore").await[..] else {
        panic!("one start-restore record");
    };
    assert_eq!(start_record.region, dr);

    // Advanced from the primary region: credentials in the home region's secret, checks, one message.
    assert_eq!(started.restores[0].region, dr, "{started:#?}");
    assert_eq!(started.restores[0].step, "credentials-set", "{started:#?}");
    assert!(
        sandbox
            .secret(&format!("lifeboat/restore/{target}"))
            .await
            .is_some(),
        "the secret lives in the home region"
    );
    let ready = run(
        &sandbox,
        &policy,
        now + Duration::minutes(20),
        &[dr],
        json!({"action": "restore"}),
    )
    .await;
    assert_eq!(ready.restores[0].step, "ready", "{ready:#?}");
    assert!(
        ready.restores[0].checks.iter().all(|c| c.passed),
        "{ready:#?}"
    );
    let announced = notifications(&sandbox, "Lifeboat restore ready").await;
    let [(_, body)] = &announced[..] else {
        panic!("one ready message: {announced:#?}");
    };
    assert!(body.contains(&format!("Region: {dr}")), "{body}");
    assert!(
        body.contains(&format!("Recovery point: {copy_id}")),
        "{body}"
    );
    assert!(body.contains(&format!("--region {primary}")), "{body}");
}

#[tokio::test]
async fn a_dry_run_returns_the_plan_and_changes_nothing() {
    let policy = policy("unused");
    let sandbox = Sandbox::new("sa-east-1").await;
    sandbox.drill_subnet_group("lifeboat-restores").await;
    sandbox
        .instance_of("incident-db", "postgres", "lifeboat", &SELECTED)
        .await;
    sandbox
        .snapshot_history(&policy, [at("2026-11-21T02:00:00Z"), at(SNAPSHOT_TIME)])
        .await;
    // Drills recorded how long each snapshot took to restore.
    for (snapshot, seconds) in [
        ("lifeboat-incident-db-2026-11-21-0200", "1800"),
        (SNAPSHOT, "1200"),
    ] {
        sandbox
            .rds
            .add_tags_to_resource()
            .resource_name(format!(
                "arn:aws:rds:sa-east-1:123456789012:snapshot:{snapshot}"
            ))
            .tags(
                aws_sdk_rds::types::Tag::builder()
                    .key("lifeboat:restore-seconds")
                    .value(seconds)
                    .build(),
            )
            .send()
            .await
            .expect("tag the drilled snapshot");
    }
    let ledger_before = sandbox.ledger_objects().await.len();
    let now = at("2026-11-22T09:00:00Z");
    // No reason or requested_by: a dry run asks nothing of RDS.
    let report = run(
        &sandbox,
        &policy,
        now,
        &[],
        json!({"action": "restore", "database": "incident-db", "snapshot": "latest",
            "target": "lbrestore-inc481", "expires_in": "24h", "plan": true}),
    )
    .await;
    assert!(report.dry_run);
    let plan = report.plan.clone().expect("the plan");
    assert_eq!(plan.database, "incident-db");
    assert_eq!(plan.kind, lifeboat::model::DatabaseKind::Instance);
    assert_eq!(plan.region, "sa-east-1");
    assert_eq!(
        plan.source,
        Source::Snapshot {
            identifier: SNAPSHOT.into(),
            arn: format!("arn:aws:rds:sa-east-1:123456789012:snapshot:{SNAPSHOT}"),
            time: at(SNAPSHOT_TIME),
        },
        "`latest`: the newest snapshot"
    );
    assert_eq!(plan.target, "lbrestore-inc481");
    assert_eq!((plan.age_seconds, plan.gap_seconds), (7 * 3600, 0));
    assert_eq!(plan.instance_class, "db.t3.micro", "as large as the source");
    assert_eq!(
        (plan.subnet_group.as_str(), plan.security_groups.as_slice()),
        ("lifeboat-restores", &["sg-0restores".to_string()][..])
    );
    assert_eq!(
        (
            plan.parameter_group.as_deref(),
            plan.option_group.as_deref()
        ),
        (None, None),
        "the source's groups are RDS's defaults: left to RDS"
    );
    assert_eq!(
        plan.expected_restore_seconds,
        Some(1800),
        "the slowest of the recent drills"
    );
    assert!(
        plan.restorable_window.is_some(),
        "the source's point-in-time window is shown"
    );
    assert_eq!(plan.expires_at, at("2026-11-23T09:00:00Z"));
    assert_eq!(plan.plan, "production");
    let json = serde_json::to_value(&report).expect("report JSON");
    assert_eq!(json["plan"]["source"]["type"], "snapshot");
    assert_eq!(json["plan"]["expected_restore_seconds"], 1800);

    assert!(
        report.restores.is_empty() && report.results.is_empty(),
        "{report:#?}"
    );
    assert!(sandbox.databases_named("lbrestore-").await.is_empty());
    assert_eq!(
        sandbox.ledger_objects().await.len(),
        ledger_before,
        "no ledger write"
    );
    assert!(
        sandbox
            .secret("lifeboat/restore/lbrestore-inc481")
            .await
            .is_none()
    );
    assert!(sandbox.notifications().await.is_empty());
}

#[tokio::test]
async fn an_expiring_restore_is_announced_kept_then_snapshotted_and_deleted() {
    let database = seed_postgres(10, at(SNAPSHOT_TIME) - Duration::minutes(5)).await;
    let policy = policy(&database);
    let sandbox = fleet("ca-central-1", &policy).await;
    let target = "lbrestore-inc481";
    let final_snapshot = "lifeboat-lbrestore-inc481-202611220900-final";
    let secret = format!("lifeboat/restore/{target}");
    let advance = json!({"action": "restore"});
    let mut request = restore_request(SNAPSHOT);
    request["target"] = json!(target);
    run(&sandbox, &policy, at("2026-11-22T09:00:00Z"), &[], request).await;
    let ready = run(
        &sandbox,
        &policy,
        at("2026-11-22T09:20:00Z"),
        &[],
        advance.clone(),
    )
    .await;
    assert_eq!(ready.restores[0].step, "ready", "{ready:#?}");
    assert_eq!(ready.restores[0].expires_at, "2026-11-24T09:00:00Z");

    // More than a day before its expiry: nothing. Within a day: one notice, once.
    let early = run(
        &sandbox,
        &policy,
        at("2026-11-23T08:59:00Z"),
        &[],
        advance.clone(),
    )
    .await;
    assert_eq!(early.restores[0].step, "ready", "{early:#?}");
    let expiry_notices = || notifications(&sandbox, "Lifeboat restore lbrestore-inc481 expires");
    assert!(expiry_notices().await.is_empty());
    let noticed = run(
        &sandbox,
        &policy,
        at("2026-11-23T09:30:00Z"),
        &[],
        advance.clone(),
    )
    .await;
    assert_eq!(noticed.restores[0].step, "expiry-announced", "{noticed:#?}");
    let notices = expiry_notices().await;
    let [(subject, body)] = &notices[..] else {
        panic!("one expiry notice: {notices:#?}");
    };
    assert_eq!(
        subject,
        "Lifeboat restore lbrestore-inc481 expires 2026-11-24T09:00:00Z"
    );
    assert!(body.contains(final_snapshot), "{body}");
    assert!(body.contains("lifeboat keep lbrestore-inc481"), "{body}");
    let again = run(
        &sandbox,
        &policy,
        at("2026-11-23T10:00:00Z"),
        &[],
        advance.clone(),
    )
    .await;
    assert_eq!(again.restores[0].step, "ready", "{again:#?}");
    assert_eq!(expiry_notices().await.len(), 1, "the notice is sent once");

    // `keep` extends its life and resets the notice.
    let kept = run(
        &sandbox,
        &policy,
        at("2026-11-23T12:00:00Z"),
        &[],
        json!({"action": "restore", "target": target, "keep": true, "expires_in": "72h",
            "requested_by": ALICE}),
    )
    .await;
    let keep = kept
        .results
        .iter()
        .find(|r| r.action == "keep-restore")
        .unwrap_or_else(|| panic!("{kept:#?}"));
    assert_eq!(keep.status, ItemStatus::Done);
    assert_eq!(
        keep.detail.as_deref(),
        Some("kept until 2026-11-26T12:00:00Z (was 2026-11-24T09:00:00Z)")
    );
    let tags = tags_of(&instance(&sandbox.rds, target).await);
    assert_eq!(tags["lifeboat:expires-at"], "2026-11-26T12:00:00Z");
    assert_eq!(
        tags["lifeboat:restore-notified"], "ready",
        "the expiry notice is reset"
    );
    let [keep_record] = &records(&sandbox, "keep-restore").await[..] else {
        panic!("one keep-restore record");
    };
    assert_eq!(keep_record.details["requested_by"], ALICE);
    assert_eq!(keep_record.details["was"], "2026-11-24T09:00:00Z");

    // Past its first expiry it is kept; a day before the new one, a new notice.
    let past = run(
        &sandbox,
        &policy,
        at("2026-11-24T09:30:00Z"),
        &[],
        advance.clone(),
    )
    .await;
    assert_eq!(past.restores[0].step, "ready", "{past:#?}");
    assert!(sandbox.instance_snapshots(target).await.is_empty());
    run(
        &sandbox,
        &policy,
        at("2026-11-25T12:30:00Z"),
        &[],
        advance.clone(),
    )
    .await;
    assert_eq!(expiry_notices().await.len(), 2, "kept, then noticed again");

    // At expiry: the final snapshot first (managed, kept as a manual snapshot, its source the restore).
    let retired = run(
        &sandbox,
        &policy,
        at("2026-11-26T12:00:00Z"),
        &[],
        advance.clone(),
    )
    .await;
    assert_eq!(
        retired.restores[0].step,
        format!("final snapshot {final_snapshot} requested"),
        "{retired:#?}"
    );
    let snapshots = sandbox.instance_snapshots(target).await;
    let tags = snapshots
        .get(final_snapshot)
        .unwrap_or_else(|| panic!("the final snapshot: {snapshots:#?}"));
    for (key, value) in [
        ("lifeboat:managed", "true"),
        ("lifeboat:deployment", "lifeboat"),
        ("lifeboat:tier", "manual"),
        ("lifeboat:source", target),
        ("lifeboat:trigger", "restore-expiry"),
        ("lifeboat:created-at", "2026-11-26T12:00:00Z"),
        ("lifeboat:expires-at", "2027-02-24T12:00:00Z"),
    ] {
        assert_eq!(
            tags.get(key).map(String::as_str),
            Some(value),
            "{key}: {tags:#?}"
        );
    }
    assert!(
        tags["lifeboat:reason"].contains("INC-481 compare bookings"),
        "{tags:#?}"
    );
    assert_eq!(
        sandbox.databases_named("lbrestore-").await,
        [target],
        "not deleted before its final snapshot is available"
    );
    assert!(sandbox.secret(&secret).await.is_some());
    let instance_tags = tags_of(&instance(&sandbox.rds, target).await);
    assert_eq!(instance_tags["lifeboat:restore-phase"], "retiring");
    assert_eq!(
        instance_tags["lifeboat:restore-final-snapshot"],
        final_snapshot
    );

    // The final snapshot is available (at once in moto): the secret, then the database, are deleted.
    let deleted = run(
        &sandbox,
        &policy,
        at("2026-11-26T12:05:00Z"),
        &[],
        advance.clone(),
    )
    .await;
    assert_eq!(deleted.restores[0].step, "deleting", "{deleted:#?}");
    let done = deleted
        .results
        .iter()
        .find(|r| r.action == "delete-restore")
        .unwrap_or_else(|| panic!("{deleted:#?}"));
    assert_eq!(done.status, ItemStatus::Done);
    assert_eq!(
        done.detail.as_deref(),
        Some(
            "lbrestore-inc481 deleted after its final snapshot lifeboat-lbrestore-inc481-202611220900-final"
        )
    );
    assert!(sandbox.databases_named("lbrestore-").await.is_empty());
    assert!(
        sandbox.secret(&secret).await.is_none(),
        "the credentials go with it"
    );
    assert!(
        sandbox
            .instance_snapshots(target)
            .await
            .contains_key(final_snapshot),
        "the final snapshot stays"
    );
    let deletes = records(&sandbox, "delete-restore").await;
    assert!(
        deletes.iter().any(|r| r.phase == Phase::Intent),
        "{deletes:#?}"
    );
    assert!(
        deletes
            .iter()
            .any(|r| r.phase == Phase::Result && r.outcome.as_deref() == Some("ok")),
        "{deletes:#?}"
    );
    let [final_record] = &records(&sandbox, "final-snapshot").await[..] else {
        panic!("one final-snapshot record");
    };
    assert_eq!(final_record.details["snapshot"], final_snapshot);
    let quiet = run(&sandbox, &policy, at("2026-11-26T12:10:00Z"), &[], advance).await;
    assert!(
        quiet.restores.is_empty() && quiet.results.is_empty(),
        "{quiet:#?}"
    );
    // Ready once, the expiry noticed twice (before and after `keep`), retired once, nothing else.
    let sent = sandbox.notifications().await;
    assert_eq!(sent.len(), 4, "{sent:#?}");
    assert_eq!(
        sent[3].0, "Lifeboat restore lbrestore-inc481 expired",
        "{sent:#?}"
    );
    assert!(sent[3].1.contains(final_snapshot), "{}", sent[3].1);
}

#[tokio::test]
async fn bad_requests_are_rejected_saying_what_is_possible_and_nothing_is_made() {
    let (primary, dr, bare) = ("us-east-2", "us-west-1", "eu-south-1");
    let policy = policy("unused").replace(
        "    verification:\n",
        &format!(
            "    verification:\n      regions:\n        {dr}: {{security_groups: [sg-0drrestores]}}\n"
        ),
    );
    let sandbox = fleet(primary, &policy).await;
    sandbox
        .instance_of("lbrestore-taken", "postgres", "lifeboat", &[])
        .await;
    // The handler runs two hours after moto's latest restorable time (the real time).
    let latest = real_now();
    let now = latest + Duration::hours(2);
    let too_late = latest + Duration::hours(1);
    let request = |extra: Value| {
        let mut request = restore_request("latest");
        request.as_object_mut().expect("object").remove("snapshot");
        for (key, value) in extra.as_object().expect("object") {
            if value.is_null() {
                request.as_object_mut().expect("object").remove(key);
            } else {
                request[key] = value.clone();
            }
        }
        request
    };
    let cases: Vec<(Value, Vec<String>)> = vec![
        (
            request(json!({"database": "nope-db"})),
            vec!["no DB instance or cluster named `nope-db` in us-east-2".into()],
        ),
        (
            request(json!({"point_in_time": too_late.to_rfc3339()})),
            vec![
                "is after the latest restorable time".into(),
                "restorable in us-east-2: point in time up to ".into(),
                "1 snapshot(s) of this deployment, the newest from 2026-11-22T02:00:00Z".into(),
            ],
        ),
        (
            request(json!({"point_in_time": (now + Duration::hours(1)).to_rfc3339()})),
            vec!["is in the future".into()],
        ),
        (
            request(json!({"snapshot": "nope"})),
            vec![
                "no snapshot `nope` of `incident-db` in us-east-2".into(),
                "restorable in us-east-2: point in time up to ".into(),
            ],
        ),
        (
            request(json!({"snapshot": SNAPSHOT, "point_in_time": SNAPSHOT_TIME})),
            vec!["give `snapshot` or `point_in_time`, not both".into()],
        ),
        (
            request(json!({"region": dr})),
            vec!["no recovery point of `incident-db` exists in us-west-1".into()],
        ),
        (
            request(json!({"region": bare})),
            vec!["no network for restores in eu-south-1: add `verification.regions.eu-south-1`".into()],
        ),
        (
            request(json!({"region": "eu-west-2"})),
            vec![
                "region `eu-west-2` is neither the primary region (us-east-2) nor a DR region of this \
                 deployment (us-west-1, eu-south-1)"
                    .into(),
            ],
        ),
        (
            request(json!({"target": "lbrestore-taken"})),
            vec![
                "a database named `lbrestore-taken` exists in us-east-2: a restore never replaces one".into(),
            ],
        ),
        (
            request(json!({"target": "incident-db"})),
            vec!["`incident-db` cannot name a restore: it must start with `lbrestore-`".into()],
        ),
        (
            request(json!({"target": "incident-db-restore"})),
            vec!["it must start with `lbrestore-`".into()],
        ),
        (
            request(json!({"reason": null})),
            vec!["a restore needs a `reason`".into()],
        ),
        (
            request(json!({"reason": "  "})),
            vec!["a restore needs a `reason`".into()],
        ),
        (
            request(json!({"requested_by": null})),
            vec!["a restore needs `requested_by`".into()],
        ),
        (
            request(json!({"expires_in": "forever"})),
            vec!["expires_in `forever` is not a duration such as 48h or 3d".into()],
        ),
        (
            request(json!({"expires_in": "90d"})),
            vec!["expires_in must be between 1 minute and 30 days".into()],
        ),
        (
            json!({"action": "restore", "target": "lbrestore-nope", "keep": true}),
            vec![
                "no ad-hoc restore `lbrestore-nope` of this deployment in us-east-2, us-west-1, eu-south-1"
                    .into(),
            ],
        ),
        (
            json!({"action": "restore", "target": "lbrestore-taken", "keep": true}),
            vec!["no ad-hoc restore `lbrestore-taken` of this deployment".into()],
        ),
        (
            json!({"action": "restore", "database": "incident-db", "keep": true}),
            vec!["`keep` extends an existing restore: give its `target`".into()],
        ),
        (
            json!({"action": "restore", "snapshot": SNAPSHOT}),
            vec!["name the `database` to restore".into()],
        ),
        (
            request(json!({"databse": "incident-db"})),
            vec!["unknown field `databse`".into()],
        ),
        (
            event("restore/malformed.json"),
            vec!["`RDS DB Instance Event` event has no detail.EventID".into()],
        ),
        (
            json!({"action": "drill"}),
            vec!["unknown action `drill`".into(), "restore".into()],
        ),
    ];
    for (payload, expected) in cases {
        let err = invoke(&sandbox, &policy, now, &[dr, bare], payload.clone())
            .await
            .expect_err("must be rejected");
        assert_eq!(
            err.error_type(),
            "Lifeboat.InvalidInput",
            "{payload}: {err}"
        );
        let message = err.to_string();
        for part in expected {
            assert!(
                message.contains(&part),
                "{payload}:\n{message}\nlacks: {part}"
            );
        }
    }
    assert_eq!(
        sandbox.databases_named("lbrestore-").await,
        ["lbrestore-taken"],
        "nothing restored"
    );
    let dr_rds = aws_sdk_rds::Client::new(
        &lifeboat_integration_tests::sdk_config_at(&sandbox.endpoint, dr).await,
    );
    // Other test files share the emulator's regions: only restores count.
    assert!(
        dr_rds
            .describe_db_instances()
            .send()
            .await
            .expect("DR instances")
            .db_instances()
            .iter()
            .all(|db| !db
                .db_instance_identifier()
                .unwrap_or_default()
                .starts_with("lbrestore-"))
    );
    assert!(
        sandbox
            .ledger_records()
            .await
            .iter()
            .all(|r| r.function != "restore"),
        "nothing recorded"
    );
    assert!(sandbox.notifications().await.is_empty());

    // The same request with a time inside the window is accepted.
    let accepted = run(
        &sandbox,
        &policy,
        now,
        &[dr, bare],
        request(
            json!({"point_in_time": (latest - Duration::minutes(1)).to_rfc3339(), "plan": true}),
        ),
    )
    .await;
    assert_eq!(
        accepted.plan.map(|p| p.source),
        Some(Source::PointInTime {
            time: latest - Duration::minutes(1)
        })
    );
}
