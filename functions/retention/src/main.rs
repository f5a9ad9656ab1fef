//! Lambda entry point of the retention function: wires logging, configuration and AWS clients (one RDS client
//! per region of the policy) once, then serves invocations with [`lifeboat_retention::RetentionFunction`].

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use lifeboat::services::Services;
use lifeboat_retention::RetentionFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lifeboat::telemetry::init();
    let (services, aws, config) = Services::from_env().await?;
    let function = Arc::new(RetentionFunction {
        primary: aws.primary_rds(),
        dr_regions: aws.dr_rds(&config.regions_to_list()),
        continuations: aws.continuations(),
        services,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = Arc::clone(&function);
        async move { function.handle(event.payload, &event.context).await }
    }))
    .await
}
