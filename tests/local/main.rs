//! `lifeboat-local`: the driver of the local DR run (`scripts/dr-run`).
//!
//! Against the emulator that `scripts/dr-run` started, it seeds a sample fleet, invokes the real function binaries
//! through `cargo lambda invoke` (served by `cargo lambda watch`, exactly as Lambda would run them), and prints what
//! each step did: per-database results, the snapshots with their tags, the ledger and the alerts.

use std::collections::BTreeMap;
use std::error::Error;
use std::process::{Command, ExitCode};

use chrono::{Duration, DurationRound, Utc};
use lifeboat::report::{ItemOutcome, ItemStatus};
use lifeboat_copy::CopyReport;
use lifeboat_integration_tests::{Sandbox, kms_key_in, snapshot_keys_in};
use lifeboat_retention::RetentionReport;
use lifeboat_snapshot::SnapshotReport;
use lifeboat_verify::VerifyReport;
use serde::de::DeserializeOwned;
use serde_json::Value;

type Outcome<T> = Result<T, Box<dyn Error>>;

/// Names the local run shares with `scripts/dr-run` (which hands them to the functions).
const LEDGER_BUCKET: &str = "lifeboat-local-ledger";
const ALERT_TOPIC: &str = "lifeboat-local-alerts";
/// The DR region of the default policy.
const DR_REGION: &str = "us-west-2";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("local DR run failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Outcome<()> {
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let port = std::env::var("LIFEBOAT_INVOKE_PORT")
        .map_err(|_| "LIFEBOAT_INVOKE_PORT is not set (run scripts/dr-run)")?;

    heading(&format!("Seeding a sample fleet in {region}"));
    let sandbox = Sandbox::named(&region, LEDGER_BUCKET, ALERT_TOPIC).await;
    let key = sandbox.kms_key().await;
    let tagged = [
        ("lifeboat:backup", "true"),
        ("team", "bookings"),
        ("cost-center", "cc-42"),
    ];
    sandbox.instance("booking-db", &tagged, Some(&key)).await;
    sandbox
        .instance(
            "reports-db",
            &[("lifeboat:backup", "true"), ("team", "analytics")],
            None,
        )
        .await;
    sandbox
        .aurora_cluster(
            "billing",
            &[("lifeboat:backup", "true"), ("team", "payments")],
        )
        .await;
    sandbox
        .instance("scratch-db", &[("team", "sandbox")], None)
        .await;
    println!("  booking-db   postgres instance, KMS-encrypted, tagged lifeboat:backup=true");
    println!("  reports-db   postgres instance, tagged lifeboat:backup=true");
    println!(
        "  billing      Aurora PostgreSQL cluster (member billing-1), tagged lifeboat:backup=true"
    );
    println!("  scratch-db   postgres instance, not tagged: the default policy leaves it alone");
    kms_key_in(DR_REGION, "alias/lifeboat-dr").await;
    sandbox.drill_subnet_group("lifeboat-drills").await;
    drill_role_on_local_postgres().await?;
    println!("  ledger s3://{LEDGER_BUCKET}, alerts sns:{ALERT_TOPIC}");
    println!(
        "  {DR_REGION}: KMS key alias/lifeboat-dr for DR copies (the default policy's copy target)"
    );

    heading("Step 1: snapshot function, daily schedule (events/snapshot/scheduled-daily.json)");
    let daily = Data::File("events/snapshot/scheduled-daily.json");
    let report: SnapshotReport = invoke("lifeboat-snapshot", &port, &daily)?;
    print_results(&report.results);

    heading("Step 2: the same schedule delivered again (idempotent: nothing is created twice)");
    let report: SnapshotReport = invoke("lifeboat-snapshot", &port, &daily)?;
    print_results(&report.results);

    heading("Step 3: manual pre-deployment snapshot (events/snapshot/manual-pre-deploy.json)");
    let manual = Data::File("events/snapshot/manual-pre-deploy.json");
    let report: SnapshotReport = invoke("lifeboat-snapshot", &port, &manual)?;
    print_results(&report.results);

    heading("Snapshots Lifeboat made, with their tags");
    for db in ["booking-db", "reports-db", "scratch-db"] {
        print_snapshots(db, &sandbox.instance_snapshots(db).await);
    }
    print_snapshots("billing", &sandbox.cluster_snapshots("billing").await);

    heading(
        "Step 4: copy function, \"manual snapshot created\" event (events/copy/snapshot-created.json)",
    );
    let created = Data::File("events/copy/snapshot-created.json");
    let report: CopyReport = invoke("lifeboat-copy", &port, &created)?;
    print_copies(&report);
    let copies = snapshot_keys_in(DR_REGION).await;
    if let Some((id, (key, tags))) = copies.iter().next() {
        println!("  for example {id} in {DR_REGION}:");
        println!(
            "      kms key = {}",
            key.as_deref().unwrap_or("(unencrypted source: none)")
        );
        for key in [
            "lifeboat:copied-from",
            "lifeboat:source-region",
            "lifeboat:copied-at",
            "lifeboat:created-at",
        ] {
            println!(
                "      {key} = {}",
                tags.get(key).map(String::as_str).unwrap_or("-")
            );
        }
    }

    heading(
        "Step 5: 45 days of history, as the daily schedule made it (one scheduled event a day)",
    );
    let today = Utc::now().duration_trunc(Duration::days(1))? + Duration::hours(2);
    let mut created = 0;
    for day in (1..=45).map(|n| today - Duration::days(n)) {
        let mut event: Value = serde_json::from_str(&std::fs::read_to_string(
            "events/snapshot/scheduled-daily.json",
        )?)?;
        event["time"] = Value::String(day.to_rfc3339());
        let report: SnapshotReport = invoke("lifeboat-snapshot", &port, &Data::Json(event))?;
        created += report.counts.done;
    }
    println!("  {created} snapshots of booking-db, reports-db and billing, daily until yesterday");

    heading("Step 6: copy function, hourly safety net: the backlog goes out 5 copies at a time");
    let hourly = Data::File("events/copy/scheduled-hourly.json");
    for run in 1..=3 {
        let report: CopyReport = invoke("lifeboat-copy", &port, &hourly)?;
        let slots = &report.regions[DR_REGION];
        println!(
            "  run {run}: {} started ({} in flight before, limit {}), {} waiting",
            slots.started, slots.in_flight, slots.limit, slots.backlog
        );
    }
    println!(
        "  (moto finishes copies at once; in AWS each run or copy-finished event refills the freed slots)"
    );

    heading("Step 7: retention dry run (events/retention/manual-dry-run.json): nothing changes");
    let dry_run = Data::File("events/retention/manual-dry-run.json");
    let plan: RetentionReport = invoke("lifeboat-retention", &port, &dry_run)?;
    for group in &plan.databases {
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for decision in group.decisions.iter().flatten() {
            for reason in &decision.keep {
                let name = serde_json::to_value(reason)?;
                *reasons
                    .entry(name.as_str().unwrap_or_default().to_string())
                    .or_default() += 1;
            }
        }
        let refused = group.refused.as_deref().map(|r| format!(" (REFUSED: {r})"));
        let reasons: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
        println!(
            "  {:<8} {:<11} {:<10} keep {:>3}, delete {:>3}{}  kept by: {}",
            group.kind,
            group.database,
            group.region,
            group.kept,
            group.delete.len(),
            refused.unwrap_or_default(),
            reasons.join(", ")
        );
    }

    heading("Step 8: retention, daily schedule (events/retention/scheduled-daily.json)");
    let scheduled = Data::File("events/retention/scheduled-daily.json");
    let report: RetentionReport = invoke("lifeboat-retention", &port, &scheduled)?;
    let c = report.counts;
    println!(
        "  => {} deleted, {} already gone, {} skipped, {} failed; every deletion has an intent and a result record",
        c.done, c.unchanged, c.skipped, c.failed
    );

    heading("Snapshots of booking-db left after retention (newest first)");
    let mut left: Vec<(String, String, String)> = sandbox
        .instance_snapshots("booking-db")
        .await
        .into_iter()
        .map(|(id, tags)| {
            let tag = |key: &str| tags.get(key).cloned().unwrap_or_default();
            (tag("lifeboat:created-at"), id, tag("lifeboat:tier"))
        })
        .collect();
    left.sort_by(|a, b| b.cmp(a));
    for (created_at, id, tier) in &left {
        println!("  {created_at}  {id:<40} {tier}");
    }
    println!(
        "  ({} snapshots; reports-db has {}, billing {})",
        left.len(),
        sandbox.instance_snapshots("reports-db").await.len(),
        sandbox.cluster_snapshots("billing").await.len()
    );

    heading(
        "Step 9: restore drills, schedule: the newest recovery point of each database is restored",
    );
    let schedule = Data::File("events/verify/scheduled.json");
    let started: VerifyReport = invoke("lifeboat-verify", &port, &schedule)?;
    for result in &started.results {
        println!(
            "  {:<8} {:<11} {:<12} {:<9} {}",
            result.kind,
            result.database,
            result.action,
            format!("{:?}", result.status).to_lowercase(),
            result
                .detail
                .as_deref()
                .unwrap_or_else(|| result.resource.as_deref().unwrap_or("-"))
        );
    }

    heading(
        "Step 10: restore drills, \"restored from snapshot\" event: drill-only credentials are set",
    );
    let restored = Data::File("events/verify/instance-restored.json");
    let secured: VerifyReport = invoke("lifeboat-verify", &port, &restored)?;
    for drill in &secured.drills {
        println!(
            "  {:<32} {:<11} {}",
            drill.drill, drill.database, drill.step
        );
    }

    heading(
        "Step 11: restore drills, schedule: checks run, results recorded, drills deleted (drill report)",
    );
    let checked: VerifyReport = invoke("lifeboat-verify", &port, &schedule)?;
    for drill in &checked.drills {
        let verdict = match drill.passed {
            Some(true) => "PASSED",
            Some(false) => "FAILED",
            None => "-",
        };
        println!(
            "  {} restored from {} ({}): {verdict}",
            drill.database, drill.snapshot, drill.region
        );
        println!(
            "    restore {}s, drill {}s, RTO {}s",
            drill.restore_seconds.unwrap_or_default(),
            drill.drill_seconds.unwrap_or_default(),
            drill.rto_seconds.unwrap_or_default()
        );
        for check in &drill.checks {
            println!(
                "    {:<4} {:<24} expected {:<12} actual {} ({} ms)",
                if check.passed { "ok" } else { "FAIL" },
                check.name,
                check.expected,
                check.actual,
                check.duration_ms
            );
        }
    }
    let left = sandbox.databases_named("lbdrill-").await;
    println!(
        "  temporary databases left: {}",
        if left.is_empty() {
            "none".to_string()
        } else {
            left.join(", ")
        }
    );

    heading(&format!("Ledger (s3://{LEDGER_BUCKET}/ledger/)"));
    let records = sandbox.ledger_records().await;
    let mut tally: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for record in &records {
        let outcome = record.outcome.clone().unwrap_or_else(|| "intent".into());
        *tally
            .entry((record.function.clone(), record.action.clone(), outcome))
            .or_default() += 1;
    }
    for ((function, action, outcome), count) in tally {
        println!("  {count:>4} x {function:<9} {action:<16} {outcome}");
    }
    println!("  newest records:");
    for record in records.iter().rev().take(4) {
        println!(
            "  {}  {:<9} {:<16} {:<8} {:<7} {:<42} {}",
            record.time.format("%Y-%m-%dT%H:%M:%SZ"),
            record.function,
            record.action,
            format!("{:?}", record.phase).to_lowercase(),
            record.outcome.as_deref().unwrap_or("-"),
            record.resource,
            record.reason
        );
    }

    heading("Alerts published to SNS");
    let notifications = sandbox.notifications().await;
    if notifications.is_empty() {
        println!("  none: nothing failed, was skipped or refused");
    }
    for (subject, body) in notifications {
        println!("  subject: {subject}\n{}", indent(&body));
    }
    Ok(())
}

