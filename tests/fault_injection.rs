//! Proof under faults: a whole DR cycle (the real snapshot, copy, retention and verify handlers, daily for 40
//! simulated days, a primary and a DR region, two DB instances and an Aurora cluster) runs twice from scratch, in
//! lockstep:
//! once through a proxy that only counts, once through a proxy that faults 15 % of requests (throttling, 5xx,
//! connection resets, lost responses; see `harness/faults.rs`). Under faults each scheduled step is re-run, as the
//! schedule's next tick would, until its report is clean (at most `MAX_RUNS` runs).
//!
//! The fourth step of each day is the restore drills: the real verify handler, run every `VERIFY_EVERY` simulated
//! minutes as its schedule would, each due drill driven through its phases (restoring, securing, checks, cleaning
//! up) by repeated runs, its checks connecting to a database on the local PostgreSQL server (the test-only endpoint
//! override). The step settles when a run reports nothing wrong and no drill is left in progress. Checks themselves
//! are not faulted (they do not go through the proxy); every AWS request of the drills is.
//!
//! After every run of the faulted cycle its recovery points (identifiers, kinds, `lifeboat:created-at`, normalised
//! for region names) are compared with the clean cycle's after the same step:
//! - a run that reported nothing wrong must have left exactly the clean state (a run that left something undone
//!   or did something twice must say so: failed or skipped items, run errors, or a handler error);
//! - every step settles within `MAX_RUNS` runs (drills: `VERIFY_MAX_RUNS`), and then matches the clean state:
//!   nothing created twice (at most one recovery point per database, kind, region and day; no copy under two
//!   names; at most one drill per database and day), nothing the policy keeps deleted (the faulted cycle always
//!   holds everything the clean one holds), nothing left behind (no drill database, no drill secret), the same
//!   drill result on the same recovery points (`lifeboat:verify-result`, and the day of `lifeboat:verified-at`),
//!   never a recovery point blamed for an injected fault;
//! - the ledger names every recovery point made (`created` or `already-made`; copies `started` or
//!   `already-exists`) and every one deleted (`deleted` or `already-gone`), lost answers or not.
//!
//! Knobs (environment): `LIFEBOAT_FAULT_RATE` (default 0.15), `LIFEBOAT_FAULT_SEED` (default 9),
//! `LIFEBOAT_FAULT_SDK_ATTEMPTS` (SDK attempts per call, default 2: faults reach the handlers, not only the SDK's
//! retry loop), `LIFEBOAT_FAULT_RULES` (forced faults, for example `DeleteDBSnapshot=lost@1.0;CreateDBSnapshot=reset@0.5`,
//! kinds `throttling`, `5xx`, `reset`, `lost`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration as StdDuration, Instant};

use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use lifeboat::aws::rds::Rds;
use lifeboat::copy::CopyLimits;
use lifeboat::drill;
use lifeboat::ledger::Phase;
use lifeboat::policy::DEFAULT_POLICY_YAML;
use lifeboat::report::Counts;
use lifeboat::tags;
use lifeboat_copy::CopyFunction;
use lifeboat_integration_tests::faults::{
    FaultConfig, FaultKind, FaultProxy, FaultRule, FaultStats,
};
use lifeboat_integration_tests::{
    CallCounter, RAISED_QUOTA_ENDPOINT_VAR, Sandbox, adapter, context, endpoint, event,
    sdk_config_at, seed_postgres, unique,
};
use lifeboat_retention::RetentionFunction;

/// Days simulated: past the daily (7 d), weekly (3 w) and copy (14 d) retention of the test policy, through a
/// 1 January (yearly) and a 1 February (monthly).
const DAYS: i64 = 40;
/// Runs of one scheduled step before the cycle is declared stuck.
const MAX_RUNS: usize = 10;
/// Runs of one day's drill step before it is declared stuck (a drill needs three runs without faults: start,
/// credentials, checks and clean-up).
const VERIFY_MAX_RUNS: usize = 15;
/// Simulated minutes between two runs of the verify function (its schedule; RDS events come sooner in AWS).
const VERIFY_EVERY: i64 = 10;
/// Regions of the clean and the faulted cycle (primary, DR): used by no other test on the emulator.
const CLEAN: (&str, &str) = ("eu-west-3", "eu-north-1");
const FAULTED: (&str, &str) = ("ca-central-1", "sa-east-1");

