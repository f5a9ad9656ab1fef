//! The failover function against the emulator (moto serves RDS in both regions, Route 53 records, health checks
//! and changes, S3, SNS; the launcher serves CloudWatch alarms) and the local PostgreSQL server for the checks:
//! an alarm, the approval through its one-time token, the DR database restored, checked, the name pointed at it
//! and the old primary stopped; automatic mode; an alarm that clears before approval; an RPO breach needing
//! acceptance; a crash between steps; a drill that leaves production records alone; health-checked failover
//! records; and failback through a replica back in the primary region.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use lifeboat::aws::AwsClients;
use lifeboat::aws::cloudwatch::CloudWatch;
use lifeboat::aws::kms::Kms;
use lifeboat::aws::route53::{FailoverRole, RecordSet, Route53};
use lifeboat::aws::secrets::Secrets;
use lifeboat::checks::{EndpointOverride, TlsMode};
use lifeboat::failover::{Kind, Phase};
use lifeboat::lambda::HandlerError;
use lifeboat::restore::engine::CheckSettings;
use lifeboat::state::StateStore;
use lifeboat_failover::{FailoverFunction, FailoverReport, PlanState, state_key};
use lifeboat_integration_tests::faults::{FaultConfig, FaultKind, FaultProxy, FaultRule};
use lifeboat_integration_tests::{
    Sandbox, at, context, event, health_check, hosted_zone, on_large_stack, route53_records,
    sdk_config_at, seed_postgres, set_alarm, unique,
};

/// The daily snapshot the copies come from (the snapshot function dates it at its 02:00 UTC schedule).
const SNAPSHOT_TIME: &str = "2026-11-23T02:00:00Z";
/// When the alarm fires.
const ALARM_TIME: &str = "2026-11-23T02:05:00Z";
/// The on-call engineer.
const BOB: &str = "arn:aws:sts::123456789012:assumed-role/oncall/bob";

/// One failover scenario: a primary database with a copy in the DR region, a hosted zone whose name points at the
/// primary, an alarm, and a reports bucket for the state.
struct Scene {
    sandbox: Sandbox,
    primary: String,
    dr: String,
    database: String,
    zone: String,
    name: String,
    drill_name: String,
    alarm: String,
    reports: String,
    policy: String,
}

