//! The `failover` section of a plan: where the application's database fails over to, what may start it, how the
//! application finds it (Route 53), and what needs a person's approval.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{PolicyError, de_duration, de_opt_duration, is_region};

/// Failover of a plan's application database to a DR region.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failover {
    /// The DR region the database fails over to.
    pub region: String,
    /// The database the application writes to (an instance or cluster the plan selects).
    pub database: String,
    /// `approval` (the default): nothing changes until an on-call person approves; `automatic`: a confirmed
    /// alarm acts at once, unless the data lost would exceed the RPO (that always needs a person).
    #[serde(default)]
    pub mode: FailoverMode,
    /// The CloudWatch alarms that may start a failover (by name). Other alarms are ignored.
    #[serde(default)]
    pub alarms: Vec<String>,
    /// How the application finds its database.
    pub dns: FailoverDns,
    /// The ways to make the DR database ready, tried in this order where they exist; by default an Aurora global
    /// database, then a cross-region read replica, then a restore of the newest recovery point in the DR region.
    #[serde(default = "default_strategies")]
    pub strategies: Vec<StrategyKind>,
    /// An Aurora global database may fail over with data loss (`FailoverGlobalCluster` with `AllowDataLoss`) when
    /// the primary region is unhealthy; the approval must accept it too.
    #[serde(default)]
    pub allow_data_loss: bool,
    /// How long an approval request stays valid.
    #[serde(default = "default_approval_expires", deserialize_with = "de_duration")]
    pub approval_expires: Duration,
    /// DB subnet group in the DR region for a restored or replica database; the drills' subnet group of that
    /// region by default.
    #[serde(default)]
    pub subnet_group: Option<String>,
    /// The application's security groups in the DR region for a restored or replica database; the drills' by
    /// default.
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// Instance class of a restored or replica database; the source's by default.
    #[serde(default)]
    pub instance_class: Option<String>,
    /// KMS key in the primary region for the failback replica of an encrypted DR database; RDS's own key there
    /// (`alias/aws/rds`) by default.
    #[serde(default)]
    pub failback_kms_key_id: Option<String>,
    /// How often a failover drill runs on its own (`90d`: the quarterly cross-region test); never when absent.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub drill_every: Option<Duration>,
}

/// Whether a failover waits for a person.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailoverMode {
    /// An on-call person approves each failover.
    #[default]
    Approval,
    /// A confirmed alarm fails over at once (within the RPO).
    Automatic,
}

impl FailoverMode {
    /// As written in the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            FailoverMode::Approval => "approval",
            FailoverMode::Automatic => "automatic",
        }
    }
}

/// A way to make the DR database ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyKind {
    /// The DR cluster of an Aurora global database becomes the writer.
    GlobalDatabase,
    /// A cross-region read replica is promoted.
    Replica,
    /// The newest recovery point in the DR region (copy, or point in time of replicated backups) is restored.
    Restore,
}

impl StrategyKind {
    /// As written in the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::GlobalDatabase => "global-database",
            StrategyKind::Replica => "replica",
            StrategyKind::Restore => "restore",
        }
    }
}

fn default_strategies() -> Vec<StrategyKind> {
    vec![
        StrategyKind::GlobalDatabase,
        StrategyKind::Replica,
        StrategyKind::Restore,
    ]
}

fn default_approval_expires() -> Duration {
    Duration::from_secs(3600)
}

/// The Route 53 names the application uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverDns {
    /// The hosted zone holding the records.
    pub hosted_zone_id: String,
    /// The names the application connects to (CNAME records to the database's endpoint, plain or with Route 53
    /// failover routing: both of a PRIMARY/SECONDARY pair are pointed at the new database). The only records a real
    /// failover changes.
    pub records: Vec<String>,
    /// TTL of the records Lifeboat writes (AWS advises 60 s or less for failover).
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    /// The name a failover drill points at its DR database (never one of `records`); drills need it.
    #[serde(default)]
    pub drill_record: Option<String>,
}

