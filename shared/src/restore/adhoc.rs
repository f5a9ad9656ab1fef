//! Ad-hoc restore planning (pure): which recovery point an operator's request restores, the data it cannot
//! contain, where the new database goes and what it is called, or why the request cannot be done and what can.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Database, DatabaseKind, Snapshot};
use crate::ownership::Deployment;
use crate::policy::Policy;
use crate::restore::{Phase, Purpose, tag_time};
use crate::tags;

/// How long an ad-hoc restore lives when the request says nothing.
pub const DEFAULT_EXPIRES_IN: Duration = Duration::from_secs(48 * 3600);

/// The longest an ad-hoc restore may be kept in one request (`keep` extends it again).
pub const MAX_EXPIRES_IN: Duration = Duration::from_secs(30 * 86_400);

/// An operator's restore request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The source database (instance or cluster identifier in the primary region).
    pub database: String,
    /// Region to restore in (the primary region when `None`).
    pub region: Option<String>,
    /// A snapshot or copy identifier, or `latest` (the newest snapshot).
    pub snapshot: Option<String>,
    /// Restore the data as of this time.
    pub point_in_time: Option<DateTime<Utc>>,
    /// Identifier of the new database (derived from the source and the data's time when `None`).
    pub target: Option<String>,
    /// How long the new database lives before it is snapshotted and deleted.
    pub expires_in: Duration,
}

/// Where the data of a restore comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Source {
    /// A manual snapshot or copy in the restore's region.
    Snapshot {
        /// Its identifier.
        identifier: String,
        /// Its ARN.
        arn: String,
        /// When it was taken.
        time: DateTime<Utc>,
    },
    /// The source database's own automated backups (primary region).
    PointInTime {
        /// The time restored to.
        time: DateTime<Utc>,
    },
    /// Automated backups replicated into the DR region.
    ReplicatedBackup {
        /// Their ARN.
        arn: String,
        /// The time restored to.
        time: DateTime<Utc>,
    },
}

impl Source {
    /// The time of the data restored.
    pub fn time(&self) -> DateTime<Utc> {
        match self {
            Source::Snapshot { time, .. }
            | Source::PointInTime { time }
            | Source::ReplicatedBackup { time, .. } => *time,
        }
    }

    /// The value of the restore's `snapshot` tag: the snapshot's identifier, or `point-in-time`.
    pub fn label(&self) -> &str {
        match self {
            Source::Snapshot { identifier, .. } => identifier,
            Source::PointInTime { .. } | Source::ReplicatedBackup { .. } => "point-in-time",
        }
    }
}

/// A point-in-time restore window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// The earliest restorable time (`None`: not known).
    pub earliest: Option<DateTime<Utc>>,
    /// The latest restorable time.
    pub latest: DateTime<Utc>,
}

impl Window {
    /// Whether `time` can be restored from the window.
    pub fn contains(&self, time: DateTime<Utc>) -> bool {
        time <= self.latest && self.earliest.is_none_or(|e| e <= time)
    }

    fn describe(&self) -> String {
        match self.earliest {
            Some(e) => format!("from {} to {}", tag_time(e), tag_time(self.latest)),
            None => format!("up to {}", tag_time(self.latest)),
        }
    }
}

/// What the restore function knows when it plans a request, read before planning.
pub struct Inputs<'a> {
    /// The request.
    pub request: &'a Request,
    /// The policy.
    pub policy: &'a Policy,
    /// This deployment (restores only its own recovery points).
    pub deployment: &'a Deployment,
    /// The source database.
    pub database: &'a Database,
    /// The region restored in.
    pub region: &'a str,
    /// Whether that is the primary region (the source's own).
    pub primary: bool,
    /// Manual snapshots and copies in that region.
    pub snapshots: &'a [Snapshot],
    /// Point-in-time window there: the source's own (primary) or its replicated automated backups' (DR).
    pub window: Option<Window>,
    /// ARN of the replicated automated backups (DR region).
    pub replicated_backup_arn: Option<&'a str>,
    /// Identifiers of the DB instances and clusters in that region (a target that exists is refused).
    pub existing: &'a [String],
    /// The source's instance class (the restore is as large as the source).
    pub instance_class: Option<&'a str>,
    /// The source's parameter group, if it exists in that region.
    pub parameter_group: Option<&'a str>,
    /// The source's option group, if it exists in that region.
    pub option_group: Option<&'a str>,
    /// Now.
    pub now: DateTime<Utc>,
}

