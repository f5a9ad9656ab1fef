//! The real snapshot handler against moto server: fleets of instances and Aurora clusters, tag and pattern
//! selection, idempotent re-runs, a failing database among healthy ones, a manual pre-deployment snapshot, bad
//! input, and how API calls grow.

use chrono::{DateTime, Utc};
use lifeboat::ledger::Phase;
use lifeboat::report::ItemStatus;
use lifeboat_integration_tests::{CallCounter, Sandbox, context, event};
use serde_json::json;

const POLICY: &str = r#"
version: 1
name: test-policy
manual_snapshots:
  retain_days: 90
plans:
  - name: production
    select:
      tags: {"lifeboat:backup": "true"}
      exclude: ["*-tmp"]
    retention: {keep_daily: 30, keep_weekly: 12, keep_monthly: 12, keep_yearly: 7}
    objectives: {rpo: 1h, rto: 4h}
  - name: analytics
    select:
      patterns: ["analytics-*"]
      kinds: [instance]
    retention: {keep_daily: 7}
    objectives: {rpo: 24h, rto: 8h}
"#;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("timestamp")
}

const SELECTED: [(&str, &str); 2] = [("lifeboat:backup", "true"), ("team", "bookings")];

#[tokio::test]
async fn scheduled_run_snapshots_the_selected_fleet_once() {
    let sandbox = Sandbox::new("us-east-2").await;
    let key = sandbox.kms_key().await;
    sandbox.instance("booking-db", &SELECTED, Some(&key)).await;
    sandbox
        .instance("reports-db", &[("lifeboat:backup", "true")], None)
        .await;
    sandbox
        .instance("reports-tmp", &[("lifeboat:backup", "true")], None)
        .await;
    sandbox
        .instance("scratch-db", &[("team", "bookings")], None)
        .await;
    sandbox.instance("analytics-events", &[], None).await;
    sandbox
        .aurora_cluster("billing", &[("lifeboat:backup", "true")])
        .await;
    sandbox.aurora_cluster("analytics-warehouse", &[]).await;

    let counter = CallCounter::default();
    let function = sandbox.snapshot_function(POLICY, at("2026-11-22T02:00:07Z"), &counter);
    let report = function
        .handle(event("snapshot/scheduled-daily.json"), &context("req-1"))
        .await
        .expect("run");

    let mut done: Vec<&str> = report
        .results
        .iter()
        .filter(|r| r.status == ItemStatus::Done)
        .map(|r| r.database.as_str())
        .collect();
    done.sort();
    assert_eq!(
        done,
        ["analytics-events", "billing", "booking-db", "reports-db"],
        "{report:#?}"
    );
    assert_eq!(
        (
            report.counts.done,
            report.counts.failed,
            report.counts.skipped
        ),
        (4, 0, 0)
    );
    assert_eq!(report.trigger, "schedule");
    assert!(report.notification.is_none(), "nothing to alert about");

    let booking = sandbox.instance_snapshots("booking-db").await;
    let tags = &booking["lifeboat-booking-db-2026-11-22-0200"];
    assert_eq!(tags["lifeboat:managed"], "true");
    assert_eq!(tags["lifeboat:policy"], "test-policy");
    assert_eq!(tags["lifeboat:plan"], "production");
    assert_eq!(tags["lifeboat:source"], "booking-db");
    assert_eq!(tags["lifeboat:source-kind"], "instance");
    assert_eq!(
        tags["lifeboat:tier"], "daily+weekly",
        "2026-11-22 is a Sunday"
    );
    assert_eq!(tags["lifeboat:trigger"], "schedule");
    assert_eq!(tags["lifeboat:created-at"], "2026-11-22T02:00:00Z");
    assert_eq!(tags["team"], "bookings", "the source's own tags carry over");
    assert!(
        !tags.contains_key("lifeboat:backup"),
        "selection tags stay on the source"
    );

    let billing = sandbox.cluster_snapshots("billing").await;
    assert_eq!(
        billing["lifeboat-billing-2026-11-22-0200"]["lifeboat:source-kind"],
        "cluster"
    );
    let analytics = sandbox.instance_snapshots("analytics-events").await;
    assert_eq!(
        analytics["lifeboat-analytics-events-2026-11-22-0200"]["lifeboat:plan"],
        "analytics"
    );
    assert!(
        sandbox.instance_snapshots("scratch-db").await.is_empty(),
        "not selected"
    );
    assert!(
        sandbox.instance_snapshots("reports-tmp").await.is_empty(),
        "excluded"
    );
    assert!(
        sandbox.instance_snapshots("billing-1").await.is_empty(),
        "cluster members go through the cluster"
    );
    assert!(
        sandbox
            .cluster_snapshots("analytics-warehouse")
            .await
            .is_empty(),
        "plan takes instances only"
    );

    let records = sandbox.ledger_records().await;
    assert_eq!(records.len(), 4);
    for record in &records {
        assert_eq!(
            (record.function.as_str(), record.action.as_str()),
            ("snapshot", "create-snapshot")
        );
        assert_eq!(record.outcome.as_deref(), Some("created"));
        assert_eq!(record.phase, Phase::Result);
        assert_eq!(record.run_id, "req-1");
        assert_eq!(record.region, "us-east-2");
    }

    // The same scheduled event again (a duplicate delivery or a retry): every snapshot exists, nothing is new.
    let again = function
        .handle(event("snapshot/scheduled-daily.json"), &context("req-2"))
        .await
        .expect("rerun");
    assert_eq!(
        (
            again.counts.done,
            again.counts.unchanged,
            again.counts.failed
        ),
        (0, 4, 0),
        "{again:#?}"
    );
    assert_eq!(sandbox.instance_snapshots("booking-db").await.len(), 1);
    assert_eq!(sandbox.cluster_snapshots("billing").await.len(), 1);
    assert_eq!(
        sandbox.ledger_records().await.len(),
        4,
        "nothing changed, nothing recorded"
    );
    assert!(sandbox.notifications().await.is_empty());
}

