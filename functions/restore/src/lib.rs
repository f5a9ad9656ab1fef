//! The restore function: an operator's ad-hoc restore of any recovery point (a named snapshot or copy, the newest
//! recovery point, or a point in time), in any region the policy knows, to a new private database, on the one
//! restore engine drills use ([`lifeboat::restore`]).
//!
//! - `{"action":"restore","database":..,"point_in_time":..|"snapshot":..,"region":..,"reason":..,
//!   "requested_by":..,"expires_in":"48h"}` starts one; with `"plan": true` it only says what it would do.
//! - `{"action":"restore","target":..,"keep":true,"expires_in":..}` extends a restore's life.
//! - `{"action":"restore"}`, the 5-minute schedule and RDS events advance every restore in progress: credentials,
//!   the plan's checks, one message to the operator when it is ready (endpoint, secret, recovery point, restore
//!   time), a notice a day before it expires, then a final snapshot and its deletion.

use chrono::{DateTime, Utc};
use lambda_runtime::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use lifeboat::aws::AwsError;
use lifeboat::aws::rds::{CreateSnapshotError, Rds, RestoreSource, RestoreSpec};
use lifeboat::aws::secrets::Secrets;
use lifeboat::checks::{CheckResult, failures};
use lifeboat::input::{self, Incoming};
use lifeboat::lambda::HandlerError;
use lifeboat::ledger::{LedgerRecord, Phase as LedgerPhase, RECORD_SCHEMA, RunLedger};
use lifeboat::metrics::{Metrics, Unit};
use lifeboat::model::{Database, DatabaseKind};
use lifeboat::report::{Counts, ItemOutcome, ItemStatus};
use lifeboat::restore::adhoc::{self, Plan, Request, Source, Window};
use lifeboat::restore::engine::{
    CheckSettings, INSTANCE_MISSING, RestoreEngine, failure_class, is_refusal, restorations_in,
};
use lifeboat::restore::{
    self, EXPIRY, FailureClass, InfrastructureRetry, Phase, Purpose, READY, Restoration, Step,
    tag_time,
};
use lifeboat::services::{RunOutcome, Services};
use lifeboat::tags;

/// Name of this function in ledger records, metrics and notifications.
pub const FUNCTION: &str = "restore";

/// The manual action this function performs.
pub const ACTION: &str = "restore";

/// EventBridge detail types of the RDS events that advance restores.
pub const RESTORE_EVENT_TYPES: [&str; 2] = ["RDS DB Instance Event", "RDS DB Cluster Event"];

/// `lifeboat:restore-notified` entry: the operator was told the restore failed.
const FAILED: &str = "failed";
/// `lifeboat:restore-notified` entry: the operator was told a ready restore became impaired.
const IMPAIRED: &str = "impaired";
/// `lifeboat:restore-notified` entry: the operator was told the final snapshot failed.
const FINAL_SNAPSHOT_FAILED: &str = "final-failed";

/// An operator's request (see the module docs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// Always `restore`.
    pub action: String,
    /// The source database: starts a restore.
    #[serde(default)]
    pub database: Option<String>,
    /// Region to restore in (the primary region by default).
    #[serde(default)]
    pub region: Option<String>,
    /// A snapshot or copy identifier, or `latest`.
    #[serde(default)]
    pub snapshot: Option<String>,
    /// Restore the data as of this time (RFC 3339).
    #[serde(default)]
    pub point_in_time: Option<DateTime<Utc>>,
    /// Name of the new database (`lbrestore-…`); derived from the source and the data's time by default.
    #[serde(default)]
    pub target: Option<String>,
    /// Why (an incident reference): tagged on the new database and recorded in the ledger.
    #[serde(default)]
    pub reason: Option<String>,
    /// Who asks (the CLI sends the caller's ARN from STS): tagged and recorded.
    #[serde(default)]
    pub requested_by: Option<String>,
    /// How long the new database lives (`48h`, `3d`; 48 hours by default).
    #[serde(default)]
    pub expires_in: Option<String>,
    /// Only resolve and return what would be restored; change nothing.
    #[serde(default)]
    pub plan: bool,
    /// Extend the life of the restore `target` by `expires_in` from now.
    #[serde(default)]
    pub keep: bool,
}

/// One restore in progress, as this run left it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreProgress {
    /// The restored database.
    pub target: String,
    /// Its source database.
    pub database: String,
    /// Region.
    pub region: String,
    /// The recovery point restored (`point-in-time` for a restore to a time).
    pub recovery_point: String,
    /// The time of its data.
    pub data_time: String,
    /// What this run did (or what it waits for).
    pub step: String,
    /// Where to connect, once ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The secret holding its master password.
    pub secret: String,
    /// Restore requested to available, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_seconds: Option<i64>,
    /// When it will be snapshotted and deleted.
    pub expires_at: String,
    /// The plan's checks, when they ran this run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckResult>,
}

/// The function's response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreReport {
    /// The invocation (Lambda request ID).
    pub run_id: String,
    /// `schedule`, `rds-event` or `manual`.
    pub trigger: String,
    /// What a restore request resolved to (a dry run returns only this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// Whether this was a dry run (nothing changed).
    #[serde(default)]
    pub dry_run: bool,
    /// Every restore this run touched.
    pub restores: Vec<RestoreProgress>,
    /// Outcomes that matter to operators.
    pub results: Vec<ItemOutcome>,
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
pub struct RestoreFunction {
    /// Policy, ledger, alert topic, clock.
    pub services: Services,
    /// RDS in the primary region (the source databases' region).
    pub primary: Rds,
    /// RDS in each DR region.
    pub dr_regions: Vec<Rds>,
    /// Where the restored databases' credentials live.
    pub secrets: Secrets,
    /// How the plan's checks connect.
    pub checks: CheckSettings,
}

