//! The AWS side of the one restore engine: restore, re-ask for an Aurora member, set credentials, run the checks
//! (with the `sql-checks` feature), take a final snapshot, clean up. Every call is safe to repeat: a restore or
//! snapshot that exists counts as done, a deletion of what is gone counts as done.

use chrono::{DateTime, Utc};
use tracing::info;

use crate::aws::AwsError;
use crate::aws::rds::{CreateSnapshotError, Rds, RestoreSpec};
use crate::aws::secrets::Secrets;
use crate::model::{Database, DatabaseKind, Snapshot};
use crate::ownership::Deployment;
use crate::restore::Purpose;
use crate::restore::{Phase, Restoration, tag_time};
use crate::tags;

/// Status given to an Aurora restore found without its instance (see [`restorations_in`]): the restore is not
/// finished until the instance is asked for again.
pub const INSTANCE_MISSING: &str = "instance-missing";

/// The restores among `databases` that `deployment` made (Aurora members are handled through their cluster, whose
/// status becomes its member's, or [`INSTANCE_MISSING`]).
pub fn restorations_in(databases: &[Database], deployment: &Deployment) -> Vec<Restoration> {
    databases
        .iter()
        .filter(|db| db.cluster.is_none() && deployment.owns(&db.tags))
        .filter_map(|db| {
            let mut restoration = Restoration::from_resource(db)?;
            if db.kind == DatabaseKind::Cluster {
                // A cluster is ready when its instance is.
                let member = databases
                    .iter()
                    .find(|m| m.cluster.as_deref() == Some(db.identifier.as_str()));
                restoration.resource.status = match member {
                    Some(m) if db.status == "available" => m.status.clone(),
                    Some(_) => db.status.clone(),
                    // Only a cluster being made or ready gets its instance asked for again; one being deleted
                    // (cleaned up, swept) or in any other state is left to finish.
                    None if restoration.phase != Phase::CleaningUp
                        && matches!(db.status.as_str(), "creating" | "available") =>
                    {
                        INSTANCE_MISSING.into()
                    }
                    None => db.status.clone(),
                };
            }
            Some(restoration)
        })
        .collect()
}

/// Whether RDS refused to start a restore for a reason that asking again will not change (its settings: an
/// instance class the engine does not offer, a subnet group or security group that does not fit, a permission).
pub fn is_refusal(error: &AwsError) -> bool {
    /// Service errors that pass by themselves.
    const TRANSIENT: [&str; 6] = [
        "InternalFailure",
        "ServiceUnavailable",
        "InsufficientDBInstanceCapacity",
        "InsufficientDBInstanceCapacityFault",
        "InvalidDBSnapshotState",
        "InvalidDBSnapshotStateFault",
    ];
    match error {
        AwsError::AccessDenied { .. } => true,
        AwsError::Service { code, .. } => !TRANSIENT.contains(&code.as_str()),
        AwsError::Throttled { .. } | AwsError::Unreachable { .. } => false,
    }
}

/// The ARN of resource `id` of `kind` (`cluster`, `db`) in the partition, region and account of `arn`.
pub fn sibling_arn(arn: &str, kind: &str, id: &str) -> String {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", partition, service, region, account, ..] => {
            format!("arn:{partition}:{service}:{region}:{account}:{kind}:{id}")
        }
        _ => String::new(),
    }
}

/// The identifier of an expired ad-hoc restore's final snapshot: `lifeboat-<restore>-<started YYYYMMDDHHMM>-final`,
/// the restore's identifier cut to fit a DB cluster snapshot identifier (63 characters). Deterministic (asking twice
/// finds it) and its own: a later restore under the same name started at another time gets another name.
pub fn final_snapshot_identifier(restore: &str, started_at: DateTime<Utc>) -> String {
    let suffix = format!("-{}-final", started_at.format("%Y%m%d%H%M"));
    let room =
        DatabaseKind::Cluster.max_snapshot_identifier_len() - "lifeboat-".len() - suffix.len();
    let cut: String = restore.chars().take(room).collect();
    format!("lifeboat-{}{suffix}", cut.trim_end_matches('-'))
}

