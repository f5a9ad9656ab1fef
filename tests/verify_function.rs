//! The real verify handler against moto server, with the temporary instances' endpoints mapped (test-only
//! override) to the real PostgreSQL and MariaDB servers on this machine, which the tests seed: a passing drill end
//! to end, a failing row count, a stale freshness check, an unreachable database (drill infrastructure: retried,
//! then given up without blaming the snapshot), a crash between steps followed by a run that converges, a drill
//! secret that cannot be deleted (the drill database waits for it: a fault proxy fails the deletion), an Aurora
//! drill whose restore answer was lost and whose instance could not be created (the next run asks for it), the
//! policy's limit on drills in progress (a second drill waits for the first), a drill in a DR region (the copy
//! there, made by the real copy function with the DR key, restored with that region's subnet group and security
//! groups, its result recorded on the copy), an expired orphan swept (and alerted), and bad input.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use lifeboat::ledger::Phase;
use lifeboat::report::ItemStatus;
use lifeboat_integration_tests::faults::{FaultConfig, FaultKind, FaultProxy, FaultRule};
use lifeboat_integration_tests::{
    RAISED_QUOTA_ENDPOINT_VAR, Sandbox, adapter, context, endpoint, event, sdk_config_at,
    seed_postgres, unique,
};
use lifeboat_verify::VerifyReport;
use serde_json::json;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("timestamp")
}

/// The snapshot time of the history all tests build (the sample schedule event).
const SNAPSHOT_TIME: &str = "2026-11-22T02:00:00Z";

fn policy(database: &str) -> String {
    format!(
        r#"
version: 1
name: verify-test
plans:
  - name: production
    select: {{tags: {{"lifeboat:backup": "true"}}}}
    retention: {{keep_daily: 30}}
    verification:
      every: 7d
      instance_class: db.t3.micro
      subnet_group: lifeboat-drills
      security_groups: [sg-0drills]
      database_name: {database}
      checks:
        - {{kind: tables_present, tables: [bookings]}}
        - {{kind: min_rows, table: bookings, at_least: 3}}
        - {{kind: freshness, table: bookings, column: created_at, tolerance: 24h}}
        - {{kind: sql, name: no-unpaid-bookings, query: "select count(*) from bookings where paid = false", equals: "0"}}
    objectives: {{rpo: 1h, rto: 4h}}
"#
    )
}

/// Run the verify function "as of" `now`; `postgres_port` points PostgreSQL drills elsewhere.
async fn run(
    sandbox: &Sandbox,
    policy: &str,
    now: &str,
    port: u16,
    payload: serde_json::Value,
) -> VerifyReport {
    sandbox
        .verify_function(policy, at(now), port)
        .handle(payload, &context(&format!("verify-{now}")))
        .await
        .expect("verify run")
}

fn restored_event() -> serde_json::Value {
    event("verify/instance-restored.json")
}

const SELECTED: [(&str, &str); 1] = [("lifeboat:backup", "true")];

