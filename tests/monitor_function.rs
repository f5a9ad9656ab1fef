//! The real monitor handler against moto server (the raised-quota server, whose regions these are only): RPO from
//! snapshots and copies per region, a missing daily, coverage (an unselected database listed), drill evidence
//! read from the ledger, manual-snapshot quota above the threshold (DescribeAccountAttributes, which
//! scripts/emulator.py answers from moto's own snapshots), conditions announced once when they open, reminded
//! after a day, announced when they clear and never repeated in between, across runs with a moving clock; the
//! state object and the posture reports written to the reports bucket (none to the ledger bucket); and bad input rejected with nothing written.
//! CloudWatch's GetMetricData is an aws-smithy-mocks client here, giving the database's free storage at will
//! (tests/cloudwatch_alarms.rs reads it over real HTTP from the emulator).

use chrono::{DateTime, Utc};
use lifeboat::aws::cloudwatch::CloudWatch;
use lifeboat::ledger::{LedgerRecord, Phase, RECORD_SCHEMA, RUN_SCHEMA, RunRecord};
use lifeboat::model::DatabaseKind;
use lifeboat::monitor::{ConditionKind, RpoStatus, Source};
use lifeboat_integration_tests::{Sandbox, adapter, at, context, event, sdk_config_at};
use lifeboat_monitor::{
    MonitorFunction, MonitorReport, REPORT_HTML_KEY, REPORT_JSON_KEY, STATE_KEY,
};
use serde_json::{Value, json};

use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
use aws_sdk_cloudwatch::types::MetricDataResult;
use aws_smithy_mocks::{RuleMode, mock, mock_client};

const SELECTED: [(&str, &str); 1] = [("lifeboat:backup", "true")];

fn policy(dr: &str, rpo: &str, quota: f64) -> String {
    format!(
        "version: 1\nname: monitor-test\nplans:\n  - name: production\n    select: {{tags: {{\"lifeboat:backup\": \"true\"}}}}\n    retention: {{keep_daily: 30}}\n    copies:\n      - {{region: {dr}, kms_key_id: alias/lifeboat-dr, retain_days: 90}}\n    verification: {{every: 7d, instance_class: db.t3.micro, subnet_group: drills, security_groups: [sg-1]}}\n    alerts: {{snapshot_quota_usage: {quota}}}\n    objectives: {{rpo: {rpo}, rto: 4h}}\n"
    )
}

/// CloudWatch answering `free_bytes` of free storage for the first database asked about.
fn cloudwatch(region: &str, free_bytes: f64) -> CloudWatch {
    let rule = mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_output(move || {
        GetMetricDataOutput::builder()
            .metric_data_results(
                MetricDataResult::builder()
                    .id("m0")
                    .values(free_bytes)
                    .build(),
            )
            .build()
    });
    CloudWatch::new(
        mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]),
        region,
    )
}

async fn monitor(
    sandbox: &Sandbox,
    policy: &str,
    now: DateTime<Utc>,
    dr_regions: &[&str],
) -> MonitorFunction {
    let mut dr = Vec::new();
    for region in dr_regions {
        dr.push(adapter(
            aws_sdk_rds::Client::new(&sdk_config_at(&sandbox.endpoint, region).await),
            region,
        ));
    }
    let mut create = sandbox.s3.create_bucket().bucket(reports_bucket(sandbox));
    if sandbox.region != "us-east-1" {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    sandbox.region.as_str(),
                ))
                .build(),
        );
    }
    // Made by the first monitor of the sandbox; the next ones find it there.
    let _ = create.send().await;
    MonitorFunction {
        services: sandbox.services(policy, now),
        primary: sandbox.primary_adapter(),
        dr_regions: dr,
        cloudwatch: cloudwatch(&sandbox.region, 2.0 * f64::from(1u32 << 30)),
        s3: sandbox.s3.clone(),
        reports_bucket: reports_bucket(sandbox),
    }
}

