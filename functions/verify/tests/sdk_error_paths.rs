//! The verify handler against mocked SDK clients (aws-smithy-mocks), for what moto skips: temporary databases in
//! `creating`, `modifying` and `backing-up`, a drill password still pending, a restore that fails, a restore RDS
//! refuses, drill-infrastructure failures retried and given up, a drill swept unfinished, and the exact restore
//! requests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_rds::Client as RdsClient;
use aws_sdk_rds::operation::add_tags_to_resource::AddTagsToResourceOutput;
use aws_sdk_rds::operation::create_db_instance::{CreateDBInstanceError, CreateDbInstanceOutput};
use aws_sdk_rds::operation::delete_db_instance::DeleteDbInstanceOutput;
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::{
    DescribeDBInstancesError, DescribeDbInstancesOutput,
};
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::operation::modify_db_instance::ModifyDbInstanceOutput;
use aws_sdk_rds::operation::restore_db_cluster_from_snapshot::RestoreDbClusterFromSnapshotOutput;
use aws_sdk_rds::operation::restore_db_instance_from_db_snapshot::{
    RestoreDBInstanceFromDBSnapshotError, RestoreDbInstanceFromDbSnapshotOutput,
};
use aws_sdk_rds::types::{
    DbClusterSnapshot, DbInstance, DbSnapshot, Endpoint, PendingModifiedValues, Tag,
};
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_secretsmanager::operation::delete_secret::DeleteSecretOutput;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
use aws_sdk_sns::operation::publish::PublishOutput;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::error::ErrorMetadata;
use serde_json::json;

use lifeboat::aws::rds::Rds;
use lifeboat::aws::secrets::Secrets;
use lifeboat::clock::FixedClock;
use lifeboat::ledger::Ledger;
use lifeboat::notify::Notifier;
use lifeboat::policy::Policy;
use lifeboat::report::ItemStatus;
use lifeboat::services::Services;
use lifeboat_verify::checks::TlsMode;
use lifeboat_verify::{VerifyFunction, VerifyReport};

const POLICY: &str = "version: 1\nname: mocked\nplans:\n  - name: all\n    select:\n      patterns: ['booking-*']\n    retention: {keep_daily: 7}\n    verification: {every: 7d, instance_class: db.t3.micro, subnet_group: drills, security_groups: [sg-1]}\n    objectives: {rpo: 1h, rto: 4h}\n";

const DRILL: &str = "lbdrill-booking-db-0badc0de";

fn scheduled() -> serde_json::Value {
    json!({"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-22T03:00:00Z", "region": "us-east-1", "resources": [], "detail": {}})
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn source_db() -> DbInstance {
    DbInstance::builder()
        .db_instance_identifier("booking-db")
        .db_instance_arn("arn:aws:rds:us-east-1:123456789012:db:booking-db")
        .engine("postgres")
        .db_instance_status("available")
        .build()
}

/// A drill's temporary instance in `status` and `phase`.
fn drill_instance(status: &str, phase: &str) -> DbInstance {
    DbInstance::builder()
        .db_instance_identifier(DRILL)
        .db_instance_arn(format!("arn:aws:rds:us-east-1:123456789012:db:{DRILL}"))
        .engine("postgres")
        .db_instance_status(status)
        .master_username("lifeboat")
        .set_tag_list(Some(vec![
            tag("lifeboat:managed", "true"),
            tag("lifeboat:deployment", "lifeboat"),
            tag("lifeboat:home-region", "us-east-1"),
            tag("lifeboat:drill", DRILL),
            tag("lifeboat:plan", "all"),
            tag("lifeboat:source", "booking-db"),
            tag(
                "lifeboat:drill-snapshot",
                "lifeboat-booking-db-2026-11-22-0200",
            ),
            tag(
                "lifeboat:drill-snapshot-arn",
                "arn:aws:rds:us-east-1:123456789012:snapshot:lifeboat-booking-db-2026-11-22-0200",
            ),
            tag("lifeboat:drill-snapshot-time", "2026-11-22T02:00:00Z"),
            tag("lifeboat:drill-phase", phase),
            tag("lifeboat:drill-started-at", "2026-11-22T02:30:00Z"),
            tag("lifeboat:expires-at", "2026-11-22T08:30:00Z"),
        ]))
        .build()
}

fn listing(instances: Vec<DbInstance>, snapshots: Vec<DbSnapshot>) -> [Rule; 4] {
    [
        mock!(RdsClient::describe_db_instances).then_output(move || {
            DescribeDbInstancesOutput::builder()
                .set_db_instances(Some(instances.clone()))
                .build()
        }),
        mock!(RdsClient::describe_db_clusters)
            .then_output(|| DescribeDbClustersOutput::builder().build()),
        mock!(RdsClient::describe_db_snapshots).then_output(move || {
            DescribeDbSnapshotsOutput::builder()
                .set_db_snapshots(Some(snapshots.clone()))
                .build()
        }),
        mock!(RdsClient::describe_db_cluster_snapshots)
            .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build()),
    ]
}

