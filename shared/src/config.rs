//! Runtime configuration from environment variables, read once at cold start.
//!
//! | variable | meaning |
//! | --- | --- |
//! | `LIFEBOAT_DEPLOYMENT` | name of the deployment (the stack name; required): written on everything it makes |
//! | `LIFEBOAT_LEDGER_BUCKET` | S3 bucket of the ledger (required) |
//! | `LIFEBOAT_TOPIC_ARN` | SNS topic for alerts, unless the policy names one |
//! | `LIFEBOAT_POLICY_FILE` | path of a policy YAML file; the built-in `infra/policy.yaml` when unset |
//! | `LIFEBOAT_CONCURRENCY` | concurrent AWS actions per run (default 8) |
//! | `LIFEBOAT_DR_REGIONS` | the deployment's DR regions (comma-separated; the template's `DrRegions`): the policy may copy to no other, and every one is listed |
//! | `LIFEBOAT_COPY_SLOTS` | cross-region DB snapshot copies in flight per destination region (default 20, the RDS limit) |
//! | `LIFEBOAT_CLUSTER_COPY_SLOTS` | cross-region DB cluster snapshot copies in flight per destination region (default 5, the RDS limit), counted apart |
//! | `LIFEBOAT_COPY_DEADLINE_HOURS` | hours a recovery point may take to reach every DR region before it is alerted as late (default 24) |

use std::collections::BTreeSet;

use crate::policy::{Policy, PolicyError};

/// Default number of concurrent AWS actions in one run.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// Default number of cross-region DB snapshot copies in flight per destination region: the RDS limit per account.
pub const DEFAULT_COPY_SLOTS: usize = crate::copy::RDS_SNAPSHOT_COPIES_IN_FLIGHT_PER_REGION;

/// Default number of cross-region DB cluster snapshot copies in flight per destination region: the RDS limit per
/// account, counted apart from DB snapshot copies.
pub const DEFAULT_CLUSTER_COPY_SLOTS: usize =
    crate::copy::RDS_CLUSTER_SNAPSHOT_COPIES_IN_FLIGHT_PER_REGION;

/// Configuration every function needs.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The validated policy.
    pub policy: Policy,
    /// Name of the deployment (the stack name); with the home region, the identity on everything it makes.
    pub deployment: String,
    /// Ledger bucket.
    pub ledger_bucket: String,
    /// Alert topic.
    pub topic_arn: String,
    /// Concurrent AWS actions per run.
    pub concurrency: usize,
    /// Cross-region DB snapshot copies in flight per destination region.
    pub copy_slots: usize,
    /// Cross-region DB cluster snapshot copies in flight per destination region.
    pub cluster_copy_slots: usize,
    /// Hours a recovery point may take to reach a DR region before it is late.
    pub copy_deadline_hours: usize,
    /// The DR regions the deployment was given (`LIFEBOAT_DR_REGIONS`; empty when unset): the policy copies to no
    /// other, and every one is listed even after the policy stops copying there (its copies and holds still count).
    pub dr_regions: BTreeSet<String>,
}

/// Configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is missing or empty.
    #[error("environment variable {0} is required: {1}")]
    Missing(&'static str, &'static str),
    /// A variable has a value that cannot be used.
    #[error("environment variable {name} = `{value}`: {problem}")]
    Invalid {
        /// Variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        problem: String,
    },
    /// The policy file cannot be read.
    #[error("cannot read policy file {path}: {source}")]
    PolicyFile {
        /// Path.
        path: String,
        /// I/O error.
        source: std::io::Error,
    },
    /// The policy is invalid.
    #[error("{source} (policy from {origin})")]
    Policy {
        /// Where the policy came from.
        origin: String,
        /// What is wrong with it.
        source: PolicyError,
    },
}

impl RuntimeConfig {
    /// Every DR region to list: the policy's copy regions and the deployment's `LIFEBOAT_DR_REGIONS`.
    pub fn regions_to_list(&self) -> BTreeSet<String> {
        let mut regions = self.policy.copy_regions();
        regions.extend(self.dr_regions.iter().cloned());
        regions
    }