#[tokio::test]
async fn a_failing_database_does_not_stop_the_others_and_is_alerted() {
    let sandbox = Sandbox::new("ap-south-1").await;
    sandbox.instance("booking-db", &SELECTED, None).await;
    sandbox.instance("filler-db", &[], None).await;
    sandbox
        .aurora_cluster("billing", &[("lifeboat:backup", "true")])
        .await;
    // Use up the region's DB snapshot quota (100, as `scripts/test` configures moto and as AWS sets by default);
    // cluster snapshots have a quota of their own.
    let mut filled = 0;
    loop {
        let result = sandbox
            .rds
            .create_db_snapshot()
            .db_instance_identifier("filler-db")
            .db_snapshot_identifier(format!("filler-{filled}"))
            .send()
            .await;
        match result {
            Ok(_) => filled += 1,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_snapshot_quota_exceeded_fault()) =>
            {
                break;
            }
            Err(e) => panic!("filler snapshot: {e:?}"),
        }
        assert!(filled <= 100, "the emulator's snapshot quota should be 100");
    }

    let function =
        sandbox.snapshot_function(POLICY, at("2026-11-23T02:00:05Z"), &CallCounter::default());
    let report = function
        .handle(
            event("snapshot/scheduled-daily.json"),
            &context("req-quota"),
        )
        .await
        .expect("run");

    let booking = report
        .results
        .iter()
        .find(|r| r.database == "booking-db")
        .expect("booking result");
    assert_eq!(booking.status, ItemStatus::Failed);
    assert!(
        booking
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("quota"),
        "{booking:?}"
    );
    assert!(
        booking
            .next_step
            .as_deref()
            .unwrap_or_default()
            .contains("Service Quotas")
    );
    let billing = report
        .results
        .iter()
        .find(|r| r.database == "billing")
        .expect("billing result");
    assert_eq!(
        billing.status,
        ItemStatus::Done,
        "the healthy cluster is still snapshotted"
    );
    assert_eq!(sandbox.cluster_snapshots("billing").await.len(), 1);

    let notifications = sandbox.notifications().await;
    assert_eq!(notifications.len(), 1, "one summary per run");
    let (subject, body) = &notifications[0];
    assert_eq!(
        subject,
        "Lifeboat snapshot in ap-south-1: 1 failed of 2 item(s)"
    );
    assert!(
        body.contains("FAILED: instance booking-db in ap-south-1"),
        "{body}"
    );
    assert!(
        body.contains("resource:  lifeboat-booking-db-2026-11-22-0200"),
        "{body}"
    );
    assert!(body.contains("quota"), "{body}");
    assert!(
        body.contains("next step: raise the RDS manual snapshot quota"),
        "{body}"
    );
    assert!(body.contains("OK: billing"), "{body}");
    assert_eq!(
        report.notification.as_deref().map(str::is_empty),
        Some(false)
    );

    let records = sandbox.ledger_records().await;
    let failed: Vec<_> = records
        .iter()
        .filter(|r| r.outcome.as_deref() == Some("failed"))
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].database, "booking-db");
    assert!(
        failed[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("quota")
    );
}

