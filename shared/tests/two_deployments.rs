//! Two deployments with DR in opposite directions, at the planner level, over 8 simulated years.
//!
//! The same pure planners the functions run (`snapshot::plan_snapshots`, `copy::plan_copies`,
//! `retention::plan_run`) drive two deployments of the same stack name, each at home in the other's DR region, each
//! with a database of the same name, daily from 2019 to the end of 2026, over an in-memory account that creates,
//! copies and deletes exactly what the plans say. Every day each deployment deletes only what it made; at the end
//! each region holds exactly what each policy's words keep (yearly recovery points reach back 7 years).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc, Weekday};
use lifeboat::copy::{CopyLimits, plan_copies};
use lifeboat::model::{Database, DatabaseKind, Snapshot};
use lifeboat::ownership::{Deployment, Owner};
use lifeboat::policy::{DEFAULT_POLICY_YAML, Policy};
use lifeboat::retention::{RunRequest, plan_run};
use lifeboat::snapshot::{SnapshotTrigger, plan_snapshots};

const EAST: &str = "us-east-1";
const WEST: &str = "us-west-2";

/// One deployment: who it is, its policy and its database.
struct Side {
    deployment: Deployment,
    policy: Policy,
    database: Database,
    dr: &'static str,
}

impl Side {
    fn new(home: &'static str, dr: &'static str) -> Self {
        let policy = Policy::from_yaml(
            &DEFAULT_POLICY_YAML.replace("region: us-west-2", &format!("region: {dr}")),
        )
        .expect("default policy");
        let database = Database {
            identifier: "booking-db".into(),
            kind: DatabaseKind::Instance,
            arn: format!("arn:aws:rds:{home}:123456789012:db:booking-db"),
            region: home.into(),
            engine: "postgres".into(),
            status: "available".into(),
            encrypted: true,
            cluster: None,
            endpoint: None,
            master_username: None,
            engine_version: None,
            replica_source: None,
            tags: [("lifeboat:backup".to_string(), "true".to_string())].into(),
        };
        Self {
            deployment: Deployment::new("lifeboat", home).expect("deployment"),
            policy,
            database,
            dr,
        }
    }
}

/// The account: every manual DB snapshot, by region and identifier.
#[derive(Default)]
struct Account(BTreeMap<String, BTreeMap<String, Snapshot>>);

impl Account {
    fn all(&self) -> Vec<Snapshot> {
        self.0.values().flat_map(|r| r.values().cloned()).collect()
    }

