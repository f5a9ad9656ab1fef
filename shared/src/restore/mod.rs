//! The one restore engine: every database Lifeboat restores (a restore drill, an operator's ad-hoc restore, later a
//! failover) is restored, secured, checked, kept or deleted the same way. What differs is [`Purpose`]: names, tag
//! keys, lifetime, whether it is announced and kept until it expires (ad-hoc) or deleted once checked (drill).
//!
//! A restore takes longer than an invocation, so its state lives in the tags of the restored database
//! ([`Restoration::from_resource`]) and every run advances it by one step ([`next_step`], pure). The AWS side is
//! [`engine::RestoreEngine`]; drill scheduling is [`crate::drill`], ad-hoc planning [`adhoc`].

pub mod adhoc;
pub mod engine;

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Database, Tags};
use crate::tags;

/// Check attempts a restore gets when the infrastructure (network, TLS, credentials) fails before it gives up,
/// alerts once and, for a drill, leaves the recovery point `inconclusive` (never `failed`).
pub const MAX_INFRASTRUCTURE_ATTEMPTS: u32 = 3;

/// Before its expiry, an ad-hoc restore's owner is told it will be snapshotted and deleted.
pub const EXPIRY_NOTICE: Duration = Duration::from_secs(24 * 3600);

/// Why Lifeboat restored a database: decides its tag keys, names and what happens once it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// A restore drill: checked, its result recorded on the recovery point, then deleted.
    Drill,
    /// An operator's ad-hoc restore: announced when ready, kept until it expires, then snapshotted and deleted.
    Restore,
    /// A failover's DR database (or a failover drill's): checked, then the application's names point at it.
    Failover,
}

/// The tag keys of one purpose. Drill keys are `lifeboat:drill…`, ad-hoc restore keys `lifeboat:restore…`: the IAM
/// fences of each function name only its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurposeKeys {
    /// Marks the restored database; the value is its identifier.
    pub id: &'static str,
    /// The snapshot restored (or `point-in-time`).
    pub snapshot: &'static str,
    /// ARN of the snapshot restored (or of the database or automated backup restored to a point in time).
    pub snapshot_arn: &'static str,
    /// The time of the data restored (RFC 3339): what freshness checks measure against.
    pub snapshot_time: &'static str,
    /// Where it is ([`Phase`]).
    pub phase: &'static str,
    /// When the restore was requested.
    pub started_at: &'static str,
    /// When the restored database was first seen available.
    pub available_at: &'static str,
    /// Check attempts failed for infrastructure reasons.
    pub attempts: &'static str,
}

impl Purpose {
    /// Its tag keys.
    pub fn keys(self) -> &'static PurposeKeys {
        match self {
            Purpose::Drill => &DRILL_KEYS,
            Purpose::Restore => &RESTORE_KEYS,
            Purpose::Failover => &FAILOVER_KEYS,
        }
    }

    /// Name in reports, ledger records and secret names.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Drill => "drill",
            Purpose::Restore => "restore",
            Purpose::Failover => "failover",
        }
    }

    /// The purpose of a database Lifeboat restored, from its tags (`None`: not a restored database).
    pub fn of(tags: &Tags) -> Option<Purpose> {
        [Purpose::Drill, Purpose::Restore, Purpose::Failover]
            .into_iter()
            .find(|p| tags.contains_key(p.keys().id))
    }

    /// Name of the secret holding the restored database's master password.
    pub fn secret_name(self, id: &str) -> String {
        format!("lifeboat/{}/{id}", self.as_str())
    }
}

const DRILL_KEYS: PurposeKeys = PurposeKeys {
    id: tags::DRILL,
    snapshot: tags::DRILL_SNAPSHOT,
    snapshot_arn: tags::DRILL_SNAPSHOT_ARN,
    snapshot_time: tags::DRILL_SNAPSHOT_TIME,
    phase: tags::DRILL_PHASE,
    started_at: tags::DRILL_STARTED_AT,
    available_at: tags::DRILL_AVAILABLE_AT,
    attempts: tags::DRILL_ATTEMPTS,
};

