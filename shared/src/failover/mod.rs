//! Failover planning (pure): what a failover, a failover drill or a failback of a plan's application database
//! would do, what data it would lose, and the next step of one in progress.
//!
//! The failover function reads the world (alarms, the databases in both regions, recovery points in the DR region,
//! Route 53), asks [`propose`] what to do, keeps a [`Run`] in its state object, and on every invocation takes
//! [`next_step`] until it has to wait. Every step is idempotent: a crash between two of them repeats the last one.

pub mod dns;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::aws::rds::{GlobalDatabase, Replica};
use crate::model::{Database, DatabaseKind, Snapshot};
use crate::policy::{Failover, FailoverMode, Objectives, StrategyKind};
use crate::restore::adhoc::Window;
use crate::restore::tag_time;

/// Identifier prefix of the databases a real failover restores (never deleted by Lifeboat).
pub const FAILOVER_PREFIX: &str = "lbfailover-";
/// Identifier prefix of the databases a failover drill restores (deleted when the drill ends).
pub const DRILL_PREFIX: &str = "lbfodrill-";
/// Identifier prefix of the replicas a failback makes in the primary region (the application's database after it).
pub const FAILBACK_PREFIX: &str = "lbfailback-";
/// The failback replica's key when the policy names none: RDS's own key in the primary region.
pub const DEFAULT_FAILBACK_KEY: &str = "alias/aws/rds";
/// Finished runs kept in the state object, newest last.
pub const HISTORY: usize = 10;

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The application's database moves to the DR region.
    Failover,
    /// The whole procedure on drill resources and the drill record, then cleaned up.
    Drill,
    /// The application's database moves back to the primary region.
    Failback,
}

impl Kind {
    /// Name in messages and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Failover => "failover",
            Kind::Drill => "failover drill",
            Kind::Failback => "failback",
        }
    }
}

/// What started a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Trigger {
    /// A CloudWatch alarm went into ALARM.
    Alarm {
        /// The alarm's name.
        name: String,
        /// When it went into ALARM (the start of the measured recovery time).
        at: DateTime<Utc>,
    },
    /// An operator asked.
    Manual {
        /// Who asked.
        requested_by: String,
    },
    /// The plan's drill schedule.
    Schedule,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Waiting for an on-call person's approval; nothing has changed.
    AwaitingApproval,
    /// Making the DR database ready (restore, promotion, global switchover, replica back).
    Preparing,
    /// Failback: the replica in the primary region is ready; waiting for the operator to stop writes and approve
    /// the cutover.
    AwaitingCutover,
    /// Running the plan's checks against the new database.
    Checking,
    /// Pointing the application's names at the new database.
    SwitchingDns,
    /// Drill: removing the drill record and database.
    CleaningUp,
    /// Finished: the names resolve to the new database (a drill: and it is cleaned up).
    Done,
    /// Stopped before anything changed (the alarm cleared, the approval expired).
    Cancelled,
    /// Stopped by a failure an operator must look at; the message says what was done and what is next.
    Failed,
}

impl Phase {
    /// Whether the run is over.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Done | Phase::Cancelled | Phase::Failed)
    }

    /// As shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::AwaitingApproval => "awaiting-approval",
            Phase::Preparing => "preparing",
            Phase::AwaitingCutover => "awaiting-cutover",
            Phase::Checking => "checking",
            Phase::SwitchingDns => "switching-dns",
            Phase::CleaningUp => "cleaning-up",
            Phase::Done => "done",
            Phase::Cancelled => "cancelled",
            Phase::Failed => "failed",
        }
    }
}

/// A recovery point in the DR region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RecoveryPoint {
    /// A copy (manual snapshot) there.
    Snapshot {
        /// Its identifier.
        identifier: String,
        /// Its ARN.
        arn: String,
        /// The time of its data.
        time: DateTime<Utc>,
    },
    /// Automated backups replicated there, restored to their latest restorable time.
    ReplicatedBackup {
        /// Their ARN.
        arn: String,
        /// The latest restorable time.
        time: DateTime<Utc>,
    },
}

impl RecoveryPoint {
    /// The time of its data.
    pub fn time(&self) -> DateTime<Utc> {
        match self {
            RecoveryPoint::Snapshot { time, .. } | RecoveryPoint::ReplicatedBackup { time, .. } => {
                *time
            }
        }
    }

