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

#[cfg(test)]
mod tests {

    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    const POLICY: &str = "version: 1\nname: props\nplans:\n  - name: all\n    select:\n      patterns: ['booking-*']\n    retention: {keep_daily: 7}\n    verification:\n      every: 7d\n      instance_class: db.t3.micro\n      subnet_group: restores\n      security_groups: [sg-1]\n      regions:\n        us-west-2: {security_groups: [sg-2]}\n    objectives: {rpo: 1h, rto: 4h}\n";

    fn policy() -> Policy {
        Policy::from_yaml(POLICY).expect("policy")
    }

    fn deployment() -> Deployment {
        Deployment::new("lifeboat", "us-east-1").expect("deployment")
    }

    fn database() -> Database {
        Database {
            identifier: "booking-db".into(),
            kind: DatabaseKind::Instance,
            arn: "arn:aws:rds:us-east-1:123456789012:db:booking-db".into(),
            region: "us-east-1".into(),
            engine: "postgres".into(),
            status: "available".into(),
            encrypted: true,
            cluster: None,
            endpoint: None,
            master_username: Some("lifeboat".into()),
            engine_version: None,
            replica_source: None,
            tags: Default::default(),
        }
    }

    /// Who made a snapshot.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Maker {
        Me,
        /// Another deployment of Lifeboat (same home region, another name).
        Other,
        /// Another home region of a deployment of the same name.
        OtherHome,
        /// Nobody Lifeboat knows (no identity tags).
        Unmanaged,
    }

    fn arb_maker() -> impl Strategy<Value = Maker> {
        prop_oneof![
            3 => Just(Maker::Me),
            1 => Just(Maker::Other),
            1 => Just(Maker::OtherHome),
            1 => Just(Maker::Unmanaged),
        ]
    }

    /// Base of every generated time: 2026-01-01T00:00:00Z.
    fn base() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn minutes(n: i64) -> DateTime<Utc> {
        base() + chrono::Duration::minutes(n)
    }

    /// Snapshot `i` in `region` of `database`, taken `offset` minutes after [`base`].
    fn snapshot(
        i: usize,
        region: &str,
        offset: i64,
        maker: Maker,
        available: bool,
        database: &str,
    ) -> Snapshot {
        let identity: &[(&str, &str)] = match maker {
            Maker::Me => &[
                (tags::MANAGED, "true"),
                (tags::DEPLOYMENT, "lifeboat"),
                (tags::HOME_REGION, "us-east-1"),
            ],
            Maker::Other => &[
                (tags::MANAGED, "true"),
                (tags::DEPLOYMENT, "lifeboat-staging"),
                (tags::HOME_REGION, "us-east-1"),
            ],
            Maker::OtherHome => &[
                (tags::MANAGED, "true"),
                (tags::DEPLOYMENT, "lifeboat"),
                (tags::HOME_REGION, "eu-west-1"),
            ],
            Maker::Unmanaged => &[],
        };
        let identifier = format!("snap-{i}");
        Snapshot {
            arn: format!("arn:aws:rds:{region}:123456789012:snapshot:{identifier}"),
            identifier,
            region: region.into(),
            kind: DatabaseKind::Instance,
            database: database.into(),
            created_at: minutes(offset),
            status: if available { "available" } else { "creating" }.into(),
            encrypted: true,
            engine: None,
            copied_from: None,
            tags: identity
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Snapshots of `booking-db` (and a few of another database), by whoever, in any status, up to ~70 days in.
    fn arb_snapshots() -> impl Strategy<Value = Vec<(i64, Maker, bool, bool)>> {
        prop::collection::vec(
            (
                0i64..100_000,
                arb_maker(),
                prop::bool::weighted(0.8),
                prop::bool::weighted(0.9),
            ),
            0..12,
        )
    }

    fn build(region: &str, specs: &[(i64, Maker, bool, bool)]) -> Vec<Snapshot> {
        specs
            .iter()
            .enumerate()
            .map(|(i, &(offset, maker, available, ours))| {
                let db = if ours { "booking-db" } else { "booking-other" };
                snapshot(i, region, offset, maker, available, db)
            })
            .collect()
    }

    fn request(snapshot: Option<&str>, time: Option<DateTime<Utc>>) -> Request {
        Request {
            database: "booking-db".into(),
            region: None,
            snapshot: snapshot.map(str::to_string),
            point_in_time: time,
            target: None,
            expires_in: DEFAULT_EXPIRES_IN,
        }
    }

    /// Plan `request` in `region` (`us-east-1` is the primary) with `snapshots` and `window` at `now`.
    fn plan_of(
        request: &Request,
        region: &str,
        snapshots: &[Snapshot],
        window: Option<Window>,
        replicated: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Plan, String> {
        let (policy, deployment, db) = (policy(), deployment(), database());
        plan(&Inputs {
            request,
            policy: &policy,
            deployment: &deployment,
            database: &db,
            region,
            primary: region == "us-east-1",
            snapshots,
            window,
            replicated_backup_arn: replicated,
            existing: &[],
            instance_class: Some("db.r6g.large"),
            parameter_group: None,
            option_group: None,
            now,
        })
    }

    /// The snapshot a plan restores, if it restores one.
    fn chosen<'a>(plan: &Plan, snapshots: &'a [Snapshot]) -> Option<&'a Snapshot> {
        match &plan.source {
            Source::Snapshot { identifier, .. } => {
                snapshots.iter().find(|s| &s.identifier == identifier)
            }
            _ => None,
        }
    }

    proptest! {
        #[test]
        fn default_targets_are_always_valid_restore_identifiers(
            database in "[a-zA-Z](-?[a-zA-Z0-9]){0,31}",
            // Any time RDS can stamp: 1970 to 9999.
            seconds in 0i64..253_402_300_800,
        ) {
            let time = DateTime::from_timestamp(seconds, 0).expect("time");
            let target = default_target(&database, time);
            prop_assert!(validate_identifier(&target).is_ok(), "{target} from {database} at {time}");
            prop_assert!(target.ends_with(&time.format("-%Y%m%d-%H%M").to_string()), "{target}");
        }

        #[test]
        fn a_point_in_time_inside_the_window_is_restored_exactly(
            specs in arb_snapshots(),
            earliest in 0i64..50_000,
            span in 0i64..50_000,
            at in 0.0f64..=1.0,
            known_start in any::<bool>(),
            dr in any::<bool>(),
            lag in 0i64..600,
        ) {
            let latest = minutes(earliest + span);
            let requested = minutes(earliest + (span as f64 * at) as i64);
            let now = latest + chrono::Duration::minutes(lag);
            let window = Window { earliest: known_start.then(|| minutes(earliest)), latest };
            let region = if dr { "us-west-2" } else { "us-east-1" };
            let replicated = dr.then_some("arn:aws:rds:us-west-2:123456789012:auto-backup:ab-1");
            let snapshots = build(region, &specs);
            let plan = plan_of(&request(None, Some(requested)), region, &snapshots, Some(window), replicated, now)
                .map_err(|e| TestCaseError::fail(format!("refused: {e}")))?;
            prop_assert_eq!(plan.gap_seconds, 0);
            prop_assert_eq!(plan.source.time(), requested);
            prop_assert_eq!(plan.requested_time, Some(requested));
            prop_assert_eq!(plan.age_seconds, (now - requested).num_seconds());
            match (&plan.source, dr) {
                (Source::PointInTime { .. }, false) => {}
                (Source::ReplicatedBackup { arn, .. }, true) => {
                    prop_assert_eq!(Some(arn.as_str()), replicated);
                }
                (other, _) => prop_assert!(false, "{other:?} in {region}"),
            }
            let groups = if dr { "sg-2" } else { "sg-1" };
            prop_assert_eq!(plan.security_groups, vec![groups.to_string()]);
        }

        #[test]
        fn a_time_from_snapshots_gets_the_newest_one_not_after_it_and_its_gap(
            specs in arb_snapshots(),
            requested in 0i64..110_000,
            window_after in prop::option::of(1i64..10_000),
        ) {
            let requested = minutes(requested);
            let now = minutes(200_000);
            // No window, or one that starts after the time asked for: only snapshots can serve it.
            let window = window_after.map(|after| Window {
                earliest: Some(requested + chrono::Duration::minutes(after)),
                latest: now,
            });
            let snapshots = build("us-east-1", &specs);
            let candidates: Vec<&Snapshot> = snapshots
                .iter()
                .filter(|s| s.database == "booking-db" && s.status == "available" && deployment().owns(&s.tags))
                .filter(|s| s.created_at <= requested)
                .collect();
            match plan_of(&request(None, Some(requested)), "us-east-1", &snapshots, window, None, now) {
                Ok(plan) => {
                    let picked = chosen(&plan, &snapshots);
                    let picked = picked.ok_or_else(|| TestCaseError::fail(format!("no snapshot: {plan:?}")))?;
                    prop_assert!(picked.created_at <= requested, "{} is newer than {requested}", picked.created_at);
                    prop_assert_eq!(plan.gap_seconds, (requested - picked.created_at).num_seconds());
                    prop_assert_eq!(Some(picked.created_at), candidates.iter().map(|s| s.created_at).max());
                    prop_assert!(candidates.iter().any(|s| s.identifier == picked.identifier));
                }
                Err(why) => {
                    prop_assert!(candidates.is_empty(), "refused although {candidates:?} serve: {why}");
                    prop_assert!(why.contains("is outside every recovery point"), "{why}");
                }
            }
        }

        #[test]
        fn a_plan_never_restores_another_deployments_snapshot(
            specs in arb_snapshots(),
            ask in 0usize..4,
            requested in 0i64..110_000,
            named in 0usize..12,
            with_window in any::<bool>(),
        ) {
            let now = minutes(200_000);
            let snapshots = build("us-east-1", &specs);
            let window = with_window.then_some(Window { earliest: Some(minutes(150_000)), latest: now });
            let name = snapshots.get(named % snapshots.len().max(1)).map(|s| s.identifier.clone());
            let request = match ask {
                0 => request(None, None),
                1 => request(Some("latest"), None),
                2 => request(None, Some(minutes(requested))),
                _ => request(Some(name.as_deref().unwrap_or("snap-0")), None),
            };
            if let Ok(plan) = plan_of(&request, "us-east-1", &snapshots, window, None, now)
                && let Source::Snapshot { identifier, .. } = &plan.source
            {
                let picked = chosen(&plan, &snapshots)
                    .ok_or_else(|| TestCaseError::fail(format!("unknown snapshot {identifier}")))?;
                prop_assert!(deployment().owns(&picked.tags), "{picked:?} is not this deployment's");
                prop_assert_eq!(picked.database.as_str(), "booking-db");
                prop_assert!(picked.is_available());
            }
        }
    }

    #[test]
    fn naming_another_deployments_snapshot_says_whose_it_is() {
        let snapshots = [snapshot(
            0,
            "us-east-1",
            10,
            Maker::Other,
            true,
            "booking-db",
        )];
        let why = plan_of(
            &request(Some("snap-0"), None),
            "us-east-1",
            &snapshots,
            None,
            None,
            minutes(100),
        )
        .expect_err("not ours");
        assert!(why.contains("was made by"), "{why}");
        assert!(
            why.contains("restores only its own recovery points"),
            "{why}"
        );
    }
}
