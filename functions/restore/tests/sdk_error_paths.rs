//! The restore handler against mocked SDK clients (aws-smithy-mocks), for what moto cannot hold: a restore still
//! `creating` and a final snapshot still being made (waited for), a restore RDS failed (`incompatible-parameters`:
//! alerted once, cleaned up), a restore RDS refuses to start (an error naming why; nothing made), a final snapshot
//! that failed (the database kept, alerted once), and the exact point-in-time request with a window whose start is
//! known (moto's is not).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_rds::Client as RdsClient;
use aws_sdk_rds::error::ErrorMetadata;
use aws_sdk_rds::operation::add_tags_to_resource::AddTagsToResourceOutput;
use aws_sdk_rds::operation::create_db_snapshot::CreateDbSnapshotOutput;
use aws_sdk_rds::operation::delete_db_instance::DeleteDbInstanceOutput;
use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instance_automated_backups::DescribeDbInstanceAutomatedBackupsOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
use aws_sdk_rds::operation::modify_db_instance::ModifyDbInstanceOutput;
use aws_sdk_rds::operation::restore_db_instance_from_db_snapshot::RestoreDBInstanceFromDBSnapshotError;
use aws_sdk_rds::operation::restore_db_instance_to_point_in_time::RestoreDbInstanceToPointInTimeOutput;
use aws_sdk_rds::primitives::DateTime as SdkTime;
use aws_sdk_rds::types::{DbInstance, DbInstanceAutomatedBackup, DbSnapshot, RestoreWindow, Tag};
use aws_sdk_s3::operation::put_object::{PutObjectError, PutObjectOutput};
use aws_sdk_secretsmanager::operation::create_secret::CreateSecretOutput;
use aws_sdk_secretsmanager::operation::delete_secret::DeleteSecretOutput;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
use aws_sdk_sns::operation::publish::PublishOutput;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use lifeboat::aws::rds::Rds;
use lifeboat::aws::secrets::Secrets;
use lifeboat::checks::TlsMode;
use lifeboat::clock::FixedClock;
use lifeboat::ledger::Ledger;
use lifeboat::notify::Notifier;
use lifeboat::policy::Policy;
use lifeboat::report::ItemStatus;
use lifeboat::restore::adhoc::Source;
use lifeboat::restore::engine::CheckSettings;
use lifeboat::services::Services;
use lifeboat_restore::RestoreFunction;

const POLICY: &str = "version: 1\nname: mocked\nplans:\n  - name: all\n    select:\n      patterns: ['booking-*']\n    retention: {keep_daily: 7}\n    verification: {every: 7d, instance_class: db.t3.micro, subnet_group: restores, security_groups: [sg-1]}\n    objectives: {rpo: 1h, rto: 4h}\n";

const TARGET: &str = "lbrestore-booking-db-20261122-0200";
const SNAPSHOT: &str = "lifeboat-booking-db-2026-11-22-0200";
const FINAL: &str = "lifeboat-lbrestore-booking-db-20261122-0200-202611220800-final";
const NOW: &str = "2026-11-22T09:00:00Z";

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("time")
}

