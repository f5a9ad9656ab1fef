//! Two deployments side by side in one account, with DR in opposite directions: the real snapshot, copy and
//! retention functions of each run daily against the emulator, and each deployment touches only what it made.
//!
//! The hardest case: both stacks have the same name (stack names are unique only within a region), both run the
//! default policy, and each home region has a database of the same name. Before deployments carried an identity,
//! the first deleted the second's monthly and yearly snapshots once they were 90 days old (it applied its DR copy
//! retention to them), and the second's copies were never made (the first's original had the same name).

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, Months, Utc, Weekday};
use lifeboat::policy::DEFAULT_POLICY_YAML;
use lifeboat_integration_tests::{Sandbox, context, event};

/// Home region of deployment A; the DR region of B.
const A: &str = "mx-central-1";
/// Home region of deployment B; the DR region of A.
const B: &str = "ap-southeast-7";
/// Days simulated: past the 90-day copy retention.
const DAYS: i64 = 130;

/// The default policy, with its DR region set to `dr`.
fn default_policy_copying_to(dr: &str) -> String {
    assert!(DEFAULT_POLICY_YAML.contains("region: us-west-2"));
    DEFAULT_POLICY_YAML.replace("region: us-west-2", &format!("region: {dr}"))
}

fn first_day() -> DateTime<Utc> {
    "2026-01-01T02:00:00Z".parse().expect("time")
}

/// The original snapshot of `booking-db` taken at `day`.
fn original(day: DateTime<Utc>) -> String {
    format!("lifeboat-booking-db-{}", day.format("%Y-%m-%d-%H%M"))
}

/// What the default policy keeps of daily snapshots at `now`, computed from the plan's words: daily 30 days,
/// weekly (Sunday) 12 weeks, monthly (the 1st) 12 months, yearly (1 January) 7 years.
fn kept_originals(days: &[DateTime<Utc>], now: DateTime<Utc>) -> BTreeSet<String> {
    days.iter()
        .filter(|day| {
            let age = now - **day;
            age < Duration::days(30)
                || (day.weekday() == Weekday::Sun && age < Duration::weeks(12))
                || (day.day() == 1 && **day > now - Months::new(12))
                || (day.day() == 1 && day.month() == 1 && **day > now - Months::new(7 * 12))
        })
        .map(|day| original(*day))
        .collect()
}

/// The copies in the DR region at `now`: every day's snapshot, kept 90 days from the original time.
fn kept_copies(days: &[DateTime<Utc>], now: DateTime<Utc>, from: &str) -> BTreeSet<String> {
    days.iter()
        .filter(|day| now - **day < Duration::days(90))
        .map(|day| format!("{}-from-{from}", original(*day)))
        .collect()
}

/// Runs in an account whose manual snapshot quota is raised: one database with the default policy in each
/// direction needs about 150 DB snapshots per region (its own 30 + 12 + 12 + 7 and the other's 90 days of copies),
/// over AWS's default quota of 100.
#[tokio::test]
async fn two_deployments_with_dr_in_opposite_directions_keep_to_their_own() {
    let (east, west) = (
        Sandbox::with_raised_quota(A).await,
        Sandbox::with_raised_quota(B).await,
    );
    for sandbox in [&east, &west] {
        sandbox.kms_alias("alias/lifeboat-dr").await;
        let key = sandbox.kms_key().await;
        sandbox
            .instance("booking-db", &[("lifeboat:backup", "true")], Some(&key))
            .await;
    }
    let deployments = [
        (&east, default_policy_copying_to(B), B),
        (&west, default_policy_copying_to(A), A),
    ];

    let days: Vec<DateTime<Utc>> = (0..DAYS).map(|n| first_day() + Duration::days(n)).collect();
    for day in &days {
        for (sandbox, policy, dr) in &deployments {
            sandbox.snapshot_history(policy, [*day]).await;
            let copy = sandbox
                .copy_function(policy, *day + Duration::hours(1), &[dr], 20)
                .await
                .handle(event("copy/scheduled-hourly.json"), &context("copy"))
                .await
                .expect("copy run");
            assert_eq!(
                (copy.counts.failed, copy.run_errors.len()),
                (0, 0),
                "{day}: {copy:#?}"
            );
            let retention = sandbox
                .retention_function(policy, *day + Duration::hours(2), &[dr])
                .await
                .handle(
                    event("retention/scheduled-daily.json"),
                    &context("retention"),
                )
                .await
                .expect("retention run");
            assert_eq!(
                (retention.counts.failed, retention.run_errors.len()),
                (0, 0),
                "{day}: {retention:#?}"
            );
        }
    }

    // Each region holds exactly the home deployment's originals that its policy keeps, and the other deployment's
    // copies that its copy retention keeps.
    let now = *days.last().expect("days") + Duration::hours(2);
    for (sandbox, home, other) in [(&east, A, B), (&west, B, A)] {
        let mut expected = kept_originals(&days, now);
        expected.extend(kept_copies(&days, now, other));
        let found: BTreeSet<String> = sandbox
            .manual_snapshot_ids()
            .await
            .into_iter()
            .filter(|id| id.starts_with("lifeboat-"))
            .collect();
        let missing: Vec<_> = expected.difference(&found).collect();
        let extra: Vec<_> = found.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{home}: missing {missing:?}, not expected {extra:?}"
        );
        // The case that went wrong: the home deployment's 1 January (monthly and yearly) is 129 days old, older than
        // the other deployment's 90-day copy retention in this region, and still there.
        assert!(found.contains(&original(first_day())), "{home}");
    }

    // The ledger of neither names a resource of the other: in its home region only its originals, in its DR region
    // only its own copies.
    for (sandbox, home, dr) in [(&east, A, B), (&west, B, A)] {
        let records = sandbox.ledger_records().await;
        assert!(records.iter().any(|r| r.action == "delete-snapshot"));
        for record in &records {
            let own = if record.region == home {
                !record.resource.contains("-from-")
            } else {
                record.region == dr && record.resource.ends_with(&format!("-from-{home}"))
            };
            assert!(own, "{home}'s ledger names {record:?}");
        }
    }

    // And retention says what it left alone, and why.
    let report = east
        .retention_function(&deployments[0].1, now, &[B])
        .await
        .handle(event("retention/manual-dry-run.json"), &context("dry"))
        .await
        .expect("dry run");
    let left: Vec<(&str, &str)> = report
        .left_alone
        .iter()
        .map(|l| (l.region.as_str(), l.owner.as_str()))
        .collect();
    assert!(
        left.contains(&(B, "deployment `lifeboat` of ap-southeast-7")),
        "{left:?}"
    );
    assert!(
        left.contains(&(A, "deployment `lifeboat` of ap-southeast-7")),
        "{left:?}"
    );
}
