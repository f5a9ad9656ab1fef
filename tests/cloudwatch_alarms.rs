//! CloudWatch over real HTTP: the real aws-sdk-cloudwatch client, which speaks Smithy RPC v2 CBOR, against the
//! emulator, which serves the alarm and metric data operations in that protocol on moto's CloudWatch backend
//! (scripts/emulator.py). `CloudWatch::alarms` reads back what was put and set; an unknown name is absent; an alarm
//! is seen in its own region only; the harness's `set_alarm` (used by the failover tests) creates and sets alarms;
//! `CloudWatch::free_storage` reads RDS's free storage from metric data.
//!
//! CloudWatch state lives in eu-north-1 here, a region no other test uses for CloudWatch.

use aws_sdk_cloudwatch::operation::set_alarm_state::SetAlarmStateError;
use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use chrono::{TimeDelta, Utc};
use lifeboat::aws::cloudwatch::{AlarmReading, AlarmState, CloudWatch};
use lifeboat_integration_tests::{publish_free_storage, sdk_config, set_alarm, unique};

/// The region of this file's alarms.
const REGION: &str = "eu-north-1";

/// The real SDK client for CloudWatch in `region` of the emulator.
async fn client(region: &str) -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::new(&sdk_config(region).await)
}

/// The one reading `CloudWatch::alarms` gives for `name` in `REGION`.
async fn reading(name: &str) -> AlarmReading {
    let readings = CloudWatch::new(client(REGION).await, REGION)
        .alarms(&[name.to_string()])
        .await
        .expect("describe alarms");
    let [reading] = readings.as_slice() else {
        panic!("one reading of {name}, got {readings:?}");
    };
    reading.clone()
}

/// An alarm put and set with the SDK is read back in ALARM with its reason, then in OK; an unknown name is
/// absent, and the alarm is not seen from another region.
#[tokio::test]
async fn alarms_are_read_in_the_state_cloudwatch_holds() {
    let cloudwatch = client(REGION).await;
    let name = unique("primary-db-down");
    cloudwatch
        .put_metric_alarm()
        .alarm_name(&name)
        .namespace("AWS/RDS")
        .metric_name("DatabaseConnections")
        .dimensions(
            aws_sdk_cloudwatch::types::Dimension::builder()
                .name("DBInstanceIdentifier")
                .value("booking-db")
                .build(),
        )
        .statistic(Statistic::Maximum)
        .period(60)
        .evaluation_periods(3)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::LessThanThreshold)
        .send()
        .await
        .expect("put metric alarm");
    let before = Utc::now() - TimeDelta::seconds(1);
    cloudwatch
        .set_alarm_state()
        .alarm_name(&name)
        .state_value(StateValue::Alarm)
        .state_reason("Threshold Crossed: 3 datapoints were less than the threshold (1.0)")
        .send()
        .await
        .expect("set alarm state");

    let unknown = unique("unheard-of");
    let readings = CloudWatch::new(cloudwatch.clone(), REGION)
        .alarms(&[unknown, name.clone()])
        .await
        .expect("describe alarms");
    let [alarm] = readings.as_slice() else {
        panic!("the alarm, and nothing for the unknown name: {readings:?}");
    };
    assert_eq!(alarm.name, name);
    assert_eq!(
        alarm.arn,
        format!("arn:aws:cloudwatch:{REGION}:123456789012:alarm:{name}")
    );
    assert_eq!(alarm.state, AlarmState::Alarm);
    assert_eq!(
        alarm.reason,
        "Threshold Crossed: 3 datapoints were less than the threshold (1.0)"
    );
    assert!(
        alarm.updated_at >= before && alarm.updated_at <= Utc::now(),
        "the state's time is when it was set: {alarm:?}"
    );

    cloudwatch
        .set_alarm_state()
        .alarm_name(&name)
        .state_value(StateValue::Ok)
        .state_reason("Threshold Crossed: 1 datapoint was not less than the threshold (1.0)")
        .send()
        .await
        .expect("set alarm state");
    let alarm = reading(&name).await;
    assert_eq!(alarm.state, AlarmState::Ok);
    assert_eq!(
        alarm.reason,
        "Threshold Crossed: 1 datapoint was not less than the threshold (1.0)"
    );

    let elsewhere = CloudWatch::new(client("eu-south-2").await, "eu-south-2")
        .alarms(std::slice::from_ref(&name))
        .await
        .expect("describe alarms in another region");
    assert!(
        elsewhere.is_empty(),
        "alarms live in their own region: {elsewhere:?}"
    );
}

/// The harness's `set_alarm` creates an alarm that does not exist and sets it, and sets an existing one.
#[tokio::test]
async fn the_harness_creates_and_sets_alarms() {
    let name = unique("failover-trigger");
    set_alarm(REGION, &name, "ALARM", "the primary is gone").await;
    let alarm = reading(&name).await;
    assert_eq!(
        (alarm.state, alarm.reason.as_str()),
        (AlarmState::Alarm, "the primary is gone")
    );

    set_alarm(REGION, &name, "INSUFFICIENT_DATA", "no datapoints").await;
    let alarm = reading(&name).await;
    assert_eq!(
        (alarm.state, alarm.reason.as_str()),
        (AlarmState::InsufficientData, "no datapoints")
    );
}

/// Setting the state of an alarm that does not exist is CloudWatch's ResourceNotFound, decoded from the emulator's
/// RPC v2 CBOR error.
#[tokio::test]
async fn setting_an_unknown_alarm_is_resource_not_found() {
    let err = client(REGION)
        .await
        .set_alarm_state()
        .alarm_name(unique("unheard-of"))
        .state_value(StateValue::Alarm)
        .state_reason("test")
        .send()
        .await
        .expect_err("no such alarm");
    assert!(
        matches!(
            err.as_service_error(),
            Some(SetAlarmStateError::ResourceNotFound(_))
        ),
        "{err:?}"
    );
}

/// `CloudWatch::free_storage` reads the newest `FreeStorageSpace` of each instance from RDS's metrics over real
/// HTTP (GetMetricData in RPC v2 CBOR); an instance without a sample is left out.
#[tokio::test]
async fn free_storage_is_the_newest_minimum_per_instance() {
    let (measured, silent) = (unique("orders-db"), unique("quiet-db"));
    let now = Utc::now();
    for (minutes_ago, bytes) in [(20, 9.0e9), (3, 4.0e9)] {
        publish_free_storage(
            REGION,
            &measured,
            bytes,
            now - TimeDelta::minutes(minutes_ago),
        )
        .await;
    }
    let free = CloudWatch::new(client(REGION).await, REGION)
        .free_storage(&[measured.clone(), silent.clone()], now)
        .await
        .expect("get metric data");
    assert_eq!(free.get(&measured), Some(&4_000_000_000));
    assert!(!free.contains_key(&silent), "{free:?}");
}