    /// How it is named in messages.
    pub fn describe(&self) -> String {
        match self {
            RecoveryPoint::Snapshot {
                identifier, time, ..
            } => {
                format!("copy {identifier} (data of {})", tag_time(*time))
            }
            RecoveryPoint::ReplicatedBackup { time, .. } => {
                format!("replicated automated backups to {}", tag_time(*time))
            }
        }
    }
}

/// How the new database is made ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Action {
    /// Planned switchover of an Aurora global database to the cluster in the target region (no data loss).
    GlobalSwitchover {
        /// The global database.
        global: String,
        /// ARN of the cluster that becomes the writer.
        target_arn: String,
    },
    /// Unplanned failover of an Aurora global database (the primary region is unhealthy).
    GlobalFailover {
        /// The global database.
        global: String,
        /// ARN of the cluster that becomes the writer.
        target_arn: String,
        /// `AllowDataLoss`: the policy and the approval both accepted losing unreplicated writes.
        allow_data_loss: bool,
    },
    /// Promote the cross-region read replica `replica`.
    PromoteReplica {
        /// The replica's identifier.
        replica: String,
    },
    /// Restore `point` in the DR region through the restore engine.
    Restore {
        /// The recovery point.
        point: RecoveryPoint,
        /// Instance or cluster.
        kind: DatabaseKind,
        /// Engine of the source.
        engine: String,
        /// Instance class.
        instance_class: String,
        /// DB subnet group there.
        subnet_group: String,
        /// Security groups there.
        security_groups: Vec<String>,
        /// The source's parameter group, where it exists there.
        parameter_group: Option<String>,
    },
    /// Failback: a cross-region read replica of the DR database in the primary region, promoted at cutover.
    ReplicaBack {
        /// ARN of the database it replicates (the DR database).
        source_arn: String,
        /// Region of that database.
        source_region: String,
        /// Instance class.
        instance_class: String,
        /// DB subnet group in the primary region.
        subnet_group: String,
        /// Security groups in the primary region.
        security_groups: Vec<String>,
        /// KMS key in the primary region when the DR database is encrypted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kms_key: Option<String>,
    },
}

impl Action {
    /// What it does, for the approval request.
    pub fn describe(&self, target: &str, region: &str) -> String {
        match self {
            Action::GlobalSwitchover { global, .. } => format!(
                "switch over Aurora global database {global} to its cluster {target} in {region} (planned: both \
                 regions healthy, no data lost)"
            ),
            Action::GlobalFailover {
                global,
                allow_data_loss,
                ..
            } => format!(
                "fail over Aurora global database {global} to its cluster {target} in {region}{}",
                if *allow_data_loss {
                    " allowing data loss (writes not yet replicated are lost)"
                } else {
                    ""
                }
            ),
            Action::PromoteReplica { replica } => format!(
                "promote the cross-region read replica {replica} in {region} to a standalone writable database"
            ),
            Action::Restore { point, .. } => format!(
                "restore {} in {region} as the new database {target}",
                point.describe()
            ),
            Action::ReplicaBack { source_arn, .. } => format!(
                "create {target} in {region}, a read replica of {source_arn}; once it is in step, stop writes, \
                 approve the cutover, and it is promoted"
            ),
        }
    }

    /// Which strategy this is.
    pub fn strategy(&self) -> StrategyKind {
        match self {
            Action::GlobalSwitchover { .. } | Action::GlobalFailover { .. } => {
                StrategyKind::GlobalDatabase
            }
            Action::PromoteReplica { .. } | Action::ReplicaBack { .. } => StrategyKind::Replica,
            Action::Restore { .. } => StrategyKind::Restore,
        }
    }
}

/// The data a run would lose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataLoss {
    /// Seconds of writes lost (the recovery point's age), when known.
    pub seconds: Option<i64>,
    /// In words, for the approval request.
    pub description: String,
    /// Over the plan's RPO: the approval must accept it explicitly.
    pub over_rpo: bool,
    /// Writes may be lost: the approval must say so (`accept_data_loss`).
    pub needs_acceptance: bool,
}

