//! What every function needs besides its own AWS adapters: the policy, the ledger, the alert topic, the clock and
//! how many AWS actions may run at once. Built once per container.

use std::sync::Arc;

use crate::aws::AwsClients;
use crate::clock::{Clock, SystemClock};
use crate::config::{ConfigError, RuntimeConfig};
use crate::ledger::{Ledger, RunLedger};
use crate::notify::{Notifier, RunSummary};
use crate::ownership::Deployment;
use crate::policy::Policy;
use crate::report::ItemOutcome;

/// The shared services of a function.
pub struct Services {
    /// The policy in force.
    pub policy: Policy,
    /// Who this deployment is: everything it makes carries this identity, and it touches nothing else.
    pub deployment: Deployment,
    /// The audit ledger.
    pub ledger: Ledger,
    /// The alert topic.
    pub notifier: Notifier,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// AWS actions at once within a run.
    pub concurrency: usize,
}

/// One run's outcome, for its summary notification.
pub struct RunOutcome<'a> {
    /// Function that ran.
    pub function: &'a str,
    /// Primary region.
    pub region: &'a str,
    /// The invocation (Lambda request ID).
    pub run_id: &'a str,
    /// What caused the run.
    pub trigger: &'a str,
    /// Per-item results.
    pub items: &'a [ItemOutcome],
}

impl Services {
    /// Read the configuration and build the clients from the environment (the Lambda cold start). Returns the
    /// services, the AWS clients for the function's own adapters, and the configuration.
    pub async fn from_env() -> Result<(Self, AwsClients, RuntimeConfig), ConfigError> {
        let config = RuntimeConfig::from_env()?;
        let aws = AwsClients::from_env().await;
        let region = aws.region();
        let deployment =
            Deployment::new(config.deployment.as_str(), region.as_str()).map_err(|e| {
                ConfigError::Invalid {
                    name: "LIFEBOAT_DEPLOYMENT",
                    value: config.deployment.clone(),
                    problem: e.to_string(),
                }
            })?;
        let services = Services {
            policy: config.policy.clone(),
            deployment,
            ledger: Ledger::new(aws.s3(), &config.ledger_bucket, &region),
            notifier: Notifier::new(aws.sns(), &config.topic_arn, &region),
            clock: Arc::new(SystemClock),
            concurrency: config.concurrency,
        };
        Ok((services, aws, config))
    }

    /// The ledger of run `run_id` of `function`, caused by `trigger`: one intent object, one result object.
    pub fn run_ledger(&self, function: &str, run_id: &str, trigger: &str) -> RunLedger<'_> {
        RunLedger::new(
            &self.ledger,
            self.clock.as_ref(),
            &self.deployment,
            (function, run_id, trigger),
        )
    }

    /// Send one SNS summary of the run when anything in it needs attention; a failed publish is added to
    /// `run_errors` (reported, never swallowed). Returns the message ID when one was sent.
    pub async fn summarize(
        &self,
        run: RunOutcome<'_>,
        run_errors: &mut Vec<String>,
    ) -> Option<String> {
        let ledger_location = self.ledger.location(self.clock.now());
        let summary = RunSummary {
            function: run.function,
            region: run.region,
            run_id: run.run_id,
            trigger: run.trigger,
            items: run.items,
            run_errors,
            ledger_location: &ledger_location,
        };
        match self.notifier.publish_if_needed(&summary).await {
            Ok(message_id) => message_id,
            Err(e) => {
                run_errors.push(e);
                None
            }
        }
    }
}