fn function(
    rds_rules: &[&Rule],
    secret_rules: &[&Rule],
    alerts: &Arc<Mutex<Vec<String>>>,
) -> VerifyFunction {
    let put =
        mock!(aws_sdk_s3::Client::put_object).then_output(|| PutObjectOutput::builder().build());
    let seen = alerts.clone();
    let publish = mock!(aws_sdk_sns::Client::publish)
        .match_requests(move |req| {
            seen.lock()
                .unwrap()
                .push(req.message().unwrap_or_default().to_string());
            true
        })
        .then_output(|| PublishOutput::builder().message_id("m").build());
    VerifyFunction {
        services: Services {
            policy: Policy::from_yaml(POLICY).expect("policy"),
            deployment: lifeboat::ownership::Deployment::new("lifeboat", "us-east-1")
                .expect("deployment"),
            ledger: Ledger::new(
                mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&put]),
                "ledger",
                "us-east-1",
            ),
            notifier: Notifier::new(
                mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&publish]),
                "arn:aws:sns:us-east-1:123456789012:lifeboat",
                "us-east-1",
            ),
            clock: Arc::new(FixedClock("2026-11-22T03:00:00Z".parse().expect("time"))),
            concurrency: 4,
        },
        primary: Rds::new(
            mock_client!(aws_sdk_rds, RuleMode::MatchAny, rds_rules),
            "us-east-1",
        ),
        dr_regions: Vec::new(),
        secrets: Secrets::new(
            mock_client!(aws_sdk_secretsmanager, RuleMode::MatchAny, secret_rules),
            "us-east-1",
        ),
        tls: TlsMode::Require { ca_bundle: None },
        check_timeout: Duration::from_secs(1),
        endpoint_override: None,
    }
}

fn context() -> lambda_runtime::Context {
    let mut context = lambda_runtime::Context::default();
    context.request_id = "req-mock".into();
    context
}

#[tokio::test]
async fn the_restore_is_private_without_deletion_protection_or_multi_az() {
    let snapshot = DbSnapshot::builder()
        .db_snapshot_identifier("lifeboat-booking-db-2026-11-22-0200")
        .db_snapshot_arn(
            "arn:aws:rds:us-east-1:123456789012:snapshot:lifeboat-booking-db-2026-11-22-0200",
        )
        .db_instance_identifier("booking-db")
        .status("available")
        .snapshot_type("manual")
        .snapshot_create_time(aws_smithy_types::DateTime::from_secs(1_795_312_800)) // 2026-11-22T02:00:00Z
        .tag_list(tag("lifeboat:managed", "true"))
        .tag_list(tag("lifeboat:deployment", "lifeboat"))
        .tag_list(tag("lifeboat:home-region", "us-east-1"))
        .tag_list(tag("lifeboat:created-at", "2026-11-22T02:00:00Z"))
        .build();
    let [instances, clusters, snapshots, cluster_snapshots] =
        listing(vec![source_db()], vec![snapshot]);
    let restore = mock!(RdsClient::restore_db_instance_from_db_snapshot)
        .match_requests(|req| {
            req.publicly_accessible() == Some(false)
                && req.deletion_protection() == Some(false)
                && req.multi_az() == Some(false)
                && req.db_subnet_group_name() == Some("drills")
                && req.db_instance_class() == Some("db.t3.micro")
                && req.vpc_security_group_ids() == ["sg-1"]
                && req.tags().iter().any(|t| t.key() == Some("lifeboat:drill"))
                && req.tags().iter().any(|t| {
                    t.key() == Some("lifeboat:expires-at")
                        && t.value() == Some("2026-11-22T09:00:00Z")
                })
        })
        .then_output(|| RestoreDbInstanceFromDbSnapshotOutput::builder().build());
    let alerts = Arc::default();
    let report = function(
        &[
            &instances,
            &clusters,
            &snapshots,
            &cluster_snapshots,
            &restore,
        ],
        &[],
        &alerts,
    )
    .handle(scheduled(), &context())
    .await
    .expect("run");
    assert_eq!(restore.num_calls(), 1, "{report:#?}");
    assert_eq!(report.results[0].status, ItemStatus::Done);
}