impl Scene {
    /// Build a scene in `primary` with DR region `dr`; `failover` is extra YAML of the failover section.
    async fn new(primary: &str, dr: &str, failover: &str) -> Scene {
        let sandbox = Sandbox::new(primary).await;
        let database = unique("fo-app");
        let alarm = unique("fo-primary-down");
        let zone_name = format!("{}.example.com", unique("fo"));
        let zone = hosted_zone(&zone_name).await;
        let name = format!("db.{zone_name}");
        let drill_name = format!("drill.{zone_name}");
        let postgres_database = seed_postgres(10, at(SNAPSHOT_TIME) - Duration::minutes(1)).await;
        let policy = format!(
            r#"
version: 1
name: failover-test
plans:
  - name: app
    select: {{identifiers: [{database}]}}
    retention: {{keep_daily: 7}}
    copies:
      - {{region: {dr}, kms_key_id: alias/fo-dr, retain_days: 14}}
    verification:
      every: 7d
      instance_class: db.t3.micro
      subnet_group: fo-subnets
      security_groups: [sg-0drill]
      database_name: {postgres_database}
      checks:
        - {{kind: tables_present, tables: [bookings]}}
        - {{kind: min_rows, table: bookings, at_least: 3}}
    objectives: {{rpo: 15m, rto: 15m}}
    failover:
      region: {dr}
      database: {database}
      alarms: [{alarm}]
      subnet_group: fo-dr-subnets
      security_groups: [sg-0app]
      dns:
        hosted_zone_id: {zone}
        records: [{name}]
        drill_record: {drill_name}
{failover}"#
        );
        let _dr_key = lifeboat_integration_tests::kms_key_in(dr, "alias/fo-dr").await;
        let primary_key = sandbox.kms_key().await;
        sandbox.instance(&database, &[], Some(&primary_key)).await;
        sandbox.drill_subnet_group("fo-subnets").await;
        sandbox.drill_subnet_group_in(dr, "fo-dr-subnets").await;
        // moto looks a cross-region replica's subnet group up in its source's region: the failback replica's
        // group (the primary region's drill group) must exist in the DR region too.
        sandbox.drill_subnet_group_in(dr, "fo-subnets").await;
        sandbox.snapshot_history(&policy, [at(SNAPSHOT_TIME)]).await;
        let copied = sandbox
            .copy_function(&policy, at(SNAPSHOT_TIME) + Duration::minutes(1), &[dr], 5)
            .await
            .handle(event("copy/scheduled-hourly.json"), &context("copy"))
            .await
            .expect("copy run");
        assert_eq!(copied.counts.failed, 0, "{copied:#?}");
        let reports = unique("fo-reports");
        sandbox
            .s3
            .create_bucket()
            .bucket(&reports)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(primary))
                    .build(),
            )
            .send()
            .await
            .expect("reports bucket");
        let scene = Scene {
            primary: primary.into(),
            dr: dr.into(),
            database,
            zone,
            name,
            drill_name,
            alarm,
            reports,
            policy,
            sandbox,
        };
        // The application's name points at the primary database.
        let endpoint = scene.endpoint_of(&scene.primary, &scene.database).await;
        scene
            .route53()
            .upsert(&scene.zone, &[cname(&scene.name, &endpoint)], "application")
            .await
            .expect("application record");
        scene
    }

    fn route53(&self) -> Route53 {
        Route53::new(AwsClients::from_sdk_config(self.sandbox.config.clone()).route53())
    }

    async fn rds_in(&self, region: &str) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&sdk_config_at(&self.sandbox.endpoint, region).await)
    }

    /// The real failover function "as of" `now`, its AWS calls through `endpoint` (the emulator or a proxy).
    async fn function_at(&self, endpoint: &str, now: DateTime<Utc>) -> FailoverFunction {
        let config = sdk_config_at(endpoint, &self.primary).await;
        let clients = AwsClients::from_sdk_config(config.clone());
        let dr_config = sdk_config_at(endpoint, &self.dr).await;
        let dr_clients = AwsClients::from_sdk_config(dr_config);
        let mut services = self.sandbox.services(&self.policy, now);
        services.notifier =
            lifeboat::notify::Notifier::new(clients.sns(), &self.sandbox.topic_arn, &self.primary);
        FailoverFunction {
            primary: lifeboat_integration_tests::adapter(clients.rds(), &self.primary),
            dr_regions: vec![lifeboat_integration_tests::adapter(
                dr_clients.rds(),
                &self.dr,
            )],
            route53: Route53::new(clients.route53()),
            alarms: vec![CloudWatch::new(clients.cloudwatch(), self.primary.clone())],
            kms: vec![Kms::new(dr_clients.kms_in(&self.dr), self.dr.clone())],
            secrets: Secrets::new(aws_sdk_secretsmanager::Client::new(&config), &self.primary),
            checks: CheckSettings {
                tls: TlsMode::Disable,
                timeout: std::time::Duration::from_secs(5),
                endpoint_override: Some(EndpointOverride {
                    postgres: ("127.0.0.1".into(), 5432),
                    mysql: ("127.0.0.1".into(), 3306),
                }),
            },
            state: StateStore::new(clients.s3(), &self.reports, &self.primary),
            services,
        }
    }

    async fn invoke(
        &self,
        now: DateTime<Utc>,
        payload: Value,
    ) -> Result<FailoverReport, HandlerError> {
        self.function_at(&self.sandbox.endpoint, now)
            .await
            .handle(payload, &context(&format!("failover-{now}")))
            .await
    }

    async fn run(&self, now: DateTime<Utc>, payload: Value) -> FailoverReport {
        self.invoke(now, payload.clone())
            .await
            .unwrap_or_else(|e| panic!("failover run {payload} at {now}: {e}"))
    }

    /// The alarm event of this scene's alarm going to `state` at `time`.
    fn alarm_event(&self, state: &str, time: &str) -> Value {
        let mut event = event("failover/alarm-state-change.json");
        event["region"] = json!(self.primary);
        event["time"] = json!(time);
        event["detail"]["alarmName"] = json!(self.alarm);
        event["detail"]["state"]["value"] = json!(state);
        event["detail"]["state"]["timestamp"] = json!(time);
        event
    }

    async fn state(&self) -> PlanState {
        StateStore::new(self.sandbox.s3.clone(), &self.reports, &self.primary)
            .read::<PlanState>(&state_key("app"))
            .await
            .expect("read state")
            .map(|s| s.value.expect("a failover state"))
            .unwrap_or_default()
    }

    async fn endpoint_of(&self, region: &str, id: &str) -> String {
        self.rds_in(region)
            .await
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("describe {id} in {region}: {e:?}"))
            .db_instances()[0]
            .endpoint()
            .and_then(|e| e.address())
            .expect("endpoint")
            .to_string()
    }

    async fn status_of(&self, region: &str, id: &str) -> Option<String> {
        self.rds_in(region)
            .await
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .ok()
            .and_then(|out| {
                out.db_instances()
                    .first()
                    .and_then(|d| d.db_instance_status().map(str::to_string))
            })
    }

    async fn instances_in(&self, region: &str, prefix: &str) -> Vec<String> {
        self.rds_in(region)
            .await
            .describe_db_instances()
            .send()
            .await
            .expect("instances")
            .db_instances()
            .iter()
            .filter_map(|d| d.db_instance_identifier())
            .filter(|id| id.starts_with(prefix) && id.contains(&self.database))
            .map(str::to_string)
            .collect()
    }

    /// What the application's name holds now.
    async fn record_value(&self, name: &str) -> Vec<String> {
        route53_records(&self.zone, name)
            .await
            .into_iter()
            .flat_map(|r| r.values)
            .collect()
    }

    /// The messages whose subject contains `text`.
    async fn messages(&self, text: &str) -> Vec<(String, String)> {
        self.sandbox
            .notifications()
            .await
            .into_iter()
            .filter(|(subject, _)| subject.contains(text))
            .collect()
    }

    /// The token of the newest approval request (or cutover request).
    async fn token(&self) -> String {
        let messages = self.sandbox.notifications().await;
        let (_, body) = messages
            .iter()
            .rev()
            .find(|(_, body)| body.contains("lifeboat failover approve "))
            .expect("an approval request");
        body.split("lifeboat failover approve ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the token")
            .to_string()
    }
}