const RESTORE_KEYS: PurposeKeys = PurposeKeys {
    id: tags::RESTORE,
    snapshot: tags::RESTORE_SNAPSHOT,
    snapshot_arn: tags::RESTORE_SNAPSHOT_ARN,
    snapshot_time: tags::RESTORE_SNAPSHOT_TIME,
    phase: tags::RESTORE_PHASE,
    started_at: tags::RESTORE_STARTED_AT,
    available_at: tags::RESTORE_AVAILABLE_AT,
    attempts: tags::RESTORE_ATTEMPTS,
};

const FAILOVER_KEYS: PurposeKeys = PurposeKeys {
    id: tags::FAILOVER,
    snapshot: tags::FAILOVER_SNAPSHOT,
    snapshot_arn: tags::FAILOVER_SNAPSHOT_ARN,
    snapshot_time: tags::FAILOVER_SNAPSHOT_TIME,
    phase: tags::FAILOVER_PHASE,
    started_at: tags::FAILOVER_STARTED_AT,
    available_at: tags::FAILOVER_AVAILABLE_AT,
    attempts: tags::FAILOVER_ATTEMPTS,
};

/// Whether a database is one Lifeboat restored for a while (a drill, an ad-hoc restore or a failover drill's):
/// never backed up, drilled or monitored as a source database. A real failover's database is the application's
/// database from then on, and is not one of these.
pub fn is_restored(database: &Database) -> bool {
    match Purpose::of(&database.tags) {
        Some(Purpose::Failover) => database.tags.contains_key(tags::FAILOVER_DRILL),
        Some(_) => true,
        None => false,
    }
}

/// Why a restore's check did not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureClass {
    /// The recovery point is at fault: the restore failed, or a check failed on a connected database.
    Snapshot,
    /// Lifeboat could not reach or log in to the restored database (connection refused, time-out, TLS,
    /// authentication): retried, never blamed on the recovery point.
    Infrastructure,
    /// RDS refused to start the restore (its settings, not the recovery point).
    NotStarted,
}

/// What to do after an infrastructure failure of a check attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfrastructureRetry {
    /// Keep the restored database; the next run checks again (this was attempt `attempt` of `of`).
    Retry {
        /// This attempt's number (from 1).
        attempt: u32,
        /// The bound.
        of: u32,
    },
    /// Attempts exhausted: alert once and go on without the checks.
    GiveUp {
        /// Attempts made.
        attempts: u32,
    },
}

/// The decision after `restoration`'s current check attempt failed for infrastructure reasons.
pub fn after_infrastructure_failure(restoration: &Restoration) -> InfrastructureRetry {
    let attempt = restoration.attempts + 1;
    if attempt >= MAX_INFRASTRUCTURE_ATTEMPTS {
        InfrastructureRetry::GiveUp { attempts: attempt }
    } else {
        InfrastructureRetry::Retry {
            attempt,
            of: MAX_INFRASTRUCTURE_ATTEMPTS,
        }
    }
}

/// Where a restore is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The restore was requested; waiting for the database to become available.
    Restoring,
    /// Credentials were requested; waiting for RDS to apply them.
    Securing,
    /// Ad-hoc: credentials in effect, checks run, the operator told; kept until it expires.
    Ready,
    /// Ad-hoc, expired: its final snapshot was requested; deleted once that snapshot is available.
    Retiring,
    /// Done: the restored database is being deleted.
    CleaningUp,
}

impl Phase {
    /// Tag value.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Restoring => "restoring",
            Phase::Securing => "securing",
            Phase::Ready => "ready",
            Phase::Retiring => "retiring",
            Phase::CleaningUp => "cleaning-up",
        }
    }

    /// Parse a tag value.
    pub fn parse(value: &str) -> Option<Phase> {
        match value {
            "restoring" => Some(Phase::Restoring),
            "securing" => Some(Phase::Securing),
            "ready" => Some(Phase::Ready),
            "retiring" => Some(Phase::Retiring),
            "cleaning-up" => Some(Phase::CleaningUp),
            _ => None,
        }
    }
}