/// The default policy, its DR region set to `dr` and its retention shortened so that 40 days exercise every rule
/// (daily 30 d -> 7 d, weekly 12 w -> 3 w, DR copies 90 d -> 14 d); its drills checking the local PostgreSQL
/// database `database` every 6 d 12 h: with daily drill steps, a drill is due on the 7th day after the last,
/// whatever time of day the last one finished (with `7d`, a drill finished a few runs later under faults would
/// make the next one due a few runs later in its day, and the cycles would drift apart).
fn policy(dr: &str, database: &str) -> String {
    let mut policy = DEFAULT_POLICY_YAML.to_string();
    for (from, to) in [
        ("region: us-west-2", format!("region: {dr}")),
        ("daily: 30d", "daily: 7d".to_string()),
        ("weekly: 12w", "weekly: 3w".to_string()),
        (
            "retain_days: 90\n    point_in_time",
            "retain_days: 14\n    point_in_time".to_string(),
        ),
        ("every: 7d", "every: 6d12h".to_string()),
        (
            "security_groups: [sg-REPLACE-WITH-DRILL-SG]",
            "security_groups: [sg-0drills]".to_string(),
        ),
        (
            "checks: []",
            format!(
                "database_name: {database}\n      checks: [{{kind: tables_present, tables: [bookings]}}, \
                 {{kind: min_rows, table: bookings, at_least: 3}}]"
            ),
        ),
    ] {
        assert!(policy.contains(from), "default policy has `{from}`");
        policy = policy.replacen(from, &to, 1);
    }
    policy
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Forced faults from `LIFEBOAT_FAULT_RULES`.
fn rules() -> Vec<FaultRule> {
    let text = std::env::var("LIFEBOAT_FAULT_RULES").unwrap_or_default();
    text.split(';')
        .filter(|r| !r.trim().is_empty())
        .map(|rule| {
            let (operation, rest) = rule.split_once('=').expect("rule is OPERATION=KIND@P");
            let (kind, p) = rest.split_once('@').unwrap_or((rest, "1.0"));
            let kind = match kind {
                "throttling" => FaultKind::Throttling,
                "5xx" => FaultKind::ServerError,
                "reset" => FaultKind::ConnectionReset,
                "lost" => FaultKind::LostResponse,
                other => panic!("unknown fault kind {other}"),
            };
            FaultRule {
                operation: operation.trim().to_string(),
                kind,
                probability: p.parse().expect("probability"),
            }
        })
        .collect()
}

/// The functions' SDK configuration: `attempts` per call, short back-off (the tests simulate time; waiting
/// seconds between attempts proves nothing more).
fn with_retries(config: &SdkConfig, attempts: u32) -> SdkConfig {
    config
        .to_builder()
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(StdDuration::from_millis(5))
                .with_max_backoff(StdDuration::from_millis(50)),
        )
        .build()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Snapshot,
    Copy,
    Retention,
    Verify,
}

/// When run `attempt` (from 1) of the drill step of `day` (02:00) runs: from 05:00, every `VERIFY_EVERY` minutes.
fn verify_time(day: DateTime<Utc>, attempt: usize) -> DateTime<Utc> {
    day + Duration::hours(3) + Duration::minutes(VERIFY_EVERY * (attempt as i64 - 1))
}

