//! The monitor handler against mocked SDK clients (aws-smithy-mocks), for what moto cannot produce: CloudWatch's
//! free storage (moto does not speak its protocol), automated backups replicated to a DR region (moto does not
//! replicate), a snapshot stuck in `creating` with its progress, and a concurrent run that wrote the alert state
//! first (S3 answers 412 to the conditional write: this run announces nothing).

use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
use aws_sdk_cloudwatch::types::MetricDataResult;
use aws_sdk_rds::Client as RdsClient;
use aws_sdk_rds::operation::describe_account_attributes::DescribeAccountAttributesOutput;
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instance_automated_backups::DescribeDbInstanceAutomatedBackupsOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::types::{
    AccountQuota, DbInstance, DbInstanceAutomatedBackup, DbSnapshot, RestoreWindow, Tag,
};
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::error::NoSuchKey;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use chrono::{DateTime, Utc};
use serde_json::json;

use lifeboat::aws::cloudwatch::CloudWatch;
use lifeboat::aws::rds::Rds;
use lifeboat::clock::FixedClock;
use lifeboat::ledger::Ledger;
use lifeboat::monitor::{ConditionKind, RpoStatus, Source};
use lifeboat::notify::Notifier;
use lifeboat::ownership::Deployment;
use lifeboat::policy::Policy;
use lifeboat::services::Services;
use lifeboat_monitor::{MonitorFunction, STATE_KEY};

const POLICY: &str = "version: 1\nname: mocked\nplans:\n  - name: all\n    select:\n      patterns: ['*']\n    retention: {keep_daily: 7}\n    copies:\n      - {region: us-west-2, kms_key_id: alias/lifeboat-dr, retain_days: 90}\n    objectives: {rpo: 1h, rto: 4h}\n";

const DB_ARN: &str = "arn:aws:rds:us-east-1:123456789012:db:booking-db";

fn now() -> DateTime<Utc> {
    "2026-11-22T03:00:00Z".parse().unwrap()
}

fn time(text: &str) -> aws_smithy_types::DateTime {
    let t: DateTime<Utc> = text.parse().unwrap();
    aws_smithy_types::DateTime::from_secs(t.timestamp())
}

fn scheduled() -> serde_json::Value {
    json!({"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-22T03:00:00Z", "region": "us-east-1", "resources": [], "detail": {}})
}

/// A managed DB snapshot of `booking-db` in us-east-1.
fn snapshot(id: &str, status: &str, created: &str, progress: i32) -> DbSnapshot {
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    DbSnapshot::builder()
        .db_snapshot_identifier(id)
        .db_snapshot_arn(format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}"))
        .db_instance_identifier("booking-db")
        .status(status)
        .encrypted(true)
        .snapshot_type("manual")
        .percent_progress(progress)
        .snapshot_create_time(time(created))
        .set_tag_list(Some(vec![
            tag("lifeboat:managed", "true"),
            tag("lifeboat:deployment", "lifeboat"),
            tag("lifeboat:home-region", "us-east-1"),
            tag("lifeboat:source", "booking-db"),
            tag("lifeboat:plan", "all"),
        ]))
        .build()
}

/// A managed DB snapshot of `booking-db` in us-east-1 as RDS describes one it has not finished: no
/// `SnapshotCreateTime` (nor `PercentProgress`).
fn untimed_snapshot(id: &str, status: &str) -> DbSnapshot {
    let timed = snapshot(id, status, "2026-11-22T00:00:00Z", 0);
    DbSnapshot::builder()
        .db_snapshot_identifier(id)
        .db_snapshot_arn(timed.db_snapshot_arn().unwrap_or_default())
        .db_instance_identifier("booking-db")
        .status(status)
        .encrypted(true)
        .snapshot_type("manual")
        .set_tag_list(Some(timed.tag_list().to_vec()))
        .build()
}