#[tokio::test]
async fn drills_wait_while_rds_is_creating_modifying_or_backing_up() {
    for (status, phase) in [
        ("creating", "restoring"),
        ("modifying", "securing"),
        ("backing-up", "securing"),
    ] {
        let [instances, clusters, snapshots, cluster_snapshots] =
            listing(vec![source_db(), drill_instance(status, phase)], Vec::new());
        let modify = mock!(RdsClient::modify_db_instance)
            .then_output(|| ModifyDbInstanceOutput::builder().build());
        let delete = mock!(RdsClient::delete_db_instance)
            .then_output(|| DeleteDbInstanceOutput::builder().build());
        let alerts = Arc::default();
        let report = function(
            &[
                &instances,
                &clusters,
                &snapshots,
                &cluster_snapshots,
                &modify,
                &delete,
            ],
            &[],
            &alerts,
        )
        .handle(json!({"action": "verify"}), &context())
        .await
        .expect("run");
        assert_eq!(report.drills[0].step, "waiting", "{status}");
        assert_eq!(
            (modify.num_calls(), delete.num_calls()),
            (0, 0),
            "nothing is done to a drill in {status}"
        );
        assert!(report.results.is_empty(), "{status}: {report:#?}");
    }
}

#[tokio::test]
async fn a_failed_restore_is_recorded_alerted_and_cleaned_up() {
    let [instances, clusters, snapshots, cluster_snapshots] = listing(
        vec![source_db(), drill_instance("failed", "restoring")],
        Vec::new(),
    );
    let tagged = mock!(RdsClient::add_tags_to_resource)
        .match_requests(|req| {
            req.resource_name() == Some("arn:aws:rds:us-east-1:123456789012:snapshot:lifeboat-booking-db-2026-11-22-0200")
                && req.tags().iter().any(|t| t.key() == Some("lifeboat:verify-result") && t.value() == Some("failed"))
        })
        .then_output(|| AddTagsToResourceOutput::builder().build());
    let delete = mock!(RdsClient::delete_db_instance)
        .match_requests(|req| {
            req.db_instance_identifier() == Some(DRILL) && req.skip_final_snapshot() == Some(true)
        })
        .then_output(|| DeleteDbInstanceOutput::builder().build());
    let secret = mock!(aws_sdk_secretsmanager::Client::delete_secret)
        .match_requests(|req| req.secret_id() == Some(&format!("lifeboat/drill/{DRILL}")))
        .then_output(|| DeleteSecretOutput::builder().build());
    let alerts: Arc<Mutex<Vec<String>>> = Arc::default();
    let report = function(
        &[
            &instances,
            &clusters,
            &snapshots,
            &cluster_snapshots,
            &tagged,
            &delete,
        ],
        &[&secret],
        &alerts,
    )
    .handle(json!({"action": "verify"}), &context())
    .await
    .expect("run");
    assert_eq!(
        (tagged.num_calls(), delete.num_calls(), secret.num_calls()),
        (1, 1, 1),
        "{report:#?}"
    );
    assert_eq!(report.counts.failed, 1);
    let alert = &alerts.lock().unwrap()[0];
    assert!(
        alert.contains("restore of lifeboat-booking-db-2026-11-22-0200 ended in status `failed`"),
        "{alert}"
    );
}

/// The tags every AddTagsToResource call of a run asked for, as (resource, key, value).
type TagCalls = Arc<Mutex<Vec<(String, String, String)>>>;

fn recording_tags(calls: &TagCalls) -> Rule {
    let seen = calls.clone();
    mock!(RdsClient::add_tags_to_resource)
        .match_requests(move |req| {
            let resource = req.resource_name().unwrap_or_default().to_string();
            for t in req.tags() {
                seen.lock().unwrap().push((
                    resource.clone(),
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                ));
            }
            true
        })
        .then_output(|| AddTagsToResourceOutput::builder().build())
}

