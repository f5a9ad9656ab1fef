use serde_json::json;

use super::*;
use lifeboat::failover::Proposal;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../events/failover/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn classify(name: &str) -> Result<String, HandlerError> {
    ask_of(fixture(name)).map(|ask| match ask {
        Ask::Schedule => "schedule".into(),
        Ask::Alarm { name, state, at } => {
            format!("alarm {name} {} {}", state.as_str(), tag_time(at))
        }
        Ask::Manual(r) => format!("manual {} {}", r.action, r.plan.unwrap_or_default()),
    })
}

#[test]
fn both_alarm_shapes_are_read_with_the_alarm_time() {
    let expected = "alarm liveevent-primary-unhealthy ALARM 2026-11-23T10:00:00Z";
    assert_eq!(classify("alarm-state-change.json").unwrap(), expected);
    assert_eq!(classify("alarm-action.json").unwrap(), expected);
    assert_eq!(
        classify("alarm-cleared.json").unwrap(),
        "alarm liveevent-primary-unhealthy OK 2026-11-23T10:03:00Z"
    );
}

#[test]
fn every_fixture_is_understood() {
    assert_eq!(classify("scheduled.json").unwrap(), "schedule");
    assert_eq!(
        classify("manual-failover.json").unwrap(),
        "manual failover liveevent"
    );
    assert_eq!(
        classify("manual-drill.json").unwrap(),
        "manual drill liveevent"
    );
    assert_eq!(
        classify("manual-failback.json").unwrap(),
        "manual failback liveevent"
    );
    assert_eq!(classify("manual-status.json").unwrap(), "manual status ");
    assert_eq!(classify("manual-approve.json").unwrap(), "manual approve ");
}

#[test]
fn bad_input_names_the_problem() {
    let err = classify("malformed.json").unwrap_err().to_string();
    assert!(err.contains("force"), "{err}");
    let err = ask_of(json!({"action": "promote"}))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("unknown action `promote`") && err.contains("failback"),
        "{err}"
    );
    let mut event = fixture("alarm-state-change.json");
    event["detail"]["state"] = json!({"value": "ALARM"});
    let err = ask_of(event).err().unwrap().to_string();
    assert!(err.contains("malformed"), "{err}");
    let mut event = fixture("scheduled.json");
    event["detail-type"] = json!("RDS DB Instance Event");
    let err = ask_of(event).err().unwrap().to_string();
    assert!(err.contains("unexpected event"), "{err}");
}

#[test]
fn approval_requests_state_the_loss_and_the_command() {
    let policy = lifeboat::policy::Policy::from_yaml(
        &std::fs::read_to_string(format!(
            "{}/../../infra/examples/live-event-service.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let plan = &policy.plans[0];
    let settings = plan.failover.as_ref().unwrap();
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-23T10:01:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let point = RecoveryPoint::Snapshot {
        identifier: "copy-1".into(),
        arn: "arn:aws:rds:us-west-2:1:snapshot:copy-1".into(),
        time: now - TimeDelta::minutes(42),
    };
    let run = Run {
        id: "failover-1".into(),
        kind: Kind::Failover,
        plan: plan.name.clone(),
        database: "liveevent-db".into(),
        from_region: "us-east-1".into(),
        to_region: "us-west-2".into(),
        trigger: Trigger::Alarm {
            name: "liveevent-primary-unhealthy".into(),
            at: now,
        },
        detected_at: now,
        mode: FailoverMode::Approval,
        proposal: Proposal {
            action: Action::Restore {
                point,
                kind: DatabaseKind::Instance,
                engine: "postgres".into(),
                instance_class: "db.r6g.large".into(),
                subnet_group: "dr".into(),
                security_groups: vec!["sg-1".into()],
                parameter_group: None,
            },
            target: "lbfailover-liveevent-db-202611231001".into(),
            target_kind: DatabaseKind::Instance,
            data_time: Some(now - TimeDelta::minutes(42)),
            loss: lifeboat::failover::DataLoss {
                seconds: Some(42 * 60),
                description: "42m 0s of writes".into(),
                over_rpo: true,
                needs_acceptance: true,
            },
            warnings: vec![],
        },
        approval: Some(Approval {
            token_digest: token_digest("tok"),
            expires_at: now + TimeDelta::hours(1),
            approved_by: None,
            approved_at: None,
            accepted_data_loss: false,
        }),
        cutover: None,
        phase: Phase::AwaitingApproval,
        acted_at: None,
        ready_at: None,
        endpoint: None,
        checks: vec![],
        checks_passed: None,
        dns_change: None,
        dns_submitted_at: None,
        dns_in_sync_at: None,
        old_primary: None,
        rto_seconds: None,
        rpo_seconds: None,
        outcome: None,
        notified: vec![],
        failures: 0,
        history: vec![],
        ended_at: None,
    };
    let (subject, body) = approval_request(plan, settings, &run, "tok");
    assert!(
        subject.contains("approve failover of liveevent-db to us-west-2"),
        "{subject}"
    );
    assert!(
        body.contains("lifeboat failover approve tok --accept-data-loss"),
        "{body}"
    );
    assert!(body.contains("MORE THAN THE RPO"), "{body}");
    assert!(body.contains("Nothing changes until you approve"), "{body}");
}