#[tokio::test]
async fn manual_pre_deployment_snapshot_has_its_own_expiry_and_is_idempotent() {
    let sandbox = Sandbox::new("eu-west-1").await;
    sandbox.instance("booking-db", &SELECTED, None).await;
    sandbox
        .instance("reports-db", &[("lifeboat:backup", "true")], None)
        .await;
    let function =
        sandbox.snapshot_function(POLICY, at("2026-11-21T10:15:00Z"), &CallCounter::default());

    let report = function
        .handle(
            event("snapshot/manual-pre-deploy.json"),
            &context("req-deploy"),
        )
        .await
        .expect("run");
    assert_eq!(report.trigger, "manual");
    assert_eq!(report.results.len(), 1, "only the named database");
    let snapshot_id = report.results[0].resource.clone().expect("snapshot id");
    assert!(
        snapshot_id.starts_with("lifeboat-booking-db-manual-"),
        "{snapshot_id}"
    );
    let snapshots = sandbox.instance_snapshots("booking-db").await;
    let tags = &snapshots[&snapshot_id];
    assert_eq!(tags["lifeboat:tier"], "manual");
    assert_eq!(tags["lifeboat:trigger"], "manual");
    assert_eq!(tags["lifeboat:reason"], "pre-deploy v42");
    assert_eq!(tags["lifeboat:created-at"], "2026-11-21T10:15:00Z");
    assert_eq!(
        tags["lifeboat:expires-at"], "2027-02-19T10:15:00Z",
        "90 days"
    );
    assert!(sandbox.instance_snapshots("reports-db").await.is_empty());
    let records = sandbox.ledger_records().await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].reason, "pre-deploy v42");
    assert_eq!(records[0].trigger, "manual");

    // Lambda retries an asynchronous invocation with the same request ID: nothing new.
    let retried = function
        .handle(
            event("snapshot/manual-pre-deploy.json"),
            &context("req-deploy"),
        )
        .await
        .expect("retry");
    assert_eq!(retried.counts.unchanged, 1);
    assert_eq!(sandbox.instance_snapshots("booking-db").await.len(), 1);

    // A new request (another deployment) with its own key and retention makes a second snapshot.
    let payload = json!({"action": "snapshot", "databases": ["booking-db"], "reason": "pre-deploy v43",
        "retain_days": 7, "idempotency_key": "deploy-v43"});
    let second = function
        .handle(payload, &context("req-other"))
        .await
        .expect("second");
    assert_eq!(second.counts.done, 1);
    let snapshots = sandbox.instance_snapshots("booking-db").await;
    assert_eq!(snapshots.len(), 2);
    let v43 = &snapshots[second.results[0].resource.as_deref().expect("id")];
    assert_eq!(v43["lifeboat:expires-at"], "2026-11-28T10:15:00Z", "7 days");
}

