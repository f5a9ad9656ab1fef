//! The retention function: deletes the snapshots the policy no longer keeps, in the primary region and in every
//! disaster-recovery region, never past a safety floor.
//!
//! It lists every manual DB snapshot and DB cluster snapshot per region (tags inline, one call per 100 snapshots),
//! keeps to the snapshots this deployment made (the rest is reported as left alone), groups them by database, plans
//! each group with [`lifeboat::retention::plan`] and deletes with bounded concurrency. The run's deletions are written
//! to the ledger as one intent object before any is deleted and their results as one object after; without the
//! intents on record nothing is deleted, and when a DR region cannot be listed nothing is deleted anywhere.
//! `dry_run` returns the plan and changes nothing.
//!
//! A run that would outlast its invocation (a first run after a policy change over a large fleet) starts no new
//! deletion once the invocation's deadline is [`RESERVE`] away (or half the reserve after its plan is made, but
//! not past half the reserve before the deadline, when listing took most of the run's budget): the rest are
//! recorded as deferred, in the ledger and the response (`continuation`), and a new asynchronous invocation of the
//! function, a continuation, plans again from what is then listed and goes on, up to [`MAX_CONTINUATIONS`] times
//! in a row. Two runs in a row that start no deletion (the listing uses up the time) stop the chain with an alert
//! to raise the timeout.

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use lambda_runtime::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use lifeboat::aws::lambda::Continuations;
use lifeboat::aws::rds::{DeleteSnapshotError, Rds};
use lifeboat::input::{self, Incoming};
use lifeboat::lambda::{HandlerError, work_cutoff};
use lifeboat::ledger::{LedgerRecord, Phase, RECORD_SCHEMA};
use lifeboat::metrics::{Metrics, Unit};
use lifeboat::report::{Counts, ItemOutcome, ItemStatus, bound_for_answer};
use lifeboat::retention::{self, RunPlan, RunRequest};
pub use lifeboat::retention::{DatabaseRetention, LeftAlone};
use lifeboat::services::{RunOutcome, Services};

/// Name of this function in ledger records, metrics and notifications.
pub const FUNCTION: &str = "retention";

/// The manual action this function performs.
pub const ACTION: &str = "retention";

/// Time kept back from the invocation's deadline to record the run's results and start its continuation.
pub const RESERVE: std::time::Duration = std::time::Duration::from_secs(60);

/// Continuations one request may chain before the run is reported as unable to finish.
pub const MAX_CONTINUATIONS: u32 = 24;

/// An operator's request, for example `{"action":"retention","dry_run":true}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRequest {
    /// Always `retention`.
    pub action: String,
    /// Return the plan and change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Only these databases (every database with managed snapshots when empty).
    #[serde(default)]
    pub databases: Vec<String>,
    /// Lift the `max_delete_fraction` refusal for the databases named in `databases` (after a deliberate policy
    /// change that shortens retention a lot).
    #[serde(default)]
    pub allow_large_deletions: bool,
    /// Set by the function itself on a continuation: how many runs of this request came before.
    #[serde(default)]
    pub continuation: u32,
    /// Set by the function itself on a continuation: the run before it started no deletion (its time ran out while
    /// listing and planning).
    #[serde(default)]
    pub stalled: bool,
}

/// A run that stopped at its time budget with deletions left.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Continuation {
    /// Deletions this run did not start (recorded as deferred).
    pub deferred: usize,
    /// Which continuation of the request the next run is (1 for the first).
    pub number: u32,
    /// Whether the continuation was started; when not, `run_errors` says why and the next run picks the rest up.
    pub started: bool,
}

