//! CloudWatch adapter: reads RDS's own metrics (`AWS/RDS`) with `GetMetricData`, many databases per call, and the
//! current state of alarms with `DescribeAlarms`.
//!
//! The Rust SDK speaks Smithy RPC v2 CBOR, which moto does not serve; the project's emulator (scripts/emulator.py)
//! serves the alarm and metric data operations in that protocol on moto's CloudWatch backend. This adapter is
//! tested with aws-smithy-mocks, and over real HTTP against the emulator (tests/cloudwatch_alarms.rs).
//! Lifeboat's own metrics go out as EMF in the logs, never through this API.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{
    AlarmType, Dimension, Metric, MetricDataQuery, MetricStat, ScanBy, StateValue,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::AwsError;

/// Queries per `GetMetricData` call (the API's limit is 500).
const QUERIES_PER_CALL: usize = 500;

/// How far back a storage sample may be: RDS publishes `FreeStorageSpace` every minute.
const LOOKBACK_MINUTES: i64 = 30;

/// Alarm names per `DescribeAlarms` call (the API's limit for `AlarmNames` is 100).
const ALARM_NAMES_PER_CALL: usize = 100;

/// State of a CloudWatch alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    /// The metric is within the threshold (`OK`).
    Ok,
    /// The metric is outside the threshold (`ALARM`).
    Alarm,
    /// Not enough data to tell (`INSUFFICIENT_DATA`), as after an alarm is created.
    InsufficientData,
}

impl AlarmState {
    /// The state as CloudWatch names it: `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }

    /// The state CloudWatch names `name`, if it is one of the three.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "OK" => Some(AlarmState::Ok),
            "ALARM" => Some(AlarmState::Alarm),
            "INSUFFICIENT_DATA" => Some(AlarmState::InsufficientData),
            _ => None,
        }
    }
}

/// An alarm as CloudWatch describes it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmReading {
    /// The alarm's name.
    pub name: String,
    /// The alarm's ARN.
    pub arn: String,
    /// Its current state.
    pub state: AlarmState,
    /// When it entered that state (or last had its state set).
    pub updated_at: DateTime<Utc>,
    /// CloudWatch's explanation of the state, in words.
    pub reason: String,
}

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

    /// The current state of each of the alarms `names` (metric and composite alarms), one DescribeAlarms call per
    /// 100 names (and per page), each name asked once; names CloudWatch does not know are simply absent from the
    /// answer. Readings come in the order of their names; an alarm CloudWatch describes without a name, a state this adapter knows, or the
    /// time of that state is left out (and logged).
    pub async fn alarms(&self, names: &[String]) -> Result<Vec<AlarmReading>, AwsError> {
        let unique: Vec<String> = names
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut readings = Vec::new();
        for chunk in unique.chunks(ALARM_NAMES_PER_CALL) {
            let mut pages = self
                .client
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                // Without AlarmTypes, CloudWatch describes metric alarms only.
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    AwsError::from_sdk("cloudwatch:DescribeAlarms", &self.region, &e)
                })?;
                let metric = page.metric_alarms().iter().map(|alarm| {
                    described(
                        alarm.alarm_name(),
                        alarm.alarm_arn(),
                        alarm.state_value(),
                        alarm.state_updated_timestamp(),
                        alarm.state_reason(),
                    )
                });
                let composite = page.composite_alarms().iter().map(|alarm| {
                    described(
                        alarm.alarm_name(),
                        alarm.alarm_arn(),
                        alarm.state_value(),
                        alarm.state_updated_timestamp(),
                        alarm.state_reason(),
                    )
                });
                readings.extend(metric.chain(composite).flatten());
            }
        }
        readings.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(readings)
    }
}