/// The drill results on the recovery points: (region role, identifier) -> `lifeboat:verify-result` and the day of
/// `lifeboat:verified-at`.
type Results = BTreeMap<(&'static str, String), String>;

/// What drills left: their temporary databases (instances and clusters, with the database each drills) and their
/// secrets.
#[derive(Debug, Default, PartialEq, Eq)]
struct Leftovers {
    databases: BTreeSet<(String, String)>,
    secrets: BTreeSet<String>,
}

impl Leftovers {
    fn is_empty(&self) -> bool {
        self.databases.is_empty() && self.secrets.is_empty()
    }
}

/// One recovery point, normalised: (region role, kind, identifier, `lifeboat:created-at`).
type Point = (&'static str, &'static str, String, String);

/// What a run said about itself.
#[derive(Debug, Clone)]
enum Said {
    /// The report has no failed, skipped or waiting items and no run errors.
    Clean(Counts),
    /// The report names failed, skipped or waiting items, or run errors.
    Failures {
        counts: Counts,
        run_errors: usize,
        first: String,
    },
    /// The handler returned an error.
    Error(String),
}

impl Said {
    fn of(counts: Counts, run_errors: &[String], results: Vec<String>) -> Self {
        // Waiting items are left for the next hourly run: the step has not settled yet.
        if counts.failed + counts.skipped + counts.waiting == 0 && run_errors.is_empty() {
            Said::Clean(counts)
        } else {
            Said::Failures {
                counts,
                run_errors: run_errors.len(),
                first: run_errors
                    .first()
                    .cloned()
                    .or_else(|| results.into_iter().next())
                    .unwrap_or_default(),
            }
        }
    }
}

/// One cycle: a proxy, a sandbox behind it, clients that read moto directly.
struct Cycle {
    label: &'static str,
    proxy: FaultProxy,
    sandbox: Sandbox,
    primary: String,
    dr: String,
    dr_config: SdkConfig,
    policy: String,
    look_primary: Rds,
    look_dr: Rds,
    look_secrets: aws_sdk_secretsmanager::Client,
}

impl Cycle {
    async fn new(
        label: &'static str,
        upstream: &str,
        (primary, dr): (&str, &str),
        faults: FaultConfig,
        attempts: u32,
        database: &str,
    ) -> Self {
        let proxy = FaultProxy::start(upstream, faults).await;
        let mut sandbox = Sandbox::named_at(
            proxy.endpoint(),
            primary,
            &unique("ledger"),
            &unique("alerts"),
        )
        .await;
        sandbox.config = with_retries(&sandbox.config, attempts);
        sandbox.rds = aws_sdk_rds::Client::new(&sandbox.config);
        let dr_config = with_retries(&sdk_config_at(proxy.endpoint(), dr).await, attempts);
        let look_primary = Rds::new(
            aws_sdk_rds::Client::new(&sdk_config_at(upstream, primary).await),
            primary,
        );
        let look_dr = Rds::new(
            aws_sdk_rds::Client::new(&sdk_config_at(upstream, dr).await),
            dr,
        );

        // The DR key, and the fleet: two encrypted instances and an Aurora cluster, all selected.
        let kms = aws_sdk_kms::Client::new(&sdk_config_at(upstream, dr).await);
        let key = kms.create_key().send().await.expect("DR key");
        kms.create_alias()
            .alias_name("alias/lifeboat-dr")
            .target_key_id(key.key_metadata().expect("key").key_id())
            .send()
            .await
            .expect("DR key alias");
        let source_key = sandbox.kms_key().await;
        let selected = [("lifeboat:backup", "true")];
        for db in ["booking-db", "orders-db"] {
            sandbox.instance(db, &selected, Some(&source_key)).await;
        }
        sandbox.aurora_cluster("billing", &selected).await;
        sandbox.drill_subnet_group("lifeboat-drills").await;
        let look_secrets =
            aws_sdk_secretsmanager::Client::new(&sdk_config_at(upstream, primary).await);
        Self {
            label,
            proxy,
            sandbox,
            primary: primary.to_string(),
            dr: dr.to_string(),
            dr_config,
            policy: policy(dr, database),
            look_primary,
            look_dr,
            look_secrets,
        }
    }

    fn dr_adapters(&self) -> Vec<Rds> {
        vec![adapter(aws_sdk_rds::Client::new(&self.dr_config), &self.dr)]
    }

    /// Run `step` of `day` once, through the proxy (active only for the run).
    async fn run(&self, step: Step, day: DateTime<Utc>, attempt: usize) -> Said {
        let request_id = format!("{step:?}-{}-{attempt}", day.format("%Y-%m-%d"));
        let context = context(&request_id);
        self.proxy.set_active(true);
        let said = match step {
            Step::Snapshot => {
                let mut payload = event("snapshot/scheduled-daily.json");
                payload["time"] = Value::String(day.to_rfc3339());
                self.sandbox
                    .snapshot_function(&self.policy, day, &CallCounter::default())
                    .handle(payload, &context)
                    .await
                    .map(|r| Said::of(r.counts, &r.run_errors, failures(&r.results)))
            }
            Step::Copy => CopyFunction {
                services: self
                    .sandbox
                    .services(&self.policy, day + Duration::hours(1)),
                primary: self.sandbox.primary_adapter(),
                dr_regions: self.dr_adapters(),
                limits: CopyLimits::uniform(20),
            }
            .handle(event("copy/scheduled-hourly.json"), &context)
            .await
            .map(|r| Said::of(r.counts, &r.run_errors, failures(&r.results))),
            Step::Retention => RetentionFunction {
                services: self
                    .sandbox
                    .services(&self.policy, day + Duration::hours(2)),
                primary: self.sandbox.primary_adapter(),
                dr_regions: self.dr_adapters(),
                continuations: None,
            }
            .handle(event("retention/scheduled-daily.json"), &context)
            .await
            .map(|r| Said::of(r.counts, &r.run_errors, failures(&r.results))),
            Step::Verify => {
                let now = verify_time(day, attempt);
                let mut payload = event("verify/scheduled.json");
                payload["time"] = Value::String(now.to_rfc3339());
                self.sandbox
                    .verify_function(&self.policy, now, 5432)
                    .handle(payload, &context)
                    .await
                    .map(|r| Said::of(r.counts, &r.run_errors, failures(&r.results)))
            }
        };
        self.proxy.set_active(false);
        said.unwrap_or_else(|e| Said::Error(e.to_string()))
    }

    /// Every manual snapshot and cluster snapshot in both regions, read from moto directly, normalised; the
    /// `lifeboat:copied-from` of every copy; and the drill results on them.
    async fn state(&self) -> (BTreeSet<Point>, Vec<String>, Results) {
        let mut points = BTreeSet::new();
        let mut copied_from = Vec::new();
        let mut results = Results::new();
        for (role, rds) in [("primary", &self.look_primary), ("dr", &self.look_dr)] {
            for s in rds.list_snapshots().await.expect("list snapshots") {
                copied_from.extend(s.tags.get("lifeboat:copied-from").map(str::to_owned));
                if let Some(result) = s.tags.get(tags::VERIFY_RESULT) {
                    let verified_on = s
                        .tags
                        .get(tags::VERIFIED_AT)
                        .and_then(|t| t.get(..10))
                        .unwrap_or("never");
                    results.insert(
                        (role, self.normalise(&s.identifier)),
                        format!("{result}, verified on {verified_on}"),
                    );
                }
                points.insert((
                    role,
                    s.kind.as_str(),
                    self.normalise(&s.identifier),
                    s.tags
                        .get("lifeboat:created-at")
                        .map(str::to_owned)
                        .unwrap_or_default(),
                ));
            }
        }
        (points, copied_from, results)
    }

    /// The drill databases and drill secrets that exist now, read from moto directly.
    async fn leftovers(&self) -> Leftovers {
        let mut left = Leftovers::default();
        for rds in [&self.look_primary, &self.look_dr] {
            for db in rds.list_databases().await.expect("list databases") {
                if let Some(drill) = db.tags.get(tags::DRILL) {
                    let source = db
                        .tags
                        .get(tags::SOURCE)
                        .map(str::to_owned)
                        .unwrap_or_default();
                    left.databases.insert((source, drill.to_owned()));
                }
            }
        }
        let mut pages = self.look_secrets.list_secrets().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.expect("list secrets");
            left.secrets.extend(
                page.secret_list()
                    .iter()
                    .filter_map(|s| s.name())
                    .filter(|name| name.starts_with("lifeboat/drill/"))
                    .map(str::to_string),
            );
        }
        left
    }

    /// The drill results in the ledger: passed (database, normalised snapshot), and every other result (failed,
    /// drill infrastructure, swept, a start RDS refused), described.
    async fn ledger_drills(&self) -> (BTreeSet<(String, String)>, Vec<String>) {
        let mut passed = BTreeSet::new();
        let mut other = Vec::new();
        for r in self.sandbox.ledger_records().await {
            if r.function != "verify" || r.phase != Phase::Result {
                continue;
            }
            let snapshot = self.normalise(r.details["snapshot"].as_str().unwrap_or_default());
            match (r.action.as_str(), r.details["passed"].as_bool()) {
                ("restore-drill", Some(true)) => {
                    passed.insert((r.database.clone(), snapshot));
                }
                ("start-drill", _) if r.details["refused"] != true => {}
                ("restore-drill" | "sweep-drill" | "start-drill", _) => other.push(format!(
                    "{} {} {snapshot}: passed {:?}, {}",
                    r.action,
                    r.database,
                    r.details["passed"],
                    r.error.as_deref().unwrap_or("")
                )),
                _ => {}
            }
        }
        (passed, other)
    }

    /// Recovery points this cycle made or deleted that its ledger does not show as made (`created` or
    /// `already-made`; copies `started` or `already-exists`) or deleted (a result `deleted` or `already-gone`).
    async fn ledger_gaps(&self, ever: &BTreeSet<Point>, deleted: &BTreeSet<Point>) -> Vec<String> {
        let records = self.sandbox.ledger_records().await;
        let has = |action: &str, id: &str, outcomes: &[&str]| {
            records.iter().any(|r| {
                r.action == action
                    && r.phase == Phase::Result
                    && self.normalise(&r.resource) == id
                    && r.outcome.as_deref().is_some_and(|o| outcomes.contains(&o))
            })
        };
        // What the ledger does say of `id`, to tell a missing record from a wrong one.
        let said_of = |id: &str| -> Vec<String> {
            records
                .iter()
                .filter(|r| self.normalise(&r.resource) == id)
                .map(|r| {
                    format!(
                        "{} {:?} {}",
                        r.action,
                        r.phase,
                        r.outcome.as_deref().unwrap_or("-")
                    )
                })
                .collect()
        };
        let mut gaps = Vec::new();
        for (role, _, id, _) in ever {
            let (action, outcomes) = if *role == "dr" {
                ("copy-snapshot", ["started", "already-exists"])
            } else {
                ("create-snapshot", ["created", "already-made"])
            };
            if !has(action, id, &outcomes) {
                gaps.push(format!(
                    "{role} {id}: no `{action}` result {outcomes:?} in the ledger; it says {:?}",
                    said_of(id)
                ));
            }
        }
        for (role, _, id, _) in deleted {
            if !has("delete-snapshot", id, &["deleted", "already-gone"]) {
                gaps.push(format!(
                    "{role} {id}: deleted, but no `delete-snapshot` result `deleted` in the ledger; it says {:?}",
                    said_of(id)
                ));
            }
        }
        gaps
    }

    fn normalise(&self, text: &str) -> String {
        text.replace(&self.primary, "PRIMARY")
            .replace(&self.dr, "DR")
    }
}