#[tokio::test]
async fn bad_input_is_rejected_and_changes_nothing() {
    let sandbox = Sandbox::new("eu-west-2").await;
    sandbox.instance("booking-db", &SELECTED, None).await;
    sandbox
        .aurora_cluster("billing", &[("lifeboat:backup", "true")])
        .await;
    let function =
        sandbox.snapshot_function(POLICY, at("2026-11-21T10:15:00Z"), &CallCounter::default());

    let cases = [
        (
            event("snapshot/malformed.json"),
            "databases: invalid type: string \"booking-db\", expected a sequence",
        ),
        (
            event("snapshot/unknown-action.json"),
            "unknown action `snapshot-everything-now`; this function performs: snapshot",
        ),
        (
            json!({"action": "snapshot", "databases": ["booking-db", "nope-db"]}),
            "no DB instance or cluster named `nope-db` in eu-west-2",
        ),
        (
            json!({"action": "snapshot", "databases": ["billing-1"]}),
            "billing-1 is in billing",
        ),
        (
            json!({"action": "snapshot", "retain_days": 0}),
            "retain_days 0 is outside 1..=3650",
        ),
        (
            json!({"action": "snapshot", "databse": ["booking-db"]}),
            "unknown field `databse`",
        ),
        (
            json!({"detail-type": "RDS DB Snapshot Event", "source": "aws.rds", "detail": {}}),
            "not `RDS DB Snapshot Event`",
        ),
        (
            json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
            "scheduled event has no \"time\"",
        ),
        (json!("snapshot everything"), "expected a JSON object"),
    ];
    for (payload, expected) in cases {
        let err = function
            .handle(payload.clone(), &context("req-bad"))
            .await
            .expect_err("must be rejected");
        assert_eq!(err.error_type(), "Lifeboat.InvalidInput", "{payload}");
        assert!(err.to_string().contains(expected), "{payload}: {err}");
    }
    assert!(sandbox.instance_snapshots("booking-db").await.is_empty());
    assert!(sandbox.cluster_snapshots("billing").await.is_empty());
    assert!(sandbox.ledger_records().await.is_empty());
    assert!(sandbox.notifications().await.is_empty());
}

#[tokio::test]
async fn api_calls_grow_with_databases_not_with_snapshots() {
    let sandbox = Sandbox::new("ca-central-1").await;
    for n in 0..3 {
        sandbox.instance(&format!("db-{n}"), &SELECTED, None).await;
    }
    // A long history of existing snapshots must not cost a single call.
    for n in 0..60 {
        sandbox
            .rds
            .create_db_snapshot()
            .db_instance_identifier("db-0")
            .db_snapshot_identifier(format!("lifeboat-db-0-history-{n}"))
            .send()
            .await
            .expect("history snapshot");
    }
    let counter = CallCounter::default();
    let function = sandbox.snapshot_function(POLICY, at("2026-11-22T02:00:00Z"), &counter);
    function
        .handle(event("snapshot/scheduled-daily.json"), &context("req-3"))
        .await
        .expect("run");
    let three = counter.counts();
    assert_eq!(three.get("CreateDBSnapshot"), Some(&3));
    assert_eq!(three.get("DescribeDBInstances"), Some(&1));
    assert_eq!(three.get("DescribeDBClusters"), Some(&1));
    assert_eq!(
        three.get("DescribeDBSnapshots"),
        Some(&1),
        "the due snapshots are looked up by identifier, one call per 100: never the whole history"
    );
    assert_eq!(
        three.values().sum::<usize>(),
        6,
        "no per-snapshot calls: {three:?}"
    );

    // The next hourly run finds them all: nothing is created, a constant number of calls.
    counter.reset();
    let mut an_hour_later = event("snapshot/scheduled-daily.json");
    an_hour_later["time"] = json!("2026-11-22T03:00:00Z");
    sandbox
        .snapshot_function(POLICY, at("2026-11-22T03:00:00Z"), &counter)
        .handle(an_hour_later, &context("req-hourly"))
        .await
        .expect("run");
    let hourly = counter.counts();
    assert_eq!(hourly.get("CreateDBSnapshot"), None, "{hourly:?}");
    assert_eq!(hourly.values().sum::<usize>(), 3, "{hourly:?}");

    for n in 3..6 {
        sandbox.instance(&format!("db-{n}"), &SELECTED, None).await;
    }
    counter.reset();
    let mut next_day = event("snapshot/scheduled-daily.json");
    next_day["time"] = json!("2026-11-23T02:00:00Z");
    function
        .handle(next_day, &context("req-4"))
        .await
        .expect("run");
    let six = counter.counts();
    assert_eq!(six.get("CreateDBSnapshot"), Some(&6));
    assert_eq!(six.values().sum::<usize>(), 9, "{six:?}");
}