fn tagged(calls: &TagCalls, key: &str) -> Vec<(String, String)> {
    calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, k, _)| k == key)
        .map(|(r, _, v)| (r.clone(), v.clone()))
        .collect()
}

const SNAPSHOT_ARN: &str =
    "arn:aws:rds:us-east-1:123456789012:snapshot:lifeboat-booking-db-2026-11-22-0200";

fn password() -> Rule {
    mock!(aws_sdk_secretsmanager::Client::get_secret_value).then_output(|| {
        GetSecretValueOutput::builder()
            .secret_string("drill-only-password-0123456789abcdef")
            .build()
    })
}

/// A port nothing listens on: a connection there is refused.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    listener.local_addr().expect("addr").port()
}

/// A drill in `securing`, available, whose endpoint is `port` on this machine, with extra tags and optionally
/// the master password still pending.
fn securing_drill(port: u16, pending_password: bool, extra: &[(&str, &str)]) -> DbInstance {
    let mut drill = drill_instance("available", "securing");
    drill.endpoint = Some(
        Endpoint::builder()
            .address("127.0.0.1")
            .port(i32::from(port))
            .build(),
    );
    if pending_password {
        drill.pending_modified_values = Some(
            PendingModifiedValues::builder()
                .master_user_password("****")
                .build(),
        );
    }
    let tags = drill.tag_list.get_or_insert_with(Vec::new);
    for (k, v) in extra {
        tags.retain(|t| t.key() != Some(*k));
        tags.push(tag(k, v));
    }
    drill
}

#[tokio::test]
async fn checks_wait_until_rds_has_applied_the_drill_password() {
    let port = closed_port();
    // Just after the modify call RDS still shows `available`, with the new master password pending.
    let [instances, clusters, snapshots, cluster_snapshots] = listing(
        vec![source_db(), securing_drill(port, true, &[])],
        Vec::new(),
    );
    let secret = password();
    let calls = TagCalls::default();
    let tags = recording_tags(&calls);
    let delete = mock!(RdsClient::delete_db_instance)
        .then_output(|| DeleteDbInstanceOutput::builder().build());
    let alerts = Arc::default();
    let report = function(
        &[
            &instances,
            &clusters,
            &snapshots,
            &cluster_snapshots,
            &tags,
            &delete,
        ],
        &[&secret],
        &alerts,
    )
    .handle(json!({"action": "verify"}), &context())
    .await
    .expect("run");
    let drill = &report.drills[0];
    assert_eq!(drill.step, "securing", "{report:#?}");
    assert!(
        drill
            .waiting_for
            .as_deref()
            .is_some_and(|w| w.contains("master password change pending")),
        "{drill:#?}"
    );
    assert!(
        drill.checks.is_empty(),
        "no check runs with the old password"
    );
    assert_eq!(
        (secret.num_calls(), tags.num_calls(), delete.num_calls()),
        (0, 0, 0)
    );
    assert!(
        report.results.is_empty(),
        "waiting alerts nobody: {report:#?}"
    );

    // Once RDS has applied it, the checks run.
    let [instances, clusters, snapshots, cluster_snapshots] = listing(
        vec![source_db(), securing_drill(port, false, &[])],
        Vec::new(),
    );
    let secret = password();
    let report = function(
        &[
            &instances,
            &clusters,
            &snapshots,
            &cluster_snapshots,
            &tags,
            &delete,
        ],
        &[&secret],
        &alerts,
    )
    .handle(json!({"action": "verify"}), &context())
    .await
    .expect("run");
    assert_eq!(secret.num_calls(), 1);
    assert_eq!(
        report.drills[0].checks[0].name, "connectivity",
        "{report:#?}"
    );
    assert_eq!(
        report.drills[0].certificate_verification.as_deref(),
        Some("unverified")
    );
}