/// The function's response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetentionReport {
    /// The invocation (Lambda request ID).
    pub run_id: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// Whether this was a dry run (nothing changed).
    pub dry_run: bool,
    /// The planning time.
    pub as_of: DateTime<Utc>,
    /// Policy in force.
    pub policy: String,
    /// Per database and region.
    pub databases: Vec<DatabaseRetention>,
    /// Snapshots this deployment did not make, left alone, by region and owner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_alone: Vec<LeftAlone>,
    /// Things an operator should know that are not failures (a `lifeboat:created-at` tag disagreeing with RDS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    /// Per deletion (and per refused database); at most [`lifeboat::report::ANSWER_RESULTS`], those that need attention first.
    pub results: Vec<ItemOutcome>,
    /// Results left out of `results` to keep the answer within Lambda's limit (the ledger holds them all).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub results_omitted: usize,
    /// Counts of every result by outcome.
    pub counts: Counts,
    /// Problems with the run itself (a region that could not be listed, ledger or notification failures).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_errors: Vec<String>,
    /// Message ID of the SNS summary, when one was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<String>,
    /// Present when the run stopped at its time budget with deletions left: the run is not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation: Option<Continuation>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Everything the handler needs, built once per container.
pub struct RetentionFunction {
    /// Policy, ledger, alert topic, clock.
    pub services: Services,
    /// RDS in the primary region.
    pub primary: Rds,
    /// RDS in each disaster-recovery region of the policy.
    pub dr_regions: Vec<Rds>,
    /// Invocations of this function, for continuations (`None` outside Lambda: the next run picks the rest up).
    pub continuations: Option<Continuations>,
}

/// What one run was asked to do.
struct Run {
    trigger: &'static str,
    dry_run: bool,
    request: RunRequest,
    /// How many runs of this request came before (0 unless this is a continuation).
    continuation: u32,
    /// Whether the run before this continuation started no deletion.
    stalled: bool,
}

/// One deletion to carry out.
struct Deletion<'a> {
    rds: &'a Rds,
    group: &'a DatabaseRetention,
    snapshot: String,
}

