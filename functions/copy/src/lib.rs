//! The copy function: keeps every disaster-recovery region of the policy supplied with copies of the managed
//! snapshots, with the destination region's KMS key, never exceeding the per-region in-flight copy limit.
//!
//! Every trigger runs the same reconciliation: list the managed snapshots in the primary region and the
//! snapshots in each DR region (tags inline), plan with [`lifeboat::copy::plan_copies`] (what is missing, what
//! is in flight, which free slots to fill, oldest-needed first), start the planned copies and return. RDS events
//! make it prompt: "snapshot created" (RDS-EVENT-0042, cluster RDS-EVENT-0075) starts the copy at once, "copy
//! finished" or "canceled" (RDS-EVENT-0060/0061, forwarded from the DR regions) refills the freed slot. The hourly
//! schedule is the safety net for lost events and backlog. Target identifiers are deterministic, so an existing
//! or in-flight copy counts as done.
//!
//! Slots are counted per destination region and snapshot kind (RDS allows 20 DB snapshot copies and 5 DB cluster
//! snapshot copies in flight per region by default), and at most one copy per source database and region is in
//! flight (RDS would queue a second one behind the first, holding a slot without progress). A copy RDS refuses
//! for its limit stays in the backlog, reported as waiting, never alerted. The template gives the function a
//! reserved concurrency of 1, so the "snapshot created" events of 02:00 run one reconciliation after another
//! instead of many that fight over the same slots.
//!
//! A failed copy (`failed`, `error`, `incompatible-*`) never counts as done: it is alerted, deleted when this
//! deployment made it (intent and result in the ledger), and retried under the next attempt's identifier
//! (`<source>-retry2-from-<region>`, …). A recovery point that has not reached a DR region within the copy
//! deadline (24 h by default, `LIFEBOAT_COPY_DEADLINE_HOURS`) is alerted with its age and why it waits, by the
//! scheduled and manual runs when it becomes late and then daily; every run lists it in `late`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use lambda_runtime::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use lifeboat::aws::rds::DeleteSnapshotError;
use lifeboat::aws::rds::{CopySnapshotError, Rds};
use lifeboat::copy::{
    CopyFinding, CopyLimits, FailedCopy, LateCopy, LateReason, PlannedCopy, SkipReason,
    SkippedCopy, WaitReason, plan_copies,
};
use lifeboat::input::{self, Incoming};
use lifeboat::lambda::HandlerError;
use lifeboat::ledger::{LedgerRecord, Phase, RECORD_SCHEMA};
use lifeboat::metrics::{Metrics, Unit};
use lifeboat::model::{DatabaseKind, Snapshot};
use lifeboat::report::{Counts, ItemOutcome, ItemStatus};
use lifeboat::services::{RunOutcome, Services};

/// Name of this function in ledger records, metrics and notifications.
pub const FUNCTION: &str = "copy";

/// The manual action this function performs.
pub const ACTION: &str = "copy";

/// EventBridge detail types of the RDS events the function listens to.
pub const SNAPSHOT_EVENT_TYPES: [&str; 2] =
    ["RDS DB Snapshot Event", "RDS DB Cluster Snapshot Event"];

/// RDS event IDs that call for a reconciliation, with what they mean.
pub const RELEVANT_EVENTS: [(&str, &str); 4] = [
    ("RDS-EVENT-0042", "manual snapshot created"),
    ("RDS-EVENT-0075", "cluster snapshot created"),
    ("RDS-EVENT-0060", "cross-region copy finished"),
    ("RDS-EVENT-0061", "cross-region copy canceled"),
];

/// An operator's request: `{"action":"copy"}` reconciles now; `databases` narrows it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyRequest {
    /// Always `copy`.
    pub action: String,
    /// Only snapshots of these databases (all when empty).
    #[serde(default)]
    pub databases: Vec<String>,
}

/// Copy slots of one destination region after the run: totals over both snapshot kinds, and per kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RegionSlots {
    /// The in-flight limits of both kinds together (see `kinds` for each).
    pub limit: usize,
    /// Copies that were already running.
    pub in_flight: usize,
    /// Copies this run started.
    pub started: usize,
    /// Copies waiting (for a slot, or behind a copy of the same database).
    pub backlog: usize,
    /// The same per snapshot kind (RDS counts DB snapshot and DB cluster snapshot copies apart).
    #[serde(default)]
    pub kinds: BTreeMap<DatabaseKind, KindSlots>,
}

