//! Copy planning speed: one copy run's plan over 10,000 databases, with a day's new snapshots to copy and 30 days
//! of earlier copies already in the DR region (300,000 snapshots there).
//!
//! `cargo bench -p lifeboat --bench copy_planning`

use std::hint::black_box;

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use lifeboat::copy::{self, CopyLimits, plan_copies};
use lifeboat::model::{DatabaseKind, Snapshot, Tags};
use lifeboat::ownership::Deployment;
use lifeboat::policy::Policy;
use lifeboat::tags;

const PRIMARY: &str = "us-east-1";
const DR: &str = "us-west-2";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 3, 0, 0).unwrap()
}

fn deployment() -> Deployment {
    Deployment::new("lifeboat", PRIMARY).expect("a valid deployment")
}

/// The nightly snapshot of database `db`, `days_ago` nights ago, as the primary region lists it.
fn original(db: usize, days_ago: i64) -> Snapshot {
    let database = format!("db-{db:05}");
    let created_at = now() - Duration::hours(1) - Duration::days(days_ago);
    let identifier = format!("lifeboat-{database}-{}", created_at.format("%Y-%m-%d-%H%M"));
    let tags: Tags = [
        (tags::MANAGED, tags::TRUE.to_string()),
        (tags::PLAN, "fleet".into()),
        (tags::SOURCE, database.clone()),
        (tags::CREATED_AT, created_at.to_rfc3339()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .chain(deployment().tags())
    .collect();
    Snapshot {
        arn: format!("arn:aws:rds:{PRIMARY}:123456789012:snapshot:{identifier}"),
        identifier,
        region: PRIMARY.into(),
        kind: DatabaseKind::Instance,
        database: database.into(),
        created_at,
        status: "available".into(),
        encrypted: true,
        engine: None,
        copied_from: None,
        tags,
    }
}

/// The DR copy of `source`, as the DR region lists it.
fn copy_of(source: &Snapshot) -> Snapshot {
    let identifier = copy::target_identifier(&source.identifier, PRIMARY, source.kind);
    Snapshot {
        arn: format!("arn:aws:rds:{DR}:123456789012:snapshot:{identifier}"),
        identifier,
        region: DR.into(),
        copied_from: Some(source.arn.clone()),
        ..source.clone()
    }
}

fn bench(c: &mut Criterion) {
    let policy = Policy::from_yaml(&format!(
        "version: 1\nname: bench\nplans:\n  - name: fleet\n    select:\n      patterns: [\"db-*\"]\n    retention: {{keep_daily: 30}}\n    copies:\n      - {{region: {DR}, kms_key_id: alias/lifeboat-dr, retain_days: 30}}\n    objectives: {{rpo: 1h, rto: 4h}}\n"
    ))
    .expect("the bench policy is valid");
    let databases = 10_000;
    // The primary region: 31 nights per database; the DR region: copies of all but the newest night.
    let sources: Vec<Snapshot> = (0..databases)
        .flat_map(|db| (0..31).map(move |day| original(db, day)))
        .collect();
    let dr: Vec<Snapshot> = sources
        .iter()
        .filter(|s| s.created_at < now() - Duration::days(1))
        .map(copy_of)
        .collect();
    let limits = CopyLimits::uniform(20);
    let mut group = c.benchmark_group("copy planning");
    group.sample_size(10);
    group.bench_function(
        "plan a copy run over 10,000 databases (310,000 originals, 300,000 copies)",
        |b| {
            b.iter(|| {
                plan_copies(
                    black_box(&policy),
                    &deployment(),
                    black_box(&sources),
                    black_box(&dr),
                    &limits,
                    now(),
                )
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
