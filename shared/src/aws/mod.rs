//! AWS adapters: SDK clients built once, and one thin module per service that translates between SDK types and
//! Lifeboat's plain data, returning typed errors.

pub mod cloudwatch;
pub mod error;
#[cfg(feature = "failover")]
pub mod kms;
#[cfg(feature = "continuation")]
pub mod lambda;
pub mod rds;
#[cfg(feature = "failover")]
pub mod route53;
pub mod secrets;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

pub use error::AwsError;

/// SDK clients for one account, built once per Lambda container from the environment.
///
/// `AWS_ENDPOINT_URL` (or a service-specific `AWS_ENDPOINT_URL_<SERVICE>`) is honoured by the SDK itself; when
/// an endpoint override is set, S3 uses path-style addressing, which local emulators need. Retries are adaptive
/// (client-side rate limiting on throttling) with up to five attempts, each bounded by [`ATTEMPT_TIMEOUT`] and all
/// of them by [`OPERATION_TIMEOUT`], so a hung connection cannot hold a run past its deadline.
#[derive(Clone, Debug)]
pub struct AwsClients {
    config: SdkConfig,
}

/// The longest one attempt at an AWS call may take (RDS and the other control planes answer in well under a
/// second; the largest upload, a bulk run's ledger intents of a few MiB, in a few seconds; a slow attempt is
/// retried).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// The longest an AWS call may take with its retries: a deletion a retention run starts before its cutoff (at least
/// 30 s before the invocation's deadline, see [`crate::lambda::work_cutoff`]) gets its answer before the deadline.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(25);

impl AwsClients {
    /// Load configuration from the environment (region, credentials, endpoint override).
    pub async fn from_env() -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::adaptive().with_max_attempts(5))
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            )
            .load()
            .await;
        Self { config }
    }

    /// Use an existing SDK configuration (tests build one pointing at the emulator).
    pub fn from_sdk_config(config: SdkConfig) -> Self {
        Self { config }
    }

    /// The region the function runs in (the primary region).
    pub fn region(&self) -> String {
        self.config
            .region()
            .map(ToString::to_string)
            .unwrap_or_else(|| "us-east-1".to_string())
    }

    /// The SDK configuration.
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.config
    }

    /// RDS client for the primary region.
    pub fn rds(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.config)
    }

    /// RDS client for `region` (a disaster-recovery region).
    pub fn rds_in(&self, region: &str) -> aws_sdk_rds::Client {
        let config = aws_sdk_rds::config::Builder::from(&self.config)
            .region(aws_sdk_rds::config::Region::new(region.to_string()))
            .build();
        aws_sdk_rds::Client::from_conf(config)
    }

    /// The RDS adapter for the primary region.
    pub fn primary_rds(&self) -> rds::Rds {
        rds::Rds::new(self.rds(), self.region()).dated_by_tags_if_testing(env_var)
    }

    /// An RDS adapter for each of `regions` other than the primary region (the DR regions to list).
    pub fn dr_rds(&self, regions: &std::collections::BTreeSet<String>) -> Vec<rds::Rds> {
        let primary = self.region();
        regions
            .iter()
            .filter(|region| **region != primary)
            .map(|region| {
                rds::Rds::new(self.rds_in(region), region.clone()).dated_by_tags_if_testing(env_var)
            })
            .collect()
    }

    /// S3 client; path-style addressing when an endpoint override is set.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.config)
            .force_path_style(self.config.endpoint_url().is_some())
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Secrets Manager client.
    pub fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.config)
    }

    /// CloudWatch client (RDS's own metrics).
    pub fn cloudwatch(&self) -> aws_sdk_cloudwatch::Client {
        aws_sdk_cloudwatch::Client::new(&self.config)
    }

    /// CloudWatch client for `region` (alarms of another region: Route 53 health checks' are in us-east-1).
    pub fn cloudwatch_in(&self, region: &str) -> aws_sdk_cloudwatch::Client {
        let config = aws_sdk_cloudwatch::config::Builder::from(&self.config)
            .region(aws_sdk_cloudwatch::config::Region::new(region.to_string()))
            .build();
        aws_sdk_cloudwatch::Client::from_conf(config)
    }

    /// KMS client for `region` (the DR regions' copy keys).
    #[cfg(feature = "failover")]
    pub fn kms_in(&self, region: &str) -> aws_sdk_kms::Client {
        let config = aws_sdk_kms::config::Builder::from(&self.config)
            .region(aws_sdk_kms::config::Region::new(region.to_string()))
            .build();
        aws_sdk_kms::Client::from_conf(config)
    }

    /// Route 53 client. Route 53 is global and its control plane is in us-east-1, so the client talks to
    /// us-east-1 whatever the function's region (an endpoint override is kept).
    #[cfg(feature = "failover")]
    pub fn route53(&self) -> aws_sdk_route53::Client {
        let config = aws_sdk_route53::config::Builder::from(&self.config)
            .region(aws_sdk_route53::config::Region::new("us-east-1"))
            .build();
        aws_sdk_route53::Client::from_conf(config)
    }

    /// Continuations of the running function (`AWS_LAMBDA_FUNCTION_NAME`, which Lambda sets), or `None` outside
    /// Lambda.
    #[cfg(feature = "continuation")]
    pub fn continuations(&self) -> Option<lambda::Continuations> {
        let name = env_var("AWS_LAMBDA_FUNCTION_NAME")?;
        Some(lambda::Continuations::new(
            aws_sdk_lambda::Client::new(&self.config),
            self.region(),
            name,
        ))
    }

    /// SNS client.
    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.config)
    }
}

/// A variable of the process environment.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_call_is_bounded_in_time() {
        let clients = AwsClients::from_env().await;
        let timeouts = clients.sdk_config().timeout_config().expect("timeouts set");
        assert_eq!(timeouts.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(timeouts.operation_timeout(), Some(OPERATION_TIMEOUT));
        assert!(ATTEMPT_TIMEOUT < OPERATION_TIMEOUT);
    }
}
