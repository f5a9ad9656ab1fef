//! The real copy handler against moto server, with KMS keys created there per region: copies land in each DR
//! region with that region's key and the expected tags, a second run copies nothing, a backlog larger than the
//! limit is started in slots, an unencrypted source is copied and reported, a wrong key is a clear failure, a copy
//! that RDS failed is alerted once, deleted and made again under a new name, and bad input is rejected.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use lifeboat::model::DatabaseKind;
use lifeboat::report::ItemStatus;
use lifeboat_integration_tests::{
    Sandbox, adapter, at, context, event, kms_key_in, sdk_config_at, set_snapshot_status,
    snapshot_keys_in,
};
use serde_json::json;

const SELECTED: [(&str, &str); 1] = [("lifeboat:backup", "true")];

fn policy(copies: &[(&str, &str)]) -> String {
    let targets: String = copies
        .iter()
        .map(|(region, key)| {
            format!("      - {{region: {region}, kms_key_id: \"{key}\", retain_days: 90}}\n")
        })
        .collect();
    format!(
        "version: 1\nname: copy-test\nplans:\n  - name: production\n    select: {{tags: {{\"lifeboat:backup\": \"true\"}}}}\n    retention: {{keep_daily: 30}}\n    copies:\n{targets}    objectives: {{rpo: 1h, rto: 4h}}\n"
    )
}

#[tokio::test]
async fn copies_reach_every_dr_region_with_that_regions_key_and_once_only() {
    let (primary, west, east) = ("eu-north-1", "ap-northeast-2", "ap-southeast-1");
    let sandbox = Sandbox::new(primary).await;
    let source_key = sandbox.kms_key().await;
    let west_key = kms_key_in(west, "alias/lifeboat-dr").await;
    let east_key = kms_key_in(east, "alias/lifeboat-dr").await;
    let policy = policy(&[(west, "alias/lifeboat-dr"), (east, &east_key)]);
    sandbox
        .instance("booking-db", &SELECTED, Some(&source_key))
        .await;
    sandbox
        .snapshot_history(&policy, [at("2026-11-22T02:00:00Z")])
        .await;

    // "Manual snapshot created" starts the copies at once.
    let function = sandbox
        .copy_function(&policy, at("2026-11-22T02:05:00Z"), &[west, east], 5)
        .await;
    let report = function
        .handle(event("copy/snapshot-created.json"), &context("c1"))
        .await
        .expect("run");
    assert_eq!(report.trigger, "rds-event");
    assert_eq!(report.event.as_deref(), Some("RDS-EVENT-0042"));
    assert_eq!(report.counts.done, 2, "{report:#?}");
    assert!(report.findings.is_empty(), "{:?}", report.findings);

    let source_arn =
        format!("arn:aws:rds:{primary}:123456789012:snapshot:lifeboat-booking-db-2026-11-22-0200");
    for (region, key) in [(west, &west_key), (east, &east_key)] {
        let copies = snapshot_keys_in(region).await;
        let (copy_key, tags) =
            &copies[&format!("lifeboat-booking-db-2026-11-22-0200-from-{primary}")];
        assert_eq!(
            copy_key.as_ref(),
            Some(key),
            "the destination region's own key in {region}"
        );
        assert_ne!(copy_key.as_deref(), Some(source_key.as_str()));
        assert_eq!(tags["lifeboat:copied-from"], source_arn);
        assert_eq!(tags["lifeboat:source-region"], primary);
        assert_eq!(tags["lifeboat:copied-at"], "2026-11-22T02:05:00Z");
        assert_eq!(
            tags["lifeboat:created-at"], "2026-11-22T02:00:00Z",
            "copies age from the original"
        );
        assert_eq!(tags["lifeboat:source"], "booking-db");
        assert_eq!(tags["lifeboat:managed"], "true");
        assert_eq!(tags["lifeboat:policy"], "copy-test");
        assert_eq!(tags["lifeboat:deployment"], "lifeboat");
        assert_eq!(
            tags["lifeboat:home-region"], primary,
            "the deployment's identity"
        );
    }
    let records = sandbox.ledger_records().await;
    let copies: Vec<_> = records.iter().filter(|r| r.function == "copy").collect();
    assert_eq!(copies.len(), 2);
    assert!(
        copies
            .iter()
            .all(|r| r.outcome.as_deref() == Some("started"))
    );

    // The schedule's safety-net run finds every copy in place: nothing is started twice.
    let again = function
        .handle(event("copy/scheduled-hourly.json"), &context("c2"))
        .await
        .expect("rerun");
    assert!(again.results.is_empty(), "{:?}", again.results);
    assert_eq!(snapshot_keys_in(west).await.len(), 1);
    assert_eq!(snapshot_keys_in(east).await.len(), 1);
    assert!(sandbox.notifications().await.is_empty());
}