/// What a restore request resolves to: returned by a dry run, and started otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The source database.
    pub database: String,
    /// Instance or cluster.
    pub kind: DatabaseKind,
    /// Region of the new database.
    pub region: String,
    /// The recovery point chosen.
    pub source: Source,
    /// The time asked for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_time: Option<DateTime<Utc>>,
    /// Age of the recovery point's data now, in seconds.
    pub age_seconds: i64,
    /// The data it cannot contain: seconds between the data's time and the time asked for (0 when exact).
    pub gap_seconds: i64,
    /// The point-in-time window in that region, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restorable_window: Option<Window>,
    /// Identifier of the new database.
    pub target: String,
    /// Its instance class (Aurora: of its one instance).
    pub instance_class: String,
    /// Its DB subnet group.
    pub subnet_group: String,
    /// Its VPC security groups.
    pub security_groups: Vec<String>,
    /// Its parameter group (the source's, where it exists there; else the engine default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter_group: Option<String>,
    /// Its option group (the source's, where it exists there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option_group: Option<String>,
    /// Expected restore time, from past drills of the database in that region (the slowest of the last five).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_restore_seconds: Option<i64>,
    /// When it will be snapshotted and deleted.
    pub expires_at: DateTime<Utc>,
    /// The plan that covers the source.
    pub plan: String,
}

