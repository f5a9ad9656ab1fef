//! The snapshot function: on the daily schedule, snapshots every DB instance and Aurora cluster the policy
//! selects; on a manual request, snapshots the named databases (for example before a deployment) with their own
//! retention.
//!
//! It is an idempotent reconciler: snapshot identifiers are deterministic (the scheduled time, or the request's
//! idempotency key), so a retried or duplicated invocation finds "already exists" and counts it as done, once it
//! has read that the existing snapshot is this deployment's own (another deployment selecting the same database
//! is a conflict, reported, never counted as a recovery point). Cost per
//! run: one describe call per 100 databases plus one create call per database, whatever the number of snapshots.

use futures::stream::{self, StreamExt};
use lambda_runtime::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use lifeboat::aws::AwsError;
use lifeboat::aws::rds::{CreateSnapshotError, Rds};
use lifeboat::input::{self, Incoming};
use lifeboat::lambda::HandlerError;
use lifeboat::ledger::{LedgerRecord, Phase, RECORD_SCHEMA};
use lifeboat::metrics::{Metrics, Unit};
use lifeboat::ownership::Owner;
use lifeboat::report::{Counts, ItemOutcome, ItemStatus};
use lifeboat::services::{RunOutcome, Services};
use lifeboat::snapshot::{self, ManualRequest, PlannedSnapshot, SnapshotTrigger, plan_snapshots};

/// Name of this function in ledger records, metrics and notifications.
pub const FUNCTION: &str = "snapshot";

/// The manual action this function performs.
pub const ACTION: &str = "snapshot";

/// EventBridge detail types of the RDS events that make a database available again (the template's rule narrows
/// them to backup finished and started: RDS-EVENT-0002, RDS-EVENT-0088, RDS-EVENT-0151): each starts a catch-up run.
pub const CATCH_UP_EVENT_TYPES: [&str; 2] = ["RDS DB Instance Event", "RDS DB Cluster Event"];

/// An operator's request, for example
/// `{"action":"snapshot","databases":["booking-db"],"reason":"pre-deploy v42","retain_days":90}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRequest {
    /// Always `snapshot`.
    pub action: String,
    /// DB instance or cluster identifiers; every database the policy selects when empty.
    #[serde(default)]
    pub databases: Vec<String>,
    /// Why the snapshot is taken (kept in tags and the ledger).
    #[serde(default)]
    pub reason: Option<String>,
    /// Days to keep the snapshots (the policy's `manual_snapshots.retain_days` when absent).
    #[serde(default)]
    pub retain_days: Option<u32>,
    /// Repeat a request with the same key and nothing is snapshotted twice (default: the Lambda request ID).
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// The function's response: what it did for each database.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotReport {
    /// The invocation (Lambda request ID).
    pub run_id: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// Region the snapshots are in.
    pub region: String,
    /// Policy in force.
    pub policy: String,
    /// Counts by outcome.
    pub counts: Counts,
    /// One entry per database.
    pub results: Vec<ItemOutcome>,
    /// Problems with the run itself (ledger or notification failures).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_errors: Vec<String>,
    /// Message ID of the SNS summary, when one was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<String>,
}

/// Everything the handler needs, built once per container.
pub struct SnapshotFunction {
    /// Policy, ledger, alert topic, clock.
    pub services: Services,
    /// RDS in the primary region.
    pub rds: Rds,
}