    fn in_region(&self, region: &str) -> Vec<Snapshot> {
        self.0
            .get(region)
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Create `snapshot` unless its identifier exists in its region (RDS's "already exists").
    fn create(&mut self, snapshot: Snapshot) {
        self.0
            .entry(snapshot.region.to_string())
            .or_default()
            .entry(snapshot.identifier.clone())
            .or_insert(snapshot);
    }
}

/// One simulated day of `side`: the 02:00 snapshot, the 03:00 copies, the 04:00 retention. Returns what retention
/// deleted, as (region, identifier, who made it).
fn day(side: &Side, account: &mut Account, at: DateTime<Utc>) -> Vec<(String, String, Owner)> {
    let home = side.deployment.home_region.as_str();
    let trigger = SnapshotTrigger::Scheduled { at };
    let planned = plan_snapshots(
        &side.policy,
        &side.deployment,
        std::slice::from_ref(&side.database),
        &trigger,
        &account.in_region(home),
    )
    .expect("snapshot plan");
    for snapshot in planned.snapshots {
        account.create(Snapshot {
            arn: format!(
                "arn:aws:rds:{home}:123456789012:snapshot:{}",
                snapshot.snapshot_id
            ),
            identifier: snapshot.snapshot_id,
            region: home.into(),
            kind: DatabaseKind::Instance,
            database: side.database.identifier.clone().into(),
            created_at: at + Duration::seconds(7),
            status: "available".into(),
            encrypted: true,
            engine: None,
            copied_from: None,
            tags: snapshot.tags.into_iter().collect(),
        });
    }

    let copies = plan_copies(
        &side.policy,
        &side.deployment,
        &account.in_region(home),
        &account.in_region(side.dr),
        &CopyLimits::uniform(20),
        at + Duration::hours(1),
    );
    assert!(copies.findings.is_empty(), "{at}: {:?}", copies.findings);
    for copy in copies.starts {
        account.create(Snapshot {
            arn: format!(
                "arn:aws:rds:{}:123456789012:snapshot:{}",
                copy.region, copy.target_id
            ),
            identifier: copy.target_id,
            region: copy.region.into(),
            kind: copy.source.kind,
            database: copy.source.database.clone(),
            created_at: copy.source.created_at,
            status: "available".into(),
            encrypted: true,
            engine: None,
            copied_from: Some(copy.source.arn.clone()),
            tags: copy.tags.into_iter().collect(),
        });
    }

    let plan = plan_run(
        &side.policy,
        &side.deployment,
        std::slice::from_ref(&side.database),
        account.all(),
        &RunRequest::default(),
        at + Duration::hours(2),
    );
    let mut deleted = Vec::new();
    for group in plan.groups.iter().filter(|g| g.refused.is_none()) {
        for id in &group.delete {
            let region = account.0.get_mut(&group.region).expect("region");
            let gone = region.remove(id).expect("planned deletions exist");
            deleted.push((
                group.region.clone(),
                id.clone(),
                side.deployment.owner_of(&gone.tags),
            ));
        }
    }
    deleted
}

/// The identifier of the original snapshot taken at `at`.
fn original(at: DateTime<Utc>) -> String {
    format!("lifeboat-booking-db-{}", at.format("%Y-%m-%d-%H%M"))
}

#[test]
fn two_deployments_with_dr_in_opposite_directions_over_eight_years() {
    let sides = [Side::new(EAST, WEST), Side::new(WEST, EAST)];
    let mut account = Account::default();
    let first = NaiveDate::from_ymd_opt(2019, 1, 1).expect("date");
    let last = NaiveDate::from_ymd_opt(2026, 12, 31).expect("date");
    let days: Vec<DateTime<Utc>> = first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|d| d.and_hms_opt(2, 0, 0).expect("time").and_utc())
        .collect();
    assert_eq!(days.len(), 2922);

    let mut deletions = [0usize; 2];
    for at in &days {
        for (side, count) in sides.iter().zip(deletions.iter_mut()) {
            for (region, id, owner) in day(side, &mut account, *at) {
                assert_eq!(
                    owner,
                    Owner::Mine,
                    "{at}: {} deleted {id} in {region}, made by {owner}",
                    side.deployment
                );
                *count += 1;
            }
        }
    }

    // Each region holds exactly the home deployment's originals its policy keeps (daily 30 days, weekly 12
    // weeks, monthly 12 months, yearly 7 years, from when each was taken) and the other's copies (90 days).
    let now = *days.last().expect("days") + Duration::hours(2);
    let kept_original = |at: &DateTime<Utc>| {
        let age = now - *at;
        age < Duration::days(30)
            || (at.weekday() == Weekday::Sun && age < Duration::weeks(12))
            || (at.day() == 1 && *at > now - Months::new(12))
            || (at.day() == 1 && at.month() == 1 && *at > now - Months::new(7 * 12))
    };
    for (home, other) in [(EAST, WEST), (WEST, EAST)] {
        let mut expected: BTreeSet<String> = days
            .iter()
            .filter(|at| kept_original(at))
            .map(|at| original(*at))
            .collect();
        expected.extend(
            days.iter()
                .filter(|at| now - **at < Duration::days(90))
                .map(|at| format!("{}-from-{other}", original(*at))),
        );
        let found: BTreeSet<String> = account.0[home].keys().cloned().collect();
        assert_eq!(
            found.difference(&expected).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "{home}: kept but not expected"
        );
        assert_eq!(
            expected.difference(&found).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "{home}: expected but gone"
        );
        let oldest_yearly = account.0[home]
            .values()
            .filter(|s| !s.identifier.contains("-from-"))
            .map(|s| s.created_at)
            .min()
            .expect("a recovery point");
        assert_eq!(
            oldest_yearly.date_naive(),
            NaiveDate::from_ymd_opt(2020, 1, 1).expect("date"),
            "{home}: the yearly recovery points reach back 7 years (within one year)"
        );
        println!(
            "{home}: {} of its own originals kept (oldest {}), {} copies of the other's",
            found.iter().filter(|id| !id.contains("-from-")).count(),
            oldest_yearly.date_naive(),
            found.iter().filter(|id| id.contains("-from-")).count()
        );
    }
    println!(
        "deletions over 8 years: {} by the {EAST} deployment, {} by the {WEST} deployment, none of the other's",
        deletions[0], deletions[1]
    );
}
