//! Lambda entry point of the copy function: wires logging, configuration and AWS clients (one RDS client per DR
//! region of the policy) once, then serves invocations with [`lifeboat_copy::CopyFunction`].

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use lifeboat::aws::AwsClients;
use lifeboat::aws::rds::Rds;
use lifeboat::clock::SystemClock;
use lifeboat::config::RuntimeConfig;
use lifeboat::copy::CopyLimits;
use lifeboat::ledger::Ledger;
use lifeboat::notify::Notifier;
use lifeboat_copy::CopyFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lifeboat::telemetry::init();
    let config = RuntimeConfig::from_env()?;
    let aws = AwsClients::from_env().await;
    let region = aws.region();
    let dr_regions = config
        .policy
        .copy_regions()
        .into_iter()
        .filter(|dr| *dr != region)
        .map(|dr| Rds::new(aws.rds_in(&dr), dr))
        .collect();
    let function = Arc::new(CopyFunction {
        primary: Rds::new(aws.rds(), &region),
        dr_regions,
        ledger: Ledger::new(aws.s3(), &config.ledger_bucket, &region),
        notifier: Notifier::new(aws.sns(), &config.topic_arn, &region),
        policy: config.policy,
        clock: Arc::new(SystemClock),
        limits: CopyLimits::uniform(config.copy_slots),
        concurrency: config.concurrency,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = Arc::clone(&function);
        async move { function.handle(event.payload, &event.context).await }
    }))
    .await
}