impl SnapshotFunction {
    /// Handle one invocation.
    pub async fn handle(
        &self,
        payload: Value,
        context: &Context,
    ) -> Result<SnapshotReport, HandlerError> {
        let run_id = context.request_id.clone();
        let trigger = self.trigger_of(payload, &run_id)?;
        let trigger_name = match trigger {
            SnapshotTrigger::Scheduled { .. } => "schedule",
            SnapshotTrigger::CatchUp { .. } => "rds-event",
            SnapshotTrigger::Manual(_) => "manual",
        };
        let region = self.rds.region().to_string();
        let databases = self.rds.list_databases().await?;
        // A scheduled run looks up only the due snapshots' identifiers (one call per 100), never the whole region.
        let existing = match &trigger {
            SnapshotTrigger::Scheduled { at } | SnapshotTrigger::CatchUp { at } => {
                let wanted = snapshot::due_identifiers(&self.services.policy, &databases, *at);
                if wanted.is_empty() {
                    Vec::new()
                } else {
                    self.rds.snapshots_named(&wanted).await?
                }
            }
            SnapshotTrigger::Manual(_) => Vec::new(),
        };
        let plan = plan_snapshots(
            &self.services.policy,
            &self.services.deployment,
            &databases,
            &trigger,
            &existing,
        )
        .map_err(|e| HandlerError::InvalidInput(e.to_string()))?;
        info!(
            run_id,
            trigger = trigger_name,
            listed = databases.len(),
            planned = plan.snapshots.len(),
            skipped = plan.skipped.len(),
            "snapshot plan ready"
        );

        let scheduled = !matches!(trigger, SnapshotTrigger::Manual(_));
        let reason = match &trigger {
            SnapshotTrigger::Scheduled { .. } | SnapshotTrigger::CatchUp { .. } => {
                format!(
                    "policy {} daily schedule (catch-up within the start window)",
                    self.services.policy.name
                )
            }
            SnapshotTrigger::Manual(request) => request.reason.clone(),
        };
        let attempts: Vec<(ItemOutcome, Option<LedgerRecord>)> = stream::iter(&plan.snapshots)
            .map(|planned| self.take(planned, &reason, scheduled))
            .buffered(self.services.concurrency)
            .collect()
            .await;

        let mut results = Vec::with_capacity(attempts.len() + plan.skipped.len());
        let mut run_errors = Vec::new();
        let mut ledger = self.services.run_ledger(FUNCTION, &run_id, trigger_name);
        for (outcome, record) in attempts {
            if let Some(record) = record {
                ledger.record(record);
            }
            results.push(outcome);
        }
        for problem in &plan.problems {
            let outcome = ItemOutcome {
                database: problem.database.identifier.clone(),
                kind: problem.database.kind,
                region: region.clone(),
                action: "scheduled-snapshot".into(),
                status: ItemStatus::Failed,
                resource: problem.snapshot.clone(),
                detail: Some(problem.reason.clone()),
                next_step: Some(problem.next_step.clone()),
            };
            ledger.record(LedgerRecord {
                schema: RECORD_SCHEMA,
                time: self.services.clock.now(),
                function: FUNCTION.into(),
                run_id: String::new(),
                trigger: String::new(),
                action: "scheduled-snapshot".into(),
                phase: Phase::Result,
                region: region.clone(),
                database: problem.database.identifier.clone(),
                resource: problem.snapshot.clone().unwrap_or_default(),
                reason: reason.clone(),
                outcome: Some("problem".into()),
                error: Some(problem.reason.clone()),
                details: serde_json::Value::Null,
            });
            results.push(outcome);
        }
        results.extend(plan.taken.iter().map(|(db, id)| ItemOutcome {
            database: db.identifier.clone(),
            kind: db.kind,
            region: region.clone(),
            action: "create-snapshot".into(),
            status: ItemStatus::Unchanged,
            resource: Some(id.clone()),
            detail: None,
            next_step: None,
        }));
        results.extend(plan.waiting.iter().map(|wait| ItemOutcome {
            database: wait.database.identifier.clone(),
            kind: wait.database.kind,
            region: region.clone(),
            action: "create-snapshot".into(),
            status: ItemStatus::Waiting,
            resource: None,
            detail: Some(wait.reason.clone()),
            next_step: None,
        }));
        if let Err(e) = ledger.finish().await {
            warn!(error = %e, "ledger write failed");
            run_errors.push(e.to_string());
        }
        results.extend(plan.skipped.iter().map(|skip| ItemOutcome {
            database: skip.database.identifier.clone(),
            kind: skip.database.kind,
            region: region.clone(),
            action: "create-snapshot".into(),
            status: ItemStatus::Skipped,
            resource: None,
            detail: Some(skip.reason.clone()),
            next_step: Some(
                "wait until the database is available; the next scheduled run retries (or invoke by hand)".into(),
            ),
        }));

        self.emit_metrics(&results, &region);
        let mut report = SnapshotReport {
            run_id,
            trigger: trigger_name.into(),
            region,
            policy: self.services.policy.name.clone(),
            counts: Counts::of(&results),
            results,
            run_errors,
            notification: None,
        };
        let run = RunOutcome {
            function: FUNCTION,
            region: &report.region,
            run_id: &report.run_id,
            trigger: &report.trigger,
            items: &report.results,
        };
        report.notification = self.services.summarize(run, &mut report.run_errors).await;
        info!(counts = ?report.counts, "snapshot run finished");
        Ok(report)
    }