/// The reading of an alarm from the fields DescribeAlarms gives metric and composite alarms alike; `None` (logged)
/// when it lacks a name, a known state or the time of that state.
fn described(
    name: Option<&str>,
    arn: Option<&str>,
    state: Option<&StateValue>,
    updated_at: Option<&aws_smithy_types::DateTime>,
    reason: Option<&str>,
) -> Option<AlarmReading> {
    let reading = name.zip(state.and_then(|s| AlarmState::parse(s.as_str())));
    let updated_at =
        updated_at.and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()));
    match (reading, updated_at) {
        (Some((name, state)), Some(updated_at)) => Some(AlarmReading {
            name: name.to_string(),
            arn: arn.unwrap_or_default().to_string(),
            state,
            updated_at,
            reason: reason.unwrap_or_default().to_string(),
        }),
        _ => {
            tracing::warn!(
                alarm = name.unwrap_or("(no name)"),
                state = state.map(StateValue::as_str),
                "CloudWatch described an alarm without a name, a known state or the time of that state; left out"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::error::ErrorMetadata;
    use aws_sdk_cloudwatch::operation::describe_alarms::{
        DescribeAlarmsError, DescribeAlarmsOutput,
    };
    use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
    use aws_sdk_cloudwatch::types::{CompositeAlarm, MetricAlarm, MetricDataResult};
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

    /// A metric alarm `name` in `state`, described as CloudWatch does.
    fn metric_alarm(name: &str, state: StateValue, reason: &str) -> MetricAlarm {
        MetricAlarm::builder()
            .alarm_name(name)
            .alarm_arn(format!(
                "arn:aws:cloudwatch:eu-north-1:123456789012:alarm:{name}"
            ))
            .state_value(state)
            .state_reason(reason)
            .state_updated_timestamp(aws_smithy_types::DateTime::from_secs(1_795_000_000))
            .metric_name("DatabaseConnections")
            .namespace("AWS/RDS")
            .build()
    }

    /// Metric and composite alarms are both asked for (CloudWatch describes only metric alarms otherwise) and both
    /// read, in the order of their names; a name CloudWatch does not know is absent.
    #[tokio::test]
    async fn metric_and_composite_alarms_are_read_and_unknown_names_are_absent() {
        let rule = mock!(Client::describe_alarms)
            .match_requests(|req| {
                req.alarm_types() == [AlarmType::MetricAlarm, AlarmType::CompositeAlarm]
                    && req.alarm_names() == ["db-down", "primary-gone", "unheard-of"]
            })
            .then_output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(metric_alarm(
                        "db-down",
                        StateValue::Alarm,
                        "Threshold Crossed: 3 datapoints were less than the threshold (1.0)",
                    ))
                    .composite_alarms(
                        CompositeAlarm::builder()
                            .alarm_name("primary-gone")
                            .alarm_arn(
                                "arn:aws:cloudwatch:eu-north-1:123456789012:alarm:primary-gone",
                            )
                            .alarm_rule("ALARM(db-down) AND ALARM(api-down)")
                            .state_value(StateValue::Ok)
                            .state_reason("api-down is OK")
                            .state_updated_timestamp(aws_smithy_types::DateTime::from_secs(
                                1_795_000_060,
                            ))
                            .build(),
                    )
                    .build()
            });
        let cloudwatch = CloudWatch::new(
            mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]),
            "eu-north-1",
        );
        let names = ["unheard-of", "primary-gone", "db-down", "db-down"].map(String::from);
        let readings = cloudwatch.alarms(&names).await.unwrap();
        assert_eq!(rule.num_calls(), 1);
        assert_eq!(
            readings,
            [
                AlarmReading {
                    name: "db-down".to_string(),
                    arn: "arn:aws:cloudwatch:eu-north-1:123456789012:alarm:db-down".to_string(),
                    state: AlarmState::Alarm,
                    updated_at: "2026-11-18T11:06:40Z".parse().unwrap(),
                    reason: "Threshold Crossed: 3 datapoints were less than the threshold (1.0)"
                        .to_string(),
                },
                AlarmReading {
                    name: "primary-gone".to_string(),
                    arn: "arn:aws:cloudwatch:eu-north-1:123456789012:alarm:primary-gone"
                        .to_string(),
                    state: AlarmState::Ok,
                    updated_at: "2026-11-18T11:07:40Z".parse().unwrap(),
                    reason: "api-down is OK".to_string(),
                },
            ]
        );
    }

    /// 250 names take three calls of at most 100 names each.
    #[tokio::test]
    async fn names_are_asked_for_a_hundred_at_a_time() {
        let rule = mock!(Client::describe_alarms)
            .match_requests(|req| req.alarm_names().len() <= ALARM_NAMES_PER_CALL)
            .then_output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(metric_alarm("alarm-0", StateValue::Ok, "fine"))
                    .build()
            });
        let cloudwatch = CloudWatch::new(
            mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]),
            "eu-north-1",
        );
        let names: Vec<String> = (0..250).map(|i| format!("alarm-{i}")).collect();
        cloudwatch.alarms(&names).await.unwrap();
        assert_eq!(rule.num_calls(), 3);
    }

    /// A page that ends with a NextToken is followed by the next page, with that token.
    #[tokio::test]
    async fn every_page_is_read() {
        let first = mock!(Client::describe_alarms)
            .match_requests(|req| req.next_token().is_none())
            .then_output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(metric_alarm("db-down", StateValue::Alarm, "down"))
                    .next_token("page-2")
                    .build()
            });
        let second = mock!(Client::describe_alarms)
            .match_requests(|req| req.next_token() == Some("page-2"))
            .then_output(|| {
                DescribeAlarmsOutput::builder()
                    .metric_alarms(metric_alarm(
                        "replica-lag",
                        StateValue::InsufficientData,
                        "Insufficient Data: 1 datapoint was unknown",
                    ))
                    .build()
            });
        let cloudwatch = CloudWatch::new(
            mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&first, &second]),
            "eu-north-1",
        );
        let readings = cloudwatch
            .alarms(&["db-down".to_string(), "replica-lag".to_string()])
            .await
            .unwrap();
        assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
        let states: Vec<(&str, AlarmState)> = readings
            .iter()
            .map(|r| (r.name.as_str(), r.state))
            .collect();
        assert_eq!(
            states,
            [
                ("db-down", AlarmState::Alarm),
                ("replica-lag", AlarmState::InsufficientData)
            ]
        );
    }

    /// A role without cloudwatch:DescribeAlarms gets a typed AccessDenied naming the operation and region.
    #[tokio::test]
    async fn a_denied_describe_is_a_typed_access_denied_error() {
        let denied = mock!(Client::describe_alarms).then_error(|| {
            DescribeAlarmsError::generic(
                ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message("User is not authorized to perform: cloudwatch:DescribeAlarms")
                    .build(),
            )
        });
        let cloudwatch = CloudWatch::new(
            mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&denied]),
            "eu-north-1",
        );
        let err = cloudwatch
            .alarms(&["db-down".to_string()])
            .await
            .unwrap_err();
        assert_eq!(
            err,
            AwsError::AccessDenied {
                operation: "cloudwatch:DescribeAlarms".to_string(),
                region: "eu-north-1".to_string(),
                message: "User is not authorized to perform: cloudwatch:DescribeAlarms".to_string(),
            }
        );
    }

    /// States are named as CloudWatch names them, in text and in JSON.
    #[test]
    fn alarm_states_are_named_as_cloudwatch_names_them() {
        for (state, name) in [
            (AlarmState::Ok, "OK"),
            (AlarmState::Alarm, "ALARM"),
            (AlarmState::InsufficientData, "INSUFFICIENT_DATA"),
        ] {
            assert_eq!(state.as_str(), name);
            assert_eq!(AlarmState::parse(name), Some(state));
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{name}\"")
            );
            assert_eq!(
                serde_json::from_str::<AlarmState>(&format!("\"{name}\"")).unwrap(),
                state
            );
        }
        assert_eq!(AlarmState::parse("alarm"), None);
    }
}