/// S3 that keeps the state object from run to run (each run reads what the previous one wrote), with an empty
/// ledger; reports are accepted and dropped.
fn stateful_s3(stored: &Arc<Mutex<Option<Vec<u8>>>>) -> aws_sdk_s3::Client {
    let missing = stored.clone();
    let get_missing = mock!(aws_sdk_s3::Client::get_object)
        .match_requests(move |_| missing.lock().unwrap().is_none())
        .then_error(|| GetObjectError::NoSuchKey(NoSuchKey::builder().build()));
    let present = stored.clone();
    let get = mock!(aws_sdk_s3::Client::get_object).then_output(move || {
        let body = present.lock().unwrap().clone().unwrap_or_default();
        GetObjectOutput::builder()
            .e_tag("\"s\"")
            .body(ByteStream::from(body))
            .build()
    });
    let list = mock!(aws_sdk_s3::Client::list_objects_v2)
        .then_output(|| ListObjectsV2Output::builder().build());
    let written = stored.clone();
    let put_state = mock!(aws_sdk_s3::Client::put_object)
        .match_requests(move |req| {
            if req.key() != Some(STATE_KEY) {
                return false;
            }
            *written.lock().unwrap() = Some(req.body().bytes().expect("in memory").to_vec());
            true
        })
        .then_output(|| PutObjectOutput::builder().e_tag("\"s\"").build());
    let other_put = mock!(aws_sdk_s3::Client::put_object)
        .then_output(|| PutObjectOutput::builder().e_tag("\"e\"").build());
    mock_client!(
        aws_sdk_s3,
        RuleMode::MatchAny,
        [&get_missing, &get, &list, &put_state, &other_put]
    )
}

/// The state `stored` holds, as JSON.
fn stored_state(stored: &Arc<Mutex<Option<Vec<u8>>>>) -> serde_json::Value {
    serde_json::from_slice(stored.lock().unwrap().as_deref().expect("a state")).expect("JSON")
}

/// RDS in one region: `booking-db` (in the primary region only), `snapshots`, `replicated` automated backups.
fn rds(
    primary: bool,
    snapshots: Vec<DbSnapshot>,
    replicated: Vec<DbInstanceAutomatedBackup>,
) -> Rds {
    rds_answering(primary, snapshots, Some(replicated))
}

/// [`rds`] whose `DescribeDBInstanceAutomatedBackups` is refused (403) when `replicated` is `None`.
fn rds_answering(
    primary: bool,
    snapshots: Vec<DbSnapshot>,
    replicated: Option<Vec<DbInstanceAutomatedBackup>>,
) -> Rds {
    let instances = mock!(RdsClient::describe_db_instances).then_output(move || {
        let db = DbInstance::builder()
            .db_instance_identifier("booking-db")
            .db_instance_arn(DB_ARN)
            .engine("postgres")
            .db_instance_status("available")
            .storage_encrypted(true)
            .allocated_storage(100)
            .backup_retention_period(7)
            .latest_restorable_time(time("2026-11-22T02:55:00Z"))
            .build();
        DescribeDbInstancesOutput::builder()
            .set_db_instances(Some(if primary { vec![db] } else { Vec::new() }))
            .build()
    });
    let clusters = mock!(RdsClient::describe_db_clusters)
        .then_output(|| DescribeDbClustersOutput::builder().build());
    let snaps = mock!(RdsClient::describe_db_snapshots).then_output(move || {
        DescribeDbSnapshotsOutput::builder()
            .set_db_snapshots(Some(snapshots.clone()))
            .build()
    });
    let cluster_snaps = mock!(RdsClient::describe_db_cluster_snapshots)
        .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build());
    let backups = match replicated {
        Some(replicated) => mock!(RdsClient::describe_db_instance_automated_backups).then_output(
            move || {
                DescribeDbInstanceAutomatedBackupsOutput::builder()
                    .set_db_instance_automated_backups(Some(replicated.clone()))
                    .build()
            },
        ),
        None => mock!(RdsClient::describe_db_instance_automated_backups).then_http_response(|| {
            HttpResponse::new(
                StatusCode::try_from(403).unwrap(),
                SdkBody::from(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>denied</Message></Error></ErrorResponse>",
                ),
            )
        }),
    };
    let quotas = mock!(RdsClient::describe_account_attributes).then_output(|| {
        DescribeAccountAttributesOutput::builder()
            .account_quotas(
                AccountQuota::builder()
                    .account_quota_name("ManualSnapshots")
                    .used(10)
                    .max(100)
                    .build(),
            )
            .build()
    });
    let region = if primary { "us-east-1" } else { "us-west-2" };
    Rds::new(
        mock_client!(
            aws_sdk_rds,
            RuleMode::MatchAny,
            [
                &instances,
                &clusters,
                &snaps,
                &cluster_snaps,
                &backups,
                &quotas
            ]
        ),
        region,
    )
}

