//! CloudWatch adapter: reads RDS's own metrics (`AWS/RDS`) with `GetMetricData`, many databases per call.
//!
//! The Rust SDK speaks Smithy RPC v2 CBOR, which the local emulator does not serve: this adapter is tested with
//! aws-smithy-mocks. Lifeboat's own metrics go out as EMF in the logs, never through this API.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use chrono::{DateTime, TimeDelta, Utc};

use super::AwsError;

/// Queries per `GetMetricData` call (the API's limit is 500).
const QUERIES_PER_CALL: usize = 500;

/// How far back a storage sample may be: RDS publishes `FreeStorageSpace` every minute.
const LOOKBACK_MINUTES: i64 = 30;

/// CloudWatch in one region.
#[derive(Clone, Debug)]
pub struct CloudWatch {
    client: Client,
    region: String,
}

impl CloudWatch {
    /// CloudWatch through `client`, configured for `region`.
    pub fn new(client: Client, region: impl Into<String>) -> Self {
        Self {
            client,
            region: region.into(),
        }
    }

    /// The newest `FreeStorageSpace` (bytes, the minimum over 5 minutes) of each of the DB `instances` within the
    /// last 30 minutes before `now`; instances without a sample are left out. Cost: one call per 500 instances
    /// (and per page of answers).
    pub async fn free_storage(
        &self,
        instances: &[String],
        now: DateTime<Utc>,
    ) -> Result<BTreeMap<String, u64>, AwsError> {
        let mut free = BTreeMap::new();
        let start = now - TimeDelta::minutes(LOOKBACK_MINUTES);
        for chunk in instances.chunks(QUERIES_PER_CALL) {
            let queries: Vec<MetricDataQuery> = chunk
                .iter()
                .enumerate()
                .map(|(i, instance)| {
                    MetricDataQuery::builder()
                        .id(format!("m{i}"))
                        .metric_stat(
                            MetricStat::builder()
                                .metric(
                                    Metric::builder()
                                        .namespace("AWS/RDS")
                                        .metric_name("FreeStorageSpace")
                                        .dimensions(
                                            Dimension::builder()
                                                .name("DBInstanceIdentifier")
                                                .value(instance)
                                                .build(),
                                        )
                                        .build(),
                                )
                                .period(300)
                                .stat("Minimum")
                                .build(),
                        )
                        .return_data(true)
                        .build()
                })
                .collect();
            let mut pages = self
                .client
                .get_metric_data()
                .set_metric_data_queries(Some(queries))
                .start_time(aws_smithy_types::DateTime::from_secs(start.timestamp()))
                .end_time(aws_smithy_types::DateTime::from_secs(now.timestamp()))
                .scan_by(ScanBy::TimestampDescending)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    AwsError::from_sdk("cloudwatch:GetMetricData", &self.region, &e)
                })?;
                for result in page.metric_data_results() {
                    let index = result
                        .id()
                        .and_then(|id| id.strip_prefix('m'))
                        .and_then(|i| i.parse::<usize>().ok());
                    let (Some(instance), Some(value)) =
                        (index.and_then(|i| chunk.get(i)), result.values().first())
                    else {
                        continue;
                    };
                    // Newest first (TimestampDescending); a later page never holds a newer value of a query.
                    free.entry(instance.clone())
                        .or_insert(value.max(0.0) as u64);
                }
            }
        }
        Ok(free)
    }
}
