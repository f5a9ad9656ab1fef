//! Lambda entry point of the restore function: wires logging, configuration and AWS clients once, then serves
//! invocations with [`lifeboat_restore::RestoreFunction`].

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use lifeboat::aws::secrets::Secrets;
use lifeboat::checks::{EndpointOverride, TlsMode};
use lifeboat::restore::engine::CheckSettings;
use lifeboat::services::Services;
use lifeboat_restore::RestoreFunction;

/// Bound on connecting to a restored database and on each check's query.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lifeboat::telemetry::init();
    let (services, aws, config) = Services::from_env().await?;
    let function = Arc::new(RestoreFunction {
        primary: aws.primary_rds(),
        dr_regions: aws.dr_rds(&config.regions_to_list()),
        secrets: Secrets::new(aws.secrets(), aws.region()),
        checks: CheckSettings {
            // Certificates are verified: against LIFEBOAT_RDS_CA_BUNDLE when set, else the RDS bundle shipped inside.
            tls: TlsMode::verified_from_env()?,
            timeout: CHECK_TIMEOUT,
            endpoint_override: EndpointOverride::from_vars(|name| std::env::var(name).ok())?,
        },
        services,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = Arc::clone(&function);
        async move { function.handle(event.payload, &event.context).await }
    }))
    .await
}