/// A database Lifeboat restored, as its tags describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restoration {
    /// The restored instance or cluster.
    pub resource: Database,
    /// Drill or ad-hoc restore.
    pub purpose: Purpose,
    /// Its identifier.
    pub id: String,
    /// The source database.
    pub database: String,
    /// The plan that covers the source database.
    pub plan: Option<String>,
    /// The snapshot restored (`point-in-time` for a restore to a time).
    pub snapshot: String,
    /// Its ARN (or the source database's or automated backup's, for a restore to a time).
    pub snapshot_arn: String,
    /// The time of the data restored.
    pub snapshot_time: DateTime<Utc>,
    /// Where it is.
    pub phase: Phase,
    /// When the restore was requested.
    pub started_at: DateTime<Utc>,
    /// When it was first seen available.
    pub available_at: Option<DateTime<Utc>>,
    /// When it is swept (drill) or snapshotted and deleted (ad-hoc).
    pub expires_at: DateTime<Utc>,
    /// Check attempts failed for infrastructure reasons.
    pub attempts: u32,
    /// Ad-hoc: announcements sent (`ready`, `expiry`), comma-separated in `lifeboat:restore-notified`.
    pub notified: Vec<String>,
    /// Ad-hoc: the final snapshot requested at expiry.
    pub final_snapshot: Option<String>,
}