/// One run in progress.
struct Run<'a> {
    report: RestoreReport,
    ledger: RunLedger<'a>,
    /// Whether the run's intents were written: nothing is deleted otherwise.
    deletions_on_record: bool,
}

/// What the invocation asks.
enum Ask {
    /// Advance the restores in progress.
    Advance(&'static str),
    /// Start (or plan) a restore, then advance.
    Start(Box<RestoreRequest>),
    /// Extend a restore's life, then advance.
    Keep(Box<RestoreRequest>),
}

impl RestoreFunction {
    /// Handle one invocation.
    pub async fn handle(
        &self,
        payload: Value,
        context: &Context,
    ) -> Result<RestoreReport, HandlerError> {
        let ask = Self::ask_of(payload)?;
        let trigger = match &ask {
            Ask::Advance(trigger) => trigger,
            Ask::Start(_) | Ask::Keep(_) => "manual",
        };
        let now = self.services.clock.now();
        let mut run = Run {
            report: RestoreReport {
                run_id: context.request_id.clone(),
                trigger: trigger.to_string(),
                plan: None,
                dry_run: false,
                restores: Vec::new(),
                results: Vec::new(),
                counts: Counts::default(),
                run_errors: Vec::new(),
                notification: None,
            },
            ledger: self
                .services
                .run_ledger(FUNCTION, &context.request_id, trigger),
            deletions_on_record: false,
        };

        // A request is checked, in full, before anything changes.
        match &ask {
            Ask::Start(request) => {
                let (plan, database) = self.resolve(request, now).await?;
                if request.plan {
                    run.report.plan = Some(plan);
                    run.report.dry_run = true;
                    return Ok(run.report);
                }
                if let Err(e) = self.start(request, &plan, &database, now, &mut run).await {
                    // The request is on record (as failed) even though nothing was made.
                    if let Err(ledger) = run.ledger.finish().await {
                        warn!(error = %ledger, "failed restore request not recorded");
                    }
                    return Err(e);
                }
                run.report.plan = Some(plan);
            }
            Ask::Keep(request) => self.keep(request, now, &mut run).await?,
            Ask::Advance(_) => {}
        }

        // Every restore of this deployment, in every region.
        let mut restorations: Vec<(&Rds, Restoration)> = Vec::new();
        for rds in self.regions() {
            match rds.list_databases().await {
                Ok(databases) => restorations.extend(
                    restorations_in(&databases, &self.services.deployment)
                        .into_iter()
                        .filter(|r| r.purpose == Purpose::Restore)
                        .map(|r| (rds, r)),
                ),
                Err(e) => run
                    .report
                    .run_errors
                    .push(format!("{e}: restores in {} not advanced", rds.region())),
            }
        }

        // The restores this run deletes, on record before anything is deleted.
        let intents: Vec<LedgerRecord> = restorations
            .iter()
            .filter(|(_, r)| {
                matches!(
                    restore::next_step(r, now),
                    Step::CleanUp | Step::AwaitFinalSnapshot | Step::RecordFailedRestore
                )
            })
            .map(|(rds, r)| {
                self.record(
                    "delete-restore",
                    LedgerPhase::Intent,
                    (rds.region(), r),
                    now,
                    None,
                    serde_json::json!({ "kind": r.resource.kind, "final_snapshot": r.final_snapshot }),
                )
            })
            .collect();
        match run.ledger.intend(intents).await {
            Ok(()) => run.deletions_on_record = true,
            Err(e) => run.report.run_errors.push(format!(
                "{e}: no restored database is deleted this run (the next run retries)"
            )),
        }

        for (rds, restoration) in &restorations {
            let progress = self.advance(rds, restoration, now, &mut run).await;
            run.report.restores.push(progress);
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
        // The run summary (when something failed) goes after any "ready" or expiry message of this run.
        if let Some(id) = self
            .services
            .summarize(outcome, &mut report.run_errors)
            .await
        {
            report.notification = Some(id);
        }
        info!(counts = ?report.counts, restores = report.restores.len(), "restore run finished");
        Ok(report)
    }

    fn ask_of(payload: Value) -> Result<Ask, HandlerError> {
        match input::classify(payload)? {
            Incoming::Event(event) if event.detail_type == input::SCHEDULED_EVENT => {
                Ok(Ask::Advance("schedule"))
            }
            Incoming::Event(event) if RESTORE_EVENT_TYPES.contains(&event.detail_type.as_str()) => {
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
                Ok(Ask::Advance("rds-event"))
            }
            Incoming::Event(event) => Err(HandlerError::InvalidInput(format!(
                "the restore function handles EventBridge `{}`, `{}` and `{}` events, not `{}` (from {})",
                input::SCHEDULED_EVENT,
                RESTORE_EVENT_TYPES[0],
                RESTORE_EVENT_TYPES[1],
                event.detail_type,
                event.source
            ))),
            Incoming::Manual { action, payload } if action == ACTION => {
                let request: RestoreRequest = input::parse_request(payload)?;
                let invalid = |why: &str| Err(HandlerError::InvalidInput(why.into()));
                match (&request.database, &request.target, request.keep) {
                    (Some(_), _, true) => invalid(
                        "`keep` extends an existing restore: give its `target`, not a `database`",
                    ),
                    (None, Some(_), true) => Ok(Ask::Keep(Box::new(request))),
                    (None, None, true) => invalid("`keep` needs the `target` restore to keep"),
                    (Some(_), _, false) => {
                        if !request.plan
                            && request
                                .reason
                                .as_deref()
                                .is_none_or(|r| r.trim().is_empty())
                        {
                            return invalid(
                                "a restore needs a `reason` (for example the incident): it is tagged on the new \
                                 database and recorded",
                            );
                        }
                        if !request.plan
                            && request
                                .requested_by
                                .as_deref()
                                .is_none_or(|r| r.trim().is_empty())
                        {
                            return invalid(
                                "a restore needs `requested_by` (who asks; the lifeboat CLI sends your identity \
                                 from STS)",
                            );
                        }
                        Ok(Ask::Start(Box::new(request)))
                    }
                    (None, _, false)
                        if request.snapshot.is_some()
                            || request.point_in_time.is_some()
                            || request.target.is_some()
                            || request.region.is_some()
                            || request.plan =>
                    {
                        invalid("name the `database` to restore")
                    }
                    (None, _, false) => Ok(Ask::Advance("manual")),
                }
            }
            Incoming::Manual { action, .. } => Err(input::unknown_action(&action, &[ACTION])),
        }
    }

    fn regions(&self) -> impl Iterator<Item = &Rds> {
        std::iter::once(&self.primary).chain(&self.dr_regions)
    }

    fn rds_in(&self, region: &str) -> Option<&Rds> {
        self.regions().find(|rds| rds.region() == region)
    }

    fn engine<'a>(&'a self, rds: &'a Rds) -> RestoreEngine<'a> {
        RestoreEngine {
            rds,
            secrets: &self.secrets,
            deployment: &self.services.deployment,
        }
    }

    /// Resolve a restore request into a plan, or reject it saying what is possible.
    async fn resolve(
        &self,
        request: &RestoreRequest,
        now: DateTime<Utc>,
    ) -> Result<(Plan, Database), HandlerError> {
        let invalid = HandlerError::InvalidInput;
        let name = request.database.as_deref().unwrap_or_default();
        let databases = self.primary.list_databases().await?;
        let database = databases
            .iter()
            .find(|db| db.identifier == name && db.cluster.is_none() && !restore::is_restored(db))
            .cloned()
            .ok_or_else(|| {
                invalid(format!(
                    "no DB instance or cluster named `{name}` in {} (the primary region)",
                    self.primary.region()
                ))
            })?;
        let region = request
            .region
            .clone()
            .unwrap_or_else(|| self.primary.region().to_string());
        let rds = self.rds_in(&region).ok_or_else(|| {
            invalid(format!(
                "region `{region}` is neither the primary region ({}) nor a DR region of this deployment ({})",
                self.primary.region(),
                match self.dr_regions.len() {
                    0 => "none".to_string(),
                    _ => self
                        .dr_regions
                        .iter()
                        .map(Rds::region)
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            ))
        })?;
        let primary = region == self.primary.region();
        let expires_in = match request.expires_in.as_deref() {
            None => adhoc::DEFAULT_EXPIRES_IN,
            Some(text) => humantime::parse_duration(text).map_err(|e| {
                invalid(format!(
                    "expires_in `{text}` is not a duration such as 48h or 3d: {e}"
                ))
            })?,
        };
        let source = self
            .primary
            .source_settings(database.kind, &database.identifier)
            .await?;
        let (window, replicated_backup) = if primary {
            let window = source.latest_restorable.map(|latest| Window {
                earliest: source.earliest_restorable,
                latest,
            });
            (window, None)
        } else if database.kind == DatabaseKind::Instance {
            match rds.replicated_backup_of(&database.arn).await? {
                Some((arn, earliest, Some(latest))) => {
                    (Some(Window { earliest, latest }), Some(arn))
                }
                _ => (None, None),
            }
        } else {
            (None, None)
        };
        let snapshots = rds.list_snapshots().await?;
        let existing: Vec<String> = if primary {
            databases.iter().map(|db| db.identifier.clone()).collect()
        } else {
            rds.list_databases()
                .await?
                .into_iter()
                .map(|db| db.identifier)
                .collect()
        };
        // The source's groups where they exist in the target region (in its own region they do). RDS's default
        // groups (`default.postgres16`, `default:postgres-16`) are left to RDS, which picks the defaults of the
        // recovery point's engine version: the source's may be of another major version by now.
        let parameter_group = match source
            .parameter_group
            .as_ref()
            .filter(|g| !g.starts_with("default."))
        {
            Some(group) if primary || rds.parameter_group_exists(database.kind, group).await? => {
                Some(group.clone())
            }
            _ => None,
        };
        let option_group = match source
            .option_group
            .as_ref()
            .filter(|g| !g.starts_with("default:"))
        {
            Some(group) if primary || rds.option_group_exists(group).await? => Some(group.clone()),
            _ => None,
        };
        let parsed = Request {
            database: database.identifier.clone(),
            region: Some(region.clone()),
            snapshot: request.snapshot.clone(),
            point_in_time: request.point_in_time,
            target: request.target.clone(),
            expires_in,
        };
        let plan = adhoc::plan(&adhoc::Inputs {
            request: &parsed,
            policy: &self.services.policy,
            deployment: &self.services.deployment,
            database: &database,
            region: &region,
            primary,
            snapshots: &snapshots,
            window,
            replicated_backup_arn: replicated_backup.as_deref(),
            existing: &existing,
            instance_class: source.instance_class.as_deref(),
            parameter_group: parameter_group.as_deref(),
            option_group: option_group.as_deref(),
            now,
        })
        .map_err(invalid)?;
        Ok((plan, database))
    }

    /// Request the restore `plan` resolved; a refusal by RDS is an error naming it (nothing was made).
    async fn start(
        &self,
        request: &RestoreRequest,
        plan: &Plan,
        database: &Database,
        now: DateTime<Utc>,
        run: &mut Run<'_>,
    ) -> Result<(), HandlerError> {
        let Some(rds) = self.rds_in(&plan.region) else {
            return Err(HandlerError::InvalidInput(format!(
                "no RDS client for {}",
                plan.region
            )));
        };
        let reason = request.reason.clone().unwrap_or_default();
        let requested_by = request.requested_by.clone().unwrap_or_default();
        let tags = adhoc::restore_tags(
            plan,
            &self.services.policy,
            &self.services.deployment,
            &reason,
            &requested_by,
            now,
        );
        let source = match &plan.source {
            Source::Snapshot { identifier, .. } => RestoreSource::Snapshot(identifier),
            Source::PointInTime { time } => RestoreSource::PointInTime {
                database: &database.identifier,
                time: Some(*time),
            },
            Source::ReplicatedBackup { arn, time } => RestoreSource::ReplicatedBackup {
                arn,
                time: Some(*time),
            },
        };
        let spec = RestoreSpec {
            id: &plan.target,
            marker: tags::RESTORE,
            kind: plan.kind,
            source,
            engine: &database.engine,
            instance_class: &plan.instance_class,
            subnet_group: &plan.subnet_group,
            security_groups: &plan.security_groups,
            parameter_group: plan.parameter_group.as_deref(),
            option_group: plan.option_group.as_deref(),
            tags: &tags,
        };
        let result = self.engine(rds).start(&spec).await;
        run.ledger.record(LedgerRecord {
            schema: RECORD_SCHEMA,
            time: now,
            function: FUNCTION.into(),
            run_id: String::new(),
            trigger: String::new(),
            action: "start-restore".into(),
            phase: LedgerPhase::Result,
            region: plan.region.clone(),
            database: plan.database.clone(),
            resource: plan.target.clone(),
            reason: format!("ad-hoc restore: {reason} (requested by {requested_by})"),
            outcome: Some(if result.is_ok() { "ok" } else { "failed" }.into()),
            error: result.as_ref().err().map(ToString::to_string),
            details: serde_json::json!({ "plan": plan, "requested_by": requested_by, "reason": reason }),
        });
        match result {
            Ok(()) => {
                info!(target = %plan.target, source = %plan.source.label(), "restore requested");
                run.report.results.push(ItemOutcome {
                    database: plan.database.clone(),
                    kind: plan.kind,
                    region: plan.region.clone(),
                    action: "start-restore".into(),
                    status: ItemStatus::Done,
                    resource: Some(plan.target.clone()),
                    detail: Some(format!(
                        "restoring {} ({}) into {}; you get one message when it is ready{}",
                        plan.source.label(),
                        tag_time(plan.source.time()),
                        plan.target,
                        plan.expected_restore_seconds
                            .map(|s| format!(" (past drills took up to {} min)", (s + 59) / 60))
                            .unwrap_or_default()
                    )),
                    next_step: None,
                });
                Ok(())
            }
            Err(e) if is_refusal(&e) => Err(HandlerError::InvalidInput(format!(
                "RDS refused the restore of {} into {}: {e} ({}); nothing was made",
                plan.source.label(),
                plan.target,
                e.next_step()
            ))),
            Err(e) => Err(HandlerError::Aws(e)),
        }
    }

    /// Extend the life of an ad-hoc restore of this deployment by `expires_in` from now.
    async fn keep(
        &self,
        request: &RestoreRequest,
        now: DateTime<Utc>,
        run: &mut Run<'_>,
    ) -> Result<(), HandlerError> {
        let target = request.target.as_deref().unwrap_or_default();
        let expires_in = match request.expires_in.as_deref() {
            None => adhoc::DEFAULT_EXPIRES_IN,
            Some(text) => humantime::parse_duration(text).map_err(|e| {
                HandlerError::InvalidInput(format!(
                    "expires_in `{text}` is not a duration such as 48h or 3d: {e}"
                ))
            })?,
        };
        if expires_in.is_zero() || expires_in > adhoc::MAX_EXPIRES_IN {
            return Err(HandlerError::InvalidInput(format!(
                "expires_in must be between 1 second and {} days; keep again later for longer",
                adhoc::MAX_EXPIRES_IN.as_secs() / 86_400
            )));
        }
        for rds in self.regions() {
            let databases = rds.list_databases().await?;
            let Some(found) = restorations_in(&databases, &self.services.deployment)
                .into_iter()
                .find(|r| r.purpose == Purpose::Restore && r.id == target)
            else {
                continue;
            };
            if matches!(found.phase, Phase::Retiring | Phase::CleaningUp) {
                return Err(HandlerError::InvalidInput(format!(
                    "restore `{target}` expired and is being deleted; its data is kept in the final snapshot {} \
                     (restore it with `aws rds restore-db-instance-from-db-snapshot` if you still need it)",
                    found.final_snapshot.as_deref().unwrap_or("being taken")
                )));
            }
            let expires_at = now + chrono::Duration::from_std(expires_in).unwrap_or_default();
            let notified: Vec<&str> = found
                .notified
                .iter()
                .map(String::as_str)
                .filter(|n| *n != EXPIRY)
                .collect();
            self.engine(rds)
                .tag(
                    &found,
                    &[
                        (tags::EXPIRES_AT.to_string(), tag_time(expires_at)),
                        (tags::RESTORE_NOTIFIED.to_string(), notified.join("+")),
                    ],
                )
                .await?;
            let requested_by = request.requested_by.clone().unwrap_or_default();
            run.ledger.record(self.record(
                "keep-restore",
                LedgerPhase::Result,
                (rds.region(), &found),
                now,
                None,
                serde_json::json!({
                    "expires_at": tag_time(expires_at),
                    "was": tag_time(found.expires_at),
                    "requested_by": requested_by,
                }),
            ));
            run.report.results.push(ItemOutcome {
                database: found.database.clone(),
                kind: found.resource.kind,
                region: rds.region().into(),
                action: "keep-restore".into(),
                status: ItemStatus::Done,
                resource: Some(target.to_string()),
                detail: Some(format!(
                    "kept until {} (was {})",
                    tag_time(expires_at),
                    tag_time(found.expires_at)
                )),
                next_step: None,
            });
            return Ok(());
        }
        Err(HandlerError::InvalidInput(format!(
            "no ad-hoc restore `{target}` of this deployment in {}",
            self.regions()
                .map(Rds::region)
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    /// Advance one restore by one step.
    async fn advance(
        &self,
        rds: &Rds,
        restoration: &Restoration,
        now: DateTime<Utc>,
        run: &mut Run<'_>,
    ) -> RestoreProgress {
        let mut progress = RestoreProgress {
            target: restoration.id.clone(),
            database: restoration.database.clone(),
            region: rds.region().into(),
            recovery_point: restoration.snapshot.clone(),
            data_time: tag_time(restoration.snapshot_time),
            step: restoration.phase.as_str().into(),
            endpoint: restoration
                .resource
                .endpoint
                .as_ref()
                .map(|e| format!("{}:{}", e.host, e.port)),
            secret: Purpose::Restore.secret_name(&restoration.id),
            restore_seconds: restoration
                .available_at
                .map(|_| restoration.restore_seconds(now)),
            expires_at: tag_time(restoration.expires_at),
            checks: Vec::new(),
        };
        let engine = self.engine(rds);
        let outcome: Result<(), AwsError> = match restore::next_step(restoration, now) {
            Step::Wait if restoration.resource.status == INSTANCE_MISSING => {
                let class = self
                    .verification_of(restoration)
                    .map(|v| v.cluster_instance_class.clone())
                    .unwrap_or_else(|| lifeboat::policy::DEFAULT_CLUSTER_INSTANCE_CLASS.into());
                progress.step = "instance-requested".into();
                engine.create_member(restoration, &class).await
            }
            // Ready, then impaired (a key disabled for a while, a network change): kept, said once.
            Step::Wait
                if restore::is_failed_status(&restoration.resource.status)
                    && !restoration.was_notified(IMPAIRED) =>
            {
                run.report.results.push(self.outcome(
                    restoration,
                    rds.region(),
                    "restore",
                    ItemStatus::Failed,
                    format!(
                        "{} is `{}`: kept (it may hold data written since it was ready)",
                        restoration.id, restoration.resource.status
                    ),
                    Some(
                        "check its RDS events (encryption key, network, parameters); `lifeboat keep` extends it \
                         while you fix it"
                            .into(),
                    ),
                ));
                mark_notified(&engine, restoration, IMPAIRED).await
            }
            Step::Wait => Ok(()),
            Step::SecureCredentials => {
                progress.step = "credentials-set".into();
                progress.restore_seconds = Some(restoration.restore_seconds(now));
                engine.secure(restoration, now).await
            }
            Step::RunChecks => match engine.credentials_pending(restoration).await {
                Ok(Some(why)) => {
                    progress.step = format!("securing: {why}");
                    Ok(())
                }
                Ok(None) => {
                    self.ready(&engine, restoration, now, &mut progress, run)
                        .await
                }
                Err(e) => Err(e),
            },
            Step::AnnounceExpiry => {
                self.announce_expiry(&engine, restoration, &mut progress, run)
                    .await
            }
            Step::Retire => {
                self.retire(&engine, restoration, now, &mut progress, run)
                    .await
            }
            Step::AwaitFinalSnapshot => match engine.final_snapshot(restoration).await {
                Ok(Some(snapshot)) if snapshot.is_available() => {
                    self.clean_up(&engine, restoration, now, &mut progress, run)
                        .await
                }
                Ok(Some(snapshot))
                    if matches!(snapshot.status.as_str(), "creating" | "pending") =>
                {
                    progress.step =
                        format!("final snapshot {} {}", snapshot.identifier, snapshot.status);
                    Ok(())
                }
                Ok(found) => {
                    // Failed or gone: the database is kept (its data is not in a snapshot); said once.
                    progress.step = "final-snapshot-failed".into();
                    let status = found.map_or("missing".to_string(), |s| s.status.to_string());
                    if !restoration.was_notified(FINAL_SNAPSHOT_FAILED) {
                        run.report.results.push(self.outcome(
                            restoration,
                            rds.region(),
                            "retire-restore",
                            ItemStatus::Failed,
                            format!(
                                "final snapshot of {} is {status}: the database is kept, not deleted",
                                restoration.id
                            ),
                            Some(format!(
                                "delete the failed snapshot {} and set lifeboat:restore-phase=ready on {} (the next \
                                 run takes the final snapshot again), or keep the restore",
                                adhoc_final(restoration),
                                restoration.id
                            )),
                        ));
                        mark_notified(&engine, restoration, FINAL_SNAPSHOT_FAILED).await
                    } else {
                        Ok(())
                    }
                }
                Err(e) => Err(e),
            },
            Step::CleanUp => {
                self.clean_up(&engine, restoration, now, &mut progress, run)
                    .await
            }
            Step::RecordFailedRestore => {
                let mut told = Ok(());
                if !restoration.was_notified(FAILED) {
                    run.report.results.push(self.outcome(
                        restoration,
                        rds.region(),
                        "restore",
                        ItemStatus::Failed,
                        format!(
                            "restore of {} into {} ended in status `{}`: nothing usable was made",
                            restoration.snapshot, restoration.id, restoration.resource.status
                        ),
                        Some(
                            "check the RDS events of the restored database (parameter and option groups, \
                             network, encryption key), then restore again under another target name"
                                .into(),
                        ),
                    ));
                    // Told once: a run that cannot delete it (its intents unrecorded, a call failed) leaves it for
                    // the next run, which must not tell again.
                    told = mark_notified(&engine, restoration, FAILED).await;
                }
                progress.step = "failed".into();
                let cleaned = self
                    .clean_up(&engine, restoration, now, &mut progress, run)
                    .await;
                told.and(cleaned)
            }
        };
        if let Err(e) = outcome {
            warn!(restore = %restoration.id, error = %e, "restore step failed");
            run.report.results.push(self.outcome(
                restoration,
                rds.region(),
                "restore",
                ItemStatus::Failed,
                e.to_string(),
                Some(e.next_step()),
            ));
        }
        progress
    }

    fn verification_of(
        &self,
        restoration: &Restoration,
    ) -> Option<&lifeboat::policy::Verification> {
        restoration
            .plan
            .as_deref()
            .and_then(|name| self.services.policy.plan_named(name))
            .and_then(|plan| plan.verification.as_ref())
    }

    /// Credentials are in effect: run the plan's checks (when it has any), then tell the operator once.
    async fn ready(
        &self,
        engine: &RestoreEngine<'_>,
        restoration: &Restoration,
        now: DateTime<Utc>,
        progress: &mut RestoreProgress,
        run: &mut Run<'_>,
    ) -> Result<(), AwsError> {
        let Some(password) = engine.password(restoration).await? else {
            // The credentials are gone (someone deleted the secret): set them again.
            progress.step = "credentials-set".into();
            return engine.secure(restoration, now).await;
        };
        let verification = self.verification_of(restoration);
        let policy_checks = verification.map(|v| v.checks.clone()).unwrap_or_default();
        let mut checks_line = String::from("no checks in the plan");
        if !policy_checks.is_empty() {
            let (results, _) = engine
                .run_checks(
                    restoration,
                    password,
                    &policy_checks,
                    verification.and_then(|v| v.database_name.clone()),
                    &self.checks,
                )
                .await;
            let passed = results.iter().all(|r| r.passed);
            if !passed && failure_class(&results) == FailureClass::Infrastructure {
                if let InfrastructureRetry::Retry { attempt, of } =
                    restore::after_infrastructure_failure(restoration)
                {
                    progress.step =
                        format!("checks could not connect (attempt {attempt} of {of}; retried)");
                    progress.checks = results;
                    return engine
                        .tag(
                            restoration,
                            &[(
                                Purpose::Restore.keys().attempts.to_string(),
                                attempt.to_string(),
                            )],
                        )
                        .await;
                }
                checks_line = format!(
                    "the checks could not connect ({}); the database is announced anyway",
                    failures(&results)
                );
            } else if passed {
                checks_line = format!("{} check(s) passed", results.len());
            } else {
                checks_line = format!("CHECKS FAILED: {}", failures(&results));
            }
            progress.checks = results;
        }
        let restore_seconds = restoration.restore_seconds(now);
        let endpoint = progress
            .endpoint
            .clone()
            .unwrap_or_else(|| "(no endpoint reported yet)".into());
        let subject = format!(
            "Lifeboat restore ready: {} ({} as of {})",
            restoration.id,
            restoration.database,
            tag_time(restoration.snapshot_time)
        );
        let body = format!(
            "The ad-hoc restore {id} of {db} is available.\n\n\
             Endpoint: {endpoint}\n\
             User: {user}\n\
             Password: in Secrets Manager, secret {secret} (aws secretsmanager get-secret-value --secret-id {secret} \
             --region {home})\n\
             Recovery point: {point} (data as of {time})\n\
             Region: {region}\n\
             Restore time: {minutes} min ({restore_seconds} s, requested to available)\n\
             Checks: {checks_line}\n\
             Expires: {expires}: a final snapshot is taken, then the database is deleted. Keep it longer with \
             `lifeboat keep {id} --expires-in 48h`.\n",
            id = restoration.id,
            db = restoration.database,
            user = restoration
                .resource
                .master_username
                .as_deref()
                .unwrap_or("(the source's master user)"),
            secret = Purpose::Restore.secret_name(&restoration.id),
            home = self.services.deployment.home_region,
            point = restoration.snapshot,
            time = tag_time(restoration.snapshot_time),
            region = restoration.resource.region,
            minutes = (restore_seconds + 59) / 60,
            expires = tag_time(restoration.expires_at),
        );
        // Announced before the phase moves on: a lost tag repeats the message, never loses it.
        if !restoration.was_notified(READY) && !self.announce(&subject, &body, run).await {
            return Ok(());
        }
        run.ledger.record(self.record(
            "restore-ready",
            LedgerPhase::Result,
            (&restoration.resource.region, restoration),
            now,
            None,
            serde_json::json!({
                "restore_seconds": restore_seconds,
                "checks": progress.checks,
                "recovery_point": restoration.snapshot_arn,
            }),
        ));
        progress.step = "ready".into();
        progress.restore_seconds = Some(restore_seconds);
        run.report.results.push(self.outcome(
            restoration,
            &restoration.resource.region,
            "restore",
            ItemStatus::Done,
            format!(
                "{} ready at {endpoint} after {} min; credentials in secret {}; {checks_line}",
                restoration.id,
                (restore_seconds + 59) / 60,
                Purpose::Restore.secret_name(&restoration.id)
            ),
            None,
        ));
        engine
            .set_phase(
                restoration,
                Phase::Ready,
                &[(
                    tags::RESTORE_NOTIFIED.to_string(),
                    restoration.notified_with(READY),
                )],
            )
            .await
    }

    /// A day before expiry: tell the operator once.
    async fn announce_expiry(
        &self,
        engine: &RestoreEngine<'_>,
        restoration: &Restoration,
        progress: &mut RestoreProgress,
        run: &mut Run<'_>,
    ) -> Result<(), AwsError> {
        let subject = format!(
            "Lifeboat restore {} expires {}",
            restoration.id,
            tag_time(restoration.expires_at)
        );
        let body = format!(
            "The ad-hoc restore {id} of {db} expires at {expires}: a final snapshot ({snapshot}) is taken, then the \
             database is deleted.\nTo keep it: lifeboat keep {id} --expires-in 48h\n",
            id = restoration.id,
            db = restoration.database,
            expires = tag_time(restoration.expires_at),
            snapshot = adhoc_final(restoration),
        );
        if !self.announce(&subject, &body, run).await {
            return Ok(());
        }
        progress.step = "expiry-announced".into();
        mark_notified(engine, restoration, EXPIRY).await
    }

    /// Expired: take the final snapshot (managed, kept as a manual snapshot), then it is deleted once available.
    async fn retire(
        &self,
        engine: &RestoreEngine<'_>,
        restoration: &Restoration,
        now: DateTime<Utc>,
        progress: &mut RestoreProgress,
        run: &mut Run<'_>,
    ) -> Result<(), AwsError> {
        let retain =
            chrono::Duration::days(i64::from(self.services.policy.manual_snapshots.retain_days));
        let [deployment_tag, home_region_tag] = self.services.deployment.tags();
        let reason = restoration
            .resource
            .tags
            .get(tags::REASON)
            .map(str::to_owned)
            .unwrap_or_default();
        let snapshot_tags = vec![
            (tags::MANAGED.to_string(), tags::TRUE.to_string()),
            deployment_tag,
            home_region_tag,
            (tags::POLICY.to_string(), self.services.policy.name.clone()),
            (tags::SOURCE.to_string(), restoration.id.clone()),
            (tags::TIER.to_string(), tags::MANUAL_TIER.to_string()),
            (
                tags::TRIGGER.to_string(),
                tags::RESTORE_EXPIRY_TRIGGER.to_string(),
            ),
            (tags::CREATED_AT.to_string(), tag_time(now)),
            (tags::EXPIRES_AT.to_string(), tag_time(now + retain)),
            (
                tags::REASON.to_string(),
                adhoc::tag_value(&format!(
                    "final snapshot of restore {} of {}: {reason}",
                    restoration.id, restoration.database
                )),
            ),
        ];
        let result = engine.retire(restoration, &snapshot_tags).await;
        run.ledger.record(self.record(
            "final-snapshot",
            LedgerPhase::Result,
            (&restoration.resource.region, restoration),
            now,
            result.as_ref().err().map(ToString::to_string),
            serde_json::json!({ "snapshot": adhoc_final(restoration), "kept_until": tag_time(now + retain) }),
        ));
        let snapshot = match result {
            Ok(snapshot) => snapshot,
            // The name is taken by a snapshot that is not this restore's: never deleted without its own, said once.
            Err(e @ CreateSnapshotError::AlreadyExists(_)) => {
                progress.step = "final-snapshot-name-taken".into();
                if restoration.was_notified(FINAL_SNAPSHOT_FAILED) {
                    return Ok(());
                }
                run.report.results.push(self.outcome(
                    restoration,
                    &restoration.resource.region,
                    "retire-restore",
                    ItemStatus::Failed,
                    format!(
                        "final snapshot of {} not taken: {e}, and it is not this restore's; the database is kept",
                        restoration.id
                    ),
                    Some(format!(
                        "rename or delete the snapshot {} (it was not taken of this restore), then set \
                         lifeboat:restore-notified back to `{READY}` on {}; or keep the restore",
                        adhoc_final(restoration),
                        restoration.id
                    )),
                ));
                return mark_notified(engine, restoration, FINAL_SNAPSHOT_FAILED).await;
            }
            Err(e) => {
                progress.step = "final-snapshot-not-started".into();
                run.report.results.push(self.outcome(
                    restoration,
                    &restoration.resource.region,
                    "retire-restore",
                    ItemStatus::Waiting,
                    format!("final snapshot of {} not started: {e}", restoration.id),
                    Some("the next run tries again; the database is not deleted without it".into()),
                ));
                return Ok(());
            }
        };
        progress.step = format!("final snapshot {snapshot} requested");
        // Told once: the phase has moved on, so the next runs only wait for the snapshot, then delete.
        let subject = format!("Lifeboat restore {} expired", restoration.id);
        let body = format!(
            "The ad-hoc restore {id} of {db} expired at {expires}. Its final snapshot {snapshot} is being taken \
             (kept {days} days); the database is deleted once the snapshot is available.\n",
            id = restoration.id,
            db = restoration.database,
            expires = tag_time(restoration.expires_at),
            days = self.services.policy.manual_snapshots.retain_days,
        );
        self.announce(&subject, &body, run).await;
        run.report.results.push(self.outcome(
            restoration,
            &restoration.resource.region,
            "retire-restore",
            ItemStatus::Done,
            format!(
                "{} expired: final snapshot {snapshot} (kept {} days), then the database is deleted",
                restoration.id, self.services.policy.manual_snapshots.retain_days
            ),
            None,
        ));
        Ok(())
    }

    /// Delete the restore's credentials, then the database, between ledger records.
    async fn clean_up(
        &self,
        engine: &RestoreEngine<'_>,
        restoration: &Restoration,
        now: DateTime<Utc>,
        progress: &mut RestoreProgress,
        run: &mut Run<'_>,
    ) -> Result<(), AwsError> {
        if !run.deletions_on_record {
            return Ok(());
        }
        if restoration.phase != Phase::CleaningUp {
            engine
                .set_phase(restoration, Phase::CleaningUp, &[])
                .await?;
        }
        let result = engine.clean_up(restoration).await;
        run.ledger.record(self.record(
            "delete-restore",
            LedgerPhase::Result,
            (&restoration.resource.region, restoration),
            now,
            result.as_ref().err().map(ToString::to_string),
            serde_json::json!({ "kind": restoration.resource.kind, "gone": result.as_ref().ok() }),
        ));
        let gone = result?;
        progress.step = if gone { "deleted" } else { "deleting" }.into();
        if restoration.phase != Phase::CleaningUp && restoration.final_snapshot.is_some() {
            run.report.results.push(self.outcome(
                restoration,
                &restoration.resource.region,
                "delete-restore",
                ItemStatus::Done,
                format!(
                    "{} deleted after its final snapshot {}",
                    restoration.id,
                    adhoc_final(restoration)
                ),
                None,
            ));
        }
        Ok(())
    }

    /// Publish one message to the operator; a failure is a run error naming it (the caller's next run tries
    /// again). Returns whether it went out.
    async fn announce(&self, subject: &str, body: &str, run: &mut Run<'_>) -> bool {
        match self.services.notifier.publish_text(subject, body).await {
            Ok(id) => {
                run.report.notification = Some(id);
                true
            }
            Err(e) => {
                run.report
                    .run_errors
                    .push(format!("{e}: \"{subject}\" not announced"));
                false
            }
        }
    }

    /// `RestoreSeconds` (requested to available) of each restore announced ready this run: the measured RTO of
    /// restores from each database's recovery points, next to the drills' own.
    fn emit_metrics(&self, report: &RestoreReport, now: DateTime<Utc>) {
        let mut metrics = Metrics::new(FUNCTION, &self.services.deployment.name, now);
        for restore in report.restores.iter().filter(|r| r.step == "ready") {
            if let Some(seconds) = restore.restore_seconds {
                let dims = [
                    ("Database", restore.database.as_str()),
                    ("Region", restore.region.as_str()),
                ];
                metrics.put(&dims, "RestoreSeconds", seconds as f64, Unit::Seconds);
            }
        }
        metrics.emit();
    }

    fn outcome(
        &self,
        restoration: &Restoration,
        region: &str,
        action: &str,
        status: ItemStatus,
        detail: String,
        next_step: Option<String>,
    ) -> ItemOutcome {
        ItemOutcome {
            database: restoration.database.clone(),
            kind: restoration.resource.kind,
            region: region.into(),
            action: action.into(),
            status,
            resource: Some(restoration.id.clone()),
            detail: Some(detail),
            next_step,
        }
    }

    fn record(
        &self,
        action: &str,
        phase: LedgerPhase,
        (region, restoration): (&str, &Restoration),
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
            database: restoration.database.clone(),
            resource: restoration.id.clone(),
            reason: format!(
                "ad-hoc restore: {}",
                restoration.resource.tags.get(tags::REASON).unwrap_or("")
            ),
            outcome: Some(if error.is_some() { "failed" } else { "ok" }.into())
                .filter(|_| phase == LedgerPhase::Result),
            error,
            details,
        }
    }
}

/// Record on `restoration` that `announcement` was made (so no later run makes it again).
async fn mark_notified(
    engine: &RestoreEngine<'_>,
    restoration: &Restoration,
    announcement: &str,
) -> Result<(), AwsError> {
    engine
        .tag(
            restoration,
            &[(
                tags::RESTORE_NOTIFIED.to_string(),
                restoration.notified_with(announcement),
            )],
        )
        .await
}

/// The final snapshot of `restoration` (requested, or the one it will get).
fn adhoc_final(restoration: &Restoration) -> String {
    restoration.final_snapshot.clone().unwrap_or_else(|| {
        restore::engine::final_snapshot_identifier(&restoration.id, restoration.started_at)
    })
}