impl RetentionFunction {
    /// Handle one invocation.
    pub async fn handle(
        &self,
        payload: Value,
        context: &Context,
    ) -> Result<RetentionReport, HandlerError> {
        let run = self.run_of(payload)?;
        let run_id = context.request_id.clone();
        let now = self.services.clock.now();
        let cutoff = work_cutoff(context.deadline, RESERVE);
        let databases = self.primary.list_databases().await?;
        let mut snapshots = self.primary.list_snapshots().await?;
        let mut run_errors = Vec::new();
        let mut unlisted = Vec::new();
        for rds in &self.dr_regions {
            if let Err(e) = rds.list_snapshots_into(&mut snapshots).await {
                warn!(region = rds.region(), error = %e, "cannot list snapshots: nothing is deleted anywhere");
                run_errors.push(format!(
                    "{e}: nothing was deleted in any region (a hold or a running copy there could concern \
                     snapshots elsewhere); the next run retries"
                ));
                unlisted.push(rds.region().to_string());
            }
        }
        let RunPlan {
            groups,
            left_alone,
            findings,
        } = retention::plan_run(
            &self.services.policy,
            &self.services.deployment,
            &databases,
            snapshots,
            &run.request,
            now,
        );
        for finding in &findings {
            warn!(finding, "snapshot dating");
        }
        info!(
            run_id,
            groups = groups.len(),
            dry_run = run.dry_run,
            "retention planned"
        );

        let mut results: Vec<ItemOutcome> = groups
            .iter()
            .filter_map(|g| {
                g.refused.as_ref().map(|why| ItemOutcome {
                    database: g.database.clone(),
                    kind: g.kind,
                    region: g.region.clone(),
                    action: "retention-plan".into(),
                    status: ItemStatus::Skipped,
                    resource: None,
                    detail: Some(format!("refused: {why}")),
                    next_step: Some(format!(
                        "check the retention policy; if the deletions are intended, invoke with \
                         {{\"action\":\"retention\",\"databases\":[\"{}\"],\"allow_large_deletions\":true}}",
                        g.database
                    )),
                })
            })
            .collect();
        if !run.dry_run && unlisted.is_empty() {
            let deletions: Vec<Deletion> = groups
                .iter()
                .filter(|g| g.refused.is_none())
                .flat_map(|g| {
                    let rds = self.rds_for(&g.region);
                    g.delete.iter().filter_map(move |id| {
                        rds.map(|rds| Deletion {
                            rds,
                            group: g,
                            snapshot: id.clone(),
                        })
                    })
                })
                .collect();
            let mut ledger = self.services.run_ledger(FUNCTION, &run_id, run.trigger);
            let intents = deletions
                .iter()
                .map(|d| self.record(d, None, None))
                .collect();
            // A listing that (nearly) used up the run's budget must not leave every run of a chain deferring
            // everything: the deletions get at least half the reserve from now, but never past half the reserve
            // before the deadline, which still leaves time to record the run and continue it.
            let cutoff = cutoff.map(|cutoff| {
                let half = RESERVE / 2;
                cutoff.max((self.services.clock.now() + half).min(cutoff + half))
            });
            match ledger.intend(intents).await {
                Ok(()) => {
                    let outcomes: Vec<(ItemOutcome, LedgerRecord)> = stream::iter(deletions)
                        .map(|deletion| self.delete(deletion, cutoff))
                        .buffer_unordered(self.services.concurrency)
                        .collect()
                        .await;
                    for (outcome, record) in outcomes {
                        results.push(outcome);
                        ledger.record(record);
                    }
                    if let Err(e) = ledger.finish().await {
                        run_errors.push(e.to_string());
                    }
                }
                Err(e) => {
                    // Without the intents on record, nothing is deleted.
                    warn!(error = %e, "intents not written: nothing deleted");
                    results.extend(deletions.iter().map(|d| ItemOutcome {
                        status: ItemStatus::Failed,
                        detail: Some(format!("not deleted: no audit record could be written ({e})")),
                        next_step: Some(
                            "check the ledger bucket and the function's s3:PutObject permission".into(),
                        ),
                        ..outcome_of(d)
                    }));
                }
            }
        }
        results.sort_by(|a, b| {
            (&a.region, &a.database, &a.resource).cmp(&(&b.region, &b.database, &b.resource))
        });

        let deferred = results
            .iter()
            .filter(|r| r.action == "delete-snapshot" && r.status == ItemStatus::Waiting)
            .count();
        let started = results
            .iter()
            .any(|r| r.action == "delete-snapshot" && r.status != ItemStatus::Waiting);
        let continuation = if deferred > 0 {
            Some(
                self.continue_run(&run, deferred, !started, &mut run_errors)
                    .await,
            )
        } else {
            None
        };

        self.emit_metrics(&groups, &results, now);
        let mut report = RetentionReport {
            run_id,
            trigger: run.trigger.into(),
            dry_run: run.dry_run,
            as_of: now,
            policy: self.services.policy.name.clone(),
            counts: Counts::of(&results),
            databases: groups,
            left_alone,
            findings,
            results,
            results_omitted: 0,
            run_errors,
            notification: None,
            continuation,
        };
        let run = RunOutcome {
            function: FUNCTION,
            region: self.primary.region(),
            run_id: &report.run_id,
            trigger: &report.trigger,
            items: &report.results,
        };
        report.notification = self.services.summarize(run, &mut report.run_errors).await;
        report.results_omitted = bound_for_answer(&mut report.results);
        info!(counts = ?report.counts, "retention run finished");
        Ok(report)
    }

    fn run_of(&self, payload: Value) -> Result<Run, HandlerError> {
        match input::classify(payload)? {
            Incoming::Event(event) if event.detail_type == input::SCHEDULED_EVENT => Ok(Run {
                trigger: "schedule",
                dry_run: false,
                request: RunRequest::default(),
                continuation: 0,
                stalled: false,
            }),
            Incoming::Event(event) => Err(HandlerError::InvalidInput(format!(
                "the retention function handles EventBridge `{}` events, not `{}` (from {})",
                input::SCHEDULED_EVENT,
                event.detail_type,
                event.source
            ))),
            Incoming::Manual { action, payload } if action == ACTION => {
                let request: RetentionRequest = input::parse_request(payload)?;
                if request.allow_large_deletions && request.databases.is_empty() {
                    return Err(HandlerError::InvalidInput(
                        "allow_large_deletions needs `databases`: name each database whose large deletion you confirm"
                            .into(),
                    ));
                }
                if request.continuation > 0 && request.dry_run {
                    return Err(HandlerError::InvalidInput(
                        "continuation: a dry run deletes nothing, so it never continues".into(),
                    ));
                }
                Ok(Run {
                    continuation: request.continuation,
                    stalled: request.stalled,
                    trigger: if request.continuation > 0 {
                        "continuation"
                    } else {
                        "manual"
                    },
                    dry_run: request.dry_run,
                    request: RunRequest {
                        only: request.databases.into_iter().collect(),
                        allow_large_deletions: request.allow_large_deletions,
                        with_decisions: request.dry_run,
                    },
                })
            }
            Incoming::Manual { action, .. } => Err(input::unknown_action(&action, &[ACTION])),
        }
    }