impl Restoration {
    /// The restore a database's tags describe (`None` when it is not one Lifeboat restored).
    pub fn from_resource(resource: &Database) -> Option<Restoration> {
        let purpose = Purpose::of(&resource.tags)?;
        let keys = purpose.keys();
        let tag = |key: &str| resource.tags.get(key).map(str::to_owned);
        let time = |key: &str| {
            tag(key)
                .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        Some(Restoration {
            purpose,
            id: tag(keys.id)?,
            database: tag(tags::SOURCE).unwrap_or_default(),
            plan: tag(tags::PLAN),
            snapshot: tag(keys.snapshot).unwrap_or_default(),
            snapshot_arn: tag(keys.snapshot_arn).unwrap_or_default(),
            snapshot_time: time(keys.snapshot_time).unwrap_or(DateTime::<Utc>::MIN_UTC),
            phase: tag(keys.phase)
                .as_deref()
                .and_then(Phase::parse)
                .unwrap_or(Phase::Restoring),
            started_at: time(keys.started_at).unwrap_or(DateTime::<Utc>::MIN_UTC),
            available_at: time(keys.available_at),
            expires_at: time(tags::EXPIRES_AT).unwrap_or(DateTime::<Utc>::MIN_UTC),
            attempts: tag(keys.attempts).and_then(|v| v.parse().ok()).unwrap_or(0),
            notified: tag(tags::RESTORE_NOTIFIED)
                .map(|v| {
                    v.split(['+', ','])
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            final_snapshot: tag(tags::RESTORE_FINAL_SNAPSHOT),
            resource: resource.clone(),
        })
    }

    /// Whether a drill expired before its checks ran (the sweeper deletes it and says so).
    pub fn swept_unfinished(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now && self.phase != Phase::CleaningUp
    }

    /// Whether `announcement` was sent.
    pub fn was_notified(&self, announcement: &str) -> bool {
        self.notified.iter().any(|n| n == announcement)
    }

    /// The `lifeboat:restore-notified` value once `announcement` is sent too.
    pub fn notified_with(&self, announcement: &str) -> String {
        let mut all = self.notified.clone();
        if !all.iter().any(|n| n == announcement) {
            all.push(announcement.to_string());
        }
        all.join("+")
    }

    /// Restore requested to first seen available, in seconds (`now` when not seen available before).
    pub fn restore_seconds(&self, now: DateTime<Utc>) -> i64 {
        (self.available_at.unwrap_or(now) - self.started_at).num_seconds()
    }
}

/// Whether RDS reports a restored database in a failed state (the restore failed, or the database became
/// unusable: parameters, network, encryption key).
pub fn is_failed_status(status: &str) -> bool {
    FAILED_STATUSES.contains(&status)
}

/// Statuses in which a restore has failed for good.
const FAILED_STATUSES: [&str; 5] = [
    "failed",
    "incompatible-restore",
    "incompatible-parameters",
    "incompatible-network",
    "inaccessible-encryption-credentials",
];

/// The next step of a restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do yet (RDS is working).
    Wait,
    /// Available: set its credentials.
    SecureCredentials,
    /// Credentials requested: once in effect, run the checks (ad-hoc: then announce it ready).
    RunChecks,
    /// Ad-hoc, ready: tell the operator it expires within a day.
    AnnounceExpiry,
    /// Ad-hoc, expired: request its final snapshot.
    Retire,
    /// Ad-hoc, final snapshot requested: delete once that snapshot is available.
    AwaitFinalSnapshot,
    /// Delete it (drill done or swept; ad-hoc restore after its final snapshot).
    CleanUp,
    /// RDS could not restore it: record that, then delete it.
    RecordFailedRestore,
}

/// The next step of `restoration` at `now` (pure).
pub fn next_step(restoration: &Restoration, now: DateTime<Utc>) -> Step {
    let status = restoration.resource.status.as_str();
    match (restoration.purpose, restoration.phase) {
        (_, Phase::CleaningUp) => return Step::CleanUp,
        (Purpose::Restore, Phase::Retiring) => return Step::AwaitFinalSnapshot,
        (Purpose::Drill, _) if restoration.expires_at <= now => return Step::CleanUp,
        _ => {}
    }
    // A restore that never became usable failed. An ad-hoc restore that was ready holds data an operator may have
    // written: a later failed state (a key disabled for a while) is reported and the database kept.
    if is_failed_status(status)
        && (restoration.purpose == Purpose::Drill || restoration.phase == Phase::Restoring)
    {
        return Step::RecordFailedRestore;
    }
    let expired = restoration.expires_at <= now;
    match (restoration.purpose, restoration.phase, status) {
        // An expired ad-hoc restore keeps its data: a final snapshot first. It is retired only once it was
        // announced ready (one that expires while being restored is secured, checked and announced first).
        (Purpose::Restore, Phase::Ready, "available") if expired => Step::Retire,
        (Purpose::Restore, Phase::Ready, _) if expired => Step::Wait,
        (_, _, "available") => match restoration.phase {
            Phase::Restoring => Step::SecureCredentials,
            Phase::Securing => Step::RunChecks,
            Phase::Ready
                if !restoration.was_notified(EXPIRY)
                    && restoration.expires_at
                        <= now + chrono::Duration::from_std(EXPIRY_NOTICE).unwrap_or_default() =>
            {
                Step::AnnounceExpiry
            }
            _ => Step::Wait,
        },
        _ => Step::Wait,
    }
}

/// `lifeboat:restore-notified` entry: the operator was told the restore is ready.
pub const READY: &str = "ready";
/// `lifeboat:restore-notified` entry: the operator was told the restore expires within a day.
pub const EXPIRY: &str = "expiry";

/// RFC 3339 in UTC to the second, as every time tag is written.
pub fn tag_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DatabaseKind;

    fn restored(purpose: Purpose, phase: Phase, status: &str, expires: &str) -> Restoration {
        let keys = purpose.keys();
        let tags: crate::model::Tags = [
            (keys.id, "target"),
            (tags::SOURCE, "booking"),
            (keys.phase, phase.as_str()),
            (keys.started_at, "2026-11-22T03:00:00Z"),
            (tags::EXPIRES_AT, expires),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let resource = Database {
            identifier: "target".into(),
            kind: DatabaseKind::Instance,
            arn: "arn:aws:rds:us-east-1:123456789012:db:target".into(),
            region: "us-east-1".into(),
            engine: "postgres".into(),
            status: status.into(),
            encrypted: true,
            cluster: None,
            endpoint: None,
            master_username: None,
            engine_version: None,
            replica_source: None,
            tags,
        };
        Restoration::from_resource(&resource).expect("restored")
    }

    fn at(t: &str) -> DateTime<Utc> {
        t.parse().unwrap()
    }

    #[test]
    fn an_adhoc_restore_is_secured_checked_announced_then_snapshotted_before_deletion() {
        let expires = "2026-11-24T03:00:00Z";
        let now = at("2026-11-22T04:00:00Z");
        let step = |phase, status: &str, now| {
            next_step(&restored(Purpose::Restore, phase, status, expires), now)
        };
        assert_eq!(step(Phase::Restoring, "creating", now), Step::Wait);
        assert_eq!(
            step(Phase::Restoring, "available", now),
            Step::SecureCredentials
        );
        assert_eq!(step(Phase::Securing, "available", now), Step::RunChecks);
        assert_eq!(step(Phase::Ready, "available", now), Step::Wait);
        let day_before = at("2026-11-23T03:30:00Z");
        assert_eq!(
            step(Phase::Ready, "available", day_before),
            Step::AnnounceExpiry
        );
        let mut announced = restored(Purpose::Restore, Phase::Ready, "available", expires);
        announced.notified = vec![READY.into(), EXPIRY.into()];
        assert_eq!(next_step(&announced, day_before), Step::Wait);
        let expired = at("2026-11-24T03:00:00Z");
        assert_eq!(step(Phase::Ready, "available", expired), Step::Retire);
        assert_eq!(
            step(Phase::Restoring, "available", expired),
            Step::SecureCredentials,
            "a restore that expires before it is ready is secured and announced before it is retired"
        );
        assert_eq!(step(Phase::Securing, "available", expired), Step::RunChecks);
        assert_eq!(
            step(Phase::Ready, "inaccessible-encryption-credentials", now),
            Step::Wait,
            "a ready restore that RDS reports impaired is kept, never deleted as a failed restore"
        );
        assert_eq!(
            step(Phase::Ready, "modifying", expired),
            Step::Wait,
            "RDS must finish before the final snapshot"
        );
        assert_eq!(
            step(Phase::Retiring, "available", expired),
            Step::AwaitFinalSnapshot
        );
        assert_eq!(step(Phase::CleaningUp, "deleting", expired), Step::CleanUp);
        assert_eq!(
            step(Phase::Restoring, "incompatible-parameters", now),
            Step::RecordFailedRestore
        );
    }

    #[test]
    fn a_drill_is_swept_when_it_expires_but_an_adhoc_restore_never_is() {
        let expires = "2026-11-22T09:00:00Z";
        let late = at("2026-11-22T10:00:00Z");
        let drill = restored(Purpose::Drill, Phase::Securing, "creating", expires);
        assert_eq!(next_step(&drill, late), Step::CleanUp);
        assert!(drill.swept_unfinished(late));
        let adhoc = restored(Purpose::Restore, Phase::Securing, "creating", expires);
        assert_eq!(next_step(&adhoc, late), Step::Wait, "no data is dropped");
    }

    #[test]
    fn purposes_have_their_own_keys_and_secrets() {
        let drill = restored(
            Purpose::Drill,
            Phase::Restoring,
            "creating",
            "2026-11-22T09:00:00Z",
        );
        assert_eq!(drill.purpose, Purpose::Drill);
        assert!(drill.resource.tags.contains_key("lifeboat:drill-phase"));
        let adhoc = restored(
            Purpose::Restore,
            Phase::Restoring,
            "creating",
            "2026-11-22T09:00:00Z",
        );
        assert!(adhoc.resource.tags.contains_key("lifeboat:restore-phase"));
        assert_eq!(Purpose::Drill.secret_name("x"), "lifeboat/drill/x");
        assert_eq!(Purpose::Restore.secret_name("x"), "lifeboat/restore/x");
        assert!(is_restored(&adhoc.resource) && is_restored(&drill.resource));
        let mut plain = adhoc.resource.clone();
        plain.tags.clear();
        assert!(!is_restored(&plain));
    }

    #[test]
    fn announcements_accumulate_once() {
        let mut r = restored(
            Purpose::Restore,
            Phase::Ready,
            "available",
            "2026-11-24T03:00:00Z",
        );
        assert_eq!(r.notified_with(READY), "ready");
        r.notified = vec![READY.into()];
        assert_eq!(r.notified_with(READY), "ready");
        assert_eq!(r.notified_with(EXPIRY), "ready+expiry");
    }
}
