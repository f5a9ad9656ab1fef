//! The real retention handler against moto server, "as of" simulated dates: histories built by the real snapshot
//! function, DR copies in a second region, unmanaged and legal-hold snapshots, a runaway plan, dry runs, bad input.

use std::collections::BTreeSet;

use aws_sdk_rds::types::Tag;
use chrono::{DateTime, Duration, Utc};
use lifeboat::ledger::Phase;
use lifeboat::report::ItemStatus;
use lifeboat_integration_tests::{Sandbox, context, copy_snapshot_to, event, snapshots_in};
use serde_json::json;

const SELECTED: [(&str, &str); 1] = [("lifeboat:backup", "true")];

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("timestamp")
}

/// Scheduled times at 02:00 UTC from `first` for `days` days.
fn daily(first: &str, days: i64) -> Vec<DateTime<Utc>> {
    (0..days).map(|n| at(first) + Duration::days(n)).collect()
}

fn ids(snapshots: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    snapshots.into_iter().collect()
}

/// The ledger records the retention function wrote (the history's snapshot records left out).
async fn retention_records(sandbox: &Sandbox) -> Vec<lifeboat::ledger::LedgerRecord> {
    sandbox
        .ledger_records()
        .await
        .into_iter()
        .filter(|r| r.function == "retention")
        .collect()
}

fn scheduled_ids(db: &str, days: &[&str]) -> BTreeSet<String> {
    days.iter()
        .map(|d| format!("lifeboat-{db}-{d}-0200"))
        .collect()
}

