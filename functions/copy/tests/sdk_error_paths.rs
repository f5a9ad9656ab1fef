//! The copy handler against mocked SDK clients (aws-smithy-mocks), for what moto cannot produce: a source still
//! `creating`, RDS quota and concurrent-copy limit errors, throttling, a KMS access error.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_rds::Client as RdsClient;
use aws_sdk_rds::config::retry::RetryConfig;
use aws_sdk_rds::operation::copy_db_snapshot::{CopyDBSnapshotError, CopyDbSnapshotOutput};
use aws_sdk_rds::operation::delete_db_snapshot::DeleteDbSnapshotOutput;
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
use lifeboat::ledger::RunRecord;
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
    function_with_ledger(primary, dr, subjects, &Arc::default())
}

/// The function, collecting the ledger objects it writes in `ledger`.
fn function_with_ledger(
    primary: &[&Rule],
    dr: &[&Rule],
    subjects: &Arc<Mutex<Vec<String>>>,
    ledger: &Arc<Mutex<Vec<RunRecord>>>,
) -> CopyFunction {
    let written = ledger.clone();
    let put = mock!(aws_sdk_s3::Client::put_object)
        .match_requests(move |req| {
            if let Some(bytes) = req.body().bytes()
                && let Ok(run) = serde_json::from_slice::<RunRecord>(bytes)
            {
                written.lock().unwrap().push(run);
            }
            true
        })
        .then_output(|| PutObjectOutput::builder().build());
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
    assert_eq!(result.status, ItemStatus::Waiting, "{result:?}");
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
    assert!(
        subjects.lock().unwrap().is_empty(),
        "a copy refused for the limit is backlog, never an alert: {:?}",
        subjects.lock().unwrap()
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

const SOURCE_ID: &str = "lifeboat-booking-db-2026-11-22-0200";
const FIRST_COPY: &str = "lifeboat-booking-db-2026-11-22-0200-from-us-east-1";
const RETRY_COPY: &str = "lifeboat-booking-db-2026-11-22-0200-retry2-from-us-east-1";

/// The copy of [`SOURCE_ID`] in us-west-2 named `id`, in `status`, as this deployment made it.
fn dr_copy(id: &str, status: &str) -> DbSnapshot {
    let source = source(SOURCE_ID, "available");
    DbSnapshot::builder()
        .db_snapshot_identifier(id)
        .db_snapshot_arn(format!("arn:aws:rds:us-west-2:123456789012:snapshot:{id}"))
        .db_instance_identifier("booking-db")
        .status(status)
        .encrypted(true)
        .snapshot_type("manual")
        .snapshot_create_time(aws_smithy_types::DateTime::from_secs(1_795_313_100))
        .source_db_snapshot_identifier(format!(
            "arn:aws:rds:us-east-1:123456789012:snapshot:{SOURCE_ID}"
        ))
        .source_region("us-east-1")
        .set_tag_list(Some(
            source
                .tag_list()
                .iter()
                .cloned()
                .chain([Tag::builder()
                    .key("lifeboat:copied-from")
                    .value(format!(
                        "arn:aws:rds:us-east-1:123456789012:snapshot:{SOURCE_ID}"
                    ))
                    .build()])
                .collect(),
        ))
        .build()
}

/// A failed copy in the DR region: alerted once, deleted (intent, then result, in the ledger) and retried under
/// the second attempt's name.
async fn a_broken_copy_is_deleted_and_retried(status: &str) {
    let [snaps, clusters] = primary_rules(vec![source(SOURCE_ID, "available")]);
    let failed = dr_copy(FIRST_COPY, status);
    let dr_snaps = mock!(RdsClient::describe_db_snapshots).then_output(move || {
        DescribeDbSnapshotsOutput::builder()
            .db_snapshots(failed.clone())
            .build()
    });
    let dr_clusters = mock!(RdsClient::describe_db_cluster_snapshots)
        .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build());
    let delete = mock!(RdsClient::delete_db_snapshot)
        .match_requests(|req| req.db_snapshot_identifier() == Some(FIRST_COPY))
        .then_output(|| DeleteDbSnapshotOutput::builder().build());
    let copy = mock!(RdsClient::copy_db_snapshot)
        .match_requests(|req| req.target_db_snapshot_identifier() == Some(RETRY_COPY))
        .then_output(|| CopyDbSnapshotOutput::builder().build());
    let subjects: Arc<Mutex<Vec<String>>> = Arc::default();
    let ledger: Arc<Mutex<Vec<RunRecord>>> = Arc::default();
    let report = function_with_ledger(
        &[&snaps, &clusters],
        &[&dr_snaps, &dr_clusters, &delete, &copy],
        &subjects,
        &ledger,
    )
    .handle(scheduled(), &context())
    .await
    .expect("run");
    assert_eq!(
        delete.num_calls(),
        1,
        "{status}: the failed copy is deleted"
    );
    assert_eq!(copy.num_calls(), 1, "{status}: retried as {RETRY_COPY}");
    let failed = report
        .results
        .iter()
        .find(|r| r.resource.as_deref() == Some(FIRST_COPY))
        .expect("the failed copy is reported");
    assert_eq!(failed.status, ItemStatus::Failed);
    assert_eq!(failed.region, "us-west-2");
    let detail = failed.detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains(&format!("is `{status}`"))
            && detail.contains("deleted")
            && detail.contains(RETRY_COPY),
        "{detail}"
    );
    assert!(failed.next_step.is_some());
    let retry = report
        .results
        .iter()
        .find(|r| r.resource.as_deref() == Some(RETRY_COPY))
        .expect("the retry is reported");
    assert_eq!(retry.status, ItemStatus::Done);

    // The deletion is on record before and after it happened.
    let ledger = ledger.lock().unwrap();
    let deletions: Vec<(lifeboat::ledger::Phase, Option<String>)> = ledger
        .iter()
        .flat_map(|run| run.records.iter().map(move |r| (run.phase, r)))
        .filter(|(_, r)| r.action == "delete-failed-copy" && r.resource == FIRST_COPY)
        .map(|(phase, r)| (phase, r.outcome.clone()))
        .collect();
    assert_eq!(
        deletions,
        [
            (lifeboat::ledger::Phase::Intent, None),
            (lifeboat::ledger::Phase::Result, Some("deleted".into()))
        ],
        "{status}"
    );
    let subjects = subjects.lock().unwrap();
    assert_eq!(
        subjects.len(),
        1,
        "{status}: alerted once, in the run summary"
    );
    assert!(
        subjects[0].contains(FIRST_COPY) && subjects[0].contains(status),
        "{}",
        subjects[0]
    );
}