/// Resolve `inputs.request`, or say why it cannot be done and what can.
pub fn plan(inputs: &Inputs<'_>) -> Result<Plan, String> {
    let request = inputs.request;
    let db = inputs.database;
    let region = inputs.region;
    let plan = inputs.policy.plan_for(db).ok_or_else(|| {
        format!(
            "no plan of policy `{}` covers `{}`",
            inputs.policy.name, db.identifier
        )
    })?;
    let verification = plan.verification.as_ref().ok_or_else(|| {
        format!(
            "plan `{}` has no `verification` section: ad-hoc restores use its network (subnet_group, \
             security_groups), so add one",
            plan.name
        )
    })?;
    if !inputs.primary && !verification.regions.contains_key(region) {
        return Err(format!(
            "no network for restores in {region}: add `verification.regions.{region}` (subnet_group, \
             security_groups) to plan `{}`",
            plan.name
        ));
    }
    let (subnet_group, security_groups) =
        verification.network_in((!inputs.primary).then_some(region));
    if request.expires_in.is_zero() || request.expires_in > MAX_EXPIRES_IN {
        return Err(format!(
            "expires_in must be between 1 minute and {} days (`keep` extends it later)",
            MAX_EXPIRES_IN.as_secs() / 86_400
        ));
    }
    if let Some(time) = request.point_in_time
        && time > inputs.now
    {
        return Err(format!(
            "point_in_time {} is in the future (now is {})",
            tag_time(time),
            tag_time(inputs.now)
        ));
    }
    if request.snapshot.is_some() && request.point_in_time.is_some() {
        return Err("give `snapshot` or `point_in_time`, not both".into());
    }

    let mine: Vec<&Snapshot> = inputs
        .snapshots
        .iter()
        .filter(|s| {
            s.database == db.identifier
                && s.kind == db.kind
                && s.is_available()
                && inputs.deployment.owns(&s.tags)
        })
        .collect();
    let newest_at_or_before = |time: DateTime<Utc>| {
        mine.iter()
            .filter(|s| s.created_at <= time)
            .max_by_key(|s| (s.created_at, s.identifier.clone()))
            .copied()
    };
    let snapshot_source = |s: &Snapshot| Source::Snapshot {
        identifier: s.identifier.clone(),
        arn: s.arn.clone(),
        time: s.created_at,
    };
    let point_in_time = |time: DateTime<Utc>| match inputs.replicated_backup_arn {
        Some(arn) if !inputs.primary => Source::ReplicatedBackup {
            arn: arn.to_string(),
            time,
        },
        _ => Source::PointInTime { time },
    };
    let window = inputs
        .window
        .filter(|_| inputs.primary || inputs.replicated_backup_arn.is_some());
    let what_exists = || {
        let newest = mine.iter().map(|s| s.created_at).max();
        let mut possible = Vec::new();
        if let Some(w) = window {
            possible.push(format!("point in time {}", w.describe()));
        }
        if let Some(newest) = newest {
            possible.push(format!(
                "{} snapshot(s) of this deployment, the newest from {}",
                mine.len(),
                tag_time(newest)
            ));
        }
        if possible.is_empty() {
            format!(
                "no recovery point of `{}` exists in {region}",
                db.identifier
            )
        } else {
            format!("restorable in {region}: {}", possible.join("; "))
        }
    };

    let source = match (&request.snapshot, request.point_in_time) {
        (Some(name), _) if name != "latest" => {
            let found = inputs
                .snapshots
                .iter()
                .find(|s| &s.identifier == name && s.kind == db.kind)
                .ok_or_else(|| {
                    format!(
                        "no snapshot `{name}` of `{}` in {region}: {}",
                        db.identifier,
                        what_exists()
                    )
                })?;
            if !inputs.deployment.owns(&found.tags) {
                return Err(format!(
                    "snapshot `{name}` in {region} was made by {}: this deployment restores only its own recovery \
                     points",
                    inputs.deployment.owner_of(&found.tags)
                ));
            }
            if found.database != db.identifier {
                return Err(format!(
                    "snapshot `{name}` is a recovery point of `{}`, not `{}`",
                    found.database, db.identifier
                ));
            }
            if !found.is_available() {
                return Err(format!(
                    "snapshot `{name}` is `{}`, not available yet",
                    found.status
                ));
            }
            snapshot_source(found)
        }
        (Some(_), _) => snapshot_source(
            mine.iter()
                .max_by_key(|s| (s.created_at, s.identifier.clone()))
                .ok_or_else(what_exists)?,
        ),
        (None, Some(time)) => match window {
            Some(w) if w.contains(time) => point_in_time(time),
            Some(w) if time > w.latest => {
                return Err(format!(
                    "{} is after the latest restorable time {} (RDS is still shipping its logs): restore to {} or \
                     wait a few minutes; {}",
                    tag_time(time),
                    tag_time(w.latest),
                    tag_time(w.latest),
                    what_exists()
                ));
            }
            _ => snapshot_source(newest_at_or_before(time).ok_or_else(|| {
                format!(
                    "{} is outside every recovery point of `{}`: {}",
                    tag_time(time),
                    db.identifier,
                    what_exists()
                )
            })?),
        },
        (None, None) => {
            let newest = mine
                .iter()
                .max_by_key(|s| (s.created_at, s.identifier.clone()));
            match (window, newest) {
                (Some(w), Some(s)) if s.created_at >= w.latest => snapshot_source(s),
                (Some(w), _) => point_in_time(w.latest),
                (None, Some(s)) => snapshot_source(s),
                (None, None) => return Err(what_exists()),
            }
        }
    };

    let target = match &request.target {
        Some(target) => target.clone(),
        None => default_target(&db.identifier, source.time()),
    };
    validate_identifier(&target)?;
    if inputs.existing.iter().any(|id| id == &target) {
        return Err(format!(
            "a database named `{target}` exists in {region}: a restore never replaces one; name another target"
        ));
    }
    let expected_restore_seconds = {
        let mut drilled: Vec<(DateTime<Utc>, i64)> = inputs
            .snapshots
            .iter()
            .filter(|s| s.database == db.identifier && inputs.deployment.owns(&s.tags))
            .filter_map(|s| {
                Some((
                    s.created_at,
                    s.tags.get(tags::RESTORE_SECONDS)?.parse().ok()?,
                ))
            })
            .collect();
        drilled.sort();
        drilled.iter().rev().take(5).map(|(_, secs)| *secs).max()
    };
    let requested = request.point_in_time;
    Ok(Plan {
        database: db.identifier.clone(),
        kind: db.kind,
        region: region.to_string(),
        requested_time: requested,
        age_seconds: (inputs.now - source.time()).num_seconds(),
        gap_seconds: requested.map_or(0, |t| (t - source.time()).num_seconds().max(0)),
        source,
        restorable_window: window,
        target,
        instance_class: match db.kind {
            DatabaseKind::Instance => inputs
                .instance_class
                .unwrap_or(&verification.instance_class)
                .to_string(),
            DatabaseKind::Cluster => verification.cluster_instance_class.clone(),
        },
        subnet_group: subnet_group.to_string(),
        security_groups: security_groups.to_vec(),
        parameter_group: inputs.parameter_group.map(str::to_string),
        option_group: inputs
            .option_group
            .filter(|_| db.kind == DatabaseKind::Instance)
            .map(str::to_string),
        expected_restore_seconds,
        expires_at: inputs.now + chrono::Duration::from_std(request.expires_in).unwrap_or_default(),
        plan: plan.name.clone(),
    })
}