/// CloudWatch answering `free_gib` GiB free for the first instance asked about.
fn cloudwatch(free_gib: f64) -> CloudWatch {
    let rule = mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_output(move || {
        GetMetricDataOutput::builder()
            .metric_data_results(
                MetricDataResult::builder()
                    .id("m0")
                    .values(free_gib * f64::from(1u32 << 30))
                    .values(1.0)
                    .build(),
            )
            .build()
    });
    CloudWatch::new(
        mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]),
        "us-east-1",
    )
}

/// What the mocked S3 and SNS saw.
#[derive(Default, Clone)]
struct Seen {
    puts: Arc<Mutex<Vec<String>>>,
    /// `If-Match` of each state write (`None`: written with `If-None-Match`).
    state_if_match: Arc<Mutex<Vec<Option<String>>>>,
    published: Arc<Mutex<Vec<String>>>,
}

/// S3 with no state yet and an empty ledger; the state write answers `state_status` (200 or 412).
fn s3(seen: &Seen, state_status: u16) -> aws_sdk_s3::Client {
    let get = mock!(aws_sdk_s3::Client::get_object)
        .then_error(|| GetObjectError::NoSuchKey(NoSuchKey::builder().build()));
    let list = mock!(aws_sdk_s3::Client::list_objects_v2)
        .then_output(|| ListObjectsV2Output::builder().build());
    let puts = seen.puts.clone();
    let if_match = seen.state_if_match.clone();
    let state_put = mock!(aws_sdk_s3::Client::put_object)
        .match_requests(move |req| {
            puts.lock()
                .unwrap()
                .push(req.key().unwrap_or_default().to_string());
            if req.key() == Some(STATE_KEY) {
                if_match.lock().unwrap().push(req.if_match().map(str::to_string));
            }
            req.key() == Some(STATE_KEY)
        })
        .then_http_response(move || {
            let mut response = HttpResponse::new(
                StatusCode::try_from(state_status).unwrap(),
                SdkBody::from(if state_status == 200 {
                    String::new()
                } else {
                    "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>".to_string()
                }),
            );
            response.headers_mut().insert("ETag", "\"s1\"");
            response
        });
    let other_put = mock!(aws_sdk_s3::Client::put_object)
        .then_output(|| PutObjectOutput::builder().e_tag("\"e\"").build());
    mock_client!(
        aws_sdk_s3,
        RuleMode::MatchAny,
        [&get, &list, &state_put, &other_put]
    )
}

fn function(
    primary: Rds,
    dr: Rds,
    cloudwatch: CloudWatch,
    seen: &Seen,
    state_status: u16,
) -> MonitorFunction {
    function_publishing(primary, dr, cloudwatch, seen, state_status, 200)
}

/// [`function`] whose SNS publish answers `sns_status`.
fn function_publishing(
    primary: Rds,
    dr: Rds,
    cloudwatch: CloudWatch,
    seen: &Seen,
    state_status: u16,
    sns_status: u16,
) -> MonitorFunction {
    let s3 = s3(seen, state_status);
    function_with(primary, dr, cloudwatch, s3, seen, sns_status, now())
}