fn cname(name: &str, value: &str) -> RecordSet {
    RecordSet {
        name: name.into(),
        record_type: "CNAME".into(),
        ttl: Some(60),
        values: vec![value.into()],
        set_identifier: None,
        failover: None,
        health_check_id: None,
        alias: false,
    }
}

fn approve(token: &str, accept: bool) -> Value {
    json!({"action": "approve", "token": token, "accept_data_loss": accept, "requested_by": BOB})
}

#[test]
fn an_approved_failover_restores_checks_points_the_name_at_the_dr_region_and_fences_the_old_primary()
 {
    on_large_stack(|| async {
        let scene = Scene::new("ca-west-1", "mx-central-1", "").await;
        let primary_endpoint = scene.record_value(&scene.name).await;
        set_alarm(
            &scene.primary,
            &scene.alarm,
            "ALARM",
            "primary does not answer",
        )
        .await;

        // The alarm: re-read, still in ALARM; one approval request, nothing changed.
        let detected = scene
            .run(at(ALARM_TIME), scene.alarm_event("ALARM", ALARM_TIME))
            .await;
        let state = scene.state().await;
        let run = state.active.as_ref().expect("a run");
        assert_eq!(run.phase, Phase::AwaitingApproval, "{detected:#?}");
        assert!(
            scene
                .instances_in(&scene.dr, "lbfailover-")
                .await
                .is_empty(),
            "nothing restored before approval"
        );
        assert_eq!(scene.record_value(&scene.name).await, primary_endpoint);
        let requests = scene.messages("approve failover").await;
        assert_eq!(requests.len(), 1, "{requests:#?}");
        let body = &requests[0].1;
        assert!(
            body.contains("restore copy") && body.contains(&scene.dr),
            "{body}"
        );
        assert!(body.contains("Data lost: 5m 0s of writes"), "{body}");

        // A duplicate event changes nothing and sends nothing.
        scene
            .run(
                at(ALARM_TIME) + Duration::seconds(20),
                scene.alarm_event("ALARM", ALARM_TIME),
            )
            .await;
        assert_eq!(scene.messages("approve failover").await.len(), 1);

        // A wrong token is refused; the right one approves, and the run goes to the end.
        let err = scene
            .invoke(
                at(ALARM_TIME) + Duration::minutes(2),
                approve("not-the-token", false),
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no request awaits approval with this token"),
            "{err}"
        );
        let token = scene.token().await;
        let approved = scene
            .run(
                at(ALARM_TIME) + Duration::minutes(3),
                approve(&token, false),
            )
            .await;

        let state = scene.state().await;
        let done = state.history.last().expect("a finished run");
        assert_eq!(done.phase, Phase::Done, "{approved:#?}");
        assert_eq!(done.kind, Kind::Failover);
        let [target] = &scene.instances_in(&scene.dr, "lbfailover-").await[..] else {
            panic!("one DR database: {approved:#?}");
        };
        let dr_endpoint = scene.endpoint_of(&scene.dr, target).await;
        assert_eq!(
            scene.record_value(&scene.name).await,
            std::slice::from_ref(&dr_endpoint)
        );
        assert_eq!(done.checks_passed, Some(true), "{:#?}", done.checks);
        assert_eq!(done.rto_seconds, Some(180), "alarm to names in sync");
        assert_eq!(
            done.rpo_seconds,
            Some(480),
            "the copy's age when the restore started"
        );
        assert_eq!(
            scene
                .status_of(&scene.primary, &scene.database)
                .await
                .as_deref(),
            Some("stopped"),
            "the old primary is fenced"
        );
        let serving = state.serving.as_ref().expect("serving");
        assert_eq!(
            (serving.region.as_str(), serving.database.as_str()),
            (scene.dr.as_str(), target.as_str())
        );
        let finished = scene.messages("failover of").await;
        let (subject, body) = finished
            .iter()
            .find(|(s, _)| s.contains("done"))
            .expect("done message");
        assert!(subject.contains("RTO 3m 0s, objective 15m 0s"), "{subject}");
        assert!(
            body.contains("RPO achieved: 8m 0s (objective 15m 0s: met)"),
            "{body}"
        );
        assert!(body.contains("was stopped"), "{body}");

        // The state, the ledger and the status agree.
        let records = scene.sandbox.ledger_records().await;
        for action in ["restore-in-dr-region", "switch-dns", "fence-old-primary"] {
            assert!(
                records
                    .iter()
                    .any(|r| r.function == "failover" && r.action == action),
                "{action} in the ledger"
            );
        }
        let status = scene
            .run(
                at(ALARM_TIME) + Duration::minutes(4),
                json!({"action": "status"}),
            )
            .await;
        assert_eq!(status.plans[0].serving_region, scene.dr);
        assert_eq!(
            status.plans[0].resolves_to,
            [(scene.name.clone(), dr_endpoint)]
        );

        // Another alarm while the database runs in the DR region does not fail over again.
        let again = scene
            .run(
                at(ALARM_TIME) + Duration::minutes(30),
                scene.alarm_event("ALARM", "2026-11-23T02:35:00Z"),
            )
            .await;
        assert!(
            again.actions.iter().any(|a| a.contains("fail back first")),
            "{again:#?}"
        );

        // Failback: approval, a replica in the primary region, the cutover approval, promotion, the name back.
        let asked = scene
            .run(
                at("2026-11-23T14:00:00Z"),
                json!({"action": "failback", "plan": "app", "requested_by": BOB}),
            )
            .await;
        assert!(scene.state().await.active.is_some(), "{asked:#?}");
        let token = scene.token().await;
        scene
            .run(at("2026-11-23T14:05:00Z"), approve(&token, false))
            .await;
        let state = scene.state().await;
        let run = state.active.as_ref().expect("failback in progress");
        assert_eq!(run.phase, Phase::AwaitingCutover);
        assert_eq!(
            scene.record_value(&scene.name).await,
            [scene.endpoint_of(&scene.dr, target).await]
        );
        let cutover = scene.token().await;
        scene
            .run(at("2026-11-23T14:20:00Z"), approve(&cutover, false))
            .await;
        let state = scene.state().await;
        let back = state.history.last().expect("failback finished");
        assert_eq!(
            (back.kind, back.phase),
            (Kind::Failback, Phase::Done),
            "{back:#?}"
        );
        let [replica] = &scene.instances_in(&scene.primary, "lbfailback-").await[..] else {
            panic!("one new primary");
        };
        assert_eq!(
            scene.record_value(&scene.name).await,
            [scene.endpoint_of(&scene.primary, replica).await]
        );
        assert_eq!(
            state.serving.as_ref().map(|s| s.region.as_str()),
            Some(scene.primary.as_str())
        );
        assert_eq!(
            scene.status_of(&scene.dr, target).await.as_deref(),
            Some("stopped"),
            "the DR database is fenced"
        );
    });
}