/// The sandbox's reports bucket: beside its ledger bucket, as the template makes them.
fn reports_bucket(sandbox: &Sandbox) -> String {
    format!("{}-reports", sandbox.bucket)
}

async fn run(sandbox: &Sandbox, policy: &str, now: &str, dr_regions: &[&str]) -> MonitorReport {
    monitor(sandbox, policy, at(now), dr_regions)
        .await
        .handle(
            event("monitor/scheduled.json"),
            &context(&format!("monitor-{now}")),
        )
        .await
        .unwrap_or_else(|e| panic!("monitor run at {now}: {e}"))
}

/// A PostgreSQL instance without automated backups (so snapshots and copies are its only recovery points).
async fn instance_without_automated_backups(sandbox: &Sandbox, id: &str, tags: &[(&str, &str)]) {
    sandbox
        .rds
        .create_db_instance()
        .db_instance_identifier(id)
        .db_instance_class("db.t3.micro")
        .engine("postgres")
        .allocated_storage(20)
        .backup_retention_period(0)
        .master_username("lifeboat")
        .master_user_password("not-a-real-password")
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build())
                .collect(),
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("create instance {id}: {e:?}"));
}

/// The object `key` of the sandbox's reports bucket, if it is there.
async fn object(sandbox: &Sandbox, key: &str) -> Option<Vec<u8>> {
    object_in(sandbox, &reports_bucket(sandbox), key).await
}

async fn object_in(sandbox: &Sandbox, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let out = sandbox
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(
        out.body
            .collect()
            .await
            .expect("read object")
            .into_bytes()
            .to_vec(),
    )
}

fn opened(report: &MonitorReport) -> usize {
    report.announced.opened
}

fn open_kinds(report: &MonitorReport, database: &str) -> Vec<ConditionKind> {
    report
        .assessment
        .conditions_of(database)
        .map(|c| c.key.kind)
        .collect()
}