#[tokio::test]
async fn a_failed_copy_is_alerted_deleted_with_its_intent_on_record_and_retried() {
    a_broken_copy_is_deleted_and_retried("failed").await;
}

#[tokio::test]
async fn an_incompatible_copy_is_alerted_deleted_and_retried() {
    a_broken_copy_is_deleted_and_retried("incompatible-parameters").await;
}

#[tokio::test]
async fn another_deployments_failed_copy_is_reported_but_never_deleted() {
    let [snaps, clusters] = primary_rules(vec![source(SOURCE_ID, "available")]);
    let mut failed = dr_copy(FIRST_COPY, "failed");
    failed.tag_list = Some(
        failed
            .tag_list()
            .iter()
            .filter(|t| t.key() != Some("lifeboat:managed"))
            .cloned()
            .collect(),
    );
    let dr_snaps = mock!(RdsClient::describe_db_snapshots).then_output(move || {
        DescribeDbSnapshotsOutput::builder()
            .db_snapshots(failed.clone())
            .build()
    });
    let dr_clusters = mock!(RdsClient::describe_db_cluster_snapshots)
        .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build());
    let delete = mock!(RdsClient::delete_db_snapshot)
        .then_output(|| DeleteDbSnapshotOutput::builder().build());
    let copy =
        mock!(RdsClient::copy_db_snapshot).then_output(|| CopyDbSnapshotOutput::builder().build());
    let subjects: Arc<Mutex<Vec<String>>> = Arc::default();
    let report = function(
        &[&snaps, &clusters],
        &[&dr_snaps, &dr_clusters, &delete, &copy],
        &subjects,
    )
    .handle(scheduled(), &context())
    .await
    .expect("run");
    assert_eq!(delete.num_calls(), 0, "not lifeboat:managed: never deleted");
    let failed = report
        .results
        .iter()
        .find(|r| r.resource.as_deref() == Some(FIRST_COPY))
        .expect("reported");
    assert_eq!(failed.status, ItemStatus::Failed);
    assert!(
        failed
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains("not deleted")
    );
}

