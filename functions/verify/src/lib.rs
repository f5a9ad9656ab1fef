//! The verify function: restore drills that prove every week that the newest recovery point restores and holds
//! the data.
//!
//! A drill takes longer than an invocation, so the function is a reconciler: every run (schedule, RDS
//! "restored" events, manual requests) finds the drills in progress by their tags, advances each by one step, and
//! starts the drills that are due. The steps: restore the snapshot into a temporary private database (Aurora: a
//! cluster and one instance); once it is available, give it credentials that exist only for the drill (a secret
//! deleted with it); once RDS has applied them, connect with TLS and run the policy's SQL checks; record the result
//! on the snapshot (`lifeboat:verified-at`, `lifeboat:verify-result`), in the ledger and as metrics; delete
//! everything. Expired drills left behind by crashes are swept.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use lambda_runtime::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use lifeboat::aws::AwsError;
use lifeboat::aws::rds::{Rds, RestoreSource, RestoreSpec};
use lifeboat::aws::secrets::Secrets;
use lifeboat::checks::{CheckResult, TlsMode, failures};
use lifeboat::drill::{self, DueDrill, DueIn};
use lifeboat::input::{self, Incoming};
use lifeboat::lambda::HandlerError;
use lifeboat::ledger::{LedgerRecord, Phase as LedgerPhase, RECORD_SCHEMA, RunLedger};
use lifeboat::metrics::{Metrics, Unit};
use lifeboat::model::{Database, DatabaseKind};
use lifeboat::report::{Counts, ItemOutcome, ItemStatus};
use lifeboat::restore::engine::{
    CheckSettings, INSTANCE_MISSING, RestoreEngine, failure_class, is_refusal, restorations_in,
    sibling_arn,
};
use lifeboat::restore::{
    self, FailureClass, InfrastructureRetry, Phase, Purpose, Restoration, Step,
};
use lifeboat::services::{RunOutcome, Services};
use lifeboat::tags;

/// The SQL checks (in the library, behind its `sql-checks` feature), as this function's tests and main name them.
pub use lifeboat::checks;
/// The test-only endpoint override of the checks.
pub use lifeboat::checks::EndpointOverride;

/// Name of this function in ledger records, metrics and notifications.
pub const FUNCTION: &str = "verify";

/// The manual action this function performs.
pub const ACTION: &str = "verify";

/// EventBridge detail types of the RDS events that advance drills.
pub const DRILL_EVENT_TYPES: [&str; 2] = ["RDS DB Instance Event", "RDS DB Cluster Event"];

/// An operator's request: `{"action":"verify","database":"booking-db","snapshot":"latest","region":"us-west-2"}`
/// starts a drill now; `{"action":"verify"}` only advances the drills in progress.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// Always `verify`.
    pub action: String,
    /// The database to drill now.
    #[serde(default)]
    pub database: Option<String>,
    /// A snapshot identifier, or `latest` (the default).
    #[serde(default)]
    pub snapshot: Option<String>,
    /// Region of the recovery point (the primary region by default; a DR region drills its copies).
    #[serde(default)]
    pub region: Option<String>,
}

/// What one drill did in this run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillReport {
    /// Drill identifier (the temporary database).
    pub drill: String,
    /// Database whose recovery point is proven.
    pub database: String,
    /// Snapshot restored.
    pub snapshot: String,
    /// Region of the drill.
    pub region: String,
    /// What this run did.
    pub step: String,
    /// The check results, once the checks ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckResult>,
    /// Whether every check passed, once the checks ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    /// Restore requested to available, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_seconds: Option<i64>,
    /// Restore requested to checks done, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill_seconds: Option<i64>,
    /// The database's RTO target, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<i64>,
    /// Why the drill did not pass: `snapshot` (the recovery point is at fault), `infrastructure` (the drill
    /// could not reach or log in to the restored database: retried, never blamed on the recovery point) or
    /// `not-started` (RDS refused the restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_class: Option<FailureClass>,
    /// The check attempt (from 1) when the drill infrastructure failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// How the checks' connection was secured: `verified` (TLS with the server certificate and host name
    /// verified against the RDS CA bundle), `unverified` (TLS without certificate verification: reported as a
    /// warning) or `disabled` (test-only endpoint override).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_verification: Option<String>,
    /// What the drill waits for (for example RDS still applying the drill credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
}

impl DrillReport {
    fn new(drill: &str, database: &str, snapshot: &str, region: &str, step: &str) -> Self {
        Self {
            drill: drill.into(),
            database: database.into(),
            snapshot: snapshot.into(),
            region: region.into(),
            step: step.into(),
            checks: Vec::new(),
            passed: None,
            restore_seconds: None,
            drill_seconds: None,
            rto_seconds: None,
            failure_class: None,
            attempt: None,
            certificate_verification: None,
            waiting_for: None,
        }
    }
}

/// What the next step of a drill is after its checks ran (or could not).
enum Checked {
    /// The result is recorded: delete the drill.
    Done,
    /// Keep the drill: the next run continues (credentials set again, or checks retried).
    Keep,
}

/// Next step for a drill-infrastructure failure.
const INFRASTRUCTURE_NEXT_STEP: &str = "drill infrastructure, not the snapshot: check that the drill security \
     groups (verification.security_groups) admit the verify function's security group on the database port, that \
     the routes of the drill subnet group's subnets reach the verify function's subnets, the RDS CA bundle \
     (LIFEBOAT_RDS_CA_BUNDLE, or the bundle shipped with the function) and the drill credentials (RDS applies them \
     before the checks run)";

/// The function's response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VerifyReport {
    /// The invocation (Lambda request ID).
    pub run_id: String,
    /// `schedule`, `rds-event` or `manual`.
    pub trigger: String,
    /// Every drill this run touched.
    pub drills: Vec<DrillReport>,
    /// Outcomes that matter to operators: drills finished, started, swept, failed; overdue databases (in the
    /// daily alert window).
    pub results: Vec<ItemOutcome>,
    /// Databases whose last verified recovery point is older than their cadence allows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overdue: Vec<String>,
    /// Drills due but not started, `<database> in <region>`: their region already has the policy's
    /// `drills.max_in_progress` drills in progress; a later run starts them, the longest waiting first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<String>,
    /// Counts of `results` by outcome.
    pub counts: Counts,
    /// Problems with the run itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_errors: Vec<String>,
    /// Message ID of the SNS summary, when one was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<String>,
}