#[tokio::test]
async fn a_passing_drill_end_to_end_leaves_nothing_behind() {
    let database = seed_postgres(10, at(SNAPSHOT_TIME) - Duration::minutes(5)).await;
    let policy = policy(&database);
    let sandbox = Sandbox::new("ap-northeast-3").await;
    sandbox.drill_subnet_group("lifeboat-drills").await;
    sandbox
        .instance_of("booking-db", "postgres", "lifeboat", &SELECTED)
        .await;
    sandbox.snapshot_history(&policy, [at(SNAPSHOT_TIME)]).await;
    let schedule = event("verify/scheduled.json");

    // 03:00 the schedule starts the drill: a private temporary instance restored from the newest snapshot.
    let started = run(
        &sandbox,
        &policy,
        "2026-11-22T03:00:00Z",
        5432,
        schedule.clone(),
    )
    .await;
    assert_eq!(started.results.len(), 1, "{started:#?}");
    assert_eq!(
        (
            started.results[0].action.as_str(),
            started.results[0].status
        ),
        ("start-drill", ItemStatus::Done),
        "{started:#?}"
    );
    let drill_id = started.results[0].resource.clone().expect("drill id");
    assert_eq!(
        sandbox.databases_named("lbdrill-").await,
        std::slice::from_ref(&drill_id)
    );
    let drill = sandbox
        .rds
        .describe_db_instances()
        .db_instance_identifier(&drill_id)
        .send()
        .await
        .expect("drill");
    let instance = &drill.db_instances()[0];
    assert_ne!(
        instance.publicly_accessible(),
        Some(true),
        "drill instances are private"
    );
    let tags: Vec<(&str, &str)> = instance
        .tag_list()
        .iter()
        .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
        .collect();
    assert!(tags.contains(&("lifeboat:drill", drill_id.as_str())));
    assert!(tags.contains(&(
        "lifeboat:drill-snapshot",
        "lifeboat-booking-db-2026-11-22-0200"
    )));
    assert!(
        tags.iter()
            .any(|(k, v)| *k == "lifeboat:expires-at" && v.starts_with("2026-11-22T09:00"))
    );

    // 03:20 "restored from snapshot": drill-only credentials, in a secret of the drill's own.
    let secured = run(
        &sandbox,
        &policy,
        "2026-11-22T03:20:00Z",
        5432,
        restored_event(),
    )
    .await;
    assert_eq!(secured.drills[0].step, "credentials-set");
    let secret = sandbox.secret(&format!("lifeboat/drill/{drill_id}")).await;
    assert!(
        secret.as_ref().is_some_and(|s| s.len() >= 32),
        "a drill-only password exists"
    );

    // 03:25 the checks run against the real database, the result is recorded and everything is deleted.
    let checked = run(
        &sandbox,
        &policy,
        "2026-11-22T03:25:00Z",
        5432,
        schedule.clone(),
    )
    .await;
    let report = &checked.drills[0];
    assert_eq!(report.passed, Some(true), "{report:#?}");
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "connectivity",
            "tables_present",
            "min_rows:bookings",
            "freshness:bookings.created_at",
            "no-unpaid-bookings"
        ]
    );
    assert_eq!(
        (
            report.restore_seconds,
            report.drill_seconds,
            report.rto_seconds
        ),
        (Some(1200), Some(1500), Some(14_400))
    );
    assert_eq!(
        report.step, "deleting",
        "deletion requested (moto deletes at once)"
    );
    assert!(
        sandbox.databases_named("lbdrill-").await.is_empty(),
        "no temporary instance left"
    );
    assert!(
        sandbox
            .secret(&format!("lifeboat/drill/{drill_id}"))
            .await
            .is_none(),
        "no drill credentials left"
    );

    let snapshots = sandbox.instance_snapshots("booking-db").await;
    let tags = &snapshots["lifeboat-booking-db-2026-11-22-0200"];
    assert_eq!(tags["lifeboat:verified-at"], "2026-11-22T03:25:00Z");
    assert_eq!(tags["lifeboat:verify-result"], "passed");
    let records: Vec<_> = sandbox
        .ledger_records()
        .await
        .into_iter()
        .filter(|r| r.function == "verify")
        .collect();
    let drill_record = records
        .iter()
        .find(|r| r.action == "restore-drill")
        .expect("drill result in the ledger");
    assert_eq!(drill_record.details["passed"], true);
    assert_eq!(drill_record.details["restore_seconds"], 1200);
    assert_eq!(
        drill_record.details["checks"].as_array().map(Vec::len),
        Some(5)
    );
    let secret_value = secret.unwrap_or_default();
    for record in &records {
        assert!(
            !serde_json::to_string(record)
                .unwrap()
                .contains(&secret_value),
            "credentials never reach the ledger"
        );
    }
    assert!(
        records
            .iter()
            .any(|r| r.action == "delete-drill" && r.phase == Phase::Intent)
    );
    assert!(
        records
            .iter()
            .any(|r| r.action == "delete-drill" && r.phase == Phase::Result)
    );
    assert!(
        sandbox.notifications().await.is_empty(),
        "a passing drill alerts nobody"
    );

    // Verified at 03:25: the next day's schedule starts nothing.
    let next_day = run(&sandbox, &policy, "2026-11-23T03:00:00Z", 5432, schedule).await;
    assert!(next_day.results.is_empty(), "{next_day:#?}");
}

/// The policy's `drills.max_in_progress` holds across runs: with a limit of one, the second database's drill waits
/// (and is reported waiting) while the first is in progress, and starts once the first is cleaned up.
#[tokio::test]
async fn drills_beyond_the_limit_wait_for_a_place() {
    let database = seed_postgres(10, at(SNAPSHOT_TIME) - Duration::minutes(5)).await;
    let policy = policy(&database).replacen(
        "name: verify-test\n",
        "name: verify-test\ndrills: {max_in_progress: 1}\n",
        1,
    );
    let region = "af-south-1";
    let sandbox = Sandbox::new(region).await;
    sandbox.drill_subnet_group("lifeboat-drills").await;
    for name in ["booking-db", "ledger-db"] {
        sandbox
            .instance_of(name, "postgres", "lifeboat", &SELECTED)
            .await;
    }
    sandbox.snapshot_history(&policy, [at(SNAPSHOT_TIME)]).await;
    let schedule = event("verify/scheduled.json");
    let started = |report: &VerifyReport| -> Vec<String> {
        report
            .results
            .iter()
            .filter(|r| r.action == "start-drill" && r.status == ItemStatus::Done)
            .map(|r| r.database.clone())
            .collect()
    };
    let waiting = vec![format!("ledger-db in {region}")];

    // Both are due (never verified); one place: the first by name starts, the other waits.
    let first = run(
        &sandbox,
        &policy,
        "2026-11-22T03:00:00Z",
        5432,
        schedule.clone(),
    )
    .await;
    assert_eq!(started(&first), ["booking-db"], "{first:#?}");
    assert_eq!(first.waiting, waiting);
    assert_eq!(sandbox.databases_named("lbdrill-").await.len(), 1);

    // While it is in progress, nothing more starts.
    let later = run(
        &sandbox,
        &policy,
        "2026-11-22T03:10:00Z",
        5432,
        schedule.clone(),
    )
    .await;
    assert!(started(&later).is_empty(), "{later:#?}");
    assert_eq!(later.waiting, waiting);

    // The first drill passes its checks and is deleted; the run after it is gone starts the second.
    let checked = run(
        &sandbox,
        &policy,
        "2026-11-22T03:20:00Z",
        5432,
        restored_event(),
    )
    .await;
    assert_eq!(checked.drills[0].database, "booking-db");
    assert_eq!(checked.drills[0].passed, Some(true), "{checked:#?}");
    assert!(
        started(&checked).is_empty(),
        "drills start on the schedule only"
    );
    let next = run(&sandbox, &policy, "2026-11-22T03:25:00Z", 5432, schedule).await;
    assert_eq!(started(&next), ["ledger-db"], "{next:#?}");
    assert!(next.waiting.is_empty(), "{next:#?}");
    assert!(
        sandbox.notifications().await.is_empty(),
        "waiting is not a failure"
    );
}