#[tokio::test]
async fn a_recovery_point_past_the_copy_deadline_is_alerted_with_its_age_and_reason() {
    let [snaps, clusters] = primary_rules(vec![source(SOURCE_ID, "available")]);
    // The copy has been in flight since the snapshot was taken; it is now 26 hours later.
    let in_flight = dr_copy(FIRST_COPY, "copying");
    let dr_snaps = mock!(RdsClient::describe_db_snapshots).then_output(move || {
        DescribeDbSnapshotsOutput::builder()
            .db_snapshots(in_flight.clone())
            .build()
    });
    let dr_clusters = mock!(RdsClient::describe_db_cluster_snapshots)
        .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build());
    let copy =
        mock!(RdsClient::copy_db_snapshot).then_output(|| CopyDbSnapshotOutput::builder().build());
    let run_at = |time: &str| {
        let subjects: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut function = function(
            &[&snaps, &clusters],
            &[&dr_snaps, &dr_clusters, &copy],
            &subjects,
        );
        function.services.clock = Arc::new(FixedClock(time.parse().expect("time")));
        (function, subjects)
    };

    // 23 hours after the snapshot: in flight, not late, nothing to alert.
    let (on_time, subjects) = run_at("2026-11-23T01:00:00Z");
    let report = on_time.handle(scheduled(), &context()).await.expect("run");
    assert!(
        report.late.is_empty() && report.results.is_empty(),
        "{report:?}"
    );
    assert!(subjects.lock().unwrap().is_empty());

    // The hourly run after it became late (25 hours after the snapshot): alerted with its age and why.
    let (late, subjects) = run_at("2026-11-23T03:00:00Z");
    let report = late.handle(scheduled(), &context()).await.expect("run");
    assert_eq!(copy.num_calls(), 0, "the copy in flight is the copy");
    let result = &report.results[0];
    assert_eq!(result.status, ItemStatus::Failed);
    assert_eq!(result.action, "copy-deadline");
    let detail = result.detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("25h00m")
            && detail.contains("copy deadline 24h00m")
            && detail.contains("`copying`"),
        "{detail}"
    );
    assert_eq!(report.late.len(), 1);
    assert_eq!(subjects.lock().unwrap().len(), 1);

    // The next hourly runs list it as late but do not repeat the alert; a day later they remind once.
    let (next_hour, subjects) = run_at("2026-11-23T04:00:00Z");
    let report = next_hour
        .handle(scheduled(), &context())
        .await
        .expect("run");
    assert_eq!(report.late.len(), 1, "still listed");
    assert!(report.results.is_empty(), "not alerted again: {report:?}");
    assert!(subjects.lock().unwrap().is_empty());
    let (a_day_later, subjects) = run_at("2026-11-24T03:00:00Z");
    let report = a_day_later
        .handle(scheduled(), &context())
        .await
        .expect("run");
    assert_eq!(report.results.len(), 1, "reminded daily: {report:?}");
    assert_eq!(subjects.lock().unwrap().len(), 1);
}