/// The event an invocation sends.
enum Data {
    /// A sample event file from `events/`.
    File(&'static str),
    /// An event built here.
    Json(Value),
}

/// Invoke `function` with `data` through `cargo lambda invoke`; returns its response.
fn invoke<T: DeserializeOwned>(function: &str, port: &str, data: &Data) -> Outcome<T> {
    let (flag, value) = match data {
        Data::File(path) => ("--data-file", path.to_string()),
        Data::Json(event) => ("--data-ascii", event.to_string()),
    };
    let output = Command::new("cargo")
        .args([
            "lambda",
            "invoke",
            function,
            "--invoke-port",
            port,
            flag,
            &value,
        ])
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "cargo lambda invoke {function} {flag} {value} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

fn print_results(results: &[ItemOutcome]) {
    for result in results {
        let status = match result.status {
            ItemStatus::Done => "created",
            ItemStatus::Unchanged => "already there",
            ItemStatus::Skipped => "SKIPPED",
            ItemStatus::Failed => "FAILED",
        };
        println!(
            "  {:<8} {:<11} {:<14} {}{}",
            result.kind,
            result.database,
            status,
            result.resource.as_deref().unwrap_or("-"),
            result
                .detail
                .as_deref()
                .map(|d| format!("  ({d})"))
                .unwrap_or_default()
        );
    }
}

fn print_copies(report: &CopyReport) {
    for result in &report.results {
        println!(
            "  {:<8} {:<11} -> {:<10} {:<9} {}{}",
            result.kind,
            result.database,
            result.region,
            format!("{:?}", result.status).to_lowercase(),
            result.resource.as_deref().unwrap_or("-"),
            result
                .detail
                .as_deref()
                .map(|d| format!("  ({d})"))
                .unwrap_or_default()
        );
    }
    for (region, slots) in &report.regions {
        println!(
            "  {region}: {} started, {} already in flight, limit {}, {} waiting",
            slots.started, slots.in_flight, slots.limit, slots.backlog
        );
    }
    for finding in &report.findings {
        println!("  finding: {finding}");
    }
}

fn print_snapshots(database: &str, snapshots: &BTreeMap<String, BTreeMap<String, String>>) {
    if snapshots.is_empty() {
        println!("  {database}: no snapshots");
    }
    for (id, tags) in snapshots {
        println!("  {id}");
        for (key, value) in tags {
            println!("      {key} = {value}");
        }
    }
}

/// The master user of the sample fleet, on the local PostgreSQL server the drills' checks connect to (the
/// local run maps the temporary instances' endpoints there).
async fn drill_role_on_local_postgres() -> Outcome<()> {
    let (client, connection) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
        tokio_postgres::NoTls,
    )
    .await
    .map_err(|e| {
        format!("the local PostgreSQL server (127.0.0.1:5432) is needed for the drills: {e}")
    })?;
    tokio::spawn(connection);
    client
        .batch_execute(
            "DO $$ BEGIN CREATE ROLE lifeboat LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
        )
        .await?;
    Ok(())
}

fn heading(text: &str) {
    println!("\n== {text}");
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
