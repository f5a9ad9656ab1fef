//! The copy handler against mocked SDK clients (aws-smithy-mocks), for what moto cannot produce: a source still
//! `creating`, RDS quota and concurrent-copy limit errors, throttling, a KMS access error.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_rds::Client as RdsClient;
use aws_sdk_rds::config::retry::RetryConfig;
use aws_sdk_rds::operation::copy_db_snapshot::{CopyDBSnapshotError, CopyDbSnapshotOutput};
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::types::error::{KmsKeyNotAccessibleFault, SnapshotQuotaExceededFault};
use aws_sdk_rds::types::{DbSnapshot, Tag};
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_sns::operation::publish::PublishOutput;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use serde_json::json;

use lifeboat::aws::rds::Rds;
use lifeboat::clock::FixedClock;
use lifeboat::copy::CopyLimits;
use lifeboat::ledger::Ledger;
use lifeboat::notify::Notifier;
use lifeboat::policy::Policy;
use lifeboat::report::ItemStatus;
use lifeboat::services::Services;
use lifeboat_copy::CopyFunction;

const POLICY: &str = "version: 1\nname: mocked\nplans:\n  - name: all\n    select:\n      patterns: ['*']\n    retention: {keep_daily: 7}\n    copies:\n      - {region: us-west-2, kms_key_id: alias/lifeboat-dr, retain_days: 90}\n    objectives: {rpo: 1h, rto: 4h}\n";

fn scheduled() -> serde_json::Value {
    json!({"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-22T03:00:00Z", "region": "us-east-1", "resources": [], "detail": {}})
}

/// A managed, encrypted DB snapshot of `booking-db` in us-east-1.
fn source(id: &str, status: &str) -> DbSnapshot {
    DbSnapshot::builder()
        .db_snapshot_identifier(id)
        .db_snapshot_arn(format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}"))
        .db_instance_identifier("booking-db")
        .status(status)
        .encrypted(true)
        .snapshot_type("manual")
        .snapshot_create_time(aws_smithy_types::DateTime::from_secs(1_795_312_800)) // 2026-11-22T02:00:00Z
        .set_tag_list(Some(vec![
            Tag::builder().key("lifeboat:managed").value("true").build(),
            Tag::builder()
                .key("lifeboat:deployment")
                .value("lifeboat")
                .build(),
            Tag::builder()
                .key("lifeboat:home-region")
                .value("us-east-1")
                .build(),
            Tag::builder()
                .key("lifeboat:source")
                .value("booking-db")
                .build(),
            Tag::builder().key("lifeboat:plan").value("all").build(),
            Tag::builder()
                .key("lifeboat:created-at")
                .value("2026-11-22T02:00:00Z")
                .build(),
        ]))
        .build()
}

/// Rules for the primary region listing `sources`.
fn primary_rules(sources: Vec<DbSnapshot>) -> [Rule; 2] {
    [
        mock!(RdsClient::describe_db_snapshots).then_output(move || {
            DescribeDbSnapshotsOutput::builder()
                .set_db_snapshots(Some(sources.clone()))
                .build()
        }),
        mock!(RdsClient::describe_db_cluster_snapshots)
            .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build()),
    ]
}

/// Rules for an empty DR region.
fn empty_dr_rules() -> [Rule; 2] {
    primary_rules(Vec::new())
}

fn rds_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<ErrorResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
    );
    HttpResponse::new(
        StatusCode::try_from(status).expect("status"),
        SdkBody::from(body),
    )
}

fn rds(rules: &[&Rule]) -> RdsClient {
    mock_client!(aws_sdk_rds, RuleMode::MatchAny, rules, |c| c.retry_config(
        RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(1))
    ))
}

fn function(primary: &[&Rule], dr: &[&Rule], subjects: &Arc<Mutex<Vec<String>>>) -> CopyFunction {
    let put =
        mock!(aws_sdk_s3::Client::put_object).then_output(|| PutObjectOutput::builder().build());
    let seen = subjects.clone();
    let publish = mock!(aws_sdk_sns::Client::publish)
        .match_requests(move |req| {
            seen.lock().unwrap().push(format!(
                "{}\n{}",
                req.subject().unwrap_or_default(),
                req.message().unwrap_or_default()
            ));
            true
        })
        .then_output(|| PublishOutput::builder().message_id("m").build());
    CopyFunction {
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
        primary: Rds::new(rds(primary), "us-east-1"),
        dr_regions: vec![Rds::new(rds(dr), "us-west-2")],
        limits: CopyLimits::default(),
    }
}

fn context() -> lambda_runtime::Context {
    let mut context = lambda_runtime::Context::default();
    context.request_id = "req-mock".into();
    context
}

#[tokio::test]
async fn a_source_still_creating_is_not_copied_yet() {
    let [snaps, clusters] = primary_rules(vec![source(
        "lifeboat-booking-db-2026-11-22-0200",
        "creating",
    )]);
    let [dr_snaps, dr_clusters] = empty_dr_rules();
    let copy =
        mock!(RdsClient::copy_db_snapshot).then_output(|| CopyDbSnapshotOutput::builder().build());
    let subjects = Arc::default();
    let report = function(
        &[&snaps, &clusters],
        &[&dr_snaps, &dr_clusters, &copy],
        &subjects,
    )
    .handle(scheduled(), &context())
    .await
    .expect("run");
    assert_eq!(
        copy.num_calls(),
        0,
        "never copy before the source is available"
    );
    assert!(report.results.is_empty());
    assert_eq!(report.not_copied.len(), 1);
    assert!(
        report.not_copied[0].contains("creating"),
        "{:?}",
        report.not_copied
    );
}