/// One region's restore engine: RDS there, credentials in the deployment's secrets (home region).
pub struct RestoreEngine<'a> {
    /// RDS in the region of the restored databases.
    pub rds: &'a Rds,
    /// Where the restored databases' credentials live.
    pub secrets: &'a Secrets,
    /// This deployment: its identity goes on every secret it makes.
    pub deployment: &'a Deployment,
}

impl RestoreEngine<'_> {
    /// Request the restore `spec` (a restore that exists already counts as done).
    pub async fn start(&self, spec: &RestoreSpec<'_>) -> Result<(), AwsError> {
        self.rds.restore(spec).await
    }

    /// An Aurora restore's cluster exists without its instance (the run that restored the cluster never heard
    /// back, or could not create the instance): ask for the instance again, with the restore's own tags.
    pub async fn create_member(
        &self,
        restoration: &Restoration,
        instance_class: &str,
    ) -> Result<(), AwsError> {
        let tags: Vec<(String, String)> = restoration
            .resource
            .tags
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        self.rds
            .create_cluster_member(
                &restoration.id,
                &restoration.resource.engine,
                instance_class,
                &tags,
            )
            .await?;
        info!(restore = %restoration.id, "cluster's instance requested again");
        Ok(())
    }

    /// The restore is available: give it a master password of its own, kept in a secret deleted with it, and
    /// move it to [`Phase::Securing`] (noting when it was first seen available).
    pub async fn secure(
        &self,
        restoration: &Restoration,
        now: DateTime<Utc>,
    ) -> Result<(), AwsError> {
        let candidate = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let [deployment_tag, home_region_tag] = self.deployment.tags();
        let keys = restoration.purpose.keys();
        let secret_tags = [
            (keys.id.to_string(), restoration.id.clone()),
            deployment_tag,
            home_region_tag,
        ];
        let password = self
            .secrets
            .get_or_create(
                &restoration.purpose.secret_name(&restoration.id),
                &candidate,
                &secret_tags,
            )
            .await?;
        self.rds
            .set_master_password(
                restoration.resource.kind,
                &restoration.id,
                &password,
                restoration.purpose == Purpose::Failover,
            )
            .await?;
        let mut phase = vec![(keys.phase.to_string(), Phase::Securing.as_str().to_string())];
        if restoration.available_at.is_none() {
            phase.push((keys.available_at.to_string(), tag_time(now)));
        }
        self.rds.add_tags(&restoration.resource.arn, &phase).await
    }

    /// `Some(why)` while RDS has not applied the credentials yet (RDS reports `available` for a moment after the
    /// modify call, before it applies the new master password); `None` once they are in effect.
    pub async fn credentials_pending(
        &self,
        restoration: &Restoration,
    ) -> Result<Option<String>, AwsError> {
        self.rds
            .credentials_pending(restoration.resource.kind, &restoration.id)
            .await
    }

    /// The restored database's password (`None`: the secret is gone; [`RestoreEngine::secure`] sets a new one).
    pub async fn password(&self, restoration: &Restoration) -> Result<Option<String>, AwsError> {
        self.secrets
            .get(&restoration.purpose.secret_name(&restoration.id))
            .await
    }

    /// Move the restore to `phase`, with `more` tags (keys its function's role may write on it).
    pub async fn set_phase(
        &self,
        restoration: &Restoration,
        phase: Phase,
        more: &[(String, String)],
    ) -> Result<(), AwsError> {
        let mut tags = vec![(
            restoration.purpose.keys().phase.to_string(),
            phase.as_str().to_string(),
        )];
        tags.extend(more.iter().cloned());
        self.rds.add_tags(&restoration.resource.arn, &tags).await
    }

    /// Tag the restore (keys its function's role may write on it).
    pub async fn tag(
        &self,
        restoration: &Restoration,
        tags: &[(String, String)],
    ) -> Result<(), AwsError> {
        self.rds.add_tags(&restoration.resource.arn, tags).await
    }

    /// Request the final snapshot of an expired ad-hoc restore (tagged `tags`) and move it to
    /// [`Phase::Retiring`]; returns the snapshot's identifier. A snapshot already made counts as done.
    pub async fn retire(
        &self,
        restoration: &Restoration,
        tags: &[(String, String)],
    ) -> Result<String, CreateSnapshotError> {
        let id = final_snapshot_identifier(&restoration.id, restoration.started_at);
        match self
            .rds
            .create_snapshot(&restoration.resource, &id, tags)
            .await
        {
            Ok(_) => {}
            // Done before (a retried run), if it is this restore's own: taken of it, after it started.
            Err(CreateSnapshotError::AlreadyExists(existing)) => {
                let own = self
                    .rds
                    .describe_snapshot(restoration.resource.kind, &id)
                    .await?
                    .is_some_and(|s| {
                        s.tags.get(tags::SOURCE) == Some(&restoration.id)
                            && s.created_at >= restoration.started_at
                    });
                if !own {
                    return Err(CreateSnapshotError::AlreadyExists(existing));
                }
            }
            Err(e) => return Err(e),
        }
        self.set_phase(
            restoration,
            Phase::Retiring,
            &[(tags::RESTORE_FINAL_SNAPSHOT.to_string(), id.clone())],
        )
        .await?;
        Ok(id)
    }

    /// The final snapshot of a retiring restore, as RDS describes it now (`None`: not found).
    pub async fn final_snapshot(
        &self,
        restoration: &Restoration,
    ) -> Result<Option<Snapshot>, AwsError> {
        let id = restoration
            .final_snapshot
            .clone()
            .unwrap_or_else(|| final_snapshot_identifier(&restoration.id, restoration.started_at));
        self.rds
            .describe_snapshot(restoration.resource.kind, &id)
            .await
    }

    /// Delete the restore's credentials, then the restored database (no final snapshot: an ad-hoc restore took
    /// its own first). The database goes only once its secret is gone: the other way round, a secret whose
    /// deletion failed after its database went would be left behind. Returns whether everything is gone.
    pub async fn clean_up(&self, restoration: &Restoration) -> Result<bool, AwsError> {
        self.secrets
            .delete(&restoration.purpose.secret_name(&restoration.id))
            .await?;
        self.rds
            .delete_restored(restoration.resource.kind, &restoration.id)
            .await
    }
}