    /// Read the trigger out of the payload; bad input is rejected before anything is listed or changed.
    fn trigger_of(&self, payload: Value, run_id: &str) -> Result<SnapshotTrigger, HandlerError> {
        match input::classify(payload)? {
            Incoming::Event(event) if event.detail_type == input::SCHEDULED_EVENT => {
                let at = event.time.ok_or_else(|| {
                    HandlerError::InvalidInput(
                        "scheduled event has no \"time\": cannot name the snapshots".into(),
                    )
                })?;
                Ok(SnapshotTrigger::Scheduled { at })
            }
            // A database available again (backup finished, started) catches up its owed snapshot at once.
            Incoming::Event(event)
                if CATCH_UP_EVENT_TYPES.contains(&event.detail_type.as_str()) =>
            {
                let at = event.time.unwrap_or_else(|| self.services.clock.now());
                Ok(SnapshotTrigger::CatchUp { at })
            }
            Incoming::Event(event) => Err(HandlerError::InvalidInput(format!(
                "the snapshot function handles EventBridge `{}`, `{}` and `{}` events, not `{}` (from {})",
                input::SCHEDULED_EVENT,
                CATCH_UP_EVENT_TYPES[0],
                CATCH_UP_EVENT_TYPES[1],
                event.detail_type,
                event.source
            ))),
            Incoming::Manual { action, payload } if action == ACTION => {
                let request: SnapshotRequest = input::parse_request(payload)?;
                let key = request
                    .idempotency_key
                    .unwrap_or_else(|| run_id.to_string());
                if key.trim().is_empty() {
                    return Err(HandlerError::InvalidInput(
                        "idempotency_key: must not be empty (omit it to use the request ID)".into(),
                    ));
                }
                Ok(SnapshotTrigger::Manual(ManualRequest {
                    databases: request.databases,
                    reason: request.reason.unwrap_or_else(|| "manual snapshot".into()),
                    retain_days: request.retain_days,
                    idempotency_key: key,
                    requested_at: self.services.clock.now(),
                }))
            }
            Incoming::Manual { action, .. } => Err(input::unknown_action(&action, &[ACTION])),
        }
    }

