//! The failover function: a confirmed CloudWatch alarm (or an operator) makes the plan's DR database ready, checks
//! it, and points the application's Route 53 names at it; with approval, drills and failback.
//!
//! - A "CloudWatch Alarm State Change" (EventBridge, or the alarm's direct Lambda action) of an alarm a plan names
//!   is re-read (`DescribeAlarms`); still in ALARM, a run is proposed: in `approval` mode the on-call person gets
//!   one message with what will happen, the data lost and the command to approve; in `automatic` mode it acts,
//!   unless the data lost would exceed the RPO.
//! - `{"action":"failover","plan":..}` proposes a failover by hand; `{"action":"approve","token":..}` approves
//!   (`accept_data_loss`, `ignore_checks`); `{"action":"cancel","plan":..}` withdraws a request;
//!   `{"action":"drill","plan":..}` runs a failover drill on a drill record; `{"action":"failback","plan":..}`
//!   proposes the way back; `{"action":"status"}` says where each plan's application database is.
//! - The schedule (every minute) advances every run and starts drills that are due.
//!
//! State lives in one object per plan (`failover/<plan>.json` in the reports bucket), written only if unchanged
//! since read, and in the tags of the databases made. Every step is idempotent.

use aws_lambda_events::event::cloudwatch_alarms::{CloudWatchAlarm, CloudWatchAlarmData};
use chrono::{DateTime, TimeDelta, Utc};
use lambda_runtime::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::info;

use lifeboat::aws::AwsError;
use lifeboat::aws::cloudwatch::{AlarmState, CloudWatch};
use lifeboat::aws::kms::Kms;
use lifeboat::aws::rds::{Rds, ReplicaSpec, RestoreSource, RestoreSpec};
use lifeboat::aws::route53::{self, Route53};
use lifeboat::aws::secrets::Secrets;
use lifeboat::failover::{
    self, Action, Approval, Kind, Network, Observed, Phase, RecoveryPoint, Run, Situation, Step,
    Trigger, dns, human, token_digest,
};
use lifeboat::input::{self, Incoming};
use lifeboat::lambda::HandlerError;
use lifeboat::ledger::{LedgerRecord, Phase as LedgerPhase, RECORD_SCHEMA, RunLedger};
use lifeboat::metrics::{Metrics, Unit};
use lifeboat::model::{Database, DatabaseKind};
use lifeboat::policy::{Failover, FailoverMode, Plan};
use lifeboat::restore::engine::{CheckSettings, RestoreEngine, failure_class};
use lifeboat::restore::{FailureClass, Phase as RestorePhase, Restoration, tag_time};
use lifeboat::services::Services;
use lifeboat::state::{StateStore, StateWriteError};
use lifeboat::tags;

/// Name of this function in ledger records, metrics and notifications.
pub const FUNCTION: &str = "failover";

/// The manual actions this function performs.
pub const ACTIONS: [&str; 6] = [
    "failover", "approve", "cancel", "drill", "failback", "status",
];

/// EventBridge detail type of alarm state changes.
pub const ALARM_EVENT: &str = "CloudWatch Alarm State Change";

/// Failed attempts of one step in a row after which the on-call person is told.
const STUCK_AFTER: u32 = 3;

/// `notified` entry: the run was announced stuck.
const STUCK: &str = "stuck";

/// Steps one invocation takes at most (each is one idempotent AWS action); the schedule takes the rest.
const MAX_STEPS: usize = 24;

/// The state object of a plan.
pub fn state_key(plan: &str) -> String {
    format!("failover/{plan}.json")
}

/// What the function keeps per plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanState {
    /// The run in progress (at most one per plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<Run>,
    /// Finished runs, newest last (at most [`failover::HISTORY`]).
    #[serde(default)]
    pub history: Vec<Run>,
    /// Where the application's database is now: `None` while in the primary region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<Serving>,
    /// When the last failover drill started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drill_at: Option<DateTime<Utc>>,
    /// Alarms whose failover could not even be proposed, by the time they went into ALARM: announced once.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub refused: std::collections::BTreeMap<String, DateTime<Utc>>,
}

/// The application's database after a failover (or a failback to a new primary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Serving {
    /// Its region.
    pub region: String,
    /// Its identifier.
    pub database: String,
    /// Instance or cluster.
    pub kind: DatabaseKind,
    /// The action that put it there.
    pub action: Action,
}

/// A manual request (see the module docs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// One of [`ACTIONS`].
    pub action: String,
    /// The plan (required by `failover`, `cancel`, `drill`, `failback`).
    #[serde(default)]
    pub plan: Option<String>,
    /// `approve`: the one-time token from the approval request.
    #[serde(default)]
    pub token: Option<String>,
    /// `approve`: accept the data loss the request stated (needed when it exceeds the RPO or writes may be lost).
    #[serde(default)]
    pub accept_data_loss: bool,
    /// `approve`: switch the names even if the plan's checks fail.
    #[serde(default)]
    pub ignore_checks: bool,
    /// Why (an incident reference).
    #[serde(default)]
    pub reason: Option<String>,
    /// Who asks (the CLI sends the caller's ARN).
    #[serde(default)]
    pub requested_by: Option<String>,
}

/// One plan's situation, as the function's answer reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanStatus {
    /// The plan.
    pub plan: String,
    /// The application's database.
    pub database: String,
    /// Where it is now.
    pub serving_region: String,
    /// Its identifier there.
    pub serving_database: String,
    /// The run in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<Run>,
    /// The last finished run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Run>,
    /// What each of the application's names answers with now (Route 53's records as Lifeboat reads them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolves_to: Vec<(String, String)>,
}

/// The function's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailoverReport {
    /// The invocation (Lambda request ID).
    pub run_id: String,
    /// `alarm`, `schedule` or `manual`.
    pub trigger: String,
    /// What this invocation did, in words.
    pub actions: Vec<String>,
    /// Each plan concerned.
    pub plans: Vec<PlanStatus>,
    /// Problems with the invocation itself (the next one retries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub run_errors: Vec<String>,
}

/// Everything the handler needs, built once per container.
pub struct FailoverFunction {
    /// Policy, ledger, alert topic, clock.
    pub services: Services,
    /// RDS in the primary region.
    pub primary: Rds,
    /// RDS in each DR region.
    pub dr_regions: Vec<Rds>,
    /// Route 53 (its control plane).
    pub route53: Route53,
    /// CloudWatch of the regions alarms may come from (the function's, and us-east-1 for Route 53 health checks).
    pub alarms: Vec<CloudWatch>,
    /// KMS of each DR region (the copies' keys).
    pub kms: Vec<Kms>,
    /// Where the credentials of restored databases live.
    pub secrets: Secrets,
    /// How the plan's checks connect.
    pub checks: CheckSettings,
    /// The per-plan state objects.
    pub state: StateStore,
}

/// What an invocation asks.
enum Ask {
    /// Advance every run; start drills that are due.
    Schedule,
    /// An alarm changed state.
    Alarm {
        name: String,
        state: AlarmState,
        at: DateTime<Utc>,
    },
    /// An operator's request.
    Manual(Request),
}

/// One plan's state as read, with its version.
struct Loaded {
    state: PlanState,
    etag: Option<String>,
}

impl FailoverFunction {
    /// Handle one invocation.
    pub async fn handle(
        &self,
        payload: Value,
        context: &Context,
    ) -> Result<FailoverReport, HandlerError> {
        let ask = ask_of(payload)?;
        let trigger = match &ask {
            Ask::Schedule => "schedule",
            Ask::Alarm { .. } => "alarm",
            Ask::Manual(_) => "manual",
        };
        let mut report = FailoverReport {
            run_id: context.request_id.clone(),
            trigger: trigger.into(),
            actions: Vec::new(),
            plans: Vec::new(),
            run_errors: Vec::new(),
        };
        let mut ledger = self
            .services
            .run_ledger(FUNCTION, &context.request_id, trigger);
        let plans = self.plans_concerned(&ask)?;
        for plan in plans {
            let settings = plan
                .failover
                .as_ref()
                .expect("plans_concerned keeps failover plans");
            let mut loaded = self.load(&plan.name).await.map_err(|e| {
                HandlerError::Retryable(format!(
                    "failover state of plan {} unreadable: {e}",
                    plan.name
                ))
            })?;
            let now = self.services.clock.now();
            match &ask {
                Ask::Manual(request) => {
                    Box::pin(self.apply_request(
                        plan,
                        settings,
                        request,
                        &mut loaded,
                        &mut report,
                        now,
                    ))
                    .await?;
                }
                Ask::Alarm { name, state, at } => {
                    Box::pin(self.apply_alarm(
                        plan,
                        settings,
                        (name, *state, *at),
                        &mut loaded,
                        &mut report,
                        now,
                    ))
                    .await?;
                }
                Ask::Schedule => {
                    if let Err(e) =
                        Box::pin(self.poll_alarms(plan, settings, &mut loaded, &mut report, now))
                            .await
                    {
                        report.run_errors.push(format!("plan {}: {e}", plan.name));
                    }
                    Box::pin(self.start_due_drill(plan, settings, &mut loaded, &mut report, now))
                        .await;
                    Box::pin(self.sweep_drills(
                        plan,
                        settings,
                        &loaded,
                        &mut report,
                        &mut ledger,
                        now,
                    ))
                    .await;
                }
            }
            if !matches!(&ask, Ask::Manual(r) if r.action == "status") {
                Box::pin(self.advance(plan, settings, &mut loaded, &mut report, &mut ledger)).await;
            }
            report
                .plans
                .push(self.status_of(plan, settings, &loaded.state).await);
        }
        if let Err(e) = ledger.finish().await {
            report.run_errors.push(e.to_string());
        }
        info!(actions = ?report.actions, "failover run finished");
        Ok(report)
    }