/// The monitor with `s3`, SNS answering `sns_status`, and the clock at `at`.
fn function_with(
    primary: Rds,
    dr: Rds,
    cloudwatch: CloudWatch,
    s3: aws_sdk_s3::Client,
    seen: &Seen,
    sns_status: u16,
    at: DateTime<Utc>,
) -> MonitorFunction {
    let published = seen.published.clone();
    let publish = mock!(aws_sdk_sns::Client::publish)
        .match_requests(move |req| {
            published.lock().unwrap().push(format!(
                "{}\n{}",
                req.subject().unwrap_or_default(),
                req.message().unwrap_or_default()
            ));
            true
        })
        .then_http_response(move || {
            HttpResponse::new(
                StatusCode::try_from(sns_status).unwrap(),
                SdkBody::from(if sns_status == 200 {
                    "<PublishResponse><PublishResult><MessageId>m-1</MessageId></PublishResult></PublishResponse>"
                } else {
                    "<ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code><Message>denied</Message></Error></ErrorResponse>"
                }),
            )
        });
    let sns = mock_client!(aws_sdk_sns, RuleMode::MatchAny, [&publish]);
    MonitorFunction {
        services: Services {
            policy: Policy::from_yaml(POLICY).unwrap(),
            deployment: Deployment::new("lifeboat", "us-east-1").unwrap(),
            ledger: Ledger::new(s3.clone(), "ledger", "us-east-1"),
            notifier: Notifier::new(
                sns,
                "arn:aws:sns:us-east-1:123456789012:alerts",
                "us-east-1",
            ),
            clock: Arc::new(FixedClock(at)),
            concurrency: 4,
        },
        primary,
        dr_regions: vec![dr],
        cloudwatch,
        s3,
        reports_bucket: "reports".into(),
    }
}

/// Automated backups of booking-db replicated to us-west-2.
fn replicated(latest: &str) -> DbInstanceAutomatedBackup {
    DbInstanceAutomatedBackup::builder()
        .db_instance_arn(DB_ARN)
        .db_instance_identifier("booking-db")
        .region("us-east-1")
        .status("replicating")
        .backup_retention_period(7)
        .restore_window(
            RestoreWindow::builder()
                .earliest_time(time("2026-11-15T03:00:00Z"))
                .latest_time(time(latest))
                .build(),
        )
        .build()
}