#[tokio::test]
async fn deletes_exactly_the_planned_snapshots_in_both_regions() {
    let (primary, dr) = ("sa-east-1", "ap-northeast-1");
    let policy = format!(
        r#"
version: 1
name: retention-test
plans:
  - name: production
    select: {{tags: {{"lifeboat:backup": "true"}}}}
    retention: {{keep_daily: 7, keep_weekly: 4, min_count: 3, max_delete_fraction: 0.9}}
    copies:
      - {{region: {dr}, kms_key_id: alias/dr, retain_days: 14}}
    objectives: {{rpo: 1h, rto: 4h}}
"#
    );
    let sandbox = Sandbox::new(primary).await;
    sandbox.instance("booking-db", &SELECTED, None).await;
    sandbox
        .snapshot_history(&policy, daily("2026-10-01T02:00:00Z", 40))
        .await;
    // An operator's own snapshot, and one under legal hold: neither may ever be deleted.
    sandbox
        .rds
        .create_db_snapshot()
        .db_instance_identifier("booking-db")
        .db_snapshot_identifier("dba-before-upgrade")
        .send()
        .await
        .expect("unmanaged snapshot");
    hold(
        &sandbox.rds,
        &format!("arn:aws:rds:{primary}:123456789012:snapshot:lifeboat-booking-db-2026-10-05-0200"),
    )
    .await;
    // DR copies of the last 21 days, carrying the source's tags (so they age from the original snapshot time).
    for day in daily("2026-10-20T02:00:00Z", 21) {
        let id = format!("lifeboat-booking-db-{}", day.format("%Y-%m-%d-%H%M"));
        copy_snapshot_to(
            dr,
            &format!("arn:aws:rds:{primary}:123456789012:snapshot:{id}"),
            &id,
        )
        .await;
    }
    let before_primary = ids(sandbox.instance_snapshots("booking-db").await.into_keys());
    let before_dr = ids(snapshots_in(dr).await.into_keys());
    assert_eq!((before_primary.len(), before_dr.len()), (41, 21));

    let function = sandbox
        .retention_function(&policy, at("2026-11-10T03:00:00Z"), &[dr])
        .await;

    // Dry run: the plan, and nothing changed.
    let plan = function
        .handle(event("retention/manual-dry-run.json"), &context("dry"))
        .await
        .expect("dry run");
    assert!(plan.dry_run);
    let group = |region: &str| {
        plan.databases
            .iter()
            .find(|g| g.region == region)
            .expect("group")
            .clone()
    };
    let (planned_primary, planned_dr) = (group(primary), group(dr));
    assert_eq!(
        (planned_primary.delete.len(), planned_primary.kept),
        (30, 10)
    );
    assert_eq!(
        plan.left_alone
            .iter()
            .map(|l| (
                l.region.as_str(),
                l.owner.as_str(),
                l.count,
                l.example.as_str()
            ))
            .collect::<Vec<_>>(),
        [(primary, "not Lifeboat (unmanaged)", 1, "dba-before-upgrade")],
        "what the deployment did not make is left alone, and said so"
    );
    assert_eq!((planned_dr.delete.len(), planned_dr.kept), (8, 13));
    assert!(
        planned_primary
            .decisions
            .as_ref()
            .is_some_and(|d| d.len() == 40),
        "dry run shows every decision"
    );
    assert_eq!(
        ids(sandbox.instance_snapshots("booking-db").await.into_keys()),
        before_primary
    );
    assert_eq!(ids(snapshots_in(dr).await.into_keys()), before_dr);
    assert!(
        retention_records(&sandbox).await.is_empty(),
        "a dry run writes nothing"
    );

    // The scheduled run deletes exactly what the plan said.
    let report = function
        .handle(event("retention/scheduled-daily.json"), &context("real"))
        .await
        .expect("run");
    assert_eq!(
        (
            report.counts.done,
            report.counts.failed,
            report.counts.skipped
        ),
        (38, 0, 0),
        "{:?}",
        report.run_errors
    );
    let mut kept_primary = scheduled_ids(
        "booking-db",
        &[
            "2026-11-09",
            "2026-11-08",
            "2026-11-07",
            "2026-11-06",
            "2026-11-05",
            "2026-11-04",
            "2026-11-03",
        ],
    ); // daily
    kept_primary.extend(scheduled_ids("booking-db", &["2026-11-01", "2026-10-25"])); // weekly (ISO weeks 44, 43)
    kept_primary.extend(scheduled_ids("booking-db", &["2026-10-05"])); // legal hold
    kept_primary.insert("dba-before-upgrade".into()); // unmanaged
    assert_eq!(
        ids(sandbox.instance_snapshots("booking-db").await.into_keys()),
        kept_primary
    );
    let expected_deleted: BTreeSet<String> =
        before_primary.difference(&kept_primary).cloned().collect();
    assert_eq!(
        ids(planned_primary.delete.iter().cloned()),
        expected_deleted,
        "the dry run planned exactly this"
    );
    let kept_dr: BTreeSet<String> = daily("2026-10-28T02:00:00Z", 13)
        .iter()
        .map(|d| format!("lifeboat-booking-db-{}", d.format("%Y-%m-%d-%H%M")))
        .collect();
    assert_eq!(
        ids(snapshots_in(dr).await.into_keys()),
        kept_dr,
        "copies kept 14 days from the original time"
    );

    // Every deletion has an intent record and a result record, in one intent object and one result object.
    let records = retention_records(&sandbox).await;
    assert_eq!(records.len(), 2 * 38);
    let objects = sandbox.ledger_objects().await;
    let retention_objects: Vec<Phase> = objects
        .iter()
        .filter(|o| o.function == "retention")
        .map(|o| o.phase)
        .collect();
    assert_eq!(
        retention_objects,
        [Phase::Intent, Phase::Result],
        "two ledger writes for 38 deletions"
    );
    for result in report.results.iter() {
        let resource = result.resource.as_deref().expect("snapshot id");
        let phases: Vec<Phase> = records
            .iter()
            .filter(|r| r.resource == resource && r.region == result.region)
            .map(|r| r.phase)
            .collect();
        assert_eq!(phases.len(), 2, "{resource}");
        assert!(
            phases.contains(&Phase::Intent) && phases.contains(&Phase::Result),
            "{resource}"
        );
        assert_eq!(result.status, ItemStatus::Done);
    }
    assert!(
        records
            .iter()
            .filter(|r| r.phase == Phase::Result)
            .all(|r| r.outcome.as_deref() == Some("deleted"))
    );

    // Planning what is left deletes nothing more.
    let again = function
        .handle(event("retention/scheduled-daily.json"), &context("again"))
        .await
        .expect("rerun");
    assert!(again.results.is_empty(), "{:?}", again.results);
    assert!(
        sandbox.notifications().await.is_empty(),
        "nothing to alert about"
    );
}

