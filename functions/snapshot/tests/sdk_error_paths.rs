//! The snapshot handler against mocked SDK clients (aws-smithy-mocks), for what moto cannot produce: databases in
//! `creating`, RDS quota faults, throttling that outlasts the retries, missing permissions, a listing failure.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_rds::Client as RdsClient;
use aws_sdk_rds::config::retry::RetryConfig;
use aws_sdk_rds::operation::create_db_snapshot::{CreateDBSnapshotError, CreateDbSnapshotOutput};
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::types::error::SnapshotQuotaExceededFault;
use aws_sdk_rds::types::{DbInstance, DbSnapshot, Tag};
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_sns::operation::publish::PublishOutput;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use serde_json::json;

use lifeboat::aws::rds::Rds;
use lifeboat::clock::FixedClock;
use lifeboat::ledger::Ledger;
use lifeboat::notify::Notifier;
use lifeboat::policy::Policy;
use lifeboat::report::ItemStatus;
use lifeboat::services::Services;
use lifeboat_snapshot::SnapshotFunction;

const POLICY: &str = "version: 1\nname: mocked\nplans:\n  - name: all\n    select:\n      patterns: ['*']\n    retention: {keep_daily: 7}\n    objectives: {rpo: 1h, rto: 4h}\n";

fn scheduled() -> serde_json::Value {
    json!({"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-21T02:00:00Z", "region": "us-east-1", "resources": [], "detail": {}})
}

fn instance(id: &str, status: &str) -> DbInstance {
    DbInstance::builder()
        .db_instance_identifier(id)
        .db_instance_arn(format!("arn:aws:rds:us-east-1:123456789012:db:{id}"))
        .engine("postgres")
        .db_instance_status(status)
        .storage_encrypted(true)
        .tag_list(Tag::builder().key("team").value("bookings").build())
        .build()
}

/// The region's databases, and no snapshot yet under the identifiers a scheduled run looks up.
fn fleet(instances: Vec<DbInstance>) -> [Rule; 4] {
    [
        mock!(RdsClient::describe_db_instances).then_output(move || {
            DescribeDbInstancesOutput::builder()
                .set_db_instances(Some(instances.clone()))
                .build()
        }),
        mock!(RdsClient::describe_db_clusters)
            .then_output(|| DescribeDbClustersOutput::builder().build()),
        mock!(RdsClient::describe_db_snapshots)
            .then_output(|| DescribeDbSnapshotsOutput::builder().build()),
        mock!(RdsClient::describe_db_cluster_snapshots)
            .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build()),
    ]
}

/// A scheduled event at `time` (an hourly tick of the snapshot schedule).
fn scheduled_at(time: &str) -> serde_json::Value {
    let mut event = scheduled();
    event["time"] = json!(time);
    event
}

/// A manual request for `booking-db`.
fn manual() -> serde_json::Value {
    json!({"action": "snapshot", "databases": ["booking-db"], "idempotency_key": "k"})
}

/// An RDS Query-protocol error response.
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

/// What the mocked S3 and SNS saw.
#[derive(Default, Clone)]
struct Seen {
    ledger_keys: Arc<Mutex<Vec<String>>>,
    subjects: Arc<Mutex<Vec<String>>>,
    messages: Arc<Mutex<Vec<String>>>,
}

fn function(rds_rules: &[&Rule], seen: &Seen) -> SnapshotFunction {
    let rds = mock_client!(aws_sdk_rds, RuleMode::MatchAny, rds_rules, |c| c
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1))
        ));
    let keys = seen.ledger_keys.clone();
    let put = mock!(aws_sdk_s3::Client::put_object)
        .match_requests(move |req| {
            keys.lock()
                .unwrap()
                .push(req.key().unwrap_or_default().to_string());
            true
        })
        .then_output(|| PutObjectOutput::builder().build());
    let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&put]);
    let (subjects, messages) = (seen.subjects.clone(), seen.messages.clone());
    let publish = mock!(aws_sdk_sns::Client::publish)
        .match_requests(move |req| {
            subjects
                .lock()
                .unwrap()
                .push(req.subject().unwrap_or_default().to_string());
            messages
                .lock()
                .unwrap()
                .push(req.message().unwrap_or_default().to_string());
            true
        })
        .then_output(|| PublishOutput::builder().message_id("msg-1").build());
    let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&publish]);
    SnapshotFunction {
        services: Services {
            policy: Policy::from_yaml(POLICY).expect("policy"),
            deployment: lifeboat::ownership::Deployment::new("lifeboat", "us-east-1")
                .expect("deployment"),
            ledger: Ledger::new(s3, "ledger-bucket", "us-east-1"),
            notifier: Notifier::new(
                sns,
                "arn:aws:sns:us-east-1:123456789012:lifeboat",
                "us-east-1",
            ),
            clock: Arc::new(FixedClock("2026-11-21T02:00:03Z".parse().expect("time"))),
            concurrency: 4,
        },
        rds: Rds::new(rds, "us-east-1"),
    }
}