/// Copy slots of one snapshot kind in one destination region after the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KindSlots {
    /// The in-flight limit.
    pub limit: usize,
    /// Copies that were already running.
    pub in_flight: usize,
    /// Copies this run started.
    pub started: usize,
    /// Copies waiting for a free slot.
    pub waiting_for_slot: usize,
    /// Copies waiting behind a copy of the same database in flight (RDS copies one at a time per database).
    pub waiting_for_database: usize,
}

/// The function's response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopyReport {
    /// The invocation (Lambda request ID).
    pub run_id: String,
    /// `schedule`, `rds-event` or `manual`.
    pub trigger: String,
    /// The RDS event ID that caused the run, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Why nothing was done, for events that need no copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// Slots per destination region.
    pub regions: BTreeMap<String, RegionSlots>,
    /// One entry per copy started (or attempted).
    pub results: Vec<ItemOutcome>,
    /// Counts of `results` by outcome.
    pub counts: Counts,
    /// Things an operator should know that are not failures (unencrypted sources, failed copies to clean up).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    /// Sources not copied on purpose, with the reason (not yet available, no plan, …); those too old for a region's
    /// retention as one count per region.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_copied: Vec<String>,
    /// Recovery points that have not reached a DR region within the copy deadline, with age and reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub late: Vec<String>,
    /// Problems with the run itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_errors: Vec<String>,
    /// Message ID of the SNS summary, when one was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<String>,
}

/// Everything the handler needs, built once per container.
pub struct CopyFunction {
    /// Policy, ledger, alert topic, clock.
    pub services: Services,
    /// RDS in the primary region (the sources).
    pub primary: Rds,
    /// RDS in each DR region of the policy (the destinations).
    pub dr_regions: Vec<Rds>,
    /// In-flight copy limits per destination region.
    pub limits: CopyLimits,
}

/// What caused a run.
struct Trigger {
    name: &'static str,
    event: Option<String>,
    ignored: Option<String>,
    databases: Vec<String>,
}

/// The report's `not_copied`: one line per source skipped, except those older than a region's retention (on a fleet
/// with a long local history, most of its snapshots), which are one line per region with their count.
fn not_copied(skipped: &[SkippedCopy]) -> Vec<String> {
    let mut too_old: BTreeMap<(&str, u32), usize> = BTreeMap::new();
    let mut lines = Vec::new();
    for skip in skipped {
        match (&skip.reason, skip.region.as_deref()) {
            (SkipReason::TooOld { retain_days, .. }, Some(region)) => {
                *too_old.entry((region, *retain_days)).or_default() += 1;
            }
            (reason, region) => lines.push(format!(
                "{} to {}: {reason}",
                skip.source,
                region.unwrap_or("-")
            )),
        }
    }
    lines.extend(too_old.into_iter().map(|((region, days), count)| {
        let sources = if count == 1 { "source" } else { "sources" };
        format!("{count} {sources} to {region}: older than the {days} days it keeps copies")
    }));
    lines
}