#[test]
fn an_alarm_that_clears_before_approval_withdraws_the_request_and_changes_nothing() {
    on_large_stack(|| async {
        let scene = Scene::new("il-central-1", "me-south-1", "").await;
        let before = scene.record_value(&scene.name).await;

        // An event whose alarm is OK again when re-read does nothing at all.
        set_alarm(&scene.primary, &scene.alarm, "OK", "recovered").await;
        let ignored = scene
            .run(at(ALARM_TIME), scene.alarm_event("ALARM", ALARM_TIME))
            .await;
        assert!(scene.state().await.active.is_none(), "{ignored:#?}");
        assert!(scene.messages("Lifeboat").await.is_empty());

        // In ALARM when re-read: a request; then the alarm clears: the request is withdrawn, announced once.
        set_alarm(&scene.primary, &scene.alarm, "ALARM", "down again").await;
        scene
            .run(
                at(ALARM_TIME) + Duration::minutes(1),
                scene.alarm_event("ALARM", ALARM_TIME),
            )
            .await;
        let token = scene.token().await;
        set_alarm(&scene.primary, &scene.alarm, "OK", "flapped back").await;
        scene
            .run(
                at(ALARM_TIME) + Duration::minutes(3),
                scene.alarm_event("OK", "2026-11-23T02:08:00Z"),
            )
            .await;
        let state = scene.state().await;
        let ended = state.history.last().expect("withdrawn");
        assert_eq!(ended.phase, Phase::Cancelled);
        assert!(
            ended
                .outcome
                .as_deref()
                .unwrap_or_default()
                .contains("returned to OK"),
            "{ended:#?}"
        );
        assert_eq!(scene.messages("withdrawn").await.len(), 1);

        // The old token approves nothing; nothing was restored; the name is unchanged.
        scene
            .run(
                at(ALARM_TIME) + Duration::minutes(4),
                approve(&token, false),
            )
            .await;
        assert!(
            scene
                .instances_in(&scene.dr, "lbfailover-")
                .await
                .is_empty()
        );
        assert_eq!(scene.record_value(&scene.name).await, before);
        assert_eq!(
            scene
                .status_of(&scene.primary, &scene.database)
                .await
                .as_deref(),
            Some("available")
        );
    });
}