/// What a run will do, decided before anything changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The action.
    pub action: Action,
    /// The new database (instance or cluster identifier) in `to_region`.
    pub target: String,
    /// Instance or cluster.
    pub target_kind: DatabaseKind,
    /// The time of the data the new database starts from, when known.
    pub data_time: Option<DateTime<Utc>>,
    /// The data lost.
    pub loss: DataLoss,
    /// What was found that an operator should know (parameter group missing, engine version differs, ...).
    pub warnings: Vec<String>,
}

/// Everything [`propose`] looks at, read before planning.
pub struct Situation<'a> {
    /// Failover, drill or failback.
    pub kind: Kind,
    /// The plan's failover section.
    pub settings: &'a Failover,
    /// The plan's objectives.
    pub objectives: &'a Objectives,
    /// The deployment's primary region.
    pub primary_region: &'a str,
    /// Now.
    pub now: DateTime<Utc>,
    /// The application's database in the primary region (`None`: not readable, the region may be down).
    pub primary: Option<&'a Database>,
    /// An alarm says the primary is unhealthy (an Aurora cluster may still report `available` when its writer is
    /// gone): a global database then fails over rather than switching over.
    pub incident: bool,
    /// The Aurora global database the primary cluster belongs to.
    pub global: Option<&'a GlobalDatabase>,
    /// Cross-region read replicas of the primary database in the DR region.
    pub replicas: &'a [Replica],
    /// The plan's recovery points of the database in the DR region (copies).
    pub copies: &'a [Snapshot],
    /// Replicated automated backups of the database in the DR region: their ARN and window.
    pub replicated: Option<(&'a str, Window)>,
    /// Engine of the database (from the primary, or from its copies when the primary is unreadable).
    pub engine: Option<&'a str>,
    /// Instance class of the database, when known.
    pub instance_class: Option<&'a str>,
    /// Network for a new database in the region it is made in.
    pub network: Network<'a>,
    /// Failback: the database the application uses in the DR region now.
    pub serving: Option<&'a Database>,
    /// Failback: the failover that moved it there.
    pub failed_over_with: Option<&'a Action>,
    /// What was found missing in the target region (subnet group, KMS key): each blocks the run.
    pub missing: Vec<String>,
    /// The source's parameter group (`None`: unknown, or the engine default).
    pub source_parameter_group: Option<&'a str>,
    /// That parameter group, when it exists in the target region.
    pub parameter_group: Option<&'a str>,
}

/// Where a new database goes.
#[derive(Debug, Clone, Copy)]
pub struct Network<'a> {
    /// DB subnet group.
    pub subnet_group: Option<&'a str>,
    /// Security groups.
    pub security_groups: &'a [String],
}

/// Decide what a run of `situation.kind` would do and what it would lose, or say why it cannot be done (every
/// reason, so one approval round fixes them all).
pub fn propose(situation: &Situation<'_>) -> Result<Proposal, Vec<String>> {
    let settings = situation.settings;
    if !situation.missing.is_empty() {
        return Err(situation.missing.clone());
    }
    match situation.kind {
        Kind::Failback => propose_failback(situation),
        // A drill never touches a replica or a global database: promoting or switching them is not reversible
        // without production impact. It restores the newest recovery point, as a last-resort failover would.
        Kind::Drill => propose_restore(situation)?.ok_or_else(|| {
            vec![format!(
                "nothing to drill: no recovery point of {} in {}",
                situation.settings.database, situation.settings.region
            )]
        }),
        Kind::Failover => {
            let mut reasons = Vec::new();
            for strategy in &settings.strategies {
                let proposed = match strategy {
                    StrategyKind::GlobalDatabase => propose_global(situation),
                    StrategyKind::Replica => propose_replica(situation),
                    StrategyKind::Restore => propose_restore(situation),
                };
                match proposed {
                    Ok(Some(proposal)) => return Ok(proposal),
                    Ok(None) => {}
                    Err(mut why) => reasons.append(&mut why),
                }
            }
            if reasons.is_empty() {
                reasons.push(format!(
                    "none of the strategies {} applies to {} in {}",
                    settings
                        .strategies
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    settings.database,
                    settings.region
                ));
            }
            Err(reasons)
        }
    }
}