#[tokio::test]
async fn a_backlog_larger_than_the_limit_is_started_oldest_first_one_per_database() {
    let (primary, dr) = ("us-west-1", "eu-south-1");
    let sandbox = Sandbox::new(primary).await;
    kms_key_in(dr, "alias/lifeboat-dr").await;
    let policy = policy(&[(dr, "alias/lifeboat-dr")]);
    let databases = ["booking-db", "orders-db", "users-db"];
    for db in databases {
        sandbox.instance(db, &SELECTED, None).await;
    }
    let days: Vec<DateTime<Utc>> = (0..3)
        .map(|n| at("2026-11-18T02:00:00Z") + Duration::days(n))
        .collect();
    sandbox.snapshot_history(&policy, days.clone()).await;

    // Slots of 2, and RDS copies one database's snapshots one after another: each run starts at most one copy per
    // database, the oldest still missing first. (moto finishes copies at once, so every run finds its slots free
    // again; in-flight accounting is proven by the planner's tests and the simulation.)
    let mut function = sandbox
        .copy_function(&policy, at("2026-11-21T03:00:00Z"), &[dr], 2)
        .await;
    // The history is days old; the copy deadline (its own tests) is not what this test is about.
    function.limits.deadline = Duration::days(7);
    let day_of = |id: &str| {
        id.split("-db-")
            .nth(1)
            .map(|rest| rest[..10].to_string())
            .unwrap_or_default()
    };
    let mut copied: Vec<(String, String)> = Vec::new();
    let mut runs: Vec<BTreeSet<String>> = Vec::new();
    for run in 1..=6 {
        let report = function
            .handle(
                event("copy/scheduled-hourly.json"),
                &context(&format!("run-{run}")),
            )
            .await
            .expect("run");
        let started: Vec<(String, String)> = report
            .results
            .iter()
            .filter(|r| r.status == ItemStatus::Done)
            .filter_map(|r| Some((r.resource.clone()?, r.database.clone())))
            .collect();
        assert!(started.len() <= 2, "run {run}: {started:?}");
        let databases: BTreeSet<&String> = started.iter().map(|(_, db)| db).collect();
        assert_eq!(
            databases.len(),
            started.len(),
            "run {run}: one copy per database"
        );
        assert!(
            report.notification.is_none(),
            "run {run}: waiting is never alerted: {report:?}"
        );
        runs.push(started.iter().map(|(id, _)| day_of(id)).collect());
        copied.extend(started);
    }
    // Oldest first: no run starts a day's snapshot while an older one waits for a later run.
    for pair in runs.windows(2) {
        if let (Some(latest), Some(earliest)) = (pair[0].last(), pair[1].first()) {
            assert!(latest <= earliest, "oldest first: {runs:?}");
        }
    }
    let unique: BTreeSet<&String> = copied.iter().map(|(id, _)| id).collect();
    assert_eq!((copied.len(), unique.len()), (9, 9), "{copied:?}");
    assert_eq!(snapshot_keys_in(dr).await.len(), 9);
}