#[tokio::test]
async fn storage_replication_and_a_stuck_snapshot_are_measured_and_alerted_once() {
    let seen = Seen::default();
    let primary = rds(
        true,
        vec![
            // Creating for 45 minutes, 40 % done: longer than the plan's 30 minutes.
            snapshot(
                "lifeboat-booking-db-2026-11-22-0215",
                "creating",
                "2026-11-22T02:15:00Z",
                40,
            ),
            snapshot(
                "lifeboat-booking-db-2026-11-21-0200",
                "available",
                "2026-11-21T02:00:00Z",
                100,
            ),
        ],
        Vec::new(),
    );
    // No copy in us-west-2, but replicated automated backups restorable to 02:50.
    let dr = rds(false, Vec::new(), vec![replicated("2026-11-22T02:50:00Z")]);
    let report = function(primary, dr, cloudwatch(8.0), &seen, 200)
        .handle(scheduled(), &lambda_runtime::Context::default())
        .await
        .expect("run");
    assert!(report.run_errors.is_empty(), "{:?}", report.run_errors);
    let db = &report.assessment.databases[0];
    let west = db
        .regions
        .iter()
        .find(|r| r.region == "us-west-2")
        .expect("DR region");
    let best = west
        .best()
        .expect("replicated backups are a recovery point");
    assert_eq!(
        (best.source, best.rpo_seconds),
        (Source::ReplicatedBackups, 600)
    );
    assert_eq!(
        db.point_in_time.replication[0]
            .present
            .as_ref()
            .map(|r| r.retention_days),
        Some(7)
    );
    let home = &db.regions[0];
    assert_eq!(
        home.best().map(|b| b.source),
        Some(Source::PointInTime),
        "LatestRestorableTime, 5 minutes"
    );
    // Storage: 8 GiB free of 100 GiB is 92 % used.
    assert_eq!(db.storage.map(|s| s.free_bytes), Some(8 << 30));
    let conditions: Vec<(ConditionKind, &str)> = report
        .assessment
        .conditions
        .iter()
        .map(|c| (c.key.kind, c.message.as_str()))
        .collect();
    let stuck = conditions
        .iter()
        .find(|(k, _)| *k == ConditionKind::BackupTooLong)
        .expect("the stuck snapshot is alerted");
    assert!(
        stuck.1.contains("45m") && stuck.1.contains("40 % done"),
        "{}",
        stuck.1
    );
    let storage = conditions
        .iter()
        .find(|(k, _)| *k == ConditionKind::StorageHigh)
        .expect("storage above 80 %");
    assert!(storage.1.contains("92 %"), "{}", storage.1);
    let published = seen.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1, "one message for the run");
    assert!(
        published[0].contains("40 % done") && published[0].contains("92 %"),
        "{}",
        published[0]
    );
    let puts = seen.puts.lock().unwrap().clone();
    assert!(puts.contains(&STATE_KEY.to_string()));
    assert!(puts.contains(&"reports/posture.html".to_string()));
    assert!(puts.contains(&"reports/2026/11/22/posture.html".to_string()));
}

#[tokio::test]
async fn a_run_that_loses_the_state_race_announces_nothing() {
    let seen = Seen::default();
    let primary = rds(true, Vec::new(), Vec::new());
    let dr = rds(false, Vec::new(), Vec::new());
    let report = function(primary, dr, cloudwatch(50.0), &seen, 412)
        .handle(scheduled(), &lambda_runtime::Context::default())
        .await
        .expect("run");
    assert!(
        report.announced.opened > 0,
        "conditions are open (no recovery point at all)"
    );
    assert!(
        seen.published.lock().unwrap().is_empty(),
        "the other run announced"
    );
    assert_eq!(report.notification, None);
    assert!(
        report
            .run_errors
            .iter()
            .any(|e| e.contains("another monitor run")),
        "{:?}",
        report.run_errors
    );
    assert!(
        seen.puts
            .lock()
            .unwrap()
            .contains(&"reports/posture.json".to_string()),
        "the report is still written"
    );
}

#[tokio::test]
async fn a_storage_read_that_fails_is_a_run_error_not_a_failed_run() {
    let seen = Seen::default();
    let rule = mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_http_response(|| {
        HttpResponse::new(StatusCode::try_from(403).unwrap(), SdkBody::from("{}"))
    });
    let cloudwatch = CloudWatch::new(
        mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]),
        "us-east-1",
    );
    let report = function(
        rds(true, Vec::new(), Vec::new()),
        rds(false, Vec::new(), Vec::new()),
        cloudwatch,
        &seen,
        200,
    )
    .handle(scheduled(), &lambda_runtime::Context::default())
    .await
    .expect("run");
    assert!(
        report
            .run_errors
            .iter()
            .any(|e| e.contains("database storage unknown")
                && e.contains("cloudwatch:GetMetricData")),
        "{:?}",
        report.run_errors
    );
    assert!(report.assessment.databases[0].storage.is_none());
}

#[tokio::test]
async fn an_announcement_that_fails_puts_the_alert_state_back_for_the_next_run() {
    let seen = Seen::default();
    let report = function_publishing(
        rds(true, Vec::new(), Vec::new()),
        rds(false, Vec::new(), Vec::new()),
        cloudwatch(50.0),
        &seen,
        200,
        403,
    )
    .handle(scheduled(), &lambda_runtime::Context::default())
    .await
    .expect("run");
    assert_eq!(report.notification, None);
    assert!(
        report
            .run_errors
            .iter()
            .any(|e| e.contains("announcement not sent")),
        "{:?}",
        report.run_errors
    );
    assert_eq!(
        *seen.state_if_match.lock().unwrap(),
        [None, Some("\"s1\"".to_string())],
        "written new, then the previous alert state put back over this run's own write only"
    );
}