fn rpo_seconds(objectives: &Objectives) -> i64 {
    i64::try_from(objectives.rpo.as_secs()).unwrap_or(i64::MAX)
}

/// A global database with a cluster in the DR region: switchover when the primary is healthy, else failover
/// (which loses unreplicated writes, so the policy must allow it).
fn propose_global(situation: &Situation<'_>) -> Result<Option<Proposal>, Vec<String>> {
    let Some(global) = situation.global else {
        return Ok(None);
    };
    let settings = situation.settings;
    let Some(member) = global
        .members
        .iter()
        .find(|m| m.region == settings.region && !m.writer)
    else {
        return Ok(None);
    };
    let target = member
        .cluster_arn
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let primary_healthy =
        !situation.incident && situation.primary.is_some_and(|db| db.status == "available");
    let (action, loss) = if primary_healthy {
        (
            Action::GlobalSwitchover {
                global: global.id.clone(),
                target_arn: member.cluster_arn.clone(),
            },
            DataLoss {
                seconds: Some(0),
                description: "none: a switchover waits until the DR cluster has every write".into(),
                over_rpo: false,
                needs_acceptance: false,
            },
        )
    } else if settings.allow_data_loss {
        (
            Action::GlobalFailover {
                global: global.id.clone(),
                target_arn: member.cluster_arn.clone(),
                allow_data_loss: true,
            },
            DataLoss {
                seconds: None,
                description: "writes the DR cluster had not received when the primary failed (Aurora's storage \
                              replication lag, typically under a second)"
                    .into(),
                over_rpo: false,
                needs_acceptance: true,
            },
        )
    } else {
        return Err(vec![format!(
            "Aurora global database {} has a cluster in {}, but the primary is not available and the policy does \
             not allow a failover with data loss (failover.allow_data_loss: false)",
            global.id, settings.region
        )]);
    };
    let mut warnings = Vec::new();
    if let Some(primary) = situation.primary
        && let Some(version) = &primary.engine_version
        && version != &global.engine_version
    {
        warnings.push(format!(
            "the primary runs {version}, the global database reports {}",
            global.engine_version
        ));
    }
    Ok(Some(Proposal {
        action,
        target,
        target_kind: DatabaseKind::Cluster,
        data_time: None,
        loss,
        warnings,
    }))
}

/// A cross-region read replica of the database in the DR region, in a state RDS can promote.
fn propose_replica(situation: &Situation<'_>) -> Result<Option<Proposal>, Vec<String>> {
    let Some(replica) = situation
        .replicas
        .iter()
        .find(|r| !crate::restore::is_failed_status(&r.status))
    else {
        return Ok(None);
    };
    if replica.status == "backing-up" {
        return Err(vec![format!(
            "replica {} is backing-up: RDS refuses to promote it until the backup ends",
            replica.id
        )]);
    }
    let mut warnings = Vec::new();
    if let Some(version) = situation.primary.and_then(|p| p.engine_version.as_ref())
        && version != &replica.engine_version
    {
        warnings.push(format!(
            "the primary runs {version}, the replica {}",
            replica.engine_version
        ));
    }
    Ok(Some(Proposal {
        action: Action::PromoteReplica {
            replica: replica.id.clone(),
        },
        target: replica.id.clone(),
        target_kind: DatabaseKind::Instance,
        data_time: None,
        loss: DataLoss {
            seconds: None,
            description: "writes not yet replicated (the replica's lag; RDS replicas usually trail by seconds)"
                .into(),
            over_rpo: false,
            needs_acceptance: situation.primary.is_none_or(|p| p.status != "available"),
        },
        warnings,
    }))
}

/// The newest recovery point of the database in the DR region: its newest available copy, or its replicated
/// automated backups' latest restorable time, whichever is newer.
pub fn newest_recovery_point(
    copies: &[Snapshot],
    replicated: Option<(&str, Window)>,
) -> Option<RecoveryPoint> {
    let copy = copies
        .iter()
        .filter(|s| s.status == "available")
        .max_by_key(|s| (s.created_at, s.identifier.clone()))
        .map(|s| RecoveryPoint::Snapshot {
            identifier: s.identifier.clone(),
            arn: s.arn.clone(),
            time: s.created_at,
        });
    let backups = replicated.map(|(arn, window)| RecoveryPoint::ReplicatedBackup {
        arn: arn.to_string(),
        time: window.latest,
    });
    match (copy, backups) {
        (Some(c), Some(b)) => Some(if b.time() > c.time() { b } else { c }),
        (c, b) => c.or(b),
    }
}