#[tokio::test]
async fn rpo_coverage_missing_daily_drills_and_alerts_opened_reminded_cleared_once() {
    let (primary, dr) = ("eu-west-2", "ca-central-1");
    let sandbox = Sandbox::with_raised_quota(primary).await;
    let policy = policy(dr, "26h", 0.8);
    instance_without_automated_backups(&sandbox, "orders-db", &SELECTED).await;
    instance_without_automated_backups(&sandbox, "scratch-db", &[]).await;
    sandbox
        .snapshot_history(&policy, [at("2026-11-20T02:00:00Z")])
        .await;
    let copied = sandbox
        .copy_function(&policy, at("2026-11-20T02:10:00Z"), &[dr], 5)
        .await
        .handle(event("copy/scheduled-hourly.json"), &context("copy-1"))
        .await
        .expect("copy");
    assert_eq!(copied.counts.done, 1, "{copied:#?}");
    // A restore drill's result, as the verify function records it in the ledger.
    let drill_at = at("2026-11-20T02:40:00Z");
    sandbox
        .services(&policy, drill_at)
        .ledger
        .write(&RunRecord {
            schema: RUN_SCHEMA,
            time: drill_at,
            function: "verify".into(),
            run_id: "verify-1".into(),
            trigger: "schedule".into(),
            phase: Phase::Result,
            deployment: "lifeboat".into(),
            home_region: primary.into(),
            records: vec![LedgerRecord {
                schema: RECORD_SCHEMA,
                time: drill_at,
                function: "verify".into(),
                run_id: "verify-1".into(),
                trigger: "schedule".into(),
                action: "restore-drill".into(),
                phase: Phase::Result,
                region: primary.into(),
                database: "orders-db".into(),
                resource: "lifeboat-drill-orders-db".into(),
                reason: "policy monitor-test: restore drill".into(),
                outcome: Some("ok".into()),
                error: None,
                details: json!({
                    "snapshot": format!("arn:aws:rds:{primary}:123456789012:snapshot:lifeboat-orders-db-2026-11-20-0200"),
                    "passed": true,
                    "checks": [{"name": "connectivity", "expected": "", "actual": "", "passed": true, "duration_ms": 3}],
                    "restore_seconds": 600,
                    "drill_seconds": 900,
                }),
            }],
        })
        .await
        .expect("drill record");

    // First run: RPO from the snapshot (primary) and the copy (DR region), both within the objective.
    let first = run(&sandbox, &policy, "2026-11-20T03:00:00Z", &[dr]).await;
    assert!(first.run_errors.is_empty(), "{:?}", first.run_errors);
    let orders = first
        .assessment
        .databases
        .iter()
        .find(|d| d.identifier == "orders-db")
        .expect("orders-db assessed");
    let (home, away) = (&orders.regions[0], &orders.regions[1]);
    assert_eq!((home.region.as_str(), away.region.as_str()), (primary, dr));
    let best = home.best().expect("a primary recovery point");
    assert_eq!((best.source, best.rpo_seconds), (Source::Snapshot, 3600));
    assert_eq!(
        best.resource.as_deref(),
        Some("lifeboat-orders-db-2026-11-20-0200")
    );
    let best = away.best().expect("a DR recovery point");
    assert_eq!(
        (best.source, best.rpo_seconds),
        (Source::Copy, 3600),
        "the copy ages from its original"
    );
    assert_eq!((home.status, away.status), (RpoStatus::Met, RpoStatus::Met));
    assert_eq!(
        home.sources.len(),
        1,
        "no point-in-time source: automated backups are off"
    );
    let rto = orders.rto.as_ref().expect("drill evidence from the ledger");
    assert_eq!((rto.drill.restore_seconds, rto.age_seconds), (600, 1200));
    assert!(rto.restore_within_rto);
    // Coverage: the unselected database is listed and alerted.
    assert_eq!(
        first
            .assessment
            .unprotected
            .iter()
            .map(|u| u.identifier.as_str())
            .collect::<Vec<_>>(),
        ["scratch-db"]
    );
    assert_eq!(first.totals.unprotected, 1);
    assert!(open_kinds(&first, "scratch-db").contains(&ConditionKind::Unprotected));
    // Storage (CloudWatch): 2 GiB free of 20 GiB.
    assert!(open_kinds(&first, "orders-db").contains(&ConditionKind::StorageHigh));
    assert!(!open_kinds(&first, "orders-db").contains(&ConditionKind::MissingDaily));
    assert_eq!(opened(&first), first.assessment.conditions.len());
    let notes = sandbox.notifications().await;
    assert_eq!(notes.len(), 1, "one message per run: {notes:?}");
    assert!(
        notes[0].1.contains("scratch-db is selected by no plan"),
        "{}",
        notes[0].1
    );
    assert!(notes[0].1.contains("Next step:"));

    // Reports and state in the bucket.
    let json: Value = serde_json::from_slice(
        &object(&sandbox, REPORT_JSON_KEY)
            .await
            .expect("posture.json"),
    )
    .expect("posture.json is JSON");
    assert_eq!(json["totals"]["unprotected"], 1);
    assert_eq!(json["databases"][0]["identifier"], "orders-db");
    let html = String::from_utf8(
        object(&sandbox, REPORT_HTML_KEY)
            .await
            .expect("posture.html"),
    )
    .expect("UTF-8");
    assert!(
        html.starts_with("<!DOCTYPE html>")
            && html.contains("orders-db")
            && html.contains("scratch-db")
    );
    assert!(
        object(&sandbox, "reports/2026/11/20/posture.html")
            .await
            .is_some(),
        "the day's copy"
    );
    assert!(object(&sandbox, STATE_KEY).await.is_some());
    // Nothing of the monitor's lands in the Object-Locked ledger bucket.
    for key in [STATE_KEY, REPORT_HTML_KEY, REPORT_JSON_KEY] {
        assert!(
            object_in(&sandbox, &sandbox.bucket, key).await.is_none(),
            "{key} in the ledger bucket"
        );
    }

    // 15 minutes later: the same conditions, nothing announced again.
    let second = run(&sandbox, &policy, "2026-11-20T03:15:00Z", &[dr]).await;
    assert_eq!(second.announced, Default::default());
    assert_eq!(
        second.assessment.conditions.len(),
        first.assessment.conditions.len()
    );
    assert_eq!(sandbox.notifications().await.len(), 1);

    // No snapshot on the 21st: after its start window and grace the daily is missing and the RPO breached in
    // both regions; what opened on the 20th is reminded (a day has passed), once.
    let third = run(&sandbox, &policy, "2026-11-21T11:30:00Z", &[dr]).await;
    let mut new: Vec<(ConditionKind, String)> = breaches_announced_as_new(&third);
    new.sort();
    let mut expected = vec![
        (ConditionKind::RpoBreach, primary.to_string()),
        (ConditionKind::RpoBreach, dr.to_string()),
        (ConditionKind::MissingDaily, primary.to_string()),
    ];
    expected.sort();
    assert_eq!(new, expected);
    assert_eq!(third.announced.reminded, first.assessment.conditions.len());
    assert_eq!(third.announced.cleared, 0);
    let notes = sandbox.notifications().await;
    assert_eq!(notes.len(), 2);
    assert!(notes[1].0.contains("ACTION NEEDED"), "{}", notes[1].0);
    assert!(
        notes[1]
            .1
            .contains("RPO breached for instance orders-db in ca-central-1"),
        "{}",
        notes[1].1
    );
    assert!(notes[1].1.contains("STILL OPEN"));
    let fourth = run(&sandbox, &policy, "2026-11-21T11:45:00Z", &[dr]).await;
    assert_eq!(fourth.announced, Default::default(), "no repeats");
    assert_eq!(sandbox.notifications().await.len(), 2);

    // The next daily and its copy: the breach and the missing daily clear, announced once.
    sandbox
        .snapshot_history(&policy, [at("2026-11-22T02:00:00Z")])
        .await;
    sandbox
        .copy_function(&policy, at("2026-11-22T02:10:00Z"), &[dr], 5)
        .await
        .handle(event("copy/scheduled-hourly.json"), &context("copy-2"))
        .await
        .expect("copy");
    let fifth = run(&sandbox, &policy, "2026-11-22T03:00:00Z", &[dr]).await;
    assert_eq!(fifth.announced.cleared, 3, "{:#?}", fifth.announced);
    assert_eq!((fifth.announced.opened, fifth.announced.reminded), (0, 0));
    assert!(
        fifth
            .rpo
            .iter()
            .filter(|r| r.database == "orders-db")
            .all(|r| r.status == RpoStatus::Met)
    );
    let notes = sandbox.notifications().await;
    assert_eq!(notes.len(), 3);
    assert!(notes[2].1.contains("CLEARED"), "{}", notes[2].1);
    let sixth = run(&sandbox, &policy, "2026-11-22T03:15:00Z", &[dr]).await;
    assert_eq!(sixth.announced, Default::default());
    assert_eq!(sandbox.notifications().await.len(), 3);
}