#[tokio::test]
async fn a_runaway_plan_is_refused_and_alerted_until_an_operator_confirms() {
    let policy = r#"
version: 1
name: runaway-test
plans:
  - name: production
    select: {tags: {"lifeboat:backup": "true"}}
    retention: {keep_daily: 2, min_count: 1, max_delete_fraction: 0.5}
    objectives: {rpo: 1h, rto: 4h}
"#;
    let sandbox = Sandbox::new("eu-central-1").await;
    sandbox.instance("booking-db", &SELECTED, None).await;
    sandbox
        .snapshot_history(policy, daily("2026-11-01T02:00:00Z", 12))
        .await;
    let function = sandbox
        .retention_function(policy, at("2026-11-12T03:00:00Z"), &[])
        .await;

    let report = function
        .handle(event("retention/scheduled-daily.json"), &context("r1"))
        .await
        .expect("run");
    assert_eq!(report.counts.skipped, 1);
    let refusal = &report.results[0];
    assert_eq!(refusal.action, "retention-plan");
    assert_eq!(
        refusal.detail.as_deref(),
        Some(
            "refused: would delete 10 of 12 managed snapshots (83%), more than max_delete_fraction 50%"
        )
    );
    assert_eq!(
        sandbox.instance_snapshots("booking-db").await.len(),
        12,
        "nothing deleted"
    );
    assert!(retention_records(&sandbox).await.is_empty());
    let notifications = sandbox.notifications().await;
    assert_eq!(notifications.len(), 1);
    let (subject, body) = &notifications[0];
    assert_eq!(
        subject,
        "Lifeboat retention in eu-central-1: 1 skipped of 1 item(s)"
    );
    assert!(
        body.contains("SKIPPED: instance booking-db in eu-central-1"),
        "{body}"
    );
    assert!(body.contains("allow_large_deletions"), "{body}");

    // The operator confirms the deletion for this database.
    let confirmed = function
        .handle(
            event("retention/manual-allow-large-deletions.json"),
            &context("r2"),
        )
        .await
        .expect("confirmed run");
    assert_eq!(confirmed.counts.done, 10);
    assert_eq!(
        ids(sandbox.instance_snapshots("booking-db").await.into_keys()),
        scheduled_ids("booking-db", &["2026-11-12", "2026-11-11"])
    );
}