/// Restore the newest recovery point in the DR region.
fn propose_restore(situation: &Situation<'_>) -> Result<Option<Proposal>, Vec<String>> {
    let settings = situation.settings;
    let mut reasons = Vec::new();
    let point = newest_recovery_point(situation.copies, situation.replicated);
    if point.is_none() {
        reasons.push(format!(
            "no recovery point of {} in {}: no available copy and no replicated automated backups",
            settings.database, settings.region
        ));
    }
    let Some(engine) = situation.engine else {
        reasons.push(format!(
            "the engine of {} is unknown (the primary is unreadable and there is no copy to read it from)",
            settings.database
        ));
        return Err(reasons);
    };
    let instance_class = settings
        .instance_class
        .as_deref()
        .or(situation.instance_class);
    if instance_class.is_none() {
        reasons.push(format!(
            "the instance class of {} is unknown while the primary is unreadable: set failover.instance_class",
            settings.database
        ));
    }
    let subnet_group = situation.network.subnet_group;
    if subnet_group.is_none() {
        reasons.push(format!(
            "no DB subnet group for {}: set failover.subnet_group (or verification.regions.{}.subnet_group)",
            settings.region, settings.region
        ));
    }
    if situation.network.security_groups.is_empty() {
        reasons.push(format!(
            "no security groups for {}: set failover.security_groups (a restore without them lands in the VPC's \
             default security group)",
            settings.region
        ));
    }
    let (Some(point), Some(instance_class), Some(subnet_group)) =
        (point, instance_class, subnet_group)
    else {
        return Err(reasons);
    };
    if !reasons.is_empty() {
        return Err(reasons);
    }
    let kind = situation
        .copies
        .first()
        .map(|s| s.kind)
        .or(situation.primary.map(|p| p.kind))
        .unwrap_or(DatabaseKind::Instance);
    let age = (situation.now - point.time()).num_seconds().max(0);
    let over_rpo = age > rpo_seconds(situation.objectives);
    let prefix = if situation.kind == Kind::Drill {
        DRILL_PREFIX
    } else {
        FAILOVER_PREFIX
    };
    let mut warnings = Vec::new();
    if situation.parameter_group.is_none()
        && let Some(group) = situation.source_parameter_group
    {
        warnings.push(format!(
            "parameter group {group} does not exist in {}: the restore uses the engine's default",
            settings.region
        ));
    }
    Ok(Some(Proposal {
        target: target_name(prefix, &settings.database, situation.now),
        target_kind: kind,
        data_time: Some(point.time()),
        loss: DataLoss {
            seconds: Some(age),
            description: format!(
                "{} of writes: everything after {} (the RPO is {})",
                human(age),
                tag_time(point.time()),
                human(rpo_seconds(situation.objectives))
            ),
            over_rpo,
            needs_acceptance: over_rpo,
        },
        action: Action::Restore {
            point,
            kind,
            engine: engine.to_string(),
            instance_class: instance_class.to_string(),
            subnet_group: subnet_group.to_string(),
            security_groups: situation.network.security_groups.to_vec(),
            parameter_group: situation.parameter_group.map(str::to_string),
        },
        warnings,
    }))
}