fn sdk_time(text: &str) -> SdkTime {
    SdkTime::from_secs(at(text).timestamp())
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn scheduled() -> Value {
    json!({"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": NOW, "region": "us-east-1", "resources": [], "detail": {}})
}

fn source_db() -> DbInstance {
    DbInstance::builder()
        .db_instance_identifier("booking-db")
        .db_instance_arn("arn:aws:rds:us-east-1:123456789012:db:booking-db")
        .db_instance_class("db.r6g.large")
        .engine("postgres")
        .db_instance_status("available")
        .latest_restorable_time(sdk_time("2026-11-22T08:55:00Z"))
        .build()
}

/// An ad-hoc restore of [`SNAPSHOT`] in `status` and `phase`, with `more` tags (replacing those of the same key).
fn restore_instance(status: &str, phase: &str, more: &[(&str, &str)]) -> DbInstance {
    let mut tags: std::collections::BTreeMap<&str, &str> = [
        ("lifeboat:managed", "true"),
        ("lifeboat:deployment", "lifeboat"),
        ("lifeboat:home-region", "us-east-1"),
        ("lifeboat:restore", TARGET),
        ("lifeboat:policy", "mocked"),
        ("lifeboat:plan", "all"),
        ("lifeboat:source", "booking-db"),
        ("lifeboat:restore-snapshot", SNAPSHOT),
        (
            "lifeboat:restore-snapshot-arn",
            "arn:aws:rds:us-east-1:123456789012:snapshot:lifeboat-booking-db-2026-11-22-0200",
        ),
        ("lifeboat:restore-snapshot-time", "2026-11-22T02:00:00Z"),
        ("lifeboat:restore-phase", phase),
        ("lifeboat:restore-started-at", "2026-11-22T08:00:00Z"),
        ("lifeboat:expires-at", "2026-11-24T08:00:00Z"),
        ("lifeboat:reason", "INC-481"),
        ("lifeboat:requested-by", "alice"),
    ]
    .into_iter()
    .collect();
    tags.extend(more.iter().copied());
    DbInstance::builder()
        .db_instance_identifier(TARGET)
        .db_instance_arn(format!("arn:aws:rds:us-east-1:123456789012:db:{TARGET}"))
        .engine("postgres")
        .db_instance_status(status)
        .master_username("lifeboat")
        .set_tag_list(Some(tags.into_iter().map(|(k, v)| tag(k, v)).collect()))
        .build()
}

fn manual_snapshot(id: &str, created: &str, status: &str, database: &str) -> DbSnapshot {
    DbSnapshot::builder()
        .db_snapshot_identifier(id)
        .db_snapshot_arn(format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}"))
        .db_instance_identifier(database)
        .status(status)
        .snapshot_type("manual")
        .snapshot_create_time(sdk_time(created))
        .tag_list(tag("lifeboat:managed", "true"))
        .tag_list(tag("lifeboat:deployment", "lifeboat"))
        .tag_list(tag("lifeboat:home-region", "us-east-1"))
        .tag_list(tag("lifeboat:source", database))
        .build()
}

/// The describes every run makes: the instances, no clusters, the snapshots, no cluster snapshots, and the
/// source's automated backups (`window_start`: their restore window's start, when known).
fn listing(
    instances: Vec<DbInstance>,
    snapshots: Vec<DbSnapshot>,
    window_start: Option<&str>,
) -> [Rule; 5] {
    let backups: Vec<DbInstanceAutomatedBackup> = window_start
        .map(|start| {
            DbInstanceAutomatedBackup::builder()
                .db_instance_identifier("booking-db")
                .db_instance_arn("arn:aws:rds:us-east-1:123456789012:db:booking-db")
                .restore_window(
                    RestoreWindow::builder()
                        .earliest_time(sdk_time(start))
                        .latest_time(sdk_time("2026-11-22T08:55:00Z"))
                        .build(),
                )
                .build()
        })
        .into_iter()
        .collect();
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
        mock!(RdsClient::describe_db_instance_automated_backups).then_output(move || {
            DescribeDbInstanceAutomatedBackupsOutput::builder()
                .set_db_instance_automated_backups(Some(backups.clone()))
                .build()
        }),
    ]
}

/// What the run sent: SNS messages (subject, body) and ledger objects (as JSON).
#[derive(Default)]
struct Seen {
    messages: Arc<Mutex<Vec<(String, String)>>>,
    ledger: Arc<Mutex<Vec<Value>>>,
}

impl Seen {
    fn messages(&self) -> Vec<(String, String)> {
        self.messages.lock().unwrap().clone()
    }