/// Every ad-hoc restore's identifier starts with this: the restore function's IAM role may create, change and
/// delete only databases so named (and tagged as its restores), never an existing production database.
pub const TARGET_PREFIX: &str = "lbrestore-";

/// `lbrestore-<database>-<YYYYMMDD>-<HHMM>` of the data's time, cut to fit an identifier (63 characters).
pub fn default_target(database: &str, time: DateTime<Utc>) -> String {
    let suffix = format!("-{}", time.format("%Y%m%d-%H%M"));
    let cut: String = database
        .chars()
        .take(63 - suffix.len() - TARGET_PREFIX.len())
        .collect();
    format!("{TARGET_PREFIX}{}{suffix}", cut.trim_end_matches('-'))
}

/// Whether `id` can name an ad-hoc restore: a valid DB instance and cluster identifier (at most 63 letters,
/// digits and hyphens, without two hyphens in a row or a hyphen at the end) that starts with [`TARGET_PREFIX`].
pub fn validate_identifier(id: &str) -> Result<(), String> {
    let valid = id.len() <= 63
        && id.len() > TARGET_PREFIX.len()
        && id.starts_with(TARGET_PREFIX)
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.contains("--")
        && !id.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{id}` cannot name a restore: it must start with `{TARGET_PREFIX}` (the only names the restore \
             function may create and delete) and be at most 63 letters, digits and hyphens, without `--` or a \
             hyphen at the end"
        ))
    }
}

/// A tag value RDS accepts: letters, digits, spaces and `_ . : / = + - @`; anything else becomes a space, cut to
/// 256 characters.
pub fn tag_value(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || " _.:/=+-@".contains(c) {
                c
            } else {
                ' '
            }
        })
        .take(tags::MAX_TAG_VALUE_LEN)
        .collect::<String>()
        .trim()
        .to_string()
}

/// The tags of a new ad-hoc restore: this deployment's identity, the restore's state, who asked and why.
pub fn restore_tags(
    plan: &Plan,
    policy: &Policy,
    deployment: &Deployment,
    reason: &str,
    requested_by: &str,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let keys = Purpose::Restore.keys();
    let [deployment_tag, home_region_tag] = deployment.tags();
    let arn = match &plan.source {
        Source::Snapshot { arn, .. } | Source::ReplicatedBackup { arn, .. } => arn.clone(),
        Source::PointInTime { .. } => String::new(),
    };
    let mut tags = vec![
        (tags::MANAGED.into(), tags::TRUE.into()),
        deployment_tag,
        home_region_tag,
        (keys.id.into(), plan.target.clone()),
        (tags::POLICY.into(), policy.name.clone()),
        (tags::PLAN.into(), plan.plan.clone()),
        (tags::SOURCE.into(), plan.database.clone()),
        (keys.snapshot.into(), plan.source.label().to_string()),
        (keys.snapshot_time.into(), tag_time(plan.source.time())),
        (keys.phase.into(), Phase::Restoring.as_str().into()),
        (keys.started_at.into(), tag_time(now)),
        (tags::EXPIRES_AT.into(), tag_time(plan.expires_at)),
        (tags::REASON.into(), tag_value(reason)),
        (tags::REQUESTED_BY.into(), tag_value(requested_by)),
    ];
    if !arn.is_empty() {
        tags.push((keys.snapshot_arn.into(), arn));
    }
    tags
}