/// Back to the primary region: a switchover of the global database, or a replica of the DR database there.
fn propose_failback(situation: &Situation<'_>) -> Result<Proposal, Vec<String>> {
    let settings = situation.settings;
    if let Some(Action::GlobalSwitchover { .. } | Action::GlobalFailover { .. }) =
        situation.failed_over_with
    {
        let Some(global) = situation.global else {
            return Err(vec![
                "the failover used an Aurora global database, which cannot be read now".into(),
            ]);
        };
        let Some(member) = global
            .members
            .iter()
            .find(|m| m.region == situation.primary_region && !m.writer)
        else {
            return Err(vec![format!(
                "Aurora global database {} has no secondary cluster in {} to switch back to (after an unplanned \
                 failover, add the old primary back as a secondary first)",
                global.id, situation.primary_region
            )]);
        };
        return Ok(Proposal {
            action: Action::GlobalSwitchover {
                global: global.id.clone(),
                target_arn: member.cluster_arn.clone(),
            },
            target: member
                .cluster_arn
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .to_string(),
            target_kind: DatabaseKind::Cluster,
            data_time: None,
            loss: DataLoss {
                seconds: Some(0),
                description:
                    "none: a switchover waits until the primary-region cluster has every write"
                        .into(),
                over_rpo: false,
                needs_acceptance: false,
            },
            warnings: Vec::new(),
        });
    }
    let Some(serving) = situation.serving else {
        return Err(vec![format!(
            "the database the application uses in {} is not readable",
            settings.region
        )]);
    };
    if serving.kind == DatabaseKind::Cluster {
        return Err(vec![format!(
            "{} is an Aurora cluster outside a global database: fail it back by adding it to a global database \
             (CreateGlobalCluster) and switching over; Lifeboat does not build cross-region cluster replicas",
            serving.identifier
        )]);
    }
    let mut reasons = Vec::new();
    let instance_class = settings
        .instance_class
        .as_deref()
        .or(situation.instance_class);
    if instance_class.is_none() {
        reasons.push("the instance class is unknown: set failover.instance_class".to_string());
    }
    if situation.network.subnet_group.is_none() || situation.network.security_groups.is_empty() {
        reasons.push(format!(
            "no network for the replica in {}: the drills' subnet group and security groups of the primary region \
             (verification.subnet_group, verification.security_groups) are used",
            situation.primary_region
        ));
    }
    let (Some(instance_class), Some(subnet_group), true) = (
        instance_class,
        situation.network.subnet_group,
        reasons.is_empty(),
    ) else {
        return Err(reasons);
    };
    Ok(Proposal {
        action: Action::ReplicaBack {
            source_arn: serving.arn.clone(),
            source_region: settings.region.clone(),
            instance_class: instance_class.to_string(),
            subnet_group: subnet_group.to_string(),
            security_groups: situation.network.security_groups.to_vec(),
            kms_key: serving.encrypted.then(|| {
                settings
                    .failback_kms_key_id
                    .clone()
                    .unwrap_or_else(|| DEFAULT_FAILBACK_KEY.to_string())
            }),
        },
        target: target_name(FAILBACK_PREFIX, &settings.database, situation.now),
        target_kind: DatabaseKind::Instance,
        data_time: None,
        loss: DataLoss {
            seconds: Some(0),
            description: format!(
                "none, if writes to {} stop before the cutover is approved: the replica is promoted only once it \
                 has replayed them",
                serving.identifier
            ),
            over_rpo: false,
            needs_acceptance: false,
        },
        warnings: Vec::new(),
    })
}

/// `prefix` + the database's name (shortened) + the time to the minute: at most 63 characters.
pub fn target_name(prefix: &str, database: &str, now: DateTime<Utc>) -> String {
    let stamp = now.format("%Y%m%d%H%M").to_string();
    let room = 63 - prefix.len() - stamp.len() - 1;
    let base: String = database.chars().take(room).collect();
    format!("{prefix}{}-{stamp}", base.trim_end_matches('-'))
}

/// Seconds in words: `4m 10s`, `2h 5m`, `3d 2h`.
pub fn human(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

/// An operator's approval of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Digest of the one-time token (the token itself is only in the approval request).
    pub token_digest: String,
    /// When the token stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// Who approved, once approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<DateTime<Utc>>,
    /// The approval accepted the data loss stated.
    #[serde(default)]
    pub accepted_data_loss: bool,
}

/// Digest of an approval token as stored (name-based UUID, SHA-1): a leaked state object does not approve.
pub fn token_digest(token: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, token.as_bytes()).to_string()
}