    /// Request one snapshot; `scheduled` runs leave what heals by itself (a busy database, throttling) to the next
    /// hourly run within the start window, as waiting, never alerted.
    async fn take(
        &self,
        planned: &PlannedSnapshot,
        reason: &str,
        scheduled: bool,
    ) -> (ItemOutcome, Option<LedgerRecord>) {
        let waits = |detail: String| {
            let status = if scheduled {
                ItemStatus::Waiting
            } else {
                ItemStatus::Skipped
            };
            let next_step = (!scheduled)
                .then(|| "wait until the database is available, then invoke again".to_string());
            (status, Some(detail), next_step, None)
        };
        let db = &planned.database;
        let result = self
            .rds
            .create_snapshot(db, &planned.snapshot_id, &planned.tags)
            .await;
        let (status, detail, next_step, ledger_outcome) = match &result {
            Ok(_) => (ItemStatus::Done, None, None, Some("created")),
            Err(CreateSnapshotError::AlreadyExists(_)) => {
                match self.owner_of_existing(planned).await {
                    // Made by this deployment: an earlier attempt of this request whose answer was lost, or a
                    // concurrent run. The ledger says it was found made.
                    Ok(Some(Owner::Mine)) => {
                        (ItemStatus::Unchanged, None, None, Some("already-made"))
                    }
                    Ok(None) => (
                        ItemStatus::Skipped,
                        Some(format!(
                            "snapshot `{}` existed a moment ago and is gone: no recovery point for this run yet",
                            planned.snapshot_id
                        )),
                        Some("the next run takes it again (or invoke by hand)".to_string()),
                        None,
                    ),
                    Ok(Some(owner)) => (
                        ItemStatus::Failed,
                        Some(format!(
                            "snapshot `{}` exists but was made by {owner}: this deployment has no recovery point of {} for this run",
                            planned.snapshot_id, db.identifier
                        )),
                        Some(format!(
                            "two deployments select {} in {}: narrow one policy's selection so each database has one owner",
                            db.identifier, db.region
                        )),
                        Some("conflict"),
                    ),
                    Err(e) => (
                        ItemStatus::Failed,
                        Some(format!(
                            "snapshot `{}` exists and its owner could not be read: {e}",
                            planned.snapshot_id
                        )),
                        Some(e.next_step()),
                        Some("failed"),
                    ),
                }
            }
            Err(e @ (CreateSnapshotError::NotReady(_) | CreateSnapshotError::NotFound(_))) => {
                waits(format!(
                    "{e}: tried again by the next hourly run within the start window"
                ))
            }
            Err(CreateSnapshotError::Aws(e)) if scheduled && e.is_retryable() => waits(format!(
                "{e}: tried again by the next hourly run within the start window"
            )),
            Err(e @ CreateSnapshotError::QuotaExceeded(_)) => (
                ItemStatus::Failed,
                Some(e.to_string()),
                Some(
                    "raise the RDS manual snapshot quota in Service Quotas, or shorten retention"
                        .to_string(),
                ),
                Some("failed"),
            ),
            Err(CreateSnapshotError::Aws(e)) => (
                ItemStatus::Failed,
                Some(e.to_string()),
                Some(e.next_step()),
                Some("failed"),
            ),
        };
        match &result {
            Ok(arn) => {
                info!(database = %db.identifier, snapshot = %planned.snapshot_id, arn, "snapshot requested")
            }
            Err(e) => {
                warn!(database = %db.identifier, snapshot = %planned.snapshot_id, error = %e, "snapshot not requested")
            }
        }
        let record = ledger_outcome.map(|outcome| LedgerRecord {
            schema: RECORD_SCHEMA,
            time: self.services.clock.now(),
            function: FUNCTION.into(),
            run_id: String::new(),
            trigger: String::new(),
            action: "create-snapshot".into(),
            phase: Phase::Result,
            region: db.region.clone(),
            database: db.identifier.clone(),
            resource: planned.snapshot_id.clone(),
            reason: reason.into(),
            outcome: Some(outcome.into()),
            error: detail.clone(),
            details: serde_json::json!({
                "kind": db.kind,
                "arn": result.as_ref().ok(),
                "tags": planned.tags.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            }),
        });
        let outcome = ItemOutcome {
            database: db.identifier.clone(),
            kind: db.kind,
            region: db.region.clone(),
            action: "create-snapshot".into(),
            status,
            resource: Some(planned.snapshot_id.clone()),
            detail,
            next_step,
        };
        (outcome, record)
    }

    /// Who made the snapshot that already exists under the planned identifier (a retried run finds its own;
    /// another deployment selecting the same database finds the other's); `None` when it is gone again.
    async fn owner_of_existing(
        &self,
        planned: &PlannedSnapshot,
    ) -> Result<Option<Owner>, AwsError> {
        let existing = self
            .rds
            .describe_snapshot(planned.database.kind, &planned.snapshot_id)
            .await?;
        Ok(existing.map(|snap| self.services.deployment.owner_of(&snap.tags)))
    }

    fn emit_metrics(&self, results: &[ItemOutcome], region: &str) {
        let mut metrics = Metrics::new(
            FUNCTION,
            &self.services.deployment.name,
            self.services.clock.now(),
        );
        for item in results {
            let dims = [("Database", item.database.as_str()), ("Region", region)];
            let is = |s: ItemStatus| if item.status == s { 1.0 } else { 0.0 };
            metrics.put(
                &dims,
                "SnapshotRequested",
                is(ItemStatus::Done) + is(ItemStatus::Unchanged),
                Unit::Count,
            );
            metrics.put(&dims, "SnapshotFailed", is(ItemStatus::Failed), Unit::Count);
            metrics.put(
                &dims,
                "SnapshotSkipped",
                is(ItemStatus::Skipped),
                Unit::Count,
            );
        }
        let counts = Counts::of(results);
        let dims = [("Region", region)];
        metrics.put(
            &dims,
            "DatabasesSelected",
            results.len() as f64,
            Unit::Count,
        );
        metrics.put(&dims, "SnapshotsCreated", counts.done as f64, Unit::Count);
        metrics.put(&dims, "SnapshotsFailed", counts.failed as f64, Unit::Count);
        metrics.put(
            &dims,
            "SnapshotsSkipped",
            counts.skipped as f64,
            Unit::Count,
        );
        metrics.emit();
    }
}
