//! The monitor function: reads the deployment's recovery state, measures RPO and RTO per database and region,
//! alerts the on-call person once per change, and writes the posture report. It changes nothing else: its only
//! writes are its state object (`monitor/state.json`) and the reports (`reports/`) in the reports bucket (not the
//! Object-Locked ledger bucket), EMF metrics and SNS messages.
//!
//! Each run lists the databases with their automated-backup facts, the snapshots of the primary region and of
//! every DR region, the replicated automated backups and manual-snapshot quotas of every region, the databases'
//! free storage (CloudWatch) and the restore drills recorded in the ledger since the last run; then
//! [`lifeboat::monitor::assess`] computes the assessment and [`lifeboat::monitor::alerts::transition`] what to
//! announce. The state is written conditionally (`If-Match` on the ETag read, `If-None-Match: *` on the first
//! run) before anything is announced, so of two concurrent runs only one announces.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, TimeDelta, Utc};
use lambda_runtime::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{error, info, warn};

use lifeboat::aws::AwsError;
use lifeboat::aws::cloudwatch::CloudWatch;
use lifeboat::aws::rds::Rds;
use lifeboat::input::{self, Incoming};
use lifeboat::lambda::HandlerError;
use lifeboat::ledger::{PREFIX as LEDGER_PREFIX, Phase, RunRecord};
use lifeboat::metrics::{Metrics, Unit};
use lifeboat::model::{Database, DatabaseKind};
use lifeboat::monitor::alerts::{self, AlertState, Announcements};
use lifeboat::monitor::{
    Assessment, CheckEvidence, ConditionKind, CreatingSince, DatabaseFacts, DrillEvidence, Inputs,
    QuotaHistory, QuotaSample, QuotaUsage, RpoStatus, Severity, Storage, assess, human,
};
use lifeboat::posture::{Report, Status, Totals};
use lifeboat::services::Services;
use lifeboat::state::{StateStore, StateWriteError};

/// Name of this function in metrics and notifications.
pub const FUNCTION: &str = "monitor";

/// The manual action this function performs.
pub const ACTION: &str = "report";

/// Key of the state kept between runs (alert state, quota samples, drill evidence).
pub const STATE_KEY: &str = "monitor/state.json";

/// Key of the newest posture report as JSON.
pub const REPORT_JSON_KEY: &str = "reports/posture.json";

/// Key of the newest posture report as HTML.
pub const REPORT_HTML_KEY: &str = "reports/posture.html";

/// Version of the state object's format.
pub const STATE_SCHEMA: u32 = 1;

/// How far back the first run reads drill results in the ledger.
const DRILL_LOOKBACK_DAYS: i64 = 35;

/// Drill results are read again from this long before the previous run: a ledger object is named by the time
/// its run began and may land later.
const DRILL_OVERLAP_MINUTES: i64 = 60;

/// An operator's request: `{"action":"report"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorRequest {
    /// Always `report`.
    pub action: String,
}

/// The state kept between runs in [`STATE_KEY`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MonitorState {
    /// Format version, [`STATE_SCHEMA`].
    #[serde(default)]
    pub schema: u32,
    /// Open conditions and when they were announced.
    #[serde(default)]
    pub alerts: AlertState,
    /// Quota samples for the days-until-full estimate.
    #[serde(default)]
    pub quota_history: QuotaHistory,
    /// The newest drill evidence per database and region.
    #[serde(default)]
    pub drills: Vec<DrillEvidence>,
    /// The ledger has been read for drill results up to this time.
    #[serde(default)]
    pub drills_read_until: Option<DateTime<Utc>>,
    /// When each snapshot still `creating` was first seen so (RDS times a snapshot only when it is done), for the
    /// "backup too long" condition. Absent from the state of earlier versions: then every creating snapshot is
    /// first seen by the next run.
    #[serde(default)]
    pub creating_since: CreatingSince,
    /// Since when each DR region whose snapshots could not be listed has been so (the first of its consecutive
    /// failed runs): `region-unreadable` opens on the second. Absent from the state of earlier versions.
    #[serde(default)]
    pub unreadable_since: BTreeMap<String, DateTime<Utc>>,
}

/// One row of the RPO table: a database's best recovery source in one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpoRow {
    /// The database.
    pub database: String,
    /// The region.
    pub region: String,
    /// The best source there (`none` when there is no recovery point).
    pub source: String,
    /// Its RPO in seconds, when there is a recovery point.
    pub rpo_seconds: Option<u64>,
    /// The objective in seconds.
    pub objective_seconds: u64,
    /// Met, unknown or breached.
    pub status: RpoStatus,
}

/// What was announced this run, by count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Announced {
    /// Conditions that opened.
    pub opened: usize,
    /// Reminders of conditions still open.
    pub reminded: usize,
    /// Conditions that cleared.
    pub cleared: usize,
}

/// The function's response.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorReport {
    /// The invocation (Lambda request ID).
    pub run_id: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// The time of the assessment.
    pub at: DateTime<Utc>,
    /// Policy in force.
    pub policy: String,
    /// Red, amber or green.
    pub status: Status,
    /// The report's counts.
    pub totals: Totals,
    /// RPO per database and region (the best source).
    pub rpo: Vec<RpoRow>,
    /// The whole assessment.
    pub assessment: Assessment,
    /// What was announced this run.
    pub announced: Announced,
    /// Message ID of the SNS announcement, when one was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<String>,
    /// Report objects written (`s3://bucket/key`).
    pub reports: Vec<String>,
    /// Problems with the run itself (a region or service that could not be read, a state or report write).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub run_errors: Vec<String>,
}