/// Everything the handler needs, built once per container.
pub struct VerifyFunction {
    /// Policy, ledger, alert topic, clock.
    pub services: Services,
    /// RDS in the primary region.
    pub primary: Rds,
    /// RDS in each DR region of the policy (drills of copies).
    pub dr_regions: Vec<Rds>,
    /// Where drill credentials live.
    pub secrets: Secrets,
    /// TLS for the checks' connections.
    pub tls: TlsMode,
    /// Bound on connecting and on each check's query.
    pub check_timeout: Duration,
    /// Test-only endpoint override (see [`EndpointOverride`]).
    pub endpoint_override: Option<EndpointOverride>,
}

/// What caused a run.
struct Trigger {
    name: &'static str,
    start: Option<VerifyRequest>,
}

/// One run in progress: its report, its ledger, and whether its deletions are on record.
struct Run<'a> {
    report: VerifyReport,
    ledger: RunLedger<'a>,
    /// Whether the run's intents were written: nothing is deleted otherwise.
    deletions_on_record: bool,
}

impl VerifyFunction {
    /// Handle one invocation.
    pub async fn handle(
        &self,
        payload: Value,
        context: &Context,
    ) -> Result<VerifyReport, HandlerError> {
        let trigger = Self::trigger_of(payload)?;
        let mut run = Run {
            report: VerifyReport {
                run_id: context.request_id.clone(),
                trigger: trigger.name.into(),
                drills: Vec::new(),
                results: Vec::new(),
                overdue: Vec::new(),
                waiting: Vec::new(),
                counts: Counts::default(),
                run_errors: Vec::new(),
                notification: None,
            },
            ledger: self
                .services
                .run_ledger(FUNCTION, &context.request_id, trigger.name),
            deletions_on_record: false,
        };
        let now = self.services.clock.now();
        let primary_databases = self.primary.list_databases().await?;

        // A manual request is checked before anything changes.
        let requested = match &trigger.start {
            Some(VerifyRequest {
                database: Some(database),
                snapshot,
                region,
                ..
            }) => Some(
                self.requested_drill(
                    &primary_databases,
                    database,
                    snapshot.as_deref(),
                    region.as_deref(),
                )
                .await?,
            ),
            _ => None,
        };

        // This deployment's drills in progress, in every region. A region whose drills cannot be listed starts none
        // (neither the limit nor "already in progress" could be checked there).
        let mut drills: Vec<(&Rds, Restoration)> = Vec::new();
        let mut unlisted: Vec<&str> = Vec::new();
        for rds in self.regions() {
            let databases = if rds.region() == self.primary.region() {
                primary_databases.clone()
            } else {
                match rds.list_databases().await {
                    Ok(found) => found,
                    Err(e) => {
                        run.report.run_errors.push(format!(
                            "{e}: drills in {} not advanced, and none started there",
                            rds.region()
                        ));
                        unlisted.push(rds.region());
                        continue;
                    }
                }
            };
            drills.extend(
                restorations_in(&databases, &self.services.deployment)
                    .into_iter()
                    .filter(|d| d.purpose == Purpose::Drill)
                    .map(|d| (rds, d)),
            );
        }

        // What a scheduled run needs to start drills, read before anything changes: after the first deletion no
        // error may cut the run short (its results must reach the ledger).
        let scheduled = trigger.name == "schedule" && requested.is_none();
        let snapshots = match scheduled {
            true => self.primary.list_snapshots().await?,
            false => Vec::new(),
        };
        // The copies in the DR regions where the policy drills them (verification.regions), on their own cadence.
        let mut dr_snapshots = Vec::new();
        for rds in self.dr_regions.iter().filter(|rds| {
            scheduled
                && !unlisted.contains(&rds.region())
                && self.services.policy.plans.iter().any(|p| {
                    p.verification
                        .as_ref()
                        .is_some_and(|v| v.regions.contains_key(rds.region()))
                })
        }) {
            match rds.list_snapshots().await {
                Ok(found) => dr_snapshots.push((rds.region().to_string(), found)),
                Err(e) => run.report.run_errors.push(format!(
                    "{e}: no drill of the copies in {} started",
                    rds.region()
                )),
            }
        }

        // The drills this run deletes, on record before anything is deleted.
        let intents: Vec<LedgerRecord> = drills
            .iter()
            .filter(|(_, drill)| {
                !matches!(
                    restore::next_step(drill, now),
                    Step::Wait | Step::SecureCredentials
                )
            })
            .map(|(rds, drill)| {
                self.record(
                    "delete-drill",
                    LedgerPhase::Intent,
                    (rds.region(), &drill.database, &drill.id),
                    now,
                    None,
                    serde_json::json!({ "kind": drill.resource.kind }),
                )
            })
            .collect();
        match run.ledger.intend(intents).await {
            Ok(()) => run.deletions_on_record = true,
            Err(e) => run.report.run_errors.push(format!(
                "{e}: no drill database is deleted this run (the next run retries)"
            )),
        }

        // Advance every drill in progress.
        let mut in_progress = Vec::new();
        for (rds, drill) in &drills {
            let progress = self.advance(rds, drill, now, &mut run).await;
            if progress.step != "cleaned-up" {
                in_progress.push(drill.clone());
            }
            run.report.drills.push(progress);
        }

        // Start what is due (schedule) or what was asked for (manual).
        let to_start = match (trigger.name, requested) {
            (_, Some(requested)) => vec![requested],
            ("schedule", None) => {
                let (due, overdue) = drill::due_drills(
                    &self.services.policy,
                    &self.services.deployment,
                    &primary_databases,
                    &snapshots,
                    &in_progress,
                    now,
                );
                let primary_region = self.primary.region();
                let mut due: Vec<DueIn> = due
                    .into_iter()
                    .map(|d| (d, primary_region.to_string()))
                    .collect();
                for (region, copies) in &dr_snapshots {
                    let (due_there, _) = drill::due_drills_in(
                        &self.services.policy,
                        &self.services.deployment,
                        &primary_databases,
                        copies,
                        &in_progress,
                        Some(region),
                        now,
                    );
                    due.extend(due_there.into_iter().map(|d| (d, region.clone())));
                }
                let limit = self.services.policy.drills.max_in_progress;
                let (to_start, waiting) = drill::within_limit(due, &in_progress, limit);
                run.report.waiting = waiting
                    .iter()
                    .map(|(d, region)| format!("{} in {region}", d.database.identifier))
                    .collect();
                if !waiting.is_empty() {
                    info!(waiting = waiting.len(), limit, "drills wait for a place");
                }
                let stuck = overdue.iter().filter(|o| {
                    !to_start
                        .iter()
                        .any(|(d, r)| d.database.identifier == o.database && r == primary_region)
                        && !in_progress.iter().any(|d| d.database == o.database)
                });
                for late in stuck {
                    run.report.overdue.push(late.database.clone());
                    // Every run reports it (and the DrillOverdue metric can page at once); SNS once a day.
                    if !in_daily_alert_window(now) {
                        continue;
                    }
                    let last_verified = late
                        .last_verified
                        .map(rfc3339)
                        .unwrap_or_else(|| "never".into());
                    let waits = waiting.iter().any(|(d, r)| {
                        d.database.identifier == late.database && r == primary_region
                    });
                    let (detail, next_step) = if waits {
                        (
                            format!(
                                "drill overdue: last verified {last_verified}; its drill waits for a place ({limit} \
                                 drills in progress in {primary_region}, the policy's drills.max_in_progress)"
                            ),
                            "raise drills.max_in_progress (within the account's RDS DB instance quota) or verify \
                             less often"
                                .to_string(),
                        )
                    } else {
                        (
                            format!(
                                "drill overdue: last verified {last_verified} and no recovery point left to drill \
                                 (the newest failed or none exists)"
                            ),
                            "check that the snapshot function runs for this database".to_string(),
                        )
                    };
                    run.report.results.push(ItemOutcome {
                        database: late.database.clone(),
                        kind: DatabaseKind::Instance,
                        region: primary_region.into(),
                        action: "restore-drill".into(),
                        status: ItemStatus::Failed,
                        resource: None,
                        detail: Some(detail),
                        next_step: Some(next_step),
                    });
                }
                to_start
            }
            _ => Vec::new(),
        };
        for (due, region) in to_start {
            self.start(&due, &region, now, &mut run).await;
        }

        let Run {
            mut report, ledger, ..
        } = run;
        if let Err(e) = ledger.finish().await {
            report.run_errors.push(e.to_string());
        }
        report.counts = Counts::of(&report.results);
        self.emit_metrics(&report, now);
        let outcome = RunOutcome {
            function: FUNCTION,
            region: self.primary.region(),
            run_id: &report.run_id,
            trigger: &report.trigger,
            items: &report.results,
        };
        report.notification = self
            .services
            .summarize(outcome, &mut report.run_errors)
            .await;
        info!(counts = ?report.counts, drills = report.drills.len(), "verify run finished");
        Ok(report)
    }