fn breaches_announced_as_new(report: &MonitorReport) -> Vec<(ConditionKind, String)> {
    // The RPO breaches and missing dailies open now, which must be exactly what the run announced as new.
    let opened_now: Vec<_> = report
        .assessment
        .conditions
        .iter()
        .filter(|c| {
            matches!(
                c.key.kind,
                ConditionKind::RpoBreach | ConditionKind::MissingDaily
            )
        })
        .map(|c| (c.key.kind, c.key.region.clone()))
        .collect();
    assert_eq!(report.announced.opened, opened_now.len(), "{opened_now:?}");
    opened_now
}

#[tokio::test]
async fn manual_snapshot_quota_above_the_threshold_is_read_from_rds_with_days_until_full() {
    let (primary, dr) = ("sa-east-1", "il-central-1");
    let sandbox = Sandbox::with_raised_quota(primary).await;
    // The raised-quota server allows 1000 manual snapshots per region: alert above 0.1 %.
    let policy = policy(dr, "26h", 0.001);
    sandbox.instance("ledger-db", &SELECTED, None).await;
    sandbox
        .snapshot_history(
            &policy,
            [at("2026-11-18T02:00:00Z"), at("2026-11-19T02:00:00Z")],
        )
        .await;
    let first = run(&sandbox, &policy, "2026-11-19T03:00:00Z", &[dr]).await;
    assert!(first.run_errors.is_empty(), "{:?}", first.run_errors);
    let quota = first
        .assessment
        .quotas
        .iter()
        .find(|q| q.region == primary && q.kind == DatabaseKind::Instance)
        .expect("the primary region's DB snapshot quota");
    assert_eq!(quota.max, 1000);
    assert!(quota.used >= 2, "{quota:?}");
    assert_eq!(quota.days_until_full, None, "one sample: no rate yet");
    let high: Vec<_> = first
        .assessment
        .conditions
        .iter()
        .filter(|c| c.key.kind == ConditionKind::QuotaHigh)
        .map(|c| (c.key.region.clone(), c.key.resource.clone()))
        .collect();
    assert!(
        high.contains(&(primary.to_string(), "manual-instance-snapshots".to_string())),
        "{high:?}"
    );
    assert!(
        first.assessment.quotas.iter().any(|q| q.region == dr),
        "every region's quota"
    );

    // A day and a snapshot later, the samples give a rate.
    sandbox
        .snapshot_history(&policy, [at("2026-11-20T02:00:00Z")])
        .await;
    let second = run(&sandbox, &policy, "2026-11-20T03:00:00Z", &[dr]).await;
    let quota = second
        .assessment
        .quotas
        .iter()
        .find(|q| q.region == primary && q.kind == DatabaseKind::Instance)
        .expect("quota");
    assert!(quota.days_until_full.is_some_and(|d| d > 0.0), "{quota:?}");
    assert_eq!(
        second.announced.opened, 0,
        "the quota condition stays open, not announced again"
    );
}