/// Everything the handler needs, built once per container.
pub struct MonitorFunction {
    /// Policy, ledger, alert topic, clock.
    pub services: Services,
    /// RDS in the primary region.
    pub primary: Rds,
    /// RDS in each DR region of the policy.
    pub dr_regions: Vec<Rds>,
    /// CloudWatch in the primary region (free storage).
    pub cloudwatch: CloudWatch,
    /// S3 client of the ledger bucket (drill results) and the reports bucket.
    pub s3: aws_sdk_s3::Client,
    /// Bucket of the alert state and the posture reports (`LIFEBOAT_REPORTS_BUCKET`): not the ledger bucket,
    /// whose Object Lock would keep every 15-minute version for years.
    pub reports_bucket: String,
}

/// The state as read, with the ETag a conditional write must match (`None`: no state yet).
struct StoredState {
    state: MonitorState,
    etag: Option<String>,
}

impl MonitorFunction {
    /// Handle one invocation.
    pub async fn handle(
        &self,
        payload: Value,
        context: &Context,
    ) -> Result<MonitorReport, HandlerError> {
        let trigger = trigger_of(payload)?;
        let run_id = context.request_id.clone();
        let now = self.services.clock.now();
        let mut run_errors = Vec::new();

        let stored = self.read_state(&mut run_errors).await?;
        let mut state = stored.state.clone();

        let (databases, facts) = self.primary.list_databases_with_backup_facts().await?;
        let mut snapshots = self.primary.list_snapshots().await?;
        let mut unreadable = BTreeMap::new();
        let mut replicated: BTreeMap<String, Vec<_>> = BTreeMap::new();
        let mut replicated_unread = BTreeSet::new();
        for rds in &self.dr_regions {
            if let Err(e) = rds.list_snapshots_into(&mut snapshots).await {
                warn!(region = rds.region(), error = %e, "cannot list snapshots");
                run_errors.push(format!(
                    "snapshots in {} not listed: {e}; its RPO is unknown",
                    rds.region()
                ));
                unreadable.insert(rds.region().to_string(), e.to_string());
            }
            match rds.replicated_backups().await {
                Ok(found) => {
                    for (source, backup) in found {
                        replicated.entry(source).or_default().push(backup);
                    }
                }
                Err(e) => {
                    // Unknown, not absent: the region's point-in-time source may be there.
                    replicated_unread.insert(rds.region().to_string());
                    run_errors.push(format!("replicated automated backups unknown: {e}"));
                }
            }
        }

        // Since when each region is unreadable: kept while it stays so, forgotten once it is read.
        state
            .unreadable_since
            .retain(|region, _| unreadable.contains_key(region));
        for region in unreadable.keys() {
            state.unreadable_since.entry(region.clone()).or_insert(now);
        }

        // Progress of the snapshots still being created, for the "backup too long" message.
        let mut snapshot_progress = BTreeMap::new();
        for snapshot in snapshots
            .iter()
            .filter(|s| s.status == "creating" && s.region == self.primary.region())
        {
            match self
                .primary
                .snapshot_progress(snapshot.kind, &snapshot.identifier)
                .await
            {
                Ok(Some(p)) => {
                    snapshot_progress.insert(snapshot.arn.clone(), p);
                }
                Ok(None) => {}
                Err(e) => warn!(snapshot = %snapshot.identifier, error = %e, "progress unknown"),
            }
        }

        // Quotas of every region, with the samples of earlier runs.
        let mut quotas = Vec::new();
        let mut quotas_unread = BTreeSet::new();
        for rds in std::iter::once(&self.primary).chain(&self.dr_regions) {
            match rds.snapshot_quotas().await {
                Ok(found) => {
                    for quota in found {
                        let history = state.quota_history.of(rds.region(), quota.kind);
                        state.quota_history.record(
                            rds.region(),
                            quota.kind,
                            QuotaSample {
                                at: now,
                                used: quota.used,
                            },
                        );
                        quotas.push(QuotaUsage {
                            region: rds.region().to_string(),
                            kind: quota.kind,
                            used: quota.used,
                            max: quota.max,
                            history,
                        });
                    }
                }
                Err(e) => {
                    quotas_unread.insert(rds.region().to_string());
                    run_errors.push(format!("snapshot quota unknown: {e}"));
                }
            }
        }

        // Free storage of the DB instances a plan selects (Aurora storage grows by itself; only a selected
        // database's storage is assessed, so an unselected or drill database is not read).
        let with_storage: Vec<&Database> = databases
            .iter()
            .filter(|d| d.kind == DatabaseKind::Instance && d.cluster.is_none())
            .filter(|d| {
                self.services.policy.plan_for(d).is_some() && !lifeboat::restore::is_restored(d)
            })
            .filter(|d| {
                facts
                    .get(&(d.kind, d.identifier.clone()))
                    .is_some_and(|f| f.allocated_bytes.is_some())
            })
            .collect();
        // A stopped instance publishes no FreeStorageSpace (and its storage does not change): not read, its
        // storage is unknown and its storage-high condition held as it was, without a run error.
        let instances: Vec<String> = with_storage
            .iter()
            .filter(|d| storage_readable(d))
            .map(|d| d.identifier.clone())
            .collect();
        let stopped: Vec<String> = with_storage
            .iter()
            .filter(|d| !storage_readable(d))
            .map(|d| d.identifier.clone())
            .collect();
        let free = if instances.is_empty() {
            BTreeMap::new()
        } else {
            match self.cloudwatch.free_storage(&instances, now).await {
                Ok(free) => {
                    run_errors.extend(storage_missing(&instances, &free));
                    free
                }
                Err(e) => {
                    run_errors.push(format!("database storage unknown: {e}"));
                    BTreeMap::new()
                }
            }
        };

        // How long the snapshots still creating have been so: RDS gives them no create time yet.
        state.creating_since.observe(&snapshots, &unreadable, now);

        // Drill evidence: what the state holds, plus the results recorded since the last run.
        match self.read_drills(state.drills_read_until, now).await {
            Ok(found) => {
                state.drills = newest_drills(state.drills.into_iter().chain(found));
                state.drills_read_until = Some(now);
            }
            Err(e) => run_errors.push(format!("restore drill results not read: {e}")),
        }

        let database_facts: Vec<DatabaseFacts> = databases
            .into_iter()
            .map(|database| {
                let backup = facts
                    .get(&(database.kind, database.identifier.clone()))
                    .cloned()
                    .unwrap_or_default();
                let storage = backup.allocated_bytes.and_then(|allocated_bytes| {
                    free.get(&database.identifier).map(|free_bytes| Storage {
                        allocated_bytes,
                        free_bytes: *free_bytes,
                    })
                });
                // An instance whose free storage was asked for and not given (CloudWatch failed, or no datapoint:
                // a run error says so), or not asked for because it is stopped.
                let storage_unread = storage.is_none()
                    && (instances.contains(&database.identifier)
                        || stopped.contains(&database.identifier));
                DatabaseFacts {
                    replicated_backups: replicated.get(&database.arn).cloned().unwrap_or_default(),
                    point_in_time: backup.point_in_time,
                    storage,
                    storage_unread,
                    database,
                }
            })
            .collect();
        let mut assessment = assess(&Inputs {
            policy: &self.services.policy,
            deployment: &self.services.deployment,
            now,
            databases: database_facts,
            snapshots,
            unreadable_regions: unreadable,
            unreadable_since: state.unreadable_since.clone(),
            replicated_backups_unread: replicated_unread,
            quotas_unread,
            snapshot_progress,
            creating_since: state.creating_since.clone(),
            drills: state.drills.clone(),
            quotas,
            replication_wanted: self.services.policy.replication_wanted(),
        });

        // What a failed read could not decide stays as it was: neither cleared nor announced.
        let (announcements, next_alerts) = alerts::transition(
            &stored.state.alerts,
            &assessment.conditions,
            &assessment.undecided,
            now,
        );
        // Held open, not re-checked: still open, so the report, its status and the open counts include them.
        assessment.held_open = next_alerts.held_open(&assessment.conditions);
        state.alerts = next_alerts;
        state.schema = STATE_SCHEMA;
        let announced = Announced {
            opened: announcements.opened.len(),
            reminded: announcements.reminders.len(),
            cleared: announcements.cleared.len(),
        };

        // The state first: only the run whose write lands announces.
        let mut notification = None;
        match self.write_state(&state, stored.etag.as_deref()).await {
            Ok(new_etag) => {
                if !announcements.is_empty() {
                    let (subject, body) =
                        message(&announcements, &assessment, self.primary.region());
                    match self.services.notifier.publish_text(&subject, &body).await {
                        Ok(id) => notification = Some(id),
                        Err(e) => {
                            warn!(error = %e, "announcement failed");
                            run_errors.push(format!("announcement not sent: {e}"));
                            // Put the previous alert state back, so the next run announces again.
                            let mut undo = state.clone();
                            undo.alerts = stored.state.alerts.clone();
                            if let Err(e) = self.write_state(&undo, Some(&new_etag)).await {
                                run_errors.push(format!(
                                    "alert state not restored after the failed announcement ({e}): these \
                                     announcements are lost until the conditions change"
                                ));
                            }
                        }
                    }
                }
            }
            Err(StateWriteError::Conflict) => {
                info!("another monitor run wrote the state first: it announces, this run does not");
                run_errors.push(
                    "another monitor run wrote the alert state at the same time: it announced, this run did not"
                        .into(),
                );
            }
            Err(StateWriteError::Aws(e)) => {
                run_errors.push(format!(
                    "alert state not written ({e}): nothing announced; the next run announces"
                ));
            }
        }

        let report = Report::from(&assessment);
        let reports = self.write_reports(&report, now, &mut run_errors).await;
        // A scheduled run's response goes nowhere: its errors are logged and counted (MonitorRunErrors, alarmed).
        for run_error in &run_errors {
            error!(run_error = %run_error, "monitor run error");
        }
        emit_metrics(&assessment, run_errors.len(), now);

        let rpo = rpo_rows(&assessment);
        info!(
            status = report.status.as_str(),
            conditions = assessment.conditions.len(),
            opened = announced.opened,
            reminded = announced.reminded,
            cleared = announced.cleared,
            "monitor run finished"
        );
        Ok(MonitorReport {
            run_id,
            trigger: trigger.into(),
            at: now,
            policy: self.services.policy.name.clone(),
            status: report.status,
            totals: report.totals,
            rpo,
            assessment,
            announced,
            notification,
            reports,
            run_errors,
        })
    }

