//! `lifeboat-local`: the driver of the local DR run (`scripts/dr-run`).
//!
//! Against the emulator that `scripts/dr-run` started, it seeds a sample fleet, invokes the real function binaries
//! through `cargo lambda invoke` (served by `cargo lambda watch`, exactly as Lambda would run them), and prints what
//! each step did: per-database results, the snapshots with their tags, the ledger and the alerts.

use std::collections::BTreeMap;
use std::error::Error;
use std::process::{Command, ExitCode};

use chrono::{Duration, DurationRound, Utc};
use lifeboat::model::DatabaseKind;
use lifeboat::report::{ItemOutcome, ItemStatus};
use lifeboat_copy::CopyReport;
use lifeboat_integration_tests::{
    Sandbox, context, event, hosted_zone, kms_key_in, publish_free_storage, route53_records,
    sdk_config, set_alarm, set_snapshot_status, snapshot_keys_in, upsert_cname,
};
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
/// The deployment the served functions run as (`LIFEBOAT_DEPLOYMENT` in `scripts/dr-run`).
const DEPLOYMENT: &str = "lifeboat";

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
    if std::env::args().nth(1).as_deref() == Some(NEIGHBOUR) {
        return neighbour(&region).await;
    }
    if std::env::args().nth(1).as_deref() == Some(LIVE_EVENT_HISTORY) {
        let policy_file = std::env::args().nth(2).ok_or("the policy file")?;
        return live_event_history(&region, &std::fs::read_to_string(policy_file)?).await;
    }
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
    print_policy();

    heading("Step 1: snapshot function, daily schedule (events/snapshot/scheduled-daily.json)");
    let daily = Data::File("events/snapshot/scheduled-daily.json");
    let report: SnapshotReport = invoke("lifeboat-snapshot", &port, &daily)?;
    print_results(&report.results);

    heading("Step 2: the same schedule delivered again (idempotent: nothing is created twice)");
    let report: SnapshotReport = invoke("lifeboat-snapshot", &port, &daily)?;
    print_results(&report.results);

    heading(
        "Step 2b: orders-db joins after 02:00; RDS says its backup finished \
         (events/snapshot/db-instance-backup-finished.json)",
    );
    sandbox
        .instance("orders-db", &[("lifeboat:backup", "true")], None)
        .await;
    let finished = Data::File("events/snapshot/db-instance-backup-finished.json");
    let report: SnapshotReport = invoke("lifeboat-snapshot", &port, &finished)?;
    print_results(&report.results);
    println!(
        "  (caught up under 02:00's identifier; the hourly runs until 10:00 would have done it too)"
    );

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
        "Step 4b: RDS fails a copy (set on the emulator, which never fails one): the next copy run alerts, \
         deletes it and copies again under a new name",
    );
    let failed_copy = copies
        .keys()
        .next()
        .ok_or("step 4 made no copy to fail")?
        .clone();
    set_snapshot_status(
        &sandbox.endpoint,
        DR_REGION,
        DatabaseKind::Instance,
        &failed_copy,
        "failed",
    )
    .await;
    println!("  {failed_copy} in {DR_REGION} is now `failed`");
    let alerts_before = sandbox.notifications().await.len();
    let hourly = Data::File("events/copy/scheduled-hourly.json");
    let report: CopyReport = invoke("lifeboat-copy", &port, &hourly)?;
    print_copies(&report);
    let alerts = sandbox.notifications().await.len();
    for (subject, _) in sandbox.notifications().await.iter().skip(alerts_before) {
        println!("  alert sent: {subject}");
    }
    let report: CopyReport = invoke("lifeboat-copy", &port, &hourly)?;
    println!(
        "  the run after: {} item(s), {} new alert(s); {DR_REGION} holds {:?}",
        report.results.len(),
        sandbox.notifications().await.len() - alerts,
        snapshot_keys_in(DR_REGION).await.keys().collect::<Vec<_>>()
    );

    heading(
        "Step 5: 45 days of history, as the daily schedule made it (one scheduled event a day)",
    );
    let today = Utc::now().duration_trunc(Duration::days(1))? + Duration::hours(2);
    let mut created = 0;
    for day in (1..=45).map(|n| today - Duration::days(n)) {
        let mut scheduled = event("snapshot/scheduled-daily.json");
        scheduled["time"] = Value::String(day.to_rfc3339());
        let report: SnapshotReport = invoke("lifeboat-snapshot", &port, &Data::Json(scheduled))?;
        created += report.counts.done;
    }
    println!("  {created} snapshots of booking-db, reports-db and billing, daily until yesterday");

    heading(&format!(
        "Meanwhile: a second Lifeboat deployment `{DEPLOYMENT}` at home in {DR_REGION}, DR to {region}"
    ));
    // The same stack name, at home in the DR region, with its own booking-db and DR the other way: the hardest case
    // for ownership. Its handlers run in a child process (their metrics would crowd this output).
    let status = Command::new(std::env::current_exe()?)
        .arg(NEIGHBOUR)
        .stdout(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("the {DR_REGION} deployment's history failed ({status})").into());
    }
    let west = sandbox_in(DR_REGION).await;
    println!(
        "  its booking-db (the same name) snapshotted daily for 45 days in {DR_REGION} and copied to {region}: \
         {} originals, {} copies",
        west.instance_snapshot_count("booking-db", false).await,
        sandbox.instance_snapshot_count("booking-db", true).await
    );

    heading(
        "Step 6: copy function, hourly safety net: the backlog goes out one copy per database at a time",
    );
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

    for alone in &plan.left_alone {
        println!(
            "  left alone in {:<10} {:>3} snapshot(s) made by {} (e.g. {})",
            alone.region, alone.count, alone.owner, alone.example
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
    println!(
        "  the {DR_REGION} deployment's snapshots are untouched: {} originals in {DR_REGION}, {} copies in {region}",
        west.instance_snapshot_count("booking-db", false).await,
        sandbox.instance_snapshot_count("booking-db", true).await
    );

    heading(
        "Snapshots of booking-db left after retention (newest first; the other deployment's copies left out)",
    );
    let mut left: Vec<(String, String, String)> = sandbox
        .instance_snapshots("booking-db")
        .await
        .into_iter()
        .filter(|(id, _)| !id.contains("-from-"))
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
    let objects = sandbox.ledger_objects().await;
    println!(
        "  {} objects: each run writes its intents as one object before it acts and its results as one after",
        objects.len()
    );
    let records = sandbox.ledger_records().await;
    let foreign = records
        .iter()
        .filter(|r| {
            (r.region == DR_REGION && !r.resource.contains("-from-"))
                || r.resource.ends_with(&format!("-from-{DR_REGION}"))
        })
        .count();
    println!("  records naming a resource of the {DR_REGION} deployment: {foreign}");
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
    let alerts_before_monitor = sandbox.notifications().await.len();
    publish_free_storage_of_every_instance(&region).await?;

    heading(
        "Step 12: monitor, manual report (events/monitor/manual-report.json): RPO, alerts, posture report",
    );
    let report: Value = invoke(
        "lifeboat-monitor",
        &port,
        &Data::File("events/monitor/manual-report.json"),
    )?;
    print_monitor(&report);
    for (subject, _) in sandbox
        .notifications()
        .await
        .iter()
        .skip(alerts_before_monitor)
    {
        println!("  alert sent: {subject}");
    }
    let html = sandbox
        .s3
        .get_object()
        .bucket(LEDGER_BUCKET)
        .key("reports/posture.html")
        .send()
        .await?
        .body
        .collect()
        .await?
        .into_bytes();
    let saved = std::path::Path::new(".lifeboat/posture.html");
    std::fs::write(saved, &html)?;
    println!(
        "  posture report: s3://{LEDGER_BUCKET}/reports/posture.html, saved as {} ({} bytes); open it in a browser",
        saved.display(),
        html.len()
    );
    screenshot(saved);

    incident(&sandbox).await?;
    failover(&sandbox, &port).await
}

/// The Live Event Service's plan, added to the policy file the functions read (`LIFEBOAT_POLICY_FILE`) before the
/// failover function's first start, as an operator adds a plan and redeploys: `liveevent-db` in the primary region,
/// DR in us-west-2, RPO 5 minutes and RTO 15 minutes, Route 53 failover of `db.liveevent.lifeboat.example`.
fn live_event_plan(zone: &str, alarm: &str) -> String {
    format!(
        r#"  - name: liveevent
    select: {{identifiers: [liveevent-db]}}
    retention: {{daily: 35d, min_count: 7}}
    copies:
      - {{region: {DR_REGION}, kms_key_id: alias/lifeboat-dr, retain_days: 90}}
    verification:
      every: 7d
      instance_class: db.t3.micro
      subnet_group: lifeboat-drills
      security_groups: [sg-0liveeventdrills]
      database_name: lifeboat_liveevent
      checks:
        - {{kind: tables_present, tables: [tickets]}}
        - {{kind: min_rows, table: tickets, at_least: 100}}
    objectives: {{rpo: 5m, rto: 15m}}
    failover:
      region: {DR_REGION}
      database: liveevent-db
      mode: approval
      alarms: [{alarm}]
      subnet_group: lifeboat-failover
      security_groups: [sg-0liveeventapp]
      drill_every: 90d
      dns:
        hosted_zone_id: {zone}
        records: [{LIVE_EVENT_NAME}]
        drill_record: {LIVE_EVENT_DRILL_NAME}
"#
    )
}

/// The name the Live Event application connects to, and the failover drill's.
const LIVE_EVENT_NAME: &str = "db.liveevent.lifeboat.example";
const LIVE_EVENT_DRILL_NAME: &str = "failover-drill.db.liveevent.lifeboat.example";

/// Step 14: the Live Event Service's failover, end to end: a failover drill on the drill record, then the primary's
/// alarm fires, the on-call approves through the CLI, the DR database is restored from the newest copy, checked, and
/// `db.liveevent.lifeboat.example` resolves to us-west-2 (RTO and RPO against 15 and 5 minutes); then failback.
async fn failover(sandbox: &Sandbox, port: &str) -> Outcome<()> {
    heading(
        "Step 14: Live Event Service: failover drill, then a real failover on an alarm with approval, then failback",
    );
    let alarm = "liveevent-primary-unhealthy";
    let zone = hosted_zone("lifeboat.example").await;
    let policy_file = std::env::var("LIFEBOAT_POLICY_FILE")
        .map_err(|_| "LIFEBOAT_POLICY_FILE is not set (run scripts/dr-run)")?;
    let mut policy = std::fs::read_to_string(&policy_file)?;
    policy.push_str(&live_event_plan(&zone, alarm));
    lifeboat::policy::Policy::from_yaml(&policy)?;
    std::fs::write(&policy_file, &policy)?;
    println!(
        "  plan liveevent added to {policy_file} (RPO 5m, RTO 15m, failover to {DR_REGION}, approval mode)"
    );

    // The application's database and its data (the checks read it on the local PostgreSQL server, which stands in
    // for every restored database of the local run).
    sandbox
        .instance_of(
            "liveevent-db",
            "postgres",
            "lifeboat",
            &[("team", "live-events")],
        )
        .await;
    let admin = local_postgres("user=postgres dbname=postgres").await?;
    sql(
        &admin,
        "DROP DATABASE IF EXISTS lifeboat_liveevent WITH (FORCE)",
    )
    .await?;
    sql(&admin, "CREATE DATABASE lifeboat_liveevent OWNER lifeboat").await?;
    let app = local_postgres("user=lifeboat dbname=lifeboat_liveevent").await?;
    sql(
        &app,
        "CREATE TABLE tickets (id int PRIMARY KEY, event text NOT NULL); \
         INSERT INTO tickets SELECT n, 'final-' || (n % 4) FROM generate_series(1, 250) n",
    )
    .await?;
    sandbox
        .drill_subnet_group_in(DR_REGION, "lifeboat-failover")
        .await;
    sandbox
        .drill_subnet_group_in(DR_REGION, "lifeboat-drills")
        .await;

    // Its newest recovery point in us-west-2: a snapshot 3 minutes ago and its copy, by the real snapshot and copy
    // handlers in a child process (their metrics would crowd this output).
    let status = Command::new(std::env::current_exe()?)
        .args([LIVE_EVENT_HISTORY, &policy_file])
        .stdout(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("the Live Event snapshot and copy failed ({status})").into());
    }
    let primary_endpoint = sandbox.endpoint_of("liveevent-db").await;
    upsert_cname(&zone, LIVE_EVENT_NAME, &primary_endpoint).await;
    set_alarm(&sandbox.region, alarm, "OK", "the primary answers").await;
    println!(
        "  liveevent-db (postgres) with a copy in {DR_REGION} taken 3 minutes ago; {LIVE_EVENT_NAME} -> {primary_endpoint}; \
         alarm {alarm} OK"
    );

    println!(
        "\n  -- the quarterly failover test: a drill on the drill record, production untouched"
    );
    println!("  $ lifeboat --local failover drill --plan liveevent");
    cli(&["failover", "drill", "--plan", "liveevent"])?;
    print_messages(sandbox, "failover drill").await;
    println!(
        "  {LIVE_EVENT_NAME} -> {}; drill record: {}",
        record_of(&zone, LIVE_EVENT_NAME).await,
        match record_of(&zone, LIVE_EVENT_DRILL_NAME).await.as_str() {
            "" => "removed".to_string(),
            other => other.to_string(),
        }
    );

    println!("\n  -- the primary stops answering: the alarm fires");
    set_alarm(
        &sandbox.region,
        alarm,
        "ALARM",
        "3 datapoints below threshold",
    )
    .await;
    let mut alarm_event = event("failover/alarm-state-change.json");
    alarm_event["detail"]["alarmName"] = alarm.into();
    alarm_event["detail"]["state"]["timestamp"] = Value::from(Utc::now().to_rfc3339());
    alarm_event["time"] = Value::from(Utc::now().to_rfc3339());
    let detected: lifeboat_failover::FailoverReport =
        invoke("lifeboat-failover", port, &Data::Json(alarm_event))?;
    for action in &detected.actions {
        println!("  {action}");
    }
    let request = print_messages(sandbox, "approve failover").await;
    let token = token_of(&request)?;
    let accept = request.contains("--accept-data-loss");

    println!("\n  -- the on-call engineer confirms the incident and approves");
    let mut approve = vec!["failover", "approve", token.as_str()];
    if accept {
        approve.push("--accept-data-loss");
    }
    println!("  $ lifeboat --local {}", approve.join(" "));
    cli(&approve)?;
    print_messages(sandbox, "failover of").await;
    println!("  $ lifeboat --local failover status --plan liveevent");
    cli(&["failover", "status", "--plan", "liveevent"])?;
    let answer = record_of(&zone, LIVE_EVENT_NAME).await;
    if !answer.contains(DR_REGION) {
        return Err(format!("{LIVE_EVENT_NAME} resolves to {answer}, not to {DR_REGION}").into());
    }
    println!("  {LIVE_EVENT_NAME} resolves to {answer} ({DR_REGION})");

    println!(
        "\n  -- us-east-1 is healthy again: failback, through the same approval, then the cutover"
    );
    set_alarm(&sandbox.region, alarm, "OK", "recovered").await;
    println!("  $ lifeboat --local failover failback --plan liveevent");
    cli(&["failover", "failback", "--plan", "liveevent"])?;
    let token = token_of(&print_messages(sandbox, "approve failback").await)?;
    println!("  $ lifeboat --local failover approve {token}");
    cli(&["failover", "approve", &token])?;
    let token = token_of(&print_messages(sandbox, "ready for the cutover").await)?;
    println!(
        "  (the on-call stops the writes here and sees ReplicaLag at 0; the emulator's replica has no lag)"
    );
    println!("  $ lifeboat --local failover approve {token}");
    cli(&["failover", "approve", &token])?;
    print_messages(sandbox, "failback of").await;
    let answer = record_of(&zone, LIVE_EVENT_NAME).await;
    if !answer.contains(&sandbox.region) {
        return Err(format!("{LIVE_EVENT_NAME} resolves to {answer} after failback").into());
    }
    println!(
        "  {LIVE_EVENT_NAME} resolves to {answer} ({}) again",
        sandbox.region
    );
    drop(app);
    sql(
        &admin,
        "DROP DATABASE IF EXISTS lifeboat_liveevent WITH (FORCE)",
    )
    .await?;
    Ok(())
}