#[tokio::test]
async fn a_failing_row_count_on_mariadb_is_alerted_with_expected_and_actual() {
    // MariaDB: the drill user must exist with the drill password, as RDS would apply it.
    let name = unique("lifeboat_drill").replace('-', "_");
    let user = unique("drill").replace('-', "_");
    let pool = mysql_async::Pool::new("mysql://root@127.0.0.1:3306/");
    let mut conn = pool
        .get_conn()
        .await
        .expect("the local MariaDB server (127.0.0.1:3306) must be running");
    use mysql_async::prelude::Queryable;
    conn.query_drop(format!(
        "CREATE DATABASE {name}; CREATE TABLE {name}.bookings (id int PRIMARY KEY, created_at datetime NOT NULL, paid bool NOT NULL DEFAULT true);
         INSERT INTO {name}.bookings VALUES (1, '2026-11-22 01:55:00', true);"
    ))
    .await
    .expect("seed MariaDB");
    let policy = policy(&name);
    let sandbox = Sandbox::new("ap-southeast-3").await;
    sandbox.drill_subnet_group("lifeboat-drills").await;
    // Engine `mysql` (moto has no defaults for `mariadb`; the checks treat the MySQL family alike).
    sandbox
        .instance_of("orders-db", "mysql", &user, &SELECTED)
        .await;
    sandbox.snapshot_history(&policy, [at(SNAPSHOT_TIME)]).await;
    run(
        &sandbox,
        &policy,
        "2026-11-22T03:00:00Z",
        5432,
        event("verify/scheduled.json"),
    )
    .await;
    let secured = run(
        &sandbox,
        &policy,
        "2026-11-22T03:20:00Z",
        5432,
        restored_event(),
    )
    .await;
    let drill_id = secured.drills[0].drill.clone();
    let password = sandbox
        .secret(&format!("lifeboat/drill/{drill_id}"))
        .await
        .expect("drill password");
    conn.query_drop(format!(
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'; GRANT SELECT ON {name}.* TO '{user}'@'%';"
    ))
    .await
    .expect("apply the drill credentials");

    let checked = run(
        &sandbox,
        &policy,
        "2026-11-22T03:25:00Z",
        5432,
        event("verify/scheduled.json"),
    )
    .await;
    let report = &checked.drills[0];
    assert_eq!(report.passed, Some(false));
    let rows = report
        .checks
        .iter()
        .find(|c| c.name == "min_rows:bookings")
        .expect("row check");
    assert!(!rows.passed);
    assert_eq!(
        (rows.expected.as_str(), rows.actual.as_str()),
        (">= 3", "1")
    );
    assert!(
        report
            .checks
            .iter()
            .find(|c| c.name == "connectivity")
            .is_some_and(|c| c.passed)
    );
    let snapshots = sandbox.instance_snapshots("orders-db").await;
    let tags = &snapshots["lifeboat-orders-db-2026-11-22-0200"];
    assert_eq!(tags["lifeboat:verify-result"], "failed");
    assert!(
        !tags.contains_key("lifeboat:verified-at"),
        "a failed drill verifies nothing"
    );
    assert!(
        sandbox.databases_named("lbdrill-").await.is_empty(),
        "cleaned up after a failure too"
    );

    let notifications = sandbox.notifications().await;
    assert_eq!(notifications.len(), 1);
    let (subject, body) = &notifications[0];
    assert_eq!(
        subject,
        "Lifeboat verify in ap-southeast-3: 1 failed of 1 item(s)"
    );
    assert!(
        body.contains("FAILED: instance orders-db in ap-southeast-3"),
        "{body}"
    );
    assert!(
        body.contains("snapshot lifeboat-orders-db-2026-11-22-0200 failed its restore drill"),
        "{body}"
    );
    assert!(
        body.contains("min_rows:bookings: expected >= 3, actual 1"),
        "{body}"
    );
    assert!(
        !body.contains(&password),
        "credentials never reach the alert"
    );
    conn.query_drop(format!("DROP DATABASE {name}; DROP USER '{user}'@'%';"))
        .await
        .expect("clean up MariaDB");
}