#[tokio::test]
async fn expired_manual_snapshots_go_but_a_deleted_database_keeps_its_last_recovery_point() {
    let policy = r#"
version: 1
name: floors-test
plans:
  - name: production
    select: {tags: {"lifeboat:backup": "true"}}
    retention: {keep_daily: 1, min_count: 1, max_delete_fraction: 1.0}
    objectives: {rpo: 1h, rto: 4h}
"#;
    let sandbox = Sandbox::new("ap-southeast-2").await;
    sandbox.instance("booking-db", &SELECTED, None).await;
    sandbox.instance("temp-db", &[], None).await;
    sandbox
        .snapshot_history(policy, daily("2026-11-01T02:00:00Z", 3))
        .await;
    for (key, db) in [
        ("deploy-1", "booking-db"),
        ("deploy-2", "booking-db"),
        ("temp", "temp-db"),
    ] {
        let snapshot =
            sandbox.snapshot_function(policy, at("2026-11-02T10:00:00Z"), &Default::default());
        let payload = json!({"action": "snapshot", "databases": [db], "retain_days": 1, "idempotency_key": key});
        snapshot
            .handle(payload, &context(key))
            .await
            .expect("manual snapshot");
    }
    sandbox
        .rds
        .delete_db_instance()
        .db_instance_identifier("temp-db")
        .skip_final_snapshot(true)
        .send()
        .await
        .expect("delete temp-db");

    let function = sandbox
        .retention_function(policy, at("2026-11-05T03:00:00Z"), &[])
        .await;
    let report = function
        .handle(event("retention/scheduled-daily.json"), &context("floors"))
        .await
        .expect("run");
    let deleted: BTreeSet<&str> = report
        .results
        .iter()
        .filter_map(|r| r.resource.as_deref())
        .collect();
    assert_eq!(deleted.len(), 4, "{deleted:?}");
    let left = ids(sandbox.instance_snapshots("booking-db").await.into_keys());
    assert_eq!(
        left,
        scheduled_ids("booking-db", &["2026-11-03"]),
        "expired manual ones and old dailies went"
    );
    let temp = sandbox.instance_snapshots("temp-db").await;
    assert_eq!(
        temp.len(),
        1,
        "the last recovery point of a deleted database stays although it expired"
    );
    let temp_group = report
        .databases
        .iter()
        .find(|g| g.database == "temp-db")
        .expect("temp-db group");
    assert!(
        temp_group
            .note
            .as_deref()
            .is_some_and(|n| n.contains("no plan")),
        "{temp_group:?}"
    );
}