/// RDS gives a snapshot no `SnapshotCreateTime` until it is done (the adapter dates it `MAX_UTC`): the monitor keeps
/// when it first saw each one `creating` in its state, so a snapshot stuck in `creating` opens "backup too long" once
/// it has been seen so for longer than the plan's 30 minutes, and is forgotten once it is available.
#[tokio::test]
async fn a_snapshot_creating_without_a_create_time_is_timed_across_runs_by_the_state() {
    let seen = Seen::default();
    let stored = Arc::new(Mutex::new(None));
    let id = "lifeboat-booking-db-2026-11-22-0300";
    let run = |newest: DbSnapshot, at: &'static str| {
        let (seen, stored) = (seen.clone(), stored.clone());
        async move {
            let primary = rds(
                true,
                vec![
                    newest,
                    snapshot(
                        "lifeboat-booking-db-2026-11-22-0200",
                        "available",
                        "2026-11-22T02:00:00Z",
                        100,
                    ),
                ],
                Vec::new(),
            );
            let dr = rds(false, Vec::new(), vec![replicated("2026-11-22T02:50:00Z")]);
            function_with(
                primary,
                dr,
                cloudwatch(50.0),
                stateful_s3(&stored),
                &seen,
                200,
                at.parse().unwrap(),
            )
            .handle(scheduled(), &lambda_runtime::Context::default())
            .await
            .expect("run")
        }
    };
    let too_long = |report: &lifeboat_monitor::MonitorReport| {
        report
            .assessment
            .conditions
            .iter()
            .find(|c| c.key.kind == ConditionKind::BackupTooLong)
            .map(|c| c.message.clone())
    };
    let first = run(untimed_snapshot(id, "creating"), "2026-11-22T03:00:00Z").await;
    assert!(first.run_errors.is_empty(), "{:?}", first.run_errors);
    assert_eq!(too_long(&first), None);
    let arn = format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}");
    assert_eq!(
        stored_state(&stored)["creating_since"]["snapshots"][&arn]["at"],
        "2026-11-22T03:00:00Z"
    );
    let at_30 = run(untimed_snapshot(id, "creating"), "2026-11-22T03:30:00Z").await;
    assert_eq!(too_long(&at_30), None, "30 minutes is within the plan");
    let at_45 = run(untimed_snapshot(id, "creating"), "2026-11-22T03:45:00Z").await;
    let message = too_long(&at_45).expect("45 minutes creating is too long");
    assert!(message.contains("creating for at least 45m"), "{message}");
    assert_eq!(at_45.announced.opened, 1, "{:#?}", at_45.announced);
    // Done: RDS now gives its create time.
    let done = run(
        snapshot(id, "available", "2026-11-22T03:00:00Z", 100),
        "2026-11-22T04:00:00Z",
    )
    .await;
    assert_eq!(too_long(&done), None);
    assert_eq!(done.announced.cleared, 1, "{:#?}", done.announced);
    assert_eq!(
        stored_state(&stored)["creating_since"]["snapshots"],
        serde_json::json!({}),
        "forgotten once available"
    );
}

/// CloudWatch refusing every request (403).
fn cloudwatch_refusing() -> CloudWatch {
    let rule = mock!(aws_sdk_cloudwatch::Client::get_metric_data).then_http_response(|| {
        HttpResponse::new(StatusCode::try_from(403).unwrap(), SdkBody::from("{}"))
    });
    CloudWatch::new(
        mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]),
        "us-east-1",
    )
}