#[tokio::test]
async fn unencrypted_sources_are_copied_without_a_key_and_reported() {
    let (primary, dr) = ("me-south-1", "af-south-1");
    let sandbox = Sandbox::new(primary).await;
    kms_key_in(dr, "alias/lifeboat-dr").await;
    let policy = policy(&[(dr, "alias/lifeboat-dr")]);
    sandbox.instance("legacy-db", &SELECTED, None).await;
    sandbox
        .snapshot_history(&policy, [at("2026-11-22T02:00:00Z")])
        .await;
    let function = sandbox
        .copy_function(&policy, at("2026-11-22T02:05:00Z"), &[dr], 5)
        .await;
    let report = function
        .handle(event("copy/scheduled-hourly.json"), &context("u1"))
        .await
        .expect("run");
    assert_eq!(report.counts.done, 1, "{report:#?}");
    let copies = snapshot_keys_in(dr).await;
    assert_eq!(
        copies["lifeboat-legacy-db-2026-11-22-0200-from-me-south-1"].0, None,
        "no key for an unencrypted source"
    );
    assert_eq!(report.findings.len(), 1);
    assert!(
        report.findings[0].contains("unencrypted"),
        "{:?}",
        report.findings
    );
    assert!(
        report.findings[0].contains("lifeboat-legacy-db-2026-11-22-0200"),
        "{:?}",
        report.findings
    );
}

#[tokio::test]
async fn the_source_regions_key_is_refused_clearly_naming_key_and_region() {
    // The classic mistake: one key for everything. A key of the source region cannot encrypt a copy elsewhere.
    let (primary, dr) = ("ap-east-1", "ap-south-2");
    let sandbox = Sandbox::new(primary).await;
    let source_key = kms_key_in(primary, "alias/booking").await;
    let policy = policy(&[(dr, &source_key)]);
    sandbox
        .instance("booking-db", &SELECTED, Some(&source_key))
        .await;
    sandbox
        .snapshot_history(&policy, [at("2026-11-22T02:00:00Z")])
        .await;
    let function = sandbox
        .copy_function(&policy, at("2026-11-22T02:05:00Z"), &[dr], 5)
        .await;
    let report = function
        .handle(event("copy/scheduled-hourly.json"), &context("k1"))
        .await
        .expect("run");
    let failed = &report.results[0];
    assert_eq!(failed.status, ItemStatus::Failed);
    let detail = failed.detail.as_deref().unwrap_or_default();
    assert!(
        detail.starts_with(&format!("KMS key `{source_key}` in {dr} is not accessible")),
        "{detail}"
    );
    assert!(
        failed
            .next_step
            .as_deref()
            .unwrap_or_default()
            .contains("kms:CreateGrant")
    );
    let notifications = sandbox.notifications().await;
    assert_eq!(notifications.len(), 1);
    assert!(
        notifications[0].1.contains(&source_key),
        "{}",
        notifications[0].1
    );
    assert!(snapshot_keys_in(dr).await.is_empty());
}

#[tokio::test]
async fn a_copy_that_rds_failed_is_alerted_deleted_and_made_again_under_a_new_name() {
    // On the raised-quota emulator, whose regions these are only: the emulator fails the copy as RDS would.
    let (primary, dr) = ("ap-northeast-1", "ap-south-1");
    let sandbox = Sandbox::with_raised_quota(primary).await;
    let policy = policy(&[(dr, "alias/lifeboat-dr")]);
    sandbox.instance("ledger-db", &SELECTED, None).await;
    sandbox
        .snapshot_history(&policy, [at("2026-11-22T02:00:00Z")])
        .await;
    let function = sandbox
        .copy_function(&policy, at("2026-11-22T03:00:00Z"), &[dr], 5)
        .await;
    let dr_rds = adapter(
        aws_sdk_rds::Client::new(&sdk_config_at(&sandbox.endpoint, dr).await),
        dr,
    );
    let in_dr = || async {
        dr_rds
            .list_snapshots()
            .await
            .expect("list DR snapshots")
            .into_iter()
            .map(|s| (s.identifier, s.status.to_string()))
            .collect::<Vec<_>>()
    };
    let first = format!("lifeboat-ledger-db-2026-11-22-0200-from-{primary}");
    let retry = format!("lifeboat-ledger-db-2026-11-22-0200-retry2-from-{primary}");

    let report = function
        .handle(event("copy/scheduled-hourly.json"), &context("f1"))
        .await
        .expect("run");
    assert_eq!(report.counts.done, 1, "{report:#?}");
    set_snapshot_status(
        &sandbox.endpoint,
        dr,
        DatabaseKind::Instance,
        &first,
        "failed",
    )
    .await;

    // The next run: the failed copy is alerted, deleted (this deployment made it) and started again.
    let report = function
        .handle(event("copy/scheduled-hourly.json"), &context("f2"))
        .await
        .expect("run");
    let failed: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.status == ItemStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{report:#?}");
    let detail = failed[0].detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains(&format!("copy `{first}`")) && detail.contains("deleted, retried as"),
        "{detail}"
    );
    assert!(
        report
            .results
            .iter()
            .any(|r| r.status == ItemStatus::Done && r.resource.as_deref() == Some(retry.as_str())),
        "{report:#?}"
    );
    assert_eq!(
        in_dr().await,
        [(retry.clone(), "available".to_string())],
        "the failed copy is gone, the retry is the copy"
    );
    let notifications = sandbox.notifications().await;
    assert_eq!(notifications.len(), 1, "{notifications:?}");
    assert!(
        notifications[0].1.contains(&first),
        "{}",
        notifications[0].1
    );
    let records = sandbox.ledger_records().await;
    for (action, resource, outcome) in [
        ("delete-failed-copy", &first, "deleted"),
        ("copy-snapshot", &retry, "started"),
    ] {
        assert!(
            records.iter().any(|r| r.action == action
                && &r.resource == resource
                && r.outcome.as_deref() == Some(outcome)),
            "{action} {resource} {outcome} on record: {records:#?}"
        );
    }

    // Healed: the run after copies nothing and says nothing.
    let report = function
        .handle(event("copy/scheduled-hourly.json"), &context("f3"))
        .await
        .expect("run");
    assert!(report.results.is_empty(), "{report:#?}");
    assert_eq!(sandbox.notifications().await.len(), 1, "no repeat");
}