#[tokio::test]
async fn stale_data_fails_the_freshness_check() {
    let database = seed_postgres(10, at(SNAPSHOT_TIME) - Duration::days(3)).await;
    let policy = policy(&database);
    let sandbox = Sandbox::new("ap-southeast-4").await;
    sandbox.drill_subnet_group("lifeboat-drills").await;
    sandbox
        .instance_of("booking-db", "postgres", "lifeboat", &SELECTED)
        .await;
    sandbox.snapshot_history(&policy, [at(SNAPSHOT_TIME)]).await;
    for now in ["2026-11-22T03:00:00Z", "2026-11-22T03:20:00Z"] {
        run(&sandbox, &policy, now, 5432, event("verify/scheduled.json")).await;
    }
    let checked = run(
        &sandbox,
        &policy,
        "2026-11-22T03:25:00Z",
        5432,
        event("verify/scheduled.json"),
    )
    .await;
    let fresh = checked.drills[0]
        .checks
        .iter()
        .find(|c| c.name == "freshness:bookings.created_at");
    let fresh = fresh.unwrap_or_else(|| panic!("{checked:#?}"));
    assert!(!fresh.passed, "{fresh:?}");
    assert_eq!(fresh.expected, ">= 2026-11-21T02:00:00Z");
    assert!(fresh.actual.starts_with("2026-11-19T02:00:00"), "{fresh:?}");
    assert_eq!(checked.counts.failed, 1);
}