/// Reads that fail for one run (CloudWatch's free storage, the DR region's replicated automated backups) neither
/// clear nor reopen what they decide: the open storage and DR-region RPO conditions stay in the state as they were,
/// nothing is announced, the DR region's RPO is unknown (not breached), and the next good run announces nothing
/// either (before, storage-high was announced cleared, then opened again).
#[tokio::test]
async fn reads_that_fail_for_a_run_neither_clear_nor_reopen_their_conditions() {
    let seen = Seen::default();
    let stored = Arc::new(Mutex::new(None));
    let run = |reads_fail: bool, at: &'static str| {
        let (seen, stored) = (seen.clone(), stored.clone());
        async move {
            let primary = rds(
                true,
                vec![snapshot(
                    "lifeboat-booking-db-2026-11-22-0200",
                    "available",
                    "2026-11-22T02:00:00Z",
                    100,
                )],
                Vec::new(),
            );
            // Replicated backups 7 hours old: the DR region's RPO (1 hour) is breached.
            let dr = rds_answering(
                false,
                Vec::new(),
                (!reads_fail).then(|| vec![replicated("2026-11-21T20:00:00Z")]),
            );
            let cloudwatch = if reads_fail {
                cloudwatch_refusing()
            } else {
                cloudwatch(8.0)
            };
            function_with(
                primary,
                dr,
                cloudwatch,
                stateful_s3(&stored),
                &seen,
                200,
                at.parse().unwrap(),
            )
            .handle(scheduled(), &lambda_runtime::Context::default())
            .await
            .expect("run")
        }
    };
    let open_keys = |stored: &Arc<Mutex<Option<Vec<u8>>>>| {
        stored_state(stored)["alerts"]["open"]
            .as_object()
            .expect("open conditions")
            .clone()
    };
    let first = run(false, "2026-11-22T03:00:00Z").await;
    assert!(first.run_errors.is_empty(), "{:?}", first.run_errors);
    let kinds: Vec<(ConditionKind, &str)> = first
        .assessment
        .conditions
        .iter()
        .map(|c| (c.key.kind, c.key.region.as_str()))
        .collect();
    assert!(
        kinds.contains(&(ConditionKind::StorageHigh, "us-east-1"))
            && kinds.contains(&(ConditionKind::RpoBreach, "us-west-2")),
        "{kinds:?}"
    );
    let opened = open_keys(&stored);

    let failing = run(true, "2026-11-22T03:15:00Z").await;
    assert!(
        failing
            .run_errors
            .iter()
            .any(|e| e.contains("replicated automated backups unknown"))
            && failing
                .run_errors
                .iter()
                .any(|e| e.contains("database storage unknown")),
        "{:?}",
        failing.run_errors
    );
    assert_eq!(
        failing.announced,
        Default::default(),
        "nothing cleared, nothing opened"
    );
    let west = failing.assessment.databases[0]
        .regions
        .iter()
        .find(|r| r.region == "us-west-2")
        .expect("DR region");
    assert_eq!(
        west.status,
        RpoStatus::Unknown,
        "its point-in-time source is unknown, not absent"
    );
    assert_eq!(open_keys(&stored), opened, "kept as they were");

    let again = run(false, "2026-11-22T03:30:00Z").await;
    assert_eq!(again.announced, Default::default(), "not reopened");
    assert_eq!(
        seen.published.lock().unwrap().len(),
        1,
        "one message: the first run's"
    );
}