fn context() -> lambda_runtime::Context {
    let mut context = lambda_runtime::Context::default();
    context.request_id = "req-mock".into();
    context
}

#[tokio::test]
async fn a_database_still_creating_waits_for_the_hourly_catch_up_and_is_reported_missed_once() {
    let [instances, clusters, snapshots, cluster_snapshots] = fleet(vec![
        instance("booking-db", "available"),
        instance("new-db", "creating"),
    ]);
    let create = mock!(RdsClient::create_db_snapshot)
        .match_requests(|req| req.db_instance_identifier() == Some("booking-db"))
        .then_output(|| {
            CreateDbSnapshotOutput::builder()
                .db_snapshot(
                    DbSnapshot::builder()
                        .db_snapshot_arn("arn:aws:rds:us-east-1:123456789012:snapshot:s")
                        .build(),
                )
                .build()
        });
    let seen = Seen::default();
    let rules = [
        &instances,
        &clusters,
        &snapshots,
        &cluster_snapshots,
        &create,
    ];
    let report = function(&rules, &seen)
        .handle(scheduled(), &context())
        .await
        .expect("run");

    assert_eq!(
        create.num_calls(),
        1,
        "no snapshot is requested of a database in `creating`"
    );
    let new_db = report
        .results
        .iter()
        .find(|r| r.database == "new-db")
        .expect("new-db result");
    assert_eq!(
        new_db.status,
        ItemStatus::Waiting,
        "the hourly runs try again"
    );
    assert!(
        new_db
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("`creating`")
    );
    assert_eq!(
        seen.ledger_keys.lock().unwrap().len(),
        1,
        "the created snapshot is in the ledger"
    );
    assert!(
        seen.subjects.lock().unwrap().is_empty(),
        "no alert for what the next hourly run retries"
    );

    // The start window (8 hours) closes with new-db still creating: reported missed, once.
    let closed = function(&rules, &seen)
        .handle(scheduled_at("2026-11-21T10:00:00Z"), &context())
        .await
        .expect("run");
    let missed = closed
        .results
        .iter()
        .find(|r| r.database == "new-db")
        .expect("new-db result");
    assert_eq!(missed.status, ItemStatus::Failed);
    assert!(
        missed
            .detail
            .as_deref()
            .unwrap_or_default()
            .starts_with("missed: no recovery point for 2026-11-21T02:00:00Z"),
        "{missed:?}"
    );
    assert_eq!(seen.subjects.lock().unwrap().len(), 1);
    let later = function(&rules, &seen)
        .handle(scheduled_at("2026-11-21T11:00:00Z"), &context())
        .await
        .expect("run");
    assert!(later.results.is_empty(), "{later:?}");
    assert_eq!(seen.subjects.lock().unwrap().len(), 1, "reported once");
}

#[tokio::test]
async fn state_change_between_listing_and_snapshot_waits_for_the_next_hourly_run() {
    let [instances, clusters, snapshots, cluster_snapshots] =
        fleet(vec![instance("booking-db", "available")]);
    let create = mock!(RdsClient::create_db_snapshot).then_http_response(|| {
        rds_error(
            400,
            "InvalidDBInstanceState",
            "DB instance booking-db is not in available state (backing-up)",
        )
    });
    let seen = Seen::default();
    let report = function(
        &[
            &instances,
            &clusters,
            &snapshots,
            &cluster_snapshots,
            &create,
        ],
        &seen,
    )
    .handle(scheduled(), &context())
    .await
    .expect("run");
    assert_eq!(
        report.results[0].status,
        ItemStatus::Waiting,
        "retried hourly"
    );
    assert!(
        report.results[0]
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("backing-up")
    );
    assert!(
        seen.ledger_keys.lock().unwrap().is_empty(),
        "nothing changed"
    );
}

#[tokio::test]
async fn snapshot_quota_exceeded_is_a_failure_with_a_next_step() {
    let [instances, clusters, snapshots, cluster_snapshots] = fleet(vec![
        instance("booking-db", "available"),
        instance("billing-db", "available"),
    ]);
    let create = mock!(RdsClient::create_db_snapshot).then_error(|| {
        CreateDBSnapshotError::SnapshotQuotaExceededFault(
            SnapshotQuotaExceededFault::builder()
                .message("Cannot create more than 100 manual snapshots")
                .build(),
        )
    });
    let seen = Seen::default();
    let report = function(
        &[
            &instances,
            &clusters,
            &snapshots,
            &cluster_snapshots,
            &create,
        ],
        &seen,
    )
    .handle(scheduled(), &context())
    .await
    .expect("run");

    assert_eq!(report.counts.failed, 2);
    for result in &report.results {
        assert_eq!(result.status, ItemStatus::Failed);
        assert_eq!(
            result.detail.as_deref(),
            Some("manual snapshot quota exceeded: Cannot create more than 100 manual snapshots")
        );
    }
    let keys = seen.ledger_keys.lock().unwrap();
    assert_eq!(
        keys.len(),
        1,
        "failed attempts are audited, in one result object for the run"
    );
    assert!(keys[0].contains("-snapshot-result-"), "{keys:?}");
    drop(keys);
    let messages = seen.messages.lock().unwrap();
    assert_eq!(
        messages.len(),
        1,
        "one summary, not one message per database"
    );
    assert!(
        messages[0].contains("next step: raise the RDS manual snapshot quota in Service Quotas")
    );
}