impl CopyFunction {
    /// Handle one invocation.
    pub async fn handle(
        &self,
        payload: Value,
        context: &Context,
    ) -> Result<CopyReport, HandlerError> {
        let trigger = Self::trigger_of(payload)?;
        let run_id = context.request_id.clone();
        let mut report = CopyReport {
            run_id: run_id.clone(),
            trigger: trigger.name.into(),
            event: trigger.event.clone(),
            ignored: trigger.ignored.clone(),
            regions: BTreeMap::new(),
            results: Vec::new(),
            counts: Counts::default(),
            findings: Vec::new(),
            not_copied: Vec::new(),
            late: Vec::new(),
            run_errors: Vec::new(),
            notification: None,
        };
        if let Some(why) = &trigger.ignored {
            info!(run_id, why, "event ignored");
            return Ok(report);
        }
        let now = self.services.clock.now();
        let mut sources = self.primary.list_snapshots().await?;
        if !trigger.databases.is_empty() {
            sources.retain(|s| trigger.databases.iter().any(|d| *d == s.database));
        }
        let mut dr_snapshots = Vec::new();
        let mut reachable = Vec::new();
        for rds in &self.dr_regions {
            match rds.list_snapshots_into(&mut dr_snapshots).await {
                Ok(()) => reachable.push(rds.region().to_string()),
                Err(e) => {
                    warn!(region = rds.region(), error = %e, "cannot list DR region: no copies started there");
                    report
                        .run_errors
                        .push(format!("{e}: no copies were started in {}", rds.region()));
                }
            }
        }
        let plan = plan_copies(
            &self.services.policy,
            &self.services.deployment,
            &sources,
            &dr_snapshots,
            &self.limits,
            now,
        );
        report.findings = plan.findings.iter().map(ToString::to_string).collect();
        report.not_copied = not_copied(&plan.skipped);
        for finding in &report.findings {
            warn!(finding, "copy finding");
        }

        let mut ledger = self.services.run_ledger(FUNCTION, &run_id, trigger.name);

        // Failed copies: alerted, deleted when this deployment made them (intent first), retried by the plan.
        let failed: Vec<&FailedCopy> = plan
            .failed
            .iter()
            .filter(|f| reachable.iter().any(|r| *r == f.copy.region))
            .collect();
        let deletions: Vec<&FailedCopy> = failed.iter().copied().filter(|f| f.deletable).collect();
        let intents: Vec<LedgerRecord> = deletions
            .iter()
            .map(|f| self.deletion_record(f, now, Phase::Intent, None, None))
            .collect();
        let intents_written = match ledger.intend(intents).await {
            Ok(()) => Ok(()),
            Err(e) => {
                warn!(error = %e, "intents not written: no failed copy deleted");
                report.run_errors.push(e.to_string());
                Err(e.to_string())
            }
        };
        for failed_copy in failed {
            let deleted = match (&intents_written, failed_copy.deletable) {
                (_, false) => None,
                (Err(e), true) => Some(Err(format!(
                    "not deleted: no audit record could be written ({e})"
                ))),
                (Ok(()), true) => {
                    let result = self.delete_failed(failed_copy).await;
                    let (outcome, error) = match &result {
                        Ok(outcome) => (*outcome, None),
                        Err(e) => ("failed", Some(e.clone())),
                    };
                    ledger.record(self.deletion_record(
                        failed_copy,
                        now,
                        Phase::Result,
                        Some(outcome),
                        error,
                    ));
                    Some(result)
                }
            };
            report.results.push(failed_outcome(failed_copy, deleted));
        }

        let starts: Vec<&PlannedCopy> = plan
            .starts
            .iter()
            .filter(|c| reachable.contains(&c.region))
            .collect();
        let attempts: Vec<(ItemOutcome, LedgerRecord)> = stream::iter(starts)
            .map(|copy| self.start(copy, now))
            .buffer_unordered(self.services.concurrency)
            .collect()
            .await;
        // A copy's name held by something else blocks it for good: alert, with the way out.
        report
            .results
            .extend(plan.findings.iter().filter_map(|finding| match finding {
                CopyFinding::NameTaken {
                    database,
                    kind,
                    target,
                    region,
                    ..
                } => Some(ItemOutcome {
                    database: database.clone(),
                    kind: *kind,
                    region: region.clone(),
                    action: "copy-snapshot".into(),
                    status: ItemStatus::Failed,
                    resource: Some(target.clone()),
                    detail: Some(finding.to_string()),
                    next_step: Some(
                        "find which deployment made it (its lifeboat:deployment tag) and narrow one policy's \
                         selection so each database has one owner"
                            .into(),
                    ),
                }),
                _ => None,
            }));
        // Every attempt is on record, "already-exists" too: a copy whose first answer was lost is found by the
        // SDK's retry, and that record is the only one it gets.
        for (outcome, record) in attempts {
            ledger.record(record);
            report.results.push(outcome);
        }
        if let Err(e) = ledger.finish().await {
            report.run_errors.push(e.to_string());
        }

        // Late recovery points: one line each in the report; one alert per database, kind and region, from the
        // scheduled and manual runs, in the hour it becomes late and then daily (see `late_outcomes`).
        report.late = plan.late.iter().map(describe_late).collect();
        if trigger.name != "rds-event" {
            report
                .results
                .extend(late_outcomes(&plan.late, self.limits.deadline));
        }
        report
            .results
            .sort_by(|a, b| (&a.region, &a.resource).cmp(&(&b.region, &b.resource)));
        for ((region, kind), slots) in &plan.regions {
            let started = report
                .results
                .iter()
                .filter(|r| {
                    &r.region == region
                        && r.kind == *kind
                        && r.action == "copy-snapshot"
                        && r.status == ItemStatus::Done
                })
                .count();
            let refused = slots.starting.saturating_sub(started);
            let behind = slots
                .backlog
                .iter()
                .filter(|w| w.waits_for == WaitReason::SameDatabase)
                .count();
            let kind_slots = KindSlots {
                limit: slots.limit,
                in_flight: slots.in_flight,
                started,
                waiting_for_slot: slots.backlog.len() - behind + refused,
                waiting_for_database: behind,
            };
            let total = report.regions.entry(region.clone()).or_default();
            total.limit += kind_slots.limit;
            total.in_flight += kind_slots.in_flight;
            total.started += kind_slots.started;
            total.backlog += kind_slots.waiting_for_slot + kind_slots.waiting_for_database;
            total.kinds.insert(*kind, kind_slots);
        }
        report.counts = Counts::of(&report.results);
        self.emit_metrics(&report, &dr_snapshots, now);

        let run = RunOutcome {
            function: FUNCTION,
            region: self.primary.region(),
            run_id: &report.run_id,
            trigger: &report.trigger,
            items: &report.results,
        };
        report.notification = self.services.summarize(run, &mut report.run_errors).await;
        info!(counts = ?report.counts, regions = ?report.regions, "copy run finished");
        Ok(report)
    }

