//! Lambda entry point of the snapshot function: wires logging, configuration and AWS clients once, then serves
//! invocations with [`lifeboat_snapshot::SnapshotFunction`].

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use lifeboat::services::Services;
use lifeboat_snapshot::SnapshotFunction;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lifeboat::telemetry::init();
    let (services, aws, _) = Services::from_env().await?;
    let function = Arc::new(SnapshotFunction {
        rds: aws.primary_rds(),
        services,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = Arc::clone(&function);
        async move { function.handle(event.payload, &event.context).await }
    }))
    .await
}