#[tokio::test]
async fn quota_exceeded_in_the_destination_is_a_failure_with_a_next_step() {
    let [snaps, clusters] = primary_rules(vec![source(
        "lifeboat-booking-db-2026-11-22-0200",
        "available",
    )]);
    let [dr_snaps, dr_clusters] = empty_dr_rules();
    let copy = mock!(RdsClient::copy_db_snapshot).then_error(|| {
        CopyDBSnapshotError::SnapshotQuotaExceededFault(
            SnapshotQuotaExceededFault::builder()
                .message("Cannot exceed quota of 100 manual snapshots")
                .build(),
        )
    });
    let subjects = Arc::default();
    let report = function(
        &[&snaps, &clusters],
        &[&dr_snaps, &dr_clusters, &copy],
        &subjects,
    )
    .handle(scheduled(), &context())
    .await
    .expect("run");
    let result = &report.results[0];
    assert_eq!(result.status, ItemStatus::Failed);
    assert_eq!(
        result.detail.as_deref(),
        Some(
            "manual snapshot quota exceeded in us-west-2: Cannot exceed quota of 100 manual snapshots"
        )
    );
    assert!(
        result
            .next_step
            .as_deref()
            .unwrap_or_default()
            .contains("quota in us-west-2")
    );
    assert_eq!(subjects.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_concurrent_copy_limit_leaves_the_copy_waiting_without_an_alarm() {
    let [snaps, clusters] = primary_rules(vec![source(
        "lifeboat-booking-db-2026-11-22-0200",
        "available",
    )]);
    let [dr_snaps, dr_clusters] = empty_dr_rules();
    let copy = mock!(RdsClient::copy_db_snapshot).then_http_response(|| {
        rds_error(
            400,
            "SnapshotQuotaExceeded",
            "Cannot copy more than 5 concurrent snapshots to this region",
        )
    });
    let subjects: Arc<Mutex<Vec<String>>> = Arc::default();
    let report = function(
        &[&snaps, &clusters],
        &[&dr_snaps, &dr_clusters, &copy],
        &subjects,
    )
    .handle(scheduled(), &context())
    .await
    .expect("run");
    let result = &report.results[0];
    assert_eq!(result.status, ItemStatus::Skipped, "{result:?}");
    assert!(
        result
            .next_step
            .as_deref()
            .unwrap_or_default()
            .contains("free slot")
    );
    assert_eq!(
        report.regions["us-west-2"].backlog, 1,
        "it waits in the backlog"
    );
}

#[tokio::test]
async fn throttling_outlasting_the_retries_is_reported() {
    let [snaps, clusters] = primary_rules(vec![source(
        "lifeboat-booking-db-2026-11-22-0200",
        "available",
    )]);
    let [dr_snaps, dr_clusters] = empty_dr_rules();
    let copy = mock!(RdsClient::copy_db_snapshot)
        .then_http_response(|| rds_error(400, "Throttling", "Rate exceeded"));
    let subjects: Arc<Mutex<Vec<String>>> = Arc::default();
    let report = function(
        &[&snaps, &clusters],
        &[&dr_snaps, &dr_clusters, &copy],
        &subjects,
    )
    .handle(scheduled(), &context())
    .await
    .expect("run");
    assert_eq!(copy.num_calls(), 3, "the SDK retried");
    let result = &report.results[0];
    assert_eq!(result.status, ItemStatus::Failed);
    assert_eq!(
        result.detail.as_deref(),
        Some("rds:CopyDBSnapshot in us-west-2 was throttled after retries: Rate exceeded")
    );
    assert_eq!(subjects.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_kms_access_error_names_the_key_and_the_region() {
    let [snaps, clusters] = primary_rules(vec![source(
        "lifeboat-booking-db-2026-11-22-0200",
        "available",
    )]);
    let [dr_snaps, dr_clusters] = empty_dr_rules();
    let copy = mock!(RdsClient::copy_db_snapshot)
        .match_requests(|req| req.kms_key_id() == Some("alias/lifeboat-dr"))
        .then_error(|| {
            CopyDBSnapshotError::KmsKeyNotAccessibleFault(
                KmsKeyNotAccessibleFault::builder()
                    .message("The specified KMS key is disabled")
                    .build(),
            )
        });
    let subjects: Arc<Mutex<Vec<String>>> = Arc::default();
    let report = function(
        &[&snaps, &clusters],
        &[&dr_snaps, &dr_clusters, &copy],
        &subjects,
    )
    .handle(scheduled(), &context())
    .await
    .expect("run");
    let result = &report.results[0];
    assert_eq!(result.status, ItemStatus::Failed);
    assert_eq!(
        result.detail.as_deref(),
        Some(
            "KMS key `alias/lifeboat-dr` in us-west-2 is not accessible: The specified KMS key is disabled"
        )
    );
    let alert = &subjects.lock().unwrap()[0];
    assert!(
        alert.starts_with("Lifeboat copy in us-east-1: 1 failed of 1 item(s)"),
        "{alert}"
    );
    assert!(
        alert.contains("alias/lifeboat-dr") && alert.contains("us-west-2"),
        "{alert}"
    );
}