    fn trigger_of(payload: Value) -> Result<Trigger, HandlerError> {
        let trigger = |name, event, ignored, databases| Trigger {
            name,
            event,
            ignored,
            databases,
        };
        match input::classify(payload)? {
            Incoming::Event(event) if event.detail_type == input::SCHEDULED_EVENT => {
                Ok(trigger("schedule", None, None, Vec::new()))
            }
            Incoming::Event(event)
                if SNAPSHOT_EVENT_TYPES.contains(&event.detail_type.as_str()) =>
            {
                let id = event
                    .detail
                    .get("EventID")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        HandlerError::InvalidInput(format!(
                            "`{}` event has no detail.EventID: cannot tell what happened",
                            event.detail_type
                        ))
                    })?;
                let ignored = (!RELEVANT_EVENTS.iter().any(|(known, _)| *known == id)).then(|| {
                    format!(
                        "{id} needs no copy; the function acts on {}",
                        RELEVANT_EVENTS
                            .iter()
                            .map(|(i, what)| format!("{i} ({what})"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
                Ok(trigger(
                    "rds-event",
                    Some(id.to_string()),
                    ignored,
                    Vec::new(),
                ))
            }
            Incoming::Event(event) => Err(HandlerError::InvalidInput(format!(
                "the copy function handles EventBridge `{}`, `{}` and `{}` events, not `{}` (from {})",
                input::SCHEDULED_EVENT,
                SNAPSHOT_EVENT_TYPES[0],
                SNAPSHOT_EVENT_TYPES[1],
                event.detail_type,
                event.source
            ))),
            Incoming::Manual { action, payload } if action == ACTION => {
                let request: CopyRequest = input::parse_request(payload)?;
                Ok(trigger("manual", None, None, request.databases))
            }
            Incoming::Manual { action, .. } => Err(input::unknown_action(&action, &[ACTION])),
        }
    }

    /// Start one copy; returns its outcome and its ledger record.
    async fn start(&self, copy: &PlannedCopy, now: DateTime<Utc>) -> (ItemOutcome, LedgerRecord) {
        let destination = self
            .dr_regions
            .iter()
            .find(|rds| rds.region() == copy.region);
        let result = match destination {
            Some(rds) => rds.copy_snapshot(copy).await,
            None => Err(CopySnapshotError::NotReady(format!(
                "no RDS client for {}",
                copy.region
            ))),
        };
        let (status, detail, next_step, outcome) = match &result {
            Ok(_) => (ItemStatus::Done, None, None, "started"),
            Err(CopySnapshotError::AlreadyExists(_)) => (ItemStatus::Unchanged, None, None, "already-exists"),
            Err(e @ (CopySnapshotError::SourceNotFound(_) | CopySnapshotError::NotReady(_))) => (
                ItemStatus::Skipped,
                Some(e.to_string()),
                Some("the next run retries if the source is still wanted".to_string()),
                "skipped",
            ),
            Err(e @ CopySnapshotError::CopyLimitReached { .. }) => (
                ItemStatus::Waiting,
                Some(e.to_string()),
                Some("waits for a free slot: the next copy-finished event or the hourly run starts it".to_string()),
                "waiting",
            ),
            Err(e @ CopySnapshotError::KeyNotAccessible { key, region, .. }) => (
                ItemStatus::Failed,
                Some(e.to_string()),
                Some(format!(
                    "check that KMS key `{key}` exists in {region} and that its key policy lets the copy function's \
                     role use it (kms:CreateGrant, kms:DescribeKey); fix copies[].kms_key_id in the policy otherwise"
                )),
                "failed",
            ),
            Err(e @ CopySnapshotError::QuotaExceeded { region, .. }) => (
                ItemStatus::Failed,
                Some(e.to_string()),
                Some(format!("raise the RDS manual snapshot quota in {region}, or shorten copy retention")),
                "failed",
            ),
            Err(CopySnapshotError::Aws(e)) => (ItemStatus::Failed, Some(e.to_string()), Some(e.next_step()), "failed"),
        };
        match &result {
            Ok(arn) => {
                info!(source = %copy.source.identifier, region = %copy.region, arn, "copy started")
            }
            Err(e) => {
                warn!(source = %copy.source.identifier, region = %copy.region, error = %e, "copy not started")
            }
        }
        let record = LedgerRecord {
            schema: RECORD_SCHEMA,
            time: now,
            function: FUNCTION.into(),
            run_id: String::new(),
            trigger: String::new(),
            action: "copy-snapshot".into(),
            phase: Phase::Result,
            region: copy.region.clone(),
            database: copy.source.database.to_string(),
            resource: copy.target_id.clone(),
            reason: format!(
                "policy {}: copies to {}",
                self.services.policy.name, copy.region
            ),
            outcome: Some(outcome.into()),
            error: detail.clone(),
            details: serde_json::json!({
                "source": copy.source.arn,
                "kms_key_id": copy.kms_key_id,
                "option_group": copy.option_group,
                "encrypted": copy.source.encrypted,
            }),
        };
        let item = ItemOutcome {
            database: copy.source.database.to_string(),
            kind: copy.source.kind,
            region: copy.region.clone(),
            action: "copy-snapshot".into(),
            status,
            resource: Some(copy.target_id.clone()),
            detail,
            next_step,
        };
        (item, record)
    }

    /// Delete a failed copy of this deployment; the ledger outcome, or what went wrong.
    async fn delete_failed(&self, failed: &FailedCopy) -> Result<&'static str, String> {
        let Some(rds) = self
            .dr_regions
            .iter()
            .find(|rds| rds.region() == failed.copy.region)
        else {
            return Err(format!("no RDS client for {}", failed.copy.region));
        };
        match rds
            .delete_snapshot(failed.copy.kind, &failed.copy.identifier)
            .await
        {
            Ok(()) => {
                info!(copy = %failed.copy.identifier, region = %failed.copy.region, "failed copy deleted");
                Ok("deleted")
            }
            Err(DeleteSnapshotError::NotFound(_)) => Ok("already-gone"),
            Err(e) => {
                warn!(copy = %failed.copy.identifier, region = %failed.copy.region, error = %e, "failed copy not deleted");
                Err(e.to_string())
            }
        }
    }

    /// The ledger record of the deletion of a failed copy (`phase` intent or result).
    fn deletion_record(
        &self,
        failed: &FailedCopy,
        now: DateTime<Utc>,
        phase: Phase,
        outcome: Option<&str>,
        error: Option<String>,
    ) -> LedgerRecord {
        LedgerRecord {
            schema: RECORD_SCHEMA,
            time: now,
            function: FUNCTION.into(),
            run_id: String::new(),
            trigger: String::new(),
            action: "delete-failed-copy".into(),
            phase,
            region: failed.copy.region.to_string(),
            database: failed.database.clone(),
            resource: failed.copy.identifier.clone(),
            reason: format!(
                "copy of `{}` is `{}`: no recovery point; retried as `{}`",
                failed.source_id, failed.copy.status, failed.retry_id
            ),
            outcome: outcome.map(str::to_string),
            error,
            details: serde_json::json!({
                "kind": failed.copy.kind,
                "status": failed.copy.status,
                "source": failed.source_id,
                "retry": failed.retry_id,
            }),
        }
    }

    fn emit_metrics(&self, report: &CopyReport, dr_snapshots: &[Snapshot], now: DateTime<Utc>) {
        let mut metrics = Metrics::new(FUNCTION, &self.services.deployment.name, now);
        for (region, slots) in &report.regions {
            let dims = [("Region", region.as_str())];
            metrics.put(&dims, "CopiesStarted", slots.started as f64, Unit::Count);
            metrics.put(
                &dims,
                "CopiesInFlight",
                (slots.in_flight + slots.started) as f64,
                Unit::Count,
            );
            metrics.put(&dims, "CopyBacklog", slots.backlog as f64, Unit::Count);
            // Failed copies (RDS failed them, or they could not be started): alerted in the run's summary.
            let failed = report
                .results
                .iter()
                .filter(|r| &r.region == region && r.status == ItemStatus::Failed)
                .count();
            metrics.put(&dims, "CopiesFailed", failed as f64, Unit::Count);
        }
        let mut newest: BTreeMap<(&str, &str), DateTime<Utc>> = BTreeMap::new();
        for snap in dr_snapshots
            .iter()
            .filter(|s| s.is_managed() && s.is_available())
        {
            let entry = newest
                .entry((snap.database.as_str(), snap.region.as_str()))
                .or_insert(snap.created_at);
            *entry = (*entry).max(snap.created_at);
        }
        for ((database, region), created_at) in newest {
            let age = now.signed_duration_since(created_at).num_seconds().max(0) as f64;
            metrics.put(
                &[("Database", database), ("Region", region)],
                "NewestCopyAgeSeconds",
                age,
                Unit::Seconds,
            );
        }
        metrics.emit();
    }
}

/// The alert for a failed copy: what failed, whether it was deleted, and the retry.
fn failed_outcome(
    failed: &FailedCopy,
    deleted: Option<Result<&'static str, String>>,
) -> ItemOutcome {
    let copy = &failed.copy;
    let what = format!(
        "copy `{}` of `{}` in {} is `{}`: no recovery point, never counted as done",
        copy.identifier, failed.source_id, copy.region, copy.status
    );
    let cause = if copy.status.starts_with("incompatible-") {
        "RDS found the copy incompatible with the region: check the option group (copies[].option_group) and \
         parameter settings the region needs"
    } else {
        "check the KMS key of the region (copies[].kms_key_id) and that the source still exists"
    };
    let (detail, next_step) = match deleted {
        None => (
            format!(
                "{what}; not deleted (it is not this deployment's), retried as `{}`",
                failed.retry_id
            ),
            format!(
                "delete `{}` in {} by hand once it is no longer needed; {cause}",
                copy.identifier, copy.region
            ),
        ),
        Some(Ok(_)) => (
            format!("{what}; deleted, retried as `{}`", failed.retry_id),
            format!(
                "nothing if the retry `{}` succeeds; if it fails too, {cause}",
                failed.retry_id
            ),
        ),
        Some(Err(e)) => (
            format!(
                "{what}; not deleted ({e}); retried as `{}`",
                failed.retry_id
            ),
            format!(
                "the next run deletes it again; if that keeps failing, delete `{}` in {} by hand; {cause}",
                copy.identifier, copy.region
            ),
        ),
    };
    ItemOutcome {
        database: failed.database.clone(),
        kind: copy.kind,
        region: copy.region.to_string(),
        action: "copy-snapshot".into(),
        status: ItemStatus::Failed,
        resource: Some(copy.identifier.clone()),
        detail: Some(detail),
        next_step: Some(next_step),
    }
}

/// A late recovery point as one line: which, where, how old, why.
fn describe_late(late: &LateCopy) -> String {
    format!(
        "`{}` ({} {}) has not reached {} {} after it was taken: {}",
        late.source_id,
        late.kind,
        late.database,
        late.region,
        hours(late.age),
        late.reason
    )
}

fn hours(age: chrono::Duration) -> String {
    let minutes = age.num_minutes().max(0);
    format!("{}h{:02}m", minutes / 60, minutes % 60)
}

/// How long after a recovery point becomes late (and after each further day) the hourly run alerts it: a little over
/// an hour, so exactly one hourly run falls in it even when runs are a few minutes late.
const ALERT_WINDOW: chrono::Duration = chrono::Duration::minutes(65);

/// One alert per database, kind and region with a late recovery point that just became late, or daily while it stays
/// late: the oldest one, how many are late, why.
fn late_outcomes(late: &[LateCopy], deadline: chrono::Duration) -> Vec<ItemOutcome> {
    let mut groups: BTreeMap<(&str, DatabaseKind, &str), Vec<&LateCopy>> = BTreeMap::new();
    for copy in late {
        groups
            .entry((copy.region.as_str(), copy.kind, copy.database.as_str()))
            .or_default()
            .push(copy);
    }
    groups
        .into_iter()
        .filter(|(_, copies)| {
            // Alerted once when a recovery point becomes late, then reminded daily while the oldest stays late: the
            // hourly runs that fall in between list it in `late` only (no state is kept between runs).
            let over = |copy: &&LateCopy| copy.age - deadline;
            copies.iter().any(|c| over(c) < ALERT_WINDOW)
                || copies
                    .iter()
                    .map(over)
                    .max()
                    .is_some_and(|most| {
                        chrono::Duration::seconds(most.num_seconds() % 86_400) < ALERT_WINDOW
                    })
        })
        .filter_map(|((region, kind, database), copies)| {
            let oldest = copies.iter().min_by_key(|c| (c.created_at, &c.source_id))?;
            let more = match copies.len() {
                1 => String::new(),
                n => format!(" ({} more late recovery points of it)", n - 1),
            };
            let next_step = match &oldest.reason {
                LateReason::Waiting(WaitReason::Slot) => {
                    "the region's copy slots are full: raise the RDS quota and CopySlotsPerRegion / \
                     ClusterCopySlotsPerRegion, or copy less (copies[] of the policy)"
                }
                LateReason::StartingNow => {
                    "its copy starts now: check that the copy function runs hourly and on RDS events (its schedule, \
                     its errors and the dead-letter queue)"
                }
                LateReason::Waiting(WaitReason::SameDatabase) | LateReason::InFlight { .. } => {
                    "copies of this database are slow: check the copy in flight in the RDS console (size, \
                     incremental copies need the same KMS key as the previous copy)"
                }
                LateReason::Failed { .. } => "see the failed copy's alert: fix its cause so the retry succeeds",
            };
            Some(ItemOutcome {
                database: database.to_string(),
                kind,
                region: region.to_string(),
                action: "copy-deadline".into(),
                status: ItemStatus::Failed,
                resource: Some(oldest.source_id.clone()),
                detail: Some(format!(
                    "recovery point `{}` taken {} is not in {region} after {} (copy deadline {}): {}{more}",
                    oldest.source_id,
                    oldest.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    hours(oldest.age),
                    hours(deadline),
                    oldest.reason
                )),
                next_step: Some(next_step.into()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn skip(source: &str, region: Option<&str>, reason: SkipReason) -> SkippedCopy {
        SkippedCopy {
            source: source.into(),
            region: region.map(str::to_string),
            reason,
        }
    }

    #[test]
    fn sources_too_old_for_a_region_are_counted_the_rest_listed() {
        let too_old = |days| SkipReason::TooOld {
            created_at: Utc.with_ymd_and_hms(2026, 1, 1, 2, 0, 0).unwrap(),
            retain_days: days,
        };
        let skipped = [
            skip("a", Some("us-west-2"), too_old(30)),
            skip("b", Some("us-west-2"), too_old(30)),
            skip("c", Some("eu-west-1"), too_old(7)),
            skip("d", None, SkipReason::NoPlan),
            skip(
                "e",
                Some("us-west-2"),
                SkipReason::NotAvailable {
                    status: "creating".into(),
                },
            ),
        ];
        let lines = not_copied(&skipped);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        assert_eq!(lines[0], "d to -: no plan in the policy covers it");
        assert!(lines[1].starts_with("e to us-west-2: ") && lines[1].contains("`creating`"));
        assert_eq!(
            lines[2..],
            [
                "1 source to eu-west-1: older than the 7 days it keeps copies",
                "2 sources to us-west-2: older than the 30 days it keeps copies"
            ]
        );
    }
}