    /// Every ledger record written, with its object's phase.
    fn records(&self) -> Vec<Value> {
        self.ledger
            .lock()
            .unwrap()
            .iter()
            .flat_map(|object| object["records"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

/// The restore function on mocked clients "as of" `now`; `ledger_fails`: every ledger write is refused.
fn function(
    rds_rules: &[&Rule],
    secret_rules: &[&Rule],
    seen: &Seen,
    now: &str,
    ledger_fails: bool,
) -> RestoreFunction {
    let written = seen.ledger.clone();
    let put = if ledger_fails {
        mock!(aws_sdk_s3::Client::put_object).then_error(|| {
            PutObjectError::generic(
                ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message("denied")
                    .build(),
            )
        })
    } else {
        mock!(aws_sdk_s3::Client::put_object)
            .match_requests(move |req| {
                let body = req.body().bytes().expect("in memory");
                written
                    .lock()
                    .unwrap()
                    .push(serde_json::from_slice(body).expect("ledger JSON"));
                true
            })
            .then_output(|| PutObjectOutput::builder().build())
    };
    let sent = seen.messages.clone();
    let publish = mock!(aws_sdk_sns::Client::publish)
        .match_requests(move |req| {
            sent.lock().unwrap().push((
                req.subject().unwrap_or_default().to_string(),
                req.message().unwrap_or_default().to_string(),
            ));
            true
        })
        .then_output(|| PublishOutput::builder().message_id("m").build());
    RestoreFunction {
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
            clock: Arc::new(FixedClock(at(now))),
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
        checks: CheckSettings {
            tls: TlsMode::Require { ca_bundle: None },
            timeout: Duration::from_secs(1),
            endpoint_override: None,
        },
    }
}

fn context() -> lambda_runtime::Context {
    let mut context = lambda_runtime::Context::default();
    context.request_id = "req-mock".into();
    context
}

/// Every tag written on the restore, in order.
fn tag_writes(seen: &Arc<Mutex<Vec<(String, String)>>>) -> Rule {
    let seen = seen.clone();
    mock!(RdsClient::add_tags_to_resource)
        .match_requests(move |req| {
            assert_eq!(
                req.resource_name(),
                Some(format!("arn:aws:rds:us-east-1:123456789012:db:{TARGET}").as_str()),
                "only the restore is tagged"
            );
            seen.lock().unwrap().extend(req.tags().iter().map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            }));
            true
        })
        .then_output(|| AddTagsToResourceOutput::builder().build())
}

fn written(tags: &Arc<Mutex<Vec<(String, String)>>>, key: &str) -> Vec<String> {
    tags.lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

#[tokio::test]
async fn a_restore_still_creating_or_a_final_snapshot_still_being_made_is_waited_for() {
    let waiting = [
        (
            restore_instance("creating", "restoring", &[]),
            None,
            "restoring",
        ),
        (
            restore_instance("modifying", "securing", &[]),
            None,
            "securing",
        ),
        (
            restore_instance(
                "available",
                "retiring",
                &[
                    ("lifeboat:restore-final-snapshot", FINAL),
                    ("lifeboat:expires-at", "2026-11-22T08:00:00Z"),
                ],
            ),
            Some(manual_snapshot(
                FINAL,
                "2026-11-22T08:00:00Z",
                "creating",
                TARGET,
            )),
            "final snapshot lifeboat-lbrestore-booking-db-20261122-0200-202611220800-final creating",
        ),
    ];
    for (restore, final_snapshot, step) in waiting {
        let [instances, clusters, snapshots, cluster_snapshots, backups] = listing(
            vec![source_db(), restore],
            final_snapshot.into_iter().collect(),
            None,
        );
        let tags = Arc::default();
        let tagged = tag_writes(&tags);
        let modify = mock!(RdsClient::modify_db_instance)
            .then_output(|| ModifyDbInstanceOutput::builder().build());
        let delete = mock!(RdsClient::delete_db_instance)
            .then_output(|| DeleteDbInstanceOutput::builder().build());
        let snapshot = mock!(RdsClient::create_db_snapshot)
            .then_output(|| CreateDbSnapshotOutput::builder().build());
        let secret_read = mock!(aws_sdk_secretsmanager::Client::get_secret_value)
            .then_output(|| GetSecretValueOutput::builder().build());
        let secret_delete = mock!(aws_sdk_secretsmanager::Client::delete_secret)
            .then_output(|| DeleteSecretOutput::builder().build());
        let seen = Seen::default();
        let report = function(
            &[
                &instances,
                &clusters,
                &snapshots,
                &cluster_snapshots,
                &backups,
                &tagged,
                &modify,
                &delete,
                &snapshot,
            ],
            &[&secret_read, &secret_delete],
            &seen,
            NOW,
            false,
        )
        .handle(scheduled(), &context())
        .await
        .expect("run");
        assert_eq!(report.trigger, "schedule");
        assert_eq!(report.restores.len(), 1, "{report:#?}");
        assert_eq!(report.restores[0].step, step, "{report:#?}");
        assert!(report.results.is_empty(), "{step}: {report:#?}");
        assert_eq!(
            (
                tagged.num_calls(),
                modify.num_calls(),
                delete.num_calls(),
                snapshot.num_calls(),
                secret_read.num_calls(),
                secret_delete.num_calls()
            ),
            (0, 0, 0, 0, 0, 0),
            "nothing is done while RDS works ({step})"
        );
        assert!(seen.messages().is_empty(), "{step}");
    }
}

#[tokio::test]
async fn a_failed_restore_is_alerted_once_and_cleaned_up() {
    let run = |notified: Option<&'static str>, ledger_fails: bool| async move {
        let more: Vec<(&str, &str)> = notified
            .map(|n| ("lifeboat:restore-notified", n))
            .into_iter()
            .collect();
        let [instances, clusters, snapshots, cluster_snapshots, backups] = listing(
            vec![
                source_db(),
                restore_instance("incompatible-parameters", "restoring", &more),
            ],
            Vec::new(),
            None,
        );
        let tags = Arc::default();
        let tagged = tag_writes(&tags);
        let delete = mock!(RdsClient::delete_db_instance)
            .match_requests(|req| {
                req.db_instance_identifier() == Some(TARGET)
                    && req.skip_final_snapshot() == Some(true)
            })
            .then_output(|| DeleteDbInstanceOutput::builder().build());
        let secret = mock!(aws_sdk_secretsmanager::Client::delete_secret)
            .match_requests(|req| req.secret_id() == Some(&format!("lifeboat/restore/{TARGET}")))
            .then_output(|| DeleteSecretOutput::builder().build());
        let seen = Seen::default();
        let report = function(
            &[
                &instances,
                &clusters,
                &snapshots,
                &cluster_snapshots,
                &backups,
                &tagged,
                &delete,
            ],
            &[&secret],
            &seen,
            NOW,
            ledger_fails,
        )
        .handle(json!({"action": "restore"}), &context())
        .await
        .expect("run");
        (report, seen, tags, delete.num_calls(), secret.num_calls())
    };

    // RDS could not restore it: the operator is told once, the notice noted on it, and it is deleted.
    let (report, seen, tags, deletes, secret_deletes) = run(None, false).await;
    let failed: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.status == ItemStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{report:#?}");
    assert_eq!(failed[0].action, "restore");
    assert!(
        failed[0].detail.as_deref().is_some_and(|d| d
            .contains("restore of lifeboat-booking-db-2026-11-22-0200 into lbrestore-booking-db-20261122-0200 ended in status `incompatible-parameters`")),
        "{failed:?}"
    );
    assert!(
        failed[0]
            .next_step
            .as_deref()
            .is_some_and(|s| s.contains("restore again under another target name")),
        "{failed:?}"
    );
    let messages = seen.messages();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(
        messages[0].1.contains("incompatible-parameters"),
        "{messages:#?}"
    );
    assert_eq!(written(&tags, "lifeboat:restore-notified"), ["failed"]);
    assert_eq!(written(&tags, "lifeboat:restore-phase"), ["cleaning-up"]);
    assert_eq!((deletes, secret_deletes), (1, 1));
    assert_eq!(report.restores[0].step, "deleting", "{report:#?}");
    let actions: Vec<(String, String)> = seen
        .records()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or_default().to_string(),
                r["phase"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("delete-restore".to_string(), "intent".to_string()),
            ("delete-restore".to_string(), "result".to_string())
        ]
    );

    // Already told (its clean-up did not finish): cleaned up again, not alerted again.
    let (report, seen, _, deletes, _) = run(Some("failed"), false).await;
    assert!(report.results.is_empty(), "{report:#?}");
    assert!(seen.messages().is_empty());
    assert_eq!(deletes, 1);

    // A run that cannot record its deletions deletes nothing, but notes that it told the operator: the runs
    // after it do not tell again.
    let (report, _, tags, deletes, secret_deletes) = run(None, true).await;
    assert_eq!(
        report
            .results
            .iter()
            .filter(|r| r.status == ItemStatus::Failed)
            .count(),
        1,
        "{report:#?}"
    );
    assert!(
        report
            .run_errors
            .iter()
            .any(|e| e.contains("no restored database is deleted this run")),
        "{report:#?}"
    );
    assert_eq!((deletes, secret_deletes), (0, 0));
    assert_eq!(written(&tags, "lifeboat:restore-notified"), ["failed"]);
}

#[tokio::test]
async fn a_restore_rds_refuses_is_an_error_naming_why_and_nothing_is_made() {
    let [instances, clusters, snapshots, cluster_snapshots, backups] = listing(
        vec![source_db()],
        vec![manual_snapshot(
            SNAPSHOT,
            "2026-11-22T02:00:00Z",
            "available",
            "booking-db",
        )],
        None,
    );
    let restore = mock!(RdsClient::restore_db_instance_from_db_snapshot)
        .match_requests(|req| {
            req.db_instance_identifier() == Some(TARGET)
                && req.db_snapshot_identifier() == Some(SNAPSHOT)
                && req.db_instance_class() == Some("db.r6g.large")
                && req.db_subnet_group_name() == Some("restores")
                && req.vpc_security_group_ids() == ["sg-1"]
                && req.publicly_accessible() == Some(false)
        })
        .then_error(|| {
            RestoreDBInstanceFromDBSnapshotError::generic(
                ErrorMetadata::builder()
                    .code("InvalidParameterCombination")
                    .message("RDS does not support creating a DB instance with the following combination: DBInstanceClass=db.r6g.large, Engine=postgres")
                    .build(),
            )
        });
    let tags = Arc::default();
    let tagged = tag_writes(&tags);
    let modify = mock!(RdsClient::modify_db_instance)
        .then_output(|| ModifyDbInstanceOutput::builder().build());
    let secret = mock!(aws_sdk_secretsmanager::Client::create_secret)
        .then_output(|| CreateSecretOutput::builder().build());
    let seen = Seen::default();
    let err = function(
        &[
            &instances,
            &clusters,
            &snapshots,
            &cluster_snapshots,
            &backups,
            &restore,
            &tagged,
            &modify,
        ],
        &[&secret],
        &seen,
        NOW,
        false,
    )
    .handle(
        json!({"action": "restore", "database": "booking-db", "snapshot": SNAPSHOT,
            "reason": "INC-481", "requested_by": "alice"}),
        &context(),
    )
    .await
    .expect_err("refused");
    assert_eq!(restore.num_calls(), 1);
    assert_eq!(err.error_type(), "Lifeboat.InvalidInput");
    let message = err.to_string();
    for part in [
        "RDS refused the restore of lifeboat-booking-db-2026-11-22-0200 into lbrestore-booking-db-20261122-0200",
        "InvalidParameterCombination",
        "DBInstanceClass=db.r6g.large",
        "nothing was made",
    ] {
        assert!(message.contains(part), "{message}\nlacks: {part}");
    }
    assert_eq!(
        (tagged.num_calls(), modify.num_calls(), secret.num_calls()),
        (0, 0, 0),
        "nothing follows a refusal"
    );
    assert!(seen.messages().is_empty());
    // The request is on record as failed, never as made.
    let records = seen.records();
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["action"], "start-restore");
    assert_eq!(records[0]["outcome"], "failed");
    assert_eq!(records[0]["resource"], TARGET);
    assert_eq!(records[0]["details"]["requested_by"], "alice");
    assert!(
        records[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("InvalidParameterCombination")),
        "{records:#?}"
    );
}

#[tokio::test]
async fn a_name_taken_by_someone_elses_instance_meanwhile_is_refused_never_taken_for_this_restore()
{
    // Between the plan and the request, another instance took the target's name: RDS answers "already exists",
    // the instance does not carry this restore's marker, so it is not this restore's (never adopted, never
    // secured or deleted later).
    let [instances, clusters, snapshots, cluster_snapshots, backups] = listing(
        vec![source_db()],
        vec![manual_snapshot(
            SNAPSHOT,
            "2026-11-22T02:00:00Z",
            "available",
            "booking-db",
        )],
        None,
    );
    let restore = mock!(RdsClient::restore_db_instance_from_db_snapshot).then_error(|| {
        RestoreDBInstanceFromDBSnapshotError::generic(
            ErrorMetadata::builder()
                .code("DBInstanceAlreadyExists")
                .message("DB instance already exists")
                .build(),
        )
    });
    let tags = Arc::default();
    let tagged = tag_writes(&tags);
    let seen = Seen::default();
    let err = function(
        &[
            &instances,
            &clusters,
            &snapshots,
            &cluster_snapshots,
            &backups,
            &restore,
            &tagged,
        ],
        &[],
        &seen,
        NOW,
        false,
    )
    .handle(
        json!({"action": "restore", "database": "booking-db", "snapshot": SNAPSHOT,
            "reason": "INC-481", "requested_by": "alice"}),
        &context(),
    )
    .await
    .expect_err("the name is someone else's");
    assert_eq!(err.error_type(), "Lifeboat.InvalidInput");
    let message = err.to_string();
    assert!(
        message.contains("DBInstanceAlreadyExists") && message.contains("nothing was made"),
        "{message}"
    );
    assert_eq!(tagged.num_calls(), 0, "nothing follows");
    let records = seen.records();
    assert_eq!(records[0]["outcome"], "failed", "{records:#?}");
}

#[tokio::test]
async fn a_failed_final_snapshot_keeps_the_database_and_is_alerted_once() {
    let run = |notified: &'static str| async move {
        let [instances, clusters, snapshots, cluster_snapshots, backups] = listing(
            vec![
                source_db(),
                restore_instance(
                    "available",
                    "retiring",
                    &[
                        ("lifeboat:restore-final-snapshot", FINAL),
                        ("lifeboat:expires-at", "2026-11-22T08:00:00Z"),
                        ("lifeboat:restore-notified", notified),
                    ],
                ),
            ],
            vec![manual_snapshot(
                FINAL,
                "2026-11-22T08:00:00Z",
                "failed",
                TARGET,
            )],
            None,
        );
        let tags = Arc::default();
        let tagged = tag_writes(&tags);
        let delete = mock!(RdsClient::delete_db_instance)
            .then_output(|| DeleteDbInstanceOutput::builder().build());
        let snapshot = mock!(RdsClient::create_db_snapshot)
            .then_output(|| CreateDbSnapshotOutput::builder().build());
        let secret = mock!(aws_sdk_secretsmanager::Client::delete_secret)
            .then_output(|| DeleteSecretOutput::builder().build());
        let seen = Seen::default();
        let report = function(
            &[
                &instances,
                &clusters,
                &snapshots,
                &cluster_snapshots,
                &backups,
                &tagged,
                &delete,
                &snapshot,
            ],
            &[&secret],
            &seen,
            NOW,
            false,
        )
        .handle(json!({"action": "restore"}), &context())
        .await
        .expect("run");
        assert_eq!(
            (delete.num_calls(), secret.num_calls(), snapshot.num_calls()),
            (0, 0, 0),
            "the database and its credentials are kept; no second snapshot is asked for"
        );
        assert_eq!(
            report.restores[0].step, "final-snapshot-failed",
            "{report:#?}"
        );
        (report, seen, tags)
    };