/// The DR region's RDS refusing `DescribeDBSnapshots` (403); everything else answers, empty.
fn dr_refusing_snapshots() -> Rds {
    let instances = mock!(RdsClient::describe_db_instances)
        .then_output(|| DescribeDbInstancesOutput::builder().build());
    let clusters = mock!(RdsClient::describe_db_clusters)
        .then_output(|| DescribeDbClustersOutput::builder().build());
    let snaps = mock!(RdsClient::describe_db_snapshots).then_http_response(|| {
        HttpResponse::new(
            StatusCode::try_from(403).unwrap(),
            SdkBody::from(
                "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>denied</Message></Error></ErrorResponse>",
            ),
        )
    });
    let cluster_snaps = mock!(RdsClient::describe_db_cluster_snapshots)
        .then_output(|| DescribeDbClusterSnapshotsOutput::builder().build());
    let backups = mock!(RdsClient::describe_db_instance_automated_backups)
        .then_output(|| DescribeDbInstanceAutomatedBackupsOutput::builder().build());
    let quotas = mock!(RdsClient::describe_account_attributes).then_output(|| {
        DescribeAccountAttributesOutput::builder()
            .account_quotas(
                AccountQuota::builder()
                    .account_quota_name("ManualSnapshots")
                    .used(10)
                    .max(100)
                    .build(),
            )
            .build()
    });
    Rds::new(
        mock_client!(
            aws_sdk_rds,
            RuleMode::MatchAny,
            [
                &instances,
                &clusters,
                &snaps,
                &cluster_snaps,
                &backups,
                &quotas
            ]
        ),
        "us-west-2",
    )
}

/// A DR region whose snapshots cannot be listed is a run error on every run; `region-unreadable` opens only on the
/// second consecutive failed run (a blip healed by the next run pages nobody), saying since when (kept in the
/// state), and clears when the region is read again.
#[tokio::test]
async fn region_unreadable_is_a_run_error_each_run_and_opens_on_the_second() {
    let seen = Seen::default();
    let stored = Arc::new(Mutex::new(None));
    let run = |readable: bool, at: &'static str| {
        let (seen, stored) = (seen.clone(), stored.clone());
        async move {
            let primary = rds(
                true,
                vec![snapshot(
                    "lifeboat-booking-db-2026-11-22-0200",
                    "available",
                    "2026-11-22T02:00:00Z",
                    100,
                )],
                Vec::new(),
            );
            let dr = if readable {
                rds(false, Vec::new(), vec![replicated("2026-11-22T02:50:00Z")])
            } else {
                dr_refusing_snapshots()
            };
            function_with(
                primary,
                dr,
                cloudwatch(50.0),
                stateful_s3(&stored),
                &seen,
                200,
                at.parse().unwrap(),
            )
            .handle(scheduled(), &lambda_runtime::Context::default())
            .await
            .expect("run")
        }
    };
    let unreadable = |report: &lifeboat_monitor::MonitorReport| -> Vec<String> {
        report
            .assessment
            .conditions
            .iter()
            .filter(|c| c.key.kind == ConditionKind::RegionUnreadable)
            .map(|c| c.message.clone())
            .collect()
    };
    let listed_error = |report: &lifeboat_monitor::MonitorReport| {
        report
            .run_errors
            .iter()
            .filter(|e| e.starts_with("snapshots in us-west-2 not listed"))
            .count()
    };
    let first = run(false, "2026-11-22T03:00:00Z").await;
    assert_eq!(listed_error(&first), 1, "{:?}", first.run_errors);
    assert_eq!(unreadable(&first), Vec::<String>::new(), "one failed run");
    assert_eq!(
        stored_state(&stored)["unreadable_since"]["us-west-2"],
        "2026-11-22T03:00:00Z"
    );
    let second = run(false, "2026-11-22T03:15:00Z").await;
    assert_eq!(listed_error(&second), 1, "{:?}", second.run_errors);
    let messages = unreadable(&second);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].contains("could not be listed since 2026-11-22T03:00:00Z"),
        "{messages:?}"
    );
    assert_eq!(second.announced.opened, 1, "{:#?}", second.announced);
    let healed = run(true, "2026-11-22T03:30:00Z").await;
    assert_eq!(listed_error(&healed), 0, "{:?}", healed.run_errors);
    assert_eq!(unreadable(&healed), Vec::<String>::new());
    assert_eq!(healed.announced.cleared, 1, "{:#?}", healed.announced);
    assert_eq!(stored_state(&stored)["unreadable_since"], json!({}));
}