    fn trigger_of(payload: Value) -> Result<Trigger, HandlerError> {
        match input::classify(payload)? {
            Incoming::Event(event) if event.detail_type == input::SCHEDULED_EVENT => Ok(Trigger {
                name: "schedule",
                start: None,
            }),
            Incoming::Event(event) if DRILL_EVENT_TYPES.contains(&event.detail_type.as_str()) => {
                if event
                    .detail
                    .get("EventID")
                    .and_then(Value::as_str)
                    .is_none()
                {
                    return Err(HandlerError::InvalidInput(format!(
                        "`{}` event has no detail.EventID: cannot tell what happened",
                        event.detail_type
                    )));
                }
                Ok(Trigger {
                    name: "rds-event",
                    start: None,
                })
            }
            Incoming::Event(event) => Err(HandlerError::InvalidInput(format!(
                "the verify function handles EventBridge `{}`, `{}` and `{}` events, not `{}` (from {})",
                input::SCHEDULED_EVENT,
                DRILL_EVENT_TYPES[0],
                DRILL_EVENT_TYPES[1],
                event.detail_type,
                event.source
            ))),
            Incoming::Manual { action, payload } if action == ACTION => {
                let request: VerifyRequest = input::parse_request(payload)?;
                if request.database.is_none()
                    && (request.snapshot.is_some() || request.region.is_some())
                {
                    return Err(HandlerError::InvalidInput(
                        "`snapshot` and `region` need `database`: name the database to drill"
                            .into(),
                    ));
                }
                Ok(Trigger {
                    name: "manual",
                    start: Some(request),
                })
            }
            Incoming::Manual { action, .. } => Err(input::unknown_action(&action, &[ACTION])),
        }
    }