fn default_ttl() -> u32 {
    60
}

/// A DNS name as Route 53 compares them: lower case, without the final dot.
pub fn normalize_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

impl Failover {
    /// Check what the types alone cannot; `at` is the section's path, `copy_regions` the plan's DR regions.
    pub(super) fn validate(&self, at: &str, copy_regions: &[&str]) -> Result<(), PolicyError> {
        let err = |field: &str, problem: String| PolicyError::new(format!("{at}.{field}"), problem);
        if !is_region(&self.region) {
            return Err(err(
                "region",
                format!("`{}` is not an AWS region name", self.region),
            ));
        }
        if self.strategies.contains(&StrategyKind::Restore)
            && !copy_regions.contains(&self.region.as_str())
        {
            return Err(err(
                "region",
                format!(
                    "`{}` is not a region this plan copies to: the restore strategy needs recovery points there \
                     (add it to copies, or list only global-database and replica in strategies)",
                    self.region
                ),
            ));
        }
        if self.database.trim().is_empty() {
            return Err(err(
                "database",
                "the application's database is required".into(),
            ));
        }
        if self.strategies.is_empty() {
            return Err(err(
                "strategies",
                "list at least one of global-database, replica, restore".into(),
            ));
        }
        for (i, strategy) in self.strategies.iter().enumerate() {
            if self.strategies[..i].contains(strategy) {
                return Err(err(
                    &format!("strategies[{i}]"),
                    format!("`{}` is listed twice", strategy.as_str()),
                ));
            }
        }
        if self.mode == FailoverMode::Automatic && self.alarms.is_empty() {
            return Err(err(
                "alarms",
                "automatic mode needs the alarms that may start a failover".into(),
            ));
        }
        if self.approval_expires < Duration::from_secs(5 * 60)
            || self.approval_expires > Duration::from_secs(24 * 3600)
        {
            return Err(err("approval_expires", "must be from 5m to 24h".into()));
        }
        let dns = &self.dns;
        if dns.hosted_zone_id.trim().is_empty() {
            return Err(err(
                "dns.hosted_zone_id",
                "a hosted zone ID is required".into(),
            ));
        }
        if dns.records.is_empty() {
            return Err(err(
                "dns.records",
                "name at least one record the application connects to".into(),
            ));
        }
        for (i, name) in dns.records.iter().enumerate() {
            if !is_dns_name(name) {
                return Err(err(
                    &format!("dns.records[{i}]"),
                    format!("`{name}` is not a DNS name"),
                ));
            }
        }
        if !(1..=300).contains(&dns.ttl) {
            return Err(err(
                "dns.ttl",
                "must be from 1 to 300 seconds (AWS advises 60 or less for failover)".into(),
            ));
        }
        if let Some(drill) = &dns.drill_record {
            if !is_dns_name(drill) {
                return Err(err(
                    "dns.drill_record",
                    format!("`{drill}` is not a DNS name"),
                ));
            }
            if dns
                .records
                .iter()
                .any(|r| normalize_name(r) == normalize_name(drill))
            {
                return Err(err(
                    "dns.drill_record",
                    format!("`{drill}` is a production record: a drill must never change those"),
                ));
            }
        }
        if self.drill_every.is_some() && dns.drill_record.is_none() {
            return Err(err(
                "dns.drill_record",
                "drill_every schedules drills, which need a drill record".into(),
            ));
        }
        if self
            .drill_every
            .is_some_and(|every| every < Duration::from_secs(24 * 3600))
        {
            return Err(err("drill_every", "must be at least 1d".into()));
        }
        Ok(())
    }
}

/// Whether `name` looks like a DNS name (labels of letters, digits, hyphens and underscores).
fn is_dns_name(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    !name.is_empty()
        && name.len() <= 253
        && name.contains('.')
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}