#[test]
fn a_recovery_point_older_than_the_rpo_needs_explicit_acceptance_even_in_automatic_mode() {
    on_large_stack(|| async {
        let scene = Scene::new("me-central-1", "ap-southeast-5", "      mode: automatic\n").await;
        set_alarm(&scene.primary, &scene.alarm, "ALARM", "down").await;
        // An hour after the snapshot: 60 minutes of writes would be lost, over the 15-minute RPO.
        let late = at("2026-11-23T03:00:00Z");
        scene
            .run(late, scene.alarm_event("ALARM", "2026-11-23T03:00:00Z"))
            .await;
        let state = scene.state().await;
        assert_eq!(
            state.active.as_ref().map(|r| r.phase),
            Some(Phase::AwaitingApproval)
        );
        let (_, body) = scene
            .messages("approve failover")
            .await
            .pop()
            .expect("approval request");
        assert!(
            body.contains("MORE THAN THE RPO") && body.contains("--accept-data-loss"),
            "{body}"
        );
        let token = scene.token().await;
        let err = scene
            .invoke(late + Duration::minutes(1), approve(&token, false))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("accept_data_loss"), "{err}");
        assert!(
            scene
                .instances_in(&scene.dr, "lbfailover-")
                .await
                .is_empty()
        );
        scene
            .run(late + Duration::minutes(2), approve(&token, true))
            .await;
        let state = scene.state().await;
        let done = state.history.last().expect("done");
        assert_eq!(done.phase, Phase::Done);
        assert_eq!(done.rpo_seconds, Some(62 * 60));
        assert!(done.approval.as_ref().is_some_and(|a| a.accepted_data_loss));
    });
}