#[tokio::test]
async fn bad_input_is_rejected_and_irrelevant_events_are_ignored() {
    let (primary, dr) = ("il-central-1", "eu-central-2");
    let sandbox = Sandbox::new(primary).await;
    kms_key_in(dr, "alias/lifeboat-dr").await;
    let policy = policy(&[(dr, "alias/lifeboat-dr")]);
    sandbox.instance("booking-db", &SELECTED, None).await;
    sandbox
        .snapshot_history(&policy, [at("2026-11-22T02:00:00Z")])
        .await;
    let function = sandbox
        .copy_function(&policy, at("2026-11-22T02:05:00Z"), &[dr], 5)
        .await;
    let cases = [
        (
            event("copy/malformed.json"),
            "`RDS DB Snapshot Event` event has no detail.EventID",
        ),
        (
            json!({"action": "copy-everything"}),
            "unknown action `copy-everything`; this function performs: copy",
        ),
        (
            json!({"action": "copy", "database": "booking-db"}),
            "unknown field `database`",
        ),
        (
            json!({"detail-type": "RDS DB Instance Event", "source": "aws.rds", "detail": {}}),
            "not `RDS DB Instance Event`",
        ),
        (json!(42), "expected a JSON object"),
    ];
    for (payload, expected) in cases {
        let err = function
            .handle(payload.clone(), &context("bad"))
            .await
            .expect_err("must be rejected");
        assert_eq!(err.error_type(), "Lifeboat.InvalidInput", "{payload}");
        assert!(err.to_string().contains(expected), "{payload}: {err}");
    }
    assert!(
        snapshot_keys_in(dr).await.is_empty(),
        "bad input copied nothing"
    );
    // Every other sample event is accepted and reconciles (nothing to copy here but the one snapshot).
    for file in [
        "copy/copy-finished.json",
        "copy/cluster-snapshot-created.json",
        "copy/manual.json",
    ] {
        let report = function
            .handle(event(file), &context(file))
            .await
            .expect(file);
        assert!(report.ignored.is_none(), "{file}: {report:?}");
    }
    assert_eq!(
        snapshot_keys_in(dr).await.len(),
        1,
        "the snapshot was copied once"
    );
    let ignored = function
        .handle(event("copy/snapshot-deleted.json"), &context("del"))
        .await
        .expect("ignored");
    assert!(
        ignored
            .ignored
            .as_deref()
            .is_some_and(|why| why.starts_with("RDS-EVENT-0041 needs no copy"))
    );
    assert!(ignored.results.is_empty());
    assert_eq!(
        snapshot_keys_in(dr).await.len(),
        1,
        "an ignored event copies nothing more"
    );
}