    /// Resolve an operator's drill request, or reject it naming the problem.
    async fn requested_drill(
        &self,
        databases: &[Database],
        database: &str,
        snapshot: Option<&str>,
        region: Option<&str>,
    ) -> Result<DueIn, HandlerError> {
        let db = databases
            .iter()
            .find(|db| db.identifier == database && db.cluster.is_none())
            .ok_or_else(|| {
                HandlerError::InvalidInput(format!(
                    "no DB instance or cluster named `{database}` in {}",
                    self.primary.region()
                ))
            })?;
        if self
            .services
            .policy
            .plan_for(db)
            .and_then(|p| p.verification.as_ref())
            .is_none()
        {
            return Err(HandlerError::InvalidInput(format!(
                "no plan of policy `{}` gives `{database}` a `verification` section (instance class, subnet group, \
                 checks)",
                self.services.policy.name
            )));
        }
        let region = region.unwrap_or(self.primary.region()).to_string();
        let rds = self.rds_in(&region).ok_or_else(|| {
            HandlerError::InvalidInput(format!(
                "region `{region}` is neither the primary region nor a DR region of the policy"
            ))
        })?;
        let snapshots = rds.list_snapshots().await?;
        let deployment = &self.services.deployment;
        let candidates = snapshots
            .into_iter()
            .filter(|s| s.database == database && s.kind == db.kind && s.is_available());
        let chosen = match snapshot.unwrap_or("latest") {
            "latest" => candidates
                .filter(|s| deployment.owns(&s.tags))
                .max_by_key(|s| s.created_at),
            id => match candidates.into_iter().find(|s| s.identifier == id) {
                Some(named) if !deployment.owns(&named.tags) => {
                    return Err(HandlerError::InvalidInput(format!(
                        "snapshot `{id}` in {region} was made by {}: this deployment drills only its own recovery \
                         points (and never tags another's)",
                        deployment.owner_of(&named.tags)
                    )));
                }
                named => named,
            },
        }
        .ok_or_else(|| {
            HandlerError::InvalidInput(format!(
                "no available snapshot `{}` of `{database}` made by this deployment in {region}",
                snapshot.unwrap_or("latest")
            ))
        })?;
        Ok((
            DueDrill {
                id: drill::drill_identifier_in(
                    database,
                    &chosen.identifier,
                    (region != self.primary.region()).then_some(region.as_str()),
                ),
                database: db.clone(),
                snapshot: chosen,
                waiting_since: self.services.clock.now(),
            },
            region,
        ))
    }

    /// The one restore engine, in `rds`'s region.
    fn engine<'a>(&'a self, rds: &'a Rds) -> RestoreEngine<'a> {
        RestoreEngine {
            rds,
            secrets: &self.secrets,
            deployment: &self.services.deployment,
        }
    }

    /// How the checks connect.
    fn check_settings(&self) -> CheckSettings {
        CheckSettings {
            tls: self.tls.clone(),
            timeout: self.check_timeout,
            endpoint_override: self.endpoint_override.clone(),
        }
    }

    fn regions(&self) -> impl Iterator<Item = &Rds> {
        std::iter::once(&self.primary).chain(&self.dr_regions)
    }

    fn rds_in(&self, region: &str) -> Option<&Rds> {
        self.regions().find(|rds| rds.region() == region)
    }

    /// Request the restore of a drill.
    async fn start(&self, due: &DueDrill, region: &str, now: DateTime<Utc>, run: &mut Run<'_>) {
        let Some(rds) = self.rds_in(region) else {
            return;
        };
        let Some(verification) = self
            .services
            .policy
            .plan_for(&due.database)
            .and_then(|plan| plan.verification.as_ref())
        else {
            return;
        };
        let drill_tags =
            drill::drill_tags(&self.services.policy, &self.services.deployment, due, now);
        let dr_region = (region != self.primary.region()).then_some(region);
        let (subnet_group, security_groups) = verification.network_in(dr_region);
        let instance_class = match due.snapshot.kind {
            DatabaseKind::Instance => &verification.instance_class,
            DatabaseKind::Cluster => &verification.cluster_instance_class,
        };
        let spec = RestoreSpec {
            id: &due.id,
            marker: tags::DRILL,
            kind: due.snapshot.kind,
            source: RestoreSource::Snapshot(&due.snapshot.identifier),
            engine: &due.database.engine,
            instance_class,
            subnet_group,
            security_groups,
            parameter_group: None,
            option_group: None,
            tags: &drill_tags,
        };
        let result = self.engine(rds).start(&spec).await;
        let refused = result.as_ref().err().is_some_and(is_refusal);
        let record = self.record(
            "start-drill",
            LedgerPhase::Result,
            (region, &due.database.identifier, &due.id),
            now,
            result.as_ref().err().map(ToString::to_string),
            serde_json::json!({
                "snapshot": due.snapshot.arn,
                "instance_class": instance_class,
                "refused": refused,
            }),
        );
        run.ledger.record(record);
        let mut progress = DrillReport::new(
            &due.id,
            &due.database.identifier,
            &due.snapshot.identifier,
            region,
            "restore-requested",
        );
        let (status, detail, next_step) = match &result {
            Ok(()) => {
                info!(drill = %due.id, snapshot = %due.snapshot.identifier, "drill restore requested");
                (ItemStatus::Done, None, None)
            }
            Err(e) if refused => {
                // RDS refuses this drill's settings: asking again every half hour changes nothing. Recorded on
                // the recovery point (alerted once for it); the next recovery point gets a drill of its own.
                warn!(drill = %due.id, error = %e, "drill refused by RDS: not retried on this recovery point");
                progress.step = "not-started".into();
                progress.failure_class = Some(FailureClass::NotStarted);
                if let Err(tag_error) = rds
                    .add_tags(
                        &due.snapshot.arn,
                        &[(
                            tags::VERIFY_RESULT.to_string(),
                            drill::result::NOT_STARTED.to_string(),
                        )],
                    )
                    .await
                {
                    run.report.run_errors.push(format!(
                        "refused drill not recorded on {}: {tag_error} (the next run tries again)",
                        due.snapshot.identifier
                    ));
                }
                if due.snapshot.kind == DatabaseKind::Cluster {
                    // The cluster may have been restored before its instance was refused: have it deleted.
                    let cluster_arn = sibling_arn(&due.snapshot.arn, "cluster", &due.id);
                    let _ = rds
                        .add_tags(
                            &cluster_arn,
                            &[(
                                tags::DRILL_PHASE.to_string(),
                                Phase::CleaningUp.as_str().to_string(),
                            )],
                        )
                        .await;
                }
                (
                    ItemStatus::Failed,
                    Some(format!(
                        "drill of {} could not start ({} {instance_class}): {e}",
                        due.snapshot.identifier, due.database.engine
                    )),
                    Some(format!(
                        "fix the plan's verification settings (instance_class for DB instances, \
                         cluster_instance_class for Aurora: a class the engine offers; subnet_group; \
                         security_groups): {}; this recovery point is not tried again, the next one is drilled \
                         (or start a drill by hand)",
                        e.next_step()
                    )),
                )
            }
            Err(e) => {
                warn!(drill = %due.id, error = %e, "drill restore not requested");
                progress.step = "restore-failed".into();
                (
                    ItemStatus::Failed,
                    Some(e.to_string()),
                    Some("transient: the next scheduled run tries again".into()),
                )
            }
        };
        run.report.results.push(ItemOutcome {
            database: due.database.identifier.clone(),
            kind: due.database.kind,
            region: region.into(),
            action: "start-drill".into(),
            status,
            resource: Some(due.id.clone()),
            next_step,
            detail,
        });
        run.report.drills.push(progress);
    }