    /// The ledger bucket, where the drill results are.
    fn ledger_bucket(&self) -> &str {
        self.services.ledger.bucket()
    }

    fn region(&self) -> &str {
        self.primary.region()
    }

    /// The alert state store (the reports bucket).
    fn state_store(&self) -> StateStore {
        StateStore::new(self.s3.clone(), &self.reports_bucket, self.region())
    }

    async fn read_state(&self, run_errors: &mut Vec<String>) -> Result<StoredState, AwsError> {
        let Some(stored) = self.state_store().read::<MonitorState>(STATE_KEY).await? else {
            return Ok(StoredState {
                state: MonitorState::default(),
                etag: None,
            });
        };
        let state = stored.value.unwrap_or_else(|e| {
            run_errors.push(format!(
                "{e}: started afresh, so open conditions are announced again"
            ));
            MonitorState::default()
        });
        Ok(StoredState {
            state,
            etag: Some(stored.etag),
        })
    }

    async fn write_state(
        &self,
        state: &MonitorState,
        etag: Option<&str>,
    ) -> Result<String, StateWriteError> {
        self.state_store().write(STATE_KEY, state, etag).await
    }

    /// Restore-drill results (`restore-drill` result records of the verify function with a verdict) in the ledger
    /// objects written since `since` (less an overlap), or in the last [`DRILL_LOOKBACK_DAYS`] days.
    async fn read_drills(
        &self,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Vec<DrillEvidence>, AwsError> {
        let from = since.map_or(now - TimeDelta::days(DRILL_LOOKBACK_DAYS), |t| {
            t - TimeDelta::minutes(DRILL_OVERLAP_MINUTES)
        });
        let start_after = format!(
            "{LEDGER_PREFIX}{}/{}",
            from.format("%Y/%m/%d"),
            from.format("%Y%m%dT%H%M%S%.3fZ")
        );
        let mut keys = Vec::new();
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(self.ledger_bucket())
            .prefix(LEDGER_PREFIX)
            .start_after(start_after)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| AwsError::from_sdk("s3:ListObjectsV2", self.region(), &e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter(|k| k.contains("-verify-result-"))
                    .map(str::to_string),
            );
        }
        let mut found = Vec::new();
        for key in keys {
            let out = self
                .s3
                .get_object()
                .bucket(self.ledger_bucket())
                .key(&key)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("s3:GetObject", self.region(), &e))?;
            let body = out
                .body
                .collect()
                .await
                .map_err(|e| AwsError::Unreachable {
                    operation: "s3:GetObject".into(),
                    region: self.region().into(),
                    message: e.to_string(),
                })?;
            match serde_json::from_slice::<RunRecord>(&body.into_bytes()) {
                Ok(run) => found.extend(drill_evidence(&run)),
                Err(e) => warn!(key, error = %e, "not a ledger object"),
            }
        }
        Ok(found)
    }

    async fn write_reports(
        &self,
        report: &Report,
        now: DateTime<Utc>,
        run_errors: &mut Vec<String>,
    ) -> Vec<String> {
        let json = serde_json::to_vec_pretty(report).expect("the report always serializes");
        let html = report.to_html();
        let dated = format!("reports/{}/posture.html", now.format("%Y/%m/%d"));
        let mut written = Vec::new();
        for (key, body, content_type, once) in [
            (REPORT_JSON_KEY, json, "application/json", false),
            (
                REPORT_HTML_KEY,
                html.clone().into_bytes(),
                "text/html; charset=utf-8",
                false,
            ),
            // The day's copy: the first run of the day writes it, later runs find it there.
            (
                dated.as_str(),
                html.into_bytes(),
                "text/html; charset=utf-8",
                true,
            ),
        ] {
            let mut put = self
                .s3
                .put_object()
                .bucket(&self.reports_bucket)
                .key(key)
                .content_type(content_type)
                .body(ByteStream::from(body));
            if once {
                put = put.if_none_match("*");
            }
            match put.send().await {
                Ok(_) => written.push(format!("s3://{}/{key}", self.reports_bucket)),
                Err(e) if once && e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {}
                Err(e) => run_errors.push(format!(
                    "report s3://{}/{key} not written: {}",
                    self.reports_bucket,
                    AwsError::from_sdk("s3:PutObject", self.region(), &e)
                )),
            }
        }
        written
    }
}