fn failures(results: &[lifeboat::report::ItemOutcome]) -> Vec<String> {
    results
        .iter()
        .filter(|r| {
            r.status != lifeboat::report::ItemStatus::Done
                && r.status != lifeboat::report::ItemStatus::Unchanged
        })
        .map(|r| {
            format!(
                "{:?} {} {}: {}",
                r.status,
                r.action,
                r.resource.as_deref().unwrap_or(&r.database),
                r.detail.as_deref().unwrap_or("")
            )
        })
        .collect()
}

/// Recovery points created twice: more than one per (region, kind, database, day), or copies of one source under
/// two names.
fn duplicates(points: &BTreeSet<Point>, copied_from: &[String]) -> Vec<String> {
    let mut per_day: BTreeMap<(&str, &str, String), Vec<&str>> = BTreeMap::new();
    for (role, kind, id, created_at) in points {
        // lifeboat-<database>-<YYYY-MM-DD>-<HHMM>[-from-REGION], dated by `lifeboat:created-at`.
        let day = created_at.get(..10).unwrap_or(created_at);
        let database = id
            .split(&format!("-{day}"))
            .next()
            .unwrap_or(id)
            .to_string();
        per_day
            .entry((role, kind, format!("{database} {day}")))
            .or_default()
            .push(id);
    }
    let mut found: Vec<String> = per_day
        .into_iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(key, ids)| format!("{key:?}: {ids:?}"))
        .collect();
    let mut sources = BTreeMap::new();
    for source in copied_from {
        *sources.entry(source).or_insert(0) += 1;
    }
    found.extend(
        sources
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(source, n)| format!("{n} copies of {source}")),
    );
    found
}