    /// Advance one drill by one step.
    async fn advance(
        &self,
        rds: &Rds,
        drill: &Restoration,
        now: DateTime<Utc>,
        run: &mut Run<'_>,
    ) -> DrillReport {
        let mut progress = DrillReport::new(
            &drill.id,
            &drill.database,
            &drill.snapshot,
            rds.region(),
            "waiting",
        );
        let step = restore::next_step(drill, now);
        let outcome = match step {
            Step::Wait if drill.resource.status == INSTANCE_MISSING => {
                self.create_member(rds, drill, &mut progress).await
            }
            // The last three are steps of ad-hoc restores, never of a drill.
            Step::Wait | Step::AnnounceExpiry | Step::Retire | Step::AwaitFinalSnapshot => Ok(()),
            Step::SecureCredentials => self.secure(rds, drill, now, &mut progress).await,
            // The checks run only once the drill credentials are in effect: RDS reports `available` for a
            // moment after the modify call, before it applies the new master password.
            Step::RunChecks => match self.engine(rds).credentials_pending(drill).await {
                Ok(Some(why)) => {
                    info!(drill = %drill.id, waiting_for = %why, "drill credentials not in effect yet");
                    progress.step = Phase::Securing.as_str().into();
                    progress.waiting_for = Some(why);
                    Ok(())
                }
                Ok(None) => match self.check(rds, drill, now, &mut progress, run).await {
                    Ok(Checked::Done) => self.clean_up(rds, drill, now, &mut progress, run).await,
                    Ok(Checked::Keep) => Ok(()),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
            Step::RecordFailedRestore => {
                self.record_failed_restore(drill, now, &mut progress, run)
                    .await;
                self.clean_up(rds, drill, now, &mut progress, run).await
            }
            Step::CleanUp => {
                if drill.swept_unfinished(now) {
                    self.record_swept(rds, drill, now, run).await;
                }
                self.clean_up(rds, drill, now, &mut progress, run).await
            }
        };
        if let Err(e) = outcome {
            warn!(drill = %drill.id, error = %e, "drill step failed");
            run.report.results.push(ItemOutcome {
                database: drill.database.clone(),
                kind: drill.resource.kind,
                region: rds.region().into(),
                action: "restore-drill".into(),
                status: ItemStatus::Failed,
                resource: Some(drill.id.clone()),
                detail: Some(e.to_string()),
                next_step: Some(e.next_step()),
            });
        }
        progress
    }

    /// An Aurora drill's cluster exists without its instance (the run that restored the cluster never heard
    /// back, or could not create the instance): ask for the instance again, as the start would have. Without it
    /// the drill would wait until swept and its recovery point would be left unverified.
    async fn create_member(
        &self,
        rds: &Rds,
        drill: &Restoration,
        progress: &mut DrillReport,
    ) -> Result<(), AwsError> {
        let instance_class = drill
            .plan
            .as_deref()
            .and_then(|name| self.services.policy.plan_named(name))
            .and_then(|plan| plan.verification.as_ref())
            .map(|v| v.cluster_instance_class.clone())
            .unwrap_or_else(|| lifeboat::policy::DEFAULT_CLUSTER_INSTANCE_CLASS.into());
        self.engine(rds)
            .create_member(drill, &instance_class)
            .await?;
        progress.step = "instance-requested".into();
        Ok(())
    }

    /// The restore is done: drill-only credentials, in a secret deleted with the drill.
    async fn secure(
        &self,
        rds: &Rds,
        drill: &Restoration,
        now: DateTime<Utc>,
        progress: &mut DrillReport,
    ) -> Result<(), AwsError> {
        self.engine(rds).secure(drill, now).await?;
        progress.step = "credentials-set".into();
        progress.restore_seconds = Some(drill.restore_seconds(now));
        Ok(())
    }

    /// Credentials are in effect: run the checks and record the result everywhere. A failing check on a
    /// connected database fails the recovery point; a drill that could not connect or log in (refused, timed
    /// out, TLS, authentication) is a drill-infrastructure failure: retried on the same temporary database by the
    /// next runs, up to [`restore::MAX_INFRASTRUCTURE_ATTEMPTS`], then alerted once and the recovery point left
    /// `inconclusive`, never `failed`.
    async fn check(
        &self,
        rds: &Rds,
        drill: &Restoration,
        now: DateTime<Utc>,
        progress: &mut DrillReport,
        run: &mut Run<'_>,
    ) -> Result<Checked, AwsError> {
        let Some(password) = self.engine(rds).password(drill).await? else {
            // The credentials are gone (a crash, or someone deleted them): set them again.
            self.secure(rds, drill, now, progress).await?;
            return Ok(Checked::Keep);
        };
        let plan = drill
            .plan
            .as_deref()
            .and_then(|name| self.services.policy.plan_named(name));
        let verification = plan.and_then(|p| p.verification.as_ref());
        let policy_checks = verification.map(|v| v.checks.clone()).unwrap_or_default();
        let (results, tls) = self
            .engine(rds)
            .run_checks(
                drill,
                password,
                &policy_checks,
                verification.and_then(|v| v.database_name.clone()),
                &self.check_settings(),
            )
            .await;
        if let Some(tls) = tls {
            progress.certificate_verification = Some(tls.describe().into());
            if matches!(tls, TlsMode::Require { ca_bundle: None }) {
                run.report.run_errors.push(format!(
                    "warning: drill {} of {} connected without certificate verification (no RDS CA bundle: \
                     set {} or deploy the bundle shipped with the function)",
                    drill.id,
                    drill.database,
                    checks::CA_BUNDLE_ENV
                ));
            }
        }
        let passed = results.iter().all(|r| r.passed);
        if !passed && failure_class(&results) == FailureClass::Infrastructure {
            return self
                .infrastructure_failure(rds, drill, now, results, progress, run)
                .await;
        }
        if !passed {
            progress.failure_class = Some(FailureClass::Snapshot);
        }
        let available_at = drill.available_at.unwrap_or(now);
        let restore_seconds = (available_at - drill.started_at).num_seconds();
        let drill_seconds = (now - drill.started_at).num_seconds();
        let rto = plan.map(|p| p.objectives.rto.as_secs() as i64);

        // On the snapshot: the verification time only when it passed; the result either way.
        let mut snapshot_tags = vec![(
            tags::VERIFY_RESULT.to_string(),
            if passed {
                drill::result::PASSED
            } else {
                drill::result::FAILED
            }
            .to_string(),
        )];
        if passed {
            snapshot_tags.push((tags::VERIFIED_AT.to_string(), rfc3339(now)));
        }
        // How long the restore took: ad-hoc restore plans of this database expect as much.
        snapshot_tags.push((
            tags::RESTORE_SECONDS.to_string(),
            restore_seconds.to_string(),
        ));
        let snapshot_region = drill.snapshot_arn.split(':').nth(3).unwrap_or(rds.region());
        if let Some(owner) = self.rds_in(snapshot_region)
            && let Err(e) = owner.add_tags(&drill.snapshot_arn, &snapshot_tags).await
        {
            run.report
                .run_errors
                .push(format!("result not tagged on {}: {e}", drill.snapshot));
        }
        let record = self.record(
            "restore-drill",
            LedgerPhase::Result,
            (rds.region(), &drill.database, &drill.id),
            now,
            (!passed).then(|| failures(&results)),
            serde_json::json!({
                "snapshot": drill.snapshot_arn,
                "passed": passed,
                "checks": results,
                "restore_seconds": restore_seconds,
                "drill_seconds": drill_seconds,
                "rto_seconds": rto,
                "failure_class": (!passed).then_some(FailureClass::Snapshot),
                "certificate_verification": progress.certificate_verification,
            }),
        );
        run.ledger.record(record);

        let mut outcome = ItemOutcome {
            database: drill.database.clone(),
            kind: drill.resource.kind,
            region: rds.region().into(),
            action: "restore-drill".into(),
            status: ItemStatus::Done,
            resource: Some(drill.snapshot.clone()),
            detail: None,
            next_step: None,
        };
        if !passed {
            outcome.status = ItemStatus::Failed;
            outcome.detail = Some(format!(
                "snapshot {} failed its restore drill: {}",
                drill.snapshot,
                failures(&results)
            ));
            outcome.next_step = Some(
                "the recovery point does not hold what the policy expects: investigate before relying on it".into(),
            );
        } else if rto.is_some_and(|rto| restore_seconds > rto) {
            outcome.status = ItemStatus::Failed;
            outcome.detail = Some(format!(
                "restore of {} took {}s, slower than the RTO of {}s",
                drill.snapshot,
                restore_seconds,
                rto.unwrap_or_default()
            ));
            outcome.next_step = Some("the RTO target cannot be met from snapshots: consider a standby or a smaller restore".into());
        }
        run.report.results.push(outcome);
        info!(drill = %drill.id, passed, restore_seconds, drill_seconds, "drill checked");
        progress.step = "checked".into();
        progress.passed = Some(passed);
        progress.checks = results;
        progress.restore_seconds = Some(restore_seconds);
        progress.drill_seconds = Some(drill_seconds);
        progress.rto_seconds = rto;
        rds.add_tags(
            &drill.resource.arn,
            &[(
                tags::DRILL_PHASE.to_string(),
                Phase::CleaningUp.as_str().to_string(),
            )],
        )
        .await?;
        Ok(Checked::Done)
    }

    /// The drill could not reach or log in to its database: retry on the next run, or give up after
    /// [`restore::MAX_INFRASTRUCTURE_ATTEMPTS`] and alert once. Never marks the recovery point failed.
    async fn infrastructure_failure(
        &self,
        rds: &Rds,
        drill: &Restoration,
        now: DateTime<Utc>,
        results: Vec<CheckResult>,
        progress: &mut DrillReport,
        run: &mut Run<'_>,
    ) -> Result<Checked, AwsError> {
        let decision = restore::after_infrastructure_failure(drill);
        let attempt = match decision {
            InfrastructureRetry::Retry { attempt, .. } => attempt,
            InfrastructureRetry::GiveUp { attempts } => attempts,
        };
        let problem = failures(&results);
        warn!(drill = %drill.id, attempt, problem = %problem, "drill infrastructure failed");
        let record = self.record(
            "restore-drill",
            LedgerPhase::Result,
            (rds.region(), &drill.database, &drill.id),
            now,
            Some(format!("drill infrastructure: {problem}")),
            serde_json::json!({
                "snapshot": drill.snapshot_arn,
                "passed": null,
                "failure_class": FailureClass::Infrastructure,
                "attempt": attempt,
                "max_attempts": restore::MAX_INFRASTRUCTURE_ATTEMPTS,
                "gave_up": matches!(decision, InfrastructureRetry::GiveUp { .. }),
                "checks": results,
                "certificate_verification": progress.certificate_verification,
            }),
        );
        run.ledger.record(record);
        progress.failure_class = Some(FailureClass::Infrastructure);
        progress.attempt = Some(attempt);
        progress.checks = results;
        let mut outcome = ItemOutcome {
            database: drill.database.clone(),
            kind: drill.resource.kind,
            region: rds.region().into(),
            action: "restore-drill".into(),
            status: ItemStatus::Skipped,
            resource: Some(drill.snapshot.clone()),
            detail: None,
            next_step: Some(INFRASTRUCTURE_NEXT_STEP.into()),
        };
        match decision {
            InfrastructureRetry::Retry { attempt, of } => {
                outcome.detail = Some(format!(
                    "drill infrastructure: drill {} of {} could not check its database (attempt {attempt} of \
                     {of}; retried on the next run; the snapshot is not blamed): {problem}",
                    drill.id, drill.snapshot
                ));
                run.report.results.push(outcome);
                progress.step = "checks-retried".into();
                rds.add_tags(
                    &drill.resource.arn,
                    &[(tags::DRILL_ATTEMPTS.to_string(), attempt.to_string())],
                )
                .await?;
                Ok(Checked::Keep)
            }
            InfrastructureRetry::GiveUp { attempts } => {
                outcome.status = ItemStatus::Failed;
                outcome.detail = Some(format!(
                    "drill infrastructure: drill {} of {} gave up after {attempts} attempts; the recovery point is \
                     not blamed (lifeboat:verify-result={}) and the next one is drilled: {problem}",
                    drill.id,
                    drill.snapshot,
                    drill::result::INCONCLUSIVE
                ));
                run.report.results.push(outcome);
                self.tag_result(drill, drill::result::INCONCLUSIVE, run)
                    .await;
                progress.step = "gave-up".into();
                rds.add_tags(
                    &drill.resource.arn,
                    &[
                        (tags::DRILL_ATTEMPTS.to_string(), attempts.to_string()),
                        (
                            tags::DRILL_PHASE.to_string(),
                            Phase::CleaningUp.as_str().to_string(),
                        ),
                    ],
                )
                .await?;
                Ok(Checked::Done)
            }
        }
    }

    /// Tag `result` on the snapshot the drill restored (in the snapshot's region); a failure is a run error.
    async fn tag_result(&self, drill: &Restoration, result: &str, run: &mut Run<'_>) {
        let snapshot_region = drill.snapshot_arn.split(':').nth(3).unwrap_or_default();
        if let Some(owner) = self.rds_in(snapshot_region)
            && let Err(e) = owner
                .add_tags(
                    &drill.snapshot_arn,
                    &[(tags::VERIFY_RESULT.to_string(), result.to_string())],
                )
                .await
        {
            run.report
                .run_errors
                .push(format!("result not tagged on {}: {e}", drill.snapshot));
        }
    }

    /// A drill expired before it finished: alerted with the phase it was in; the recovery point is left
    /// inconclusive (not blamed, not drilled again), and the sweeper deletes the drill.
    async fn record_swept(
        &self,
        rds: &Rds,
        drill: &Restoration,
        now: DateTime<Utc>,
        run: &mut Run<'_>,
    ) {
        let waiting_for = match drill.phase {
            Phase::Restoring => "RDS never finished the restore",
            Phase::Securing => "the drill credentials never took effect or the checks never ran",
            // Ad-hoc restore phases: never a drill's.
            Phase::CleaningUp | Phase::Ready | Phase::Retiring => "clean-up",
        };
        let detail = format!(
            "drill {} expired {} unfinished, in phase `{}` ({waiting_for}; started {}): swept, and snapshot {} was \
             not verified",
            drill.id,
            rfc3339(drill.expires_at),
            drill.phase.as_str(),
            rfc3339(drill.started_at),
            if drill.snapshot.is_empty() {
                "(unknown)"
            } else {
                drill.snapshot.as_str()
            }
        );
        let record = self.record(
            "sweep-drill",
            LedgerPhase::Result,
            (rds.region(), &drill.database, &drill.id),
            now,
            Some(detail.clone()),
            serde_json::json!({ "phase": drill.phase, "snapshot": drill.snapshot_arn }),
        );
        run.ledger.record(record);
        if !drill.snapshot_arn.is_empty() {
            self.tag_result(drill, drill::result::INCONCLUSIVE, run)
                .await;
        }
        run.report.results.push(ItemOutcome {
            database: drill.database.clone(),
            kind: drill.resource.kind,
            region: rds.region().into(),
            action: "sweep-drill".into(),
            status: ItemStatus::Failed,
            resource: Some(drill.id.clone()),
            detail: Some(detail),
            next_step: Some(match drill.phase {
                Phase::Restoring => {
                    "the restore takes longer than the drill lifetime (6 h): check the instance \
                    class and the RDS events of the drill database"
                        .into()
                }
                _ => INFRASTRUCTURE_NEXT_STEP.into(),
            }),
        });
    }

    /// The restore failed: record it, then the drill is cleaned up.
    async fn record_failed_restore(
        &self,
        drill: &Restoration,
        now: DateTime<Utc>,
        progress: &mut DrillReport,
        run: &mut Run<'_>,
    ) {
        let detail = format!(
            "restore of {} ended in status `{}`",
            drill.snapshot, drill.resource.status
        );
        let record = self.record(
            "restore-drill",
            LedgerPhase::Result,
            (&drill.resource.region, &drill.database, &drill.id),
            now,
            Some(detail.clone()),
            serde_json::json!({ "snapshot": drill.snapshot_arn, "passed": false }),
        );
        run.ledger.record(record);
        let snapshot_region = drill.snapshot_arn.split(':').nth(3).unwrap_or_default();
        if let Some(owner) = self.rds_in(snapshot_region)
            && let Err(e) = owner
                .add_tags(
                    &drill.snapshot_arn,
                    &[(tags::VERIFY_RESULT.to_string(), "failed".to_string())],
                )
                .await
        {
            run.report
                .run_errors
                .push(format!("result not tagged on {}: {e}", drill.snapshot));
        }
        run.report.results.push(ItemOutcome {
            database: drill.database.clone(),
            kind: drill.resource.kind,
            region: drill.resource.region.clone(),
            action: "restore-drill".into(),
            status: ItemStatus::Failed,
            resource: Some(drill.snapshot.clone()),
            detail: Some(detail),
            next_step: Some("the snapshot could not be restored: check its encryption key and the drill settings".into()),
        });
        progress.passed = Some(false);
        progress.failure_class = Some(FailureClass::Snapshot);
    }

    /// Delete the drill's credentials, then its temporary resources, between ledger records.
    async fn clean_up(
        &self,
        rds: &Rds,
        drill: &Restoration,
        now: DateTime<Utc>,
        progress: &mut DrillReport,
        run: &mut Run<'_>,
    ) -> Result<(), AwsError> {
        let at = (rds.region(), drill.database.as_str(), drill.id.as_str());
        if !run.deletions_on_record {
            // The run's intents could not be written: nothing is deleted without them (the next run retries).
            return Ok(());
        }
        // The credentials first: the drill database is deleted only once its secret is gone. The other way round,
        // a secret whose deletion failed after its database went would be left behind: no later run finds a
        // drill to clean up (a database RDS deletes is gone within minutes).
        let secret = self
            .secrets
            .delete(&drill.purpose.secret_name(&drill.id))
            .await;
        let deleted = match &secret {
            Ok(()) => Some(rds.delete_restored(drill.resource.kind, &drill.id).await),
            Err(_) => None,
        };
        // The result is on record whatever happened, before any error goes on.
        let error = secret
            .as_ref()
            .err()
            .or(deleted.as_ref().and_then(|d| d.as_ref().err()))
            .map(ToString::to_string);
        let gone = deleted.as_ref().and_then(|d| d.as_ref().ok());
        let result = self.record(
            "delete-drill",
            LedgerPhase::Result,
            at,
            now,
            error,
            serde_json::json!({ "kind": drill.resource.kind, "gone": gone }),
        );
        run.ledger.record(result);
        secret?;
        let gone = deleted.transpose()?.unwrap_or(false);
        progress.step = if gone { "cleaned-up" } else { "deleting" }.into();
        Ok(())
    }

    fn record(
        &self,
        action: &str,
        phase: LedgerPhase,
        (region, database, drill): (&str, &str, &str),
        now: DateTime<Utc>,
        error: Option<String>,
        details: Value,
    ) -> LedgerRecord {
        LedgerRecord {
            schema: RECORD_SCHEMA,
            time: now,
            function: FUNCTION.into(),
            run_id: String::new(),
            trigger: String::new(),
            action: action.into(),
            phase,
            region: region.into(),
            database: database.into(),
            resource: drill.into(),
            reason: format!("policy {}: restore drill", self.services.policy.name),
            outcome: Some(if error.is_some() { "failed" } else { "ok" }.into())
                .filter(|_| phase == LedgerPhase::Result),
            error,
            details,
        }
    }

    fn emit_metrics(&self, report: &VerifyReport, now: DateTime<Utc>) {
        let mut metrics = Metrics::new(FUNCTION, &self.services.deployment.name, now);
        for drill in report
            .drills
            .iter()
            .filter(|d| d.failure_class == Some(FailureClass::Infrastructure))
        {
            let dims = [
                ("Database", drill.database.as_str()),
                ("Region", drill.region.as_str()),
            ];
            metrics.put(&dims, "DrillInfrastructureFailed", 1.0, Unit::Count);
        }
        for database in &report.overdue {
            let dims = [
                ("Database", database.as_str()),
                ("Region", self.primary.region()),
            ];
            metrics.put(&dims, "DrillOverdue", 1.0, Unit::Count);
        }
        for drill in report.drills.iter().filter(|d| d.passed.is_some()) {
            let dims = [
                ("Database", drill.database.as_str()),
                ("Region", drill.region.as_str()),
            ];
            metrics.put(
                &dims,
                "DrillSucceeded",
                f64::from(u8::from(drill.passed == Some(true))),
                Unit::Count,
            );
            if let Some(seconds) = drill.restore_seconds {
                metrics.put(&dims, "RestoreSeconds", seconds as f64, Unit::Seconds);
            }
            if let Some(seconds) = drill.drill_seconds {
                metrics.put(&dims, "DrillSeconds", seconds as f64, Unit::Seconds);
            }
        }
        metrics.emit();
    }
}

/// Overdue drills are alerted by the first scheduled run of each UTC day (the schedule runs every 30 minutes).
fn in_daily_alert_window(now: DateTime<Utc>) -> bool {
    now.time() < chrono::NaiveTime::from_hms_opt(0, 30, 0).unwrap_or_default()
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Aurora drill cluster, without its instance, in `status`.
    fn drill_cluster(status: &str) -> Database {
        Database {
            identifier: "lbdrill-billing-1a2b3c4d".into(),
            kind: DatabaseKind::Cluster,
            arn: "arn:aws:rds:us-east-1:123456789012:cluster:lbdrill-billing-1a2b3c4d".into(),
            region: "us-east-1".into(),
            engine: "aurora-postgresql".into(),
            status: status.into(),
            encrypted: true,
            cluster: None,
            endpoint: None,
            master_username: None,
            engine_version: None,
            replica_source: None,
            tags: [
                (
                    lifeboat::tags::DRILL.to_string(),
                    "lbdrill-billing-1a2b3c4d".to_string(),
                ),
                (
                    lifeboat::tags::MANAGED.to_string(),
                    lifeboat::tags::TRUE.to_string(),
                ),
                (
                    lifeboat::tags::DEPLOYMENT.to_string(),
                    "lifeboat".to_string(),
                ),
                (
                    lifeboat::tags::HOME_REGION.to_string(),
                    "us-east-1".to_string(),
                ),
            ]
            .into(),
        }
    }

    #[test]
    fn only_a_drill_cluster_being_made_or_ready_gets_its_instance_asked_for_again() {
        for (status, asks) in [
            ("creating", true),
            ("available", true),
            ("deleting", false),
            ("failed", false),
        ] {
            let deployment = lifeboat::ownership::Deployment::new("lifeboat", "us-east-1").unwrap();
            let drills = restorations_in(&[drill_cluster(status)], &deployment);
            assert_eq!(
                drills[0].resource.status == INSTANCE_MISSING,
                asks,
                "{status}"
            );
        }
    }
}