/// One failover, drill or failback, as the state object keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Its identifier (in tags, the ledger and messages).
    pub id: String,
    /// Failover, drill or failback.
    pub kind: Kind,
    /// The plan.
    pub plan: String,
    /// The application's database (its identifier in the primary region).
    pub database: String,
    /// The region the application's database moves from.
    pub from_region: String,
    /// The region it moves to.
    pub to_region: String,
    /// What started it.
    pub trigger: Trigger,
    /// When the incident was detected (the alarm's time, or the request's): the start of the measured RTO.
    pub detected_at: DateTime<Utc>,
    /// The policy's mode when it started.
    pub mode: FailoverMode,
    /// What it does.
    pub proposal: Proposal,
    /// The approval (the failback cutover has a second one, in `cutover`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
    /// Failback: the cutover approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutover: Option<Approval>,
    /// Where it is.
    pub phase: Phase,
    /// When the action was requested from RDS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acted_at: Option<DateTime<Utc>>,
    /// When the new database was first seen ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_at: Option<DateTime<Utc>>,
    /// Where the application connects now, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The checks' results, once they ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<String>,
    /// Whether the checks passed (`None`: not run yet, or not run for this strategy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks_passed: Option<bool>,
    /// The Route 53 change, once submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_change: Option<String>,
    /// When the names were switched (records submitted, health check flipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_submitted_at: Option<DateTime<Utc>>,
    /// When the names resolved to the new database everywhere (`INSYNC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_in_sync_at: Option<DateTime<Utc>>,
    /// What was done about the old primary, and what the operator must do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_primary: Option<String>,
    /// RTO achieved: detection to names in sync, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<i64>,
    /// RPO achieved: the new database's data age at the switch, in seconds (when known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_seconds: Option<i64>,
    /// Why it stopped (cancelled or failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Failed attempts of the current step in a row.
    #[serde(default)]
    pub failures: u32,
    /// Messages sent (`approval`, `cutover`, `done`, `failed`, `cancelled`, `stuck`): each is sent once.
    #[serde(default)]
    pub notified: Vec<String>,
    /// What happened, in order: `(time, what)`.
    #[serde(default)]
    pub history: Vec<(DateTime<Utc>, String)>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
}

impl Run {
    /// Note `what` at `now` in the run's history.
    pub fn note(&mut self, now: DateTime<Utc>, what: impl Into<String>) {
        self.history.push((now, what.into()));
    }

    /// End the run in `phase` with `why`.
    pub fn end(&mut self, phase: Phase, why: impl Into<String>, now: DateTime<Utc>) {
        let why = why.into();
        self.note(now, format!("{}: {why}", phase.as_str()));
        self.phase = phase;
        self.outcome = Some(why);
        self.ended_at = Some(now);
    }

    /// Whether `message` was sent.
    pub fn was_notified(&self, message: &str) -> bool {
        self.notified.iter().any(|m| m == message)
    }

    /// The record names a run may change: a drill its drill record only, others the application's records.
    pub fn record_names<'a>(&self, settings: &'a Failover) -> Vec<&'a str> {
        match self.kind {
            Kind::Drill => settings.dns.drill_record.as_deref().into_iter().collect(),
            Kind::Failover | Kind::Failback => {
                settings.dns.records.iter().map(String::as_str).collect()
            }
        }
    }

    /// Whether the approval (or, awaiting the cutover, the cutover approval) matching `digest` is valid at `now`.
    pub fn accepts(&self, digest: &str, now: DateTime<Utc>) -> Result<(), String> {
        let approval = match self.phase {
            Phase::AwaitingCutover => self.cutover.as_ref(),
            _ => self.approval.as_ref(),
        };
        match approval {
            Some(a) if a.token_digest != digest => {
                Err("the token is not the one this request was sent".into())
            }
            Some(a) if a.expires_at <= now => Err(format!(
                "the token expired at {}: ask again",
                tag_time(a.expires_at)
            )),
            Some(_) => Ok(()),
            None => Err("nothing awaits approval".into()),
        }
    }

    /// The measured recovery: RTO from detection to names in sync, RPO from the data's time to the switch.
    pub fn measure(&mut self, in_sync_at: DateTime<Utc>) {
        self.dns_in_sync_at = Some(in_sync_at);
        self.rto_seconds = Some((in_sync_at - self.detected_at).num_seconds().max(0));
        self.rpo_seconds = match (&self.proposal.action, self.proposal.data_time) {
            (Action::GlobalSwitchover { .. } | Action::ReplicaBack { .. }, _) => Some(0),
            (_, Some(data_time)) => Some(
                (self.acted_at.unwrap_or(in_sync_at) - data_time)
                    .num_seconds()
                    .max(0),
            ),
            _ => None,
        };
    }
}