#[cfg(feature = "sql-checks")]
pub use checked::{CheckSettings, failure_class};

/// The engine's check step: only functions that run SQL checks link it.
#[cfg(feature = "sql-checks")]
mod checked {
    use std::time::Duration;

    use super::RestoreEngine;
    use crate::checks::{
        self, CONNECTIVITY, CheckResult, EndpointOverride, Engine, Secret, Target, TlsMode,
    };
    use crate::policy::Check;
    use crate::restore::{FailureClass, Restoration};

    /// How the checks connect.
    #[derive(Debug, Clone)]
    pub struct CheckSettings {
        /// TLS of the checks' connections.
        pub tls: TlsMode,
        /// Bound on connecting and on each check's query.
        pub timeout: Duration,
        /// Test-only endpoint override (see [`EndpointOverride`]).
        pub endpoint_override: Option<EndpointOverride>,
    }

    /// Whether the checks failed because of the infrastructure rather than the recovery point: no connection
    /// (refused, timed out, TLS, authentication), or every failed check timed out or lost its connection. Any
    /// check that failed with an answer from a connected database blames the recovery point.
    pub fn failure_class(results: &[CheckResult]) -> FailureClass {
        let failed: Vec<&CheckResult> = results.iter().filter(|r| !r.passed).collect();
        let infrastructure = |r: &&CheckResult| {
            r.name == CONNECTIVITY
                || r.actual.starts_with(checks::NOT_RUN_NO_CONNECTION)
                || r.actual.starts_with("not run: connection lost")
                || r.actual.starts_with("error: timed out")
        };
        if failed.iter().any(|r| r.name == CONNECTIVITY) || failed.iter().all(infrastructure) {
            FailureClass::Infrastructure
        } else {
            FailureClass::Snapshot
        }
    }

