//! Lambda entry point of the copy function: wires logging, configuration and AWS clients (one RDS client per DR
//! region of the policy) once, then serves invocations with [`lifeboat_copy::CopyFunction`].

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use lifeboat::copy::CopyLimits;
use lifeboat::services::Services;
use lifeboat_copy::CopyFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lifeboat::telemetry::init();
    let (services, aws, config) = Services::from_env().await?;
    let function = Arc::new(CopyFunction {
        primary: aws.primary_rds(),
        dr_regions: aws.dr_rds(&config.regions_to_list()),
        limits: CopyLimits::new(config.copy_slots, config.cluster_copy_slots)
            .with_deadline(chrono::Duration::hours(config.copy_deadline_hours as i64)),
        services,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = Arc::clone(&function);
        async move { function.handle(event.payload, &event.context).await }
    }))
    .await
}