#[tokio::test]
async fn an_unreachable_drill_is_infrastructure_retried_then_given_up_without_blaming_the_snapshot()
{
    let port = closed_port();
    let run = |attempts: Option<&'static str>| {
        let extra: Vec<(&str, &str)> = attempts
            .map(|a| vec![("lifeboat:drill-attempts", a)])
            .unwrap_or_default();
        let [instances, clusters, snapshots, cluster_snapshots] = listing(
            vec![source_db(), securing_drill(port, false, &extra)],
            Vec::new(),
        );
        async move {
            let secret = password();
            let delete_secret = mock!(aws_sdk_secretsmanager::Client::delete_secret)
                .then_output(|| DeleteSecretOutput::builder().build());
            let calls = TagCalls::default();
            let tags = recording_tags(&calls);
            let delete = mock!(RdsClient::delete_db_instance)
                .then_output(|| DeleteDbInstanceOutput::builder().build());
            let alerts: Arc<Mutex<Vec<String>>> = Arc::default();
            let report = function(
                &[
                    &instances,
                    &clusters,
                    &snapshots,
                    &cluster_snapshots,
                    &tags,
                    &delete,
                ],
                &[&secret, &delete_secret],
                &alerts,
            )
            .handle(json!({"action": "verify"}), &context())
            .await
            .expect("run");
            let alerts = alerts.lock().unwrap().clone();
            (report, calls, delete.num_calls(), alerts)
        }
    };

    // Attempt 1: connection refused. Retried on the same drill; the snapshot is not tagged at all.
    let (report, calls, deletes, alerts) = run(None).await;
    let drill = &report.drills[0];
    assert_eq!(drill.step, "checks-retried", "{report:#?}");
    assert_eq!(
        drill.failure_class,
        Some(lifeboat::restore::FailureClass::Infrastructure)
    );
    assert_eq!((drill.attempt, drill.passed), (Some(1), None));
    assert!(!drill.checks[0].passed && drill.checks[0].name == "connectivity");
    assert!(
        tagged(&calls, "lifeboat:verify-result").is_empty(),
        "{calls:?}"
    );
    assert_eq!(
        tagged(&calls, "lifeboat:drill-attempts"),
        [(
            format!("arn:aws:rds:us-east-1:123456789012:db:{DRILL}"),
            "1".to_string()
        )]
    );
    assert_eq!(deletes, 0, "the drill database is kept for the retry");
    assert_eq!(report.results[0].status, ItemStatus::Skipped);
    assert!(alerts[0].contains("drill infrastructure"), "{alerts:?}");
    assert!(alerts[0].contains("attempt 1 of 3"), "{alerts:?}");
    assert!(alerts[0].contains("security groups"), "{alerts:?}");
    assert!(
        !alerts[0].contains("failed its restore drill"),
        "{alerts:?}"
    );

    // Attempt 3 (the last): given up, alerted once as infrastructure, the snapshot left inconclusive.
    let (report, calls, deletes, alerts) = run(Some("2")).await;
    assert_eq!(report.drills[0].step, "deleting", "{report:#?}");
    assert_eq!(
        tagged(&calls, "lifeboat:verify-result"),
        [(SNAPSHOT_ARN.to_string(), "inconclusive".to_string())],
        "never `failed`"
    );
    assert!(tagged(&calls, "lifeboat:verified-at").is_empty());
    assert_eq!(deletes, 1);
    let failed: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.status == ItemStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{report:#?}");
    assert!(
        failed[0].detail.as_deref().is_some_and(
            |d| d.contains("drill infrastructure") && d.contains("gave up after 3 attempts")
        ),
        "{failed:?}"
    );
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].contains("subnet"), "{alerts:?}");
}

fn snapshot_of_booking(extra: &[(&str, &str)]) -> DbSnapshot {
    let mut builder = DbSnapshot::builder()
        .db_snapshot_identifier("lifeboat-booking-db-2026-11-22-0200")
        .db_snapshot_arn(SNAPSHOT_ARN)
        .db_instance_identifier("booking-db")
        .status("available")
        .snapshot_type("manual")
        .snapshot_create_time(aws_smithy_types::DateTime::from_secs(1_795_312_800))
        .tag_list(tag("lifeboat:managed", "true"))
        .tag_list(tag("lifeboat:deployment", "lifeboat"))
        .tag_list(tag("lifeboat:home-region", "us-east-1"))
        .tag_list(tag("lifeboat:created-at", "2026-11-22T02:00:00Z"));
    for (k, v) in extra {
        builder = builder.tag_list(tag(k, v));
    }
    builder.build()
}