#[test]
fn automatic_mode_within_the_rpo_fails_over_on_the_alarm_alone() {
    on_large_stack(|| async {
        let scene = Scene::new("eu-south-2", "ap-southeast-6", "      mode: automatic\n").await;
        set_alarm(&scene.primary, &scene.alarm, "ALARM", "down").await;
        scene
            .run(
                at(ALARM_TIME) + Duration::seconds(30),
                scene.alarm_event("ALARM", ALARM_TIME),
            )
            .await;
        let state = scene.state().await;
        let done = state.history.last().expect("done at once");
        assert_eq!(done.phase, Phase::Done);
        assert_eq!(
            done.approval
                .as_ref()
                .and_then(|a| a.approved_by.as_deref()),
            Some("automatic mode")
        );
        assert!(
            scene.messages("approve").await.is_empty(),
            "no approval asked"
        );
        assert_eq!(scene.messages("done").await.len(), 1);
    });
}

#[test]
fn a_crash_between_steps_converges_without_a_second_database() {
    on_large_stack(|| async {
        let scene = Scene::new("ap-south-2", "ap-east-2", "").await;
        set_alarm(&scene.primary, &scene.alarm, "ALARM", "down").await;
        scene
            .run(at(ALARM_TIME), scene.alarm_event("ALARM", ALARM_TIME))
            .await;
        let token = scene.token().await;
        // The restore's answer is lost (it took effect) and every Route 53 change fails: the run stops mid-way.
        let proxy = FaultProxy::start(
            &scene.sandbox.endpoint,
            FaultConfig {
                rules: vec![
                    FaultRule {
                        operation: "RestoreDBInstanceFromDBSnapshot".into(),
                        kind: FaultKind::LostResponse,
                        probability: 1.0,
                    },
                    FaultRule {
                        operation: "ChangeResourceRecordSets".into(),
                        kind: FaultKind::ServerError,
                        probability: 1.0,
                    },
                ],
                ..FaultConfig::none()
            },
        )
        .await;
        proxy.set_active(true);
        let function = scene
            .function_at(proxy.endpoint(), at(ALARM_TIME) + Duration::minutes(2))
            .await;
        let broken = Box::pin(function.handle(approve(&token, false), &context("crashing")))
            .await
            .expect("approval recorded even though the steps failed");
        assert!(!broken.run_errors.is_empty(), "{broken:#?}");
        let state = scene.state().await;
        assert!(
            state
                .active
                .as_ref()
                .is_some_and(|r| r.phase != Phase::Done),
            "stopped mid-way"
        );
        // Route 53 keeps failing: the schedule retries every minute, and the third failure in a row is announced
        // once (not every minute), with the error and how to stop the run.
        for minute in 3..7 {
            let function = scene
                .function_at(proxy.endpoint(), at(ALARM_TIME) + Duration::minutes(minute))
                .await;
            Box::pin(function.handle(event("failover/scheduled.json"), &context("retrying")))
                .await
                .expect("scheduled run");
        }
        let stuck = scene.messages("is stuck").await;
        assert_eq!(stuck.len(), 1, "{:#?}", scene.state().await);
        assert!(
            stuck[0].1.contains("ChangeResourceRecordSets")
                && stuck[0].1.contains("lifeboat failover cancel --plan app"),
            "{}",
            stuck[0].1
        );
        // The next scheduled run, with AWS healthy, finishes it: one database, the name switched once; the run is
        // announced moving again.
        proxy.set_active(false);
        scene
            .run(
                at(ALARM_TIME) + Duration::minutes(8),
                event("failover/scheduled.json"),
            )
            .await;
        assert_eq!(scene.messages("moving again").await.len(), 1);
        let state = scene.state().await;
        assert_eq!(
            state.history.last().map(|r| r.phase),
            Some(Phase::Done),
            "{state:#?}"
        );
        let targets = scene.instances_in(&scene.dr, "lbfailover-").await;
        assert_eq!(targets.len(), 1, "{targets:?}");
        assert_eq!(
            scene.record_value(&scene.name).await,
            [scene.endpoint_of(&scene.dr, &targets[0]).await]
        );
    });
}