    fn rds_for(&self, region: &str) -> Option<&Rds> {
        std::iter::once(&self.primary)
            .chain(&self.dr_regions)
            .find(|rds| rds.region() == region)
    }

    /// The ledger record of `deletion`: its intent (no outcome) or its result.
    fn record(
        &self,
        deletion: &Deletion<'_>,
        outcome: Option<&str>,
        error: Option<String>,
    ) -> LedgerRecord {
        let group = deletion.group;
        LedgerRecord {
            schema: RECORD_SCHEMA,
            time: self.services.clock.now(),
            function: FUNCTION.into(),
            run_id: String::new(),
            trigger: String::new(),
            action: "delete-snapshot".into(),
            phase: Phase::Intent,
            region: group.region.clone(),
            database: group.database.clone(),
            resource: deletion.snapshot.clone(),
            reason: format!(
                "policy {} plan {}: kept by no retention rule or floor",
                self.services.policy.name,
                group
                    .plan
                    .as_deref()
                    .unwrap_or("(none: expired manual snapshot)")
            ),
            outcome: outcome.map(str::to_string),
            error,
            details: serde_json::json!({ "kind": group.kind }),
        }
    }

    /// Start the continuation of `run`, which stopped with `deferred` deletions left (`stalled`: none started); a
    /// continuation that cannot start, or would not progress, is a run error (alerted), and the next scheduled run
    /// picks the rest up.
    async fn continue_run(
        &self,
        run: &Run,
        deferred: usize,
        stalled: bool,
        run_errors: &mut Vec<String>,
    ) -> Continuation {
        let number = run.continuation + 1;
        let left = format!(
            "{deferred} deletion(s) were not started before this run's time ran out (they are recorded as deferred)"
        );
        let started = if stalled && run.stalled {
            // Two runs in a row spent their time listing and planning: more of them would do the same.
            run_errors.push(format!(
                "{left}, and the run before this one started none either: listing and planning use up the \
                 function's time. Raise the retention function's Timeout (RetentionFunction in \
                 infra/template.yaml); the next scheduled run tries again"
            ));
            false
        } else if number > MAX_CONTINUATIONS {
            run_errors.push(format!(
                "{left}, and this request has already continued {MAX_CONTINUATIONS} times: the next scheduled run \
                 goes on; if it never finishes, raise the function's timeout or its LIFEBOAT_CONCURRENCY"
            ));
            false
        } else if let Some(continuations) = &self.continuations {
            let payload = serde_json::json!({
                "action": ACTION,
                "databases": run.request.only,
                "allow_large_deletions": run.request.allow_large_deletions,
                "continuation": number,
                "stalled": stalled,
            });
            match continuations.start(&payload).await {
                Ok(()) => {
                    info!(
                        deferred,
                        number,
                        function = continuations.function_name(),
                        "continuation started"
                    );
                    true
                }
                Err(e) => {
                    run_errors.push(format!(
                        "{left}, and the continuation could not be started: {e}; the next scheduled run goes on"
                    ));
                    false
                }
            }
        } else {
            run_errors.push(format!(
                "{left}; no continuation outside Lambda: the next run goes on"
            ));
            false
        };
        Continuation {
            deferred,
            number,
            started,
        }
    }