#[tokio::test]
async fn a_drill_rds_refuses_is_recorded_and_alerted_once_per_recovery_point() {
    let [instances, clusters, snapshots, cluster_snapshots] =
        listing(vec![source_db()], vec![snapshot_of_booking(&[])]);
    let restore = mock!(RdsClient::restore_db_instance_from_db_snapshot).then_error(|| {
        RestoreDBInstanceFromDBSnapshotError::generic(
            ErrorMetadata::builder()
                .code("InvalidParameterCombination")
                .message("RDS does not support creating a DB instance with the following combination: DBInstanceClass=db.t3.micro, Engine=postgres")
                .build(),
        )
    });
    let calls = TagCalls::default();
    let tags = recording_tags(&calls);
    let alerts: Arc<Mutex<Vec<String>>> = Arc::default();
    let report = function(
        &[
            &instances,
            &clusters,
            &snapshots,
            &cluster_snapshots,
            &restore,
            &tags,
        ],
        &[],
        &alerts,
    )
    .handle(scheduled(), &context())
    .await
    .expect("run");
    assert_eq!(restore.num_calls(), 1);
    assert_eq!(report.drills[0].step, "not-started", "{report:#?}");
    assert_eq!(
        tagged(&calls, "lifeboat:verify-result"),
        [(SNAPSHOT_ARN.to_string(), "not-started".to_string())]
    );
    assert_eq!(report.counts.failed, 1);
    let alert = alerts.lock().unwrap()[0].clone();
    assert!(alert.contains("InvalidParameterCombination"), "{alert}");
    assert!(alert.contains("instance_class"), "{alert}");

    // The next half-hourly run finds the refusal on the recovery point: no restore, no alert.
    let [instances, clusters, snapshots, cluster_snapshots] = listing(
        vec![source_db()],
        vec![snapshot_of_booking(&[(
            "lifeboat:verify-result",
            "not-started",
        )])],
    );
    let alerts: Arc<Mutex<Vec<String>>> = Arc::default();
    let report = function(
        &[
            &instances,
            &clusters,
            &snapshots,
            &cluster_snapshots,
            &restore,
            &tags,
        ],
        &[],
        &alerts,
    )
    .handle(scheduled(), &context())
    .await
    .expect("run");
    assert_eq!(restore.num_calls(), 1, "not requested again: {report:#?}");
    assert!(alerts.lock().unwrap().is_empty());
}

