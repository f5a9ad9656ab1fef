//! Lambda entry point of the failover function: wires logging, configuration and AWS clients once, then serves
//! invocations with [`lifeboat_failover::FailoverFunction`].

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use lifeboat::aws::cloudwatch::CloudWatch;
use lifeboat::aws::kms::Kms;
use lifeboat::aws::route53::Route53;
use lifeboat::aws::secrets::Secrets;
use lifeboat::checks::{EndpointOverride, TlsMode};
use lifeboat::restore::engine::CheckSettings;
use lifeboat::services::Services;
use lifeboat::state::StateStore;
use lifeboat_failover::FailoverFunction;

/// Bound on connecting to the DR database and on each check's query.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Where Route 53 health checks and their alarms live, whatever the primary region.
const ROUTE53_REGION: &str = "us-east-1";

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lifeboat::telemetry::init();
    let (services, aws, config) = Services::from_env().await?;
    // The template always sets it; a local run without it keeps the state in the ledger bucket.
    let reports_bucket = std::env::var("LIFEBOAT_REPORTS_BUCKET")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| services.ledger.bucket().to_string());
    let region = aws.region();
    let dr_regions = config.regions_to_list();
    let mut alarm_regions = vec![region.clone()];
    if region != ROUTE53_REGION {
        alarm_regions.push(ROUTE53_REGION.to_string());
    }
    let function = Arc::new(FailoverFunction {
        primary: aws.primary_rds(),
        dr_regions: aws.dr_rds(&dr_regions),
        route53: Route53::new(aws.route53()),
        alarms: alarm_regions
            .iter()
            .map(|r| CloudWatch::new(aws.cloudwatch_in(r), r.clone()))
            .collect(),
        kms: dr_regions
            .iter()
            .map(|r| Kms::new(aws.kms_in(r), r.clone()))
            .collect(),
        secrets: Secrets::new(aws.secrets(), region.clone()),
        checks: CheckSettings {
            tls: TlsMode::verified_from_env()?,
            timeout: CHECK_TIMEOUT,
            endpoint_override: EndpointOverride::from_vars(|name| std::env::var(name).ok())?,
        },
        state: StateStore::new(aws.s3(), reports_bucket, region),
        services,
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let function = Arc::clone(&function);
        async move { function.handle(event.payload, &event.context).await }
    }))
    .await
}