/// How one step of the faulted cycle went.
#[derive(Debug, Default)]
struct StepLog {
    /// Runs it needed, per day.
    runs: Vec<usize>,
    /// Runs the clean cycle needed.
    clean_runs: usize,
    /// Runs that reported failed or skipped items, run errors, or returned an error.
    reported: usize,
    /// An example of each way a run reported trouble.
    examples: BTreeSet<String>,
}

#[tokio::test]
async fn a_dr_cycle_under_injected_faults_converges_to_the_clean_cycles_end_state() {
    let started = Instant::now();
    let upstream = std::env::var(RAISED_QUOTA_ENDPOINT_VAR).unwrap_or_else(|_| endpoint());
    let rate: f64 = env_or("LIFEBOAT_FAULT_RATE", 0.15);
    let seed: u64 = env_or("LIFEBOAT_FAULT_SEED", 9);
    let attempts: u32 = env_or("LIFEBOAT_FAULT_SDK_ATTEMPTS", 2);
    let mut faults = FaultConfig::uniform(rate, seed);
    faults.rules = rules();

    // The database every drill's checks connect to (both cycles: the checks only read).
    let first: DateTime<Utc> = "2026-01-01T02:00:00Z".parse().expect("time");
    let database = seed_postgres(10, first).await;
    let clean = Cycle::new(
        "clean",
        &upstream,
        CLEAN,
        FaultConfig::none(),
        attempts,
        &database,
    )
    .await;
    let faulted = Cycle::new(
        "faulted",
        &upstream,
        FAULTED,
        faults.clone(),
        attempts,
        &database,
    )
    .await;

    let mut logs: BTreeMap<Step, StepLog> = BTreeMap::new();
    let mut discrepancies: Vec<String> = Vec::new();
    let mut deleted_by_clean: BTreeSet<Point> = BTreeSet::new();
    let mut clean_state = BTreeSet::new();
    let (mut clean_ever, mut faulted_ever) = (BTreeSet::new(), BTreeSet::new());
    let (mut clean_results_ever, mut faulted_results_ever) = (Results::new(), Results::new());
    // The drills each cycle made, per (database, day): their temporary databases as seen after each run.
    let mut clean_drills: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut faulted_drills: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut faulted_state: BTreeSet<Point> = BTreeSet::new();
    let mut deleted_by_faulted: BTreeSet<Point> = BTreeSet::new();
    for n in 0..DAYS {
        let day = first + Duration::days(n);
        let date = day.format("%Y-%m-%d").to_string();
        for step in [Step::Snapshot, Step::Copy, Step::Retention, Step::Verify] {
            let max_runs = match step {
                Step::Verify => VERIFY_MAX_RUNS,
                _ => MAX_RUNS,
            };
            let log = logs.entry(step).or_default();

            // The clean cycle: clean runs; one, or as many as its drills take.
            let mut clean_settled = false;
            for attempt in 1..=max_runs {
                let said = clean.run(step, day, attempt).await;
                assert!(
                    matches!(said, Said::Clean(_)),
                    "{} {step:?} {day} run {attempt}: {said:?}",
                    clean.label
                );
                log.clean_runs += 1;
                let left = clean.leftovers().await;
                for (source, drill) in &left.databases {
                    clean_drills
                        .entry((source.clone(), date.clone()))
                        .or_default()
                        .insert(drill.clone());
                }
                if left.is_empty() {
                    clean_settled = true;
                    break;
                }
            }
            assert!(
                clean_settled,
                "clean {step:?} {day}: drills still in progress"
            );
            let (after, copied_from, results) = clean.state().await;
            assert!(duplicates(&after, &copied_from).is_empty());
            deleted_by_clean.extend(clean_state.difference(&after).cloned());
            clean_ever.extend(after.iter().cloned());
            clean_results_ever.extend(results.clone());
            clean_state = after;
            let clean_results = results;

            // The faulted cycle: run until the report is clean and no drill is in progress, as the schedule's
            // next ticks would.
            let mut settled = false;
            for attempt in 1..=max_runs {
                let said = faulted.run(step, day, attempt).await;
                let (state, copied_from, results) = faulted.state().await;
                let left = faulted.leftovers().await;
                for (source, drill) in &left.databases {
                    faulted_drills
                        .entry((source.clone(), date.clone()))
                        .or_default()
                        .insert(drill.clone());
                }
                deleted_by_faulted.extend(faulted_state.difference(&state).cloned());
                faulted_ever.extend(state.iter().cloned());
                faulted_results_ever.extend(results.clone());
                faulted_state = state.clone();
                for duplicate in duplicates(&state, &copied_from) {
                    discrepancies.push(format!(
                        "{step:?} {day} run {attempt}: created twice: {duplicate}"
                    ));
                }
                for (role, id) in results.keys() {
                    let clean_result = clean_results.get(&(*role, id.clone()));
                    let result = &results[&(*role, id.clone())];
                    if !result.starts_with(drill::result::PASSED)
                        && clean_result.is_none_or(|c| c != result)
                    {
                        discrepancies.push(format!(
                            "{step:?} {day} run {attempt}: {role} {id} marked `{result}` (clean cycle: {clean_result:?})"
                        ));
                    }
                }
                let kept_but_gone: Vec<_> = clean_state.difference(&state).collect();
                let extra: Vec<_> = state.difference(&clean_state).collect();
                match said {
                    Said::Clean(_) if step == Step::Verify && !left.databases.is_empty() => {
                        // Drills in progress: the next run advances them.
                    }
                    Said::Clean(counts) => {
                        if !kept_but_gone.is_empty() || !extra.is_empty() {
                            discrepancies.push(format!(
                                "{step:?} {day} run {attempt}: reported clean ({counts:?}) but missing \
                                 {kept_but_gone:?}, not expected {extra:?}"
                            ));
                        }
                        if results != clean_results {
                            discrepancies.push(format!(
                                "{step:?} {day} run {attempt}: reported clean ({counts:?}) but drill results \
                                 {results:?}, clean cycle {clean_results:?}"
                            ));
                        }
                        if !left.is_empty() {
                            discrepancies.push(format!(
                                "{step:?} {day} run {attempt}: reported clean ({counts:?}) but left {left:?}"
                            ));
                        }
                        log.runs.push(attempt);
                        settled = true;
                        break;
                    }
                    Said::Failures {
                        counts,
                        run_errors,
                        first,
                    } => {
                        log.reported += 1;
                        log.examples.insert(format!(
                            "failed {} skipped {} waiting {} run_errors {run_errors}: {}",
                            counts.failed,
                            counts.skipped,
                            counts.waiting,
                            first.chars().take(160).collect::<String>()
                        ));
                    }
                    Said::Error(e) => {
                        log.reported += 1;
                        log.examples.insert(format!(
                            "handler error: {}",
                            e.chars().take(160).collect::<String>()
                        ));
                    }
                }
            }
            if !settled {
                log.runs.push(max_runs + 1);
                discrepancies.push(format!("{step:?} {day}: not settled after {max_runs} runs"));
            }
        }
    }

    // The end states: the same recovery points, nothing twice, nothing kept deleted.
    let (clean_end, clean_copies, clean_end_results) = clean.state().await;
    let (faulted_end, faulted_copies, faulted_end_results) = faulted.state().await;
    let clean_left = clean.leftovers().await;
    let faulted_left = faulted.leftovers().await;
    let clean_stats = clean.proxy.stats();
    let faulted_stats = faulted.proxy.stats();

    println!(
        "\n=== Proof under faults: {DAYS} days, 2 instances + 1 Aurora cluster, primary + DR, drills ==="
    );
    println!(
        "fault rate {rate}, seed {seed}, SDK attempts per call {attempts}, forced rules {:?}",
        faults.rules
    );
    println!(
        "clean cycle ({} -> {}): {}",
        CLEAN.0,
        CLEAN.1,
        summary(&clean_stats)
    );
    println!(
        "faulted cycle ({} -> {}):\n{faulted_stats}",
        FAULTED.0, FAULTED.1
    );
    let (mut total_runs, mut total_steps) = (0, 0);
    for (step, log) in &logs {
        let runs: usize = log.runs.iter().sum();
        total_runs += runs;
        total_steps += log.runs.len();
        let mut histogram: BTreeMap<usize, usize> = BTreeMap::new();
        for r in &log.runs {
            *histogram.entry(*r).or_default() += 1;
        }
        println!(
            "{step:?}: {} scheduled steps, {runs} runs (clean cycle: {}), {} reported trouble; runs needed -> steps: {histogram:?}",
            log.runs.len(),
            log.clean_runs,
            log.reported
        );
        for example in &log.examples {
            println!("    {example}");
        }
    }
    println!(
        "total: {total_runs} runs under faults for {total_steps} scheduled steps; {} recovery points at the end ({} in \
         the DR region), {} deleted by retention; wall time {:.1} s",
        faulted_end.len(),
        faulted_end.iter().filter(|p| p.0 == "dr").count(),
        deleted_by_clean.len(),
        started.elapsed().as_secs_f64()
    );
    let (clean_passed, clean_other) = clean.ledger_drills().await;
    let (faulted_passed, faulted_other) = faulted.ledger_drills().await;
    let drills_made = |drills: &BTreeMap<(String, String), BTreeSet<String>>| -> usize {
        drills.values().map(BTreeSet::len).sum()
    };
    let passed_points = |results: &Results| {
        results
            .values()
            .filter(|r| r.starts_with(drill::result::PASSED))
            .count()
    };
    println!(
        "drills: clean cycle {} drills on {} due dates, {} recovery points passed ({} in the ledger, {} other \
         results); faulted cycle {} drills, {} recovery points passed ({} in the ledger, {} other results), left \
         behind: {} drill databases, {} drill secrets",
        drills_made(&clean_drills),
        clean_drills
            .keys()
            .map(|(_, day)| day)
            .collect::<BTreeSet<_>>()
            .len(),
        passed_points(&clean_results_ever),
        clean_passed.len(),
        clean_other.len(),
        drills_made(&faulted_drills),
        passed_points(&faulted_results_ever),
        faulted_passed.len(),
        faulted_other.len(),
        faulted_left.databases.len(),
        faulted_left.secrets.len()
    );
    for other in &faulted_other {
        println!("DRILL RESULT: {other}");
    }
    let clean_gaps = clean.ledger_gaps(&clean_ever, &deleted_by_clean).await;
    let ledger_gaps = faulted
        .ledger_gaps(&faulted_ever, &deleted_by_faulted)
        .await;
    println!(
        "ledger: the clean cycle's ledger shows {} of {} creations and {} deletions; the faulted cycle's misses {}",
        if clean_gaps.is_empty() {
            "all"
        } else {
            "NOT all"
        },
        clean_ever.len(),
        deleted_by_clean.len(),
        ledger_gaps.len()
    );
    for gap in &ledger_gaps {
        println!("LEDGER GAP: {gap}");
    }
    for d in discrepancies.iter().take(30) {
        println!("DISCREPANCY: {d}");
    }

    assert!(
        faulted_stats.faults() > 0 || rate == 0.0,
        "the proxy injected no faults"
    );
    assert!(
        deleted_by_clean.iter().any(|p| p.0 == "dr")
            && deleted_by_clean.iter().any(|p| p.0 == "primary"),
        "the cycle exercises deletions in both regions"
    );
    assert!(duplicates(&clean_end, &clean_copies).is_empty());
    assert_eq!(
        clean_gaps,
        Vec::<String>::new(),
        "the clean cycle's ledger is complete"
    );
    // The design's ledger invariant: complete even when requests fail or their answers are lost.
    assert_eq!(
        ledger_gaps,
        Vec::<String>::new(),
        "the faulted cycle's ledger is complete"
    );
    assert_eq!(
        duplicates(&faulted_end, &faulted_copies),
        Vec::<String>::new(),
        "nothing created twice"
    );
    let missing: Vec<_> = clean_end.difference(&faulted_end).collect();
    assert!(
        missing.is_empty(),
        "kept by the policy but gone: {missing:?}"
    );
    let extra: Vec<_> = faulted_end.difference(&clean_end).collect();
    assert!(extra.is_empty(), "left behind: {extra:?}");

    // The drills: weekly for each of the three databases, every one passed, the same in both cycles.
    let weeks = DAYS.div_euclid(7) as usize + 1;
    assert_eq!(
        (drills_made(&clean_drills), clean_drills.len()),
        (3 * weeks, 3 * weeks),
        "the clean cycle drills each database once a week: {clean_drills:?}"
    );
    assert!(
        clean_other.is_empty() && clean_left.is_empty(),
        "{clean_other:?} {clean_left:?}"
    );
    assert_eq!(
        clean_passed.len(),
        3 * weeks,
        "every clean drill passed, in the ledger"
    );
    assert_eq!(faulted_drills, clean_drills, "the same drills, none twice");
    assert_eq!(
        faulted_results_ever, clean_results_ever,
        "the same drill results on the same recovery points"
    );
    assert_eq!(faulted_end_results, clean_end_results);
    assert_eq!(
        faulted_left,
        Leftovers::default(),
        "no drill database or secret left behind"
    );
    assert_eq!(
        faulted_other,
        Vec::<String>::new(),
        "no drill failed, gave up or was swept because of an injected fault"
    );
    assert_eq!(
        faulted_passed, clean_passed,
        "the same passes in the ledger"
    );
    assert!(
        discrepancies.is_empty(),
        "{} discrepancies, first: {:#?}",
        discrepancies.len(),
        &discrepancies[..discrepancies.len().min(10)]
    );
}

fn summary(stats: &FaultStats) -> String {
    format!("requests {}, faulted {}", stats.requests(), stats.faults())
}
