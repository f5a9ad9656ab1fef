//! Retention planning speed: the design target is well under a second for 1,000,000 snapshots.
//!
//! `cargo bench -p lifeboat --bench retention`

use std::hint::black_box;

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use lifeboat::model::{DatabaseKind, Snapshot, Tags};
use lifeboat::policy::Policy;
use lifeboat::retention::{self, Context, Rules};
use lifeboat::tags;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap()
}

/// `count` managed snapshots of `database`, one every `step_minutes`, newest just before `now`.
fn history(database: &str, count: usize, step_minutes: i64) -> Vec<Snapshot> {
    (0..count)
        .map(|n| {
            let created_at = now() - Duration::minutes(60 + step_minutes * n as i64);
            let tags = Tags::from([(tags::MANAGED, tags::TRUE), (tags::TIER, "daily")]);
            Snapshot {
                identifier: format!("lifeboat-{database}-{n}"),
                arn: format!("arn:aws:rds:us-east-1:123456789012:snapshot:lifeboat-{database}-{n}"),
                region: "us-east-1".into(),
                kind: DatabaseKind::Instance,
                database: database.into(),
                created_at,
                status: "available".into(),
                encrypted: true,
                engine: None,
                copied_from: None,
                tags,
            }
        })
        .collect()
}

/// The default policy's rules (daily 30d, weekly 12w, monthly 12m, yearly 7y), with `keep_within` as well.
fn seed_rules() -> Rules {
    let policy = Policy::default_policy().expect("the default policy is valid");
    Rules {
        keep_within: Some(std::time::Duration::from_secs(2 * 86_400)),
        max_delete_fraction: 1.0,
        ..Rules::primary(&policy.plans[0].retention)
    }
}

fn bench(c: &mut Criterion) {
    let context = Context {
        database_exists: true,
        ..Context::default()
    };
    let rules = seed_rules();
    let mut group = c.benchmark_group("retention");
    group.sample_size(10);

    // One database with 1,000,000 snapshots (one every 5 minutes: about 9.5 years).
    let one = history("booking-db", 1_000_000, 5);
    group.bench_function("plan 1,000,000 snapshots of one database", |b| {
        b.iter(|| retention::plan(black_box(&one), &rules, &context, now()))
    });

    // A fleet: 1,000 databases with 1,000 hourly snapshots each, grouped then planned.
    let fleet: Vec<Snapshot> = (0..1_000)
        .flat_map(|db| history(&format!("db-{db}"), 1_000, 60))
        .collect();
    group.bench_function("group and plan 1,000 databases x 1,000 snapshots", |b| {
        b.iter_batched(
            || fleet.clone(),
            |mut fleet| {
                retention::grouped(black_box(&mut fleet))
                    .map(|members| {
                        retention::plan(members, &rules, &context, now())
                            .deletions()
                            .len()
                    })
                    .sum::<usize>()
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
