//! Lambda entry point of the monitor function: wires logging, configuration and AWS clients (one RDS client per
//! region of the policy, CloudWatch, S3) once, then serves invocations with [`lifeboat_monitor::MonitorFunction`].

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use lifeboat::aws::cloudwatch::CloudWatch;
use lifeboat::services::Services;
use lifeboat_monitor::MonitorFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lifeboat::telemetry::init();
    let (services, aws, config) = Services::from_env().await?;
    let function = Arc::new(MonitorFunction {
        primary: aws.primary_rds(),
        dr_regions: aws.dr_rds(&config.regions_to_list()),
        cloudwatch: CloudWatch::new(aws.cloudwatch(), aws.region()),
        s3: aws.s3(),
        // The template always sets it; a local run without it keeps the reports in the ledger bucket.
        reports_bucket: std::env::var("LIFEBOAT_REPORTS_BUCKET")
            .ok()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| services.ledger.bucket().to_string()),
        services,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = Arc::clone(&function);
        async move { function.handle(event.payload, &event.context).await }
    }))
    .await
}