fn trigger_of(payload: Value) -> Result<&'static str, HandlerError> {
    match input::classify(payload)? {
        Incoming::Event(event) if event.detail_type == input::SCHEDULED_EVENT => Ok("schedule"),
        Incoming::Event(event) => Err(HandlerError::InvalidInput(format!(
            "the monitor function handles EventBridge `{}` events, not `{}` (from {})",
            input::SCHEDULED_EVENT,
            event.detail_type,
            event.source
        ))),
        Incoming::Manual { action, payload } if action == ACTION => {
            input::parse_request::<MonitorRequest>(payload)?;
            Ok("manual")
        }
        Incoming::Manual { action, .. } => Err(input::unknown_action(&action, &[ACTION])),
    }
}

/// The drill evidence in one ledger object: its `restore-drill` results with a verdict (an infrastructure
/// failure has none: it says nothing of the recovery point).
pub fn drill_evidence(run: &RunRecord) -> Vec<DrillEvidence> {
    run.records
        .iter()
        .filter(|r| r.action == "restore-drill" && r.phase == Phase::Result)
        .filter_map(|r| {
            let d = &r.details;
            let passed = d.get("passed")?.as_bool()?;
            let snapshot = d
                .get("snapshot")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let checks = d
                .get("checks")
                .and_then(Value::as_array)
                .map(|checks| {
                    checks
                        .iter()
                        .filter_map(|c| {
                            Some(CheckEvidence {
                                name: c.get("name")?.as_str()?.to_string(),
                                passed: c.get("passed")?.as_bool()?,
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let seconds = |name: &str| d.get(name).and_then(Value::as_u64).unwrap_or(0);
            Some(DrillEvidence {
                database: r.database.clone(),
                region: r.region.clone(),
                snapshot: snapshot.rsplit(':').next().unwrap_or(snapshot).to_string(),
                at: r.time,
                passed,
                restore_seconds: seconds("restore_seconds"),
                drill_seconds: seconds("drill_seconds"),
                checks,
            })
        })
        .collect()
}

/// Whether CloudWatch has `FreeStorageSpace` of the DB instance `database`: not while it is stopped (or
/// stopping), when RDS publishes none.
pub fn storage_readable(database: &Database) -> bool {
    !matches!(database.status.as_str(), "stopped" | "stopping")
}

/// The run errors for the `instances` whose free storage was asked for and CloudWatch gave no datapoint in `free`:
/// their storage is unknown and their `storage-high` condition held as it was, so each is named.
pub fn storage_missing(instances: &[String], free: &BTreeMap<String, u64>) -> Vec<String> {
    instances
        .iter()
        .filter(|i| !free.contains_key(*i))
        .map(|i| {
            format!(
                "storage of {i} unknown: CloudWatch gave no FreeStorageSpace datapoint in the last 30 minutes \
                 (its storage-high condition is held as it was); check the instance's status and its metrics"
            )
        })
        .collect()
}

/// The newest evidence of each database and region.
fn newest_drills(drills: impl IntoIterator<Item = DrillEvidence>) -> Vec<DrillEvidence> {
    let mut newest: BTreeMap<(String, String), DrillEvidence> = BTreeMap::new();
    for drill in drills {
        let key = (drill.database.clone(), drill.region.clone());
        if newest.get(&key).is_none_or(|d| d.at < drill.at) {
            newest.insert(key, drill);
        }
    }
    newest.into_values().collect()
}

/// The RPO table: each database's best source per region.
pub fn rpo_rows(assessment: &Assessment) -> Vec<RpoRow> {
    assessment
        .databases
        .iter()
        .flat_map(|db| {
            db.regions.iter().map(|region| RpoRow {
                database: db.identifier.clone(),
                region: region.region.clone(),
                source: region
                    .best()
                    .map_or_else(|| "none".to_string(), |b| b.source.to_string()),
                rpo_seconds: region.best().map(|b| b.rpo_seconds),
                objective_seconds: db.rpo_objective_seconds,
                status: region.status,
            })
        })
        .collect()
}

/// The SNS subject and body announcing `announcements`: what opened (worst first, with the next step), what is
/// still open, what cleared.
pub fn message(
    announcements: &Announcements,
    assessment: &Assessment,
    region: &str,
) -> (String, String) {
    let critical = announcements
        .opened
        .iter()
        .chain(announcements.reminders.iter().map(|r| &r.condition))
        .any(|c| c.severity == Severity::Critical);
    let mut counts = Vec::new();
    for (n, what) in [
        (announcements.opened.len(), "new"),
        (announcements.reminders.len(), "still open"),
        (announcements.cleared.len(), "cleared"),
    ] {
        if n > 0 {
            counts.push(format!("{n} {what}"));
        }
    }
    let subject = format!(
        "Lifeboat monitor {} in {region}: {}",
        if critical { "ACTION NEEDED" } else { "posture" },
        counts.join(", ")
    );
    let mut body = String::new();
    let _ = writeln!(
        body,
        "Lifeboat monitor, deployment {} ({region}), policy {}, at {}\n",
        assessment.deployment,
        assessment.policy,
        assessment
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    if !announcements.opened.is_empty() {
        let _ = writeln!(body, "NEW");
        for c in &announcements.opened {
            let _ = writeln!(
                body,
                "- [{}] {}\n  Next step: {}",
                c.severity.as_str(),
                c.message,
                c.next_step
            );
        }
        body.push('\n');
    }
    if !announcements.reminders.is_empty() {
        let _ = writeln!(body, "STILL OPEN");
        for r in &announcements.reminders {
            let open = (assessment.at - r.open_since).num_seconds().max(0) as u64;
            let unchecked = r.not_rechecked_since.map_or_else(String::new, |t| {
                format!(
                    ", not re-checked since {}: read failed",
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )
            });
            let _ = writeln!(
                body,
                "- [{}] {} (open {}{unchecked})\n  Next step: {}",
                r.condition.severity.as_str(),
                r.condition.message,
                human(open),
                r.condition.next_step
            );
        }
        body.push('\n');
    }
    if !announcements.cleared.is_empty() {
        let _ = writeln!(body, "CLEARED");
        for c in &announcements.cleared {
            let _ = writeln!(
                body,
                "- {} (since {})",
                c.condition.message,
                c.opened_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
        }
        body.push('\n');
    }
    let held = assessment.held_open.len();
    let _ = writeln!(
        body,
        "{} condition(s) open in all{}. The posture report: {REPORT_HTML_KEY} in the reports bucket (stack output PostureReportUrl).",
        assessment.conditions.len() + held,
        if held > 0 {
            format!(" ({held} not re-checked this run: a read failed)")
        } else {
            String::new()
        }
    );
    (subject, body)
}

/// Reported for a region that has no recovery point at all (infinitely late): a large fraction.
pub const NO_RECOVERY_POINT_FRACTION: f64 = 65_535.0;

/// The `WorstRpoFraction` values to publish, per database and for the deployment. Only regions whose RPO is known
/// count. While some region's RPO is unknown (its snapshots or replicated automated backups could not be read) a
/// worst fraction of 1 or less is not published at all: it could be a breach hidden in the unknown region, and
/// the `rpo-breached` alarm treats missing data as `ignore` (it keeps its state), so it cannot go OK on a partial
/// read. A known breach (above 1) is published whatever else is unknown.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorstRpo {
    /// Per database identifier.
    pub databases: BTreeMap<String, f64>,
    /// Over every database.
    pub overall: Option<f64>,
}

impl WorstRpo {
    /// The values to publish for `assessment`.
    pub fn of(assessment: &Assessment) -> Self {
        let publishable =
            |worst: Option<f64>, unknown: bool| worst.filter(|w| !unknown || *w > 1.0);
        let mut databases = BTreeMap::new();
        let (mut overall, mut any_unknown): (Option<f64>, bool) = (None, false);
        for db in &assessment.databases {
            let unknown = db.regions.iter().any(|r| r.status == RpoStatus::Unknown);
            let worst = db
                .regions
                .iter()
                .filter(|r| r.status != RpoStatus::Unknown)
                .map(|r| r.best().map_or(NO_RECOVERY_POINT_FRACTION, |b| b.fraction))
                .reduce(f64::max);
            if let Some(w) = publishable(worst, unknown) {
                databases.insert(db.identifier.clone(), w);
            }
            any_unknown |= unknown;
            overall = match (overall, worst) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        Self {
            databases,
            overall: publishable(overall, any_unknown),
        }
    }
}

/// The threshold of the `snapshot-quota-high` alarm (`infra/template.yaml`), in per cent.
pub const QUOTA_ALARM_PERCENT: f64 = 80.0;

/// The `SnapshotQuotaUsedPercent` values to publish: (region, kind, per cent). The `snapshot-quota-high` alarm
/// takes the maximum over every region and treats missing data as `ignore`, so a region left out because its
/// quota could not be read would let the alarm go OK (and ALARM again on the next good read) while that region
/// is still nearly full. So while some region's quota is unread, nothing is published unless a known value is
/// above the alarm's threshold (that one holds whatever the unread region): the alarm keeps its state.
pub fn quota_percents(assessment: &Assessment) -> Vec<(&str, DatabaseKind, f64)> {
    let values: Vec<(&str, DatabaseKind, f64)> = assessment
        .quotas
        .iter()
        .map(|q| (q.region.as_str(), q.kind, q.fraction * 100.0))
        .collect();
    let some_unread = assessment
        .undecided
        .iter()
        .any(|u| u.kind == ConditionKind::QuotaHigh);
    if some_unread && !values.iter().any(|v| v.2 > QUOTA_ALARM_PERCENT) {
        return Vec::new();
    }
    values
}

/// EMF metrics of the assessment: RPO seconds and fraction per database, region and source (and the region's
/// best as source `best`), the worst RPO fraction per database and overall (see [`WorstRpo`]), quota use, drill evidence age, open
/// conditions by severity. Every metric carries the `Deployment` dimension (added by [`Metrics`]); the
/// deployment-wide ones carry no other dimension besides `Function` (and `Severity` for open conditions).
pub fn emit_metrics(assessment: &Assessment, run_errors: usize, now: DateTime<Utc>) {
    metrics_of(assessment, run_errors, now).emit();
}

/// The metrics [`emit_metrics`] writes.
pub fn metrics_of(assessment: &Assessment, run_errors: usize, now: DateTime<Utc>) -> Metrics {
    let mut metrics = Metrics::new(FUNCTION, &assessment.deployment, now);
    let worst_rpo = WorstRpo::of(assessment);
    for db in &assessment.databases {
        for region in &db.regions {
            let best = region.best().map(|b| b.source.as_str());
            for source in &region.sources {
                let mut names = vec![source.source.as_str()];
                if Some(source.source.as_str()) == best {
                    names.push("best");
                }
                for name in names {
                    let dims = [
                        ("Database", db.identifier.as_str()),
                        ("Region", region.region.as_str()),
                        ("Source", name),
                    ];
                    metrics.put(
                        &dims,
                        "RpoSeconds",
                        source.rpo_seconds as f64,
                        Unit::Seconds,
                    );
                    metrics.put(&dims, "RpoFraction", source.fraction, Unit::Count);
                }
            }
        }
        if let Some(w) = worst_rpo.databases.get(&db.identifier) {
            metrics.put(
                &[("Database", db.identifier.as_str())],
                "WorstRpoFraction",
                *w,
                Unit::Count,
            );
        }
        if let Some(rto) = &db.rto {
            metrics.put(
                &[
                    ("Database", db.identifier.as_str()),
                    ("Region", rto.drill.region.as_str()),
                ],
                "DrillEvidenceAgeSeconds",
                rto.age_seconds as f64,
                Unit::Seconds,
            );
            metrics.put(
                &[
                    ("Database", db.identifier.as_str()),
                    ("Region", rto.drill.region.as_str()),
                ],
                "RestoreSeconds",
                rto.drill.restore_seconds as f64,
                Unit::Seconds,
            );
        }
    }
    // Deployment-wide: only the Function and Deployment dimensions every metric carries.
    let overall: [(&str, &str); 0] = [];
    if let Some(w) = worst_rpo.overall {
        metrics.put(&overall, "WorstRpoFraction", w, Unit::Count);
    }
    for (region, kind, percent) in quota_percents(assessment) {
        metrics.put(
            &[("Region", region), ("Kind", kind.as_str())],
            "SnapshotQuotaUsedPercent",
            percent,
            Unit::Percent,
        );
    }
    let severities: BTreeSet<Severity> = [Severity::Critical, Severity::Warning].into();
    for severity in severities {
        // Held open (not re-checked this run: a read failed) is still open.
        let open = assessment
            .conditions
            .iter()
            .chain(assessment.held_open.iter().map(|h| &h.condition))
            .filter(|c| c.severity == severity)
            .count();
        metrics.put(
            &[("Severity", severity.as_str())],
            "OpenConditions",
            open as f64,
            Unit::Count,
        );
    }
    metrics.put(
        &overall,
        "UnprotectedDatabases",
        assessment.unprotected.len() as f64,
        Unit::Count,
    );
    metrics.put(&overall, "MonitorRuns", 1.0, Unit::Count);
    metrics.put(&overall, "MonitorRunErrors", run_errors as f64, Unit::Count);
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat::monitor::{
        DatabaseAssessment, PointInTimeFacts, PointInTimePosture, RegionRpo, Source, SourceRpo,
    };

    fn region(name: &str, status: RpoStatus, best: Option<f64>) -> RegionRpo {
        RegionRpo {
            region: name.into(),
            primary: name == "us-east-1",
            sources: best
                .map(|fraction| SourceRpo {
                    source: Source::Copy,
                    recovery_point: "2026-11-22T00:00:00Z".parse().unwrap(),
                    resource: None,
                    rpo_seconds: (fraction * 3600.0) as u64,
                    fraction,
                })
                .into_iter()
                .collect(),
            status,
            unknown_because: None,
        }
    }

    fn assessment(databases: Vec<(&str, Vec<RegionRpo>)>) -> Assessment {
        Assessment {
            at: "2026-11-22T03:00:00Z".parse().unwrap(),
            deployment: "lifeboat".into(),
            home_region: "us-east-1".into(),
            policy: "p".into(),
            databases: databases
                .into_iter()
                .map(|(id, regions)| DatabaseAssessment {
                    identifier: id.into(),
                    kind: DatabaseKind::Instance,
                    engine: "postgres".into(),
                    encrypted: true,
                    plan: "prod".into(),
                    rpo_objective_seconds: 3600,
                    rto_objective_seconds: 14_400,
                    regions,
                    last_snapshot: None,
                    copies: vec![],
                    point_in_time: PointInTimePosture {
                        facts: PointInTimeFacts::default(),
                        min_retention_days: None,
                        replication: vec![],
                    },
                    rto: None,
                    storage: None,
                })
                .collect(),
            unprotected: vec![],
            quotas: vec![],
            conditions: vec![],
            undecided: vec![],
            held_open: vec![],
        }
    }

    /// The deployment-wide `WorstRpoFraction` as rendered in the EMF lines, if published.
    fn published_overall(a: &Assessment) -> Option<f64> {
        metrics_of(a, 0, a.at).render().iter().find_map(|line| {
            let doc: Value = serde_json::from_str(line).unwrap();
            (doc.get("Database").is_none())
                .then(|| doc.get("WorstRpoFraction").and_then(Value::as_f64))
                .flatten()
        })
    }

    /// The worst-RPO metric never looks healthy on a partial read: while a region's RPO is unknown, a worst of 1
    /// or less is not published (the `rpo-breached` alarm, `TreatMissingData: ignore`, keeps its state), an unknown
    /// region's stale source does not count either, and a known breach is published whatever is unknown.
    #[test]
    fn the_worst_rpo_is_not_published_healthy_while_a_region_is_unknown() {
        use RpoStatus::{Breached, Met, Unknown};
        let east = |f| region("us-east-1", Met, Some(f));
        // Everything known: published.
        let known = assessment(vec![(
            "a",
            vec![east(0.5), region("us-west-2", Met, Some(0.8))],
        )]);
        assert_eq!(
            WorstRpo::of(&known),
            WorstRpo {
                databases: [("a".to_string(), 0.8)].into(),
                overall: Some(0.8)
            }
        );
        assert_eq!(published_overall(&known), Some(0.8));
        // A DR region unknown (unread): nothing healthy-looking published, for the database or the deployment.
        let unknown = assessment(vec![(
            "a",
            vec![east(0.5), region("us-west-2", Unknown, None)],
        )]);
        assert_eq!(WorstRpo::of(&unknown), WorstRpo::default());
        assert_eq!(published_overall(&unknown), None);
        // Its stale copy (the replicated backups unread) is no breach either.
        let stale = assessment(vec![(
            "a",
            vec![east(0.2), region("us-west-2", Unknown, Some(4.0))],
        )]);
        assert_eq!(WorstRpo::of(&stale), WorstRpo::default());
        // A known breach elsewhere is published (the alarm goes to ALARM): it holds whatever the unknown region.
        let breach = assessment(vec![
            ("a", vec![east(0.5), region("us-west-2", Unknown, None)]),
            ("b", vec![east(3.0)]),
            ("c", vec![east(0.1), region("us-west-2", Breached, None)]),
        ]);
        assert_eq!(
            WorstRpo::of(&breach),
            WorstRpo {
                databases: [
                    ("b".to_string(), 3.0),
                    ("c".to_string(), NO_RECOVERY_POINT_FRACTION)
                ]
                .into(),
                overall: Some(NO_RECOVERY_POINT_FRACTION)
            }
        );
        assert_eq!(published_overall(&breach), Some(NO_RECOVERY_POINT_FRACTION));
    }

    /// The quota metric never looks healthy on a partial read: with the 90 % region unread, the 10 % region alone
    /// is not published (the alarm takes the maximum over regions and would go OK, then ALARM on the next good
    /// read); a known value above the alarm's threshold is published whatever is unread.
    #[test]
    fn the_quota_metric_is_not_published_healthy_while_a_region_is_unread() {
        use lifeboat::monitor::{QuotaAssessment, Undecided};
        let quota = |region: &str, percent: f64| QuotaAssessment {
            region: region.into(),
            kind: DatabaseKind::Instance,
            used: percent as u64,
            max: 100,
            fraction: percent / 100.0,
            days_until_full: None,
        };
        let published = |a: &Assessment| -> Vec<(String, f64)> {
            metrics_of(a, 0, a.at)
                .render()
                .iter()
                .filter_map(|line| {
                    let doc: Value = serde_json::from_str(line).unwrap();
                    let percent = doc.get("SnapshotQuotaUsedPercent")?.as_f64()?;
                    Some((doc["Region"].as_str()?.to_string(), percent))
                })
                .collect()
        };
        let mut both = assessment(vec![]);
        both.quotas = vec![quota("us-east-1", 10.0), quota("us-west-2", 90.0)];
        assert_eq!(
            published(&both),
            [
                ("us-east-1".to_string(), 10.0),
                ("us-west-2".to_string(), 90.0)
            ]
        );
        // us-west-2 (90 %) unread: the 10 % of us-east-1 alone would clear the alarm.
        let unread: Undecided = serde_json::from_value(
            serde_json::json!({"kind": "quota-high", "region": "us-west-2"}),
        )
        .unwrap();
        let mut partial = assessment(vec![]);
        partial.quotas = vec![quota("us-east-1", 10.0)];
        partial.undecided = vec![unread.clone()];
        assert_eq!(published(&partial), []);
        // A known value above the threshold holds whatever is unread: published.
        partial.quotas = vec![quota("us-east-1", 85.0)];
        assert_eq!(published(&partial), [("us-east-1".to_string(), 85.0)]);
    }

    /// A condition held open unchecked (a read failed) counts in the message's open count, which says so, and in
    /// the `OpenConditions` metric.
    #[test]
    fn held_open_conditions_count_as_open_in_the_message_and_metrics() {
        use lifeboat::monitor::{Condition, ConditionKey, ConditionKind, HeldOpen};
        let condition = |kind, resource: &str| Condition {
            key: ConditionKey {
                kind,
                resource: resource.into(),
                region: "us-east-1".into(),
            },
            severity: Severity::Critical,
            database: Some(resource.into()),
            message: format!("{kind} on {resource}"),
            next_step: "fix it".into(),
        };
        let mut a = assessment(vec![]);
        a.conditions = vec![condition(ConditionKind::RpoBreach, "a")];
        a.held_open = vec![HeldOpen {
            condition: condition(ConditionKind::StorageHigh, "b"),
            open_since: "2026-11-21T00:00:00Z".parse().unwrap(),
            checked_at: "2026-11-22T02:30:00Z".parse().unwrap(),
        }];
        let announcements = Announcements {
            opened: a.conditions.clone(),
            reminders: vec![alerts::Reminder {
                condition: a.held_open[0].condition.clone(),
                open_since: a.held_open[0].open_since,
                not_rechecked_since: Some(a.held_open[0].checked_at),
            }],
            ..Announcements::default()
        };
        let (_, body) = message(&announcements, &a, "us-east-1");
        assert!(
            body.contains("- [critical] storage-high on b (open 1d 3h, not re-checked since 2026-11-22T02:30:00Z: read failed)"),
            "{body}"
        );
        assert!(
            body.contains("2 condition(s) open in all (1 not re-checked this run: a read failed)."),
            "{body}"
        );
        let critical = metrics_of(&a, 0, a.at).render().iter().find_map(|line| {
            let doc: Value = serde_json::from_str(line).unwrap();
            (doc.get("Severity").and_then(Value::as_str) == Some("critical"))
                .then(|| doc.get("OpenConditions").and_then(Value::as_f64))
                .flatten()
        });
        assert_eq!(critical, Some(2.0));
    }

    /// A missing `FreeStorageSpace` datapoint is a run error naming the instance (its storage-high condition is held
    /// silently otherwise); a stopped instance is not read at all (RDS publishes nothing for it).
    #[test]
    fn a_missing_storage_datapoint_is_a_run_error_and_stopped_instances_are_not_read() {
        let instances = ["a".to_string(), "b".to_string()];
        let free: BTreeMap<String, u64> = [("a".to_string(), 1u64 << 30)].into();
        let errors = storage_missing(&instances, &free);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0]
                .starts_with("storage of b unknown: CloudWatch gave no FreeStorageSpace datapoint"),
            "{errors:?}"
        );
        assert!(storage_missing(&instances[..1], &free).is_empty());
        let db = |status: &str| Database {
            identifier: "db".into(),
            kind: DatabaseKind::Instance,
            arn: "arn:aws:rds:us-east-1:123456789012:db:db".into(),
            region: "us-east-1".into(),
            engine: "postgres".into(),
            status: status.into(),
            encrypted: true,
            cluster: None,
            endpoint: None,
            master_username: None,
            engine_version: None,
            replica_source: None,
            tags: Default::default(),
        };
        assert!(storage_readable(&db("available")));
        assert!(storage_readable(&db("backing-up")));
        assert!(!storage_readable(&db("stopped")));
        assert!(!storage_readable(&db("stopping")));
    }

    /// The state the previous version wrote (no `creating_since`) still loads, as it was, with nothing seen
    /// creating yet; the new field round-trips.
    #[test]
    fn a_state_written_before_creating_since_still_loads() {
        let previous = r#"{"schema":1,"alerts":{"open":{}},"quota_history":{"samples":{"us-east-1/instance":[{"at":"2026-11-22T02:45:00Z","used":12}]}},"drills":[],"drills_read_until":"2026-11-22T02:45:00Z"}"#;
        let state: MonitorState = serde_json::from_str(previous).expect("the previous state loads");
        assert_eq!(state.schema, 1);
        assert_eq!(
            state.quota_history.of("us-east-1", DatabaseKind::Instance)[0].used,
            12
        );
        assert_eq!(state.creating_since, CreatingSince::default());
        assert!(state.unreadable_since.is_empty());
        let mut next = state.clone();
        next.creating_since.snapshots.insert(
            "arn:aws:rds:us-east-1:123456789012:snapshot:s".into(),
            lifeboat::monitor::FirstSeenCreating {
                region: "us-east-1".into(),
                at: "2026-11-22T03:00:00Z".parse().unwrap(),
            },
        );
        let json = serde_json::to_string(&next).unwrap();
        assert_eq!(serde_json::from_str::<MonitorState>(&json).unwrap(), next);
    }
}