#[tokio::test]
async fn throttling_is_retried_and_then_reported_not_swallowed() {
    let [instances, clusters, snapshots, cluster_snapshots] =
        fleet(vec![instance("booking-db", "available")]);
    let create = mock!(RdsClient::create_db_snapshot)
        .then_http_response(|| rds_error(400, "Throttling", "Rate exceeded"));
    let seen = Seen::default();
    let rules = [
        &instances,
        &clusters,
        &snapshots,
        &cluster_snapshots,
        &create,
    ];
    let scheduled_run = function(&rules, &seen)
        .handle(scheduled(), &context())
        .await
        .expect("run");
    assert_eq!(
        scheduled_run.results[0].status,
        ItemStatus::Waiting,
        "a scheduled run leaves it to the next hourly run"
    );
    assert!(seen.subjects.lock().unwrap().is_empty());

    // An operator's request has no hourly retry: throttling that outlasts the retries is a failure.
    let report = function(&rules, &seen)
        .handle(manual(), &context())
        .await
        .expect("run");
    assert_eq!(
        create.num_calls(),
        6,
        "the SDK retried up to its attempt limit (3 attempts), in each run"
    );
    let result = &report.results[0];
    assert_eq!(result.status, ItemStatus::Failed);
    assert_eq!(
        result.detail.as_deref(),
        Some("rds:CreateDBSnapshot in us-east-1 was throttled after retries: Rate exceeded")
    );
    assert!(
        result
            .next_step
            .as_deref()
            .unwrap_or_default()
            .contains("transient")
    );
    assert_eq!(seen.subjects.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn throttling_that_clears_within_the_retries_succeeds() {
    let [instances, clusters, snapshots, cluster_snapshots] =
        fleet(vec![instance("booking-db", "available")]);
    let create = mock!(RdsClient::create_db_snapshot)
        .sequence()
        .http_response(|| rds_error(400, "Throttling", "Rate exceeded"))
        .output(|| CreateDbSnapshotOutput::builder().build())
        .build();
    let seen = Seen::default();
    let report = function(
        &[
            &instances,
            &clusters,
            &snapshots,
            &cluster_snapshots,
            &create,
        ],
        &seen,
    )
    .handle(scheduled(), &context())
    .await
    .expect("run");
    assert_eq!(create.num_calls(), 2);
    assert_eq!(report.results[0].status, ItemStatus::Done);
    assert!(
        seen.subjects.lock().unwrap().is_empty(),
        "no alert for a healthy run"
    );
}

#[tokio::test]
async fn missing_permission_names_the_action_to_grant() {
    let [instances, clusters, snapshots, cluster_snapshots] =
        fleet(vec![instance("booking-db", "available")]);
    let create = mock!(RdsClient::create_db_snapshot).then_http_response(|| {
        rds_error(
            403,
            "AccessDenied",
            "User is not authorized to perform: rds:CreateDBSnapshot",
        )
    });
    let seen = Seen::default();
    let report = function(
        &[
            &instances,
            &clusters,
            &snapshots,
            &cluster_snapshots,
            &create,
        ],
        &seen,
    )
    .handle(scheduled(), &context())
    .await
    .expect("run");
    let result = &report.results[0];
    assert_eq!(result.status, ItemStatus::Failed);
    assert!(
        result
            .detail
            .as_deref()
            .unwrap_or_default()
            .starts_with("rds:CreateDBSnapshot in us-east-1 was denied")
    );
    assert_eq!(
        result.next_step.as_deref(),
        Some(
            "add rds:CreateDBSnapshot to the function's IAM role (infra/template.yaml) and redeploy"
        )
    );
}

#[tokio::test]
async fn listing_failure_fails_the_run_as_retryable_and_changes_nothing() {
    let instances = mock!(RdsClient::describe_db_instances)
        .then_http_response(|| rds_error(400, "Throttling", "Rate exceeded"));
    let create = mock!(RdsClient::create_db_snapshot)
        .then_output(|| CreateDbSnapshotOutput::builder().build());
    let seen = Seen::default();
    let err = function(&[&instances, &create], &seen)
        .handle(scheduled(), &context())
        .await
        .expect_err("must fail");
    assert_eq!(err.error_type(), "Lifeboat.Retryable");
    assert!(err.to_string().contains("rds:DescribeDBInstances"), "{err}");
    assert_eq!(create.num_calls(), 0);
    assert!(seen.ledger_keys.lock().unwrap().is_empty());
}