#[tokio::test]
async fn aurora_drills_use_the_cluster_instance_class_and_a_refused_member_cleans_up_its_cluster() {
    let cluster = aws_sdk_rds::types::DbCluster::builder()
        .db_cluster_identifier("booking-aurora")
        .db_cluster_arn("arn:aws:rds:us-east-1:123456789012:cluster:booking-aurora")
        .engine("aurora-postgresql")
        .status("available")
        .build();
    let snapshot = DbClusterSnapshot::builder()
        .db_cluster_snapshot_identifier("lifeboat-booking-aurora-2026-11-22-0200")
        .db_cluster_snapshot_arn("arn:aws:rds:us-east-1:123456789012:cluster-snapshot:lifeboat-booking-aurora-2026-11-22-0200")
        .db_cluster_identifier("booking-aurora")
        .status("available")
        .snapshot_type("manual")
        .snapshot_create_time(aws_smithy_types::DateTime::from_secs(1_795_312_800))
        .tag_list(tag("lifeboat:managed", "true"))
        .tag_list(tag("lifeboat:deployment", "lifeboat"))
        .tag_list(tag("lifeboat:home-region", "us-east-1"))
        .tag_list(tag("lifeboat:created-at", "2026-11-22T02:00:00Z"))
        .build();
    let instances = mock!(RdsClient::describe_db_instances)
        .then_output(|| DescribeDbInstancesOutput::builder().build());
    let clusters = mock!(RdsClient::describe_db_clusters).then_output(move || {
        DescribeDbClustersOutput::builder()
            .db_clusters(cluster.clone())
            .build()
    });
    let snapshots = mock!(RdsClient::describe_db_snapshots)
        .then_output(|| DescribeDbSnapshotsOutput::builder().build());
    let cluster_snapshots =
        mock!(RdsClient::describe_db_cluster_snapshots).then_output(move || {
            DescribeDbClusterSnapshotsOutput::builder()
                .db_cluster_snapshots(snapshot.clone())
                .build()
        });
    let restore = mock!(RdsClient::restore_db_cluster_from_snapshot)
        .then_output(|| RestoreDbClusterFromSnapshotOutput::builder().build());
    let member_class = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = member_class.clone();
    let member = mock!(RdsClient::create_db_instance)
        .match_requests(move |req| {
            seen.lock()
                .unwrap()
                .push(req.db_instance_class().unwrap_or_default().to_string());
            true
        })
        .then_error(|| {
            CreateDBInstanceError::generic(
                ErrorMetadata::builder()
                    .code("InvalidParameterCombination")
                    .message("RDS does not support creating a DB instance with the following combination")
                    .build(),
            )
        });
    let _unused = CreateDbInstanceOutput::builder().build();
    let calls = TagCalls::default();
    let tags = recording_tags(&calls);
    let alerts: Arc<Mutex<Vec<String>>> = Arc::default();
    let report = function(
        &[
            &instances,
            &clusters,
            &snapshots,
            &cluster_snapshots,
            &restore,
            &member,
            &tags,
        ],
        &[],
        &alerts,
    )
    .handle(scheduled(), &context())
    .await
    .expect("run");
    assert_eq!(
        member_class.lock().unwrap().as_slice(),
        ["db.t4g.medium"],
        "Aurora members use verification.cluster_instance_class (default db.t4g.medium), not db.t3.micro"
    );
    let drill = &report.drills[0];
    assert_eq!(drill.step, "not-started", "{report:#?}");
    assert_eq!(
        tagged(&calls, "lifeboat:drill-phase"),
        [(
            format!("arn:aws:rds:us-east-1:123456789012:cluster:{}", drill.drill),
            "cleaning-up".to_string()
        )],
        "the restored cluster is deleted by the next run"
    );
    assert_eq!(
        tagged(&calls, "lifeboat:verify-result"),
        [(
            "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:lifeboat-booking-aurora-2026-11-22-0200".to_string(),
            "not-started".to_string()
        )]
    );
    assert_eq!(alerts.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_drill_swept_unfinished_alerts_with_its_phase() {
    let expired = securing_drill(
        closed_port(),
        false,
        &[("lifeboat:expires-at", "2026-11-22T02:59:00Z")],
    );
    let [instances, clusters, snapshots, cluster_snapshots] =
        listing(vec![source_db(), expired], Vec::new());
    let calls = TagCalls::default();
    let tags = recording_tags(&calls);
    let delete = mock!(RdsClient::delete_db_instance)
        .then_output(|| DeleteDbInstanceOutput::builder().build());
    let delete_secret = mock!(aws_sdk_secretsmanager::Client::delete_secret)
        .then_output(|| DeleteSecretOutput::builder().build());
    let alerts: Arc<Mutex<Vec<String>>> = Arc::default();
    let report = function(
        &[
            &instances,
            &clusters,
            &snapshots,
            &cluster_snapshots,
            &tags,
            &delete,
        ],
        &[&delete_secret],
        &alerts,
    )
    .handle(json!({"action": "verify"}), &context())
    .await
    .expect("run");
    assert_eq!(delete.num_calls(), 1);
    let swept = &report.results[0];
    assert_eq!(
        (swept.action.as_str(), swept.status),
        ("sweep-drill", ItemStatus::Failed),
        "{report:#?}"
    );
    assert!(
        swept
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("in phase `securing`")),
        "{swept:?}"
    );
    assert_eq!(
        tagged(&calls, "lifeboat:verify-result"),
        [(SNAPSHOT_ARN.to_string(), "inconclusive".to_string())]
    );
    assert!(alerts.lock().unwrap()[0].contains("in phase `securing`"));
}

/// A scheduled run where the primary region's drill is verified and only the DR region's copy is due; the DR
/// region's DB instances cannot be listed when `dr_unlisted`. The report, and the DR and primary restores asked for.
async fn drill_of_a_dr_copy(dr_unlisted: bool) -> (VerifyReport, usize, usize) {
    const DR_POLICY: &str = "version: 1\nname: mocked\nplans:\n  - name: all\n    select:\n      patterns: ['booking-*']\n    retention: {keep_daily: 7}\n    copies: [{region: us-west-2, kms_key_id: alias/lifeboat-dr, retain_days: 90}]\n    verification:\n      every: 7d\n      instance_class: db.t3.micro\n      subnet_group: drills\n      security_groups: [sg-1]\n      regions: {us-west-2: {security_groups: [sg-west]}}\n    objectives: {rpo: 1h, rto: 4h}\n";
    // Verified yesterday in the primary region: only the DR region's copy is due.
    let [instances, clusters, snapshots, cluster_snapshots] = listing(
        vec![source_db()],
        vec![snapshot_of_booking(&[(
            "lifeboat:verified-at",
            "2026-11-21T05:00:00Z",
        )])],
    );
    let copy_arn =
        "arn:aws:rds:us-west-2:123456789012:snapshot:lifeboat-booking-db-2026-11-22-0200";
    let copy = DbSnapshot::builder()
        .db_snapshot_identifier("lifeboat-booking-db-2026-11-22-0200")
        .db_snapshot_arn(copy_arn)
        .db_instance_identifier("booking-db")
        .status("available")
        .snapshot_type("manual")
        .encrypted(true)
        .kms_key_id("arn:aws:kms:us-west-2:123456789012:key/dr-key")
        .snapshot_create_time(aws_smithy_types::DateTime::from_secs(1_795_312_800))
        .tag_list(tag("lifeboat:managed", "true"))
        .tag_list(tag("lifeboat:deployment", "lifeboat"))
        .tag_list(tag("lifeboat:home-region", "us-east-1"))
        .tag_list(tag("lifeboat:source", "booking-db"))
        .build();
    let [
        dr_instances,
        dr_clusters,
        dr_snapshots,
        dr_cluster_snapshots,
    ] = listing(Vec::new(), vec![copy]);
    let dr_instances = match dr_unlisted {
        false => dr_instances,
        true => mock!(RdsClient::describe_db_instances).then_error(|| {
            DescribeDBInstancesError::generic(
                ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message("not authorized to perform: rds:DescribeDBInstances")
                    .build(),
            )
        }),
    };
    let dr_restore = mock!(RdsClient::restore_db_instance_from_db_snapshot)
        .match_requests(|req| {
            req.db_snapshot_identifier() == Some("lifeboat-booking-db-2026-11-22-0200")
                && req.db_subnet_group_name() == Some("drills")
                && req.vpc_security_group_ids() == ["sg-west"]
                && req.publicly_accessible() == Some(false)
        })
        .then_output(|| RestoreDbInstanceFromDbSnapshotOutput::builder().build());
    let primary_restore = mock!(RdsClient::restore_db_instance_from_db_snapshot)
        .then_output(|| RestoreDbInstanceFromDbSnapshotOutput::builder().build());
    let alerts = Arc::default();
    let mut function = function(
        &[
            &instances,
            &clusters,
            &snapshots,
            &cluster_snapshots,
            &primary_restore,
        ],
        &[],
        &alerts,
    );
    function.services.policy = Policy::from_yaml(DR_POLICY).expect("policy");
    function.dr_regions = vec![Rds::new(
        mock_client!(
            aws_sdk_rds,
            RuleMode::MatchAny,
            [
                &dr_instances,
                &dr_clusters,
                &dr_snapshots,
                &dr_cluster_snapshots,
                &dr_restore
            ]
        ),
        "us-west-2",
    )];
    let report = function.handle(scheduled(), &context()).await.expect("run");
    (report, dr_restore.num_calls(), primary_restore.num_calls())
}

#[tokio::test]
async fn dr_region_copies_are_drilled_there_with_that_regions_network() {
    let (report, dr_restores, primary_restores) = drill_of_a_dr_copy(false).await;
    assert_eq!(primary_restores, 0, "{report:#?}");
    assert_eq!(dr_restores, 1, "{report:#?}");
    assert_eq!(report.drills[0].region, "us-west-2");
    assert_eq!(report.results[0].status, ItemStatus::Done);
}

/// Neither the drill limit nor "already in progress" can be checked in a region whose drills cannot be listed: no
/// drill starts there, and the run says so.
#[tokio::test]
async fn no_drill_starts_in_a_region_whose_drills_cannot_be_listed() {
    let (report, dr_restores, primary_restores) = drill_of_a_dr_copy(true).await;
    assert_eq!((dr_restores, primary_restores), (0, 0), "{report:#?}");
    assert!(
        report
            .run_errors
            .iter()
            .any(|e| e.contains("us-west-2") && e.contains("none started there")),
        "{report:#?}"
    );
}
