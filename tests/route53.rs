//! The Route 53 adapter against the emulator: a plain CNAME and PRIMARY/SECONDARY failover CNAMEs with a health
//! check are upserted, read back, changed and deleted, as the failover function does it.
//!
//! Route 53 is global in the emulator too: every test makes its own hosted zone (a unique name) and health check.

use lifeboat::aws::AwsError;
use lifeboat::aws::route53::{FailoverRole, RecordSet, answer};
use lifeboat_integration_tests::{health_check, hosted_zone, route53, route53_records, unique};

fn cname(name: &str, target: &str) -> RecordSet {
    RecordSet {
        name: name.to_string(),
        record_type: "CNAME".to_string(),
        ttl: Some(60),
        values: vec![target.to_string()],
        set_identifier: None,
        failover: None,
        health_check_id: None,
        alias: false,
    }
}

fn sorted(mut records: Vec<RecordSet>) -> Vec<RecordSet> {
    records.sort_by(|a, b| a.set_identifier.cmp(&b.set_identifier));
    records
}

#[tokio::test]
async fn failover_records_are_written_read_back_changed_and_deleted() {
    let zone_name = format!("{}.example.com", unique("lifeboat"));
    let zone = hosted_zone(&zone_name).await;
    let check = health_check().await;
    let adapter = route53().await;

    let name = format!("db.{zone_name}");
    let drill = cname(
        &format!("drill.{zone_name}"),
        "lifeboat-drill-orders.abc.us-west-2.rds.amazonaws.com",
    );
    let primary = RecordSet {
        set_identifier: Some("primary".into()),
        failover: Some(FailoverRole::Primary),
        health_check_id: Some(check.clone()),
        ..cname(&name, "orders.abc.us-east-1.rds.amazonaws.com")
    };
    let secondary = RecordSet {
        set_identifier: Some("secondary".into()),
        failover: Some(FailoverRole::Secondary),
        ..cname(&name, "orders-dr.abc.us-west-2.rds.amazonaws.com")
    };
    let change = adapter
        .upsert(
            &zone,
            &[drill.clone(), primary.clone(), secondary.clone()],
            "lifeboat: failover records",
        )
        .await
        .expect("upsert");
    assert!(!change.starts_with("/change/"), "{change}");
    // moto applies a change at once (INSYNC); AWS answers PENDING for a while (the unit tests cover both).
    assert!(adapter.change_in_sync(&change).await.expect("get change"));

    // Each name reads back as written, whatever the case and trailing dot of the name asked for.
    let read = route53_records(&zone, &name).await;
    assert_eq!(sorted(read.clone()), [primary.clone(), secondary.clone()]);
    assert_eq!(
        route53_records(&zone, &format!("{}.", drill.name.to_uppercase())).await,
        std::slice::from_ref(&drill)
    );
    assert!(
        route53_records(&zone, &format!("nothing.{zone_name}"))
            .await
            .is_empty()
    );

    // A failing PRIMARY check answers with the SECONDARY.
    assert_eq!(answer(&read, "CNAME", |id| id == check), Some(&secondary));

    // An upsert changes a record in place.
    let moved = RecordSet {
        values: vec!["orders-dr-2.abc.us-west-2.rds.amazonaws.com".into()],
        ..secondary.clone()
    };
    adapter
        .upsert(
            &zone,
            std::slice::from_ref(&moved),
            "lifeboat: new DR target",
        )
        .await
        .expect("upsert moved");
    assert_eq!(
        sorted(route53_records(&zone, &name).await),
        [primary.clone(), moved.clone()]
    );

    // The drill record is deleted as it is; the failover records stay.
    adapter
        .delete(&zone, std::slice::from_ref(&drill), "lifeboat: drill over")
        .await
        .expect("delete drill record");
    assert!(route53_records(&zone, &drill.name).await.is_empty());
    assert_eq!(route53_records(&zone, &name).await.len(), 2);

    let read = route53_records(&zone, &name).await;
    assert_eq!(answer(&read, "CNAME", |_| false), Some(&primary));
}

#[tokio::test]
async fn a_zone_that_does_not_exist_is_named_in_the_error() {
    let adapter = route53().await;
    let err = adapter
        .records("ZNOSUCHZONE0000", "db.example.com")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AwsError::Service { operation, code, .. }
            if operation == "route53:ListResourceRecordSets" && code == "NoSuchHostedZone"),
        "{err:?}"
    );
}