#[test]
fn a_drill_measures_rto_and_rpo_on_the_drill_record_and_leaves_production_alone() {
    on_large_stack(|| async {
        let scene = Scene::new("ca-central-1", "af-south-1", "      drill_every: 90d\n").await;
        let production = scene.record_value(&scene.name).await;
        // The schedule starts the first drill: no approval (nothing in production changes).
        let report = scene
            .run(at(ALARM_TIME), event("failover/scheduled.json"))
            .await;
        let state = scene.state().await;
        let drill = state
            .history
            .last()
            .unwrap_or_else(|| panic!("a drill ran: {report:#?}"));
        assert_eq!(
            (drill.kind, drill.phase),
            (Kind::Drill, Phase::Done),
            "{drill:#?}"
        );
        assert_eq!(drill.rpo_seconds, Some(300));
        assert!(drill.rto_seconds.is_some());
        assert_eq!(
            scene.record_value(&scene.name).await,
            production,
            "production record untouched"
        );
        assert!(
            scene.record_value(&scene.drill_name).await.is_empty(),
            "drill record removed"
        );
        assert!(
            scene.instances_in(&scene.dr, "lbfodrill-").await.is_empty(),
            "drill database deleted"
        );
        assert_eq!(
            scene
                .status_of(&scene.primary, &scene.database)
                .await
                .as_deref(),
            Some("available")
        );
        assert!(state.serving.is_none());
        assert_eq!(scene.messages("failover drill of").await.len(), 1);
        // Not due again for 90 days.
        scene
            .run(
                at(ALARM_TIME) + Duration::days(1),
                event("failover/scheduled.json"),
            )
            .await;
        assert_eq!(scene.state().await.history.len(), 1);
    });
}