#[tokio::test]
async fn bad_input_is_rejected_and_deletes_nothing() {
    let policy = "version: 1\nname: bad-input\nplans:\n  - name: p\n    select: {tags: {\"lifeboat:backup\": \"true\"}}\n    retention: {keep_daily: 1, min_count: 1, max_delete_fraction: 1.0}\n    objectives: {rpo: 1h, rto: 4h}\n";
    let sandbox = Sandbox::new("eu-west-3").await;
    sandbox.instance("booking-db", &SELECTED, None).await;
    sandbox
        .snapshot_history(policy, daily("2026-11-01T02:00:00Z", 3))
        .await;
    let function = sandbox
        .retention_function(policy, at("2026-11-05T03:00:00Z"), &[])
        .await;
    let cases = [
        (
            event("retention/malformed.json"),
            "dry_run: invalid type: string \"yes please\", expected a boolean",
        ),
        (
            json!({"action": "forget"}),
            "unknown action `forget`; this function performs: retention",
        ),
        (
            json!({"action": "retention", "allow_large_deletions": true}),
            "allow_large_deletions needs `databases`",
        ),
        (
            json!({"action": "retention", "dryrun": true}),
            "unknown field `dryrun`",
        ),
        (
            event("snapshot/manual-pre-deploy.json"),
            "unknown action `snapshot`",
        ),
        (
            json!({"detail-type": "RDS DB Snapshot Event", "source": "aws.rds", "detail": {}}),
            "not `RDS DB Snapshot Event`",
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
    assert_eq!(sandbox.instance_snapshots("booking-db").await.len(), 3);
    assert!(retention_records(&sandbox).await.is_empty());
}

/// A one-plan policy selecting `lifeboat:backup=true`, keeping `rule` (min_count 1, no runaway guard) and copying to
/// `dr` for `retain_days`.
fn policy_copying_to(dr: &str, rule: &str, retain_days: u32) -> String {
    format!(
        r#"
version: 1
name: retention-test
plans:
  - name: production
    select: {{tags: {{"lifeboat:backup": "true"}}}}
    retention: {{{rule}, min_count: 1, max_delete_fraction: 1.0}}
    copies:
      - {{region: {dr}, kms_key_id: alias/dr, retain_days: {retain_days}}}
    objectives: {{rpo: 1h, rto: 4h}}
"#
    )
}

/// A history of `days` daily snapshots of `booking-db` from `first`, each copied to the DR region by the real copy
/// function an hour later, as production does.
async fn history_with_copies(sandbox: &Sandbox, policy: &str, dr: &str, first: &str, days: i64) {
    for day in daily(first, days) {
        sandbox.snapshot_history(policy, [day]).await;
        let report = sandbox
            .copy_function(policy, day + Duration::hours(1), &[dr], 5)
            .await
            .handle(event("copy/scheduled-hourly.json"), &context("copy"))
            .await
            .expect("copy run");
        assert_eq!(report.counts.done, 1, "{report:#?}");
    }
}

/// Set `lifeboat:legal-hold=true` on the DB snapshot `arn`, as an operator does.
async fn hold(rds: &aws_sdk_rds::Client, arn: &str) {
    rds.add_tags_to_resource()
        .resource_name(arn)
        .tags(
            Tag::builder()
                .key("lifeboat:legal-hold")
                .value("true")
                .build(),
        )
        .send()
        .await
        .expect("legal hold");
}

#[tokio::test]
async fn a_legal_hold_follows_the_recovery_point_across_regions() {
    let (primary, dr) = ("ap-east-2", "ap-southeast-5");
    let policy = policy_copying_to(dr, "keep_daily: 7", 14);
    let sandbox = Sandbox::new(primary).await;
    sandbox.instance("booking-db", &SELECTED, None).await;
    history_with_copies(&sandbox, &policy, dr, "2026-10-01T02:00:00Z", 30).await;
    let original = |day: &str| format!("lifeboat-booking-db-{day}-0200");
    let copy = |day: &str| format!("{}-from-{primary}", original(day));
    let dr_rds = aws_sdk_rds::Client::new(&lifeboat_integration_tests::sdk_config(dr).await);
    // A hold on the DR copy of 3 October protects its original; a hold on the original of 5 October protects its
    // copy. Both are far older than either region keeps.
    hold(
        &dr_rds,
        &format!(
            "arn:aws:rds:{dr}:123456789012:snapshot:{}",
            copy("2026-10-03")
        ),
    )
    .await;
    hold(
        &sandbox.rds,
        &format!(
            "arn:aws:rds:{primary}:123456789012:snapshot:{}",
            original("2026-10-05")
        ),
    )
    .await;

    let report = sandbox
        .retention_function(&policy, at("2026-10-30T04:00:00Z"), &[dr])
        .await
        .handle(event("retention/scheduled-daily.json"), &context("run"))
        .await
        .expect("run");
    assert_eq!(report.counts.failed, 0, "{report:#?}");
    let kept_primary = ids(sandbox.instance_snapshots("booking-db").await.into_keys());
    let kept_dr = ids(snapshots_in(dr).await.into_keys());
    for day in ["2026-10-03", "2026-10-05"] {
        assert!(
            kept_primary.contains(&original(day)),
            "{day} original: {kept_primary:?}"
        );
        assert!(kept_dr.contains(&copy(day)), "{day} copy: {kept_dr:?}");
    }
    assert!(
        !kept_primary.contains(&original("2026-10-04")),
        "no hold, deleted"
    );
    assert!(!kept_dr.contains(&copy("2026-10-04")), "no hold, deleted");
}

#[tokio::test]
async fn when_a_dr_region_cannot_be_listed_nothing_is_deleted_anywhere() {
    let (primary, dr) = ("ap-southeast-6", "ap-south-2");
    let policy = policy_copying_to(dr, "keep_daily: 3", 30);
    let sandbox = Sandbox::new(primary).await;
    sandbox.instance("booking-db", &SELECTED, None).await;
    sandbox
        .snapshot_history(&policy, daily("2026-11-01T02:00:00Z", 10))
        .await;
    let before = ids(sandbox.instance_snapshots("booking-db").await.into_keys());

    // The DR region answers nothing (its endpoint refuses connections): a hold or a running copy there could
    // concern the snapshots here, so none is deleted.
    let unreachable = aws_sdk_rds::Client::new(
        &lifeboat_integration_tests::sdk_config_at("http://127.0.0.1:9", dr).await,
    );
    let function = lifeboat_retention::RetentionFunction {
        services: sandbox.services(&policy, at("2026-11-10T04:00:00Z")),
        primary: sandbox.primary_adapter(),
        dr_regions: vec![lifeboat_integration_tests::adapter(unreachable, dr)],
        continuations: None,
    };
    let report = function
        .handle(event("retention/scheduled-daily.json"), &context("doubt"))
        .await
        .expect("run");
    assert_eq!(
        ids(sandbox.instance_snapshots("booking-db").await.into_keys()),
        before,
        "nothing deleted in the primary region"
    );
    assert!(report.results.is_empty(), "{:?}", report.results);
    assert!(
        report
            .run_errors
            .iter()
            .any(|e| e.contains("nothing was deleted in any region")),
        "{:?}",
        report.run_errors
    );
    let planned = &report.databases[0];
    assert_eq!(
        planned.delete.len(),
        7,
        "the plan is reported, not executed"
    );
    assert!(
        retention_records(&sandbox).await.is_empty(),
        "no intent was written"
    );
    let (subject, body) = sandbox.notifications().await.pop().expect("alerted");
    assert!(subject.contains("retention"), "{subject}");
    assert!(body.contains("nothing was deleted"), "{body}");

    // Once the region answers again, the next run deletes what the plan said.
    let report = sandbox
        .retention_function(&policy, at("2026-11-10T04:00:00Z"), &[dr])
        .await
        .handle(event("retention/scheduled-daily.json"), &context("healed"))
        .await
        .expect("run");
    assert_eq!(report.counts.done, 7, "{report:#?}");
}

#[tokio::test]
async fn a_run_out_of_time_defers_its_deletions_to_a_continuation_that_finishes_them() {
    use aws_sdk_lambda::operation::invoke::InvokeOutput;
    use aws_sdk_lambda::types::InvocationType;
    use aws_smithy_mocks::{mock, mock_client};
    use lifeboat::aws::lambda::Continuations;
    use lifeboat_retention::{Continuation, MAX_CONTINUATIONS};

    // On the raised-quota emulator, whose region this is only.
    let region = "eu-west-1";
    let policy = "version: 1\nname: continued\nplans:\n  - name: p\n    select: {tags: {\"lifeboat:backup\": \"true\"}}\n    retention: {keep_daily: 3, min_count: 1, max_delete_fraction: 1.0}\n    objectives: {rpo: 1h, rto: 4h}\n";
    let sandbox = Sandbox::with_raised_quota(region).await;
    sandbox.instance("continued-db", &SELECTED, None).await;
    sandbox
        .snapshot_history(policy, daily("2026-11-01T02:00:00Z", 10))
        .await;
    let before = ids(sandbox.instance_snapshots("continued-db").await.into_keys());
    let now = at("2026-11-10T04:00:00Z");

    // Lambda takes the continuation: an asynchronous invocation of this very function, the same request, number 1.
    let invoke = mock!(aws_sdk_lambda::Client::invoke)
        .match_requests(|req| {
            let payload: serde_json::Value =
                serde_json::from_slice(req.payload().expect("a payload").as_ref()).unwrap();
            req.function_name() == Some("lifeboat-retention")
                && req.invocation_type() == Some(&InvocationType::Event)
                && payload["action"] == "retention"
                && payload["continuation"] == 1
                && payload["allow_large_deletions"] == false
                && payload["stalled"] == true
        })
        .then_output(|| InvokeOutput::builder().status_code(202).build());
    let mut function = sandbox.retention_function(policy, now, &[]).await;
    function.continuations = Some(Continuations::new(
        mock_client!(aws_sdk_lambda, [&invoke]),
        region,
        "lifeboat-retention",
    ));

    // The invocation's deadline is 30 s away, inside the reserve: no deletion starts, each is deferred.
    let mut short = context("short-of-time");
    short.deadline = (now + Duration::seconds(30)).timestamp_millis() as u64;
    let report = function
        .handle(event("retention/scheduled-daily.json"), &short)
        .await
        .expect("run");
    assert_eq!(
        report.continuation,
        Some(Continuation {
            deferred: 7,
            number: 1,
            started: true
        })
    );
    assert_eq!(
        (report.counts.done, report.counts.waiting),
        (0, 7),
        "{report:#?}"
    );
    assert!(report.run_errors.is_empty(), "{:?}", report.run_errors);
    assert_eq!(invoke.num_calls(), 1);
    assert_eq!(
        ids(sandbox.instance_snapshots("continued-db").await.into_keys()),
        before,
        "nothing deleted"
    );
    let records = retention_records(&sandbox).await;
    let deferred = records
        .iter()
        .filter(|r| r.outcome.as_deref() == Some("deferred"))
        .count();
    assert_eq!(deferred, 7, "each deferral is on record: {records:#?}");

    // The continuation (what Lambda runs next) plans again from what is listed and deletes the rest.
    let continued = json!({"action": "retention", "databases": [], "allow_large_deletions": false, "continuation": 1});
    let report = function
        .handle(continued, &context("continuation-1"))
        .await
        .expect("continuation");
    assert_eq!(report.trigger, "continuation");
    assert_eq!(report.counts.done, 7, "{report:#?}");
    assert_eq!(report.continuation, None, "complete");
    assert_eq!(
        sandbox.instance_snapshots("continued-db").await.len(),
        3,
        "keep_daily: 3"
    );

    // A run whose listing used up its budget (its deadline 50 s away, inside the reserve) still deletes until
    // half the reserve is left, so that a chain of continuations always progresses.
    sandbox
        .snapshot_history(policy, daily("2026-10-25T02:00:00Z", 2))
        .await;
    let mut late = context("listing-took-long");
    late.deadline = (now + Duration::seconds(50)).timestamp_millis() as u64;
    let report = function
        .handle(event("retention/scheduled-daily.json"), &late)
        .await
        .expect("run");
    assert_eq!(
        (
            report.counts.done,
            report.counts.waiting,
            &report.continuation
        ),
        (2, 0, &None),
        "{report:#?}"
    );

    // A continuation that starts no deletion either stops the chain and asks for a longer timeout (alerted).
    sandbox
        .snapshot_history(policy, daily("2026-10-22T02:00:00Z", 2))
        .await;
    let mut stalled = context("stalled-again");
    stalled.deadline = short.deadline;
    let report = function
        .handle(
            json!({"action": "retention", "continuation": 1, "stalled": true}),
            &stalled,
        )
        .await
        .expect("run");
    assert_eq!(
        report.continuation,
        Some(Continuation {
            deferred: 2,
            number: 2,
            started: false
        })
    );
    assert!(
        report
            .run_errors
            .iter()
            .any(|e| e.contains("started none either") && e.contains("Timeout")),
        "{:?}",
        report.run_errors
    );
    assert_eq!(
        invoke.num_calls(),
        1,
        "no continuation that would stall again"
    );

    // A request that has continued too often stops chaining and says so (alerted), and a dry run never continues.
    sandbox
        .snapshot_history(policy, daily("2026-10-20T02:00:00Z", 2))
        .await;
    let mut last = context("the-last");
    last.deadline = short.deadline;
    let report = function
        .handle(
            json!({"action": "retention", "continuation": MAX_CONTINUATIONS}),
            &last,
        )
        .await
        .expect("run");
    assert_eq!(report.continuation.map(|c| c.started), Some(false));
    assert!(
        report
            .run_errors
            .iter()
            .any(|e| e.contains("already continued")),
        "{:?}",
        report.run_errors
    );
    assert_eq!(invoke.num_calls(), 1, "no further continuation");
    let refused = function
        .handle(
            json!({"action": "retention", "dry_run": true, "continuation": 1}),
            &context("dry"),
        )
        .await;
    assert!(refused.is_err());
}