#[tokio::test]
async fn bad_input_is_rejected_and_nothing_is_written() {
    let sandbox = Sandbox::with_raised_quota("eu-central-2").await;
    let policy = policy("ap-east-2", "26h", 0.8);
    let function = monitor(&sandbox, &policy, at("2026-11-20T03:00:00Z"), &[]).await;
    for (payload, expected) in [
        (json!({"action": "snapshot"}), "unknown action `snapshot`"),
        (
            json!({"action": "report", "databases": ["x"]}),
            "unknown field `databases`",
        ),
        (json!(["report"]), "expected a JSON object"),
        (
            json!({"detail-type": 42, "source": "aws.events"}),
            "malformed EventBridge event",
        ),
    ] {
        let error = function
            .handle(payload.clone(), &context("bad"))
            .await
            .expect_err("rejected");
        assert_eq!(error.error_type(), "Lifeboat.InvalidInput");
        assert!(error.to_string().contains(expected), "{payload}: {error}");
    }
    let mut other = event("monitor/scheduled.json");
    other["detail-type"] = json!("RDS DB Instance Event");
    let error = function
        .handle(other, &context("bad"))
        .await
        .expect_err("rejected");
    assert!(
        error
            .to_string()
            .contains("handles EventBridge `Scheduled Event` events"),
        "{error}"
    );
    assert!(object(&sandbox, STATE_KEY).await.is_none());
    assert!(object(&sandbox, REPORT_JSON_KEY).await.is_none());
    assert!(sandbox.notifications().await.is_empty());

    // The manual report runs.
    let report = function
        .handle(event("monitor/manual-report.json"), &context("manual"))
        .await
        .expect("manual report");
    assert_eq!(report.trigger, "manual");
    assert!(object(&sandbox, REPORT_HTML_KEY).await.is_some());
}
