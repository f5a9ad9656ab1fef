//! The verify handler against mocked SDK clients (aws-smithy-mocks), for what moto skips: temporary databases in
//! `creating`, `modifying` and `backing-up`, a restore that fails, and the exact restore request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_rds::Client as RdsClient;
use aws_sdk_rds::operation::add_tags_to_resource::AddTagsToResourceOutput;
use aws_sdk_rds::operation::delete_db_instance::DeleteDbInstanceOutput;
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::operation::modify_db_instance::ModifyDbInstanceOutput;
use aws_sdk_rds::operation::restore_db_instance_from_db_snapshot::RestoreDbInstanceFromDbSnapshotOutput;
use aws_sdk_rds::types::{DbInstance, DbSnapshot, Tag};
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_secretsmanager::operation::delete_secret::DeleteSecretOutput;
use aws_sdk_sns::operation::publish::PublishOutput;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use serde_json::json;

use lifeboat::aws::rds::Rds;
use lifeboat::aws::secrets::Secrets;
use lifeboat::clock::FixedClock;
use lifeboat::ledger::Ledger;
use lifeboat::notify::Notifier;
use lifeboat::policy::Policy;
use lifeboat::report::ItemStatus;
use lifeboat::services::Services;
use lifeboat_verify::VerifyFunction;
use lifeboat_verify::checks::TlsMode;

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