#[tokio::test]
async fn an_unreachable_database_is_drill_infrastructure_retried_then_given_up_never_blamed_on_the_snapshot()
 {
    let database = seed_postgres(5, at(SNAPSHOT_TIME)).await;
    let policy = policy(&database);
    let sandbox = Sandbox::new("me-central-1").await;
    sandbox.drill_subnet_group("lifeboat-drills").await;
    sandbox
        .instance_of("booking-db", "postgres", "lifeboat", &SELECTED)
        .await;
    sandbox.snapshot_history(&policy, [at(SNAPSHOT_TIME)]).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        listener.local_addr().expect("addr").port()
    };
    for now in ["2026-11-22T03:00:00Z", "2026-11-22T03:20:00Z"] {
        run(
            &sandbox,
            &policy,
            now,
            closed,
            event("verify/scheduled.json"),
        )
        .await;
    }
    // Attempts 1 and 2: connection refused is the drill's infrastructure (security groups, routes), not the
    // recovery point. The drill database is kept and the checks are retried by the next runs.
    for (attempt, now) in [(1, "2026-11-22T03:25:00Z"), (2, "2026-11-22T03:55:00Z")] {
        let checked = run(
            &sandbox,
            &policy,
            now,
            closed,
            event("verify/scheduled.json"),
        )
        .await;
        let drill = &checked.drills[0];
        let checks = &drill.checks;
        assert!(
            !checks[0].passed && checks[0].name == "connectivity",
            "{checks:?}"
        );
        assert!(
            checks[1..]
                .iter()
                .all(|c| !c.passed && c.actual == "not run: no connection"),
            "{checks:?}"
        );
        assert_eq!(
            (drill.step.as_str(), drill.attempt, drill.passed),
            ("checks-retried", Some(attempt), None),
            "{checked:#?}"
        );
        assert_eq!(
            drill.failure_class,
            Some(lifeboat::restore::FailureClass::Infrastructure)
        );
        assert_eq!(checked.results[0].status, ItemStatus::Skipped);
        assert!(
            checked.results[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.starts_with("drill infrastructure")),
            "{checked:#?}"
        );
        assert_eq!(sandbox.databases_named("lbdrill-").await.len(), 1);
        let snapshots = sandbox.instance_snapshots("booking-db").await;
        assert!(
            !snapshots["lifeboat-booking-db-2026-11-22-0200"]
                .contains_key("lifeboat:verify-result"),
            "an infrastructure failure never marks the recovery point"
        );
    }
    // Attempt 3: given up, alerted as drill infrastructure, the snapshot left inconclusive (never `failed`).
    let gave_up = run(
        &sandbox,
        &policy,
        "2026-11-22T04:25:00Z",
        closed,
        event("verify/scheduled.json"),
    )
    .await;
    assert_eq!(gave_up.drills[0].attempt, Some(3), "{gave_up:#?}");
    let failed: Vec<_> = gave_up
        .results
        .iter()
        .filter(|r| r.status == ItemStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{gave_up:#?}");
    assert!(failed[0].detail.as_deref().is_some_and(
        |d| d.contains("drill infrastructure") && d.contains("gave up after 3 attempts")
    ));
    let snapshots = sandbox.instance_snapshots("booking-db").await;
    let tags = &snapshots["lifeboat-booking-db-2026-11-22-0200"];
    assert_eq!(tags["lifeboat:verify-result"], "inconclusive");
    assert!(!tags.contains_key("lifeboat:verified-at"));
    assert!(sandbox.databases_named("lbdrill-").await.is_empty());
    let notifications = sandbox.notifications().await;
    assert!(
        notifications
            .iter()
            .all(|(_, body)| body.contains("drill infrastructure")
                && !body.contains("failed its restore drill")),
        "{notifications:#?}"
    );
    // The same recovery point is not drilled again; the next one will be.
    let next = run(
        &sandbox,
        &policy,
        "2026-11-22T04:55:00Z",
        closed,
        event("verify/scheduled.json"),
    )
    .await;
    assert!(
        next.results.iter().all(|r| r.action != "start-drill"),
        "{next:#?}"
    );
}

#[tokio::test]
async fn a_crash_between_steps_converges_on_the_next_run() {
    let database = seed_postgres(5, at(SNAPSHOT_TIME)).await;
    let policy = policy(&database);
    let sandbox = Sandbox::new("eu-south-2").await;
    sandbox.drill_subnet_group("lifeboat-drills").await;
    sandbox
        .instance_of("booking-db", "postgres", "lifeboat", &SELECTED)
        .await;
    sandbox.snapshot_history(&policy, [at(SNAPSHOT_TIME)]).await;
    let started = run(
        &sandbox,
        &policy,
        "2026-11-22T03:00:00Z",
        5432,
        event("verify/scheduled.json"),
    )
    .await;
    let drill_id = started.results[0].resource.clone().expect("drill");

    // A run crashed after creating the drill's secret but before recording its phase.
    sandbox
        .create_secret(
            &format!("lifeboat/drill/{drill_id}"),
            "left-by-a-crashed-run-0123456789abcdef",
        )
        .await;

    // The same schedule delivered again: the drill is not started twice, and the crashed step is redone with
    // the secret the crashed run left.
    let secured = run(
        &sandbox,
        &policy,
        "2026-11-22T03:00:30Z",
        5432,
        event("verify/scheduled.json"),
    )
    .await;
    assert!(
        secured.results.iter().all(|r| r.action != "start-drill"),
        "{secured:#?}"
    );
    assert_eq!(sandbox.databases_named("lbdrill-").await.len(), 1);
    assert_eq!(secured.drills[0].step, "credentials-set");
    assert_eq!(
        sandbox
            .secret(&format!("lifeboat/drill/{drill_id}"))
            .await
            .as_deref(),
        Some("left-by-a-crashed-run-0123456789abcdef")
    );
    let checked = run(
        &sandbox,
        &policy,
        "2026-11-22T03:25:00Z",
        5432,
        event("verify/scheduled.json"),
    )
    .await;
    assert_eq!(checked.drills[0].passed, Some(true));
    assert!(sandbox.databases_named("lbdrill-").await.is_empty());
    assert!(
        sandbox
            .secret(&format!("lifeboat/drill/{drill_id}"))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn expired_orphans_are_swept_and_nothing_else_is_touched() {
    let policy = policy("unused");
    let sandbox = Sandbox::new("ca-west-1").await;
    // A drill instance left by a crash hours ago, and a production instance that merely looks like one.
    sandbox
        .instance_of(
            "lbdrill-orphan-0badc0de",
            "postgres",
            "lifeboat",
            &[
                ("lifeboat:managed", "true"),
                ("lifeboat:deployment", "lifeboat"),
                ("lifeboat:home-region", "ca-west-1"),
                ("lifeboat:drill", "lbdrill-orphan-0badc0de"),
                ("lifeboat:source", "booking-db"),
                ("lifeboat:drill-phase", "restoring"),
                ("lifeboat:expires-at", "2026-11-22T01:00:00Z"),
            ],
        )
        .await;
    sandbox
        .instance_of("lbdrill-lookalike", "postgres", "lifeboat", &[])
        .await;
    // Another deployment's expired drill in the same region: its own sweeper's business, never this one's.
    sandbox
        .instance_of(
            "lbdrill-theirs-0badf00d",
            "postgres",
            "lifeboat",
            &[
                ("lifeboat:managed", "true"),
                ("lifeboat:deployment", "lifeboat-other"),
                ("lifeboat:home-region", "ca-west-1"),
                ("lifeboat:drill", "lbdrill-theirs-0badf00d"),
                ("lifeboat:source", "booking-db"),
                ("lifeboat:drill-phase", "restoring"),
                ("lifeboat:expires-at", "2026-11-22T01:00:00Z"),
            ],
        )
        .await;
    let report = run(
        &sandbox,
        &policy,
        "2026-11-22T03:00:00Z",
        5432,
        event("verify/scheduled.json"),
    )
    .await;
    let swept: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.action == "sweep-drill")
        .collect();
    assert_eq!(swept.len(), 1, "{report:#?}");
    assert_eq!(
        swept[0].resource.as_deref(),
        Some("lbdrill-orphan-0badc0de")
    );
    assert_eq!(
        swept[0].status,
        ItemStatus::Failed,
        "a drill swept before it finished alerts"
    );
    assert!(
        swept[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("in phase `restoring`")),
        "{swept:?}"
    );
    assert_eq!(
        sandbox.databases_named("lbdrill-").await,
        ["lbdrill-lookalike", "lbdrill-theirs-0badf00d"],
        "only this deployment's tagged drills are touched"
    );
}

#[tokio::test]
async fn bad_input_is_rejected_and_nothing_is_restored() {
    let policy = policy("unused");
    let sandbox = Sandbox::new("us-west-2").await;
    sandbox.drill_subnet_group("lifeboat-drills").await;
    sandbox
        .instance_of("booking-db", "postgres", "lifeboat", &SELECTED)
        .await;
    sandbox
        .instance_of("scratch-db", "postgres", "lifeboat", &[])
        .await;
    sandbox.snapshot_history(&policy, [at(SNAPSHOT_TIME)]).await;
    let function = sandbox.verify_function(&policy, at("2026-11-22T03:00:00Z"), 5432);
    let cases = [
        (
            event("verify/malformed.json"),
            "`RDS DB Instance Event` event has no detail.EventID",
        ),
        (
            json!({"action": "drill"}),
            "unknown action `drill`; this function performs: verify",
        ),
        (
            json!({"action": "verify", "database": "nope-db"}),
            "no DB instance or cluster named `nope-db`",
        ),
        (
            json!({"action": "verify", "database": "scratch-db"}),
            "gives `scratch-db` a `verification` section",
        ),
        (
            json!({"action": "verify", "database": "booking-db", "snapshot": "nope"}),
            "no available snapshot `nope` of `booking-db`",
        ),
        (
            json!({"action": "verify", "database": "booking-db", "region": "eu-west-1"}),
            "region `eu-west-1` is neither",
        ),
        (
            json!({"action": "verify", "snapshot": "latest"}),
            "`snapshot` and `region` need `database`",
        ),
        (
            json!({"action": "verify", "databse": "booking-db"}),
            "unknown field `databse`",
        ),
    ];
    for (payload, expected) in cases {
        let err = function
            .handle(payload.clone(), &context("bad"))
            .await
            .expect_err("must be rejected");
        assert_eq!(err.error_type(), "Lifeboat.InvalidInput", "{payload}");
        assert!(err.to_string().contains(expected), "{payload}: {err}");
    }
    assert!(sandbox.databases_named("lbdrill-").await.is_empty());

    // A valid manual request starts a drill at once, from the named snapshot.
    let manual = function
        .handle(event("verify/manual.json"), &context("manual"))
        .await
        .expect("manual drill");
    assert_eq!(manual.results[0].action, "start-drill");
    assert_eq!(
        manual.drills[0].snapshot,
        "lifeboat-booking-db-2026-11-22-0200"
    );
}

#[tokio::test]
async fn a_drill_secret_that_cannot_be_deleted_keeps_its_drill_until_both_are_gone() {
    // Through a proxy that fails every DeleteSecret while it is active (on the raised-quota emulator, whose region
    // this is only, when it runs).
    let database = seed_postgres(5, at(SNAPSHOT_TIME)).await;
    let policy = policy(&database);
    let upstream = std::env::var(RAISED_QUOTA_ENDPOINT_VAR).unwrap_or_else(|_| endpoint());
    let mut faults = FaultConfig::none();
    faults.rules = vec![FaultRule {
        operation: "DeleteSecret".into(),
        kind: FaultKind::ServerError,
        probability: 1.0,
    }];
    let proxy = FaultProxy::start(&upstream, faults).await;
    let sandbox = Sandbox::named_at(
        proxy.endpoint(),
        "il-central-1",
        &unique("ledger"),
        &unique("alerts"),
    )
    .await;
    sandbox.drill_subnet_group("lifeboat-drills").await;
    sandbox
        .instance_of("booking-db", "postgres", "lifeboat", &SELECTED)
        .await;
    sandbox.snapshot_history(&policy, [at(SNAPSHOT_TIME)]).await;
    let started = run(
        &sandbox,
        &policy,
        "2026-11-22T03:00:00Z",
        5432,
        event("verify/scheduled.json"),
    )
    .await;
    let drill_id = started.results[0].resource.clone().expect("drill");
    let secret_name = format!("lifeboat/drill/{drill_id}");
    run(
        &sandbox,
        &policy,
        "2026-11-22T03:20:00Z",
        5432,
        restored_event(),
    )
    .await;

    // The checks pass and are recorded, but the drill's secret cannot be deleted: the drill database is kept (were
    // it deleted, no later run would find a drill whose secret to delete) and the failure is reported.
    proxy.set_active(true);
    let checked = run(
        &sandbox,
        &policy,
        "2026-11-22T03:25:00Z",
        5432,
        event("verify/scheduled.json"),
    )
    .await;
    proxy.set_active(false);
    assert_eq!(checked.drills[0].passed, Some(true), "{checked:#?}");
    let failed: Vec<_> = checked
        .results
        .iter()
        .filter(|r| r.status == ItemStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{checked:#?}");
    assert!(
        failed[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("secretsmanager:DeleteSecret")),
        "{failed:?}"
    );
    assert_eq!(
        sandbox.databases_named(&drill_id).await,
        std::slice::from_ref(&drill_id),
        "the drill database waits for its secret"
    );
    assert!(sandbox.secret(&secret_name).await.is_some());
    let snapshots = sandbox.instance_snapshots("booking-db").await;
    assert_eq!(
        snapshots["lifeboat-booking-db-2026-11-22-0200"]["lifeboat:verify-result"],
        "passed"
    );

    // The next run finishes the clean-up, without running the checks again.
    let cleaned = run(
        &sandbox,
        &policy,
        "2026-11-22T03:55:00Z",
        5432,
        event("verify/scheduled.json"),
    )
    .await;
    assert_eq!(cleaned.counts.failed, 0, "{cleaned:#?}");
    assert!(cleaned.drills[0].checks.is_empty(), "{cleaned:#?}");
    assert!(sandbox.databases_named(&drill_id).await.is_empty());
    assert!(
        sandbox.secret(&secret_name).await.is_none(),
        "no drill credentials left"
    );
    let drill_results = sandbox
        .ledger_records()
        .await
        .into_iter()
        .filter(|r| r.action == "restore-drill" && r.phase == Phase::Result)
        .count();
    assert_eq!(drill_results, 1, "the result is recorded once");
}

#[tokio::test]
async fn a_dr_region_drill_restores_the_copy_there_with_that_regions_network_and_key() {
    // On the raised-quota emulator, whose regions these are only, when it runs.
    let (primary, dr) = ("eu-central-2", "me-south-1");
    let upstream = std::env::var(RAISED_QUOTA_ENDPOINT_VAR).unwrap_or_else(|_| endpoint());
    let database = seed_postgres(10, at(SNAPSHOT_TIME) - Duration::minutes(5)).await;
    let policy = policy(&database).replace(
        "    verification:\n",
        &format!(
            "    copies:\n      - {{region: {dr}, kms_key_id: alias/lifeboat-dr, retain_days: 14}}\n    \
             verification:\n      regions:\n        {dr}: {{subnet_group: lifeboat-dr-drills, \
             security_groups: [sg-0drdrills], every: 30d}}\n"
        ),
    );
    let sandbox = Sandbox::named_at(&upstream, primary, &unique("ledger"), &unique("alerts")).await;
    let dr_config = sdk_config_at(&upstream, dr).await;
    let dr_rds = aws_sdk_rds::Client::new(&dr_config);
    let dr_kms = aws_sdk_kms::Client::new(&dr_config);
    let dr_key = dr_kms.create_key().send().await.expect("DR key");
    let dr_key = dr_key.key_metadata().expect("DR key metadata");
    dr_kms
        .create_alias()
        .alias_name("alias/lifeboat-dr")
        .target_key_id(dr_key.key_id())
        .send()
        .await
        .expect("DR key alias");
    let primary_key = sandbox.kms_key().await;
    sandbox
        .instance("booking-db", &SELECTED, Some(&primary_key))
        .await;
    sandbox.drill_subnet_group("lifeboat-drills").await;
    let dr_subnets = sandbox
        .drill_subnet_group_in(dr, "lifeboat-dr-drills")
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
    assert!(
        copy.kms_key_id()
            .is_some_and(|k| k.contains(dr_key.key_id())),
        "the copy is encrypted with the DR key: {copy:?}"
    );

    // 03:00: the schedule starts a drill in each region: the DR one from the copy, in that region's network.
    let mut function = sandbox.verify_function(&policy, at("2026-11-22T03:00:00Z"), 5432);
    function.dr_regions = vec![adapter(dr_rds.clone(), dr)];
    let started = function
        .handle(event("verify/scheduled.json"), &context("verify-1"))
        .await
        .expect("verify run");
    let dr_start = started
        .results
        .iter()
        .find(|r| r.action == "start-drill" && r.region == dr)
        .unwrap_or_else(|| panic!("a drill started in {dr}: {started:#?}"));
    assert_eq!(dr_start.status, ItemStatus::Done, "{started:#?}");
    let dr_drill = dr_start.resource.clone().expect("drill id");
    let described = dr_rds
        .describe_db_instances()
        .db_instance_identifier(&dr_drill)
        .send()
        .await
        .expect("the drill database is in the DR region");
    let instance = &described.db_instances()[0];
    let tags: BTreeMap<&str, &str> = instance
        .tag_list()
        .iter()
        .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
        .collect();
    assert_eq!(tags["lifeboat:drill-snapshot"], copy_id);
    assert_eq!(
        tags["lifeboat:drill-snapshot-arn"], copy_arn,
        "restored from the DR copy"
    );
    assert!(
        instance
            .db_instance_arn()
            .is_some_and(|a| a.contains(&format!(":{dr}:"))),
        "{instance:?}"
    );
    let subnet_group = instance.db_subnet_group().expect("subnet group");
    assert_eq!(
        subnet_group.db_subnet_group_name(),
        Some("lifeboat-dr-drills")
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
    let groups: Vec<&str> = instance
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    assert_eq!(groups, ["sg-0drdrills"]);
    assert!(
        instance
            .kms_key_id()
            .is_some_and(|k| k.contains(dr_key.key_id())),
        "the drill database is encrypted with the DR key: {instance:?}"
    );
    assert_ne!(instance.publicly_accessible(), Some(true));

    // 03:20 credentials (their secret in the primary region), 03:25 the checks, the result and the clean-up.
    for (n, now) in ["2026-11-22T03:20:00Z", "2026-11-22T03:25:00Z"]
        .into_iter()
        .enumerate()
    {
        let mut function = sandbox.verify_function(&policy, at(now), 5432);
        function.dr_regions = vec![adapter(dr_rds.clone(), dr)];
        let report = function
            .handle(
                event("verify/scheduled.json"),
                &context(&format!("verify-{n}")),
            )
            .await
            .expect("verify run");
        let drill = report
            .drills
            .iter()
            .find(|d| d.drill == dr_drill)
            .unwrap_or_else(|| panic!("{report:#?}"));
        assert_eq!(drill.region, dr);
        if n == 0 {
            assert_eq!(drill.step, "credentials-set", "{report:#?}");
            assert!(
                sandbox
                    .secret(&format!("lifeboat/drill/{dr_drill}"))
                    .await
                    .is_some()
            );
        } else {
            assert_eq!(drill.passed, Some(true), "{report:#?}");
            assert_eq!(drill.snapshot, copy_id);
            assert_eq!(report.counts.failed, 0, "{report:#?}");
        }
    }

    // The result is recorded on the DR recovery point and in the ledger; nothing is left in either region.
    let copies = dr_rds
        .describe_db_snapshots()
        .db_snapshot_identifier(&copy_id)
        .send()
        .await
        .expect("the copy");
    let copy_tags: BTreeMap<&str, &str> = copies.db_snapshots()[0]
        .tag_list()
        .iter()
        .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
        .collect();
    assert_eq!(copy_tags["lifeboat:verify-result"], "passed");
    assert_eq!(copy_tags["lifeboat:verified-at"], "2026-11-22T03:25:00Z");
    let record = sandbox
        .ledger_records()
        .await
        .into_iter()
        .find(|r| r.action == "restore-drill" && r.phase == Phase::Result && r.resource == dr_drill)
        .expect("the DR drill's result in the ledger");
    assert_eq!(record.region, dr);
    assert_eq!(record.details["snapshot"], copy_arn.as_str());
    assert_eq!(record.details["passed"], true);
    let dr_drills = dr_rds
        .describe_db_instances()
        .send()
        .await
        .expect("DR instances");
    assert!(dr_drills.db_instances().is_empty(), "{dr_drills:?}");
    assert!(sandbox.databases_named("lbdrill-").await.is_empty());
    assert!(
        sandbox
            .secret(&format!("lifeboat/drill/{dr_drill}"))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn an_aurora_drill_whose_restore_answer_was_lost_gets_its_instance_on_the_next_run() {
    // Through a proxy that, while it is active, loses the answer of every RestoreDBClusterFromSnapshot (the cluster
    // is restored all the same; the SDK's retry gets an error) and fails every CreateDBInstance: the start finds
    // its cluster restored, but cannot ask for the cluster's instance.
    let database = seed_postgres(5, at(SNAPSHOT_TIME)).await;
    let policy = policy(&database);
    let upstream = std::env::var(RAISED_QUOTA_ENDPOINT_VAR).unwrap_or_else(|_| endpoint());
    let mut faults = FaultConfig::none();
    faults.rules = vec![
        FaultRule {
            operation: "RestoreDBClusterFromSnapshot".into(),
            kind: FaultKind::LostResponse,
            probability: 1.0,
        },
        FaultRule {
            operation: "CreateDBInstance".into(),
            kind: FaultKind::ServerError,
            probability: 1.0,
        },
    ];
    let proxy = FaultProxy::start(&upstream, faults).await;
    let sandbox = Sandbox::named_at(
        proxy.endpoint(),
        "me-south-1",
        &unique("ledger"),
        &unique("alerts"),
    )
    .await;
    sandbox.drill_subnet_group("lifeboat-drills").await;
    sandbox.aurora_cluster("billing", &SELECTED).await;
    sandbox.snapshot_history(&policy, [at(SNAPSHOT_TIME)]).await;
    proxy.set_active(true);
    let started = run(
        &sandbox,
        &policy,
        "2026-11-22T03:00:00Z",
        5432,
        event("verify/scheduled.json"),
    )
    .await;
    proxy.set_active(false);
    assert!(
        started.results[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("rds:CreateDBInstance")),
        "the restore counts as done, the instance is what failed: {started:#?}"
    );
    assert_eq!(
        (
            started.results[0].action.as_str(),
            started.results[0].status
        ),
        ("start-drill", ItemStatus::Failed),
        "the failure is reported: {started:#?}"
    );
    let drill_id = started.results[0].resource.clone().expect("drill id");
    assert_eq!(
        sandbox.databases_named("lbdrill-").await,
        std::slice::from_ref(&drill_id),
        "the cluster was restored all the same, without its instance"
    );

    // The next run finds the cluster without its instance and asks for it; the drill then goes on as any other.
    let steps = [
        ("2026-11-22T03:30:00Z", "instance-requested"),
        ("2026-11-22T04:00:00Z", "credentials-set"),
        ("2026-11-22T04:30:00Z", "deleting"),
    ];
    for (now, step) in steps {
        let report = run(&sandbox, &policy, now, 5432, event("verify/scheduled.json")).await;
        assert_eq!(report.drills.len(), 1, "{report:#?}");
        assert_eq!(
            (
                report.drills[0].drill.as_str(),
                report.drills[0].step.as_str()
            ),
            (drill_id.as_str(), step),
            "{report:#?}"
        );
        assert_eq!(report.counts.failed, 0, "{report:#?}");
        if step == "instance-requested" {
            assert_eq!(
                sandbox.databases_named("lbdrill-").await,
                [drill_id.clone(), format!("{drill_id}-1")]
            );
        }
        if step == "deleting" {
            assert_eq!(report.drills[0].passed, Some(true), "{report:#?}");
        }
    }
    let snapshots = sandbox.cluster_snapshots("billing").await;
    assert_eq!(
        snapshots["lifeboat-billing-2026-11-22-0200"]["lifeboat:verify-result"],
        "passed"
    );
    assert!(sandbox.databases_named("lbdrill-").await.is_empty());
}