    impl RestoreEngine<'_> {
        /// Run `policy_checks` against the restored database with `password`, connectivity first. Never fails: a
        /// target that cannot be built is a failed connectivity check. Returns the results and how the connection
        /// was secured (`verified`, `unverified`, `disabled`).
        pub async fn run_checks(
            &self,
            restoration: &Restoration,
            password: String,
            policy_checks: &[Check],
            database_name: Option<String>,
            settings: &CheckSettings,
        ) -> (Vec<CheckResult>, Option<TlsMode>) {
            match target(restoration, password, database_name, settings) {
                Ok(target) => {
                    let tls = target.tls.clone();
                    let results = checks::run_checks(
                        &target,
                        policy_checks,
                        restoration.snapshot_time,
                        settings.timeout,
                    )
                    .await
                    .results;
                    (results, Some(tls))
                }
                Err(problem) => (
                    vec![CheckResult {
                        name: CONNECTIVITY.into(),
                        expected: "connect".into(),
                        actual: problem,
                        passed: false,
                        duration_ms: 0,
                    }],
                    None,
                ),
            }
        }
    }

    /// Where and how the checks connect to the restored database.
    fn target(
        restoration: &Restoration,
        password: String,
        database: Option<String>,
        settings: &CheckSettings,
    ) -> Result<Target, String> {
        let resource = &restoration.resource;
        let engine = Engine::from_rds_engine(&resource.engine).map_err(|e| e.to_string())?;
        let user = resource
            .master_username
            .clone()
            .ok_or("RDS reports no master user name for the restored database")?;
        let (host, port, tls) = match &settings.endpoint_override {
            Some(over) => {
                let (host, port) = match engine {
                    Engine::Postgres => over.postgres.clone(),
                    Engine::MySql => over.mysql.clone(),
                };
                (host, port, TlsMode::Disable)
            }
            None => {
                let endpoint = resource
                    .endpoint
                    .clone()
                    .ok_or("the restored database has no endpoint yet")?;
                (endpoint.host, endpoint.port, settings.tls.clone())
            }
        };
        Ok(Target {
            engine,
            host,
            port,
            user,
            password: Secret::new(password),
            database,
            tls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_snapshot_identifiers_fit_are_deterministic_and_differ_per_start() {
        let started: DateTime<Utc> = "2026-11-20T14:02:00Z".parse().unwrap();
        let long = "a".repeat(63);
        let id = final_snapshot_identifier(&long, started);
        assert!(id.len() <= 63, "{id}");
        assert!(
            id.starts_with("lifeboat-") && id.ends_with("-202611201402-final"),
            "{id}"
        );
        assert_eq!(id, final_snapshot_identifier(&long, started));
        assert_eq!(
            final_snapshot_identifier("lbrestore-booking-db-20261120-1345", started),
            "lifeboat-lbrestore-booking-db-20261120-1345-202611201402-final"
        );
        assert_ne!(
            final_snapshot_identifier("lbrestore-booking-db-20261120-1345", started),
            final_snapshot_identifier(
                "lbrestore-booking-db-20261120-1345",
                started + chrono::Duration::days(1)
            ),
            "a later restore under the same name never finds an earlier one's final snapshot"
        );
    }

    #[test]
    fn refusals_are_settings_not_weather() {
        let service = |code: &str| AwsError::Service {
            operation: "rds:RestoreDBInstanceFromDBSnapshot".into(),
            region: "us-east-1".into(),
            code: code.into(),
            message: "m".into(),
        };
        assert!(is_refusal(&service("InvalidParameterCombination")));
        assert!(!is_refusal(&service("InsufficientDBInstanceCapacity")));
        assert_eq!(
            sibling_arn("arn:aws:rds:us-east-1:1:snapshot:s", "cluster", "c"),
            "arn:aws:rds:us-east-1:1:cluster:c"
        );
    }
}
