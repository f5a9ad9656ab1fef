//! `lifeboat-local`: the driver of the local DR run (`scripts/dr-run`).
//!
//! Against the emulator that `scripts/dr-run` started, it seeds a sample fleet, invokes the real function binaries
//! through `cargo lambda invoke` (served by `cargo lambda watch`, exactly as Lambda would run them), and prints what
//! each step did: per-database results, the snapshots with their tags, the ledger and the alerts.

use std::collections::BTreeMap;
use std::error::Error;
use std::process::{Command, ExitCode};

use lifeboat::report::ItemStatus;
use lifeboat_integration_tests::Sandbox;
use lifeboat_snapshot::SnapshotReport;

type Outcome<T> = Result<T, Box<dyn Error>>;

/// Names the local run shares with `scripts/dr-run` (which hands them to the functions).
const LEDGER_BUCKET: &str = "lifeboat-local-ledger";
const ALERT_TOPIC: &str = "lifeboat-local-alerts";

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
    println!("  ledger s3://{LEDGER_BUCKET}, alerts sns:{ALERT_TOPIC}");

    heading("Step 1: snapshot function, daily schedule (events/snapshot/scheduled-daily.json)");
    print_report(&invoke_snapshot(
        &port,
        "events/snapshot/scheduled-daily.json",
    )?);

    heading("Step 2: the same schedule delivered again (idempotent: nothing is created twice)");
    print_report(&invoke_snapshot(
        &port,
        "events/snapshot/scheduled-daily.json",
    )?);

    heading("Step 3: manual pre-deployment snapshot (events/snapshot/manual-pre-deploy.json)");
    print_report(&invoke_snapshot(
        &port,
        "events/snapshot/manual-pre-deploy.json",
    )?);

    heading("Snapshots Lifeboat made, with their tags");
    for db in ["booking-db", "reports-db", "scratch-db"] {
        print_snapshots(db, &sandbox.instance_snapshots(db).await);
    }
    print_snapshots("billing", &sandbox.cluster_snapshots("billing").await);

    heading(&format!("Ledger (s3://{LEDGER_BUCKET}/ledger/)"));
    for record in sandbox.ledger_records().await {
        println!(
            "  {}  {:<9} {:<16} {:<11} {:<42} {}",
            record.time.format("%Y-%m-%dT%H:%M:%SZ"),
            record.function,
            record.action,
            record.outcome.as_deref().unwrap_or("-"),
            record.resource,
            record.reason
        );
    }

    heading("Alerts published to SNS");
    let notifications = sandbox.notifications().await;
    if notifications.is_empty() {
        println!("  none: every database was snapshotted");
    }
    for (subject, body) in notifications {
        println!("  subject: {subject}\n{}", indent(&body));
    }
    Ok(())
}

/// Invoke the snapshot function with the event in `file` through `cargo lambda invoke`.
fn invoke_snapshot(port: &str, file: &str) -> Outcome<SnapshotReport> {
    let output = Command::new("cargo")
        .args([
            "lambda",
            "invoke",
            "lifeboat-snapshot",
            "--invoke-port",
            port,
            "--data-file",
            file,
        ])
        .output()?;
    if !output.status.success() {
        return Err(format!(
            "cargo lambda invoke --data-file {file} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&output.stdout)?)
}

fn print_report(report: &SnapshotReport) {
    for result in &report.results {
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
    let c = report.counts;
    println!(
        "  => {} created, {} already there, {} skipped, {} failed (run {}, {} trigger)",
        c.done, c.unchanged, c.skipped, c.failed, report.run_id, report.trigger
    );
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

fn heading(text: &str) {
    println!("\n== {text}");
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