    /// Read configuration through `var` (the process environment in `from_env`).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let non_empty = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let (text, origin) = match non_empty("LIFEBOAT_POLICY_FILE") {
            Some(path) => {
                let text =
                    std::fs::read_to_string(&path).map_err(|source| ConfigError::PolicyFile {
                        path: path.clone(),
                        source,
                    })?;
                (text, path)
            }
            None => (
                crate::policy::DEFAULT_POLICY_YAML.to_string(),
                "the built-in default".to_string(),
            ),
        };
        let policy =
            Policy::from_yaml(&text).map_err(|source| ConfigError::Policy { origin, source })?;
        let deployment = non_empty("LIFEBOAT_DEPLOYMENT").ok_or(ConfigError::Missing(
            "LIFEBOAT_DEPLOYMENT",
            "the deployment's name (the stack name), tagged on everything it makes",
        ))?;
        if let Err(e) = crate::ownership::Deployment::new(deployment.as_str(), "any") {
            return Err(ConfigError::Invalid {
                name: "LIFEBOAT_DEPLOYMENT",
                value: deployment,
                problem: e.to_string(),
            });
        }
        let ledger_bucket = non_empty("LIFEBOAT_LEDGER_BUCKET").ok_or(ConfigError::Missing(
            "LIFEBOAT_LEDGER_BUCKET",
            "the S3 bucket of the audit ledger",
        ))?;
        let topic_arn = policy
            .notifications
            .topic_arn
            .clone()
            .or_else(|| non_empty("LIFEBOAT_TOPIC_ARN"))
            .ok_or(ConfigError::Missing(
                "LIFEBOAT_TOPIC_ARN",
                "the SNS topic for alerts (or set notifications.topic_arn in the policy)",
            ))?;
        let number = |name: &'static str, default: usize, max: usize| match non_empty(name) {
            None => Ok(default),
            Some(value) => match value.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ConfigError::Invalid {
                    name,
                    value,
                    problem: format!("must be a whole number from 1 to {max}"),
                }),
            },
        };
        let dr_regions: BTreeSet<String> = non_empty("LIFEBOAT_DR_REGIONS")
            .map(|list| {
                list.split(',')
                    .map(|r| r.trim().to_string())
                    .filter(|r| !r.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if !dr_regions.is_empty() {
            let outside: Vec<String> = policy
                .copy_regions()
                .into_iter()
                .filter(|region| !dr_regions.contains(region))
                .collect();
            if !outside.is_empty() {
                return Err(ConfigError::Invalid {
                    name: "LIFEBOAT_DR_REGIONS",
                    value: dr_regions.iter().cloned().collect::<Vec<_>>().join(","),
                    problem: format!(
                        "the policy copies to {} as well: add it to the stack's DrRegions parameter (the functions' \
                         IAM roles may act only in those regions)",
                        outside.join(", ")
                    ),
                });
            }
        }
        Ok(Self {
            dr_regions,
            policy,
            deployment,
            ledger_bucket,
            topic_arn,
            concurrency: number("LIFEBOAT_CONCURRENCY", DEFAULT_CONCURRENCY, 64)?,
            copy_slots: number("LIFEBOAT_COPY_SLOTS", DEFAULT_COPY_SLOTS, 100)?,
            cluster_copy_slots: number(
                "LIFEBOAT_CLUSTER_COPY_SLOTS",
                DEFAULT_CLUSTER_COPY_SLOTS,
                100,
            )?,
            copy_deadline_hours: number(
                "LIFEBOAT_COPY_DEADLINE_HOURS",
                crate::copy::DEFAULT_COPY_DEADLINE_HOURS as usize,
                24 * 30,
            )?,
        })
    }

    /// Read configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_to_built_in_policy() {
        let config = RuntimeConfig::from_vars(vars(&[
            ("LIFEBOAT_DEPLOYMENT", "lifeboat"),
            ("LIFEBOAT_LEDGER_BUCKET", "ledger"),
            (
                "LIFEBOAT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:lifeboat",
            ),
        ]))
        .unwrap();
        assert_eq!(config.policy.name, "default");
        assert_eq!(config.concurrency, DEFAULT_CONCURRENCY);
        assert_eq!(
            (
                config.copy_slots,
                config.cluster_copy_slots,
                config.copy_deadline_hours
            ),
            (20, 5, 24),
            "the current RDS User Guide's limits, per kind"
        );
    }

    #[test]
    fn copy_slots_are_configurable_per_kind() {
        let base = [
            ("LIFEBOAT_DEPLOYMENT", "lifeboat"),
            ("LIFEBOAT_LEDGER_BUCKET", "ledger"),
            (
                "LIFEBOAT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:lifeboat",
            ),
        ];
        let mut pairs = base.to_vec();
        pairs.extend([
            ("LIFEBOAT_COPY_SLOTS", "30"),
            ("LIFEBOAT_CLUSTER_COPY_SLOTS", "8"),
            ("LIFEBOAT_COPY_DEADLINE_HOURS", "36"),
        ]);
        let config = RuntimeConfig::from_vars(vars(&pairs)).unwrap();
        assert_eq!(
            (
                config.copy_slots,
                config.cluster_copy_slots,
                config.copy_deadline_hours
            ),
            (30, 8, 36)
        );
        let mut pairs = base.to_vec();
        pairs.push(("LIFEBOAT_CLUSTER_COPY_SLOTS", "0"));
        let err = RuntimeConfig::from_vars(vars(&pairs)).unwrap_err();
        assert!(
            err.to_string()
                .contains("LIFEBOAT_CLUSTER_COPY_SLOTS = `0`"),
            "{err}"
        );
    }

    #[test]
    fn the_policy_may_copy_only_to_the_deployments_dr_regions() {
        let base = [
            ("LIFEBOAT_DEPLOYMENT", "lifeboat"),
            ("LIFEBOAT_LEDGER_BUCKET", "ledger"),
            (
                "LIFEBOAT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:lifeboat",
            ),
        ];
        let with = |regions: &'static str| {
            let mut pairs = base.to_vec();
            pairs.push(("LIFEBOAT_DR_REGIONS", regions));
            RuntimeConfig::from_vars(vars(&pairs))
        };
        let err = with("eu-west-1").unwrap_err();
        assert!(
            err.to_string()
                .contains("the policy copies to us-west-2 as well"),
            "{err}"
        );
        let config = with("us-west-2, eu-west-1").unwrap();
        assert_eq!(
            config.regions_to_list().into_iter().collect::<Vec<_>>(),
            ["eu-west-1", "us-west-2"],
            "a region the policy stopped copying to is still listed"
        );
        let unset = RuntimeConfig::from_vars(vars(&base)).unwrap();
        assert_eq!(
            unset.regions_to_list().into_iter().collect::<Vec<_>>(),
            ["us-west-2"]
        );
    }

    #[test]
    fn missing_and_invalid_settings_are_named() {
        let err = RuntimeConfig::from_vars(vars(&[
            ("LIFEBOAT_DEPLOYMENT", "lifeboat"),
            ("LIFEBOAT_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("LIFEBOAT_LEDGER_BUCKET"), "{err}");
        let err = RuntimeConfig::from_vars(vars(&[
            ("LIFEBOAT_LEDGER_BUCKET", "b"),
            ("LIFEBOAT_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("LIFEBOAT_DEPLOYMENT"), "{err}");
        let err = RuntimeConfig::from_vars(vars(&[
            ("LIFEBOAT_DEPLOYMENT", "life_boat"),
            ("LIFEBOAT_LEDGER_BUCKET", "b"),
            ("LIFEBOAT_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("LIFEBOAT_DEPLOYMENT = `life_boat`"),
            "{err}"
        );
        let err = RuntimeConfig::from_vars(vars(&[
            ("LIFEBOAT_DEPLOYMENT", "lifeboat"),
            ("LIFEBOAT_LEDGER_BUCKET", "b"),
            ("LIFEBOAT_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t"),
            ("LIFEBOAT_CONCURRENCY", "zero"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("LIFEBOAT_CONCURRENCY = `zero`"),
            "{err}"
        );
        let err = RuntimeConfig::from_vars(vars(&[(
            "LIFEBOAT_POLICY_FILE",
            "/nonexistent/policy.yaml",
        )]))
        .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/policy.yaml"),
            "{err}"
        );
    }
}