    /// Delete one snapshot (its intent is on record), unless the run's time is up (`cutoff`): then it is deferred
    /// to the continuation, untouched. Returns its outcome and its result record.
    async fn delete(
        &self,
        deletion: Deletion<'_>,
        cutoff: Option<DateTime<Utc>>,
    ) -> (ItemOutcome, LedgerRecord) {
        let group = deletion.group;
        let mut outcome = outcome_of(&deletion);
        if cutoff.is_some_and(|cutoff| self.services.clock.now() >= cutoff) {
            outcome.status = ItemStatus::Waiting;
            outcome.detail = Some(
                "not started: the run stopped at its time budget; its continuation deletes it"
                    .into(),
            );
            let record = self.record(&deletion, Some("deferred"), None);
            return (outcome, record);
        }
        let result = deletion
            .rds
            .delete_snapshot(group.kind, &deletion.snapshot)
            .await;
        let ledger_outcome = match &result {
            Ok(()) => "deleted",
            Err(DeleteSnapshotError::NotFound(_)) => {
                outcome.status = ItemStatus::Unchanged;
                "already-gone"
            }
            Err(e @ DeleteSnapshotError::InvalidState(_)) => {
                outcome.status = ItemStatus::Skipped;
                outcome.detail = Some(e.to_string());
                outcome.next_step =
                    Some("the next run retries once RDS has finished with the snapshot".into());
                "skipped"
            }
            Err(DeleteSnapshotError::Aws(e)) => {
                outcome.status = ItemStatus::Failed;
                outcome.detail = Some(e.to_string());
                outcome.next_step = Some(e.next_step());
                "failed"
            }
        };
        match &result {
            Ok(()) => {
                info!(database = %group.database, region = %group.region, snapshot = %deletion.snapshot, "snapshot deleted")
            }
            Err(e) => {
                warn!(database = %group.database, region = %group.region, snapshot = %deletion.snapshot, error = %e, "snapshot not deleted")
            }
        }
        let record = self.record(&deletion, Some(ledger_outcome), outcome.detail.clone());
        (outcome, record)
    }

    fn emit_metrics(
        &self,
        groups: &[DatabaseRetention],
        results: &[ItemOutcome],
        now: DateTime<Utc>,
    ) {
        let mut metrics = Metrics::new(FUNCTION, &self.services.deployment.name, now);
        for group in groups {
            let dims = [
                ("Database", group.database.as_str()),
                ("Region", group.region.as_str()),
            ];
            let mine = |status: ItemStatus| {
                results
                    .iter()
                    .filter(|r| {
                        r.database == group.database
                            && r.region == group.region
                            && r.kind == group.kind
                    })
                    .filter(|r| r.action == "delete-snapshot" && r.status == status)
                    .count() as f64
            };
            metrics.put(&dims, "SnapshotsKept", group.kept as f64, Unit::Count);
            metrics.put(
                &dims,
                "SnapshotsDeleted",
                mine(ItemStatus::Done),
                Unit::Count,
            );
            metrics.put(&dims, "DeleteFailed", mine(ItemStatus::Failed), Unit::Count);
            metrics.put(
                &dims,
                "RetentionRefused",
                f64::from(u8::from(group.refused.is_some())),
                Unit::Count,
            );
        }
        let counts = Counts::of(results);
        let dims = [("Region", self.primary.region())];
        metrics.put(&dims, "SnapshotsDeleted", counts.done as f64, Unit::Count);
        metrics.put(&dims, "DeleteFailed", counts.failed as f64, Unit::Count);
        metrics.emit();
    }
}

/// The outcome of `deletion` if it goes as planned.
fn outcome_of(deletion: &Deletion<'_>) -> ItemOutcome {
    ItemOutcome {
        database: deletion.group.database.clone(),
        kind: deletion.group.kind,
        region: deletion.group.region.clone(),
        action: "delete-snapshot".into(),
        status: ItemStatus::Done,
        resource: Some(deletion.snapshot.clone()),
        detail: None,
        next_step: None,
    }
}