/// Print the notifications whose subject contains `text` that were not printed before; returns the newest body.
async fn print_messages(sandbox: &Sandbox, text: &str) -> String {
    let mut newest = String::new();
    for (subject, body) in sandbox
        .notifications()
        .await
        .iter()
        .filter(|(s, _)| s.contains(text))
    {
        if PRINTED.with(|printed| printed.borrow_mut().insert(subject.clone() + body)) {
            println!(
                "  SNS: {subject}\n{}",
                indent(&format!("  {}", body.trim_end()).replace('\n', "\n  "))
            );
        }
        newest.clone_from(body);
    }
    newest
}

thread_local! {
    /// The messages already printed (the sandbox returns every message received so far).
    static PRINTED: std::cell::RefCell<std::collections::BTreeSet<String>> = Default::default();
}

/// The token in an approval request.
fn token_of(request: &str) -> Outcome<String> {
    Ok(request
        .split("lifeboat failover approve ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or("the request has no token")?
        .to_string())
}

/// What the CNAME `name` in `zone` holds ("" when it does not exist).
async fn record_of(zone: &str, name: &str) -> String {
    route53_records(zone, name)
        .await
        .into_iter()
        .flat_map(|r| r.values)
        .collect::<Vec<_>>()
        .join(",")
}

/// Step 13: an incident, handled with the operator CLI (`lifeboat --local`, which invokes the served functions):
/// a deploy deletes rows of a table; the operator plans and starts a point-in-time restore to the minute before,
/// waits for the one "ready" message, reads the missing rows from the restored database, and the restore expires
/// (final snapshot, then deleted).
///
/// The emulator restores no data: the restored instance's endpoint maps to the local PostgreSQL server (the test
/// endpoint override every restored database of the local run gets), where this driver keeps an as-of copy of the
/// table taken before the damage, standing in for what RDS would restore.
async fn incident(sandbox: &Sandbox) -> Outcome<()> {
    heading(
        "Step 13: incident INC-481: a deploy deletes bookings; the on-call restores the minute before with the CLI",
    );
    let admin = local_postgres("user=postgres dbname=postgres").await?;
    // One statement per call: PostgreSQL runs several in one implicit transaction, where CREATE DATABASE fails.
    for statement in [
        "DROP DATABASE IF EXISTS lifeboat_incident WITH (FORCE)",
        "DROP DATABASE IF EXISTS lifeboat_incident_asof WITH (FORCE)",
        "CREATE DATABASE lifeboat_incident OWNER lifeboat",
    ] {
        sql(&admin, statement).await?;
    }
    let app = local_postgres("user=lifeboat dbname=lifeboat_incident").await?;
    sql(
        &app,
        "CREATE TABLE bookings (id int PRIMARY KEY, guest text NOT NULL, night date NOT NULL); \
         INSERT INTO bookings SELECT n, 'guest-' || n, date '2026-12-01' + (n % 30) FROM generate_series(1, 500) n",
    )
    .await?;
    // What RDS would restore for the minute before the damage: the table as it was (a template copy needs its
    // source without connections).
    drop(app);
    sql(
        &admin,
        "CREATE DATABASE lifeboat_incident_asof TEMPLATE lifeboat_incident OWNER lifeboat",
    )
    .await?;
    let app = local_postgres("user=lifeboat dbname=lifeboat_incident").await?;
    let damaged_at = Utc::now();
    let deleted = app
        .execute("DELETE FROM bookings WHERE night >= date '2026-12-20'", &[])
        .await?;
    let restore_to = (damaged_at - Duration::minutes(1))
        .format("%Y-%m-%d %H:%M")
        .to_string();
    println!(
        "  {} a deploy ran DELETE FROM bookings WHERE night >= '2026-12-20': {deleted} of 500 rows gone from booking-db",
        damaged_at.format("%H:%M:%S")
    );

    println!("\n  $ lifeboat --local restore booking-db --at \"{restore_to}\" --plan");
    cli(&["restore", "booking-db", "--at", &restore_to, "--plan"])?;
    println!(
        "\n  $ lifeboat --local restore booking-db --at \"{restore_to}\" --reason \"INC-481 deleted bookings\" \
         --expires-in 2m"
    );
    cli(&[
        "restore",
        "booking-db",
        "--at",
        &restore_to,
        "--reason",
        "INC-481 deleted bookings",
        "--expires-in",
        "2m",
    ])?;
    let alerts_before = sandbox.notifications().await.len();
    let mut ready = None;
    for _ in 0..4 {
        println!(
            "\n  $ lifeboat --local --json restores   (the 5-minute schedule and RDS events do this in AWS)"
        );
        let answer: Value = serde_json::from_str(&cli_json(&["restores"])?)?;
        for restore in answer["restores"].as_array().into_iter().flatten() {
            println!(
                "  {}  {}  step: {}",
                restore["target"].as_str().unwrap_or_default(),
                restore["recovery_point"].as_str().unwrap_or_default(),
                restore["step"].as_str().unwrap_or_default()
            );
            if restore["step"] == "ready" {
                ready = Some(restore.clone());
            }
        }
        if ready.is_some() {
            break;
        }
    }
    let ready = ready.ok_or("the restore did not become ready in four runs")?;
    for (subject, body) in sandbox.notifications().await.iter().skip(alerts_before) {
        println!("  message to the on-call: {subject}\n{}", indent(body));
    }
    let target = ready["target"].as_str().unwrap_or_default().to_string();
    let secret = ready["secret"].as_str().unwrap_or_default().to_string();
    let password = sandbox
        .secret(&secret)
        .await
        .ok_or_else(|| format!("secret {secret} not found"))?;
    // Through the test endpoint mapping: the restored instance's address is the local PostgreSQL server.
    let (restored, connection) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port=5432 user=lifeboat password={password} dbname=lifeboat_incident_asof"
        ),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(connection);
    let rows: i64 = restored
        .query_one("SELECT count(*) FROM bookings", &[])
        .await?
        .get(0);
    let missing: i64 = restored
        .query_one(
            "SELECT count(*) FROM bookings WHERE night >= date '2026-12-20'",
            &[],
        )
        .await?
        .get(0);
    let live: i64 = app
        .query_one("SELECT count(*) FROM bookings", &[])
        .await?
        .get(0);
    println!(
        "  restored {target} answers: {rows} bookings (booking-db now has {live}); the {missing} deleted rows are \
         there to copy back (credentials from secret {secret})"
    );

    let expires: chrono::DateTime<Utc> =
        ready["expires_at"].as_str().unwrap_or_default().parse()?;
    let wait = (expires - Utc::now()).num_seconds().max(0) + 2;
    println!("\n  (waiting {wait} s for the restore's expiry)");
    tokio::time::sleep(std::time::Duration::from_secs(wait as u64)).await;
    for _ in 0..2 {
        println!("\n  $ lifeboat --local restores");
        cli(&["restores"])?;
    }
    let left = sandbox.databases_named("lbrestore-").await;
    let finals: Vec<String> = sandbox
        .instance_snapshots(&target)
        .await
        .into_keys()
        .collect();
    println!(
        "  restored databases left: {}; final snapshot kept: {}",
        if left.is_empty() {
            "none".to_string()
        } else {
            left.join(", ")
        },
        finals.join(", ")
    );
    drop(restored);
    sql(
        &admin,
        "DROP DATABASE IF EXISTS lifeboat_incident_asof WITH (FORCE)",
    )
    .await?;
    Ok(())
}