    let (report, seen, tags) = run("ready+expiry").await;
    let [failed] = &report.results[..] else {
        panic!("one result: {report:#?}");
    };
    assert_eq!(
        (failed.action.as_str(), failed.status),
        ("retire-restore", ItemStatus::Failed)
    );
    assert_eq!(
        failed.detail.as_deref(),
        Some(
            "final snapshot of lbrestore-booking-db-20261122-0200 is failed: the database is kept, not deleted"
        )
    );
    assert!(
        failed
            .next_step
            .as_deref()
            .is_some_and(|s| s.contains(&format!("delete the failed snapshot {FINAL}"))),
        "{failed:?}"
    );
    assert_eq!(seen.messages().len(), 1, "alerted");
    assert_eq!(
        written(&tags, "lifeboat:restore-notified"),
        ["ready+expiry+final-failed"]
    );

    let (report, seen, tags) = run("ready+expiry+final-failed").await;
    assert!(report.results.is_empty(), "{report:#?}");
    assert!(seen.messages().is_empty(), "alerted once");
    assert!(tags.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_point_in_time_restore_asks_rds_for_that_time_and_the_window_start_bounds_it() {
    let snapshot = manual_snapshot(
        "lifeboat-booking-db-2026-11-14-0200",
        "2026-11-14T02:00:00Z",
        "available",
        "booking-db",
    );
    let requested = "2026-11-22T08:30:00Z";
    let [instances, clusters, snapshots, cluster_snapshots, backups] = listing(
        vec![source_db()],
        vec![snapshot],
        Some("2026-11-15T00:00:00Z"),
    );
    let restore = mock!(RdsClient::restore_db_instance_to_point_in_time)
        .match_requests(move |req| {
            req.source_db_instance_identifier() == Some("booking-db")
                && req.target_db_instance_identifier() == Some("lbrestore-booking-db-20261122-0830")
                && req.restore_time() == Some(&sdk_time(requested))
                && req.use_latest_restorable_time() == Some(false)
                && req.db_instance_class() == Some("db.r6g.large")
                && req.db_subnet_group_name() == Some("restores")
                && req.vpc_security_group_ids() == ["sg-1"]
                && req.publicly_accessible() == Some(false)
                && req.deletion_protection() == Some(false)
                && req.multi_az() == Some(false)
                && req.tags().iter().any(|t| {
                    t.key() == Some("lifeboat:restore-snapshot-time")
                        && t.value() == Some(requested)
                })
                && req
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some("lifeboat:requested-by") && t.value() == Some("alice"))
        })
        .then_output(|| RestoreDbInstanceToPointInTimeOutput::builder().build());
    let rules = [
        &instances,
        &clusters,
        &snapshots,
        &cluster_snapshots,
        &backups,
        &restore,
    ];
    let seen = Seen::default();
    let handle = |payload: Value| {
        let function = function(&rules, &[], &seen, NOW, false);
        async move { function.handle(payload, &context()).await }
    };
    let request = |time: &str, plan: bool| {
        json!({"action": "restore", "database": "booking-db", "point_in_time": time,
            "reason": "INC-481", "requested_by": "alice", "plan": plan})
    };

    let started = handle(request(requested, false)).await.expect("restore");
    assert_eq!(restore.num_calls(), 1, "{started:#?}");
    let plan = started.plan.expect("plan");
    assert_eq!(
        plan.source,
        Source::PointInTime {
            time: at(requested)
        }
    );
    assert_eq!(plan.gap_seconds, 0);
    assert_eq!(
        plan.restorable_window.map(|w| (w.earliest, w.latest)),
        Some((Some(at("2026-11-15T00:00:00Z")), at("2026-11-22T08:55:00Z")))
    );

    // Before the window: the newest snapshot before that time, and the data it cannot contain.
    let dry = handle(request("2026-11-14T12:00:00Z", true))
        .await
        .expect("plan");
    let plan = dry.plan.expect("plan");
    assert_eq!(
        plan.source,
        Source::Snapshot {
            identifier: "lifeboat-booking-db-2026-11-14-0200".into(),
            arn: "arn:aws:rds:us-east-1:123456789012:snapshot:lifeboat-booking-db-2026-11-14-0200"
                .into(),
            time: at("2026-11-14T02:00:00Z"),
        }
    );
    assert_eq!(plan.gap_seconds, 10 * 3600);

    // Before every recovery point: refused, naming the window and the snapshots there are.
    let err = handle(request("2026-11-13T00:00:00Z", false))
        .await
        .expect_err("outside");
    assert_eq!(err.error_type(), "Lifeboat.InvalidInput");
    let message = err.to_string();
    for part in [
        "2026-11-13T00:00:00Z is outside every recovery point of `booking-db`",
        "point in time from 2026-11-15T00:00:00Z to 2026-11-22T08:55:00Z",
        "1 snapshot(s) of this deployment, the newest from 2026-11-14T02:00:00Z",
    ] {
        assert!(message.contains(part), "{message}\nlacks: {part}");
    }
    assert_eq!(restore.num_calls(), 1, "nothing more restored");
}