    /// The plans an invocation concerns: the one named, the ones naming the alarm, or every failover plan.
    fn plans_concerned(&self, ask: &Ask) -> Result<Vec<&Plan>, HandlerError> {
        let policy = &self.services.policy;
        let with_failover = || policy.plans.iter().filter(|p| p.failover.is_some());
        match ask {
            Ask::Alarm { name, .. } => Ok(with_failover()
                .filter(|p| {
                    p.failover
                        .as_ref()
                        .is_some_and(|f| f.alarms.iter().any(|a| a == name))
                })
                .collect()),
            Ask::Manual(request) => match (&request.plan, request.action.as_str()) {
                (Some(name), _) => {
                    let plan = policy.plan_named(name).ok_or_else(|| {
                        HandlerError::InvalidInput(format!(
                            "no plan `{name}` in policy `{}`",
                            policy.name
                        ))
                    })?;
                    if plan.failover.is_none() {
                        return Err(HandlerError::InvalidInput(format!(
                            "plan `{name}` has no failover section"
                        )));
                    }
                    Ok(vec![plan])
                }
                (None, "approve" | "status") => Ok(with_failover().collect()),
                (None, action) => Err(HandlerError::InvalidInput(format!(
                    "`{action}` needs \"plan\": one of {}",
                    with_failover()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            },
            Ask::Schedule => Ok(with_failover().collect()),
        }
    }

    async fn load(&self, plan: &str) -> Result<Loaded, String> {
        match self.state.read::<PlanState>(&state_key(plan)).await {
            Ok(None) => Ok(Loaded {
                state: PlanState::default(),
                etag: None,
            }),
            Ok(Some(stored)) => Ok(Loaded {
                // A state that cannot be read is never replaced: a run in progress would be forgotten.
                state: stored.value?,
                etag: Some(stored.etag),
            }),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Write the plan's state; `false` when another invocation wrote it first (it carries on; this one stops).
    async fn save(&self, plan: &str, loaded: &mut Loaded, report: &mut FailoverReport) -> bool {
        match self
            .state
            .write(&state_key(plan), &loaded.state, loaded.etag.as_deref())
            .await
        {
            Ok(etag) => {
                loaded.etag = Some(etag);
                true
            }
            Err(StateWriteError::Conflict) => {
                report.actions.push(format!(
                    "plan {plan}: another invocation advanced it at the same time; this one stopped"
                ));
                false
            }
            Err(StateWriteError::Aws(e)) => {
                report
                    .run_errors
                    .push(format!("failover state of plan {plan} not written: {e}"));
                false
            }
        }
    }

    fn dr(&self, region: &str) -> Option<&Rds> {
        self.dr_regions.iter().find(|r| r.region() == region)
    }

    /// RDS of the region a run's new database is made in.
    fn target_rds(&self, run: &Run) -> Result<&Rds, String> {
        if run.to_region == self.primary.region() {
            return Ok(&self.primary);
        }
        self.dr(&run.to_region).ok_or_else(|| {
            format!(
                "the function has no RDS client for {} (add it to the deployment's DR regions)",
                run.to_region
            )
        })
    }

    // ---------------------------------------------------------------------------------------------------------
    // Requests and alarms: they create, approve or cancel runs. Nothing changes in AWS here.

    async fn apply_request(
        &self,
        plan: &Plan,
        settings: &Failover,
        request: &Request,
        loaded: &mut Loaded,
        report: &mut FailoverReport,
        now: DateTime<Utc>,
    ) -> Result<(), HandlerError> {
        let by = request
            .requested_by
            .clone()
            .unwrap_or_else(|| "an operator (unnamed)".into());
        match request.action.as_str() {
            "status" => Ok(()),
            "failover" | "failback" | "drill" => {
                let kind = match request.action.as_str() {
                    "failover" => Kind::Failover,
                    "failback" => Kind::Failback,
                    _ => Kind::Drill,
                };
                if let Some(active) = &loaded.state.active {
                    return Err(HandlerError::InvalidInput(format!(
                        "plan {} already has a {} in progress ({}, {}): finish or cancel it first",
                        plan.name,
                        active.kind.as_str(),
                        active.id,
                        active.phase.as_str()
                    )));
                }
                let trigger = Trigger::Manual {
                    requested_by: by.clone(),
                };
                let run =
                    Box::pin(self.propose_run(plan, settings, kind, trigger, now, &loaded.state))
                        .await?;
                self.open(plan, settings, run, loaded, report, now, false)
                    .await;
                Ok(())
            }
            "cancel" => {
                let Some(run) = loaded.state.active.as_mut() else {
                    return Err(HandlerError::InvalidInput(format!(
                        "plan {} has nothing in progress to cancel",
                        plan.name
                    )));
                };
                // Before approval nothing has changed: withdrawn. A drill is cleaned up. Anything else is stopped
                // where it is (nothing is undone) and the end message lists what was done.
                let outcome = match (run.phase, run.kind) {
                    (Phase::AwaitingApproval, _) => {
                        run.end(Phase::Cancelled, format!("cancelled by {by}"), now);
                        "withdrawn"
                    }
                    (Phase::CleaningUp, _) => {
                        return Err(HandlerError::InvalidInput(format!(
                            "drill {} is being cleaned up already",
                            run.id
                        )));
                    }
                    (_, Kind::Drill) => {
                        run.note(now, format!("stopped by {by}: cleaning up"));
                        run.phase = Phase::CleaningUp;
                        "stopped; its database and record are being removed"
                    }
                    _ => {
                        run.end(
                            Phase::Failed,
                            format!(
                                "stopped by {by} while {}: nothing done so far is undone",
                                run.phase.as_str()
                            ),
                            now,
                        );
                        "stopped"
                    }
                };
                report.actions.push(format!(
                    "plan {}: {} {} {outcome}",
                    plan.name,
                    run.kind.as_str(),
                    run.id
                ));
                self.save(&plan.name, loaded, report).await;
                Ok(())
            }
            "approve" => self.approve(plan, request, &by, loaded, report, now).await,
            other => Err(input::unknown_action(other, &ACTIONS)),
        }
    }

    /// Approve the run whose token this is (plans without it are left alone).
    #[allow(clippy::too_many_arguments)]
    async fn approve(
        &self,
        plan: &Plan,
        request: &Request,
        by: &str,
        loaded: &mut Loaded,
        report: &mut FailoverReport,
        now: DateTime<Utc>,
    ) -> Result<(), HandlerError> {
        let token = request.token.as_deref().ok_or_else(|| {
            HandlerError::InvalidInput(
                "`approve` needs \"token\" (from the approval request)".into(),
            )
        })?;
        let digest = token_digest(token);
        let Some(run) = loaded.state.active.as_mut() else {
            return self.already_answered(plan, &digest, loaded, report);
        };
        let mine = [run.approval.as_ref(), run.cutover.as_ref()]
            .into_iter()
            .flatten()
            .any(|a| a.token_digest == digest);
        if !mine {
            return self.already_answered(plan, &digest, loaded, report);
        }
        // A repeated approval (a retry after a lost answer) reports where the run is.
        let cutover = run.phase == Phase::AwaitingCutover;
        if !cutover && run.phase != Phase::AwaitingApproval {
            report.actions.push(format!(
                "{} {} was already approved; it is {}",
                run.kind.as_str(),
                run.id,
                run.phase.as_str()
            ));
            return Ok(());
        }
        run.accepts(&digest, now)
            .map_err(HandlerError::InvalidInput)?;
        if !cutover && run.proposal.loss.needs_acceptance && !request.accept_data_loss {
            return Err(HandlerError::InvalidInput(format!(
                "{} {} loses data: {}{}. Approve again with accept_data_loss (CLI: --accept-data-loss) to accept \
                 it",
                run.kind.as_str(),
                run.id,
                run.proposal.loss.description,
                if run.proposal.loss.over_rpo {
                    " — more than the plan's RPO"
                } else {
                    ""
                }
            )));
        }
        // The alarm that started it must still be in ALARM: a flapping alarm does not fail over.
        if !cutover && let Trigger::Alarm { name, .. } = &run.trigger {
            let name = name.clone();
            match self.alarm_state(&name).await {
                Ok(Some((AlarmState::Alarm | AlarmState::InsufficientData, _))) => {}
                Ok(state) => {
                    let why = format!(
                        "alarm {name} is {} now: nothing was changed. If the database must move anyway, ask \
                         again: lifeboat failover start --plan {}",
                        state.map_or("unknown to CloudWatch", |(s, _)| s.as_str()),
                        plan.name
                    );
                    run.end(Phase::Cancelled, why.clone(), now);
                    self.save(&plan.name, loaded, report).await;
                    return Err(HandlerError::InvalidInput(why));
                }
                Err(e) => {
                    return Err(HandlerError::Retryable(format!(
                        "alarm {name} could not be re-read ({e}): not approved; approve again"
                    )));
                }
            }
        }
        let approval = if cutover {
            run.cutover.as_mut()
        } else {
            run.approval.as_mut()
        }
        .expect("accepts() found it");
        approval.approved_by = Some(by.to_string());
        approval.approved_at = Some(now);
        approval.accepted_data_loss = request.accept_data_loss;
        if request.ignore_checks {
            run.note(now, "approved to switch even if the checks fail");
            run.checks
                .push("ignore-checks: approved by the operator".into());
        }
        if !cutover {
            run.phase = Phase::Preparing;
        }
        run.note(
            now,
            format!(
                "{} approved by {by}",
                if cutover { "cutover" } else { "run" }
            ),
        );
        report.actions.push(format!(
            "plan {}: {} {} {} approved by {by}",
            plan.name,
            run.kind.as_str(),
            run.id,
            if cutover { "cutover" } else { "run" }
        ));
        self.save(&plan.name, loaded, report).await;
        Ok(())
    }

    /// An approval for no run in progress: one already finished (a retry) is reported, an unknown token refused.
    fn already_answered(
        &self,
        plan: &Plan,
        digest: &str,
        loaded: &Loaded,
        report: &mut FailoverReport,
    ) -> Result<(), HandlerError> {
        if let Some(done) = loaded.state.history.iter().rev().find(|r| {
            [r.approval.as_ref(), r.cutover.as_ref()]
                .into_iter()
                .flatten()
                .any(|a| a.token_digest == digest)
        }) {
            report.actions.push(format!(
                "{} {} of plan {} already ended: {}",
                done.kind.as_str(),
                done.id,
                plan.name,
                done.outcome.as_deref().unwrap_or(done.phase.as_str())
            ));
            return Ok(());
        }
        let other_plans = self
            .services
            .policy
            .plans
            .iter()
            .filter(|p| p.failover.is_some())
            .count();
        if other_plans > 1 {
            // Another plan's run may hold it: that plan's turn answers.
            return Ok(());
        }
        Err(HandlerError::InvalidInput(
            "no request awaits approval with this token (mistyped, or from another deployment)"
                .into(),
        ))
    }

    async fn apply_alarm(
        &self,
        plan: &Plan,
        settings: &Failover,
        (name, state, at): (&str, AlarmState, DateTime<Utc>),
        loaded: &mut Loaded,
        report: &mut FailoverReport,
        now: DateTime<Utc>,
    ) -> Result<(), HandlerError> {
        // An alarm that clears while its request awaits approval withdraws the request (once re-read as OK).
        if let Some(run) = loaded.state.active.as_mut() {
            let started_it = matches!(&run.trigger, Trigger::Alarm { name: n, .. } if n == name);
            // INSUFFICIENT_DATA is no all-clear: a dead database often stops sending the alarm's metric.
            if state == AlarmState::Ok && started_it && run.phase == Phase::AwaitingApproval {
                match self.alarm_state(name).await {
                    Ok(Some((AlarmState::Alarm | AlarmState::InsufficientData, _))) => {}
                    Ok(current) => {
                        run.end(
                            Phase::Cancelled,
                            format!(
                                "alarm {name} returned to {} before approval: nothing was changed",
                                current.map_or("an unknown state", |(s, _)| s.as_str())
                            ),
                            now,
                        );
                        report
                            .actions
                            .push(format!("plan {}: request {} withdrawn", plan.name, run.id));
                        self.save(&plan.name, loaded, report).await;
                    }
                    Err(e) => report
                        .run_errors
                        .push(format!("alarm {name} not re-read: {e}")),
                }
            } else if state == AlarmState::Alarm
                && run.kind == Kind::Drill
                && run.phase != Phase::CleaningUp
                && matches!(
                    self.alarm_state(name).await,
                    Ok(Some((AlarmState::Alarm, _)))
                )
            {
                // A real incident beats a drill: the drill is cleaned up at once, and the schedule proposes the
                // failover as soon as the drill's database is gone.
                run.note(now, format!("interrupted by alarm {name}: cleaning up"));
                run.phase = Phase::CleaningUp;
                let subject = format!(
                    "Lifeboat: failover drill of {} interrupted by alarm {name}",
                    run.database
                );
                let body = format!(
                    "Alarm {name} went into ALARM during failover drill {} of plan {}. The drill is being cleaned up; \
                     the failover request follows within minutes (or now: lifeboat failover start --plan {}).\n",
                    run.id, plan.name, plan.name
                );
                if let Err(e) = self.services.notifier.publish_text(&subject, &body).await {
                    report.run_errors.push(format!("not announced: {e}"));
                }
                report.actions.push(format!(
                    "plan {}: drill {} interrupted by alarm {name}",
                    plan.name, run.id
                ));
                self.save(&plan.name, loaded, report).await;
            } else if state == AlarmState::Alarm {
                report.actions.push(format!(
                    "plan {}: alarm {name} in ALARM, {} {} already {}",
                    plan.name,
                    run.kind.as_str(),
                    run.id,
                    run.phase.as_str()
                ));
            }
            return Ok(());
        }
        if state != AlarmState::Alarm {
            return Ok(());
        }
        // One request per time the alarm went into ALARM (its state-change time names the episode): a request that
        // was cancelled, expired or failed is not asked again every minute while the alarm stays there (the
        // operator starts one by hand if needed).
        if let Some(handled) = loaded.state.history.iter().rev().find(|r| {
            matches!(&r.trigger, Trigger::Alarm { name: n, at: since } if n == name && *since >= at)
        }) {
            report.actions.push(format!(
                "plan {}: alarm {name} in ALARM since {}: already handled by {} ({})",
                plan.name,
                tag_time(at),
                handled.id,
                handled.phase.as_str()
            ));
            return Ok(());
        }
        if let Some(serving) = &loaded.state.serving
            && serving.region == settings.region
        {
            report.actions.push(format!(
                "plan {}: alarm {name} in ALARM, but the application already runs in {} (fail back first)",
                plan.name, settings.region
            ));
            return Ok(());
        }
        // Re-read: an alarm that has cleared since the event does not fail over. The event's time of the state
        // change starts the measured recovery time.
        match self.alarm_state(name).await {
            Ok(Some((AlarmState::Alarm, _))) => {}
            Ok(current) => {
                report.actions.push(format!(
                    "plan {}: alarm {name} is {} when re-read: nothing done",
                    plan.name,
                    current.map_or("unknown to CloudWatch", |(s, _)| s.as_str())
                ));
                return Ok(());
            }
            Err(e) => {
                return Err(HandlerError::Retryable(format!(
                    "alarm {name} could not be re-read ({e}): nothing done; the event is retried"
                )));
            }
        }
        let trigger = Trigger::Alarm {
            name: name.to_string(),
            at,
        };
        match Box::pin(self.propose_run(
            plan,
            settings,
            Kind::Failover,
            trigger,
            now,
            &loaded.state,
        ))
        .await
        {
            Ok(run) => {
                let automatic = settings.mode == FailoverMode::Automatic;
                self.open(plan, settings, run, loaded, report, now, automatic)
                    .await;
                Ok(())
            }
            Err(HandlerError::InvalidInput(why)) => {
                // The alarm is real but nothing can be done: the on-call person must hear why, once per alarm.
                if loaded
                    .state
                    .refused
                    .get(name)
                    .is_some_and(|since| *since >= at)
                {
                    report.actions.push(format!(
                        "plan {}: alarm {name}: {why} (announced already)",
                        plan.name
                    ));
                    return Ok(());
                }
                let subject = format!(
                    "Lifeboat: cannot fail over {} ({})",
                    settings.database, plan.name
                );
                let body = format!(
                    "Alarm {name} is in ALARM, but Lifeboat cannot fail {} over to {}:\n{why}\n\nFix the above, \
                     then: lifeboat failover start --plan {}",
                    settings.database, settings.region, plan.name
                );
                match self.services.notifier.publish_text(&subject, &body).await {
                    Ok(_) => {
                        loaded.state.refused.insert(name.to_string(), at);
                        self.save(&plan.name, loaded, report).await;
                    }
                    Err(e) => report.run_errors.push(format!("not announced: {e}")),
                }
                report.actions.push(format!("plan {}: {why}", plan.name));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Record a new run: awaiting approval (with its request sent), or approved at once (automatic mode within
    /// the RPO, or a drill).
    #[allow(clippy::too_many_arguments)]
    async fn open(
        &self,
        plan: &Plan,
        settings: &Failover,
        mut run: Run,
        loaded: &mut Loaded,
        report: &mut FailoverReport,
        now: DateTime<Utc>,
        automatic: bool,
    ) {
        let token = new_token();
        let at_once = run.kind == Kind::Drill || (automatic && !run.proposal.loss.needs_acceptance);
        run.approval = Some(Approval {
            token_digest: token_digest(&token),
            expires_at: now + to_delta(settings.approval_expires),
            approved_by: at_once.then(|| match run.kind {
                Kind::Drill => "drill (no production change)".to_string(),
                _ => "automatic mode".to_string(),
            }),
            approved_at: at_once.then_some(now),
            accepted_data_loss: false,
        });
        run.phase = if at_once {
            Phase::Preparing
        } else {
            Phase::AwaitingApproval
        };
        if run.kind == Kind::Drill {
            loaded.state.last_drill_at = Some(now);
        }
        report.actions.push(format!(
            "plan {}: {} {} {}",
            plan.name,
            run.kind.as_str(),
            run.id,
            if at_once {
                "started"
            } else {
                "awaits approval"
            }
        ));
        let id = run.id.clone();
        let request = (!at_once).then(|| approval_request(plan, settings, &run, &token));
        loaded.state.active = Some(run);
        if !self.save(&plan.name, loaded, report).await {
            return;
        }
        if let Some((subject, body)) = request {
            // The token exists only in this message: a failed publish withdraws the request (nothing changed).
            match self.services.notifier.publish_text(&subject, &body).await {
                Ok(_) => {
                    if let Some(run) = loaded.state.active.as_mut() {
                        run.notified.push("approval".into());
                    }
                }
                Err(e) => {
                    report.run_errors.push(format!(
                        "approval request of {id} not sent ({e}): the request is withdrawn; nothing changed"
                    ));
                    if let Some(run) = loaded.state.active.as_mut() {
                        run.end(
                            Phase::Cancelled,
                            format!("approval request not sent: {e}"),
                            now,
                        );
                    }
                }
            }
            self.save(&plan.name, loaded, report).await;
        }
    }

    /// What a run of `kind` would do now, read from both regions.
    async fn propose_run(
        &self,
        plan: &Plan,
        settings: &Failover,
        kind: Kind,
        trigger: Trigger,
        now: DateTime<Utc>,
        state: &PlanState,
    ) -> Result<Run, HandlerError> {
        let primary_region = self.primary.region().to_string();
        let dr = self.dr(&settings.region).ok_or_else(|| {
            HandlerError::InvalidInput(format!(
                "the deployment has no access to {} (add it to LIFEBOAT_DR_REGIONS)",
                settings.region
            ))
        })?;
        match (kind, &state.serving) {
            (Kind::Failback, None) => {
                return Err(HandlerError::InvalidInput(format!(
                    "the application's database of plan {} is in {primary_region} already: nothing to fail back",
                    plan.name
                )));
            }
            (Kind::Failover | Kind::Drill, Some(serving)) if serving.region != primary_region => {
                return Err(HandlerError::InvalidInput(format!(
                    "the application's database of plan {} runs in {} after a failover: fail back first",
                    plan.name, serving.region
                )));
            }
            _ => {}
        }
        let to_region = if kind == Kind::Failback {
            primary_region.clone()
        } else {
            settings.region.clone()
        };
        let source_name = match &state.serving {
            Some(serving) if serving.region == primary_region => serving.database.clone(),
            _ => settings.database.clone(),
        };
        // The primary may be unreadable (its region down): that is a fact for the plan, not an error.
        let primary_dbs = self.primary.list_databases().await;
        let primary = primary_dbs
            .as_ref()
            .ok()
            .and_then(|dbs| dbs.iter().find(|d| d.identifier == source_name).cloned());
        if let Some(db) = &primary
            && self.services.policy.plan_for(db).map(|p| &p.name) != Some(&plan.name)
        {
            return Err(HandlerError::InvalidInput(format!(
                "plan {} does not select {}: its failover section names a database another plan covers",
                plan.name, db.identifier
            )));
        }
        let dr_dbs = dr.list_databases().await.map_err(|e| {
            HandlerError::Retryable(format!("databases in {} unreadable: {e}", settings.region))
        })?;
        let serving_db = state.serving.as_ref().and_then(|s| {
            dr_dbs
                .iter()
                .find(|d| d.identifier == s.database && d.region == s.region)
                .cloned()
        });
        let global = match primary.as_ref().filter(|p| p.kind == DatabaseKind::Cluster) {
            Some(p) => dr.global_database_of(&p.arn).await.map_err(retryable)?,
            None => None,
        };
        let replicas = if kind == Kind::Failover {
            dr.replicas_of(&source_name, &primary_region)
                .await
                .map_err(retryable)?
        } else {
            Vec::new()
        };
        let copies: Vec<_> = dr
            .list_snapshots()
            .await
            .map_err(retryable)?
            .into_iter()
            .filter(|s| s.database == source_name && self.services.deployment.owns(&s.tags))
            .collect();
        let replicated = match &primary {
            Some(p) if p.kind == DatabaseKind::Instance => {
                dr.replicated_backup_of(&p.arn).await.map_err(retryable)?
            }
            _ => None,
        };
        let settings_of_source = match &primary {
            Some(p) => self
                .primary
                .source_settings(p.kind, &p.identifier)
                .await
                .ok(),
            None => None,
        };
        // The network: the failover section's, else the drills' of that region.
        let verification = plan.verification.as_ref();
        let (subnet_group, security_groups): (Option<&str>, &[String]) = if kind == Kind::Failback {
            (
                verification.map(|v| v.subnet_group.as_str()),
                verification.map_or(&[][..], |v| v.security_groups.as_slice()),
            )
        } else {
            let drill = verification.map(|v| v.network_in(Some(&settings.region)));
            (
                settings.subnet_group.as_deref().or(drill.map(|d| d.0)),
                if settings.security_groups.is_empty() {
                    drill.map_or(&[][..], |d| d.1)
                } else {
                    settings.security_groups.as_slice()
                },
            )
        };
        let source_group = settings_of_source
            .as_ref()
            .and_then(|s| s.parameter_group.clone());
        let group_there = match &source_group {
            Some(group) => {
                let target = if kind == Kind::Failback {
                    &self.primary
                } else {
                    dr
                };
                let kind = primary.as_ref().map_or(DatabaseKind::Instance, |p| p.kind);
                target
                    .parameter_group_exists(kind, group)
                    .await
                    .map_err(retryable)?
                    .then_some(group.clone())
            }
            None => None,
        };
        let mut missing = Vec::new();
        if kind != Kind::Failback
            && let Some(copy) = plan.copies.iter().find(|c| c.region == settings.region)
            && let Some(kms) = self.kms.iter().find(|k| k.region() == settings.region)
            && let Some(problem) = kms.key_problem(&copy.kms_key_id).await.map_err(retryable)?
        {
            missing.push(problem);
        }
        let engine = primary.as_ref().map(|p| p.engine.clone()).or_else(|| {
            copies
                .first()
                .and_then(|c| c.engine.as_deref().map(str::to_string))
        });
        let instance_class = settings_of_source
            .as_ref()
            .and_then(|s| s.instance_class.clone());
        let failed_over_with = state.serving.as_ref().map(|s| &s.action);
        let replicated = replicated.and_then(|(arn, earliest, latest)| {
            latest.map(|latest| (arn, lifeboat::restore::adhoc::Window { earliest, latest }))
        });
        let situation = Situation {
            kind,
            settings,
            objectives: &plan.objectives,
            primary_region: &primary_region,
            now,
            primary: primary.as_ref(),
            incident: matches!(trigger, Trigger::Alarm { .. }),
            global: global.as_ref(),
            replicas: &replicas,
            copies: &copies,
            replicated: replicated.as_ref().map(|(arn, w)| (arn.as_str(), *w)),
            engine: engine.as_deref(),
            instance_class: instance_class.as_deref(),
            network: Network {
                subnet_group,
                security_groups,
            },
            serving: serving_db.as_ref(),
            failed_over_with,
            missing,
            source_parameter_group: source_group.as_deref(),
            parameter_group: group_there.as_deref(),
        };
        let proposal = failover::propose(&situation).map_err(|reasons| {
            HandlerError::InvalidInput(format!(
                "{} of plan {} cannot be done: {}",
                kind.as_str(),
                plan.name,
                reasons.join("; ")
            ))
        })?;
        let (from_region, database) = match kind {
            Kind::Failback => (
                settings.region.clone(),
                state
                    .serving
                    .as_ref()
                    .map_or(settings.database.clone(), |s| s.database.clone()),
            ),
            _ => (primary_region.clone(), source_name),
        };
        let detected_at = match &trigger {
            Trigger::Alarm { at, .. } => *at,
            _ => now,
        };
        Ok(Run {
            id: format!("{}-{}", run_prefix(kind), now.format("%Y%m%dT%H%M%SZ")),
            kind,
            plan: plan.name.clone(),
            database,
            from_region,
            to_region,
            trigger,
            detected_at,
            mode: settings.mode,
            proposal,
            approval: None,
            cutover: None,
            phase: Phase::AwaitingApproval,
            acted_at: None,
            ready_at: None,
            endpoint: None,
            checks: Vec::new(),
            checks_passed: None,
            dns_change: None,
            dns_submitted_at: None,
            dns_in_sync_at: None,
            old_primary: None,
            rto_seconds: None,
            rpo_seconds: None,
            outcome: None,
            notified: Vec::new(),
            failures: 0,
            history: vec![(now, "proposed".to_string())],
            ended_at: None,
        })
    }

    /// The schedule's look at the plan's alarms: an alarm whose state-change event never arrived (a Route 53
    /// health-check alarm lives in us-east-1, and EventBridge delivers its events there only) is acted on as if
    /// the event had come, once no run is in progress and the database is in the primary region.
    async fn poll_alarms(
        &self,
        plan: &Plan,
        settings: &Failover,
        loaded: &mut Loaded,
        report: &mut FailoverReport,
        now: DateTime<Utc>,
    ) -> Result<(), HandlerError> {
        let primary_serving = loaded
            .state
            .serving
            .as_ref()
            .is_none_or(|s| s.region == self.primary.region());
        if settings.alarms.is_empty() || loaded.state.active.is_some() || !primary_serving {
            return Ok(());
        }
        let mut firing = None;
        for cloudwatch in &self.alarms {
            match cloudwatch.alarms(&settings.alarms).await {
                Ok(readings) => {
                    if let Some(alarm) = readings.into_iter().find(|a| a.state == AlarmState::Alarm)
                    {
                        firing = Some(alarm);
                        break;
                    }
                }
                Err(e) => report
                    .run_errors
                    .push(format!("alarms of plan {} not read: {e}", plan.name)),
            }
        }
        match firing {
            Some(alarm) => {
                Box::pin(self.apply_alarm(
                    plan,
                    settings,
                    (&alarm.name, AlarmState::Alarm, alarm.updated_at),
                    loaded,
                    report,
                    now,
                ))
                .await
            }
            None => Ok(()),
        }
    }

    /// Start a failover drill of a plan whose `drill_every` has passed since the last one.
    async fn start_due_drill(
        &self,
        plan: &Plan,
        settings: &Failover,
        loaded: &mut Loaded,
        report: &mut FailoverReport,
        now: DateTime<Utc>,
    ) {
        let Some(every) = settings.drill_every else {
            return;
        };
        let due = loaded
            .state
            .last_drill_at
            .is_none_or(|last| now - last >= to_delta(every));
        let primary_serving = loaded
            .state
            .serving
            .as_ref()
            .is_none_or(|s| s.region == self.primary.region());
        if !due || loaded.state.active.is_some() || !primary_serving {
            return;
        }
        match Box::pin(self.propose_run(
            plan,
            settings,
            Kind::Drill,
            Trigger::Schedule,
            now,
            &loaded.state,
        ))
        .await
        {
            Ok(run) => {
                self.open(plan, settings, run, loaded, report, now, false)
                    .await
            }
            Err(e) => report.run_errors.push(format!(
                "scheduled failover drill of plan {} not started: {e}",
                plan.name
            )),
        }
    }

    /// Delete drill databases this deployment left behind (a run forgotten after a crash): every failover-drill
    /// database of the plan's DR region that is not the active run's.
    async fn sweep_drills(
        &self,
        plan: &Plan,
        settings: &Failover,
        loaded: &Loaded,
        report: &mut FailoverReport,
        ledger: &mut RunLedger<'_>,
        now: DateTime<Utc>,
    ) {
        let Some(dr) = self.dr(&settings.region) else {
            return;
        };
        let active = loaded
            .state
            .active
            .as_ref()
            .map(|r| r.proposal.target.as_str());
        let databases = match dr.list_databases().await {
            Ok(dbs) => dbs,
            Err(e) => {
                report
                    .run_errors
                    .push(format!("drill sweep in {}: {e}", settings.region));
                return;
            }
        };
        for db in databases.iter().filter(|d| {
            d.tags.contains_key(tags::FAILOVER_DRILL)
                && d.tags.get(tags::PLAN) == Some(&plan.name)
                && self.services.deployment.owns(&d.tags)
                && Some(d.identifier.as_str()) != active
                && d.status != "deleting"
        }) {
            let Some(restoration) = Restoration::from_resource(db) else {
                continue;
            };
            let record = self.record(
                "sweep-drill",
                &settings.region,
                &db.identifier,
                &plan.name,
                now,
            );
            if ledger.intend(vec![record.clone()]).await.is_err() {
                continue;
            }
            let engine = self.engine(dr);
            let result = engine.clean_up(&restoration).await;
            report.actions.push(format!(
                "plan {}: left-over drill database {} {}",
                plan.name,
                db.identifier,
                if result.is_ok() {
                    "deleted"
                } else {
                    "not deleted (retried)"
                }
            ));
            ledger.record(with_result(record, result.err().map(|e| e.to_string())));
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Advancing: one idempotent step at a time, the state saved after each.

    async fn advance(
        &self,
        plan: &Plan,
        settings: &Failover,
        loaded: &mut Loaded,
        report: &mut FailoverReport,
        ledger: &mut RunLedger<'_>,
    ) {
        for _ in 0..MAX_STEPS {
            let now = self.services.clock.now();
            let Some(run) = loaded.state.active.as_mut() else {
                return;
            };
            if run.phase.is_final() {
                self.announce_end(plan, settings, loaded, report).await;
                return;
            }
            let observed = match Box::pin(self.observe(run)).await {
                Ok(observed) => observed,
                Err(e) => {
                    report
                        .run_errors
                        .push(format!("{} {}: {e}", run.kind.as_str(), run.id));
                    return;
                }
            };
            let step = failover::next_step(run, &observed, now);
            if let Step::Wait(what) = &step {
                report.actions.push(format!(
                    "plan {}: {} {} waits for {what}",
                    plan.name,
                    run.kind.as_str(),
                    run.id
                ));
                return;
            }
            match Box::pin(self.take(
                plan, settings, &step, loaded, &observed, report, ledger, now,
            ))
            .await
            {
                Ok(()) => self.unstuck(plan, loaded, report).await,
                Err(e) => {
                    self.stuck(plan, &e, loaded, report).await;
                    report.run_errors.push(e);
                    self.save(&plan.name, loaded, report).await;
                    return;
                }
            }
            if !self.save(&plan.name, loaded, report).await {
                return;
            }
        }
    }

    /// A step failed: counted; at [`STUCK_AFTER`] failures in a row the on-call person is told once, with the
    /// error and what to do.
    async fn stuck(
        &self,
        plan: &Plan,
        error: &str,
        loaded: &mut Loaded,
        report: &mut FailoverReport,
    ) {
        let Some(run) = loaded.state.active.as_mut() else {
            return;
        };
        run.failures += 1;
        if run.failures < STUCK_AFTER || run.was_notified(STUCK) {
            return;
        }
        let subject = format!(
            "Lifeboat: {} of {} is stuck ({})",
            run.kind.as_str(),
            run.database,
            run.phase.as_str()
        );
        let body = format!(
            "{} {} of plan {} failed the same step {} times in a row ({}); it is retried every minute.\n\nLast \
             error: {error}\n\nFix the cause (the error names the call and the region), or stop the run where it \
             is: lifeboat failover cancel --plan {} (nothing done so far is undone).\nStatus: lifeboat failover \
             status --plan {}\n",
            capitalize(run.kind.as_str()),
            run.id,
            plan.name,
            run.failures,
            run.phase.as_str(),
            plan.name,
            plan.name
        );
        match self.services.notifier.publish_text(&subject, &body).await {
            Ok(_) => run.notified.push(STUCK.into()),
            Err(e) => report
                .run_errors
                .push(format!("stuck run not announced: {e}")),
        }
    }

    /// A step succeeded: the failure count starts again, and a run announced stuck is announced moving again.
    async fn unstuck(&self, plan: &Plan, loaded: &mut Loaded, report: &mut FailoverReport) {
        let Some(run) = loaded.state.active.as_mut() else {
            return;
        };
        run.failures = 0;
        if !run.was_notified(STUCK) {
            return;
        }
        let subject = format!(
            "Lifeboat: {} of {} is moving again ({})",
            run.kind.as_str(),
            run.database,
            run.phase.as_str()
        );
        let body = format!(
            "{} {} of plan {} took its next step.\n",
            capitalize(run.kind.as_str()),
            run.id,
            plan.name
        );
        match self.services.notifier.publish_text(&subject, &body).await {
            Ok(_) => run.notified.retain(|n| n != STUCK),
            Err(e) => report
                .run_errors
                .push(format!("recovery not announced: {e}")),
        }
    }

    /// What RDS and Route 53 say of a run's new database.
    async fn observe(&self, run: &Run) -> Result<Observed, String> {
        let rds = self.target_rds(run)?;
        let mut observed = Observed::default();
        let target = &run.proposal.target;
        match &run.proposal.action {
            Action::GlobalSwitchover { global, target_arn }
            | Action::GlobalFailover {
                global, target_arn, ..
            } => {
                let db = find(rds, target).await?;
                let writer = rds
                    .global_database_of(target_arn)
                    .await
                    .map_err(|e| e.to_string())?
                    .and_then(|g| {
                        (g.id == *global)
                            .then(|| g.members.into_iter().find(|m| m.writer))
                            .flatten()
                    });
                observed.exists = db.is_some();
                observed.acted = writer.is_some_and(|w| w.cluster_arn == *target_arn);
                fill(&mut observed, db.as_ref());
            }
            Action::PromoteReplica { .. } => {
                let db = find(rds, target).await?;
                observed.exists = db.is_some();
                observed.acted = db.as_ref().is_some_and(|d| d.replica_source.is_none());
                fill(&mut observed, db.as_ref());
            }
            Action::Restore { .. } => {
                let db = find(rds, target).await?;
                observed.exists = db.is_some();
                observed.acted = db.is_some();
                fill(&mut observed, db.as_ref());
                if let Some(restoration) = db.as_ref().and_then(Restoration::from_resource)
                    && restoration.phase != RestorePhase::Restoring
                {
                    let pending = self
                        .engine(rds)
                        .credentials_pending(&restoration)
                        .await
                        .map_err(|e| e.to_string())?;
                    observed.secured = pending.is_none();
                    if pending.is_some() {
                        observed.available = false;
                    }
                }
            }
            Action::ReplicaBack { .. } => {
                let db = find(rds, target).await?;
                observed.exists = db.is_some();
                observed.acted = match run.phase {
                    Phase::Preparing => db.is_some(),
                    _ => db.as_ref().is_some_and(|d| d.replica_source.is_none()),
                };
                fill(&mut observed, db.as_ref());
            }
        }
        if let Some(change) = &run.dns_change
            && run.dns_in_sync_at.is_none()
        {
            observed.dns_in_sync = self
                .route53
                .change_in_sync(change)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(observed)
    }

    fn engine<'a>(&'a self, rds: &'a Rds) -> RestoreEngine<'a> {
        RestoreEngine {
            rds,
            secrets: &self.secrets,
            deployment: &self.services.deployment,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn take(
        &self,
        plan: &Plan,
        settings: &Failover,
        step: &Step,
        loaded: &mut Loaded,
        observed: &Observed,
        report: &mut FailoverReport,
        ledger: &mut RunLedger<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        let run = loaded.state.active.as_mut().expect("advance checked");
        let rds = self.target_rds(run)?;
        let label = format!("plan {}: {} {}", plan.name, run.kind.as_str(), run.id);
        match step {
            Step::Wait(_) => {}
            Step::Expire => {
                run.end(
                    Phase::Cancelled,
                    "the approval request expired unanswered: nothing was changed",
                    now,
                );
            }
            Step::Fail(why) => run.end(Phase::Failed, why.clone(), now),
            Step::Act => {
                let record = self.record(
                    act_name(&run.proposal.action),
                    &run.to_region,
                    &run.proposal.target,
                    &run.id,
                    now,
                );
                ledger.intend(vec![record.clone()]).await.map_err(|e| {
                    format!("{label}: not acted, the ledger intent was not written ({e})")
                })?;
                let result = Box::pin(self.act(plan, run, rds, now)).await;
                ledger.record(with_result(
                    record,
                    result.as_ref().err().map(ToString::to_string),
                ));
                result.map_err(|e| format!("{label}: {e}"))?;
                run.acted_at = Some(now);
                run.note(now, act_name(&run.proposal.action));
                report
                    .actions
                    .push(format!("{label}: {}", act_name(&run.proposal.action)));
            }
            Step::Secure => {
                let db = find(rds, &run.proposal.target)
                    .await?
                    .ok_or("the new database vanished")?;
                let restoration =
                    Restoration::from_resource(&db).ok_or("the new database lost its tags")?;
                self.engine(rds)
                    .secure(&restoration, now)
                    .await
                    .map_err(|e| format!("{label}: credentials not set: {e}"))?;
                run.note(now, "credentials set for the checks");
            }
            Step::Check => {
                if run.ready_at.is_none() {
                    run.ready_at = Some(now);
                }
                run.endpoint.clone_from(&observed.endpoint);
                Box::pin(self.check(plan, run, rds)).await?;
                let ignore = run.checks.iter().any(|c| c.starts_with("ignore-checks"));
                if run.checks_passed == Some(false) && !ignore {
                    run.end(
                        Phase::Failed,
                        format!(
                            "the plan's checks failed against {}: the names were not switched. Look at it; to switch \
                             anyway, start again and approve with --ignore-checks",
                            run.proposal.target
                        ),
                        now,
                    );
                } else {
                    run.phase = Phase::SwitchingDns;
                }
                report.actions.push(format!(
                    "{label}: checks {}",
                    match run.checks_passed {
                        Some(true) => "passed",
                        Some(false) => "failed",
                        None => "not run",
                    }
                ));
            }
            Step::AskCutover => {
                let token = new_token();
                run.cutover = Some(Approval {
                    token_digest: token_digest(&token),
                    expires_at: now + to_delta(settings.approval_expires) * 24,
                    approved_by: None,
                    approved_at: None,
                    accepted_data_loss: false,
                });
                run.phase = Phase::AwaitingCutover;
                run.ready_at = Some(now);
                let (subject, body) = cutover_request(plan, settings, run, &token);
                self.services
                    .notifier
                    .publish_text(&subject, &body)
                    .await
                    .map_err(|e| {
                        run.cutover = None;
                        run.phase = Phase::Preparing;
                        format!("{label}: cutover request not sent ({e}); asked again next run")
                    })?;
                run.notified.push("cutover".into());
                report.actions.push(format!(
                    "{label}: replica ready, cutover approval requested"
                ));
            }
            Step::Promote => {
                let record = self.record(
                    "promote-replica",
                    &run.to_region,
                    &run.proposal.target,
                    &run.id,
                    now,
                );
                ledger
                    .intend(vec![record.clone()])
                    .await
                    .map_err(|e| format!("{label}: {e}"))?;
                let result = rds.promote_replica(&run.proposal.target).await;
                ledger.record(with_result(
                    record,
                    result.as_ref().err().map(ToString::to_string),
                ));
                result.map_err(|e| format!("{label}: {e}"))?;
                run.acted_at = Some(now);
                run.note(now, "replica promoted");
                report.actions.push(format!("{label}: replica promoted"));
            }
            Step::SwitchDns => {
                let endpoint = run
                    .endpoint
                    .clone()
                    .or_else(|| observed.endpoint.clone())
                    .ok_or("the new database has no endpoint yet")?;
                let names = run.record_names(settings);
                let mut current = Vec::new();
                for name in &names {
                    current.extend(
                        self.route53
                            .records(&settings.dns.hosted_zone_id, name)
                            .await
                            .map_err(|e| format!("{label}: {e}"))?,
                    );
                }
                let upserts = dns::switch(settings, &names, &current, &endpoint)
                    .map_err(|e| format!("{label}: {e}"))?;
                let record = self.record("switch-dns", "global", &names.join(","), &run.id, now);
                ledger
                    .intend(vec![record.clone()])
                    .await
                    .map_err(|e| format!("{label}: {e}"))?;
                let mut result = Ok(());
                if !upserts.is_empty() {
                    match self
                        .route53
                        .upsert(
                            &settings.dns.hosted_zone_id,
                            &upserts,
                            &format!("Lifeboat {} {}", run.kind.as_str(), run.id),
                        )
                        .await
                    {
                        Ok(change) => run.dns_change = Some(change),
                        Err(e) => result = Err(e),
                    }
                }
                ledger.record(with_result(
                    record,
                    result.as_ref().err().map(ToString::to_string),
                ));
                result.map_err(|e| format!("{label}: {e}"))?;
                run.dns_submitted_at = Some(now);
                run.note(now, format!("{} now point at {endpoint}", names.join(", ")));
                report
                    .actions
                    .push(format!("{label}: {} -> {endpoint}", names.join(", ")));
            }
            Step::Finish => {
                run.measure(now);
                if run.kind == Kind::Failover || run.kind == Kind::Failback {
                    let (text, record) = Box::pin(self.fence(run, now)).await;
                    if let Some(record) = record {
                        ledger.record(record);
                    }
                    run.old_primary = Some(text);
                }
                let serving = Serving {
                    region: run.to_region.clone(),
                    database: run.proposal.target.clone(),
                    kind: run.proposal.target_kind,
                    action: run.proposal.action.clone(),
                };
                match run.kind {
                    Kind::Drill => run.phase = Phase::CleaningUp,
                    Kind::Failover => {
                        run.end(
                            Phase::Done,
                            "the application's names point at the DR database",
                            now,
                        );
                        loaded.state.serving = Some(serving);
                    }
                    Kind::Failback => {
                        run.end(
                            Phase::Done,
                            "the application's names point at the primary region again",
                            now,
                        );
                        loaded.state.serving = Some(serving);
                    }
                }
                let run = loaded.state.active.as_ref().expect("still active");
                self.emit_metrics(plan, run, now);
                report.actions.push(format!(
                    "{label}: RTO {} (objective {}), RPO {}",
                    human(run.rto_seconds.unwrap_or_default()),
                    human(plan.objectives.rto.as_secs() as i64),
                    run.rpo_seconds.map_or("not measured".into(), human)
                ));
            }
            Step::CleanUp => {
                let current = match settings.dns.drill_record.as_deref() {
                    Some(name) => self
                        .route53
                        .records(&settings.dns.hosted_zone_id, name)
                        .await
                        .map_err(|e| format!("{label}: {e}"))?,
                    None => Vec::new(),
                };
                let record = self.record(
                    "clean-up-drill",
                    &run.to_region,
                    &run.proposal.target,
                    &run.id,
                    now,
                );
                ledger
                    .intend(vec![record.clone()])
                    .await
                    .map_err(|e| format!("{label}: {e}"))?;
                let mut result = Ok(true);
                if let Some(drill_record) = dns::drill_record(settings, &current)
                    && let Err(e) = self
                        .route53
                        .delete(
                            &settings.dns.hosted_zone_id,
                            &[drill_record],
                            "Lifeboat drill ends",
                        )
                        .await
                {
                    result = Err(e);
                }
                if result.is_ok()
                    && let Some(db) = find(rds, &run.proposal.target).await?
                    && let Some(restoration) = Restoration::from_resource(&db)
                {
                    result = self.engine(rds).clean_up(&restoration).await;
                }
                ledger.record(with_result(
                    record,
                    result.as_ref().err().map(ToString::to_string),
                ));
                let gone = result.map_err(|e| format!("{label}: {e}"))?;
                if gone || find(rds, &run.proposal.target).await?.is_none() {
                    run.end(Phase::Done, "drill finished and cleaned up", now);
                } else {
                    run.note(now, "drill database deletion requested");
                }
                report
                    .actions
                    .push(format!("{label}: drill record and database removed"));
            }
        }
        Ok(())
    }

    /// Ask RDS for the run's action (idempotent).
    async fn act(
        &self,
        plan: &Plan,
        run: &Run,
        rds: &Rds,
        now: DateTime<Utc>,
    ) -> Result<(), AwsError> {
        let target = &run.proposal.target;
        match &run.proposal.action {
            Action::GlobalSwitchover { global, target_arn } => {
                rds.switchover_global(global, target_arn).await
            }
            Action::GlobalFailover {
                global,
                target_arn,
                allow_data_loss,
            } => {
                rds.failover_global(global, target_arn, *allow_data_loss)
                    .await
            }
            Action::PromoteReplica { replica } => rds.promote_replica(replica).await,
            Action::Restore {
                point,
                kind,
                engine,
                instance_class,
                subnet_group,
                security_groups,
                parameter_group,
            } => {
                let tags = self.failover_tags(plan, run, now);
                let source = match point {
                    RecoveryPoint::Snapshot { identifier, .. } => {
                        RestoreSource::Snapshot(identifier)
                    }
                    // The newest restorable time when the restore starts (newer than at the proposal).
                    RecoveryPoint::ReplicatedBackup { arn, .. } => {
                        RestoreSource::ReplicatedBackup { arn, time: None }
                    }
                };
                self.engine(rds)
                    .start(&RestoreSpec {
                        id: target,
                        marker: tags::FAILOVER,
                        kind: *kind,
                        source,
                        engine,
                        instance_class,
                        subnet_group,
                        security_groups,
                        parameter_group: parameter_group.as_deref(),
                        option_group: None,
                        tags: &tags,
                    })
                    .await
            }
            Action::ReplicaBack {
                source_arn,
                instance_class,
                subnet_group,
                security_groups,
                kms_key,
                ..
            } => {
                let tags = self.failover_tags(plan, run, now);
                rds.create_replica(&ReplicaSpec {
                    id: target,
                    marker: tags::FAILOVER,
                    source_arn,
                    instance_class,
                    subnet_group,
                    security_groups,
                    kms_key: kms_key.as_deref(),
                    tags: &tags,
                })
                .await
            }
        }
    }

    /// Tags of a database a run makes: this deployment's, the failover marker and the run.
    fn failover_tags(&self, plan: &Plan, run: &Run, now: DateTime<Utc>) -> Vec<(String, String)> {
        let [deployment_tag, home_region_tag] = self.services.deployment.tags();
        let mut tags = vec![
            deployment_tag,
            home_region_tag,
            (tags::FAILOVER.into(), run.proposal.target.clone()),
            (tags::FAILOVER_RUN.into(), run.id.clone()),
            (tags::POLICY.into(), self.services.policy.name.clone()),
            (tags::PLAN.into(), plan.name.clone()),
            (tags::SOURCE.into(), run.database.clone()),
            (
                tags::FAILOVER_PHASE.into(),
                RestorePhase::Restoring.as_str().into(),
            ),
            (tags::FAILOVER_STARTED_AT.into(), tag_time(now)),
        ];
        if let Action::Restore { point, .. } = &run.proposal.action {
            let (label, arn) = match point {
                RecoveryPoint::Snapshot {
                    identifier, arn, ..
                } => (identifier.as_str(), arn.as_str()),
                RecoveryPoint::ReplicatedBackup { arn, .. } => ("point-in-time", arn.as_str()),
            };
            tags.push((tags::FAILOVER_SNAPSHOT.into(), label.to_string()));
            tags.push((tags::FAILOVER_SNAPSHOT_ARN.into(), arn.to_string()));
            tags.push((tags::FAILOVER_SNAPSHOT_TIME.into(), tag_time(point.time())));
        }
        if run.kind == Kind::Drill {
            tags.push((tags::FAILOVER_DRILL.into(), tags::TRUE.into()));
        }
        tags
    }

    /// Run the plan's checks against a restored database (Lifeboat set its credentials). Promoted replicas and
    /// global clusters keep the application's credentials, which Lifeboat does not hold: their checks are not run.
    async fn check(&self, plan: &Plan, run: &mut Run, rds: &Rds) -> Result<(), String> {
        let Some(verification) = &plan.verification else {
            run.checks
                .push("no checks: the plan has no verification section".into());
            return Ok(());
        };
        if !matches!(run.proposal.action, Action::Restore { .. }) {
            run.checks.push(format!(
                "checks not run: {} keeps the application's credentials, which Lifeboat does not hold",
                run.proposal.target
            ));
            return Ok(());
        }
        let db = find(rds, &run.proposal.target)
            .await?
            .ok_or("the new database vanished")?;
        let restoration =
            Restoration::from_resource(&db).ok_or("the new database lost its tags")?;
        let engine = self.engine(rds);
        let password = engine
            .password(&restoration)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the new database's secret is gone")?;
        let (results, _) = engine
            .run_checks(
                &restoration,
                password,
                &verification.checks,
                verification.database_name.clone(),
                &self.checks,
            )
            .await;
        if failure_class(&results) == FailureClass::Infrastructure
            && results.iter().any(|r| !r.passed)
        {
            return Err(format!(
                "checks of {} could not connect ({}); retried next run",
                run.proposal.target,
                results
                    .iter()
                    .filter(|r| !r.passed)
                    .map(|r| r.actual.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        run.checks_passed = Some(results.iter().all(|r| r.passed));
        run.checks.extend(results.iter().map(|r| {
            format!(
                "{} {}: expected {}, got {}",
                if r.passed { "pass" } else { "FAIL" },
                r.name,
                r.expected,
                r.actual
            )
        }));
        Ok(())
    }

    /// After a real failover, keep the old primary from taking writes if it comes back: stop it where RDS can be
    /// reached (an instance); say what the operator must do otherwise. Returns the account and a ledger record.
    async fn fence(&self, run: &Run, now: DateTime<Utc>) -> (String, Option<LedgerRecord>) {
        if let Action::GlobalSwitchover { .. } | Action::GlobalFailover { .. } = run.proposal.action
        {
            return (
                format!(
                    "the old writer cluster in {} is a read-only secondary of the global database now (Aurora \
                     fences it); after an unplanned failover, check it rejoined before failing back",
                    run.from_region
                ),
                None,
            );
        }
        let old = &run.database;
        let source = if run.kind == Kind::Failback {
            self.dr(&run.from_region)
        } else {
            Some(&self.primary)
        };
        let manual = format!(
            "stop it before anything writes to it: aws rds stop-db-instance --db-instance-identifier {old} --region \
             {}; point no application at it; delete it only when the failback is done",
            run.from_region
        );
        let Some(rds) = source else {
            return (
                format!("{old} in {} was not fenced: {manual}", run.from_region),
                None,
            );
        };
        let record = self.record("fence-old-primary", &run.from_region, old, &run.id, now);
        match find(rds, old).await {
            Ok(Some(db)) if db.kind == DatabaseKind::Instance && db.cluster.is_none() => {
                match rds.stop_instance(old).await {
                    Ok(_) => (
                        format!(
                            "{old} in {} was stopped so it takes no writes if it comes back; it is kept (Lifeboat never \
                             deletes it). RDS starts a stopped instance again after 7 days: delete it, or stop it \
                             again, before then",
                            run.from_region
                        ),
                        Some(with_result(record, None)),
                    ),
                    Err(e) => (
                        format!(
                            "{old} in {} could not be stopped ({e}): {manual}",
                            run.from_region
                        ),
                        Some(with_result(record, Some(e.to_string()))),
                    ),
                }
            }
            Ok(Some(_)) => (
                format!(
                    "{old} in {} is an Aurora cluster: stop it (aws rds stop-db-cluster --db-cluster-identifier {old} \
                     --region {}) before anything writes to it",
                    run.from_region, run.from_region
                ),
                None,
            ),
            Ok(None) => (
                format!("{old} no longer exists in {}", run.from_region),
                None,
            ),
            Err(e) => (
                format!(
                    "{old} in {} could not be read ({e}): {manual}",
                    run.from_region
                ),
                None,
            ),
        }
    }

    /// Announce a run's end once, then move it to the history.
    async fn announce_end(
        &self,
        plan: &Plan,
        settings: &Failover,
        loaded: &mut Loaded,
        report: &mut FailoverReport,
    ) {
        let Some(run) = loaded.state.active.as_mut() else {
            return;
        };
        let key = run.phase.as_str().to_string();
        // A request withdrawn before anyone was asked needs no message.
        let silent = run.phase == Phase::Cancelled && !run.was_notified("approval");
        if !silent && !run.was_notified(&key) {
            let (subject, body) = end_message(plan, settings, run);
            match self.services.notifier.publish_text(&subject, &body).await {
                Ok(_) => run.notified.push(key),
                Err(e) => {
                    report
                        .run_errors
                        .push(format!("end of {} not announced ({e}); retried", run.id));
                    return;
                }
            }
        }
        let run = loaded.state.active.take().expect("checked");
        loaded.state.history.push(run);
        let excess = loaded.state.history.len().saturating_sub(failover::HISTORY);
        loaded.state.history.drain(..excess);
        self.save(&plan.name, loaded, report).await;
    }

    fn emit_metrics(&self, plan: &Plan, run: &Run, now: DateTime<Utc>) {
        let mut metrics = Metrics::new(FUNCTION, &self.services.deployment.name, now);
        let kind = match run.kind {
            Kind::Failover => "failover",
            Kind::Drill => "drill",
            Kind::Failback => "failback",
        };
        let dims = [("Plan", plan.name.as_str()), ("Kind", kind)];
        if let Some(rto) = run.rto_seconds {
            metrics.put(&dims, "FailoverRtoSeconds", rto as f64, Unit::Seconds);
        }
        if let Some(rpo) = run.rpo_seconds {
            metrics.put(&dims, "FailoverRpoSeconds", rpo as f64, Unit::Seconds);
        }
        metrics.emit();
    }

    async fn alarm_state(
        &self,
        name: &str,
    ) -> Result<Option<(AlarmState, DateTime<Utc>)>, AwsError> {
        for cloudwatch in &self.alarms {
            let found = cloudwatch.alarms(&[name.to_string()]).await?;
            if let Some(alarm) = found.into_iter().find(|a| a.name == name) {
                return Ok(Some((alarm.state, alarm.updated_at)));
            }
        }
        Ok(None)
    }

    /// Each plan's status: where its database is, the run in progress, the last one, and what its names answer.
    async fn status_of(&self, plan: &Plan, settings: &Failover, state: &PlanState) -> PlanStatus {
        let mut resolves_to = Vec::new();
        for name in &settings.dns.records {
            if let Ok(records) = self
                .route53
                .records(&settings.dns.hosted_zone_id, name)
                .await
            {
                // With failover routing: the PRIMARY's value while its health check passes (after a failover both
                // records hold the DR database's).
                if let Some(answer) = route53::answer(&records, "CNAME", |_| false) {
                    resolves_to.push((name.clone(), answer.values.join(",")));
                }
            }
        }
        PlanStatus {
            plan: plan.name.clone(),
            database: settings.database.clone(),
            serving_region: state
                .serving
                .as_ref()
                .map_or(self.primary.region().to_string(), |s| s.region.clone()),
            serving_database: state
                .serving
                .as_ref()
                .map_or(settings.database.clone(), |s| s.database.clone()),
            active: state.active.clone(),
            last: state.history.last().cloned(),
            resolves_to,
        }
    }

    fn record(
        &self,
        action: &str,
        region: &str,
        resource: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> LedgerRecord {
        LedgerRecord {
            schema: RECORD_SCHEMA,
            time: now,
            function: FUNCTION.into(),
            run_id: String::new(),
            trigger: String::new(),
            action: action.into(),
            phase: LedgerPhase::Intent,
            region: region.into(),
            database: String::new(),
            resource: resource.into(),
            reason: reason.into(),
            outcome: None,
            error: None,
            details: Value::Null,
        }
    }
}

/// The ledger result of an intent.
fn with_result(mut record: LedgerRecord, error: Option<String>) -> LedgerRecord {
    record.phase = LedgerPhase::Result;
    record.outcome = Some(if error.is_some() { "failed" } else { "ok" }.into());
    record.error = error;
    record
}

fn retryable(e: AwsError) -> HandlerError {
    HandlerError::Retryable(e.to_string())
}

async fn find(rds: &Rds, id: &str) -> Result<Option<Database>, String> {
    rds.list_databases()
        .await
        .map(|dbs| dbs.into_iter().find(|d| d.identifier == id))
        .map_err(|e| e.to_string())
}

fn fill(observed: &mut Observed, db: Option<&Database>) {
    if let Some(db) = db {
        observed.available = db.status == "available";
        observed.failed = lifeboat::restore::is_failed_status(&db.status);
        observed.endpoint = db.endpoint.as_ref().map(|e| e.host.clone());
    }
}

fn act_name(action: &Action) -> &'static str {
    match action {
        Action::GlobalSwitchover { .. } => "switchover-global-cluster",
        Action::GlobalFailover { .. } => "failover-global-cluster",
        Action::PromoteReplica { .. } => "promote-read-replica",
        Action::Restore { .. } => "restore-in-dr-region",
        Action::ReplicaBack { .. } => "create-replica-in-primary-region",
    }
}

fn run_prefix(kind: Kind) -> &'static str {
    match kind {
        Kind::Failover => "failover",
        Kind::Drill => "drill",
        Kind::Failback => "failback",
    }
}

fn to_delta(duration: std::time::Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

/// A one-time approval token: 128 random bits.
fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The approval request: what will happen, the data lost, and the exact command.
fn approval_request(plan: &Plan, settings: &Failover, run: &Run, token: &str) -> (String, String) {
    let p = &run.proposal;
    let accept = if p.loss.needs_acceptance {
        " --accept-data-loss"
    } else {
        ""
    };
    let subject = format!(
        "Lifeboat: approve {} of {} to {}?",
        run.kind.as_str(),
        run.database,
        run.to_region
    );
    let trigger = match &run.trigger {
        Trigger::Alarm { name, at } => format!("alarm {name} in ALARM since {}", tag_time(*at)),
        Trigger::Manual { requested_by } => format!("requested by {requested_by}"),
        Trigger::Schedule => "the drill schedule".into(),
    };
    let mut body = format!(
        "{} of plan {} ({trigger}).\n\nWhat will happen:\n- {}\n- run the plan's checks against {}\n- point {} at it \
         ({})\n",
        capitalize(run.kind.as_str()),
        plan.name,
        p.action.describe(&p.target, &run.to_region),
        p.target,
        run.record_names(settings).join(", "),
        "CNAME records rewritten; with failover routing, both PRIMARY and SECONDARY",
    );
    if run.kind == Kind::Failover {
        body.push_str(&format!(
            "- stop the old primary {} in {} if it can be reached, so it takes no writes\n",
            run.database, run.from_region
        ));
    }
    body.push_str(&format!(
        "\nData lost: {}{}\nObjectives: RPO {}, RTO {}.\n",
        p.loss.description,
        if p.loss.over_rpo {
            " — MORE THAN THE RPO: approving accepts it"
        } else {
            ""
        },
        human(plan.objectives.rpo.as_secs() as i64),
        human(plan.objectives.rto.as_secs() as i64),
    ));
    for warning in &p.warnings {
        body.push_str(&format!("Warning: {warning}\n"));
    }
    let expires = run
        .approval
        .as_ref()
        .map(|a| tag_time(a.expires_at))
        .unwrap_or_default();
    body.push_str(&format!(
        "\nNothing changes until you approve. To approve (valid until {expires}, once):\n  lifeboat failover approve \
         {token}{accept}\nTo withdraw: lifeboat failover cancel --plan {}\n\nLifeboat moves the database and its \
         names only: the application tier in {} (servers, secrets, configuration) is yours to bring up.\n",
        plan.name, run.to_region
    ));
    (subject, body)
}

/// The failback's second approval: the replica is ready; stop writes, then approve the cutover.
fn cutover_request(plan: &Plan, settings: &Failover, run: &Run, token: &str) -> (String, String) {
    let subject = format!(
        "Lifeboat: {} ready for the cutover back to {}",
        run.proposal.target, run.to_region
    );
    let body = format!(
        "Failback of plan {}: {} in {} is a read replica of {} in {} and is ready.\n\nTo cut over with no data lost:\n\
         1. stop the application's writes to {} (maintenance mode);\n2. wait until the replica's ReplicaLag metric is 0;\n\
         3. approve: lifeboat failover approve {token}\n\nLifeboat then promotes {}, runs the checks, points {} at it \
         and stops {} so it takes no more writes.\n",
        plan.name,
        run.proposal.target,
        run.to_region,
        run.database,
        run.from_region,
        run.database,
        run.proposal.target,
        run.record_names(settings).join(", "),
        run.database,
    );
    (subject, body)
}

/// The message at a run's end: what was done, RTO and RPO against the objectives, what is next.
fn end_message(plan: &Plan, settings: &Failover, run: &Run) -> (String, String) {
    let what = capitalize(run.kind.as_str());
    match run.phase {
        Phase::Done => {
            let rto = run.rto_seconds.unwrap_or_default();
            let rto_goal = plan.objectives.rto.as_secs() as i64;
            let rpo_goal = plan.objectives.rpo.as_secs() as i64;
            let mut body = format!(
                "{what} of plan {} done: {} now answer{} with {} ({}, {}).\n\nRTO achieved: {} from detection to \
                 names in sync (objective {}: {}).\nRPO achieved: {} (objective {}{}).\nChecks: {}\n",
                plan.name,
                run.record_names(settings).join(", "),
                if run.record_names(settings).len() == 1 {
                    "s"
                } else {
                    ""
                },
                run.endpoint.as_deref().unwrap_or("the new database"),
                run.proposal.target,
                run.to_region,
                human(rto),
                human(rto_goal),
                if rto <= rto_goal { "met" } else { "MISSED" },
                run.rpo_seconds
                    .map_or("not measured (replication lag)".into(), human),
                human(rpo_goal),
                match run.rpo_seconds {
                    Some(rpo) if rpo > rpo_goal => ": MISSED",
                    Some(_) => ": met",
                    None => "",
                },
                if run.checks.is_empty() {
                    "none".to_string()
                } else {
                    run.checks.join("; ")
                },
            );
            if let Some(old) = &run.old_primary {
                body.push_str(&format!("Old primary: {old}\n"));
            }
            match run.kind {
                Kind::Failover => body.push_str(&format!(
                    "\nNext: bring the application tier up in {} if it is not; when {} is healthy again, fail back: \
                     lifeboat failover failback --plan {}\n",
                    run.to_region, run.from_region, plan.name
                )),
                Kind::Drill => body.push_str("\nThe drill record and database were removed.\n"),
                Kind::Failback => body.push_str(&format!(
                    "\nThe database in {} is kept, stopped: delete it when you no longer need it.\n",
                    run.from_region
                )),
            }
            (
                format!(
                    "Lifeboat: {} of {} done (RTO {}, objective {})",
                    run.kind.as_str(),
                    run.database,
                    human(rto),
                    human(rto_goal)
                ),
                body,
            )
        }
        Phase::Cancelled => (
            format!(
                "Lifeboat: {} of {} withdrawn",
                run.kind.as_str(),
                run.database
            ),
            format!(
                "{what} {} of plan {} was withdrawn: {}\n",
                run.id,
                plan.name,
                run.outcome.as_deref().unwrap_or("")
            ),
        ),
        _ => (
            format!("Lifeboat: {} of {} FAILED", run.kind.as_str(), run.database),
            format!(
                "{what} {} of plan {} stopped: {}\n\nDone so far:\n{}\n\nThe application's names were {}changed. \
                 Status: lifeboat failover status --plan {}\n",
                run.id,
                plan.name,
                run.outcome.as_deref().unwrap_or(""),
                run.history
                    .iter()
                    .map(|(t, what)| format!("- {} {what}", tag_time(*t)))
                    .collect::<Vec<_>>()
                    .join("\n"),
                if run.dns_submitted_at.is_some() {
                    ""
                } else {
                    "not "
                },
                plan.name
            ),
        ),
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

/// Classify an invocation.
fn ask_of(payload: Value) -> Result<Ask, HandlerError> {
    // The alarm's direct Lambda action: `{"source":"aws.cloudwatch","alarmData":{...}}`.
    if payload.get("alarmData").is_some() {
        let alarm: CloudWatchAlarm<Value, Value> =
            serde_json::from_value(payload).map_err(|e| {
                HandlerError::InvalidInput(format!("malformed CloudWatch alarm action: {e}"))
            })?;
        return alarm_ask(alarm.alarm_data);
    }
    match input::classify(payload)? {
        Incoming::Event(event) if event.detail_type == input::SCHEDULED_EVENT => Ok(Ask::Schedule),
        Incoming::Event(event) if event.detail_type == ALARM_EVENT => {
            let data: CloudWatchAlarmData<Value, Value> = serde_json::from_value(event.detail)
                .map_err(|e| {
                    HandlerError::InvalidInput(format!("malformed `{ALARM_EVENT}` detail: {e}"))
                })?;
            alarm_ask(data)
        }
        Incoming::Event(event) => Err(HandlerError::InvalidInput(format!(
            "unexpected event `{}`: this function handles `{}` and `{ALARM_EVENT}`",
            event.detail_type,
            input::SCHEDULED_EVENT
        ))),
        Incoming::Manual { action, payload } => {
            if !ACTIONS.contains(&action.as_str()) {
                return Err(input::unknown_action(&action, &ACTIONS));
            }
            Ok(Ask::Manual(input::parse_request(payload)?))
        }
    }
}

/// The alarm and its state change (the state's timestamp starts the measured recovery time).
fn alarm_ask(data: CloudWatchAlarmData<Value, Value>) -> Result<Ask, HandlerError> {
    use aws_lambda_events::event::cloudwatch_alarms::CloudWatchAlarmStateValue as Value_;
    let state = data.state.ok_or_else(|| {
        HandlerError::InvalidInput(format!("alarm {} event has no state", data.alarm_name))
    })?;
    Ok(Ask::Alarm {
        name: data.alarm_name,
        state: match state.value {
            Value_::Alarm => AlarmState::Alarm,
            Value_::Ok => AlarmState::Ok,
            _ => AlarmState::InsufficientData,
        },
        at: state.timestamp,
    })
}

#[cfg(test)]
mod tests;
