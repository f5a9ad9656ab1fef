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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::MetricDataResult;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    /// 501 instances take two calls of at most 500 queries; each answer maps back to its instance by query id,
    /// the newest value (first, TimestampDescending) counts, and an instance without a value is left out.
    #[tokio::test]
    async fn queries_are_chunked_and_answers_mapped_back_to_their_instances() {
        let rule = mock!(Client::get_metric_data)
            .match_requests(|req| req.metric_data_queries().len() <= QUERIES_PER_CALL)
            .then_output(|| {
                GetMetricDataOutput::builder()
                    .metric_data_results(
                        MetricDataResult::builder()
                            .id("m0")
                            .values(2048.0)
                            .values(1.0)
                            .build(),
                    )
                    .metric_data_results(MetricDataResult::builder().id("m1").build())
                    .build()
            });
        let cloudwatch = CloudWatch::new(
            mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]),
            "us-east-1",
        );
        let instances: Vec<String> = (0..501).map(|i| format!("db-{i}")).collect();
        let free = cloudwatch
            .free_storage(&instances, "2026-11-22T03:00:00Z".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 2);
        assert_eq!(
            free,
            BTreeMap::from([("db-0".to_string(), 2048), ("db-500".to_string(), 2048)])
        );
    }
}