#[tokio::test]
async fn a_snapshot_of_the_same_name_made_by_another_deployment_is_no_recovery_point() {
    let sandbox = Sandbox::new("mx-central-1").await;
    sandbox.instance("booking-db", &SELECTED, None).await;
    // A second deployment in this region selects the same database and took the 02:00 snapshot first.
    sandbox
        .rds
        .create_db_snapshot()
        .db_instance_identifier("booking-db")
        .db_snapshot_identifier("lifeboat-booking-db-2026-11-22-0200")
        .set_tags(Some(
            [
                ("lifeboat:managed", "true"),
                ("lifeboat:deployment", "lifeboat-other"),
                ("lifeboat:home-region", "mx-central-1"),
            ]
            .into_iter()
            .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(k).value(v).build())
            .collect(),
        ))
        .send()
        .await
        .expect("the other deployment's snapshot");
    let function =
        sandbox.snapshot_function(POLICY, at("2026-11-22T02:00:05Z"), &CallCounter::default());
    let mut event = event("snapshot/scheduled-daily.json");
    event["time"] = json!("2026-11-22T02:00:00Z");
    let report = function
        .handle(event, &context("conflict"))
        .await
        .expect("run");
    let result = &report.results[0];
    assert_eq!(result.status, ItemStatus::Failed, "{report:#?}");
    let detail = result.detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("was made by deployment `lifeboat-other`"),
        "{detail}"
    );
    assert!(
        result
            .next_step
            .as_deref()
            .is_some_and(|n| n.contains("narrow one policy's selection")),
        "{result:?}"
    );
    let (subject, _) = sandbox.notifications().await.pop().expect("alerted");
    assert!(subject.contains("1 failed"), "{subject}");
}

#[tokio::test]
async fn a_database_missed_at_two_is_caught_up_under_that_days_identifier() {
    let sandbox = Sandbox::with_raised_quota("us-east-2").await;
    sandbox.instance("booking-db", &SELECTED, None).await;
    let run = |time: &'static str, payload: serde_json::Value| {
        let function = sandbox.snapshot_function(POLICY, at(time), &CallCounter::default());
        async move { function.handle(payload, &context(time)).await.expect("run") }
    };
    let at_two = run(
        "2026-11-22T02:00:05Z",
        event("snapshot/scheduled-daily.json"),
    )
    .await;
    assert_eq!(at_two.counts.done, 1);

    // orders-db joins the fleet after 02:00 (or was busy then): the "backup finished" event catches it up at once,
    // under 02:00's identifier and with 02:00's tiers; booking-db's is already there.
    sandbox.instance("orders-db", &SELECTED, None).await;
    let event_run = run(
        "2026-11-22T03:40:00Z",
        event("snapshot/db-instance-backup-finished.json"),
    )
    .await;
    let by_db = |report: &lifeboat_snapshot::SnapshotReport, db: &str| {
        report
            .results
            .iter()
            .find(|r| r.database == db)
            .map(|r| (r.status, r.resource.clone()))
    };
    assert_eq!(
        by_db(&event_run, "orders-db"),
        Some((
            ItemStatus::Done,
            Some("lifeboat-orders-db-2026-11-22-0200".into())
        ))
    );
    assert_eq!(
        by_db(&event_run, "booking-db").map(|(s, _)| s),
        Some(ItemStatus::Unchanged)
    );
    let tags = &sandbox.instance_snapshots("orders-db").await["lifeboat-orders-db-2026-11-22-0200"];
    assert_eq!(tags["lifeboat:created-at"], "2026-11-22T02:00:00Z");
    assert_eq!(tags["lifeboat:tier"], "daily+weekly");

    // The hourly tick at 05:00 finds both: a catch-up never makes two.
    let hourly = run(
        "2026-11-22T05:00:00Z",
        event("snapshot/scheduled-hourly-catch-up.json"),
    )
    .await;
    assert_eq!(
        (hourly.counts.done, hourly.counts.unchanged),
        (0, 2),
        "{hourly:?}"
    );
    assert_eq!(sandbox.instance_snapshots("orders-db").await.len(), 1);
    assert!(
        sandbox.notifications().await.is_empty(),
        "nothing to alert about"
    );
}