/// What the function sees of a run's new database when it plans the next step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The new database exists.
    pub exists: bool,
    /// RDS reports it `available`.
    pub available: bool,
    /// RDS reports it failed (restore failed, incompatible network or parameters, key inaccessible).
    pub failed: bool,
    /// It does what the action asked: promoted (no longer a replica), the global writer, restored.
    pub acted: bool,
    /// Restore: its credentials are in place (the engine secured it).
    pub secured: bool,
    /// Its endpoint.
    pub endpoint: Option<String>,
    /// The Route 53 change is `INSYNC`.
    pub dns_in_sync: bool,
}

/// The next step of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do now (RDS or Route 53 is working, or a person must act); why.
    Wait(String),
    /// The approval expired: cancel (nothing changed).
    Expire,
    /// Ask RDS for the action (idempotent: repeated after a crash).
    Act,
    /// Restore: give the new database credentials Lifeboat holds, for the checks.
    Secure,
    /// Failback: the replica is ready; ask for the cutover approval.
    AskCutover,
    /// Failback, cutover approved: promote the replica.
    Promote,
    /// Run the plan's checks.
    Check,
    /// Point the names at the new database (records, or the health check).
    SwitchDns,
    /// The names are in sync: fence the old primary (a real failover), measure, announce.
    Finish,
    /// Drill: remove the drill record and database.
    CleanUp,
    /// RDS failed the new database: stop and report.
    Fail(String),
}

/// The next step of `run` given what is `observed`, at `now` (pure). A run awaiting approval only waits or
/// expires: nothing acts before approval.
pub fn next_step(run: &Run, observed: &Observed, now: DateTime<Utc>) -> Step {
    match run.phase {
        Phase::AwaitingApproval => {
            if run.approval.as_ref().is_some_and(|a| a.expires_at <= now) {
                Step::Expire
            } else {
                Step::Wait("approval".into())
            }
        }
        Phase::Preparing => {
            if observed.failed {
                return Step::Fail(format!(
                    "RDS reports {} failed: the DR database is not usable",
                    run.proposal.target
                ));
            }
            if !observed.exists || !observed.acted {
                // RDS takes minutes to show a promotion or switchover done (modifying, switching-over): the
                // request is repeated (idempotent) only if nothing shows it done after 15 minutes.
                if run
                    .acted_at
                    .is_some_and(|t| now - t < TimeDelta::minutes(15))
                    && observed.exists
                {
                    return Step::Wait(format!("RDS to carry out: {}", action_name(run)));
                }
                return Step::Act;
            }
            if !observed.available {
                return Step::Wait(format!("{} to become available", run.proposal.target));
            }
            match run.proposal.action {
                Action::Restore { .. } if !observed.secured => Step::Secure,
                Action::ReplicaBack { .. } => Step::AskCutover,
                _ => Step::Check,
            }
        }
        Phase::AwaitingCutover => {
            if run
                .cutover
                .as_ref()
                .is_some_and(|c| c.approved_at.is_some())
            {
                if observed.acted && observed.available {
                    Step::Check
                } else if observed.acted {
                    Step::Wait(format!("{} to finish its promotion", run.proposal.target))
                } else {
                    Step::Promote
                }
            } else {
                Step::Wait("the cutover approval".into())
            }
        }
        Phase::Checking => Step::Check,
        Phase::SwitchingDns => {
            if run.dns_submitted_at.is_none() {
                Step::SwitchDns
            } else if run.dns_change.is_none() || observed.dns_in_sync {
                Step::Finish
            } else {
                Step::Wait("Route 53 to report the change INSYNC".into())
            }
        }
        Phase::CleaningUp => Step::CleanUp,
        Phase::Done | Phase::Cancelled | Phase::Failed => {
            Step::Wait("nothing: the run ended".into())
        }
    }
}

fn action_name(run: &Run) -> &'static str {
    match run.proposal.action {
        Action::GlobalSwitchover { .. } => "the global switchover",
        Action::GlobalFailover { .. } => "the global failover",
        Action::PromoteReplica { .. } => "the promotion",
        Action::Restore { .. } => "the restore",
        Action::ReplicaBack { .. } => "the replica",
    }
}

#[cfg(test)]
mod tests;