#[test]
fn failover_routed_names_get_both_records_pointed_at_the_dr_database_and_the_health_check_is_left_alone()
 {
    on_large_stack(|| async {
        let scene = Scene::new("eu-central-2", "ap-southeast-4", "").await;
        let check = health_check().await;
        // PRIMARY at the primary database (with the health check), SECONDARY at a stale address.
        let primary_endpoint = scene.endpoint_of(&scene.primary, &scene.database).await;
        let route53 = scene.route53();
        let current = route53_records(&scene.zone, &scene.name).await;
        route53
            .delete(&scene.zone, &current, "to failover routing")
            .await
            .expect("delete");
        let routed = |value: &str, role: FailoverRole| RecordSet {
            set_identifier: Some(format!("{role:?}").to_lowercase()),
            failover: Some(role),
            health_check_id: (role == FailoverRole::Primary).then(|| check.clone()),
            ..cname(&scene.name, value)
        };
        route53
            .upsert(
                &scene.zone,
                &[
                    routed(&primary_endpoint, FailoverRole::Primary),
                    routed("stale.example.com", FailoverRole::Secondary),
                ],
                "failover routing",
            )
            .await
            .expect("failover records");
        set_alarm(&scene.primary, &scene.alarm, "ALARM", "down").await;
        scene
            .run(at(ALARM_TIME), scene.alarm_event("ALARM", ALARM_TIME))
            .await;
        let token = scene.token().await;
        scene
            .run(
                at(ALARM_TIME) + Duration::minutes(2),
                approve(&token, false),
            )
            .await;
        // Whatever the health check says from now on (the old primary coming back), the name answers with the DR
        // database: both records hold it, the PRIMARY keeps its health check.
        let target = &scene.instances_in(&scene.dr, "lbfailover-").await[0];
        let dr_endpoint = scene.endpoint_of(&scene.dr, target).await;
        let records = route53_records(&scene.zone, &scene.name).await;
        assert_eq!(records.len(), 2, "{records:#?}");
        for record in &records {
            assert_eq!(
                record.values,
                std::slice::from_ref(&dr_endpoint),
                "{record:#?}"
            );
        }
        let primary = records
            .iter()
            .find(|r| r.failover == Some(FailoverRole::Primary))
            .expect("PRIMARY");
        assert_eq!(primary.health_check_id.as_deref(), Some(check.as_str()));
        let status = scene
            .run(
                at(ALARM_TIME) + Duration::minutes(3),
                json!({"action": "status"}),
            )
            .await;
        assert_eq!(status.plans[0].resolves_to[0].1, dr_endpoint);
    });
}

#[test]
fn bad_requests_name_the_problem_and_change_nothing() {
    on_large_stack(|| async {
        let scene = Scene::new("sa-east-1", "ap-northeast-3", "").await;
        for (payload, expected) in [
            (json!({"action": "failover"}), "needs \"plan\""),
            (
                json!({"action": "failover", "plan": "nope"}),
                "no plan `nope`",
            ),
            (
                json!({"action": "failback", "plan": "app"}),
                "nothing to fail back",
            ),
            (
                json!({"action": "cancel", "plan": "app"}),
                "nothing in progress",
            ),
            (json!({"action": "approve"}), "needs \"token\""),
            (
                json!({"action": "failover", "plan": "app", "force": true}),
                "force",
            ),
        ] {
            let err = scene
                .invoke(at(ALARM_TIME), payload.clone())
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{payload}: {err}");
        }
        assert!(scene.state().await.active.is_none());
        assert!(scene.messages("Lifeboat").await.is_empty());
    });
}

#[test]
fn the_schedule_acts_on_an_alarm_whose_event_never_came_once_per_alarm() {
    on_large_stack(|| async {
        let scene = Scene::new("ap-southeast-3", "ap-northeast-2", "").await;
        set_alarm(
            &scene.primary,
            &scene.alarm,
            "ALARM",
            "primary does not answer",
        )
        .await;
        // No event reached the function (a health-check alarm in us-east-1): the schedule reads the alarm itself.
        let polled = scene
            .run(at(ALARM_TIME), event("failover/scheduled.json"))
            .await;
        let state = scene.state().await;
        assert_eq!(
            state.active.as_ref().map(|r| r.phase),
            Some(Phase::AwaitingApproval),
            "{polled:#?}"
        );
        assert_eq!(scene.messages("approve failover").await.len(), 1);
        // Withdrawn by the operator while the alarm stays in ALARM: not asked again every minute.
        scene
            .run(
                at(ALARM_TIME) + Duration::minutes(1),
                json!({"action": "cancel", "plan": "app", "requested_by": BOB}),
            )
            .await;
        for minute in 2..5 {
            scene
                .run(
                    at(ALARM_TIME) + Duration::minutes(minute),
                    event("failover/scheduled.json"),
                )
                .await;
        }
        let state = scene.state().await;
        assert!(state.active.is_none(), "{state:#?}");
        assert_eq!(
            scene.messages("approve failover").await.len(),
            1,
            "asked once"
        );
        assert_eq!(scene.messages("withdrawn").await.len(), 1);
    });
}