/// A connection to the local PostgreSQL server as `who` (`user=... dbname=...`), its driver task spawned.
async fn local_postgres(who: &str) -> Outcome<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port=5432 {who}"),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Run `statement` on `client`; an error names the statement and PostgreSQL's message.
async fn sql(client: &tokio_postgres::Client, statement: &str) -> Outcome<()> {
    client.batch_execute(statement).await.map_err(|e| {
        let message = e
            .as_db_error()
            .map_or_else(|| e.to_string(), |db| db.message().to_string());
        format!("{statement}: {message}").into()
    })
}

/// Run the operator CLI against the served functions (`--local`), printing what it prints.
fn cli(args: &[&str]) -> Outcome<()> {
    let output = cli_command(args).output()?;
    println!("{}", indent(&String::from_utf8_lossy(&output.stdout)));
    if !output.status.success() {
        return Err(format!(
            "lifeboat {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(())
}

/// Run the operator CLI with `--json`; returns its answer.
fn cli_json(args: &[&str]) -> Outcome<String> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let output = cli_command(&all).output()?;
    if !output.status.success() {
        return Err(format!(
            "lifeboat {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// `lifeboat --local <args>`: the binary `scripts/dr-run` names in `LIFEBOAT_CLI`.
fn cli_command(args: &[&str]) -> Command {
    let binary = std::env::var("LIFEBOAT_CLI").unwrap_or_else(|_| "lifeboat".into());
    let mut command = Command::new(binary);
    command.arg("--local").args(args);
    command
}

/// RDS publishes every instance's `FreeStorageSpace` each minute, which the monitor reads; the emulator has no RDS
/// metrics, so the driver publishes one sample (16 GiB free, a minute old) for every DB instance in `region`.
async fn publish_free_storage_of_every_instance(region: &str) -> Outcome<()> {
    let instances = aws_sdk_rds::Client::new(&sdk_config(region).await)
        .describe_db_instances()
        .send()
        .await?;
    let sampled = Utc::now() - Duration::minutes(1);
    for id in instances
        .db_instances()
        .iter()
        .filter_map(|instance| instance.db_instance_identifier())
    {
        publish_free_storage(region, id, 16.0 * 1024.0 * 1024.0 * 1024.0, sampled).await;
    }
    Ok(())
}

/// The monitor's answer: status, totals, the RPO table, what it announced, where the reports are, its run errors.
fn print_monitor(report: &Value) {
    let totals = &report["totals"];
    println!(
        "  status {}: {} databases, {} protected, {} in breach, {} unprotected; {} critical and {} warning conditions",
        report["status"].as_str().unwrap_or("?"),
        totals["databases"],
        totals["protected"],
        totals["in_breach"],
        totals["unprotected"],
        totals["critical"],
        totals["warnings"]
    );
    println!(
        "  {:<12} {:<10} {:<10} {:>10} {:>10}  status",
        "database", "region", "source", "RPO", "objective"
    );
    for row in report["rpo"].as_array().into_iter().flatten() {
        let human = |v: &Value| {
            v.as_u64()
                .map(lifeboat::monitor::human)
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "  {:<12} {:<10} {:<10} {:>10} {:>10}  {}",
            row["database"].as_str().unwrap_or("?"),
            row["region"].as_str().unwrap_or("?"),
            row["source"].as_str().unwrap_or("?"),
            human(&row["rpo_seconds"]),
            human(&row["objective_seconds"]),
            row["status"].as_str().unwrap_or("?")
        );
    }
    let announced = &report["announced"];
    println!(
        "  announced: {} opened, {} reminded, {} cleared",
        announced["opened"], announced["reminded"], announced["cleared"]
    );
    for location in report["reports"].as_array().into_iter().flatten() {
        println!("  written: {}", location.as_str().unwrap_or("?"));
    }
    for error in report["run_errors"].as_array().into_iter().flatten() {
        println!("  run error: {}", error.as_str().unwrap_or("?"));
    }
}

/// A screenshot of the saved report in headless Chromium (Debian's `chromium`), when it is installed: what an
/// on-call person sees first.
fn screenshot(html: &std::path::Path) {
    let png = html.with_extension("png");
    let Ok(absolute) = std::fs::canonicalize(html) else {
        return;
    };
    let taken = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,1000",
            &format!("--screenshot={}", png.display()),
            &format!("file://{}", absolute.display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match taken {
        Ok(status) if status.success() => {
            println!("  screenshot (headless Chromium): {}", png.display())
        }
        _ => println!(
            "  no screenshot: Debian's chromium is not installed (apt-get install chromium to get one)"
        ),
    }
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
            ItemStatus::Waiting => "waiting",
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
            "DO $$ BEGIN CREATE ROLE lifeboat LOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
        )
        .await?;
    Ok(())
}

/// What the default policy promises, as the functions read it.
fn print_policy() {
    let policy = lifeboat::policy::Policy::default_policy().expect("the default policy is valid");
    let plan = &policy.plans[0];
    println!(
        "  policy `{}` (infra/policy.yaml), plan `{}`: retention {}; DR copies {}",
        policy.name,
        plan.name,
        plan.retention.describe(),
        plan.copies
            .iter()
            .map(|c| format!("{} days in {}", c.retain_days, c.region))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The argument that makes this driver run the neighbouring deployment's history (in a child process).
const NEIGHBOUR: &str = "neighbour";
/// The argument that makes the driver take the Live Event database's snapshot and copy (a child process).
const LIVE_EVENT_HISTORY: &str = "live-event-history";

/// The Live Event database's recovery point: a snapshot before a deployment 3 minutes ago (the real snapshot
/// handler, manual request) and its copy in the DR region (the real copy handler), as this deployment.
async fn live_event_history(region: &str, policy: &str) -> Outcome<()> {
    let sandbox = Sandbox::named(region, LEDGER_BUCKET, ALERT_TOPIC).await;
    let taken_at = Utc::now() - Duration::minutes(3);
    let mut request = event("snapshot/manual-pre-deploy.json");
    request["databases"] = serde_json::json!(["liveevent-db"]);
    request["reason"] = "pre-deploy of the ticketing release".into();
    let snapshot = sandbox
        .snapshot_function(policy, taken_at, &Default::default())
        .handle(request, &context("liveevent-snapshot"))
        .await?;
    if snapshot.counts.failed > 0 {
        return Err(format!("the Live Event snapshot failed: {:?}", snapshot.results).into());
    }
    let copied = sandbox
        .copy_function(policy, taken_at + Duration::seconds(30), &[DR_REGION], 20)
        .await
        .handle(
            event("copy/scheduled-hourly.json"),
            &context("liveevent-copy"),
        )
        .await?;
    // Only the Live Event database's copy counts here: the other databases' backlog (step 6) is reminded as late
    // every day between 02:00 and 03:05 UTC, when a run at the real time falls in that window.
    let live_event_failed = copied
        .results
        .iter()
        .any(|r| r.database == "liveevent-db" && r.status == ItemStatus::Failed);
    if live_event_failed {
        return Err(format!("the Live Event copy failed: {:?}", copied.results).into());
    }
    Ok(())
}

/// The second deployment: `lifeboat` at home in the DR region, with its own `booking-db` and DR to `home`; 45 days
/// of its real snapshot and copy handlers, in this process, as that deployment.
async fn neighbour(home: &str) -> Outcome<()> {
    let neighbour = Sandbox::named(
        DR_REGION,
        "lifeboat-local-neighbour-ledger",
        "lifeboat-local-neighbour-alerts",
    )
    .await;
    let key = neighbour.kms_key().await;
    neighbour
        .instance("booking-db", &[("lifeboat:backup", "true")], Some(&key))
        .await;
    kms_key_in(home, "alias/lifeboat-dr").await;
    let policy = lifeboat::policy::DEFAULT_POLICY_YAML
        .replace("region: us-west-2", &format!("region: {home}"));
    let today = Utc::now().duration_trunc(Duration::days(1))? + Duration::hours(2);
    for day in (0..45).rev().map(|n| today - Duration::days(n)) {
        neighbour.snapshot_history(&policy, [day]).await;
        let report = neighbour
            .copy_function(&policy, day + Duration::hours(1), &[home], 20)
            .await
            .handle(
                event("copy/scheduled-hourly.json"),
                &context("neighbour-copy"),
            )
            .await?;
        if report.counts.failed > 0 {
            return Err(format!("the neighbour's copies failed: {:?}", report.results).into());
        }
    }
    Ok(())
}

/// A look at `region` of the emulator (through a sandbox whose own bucket and topic go unused).
async fn sandbox_in(region: &str) -> Sandbox {
    Sandbox::named(region, "lifeboat-local-look", "lifeboat-local-look").await
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
